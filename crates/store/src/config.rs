//! The AWS SDK configuration: the standard chain, with timeouts well under the Lambda timeout.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// One attempt may take this long before the SDK gives up on it.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(800);
/// The whole operation, retries included; verify fails closed after it.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(2000);
/// Connecting (TLS included) may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Attempts per operation (the first plus retries), with the SDK's jittered backoff.
pub const MAX_ATTEMPTS: u32 = 3;

/// predebit's timeouts: every call ends well before the Lambda timeout.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// predebit's retries: the SDK's standard mode, bounded attempts.
pub fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// Loads the shared SDK configuration from the environment with predebit's timeouts and retries.
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts())
        .retry_config(retries())
        .load()
        .await
}
