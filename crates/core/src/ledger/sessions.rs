//! Admin: opening a session's budget and the kill switch.

use serde_json::Value;

use super::events::Fields;
use super::refusals::unavailable;
use super::responses::{invalid, ok, refused};
use super::{Ledger, LedgerStore, OpenResult};
use crate::money::parse_usd;
use crate::reason::ReasonCode;
use crate::records::{SessionRecord, SessionStatus};

impl<S: LedgerStore + Sync> Ledger<S> {
    pub(super) async fn open_session(&self, f: &Fields<'_>, now: u64) -> Result<Value, Value> {
        f.only(&[
            "paymentSessionId",
            "userId",
            "limit",
            "expiresAt",
            "expiryMinutes",
        ])?;
        let session_id = f.id("paymentSessionId")?;
        let user_id = f.id("userId")?;
        let limit = parse_usd(&f.string("limit")?)
            .map_err(|e| invalid(Some(f.op), "limit", &format!("{e}")))?;
        let expires_at = match (f.obj.get("expiresAt"), f.obj.get("expiryMinutes")) {
            (Some(t), None) => t.as_u64().filter(|t| *t > now).ok_or_else(|| {
                invalid(
                    Some(f.op),
                    "expiresAt",
                    "must be epoch seconds in the future",
                )
            })?,
            (None, Some(m)) => match m.as_u64() {
                Some(m @ 15..=480) => now + m * 60,
                _ => {
                    return Err(invalid(
                        Some(f.op),
                        "expiryMinutes",
                        "must be an integer from 15 to 480",
                    ))
                }
            },
            (Some(_), Some(_)) => {
                return Err(invalid(
                    Some(f.op),
                    "expiresAt",
                    "give expiresAt or expiryMinutes, not both",
                ))
            }
            (None, None) => {
                return Err(invalid(
                    Some(f.op),
                    "expiresAt",
                    "expiresAt or expiryMinutes is required",
                ))
            }
        };
        let session = SessionRecord {
            payment_session_id: session_id,
            user_id,
            limit_micros: limit,
            reserved_micros: 0,
            settled_micros: 0,
            available_micros: limit,
            overdraft_micros: 0,
            expires_at,
            status: SessionStatus::Open,
            open_request_id: None,
        };
        match self
            .store
            .open_session(&session, f.write(now))
            .await
            .map_err(|e| unavailable(f.op, &e))?
        {
            OpenResult::Created(s) => Ok(ok(f.op, false, None, Some(&s))),
            OpenResult::Same(s) => Ok(ok(f.op, true, None, Some(&s))),
            // An expiryMinutes replay computes a new expiry; same user and limit is the same session.
            OpenResult::Different(s)
                if f.obj.contains_key("expiryMinutes")
                    && s.user_id == session.user_id
                    && s.limit_micros == session.limit_micros =>
            {
                Ok(ok(f.op, true, None, Some(&s)))
            }
            OpenResult::Different(_) => Err(refused(
                Some(f.op),
                ReasonCode::IdempotencyConflict,
                "a session with this id exists with other terms",
            )),
        }
    }

    pub(super) async fn close_session(&self, f: &Fields<'_>, now: u64) -> Result<Value, Value> {
        f.only(&["paymentSessionId", "reason"])?;
        let session_id = f.id("paymentSessionId")?;
        let reason = f.string("reason")?;
        if reason.len() > 256 {
            return Err(invalid(
                Some(f.op),
                "reason",
                "is longer than 256 characters",
            ));
        }
        match self
            .store
            .close_session(&session_id, &reason, f.write(now))
            .await
            .map_err(|e| unavailable(f.op, &e))?
        {
            Some((s, already_closed)) => Ok(ok(f.op, already_closed, None, Some(&s))),
            None => Err(refused(Some(f.op), ReasonCode::SessionUnknown, "")),
        }
    }
}
