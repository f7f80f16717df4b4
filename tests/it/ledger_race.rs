//! The ledger under concurrent reserves, replayed deliveries and request counting, against
//! DynamoDB Local: authorisations never exceed the limit, a replay never debits twice, and each
//! happy-path op is one DynamoDB request.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use predebit_core::hold::{Hold, HoldState};
use predebit_core::ledger::port::read_whole_session;
use predebit_core::records::SessionRecord;
use predebit_tests::{dynamodb_client_with, fresh_store_with, RequestCounter};
use proptest::prelude::*;
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::common::{proptest_cases, NOW};
use crate::ledger_flow::{assert_invariant, pid, Flow};

const MERCHANT: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const PAYER: &str = "0x1111111111111111111111111111111111111111";
/// Far beyond every clock the tests use.
const SESSION_EXPIRES_AT: u64 = 4_102_444_800;
/// How often a test re-sends a reserve the store answered with STORE_CONFLICT.
const CONFLICT_RETRIES: usize = 200;

/// Opens a session for user-alice with `limit` (USD text).
pub(crate) async fn open_session(flow: &Flow, id: &str, limit: &str) {
    let opened = flow
        .op(
            json!({"version": "1", "op": "openSession", "paymentSessionId": id,
            "userId": "user-alice", "limit": limit, "expiresAt": SESSION_EXPIRES_AT}),
        )
        .await;
    assert_eq!(opened["ok"], true, "{opened}");
}

fn reserve_event(token: &str) -> Value {
    json!({"version": "1", "op": "reserve", "decisionToken": token})
}

/// Sends an event until the store resolves it (anything but STORE_CONFLICT).
async fn send_until_resolved(flow: &Flow, event: &Value) -> Value {
    for conflicts in 0..CONFLICT_RETRIES {
        let answer = flow.op(event.clone()).await;
        if answer["reasonCode"] != "STORE_CONFLICT" {
            return answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1 + conflicts as u64 % 20)).await;
    }
    panic!(
        "{} stayed STORE_CONFLICT after {CONFLICT_RETRIES} attempts",
        event["op"]
    );
}

/// Starts one task per event, all released together by a barrier; returns the answers in event
/// order.
async fn race(flow: &Arc<Flow>, events: Vec<Value>) -> Vec<Value> {
    let barrier = Arc::new(Barrier::new(events.len()));
    let handles: Vec<_> = events
        .into_iter()
        .map(|event| {
            let (flow, barrier) = (flow.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                send_until_resolved(&flow, &event).await
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(handles.len());
    for handle in handles {
        answers.push(handle.await.expect("racing task panicked"));
    }
    answers
}

/// Races one reserve per token.
async fn race_reserves(flow: &Arc<Flow>, tokens: Vec<String>) -> Vec<Value> {
    race(flow, tokens.iter().map(|t| reserve_event(t)).collect()).await
}

/// How many answers are ok with `replayed` false and true.
fn ok_first_and_replayed(answers: &[Value]) -> (usize, usize) {
    let ok = |replayed: bool| {
        answers
            .iter()
            .filter(|a| a["ok"] == true && a["replayed"] == replayed)
            .count()
    };
    (ok(false), ok(true))
}

/// The reason codes of refused answers, counted.
fn refusals(answers: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for a in answers.iter().filter(|a| a["ok"] != true) {
        *counts
            .entry(a["reasonCode"].as_str().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    counts
}

async fn session_with_holds(flow: &Flow, id: &str) -> (SessionRecord, Vec<Hold>) {
    let whole = read_whole_session(flow.ledger.ledger().store(), id)
        .await
        .expect("the store answers")
        .expect("the session exists");
    assert!(!whole.session_changed, "the session changed between pages");
    (whole.session, whole.holds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_hundred_concurrent_reserves_exactly_those_the_budget_fits_hold() {
    // GIVEN a 5.00 session and 200 approved payments of 0.10 each (50 fit)
    let flow = Arc::new(Flow::new("race-200").await);
    open_session(&flow, "ps-race-200", "5.00").await;
    let mut tokens = Vec::new();
    for n in 0..200 {
        tokens.push(
            flow.approve(&pid(10_000 + n), "100000", "ps-race-200")
                .await,
        );
    }

    // WHEN all 200 reserves start together (STORE_CONFLICT answers are sent again)
    let answers = race_reserves(&flow, tokens).await;

    // THEN exactly 50 hold, the other 150 are refused for the budget
    let held: Vec<&Value> = answers.iter().filter(|a| a["ok"] == true).collect();
    assert_eq!(held.len(), 50, "refusals: {:?}", refusals(&answers));
    assert!(held
        .iter()
        .all(|a| a["replayed"] == false && a["hold"]["state"] == "PENDING"));
    assert_eq!(
        refusals(&answers),
        BTreeMap::from([("SESSION_BUDGET_EXCEEDED".to_string(), 150)])
    );
    // AND the session holds exactly those 50, balanced
    let (s, holds) = session_with_holds(&flow, "ps-race-200").await;
    assert_eq!(
        (
            s.reserved_micros,
            s.available_micros,
            s.settled_micros,
            s.overdraft_micros
        ),
        (5_000_000, 0, 0, 0)
    );
    assert_invariant(&s);
    assert_eq!(holds.len(), 50, "a refused reserve leaves no hold");
    assert!(holds
        .iter()
        .all(|h| h.state == HoldState::Pending && h.amount_micros == 100_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_racing_reserves_that_each_fit_alone_exactly_one_holds() {
    // GIVEN five 5.00 sessions, each with two approved payments of 4.50
    let flow = Arc::new(Flow::new("race-pair").await);
    for round in 0..5u64 {
        let session = format!("ps-race-pair-{round}");
        open_session(&flow, &session, "5.00").await;
        let tokens = vec![
            flow.approve(&pid(20_000 + 2 * round), "4500000", &session)
                .await,
            flow.approve(&pid(20_001 + 2 * round), "4500000", &session)
                .await,
        ];

        // WHEN both reserves start together
        let answers = race_reserves(&flow, tokens).await;

        // THEN exactly one holds and the other is refused for the budget
        let held = answers.iter().filter(|a| a["ok"] == true).count();
        assert_eq!(held, 1, "round {round}: {answers:?}");
        assert_eq!(
            refusals(&answers),
            BTreeMap::from([("SESSION_BUDGET_EXCEEDED".to_string(), 1)]),
            "round {round}"
        );
        let (s, holds) = session_with_holds(&flow, &session).await;
        assert_eq!(
            (s.reserved_micros, s.available_micros, s.settled_micros),
            (4_500_000, 500_000, 0)
        );
        assert_invariant(&s);
        assert_eq!(holds.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_reserve_delivered_twenty_times_at_once_holds_once() {
    // GIVEN a 5.00 session and one approved payment of 1.25
    let flow = Arc::new(Flow::new("race-same-reserve").await);
    open_session(&flow, "ps-race-same", "5.00").await;
    let token = flow.approve(&pid(21_000), "1250000", "ps-race-same").await;

    // WHEN the same reserve is delivered 20 times together
    let answers = race(&flow, vec![reserve_event(&token); 20]).await;

    // THEN one delivery holds, the other 19 are replays, and the amount is held once
    assert_eq!(ok_first_and_replayed(&answers), (1, 19), "{answers:?}");
    let (s, holds) = session_with_holds(&flow, "ps-race-same").await;
    assert_eq!(
        (s.reserved_micros, s.available_micros),
        (1_250_000, 3_750_000)
    );
    assert_invariant(&s);
    assert_eq!(holds.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_commit_delivered_twenty_times_at_once_settles_once() {
    // GIVEN a SENT hold of 1.25 on a 5.00 session
    let flow = Arc::new(Flow::new("race-same-commit").await);
    open_session(&flow, "ps-race-commit", "5.00").await;
    let payment_id = pid(21_001);
    let token = flow.approve(&payment_id, "1250000", "ps-race-commit").await;
    let plan = PaymentPlan {
        amount_micros: 1_250_000,
        path: Path::Settle { failures: 0 },
        copies: vec![1; 5],
        amount_hint: true,
    };
    reserve_and_mark_sent(&flow, "ps-race-commit", &payment_id, &token, &plan).await;

    // WHEN the same successful settlement is committed 20 times together
    let commit = step_event(
        "ps-race-commit",
        &payment_id,
        &token,
        &plan,
        Step::CommitSuccess,
    );
    let answers = race(&flow, vec![commit; 20]).await;

    // THEN one delivery posts, the other 19 are replays, and the amount is settled once
    assert_eq!(ok_first_and_replayed(&answers), (1, 19), "{answers:?}");
    let s = flow.session("ps-race-commit").await;
    assert_eq!(
        (s.reserved_micros, s.settled_micros, s.available_micros),
        (0, 1_250_000, 3_750_000)
    );
    assert_invariant(&s);
}

// ---------------------------------------------------------------------------------------------
// Replays: a random workload, each op delivered 1-3 times, against a plain model.
// ---------------------------------------------------------------------------------------------

/// One step of a payment's flow, as the agent takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Reserve,
    MarkSent,
    CommitFailure,
    CommitSuccess,
    Release,
}

/// How a payment's flow goes.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// reserve, markSent, `failures` failed settlements, a successful one.
    Settle { failures: usize },
    /// reserve, release (never sent).
    Release,
    /// reserve, markSent, `failures` failed settlements; still in doubt at the end.
    InDoubt { failures: usize },
}

impl Path {
    fn steps(self) -> Vec<Step> {
        match self {
            Path::Settle { failures } => [Step::Reserve, Step::MarkSent]
                .into_iter()
                .chain(std::iter::repeat_n(Step::CommitFailure, failures))
                .chain([Step::CommitSuccess])
                .collect(),
            Path::Release => vec![Step::Reserve, Step::Release],
            Path::InDoubt { failures } => [Step::Reserve, Step::MarkSent]
                .into_iter()
                .chain(std::iter::repeat_n(Step::CommitFailure, failures))
                .collect(),
        }
    }
}

#[derive(Clone, Debug)]
struct PaymentPlan {
    amount_micros: u64,
    path: Path,
    /// Deliveries of each step (1-3), by step index.
    copies: Vec<usize>,
    /// Whether commit and release carry `amountMicros` (one request) or not (read first).
    amount_hint: bool,
}

#[derive(Clone, Debug)]
struct Workload {
    limit_cents: u64,
    payments: Vec<PaymentPlan>,
    /// Random choices that place duplicate deliveries and interleave the payments.
    choices: Vec<usize>,
}

/// One delivery: payment index, step index in its flow, whether it is the first of that step.
#[derive(Clone, Copy, Debug)]
struct Delivery {
    payment: usize,
    step: usize,
    first: bool,
}

impl Workload {
    /// The deliveries in order. Per payment the first delivery of each step follows the first
    /// delivery of the step before (the agent waits for an answer); duplicates of a step arrive
    /// anywhere after its first delivery, even after later steps (late retries).
    fn deliveries(&self) -> Vec<Delivery> {
        let mut choice = self.choices.iter().cycle().copied();
        let mut queues: Vec<Vec<Delivery>> = self
            .payments
            .iter()
            .enumerate()
            .map(|(payment, plan)| {
                let steps = plan.path.steps();
                let mut queue: Vec<Delivery> = (0..steps.len())
                    .map(|step| Delivery {
                        payment,
                        step,
                        first: true,
                    })
                    .collect();
                for (step, &copies) in plan.copies.iter().enumerate().take(steps.len()) {
                    for _ in 1..copies {
                        let first_at = queue
                            .iter()
                            .position(|d| d.first && d.step == step)
                            .expect("first delivery is queued");
                        let at = first_at + 1 + choice.next().unwrap() % (queue.len() - first_at);
                        queue.insert(
                            at,
                            Delivery {
                                payment,
                                step,
                                first: false,
                            },
                        );
                    }
                }
                queue.reverse();
                queue
            })
            .collect();
        let mut order = Vec::new();
        loop {
            let open: Vec<usize> = (0..queues.len())
                .filter(|&q| !queues[q].is_empty())
                .collect();
            if open.is_empty() {
                return order;
            }
            let q = open[choice.next().unwrap() % open.len()];
            order.push(queues[q].pop().expect("non-empty"));
        }
    }
}

fn workload() -> impl Strategy<Value = Workload> {
    let payment = (
        1_000_000u64..=3_000_000,
        prop_oneof![
            (0usize..=2).prop_map(|failures| Path::Settle { failures }),
            Just(Path::Release),
            (0usize..=1).prop_map(|failures| Path::InDoubt { failures }),
        ],
        proptest::collection::vec(1usize..=3, 5),
        any::<bool>(),
    )
        .prop_map(|(amount_micros, path, copies, amount_hint)| PaymentPlan {
            amount_micros,
            path,
            copies,
            amount_hint,
        });
    (
        300u64..=700,
        proptest::collection::vec(payment, 1..=4),
        proptest::collection::vec(0usize..1000, 32),
    )
        .prop_map(|(limit_cents, payments, choices)| Workload {
            limit_cents,
            payments,
            choices,
        })
}

/// What a payment's hold is in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ModelHold {
    Absent,
    Is(HoldState),
}

/// The plain model: per payment its hold and failed-settlement count, and the session balances.
#[derive(Debug)]
struct Model {
    limit: u64,
    available: u64,
    reserved: u64,
    settled: u64,
    holds: Vec<(ModelHold, u64)>,
    amounts: Vec<u64>,
}

/// What the model expects a delivery to answer.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Ok { replayed: bool, state: HoldState },
    Refused(&'static str),
}

impl Model {
    fn new(limit: u64, amounts: Vec<u64>) -> Self {
        Self {
            limit,
            available: limit,
            reserved: 0,
            settled: 0,
            holds: vec![(ModelHold::Absent, 0); amounts.len()],
            amounts,
        }
    }

    fn apply(&mut self, p: usize, step: Step) -> Expect {
        use HoldState::*;
        let amount = self.amounts[p];
        let (hold, failures) = &mut self.holds[p];
        match (step, *hold) {
            (Step::Reserve, ModelHold::Absent) if self.available >= amount => {
                self.available -= amount;
                self.reserved += amount;
                *hold = ModelHold::Is(Pending);
                Expect::Ok {
                    replayed: false,
                    state: Pending,
                }
            }
            (Step::Reserve, ModelHold::Absent) => Expect::Refused("SESSION_BUDGET_EXCEEDED"),
            (Step::Reserve, ModelHold::Is(state)) => Expect::Ok {
                replayed: true,
                state,
            },
            (_, ModelHold::Absent) => unreachable!("steps after a reserve need a hold"),
            (Step::MarkSent, ModelHold::Is(Pending)) => {
                *hold = ModelHold::Is(Sent);
                Expect::Ok {
                    replayed: false,
                    state: Sent,
                }
            }
            (Step::MarkSent, ModelHold::Is(Sent)) => Expect::Ok {
                replayed: true,
                state: Sent,
            },
            (Step::CommitFailure, ModelHold::Is(state @ (Pending | Sent))) => {
                *failures += 1;
                Expect::Ok {
                    replayed: false,
                    state,
                }
            }
            (Step::CommitSuccess, ModelHold::Is(Pending | Sent)) => {
                self.reserved -= amount;
                self.settled += amount;
                *hold = ModelHold::Is(Posted);
                Expect::Ok {
                    replayed: false,
                    state: Posted,
                }
            }
            (Step::CommitSuccess, ModelHold::Is(Posted)) => Expect::Ok {
                replayed: true,
                state: Posted,
            },
            (Step::Release, ModelHold::Is(Pending)) => {
                self.reserved -= amount;
                self.available += amount;
                *hold = ModelHold::Is(Voided);
                Expect::Ok {
                    replayed: false,
                    state: Voided,
                }
            }
            (Step::Release, ModelHold::Is(Voided)) => Expect::Ok {
                replayed: true,
                state: Voided,
            },
            (Step::Release, ModelHold::Is(Sent)) => Expect::Refused("OP_NOT_ALLOWED"),
            (_, ModelHold::Is(Posted)) => Expect::Refused("HOLD_ALREADY_POSTED"),
            (_, ModelHold::Is(Voided)) => Expect::Refused("HOLD_ALREADY_VOIDED"),
        }
    }
}

fn transaction_for(payment_id: &str) -> String {
    format!("0x{payment_id}")
}

/// The ledger event for one step of a payment.
fn step_event(
    session: &str,
    payment_id: &str,
    token: &str,
    plan: &PaymentPlan,
    step: Step,
) -> Value {
    let hint = |mut v: Value| {
        if plan.amount_hint {
            v["amountMicros"] = json!(plan.amount_micros);
        }
        v
    };
    match step {
        Step::Reserve => reserve_event(token),
        Step::MarkSent => json!({"version": "1", "op": "markSent", "paymentSessionId": session,
            "paymentId": payment_id, "signed": {"to": MERCHANT,
            "value": plan.amount_micros.to_string(), "network": "eip155:8453", "validBefore": NOW + 60}}),
        Step::CommitFailure => hint(
            json!({"version": "1", "op": "commit", "paymentSessionId": session,
            "paymentId": payment_id, "settlement": {"success": false, "errorReason": "insufficient_funds",
            "transaction": "", "network": "base", "payer": PAYER}}),
        ),
        Step::CommitSuccess => hint(
            json!({"version": "1", "op": "commit", "paymentSessionId": session,
            "paymentId": payment_id, "settlement": {"success": true,
            "transaction": transaction_for(payment_id), "network": "base", "payer": PAYER}}),
        ),
        Step::Release => hint(
            json!({"version": "1", "op": "release", "paymentSessionId": session,
            "paymentId": payment_id, "reason": "NOT_SENT"}),
        ),
    }
}

/// Runs one workload on a fresh session and checks every answer and the end state against the
/// model.
async fn run_workload(flow: &Flow, case: u64, w: &Workload) {
    // GIVEN a fresh session and one approved token per payment
    let session = format!("ps-replay-{case}");
    let limit = w.limit_cents * 10_000;
    open_session(
        flow,
        &session,
        &format!("{}.{:02}", w.limit_cents / 100, w.limit_cents % 100),
    )
    .await;
    let mut payments = Vec::new();
    for (i, plan) in w.payments.iter().enumerate() {
        let payment_id = pid(case * 16 + i as u64);
        let token = flow
            .approve(&payment_id, &plan.amount_micros.to_string(), &session)
            .await;
        payments.push((payment_id, token, plan.path.steps()));
    }
    let mut model = Model::new(limit, w.payments.iter().map(|p| p.amount_micros).collect());
    // The agent stops a payment whose reserve was refused: its later steps are never sent.
    let mut abandoned = vec![false; w.payments.len()];

    // WHEN every delivery is sent in the generated order
    for d in w.deliveries() {
        let (payment_id, token, steps) = &payments[d.payment];
        let step = steps[d.step];
        if step != Step::Reserve {
            if d.first && model.holds[d.payment].0 == ModelHold::Absent {
                abandoned[d.payment] = true;
            }
            if abandoned[d.payment] || model.holds[d.payment].0 == ModelHold::Absent {
                continue;
            }
        }
        let event = step_event(&session, payment_id, token, &w.payments[d.payment], step);
        let answer = flow.op(event).await;
        let expected = model.apply(d.payment, step);
        // THEN each answer is the one the model predicts
        match expected {
            Expect::Ok { replayed, state } => {
                assert_eq!(
                    (&answer["ok"], &answer["replayed"], &answer["hold"]["state"]),
                    (&json!(true), &json!(replayed), &json!(state)),
                    "{step:?} of payment {} ({d:?}): {answer}",
                    d.payment
                );
            }
            Expect::Refused(code) => {
                assert_eq!(
                    (&answer["ok"], &answer["reasonCode"]),
                    (&json!(false), &json!(code)),
                    "{step:?} of payment {} ({d:?}): {answer}",
                    d.payment
                );
            }
        }
    }

    // THEN the session's balances are the model's: no double debit, nothing lost
    let (s, holds) = session_with_holds(flow, &session).await;
    assert_eq!(
        (
            s.limit_micros,
            s.available_micros,
            s.reserved_micros,
            s.settled_micros,
            s.overdraft_micros
        ),
        (
            model.limit,
            model.available,
            model.reserved,
            model.settled,
            0
        ),
        "model: {model:?}"
    );
    assert_invariant(&s);
    // AND every hold is in the state the model predicts
    for (i, (payment_id, _, _)) in payments.iter().enumerate() {
        let found = holds.iter().find(|h| &h.payment_id == payment_id);
        match (model.holds[i].0, found) {
            (ModelHold::Absent, None) => {}
            (ModelHold::Is(state), Some(h)) => {
                assert_eq!(
                    (h.state, h.amount_micros, h.settlement_failures as u64),
                    (state, w.payments[i].amount_micros, model.holds[i].1),
                    "payment {i}"
                );
                let posted = state == HoldState::Posted;
                assert_eq!(
                    h.settlement.as_ref().map(|s| s.transaction.clone()),
                    posted.then(|| transaction_for(payment_id)),
                    "payment {i}"
                );
            }
            (expected, found) => panic!("payment {i}: model {expected:?}, store {found:?}"),
        }
    }
    let held_by_holds: u64 = holds
        .iter()
        .filter(|h| matches!(h.state, HoldState::Pending | HoldState::Sent))
        .map(|h| h.amount_micros)
        .sum();
    let settled_by_holds: u64 = holds
        .iter()
        .filter(|h| h.state == HoldState::Posted)
        .map(|h| h.amount_micros)
        .sum();
    assert_eq!(
        (held_by_holds, settled_by_holds),
        (s.reserved_micros, s.settled_micros),
        "the session's counters are the sum of its holds"
    );
}

#[test]
fn replayed_and_reordered_deliveries_end_in_the_balances_and_holds_the_model_predicts() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let flow = runtime.block_on(Flow::new("replay-model"));
    let cases = AtomicU64::new(0);
    let config = ProptestConfig {
        cases: proptest_cases(),
        ..ProptestConfig::default()
    };
    proptest!(config, |(w in workload())| {
        let case = cases.fetch_add(1, Ordering::SeqCst);
        runtime.block_on(run_workload(&flow, case, &w));
    });
}

// ---------------------------------------------------------------------------------------------
// Request counts.
// ---------------------------------------------------------------------------------------------

/// A seeded flow whose store counts the DynamoDB requests it sends.
async fn counted_flow(name: &str) -> (Flow, RequestCounter) {
    let counter = RequestCounter::default();
    let client = dynamodb_client_with({
        let c = counter.clone();
        move |b| b.interceptor(c)
    })
    .await;
    (
        Flow::over(fresh_store_with(name, client).await).await,
        counter,
    )
}

/// Sends one ledger event; returns the answer and the DynamoDB requests it took.
async fn counted_op(flow: &Flow, counter: &RequestCounter, event: Value) -> (Value, usize) {
    let before = counter.sent();
    let answer = flow.op(event).await;
    (answer, counter.sent() - before)
}

#[tokio::test]
async fn reserve_mark_sent_commit_and_release_with_the_amount_each_make_one_dynamodb_request() {
    // GIVEN a seeded store whose client counts requests, and two approved payments
    let (flow, counter) = counted_flow("count-ledger").await;
    let settled = pid(30_001);
    let released = pid(30_002);
    let token_settled = flow.approve(&settled, "1500000", "ps-alice-main").await;
    let token_released = flow.approve(&released, "700000", "ps-alice-main").await;
    let plan = |amount_micros| PaymentPlan {
        amount_micros,
        path: Path::Settle { failures: 0 },
        copies: vec![1; 5],
        amount_hint: true,
    };

    for (what, payment_id, token, amount, step, state) in [
        (
            "reserve",
            &settled,
            &token_settled,
            1_500_000,
            Step::Reserve,
            "PENDING",
        ),
        (
            "markSent",
            &settled,
            &token_settled,
            1_500_000,
            Step::MarkSent,
            "SENT",
        ),
        (
            "commit",
            &settled,
            &token_settled,
            1_500_000,
            Step::CommitSuccess,
            "POSTED",
        ),
        (
            "reserve",
            &released,
            &token_released,
            700_000,
            Step::Reserve,
            "PENDING",
        ),
        (
            "release",
            &released,
            &token_released,
            700_000,
            Step::Release,
            "VOIDED",
        ),
    ] {
        // WHEN one op is handled
        let event = step_event("ps-alice-main", payment_id, token, &plan(amount), step);
        let (answer, sent) = counted_op(&flow, &counter, event).await;
        // THEN it succeeded with exactly one request
        assert_eq!(answer["ok"], true, "{what}: {answer}");
        assert_eq!(answer["hold"]["state"], state, "{what}: {answer}");
        assert_eq!(sent, 1, "{what} sent {sent} requests: {answer}");
    }
    let s = flow.session("ps-alice-main").await;
    assert_eq!(
        (s.available_micros, s.reserved_micros, s.settled_micros),
        (23_500_000, 0, 1_500_000)
    );
}

#[tokio::test]
async fn a_commit_without_the_amount_reads_the_hold_first_and_makes_two_dynamodb_requests() {
    // GIVEN a SENT hold of 1.50 on a store whose client counts requests
    let (flow, counter) = counted_flow("count-commit-read").await;
    let payment_id = pid(30_003);
    let token = flow.approve(&payment_id, "1500000", "ps-alice-main").await;
    let plan = PaymentPlan {
        amount_micros: 1_500_000,
        path: Path::Settle { failures: 0 },
        copies: vec![1; 5],
        amount_hint: false,
    };
    reserve_and_mark_sent(&flow, "ps-alice-main", &payment_id, &token, &plan).await;

    // WHEN it is committed without amountMicros
    let event = step_event(
        "ps-alice-main",
        &payment_id,
        &token,
        &plan,
        Step::CommitSuccess,
    );
    assert!(event.get("amountMicros").is_none());
    let (answer, sent) = counted_op(&flow, &counter, event).await;

    // THEN it posts with two requests: the hold's read and the transaction
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["hold"]["state"], "POSTED", "{answer}");
    assert_eq!(sent, 2, "{answer}");
    let s = flow.session("ps-alice-main").await;
    assert_eq!((s.reserved_micros, s.settled_micros), (0, 1_500_000));
}

/// Reserves and marks sent one payment of `plan`, asserting both succeed.
async fn reserve_and_mark_sent(
    flow: &Flow,
    session: &str,
    payment_id: &str,
    token: &str,
    plan: &PaymentPlan,
) {
    for step in [Step::Reserve, Step::MarkSent] {
        let answer = flow
            .op(step_event(session, payment_id, token, plan, step))
            .await;
        assert_eq!(answer["ok"], true, "{step:?}: {answer}");
    }
}
