//! `predebit session open` with a payment manager, through the built binary: DynamoDB Local and
//! the local AgentCore Payments service, reached with the standard endpoint variables.

use std::process::Command;

use predebit_core::ledger::LedgerStore;
use predebit_store::tables::{self, TableNames, ENV_LEDGER, ENV_POLICIES, ENV_REGISTRY};
use predebit_store::DynamoStore;
use serde_json::Value;

const MANAGER: &str =
    "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/predebit-local-a1b2c3d4e5";

/// Runs `predebit --json --table-prefix <prefix> session open <args>`; returns its exit code,
/// standard output (JSON when it succeeded) and standard error.
fn session_open(prefix: &str, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_predebit"))
        .args(["--json", "--table-prefix", prefix, "session", "open"])
        .args(args)
        .env(
            "AWS_ENDPOINT_URL_DYNAMODB",
            predebit_tests::dynamodb_endpoint(),
        )
        .env(
            "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE",
            predebit_tests::agentcore_endpoint(),
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env_remove("PREDEBIT_ADMIN_PAYMENT_MANAGER_ARN")
        .env_remove(ENV_POLICIES)
        .env_remove(ENV_REGISTRY)
        .env_remove(ENV_LEDGER)
        .output()
        .expect("run predebit");
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn session_open_creates_the_agentcore_session_and_refuses_a_limit_above_it() {
    // GIVEN fresh tables and the local payment manager
    let prefix = format!("cliopen{}", std::process::id());
    let client = predebit_tests::dynamodb_client().await;
    let names = TableNames::with_prefix(&prefix);
    tables::create_all(&client, &names).await.unwrap();
    let store = DynamoStore::new(client, names);
    let token = format!("cli-open-test-{:032}", std::process::id());
    let create = [
        "--user-id",
        "cli-open-user",
        "--limit",
        "2.50",
        "--expiry-minutes",
        "30",
        "--payment-manager-arn",
        MANAGER,
        "--client-token",
        &token,
    ];

    // WHEN it creates a session through AgentCore, twice with the same client token
    let (code, first, stderr) = session_open(&prefix, &create);
    let (again_code, again, _) = session_open(&prefix, &create);

    // THEN AgentCore created it, predebit holds its id with the limit, and the second is a replay
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(first["agentCore"], "created", "{first}");
    assert_eq!(first["clientToken"], token.as_str());
    let id = first["session"]["paymentSessionId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.starts_with("payment-session-"), "{id}");
    let stored = store
        .read_session_page(&id, None, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.session.limit_micros, 2_500_000);
    assert_eq!(again_code, 0);
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["session"]["paymentSessionId"], id.as_str());

    // WHEN the same AgentCore session is named with a limit above its maxSpendAmount
    let (code, out, stderr) = session_open(
        &prefix,
        &[
            "--session-id",
            &id,
            "--user-id",
            "cli-open-user",
            "--limit",
            "2.51",
            "--payment-manager-arn",
            MANAGER,
        ],
    );
    // THEN it fails (exit 1) naming the reason, and prints no session
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("AGENTCORE_LIMIT_EXCEEDED"), "{stderr}");
    assert_eq!(out, Value::Null);
}

#[test]
fn session_open_without_a_payment_manager_still_needs_a_session_id() {
    let (code, _, stderr) = session_open(
        "cliopen-none",
        &[
            "--user-id",
            "u",
            "--limit",
            "1.00",
            "--expiry-minutes",
            "30",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--session-id is required"), "{stderr}");
}
