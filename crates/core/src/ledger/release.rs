//! release: a payment never sent goes back to the session (PENDING -> VOIDED only).

use serde_json::Value;

use super::events::{amount_hint, Fields};
use super::refusals::{state_refusal, unavailable};
use super::responses::{done, invalid, ok, refused};
use super::{Ledger, LedgerStore, Transition, RELEASE_REASONS};
use crate::hold::HoldState;
use crate::keys::KeyRing;
use crate::payment_session::PaymentSessions;
use crate::reason::ReasonCode;

impl<S: LedgerStore + Sync, P: PaymentSessions + Sync> Ledger<S, P> {
    pub(super) async fn release(
        &self,
        f: &Fields<'_>,
        keys: &KeyRing,
        now: u64,
    ) -> Result<Value, Value> {
        f.only(&[
            "paymentSessionId",
            "paymentId",
            "reason",
            "amountMicros",
            "holdToken",
        ])?;
        let amount_hint = amount_hint(f)?;
        let (session_id, payment_id) = f.hold_target(keys)?;
        let reason = f.string("reason")?;
        if !RELEASE_REASONS.contains(&reason.as_str()) {
            return Err(invalid(
                Some(f.op),
                "reason",
                "must be SIGNING_FAILED, NOT_SENT, SIGNED_PAYLOAD_MISMATCH or CANCELLED",
            ));
        }
        match self.store.release(&session_id, &payment_id, amount_hint, &reason, f.write(now)).await.map_err(|e| unavailable(f.op, &e))? {
            Transition::Done(hold) => Ok(done(f.op, hold, &payment_id, HoldState::Voided)),
            Transition::Conflict => Err(refused(Some(f.op), ReasonCode::StoreConflict, "")),
            Transition::NotApplied(Some(hold))
                if hold.state == HoldState::Voided && hold.void_reason.as_deref() == Some(reason.as_str()) =>
            {
                Ok(ok(f.op, true, Some(&hold), None))
            }
            Transition::NotApplied(Some(hold)) if hold.state == HoldState::Sent => Err(refused(
                Some(f.op),
                ReasonCode::OpNotAllowed,
                "a SENT hold is in doubt until it settles or its authorization expires; it cannot be released",
            )),
            Transition::NotApplied(found) => Err(state_refusal(f.op, found.as_ref())),
        }
    }
}
