//! Verify throughput against DynamoDB Local, next to the floor it cannot beat: the same
//! strongly consistent BatchGetItem of the same six keys, sent bare with the same client.
//!
//! Both loops run with the same number of requests in flight, in alternating rounds so that
//! drift (JIT warm-up of DynamoDB Local, other load on the machine) falls on both alike. Prints
//! ops/s, p50/p99 latency and the ratio verify/bare; asserts nothing about time.
//!
//! `cargo bench -p predebit-tests --bench verify_throughput`
//!
//! Tunable by environment: `PREDEBIT_BENCH_OPS` (per loop, default 4000),
//! `PREDEBIT_BENCH_WARM_UP` (per loop, default 3000: DynamoDB Local's JVM keeps getting faster
//! for the first few thousand requests, which would hide verify's own cost),
//! `PREDEBIT_BENCH_CONCURRENCY` (default 8), `PREDEBIT_BENCH_SECONDS` (budget for the measured
//! rounds, default 120).

use std::sync::Arc;
use std::time::{Duration, Instant};

use predebit_core::decision::Verdict;
use predebit_core::keys::KeyRing;
use predebit_store::secrets::KeySource;
use predebit_store::seed;
use predebit_tests::bench::bare::BareRead;
use predebit_tests::bench::{env_usize, run_round, Tally, ROUND_OPS};
use predebit_tests::{fresh_store, repo_root};
use predebit_verify::{now_epoch_seconds, VerifyService};
use serde_json::Value;

/// The demo seed has no agent policy for agent-research: five of the six keys exist.
const ITEMS_FOUND: usize = 5;

fn main() {
    let ops_per_loop = env_usize("PREDEBIT_BENCH_OPS", 4000);
    let warm_up_ops = env_usize("PREDEBIT_BENCH_WARM_UP", 3000);
    let concurrency = env_usize("PREDEBIT_BENCH_CONCURRENCY", 8);
    let budget = Duration::from_secs(env_usize("PREDEBIT_BENCH_SECONDS", 120) as u64);

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

        println!(
            "verify_throughput: DynamoDB Local, {concurrency} in flight, up to {ops_per_loop} \
             ops per loop in rounds of {ROUND_OPS}, alternating, {}s budget",
            budget.as_secs()
        );
        let warm_up = Instant::now();
        for _ in 0..warm_up_ops.div_ceil(ROUND_OPS) {
            run_round(ROUND_OPS, concurrency, verify_op.clone()).await;
            run_round(ROUND_OPS, concurrency, bare_op.clone()).await;
        }
        println!(
            "warm-up: {warm_up_ops} ops per loop in {:.1} s",
            warm_up.elapsed().as_secs_f64()
        );

        let (mut verify, mut bare) = (Tally::default(), Tally::default());
        let started = Instant::now();
        let mut round = 0;
        let mut round_ratios = Vec::new();
        while verify.ops < ops_per_loop && started.elapsed() < budget {
            let ops = ROUND_OPS.min(ops_per_loop - verify.ops);
            // Alternate which loop goes first, so neither always follows the other.
            let (verify_round, bare_round) = if round % 2 == 0 {
                let v = run_round(ops, concurrency, verify_op.clone()).await;
                (v, run_round(ops, concurrency, bare_op.clone()).await)
            } else {
                let b = run_round(ops, concurrency, bare_op.clone()).await;
                (run_round(ops, concurrency, verify_op.clone()).await, b)
            };
            // Same op count in both: the ratio of throughputs is the inverse ratio of walls.
            round_ratios.push(bare_round.0.as_secs_f64() / verify_round.0.as_secs_f64());
            verify.add(verify_round);
            bare.add(bare_round);
            round += 1;
        }
        verify.report("verify");
        bare.report("bare");
        println!(
            "ratio verify/bare (ops/s): {:.3}",
            verify.ops_per_second() / bare.ops_per_second()
        );
        round_ratios.sort_by(f64::total_cmp);
        println!(
            "per-round ratio over {} rounds: median {:.3}, min {:.3}, max {:.3}",
            round_ratios.len(),
            round_ratios[round_ratios.len() / 2],
            round_ratios[0],
            round_ratios[round_ratios.len() - 1],
        );
    });
}
