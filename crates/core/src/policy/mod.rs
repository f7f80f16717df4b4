//! Policies: the stored documents (global, user, agent scope), each compiled once into hash
//! sets, their combination into the one effective policy a decision checks, and the cache that
//! keeps compiled documents across decisions in a warm container.
//!
//! Every policy that exists applies. A field absent from a document puts no restriction at that
//! scope; a present but empty list allows nothing. Allow-lists intersect across scopes, deny-lists
//! unite, limits take the minimum, consent is required if any scope requires it.
//!
//! Merchant rules judge the URL the tool requested: by host (`allowedHosts`, `blockedHosts`:
//! `api.example.com`, `*.example.com`) and by URL (`allowedUrls`, `blockedUrls`:
//! `https://api.example.com/v1/`, scheme, host or `*.` wildcard, port, and a path prefix matched
//! by whole percent-decoded segments). A requested path servers could read otherwise (an encoded
//! slash, a dot or empty segment, ...) passes no URL allow-list and is blocked by any URL
//! deny-list of its origin; without a requested URL, any URL rule fails closed.

mod cache;
mod compiled;
mod document;
mod effective;
mod url_rules;

pub use cache::{
    CacheStats, CombineError, PolicyCache, Scope, MAX_COMBINATIONS, MAX_DOCUMENT_BYTES,
};
pub use compiled::CompiledPolicy;
pub use document::{PolicyDocument, PolicyError, POLICY_FIELDS};
pub use effective::{
    combine, combine_compiled, EffectivePolicy, DEFAULT_MAX_AUTHORIZATION_SECONDS,
    MAX_AUTHORIZATION_CEILING_SECONDS,
};
