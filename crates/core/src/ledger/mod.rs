//! The ledger: two-phase holds on a session's budget (TigerBeetle's pending/post/void transfers
//! carried onto conditional writes), plus the in-doubt SENT state signed authorizations need.
//!
//! The module follows the flow: [`events`] reads an event's fields, the ops (`reserve`,
//! `mark_sent`, `commit`, `release`, `expire`, `sessions`, `reads`) hold each operation's rules,
//! [`port`] is what the store implements (every change one conditional request), [`refusals`]
//! turns what a failed condition found into a reason, and [`responses`] shapes the answers.

mod commit;
mod events;
mod expire;
mod mark_sent;
#[cfg(test)]
mod no_echo;
pub mod port;
mod reads;
pub mod refusals;
mod release;
mod reserve;
pub mod responses;
mod sessions;

use serde::Serialize;
use serde_json::Value;

use crate::hold::DEFAULT_PENDING_WINDOW_SECONDS;
use crate::keys::KeyRing;
use crate::payment_session::{NoPaymentSessions, PaymentSessions};
use crate::reason::ReasonCode;
use crate::verify::EVENT_VERSION;

pub use port::{
    DueHolds, LedgerStore, OpenResult, ReserveRequest, ReserveResult, Transition, Write,
};
pub use refusals::{agent_refusal, consent_refusal, session_refusal};
pub use reserve::new_hold;
pub use responses::{hold_view, session_view};

use events::Fields;
use responses::{invalid, refused};

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

    /// Whether getSession needs a hold token of the session: everywhere but a deployment that
    /// opens sessions (the admin one, or `all`), which reads any session.
    pub fn is_agent_facing(&self) -> bool {
        !self.allows(Op::OpenSession)
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

/// The ledger service over a store. Handlers translate events to [`Ledger::handle`] and back.
/// With a payment manager (`P`), openSession creates or reads the AgentCore payment session
/// it budgets; without one, openSession takes the caller's word for it.
pub struct Ledger<S, P = NoPaymentSessions> {
    store: S,
    config: LedgerConfig,
    payment_sessions: Option<P>,
}

impl<S: LedgerStore + Sync> Ledger<S> {
    /// A ledger over `store`, with no payment manager.
    pub fn new(store: S, config: LedgerConfig) -> Self {
        Self {
            store,
            config,
            payment_sessions: None,
        }
    }
}

impl<S, P> Ledger<S, P> {
    /// The same ledger, opening sessions through `payment_sessions` when given.
    pub fn with_payment_sessions<Q>(self, payment_sessions: Option<Q>) -> Ledger<S, Q> {
        Ledger {
            store: self.store,
            config: self.config,
            payment_sessions,
        }
    }
}

impl<S: LedgerStore + Sync, P: PaymentSessions + Sync> Ledger<S, P> {
    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The op an event names, if it names a known one (so the handler can pick keys).
    pub fn op_of(event: &Value) -> Option<Op> {
        event.get("op").and_then(Value::as_str).and_then(Op::parse)
    }

    /// Handles one event. Never fails: malformed input is a refusal naming the field; a store
    /// failure is `STORE_UNAVAILABLE` with nothing half-written (every change is one request),
    /// and the same event sent again under the same `request_id` is recognised by the store.
    pub async fn handle(&self, event: &Value, keys: &KeyRing, now: u64, request_id: &str) -> Value {
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
        let fields = Fields {
            op,
            request_id,
            obj,
        };
        let result = match op {
            Op::OpenSession => self.open_session(&fields, now).await,
            Op::CloseSession => self.close_session(&fields, now).await,
            Op::Reserve => self.reserve(&fields, keys, now).await,
            Op::MarkSent => self.mark_sent(&fields, keys, now).await,
            Op::Commit => self.commit(&fields, keys, now).await,
            Op::Release => self.release(&fields, keys, now).await,
            Op::Expire => self.expire(&fields, now).await,
            Op::GetSession => self.get_session(&fields, keys).await,
            Op::GetHold => self.get_hold(&fields, keys).await,
        };
        result.unwrap_or_else(|refusal| refusal)
    }
}
