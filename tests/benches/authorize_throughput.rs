//! authorize throughput against DynamoDB Local and the local AgentCore Payments service, next to
//! the floor it cannot beat: the same four requests sent bare with the same clients (the
//! decision's BatchGetItem, the seven-part reserve, ProcessPayment, markSent's UpdateItem).
//!
//! Both loops run the same number of payments in flight, in alternating rounds, each on one of
//! eight sessions (opened in AgentCore and in predebit). The local service signs every payment
//! for real (EIP-712), in both loops alike. Prints ops/s, p50/p99 and the ratio authorize/bare;
//! asserts nothing about time.
//!
//! `scripts/services.sh run cargo bench -p predebit-tests --bench authorize_throughput`
//! Tunable: `PREDEBIT_BENCH_OPS` (default 4000), `PREDEBIT_BENCH_WARM_UP` (default 500),
//! `PREDEBIT_BENCH_CONCURRENCY` (default 8).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_sdk_bedrockagentcore::types::{
    Amount, CryptoX402PaymentInput, Currency, PaymentInput, PaymentOutput, PaymentType,
    SessionLimits,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use predebit_agentcore::{to_document, to_value, AgentCoreSigner};
use predebit_authorize::AuthorizeService;
use predebit_core::authorize::{AuthorizeConfig, Authorizer};
use predebit_core::keys::KeyRing;
use predebit_core::token::issue;
use predebit_store::secrets::KeySource;
use predebit_store::seed;
use predebit_tests::bench::bare::{self, BareLedger, BareRead, AGENT, USER};
use predebit_tests::bench::Comparison;
use predebit_tests::{agentcore_client, fresh_store, repo_root};
use predebit_verify::now_epoch_seconds;
use serde_json::{json, Value};

const SESSIONS: usize = 8;
const MANAGER: &str =
    "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/predebit-local-a1b2c3d4e5";
const INSTRUMENT: &str = "payment-instrument-demo-user-alice";
/// One cent of USDC on Base.
const AMOUNT: u64 = 10_000;

fn requirement() -> Value {
    json!({"scheme": "exact", "network": "eip155:8453", "amount": AMOUNT.to_string(),
        "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "maxTimeoutSeconds": 60,
        "extra": {"name": "USD Coin", "version": "2"}})
}

fn event(i: usize, session_id: &str) -> Value {
    let offer = json!({"x402Version": 2, "resource": {"url": "https://api.weather.example/v2/forecast"},
        "accepts": [requirement()]});
    json!({"version": "1", "x402Version": 2, "paymentRequired": STANDARD.encode(offer.to_string()),
        "requestUrl": "https://api.weather.example/v2/forecast", "userId": USER, "agentId": AGENT,
        "paymentSessionId": session_id, "paymentInstrumentId": INSTRUMENT,
        "toolName": "http_request", "toolUseId": format!("tooluse-bench-{i}"), "attempt": 1})
}

async fn open_sessions(
    client: &aws_sdk_bedrockagentcore::Client,
    store: &predebit_store::DynamoStore,
    now: u64,
) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..SESSIONS {
        let limit = Amount::builder()
            .value("1000000.00")
            .currency(Currency::Usd)
            .build()
            .expect("amount");
        let created = client
            .create_payment_session()
            .payment_manager_arn(MANAGER)
            .user_id(USER)
            .expiry_time_in_minutes(120)
            .limits(SessionLimits::builder().max_spend_amount(limit).build())
            .send()
            .await
            .expect("CreatePaymentSession");
        let id = created
            .payment_session()
            .expect("session")
            .payment_session_id()
            .to_string();
        let record = seed::new_session(&id, USER, 1_000_000_000_000, now + 7200, None);
        store
            .open_session(&record)
            .await
            .expect("open the predebit session");
        ids.push(id);
    }
    ids
}

/// The four requests of one payment, sent bare.
struct Bare {
    reads: Vec<BareRead>,
    ledger: BareLedger,
    agentcore: aws_sdk_bedrockagentcore::Client,
    sessions: Vec<String>,
    tokens: Vec<String>,
    now: u64,
}

impl Bare {
    async fn pay(&self, i: usize) {
        let session = &self.sessions[i % SESSIONS];
        let payment_id = format!("bare{i:060x}");
        let claims = bare::claims(i, session, AMOUNT, self.now);
        assert_eq!(self.reads[i % SESSIONS].read().await, 5, "BatchGetItem");
        self.ledger
            .reserve(&claims, &self.tokens[i], &payment_id)
            .await;
        let input = CryptoX402PaymentInput::builder()
            .version("2")
            .payload(to_document(&requirement()))
            .build()
            .expect("input");
        let signed = self
            .agentcore
            .process_payment()
            .payment_manager_arn(MANAGER)
            .payment_session_id(session)
            .payment_instrument_id(INSTRUMENT)
            .user_id(USER)
            .agent_name(AGENT)
            .payment_type(PaymentType::CryptoX402)
            .payment_input(PaymentInput::CryptoX402(input))
            .client_token(&payment_id)
            .send()
            .await
            .expect("ProcessPayment");
        let payload = match signed.payment_output() {
            Some(PaymentOutput::CryptoX402(output)) => to_value(output.payload()).to_string(),
            other => panic!("ProcessPayment answered no x402 payload: {other:?}"),
        };
        self.ledger.mark_sent(&claims, &payment_id, &payload).await;
    }
}

fn main() {
    let comparison = Comparison::from_env("authorize", 4000, 500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let store = fresh_store("authorize_throughput").await;
        let seed_text = std::fs::read_to_string(repo_root().join("infra/seed/demo.json")).expect("seed");
        seed::apply(&store, &seed::parse(&seed_text).expect("seed parses")).await.expect("seed applies");
        let ring = KeyRing::from_secret_json(&KeyRing::new_secret_json("k1", &[7u8; 32], &[9u8; 32])).expect("ring");
        let now = now_epoch_seconds();
        let agentcore = agentcore_client().await;
        let sessions = open_sessions(&agentcore, &store, now).await;
        let signer = AgentCoreSigner::new(agentcore.clone(), MANAGER.into());
        let authorizer = Authorizer::new(store.clone(), store.clone(), signer, AuthorizeConfig::default());
        let service = Arc::new(
            AuthorizeService::new(authorizer, KeySource::fixed(ring.clone()))
                .with_audit_sink(Box::new(|_| {}))
                .with_metrics_sink(Box::new(|_| {})),
        );
        let total = comparison.warm_up_ops + comparison.ops + comparison.round_ops;
        let tokens = (0..total)
            .map(|i| issue(&bare::claims(i, &sessions[i % SESSIONS], AMOUNT, now), &ring))
            .collect();
        let reads = sessions.iter().map(|s| BareRead::new(&store, USER, AGENT, s)).collect();
        let bare = Arc::new(Bare {
            reads,
            ledger: BareLedger { client: store.client().clone(), store, ring },
            agentcore,
            sessions: sessions.clone(),
            tokens,
            now,
        });

        let offset = Arc::new(AtomicUsize::new(0));
        let authorize_op = {
            let sessions = Arc::new(sessions);
            move |_: usize| {
                let (service, sessions) = (service.clone(), sessions.clone());
                let i = offset.fetch_add(1, Ordering::Relaxed);
                async move {
                    let raw = event(i, &sessions[i % SESSIONS]).to_string();
                    let r = service.handle_raw(raw.as_bytes(), &format!("bench-{i}"), now_epoch_seconds()).await;
                    assert_eq!(r["decision"], "YES", "{r}");
                }
            }
        };
        let bare_offset = Arc::new(AtomicUsize::new(0));
        let bare_op = move |_: usize| {
            let bare = bare.clone();
            let i = bare_offset.fetch_add(1, Ordering::Relaxed);
            async move { bare.pay(i).await }
        };

        println!("authorize_throughput: decide + reserve + ProcessPayment + markSent, DynamoDB Local and the local AgentCore service, {SESSIONS} sessions");
        comparison.run(authorize_op, bare_op).await;
    });
}
