//! Why the ledger refused: from the records a failed condition found, a token check or the store.

use serde_json::Value;

use super::responses::refused;
use super::Op;
use crate::hold::{Hold, HoldState};
use crate::money::format_usd;
use crate::reason::ReasonCode;
use crate::records::{
    AgentRecord, AgentStatus, ConsentRecord, ConsentStatus, SessionRecord, SessionStatus,
};
use crate::store::StoreError;
use crate::token::TokenError;

/// Why a session refused a reserve, from the session as found.
pub fn session_refusal(
    found: Option<&SessionRecord>,
    user_id: &str,
    micros: u64,
    now: u64,
) -> (ReasonCode, String) {
    match found {
        None => (
            ReasonCode::SessionUnknown,
            "the session is not open in predebit".into(),
        ),
        Some(s) if s.user_id != user_id => (
            ReasonCode::SessionUserMismatch,
            "the session's owner is another user".into(),
        ),
        Some(s) if s.status == SessionStatus::Closed => {
            (ReasonCode::SessionClosed, "the session is CLOSED".into())
        }
        Some(s) if now >= s.expires_at => {
            (ReasonCode::SessionExpired, "the session has expired".into())
        }
        Some(s) => (
            ReasonCode::SessionBudgetExceeded,
            format!(
                "{} needed, {} available",
                format_usd(micros),
                format_usd(s.available_micros)
            ),
        ),
    }
}

/// Why the agent check refused a reserve, from the agent as found.
pub fn agent_refusal(found: Option<&AgentRecord>) -> (ReasonCode, String) {
    match found.map(|a| a.status) {
        None => (
            ReasonCode::AgentUnknown,
            "the agent is no longer registered".into(),
        ),
        Some(AgentStatus::Suspended) => {
            (ReasonCode::AgentSuspended, "the agent was suspended".into())
        }
        Some(AgentStatus::Revoked) => (ReasonCode::AgentRevoked, "the agent was revoked".into()),
        Some(AgentStatus::Active) => (
            ReasonCode::AgentUserMismatch,
            "the agent's owner changed".into(),
        ),
    }
}

/// Why the consent check refused a reserve, from the consent as found.
pub fn consent_refusal(found: Option<&ConsentRecord>, now: u64) -> (ReasonCode, String) {
    match found {
        None => (
            ReasonCode::ConsentMissing,
            "consent is no longer recorded".into(),
        ),
        Some(c) if c.status == ConsentStatus::Revoked => {
            (ReasonCode::ConsentRevoked, "consent was revoked".into())
        }
        Some(c) if c.expires_at.is_some_and(|t| now >= t) => {
            (ReasonCode::ConsentExpired, "consent has expired".into())
        }
        Some(_) => (ReasonCode::ConsentRevoked, "consent changed".into()),
    }
}

pub(super) fn unavailable(op: Op, err: &StoreError) -> Value {
    let detail = match err {
        StoreError::Unavailable(_) => {
            "the store did not answer: the outcome is unknown; send the same request again, it is safe to retry"
        }
        StoreError::Malformed(_) => "a stored record is malformed",
    };
    refused(Some(op), ReasonCode::StoreUnavailable, detail)
}

pub(super) fn token_refusal(op: Op, err: &TokenError) -> Value {
    let detail = match err {
        TokenError::Expired => "verify the payment again",
        TokenError::UnknownKid(_) => "signed by a key this deployment does not know",
        TokenError::BadMac => "the token's MAC does not match",
        TokenError::Malformed(_) => "the token is malformed",
    };
    refused(Some(op), err.reason(), detail)
}

pub(super) fn state_refusal(op: Op, found: Option<&Hold>) -> Value {
    match found.map(|h| h.state) {
        None => refused(Some(op), ReasonCode::HoldNotFound, ""),
        Some(HoldState::Posted) => refused(Some(op), ReasonCode::HoldAlreadyPosted, ""),
        Some(HoldState::Voided) => refused(Some(op), ReasonCode::HoldAlreadyVoided, ""),
        Some(HoldState::Pending) => {
            refused(Some(op), ReasonCode::OpNotAllowed, "the hold is PENDING")
        }
        Some(HoldState::Sent) => refused(Some(op), ReasonCode::OpNotAllowed, "the hold is SENT"),
    }
}
