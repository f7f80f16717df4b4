//! From the budgets a decision carries to the counters one payment charges.
//!
//! A condition cannot add (DESIGN, "Facts checked"), so each charge carries the most a counter may
//! hold *before* the payment: `spentMicros <= limit - amount` and `paymentCount <= count - 1`.
//! A payment larger than a limit on its own is refused without a write.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{slots, BudgetWindow};

/// The partition-key prefix of budget counters in the ledger table.
pub const BUDGET_PK_PREFIX: &str = "BUDGET#";
/// How long a counter outlives its window (its `ttl` attribute): a void of a hold reserved in
/// the window may come after the window ended, and must find the counter.
pub const COUNTER_KEEP_SECONDS: u64 = 8 * 86_400;

/// Whose payments a budget counts: user and global budgets count per user, agent budgets per
/// agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetScope {
    /// The global policy's budgets, per user.
    Global,
    /// The user policy's budgets.
    User,
    /// The agent policy's budgets.
    Agent,
}

impl BudgetScope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Global => "global",
            BudgetScope::User => "user",
            BudgetScope::Agent => "agent",
        }
    }

    /// How messages name the budget's owner.
    fn owner(self) -> &'static str {
        match self {
            BudgetScope::Global => "the global",
            BudgetScope::User => "the user's",
            BudgetScope::Agent => "the agent's",
        }
    }
}

/// A budget as a decision approved it (carried in the decision token, so reserve counts exactly
/// what verify checked, in the windows of reserve's own clock).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BudgetClaim {
    /// The policy scope it came from.
    pub scope: BudgetScope,
    /// The window.
    pub window: BudgetWindow,
    /// The policy's IANA time zone (calendar windows).
    pub timezone: String,
    /// The most micro-USD per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_micros: Option<u64>,
    /// The most payments per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// A counter item's key in the ledger table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CounterKey {
    /// `BUDGET#<scope>#<userId or agentId>`.
    pub pk: String,
    /// `<window>#<window start>`.
    pub sk: String,
}

/// What one payment does to one counter: add its amount and one payment, provided the counter
/// holds at most the `max_*_before` values (absent: that limit does not apply to it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterCharge {
    /// The counter.
    pub key: CounterKey,
    /// The payment's micro-USD, added to the counter.
    pub micros: u64,
    /// The most `spentMicros` may be before this payment.
    pub max_micros_before: Option<u64>,
    /// The most `paymentCount` may be before this payment.
    pub max_count_before: Option<u64>,
    /// Epoch seconds after which the counter may be deleted.
    pub ttl: u64,
    /// How a refusal names the budget: "the user's day budget".
    pub label: String,
    /// How metrics name it: `user:day`.
    pub dimension: String,
}

impl CounterCharge {
    /// How full the counter as read is before and after this payment, for each limit it has
    /// (amount, count): the limit's own cap is the room left plus this payment.
    pub fn usage(&self, found: Option<&CounterRecord>) -> Vec<crate::decision::LimitUsage> {
        let (spent, count) = found.map_or((0, 0), |r| (r.spent_micros, r.payment_count));
        let used = |v: i64| u64::try_from(v).unwrap_or(0);
        let mut out = Vec::new();
        if let Some(max) = self.max_micros_before {
            out.push(crate::decision::LimitUsage::of(
                self.dimension.clone(),
                used(spent),
                self.micros,
                max.saturating_add(self.micros),
            ));
        }
        if let Some(max) = self.max_count_before {
            out.push(crate::decision::LimitUsage::of(
                self.dimension.clone(),
                used(count),
                1,
                max.saturating_add(1),
            ));
        }
        out
    }

    /// Whether the counter as read (`None`: absent, so zero) leaves room for this payment.
    pub fn admits(&self, found: Option<&CounterRecord>) -> bool {
        let (spent, count) = found.map_or((0, 0), |r| (r.spent_micros, r.payment_count));
        let within = |value: i64, max: Option<u64>| {
            max.is_none_or(|max| u64::try_from(value).map_or(true, |v| v <= max))
        };
        within(spent, self.max_micros_before) && within(count, self.max_count_before)
    }
}

/// A counter item as stored. Signed: a void after the counter was deleted recreates it below
/// zero, which counts as nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterRecord {
    /// Micro-USD counted in the window.
    #[serde(default)]
    pub spent_micros: i64,
    /// Payments counted in the window.
    #[serde(default)]
    pub payment_count: i64,
}

/// Why a payment cannot be charged to its budgets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BudgetRefusal {
    /// The payment alone is larger than a budget's amount (named).
    Exceeded(String),
    /// A budget's time zone or the clock is outside what the ledger can compute (named).
    Unusable(String),
}

/// The charges one payment of `micros` at `now` makes on `claims`' counters, one per counter:
/// two budgets of one scope and window share a counter, under the stricter of their limits.
pub fn charges(
    claims: &[BudgetClaim],
    user_id: &str,
    agent_id: &str,
    micros: u64,
    now: u64,
) -> Result<Vec<CounterCharge>, BudgetRefusal> {
    let mut by_key: BTreeMap<CounterKey, CounterCharge> = BTreeMap::new();
    for claim in claims {
        let label = format!("{} {} budget", claim.scope.owner(), claim.window.describe());
        let before = |limit: Option<u64>, cost: u64| match limit {
            None => Ok(None),
            Some(limit) => limit
                .checked_sub(cost)
                .map(Some)
                .ok_or_else(|| BudgetRefusal::Exceeded(label.clone())),
        };
        let max_micros_before = before(claim.amount_micros, micros)?;
        let max_count_before = before(claim.count, 1)?;
        let tz = jiff::tz::db()
            .get(&claim.timezone)
            .map_err(|_| BudgetRefusal::Unusable(format!("{label}: timezone")))?;
        let subject = match claim.scope {
            BudgetScope::Agent => agent_id,
            BudgetScope::Global | BudgetScope::User => user_id,
        };
        let pk = format!("{BUDGET_PK_PREFIX}{}#{subject}", claim.scope.as_str());
        for slot in slots(claim.window, &tz, now)
            .ok_or_else(|| BudgetRefusal::Unusable(format!("{label}: the clock")))?
        {
            let key = CounterKey {
                pk: pk.clone(),
                sk: slot.sort_key(),
            };
            let charge = by_key.entry(key.clone()).or_insert_with(|| CounterCharge {
                key,
                micros,
                max_micros_before: None,
                max_count_before: None,
                ttl: slot.end.saturating_add(COUNTER_KEEP_SECONDS),
                label: label.clone(),
                dimension: format!("{}:{}", claim.scope.as_str(), claim.window.id()),
            });
            charge.max_micros_before = stricter(charge.max_micros_before, max_micros_before);
            charge.max_count_before = stricter(charge.max_count_before, max_count_before);
        }
    }
    Ok(by_key.into_values().collect())
}

fn stricter(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The counters `claims` would charge at `now`, for reading (verify's early check): the keys
/// of [`charges`] for a payment that no limit refuses by itself.
pub fn counter_keys(
    claims: &[BudgetClaim],
    user_id: &str,
    agent_id: &str,
    now: u64,
) -> Vec<CounterKey> {
    let unlimited: Vec<BudgetClaim> = claims
        .iter()
        .map(|c| BudgetClaim {
            amount_micros: None,
            count: None,
            ..c.clone()
        })
        .collect();
    charges(&unlimited, user_id, agent_id, 0, now)
        .map(|c| c.into_iter().map(|c| c.key).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(
        scope: BudgetScope,
        window: BudgetWindow,
        micros: Option<u64>,
        count: Option<u64>,
    ) -> BudgetClaim {
        BudgetClaim {
            scope,
            window,
            timezone: "Europe/Paris".into(),
            amount_micros: micros,
            count,
        }
    }

    const NOW: u64 = 1_796_083_200; // 2026-12-01T00:00:00Z, 01:00 in Paris

    #[test]
    fn a_charge_says_how_much_the_counter_may_hold_before_the_payment() {
        let c = charges(
            &[claim(
                BudgetScope::User,
                BudgetWindow::Day,
                Some(50_000_000),
                Some(10),
            )],
            "u1",
            "a1",
            2_000_000,
            NOW,
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].key.pk, "BUDGET#user#u1");
        assert_eq!(c[0].key.sk, format!("day#{}", NOW - 3600));
        assert_eq!(
            (c[0].max_micros_before, c[0].max_count_before),
            (Some(48_000_000), Some(9))
        );
        assert_eq!(c[0].label, "the user's day budget");
        assert_eq!(c[0].ttl, NOW - 3600 + 86_400 + COUNTER_KEEP_SECONDS);
    }

    #[test]
    fn agent_budgets_count_per_agent_and_global_ones_per_user() {
        let c = charges(
            &[
                claim(BudgetScope::Agent, BudgetWindow::Week, None, Some(3)),
                claim(BudgetScope::Global, BudgetWindow::Week, None, Some(3)),
            ],
            "u1",
            "a1",
            1,
            NOW,
        )
        .unwrap();
        let pks: Vec<&str> = c.iter().map(|c| c.key.pk.as_str()).collect();
        assert_eq!(pks, ["BUDGET#agent#a1", "BUDGET#global#u1"]);
    }

    #[test]
    fn two_budgets_of_one_window_share_a_counter_under_the_stricter_limits() {
        let c = charges(
            &[
                claim(BudgetScope::User, BudgetWindow::Day, Some(10_000_000), None),
                claim(
                    BudgetScope::User,
                    BudgetWindow::Day,
                    Some(5_000_000),
                    Some(4),
                ),
            ],
            "u1",
            "a1",
            1_000_000,
            NOW,
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].max_micros_before, c[0].max_count_before),
            (Some(4_000_000), Some(3))
        );
    }

    #[test]
    fn a_rolling_budget_charges_five_counters() {
        let c = charges(
            &[claim(
                BudgetScope::User,
                BudgetWindow::Rolling(3600),
                None,
                Some(2),
            )],
            "u1",
            "a1",
            1,
            NOW,
        )
        .unwrap();
        assert_eq!(c.len(), 5);
        assert!(c
            .iter()
            .all(|c| c.key.sk.starts_with("rolling3600#") && c.max_count_before == Some(1)));
    }

    #[test]
    fn a_payment_larger_than_a_budget_is_refused_without_a_counter() {
        assert_eq!(
            charges(
                &[claim(
                    BudgetScope::Agent,
                    BudgetWindow::Month,
                    Some(999_999),
                    None
                )],
                "u1",
                "a1",
                1_000_000,
                NOW
            ),
            Err(BudgetRefusal::Exceeded("the agent's month budget".into()))
        );
    }

    #[test]
    fn an_unknown_timezone_is_unusable_not_a_panic() {
        let mut c = claim(BudgetScope::User, BudgetWindow::Day, Some(1), None);
        c.timezone = "Nowhere/Else".into();
        assert!(matches!(
            charges(&[c], "u", "a", 1, NOW),
            Err(BudgetRefusal::Unusable(_))
        ));
    }

    #[test]
    fn admits_compares_the_counter_with_the_room_left() {
        let charge = CounterCharge {
            key: CounterKey {
                pk: "p".into(),
                sk: "s".into(),
            },
            micros: 1,
            max_micros_before: Some(10),
            max_count_before: Some(2),
            ttl: 0,
            label: String::new(),
            dimension: String::new(),
        };
        let rec = |spent, count| CounterRecord {
            spent_micros: spent,
            payment_count: count,
        };
        assert!(charge.admits(None));
        assert!(charge.admits(Some(&rec(10, 2))));
        assert!(!charge.admits(Some(&rec(11, 0))));
        assert!(!charge.admits(Some(&rec(0, 3))));
        assert!(charge.admits(Some(&rec(-5, -1))));
    }

    #[test]
    fn counter_keys_are_the_keys_a_charge_would_use() {
        let claims = [
            claim(BudgetScope::User, BudgetWindow::Day, Some(1), None),
            claim(BudgetScope::Agent, BudgetWindow::Rolling(60), None, Some(1)),
        ];
        let keys = counter_keys(&claims, "u1", "a1", NOW);
        let charged: Vec<CounterKey> = charges(&claims, "u1", "a1", 1, NOW)
            .unwrap()
            .into_iter()
            .map(|c| c.key)
            .collect();
        assert_eq!(keys, charged);
        assert_eq!(keys.len(), 6);
    }
}
