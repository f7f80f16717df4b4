//! The ledger: two-phase holds on a session's budget (TigerBeetle's pending/post/void transfers
//! carried onto conditional writes), plus the in-doubt SENT state signed authorizations need.
//!
//! This module holds the operations' semantics: event parsing, token checks, the port the store
//! implements, and how each store outcome becomes a response. The store makes every change in one
//! conditional request and reports what it found when a condition failed.

use std::future::Future;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::address::normalize_address;
use crate::hold::{
    fingerprint, open_shard, sent_expires_at, Hold, HoldState, SettlementRecord, SignedRecord,
    DEFAULT_PENDING_WINDOW_SECONDS,
};
use crate::keys::KeyRing;
use crate::money::{format_usd, parse_usd};
use crate::reason::ReasonCode;
use crate::records::{
    AgentRecord, AgentStatus, ConsentRecord, ConsentStatus, PolicyVersions, SessionRecord,
    SessionStatus,
};
use crate::store::StoreError;
use crate::token::{self, token_digest, TokenClaims, TokenError};
use crate::verify::EVENT_VERSION;
use crate::x402::{parse_atomic_amount, parse_settlement};

/// A ledger operation (the event's `op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Op {
    /// Admin: open a session's budget.
    OpenSession,
    /// Admin: the kill switch.
    CloseSession,
    /// Agent: hold an approved amount.
    Reserve,
    /// Agent: the payment was signed with these terms.
    MarkSent,
    /// Agent: the merchant's settlement response.
    Commit,
    /// Agent: a payment never sent.
    Release,
    /// Schedule: void holds past their window.
    Expire,
    /// Read a session and its holds.
    GetSession,
    /// Read one hold.
    GetHold,
}

impl Op {
    /// Every op.
    pub const ALL: [Op; 9] = [
        Op::OpenSession,
        Op::CloseSession,
        Op::Reserve,
        Op::MarkSent,
        Op::Commit,
        Op::Release,
        Op::Expire,
        Op::GetSession,
        Op::GetHold,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::OpenSession => "openSession",
            Op::CloseSession => "closeSession",
            Op::Reserve => "reserve",
            Op::MarkSent => "markSent",
            Op::Commit => "commit",
            Op::Release => "release",
            Op::Expire => "expire",
            Op::GetSession => "getSession",
            Op::GetHold => "getHold",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

/// The ops one deployment serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedOps(Vec<Op>);

impl AllowedOps {
    /// `agent` (reserve, markSent, commit, release, getSession, getHold), `admin` (openSession,
    /// closeSession, getSession), `schedule` (expire), `all`, or a comma-separated list of ops.
    pub fn parse(setting: &str) -> Result<Self, String> {
        let ops = match setting.trim() {
            "agent" => vec![
                Op::Reserve,
                Op::MarkSent,
                Op::Commit,
                Op::Release,
                Op::GetSession,
                Op::GetHold,
            ],
            "admin" => vec![Op::OpenSession, Op::CloseSession, Op::GetSession],
            "schedule" => vec![Op::Expire],
            "all" => Op::ALL.to_vec(),
            list => list
                .split(',')
                .map(|name| {
                    Op::parse(name.trim()).ok_or_else(|| {
                        format!(
                            "unknown ledger op '{}'; use agent, admin, schedule, all or op names",
                            name.trim()
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(Self(ops))
    }

    /// Whether `op` is served.
    pub fn allows(&self, op: Op) -> bool {
        self.0.contains(&op)
    }
}

/// Why `release` is called.
pub const RELEASE_REASONS: [&str; 4] = [
    "SIGNING_FAILED",
    "NOT_SENT",
    "SIGNED_PAYLOAD_MISMATCH",
    "CANCELLED",
];
/// The void reason `expire` records.
pub const EXPIRED: &str = "EXPIRED";

/// What `reserve` asks the store to do in one transaction.
#[derive(Clone, Debug)]
pub struct ReserveRequest {
    /// The new PENDING hold, sealed.
    pub hold: Hold,
    /// The session must belong to this user.
    pub user_id: String,
    /// Check the consent GRANTED and unexpired.
    pub consent_required: bool,
    /// Each version must be unchanged; `None` scopes must still be absent.
    pub policy_versions: PolicyVersions,
    /// The consent key needs the user and agent.
    pub agent_id: String,
    /// Epoch seconds.
    pub now: u64,
}

/// How `reserve` came out in the store.
#[derive(Clone, Debug)]
pub enum ReserveResult {
    /// The hold is in place.
    Held,
    /// A hold with this paymentId already exists (as found).
    Existing(Box<Hold>),
    /// A condition failed; nothing was written.
    Refused(ReasonCode, String),
    /// Conflicting transactions kept cancelling this one; nothing was written.
    Conflict,
}

/// How a hold transition came out in the store.
#[derive(Clone, Debug)]
// One value per store request; boxing the found hold would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Transition {
    /// Applied; the hold after the change when the store knows it without another read.
    Done(Option<Box<Hold>>),
    /// The hold was not in a state the change applies to; the hold as found, if any.
    NotApplied(Option<Hold>),
    /// Conflicting transactions kept cancelling this one.
    Conflict,
}

/// How opening a session came out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenResult {
    /// Created.
    Created(SessionRecord),
    /// Already open with the same terms.
    Same(SessionRecord),
    /// A session with this id exists with other terms; nothing changed.
    Different(SessionRecord),
}

/// The ledger's port: each method is one request on the happy path.
pub trait LedgerStore {
    /// One transaction: put the hold if absent; take the amount from the session if available,
    /// open, unexpired and the user's; check agent, consent and policy versions.
    fn reserve(
        &self,
        req: &ReserveRequest,
    ) -> impl Future<Output = Result<ReserveResult, StoreError>> + Send;
    /// PENDING -> SENT when the signed terms equal the hold's; the hold's expiry moves.
    fn mark_sent(
        &self,
        session_id: &str,
        payment_id: &str,
        signed: &SignedRecord,
        hold_expires_at: u64,
        now: u64,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// PENDING or SENT -> POSTED: reserved to settled. `amount_micros` is the caller's copy of
    /// the hold's amount: with it the change is one request (the condition checks it); without
    /// it the store reads the hold first.
    fn post(
        &self,
        session_id: &str,
        payment_id: &str,
        amount_micros: Option<u64>,
        settlement: &SettlementRecord,
        now: u64,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// VOIDED -> POSTED (`late`): settled grows, taken from available where it can be and from
    /// overdraft for the rest.
    fn post_late(
        &self,
        hold: &Hold,
        settlement: &SettlementRecord,
        now: u64,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// A failed settlement on a SENT (or PENDING) hold: recorded; the hold stays open.
    fn record_failed_settlement(
        &self,
        session_id: &str,
        payment_id: &str,
        error: &str,
        now: u64,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// PENDING -> VOIDED: reserved back to available (`amount_micros` as for [`Self::post`]).
    fn release(
        &self,
        session_id: &str,
        payment_id: &str,
        amount_micros: Option<u64>,
        reason: &str,
        now: u64,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// Open holds whose expiry has passed, from the open-holds index.
    fn due_holds(
        &self,
        now: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Hold>, StoreError>> + Send;
    /// Voids `hold` if it is still in the state it was found in and due.
    fn expire_hold(
        &self,
        hold: &Hold,
        now: u64,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// A session and its holds, in one query.
    fn read_session(
        &self,
        session_id: &str,
    ) -> impl Future<Output = Result<Option<(SessionRecord, Vec<Hold>)>, StoreError>> + Send;
    /// One hold.
    fn read_hold(
        &self,
        session_id: &str,
        payment_id: &str,
    ) -> impl Future<Output = Result<Option<Hold>, StoreError>> + Send;
    /// Creates a session if absent.
    fn open_session(
        &self,
        session: &SessionRecord,
    ) -> impl Future<Output = Result<OpenResult, StoreError>> + Send;
    /// Marks an OPEN session CLOSED. `None` when it does not exist; `(session, true)` when it was
    /// already closed (left as it was: the first reason stands).
    fn close_session(
        &self,
        session_id: &str,
        reason: &str,
        now: u64,
    ) -> impl Future<Output = Result<Option<(SessionRecord, bool)>, StoreError>> + Send;
}

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

/// Ledger settings read once at start-up.
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    /// The ops this deployment serves.
    pub allowed: AllowedOps,
    /// How long a PENDING hold may wait to be marked sent.
    pub pending_window_seconds: u64,
    /// How many due holds one `expire` run handles.
    pub expire_batch: usize,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            allowed: AllowedOps(Op::ALL.to_vec()),
            pending_window_seconds: DEFAULT_PENDING_WINDOW_SECONDS,
            expire_batch: 100,
        }
    }
}

/// A malformed event: names the field, never its value.
fn invalid(op: Option<Op>, field: &str, problem: &str) -> Value {
    refused(
        op,
        ReasonCode::InvalidRequest,
        &format!("{field}: {problem}"),
    )
}

fn refused(op: Option<Op>, reason: ReasonCode, detail: &str) -> Value {
    let message = if detail.is_empty() {
        reason.message().to_string()
    } else {
        format!("{} ({detail})", reason.message())
    };
    json!({
        "version": EVENT_VERSION,
        "op": op.map(Op::as_str),
        "ok": false,
        "reasonCode": reason,
        "message": message,
    })
}

/// The caller-facing view of a session's balances.
pub fn session_view(s: &SessionRecord) -> Value {
    json!({
        "paymentSessionId": s.payment_session_id,
        "status": s.status,
        "expiresAt": s.expires_at,
        "limit": format_usd(s.limit_micros),
        "reserved": format_usd(s.reserved_micros),
        "settled": format_usd(s.settled_micros),
        "available": format_usd(s.available_micros),
        "overdraft": format_usd(s.overdraft_micros),
        "limitMicros": s.limit_micros,
        "reservedMicros": s.reserved_micros,
        "settledMicros": s.settled_micros,
        "availableMicros": s.available_micros,
        "overdraftMicros": s.overdraft_micros,
    })
}

/// The caller-facing view of a hold (no MAC, no token digest).
pub fn hold_view(h: &Hold) -> Value {
    let mut v = json!({
        "paymentId": h.payment_id,
        "paymentSessionId": h.payment_session_id,
        "state": h.state,
        "amount": format_usd(h.amount_micros),
        "amountMicros": h.amount_micros,
        "amountAtomic": h.amount_atomic,
        "network": h.network,
        "asset": h.asset,
        "payTo": h.pay_to,
        "auditHash": h.audit_hash,
        "createdAt": h.created_at,
        "expiresAt": h.hold_expires_at,
        "late": h.late,
    });
    let fields = v.as_object_mut().expect("object");
    if let Some(s) = &h.signed {
        fields.insert(
            "signed".into(),
            serde_json::to_value(s).expect("serializes"),
        );
    }
    if let Some(s) = &h.settlement {
        fields.insert(
            "settlement".into(),
            serde_json::to_value(s).expect("serializes"),
        );
    }
    if let Some(r) = &h.void_reason {
        fields.insert("voidReason".into(), json!(r));
    }
    if h.settlement_failures > 0 {
        fields.insert("settlementFailures".into(), json!(h.settlement_failures));
    }
    v
}

fn ok(op: Op, replayed: bool, hold: Option<&Hold>, session: Option<&SessionRecord>) -> Value {
    let mut v =
        json!({ "version": EVENT_VERSION, "op": op.as_str(), "ok": true, "replayed": replayed });
    let fields = v.as_object_mut().expect("object");
    if let Some(h) = hold {
        fields.insert("hold".into(), hold_view(h));
    }
    if let Some(s) = session {
        fields.insert("session".into(), session_view(s));
    }
    v
}

struct Fields<'a> {
    op: Op,
    obj: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn string(&self, field: &str) -> Result<String, Value> {
        match self.obj.get(field) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(invalid(Some(self.op), field, "must not be empty")),
            Some(_) => Err(invalid(Some(self.op), field, "must be a string")),
            None => Err(invalid(Some(self.op), field, "is required")),
        }
    }

    fn id(&self, field: &str) -> Result<String, Value> {
        let v = self.string(field)?;
        if v.len() > 256 || !v.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
            return Err(invalid(
                Some(self.op),
                field,
                "must be printable ASCII without spaces or '#'",
            ));
        }
        Ok(v)
    }

    fn payment_id(&self) -> Result<String, Value> {
        let v = self.string("paymentId")?;
        if v.len() != 64 || !v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid(
                Some(self.op),
                "paymentId",
                "must be 64 lowercase hex characters",
            ));
        }
        Ok(v)
    }

    fn only(&self, allowed: &[&str]) -> Result<(), Value> {
        match self
            .obj
            .keys()
            .find(|k| !["version", "op"].contains(&k.as_str()) && !allowed.contains(&k.as_str()))
        {
            Some(k) => Err(invalid(
                Some(self.op),
                k,
                "is not a known field for this op",
            )),
            None => Ok(()),
        }
    }
}

/// The ledger service over a store. Handlers translate events to [`Ledger::handle`] and back.
pub struct Ledger<S> {
    store: S,
    config: LedgerConfig,
}

impl<S: LedgerStore + Sync> Ledger<S> {
    /// A ledger over `store`.
    pub fn new(store: S, config: LedgerConfig) -> Self {
        Self { store, config }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The op an event names, if it names a known one (so the handler can pick keys).
    pub fn op_of(event: &Value) -> Option<Op> {
        event.get("op").and_then(Value::as_str).and_then(Op::parse)
    }

    /// Handles one event. Never fails: malformed input is a refusal naming the field; a store
    /// failure is `STORE_UNAVAILABLE` with nothing half-written (every change is one request).
    pub async fn handle(&self, event: &Value, keys: &KeyRing, now: u64) -> Value {
        let Some(obj) = event.as_object() else {
            return invalid(None, "event", "must be a JSON object");
        };
        match obj.get("version") {
            Some(Value::String(v)) if v == EVENT_VERSION => {}
            _ => return invalid(None, "version", "must be the string \"1\""),
        }
        let op = match obj.get("op") {
            Some(Value::String(name)) => match Op::parse(name) {
                Some(op) => op,
                None => return invalid(None, "op", "is not a ledger operation"),
            },
            _ => return invalid(None, "op", "is required (a string)"),
        };
        if !self.config.allowed.allows(op) {
            return refused(Some(op), ReasonCode::OpNotAllowed, op.as_str());
        }
        let fields = Fields { op, obj };
        let result = match op {
            Op::OpenSession => self.open_session(&fields, now).await,
            Op::CloseSession => self.close_session(&fields, now).await,
            Op::Reserve => self.reserve(&fields, keys, now).await,
            Op::MarkSent => self.mark_sent(&fields, now).await,
            Op::Commit => self.commit(&fields, now).await,
            Op::Release => self.release(&fields, now).await,
            Op::Expire => self.expire(&fields, now).await,
            Op::GetSession => self.get_session(&fields).await,
            Op::GetHold => self.get_hold(&fields).await,
        };
        result.unwrap_or_else(|refusal| refusal)
    }

    async fn open_session(&self, f: &Fields<'_>, now: u64) -> Result<Value, Value> {
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
        };
        match self
            .store
            .open_session(&session)
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

    async fn close_session(&self, f: &Fields<'_>, now: u64) -> Result<Value, Value> {
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
            .close_session(&session_id, &reason, now)
            .await
            .map_err(|e| unavailable(f.op, &e))?
        {
            Some((s, already_closed)) => Ok(ok(f.op, already_closed, None, Some(&s))),
            None => Err(refused(Some(f.op), ReasonCode::SessionUnknown, "")),
        }
    }

    async fn reserve(&self, f: &Fields<'_>, keys: &KeyRing, now: u64) -> Result<Value, Value> {
        f.only(&["decisionToken", "paymentId", "paymentSessionId"])?;
        let token_str = f.string("decisionToken")?;
        let claims = token::verify(&token_str, keys, now).map_err(|e| token_refusal(f.op, &e))?;
        // The caller may name the payment it means; a token for another payment is refused.
        for (field, expected) in [
            ("paymentId", &claims.payment_id),
            ("paymentSessionId", &claims.payment_session_id),
        ] {
            if let Some(v) = f.obj.get(field) {
                if v.as_str() != Some(expected.as_str()) {
                    return Err(refused(
                        Some(f.op),
                        ReasonCode::TokenInvalid,
                        "the token was issued for another payment",
                    ));
                }
            }
        }
        let hold = new_hold(
            &claims,
            &token_str,
            keys,
            now,
            self.config.pending_window_seconds,
        );
        let request = ReserveRequest {
            hold: hold.clone(),
            user_id: claims.user_id.clone(),
            consent_required: claims.consent_required,
            policy_versions: claims.policy_versions,
            agent_id: claims.agent_id.clone(),
            now,
        };
        match self
            .store
            .reserve(&request)
            .await
            .map_err(|e| unavailable(f.op, &e))?
        {
            ReserveResult::Held => Ok(ok(f.op, false, Some(&hold), None)),
            ReserveResult::Existing(existing) if existing.fingerprint == hold.fingerprint => {
                Ok(ok(f.op, true, Some(&existing), None))
            }
            ReserveResult::Existing(_) => Err(refused(
                Some(f.op),
                ReasonCode::IdempotencyConflict,
                "this paymentId holds a different payment",
            )),
            ReserveResult::Refused(reason, detail) => Err(refused(Some(f.op), reason, &detail)),
            ReserveResult::Conflict => Err(refused(Some(f.op), ReasonCode::StoreConflict, "")),
        }
    }

    async fn mark_sent(&self, f: &Fields<'_>, now: u64) -> Result<Value, Value> {
        f.only(&["paymentSessionId", "paymentId", "signed"])?;
        let session_id = f.id("paymentSessionId")?;
        let payment_id = f.payment_id()?;
        let signed = parse_signed(f)?;
        let expires_at = sent_expires_at(signed.valid_before, now);
        let outcome = self
            .store
            .mark_sent(&session_id, &payment_id, &signed, expires_at, now)
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
                HoldState::Pending => Err(refused(
                    Some(f.op),
                    ReasonCode::SignedPayloadMismatch,
                    "the signed terms differ from the approved payment; the hold is unchanged",
                )),
            },
        }
    }

    async fn commit(&self, f: &Fields<'_>, now: u64) -> Result<Value, Value> {
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

    async fn release(&self, f: &Fields<'_>, now: u64) -> Result<Value, Value> {
        f.only(&["paymentSessionId", "paymentId", "reason", "amountMicros"])?;
        let amount_hint = amount_hint(f)?;
        let session_id = f.id("paymentSessionId")?;
        let payment_id = f.payment_id()?;
        let reason = f.string("reason")?;
        if !RELEASE_REASONS.contains(&reason.as_str()) {
            return Err(invalid(
                Some(f.op),
                "reason",
                "must be SIGNING_FAILED, NOT_SENT, SIGNED_PAYLOAD_MISMATCH or CANCELLED",
            ));
        }
        match self.store.release(&session_id, &payment_id, amount_hint, &reason, now).await.map_err(|e| unavailable(f.op, &e))? {
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

    async fn expire(&self, f: &Fields<'_>, now: u64) -> Result<Value, Value> {
        f.only(&[])?;
        let due = self
            .store
            .due_holds(now, self.config.expire_batch)
            .await
            .map_err(|e| unavailable(f.op, &e))?;
        let (mut pending, mut sent, mut skipped, mut failed) = (0u64, 0u64, 0u64, 0u64);
        for hold in &due {
            match self.store.expire_hold(hold, now).await {
                Ok(Transition::Done(..)) if hold.state == HoldState::Pending => pending += 1,
                Ok(Transition::Done(..)) => sent += 1,
                Ok(Transition::NotApplied(_)) => skipped += 1,
                Ok(Transition::Conflict) | Err(_) => failed += 1,
            }
        }
        Ok(json!({
            "version": EVENT_VERSION, "op": f.op.as_str(), "ok": true, "replayed": false,
            "expired": { "pending": pending, "sent": sent },
            "skipped": skipped, "failed": failed, "due": due.len(),
        }))
    }

    async fn get_session(&self, f: &Fields<'_>) -> Result<Value, Value> {
        f.only(&["paymentSessionId"])?;
        let session_id = f.id("paymentSessionId")?;
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

    async fn get_hold(&self, f: &Fields<'_>) -> Result<Value, Value> {
        f.only(&["paymentSessionId", "paymentId"])?;
        let session_id = f.id("paymentSessionId")?;
        let payment_id = f.payment_id()?;
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

/// The caller's copy of the hold's amount (from the reserve response): lets commit and release
/// change the hold and the session in one request. The store's condition checks it, so a wrong
/// value changes nothing.
fn amount_hint(f: &Fields<'_>) -> Result<Option<u64>, Value> {
    match f.obj.get("amountMicros") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(Some(f.op), "amountMicros", "must be a non-negative integer")),
    }
}

/// A transition's response: the hold when the store returned it, else what the op set.
fn done(op: Op, hold: Option<Box<Hold>>, payment_id: &str, state: HoldState) -> Value {
    match hold {
        Some(h) => ok(op, false, Some(&h), None),
        None => {
            let mut v = ok(op, false, None, None);
            v["hold"] = json!({ "paymentId": payment_id, "state": state });
            v
        }
    }
}

fn unavailable(op: Op, err: &StoreError) -> Value {
    let detail = match err {
        StoreError::Unavailable(_) => "the store did not answer; nothing was changed, retry",
        StoreError::Malformed(_) => "a stored record is malformed",
    };
    refused(Some(op), ReasonCode::StoreUnavailable, detail)
}

fn token_refusal(op: Op, err: &TokenError) -> Value {
    let detail = match err {
        TokenError::Expired => "verify the payment again",
        TokenError::UnknownKid(_) => "signed by a key this deployment does not know",
        TokenError::BadMac => "the token's MAC does not match",
        TokenError::Malformed(_) => "the token is malformed",
    };
    refused(Some(op), err.reason(), detail)
}

fn state_refusal(op: Op, found: Option<&Hold>) -> Value {
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

fn same_signed(a: &SignedRecord, b: &SignedRecord) -> bool {
    a.network == b.network
        && normalize_address(&a.network, &a.to) == normalize_address(&b.network, &b.to)
        && a.value == b.value
        && a.valid_before == b.valid_before
}

fn parse_signed(f: &Fields<'_>) -> Result<SignedRecord, Value> {
    let op = Some(f.op);
    let Some(Value::Object(s)) = f.obj.get("signed") else {
        return Err(invalid(
            op,
            "signed",
            "must be an object {to, value, network, asset?, validBefore}",
        ));
    };
    if let Some(k) = s
        .keys()
        .find(|k| !["to", "value", "network", "asset", "validBefore"].contains(&k.as_str()))
    {
        return Err(invalid(op, &format!("signed.{k}"), "is not a known field"));
    }
    let text = |name: &str| -> Result<String, Value> {
        match s.get(name) {
            Some(Value::String(v)) if !v.is_empty() && v.len() <= 128 => Ok(v.clone()),
            Some(_) => Err(invalid(
                op,
                &format!("signed.{name}"),
                "must be a non-empty string",
            )),
            None => Err(invalid(op, &format!("signed.{name}"), "is required")),
        }
    };
    // A v1 network name ("base") names the same network as its CAIP-2 id.
    let network = text("network")?;
    let network = crate::network::v1_network_to_caip2(&network).map_or(network, str::to_string);
    let to = text("to")?;
    let value = parse_atomic_amount(&text("value")?).map_err(|p| invalid(op, "signed.value", p))?;
    let asset = match s.get("asset") {
        None | Some(Value::Null) => None,
        Some(_) => Some(normalize_address(&network, &text("asset")?)),
    };
    let valid_before = match s.get("validBefore") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(v)) => v.parse::<u64>().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        invalid(
            op,
            "signed.validBefore",
            "must be epoch seconds (integer or decimal string)",
        )
    })?;
    Ok(SignedRecord {
        to: normalize_address(&network, &to),
        value,
        network,
        asset,
        valid_before,
    })
}

/// The PENDING hold a verified token authorises.
pub fn new_hold(
    claims: &TokenClaims,
    token: &str,
    keys: &KeyRing,
    now: u64,
    pending_window: u64,
) -> Hold {
    let mut hold = Hold {
        payment_id: claims.payment_id.clone(),
        payment_session_id: claims.payment_session_id.clone(),
        agent_id: claims.agent_id.clone(),
        state: HoldState::Pending,
        amount_micros: claims.amount_micros,
        amount_atomic: claims.amount_atomic.clone(),
        network: claims.network.clone(),
        asset: claims.asset.clone(),
        pay_to: claims.pay_to.clone(),
        resource_host: claims.resource_host.clone(),
        max_timeout_seconds: claims.max_timeout_seconds,
        fingerprint: fingerprint(
            &claims.payment_session_id,
            &claims.payment_id,
            &claims.network,
            &claims.asset,
            &claims.pay_to,
            &claims.amount_atomic,
            claims.amount_micros,
        ),
        audit_hash: claims.audit_hash.clone(),
        token_digest: token_digest(token),
        verification_id: claims.verification_id.clone(),
        created_at: now,
        hold_expires_at: now.saturating_add(pending_window),
        open_shard: Some(open_shard(&claims.payment_id)),
        signed: None,
        sent_at: None,
        settlement: None,
        posted_at: None,
        late: false,
        voided_at: None,
        void_reason: None,
        settlement_failures: 0,
        last_settlement_error: None,
        mac_kid: String::new(),
        mac: String::new(),
    };
    hold.seal(keys);
    hold
}
