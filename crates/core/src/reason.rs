//! The one enum of reason codes: verify, ledger and plugin codes, stable SCREAMING_SNAKE names.

use serde::{Deserialize, Serialize};

/// Why a decision or a ledger operation came out as it did. The serialized names are a public
/// contract: never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    /// Every check passed.
    Approved,
    // Verify.
    /// The event is malformed; the message names the field.
    InvalidRequest,
    /// The selected x402 requirement is malformed; the message names the field.
    RequirementInvalid,
    /// Only `CRYPTO_X402` payments are supported.
    PaymentTypeNotSupported,
    /// Only the x402 `exact` scheme is supported.
    SchemeNotAllowed,
    /// The network is not allowed by policy.
    NetworkNotAllowed,
    /// The asset is unknown, not USD-pegged, or not allowed by policy.
    AssetNotAllowed,
    /// The amount is zero or does not fit in micro-USD.
    AmountOutOfRange,
    /// The amount is above a per-payment limit.
    AmountOverPaymentLimit,
    /// The merchant (payTo or resource host) is not on an allow-list.
    MerchantNotAllowed,
    /// The merchant (payTo or resource host) is on a deny-list.
    MerchantBlocked,
    /// The tool is not allowed for this agent or by policy.
    ToolNotAllowed,
    /// The resource the merchant declares is on another origin than the URL the tool requested.
    ResourceMismatch,
    /// The requirement's `maxTimeoutSeconds` is longer than policy's `maxAuthorizationSeconds`.
    AuthorizationWindowTooLong,
    /// The agent is not registered.
    AgentUnknown,
    /// The agent is suspended.
    AgentSuspended,
    /// The agent is revoked.
    AgentRevoked,
    /// The agent belongs to another user.
    AgentUserMismatch,
    /// Consent is required and none was granted.
    ConsentMissing,
    /// The user revoked consent for this agent.
    ConsentRevoked,
    /// The user's consent for this agent has expired.
    ConsentExpired,
    /// The payment session is unknown to predebit.
    SessionUnknown,
    /// The payment session belongs to another user.
    SessionUserMismatch,
    /// The payment session was closed.
    SessionClosed,
    /// The payment session has expired.
    SessionExpired,
    /// The payment session's available budget is smaller than the amount.
    SessionBudgetExceeded,
    /// A budget across sessions (a day, week, month or rolling window) would be exceeded.
    BudgetExceeded,
    /// No policy exists at any scope.
    PolicyMissing,
    /// A policy document failed to parse.
    PolicyInvalid,
    /// The store could not be read in time; predebit fails closed.
    StoreUnavailable,
    // Ledger.
    /// The decision token is malformed, forged or signed by an unknown key.
    TokenInvalid,
    /// The decision token has expired.
    TokenExpired,
    /// A policy changed between the decision and the reserve.
    PolicyChanged,
    /// The paymentId was used before with a different payment.
    IdempotencyConflict,
    /// No hold exists for this paymentId.
    HoldNotFound,
    /// The hold is already posted.
    HoldAlreadyPosted,
    /// The hold is already voided.
    HoldAlreadyVoided,
    /// The signed payment differs from the approved one.
    SignedPayloadMismatch,
    /// Concurrent writes kept conflicting; nothing was held.
    StoreConflict,
    /// This deployment does not serve the requested operation.
    OpNotAllowed,
    /// openSession named a pool this user does not have.
    PoolUnknown,
    /// The pool's available amount is smaller than the session's limit; nothing was opened.
    PoolExceeded,
    // Authorize (enforcing mode).
    /// AgentCore refused to sign; the hold was released.
    SigningFailed,
    /// AgentCore did not answer in time; the hold is kept and the same request continues it.
    SignerUnavailable,
    // Admin: sessions opened against AgentCore's (openSession with a payment manager).
    /// AgentCore has no such payment session for this user and payment manager.
    #[serde(rename = "AGENTCORE_SESSION_UNKNOWN")]
    AgentCoreSessionUnknown,
    /// The AgentCore payment session belongs to another user.
    #[serde(rename = "AGENTCORE_SESSION_USER_MISMATCH")]
    AgentCoreSessionUserMismatch,
    /// The AgentCore payment session has expired.
    #[serde(rename = "AGENTCORE_SESSION_EXPIRED")]
    AgentCoreSessionExpired,
    /// The AgentCore payment session has no USD `maxSpendAmount` predebit can read.
    #[serde(rename = "AGENTCORE_LIMIT_UNUSABLE")]
    AgentCoreLimitUnusable,
    /// The limit is above the AgentCore payment session's `maxSpendAmount`.
    #[serde(rename = "AGENTCORE_LIMIT_EXCEEDED")]
    AgentCoreLimitExceeded,
    /// The expiry is later than the AgentCore payment session's.
    #[serde(rename = "AGENTCORE_EXPIRY_EXCEEDED")]
    AgentCoreExpiryExceeded,
    /// AgentCore refused to create or read the payment session; nothing was opened.
    #[serde(rename = "AGENTCORE_REFUSED")]
    AgentCoreRefused,
    /// AgentCore did not answer; nothing was written in predebit and the same request is safe.
    #[serde(rename = "AGENTCORE_UNAVAILABLE")]
    AgentCoreUnavailable,
    // Plugin.
    /// The verifier or the ledger could not be reached; nothing was signed.
    VerifierUnavailable,
}

impl ReasonCode {
    /// Every code, in declaration order.
    pub const ALL: [ReasonCode; 53] = [
        Self::Approved,
        Self::InvalidRequest,
        Self::RequirementInvalid,
        Self::PaymentTypeNotSupported,
        Self::SchemeNotAllowed,
        Self::NetworkNotAllowed,
        Self::AssetNotAllowed,
        Self::AmountOutOfRange,
        Self::AmountOverPaymentLimit,
        Self::MerchantNotAllowed,
        Self::MerchantBlocked,
        Self::ToolNotAllowed,
        Self::ResourceMismatch,
        Self::AuthorizationWindowTooLong,
        Self::AgentUnknown,
        Self::AgentSuspended,
        Self::AgentRevoked,
        Self::AgentUserMismatch,
        Self::ConsentMissing,
        Self::ConsentRevoked,
        Self::ConsentExpired,
        Self::SessionUnknown,
        Self::SessionUserMismatch,
        Self::SessionClosed,
        Self::SessionExpired,
        Self::SessionBudgetExceeded,
        Self::BudgetExceeded,
        Self::PolicyMissing,
        Self::PolicyInvalid,
        Self::StoreUnavailable,
        Self::TokenInvalid,
        Self::TokenExpired,
        Self::PolicyChanged,
        Self::IdempotencyConflict,
        Self::HoldNotFound,
        Self::HoldAlreadyPosted,
        Self::HoldAlreadyVoided,
        Self::SignedPayloadMismatch,
        Self::StoreConflict,
        Self::OpNotAllowed,
        Self::PoolUnknown,
        Self::PoolExceeded,
        Self::SigningFailed,
        Self::SignerUnavailable,
        Self::AgentCoreSessionUnknown,
        Self::AgentCoreSessionUserMismatch,
        Self::AgentCoreSessionExpired,
        Self::AgentCoreLimitUnusable,
        Self::AgentCoreLimitExceeded,
        Self::AgentCoreExpiryExceeded,
        Self::AgentCoreRefused,
        Self::AgentCoreUnavailable,
        Self::VerifierUnavailable,
    ];

    /// The stable wire name, e.g. `SESSION_BUDGET_EXCEEDED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "APPROVED",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::RequirementInvalid => "REQUIREMENT_INVALID",
            Self::PaymentTypeNotSupported => "PAYMENT_TYPE_NOT_SUPPORTED",
            Self::SchemeNotAllowed => "SCHEME_NOT_ALLOWED",
            Self::NetworkNotAllowed => "NETWORK_NOT_ALLOWED",
            Self::AssetNotAllowed => "ASSET_NOT_ALLOWED",
            Self::AmountOutOfRange => "AMOUNT_OUT_OF_RANGE",
            Self::AmountOverPaymentLimit => "AMOUNT_OVER_PAYMENT_LIMIT",
            Self::MerchantNotAllowed => "MERCHANT_NOT_ALLOWED",
            Self::MerchantBlocked => "MERCHANT_BLOCKED",
            Self::ToolNotAllowed => "TOOL_NOT_ALLOWED",
            Self::ResourceMismatch => "RESOURCE_MISMATCH",
            Self::AuthorizationWindowTooLong => "AUTHORIZATION_WINDOW_TOO_LONG",
            Self::AgentUnknown => "AGENT_UNKNOWN",
            Self::AgentSuspended => "AGENT_SUSPENDED",
            Self::AgentRevoked => "AGENT_REVOKED",
            Self::AgentUserMismatch => "AGENT_USER_MISMATCH",
            Self::ConsentMissing => "CONSENT_MISSING",
            Self::ConsentRevoked => "CONSENT_REVOKED",
            Self::ConsentExpired => "CONSENT_EXPIRED",
            Self::SessionUnknown => "SESSION_UNKNOWN",
            Self::SessionUserMismatch => "SESSION_USER_MISMATCH",
            Self::SessionClosed => "SESSION_CLOSED",
            Self::SessionExpired => "SESSION_EXPIRED",
            Self::SessionBudgetExceeded => "SESSION_BUDGET_EXCEEDED",
            Self::BudgetExceeded => "BUDGET_EXCEEDED",
            Self::PolicyMissing => "POLICY_MISSING",
            Self::PolicyInvalid => "POLICY_INVALID",
            Self::StoreUnavailable => "STORE_UNAVAILABLE",
            Self::TokenInvalid => "TOKEN_INVALID",
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::PolicyChanged => "POLICY_CHANGED",
            Self::IdempotencyConflict => "IDEMPOTENCY_CONFLICT",
            Self::HoldNotFound => "HOLD_NOT_FOUND",
            Self::HoldAlreadyPosted => "HOLD_ALREADY_POSTED",
            Self::HoldAlreadyVoided => "HOLD_ALREADY_VOIDED",
            Self::SignedPayloadMismatch => "SIGNED_PAYLOAD_MISMATCH",
            Self::StoreConflict => "STORE_CONFLICT",
            Self::OpNotAllowed => "OP_NOT_ALLOWED",
            Self::PoolUnknown => "POOL_UNKNOWN",
            Self::PoolExceeded => "POOL_EXCEEDED",
            Self::SigningFailed => "SIGNING_FAILED",
            Self::SignerUnavailable => "SIGNER_UNAVAILABLE",
            Self::AgentCoreSessionUnknown => "AGENTCORE_SESSION_UNKNOWN",
            Self::AgentCoreSessionUserMismatch => "AGENTCORE_SESSION_USER_MISMATCH",
            Self::AgentCoreSessionExpired => "AGENTCORE_SESSION_EXPIRED",
            Self::AgentCoreLimitUnusable => "AGENTCORE_LIMIT_UNUSABLE",
            Self::AgentCoreLimitExceeded => "AGENTCORE_LIMIT_EXCEEDED",
            Self::AgentCoreExpiryExceeded => "AGENTCORE_EXPIRY_EXCEEDED",
            Self::AgentCoreRefused => "AGENTCORE_REFUSED",
            Self::AgentCoreUnavailable => "AGENTCORE_UNAVAILABLE",
            Self::VerifierUnavailable => "VERIFIER_UNAVAILABLE",
        }
    }

    /// A one-line message for the agent and operator; says what to do next where it can.
    pub fn message(self) -> &'static str {
        match self {
            Self::Approved => "The payment is within policy and budget.",
            Self::InvalidRequest => "The request is malformed; fix the named field and retry.",
            Self::RequirementInvalid => {
                "The merchant's payment requirement is malformed; do not pay."
            }
            Self::PaymentTypeNotSupported => "Only CRYPTO_X402 payments are supported.",
            Self::SchemeNotAllowed => "The x402 scheme is not approved: 'exact' always, 'upto' only where a policy allows it.",
            Self::NetworkNotAllowed => "The payment network is not allowed by policy.",
            Self::AssetNotAllowed => {
                "The asset is not a trusted USD-pegged asset, or policy does not allow it."
            }
            Self::AmountOutOfRange => "The amount is zero or too large to convert to USD.",
            Self::AmountOverPaymentLimit => "The amount is above the per-payment limit.",
            Self::MerchantNotAllowed => "The merchant is not on the allow-list.",
            Self::MerchantBlocked => "The merchant is blocked by policy.",
            Self::ToolNotAllowed => "This tool may not make payments for this agent.",
            Self::ResourceMismatch => {
                "The merchant declares a resource on another origin than the URL requested; do not pay."
            }
            Self::AuthorizationWindowTooLong => {
                "The merchant asks for a longer authorization window than policy allows."
            }
            Self::AgentUnknown => "The agent is not registered; register it with predebit.",
            Self::AgentSuspended => "The agent is suspended.",
            Self::AgentRevoked => "The agent is revoked.",
            Self::AgentUserMismatch => "The agent does not belong to this user.",
            Self::ConsentMissing => "The user has not granted this agent consent to pay.",
            Self::ConsentRevoked => "The user revoked this agent's consent to pay.",
            Self::ConsentExpired => "The user's consent for this agent has expired.",
            Self::SessionUnknown => "The payment session is not open in predebit.",
            Self::SessionUserMismatch => "The payment session belongs to another user.",
            Self::SessionClosed => "The payment session is closed.",
            Self::SessionExpired => "The payment session has expired; open a new one.",
            Self::SessionBudgetExceeded => "The session's remaining budget is too small.",
            Self::BudgetExceeded => {
                "A budget across sessions would be exceeded; it frees as its window passes."
            }
            Self::PolicyMissing => "No policy is configured; an operator must put one.",
            Self::PolicyInvalid => "A policy document is invalid; an operator must fix it.",
            Self::StoreUnavailable => {
                "The store did not answer; the outcome is unknown and the same request can be retried safely."
            }
            Self::TokenInvalid => {
                "The decision or hold token is missing, forged or for another payment."
            }
            Self::TokenExpired => "The decision token has expired; verify the payment again.",
            Self::PolicyChanged => "Policy or registry changed since the decision; verify again.",
            Self::IdempotencyConflict => "This paymentId was used for a different payment.",
            Self::HoldNotFound => "No hold exists for this paymentId.",
            Self::HoldAlreadyPosted => "The hold is already posted.",
            Self::HoldAlreadyVoided => "The hold is already voided.",
            Self::SignedPayloadMismatch => "The signed payment differs from the approved one.",
            Self::StoreConflict => "Concurrent updates kept conflicting; nothing was held, retry.",
            Self::OpNotAllowed => "This deployment does not serve that operation.",
            Self::PoolUnknown => "The user has no funding pool of that name; create it first.",
            Self::PoolExceeded => {
                "The funding pool has less available than the limit; nothing was opened."
            }
            Self::SigningFailed => "The wallet refused to sign; the hold was released.",
            Self::SignerUnavailable => {
                "The wallet did not answer in time; send the same request again to continue."
            }
            Self::AgentCoreSessionUnknown => {
                "AgentCore has no such payment session for this user; create it first or check the id."
            }
            Self::AgentCoreSessionUserMismatch => {
                "The AgentCore payment session belongs to another user."
            }
            Self::AgentCoreSessionExpired => {
                "The AgentCore payment session has expired; create a new one."
            }
            Self::AgentCoreLimitUnusable => {
                "The AgentCore payment session has no USD maxSpendAmount predebit can read; give it one."
            }
            Self::AgentCoreLimitExceeded => {
                "The limit is above the AgentCore payment session's maxSpendAmount; give one at or below it."
            }
            Self::AgentCoreExpiryExceeded => {
                "The expiry is later than the AgentCore payment session's; give one at or before it."
            }
            Self::AgentCoreRefused => "AgentCore refused the request; nothing was opened in predebit.",
            Self::AgentCoreUnavailable => {
                "AgentCore did not answer; nothing was written in predebit and the same request can be sent again safely."
            }
            Self::VerifierUnavailable => "predebit could not be reached; nothing was signed.",
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialized_names_equal_as_str_for_every_code() {
        for code in ReasonCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_string()));
            let back: ReasonCode = serde_json::from_value(json).unwrap();
            assert_eq!(back, code);
        }
    }

    #[test]
    fn every_code_is_in_the_readme_table() {
        let readme = include_str!("../../../README.md");
        for code in ReasonCode::ALL {
            assert!(
                readme.contains(&format!("| `{}` |", code.as_str())),
                "README's reason code table lacks {code}"
            );
        }
    }

    #[test]
    fn every_code_is_listed_once_in_all() {
        let mut names: Vec<&str> = ReasonCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ReasonCode::ALL.len());
    }
}
