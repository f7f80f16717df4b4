//! MPP (the Machine Payments Protocol, the "Payment" HTTP authentication scheme): the
//! `WWW-Authenticate: Payment` challenge and its `charge` intent.
//!
//! A 402 carries one or more challenges; AgentCore's ProcessPayment (payment type `MPP`) takes
//! exactly one of them verbatim and signs it. predebit judges that same string: [`parse_challenge`]
//! reads it (exactly one `Payment` challenge), [`parse_charge`] reads its `charge` request.
//! [`parse_challenges`] lists every `Payment` challenge of a whole header, for selection.
//!
//! Parsing is strict and never panics; every refusal is an [`MppError`] naming a field and the
//! problem, with nothing of the input in it. Networks come out as CAIP-2, amounts as canonical
//! atomic decimal strings. Specifications: tempoxyz/mpp-specs `specs/core/draft-httpauth-payment-00.md`,
//! `specs/intents/draft-payment-intent-charge-00.md` and the method drafts under `specs/methods/`.

mod auth_params;
pub mod challenge;
pub mod charge;
mod json;
pub mod method;

pub use challenge::{parse_challenge, parse_challenges, Challenge};
pub use charge::{parse_charge, parse_charge_challenge, ChargeRequest, Split};
pub use method::Method;

/// The largest `WWW-Authenticate` value read: ProcessPayment's limit for one challenge.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most challenges (of any scheme) one header may list.
pub const MAX_CHALLENGES: usize = 8;
/// The most auth-params one challenge may carry (the spec defines nine).
pub const MAX_PARAMS_PER_CHALLENGE: usize = 16;
/// The longest auth-param value, after unescaping.
pub const MAX_PARAM_VALUE_BYTES: usize = 8 * 1024;
/// The longest decoded `request` JSON (what 8 KiB of base64url holds).
pub const MAX_REQUEST_JSON_BYTES: usize = MAX_PARAM_VALUE_BYTES / 4 * 3;
/// The deepest nesting of the decoded `request` JSON (the charge schemas use four levels).
pub const MAX_REQUEST_DEPTH: usize = 16;

/// Why an MPP challenge or charge request was refused. Messages name fields and problems only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MppError {
    /// A field is missing, malformed or out of bounds. `field` is the header
    /// (`WWW-Authenticate`), an auth-param (`id`, `expires`) or a path in the decoded request
    /// (`request.methodDetails.chainId`), prefixed by `challenges[i].` in a list.
    #[error("{field}: {problem}")]
    Invalid {
        /// Where: a name from the specification, never from the input.
        field: String,
        /// What is wrong, as fixed text.
        problem: &'static str,
    },
    /// A well-formed challenge whose intent is not `charge` (`session`, `subscription`...).
    #[error("intent: predebit supports only the charge intent")]
    UnsupportedIntent {
        /// The intent, kept (never displayed) for the audit record.
        intent: String,
    },
    /// A well-formed challenge for a payment method predebit has no rules for.
    #[error("method: unsupported payment method (predebit knows tempo, evm and solana)")]
    UnsupportedMethod {
        /// The method, kept (never displayed) for the audit record.
        method: String,
    },
}

impl MppError {
    /// A refusal of `field` because of `problem`.
    pub fn invalid(field: impl Into<String>, problem: &'static str) -> Self {
        MppError::Invalid {
            field: field.into(),
            problem,
        }
    }

    /// The field at fault (`intent` and `method` for the unsupported ones).
    pub fn field(&self) -> &str {
        match self {
            MppError::Invalid { field, .. } => field,
            MppError::UnsupportedIntent { .. } => "intent",
            MppError::UnsupportedMethod { .. } => "method",
        }
    }

    /// The same refusal with `prefix.` put in front of its field (`challenges[1]` + `id`).
    pub(crate) fn within(self, prefix: &str) -> Self {
        match self {
            MppError::Invalid { field, problem } => MppError::Invalid {
                field: format!("{prefix}.{field}"),
                problem,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod no_echo;
#[cfg(test)]
mod vectors;
