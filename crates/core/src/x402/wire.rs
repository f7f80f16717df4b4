//! Wire decoding for `predebit x402 decode`: any x402 header or 402 body to normalised JSON.

use serde_json::Value;

use super::fields::{decode_base64, json_object, object};
use super::{payment, payment_required, settlement, FieldError};

/// The kinds of x402 values found on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireKind {
    /// A 402 response body (v1; v2 JSON accepted too).
    PaymentRequiredBody,
    /// The v2 `PAYMENT-REQUIRED` header.
    PaymentRequiredHeader,
    /// The v1 `X-PAYMENT` header.
    XPayment,
    /// The v2 `PAYMENT-SIGNATURE` header.
    PaymentSignature,
    /// The v1 `X-PAYMENT-RESPONSE` header.
    XPaymentResponse,
    /// The v2 `PAYMENT-RESPONSE` header.
    PaymentResponse,
}

impl WireKind {
    /// The kind carried by an HTTP header name (case-insensitive), if it is an x402 header.
    pub fn from_header_name(name: &str) -> Option<WireKind> {
        let name = name.trim();
        [
            WireKind::PaymentRequiredHeader,
            WireKind::XPayment,
            WireKind::PaymentSignature,
            WireKind::XPaymentResponse,
            WireKind::PaymentResponse,
        ]
        .into_iter()
        .find(|kind| kind.header_name().eq_ignore_ascii_case(name))
    }

    /// The header name of this kind (`body` for the 402 body).
    pub fn header_name(self) -> &'static str {
        match self {
            WireKind::PaymentRequiredBody => "body",
            WireKind::PaymentRequiredHeader => "PAYMENT-REQUIRED",
            WireKind::XPayment => "X-PAYMENT",
            WireKind::PaymentSignature => "PAYMENT-SIGNATURE",
            WireKind::XPaymentResponse => "X-PAYMENT-RESPONSE",
            WireKind::PaymentResponse => "PAYMENT-RESPONSE",
        }
    }
}

/// Decodes one wire value and returns normalised JSON (networks as CAIP-2, amounts as decimal
/// strings, the protocol's field names). With kind None: a 402 body if the input is a JSON
/// object with x402Version+accepts, else base64 header kinds tried by shape.
pub fn decode_wire(kind: Option<WireKind>, input: &str) -> Result<Value, FieldError> {
    decode_wire_detected(kind, input).map(|(_, value)| value)
}

/// Like [`decode_wire`], also returning the kind decoded (the detected one when `kind` is None).
pub fn decode_wire_detected(
    kind: Option<WireKind>,
    input: &str,
) -> Result<(WireKind, Value), FieldError> {
    match kind {
        Some(kind) => decode_as(kind, input).map(|value| (kind, value)),
        None => detect(input),
    }
}

/// Decodes `input` as the given kind; headers are base64 (settlements may also be JSON text).
fn decode_as(kind: WireKind, input: &str) -> Result<Value, FieldError> {
    match kind {
        WireKind::PaymentRequiredBody => {
            let raw = json_object(input.as_bytes(), kind.header_name())?;
            let offer = payment_required::parse_value(&raw)?;
            Ok(payment_required::to_wire(&offer, &raw))
        }
        WireKind::XPaymentResponse | WireKind::PaymentResponse => {
            settlement::parse_settlement(input).map(|s| settlement::to_wire(&s))
        }
        _ => {
            let raw = json_object(
                &decode_base64(input, kind.header_name())?,
                kind.header_name(),
            )?;
            decode_value(kind, &raw)
        }
    }
}

/// Normalises an already decoded object as the given kind.
fn decode_value(kind: WireKind, raw: &Value) -> Result<Value, FieldError> {
    match kind {
        WireKind::PaymentRequiredBody => {
            let offer = payment_required::parse_value(raw)?;
            Ok(payment_required::to_wire(&offer, raw))
        }
        WireKind::PaymentRequiredHeader => {
            let offer = payment_required::parse_header_value(raw)?;
            Ok(payment_required::to_wire(&offer, raw))
        }
        WireKind::XPayment | WireKind::PaymentSignature => {
            payment::parse_value(kind, raw).map(|(value, _)| value)
        }
        WireKind::XPaymentResponse | WireKind::PaymentResponse => {
            settlement::parse_value(raw).map(|s| settlement::to_wire(&s))
        }
    }
}

/// Detects the kind of `input` (JSON text or base64 of it) by its shape and decodes it.
fn detect(input: &str) -> Result<(WireKind, Value), FieldError> {
    let trimmed = input.trim();
    let raw = if trimmed.starts_with('{') {
        json_object(trimmed.as_bytes(), "input")?
    } else {
        json_object(&decode_base64(trimmed, "input")?, "input").map_err(|e| {
            FieldError::new(e.field, format!("{} (after base64 decoding)", e.problem))
        })?
    };
    let map = object(&raw, "input")?;
    let version = map.get("x402Version").and_then(Value::as_u64);
    let kind = if map.contains_key("accepts") {
        match (trimmed.starts_with('{'), version) {
            (false, Some(2)) => WireKind::PaymentRequiredHeader,
            _ => WireKind::PaymentRequiredBody,
        }
    } else if map.contains_key("payload") || map.contains_key("accepted") {
        match version {
            Some(1) => WireKind::XPayment,
            _ => WireKind::PaymentSignature,
        }
    } else if map.contains_key("success") || map.contains_key("transaction") {
        match map.get("network").and_then(Value::as_str) {
            Some(n) if !n.contains(':') => WireKind::XPaymentResponse,
            _ => WireKind::PaymentResponse,
        }
    } else {
        return Err(FieldError::new(
            "input",
            "not a recognised x402 value (expected accepts, payload/accepted, or success/transaction)",
        ));
    };
    decode_value(kind, &raw).map(|value| (kind, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::testdata::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn header_names_map_case_insensitively() {
        // GIVEN header names in various cases WHEN looked up THEN the kind is found
        assert_eq!(
            WireKind::from_header_name("payment-required"),
            Some(WireKind::PaymentRequiredHeader)
        );
        assert_eq!(
            WireKind::from_header_name("X-Payment"),
            Some(WireKind::XPayment)
        );
        assert_eq!(
            WireKind::from_header_name("PAYMENT-SIGNATURE"),
            Some(WireKind::PaymentSignature)
        );
        assert_eq!(
            WireKind::from_header_name("x-payment-response"),
            Some(WireKind::XPaymentResponse)
        );
        assert_eq!(
            WireKind::from_header_name("Payment-Response"),
            Some(WireKind::PaymentResponse)
        );
        assert_eq!(WireKind::from_header_name("X-PAYMENT-REQUIRED"), None);
        assert_eq!(WireKind::from_header_name("body"), None);
    }

    #[test]
    fn undetected_v1_body_decodes_with_caip2_network() {
        // GIVEN a v1 402 body as JSON text and no kind WHEN decoded THEN it is a body with CAIP-2
        let (kind, value) = decode_wire_detected(None, &v1_body().to_string()).unwrap();
        assert_eq!(kind, WireKind::PaymentRequiredBody);
        assert_eq!(value["accepts"][0]["network"], "eip155:84532");
    }

    #[test]
    fn undetected_base64_offer_is_a_payment_required_header() {
        // GIVEN a base64 v2 offer and no kind WHEN decoded THEN detected as PAYMENT-REQUIRED
        let (kind, value) = decode_wire_detected(None, &b64(&v2_payment_required())).unwrap();
        assert_eq!(kind, WireKind::PaymentRequiredHeader);
        assert_eq!(value["accepts"][0]["amount"], "10000");
        assert_eq!(
            value["resource"]["url"],
            "https://api.example.com/premium-data"
        );
    }

    #[test]
    fn undetected_payments_are_told_apart_by_version() {
        // GIVEN base64 v1 and v2 payments and no kind WHEN decoded THEN X-PAYMENT and PAYMENT-SIGNATURE
        let (v1_kind, _) = decode_wire_detected(None, &b64(&v1_x_payment())).unwrap();
        let (v2_kind, _) = decode_wire_detected(None, &b64(&v2_payment_signature())).unwrap();
        assert_eq!(
            (v1_kind, v2_kind),
            (WireKind::XPayment, WireKind::PaymentSignature)
        );
    }

    #[test]
    fn undetected_settlements_are_told_apart_by_network_form() {
        // GIVEN a v1-named and a CAIP-2 settlement WHEN decoded THEN the response kinds differ
        let mut v1 = v2_settlement();
        v1["network"] = json!("base-sepolia");
        let (v1_kind, v1_value) = decode_wire_detected(None, &b64(&v1)).unwrap();
        let (v2_kind, _) = decode_wire_detected(None, &b64(&v2_settlement())).unwrap();
        assert_eq!(
            (v1_kind, v2_kind),
            (WireKind::XPaymentResponse, WireKind::PaymentResponse)
        );
        assert_eq!(v1_value["network"], "eip155:84532");
    }

    #[test]
    fn explicit_kind_decodes_x_payment_with_normalised_timestamps() {
        // GIVEN an X-PAYMENT with integer validBefore WHEN decoded as X-PAYMENT THEN it is a string
        let mut header = v1_x_payment();
        header["payload"]["authorization"]["validBefore"] = json!(1_740_672_154u64);
        let value = decode_wire(Some(WireKind::XPayment), &b64(&header)).unwrap();
        assert_eq!(
            value["payload"]["authorization"]["validBefore"],
            "1740672154"
        );
        assert_eq!(value["network"], "eip155:84532");
    }

    #[test]
    fn explicit_header_kind_refuses_json_text() {
        // GIVEN decoded JSON given as a PAYMENT-REQUIRED header WHEN decoded THEN base64 is required
        let e = decode_wire(
            Some(WireKind::PaymentRequiredHeader),
            &v2_payment_required().to_string(),
        )
        .unwrap_err();
        assert_eq!(e.field, "PAYMENT-REQUIRED");
    }

    #[test]
    fn unrecognised_shape_is_refused() {
        // GIVEN a JSON object with none of the x402 keys WHEN decoded THEN refused on input
        let e = decode_wire(None, r#"{"hello": 1}"#).unwrap_err();
        assert_eq!(e.field, "input");
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        // GIVEN empty and non-base64 input WHEN decoded THEN refused on input
        for input in ["", "   ", "@@@", "{", "W10="] {
            assert_eq!(
                decode_wire(None, input).unwrap_err().field,
                "input",
                "{input:?}"
            );
        }
    }

    #[test]
    fn vectors_directory_decodes_as_expected() {
        // GIVEN each vector file WHEN decoded THEN the result matches its expectation
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/x402");
        let mut count = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let vector: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let kind = match vector["kind"].as_str() {
                Some("body") => Some(WireKind::PaymentRequiredBody),
                Some(name) => Some(WireKind::from_header_name(name).unwrap()),
                None => None,
            };
            let input = vector["input"].as_str().unwrap();
            let result = decode_wire(kind, input);
            match (&vector["expected"], &vector["error_field"]) {
                (Value::Null, Value::String(field)) => {
                    assert_eq!(&result.unwrap_err().field, field, "{}", path.display())
                }
                (expected, _) => assert_eq!(&result.unwrap(), expected, "{}", path.display()),
            }
            count += 1;
        }
        assert!(count > 0, "no vectors found in {dir}");
    }

    proptest! {
        #[test]
        fn decode_wire_never_panics_on_strings(s in ".*", k in 0usize..7) {
            let _ = decode_wire(kind_at(k), &s);
        }

        #[test]
        fn decode_wire_never_panics_on_arbitrary_json(v in arbitrary_json(), k in 0usize..7, encode in any::<bool>()) {
            let input = if encode { b64(&v) } else { v.to_string() };
            let _ = decode_wire(kind_at(k), &input);
        }
    }

    fn kind_at(k: usize) -> Option<WireKind> {
        [
            WireKind::PaymentRequiredBody,
            WireKind::PaymentRequiredHeader,
            WireKind::XPayment,
            WireKind::PaymentSignature,
            WireKind::XPaymentResponse,
            WireKind::PaymentResponse,
        ]
        .get(k)
        .copied()
    }
}
