//! Every sample ledger event, in file-name order, against DynamoDB Local seeded from
//! infra/seed/demo.json. A `"decisionToken": "VERIFY:<name>"` placeholder is replaced by the
//! token from verifying `events/verify/<name>.json` just before the event runs, in a verify
//! container of its own (as `make demo` runs one process per verify).

use predebit_tests::repo_root;
use serde_json::{json, Value};

use crate::common::NOW;
use crate::ledger_flow::{assert_invariant, Flow};

/// The placeholder prefix of a decision token in `events/ledger/`.
const VERIFY_PLACEHOLDER: &str = "VERIFY:";
/// `"holdToken": "HOLD:<reserve event>"` stands for the hold token that reserve event returned.
const HOLD_PLACEHOLDER: &str = "HOLD:";
/// `"decisionToken": "REPLAY:<reserve event>"` stands for the decision token that reserve event
/// was sent with (a replay of it).
const REPLAY_PLACEHOLDER: &str = "REPLAY:";

fn sample_events() -> Vec<(String, Value, Value)> {
    let dir = repo_root().join("events/ledger");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(repo_root().join("events/expected/ledger").join(&name))
                .unwrap_or_else(|_| panic!("{name} has no expected result")),
        )
        .unwrap();
        out.push((name, event, expected));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every field of `expected` (recursively) equals the response's; a missing field is `null`.
fn assert_subset(name: &str, path: &str, expected: &Value, actual: &Value) {
    match expected {
        Value::Object(fields) => {
            for (key, want) in fields {
                let got = actual.get(key).unwrap_or(&Value::Null);
                assert_subset(name, &format!("{path}.{key}"), want, got);
            }
        }
        want => assert_eq!(want, actual, "{name}: {path}"),
    }
}

#[tokio::test]
async fn every_sample_ledger_event_gets_its_expected_result_in_order() {
    // GIVEN the demo seed on DynamoDB Local, a verify service and a ledger service (all ops)
    let flow = Flow::new("ledger-events").await;
    let events = sample_events();
    assert!(events.len() >= 20, "found {} ledger events", events.len());
    let mut now = NOW;
    let mut hold_tokens = std::collections::HashMap::new();
    let mut decision_tokens = std::collections::HashMap::new();

    for (name, mut event, mut expected) in events {
        if let Some(advance) = expected
            .as_object_mut()
            .and_then(|e| e.remove("clockAdvanceSeconds"))
        {
            now += advance.as_u64().expect("clockAdvanceSeconds is seconds");
        }
        // A placeholder token is the one verifying the named event returns now.
        if let Some(source) = event["decisionToken"]
            .as_str()
            .and_then(|t| t.strip_prefix(VERIFY_PLACEHOLDER))
            .map(str::to_string)
        {
            let verify_event: Value = serde_json::from_str(
                &std::fs::read_to_string(repo_root().join(format!("events/verify/{source}.json")))
                    .unwrap_or_else(|_| panic!("{name}: no events/verify/{source}.json")),
            )
            .unwrap();
            // A verify container of its own, as the demo's `predebit invoke verify` is a process
            // of its own: cold, it knows no budget counters to read yet.
            let (verify, _) = crate::common::service(flow.ledger.ledger().store().clone());
            let decision = verify.handle_json(&verify_event, &name, now).await;
            assert_eq!(decision["decision"], "YES", "{name}: {decision}");
            event["decisionToken"] = decision["decisionToken"].clone();
        }

        if let Some(source) = event["decisionToken"]
            .as_str()
            .and_then(|t| t.strip_prefix(REPLAY_PLACEHOLDER))
        {
            let token: &Value = decision_tokens
                .get(source)
                .unwrap_or_else(|| panic!("{name}: no earlier reserve {source}"));
            event["decisionToken"] = token.clone();
        }
        if event["op"] == "reserve" {
            decision_tokens.insert(
                name.trim_end_matches(".json").to_string(),
                event["decisionToken"].clone(),
            );
        }

        // A placeholder hold token is the one the named reserve event returned.
        if let Some(source) = event["holdToken"]
            .as_str()
            .and_then(|t| t.strip_prefix(HOLD_PLACEHOLDER))
        {
            let token = hold_tokens
                .get(source)
                .unwrap_or_else(|| panic!("{name}: no earlier reserve {source} returned a token"));
            event["holdToken"] = json!(token);
        }

        // WHEN the event is handled a second after the verify
        let response = flow.ledger.handle(&event, now + 1).await;
        if event["op"] == "reserve" && response["ok"] == true {
            let token = response["holdToken"].as_str();
            assert!(
                token.is_some_and(|t| t.starts_with("v1.")),
                "{name}: {response}"
            );
            hold_tokens.insert(
                name.trim_end_matches(".json").to_string(),
                token.unwrap().to_string(),
            );
        }

        // THEN every expected field matches, and the session still adds up
        assert_subset(&name, "", &expected, &response);
        assert_invariant(&flow.session("ps-alice-main").await);
    }
}

#[tokio::test]
async fn a_placeholder_token_as_is_answers_token_invalid() {
    let flow = Flow::new("ledger-placeholder").await;
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/ledger/02-reserve.json")).unwrap(),
    )
    .unwrap();

    let response = flow.ledger.handle(&event, NOW).await;

    assert_eq!(response["ok"], false, "{response}");
    assert_eq!(response["reasonCode"], "TOKEN_INVALID", "{response}");
}

#[tokio::test]
async fn a_payload_the_runtime_would_refuse_is_the_ledger_refusal_with_its_metric() {
    // GIVEN a ledger service
    let flow = Flow::new("ledger-raw").await;
    let deep = format!(
        "{{\"version\":\"1\",\"op\":{}1{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    let cases = [
        (deep.into_bytes(), "event: nests deeper than 64 levels"),
        (b"{\"op\": getSession}".to_vec(), "event: is not valid JSON"),
        (vec![b' '; 300 * 1024], "event: is larger than 262144 bytes"),
    ];
    for (raw, problem) in &cases {
        // WHEN the raw payload is handled as the Lambda handles it
        let response = flow.ledger.handle_raw(raw, "it-raw", NOW).await;
        // THEN it is the ledger's refusal shape, naming the problem
        assert_eq!(response["version"], "1");
        assert_eq!(response["op"], Value::Null);
        assert_eq!(response["ok"], false);
        assert_eq!(response["reasonCode"], "INVALID_REQUEST");
        let message = response["message"].as_str().unwrap();
        assert!(message.ends_with(&format!("({problem})")), "{message}");
    }
    // AND each counted as a refused operation
    let metrics = flow.metrics.lock().unwrap().clone();
    let refused = metrics
        .iter()
        .filter(|l| l.contains("\"Outcome\":\"INVALID_REQUEST\""))
        .count();
    assert_eq!(refused, cases.len(), "{metrics:?}");
}
