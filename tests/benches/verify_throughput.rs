//! Verify throughput against DynamoDB Local, next to the floor it cannot beat: the same
//! strongly consistent BatchGetItem of the same six keys, sent bare with the same client.
//!
//! Both loops run with the same number of requests in flight, in alternating rounds so that
//! drift (JIT warm-up of DynamoDB Local, other load on the machine) falls on both alike. Prints
//! ops/s, p50/p99 latency and the ratio verify/bare; asserts nothing about time.
//!
//! `cargo bench -p predebit-tests --bench verify_throughput`
//!
//! Tunable by environment: `PREDEBIT_BENCH_OPS` (per loop, default 75000: 150 rounds),
//! `PREDEBIT_BENCH_WARM_UP` (per loop, default 3000: DynamoDB Local's JVM keeps getting faster
//! for the first few thousand requests, which would hide verify's own cost),
//! `PREDEBIT_BENCH_CONCURRENCY` (default 8), `PREDEBIT_BENCH_SECONDS` (budget for the measured
//! rounds, default 120).

use std::sync::Arc;

use predebit_core::decision::Verdict;
use predebit_core::keys::KeyRing;
use predebit_store::secrets::KeySource;
use predebit_store::seed;
use predebit_tests::bench::bare::BareRead;
use predebit_tests::bench::Comparison;
use predebit_tests::{fresh_store, repo_root};
use predebit_verify::{now_epoch_seconds, VerifyService};
use serde_json::Value;

/// The demo seed has no agent policy for agent-research: five of the six keys exist.
const ITEMS_FOUND: usize = 5;

fn main() {
    let comparison = Comparison::from_env("verify", 75000, 3000);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let store = fresh_store("verify_throughput").await;
        let seed_text = std::fs::read_to_string(repo_root().join("infra/seed/demo.json"))
            .expect("read infra/seed/demo.json");
        let seed_file = seed::parse(&seed_text).expect("demo seed parses");
        seed::apply(&store, &seed_file).await.expect("seed applies");
        let event: Value = serde_json::from_str(
            &std::fs::read_to_string(repo_root().join("events/verify/allow-v1-base-usdc.json"))
                .expect("read the YES event"),
        )
        .expect("event parses");
        let user_id = event["userId"].as_str().expect("userId").to_string();
        let agent_id = event["agentId"].as_str().expect("agentId").to_string();
        let session_id = event["paymentSessionId"]
            .as_str()
            .expect("paymentSessionId")
            .to_string();

        let bare = Arc::new(BareRead::new(&store, &user_id, &agent_id, &session_id));
        let ring =
            KeyRing::from_secret_json(&KeyRing::new_secret_json("k1", &[7u8; 32], &[9u8; 32]))
                .expect("key ring");
        let service = Arc::new(
            VerifyService::new(store, KeySource::fixed(ring))
                .with_audit_sink(Box::new(|_| {}))
                .with_metrics_sink(Box::new(|_| {})),
        );
        let event = Arc::new(event);
        let now = now_epoch_seconds();

        let verify_op = {
            let service = service.clone();
            move |i: usize| {
                let service = service.clone();
                let event = event.clone();
                async move {
                    let id = format!("bench-{i}");
                    let response = service.handle(&event, &id, now).await;
                    assert_eq!(
                        response.decision,
                        Verdict::Yes,
                        "{:?}: {}",
                        response.reason_code,
                        response.message
                    );
                }
            }
        };
        let bare_op = move |_: usize| {
            let bare = bare.clone();
            async move {
                assert_eq!(bare.read().await, ITEMS_FOUND);
            }
        };

        println!("verify_throughput: DynamoDB Local, the decision's BatchGetItem");
        comparison.run(verify_op, bare_op).await;
    });
}
