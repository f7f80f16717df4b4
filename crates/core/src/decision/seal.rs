//! Sealing a decision: the audit record, the response and, on YES, the decision token.

use super::{AmountView, Decision, DecisionContext, Outcome, Verdict, VerifyResponse};
use crate::address::normalize_address;
use crate::audit;
use crate::canonical::CanonicalObject;
use crate::policy::DEFAULT_MAX_AUTHORIZATION_SECONDS;
use crate::reason::ReasonCode;
use crate::token::{self, TokenClaims, TOKEN_TTL_SECONDS};
use crate::verify::{is_plain_name, EVENT_VERSION};

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
    // The host the rules judged: the requested URL's, never the merchant's declared resource.
    let host = request
        .and_then(|r| r.request_url.as_ref())
        .map(|u| u.host().to_string());
    let audit = audit::seal_canonical(record(&outcome, verdict, host.as_deref(), ctx), ctx.keys);

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
                authorization_window_seconds: outcome
                    .authorization_window_seconds
                    .unwrap_or(DEFAULT_MAX_AUTHORIZATION_SECONDS),
                issued_at: ctx.now,
                expires_at: token_expires_at,
                budgets: outcome.budgets.clone(),
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
        amount: outcome.amount.clone(),
        expires_at: decision_token.as_ref().map(|_| token_expires_at),
        decision_token,
    };
    let usage = if response.decision == Verdict::Yes {
        outcome.usage
    } else {
        Vec::new()
    };
    Decision {
        response,
        audit,
        usage,
    }
}

/// Room for a whole record: the longest in the tests is about 900 bytes.
const RECORD_CAPACITY: usize = 1024;

/// The audit record in canonical form, written member by member in canonical (byte) order.
/// Optional members appear as the outcome knows them: the request's once it parsed, the
/// requirement's once it parsed, the amount once converted, the host once requested.
fn record(
    outcome: &Outcome,
    verdict: Verdict,
    host: Option<&str>,
    ctx: DecisionContext<'_>,
) -> String {
    let request = outcome.request.as_ref();
    let requirement = outcome.requirement.as_ref();
    let micros = outcome.amount.as_ref().and_then(|a| a.micros);
    let mut r = CanonicalObject::with_capacity(RECORD_CAPACITY);
    if let Some(request) = request {
        r.string("agentId", &request.agent_id);
    }
    if let Some(q) = requirement {
        r.string("amountAtomic", &q.amount);
    }
    if let Some(micros) = micros {
        r.uint("amountMicros", micros);
    }
    if let Some(q) = requirement {
        r.string("asset", &normalize_address(&q.network, &q.asset));
    }
    r.bool("consentRequired", outcome.consent_required)
        .uint("decidedAt", ctx.now)
        .string("decision", verdict.as_str());
    if let Some(detail) = &outcome.detail {
        r.string("detail", detail);
    }
    r.string("kind", "predebit.verify");
    if let Some(q) = requirement {
        r.uint("maxTimeoutSeconds", q.max_timeout_seconds)
            .string("network", &q.network)
            .string("payTo", &normalize_address(&q.network, &q.pay_to));
    }
    if let Some(request) = request {
        r.string("paymentId", &request.payment_id)
            .string("paymentSessionId", &request.payment_session_id);
        // Payment type and scheme are only checked for being non-empty before they are judged;
        // one that is not a plain name is the caller's text and stays out of the record.
        if is_plain_name(&request.payment_type) {
            r.string("paymentType", &request.payment_type);
        }
    }
    let versions = outcome.policy_versions;
    r.object("policyVersions", |v| {
        v.uint_or_null("agent", versions.agent)
            .uint_or_null("global", versions.global)
            .uint_or_null("user", versions.user);
    })
    .string("reasonCode", outcome.reason.as_str());
    if let Some(host) = host {
        r.string("resourceHost", host);
    }
    if let Some(q) = requirement.filter(|q| is_plain_name(&q.scheme)) {
        r.string("scheme", &q.scheme);
    }
    if verdict == Verdict::Yes {
        r.uint("tokenExpiresAt", ctx.now.saturating_add(TOKEN_TTL_SECONDS));
    }
    if let Some(request) = request {
        r.string("toolName", &request.tool_name)
            .string("userPseudonym", &ctx.keys.pseudonymize(&request.user_id));
    }
    r.string("verificationId", ctx.verification_id)
        .string("version", EVENT_VERSION);
    if let Some(q) = requirement {
        r.uint("x402Version", q.x402_version.into());
    }
    r.finish()
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::tests::{block_on, event, keys, store, NOW};
    use super::super::{decide, DecisionContext};
    use crate::policy::PolicyCache;

    /// Decisions that between them write every member of the record, with the values that are
    /// awkward to canonicalize (integers above 2^53, u64::MAX).
    fn cases() -> Vec<(&'static str, Value, bool)> {
        let mut long_window = event("1000000");
        long_window["requirement"]["maxTimeoutSeconds"] = json!(u64::MAX);
        let mut other_type = event("1000000");
        other_type["paymentType"] = json!("CARD");
        vec![
            ("yes", event("1000000"), false),
            (
                "no_budget_above_2_pow_53",
                event("10000000000000000000"),
                false,
            ),
            ("no_window_u64_max", long_window, false),
            ("no_payment_type", other_type, false),
            ("no_invalid_request", json!([1, 2, 3]), false),
            ("no_store_unavailable", event("1000000"), true),
        ]
    }

    /// The records as decided now, by case name.
    fn records() -> Value {
        let keys = keys();
        let mut out = serde_json::Map::new();
        for (name, event, outage) in cases() {
            let s = store(Some("{}"), None, 10_000_000);
            s.set_unavailable(outage);
            let d = block_on(decide(
                &s,
                &event,
                DecisionContext {
                    verification_id: "v-golden",
                    now: NOW,
                    keys: &keys,
                    policies: &PolicyCache::new(),
                },
            ));
            out.insert(
                name.to_string(),
                json!({"canonical": d.audit.canonical, "auditHash": d.audit.audit_hash,
                       "auditMac": d.audit.audit_mac, "decisionToken": d.response.decision_token}),
            );
        }
        Value::Object(out)
    }

    #[test]
    fn decision_records_are_byte_identical_to_the_pinned_vectors() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/decision-records-v1.json"
        );
        let now = records();
        if std::env::var_os("PREDEBIT_WRITE_VECTORS").is_some() {
            std::fs::write(path, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
        }
        let pinned: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(now, pinned);
    }
}
