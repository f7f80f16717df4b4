//! Seed files: policies, agents, consents and sessions in one JSON document, applied with the
//! same writes the CLI makes (`predebit seed FILE`).

use predebit_core::money::parse_usd;
use predebit_core::records::{
    AgentRecord, AgentStatus, ConsentRecord, ConsentStatus, SessionRecord, SessionStatus,
};
use serde::Deserialize;
use serde_json::Value;

use crate::dynamodb::{DynamoStore, PolicyScope};
use crate::error::AdminError;

/// A seed document.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedFile {
    /// Policies by scope.
    #[serde(default)]
    pub policies: Vec<SeedPolicy>,
    /// Registered agents.
    #[serde(default)]
    pub agents: Vec<AgentRecord>,
    /// Consents.
    #[serde(default)]
    pub consents: Vec<SeedConsent>,
    /// Sessions to open.
    #[serde(default)]
    pub sessions: Vec<SeedSession>,
}

/// One policy: a scope and its document (a JSON object, or text stored as given).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedPolicy {
    /// `global`, `user` or `agent`.
    pub scope: String,
    /// For `user` scope.
    pub user_id: Option<String>,
    /// For `agent` scope.
    pub agent_id: Option<String>,
    /// The policy document.
    pub document: Value,
}

/// One consent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedConsent {
    /// The wallet owner.
    pub user_id: String,
    /// The agent.
    pub agent_id: String,
    /// GRANTED or REVOKED.
    pub status: ConsentStatus,
    /// Epoch seconds, exclusive.
    pub expires_at: Option<u64>,
}

/// One session.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedSession {
    /// The AgentCore payment session id.
    pub payment_session_id: String,
    /// The wallet owner.
    pub user_id: String,
    /// USD string, e.g. "25.00".
    pub limit: String,
    /// Epoch seconds, exclusive.
    pub expires_at: u64,
    /// OPEN (default) or CLOSED.
    pub status: Option<SessionStatus>,
}

impl SeedPolicy {
    /// The scope as a store key.
    pub fn scope(&self) -> Result<PolicyScope, AdminError> {
        policy_scope(
            &self.scope,
            self.user_id.as_deref(),
            self.agent_id.as_deref(),
        )
    }

    /// The document text as stored.
    pub fn document_text(&self) -> String {
        match &self.document {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// Builds a scope from its name and the id it needs.
pub fn policy_scope(
    scope: &str,
    user_id: Option<&str>,
    agent_id: Option<&str>,
) -> Result<PolicyScope, AdminError> {
    match (scope, user_id, agent_id) {
        ("global", None, None) => Ok(PolicyScope::Global),
        ("user", Some(u), None) => Ok(PolicyScope::User(u.to_string())),
        ("agent", None, Some(a)) => Ok(PolicyScope::Agent(a.to_string())),
        _ => Err(AdminError::Invalid(format!(
            "policy scope '{scope}': use global (no ids), user with userId, or agent with agentId"
        ))),
    }
}

impl SeedSession {
    /// The session's opening balance row.
    pub fn record(&self) -> Result<SessionRecord, AdminError> {
        let limit_micros = parse_usd(&self.limit).map_err(|e| {
            AdminError::Invalid(format!("session {} limit: {e}", self.payment_session_id))
        })?;
        Ok(new_session(
            &self.payment_session_id,
            &self.user_id,
            limit_micros,
            self.expires_at,
            self.status,
        ))
    }
}

/// A fresh session: everything available.
pub fn new_session(
    payment_session_id: &str,
    user_id: &str,
    limit_micros: u64,
    expires_at: u64,
    status: Option<SessionStatus>,
) -> SessionRecord {
    SessionRecord {
        payment_session_id: payment_session_id.to_string(),
        user_id: user_id.to_string(),
        limit_micros,
        reserved_micros: 0,
        settled_micros: 0,
        available_micros: limit_micros,
        overdraft_micros: 0,
        expires_at,
        status: status.unwrap_or(SessionStatus::Open),
        open_request_id: None,
        pool_id: None,
        returned_micros: 0,
    }
}

/// What a seed wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Policies written.
    pub policies: usize,
    /// Agents written.
    pub agents: usize,
    /// Consents written.
    pub consents: usize,
    /// Sessions opened (or already open with the same content).
    pub sessions: usize,
}

/// Parses a seed document.
pub fn parse(text: &str) -> Result<SeedFile, AdminError> {
    serde_json::from_str(text).map_err(|e| AdminError::Invalid(format!("seed file: {e}")))
}

/// Applies a seed: every record is validated before anything is written.
pub async fn apply(store: &DynamoStore, seed: &SeedFile) -> Result<SeedReport, AdminError> {
    let scopes = seed
        .policies
        .iter()
        .map(|p| p.scope())
        .collect::<Result<Vec<_>, _>>()?;
    let sessions = seed
        .sessions
        .iter()
        .map(|s| s.record())
        .collect::<Result<Vec<_>, _>>()?;
    for (policy, scope) in seed.policies.iter().zip(&scopes) {
        store.put_policy(scope, &policy.document_text()).await?;
    }
    for agent in &seed.agents {
        store.put_agent(agent).await?;
    }
    for consent in &seed.consents {
        let record = ConsentRecord {
            status: consent.status,
            expires_at: consent.expires_at,
        };
        store
            .put_consent(&consent.user_id, &consent.agent_id, &record)
            .await?;
    }
    for session in &sessions {
        store.open_session(session).await?;
    }
    Ok(SeedReport {
        policies: scopes.len(),
        agents: seed.agents.len(),
        consents: seed.consents.len(),
        sessions: sessions.len(),
    })
}

/// An agent record with the given status (for `predebit agent suspend|revoke`).
pub fn with_status(mut agent: AgentRecord, status: AgentStatus) -> AgentRecord {
    agent.status = status;
    agent
}
