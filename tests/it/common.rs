//! Shared set-up: demo seed, fixed keys, a verify service that captures its audit lines.

use std::sync::{Arc, Mutex};

use predebit_core::keys::KeyRing;
use predebit_core::store::VerifyReader;
use predebit_store::secrets::KeySource;
use predebit_store::{seed, DynamoStore};
use predebit_tests::repo_root;
use predebit_verify::VerifyService;

/// A fixed key ring for tests.
pub fn test_keys() -> KeyRing {
    KeyRing::from_secret_json(&KeyRing::new_secret_json("test-k1", &[7u8; 32], &[9u8; 32]))
        .expect("test secret parses")
}

/// Seeds the demo data into a store.
pub async fn seed_demo(store: &DynamoStore) {
    let text = std::fs::read_to_string(repo_root().join("infra/seed/demo.json")).unwrap();
    let file = seed::parse(&text).expect("demo seed parses");
    seed::apply(store, &file).await.expect("demo seed applies");
}

/// Audit lines written by a service.
pub type Captured = Arc<Mutex<Vec<String>>>;

/// A verify service over `reader` with the test keys, capturing audit lines.
pub fn service<R: VerifyReader + Sync>(reader: R) -> (VerifyService<R>, Captured) {
    let captured: Captured = Arc::default();
    let sink = captured.clone();
    let service = VerifyService::new(reader, KeySource::fixed(test_keys()))
        .with_audit_sink(Box::new(move |line| {
            sink.lock().unwrap().push(line.to_string())
        }))
        .with_metrics_sink(Box::new(|_| {}));
    (service, captured)
}

/// Property-test cases per test: `PROPTEST_CASES` (the Makefile sets it), else 16.
pub fn proptest_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

/// A fixed clock inside the demo sessions' lifetime.
pub const NOW: u64 = 1_800_000_000;
