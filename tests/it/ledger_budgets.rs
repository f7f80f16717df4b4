//! Budgets across sessions on DynamoDB Local: counted in the reserve transaction, returned on
//! void, kept on commit, read by verify in its one BatchGetItem, never passed by concurrent
//! reserves on many sessions.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use predebit_core::budget::{counter_keys, BudgetClaim, BudgetScope, BudgetWindow, CounterKey};
use predebit_store::dynamodb::PolicyScope;
use predebit_store::DynamoStore;
use predebit_tests::{dynamodb_client_with, fresh_store_with, RequestCounter};
use serde_json::{json, Value};

use crate::common::NOW;
use crate::ledger_flow::{assert_invariant, pid, Flow};
use crate::ledger_race::open_session;

const MERCHANT: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const SESSION_EXPIRES_AT: u64 = 4_102_444_800;

fn store(flow: &Flow) -> &DynamoStore {
    flow.ledger.ledger().store()
}

/// Gives user-alice the demo's $5 cap plus `budgets` (JSON list) in `timezone`.
async fn alice_budgets(flow: &Flow, budgets: Value, timezone: &str) {
    let doc = json!({"maxPerPayment": "5.00", "timezone": timezone, "budgets": budgets});
    store(flow)
        .put_policy(&PolicyScope::User("user-alice".into()), &doc.to_string())
        .await
        .unwrap();
}

fn reserve(token: &str) -> Value {
    json!({"version": "1", "op": "reserve", "decisionToken": token})
}

fn mark_sent(session: &str, payment_id: &str, atomic: &str, valid_before: u64) -> Value {
    json!({"version": "1", "op": "markSent", "paymentSessionId": session, "paymentId": payment_id,
        "signed": {"to": MERCHANT, "value": atomic, "network": "eip155:8453", "validBefore": valid_before}})
}

fn commit(session: &str, payment_id: &str, n: u64) -> Value {
    json!({"version": "1", "op": "commit", "paymentSessionId": session, "paymentId": payment_id,
        "settlement": {"success": true, "transaction": format!("0x{n:064x}"), "network": "base"}})
}

/// (spentMicros, paymentCount) of a counter, (0, 0) when absent.
pub(crate) async fn counter(flow: &Flow, key: &CounterKey) -> (i64, i64) {
    let out = store(flow)
        .client()
        .get_item()
        .table_name(&store(flow).tables().ledger)
        .key("pk", AttributeValue::S(key.pk.clone()))
        .key("sk", AttributeValue::S(key.sk.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let number = |name: &str| {
        out.item()
            .and_then(|i| i.get(name))
            .and_then(|v| v.as_n().ok())
            .map_or(0, |n| n.parse().unwrap())
    };
    (number("spentMicros"), number("paymentCount"))
}

async fn counters(flow: &Flow, keys: &[CounterKey]) -> Vec<(i64, i64)> {
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        out.push(counter(flow, key).await);
    }
    out
}

pub(crate) fn day_key(now: u64, timezone: &str) -> CounterKey {
    let claim = BudgetClaim {
        scope: BudgetScope::User,
        window: BudgetWindow::Day,
        timezone: timezone.into(),
        amount_micros: Some(1),
        count: None,
    };
    counter_keys(&[claim], "user-alice", "agent-research", now).remove(0)
}

#[tokio::test]
async fn a_daily_budget_stops_a_second_session_at_reserve_and_warm_verify_declines_it_early() {
    // GIVEN alice's daily budget of $3 and two of her sessions, and a decision for $1.50 on the
    // second made while nothing was spent yet
    let flow = Flow::new("budget-day").await;
    alice_budgets(
        &flow,
        json!([{"window": "day", "amountUsd": "3.00"}]),
        "UTC",
    )
    .await;
    open_session(&flow, "ps-alice-b", "25.00").await;
    let early = flow.approve(&pid(1), "1500000", "ps-alice-b").await;

    // WHEN $2 is paid on the first session
    let first = flow.approve(&pid(2), "2000000", "ps-alice-main").await;
    assert_eq!(flow.op(reserve(&first)).await["ok"], true);
    let sent = flow
        .op(mark_sent("ps-alice-main", &pid(2), "2000000", NOW + 60))
        .await;
    assert_eq!(sent["ok"], true, "{sent}");
    assert_eq!(
        flow.op(commit("ps-alice-main", &pid(2), 2)).await["ok"],
        true
    );
    assert_eq!(counter(&flow, &day_key(NOW, "UTC")).await, (2_000_000, 1));

    // THEN the earlier decision cannot reserve on the second session: nothing changes there
    let refused = flow.op(reserve(&early)).await;
    assert_eq!(refused["reasonCode"], "BUDGET_EXCEEDED", "{refused}");
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("the user's day budget"));
    let b = flow.session("ps-alice-b").await;
    assert_eq!((b.available_micros, b.reserved_micros), (25_000_000, 0));
    assert_eq!(counter(&flow, &day_key(NOW, "UTC")).await, (2_000_000, 1));

    // AND a warm verify reads the counter and declines the same payment early
    let again = flow
        .verify
        .handle_json(
            &crate::ledger_flow::sample_verify_event(&pid(3), "1500000", "ps-alice-b"),
            "it",
            NOW,
        )
        .await;
    assert_eq!(again["reasonCode"], "BUDGET_EXCEEDED", "{again}");

    // AND exactly the rest of the day's budget still fits
    let rest = flow.approve(&pid(4), "1000000", "ps-alice-b").await;
    assert_eq!(flow.op(reserve(&rest)).await["ok"], true);
    assert_eq!(counter(&flow, &day_key(NOW, "UTC")).await, (3_000_000, 2));

    // AND the next day counts afresh
    let tomorrow = NOW + 86_400;
    let next = flow
        .approve_at(&pid(5), "2000000", "ps-alice-b", tomorrow)
        .await;
    assert_eq!(flow.op_at(reserve(&next), tomorrow + 1).await["ok"], true);
    assert_eq!(
        counter(&flow, &day_key(tomorrow, "UTC")).await,
        (2_000_000, 1)
    );
}

#[tokio::test]
async fn a_yes_that_takes_a_budget_past_the_alert_threshold_raises_limit_nearly_reached() {
    // GIVEN $2 of alice's daily $3 spent, and a verify container that knows her budget and
    // reports its metric lines
    let flow = Flow::new("budget-alert").await;
    alice_budgets(
        &flow,
        json!([{"window": "day", "amountUsd": "3.00"}]),
        "UTC",
    )
    .await;
    let first = flow.approve(&pid(41), "2000000", "ps-alice-main").await;
    assert_eq!(flow.op(reserve(&first)).await["ok"], true);
    let lines: crate::common::Captured = Default::default();
    let sink = lines.clone();
    let verify = predebit_verify::VerifyService::new(
        store(&flow).clone(),
        predebit_store::secrets::KeySource::fixed(crate::common::test_keys()),
    )
    .with_audit_sink(Box::new(|_| {}))
    .with_metrics_sink(Box::new(move |line| {
        sink.lock().unwrap().push(line.to_string())
    }))
    .with_alert_percent(80);
    let event =
        |n, atomic: &str| crate::ledger_flow::sample_verify_event(&pid(n), atomic, "ps-alice-main");
    // The first decision is cold (it learns the budget); the second reads the counter and
    // takes the day from 70% to 73%: no alert yet.
    verify
        .handle_json(&event(42, "100000"), "warm-up", NOW)
        .await;
    verify.handle_json(&event(44, "100000"), "warm", NOW).await;
    let alerts = |lines: &crate::common::Captured| -> Vec<String> {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("LimitNearlyReached"))
            .cloned()
            .collect()
    };
    assert!(alerts(&lines).is_empty(), "$2.10 of $3 is below 80%");
    // WHEN a payment of $0.50 would take the day to $2.50 (83%)
    let answer = verify.handle_json(&event(43, "500000"), "alert", NOW).await;
    assert_eq!(answer["decision"], "YES", "{answer}");
    // THEN one LimitNearlyReached names the user's day budget, and nothing else
    let raised = alerts(&lines);
    assert_eq!(raised.len(), 1, "{raised:?}");
    let line: Value = serde_json::from_str(&raised[0]).unwrap();
    assert_eq!(line["Limit"], "user:day");
    assert!(!raised[0].contains("user-alice"));
}

#[tokio::test]
async fn a_void_returns_the_amount_to_every_counter_and_a_commit_keeps_it() {
    // GIVEN a daily amount, a weekly count and a rolling hour on alice, in Paris
    let flow = Flow::new("budget-void").await;
    alice_budgets(
        &flow,
        json!([{"window": "day", "amountUsd": "4.00"}, {"window": "week", "count": 10},
               {"window": {"rollingSeconds": 3600}, "amountUsd": "4.00"}]),
        "Europe/Paris",
    )
    .await;
    let claims = vec![
        BudgetClaim {
            scope: BudgetScope::User,
            window: BudgetWindow::Day,
            timezone: "Europe/Paris".into(),
            amount_micros: Some(1),
            count: None,
        },
        BudgetClaim {
            scope: BudgetScope::User,
            window: BudgetWindow::Week,
            timezone: "Europe/Paris".into(),
            amount_micros: None,
            count: Some(1),
        },
        BudgetClaim {
            scope: BudgetScope::User,
            window: BudgetWindow::Rolling(3600),
            timezone: "Europe/Paris".into(),
            amount_micros: Some(1),
            count: None,
        },
    ];
    let keys = counter_keys(&claims, "user-alice", "agent-research", NOW + 1);
    assert_eq!(keys.len(), 7);
    // WHEN $2 is reserved THEN every counter holds it
    let t1 = flow.approve(&pid(11), "2000000", "ps-alice-main").await;
    let held = flow.op(reserve(&t1)).await;
    assert_eq!(held["ok"], true, "{held}");
    assert!(counters(&flow, &keys)
        .await
        .iter()
        .all(|c| *c == (2_000_000, 1)));

    // WHEN it is released with the amount given (the path that reads nothing first)
    let released = flow
        .op(
            json!({"version": "1", "op": "release", "paymentSessionId": "ps-alice-main",
            "paymentId": pid(11), "reason": "NOT_SENT", "amountMicros": 2_000_000}),
        )
        .await;
    assert_eq!(released["ok"], true, "{released}");
    // THEN every counter is back to nothing
    assert!(
        counters(&flow, &keys).await.iter().all(|c| *c == (0, 0)),
        "{:?}",
        counters(&flow, &keys).await
    );

    // WHEN $3 is reserved and expires unsent THEN it is returned too
    let t2 = flow.approve(&pid(12), "3000000", "ps-alice-main").await;
    assert_eq!(flow.op(reserve(&t2)).await["ok"], true);
    let expired = flow
        .op_at(json!({"version": "1", "op": "expire"}), NOW + 1000)
        .await;
    assert_eq!(expired["expired"]["pending"], 1, "{expired}");
    assert!(counters(&flow, &keys).await.iter().all(|c| *c == (0, 0)));

    // WHEN $1.25 is reserved, sent and committed THEN it stays counted
    let t3 = flow.approve(&pid(13), "1250000", "ps-alice-main").await;
    assert_eq!(flow.op(reserve(&t3)).await["ok"], true);
    assert_eq!(
        flow.op(mark_sent("ps-alice-main", &pid(13), "1250000", NOW + 60))
            .await["ok"],
        true
    );
    assert_eq!(
        flow.op(commit("ps-alice-main", &pid(13), 13)).await["ok"],
        true
    );
    assert!(counters(&flow, &keys)
        .await
        .iter()
        .all(|c| *c == (1_250_000, 1)));
    assert_invariant(&flow.session("ps-alice-main").await);
}

#[tokio::test]
async fn a_late_settlement_after_expiry_is_counted_again() {
    // GIVEN a $2 payment on a daily budget, sent, then expired unsettled
    let flow = Flow::new("budget-late").await;
    alice_budgets(
        &flow,
        json!([{"window": "day", "amountUsd": "3.00"}]),
        "UTC",
    )
    .await;
    let t = flow.approve(&pid(21), "2000000", "ps-alice-main").await;
    assert_eq!(flow.op(reserve(&t)).await["ok"], true);
    assert_eq!(
        flow.op(mark_sent("ps-alice-main", &pid(21), "2000000", NOW + 60))
            .await["ok"],
        true
    );
    let expired = flow
        .op_at(json!({"version": "1", "op": "expire"}), NOW + 600)
        .await;
    assert_eq!(expired["expired"]["sent"], 1, "{expired}");
    assert_eq!(counter(&flow, &day_key(NOW, "UTC")).await, (0, 0));
    // WHEN its settlement arrives after all THEN it is counted: it was paid
    let late = flow
        .op_at(commit("ps-alice-main", &pid(21), 21), NOW + 700)
        .await;
    assert_eq!(late["ok"], true, "{late}");
    assert_eq!(late["hold"]["late"], true);
    assert_eq!(counter(&flow, &day_key(NOW, "UTC")).await, (2_000_000, 1));
}

#[tokio::test]
async fn of_thirty_concurrent_reserves_on_six_sessions_the_daily_count_lets_exactly_five_hold() {
    // GIVEN at most 5 payments a day for alice, six sessions, five decisions on each
    let flow = Arc::new(Flow::new("budget-race").await);
    alice_budgets(&flow, json!([{"window": "day", "count": 5}]), "UTC").await;
    let mut tokens = Vec::new();
    for s in 0..6u64 {
        let session = format!("ps-alice-race-{s}");
        open_session(&flow, &session, "25.00").await;
        for p in 0..5u64 {
            tokens.push(
                flow.approve(&pid(100 + s * 10 + p), "100000", &session)
                    .await,
            );
        }
    }
    // WHEN all reserve at once
    let barrier = Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let handles: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let (flow, barrier) = (flow.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                loop {
                    let answer = flow.op(reserve(&token)).await;
                    if answer["reasonCode"] != "STORE_CONFLICT" {
                        return answer;
                    }
                }
            })
        })
        .collect();
    let mut held = 0;
    for h in handles {
        let answer = h.await.unwrap();
        match answer["ok"].as_bool() {
            Some(true) => held += 1,
            _ => assert_eq!(answer["reasonCode"], "BUDGET_EXCEEDED", "{answer}"),
        }
    }
    // THEN exactly five hold, and the counter says five
    assert_eq!(held, 5);
    assert_eq!(counter(&flow, &day_key(NOW, "UTC")).await, (500_000, 5));
    let reserved: u64 = {
        let mut sum = 0;
        for s in 0..6 {
            let session = flow.session(&format!("ps-alice-race-{s}")).await;
            assert_invariant(&session);
            sum += session.reserved_micros;
        }
        sum
    };
    assert_eq!(reserved, 500_000);
}

#[tokio::test]
async fn verify_with_budget_counters_is_still_exactly_one_dynamodb_request() {
    // GIVEN a store that counts requests and alice with three budgets (seven counters)
    let counter = RequestCounter::default();
    let client = dynamodb_client_with({
        let c = counter.clone();
        move |b| b.interceptor(c)
    })
    .await;
    let flow = Flow::over(fresh_store_with("budget-count", client).await).await;
    alice_budgets(
        &flow,
        json!([{"window": "day", "amountUsd": "4.00"}, {"window": "month", "count": 10},
               {"window": {"rollingSeconds": 600}, "count": 3}]),
        "America/New_York",
    )
    .await;
    let event = crate::ledger_flow::sample_verify_event(&pid(31), "1000000", "ps-alice-main");
    // WHEN a container decides twice (the second with the counters it now knows of)
    for _ in 0..2 {
        let before = counter.sent();
        let answer = flow.verify.handle_json(&event, "it", NOW).await;
        assert_eq!(answer["decision"], "YES", "{answer}");
        // THEN each decision is one request
        assert_eq!(counter.sent() - before, 1);
    }
    // AND the reserve is still one request
    let token = flow.approve(&pid(32), "1000000", "ps-alice-main").await;
    let before = counter.sent();
    assert_eq!(flow.op(reserve(&token)).await["ok"], true);
    assert_eq!(counter.sent() - before, 1);
}

// ---------------------------------------------------------------------------------------------
// Property: concurrent reserves across sessions, voids and commits interleaved, clocks crossing
// local midnight and a DST change: the counted spend never exceeds a budget, and every counter
// is exactly the sum of the holds not voided that it counts.
// ---------------------------------------------------------------------------------------------

mod property {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};

    use predebit_core::hold::{Hold, HoldState};
    use predebit_core::ledger::port::read_whole_session;
    use predebit_store::seed;
    use proptest::prelude::*;

    use super::*;
    use crate::common::proptest_cases;

    /// The start of Paris's 23-hour day (2027-03-28) and 25-hour day (2027-10-31), UTC.
    const DST_DAYS: [u64; 2] = [1_806_188_400, 1_824_933_600];
    const DAY_MICROS: u64 = 3_000_000;
    const ROLLING_COUNT: usize = 3;
    const AMOUNTS: [u64; 4] = [500_000, 1_000_000, 1_500_000, 2_000_000];
    const SESSIONS: usize = 3;

    #[derive(Clone, Copy, Debug)]
    enum Resolve {
        Release,
        Commit,
        Leave,
    }

    /// One ledger or verify action of a step, run beside the others.
    type Step<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

    #[derive(Clone, Debug)]
    struct Moment {
        advance: u64,
        reserves: Vec<(usize, usize)>,
        resolutions: Vec<(usize, Resolve)>,
    }

    #[derive(Clone, Debug)]
    struct Schedule {
        before_midnight: u64,
        steps: Vec<Moment>,
    }

    fn schedule() -> impl Strategy<Value = Schedule> {
        let resolve = prop_oneof![
            Just(Resolve::Release),
            Just(Resolve::Commit),
            Just(Resolve::Leave)
        ];
        let step = (
            0u64..5400,
            proptest::collection::vec((0..SESSIONS, 0..AMOUNTS.len()), 1..=4),
            proptest::collection::vec((0usize..8, resolve), 0..=3),
        )
            .prop_map(|(advance, reserves, resolutions)| Moment {
                advance,
                reserves,
                resolutions,
            });
        (0u64..6 * 3600, proptest::collection::vec(step, 1..=10)).prop_map(
            |(before_midnight, steps)| Schedule {
                before_midnight,
                steps,
            },
        )
    }

    /// A fresh agent of alice's with the budgets on its own policy, so cases do not share
    /// counters; its sessions.
    async fn agent_for(flow: &Flow, case: u64) -> (String, Vec<String>) {
        let agent = format!("agent-budget-{case}");
        let sessions: Vec<String> = (0..SESSIONS)
            .map(|i| format!("ps-budget-{case}-{i}"))
            .collect();
        let text = json!({
            "policies": [{"scope": "agent", "agentId": agent, "document": {
                "timezone": "Europe/Paris",
                "budgets": [{"window": "day", "amountUsd": "3.00"},
                            {"window": {"rollingSeconds": 3600}, "count": ROLLING_COUNT}]}}],
            "agents": [{"agentId": agent, "userId": "user-alice", "status": "ACTIVE"}],
            "consents": [{"userId": "user-alice", "agentId": agent, "status": "GRANTED"}],
            "sessions": sessions.iter().map(|s| json!({"paymentSessionId": s, "userId": "user-alice",
                "limit": "25.00", "expiresAt": SESSION_EXPIRES_AT})).collect::<Vec<_>>(),
        })
        .to_string();
        seed::apply(store(flow), &seed::parse(&text).unwrap())
            .await
            .unwrap();
        (agent, sessions)
    }

    async fn run(flow: &Flow, case: u64, schedule: &Schedule) {
        let (agent, sessions) = agent_for(flow, case).await;
        let mut now = DST_DAYS[(case % 2) as usize] - schedule.before_midnight;
        let mut next_payment = case * 1_000;
        for step in &schedule.steps {
            now += step.advance;
            // Due holds are voided first, so the resolutions below act on holds still open.
            let expired = flow
                .op_at(json!({"version": "1", "op": "expire"}), now)
                .await;
            assert_eq!(expired["ok"], true, "{expired}");
            let open = open_holds(flow, &sessions).await;
            let resolutions = step.resolutions.iter().filter_map(|(i, how)| {
                let hold = open.get(i % open.len().max(1))?;
                Some(resolve(flow, hold, *how, now))
            });
            let reserves = step.reserves.iter().map(|(s, a)| {
                next_payment += 1;
                reserve_one(flow, &agent, &sessions[*s], next_payment, AMOUNTS[*a], now)
            });
            let mut all: Vec<Step<'_>> = resolutions.collect();
            all.extend(reserves);
            join_all(all).await;
            check(flow, &sessions).await;
        }
    }

    /// Polls every future together on this task (no spawn: the flow is borrowed).
    async fn join_all(futures: Vec<Step<'_>>) {
        let mut futures: Vec<Option<_>> = futures.into_iter().map(Some).collect();
        std::future::poll_fn(move |cx| {
            let mut pending = false;
            for slot in futures.iter_mut() {
                if let Some(f) = slot {
                    if f.as_mut().poll(cx).is_ready() {
                        *slot = None;
                    } else {
                        pending = true;
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await
    }

    fn reserve_one<'a>(
        flow: &'a Flow,
        agent: &'a str,
        session: &'a str,
        n: u64,
        micros: u64,
        now: u64,
    ) -> Step<'a> {
        Box::pin(async move {
            let mut event =
                crate::ledger_flow::sample_verify_event(&pid(n), &micros.to_string(), session);
            event["agentId"] = json!(agent);
            let decided = flow.verify.handle_json(&event, "it-budget", now).await;
            match decided["decision"].as_str() {
                Some("YES") => {}
                _ => {
                    assert_eq!(decided["reasonCode"], "BUDGET_EXCEEDED", "{decided}");
                    return;
                }
            }
            let token = decided["decisionToken"].as_str().unwrap();
            loop {
                let answer = flow.op_at(reserve(token), now).await;
                match (answer["ok"].as_bool(), answer["reasonCode"].as_str()) {
                    (Some(true), _) | (_, Some("BUDGET_EXCEEDED")) => return,
                    (_, Some("STORE_CONFLICT")) => continue,
                    _ => panic!("reserve: {answer}"),
                }
            }
        })
    }

    fn resolve<'a>(flow: &'a Flow, hold: &'a Hold, how: Resolve, now: u64) -> Step<'a> {
        Box::pin(async move {
            let (session, payment) = (&hold.payment_session_id, &hold.payment_id);
            let event = match how {
                Resolve::Leave => return,
                Resolve::Release => json!({"version": "1", "op": "release",
                    "paymentSessionId": session, "paymentId": payment, "reason": "NOT_SENT",
                    "amountMicros": hold.amount_micros}),
                Resolve::Commit => commit(session, payment, hold.created_at),
            };
            loop {
                let answer = flow.op_at(event.clone(), now).await;
                match (answer["ok"].as_bool(), answer["reasonCode"].as_str()) {
                    (Some(true), _) => return,
                    (_, Some("STORE_CONFLICT")) => continue,
                    // Two resolutions of one hold in a step: the second finds it final.
                    (_, Some("HOLD_ALREADY_POSTED" | "HOLD_ALREADY_VOIDED")) => return,
                    _ => panic!("{how:?}: {answer}"),
                }
            }
        })
    }

    async fn all_holds(flow: &Flow, sessions: &[String]) -> Vec<Hold> {
        let mut holds = Vec::new();
        for s in sessions {
            let whole = read_whole_session(store(flow), s).await.unwrap().unwrap();
            assert_invariant(&whole.session);
            holds.extend(whole.holds);
        }
        holds
    }

    async fn open_holds(flow: &Flow, sessions: &[String]) -> Vec<Hold> {
        let mut holds = all_holds(flow, sessions).await;
        holds.retain(|h| h.state == HoldState::Pending);
        holds.sort_by(|a, b| a.payment_id.cmp(&b.payment_id));
        holds
    }

    async fn check(flow: &Flow, sessions: &[String]) {
        let holds = all_holds(flow, sessions).await;
        let counted: Vec<&Hold> = holds
            .iter()
            .filter(|h| h.state != HoldState::Voided)
            .collect();
        // Every counter is the sum of the holds not voided that it counts.
        let mut expected: BTreeMap<CounterKey, (i64, i64)> = BTreeMap::new();
        for h in &holds {
            for key in &h.budget_counters {
                let e = expected.entry(key.clone()).or_default();
                if h.state != HoldState::Voided {
                    e.0 += h.amount_micros as i64;
                    e.1 += 1;
                }
            }
        }
        for (key, want) in &expected {
            assert_eq!(counter(flow, key).await, *want, "counter {key:?}");
        }
        // No local day holds more than its budget.
        let mut by_day: BTreeMap<String, u64> = BTreeMap::new();
        for h in &counted {
            *by_day
                .entry(day_key(h.created_at, "Europe/Paris").sk)
                .or_default() += h.amount_micros;
        }
        for (day, spent) in &by_day {
            assert!(*spent <= DAY_MICROS, "day {day}: {spent} counted");
        }
        // No 3600 seconds hold more payments than the rolling count.
        let mut times: Vec<u64> = counted.iter().map(|h| h.created_at).collect();
        times.sort_unstable();
        for (i, t) in times.iter().enumerate() {
            let within = times[i..].iter().take_while(|u| **u < t + 3600).count();
            assert!(
                within <= ROLLING_COUNT,
                "{within} payments in the hour from {t}"
            );
        }
    }

    #[test]
    fn concurrent_reserves_across_sessions_never_count_beyond_a_budget_across_midnight_and_dst() {
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let flow = runtime.block_on(Flow::new("budget-model"));
        let cases = AtomicU64::new(0);
        // Each case is up to forty decisions and reserves: a quarter of the usual cases.
        let config = ProptestConfig {
            cases: (proptest_cases() / 4).max(16),
            ..ProptestConfig::default()
        };
        proptest!(config, |(s in schedule())| {
            let case = cases.fetch_add(1, Ordering::SeqCst);
            runtime.block_on(run(&flow, case, &s));
        });
    }
}
