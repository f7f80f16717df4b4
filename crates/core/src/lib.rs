//! predebit's domain: everything that decides, with no I/O and no AWS imports.
//!
//! The modules follow the flow in DESIGN.md: parse the x402 requirement, convert its amount
//! through the trusted asset table, evaluate policy and the registry, and produce a decision
//! with its audit record and, on YES, a decision token.

pub mod address;
pub mod asset;
pub mod audit;
pub mod audit_check;
pub mod authorize;
pub mod budget;
pub mod canonical;
pub mod decision;
pub mod eip712;
pub mod hold;
pub mod hold_token;
pub mod keys;
pub mod ledger;
pub mod memory;
pub mod metrics;
pub mod money;
pub mod mpp;
pub mod network;
pub mod payload;
pub mod payment_id;
pub mod payment_session;
pub mod policy;
pub mod reason;
pub mod records;
pub mod request_url;
pub mod signed_check;
pub mod store;
pub mod token;
pub mod verify;
pub mod x402;
