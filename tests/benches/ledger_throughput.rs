//! Ledger throughput against DynamoDB Local: reserve + commit through the ledger, next to the
//! floor it cannot beat: the same two TransactWriteItems (a seven-part reserve, a two-part post)
//! sent bare with the same client.
//!
//! Both loops run the same number of operations in flight, in alternating rounds, each op on one
//! of eight sessions (sessions scale out; one session is one partition). Prints ops/s, p50/p99
//! and the ratio ledger/bare; asserts nothing about time.
//!
//! `cargo bench -p predebit-tests --bench ledger_throughput`
//! Tunable: `PREDEBIT_BENCH_OPS` (default 2000), `PREDEBIT_BENCH_WARM_UP` (default 1000),
//! `PREDEBIT_BENCH_CONCURRENCY` (default 8).

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use predebit_core::keys::KeyRing;
use predebit_core::ledger::{new_hold, AllowedOps, LedgerConfig};
use predebit_core::records::PolicyVersions;
use predebit_core::token::{issue, TokenClaims};
use predebit_ledger::LedgerService;
use predebit_store::items::{
    self, agent_pk, agent_policy_pk, consent_pk, global_policy_pk, pk_key, pk_sk_key, session_pk,
    user_policy_pk, Item, SESSION_SK,
};
use predebit_store::secrets::KeySource;
use predebit_store::{seed, DynamoClient, DynamoStore};
use predebit_tests::bench::{env_usize, run_round, Tally, ROUND_OPS};
use predebit_tests::{fresh_store, repo_root};
use predebit_verify::now_epoch_seconds;
use serde_json::json;

const SESSIONS: usize = 8;
const USER: &str = "user-alice";
const AGENT: &str = "agent-research";
const AMOUNT: u64 = 10_000;

fn session_id(i: usize) -> String {
    format!("bench-s{}", i % SESSIONS)
}

fn claims(i: usize, now: u64) -> TokenClaims {
    TokenClaims {
        payment_id: format!("{i:064x}"),
        verification_id: format!("bench-{i}"),
        audit_hash: "0".repeat(64),
        user_id: USER.into(),
        agent_id: AGENT.into(),
        payment_session_id: session_id(i),
        scheme: "exact".into(),
        network: "eip155:8453".into(),
        asset: "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913".into(),
        pay_to: "0x209693bc6afc0c5328ba36faf03c514ef312287c".into(),
        amount_atomic: AMOUNT.to_string(),
        amount_micros: AMOUNT,
        resource_host: None,
        max_timeout_seconds: 60,
        policy_versions: PolicyVersions {
            global: Some(1),
            user: Some(1),
            agent: None,
        },
        consent_required: true,
        authorization_window_seconds: 300,
        issued_at: now,
        expires_at: now + 3600,
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn vals(pairs: &[(&str, AttributeValue)]) -> Option<HashMap<String, AttributeValue>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// The ledger's two transactions for one payment, sent bare.
struct Bare {
    client: DynamoClient,
    store: DynamoStore,
    ring: KeyRing,
    tokens: Arc<Vec<String>>,
}

impl Bare {
    fn check(
        &self,
        table: &str,
        key: Item,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> TransactWriteItem {
        let values = if values.is_empty() {
            None
        } else {
            vals(values)
        };
        TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(table)
                    .set_key(Some(key))
                    .condition_expression(condition)
                    .set_expression_attribute_values(values)
                    .build()
                    .expect("check"),
            )
            .build()
    }

    fn update(
        &self,
        key: Item,
        expression: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> TransactWriteItem {
        TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&self.store.tables().ledger)
                    .set_key(Some(key))
                    .update_expression(expression)
                    .condition_expression(condition)
                    .set_expression_attribute_values(vals(values))
                    .set_expression_attribute_names(
                        expression
                            .contains("#st")
                            .then(|| HashMap::from([("#st".to_string(), "state".to_string())])),
                    )
                    .build()
                    .expect("update"),
            )
            .build()
    }

    async fn reserve_and_post(&self, i: usize) {
        let t = self.store.tables();
        let hold_key = pk_sk_key(session_pk(&session_id(i)), &format!("HOLD#bare{i:060x}"));
        // The same item the ledger writes, so both loops move the same bytes.
        let payment = claims(i, 0);
        let mut hold = new_hold(&payment, &self.tokens[i], &self.ring, 0, 120);
        hold.payment_id = format!("bare{i:060x}");
        let mut item = items::to_item(&hold, hold_key.clone()).expect("hold item");
        item.insert("openShard".into(), s("OPEN#0"));
        let reserve = vec![
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&t.ledger)
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .expect("put"),
                )
                .build(),
            self.update(
                pk_sk_key(session_pk(&session_id(i)), SESSION_SK),
                "SET availableMicros = availableMicros - :m, reservedMicros = reservedMicros + :m",
                "availableMicros >= :m AND expiresAt > :now AND userId = :user",
                &[(":m", n(AMOUNT)), (":now", n(0)), (":user", s(USER))],
            ),
            self.check(
                &t.registry,
                pk_key(agent_pk(AGENT)),
                "userId = :user",
                &[(":user", s(USER))],
            ),
            self.check(
                &t.registry,
                pk_key(consent_pk(USER, AGENT)),
                "attribute_exists(pk)",
                &[],
            ),
            self.check(
                &t.policies,
                pk_key(global_policy_pk()),
                "version = :v",
                &[(":v", n(1))],
            ),
            self.check(
                &t.policies,
                pk_key(user_policy_pk(USER)),
                "version = :v",
                &[(":v", n(1))],
            ),
            self.check(
                &t.policies,
                pk_key(agent_policy_pk(AGENT)),
                "attribute_not_exists(pk)",
                &[],
            ),
        ];
        self.client
            .transact_write_items()
            .set_transact_items(Some(reserve))
            .send()
            .await
            .expect("bare reserve");
        let post = vec![
            self.update(
                hold_key,
                "SET #st = :posted",
                "#st = :pending AND amountMicros = :m",
                &[
                    (":posted", s("POSTED")),
                    (":pending", s("PENDING")),
                    (":m", n(AMOUNT)),
                ],
            ),
            self.update(
                pk_sk_key(session_pk(&session_id(i)), SESSION_SK),
                "SET reservedMicros = reservedMicros - :m, settledMicros = settledMicros + :m",
                "attribute_exists(pk)",
                &[(":m", n(AMOUNT))],
            ),
        ];
        self.client
            .transact_write_items()
            .set_transact_items(Some(post))
            .send()
            .await
            .expect("bare post");
    }
}

fn main() {
    let ops_per_loop = env_usize("PREDEBIT_BENCH_OPS", 2000);
    let warm_up_ops = env_usize("PREDEBIT_BENCH_WARM_UP", 1000);
    let concurrency = env_usize("PREDEBIT_BENCH_CONCURRENCY", 8);
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
        let total = warm_up_ops + ops_per_loop + ROUND_OPS;
        let tokens: Arc<Vec<String>> = Arc::new((0..total).map(|i| issue(&claims(i, now), &ring)).collect());
        let bare = Arc::new(Bare { client: store.client().clone(), store, ring: ring.clone(), tokens: tokens.clone() });
        let offset = Arc::new(std::sync::atomic::AtomicUsize::new(0));

        let ledger_op = {
            let (ledger, tokens, offset) = (ledger.clone(), tokens.clone(), offset.clone());
            move |_: usize| {
                let (ledger, tokens) = (ledger.clone(), tokens.clone());
                let i = offset.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async move {
                    let reserved = ledger.handle(&json!({"version": "1", "op": "reserve", "decisionToken": tokens[i]}), now).await;
                    assert_eq!(reserved["ok"], true, "{reserved}");
                    let settlement = json!({"success": true, "transaction": format!("0x{:064x}", i), "network": "eip155:8453"});
                    let committed = ledger
                        .handle(&json!({"version": "1", "op": "commit", "paymentSessionId": session_id(i),
                            "paymentId": format!("{i:064x}"), "amountMicros": AMOUNT, "settlement": settlement}), now)
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

        println!("ledger_throughput: reserve + commit, DynamoDB Local, {concurrency} in flight, {SESSIONS} sessions");
        for _ in 0..warm_up_ops.div_ceil(ROUND_OPS) {
            run_round(ROUND_OPS, concurrency, ledger_op.clone()).await;
            run_round(ROUND_OPS, concurrency, bare_op.clone()).await;
        }
        let (mut led, mut raw) = (Tally::default(), Tally::default());
        let mut round = 0;
        while led.ops < ops_per_loop {
            let ops = ROUND_OPS.min(ops_per_loop - led.ops);
            if round % 2 == 0 {
                led.add(run_round(ops, concurrency, ledger_op.clone()).await);
                raw.add(run_round(ops, concurrency, bare_op.clone()).await);
            } else {
                raw.add(run_round(ops, concurrency, bare_op.clone()).await);
                led.add(run_round(ops, concurrency, ledger_op.clone()).await);
            }
            round += 1;
        }
        led.report("ledger");
        raw.report("bare");
        println!("ratio ledger/bare (ops/s): {:.3}", led.ops_per_second() / raw.ops_per_second());
    });
}
