//! The stored records verify reads: policies, the agent registry, consents and sessions.
//!
//! Field names are the DynamoDB attribute names (camelCase), so the store adapter serializes
//! these types as they are.

use serde::{Deserialize, Serialize};

use crate::budget::{CounterKey, CounterRecord};

/// A policy as stored: its scope key, version and the JSON document (kept as text so a document
/// that fails to parse is a decision, `POLICY_INVALID`, not a store error). The text is shared,
/// so a snapshot of a large document is not copied again once read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRecord {
    /// Monotonic version; the ledger re-checks it at reserve time.
    pub version: u64,
    /// The policy document, JSON text.
    pub document: std::sync::Arc<str>,
}

/// Lifecycle of a registered agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgentStatus {
    /// May pay.
    Active,
    /// Temporarily may not pay.
    Suspended,
    /// Permanently may not pay.
    Revoked,
}

/// A registered agent (`AGENT#<agentId>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRecord {
    /// The agent's identifier, as AgentCore names it.
    pub agent_id: String,
    /// The wallet owner this agent acts for.
    pub user_id: String,
    /// ACTIVE, SUSPENDED or REVOKED.
    pub status: AgentStatus,
    /// Tools that may trigger payments; absent means any tool, empty means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<Vec<String>>,
}

/// State of a user's consent for one agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsentStatus {
    /// The user granted consent.
    Granted,
    /// The user withdrew consent.
    Revoked,
}

/// A user's consent for an agent to pay (`CONSENT#<userId>#<agentId>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentRecord {
    /// GRANTED or REVOKED.
    pub status: ConsentStatus,
    /// Epoch seconds, exclusive; absent means no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// Whether a session accepts new reserves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStatus {
    /// New reserves are possible.
    Open,
    /// The kill switch was pulled.
    Closed,
}

/// A payment session's budget (`pk=SESSION#<id>, sk=SESSION`). Amounts are micro-USD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    /// The AgentCore payment session id.
    pub payment_session_id: String,
    /// The wallet owner.
    pub user_id: String,
    /// The session's limit, at most AgentCore's `maxSpendAmount`.
    pub limit_micros: u64,
    /// Held by PENDING and SENT holds.
    pub reserved_micros: u64,
    /// Posted.
    pub settled_micros: u64,
    /// What a new reserve may take.
    pub available_micros: u64,
    /// Late settlements beyond the limit.
    #[serde(default)]
    pub overdraft_micros: u64,
    /// Epoch seconds, exclusive.
    pub expires_at: u64,
    /// OPEN or CLOSED.
    pub status: SessionStatus,
    /// The request that opened the session: its re-send is recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_request_id: Option<String>,
    /// The user's funding pool the limit was drawn from; closing returns the unspent part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_id: Option<String>,
    /// Given back to the pool (at close, and by holds voided after it); the limit shrank by it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub returned_micros: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A user's funding pool (`pk=POOL#<userId>#<poolId>`, `sk=POOL`): sessions opened on it take
/// their limit from `available`; closing a session gives back what it did not spend.
/// `available + drawn - returned == funded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolRecord {
    /// The owner.
    pub user_id: String,
    /// The pool's name, unique per user.
    pub pool_id: String,
    /// Everything put into the pool.
    pub funded_micros: u64,
    /// What a new session may still draw.
    pub available_micros: u64,
    /// The limits of the sessions opened on it.
    pub drawn_micros: u64,
    /// What sessions gave back.
    pub returned_micros: u64,
}

/// The policy versions a decision used, per scope; `None` marks a scope with no policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersions {
    /// `POLICY#global`.
    pub global: Option<u64>,
    /// `POLICY#user#<userId>`.
    pub user: Option<u64>,
    /// `POLICY#agent#<agentId>`.
    pub agent: Option<u64>,
}

/// Everything verify reads for one decision, fetched in one store request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifySnapshot {
    /// `POLICY#global`.
    pub global_policy: Option<PolicyRecord>,
    /// `POLICY#user#<userId>`.
    pub user_policy: Option<PolicyRecord>,
    /// `POLICY#agent#<agentId>`.
    pub agent_policy: Option<PolicyRecord>,
    /// `AGENT#<agentId>`.
    pub agent: Option<AgentRecord>,
    /// `CONSENT#<userId>#<agentId>`.
    pub consent: Option<ConsentRecord>,
    /// `SESSION#<id>` / `SESSION`.
    pub session: Option<SessionRecord>,
    /// Every budget counter asked for, with the item found (`None`: absent, nothing counted).
    pub counters: Vec<(CounterKey, Option<CounterRecord>)>,
}

impl VerifySnapshot {
    /// The versions of the policies present, absent scopes marked `None`.
    pub fn policy_versions(&self) -> PolicyVersions {
        PolicyVersions {
            global: self.global_policy.as_ref().map(|p| p.version),
            user: self.user_policy.as_ref().map(|p| p.version),
            agent: self.agent_policy.as_ref().map(|p| p.version),
        }
    }
}
