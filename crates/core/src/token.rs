//! The decision token verify issues on YES and the ledger redeems at reserve.
//!
//! Format: `v1.<kid>.<payload>.<mac>`, where `payload` is base64url (no padding) of the JSON
//! bytes of [`TokenClaims`] and `mac` is base64url (no padding) of HMAC-SHA256 under the key
//! named by `kid` over `predebit/decision-token/v1 || 0x00 || payload bytes`. The MAC covers the
//! exact payload bytes, so verification needs no canonical form. The payload is readable, not
//! secret; the ledger takes every term of the payment from it, never from its caller.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::budget::BudgetClaim;
use crate::keys::{hex_lower, is_valid_kid, KeyRing};
use crate::reason::ReasonCode;
use crate::records::PolicyVersions;

/// Domain tag of the decision-token MAC.
pub const TOKEN_MAC_TAG: &str = "predebit/decision-token/v1";

/// How long a decision token is valid after issue, in seconds.
pub const TOKEN_TTL_SECONDS: u64 = 60;

/// Longest token string `verify` reads; real tokens are well under 2 KiB.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Everything the ledger needs to reserve the approved payment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenClaims {
    /// The payment attempt (client token) the decision approved.
    pub payment_id: String,
    /// The decision's identifier.
    pub verification_id: String,
    /// SHA-256 of the decision's canonical audit record.
    pub audit_hash: String,
    /// The wallet owner.
    pub user_id: String,
    /// The paying agent.
    pub agent_id: String,
    /// The AgentCore payment session the hold is taken on.
    pub payment_session_id: String,
    /// The x402 scheme (`exact`).
    pub scheme: String,
    /// The network, as named in the requirement.
    pub network: String,
    /// The asset address, lowercased for EVM.
    pub asset: String,
    /// The recipient address, lowercased for EVM.
    pub pay_to: String,
    /// The amount in atomic token units, a decimal string.
    pub amount_atomic: String,
    /// The amount in micro-USD, rounded up.
    pub amount_micros: u64,
    /// The host of the paid resource, when the requirement named one.
    pub resource_host: Option<String>,
    /// The requirement's `maxTimeoutSeconds`.
    pub max_timeout_seconds: u64,
    /// The policy versions the decision used; `None` for an absent scope.
    pub policy_versions: PolicyVersions,
    /// Whether a consent record was required for this payment.
    pub consent_required: bool,
    /// The longest authorization window policy allowed, in seconds: the ledger refuses a signed
    /// `validBefore` later than `issuedAt` + this + the clock-skew allowance.
    pub authorization_window_seconds: u64,
    /// Epoch seconds of issue.
    pub issued_at: u64,
    /// Epoch seconds from which the token is expired (exclusive).
    pub expires_at: u64,
    /// The budgets across sessions that applied: reserve charges their counters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<BudgetClaim>,
}

/// Why a decision token was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// The token does not have the `v1.<kid>.<payload>.<mac>` shape; says which part is wrong.
    #[error("malformed decision token: {0}")]
    Malformed(&'static str),
    /// The token names a kid the key ring does not hold (refetch the secret and retry once).
    #[error("decision token signed under unknown kid `{0}`")]
    UnknownKid(String),
    /// The MAC does not match: the token was forged or altered.
    #[error("decision token MAC does not match")]
    BadMac,
    /// The token is past its `expiresAt`.
    #[error("decision token has expired")]
    Expired,
}

impl TokenError {
    /// The ledger reason code: `TOKEN_EXPIRED` for an expired token, `TOKEN_INVALID` otherwise.
    pub fn reason(&self) -> ReasonCode {
        match self {
            TokenError::Expired => ReasonCode::TokenExpired,
            _ => ReasonCode::TokenInvalid,
        }
    }
}

/// Issues a token for `claims` under the ring's active kid.
pub fn issue(claims: &TokenClaims, keys: &KeyRing) -> String {
    let payload = serde_json::to_vec(claims).expect("TokenClaims always serializes");
    seal(TOKEN_MAC_TAG, &payload, keys, keys.active_kid())
}

/// Parses and checks MAC and expiry (now >= expires_at is expired). UnknownKid lets the caller
/// refetch the secret and retry.
pub fn verify(token: &str, keys: &KeyRing, now: u64) -> Result<TokenClaims, TokenError> {
    let payload = open(TOKEN_MAC_TAG, token, keys)?;
    // Parsed only once authenticated: an outsider never reaches the JSON parser.
    let claims: TokenClaims = serde_json::from_slice(&payload)
        .map_err(|_| TokenError::Malformed("payload is not decision-token claims"))?;
    if now >= claims.expires_at {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// The `v1.<kid>.<payload>.<mac>` envelope over `payload`, MACed under `kid` with `tag`.
/// `kid` must be in the ring.
pub(crate) fn seal(tag: &str, payload: &[u8], keys: &KeyRing, kid: &str) -> String {
    let mac = keys
        .mac(kid, tag, payload)
        .expect("tokens are sealed under a kid the ring holds");
    format!(
        "v1.{kid}.{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(mac)
    )
}

/// Checks an envelope's shape, kid and MAC under `tag`; returns the authenticated payload bytes.
pub(crate) fn open(tag: &str, token: &str, keys: &KeyRing) -> Result<Vec<u8>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("token is too long"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [version, kid, payload, mac] = parts[..] else {
        return Err(TokenError::Malformed("expected v1.<kid>.<payload>.<mac>"));
    };
    if version != "v1" {
        return Err(TokenError::Malformed("unsupported token version"));
    }
    // A kid no secret could hold is garbage, not a reason to refetch keys.
    if !is_valid_kid(kid) {
        return Err(TokenError::Malformed("kid"));
    }
    if !keys.has_kid(kid) {
        return Err(TokenError::UnknownKid(kid.to_string()));
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed("payload is not base64url"))?;
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| TokenError::Malformed("mac is not base64url"))?;
    if keys.verify_mac(kid, tag, &payload, &mac) != Some(true) {
        return Err(TokenError::BadMac);
    }
    Ok(payload)
}

/// The kid named by a token, without checking it (so a caller can decide to refetch keys).
pub fn token_kid(token: &str) -> Option<&str> {
    let mut parts = token.split('.');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("v1"), Some(kid), Some(_), Some(_), None) => Some(kid),
        _ => None,
    }
}

/// Lowercase hex SHA-256 of the token string (the ledger stores this digest on the hold).
pub fn token_digest(token: &str) -> String {
    hex_lower(&Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::{rotated_ring, test_ring};
    use proptest::prelude::*;

    fn golden_claims() -> TokenClaims {
        TokenClaims {
            payment_id: "3f1c0d9a2b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
                .to_string(),
            verification_id: "ver-0001".to_string(),
            audit_hash: "a".repeat(64),
            user_id: "user-123".to_string(),
            agent_id: "agent-research".to_string(),
            payment_session_id: "payment-session-42".to_string(),
            scheme: "exact".to_string(),
            network: "eip155:8453".to_string(),
            asset: "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913".to_string(),
            pay_to: "0x209693bc6afc0c5328ba36faf03c514ef312287c".to_string(),
            amount_atomic: "10000".to_string(),
            amount_micros: 10_000,
            resource_host: Some("api.example.com".to_string()),
            max_timeout_seconds: 300,
            policy_versions: PolicyVersions {
                global: Some(3),
                user: None,
                agent: Some(7),
            },
            consent_required: true,
            authorization_window_seconds: 300,
            issued_at: 1_790_000_000,
            expires_at: 1_790_000_000 + TOKEN_TTL_SECONDS,
            budgets: Vec::new(),
        }
    }

    /// Cross-checked against an independent implementation (Python hmac + json) of the format.
    const GOLDEN_TOKEN: &str = concat!(
        "v1.k2026-11.",
        "eyJwYXltZW50SWQiOiIzZjFjMGQ5YTJiNGU1ZjYwNzE4MjkzYTRiNWM2ZDdlOGY5MGExYjJjM2Q0ZTVm",
        "NjA3MTgyOTNhNGI1YzZkN2U4IiwidmVyaWZpY2F0aW9uSWQiOiJ2ZXItMDAwMSIsImF1ZGl0SGFzaCI6",
        "ImFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh",
        "YWFhYWEiLCJ1c2VySWQiOiJ1c2VyLTEyMyIsImFnZW50SWQiOiJhZ2VudC1yZXNlYXJjaCIsInBheW1l",
        "bnRTZXNzaW9uSWQiOiJwYXltZW50LXNlc3Npb24tNDIiLCJzY2hlbWUiOiJleGFjdCIsIm5ldHdvcmsi",
        "OiJlaXAxNTU6ODQ1MyIsImFzc2V0IjoiMHg4MzM1ODlmY2Q2ZWRiNmUwOGY0YzdjMzJkNGY3MWI1NGJk",
        "YTAyOTEzIiwicGF5VG8iOiIweDIwOTY5M2JjNmFmYzBjNTMyOGJhMzZmYWYwM2M1MTRlZjMxMjI4N2Mi",
        "LCJhbW91bnRBdG9taWMiOiIxMDAwMCIsImFtb3VudE1pY3JvcyI6MTAwMDAsInJlc291cmNlSG9zdCI6",
        "ImFwaS5leGFtcGxlLmNvbSIsIm1heFRpbWVvdXRTZWNvbmRzIjozMDAsInBvbGljeVZlcnNpb25zIjp7",
        "Imdsb2JhbCI6MywidXNlciI6bnVsbCwiYWdlbnQiOjd9LCJjb25zZW50UmVxdWlyZWQiOnRydWUsImF1",
        "dGhvcml6YXRpb25XaW5kb3dTZWNvbmRzIjozMDAsImlzc3VlZEF0IjoxNzkwMDAwMDAwLCJleHBpcmVz",
        "QXQiOjE3OTAwMDAwNjB9",
        ".ZqauM7kWwif6_iKMAw4tEdKSL_v6FGPIZv2zJI6aYE0",
    );

    /// A token with `payload` MACed correctly under the test key, kid `k2026-11`.
    fn token_over(payload: &[u8]) -> String {
        let mac = test_ring().mac("k2026-11", TOKEN_MAC_TAG, payload).unwrap();
        format!(
            "v1.k2026-11.{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    fn parts(token: &str) -> Vec<String> {
        token.split('.').map(str::to_string).collect()
    }

    const NOW: u64 = 1_790_000_010;

    #[test]
    fn golden_claims_issue_the_pinned_token() {
        assert_eq!(issue(&golden_claims(), &test_ring()), GOLDEN_TOKEN);
    }

    #[test]
    fn golden_vector_file_matches_issue_and_verify() {
        // GIVEN the shared vector file other implementations test against
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../tests/vectors/golden-v1.json")).unwrap();
        let keys = KeyRing::from_secret_json(vectors["secret"].as_str().unwrap()).unwrap();
        let v = &vectors["decisionToken"];
        let claims: TokenClaims = serde_json::from_value(v["claims"].clone()).unwrap();
        let token = v["token"].as_str().unwrap();
        // THEN issuing its claims gives its token, and the token checks out at its times
        assert_eq!(claims, golden_claims());
        assert_eq!(v["tag"], TOKEN_MAC_TAG);
        assert_eq!(issue(&claims, &keys), token);
        assert_eq!(token, GOLDEN_TOKEN);
        assert_eq!(v["tokenDigest"], token_digest(token).as_str());
        let valid_at = v["validAt"].as_u64().unwrap();
        let expired_at = v["expiredAt"].as_u64().unwrap();
        assert_eq!(verify(token, &keys, valid_at), Ok(claims));
        assert_eq!(verify(token, &keys, expired_at), Err(TokenError::Expired));
    }

    #[test]
    fn golden_token_verifies_to_its_claims() {
        assert_eq!(verify(GOLDEN_TOKEN, &test_ring(), NOW), Ok(golden_claims()));
    }

    #[test]
    fn payload_is_camel_case_json_with_absent_scopes_as_null() {
        let payload = URL_SAFE_NO_PAD.decode(&parts(GOLDEN_TOKEN)[2]).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(json["paymentSessionId"], "payment-session-42");
        assert_eq!(json["amountMicros"], 10_000);
        assert_eq!(
            json["policyVersions"],
            serde_json::json!({"global": 3, "user": null, "agent": 7})
        );
    }

    #[test]
    fn token_is_issued_under_the_active_kid_and_verifies_after_rotation() {
        // GIVEN a token issued before rotation
        let old = issue(&golden_claims(), &test_ring());
        let rotated = rotated_ring();
        // THEN the rotated ring still verifies it and issues new ones under the new kid
        assert_eq!(verify(&old, &rotated, NOW), Ok(golden_claims()));
        let new = issue(&golden_claims(), &rotated);
        assert_eq!(token_kid(&new), Some("k2026-12"));
        assert_eq!(verify(&new, &rotated, NOW), Ok(golden_claims()));
    }

    #[test]
    fn changed_payload_byte_is_a_bad_mac() {
        // GIVEN the golden payload with amountMicros 10000 changed to 90000
        let mut p = parts(GOLDEN_TOKEN);
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(&p[2]).unwrap()).unwrap();
        let altered = payload.replace("\"amountMicros\":10000", "\"amountMicros\":90000");
        assert_ne!(altered, payload);
        p[2] = URL_SAFE_NO_PAD.encode(altered);
        // THEN verification refuses it
        assert_eq!(
            verify(&p.join("."), &test_ring(), NOW),
            Err(TokenError::BadMac)
        );
    }

    #[test]
    fn changed_mac_is_a_bad_mac() {
        let mut p = parts(GOLDEN_TOKEN);
        let mut mac = URL_SAFE_NO_PAD.decode(&p[3]).unwrap();
        mac[31] ^= 1;
        p[3] = URL_SAFE_NO_PAD.encode(mac);
        assert_eq!(
            verify(&p.join("."), &test_ring(), NOW),
            Err(TokenError::BadMac)
        );
    }

    #[test]
    fn truncated_mac_is_a_bad_mac() {
        // verify_slice refuses a prefix of the right MAC, unlike a naive prefix comparison
        let mut p = parts(GOLDEN_TOKEN);
        let mac = URL_SAFE_NO_PAD.decode(&p[3]).unwrap();
        p[3] = URL_SAFE_NO_PAD.encode(&mac[..16]);
        assert_eq!(
            verify(&p.join("."), &test_ring(), NOW),
            Err(TokenError::BadMac)
        );
        p[3] = String::new();
        assert_eq!(
            verify(&p.join("."), &test_ring(), NOW),
            Err(TokenError::BadMac)
        );
    }

    #[test]
    fn kid_swapped_to_another_key_in_the_ring_is_a_bad_mac() {
        let mut p = parts(GOLDEN_TOKEN);
        p[1] = "k2026-12".to_string();
        assert_eq!(
            verify(&p.join("."), &rotated_ring(), NOW),
            Err(TokenError::BadMac)
        );
    }

    #[test]
    fn mac_for_another_use_is_a_bad_mac() {
        // GIVEN an audit MAC over the same payload bytes
        let mut p = parts(GOLDEN_TOKEN);
        let payload = URL_SAFE_NO_PAD.decode(&p[2]).unwrap();
        let audit_mac = test_ring()
            .mac("k2026-11", crate::audit::AUDIT_MAC_TAG, &payload)
            .unwrap();
        p[3] = URL_SAFE_NO_PAD.encode(audit_mac);
        assert_eq!(
            verify(&p.join("."), &test_ring(), NOW),
            Err(TokenError::BadMac)
        );
    }

    #[test]
    fn token_is_expired_at_expires_at_and_valid_one_second_before() {
        let expires_at = golden_claims().expires_at;
        assert_eq!(
            verify(GOLDEN_TOKEN, &test_ring(), expires_at),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(GOLDEN_TOKEN, &test_ring(), expires_at - 1),
            Ok(golden_claims())
        );
        assert_eq!(
            verify(GOLDEN_TOKEN, &test_ring(), u64::MAX),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn unknown_kid_is_reported_so_the_caller_can_refetch() {
        let mut p = parts(GOLDEN_TOKEN);
        p[1] = "k2027-01".to_string();
        let token = p.join(".");
        assert_eq!(
            verify(&token, &test_ring(), NOW),
            Err(TokenError::UnknownKid("k2027-01".to_string()))
        );
        assert_eq!(token_kid(&token), Some("k2027-01"));
    }

    #[test]
    fn wrong_part_count_is_malformed() {
        let shape = Err(TokenError::Malformed("expected v1.<kid>.<payload>.<mac>"));
        let p = parts(GOLDEN_TOKEN);
        assert_eq!(verify("", &test_ring(), NOW), shape);
        assert_eq!(verify(&p[..3].join("."), &test_ring(), NOW), shape);
        assert_eq!(
            verify(&format!("{GOLDEN_TOKEN}."), &test_ring(), NOW),
            shape
        );
        assert_eq!(
            verify(&format!("{GOLDEN_TOKEN}.x"), &test_ring(), NOW),
            shape
        );
    }

    #[test]
    fn other_version_is_malformed() {
        let token = format!("v2{}", &GOLDEN_TOKEN[2..]);
        assert_eq!(
            verify(&token, &test_ring(), NOW),
            Err(TokenError::Malformed("unsupported token version"))
        );
        assert_eq!(token_kid(&token), None);
    }

    #[test]
    fn invalid_kid_is_malformed_not_unknown() {
        let mut p = parts(GOLDEN_TOKEN);
        p[1] = "k 1".to_string();
        assert_eq!(
            verify(&p.join("."), &test_ring(), NOW),
            Err(TokenError::Malformed("kid"))
        );
        p[1] = String::new();
        assert_eq!(
            verify(&p.join("."), &test_ring(), NOW),
            Err(TokenError::Malformed("kid"))
        );
    }

    #[test]
    fn bad_base64_is_malformed() {
        let mut p = parts(GOLDEN_TOKEN);
        p[2].push('=');
        assert_eq!(
            verify(&p.join("."), &test_ring(), NOW),
            Err(TokenError::Malformed("payload is not base64url"))
        );
        let mut p = parts(GOLDEN_TOKEN);
        p[3] = p[3].replace(|c: char| c.is_ascii_alphabetic(), "+");
        assert_eq!(
            verify(&p.join("."), &test_ring(), NOW),
            Err(TokenError::Malformed("mac is not base64url"))
        );
    }

    #[test]
    fn non_canonical_base64_trailing_bits_are_malformed() {
        // GIVEN the MAC's last character changed so only its unused low bits differ
        let mut p = parts(GOLDEN_TOKEN);
        let last = p[3].pop().unwrap();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.iter().position(|&c| c == last as u8).unwrap();
        p[3].push(alphabet[index ^ 1] as char);
        // THEN it is refused rather than decoded to the same MAC
        assert_eq!(
            verify(&p.join("."), &test_ring(), NOW),
            Err(TokenError::Malformed("mac is not base64url"))
        );
    }

    #[test]
    fn authenticated_payload_that_is_not_claims_is_malformed() {
        let not_claims = Err(TokenError::Malformed(
            "payload is not decision-token claims",
        ));
        assert_eq!(verify(&token_over(b"{}"), &test_ring(), NOW), not_claims);
        assert_eq!(
            verify(&token_over(b"not json"), &test_ring(), NOW),
            not_claims
        );
        assert_eq!(verify(&token_over(b""), &test_ring(), NOW), not_claims);
    }

    #[test]
    fn authenticated_payload_with_an_unknown_field_is_malformed() {
        let mut json = serde_json::to_value(golden_claims()).unwrap();
        json["extra"] = serde_json::json!(1);
        let token = token_over(&serde_json::to_vec(&json).unwrap());
        assert_eq!(
            verify(&token, &test_ring(), NOW),
            Err(TokenError::Malformed(
                "payload is not decision-token claims"
            ))
        );
    }

    #[test]
    fn oversized_token_is_malformed_before_any_work() {
        let token = format!("v1.k2026-11.{}.x", "A".repeat(MAX_TOKEN_LEN));
        assert_eq!(
            verify(&token, &test_ring(), NOW),
            Err(TokenError::Malformed("token is too long"))
        );
    }

    #[test]
    fn reason_is_token_expired_only_for_expiry() {
        assert_eq!(TokenError::Expired.reason(), ReasonCode::TokenExpired);
        for e in [
            TokenError::Malformed("x"),
            TokenError::UnknownKid("k".to_string()),
            TokenError::BadMac,
        ] {
            assert_eq!(e.reason(), ReasonCode::TokenInvalid);
        }
    }

    #[test]
    fn token_kid_reads_the_kid_without_checking() {
        assert_eq!(token_kid(GOLDEN_TOKEN), Some("k2026-11"));
        assert_eq!(token_kid("v1.anything.x.y"), Some("anything"));
        assert_eq!(token_kid("v1.k.x"), None);
        assert_eq!(token_kid("v1.k.x.y.z"), None);
    }

    #[test]
    fn token_digest_is_lowercase_hex_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(
            token_digest(GOLDEN_TOKEN),
            token_digest(&format!("{GOLDEN_TOKEN} "))
        );
    }

    proptest! {
        #[test]
        fn verify_never_panics_on_arbitrary_strings(s in any::<String>()) {
            let _ = verify(&s, &test_ring(), NOW);
            let _ = token_kid(&s);
        }

        #[test]
        fn verify_never_panics_on_token_shaped_strings(
            kid in "[a-z0-9-]{0,10}", payload in "[A-Za-z0-9_=-]{0,200}", mac in "[A-Za-z0-9_=-]{0,60}"
        ) {
            let token = format!("v1.{kid}.{payload}.{mac}");
            prop_assert_ne!(verify(&token, &test_ring(), NOW).map(|_| ()), Ok(()));
        }

        #[test]
        fn any_single_character_change_is_refused(index in 0usize..512, replacement in "[A-Za-z0-9_.-]") {
            let index = index % GOLDEN_TOKEN.len();
            let mut token = GOLDEN_TOKEN.to_string();
            token.replace_range(index..=index, &replacement);
            prop_assume!(token != GOLDEN_TOKEN);
            prop_assert!(verify(&token, &rotated_ring(), NOW).is_err());
        }
    }
}
