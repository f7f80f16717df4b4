//! The DynamoDB adapter's tables and operator writes.

use predebit_core::records::{PolicyRecord, SessionStatus};
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
