//! The ledger audit against DynamoDB Local: what the ledger wrote audits clean; an item edited
//! behind the ledger's back is reported.

use aws_sdk_dynamodb::types::AttributeValue;
use predebit_core::audit_check::audit_session;
use predebit_core::ledger::port::read_whole_session;
use predebit_store::items::{pk_sk_key, session_pk, SESSION_SK};
use predebit_store::ledger::hold_sk;
use serde_json::json;

use crate::common::{test_keys, NOW};
use crate::ledger_flow::{pid, Flow};

const SESSION: &str = "ps-alice-main";
const MERCHANT: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

/// One posted 1.50 hold and one pending 1.00 hold, through the ledger.
async fn flow_with_holds(name: &str) -> Flow {
    let flow = Flow::new(name).await;
    let token = flow.approve(&pid(11), "1500000", SESSION).await;
    let reserved = flow
        .op(json!({"version": "1", "op": "reserve", "decisionToken": token}))
        .await;
    assert_eq!(reserved["ok"], true, "{reserved}");
    let sent = flow
        .op(json!({"version": "1", "op": "markSent", "paymentSessionId": SESSION, "paymentId": pid(11),
            "signed": {"to": MERCHANT, "value": "1500000", "network": "eip155:8453", "validBefore": NOW + 60}}))
        .await;
    assert_eq!(sent["ok"], true, "{sent}");
    let committed = flow
        .op(json!({"version": "1", "op": "commit", "paymentSessionId": SESSION, "paymentId": pid(11),
            "settlement": {"success": true, "transaction": format!("0x{}", "cd".repeat(32)), "network": "base"}}))
        .await;
    assert_eq!(committed["hold"]["state"], "POSTED", "{committed}");
    let token = flow.approve(&pid(12), "1000000", SESSION).await;
    let reserved = flow
        .op(json!({"version": "1", "op": "reserve", "decisionToken": token}))
        .await;
    assert_eq!(reserved["ok"], true, "{reserved}");
    flow
}

async fn audit(flow: &Flow) -> Vec<String> {
    let whole = read_whole_session(flow.ledger.ledger().store(), SESSION)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(whole.holds.len(), 2);
    audit_session(&whole.session, &whole.holds, &test_keys())
}

/// Sets one number attribute on a ledger item with the raw client, as an intruder would.
async fn edit(flow: &Flow, sk: &str, attribute: &str, value: u64) {
    let store = flow.ledger.ledger().store();
    store
        .client()
        .update_item()
        .table_name(&store.tables().ledger)
        .set_key(Some(pk_sk_key(session_pk(SESSION), sk)))
        .update_expression("SET #a = :v")
        .expression_attribute_names("#a", attribute)
        .expression_attribute_values(":v", AttributeValue::N(value.to_string()))
        .send()
        .await
        .expect("the raw update succeeds");
}

#[tokio::test]
async fn what_the_ledger_wrote_audits_clean() {
    let flow = flow_with_holds("audit-clean").await;

    let problems = audit(&flow).await;

    assert_eq!(problems, Vec::<String>::new());
}

#[tokio::test]
async fn a_hold_amount_edited_behind_the_ledger_is_reported() {
    // GIVEN a posted 1.50 hold WHEN its amount is lowered to 0.50 with the raw client
    let flow = flow_with_holds("audit-hold").await;
    edit(&flow, &hold_sk(&pid(11)), "amountMicros", 500_000).await;

    let problems = audit(&flow).await;

    // THEN its MAC fails and the settled balance no longer matches the holds
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!("hold {}: MAC does not match", pid(11))),
        "{problems:?}"
    );
    assert_eq!(
        problems[1],
        "session ps-alice-main: settled 1.50 but its POSTED holds add up to 0.50"
    );
}

#[tokio::test]
async fn a_settled_balance_edited_behind_the_ledger_is_reported() {
    // GIVEN settled 1.50 WHEN the session's settledMicros is set to 0 with the raw client
    let flow = flow_with_holds("audit-session").await;
    edit(&flow, SESSION_SK, "settledMicros", 0).await;

    let problems = audit(&flow).await;

    // THEN the sum and the invariant disagree, and every hold still verifies
    assert_eq!(
        problems,
        vec![
            "session ps-alice-main: settled 0.00 but its POSTED holds add up to 1.50",
            "session ps-alice-main: reserved + settled + available = 23.50 but limit + overdraft = 25.00",
        ]
    );
}
