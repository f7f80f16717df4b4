//! A write whose answer is lost is re-sent by the SDK (the attempt timed out); the store must
//! recognise its own write and answer as the first attempt would have, never twice and never as
//! a replay by the caller. A proxy in front of DynamoDB Local holds one response past the SDK's
//! attempt timeout; the request counter proves the re-send happened.

use std::time::Duration;

use predebit_core::ledger::LedgerStore;
use predebit_store::config::ATTEMPT_TIMEOUT;
use predebit_tests::delay_proxy::DelayProxy;
use predebit_tests::{dynamodb_client_at, dynamodb_endpoint, fresh_store_with, RequestCounter};
use serde_json::{json, Value};

use crate::common::NOW;
use crate::ledger_flow::{assert_invariant, pid, Flow};

const SESSION: &str = "ps-alice-main";
const MERCHANT: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

/// A seeded flow whose DynamoDB traffic goes through a delaying proxy, with production timeouts.
async fn proxied_flow(name: &str) -> (Flow, DelayProxy, RequestCounter) {
    let upstream = dynamodb_endpoint()
        .trim_start_matches("http://")
        .to_string();
    let proxy = DelayProxy::start(upstream, ATTEMPT_TIMEOUT + Duration::from_millis(400)).await;
    let counter = RequestCounter::default();
    let client = dynamodb_client_at(&proxy.endpoint(), {
        let c = counter.clone();
        move |b| b.interceptor(c)
    })
    .await;
    let flow = Flow::over(fresh_store_with(name, client).await).await;
    (flow, proxy, counter)
}

/// Runs `event` with its first answer lost; returns the answer and the requests it took.
async fn with_lost_answer(
    flow: &Flow,
    proxy: &DelayProxy,
    counter: &RequestCounter,
    event: Value,
) -> (Value, usize) {
    let (before_requests, before_delayed) = (counter.sent(), proxy.delayed());
    proxy.delay_next_response();
    let answer = flow.op(event).await;
    assert_eq!(
        proxy.delayed(),
        before_delayed + 1,
        "no answer was held back"
    );
    (answer, counter.sent() - before_requests)
}

fn signed() -> Value {
    json!({"to": MERCHANT, "value": "1000000", "network": "eip155:8453", "validBefore": NOW + 60})
}

#[tokio::test]
async fn a_reserve_whose_answer_was_lost_holds_once_and_is_not_a_replay() {
    let (flow, proxy, counter) = proxied_flow("resend-reserve").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    let (answer, requests) = with_lost_answer(
        &flow,
        &proxy,
        &counter,
        json!({"version": "1", "op": "reserve", "decisionToken": token}),
    )
    .await;
    assert!(
        requests >= 2,
        "the SDK did not re-send ({requests} requests)"
    );
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["replayed"], false, "{answer}");
    assert!(answer["holdToken"].as_str().is_some(), "{answer}");
    let s = flow.session(SESSION).await;
    assert_eq!(
        (s.reserved_micros, s.available_micros),
        (1_000_000, 24_000_000)
    );
    assert_invariant(&s);
}

#[tokio::test]
async fn a_mark_sent_whose_answer_was_lost_is_not_a_replay() {
    let (flow, proxy, counter) = proxied_flow("resend-mark-sent").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    flow.op(json!({"version": "1", "op": "reserve", "decisionToken": token}))
        .await;
    let (answer, requests) = with_lost_answer(
        &flow,
        &proxy,
        &counter,
        json!({"version": "1", "op": "markSent", "paymentSessionId": SESSION, "paymentId": pid(1), "signed": signed()}),
    )
    .await;
    assert!(
        requests >= 2,
        "the SDK did not re-send ({requests} requests)"
    );
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["replayed"], false, "{answer}");
    assert_eq!(answer["hold"]["state"], "SENT", "{answer}");
}

#[tokio::test]
async fn a_failed_settlement_report_whose_answer_was_lost_is_counted_once() {
    let (flow, proxy, counter) = proxied_flow("resend-failed-settlement").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    flow.op(json!({"version": "1", "op": "reserve", "decisionToken": token}))
        .await;
    flow.op(json!({"version": "1", "op": "markSent", "paymentSessionId": SESSION, "paymentId": pid(1), "signed": signed()}))
        .await;
    let failed = json!({"success": false, "errorReason": "insufficient_funds", "transaction": "", "network": "base"});
    let (answer, requests) = with_lost_answer(
        &flow,
        &proxy,
        &counter,
        json!({"version": "1", "op": "commit", "paymentSessionId": SESSION, "paymentId": pid(1), "settlement": failed}),
    )
    .await;
    assert!(
        requests >= 2,
        "the SDK did not re-send ({requests} requests)"
    );
    assert_eq!(answer["ok"], true, "{answer}");
    let hold = flow
        .ledger
        .ledger()
        .store()
        .read_hold(SESSION, &pid(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hold.settlement_failures, 1, "{hold:?}");
}

#[tokio::test]
async fn a_commit_and_a_release_whose_answers_were_lost_move_the_amount_once() {
    let (flow, proxy, counter) = proxied_flow("resend-commit-release").await;
    for n in [1, 2] {
        let token = flow.approve(&pid(n), "1000000", SESSION).await;
        flow.op(json!({"version": "1", "op": "reserve", "decisionToken": token}))
            .await;
    }
    flow.op(json!({"version": "1", "op": "markSent", "paymentSessionId": SESSION, "paymentId": pid(1), "signed": signed()}))
        .await;
    let settlement = json!({"success": true, "transaction": format!("0x{}", "ab".repeat(32)), "network": "base"});
    for event in [
        json!({"version": "1", "op": "commit", "paymentSessionId": SESSION, "paymentId": pid(1), "settlement": settlement, "amountMicros": 1_000_000}),
        json!({"version": "1", "op": "release", "paymentSessionId": SESSION, "paymentId": pid(2), "reason": "NOT_SENT", "amountMicros": 1_000_000}),
    ] {
        let (answer, requests) = with_lost_answer(&flow, &proxy, &counter, event).await;
        assert!(
            requests >= 2,
            "the SDK did not re-send ({requests} requests)"
        );
        assert_eq!(answer["ok"], true, "{answer}");
        assert_eq!(answer["replayed"], false, "{answer}");
    }
    let s = flow.session(SESSION).await;
    assert_eq!(
        (s.settled_micros, s.reserved_micros, s.available_micros),
        (1_000_000, 0, 24_000_000)
    );
    assert_invariant(&s);
}

#[tokio::test]
async fn opening_and_closing_a_session_whose_answers_were_lost_are_not_replays() {
    let (flow, proxy, counter) = proxied_flow("resend-sessions").await;
    for event in [
        json!({"version": "1", "op": "openSession", "paymentSessionId": "ps-resend", "userId": "user-alice", "limit": "5.00", "expiryMinutes": 60}),
        json!({"version": "1", "op": "closeSession", "paymentSessionId": "ps-resend", "reason": "test"}),
    ] {
        let (answer, requests) = with_lost_answer(&flow, &proxy, &counter, event).await;
        assert!(
            requests >= 2,
            "the SDK did not re-send ({requests} requests)"
        );
        assert_eq!(answer["ok"], true, "{answer}");
        assert_eq!(answer["replayed"], false, "{answer}");
    }
}
