//! AgentCore payment sessions behind core's `PaymentSessions` port: `CreatePaymentSession` with
//! `maxSpendAmount` = the limit in USD, and `GetPaymentSession` as the user.
//!
//! Error mapping, as for signing: a refusal the service states (validation, access, quota, no
//! subscription) is `Refused`: no session was created. A `ConflictException` on create is the
//! clientToken seen with other terms. Throttling, a server error, an error the model does not
//! list or no answer is `Unavailable`: the outcome is unknown, and the same clientToken again
//! returns the session if one was created. On get, `ResourceNotFoundException` is "no such
//! session" (`None`), as is a session of another payment manager.

use aws_sdk_bedrockagentcore::error::SdkError;
use aws_sdk_bedrockagentcore::operation::create_payment_session::CreatePaymentSessionError;
use aws_sdk_bedrockagentcore::operation::get_payment_session::GetPaymentSessionError;
use aws_sdk_bedrockagentcore::types::{self as sdk, Amount, Currency, SessionLimits};
use aws_sdk_bedrockagentcore::Client;
use predebit_core::money::format_usd;
use predebit_core::payment_session::{
    CreateSession, PaymentSession, PaymentSessionError, PaymentSessions, SessionAmount,
};

/// Creates and reads payment sessions of one payment manager.
#[derive(Clone, Debug)]
pub struct AgentCorePaymentSessions {
    client: Client,
    payment_manager_arn: String,
}

impl AgentCorePaymentSessions {
    /// Sessions of the payment manager `payment_manager_arn`.
    pub fn new(client: Client, payment_manager_arn: String) -> Self {
        Self {
            client,
            payment_manager_arn,
        }
    }

    /// AgentCore's session in core's terms; one of another payment manager is not this one's.
    fn session(&self, found: Option<&sdk::PaymentSession>) -> Option<PaymentSession> {
        let found = found.filter(|s| s.payment_manager_arn() == self.payment_manager_arn)?;
        Some(PaymentSession {
            payment_session_id: found.payment_session_id().to_string(),
            user_id: found.user_id().to_string(),
            max_spend: found
                .limits()
                .and_then(SessionLimits::max_spend_amount)
                .map(|a| SessionAmount {
                    value: a.value().to_string(),
                    currency: a.currency().as_str().to_string(),
                }),
            created_at: found.created_at().secs(),
            expiry_minutes: i64::from(found.expiry_time_in_minutes()),
        })
    }
}

impl PaymentSessions for AgentCorePaymentSessions {
    async fn create(
        &self,
        request: &CreateSession<'_>,
    ) -> Result<PaymentSession, PaymentSessionError> {
        let max_spend = Amount::builder()
            .value(format_usd(request.limit_micros))
            .currency(Currency::Usd)
            .build()
            .map_err(|_| PaymentSessionError::Refused("the amount could not be built"))?;
        let expiry_minutes = i32::try_from(request.expiry_minutes)
            .map_err(|_| PaymentSessionError::Refused("expiryMinutes is out of range"))?;
        let out = self
            .client
            .create_payment_session()
            .payment_manager_arn(&self.payment_manager_arn)
            .user_id(request.user_id)
            .limits(SessionLimits::builder().max_spend_amount(max_spend).build())
            .expiry_time_in_minutes(expiry_minutes)
            .client_token(request.client_token)
            .send()
            .await
            .map_err(create_error)?;
        self.session(out.payment_session())
            .ok_or(PaymentSessionError::Refused(
                "AgentCore answered with a session of another payment manager",
            ))
    }

    async fn get(
        &self,
        payment_session_id: &str,
        user_id: &str,
    ) -> Result<Option<PaymentSession>, PaymentSessionError> {
        let result = self
            .client
            .get_payment_session()
            .payment_manager_arn(&self.payment_manager_arn)
            .payment_session_id(payment_session_id)
            .user_id(user_id)
            .send()
            .await;
        match result {
            Ok(out) => Ok(self.session(out.payment_session())),
            Err(SdkError::ServiceError(ctx))
                if matches!(
                    ctx.err(),
                    GetPaymentSessionError::ResourceNotFoundException(_)
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(get_error(err)),
        }
    }
}

fn create_error<R>(err: SdkError<CreatePaymentSessionError, R>) -> PaymentSessionError {
    use PaymentSessionError::{Conflict, Refused, Unavailable};
    match err {
        SdkError::ServiceError(ctx) => match ctx.into_err() {
            CreatePaymentSessionError::ThrottlingException(_) => Unavailable("throttled"),
            CreatePaymentSessionError::InternalServerException(_) => Unavailable("server error"),
            CreatePaymentSessionError::ConflictException(_) => Conflict,
            CreatePaymentSessionError::ValidationException(_) => Refused("validation"),
            CreatePaymentSessionError::AccessDeniedException(_) => Refused("access denied"),
            CreatePaymentSessionError::ServiceQuotaExceededException(_) => {
                Refused("quota exceeded")
            }
            CreatePaymentSessionError::SubscriptionRequiredException(_) => {
                Refused("subscription required")
            }
            // An error the model did not list: unknown, so not taken as a definite refusal.
            _ => Unavailable("unmodelled error"),
        },
        SdkError::TimeoutError(_) => Unavailable("timeout"),
        _ => Unavailable("no answer"),
    }
}

fn get_error<R>(err: SdkError<GetPaymentSessionError, R>) -> PaymentSessionError {
    use PaymentSessionError::{Refused, Unavailable};
    match err {
        SdkError::ServiceError(ctx) => match ctx.into_err() {
            GetPaymentSessionError::ThrottlingException(_) => Unavailable("throttled"),
            GetPaymentSessionError::InternalServerException(_) => Unavailable("server error"),
            GetPaymentSessionError::ValidationException(_) => Refused("validation"),
            GetPaymentSessionError::AccessDeniedException(_) => Refused("access denied"),
            _ => Unavailable("unmodelled error"),
        },
        SdkError::TimeoutError(_) => Unavailable("timeout"),
        _ => Unavailable("no answer"),
    }
}
