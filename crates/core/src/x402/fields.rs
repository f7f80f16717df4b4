//! Field access shared by the x402 parsers: every refusal names the JSON path it is about.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::{Map, Value};

use super::FieldError;
use crate::address::{validate_address, AddressError};

/// The JSON path of `key` under `prefix` (`accepts[0]` + `payTo` = `accepts[0].payTo`).
pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else if key.is_empty() {
        prefix.to_string()
    } else if key.starts_with('[') {
        format!("{prefix}{key}")
    } else {
        format!("{prefix}.{key}")
    }
}

/// Builds a [`FieldError`] for `key` under `prefix`.
pub(crate) fn err(prefix: &str, key: &str, problem: impl Into<String>) -> FieldError {
    FieldError::new(join(prefix, key), problem)
}

/// The value as a JSON object, or a refusal naming `path`.
pub(crate) fn object<'a>(
    value: &'a Value,
    path: &str,
) -> Result<&'a Map<String, Value>, FieldError> {
    value
        .as_object()
        .ok_or_else(|| FieldError::new(path, "must be a JSON object"))
}

/// A present value, treating JSON `null` as absent.
fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// A required non-empty string.
pub(crate) fn required_str<'a>(
    map: &'a Map<String, Value>,
    prefix: &str,
    key: &str,
) -> Result<&'a str, FieldError> {
    match present(map, key) {
        None => Err(err(prefix, key, "is required")),
        Some(Value::String(s)) if s.is_empty() => Err(err(prefix, key, "must not be empty")),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(err(prefix, key, "must be a string")),
    }
}

/// A scheme name (`exact`, `upto`): 1 to 32 characters of `a-z 0-9 - _`, so the merchant's
/// text can be recorded in an audit record as it is, with a bounded size.
pub(crate) fn required_scheme<'a>(
    map: &'a Map<String, Value>,
    prefix: &str,
) -> Result<&'a str, FieldError> {
    let scheme = required_str(map, prefix, "scheme")?;
    let plain = scheme.len() <= 32
        && scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !plain {
        return Err(err(
            prefix,
            "scheme",
            "must be a scheme name of 1 to 32 characters a-z 0-9 - _ (such as exact)",
        ));
    }
    Ok(scheme)
}

/// An optional string (may be empty); `null` counts as absent.
pub(crate) fn optional_str<'a>(
    map: &'a Map<String, Value>,
    prefix: &str,
    key: &str,
) -> Result<Option<&'a str>, FieldError> {
    match present(map, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(err(prefix, key, "must be a string")),
    }
}

/// An optional JSON object, returned as a value; `null` counts as absent.
pub(crate) fn optional_object(
    map: &Map<String, Value>,
    prefix: &str,
    key: &str,
) -> Result<Option<Value>, FieldError> {
    match present(map, key) {
        None => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
        Some(_) => Err(err(prefix, key, "must be a JSON object")),
    }
}

/// A required JSON object.
pub(crate) fn required_object<'a>(
    map: &'a Map<String, Value>,
    prefix: &str,
    key: &str,
) -> Result<&'a Map<String, Value>, FieldError> {
    match present(map, key) {
        None => Err(err(prefix, key, "is required")),
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(err(prefix, key, "must be a JSON object")),
    }
}

/// A required atomic amount, which must be a JSON string of decimal digits.
pub(crate) fn required_amount(
    map: &Map<String, Value>,
    prefix: &str,
    key: &str,
) -> Result<String, FieldError> {
    match present(map, key) {
        None => Err(err(prefix, key, "is required")),
        Some(Value::String(s)) => super::parse_atomic_amount(s).map_err(|p| err(prefix, key, p)),
        Some(Value::Number(_)) => Err(err(
            prefix,
            key,
            "must be a JSON string of decimal digits, not a JSON number",
        )),
        Some(_) => Err(err(prefix, key, "must be a string of decimal digits")),
    }
}

/// A required JSON integer greater than zero.
pub(crate) fn positive_u64(
    map: &Map<String, Value>,
    prefix: &str,
    key: &str,
) -> Result<u64, FieldError> {
    match present(map, key) {
        None => Err(err(prefix, key, "is required")),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => Err(err(prefix, key, "must be greater than zero")),
            Some(v) => Ok(v),
            None => Err(err(prefix, key, "must be a positive JSON integer")),
        },
        Some(_) => Err(err(prefix, key, "must be a positive JSON integer")),
    }
}

/// A required boolean.
pub(crate) fn required_bool(
    map: &Map<String, Value>,
    prefix: &str,
    key: &str,
) -> Result<bool, FieldError> {
    match present(map, key) {
        None => Err(err(prefix, key, "is required")),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(prefix, key, "must be true or false")),
    }
}

/// The `x402Version` under `prefix`: a JSON integer, 1 or 2.
pub(crate) fn x402_version(map: &Map<String, Value>, prefix: &str) -> Result<u8, FieldError> {
    match present(map, "x402Version") {
        None => Err(err(prefix, "x402Version", "is required")),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(1) => Ok(1),
            Some(2) => Ok(2),
            _ => Err(err(
                prefix,
                "x402Version",
                "unsupported version (expected 1 or 2)",
            )),
        },
        Some(_) => Err(err(
            prefix,
            "x402Version",
            "must be the JSON integer 1 or 2",
        )),
    }
}

/// A required address valid for `network` (EIP-55 checked when mixed-case).
pub(crate) fn required_address<'a>(
    map: &'a Map<String, Value>,
    prefix: &str,
    key: &str,
    network: &str,
) -> Result<&'a str, FieldError> {
    let address = required_str(map, prefix, key)?;
    validate_address(network, address).map_err(|e| address_error(prefix, key, e))?;
    Ok(address)
}

/// An address refusal for `key`, with the network family's expectation.
pub(crate) fn address_error(prefix: &str, key: &str, e: AddressError) -> FieldError {
    err(prefix, key, e.to_string())
}

/// A uint256 in a signed payload: a decimal string, a `0x` hex string, or (when
/// `allow_json_integer`) a JSON integer; returned as canonical decimal digits.
pub(crate) fn required_uint256(
    map: &Map<String, Value>,
    prefix: &str,
    key: &str,
    allow_json_integer: bool,
) -> Result<String, FieldError> {
    match present(map, key) {
        None => Err(err(prefix, key, "is required")),
        Some(Value::String(s)) => parse_uint256(s).map_err(|p| err(prefix, key, p)),
        Some(Value::Number(n)) if allow_json_integer => match n.as_u64() {
            Some(v) => Ok(v.to_string()),
            None => Err(err(prefix, key, "must be a non-negative integer")),
        },
        Some(Value::Number(_)) => Err(err(
            prefix,
            key,
            "must be a JSON string (decimal or 0x hex), not a JSON number",
        )),
        Some(_) => Err(err(
            prefix,
            key,
            "must be a decimal or 0x hex integer string",
        )),
    }
}

/// A decimal or `0x`/`0X` hex string up to 2^256-1, as canonical decimal digits.
pub(crate) fn parse_uint256(s: &str) -> Result<String, &'static str> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => hex_to_decimal(hex),
        None => super::parse_atomic_amount(s),
    }
}

/// Hex digits (no prefix) up to 2^256-1 as canonical decimal digits.
fn hex_to_decimal(hex: &str) -> Result<String, &'static str> {
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("must be hexadecimal digits after 0x");
    }
    let significant = hex.trim_start_matches('0');
    if significant.len() > 64 {
        return Err("exceeds the uint256 maximum");
    }
    // Big-endian base-2^32 limbs, then repeated division by 10^9 to emit decimal.
    let mut limbs: Vec<u32> = Vec::with_capacity(8);
    let padded = format!(
        "{significant:0>width$}",
        width = significant.len().div_ceil(8) * 8
    );
    for chunk in padded.as_bytes().chunks(8) {
        let text = std::str::from_utf8(chunk).map_err(|_| "must be hexadecimal digits")?;
        limbs.push(u32::from_str_radix(text, 16).map_err(|_| "must be hexadecimal digits")?);
    }
    let mut groups: Vec<u32> = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut remainder: u64 = 0;
        for limb in limbs.iter_mut() {
            let current = (remainder << 32) | u64::from(*limb);
            *limb = (current / 1_000_000_000) as u32;
            remainder = current % 1_000_000_000;
        }
        groups.push(remainder as u32);
    }
    let Some((first, rest)) = groups.split_last() else {
        return Ok("0".to_string());
    };
    let mut out = first.to_string();
    for group in rest.iter().rev() {
        out.push_str(&format!("{group:09}"));
    }
    Ok(out)
}

/// A uint256 timestamp as epoch seconds; values beyond `u64::MAX` mean "never" and saturate.
pub(crate) fn decimal_to_u64_saturating(decimal: &str) -> u64 {
    decimal.parse::<u64>().unwrap_or(u64::MAX)
}

/// Standard-alphabet base64 with optional padding, surrounding whitespace ignored.
pub(crate) fn decode_base64(input: &str, field: &str) -> Result<Vec<u8>, FieldError> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "is empty"));
    }
    ENGINE
        .decode(trimmed)
        // The decoder's own message quotes the offending byte and its offset: input, not kept.
        .map_err(|_| FieldError::new(field, "is not valid base64"))
}

/// Parses JSON text that must hold an object.
pub(crate) fn json_object(text: &[u8], field: &str) -> Result<Value, FieldError> {
    let value: Value = serde_json::from_slice(text)
        // serde_json's message can quote the input; the field and the problem are enough.
        .map_err(|_| FieldError::new(field, "is not valid JSON"))?;
    if !value.is_object() {
        return Err(FieldError::new(field, "must be a JSON object"));
    }
    Ok(value)
}

/// Base64 that decodes to a JSON object.
pub(crate) fn base64_json_object(input: &str, field: &str) -> Result<Value, FieldError> {
    json_object(&decode_base64(input, field)?, field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_uint256_converts_to_decimal() {
        // GIVEN hex strings WHEN parsed THEN canonical decimal digits come back
        assert_eq!(parse_uint256("0x0"), Ok("0".to_string()));
        assert_eq!(parse_uint256("0x2710"), Ok("10000".to_string()));
        assert_eq!(parse_uint256("0X00ff"), Ok("255".to_string()));
        assert_eq!(parse_uint256("0x100000000"), Ok("4294967296".to_string()));
        assert_eq!(
            parse_uint256(&format!("0x{}", "f".repeat(64))),
            Ok(
                "115792089237316195423570985008687907853269984665640564039457584007913129639935"
                    .to_string()
            )
        );
    }

    #[test]
    fn hex_uint256_refuses_overflow_and_bad_digits() {
        // GIVEN 2^256, empty hex and non-hex WHEN parsed THEN refused
        assert!(parse_uint256(&format!("0x1{}", "0".repeat(64))).is_err());
        assert!(parse_uint256("0x").is_err());
        assert!(parse_uint256("0xg1").is_err());
        assert!(parse_uint256("0x-1").is_err());
    }

    #[test]
    fn decimal_uint256_matches_u128_display() {
        // GIVEN u128::MAX as hex WHEN parsed THEN it equals its decimal display
        let hex = format!("0x{:x}", u128::MAX);
        assert_eq!(parse_uint256(&hex), Ok(u128::MAX.to_string()));
    }

    #[test]
    fn timestamp_beyond_u64_saturates_to_never() {
        // GIVEN a validBefore larger than u64 WHEN read as seconds THEN it saturates
        assert_eq!(decimal_to_u64_saturating("1740672154"), 1_740_672_154);
        assert_eq!(decimal_to_u64_saturating("18446744073709551616"), u64::MAX);
    }

    #[test]
    fn base64_accepts_missing_padding_and_refuses_url_alphabet() {
        // GIVEN padded, unpadded and url-safe encodings WHEN decoded THEN standard ones pass
        assert_eq!(decode_base64("e30=", "h"), Ok(b"{}".to_vec()));
        assert_eq!(decode_base64("e30", "h"), Ok(b"{}".to_vec()));
        assert!(decode_base64("-_-_", "h").is_err());
        assert_eq!(decode_base64("  ", "h").unwrap_err().problem, "is empty");
    }

    #[test]
    fn base64_and_json_refusals_name_only_the_problem() {
        // GIVEN input the decoders reject at a byte they would quote WHEN decoded THEN the
        // message is fixed: no byte, offset, line or column of the input
        assert_eq!(
            decode_base64("e30=QZX!", "h").unwrap_err().to_string(),
            "h: is not valid base64"
        );
        assert_eq!(
            json_object(b"{\"a\": QZX}", "h").unwrap_err().to_string(),
            "h: is not valid JSON"
        );
        assert_eq!(
            base64_json_object("bm90IGpzb24=", "h")
                .unwrap_err()
                .to_string(),
            "h: is not valid JSON"
        );
    }
}
