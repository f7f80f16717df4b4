//! The DynamoDB implementation of predebit's store ports.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use aws_sdk_dynamodb::Client;
use predebit_core::budget::CounterRecord;
use predebit_core::records::{
    AgentRecord, ConsentRecord, PolicyRecord, SessionRecord, VerifySnapshot,
};
use predebit_core::store::{StoreError, VerifyKeys, VerifyReader};

use crate::error::{unavailable, AdminError};
use crate::items::{
    self, agent_pk, agent_policy_pk, consent_pk, global_policy_pk, pk_key, pk_sk_key,
    policy_version_counter_pk, session_pk, string_attr, user_policy_pk, Item, SESSION_SK,
};
use crate::tables::{TableNames, PK, SK};

/// predebit's store on DynamoDB: a client and the deployed table names.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    tables: TableNames,
}

impl DynamoStore {
    /// Wraps a client built once at cold start.
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self { client, tables }
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table names in use.
    pub fn tables(&self) -> &TableNames {
        &self.tables
    }
}

fn keys_and_attributes(keys: Vec<Item>) -> KeysAndAttributes {
    KeysAndAttributes::builder()
        .set_keys(Some(keys))
        .consistent_read(true)
        .build()
        .expect("keys are set")
}

impl VerifyReader for DynamoStore {
    /// One strongly consistent BatchGetItem over the three tables. Unprocessed keys (partial
    /// throttling) fail closed rather than costing a second request.
    async fn read_for_verify(&self, keys: &VerifyKeys) -> Result<VerifySnapshot, StoreError> {
        let policy_keys = vec![
            pk_key(global_policy_pk()),
            pk_key(user_policy_pk(&keys.user_id)),
            pk_key(agent_policy_pk(&keys.agent_id)),
        ];
        let registry_keys = vec![
            pk_key(agent_pk(&keys.agent_id)),
            pk_key(consent_pk(&keys.user_id, &keys.agent_id)),
        ];
        let mut ledger_keys = vec![pk_sk_key(session_pk(&keys.payment_session_id), SESSION_SK)];
        ledger_keys.extend(keys.counters.iter().map(|c| pk_sk_key(c.pk.clone(), &c.sk)));
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.tables.policies, keys_and_attributes(policy_keys))
            .request_items(&self.tables.registry, keys_and_attributes(registry_keys))
            .request_items(&self.tables.ledger, keys_and_attributes(ledger_keys))
            .send()
            .await
            .map_err(unavailable)?;
        if out.unprocessed_keys().is_some_and(|u| !u.is_empty()) {
            return Err(StoreError::Unavailable(
                "BatchGetItem left keys unprocessed".into(),
            ));
        }
        let mut responses = out.responses.unwrap_or_default();
        let mut by_pk = |table: &str| -> HashMap<String, Item> {
            responses
                .remove(table)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|item| Some((string_attr(&item, PK)?.to_string(), item)))
                .collect()
        };
        let mut policies = by_pk(&self.tables.policies);
        let mut registry = by_pk(&self.tables.registry);
        // The session and budget counters share the ledger table: keyed by pk and sk.
        let mut ledger: HashMap<(String, String), Item> = responses
            .remove(&self.tables.ledger)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|item| {
                let key = (
                    string_attr(&item, PK)?.to_string(),
                    string_attr(&item, SK)?.to_string(),
                );
                Some((key, item))
            })
            .collect();
        let mut counters = Vec::with_capacity(keys.counters.len());
        for key in &keys.counters {
            let found = ledger
                .remove(&(key.pk.clone(), key.sk.clone()))
                .map(|i| items::from_item::<CounterRecord>(i, "budget counter"))
                .transpose()?;
            counters.push((key.clone(), found));
        }
        let policy = |item: Option<Item>| -> Result<Option<PolicyRecord>, StoreError> {
            item.map(|i| items::from_item(i, "policy")).transpose()
        };
        Ok(VerifySnapshot {
            global_policy: policy(policies.remove(&global_policy_pk()))?,
            user_policy: policy(policies.remove(&user_policy_pk(&keys.user_id)))?,
            agent_policy: policy(policies.remove(&agent_policy_pk(&keys.agent_id)))?,
            agent: registry
                .remove(&agent_pk(&keys.agent_id))
                .map(|i| items::from_item::<AgentRecord>(i, "agent"))
                .transpose()?,
            consent: registry
                .remove(&consent_pk(&keys.user_id, &keys.agent_id))
                .map(|i| items::from_item::<ConsentRecord>(i, "consent"))
                .transpose()?,
            session: ledger
                .remove(&(session_pk(&keys.payment_session_id), SESSION_SK.to_string()))
                .map(|i| items::from_item::<SessionRecord>(i, "session"))
                .transpose()?,
            counters,
        })
    }
}

/// Which policy scope an operator write targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyScope {
    /// Applies to every payment.
    Global,
    /// Applies to one user's payments.
    User(String),
    /// Applies to one agent's payments.
    Agent(String),
}

impl PolicyScope {
    /// Checks the scope's id.
    pub fn validate(&self) -> Result<(), AdminError> {
        match self {
            Self::Global => Ok(()),
            Self::User(id) => items::check_key_part("userId", id).map_err(AdminError::Invalid),
            Self::Agent(id) => items::check_key_part("agentId", id).map_err(AdminError::Invalid),
        }
    }

    /// The item key.
    pub fn pk(&self) -> String {
        match self {
            Self::Global => global_policy_pk(),
            Self::User(id) => user_policy_pk(id),
            Self::Agent(id) => agent_policy_pk(id),
        }
    }
}

/// How many times `put_policy` draws a new version before giving up (each lost draw means the
/// stored version was ahead of the counter: a concurrent put, or data from before the counter).
const PUT_POLICY_ATTEMPTS: usize = 5;

impl DynamoStore {
    /// Stores a policy document under a new version and returns it. Versions come from the
    /// scope's counter item (`VERSION#<policy pk>`, incremented atomically), which survives
    /// `delete_policy`, so a version never repeats for a scope: a decision token issued against
    /// an earlier document can never match a later one. The policy item takes the version only
    /// if its stored version is lower or absent, so versions only grow. The document is stored
    /// as given: verify decides `POLICY_INVALID` on a bad one.
    pub async fn put_policy(&self, scope: &PolicyScope, document: &str) -> Result<u64, AdminError> {
        scope.validate()?;
        for _ in 0..PUT_POLICY_ATTEMPTS {
            let version = self.next_policy_version(scope).await?;
            if self.write_policy(scope, document, version).await? {
                return Ok(version);
            }
            // The stored version is at or past the counter's: lift the counter past it and draw
            // again (a policy written before the counter existed, or a concurrent put).
            if let Some(stored) = self.get_policy(scope).await? {
                self.raise_policy_counter(scope, stored.version).await?;
            }
        }
        Err(AdminError::Conflict(format!(
            "the policy at {} (concurrent puts kept taking newer versions; retry)",
            scope.pk()
        )))
    }

    /// The scope's next version: the counter item's value after an atomic increment.
    async fn next_policy_version(&self, scope: &PolicyScope) -> Result<u64, AdminError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.policies)
            .set_key(Some(pk_key(policy_version_counter_pk(&scope.pk()))))
            .update_expression("SET #v = if_not_exists(#v, :zero) + :one")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(unavailable)?;
        out.attributes()
            .and_then(|a| a.get("version"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| AdminError::Invalid("the version counter returned no version".into()))
    }

    /// Writes the document with `version` unless the stored version is already at or past it.
    /// Returns whether it was written.
    async fn write_policy(
        &self,
        scope: &PolicyScope,
        document: &str,
        version: u64,
    ) -> Result<bool, AdminError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.policies)
            .set_key(Some(pk_key(scope.pk())))
            .update_expression("SET #doc = :doc, #v = :v")
            .condition_expression("attribute_not_exists(#v) OR #v < :v")
            .expression_attribute_names("#doc", "document")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":doc", AttributeValue::S(document.to_string()))
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(unavailable(err).into()),
        }
    }

    /// Sets the scope's counter to `at_least` unless it is already there or past it.
    async fn raise_policy_counter(
        &self,
        scope: &PolicyScope,
        at_least: u64,
    ) -> Result<(), AdminError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.policies)
            .set_key(Some(pk_key(policy_version_counter_pk(&scope.pk()))))
            .update_expression("SET #v = :v")
            .condition_expression("attribute_not_exists(#v) OR #v < :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", AttributeValue::N(at_least.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(unavailable(err).into()),
        }
    }

    /// Reads a policy.
    pub async fn get_policy(
        &self,
        scope: &PolicyScope,
    ) -> Result<Option<PolicyRecord>, AdminError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.policies)
            .set_key(Some(pk_key(scope.pk())))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out
            .item
            .map(|i| items::from_item(i, "policy"))
            .transpose()?)
    }

    /// Deletes a policy (its scope then restricts nothing, and counts as absent). The scope's
    /// version counter stays, so the next put takes a version never used before.
    pub async fn delete_policy(&self, scope: &PolicyScope) -> Result<(), AdminError> {
        self.client
            .delete_item()
            .table_name(&self.tables.policies)
            .set_key(Some(pk_key(scope.pk())))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Registers or replaces an agent.
    pub async fn put_agent(&self, agent: &AgentRecord) -> Result<(), AdminError> {
        items::check_key_part("agentId", &agent.agent_id).map_err(AdminError::Invalid)?;
        items::check_key_part("userId", &agent.user_id).map_err(AdminError::Invalid)?;
        let item = items::to_item(agent, pk_key(agent_pk(&agent.agent_id)))?;
        self.client
            .put_item()
            .table_name(&self.tables.registry)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Reads an agent.
    pub async fn get_agent(&self, agent_id: &str) -> Result<Option<AgentRecord>, AdminError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.registry)
            .set_key(Some(pk_key(agent_pk(agent_id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item.map(|i| items::from_item(i, "agent")).transpose()?)
    }

    /// Grants or revokes a user's consent for an agent.
    pub async fn put_consent(
        &self,
        user_id: &str,
        agent_id: &str,
        consent: &ConsentRecord,
    ) -> Result<(), AdminError> {
        items::check_key_part("userId", user_id).map_err(AdminError::Invalid)?;
        items::check_key_part("agentId", agent_id).map_err(AdminError::Invalid)?;
        let item = items::to_item(consent, pk_key(consent_pk(user_id, agent_id)))?;
        self.client
            .put_item()
            .table_name(&self.tables.registry)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Opens a session: creates it if absent; an identical existing session is fine, a different
    /// one is a conflict and nothing changes.
    pub async fn open_session(&self, session: &SessionRecord) -> Result<bool, AdminError> {
        items::check_key_part("paymentSessionId", &session.payment_session_id)
            .map_err(AdminError::Invalid)?;
        items::check_key_part("userId", &session.user_id).map_err(AdminError::Invalid)?;
        let key = pk_sk_key(session_pk(&session.payment_session_id), SESSION_SK);
        let item = items::to_item(session, key)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.ledger)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                match self.get_session(&session.payment_session_id).await? {
                    Some(existing) if existing == *session => Ok(false),
                    _ => Err(AdminError::Conflict(format!(
                        "session {}",
                        session.payment_session_id
                    ))),
                }
            }
            Err(err) => Err(unavailable(err).into()),
        }
    }

    /// Reads a session's balance row.
    pub async fn get_session(
        &self,
        payment_session_id: &str,
    ) -> Result<Option<SessionRecord>, AdminError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.ledger)
            .set_key(Some(pk_sk_key(session_pk(payment_session_id), SESSION_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out
            .item
            .map(|i| items::from_item(i, "session"))
            .transpose()?)
    }

    /// Writes an arbitrary item, for tests that tamper with the store behind predebit's back.
    pub async fn put_raw(&self, table: &str, item: Item) -> Result<(), AdminError> {
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
