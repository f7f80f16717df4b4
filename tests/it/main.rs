//! Integration tests against DynamoDB Local (and moto for Secrets Manager). One test binary.

mod audit_check;
mod authorize;
mod authorize_agentcore;
mod common;
mod ledger_agentcore_sessions;
mod ledger_budgets;
mod ledger_events;
mod ledger_flow;
mod ledger_hold_token;
mod ledger_pages;
mod ledger_pending;
mod ledger_pools;
mod ledger_race;
mod ledger_refusals;
mod ledger_upto;
mod ledger_window;
mod logs;
mod secrets;
mod store;
mod store_resend;
mod template;
mod verify_events;
mod verify_store;
