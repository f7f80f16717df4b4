//! The `upto` scheme on DynamoDB Local: the hold is the signed maximum, commit posts what the
//! settlement charged and returns the rest to the session (or a closed pooled session's pool)
//! and to every budget window in the same transaction; a report above the hold is recorded as
//! overdraft and alarmed; a charge of 0 settles with no transaction.

use predebit_store::dynamodb::PolicyScope;
use serde_json::{json, Value};

use crate::common::NOW;
use crate::ledger_budgets::{counter, day_key};
use crate::ledger_flow::{assert_invariant, pid, sample_verify_event, Flow};

const MERCHANT: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
/// Anvil's second development account, as the facilitator an `upto` requirement names.
const FACILITATOR: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const SESSION: &str = "ps-alice-main";
const SESSION_EXPIRES_AT: u64 = 4_102_444_800;

/// Alice's policy: the demo's $5 cap, `upto` allowed, a daily budget of $20.
async fn allow_upto(flow: &Flow) {
    let doc = json!({"maxPerPayment": "5.00", "schemes": ["exact", "upto"],
        "budgets": [{"window": "day", "amountUsd": "20.00"}]});
    flow.ledger
        .ledger()
        .store()
        .put_policy(&PolicyScope::User("user-alice".into()), &doc.to_string())
        .await
        .unwrap();
}

/// The sample verify event as an x402 v2 `upto` requirement for at most `max_atomic`.
fn upto_event(payment_id: &str, max_atomic: &str, session: &str) -> Value {
    let mut event = sample_verify_event(payment_id, max_atomic, session);
    event["x402Version"] = json!(2);
    event["resource"] = json!("https://api.weather.example/v1/forecast");
    event["requirement"] = json!({
        "scheme": "upto", "network": "eip155:8453", "amount": max_atomic,
        "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "payTo": MERCHANT,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USD Coin", "version": "2", "facilitatorAddress": FACILITATOR}
    });
    event
}

/// An `upto` payment of at most `max_atomic`, approved, reserved and marked sent on `session`.
async fn sent_upto(flow: &Flow, payment_id: &str, max_atomic: &str, session: &str) {
    let decided = flow
        .verify
        .handle_json(&upto_event(payment_id, max_atomic, session), "it-upto", NOW)
        .await;
    assert_eq!(decided["decision"], "YES", "{decided}");
    let reserved = flow
        .op(json!({"version": "1", "op": "reserve", "decisionToken": decided["decisionToken"]}))
        .await;
    assert_eq!(reserved["ok"], true, "{reserved}");
    flow.mark_sent(payment_id, max_atomic, session).await;
}

fn commit(session: &str, payment_id: &str, settlement: Value) -> Value {
    json!({"version": "1", "op": "commit", "paymentSessionId": session, "paymentId": payment_id,
        "settlement": settlement})
}

fn charged(amount: &str, n: u64) -> Value {
    json!({"success": true, "transaction": format!("0x{n:064x}"), "network": "eip155:8453",
        "amount": amount})
}

#[tokio::test]
async fn an_upto_commit_posts_what_was_charged_and_returns_the_rest_to_the_session_and_budgets() {
    // GIVEN a SENT upto payment of at most $2.00 on alice's $25 session under a daily budget
    let flow = Flow::new("upto-partial").await;
    allow_upto(&flow).await;
    sent_upto(&flow, &pid(1), "2000000", SESSION).await;
    let before = flow.session(SESSION).await;
    let day = day_key(NOW + 1, "UTC");
    assert_eq!(counter(&flow, &day).await, (2_000_000, 1));
    // WHEN the merchant settles for $0.75
    let posted = flow
        .op(commit(SESSION, &pid(1), charged("750000", 1)))
        .await;
    // THEN the hold posts $0.75 and gives $1.25 back, in the session and the day's window
    assert_eq!(posted["ok"], true, "{posted}");
    let hold = &posted["hold"];
    assert_eq!(
        (
            &hold["state"],
            &hold["settledMicros"],
            &hold["returnedMicros"]
        ),
        (&json!("POSTED"), &json!(750_000), &json!(1_250_000)),
        "{posted}"
    );
    let after = flow.session(SESSION).await;
    assert_eq!(after.settled_micros, before.settled_micros + 750_000);
    assert_eq!(after.reserved_micros, before.reserved_micros - 2_000_000);
    assert_eq!(after.available_micros, before.available_micros + 1_250_000);
    assert_eq!(after.overdraft_micros, 0);
    assert_invariant(&after);
    assert_eq!(counter(&flow, &day).await, (750_000, 1));
    // AND the settled metric is what was charged
    let lines = flow.metrics.lock().unwrap().join("\n");
    assert!(lines.contains("\"SettledMicros\":750000"), "{lines}");
    // WHEN the same settlement comes again THEN it is a replay; nothing moves twice
    let again = flow
        .op(commit(SESSION, &pid(1), charged("750000", 1)))
        .await;
    assert_eq!(
        (&again["ok"], &again["replayed"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(flow.session(SESSION).await, after);
}

#[tokio::test]
async fn an_upto_charge_of_zero_settles_without_a_transaction_and_an_exact_one_cannot() {
    let flow = Flow::new("upto-zero").await;
    allow_upto(&flow).await;
    // GIVEN a SENT upto payment and a SENT exact one
    sent_upto(&flow, &pid(2), "1000000", SESSION).await;
    flow.held(&pid(3), "1000000", SESSION).await;
    flow.mark_sent(&pid(3), "1000000", SESSION).await;
    let zero = json!({"success": true, "transaction": "", "network": "eip155:8453", "amount": "0"});
    // WHEN the upto merchant charged nothing THEN the hold posts 0 and the whole hold comes back
    let before = flow.session(SESSION).await;
    let posted = flow.op(commit(SESSION, &pid(2), zero.clone())).await;
    assert_eq!(posted["hold"]["settledMicros"], 0, "{posted}");
    let after = flow.session(SESSION).await;
    assert_eq!(after.available_micros, before.available_micros + 1_000_000);
    assert_eq!(after.settled_micros, before.settled_micros);
    assert_invariant(&after);
    // WHEN an exact payment's settlement names no transaction THEN refused, nothing changed
    let refused = flow.op(commit(SESSION, &pid(3), zero)).await;
    assert_eq!(refused["reasonCode"], "INVALID_REQUEST", "{refused}");
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("settlement.transaction"));
    assert_eq!(flow.session(SESSION).await, after);
}

#[tokio::test]
async fn a_report_above_the_hold_is_posted_as_overdraft_and_alarmed_and_one_without_amount_posts_the_hold(
) {
    let flow = Flow::new("upto-over").await;
    allow_upto(&flow).await;
    sent_upto(&flow, &pid(4), "1000000", SESSION).await;
    sent_upto(&flow, &pid(5), "1000000", SESSION).await;
    let day = day_key(NOW + 1, "UTC");
    let before = flow.session(SESSION).await;
    // WHEN the merchant reports $1.40 charged on a $1.00 maximum
    let posted = flow
        .op(commit(SESSION, &pid(4), charged("1400000", 4)))
        .await;
    // THEN it is recorded: posted $1.40, $0.40 of overdraft, the windows count only the hold
    assert_eq!(posted["hold"]["excessMicros"], 400_000, "{posted}");
    let s = flow.session(SESSION).await;
    assert_eq!(s.settled_micros, before.settled_micros + 1_400_000);
    assert_eq!(s.overdraft_micros, 400_000);
    assert_eq!(s.available_micros, before.available_micros);
    assert_invariant(&s);
    assert_eq!(counter(&flow, &day).await, (2_000_000, 2));
    let lines = flow.metrics.lock().unwrap().join("\n");
    assert!(lines.contains("\"UptoSettledAboveHold\":1"), "{lines}");
    // WHEN a settlement names no amount THEN the whole maximum is posted (never less)
    let whole =
        json!({"success": true, "transaction": format!("0x{:064x}", 5), "network": "eip155:8453"});
    let posted = flow.op(commit(SESSION, &pid(5), whole)).await;
    assert_eq!(posted["hold"]["settledMicros"], 1_000_000, "{posted}");
    assert_invariant(&flow.session(SESSION).await);
}

#[tokio::test]
async fn an_upto_commit_needs_no_amount_hint_and_a_wrong_one_moves_nothing_wrongly() {
    let flow = Flow::new("upto-hint").await;
    allow_upto(&flow).await;
    sent_upto(&flow, &pid(6), "2000000", SESSION).await;
    sent_upto(&flow, &pid(7), "2000000", SESSION).await;
    let before = flow.session(SESSION).await;
    // WHEN committed with the hold's amount as the hint, and with a wrong hint
    for (n, hint) in [(6, 2_000_000u64), (7, 1u64)] {
        let mut event = commit(SESSION, &pid(n), charged("500000", n));
        event["amountMicros"] = json!(hint);
        let posted = flow.op(event).await;
        assert_eq!(posted["hold"]["settledMicros"], 500_000, "{posted}");
    }
    // THEN each posted its charge and returned its rest
    let after = flow.session(SESSION).await;
    assert_eq!(after.settled_micros, before.settled_micros + 1_000_000);
    assert_eq!(after.available_micros, before.available_micros + 3_000_000);
    assert_invariant(&after);
}

#[tokio::test]
async fn a_late_upto_settlement_takes_only_what_it_charged() {
    let flow = Flow::new("upto-late").await;
    allow_upto(&flow).await;
    sent_upto(&flow, &pid(8), "2000000", SESSION).await;
    // GIVEN the hold expired after its authorization could no longer settle
    let expired = flow
        .op_at(json!({"version": "1", "op": "expire"}), NOW + 10_000)
        .await;
    assert_eq!(expired["ok"], true, "{expired}");
    let before = flow.session(SESSION).await;
    let day = day_key(NOW + 1, "UTC");
    assert_eq!(counter(&flow, &day).await, (0, 0));
    // WHEN its settlement of $0.30 arrives after all
    let posted = flow
        .op_at(commit(SESSION, &pid(8), charged("300000", 8)), NOW + 10_001)
        .await;
    // THEN it is posted late for $0.30: available and the window lose $0.30, not the maximum
    assert_eq!(
        (&posted["hold"]["late"], &posted["hold"]["settledMicros"]),
        (&json!(true), &json!(300_000)),
        "{posted}"
    );
    let after = flow.session(SESSION).await;
    assert_eq!(after.settled_micros, before.settled_micros + 300_000);
    assert_eq!(after.available_micros, before.available_micros - 300_000);
    assert_invariant(&after);
    assert_eq!(counter(&flow, &day).await, (300_000, 1));
}

#[tokio::test]
async fn on_a_closed_pooled_session_the_rest_of_an_upto_hold_goes_back_to_the_pool() {
    let flow = Flow::new("upto-pool").await;
    allow_upto(&flow).await;
    let store = flow.ledger.ledger().store();
    store
        .create_pool("user-alice", "monthly", 100_000_000)
        .await
        .unwrap();
    let opened = flow
        .op(json!({"version": "1", "op": "openSession", "paymentSessionId": "ps-upto-pool",
            "userId": "user-alice", "limit": "10.00", "expiresAt": SESSION_EXPIRES_AT, "pool": "monthly"}))
        .await;
    assert_eq!(opened["ok"], true, "{opened}");
    // GIVEN a SENT $2.00 upto hold on the pooled session, which then closes ($8 goes back)
    sent_upto(&flow, &pid(9), "2000000", "ps-upto-pool").await;
    let closed = flow
        .op(json!({"version": "1", "op": "closeSession", "paymentSessionId": "ps-upto-pool", "reason": "done"}))
        .await;
    assert_eq!(closed["ok"], true, "{closed}");
    let pool_before = store
        .read_pool("user-alice", "monthly")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pool_before.available_micros, 98_000_000);
    // WHEN the merchant settles for $0.50
    let posted = flow
        .op(commit("ps-upto-pool", &pid(9), charged("500000", 9)))
        .await;
    assert_eq!(posted["hold"]["settledMicros"], 500_000, "{posted}");
    // THEN the $1.50 not charged goes back to the pool, and the session adds up
    let pool_after = store
        .read_pool("user-alice", "monthly")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pool_after.available_micros, 99_500_000);
    let s = flow.session("ps-upto-pool").await;
    assert_eq!((s.settled_micros, s.reserved_micros), (500_000, 0));
    assert_invariant(&s);
}

#[tokio::test]
async fn an_upto_payment_is_declined_where_no_policy_allows_the_scheme() {
    // GIVEN the demo policies, which name no schemes
    let flow = Flow::new("upto-no-policy").await;
    // WHEN an upto payment is verified THEN SCHEME_NOT_ALLOWED
    let decided = flow
        .verify
        .handle_json(&upto_event(&pid(10), "1000000", SESSION), "it-upto", NOW)
        .await;
    assert_eq!(decided["reasonCode"], "SCHEME_NOT_ALLOWED", "{decided}");
}
