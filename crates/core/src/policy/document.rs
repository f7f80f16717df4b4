//! A stored policy document as written: its fields, strict JSON reading, and the refusals that
//! name the field at fault. Validation is compiling it ([`super::CompiledPolicy`]), so the
//! rules a document must satisfy live in one place.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::CompiledPolicy;
use crate::asset::AssetInfo;
use crate::budget::BudgetDocument;
use crate::money::{parse_usd, MoneyError};

/// Why a policy document, or the combination of several, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not a JSON object, or an unknown, duplicate, null or mistyped field (named in the message).
    #[error("policy is not a valid policy document: {0}")]
    Json(String),
    /// `maxPerPayment` is not a USD decimal such as "25.00".
    #[error("maxPerPayment {value:?} is invalid: {source}")]
    MaxPerPayment {
        /// The value as written.
        value: String,
        /// Why it was refused.
        source: MoneyError,
    },
    /// `maxAuthorizationSeconds` is zero.
    #[error("maxAuthorizationSeconds must be a whole number of seconds from 1")]
    MaxAuthorizationSeconds,
    /// An address in `allowedPayTo` or `blockedPayTo` is neither a valid EVM nor Solana address.
    #[error(
        "{field} entry {value:?} is not a valid EVM (EIP-55 when mixed-case) or Solana address"
    )]
    PayTo {
        /// `allowedPayTo` or `blockedPayTo`.
        field: &'static str,
        /// The entry as written.
        value: String,
    },
    /// A host in `allowedHosts` or `blockedHosts` is not a hostname or `*.` wildcard.
    #[error(
        "{field} entry {value:?} is not a hostname (a.example.com) or wildcard (*.example.com)"
    )]
    Host {
        /// `allowedHosts` or `blockedHosts`.
        field: &'static str,
        /// The entry as written.
        value: String,
    },
    /// A pattern in `allowedUrls` or `blockedUrls` is not an http(s) URL pattern: scheme, host
    /// or `*.` wildcard, optional port and path prefix, no userinfo, query or fragment, and a
    /// path servers cannot read otherwise.
    #[error(
        "{field} entry {value:?} is not a URL pattern (https://api.example.com/v1/: http or https, a host or *. wildcard, an optional port and path prefix; no userinfo, query, fragment, dot or empty segment, or encoded slash)"
    )]
    Url {
        /// `allowedUrls` or `blockedUrls`.
        field: &'static str,
        /// The entry as written.
        value: String,
    },
    /// A network in `allowedNetworks` is not a CAIP-2 id.
    #[error("allowedNetworks entry {0:?} is not a CAIP-2 id such as \"eip155:8453\"")]
    Network(String),
    /// An entry of `extraAssets` is invalid, or conflicts with a known asset or another scope's.
    #[error("extraAssets: {0}")]
    ExtraAsset(String),
    /// `budgets` breaks a rule (named in the message).
    #[error("budgets: {0}")]
    Budget(String),
    /// `timezone` is not an IANA time zone name.
    #[error("{0}")]
    Timezone(String),
    /// `schemes` is empty, repeats a scheme or names one predebit does not approve.
    #[error("schemes: {0}")]
    Scheme(String),
}

/// Every field a policy document may have, as written in JSON.
pub const POLICY_FIELDS: [&str; 16] = [
    "allowedPayTo",
    "blockedPayTo",
    "allowedHosts",
    "blockedHosts",
    "allowedUrls",
    "blockedUrls",
    "allowedNetworks",
    "allowedAssets",
    "extraAssets",
    "maxPerPayment",
    "maxAuthorizationSeconds",
    "allowedTools",
    "consentRequired",
    "budgets",
    "timezone",
    "schemes",
];

impl PolicyError {
    /// The policy field at fault, or `None` when the document as a whole is (not an object, an
    /// unknown or duplicate key, not JSON). Unlike the message, which quotes the operator's
    /// value to help fix it, this is safe to show to an agent: it is one of [`POLICY_FIELDS`].
    pub fn field(&self) -> Option<&'static str> {
        match self {
            PolicyError::Json(message) => json_error_field(message),
            PolicyError::MaxPerPayment { .. } => Some("maxPerPayment"),
            PolicyError::MaxAuthorizationSeconds => Some("maxAuthorizationSeconds"),
            PolicyError::PayTo { field, .. }
            | PolicyError::Host { field, .. }
            | PolicyError::Url { field, .. } => Some(field),
            PolicyError::Network(_) => Some("allowedNetworks"),
            PolicyError::ExtraAsset(_) => Some("extraAssets"),
            PolicyError::Budget(_) => Some("budgets"),
            PolicyError::Timezone(_) => Some("timezone"),
            PolicyError::Scheme(_) => Some("schemes"),
        }
    }
}

/// The field a serde error names: `present_field!` starts every error of a known field with
/// "field `<name>`: " (serde's own messages start "unknown field", "duplicate field",
/// "invalid type", ...). Only a name from [`POLICY_FIELDS`] comes back, so whatever text a key
/// held, nothing of it does.
fn json_error_field(message: &str) -> Option<&'static str> {
    let rest = message.strip_prefix("field `")?;
    let (name, _) = rest.split_once("`: ")?;
    POLICY_FIELDS.into_iter().find(|known| *known == name)
}

/// Deserializes a present field, refusing `null` and naming the field in any error.
macro_rules! present_field {
    ($fn_name:ident, $field:literal) => {
        fn $fn_name<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
        where
            D: Deserializer<'de>,
            T: Deserialize<'de>,
        {
            T::deserialize(deserializer)
                .map(Some)
                .map_err(|e| D::Error::custom(format_args!("field `{}`: {e}", $field)))
        }
    };
}

present_field!(de_allowed_pay_to, "allowedPayTo");
present_field!(de_blocked_pay_to, "blockedPayTo");
present_field!(de_allowed_hosts, "allowedHosts");
present_field!(de_blocked_hosts, "blockedHosts");
present_field!(de_allowed_urls, "allowedUrls");
present_field!(de_blocked_urls, "blockedUrls");
present_field!(de_allowed_networks, "allowedNetworks");
present_field!(de_allowed_assets, "allowedAssets");
present_field!(de_extra_assets, "extraAssets");
present_field!(de_max_per_payment, "maxPerPayment");
present_field!(de_allowed_tools, "allowedTools");
present_field!(de_max_authorization_seconds, "maxAuthorizationSeconds");
present_field!(de_consent_required, "consentRequired");
present_field!(de_budgets, "budgets");
present_field!(de_timezone, "timezone");
present_field!(de_schemes, "schemes");

/// One stored policy document, of any scope. `null` is refused: leave a field out to not restrict.
// `remote = "Self"` makes the derives inherent functions, so the trait impls below can refuse a
// JSON array (which serde would otherwise read positionally, with every field defaulted).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyDocument {
    /// Only these payTo addresses (EVM case-insensitive, Solana exact).
    #[serde(
        default,
        deserialize_with = "de_allowed_pay_to",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_pay_to: Option<Vec<String>>,
    /// Never these payTo addresses.
    #[serde(
        default,
        deserialize_with = "de_blocked_pay_to",
        skip_serializing_if = "Option::is_none"
    )]
    pub blocked_pay_to: Option<Vec<String>>,
    /// Only these resource hosts; "*.example.com" matches subdomains, not example.com itself.
    #[serde(
        default,
        deserialize_with = "de_allowed_hosts",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_hosts: Option<Vec<String>>,
    /// Never these resource hosts, same patterns as `allowed_hosts`.
    #[serde(
        default,
        deserialize_with = "de_blocked_hosts",
        skip_serializing_if = "Option::is_none"
    )]
    pub blocked_hosts: Option<Vec<String>>,
    /// Only requested URLs under these patterns: "https://api.example.com/v1/" is the scheme,
    /// the host (or "*." wildcard), the port (default if absent) and a path prefix matched by
    /// whole decoded segments (see [`crate::policy`]).
    #[serde(
        default,
        deserialize_with = "de_allowed_urls",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_urls: Option<Vec<String>>,
    /// Never requested URLs under these patterns, same syntax as `allowed_urls`; paths compare
    /// in any letter case.
    #[serde(
        default,
        deserialize_with = "de_blocked_urls",
        skip_serializing_if = "Option::is_none"
    )]
    pub blocked_urls: Option<Vec<String>>,
    /// Only these CAIP-2 networks.
    #[serde(
        default,
        deserialize_with = "de_allowed_networks",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_networks: Option<Vec<String>>,
    /// Only these asset symbols, e.g. "USDC" (compared exactly).
    #[serde(
        default,
        deserialize_with = "de_allowed_assets",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_assets: Option<Vec<String>>,
    /// Assets added to the trusted table.
    #[serde(
        default,
        deserialize_with = "de_extra_assets",
        skip_serializing_if = "Option::is_none"
    )]
    pub extra_assets: Option<Vec<AssetInfo>>,
    /// Largest single payment, a USD decimal such as "25.00".
    #[serde(
        default,
        deserialize_with = "de_max_per_payment",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_per_payment: Option<String>,
    /// The longest a signed authorization may stay valid, in seconds: a requirement whose
    /// `maxTimeoutSeconds` is longer is declined. Default 300; never more than 900.
    #[serde(
        default,
        deserialize_with = "de_max_authorization_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_authorization_seconds: Option<u64>,
    /// Only these tool names.
    #[serde(
        default,
        deserialize_with = "de_allowed_tools",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_tools: Option<Vec<String>>,
    /// Whether the user's consent for the agent is required.
    #[serde(
        default,
        deserialize_with = "de_consent_required",
        skip_serializing_if = "Option::is_none"
    )]
    pub consent_required: Option<bool>,
    /// Limits across sessions per calendar or rolling window (see [`crate::budget`]).
    #[serde(
        default,
        deserialize_with = "de_budgets",
        skip_serializing_if = "Option::is_none"
    )]
    pub budgets: Option<Vec<BudgetDocument>>,
    /// The IANA time zone of the calendar budget windows; UTC when absent.
    #[serde(
        default,
        deserialize_with = "de_timezone",
        skip_serializing_if = "Option::is_none"
    )]
    pub timezone: Option<String>,
    /// The x402 schemes this scope allows: `exact` (the signed amount is the charge) and `upto`
    /// (the signed amount is a maximum; the merchant settles for less). Where no scope sets it,
    /// only `exact`; where some do, a scheme must be in every list that is set.
    #[serde(
        default,
        deserialize_with = "de_schemes",
        skip_serializing_if = "Option::is_none"
    )]
    pub schemes: Option<Vec<String>>,
}

impl serde::Serialize for PolicyDocument {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PolicyDocument::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for PolicyDocument {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(PolicyObjectVisitor)
    }
}

/// Accepts only an object (a map) as a policy document.
struct PolicyObjectVisitor;

impl<'de> serde::de::Visitor<'de> for PolicyObjectVisitor {
    type Value = PolicyDocument;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a policy document (a JSON object)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<PolicyDocument, A::Error> {
        PolicyDocument::deserialize(serde::de::value::MapAccessDeserializer::new(map))
    }
}

impl PolicyDocument {
    /// Parses and validates a policy document from JSON.
    pub fn parse(json: &str) -> Result<Self, PolicyError> {
        let document = Self::from_json(json)?;
        document.validate()?;
        Ok(document)
    }

    /// Reads the JSON strictly (unknown, duplicate, null or mistyped fields refused) without
    /// checking the values; [`CompiledPolicy::parse`] checks them as it compiles.
    pub(super) fn from_json(json: &str) -> Result<Self, PolicyError> {
        serde_json::from_str(json).map_err(|e| PolicyError::Json(e.to_string()))
    }

    /// Checks every field's values (amount, addresses, hosts, networks, extra assets).
    pub fn validate(&self) -> Result<(), PolicyError> {
        CompiledPolicy::compile(self).map(drop)
    }

    /// `maxPerPayment` in micro-USD, if present.
    pub(super) fn max_per_payment_micros(&self) -> Result<Option<u64>, PolicyError> {
        self.max_per_payment
            .as_deref()
            .map(|value| {
                parse_usd(value).map_err(|source| PolicyError::MaxPerPayment {
                    value: value.to_string(),
                    source,
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "eip155:8453";
    const MERCHANT: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
    const SOLANA_MERCHANT: &str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";

    fn doc(json: &str) -> PolicyDocument {
        PolicyDocument::parse(json).unwrap()
    }

    // ---- parse ----

    #[test]
    fn parse_reads_every_field() {
        let d = doc(&format!(
            r#"{{"allowedPayTo":["{MERCHANT}"],"blockedPayTo":["{SOLANA_MERCHANT}"],
               "allowedHosts":["api.example.com","*.example.org"],"blockedHosts":["evil.com"],
               "allowedNetworks":["{BASE}"],"allowedAssets":["USDC"],"extraAssets":[],
               "maxPerPayment":"25.00","allowedTools":["search"],"consentRequired":true}}"#
        ));
        assert_eq!(d.allowed_pay_to, Some(vec![MERCHANT.to_string()]));
        assert_eq!(d.blocked_pay_to, Some(vec![SOLANA_MERCHANT.to_string()]));
        assert_eq!(d.allowed_hosts.as_ref().map(Vec::len), Some(2));
        assert_eq!(d.blocked_hosts, Some(vec!["evil.com".to_string()]));
        assert_eq!(d.allowed_networks, Some(vec![BASE.to_string()]));
        assert_eq!(d.allowed_assets, Some(vec!["USDC".to_string()]));
        assert_eq!(d.extra_assets, Some(vec![]));
        assert_eq!(d.max_per_payment.as_deref(), Some("25.00"));
        assert_eq!(d.allowed_tools, Some(vec!["search".to_string()]));
        assert_eq!(d.consent_required, Some(true));
    }

    #[test]
    fn parse_reads_an_empty_document_as_no_restriction() {
        assert_eq!(doc("{}"), PolicyDocument::default());
    }

    #[test]
    fn parse_refuses_an_unknown_field_and_names_it() {
        let err = PolicyDocument::parse(r#"{"maxPerPaymnet":"5"}"#).unwrap_err();
        assert!(
            matches!(&err, PolicyError::Json(m) if m.contains("maxPerPaymnet")),
            "{err}"
        );
    }

    #[test]
    fn parse_refuses_a_wrong_type_and_names_the_field() {
        let err = PolicyDocument::parse(r#"{"allowedTools":"search"}"#).unwrap_err();
        assert!(
            matches!(&err, PolicyError::Json(m) if m.contains("allowedTools")),
            "{err}"
        );
    }

    #[test]
    fn parse_refuses_null_and_names_the_field() {
        let err = PolicyDocument::parse(r#"{"allowedPayTo":null}"#).unwrap_err();
        assert!(
            matches!(&err, PolicyError::Json(m) if m.contains("allowedPayTo")),
            "{err}"
        );
    }

    #[test]
    fn parse_refuses_a_duplicate_field() {
        let err = PolicyDocument::parse(r#"{"maxPerPayment":"1","maxPerPayment":"100"}"#);
        assert!(matches!(err, Err(PolicyError::Json(_))), "{err:?}");
    }

    #[test]
    fn parse_refuses_a_non_object() {
        // A JSON array would otherwise be read positionally as a policy with no restrictions.
        for json in ["[]", r#"["0.01"]"#, "null", "\"{}\""] {
            assert!(
                matches!(PolicyDocument::parse(json), Err(PolicyError::Json(_))),
                "{json}"
            );
        }
        assert!(matches!(
            PolicyDocument::parse(""),
            Err(PolicyError::Json(_))
        ));
    }

    #[test]
    fn parse_refuses_an_invalid_max_per_payment() {
        assert_eq!(
            PolicyDocument::parse(r#"{"maxPerPayment":"25.0000001"}"#),
            Err(PolicyError::MaxPerPayment {
                value: "25.0000001".into(),
                source: MoneyError::TooManyDecimals
            })
        );
    }

    #[test]
    fn parse_refuses_max_per_payment_as_a_number() {
        let err = PolicyDocument::parse(r#"{"maxPerPayment":25}"#).unwrap_err();
        assert!(
            matches!(&err, PolicyError::Json(m) if m.contains("maxPerPayment")),
            "{err}"
        );
    }

    #[test]
    fn parse_refuses_an_invalid_extra_asset() {
        let err = PolicyDocument::parse(
            r#"{"extraAssets":[{"network":"eip155:8453","address":"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913","symbol":"USDC","decimals":18,"usdPegged":true}]}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, PolicyError::ExtraAsset(m) if m.contains("conflicts")),
            "{err}"
        );
    }

    #[test]
    fn parse_refuses_a_bad_pay_to_address() {
        let bad = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02914";
        assert_eq!(
            PolicyDocument::parse(&format!(r#"{{"blockedPayTo":["{bad}"]}}"#)),
            Err(PolicyError::PayTo {
                field: "blockedPayTo",
                value: bad.into()
            })
        );
    }

    #[test]
    fn parse_refuses_hosts_with_scheme_port_path_or_stray_wildcard() {
        for bad in [
            "https://a.com",
            "a.com:443",
            "a.com/x",
            "*",
            "*.",
            "a.*.com",
            "",
            "a..com",
            " a.com",
        ] {
            assert_eq!(
                PolicyDocument::parse(&format!(r#"{{"allowedHosts":["{bad}"]}}"#)),
                Err(PolicyError::Host {
                    field: "allowedHosts",
                    value: bad.into()
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parse_reads_url_rules_and_refuses_a_pattern_naming_the_field_and_entry() {
        // GIVEN URL rules WHEN parsed THEN kept as written
        let d = doc(
            r#"{"allowedUrls":["https://api.example.com/v1/"],"blockedUrls":["https://*.example.com"]}"#,
        );
        assert_eq!(
            d.allowed_urls,
            Some(vec!["https://api.example.com/v1/".to_string()])
        );
        assert_eq!(
            d.blocked_urls,
            Some(vec!["https://*.example.com".to_string()])
        );
        // AND a pattern with a query is refused with its field and entry
        for field in ["allowedUrls", "blockedUrls"] {
            let bad = "https://api.example.com/v1/?key=1";
            assert_eq!(
                PolicyDocument::parse(&format!(r#"{{"{field}":["{bad}"]}}"#)),
                Err(PolicyError::Url {
                    field,
                    value: bad.into()
                })
            );
        }
    }

    #[test]
    fn parse_refuses_a_network_that_is_not_caip2() {
        assert_eq!(
            PolicyDocument::parse(r#"{"allowedNetworks":["base"]}"#),
            Err(PolicyError::Network("base".into()))
        );
    }

    #[test]
    fn every_refusal_names_the_field_at_fault_and_none_names_a_value() {
        // GIVEN documents each wrong in one field, or as a whole
        let bad_pay_to = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02914";
        for (json, field) in [
            (
                r#"{"maxPerPayment":"25.0000001"}"#.to_string(),
                Some("maxPerPayment"),
            ),
            (r#"{"maxPerPayment":25}"#.to_string(), Some("maxPerPayment")),
            (
                r#"{"maxAuthorizationSeconds":0}"#.to_string(),
                Some("maxAuthorizationSeconds"),
            ),
            (
                r#"{"maxAuthorizationSeconds":-1}"#.to_string(),
                Some("maxAuthorizationSeconds"),
            ),
            (
                format!(r#"{{"blockedPayTo":["{bad_pay_to}"]}}"#),
                Some("blockedPayTo"),
            ),
            (r#"{"allowedPayTo":null}"#.to_string(), Some("allowedPayTo")),
            (
                r#"{"allowedHosts":["a.com:443"]}"#.to_string(),
                Some("allowedHosts"),
            ),
            (
                r#"{"blockedHosts":"evil.com"}"#.to_string(),
                Some("blockedHosts"),
            ),
            (
                r#"{"allowedUrls":["https://a.com/v1/?x=1"]}"#.to_string(),
                Some("allowedUrls"),
            ),
            (
                r#"{"allowedUrls":"https://a.com/"}"#.to_string(),
                Some("allowedUrls"),
            ),
            (
                r#"{"blockedUrls":["https://a.com/a/../b"]}"#.to_string(),
                Some("blockedUrls"),
            ),
            (r#"{"blockedUrls":null}"#.to_string(), Some("blockedUrls")),
            (
                r#"{"allowedNetworks":["base"]}"#.to_string(),
                Some("allowedNetworks"),
            ),
            (
                r#"{"allowedTools":"search"}"#.to_string(),
                Some("allowedTools"),
            ),
            (
                r#"{"consentRequired":"yes"}"#.to_string(),
                Some("consentRequired"),
            ),
            (
                r#"{"extraAssets":[{"network":"eip155:8453"}]}"#.to_string(),
                Some("extraAssets"),
            ),
            (
                r#"{"budgets":[{"window":"fortnight","count":1}]}"#.to_string(),
                Some("budgets"),
            ),
            (
                r#"{"budgets":[{"window":"day"}]}"#.to_string(),
                Some("budgets"),
            ),
            (
                r#"{"budgets":{"window":"day"}}"#.to_string(),
                Some("budgets"),
            ),
            (
                r#"{"timezone":"Mars/Olympus"}"#.to_string(),
                Some("timezone"),
            ),
            (r#"{"timezone":3}"#.to_string(), Some("timezone")),
            (r#"{"maxPerPaymnet":"5"}"#.to_string(), None),
            (
                r#"{"maxPerPayment":"1","maxPerPayment":"2"}"#.to_string(),
                None,
            ),
            (r#"{"x` field `allowedHosts`: ":1}"#.to_string(), None),
            ("[]".to_string(), None),
            ("not json".to_string(), None),
        ] {
            // WHEN parsed THEN the error's field is the one at fault (None: the whole document)
            let err = PolicyDocument::parse(&json).unwrap_err();
            assert_eq!(err.field(), field, "{json}: {err}");
        }
    }

    #[test]
    fn the_known_field_list_is_every_field_a_document_has() {
        // GIVEN a document with every field set WHEN serialized THEN its keys are POLICY_FIELDS
        let full = PolicyDocument {
            allowed_pay_to: Some(vec![]),
            blocked_pay_to: Some(vec![]),
            allowed_hosts: Some(vec![]),
            blocked_hosts: Some(vec![]),
            allowed_urls: Some(vec![]),
            blocked_urls: Some(vec![]),
            allowed_networks: Some(vec![]),
            allowed_assets: Some(vec![]),
            extra_assets: Some(vec![]),
            max_per_payment: Some("1".into()),
            max_authorization_seconds: Some(1),
            allowed_tools: Some(vec![]),
            consent_required: Some(true),
            budgets: Some(vec![]),
            timezone: Some("UTC".into()),
            schemes: Some(vec![]),
        };
        let value = serde_json::to_value(&full).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut known = POLICY_FIELDS.to_vec();
        keys.sort_unstable();
        known.sort_unstable();
        assert_eq!(keys, known);
    }

    #[test]
    fn budgets_and_their_timezone_are_read_and_every_scope_keeps_its_own() {
        // GIVEN a global day budget in Paris and an agent rolling budget in UTC
        let global =
            doc(r#"{"timezone":"Europe/Paris","budgets":[{"window":"day","amountUsd":"20.00"}]}"#);
        let user = doc("{}");
        let agent = doc(r#"{"budgets":[{"window":{"rollingSeconds":3600},"count":5}]}"#);
        // WHEN combined THEN both apply, each with its scope and zone
        let p = super::super::combine(&[&global, &user, &agent]).unwrap();
        let got: Vec<(crate::budget::BudgetScope, String, &str)> = p
            .budgets()
            .iter()
            .map(|b| (b.scope, b.window.id(), b.timezone.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    crate::budget::BudgetScope::Global,
                    "day".into(),
                    "Europe/Paris"
                ),
                (
                    crate::budget::BudgetScope::Agent,
                    "rolling3600".into(),
                    "UTC"
                ),
            ]
        );
    }

    #[test]
    fn document_serializes_without_absent_fields() {
        let d = doc(r#"{"maxPerPayment":"5.00","allowedTools":[]}"#);
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"maxPerPayment":"5.00","allowedTools":[]}"#
        );
    }
}
