//! Integration tests against DynamoDB Local (and moto for Secrets Manager). One test binary.

mod common;
mod ledger_flow;
mod ledger_refusals;
mod secrets;
mod store;
mod verify_events;
mod verify_store;
