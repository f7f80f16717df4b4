//! `predebit invoke authorize`: the authorize handler in-process, signing through AgentCore
//! Payments. The table never shows a payment header's value: it is a signed payment.

use predebit_agentcore::AgentCoreSigner;
use predebit_authorize::{now_epoch_seconds, AuthorizeService};
use predebit_core::authorize::{AuthorizeConfig, Authorizer};
use predebit_store::DynamoStore;
use rand::RngCore;
use serde_json::Value;

use crate::commands::{ledger_keys, print_responses, read_input, table_names, CliError};
use crate::Cli;

/// Runs each event file through authorize, in order, and prints the responses.
pub async fn invoke(
    cli: &Cli,
    files: &[String],
    payment_manager_arn: &str,
    now: Option<u64>,
) -> Result<(), CliError> {
    let config = predebit_authorize::config_from_env().map_err(CliError::Input)?;
    let sdk = predebit_store::config::load().await;
    let store = DynamoStore::new(predebit_store::DynamoClient::new(&sdk), table_names(cli));
    let keys = ledger_keys(cli, &sdk).await?;
    let signer = AgentCoreSigner::new(
        aws_sdk_bedrockagentcore::Client::new(&sdk),
        payment_manager_arn.to_string(),
    );
    let service = service(store, signer, config, keys);
    let table = files.len() > 1 && !cli.json;
    if table {
        println!(
            "{:<40} {:<8} {:<26} {:>8}  HEADER",
            "EVENT", "DECISION", "REASON", "AMOUNT"
        );
    }
    let mut responses = Vec::new();
    for file in files {
        let text = read_input(file)?;
        let request_id = format!("local-{:016x}", rand::rng().next_u64());
        let response = service
            .handle_raw(
                text.as_bytes(),
                &request_id,
                now.unwrap_or_else(now_epoch_seconds),
            )
            .await;
        if table {
            println!("{}", table_row(file, &response));
        }
        responses.push(response);
    }
    if !table {
        print_responses(responses);
    }
    Ok(())
}

fn service(
    store: DynamoStore,
    signer: AgentCoreSigner,
    config: AuthorizeConfig,
    keys: predebit_store::secrets::KeySource,
) -> AuthorizeService<DynamoStore, DynamoStore, AgentCoreSigner> {
    AuthorizeService::new(Authorizer::new(store.clone(), store, signer, config), keys)
        .with_audit_sink(Box::new(|line| eprintln!("{line}")))
        .with_metrics_sink(Box::new(|_| {}))
}

/// One line of the table: the header by name and size only.
fn table_row(file: &str, response: &Value) -> String {
    let name = std::path::Path::new(file)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(file);
    let header = match (
        response["paymentHeader"]["name"].as_str(),
        response["paymentHeader"]["value"].as_str(),
    ) {
        (Some(n), Some(v)) => format!("{n} ({} bytes)", v.len()),
        _ => "-".to_string(),
    };
    format!(
        "{:<40} {:<8} {:<26} {:>8}  {}",
        name,
        response["decision"].as_str().unwrap_or("?"),
        response["reasonCode"].as_str().unwrap_or("?"),
        response["amount"]["usd"].as_str().unwrap_or("-"),
        header
    )
}
