//! Compiled policies kept across decisions in a warm container.
//!
//! A stored policy is compiled once per (scope, owner, version): policy versions never repeat for
//! a scope, across deletes (DESIGN, "Keys"), so a version read in the BatchGetItem names one
//! document, and a new version is a new key that the very next decision compiles. The document's
//! length is part of the key too, which costs nothing and catches a hand edit that forgot to bump
//! the version in most cases. Refusals are kept like successes, so an invalid document is not
//! compiled again on every decision.
//!
//! Two bounded LRU maps: documents, weighed by their JSON length plus
//! [`DOCUMENT_OVERHEAD_BYTES`] (at most [`MAX_DOCUMENT_BYTES`] in all), and combinations (global + user + agent), counted (at most
//! [`MAX_COMBINATIONS`]). A combination shares its documents; when a document leaves the cache
//! the combinations holding it leave too, so memory stays within the document bound plus the
//! small combinations. A document longer than the whole bound is compiled for its decision and
//! not kept.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;

use super::{combine_compiled, CompiledPolicy, EffectivePolicy, PolicyError};
use crate::budget::{BudgetClaim, BudgetScope};
use crate::records::PolicyRecord;

/// Default bound on the cached documents' JSON bytes (compiled, a few times that in memory).
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;
/// What a cached document costs beyond its text (the compiled sets' tables, the key, the LRU
/// node), counted in its weight so that many tiny documents cannot outgrow the bound.
pub const DOCUMENT_OVERHEAD_BYTES: usize = 1024;
/// Default bound on the cached combinations.
pub const MAX_COMBINATIONS: usize = 1024;

/// The scope a policy document applies at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `POLICY#global`.
    Global,
    /// `POLICY#user#<userId>`.
    User,
    /// `POLICY#agent#<agentId>`.
    Agent,
}

impl Scope {
    /// How refusals name the scope.
    pub fn label(self) -> &'static str {
        match self {
            Scope::Global => "global policy",
            Scope::User => "user policy",
            Scope::Agent => "agent policy",
        }
    }

    /// Whose payments this scope's budgets count.
    pub fn budget_scope(self) -> BudgetScope {
        match self {
            Scope::Global => BudgetScope::Global,
            Scope::User => BudgetScope::User,
            Scope::Agent => BudgetScope::Agent,
        }
    }
}

/// One stored document: its scope, owner (empty for global), version and length.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DocumentKey {
    scope: Scope,
    owner: String,
    version: u64,
    len: usize,
}

type Compiled = Result<Arc<CompiledPolicy>, PolicyError>;
type CombinationKey = Vec<DocumentKey>;

/// Why the policies of a decision could not be combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CombineError {
    /// One scope's document is invalid.
    Scope(Scope, PolicyError),
    /// The documents are valid alone and conflict together.
    Combined(PolicyError),
}

/// How often the cache answered and compiled (tests and benchmarks read it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Combinations answered from the cache.
    pub hits: u64,
    /// Documents compiled.
    pub compiled_documents: u64,
    /// Combinations built.
    pub combined: u64,
}

struct Inner {
    documents: LruCache<DocumentKey, (Compiled, usize)>,
    document_bytes: usize,
    combinations: LruCache<CombinationKey, Result<Arc<EffectivePolicy>, CombineError>>,
    /// The budgets each (scope, owner) had when last decided on, by [`owner_hash`].
    known_budgets: LruCache<u64, Arc<[BudgetClaim]>>,
    stats: CacheStats,
}

/// How many (scope, owner) pairs the cache remembers budgets for (a few hundred bytes each).
pub const MAX_KNOWN_BUDGETS: usize = 4096;

/// A (scope, owner) pair's key in the known-budgets map. A collision only makes verify read
/// other counters than it needs, and skip its early budget check: reserve counts regardless.
fn owner_hash(scope: Scope, owner: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (scope, owner).hash(&mut h);
    h.finish()
}

/// The compiled-policy cache of one container. Thread-safe; the lock is never held while a
/// document compiles.
pub struct PolicyCache {
    inner: Option<Mutex<Inner>>,
    max_document_bytes: usize,
}

impl Default for PolicyCache {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for PolicyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl PolicyCache {
    /// A cache with the default bounds.
    pub fn new() -> Self {
        Self::with_bounds(MAX_DOCUMENT_BYTES, MAX_COMBINATIONS)
    }

    /// A cache holding at most `max_document_bytes` of documents and `max_combinations`
    /// combinations; either zero keeps nothing.
    pub fn with_bounds(max_document_bytes: usize, max_combinations: usize) -> Self {
        let inner = NonZeroUsize::new(max_combinations)
            .filter(|_| max_document_bytes > 0)
            .map(|combinations| {
                Mutex::new(Inner {
                    documents: LruCache::unbounded(),
                    document_bytes: 0,
                    combinations: LruCache::new(combinations),
                    known_budgets: LruCache::new(
                        NonZeroUsize::new(MAX_KNOWN_BUDGETS).expect("nonzero"),
                    ),
                    stats: CacheStats::default(),
                })
            });
        PolicyCache {
            inner,
            max_document_bytes,
        }
    }

    /// A cache that keeps nothing: every decision parses and combines its policies (the
    /// benchmark's reference path).
    pub fn disabled() -> Self {
        Self::with_bounds(0, 0)
    }

    /// What the cache did so far (all zero for a disabled cache).
    pub fn stats(&self) -> CacheStats {
        self.inner.as_ref().map_or_else(CacheStats::default, |m| {
            m.lock().unwrap_or_else(PoisonError::into_inner).stats
        })
    }

    /// The effective policy of `scopes` (each present scope with its owner: empty for global,
    /// the userId, the agentId), compiled or from the cache.
    pub fn effective(
        &self,
        scopes: &[(Scope, &str, &PolicyRecord)],
    ) -> Result<Arc<EffectivePolicy>, CombineError> {
        let keys: CombinationKey = scopes
            .iter()
            .map(|(scope, owner, record)| DocumentKey {
                scope: *scope,
                owner: (*owner).to_string(),
                version: record.version,
                len: record.document.len(),
            })
            .collect();
        let Some(inner) = &self.inner else {
            return build(scopes, |_, record| compile(record));
        };
        {
            let mut cache = lock(inner);
            if let Some(found) = cache.combinations.get(&keys).cloned() {
                cache.stats.hits += 1;
                remember_budgets(&mut cache, scopes, &found);
                return found;
            }
        }
        let result = build(scopes, |i, record| self.document(inner, &keys[i], record));
        let mut cache = lock(inner);
        cache.stats.combined += 1;
        remember_budgets(&mut cache, scopes, &result);
        // Only combinations of documents the cache holds are kept, so eviction can find them.
        if keys.iter().all(|k| cache.documents.contains(k)) {
            cache.combinations.put(keys, result.clone());
        }
        result
    }

    /// One document, compiled or from the cache.
    fn document(&self, inner: &Mutex<Inner>, key: &DocumentKey, record: &PolicyRecord) -> Compiled {
        if let Some((found, _)) = lock(inner).documents.get(key) {
            return found.clone();
        }
        let compiled = compile(record);
        let weight = record.document.len() + DOCUMENT_OVERHEAD_BYTES;
        let mut cache = lock(inner);
        cache.stats.compiled_documents += 1;
        if weight > self.max_document_bytes {
            return compiled;
        }
        if let Some((_, old)) = cache.documents.put(key.clone(), (compiled.clone(), weight)) {
            cache.document_bytes -= old;
        }
        cache.document_bytes += weight;
        while cache.document_bytes > self.max_document_bytes {
            let Some((evicted, (_, weight))) = cache.documents.pop_lru() else {
                break;
            };
            cache.document_bytes -= weight;
            let stale: Vec<CombinationKey> = cache
                .combinations
                .iter()
                .filter(|(k, _)| k.contains(&evicted))
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                cache.combinations.pop(&k);
            }
        }
        compiled
    }
}

impl PolicyCache {
    /// The budgets the global policy and this user's and agent's policies had when this
    /// container last decided on them: verify reads these counters in its one BatchGetItem. A
    /// policy never seen here (or changed since) adds nothing; reserve counts it anyway.
    pub fn known_budgets(&self, user_id: &str, agent_id: &str) -> Vec<BudgetClaim> {
        let Some(inner) = &self.inner else {
            return Vec::new();
        };
        let mut cache = lock(inner);
        [
            (Scope::Global, ""),
            (Scope::User, user_id),
            (Scope::Agent, agent_id),
        ]
        .into_iter()
        .filter_map(|(scope, owner)| cache.known_budgets.get(&owner_hash(scope, owner)).cloned())
        .flat_map(|claims| claims.iter().cloned().collect::<Vec<_>>())
        .collect()
    }
}

/// Notes each scope's budgets from a combination that worked.
fn remember_budgets(
    cache: &mut Inner,
    scopes: &[(Scope, &str, &PolicyRecord)],
    result: &Result<Arc<EffectivePolicy>, CombineError>,
) {
    let Ok(policy) = result else { return };
    for (scope, owner, _) in scopes {
        let key = owner_hash(*scope, owner);
        // The common case, no budgets anywhere, known as such already: a lookup only.
        if policy.budgets().is_empty()
            && cache.known_budgets.get(&key).is_some_and(|k| k.is_empty())
        {
            continue;
        }
        let wanted = scope.budget_scope();
        let claims: Arc<[BudgetClaim]> = policy
            .budgets()
            .iter()
            .filter(|b| b.scope == wanted)
            .cloned()
            .collect();
        cache.known_budgets.put(key, claims);
    }
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    // A panic while holding the lock leaves the maps consistent (every update is one call).
    inner.lock().unwrap_or_else(PoisonError::into_inner)
}

fn compile(record: &PolicyRecord) -> Compiled {
    CompiledPolicy::parse(&record.document).map(Arc::new)
}

/// Compiles (or fetches) each scope in order, the first invalid one refusing, then combines.
fn build(
    scopes: &[(Scope, &str, &PolicyRecord)],
    mut document: impl FnMut(usize, &PolicyRecord) -> Compiled,
) -> Result<Arc<EffectivePolicy>, CombineError> {
    let mut compiled = Vec::with_capacity(scopes.len());
    for (i, (scope, _, record)) in scopes.iter().enumerate() {
        compiled.push((
            *scope,
            document(i, record).map_err(|e| CombineError::Scope(*scope, e))?,
        ));
    }
    combine_compiled(compiled)
        .map(Arc::new)
        .map_err(CombineError::Combined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: u64, document: &str) -> PolicyRecord {
        PolicyRecord {
            version,
            document: document.into(),
        }
    }

    fn cap(cache: &PolicyCache, global: &PolicyRecord, user: &PolicyRecord) -> Option<u64> {
        cache
            .effective(&[(Scope::Global, "", global), (Scope::User, "u1", user)])
            .unwrap()
            .max_per_payment_micros()
    }

    #[test]
    fn a_warm_cache_compiles_each_document_once() {
        // GIVEN a global and a user policy
        let cache = PolicyCache::new();
        let global = record(3, r#"{"maxPerPayment":"5.00"}"#);
        let user = record(1, r#"{"maxPerPayment":"2.00"}"#);
        // WHEN three decisions ask for the same versions
        for _ in 0..3 {
            assert_eq!(cap(&cache, &global, &user), Some(2_000_000));
        }
        // THEN both documents were compiled once and combined once
        let stats = cache.stats();
        assert_eq!(
            (stats.compiled_documents, stats.combined, stats.hits),
            (2, 1, 2)
        );
    }

    #[test]
    fn a_new_version_is_used_on_the_very_next_decision() {
        let cache = PolicyCache::new();
        let global = record(1, "{}");
        assert_eq!(
            cap(&cache, &global, &record(1, r#"{"maxPerPayment":"2.00"}"#)),
            Some(2_000_000)
        );
        // WHEN the user's policy is put again (a new version) THEN the next decision sees it
        let tightened = record(2, r#"{"maxPerPayment":"0.50"}"#);
        assert_eq!(cap(&cache, &global, &tightened), Some(500_000));
        // AND the global document was not compiled again
        assert_eq!(cache.stats().compiled_documents, 3);
    }

    #[test]
    fn the_same_version_of_another_owner_is_another_document() {
        let cache = PolicyCache::new();
        let global = record(1, "{}");
        let u1 = record(1, r#"{"maxPerPayment":"2.00"}"#);
        let u2 = record(1, r#"{"maxPerPayment":"9.00"}"#);
        let of = |owner: &str, r: &PolicyRecord| {
            cache
                .effective(&[(Scope::Global, "", &global), (Scope::User, owner, r)])
                .unwrap()
                .max_per_payment_micros()
        };
        assert_eq!(of("u1", &u1), Some(2_000_000));
        assert_eq!(of("u2", &u2), Some(9_000_000));
        // AND a user scope and an agent scope with the same owner text and version differ
        let as_agent = cache
            .effective(&[(Scope::Global, "", &global), (Scope::Agent, "u1", &u2)])
            .unwrap();
        assert_eq!(as_agent.max_per_payment_micros(), Some(9_000_000));
    }

    #[test]
    fn a_same_version_hand_edit_of_another_length_is_compiled_again() {
        let cache = PolicyCache::new();
        let global = record(1, "{}");
        assert_eq!(
            cap(&cache, &global, &record(4, r#"{"maxPerPayment":"2.00"}"#)),
            Some(2_000_000)
        );
        assert_eq!(
            cap(&cache, &global, &record(4, r#"{"maxPerPayment":"0.5"}"#)),
            Some(500_000)
        );
    }

    #[test]
    fn an_invalid_document_is_refused_every_time_and_compiled_once() {
        let cache = PolicyCache::new();
        let bad = record(1, r#"{"maxPerPayment":"ten"}"#);
        for _ in 0..3 {
            let err = cache
                .effective(&[
                    (Scope::Global, "", &record(1, "{}")),
                    (Scope::User, "u1", &bad),
                ])
                .unwrap_err();
            assert!(matches!(
                err,
                CombineError::Scope(Scope::User, PolicyError::MaxPerPayment { .. })
            ));
        }
        assert_eq!(cache.stats().compiled_documents, 2);
    }

    #[test]
    fn documents_beyond_the_byte_bound_are_evicted_with_their_combinations() {
        // GIVEN room for two small documents
        let cache = PolicyCache::with_bounds(50 + 2 * DOCUMENT_OVERHEAD_BYTES, 16);
        let global = record(1, r#"{"maxPerPayment":"5.00"}"#); // 24 bytes
        let user = |v: u64| record(v, r#"{"consentRequired":true}"#); // 24 bytes
                                                                      // WHEN a second user document arrives THEN the least recently used one goes
        cap(&cache, &global, &user(1));
        cap(&cache, &global, &user(2));
        let inner = lock(cache.inner.as_ref().unwrap());
        assert_eq!(inner.document_bytes, 48 + 2 * DOCUMENT_OVERHEAD_BYTES);
        assert_eq!(inner.documents.len(), 2);
        // AND the combination holding the evicted document went with it
        assert_eq!(inner.combinations.len(), 1);
        for (key, _) in inner.combinations.iter() {
            assert!(key.iter().all(|k| inner.documents.contains(k)));
        }
    }

    #[test]
    fn tiny_documents_are_weighed_with_their_overhead() {
        // GIVEN room for 4 KiB WHEN a hundred `{}` documents arrive THEN at most four stay
        let cache = PolicyCache::with_bounds(4 * DOCUMENT_OVERHEAD_BYTES + 16, 1024);
        let global = record(1, "{}");
        for v in 1..=100 {
            cap(&cache, &global, &record(v, "{}"));
        }
        let inner = lock(cache.inner.as_ref().unwrap());
        assert!(inner.documents.len() <= 4, "{}", inner.documents.len());
        assert!(inner.document_bytes <= 4 * DOCUMENT_OVERHEAD_BYTES + 16);
    }

    #[test]
    fn a_disabled_cache_keeps_nothing_and_answers_the_same() {
        let cache = PolicyCache::disabled();
        let global = record(1, r#"{"maxPerPayment":"5.00"}"#);
        assert_eq!(cap(&cache, &global, &record(1, "{}")), Some(5_000_000));
        assert_eq!(cache.stats(), CacheStats::default());
    }

    #[test]
    fn combinations_beyond_their_bound_are_dropped_and_rebuilt() {
        let cache = PolicyCache::with_bounds(MAX_DOCUMENT_BYTES, 2);
        let global = record(1, "{}");
        for v in 1..=3 {
            cap(&cache, &global, &record(v, "{}"));
        }
        assert_eq!(cap(&cache, &global, &record(1, "{}")), None);
        let inner = lock(cache.inner.as_ref().unwrap());
        assert_eq!(inner.combinations.len(), 2);
        assert_eq!(inner.stats.combined, 4);
    }
}
