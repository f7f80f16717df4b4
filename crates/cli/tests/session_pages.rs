//! `predebit audit check` and `predebit session show` read every hold of a session, page after
//! page, against DynamoDB Local and moto, through the built binary.

use std::process::Command;

use predebit_core::keys::KeyRing;
use predebit_core::ledger::port::MAX_HOLDS_PER_PAGE;
use predebit_core::ledger::{AllowedOps, LedgerConfig};
use predebit_ledger::LedgerService;
use predebit_store::secrets::{self, KeySource};
use predebit_store::tables::{self, TableNames, ENV_LEDGER, ENV_POLICIES, ENV_REGISTRY};
use predebit_store::{seed, DynamoStore};
use predebit_tests::repo_root;
use predebit_verify::VerifyService;
use serde_json::{json, Value};

const SESSION: &str = "ps-alice-main";
/// Inside the demo sessions' lifetime.
const NOW: u64 = 1_800_000_000;

/// Runs `predebit --json --table-prefix <prefix> --secret-id <secret> <args>` on the local
/// servers; returns its exit success and standard output as JSON.
fn predebit(prefix: &str, secret: &str, args: &[&str]) -> (bool, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_predebit"))
        .args(["--json", "--table-prefix", prefix, "--secret-id", secret])
        .args(args)
        .env(
            "AWS_ENDPOINT_URL_DYNAMODB",
            predebit_tests::dynamodb_endpoint(),
        )
        .env(
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            predebit_tests::secrets_endpoint(),
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env_remove(ENV_POLICIES)
        .env_remove(ENV_REGISTRY)
        .env_remove(ENV_LEDGER)
        .output()
        .expect("run predebit");
    let stdout = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "predebit {args:?} printed no JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), stdout)
}

/// The demo seed on fresh tables under `prefix`, with `count` PENDING holds of 0.01 on
/// Alice's main session, sealed under `keys` (which the secret `secret` also holds).
async fn session_with_holds(prefix: &str, secret: &str, keys: &KeyRing, count: u64) {
    let client = predebit_tests::dynamodb_client().await;
    let names = TableNames::with_prefix(prefix);
    tables::create_all(&client, &names).await.unwrap();
    let store = DynamoStore::new(client, names);
    let text = std::fs::read_to_string(repo_root().join("infra/seed/demo.json")).unwrap();
    seed::apply(&store, &seed::parse(&text).unwrap())
        .await
        .unwrap();
    let secret_json = KeyRing::new_secret_json("cli-k1", &[3; 32], &[4; 32]);
    secrets::put(
        &predebit_tests::secrets_client().await,
        secret,
        &secret_json,
    )
    .await
    .unwrap();

    let verify = VerifyService::new(store.clone(), KeySource::fixed(keys.clone()))
        .with_audit_sink(Box::new(|_| {}))
        .with_metrics_sink(Box::new(|_| {}));
    let ledger = LedgerService::new(
        store,
        LedgerConfig {
            allowed: AllowedOps::parse("all").unwrap(),
            ..LedgerConfig::default()
        },
        KeySource::fixed(keys.clone()),
    )
    .with_metrics_sink(Box::new(|_| {}));
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/verify/allow-v1-base-usdc.json"))
            .unwrap(),
    )
    .unwrap();
    for n in 0..count {
        event["paymentId"] = json!(format!("{n:064x}"));
        event["requirement"]["maxAmountRequired"] = json!("10000");
        let decision = verify.handle_json(&event, "cli-pages", NOW).await;
        let reserved = ledger
            .handle(
                &json!({"version": "1", "op": "reserve", "decisionToken": decision["decisionToken"]}),
                NOW + 1,
            )
            .await;
        assert_eq!(reserved["ok"], true, "{reserved}");
    }
}

#[tokio::test]
async fn audit_check_and_session_show_read_every_page_of_a_session_s_holds() {
    // GIVEN a session with more holds than one page (150), sealed under the secret's key
    let prefix = format!("clipages{}", std::process::id());
    let secret = format!("predebit/test-cli-pages/{}", std::process::id());
    let keys =
        KeyRing::from_secret_json(&KeyRing::new_secret_json("cli-k1", &[3; 32], &[4; 32])).unwrap();
    let count = MAX_HOLDS_PER_PAGE as u64 + 50;
    session_with_holds(&prefix, &secret, &keys, count).await;

    // WHEN the operator audits it and shows it
    let (audited, audit) = predebit(&prefix, &secret, &["audit", "check", "--session", SESSION]);
    let (shown, show) = predebit(&prefix, &secret, &["session", "show", SESSION]);

    // THEN both saw all 150 holds and the audit found the balances agree with them
    assert!(audited, "{audit}");
    assert_eq!(
        (audit["holds"].clone(), audit["ok"].clone()),
        (json!(150), json!(true))
    );
    assert!(shown, "{show}");
    assert_eq!(show["holds"].as_array().map(Vec::len), Some(150));
    assert_eq!(show["reservedMicros"], 1_500_000);
}
