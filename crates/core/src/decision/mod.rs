//! The decision: checks in a fixed, documented order (cheapest and most specific first), then
//! the response, the sealed audit record and, on YES, the decision token.
//!
//! Order: INVALID_REQUEST, PAYMENT_TYPE_NOT_SUPPORTED, REQUIREMENT_INVALID, SCHEME_NOT_ALLOWED,
//! RESOURCE_MISMATCH (no store read for these); STORE_UNAVAILABLE; POLICY_MISSING, POLICY_INVALID; AGENT_UNKNOWN,
//! AGENT_USER_MISMATCH, AGENT_REVOKED, AGENT_SUSPENDED; SESSION_UNKNOWN, SESSION_USER_MISMATCH,
//! SESSION_CLOSED, SESSION_EXPIRED; CONSENT_MISSING, CONSENT_REVOKED, CONSENT_EXPIRED (when
//! consent is required); TOOL_NOT_ALLOWED; SCHEME_NOT_ALLOWED (a scheme policy does not allow:
//! `upto` unless a policy's `schemes` names it); NETWORK_NOT_ALLOWED; ASSET_NOT_ALLOWED;
//! AMOUNT_OUT_OF_RANGE; MERCHANT_BLOCKED; MERCHANT_NOT_ALLOWED; AUTHORIZATION_WINDOW_TOO_LONG;
//! AMOUNT_OVER_PAYMENT_LIMIT; SESSION_BUDGET_EXCEEDED; BUDGET_EXCEEDED (each budget counter this
//! container could predict and read); else YES.

mod checks;
#[cfg(test)]
pub(crate) mod no_echo;
mod prepare;
mod scheme;
mod seal;
mod select;

use serde::Serialize;
use serde_json::Value;

use crate::audit::SealedAudit;
use crate::budget::{counter_keys, BudgetClaim};
use crate::keys::KeyRing;
use crate::policy::PolicyCache;
use crate::reason::ReasonCode;
use crate::records::PolicyVersions;
use crate::store::{StoreError, VerifyKeys, VerifyReader};
use crate::verify::VerifyRequest;
use crate::x402::Requirement;

pub use checks::budget_refusal;
pub use prepare::{prepare, prepare_request, Prepared};
pub use seal::finish;
pub use select::{check_position, select, CHECK_ORDER};

/// The x402 scheme whose signed amount is the charge; the only one allowed by default.
pub const SCHEME_EXACT: &str = "exact";
/// The x402 scheme whose signed amount is a maximum: the merchant settles for at most that. A
/// policy allows it with `schemes`; EVM networks only (x402 signs it with Permit2).
pub const SCHEME_UPTO: &str = "upto";
/// Every scheme predebit approves when policy allows it.
pub const KNOWN_SCHEMES: [&str; 2] = [SCHEME_EXACT, SCHEME_UPTO];

/// YES or NO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Sign.
    #[serde(rename = "YES")]
    Yes,
    /// Do not sign.
    #[serde(rename = "NO")]
    No,
}

impl Verdict {
    /// "YES" or "NO".
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Yes => "YES",
            Verdict::No => "NO",
        }
    }
}

/// The amount as the decision saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmountView {
    /// Atomic token units, decimal string.
    pub atomic: String,
    /// The asset's symbol, when the asset is trusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// Micro-USD, rounded up, when it could be converted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub micros: Option<u64>,
    /// The same in USD, e.g. "1.50".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usd: Option<String>,
}

/// The verify response (camelCase JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Always "1".
    pub version: &'static str,
    /// YES or NO.
    pub decision: Verdict,
    /// APPROVED on YES; the first failing check on NO.
    pub reason_code: ReasonCode,
    /// What happened and, where it helps, what to do next; names a malformed field.
    pub message: String,
    /// This decision's id (also in the audit record).
    pub verification_id: String,
    /// SHA-256 of the canonical audit record.
    pub audit_hash: String,
    /// The policy versions used; null marks an absent scope.
    pub policy_versions: PolicyVersions,
    /// The amount, once the requirement parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<AmountView>,
    /// On YES: the token the ledger's reserve takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_token: Option<String>,
    /// On YES: when the token expires (epoch seconds, exclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// A decision: the response for the caller and the sealed audit record for the log.
#[derive(Clone, Debug)]
pub struct Decision {
    /// What the caller receives.
    pub response: VerifyResponse,
    /// What the log receives.
    pub audit: SealedAudit,
    /// On YES: how full each limit the decision read is, before and after this payment (the
    /// handler raises an alert metric when one crosses its threshold).
    pub usage: Vec<LimitUsage>,
}

/// How full one limit is before and after a payment, in basis points of the limit (10,000 =
/// the whole limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitUsage {
    /// `session`, or a budget as `<scope>:<window>` (`user:day`, `agent:rolling3600`): a
    /// metric dimension, never an id.
    pub limit: String,
    /// Before the payment.
    pub before_bp: u64,
    /// After it.
    pub after_bp: u64,
}

impl LimitUsage {
    /// The usage of `limit` going from `used` to `used + cost` out of `of`.
    pub fn of(limit: String, used: u64, cost: u64, of: u64) -> Self {
        let bp = |x: u64| {
            u64::try_from(u128::from(x) * 10_000 / u128::from(of.max(1))).unwrap_or(u64::MAX)
        };
        LimitUsage {
            limit,
            before_bp: bp(used),
            after_bp: bp(used.saturating_add(cost)),
        }
    }

    /// Whether this payment takes the limit from below `percent` to at least it.
    pub fn crosses(&self, percent: u64) -> bool {
        let threshold = percent.saturating_mul(100);
        self.before_bp < threshold && self.after_bp >= threshold
    }
}

/// Per-invocation context supplied by the handler.
#[derive(Clone, Copy, Debug)]
pub struct DecisionContext<'a> {
    /// A unique id for this decision (the Lambda request id).
    pub verification_id: &'a str,
    /// Epoch seconds.
    pub now: u64,
    /// The signing and pseudonymization keys.
    pub keys: &'a KeyRing,
    /// The container's compiled policies.
    pub policies: &'a PolicyCache,
}

/// The result of the checks, before sealing.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// APPROVED or the failing check.
    pub reason: ReasonCode,
    /// The specific problem (a field name, a scope), never a secret or a user id.
    pub detail: Option<String>,
    /// The parsed request, when it parsed.
    pub request: Option<VerifyRequest>,
    /// The parsed requirement, when it parsed.
    pub requirement: Option<Requirement>,
    /// The amount, as far as it was computed.
    pub amount: Option<AmountView>,
    /// Policy versions used.
    pub policy_versions: PolicyVersions,
    /// Whether the policies required consent.
    pub consent_required: bool,
    /// The longest authorization window policy allows (seconds), once the policies parsed.
    pub authorization_window_seconds: Option<u64>,
    /// Every scope's budgets, once the policies parsed: the token carries them to reserve.
    pub budgets: Vec<BudgetClaim>,
    /// How full the limits read are, once the checks passed them.
    pub usage: Vec<LimitUsage>,
}

impl Outcome {
    fn declined(reason: ReasonCode, detail: impl Into<String>) -> Self {
        Outcome {
            reason,
            detail: Some(detail.into()),
            request: None,
            requirement: None,
            amount: None,
            policy_versions: PolicyVersions::default(),
            consent_required: false,
            authorization_window_seconds: None,
            budgets: Vec::new(),
            usage: Vec::new(),
        }
    }
}

/// The whole decision for one event: prepare, one store read, evaluate, seal. Any store error
/// is NO `STORE_UNAVAILABLE` (fail closed).
pub async fn decide<R: VerifyReader>(
    reader: &R,
    event: &Value,
    ctx: DecisionContext<'_>,
) -> Decision {
    let outcome = match prepare(event) {
        Err(outcome) => *outcome,
        Ok(prepared) => match reader
            .read_for_verify(&read_keys(&prepared.request, ctx))
            .await
        {
            Ok(snapshot) => prepared.evaluate(&snapshot, ctx),
            Err(err) => store_unavailable(prepared, &err),
        },
    };
    finish(outcome, ctx)
}

/// A NO for `reason` that never reached the checks (authorize's malformed event), sealed.
pub fn refuse(reason: ReasonCode, detail: String, ctx: DecisionContext<'_>) -> Decision {
    finish(Outcome::declined(reason, detail), ctx)
}

/// The decision over several candidate requests (authorize: one per `accepts` entry, in the
/// merchant's order): the checks needing no store read for each, one store read for all of them
/// (they share user, agent and session), the checks that do, then [`select`] picks the outcome
/// that is sealed. `None` candidates (an entry without a paymentId) are malformed requirements.
/// `own_holds` names, by paymentId, the open holds the same request reserved earlier (authorize
/// continuing after a lost answer): their amounts count as available to their own payment.
/// Returns the decision and the index of the chosen candidate.
pub async fn decide_among<R: VerifyReader>(
    reader: &R,
    candidates: Vec<Option<VerifyRequest>>,
    own_holds: &[(String, u64)],
    ctx: DecisionContext<'_>,
) -> (Decision, usize) {
    let prepared: Vec<Result<Prepared, Box<Outcome>>> = candidates
        .into_iter()
        .map(|candidate| match candidate {
            Some(request) => prepare_request(request),
            None => Err(Box::new(Outcome::declined(
                ReasonCode::RequirementInvalid,
                "requirement: an entry holds a number that is not an integer",
            ))),
        })
        .collect();
    let keys = prepared
        .iter()
        .find_map(|p| p.as_ref().ok().map(|p| read_keys(&p.request, ctx)));
    let snapshot = match keys {
        Some(keys) => Some(reader.read_for_verify(&keys).await),
        None => None,
    };
    let outcomes: Vec<Outcome> = prepared
        .into_iter()
        .map(|p| match (p, &snapshot) {
            (Err(outcome), _) => *outcome,
            (Ok(p), Some(Ok(snapshot))) => {
                let own = own_holds
                    .iter()
                    .find(|(id, _)| *id == p.request.payment_id)
                    .map_or(0, |(_, micros)| *micros);
                p.evaluate_with_own_hold(snapshot, ctx, own)
            }
            (Ok(p), Some(Err(err))) => store_unavailable(p, err),
            (Ok(p), None) => store_unavailable(p, &StoreError::Unavailable(String::new())),
        })
        .collect();
    let chosen = select(&outcomes).unwrap_or(0);
    let outcome = outcomes.into_iter().nth(chosen).unwrap_or_else(|| {
        Outcome::declined(
            ReasonCode::InvalidRequest,
            "accepts: offers no payment option",
        )
    });
    (finish(outcome, ctx), chosen)
}

/// What one decision reads: the request's records and the budget counters this container can
/// predict from the policies it decided on before (see [`PolicyCache::known_budgets`]).
pub fn read_keys(request: &VerifyRequest, ctx: DecisionContext<'_>) -> VerifyKeys {
    let mut keys = request.keys();
    let known = ctx
        .policies
        .known_budgets(&request.user_id, &request.agent_id);
    if !known.is_empty() {
        keys.counters = counter_keys(&known, &request.user_id, &request.agent_id, ctx.now);
    }
    keys
}

fn store_unavailable(prepared: Prepared, err: &StoreError) -> Outcome {
    let detail = match err {
        StoreError::Unavailable(_) => "the store did not answer in time",
        StoreError::Malformed(_) => "a stored record is malformed",
    };
    let mut out = Outcome::declined(ReasonCode::StoreUnavailable, detail);
    out.amount = Some(AmountView {
        atomic: prepared.requirement.amount.clone(),
        asset: None,
        micros: None,
        usd: None,
    });
    out.request = Some(prepared.request);
    out.requirement = Some(prepared.requirement);
    out
}

#[cfg(test)]
pub(super) mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use proptest::prelude::*;

    use super::*;
    use crate::memory::{scope_key, MemoryStore};
    use crate::money::format_usd;
    use crate::records::{
        AgentRecord, AgentStatus, ConsentRecord, ConsentStatus, PolicyRecord, SessionRecord,
        SessionStatus,
    };
    use serde_json::json;

    pub(super) const NOW: u64 = 1_800_000_000;

    /// The memory store answers at once, so one poll finishes a decision.
    pub(super) fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the memory store never waits"),
        }
    }

    pub(super) fn keys() -> KeyRing {
        KeyRing::from_secret_json(&KeyRing::new_secret_json("k1", &[1; 32], &[2; 32])).unwrap()
    }

    fn policy(doc: &str) -> PolicyRecord {
        PolicyRecord {
            version: 1,
            document: doc.into(),
        }
    }

    pub(super) fn store(global: Option<&str>, user: Option<&str>, available: u64) -> MemoryStore {
        let s = MemoryStore::new();
        if let Some(doc) = global {
            s.put_policy("global", policy(doc));
        }
        if let Some(doc) = user {
            s.put_policy(&scope_key("user", Some("u1")), policy(doc));
        }
        s.put_agent(AgentRecord {
            agent_id: "a1".into(),
            user_id: "u1".into(),
            status: AgentStatus::Active,
            allowed_tools: None,
        });
        s.put_consent(
            "u1",
            "a1",
            ConsentRecord {
                status: ConsentStatus::Revoked,
                expires_at: None,
            },
        );
        s.put_session(SessionRecord {
            payment_session_id: "ps1".into(),
            user_id: "u1".into(),
            limit_micros: available,
            reserved_micros: 0,
            settled_micros: 0,
            available_micros: available,
            overdraft_micros: 0,
            expires_at: NOW + 3600,
            status: SessionStatus::Open,
            open_request_id: None,
            pool_id: None,
            returned_micros: 0,
        });
        s
    }

    pub(super) fn event(amount: &str) -> Value {
        json!({
            "version": "1",
            "paymentId": "ab".repeat(32),
            "paymentType": "CRYPTO_X402",
            "x402Version": 2,
            "requirement": {
                "scheme": "exact", "network": "eip155:8453", "amount": amount,
                "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "maxTimeoutSeconds": 60
            },
            "resource": "https://api.example/x",
            "requestUrl": "https://api.example/x?q=1",
            "userId": "u1", "paymentSessionId": "ps1", "paymentInstrumentId": "pi1",
            "agentId": "a1", "toolName": "http_request"
        })
    }

    pub(super) fn decide_now(store: &MemoryStore, event: &Value) -> VerifyResponse {
        let keys = keys();
        block_on(decide(
            store,
            event,
            DecisionContext {
                verification_id: "v1",
                now: NOW,
                keys: &keys,
                policies: &crate::policy::PolicyCache::new(),
            },
        ))
        .response
    }

    fn decide_with(store: &MemoryStore, event: &Value, cache: &PolicyCache) -> VerifyResponse {
        let keys = keys();
        block_on(decide(
            store,
            event,
            DecisionContext {
                verification_id: "v1",
                now: NOW,
                keys: &keys,
                policies: cache,
            },
        ))
        .response
    }

    #[test]
    fn a_budget_counter_that_is_full_is_budget_exceeded_once_the_container_knows_the_budget() {
        // GIVEN a user's daily budget of $5 with $4.50 already counted today
        let s = store(
            Some("{}"),
            Some(r#"{"budgets":[{"window":"day","amountUsd":"5.00"}]}"#),
            10_000_000,
        );
        let claims = vec![crate::budget::BudgetClaim {
            scope: crate::budget::BudgetScope::User,
            window: crate::budget::BudgetWindow::Day,
            timezone: "UTC".into(),
            amount_micros: Some(5_000_000),
            count: None,
        }];
        let key = crate::budget::counter_keys(&claims, "u1", "a1", NOW).remove(0);
        s.put_counter(
            key,
            crate::budget::CounterRecord {
                spent_micros: 4_500_000,
                payment_count: 3,
            },
        );
        let cache = PolicyCache::new();
        // WHEN a cold container decides on $1 THEN it could not predict the counter: YES, and
        // the token carries the budget for reserve to count
        let cold = decide_with(&s, &event("1000000"), &cache);
        assert_eq!(cold.reason_code, ReasonCode::Approved);
        let token = cold.decision_token.unwrap();
        let claims_in_token = crate::token::verify(&token, &keys(), NOW).unwrap().budgets;
        assert_eq!(claims_in_token, claims);
        // WHEN it decides again THEN it reads the counter and declines, naming the budget
        let warm = decide_with(&s, &event("1000000"), &cache);
        assert_eq!(
            (warm.decision, warm.reason_code),
            (Verdict::No, ReasonCode::BudgetExceeded)
        );
        assert!(
            warm.message.contains("the user's day budget"),
            "{}",
            warm.message
        );
        // AND $0.50 still fits exactly
        let fits = decide_with(&s, &event("500000"), &cache);
        assert_eq!(fits.reason_code, ReasonCode::Approved);
        // AND every decision was one read
        assert_eq!(s.reads(), 3);
    }

    #[test]
    fn a_payment_larger_than_a_budget_is_declined_without_any_counter() {
        let s = store(
            Some(r#"{"budgets":[{"window":{"rollingSeconds":3600},"amountUsd":"0.50"}]}"#),
            None,
            10_000_000,
        );
        let r = decide_now(&s, &event("1000000"));
        assert_eq!(
            (r.decision, r.reason_code),
            (Verdict::No, ReasonCode::BudgetExceeded)
        );
        assert!(
            r.message.contains("the global rolling 3600-second budget"),
            "{}",
            r.message
        );
    }

    #[test]
    fn no_policy_at_any_scope_is_policy_missing() {
        let s = store(None, None, 10_000_000);
        let r = decide_now(&s, &event("1000000"));
        assert_eq!(
            (r.decision, r.reason_code),
            (Verdict::No, ReasonCode::PolicyMissing)
        );
    }

    #[test]
    fn an_empty_global_policy_restricts_nothing_and_approves() {
        let s = store(Some("{}"), None, 10_000_000);
        let r = decide_now(&s, &event("1000000"));
        assert_eq!(
            (r.decision, r.reason_code),
            (Verdict::Yes, ReasonCode::Approved)
        );
        assert!(r.decision_token.is_some());
    }

    #[test]
    fn a_revoked_consent_is_ignored_when_no_policy_requires_consent() {
        let s = store(Some(r#"{"consentRequired": false}"#), None, 10_000_000);
        let r = decide_now(&s, &event("1000000"));
        assert_eq!(r.reason_code, ReasonCode::Approved);
    }

    #[test]
    fn a_revoked_consent_declines_when_a_policy_requires_consent() {
        let s = store(Some("{}"), Some(r#"{"consentRequired": true}"#), 10_000_000);
        let r = decide_now(&s, &event("1000000"));
        assert_eq!(r.reason_code, ReasonCode::ConsentRevoked);
    }

    #[test]
    fn an_amount_equal_to_available_passes_and_one_unit_more_is_budget_exceeded() {
        let s = store(Some("{}"), None, 2_000_000);
        assert_eq!(
            decide_now(&s, &event("2000000")).reason_code,
            ReasonCode::Approved
        );
        assert_eq!(
            decide_now(&s, &event("2000001")).reason_code,
            ReasonCode::SessionBudgetExceeded
        );
    }

    #[test]
    fn an_amount_overflowing_micro_usd_is_out_of_range() {
        let s = store(Some("{}"), None, u64::MAX);
        let huge = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(
            decide_now(&s, &event(huge)).reason_code,
            ReasonCode::AmountOutOfRange
        );
    }

    #[test]
    fn a_store_outage_is_no_store_unavailable_without_a_token() {
        let s = store(Some("{}"), None, 10_000_000);
        s.set_unavailable(true);
        let r = decide_now(&s, &event("1000000"));
        assert_eq!(
            (r.decision, r.reason_code),
            (Verdict::No, ReasonCode::StoreUnavailable)
        );
        assert!(r.decision_token.is_none() && r.expires_at.is_none());
    }

    #[test]
    fn malformed_input_reads_nothing_from_the_store() {
        let s = store(Some("{}"), None, 10_000_000);
        let r = decide_now(&s, &json!([1, 2, 3]));
        assert_eq!(r.reason_code, ReasonCode::InvalidRequest);
        assert_eq!(s.reads(), 0);
    }

    fn host_policy_store(doc: &str) -> MemoryStore {
        store(Some(doc), None, 10_000_000)
    }

    fn decide_url(
        s: &MemoryStore,
        request_url: Option<&str>,
        resource: Option<&str>,
    ) -> (Verdict, ReasonCode) {
        let mut e = event("1000000");
        match request_url {
            Some(url) => e["requestUrl"] = json!(url),
            None => {
                e.as_object_mut().unwrap().remove("requestUrl");
            }
        }
        match resource {
            Some(url) => e["resource"] = json!(url),
            None => {
                e.as_object_mut().unwrap().remove("resource");
            }
        }
        let r = decide_now(s, &e);
        (r.decision, r.reason_code)
    }

    #[test]
    fn host_rules_judge_the_requested_url_whatever_its_spelling() {
        // GIVEN a deny-list for pay.scam.example and an allow-list that admits only its subdomains
        let s = host_policy_store(
            r#"{"blockedHosts":["pay.scam.example","bücher.example"],"allowedHosts":["*.example","api.example","[::1]"]}"#,
        );
        // WHEN the tool requested each spelling (no declared resource to compare)
        let no = |code| (Verdict::No, code);
        for (url, expected) in [
            (
                "https://pay.scam.example/x",
                no(ReasonCode::MerchantBlocked),
            ),
            (
                "https://pay.scam.example.../x",
                no(ReasonCode::MerchantBlocked),
            ),
            (
                "https://pay%2Escam.example/x",
                no(ReasonCode::MerchantBlocked),
            ),
            (
                "https://PAY.Scam.EXAMPLE/x",
                no(ReasonCode::MerchantBlocked),
            ),
            (
                "https://good.example@pay.scam.example/x",
                no(ReasonCode::MerchantBlocked),
            ),
            (
                "https://pay.scam.example#@good.example",
                no(ReasonCode::MerchantBlocked),
            ),
            ("https://bücher.example/x", no(ReasonCode::MerchantBlocked)),
            (
                "https://xn--bcher-kva.example/x",
                no(ReasonCode::MerchantBlocked),
            ),
            (
                "https://pay.scam.example:443x/",
                no(ReasonCode::InvalidRequest),
            ),
            (
                "https://good.example\\@pay.scam.example/",
                no(ReasonCode::InvalidRequest),
            ),
            ("not a url", no(ReasonCode::InvalidRequest)),
            ("https://other.test/x", no(ReasonCode::MerchantNotAllowed)),
            ("http://[::2]/x", no(ReasonCode::MerchantNotAllowed)),
            ("http://[::1]:8080/x", (Verdict::Yes, ReasonCode::Approved)),
            (
                "https://shop.example/x",
                (Verdict::Yes, ReasonCode::Approved),
            ),
            (
                "https://API.example./x",
                (Verdict::Yes, ReasonCode::Approved),
            ),
        ] {
            // THEN the decision follows the host the request goes to
            assert_eq!(decide_url(&s, Some(url), None), expected, "{url}");
        }
    }

    #[test]
    fn a_declared_resource_on_another_origin_is_resource_mismatch() {
        // GIVEN an allow-list the declared resource would pass and the requested URL would not
        let s = host_policy_store(r#"{"allowedHosts":["api.example"]}"#);
        let requested = Some("https://evil.test/x");
        // WHEN the merchant declares an allowed URL THEN NO before any policy is read
        assert_eq!(
            decide_url(&s, requested, Some("https://api.example/x")),
            (Verdict::No, ReasonCode::ResourceMismatch)
        );
        // AND another scheme or port of the same host is another origin
        let s = host_policy_store("{}");
        for declared in [
            "http://api.example/x",
            "https://api.example:8443/x",
            "not a url",
        ] {
            assert_eq!(
                decide_url(&s, Some("https://api.example/y"), Some(declared)),
                (Verdict::No, ReasonCode::ResourceMismatch),
                "{declared}"
            );
        }
        // AND the same origin in another spelling matches
        assert_eq!(
            decide_url(
                &s,
                Some("https://api.example/y"),
                Some("https://API.example.:443/z")
            ),
            (Verdict::Yes, ReasonCode::Approved)
        );
    }

    #[test]
    fn v2_with_no_declared_resource_is_judged_on_the_requested_url() {
        let s = host_policy_store(r#"{"allowedHosts":["api.example"]}"#);
        assert_eq!(
            decide_url(&s, Some("https://api.example/x"), None),
            (Verdict::Yes, ReasonCode::Approved)
        );
        assert_eq!(
            decide_url(&s, Some("https://evil.test/x"), None),
            (Verdict::No, ReasonCode::MerchantNotAllowed)
        );
    }

    #[test]
    fn without_a_requested_url_host_rules_fail_closed_and_other_policies_pass() {
        // GIVEN no requestUrl (an MCP tool) and only the merchant's declared resource
        let declared = Some("https://api.example/x");
        assert_eq!(
            decide_url(
                &host_policy_store(r#"{"allowedHosts":["api.example"]}"#),
                None,
                declared
            ),
            (Verdict::No, ReasonCode::MerchantNotAllowed)
        );
        assert_eq!(
            decide_url(
                &host_policy_store(r#"{"blockedHosts":["evil.test"]}"#),
                None,
                declared
            ),
            (Verdict::No, ReasonCode::MerchantBlocked)
        );
        assert_eq!(
            decide_url(&host_policy_store("{}"), None, declared),
            (Verdict::Yes, ReasonCode::Approved)
        );
    }

    #[test]
    fn url_rules_judge_the_requested_path_by_whole_decoded_segments() {
        // GIVEN an allow-list of /v1/ and a deny-list of /v1/admin/ on one origin
        let s = host_policy_store(
            r#"{"allowedUrls":["https://api.example/v1/"],"blockedUrls":["https://api.example/v1/admin/"]}"#,
        );
        let yes = (Verdict::Yes, ReasonCode::Approved);
        let not_allowed = (Verdict::No, ReasonCode::MerchantNotAllowed);
        let blocked = (Verdict::No, ReasonCode::MerchantBlocked);
        // WHEN the tool requested each URL (no declared resource to compare)
        for (url, expected) in [
            ("https://api.example/v1/x?q=1", yes),
            ("https://api.example/v1", yes),
            ("https://API.example.:443/%76%31/x", yes),
            ("https://api.example/v1/./x", yes),
            ("https://api.example/v2/x", not_allowed),
            ("https://api.example/v10/x", not_allowed),
            ("https://api.example/v1x", not_allowed),
            ("http://api.example/v1/x", not_allowed),
            ("https://api.example:8443/v1/x", not_allowed),
            ("https://other.example/v1/x", not_allowed),
            ("https://api.example/v1/../v2/x", not_allowed),
            ("https://api.example/v1/%2e%2e/v2/x", not_allowed),
            ("https://api.example/v1/%2E%2e/v2/x", not_allowed),
            ("https://api.example/v1/admin", blocked),
            ("https://api.example/v1/admin/users", blocked),
            ("https://api.example/v1/ADMIN/users", blocked),
            ("https://api.example/v1/%61dmin/users", blocked),
            ("https://api.example/v1/x/../admin/users", blocked),
            ("https://api.example/v1/administrator", yes),
            // a path servers could read otherwise is blocked on the deny-list's origin
            ("https://api.example/v1//admin", blocked),
            ("https://api.example/v1/x%2F..%2Fadmin", blocked),
            ("https://api.example/v1/x%5C..%5Cadmin", blocked),
            ("https://api.example/v1/..;/admin", blocked),
            ("https://api.example/v1/%252e%252e/admin", blocked),
        ] {
            // THEN deny-lists come first and a blocked prefix beats an allowed one
            assert_eq!(decide_url(&s, Some(url), None), expected, "{url}");
        }
    }

    #[test]
    fn an_ambiguous_path_passes_no_url_allow_list() {
        // GIVEN only an allow-list
        let s = host_policy_store(r#"{"allowedUrls":["https://api.example/v1/"]}"#);
        for url in [
            "https://api.example/v1//x",
            "https://api.example//v1/x",
            "https://api.example/v1/x%2F..%2F..%2Fadmin",
            "https://api.example/v1/%5C..%5Cadmin",
            "https://api.example/v1/..;/admin",
            "https://api.example/v1/%252e%252e/admin",
            "https://api.example/v1/%FF",
        ] {
            // WHEN requested THEN NO, as a miss of the allow-list
            assert_eq!(
                decide_url(&s, Some(url), None),
                (Verdict::No, ReasonCode::MerchantNotAllowed),
                "{url}"
            );
        }
    }

    #[test]
    fn url_rules_judge_the_requested_url_never_the_declared_resource() {
        // GIVEN an allow-list of /v1/ WHEN the tool requested /v2/ on the same origin and the
        // merchant declares a resource under /v1/ THEN NO
        let s = host_policy_store(r#"{"allowedUrls":["https://api.example/v1/"]}"#);
        assert_eq!(
            decide_url(
                &s,
                Some("https://api.example/v2/x"),
                Some("https://api.example/v1/x")
            ),
            (Verdict::No, ReasonCode::MerchantNotAllowed)
        );
        // AND the other way round THEN YES
        assert_eq!(
            decide_url(
                &s,
                Some("https://api.example/v1/x"),
                Some("https://api.example/v2/x")
            ),
            (Verdict::Yes, ReasonCode::Approved)
        );
    }

    #[test]
    fn without_a_requested_url_url_rules_fail_closed() {
        let declared = Some("https://api.example/v1/x");
        assert_eq!(
            decide_url(
                &host_policy_store(r#"{"allowedUrls":["https://api.example/v1/"]}"#),
                None,
                declared
            ),
            (Verdict::No, ReasonCode::MerchantNotAllowed)
        );
        assert_eq!(
            decide_url(
                &host_policy_store(r#"{"blockedUrls":["https://evil.example/"]}"#),
                None,
                declared
            ),
            (Verdict::No, ReasonCode::MerchantBlocked)
        );
        // AND an empty deny-list blocks nothing, an empty allow-list allows nothing
        assert_eq!(
            decide_url(&host_policy_store(r#"{"blockedUrls":[]}"#), None, declared),
            (Verdict::Yes, ReasonCode::Approved)
        );
        assert_eq!(
            decide_url(
                &host_policy_store(r#"{"allowedUrls":[]}"#),
                Some("https://api.example/v1/x"),
                None
            ),
            (Verdict::No, ReasonCode::MerchantNotAllowed)
        );
    }

    #[test]
    fn url_rule_messages_name_the_field_never_the_url() {
        // GIVEN URL rules at two scopes
        let s = store(
            Some(r#"{"blockedUrls":["https://api.example/secret/"]}"#),
            Some(r#"{"allowedUrls":["https://api.example/v1/"]}"#),
            10_000_000,
        );
        for (url, reason, detail) in [
            (
                Some("https://api.example/secret/zq7"),
                ReasonCode::MerchantBlocked,
                "the requestUrl is blocked by a URL rule",
            ),
            (
                Some("https://api.example/zq7/x"),
                ReasonCode::MerchantNotAllowed,
                "the requestUrl is not on the URL allow-list",
            ),
            (
                Some("https://api.example/secret//zq7"),
                ReasonCode::MerchantBlocked,
                "the requestUrl path is ambiguous and a URL deny-list applies",
            ),
            (
                Some("https://other.example/zq7//x"),
                ReasonCode::MerchantNotAllowed,
                "the requestUrl path is ambiguous and a URL allow-list applies",
            ),
            (
                None,
                ReasonCode::MerchantBlocked,
                "a URL deny-list applies and the event has no requestUrl",
            ),
        ] {
            let mut e = event("1000000");
            e.as_object_mut().unwrap().remove("resource");
            match url {
                Some(url) => e["requestUrl"] = json!(url),
                None => {
                    e.as_object_mut().unwrap().remove("requestUrl");
                }
            }
            // WHEN decided THEN the message names the field and rule, no part of the URL
            let r = decide_now(&s, &e);
            assert_eq!(r.reason_code, reason, "{url:?}");
            assert_eq!(r.message, format!("{} ({detail})", reason.message()));
            for part in ["zq7", "secret", "api.example", "v1"] {
                assert!(!r.message.contains(part), "{}", r.message);
            }
        }
    }

    #[test]
    fn the_token_and_audit_record_carry_the_requested_host() {
        let keys = keys();
        let s = host_policy_store("{}");
        let mut e = event("1000000");
        e["requestUrl"] = json!("https://API.Example/x");
        e["resource"] = json!("https://api.example/other");
        let d = block_on(decide(
            &s,
            &e,
            DecisionContext {
                verification_id: "v1",
                now: NOW,
                keys: &keys,
                policies: &crate::policy::PolicyCache::new(),
            },
        ));
        let claims =
            crate::token::verify(d.response.decision_token.as_deref().unwrap(), &keys, NOW)
                .unwrap();
        assert_eq!(claims.resource_host.as_deref(), Some("api.example"));
        let record: Value = serde_json::from_str(&d.audit.canonical).unwrap();
        assert_eq!(record["resourceHost"], "api.example");
    }

    fn decide_timeout(s: &MemoryStore, max_timeout_seconds: u64) -> VerifyResponse {
        let mut e = event("1000000");
        e["requirement"]["maxTimeoutSeconds"] = json!(max_timeout_seconds);
        decide_now(s, &e)
    }

    #[test]
    fn a_merchant_asking_for_a_longer_window_than_policy_allows_is_declined() {
        // GIVEN no window in policy (the default, 300 s)
        let s = host_policy_store("{}");
        // THEN 300 s is approved and 301 s (or a day) is declined before anything is signed
        assert_eq!(decide_timeout(&s, 300).reason_code, ReasonCode::Approved);
        for asked in [301, 86_400, u64::MAX] {
            let r = decide_timeout(&s, asked);
            assert_eq!(
                (r.decision, r.reason_code),
                (Verdict::No, ReasonCode::AuthorizationWindowTooLong),
                "{asked}"
            );
            assert!(r.decision_token.is_none());
        }
    }

    #[test]
    fn the_window_is_the_smallest_policy_value_and_never_above_900_seconds() {
        let s = store(
            Some(r#"{"maxAuthorizationSeconds": 86400}"#),
            Some(r#"{"maxAuthorizationSeconds": 120}"#),
            10_000_000,
        );
        assert_eq!(decide_timeout(&s, 120).reason_code, ReasonCode::Approved);
        assert_eq!(
            decide_timeout(&s, 121).reason_code,
            ReasonCode::AuthorizationWindowTooLong
        );
        let s = host_policy_store(r#"{"maxAuthorizationSeconds": 86400}"#);
        assert_eq!(decide_timeout(&s, 900).reason_code, ReasonCode::Approved);
        assert_eq!(
            decide_timeout(&s, 901).reason_code,
            ReasonCode::AuthorizationWindowTooLong
        );
    }

    #[test]
    fn the_token_carries_the_approved_window() {
        let keys = keys();
        let s = host_policy_store(r#"{"maxAuthorizationSeconds": 240}"#);
        let r = decide_timeout(&s, 60);
        let claims =
            crate::token::verify(r.decision_token.as_deref().unwrap(), &keys, NOW).unwrap();
        assert_eq!(claims.authorization_window_seconds, 240);
        assert_eq!(claims.max_timeout_seconds, 60);
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("version".to_string()),
                        Just("requirement".to_string()),
                        Just("amount".to_string()),
                        Just("payTo".to_string()),
                        ".{0,8}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Path pieces: plain segments around the allowed prefix `/v1/abc/`, and the spellings that
    /// fake or escape a prefix.
    const PLAIN_PIECES: [&str; 7] = ["v1", "abc", "%61bc", "%76%31", "ABC", "v10", "abcd"];
    const TRICK_PIECES: [&str; 17] = [
        "v1%2Fabc",
        "",
        ".",
        "..",
        "%2e",
        "%2E%2e",
        ".%2e",
        "%2f",
        "%2F",
        "%5C",
        "%5c",
        "a%2Fb",
        "..;",
        "v1;",
        "%252e%252e",
        "%FF",
        "%00",
    ];

    /// Percent-decodes once, written apart from the code under test.
    fn reference_decode(piece: &str) -> Vec<u8> {
        let bytes = piece.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        out
    }

    /// The path a server reads from the pieces: each decoded, `.` dropped and `..` popping its
    /// parent (as WHATWG resolves them), one trailing empty segment dropped.
    fn reference_path(pieces: &[&str]) -> Vec<Vec<u8>> {
        let mut path: Vec<Vec<u8>> = Vec::new();
        for piece in pieces {
            match reference_decode(piece).as_slice() {
                b"." => {}
                b".." => {
                    path.pop();
                }
                decoded => path.push(decoded.to_vec()),
            }
        }
        if path.last().is_some_and(Vec::is_empty) {
            path.pop();
        }
        path
    }

    fn path_piece() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            3 => prop::sample::select(PLAIN_PIECES.to_vec()),
            1 => prop::sample::select(TRICK_PIECES.to_vec()),
        ]
    }

    proptest! {
        #[test]
        fn no_url_outside_the_allowed_prefix_segments_is_approved(
            pieces in prop::collection::vec(path_piece(), 0..7),
            query in any::<bool>(),
        ) {
            // GIVEN an allow-list of one path prefix
            let s = host_policy_store(r#"{"allowedUrls":["https://api.example/v1/abc/"]}"#);
            let query = if query { "?next=/v1/abc/" } else { "" };
            let url = format!("https://api.example/{}{query}", pieces.join("/"));
            // WHEN the tool requested a generated path
            let (verdict, reason) = decide_url(&s, Some(&url), None);
            let path = reference_path(&pieces);
            let inside = path.starts_with(&[b"v1".to_vec(), b"abc".to_vec()]);
            // THEN a YES is always a path, as a server reads it, under the prefix's segments,
            // with no empty segment and no separator hidden in one
            if verdict == Verdict::Yes {
                prop_assert!(inside, "{}", url);
                prop_assert!(
                    path.iter().all(|s| !s.is_empty() && !s.contains(&b'/') && !s.contains(&b'\\')),
                    "{}",
                    url
                );
            } else {
                prop_assert_eq!(reason, ReasonCode::MerchantNotAllowed, "{}", url);
            }
            // AND a path of plain segments is approved exactly when it is under the prefix
            if pieces.iter().all(|p| PLAIN_PIECES.contains(p)) {
                prop_assert_eq!(verdict == Verdict::Yes, inside, "{}", url);
            }
        }

        #[test]
        fn arbitrary_json_events_never_panic_and_never_approve(event in arbitrary_json()) {
            let s = store(Some("{}"), None, 10_000_000);
            let r = decide_now(&s, &event);
            prop_assert_eq!(r.decision, Verdict::No);
        }

        #[test]
        fn a_mutated_valid_event_never_panics(field in "[a-zA-Z]{1,12}", value in arbitrary_json()) {
            let s = store(Some("{}"), None, 10_000_000);
            let mut e = event("1000000");
            e["requirement"][field.as_str()] = value.clone();
            let _ = decide_now(&s, &e);
            e[field.as_str()] = value;
            let _ = decide_now(&s, &e);
        }

        #[test]
        fn yes_never_exceeds_the_smallest_limit_or_the_available_budget(
            amount in 0u64..20_000_000,
            global_cap in 0u64..20_000_000,
            user_cap in 0u64..20_000_000,
            available in 0u64..20_000_000,
        ) {
            let s = store(
                Some(&format!(r#"{{"maxPerPayment":"{}"}}"#, format_usd(global_cap))),
                Some(&format!(r#"{{"maxPerPayment":"{}"}}"#, format_usd(user_cap))),
                available,
            );
            let r = decide_now(&s, &event(&amount.to_string()));
            let within = amount > 0 && amount <= global_cap.min(user_cap) && amount <= available;
            prop_assert_eq!(r.decision == Verdict::Yes, within, "{:?}", r.reason_code);
        }
    }
}
