//! The ledger's port: what the store does for each transition, in one conditional request.

use std::future::Future;

use crate::hold::{Hold, HoldState, SettlementRecord, SignedRecord};
use crate::reason::ReasonCode;
use crate::records::{PolicyVersions, SessionRecord};
use crate::store::StoreError;

/// Who asks for a write: the request (one Lambda invocation; the SDK's re-sends of it carry the
/// same id) and its clock. The store recognises the same request, so a write applied once is
/// never applied twice and its re-send answers as the first did.
#[derive(Clone, Copy, Debug)]
pub struct Write<'a> {
    /// Unique per invocation (the Lambda request id).
    pub request_id: &'a str,
    /// Epoch seconds.
    pub now: u64,
}

/// What `reserve` asks the store to do in one transaction.
#[derive(Clone, Debug)]
pub struct ReserveRequest {
    /// The new PENDING hold, sealed.
    pub hold: Hold,
    /// The session must belong to this user.
    pub user_id: String,
    /// Check the consent GRANTED and unexpired.
    pub consent_required: bool,
    /// Each version must be unchanged; `None` scopes must still be absent.
    pub policy_versions: PolicyVersions,
    /// The consent key needs the user and agent.
    pub agent_id: String,
    /// Epoch seconds.
    pub now: u64,
    /// The request asking (also on the hold as `lastRequestId`).
    pub request_id: String,
}

/// How `reserve` came out in the store.
#[derive(Clone, Debug)]
pub enum ReserveResult {
    /// The hold is in place.
    Held,
    /// A hold with this paymentId already exists (as found).
    Existing(Box<Hold>),
    /// A condition failed; nothing was written.
    Refused(ReasonCode, String),
    /// Conflicting transactions kept cancelling this one; nothing was written.
    Conflict,
}

/// How a hold transition came out in the store.
#[derive(Clone, Debug)]
// One value per store request; boxing the found hold would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Transition {
    /// Applied; the hold after the change when the store knows it without another read.
    Done(Option<Box<Hold>>),
    /// The hold was not in a state the change applies to; the hold as found, if any.
    NotApplied(Option<Hold>),
    /// Conflicting transactions kept cancelling this one.
    Conflict,
}

/// What `expire` found due.
#[derive(Clone, Debug, Default)]
pub struct DueHolds {
    /// The due holds, soonest first.
    pub holds: Vec<Hold>,
    /// Due index entries that could not be read as holds (left as they are, for an operator).
    pub unreadable: u64,
}

/// How opening a session came out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenResult {
    /// Created.
    Created(SessionRecord),
    /// Already open with the same terms.
    Same(SessionRecord),
    /// A session with this id exists with other terms; nothing changed.
    Different(SessionRecord),
}

/// The ledger's port: each method is one request on the happy path.
pub trait LedgerStore {
    /// One transaction: put the hold if absent; take the amount from the session if available,
    /// open, unexpired and the user's; check agent, consent and policy versions.
    fn reserve(
        &self,
        req: &ReserveRequest,
    ) -> impl Future<Output = Result<ReserveResult, StoreError>> + Send;
    /// PENDING -> SENT when the signed terms equal the hold's; the hold's expiry moves.
    fn mark_sent(
        &self,
        session_id: &str,
        payment_id: &str,
        signed: &SignedRecord,
        hold_expires_at: u64,
        w: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// `from` (SENT, or PENDING when markSent never arrived: the hold is then marked
    /// `markSentMissing`) -> POSTED, only on the settlement's network: reserved to settled.
    /// `amount_micros` is the caller's copy of the hold's amount: with it the change is one
    /// request (the condition checks it); without it the store reads the hold first.
    fn post(
        &self,
        session_id: &str,
        payment_id: &str,
        amount_micros: Option<u64>,
        settlement: &SettlementRecord,
        from: HoldState,
        w: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// VOIDED -> POSTED (`late`): settled grows, taken from available where it can be and from
    /// overdraft for the rest.
    fn post_late(
        &self,
        hold: &Hold,
        settlement: &SettlementRecord,
        w: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// A failed settlement on a SENT (or PENDING) hold on `network`: recorded; the hold stays
    /// open.
    fn record_failed_settlement(
        &self,
        session_id: &str,
        payment_id: &str,
        error: &str,
        network: &str,
        w: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// PENDING -> VOIDED: reserved back to available (`amount_micros` as for [`Self::post`]).
    fn release(
        &self,
        session_id: &str,
        payment_id: &str,
        amount_micros: Option<u64>,
        reason: &str,
        w: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// Open holds whose expiry has passed, from the open-holds index. An item that cannot be
    /// read as a hold is counted, not fatal: one bad record must not stop every expiry.
    fn due_holds(
        &self,
        now: u64,
        limit: usize,
    ) -> impl Future<Output = Result<DueHolds, StoreError>> + Send;
    /// Voids `hold` if it is still in the state it was found in and due.
    fn expire_hold(
        &self,
        hold: &Hold,
        w: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// A session and its holds, in one query.
    fn read_session(
        &self,
        session_id: &str,
    ) -> impl Future<Output = Result<Option<(SessionRecord, Vec<Hold>)>, StoreError>> + Send;
    /// One hold.
    fn read_hold(
        &self,
        session_id: &str,
        payment_id: &str,
    ) -> impl Future<Output = Result<Option<Hold>, StoreError>> + Send;
    /// Creates a session if absent.
    fn open_session(
        &self,
        session: &SessionRecord,
        w: Write<'_>,
    ) -> impl Future<Output = Result<OpenResult, StoreError>> + Send;
    /// Marks an OPEN session CLOSED. `None` when it does not exist; `(session, true)` when it was
    /// already closed (left as it was: the first reason stands).
    fn close_session(
        &self,
        session_id: &str,
        reason: &str,
        w: Write<'_>,
    ) -> impl Future<Output = Result<Option<(SessionRecord, bool)>, StoreError>> + Send;
}
