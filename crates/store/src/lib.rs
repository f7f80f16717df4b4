//! predebit's DynamoDB adapter: the table definitions (defined once, here), the one-request read
//! verify makes, the operator writes the CLI makes, and the key ring from Secrets Manager.
//!
//! Endpoints come from the standard AWS configuration chain only (for example
//! `AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local); nothing here takes a custom endpoint.

pub mod config;
pub mod dynamodb;
pub mod error;
pub mod iam;
pub mod in_doubt;
pub mod items;
pub mod ledger;
pub mod pools;
pub mod secrets;
pub mod seed;
pub mod tables;
mod upto;

pub use aws_sdk_dynamodb::Client as DynamoClient;
pub use aws_sdk_secretsmanager::Client as SecretsClient;
pub use dynamodb::DynamoStore;
pub use error::AdminError;
pub use tables::TableNames;
