//! openSession on the admin deployment with a payment manager: DynamoDB Local, the real
//! `aws-sdk-bedrockagentcore` client and the local AgentCore Payments service. Sessions come
//! from one source: predebit creates the AgentCore session itself, or reads the one named, and
//! writes nothing unless AgentCore's answer holds its limit and expiry.

use std::sync::{Arc, Mutex};

use aws_sdk_bedrockagentcore::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_bedrockagentcore::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_bedrockagentcore::types::{Amount, Currency, SessionLimits};
use predebit_agentcore::AgentCorePaymentSessions;
use predebit_core::ledger::{AllowedOps, LedgerConfig, LedgerStore};
use predebit_ledger::LedgerService;
use predebit_store::secrets::KeySource;
use predebit_store::DynamoStore;
use predebit_tests::{
    agentcore_endpoint, base_config, dynamodb_client_at, fresh_store, repo_root, RequestCounter,
};
use serde_json::{json, Value};

use crate::authorize_agentcore::{admin, MANAGER};
use crate::common::{test_keys, NOW};

/// The AgentCore HTTP requests a client sent (retries included), by operation.
#[derive(Clone, Debug, Default)]
pub(crate) struct AgentCoreRequests(Arc<Mutex<Vec<String>>>);

impl AgentCoreRequests {
    /// The IAM actions of the operations sent (`bedrock-agentcore:CreatePaymentSession`).
    pub(crate) fn actions(&self) -> std::collections::BTreeSet<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|p| p.strip_prefix("/payments/"))
            .map(|op| {
                let mut chars = op.chars();
                let first = chars.next().map(|c| c.to_ascii_uppercase());
                format!(
                    "bedrock-agentcore:{}{}",
                    first.unwrap_or_default(),
                    chars.as_str()
                )
            })
            .collect()
    }

    fn count(&self, operation: &str) -> usize {
        let path = format!("/payments/{operation}");
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|p| **p == path)
            .count()
    }
}

impl Intercept for AgentCoreRequests {
    fn name(&self) -> &'static str {
        "AgentCoreRequests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let uri = context.request().uri();
        let path = uri
            .split_once("/payments/")
            .map_or(uri.to_string(), |(_, op)| {
                format!("/payments/{}", op.split('?').next().unwrap_or(op))
            });
        self.0.lock().unwrap().push(path);
        Ok(())
    }
}

async fn agentcore_client(
    endpoint: &str,
    requests: &AgentCoreRequests,
) -> aws_sdk_bedrockagentcore::Client {
    let config = base_config().endpoint_url(endpoint).load().await;
    aws_sdk_bedrockagentcore::Client::from_conf(
        aws_sdk_bedrockagentcore::config::Builder::from(&config)
            .timeout_config(predebit_store::config::timeouts())
            .retry_config(predebit_store::config::retries())
            .interceptor(requests.clone())
            .build(),
    )
}

type Admin = LedgerService<DynamoStore, AgentCorePaymentSessions>;

/// The admin ledger over `store`, creating and reading sessions of `manager` at `endpoint`.
pub(crate) async fn admin_ledger_at(
    store: DynamoStore,
    endpoint: &str,
    manager: &str,
) -> (Admin, AgentCoreRequests) {
    let requests = AgentCoreRequests::default();
    let sessions =
        AgentCorePaymentSessions::new(agentcore_client(endpoint, &requests).await, manager.into());
    let config = LedgerConfig {
        allowed: AllowedOps::parse("admin").unwrap(),
        ..LedgerConfig::default()
    };
    let ledger = LedgerService::new(store, config, KeySource::fixed(test_keys()))
        .with_metrics_sink(Box::new(|_| {}))
        .with_payment_sessions(Some(sessions));
    (ledger, requests)
}

async fn admin_ledger(store: DynamoStore) -> (Admin, AgentCoreRequests) {
    admin_ledger_at(store, agentcore_endpoint(), MANAGER).await
}

/// The service signs and expires on predebit's test clock.
pub(crate) fn freeze_clock() {
    admin(
        "POST",
        "/_local/clock",
        &json!({"now": NOW, "frozen": true}),
    );
}

/// The AgentCore sessions the service holds for `user`.
fn agentcore_sessions_of(user: &str) -> Vec<String> {
    let stats = admin("GET", "/_local/stats", &json!({}));
    let mut ids: Vec<String> = stats["sessions"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, s)| s["userId"] == user)
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort();
    ids
}

/// A session created at AgentCore directly (as an application backend would), for `user`.
pub(crate) async fn existing_agentcore_session(
    user: &str,
    max_spend: &str,
    minutes: i32,
) -> String {
    let requests = AgentCoreRequests::default();
    agentcore_client(agentcore_endpoint(), &requests)
        .await
        .create_payment_session()
        .payment_manager_arn(MANAGER)
        .user_id(user)
        .expiry_time_in_minutes(minutes)
        .limits(
            SessionLimits::builder()
                .max_spend_amount(
                    Amount::builder()
                        .value(max_spend)
                        .currency(Currency::Usd)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .client_token(format!("it-existing-{user}-{max_spend}-000000000000").replace('.', "-"))
        .send()
        .await
        .expect("CreatePaymentSession")
        .payment_session()
        .unwrap()
        .payment_session_id()
        .to_string()
}

fn create_event(user: &str, limit: &str, minutes: u64, client_token: &str) -> Value {
    json!({"version": "1", "op": "openSession", "userId": user, "limit": limit,
        "expiryMinutes": minutes, "clientToken": client_token})
}

fn existing_event(session_id: &str, user: &str, limit: &str) -> Value {
    json!({"version": "1", "op": "openSession", "paymentSessionId": session_id, "userId": user,
        "limit": limit})
}

async fn predebit_session(
    store: &DynamoStore,
    id: &str,
) -> Option<predebit_core::records::SessionRecord> {
    store
        .read_session_page(id, None, 0)
        .await
        .unwrap()
        .map(|p| p.session)
}

#[tokio::test]
async fn open_session_creates_the_agentcore_session_with_the_limit_and_stores_its_id() {
    // GIVEN the admin ledger with a payment manager, and a user with no AgentCore session
    freeze_clock();
    let store = fresh_store("agentcore-create").await;
    let (ledger, requests) = admin_ledger(store.clone()).await;
    let user = "admin-it-create";
    // WHEN openSession asks for 7.25 USD for 30 minutes, without a session id
    let response = ledger
        .handle(
            &create_event(user, "7.25", 30, "it-create-0000000000000000000000000001"),
            NOW,
        )
        .await;
    // THEN AgentCore holds one session for the user, with maxSpendAmount 7.25 ...
    assert_eq!(response["ok"], true, "{response}");
    assert_eq!(response["agentCore"], "created");
    let ids = agentcore_sessions_of(user);
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = &ids[0];
    let at_agentcore = agentcore_client(agentcore_endpoint(), &AgentCoreRequests::default())
        .await
        .get_payment_session()
        .payment_manager_arn(MANAGER)
        .payment_session_id(id)
        .user_id(user)
        .send()
        .await
        .unwrap();
    let max = at_agentcore
        .payment_session()
        .unwrap()
        .limits()
        .unwrap()
        .max_spend_amount()
        .unwrap();
    assert_eq!((max.value(), max.currency()), ("7.25", &Currency::Usd));
    assert_eq!(
        at_agentcore
            .payment_session()
            .unwrap()
            .expiry_time_in_minutes(),
        30
    );
    // ... and predebit stores that id with the same limit and AgentCore's expiry
    assert_eq!(response["session"]["paymentSessionId"], id.as_str());
    let stored = predebit_session(&store, id).await.unwrap();
    assert_eq!(
        (
            stored.user_id.as_str(),
            stored.limit_micros,
            stored.available_micros,
            stored.expires_at
        ),
        (user, 7_250_000, 7_250_000, NOW + 30 * 60)
    );
    // AND it took one CreatePaymentSession and no GetPaymentSession
    assert_eq!(requests.count("createPaymentSession"), 1);
    assert_eq!(requests.count("getPaymentSession"), 0);
}

#[tokio::test]
async fn a_replayed_create_makes_no_second_agentcore_session() {
    // GIVEN a session opened through AgentCore
    freeze_clock();
    let store = fresh_store("agentcore-replay").await;
    let (ledger, requests) = admin_ledger(store.clone()).await;
    let user = "admin-it-replay";
    let event = create_event(user, "3.00", 60, "it-replay-00000000000000000000000000001");
    let first = ledger.handle(&event, NOW).await;
    assert_eq!(first["ok"], true, "{first}");
    // WHEN the same request comes twice more, a minute later
    let second = ledger.handle(&event, NOW + 60).await;
    let third = ledger.handle(&event, NOW + 60).await;
    // THEN both are replays of the same session, and AgentCore still holds exactly one
    for again in [&second, &third] {
        assert_eq!(again["ok"], true, "{again}");
        assert_eq!(again["replayed"], true, "{again}");
        assert_eq!(
            again["session"]["paymentSessionId"],
            first["session"]["paymentSessionId"]
        );
        assert_eq!(again["session"]["expiresAt"], first["session"]["expiresAt"]);
    }
    assert_eq!(first["replayed"], false);
    assert_eq!(agentcore_sessions_of(user).len(), 1);
    // AND each request was one CreatePaymentSession, answered from AgentCore's clientToken
    assert_eq!(requests.count("createPaymentSession"), 3);
}

#[tokio::test]
async fn the_same_client_token_with_another_limit_is_an_idempotency_conflict_and_writes_nothing() {
    freeze_clock();
    let store = fresh_store("agentcore-token-conflict").await;
    let (ledger, _) = admin_ledger(store.clone()).await;
    let user = "admin-it-conflict";
    let token = "it-conflict-000000000000000000000000001";
    let first = ledger
        .handle(&create_event(user, "3.00", 60, token), NOW)
        .await;
    assert_eq!(first["ok"], true, "{first}");

    let other = ledger
        .handle(&create_event(user, "4.00", 60, token), NOW)
        .await;

    assert_eq!(other["ok"], false, "{other}");
    assert_eq!(other["reasonCode"], "IDEMPOTENCY_CONFLICT", "{other}");
    assert_eq!(agentcore_sessions_of(user).len(), 1);
    let id = first["session"]["paymentSessionId"].as_str().unwrap();
    assert_eq!(
        predebit_session(&store, id).await.unwrap().limit_micros,
        3_000_000
    );
}

#[tokio::test]
async fn a_failed_store_write_after_agentcore_created_the_session_is_recovered_by_the_same_request()
{
    // GIVEN an admin ledger whose DynamoDB does not answer (a closed port), and one that does
    freeze_clock();
    let good = fresh_store("agentcore-store-down").await;
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let counter = RequestCounter::default();
    let down = DynamoStore::new(
        dynamodb_client_at(&format!("http://127.0.0.1:{dead_port}"), {
            let c = counter.clone();
            move |b| b.interceptor(c)
        })
        .await,
        good.tables().clone(),
    );
    let (broken, _) = admin_ledger(down).await;
    let (working, requests) = admin_ledger(good.clone()).await;
    let user = "admin-it-store-down";
    let event = create_event(user, "2.50", 45, "it-store-down-0000000000000000000000001");
    // WHEN AgentCore creates the session but the write fails
    let failed = broken.handle(&event, NOW).await;
    assert_eq!(failed["ok"], false, "{failed}");
    assert_eq!(failed["reasonCode"], "STORE_UNAVAILABLE", "{failed}");
    assert!(counter.sent() >= 1);
    let created = agentcore_sessions_of(user);
    assert_eq!(created.len(), 1);
    assert!(predebit_session(&good, &created[0]).await.is_none());
    // AND the same request comes again (another container, DynamoDB answering)
    let recovered = working.handle(&event, NOW + 5).await;
    // THEN the session AgentCore created is the one predebit opens; no second one exists
    assert_eq!(recovered["ok"], true, "{recovered}");
    assert_eq!(
        recovered["session"]["paymentSessionId"],
        created[0].as_str()
    );
    assert_eq!(agentcore_sessions_of(user), created);
    assert_eq!(requests.count("createPaymentSession"), 1);
    let stored = predebit_session(&good, &created[0]).await.unwrap();
    assert_eq!(
        (stored.limit_micros, stored.expires_at),
        (2_500_000, NOW + 45 * 60)
    );
}

#[tokio::test]
async fn an_agentcore_that_does_not_answer_leaves_nothing_written() {
    // GIVEN AgentCore unreachable (a closed port)
    let store = fresh_store("agentcore-down").await;
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (ledger, requests) = admin_ledger_at(
        store.clone(),
        &format!("http://127.0.0.1:{dead_port}"),
        MANAGER,
    )
    .await;
    let user = "admin-it-down";
    // WHEN a session is created and an existing one is named
    let create = ledger
        .handle(
            &create_event(user, "1.00", 30, "it-down-000000000000000000000000000001"),
            NOW,
        )
        .await;
    let existing = ledger
        .handle(
            &existing_event("payment-session-itdownitdown001", user, "1.00"),
            NOW,
        )
        .await;
    // THEN both answer AGENTCORE_UNAVAILABLE, saying the same request is safe, and nothing is written
    for (r, hint) in [
        (&create, "same clientToken"),
        (&existing, "same request again"),
    ] {
        assert_eq!(r["ok"], false, "{r}");
        assert_eq!(r["reasonCode"], "AGENTCORE_UNAVAILABLE", "{r}");
        assert!(r["message"].as_str().unwrap().contains(hint), "{r}");
    }
    assert!(predebit_session(&store, "payment-session-itdownitdown001")
        .await
        .is_none());
    // AND the SDK retried each operation, within predebit's attempts (the 2 s operation timeout
    // may end the backoff before the last one)
    let attempts = 2..=predebit_store::config::MAX_ATTEMPTS as usize;
    assert!(attempts.contains(&requests.count("createPaymentSession")));
    assert!(attempts.contains(&requests.count("getPaymentSession")));
}

#[tokio::test]
async fn a_payment_manager_agentcore_does_not_know_is_a_refusal_and_writes_nothing() {
    freeze_clock();
    let store = fresh_store("agentcore-refused").await;
    let unknown = "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/predebit-other-zzzzzzzzzz";
    let (ledger, requests) = admin_ledger_at(store.clone(), agentcore_endpoint(), unknown).await;
    let user = "admin-it-refused";

    let r = ledger
        .handle(
            &create_event(user, "1.00", 30, "it-refused-0000000000000000000000000001"),
            NOW,
        )
        .await;

    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["reasonCode"], "AGENTCORE_REFUSED", "{r}");
    assert!(
        r["message"].as_str().unwrap().ends_with("(access denied)"),
        "{r}"
    );
    assert!(agentcore_sessions_of(user).is_empty());
    // A stated refusal is not retried.
    assert_eq!(requests.count("createPaymentSession"), 1);
}

#[tokio::test]
async fn an_existing_session_opens_with_a_limit_at_or_below_agentcores() {
    // GIVEN an AgentCore session of 10.00 USD for 60 minutes, created by the backend
    freeze_clock();
    let store = fresh_store("agentcore-existing").await;
    let (ledger, requests) = admin_ledger(store.clone()).await;
    let user = "admin-it-existing";
    let id = existing_agentcore_session(user, "10.00", 60).await;
    // WHEN predebit is asked for 10.00 with no expiry
    let r = ledger
        .handle(&existing_event(&id, user, "10.00"), NOW)
        .await;
    // THEN it opens with AgentCore's expiry, after one GetPaymentSession and no create
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["agentCore"], "read");
    let stored = predebit_session(&store, &id).await.unwrap();
    assert_eq!(
        (stored.limit_micros, stored.expires_at),
        (10_000_000, NOW + 3600)
    );
    assert_eq!(requests.count("getPaymentSession"), 1);
    assert_eq!(requests.count("createPaymentSession"), 0);
    assert_eq!(agentcore_sessions_of(user), vec![id.clone()]);
}

#[tokio::test]
async fn an_existing_session_keeps_an_earlier_expiry_and_counts_expiry_minutes_from_agentcores_creation(
) {
    freeze_clock();
    let store = fresh_store("agentcore-existing-expiry").await;
    let (ledger, _) = admin_ledger(store.clone()).await;
    let user = "admin-it-expiry";
    let a = existing_agentcore_session(user, "5.00", 60).await;
    let b = existing_agentcore_session(user, "6.00", 60).await;
    // expiresAt before AgentCore's is kept as given
    let mut event = existing_event(&a, user, "5.00");
    event["expiresAt"] = json!(NOW + 1800);
    let r = ledger.handle(&event, NOW + 10).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        predebit_session(&store, &a).await.unwrap().expires_at,
        NOW + 1800
    );
    // expiryMinutes as given to AgentCore gives AgentCore's expiry even asked 10 minutes later
    let mut event = existing_event(&b, user, "6.00");
    event["expiryMinutes"] = json!(60);
    let r = ledger.handle(&event, NOW + 600).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        predebit_session(&store, &b).await.unwrap().expires_at,
        NOW + 3600
    );
    // fewer minutes than have passed since AgentCore created it are refused, naming the field
    let c = existing_agentcore_session(user, "7.00", 60).await;
    let mut event = existing_event(&c, user, "7.00");
    event["expiryMinutes"] = json!(15);
    let r = ledger.handle(&event, NOW + 16 * 60).await;
    assert_eq!(r["reasonCode"], "INVALID_REQUEST", "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("(expiryMinutes: "),
        "{r}"
    );
    assert!(predebit_session(&store, &c).await.is_none());
}

#[tokio::test]
async fn an_existing_session_refuses_what_agentcore_would_not_back() {
    // GIVEN a 5.00 USD, 15-minute AgentCore session of one user
    freeze_clock();
    let store = fresh_store("agentcore-existing-refusals").await;
    let (ledger, requests) = admin_ledger(store.clone()).await;
    let user = "admin-it-refusals";
    let id = existing_agentcore_session(user, "5.00", 15).await;
    let later_expiry = {
        let mut e = existing_event(&id, user, "5.00");
        e["expiresAt"] = json!(NOW + 15 * 60 + 1);
        e
    };
    let with_minutes = {
        let mut e = existing_event(&id, user, "1.00");
        e["expiryMinutes"] = json!(15);
        e
    };
    let more_minutes = {
        let mut e = existing_event(&id, user, "5.00");
        e["expiryMinutes"] = json!(16);
        e
    };
    let cases = [
        // a limit one micro-USD above maxSpendAmount
        (
            existing_event(&id, user, "5.000001"),
            NOW,
            "AGENTCORE_LIMIT_EXCEEDED",
        ),
        // the session asked for as another user: AgentCore scopes sessions to their user
        (
            existing_event(&id, "admin-it-someone-else", "1.00"),
            NOW,
            "AGENTCORE_SESSION_UNKNOWN",
        ),
        // an id AgentCore does not know
        (
            existing_event("payment-session-itnosuchsessio1", user, "1.00"),
            NOW,
            "AGENTCORE_SESSION_UNKNOWN",
        ),
        // predebit's clock at AgentCore's expiry, with or without minutes of its own
        (
            existing_event(&id, user, "1.00"),
            NOW + 15 * 60,
            "AGENTCORE_SESSION_EXPIRED",
        ),
        (with_minutes, NOW + 15 * 60, "AGENTCORE_SESSION_EXPIRED"),
        // an expiry after AgentCore's, given either way
        (later_expiry, NOW, "AGENTCORE_EXPIRY_EXCEEDED"),
        (more_minutes, NOW, "AGENTCORE_EXPIRY_EXCEEDED"),
    ];
    let n = cases.len();
    for (event, now, code) in cases {
        // WHEN each is asked
        let r = ledger.handle(&event, now).await;
        // THEN it is refused with the code naming the problem, and predebit holds no session
        assert_eq!(r["ok"], false, "{code}: {r}");
        assert_eq!(r["reasonCode"], code, "{r}");
        assert!(!r["message"].as_str().unwrap().contains(&id), "{r}");
    }
    assert!(predebit_session(&store, &id).await.is_none());
    assert!(predebit_session(&store, "payment-session-itnosuchsessio1")
        .await
        .is_none());
    // AND each was one GetPaymentSession, and nothing was created
    assert_eq!(requests.count("getPaymentSession"), n);
    assert_eq!(requests.count("createPaymentSession"), 0);
    assert_eq!(agentcore_sessions_of(user), vec![id]);
}

#[tokio::test]
async fn agentcore_failing_to_read_a_session_leaves_nothing_written() {
    // GIVEN an AgentCore session, and AgentCore answering every GetPaymentSession with a
    // server error
    freeze_clock();
    let store = fresh_store("agentcore-get-fault").await;
    let (ledger, requests) = admin_ledger(store.clone()).await;
    let user = "admin-it-get-fault";
    let id = existing_agentcore_session(user, "5.00", 60).await;
    admin(
        "POST",
        "/_local/faults",
        &json!({"paymentSessionId": id,
            "internalError": {"operation": "GetPaymentSession", "times": -1}}),
    );
    // WHEN predebit is asked to open it
    let r = ledger.handle(&existing_event(&id, user, "5.00"), NOW).await;
    admin("POST", "/_local/faults", &json!({"paymentSessionId": id}));
    // THEN the answer is AGENTCORE_UNAVAILABLE after the SDK's retries, and nothing is written
    assert_eq!(r["reasonCode"], "AGENTCORE_UNAVAILABLE", "{r}");
    let attempts = 2..=predebit_store::config::MAX_ATTEMPTS as usize;
    assert!(attempts.contains(&requests.count("getPaymentSession")));
    assert!(predebit_session(&store, &id).await.is_none());
    // AND once AgentCore answers, the same request opens the session
    let again = ledger.handle(&existing_event(&id, user, "5.00"), NOW).await;
    assert_eq!(again["ok"], true, "{again}");
}

#[tokio::test]
async fn malformed_agentcore_fields_are_refused_naming_the_field_before_agentcore_is_asked() {
    let store = fresh_store("agentcore-malformed").await;
    let (ledger, requests) = admin_ledger(store).await;
    let user = "admin-it-malformed";
    let token = "it-malformed-00000000000000000000000001";
    let mut with_expires_at = create_event(user, "1.00", 30, token);
    with_expires_at
        .as_object_mut()
        .unwrap()
        .remove("expiryMinutes");
    with_expires_at["expiresAt"] = json!(NOW + 3600);
    let mut no_minutes = create_event(user, "1.00", 30, token);
    no_minutes.as_object_mut().unwrap().remove("expiryMinutes");
    let mut no_token = create_event(user, "1.00", 30, token);
    no_token.as_object_mut().unwrap().remove("clientToken");
    let mut token_on_existing = existing_event("payment-session-itmalformed0001", user, "1.00");
    token_on_existing["clientToken"] = json!(token);
    let cases = [
        (create_event(user, "1.00", 30, "too-short"), "clientToken"),
        (
            create_event(user, "1.00", 30, &format!("{}_x", "a".repeat(40))),
            "clientToken",
        ),
        (no_token, "clientToken"),
        (token_on_existing, "clientToken"),
        (create_event(user, "1.00", 14, token), "expiryMinutes"),
        (create_event(user, "1.00", 481, token), "expiryMinutes"),
        (no_minutes, "expiryMinutes"),
        (with_expires_at, "expiresAt"),
        (create_event(user, "1e3", 30, token), "limit"),
        (create_event(user, "-1", 30, token), "limit"),
        (create_event(&"u".repeat(121), "1.00", 30, token), "userId"),
    ];
    for (event, field) in cases {
        let r = ledger.handle(&event, NOW).await;
        assert_eq!(r["reasonCode"], "INVALID_REQUEST", "{field}: {r}");
        assert!(
            r["message"]
                .as_str()
                .unwrap()
                .contains(&format!("({field}: ")),
            "{field}: {r}"
        );
    }
    assert_eq!(requests.count("createPaymentSession"), 0);
    assert_eq!(requests.count("getPaymentSession"), 0);
}

#[tokio::test]
async fn without_a_payment_manager_open_session_takes_the_callers_word_as_before() {
    // GIVEN the admin ledger without a payment manager
    let store = fresh_store("agentcore-none").await;
    let config = LedgerConfig {
        allowed: AllowedOps::parse("admin").unwrap(),
        ..LedgerConfig::default()
    };
    let ledger = LedgerService::new(store.clone(), config, KeySource::fixed(test_keys()))
        .with_metrics_sink(Box::new(|_| {}));
    // WHEN a create-form event comes
    let create = ledger
        .handle(
            &create_event("u", "1.00", 30, "it-none-00000000000000000000000000000001"),
            NOW,
        )
        .await;
    // THEN clientToken is not a field it knows; the old form still opens without AgentCore
    assert_eq!(create["reasonCode"], "INVALID_REQUEST", "{create}");
    let old = ledger
        .handle(
            &json!({"version": "1", "op": "openSession", "paymentSessionId": "ps-none",
            "userId": "u", "limit": "1.00", "expiryMinutes": 30}),
            NOW,
        )
        .await;
    assert_eq!(old["ok"], true, "{old}");
    assert!(old.get("agentCore").is_none());
}

#[tokio::test]
async fn the_sample_agentcore_ledger_events_get_their_expected_results() {
    // GIVEN the admin ledger with the local payment manager
    freeze_clock();
    let store = fresh_store("agentcore-events").await;
    let (ledger, _) = admin_ledger(store).await;
    let dir = repo_root().join("events/ledger/agentcore");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(!names.is_empty());
    let mut created: Option<Value> = None;
    for name in names {
        let event: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(&name)).unwrap()).unwrap();
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(
                repo_root()
                    .join("events/expected/ledger/agentcore")
                    .join(&name),
            )
            .unwrap_or_else(|_| panic!("{name} has no expected result")),
        )
        .unwrap();
        // WHEN each runs in order
        let response = ledger.handle(&event, NOW).await;
        // THEN its expected fields match
        assert_subset(&name, "", &expected, &response);
        if let Some(first) = &created {
            assert_eq!(
                response["session"]["paymentSessionId"],
                first["session"]["paymentSessionId"]
            );
        } else {
            created = Some(response);
        }
    }
}

fn assert_subset(name: &str, path: &str, expected: &Value, actual: &Value) {
    match expected {
        Value::Object(fields) => {
            for (key, want) in fields {
                let got = actual.get(key).unwrap_or(&Value::Null);
                assert_subset(name, &format!("{path}.{key}"), want, got);
            }
        }
        want => assert_eq!(want, actual, "{name}: {path}"),
    }
}
