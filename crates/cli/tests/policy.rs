//! `predebit policy` against DynamoDB Local, through the built binary.

use std::process::Command;

use serde_json::Value;

/// Runs `predebit --json --table-prefix <prefix> <args>` against the test DynamoDB Local.
fn predebit(prefix: &str, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_predebit"))
        .args(["--json", "--table-prefix", prefix])
        .args(args)
        .env(
            "AWS_ENDPOINT_URL_DYNAMODB",
            predebit_tests::dynamodb_endpoint(),
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env_remove("PREDEBIT_POLICIES_TABLE")
        .output()
        .expect("run predebit");
    assert!(
        out.status.success(),
        "predebit {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints JSON")
}

#[tokio::test]
async fn a_policy_deleted_and_put_again_through_the_cli_takes_a_version_never_used_before() {
    // A just-started DynamoDB Local can take longer than the CLI's 2 s timeout to answer its
    // first request; the harness's client has no such timeout, so it warms the server up.
    predebit_tests::dynamodb_client()
        .await
        .list_tables()
        .send()
        .await
        .expect("DynamoDB Local answers");
    // GIVEN fresh tables and a global policy put twice
    let prefix = format!("cli{}", std::process::id());
    predebit(&prefix, &["tables", "create"]);
    let policy = std::env::temp_dir().join(format!("{prefix}-policy.json"));
    std::fs::write(&policy, r#"{"maxPerPayment": "5.00"}"#).unwrap();
    let file = policy.to_str().unwrap();
    let put =
        |p: &str| predebit(p, &["policy", "put", "--scope", "global", file])["version"].clone();
    assert_eq!((put(&prefix), put(&prefix)), (1.into(), 2.into()));

    // WHEN it is deleted and put again
    let deleted = predebit(&prefix, &["policy", "delete", "--scope", "global"]);
    let again = put(&prefix);

    // THEN the delete took effect and the new version is above both earlier ones
    assert_eq!(deleted["deleted"], true);
    assert_eq!(again, 3);
    assert_eq!(
        predebit(&prefix, &["policy", "get", "--scope", "global"])["version"],
        3
    );
}
