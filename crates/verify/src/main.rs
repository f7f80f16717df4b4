//! The verify Lambda's entry point: read configuration and build clients once, then serve.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use predebit_store::secrets::{KeySource, ENV_SECRET_ID};
use predebit_store::{DynamoStore, TableNames};
use predebit_verify::{now_epoch_seconds, VerifyService};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON when the function's LoggingConfig says JSON; each line carries the invocation's requestId.
    lambda_runtime::tracing::init_default_subscriber();

    let tables = TableNames::from_env().map_err(Error::from)?;
    let secret_id = std::env::var(ENV_SECRET_ID)
        .map_err(|_| format!("environment variable {ENV_SECRET_ID} is not set; set it to the keys secret's name or ARN"))?;
    let config = predebit_store::config::load().await;
    let store = DynamoStore::new(predebit_store::DynamoClient::new(&config), tables);
    let keys =
        KeySource::from_secrets_manager(predebit_store::SecretsClient::new(&config), secret_id)
            .await?;
    let service = VerifyService::new(store, keys);
    let service = &service;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let response = service
            .handle_json(
                &event.payload,
                &event.context.request_id,
                now_epoch_seconds(),
            )
            .await;
        Ok::<Value, Error>(response)
    }))
    .await
}
