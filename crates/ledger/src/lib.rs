//! The ledger function: picks the keys an event needs and hands it to
//! `predebit_core::ledger::Ledger`. Everything that decides lives there.

use predebit_core::ledger::{AllowedOps, Ledger, LedgerConfig, LedgerStore, Op};
use predebit_core::payment_session::{NoPaymentSessions, PaymentSessions};
use predebit_core::token::token_kid;
use predebit_store::secrets::KeySource;
use serde_json::Value;

/// The environment variable naming the ops this deployment serves.
pub const ENV_OPS: &str = "PREDEBIT_LEDGER_OPS";
/// The environment variable for the PENDING window, in seconds.
pub const ENV_PENDING_WINDOW: &str = "PREDEBIT_PENDING_WINDOW_SECONDS";

/// Reads the ledger settings from the environment; errors name the variable.
pub fn config_from_env() -> Result<LedgerConfig, String> {
    let ops = std::env::var(ENV_OPS).map_err(|_| {
        format!("environment variable {ENV_OPS} is not set; set it to agent, admin or schedule")
    })?;
    let allowed = AllowedOps::parse(&ops).map_err(|e| format!("{ENV_OPS}: {e}"))?;
    let mut config = LedgerConfig {
        allowed,
        ..LedgerConfig::default()
    };
    if let Ok(window) = std::env::var(ENV_PENDING_WINDOW) {
        config.pending_window_seconds = window
            .parse()
            .ok()
            .filter(|w| (10..=900).contains(w))
            .ok_or_else(|| format!("{ENV_PENDING_WINDOW} must be seconds from 10 to 900"))?;
    }
    Ok(config)
}

/// The environment variable naming the AgentCore payment manager whose sessions openSession
/// creates and reads (the admin deployment of an enforcing stack). Not authorize's
/// `PREDEBIT_PAYMENT_MANAGER_ARN`: where functions share one environment (`cargo lambda watch`
/// runs authorize beside a ledger serving every op), the ledger must not pick up authorize's.
pub const ENV_ADMIN_PAYMENT_MANAGER_ARN: &str = "PREDEBIT_ADMIN_PAYMENT_MANAGER_ARN";

/// The payment manager whose sessions openSession creates and reads: `None` when
/// `PREDEBIT_ADMIN_PAYMENT_MANAGER_ARN` is unset or empty (openSession then takes the caller's
/// word).
pub fn payment_manager_from_env() -> Result<Option<String>, String> {
    payment_manager(std::env::var(ENV_ADMIN_PAYMENT_MANAGER_ARN))
}

fn payment_manager(value: Result<String, std::env::VarError>) -> Result<Option<String>, String> {
    let name = ENV_ADMIN_PAYMENT_MANAGER_ARN;
    match value {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
        Ok(arn) if arn.trim().is_empty() => Ok(None),
        Ok(arn) if arn.starts_with("arn:") && arn.contains(":payment-manager/") => Ok(Some(arn)),
        Ok(_) => Err(format!(
            "{name} must be an AgentCore payment manager ARN (arn:...:payment-manager/...), or unset"
        )),
    }
}

/// Where metric lines (CloudWatch EMF, one JSON line each) go.
pub use predebit_runtime::LineSink;

/// Built once per container: the ledger over its store (and, on the admin deployment of an
/// enforcing stack, AgentCore's payment sessions), the keys and the metrics sink.
pub struct LedgerService<S, P = NoPaymentSessions> {
    ledger: Ledger<S, P>,
    keys: KeySource,
    metrics_sink: LineSink,
}

impl<S: LedgerStore + Sync> LedgerService<S> {
    /// Wraps a store, its settings and a key source.
    pub fn new(store: S, config: LedgerConfig, keys: KeySource) -> Self {
        Self {
            ledger: Ledger::new(store, config),
            keys,
            metrics_sink: predebit_runtime::stdout_sink(),
        }
    }
}

impl<S, P> LedgerService<S, P> {
    /// The same service, opening sessions through AgentCore's `payment_sessions` when given.
    pub fn with_payment_sessions<Q>(self, payment_sessions: Option<Q>) -> LedgerService<S, Q> {
        LedgerService {
            ledger: self.ledger.with_payment_sessions(payment_sessions),
            keys: self.keys,
            metrics_sink: self.metrics_sink,
        }
    }
}

impl<S: LedgerStore + Sync, P: PaymentSessions + Sync> LedgerService<S, P> {
    /// Sends metric lines elsewhere (tests capture them).
    pub fn with_metrics_sink(mut self, sink: LineSink) -> Self {
        self.metrics_sink = sink;
        self
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger<S, P> {
        &self.ledger
    }

    /// Handles one event as a request of its own (the CLI, tests); never fails.
    pub async fn handle(&self, event: &Value, now: u64) -> Value {
        self.handle_request(event, &fresh_request_id(), now).await
    }

    /// Handles one event of the request `request_id` (the Lambda request id: the store
    /// recognises this request's own writes, so the SDK's re-sends never apply twice).
    pub async fn handle_request(&self, event: &Value, request_id: &str, now: u64) -> Value {
        // A token names its kid (the decision token on reserve, the hold token after it): a
        // rotated key is fetched (at most once a minute).
        let token_field = match Ledger::<S, P>::op_of(event) {
            Some(Op::Reserve) => "decisionToken",
            _ => "holdToken",
        };
        let kid = event
            .get(token_field)
            .and_then(Value::as_str)
            .and_then(token_kid);
        let keys = match kid {
            Some(kid) => match self.keys.with_kid(kid).await {
                Some(ring) => ring,
                None => self.keys.current().await,
            },
            None => self.keys.current().await,
        };
        let response = self.ledger.handle(event, &keys, now, request_id).await;
        self.record(&response, now);
        response
    }

    /// Handles one raw payload, as the Lambda runtime delivered it; never fails. A payload that
    /// is not JSON, nests deeper than 64 levels or exceeds 256 KiB is refused `INVALID_REQUEST`.
    pub async fn handle_raw(&self, raw: &[u8], request_id: &str, now: u64) -> Value {
        match predebit_core::payload::parse(raw) {
            Ok(event) => self.handle_request(&event, request_id, now).await,
            Err(problem) => {
                let response = predebit_core::payload::ledger_refusal(problem);
                self.record(&response, now);
                response
            }
        }
    }

    /// Writes an operation's log line and metric lines.
    fn record(&self, response: &Value, now: u64) {
        let field = |name: &str| match response.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        let (op, ok, reason, replayed) = (
            field("op"),
            field("ok"),
            field("reasonCode"),
            field("replayed"),
        );
        tracing::info!(op, ok, reason_code = reason, replayed, "ledger operation");
        for line in predebit_core::metrics::ledger_metrics(response, now.saturating_mul(1000)) {
            (self.metrics_sink)(&line);
        }
    }
}

/// A request id for a call that has no Lambda request: 128 random bits, so no two calls share
/// one (a shared id would let one call's write be taken for the other's).
pub fn fresh_request_id() -> String {
    let bits: u128 = rand::random();
    format!("local-{bits:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::env::VarError;

    #[test]
    fn an_unset_or_empty_payment_manager_leaves_open_session_on_the_callers_word() {
        assert_eq!(payment_manager(Err(VarError::NotPresent)), Ok(None));
        assert_eq!(payment_manager(Ok("  ".into())), Ok(None));
    }

    #[test]
    fn a_payment_manager_arn_is_taken_and_anything_else_fails_start_up_naming_the_variable() {
        let arn = "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/pm-a1b2c3d4e5";
        assert_eq!(payment_manager(Ok(arn.into())), Ok(Some(arn.into())));
        for bad in ["pm-a1b2c3d4e5", "arn:aws:iam::123456789012:role/x"] {
            let err = payment_manager(Ok(bad.into())).unwrap_err();
            assert!(err.starts_with(ENV_ADMIN_PAYMENT_MANAGER_ARN), "{err}");
        }
    }
}
