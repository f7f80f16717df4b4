//! Item keys and the record <-> item mapping (serde_dynamo; no hand-written attribute maps).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use predebit_core::store::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::tables::{PK, SK};

/// Checks an id that becomes part of a key: non-empty, printable ASCII, no spaces and no `#`
/// (which separates key parts: `CONSENT#u#a#b` would be ambiguous).
pub fn check_key_part(field: &str, value: &str) -> Result<(), String> {
    if value.is_empty()
        || value.len() > 256
        || !value.bytes().all(|b| b.is_ascii_graphic() && b != b'#')
    {
        return Err(format!(
            "{field} must be 1 to 256 printable ASCII characters without spaces or '#'"
        ));
    }
    Ok(())
}

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// `POLICY#global`.
pub fn global_policy_pk() -> String {
    "POLICY#global".to_string()
}
/// `POLICY#user#<userId>`.
pub fn user_policy_pk(user_id: &str) -> String {
    format!("POLICY#user#{user_id}")
}
/// `POLICY#agent#<agentId>`.
pub fn agent_policy_pk(agent_id: &str) -> String {
    format!("POLICY#agent#{agent_id}")
}
/// `VERSION#<policy pk>`: the counter a scope's policy versions come from. It outlives the
/// policy item, so a scope deleted and put again never reuses a version. Verify reads only
/// `POLICY#` keys, so it never mistakes a counter for a policy.
pub fn policy_version_counter_pk(policy_pk: &str) -> String {
    format!("VERSION#{policy_pk}")
}
/// `AGENT#<agentId>`.
pub fn agent_pk(agent_id: &str) -> String {
    format!("AGENT#{agent_id}")
}
/// `CONSENT#<userId>#<agentId>`.
pub fn consent_pk(user_id: &str, agent_id: &str) -> String {
    format!("CONSENT#{user_id}#{agent_id}")
}
/// `SESSION#<paymentSessionId>`.
pub fn session_pk(payment_session_id: &str) -> String {
    format!("SESSION#{payment_session_id}")
}
/// The session row's sort key.
pub const SESSION_SK: &str = "SESSION";

/// The key of a single-key table item.
pub fn pk_key(pk: String) -> Item {
    HashMap::from([(PK.to_string(), AttributeValue::S(pk))])
}

/// The key of a ledger item.
pub fn pk_sk_key(pk: String, sk: &str) -> Item {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(pk)),
        (SK.to_string(), AttributeValue::S(sk.to_string())),
    ])
}

/// Serializes a record and adds its key attributes.
pub fn to_item<T: Serialize>(record: &T, key: Item) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(record)
        .map_err(|e| StoreError::Malformed(format!("cannot serialize record: {e}")))?;
    item.extend(key);
    Ok(item)
}

/// Reads a record from an item; key attributes and unknown attributes are ignored.
pub fn from_item<T: DeserializeOwned>(item: Item, what: &str) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Malformed(format!("{what}: {e}")))
}

/// The string value of an attribute, if it is a string.
pub fn string_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}
