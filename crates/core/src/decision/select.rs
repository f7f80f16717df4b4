//! Choosing among several `accepts` entries (authorize decides for the whole 402, so the agent
//! never picks what is signed).
//!
//! The rule: among the entries approved, the cheapest in micro-USD, ties going to the merchant's
//! order. When none is approved, the entry that got furthest through the checks (its failing
//! check comes latest in [`CHECK_ORDER`]), ties going to the merchant's order; its reason is the
//! NO. "Furthest" is the entry that differs from an acceptable payment in the fewest respects the
//! order knows of: a budget refusal says more than a network refusal.

use super::Outcome;
use crate::reason::ReasonCode;

/// Every verify check in the order it runs (the module documentation of `decision`), `APPROVED`
/// last: the position of a reason is how far a decision got.
pub const CHECK_ORDER: [ReasonCode; 30] = [
    ReasonCode::InvalidRequest,
    ReasonCode::PaymentTypeNotSupported,
    ReasonCode::RequirementInvalid,
    ReasonCode::SchemeNotAllowed,
    ReasonCode::ResourceMismatch,
    ReasonCode::StoreUnavailable,
    ReasonCode::PolicyMissing,
    ReasonCode::PolicyInvalid,
    ReasonCode::AgentUnknown,
    ReasonCode::AgentUserMismatch,
    ReasonCode::AgentRevoked,
    ReasonCode::AgentSuspended,
    ReasonCode::SessionUnknown,
    ReasonCode::SessionUserMismatch,
    ReasonCode::SessionClosed,
    ReasonCode::SessionExpired,
    ReasonCode::ConsentMissing,
    ReasonCode::ConsentRevoked,
    ReasonCode::ConsentExpired,
    ReasonCode::ToolNotAllowed,
    ReasonCode::NetworkNotAllowed,
    ReasonCode::AssetNotAllowed,
    ReasonCode::AmountOutOfRange,
    ReasonCode::MerchantBlocked,
    ReasonCode::MerchantNotAllowed,
    ReasonCode::AuthorizationWindowTooLong,
    ReasonCode::AmountOverPaymentLimit,
    ReasonCode::SessionBudgetExceeded,
    ReasonCode::BudgetExceeded,
    ReasonCode::Approved,
];

/// How far through the checks a decision with `reason` got (0 = the first check failed). A code
/// that is not a verify check sorts first.
pub fn check_position(reason: ReasonCode) -> usize {
    CHECK_ORDER
        .iter()
        .position(|r| *r == reason)
        .map_or(0, |i| i + 1)
}

/// The index of the outcome a decision takes (see the module documentation); `None` for none.
pub fn select(outcomes: &[Outcome]) -> Option<usize> {
    let approved_micros = |o: &Outcome| {
        (o.reason == ReasonCode::Approved)
            .then(|| o.amount.as_ref().and_then(|a| a.micros))
            .flatten()
    };
    let cheapest = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| approved_micros(o).map(|m| (m, i)))
        .min();
    if let Some((_, i)) = cheapest {
        return Some(i);
    }
    // max_by_key keeps the last of equals; reversing keeps the merchant's first.
    outcomes
        .iter()
        .enumerate()
        .rev()
        .max_by_key(|(_, o)| check_position(o.reason))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::AmountView;

    fn outcome(reason: ReasonCode, micros: Option<u64>) -> Outcome {
        let mut o = Outcome::declined(reason, "");
        o.amount = Some(AmountView {
            atomic: "1".into(),
            asset: None,
            micros,
            usd: None,
        });
        o
    }

    #[test]
    fn the_cheapest_approved_entry_wins_and_ties_keep_the_merchants_order() {
        let outcomes = [
            outcome(ReasonCode::SessionBudgetExceeded, Some(1)),
            outcome(ReasonCode::Approved, Some(30)),
            outcome(ReasonCode::Approved, Some(20)),
            outcome(ReasonCode::Approved, Some(20)),
        ];
        assert_eq!(select(&outcomes), Some(2));
    }

    #[test]
    fn with_none_approved_the_entry_that_got_furthest_gives_the_reason() {
        let outcomes = [
            outcome(ReasonCode::NetworkNotAllowed, None),
            outcome(ReasonCode::AmountOverPaymentLimit, Some(9)),
            outcome(ReasonCode::AssetNotAllowed, None),
            outcome(ReasonCode::AmountOverPaymentLimit, Some(5)),
        ];
        assert_eq!(select(&outcomes), Some(1));
        assert_eq!(
            select(&[outcome(ReasonCode::RequirementInvalid, None)]),
            Some(0)
        );
        assert_eq!(select(&[]), None);
    }

    #[test]
    fn the_order_lists_every_verify_code_once_and_approved_last() {
        let mut codes = CHECK_ORDER.to_vec();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), CHECK_ORDER.len());
        assert_eq!(CHECK_ORDER.last(), Some(&ReasonCode::Approved));
        assert!(
            check_position(ReasonCode::SessionBudgetExceeded)
                > check_position(ReasonCode::NetworkNotAllowed)
        );
        assert_eq!(check_position(ReasonCode::TokenInvalid), 0);
    }
}
