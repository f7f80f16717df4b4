//! Admin: opening a session's budget and the kill switch.
//!
//! Without a payment manager, openSession takes the caller's word for the AgentCore session it
//! budgets. With one, it creates that session (`CreatePaymentSession`, `maxSpendAmount` = the
//! limit) or reads the one named (`GetPaymentSession`) and holds the limit and expiry to it
//! before writing anything (`crate::payment_session::check`).

use serde_json::{json, Value};

use super::events::Fields;
use super::refusals::unavailable;
use super::responses::{invalid, ok, refused};
use super::{Ledger, LedgerStore, OpenResult};
use crate::money::parse_usd;
use crate::payment_session::{
    self, is_client_token, CreateSession, PaymentSessionError, PaymentSessions, Terms,
    EXPIRY_MINUTES_MAX, EXPIRY_MINUTES_MIN, USER_ID_MAX,
};
use crate::reason::ReasonCode;
use crate::records::{SessionRecord, SessionStatus};

impl<S: LedgerStore + Sync, P: PaymentSessions + Sync> Ledger<S, P> {
    pub(super) async fn open_session(&self, f: &Fields<'_>, now: u64) -> Result<Value, Value> {
        match &self.payment_sessions {
            Some(sessions) => self.open_against_agentcore(sessions, f, now).await,
            None => self.open_on_callers_word(f, now).await,
        }
    }

    /// The caller vouches that the AgentCore session exists with at least this limit and expiry.
    async fn open_on_callers_word(&self, f: &Fields<'_>, now: u64) -> Result<Value, Value> {
        f.only(&[
            "paymentSessionId",
            "userId",
            "limit",
            "expiresAt",
            "expiryMinutes",
            "pool",
        ])?;
        let session_id = f.id("paymentSessionId")?;
        let user_id = f.id("userId")?;
        let limit = limit(f)?;
        let expires_at = match (expires_at(f, now)?, expiry_minutes(f)?) {
            (Some(t), _) => t,
            (None, Some(m)) => now.saturating_add(u64::from(m) * 60),
            (None, None) => {
                return Err(invalid(
                    Some(f.op),
                    "expiresAt",
                    "expiresAt or expiryMinutes is required",
                ))
            }
        };
        // An expiryMinutes replay computes a new expiry; same user and limit is the same session.
        let lenient = f.obj.contains_key("expiryMinutes");
        let mut record = new_record(session_id, user_id, limit, expires_at);
        record.pool_id = pool(f)?;
        self.write_session(f, &record, now, lenient).await
    }

    /// Creates the AgentCore session (no paymentSessionId) or reads the one named, holds the
    /// terms to it, then writes predebit's. Nothing is written unless AgentCore's answer passes.
    async fn open_against_agentcore(
        &self,
        sessions: &P,
        f: &Fields<'_>,
        now: u64,
    ) -> Result<Value, Value> {
        f.only(&[
            "paymentSessionId",
            "userId",
            "limit",
            "expiresAt",
            "expiryMinutes",
            "clientToken",
            "pool",
        ])?;
        let op = Some(f.op);
        let user_id = f.id("userId")?;
        if user_id.len() > USER_ID_MAX {
            return Err(invalid(
                op,
                "userId",
                "is longer than the 120 characters AgentCore takes",
            ));
        }
        let limit = limit(f)?;
        let given_expires_at = expires_at(f, now)?;
        let minutes = expiry_minutes(f)?;
        let (found, asked_id, action) = match f.obj.get("paymentSessionId") {
            None => {
                if given_expires_at.is_some() {
                    return Err(invalid(
                        op,
                        "expiresAt",
                        "AgentCore creates a session for expiryMinutes (15-480): give expiryMinutes",
                    ));
                }
                let Some(expiry_minutes) = minutes else {
                    return Err(invalid(
                        op,
                        "expiryMinutes",
                        "is required to create the AgentCore session (15-480)",
                    ));
                };
                let client_token = f.string("clientToken")?;
                if !is_client_token(&client_token) {
                    return Err(invalid(
                        op,
                        "clientToken",
                        "must be 33 to 256 letters, digits or '-', starting and ending with a letter or digit",
                    ));
                }
                let request = CreateSession {
                    user_id: &user_id,
                    limit_micros: limit,
                    expiry_minutes,
                    client_token: &client_token,
                };
                let created = sessions
                    .create(&request)
                    .await
                    .map_err(|e| agentcore_refusal(f, &e, true))?;
                let id = created.payment_session_id.clone();
                (created, id, "created")
            }
            Some(_) => {
                let session_id = f.id("paymentSessionId")?;
                if f.obj.contains_key("clientToken") {
                    return Err(invalid(
                        op,
                        "clientToken",
                        "is only for creating a session: leave out paymentSessionId, or clientToken",
                    ));
                }
                match sessions
                    .get(&session_id, &user_id)
                    .await
                    .map_err(|e| agentcore_refusal(f, &e, false))?
                {
                    Some(found) => (found, session_id, "read"),
                    None => return Err(refused(op, ReasonCode::AgentCoreSessionUnknown, "")),
                }
            }
        };
        // expiryMinutes counts from AgentCore's createdAt, as AgentCore counts it, so the same
        // minutes give the same expiry on every replay.
        let wanted_expires_at = match (given_expires_at, minutes) {
            (Some(t), _) => Some(t),
            (None, Some(m)) => Some(
                u64::try_from(found.created_at)
                    .unwrap_or(0)
                    .saturating_add(u64::from(m) * 60),
            ),
            (None, None) => None,
        };
        let terms = Terms {
            payment_session_id: &asked_id,
            user_id: &user_id,
            limit_micros: limit,
            expires_at: wanted_expires_at,
        };
        let expires_at = payment_session::check(&found, &terms, now)
            .map_err(|(reason, detail)| refused(op, reason, detail))?;
        // Only fewer minutes than AgentCore's, asked long after its creation, can have passed.
        if expires_at <= now {
            return Err(invalid(
                op,
                "expiryMinutes",
                "counted from the AgentCore session's createdAt, it has already passed",
            ));
        }
        let mut record = new_record(asked_id, user_id, limit, expires_at);
        record.pool_id = pool(f)?;
        let mut response = self.write_session(f, &record, now, false).await?;
        response["agentCore"] = json!(action);
        Ok(response)
    }

    /// Puts the session if absent; the same terms again are a replay.
    async fn write_session(
        &self,
        f: &Fields<'_>,
        session: &SessionRecord,
        now: u64,
        lenient_expiry: bool,
    ) -> Result<Value, Value> {
        match self
            .store
            .open_session(session, f.write(now))
            .await
            .map_err(|e| unavailable(f.op, &e))?
        {
            OpenResult::Created(s) => Ok(ok(f.op, false, None, Some(&s))),
            OpenResult::Same(s) => Ok(ok(f.op, true, None, Some(&s))),
            OpenResult::Different(s)
                if lenient_expiry
                    && s.user_id == session.user_id
                    && s.limit_micros + s.returned_micros == session.limit_micros
                    && s.pool_id == session.pool_id =>
            {
                Ok(ok(f.op, true, None, Some(&s)))
            }
            OpenResult::Different(_) => Err(refused(
                Some(f.op),
                ReasonCode::IdempotencyConflict,
                "a session with this id exists with other terms",
            )),
            OpenResult::PoolUnknown => Err(refused(Some(f.op), ReasonCode::PoolUnknown, "")),
            OpenResult::PoolExceeded => Err(refused(Some(f.op), ReasonCode::PoolExceeded, "")),
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

fn new_record(
    payment_session_id: String,
    user_id: String,
    limit_micros: u64,
    expires_at: u64,
) -> SessionRecord {
    SessionRecord {
        payment_session_id,
        user_id,
        limit_micros,
        reserved_micros: 0,
        settled_micros: 0,
        available_micros: limit_micros,
        overdraft_micros: 0,
        expires_at,
        status: SessionStatus::Open,
        open_request_id: None,
        pool_id: None,
        returned_micros: 0,
    }
}

/// The funding pool named, when one is.
fn pool(f: &Fields<'_>) -> Result<Option<String>, Value> {
    f.obj.get("pool").map(|_| f.id("pool")).transpose()
}

fn limit(f: &Fields<'_>) -> Result<u64, Value> {
    parse_usd(&f.string("limit")?).map_err(|e| invalid(Some(f.op), "limit", &format!("{e}")))
}

/// `expiresAt` when given: epoch seconds in the future, and not beside `expiryMinutes`.
fn expires_at(f: &Fields<'_>, now: u64) -> Result<Option<u64>, Value> {
    match (f.obj.get("expiresAt"), f.obj.contains_key("expiryMinutes")) {
        (None, _) => Ok(None),
        (Some(_), true) => Err(invalid(
            Some(f.op),
            "expiresAt",
            "give expiresAt or expiryMinutes, not both",
        )),
        (Some(t), false) => t.as_u64().filter(|t| *t > now).map(Some).ok_or_else(|| {
            invalid(
                Some(f.op),
                "expiresAt",
                "must be epoch seconds in the future",
            )
        }),
    }
}

/// `expiryMinutes` when given: AgentCore's range, 15 to 480.
fn expiry_minutes(f: &Fields<'_>) -> Result<Option<u32>, Value> {
    match f.obj.get("expiryMinutes") {
        None => Ok(None),
        Some(m) => m
            .as_u64()
            .and_then(|m| u32::try_from(m).ok())
            .filter(|m| (EXPIRY_MINUTES_MIN..=EXPIRY_MINUTES_MAX).contains(m))
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    Some(f.op),
                    "expiryMinutes",
                    "must be an integer from 15 to 480",
                )
            }),
    }
}

/// AgentCore gave no session: nothing was written in predebit.
fn agentcore_refusal(f: &Fields<'_>, err: &PaymentSessionError, creating: bool) -> Value {
    let op = Some(f.op);
    match err {
        PaymentSessionError::Refused(kind) => refused(op, ReasonCode::AgentCoreRefused, kind),
        PaymentSessionError::Conflict => refused(
            op,
            ReasonCode::IdempotencyConflict,
            "AgentCore saw this clientToken with other terms",
        ),
        PaymentSessionError::Unavailable(kind) if creating => refused(
            op,
            ReasonCode::AgentCoreUnavailable,
            &format!(
                "{kind}; send the same request with the same clientToken: AgentCore returns the session it may have created"
            ),
        ),
        PaymentSessionError::Unavailable(kind) => refused(
            op,
            ReasonCode::AgentCoreUnavailable,
            &format!("{kind}; send the same request again"),
        ),
    }
}
