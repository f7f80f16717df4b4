//! The ledger on DynamoDB: every change is one conditional request (a TransactWriteItems when the
//! hold and the session change together), and a failed condition reports the item as found.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use predebit_core::budget::{CounterCharge, CounterKey, COUNTER_KEEP_SECONDS};
use predebit_core::hold::{all_open_shards, Hold, HoldState, SettlementRecord, SignedRecord};
use predebit_core::ledger::port::{SessionPage, MAX_HOLDS_PER_PAGE};
use predebit_core::ledger::{
    agent_refusal, consent_refusal, session_refusal, DueHolds, LedgerStore, OpenResult,
    ReserveRequest, ReserveResult, Transition, Write, EXPIRED,
};
use predebit_core::reason::ReasonCode;
use predebit_core::records::{
    AgentRecord, ConsentRecord, PoolRecord, SessionRecord, SessionStatus,
};
use predebit_core::store::StoreError;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::dynamodb::DynamoStore;
use crate::error::unavailable;
use crate::items::{
    self, agent_pk, agent_policy_pk, consent_pk, global_policy_pk, pk_key, pk_sk_key, session_pk,
    user_policy_pk, Item, SESSION_SK,
};
use crate::pools;
use crate::tables::{COUNTER_TTL, HOLD_EXPIRES_AT, OPEN_HOLDS_INDEX, OPEN_SHARD, PK, SK};

/// Attempts for a transaction cancelled only by conflicting transactions.
pub const MAX_TRANSACTION_ATTEMPTS: u32 = 8;

/// What every hold's sort key starts with; it sorts before `SESSION`.
pub const HOLD_SK_PREFIX: &str = "HOLD#";

/// `HOLD#<paymentId>`.
pub fn hold_sk(payment_id: &str) -> String {
    format!("{HOLD_SK_PREFIX}{payment_id}")
}

pub(crate) fn hold_key(session_id: &str, payment_id: &str) -> Item {
    pk_sk_key(session_pk(session_id), &hold_sk(payment_id))
}

pub(crate) fn session_key(session_id: &str) -> Item {
    pk_sk_key(session_pk(session_id), SESSION_SK)
}

pub(crate) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

pub(crate) fn attr<T: serde::Serialize>(value: &T) -> AttributeValue {
    serde_dynamo::to_attribute_value(value).expect("ledger records serialize")
}

pub(crate) fn names(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

pub(crate) fn values(
    pairs: Vec<(&str, AttributeValue)>,
) -> Option<HashMap<String, AttributeValue>> {
    Some(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The ClientRequestToken of one transaction of a request: the same for the SDK's re-sends of
/// it (so DynamoDB applies it once), different for each transaction and conflict retry of the
/// request (a token reused with other parameters would be refused). 36 characters at most.
fn client_token(request_id: &str, label: &str, attempt: u32) -> String {
    let digest = Sha256::digest(format!("{request_id}\0{label}\0{attempt}").as_bytes());
    digest.iter().take(18).map(|b| format!("{b:02x}")).collect()
}

/// Whether `found` is this request's own earlier single-item write (its answer was lost and the
/// SDK re-sent it). Transactions need no such check: their ClientRequestToken makes DynamoDB
/// apply a re-send once and answer it as the first.
fn written_by(found: &Hold, w: Write<'_>) -> bool {
    found.last_request_id.as_deref() == Some(w.request_id)
}

/// How a transaction ended.
pub(crate) enum TxOutcome {
    Committed,
    /// Cancelled by a failed condition: one reason per item, in item order.
    Cancelled(Vec<CancellationReason>),
    Conflict,
}

fn is_conflict(reasons: &[CancellationReason]) -> bool {
    let code = |r: &CancellationReason| r.code().unwrap_or("None").to_string();
    reasons.iter().any(|r| code(r) == "TransactionConflict")
        && !reasons.iter().any(|r| code(r) == "ConditionalCheckFailed")
}

pub(crate) fn failed_condition(reasons: &[CancellationReason], index: usize) -> bool {
    reasons.get(index).and_then(|r| r.code()) == Some("ConditionalCheckFailed")
}

pub(crate) fn old_item<T: serde::de::DeserializeOwned>(
    reasons: &[CancellationReason],
    index: usize,
    what: &str,
) -> Option<T> {
    let item = reasons.get(index)?.item()?.clone();
    items::from_item(item, what).ok()
}

pub(crate) fn update(
    key: Item,
    table: &str,
    expression: &str,
    condition: &str,
    names_: Option<HashMap<String, String>>,
    values_: Option<HashMap<String, AttributeValue>>,
) -> TransactWriteItem {
    TransactWriteItem::builder()
        .update(
            Update::builder()
                .table_name(table)
                .set_key(Some(key))
                .update_expression(expression)
                .condition_expression(condition)
                .set_expression_attribute_names(names_)
                .set_expression_attribute_values(values_)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .expect("update has key, table and expression"),
        )
        .build()
}

fn check(
    key: Item,
    table: &str,
    condition: &str,
    names_: Option<HashMap<String, String>>,
    values_: Option<HashMap<String, AttributeValue>>,
) -> TransactWriteItem {
    TransactWriteItem::builder()
        .condition_check(
            ConditionCheck::builder()
                .table_name(table)
                .set_key(Some(key))
                .condition_expression(condition)
                .set_expression_attribute_names(names_)
                .set_expression_attribute_values(values_)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .expect("condition check has key, table and condition"),
        )
        .build()
}

/// Adds one payment to a budget counter (created at the first), under the charge's limits:
/// conditions cannot add, so each says how much the counter may hold before the payment.
fn budget_charge(charge: &CounterCharge, table: &str) -> TransactWriteItem {
    let mut conditions = Vec::new();
    let mut vals = vec![
        (":m", n(charge.micros)),
        (":one", n(1)),
        (":ttl", n(charge.ttl)),
    ];
    if let Some(max) = charge.max_micros_before {
        conditions.push("(attribute_not_exists(spentMicros) OR spentMicros <= :maxm)");
        vals.push((":maxm", n(max)));
    }
    if let Some(max) = charge.max_count_before {
        conditions.push("(attribute_not_exists(paymentCount) OR paymentCount <= :maxc)");
        vals.push((":maxc", n(max)));
    }
    // Every budget has a limit; a charge without one (none today) is still one item, always true.
    let condition = if conditions.is_empty() {
        "attribute_not_exists(pk) OR attribute_exists(pk)".to_string()
    } else {
        conditions.join(" AND ")
    };
    update(
        pk_sk_key(charge.key.pk.clone(), &charge.key.sk),
        table,
        "SET #ttl = if_not_exists(#ttl, :ttl) ADD spentMicros :m, paymentCount :one",
        &condition,
        names(&[("#ttl", COUNTER_TTL)]),
        values(vals),
    )
}

/// Moves `micros` and `count` payments into (positive) or out of (negative) a budget counter,
/// without a condition: a void returns what its reserve charged; a late settlement counts what
/// was paid. A counter already deleted by its `ttl` comes back with a `ttl` of `now` + a week,
/// so the stray item leaves again.
pub(crate) fn budget_adjust(
    key: &CounterKey,
    micros: i128,
    count: i64,
    now: u64,
    table: &str,
) -> TransactWriteItem {
    TransactWriteItem::builder()
        .update(
            Update::builder()
                .table_name(table)
                .set_key(Some(pk_sk_key(key.pk.clone(), &key.sk)))
                .update_expression(
                    "SET #ttl = if_not_exists(#ttl, :ttl) ADD spentMicros :m, paymentCount :c",
                )
                .expression_attribute_names("#ttl", COUNTER_TTL)
                .expression_attribute_values(":m", AttributeValue::N(micros.to_string()))
                .expression_attribute_values(":c", AttributeValue::N(count.to_string()))
                .expression_attribute_values(
                    ":ttl",
                    AttributeValue::N(now.saturating_add(COUNTER_KEEP_SECONDS).to_string()),
                )
                .build()
                .expect("update has key, table and expression"),
        )
        .build()
}

impl DynamoStore {
    /// Runs one transaction; retries with jittered backoff while it is cancelled only by
    /// conflicting transactions, a bounded number of times.
    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        w: Write<'_>,
        label: &str,
    ) -> Result<TxOutcome, StoreError> {
        for attempt in 0..MAX_TRANSACTION_ATTEMPTS {
            let result = self
                .client()
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(client_token(w.request_id, label, attempt))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(TxOutcome::Committed),
                Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                    TransactWriteItemsError::TransactionCanceledException(e) => {
                        let reasons = e.cancellation_reasons().to_vec();
                        if !is_conflict(&reasons) {
                            return Ok(TxOutcome::Cancelled(reasons));
                        }
                    }
                    other => {
                        return Err(StoreError::Unavailable(format!(
                            "TransactWriteItems: {other}"
                        )))
                    }
                },
                Err(other) => return Err(unavailable(other)),
            }
            let cap = 10u64 << attempt.min(5);
            let delay = rand::rng().random_range(1..=cap);
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        Ok(TxOutcome::Conflict)
    }

    /// The session item of `pk`, strongly consistent. A Query rather than a GetItem, so that
    /// getSession needs only `dynamodb:Query`, as the admin deployment is granted.
    async fn query_session(&self, pk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(&self.tables().ledger)
            .key_condition_expression("#pk = :pk AND #sk = :session")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":session", s(SESSION_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.items.unwrap_or_default().into_iter().next())
    }

    /// The session partition from `SESSION` down through every `HOLD#`, in descending key
    /// order, strongly consistent, below `start` when given: the session item if the range
    /// reaches it, and up to `want_holds` holds. Items of any other kind are skipped. Query pages
    /// end at 1 MB, so it asks again until it has the holds or the partition ends.
    async fn query_descending(
        &self,
        pk: &str,
        mut start: Option<Item>,
        want_holds: usize,
    ) -> Result<(Option<Item>, Vec<Item>), StoreError> {
        // Without a start the first item is the session's: room for it in the first request.
        let mut session_ahead = usize::from(start.is_none());
        let (mut session, mut holds) = (None, Vec::with_capacity(want_holds));
        while holds.len() < want_holds {
            let out = self
                .client()
                .query()
                .table_name(&self.tables().ledger)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :holds AND :session")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":holds", s(HOLD_SK_PREFIX))
                .expression_attribute_values(":session", s(SESSION_SK))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(i32::try_from(want_holds - holds.len() + session_ahead).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            session_ahead = 0;
            for item in out.items.unwrap_or_default() {
                match items::string_attr(&item, SK) {
                    Some(SESSION_SK) => session = Some(item),
                    Some(sk) if sk.starts_with(HOLD_SK_PREFIX) => holds.push(item),
                    _ => {}
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok((session, holds))
    }

    pub(crate) async fn get_hold(
        &self,
        session_id: &str,
        payment_id: &str,
    ) -> Result<Option<Hold>, StoreError> {
        self.get_ledger_item(hold_key(session_id, payment_id), "hold")
            .await
    }

    /// One Ledger-table item (a hold, a pool), strongly consistent, read as `T`.
    pub(crate) async fn get_ledger_item<T: serde::de::DeserializeOwned>(
        &self,
        key: Item,
        what: &str,
    ) -> Result<Option<T>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(&self.tables().ledger)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item.map(|i| items::from_item(i, what)).transpose()
    }

    /// The two updates that move a hold's amount: the hold's own change and the session's.
    #[allow(clippy::too_many_arguments)]
    fn hold_and_session(
        &self,
        session_id: &str,
        payment_id: &str,
        amount_micros: u64,
        hold_set: &str,
        hold_condition: &str,
        hold_values: Vec<(&str, AttributeValue)>,
        session_set: &str,
        session_condition: &str,
    ) -> Vec<TransactWriteItem> {
        let mut hv = hold_values;
        hv.push((":m", n(amount_micros)));
        vec![
            update(
                hold_key(session_id, payment_id),
                &self.tables().ledger,
                hold_set,
                &format!("({hold_condition}) AND amountMicros = :m"),
                names(&[("#st", "state"), ("#shard", OPEN_SHARD)]),
                values(hv),
            ),
            update(
                session_key(session_id),
                &self.tables().ledger,
                session_set,
                session_condition,
                None,
                values(vec![(":m", n(amount_micros))]),
            ),
        ]
    }

    /// A hold transition with a session update. The amount comes from the caller's hint (checked
    /// by the condition), else from one read of the hold; a wrong hint is corrected from the hold
    /// the failed condition returns, so nothing moves by a wrong amount. With `void`, the amount
    /// also goes back to every budget counter the hold charged: on the hint path the first try
    /// assumes none (and says so in its condition), and a hold that has some is retried with
    /// them, so no counter is ever left charged for a voided hold.
    #[allow(clippy::too_many_arguments)]
    async fn move_amount(
        &self,
        session_id: &str,
        payment_id: &str,
        amount_hint: Option<u64>,
        hold_set: &str,
        hold_condition: &str,
        hold_values: Vec<(&str, AttributeValue)>,
        session_set: &str,
        void: bool,
        w: Write<'_>,
    ) -> Result<Transition, StoreError> {
        let (mut amount, mut counters) = match amount_hint {
            Some(m) => (m, None),
            None => match self.get_hold(session_id, payment_id).await? {
                Some(h) => (h.amount_micros, Some(h.budget_counters)),
                None => return Ok(Transition::NotApplied(None)),
            },
        };
        // A void on a closed pooled session gives the amount back to the pool: the first try
        // assumes the session is not one (and says so in its condition).
        let mut pooled: Option<(String, String)> = None;
        for _ in 0..3 {
            let condition = match (void, &counters) {
                (true, None) => {
                    format!("({hold_condition}) AND attribute_not_exists(budgetCounters)")
                }
                _ => hold_condition.to_string(),
            };
            let mut items = self.hold_and_session(
                session_id,
                payment_id,
                amount,
                hold_set,
                &condition,
                hold_values.clone(),
                session_set,
                if void {
                    VOID_SESSION_CONDITION
                } else {
                    "attribute_exists(pk)"
                },
            );
            if void {
                items.extend(counters.iter().flatten().map(|key| {
                    budget_adjust(key, -i128::from(amount), -1, w.now, &self.tables().ledger)
                }));
                if let Some((user, pool)) = &pooled {
                    let credit = self.void_into_pool(&mut items, session_id, user, pool, amount);
                    items.push(credit);
                }
            }
            let label = format!("{payment_id}/{hold_set}/{condition}/{amount}/{pooled:?}");
            match self.transact(items, w, &label).await? {
                TxOutcome::Committed => return Ok(Transition::Done(None)),
                TxOutcome::Conflict => return Ok(Transition::Conflict),
                TxOutcome::Cancelled(reasons) if void && !failed_condition(&reasons, 0) => {
                    match closed_pool_of(&reasons) {
                        Some(found) if pooled.is_none() => pooled = Some(found),
                        _ => return Ok(Transition::NotApplied(None)),
                    }
                }
                TxOutcome::Cancelled(reasons) => match old_item::<Hold>(&reasons, 0, "hold") {
                    Some(found)
                        if found.amount_micros != amount
                            || (void
                                && counters.is_none()
                                && !found.budget_counters.is_empty()) =>
                    {
                        amount = found.amount_micros;
                        counters = Some(found.budget_counters);
                    }
                    found => return Ok(Transition::NotApplied(found)),
                },
            }
        }
        Ok(Transition::Conflict)
    }

    /// Turns a void's session update into the one for a closed pooled session (reserved and
    /// the limit shrink, the amount counts as returned) and adds the pool's credit.
    #[must_use = "the pool's credit must join the transaction"]
    fn void_into_pool(
        &self,
        items: &mut [TransactWriteItem],
        session_id: &str,
        user_id: &str,
        pool_id: &str,
        micros: u64,
    ) -> TransactWriteItem {
        let table = &self.tables().ledger;
        items[0] = mark_returned_to_pool(&items[0], &pools::pool_pk(user_id, pool_id));
        items[1] = update(
            session_key(session_id),
            table,
            "SET reservedMicros = reservedMicros - :m, limitMicros = limitMicros - :m ADD returnedMicros :m",
            "attribute_exists(poolId) AND attribute_exists(closedAt)",
            None,
            values(vec![(":m", n(micros))]),
        );
        pools::give_back(user_id, pool_id, micros, table)
    }
}

/// The hold's void update, also marking it `returnedToPool` (so a late settlement of it takes
/// the amount back from the pool).
fn mark_returned_to_pool(item: &TransactWriteItem, pool_pk: &str) -> TransactWriteItem {
    let Some(u) = item.update() else {
        return item.clone();
    };
    let mut values = u.expression_attribute_values().cloned().unwrap_or_default();
    values.insert(":rtp".into(), AttributeValue::S(pool_pk.to_string()));
    TransactWriteItem::builder()
        .update(
            Update::builder()
                .table_name(u.table_name())
                .set_key(Some(u.key().clone()))
                .update_expression(u.update_expression().replacen(
                    "SET ",
                    "SET returnedToPool = :rtp, ",
                    1,
                ))
                .set_condition_expression(u.condition_expression().map(str::to_string))
                .set_expression_attribute_names(u.expression_attribute_names().cloned())
                .set_expression_attribute_values(Some(values))
                .set_return_values_on_condition_check_failure(
                    u.return_values_on_condition_check_failure().cloned(),
                )
                .build()
                .expect("the update it copies had key, table and expression"),
        )
        .build()
}

/// `hold` as a late settlement leaves it: POSTED, late, out of the open-holds index.
pub(crate) fn late_posted(hold: &Hold, settlement: &SettlementRecord, now: u64) -> Hold {
    let mut posted = hold.clone();
    if hold.is_upto() {
        posted.settled_micros = Some(hold.posted_micros(settlement.reported_amount.as_deref()));
    }
    posted.state = HoldState::Posted;
    posted.late = true;
    posted.settlement = Some(settlement.clone());
    posted.posted_at = Some(now);
    posted.open_shard = None;
    posted.returned_to_pool = None;
    posted
}

/// A void's condition on the session: not a closed pooled one (whose void gives back to the
/// pool instead, see [`DynamoStore::void_into_pool`]).
pub(crate) const VOID_SESSION_CONDITION: &str =
    "attribute_exists(pk) AND (attribute_not_exists(poolId) OR attribute_not_exists(closedAt))";

/// The (user, pool) of the closed pooled session a void's failed session condition returned.
pub(crate) fn closed_pool_of(reasons: &[CancellationReason]) -> Option<(String, String)> {
    if !failed_condition(reasons, 1) {
        return None;
    }
    let session: SessionRecord = old_item(reasons, 1, "session")?;
    Some((session.user_id, session.pool_id?))
}

impl LedgerStore for DynamoStore {
    async fn reserve(&self, req: &ReserveRequest) -> Result<ReserveResult, StoreError> {
        let hold = &req.hold;
        let t = self.tables();
        let item = items::to_item(hold, hold_key(&hold.payment_session_id, &hold.payment_id))?;
        let mut tx = vec![
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&t.ledger)
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(pk)")
                        .return_values_on_condition_check_failure(
                            ReturnValuesOnConditionCheckFailure::AllOld,
                        )
                        .build()
                        .expect("put has table and item"),
                )
                .build(),
            update(
                session_key(&hold.payment_session_id),
                &t.ledger,
                "SET availableMicros = availableMicros - :m, reservedMicros = reservedMicros + :m",
                "availableMicros >= :m AND #status = :open AND expiresAt > :now AND userId = :user",
                names(&[("#status", "status")]),
                values(vec![
                    (":m", n(hold.amount_micros)),
                    (":open", s("OPEN")),
                    (":now", n(req.now)),
                    (":user", s(&req.user_id)),
                ]),
            ),
            check(
                pk_key(agent_pk(&req.agent_id)),
                &t.registry,
                "#status = :active AND userId = :user",
                names(&[("#status", "status")]),
                values(vec![(":active", s("ACTIVE")), (":user", s(&req.user_id))]),
            ),
        ];
        let mut checks: Vec<&str> = vec!["hold", "session", "agent"];
        if req.consent_required {
            tx.push(check(
                pk_key(consent_pk(&req.user_id, &req.agent_id)),
                &t.registry,
                "#status = :granted AND (attribute_not_exists(expiresAt) OR expiresAt > :now)",
                names(&[("#status", "status")]),
                values(vec![(":granted", s("GRANTED")), (":now", n(req.now))]),
            ));
            checks.push("consent");
        }
        let v = req.policy_versions;
        for (pk, version) in [
            (global_policy_pk(), v.global),
            (user_policy_pk(&req.user_id), v.user),
            (agent_policy_pk(&req.agent_id), v.agent),
        ] {
            tx.push(match version {
                Some(version) => check(
                    pk_key(pk),
                    &t.policies,
                    "version = :v",
                    None,
                    values(vec![(":v", n(version))]),
                ),
                None => check(
                    pk_key(pk),
                    &t.policies,
                    "attribute_not_exists(pk)",
                    None,
                    None,
                ),
            });
            checks.push("policy");
        }
        for charge in &req.budget_charges {
            tx.push(budget_charge(charge, &t.ledger));
            checks.push("budget");
        }
        let w = Write {
            request_id: &req.request_id,
            now: req.now,
        };
        let reasons = match self.transact(tx, w, &hold.payment_id).await? {
            TxOutcome::Committed => return Ok(ReserveResult::Held),
            TxOutcome::Conflict => return Ok(ReserveResult::Conflict),
            TxOutcome::Cancelled(reasons) => reasons,
        };
        if failed_condition(&reasons, 0) {
            return match old_item::<Hold>(&reasons, 0, "hold") {
                Some(existing) => Ok(ReserveResult::Existing(Box::new(existing))),
                None => Err(StoreError::Malformed(
                    "an existing hold could not be read".into(),
                )),
            };
        }
        for (index, what) in checks.iter().enumerate().skip(1) {
            if !failed_condition(&reasons, index) {
                continue;
            }
            let (reason, detail) = match *what {
                "session" => session_refusal(
                    old_item::<SessionRecord>(&reasons, index, "session").as_ref(),
                    &req.user_id,
                    hold.amount_micros,
                    req.now,
                ),
                "agent" => {
                    agent_refusal(old_item::<AgentRecord>(&reasons, index, "agent").as_ref())
                }
                "consent" => consent_refusal(
                    old_item::<ConsentRecord>(&reasons, index, "consent").as_ref(),
                    req.now,
                ),
                "budget" => {
                    let budget_index = index - (checks.len() - req.budget_charges.len());
                    (
                        ReasonCode::BudgetExceeded,
                        format!(
                            "{} would be exceeded",
                            req.budget_charges[budget_index].label
                        ),
                    )
                }
                _ => (
                    ReasonCode::PolicyChanged,
                    "a policy changed since the decision".to_string(),
                ),
            };
            return Ok(ReserveResult::Refused(reason, detail));
        }
        Err(StoreError::Unavailable(
            "the transaction was cancelled without a failed condition".into(),
        ))
    }

    async fn mark_sent(
        &self,
        session_id: &str,
        payment_id: &str,
        signed: &SignedRecord,
        hold_expires_at: u64,
        w: Write<'_>,
    ) -> Result<Transition, StoreError> {
        let now = w.now;
        // The signed authorization may not outlive the approved window (latestValidBefore).
        let mut condition =
            "#st = :pending AND payTo = :to AND amountAtomic = :value AND network = :network AND latestValidBefore >= :vb"
                .to_string();
        let mut vals = vec![
            (":pending", s("PENDING")),
            (":sent", s("SENT")),
            (":to", s(&signed.to)),
            (":value", s(&signed.value)),
            (":network", s(&signed.network)),
            (":signed", attr(signed)),
            (":now", n(now)),
            (":exp", n(hold_expires_at)),
            (":vb", n(signed.valid_before)),
        ];
        if let Some(asset) = &signed.asset {
            condition.push_str(" AND asset = :asset");
            vals.push((":asset", s(asset)));
        }
        // The SDK's re-send of this very request meets its own write: apply the same values again.
        let condition = format!("({condition}) OR (#st = :sent AND lastRequestId = :rid)");
        vals.push((":rid", s(w.request_id)));
        let result = self
            .client()
            .update_item()
            .table_name(&self.tables().ledger)
            .set_key(Some(hold_key(session_id, payment_id)))
            .update_expression(
                "SET #st = :sent, signed = :signed, sentAt = :now, holdExpiresAt = :exp, lastRequestId = :rid",
            )
            .condition_expression(condition)
            .set_expression_attribute_names(names(&[("#st", "state")]))
            .set_expression_attribute_values(values(vals))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        update_transition(result.map(|o| o.attributes))
    }

    async fn post(
        &self,
        session_id: &str,
        payment_id: &str,
        amount_micros: Option<u64>,
        settlement: &SettlementRecord,
        from: HoldState,
        w: Write<'_>,
    ) -> Result<Transition, StoreError> {
        let now = w.now;
        let set = match from {
            HoldState::Pending => "SET #st = :posted, settlement = :settlement, postedAt = :now, markSentMissing = :missing REMOVE #shard",
            _ => "SET #st = :posted, settlement = :settlement, postedAt = :now REMOVE #shard",
        };
        let mut hold_values = vec![
            (":posted", s("POSTED")),
            (":from", s(from.as_str())),
            (":network", s(&settlement.network)),
            (":settlement", attr(settlement)),
            (":now", n(now)),
        ];
        if from == HoldState::Pending {
            hold_values.push((":missing", AttributeValue::Bool(true)));
        }
        // An `upto` hold posts what the settlement charged (see `upto`): known from the hold read
        // without a hint, or from the hold a failed exact try returns.
        let amount_micros = match amount_micros {
            Some(m) => m,
            None => match self.get_hold(session_id, payment_id).await? {
                Some(h) if h.is_upto() && h.state == from && h.network == settlement.network => {
                    return self.post_upto(&h, settlement, from, w).await;
                }
                Some(h) => h.amount_micros,
                None => return Ok(Transition::NotApplied(None)),
            },
        };
        let outcome = self
            .move_amount(
                session_id,
                payment_id,
                Some(amount_micros),
                set,
                "#st = :from AND network = :network AND attribute_not_exists(scheme)",
                hold_values,
                "SET reservedMicros = reservedMicros - :m, settledMicros = settledMicros + :m",
                false,
                w,
            )
            .await?;
        match outcome {
            Transition::NotApplied(Some(h))
                if h.is_upto() && h.state == from && h.network == settlement.network =>
            {
                self.post_upto(&h, settlement, from, w).await
            }
            other => Ok(other),
        }
    }

    async fn post_late(
        &self,
        hold: &Hold,
        settlement: &SettlementRecord,
        w: Write<'_>,
    ) -> Result<Transition, StoreError> {
        let now = w.now;
        // `m` is what the settlement charged: the hold, or for `upto` what it reported (the
        // counters count no more than the hold, as an `upto` post does).
        let (held, m) = (
            hold.amount_micros,
            hold.posted_micros(settlement.reported_amount.as_deref()),
        );
        let hold_values = || {
            let mut v = vec![
                (":posted", s("POSTED")),
                (":voided", s("VOIDED")),
                (":settlement", attr(settlement)),
                (":now", n(now)),
                (":late", AttributeValue::Bool(true)),
            ];
            if hold.is_upto() {
                v.push((":p", n(m)));
            }
            v
        };
        let posted_set = if hold.is_upto() {
            "SET #st = :posted, settlement = :settlement, postedAt = :now, late = :late, settledMicros = :p"
        } else {
            "SET #st = :posted, settlement = :settlement, postedAt = :now, late = :late"
        };
        let set = format!("{posted_set} REMOVE #shard");
        let session_id = &hold.payment_session_id;
        // Take the late amount from what is still available and overdraw only the rest. A
        // condition cannot compute min(available, m), so the first try assumes all of it fits;
        // when it does not, the session the failed condition returns says how much does, and the
        // split is written under the condition that available has not moved since.
        // Voided into its pool after the session closed: the pool gives the amount back, so the
        // pool's sessions never spend more than it was funded with. A pool already drawn on
        // again cannot: then the session's overdraft records it, as on any session.
        if let Some(pool_pk) = &hold.returned_to_pool {
            let mut items = self.hold_and_session(
                session_id,
                &hold.payment_id,
                held,
                &format!("{posted_set} REMOVE #shard, returnedToPool"),
                "#st = :voided",
                hold_values(),
                // Replaced below: this session update needs a second value.
                "SET settledMicros = settledMicros + :m",
                "attribute_exists(pk)",
            );
            items[1] = update(
                session_key(session_id),
                &self.tables().ledger,
                "SET settledMicros = settledMicros + :m, limitMicros = limitMicros + :m ADD returnedMicros :neg",
                "returnedMicros >= :m",
                None,
                values(vec![(":m", n(m)), (":neg", AttributeValue::N(format!("-{m}")))]),
            );
            items.push(pools::take_back(pool_pk, m, &self.tables().ledger));
            items.extend(hold.budget_counters.iter().map(|key| {
                budget_adjust(key, i128::from(m.min(held)), 1, now, &self.tables().ledger)
            }));
            let label = format!("{}/late/pool", hold.payment_id);
            match self.transact(items, w, &label).await? {
                TxOutcome::Committed => {
                    return Ok(Transition::Done(Some(Box::new(late_posted(
                        hold, settlement, now,
                    )))));
                }
                TxOutcome::Conflict => return Ok(Transition::Conflict),
                TxOutcome::Cancelled(reasons) if failed_condition(&reasons, 0) => {
                    return Ok(Transition::NotApplied(old_item(&reasons, 0, "hold")));
                }
                // The pool has less available than the amount: the overdraft path below.
                TxOutcome::Cancelled(_) => {}
            }
        }
        let mut available_seen: Option<u64> = None;
        for _ in 0..MAX_TRANSACTION_ATTEMPTS {
            let mut items = self.hold_and_session(
                session_id,
                &hold.payment_id,
                held,
                &set,
                "#st = :voided",
                hold_values(),
                // Replaced below: the session moves what was charged.
                "SET settledMicros = settledMicros + :m",
                "attribute_exists(pk)",
            );
            items[1] = update(
                session_key(session_id),
                &self.tables().ledger,
                "SET settledMicros = settledMicros + :m, availableMicros = availableMicros - :m",
                "availableMicros >= :m",
                None,
                values(vec![(":m", n(m))]),
            );
            items.extend(hold.budget_counters.iter().map(|key| {
                budget_adjust(key, i128::from(m.min(held)), 1, now, &self.tables().ledger)
            }));
            if let Some(a) = available_seen.filter(|a| *a < m) {
                items[1] = update(
                    session_key(session_id),
                    &self.tables().ledger,
                    "SET settledMicros = settledMicros + :m, availableMicros = availableMicros - :a, overdraftMicros = overdraftMicros + :rest",
                    "availableMicros = :a",
                    None,
                    values(vec![(":m", n(m)), (":a", n(a)), (":rest", n(m - a))]),
                );
            }
            let label = format!("{}/late/{available_seen:?}", hold.payment_id);
            match self.transact(items, w, &label).await? {
                TxOutcome::Committed => {
                    return Ok(Transition::Done(Some(Box::new(late_posted(
                        hold, settlement, now,
                    )))));
                }
                TxOutcome::Conflict => return Ok(Transition::Conflict),
                TxOutcome::Cancelled(reasons) if failed_condition(&reasons, 0) => {
                    return Ok(Transition::NotApplied(old_item(&reasons, 0, "hold")));
                }
                TxOutcome::Cancelled(reasons) => {
                    match old_item::<SessionRecord>(&reasons, 1, "session") {
                        Some(found) => available_seen = Some(found.available_micros),
                        None => {
                            return Err(StoreError::Malformed(
                                "the session of a late settlement is missing".into(),
                            ))
                        }
                    }
                }
            }
        }
        Ok(Transition::Conflict)
    }

    async fn record_failed_settlement(
        &self,
        session_id: &str,
        payment_id: &str,
        error: &str,
        network: &str,
        pending_transaction: Option<&str>,
        w: Write<'_>,
    ) -> Result<Transition, StoreError> {
        let error: String = error.chars().take(256).collect();
        let mut vals = vec![
            (":e", s(&error)),
            (":pending", s("PENDING")),
            (":sent", s("SENT")),
            (":network", s(network)),
            (":rid", s(w.request_id)),
        ];
        // A pending settlement records its transaction; a failure is counted.
        let expression = match pending_transaction {
            Some(tx) => {
                vals.push((":tx", s(tx)));
                "SET pendingTransaction = :tx, lastSettlementError = :e, lastRequestId = :rid"
            }
            None => {
                vals.push((":zero", n(0)));
                vals.push((":one", n(1)));
                "SET settlementFailures = if_not_exists(settlementFailures, :zero) + :one, lastSettlementError = :e, lastRequestId = :rid"
            }
        };
        let result = self
            .client()
            .update_item()
            .table_name(&self.tables().ledger)
            .set_key(Some(hold_key(session_id, payment_id)))
            .update_expression(expression)
            // Counted once per request: the SDK's re-send of this report meets its own count.
            .condition_expression("#st IN (:pending, :sent) AND network = :network AND (attribute_not_exists(lastRequestId) OR lastRequestId <> :rid)")
            .set_expression_attribute_names(names(&[("#st", "state")]))
            .set_expression_attribute_values(values(vals))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        Ok(match update_transition(result.map(|o| o.attributes))? {
            Transition::NotApplied(Some(found)) if written_by(&found, w) => {
                Transition::Done(Some(Box::new(found)))
            }
            other => other,
        })
    }

    async fn release(
        &self,
        session_id: &str,
        payment_id: &str,
        amount_micros: Option<u64>,
        reason: &str,
        w: Write<'_>,
    ) -> Result<Transition, StoreError> {
        let now = w.now;
        self.move_amount(
            session_id,
            payment_id,
            amount_micros,
            "SET #st = :voided, voidReason = :reason, voidedAt = :now REMOVE #shard",
            "#st = :pending",
            vec![
                (":voided", s("VOIDED")),
                (":pending", s("PENDING")),
                (":reason", s(reason)),
                (":now", n(now)),
            ],
            "SET reservedMicros = reservedMicros - :m, availableMicros = availableMicros + :m",
            true,
            w,
        )
        .await
    }

    async fn due_holds(&self, now: u64, limit: usize) -> Result<DueHolds, StoreError> {
        let mut due = DueHolds::default();
        for shard in all_open_shards() {
            let out = self
                .client()
                .query()
                .table_name(&self.tables().ledger)
                .index_name(OPEN_HOLDS_INDEX)
                .key_condition_expression("#shard = :shard AND #exp <= :now")
                .expression_attribute_names("#shard", OPEN_SHARD)
                .expression_attribute_names("#exp", HOLD_EXPIRES_AT)
                .expression_attribute_values(":shard", s(&shard))
                .expression_attribute_values(":now", n(now))
                .limit(limit.clamp(1, 1000) as i32)
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items.unwrap_or_default() {
                // Open pooled sessions share the index, at their expiry.
                if items::string_attr(&item, SK) == Some(SESSION_SK) {
                    match items::from_item::<SessionRecord>(item, "session") {
                        Ok(session) => due.sessions.push(session),
                        Err(_) => due.unreadable += 1,
                    }
                    continue;
                }
                match items::from_item::<Hold>(item, "hold") {
                    Ok(hold) => due.holds.push(hold),
                    Err(_) => due.unreadable += 1,
                }
            }
        }
        if due.unreadable > 0 {
            tracing::warn!(
                unreadable = due.unreadable,
                "due open-holds index entries are not readable as holds; they were left as they are"
            );
        }
        due.holds.sort_by_key(|h| h.hold_expires_at);
        due.holds.truncate(limit);
        Ok(due)
    }

    async fn expire_hold(&self, hold: &Hold, w: Write<'_>) -> Result<Transition, StoreError> {
        let now = w.now;
        let mut items = self.hold_and_session(
            &hold.payment_session_id,
            &hold.payment_id,
            hold.amount_micros,
            "SET #st = :voided, voidReason = :reason, voidedAt = :now REMOVE #shard",
            "#st = :state AND holdExpiresAt <= :now",
            vec![
                (":voided", s("VOIDED")),
                (":state", s(hold.state.as_str())),
                (":reason", s(EXPIRED)),
                (":now", n(now)),
            ],
            "SET reservedMicros = reservedMicros - :m, availableMicros = availableMicros + :m",
            VOID_SESSION_CONDITION,
        );
        items.extend(hold.budget_counters.iter().map(|key| {
            budget_adjust(
                key,
                -i128::from(hold.amount_micros),
                -1,
                now,
                &self.tables().ledger,
            )
        }));
        let label = format!("{}/expire", hold.payment_id);
        let mut outcome = self.transact(items.clone(), w, &label).await?;
        // A closed pooled session: the amount goes back to the pool.
        if let TxOutcome::Cancelled(reasons) = &outcome {
            if !failed_condition(reasons, 0) {
                if let Some((user, pool)) = closed_pool_of(reasons) {
                    let credit = self.void_into_pool(
                        &mut items,
                        &hold.payment_session_id,
                        &user,
                        &pool,
                        hold.amount_micros,
                    );
                    items.push(credit);
                    outcome = self.transact(items, w, &format!("{label}/pool")).await?;
                }
            }
        }
        match outcome {
            TxOutcome::Committed => {
                let mut voided = hold.clone();
                voided.state = HoldState::Voided;
                voided.void_reason = Some(EXPIRED.into());
                voided.voided_at = Some(now);
                voided.open_shard = None;
                Ok(Transition::Done(Some(Box::new(voided))))
            }
            TxOutcome::Conflict => Ok(Transition::Conflict),
            TxOutcome::Cancelled(reasons) => {
                Ok(Transition::NotApplied(old_item(&reasons, 0, "hold")))
            }
        }
    }

    async fn read_session_page(
        &self,
        session_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Option<SessionPage>, StoreError> {
        let pk = session_pk(session_id);
        // Callers ask for a page at most; a larger ask is one page too.
        let limit = limit.min(MAX_HOLDS_PER_PAGE);
        // One more hold than asked says whether more follow.
        let (session, items) = match (limit, after) {
            (0, _) => (self.query_session(&pk).await?, Vec::new()),
            // Descending, the session (`SESSION`) comes before every `HOLD#`: one Query reads
            // it with the first page.
            (_, None) => self.query_descending(&pk, None, limit + 1).await?,
            // Later pages start below the cursor, past the session: it is read beside them.
            (_, Some(after)) => {
                let start = pk_sk_key(pk.clone(), &hold_sk(after));
                let (session, (_, holds)) = tokio::try_join!(
                    self.query_session(&pk),
                    self.query_descending(&pk, Some(start), limit + 1)
                )?;
                (session, holds)
            }
        };
        let Some(session) = session else {
            return Ok(None);
        };
        let mut holds = items
            .into_iter()
            .map(|item| items::from_item::<Hold>(item, "hold"))
            .collect::<Result<Vec<_>, _>>()?;
        let next_after = if holds.len() > limit {
            holds.truncate(limit);
            holds.last().map(|h| h.payment_id.clone())
        } else {
            None
        };
        Ok(Some(SessionPage {
            session: items::from_item(session, "session")?,
            holds,
            next_after,
        }))
    }

    async fn read_hold(
        &self,
        session_id: &str,
        payment_id: &str,
    ) -> Result<Option<Hold>, StoreError> {
        self.get_hold(session_id, payment_id).await
    }

    async fn open_session(
        &self,
        session: &SessionRecord,
        w: Write<'_>,
    ) -> Result<OpenResult, StoreError> {
        let mut session = session.clone();
        session.open_request_id = Some(w.request_id.to_string());
        let item = items::to_item(&session, session_key(&session.payment_session_id))?;
        if let Some(pool) = session.pool_id.clone() {
            return self.open_pooled(&session, &pool, item, w).await;
        }
        let result = self
            .client()
            .put_item()
            .table_name(&self.tables().ledger)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(OpenResult::Created(session)),
            Err(SdkError::ServiceError(ctx))
                if ctx.err().is_conditional_check_failed_exception() =>
            {
                let existing = match ctx.into_err() {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => {
                        e.item().cloned()
                    }
                    _ => None,
                };
                existing_session(existing, &session, w)
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn close_session(
        &self,
        session_id: &str,
        reason: &str,
        w: Write<'_>,
    ) -> Result<Option<(SessionRecord, bool)>, StoreError> {
        let now = w.now;
        let result = self
            .client()
            .update_item()
            .table_name(&self.tables().ledger)
            .set_key(Some(session_key(session_id)))
            .update_expression(
                "SET #status = :closed, closedReason = :reason, closedAt = :now, closeRequestId = :rid",
            )
            // The SDK's re-send of this very request meets its own write: apply it again.
            // A pooled session gives its available back: not in a single update.
            .condition_expression(
                "attribute_exists(pk) AND ((#status = :open AND attribute_not_exists(poolId)) OR closeRequestId = :rid)",
            )
            .expression_attribute_values(":rid", s(w.request_id))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":open", s("OPEN"))
            .expression_attribute_values(":closed", s("CLOSED"))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .attributes
                .map(|a| items::from_item(a, "session"))
                .transpose()?
                .map(|s| (s, false))),
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                UpdateItemError::ConditionalCheckFailedException(e) => {
                    let found: Option<SessionRecord> = e
                        .item()
                        .cloned()
                        .map(|i| items::from_item(i, "session"))
                        .transpose()?;
                    match found {
                        Some(open)
                            if open.status == SessionStatus::Open && open.pool_id.is_some() =>
                        {
                            self.close_pooled(open, reason, w).await
                        }
                        found => Ok(found.map(|s| (s, true))),
                    }
                }
                other => Err(StoreError::Unavailable(format!("UpdateItem: {other}"))),
            },
            Err(err) => Err(unavailable(err)),
        }
    }
}

/// What an open finds when the session already exists: its own earlier put (a lost answer),
/// the same terms (a replay) or other terms.
fn existing_session(
    existing: Option<Item>,
    session: &SessionRecord,
    w: Write<'_>,
) -> Result<OpenResult, StoreError> {
    let existing: SessionRecord = match existing {
        Some(item) => items::from_item(item, "session")?,
        None => {
            return Err(StoreError::Malformed(
                "the existing session could not be read".into(),
            ))
        }
    };
    // This request's own put, whose answer was lost.
    if existing.open_request_id.as_deref() == Some(w.request_id) {
        return Ok(OpenResult::Created(existing));
    }
    // Same terms: the opening amounts, not what was spent since.
    let same = existing.user_id == session.user_id
        && existing.limit_micros + existing.returned_micros == session.limit_micros
        && existing.expires_at == session.expires_at
        && existing.pool_id == session.pool_id;
    Ok(if same {
        OpenResult::Same(existing)
    } else {
        OpenResult::Different(existing)
    })
}

impl DynamoStore {
    /// Puts a pooled session and takes its limit from the pool, in one transaction.
    async fn open_pooled(
        &self,
        session: &SessionRecord,
        pool: &str,
        item: Item,
        w: Write<'_>,
    ) -> Result<OpenResult, StoreError> {
        let parts = self.open_pooled_parts(session, pool, item);
        let label = format!("open/{}", session.payment_session_id);
        match self.transact(parts, w, &label).await? {
            TxOutcome::Committed => Ok(OpenResult::Created(session.clone())),
            TxOutcome::Conflict => Err(StoreError::Unavailable(
                "conflicting transactions kept cancelling the open".into(),
            )),
            TxOutcome::Cancelled(reasons) if failed_condition(&reasons, 0) => {
                existing_session(reasons[0].item().cloned(), session, w)
            }
            TxOutcome::Cancelled(reasons) if failed_condition(&reasons, 1) => {
                match old_item::<PoolRecord>(&reasons, 1, "pool") {
                    Some(found) if found.user_id == session.user_id => Ok(OpenResult::PoolExceeded),
                    _ => Ok(OpenResult::PoolUnknown),
                }
            }
            TxOutcome::Cancelled(_) => Err(StoreError::Unavailable(
                "the transaction was cancelled without a failed condition".into(),
            )),
        }
    }

    /// Closes an OPEN pooled session and gives its available back to the pool, in one
    /// transaction; a reserve meanwhile moves available, so it is read again and retried.
    async fn close_pooled(
        &self,
        mut found: SessionRecord,
        reason: &str,
        w: Write<'_>,
    ) -> Result<Option<(SessionRecord, bool)>, StoreError> {
        let table = self.tables().ledger.clone();
        for attempt in 0..MAX_TRANSACTION_ATTEMPTS {
            let Some(pool) = found.pool_id.clone() else {
                return Err(StoreError::Malformed(
                    "a pooled session lost its pool".into(),
                ));
            };
            let a = found.available_micros;
            let mut parts = vec![update(
                session_key(&found.payment_session_id),
                &table,
                "SET #status = :closed, closedReason = :reason, closedAt = :now, closeRequestId = :rid, limitMicros = limitMicros - :a, availableMicros = availableMicros - :a REMOVE openShard ADD returnedMicros :a",
                "#status = :open AND availableMicros = :a",
                names(&[("#status", "status")]),
                values(vec![
                    (":closed", s("CLOSED")),
                    (":open", s("OPEN")),
                    (":reason", s(reason)),
                    (":now", n(w.now)),
                    (":rid", s(w.request_id)),
                    (":a", n(a)),
                ]),
            )];
            if a > 0 {
                parts.push(pools::give_back(&found.user_id, &pool, a, &table));
            }
            let label = format!("close/{}/{attempt}/{a}", found.payment_session_id);
            match self.transact(parts, w, &label).await? {
                TxOutcome::Committed => {
                    let mut closed = found;
                    closed.status = SessionStatus::Closed;
                    closed.limit_micros -= a;
                    closed.available_micros = 0;
                    closed.returned_micros += a;
                    return Ok(Some((closed, false)));
                }
                TxOutcome::Conflict => {}
                TxOutcome::Cancelled(reasons) => {
                    match old_item::<SessionRecord>(&reasons, 0, "session") {
                        Some(now) if now.status == SessionStatus::Closed => {
                            return Ok(Some((now, true)))
                        }
                        Some(now) => found = now,
                        None => return Ok(None),
                    }
                }
            }
        }
        Err(StoreError::Unavailable(
            "the session kept changing while it was being closed; retry".into(),
        ))
    }
}

/// A single-item update's outcome: the new hold, or the hold as found when the condition failed.
fn update_transition<R: std::fmt::Debug>(
    result: Result<Option<Item>, SdkError<UpdateItemError, R>>,
) -> Result<Transition, StoreError> {
    match result {
        Ok(Some(attributes)) => Ok(Transition::Done(Some(Box::new(items::from_item(
            attributes, "hold",
        )?)))),
        Ok(None) => Ok(Transition::Done(None)),
        Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
            UpdateItemError::ConditionalCheckFailedException(e) => Ok(Transition::NotApplied(
                e.item()
                    .cloned()
                    .map(|i| items::from_item(i, "hold"))
                    .transpose()?,
            )),
            other => Err(StoreError::Unavailable(format!("UpdateItem: {other}"))),
        },
        Err(err) => Err(unavailable(err)),
    }
}
