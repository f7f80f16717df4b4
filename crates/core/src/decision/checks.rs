//! The checks that need the stored records, in the documented order: policies, the registry
//! (agent, session, consent), tools, the requirement against policy (network, asset, amount),
//! the merchant (payTo, host, URL), then the limits. Each stage returns the first failing check.

use super::{AmountView, DecisionContext, LimitUsage, Outcome};
use crate::budget::{charges, BudgetRefusal};
use crate::money::{format_usd, AtomicAmount};
use crate::policy::{CombineError, EffectivePolicy, PolicyError, Scope};
use crate::reason::ReasonCode;
use crate::records::{
    AgentRecord, AgentStatus, ConsentStatus, PolicyRecord, SessionRecord, SessionStatus,
    VerifySnapshot,
};
use crate::verify::VerifyRequest;
use crate::x402::Requirement;

/// The first failing check: its reason and a detail naming the field or scope, never a value.
pub(super) type Check<T = ()> = Result<T, (ReasonCode, String)>;

fn fail<T>(reason: ReasonCode, detail: &str) -> Check<T> {
    Err((reason, detail.to_string()))
}

/// Every check that needs the stored records, in order. Fills `out` as it learns the amount.
pub(super) fn check(
    request: &VerifyRequest,
    requirement: &Requirement,
    snapshot: &VerifySnapshot,
    ctx: DecisionContext<'_>,
    own_hold_micros: u64,
    out: &mut Outcome,
) -> Check {
    let now = ctx.now;
    let policy = policies(request, snapshot, ctx)?;
    out.consent_required = policy.consent_required();
    out.authorization_window_seconds = Some(policy.max_authorization_seconds());
    out.budgets = policy.budgets().to_vec();
    let (agent, session) = registry(request, snapshot, &policy, now)?;
    tools(request, agent, &policy)?;
    if !policy.scheme_allowed(&requirement.scheme) {
        return fail(
            ReasonCode::SchemeNotAllowed,
            "requirement.scheme is not in the policies' schemes",
        );
    }
    let micros = asset_and_amount(requirement, &policy, out.amount.as_mut())?;
    merchant(request, requirement, &policy)?;
    limits(requirement, &policy, micros, session, own_hold_micros)?;
    // A payment's own open hold was counted when it was reserved.
    if own_hold_micros > 0 {
        return Ok(());
    }
    out.usage.push(LimitUsage::of(
        "session".into(),
        session
            .limit_micros
            .saturating_sub(session.available_micros),
        micros,
        session.limit_micros,
    ));
    budgets(request, &policy, micros, snapshot, now, &mut out.usage)
}

/// Every budget counter that was read must have room for the payment. Counters this container
/// could not predict were not read; reserve counts them in its transaction regardless.
fn budgets(
    request: &VerifyRequest,
    policy: &EffectivePolicy,
    micros: u64,
    snapshot: &VerifySnapshot,
    now: u64,
    usage: &mut Vec<LimitUsage>,
) -> Check {
    if policy.budgets().is_empty() {
        return Ok(());
    }
    let charges = charges(
        policy.budgets(),
        &request.user_id,
        &request.agent_id,
        micros,
        now,
    )
    .map_err(budget_refusal)?;
    for charge in &charges {
        let read = snapshot.counters.iter().find(|(key, _)| *key == charge.key);
        if let Some((_, found)) = read {
            if !charge.admits(found.as_ref()) {
                return fail(
                    ReasonCode::BudgetExceeded,
                    &format!("{} would be exceeded", charge.label),
                );
            }
            usage.extend(charge.usage(found.as_ref()));
        }
    }
    Ok(())
}

/// BUDGET_EXCEEDED for a payment larger than a budget; POLICY_INVALID for one that cannot be
/// computed. Both name the budget (the operator's scope and window), never an amount.
pub fn budget_refusal(refusal: BudgetRefusal) -> (ReasonCode, String) {
    match refusal {
        BudgetRefusal::Exceeded(label) => (
            ReasonCode::BudgetExceeded,
            format!("amount is above {label}"),
        ),
        BudgetRefusal::Unusable(what) => (
            ReasonCode::PolicyInvalid,
            format!("{what} cannot be computed"),
        ),
    }
}

/// The effective policy, compiled once per (scope, version) by the container's cache.
fn policies(
    request: &VerifyRequest,
    snapshot: &VerifySnapshot,
    ctx: DecisionContext<'_>,
) -> Check<std::sync::Arc<EffectivePolicy>> {
    let scopes: [(Scope, &str, &Option<PolicyRecord>); 3] = [
        (Scope::Global, "", &snapshot.global_policy),
        (Scope::User, &request.user_id, &snapshot.user_policy),
        (Scope::Agent, &request.agent_id, &snapshot.agent_policy),
    ];
    let present: Vec<(Scope, &str, &PolicyRecord)> = scopes
        .iter()
        .filter_map(|(scope, owner, record)| record.as_ref().map(|r| (*scope, *owner, r)))
        .collect();
    if present.is_empty() {
        return fail(ReasonCode::PolicyMissing, "no policy at any scope");
    }
    ctx.policies.effective(&present).map_err(|e| match e {
        CombineError::Scope(scope, e) => policy_invalid(scope.label(), &e),
        CombineError::Combined(e) => policy_invalid("combined policies", &e),
    })
}

/// POLICY_INVALID naming the scope and the field only. The error's own message quotes the
/// operator's values (a host, an address, the document's text), which are not the agent's to
/// read; `predebit policy put` shows the operator the whole message.
fn policy_invalid(scope: &str, e: &PolicyError) -> (ReasonCode, String) {
    let detail = match e.field() {
        Some(field) => format!("{scope}: {field} is invalid"),
        None => format!("{scope}: the document is not a valid policy document"),
    };
    (ReasonCode::PolicyInvalid, detail)
}

/// The agent, the session and (when a policy requires it) the consent.
fn registry<'a>(
    request: &VerifyRequest,
    snapshot: &'a VerifySnapshot,
    policy: &EffectivePolicy,
    now: u64,
) -> Check<(&'a AgentRecord, &'a SessionRecord)> {
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
    Ok((agent, session))
}

/// The tool must be allowed by the agent's registration and by every policy.
fn tools(request: &VerifyRequest, agent: &AgentRecord, policy: &EffectivePolicy) -> Check {
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
    Ok(())
}

/// Network and asset against policy and the trusted table, then the amount in micro-USD
/// (decimals from the table, never from the 402). Records the asset and amount in `view`.
fn asset_and_amount(
    requirement: &Requirement,
    policy: &EffectivePolicy,
    mut view: Option<&mut AmountView>,
) -> Check<u64> {
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
    if let Some(amount) = view.as_deref_mut() {
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
            "requirement amount is out of range".to_string(),
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
    if let Some(amount) = view {
        amount.micros = Some(micros);
        amount.usd = Some(format_usd(micros));
    }
    Ok(micros)
}

/// Deny-lists first (payTo, host, URL), then allow-lists (payTo, host, URL). Host and URL rules
/// judge the URL the tool requested, never the resource the merchant declares; with no
/// requestUrl, or a path URL rules cannot judge, they fail closed. Details name the field only.
fn merchant(request: &VerifyRequest, requirement: &Requirement, policy: &EffectivePolicy) -> Check {
    let url = request.request_url.as_ref();
    let host = url.map(|u| u.host());
    let judgeable = url.map(|u| u.path_segments().is_some());
    if policy.pay_to_blocked(&requirement.network, &requirement.pay_to) {
        return fail(
            ReasonCode::MerchantBlocked,
            "requirement.payTo is blocked by policy",
        );
    }
    if policy.host_blocked(host) {
        return fail(
            ReasonCode::MerchantBlocked,
            match host {
                Some(_) => "the requestUrl host is blocked by policy",
                None => "a host deny-list applies and the event has no requestUrl",
            },
        );
    }
    if policy.url_blocked(url) {
        return fail(
            ReasonCode::MerchantBlocked,
            match judgeable {
                Some(true) => "the requestUrl is blocked by a URL rule",
                Some(false) => "the requestUrl path is ambiguous and a URL deny-list applies",
                None => "a URL deny-list applies and the event has no requestUrl",
            },
        );
    }
    if !policy.pay_to_allowed(&requirement.network, &requirement.pay_to) {
        return fail(
            ReasonCode::MerchantNotAllowed,
            "requirement.payTo is not on the allow-list",
        );
    }
    if !policy.host_allowed(host) {
        return fail(
            ReasonCode::MerchantNotAllowed,
            match host {
                Some(_) => "the requestUrl host is not on the allow-list",
                None => "a host allow-list applies and the event has no requestUrl",
            },
        );
    }
    if !policy.url_allowed(url) {
        return fail(
            ReasonCode::MerchantNotAllowed,
            match judgeable {
                Some(true) => "the requestUrl is not on the URL allow-list",
                Some(false) => "the requestUrl path is ambiguous and a URL allow-list applies",
                None => "a URL allow-list applies and the event has no requestUrl",
            },
        );
    }
    Ok(())
}

/// The authorization window, the per-payment cap, then what the session still has available.
fn limits(
    requirement: &Requirement,
    policy: &EffectivePolicy,
    micros: u64,
    session: &SessionRecord,
    own_hold_micros: u64,
) -> Check {
    // A signed authorization settles until its validBefore; the hold must outlive it, so the
    // window the merchant asks for is bounded before anything is signed.
    if requirement.max_timeout_seconds > policy.max_authorization_seconds() {
        return fail(
            ReasonCode::AuthorizationWindowTooLong,
            "requirement.maxTimeoutSeconds is above maxAuthorizationSeconds",
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
    // A payment's own open hold (authorize continuing the same request) is already out of
    // `available`: it counts for this payment, not against it.
    if micros > session.available_micros.saturating_add(own_hold_micros) {
        return fail(
            ReasonCode::SessionBudgetExceeded,
            "amount is above the session's available budget",
        );
    }
    Ok(())
}
