//! The ledger's refusals against DynamoDB Local: what changed between verify and reserve, forged
//! and stale tokens, expiry, release limits, malformed events and ops a deployment does not serve.
//! Every refusal is checked for what it leaves behind: no hold and unchanged balances.

use predebit_core::keys::KeyRing;
use predebit_core::ledger::{AllowedOps, LedgerConfig};
use predebit_core::records::{
    AgentRecord, AgentStatus, ConsentRecord, ConsentStatus, SessionRecord, SessionStatus,
};
use predebit_core::token;
use predebit_ledger::LedgerService;
use predebit_store::dynamodb::PolicyScope;
use predebit_store::secrets::KeySource;
use predebit_store::DynamoStore;
use serde_json::{json, Value};

use crate::common::{test_keys, NOW};
use crate::ledger_flow::{assert_invariant, pid, sample_verify_event, Flow};

const SESSION: &str = "ps-alice-main";
const SMALL: &str = "ps-alice-small";
const MERCHANT: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
/// The demo session's limit, in micro-USD.
const LIMIT: u64 = 25_000_000;

fn reserve(token: &str) -> Value {
    json!({"version": "1", "op": "reserve", "decisionToken": token})
}

fn mark_sent(session: &str, payment_id: &str, value: &str, valid_before: u64) -> Value {
    json!({"version": "1", "op": "markSent", "paymentSessionId": session, "paymentId": payment_id,
        "signed": {"to": MERCHANT, "value": value, "network": "eip155:8453", "validBefore": valid_before}})
}

fn settlement(n: u64) -> Value {
    json!({"success": true, "transaction": format!("0x{n:064x}"), "network": "base",
        "payer": "0x1111111111111111111111111111111111111111"})
}

fn commit(session: &str, payment_id: &str, n: u64) -> Value {
    json!({"version": "1", "op": "commit", "paymentSessionId": session, "paymentId": payment_id,
        "settlement": settlement(n)})
}

fn release(session: &str, payment_id: &str, reason: &str) -> Value {
    json!({"version": "1", "op": "release", "paymentSessionId": session, "paymentId": payment_id,
        "reason": reason})
}

fn get_hold(session: &str, payment_id: &str) -> Value {
    json!({"version": "1", "op": "getHold", "paymentSessionId": session, "paymentId": payment_id})
}

fn expire() -> Value {
    json!({"version": "1", "op": "expire"})
}

fn store(flow: &Flow) -> &DynamoStore {
    flow.ledger.ledger().store()
}

/// A ledger over the flow's tables with other settings or keys.
fn ledger_with(flow: &Flow, config: LedgerConfig, keys: KeyRing) -> LedgerService<DynamoStore> {
    LedgerService::new(store(flow).clone(), config, KeySource::fixed(keys))
        .with_metrics_sink(Box::new(|_| {}))
}

/// THEN no hold exists for `payment_id` and the session is as it was.
async fn assert_nothing_held(flow: &Flow, session: &str, payment_id: &str, before: &SessionRecord) {
    assert_eq!(&flow.session(session).await, before, "the session changed");
    use predebit_core::ledger::LedgerStore;
    let hold = store(flow).read_hold(session, payment_id).await.unwrap();
    assert_eq!(hold, None, "a hold was written");
}

/// The reserve response's reasonCode, after asserting it refused.
fn refusal(response: &Value) -> &str {
    assert_eq!(response["ok"], false, "{response}");
    response["reasonCode"].as_str().unwrap_or_default()
}

fn research_agent(status: AgentStatus) -> AgentRecord {
    AgentRecord {
        agent_id: "agent-research".into(),
        user_id: "user-alice".into(),
        status,
        allowed_tools: Some(vec![
            "http_request".into(),
            "fetch_weather".into(),
            "fetch_article".into(),
        ]),
    }
}

// --- 1. The agent changed --------------------------------------------------------------------

async fn reserve_after_agent_status(status: AgentStatus, name: &str) -> (Flow, Value) {
    // GIVEN a token from verify
    let flow = Flow::new(name).await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    // WHEN the agent's status changes before reserve
    store(&flow)
        .put_agent(&research_agent(status))
        .await
        .unwrap();
    let response = flow.op(reserve(&token)).await;
    (flow, response)
}

#[tokio::test]
async fn reserve_refuses_an_agent_suspended_after_verify_and_holds_nothing() {
    let (flow, response) =
        reserve_after_agent_status(AgentStatus::Suspended, "refuse-suspended").await;
    assert_eq!(refusal(&response), "AGENT_SUSPENDED");
    let before = flow.session(SESSION).await;
    assert_eq!(before.available_micros, LIMIT);
    assert_nothing_held(&flow, SESSION, &pid(1), &before).await;
}

#[tokio::test]
async fn reserve_refuses_an_agent_revoked_after_verify_and_holds_nothing() {
    let (flow, response) = reserve_after_agent_status(AgentStatus::Revoked, "refuse-revoked").await;
    assert_eq!(refusal(&response), "AGENT_REVOKED");
    let before = flow.session(SESSION).await;
    assert_eq!(before.available_micros, LIMIT);
    assert_nothing_held(&flow, SESSION, &pid(1), &before).await;
}

// --- 2. The consent changed ------------------------------------------------------------------

async fn reserve_after_consent(consent: ConsentRecord, name: &str) -> (Flow, Value) {
    let flow = Flow::new(name).await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    store(&flow)
        .put_consent("user-alice", "agent-research", &consent)
        .await
        .unwrap();
    let response = flow.op(reserve(&token)).await;
    (flow, response)
}

#[tokio::test]
async fn reserve_refuses_consent_revoked_after_verify_and_holds_nothing() {
    let revoked = ConsentRecord {
        status: ConsentStatus::Revoked,
        expires_at: Some(4_102_444_800),
    };
    let (flow, response) = reserve_after_consent(revoked, "refuse-consent-revoked").await;
    assert_eq!(refusal(&response), "CONSENT_REVOKED");
    let before = flow.session(SESSION).await;
    assert_eq!(before.available_micros, LIMIT);
    assert_nothing_held(&flow, SESSION, &pid(1), &before).await;
}

#[tokio::test]
async fn reserve_refuses_consent_expired_after_verify_and_holds_nothing() {
    // The reserve runs at NOW + 1: the consent's expiry (exclusive) has passed.
    let expired = ConsentRecord {
        status: ConsentStatus::Granted,
        expires_at: Some(NOW + 1),
    };
    let (flow, response) = reserve_after_consent(expired, "refuse-consent-expired").await;
    assert_eq!(refusal(&response), "CONSENT_EXPIRED");
    let before = flow.session(SESSION).await;
    assert_eq!(before.available_micros, LIMIT);
    assert_nothing_held(&flow, SESSION, &pid(1), &before).await;
}

// --- 3. A policy changed ---------------------------------------------------------------------

async fn reserve_after_policy(scope: PolicyScope, document: &str, name: &str) -> (Flow, Value) {
    let flow = Flow::new(name).await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    store(&flow).put_policy(&scope, document).await.unwrap();
    let response = flow.op(reserve(&token)).await;
    (flow, response)
}

#[tokio::test]
async fn reserve_refuses_when_the_global_policy_version_changed_and_holds_nothing() {
    // The same document again still bumps the version: the decision was made under another one.
    let (flow, response) = reserve_after_policy(
        PolicyScope::Global,
        r#"{"allowedNetworks": ["eip155:8453"], "consentRequired": true}"#,
        "refuse-policy-global",
    )
    .await;
    assert_eq!(refusal(&response), "POLICY_CHANGED");
    let before = flow.session(SESSION).await;
    assert_eq!(before.available_micros, LIMIT);
    assert_nothing_held(&flow, SESSION, &pid(1), &before).await;
}

#[tokio::test]
async fn reserve_refuses_when_a_policy_appears_at_a_scope_that_was_absent() {
    let (flow, response) = reserve_after_policy(
        PolicyScope::Agent("agent-research".into()),
        &json!({"blockedPayTo": [MERCHANT]}).to_string(),
        "refuse-policy-new-scope",
    )
    .await;
    assert_eq!(refusal(&response), "POLICY_CHANGED");
    let before = flow.session(SESSION).await;
    assert_eq!(before.available_micros, LIMIT);
    assert_nothing_held(&flow, SESSION, &pid(1), &before).await;
}

#[tokio::test]
async fn reserve_refuses_a_token_issued_before_its_policy_was_deleted_and_put_again() {
    // GIVEN a token issued against the global policy's first version
    let flow = Flow::new("refuse-policy-recreated").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    let first = store(&flow)
        .get_policy(&PolicyScope::Global)
        .await
        .unwrap()
        .unwrap();
    // WHEN the policy is deleted and a document is put again at that scope
    store(&flow)
        .delete_policy(&PolicyScope::Global)
        .await
        .unwrap();
    let version = store(&flow)
        .put_policy(&PolicyScope::Global, r#"{"maxPerPayment": "500.00"}"#)
        .await
        .unwrap();
    // THEN the new document has a version the token never saw, and reserve refuses it
    assert!(version > first.version, "{version} after {}", first.version);
    let response = flow.op(reserve(&token)).await;
    assert_eq!(refusal(&response), "POLICY_CHANGED");
    let before = flow.session(SESSION).await;
    assert_eq!(before.available_micros, LIMIT);
    assert_nothing_held(&flow, SESSION, &pid(1), &before).await;
}

// --- 4. The kill switch ----------------------------------------------------------------------

fn close_session(session: &str) -> Value {
    json!({"version": "1", "op": "closeSession", "paymentSessionId": session, "reason": "kill switch"})
}

#[tokio::test]
async fn reserve_refuses_a_session_closed_after_verify_and_holds_nothing() {
    // GIVEN a token from verify
    let flow = Flow::new("refuse-closed").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    // WHEN the kill switch is pulled
    let closed = flow.op(close_session(SESSION)).await;
    assert_eq!(closed["session"]["status"], "CLOSED", "{closed}");
    // THEN reserve is refused and nothing is held
    let response = flow.op(reserve(&token)).await;
    assert_eq!(refusal(&response), "SESSION_CLOSED");
    let before = flow.session(SESSION).await;
    assert_eq!(before.available_micros, LIMIT);
    assert_nothing_held(&flow, SESSION, &pid(1), &before).await;
}

#[tokio::test]
async fn a_hold_reserved_before_the_kill_switch_can_still_be_sent_and_committed() {
    // GIVEN a hold reserved before the session is closed
    let flow = Flow::new("closed-keeps-holds").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    assert_eq!(flow.op(reserve(&token)).await["ok"], true);
    flow.op(close_session(SESSION)).await;
    // WHEN it is marked sent and committed
    let sent = flow
        .op(mark_sent(SESSION, &pid(1), "1000000", NOW + 60))
        .await;
    let committed = flow.op(commit(SESSION, &pid(1), 1)).await;
    // THEN it posts, and the closed session records the settlement
    assert_eq!(sent["hold"]["state"], "SENT", "{sent}");
    assert_eq!(committed["hold"]["state"], "POSTED", "{committed}");
    let s = flow.session(SESSION).await;
    assert_eq!(
        (
            s.available_micros,
            s.reserved_micros,
            s.settled_micros,
            s.status
        ),
        (LIMIT - 1_000_000, 0, 1_000_000, SessionStatus::Closed)
    );
    assert_invariant(&s);
}

// --- 5. Tokens -------------------------------------------------------------------------------

fn ring(kid: &str, key: u8) -> KeyRing {
    KeyRing::from_secret_json(&KeyRing::new_secret_json(kid, &[key; 32], &[9u8; 32])).unwrap()
}

/// test-k1 (the test key) and test-k2 (another key), as after a rotation.
fn rotated_ring() -> KeyRing {
    let mut a: Value =
        serde_json::from_str(&KeyRing::new_secret_json("test-k1", &[7u8; 32], &[9u8; 32])).unwrap();
    let b: Value =
        serde_json::from_str(&KeyRing::new_secret_json("test-k2", &[8u8; 32], &[9u8; 32])).unwrap();
    a["keys"]["test-k2"] = b["keys"]["test-k2"].clone();
    KeyRing::from_secret_json(&a.to_string()).unwrap()
}

/// The token's parts with its kid replaced.
fn relabel(token: &str, kid: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("v1.{kid}.{}.{}", parts[2], parts[3])
}

#[tokio::test]
async fn reserve_refuses_a_token_with_a_flipped_payload_byte() {
    let flow = Flow::new("refuse-flipped").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    let before = flow.session(SESSION).await;
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let middle = parts[2].len() / 2;
    let flipped = if &parts[2][middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    parts[2].replace_range(middle..=middle, flipped);
    let forged = parts.join(".");
    assert_ne!(forged, token);

    let response = flow.op(reserve(&forged)).await;

    assert_eq!(refusal(&response), "TOKEN_INVALID");
    assert_nothing_held(&flow, SESSION, &pid(1), &before).await;
}

#[tokio::test]
async fn reserve_refuses_a_token_macd_under_another_key_with_the_same_kid() {
    let flow = Flow::new("refuse-other-key").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    let before = flow.session(SESSION).await;
    let claims = token::verify(&token, &test_keys(), NOW).unwrap();
    let forged = token::issue(&claims, &ring("test-k1", 8));
    assert_ne!(forged, token);

    let response = flow.op(reserve(&forged)).await;

    assert_eq!(refusal(&response), "TOKEN_INVALID");
    assert_nothing_held(&flow, SESSION, &pid(1), &before).await;
}

#[tokio::test]
async fn reserve_refuses_a_token_whose_kid_was_swapped() {
    // GIVEN a ledger that knows both test-k1 and test-k2
    let flow = Flow::new("refuse-kid-swap").await;
    let ledger = ledger_with(&flow, LedgerConfig::default(), rotated_ring());
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    let before = flow.session(SESSION).await;
    let claims = token::verify(&token, &test_keys(), NOW).unwrap();
    let under_k2 = token::issue(&claims, &ring("test-k2", 8));
    // WHEN a token's kid names another key than the one that made its MAC, or no known key
    for forged in [
        relabel(&token, "test-k2"),
        relabel(&under_k2, "test-k1"),
        relabel(&token, "test-k9"),
    ] {
        let response = ledger.handle(&reserve(&forged), NOW + 1).await;
        // THEN each is refused and nothing is held
        assert_eq!(refusal(&response), "TOKEN_INVALID", "{forged}");
    }
    assert_nothing_held(&flow, SESSION, &pid(1), &before).await;
}

#[tokio::test]
async fn reserve_refuses_a_token_at_its_expiry() {
    let flow = Flow::new("refuse-expired").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    let before = flow.session(SESSION).await;
    let expires_at = token::verify(&token, &test_keys(), NOW).unwrap().expires_at;

    let response = flow.op_at(reserve(&token), expires_at).await;

    assert_eq!(refusal(&response), "TOKEN_EXPIRED");
    assert_nothing_held(&flow, SESSION, &pid(1), &before).await;
}

#[tokio::test]
async fn reserve_refuses_a_token_for_another_payment() {
    let flow = Flow::new("refuse-other-payment").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    let before = flow.session(SESSION).await;

    let other_payment = flow
        .op(json!({"version": "1", "op": "reserve", "decisionToken": token, "paymentId": pid(2)}))
        .await;
    let other_session = flow
        .op(json!({"version": "1", "op": "reserve", "decisionToken": token, "paymentSessionId": SMALL}))
        .await;

    assert_eq!(refusal(&other_payment), "TOKEN_INVALID");
    assert_eq!(refusal(&other_session), "TOKEN_INVALID");
    assert_nothing_held(&flow, SESSION, &pid(1), &before).await;
    assert_nothing_held(&flow, SESSION, &pid(2), &before).await;
}

#[tokio::test]
async fn reserve_refuses_another_payment_under_a_used_payment_id() {
    // GIVEN two approvals of different amounts under one paymentId, the first reserved
    let flow = Flow::new("refuse-reused-id").await;
    let first = flow.approve(&pid(1), "1000000", SESSION).await;
    let second = flow.approve(&pid(1), "2000000", SESSION).await;
    assert_eq!(flow.op(reserve(&first)).await["ok"], true);
    let before = flow.session(SESSION).await;
    // WHEN the second is reserved
    let response = flow.op(reserve(&second)).await;
    // THEN it conflicts, and only the first amount is held
    assert_eq!(refusal(&response), "IDEMPOTENCY_CONFLICT");
    assert_eq!(flow.session(SESSION).await, before);
    assert_eq!(before.reserved_micros, 1_000_000);
    let hold = flow.op(get_hold(SESSION, &pid(1))).await;
    assert_eq!(hold["hold"]["amountMicros"], 1_000_000, "{hold}");
}

// --- 6. Expiry -------------------------------------------------------------------------------

#[tokio::test]
async fn expire_voids_a_pending_hold_once_its_window_has_passed_and_not_before() {
    // GIVEN a PENDING hold reserved at NOW + 1 (window 120 s: due at NOW + 121)
    let flow = Flow::new("expire-pending").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    let reserved = flow.op(reserve(&token)).await;
    assert_eq!(reserved["hold"]["expiresAt"], NOW + 121, "{reserved}");
    // WHEN expire runs one second early, then on time
    let early = flow.op_at(expire(), NOW + 120).await;
    let held = flow.session(SESSION).await;
    let due = flow.op_at(expire(), NOW + 121).await;
    // THEN only the second voids it and the amount returns
    assert_eq!(
        early["expired"],
        json!({"pending": 0, "sent": 0}),
        "{early}"
    );
    assert_eq!(held.reserved_micros, 1_000_000);
    assert_eq!(due["expired"], json!({"pending": 1, "sent": 0}), "{due}");
    let hold = flow.op(get_hold(SESSION, &pid(1))).await;
    assert_eq!(
        (
            hold["hold"]["state"].clone(),
            hold["hold"]["voidReason"].clone()
        ),
        (json!("VOIDED"), json!("EXPIRED"))
    );
    let s = flow.session(SESSION).await;
    assert_eq!((s.available_micros, s.reserved_micros), (LIMIT, 0));
    assert_invariant(&s);
}

/// Reserves and marks sent a 1.00 hold for `payment_id` with `valid_before`; returns the markSent
/// response.
async fn sent_hold(flow: &Flow, payment_id: &str, valid_before: u64) -> Value {
    let token = flow.approve(payment_id, "1000000", SESSION).await;
    assert_eq!(flow.op(reserve(&token)).await["ok"], true);
    let sent = flow
        .op(mark_sent(SESSION, payment_id, "1000000", valid_before))
        .await;
    assert_eq!(sent["hold"]["state"], "SENT", "{sent}");
    sent
}

#[tokio::test]
async fn a_sent_hold_expires_at_valid_before_plus_the_margin_and_not_before() {
    // GIVEN a SENT hold whose authorization is valid before NOW + 60
    let flow = Flow::new("expire-sent").await;
    let sent = sent_hold(&flow, &pid(1), NOW + 60).await;
    assert_eq!(sent["hold"]["expiresAt"], NOW + 180, "{sent}");
    // WHEN expire runs one second before validBefore + 120, then at it
    let early = flow.op_at(expire(), NOW + 179).await;
    let still = flow.op(get_hold(SESSION, &pid(1))).await;
    let due = flow.op_at(expire(), NOW + 180).await;
    // THEN the hold stays SENT until then, and is voided at it
    assert_eq!(
        early["expired"],
        json!({"pending": 0, "sent": 0}),
        "{early}"
    );
    assert_eq!(still["hold"]["state"], "SENT", "{still}");
    assert_eq!(due["expired"], json!({"pending": 0, "sent": 1}), "{due}");
    let s = flow.session(SESSION).await;
    assert_eq!((s.available_micros, s.reserved_micros), (LIMIT, 0));
    assert_invariant(&s);
}

#[tokio::test]
async fn mark_sent_refuses_an_authorization_that_outlives_the_approved_window_and_changes_nothing()
{
    // GIVEN a hold approved at NOW under the default 300 s window (latest validBefore NOW + 330)
    let flow = Flow::new("mark-sent-window").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    assert_eq!(flow.op(reserve(&token)).await["ok"], true);
    // WHEN the signed authorization is valid one second longer, or for a day
    for valid_before in [NOW + 331, NOW + 86_400, u64::MAX] {
        let refused = flow
            .op(mark_sent(SESSION, &pid(1), "1000000", valid_before))
            .await;
        // THEN markSent refuses it and the hold stays PENDING with its expiry
        assert_eq!(
            refused["reasonCode"], "SIGNED_PAYLOAD_MISMATCH",
            "{refused}"
        );
        let hold = flow.op(get_hold(SESSION, &pid(1))).await;
        assert_eq!(hold["hold"]["state"], "PENDING", "{hold}");
        assert_eq!(hold["hold"]["expiresAt"], NOW + 1 + 120, "{hold}");
    }
    // AND the longest allowed authorization is accepted
    let sent = flow
        .op(mark_sent(SESSION, &pid(1), "1000000", NOW + 330))
        .await;
    assert_eq!(sent["hold"]["state"], "SENT", "{sent}");
}

#[tokio::test]
async fn a_sent_hold_with_the_longest_allowed_authorization_stays_open_until_it_cannot_settle() {
    // GIVEN a hold marked sent with validBefore NOW + 330, the latest the window allows
    let flow = Flow::new("expire-sent-longest").await;
    let sent = sent_hold(&flow, &pid(1), NOW + 330).await;
    assert_eq!(sent["hold"]["expiresAt"], NOW + 450, "{sent}");
    // WHEN expire runs one second before validBefore + 120, then at it (no 15-minute cap)
    let early = flow.op_at(expire(), NOW + 449).await;
    let due = flow.op_at(expire(), NOW + 450).await;
    // THEN it is voided only once the authorization can no longer settle
    assert_eq!(
        early["expired"],
        json!({"pending": 0, "sent": 0}),
        "{early}"
    );
    assert_eq!(due["expired"], json!({"pending": 0, "sent": 1}), "{due}");
    let s = flow.session(SESSION).await;
    assert_eq!((s.available_micros, s.reserved_micros), (LIMIT, 0));
}

#[tokio::test]
async fn a_merchant_asking_for_a_day_long_authorization_is_never_signed_for() {
    // GIVEN the review's attack: a merchant asks for a one-day timeout on a session
    let flow = Flow::new("day-long-window").await;
    let mut event = sample_verify_event(&pid(1), "1000000", SESSION);
    event["requirement"]["maxTimeoutSeconds"] = json!(86_400);
    // WHEN it is verified THEN it is declined before any hold or signature
    let decision = flow.verify.handle_json(&event, "it-window", NOW).await;
    assert_eq!(
        decision["reasonCode"], "AUTHORIZATION_WINDOW_TOO_LONG",
        "{decision}"
    );
    assert!(decision.get("decisionToken").is_none());
    let s = flow.session(SESSION).await;
    assert_eq!((s.available_micros, s.reserved_micros), (LIMIT, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_racing_commit_leaves_each_hold_posted_once_and_the_invariant_holds() {
    // GIVEN 20 SENT holds of 0.50, hold i due at NOW + 180 + 10 i (one per round)
    const ROUNDS: u64 = 20;
    let flow = Flow::new("expire-race").await;
    for i in 0..ROUNDS {
        let token = flow.approve(&pid(100 + i), "500000", SESSION).await;
        assert_eq!(flow.op(reserve(&token)).await["ok"], true);
        let sent = flow
            .op(mark_sent(
                SESSION,
                &pid(100 + i),
                "500000",
                NOW + 60 + 10 * i,
            ))
            .await;
        assert_eq!(sent["hold"]["expiresAt"], NOW + 180 + 10 * i, "{sent}");
    }
    let mut late = 0;
    for i in 0..ROUNDS {
        let at = NOW + 180 + 10 * i;
        // Half the commits carry the amount hint (one request), half let the store read it.
        let mut settle = commit(SESSION, &pid(100 + i), i);
        if i % 2 == 0 {
            settle["amountMicros"] = json!(500_000);
        }
        // WHEN expire and a successful commit arrive together
        let (expired, committed) = tokio::join!(flow.op_at(expire(), at), flow.op_at(settle, at));
        // THEN the settlement is never lost: the hold is POSTED, late exactly when expire won
        assert_eq!(committed["ok"], true, "round {i}: {committed}");
        let hold = flow.op(get_hold(SESSION, &pid(100 + i))).await;
        assert_eq!(hold["hold"]["state"], "POSTED", "round {i}: {hold}");
        let expire_won = expired["expired"]["sent"] == 1;
        assert_eq!(
            hold["hold"]["late"], expire_won,
            "round {i}: {expired} {hold}"
        );
        late += u64::from(expire_won);
        let s = flow.session(SESSION).await;
        assert_eq!(s.settled_micros, 500_000 * (i + 1), "round {i}");
        assert_invariant(&s);
    }
    let s = flow.session(SESSION).await;
    assert_eq!(
        (
            s.available_micros,
            s.reserved_micros,
            s.settled_micros,
            s.overdraft_micros
        ),
        (LIMIT - 500_000 * ROUNDS, 0, 500_000 * ROUNDS, 0),
        "{late} late"
    );
}

#[tokio::test]
async fn a_settlement_after_expiry_posts_late_and_overdraws_an_exhausted_session() {
    // GIVEN a 2.00 SENT hold on a 2.00 session, expired, and its budget reserved again
    let flow = Flow::new("late-overdraft").await;
    let token = flow.approve(&pid(1), "2000000", SMALL).await;
    assert_eq!(flow.op(reserve(&token)).await["ok"], true);
    flow.op(mark_sent(SMALL, &pid(1), "2000000", NOW + 60))
        .await;
    let voided = flow.op_at(expire(), NOW + 180).await;
    assert_eq!(voided["expired"]["sent"], 1, "{voided}");
    let again = flow.approve_at(&pid(2), "2000000", SMALL, NOW + 181).await;
    let second = flow.op_at(reserve(&again), NOW + 182).await;
    assert_eq!(second["ok"], true, "{second}");
    assert_eq!(flow.session(SMALL).await.available_micros, 0);
    // WHEN the first payment's settlement arrives
    let committed = flow.op_at(commit(SMALL, &pid(1), 1), NOW + 183).await;
    // THEN it is recorded late and the shortfall is overdraft
    assert_eq!(
        (
            committed["ok"].clone(),
            committed["hold"]["state"].clone(),
            committed["hold"]["late"].clone()
        ),
        (json!(true), json!("POSTED"), json!(true)),
        "{committed}"
    );
    let s = flow.session(SMALL).await;
    assert_eq!(
        (
            s.available_micros,
            s.reserved_micros,
            s.settled_micros,
            s.overdraft_micros
        ),
        (0, 2_000_000, 2_000_000, 2_000_000)
    );
    assert_invariant(&s);
}

#[tokio::test]
async fn a_late_settlement_takes_what_is_still_available_and_overdraws_only_the_rest() {
    // GIVEN a 2.00 SENT hold on a 2.00 session, expired, and 1.50 of the budget reserved again
    let flow = Flow::new("late-partial").await;
    let token = flow.approve(&pid(1), "2000000", SMALL).await;
    assert_eq!(flow.op(reserve(&token)).await["ok"], true);
    flow.op(mark_sent(SMALL, &pid(1), "2000000", NOW + 60))
        .await;
    let voided = flow.op_at(expire(), NOW + 180).await;
    assert_eq!(voided["expired"]["sent"], 1, "{voided}");
    let again = flow.approve_at(&pid(2), "1500000", SMALL, NOW + 181).await;
    let second = flow.op_at(reserve(&again), NOW + 182).await;
    assert_eq!(second["ok"], true, "{second}");
    assert_eq!(flow.session(SMALL).await.available_micros, 500_000);
    // WHEN the first payment's settlement arrives
    let committed = flow.op_at(commit(SMALL, &pid(1), 1), NOW + 183).await;
    // THEN the 0.50 still available is taken and only the 1.50 short is overdraft
    assert_eq!(committed["hold"]["late"], true, "{committed}");
    let s = flow.session(SMALL).await;
    assert_invariant(&s);
    assert_eq!(
        (
            s.available_micros,
            s.reserved_micros,
            s.settled_micros,
            s.overdraft_micros
        ),
        (0, 1_500_000, 2_000_000, 1_500_000)
    );
}

// --- 7. Release ------------------------------------------------------------------------------

#[tokio::test]
async fn release_refuses_a_sent_hold_and_changes_nothing() {
    let flow = Flow::new("release-sent").await;
    sent_hold(&flow, &pid(1), NOW + 60).await;
    let before = flow.session(SESSION).await;

    let response = flow.op(release(SESSION, &pid(1), "NOT_SENT")).await;

    assert_eq!(refusal(&response), "OP_NOT_ALLOWED");
    assert_eq!(flow.session(SESSION).await, before);
    let hold = flow.op(get_hold(SESSION, &pid(1))).await;
    assert_eq!(hold["hold"]["state"], "SENT", "{hold}");
}

#[tokio::test]
async fn releasing_twice_with_the_same_reason_is_a_replay_that_returns_the_amount_once() {
    let flow = Flow::new("release-twice").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    flow.op(reserve(&token)).await;

    let first = flow.op(release(SESSION, &pid(1), "CANCELLED")).await;
    let second = flow.op(release(SESSION, &pid(1), "CANCELLED")).await;

    assert_eq!(
        (first["ok"].clone(), first["replayed"].clone()),
        (json!(true), json!(false)),
        "{first}"
    );
    assert_eq!(
        (second["ok"].clone(), second["replayed"].clone()),
        (json!(true), json!(true)),
        "{second}"
    );
    let s = flow.session(SESSION).await;
    assert_eq!((s.available_micros, s.reserved_micros), (LIMIT, 0));
    assert_invariant(&s);
}

#[tokio::test]
async fn a_commit_on_a_released_hold_is_recorded_late() {
    let flow = Flow::new("release-then-commit").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    flow.op(reserve(&token)).await;
    flow.op(release(SESSION, &pid(1), "SIGNING_FAILED")).await;

    let committed = flow.op(commit(SESSION, &pid(1), 1)).await;

    assert_eq!(
        (
            committed["hold"]["state"].clone(),
            committed["hold"]["late"].clone()
        ),
        (json!("POSTED"), json!(true)),
        "{committed}"
    );
    let s = flow.session(SESSION).await;
    assert_eq!(
        (
            s.available_micros,
            s.reserved_micros,
            s.settled_micros,
            s.overdraft_micros
        ),
        (LIMIT - 1_000_000, 0, 1_000_000, 0)
    );
    assert_invariant(&s);
}

// --- 8. Malformed events ---------------------------------------------------------------------

mod malformed {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use serde_json::{json, Value};

    use super::{commit, mark_sent, release, reserve, SESSION};
    use crate::common::NOW;
    use crate::ledger_flow::{pid, Flow};

    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(32)
    }

    fn runner() -> TestRunner {
        TestRunner::new(Config {
            cases: cases(),
            failure_persistence: None,
            ..Config::default()
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "version",
                "op",
                "paymentSessionId",
                "paymentId",
                "decisionToken",
                "signed",
                "settlement",
                "reason",
                "amountMicros",
            ])
            .prop_map(str::to_string),
            "[a-zA-Z]{0,10}",
        ]
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>().prop_filter_map("finite", |f| {
                serde_json::Number::from_f64(f).map(Value::Number)
            }),
            "\\PC{0,24}".prop_map(Value::String),
            Just(json!(SESSION)),
            Just(json!(pid(1))),
        ];
        leaf.prop_recursive(3, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(key(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// An event that names a version and an agent op, with arbitrary fields.
    fn arb_op_event() -> impl Strategy<Value = Value> {
        (
            prop::sample::select(vec!["reserve", "markSent", "commit", "release"]),
            prop::collection::btree_map(key(), arb_json(), 0..5),
        )
            .prop_map(|(op, fields)| {
                let mut event: serde_json::Map<String, Value> = fields.into_iter().collect();
                event.insert("version".into(), json!("1"));
                event.insert("op".into(), json!(op));
                Value::Object(event)
            })
    }

    /// A value of another JSON type than `v` that the field cannot accept.
    fn other_type(v: &Value, pick: usize) -> Value {
        let options = [
            Value::Null,
            json!(true),
            json!(42),
            json!([v.clone()]),
            json!({"x": v.clone()}),
        ];
        // No string among them: a decimal string is a valid validBefore, and a string a valid
        // settlement (the header value).
        let differs = |o: &&Value| std::mem::discriminant(*o) != std::mem::discriminant(v);
        let choices: Vec<&Value> = options.iter().filter(differs).collect();
        choices[pick % choices.len()].clone()
    }

    /// The valid agent events the mutations start from (none carries an optional field).
    fn valid_events() -> Vec<Value> {
        vec![
            mark_sent(SESSION, &pid(1), "1000000", NOW + 60),
            commit(SESSION, &pid(1), 1),
            release(SESSION, &pid(1), "CANCELLED"),
        ]
    }

    /// The paths of the required fields: every top-level field, and those inside `signed`
    /// (the settlement is mutated whole: several of its fields are optional).
    fn paths(event: &Value) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for (k, child) in event.as_object().expect("an event is an object") {
            out.push(vec![k.clone()]);
            if k == "signed" {
                for inner in child.as_object().expect("signed is an object").keys() {
                    out.push(vec![k.clone(), inner.clone()]);
                }
            }
        }
        out
    }

    fn parent_mut<'a>(v: &'a mut Value, path: &[String]) -> &'a mut serde_json::Map<String, Value> {
        let mut cur = v;
        for k in &path[..path.len() - 1] {
            cur = cur.get_mut(k).expect("path exists");
        }
        cur.as_object_mut().expect("parent is an object")
    }

    /// A valid event with one field removed or given a wrong type.
    fn mutated_event() -> impl Strategy<Value = (Value, String)> {
        (
            0..3usize,
            any::<prop::sample::Index>(),
            any::<bool>(),
            0..5usize,
        )
            .prop_map(|(which, at, remove, pick)| {
                let mut event = valid_events().swap_remove(which);
                let all = paths(&event);
                let path = at.get(&all).clone();
                let last = path.last().unwrap().clone();
                let parent = parent_mut(&mut event, &path);
                let what = if remove {
                    parent.remove(&last);
                    format!("removed {}", path.join("."))
                } else {
                    let replacement = other_type(&parent[&last], pick);
                    let what = format!("{} := {replacement}", path.join("."));
                    parent.insert(last, replacement);
                    what
                };
                (event, what)
            })
    }

    /// A flow with one PENDING 1.00 hold on pid(1), and the state to compare against.
    fn pending_flow(rt: &tokio::runtime::Runtime, name: &str) -> (Flow, Value) {
        rt.block_on(async {
            let flow = Flow::new(name).await;
            let token = flow.approve(&pid(1), "1000000", SESSION).await;
            assert_eq!(flow.op(reserve(&token)).await["ok"], true);
            let state = snapshot(&flow).await;
            (flow, state)
        })
    }

    /// The session's balances and holds, as getSession reports them.
    async fn snapshot(flow: &Flow) -> Value {
        let s = flow
            .op(json!({"version": "1", "op": "getSession", "paymentSessionId": SESSION}))
            .await;
        json!({"session": s["session"], "holds": s["holds"]})
    }

    #[test]
    fn arbitrary_json_is_refused_as_invalid_request_and_changes_nothing() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (flow, before) = pending_flow(&rt, "malformed-arbitrary");
        runner()
            .run(&arb_json(), |event| {
                let response = rt.block_on(flow.op(event.clone()));
                prop_assert_eq!(&response["ok"], &json!(false), "{} -> {}", event, response);
                prop_assert_eq!(
                    &response["reasonCode"],
                    &json!("INVALID_REQUEST"),
                    "{}",
                    event
                );
                prop_assert_eq!(rt.block_on(snapshot(&flow)), before.clone());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn agent_ops_with_arbitrary_fields_are_refused_with_a_reason_and_change_nothing() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (flow, before) = pending_flow(&rt, "malformed-op-fields");
        runner()
            .run(&arb_op_event(), |event| {
                let response = rt.block_on(flow.op(event.clone()));
                prop_assert_eq!(&response["ok"], &json!(false), "{} -> {}", event, response);
                prop_assert!(
                    response["reasonCode"]
                        .as_str()
                        .is_some_and(|c| !c.is_empty())
                        && response["message"].is_string(),
                    "{} -> {}",
                    event,
                    response
                );
                prop_assert_eq!(rt.block_on(snapshot(&flow)), before.clone());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_valid_event_with_a_field_removed_or_retyped_is_invalid_and_changes_nothing() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (flow, before) = pending_flow(&rt, "malformed-mutated");
        runner()
            .run(&mutated_event(), |(event, what)| {
                let response = rt.block_on(flow.op(event.clone()));
                prop_assert_eq!(&response["ok"], &json!(false), "{}: {}", what, response);
                prop_assert_eq!(
                    &response["reasonCode"],
                    &json!("INVALID_REQUEST"),
                    "{}: {}",
                    what,
                    response
                );
                prop_assert_eq!(rt.block_on(snapshot(&flow)), before.clone());
                Ok(())
            })
            .unwrap();
    }
}

// --- 9. Ops a deployment does not serve ------------------------------------------------------

fn serving(setting: &str) -> LedgerConfig {
    LedgerConfig {
        allowed: AllowedOps::parse(setting).unwrap(),
        ..LedgerConfig::default()
    }
}

#[tokio::test]
async fn the_agent_ledger_refuses_open_session_and_creates_nothing() {
    let flow = Flow::new("ops-agent-open").await;
    let agent = ledger_with(&flow, serving("agent"), test_keys());

    let response = agent
        .handle(
            &json!({"version": "1", "op": "openSession", "paymentSessionId": "ps-new",
                "userId": "user-alice", "limit": "5.00", "expiryMinutes": 60}),
            NOW + 1,
        )
        .await;

    assert_eq!(refusal(&response), "OP_NOT_ALLOWED");
    let read = flow
        .op(json!({"version": "1", "op": "getSession", "paymentSessionId": "ps-new"}))
        .await;
    assert_eq!(read["reasonCode"], "SESSION_UNKNOWN", "{read}");
}

#[tokio::test]
async fn the_agent_ledger_refuses_expire_and_a_due_hold_stays_pending() {
    let flow = Flow::new("ops-agent-expire").await;
    let agent = ledger_with(&flow, serving("agent"), test_keys());
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    let reserved = agent.handle(&reserve(&token), NOW + 1).await;
    assert_eq!(reserved["ok"], true);

    let response = agent.handle(&expire(), NOW + 10_000).await;

    assert_eq!(refusal(&response), "OP_NOT_ALLOWED");
    let mut read = get_hold(SESSION, &pid(1));
    read["holdToken"] = reserved["holdToken"].clone();
    let hold = flow.op(read).await;
    assert_eq!(hold["hold"]["state"], "PENDING", "{hold}");
}

#[tokio::test]
async fn the_schedule_ledger_refuses_reserve_and_holds_nothing() {
    let flow = Flow::new("ops-schedule-reserve").await;
    let schedule = ledger_with(&flow, serving("schedule"), test_keys());
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    let before = flow.session(SESSION).await;

    let response = schedule.handle(&reserve(&token), NOW + 1).await;

    assert_eq!(refusal(&response), "OP_NOT_ALLOWED");
    assert_nothing_held(&flow, SESSION, &pid(1), &before).await;
}

#[tokio::test]
async fn one_unreadable_open_hold_does_not_stop_expire_for_the_others() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let flow = Flow::new("expire-unreadable").await;
    for n in 1..=2u64 {
        let token = flow.approve(&pid(n), "1000000", SESSION).await;
        assert_eq!(flow.op(reserve(&token)).await["ok"], true);
    }
    // GIVEN hold pid(1) damaged behind the ledger (its amount is no longer a number)
    let s = store(&flow);
    s.client()
        .update_item()
        .table_name(&s.tables().ledger)
        .key("pk", AttributeValue::S(format!("SESSION#{SESSION}")))
        .key("sk", AttributeValue::S(format!("HOLD#{}", pid(1))))
        .update_expression("SET amountMicros = :x")
        .expression_attribute_values(":x", AttributeValue::S("garbage".into()))
        .send()
        .await
        .unwrap();
    // WHEN expire runs after both PENDING windows
    let expired = flow.op_at(expire(), NOW + 1000).await;
    // THEN the readable hold is voided and the unreadable one is counted, not fatal
    assert_eq!(expired["ok"], true, "{expired}");
    assert_eq!(expired["expired"]["pending"], 1, "{expired}");
    assert_eq!(expired["unreadable"], 1, "{expired}");
}

#[tokio::test]
async fn a_hold_stored_before_holds_carried_a_window_reads_and_expires() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let flow = Flow::new("expire-legacy-hold").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    assert_eq!(flow.op(reserve(&token)).await["ok"], true);
    let s = store(&flow);
    s.client()
        .update_item()
        .table_name(&s.tables().ledger)
        .key("pk", AttributeValue::S(format!("SESSION#{SESSION}")))
        .key("sk", AttributeValue::S(format!("HOLD#{}", pid(1))))
        .update_expression("REMOVE latestValidBefore")
        .send()
        .await
        .unwrap();
    // A signature cannot be recorded for it (no window is known), and expire voids it
    let sent = flow
        .op(mark_sent(SESSION, &pid(1), "1000000", NOW + 60))
        .await;
    assert_eq!(sent["reasonCode"], "SIGNED_PAYLOAD_MISMATCH", "{sent}");
    let expired = flow.op_at(expire(), NOW + 1000).await;
    assert_eq!(expired["expired"]["pending"], 1, "{expired}");
}

#[tokio::test]
async fn mark_sent_refuses_an_authorization_already_past_its_valid_before() {
    let flow = Flow::new("mark-sent-past").await;
    let token = flow.approve(&pid(1), "1000000", SESSION).await;
    assert_eq!(flow.op(reserve(&token)).await["ok"], true);
    for valid_before in [1, NOW + 1] {
        // flow.op runs the ledger at NOW + 1
        let refused = flow
            .op(mark_sent(SESSION, &pid(1), "1000000", valid_before))
            .await;
        assert_eq!(
            refused["reasonCode"], "SIGNED_PAYLOAD_MISMATCH",
            "{refused}"
        );
    }
    let hold = flow.op(get_hold(SESSION, &pid(1))).await;
    assert_eq!(hold["hold"]["state"], "PENDING", "{hold}");
}
