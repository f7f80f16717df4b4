//! The DynamoDB adapter's tables and operator writes.

use aws_sdk_dynamodb::types::AttributeValue;
use predebit_core::records::{PolicyRecord, SessionStatus};
use predebit_core::store::{VerifyKeys, VerifyReader};
use predebit_store::dynamodb::PolicyScope;
use predebit_store::seed::new_session;
use predebit_store::tables::{self, ALL};
use predebit_store::AdminError;
use predebit_tests::fresh_store;

#[tokio::test]
async fn created_tables_have_the_key_schemas_and_index_defined_in_code() {
    let store = fresh_store("schema").await;
    for spec in ALL {
        let name = store.tables().name_of(&spec).to_string();
        let described = store
            .client()
            .describe_table()
            .table_name(&name)
            .send()
            .await
            .unwrap();
        let table = described.table().unwrap();
        let keys: Vec<(String, String)> = table
            .key_schema()
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_string(),
                    k.key_type().as_str().to_string(),
                )
            })
            .collect();
        let mut expected = vec![(spec.hash.name.to_string(), "HASH".to_string())];
        if let Some(r) = spec.range {
            expected.push((r.name.to_string(), "RANGE".to_string()));
        }
        assert_eq!(keys, expected, "{name}");
        let indexes: Vec<&str> = table
            .global_secondary_indexes()
            .iter()
            .filter_map(|i| i.index_name())
            .collect();
        let expected_indexes: Vec<&str> = spec.indexes.iter().map(|i| i.name).collect();
        assert_eq!(indexes, expected_indexes, "{name}");
    }
    // Creating again is a no-op, not an error.
    let again = tables::create_all(store.client(), store.tables())
        .await
        .unwrap();
    assert!(again.is_empty());
}

#[tokio::test]
async fn putting_a_policy_increments_its_version() {
    let store = fresh_store("policyversion").await;
    let scope = PolicyScope::User("user-x".into());

    let first = store
        .put_policy(&scope, r#"{"maxPerPayment":"1.00"}"#)
        .await
        .unwrap();
    let second = store
        .put_policy(&scope, r#"{"maxPerPayment":"2.00"}"#)
        .await
        .unwrap();

    assert_eq!((first, second), (1, 2));
    assert_eq!(
        store.get_policy(&scope).await.unwrap(),
        Some(PolicyRecord {
            version: 2,
            document: r#"{"maxPerPayment":"2.00"}"#.into()
        })
    );
}

#[tokio::test]
async fn a_policy_put_again_after_a_delete_takes_a_version_above_every_earlier_one() {
    // GIVEN a scope whose policy reached version 2, then was deleted
    let store = fresh_store("policyrecreate").await;
    let scope = PolicyScope::Agent("agent-x".into());
    let earlier = [
        store
            .put_policy(&scope, r#"{"maxPerPayment":"1.00"}"#)
            .await
            .unwrap(),
        store
            .put_policy(&scope, r#"{"maxPerPayment":"2.00"}"#)
            .await
            .unwrap(),
    ];
    store.delete_policy(&scope).await.unwrap();
    assert_eq!(store.get_policy(&scope).await.unwrap(), None);

    // WHEN a policy is put there again, twice
    let again = store
        .put_policy(&scope, r#"{"maxPerPayment":"3.00"}"#)
        .await
        .unwrap();
    let after = store
        .put_policy(&scope, r#"{"maxPerPayment":"4.00"}"#)
        .await
        .unwrap();

    // THEN no version repeats: each is above every earlier one
    assert_eq!(earlier, [1, 2]);
    assert_eq!((again, after), (3, 4));
    assert_eq!(store.get_policy(&scope).await.unwrap().unwrap().version, 4);
}

#[tokio::test]
async fn a_policy_stored_before_the_version_counter_existed_keeps_growing_its_version() {
    // GIVEN a policy item at version 7 and no counter (written by an earlier predebit)
    let store = fresh_store("policylegacy").await;
    let item = std::collections::HashMap::from([
        ("pk".to_string(), AttributeValue::S("POLICY#global".into())),
        ("version".to_string(), AttributeValue::N("7".into())),
        ("document".to_string(), AttributeValue::S("{}".into())),
    ]);
    store
        .put_raw(&store.tables().policies.clone(), item)
        .await
        .unwrap();

    // WHEN a document is put, then the scope is deleted and put again
    let next = store.put_policy(&PolicyScope::Global, "{}").await.unwrap();
    store.delete_policy(&PolicyScope::Global).await.unwrap();
    let recreated = store.put_policy(&PolicyScope::Global, "{}").await.unwrap();

    // THEN the versions continue above 7
    assert_eq!((next, recreated), (8, 9));
}

#[tokio::test]
async fn verify_never_reads_a_version_counter_as_a_policy() {
    // GIVEN a global policy put and then deleted: only its counter item is left
    let store = fresh_store("policycounter").await;
    store.put_policy(&PolicyScope::Global, "{}").await.unwrap();
    store.delete_policy(&PolicyScope::Global).await.unwrap();
    let scan = store
        .client()
        .scan()
        .table_name(&store.tables().policies)
        .send()
        .await
        .unwrap();
    assert_eq!(scan.count(), 1, "the counter item stays");

    // WHEN verify reads its snapshot
    let snapshot = store
        .read_for_verify(&VerifyKeys {
            user_id: "user-x".into(),
            agent_id: "agent-x".into(),
            payment_session_id: "ps-x".into(),
            counters: Vec::new(),
        })
        .await
        .unwrap();

    // THEN no policy is found at any scope
    assert_eq!(
        (
            snapshot.global_policy,
            snapshot.user_policy,
            snapshot.agent_policy
        ),
        (None, None, None)
    );
}

#[tokio::test]
async fn opening_a_session_twice_is_idempotent_and_a_different_one_conflicts() {
    let store = fresh_store("session").await;
    let session = new_session("ps-1", "user-x", 5_000_000, 4_102_444_800, None);

    assert!(store.open_session(&session).await.unwrap());
    assert!(!store.open_session(&session).await.unwrap());
    let other = new_session("ps-1", "user-x", 9_000_000, 4_102_444_800, None);
    let err = store.open_session(&other).await.unwrap_err();

    assert!(matches!(err, AdminError::Conflict(_)), "{err}");
    let stored = store.get_session("ps-1").await.unwrap().unwrap();
    assert_eq!(stored.limit_micros, 5_000_000);
    assert_eq!(stored.available_micros, 5_000_000);
    assert_eq!(stored.status, SessionStatus::Open);
}

#[tokio::test]
async fn ids_with_a_hash_are_refused_before_anything_is_written() {
    let store = fresh_store("hashid").await;
    let consent = predebit_core::records::ConsentRecord {
        status: predebit_core::records::ConsentStatus::Granted,
        expires_at: None,
    };

    let err = store
        .put_consent("user#a", "agent", &consent)
        .await
        .unwrap_err();

    assert!(
        matches!(err, AdminError::Invalid(ref m) if m.contains("userId")),
        "{err}"
    );
    let scan = store
        .client()
        .scan()
        .table_name(&store.tables().registry)
        .send()
        .await
        .unwrap();
    assert_eq!(scan.count(), 0);
}
