//! Verify's store behaviour: one request per decision, and failing closed.

use predebit_store::dynamodb::PolicyScope;
use predebit_store::{DynamoClient, DynamoStore, TableNames};
use predebit_tests::{
    base_config, dynamodb_client_with, fresh_store, fresh_store_with, repo_root, RequestCounter,
};
use serde_json::Value;

use crate::common::{seed_demo, service, NOW};

fn event(name: &str) -> Value {
    let path = repo_root()
        .join("events/verify")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn each_decision_that_reads_the_store_makes_exactly_one_dynamodb_request() {
    // GIVEN a seeded store whose client counts requests
    let counter = RequestCounter::default();
    let client = dynamodb_client_with({
        let c = counter.clone();
        move |b| b.interceptor(c)
    })
    .await;
    let store = fresh_store_with("count", client).await;
    seed_demo(&store).await;
    let (service, _) = service(store);

    for (name, expected_requests) in [
        ("allow-v1-base-usdc", 1),
        ("allow-v2-base-sepolia", 1),
        ("decline-session-budget", 1),
        ("decline-agent-unknown", 1),
        ("decline-policy-invalid", 1),
        // Malformed input and unsupported types are decided before any read.
        ("invalid-request-payment-id", 0),
        ("invalid-requirement-missing-payto", 0),
        ("decline-payment-type-mpp", 0),
    ] {
        let before = counter.sent();
        // WHEN one event is decided
        let response = service.handle_json(&event(name), "it-count", NOW).await;
        // THEN the client sent exactly the expected number of requests
        let sent = counter.sent() - before;
        assert_eq!(
            sent, expected_requests,
            "{name} sent {sent} requests: {response}"
        );
    }
}

#[tokio::test]
async fn a_warm_service_compiles_each_policy_once_and_uses_a_new_version_on_the_next_decision() {
    // GIVEN the demo seed (a global and a user policy apply to this event) and one warm service
    let store = fresh_store("policy-cache").await;
    seed_demo(&store).await;
    let (service, _) = service(store);
    let allow = event("allow-v1-base-usdc");
    let decide = || async { service.handle_json(&allow, "it-cache", NOW).await };

    // WHEN the same payment is decided three times THEN each policy was compiled once
    for _ in 0..3 {
        assert_eq!(decide().await["decision"], "YES");
    }
    let warm = service.policies().stats();
    assert_eq!(
        (warm.compiled_documents, warm.combined, warm.hits),
        (2, 1, 2)
    );

    // WHEN the user's policy is put again, tighter than the payment THEN the very next decision
    // uses the new version
    let user = PolicyScope::User("user-alice".into());
    let version = service
        .reader()
        .put_policy(&user, r#"{"maxPerPayment":"0.50"}"#)
        .await
        .unwrap();
    let tightened = decide().await;
    assert_eq!(
        tightened["reasonCode"], "AMOUNT_OVER_PAYMENT_LIMIT",
        "{tightened}"
    );
    assert_eq!(tightened["policyVersions"]["user"], version);
    // AND only the new document was compiled, the global one came from the cache
    assert_eq!(service.policies().stats().compiled_documents, 3);

    // AND deleting it takes effect as promptly
    service.reader().delete_policy(&user).await.unwrap();
    let deleted = decide().await;
    assert_eq!(deleted["decision"], "YES", "{deleted}");
    assert_eq!(deleted["policyVersions"]["user"], Value::Null);
}

async fn client_for(endpoint: String) -> DynamoClient {
    let config = base_config()
        .endpoint_url(endpoint)
        .timeout_config(predebit_store::config::timeouts())
        .retry_config(predebit_store::config::retries())
        .load()
        .await;
    DynamoClient::new(&config)
}

#[tokio::test]
async fn an_unreachable_store_is_no_store_unavailable() {
    // GIVEN a port nobody listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = DynamoStore::new(
        client_for(format!("http://127.0.0.1:{port}")).await,
        TableNames::with_prefix("nowhere"),
    );
    let (service, audit) = service(store);

    let response = service
        .handle_json(&event("allow-v1-base-usdc"), "it-down", NOW)
        .await;

    assert_eq!(response["decision"], "NO");
    assert_eq!(response["reasonCode"], "STORE_UNAVAILABLE");
    assert!(response.get("decisionToken").is_none());
    assert_eq!(
        audit.lock().unwrap().len(),
        1,
        "a failed read still leaves an audit record"
    );
}

#[tokio::test]
async fn a_store_that_never_answers_is_no_store_unavailable_within_the_sdk_timeout() {
    // GIVEN a server that accepts connections and never replies
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let store = DynamoStore::new(
        client_for(format!("http://127.0.0.1:{port}")).await,
        TableNames::with_prefix("silent"),
    );
    let (service, _) = service(store);

    // WHEN a decision is asked for (the outer timeout only guards the test against a hang)
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        service.handle_json(&event("allow-v1-base-usdc"), "it-silent", NOW),
    )
    .await
    .expect("verify answers instead of hanging");

    // THEN it fails closed
    assert_eq!(response["decision"], "NO");
    assert_eq!(response["reasonCode"], "STORE_UNAVAILABLE");
    hold.abort();
}

#[tokio::test]
async fn missing_tables_are_no_store_unavailable() {
    let client = dynamodb_client_with(|b| b).await;
    let store = DynamoStore::new(client, TableNames::with_prefix("never-created"));
    let (service, _) = service(store);

    let response = service
        .handle_json(&event("allow-v1-base-usdc"), "it-missing", NOW)
        .await;

    assert_eq!(response["reasonCode"], "STORE_UNAVAILABLE");
}
