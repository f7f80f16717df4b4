//! CloudWatch Embedded Metric Format lines: one JSON log line carries the metric values, and
//! CloudWatch turns them into metrics. Dimensions are low-cardinality only (operation, outcome,
//! reason code); never a user, session, agent or payment id.

use serde_json::{json, Map, Value};

/// The CloudWatch namespace of every predebit metric.
pub const NAMESPACE: &str = "predebit";

/// One metric value.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// The metric name, e.g. `Decisions`.
    pub name: &'static str,
    /// `Count`, `Milliseconds` or `None` (micro-USD amounts).
    pub unit: &'static str,
    /// The value.
    pub value: u64,
}

/// An EMF line with the given dimensions (name, value) and metrics, at `timestamp_ms`.
pub fn emf_line(dimensions: &[(&str, &str)], metrics: &[Metric], timestamp_ms: u64) -> String {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": metrics.iter().map(|m| json!({"Name": m.name, "Unit": m.unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), json!(v));
    }
    for m in metrics {
        root.insert(m.name.into(), json!(m.value));
    }
    Value::Object(root).to_string()
}

/// The metrics of one ledger response: the operation by outcome, and the events operators
/// alarm on (late settlements, conflicts, expiries).
pub fn ledger_metrics(response: &Value, timestamp_ms: u64) -> Vec<String> {
    let op = response
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let ok = response.get("ok").and_then(Value::as_bool).unwrap_or(false);
    let replayed = response
        .get("replayed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let outcome = match (ok, replayed) {
        (true, true) => "replayed",
        (true, false) => "ok",
        (false, _) => response
            .get("reasonCode")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN"),
    };
    let count = |name| Metric {
        name,
        unit: "Count",
        value: 1,
    };
    let mut lines = vec![emf_line(
        &[("Op", op), ("Outcome", outcome)],
        &[count("LedgerOperations")],
        timestamp_ms,
    )];
    let hold = response.get("hold");
    let micros = hold
        .and_then(|h| h.get("amountMicros"))
        .and_then(Value::as_u64);
    if ok && !replayed {
        match (op, micros) {
            ("reserve", Some(m)) => lines.push(emf_line(
                &[("Op", op)],
                &[Metric {
                    name: "ReservedMicros",
                    unit: "None",
                    value: m,
                }],
                timestamp_ms,
            )),
            ("commit", Some(m)) => lines.push(emf_line(
                &[("Op", op)],
                &[Metric {
                    name: "SettledMicros",
                    unit: "None",
                    value: m,
                }],
                timestamp_ms,
            )),
            _ => {}
        }
        if op == "commit" && hold.and_then(|h| h.get("late")).and_then(Value::as_bool) == Some(true)
        {
            lines.push(emf_line(
                &[("Op", op)],
                &[count("LateSettlements")],
                timestamp_ms,
            ));
            // The session's overdraft after the late settlement (micro-USD; 0 when it fit).
            if let Some(overdraft) = response["session"]["overdraftMicros"].as_u64() {
                let metric = Metric {
                    name: "OverdraftMicros",
                    unit: "None",
                    value: overdraft,
                };
                lines.push(emf_line(&[("Op", op)], &[metric], timestamp_ms));
            }
        }
        // A settlement for a hold whose markSent never arrived: the plugin skipped a step.
        if op == "commit"
            && hold
                .and_then(|h| h.get("markSentMissing"))
                .and_then(Value::as_bool)
                == Some(true)
        {
            lines.push(emf_line(
                &[("Op", op)],
                &[count("MarkSentMissing")],
                timestamp_ms,
            ));
        }
        if op == "expire" {
            let expired = |state: &str| response["expired"][state].as_u64().unwrap_or(0);
            lines.push(emf_line(
                &[("Op", op)],
                &[
                    Metric {
                        name: "ExpiredPending",
                        unit: "Count",
                        value: expired("pending"),
                    },
                    Metric {
                        name: "ExpiredSent",
                        unit: "Count",
                        value: expired("sent"),
                    },
                ],
                timestamp_ms,
            ));
        }
    }
    lines
}

/// The metrics of one authorize call: `Authorizations` by decision and reason code (and by
/// decision alone), and `SignedPayloadMismatch` when a signature was discarded because it
/// differed from the approved terms (an alarm fires on it: the signer signed something else).
pub fn authorize_metrics(
    decision: &str,
    reason_code: &str,
    signed_mismatch: bool,
    timestamp_ms: u64,
) -> Vec<String> {
    let line = emf_line(
        &[("Decision", decision), ("ReasonCode", reason_code)],
        &[Metric {
            name: "Authorizations",
            unit: "Count",
            value: 1,
        }],
        timestamp_ms,
    );
    let mut value: Value = serde_json::from_str(&line).expect("emf_line writes JSON");
    value["_aws"]["CloudWatchMetrics"][0]["Dimensions"] =
        json!([["Decision", "ReasonCode"], ["Decision"]]);
    let mut lines = vec![value.to_string()];
    if signed_mismatch {
        lines.push(emf_line(
            &[("Op", "authorize")],
            &[Metric {
                name: "SignedPayloadMismatch",
                unit: "Count",
                value: 1,
            }],
            timestamp_ms,
        ));
    }
    lines
}

/// The metrics of one verify decision: by decision and reason code, and by decision alone (what
/// the decline-spike alarm watches).
pub fn verify_metrics(decision: &str, reason_code: &str, timestamp_ms: u64) -> String {
    let line = emf_line(
        &[("Decision", decision), ("ReasonCode", reason_code)],
        &[Metric {
            name: "Decisions",
            unit: "Count",
            value: 1,
        }],
        timestamp_ms,
    );
    let mut value: Value = serde_json::from_str(&line).expect("emf_line writes JSON");
    value["_aws"]["CloudWatchMetrics"][0]["Dimensions"] =
        json!([["Decision", "ReasonCode"], ["Decision"]]);
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_declares_its_dimensions_and_metrics_and_carries_their_values() {
        let line = emf_line(
            &[("Op", "commit")],
            &[Metric {
                name: "LateSettlements",
                unit: "Count",
                value: 1,
            }],
            1000,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "predebit");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Op"]])
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "LateSettlements"
        );
        assert_eq!(
            (v["Op"].clone(), v["LateSettlements"].clone()),
            (json!("commit"), json!(1))
        );
    }

    #[test]
    fn a_late_commit_counts_a_late_settlement_and_a_replay_does_not() {
        let late = json!({"op": "commit", "ok": true, "replayed": false, "hold": {"late": true, "amountMicros": 5},
            "session": {"overdraftMicros": 3}});
        let lines = ledger_metrics(&late, 0);
        assert!(
            lines.iter().any(|l| l.contains("\"LateSettlements\":1")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("\"OverdraftMicros\":3")),
            "{lines:?}"
        );
        let replay = json!({"op": "commit", "ok": true, "replayed": true, "hold": {"late": true}});
        assert!(!ledger_metrics(&replay, 0)
            .iter()
            .any(|l| l.contains("LateSettlements")));
    }

    #[test]
    fn a_decision_is_counted_by_reason_and_by_decision_alone() {
        let v: Value = serde_json::from_str(&verify_metrics("NO", "AGENT_REVOKED", 5)).unwrap();
        let dimensions = &v["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
        assert_eq!(
            dimensions,
            &json!([["Decision", "ReasonCode"], ["Decision"]])
        );
        assert_eq!(v["ReasonCode"], "AGENT_REVOKED");
        assert_eq!(v["Decisions"], 1);
    }

    #[test]
    fn a_refusal_is_counted_under_its_reason_code() {
        let refused =
            json!({"op": "reserve", "ok": false, "reasonCode": "SESSION_BUDGET_EXCEEDED"});
        let lines = ledger_metrics(&refused, 0);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("\"Outcome\":\"SESSION_BUDGET_EXCEEDED\""));
    }
}
