//! The pure decision path: parse the event, evaluate the policies, seal the audit record and, on
//! YES, issue the decision token, over a `MemoryStore` seeded from `infra/seed/demo.json`.
//!
//! `cargo bench -p predebit-core --bench decision`

use std::future::Future;
use std::hint::black_box;
use std::path::PathBuf;
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, criterion_main, Criterion};
use predebit_core::decision::{decide, DecisionContext, Verdict};
use predebit_core::keys::KeyRing;
use predebit_core::memory::{scope_key, MemoryStore};
use predebit_core::money::parse_usd;
use predebit_core::policy::PolicyCache;
use predebit_core::reason::ReasonCode;
use predebit_core::records::{
    AgentRecord, ConsentRecord, PolicyRecord, SessionRecord, SessionStatus,
};
use serde_json::Value;

/// Inside the consent and session lifetimes of the demo seed.
const NOW: u64 = 1_790_000_000;

fn repo_file(relative: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Polls a future that never waits: the memory store answers immediately.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the memory store's read is never pending"),
    }
}

fn str_field<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value.get(name).and_then(Value::as_str)
}

/// The demo seed, loaded the way `predebit seed` writes it: each policy at version 1, documents
/// stored as given, sessions opened with everything available.
fn demo_store() -> MemoryStore {
    let seed = repo_file("infra/seed/demo.json");
    let store = MemoryStore::new();
    for policy in seed["policies"].as_array().expect("policies") {
        let scope = str_field(policy, "scope").expect("scope");
        let id = str_field(policy, "userId").or_else(|| str_field(policy, "agentId"));
        let document = match &policy["document"] {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        store.put_policy(
            &scope_key(scope, id),
            PolicyRecord {
                version: 1,
                document,
            },
        );
    }
    for agent in seed["agents"].as_array().expect("agents") {
        let agent: AgentRecord = serde_json::from_value(agent.clone()).expect("agent");
        store.put_agent(agent);
    }
    for consent in seed["consents"].as_array().expect("consents") {
        let record: ConsentRecord = serde_json::from_value(consent.clone()).expect("consent");
        let user_id = str_field(consent, "userId").expect("userId");
        let agent_id = str_field(consent, "agentId").expect("agentId");
        store.put_consent(user_id, agent_id, record);
    }
    for session in seed["sessions"].as_array().expect("sessions") {
        let limit_micros = parse_usd(str_field(session, "limit").expect("limit")).expect("limit");
        let status = match session.get("status") {
            Some(status) => serde_json::from_value(status.clone()).expect("status"),
            None => SessionStatus::Open,
        };
        store.put_session(SessionRecord {
            payment_session_id: str_field(session, "paymentSessionId")
                .expect("paymentSessionId")
                .to_string(),
            user_id: str_field(session, "userId").expect("userId").to_string(),
            limit_micros,
            reserved_micros: 0,
            settled_micros: 0,
            available_micros: limit_micros,
            overdraft_micros: 0,
            expires_at: session["expiresAt"].as_u64().expect("expiresAt"),
            status,
            open_request_id: None,
        });
    }
    store
}

fn bench_decide(c: &mut Criterion) {
    let store = demo_store();
    let keys = KeyRing::from_secret_json(&KeyRing::new_secret_json("k1", &[7u8; 32], &[9u8; 32]))
        .expect("key ring");
    let cases = [
        (
            "yes_allow_v1_base_usdc",
            "events/verify/allow-v1-base-usdc.json",
            Verdict::Yes,
            ReasonCode::Approved,
        ),
        (
            "no_over_user_limit_by_one_unit",
            "events/verify/decline-over-user-limit-by-one-unit.json",
            Verdict::No,
            ReasonCode::AmountOverPaymentLimit,
        ),
    ];
    let policies = PolicyCache::new();
    let mut group = c.benchmark_group("decide");
    for (name, path, verdict, reason) in cases {
        let event = repo_file(path);
        let ctx = DecisionContext {
            verification_id: "bench-verification-id",
            now: NOW,
            keys: &keys,
            policies: &policies,
        };
        // A benchmark of the wrong outcome would measure the wrong path.
        let decision = block_on(decide(&store, &event, ctx));
        assert_eq!(
            (decision.response.decision, decision.response.reason_code),
            (verdict, reason),
            "{path}"
        );
        group.bench_function(name, |b| {
            b.iter(|| block_on(decide(black_box(&store), black_box(&event), ctx)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
