//! getSession pages through a session's holds: at most 100 per answer, in descending paymentId
//! order, with a `nextCursor` while more follow; the session comes with every page. Against
//! DynamoDB Local.

use std::collections::BTreeSet;

use predebit_core::ledger::port::{read_whole_session, MAX_HOLDS_PER_PAGE};
use predebit_store::items::{pk_sk_key, session_pk};
use predebit_tests::{dynamodb_client_with, fresh_store_with, RequestCounter};
use serde_json::{json, Value};

use crate::common::NOW;
use crate::ledger_flow::{pid, Flow};

const SESSION: &str = "ps-pages";
const MERCHANT: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
/// A page of 100 holds, each as large as the ledger makes one (signed terms and settlement),
/// stays below this: 1/24 of Lambda's 6 MB response limit.
const MAX_PAGE_BYTES: usize = 256 * 1024;

/// A seeded flow whose DynamoDB client counts requests, with an empty 25.00 session.
async fn counted_flow(name: &str) -> (Flow, RequestCounter) {
    let counter = RequestCounter::default();
    let client = dynamodb_client_with({
        let c = counter.clone();
        move |b| b.interceptor(c)
    })
    .await;
    let flow = Flow::over(fresh_store_with(name, client).await).await;
    let opened = flow
        .op(
            json!({"version": "1", "op": "openSession", "paymentSessionId": SESSION,
            "userId": "user-alice", "limit": "25.00", "expiresAt": 4_102_444_800u64}),
        )
        .await;
    assert_eq!(opened["ok"], true, "{opened}");
    (flow, counter)
}

/// Reserves `count` holds of 0.01 (paymentIds pid(first..)); returns the last hold token.
async fn reserve_holds(flow: &Flow, first: u64, count: u64) -> String {
    let mut hold_token = String::new();
    for n in first..first + count {
        let token = flow.approve(&pid(n), "10000", SESSION).await;
        let reserved = flow
            .op(json!({"version": "1", "op": "reserve", "decisionToken": token}))
            .await;
        assert_eq!(reserved["ok"], true, "{reserved}");
        hold_token = reserved["holdToken"].as_str().unwrap().to_string();
    }
    hold_token
}

fn get_session(hold_token: &str, extra: Value) -> Value {
    let mut event = json!({"version": "1", "op": "getSession", "paymentSessionId": SESSION,
        "holdToken": hold_token});
    for (k, v) in extra.as_object().unwrap() {
        event[k] = v.clone();
    }
    event
}

fn payment_ids(answer: &Value) -> Vec<String> {
    answer["holds"]
        .as_array()
        .unwrap_or_else(|| panic!("no holds: {answer}"))
        .iter()
        .map(|h| h["paymentId"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn get_session_pages_through_250_holds_each_exactly_once_with_the_cursor() {
    // GIVEN a session with 250 holds
    let (flow, counter) = counted_flow("pages-250").await;
    let hold_token = reserve_holds(&flow, 1, 250).await;

    // WHEN getSession is called with each answer's nextCursor until there is none
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let extra = cursor.as_ref().map_or(json!({}), |c| json!({"cursor": c}));
        let before = counter.sent();
        let answer = flow.op(get_session(&hold_token, extra)).await;
        let requests = counter.sent() - before;
        assert_eq!(answer["ok"], true, "{answer}");
        // (the session comes with every page)
        assert_eq!(answer["session"]["reservedMicros"], 2_500_000, "{answer}");
        let ids = payment_ids(&answer);
        pages.push((ids.len(), requests));
        seen.extend(ids);
        match answer["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }

    // THEN three pages of 100, 100 and 50 hold every hold once, in descending paymentId order;
    // the first page is one Query (the session with it), later ones a Query each for the
    // session and the holds
    assert_eq!(pages, vec![(100, 1), (100, 2), (50, 2)]);
    let expected: Vec<String> = (1..=250).rev().map(pid).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_page_of_100_settled_holds_stays_far_below_the_lambda_response_limit() {
    // GIVEN 101 holds, each signed and settled with a payer and a reported amount
    let (flow, _) = counted_flow("pages-size").await;
    let mut hold_token = String::new();
    for n in 1..=101 {
        hold_token = reserve_holds(&flow, n, 1).await;
        let sent = flow
            .op(json!({"version": "1", "op": "markSent", "paymentSessionId": SESSION, "paymentId": pid(n),
                "signed": {"to": MERCHANT, "value": "10000", "network": "eip155:8453",
                    "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "validBefore": NOW + 60}}))
            .await;
        assert_eq!(sent["ok"], true, "{sent}");
        let committed = flow
            .op(json!({"version": "1", "op": "commit", "paymentSessionId": SESSION, "paymentId": pid(n),
                "settlement": {"success": true, "transaction": format!("0x{}", "cd".repeat(32)),
                    "network": "base", "payer": "0x857b06519E91e3A54538791bDbb0E22373e36b66",
                    "amount": "10000"}}))
            .await;
        assert_eq!(committed["hold"]["state"], "POSTED", "{committed}");
    }

    // WHEN the first page is read
    let answer = flow.op(get_session(&hold_token, json!({}))).await;

    // THEN it holds 100 of them, says more follow, and is far below the limit
    let bytes = answer.to_string().len();
    eprintln!("a getSession page of 100 settled holds: {bytes} bytes");
    assert_eq!(payment_ids(&answer).len(), MAX_HOLDS_PER_PAGE);
    assert!(answer["nextCursor"].is_string(), "{answer}");
    assert!(bytes <= MAX_PAGE_BYTES, "{bytes} bytes");
}

#[tokio::test]
async fn page_size_asks_for_fewer_holds_and_a_page_that_ends_the_session_has_no_cursor() {
    // GIVEN a session with 5 holds
    let (flow, _) = counted_flow("pages-size-5").await;
    let hold_token = reserve_holds(&flow, 1, 5).await;

    // WHEN read 2 at a time THEN pages of 2, 2 and 1, the last without a cursor
    let mut sizes = Vec::new();
    let mut cursor = None;
    loop {
        let mut extra = json!({"pageSize": 2});
        if let Some(c) = &cursor {
            extra["cursor"] = json!(c);
        }
        let answer = flow.op(get_session(&hold_token, extra)).await;
        sizes.push(payment_ids(&answer).len());
        match answer["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(sizes, vec![2, 2, 1]);

    // AND a page exactly as large as what is left needs no empty page after it
    let answer = flow
        .op(get_session(&hold_token, json!({"pageSize": 5})))
        .await;
    assert_eq!(payment_ids(&answer).len(), 5);
    assert!(answer.get("nextCursor").is_none(), "{answer}");
}

#[tokio::test]
async fn a_page_size_out_of_range_is_invalid_request_naming_the_field() {
    let (flow, _) = counted_flow("pages-bad-size").await;
    let hold_token = reserve_holds(&flow, 1, 1).await;
    for bad in [
        json!(0),
        json!(101),
        json!(-1),
        json!(2.5),
        json!("10"),
        json!([10]),
    ] {
        let answer = flow
            .op(get_session(&hold_token, json!({"pageSize": bad})))
            .await;
        assert_eq!(answer["reasonCode"], "INVALID_REQUEST", "{bad}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .ends_with("(pageSize: must be an integer from 1 to 100)"),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn a_malformed_cursor_is_invalid_request_naming_the_field_and_never_echoed() {
    let (flow, _) = counted_flow("pages-bad-cursor").await;
    let hold_token = reserve_holds(&flow, 1, 1).await;
    let marker = "QZXcursor7f3a \"'";
    for bad in [
        json!("abc"),
        json!("AB".repeat(32)),
        json!("a".repeat(63)),
        json!("a".repeat(65)),
        json!(format!("HOLD#{}", "a".repeat(64))),
        json!(marker),
        json!(42),
        json!({"paymentId": pid(1)}),
    ] {
        let answer = flow
            .op(get_session(&hold_token, json!({"cursor": bad})))
            .await;
        assert_eq!(answer["reasonCode"], "INVALID_REQUEST", "{bad}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.ends_with("(cursor: must be the nextCursor a getSession answer returned)"),
            "{answer}"
        );
        assert!(!answer.to_string().contains("QZXcursor"), "{answer}");
    }
}

#[tokio::test]
async fn a_forged_cursor_only_skips_holds_of_the_session_it_is_used_on() {
    // GIVEN a session with 3 holds (pid 1..3) and Alice's main session with another hold
    let (flow, _) = counted_flow("pages-forged-cursor").await;
    let hold_token = reserve_holds(&flow, 1, 3).await;
    let other = flow.approve(&pid(9), "10000", "ps-alice-main").await;
    let reserved = flow
        .op(json!({"version": "1", "op": "reserve", "decisionToken": other}))
        .await;
    assert_eq!(reserved["ok"], true, "{reserved}");

    // WHEN cursors this session never returned are passed
    let flow = &flow;
    let below = |cursor: String| {
        let event = get_session(&hold_token, json!({"cursor": cursor}));
        async move {
            let answer = flow.op(event).await;
            assert_eq!(answer["ok"], true, "{answer}");
            assert_eq!(answer["session"]["paymentSessionId"], SESSION);
            payment_ids(&answer)
        }
    };

    // THEN each reads this session's holds below it, and never another session's
    assert_eq!(below(pid(2)).await, vec![pid(1)]);
    assert_eq!(below(pid(9)).await, vec![pid(3), pid(2), pid(1)]);
    assert_eq!(below("f".repeat(64)).await, vec![pid(3), pid(2), pid(1)]);
    assert_eq!(below("0".repeat(64)).await, Vec::<String>::new());
}

#[tokio::test]
async fn reading_a_whole_session_follows_every_page_to_the_end() {
    // GIVEN a session with 201 holds (three pages)
    let (flow, _) = counted_flow("pages-whole").await;
    reserve_holds(&flow, 1, 201).await;
    let store = flow.ledger.ledger().store();

    // WHEN it is read whole
    let whole = read_whole_session(store, SESSION).await.unwrap().unwrap();

    // THEN every hold is there once, from three pages, and nothing changed meanwhile
    let ids: BTreeSet<String> = whole.holds.iter().map(|h| h.payment_id.clone()).collect();
    assert_eq!((whole.holds.len(), ids.len(), whole.pages), (201, 201, 3));
    assert!(!whole.session_changed);
    assert_eq!(whole.session.reserved_micros, 2_010_000);
}

#[tokio::test]
async fn an_item_of_another_kind_in_the_session_partition_is_neither_a_hold_nor_counted() {
    // GIVEN a session with 3 holds and, between its holds and the session item in key order,
    // an item of some other kind (`NOTE#1`)
    let (flow, _) = counted_flow("pages-other-item").await;
    let hold_token = reserve_holds(&flow, 1, 3).await;
    let store = flow.ledger.ledger().store();
    store
        .client()
        .put_item()
        .table_name(&store.tables().ledger)
        .set_item(Some(pk_sk_key(session_pk(SESSION), "NOTE#1")))
        .send()
        .await
        .expect("the raw put succeeds");

    // WHEN read two holds at a time
    let first = flow
        .op(get_session(&hold_token, json!({"pageSize": 2})))
        .await;
    let second = flow
        .op(get_session(
            &hold_token,
            json!({"pageSize": 2, "cursor": first["nextCursor"]}),
        ))
        .await;

    // THEN the pages are the holds alone
    assert_eq!(payment_ids(&first), vec![pid(3), pid(2)], "{first}");
    assert_eq!(payment_ids(&second), vec![pid(1)], "{second}");
    assert!(second.get("nextCursor").is_none(), "{second}");
}
