//! The signed payment: v1 `X-PAYMENT` and v2 `PAYMENT-SIGNATURE`, and the terms the signature
//! commits to (recipient, value, asset, expiry), for comparison with the approved payment.

use serde_json::{Map, Value};

use super::fields::{
    base64_json_object, decimal_to_u64_saturating, decode_base64, err, object, optional_object,
    required_address, required_object, required_scheme, required_str, required_uint256,
    x402_version,
};
use super::payment_required::{parse_resource, resource_to_wire};
use super::{v1, v2, FieldError, WireKind};
use crate::address::{family, Family};
use crate::network::v1_network_to_caip2;

/// How the payment was authorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SignedKind {
    /// EIP-3009 `transferWithAuthorization` (USDC and other EIP-3009 tokens).
    Eip3009,
    /// Permit2 `permitWitnessTransferFrom` through the x402 proxy.
    Permit2,
    /// A partially signed Solana transaction (terms not yet decoded from it).
    Solana,
}

/// The terms a signature commits to, for comparison with the approved payment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedTerms {
    /// CAIP-2 network the payment is for.
    pub network: String,
    /// The token: v2 `accepted.asset` for EIP-3009, `permitted.token` for Permit2; v1 EIP-3009
    /// payments do not name it (the token is the EIP-712 verifying contract).
    pub asset: Option<String>,
    /// The recipient the signature pays (`authorization.to` / `witness.to`).
    pub to: String,
    /// The signed atomic amount, canonical decimal digits.
    pub value: String,
    /// Epoch seconds at which the authorization stops being settleable (exclusive: settleable
    /// only while now < valid_before). Permit2's inclusive `deadline` is shifted by one second.
    /// Values beyond `u64` saturate to `u64::MAX`.
    pub valid_before: Option<u64>,
    /// The authorisation mechanism.
    pub kind: SignedKind,
    /// The payer (`authorization.from` / `permit2Authorization.from`).
    pub from: String,
    /// Permit2 only: who may spend the permit (x402's proxy).
    pub spender: Option<String>,
    /// Permit2 `upto` only: the facilitator the witness binds (`witness.facilitator`).
    pub facilitator: Option<String>,
}

/// Parses an `X-PAYMENT` (v1) or `PAYMENT-SIGNATURE` (v2) header value (base64 JSON) into its
/// normalised JSON and, for EVM payloads, the terms the signature commits to. Solana payloads
/// return `None` terms: the transfer instruction inside the transaction is not decoded here.
pub fn parse_payment_header(
    kind: WireKind,
    b64: &str,
) -> Result<(Value, Option<SignedTerms>), FieldError> {
    if !matches!(kind, WireKind::XPayment | WireKind::PaymentSignature) {
        return Err(FieldError::new(
            kind.header_name(),
            "is not a payment header",
        ));
    }
    let value = base64_json_object(b64, kind.header_name())?;
    parse_value(kind, &value)
}

/// Parses a decoded payment envelope of the given header kind.
pub(crate) fn parse_value(
    kind: WireKind,
    value: &Value,
) -> Result<(Value, Option<SignedTerms>), FieldError> {
    let map = object(value, kind.header_name())?;
    let version = x402_version(map, "")?;
    match (kind, version) {
        (WireKind::XPayment, 1) => parse_v1(map),
        (WireKind::PaymentSignature, 2) => parse_v2(map),
        (WireKind::XPayment, _) => Err(FieldError::new(
            "x402Version",
            "X-PAYMENT carries x402 v1 (v2 payments use PAYMENT-SIGNATURE)",
        )),
        _ => Err(FieldError::new(
            "x402Version",
            "PAYMENT-SIGNATURE carries x402 v2 (v1 payments use X-PAYMENT)",
        )),
    }
}

/// v1: `{x402Version, scheme, network (v1 name), payload}`.
fn parse_v1(map: &Map<String, Value>) -> Result<(Value, Option<SignedTerms>), FieldError> {
    let scheme = required_scheme(map, "")?;
    let name = required_str(map, "", "network")?;
    let network = v1_network_to_caip2(name).ok_or_else(|| v1::unknown_v1_network("", "network"))?;
    let payload = map
        .get("payload")
        .ok_or_else(|| err("", "payload", "is required"))?;
    let (payload, terms) = parse_payload(payload, network, None)?;
    let mut out = Map::new();
    out.insert("x402Version".into(), 1.into());
    out.insert("scheme".into(), scheme.into());
    out.insert("network".into(), network.into());
    out.insert("payload".into(), payload);
    Ok((Value::Object(out), terms))
}

/// v2: `{x402Version, resource?, accepted, payload, extensions?}`.
fn parse_v2(map: &Map<String, Value>) -> Result<(Value, Option<SignedTerms>), FieldError> {
    let resource = match map.get("resource").filter(|v| !v.is_null()) {
        None => None,
        Some(_) => Some(parse_resource(
            required_object(map, "", "resource")?,
            "resource",
        )?),
    };
    let accepted = map
        .get("accepted")
        .filter(|v| !v.is_null())
        .ok_or_else(|| {
            err(
                "",
                "accepted",
                "is required (the requirement this payment accepts)",
            )
        })?;
    let url = resource.as_ref().map(|r| r.url.as_str());
    let requirement = v2::parse_entry(accepted, url).map_err(|e| e.within("accepted"))?;
    let payload = map
        .get("payload")
        .ok_or_else(|| err("", "payload", "is required"))?;
    let (payload, terms) = parse_payload(payload, &requirement.network, Some(&requirement.asset))?;
    let extensions = optional_object(map, "", "extensions")?;
    let mut out = Map::new();
    out.insert("x402Version".into(), 2.into());
    if let Some(resource) = &resource {
        out.insert("resource".into(), resource_to_wire(resource));
    }
    out.insert("accepted".into(), v2::to_wire(&requirement));
    out.insert("payload".into(), payload);
    if let Some(extensions) = extensions {
        out.insert("extensions".into(), extensions);
    }
    Ok((Value::Object(out), terms))
}

/// Parses the scheme payload for `network`; `asset` is the token named by the envelope, if any.
/// A payload carrying both an EIP-3009 and a Permit2 authorization is refused: which one a
/// facilitator would settle is not the payer's to guess.
pub fn parse_payload(
    payload: &Value,
    network: &str,
    asset: Option<&str>,
) -> Result<(Value, Option<SignedTerms>), FieldError> {
    let map = object(payload, "payload")?;
    if map.contains_key("authorization") && map.contains_key("permit2Authorization") {
        return Err(FieldError::new(
            "payload",
            "carries both an EIP-3009 authorization and a permit2Authorization",
        ));
    }
    match family(network) {
        Some(Family::Evm) if map.contains_key("authorization") => {
            parse_eip3009(map, network, asset).map(|(v, t)| (v, Some(t)))
        }
        Some(Family::Evm) if map.contains_key("permit2Authorization") => {
            parse_permit2(map, network).map(|(v, t)| (v, Some(t)))
        }
        Some(Family::Evm) => Err(FieldError::new(
            "payload",
            "an EVM payload must carry authorization (EIP-3009) or permit2Authorization",
        )),
        Some(Family::Solana) => parse_solana(map).map(|v| (v, None)),
        None => Err(FieldError::new(
            "payload",
            "unsupported network for a payment payload",
        )),
    }
}

/// A `0x` hex signature of whole bytes.
fn signature(map: &Map<String, Value>, prefix: &str) -> Result<String, FieldError> {
    let signature = required_str(map, prefix, "signature")?;
    let hex = signature
        .strip_prefix("0x")
        .or_else(|| signature.strip_prefix("0X"))
        .unwrap_or("");
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(prefix, "signature", "must be 0x followed by hex bytes"));
    }
    Ok(signature.to_string())
}

/// EIP-3009: `{signature, authorization: {from, to, value, validAfter, validBefore, nonce}}`.
fn parse_eip3009(
    map: &Map<String, Value>,
    network: &str,
    asset: Option<&str>,
) -> Result<(Value, SignedTerms), FieldError> {
    let signature = signature(map, "payload")?;
    let path = "payload.authorization";
    let auth = required_object(map, "payload", "authorization")?;
    let from = required_address(auth, path, "from", network)?;
    let to = required_address(auth, path, "to", network)?;
    let value = required_uint256(auth, path, "value", false)?;
    let valid_after = required_uint256(auth, path, "validAfter", true)?;
    let valid_before = required_uint256(auth, path, "validBefore", true)?;
    let nonce = required_str(auth, path, "nonce")?;
    let nonce_hex = nonce.strip_prefix("0x").unwrap_or("");
    if nonce_hex.len() != 64 || !nonce_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(
            path,
            "nonce",
            "must be 0x followed by 64 hex digits (bytes32)",
        ));
    }
    let normalised = serde_json::json!({
        "signature": signature,
        "authorization": {
            "from": from,
            "to": to,
            "value": value,
            "validAfter": valid_after,
            "validBefore": valid_before,
            "nonce": nonce,
        }
    });
    let terms = SignedTerms {
        network: network.to_string(),
        asset: asset.map(str::to_string),
        to: to.to_string(),
        value,
        valid_before: Some(decimal_to_u64_saturating(&valid_before)),
        kind: SignedKind::Eip3009,
        from: from.to_string(),
        spender: None,
        facilitator: None,
    };
    Ok((normalised, terms))
}

/// Permit2: `{signature, permit2Authorization: {from, permitted: {token, amount}, spender,
/// nonce, deadline, witness: {to, facilitator?, validAfter, extra?}}}` (`facilitator` in the
/// `upto` scheme's witness).
fn parse_permit2(
    map: &Map<String, Value>,
    network: &str,
) -> Result<(Value, SignedTerms), FieldError> {
    let signature = signature(map, "payload")?;
    let path = "payload.permit2Authorization";
    let auth = required_object(map, "payload", "permit2Authorization")?;
    let from = required_address(auth, path, "from", network)?;
    let permitted_path = format!("{path}.permitted");
    let permitted = required_object(auth, path, "permitted")?;
    let token = required_address(permitted, &permitted_path, "token", network)?;
    let amount = required_uint256(permitted, &permitted_path, "amount", false)?;
    let spender = required_address(auth, path, "spender", network)?;
    let nonce = required_uint256(auth, path, "nonce", true)?;
    let deadline = required_uint256(auth, path, "deadline", true)?;
    let witness_path = format!("{path}.witness");
    let witness = required_object(auth, path, "witness")?;
    let to = required_address(witness, &witness_path, "to", network)?;
    let valid_after = required_uint256(witness, &witness_path, "validAfter", true)?;
    let mut witness_out = serde_json::json!({"to": to, "validAfter": valid_after});
    // The `upto` witness also names the facilitator allowed to settle.
    let facilitator = match witness.get("facilitator") {
        None => None,
        Some(_) => Some(required_address(
            witness,
            &witness_path,
            "facilitator",
            network,
        )?),
    };
    if let Some(facilitator) = facilitator {
        witness_out["facilitator"] = facilitator.into();
    }
    if let Some(extra) = witness.get("extra") {
        witness_out["extra"] = extra.clone();
    }
    let normalised = serde_json::json!({
        "signature": signature,
        "permit2Authorization": {
            "from": from,
            "permitted": {"token": token, "amount": amount},
            "spender": spender,
            "nonce": nonce,
            "deadline": deadline,
            "witness": witness_out,
        }
    });
    let terms = SignedTerms {
        network: network.to_string(),
        asset: Some(token.to_string()),
        to: to.to_string(),
        value: amount,
        // Permit2 accepts block.timestamp == deadline; predebit expiries are exclusive.
        valid_before: Some(decimal_to_u64_saturating(&deadline).saturating_add(1)),
        kind: SignedKind::Permit2,
        from: from.to_string(),
        spender: Some(spender.to_string()),
        facilitator: facilitator.map(str::to_string),
    };
    Ok((normalised, terms))
}

/// Solana: `{transaction}`, a base64 partially signed transaction.
fn parse_solana(map: &Map<String, Value>) -> Result<Value, FieldError> {
    let transaction = required_str(map, "payload", "transaction")?;
    decode_base64(transaction, "payload.transaction")?;
    Ok(serde_json::json!({"transaction": transaction}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::testdata::*;
    use serde_json::json;

    fn x_payment(value: &Value) -> Result<(Value, Option<SignedTerms>), FieldError> {
        parse_payment_header(WireKind::XPayment, &b64(value))
    }

    fn payment_signature(value: &Value) -> Result<(Value, Option<SignedTerms>), FieldError> {
        parse_payment_header(WireKind::PaymentSignature, &b64(value))
    }

    #[test]
    fn v1_x_payment_yields_eip3009_terms() {
        // GIVEN a real-format X-PAYMENT header WHEN parsed THEN the signed terms are extracted
        let (_, terms) = x_payment(&v1_x_payment()).unwrap();
        assert_eq!(
            terms,
            Some(SignedTerms {
                network: "eip155:84532".into(),
                asset: None,
                to: PAY_TO.into(),
                value: "10000".into(),
                valid_before: Some(1_740_672_154),
                kind: SignedKind::Eip3009,
                from: PAYER.into(),
                spender: None,
                facilitator: None,
            })
        );
    }

    #[test]
    fn v1_x_payment_normalises_network_to_caip2() {
        // GIVEN an X-PAYMENT on "base-sepolia" WHEN parsed THEN the normalised network is CAIP-2
        let (normalised, _) = x_payment(&v1_x_payment()).unwrap();
        assert_eq!(normalised["network"], "eip155:84532");
        assert_eq!(normalised["payload"]["authorization"]["nonce"], NONCE);
    }

    #[test]
    fn integer_and_hex_timestamps_normalise_to_decimal_strings() {
        // GIVEN validAfter as a JSON integer and validBefore as hex WHEN parsed THEN both are decimal strings
        let mut header = v1_x_payment();
        header["payload"]["authorization"]["validAfter"] = json!(1_740_672_089u64);
        header["payload"]["authorization"]["validBefore"] = json!("0x67c0a19a");
        let (normalised, terms) = x_payment(&header).unwrap();
        let auth = &normalised["payload"]["authorization"];
        assert_eq!(auth["validAfter"], "1740672089");
        assert_eq!(auth["validBefore"], "1740677530");
        assert_eq!(terms.unwrap().valid_before, Some(1_740_677_530));
    }

    #[test]
    fn signed_value_must_be_a_string() {
        // GIVEN authorization.value as a JSON number WHEN parsed THEN refused on that path
        let mut header = v1_x_payment();
        header["payload"]["authorization"]["value"] = json!(10000);
        let e = x_payment(&header).unwrap_err();
        assert_eq!(e.field, "payload.authorization.value");
    }

    #[test]
    fn signed_value_refuses_fractions() {
        // GIVEN authorization.value "0.01" WHEN parsed THEN refused on that path
        let mut header = v1_x_payment();
        header["payload"]["authorization"]["value"] = json!("0.01");
        assert_eq!(
            x_payment(&header).unwrap_err().field,
            "payload.authorization.value"
        );
    }

    #[test]
    fn signed_recipient_must_be_a_valid_address() {
        // GIVEN authorization.to with a broken checksum WHEN parsed THEN refused on that path
        let mut header = v1_x_payment();
        header["payload"]["authorization"]["to"] = json!(PAY_TO.replacen('B', "b", 1));
        assert_eq!(
            x_payment(&header).unwrap_err().field,
            "payload.authorization.to"
        );
    }

    #[test]
    fn bad_nonce_and_signature_are_refused() {
        // GIVEN a short nonce, then a non-hex signature WHEN parsed THEN each path is named
        let mut header = v1_x_payment();
        header["payload"]["authorization"]["nonce"] = json!("0x1234");
        assert_eq!(
            x_payment(&header).unwrap_err().field,
            "payload.authorization.nonce"
        );
        let mut header = v1_x_payment();
        header["payload"]["signature"] = json!("deadbeef");
        assert_eq!(x_payment(&header).unwrap_err().field, "payload.signature");
    }

    #[test]
    fn payload_that_is_not_an_object_is_refused() {
        // GIVEN payload "0xabc" WHEN parsed THEN refused on payload
        let mut header = v1_x_payment();
        header["payload"] = json!("0xabc");
        let e = x_payment(&header).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            ("payload", "must be a JSON object")
        );
    }

    #[test]
    fn evm_payload_without_a_known_authorization_is_refused() {
        // GIVEN an EVM payload with only a signature WHEN parsed THEN refused on payload
        let mut header = v1_x_payment();
        header["payload"] = json!({"signature": SIGNATURE});
        assert_eq!(x_payment(&header).unwrap_err().field, "payload");
    }

    #[test]
    fn x_payment_refuses_v2_envelope() {
        // GIVEN a v2 envelope in X-PAYMENT WHEN parsed THEN refused on x402Version
        assert_eq!(
            x_payment(&v2_payment_signature()).unwrap_err().field,
            "x402Version"
        );
    }

    #[test]
    fn x_payment_refuses_string_version_and_unknown_network() {
        // GIVEN x402Version "1", then network "base-mainnet" WHEN parsed THEN each is named
        let mut header = v1_x_payment();
        header["x402Version"] = json!("1");
        assert_eq!(x_payment(&header).unwrap_err().field, "x402Version");
        let mut header = v1_x_payment();
        header["network"] = json!("base-mainnet");
        assert_eq!(x_payment(&header).unwrap_err().field, "network");
    }

    #[test]
    fn v2_payment_signature_takes_asset_from_accepted() {
        // GIVEN a real-format PAYMENT-SIGNATURE WHEN parsed THEN terms carry accepted.asset
        let (normalised, terms) = payment_signature(&v2_payment_signature()).unwrap();
        let terms = terms.unwrap();
        assert_eq!(terms.asset.as_deref(), Some(USDC_BASE_SEPOLIA));
        assert_eq!((terms.to.as_str(), terms.value.as_str()), (PAY_TO, "10000"));
        assert_eq!(normalised["accepted"]["amount"], "10000");
        assert_eq!(
            normalised["resource"]["url"],
            "https://api.example.com/premium-data"
        );
    }

    #[test]
    fn v2_payment_signature_without_accepted_is_refused() {
        // GIVEN a v2 envelope missing accepted WHEN parsed THEN refused on accepted
        let mut header = v2_payment_signature();
        header.as_object_mut().unwrap().remove("accepted");
        assert_eq!(payment_signature(&header).unwrap_err().field, "accepted");
    }

    #[test]
    fn v2_accepted_errors_are_prefixed() {
        // GIVEN accepted.network "base" WHEN parsed THEN refused on accepted.network
        let mut header = v2_payment_signature();
        header["accepted"]["network"] = json!("base");
        assert_eq!(
            payment_signature(&header).unwrap_err().field,
            "accepted.network"
        );
    }

    #[test]
    fn a_payload_with_both_authorizations_is_refused() {
        // GIVEN an EIP-3009 payload that also carries a Permit2 authorization
        let mut header = v2_payment_signature();
        header["payload"]["permit2Authorization"] =
            permit2_payload()["permit2Authorization"].clone();
        // THEN neither is guessed at
        assert_eq!(payment_signature(&header).unwrap_err().field, "payload");
    }

    #[test]
    fn v2_permit2_terms_pay_the_witness_and_shift_the_deadline() {
        // GIVEN a Permit2 payload WHEN parsed THEN to is witness.to and valid_before is deadline+1
        let mut header = v2_payment_signature();
        header["payload"] = permit2_payload();
        let (normalised, terms) = payment_signature(&header).unwrap();
        assert_eq!(
            terms,
            Some(SignedTerms {
                network: "eip155:84532".into(),
                asset: Some(USDC_BASE_SEPOLIA.into()),
                to: PAY_TO.into(),
                value: "10000".into(),
                valid_before: Some(1_740_672_155),
                kind: SignedKind::Permit2,
                from: PAYER.into(),
                spender: Some(PERMIT2_PROXY.into()),
                facilitator: None,
            })
        );
        let auth = &normalised["payload"]["permit2Authorization"];
        assert_eq!(auth["witness"]["extra"], "0x");
        assert_eq!(auth["nonce"], "42");
    }

    #[test]
    fn an_upto_witness_keeps_its_facilitator_and_refuses_one_that_is_no_address() {
        // GIVEN a Permit2 payload whose witness names a facilitator (the upto scheme's)
        let mut header = v2_payment_signature();
        let mut payload = permit2_payload();
        payload["permit2Authorization"]["witness"]["facilitator"] =
            json!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
        header["payload"] = payload.clone();
        // WHEN parsed THEN the normalised payload and the terms keep it
        let (normalised, terms) = payment_signature(&header).unwrap();
        let witness = &normalised["payload"]["permit2Authorization"]["witness"];
        assert_eq!(
            witness["facilitator"],
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
        );
        assert!(terms.unwrap().facilitator.is_some());
        // WHEN it is not an address THEN refused on its path, the value not echoed
        payload["permit2Authorization"]["witness"]["facilitator"] = json!("0xMARKER");
        header["payload"] = payload;
        let e = payment_signature(&header).unwrap_err();
        assert_eq!(e.field, "payload.permit2Authorization.witness.facilitator");
        assert!(!e.to_string().contains("MARKER"), "{e}");
    }

    #[test]
    fn permit2_missing_witness_recipient_is_refused() {
        // GIVEN a Permit2 payload without witness.to WHEN parsed THEN the path names it
        let mut header = v2_payment_signature();
        let mut payload = permit2_payload();
        payload["permit2Authorization"]["witness"]
            .as_object_mut()
            .unwrap()
            .remove("to");
        header["payload"] = payload;
        let e = payment_signature(&header).unwrap_err();
        assert_eq!(e.field, "payload.permit2Authorization.witness.to");
    }

    #[test]
    fn solana_payload_is_accepted_without_decoded_terms() {
        // GIVEN a v2 Solana payment WHEN parsed THEN normalised JSON but no terms
        let mut header = v2_payment_signature();
        header["accepted"]["network"] = json!("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp");
        header["accepted"]["asset"] = json!(USDC_SOLANA);
        header["accepted"]["payTo"] = json!(SOLANA_PAY_TO);
        header["payload"] = json!({"transaction": "AQIDBAUGBwg="});
        let (normalised, terms) = payment_signature(&header).unwrap();
        assert_eq!(terms, None);
        assert_eq!(normalised["payload"]["transaction"], "AQIDBAUGBwg=");
    }

    #[test]
    fn solana_payload_with_bad_base64_is_refused() {
        // GIVEN a Solana payload whose transaction is not base64 WHEN parsed THEN refused on it
        let mut header = v1_x_payment();
        header["network"] = json!("solana-devnet");
        header["payload"] = json!({"transaction": "%%%"});
        assert_eq!(x_payment(&header).unwrap_err().field, "payload.transaction");
    }

    #[test]
    fn non_payment_kind_is_refused() {
        // GIVEN the PAYMENT-RESPONSE kind WHEN parsing a payment header THEN refused
        let e = parse_payment_header(WireKind::PaymentResponse, "e30=").unwrap_err();
        assert_eq!(e.field, "PAYMENT-RESPONSE");
    }
}
