//! Policy documents (global, user, agent scope) and their combination into one effective policy.
//!
//! Every policy that exists applies. A field absent from a document puts no restriction at that
//! scope; a present but empty list allows nothing. Allow-lists intersect across scopes, deny-lists
//! unite, limits take the minimum, consent is required if any scope requires it.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::address::{addresses_equal, validate_evm, validate_solana};
use crate::asset::{is_caip2, AssetInfo, AssetTable};
use crate::money::{parse_usd, MoneyError};
use crate::request_url::{normalize_host, normalize_host_pattern};

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
    /// A network in `allowedNetworks` is not a CAIP-2 id.
    #[error("allowedNetworks entry {0:?} is not a CAIP-2 id such as \"eip155:8453\"")]
    Network(String),
    /// An entry of `extraAssets` is invalid, or conflicts with a known asset or another scope's.
    #[error("extraAssets: {0}")]
    ExtraAsset(String),
}

/// Every field a policy document may have, as written in JSON.
pub const POLICY_FIELDS: [&str; 11] = [
    "allowedPayTo",
    "blockedPayTo",
    "allowedHosts",
    "blockedHosts",
    "allowedNetworks",
    "allowedAssets",
    "extraAssets",
    "maxPerPayment",
    "maxAuthorizationSeconds",
    "allowedTools",
    "consentRequired",
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
            PolicyError::PayTo { field, .. } | PolicyError::Host { field, .. } => Some(field),
            PolicyError::Network(_) => Some("allowedNetworks"),
            PolicyError::ExtraAsset(_) => Some("extraAssets"),
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
present_field!(de_allowed_networks, "allowedNetworks");
present_field!(de_allowed_assets, "allowedAssets");
present_field!(de_extra_assets, "extraAssets");
present_field!(de_max_per_payment, "maxPerPayment");
present_field!(de_allowed_tools, "allowedTools");
present_field!(de_max_authorization_seconds, "maxAuthorizationSeconds");
present_field!(de_consent_required, "consentRequired");

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
        let document: PolicyDocument =
            serde_json::from_str(json).map_err(|e| PolicyError::Json(e.to_string()))?;
        document.validate()?;
        Ok(document)
    }

    /// Checks every field's values (amount, addresses, hosts, networks, extra assets).
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.max_per_payment_micros()?;
        if self.max_authorization_seconds == Some(0) {
            return Err(PolicyError::MaxAuthorizationSeconds);
        }
        validate_pay_to("allowedPayTo", &self.allowed_pay_to)?;
        validate_pay_to("blockedPayTo", &self.blocked_pay_to)?;
        validate_hosts("allowedHosts", &self.allowed_hosts)?;
        validate_hosts("blockedHosts", &self.blocked_hosts)?;
        if let Some(bad) = self
            .allowed_networks
            .iter()
            .flatten()
            .find(|n| !is_caip2(n))
        {
            return Err(PolicyError::Network(bad.clone()));
        }
        if let Some(extra) = &self.extra_assets {
            AssetTable::trusted()
                .with_extra(extra)
                .map_err(PolicyError::ExtraAsset)?;
        }
        Ok(())
    }

    /// `maxPerPayment` in micro-USD, if present.
    fn max_per_payment_micros(&self) -> Result<Option<u64>, PolicyError> {
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

/// Every entry must be a valid EVM or Solana address, so a typo cannot silently match nothing.
fn validate_pay_to(field: &'static str, list: &Option<Vec<String>>) -> Result<(), PolicyError> {
    match list
        .iter()
        .flatten()
        .find(|a| validate_evm(a).is_err() && validate_solana(a).is_err())
    {
        Some(bad) => Err(PolicyError::PayTo {
            field,
            value: bad.clone(),
        }),
        None => Ok(()),
    }
}

/// Every entry must be a hostname, IP literal or `*.` wildcard, without scheme, port or path.
fn validate_hosts(field: &'static str, list: &Option<Vec<String>>) -> Result<(), PolicyError> {
    match list
        .iter()
        .flatten()
        .find(|h| normalize_host_pattern(h).is_none())
    {
        Some(bad) => Err(PolicyError::Host {
            field,
            value: bad.clone(),
        }),
        None => Ok(()),
    }
}

/// The normalized patterns of a validated list (see [`normalize_host_pattern`]).
fn normalized_hosts(list: &Option<Vec<String>>) -> Option<Vec<String>> {
    list.as_ref().map(|hosts| {
        hosts
            .iter()
            .filter_map(|h| normalize_host_pattern(h))
            .collect()
    })
}

/// Whether a normalized host matches a normalized pattern; `*.example.com` matches strict
/// subdomains only.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        // suffix is ".example.com"; the host needs at least one label before it.
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => pattern == host,
    }
}

/// The authorization window when no policy sets `maxAuthorizationSeconds`.
pub const DEFAULT_MAX_AUTHORIZATION_SECONDS: u64 = 300;
/// The longest authorization window whatever a policy says: a SENT hold stays open until the
/// signed authorization cannot settle, so this bounds how long budget can be in doubt.
pub const MAX_AUTHORIZATION_CEILING_SECONDS: u64 = 900;

/// The allow-lists of every scope that has one; a value must be in each.
#[derive(Debug, Clone, Default)]
struct AllowLists(Vec<Vec<String>>);

impl AllowLists {
    /// Collects the lists present in `docs`.
    fn collect<'a>(
        docs: &[&'a PolicyDocument],
        field: impl Fn(&'a PolicyDocument) -> &'a Option<Vec<String>>,
    ) -> Self {
        Self(docs.iter().filter_map(|d| field(d).clone()).collect())
    }

    /// Whether some scope restricts this field.
    fn is_present(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether every present list has an entry that `matches`.
    fn permits(&self, matches: impl Fn(&str) -> bool) -> bool {
        self.0.iter().all(|list| list.iter().any(|e| matches(e)))
    }
}

/// The union of every scope's deny-list for one field.
fn union(
    docs: &[&PolicyDocument],
    field: impl Fn(&PolicyDocument) -> &Option<Vec<String>>,
) -> Vec<String> {
    docs.iter()
        .flat_map(|d| field(d).iter().flatten().cloned())
        .collect()
}

/// The combination of every policy that exists (global, user, agent).
#[derive(Debug, Clone)]
pub struct EffectivePolicy {
    allowed_pay_to: AllowLists,
    blocked_pay_to: Vec<String>,
    allowed_hosts: AllowLists,
    blocked_hosts: Vec<String>,
    allowed_networks: AllowLists,
    allowed_assets: AllowLists,
    allowed_tools: AllowLists,
    max_per_payment_micros: Option<u64>,
    max_authorization_seconds: u64,
    consent_required: bool,
    asset_table: AssetTable,
}

/// Combines policy documents; an empty slice restricts nothing (the caller handles POLICY_MISSING).
pub fn combine(docs: &[&PolicyDocument]) -> Result<EffectivePolicy, PolicyError> {
    let mut max_per_payment_micros: Option<u64> = None;
    for doc in docs {
        doc.validate()?;
        if let Some(limit) = doc.max_per_payment_micros()? {
            max_per_payment_micros = Some(max_per_payment_micros.map_or(limit, |m| m.min(limit)));
        }
    }
    let extra_assets: Vec<AssetInfo> = docs
        .iter()
        .flat_map(|d| d.extra_assets.iter().flatten().cloned())
        .collect();
    let asset_table = AssetTable::trusted()
        .with_extra(&extra_assets)
        .map_err(PolicyError::ExtraAsset)?;
    Ok(EffectivePolicy {
        allowed_pay_to: AllowLists::collect(docs, |d| &d.allowed_pay_to),
        blocked_pay_to: union(docs, |d| &d.blocked_pay_to),
        allowed_hosts: AllowLists(
            docs.iter()
                .filter_map(|d| normalized_hosts(&d.allowed_hosts))
                .collect(),
        ),
        blocked_hosts: docs
            .iter()
            .flat_map(|d| normalized_hosts(&d.blocked_hosts).unwrap_or_default())
            .collect(),
        allowed_networks: AllowLists::collect(docs, |d| &d.allowed_networks),
        allowed_assets: AllowLists::collect(docs, |d| &d.allowed_assets),
        allowed_tools: AllowLists::collect(docs, |d| &d.allowed_tools),
        max_per_payment_micros,
        max_authorization_seconds: docs
            .iter()
            .filter_map(|d| d.max_authorization_seconds)
            .min()
            .unwrap_or(DEFAULT_MAX_AUTHORIZATION_SECONDS)
            .min(MAX_AUTHORIZATION_CEILING_SECONDS),
        consent_required: docs.iter().any(|d| d.consent_required == Some(true)),
        asset_table,
    })
}

impl EffectivePolicy {
    /// Whether `pay_to` on `network` is in every present `allowedPayTo`.
    pub fn pay_to_allowed(&self, network: &str, pay_to: &str) -> bool {
        self.allowed_pay_to
            .permits(|entry| addresses_equal(network, entry, pay_to))
    }

    /// Whether `pay_to` on `network` is in any `blockedPayTo`.
    pub fn pay_to_blocked(&self, network: &str, pay_to: &str) -> bool {
        self.blocked_pay_to
            .iter()
            .any(|entry| addresses_equal(network, entry, pay_to))
    }

    /// Whether the requested host (a hostname or IP literal, without port) passes every present
    /// `allowedHosts`. Without a host nothing can be checked against an allow-list: fail closed.
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        match host {
            Some(host) => {
                let host = normalize_host(host);
                self.allowed_hosts.permits(|p| host_matches(p, &host))
            }
            None => !self.allowed_hosts.is_present(),
        }
    }

    /// Whether the requested host matches any `blockedHosts` entry. Without a host a deny-list
    /// cannot be checked either, so an unknown host counts as blocked when one exists.
    pub fn host_blocked(&self, host: Option<&str>) -> bool {
        match host {
            Some(host) => {
                let host = normalize_host(host);
                self.blocked_hosts.iter().any(|p| host_matches(p, &host))
            }
            None => !self.blocked_hosts.is_empty(),
        }
    }

    /// Whether the CAIP-2 network is in every present `allowedNetworks`.
    pub fn network_allowed(&self, network: &str) -> bool {
        self.allowed_networks.permits(|n| n == network)
    }

    /// Whether the asset symbol is in every present `allowedAssets`.
    pub fn asset_allowed(&self, symbol: &str) -> bool {
        self.allowed_assets.permits(|s| s == symbol)
    }

    /// Whether the tool name is in every present `allowedTools`.
    pub fn tool_allowed(&self, tool: &str) -> bool {
        self.allowed_tools.permits(|t| t == tool)
    }

    /// The smallest `maxPerPayment` of any scope, in micro-USD.
    pub fn max_per_payment_micros(&self) -> Option<u64> {
        self.max_per_payment_micros
    }

    /// The longest authorization window allowed, in seconds: the smallest
    /// `maxAuthorizationSeconds` of any scope, else the default, never above the ceiling.
    pub fn max_authorization_seconds(&self) -> u64 {
        self.max_authorization_seconds
    }

    /// Whether any scope requires consent.
    pub fn consent_required(&self) -> bool {
        self.consent_required
    }

    /// The trusted asset table plus every scope's extra assets.
    pub fn asset_table(&self) -> &AssetTable {
        &self.asset_table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::format_usd;
    use proptest::prelude::*;

    const BASE: &str = "eip155:8453";
    const SOLANA: &str = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp";
    const MERCHANT: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
    const OTHER_MERCHANT: &str = "0x6B175474E89094C44Da98b954EedeAC495271d0F";
    const SOLANA_MERCHANT: &str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";

    fn doc(json: &str) -> PolicyDocument {
        PolicyDocument::parse(json).unwrap()
    }

    fn effective(jsons: &[&str]) -> EffectivePolicy {
        let docs: Vec<PolicyDocument> = jsons.iter().map(|j| doc(j)).collect();
        let refs: Vec<&PolicyDocument> = docs.iter().collect();
        combine(&refs).unwrap()
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
            allowed_networks: Some(vec![]),
            allowed_assets: Some(vec![]),
            extra_assets: Some(vec![]),
            max_per_payment: Some("1".into()),
            max_authorization_seconds: Some(1),
            allowed_tools: Some(vec![]),
            consent_required: Some(true),
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
    fn document_serializes_without_absent_fields() {
        let d = doc(r#"{"maxPerPayment":"5.00","allowedTools":[]}"#);
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"maxPerPayment":"5.00","allowedTools":[]}"#
        );
    }

    // ---- combine: absent, empty, intersect, unite, minimum ----

    #[test]
    fn combine_of_no_policies_restricts_nothing() {
        let p = combine(&[]).unwrap();
        assert!(p.pay_to_allowed(BASE, MERCHANT));
        assert!(!p.pay_to_blocked(BASE, MERCHANT));
        assert!(p.host_allowed(None));
        assert!(!p.host_blocked(Some("evil.com")));
        assert!(p.network_allowed(BASE));
        assert!(p.asset_allowed("USDC"));
        assert!(p.tool_allowed("search"));
        assert_eq!(p.max_per_payment_micros(), None);
        assert!(!p.consent_required());
        assert_eq!(p.asset_table().iter().count(), 8);
    }

    #[test]
    fn absent_field_puts_no_restriction() {
        let p = effective(&["{}"]);
        assert!(p.tool_allowed("anything"));
    }

    #[test]
    fn present_empty_list_allows_nothing() {
        // GIVEN a scope with allowedTools [] WHEN any tool is checked THEN it is not allowed
        let p = effective(&["{}", r#"{"allowedTools":[]}"#]);
        assert!(!p.tool_allowed("search"));
        assert!(!p.tool_allowed(""));
    }

    #[test]
    fn allow_lists_intersect_across_scopes() {
        let p = effective(&[
            r#"{"allowedTools":["search","fetch"]}"#,
            r#"{"allowedTools":["fetch","buy"]}"#,
        ]);
        assert!(p.tool_allowed("fetch"));
        assert!(!p.tool_allowed("search"));
        assert!(!p.tool_allowed("buy"));
    }

    #[test]
    fn network_and_asset_allow_lists_intersect() {
        let p = effective(&[
            &format!(r#"{{"allowedNetworks":["{BASE}","eip155:1"],"allowedAssets":["USDC"]}}"#),
            &format!(r#"{{"allowedNetworks":["{BASE}"]}}"#),
        ]);
        assert!(p.network_allowed(BASE));
        assert!(!p.network_allowed("eip155:1"));
        assert!(p.asset_allowed("USDC"));
        assert!(!p.asset_allowed("usdc"));
    }

    #[test]
    fn deny_lists_unite_across_scopes() {
        let p = effective(&[
            r#"{"blockedHosts":["a.com"]}"#,
            &format!(r#"{{"blockedHosts":["b.com"],"blockedPayTo":["{MERCHANT}"]}}"#),
        ]);
        assert!(p.host_blocked(Some("a.com")));
        assert!(p.host_blocked(Some("b.com")));
        assert!(!p.host_blocked(Some("c.com")));
        assert!(p.pay_to_blocked(BASE, MERCHANT));
    }

    #[test]
    fn limits_take_the_minimum() {
        let p = effective(&[
            r#"{"maxPerPayment":"25.00"}"#,
            "{}",
            r#"{"maxPerPayment":"5.5"}"#,
        ]);
        assert_eq!(p.max_per_payment_micros(), Some(5_500_000));
    }

    #[test]
    fn consent_is_required_if_any_scope_requires_it() {
        assert!(effective(&[
            r#"{"consentRequired":false}"#,
            r#"{"consentRequired":true}"#
        ])
        .consent_required());
        assert!(!effective(&[r#"{"consentRequired":false}"#, "{}"]).consent_required());
    }

    #[test]
    fn combine_refuses_an_invalid_document_built_in_code() {
        let bad = PolicyDocument {
            max_per_payment: Some("ten".into()),
            ..Default::default()
        };
        assert!(matches!(
            combine(&[&bad]),
            Err(PolicyError::MaxPerPayment {
                source: MoneyError::NotDecimal,
                ..
            })
        ));
    }

    // ---- payTo ----

    #[test]
    fn evm_pay_to_is_compared_case_insensitively() {
        let p = effective(&[&format!(r#"{{"allowedPayTo":["{MERCHANT}"]}}"#)]);
        assert!(p.pay_to_allowed(BASE, &MERCHANT.to_ascii_lowercase()));
        assert!(p.pay_to_allowed(BASE, &MERCHANT.to_ascii_uppercase().replace("0X", "0x")));
        assert!(!p.pay_to_allowed(BASE, OTHER_MERCHANT));
    }

    #[test]
    fn evm_blocked_pay_to_matches_any_case() {
        let lower = MERCHANT.to_ascii_lowercase();
        let p = effective(&[&format!(r#"{{"blockedPayTo":["{lower}"]}}"#)]);
        assert!(p.pay_to_blocked(BASE, MERCHANT));
    }

    #[test]
    fn solana_pay_to_is_compared_exactly() {
        let p = effective(&[&format!(r#"{{"allowedPayTo":["{SOLANA_MERCHANT}"]}}"#)]);
        assert!(p.pay_to_allowed(SOLANA, SOLANA_MERCHANT));
        assert!(!p.pay_to_allowed(SOLANA, &SOLANA_MERCHANT.to_ascii_lowercase()));
    }

    // ---- hosts ----

    #[test]
    fn wildcard_host_matches_subdomains_but_not_the_domain_itself() {
        let p = effective(&[r#"{"allowedHosts":["*.example.com"]}"#]);
        assert!(p.host_allowed(Some("api.example.com")));
        assert!(p.host_allowed(Some("a.b.example.com")));
        assert!(!p.host_allowed(Some("example.com")));
        assert!(!p.host_allowed(Some("badexample.com")));
        assert!(!p.host_allowed(Some(".example.com")));
    }

    #[test]
    fn exact_host_does_not_match_subdomains() {
        let p = effective(&[r#"{"allowedHosts":["example.com"]}"#]);
        assert!(p.host_allowed(Some("example.com")));
        assert!(!p.host_allowed(Some("api.example.com")));
    }

    #[test]
    fn missing_host_is_not_allowed_when_an_allow_list_is_present() {
        let p = effective(&[r#"{"allowedHosts":["example.com"]}"#]);
        assert!(!p.host_allowed(None));
    }

    #[test]
    fn missing_host_is_blocked_when_a_deny_list_is_present() {
        let p = effective(&[r#"{"blockedHosts":["example.com"]}"#]);
        assert!(p.host_blocked(None));
    }

    #[test]
    fn missing_host_passes_when_no_scope_has_a_host_rule() {
        let p = effective(&[r#"{"allowedTools":["search"]}"#]);
        assert!(p.host_allowed(None) && !p.host_blocked(None));
    }

    #[test]
    fn idn_patterns_match_the_punycode_host_and_the_other_way_round() {
        let p = effective(&[r#"{"blockedHosts":["bücher.example","*.xn--caf-dma.example"]}"#]);
        assert!(p.host_blocked(Some("xn--bcher-kva.example")));
        assert!(p.host_blocked(Some("shop.xn--caf-dma.example")));
        assert!(!p.host_blocked(Some("xn--caf-dma.example")));
    }

    #[test]
    fn blocked_host_cannot_be_dodged_by_case_or_a_trailing_dot() {
        let p = effective(&[r#"{"blockedHosts":["evil.com","*.evil.org"]}"#]);
        assert!(p.host_blocked(Some("EVIL.com")));
        assert!(p.host_blocked(Some("evil.com.")));
        assert!(p.host_blocked(Some("x.EVIL.ORG.")));
    }

    // ---- authorization window ----

    #[test]
    fn the_authorization_window_defaults_to_300_seconds() {
        assert_eq!(effective(&["{}"]).max_authorization_seconds(), 300);
        assert_eq!(combine(&[]).unwrap().max_authorization_seconds(), 300);
    }

    #[test]
    fn the_authorization_window_is_the_smallest_of_any_scope() {
        let p = effective(&[
            r#"{"maxAuthorizationSeconds":600}"#,
            r#"{"maxAuthorizationSeconds":120}"#,
            "{}",
        ]);
        assert_eq!(p.max_authorization_seconds(), 120);
        let p = effective(&[r#"{"maxAuthorizationSeconds":600}"#]);
        assert_eq!(p.max_authorization_seconds(), 600);
    }

    #[test]
    fn no_policy_raises_the_authorization_window_above_900_seconds() {
        let p = effective(&[r#"{"maxAuthorizationSeconds":86400}"#]);
        assert_eq!(p.max_authorization_seconds(), 900);
    }

    #[test]
    fn a_zero_negative_or_fractional_authorization_window_is_refused() {
        assert_eq!(
            PolicyDocument::parse(r#"{"maxAuthorizationSeconds":0}"#),
            Err(PolicyError::MaxAuthorizationSeconds)
        );
        for bad in ["-1", "1.5", "\"300\"", "null"] {
            let err = PolicyDocument::parse(&format!(r#"{{"maxAuthorizationSeconds":{bad}}}"#))
                .unwrap_err();
            assert!(
                matches!(&err, PolicyError::Json(m) if m.contains("maxAuthorizationSeconds")),
                "{bad}: {err}"
            );
        }
    }

    // ---- extra assets ----

    #[test]
    fn extra_assets_from_every_scope_are_added_to_the_table() {
        let dai = r#"{"network":"eip155:1","address":"0x6B175474E89094C44Da98b954EedeAC495271d0F","symbol":"DAI","decimals":18,"usdPegged":true}"#;
        let p = effective(&[&format!(r#"{{"extraAssets":[{dai}]}}"#), "{}"]);
        let info = p.asset_table().lookup("eip155:1", OTHER_MERCHANT).unwrap();
        assert_eq!((info.symbol.as_str(), info.decimals), ("DAI", 18));
    }

    #[test]
    fn extra_assets_that_conflict_across_scopes_are_an_error() {
        let dai18 = r#"{"network":"eip155:1","address":"0x6B175474E89094C44Da98b954EedeAC495271d0F","symbol":"DAI","decimals":18,"usdPegged":true}"#;
        let dai6 = dai18.replace("18", "6");
        let a = doc(&format!(r#"{{"extraAssets":[{dai18}]}}"#));
        let b = doc(&format!(r#"{{"extraAssets":[{dai6}]}}"#));
        assert!(matches!(
            combine(&[&a, &b]),
            Err(PolicyError::ExtraAsset(_))
        ));
    }

    // ---- properties ----

    const TOOLS: [&str; 4] = ["search", "fetch", "buy", "sell"];
    const HOSTS: [&str; 5] = [
        "example.com",
        "*.example.com",
        "a.example.com",
        "other.org",
        "*.a.example.com",
    ];
    const CANDIDATE_HOSTS: [&str; 5] = [
        "example.com",
        "a.example.com",
        "b.a.example.com",
        "other.org",
        "x.other.org",
    ];
    const PAY_TO: [&str; 3] = [
        "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913",
        "0x6B175474E89094C44Da98b954EedeAC495271d0F",
    ];

    fn list(pool: &'static [&'static str]) -> impl Strategy<Value = Option<Vec<String>>> {
        proptest::option::of(proptest::sample::subsequence(pool.to_vec(), 0..=pool.len()))
            .prop_map(|l| l.map(|l| l.into_iter().map(String::from).collect()))
    }

    fn document() -> impl Strategy<Value = PolicyDocument> {
        (
            list(&TOOLS),
            list(&HOSTS),
            list(&HOSTS),
            list(&PAY_TO),
            proptest::option::of(0u64..50_000_000),
            proptest::option::of(any::<bool>()),
        )
            .prop_map(
                |(tools, allowed_hosts, blocked_hosts, pay_to, max, consent)| PolicyDocument {
                    allowed_tools: tools,
                    allowed_hosts,
                    blocked_hosts,
                    allowed_pay_to: pay_to,
                    max_per_payment: max.map(format_usd),
                    consent_required: consent,
                    ..Default::default()
                },
            )
    }

    /// Reference host match, written independently of `host_matches`.
    fn reference_host_match(pattern: &str, host: &str) -> bool {
        match pattern.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => pattern == host,
        }
    }

    type Field = fn(&PolicyDocument) -> &Option<Vec<String>>;

    /// Reference intersection: every present list has an entry satisfying `matches`.
    fn in_every(docs: &[PolicyDocument], field: Field, matches: impl Fn(&str) -> bool) -> bool {
        docs.iter()
            .filter_map(|d| field(d).as_ref())
            .all(|list| list.iter().any(|e| matches(e)))
    }

    /// Reference union: some present list has an entry satisfying `matches`.
    fn in_any(docs: &[PolicyDocument], field: Field, matches: impl Fn(&str) -> bool) -> bool {
        docs.iter()
            .filter_map(|d| field(d).as_ref())
            .any(|list| list.iter().any(|e| matches(e)))
    }

    fn documents() -> impl Strategy<Value = Vec<PolicyDocument>> {
        proptest::collection::vec(document(), 0..4)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn combine_never_exceeds_the_smallest_present_limit(docs in documents()) {
            let refs: Vec<&PolicyDocument> = docs.iter().collect();
            let p = combine(&refs).unwrap();
            let smallest = docs
                .iter()
                .filter_map(|d| d.max_per_payment.as_deref())
                .map(|m| parse_usd(m).unwrap())
                .min();
            prop_assert_eq!(p.max_per_payment_micros(), smallest);
            let any_consent = docs.iter().any(|d| d.consent_required == Some(true));
            prop_assert_eq!(p.consent_required(), any_consent);
        }

        #[test]
        fn combine_allows_exactly_what_every_present_list_allows(docs in documents()) {
            let refs: Vec<&PolicyDocument> = docs.iter().collect();
            let p = combine(&refs).unwrap();
            for tool in TOOLS {
                let expected = in_every(&docs, |d| &d.allowed_tools, |t| t == tool);
                prop_assert_eq!(p.tool_allowed(tool), expected, "{}", tool);
            }
            for host in CANDIDATE_HOSTS {
                let matches = |h: &str| reference_host_match(h, host);
                let allowed = in_every(&docs, |d| &d.allowed_hosts, matches);
                prop_assert_eq!(p.host_allowed(Some(host)), allowed, "{}", host);
                let blocked = in_any(&docs, |d| &d.blocked_hosts, matches);
                prop_assert_eq!(p.host_blocked(Some(host)), blocked, "{}", host);
            }
            for pay_to in PAY_TO {
                let matches = |a: &str| a.eq_ignore_ascii_case(pay_to);
                let expected = in_every(&docs, |d| &d.allowed_pay_to, matches);
                prop_assert_eq!(p.pay_to_allowed(BASE, pay_to), expected, "{}", pay_to);
            }
        }

        #[test]
        fn policy_parse_never_panics(s in "\\PC*") {
            let _ = PolicyDocument::parse(&s);
        }
    }
}
