//! commit: a settlement response posts the hold (late after a void); a failure keeps it SENT.
//!
//! For `exact` the signed amount is posted, never the merchant's `amount`; for `upto` the
//! merchant's `amount` is what was charged (at most the signed maximum the hold reserved), and
//! the rest goes back to the session and the budget windows in the same transaction (see the
//! store). A charge of 0 settles with no transaction. A settlement on another network
//! than the approved one is not this payment's and changes nothing. A PENDING hold is posted too
//! (a settlement proves the payment was sent) but is marked `markSentMissing`. A settlement
//! reported pending (`settlement_pending` with its transaction) keeps the hold SENT and records
//! the transaction; the final response posts it.

use serde_json::Value;

use super::events::{amount_hint, Fields};
use super::refusals::{state_refusal, unavailable};
use super::responses::{done, invalid, ok, refused, session_view};
use super::{Ledger, LedgerStore, Transition};
use crate::hold::{Hold, HoldState, SettlementRecord};
use crate::keys::KeyRing;
use crate::payment_session::PaymentSessions;
use crate::reason::ReasonCode;
use crate::x402::{parse_settlement, Settlement};

/// x402's reason for a settlement broadcast whose confirmation is still awaited.
pub const SETTLEMENT_PENDING: &str = "settlement_pending";

const OTHER_NETWORK: &str =
    "settlement.network is not the network the payment was approved on; the hold is unchanged";

impl<S: LedgerStore + Sync, P: PaymentSessions + Sync> Ledger<S, P> {
    pub(super) async fn commit(
        &self,
        f: &Fields<'_>,
        keys: &KeyRing,
        now: u64,
    ) -> Result<Value, Value> {
        f.only(&[
            "paymentSessionId",
            "paymentId",
            "settlement",
            "amountMicros",
            "holdToken",
        ])?;
        let amount_hint = amount_hint(f)?;
        let (session_id, payment_id) = f.hold_target(keys)?;
        let settlement = settlement(f)?;
        if !settlement.success {
            return self
                .failed_settlement(f, &session_id, &payment_id, settlement, now)
                .await;
        }
        // Only an `upto` payment settles without a transaction (it charged 0): an exact hold's
        // settlement must name one.
        if settlement.transaction.is_empty() {
            let hold = self
                .store
                .read_hold(&session_id, &payment_id)
                .await
                .map_err(|e| unavailable(f.op, &e))?;
            match hold {
                None => return Err(refused(Some(f.op), ReasonCode::HoldNotFound, "")),
                Some(h) if !h.is_upto() => {
                    return Err(invalid(
                        Some(f.op),
                        "settlement.transaction",
                        "must not be empty for an exact payment",
                    ))
                }
                Some(_) => {}
            }
        }
        let record = SettlementRecord {
            transaction: settlement.transaction,
            payer: settlement.payer,
            network: settlement.network,
            reported_amount: settlement.amount,
        };
        let outcome = self
            .store
            .post(
                &session_id,
                &payment_id,
                amount_hint,
                &record,
                HoldState::Sent,
                f.write(now),
            )
            .await
            .map_err(|e| unavailable(f.op, &e))?;
        match outcome {
            Transition::Done(hold) => Ok(done(f.op, hold, &payment_id, HoldState::Posted)),
            Transition::Conflict => Err(refused(Some(f.op), ReasonCode::StoreConflict, "")),
            Transition::NotApplied(None) => Err(refused(Some(f.op), ReasonCode::HoldNotFound, "")),
            Transition::NotApplied(Some(hold)) => {
                self.post_found(f, hold, amount_hint, &record, now).await
            }
        }
    }

    /// The hold was not SENT on this network: decide from the hold as found.
    async fn post_found(
        &self,
        f: &Fields<'_>,
        hold: Hold,
        amount_hint: Option<u64>,
        record: &SettlementRecord,
        now: u64,
    ) -> Result<Value, Value> {
        if hold.network != record.network {
            return Err(refused(
                Some(f.op),
                ReasonCode::SignedPayloadMismatch,
                OTHER_NETWORK,
            ));
        }
        let (session_id, payment_id) = (&hold.payment_session_id, &hold.payment_id);
        match hold.state {
            HoldState::Posted
                if hold
                    .settlement
                    .as_ref()
                    .is_some_and(|s| s.transaction == record.transaction) =>
            {
                Ok(ok(f.op, true, Some(&hold), None))
            }
            HoldState::Posted => Err(refused(
                Some(f.op),
                ReasonCode::HoldAlreadyPosted,
                "posted with another transaction",
            )),
            // markSent never arrived; the settlement proves the payment was sent, so post it.
            HoldState::Pending => match self
                .store
                .post(
                    session_id,
                    payment_id,
                    amount_hint,
                    record,
                    HoldState::Pending,
                    f.write(now),
                )
                .await
                .map_err(|e| unavailable(f.op, &e))?
            {
                Transition::Done(posted) => {
                    let mut response = done(f.op, posted, payment_id, HoldState::Posted);
                    response["hold"]["markSentMissing"] = Value::Bool(true);
                    Ok(response)
                }
                Transition::Conflict => Err(refused(Some(f.op), ReasonCode::StoreConflict, "")),
                Transition::NotApplied(found) => Err(state_refusal(f.op, found.as_ref())),
            },
            HoldState::Voided => {
                // A settlement after a void is still recorded: no settlement is lost.
                match self
                    .store
                    .post_late(&hold, record, f.write(now))
                    .await
                    .map_err(|e| unavailable(f.op, &e))?
                {
                    Transition::Done(posted) => {
                        let mut response = done(f.op, posted, payment_id, HoldState::Posted);
                        // Rare path: one more read shows the operator the overdraft it caused.
                        if let Ok(Some(page)) =
                            self.store.read_session_page(session_id, None, 0).await
                        {
                            response["session"] = session_view(&page.session);
                        }
                        Ok(response)
                    }
                    Transition::Conflict => Err(refused(Some(f.op), ReasonCode::StoreConflict, "")),
                    Transition::NotApplied(found) => Err(state_refusal(f.op, found.as_ref())),
                }
            }
            HoldState::Sent => Err(refused(
                Some(f.op),
                ReasonCode::StoreConflict,
                "the hold changed; retry",
            )),
        }
    }

    /// A failed settlement is recorded and the hold stays open: the signed authorization may
    /// still settle until its validBefore.
    async fn failed_settlement(
        &self,
        f: &Fields<'_>,
        session_id: &str,
        payment_id: &str,
        settlement: Settlement,
        now: u64,
    ) -> Result<Value, Value> {
        let error = settlement
            .error_reason
            .unwrap_or_else(|| "unspecified".into());
        // Broadcast, not yet final: the transaction is kept for the final answer (and the
        // operator's in-doubt list), and no failure is counted.
        let pending = (error == SETTLEMENT_PENDING && !settlement.transaction.is_empty())
            .then_some(settlement.transaction.as_str());
        let outcome = self
            .store
            .record_failed_settlement(
                session_id,
                payment_id,
                &error,
                &settlement.network,
                pending,
                f.write(now),
            )
            .await
            .map_err(|e| unavailable(f.op, &e))?;
        match outcome {
            Transition::Done(hold) => Ok(done(f.op, hold, payment_id, HoldState::Sent)),
            Transition::Conflict => Err(refused(Some(f.op), ReasonCode::StoreConflict, "")),
            Transition::NotApplied(Some(found)) if found.network != settlement.network => Err(
                refused(Some(f.op), ReasonCode::SignedPayloadMismatch, OTHER_NETWORK),
            ),
            Transition::NotApplied(found) => Err(state_refusal(f.op, found.as_ref())),
        }
    }
}

/// The event's settlement: the header value (string) or its JSON object.
fn settlement(f: &Fields<'_>) -> Result<Settlement, Value> {
    let text = match f.obj.get("settlement") {
        Some(Value::String(s)) => s.clone(),
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(_) => {
            return Err(invalid(
                Some(f.op),
                "settlement",
                "must be the header value (string) or its JSON object",
            ))
        }
        None => return Err(invalid(Some(f.op), "settlement", "is required")),
    };
    parse_settlement(&text)
        .map_err(|e| invalid(Some(f.op), &format!("settlement.{}", e.field), &e.problem))
}
