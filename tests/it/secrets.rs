//! The key ring from Secrets Manager (moto on loopback).

use predebit_core::keys::KeyRing;
use predebit_store::secrets::{self, KeySource};
use predebit_tests::secrets_client;

fn secret_json(kid: &str, seed: u8) -> String {
    KeyRing::new_secret_json(kid, &[seed; 32], &[1u8; 32])
}

#[tokio::test]
async fn the_key_source_reads_the_secret_and_finds_a_rotated_kid_by_refetching() {
    // GIVEN a secret with kid k1
    let client = secrets_client().await;
    let id = format!("predebit/test/{}", std::process::id());
    secrets::put(&client, &id, &secret_json("k1", 3))
        .await
        .unwrap();
    let source = KeySource::from_secrets_manager(client.clone(), id.clone())
        .await
        .unwrap();
    assert_eq!(source.current().await.active_kid(), "k1");

    // WHEN the secret rotates to k2 and a token names k2
    secrets::put(&client, &id, &secret_json("k2", 4))
        .await
        .unwrap();
    let ring = source.with_kid("k2").await;

    // THEN the container refetches once and knows k2; the pseudonym key did not change
    let ring = ring.expect("refetched ring knows k2");
    assert_eq!(ring.active_kid(), "k2");
    assert_eq!(
        ring.pseudonymize("user-x"),
        KeyRing::from_secret_json(&secret_json("k1", 3))
            .unwrap()
            .pseudonymize("user-x")
    );
    // AND an unknown kid right after does not trigger another fetch within the minute
    assert!(source.with_kid("k3").await.is_none());
}

#[tokio::test]
async fn a_malformed_secret_is_refused_with_a_message_naming_the_field() {
    let client = secrets_client().await;
    let id = format!("predebit/test-bad/{}", std::process::id());
    secrets::put(&client, &id, r#"{"version":1,"activeKid":"k1","keys":{}}"#)
        .await
        .unwrap();

    let err = KeySource::from_secrets_manager(client, id)
        .await
        .unwrap_err();

    let message = err.to_string();
    assert!(message.contains("malformed"), "{message}");
}
