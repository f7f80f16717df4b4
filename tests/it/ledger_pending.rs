//! Settlements reported pending (x402 `settlement_pending`: broadcast, confirmation awaited) and
//! the operator's in-doubt queue, against DynamoDB Local.

use serde_json::json;

use crate::common::NOW;
use crate::ledger_flow::{assert_invariant, pid, Flow};

#[tokio::test]
async fn a_pending_settlement_keeps_the_hold_sent_with_its_transaction_until_the_final_answer_posts_it(
) {
    // GIVEN a SENT $1.50 hold
    let flow = Flow::new("pending").await;
    flow.held(&pid(1), "1500000", "ps-alice-main").await;
    flow.mark_sent(&pid(1), "1500000", "ps-alice-main").await;
    let tx = format!("0x{}", "ab".repeat(32));
    // WHEN the merchant reports the settlement pending, with its transaction
    let pending = flow
        .op(json!({"version": "1", "op": "commit", "paymentSessionId": "ps-alice-main", "paymentId": pid(1),
            "settlement": {"success": false, "errorReason": "settlement_pending", "transaction": tx, "network": "base"}}))
        .await;
    // THEN the hold stays SENT, the transaction is kept, no failure is counted
    assert_eq!(pending["ok"], true, "{pending}");
    assert_eq!(pending["hold"]["state"], "SENT");
    assert_eq!(pending["hold"]["pendingTransaction"], tx);
    assert!(
        pending["hold"].get("settlementFailures").is_none(),
        "{pending}"
    );
    // AND it is on the operator's queue once old enough, with its transaction
    let store = flow.ledger.ledger().store();
    assert!(
        store.sent_holds(NOW).await.unwrap().is_empty(),
        "sent a second ago, at NOW + 1"
    );
    let queue = store.sent_holds(NOW + 1).await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].pending_transaction.as_deref(), Some(tx.as_str()));
    // WHEN the final answer arrives THEN it posts the signed amount, and the queue is empty
    let posted = flow
        .op(json!({"version": "1", "op": "commit", "paymentSessionId": "ps-alice-main", "paymentId": pid(1),
            "settlement": {"success": true, "transaction": tx, "network": "base"}}))
        .await;
    assert_eq!(posted["hold"]["state"], "POSTED", "{posted}");
    let s = flow.session("ps-alice-main").await;
    assert_eq!(s.settled_micros, 1_500_000);
    assert_invariant(&s);
    assert!(store.sent_holds(NOW + 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_plain_failure_is_counted_and_a_pending_report_without_a_transaction_is_a_failure() {
    let flow = Flow::new("pending-fail").await;
    flow.held(&pid(2), "1000000", "ps-alice-main").await;
    for (n, settlement) in [
        json!({"success": false, "errorReason": "insufficient_funds", "transaction": "", "network": "base"}),
        json!({"success": false, "errorReason": "settlement_pending", "transaction": "", "network": "base"}),
    ]
    .into_iter()
    .enumerate()
    {
        let answer = flow
            .op_at(json!({"version": "1", "op": "commit", "paymentSessionId": "ps-alice-main", "paymentId": pid(2),
                "settlement": settlement}), NOW + 2 + n as u64)
            .await;
        assert_eq!(answer["hold"]["settlementFailures"], n as u64 + 1, "{answer}");
        assert!(answer["hold"].get("pendingTransaction").is_none(), "{answer}");
    }
}
