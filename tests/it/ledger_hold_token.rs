//! Every ledger op after reserve is bound to the hold's owner by the hold token reserve returns:
//! knowing a session id and a paymentId is not enough to read, mark, settle or release someone
//! else's hold. Against DynamoDB Local.

use predebit_core::hold::Hold;
use predebit_core::hold_token;
use predebit_core::keys::KeyRing;
use predebit_core::ledger::{AllowedOps, LedgerConfig, LedgerStore};
use predebit_ledger::LedgerService;
use predebit_store::secrets::KeySource;
use predebit_store::DynamoStore;
use serde_json::{json, Value};

use crate::common::{test_keys, NOW};
use crate::ledger_flow::{assert_invariant, pid, sample_verify_event, Flow};

const ALICE: &str = "ps-alice-main";
const BOB: &str = "ps-bob-main";
const MERCHANT: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

fn signed(valid_before: u64) -> Value {
    json!({"to": MERCHANT, "value": "1000000", "network": "eip155:8453", "validBefore": valid_before})
}

fn settlement(network: &str) -> Value {
    json!({"success": true, "transaction": format!("0x{}", "cd".repeat(32)), "network": network})
}

/// Every op that needs a hold token, on `session`/`payment_id`, carrying `token` when given.
fn ops_after_reserve(session: &str, payment_id: &str, token: Option<&str>) -> Vec<Value> {
    let mut events = vec![
        json!({"version": "1", "op": "markSent", "paymentSessionId": session, "paymentId": payment_id, "signed": signed(NOW + 60)}),
        json!({"version": "1", "op": "commit", "paymentSessionId": session, "paymentId": payment_id, "settlement": settlement("base")}),
        json!({"version": "1", "op": "commit", "paymentSessionId": session, "paymentId": payment_id,
            "settlement": {"success": false, "errorReason": "x", "transaction": "", "network": "base"}}),
        json!({"version": "1", "op": "release", "paymentSessionId": session, "paymentId": payment_id, "reason": "NOT_SENT"}),
        json!({"version": "1", "op": "getHold", "paymentSessionId": session, "paymentId": payment_id}),
    ];
    if let Some(t) = token {
        for e in &mut events {
            e["holdToken"] = json!(t);
        }
    }
    events
}

/// Alice's PENDING hold pid(1) on her session, and its hold token.
async fn alices_hold(flow: &Flow) -> String {
    let token = flow.approve(&pid(1), "1000000", ALICE).await;
    let reserved = flow
        .op(json!({"version": "1", "op": "reserve", "decisionToken": token}))
        .await;
    assert_eq!(reserved["ok"], true, "{reserved}");
    reserved["holdToken"].as_str().unwrap().to_string()
}

/// Bob's PENDING hold pid(9) on his own session, and its hold token.
async fn bobs_hold(flow: &Flow) -> String {
    let mut event = sample_verify_event(&pid(9), "1000000", BOB);
    event["userId"] = json!("user-bob");
    event["agentId"] = json!("agent-bob");
    let decision = flow.verify.handle_json(&event, "it-bob", NOW).await;
    let reserved = flow
        .op(json!({"version": "1", "op": "reserve", "decisionToken": decision["decisionToken"]}))
        .await;
    assert_eq!(reserved["ok"], true, "{reserved}");
    reserved["holdToken"].as_str().unwrap().to_string()
}

async fn hold(flow: &Flow, session: &str, payment_id: &str) -> Hold {
    flow.ledger
        .ledger()
        .store()
        .read_hold(session, payment_id)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn ops_after_reserve_without_a_hold_token_are_refused_and_change_nothing() {
    let flow = Flow::new("hold-token-missing").await;
    alices_hold(&flow).await;
    let (before, session) = (hold(&flow, ALICE, &pid(1)).await, flow.session(ALICE).await);
    for event in ops_after_reserve(ALICE, &pid(1), None) {
        // Sent straight to the ledger: the flow would add the token it remembers.
        let response = flow.ledger.handle(&event, NOW + 1).await;
        assert_eq!(
            response["reasonCode"], "TOKEN_INVALID",
            "{event}: {response}"
        );
    }
    assert_eq!(hold(&flow, ALICE, &pid(1)).await, before);
    assert_eq!(flow.session(ALICE).await, session);
}

#[tokio::test]
async fn another_users_hold_token_cannot_read_mark_settle_or_release_a_hold() {
    // GIVEN Alice's PENDING hold, and Bob holding a valid token for his own hold
    let flow = Flow::new("hold-token-other-user").await;
    alices_hold(&flow).await;
    let bobs = bobs_hold(&flow).await;
    let (before, session) = (hold(&flow, ALICE, &pid(1)).await, flow.session(ALICE).await);
    // WHEN Bob sends every op on Alice's hold with his token
    for event in ops_after_reserve(ALICE, &pid(1), Some(&bobs)) {
        let response = flow.ledger.handle(&event, NOW + 1).await;
        // THEN each is refused and Alice's hold and session are untouched
        assert_eq!(
            response["reasonCode"], "TOKEN_INVALID",
            "{event}: {response}"
        );
        assert!(response.get("hold").is_none(), "{response}");
    }
    assert_eq!(hold(&flow, ALICE, &pid(1)).await, before);
    assert_eq!(flow.session(ALICE).await, session);
    // AND Alice's own markSent still works
    let sent = flow
        .op(json!({"version": "1", "op": "markSent", "paymentSessionId": ALICE, "paymentId": pid(1), "signed": signed(NOW + 60)}))
        .await;
    assert_eq!(sent["hold"]["state"], "SENT", "{sent}");
}

#[tokio::test]
async fn a_forged_or_retagged_hold_token_is_refused() {
    let flow = Flow::new("hold-token-forged").await;
    let real = alices_hold(&flow).await;
    let found = hold(&flow, ALICE, &pid(1)).await;
    let other_key =
        KeyRing::from_secret_json(&KeyRing::new_secret_json("test-k1", &[3u8; 32], &[9u8; 32]))
            .unwrap();
    let forged = hold_token::issue_for(&found, "user-alice", &other_key);
    // A decision-token envelope over the same payload: right key, wrong domain tag.
    let payload = real.split('.').nth(2).unwrap();
    let decision_token = flow.approve(&pid(2), "1000000", ALICE).await;
    let retagged = format!(
        "v1.test-k1.{payload}.{}",
        decision_token.split('.').nth(3).unwrap()
    );
    for token in [
        forged.as_str(),
        retagged.as_str(),
        "v1.x.y.z",
        "not a token",
    ] {
        for event in ops_after_reserve(ALICE, &pid(1), Some(token)) {
            let response = flow.ledger.handle(&event, NOW + 1).await;
            assert_eq!(
                response["reasonCode"], "TOKEN_INVALID",
                "{token}: {response}"
            );
        }
    }
    assert_eq!(hold(&flow, ALICE, &pid(1)).await, found);
}

#[tokio::test]
async fn a_replayed_reserve_returns_the_same_hold_token() {
    let flow = Flow::new("hold-token-replay").await;
    let token = flow.approve(&pid(1), "1000000", ALICE).await;
    let reserve = json!({"version": "1", "op": "reserve", "decisionToken": token});
    let first = flow.op(reserve.clone()).await;
    let again = flow.op(reserve).await;
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(first["holdToken"], again["holdToken"]);
    assert!(first["holdToken"]
        .as_str()
        .is_some_and(|t| t.starts_with("v1.test-k1.")));
}

fn deployment(flow: &Flow, setting: &str, keys: KeyRing) -> LedgerService<DynamoStore> {
    let config = LedgerConfig {
        allowed: AllowedOps::parse(setting).unwrap(),
        ..LedgerConfig::default()
    };
    LedgerService::new(
        flow.ledger.ledger().store().clone(),
        config,
        KeySource::fixed(keys),
    )
    .with_metrics_sink(Box::new(|_| {}))
}

#[tokio::test]
async fn the_agent_ledger_reads_a_session_only_with_a_hold_token_of_it_and_the_admin_reads_any() {
    let flow = Flow::new("hold-token-get-session").await;
    let alices = alices_hold(&flow).await;
    let bobs = bobs_hold(&flow).await;
    let agent = deployment(&flow, "agent", test_keys());
    let read = |token: Option<&str>| {
        let mut e = json!({"version": "1", "op": "getSession", "paymentSessionId": ALICE});
        if let Some(t) = token {
            e["holdToken"] = json!(t);
        }
        e
    };
    // An agent without a token, or with another session's, reads nothing
    for token in [None, Some(bobs.as_str())] {
        let response = agent.handle(&read(token), NOW + 1).await;
        assert_eq!(response["reasonCode"], "TOKEN_INVALID", "{response}");
        assert!(response.get("session").is_none() && response.get("holds").is_none());
    }
    // With a hold token of the session it reads the session
    let response = agent.handle(&read(Some(&alices)), NOW + 1).await;
    assert_eq!(response["session"]["paymentSessionId"], ALICE, "{response}");
    // The admin deployment reads any session without one
    let admin = deployment(&flow, "admin", test_keys());
    let response = admin.handle(&read(None), NOW + 1).await;
    assert_eq!(response["session"]["paymentSessionId"], ALICE, "{response}");
}

#[tokio::test]
async fn a_commit_on_a_pending_hold_posts_it_and_records_mark_sent_missing() {
    // GIVEN a PENDING hold whose markSent never arrived
    let flow = Flow::new("mark-sent-missing").await;
    alices_hold(&flow).await;
    // WHEN its settlement is committed
    let committed = flow
        .op(json!({"version": "1", "op": "commit", "paymentSessionId": ALICE, "paymentId": pid(1), "settlement": settlement("base")}))
        .await;
    // THEN it is posted (no settlement is lost), marked, and counted
    assert_eq!(committed["hold"]["state"], "POSTED", "{committed}");
    assert_eq!(committed["hold"]["markSentMissing"], true, "{committed}");
    let stored = hold(&flow, ALICE, &pid(1)).await;
    assert!(stored.mark_sent_missing, "{stored:?}");
    let s = flow.session(ALICE).await;
    assert_eq!(s.settled_micros, 1_000_000);
    assert_invariant(&s);
    let metrics = flow.metrics.lock().unwrap().join("\n");
    assert!(metrics.contains("\"MarkSentMissing\":1"), "{metrics}");
}

#[tokio::test]
async fn a_commit_on_a_sent_hold_does_not_record_mark_sent_missing() {
    let flow = Flow::new("mark-sent-present").await;
    alices_hold(&flow).await;
    flow.op(json!({"version": "1", "op": "markSent", "paymentSessionId": ALICE, "paymentId": pid(1), "signed": signed(NOW + 60)}))
        .await;
    let committed = flow
        .op(json!({"version": "1", "op": "commit", "paymentSessionId": ALICE, "paymentId": pid(1), "settlement": settlement("base")}))
        .await;
    assert_eq!(committed["hold"]["state"], "POSTED", "{committed}");
    assert!(
        committed["hold"].get("markSentMissing").is_none(),
        "{committed}"
    );
    assert!(!hold(&flow, ALICE, &pid(1)).await.mark_sent_missing);
    let metrics = flow.metrics.lock().unwrap().join("\n");
    assert!(!metrics.contains("MarkSentMissing"), "{metrics}");
}

#[tokio::test]
async fn a_settlement_on_another_network_changes_nothing() {
    // GIVEN a SENT hold approved on Base
    let flow = Flow::new("settlement-network").await;
    alices_hold(&flow).await;
    flow.op(json!({"version": "1", "op": "markSent", "paymentSessionId": ALICE, "paymentId": pid(1), "signed": signed(NOW + 60)}))
        .await;
    let (before, session) = (hold(&flow, ALICE, &pid(1)).await, flow.session(ALICE).await);
    // WHEN a success or a failure is reported on Base Sepolia (v1 name or CAIP-2)
    for network in ["base-sepolia", "eip155:84532"] {
        for s in [
            settlement(network),
            json!({"success": false, "errorReason": "x", "transaction": "", "network": network}),
        ] {
            let response = flow
                .op(json!({"version": "1", "op": "commit", "paymentSessionId": ALICE, "paymentId": pid(1), "settlement": s}))
                .await;
            // THEN it is refused and the hold stays SENT with nothing counted
            assert_eq!(
                response["reasonCode"], "SIGNED_PAYLOAD_MISMATCH",
                "{response}"
            );
        }
    }
    assert_eq!(hold(&flow, ALICE, &pid(1)).await, before);
    assert_eq!(flow.session(ALICE).await, session);
    // AND the settlement on Base posts it
    let committed = flow
        .op(json!({"version": "1", "op": "commit", "paymentSessionId": ALICE, "paymentId": pid(1), "settlement": settlement("eip155:8453")}))
        .await;
    assert_eq!(committed["hold"]["state"], "POSTED", "{committed}");
}
