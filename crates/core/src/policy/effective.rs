//! The combination of every policy that exists (global, user, agent) into the one the checks
//! ask. Every policy applies: a field absent from a document puts no restriction at that scope;
//! a present but empty list allows nothing. Allow-lists intersect across scopes, deny-lists
//! unite, limits take the minimum, consent is required if any scope requires it.
//!
//! Combining shares the compiled scopes (no list is copied), so a lookup costs one hash probe
//! per scope whatever the size of the lists.

use std::sync::Arc;

use super::{CompiledPolicy, PolicyDocument, PolicyError, Scope};
use crate::asset::{AssetInfo, AssetTable};
use crate::budget::BudgetClaim;
use crate::decision::SCHEME_EXACT;
use crate::request_url::{normalize_host, HttpUrl};

/// The authorization window when no policy sets `maxAuthorizationSeconds`.
pub const DEFAULT_MAX_AUTHORIZATION_SECONDS: u64 = 300;
/// The longest authorization window whatever a policy says: a SENT hold stays open until the
/// signed authorization cannot settle, so this bounds how long budget can be in doubt.
pub const MAX_AUTHORIZATION_CEILING_SECONDS: u64 = 900;

/// The combination of every policy that exists (global, user, agent).
#[derive(Debug, Clone)]
pub struct EffectivePolicy {
    scopes: Vec<Arc<CompiledPolicy>>,
    max_per_payment_micros: Option<u64>,
    max_authorization_seconds: u64,
    consent_required: bool,
    asset_table: AssetTable,
    budgets: Vec<BudgetClaim>,
}

/// Validates and combines policy documents, given in scope order (global, user, agent; a fourth
/// and later document counts as agent scope); an empty slice restricts nothing (the caller
/// handles POLICY_MISSING).
pub fn combine(docs: &[&PolicyDocument]) -> Result<EffectivePolicy, PolicyError> {
    let scopes = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let scope = [Scope::Global, Scope::User, Scope::Agent][i.min(2)];
            CompiledPolicy::compile(d).map(|c| (scope, Arc::new(c)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    combine_compiled(scopes)
}

/// Combines compiled scopes. Only the extra assets are checked across scopes here (two scopes
/// describing one token differently is an error); the lists are shared, not merged. Budgets are
/// not combined: every scope's budgets apply, each counted on its own.
pub fn combine_compiled(
    scoped: Vec<(Scope, Arc<CompiledPolicy>)>,
) -> Result<EffectivePolicy, PolicyError> {
    let budgets = scoped
        .iter()
        .flat_map(|(scope, policy)| {
            let scope = scope.budget_scope();
            policy.budgets.iter().map(move |b| BudgetClaim {
                scope,
                window: b.window,
                timezone: policy.timezone.clone(),
                amount_micros: b.amount_micros,
                count: b.count,
            })
        })
        .collect();
    let scopes: Vec<Arc<CompiledPolicy>> = scoped.into_iter().map(|(_, p)| p).collect();
    let extra_assets: Vec<AssetInfo> = scopes
        .iter()
        .flat_map(|s| s.extra_assets.iter().cloned())
        .collect();
    let asset_table = if extra_assets.is_empty() {
        AssetTable::trusted()
    } else {
        AssetTable::trusted()
            .with_extra(&extra_assets)
            .map_err(PolicyError::ExtraAsset)?
    };
    Ok(EffectivePolicy {
        max_per_payment_micros: scopes.iter().filter_map(|s| s.max_per_payment_micros).min(),
        max_authorization_seconds: scopes
            .iter()
            .filter_map(|s| s.max_authorization_seconds)
            .min()
            .unwrap_or(DEFAULT_MAX_AUTHORIZATION_SECONDS)
            .min(MAX_AUTHORIZATION_CEILING_SECONDS),
        consent_required: scopes.iter().any(|s| s.consent_required),
        asset_table,
        budgets,
        scopes,
    })
}

impl EffectivePolicy {
    /// Whether `pay_to` on `network` is in every present `allowedPayTo`.
    pub fn pay_to_allowed(&self, network: &str, pay_to: &str) -> bool {
        self.scopes.iter().all(|s| {
            s.allowed_pay_to
                .as_ref()
                .is_none_or(|set| set.contains(network, pay_to))
        })
    }

    /// Whether `pay_to` on `network` is in any `blockedPayTo`.
    pub fn pay_to_blocked(&self, network: &str, pay_to: &str) -> bool {
        self.scopes.iter().any(|s| {
            s.blocked_pay_to
                .as_ref()
                .is_some_and(|set| set.contains(network, pay_to))
        })
    }

    /// Whether the requested host (a hostname or IP literal, without port) passes every present
    /// `allowedHosts`. Without a host nothing can be checked against an allow-list: fail closed.
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        match host {
            Some(host) => {
                let host = normalize_host(host);
                self.scopes.iter().all(|s| {
                    s.allowed_hosts
                        .as_ref()
                        .is_none_or(|set| set.matches(&host))
                })
            }
            None => self.scopes.iter().all(|s| s.allowed_hosts.is_none()),
        }
    }

    /// Whether the requested host matches any `blockedHosts` entry. Without a host a deny-list
    /// cannot be checked either, so an unknown host counts as blocked when one exists.
    pub fn host_blocked(&self, host: Option<&str>) -> bool {
        match host {
            Some(host) => {
                let host = normalize_host(host);
                self.scopes.iter().any(|s| {
                    s.blocked_hosts
                        .as_ref()
                        .is_some_and(|set| set.matches(&host))
                })
            }
            None => self
                .scopes
                .iter()
                .any(|s| s.blocked_hosts.as_ref().is_some_and(|set| !set.is_empty())),
        }
    }

    /// Whether the requested URL passes every present `allowedUrls`: some entry of each has its
    /// scheme, host and port and a prefix of its path. Without a URL, or with a path URL rules
    /// cannot judge, nothing passes an allow-list: fail closed.
    pub fn url_allowed(&self, url: Option<&HttpUrl>) -> bool {
        self.scopes.iter().all(|s| {
            s.allowed_urls
                .as_ref()
                .is_none_or(|set| url.is_some_and(|url| set.allows(url)))
        })
    }

    /// Whether the requested URL matches any `blockedUrls` entry (paths in any letter case). A
    /// path URL rules cannot judge is blocked by any entry of its origin, and without a URL by
    /// any entry at all: fail closed.
    pub fn url_blocked(&self, url: Option<&HttpUrl>) -> bool {
        self.scopes.iter().any(|s| {
            s.blocked_urls.as_ref().is_some_and(|set| match url {
                Some(url) => set.blocks(url),
                None => !set.is_empty(),
            })
        })
    }

    /// Whether the CAIP-2 network is in every present `allowedNetworks`.
    pub fn network_allowed(&self, network: &str) -> bool {
        self.scopes.iter().all(|s| {
            s.allowed_networks
                .as_ref()
                .is_none_or(|set| set.contains(network))
        })
    }

    /// Whether the x402 scheme is allowed: in every `schemes` list a scope sets, and, where no
    /// scope sets one, only `exact`.
    pub fn scheme_allowed(&self, scheme: &str) -> bool {
        let mut lists = self
            .scopes
            .iter()
            .filter_map(|s| s.schemes.as_ref())
            .peekable();
        if lists.peek().is_none() {
            return scheme == SCHEME_EXACT;
        }
        lists.all(|set| set.contains(scheme))
    }

    /// Whether the asset symbol is in every present `allowedAssets`.
    pub fn asset_allowed(&self, symbol: &str) -> bool {
        self.scopes.iter().all(|s| {
            s.allowed_assets
                .as_ref()
                .is_none_or(|set| set.contains(symbol))
        })
    }

    /// Whether the tool name is in every present `allowedTools`.
    pub fn tool_allowed(&self, tool: &str) -> bool {
        self.scopes.iter().all(|s| {
            s.allowed_tools
                .as_ref()
                .is_none_or(|set| set.contains(tool))
        })
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

    /// Every scope's budgets, each with its scope and time zone.
    pub fn budgets(&self) -> &[BudgetClaim] {
        &self.budgets
    }

    /// The trusted asset table with every scope's extra assets.
    pub fn asset_table(&self) -> &AssetTable {
        &self.asset_table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{format_usd, parse_usd, MoneyError};
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

    // ---- URLs ----

    fn url(text: &str) -> HttpUrl {
        HttpUrl::parse(text).unwrap()
    }

    #[test]
    fn url_allow_lists_intersect_across_scopes() {
        // GIVEN a global allow-list of /v1/ and a user allow-list of /v1/search/
        let p = effective(&[
            r#"{"allowedUrls":["https://api.example/v1/","https://other.example/"]}"#,
            r#"{"allowedUrls":["https://api.example/v1/search/"]}"#,
        ]);
        // THEN only URLs both admit pass
        assert!(p.url_allowed(Some(&url("https://api.example/v1/search/q"))));
        assert!(!p.url_allowed(Some(&url("https://api.example/v1/other"))));
        assert!(!p.url_allowed(Some(&url("https://other.example/v1/search/q"))));
    }

    #[test]
    fn url_deny_lists_unite_across_scopes() {
        let p = effective(&[
            r#"{"blockedUrls":["https://api.example/admin/"]}"#,
            "{}",
            r#"{"blockedUrls":["https://api.example/internal"]}"#,
        ]);
        assert!(p.url_blocked(Some(&url("https://api.example/admin/x"))));
        assert!(p.url_blocked(Some(&url("https://api.example/Internal/x"))));
        assert!(!p.url_blocked(Some(&url("https://api.example/v1/x"))));
    }

    #[test]
    fn a_present_but_empty_url_allow_list_allows_nothing_and_an_empty_deny_list_blocks_nothing() {
        let p = effective(&[r#"{"allowedUrls":[],"blockedUrls":[]}"#]);
        assert!(!p.url_allowed(Some(&url("https://api.example/"))));
        assert!(!p.url_blocked(Some(&url("https://api.example/"))));
        assert!(!p.url_blocked(None));
    }

    #[test]
    fn url_rules_fail_closed_without_a_url_or_with_a_path_they_cannot_judge() {
        // GIVEN URL rules WHEN the event has no URL THEN the allow-list fails and the deny-list blocks
        let allow = effective(&[r#"{"allowedUrls":["https://api.example/"]}"#]);
        let deny = effective(&[r#"{"blockedUrls":["https://api.example/admin/"]}"#]);
        assert!(!allow.url_allowed(None));
        assert!(deny.url_blocked(None));
        // AND a path with an empty segment or an encoded slash is judged neither way
        for text in [
            "https://api.example//x",
            "https://api.example/v1%2F..%2Fadmin",
        ] {
            assert!(!allow.url_allowed(Some(&url(text))), "{text}");
            assert!(deny.url_blocked(Some(&url(text))), "{text}");
        }
        // AND with no URL rule at any scope, nothing is judged
        let none = effective(&[r#"{"allowedHosts":["api.example"]}"#]);
        assert!(none.url_allowed(None) && !none.url_blocked(None));
        assert!(none.url_allowed(Some(&url("https://api.example//x"))));
    }

    #[test]
    fn combine_of_no_policies_has_no_url_rule() {
        let p = combine(&[]).unwrap();
        assert!(p.url_allowed(None));
        assert!(!p.url_blocked(None));
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
