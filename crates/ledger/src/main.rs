//! The ledger Lambda's entry point: read configuration and build clients once, then serve.

use lambda_runtime::{Error, LambdaEvent};
use predebit_agentcore::AgentCorePaymentSessions;
use predebit_ledger::{config_from_env, payment_manager_from_env, LedgerService};
use predebit_runtime::{now_epoch_seconds, RawEvent};
use predebit_store::secrets::{KeySource, ENV_SECRET_ID};
use predebit_store::{DynamoClient, DynamoStore, SecretsClient, TableNames};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON when the function's LoggingConfig says JSON; each line carries the invocation's requestId.
    lambda_runtime::tracing::init_default_subscriber();

    let tables = TableNames::from_env().map_err(Error::from)?;
    let config = config_from_env().map_err(Error::from)?;
    let secret_id = std::env::var(ENV_SECRET_ID).map_err(|_| {
        format!("environment variable {ENV_SECRET_ID} is not set; set it to the keys secret's name or ARN")
    })?;
    let payment_manager = payment_manager_from_env().map_err(Error::from)?;
    let sdk = predebit_store::config::load().await;
    let store = DynamoStore::new(DynamoClient::new(&sdk), tables);
    let keys = KeySource::from_secrets_manager(SecretsClient::new(&sdk), secret_id).await?;
    // One AgentCore client per container, only where a payment manager is configured.
    let payment_sessions = payment_manager
        .map(|arn| AgentCorePaymentSessions::new(aws_sdk_bedrockagentcore::Client::new(&sdk), arn));
    let service = LedgerService::new(store, config, keys).with_payment_sessions(payment_sessions);
    let service = &service;
    predebit_runtime::serve(move |event: LambdaEvent<RawEvent>| async move {
        service
            .handle_raw(
                event.payload.as_bytes(),
                &event.context.request_id,
                now_epoch_seconds(),
            )
            .await
    })
    .await
}
