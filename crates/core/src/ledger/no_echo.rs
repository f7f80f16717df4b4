//! No ledger answer echoes a value or key of the event, and none grows with it: the verify
//! injection (`decision/no_echo.rs`) run through every op's event, over a store that finds
//! nothing, so every field is read and every refusal path after the reads is reached.

use std::future::Future;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::port::{
    LedgerStore, OpenResult, ReserveRequest, ReserveResult, SessionPage, Transition, Write,
};
use super::{new_hold, Ledger, LedgerConfig};
use crate::decision::no_echo::{
    adversarial_text, head, holds_marker, pointers, spoil, MARKER, SPOILS,
};
use crate::hold::{Hold, HoldState, SettlementRecord, SignedRecord};
use crate::hold_token;
use crate::keys::KeyRing;
use crate::money::format_usd;
use crate::payment_session::{
    CreateSession, PaymentSession, PaymentSessionError, PaymentSessions, SessionAmount,
};
use crate::reason::ReasonCode;
use crate::records::{PolicyVersions, SessionRecord};
use crate::store::StoreError;
use crate::token::{self, TokenClaims};

const NOW: u64 = 1_800_000_000;
const SESSION: &str = "ps1";
const PAY_TO: &str = "0x209693bc6afc0c5328ba36faf03c514ef312287c";
/// Every ledger answer, serialized, is at most this long (a reserve's hold and hold token take
/// about 1,500 bytes).
const MAX_LEDGER_RESPONSE_BYTES: usize = 4 * 1024;
/// A refusal's message is at most this long.
const MAX_LEDGER_MESSAGE_BYTES: usize = 512;

/// A store in which nothing exists: reserves hold, sessions open, every other change finds no
/// hold. Enough for the ledger to read and judge every field of every op.
struct NothingStore;

fn ready<T: Send>(value: T) -> impl Future<Output = Result<T, StoreError>> + Send {
    std::future::ready(Ok(value))
}

impl LedgerStore for NothingStore {
    fn reserve(
        &self,
        _: &ReserveRequest,
    ) -> impl Future<Output = Result<ReserveResult, StoreError>> + Send {
        ready(ReserveResult::Held)
    }
    fn mark_sent(
        &self,
        _: &str,
        _: &str,
        _: &SignedRecord,
        _: u64,
        _: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send {
        ready(Transition::NotApplied(None))
    }
    fn post(
        &self,
        _: &str,
        _: &str,
        _: Option<u64>,
        _: &SettlementRecord,
        _: HoldState,
        _: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send {
        ready(Transition::NotApplied(None))
    }
    fn post_late(
        &self,
        _: &Hold,
        _: &SettlementRecord,
        _: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send {
        ready(Transition::NotApplied(None))
    }
    fn record_failed_settlement(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
        _: Option<&str>,
        _: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send {
        ready(Transition::NotApplied(None))
    }
    fn release(
        &self,
        _: &str,
        _: &str,
        _: Option<u64>,
        _: &str,
        _: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send {
        ready(Transition::NotApplied(None))
    }
    fn due_holds(
        &self,
        _: u64,
        _: usize,
    ) -> impl Future<Output = Result<super::DueHolds, StoreError>> + Send {
        ready(super::DueHolds::default())
    }
    fn expire_hold(
        &self,
        _: &Hold,
        _: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send {
        ready(Transition::NotApplied(None))
    }
    fn read_session_page(
        &self,
        _: &str,
        _: Option<&str>,
        _: usize,
    ) -> impl Future<Output = Result<Option<SessionPage>, StoreError>> + Send {
        ready(None)
    }
    fn read_hold(
        &self,
        _: &str,
        _: &str,
    ) -> impl Future<Output = Result<Option<Hold>, StoreError>> + Send {
        ready(None)
    }
    fn open_session(
        &self,
        session: &SessionRecord,
        _: Write<'_>,
    ) -> impl Future<Output = Result<OpenResult, StoreError>> + Send {
        ready(OpenResult::Created(session.clone()))
    }
    fn close_session(
        &self,
        _: &str,
        _: &str,
        _: Write<'_>,
    ) -> impl Future<Output = Result<Option<(SessionRecord, bool)>, StoreError>> + Send {
        ready(None)
    }
}

fn keys() -> KeyRing {
    KeyRing::from_secret_json(&KeyRing::new_secret_json("k1", &[1; 32], &[2; 32])).unwrap()
}

fn claims() -> TokenClaims {
    TokenClaims {
        payment_id: "ab".repeat(32),
        verification_id: "v1".into(),
        audit_hash: "cd".repeat(32),
        user_id: "u1".into(),
        agent_id: "a1".into(),
        payment_session_id: SESSION.into(),
        scheme: "exact".into(),
        network: "eip155:8453".into(),
        asset: "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913".into(),
        pay_to: PAY_TO.into(),
        amount_atomic: "1000000".into(),
        amount_micros: 1_000_000,
        resource_host: Some("api.example".into()),
        max_timeout_seconds: 60,
        policy_versions: PolicyVersions::default(),
        consent_required: false,
        authorization_window_seconds: 300,
        issued_at: NOW,
        expires_at: NOW + 60,
        budgets: Vec::new(),
    }
}

/// One valid event per op, every optional field present.
fn templates(keys: &KeyRing) -> Vec<Value> {
    let claims = claims();
    let decision_token = token::issue(&claims, keys);
    let hold = new_hold(&claims, &decision_token, keys, NOW, 120);
    let hold_token = hold_token::issue_for(&hold, &claims.user_id, keys);
    let payment_id = claims.payment_id.clone();
    let base = |op: &str, fields: Value| {
        let mut event = json!({"version": "1", "op": op});
        for (k, v) in fields.as_object().unwrap() {
            event[k] = v.clone();
        }
        event
    };
    vec![
        base(
            "openSession",
            json!({"paymentSessionId": SESSION, "userId": "u1", "limit": "25.00", "expiryMinutes": 60}),
        ),
        base(
            "closeSession",
            json!({"paymentSessionId": SESSION, "reason": "operator kill switch"}),
        ),
        base(
            "reserve",
            json!({"decisionToken": decision_token, "paymentId": payment_id, "paymentSessionId": SESSION}),
        ),
        base(
            "markSent",
            json!({"paymentSessionId": SESSION, "paymentId": payment_id, "holdToken": hold_token,
                "signed": {"to": PAY_TO, "value": "1000000", "network": "eip155:8453",
                    "asset": "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913", "validBefore": NOW + 60}}),
        ),
        base(
            "commit",
            json!({"paymentSessionId": SESSION, "paymentId": payment_id, "holdToken": hold_token,
                "amountMicros": 1_000_000,
                "settlement": {"success": true, "transaction": format!("0x{}", "ef".repeat(32)),
                    "network": "eip155:8453", "payer": "0x857b06519E91e3A54538791bDbb0E22373e36b66",
                    "amount": "1000000"}}),
        ),
        base(
            "release",
            json!({"paymentSessionId": SESSION, "paymentId": payment_id, "holdToken": hold_token,
                "reason": "NOT_SENT", "amountMicros": 1_000_000}),
        ),
        base(
            "getSession",
            json!({"paymentSessionId": SESSION, "holdToken": hold_token,
                "cursor": "7f".repeat(32), "pageSize": 10}),
        ),
        base(
            "getHold",
            json!({"paymentSessionId": SESSION, "paymentId": payment_id, "holdToken": hold_token}),
        ),
        base("expire", json!({})),
    ]
}

/// AgentCore backing whatever is asked: a created session has the asked limit and minutes; a
/// named one is the caller's, with room for any limit and expiry the templates ask.
struct BackingAgentCore;

impl PaymentSessions for BackingAgentCore {
    async fn create(&self, r: &CreateSession<'_>) -> Result<PaymentSession, PaymentSessionError> {
        Ok(PaymentSession {
            payment_session_id: "payment-session-noechonoechonoe".into(),
            user_id: r.user_id.into(),
            max_spend: Some(SessionAmount {
                value: format_usd(r.limit_micros),
                currency: "USD".into(),
            }),
            created_at: NOW as i64,
            expiry_minutes: r.expiry_minutes.into(),
        })
    }

    async fn get(
        &self,
        id: &str,
        user_id: &str,
    ) -> Result<Option<PaymentSession>, PaymentSessionError> {
        Ok(Some(PaymentSession {
            payment_session_id: id.into(),
            user_id: user_id.into(),
            max_spend: Some(SessionAmount {
                value: "1000.00".into(),
                currency: "USD".into(),
            }),
            created_at: NOW as i64,
            expiry_minutes: 480,
        }))
    }
}

/// openSession's events on a deployment with a payment manager: create, and an existing session.
fn agentcore_templates() -> Vec<Value> {
    vec![
        json!({"version": "1", "op": "openSession", "userId": "u1", "limit": "25.00",
            "expiryMinutes": 60, "clientToken": format!("no-echo-{}", "0".repeat(32))}),
        json!({"version": "1", "op": "openSession", "paymentSessionId": SESSION, "userId": "u1",
            "limit": "25.00", "expiresAt": NOW + 600}),
        json!({"version": "1", "op": "openSession", "paymentSessionId": SESSION, "userId": "u1",
            "limit": "25.00", "expiryMinutes": 60}),
    ]
}

/// The memory-free store answers at once, so one poll finishes an op.
fn handle(event: &Value, keys: &KeyRing) -> Value {
    poll_once(
        &Ledger::new(NothingStore, LedgerConfig::default()),
        event,
        keys,
    )
}

/// As [`handle`], on a deployment with a payment manager.
fn handle_with_agentcore(event: &Value, keys: &KeyRing) -> Value {
    let ledger = Ledger::new(NothingStore, LedgerConfig::default())
        .with_payment_sessions(Some(BackingAgentCore));
    poll_once(&ledger, event, keys)
}

fn poll_once<P: PaymentSessions + Sync>(
    ledger: &Ledger<NothingStore, P>,
    event: &Value,
    keys: &KeyRing,
) -> Value {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    let mut future = pin!(ledger.handle(event, keys, NOW + 1, "req-no-echo"));
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the test store never waits"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_ledger_answer_echoes_a_spoiled_field_or_key_or_grows_with_it(
        op in any::<prop::sample::Index>(),
        field in any::<prop::sample::Index>(),
        how in prop::sample::select(SPOILS.to_vec()),
        text in adversarial_text(),
    ) {
        // GIVEN a valid event of any op with one field, at any depth, or its key spoiled
        let keys = keys();
        let mut event = op.get(&templates(&keys)).clone();
        let mut all = Vec::new();
        pointers(&event, "", &mut all);
        let pointer = field.get(&all).clone();
        spoil(&mut event, &pointer, how, &text);
        // WHEN the ledger handles it
        let response = handle(&event, &keys);
        // THEN the answer holds nothing of the input and is small
        let context = format!("{} {pointer} {how:?}", event["op"]);
        let text = response.to_string();
        prop_assert!(
            text.len() <= MAX_LEDGER_RESPONSE_BYTES,
            "{context}: a {}-byte answer: {}", text.len(), head(&text)
        );
        let message = response["message"].as_str().unwrap_or_default();
        prop_assert!(
            message.len() <= MAX_LEDGER_MESSAGE_BYTES,
            "{context}: a {}-byte message", message.len()
        );
        prop_assert!(!holds_marker(&text), "{context}: the answer echoes input: {}", head(&text));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_open_session_answer_through_agentcore_echoes_a_spoiled_field_or_key(
        form in any::<prop::sample::Index>(),
        field in any::<prop::sample::Index>(),
        how in prop::sample::select(SPOILS.to_vec()),
        text in adversarial_text(),
    ) {
        // GIVEN an openSession of either AgentCore form with one field or its key spoiled
        let keys = keys();
        let mut event = form.get(&agentcore_templates()).clone();
        let mut all = Vec::new();
        pointers(&event, "", &mut all);
        let pointer = field.get(&all).clone();
        spoil(&mut event, &pointer, how, &text);
        // WHEN a ledger with a payment manager handles it
        let response = handle_with_agentcore(&event, &keys);
        // THEN the answer holds nothing of the input and is small
        let context = format!("{pointer} {how:?}");
        let text = response.to_string();
        prop_assert!(text.len() <= MAX_LEDGER_RESPONSE_BYTES, "{context}: {}", head(&text));
        let message = response["message"].as_str().unwrap_or_default();
        prop_assert!(message.len() <= MAX_LEDGER_MESSAGE_BYTES, "{context}");
        prop_assert!(!holds_marker(&text), "{context}: the answer echoes input: {}", head(&text));
    }
}

#[test]
fn every_agentcore_template_opens_so_a_spoiled_field_is_what_the_test_exercises() {
    let keys = keys();
    for event in agentcore_templates() {
        let response = handle_with_agentcore(&event, &keys);
        assert_eq!(response["ok"], true, "{event}: {response}");
    }
}

#[test]
fn every_template_passes_the_field_checks_so_a_spoiled_field_is_what_a_test_exercises() {
    let keys = keys();
    for event in templates(&keys) {
        let response = handle(&event, &keys);
        let reason = response["reasonCode"].as_str().unwrap_or("");
        assert!(
            response["ok"] == true
                || !["INVALID_REQUEST", "TOKEN_INVALID", "TOKEN_EXPIRED"].contains(&reason),
            "{event}: {response}"
        );
    }
}

#[test]
fn an_unknown_key_is_named_only_when_it_is_a_plain_name() {
    // GIVEN a getHold with a misspelt field, one with a hostile key, and a markSent whose
    // signed terms carry a hostile key
    let keys = keys();
    let templates = templates(&keys);
    let get_hold = templates[7].clone();
    let mut misspelt = get_hold.clone();
    misspelt["paymentID"] = json!("x");
    let mut hostile = get_hold;
    hostile[format!("{MARKER}{}", "k".repeat(300_000)).as_str()] = json!("x");
    let mut signed = templates[3].clone();
    signed["signed"][MARKER] = json!("x");
    let message = |event: &Value| {
        handle(event, &keys)["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let malformed = ReasonCode::InvalidRequest.message();
    // WHEN handled THEN only the plain name is repeated
    assert_eq!(
        message(&misspelt),
        format!("{malformed} (paymentID: is not a known field for this op)")
    );
    assert_eq!(
        message(&hostile),
        format!(
            "{malformed} (event: has a field that is not known \
             (its name is not repeated: it is not a plain identifier))"
        )
    );
    assert_eq!(
        message(&signed),
        format!("{malformed} (signed: has a field that is not known)")
    );
}
