//! x402 parsing: v1 and v2 payment requirements, the payment and settlement headers, and wire
//! decoding for `predebit x402 decode`.
//!
//! Parsing is strict and never panics: every refusal is a [`FieldError`] naming the JSON path of
//! the field at fault. Networks come out as CAIP-2, atomic amounts as canonical decimal strings.

mod fields;
pub(crate) use fields::base64_json_object;
pub mod payment;
pub mod payment_required;
pub mod settlement;
pub mod v1;
pub mod v2;
pub mod wire;

pub use payment::{parse_payment_header, SignedKind, SignedTerms};
pub use payment_required::{
    parse_payment_required_body, parse_payment_required_header, PaymentRequired, ResourceInfo,
};
pub use settlement::{parse_settlement, Settlement};
pub use wire::{decode_wire, decode_wire_detected, WireKind};

use crate::money::UINT256_MAX;
use serde_json::Value;

/// A problem with one field of x402 input: `field` is a JSON path like `accepts[0].payTo`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// The JSON path of the field at fault, or the header name when the whole value is bad.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl FieldError {
    /// A refusal of `field` because of `problem`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The same refusal with `prefix` put in front of its path (`accepts[0]` + `payTo`).
    pub fn within(self, prefix: &str) -> Self {
        Self {
            field: fields::join(prefix, &self.field),
            problem: self.problem,
        }
    }
}

/// One normalised payment requirement (an `accepts` entry), either version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Requirement {
    /// 1 or 2.
    pub x402_version: u8,
    /// The payment scheme as given (`exact`); not judged here.
    pub scheme: String,
    /// CAIP-2 always (v1 names mapped).
    pub network: String,
    /// Atomic units, canonical decimal digits, at most 2^256-1.
    pub amount: String,
    /// The token as given, validated for the network's address family.
    pub asset: String,
    /// The recipient as given, validated for the network's address family.
    pub pay_to: String,
    /// Greater than zero.
    pub max_timeout_seconds: u64,
    /// v1: the entry's `resource`; v2: the top-level `resource.url` passed in.
    pub resource: Option<String>,
    /// Human-readable description, if given.
    pub description: Option<String>,
    /// MIME type of the resource, if given.
    pub mime_type: Option<String>,
    /// Scheme-specific extra data (EIP-712 domain name/version, fee payer), if given.
    pub extra: Option<Value>,
}

/// Parses the selected `accepts` entry. `x402_version` is 1 or 2 (anything else -> FieldError on
/// `x402Version`). `resource` is the v2 top-level resource URL if the caller has it (ignored for
/// v1, where the entry's own `resource` is required). Field names in errors are relative to the
/// entry, e.g. `payTo`, `maxAmountRequired`; an entry that is not an object is reported with an
/// empty `field` (the entry itself).
pub fn parse_requirement(
    x402_version: u64,
    entry: &Value,
    resource: Option<&str>,
) -> Result<Requirement, FieldError> {
    match x402_version {
        1 => v1::parse_entry(entry),
        2 => v2::parse_entry(entry, resource),
        _ => Err(FieldError::new(
            "x402Version",
            "unsupported version (expected 1 or 2)",
        )),
    }
}

/// Strict decimal atomic amount: digits only, no sign, spaces, decimal point, exponent or hex,
/// not empty, at most 2^256-1. Returns canonical digits (no leading zeros, "0" for zero).
pub fn parse_atomic_amount(s: &str) -> Result<String, &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be decimal digits only (atomic units: no sign, point, exponent or hex)");
    }
    let significant = s.trim_start_matches('0');
    if significant.is_empty() {
        return Ok("0".to_string());
    }
    // Equal-length digit strings compare like the numbers they spell.
    if significant.len() > UINT256_MAX.len()
        || (significant.len() == UINT256_MAX.len() && significant > UINT256_MAX)
    {
        return Err("exceeds the uint256 maximum");
    }
    Ok(significant.to_string())
}

/// The host of an http(s) URL, normalized (see [`crate::request_url`]); `None` when the URL is
/// not one predebit can judge.
pub fn resource_host(url: &str) -> Option<String> {
    crate::request_url::HttpUrl::parse(url)
        .ok()
        .map(|u| u.host().to_string())
}

#[cfg(test)]
mod no_echo;
#[cfg(test)]
pub(crate) mod testdata;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: &str = UINT256_MAX;

    #[test]
    fn atomic_amount_accepts_uint256_max() {
        // GIVEN 2^256-1 WHEN parsed THEN it comes back unchanged
        assert_eq!(parse_atomic_amount(MAX), Ok(MAX.to_string()));
    }

    #[test]
    fn atomic_amount_refuses_two_to_the_256() {
        // GIVEN 2^256 WHEN parsed THEN refused as over the maximum
        let two_256 =
            "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert_eq!(
            parse_atomic_amount(two_256),
            Err("exceeds the uint256 maximum")
        );
        assert!(parse_atomic_amount(&format!("1{MAX}")).is_err());
    }

    #[test]
    fn atomic_amount_refuses_non_canonical_notations() {
        // GIVEN signs, points, exponents, hex and whitespace WHEN parsed THEN all refused
        for s in [
            "", "-1", "1.5", "+1", "0x10", "1e3", " 1", "1 ", "1_000", "١",
        ] {
            assert!(parse_atomic_amount(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn atomic_amount_strips_leading_zeros() {
        // GIVEN zero-padded digits WHEN parsed THEN canonical digits come back
        assert_eq!(parse_atomic_amount("000"), Ok("0".to_string()));
        assert_eq!(parse_atomic_amount("0010000"), Ok("10000".to_string()));
        assert_eq!(
            parse_atomic_amount(&format!("000{MAX}")),
            Ok(MAX.to_string())
        );
    }

    #[test]
    fn resource_host_lowercases_and_drops_port_and_userinfo() {
        // GIVEN URLs with case, port, userinfo, query WHEN the host is taken THEN it is bare
        assert_eq!(
            resource_host("https://API.Example.com:8443/premium?x=1"),
            Some("api.example.com".to_string())
        );
        assert_eq!(
            resource_host("http://user:pw@localhost:3001/protected-route"),
            Some("localhost".to_string())
        );
        assert_eq!(
            resource_host("HTTPS://example.com#frag"),
            Some("example.com".to_string())
        );
        assert_eq!(
            resource_host("http://[::1]:8080/x"),
            Some("[::1]".to_string())
        );
    }

    #[test]
    fn resource_host_refuses_backslash_tricks_and_whitespace() {
        // GIVEN URLs a browser would read with a different host WHEN the host is taken THEN None
        for url in [
            "https://evil.com\\@good.com/",
            "https://good.com\\evil.com/",
            "https://good.com\t/",
            " https://good.com/",
        ] {
            assert_eq!(resource_host(url), None, "{url:?}");
        }
    }

    #[test]
    fn resource_host_drops_the_trailing_root_dot() {
        // GIVEN a fully qualified host with a trailing dot WHEN the host is taken THEN no dot
        assert_eq!(
            resource_host("https://Example.com./x"),
            Some("example.com".to_string())
        );
        assert_eq!(resource_host("https://./x"), None);
    }

    #[test]
    fn resource_host_follows_the_last_at_sign_in_the_authority() {
        // GIVEN userinfo tricks WHEN the host is taken THEN it is the real authority host
        assert_eq!(
            resource_host("https://good.com@evil.com/"),
            Some("evil.com".to_string())
        );
        assert_eq!(
            resource_host("https://good.com#@evil.com"),
            Some("good.com".to_string())
        );
    }

    #[test]
    fn resource_host_refuses_non_http_and_hostless_urls() {
        // GIVEN other schemes, no host, bad ports WHEN the host is taken THEN None
        for url in [
            "ftp://example.com/x",
            "mcp://tool/x",
            "https://",
            "https:///path",
            "example.com/x",
            "https://example.com:80x/",
            "https://exa mple.com/",
            "",
        ] {
            assert_eq!(resource_host(url), None, "{url:?}");
        }
    }

    #[test]
    fn parse_requirement_refuses_unknown_version() {
        // GIVEN version 3 WHEN parsing THEN the error names x402Version
        let entry = serde_json::json!({});
        let err = parse_requirement(3, &entry, None).unwrap_err();
        assert_eq!(err.field, "x402Version");
    }

    #[test]
    fn field_error_displays_path_and_problem() {
        // GIVEN a nested error WHEN displayed THEN the full path leads
        let e = FieldError::new("payTo", "is required").within("accepts[0]");
        assert_eq!(e.to_string(), "accepts[0].payTo: is required");
    }

    proptest! {
        #[test]
        fn atomic_amount_round_trips_every_u128(n in any::<u128>()) {
            prop_assert_eq!(parse_atomic_amount(&n.to_string()), Ok(n.to_string()));
        }

        #[test]
        fn atomic_amount_never_panics(s in ".*") {
            let _ = parse_atomic_amount(&s);
        }

        #[test]
        fn resource_host_never_panics(s in ".*") {
            let _ = resource_host(&s);
        }

        #[test]
        fn parse_requirement_never_panics(
            v in testdata::arbitrary_json(),
            version in 0u64..4,
            resource in proptest::option::of(".*"),
        ) {
            let _ = parse_requirement(version, &v, resource.as_deref());
        }

        #[test]
        fn parse_requirement_never_panics_on_near_valid_entries(
            entry in testdata::mutated_entry(),
            version in 1u64..3,
        ) {
            let _ = parse_requirement(version, &entry, Some("https://api.example.com/x"));
        }
    }
}
