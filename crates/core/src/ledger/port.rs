//! The ledger's port: what the store does for each transition, in one conditional request.

use std::future::Future;

use crate::budget::CounterCharge;
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
    /// The budget counters to charge, each under its condition (the hold lists their keys).
    pub budget_charges: Vec<CounterCharge>,
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
    /// Pooled sessions past their expiry, still open: `expire` closes them, which gives their
    /// unspent part back to the pool.
    pub sessions: Vec<SessionRecord>,
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
    /// The named pool does not exist for this user; nothing was opened.
    PoolUnknown,
    /// The pool has less available than the limit; nothing was opened.
    PoolExceeded,
}

/// The most holds one getSession answer carries: a page of 100 settled holds measured 84 KB of
/// JSON, far below Lambda's 6 MB response limit, and one DynamoDB Query (1 MB) usually reads it.
pub const MAX_HOLDS_PER_PAGE: usize = 100;

/// A session with one page of its holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionPage {
    /// The session, as read with this page.
    pub session: SessionRecord,
    /// The page's holds, in descending paymentId order.
    pub holds: Vec<Hold>,
    /// The last hold's paymentId when more holds follow: the `after` of the next page.
    pub next_after: Option<String>,
}

/// A session with every one of its holds, read page by page (the operator's CLI; an agent reads
/// pages). Pages are separate reads: `session_changed` says whether the session differed
/// between them, i.e. the ledger wrote during the walk and the holds may not add up to the
/// balances shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WholeSession {
    /// The session, as read with the first page.
    pub session: SessionRecord,
    /// Every hold, in descending paymentId order, each once.
    pub holds: Vec<Hold>,
    /// How many pages were read.
    pub pages: usize,
    /// Whether a later page saw the session other than the first did.
    pub session_changed: bool,
}

/// Reads a session and all its holds, following the pages to the end.
pub async fn read_whole_session<S: LedgerStore + Sync>(
    store: &S,
    session_id: &str,
) -> Result<Option<WholeSession>, StoreError> {
    let Some(first) = store
        .read_session_page(session_id, None, MAX_HOLDS_PER_PAGE)
        .await?
    else {
        return Ok(None);
    };
    let mut whole = WholeSession {
        session: first.session,
        holds: first.holds,
        pages: 1,
        session_changed: false,
    };
    let mut after = first.next_after;
    while let Some(cursor) = after {
        // A session gone between pages is a change too; what was read is still returned.
        let Some(page) = store
            .read_session_page(session_id, Some(&cursor), MAX_HOLDS_PER_PAGE)
            .await?
        else {
            whole.session_changed = true;
            break;
        };
        // Pages go down in paymentId; one that does not would never end.
        if page.next_after.as_ref().is_some_and(|next| *next >= cursor) {
            return Err(StoreError::Malformed(
                "a page of holds did not advance".into(),
            ));
        }
        whole.pages += 1;
        whole.session_changed |= page.session != whole.session;
        whole.holds.extend(page.holds);
        after = page.next_after;
    }
    Ok(Some(whole))
}

/// The ledger's port: each method is one request on the happy path.
pub trait LedgerStore {
    /// One transaction: put the hold if absent; take the amount from the session if available,
    /// open, unexpired and the user's; charge each budget counter if it has room; check agent,
    /// consent and policy versions.
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
    /// overdraft for the rest; the budget counters count it again, without a condition (it was
    /// paid).
    fn post_late(
        &self,
        hold: &Hold,
        settlement: &SettlementRecord,
        w: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// A failed settlement on a SENT (or PENDING) hold on `network`: recorded; the hold stays
    /// open. A pending one (`pending_transaction`: broadcast, not yet final) records its
    /// transaction instead of counting a failure.
    fn record_failed_settlement(
        &self,
        session_id: &str,
        payment_id: &str,
        error: &str,
        network: &str,
        pending_transaction: Option<&str>,
        w: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// PENDING -> VOIDED: reserved back to available, and the amount back to every budget
    /// counter the hold charged (`amount_micros` as for [`Self::post`]).
    fn release(
        &self,
        session_id: &str,
        payment_id: &str,
        amount_micros: Option<u64>,
        reason: &str,
        w: Write<'_>,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
    /// Open holds whose expiry has passed, from the open-holds index, and the open pooled
    /// sessions past theirs (the same index holds them). An item that cannot be read is counted,
    /// not fatal: one bad record must not stop every expiry.
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
    /// The session and one page of its holds: at most `limit` (callers pass at most
    /// [`MAX_HOLDS_PER_PAGE`]), in descending paymentId order, starting below the paymentId
    /// `after` (exclusive) when given. `limit` 0 reads the session alone. `None` when the
    /// session does not exist.
    fn read_session_page(
        &self,
        session_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Option<SessionPage>, StoreError>> + Send;
    /// One hold.
    fn read_hold(
        &self,
        session_id: &str,
        payment_id: &str,
    ) -> impl Future<Output = Result<Option<Hold>, StoreError>> + Send;
    /// Creates a session if absent; with a pool, takes its limit from the pool's available in
    /// the same transaction.
    fn open_session(
        &self,
        session: &SessionRecord,
        w: Write<'_>,
    ) -> impl Future<Output = Result<OpenResult, StoreError>> + Send;
    /// Marks an OPEN session CLOSED (a pooled one gives its available back to the pool, in the
    /// same transaction). `None` when it does not exist; `(session, true)` when it was already
    /// closed (left as it was: the first reason stands).
    fn close_session(
        &self,
        session_id: &str,
        reason: &str,
        w: Write<'_>,
    ) -> impl Future<Output = Result<Option<(SessionRecord, bool)>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::records::SessionStatus;

    fn session(reserved_micros: u64) -> SessionRecord {
        SessionRecord {
            payment_session_id: "ps1".into(),
            user_id: "u1".into(),
            limit_micros: 10,
            reserved_micros,
            settled_micros: 0,
            available_micros: 10 - reserved_micros,
            overdraft_micros: 0,
            expires_at: 1,
            status: SessionStatus::Open,
            open_request_id: None,
            pool_id: None,
            returned_micros: 0,
        }
    }

    /// Answers `read_session_page` from a script of pages, in order; nothing else is called.
    struct Pages(Mutex<Vec<Option<SessionPage>>>);

    impl Pages {
        fn page(&self) -> Result<Option<SessionPage>, StoreError> {
            Ok(self.0.lock().unwrap().remove(0))
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        match pin!(future)
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the scripted store never waits"),
        }
    }

    fn page(reserved: u64, holds: &[&str], next: Option<&str>) -> Option<SessionPage> {
        let keys = crate::keys::KeyRing::from_secret_json(&crate::keys::KeyRing::new_secret_json(
            "k1", &[5; 32], &[6; 32],
        ))
        .unwrap();
        Some(SessionPage {
            session: session(reserved),
            holds: holds
                .iter()
                .map(|id| crate::hold::tests::fixture(id, HoldState::Pending, 1, &keys))
                .collect(),
            next_after: next.map(str::to_string),
        })
    }

    macro_rules! unused {
        ($($name:ident($($arg:ty),*) -> $out:ty;)*) => {
            $(fn $name(&self, $(_: $arg),*) -> impl Future<Output = Result<$out, StoreError>> + Send {
                async { unreachable!("read_whole_session reads pages only") }
            })*
        };
    }

    impl LedgerStore for Pages {
        fn read_session_page(
            &self,
            _: &str,
            _: Option<&str>,
            _: usize,
        ) -> impl Future<Output = Result<Option<SessionPage>, StoreError>> + Send {
            std::future::ready(self.page())
        }
        unused! {
            reserve(&ReserveRequest) -> ReserveResult;
            mark_sent(&str, &str, &SignedRecord, u64, Write<'_>) -> Transition;
            post(&str, &str, Option<u64>, &SettlementRecord, HoldState, Write<'_>) -> Transition;
            post_late(&Hold, &SettlementRecord, Write<'_>) -> Transition;
            record_failed_settlement(&str, &str, &str, &str, Option<&str>, Write<'_>) -> Transition;
            release(&str, &str, Option<u64>, &str, Write<'_>) -> Transition;
            due_holds(u64, usize) -> DueHolds;
            expire_hold(&Hold, Write<'_>) -> Transition;
            read_hold(&str, &str) -> Option<Hold>;
            open_session(&SessionRecord, Write<'_>) -> OpenResult;
            close_session(&str, &str, Write<'_>) -> Option<(SessionRecord, bool)>;
        }
    }

    #[test]
    fn a_whole_session_is_every_page_and_a_session_that_changed_between_pages_is_noticed() {
        // GIVEN three pages, the last seeing the session with another balance
        let store = Pages(Mutex::new(vec![
            page(3, &["c"], Some("c")),
            page(3, &["b"], Some("b")),
            page(4, &["a"], None),
        ]));
        // WHEN read whole
        let whole = block_on(read_whole_session(&store, "ps1"))
            .unwrap()
            .unwrap();
        // THEN all holds in order, three pages, the first page's session, and the change noticed
        let ids: Vec<&str> = whole.holds.iter().map(|h| h.payment_id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "a"]);
        assert_eq!(
            (
                whole.pages,
                whole.session.reserved_micros,
                whole.session_changed
            ),
            (3, 3, true)
        );
    }

    #[test]
    fn a_whole_session_read_without_writes_between_pages_is_unchanged() {
        let store = Pages(Mutex::new(vec![
            page(3, &["c"], Some("c")),
            page(3, &["b"], None),
        ]));
        let whole = block_on(read_whole_session(&store, "ps1"))
            .unwrap()
            .unwrap();
        assert_eq!((whole.holds.len(), whole.session_changed), (2, false));
    }

    #[test]
    fn a_page_that_does_not_go_down_in_payment_id_is_an_error_not_an_endless_walk() {
        let store = Pages(Mutex::new(vec![
            page(3, &["c"], Some("c")),
            page(3, &["c"], Some("c")),
        ]));
        assert!(matches!(
            block_on(read_whole_session(&store, "ps1")),
            Err(StoreError::Malformed(_))
        ));
    }
}
