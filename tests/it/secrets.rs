//! The key ring from Secrets Manager (moto on loopback).

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use predebit_core::audit;
use predebit_core::keys::KeyRing;
use predebit_store::secrets::{self, KeySource, MAX_RING_AGE, REFETCH_INTERVAL};
use predebit_tests::secrets_client;
use serde_json::json;

fn secret_json(kid: &str, seed: u8) -> String {
    KeyRing::new_secret_json(kid, &[seed; 32], &[1u8; 32])
}

/// A secret holding `kids` (each keyed by its seed), signing with `active`.
fn ring_json(active: &str, kids: &[(&str, u8)]) -> String {
    let keys: serde_json::Map<_, _> = kids
        .iter()
        .map(|(kid, seed)| (kid.to_string(), json!(STANDARD.encode([*seed; 32]))))
        .collect();
    json!({
        "version": 1,
        "activeKid": active,
        "keys": keys,
        "pseudonymKey": STANDARD.encode([1u8; 32]),
    })
    .to_string()
}

/// A secret id no other test uses.
fn secret_id(test: &str) -> String {
    format!("predebit/test-{test}/{}", std::process::id())
}

/// An audit line sealed under the ring's active kid, as verify writes one.
fn line_signed_by(ring: &KeyRing) -> String {
    audit::seal(&json!({"version": "1", "kind": "predebit.verify"}), ring)
        .unwrap()
        .log_line()
}

#[tokio::test]
async fn the_key_source_reads_the_secret_and_finds_a_rotated_kid_by_refetching() {
    // GIVEN a secret with kid k1
    let client = secrets_client().await;
    let id = secret_id("rotate");
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
    let id = secret_id("bad");
    secrets::put(&client, &id, r#"{"version":1,"activeKid":"k1","keys":{}}"#)
        .await
        .unwrap();

    let err = KeySource::from_secrets_manager(client, id)
        .await
        .unwrap_err();

    let message = err.to_string();
    assert!(message.contains("malformed"), "{message}");
}

#[tokio::test]
async fn a_kid_removed_from_the_secret_stops_verifying_after_the_max_age() {
    // GIVEN a container that read a ring with k1 (active) and k2, and a line signed under k1
    let client = secrets_client().await;
    let id = secret_id("removed");
    secrets::put(&client, &id, &ring_json("k1", &[("k1", 3), ("k2", 4)]))
        .await
        .unwrap();
    let source = KeySource::from_secrets_manager(client.clone(), id.clone())
        .await
        .unwrap();
    // The ring was read before this instant, so start + MAX_RING_AGE is past its age.
    let start = Instant::now();
    let line = line_signed_by(&*source.current_at(start).await);

    // WHEN k1 is removed from the secret
    secrets::put(&client, &id, &ring_json("k2", &[("k2", 4)]))
        .await
        .unwrap();

    // THEN before the max age the container still trusts k1 (its copy is fresh enough)
    let early = start + MAX_RING_AGE - Duration::from_secs(1);
    assert!(source.with_kid_at("k1", early).await.is_some());
    assert_eq!(
        audit::verify_log_line(&line, &*source.current_at(early).await),
        Ok(())
    );
    // AND after it the ring is re-read: k1 is refused and its line no longer verifies
    let late = start + MAX_RING_AGE;
    let ring = source.current_at(late).await;
    assert_eq!(ring.active_kid(), "k2");
    assert!(!ring.has_kid("k1"));
    assert!(audit::verify_log_line(&line, &ring).is_err());
    assert!(source
        .with_kid_at("k1", late + Duration::from_secs(1))
        .await
        .is_none());
}

#[tokio::test]
async fn a_new_kid_is_picked_up_on_first_use_without_waiting_for_the_max_age() {
    // GIVEN a container that read k1
    let client = secrets_client().await;
    let id = secret_id("added");
    secrets::put(&client, &id, &ring_json("k1", &[("k1", 3)]))
        .await
        .unwrap();
    let source = KeySource::from_secrets_manager(client.clone(), id.clone())
        .await
        .unwrap();
    // The ring was read before this instant, so start + MAX_RING_AGE is past its age.
    let start = Instant::now();

    // WHEN the secret gains k2 and, seconds later, a token names it
    secrets::put(&client, &id, &ring_json("k2", &[("k1", 3), ("k2", 4)]))
        .await
        .unwrap();
    let ring = source
        .with_kid_at("k2", start + Duration::from_secs(5))
        .await;

    // THEN the first use re-reads the secret and knows k2, and k1 still verifies
    let ring = ring.expect("the re-read ring knows k2");
    assert!(ring.has_kid("k1") && ring.has_kid("k2"));
    assert_eq!(
        source
            .current_at(start + Duration::from_secs(6))
            .await
            .active_kid(),
        "k2"
    );
}

#[tokio::test]
async fn a_failed_re_read_keeps_the_ring_and_retries_no_sooner_than_the_interval() {
    // GIVEN a container that read k1, and a secret that then cannot be read
    let client = secrets_client().await;
    let id = secret_id("outage");
    secrets::put(&client, &id, &ring_json("k1", &[("k1", 3)]))
        .await
        .unwrap();
    let source = KeySource::from_secrets_manager(client.clone(), id.clone())
        .await
        .unwrap();
    // The ring was read before this instant, so start + MAX_RING_AGE is past its age.
    let start = Instant::now();
    client
        .delete_secret()
        .secret_id(&id)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();

    // WHEN the ring is due for a re-read, which fails
    let due = start + MAX_RING_AGE;
    // THEN the container keeps serving the ring it has (an outage must not stop payments)
    assert_eq!(source.current_at(due).await.active_kid(), "k1");

    // AND once the secret is back (without k1), the next attempt waits for the retry interval
    secrets::put(&client, &id, &ring_json("k2", &[("k2", 4)]))
        .await
        .unwrap();
    let within = due + REFETCH_INTERVAL - Duration::from_secs(1);
    assert_eq!(source.current_at(within).await.active_kid(), "k1");
    assert!(source.with_kid_at("k2", within).await.is_none());
    let after = due + REFETCH_INTERVAL;
    let ring = source.current_at(after).await;
    assert_eq!(ring.active_kid(), "k2");
    assert!(!ring.has_kid("k1"));
}
