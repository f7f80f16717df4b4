//! The decision: checks in a fixed, documented order (cheapest and most specific first), then
//! the response, the sealed audit record and, on YES, the decision token.
//!
//! Order: INVALID_REQUEST, PAYMENT_TYPE_NOT_SUPPORTED, REQUIREMENT_INVALID, SCHEME_NOT_ALLOWED
//! (no store read for these); STORE_UNAVAILABLE; POLICY_MISSING, POLICY_INVALID; AGENT_UNKNOWN,
//! AGENT_USER_MISMATCH, AGENT_REVOKED, AGENT_SUSPENDED; SESSION_UNKNOWN, SESSION_USER_MISMATCH,
//! SESSION_CLOSED, SESSION_EXPIRED; CONSENT_MISSING, CONSENT_REVOKED, CONSENT_EXPIRED (when
//! consent is required); TOOL_NOT_ALLOWED; NETWORK_NOT_ALLOWED; ASSET_NOT_ALLOWED;
//! AMOUNT_OUT_OF_RANGE; MERCHANT_BLOCKED; MERCHANT_NOT_ALLOWED; AMOUNT_OVER_PAYMENT_LIMIT;
//! SESSION_BUDGET_EXCEEDED; else YES.

use serde::Serialize;
use serde_json::{json, Value};

use crate::address::normalize_address;
use crate::audit::{self, SealedAudit};
use crate::keys::KeyRing;
use crate::money::{format_usd, AtomicAmount};
use crate::policy::{combine, EffectivePolicy, PolicyDocument};
use crate::reason::ReasonCode;
use crate::records::{
    AgentStatus, ConsentStatus, PolicyRecord, PolicyVersions, SessionStatus, VerifySnapshot,
};
use crate::store::{StoreError, VerifyReader};
use crate::token::{self, TokenClaims, TOKEN_TTL_SECONDS};
use crate::verify::{parse_request, VerifyRequest, EVENT_VERSION, PAYMENT_TYPE_X402};
use crate::x402::{parse_requirement, resource_host, Requirement};

/// The only x402 scheme predebit approves today.
pub const SCHEME_EXACT: &str = "exact";

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
        }
    }
}

/// A request that passed the checks needing no store read.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The event.
    pub request: VerifyRequest,
    /// Its requirement.
    pub requirement: Requirement,
}

/// Runs the checks that need no store read: event shape, payment type, requirement, scheme.
pub fn prepare(event: &Value) -> Result<Prepared, Box<Outcome>> {
    let request = parse_request(event)
        .map_err(|p| Box::new(Outcome::declined(ReasonCode::InvalidRequest, p.to_string())))?;
    let with_request = |mut o: Outcome| {
        o.request = Some(request.clone());
        Box::new(o)
    };
    if request.payment_type != PAYMENT_TYPE_X402 {
        return Err(with_request(Outcome::declined(
            ReasonCode::PaymentTypeNotSupported,
            "paymentType: only CRYPTO_X402 is supported",
        )));
    }
    let requirement = parse_requirement(
        request.x402_version,
        &request.requirement,
        request.resource.as_deref(),
    )
    .map_err(|e| {
        with_request(Outcome::declined(
            ReasonCode::RequirementInvalid,
            format!("requirement.{e}"),
        ))
    })?;
    let mut outcome_base = Outcome::declined(ReasonCode::SchemeNotAllowed, "");
    outcome_base.amount = Some(AmountView {
        atomic: requirement.amount.clone(),
        asset: None,
        micros: None,
        usd: None,
    });
    if requirement.scheme != SCHEME_EXACT {
        outcome_base.detail = Some("requirement.scheme: only 'exact' is supported".into());
        outcome_base.requirement = Some(requirement);
        return Err(with_request(outcome_base));
    }
    Ok(Prepared {
        request,
        requirement,
    })
}

fn parse_policies(snapshot: &VerifySnapshot) -> Result<EffectivePolicy, (ReasonCode, String)> {
    let scopes: [(&str, &Option<PolicyRecord>); 3] = [
        ("global", &snapshot.global_policy),
        ("user", &snapshot.user_policy),
        ("agent", &snapshot.agent_policy),
    ];
    if scopes.iter().all(|(_, p)| p.is_none()) {
        return Err((ReasonCode::PolicyMissing, "no policy at any scope".into()));
    }
    let mut docs = Vec::with_capacity(3);
    for (scope, record) in scopes {
        if let Some(record) = record {
            let doc = PolicyDocument::parse(&record.document)
                .map_err(|e| (ReasonCode::PolicyInvalid, format!("{scope} policy: {e}")))?;
            docs.push(doc);
        }
    }
    let refs: Vec<&PolicyDocument> = docs.iter().collect();
    combine(&refs).map_err(|e| (ReasonCode::PolicyInvalid, format!("combined policies: {e}")))
}

impl Prepared {
    /// Runs every check that needs the stored records, in the documented order.
    pub fn evaluate(self, snapshot: &VerifySnapshot, now: u64) -> Outcome {
        let Prepared {
            request,
            requirement,
        } = self;
        let mut out = Outcome {
            reason: ReasonCode::Approved,
            detail: None,
            amount: Some(AmountView {
                atomic: requirement.amount.clone(),
                asset: None,
                micros: None,
                usd: None,
            }),
            policy_versions: snapshot.policy_versions(),
            consent_required: false,
            request: None,
            requirement: None,
        };
        if let Err((reason, detail)) = check(&request, &requirement, snapshot, now, &mut out) {
            out.reason = reason;
            out.detail = Some(detail);
        }
        out.request = Some(request);
        out.requirement = Some(requirement);
        out
    }
}

type Check = Result<(), (ReasonCode, String)>;

fn fail(reason: ReasonCode, detail: &str) -> Check {
    Err((reason, detail.to_string()))
}

fn check(
    request: &VerifyRequest,
    requirement: &Requirement,
    snapshot: &VerifySnapshot,
    now: u64,
    out: &mut Outcome,
) -> Check {
    let policy = parse_policies(snapshot)?;
    out.consent_required = policy.consent_required();

    let Some(agent) = &snapshot.agent else {
        return fail(ReasonCode::AgentUnknown, "agentId is not registered");
    };
    if agent.user_id != request.user_id {
        return fail(
            ReasonCode::AgentUserMismatch,
            "the agent's owner is another user",
        );
    }
    match agent.status {
        AgentStatus::Revoked => return fail(ReasonCode::AgentRevoked, "agent status is REVOKED"),
        AgentStatus::Suspended => {
            return fail(ReasonCode::AgentSuspended, "agent status is SUSPENDED")
        }
        AgentStatus::Active => {}
    }

    let Some(session) = &snapshot.session else {
        return fail(
            ReasonCode::SessionUnknown,
            "paymentSessionId is not open in predebit",
        );
    };
    if session.user_id != request.user_id {
        return fail(
            ReasonCode::SessionUserMismatch,
            "the session's owner is another user",
        );
    }
    if session.status == SessionStatus::Closed {
        return fail(ReasonCode::SessionClosed, "session status is CLOSED");
    }
    if now >= session.expires_at {
        return fail(ReasonCode::SessionExpired, "session expiresAt has passed");
    }

    if policy.consent_required() {
        match &snapshot.consent {
            None => {
                return fail(
                    ReasonCode::ConsentMissing,
                    "no consent record for this agent",
                )
            }
            Some(c) if c.status == ConsentStatus::Revoked => {
                return fail(ReasonCode::ConsentRevoked, "consent status is REVOKED")
            }
            Some(c) if c.expires_at.is_some_and(|t| now >= t) => {
                return fail(ReasonCode::ConsentExpired, "consent expiresAt has passed")
            }
            Some(_) => {}
        }
    }

    let agent_allows_tool = agent
        .allowed_tools
        .as_ref()
        .is_none_or(|tools| tools.contains(&request.tool_name));
    if !agent_allows_tool {
        return fail(
            ReasonCode::ToolNotAllowed,
            "toolName is not in the agent's allowed tools",
        );
    }
    if !policy.tool_allowed(&request.tool_name) {
        return fail(
            ReasonCode::ToolNotAllowed,
            "toolName is not allowed by policy",
        );
    }

    if !policy.network_allowed(&requirement.network) {
        return fail(
            ReasonCode::NetworkNotAllowed,
            "requirement.network is not allowed by policy",
        );
    }

    let Some(asset) = policy
        .asset_table()
        .lookup(&requirement.network, &requirement.asset)
    else {
        return fail(
            ReasonCode::AssetNotAllowed,
            "requirement.asset is not a trusted asset",
        );
    };
    if let Some(amount) = out.amount.as_mut() {
        amount.asset = Some(asset.symbol.clone());
    }
    if !asset.usd_pegged {
        return fail(
            ReasonCode::AssetNotAllowed,
            "requirement.asset is not USD-pegged",
        );
    }
    if !policy.asset_allowed(&asset.symbol) {
        return fail(
            ReasonCode::AssetNotAllowed,
            "requirement.asset is not allowed by policy",
        );
    }

    let atomic = AtomicAmount::parse(&requirement.amount).map_err(|_| {
        (
            ReasonCode::AmountOutOfRange,
            "requirement amount is out of range".into(),
        )
    })?;
    if atomic.is_zero() {
        return fail(ReasonCode::AmountOutOfRange, "requirement amount is zero");
    }
    let micros = atomic.to_micros(asset.decimals).map_err(|_| {
        (
            ReasonCode::AmountOutOfRange,
            "requirement amount does not fit in micro-USD".to_string(),
        )
    })?;
    if let Some(amount) = out.amount.as_mut() {
        amount.micros = Some(micros);
        amount.usd = Some(format_usd(micros));
    }

    let host = requirement.resource.as_deref().and_then(resource_host);
    if policy.pay_to_blocked(&requirement.network, &requirement.pay_to) {
        return fail(
            ReasonCode::MerchantBlocked,
            "requirement.payTo is blocked by policy",
        );
    }
    if policy.host_blocked(host.as_deref()) {
        return fail(
            ReasonCode::MerchantBlocked,
            "the resource host is blocked by policy",
        );
    }
    if !policy.pay_to_allowed(&requirement.network, &requirement.pay_to) {
        return fail(
            ReasonCode::MerchantNotAllowed,
            "requirement.payTo is not on the allow-list",
        );
    }
    if !policy.host_allowed(host.as_deref()) {
        return fail(
            ReasonCode::MerchantNotAllowed,
            "the resource host is not on the allow-list",
        );
    }

    if policy
        .max_per_payment_micros()
        .is_some_and(|max| micros > max)
    {
        return fail(
            ReasonCode::AmountOverPaymentLimit,
            "amount is above maxPerPayment",
        );
    }
    if micros > session.available_micros {
        return fail(
            ReasonCode::SessionBudgetExceeded,
            "amount is above the session's available budget",
        );
    }
    Ok(())
}

/// Seals an outcome: the audit record, the response and, on YES, the decision token.
pub fn finish(outcome: Outcome, ctx: DecisionContext<'_>) -> Decision {
    let verdict = if outcome.reason == ReasonCode::Approved {
        Verdict::Yes
    } else {
        Verdict::No
    };
    let token_expires_at = ctx.now.saturating_add(TOKEN_TTL_SECONDS);
    let request = outcome.request.as_ref();
    let requirement = outcome.requirement.as_ref();
    let host = requirement
        .and_then(|r| r.resource.as_deref())
        .and_then(resource_host);
    let mut record = json!({
        "version": EVENT_VERSION,
        "kind": "predebit.verify",
        "verificationId": ctx.verification_id,
        "decision": verdict,
        "reasonCode": outcome.reason,
        "policyVersions": outcome.policy_versions,
        "consentRequired": outcome.consent_required,
        "decidedAt": ctx.now,
    });
    let fields = record.as_object_mut().expect("record is an object");
    if let Some(detail) = &outcome.detail {
        fields.insert("detail".into(), json!(detail));
    }
    if let Some(r) = request {
        fields.insert("paymentId".into(), json!(r.payment_id));
        fields.insert(
            "userPseudonym".into(),
            json!(ctx.keys.pseudonymize(&r.user_id)),
        );
        fields.insert("agentId".into(), json!(r.agent_id));
        fields.insert("paymentSessionId".into(), json!(r.payment_session_id));
        fields.insert("toolName".into(), json!(r.tool_name));
        fields.insert("paymentType".into(), json!(r.payment_type));
    }
    if let Some(q) = requirement {
        fields.insert("x402Version".into(), json!(q.x402_version));
        fields.insert("scheme".into(), json!(q.scheme));
        fields.insert("network".into(), json!(q.network));
        fields.insert(
            "asset".into(),
            json!(normalize_address(&q.network, &q.asset)),
        );
        fields.insert(
            "payTo".into(),
            json!(normalize_address(&q.network, &q.pay_to)),
        );
        fields.insert("amountAtomic".into(), json!(q.amount));
        fields.insert("maxTimeoutSeconds".into(), json!(q.max_timeout_seconds));
    }
    if let Some(micros) = outcome.amount.as_ref().and_then(|a| a.micros) {
        fields.insert("amountMicros".into(), json!(micros));
    }
    if let Some(h) = &host {
        fields.insert("resourceHost".into(), json!(h));
    }
    if verdict == Verdict::Yes {
        fields.insert("tokenExpiresAt".into(), json!(token_expires_at));
    }
    let audit = audit::seal(&record, ctx.keys)
        .expect("audit records hold only strings, integers and booleans");

    let decision_token = match (verdict, request, requirement, &outcome.amount) {
        (
            Verdict::Yes,
            Some(r),
            Some(q),
            Some(AmountView {
                micros: Some(micros),
                ..
            }),
        ) => {
            let claims = TokenClaims {
                payment_id: r.payment_id.clone(),
                verification_id: ctx.verification_id.to_string(),
                audit_hash: audit.audit_hash.clone(),
                user_id: r.user_id.clone(),
                agent_id: r.agent_id.clone(),
                payment_session_id: r.payment_session_id.clone(),
                scheme: q.scheme.clone(),
                network: q.network.clone(),
                asset: normalize_address(&q.network, &q.asset),
                pay_to: normalize_address(&q.network, &q.pay_to),
                amount_atomic: q.amount.clone(),
                amount_micros: *micros,
                resource_host: host.clone(),
                max_timeout_seconds: q.max_timeout_seconds,
                policy_versions: outcome.policy_versions,
                consent_required: outcome.consent_required,
                issued_at: ctx.now,
                expires_at: token_expires_at,
            };
            Some(token::issue(&claims, ctx.keys))
        }
        _ => None,
    };
    let message = match &outcome.detail {
        Some(detail) if !detail.is_empty() => format!("{} ({detail})", outcome.reason.message()),
        _ => outcome.reason.message().to_string(),
    };
    let response = VerifyResponse {
        version: EVENT_VERSION,
        decision: if decision_token.is_some() {
            Verdict::Yes
        } else {
            Verdict::No
        },
        reason_code: outcome.reason,
        message,
        verification_id: ctx.verification_id.to_string(),
        audit_hash: audit.audit_hash.clone(),
        policy_versions: outcome.policy_versions,
        amount: outcome.amount,
        expires_at: decision_token.as_ref().map(|_| token_expires_at),
        decision_token,
    };
    Decision { response, audit }
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
        Ok(prepared) => match reader.read_for_verify(&prepared.request.keys()).await {
            Ok(snapshot) => prepared.evaluate(&snapshot, ctx.now),
            Err(err) => store_unavailable(prepared, &err),
        },
    };
    finish(outcome, ctx)
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
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use proptest::prelude::*;

    use super::*;
    use crate::memory::{scope_key, MemoryStore};
    use crate::records::{AgentRecord, ConsentRecord, SessionRecord};

    const NOW: u64 = 1_800_000_000;

    /// The memory store answers at once, so one poll finishes a decision.
    fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the memory store never waits"),
        }
    }

    fn keys() -> KeyRing {
        KeyRing::from_secret_json(&KeyRing::new_secret_json("k1", &[1; 32], &[2; 32])).unwrap()
    }

    fn policy(doc: &str) -> PolicyRecord {
        PolicyRecord {
            version: 1,
            document: doc.to_string(),
        }
    }

    fn store(global: Option<&str>, user: Option<&str>, available: u64) -> MemoryStore {
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
        });
        s
    }

    fn event(amount: &str) -> Value {
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
            "userId": "u1", "paymentSessionId": "ps1", "paymentInstrumentId": "pi1",
            "agentId": "a1", "toolName": "http_request"
        })
    }

    fn decide_now(store: &MemoryStore, event: &Value) -> VerifyResponse {
        let keys = keys();
        block_on(decide(
            store,
            event,
            DecisionContext {
                verification_id: "v1",
                now: NOW,
                keys: &keys,
            },
        ))
        .response
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

    proptest! {
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
