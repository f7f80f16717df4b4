//! Holds: the two-phase transfer of one payment against a session's budget.
//!
//! PENDING (reserved, not yet signed) -> SENT (signed and handed to the merchant: in doubt until
//! settled or unsettleable) -> POSTED | VOIDED. A settlement that arrives after a void still posts
//! the hold (`late: true`): no settlement is lost.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::address::{addresses_equal, normalize_address};
use crate::budget::CounterKey;
use crate::canonical::canonicalize;
use crate::decision::{SCHEME_EXACT, SCHEME_UPTO};
use crate::keys::KeyRing;

/// Domain tag of the MAC over a hold's immutable fields.
pub const HOLD_MAC_TAG: &str = "predebit/hold/v1";
/// How many shards the open-holds index spreads over.
pub const OPEN_SHARDS: u32 = 4;
/// A SENT hold stays open this long after its authorization's `validBefore`.
pub const SENT_MARGIN_SECONDS: u64 = 120;
/// Clock skew allowed between predebit and the signer: a signed `validBefore` may be this much
/// later than the decision's issue time plus the approved authorization window.
pub const VALID_BEFORE_SKEW_SECONDS: u64 = 30;
/// The most one `upto` settlement posts (2^53 micro-USD, about 9 billion USD): a merchant's
/// report above it is counted as this, so no session or counter arithmetic can overflow.
pub const MAX_POSTED_MICROS: u64 = 1 << 53;
/// Default window for a PENDING hold to be signed and marked sent.
pub const DEFAULT_PENDING_WINDOW_SECONDS: u64 = 120;

/// Where a hold is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldState {
    /// Reserved; the payment is not signed yet.
    Pending,
    /// Signed and sent; settlement is in doubt.
    Sent,
    /// Settled: the amount moved from reserved to settled.
    Posted,
    /// Released or expired: the amount went back to available.
    Voided,
}

impl HoldState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Sent => "SENT",
            Self::Posted => "POSTED",
            Self::Voided => "VOIDED",
        }
    }

    /// PENDING and SENT holds still hold budget.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Sent)
    }
}

/// The terms the wallet signed, as recorded by `markSent`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedRecord {
    /// The recipient the signature pays.
    pub to: String,
    /// Atomic amount signed.
    pub value: String,
    /// CAIP-2 network.
    pub network: String,
    /// The token contract or mint, when the payload names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// Epoch seconds after which the authorization cannot settle (exclusive).
    pub valid_before: u64,
    /// The authorization's nonce (EIP-3009 bytes32 hex, Permit2 decimal), when the caller names
    /// it: a second signature for the same hold differs in it, so markSent can tell it from a
    /// replay of the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// A successful settlement, as recorded by `commit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementRecord {
    /// The on-chain transaction.
    pub transaction: String,
    /// The payer the facilitator reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// The network the facilitator reports.
    pub network: String,
    /// The merchant's amount: information, not authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_amount: Option<String>,
}

/// One hold (`pk=SESSION#<id>, sk=HOLD#<paymentId>`). Field names are the stored attributes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    /// The idempotency key.
    pub payment_id: String,
    /// The session the hold draws on.
    pub payment_session_id: String,
    /// The agent that asked.
    pub agent_id: String,
    /// Current state.
    pub state: HoldState,
    /// Micro-USD held (and, for `exact`, posted).
    pub amount_micros: u64,
    /// The x402 scheme: `exact`, or `upto` (the amount held is the signed maximum and commit
    /// posts what the settlement reports). Stored only when not `exact`.
    #[serde(default = "exact", skip_serializing_if = "is_exact")]
    pub scheme: String,
    /// Atomic token amount approved.
    pub amount_atomic: String,
    /// CAIP-2 network approved.
    pub network: String,
    /// Asset approved (lowercase for EVM).
    pub asset: String,
    /// Recipient approved (lowercase for EVM).
    pub pay_to: String,
    /// The resource host, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_host: Option<String>,
    /// The requirement's maxTimeoutSeconds.
    pub max_timeout_seconds: u64,
    /// The latest `validBefore` markSent accepts (exclusive expiry of the authorization): the
    /// decision's issue time + the approved authorization window + the clock-skew allowance.
    /// A hold stored before holds carried it reads as 0: markSent then accepts no signature.
    #[serde(default)]
    pub latest_valid_before: u64,
    /// Digest of the payment's terms; a replay with another fingerprint is a conflict.
    pub fingerprint: String,
    /// The audit record that authorised the hold.
    pub audit_hash: String,
    /// SHA-256 of the decision token.
    pub token_digest: String,
    /// The decision's id.
    pub verification_id: String,
    /// Epoch seconds.
    pub created_at: u64,
    /// When an open hold expires (exclusive); kept after it closes, for the record.
    pub hold_expires_at: u64,
    /// The open-holds index partition; present only while the hold is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_shard: Option<String>,
    /// Set by markSent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<SignedRecord>,
    /// Set by markSent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<u64>,
    /// Set by a successful commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement: Option<SettlementRecord>,
    /// Set by a successful commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posted_at: Option<u64>,
    /// An `upto` hold's posted micro-USD (what the settlement charged, rounded up); the rest of
    /// the hold went back. Above `amount_micros` when a merchant reports more than was signed:
    /// the excess is the session's overdraft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_micros: Option<u64>,
    /// A settlement that arrived after the hold was voided.
    #[serde(default)]
    pub late: bool,
    /// Posted from PENDING: the settlement came but markSent never did.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mark_sent_missing: bool,
    /// Set by release or expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voided_at: Option<u64>,
    /// SIGNING_FAILED, NOT_SENT, SIGNED_PAYLOAD_MISMATCH, CANCELLED or EXPIRED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub void_reason: Option<String>,
    /// Failed settlements reported for this hold.
    #[serde(default)]
    pub settlement_failures: u32,
    /// The last failure's reason, as the facilitator gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_settlement_error: Option<String>,
    /// A settlement reported pending (x402 `settlement_pending`): the transaction the facilitator
    /// broadcast, not yet final. The hold stays SENT until a final response posts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_transaction: Option<String>,
    /// The budget counters the reserve charged: a void returns the amount to each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budget_counters: Vec<CounterKey>,
    /// Voided after its pooled session closed: the key (`POOL#<userId>#<poolId>`) of the pool the
    /// amount went back to; a late settlement takes it back from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned_to_pool: Option<String>,
    /// The request that made the hold's last change: a re-send of that request is recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request_id: Option<String>,
    /// The kid of `mac`.
    pub mac_kid: String,
    /// HMAC over the immutable fields (base64url, no padding).
    pub mac: String,
}

/// The terms that identify a payment; a replay must carry the same ones.
pub fn fingerprint(
    payment_session_id: &str,
    payment_id: &str,
    network: &str,
    asset: &str,
    pay_to: &str,
    amount_atomic: &str,
    amount_micros: u64,
) -> String {
    let doc = json!({
        "paymentSessionId": payment_session_id,
        "paymentId": payment_id,
        "network": network,
        "asset": normalize_address(network, asset),
        "payTo": normalize_address(network, pay_to),
        "amountAtomic": amount_atomic,
        "amountMicros": amount_micros,
    });
    let canonical = canonicalize(&doc).expect("strings and integers canonicalize");
    hex(&Sha256::digest(canonical.as_bytes()))
}

fn exact() -> String {
    SCHEME_EXACT.to_string()
}

fn is_exact(scheme: &String) -> bool {
    scheme == SCHEME_EXACT
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Hold {
    /// The canonical bytes the MAC covers: fields fixed when the hold is created.
    pub fn immutable_bytes(&self) -> String {
        let mut doc = json!({
            "paymentId": self.payment_id,
            "paymentSessionId": self.payment_session_id,
            "agentId": self.agent_id,
            "amountMicros": self.amount_micros,
            "amountAtomic": self.amount_atomic,
            "network": self.network,
            "asset": self.asset,
            "payTo": self.pay_to,
            "fingerprint": self.fingerprint,
            "auditHash": self.audit_hash,
            "tokenDigest": self.token_digest,
            "verificationId": self.verification_id,
            "createdAt": self.created_at,
            "latestValidBefore": self.latest_valid_before,
        });
        // Exact holds and holds without budgets keep their original bytes (and MACs).
        if !is_exact(&self.scheme) {
            doc["scheme"] = json!(self.scheme);
        }
        if !self.budget_counters.is_empty() {
            doc["budgetCounters"] =
                serde_json::to_value(&self.budget_counters).expect("counter keys serialize");
        }
        canonicalize(&doc).expect("strings and integers canonicalize")
    }

    /// Computes and sets `mac` and `mac_kid` under the ring's active key.
    pub fn seal(&mut self, keys: &KeyRing) {
        let kid = keys.active_kid().to_string();
        let mac = keys
            .mac(&kid, HOLD_MAC_TAG, self.immutable_bytes().as_bytes())
            .expect("the active kid is in the ring");
        self.mac = base64url(&mac);
        self.mac_kid = kid;
    }

    /// Whether `mac` matches the immutable fields (false for an unknown kid).
    pub fn mac_is_valid(&self, keys: &KeyRing) -> bool {
        keys.mac(
            &self.mac_kid,
            HOLD_MAC_TAG,
            self.immutable_bytes().as_bytes(),
        )
        .is_some_and(|m| constant_time_eq(base64url(&m).as_bytes(), self.mac.as_bytes()))
    }

    /// Whether commit posts what the settlement reports (`upto`) rather than the hold.
    pub fn is_upto(&self) -> bool {
        self.scheme == SCHEME_UPTO
    }

    /// The micro-USD a settlement of `reported_atomic` posts on this hold: the hold itself for
    /// `exact` (the signed amount is the charge, whatever the merchant reports) and for an `upto`
    /// settlement that reports no amount; else the reported share of the hold, rounded up (never
    /// less than was charged). Above the hold only when the report is (Permit2 cannot move more
    /// than was signed, so that report is false); at most [`MAX_POSTED_MICROS`].
    pub fn posted_micros(&self, reported_atomic: Option<&str>) -> u64 {
        let Some(reported) = reported_atomic.filter(|_| self.is_upto()) else {
            return self.amount_micros;
        };
        if reported == self.amount_atomic {
            return self.amount_micros;
        }
        let (Ok(reported), Ok(held)) =
            (reported.parse::<u128>(), self.amount_atomic.parse::<u128>())
        else {
            // Beyond u128 the report dwarfs any hold.
            return MAX_POSTED_MICROS.max(self.amount_micros);
        };
        if held == 0 {
            return self.amount_micros;
        }
        reported
            .checked_mul(u128::from(self.amount_micros))
            .map_or(u128::from(MAX_POSTED_MICROS), |n| n.div_ceil(held))
            .min(u128::from(MAX_POSTED_MICROS.max(self.amount_micros))) as u64
    }

    /// Whether the signed terms are the approved ones. `asset` is compared when the signed
    /// payload names it; the network always.
    pub fn signed_terms_match(&self, signed: &SignedRecord) -> bool {
        signed.network == self.network
            && addresses_equal(&self.network, &signed.to, &self.pay_to)
            && signed.value == self.amount_atomic
            && signed
                .asset
                .as_deref()
                .is_none_or(|a| addresses_equal(&self.network, a, &self.asset))
    }
}

/// The open-holds shard for a payment: spread by the payment id's first hex digit.
pub fn open_shard(payment_id: &str) -> String {
    let n = payment_id
        .bytes()
        .next()
        .map(|b| (b as u32) % OPEN_SHARDS)
        .unwrap_or(0);
    format!("OPEN#{n}")
}

/// Every shard label, for `expire`.
pub fn all_open_shards() -> Vec<String> {
    (0..OPEN_SHARDS).map(|n| format!("OPEN#{n}")).collect()
}

/// When a SENT hold expires: `validBefore + margin`, never earlier, so no signed authorization
/// outlives its hold. markSent bounds `validBefore` by [`Hold::latest_valid_before`].
pub fn sent_expires_at(valid_before: u64) -> u64 {
    valid_before.saturating_add(SENT_MARGIN_SECONDS)
}

fn base64url(bytes: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    URL_SAFE_NO_PAD.encode(bytes)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn keys() -> KeyRing {
        KeyRing::from_secret_json(&KeyRing::new_secret_json("k1", &[5; 32], &[6; 32])).unwrap()
    }

    fn sample_hold() -> Hold {
        fixture(&"ab".repeat(32), HoldState::Pending, 1_000_000, &keys())
    }

    /// A sealed hold on session `ps1`, made the way reserve makes one, then put in `state`.
    pub(crate) fn fixture(
        payment_id: &str,
        state: HoldState,
        amount_micros: u64,
        keys: &KeyRing,
    ) -> Hold {
        let claims = crate::token::TokenClaims {
            payment_id: payment_id.to_string(),
            verification_id: "v1".into(),
            audit_hash: "a".repeat(64),
            user_id: "u1".into(),
            agent_id: "a1".into(),
            payment_session_id: "ps1".into(),
            scheme: "exact".into(),
            network: "eip155:8453".into(),
            asset: "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913".into(),
            pay_to: "0x209693bc6afc0c5328ba36faf03c514ef312287c".into(),
            amount_atomic: amount_micros.to_string(),
            amount_micros,
            resource_host: None,
            max_timeout_seconds: 60,
            policy_versions: crate::records::PolicyVersions::default(),
            consent_required: false,
            authorization_window_seconds: 300,
            issued_at: 100,
            expires_at: 160,
            budgets: Vec::new(),
        };
        let mut hold = crate::ledger::new_hold(&claims, "token", keys, 100, 120);
        hold.state = state;
        if !state.is_open() {
            hold.open_shard = None;
        }
        hold
    }

    #[test]
    fn a_sealed_hold_verifies_and_an_edited_amount_does_not() {
        let hold = sample_hold();
        assert!(hold.mac_is_valid(&keys()));
        let mut edited = hold.clone();
        edited.amount_micros += 1;
        assert!(!edited.mac_is_valid(&keys()));
    }

    #[test]
    fn mutable_fields_do_not_break_the_mac() {
        let mut hold = sample_hold();
        hold.state = HoldState::Posted;
        hold.open_shard = None;
        hold.posted_at = Some(200);
        assert!(hold.mac_is_valid(&keys()));
    }

    #[test]
    fn signed_terms_match_case_insensitively_on_evm_and_refuse_any_difference() {
        let hold = sample_hold();
        let signed = SignedRecord {
            to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into(),
            value: "1000000".into(),
            network: "eip155:8453".into(),
            asset: None,
            valid_before: 500,
            nonce: None,
        };
        assert!(hold.signed_terms_match(&signed));
        assert!(!hold.signed_terms_match(&SignedRecord {
            value: "1000001".into(),
            ..signed.clone()
        }));
        assert!(!hold.signed_terms_match(&SignedRecord {
            to: "0x0000000000000000000000000000000000000001".into(),
            ..signed.clone()
        }));
        assert!(!hold.signed_terms_match(&SignedRecord {
            network: "eip155:84532".into(),
            ..signed.clone()
        }));
        assert!(!hold.signed_terms_match(&SignedRecord {
            asset: Some("0x0000000000000000000000000000000000000002".into()),
            ..signed
        }));
    }

    #[test]
    fn sent_expiry_is_valid_before_plus_margin_with_no_cap() {
        assert_eq!(sent_expires_at(1_000), 1_120);
        assert_eq!(sent_expires_at(100_000), 100_120);
        assert_eq!(sent_expires_at(u64::MAX), u64::MAX);
    }

    #[test]
    fn the_latest_valid_before_is_issue_time_plus_window_plus_skew_and_is_sealed() {
        // GIVEN a hold made from a token issued at 100 with a 300 s window
        let hold = sample_hold();
        assert_eq!(
            hold.latest_valid_before,
            100 + 300 + VALID_BEFORE_SKEW_SECONDS
        );
        // THEN widening it behind the ledger breaks the MAC
        let mut edited = hold.clone();
        edited.latest_valid_before += 1;
        assert!(!edited.mac_is_valid(&keys()));
    }

    #[test]
    fn the_fingerprint_ignores_address_case_and_changes_with_the_amount() {
        let a = fingerprint("ps", "p", "eip155:8453", "0xAB", "0xCD", "10", 10);
        let b = fingerprint("ps", "p", "eip155:8453", "0xab", "0xcd", "10", 10);
        let c = fingerprint("ps", "p", "eip155:8453", "0xab", "0xcd", "11", 11);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn shards_are_within_range() {
        for id in ["0", "f", "a1", ""] {
            assert!(all_open_shards().contains(&open_shard(id)));
        }
    }
}
