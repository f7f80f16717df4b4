//! Sealing the audit record every decision emits, and checking a sealed log line.
//!
//! The decision code builds the record (any JSON without floats); sealing canonicalizes it
//! (RFC 8785), hashes the canonical bytes with SHA-256 and MACs them under the active signing
//! key with the tag `predebit/audit/v1`. The hash is what holds carry; the MAC is what makes a
//! record impossible to forge without predebit's key.
//!
//! The log line is one JSON object:
//! `{"type":"predebit.audit","auditHash":"<hex>","auditMac":"<base64url>","kid":"<kid>","record":{..}}`
//! with the record written in its canonical form. A checker never trusts that form: it parses the
//! record, canonicalizes it again and recomputes both values.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical::{canonicalize, CanonicalError};
use crate::keys::{hex_lower, KeyRing};

/// Domain tag of the audit MAC.
pub const AUDIT_MAC_TAG: &str = "predebit/audit/v1";

/// The `type` field of every audit log line.
pub const AUDIT_LINE_TYPE: &str = "predebit.audit";

/// The sealed form: canonical JSON of the record, its hash and MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedAudit {
    /// The record in RFC 8785 canonical form.
    pub canonical: String,
    /// Lowercase hex SHA-256 of `canonical`.
    pub audit_hash: String,
    /// Base64url (no padding) HMAC-SHA256 of `canonical` under `kid`, tag `predebit/audit/v1`.
    pub audit_mac: String,
    /// The kid of the key that made `audit_mac`.
    pub kid: String,
}

/// Why an audit log line does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The line is not a JSON audit line; names the field at fault.
    #[error("not a predebit audit line: {0}")]
    Malformed(&'static str),
    /// The record has no canonical form (it holds a float).
    #[error("the audit record cannot be canonicalized: {0}")]
    NotCanonical(#[from] CanonicalError),
    /// `auditHash` is not the SHA-256 of the record: the record or the hash was altered.
    #[error("auditHash does not match the record; the record was altered")]
    HashMismatch,
    /// The line names a kid the key ring does not hold.
    #[error("the line was sealed under kid `{0}`, which the key ring does not hold")]
    UnknownKid(String),
    /// `auditMac` is not the MAC of the record under `kid`: the line was forged or altered.
    #[error("auditMac does not match the record; the line was forged or altered")]
    MacMismatch,
}

/// Canonicalizes `record`, then hashes and MACs it under the ring's active kid.
pub fn seal(record: &Value, keys: &KeyRing) -> Result<SealedAudit, CanonicalError> {
    Ok(seal_canonical(canonicalize(record)?, keys))
}

/// Hashes and MACs a record already in canonical form (written by
/// [`crate::canonical::CanonicalObject`]) under the ring's active kid.
pub fn seal_canonical(canonical: String, keys: &KeyRing) -> SealedAudit {
    let kid = keys.active_kid().to_string();
    let mac = keys
        .mac(&kid, AUDIT_MAC_TAG, canonical.as_bytes())
        .expect("a key ring always holds its active kid");
    SealedAudit {
        audit_hash: sha256_hex(canonical.as_bytes()),
        audit_mac: URL_SAFE_NO_PAD.encode(mac),
        kid,
        canonical,
    }
}

impl SealedAudit {
    /// The JSON log line: `{"type":"predebit.audit","auditHash":..,"auditMac":..,"kid":..,"record":..}`.
    pub fn log_line(&self) -> String {
        // The canonical record is embedded verbatim so the logged bytes are the hashed bytes.
        format!(
            "{{\"type\":{},\"auditHash\":{},\"auditMac\":{},\"kid\":{},\"record\":{}}}",
            Value::from(AUDIT_LINE_TYPE),
            Value::from(self.audit_hash.as_str()),
            Value::from(self.audit_mac.as_str()),
            Value::from(self.kid.as_str()),
            self.canonical
        )
    }
}

/// Recomputes hash and MAC of a log line (as produced by `log_line`); `Ok(())` when both match.
///
/// Fields other than the five of `log_line` are ignored: they are not covered by the MAC.
pub fn verify_log_line(line: &str, keys: &KeyRing) -> Result<(), AuditError> {
    let line: Value =
        serde_json::from_str(line).map_err(|_| AuditError::Malformed("line is not JSON"))?;
    if line.get("type").and_then(Value::as_str) != Some(AUDIT_LINE_TYPE) {
        return Err(AuditError::Malformed("type is not predebit.audit"));
    }
    let field = |name: &'static str| {
        line.get(name)
            .and_then(Value::as_str)
            .ok_or(AuditError::Malformed(name))
    };
    let audit_hash = field("auditHash")?;
    let audit_mac = field("auditMac")?;
    let kid = field("kid")?;
    let record = line.get("record").ok_or(AuditError::Malformed("record"))?;

    let canonical = canonicalize(record)?;
    if sha256_hex(canonical.as_bytes()) != audit_hash {
        return Err(AuditError::HashMismatch);
    }
    let mac = URL_SAFE_NO_PAD
        .decode(audit_mac)
        .map_err(|_| AuditError::Malformed("auditMac"))?;
    match keys.verify_mac(kid, AUDIT_MAC_TAG, canonical.as_bytes(), &mac) {
        None => Err(AuditError::UnknownKid(kid.to_string())),
        Some(false) => Err(AuditError::MacMismatch),
        Some(true) => Ok(()),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex_lower(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::{rotated_ring, test_ring};
    use serde_json::json;

    fn golden_record() -> Value {
        json!({
            "version": 1,
            "verificationId": "ver-0001",
            "paymentId": "3f1c0d9a2b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8",
            "decision": "YES",
            "reasonCode": "APPROVED",
            "userPseudonym": "5d374a947bf0d5c029f58f6d2178d7174570023d4f531ea9bb6ad91b931f9363",
            "agentId": "agent-research",
            "paymentSessionId": "payment-session-42",
            "network": "eip155:8453",
            "asset": "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913",
            "payTo": "0x209693bc6afc0c5328ba36faf03c514ef312287c",
            "amountAtomic": "10000",
            "amountMicros": 10000,
            "resourceHost": "api.example.com",
            "policyVersions": {"global": 3, "user": null, "agent": 7},
            "decidedAt": 1_790_000_000u64,
        })
    }

    const GOLDEN_CANONICAL: &str = concat!(
        r#"{"agentId":"agent-research","amountAtomic":"10000","amountMicros":10000,"#,
        r#""asset":"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913","decidedAt":1790000000,"#,
        r#""decision":"YES","network":"eip155:8453","#,
        r#""payTo":"0x209693bc6afc0c5328ba36faf03c514ef312287c","#,
        r#""paymentId":"3f1c0d9a2b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8","#,
        r#""paymentSessionId":"payment-session-42","#,
        r#""policyVersions":{"agent":7,"global":3,"user":null},"reasonCode":"APPROVED","#,
        r#""resourceHost":"api.example.com","#,
        r#""userPseudonym":"5d374a947bf0d5c029f58f6d2178d7174570023d4f531ea9bb6ad91b931f9363","#,
        r#""verificationId":"ver-0001","version":1}"#,
    );
    const GOLDEN_HASH: &str = "ae586b196672ebd30b1a3ef3338a2a02b4c86b1ad69e09220e2329957e34d9a7";
    const GOLDEN_MAC: &str = "lTz76SQw8SZ3xHdmWLDe6G5fWEXTjPC64cBqlHP46p8";

    #[test]
    fn golden_canonical_literal_is_the_whole_record() {
        assert_eq!(
            serde_json::from_str::<Value>(GOLDEN_CANONICAL).unwrap(),
            golden_record()
        );
    }

    #[test]
    fn golden_record_seals_to_pinned_canonical_hash_and_mac() {
        // GIVEN a fixed record and the fixed test key
        // WHEN sealed
        let sealed = seal(&golden_record(), &test_ring()).unwrap();
        // THEN every output is the pinned literal
        assert_eq!(sealed.canonical, GOLDEN_CANONICAL);
        assert_eq!(sealed.audit_hash, GOLDEN_HASH);
        assert_eq!(sealed.audit_mac, GOLDEN_MAC);
        assert_eq!(sealed.kid, "k2026-11");
    }

    #[test]
    fn golden_vector_file_matches_seal_and_verifies() {
        // GIVEN the shared vector file other implementations test against
        let vectors: Value =
            serde_json::from_str(include_str!("../tests/vectors/golden-v1.json")).unwrap();
        let keys = KeyRing::from_secret_json(vectors["secret"].as_str().unwrap()).unwrap();
        let audit = &vectors["audit"];
        // WHEN its record is sealed THEN every output equals the file's
        let sealed = seal(&audit["record"], &keys).unwrap();
        assert_eq!(audit["tag"], AUDIT_MAC_TAG);
        assert_eq!(audit["canonical"], sealed.canonical.as_str());
        assert_eq!(audit["auditHash"], sealed.audit_hash.as_str());
        assert_eq!(audit["auditMac"], sealed.audit_mac.as_str());
        assert_eq!(audit["kid"], sealed.kid.as_str());
        assert_eq!(audit["logLine"], sealed.log_line().as_str());
        assert_eq!(sealed.canonical, GOLDEN_CANONICAL);
        assert_eq!(
            verify_log_line(audit["logLine"].as_str().unwrap(), &keys),
            Ok(())
        );
    }

    #[test]
    fn golden_log_line_is_pinned() {
        let line = seal(&golden_record(), &test_ring()).unwrap().log_line();
        assert_eq!(
            line,
            format!(
                "{{\"type\":\"predebit.audit\",\"auditHash\":\"{GOLDEN_HASH}\",\
                 \"auditMac\":\"{GOLDEN_MAC}\",\"kid\":\"k2026-11\",\"record\":{GOLDEN_CANONICAL}}}"
            )
        );
    }

    #[test]
    fn changing_any_field_changes_hash_and_mac() {
        let keys = test_ring();
        let golden = seal(&golden_record(), &keys).unwrap();
        let Value::Object(fields) = golden_record() else {
            unreachable!()
        };
        for name in fields.keys() {
            let mut record = golden_record();
            record[name] = json!("changed");
            let sealed = seal(&record, &keys).unwrap();
            assert_ne!(sealed.audit_hash, golden.audit_hash, "{name}");
            assert_ne!(sealed.audit_mac, golden.audit_mac, "{name}");
        }
    }

    #[test]
    fn changing_one_byte_of_the_canonical_form_changes_hash_and_mac() {
        let keys = test_ring();
        let golden = seal(&golden_record(), &keys).unwrap();
        // "amountMicros":10000 -> 10001
        let altered: Value =
            serde_json::from_str(&golden.canonical.replace(":10000,", ":10001,")).unwrap();
        let sealed = seal(&altered, &keys).unwrap();
        assert_eq!(sealed.canonical.len(), golden.canonical.len());
        assert_ne!(sealed.audit_hash, golden.audit_hash);
        assert_ne!(sealed.audit_mac, golden.audit_mac);
    }

    #[test]
    fn member_order_of_the_input_does_not_change_the_seal() {
        let keys = test_ring();
        let reordered: Value = serde_json::from_str(
            r#"{"decidedAt":1790000000,"policyVersions":{"agent":7,"user":null,"global":3},
                "resourceHost":"api.example.com","amountMicros":10000,"amountAtomic":"10000",
                "payTo":"0x209693bc6afc0c5328ba36faf03c514ef312287c",
                "asset":"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913","network":"eip155:8453",
                "paymentSessionId":"payment-session-42","agentId":"agent-research",
                "userPseudonym":"5d374a947bf0d5c029f58f6d2178d7174570023d4f531ea9bb6ad91b931f9363","reasonCode":"APPROVED","decision":"YES",
                "paymentId":"3f1c0d9a2b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8",
                "verificationId":"ver-0001","version":1}"#,
        )
        .unwrap();
        assert_eq!(
            seal(&reordered, &keys).unwrap(),
            seal(&golden_record(), &keys).unwrap()
        );
    }

    #[test]
    fn record_with_a_float_is_refused() {
        let mut record = golden_record();
        record["amountMicros"] = json!(0.01);
        assert_eq!(
            seal(&record, &test_ring()),
            Err(CanonicalError::NonIntegerNumber("0.01".to_string()))
        );
    }

    #[test]
    fn sealed_line_verifies() {
        let keys = test_ring();
        let line = seal(&golden_record(), &keys).unwrap().log_line();
        assert_eq!(verify_log_line(&line, &keys), Ok(()));
    }

    #[test]
    fn reformatted_line_with_the_same_record_verifies() {
        // GIVEN a log pipeline that re-serializes the line with other spacing and member order
        let keys = test_ring();
        let line = seal(&golden_record(), &keys).unwrap().log_line();
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(&line).unwrap()).unwrap();
        // THEN it still verifies, because the record is canonicalized again
        assert_eq!(verify_log_line(&pretty, &keys), Ok(()));
    }

    #[test]
    fn tampered_record_fails_with_hash_mismatch() {
        let keys = test_ring();
        let line = seal(&golden_record(), &keys).unwrap().log_line();
        let tampered = line.replace("\"decision\":\"YES\"", "\"decision\":\"NO\"");
        assert_ne!(tampered, line);
        assert_eq!(
            verify_log_line(&tampered, &keys),
            Err(AuditError::HashMismatch)
        );
    }

    #[test]
    fn tampered_record_with_recomputed_hash_fails_with_mac_mismatch() {
        // GIVEN a forger who alters the record and recomputes its (unkeyed) hash
        let keys = test_ring();
        let sealed = seal(&golden_record(), &keys).unwrap();
        let mut record = golden_record();
        record["amountMicros"] = json!(1);
        let forged = SealedAudit {
            audit_hash: sha256_hex(canonicalize(&record).unwrap().as_bytes()),
            canonical: canonicalize(&record).unwrap(),
            ..sealed
        };
        // THEN the MAC gives it away
        assert_eq!(
            verify_log_line(&forged.log_line(), &keys),
            Err(AuditError::MacMismatch)
        );
    }

    #[test]
    fn altered_mac_fails() {
        let keys = test_ring();
        let mut sealed = seal(&golden_record(), &keys).unwrap();
        let mut mac = URL_SAFE_NO_PAD.decode(&sealed.audit_mac).unwrap();
        mac[0] ^= 0x80;
        sealed.audit_mac = URL_SAFE_NO_PAD.encode(mac);
        assert_eq!(
            verify_log_line(&sealed.log_line(), &keys),
            Err(AuditError::MacMismatch)
        );
    }

    #[test]
    fn line_relabelled_with_another_kid_in_the_ring_fails() {
        let keys = rotated_ring();
        let mut sealed = seal(&golden_record(), &test_ring()).unwrap();
        sealed.kid = "k2026-12".to_string();
        assert_eq!(
            verify_log_line(&sealed.log_line(), &keys),
            Err(AuditError::MacMismatch)
        );
    }

    #[test]
    fn line_under_a_retired_kid_still_in_the_ring_verifies() {
        // GIVEN a line sealed before rotation, when k2026-11 was active
        let line = seal(&golden_record(), &test_ring()).unwrap().log_line();
        // WHEN checked with the rotated ring (k2026-12 active, k2026-11 retained)
        let rotated = rotated_ring();
        // THEN it verifies, and new lines are sealed under the new kid
        assert_eq!(verify_log_line(&line, &rotated), Ok(()));
        assert_eq!(seal(&golden_record(), &rotated).unwrap().kid, "k2026-12");
    }

    #[test]
    fn line_under_a_kid_dropped_from_the_ring_is_unknown() {
        let mut sealed = seal(&golden_record(), &test_ring()).unwrap();
        sealed.kid = "k2025-01".to_string();
        assert_eq!(
            verify_log_line(&sealed.log_line(), &test_ring()),
            Err(AuditError::UnknownKid("k2025-01".to_string()))
        );
    }

    #[test]
    fn audit_mac_is_not_a_decision_token_mac() {
        let keys = test_ring();
        let sealed = seal(&golden_record(), &keys).unwrap();
        let token_mac = keys
            .mac(
                "k2026-11",
                "predebit/decision-token/v1",
                sealed.canonical.as_bytes(),
            )
            .unwrap();
        assert_ne!(sealed.audit_mac, URL_SAFE_NO_PAD.encode(token_mac));
    }

    #[test]
    fn malformed_lines_name_what_is_wrong() {
        let keys = test_ring();
        let line: Value =
            serde_json::from_str(&seal(&golden_record(), &keys).unwrap().log_line()).unwrap();
        let without = |field: &str| {
            let mut l = line.clone();
            l.as_object_mut().unwrap().remove(field);
            l.to_string()
        };
        assert_eq!(
            verify_log_line("not json", &keys),
            Err(AuditError::Malformed("line is not JSON"))
        );
        assert_eq!(
            verify_log_line(&without("type"), &keys),
            Err(AuditError::Malformed("type is not predebit.audit"))
        );
        for field in ["auditHash", "auditMac", "kid", "record"] {
            assert_eq!(
                verify_log_line(&without(field), &keys),
                Err(AuditError::Malformed(field))
            );
        }
        let mut bad_mac = line.clone();
        bad_mac["auditMac"] = json!("not base64url!");
        assert_eq!(
            verify_log_line(&bad_mac.to_string(), &keys),
            Err(AuditError::Malformed("auditMac"))
        );
    }
}
