//! The port authorize signs through: AgentCore Payments' `ProcessPayment`, behind a trait so the
//! domain never imports the AWS SDK (adapter: `predebit-agentcore`).

use std::future::Future;

use serde_json::Value;

/// What the wallet is asked to sign: the selected requirement, for one payment attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct SignRequest {
    /// The AgentCore payment session.
    pub payment_session_id: String,
    /// The wallet's payment instrument.
    pub payment_instrument_id: String,
    /// The wallet owner.
    pub user_id: String,
    /// The agent, for AgentCore's observability.
    pub agent_name: String,
    /// The paymentId: AgentCore dedupes the same attempt on it.
    pub client_token: String,
    /// 1 or 2.
    pub x402_version: u64,
    /// The selected `accepts` entry, as the merchant sent it.
    pub requirement: Value,
    /// The Permit2 allowance limit AgentCore takes for the `upto` scheme (which predebit does not
    /// approve yet): always `None` for `exact`, which AgentCore's model refuses it for.
    pub permit2_allowance_limit: Option<String>,
}

/// What the wallet signed: the x402 scheme payload (`{signature, authorization}` or
/// `{signature, permit2Authorization}`).
#[derive(Clone, Debug, PartialEq)]
pub struct Signed {
    /// The scheme payload, as returned.
    pub payload: Value,
}

/// Why nothing usable was signed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The service refused (validation, budget, access, conflict): nothing was signed.
    #[error("the signer refused: {0}")]
    Refused(&'static str),
    /// No answer in time, or a server error: the outcome is unknown; the same clientToken again
    /// returns the same signature if there was one.
    #[error("the signer did not answer: {0}")]
    Unavailable(&'static str),
}

/// Signs one approved payment.
pub trait Signer {
    /// `ProcessPayment` with `clientToken = request.client_token`.
    fn sign(&self, request: &SignRequest)
        -> impl Future<Output = Result<Signed, SignError>> + Send;
}
