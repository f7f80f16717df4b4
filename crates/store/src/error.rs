//! Mapping SDK failures to predebit's store errors.

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use predebit_core::store::StoreError;

/// Any SDK failure on a read: the caller fails closed. The message carries the SDK's context
/// (service error code or timeout), never request data.
pub fn unavailable<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(format!("{}", DisplayErrorContext(&err)))
}

/// What an operator write (CLI, seeding) can run into.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The request never completed.
    #[error("DynamoDB request failed: {0}")]
    Store(#[from] StoreError),
    /// The item exists with different content; nothing was changed.
    #[error("{0} already exists with different content; nothing was changed")]
    Conflict(String),
    /// Input that cannot be stored.
    #[error("invalid input: {0}")]
    Invalid(String),
}
