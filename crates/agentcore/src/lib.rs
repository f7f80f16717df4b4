//! AgentCore Payments behind core's ports: the `Signer` (`ProcessPayment` with the approved
//! requirement, `clientToken` = the paymentId) and, in [`sessions`], `PaymentSessions`
//! (`CreatePaymentSession`, `GetPaymentSession`) for the admin ledger.
//!
//! Error mapping: a refusal the service states (validation, access, conflict, quota, a missing
//! resource, no subscription) is `Refused`: nothing was signed. Throttling, a server error or no
//! answer is `Unavailable`: the outcome is unknown, and the same clientToken again returns the
//! same signature if there was one.

use std::collections::HashMap;

use aws_sdk_bedrockagentcore::error::SdkError;
use aws_sdk_bedrockagentcore::operation::process_payment::ProcessPaymentError;
use aws_sdk_bedrockagentcore::types::{
    CryptoX402PaymentInput, PaymentInput, PaymentOutput, PaymentType,
};
use aws_sdk_bedrockagentcore::Client;
use aws_smithy_types::{Document, Number};
use predebit_core::authorize::{SignError, SignRequest, Signed, Signer};
use serde_json::Value;

pub mod sessions;

pub use sessions::AgentCorePaymentSessions;

/// The environment variable naming the AgentCore payment manager (its ARN).
pub const ENV_PAYMENT_MANAGER_ARN: &str = "PREDEBIT_PAYMENT_MANAGER_ARN";

/// Signs through AgentCore Payments.
#[derive(Clone, Debug)]
pub struct AgentCoreSigner {
    client: Client,
    payment_manager_arn: String,
}

impl AgentCoreSigner {
    /// A signer for the payment manager `payment_manager_arn`.
    pub fn new(client: Client, payment_manager_arn: String) -> Self {
        Self {
            client,
            payment_manager_arn,
        }
    }
}

impl Signer for AgentCoreSigner {
    async fn sign(&self, request: &SignRequest) -> Result<Signed, SignError> {
        let input = CryptoX402PaymentInput::builder()
            .version(request.x402_version.to_string())
            .payload(to_document(&request.requirement))
            .set_permit2_allowance_limit(request.permit2_allowance_limit.clone())
            .build()
            .map_err(|_| SignError::Refused("the payment input could not be built"))?;
        let result = self
            .client
            .process_payment()
            .payment_manager_arn(&self.payment_manager_arn)
            .payment_session_id(&request.payment_session_id)
            .payment_instrument_id(&request.payment_instrument_id)
            .user_id(&request.user_id)
            .agent_name(&request.agent_name)
            .payment_type(PaymentType::CryptoX402)
            .payment_input(PaymentInput::CryptoX402(input))
            .client_token(&request.client_token)
            .send()
            .await;
        let out = result.map_err(sign_error)?;
        match out.payment_output() {
            Some(PaymentOutput::CryptoX402(output)) => Ok(Signed {
                payload: to_value(output.payload()),
            }),
            _ => Err(SignError::Refused("the answer holds no x402 payload")),
        }
    }
}

fn sign_error<R>(err: SdkError<ProcessPaymentError, R>) -> SignError {
    match err {
        SdkError::ServiceError(ctx) => match ctx.into_err() {
            ProcessPaymentError::ThrottlingException(_) => SignError::Unavailable("throttled"),
            ProcessPaymentError::InternalServerException(_) => {
                SignError::Unavailable("server error")
            }
            ProcessPaymentError::ValidationException(_) => SignError::Refused("validation"),
            ProcessPaymentError::AccessDeniedException(_) => SignError::Refused("access denied"),
            ProcessPaymentError::ConflictException(_) => SignError::Refused("conflict"),
            ProcessPaymentError::ResourceNotFoundException(_) => SignError::Refused("not found"),
            ProcessPaymentError::ServiceQuotaExceededException(_) => {
                SignError::Refused("quota exceeded")
            }
            ProcessPaymentError::SubscriptionRequiredException(_) => {
                SignError::Refused("subscription required")
            }
            // An error the model did not list: unknown, so not taken as a definite refusal.
            _ => SignError::Unavailable("unmodelled error"),
        },
        SdkError::TimeoutError(_) => SignError::Unavailable("timeout"),
        _ => SignError::Unavailable("no answer"),
    }
}

/// A JSON value as a Smithy document (the payment input is a free-form document).
pub fn to_document(value: &Value) -> Document {
    match value {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Number::PosInt(u),
            (_, Some(i), _) => Number::NegInt(i),
            (_, _, f) => Number::Float(f.unwrap_or(0.0)),
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(items) => Document::Array(items.iter().map(to_document).collect()),
        Value::Object(map) => Document::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), to_document(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// A Smithy document as JSON (the signed payload comes back as one).
pub fn to_value(document: &Document) -> Value {
    match document {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => Value::from(*u),
        Document::Number(Number::NegInt(i)) => Value::from(*i),
        Document::Number(Number::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        Document::String(s) => Value::String(s.clone()),
        Document::Array(items) => Value::Array(items.iter().map(to_value).collect()),
        Document::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_survives_the_document_round_trip() {
        let value = json!({"scheme": "exact", "maxTimeoutSeconds": 60, "neg": -3, "f": 0.5,
            "extra": {"name": "USDC", "list": [true, null, "x"]}});
        assert_eq!(to_value(&to_document(&value)), value);
    }
}
