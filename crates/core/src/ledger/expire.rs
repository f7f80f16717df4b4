//! expire (schedule): voids PENDING holds past their window and SENT holds that can no longer settle.

use serde_json::{json, Value};

use super::events::Fields;
use super::refusals::unavailable;
use super::{Ledger, LedgerStore, Transition, EXPIRED};
use crate::hold::HoldState;
use crate::payment_session::PaymentSessions;
use crate::verify::EVENT_VERSION;

impl<S: LedgerStore + Sync, P: PaymentSessions + Sync> Ledger<S, P> {
    pub(super) async fn expire(&self, f: &Fields<'_>, now: u64) -> Result<Value, Value> {
        f.only(&[])?;
        let due = self
            .store
            .due_holds(now, self.config.expire_batch)
            .await
            .map_err(|e| unavailable(f.op, &e))?;
        let (mut pending, mut sent, mut skipped, mut failed) = (0u64, 0u64, 0u64, 0u64);
        for hold in &due.holds {
            match self.store.expire_hold(hold, f.write(now)).await {
                Ok(Transition::Done(..)) if hold.state == HoldState::Pending => pending += 1,
                Ok(Transition::Done(..)) => sent += 1,
                Ok(Transition::NotApplied(_)) => skipped += 1,
                Ok(Transition::Conflict) | Err(_) => failed += 1,
            }
        }
        // Pooled sessions past their expiry close, giving back what they did not spend (after
        // their due holds above, so those return to the pool too).
        let mut sessions_closed = 0u64;
        for session in &due.sessions {
            match self
                .store
                .close_session(&session.payment_session_id, EXPIRED, f.write(now))
                .await
            {
                Ok(Some((_, false))) => sessions_closed += 1,
                Ok(_) => skipped += 1,
                Err(_) => failed += 1,
            }
        }
        Ok(json!({
            "version": EVENT_VERSION, "op": f.op.as_str(), "ok": true, "replayed": false,
            "expired": { "pending": pending, "sent": sent },
            "closedPooledSessions": sessions_closed,
            "skipped": skipped, "failed": failed, "unreadable": due.unreadable,
            "due": due.holds.len() as u64 + due.sessions.len() as u64 + due.unreadable,
        }))
    }
}
