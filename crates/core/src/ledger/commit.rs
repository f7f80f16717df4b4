//! commit: a settlement response posts the hold (late after a void); a failure keeps it SENT.

use serde_json::Value;

use super::events::{amount_hint, Fields};
use super::refusals::{state_refusal, unavailable};
use super::responses::{done, invalid, ok, refused, session_view};
use super::{Ledger, LedgerStore, Transition};
use crate::hold::{HoldState, SettlementRecord};
use crate::reason::ReasonCode;
use crate::x402::parse_settlement;

impl<S: LedgerStore + Sync> Ledger<S> {
    pub(super) async fn commit(&self, f: &Fields<'_>, now: u64) -> Result<Value, Value> {
        f.only(&[
            "paymentSessionId",
            "paymentId",
            "settlement",
            "amountMicros",
        ])?;
        let amount_hint = amount_hint(f)?;
        let session_id = f.id("paymentSessionId")?;
        let payment_id = f.payment_id()?;
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
        let settlement = parse_settlement(&text)
            .map_err(|e| invalid(Some(f.op), &format!("settlement.{}", e.field), &e.problem))?;
        if !settlement.success {
            let error = settlement
                .error_reason
                .unwrap_or_else(|| "unspecified".into());
            let outcome = self
                .store
                .record_failed_settlement(&session_id, &payment_id, &error, now)
                .await
                .map_err(|e| unavailable(f.op, &e))?;
            return match outcome {
                Transition::Done(hold) => Ok(done(f.op, hold, &payment_id, HoldState::Sent)),
                Transition::Conflict => Err(refused(Some(f.op), ReasonCode::StoreConflict, "")),
                Transition::NotApplied(found) => Err(state_refusal(f.op, found.as_ref())),
            };
        }
        let record = SettlementRecord {
            transaction: settlement.transaction,
            payer: settlement.payer,
            network: settlement.network,
            reported_amount: settlement.amount,
        };
        let outcome = self
            .store
            .post(&session_id, &payment_id, amount_hint, &record, now)
            .await
            .map_err(|e| unavailable(f.op, &e))?;
        match outcome {
            Transition::Done(hold) => Ok(done(f.op, hold, &payment_id, HoldState::Posted)),
            Transition::Conflict => Err(refused(Some(f.op), ReasonCode::StoreConflict, "")),
            Transition::NotApplied(None) => Err(refused(Some(f.op), ReasonCode::HoldNotFound, "")),
            Transition::NotApplied(Some(hold)) => match hold.state {
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
                HoldState::Voided => {
                    // A settlement after a void is still recorded: no settlement is lost.
                    match self
                        .store
                        .post_late(&hold, &record, now)
                        .await
                        .map_err(|e| unavailable(f.op, &e))?
                    {
                        Transition::Done(hold) => {
                            let mut response = done(f.op, hold, &payment_id, HoldState::Posted);
                            // Rare path: one more read shows the operator the overdraft it caused.
                            if let Ok(Some((session, _))) =
                                self.store.read_session(&session_id).await
                            {
                                response["session"] = session_view(&session);
                            }
                            Ok(response)
                        }
                        Transition::Conflict => {
                            Err(refused(Some(f.op), ReasonCode::StoreConflict, ""))
                        }
                        Transition::NotApplied(found) => Err(state_refusal(f.op, found.as_ref())),
                    }
                }
                HoldState::Pending | HoldState::Sent => Err(refused(
                    Some(f.op),
                    ReasonCode::StoreConflict,
                    "the hold changed; retry",
                )),
            },
        }
    }
}
