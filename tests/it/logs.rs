//! What predebit writes to its logs: never a key, a token, a payment header or a raw user id.

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use predebit_core::ledger::{AllowedOps, LedgerConfig};
use predebit_ledger::LedgerService;
use predebit_store::secrets::KeySource;
use predebit_tests::{fresh_store, repo_root};
use predebit_verify::VerifyService;
use serde_json::{json, Value};

use crate::common::{seed_demo, test_keys, NOW};

/// Collects everything written, from any sink.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<u8>>>);

impl Write for Collected {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Collected {
    fn sink(&self) -> Box<dyn Fn(&str) + Send + Sync> {
        let this = self.clone();
        Box::new(move |line| {
            let mut w = this.clone();
            let _ = writeln!(w, "{line}");
        })
    }
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[test]
fn the_logs_of_a_decision_a_reserve_and_a_commit_hold_no_key_token_header_or_user_id() {
    // GIVEN every log line (at the deployed level, info), audit line and metric line captured
    let out = Collected::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter("info")
        .with_writer(move || writer.clone())
        .finish();
    // Global, not thread-local: tracing caches each call site's interest process-wide, and a
    // thread-local subscriber can miss events whose interest another test thread set first.
    // Other tests' lines may land here too; they must be just as clean.
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets a subscriber");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let (token, hold_token, header) = runtime.block_on(async {
        let store = fresh_store("logs").await;
        seed_demo(&store).await;
        let verify = VerifyService::new(store.clone(), KeySource::fixed(test_keys()))
            .with_audit_sink(out.sink())
            .with_metrics_sink(out.sink());
        let config = LedgerConfig { allowed: AllowedOps::parse("all").unwrap(), ..LedgerConfig::default() };
        let ledger = LedgerService::new(store, config, KeySource::fixed(test_keys())).with_metrics_sink(out.sink());
        let event: Value = serde_json::from_str(
            &std::fs::read_to_string(repo_root().join("events/verify/allow-v1-base-usdc.json")).unwrap(),
        )
        .unwrap();

        // WHEN a payment is decided, reserved, marked sent and committed
        let decision = verify.handle_json(&event, "logs", NOW).await;
        let token = decision["decisionToken"].as_str().unwrap().to_string();
        let id = event["paymentId"].as_str().unwrap();
        let session = event["paymentSessionId"].as_str().unwrap();
        let header = STANDARD.encode(
            json!({"success": true, "transaction": format!("0x{}", "ef".repeat(32)), "network": "base", "payer": "0x1111111111111111111111111111111111111111"})
                .to_string(),
        );
        let reserved = ledger.handle(&json!({"version": "1", "op": "reserve", "decisionToken": token}), NOW + 1).await;
        assert_eq!(reserved["ok"], true, "{reserved}");
        let hold_token = reserved["holdToken"].as_str().unwrap().to_string();
        for e in [
            json!({"version": "1", "op": "markSent", "paymentSessionId": session, "paymentId": id, "holdToken": hold_token,
                "signed": {"to": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "value": "1000000", "network": "eip155:8453", "validBefore": NOW + 60}}),
            json!({"version": "1", "op": "commit", "paymentSessionId": session, "paymentId": id, "holdToken": hold_token, "settlement": header, "amountMicros": 1_000_000}),
        ] {
            let response = ledger.handle(&e, NOW + 1).await;
            assert_eq!(response["ok"], true, "{response}");
        }
        (token, hold_token, header)
    });

    // THEN the logs say what happened ...
    let text = out.text();
    assert!(
        text.contains("verify decision") && text.contains("ledger operation"),
        "{text}"
    );
    assert!(
        text.contains("predebit.audit") && text.contains("LedgerOperations"),
        "{text}"
    );
    // ... and hold none of the secrets or identities
    let key_material = [STANDARD.encode([7u8; 32]), STANDARD.encode([9u8; 32])];
    for forbidden in [
        token.as_str(),
        hold_token.as_str(),
        header.as_str(),
        "user-alice",
        &key_material[0],
        &key_material[1],
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(forbidden))
            .unwrap_or_default();
        assert!(
            !text.contains(forbidden),
            "the logs contain {forbidden}: {}",
            &line[..line.len().min(400)]
        );
    }
    // The token's parts are not there either (its MAC would let a reader replay nothing, but it is a secret).
    let mac = token.rsplit('.').next().unwrap();
    assert!(!text.contains(mac));
}
