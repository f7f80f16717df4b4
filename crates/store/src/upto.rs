//! Posting an `upto` hold: the settlement charged at most the signed maximum the hold reserved,
//! so one transaction posts what it charged and returns the rest, to the session's available
//! (or, once a pooled session has closed, to its pool) and to every budget counter the reserve
//! charged. A report above the hold is posted too (no settlement is lost) and the excess is the
//! session's overdraft; the counters are not charged with it (Permit2 cannot move more than was
//! signed, so that report is false, and the overdraft and its alarm show it).

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use predebit_core::hold::{Hold, HoldState, SettlementRecord};
use predebit_core::ledger::{Transition, Write};
use predebit_core::store::StoreError;

use crate::dynamodb::DynamoStore;
use crate::ledger::{
    attr, budget_adjust, closed_pool_of, failed_condition, hold_key, n, names, old_item, s,
    session_key, update, values, TxOutcome, VOID_SESSION_CONDITION,
};
use crate::pools;

/// How an `upto` post splits the hold: what it posts, and what goes back or over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UptoSplit {
    /// The hold's reserved micro-USD.
    pub held: u64,
    /// What the settlement charged, in micro-USD (rounded up).
    pub posted: u64,
}

impl UptoSplit {
    pub(crate) fn of(hold: &Hold, settlement: &SettlementRecord) -> Self {
        UptoSplit {
            held: hold.amount_micros,
            posted: hold.posted_micros(settlement.reported_amount.as_deref()),
        }
    }

    /// What goes back: the hold less what was charged.
    pub(crate) fn returned(self) -> u64 {
        self.held.saturating_sub(self.posted)
    }

    /// What was reported above the hold.
    pub(crate) fn excess(self) -> u64 {
        self.posted.saturating_sub(self.held)
    }
}

impl DynamoStore {
    /// `from` (SENT, or PENDING when markSent never came) -> POSTED for an `upto` hold, in one
    /// transaction: the hold, the session and each budget counter (and the pool's credit when
    /// the session is a closed pooled one: found by a failed first try, then written so).
    pub(crate) async fn post_upto(
        &self,
        hold: &Hold,
        settlement: &SettlementRecord,
        from: HoldState,
        w: Write<'_>,
    ) -> Result<Transition, StoreError> {
        let split = UptoSplit::of(hold, settlement);
        let mut pooled: Option<(String, String)> = None;
        for _ in 0..2 {
            let mut items = vec![
                self.upto_hold_update(hold, settlement, from, split, w.now),
                self.upto_session_update(&hold.payment_session_id, split, pooled.is_some()),
            ];
            let returned = i128::from(split.returned());
            if returned > 0 {
                items.extend(
                    hold.budget_counters
                        .iter()
                        .map(|key| budget_adjust(key, -returned, 0, w.now, &self.tables().ledger)),
                );
            }
            if let Some((user, pool)) = &pooled {
                items.push(pools::give_back(
                    user,
                    pool,
                    split.returned(),
                    &self.tables().ledger,
                ));
            }
            let label = format!("{}/upto/{}/{pooled:?}", hold.payment_id, split.posted);
            match self.transact(items, w, &label).await? {
                TxOutcome::Committed => {
                    return Ok(Transition::Done(Some(Box::new(posted(
                        hold, settlement, from, split, w.now,
                    )))))
                }
                TxOutcome::Conflict => return Ok(Transition::Conflict),
                TxOutcome::Cancelled(reasons) if failed_condition(&reasons, 0) => {
                    return Ok(Transition::NotApplied(old_item(&reasons, 0, "hold")));
                }
                TxOutcome::Cancelled(reasons) => match closed_pool_of(&reasons) {
                    Some(found) if pooled.is_none() && split.returned() > 0 => pooled = Some(found),
                    _ => return Ok(Transition::NotApplied(None)),
                },
            }
        }
        Ok(Transition::Conflict)
    }

    fn upto_hold_update(
        &self,
        hold: &Hold,
        settlement: &SettlementRecord,
        from: HoldState,
        split: UptoSplit,
        now: u64,
    ) -> TransactWriteItem {
        let mut set =
            "SET #st = :posted, settlement = :settlement, postedAt = :now, settledMicros = :p"
                .to_string();
        let mut vals = vec![
            (":posted", s("POSTED")),
            (":from", s(from.as_str())),
            (":network", s(&settlement.network)),
            (":settlement", attr(settlement)),
            (":now", n(now)),
            (":p", n(split.posted)),
            (":m", n(split.held)),
        ];
        if from == HoldState::Pending {
            set.push_str(", markSentMissing = :missing");
            vals.push((":missing", AttributeValue::Bool(true)));
        }
        set.push_str(" REMOVE #shard");
        update(
            hold_key(&hold.payment_session_id, &hold.payment_id),
            &self.tables().ledger,
            &set,
            "#st = :from AND network = :network AND amountMicros = :m AND scheme = :upto",
            names(&[("#st", "state"), ("#shard", crate::tables::OPEN_SHARD)]),
            values({
                vals.push((":upto", s(&hold.scheme)));
                vals
            }),
        )
    }

    /// The session's side: reserved less the hold, settled plus what was charged, and the rest
    /// to available (to the pool's credit once a pooled session closed), or the excess to
    /// overdraft.
    fn upto_session_update(
        &self,
        session_id: &str,
        split: UptoSplit,
        closed_pooled: bool,
    ) -> TransactWriteItem {
        let mut vals = vec![(":m", n(split.held)), (":p", n(split.posted))];
        let (expression, condition) = if split.excess() > 0 {
            vals.push((":x", n(split.excess())));
            (
                "SET reservedMicros = reservedMicros - :m, settledMicros = settledMicros + :p, overdraftMicros = overdraftMicros + :x",
                "attribute_exists(pk)",
            )
        } else if split.returned() == 0 {
            (
                "SET reservedMicros = reservedMicros - :m, settledMicros = settledMicros + :p",
                "attribute_exists(pk)",
            )
        } else if closed_pooled {
            vals.push((":r", n(split.returned())));
            (
                "SET reservedMicros = reservedMicros - :m, settledMicros = settledMicros + :p, limitMicros = limitMicros - :r ADD returnedMicros :r",
                "attribute_exists(poolId) AND attribute_exists(closedAt)",
            )
        } else {
            vals.push((":r", n(split.returned())));
            (
                "SET reservedMicros = reservedMicros - :m, settledMicros = settledMicros + :p, availableMicros = availableMicros + :r",
                VOID_SESSION_CONDITION,
            )
        };
        update(
            session_key(session_id),
            &self.tables().ledger,
            expression,
            condition,
            None,
            values(vals),
        )
    }
}

/// `hold` as an `upto` post leaves it.
fn posted(
    hold: &Hold,
    settlement: &SettlementRecord,
    from: HoldState,
    split: UptoSplit,
    now: u64,
) -> Hold {
    let mut posted = hold.clone();
    posted.state = HoldState::Posted;
    posted.settlement = Some(settlement.clone());
    posted.posted_at = Some(now);
    posted.settled_micros = Some(split.posted);
    posted.open_shard = None;
    posted.mark_sent_missing |= from == HoldState::Pending;
    posted
}
