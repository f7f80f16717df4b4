//! Every sample verify event, against DynamoDB Local seeded from infra/seed/demo.json.

use predebit_core::audit::verify_log_line;
use predebit_core::token;
use predebit_tests::{fresh_store, repo_root};
use serde_json::Value;

use crate::common::{seed_demo, service, test_keys, NOW};

fn sample_events() -> Vec<(String, Value, Value)> {
    let dir = repo_root().join("events/verify");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        let expected_path = repo_root().join("events/expected/verify").join(&name);
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(&expected_path)
                .unwrap_or_else(|_| panic!("{name} has no expected result")),
        )
        .unwrap();
        out.push((name, event, expected));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test]
async fn every_sample_event_gets_its_expected_decision_and_reason() {
    // GIVEN the demo seed on DynamoDB Local
    let store = fresh_store("events").await;
    seed_demo(&store).await;
    let (service, audit) = service(store);
    let events = sample_events();
    assert!(
        events.len() >= 15,
        "at least 15 sample events, found {}",
        events.len()
    );

    for (name, event, expected) in &events {
        // WHEN each event is decided
        let response = service.handle_json(event, &format!("it-{name}"), NOW).await;
        // THEN decision and reason match the expected file
        assert_eq!(
            response["decision"], expected["decision"],
            "{name}: {response}"
        );
        assert_eq!(
            response["reasonCode"], expected["reasonCode"],
            "{name}: {response}"
        );
        let yes = response["decision"] == "YES";
        assert_eq!(
            response.get("decisionToken").is_some(),
            yes,
            "{name}: token only on YES"
        );
        assert_eq!(
            response["auditHash"].as_str().map(str::len),
            Some(64),
            "{name}"
        );
    }

    // AND every decision left exactly one audit line that verifies under the key
    let lines = audit.lock().unwrap().clone();
    assert_eq!(lines.len(), events.len());
    for line in &lines {
        verify_log_line(line, &test_keys()).unwrap_or_else(|e| panic!("audit line fails: {e:?}"));
    }
}

#[tokio::test]
async fn a_yes_token_carries_the_approved_payment_and_the_audit_hash() {
    let store = fresh_store("token").await;
    seed_demo(&store).await;
    let (service, audit) = service(store);
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/verify/allow-v1-base-usdc.json"))
            .unwrap(),
    )
    .unwrap();

    let response = service.handle_json(&event, "it-token", NOW).await;

    let token_str = response["decisionToken"]
        .as_str()
        .expect("YES carries a token");
    let claims = token::verify(token_str, &test_keys(), NOW).expect("token verifies");
    assert_eq!(claims.payment_id, event["paymentId"].as_str().unwrap());
    assert_eq!(claims.amount_micros, 1_000_000);
    assert_eq!(claims.amount_atomic, "1000000");
    assert_eq!(claims.network, "eip155:8453");
    assert_eq!(claims.pay_to, "0x209693bc6afc0c5328ba36faf03c514ef312287c");
    assert_eq!(claims.asset, "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913");
    assert_eq!(claims.resource_host.as_deref(), Some("api.weather.example"));
    assert_eq!(claims.policy_versions.global, Some(1));
    assert_eq!(claims.policy_versions.user, Some(1));
    assert_eq!(claims.policy_versions.agent, None);
    assert!(claims.consent_required);
    assert_eq!(claims.expires_at, NOW + 60);
    assert_eq!(response["expiresAt"], NOW + 60);
    assert_eq!(claims.audit_hash, response["auditHash"].as_str().unwrap());
    assert_eq!(response["amount"]["micros"], 1_000_000);
    assert_eq!(response["amount"]["asset"], "USDC");
    // The audit line names the user only by pseudonym, and never holds the token.
    let line = audit.lock().unwrap()[0].clone();
    assert!(!line.contains("user-alice"), "raw user id in audit line");
    assert!(!line.contains(token_str), "token in audit line");
    assert!(line.contains(&test_keys().pseudonymize("user-alice")));
}

#[tokio::test]
async fn a_payload_the_runtime_would_refuse_is_a_no_with_a_sealed_audit_record() {
    // GIVEN the allow sample with a requirement.extra nested 200 levels (past serde_json's limit)
    let store = fresh_store("raw-deep").await;
    seed_demo(&store).await;
    let (service, audit) = service(store);
    let sample =
        std::fs::read_to_string(repo_root().join("events/verify/allow-v1-base-usdc.json")).unwrap();
    let extra = format!(
        "{}{}",
        "{\"a\":".repeat(200),
        "1".to_string() + &"}".repeat(200)
    );
    let deep = sample.replacen(
        "\"requirement\": {",
        &format!("\"requirement\": {{\"extra\": {extra},"),
        1,
    );
    assert_ne!(deep, sample, "the sample has a requirement object");
    let cases = [
        (deep.into_bytes(), "event: nests deeper than 64 levels"),
        (b"not json".to_vec(), "event: is not valid JSON"),
        (vec![b' '; 300 * 1024], "event: is larger than 262144 bytes"),
    ];

    for (raw, problem) in &cases {
        // WHEN the raw payload is handled as the Lambda handles it
        let response = service.handle_raw(raw, "it-raw", NOW).await;
        // THEN it is NO INVALID_REQUEST naming the problem
        assert_eq!(response["decision"], "NO", "{problem}: {response}");
        assert_eq!(response["reasonCode"], "INVALID_REQUEST", "{problem}");
        let message = response["message"].as_str().unwrap();
        assert!(message.ends_with(&format!("({problem})")), "{message}");
    }
    // AND each left one audit line that verifies, with the problem as its detail
    let lines = audit.lock().unwrap().clone();
    assert_eq!(lines.len(), cases.len());
    for (line, (_, problem)) in lines.iter().zip(&cases) {
        verify_log_line(line, &test_keys()).unwrap_or_else(|e| panic!("audit line fails: {e:?}"));
        let record: Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["record"]["reasonCode"], "INVALID_REQUEST");
        assert_eq!(record["record"]["detail"], *problem);
    }
}

#[tokio::test]
async fn a_raw_payload_that_parses_is_decided_as_the_event_itself() {
    let store = fresh_store("raw-ok").await;
    seed_demo(&store).await;
    let (service, _) = service(store);
    let sample =
        std::fs::read_to_string(repo_root().join("events/verify/allow-v1-base-usdc.json")).unwrap();

    let response = service
        .handle_raw(sample.as_bytes(), "it-raw-ok", NOW)
        .await;

    assert_eq!(response["decision"], "YES", "{response}");
    assert_eq!(response["reasonCode"], "APPROVED");
}
