//! The authorize function (enforcing mode): turns one invocation into one authorize call.
//! Everything that decides lives in `predebit_core::authorize`; this crate wires it to the
//! runtime, the audit log and the metrics.

use predebit_core::authorize::{AuthorizeConfig, AuthorizeContext, Authorizer, Signer};
use predebit_core::ledger::LedgerStore;
use predebit_core::payload;
use predebit_core::signed_check::X402_EXACT_PERMIT2_PROXY;
use predebit_core::store::VerifyReader;
pub use predebit_runtime::{now_epoch_seconds, stdout_sink, LineSink};
use predebit_store::secrets::KeySource;
use serde_json::Value;

/// The environment variable listing the Permit2 spenders authorize accepts (comma-separated;
/// default: x402's `x402ExactPermit2Proxy`).
pub const ENV_PERMIT2_PROXIES: &str = "PREDEBIT_PERMIT2_PROXIES";

/// Reads authorize's settings from the environment; errors name the variable.
pub fn config_from_env() -> Result<AuthorizeConfig, String> {
    let mut config = AuthorizeConfig::default();
    if let Ok(list) = std::env::var(ENV_PERMIT2_PROXIES) {
        let proxies: Vec<String> = list
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        let valid = proxies.iter().all(|p| {
            p.len() == 42 && p.starts_with("0x") && p[2..].bytes().all(|b| b.is_ascii_hexdigit())
        });
        if proxies.is_empty() || !valid {
            return Err(format!(
                "{ENV_PERMIT2_PROXIES} must list 0x EVM addresses, comma-separated (default {X402_EXACT_PERMIT2_PROXY})"
            ));
        }
        config.permit2_proxies = proxies;
    }
    Ok(config)
}

/// Built once per container: the authorizer, the keys and the sinks.
pub struct AuthorizeService<R, L, S> {
    authorizer: Authorizer<R, L, S>,
    keys: KeySource,
    audit_sink: LineSink,
    metrics_sink: LineSink,
    alert_percent: u64,
}

impl<R: VerifyReader + Sync, L: LedgerStore + Sync, S: Signer + Sync> AuthorizeService<R, L, S> {
    /// Wraps an authorizer and a key source; audit records and metric lines go to stdout.
    pub fn new(authorizer: Authorizer<R, L, S>, keys: KeySource) -> Self {
        Self {
            authorizer,
            keys,
            audit_sink: stdout_sink(),
            metrics_sink: stdout_sink(),
            alert_percent: predebit_core::metrics::DEFAULT_ALERT_PERCENT,
        }
    }

    /// Raises `LimitNearlyReached` when an approved payment takes a limit (the session's, a
    /// budget's) to `percent` of it or beyond (default 80).
    pub fn with_alert_percent(mut self, percent: u64) -> Self {
        self.alert_percent = percent;
        self
    }

    /// Sends audit records elsewhere (tests capture them).
    pub fn with_audit_sink(mut self, sink: LineSink) -> Self {
        self.audit_sink = sink;
        self
    }

    /// Sends metric lines elsewhere.
    pub fn with_metrics_sink(mut self, sink: LineSink) -> Self {
        self.metrics_sink = sink;
        self
    }

    /// The authorizer.
    pub fn authorizer(&self) -> &Authorizer<R, L, S> {
        &self.authorizer
    }

    /// Handles one raw payload, as the Lambda runtime delivered it; never fails.
    pub async fn handle_raw(&self, raw: &[u8], request_id: &str, now: u64) -> Value {
        let keys = self.keys.current().await;
        let ctx = AuthorizeContext {
            request_id,
            now,
            keys: &keys,
        };
        let out = match payload::parse(raw) {
            Ok(event) => self.authorizer.handle(&event, ctx).await,
            Err(problem) => self.authorizer.refuse_payload(problem.to_string(), ctx),
        };
        (self.audit_sink)(&out.audit.log_line());
        let decision = out.response["decision"].as_str().unwrap_or("NO");
        let reason = out.response["reasonCode"].as_str().unwrap_or("UNKNOWN");
        for line in predebit_core::metrics::authorize_metrics(
            decision,
            reason,
            out.signed_mismatch,
            now.saturating_mul(1000),
        ) {
            (self.metrics_sink)(&line);
        }
        let ts = now.saturating_mul(1000);
        for line in predebit_core::metrics::limit_alerts(&out.usage, self.alert_percent, ts) {
            (self.metrics_sink)(&line);
        }
        tracing::info!(decision, reason_code = reason, request_id, "authorize");
        out.response
    }
}
