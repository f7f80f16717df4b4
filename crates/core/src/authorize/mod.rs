//! Enforcing mode's `authorize`: one call decides, reserves, has the payment signed, checks what
//! was signed and marks it sent, so predebit is the only path to a signature (DESIGN,
//! "Enforcing mode").

pub mod event;

pub use event::{parse_authorize, AuthorizeRequest};
