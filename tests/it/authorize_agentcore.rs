//! authorize end to end: DynamoDB Local, the real `aws-sdk-bedrockagentcore` client and the local
//! AgentCore Payments service (`scripts/agentcore_local`), which signs real EIP-3009 and Permit2
//! payloads, dedupes on clientToken, enforces its own maxSpendAmount and counts every signature.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use aws_sdk_bedrockagentcore::types::{Amount, Currency, SessionLimits};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use predebit_agentcore::AgentCoreSigner;
use predebit_core::authorize::{AuthorizeConfig, AuthorizeContext, Authorizer};
use predebit_core::hold::HoldState;
use predebit_core::ledger::LedgerStore;
use predebit_core::records::{AgentRecord, AgentStatus, ConsentRecord, ConsentStatus};
use predebit_store::DynamoStore;
use predebit_tests::{agentcore_client, agentcore_endpoint, fresh_store};
use serde_json::{json, Value};

use crate::common::{seed_demo, test_keys, NOW};

pub(crate) const MANAGER: &str =
    "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/predebit-local-a1b2c3d4e5";
const INSTRUMENT: &str = "payment-instrument-local-alice-001";
const ALICE_WALLET: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const USER: &str = "alice";
const AGENT: &str = "agent-alice";
const USDC_SEPOLIA: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

/// One request to the service's local-only admin routes.
pub(crate) fn admin(method: &str, path: &str, body: &Value) -> Value {
    let addr = agentcore_endpoint()
        .trim_start_matches("http://")
        .to_string();
    let body = body.to_string();
    let mut stream = TcpStream::connect(&addr).expect("the local AgentCore service answers");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn client() -> aws_sdk_bedrockagentcore::Client {
    futures_block_on(agentcore_client())
}

fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// A payment session at the service with `limit` USD, and the same session open in predebit
/// for alice (agent, consent and session records seeded beside the demo data).
async fn session(store: &DynamoStore, limit: &str, name: &str) -> String {
    session_with(store, limit, limit, name).await
}

/// As `session`, with AgentCore's maxSpendAmount apart from predebit's limit.
async fn session_with(
    store: &DynamoStore,
    limit: &str,
    agentcore_limit: &str,
    name: &str,
) -> String {
    // The service signs on predebit's test clock, so validBefore falls in the approved window.
    admin(
        "POST",
        "/_local/clock",
        &json!({"now": NOW, "frozen": true}),
    );
    let created = client()
        .create_payment_session()
        .payment_manager_arn(MANAGER)
        .user_id(USER)
        .expiry_time_in_minutes(60)
        .limits(
            SessionLimits::builder()
                .max_spend_amount(
                    Amount::builder()
                        .value(agentcore_limit)
                        .currency(Currency::Usd)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .client_token(format!("predebit-test-session-{name}-0000000000"))
        .send()
        .await
        .expect("CreatePaymentSession");
    let id = created
        .payment_session()
        .unwrap()
        .payment_session_id()
        .to_string();
    store
        .put_agent(&AgentRecord {
            agent_id: AGENT.into(),
            user_id: USER.into(),
            status: AgentStatus::Active,
            allowed_tools: None,
        })
        .await
        .unwrap();
    store
        .put_consent(
            USER,
            AGENT,
            &ConsentRecord {
                status: ConsentStatus::Granted,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    let limit_micros = predebit_core::money::parse_usd(limit).unwrap();
    store
        .open_session(&predebit_store::seed::new_session(
            &id,
            USER,
            limit_micros,
            NOW + 3600,
            None,
        ))
        .await
        .unwrap();
    id
}

fn event(session_id: &str, tool_use_id: &str, permit2: bool) -> Value {
    let mut extra = json!({"name": "USDC", "version": "2"});
    if permit2 {
        extra["assetTransferMethod"] = json!("permit2");
    }
    let offer = json!({"x402Version": 2, "resource": {"url": "https://api.weather.example/v2/forecast"},
        "accepts": [{"scheme": "exact", "network": "eip155:84532", "amount": "1000000",
            "asset": USDC_SEPOLIA, "payTo": PAY_TO, "maxTimeoutSeconds": 60, "extra": extra}]});
    json!({"version": "1", "x402Version": 2, "paymentRequired": STANDARD.encode(offer.to_string()),
        "requestUrl": "https://api.weather.example/v2/forecast", "userId": USER, "agentId": AGENT,
        "paymentSessionId": session_id, "paymentInstrumentId": INSTRUMENT,
        "toolName": "http_request", "toolUseId": tool_use_id, "attempt": 1})
}

type Real = Authorizer<DynamoStore, DynamoStore, AgentCoreSigner>;

fn authorizer(store: DynamoStore) -> Real {
    Authorizer::new(
        store.clone(),
        store,
        AgentCoreSigner::new(client(), MANAGER.into()),
        AuthorizeConfig::default(),
    )
}

async fn run(a: &Real, event: &Value, request_id: &str) -> Value {
    let keys = test_keys();
    a.handle(
        event,
        AuthorizeContext {
            request_id,
            now: NOW,
            keys: &keys,
        },
    )
    .await
    .response
}

fn signatures(session_id: &str) -> u64 {
    admin("GET", "/_local/stats", &json!({}))["signatures"]["bySession"][session_id]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eip3009_and_permit2_payments_are_signed_by_agentcore_and_marked_sent() {
    let store = fresh_store("authorize-agentcore").await;
    seed_demo(&store).await;
    let session_id = session(&store, "5.00", "happy").await;
    let a = authorizer(store);
    for (n, permit2) in [(1, false), (2, true)] {
        let r = run(
            &a,
            &event(&session_id, &format!("tooluse-agentcore-{n}"), permit2),
            &format!("ac-happy-{n}"),
        )
        .await;
        assert_eq!(r["decision"], "YES", "{r}");
        let header: Value = serde_json::from_slice(
            &STANDARD
                .decode(r["paymentHeader"]["value"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        let payload = &header["payload"];
        if permit2 {
            assert_eq!(
                payload["permit2Authorization"]["from"], ALICE_WALLET,
                "{payload}"
            );
            assert_eq!(
                payload["permit2Authorization"]["permitted"]["amount"],
                "1000000"
            );
        } else {
            assert_eq!(payload["authorization"]["from"], ALICE_WALLET, "{payload}");
            assert_eq!(payload["authorization"]["to"], PAY_TO);
        }
        let hold = a
            .ledger()
            .store()
            .read_hold(&session_id, r["paymentId"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hold.state, HoldState::Sent);
    }
    assert_eq!(signatures(&session_id), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_terms_from_the_signer_are_discarded() {
    let store = fresh_store("authorize-agentcore-wrong").await;
    seed_demo(&store).await;
    let session_id = session(&store, "5.00", "wrong").await;
    let a = authorizer(store);
    admin(
        "POST",
        "/_local/faults",
        &json!({"paymentSessionId": session_id,
            "wrongTerms": {"payTo": "0x0000000000000000000000000000000000000bad", "times": 1,
            "operation": "ProcessPayment"}}),
    );
    let r = run(
        &a,
        &event(&session_id, "tooluse-agentcore-wrong", false),
        "ac-wrong",
    )
    .await;
    admin(
        "POST",
        "/_local/faults",
        &json!({"paymentSessionId": session_id}),
    );
    assert_eq!(r["reasonCode"], "SIGNED_PAYLOAD_MISMATCH", "{r}");
    assert!(r.get("paymentHeader").is_none());
    // AgentCore signed once; predebit discarded it and gave the budget back
    assert_eq!(signatures(&session_id), 1);
    let hold = hold_of(&a, &session_id, &r).await;
    assert_eq!(hold.state, HoldState::Voided);
}

async fn hold_of(a: &Real, session_id: &str, r: &Value) -> predebit_core::hold::Hold {
    a.ledger()
        .store()
        .read_hold(session_id, r["paymentId"].as_str().expect("a paymentId"))
        .await
        .unwrap()
        .expect("the hold exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_signer_keeps_the_hold_pending_and_the_same_request_continues_once_it_answers() {
    // GIVEN every ProcessPayment on this session answered with a 500 (the SDK's retries too)
    let store = fresh_store("authorize-agentcore-down").await;
    seed_demo(&store).await;
    let session_id = session(&store, "5.00", "down").await;
    let a = authorizer(store);
    admin(
        "POST",
        "/_local/faults",
        &json!({"paymentSessionId": session_id,
            "internalError": {"times": -1, "operation": "ProcessPayment"}}),
    );
    let e = event(&session_id, "tooluse-agentcore-down", false);
    // WHEN authorize asks
    let first = run(&a, &e, "ac-down-1").await;
    // THEN NO SIGNER_UNAVAILABLE, no header, the hold PENDING, nothing signed
    assert_eq!(first["reasonCode"], "SIGNER_UNAVAILABLE", "{first}");
    assert!(first.get("paymentHeader").is_none());
    assert_eq!(
        hold_of(&a, &session_id, &first).await.state,
        HoldState::Pending
    );
    assert_eq!(signatures(&session_id), 0);
    // WHEN the service answers again and the same request comes back
    admin(
        "POST",
        "/_local/faults",
        &json!({"paymentSessionId": session_id}),
    );
    let second = run(&a, &e, "ac-down-2").await;
    // THEN the same payment continues: YES, the same paymentId, one signature, the hold SENT
    assert_eq!(second["decision"], "YES", "{second}");
    assert_eq!(second["paymentId"], first["paymentId"]);
    assert_eq!(signatures(&session_id), 1);
    assert_eq!(
        hold_of(&a, &session_id, &second).await.state,
        HoldState::Sent
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_agentcore_refuses_releases_the_hold_as_signing_failed() {
    // GIVEN predebit's limit 5.00 on a session AgentCore caps at 0.50 (a misconfigured pair)
    let store = fresh_store("authorize-agentcore-refused").await;
    seed_demo(&store).await;
    let session_id = session_with(&store, "5.00", "0.50", "refused").await;
    let a = authorizer(store);
    // WHEN authorize asks AgentCore to sign 1.00
    let r = run(
        &a,
        &event(&session_id, "tooluse-agentcore-refused", false),
        "ac-refused",
    )
    .await;
    // THEN AgentCore's definite refusal releases the hold: SIGNING_FAILED, nothing signed
    assert_eq!(r["reasonCode"], "SIGNING_FAILED", "{r}");
    assert!(r.get("paymentHeader").is_none());
    assert_eq!(hold_of(&a, &session_id, &r).await.state, HoldState::Voided);
    assert_eq!(signatures(&session_id), 0);
    let page = a
        .ledger()
        .store()
        .read_session_page(&session_id, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (page.session.reserved_micros, page.session.available_micros),
        (0, 5_000_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_hundred_concurrent_authorizes_each_sent_three_times_exactly_the_budget_is_signed() {
    // GIVEN a session whose limit (predebit's and AgentCore's) fits 5 payments of 1.00
    let store = fresh_store("authorize-agentcore-race").await;
    seed_demo(&store).await;
    let session_id = session(&store, "5.00", "race").await;
    let a = Arc::new(authorizer(store));
    // WHEN 200 tool calls each ask for a payment three times, all at once
    let mut tasks = Vec::new();
    for n in 0..200u32 {
        for k in 0..3u32 {
            let a = a.clone();
            let event = event(&session_id, &format!("tooluse-race-{n}"), false);
            tasks.push(tokio::spawn(async move {
                let r = run(&a, &event, &format!("ac-race-{n}-{k}")).await;
                (n, r)
            }));
        }
    }
    let mut paid = std::collections::BTreeSet::new();
    for t in tasks {
        let (n, r) = t.await.unwrap();
        if r["decision"] == "YES" {
            paid.insert(n);
        }
    }
    // THEN exactly 5 tool calls are paid, with exactly 5 signatures at AgentCore
    let page = a
        .ledger()
        .store()
        .read_session_page(&session_id, None, 100)
        .await
        .unwrap()
        .unwrap();
    let held: Vec<_> = page
        .holds
        .iter()
        .filter(|h| h.state != HoldState::Voided)
        .collect();
    assert_eq!(paid.len(), 5, "{paid:?}");
    assert_eq!(held.len(), 5);
    assert_eq!(signatures(&session_id), 5);
    assert_eq!(page.session.reserved_micros, 5_000_000);
}
