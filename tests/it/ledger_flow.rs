//! The ledger's happy path and its refusals, against DynamoDB Local.

use predebit_core::ledger::{AllowedOps, LedgerConfig};
use predebit_core::records::SessionRecord;
use predebit_ledger::LedgerService;
use predebit_store::secrets::KeySource;
use predebit_store::DynamoStore;
use predebit_tests::{fresh_store, repo_root};
use serde_json::{json, Value};

use crate::common::{seed_demo, service, test_keys, NOW};

/// A seeded store, a verify service and a ledger service (all ops) over the same tables.
pub struct Flow {
    pub verify: predebit_verify::VerifyService<DynamoStore>,
    pub ledger: LedgerService<DynamoStore>,
    /// The metric lines the ledger emitted.
    pub metrics: crate::common::Captured,
    /// The hold token each reserve returned, by paymentId.
    hold_tokens: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Flow {
    pub async fn new(name: &str) -> Self {
        Self::over(fresh_store(name).await).await
    }

    /// A flow over `store` (e.g. one whose client counts or delays requests), demo-seeded.
    pub async fn over(store: DynamoStore) -> Self {
        seed_demo(&store).await;
        let (verify, _) = service(store.clone());
        let config = LedgerConfig {
            allowed: AllowedOps::parse("all").unwrap(),
            ..LedgerConfig::default()
        };
        let metrics: crate::common::Captured = Default::default();
        let sink = metrics.clone();
        let ledger = LedgerService::new(store, config, KeySource::fixed(test_keys()))
            .with_metrics_sink(Box::new(move |line| {
                sink.lock().unwrap().push(line.to_string())
            }));
        Self {
            verify,
            ledger,
            metrics,
            hold_tokens: Default::default(),
        }
    }

    /// The hold token reserve returned for `payment_id`.
    pub fn hold_token(&self, payment_id: &str) -> Option<String> {
        self.hold_tokens.lock().unwrap().get(payment_id).cloned()
    }

    /// Adds the hold token reserve returned for the event's paymentId to an op that needs one
    /// and has none (tests of the token itself pass their own), and remembers reserve's.
    pub fn with_hold_token(&self, mut event: Value) -> Value {
        let needs = matches!(
            event["op"].as_str(),
            Some("markSent" | "commit" | "release" | "getHold")
        );
        if needs && event.get("holdToken").is_none() {
            if let Some(token) = event["paymentId"].as_str().and_then(|p| self.hold_token(p)) {
                event["holdToken"] = json!(token);
            }
        }
        event
    }

    fn remember(&self, response: &Value) {
        if let (Some(payment_id), Some(token)) = (
            response["hold"]["paymentId"].as_str(),
            response["holdToken"].as_str(),
        ) {
            self.hold_tokens
                .lock()
                .unwrap()
                .insert(payment_id.to_string(), token.to_string());
        }
    }

    /// Verifies a sample event with a fresh paymentId and amount; returns (paymentId, token).
    pub async fn approve(&self, payment_id: &str, amount_atomic: &str, session: &str) -> String {
        self.approve_at(payment_id, amount_atomic, session, NOW)
            .await
    }

    /// As [`Self::approve`], with verify running at `now`.
    pub async fn approve_at(
        &self,
        payment_id: &str,
        amount_atomic: &str,
        session: &str,
        now: u64,
    ) -> String {
        let event = sample_verify_event(payment_id, amount_atomic, session);
        let response = self.verify.handle_json(&event, "it-flow", now).await;
        assert_eq!(response["decision"], "YES", "{response}");
        response["decisionToken"].as_str().unwrap().to_string()
    }

    /// Approves a sample payment and reserves it on `session`, at NOW + 1.
    pub async fn held(&self, payment_id: &str, amount_atomic: &str, session: &str) {
        let token = self.approve(payment_id, amount_atomic, session).await;
        let reserved = self
            .op(json!({"version": "1", "op": "reserve", "decisionToken": token}))
            .await;
        assert_eq!(reserved["ok"], true, "{reserved}");
    }

    /// Marks a held sample payment sent with its approved terms, valid until NOW + 60.
    pub async fn mark_sent(&self, payment_id: &str, amount_atomic: &str, session: &str) {
        let marked = self
            .op(
                json!({"version": "1", "op": "markSent", "paymentSessionId": session,
                "paymentId": payment_id, "signed": {"to": SAMPLE_PAY_TO, "value": amount_atomic,
                "network": "eip155:8453", "validBefore": NOW + 60}}),
            )
            .await;
        assert_eq!(marked["ok"], true, "{marked}");
    }

    pub async fn op(&self, event: Value) -> Value {
        self.op_at(event, NOW + 1).await
    }

    /// Runs the ledger at `now`.
    pub async fn op_at(&self, event: Value, now: u64) -> Value {
        let response = self.ledger.handle(&self.with_hold_token(event), now).await;
        self.remember(&response);
        response
    }

    pub async fn session(&self, id: &str) -> SessionRecord {
        use predebit_core::ledger::LedgerStore;
        // Page size 0: the session alone.
        self.ledger
            .ledger()
            .store()
            .read_session_page(id, None, 0)
            .await
            .unwrap()
            .unwrap()
            .session
    }
}

/// `events/verify/allow-v1-base-usdc.json` (a YES for alice's agent) for another payment.
pub fn sample_verify_event(payment_id: &str, amount_atomic: &str, session: &str) -> Value {
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/verify/allow-v1-base-usdc.json"))
            .unwrap(),
    )
    .unwrap();
    event["paymentId"] = json!(payment_id);
    event["paymentSessionId"] = json!(session);
    event["requirement"]["maxAmountRequired"] = json!(amount_atomic);
    event
}

/// A paymentId for test number `n`.
pub fn pid(n: u64) -> String {
    format!("{n:064x}")
}

pub fn assert_invariant(s: &SessionRecord) {
    assert_eq!(
        s.reserved_micros + s.settled_micros + s.available_micros,
        s.limit_micros + s.overdraft_micros,
        "invariant broken: {s:?}"
    );
}

const MERCHANT: &str = SAMPLE_PAY_TO;
/// The sample verify event's payTo.
pub const SAMPLE_PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

#[tokio::test]
async fn reserve_mark_sent_commit_moves_the_amount_from_available_to_settled() {
    let flow = Flow::new("happy").await;
    let token = flow.approve(&pid(1), "1500000", "ps-alice-main").await;

    let reserved = flow
        .op(json!({"version": "1", "op": "reserve", "decisionToken": token}))
        .await;
    assert_eq!(reserved["ok"], true, "{reserved}");
    assert_eq!(reserved["hold"]["state"], "PENDING");
    let s = flow.session("ps-alice-main").await;
    assert_eq!(
        (s.available_micros, s.reserved_micros),
        (23_500_000, 1_500_000)
    );
    assert_invariant(&s);

    let sent = flow
        .op(json!({"version": "1", "op": "markSent", "paymentSessionId": "ps-alice-main", "paymentId": pid(1),
            "signed": {"to": MERCHANT, "value": "1500000", "network": "eip155:8453", "validBefore": NOW + 60}}))
        .await;
    assert_eq!(sent["ok"], true, "{sent}");
    assert_eq!(sent["hold"]["state"], "SENT");

    let settlement = json!({"success": true, "transaction": format!("0x{}", "ab".repeat(32)), "network": "base", "payer": "0x1111111111111111111111111111111111111111"});
    let committed = flow
        .op(json!({"version": "1", "op": "commit", "paymentSessionId": "ps-alice-main", "paymentId": pid(1),
            "amountMicros": 1_500_000, "settlement": settlement}))
        .await;
    assert_eq!(committed["ok"], true, "{committed}");
    assert_eq!(committed["hold"]["state"], "POSTED");
    let s = flow.session("ps-alice-main").await;
    assert_eq!(
        (s.available_micros, s.reserved_micros, s.settled_micros),
        (23_500_000, 0, 1_500_000)
    );
    assert_invariant(&s);

    // A replayed commit is recognised and changes nothing.
    let again = flow
        .op(json!({"version": "1", "op": "commit", "paymentSessionId": "ps-alice-main", "paymentId": pid(1),
            "amountMicros": 1_500_000, "settlement": settlement}))
        .await;
    assert_eq!(
        (again["ok"].clone(), again["replayed"].clone()),
        (json!(true), json!(true)),
        "{again}"
    );
    assert_eq!(flow.session("ps-alice-main").await, s);
}

#[tokio::test]
async fn a_replayed_reserve_holds_once_and_reports_replayed() {
    let flow = Flow::new("replay").await;
    let token = flow.approve(&pid(2), "1000000", "ps-alice-main").await;
    let event = json!({"version": "1", "op": "reserve", "decisionToken": token});

    let first = flow.op(event.clone()).await;
    let second = flow.op(event).await;

    assert_eq!(first["replayed"], false, "{first}");
    assert_eq!(second["replayed"], true, "{second}");
    let s = flow.session("ps-alice-main").await;
    assert_eq!(s.reserved_micros, 1_000_000);
    assert_invariant(&s);
}

#[tokio::test]
async fn a_mismatched_signature_is_refused_and_the_hold_stays_pending_until_released() {
    let flow = Flow::new("mismatch").await;
    let token = flow.approve(&pid(3), "1000000", "ps-alice-main").await;
    flow.op(json!({"version": "1", "op": "reserve", "decisionToken": token}))
        .await;

    let sent = flow
        .op(json!({"version": "1", "op": "markSent", "paymentSessionId": "ps-alice-main", "paymentId": pid(3),
            "signed": {"to": MERCHANT, "value": "1000001", "network": "eip155:8453", "validBefore": NOW + 60}}))
        .await;
    assert_eq!(sent["reasonCode"], "SIGNED_PAYLOAD_MISMATCH", "{sent}");

    let released = flow
        .op(json!({"version": "1", "op": "release", "paymentSessionId": "ps-alice-main", "paymentId": pid(3),
            "reason": "SIGNED_PAYLOAD_MISMATCH"}))
        .await;
    assert_eq!(released["ok"], true, "{released}");
    let s = flow.session("ps-alice-main").await;
    assert_eq!((s.available_micros, s.reserved_micros), (25_000_000, 0));
}

#[tokio::test]
async fn mark_sent_accepts_the_v1_name_of_the_approved_network() {
    let flow = Flow::new("v1network").await;
    let token = flow.approve(&pid(4), "1000000", "ps-alice-main").await;
    flow.op(json!({"version": "1", "op": "reserve", "decisionToken": token}))
        .await;

    let sent = flow
        .op(json!({"version": "1", "op": "markSent", "paymentSessionId": "ps-alice-main", "paymentId": pid(4),
            "signed": {"to": MERCHANT, "value": "1000000", "network": "base", "validBefore": NOW + 60}}))
        .await;

    assert_eq!(
        (sent["ok"].clone(), sent["hold"]["state"].clone()),
        (json!(true), json!("SENT")),
        "{sent}"
    );
}

#[tokio::test]
async fn a_late_settlement_is_counted_in_the_late_settlements_metric() {
    // GIVEN a hold released before its payment's settlement arrives
    let flow = Flow::new("latemetric").await;
    let token = flow.approve(&pid(5), "1000000", "ps-alice-main").await;
    flow.op(json!({"version": "1", "op": "reserve", "decisionToken": token}))
        .await;
    flow.op(json!({"version": "1", "op": "release", "paymentSessionId": "ps-alice-main", "paymentId": pid(5), "reason": "NOT_SENT"}))
        .await;

    // WHEN the settlement arrives
    let settlement = json!({"success": true, "transaction": format!("0x{}", "cd".repeat(32)), "network": "eip155:8453"});
    let committed = flow
        .op(json!({"version": "1", "op": "commit", "paymentSessionId": "ps-alice-main", "paymentId": pid(5), "settlement": settlement}))
        .await;

    // THEN it is posted late and one EMF line counts it, with no id as a dimension
    assert_eq!(committed["hold"]["late"], true, "{committed}");
    assert_eq!(
        committed["session"]["overdraftMicros"], 0,
        "it fit in what was available"
    );
    assert_eq!(committed["session"]["settledMicros"], 1_000_000);
    let lines = flow.metrics.lock().unwrap().clone();
    let late: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"LateSettlements\":1"))
        .collect();
    assert_eq!(late.len(), 1, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("\"OverdraftMicros\":0")),
        "{lines:?}"
    );
    for line in &lines {
        assert!(
            !line.contains(&pid(5))
                && !line.contains("ps-alice-main")
                && !line.contains("user-alice"),
            "{line}"
        );
    }
}

#[tokio::test]
async fn closing_a_closed_session_is_a_replay_that_keeps_the_first_reason() {
    let flow = Flow::new("closetwice").await;
    let close = |reason: &str| json!({"version": "1", "op": "closeSession", "paymentSessionId": "ps-alice-main", "reason": reason});

    let first = flow.op(close("fraud suspected")).await;
    let second = flow.op(close("another reason")).await;

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
    assert_eq!(second["session"]["status"], "CLOSED");
    let raw = flow
        .ledger
        .ledger()
        .store()
        .client()
        .get_item()
        .table_name(&flow.ledger.ledger().store().tables().ledger)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("SESSION#ps-alice-main".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("SESSION".into()),
        )
        .send()
        .await
        .unwrap();
    let reason = raw
        .item()
        .and_then(|i| i.get("closedReason"))
        .and_then(|v| v.as_s().ok())
        .cloned();
    assert_eq!(reason.as_deref(), Some("fraud suspected"));
}
