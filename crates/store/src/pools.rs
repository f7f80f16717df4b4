//! Funding pools: a user's allowance that sessions draw their limits from.
//!
//! `pk=POOL#<userId>#<poolId>`, `sk=POOL` in the Ledger table. openSession with a pool puts the
//! session and takes its limit from the pool's `availableMicros` in one transaction, under the
//! condition that the pool has it: sessions opened concurrently can never overdraw a pool.
//! closeSession gives the session's available back in one transaction (the session's limit
//! shrinks by it, so its balances still add up); a hold that voids after the close gives its
//! amount back the same way. An open pooled session sits in the open-holds index at its expiry,
//! so the scheduled `expire` closes it then, with the same give-back.

use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use predebit_core::hold::open_shard;
use predebit_core::records::{PoolRecord, SessionRecord};
use predebit_core::store::StoreError;

use crate::dynamodb::DynamoStore;
use crate::error::{unavailable, AdminError};
use crate::items::{self, check_key_part, pk_sk_key, Item};
use crate::tables::{HOLD_EXPIRES_AT, OPEN_SHARD};

/// The sort key of a pool item.
pub const POOL_SK: &str = "POOL";

/// A pool's partition key.
pub fn pool_pk(user_id: &str, pool_id: &str) -> String {
    format!("POOL#{user_id}#{pool_id}")
}

/// A pool item's key.
pub fn pool_key(user_id: &str, pool_id: &str) -> Item {
    pk_sk_key(pool_pk(user_id, pool_id), POOL_SK)
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The transaction part that takes a session's limit from its pool: only a pool of this user
/// with that much available.
pub(crate) fn draw(session: &SessionRecord, pool_id: &str, table: &str) -> TransactWriteItem {
    TransactWriteItem::builder()
        .update(
            Update::builder()
                .table_name(table)
                .set_key(Some(pool_key(&session.user_id, pool_id)))
                .update_expression(
                    "SET availableMicros = availableMicros - :m, drawnMicros = drawnMicros + :m",
                )
                .condition_expression("availableMicros >= :m AND userId = :user")
                .expression_attribute_values(":m", n(session.limit_micros))
                .expression_attribute_values(":user", AttributeValue::S(session.user_id.clone()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .expect("update has key, table and expression"),
        )
        .build()
}

/// The transaction part that gives `micros` back to a pool.
pub(crate) fn give_back(
    user_id: &str,
    pool_id: &str,
    micros: u64,
    table: &str,
) -> TransactWriteItem {
    TransactWriteItem::builder()
        .update(
            Update::builder()
                .table_name(table)
                .set_key(Some(pool_key(user_id, pool_id)))
                .update_expression("ADD availableMicros :m, returnedMicros :m")
                .expression_attribute_values(":m", n(micros))
                .build()
                .expect("update has key, table and expression"),
        )
        .build()
}

/// The transaction part that takes `micros` back from the pool keyed `pool_pk` (a late
/// settlement of a hold whose void had given it back), only if the pool still has it.
pub(crate) fn take_back(pool_pk: &str, micros: u64, table: &str) -> TransactWriteItem {
    TransactWriteItem::builder()
        .update(
            Update::builder()
                .table_name(table)
                .set_key(Some(pk_sk_key(pool_pk.to_string(), POOL_SK)))
                .update_expression(
                    "SET availableMicros = availableMicros - :m, returnedMicros = returnedMicros - :m",
                )
                .condition_expression("availableMicros >= :m AND returnedMicros >= :m")
                .expression_attribute_values(":m", n(micros))
                .build()
                .expect("update has key, table and expression"),
        )
        .build()
}

impl DynamoStore {
    /// Creates a pool with `funded_micros` available. A pool of that name already there is a
    /// conflict (nothing changed), unless it was created with the same amount (a replay).
    pub async fn create_pool(
        &self,
        user_id: &str,
        pool_id: &str,
        funded_micros: u64,
    ) -> Result<PoolRecord, AdminError> {
        check_key_part("userId", user_id).map_err(AdminError::Invalid)?;
        check_key_part("poolId", pool_id).map_err(AdminError::Invalid)?;
        let pool = PoolRecord {
            user_id: user_id.into(),
            pool_id: pool_id.into(),
            funded_micros,
            available_micros: funded_micros,
            drawn_micros: 0,
            returned_micros: 0,
        };
        let item = items::to_item(&pool, pool_key(user_id, pool_id))?;
        let result = self
            .client()
            .put_item()
            .table_name(&self.tables().ledger)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(pool),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                match self.read_pool(user_id, pool_id).await? {
                    Some(found)
                        if found.funded_micros == funded_micros && found.drawn_micros == 0 =>
                    {
                        Ok(found)
                    }
                    _ => Err(AdminError::Conflict(format!("pool {pool_id} of {user_id}"))),
                }
            }
            Err(e) => Err(AdminError::Store(unavailable(e))),
        }
    }

    /// A pool, strongly consistent.
    pub async fn read_pool(
        &self,
        user_id: &str,
        pool_id: &str,
    ) -> Result<Option<PoolRecord>, StoreError> {
        self.get_ledger_item(pool_key(user_id, pool_id), "pool")
            .await
    }

    /// The put of a new pooled session and the draw from its pool, as one transaction's parts.
    /// The session goes into the open-holds index at its expiry, so `expire` closes it then.
    pub(crate) fn open_pooled_parts(
        &self,
        session: &SessionRecord,
        pool_id: &str,
        mut item: Item,
    ) -> Vec<TransactWriteItem> {
        let table = &self.tables().ledger;
        item.insert(
            OPEN_SHARD.into(),
            AttributeValue::S(open_shard(&session.payment_session_id)),
        );
        item.insert(HOLD_EXPIRES_AT.into(), n(session.expires_at));
        vec![
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(pk)")
                        .return_values_on_condition_check_failure(
                            ReturnValuesOnConditionCheckFailure::AllOld,
                        )
                        .build()
                        .expect("put has table and item"),
                )
                .build(),
            draw(session, pool_id, table),
        ]
    }
}
