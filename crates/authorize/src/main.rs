//! The authorize Lambda's entry point: read configuration and build clients once, then serve.

use lambda_runtime::{Error, LambdaEvent};
use predebit_agentcore::{AgentCoreSigner, ENV_PAYMENT_MANAGER_ARN};
use predebit_authorize::{config_from_env, now_epoch_seconds, AuthorizeService};
use predebit_core::authorize::Authorizer;
use predebit_runtime::RawEvent;
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
    let manager = std::env::var(ENV_PAYMENT_MANAGER_ARN).map_err(|_| {
        format!("environment variable {ENV_PAYMENT_MANAGER_ARN} is not set; set it to the AgentCore payment manager's ARN")
    })?;
    let sdk = predebit_store::config::load().await;
    let store = DynamoStore::new(DynamoClient::new(&sdk), tables);
    let keys = KeySource::from_secrets_manager(SecretsClient::new(&sdk), secret_id).await?;
    let signer = AgentCoreSigner::new(aws_sdk_bedrockagentcore::Client::new(&sdk), manager);
    let authorizer = Authorizer::new(store.clone(), store, signer, config);
    let service = AuthorizeService::new(authorizer, keys).with_alert_percent(
        predebit_runtime::alert_percent_from_env(predebit_core::metrics::DEFAULT_ALERT_PERCENT)?,
    );
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
