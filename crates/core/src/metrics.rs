//! CloudWatch Embedded Metric Format lines: one JSON log line carries the metric values, and
//! CloudWatch turns them into metrics. Dimensions are low-cardinality only (operation, outcome,
//! reason code); never a user, session, agent or payment id.

use serde_json::Value;

use crate::decision::LimitUsage;

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
    let names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    emf_line_in_sets(&[&names], dimensions, metrics, timestamp_ms)
}

/// An EMF line whose metrics are declared under several dimension sets (each a list of the
/// dimensions' names), written straight into the line: the metrics of every decision go
/// through here.
fn emf_line_in_sets(
    sets: &[&[&str]],
    dimensions: &[(&str, &str)],
    metrics: &[Metric],
    timestamp_ms: u64,
) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(320);
    let text = |out: &mut Vec<u8>, s: &str| {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail")
    };
    out.extend_from_slice(b"{\"_aws\":{\"Timestamp\":");
    out.extend_from_slice(timestamp_ms.to_string().as_bytes());
    out.extend_from_slice(b",\"CloudWatchMetrics\":[{\"Namespace\":");
    text(&mut out, NAMESPACE);
    out.extend_from_slice(b",\"Dimensions\":[");
    for (i, set) in sets.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"[" } else { b",[" });
        for (j, name) in set.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            text(&mut out, name);
        }
        out.push(b']');
    }
    out.extend_from_slice(b"],\"Metrics\":[");
    for (i, m) in metrics.iter().enumerate() {
        out.extend_from_slice(if i == 0 {
            b"{\"Name\":"
        } else {
            b",{\"Name\":"
        });
        text(&mut out, m.name);
        out.extend_from_slice(b",\"Unit\":");
        text(&mut out, m.unit);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}]}");
    for (name, value) in dimensions {
        out.push(b',');
        text(&mut out, name);
        out.push(b':');
        text(&mut out, value);
    }
    for m in metrics {
        out.push(b',');
        text(&mut out, m.name);
        out.push(b':');
        out.extend_from_slice(m.value.to_string().as_bytes());
    }
    out.push(b'}');
    String::from_utf8(out).expect("only str and ASCII were written")
}

/// A decision's line: `metric` counted by decision and reason code, and by decision alone (what
/// the decline-spike alarms watch).
fn decision_line(metric: &'static str, decision: &str, reason_code: &str, ts: u64) -> String {
    emf_line_in_sets(
        &[&["Decision", "ReasonCode"], &["Decision"]],
        &[("Decision", decision), ("ReasonCode", reason_code)],
        &[Metric {
            name: metric,
            unit: "Count",
            value: 1,
        }],
        ts,
    )
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
            // An `upto` hold settles for what it charged.
            ("commit", Some(m)) => lines.push(emf_line(
                &[("Op", op)],
                &[Metric {
                    name: "SettledMicros",
                    unit: "None",
                    value: hold
                        .and_then(|h| h.get("settledMicros"))
                        .and_then(Value::as_u64)
                        .unwrap_or(m),
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
        // An `upto` settlement reported above its signed maximum: recorded as overdraft, alarmed.
        if let Some(excess) = hold
            .and_then(|h| h.get("excessMicros"))
            .and_then(Value::as_u64)
            .filter(|_| ok && !replayed)
        {
            lines.push(emf_line(
                &[("Op", op)],
                &[
                    count("UptoSettledAboveHold"),
                    Metric {
                        name: "OverdraftMicros",
                        unit: "None",
                        value: excess,
                    },
                ],
                timestamp_ms,
            ));
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
    let mut lines = vec![decision_line(
        "Authorizations",
        decision,
        reason_code,
        timestamp_ms,
    )];
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
    decision_line("Decisions", decision, reason_code, timestamp_ms)
}

/// The percentage of a limit at which [`limit_alerts`] raises `LimitNearlyReached`, unless
/// configured (`PREDEBIT_ALERT_PERCENT`).
pub const DEFAULT_ALERT_PERCENT: u64 = 80;

/// `LimitNearlyReached` once per limit a payment takes to `percent` or beyond: by `Limit`
/// (`session`, `user:day`, ...) and in all (what the alarm watches).
pub fn limit_alerts(usage: &[LimitUsage], percent: u64, timestamp_ms: u64) -> Vec<String> {
    let mut limits: Vec<&str> = usage
        .iter()
        .filter(|u| u.crosses(percent))
        .map(|u| u.limit.as_str())
        .collect();
    // Once per limit: a rolling budget is five counters, a budget with both limits two entries.
    limits.sort_unstable();
    limits.dedup();
    limits
        .into_iter()
        .map(|limit| {
            emf_line_in_sets(
                &[&["Limit"], &[]],
                &[("Limit", limit)],
                &[Metric {
                    name: "LimitNearlyReached",
                    unit: "Count",
                    value: 1,
                }],
                timestamp_ms,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_limit_alert_fires_once_when_a_payment_crosses_the_threshold() {
        let usage = [
            LimitUsage::of("session".into(), 7_000_000, 2_000_000, 10_000_000),
            LimitUsage::of("user:day".into(), 8_000_000, 1_000_000, 10_000_000),
            LimitUsage::of("agent:week".into(), 1, 1, 10),
        ];
        let lines = limit_alerts(&usage, 80, 9);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["Limit"], "session");
        assert_eq!(v["LimitNearlyReached"], 1);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Limit"], []])
        );
        // Exactly at the threshold counts; just below does not.
        assert!(LimitUsage::of("s".into(), 0, 8, 10).crosses(80));
        assert!(!LimitUsage::of("s".into(), 0, 7, 10).crosses(80));
        // At 90% the session (70% -> 90%) and the day (80% -> 90%) both cross; at 95% neither.
        assert_eq!(limit_alerts(&usage, 90, 9).len(), 2);
        assert!(limit_alerts(&usage, 95, 9).is_empty());
    }

    #[test]
    fn an_emf_line_is_json_whatever_a_value_holds() {
        let odd = "a\"b\\c\n\u{0}\u{e9}";
        let line = emf_line(
            &[("Op", odd)],
            &[Metric {
                name: "Decisions",
                unit: "Count",
                value: u64::MAX,
            }],
            7,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["Op"], odd);
        assert_eq!(v["Decisions"], u64::MAX);
        assert_eq!(v["_aws"]["Timestamp"], 7);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Op"]])
        );
    }

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
    fn an_upto_commit_counts_what_it_charged_and_alarms_on_a_report_above_the_hold() {
        let partial = json!({"op": "commit", "ok": true, "replayed": false,
            "hold": {"amountMicros": 2_000_000, "settledMicros": 750_000}});
        let lines = ledger_metrics(&partial, 0);
        assert!(
            lines.iter().any(|l| l.contains("\"SettledMicros\":750000")),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.contains("UptoSettledAboveHold")));
        let over = json!({"op": "commit", "ok": true, "replayed": false,
            "hold": {"amountMicros": 1_000_000, "settledMicros": 1_400_000, "excessMicros": 400_000}});
        let lines = ledger_metrics(&over, 0);
        assert!(
            lines
                .iter()
                .any(|l| l.contains("\"UptoSettledAboveHold\":1")
                    && l.contains("\"OverdraftMicros\":400000")),
            "{lines:?}"
        );
        let mut replay = over.clone();
        replay["replayed"] = json!(true);
        assert!(!ledger_metrics(&replay, 0)
            .iter()
            .any(|l| l.contains("UptoSettledAboveHold")));
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
