//! No signed authorization outlives its hold: over random authorization windows, merchant
//! timeouts, signers that lie about `validBefore`, clock jumps, expiries and settlements, the
//! authorizations that can still settle plus everything settled never exceed the limit.
//!
//! The chain is modelled beside the ledger: an authorization is handed to the merchant only after
//! markSent accepted it, and the merchant may settle it at any moment before its `validBefore`
//! (whatever the ledger thinks), which is when the plugin commits it.

use std::sync::atomic::{AtomicU64, Ordering};

use predebit_store::dynamodb::PolicyScope;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::common::{proptest_cases, NOW};
use crate::ledger_flow::{assert_invariant, sample_verify_event, Flow};

const LIMIT_MICROS: u64 = 2_000_000;
const MERCHANT: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

#[derive(Clone, Debug)]
enum Step {
    /// Verify, reserve, sign `sign_delay` s later with `validBefore = signed_at + timeout +
    /// lie`, markSent; a refused markSent is released and never reaches the merchant.
    Pay {
        amount_micros: u64,
        timeout: u64,
        sign_delay: u64,
        lie: u64,
    },
    /// The clock moves on.
    Advance(u64),
    /// The scheduled expire runs.
    Expire,
    /// The merchant settles one authorization it holds, if it still can.
    Settle(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (
            prop_oneof![Just(500_000u64), Just(1_000_000u64)],
            1u64..1_500,
            0u64..45,
            prop_oneof![3 => Just(0u64), 1 => 0u64..86_400],
        )
            .prop_map(|(amount_micros, timeout, sign_delay, lie)| Step::Pay {
                amount_micros,
                timeout,
                sign_delay,
                lie,
            }),
        2 => (0u64..1_200).prop_map(Step::Advance),
        2 => Just(Step::Expire),
        3 => any::<usize>().prop_map(Step::Settle),
    ]
}

/// An authorization the merchant holds.
struct Authorization {
    payment_id: String,
    amount_micros: u64,
    valid_before: u64,
    settled: bool,
}

fn verify_event(payment_id: &str, session: &str, amount_micros: u64, timeout: u64) -> Value {
    let mut event = sample_verify_event(payment_id, &amount_micros.to_string(), session);
    event["requirement"]["maxTimeoutSeconds"] = json!(timeout);
    event
}

async fn run_case(flow: &Flow, case: u64, window: u64, steps: &[Step]) {
    let session = format!("ps-window-{case}");
    let mut now = NOW + case * 10_000_000;
    let opened = flow
        .op_at(
            json!({"version": "1", "op": "openSession", "paymentSessionId": session,
                "userId": "user-alice", "limit": "2.00", "expiresAt": now + 9_000_000}),
            now,
        )
        .await;
    assert_eq!(opened["ok"], true, "{opened}");
    flow.ledger
        .ledger()
        .store()
        .put_policy(
            &PolicyScope::Agent("agent-research".into()),
            &json!({ "maxAuthorizationSeconds": window }).to_string(),
        )
        .await
        .unwrap();

    let mut held: Vec<Authorization> = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        match *step {
            Step::Pay {
                amount_micros,
                timeout,
                sign_delay,
                lie,
            } => {
                let payment_id = format!("{case:032x}{n:032x}");
                let event = verify_event(&payment_id, &session, amount_micros, timeout);
                let decision = flow.verify.handle_json(&event, "it-window", now).await;
                let Some(token) = decision["decisionToken"].as_str() else {
                    continue;
                };
                let reserved = flow
                    .op_at(
                        json!({"version": "1", "op": "reserve", "decisionToken": token}),
                        now,
                    )
                    .await;
                if reserved["ok"] != true {
                    continue;
                }
                now += sign_delay;
                let valid_before = now + timeout + lie;
                let sent = flow
                    .op_at(
                        json!({"version": "1", "op": "markSent", "paymentSessionId": session,
                        "paymentId": payment_id, "signed": {"to": MERCHANT,
                        "value": amount_micros.to_string(), "network": "eip155:8453",
                        "validBefore": valid_before}}),
                        now,
                    )
                    .await;
                if sent["ok"] == true {
                    held.push(Authorization {
                        payment_id,
                        amount_micros,
                        valid_before,
                        settled: false,
                    });
                } else {
                    // The plugin never sends a signature markSent refused.
                    assert_eq!(sent["reasonCode"], "SIGNED_PAYLOAD_MISMATCH", "{sent}");
                    let released = flow
                        .op_at(
                            json!({"version": "1", "op": "release", "paymentSessionId": session,
                                "paymentId": payment_id, "reason": "SIGNED_PAYLOAD_MISMATCH"}),
                            now,
                        )
                        .await;
                    assert_eq!(released["ok"], true, "{released}");
                }
            }
            Step::Advance(seconds) => now += seconds,
            Step::Expire => {
                let expired = flow
                    .op_at(json!({"version": "1", "op": "expire"}), now)
                    .await;
                assert_eq!(expired["failed"], 0, "{expired}");
            }
            Step::Settle(pick) => {
                let live: Vec<usize> = (0..held.len())
                    .filter(|&i| !held[i].settled && now < held[i].valid_before)
                    .collect();
                if live.is_empty() {
                    continue;
                }
                let a = &mut held[live[pick % live.len()]];
                a.settled = true;
                let committed = flow
                    .op_at(
                        json!({"version": "1", "op": "commit", "paymentSessionId": session,
                            "paymentId": a.payment_id, "settlement": {"success": true,
                            "transaction": format!("0x{:064x}", case * 1000 + n as u64),
                            "network": "base"}}),
                        now,
                    )
                    .await;
                assert_eq!(committed["hold"]["state"], "POSTED", "{committed}");
            }
        }
        // THEN at every moment what can still settle plus what settled fits the limit
        let settled: u64 = held
            .iter()
            .filter(|a| a.settled)
            .map(|a| a.amount_micros)
            .sum();
        let can_settle: u64 = held
            .iter()
            .filter(|a| !a.settled && now < a.valid_before)
            .map(|a| a.amount_micros)
            .sum();
        assert!(
            settled + can_settle <= LIMIT_MICROS,
            "case {case} step {n} ({step:?}), window {window}: settled {settled} + can still settle {can_settle} > limit"
        );
        let s = flow.session(&session).await;
        assert_invariant(&s);
        assert_eq!(s.overdraft_micros, 0, "case {case} step {n}: {s:?}");
    }
}

#[test]
fn authorizations_that_can_still_settle_plus_settled_never_exceed_the_limit() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let flow = runtime.block_on(Flow::new("window-invariant"));
    let cases = AtomicU64::new(0);
    let config = ProptestConfig {
        cases: proptest_cases(),
        ..ProptestConfig::default()
    };
    proptest!(config, |(window in 1u64..1_200, steps in prop::collection::vec(step(), 1..24))| {
        let case = cases.fetch_add(1, Ordering::SeqCst);
        runtime.block_on(run_case(&flow, case, window, &steps));
    });
}
