//! The facilitator's settlement result: v1 `X-PAYMENT-RESPONSE` and v2 `PAYMENT-RESPONSE`.
//!
//! Every field the x402 reference libraries emit is kept: `success`, `errorReason`,
//! `errorMessage`, `payer`, `transaction`, `network`, `amount` and `extensions` (the v2 spec's
//! SettlementResponse, plus `errorMessage`, which the TypeScript, Go and Python libraries add).
//! The informational fields are bounded so a merchant cannot make a settlement large: free text
//! (`errorReason`, `errorMessage`) is cut at [`MAX_FREE_TEXT_CHARS`] characters and an
//! `extensions` object whose compact JSON exceeds [`MAX_EXTENSIONS_BYTES`] is left out. Neither
//! ever refuses a settlement: the money may have moved, and the ledger must still record it.

use serde_json::{Map, Value};

use super::fields::{
    address_error, decode_base64, err, json_object, object, optional_object, optional_str,
    required_amount, required_bool, required_str,
};
use super::FieldError;
use crate::address::{base58_decode, family, validate_address, Family};
use crate::network::{v1_network_to_caip2, validate_caip2};

/// The most characters of free text (`errorReason`, `errorMessage`) kept from a settlement.
pub const MAX_FREE_TEXT_CHARS: usize = 1024;

/// The largest `extensions` object kept from a settlement, as compact JSON bytes.
pub const MAX_EXTENSIONS_BYTES: usize = 4096;

/// A parsed settlement response.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settlement {
    /// Whether the facilitator reports the transfer settled.
    pub success: bool,
    /// The facilitator's reason code on failure (e.g. `insufficient_funds`), at most
    /// [`MAX_FREE_TEXT_CHARS`] characters.
    pub error_reason: Option<String>,
    /// The facilitator's human-readable explanation of a failure, at most
    /// [`MAX_FREE_TEXT_CHARS`] characters.
    pub error_message: Option<String>,
    /// The paying address, if reported.
    pub payer: Option<String>,
    /// The transaction hash (EVM) or signature (Solana); may be empty on failure.
    pub transaction: String,
    /// CAIP-2 network (v1 names mapped).
    pub network: String,
    /// The settled atomic amount as the merchant reports it (information, not authority).
    pub amount: Option<String>,
    /// v2 protocol extensions data, as given, when its JSON is at most [`MAX_EXTENSIONS_BYTES`].
    pub extensions: Option<Value>,
}

/// Parses a settlement response: the raw base64 header value or its decoded JSON text.
pub fn parse_settlement(input: &str) -> Result<Settlement, FieldError> {
    let trimmed = input.trim();
    let value = if trimmed.starts_with('{') {
        json_object(trimmed.as_bytes(), "PAYMENT-RESPONSE")?
    } else {
        json_object(
            &decode_base64(trimmed, "PAYMENT-RESPONSE")?,
            "PAYMENT-RESPONSE",
        )?
    };
    parse_value(&value)
}

/// Parses a decoded settlement object.
pub(crate) fn parse_value(value: &Value) -> Result<Settlement, FieldError> {
    let map = object(value, "PAYMENT-RESPONSE")?;
    let success = required_bool(map, "", "success")?;
    let network = network(map)?;
    let transaction = match map.get("transaction") {
        None | Some(Value::Null) => return Err(err("", "transaction", "is required")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(err("", "transaction", "must be a string")),
    };
    let amount = match map.get("amount") {
        None | Some(Value::Null) => None,
        Some(_) => Some(required_amount(map, "", "amount")?),
    };
    // x402 `upto` settles nothing on chain when it charges 0: success with no transaction.
    if success && transaction.is_empty() && amount.as_deref() != Some("0") {
        return Err(err(
            "",
            "transaction",
            "must not be empty when success is true (unless amount is 0)",
        ));
    }
    if !transaction.is_empty() {
        check_transaction(&network, &transaction)?;
    }
    let payer = optional_str(map, "", "payer")?.filter(|p| !p.is_empty());
    if let Some(payer) = payer {
        validate_address(&network, payer).map_err(|e| address_error("", "payer", e))?;
    }
    let extensions = optional_object(map, "", "extensions")?
        .filter(|e| e.to_string().len() <= MAX_EXTENSIONS_BYTES);
    Ok(Settlement {
        success,
        error_reason: optional_str(map, "", "errorReason")?.map(free_text),
        error_message: optional_str(map, "", "errorMessage")?.map(free_text),
        payer: payer.map(str::to_string),
        transaction,
        network,
        amount,
        extensions,
    })
}

/// Free text kept to its first [`MAX_FREE_TEXT_CHARS`] characters.
fn free_text(text: &str) -> String {
    text.chars().take(MAX_FREE_TEXT_CHARS).collect()
}

/// The network as CAIP-2: a v1 name is mapped, anything else must be CAIP-2.
fn network(map: &Map<String, Value>) -> Result<String, FieldError> {
    let network = required_str(map, "", "network")?;
    if let Some(caip2) = v1_network_to_caip2(network) {
        return Ok(caip2.to_string());
    }
    validate_caip2(network).map_err(|e| err("", "network", e.to_string()))?;
    Ok(network.to_string())
}

/// An EVM transaction hash (0x + 64 hex) or a Solana signature (base58 of 64 bytes).
fn check_transaction(network: &str, transaction: &str) -> Result<(), FieldError> {
    let ok = match family(network) {
        Some(Family::Evm) => transaction
            .strip_prefix("0x")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())),
        Some(Family::Solana) => base58_decode(transaction).is_some_and(|b| b.len() == 64),
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(err(
            "",
            "transaction",
            "must be a transaction hash for the network (EVM: 0x + 64 hex; Solana: base58 signature)",
        ))
    }
}

/// The normalised wire JSON of a settlement.
pub(crate) fn to_wire(settlement: &Settlement) -> Value {
    let mut out = Map::new();
    out.insert("success".into(), settlement.success.into());
    if let Some(reason) = &settlement.error_reason {
        out.insert("errorReason".into(), reason.clone().into());
    }
    if let Some(message) = &settlement.error_message {
        out.insert("errorMessage".into(), message.clone().into());
    }
    if let Some(payer) = &settlement.payer {
        out.insert("payer".into(), payer.clone().into());
    }
    out.insert("transaction".into(), settlement.transaction.clone().into());
    out.insert("network".into(), settlement.network.clone().into());
    if let Some(amount) = &settlement.amount {
        out.insert("amount".into(), amount.clone().into());
    }
    if let Some(extensions) = &settlement.extensions {
        out.insert("extensions".into(), extensions.clone());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::testdata::*;
    use serde_json::json;

    #[test]
    fn successful_v2_settlement_parses_from_base64() {
        // GIVEN a base64 PAYMENT-RESPONSE WHEN parsed THEN every field is read
        let settlement = parse_settlement(&b64(&v2_settlement())).unwrap();
        assert_eq!(
            settlement,
            Settlement {
                success: true,
                error_reason: None,
                error_message: None,
                payer: Some(PAYER.into()),
                transaction: TX_HASH.into(),
                network: "eip155:84532".into(),
                amount: Some("10000".into()),
                extensions: None,
            }
        );
    }

    #[test]
    fn settlement_parses_from_decoded_json_text() {
        // GIVEN the same response as JSON text WHEN parsed THEN it equals the base64 parse
        let from_json = parse_settlement(&v2_settlement().to_string()).unwrap();
        assert_eq!(from_json, parse_settlement(&b64(&v2_settlement())).unwrap());
    }

    #[test]
    fn v1_settlement_network_name_maps_to_caip2() {
        // GIVEN an X-PAYMENT-RESPONSE on "base-sepolia" WHEN parsed THEN the network is CAIP-2
        let mut response = v2_settlement();
        response["network"] = json!("base-sepolia");
        response.as_object_mut().unwrap().remove("amount");
        let settlement = parse_settlement(&b64(&response)).unwrap();
        assert_eq!(settlement.network, "eip155:84532");
        assert_eq!(settlement.amount, None);
    }

    #[test]
    fn failed_settlement_may_have_empty_transaction() {
        // GIVEN success false with an empty transaction and a reason WHEN parsed THEN accepted
        let response = json!({
            "success": false,
            "errorReason": "insufficient_funds",
            "payer": "",
            "transaction": "",
            "network": "eip155:8453"
        });
        let settlement = parse_settlement(&response.to_string()).unwrap();
        assert!(!settlement.success);
        assert_eq!(
            settlement.error_reason.as_deref(),
            Some("insufficient_funds")
        );
        assert_eq!(settlement.payer, None);
        assert_eq!(settlement.transaction, "");
    }

    #[test]
    fn failed_settlement_keeps_every_field_the_libraries_emit() {
        // GIVEN a failed settlement as the reference facilitators write it
        let response = json!({
            "success": false,
            "errorReason": "invalid_exact_evm_payload_authorization_valid_before",
            "errorMessage": "the authorization expired before settlement",
            "payer": PAYER,
            "transaction": "",
            "network": "eip155:84532",
            "amount": "10000",
            "extensions": {"payment-identifier": {"id": "pay_7d5d747be160e280"}}
        });
        // WHEN parsed and written back
        let settlement = parse_settlement(&b64(&response)).unwrap();
        // THEN nothing is lost
        assert_eq!(
            settlement,
            Settlement {
                success: false,
                error_reason: Some("invalid_exact_evm_payload_authorization_valid_before".into()),
                error_message: Some("the authorization expired before settlement".into()),
                payer: Some(PAYER.into()),
                transaction: String::new(),
                network: "eip155:84532".into(),
                amount: Some("10000".into()),
                extensions: Some(json!({"payment-identifier": {"id": "pay_7d5d747be160e280"}})),
            }
        );
        assert_eq!(to_wire(&settlement), response);
    }

    #[test]
    fn free_text_is_cut_at_1024_characters_and_never_refuses_a_settlement() {
        // GIVEN a successful settlement whose free text is far too long (multi-byte characters)
        let mut response = v2_settlement();
        response["errorReason"] = json!("r".repeat(300_000));
        response["errorMessage"] = json!("é".repeat(MAX_FREE_TEXT_CHARS + 1));
        // WHEN parsed
        let settlement = parse_settlement(&response.to_string()).unwrap();
        // THEN it is accepted with the text cut to the bound
        assert!(settlement.success);
        assert_eq!(
            settlement.error_reason,
            Some("r".repeat(MAX_FREE_TEXT_CHARS))
        );
        assert_eq!(
            settlement.error_message,
            Some("é".repeat(MAX_FREE_TEXT_CHARS))
        );
    }

    #[test]
    fn oversized_extensions_are_left_out_and_never_refuse_a_settlement() {
        // GIVEN extensions at the bound, and one byte over it
        let fits = |bytes: usize| json!({"x": "a".repeat(bytes - r#"{"x":""}"#.len())});
        assert_eq!(
            fits(MAX_EXTENSIONS_BYTES).to_string().len(),
            MAX_EXTENSIONS_BYTES
        );
        let mut response = v2_settlement();
        response["extensions"] = fits(MAX_EXTENSIONS_BYTES);
        assert_eq!(
            parse_settlement(&response.to_string()).unwrap().extensions,
            Some(fits(MAX_EXTENSIONS_BYTES))
        );
        response["extensions"] = fits(MAX_EXTENSIONS_BYTES + 1);
        let settlement = parse_settlement(&response.to_string()).unwrap();
        // THEN the larger one is left out and the settlement still stands
        assert!(settlement.success);
        assert_eq!(settlement.extensions, None);
    }

    #[test]
    fn settlement_refuses_a_non_string_error_message_and_non_object_extensions() {
        let mut response = v2_settlement();
        response["errorMessage"] = json!(42);
        assert_eq!(
            parse_settlement(&response.to_string()).unwrap_err().field,
            "errorMessage"
        );
        let mut response = v2_settlement();
        response["extensions"] = json!(["a"]);
        assert_eq!(
            parse_settlement(&response.to_string()).unwrap_err().field,
            "extensions"
        );
    }

    #[test]
    fn successful_settlement_requires_a_transaction_hash() {
        // GIVEN success true with an empty, then a malformed, transaction WHEN parsed THEN refused
        for tx in ["", "0x1234"] {
            let mut response = v2_settlement();
            response["transaction"] = json!(tx);
            let e = parse_settlement(&response.to_string()).unwrap_err();
            assert_eq!(e.field, "transaction", "{tx:?}");
        }
    }

    #[test]
    fn a_successful_settlement_of_zero_may_have_no_transaction_and_only_zero() {
        // GIVEN success true, no transaction, amount "0" (an upto charge of nothing)
        let mut response = v2_settlement();
        response["transaction"] = json!("");
        response["amount"] = json!("0");
        // WHEN parsed THEN accepted
        let s = parse_settlement(&response.to_string()).unwrap();
        assert_eq!((s.success, s.transaction.as_str()), (true, ""));
        // WHEN the amount is anything else, or missing THEN the transaction is required
        for amount in [json!("1"), Value::Null] {
            response["amount"] = amount.clone();
            let e = parse_settlement(&response.to_string()).unwrap_err();
            assert!(
                ["transaction", "amount"].contains(&e.field.as_str()),
                "{amount}: {e}"
            );
        }
    }

    #[test]
    fn settlement_refuses_string_success_and_missing_network() {
        // GIVEN success "true", then no network WHEN parsed THEN each field is named
        let mut response = v2_settlement();
        response["success"] = json!("true");
        assert_eq!(
            parse_settlement(&response.to_string()).unwrap_err().field,
            "success"
        );
        let mut response = v2_settlement();
        response.as_object_mut().unwrap().remove("network");
        assert_eq!(
            parse_settlement(&response.to_string()).unwrap_err().field,
            "network"
        );
    }

    #[test]
    fn settlement_refuses_numeric_amount() {
        // GIVEN amount as a JSON number WHEN parsed THEN refused on amount
        let mut response = v2_settlement();
        response["amount"] = json!(10000);
        assert_eq!(
            parse_settlement(&response.to_string()).unwrap_err().field,
            "amount"
        );
    }

    #[test]
    fn settlement_refuses_bad_base64() {
        // GIVEN text that is neither JSON nor base64 WHEN parsed THEN refused on the header
        let e = parse_settlement("not-base64!").unwrap_err();
        assert_eq!(e.field, "PAYMENT-RESPONSE");
    }

    #[test]
    fn solana_settlement_takes_a_base58_signature() {
        // GIVEN a Solana settlement with a 64-byte base58 signature WHEN parsed THEN accepted
        let signature = "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW";
        let response = json!({
            "success": true,
            "transaction": signature,
            "network": "solana",
            "payer": SOLANA_PAY_TO
        });
        let settlement = parse_settlement(&response.to_string()).unwrap();
        assert_eq!(
            settlement.network,
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
        );
        assert_eq!(settlement.transaction, signature);
    }
}
