//! An in-memory store for unit tests and benchmarks. Integration tests use DynamoDB Local.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use crate::budget::{CounterKey, CounterRecord};
use crate::records::{AgentRecord, ConsentRecord, PolicyRecord, SessionRecord, VerifySnapshot};
use crate::store::{StoreError, VerifyKeys, VerifyReader};

/// Records keyed as in DynamoDB, behind a lock; counts the reads it serves.
#[derive(Debug, Default)]
pub struct MemoryStore {
    policies: RwLock<HashMap<String, PolicyRecord>>,
    agents: RwLock<HashMap<String, AgentRecord>>,
    consents: RwLock<HashMap<(String, String), ConsentRecord>>,
    sessions: RwLock<HashMap<String, SessionRecord>>,
    counters: RwLock<HashMap<CounterKey, CounterRecord>>,
    unavailable: std::sync::atomic::AtomicBool,
    reads: AtomicU64,
}

/// A policy scope's key in the memory store, as in DynamoDB (`global`, `user#u`, `agent#a`).
pub fn scope_key(scope: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{scope}#{id}"),
        None => scope.to_string(),
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts a policy under a scope key from [`scope_key`].
    pub fn put_policy(&self, scope_key: &str, record: PolicyRecord) {
        self.policies
            .write()
            .expect("lock")
            .insert(scope_key.to_string(), record);
    }

    /// Registers or replaces an agent.
    pub fn put_agent(&self, agent: AgentRecord) {
        self.agents
            .write()
            .expect("lock")
            .insert(agent.agent_id.clone(), agent);
    }

    /// Puts a consent.
    pub fn put_consent(&self, user_id: &str, agent_id: &str, consent: ConsentRecord) {
        self.consents
            .write()
            .expect("lock")
            .insert((user_id.to_string(), agent_id.to_string()), consent);
    }

    /// Puts a session.
    pub fn put_session(&self, session: SessionRecord) {
        self.sessions
            .write()
            .expect("lock")
            .insert(session.payment_session_id.clone(), session);
    }

    /// Puts a budget counter.
    pub fn put_counter(&self, key: CounterKey, counter: CounterRecord) {
        self.counters.write().expect("lock").insert(key, counter);
    }

    /// Makes every read fail as an outage would.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// How many reads were served.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }
}

impl VerifyReader for MemoryStore {
    async fn read_for_verify(&self, keys: &VerifyKeys) -> Result<VerifySnapshot, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "memory store set unavailable".into(),
            ));
        }
        let policies = self.policies.read().expect("lock");
        Ok(VerifySnapshot {
            global_policy: policies.get("global").cloned(),
            user_policy: policies
                .get(&scope_key("user", Some(&keys.user_id)))
                .cloned(),
            agent_policy: policies
                .get(&scope_key("agent", Some(&keys.agent_id)))
                .cloned(),
            agent: self
                .agents
                .read()
                .expect("lock")
                .get(&keys.agent_id)
                .cloned(),
            consent: self
                .consents
                .read()
                .expect("lock")
                .get(&(keys.user_id.clone(), keys.agent_id.clone()))
                .cloned(),
            session: self
                .sessions
                .read()
                .expect("lock")
                .get(&keys.payment_session_id)
                .cloned(),
            counters: {
                let counters = self.counters.read().expect("lock");
                keys.counters
                    .iter()
                    .map(|k| (k.clone(), counters.get(k).copied()))
                    .collect()
            },
        })
    }
}
