//! The ports the domain needs from storage. Adapters: `memory` (tests, benchmarks) and
//! `predebit-store` (DynamoDB).

use std::future::Future;

use crate::budget::CounterKey;
use crate::records::VerifySnapshot;

/// The keys of the items one decision reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyKeys {
    /// The wallet owner.
    pub user_id: String,
    /// The agent asking to pay.
    pub agent_id: String,
    /// The AgentCore payment session.
    pub payment_session_id: String,
    /// The budget counters to read with them (the windows of the budgets this container knows
    /// for the three scopes).
    pub counters: Vec<CounterKey>,
}

/// Why the store could not answer. Verify fails closed on any of them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttled, timed out, or unreachable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An item exists but cannot be read as the expected record.
    #[error("stored item is malformed: {0}")]
    Malformed(String),
}

/// The one read verify makes: every record for a decision, strongly consistent, one request.
pub trait VerifyReader {
    /// Reads the three policy scopes, the agent, the consent, the session and the counters.
    fn read_for_verify(
        &self,
        keys: &VerifyKeys,
    ) -> impl Future<Output = Result<VerifySnapshot, StoreError>> + Send;
}
