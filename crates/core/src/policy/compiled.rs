//! One policy document compiled for the checks: every list a hash set of its entries in the form
//! they are compared in, the limits parsed. Compiling is validating: a document that compiles is
//! valid, and every address is checksummed and every host and URL pattern normalized exactly
//! once.
//! [`super::PolicyCache`] compiles each (scope, version) once per warm container.

use std::collections::HashSet;

use super::url_rules::UrlSet;
use super::{PolicyDocument, PolicyError};
use crate::address::{family, validate_evm, validate_solana, Family};
use crate::asset::{is_caip2, AssetInfo, AssetTable};
use crate::budget::{compile_budgets, compile_timezone, Budget};
use crate::decision::KNOWN_SCHEMES;
use crate::request_url::normalize_host_pattern;

/// A validated policy document of one scope, ready for lookups.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub(super) allowed_pay_to: Option<AddressSet>,
    pub(super) blocked_pay_to: Option<AddressSet>,
    pub(super) allowed_hosts: Option<HostSet>,
    pub(super) blocked_hosts: Option<HostSet>,
    pub(super) allowed_urls: Option<UrlSet>,
    pub(super) blocked_urls: Option<UrlSet>,
    pub(super) allowed_networks: Option<HashSet<String>>,
    pub(super) allowed_assets: Option<HashSet<String>>,
    pub(super) allowed_tools: Option<HashSet<String>>,
    pub(super) max_per_payment_micros: Option<u64>,
    pub(super) max_authorization_seconds: Option<u64>,
    pub(super) consent_required: bool,
    pub(super) extra_assets: Vec<AssetInfo>,
    pub(super) budgets: Vec<Budget>,
    pub(super) timezone: String,
    pub(super) schemes: Option<HashSet<String>>,
}

impl CompiledPolicy {
    /// Reads, validates and compiles a stored document.
    pub fn parse(json: &str) -> Result<Self, PolicyError> {
        Self::compile(&PolicyDocument::from_json(json)?)
    }

    /// Validates and compiles a document. The checks run in the order of the fields' refusals:
    /// maxPerPayment, maxAuthorizationSeconds, allowedPayTo, blockedPayTo, allowedHosts,
    /// blockedHosts, allowedUrls, blockedUrls, allowedNetworks, extraAssets, timezone, budgets,
    /// schemes.
    pub fn compile(doc: &PolicyDocument) -> Result<Self, PolicyError> {
        let max_per_payment_micros = doc.max_per_payment_micros()?;
        if doc.max_authorization_seconds == Some(0) {
            return Err(PolicyError::MaxAuthorizationSeconds);
        }
        let allowed_pay_to = AddressSet::compile("allowedPayTo", &doc.allowed_pay_to)?;
        let blocked_pay_to = AddressSet::compile("blockedPayTo", &doc.blocked_pay_to)?;
        let allowed_hosts = HostSet::compile("allowedHosts", &doc.allowed_hosts)?;
        let blocked_hosts = HostSet::compile("blockedHosts", &doc.blocked_hosts)?;
        let allowed_urls = UrlSet::compile("allowedUrls", &doc.allowed_urls, false)?;
        let blocked_urls = UrlSet::compile("blockedUrls", &doc.blocked_urls, true)?;
        if let Some(bad) = doc.allowed_networks.iter().flatten().find(|n| !is_caip2(n)) {
            return Err(PolicyError::Network(bad.clone()));
        }
        let extra_assets = doc.extra_assets.clone().unwrap_or_default();
        if !extra_assets.is_empty() {
            AssetTable::trusted()
                .with_extra(&extra_assets)
                .map_err(PolicyError::ExtraAsset)?;
        }
        let timezone = match &doc.timezone {
            Some(name) => {
                compile_timezone(Some(name)).map_err(PolicyError::Timezone)?;
                name.clone()
            }
            None => "UTC".to_string(),
        };
        let budgets = compile_budgets(doc.budgets.as_deref().unwrap_or_default())
            .map_err(PolicyError::Budget)?;
        let schemes = compile_schemes(&doc.schemes)?;
        Ok(CompiledPolicy {
            allowed_pay_to,
            blocked_pay_to,
            allowed_hosts,
            blocked_hosts,
            allowed_urls,
            blocked_urls,
            allowed_networks: string_set(&doc.allowed_networks),
            allowed_assets: string_set(&doc.allowed_assets),
            allowed_tools: string_set(&doc.allowed_tools),
            max_per_payment_micros,
            max_authorization_seconds: doc.max_authorization_seconds,
            consent_required: doc.consent_required == Some(true),
            extra_assets,
            budgets,
            timezone,
            schemes,
        })
    }
}

/// A `schemes` list: at least one entry, each a scheme predebit approves, none twice.
fn compile_schemes(list: &Option<Vec<String>>) -> Result<Option<HashSet<String>>, PolicyError> {
    let Some(list) = list else {
        return Ok(None);
    };
    if list.is_empty() {
        return Err(PolicyError::Scheme(
            "must name at least one scheme (leave it out for exact only)".into(),
        ));
    }
    let mut set = HashSet::new();
    for scheme in list {
        if !KNOWN_SCHEMES.contains(&scheme.as_str()) {
            return Err(PolicyError::Scheme(format!(
                "{scheme:?} is not a scheme predebit approves (exact, upto)"
            )));
        }
        if !set.insert(scheme.clone()) {
            return Err(PolicyError::Scheme(format!("{scheme:?} is listed twice")));
        }
    }
    Ok(Some(set))
}

fn string_set(list: &Option<Vec<String>>) -> Option<HashSet<String>> {
    list.as_ref().map(|l| l.iter().cloned().collect())
}

/// A payTo list. EVM addresses compare case-insensitively and Solana's exactly, and an entry
/// carries no network, so both forms are kept: as written, and ASCII-lowercased.
#[derive(Debug, Clone, Default)]
pub(super) struct AddressSet {
    exact: HashSet<String>,
    folded: HashSet<String>,
}

/// `0x` and 40 hex digits: the only length an EVM entry has.
const EVM_ADDRESS_LEN: usize = 42;

impl AddressSet {
    /// Every entry must be a valid EVM (EIP-55 when mixed-case) or Solana address, so a typo
    /// cannot silently match nothing.
    fn compile(
        field: &'static str,
        list: &Option<Vec<String>>,
    ) -> Result<Option<Self>, PolicyError> {
        let Some(list) = list else { return Ok(None) };
        let mut set = AddressSet::default();
        for address in list {
            if validate_evm(address).is_err() && validate_solana(address).is_err() {
                return Err(PolicyError::PayTo {
                    field,
                    value: address.clone(),
                });
            }
            set.folded.insert(address.to_ascii_lowercase());
            set.exact.insert(address.clone());
        }
        Ok(Some(set))
    }

    /// Whether `address` on `network` is in the set (EVM: in any case).
    pub(super) fn contains(&self, network: &str, address: &str) -> bool {
        match family(network) {
            Some(Family::Evm) => {
                // Lowercased on the stack: an EVM entry is 42 ASCII bytes, anything else misses.
                if address.len() != EVM_ADDRESS_LEN {
                    return false;
                }
                let mut lower = [0u8; EVM_ADDRESS_LEN];
                lower.copy_from_slice(address.as_bytes());
                lower.make_ascii_lowercase();
                std::str::from_utf8(&lower).is_ok_and(|lower| self.folded.contains(lower))
            }
            _ => self.exact.contains(address),
        }
    }
}

/// A host list, normalized (punycode, lowercase, no trailing dot): exact names, and the
/// suffixes of `*.` patterns (".example.com"), which match strict subdomains only.
#[derive(Debug, Clone, Default)]
pub(super) struct HostSet {
    exact: HashSet<String>,
    suffixes: HashSet<String>,
}

impl HostSet {
    /// Every entry must be a hostname, IP literal or `*.` wildcard, without scheme, port or path.
    fn compile(
        field: &'static str,
        list: &Option<Vec<String>>,
    ) -> Result<Option<Self>, PolicyError> {
        let Some(list) = list else { return Ok(None) };
        let mut set = HostSet::default();
        for pattern in list {
            let Some(normalized) = normalize_host_pattern(pattern) else {
                return Err(PolicyError::Host {
                    field,
                    value: pattern.clone(),
                });
            };
            match normalized.strip_prefix('*') {
                Some(suffix) => set.suffixes.insert(suffix.to_string()),
                None => set.exact.insert(normalized),
            };
        }
        Ok(Some(set))
    }

    /// Whether a normalized host matches an entry: itself, or a suffix after at least one label.
    pub(super) fn matches(&self, host: &str) -> bool {
        self.exact.contains(host)
            || (!self.suffixes.is_empty()
                && host
                    .match_indices('.')
                    .any(|(i, _)| i > 0 && self.suffixes.contains(&host[i..])))
    }

    /// Whether the list has no entry.
    pub(super) fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffixes.is_empty()
    }
}
