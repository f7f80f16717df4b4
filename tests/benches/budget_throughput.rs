//! Reserve with budgets across sessions against DynamoDB Local: the ledger's reserve of a payment
//! whose decision carries three calendar budgets (day, week, month: three counters in the
//! transaction, ten parts in all), next to the same TransactWriteItems sent bare with the same
//! client.
//!
//! 32 users, each with one session and its own counters (counters are per user: one user's
//! concurrent reserves contend on them, as they must); both loops run the same number of
//! operations in flight, in alternating rounds. Prints ops/s, p50/p99 and the ratio ledger/bare;
//! asserts nothing about time.
//!
//! `scripts/services.sh run cargo bench -p predebit-tests --bench budget_throughput`
//! Tunable: `PREDEBIT_BENCH_OPS` (default 12000), `PREDEBIT_BENCH_WARM_UP` (default 1000),
//! `PREDEBIT_BENCH_CONCURRENCY` (default 8).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use predebit_core::budget::{charges, BudgetClaim, BudgetScope, BudgetWindow};
use predebit_core::keys::KeyRing;
use predebit_core::ledger::{AllowedOps, LedgerConfig};
use predebit_core::token::{issue, TokenClaims};
use predebit_ledger::LedgerService;
use predebit_store::secrets::KeySource;
use predebit_store::seed;
use predebit_tests::bench::bare::{self, BareLedger};
use predebit_tests::bench::Comparison;
use predebit_tests::{fresh_store, repo_root};
use predebit_verify::now_epoch_seconds;
use serde_json::json;

const USERS: usize = 32;
const AMOUNT: u64 = 10_000;

fn user(i: usize) -> String {
    format!("bench-user-{}", i % USERS)
}

fn claims(i: usize, now: u64) -> TokenClaims {
    let k = i % USERS;
    let mut c = bare::claims(i, &format!("bench-b{k}"), AMOUNT, now);
    c.user_id = user(i);
    c.agent_id = format!("bench-agent-{k}");
    c.budgets = [BudgetWindow::Day, BudgetWindow::Week, BudgetWindow::Month]
        .into_iter()
        .map(|window| BudgetClaim {
            scope: BudgetScope::User,
            window,
            timezone: "UTC".into(),
            amount_micros: Some(1_000_000_000_000),
            count: None,
        })
        .collect();
    c
}

/// A user per session: their agent, consent, a budget policy (version 1) and the session.
fn seed_text(now: u64) -> String {
    let budgets = json!({"budgets": [{"window": "day", "amountUsd": "1000000.00"},
        {"window": "week", "amountUsd": "1000000.00"}, {"window": "month", "amountUsd": "1000000.00"}]});
    json!({
        "policies": (0..USERS).map(|k| json!({"scope": "user", "userId": user(k), "document": budgets})).collect::<Vec<_>>(),
        "agents": (0..USERS).map(|k| json!({"agentId": format!("bench-agent-{k}"), "userId": user(k), "status": "ACTIVE"})).collect::<Vec<_>>(),
        "consents": (0..USERS).map(|k| json!({"userId": user(k), "agentId": format!("bench-agent-{k}"), "status": "GRANTED"})).collect::<Vec<_>>(),
        "sessions": (0..USERS).map(|k| json!({"paymentSessionId": format!("bench-b{k}"), "userId": user(k), "limit": "1000000.00", "expiresAt": now + 86_400})).collect::<Vec<_>>(),
    })
    .to_string()
}

fn main() {
    let comparison = Comparison::from_env("ledger", 12000, 1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let store = fresh_store("budget_throughput").await;
        for text in [std::fs::read_to_string(repo_root().join("infra/seed/demo.json")).expect("seed"), seed_text(now_epoch_seconds())] {
            seed::apply(&store, &seed::parse(&text).expect("seed parses")).await.expect("seed applies");
        }
        let ring = KeyRing::from_secret_json(&KeyRing::new_secret_json("k1", &[7u8; 32], &[9u8; 32])).expect("ring");
        let now = now_epoch_seconds();
        let config = LedgerConfig { allowed: AllowedOps::parse("all").expect("ops"), ..LedgerConfig::default() };
        let ledger = Arc::new(LedgerService::new(store.clone(), config, KeySource::fixed(ring.clone()))
            .with_metrics_sink(Box::new(|_| {})));
        let total = comparison.warm_up_ops + comparison.ops + comparison.round_ops;
        let tokens: Arc<Vec<String>> = Arc::new((0..total).map(|i| issue(&claims(i, now), &ring)).collect());
        let bare = Arc::new(BareLedger { client: store.client().clone(), store, ring: ring.clone() });

        let offset = Arc::new(AtomicUsize::new(0));
        let ledger_op = {
            let (ledger, tokens) = (ledger.clone(), tokens.clone());
            move |_: usize| {
                let (ledger, tokens) = (ledger.clone(), tokens.clone());
                let i = offset.fetch_add(1, Ordering::Relaxed);
                async move {
                    let reserved = ledger.handle(&json!({"version": "1", "op": "reserve", "decisionToken": tokens[i]}), now).await;
                    assert_eq!(reserved["ok"], true, "{reserved}");
                }
            }
        };
        let bare_offset = Arc::new(AtomicUsize::new(0));
        let bare_op = move |_: usize| {
            let (bare, tokens) = (bare.clone(), tokens.clone());
            let i = bare_offset.fetch_add(1, Ordering::Relaxed);
            async move {
                let c = claims(i, now);
                let charged = charges(&c.budgets, &c.user_id, &c.agent_id, c.amount_micros, now).expect("charges");
                bare.reserve_charging(&c, &tokens[i], &format!("bare{i:060x}"), &charged).await;
            }
        };

        println!("budget_throughput: reserve with three budget windows (ten-part transaction), DynamoDB Local, {USERS} users");
        comparison.run(ledger_op, bare_op).await;
    });
}
