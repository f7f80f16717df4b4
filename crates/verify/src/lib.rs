//! The verify function: translates a Lambda event into one decision and back. Everything that
//! decides lives in `predebit_core::decision`; this crate only wires it to the runtime.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use predebit_core::decision::{decide, DecisionContext, VerifyResponse};
use predebit_core::store::VerifyReader;
use predebit_store::secrets::KeySource;
use serde_json::Value;

/// Where sealed audit records go: one JSON line each.
pub type AuditSink = Box<dyn Fn(&str) + Send + Sync>;

/// Built once per container: the store, the keys and the audit sink.
pub struct VerifyService<R> {
    reader: R,
    keys: KeySource,
    audit_sink: AuditSink,
    metrics_sink: AuditSink,
}

/// The Lambda's sink: stdout, which CloudWatch Logs keeps as one JSON record per line.
pub fn stdout_sink() -> AuditSink {
    Box::new(|line| {
        // A failed log write must not turn a decision into an error; the response still stands.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    })
}

/// Seconds since the epoch.
pub fn now_epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl<R: VerifyReader + Sync> VerifyService<R> {
    /// Wraps a reader and a key source; audit records and metric lines go to stdout.
    pub fn new(reader: R, keys: KeySource) -> Self {
        Self {
            reader,
            keys,
            audit_sink: stdout_sink(),
            metrics_sink: stdout_sink(),
        }
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
        };
        let decision = decide(&self.reader, event, ctx).await;
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
