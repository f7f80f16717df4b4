//! authorize against DynamoDB Local, with an in-process signer standing in for AgentCore
//! Payments (idempotent on clientToken, counting its signatures, with switches for refusals,
//! silence and wrong terms): selection, reserve, sign, the post-sign check, markSent, the header,
//! and every failure step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use predebit_core::authorize::{
    AuthorizeConfig, AuthorizeContext, Authorizer, SignError, SignRequest, Signed, Signer,
};
use predebit_core::hold::{Hold, HoldState, SettlementRecord, SignedRecord};
use predebit_core::ledger::port::{
    DueHolds, OpenResult, ReserveRequest, ReserveResult, SessionPage, Transition, Write,
};
use predebit_core::ledger::LedgerStore;
use predebit_core::records::SessionRecord;
use predebit_core::store::StoreError;
use predebit_store::DynamoStore;
use predebit_tests::fresh_store;
use serde_json::{json, Value};

use crate::common::{seed_demo, test_keys, NOW};

const SESSION: &str = "ps-alice-main";
const USDC_BASE: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

/// How the stand-in signer answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Sign,
    Refuse,
    Silent,
    WrongRecipient,
    TooLong,
    /// Every field as approved, but the signature made for another chain.
    OtherChain,
    /// Signs again (a fresh nonce) for a clientToken it already signed for.
    Forgetful,
}

/// The stand-in wallet's key (a test key, holding nothing).
fn wallet() -> k256::ecdsa::SigningKey {
    k256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap()
}

/// Its address, 0x-hex.
fn wallet_address() -> String {
    use sha3::Digest as _;
    let point = wallet().verifying_key().to_encoded_point(false);
    let hash = sha3::Keccak256::digest(&point.as_bytes()[1..]);
    let hex: String = hash[12..].iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{hex}")
}

/// Signs `payload`'s authorization the way a wallet does: EIP-712 over `requirement`'s terms on
/// `chain_id`, r || s || v.
fn sign_payload(payload: &mut Value, requirement: &Value, chain_id: u64, amount: &str) {
    use predebit_core::eip712::{eip3009_digest, permit2_digest, SignedFor};
    let approved = SignedFor {
        chain_id,
        asset: requirement["asset"].as_str().unwrap(),
        pay_to: requirement["payTo"].as_str().unwrap(),
        amount_atomic: amount,
        domain: Some((
            requirement["extra"]["name"].as_str().unwrap(),
            requirement["extra"]["version"].as_str().unwrap(),
        )),
        upto: requirement["scheme"] == "upto",
    };
    let digest = match payload.get("authorization") {
        Some(auth) => eip3009_digest(auth, approved),
        None => permit2_digest(&payload["permit2Authorization"], approved),
    }
    .unwrap();
    let (signature, recovery) = wallet().sign_prehash_recoverable(&digest).unwrap();
    let mut bytes = signature.to_bytes().to_vec();
    bytes.push(27 + recovery.to_byte());
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    payload["signature"] = json!(format!("0x{hex}"));
}

fn chain_of(network: &str) -> u64 {
    match network {
        "base" => 8453,
        "base-sepolia" => 84532,
        other => other.strip_prefix("eip155:").unwrap().parse().unwrap(),
    }
}

/// AgentCore Payments' ProcessPayment as far as authorize sees it: one signature per
/// clientToken (the same token again returns the same payload), counted.
struct StandIn {
    mode: Mutex<Mode>,
    by_token: Mutex<HashMap<String, Value>>,
    signatures: AtomicU64,
    calls: AtomicU64,
    last: Mutex<Option<SignRequest>>,
}

impl StandIn {
    fn new() -> Self {
        Self {
            mode: Mutex::new(Mode::Sign),
            by_token: Mutex::default(),
            signatures: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

impl Signer for StandIn {
    async fn sign(&self, request: &SignRequest) -> Result<Signed, SignError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        *self.last.lock().unwrap() = Some(request.clone());
        let mode = *self.mode.lock().unwrap();
        match mode {
            Mode::Refuse => return Err(SignError::Refused("ValidationException")),
            Mode::Silent => return Err(SignError::Unavailable("timeout")),
            _ => {}
        }
        let mut by_token = self.by_token.lock().unwrap();
        if let Some(payload) = by_token
            .get(&request.client_token)
            .filter(|_| mode != Mode::Forgetful)
        {
            return Ok(Signed {
                payload: payload.clone(),
            });
        }
        let r = &request.requirement;
        let amount = r
            .get("amount")
            .or_else(|| r.get("maxAmountRequired"))
            .unwrap();
        let to = if mode == Mode::WrongRecipient {
            json!("0x0000000000000000000000000000000000000bad")
        } else {
            r["payTo"].clone()
        };
        let valid_before = if mode == Mode::TooLong {
            NOW + 86_400
        } else {
            NOW + r["maxTimeoutSeconds"].as_u64().unwrap()
        };
        let n = self.signatures.fetch_add(1, Ordering::SeqCst) + 1;
        let from = wallet_address();
        let mut payload = if r["extra"]["assetTransferMethod"] == "permit2" {
            json!({"signature": "", "permit2Authorization": {
                "from": from,
                "permitted": {"token": r["asset"], "amount": amount},
                "spender": "0x402085c248EeA27D92E8b30b2C58ed07f9E20001",
                "nonce": n.to_string(), "deadline": (valid_before - 1).to_string(),
                "witness": {"to": to, "validAfter": (NOW - 600).to_string()}}})
        } else {
            json!({"signature": "", "authorization": {
                "from": from, "to": to, "value": amount,
                "validAfter": (NOW - 600).to_string(), "validBefore": valid_before.to_string(),
                "nonce": format!("0x{n:064x}")}})
        };
        let chain = chain_of(r["network"].as_str().unwrap()) + u64::from(mode == Mode::OtherChain);
        sign_payload(&mut payload, r, chain, amount.as_str().unwrap());
        by_token.insert(request.client_token.clone(), payload.clone());
        Ok(Signed { payload })
    }
}

pub struct Fixture {
    authorizer: Authorizer<DynamoStore, DynamoStore, StandIn>,
}

impl Fixture {
    async fn new(name: &str) -> Self {
        let store = fresh_store(name).await;
        seed_demo(&store).await;
        Self::over(store)
    }

    /// An authorizer over a store already seeded, with a signer that signs.
    pub fn over(store: DynamoStore) -> Self {
        Self {
            authorizer: Authorizer::new(
                store.clone(),
                store,
                StandIn::new(),
                AuthorizeConfig::default(),
            ),
        }
    }

    /// From now on the signer refuses.
    pub fn refuse_signing(&self) {
        self.signer().set(Mode::Refuse);
    }

    fn signer(&self) -> &StandIn {
        self.authorizer.signer()
    }

    pub async fn run(&self, event: &Value, request_id: &str) -> Value {
        let keys = test_keys();
        self.authorizer
            .handle(
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

    async fn hold(&self, payment_id: &str) -> Option<Hold> {
        self.authorizer
            .ledger()
            .store()
            .read_hold(SESSION, payment_id)
            .await
            .unwrap()
    }

    async fn reserved_micros(&self) -> u64 {
        self.authorizer
            .ledger()
            .store()
            .read_session_page(SESSION, None, 0)
            .await
            .unwrap()
            .unwrap()
            .session
            .reserved_micros
    }
}

fn entry(network: &str, amount: &str, permit2: bool) -> Value {
    let mut extra = json!({"name": "USD Coin", "version": "2"});
    if permit2 {
        extra["assetTransferMethod"] = json!("permit2");
    }
    json!({"scheme": "exact", "network": network, "amount": amount, "asset": USDC_BASE,
        "payTo": PAY_TO, "maxTimeoutSeconds": 60, "extra": extra})
}

fn v2_event(accepts: Vec<Value>) -> Value {
    let offer = json!({"x402Version": 2, "resource": {"url": "https://api.weather.example/v2/forecast"},
        "accepts": accepts});
    json!({"version": "1", "x402Version": 2, "paymentRequired": STANDARD.encode(offer.to_string()),
        "requestUrl": "https://api.weather.example/v2/forecast", "userId": "user-alice",
        "agentId": "agent-research", "paymentSessionId": SESSION, "paymentInstrumentId": "pi-wallet-1",
        "toolName": "http_request", "toolUseId": "tooluse-authorize-1", "attempt": 1})
}

/// A one-entry v2 authorize event for tool call `n` on alice's session (1.00 USDC on Base).
pub fn sample_event(n: u64) -> Value {
    let mut event = v2_event(vec![entry("eip155:8453", "1000000", false)]);
    event["toolUseId"] = json!(format!("tooluse-authorize-{n}"));
    event
}

fn decoded_header(response: &Value) -> Value {
    serde_json::from_slice(
        &STANDARD
            .decode(response["paymentHeader"]["value"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_v2_payment_is_chosen_reserved_signed_checked_and_marked_sent() {
    // GIVEN a 402 offering a network policy refuses, a dearer and a cheaper Base USDC entry
    let f = Fixture::new("authorize-happy").await;
    let event = v2_event(vec![
        entry("eip155:137", "1000", false),
        entry("eip155:8453", "2000000", false),
        entry("eip155:8453", "1000000", false),
    ]);
    // WHEN authorized
    let r = f.run(&event, "authorize-happy").await;
    // THEN the cheapest acceptable entry is signed once and the hold is SENT
    assert_eq!(
        (&r["decision"], &r["reasonCode"]),
        (&json!("YES"), &json!("APPROVED")),
        "{r}"
    );
    assert_eq!(r["amount"]["micros"], 1_000_000);
    assert_eq!(r["paymentHeader"]["name"], "PAYMENT-SIGNATURE");
    let header = decoded_header(&r);
    assert_eq!(header["accepted"]["amount"], "1000000");
    assert_eq!(
        header["resource"]["url"],
        "https://api.weather.example/v2/forecast"
    );
    assert_eq!(header["payload"]["authorization"]["to"], PAY_TO);
    let payment_id = r["paymentId"].as_str().unwrap();
    let signed = f.signer().last.lock().unwrap().clone().unwrap();
    assert_eq!(signed.client_token, payment_id);
    assert_eq!(signed.permit2_allowance_limit, None);
    assert_eq!(f.signer().signatures.load(Ordering::SeqCst), 1);
    let hold = f.hold(payment_id).await.unwrap();
    assert_eq!(hold.state, HoldState::Sent);
    assert!(r["holdToken"]
        .as_str()
        .is_some_and(|t| t.starts_with("v1.")));
}

#[tokio::test]
async fn a_permit2_entry_is_signed_with_no_allowance_limit_as_agentcore_takes_it_for_exact() {
    let f = Fixture::new("authorize-permit2").await;
    let r = f
        .run(
            &v2_event(vec![entry("eip155:8453", "1500000", true)]),
            "authorize-permit2",
        )
        .await;
    assert_eq!(r["decision"], "YES", "{r}");
    let signed = f.signer().last.lock().unwrap().clone().unwrap();
    assert_eq!(signed.permit2_allowance_limit, None);
    assert!(decoded_header(&r)["payload"]["permit2Authorization"].is_object());
}

#[tokio::test]
async fn a_v1_body_is_paid_with_an_x_payment_header() {
    let f = Fixture::new("authorize-v1").await;
    let body = json!({"x402Version": 1, "accepts": [{"scheme": "exact", "network": "base",
        "maxAmountRequired": "1000000", "resource": "https://api.weather.example/v1/forecast",
        "description": "d", "mimeType": "application/json", "payTo": PAY_TO,
        "maxTimeoutSeconds": 60, "asset": USDC_BASE, "extra": {"name": "USD Coin", "version": "2"}}]});
    let mut event = v2_event(vec![]);
    let obj = event.as_object_mut().unwrap();
    obj.remove("paymentRequired");
    obj.insert("x402Version".into(), json!(1));
    obj.insert("body".into(), body);
    obj.insert(
        "requestUrl".into(),
        json!("https://api.weather.example/v1/forecast"),
    );
    let r = f.run(&event, "authorize-v1").await;
    assert_eq!(r["decision"], "YES", "{r}");
    assert_eq!(r["paymentHeader"]["name"], "X-PAYMENT");
    let header = decoded_header(&r);
    assert_eq!(
        (&header["x402Version"], &header["network"]),
        (&json!(1), &json!("base"))
    );
}

#[tokio::test]
async fn a_no_before_signing_holds_nothing_and_asks_for_no_signature() {
    let f = Fixture::new("authorize-no").await;
    // every entry above the user's 5.00 limit, or on a network policy refuses
    let r = f
        .run(
            &v2_event(vec![
                entry("eip155:137", "1000", false),
                entry("eip155:8453", "6000000", false),
            ]),
            "authorize-no",
        )
        .await;
    // the entry that got furthest gives the reason
    assert_eq!(r["reasonCode"], "AMOUNT_OVER_PAYMENT_LIMIT", "{r}");
    assert!(r.get("paymentHeader").is_none() && r.get("holdToken").is_none());
    assert_eq!(f.signer().calls.load(Ordering::SeqCst), 0);
    assert_eq!(f.reserved_micros().await, 0);
}

#[tokio::test]
async fn a_refused_signature_releases_the_hold() {
    let f = Fixture::new("authorize-refused").await;
    f.signer().set(Mode::Refuse);
    let r = f
        .run(
            &v2_event(vec![entry("eip155:8453", "1000000", false)]),
            "authorize-refused",
        )
        .await;
    assert_eq!(r["reasonCode"], "SIGNING_FAILED", "{r}");
    let hold = f.hold(r["paymentId"].as_str().unwrap()).await.unwrap();
    assert_eq!(
        (hold.state, hold.void_reason.as_deref()),
        (HoldState::Voided, Some("SIGNING_FAILED"))
    );
    assert_eq!(f.reserved_micros().await, 0);
}

#[tokio::test]
async fn a_silent_signer_keeps_the_hold_and_the_same_request_continues_with_the_same_token() {
    let f = Fixture::new("authorize-silent").await;
    let event = v2_event(vec![entry("eip155:8453", "1000000", false)]);
    f.signer().set(Mode::Silent);
    let first = f.run(&event, "authorize-silent-1").await;
    assert_eq!(first["reasonCode"], "SIGNER_UNAVAILABLE", "{first}");
    assert!(first.get("paymentHeader").is_none());
    let payment_id = first["paymentId"].as_str().unwrap().to_string();
    assert_eq!(f.hold(&payment_id).await.unwrap().state, HoldState::Pending);
    // WHEN the same request comes again and the signer answers
    f.signer().set(Mode::Sign);
    let again = f.run(&event, "authorize-silent-2").await;
    // THEN it continues the same hold under the same clientToken
    assert_eq!(again["decision"], "YES", "{again}");
    assert_eq!(again["paymentId"], payment_id.as_str());
    let signed = f.signer().last.lock().unwrap().clone().unwrap();
    assert_eq!(signed.client_token, payment_id);
    assert_eq!(f.hold(&payment_id).await.unwrap().state, HoldState::Sent);
    assert_eq!(f.reserved_micros().await, 1_000_000);
}

#[tokio::test]
async fn the_last_payment_that_fits_continues_after_a_silent_signer_and_its_replay_still_pays() {
    // GIVEN alice's small session (2.00) and a 1.50 payment whose signer first stays silent
    let f = Fixture::new("authorize-last-fit").await;
    let mut event = v2_event(vec![entry("eip155:8453", "1500000", false)]);
    event["paymentSessionId"] = json!("ps-alice-small");
    f.signer().set(Mode::Silent);
    let first = f.run(&event, "authorize-last-fit-1").await;
    assert_eq!(first["reasonCode"], "SIGNER_UNAVAILABLE", "{first}");
    // WHEN the same request comes again (its own 1.50 hold leaves 0.50 available) and signs
    f.signer().set(Mode::Sign);
    let again = f.run(&event, "authorize-last-fit-2").await;
    // THEN its own hold counts for it: YES on the same paymentId, one signature
    assert_eq!(again["decision"], "YES", "{again}");
    assert_eq!(again["paymentId"], first["paymentId"]);
    // AND a replay after the YES (an answer lost) returns the same header, no second signature
    let replay = f.run(&event, "authorize-last-fit-3").await;
    assert_eq!(replay["decision"], "YES", "{replay}");
    assert_eq!(replay["paymentHeader"], again["paymentHeader"]);
    assert_eq!(f.signer().signatures.load(Ordering::SeqCst), 1);
    // AND another tool call's 1.50 is still refused: only a request's own hold counts
    let mut other = event.clone();
    other["toolUseId"] = json!("tooluse-authorize-other");
    let refused = f.run(&other, "authorize-last-fit-4").await;
    assert_eq!(
        refused["reasonCode"], "SESSION_BUDGET_EXCEEDED",
        "{refused}"
    );
    let session = f
        .authorizer
        .ledger()
        .store()
        .read_session_page("ps-alice-small", None, 10)
        .await
        .unwrap()
        .unwrap()
        .session;
    assert_eq!(session.reserved_micros, 1_500_000);
}

#[tokio::test]
async fn a_second_signature_for_a_sent_hold_is_never_returned() {
    // GIVEN a payment authorized and marked SENT
    let f = Fixture::new("authorize-second-signature").await;
    let event = v2_event(vec![entry("eip155:8453", "1000000", false)]);
    let first = f.run(&event, "authorize-second-1").await;
    assert_eq!(first["decision"], "YES", "{first}");
    // WHEN the same request comes again and the signer, forgetting its clientToken, signs anew
    f.signer().set(Mode::Forgetful);
    let again = f.run(&event, "authorize-second-2").await;
    // THEN the other signature (another nonce) is not handed out; the hold keeps the first
    assert_eq!(again["decision"], "NO", "{again}");
    assert!(again.get("paymentHeader").is_none(), "{again}");
    let payment_id = first["paymentId"].as_str().unwrap();
    let hold = f.hold(payment_id).await.unwrap();
    assert_eq!(hold.state, HoldState::Sent);
    assert_eq!(f.signer().signatures.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_signature_with_other_terms_is_discarded_and_the_hold_released() {
    for (mode, name) in [
        (Mode::WrongRecipient, "recipient"),
        (Mode::TooLong, "window"),
        (Mode::OtherChain, "signature"),
    ] {
        let f = Fixture::new(&format!("authorize-mismatch-{name}")).await;
        f.signer().set(mode);
        let keys = test_keys();
        let out = f
            .authorizer
            .handle(
                &v2_event(vec![entry("eip155:8453", "1000000", false)]),
                AuthorizeContext {
                    request_id: &format!("authorize-mismatch-{name}"),
                    now: NOW,
                    keys: &keys,
                },
            )
            .await;
        let r = &out.response;
        assert_eq!(r["reasonCode"], "SIGNED_PAYLOAD_MISMATCH", "{name}: {r}");
        assert!(out.signed_mismatch);
        assert!(r.get("paymentHeader").is_none(), "{r}");
        assert!(!r.to_string().contains("0bad"), "{r}");
        let hold = f.hold(r["paymentId"].as_str().unwrap()).await.unwrap();
        assert_eq!(
            (hold.state, hold.void_reason.as_deref()),
            (HoldState::Voided, Some("SIGNED_PAYLOAD_MISMATCH"))
        );
    }
}

#[tokio::test]
async fn a_replayed_authorize_returns_the_same_header_without_a_second_signature() {
    let f = Fixture::new("authorize-replay").await;
    let event = v2_event(vec![entry("eip155:8453", "1000000", false)]);
    let first = f.run(&event, "authorize-replay-1").await;
    let again = f.run(&event, "authorize-replay-2").await;
    assert_eq!(first["decision"], "YES", "{first}");
    assert_eq!(again["decision"], "YES", "{again}");
    assert_eq!(first["paymentHeader"], again["paymentHeader"]);
    assert_eq!(first["holdToken"], again["holdToken"]);
    assert_eq!(f.signer().signatures.load(Ordering::SeqCst), 1);
    assert_eq!(f.reserved_micros().await, 1_000_000);
}

#[tokio::test]
async fn a_malformed_event_is_a_no_naming_the_field() {
    let f = Fixture::new("authorize-malformed").await;
    let mut event = v2_event(vec![entry("eip155:8453", "1000000", false)]);
    event["attempt"] = json!(0);
    let r = f.run(&event, "authorize-malformed").await;
    assert_eq!(r["reasonCode"], "INVALID_REQUEST", "{r}");
    assert!(r["message"].as_str().unwrap().contains("attempt"), "{r}");
    assert_eq!(f.signer().calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_authorize_makes_four_requests_and_a_no_before_signing_one() {
    use predebit_tests::{dynamodb_client_with, fresh_store_with, RequestCounter};
    let counter = RequestCounter::default();
    let client = dynamodb_client_with({
        let c = counter.clone();
        move |b| b.interceptor(c)
    })
    .await;
    let store = fresh_store_with("authorize-counts", client).await;
    seed_demo(&store).await;
    let f = Fixture::over(store);
    // WHEN a payment is authorized THEN BatchGetItem, TransactWriteItems, UpdateItem, and one
    // ProcessPayment
    let before = counter.sent();
    let r = f.run(&sample_event(1), "authorize-counts-1").await;
    assert_eq!(r["decision"], "YES", "{r}");
    assert_eq!(counter.sent() - before, 3);
    assert_eq!(f.signer().calls.load(Ordering::SeqCst), 1);
    // WHEN one is declined by policy THEN one BatchGetItem and no ProcessPayment
    let before = counter.sent();
    let mut over = sample_event(2);
    over["paymentRequired"] =
        v2_event(vec![entry("eip155:8453", "6000000", false)])["paymentRequired"].clone();
    let r = f.run(&over, "authorize-counts-2").await;
    assert_eq!(r["reasonCode"], "AMOUNT_OVER_PAYMENT_LIMIT", "{r}");
    assert_eq!(counter.sent() - before, 1);
    assert_eq!(f.signer().calls.load(Ordering::SeqCst), 1);
}

/// DynamoDB gone after signing: every markSent fails while `STORE_GONE` is set (only this
/// wrapper reads it); everything else goes to the real store.
static STORE_GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

struct GoneAfterSigning(DynamoStore);

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        $(fn $name(&self, $($arg: $ty),*)
            -> impl std::future::Future<Output = Result<$out, StoreError>> + Send {
            LedgerStore::$name(&self.0, $($arg),*)
        })*
    };
}

impl LedgerStore for GoneAfterSigning {
    delegate! {
        reserve(r: &ReserveRequest) -> ReserveResult;
        post(s: &str, p: &str, a: Option<u64>, r: &SettlementRecord, h: HoldState, w: Write<'_>) -> Transition;
        post_late(h: &Hold, r: &SettlementRecord, w: Write<'_>) -> Transition;
        record_failed_settlement(s: &str, p: &str, a: &str, b: &str, t: Option<&str>, w: Write<'_>) -> Transition;
        release(s: &str, p: &str, a: Option<u64>, r: &str, w: Write<'_>) -> Transition;
        due_holds(now: u64, limit: usize) -> DueHolds;
        expire_hold(h: &Hold, w: Write<'_>) -> Transition;
        read_session_page(s: &str, after: Option<&str>, limit: usize) -> Option<SessionPage>;
        read_hold(s: &str, p: &str) -> Option<Hold>;
        open_session(s: &SessionRecord, w: Write<'_>) -> OpenResult;
        close_session(s: &str, r: &str, w: Write<'_>) -> Option<(SessionRecord, bool)>;
    }

    fn mark_sent(
        &self,
        session_id: &str,
        payment_id: &str,
        signed: &SignedRecord,
        expires_at: u64,
        w: Write<'_>,
    ) -> impl std::future::Future<Output = Result<Transition, StoreError>> + Send {
        let gone = STORE_GONE.load(Ordering::SeqCst);
        let real = self
            .0
            .mark_sent(session_id, payment_id, signed, expires_at, w);
        async move {
            if gone {
                Err(StoreError::Unavailable("the store did not answer".into()))
            } else {
                real.await
            }
        }
    }
}

#[tokio::test]
async fn a_store_failure_after_signing_returns_no_header_and_leaves_the_hold_to_expire() {
    // GIVEN a ledger store that stops answering once the payment is signed
    let store = fresh_store("authorize-store-gone").await;
    seed_demo(&store).await;
    let authorizer = Authorizer::new(
        store.clone(),
        GoneAfterSigning(store.clone()),
        StandIn::new(),
        AuthorizeConfig::default(),
    );
    let keys = test_keys();
    STORE_GONE.store(true, Ordering::SeqCst);
    // WHEN authorize reserves, has the payment signed, and cannot mark it sent
    let out = authorizer
        .handle(
            &v2_event(vec![entry("eip155:8453", "1000000", false)]),
            AuthorizeContext {
                request_id: "authorize-store-gone",
                now: NOW,
                keys: &keys,
            },
        )
        .await;
    STORE_GONE.store(false, Ordering::SeqCst);
    // THEN NO STORE_UNAVAILABLE and no header: the signature never leaves predebit
    let r = &out.response;
    assert_eq!(r["reasonCode"], "STORE_UNAVAILABLE", "{r}");
    assert!(r.get("paymentHeader").is_none(), "{r}");
    assert!(r.get("holdToken").is_none(), "{r}");
    assert_eq!(authorizer.signer().signatures.load(Ordering::SeqCst), 1);
    // AND the hold stays PENDING, for its expiry to void
    let hold = store
        .read_hold(SESSION, r["paymentId"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hold.state, HoldState::Pending);
}
