//! reserve: a verified decision token becomes a PENDING hold on the session, in one transaction.

use serde_json::Value;

use super::events::Fields;
use super::refusals::{token_refusal, unavailable};
use super::responses::{ok, refused};
use super::{Ledger, LedgerStore, ReserveRequest, ReserveResult};
use crate::budget::charges;
use crate::decision::budget_refusal;
use crate::hold::{fingerprint, open_shard, Hold, HoldState, VALID_BEFORE_SKEW_SECONDS};
use crate::hold_token;
use crate::keys::KeyRing;
use crate::payment_session::PaymentSessions;
use crate::reason::ReasonCode;
use crate::token::{self, token_digest, TokenClaims};

impl<S: LedgerStore + Sync, P: PaymentSessions + Sync> Ledger<S, P> {
    pub(super) async fn reserve(
        &self,
        f: &Fields<'_>,
        keys: &KeyRing,
        now: u64,
    ) -> Result<Value, Value> {
        f.only(&["decisionToken", "paymentId", "paymentSessionId"])?;
        let token_str = f.string("decisionToken")?;
        let claims = token::verify(&token_str, keys, now).map_err(|e| token_refusal(f.op, &e))?;
        // The caller may name the payment it means; a token for another payment is refused.
        for (field, expected) in [
            ("paymentId", &claims.payment_id),
            ("paymentSessionId", &claims.payment_session_id),
        ] {
            if let Some(v) = f.obj.get(field) {
                if v.as_str() != Some(expected.as_str()) {
                    return Err(refused(
                        Some(f.op),
                        ReasonCode::TokenInvalid,
                        "the token was issued for another payment",
                    ));
                }
            }
        }
        let budget_charges = charges(
            &claims.budgets,
            &claims.user_id,
            &claims.agent_id,
            claims.amount_micros,
            now,
        )
        .map_err(|refusal| {
            let (reason, detail) = budget_refusal(refusal);
            refused(Some(f.op), reason, &detail)
        })?;
        let mut hold = new_hold(
            &claims,
            &token_str,
            keys,
            now,
            self.config.pending_window_seconds,
        );
        // The counters are the hold's own: sealed with it, so a void returns only to them.
        hold.budget_counters = budget_charges.iter().map(|c| c.key.clone()).collect();
        if !hold.budget_counters.is_empty() {
            hold.seal(keys);
        }
        let request = ReserveRequest {
            budget_charges,
            hold: hold.clone(),
            user_id: claims.user_id.clone(),
            consent_required: claims.consent_required,
            policy_versions: claims.policy_versions,
            agent_id: claims.agent_id.clone(),
            now,
            request_id: f.request_id.to_string(),
        };
        match self
            .store
            .reserve(&request)
            .await
            .map_err(|e| unavailable(f.op, &e))?
        {
            ReserveResult::Held => Ok(with_hold_token(
                ok(f.op, false, Some(&hold), None),
                &hold,
                &claims,
                keys,
            )),
            // A replay is the same decision token again: only its holder gets the hold token.
            // Another decision for the same payment (another agent, a re-verify) gets nothing.
            ReserveResult::Existing(existing)
                if existing.fingerprint == hold.fingerprint
                    && existing.token_digest == hold.token_digest =>
            {
                Ok(with_hold_token(
                    ok(f.op, true, Some(&existing), None),
                    &existing,
                    &claims,
                    keys,
                ))
            }
            ReserveResult::Existing(existing) if existing.fingerprint == hold.fingerprint => {
                Err(refused(
                    Some(f.op),
                    ReasonCode::IdempotencyConflict,
                    "this paymentId is already held under another decision; use a new attempt",
                ))
            }
            ReserveResult::Existing(_) => Err(refused(
                Some(f.op),
                ReasonCode::IdempotencyConflict,
                "this paymentId holds a different payment",
            )),
            ReserveResult::Refused(reason, detail) => Err(refused(Some(f.op), reason, &detail)),
            ReserveResult::Conflict => Err(refused(Some(f.op), ReasonCode::StoreConflict, "")),
        }
    }
}

/// A reserve answer with the hold token every later op on the hold needs.
fn with_hold_token(
    mut response: Value,
    hold: &Hold,
    claims: &TokenClaims,
    keys: &KeyRing,
) -> Value {
    response["holdToken"] = Value::String(hold_token::issue_for(hold, &claims.user_id, keys));
    response
}

/// The PENDING hold a verified token authorises.
pub fn new_hold(
    claims: &TokenClaims,
    token: &str,
    keys: &KeyRing,
    now: u64,
    pending_window: u64,
) -> Hold {
    let mut hold = Hold {
        payment_id: claims.payment_id.clone(),
        payment_session_id: claims.payment_session_id.clone(),
        agent_id: claims.agent_id.clone(),
        state: HoldState::Pending,
        amount_micros: claims.amount_micros,
        scheme: claims.scheme.clone(),
        amount_atomic: claims.amount_atomic.clone(),
        network: claims.network.clone(),
        asset: claims.asset.clone(),
        pay_to: claims.pay_to.clone(),
        resource_host: claims.resource_host.clone(),
        max_timeout_seconds: claims.max_timeout_seconds,
        latest_valid_before: claims
            .issued_at
            .saturating_add(claims.authorization_window_seconds)
            .saturating_add(VALID_BEFORE_SKEW_SECONDS),
        fingerprint: fingerprint(
            &claims.payment_session_id,
            &claims.payment_id,
            &claims.network,
            &claims.asset,
            &claims.pay_to,
            &claims.amount_atomic,
            claims.amount_micros,
        ),
        audit_hash: claims.audit_hash.clone(),
        token_digest: token_digest(token),
        verification_id: claims.verification_id.clone(),
        created_at: now,
        hold_expires_at: now.saturating_add(pending_window),
        open_shard: Some(open_shard(&claims.payment_id)),
        signed: None,
        sent_at: None,
        settlement: None,
        posted_at: None,
        settled_micros: None,
        late: false,
        mark_sent_missing: false,
        voided_at: None,
        void_reason: None,
        settlement_failures: 0,
        last_settlement_error: None,
        pending_transaction: None,
        budget_counters: Vec::new(),
        returned_to_pool: None,
        last_request_id: None,
        mac_kid: String::new(),
        mac: String::new(),
    };
    hold.seal(keys);
    hold
}
