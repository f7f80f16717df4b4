//! The operator's queue: SENT holds, signed and handed over, whose settlement is still unknown.

use aws_sdk_dynamodb::types::AttributeValue;
use predebit_core::hold::{all_open_shards, Hold, HoldState};
use predebit_core::store::StoreError;

use crate::dynamodb::DynamoStore;
use crate::error::unavailable;
use crate::items::{self, SESSION_SK};
use crate::tables::{OPEN_HOLDS_INDEX, OPEN_SHARD, SK};

impl DynamoStore {
    /// Every SENT hold marked sent at or before `sent_before` (epoch seconds), from the
    /// open-holds index (every page of every shard), oldest first. Items that are not holds
    /// (open pooled sessions share the index) are skipped; an unreadable hold is an error, since
    /// an operator's queue must not hide one.
    pub async fn sent_holds(&self, sent_before: u64) -> Result<Vec<Hold>, StoreError> {
        let mut out = Vec::new();
        for shard in all_open_shards() {
            let mut start = None;
            loop {
                let page = self
                    .client()
                    .query()
                    .table_name(&self.tables().ledger)
                    .index_name(OPEN_HOLDS_INDEX)
                    .key_condition_expression("#shard = :shard")
                    .expression_attribute_names("#shard", OPEN_SHARD)
                    .expression_attribute_values(":shard", AttributeValue::S(shard.clone()))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(unavailable)?;
                for item in page.items.unwrap_or_default() {
                    if items::string_attr(&item, SK) == Some(SESSION_SK) {
                        continue;
                    }
                    let hold: Hold = items::from_item(item, "hold")?;
                    if hold.state == HoldState::Sent
                        && hold.sent_at.is_some_and(|t| t <= sent_before)
                    {
                        out.push(hold);
                    }
                }
                match page.last_evaluated_key {
                    Some(key) if !key.is_empty() => start = Some(key),
                    _ => break,
                }
            }
        }
        out.sort_by_key(|h| (h.sent_at, h.payment_id.clone()));
        Ok(out)
    }
}
