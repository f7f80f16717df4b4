//! Enforcing mode's `authorize`: one call decides, reserves, has the payment signed, checks what
//! was signed and marks it sent, so predebit is the only path to a signature (DESIGN,
//! "Enforcing mode"). The signer is a port ([`Signer`]); the adapter calls AgentCore Payments.

pub mod event;
pub mod flow;
pub mod signer;

pub use event::{parse_authorize, AuthorizeRequest};
pub use flow::{AuthorizeConfig, AuthorizeContext, Authorized, Authorizer};
pub use signer::{SignError, SignRequest, Signed, Signer};
