//! markSent: PENDING -> SENT when the signed terms are the approved ones.

use serde_json::Value;

use super::events::{parse_signed, Fields};
use super::refusals::unavailable;
use super::responses::{done, ok, refused};
use super::{Ledger, LedgerStore, Transition};
use crate::address::normalize_address;
use crate::hold::{sent_expires_at, HoldState, SignedRecord};
use crate::keys::KeyRing;
use crate::payment_session::PaymentSessions;
use crate::reason::ReasonCode;

impl<S: LedgerStore + Sync, P: PaymentSessions + Sync> Ledger<S, P> {
    pub(super) async fn mark_sent(
        &self,
        f: &Fields<'_>,
        keys: &KeyRing,
        now: u64,
    ) -> Result<Value, Value> {
        f.only(&["paymentSessionId", "paymentId", "signed", "holdToken"])?;
        let (session_id, payment_id) = f.hold_target(keys)?;
        let signed = parse_signed(f)?;
        // An authorization already past its validBefore cannot settle: nothing to mark.
        if signed.valid_before <= now {
            return Err(refused(
                Some(f.op),
                ReasonCode::SignedPayloadMismatch,
                "signed.validBefore has already passed; the hold is unchanged",
            ));
        }
        let expires_at = sent_expires_at(signed.valid_before);
        let outcome = self
            .store
            .mark_sent(&session_id, &payment_id, &signed, expires_at, f.write(now))
            .await
            .map_err(|e| unavailable(f.op, &e))?;
        match outcome {
            Transition::Done(hold) => Ok(done(f.op, hold, &payment_id, HoldState::Sent)),
            Transition::Conflict => Err(refused(Some(f.op), ReasonCode::StoreConflict, "")),
            Transition::NotApplied(None) => Err(refused(Some(f.op), ReasonCode::HoldNotFound, "")),
            Transition::NotApplied(Some(hold)) => match hold.state {
                HoldState::Sent
                    if hold
                        .signed
                        .as_ref()
                        .is_some_and(|s| same_signed(s, &signed)) =>
                {
                    Ok(ok(f.op, true, Some(&hold), None))
                }
                HoldState::Sent => Err(refused(
                    Some(f.op),
                    ReasonCode::IdempotencyConflict,
                    "the hold was marked sent with other terms",
                )),
                HoldState::Posted => Err(refused(Some(f.op), ReasonCode::HoldAlreadyPosted, "")),
                HoldState::Voided => Err(refused(Some(f.op), ReasonCode::HoldAlreadyVoided, "")),
                HoldState::Pending if signed.valid_before > hold.latest_valid_before => Err(refused(
                    Some(f.op),
                    ReasonCode::SignedPayloadMismatch,
                    "signed.validBefore is later than the approved authorization window allows; the hold is unchanged",
                )),
                HoldState::Pending => Err(refused(
                    Some(f.op),
                    ReasonCode::SignedPayloadMismatch,
                    "the signed terms differ from the approved payment; the hold is unchanged",
                )),
            },
        }
    }
}

/// The same signature again (a replay), not another one for the same terms: when both name the
/// authorization's nonce it must be the same.
fn same_signed(a: &SignedRecord, b: &SignedRecord) -> bool {
    let same_nonce = match (&a.nonce, &b.nonce) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    same_nonce
        && a.network == b.network
        && normalize_address(&a.network, &a.to) == normalize_address(&b.network, &b.to)
        && a.value == b.value
        && a.valid_before == b.valid_before
        && a.asset.as_deref().map(|x| normalize_address(&a.network, x))
            == b.asset.as_deref().map(|x| normalize_address(&b.network, x))
}
