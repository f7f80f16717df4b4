//! Ledger throughput against DynamoDB Local: a payment's normal path through the ledger (reserve,
//! markSent, commit), next to the floor it cannot beat: the same three writes (the seven-part
//! reserve TransactWriteItems, markSent's conditional UpdateItem, the two-part post) sent bare
//! with the same client.
//!
//! Both loops run the same number of operations in flight, in alternating rounds, each op on one
//! of eight sessions (sessions scale out; one session is one partition). Prints ops/s, p50/p99
//! and the ratio ledger/bare; asserts nothing about time.
//!
//! `cargo bench -p predebit-tests --bench ledger_throughput`
//! Tunable: `PREDEBIT_BENCH_OPS` (default 12000: 24 rounds), `PREDEBIT_BENCH_WARM_UP` (default 1000),
//! `PREDEBIT_BENCH_CONCURRENCY` (default 8).

use std::sync::Arc;

use predebit_core::keys::KeyRing;
use predebit_core::ledger::{AllowedOps, LedgerConfig};
use predebit_core::token::{issue, TokenClaims};
use predebit_ledger::LedgerService;
use predebit_store::secrets::KeySource;
use predebit_store::seed;
use predebit_tests::bench::bare::{self, BareLedger, USER};
use predebit_tests::bench::Comparison;
use predebit_tests::{fresh_store, repo_root};
use predebit_verify::now_epoch_seconds;
use serde_json::json;

const SESSIONS: usize = 8;
const AMOUNT: u64 = 10_000;

fn session_id(i: usize) -> String {
    format!("bench-s{}", i % SESSIONS)
}

fn claims(i: usize, now: u64) -> TokenClaims {
    bare::claims(i, &session_id(i), AMOUNT, now)
}

/// The ledger's three writes for payment `i` (reserve, markSent, post), sent bare.
struct Bare {
    ledger: BareLedger,
    tokens: Arc<Vec<String>>,
}

impl Bare {
    async fn reserve_and_post(&self, i: usize) {
        let payment_id = format!("bare{i:060x}");
        let claims = claims(i, 0);
        self.ledger
            .reserve(&claims, &self.tokens[i], &payment_id)
            .await;
        let nonce = format!("0x{i:064x}");
        self.ledger.mark_sent(&claims, &payment_id, &nonce).await;
        self.ledger.post(&claims, &payment_id, "SENT").await;
    }
}

fn main() {
    let comparison = Comparison::from_env("ledger", 12000, 1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let store = fresh_store("ledger_throughput").await;
        let seed_text = std::fs::read_to_string(repo_root().join("infra/seed/demo.json")).expect("seed");
        seed::apply(&store, &seed::parse(&seed_text).expect("seed parses")).await.expect("seed applies");
        let ring = KeyRing::from_secret_json(&KeyRing::new_secret_json("k1", &[7u8; 32], &[9u8; 32])).expect("ring");
        let now = now_epoch_seconds();
        let config = LedgerConfig { allowed: AllowedOps::parse("all").expect("ops"), ..LedgerConfig::default() };
        let ledger = Arc::new(LedgerService::new(store.clone(), config, KeySource::fixed(ring.clone()))
            .with_metrics_sink(Box::new(|_| {})));
        for i in 0..SESSIONS {
            let opened = ledger
                .handle(&json!({"version": "1", "op": "openSession", "paymentSessionId": session_id(i),
                    "userId": USER, "limit": "1000000.00", "expiresAt": now + 86_400}), now)
                .await;
            assert_eq!(opened["ok"], true, "{opened}");
        }
        let total = comparison.warm_up_ops + comparison.ops + comparison.round_ops;
        let tokens: Arc<Vec<String>> = Arc::new((0..total).map(|i| issue(&claims(i, now), &ring)).collect());
        let bare = Arc::new(Bare { ledger: BareLedger { client: store.client().clone(), store, ring: ring.clone() }, tokens: tokens.clone() });
        let offset = Arc::new(std::sync::atomic::AtomicUsize::new(0));

        let ledger_op = {
            let (ledger, tokens, offset) = (ledger.clone(), tokens.clone(), offset.clone());
            move |_: usize| {
                let (ledger, tokens) = (ledger.clone(), tokens.clone());
                let i = offset.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async move {
                    let reserved = ledger.handle(&json!({"version": "1", "op": "reserve", "decisionToken": tokens[i]}), now).await;
                    assert_eq!(reserved["ok"], true, "{reserved}");
                    let (session, payment) = (session_id(i), format!("{i:064x}"));
                    let c = claims(i, now);
                    let sent = ledger
                        .handle(&json!({"version": "1", "op": "markSent", "paymentSessionId": session,
                            "paymentId": payment, "holdToken": reserved["holdToken"],
                            "signed": {"to": c.pay_to, "value": c.amount_atomic, "network": c.network,
                                "asset": c.asset, "validBefore": c.issued_at + 60,
                                "nonce": format!("0x{i:064x}")}}), now)
                        .await;
                    assert_eq!(sent["ok"], true, "{sent}");
                    let settlement = json!({"success": true, "transaction": format!("0x{:064x}", i), "network": "eip155:8453"});
                    let committed = ledger
                        .handle(&json!({"version": "1", "op": "commit", "paymentSessionId": session,
                            "paymentId": payment, "amountMicros": AMOUNT, "settlement": settlement,
                            "holdToken": reserved["holdToken"]}), now)
                        .await;
                    assert_eq!(committed["ok"], true, "{committed}");
                }
            }
        };
        let bare_offset = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let bare_op = move |_: usize| {
            let bare = bare.clone();
            let i = bare_offset.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move { bare.reserve_and_post(i).await }
        };

        println!("ledger_throughput: reserve + markSent + commit, DynamoDB Local, {SESSIONS} sessions");
        comparison.run(ledger_op, bare_op).await;
    });
}
