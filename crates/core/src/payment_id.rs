//! The paymentId: one id per payment attempt, shared by AgentCore (`clientToken`) and the ledger.
//!
//! Layout, version 1 (the plugin's `predebit_agentcore/payment_id.py` computes the same):
//!
//! ```text
//! requirementDigest = hex(SHA-256(canonical JSON of the selected accepts entry))
//! paymentId         = hex(SHA-256("predebit/paymentId/v1"
//!                                 || len32(paymentSessionId)  || paymentSessionId
//!                                 || len32(toolUseId)         || toolUseId
//!                                 || len32(requirementDigest) || requirementDigest
//!                                 || len32(attempt)           || attempt))
//! ```
//!
//! `len32` is the byte length as a 4-byte big-endian integer, so no field runs into the next;
//! `attempt` (1, 2, ...) is in decimal. The canonical JSON is RFC 8785, which for an entry as x402
//! sends it (string keys, integer numbers) is the plugin's `json.dumps(sort_keys=True,
//! separators=(",", ":"), ensure_ascii=False)` byte for byte.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical::{canonicalize, CanonicalError};
use crate::keys::hex_lower;

/// Domain tag of the paymentId hash.
pub const PAYMENT_ID_TAG: &str = "predebit/paymentId/v1";

/// Lowercase hex SHA-256 of the entry's canonical JSON. Refuses an entry holding a float (x402
/// entries carry integers and strings only).
pub fn requirement_digest(entry: &Value) -> Result<String, CanonicalError> {
    Ok(hex_lower(&Sha256::digest(canonicalize(entry)?.as_bytes())))
}

/// The 64-character lowercase hex paymentId of one signing attempt (`attempt` from 1).
pub fn payment_id(
    payment_session_id: &str,
    tool_use_id: &str,
    entry: &Value,
    attempt: u32,
) -> Result<String, CanonicalError> {
    let digest = requirement_digest(entry)?;
    let mut hash = Sha256::new();
    hash.update(PAYMENT_ID_TAG.as_bytes());
    for field in [
        payment_session_id,
        tool_use_id,
        digest.as_str(),
        &attempt.to_string(),
    ] {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        hash.update(len.to_be_bytes());
        hash.update(field.as_bytes());
    }
    Ok(hex_lower(&hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v2_entry() -> Value {
        json!({"scheme": "exact", "network": "eip155:84532", "amount": "10000",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "maxTimeoutSeconds": 60,
            "extra": {"name": "USDC", "version": "2"}})
    }

    // The expected values were computed by the plugin's payment_id.py, the layout's other
    // implementation, on the same inputs.
    #[test]
    fn a_v2_entry_gets_the_plugins_digest_and_payment_ids() {
        assert_eq!(
            requirement_digest(&v2_entry()).unwrap(),
            "cfe6c196f3349d47f51598551a066e8a9661534eb89af6ed3b359e09acd1a256"
        );
        assert_eq!(
            payment_id("ps-alice-main", "tooluse-1", &v2_entry(), 1).unwrap(),
            "bc23c83d7a31e298dd75a24d7eb9685f6995f56b24de05beea43af634ec70da7"
        );
        assert_eq!(
            payment_id("ps-alice-main", "tooluse-1", &v2_entry(), 2).unwrap(),
            "edd36040234d16efaa0613ff0284d363b8c93a5e0e4917257039e7462b973e7c"
        );
    }

    #[test]
    fn a_v1_entry_with_non_ascii_text_gets_the_plugins_payment_id() {
        let entry = json!({"scheme": "exact", "network": "base", "maxAmountRequired": "1000000",
            "resource": "https://api.weather.example/v1/forecast",
            "description": "Seven-day forecast — ünïcode", "mimeType": "application/json",
            "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "maxTimeoutSeconds": 60,
            "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            "extra": {"name": "USD Coin", "version": "2"}});
        assert_eq!(
            requirement_digest(&entry).unwrap(),
            "e5a968b4cac668374edf20d7832b3becd38a2f232e288a7c71c3a425eab2c42e"
        );
        assert_eq!(
            payment_id("ps-1", "t/2", &entry, 3).unwrap(),
            "ec260168a2757c02a52f64e623756a16b8dba6c48a38d67ec8d385158d0509cb"
        );
    }

    #[test]
    fn every_field_and_the_attempt_change_the_id_and_fields_cannot_run_together() {
        let base = payment_id("ps", "tu", &v2_entry(), 1).unwrap();
        assert_ne!(base, payment_id("ps", "tu", &v2_entry(), 2).unwrap());
        assert_ne!(base, payment_id("ps2", "tu", &v2_entry(), 1).unwrap());
        let mut other = v2_entry();
        other["amount"] = json!("10001");
        assert_ne!(base, payment_id("ps", "tu", &other, 1).unwrap());
        // "ps"+"tu" and "pst"+"u" spell the same bytes; the lengths keep them apart
        assert_ne!(
            payment_id("ps", "tu", &v2_entry(), 1).unwrap(),
            payment_id("pst", "u", &v2_entry(), 1).unwrap()
        );
    }

    #[test]
    fn an_entry_with_a_float_has_no_payment_id() {
        let mut entry = v2_entry();
        entry["maxTimeoutSeconds"] = json!(60.5);
        assert!(payment_id("ps", "tu", &entry, 1).is_err());
    }
}
