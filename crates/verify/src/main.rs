//! The verify Lambda's entry point: read configuration and build clients once, then serve.

use lambda_runtime::{Error, LambdaEvent};
use predebit_runtime::RawEvent;
use predebit_store::secrets::{KeySource, ENV_SECRET_ID};
use predebit_store::{DynamoStore, TableNames};
use predebit_verify::{now_epoch_seconds, VerifyService};

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
    let alert_percent =
        predebit_runtime::alert_percent_from_env(predebit_core::metrics::DEFAULT_ALERT_PERCENT)?;
    let service = VerifyService::new(store, keys).with_alert_percent(alert_percent);
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
