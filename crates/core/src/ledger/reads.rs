//! getSession and getHold: a session with a page of its holds, or one hold.

use serde_json::Value;

use super::events::Fields;
use super::port::MAX_HOLDS_PER_PAGE;
use super::refusals::unavailable;
use super::responses::{hold_view, invalid, ok, refused};
use super::{Ledger, LedgerStore};
use crate::keys::KeyRing;
use crate::payment_session::PaymentSessions;
use crate::reason::ReasonCode;

impl<S: LedgerStore + Sync, P: PaymentSessions + Sync> Ledger<S, P> {
    /// The session with one page of its holds (see [`MAX_HOLDS_PER_PAGE`]), and `nextCursor`
    /// when more follow. The cursor is the last paymentId of the page: it only says where the
    /// next page starts in this session, so it needs no MAC; it is checked for the shape of a
    /// paymentId and a caller can at most skip holds of a session it may already read.
    pub(super) async fn get_session(&self, f: &Fields<'_>, keys: &KeyRing) -> Result<Value, Value> {
        f.only(&["paymentSessionId", "holdToken", "cursor", "pageSize"])?;
        let session_id = f.id("paymentSessionId")?;
        let after = cursor(f)?;
        let page_size = page_size(f)?;
        // An agent reads only a session it holds a hold of; the admin deployment reads any.
        if self.config.allowed.is_agent_facing() || f.obj.contains_key("holdToken") {
            f.hold_token(keys, &session_id, None)?;
        }
        match self
            .store
            .read_session_page(&session_id, after.as_deref(), page_size)
            .await
            .map_err(|e| unavailable(f.op, &e))?
        {
            Some(page) => {
                let mut v = ok(f.op, false, None, Some(&page.session));
                v["holds"] = Value::Array(page.holds.iter().map(hold_view).collect());
                if let Some(next) = page.next_after {
                    v["nextCursor"] = Value::String(next);
                }
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

/// The `cursor` a getSession answer returned as `nextCursor`: the shape of a paymentId.
fn cursor(f: &Fields<'_>) -> Result<Option<String>, Value> {
    match f.obj.get("cursor") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(c))
            if c.len() == 64 && c.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(Some(c.clone()))
        }
        Some(_) => Err(invalid(
            Some(f.op),
            "cursor",
            "must be the nextCursor a getSession answer returned",
        )),
    }
}

/// How many holds the caller wants: 1 to [`MAX_HOLDS_PER_PAGE`], that many when absent.
fn page_size(f: &Fields<'_>) -> Result<usize, Value> {
    match f.obj.get("pageSize") {
        None | Some(Value::Null) => Ok(MAX_HOLDS_PER_PAGE),
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_HOLDS_PER_PAGE as u64).contains(n))
            .map(|n| n as usize)
            .ok_or_else(|| {
                invalid(
                    Some(f.op),
                    "pageSize",
                    &format!("must be an integer from 1 to {MAX_HOLDS_PER_PAGE}"),
                )
            }),
    }
}
