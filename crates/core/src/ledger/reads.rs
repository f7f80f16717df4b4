//! getSession and getHold: a session with its holds, or one hold.

use serde_json::Value;

use super::events::Fields;
use super::refusals::unavailable;
use super::responses::{hold_view, ok, refused};
use super::{Ledger, LedgerStore};
use crate::keys::KeyRing;
use crate::reason::ReasonCode;

impl<S: LedgerStore + Sync> Ledger<S> {
    pub(super) async fn get_session(&self, f: &Fields<'_>, keys: &KeyRing) -> Result<Value, Value> {
        f.only(&["paymentSessionId", "holdToken"])?;
        let session_id = f.id("paymentSessionId")?;
        // An agent reads only a session it holds a hold of; the admin deployment reads any.
        if self.config.allowed.is_agent_facing() || f.obj.contains_key("holdToken") {
            f.hold_token(keys, &session_id, None)?;
        }
        match self
            .store
            .read_session(&session_id)
            .await
            .map_err(|e| unavailable(f.op, &e))?
        {
            Some((s, holds)) => {
                let mut v = ok(f.op, false, None, Some(&s));
                v["holds"] = Value::Array(holds.iter().map(hold_view).collect());
                Ok(v)
            }
            None => Err(refused(Some(f.op), ReasonCode::SessionUnknown, "")),
        }
    }

    pub(super) async fn get_hold(&self, f: &Fields<'_>, keys: &KeyRing) -> Result<Value, Value> {
        f.only(&["paymentSessionId", "paymentId", "holdToken"])?;
        let (session_id, payment_id) = f.hold_target(keys)?;
        match self
            .store
            .read_hold(&session_id, &payment_id)
            .await
            .map_err(|e| unavailable(f.op, &e))?
        {
            Some(h) => Ok(ok(f.op, false, Some(&h), None)),
            None => Err(refused(Some(f.op), ReasonCode::HoldNotFound, "")),
        }
    }
}
