//! What the verify and ledger Lambdas share around `lambda_runtime`: the raw payload, the
//! stdout sink for audit and metric lines, and the clock.
//!
//! `lambda_runtime::run` deserializes every payload with serde_json before the handler runs, so
//! a body that is not JSON or nests past serde_json's recursion limit becomes a Lambda error
//! (and trips the errors alarm) without the handler ever seeing it. [`serve`] installs
//! [`RawPayloadLayer`] instead: the handler receives the exact bytes as a [`RawEvent`] and parses
//! them itself within bounds (`predebit_core::payload::parse`), answering a structured refusal.

use std::future::Future;
use std::io::Write;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use lambda_runtime::layers::TracingLayer;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{service_fn, Error, LambdaEvent, LambdaInvocation, Runtime};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Where audit records and metric lines go: one JSON line each.
pub type LineSink = Box<dyn Fn(&str) + Send + Sync>;

/// The Lambda's sink: stdout, which CloudWatch Logs keeps as one record per line.
pub fn stdout_sink() -> LineSink {
    Box::new(|line| {
        // A failed log write must not fail the invocation; its response already stands.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    })
}

/// The percentage of a limit at which a YES raises `LimitNearlyReached` (1 to 100; default 80).
pub const ENV_ALERT_PERCENT: &str = "PREDEBIT_ALERT_PERCENT";

/// [`ENV_ALERT_PERCENT`], or `default` when unset; an error names the variable.
pub fn alert_percent_from_env(default: u64) -> Result<u64, String> {
    match std::env::var(ENV_ALERT_PERCENT) {
        Ok(text) => text
            .parse::<u64>()
            .ok()
            .filter(|p| (1..=100).contains(p))
            .ok_or_else(|| format!("{ENV_ALERT_PERCENT} must be a whole percentage from 1 to 100")),
        Err(_) => Ok(default),
    }
}

/// Seconds since the epoch (0 if the clock is before it, which no Lambda host is).
pub fn now_epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The invocation's body, byte for byte as the caller sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent(Vec<u8>);

impl RawEvent {
    /// Wraps bytes (tests and local invokes build events this way).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The body.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RawEvent {
    /// Reads what [`RawPayloadLayer`] wrote: the body as one base64 JSON string.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let encoded = String::deserialize(deserializer)?;
        STANDARD
            .decode(encoded)
            .map(RawEvent)
            .map_err(|_| serde::de::Error::custom("the raw payload layer is not installed"))
    }
}

/// Re-encodes each invocation's body as one base64 JSON string, which always deserializes,
/// so the runtime hands every body to the handler as a [`RawEvent`]. Base64 rather than the
/// text itself so a body that is not UTF-8 reaches the handler unchanged and is refused there.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawPayloadLayer;

impl<S> Layer<S> for RawPayloadLayer {
    type Service = RawPayloadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RawPayloadService { inner }
    }
}

/// The service [`RawPayloadLayer`] wraps around the runtime's own.
#[derive(Clone, Debug)]
pub struct RawPayloadService<S> {
    inner: S,
}

impl<S> Service<LambdaInvocation> for RawPayloadService<S>
where
    S: Service<LambdaInvocation, Response = (), Error = Error>,
{
    type Response = ();
    type Error = Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        invocation.body = encode_body(&invocation.body).into();
        self.inner.call(invocation)
    }
}

fn encode_body(body: &[u8]) -> Vec<u8> {
    // A base64 alphabet needs no JSON escaping: quote, text, quote.
    let mut out = Vec::with_capacity(body.len().div_ceil(3) * 4 + 2);
    out.push(b'"');
    out.extend_from_slice(STANDARD.encode(body).as_bytes());
    out.push(b'"');
    out
}

/// Serves `handler` on the Lambda runtime: every body reaches it as a [`RawEvent`], every log
/// line inside an invocation carries its `requestId` (the runtime's tracing span, which
/// `lambda_runtime::run` would add), and the handler's answer is the response. The handler
/// cannot fail, so no input becomes a Lambda error.
pub async fn serve<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(LambdaEvent<RawEvent>) -> Fut,
    Fut: Future<Output = Value>,
{
    let service = service_fn(|event: LambdaEvent<RawEvent>| {
        let answer = handler(event);
        async move { Ok::<Value, Error>(answer.await) }
    });
    Runtime::new(service)
        .layer(RawPayloadLayer)
        .layer(TracingLayer::new())
        .run()
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use predebit_core::payload::{self, PayloadProblem};

    use super::*;

    /// Runs one invocation with `body` through the layer and returns the body the runtime's
    /// inner service received.
    async fn through_layer(body: &[u8]) -> Vec<u8> {
        let seen: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = seen.clone();
        let inner = service_fn(move |invocation: LambdaInvocation| {
            *sink.lock().unwrap() = invocation.body.to_vec();
            async { Ok::<(), Error>(()) }
        });
        let (parts, ()) = http::Response::new(()).into_parts();
        let invocation = LambdaInvocation {
            parts,
            body: body.to_vec().into(),
            context: lambda_runtime::Context::default(),
        };
        RawPayloadLayer
            .layer(inner)
            .call(invocation)
            .await
            .expect("the inner service answers");
        let seen = seen.lock().unwrap().clone();
        seen
    }

    fn runtime_deserializes(body: &[u8]) -> RawEvent {
        // What the runtime does with the body before the handler runs.
        serde_json::from_slice(body).expect("the layer's body always deserializes")
    }

    #[tokio::test]
    async fn the_handler_receives_the_exact_bytes_of_any_body() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let bodies: [&[u8]; 5] = [
            br#"{"version":"1"}"#,
            b"not json at all",
            b"\xff\xfe invalid utf-8 \xc3",
            b"",
            deep.as_bytes(),
        ];
        for body in bodies {
            // WHEN the layer re-encodes the body and the runtime deserializes it
            let event = runtime_deserializes(&through_layer(body).await);
            // THEN the handler sees the same bytes
            assert_eq!(event.as_bytes(), body);
        }
    }

    #[tokio::test]
    async fn bodies_the_runtime_would_refuse_become_refusals_in_the_handler() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let large = format!("\"{}\"", "a".repeat(300 * 1024));
        let cases: [(&[u8], PayloadProblem); 4] = [
            (b"not json", PayloadProblem::NotJson),
            (b"\"\xff\"", PayloadProblem::NotJson),
            (deep.as_bytes(), PayloadProblem::TooDeep),
            (large.as_bytes(), PayloadProblem::TooLarge),
        ];
        for (body, problem) in cases {
            let event = runtime_deserializes(&through_layer(body).await);
            assert_eq!(payload::parse(event.as_bytes()), Err(problem));
        }
    }
}
