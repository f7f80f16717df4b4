//! The pure decision path: parse the event, evaluate the policies, seal the audit record and, on
//! YES, issue the decision token, over a `MemoryStore` seeded from `infra/seed/demo.json`.
//!
//! - `decide/*`: the whole decision in a warm container (policies from the cache), YES and NO,
//!   and `decide/yes_policies_uncached` beside them: the same YES compiling every policy on every
//!   decision, as a container without the cache would.
//! - `decide_policy_size/N`: a YES under a global policy with N entries in each of its seven
//!   allow and deny lists (N = 1, 10, 100, 1000; checksummed addresses).
//! - `parts/*`: one decision's stages alone: prepare, evaluate (policy from the cache), finish
//!   (audit record and token), the token, and compiling the demo global policy.
//!
//! `cargo bench -p predebit-core --bench decision`; `scripts/bench_report.py` prints the goals.

use std::future::Future;
use std::hint::black_box;
use std::path::PathBuf;
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use predebit_core::address::eip55_checksum;
use predebit_core::decision::{decide, finish, prepare, DecisionContext, Verdict};
use predebit_core::keys::KeyRing;
use predebit_core::memory::{scope_key, MemoryStore};
use predebit_core::money::parse_usd;
use predebit_core::policy::{CompiledPolicy, PolicyCache};
use predebit_core::reason::ReasonCode;
use predebit_core::records::{
    AgentRecord, ConsentRecord, PolicyRecord, SessionRecord, SessionStatus,
};
use predebit_core::store::VerifyReader;
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
                document: document.into(),
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
            pool_id: None,
            returned_micros: 0,
        });
    }
    store
}

const YES_EVENT: &str = "events/verify/allow-v1-base-usdc.json";

fn keys() -> KeyRing {
    KeyRing::from_secret_json(&KeyRing::new_secret_json("k1", &[7u8; 32], &[9u8; 32]))
        .expect("key ring")
}

fn context<'a>(keys: &'a KeyRing, policies: &'a PolicyCache) -> DecisionContext<'a> {
    DecisionContext {
        verification_id: "bench-verification-id",
        now: NOW,
        keys,
        policies,
    }
}

fn bench_decide(c: &mut Criterion) {
    let store = demo_store();
    let keys = keys();
    let cases = [
        (
            "yes_allow_v1_base_usdc",
            YES_EVENT,
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
    let uncached = PolicyCache::disabled();
    let events: Vec<Value> = cases.iter().map(|(_, path, ..)| repo_file(path)).collect();
    for ((_, path, verdict, reason), event) in cases.iter().zip(&events) {
        // A benchmark of the wrong outcome would measure the wrong path.
        let decision = block_on(decide(&store, event, context(&keys, &policies)));
        assert_eq!(
            (decision.response.decision, decision.response.reason_code),
            (*verdict, *reason),
            "{path}"
        );
    }
    let warm = policies.stats();
    let mut group = c.benchmark_group("decide");
    for ((name, ..), event) in cases.iter().zip(&events) {
        let ctx = context(&keys, &policies);
        group.bench_function(*name, |b| {
            b.iter(|| block_on(decide(black_box(&store), black_box(event), ctx)))
        });
    }
    let event = repo_file(YES_EVENT);
    let ctx = context(&keys, &uncached);
    group.bench_function("yes_policies_uncached", |b| {
        b.iter(|| block_on(decide(black_box(&store), black_box(&event), ctx)))
    });
    group.finish();
    // The warm path compiled nothing: every decision above found its policies in the cache.
    let stats = policies.stats();
    assert_eq!(
        stats.compiled_documents, warm.compiled_documents,
        "{stats:?}"
    );
    assert_eq!(stats.combined, warm.combined, "{stats:?}");
}

/// A global policy with `n` entries in each allow and deny list; the YES event's payTo, host,
/// network, asset and tool are among the allowed ones and none is denied.
fn sized_policy(n: usize) -> String {
    let address = |i: usize| {
        let digest = sha3_hex(i);
        eip55_checksum(&digest[..40])
    };
    let mut allowed_pay_to: Vec<String> = (1..n).map(address).collect();
    allowed_pay_to.push("0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into());
    let blocked_pay_to: Vec<String> = (n..2 * n).map(address).collect();
    let mut allowed_hosts: Vec<String> = (1..n).map(|i| format!("h{i}.example.org")).collect();
    allowed_hosts.push("api.weather.example".into());
    let blocked_hosts: Vec<String> = (0..n).map(|i| format!("*.b{i}.scam.example")).collect();
    let mut networks: Vec<String> = (1..n).map(|i| format!("eip155:{}", 100_000 + i)).collect();
    networks.push("eip155:8453".into());
    let mut assets: Vec<String> = (1..n).map(|i| format!("TOK{i}")).collect();
    assets.push("USDC".into());
    let mut tools: Vec<String> = (1..n).map(|i| format!("tool_{i}")).collect();
    tools.push("http_request".into());
    serde_json::json!({
        "allowedPayTo": allowed_pay_to, "blockedPayTo": blocked_pay_to,
        "allowedHosts": allowed_hosts, "blockedHosts": blocked_hosts,
        "allowedNetworks": networks, "allowedAssets": assets, "allowedTools": tools,
        "maxPerPayment": "10.00",
    })
    .to_string()
}

/// 64 hex digits derived from `i` (Keccak-256 of its decimal text).
fn sha3_hex(i: usize) -> String {
    use sha3::{Digest, Keccak256};
    Keccak256::digest(i.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn bench_policy_size(c: &mut Criterion) {
    let keys = keys();
    let event = repo_file(YES_EVENT);
    let mut group = c.benchmark_group("decide_policy_size");
    for n in [1usize, 10, 100, 1000] {
        let store = demo_store();
        store.put_policy(
            "global",
            PolicyRecord {
                version: 2,
                document: sized_policy(n).into(),
            },
        );
        let policies = PolicyCache::new();
        let ctx = context(&keys, &policies);
        let decision = block_on(decide(&store, &event, ctx));
        assert_eq!(
            decision.response.reason_code,
            ReasonCode::Approved,
            "{n} entries"
        );
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| block_on(decide(black_box(&store), black_box(&event), ctx)))
        });
    }
    group.finish();
}

fn bench_parts(c: &mut Criterion) {
    let store = demo_store();
    let keys = keys();
    let policies = PolicyCache::new();
    let ctx = context(&keys, &policies);
    let event = repo_file(YES_EVENT);
    let prepared = prepare(&event).expect("the YES event prepares");
    let snapshot = block_on(store.read_for_verify(&prepared.request.keys())).expect("snapshot");
    let outcome = prepared.clone().evaluate(&snapshot, ctx);
    assert_eq!(outcome.reason, ReasonCode::Approved);
    let claims = {
        let decision = finish(outcome.clone(), ctx);
        let token = decision.response.decision_token.expect("a YES has a token");
        predebit_core::token::verify(&token, &keys, NOW).expect("token")
    };
    let global = demo_store_global_document();

    let mut group = c.benchmark_group("parts");
    group.bench_function("prepare", |b| b.iter(|| prepare(black_box(&event))));
    group.bench_function("evaluate", |b| {
        b.iter(|| black_box(prepared.clone()).evaluate(black_box(&snapshot), ctx))
    });
    group.bench_function("finish", |b| {
        b.iter(|| finish(black_box(outcome.clone()), ctx))
    });
    group.bench_function("token", |b| {
        b.iter(|| predebit_core::token::issue(black_box(&claims), &keys))
    });
    group.bench_function("compile_demo_global_policy", |b| {
        b.iter(|| CompiledPolicy::parse(black_box(&global)))
    });
    group.finish();
}

fn demo_store_global_document() -> String {
    let seed = repo_file("infra/seed/demo.json");
    seed["policies"][0]["document"].to_string()
}

criterion_group!(benches, bench_decide, bench_policy_size, bench_parts);
criterion_main!(benches);
