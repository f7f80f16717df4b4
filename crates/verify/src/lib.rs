//! The verify function: translates a Lambda event into one decision and back. Everything that
//! decides lives in `predebit_core::decision`; this crate only wires it to the runtime.

use predebit_core::decision::{decide, finish, Decision, DecisionContext, VerifyResponse};
use predebit_core::metrics::{limit_alerts, DEFAULT_ALERT_PERCENT};
use predebit_core::payload;
use predebit_core::policy::PolicyCache;
use predebit_core::store::VerifyReader;
pub use predebit_runtime::{now_epoch_seconds, stdout_sink};
use predebit_store::secrets::KeySource;
use serde_json::Value;

/// Where sealed audit records go: one JSON line each.
pub type AuditSink = predebit_runtime::LineSink;

/// Built once per container: the store, the keys and the audit sink.
pub struct VerifyService<R> {
    reader: R,
    keys: KeySource,
    audit_sink: AuditSink,
    metrics_sink: AuditSink,
    policies: PolicyCache,
    alert_percent: u64,
}

impl<R: VerifyReader + Sync> VerifyService<R> {
    /// Wraps a reader and a key source; audit records and metric lines go to stdout.
    pub fn new(reader: R, keys: KeySource) -> Self {
        Self {
            reader,
            keys,
            audit_sink: stdout_sink(),
            metrics_sink: stdout_sink(),
            policies: PolicyCache::new(),
            alert_percent: DEFAULT_ALERT_PERCENT,
        }
    }

    /// Raises `LimitNearlyReached` when a YES takes a limit (the session's, a budget's) to
    /// `percent` of it or beyond (default 80).
    pub fn with_alert_percent(mut self, percent: u64) -> Self {
        self.alert_percent = percent;
        self
    }

    /// Sends metric lines (CloudWatch EMF) elsewhere.
    pub fn with_metrics_sink(mut self, sink: AuditSink) -> Self {
        self.metrics_sink = sink;
        self
    }

    /// Sends audit records elsewhere (the CLI uses stderr; tests capture them).
    pub fn with_audit_sink(mut self, sink: AuditSink) -> Self {
        self.audit_sink = sink;
        self
    }

    /// The container's compiled policies, for tests that count what was compiled.
    pub fn policies(&self) -> &PolicyCache {
        &self.policies
    }

    /// The reader, for tests that count its requests.
    pub fn reader(&self) -> &R {
        &self.reader
    }

    /// Decides one event. Never fails: malformed input is a NO naming the field. The audit
    /// record is written to stdout as one JSON line.
    pub async fn handle(&self, event: &Value, verification_id: &str, now: u64) -> VerifyResponse {
        let keys = self.keys.current().await;
        let ctx = DecisionContext {
            verification_id,
            now,
            keys: &keys,
            policies: &self.policies,
        };
        let decision = decide(&self.reader, event, ctx).await;
        self.record(decision, verification_id, now)
    }

    /// Decides one raw payload, as the Lambda runtime delivered it. A payload that is not JSON,
    /// nests deeper than 64 levels or exceeds 256 KiB is NO `INVALID_REQUEST` naming the
    /// problem, with its audit record and metric like any other decision.
    pub async fn handle_raw(&self, raw: &[u8], verification_id: &str, now: u64) -> Value {
        let problem = match payload::parse(raw) {
            Ok(event) => return self.handle_json(&event, verification_id, now).await,
            Err(problem) => problem,
        };
        let keys = self.keys.current().await;
        let ctx = DecisionContext {
            verification_id,
            now,
            keys: &keys,
            policies: &self.policies,
        };
        let decision = finish(payload::verify_refusal(problem), ctx);
        let response = self.record(decision, verification_id, now);
        serde_json::to_value(response).expect("responses serialize")
    }

    /// Writes a decision's audit record, metric and log line; returns its response.
    fn record(&self, decision: Decision, verification_id: &str, now: u64) -> VerifyResponse {
        (self.audit_sink)(&decision.audit.log_line());
        let verdict = if decision.response.decision_token.is_some() {
            "YES"
        } else {
            "NO"
        };
        (self.metrics_sink)(&predebit_core::metrics::verify_metrics(
            verdict,
            decision.response.reason_code.as_str(),
            now.saturating_mul(1000),
        ));
        for line in limit_alerts(
            &decision.usage,
            self.alert_percent,
            now.saturating_mul(1000),
        ) {
            (self.metrics_sink)(&line);
        }
        tracing::info!(
            decision = ?decision.response.decision,
            reason_code = %decision.response.reason_code,
            verification_id,
            "verify decision"
        );
        decision.response
    }

    /// Like [`Self::handle`], as JSON.
    pub async fn handle_json(&self, event: &Value, verification_id: &str, now: u64) -> Value {
        let response = self.handle(event, verification_id, now).await;
        serde_json::to_value(response).expect("responses serialize")
    }
}
