//! The requests predebit sends, built by hand and sent bare with the same clients: the floor the
//! throughput benchmarks hold each function against.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, KeysAndAttributes, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use predebit_core::budget::CounterCharge;
use predebit_core::keys::KeyRing;
use predebit_core::ledger::new_hold;
use predebit_core::records::PolicyVersions;
use predebit_core::token::TokenClaims;
use predebit_store::items::{
    self, agent_pk, agent_policy_pk, consent_pk, global_policy_pk, pk_key, pk_sk_key, session_pk,
    user_policy_pk, Item, SESSION_SK,
};
use predebit_store::{DynamoClient, DynamoStore};

/// The demo seed's user and agent the benchmarks pay as.
pub const USER: &str = "user-alice";
/// The demo seed's agent.
pub const AGENT: &str = "agent-research";

/// The decision claims of benchmark payment `i` on `session_id` (1 cent of USDC on Base).
pub fn claims(i: usize, session_id: &str, amount_micros: u64, now: u64) -> TokenClaims {
    TokenClaims {
        payment_id: format!("{i:064x}"),
        verification_id: format!("bench-{i}"),
        audit_hash: "0".repeat(64),
        user_id: USER.into(),
        agent_id: AGENT.into(),
        payment_session_id: session_id.into(),
        scheme: "exact".into(),
        network: "eip155:8453".into(),
        asset: "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913".into(),
        pay_to: "0x209693bc6afc0c5328ba36faf03c514ef312287c".into(),
        amount_atomic: amount_micros.to_string(),
        amount_micros,
        resource_host: None,
        max_timeout_seconds: 60,
        policy_versions: PolicyVersions {
            global: Some(1),
            user: Some(1),
            agent: None,
        },
        consent_required: true,
        authorization_window_seconds: 300,
        issued_at: now,
        expires_at: now + 3600,
        budgets: Vec::new(),
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn vals(pairs: &[(&str, AttributeValue)]) -> Option<HashMap<String, AttributeValue>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// The request `DynamoStore::read_for_verify` sends, built once.
pub struct BareRead {
    client: DynamoClient,
    requests: Vec<(String, KeysAndAttributes)>,
}

impl BareRead {
    /// The six keys of one decision.
    pub fn new(store: &DynamoStore, user_id: &str, agent_id: &str, session_id: &str) -> Self {
        let keys = |keys: Vec<Item>| {
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .expect("keys are set")
        };
        let tables = store.tables();
        let requests = vec![
            (
                tables.policies.clone(),
                keys(vec![
                    pk_key(global_policy_pk()),
                    pk_key(user_policy_pk(user_id)),
                    pk_key(agent_policy_pk(agent_id)),
                ]),
            ),
            (
                tables.registry.clone(),
                keys(vec![
                    pk_key(agent_pk(agent_id)),
                    pk_key(consent_pk(user_id, agent_id)),
                ]),
            ),
            (
                tables.ledger.clone(),
                keys(vec![pk_sk_key(session_pk(session_id), SESSION_SK)]),
            ),
        ];
        Self {
            client: store.client().clone(),
            requests,
        }
    }

    /// Sends it; how many items came back.
    pub async fn read(&self) -> usize {
        let mut request = self.client.batch_get_item();
        for (table, keys) in &self.requests {
            request = request.request_items(table, keys.clone());
        }
        let out = request.send().await.expect("BatchGetItem");
        assert!(
            out.unprocessed_keys().is_none_or(|u| u.is_empty()),
            "BatchGetItem left keys unprocessed"
        );
        out.responses()
            .map_or(0, |r| r.values().map(Vec::len).sum())
    }
}

/// The ledger's writes for one payment, sent bare: the seven-part reserve, markSent's
/// UpdateItem, the two-part post.
pub struct BareLedger {
    /// The client the store uses.
    pub client: DynamoClient,
    /// The store, for its table names.
    pub store: DynamoStore,
    /// The keys the hold items are sealed with.
    pub ring: KeyRing,
}

impl BareLedger {
    fn check(
        &self,
        table: &str,
        key: Item,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> TransactWriteItem {
        let values = if values.is_empty() {
            None
        } else {
            vals(values)
        };
        TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(table)
                    .set_key(Some(key))
                    .condition_expression(condition)
                    .set_expression_attribute_values(values)
                    .build()
                    .expect("check"),
            )
            .build()
    }

    fn update(
        &self,
        key: Item,
        expression: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> TransactWriteItem {
        TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&self.store.tables().ledger)
                    .set_key(Some(key))
                    .update_expression(expression)
                    .condition_expression(condition)
                    .set_expression_attribute_values(vals(values))
                    .set_expression_attribute_names(
                        expression
                            .contains("#st")
                            .then(|| HashMap::from([("#st".to_string(), "state".to_string())])),
                    )
                    .build()
                    .expect("update"),
            )
            .build()
    }

    fn hold_key(session_id: &str, payment_id: &str) -> Item {
        pk_sk_key(session_pk(session_id), &format!("HOLD#{payment_id}"))
    }

    /// The reserve transaction: the hold item the ledger writes (so both loops move the same
    /// bytes), the session's balance update and the five condition checks.
    pub async fn reserve(&self, claims: &TokenClaims, token: &str, payment_id: &str) {
        self.reserve_charging(claims, token, payment_id, &[]).await;
    }

    /// The reserve transaction with one conditional update per budget counter, as the ledger
    /// sends it when the decision carries budgets (the hold lists the counters too).
    pub async fn reserve_charging(
        &self,
        claims: &TokenClaims,
        token: &str,
        payment_id: &str,
        charges: &[CounterCharge],
    ) {
        let t = self.store.tables();
        let (user, agent) = (claims.user_id.as_str(), claims.agent_id.as_str());
        let (session_id, amount) = (claims.payment_session_id.as_str(), claims.amount_micros);
        let hold_key = Self::hold_key(session_id, payment_id);
        let mut hold = new_hold(claims, token, &self.ring, 0, 120);
        hold.payment_id = payment_id.to_string();
        hold.budget_counters = charges.iter().map(|c| c.key.clone()).collect();
        let mut item = items::to_item(&hold, hold_key).expect("hold item");
        item.insert("openShard".into(), s("OPEN#0"));
        let mut reserve = vec![
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&t.ledger)
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .expect("put"),
                )
                .build(),
            self.update(
                pk_sk_key(session_pk(session_id), SESSION_SK),
                "SET availableMicros = availableMicros - :m, reservedMicros = reservedMicros + :m",
                "availableMicros >= :m AND expiresAt > :now AND userId = :user",
                &[(":m", n(amount)), (":now", n(0)), (":user", s(user))],
            ),
            self.check(
                &t.registry,
                pk_key(agent_pk(agent)),
                "userId = :user",
                &[(":user", s(user))],
            ),
            self.check(
                &t.registry,
                pk_key(consent_pk(user, agent)),
                "attribute_exists(pk)",
                &[],
            ),
            self.check(
                &t.policies,
                pk_key(global_policy_pk()),
                "version = :v",
                &[(":v", n(1))],
            ),
            self.check(
                &t.policies,
                pk_key(user_policy_pk(user)),
                "version = :v",
                &[(":v", n(1))],
            ),
            self.check(
                &t.policies,
                pk_key(agent_policy_pk(agent)),
                "attribute_not_exists(pk)",
                &[],
            ),
        ];
        for c in charges {
            let mut values = vec![(":m", n(c.micros)), (":one", n(1)), (":ttl", n(c.ttl))];
            let mut conditions = Vec::new();
            if let Some(max) = c.max_micros_before {
                conditions.push("(attribute_not_exists(spentMicros) OR spentMicros <= :maxm)");
                values.push((":maxm", n(max)));
            }
            if let Some(max) = c.max_count_before {
                conditions.push("(attribute_not_exists(paymentCount) OR paymentCount <= :maxc)");
                values.push((":maxc", n(max)));
            }
            reserve.push(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(&t.ledger)
                            .set_key(Some(pk_sk_key(c.key.pk.clone(), &c.key.sk)))
                            .update_expression(
                                "SET #ttl = if_not_exists(#ttl, :ttl) ADD spentMicros :m, paymentCount :one",
                            )
                            .condition_expression(conditions.join(" AND "))
                            .expression_attribute_names("#ttl", "ttl")
                            .set_expression_attribute_values(vals(&values))
                            .build()
                            .expect("update"),
                    )
                    .build(),
            );
        }
        // Conflicting transactions on a shared counter are retried, as the store retries them.
        for attempt in 0..8u64 {
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(reserve.clone()))
                .send()
                .await
            {
                Ok(_) => return,
                Err(e)
                    if !charges.is_empty() && format!("{e:?}").contains("TransactionConflict") =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(1 + attempt * 2)).await;
                }
                Err(e) => panic!("bare reserve: {e:?}"),
            }
        }
        panic!("bare reserve: conflicts kept cancelling it");
    }

    /// markSent's UpdateItem as the store sends it: PENDING to SENT on the signed terms (or the
    /// same request's re-send), the signed record, the new expiry, the whole item returned.
    pub async fn mark_sent(&self, claims: &TokenClaims, payment_id: &str, signed: &str) {
        let valid_before = claims.issued_at + 60;
        let signed = AttributeValue::M(HashMap::from([
            ("to".to_string(), s(&claims.pay_to)),
            ("value".to_string(), s(&claims.amount_atomic)),
            ("network".to_string(), s(&claims.network)),
            ("asset".to_string(), s(&claims.asset)),
            ("validBefore".to_string(), n(valid_before)),
            ("nonce".to_string(), s(&format!("0x{:x}", signed.len()))),
        ]));
        self.client
            .update_item()
            .table_name(&self.store.tables().ledger)
            .set_key(Some(Self::hold_key(
                &claims.payment_session_id,
                payment_id,
            )))
            .update_expression(
                "SET #st = :sent, signed = :signed, sentAt = :now, holdExpiresAt = :exp, lastRequestId = :rid",
            )
            .condition_expression(
                "(#st = :pending AND payTo = :to AND amountAtomic = :value AND network = :network AND latestValidBefore >= :vb AND asset = :asset) OR (#st = :sent AND lastRequestId = :rid)",
            )
            .expression_attribute_names("#st", "state")
            .set_expression_attribute_values(vals(&[
                (":sent", s("SENT")),
                (":pending", s("PENDING")),
                (":signed", signed),
                (":to", s(&claims.pay_to)),
                (":value", s(&claims.amount_atomic)),
                (":network", s(&claims.network)),
                (":asset", s(&claims.asset)),
                (":vb", n(valid_before)),
                (":now", n(0)),
                (":exp", n(valid_before + 120)),
                (":rid", s(payment_id)),
            ]))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
            .expect("bare markSent");
    }

    /// The post transaction: the hold from `from` to POSTED, the session's balances.
    pub async fn post(&self, claims: &TokenClaims, payment_id: &str, from: &str) {
        let (session_id, amount) = (claims.payment_session_id.as_str(), claims.amount_micros);
        let post = vec![
            self.update(
                Self::hold_key(session_id, payment_id),
                "SET #st = :posted",
                "#st = :from AND amountMicros = :m",
                &[
                    (":posted", s("POSTED")),
                    (":from", s(from)),
                    (":m", n(amount)),
                ],
            ),
            self.update(
                pk_sk_key(session_pk(session_id), SESSION_SK),
                "SET reservedMicros = reservedMicros - :m, settledMicros = settledMicros + :m",
                "attribute_exists(pk)",
                &[(":m", n(amount))],
            ),
        ];
        self.client
            .transact_write_items()
            .set_transact_items(Some(post))
            .send()
            .await
            .expect("bare post");
    }
}
