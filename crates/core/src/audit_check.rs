//! The ledger audit: re-adds a session from its holds and checks every hold's MAC, so an item
//! edited behind the ledger's back (an amount, a balance, a hold re-sealed under a key predebit
//! does not hold) is reported.

use crate::hold::{Hold, HoldState};
use crate::keys::KeyRing;
use crate::money::format_usd;
use crate::records::SessionRecord;

/// Every disagreement between a session, its holds and the key ring, one line each; empty when
/// all agree.
///
/// Checks: each hold's MAC under its kid (an unknown kid is a failure) and that it belongs to
/// the session; `reserved` = the PENDING and SENT amounts; `settled` = the POSTED amounts;
/// `overdraft` no more than the late settlements; and
/// `reserved + settled + available == limit + overdraft`.
pub fn audit_session(session: &SessionRecord, holds: &[Hold], keys: &KeyRing) -> Vec<String> {
    let mut problems = Vec::new();
    // u128 sums: a u64 column edited to its maximum must be reported, not overflow.
    let (mut open, mut posted, mut late) = (0u128, 0u128, 0u128);
    for hold in holds {
        let id = &hold.payment_id;
        if !keys.has_kid(&hold.mac_kid) {
            problems.push(format!(
                "hold {id}: MAC key '{}' is not in the key ring",
                hold.mac_kid
            ));
        } else if !hold.mac_is_valid(keys) {
            problems.push(format!(
                "hold {id}: MAC does not match the hold's fields (amount, payee or terms changed)"
            ));
        }
        if hold.payment_session_id != session.payment_session_id {
            problems.push(format!(
                "hold {id}: names session {} but is stored under {}",
                hold.payment_session_id, session.payment_session_id
            ));
        }
        let amount = u128::from(hold.amount_micros);
        match hold.state {
            HoldState::Pending | HoldState::Sent => open += amount,
            HoldState::Posted => {
                posted += amount;
                if hold.late {
                    late += amount;
                }
            }
            HoldState::Voided => {}
        }
    }
    let s = session;
    if u128::from(s.reserved_micros) != open {
        problems.push(format!(
            "session {}: reserved {} but its PENDING and SENT holds add up to {}",
            s.payment_session_id,
            usd(u128::from(s.reserved_micros)),
            usd(open)
        ));
    }
    if u128::from(s.settled_micros) != posted {
        problems.push(format!(
            "session {}: settled {} but its POSTED holds add up to {}",
            s.payment_session_id,
            usd(u128::from(s.settled_micros)),
            usd(posted)
        ));
    }
    if u128::from(s.overdraft_micros) > late {
        problems.push(format!(
            "session {}: overdraft {} exceeds its late settlements {}",
            s.payment_session_id,
            usd(u128::from(s.overdraft_micros)),
            usd(late)
        ));
    }
    let accounted = u128::from(s.reserved_micros)
        + u128::from(s.settled_micros)
        + u128::from(s.available_micros);
    let funded = u128::from(s.limit_micros) + u128::from(s.overdraft_micros);
    if accounted != funded {
        problems.push(format!(
            "session {}: reserved + settled + available = {} but limit + overdraft = {}",
            s.payment_session_id,
            usd(accounted),
            usd(funded)
        ));
    }
    problems
}

fn usd(micros: u128) -> String {
    match u64::try_from(micros) {
        Ok(m) => format_usd(m),
        Err(_) => format!("{micros} micro-USD"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::SessionStatus;

    fn ring(kid: &str, key: u8) -> KeyRing {
        KeyRing::from_secret_json(&KeyRing::new_secret_json(kid, &[key; 32], &[9; 32])).unwrap()
    }

    fn hold(n: u8, state: HoldState, amount_micros: u64, keys: &KeyRing) -> Hold {
        crate::hold::tests::fixture(&format!("{n:02x}").repeat(32), state, amount_micros, keys)
    }

    /// A session with a 10.00 limit: 1.00 PENDING, 2.00 SENT, 3.00 POSTED, 4.00 VOIDED.
    fn clean(keys: &KeyRing) -> (SessionRecord, Vec<Hold>) {
        let holds = vec![
            hold(1, HoldState::Pending, 1_000_000, keys),
            hold(2, HoldState::Sent, 2_000_000, keys),
            hold(3, HoldState::Posted, 3_000_000, keys),
            hold(4, HoldState::Voided, 4_000_000, keys),
        ];
        let session = SessionRecord {
            payment_session_id: "ps1".into(),
            user_id: "u1".into(),
            limit_micros: 10_000_000,
            reserved_micros: 3_000_000,
            settled_micros: 3_000_000,
            available_micros: 4_000_000,
            overdraft_micros: 0,
            expires_at: 1_000,
            status: SessionStatus::Open,
            open_request_id: None,
            pool_id: None,
            returned_micros: 0,
        };
        (session, holds)
    }

    #[test]
    fn a_clean_session_passes() {
        let keys = ring("k1", 1);
        let (session, holds) = clean(&keys);
        assert_eq!(audit_session(&session, &holds, &keys), Vec::<String>::new());
    }

    #[test]
    fn a_clean_session_with_a_late_settlement_in_overdraft_passes() {
        let keys = ring("k1", 1);
        let (mut session, mut holds) = clean(&keys);
        holds[3].state = HoldState::Posted;
        holds[3].late = true;
        session.settled_micros += 4_000_000;
        session.overdraft_micros = 4_000_000;
        assert_eq!(audit_session(&session, &holds, &keys), Vec::<String>::new());
    }

    #[test]
    fn an_edited_hold_amount_is_caught_by_its_mac_and_the_sums() {
        let keys = ring("k1", 1);
        let (session, mut holds) = clean(&keys);
        holds[2].amount_micros = 1;
        let problems = audit_session(&session, &holds, &keys);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with(&format!("hold {}: MAC does not match", "03".repeat(32))));
        assert_eq!(
            problems[1],
            "session ps1: settled 3.00 but its POSTED holds add up to 0.000001"
        );
    }

    #[test]
    fn a_hold_sealed_under_a_key_not_in_the_ring_is_caught() {
        let keys = ring("k1", 1);
        let (session, mut holds) = clean(&keys);
        holds[0] = hold(1, HoldState::Pending, 1_000_000, &ring("k2", 2));
        let problems = audit_session(&session, &holds, &keys);
        assert_eq!(
            problems,
            vec![format!(
                "hold {}: MAC key 'k2' is not in the key ring",
                "01".repeat(32)
            )]
        );
    }

    #[test]
    fn a_hold_sealed_under_another_key_with_a_known_kid_is_caught() {
        let keys = ring("k1", 1);
        let (session, mut holds) = clean(&keys);
        holds[1] = hold(2, HoldState::Sent, 2_000_000, &ring("k1", 7));
        let problems = audit_session(&session, &holds, &keys);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("MAC does not match"), "{problems:?}");
    }

    #[test]
    fn an_edited_reserved_balance_is_caught_by_the_sum_and_the_invariant() {
        let keys = ring("k1", 1);
        let (mut session, holds) = clean(&keys);
        session.reserved_micros = 0;
        let problems = audit_session(&session, &holds, &keys);
        assert_eq!(
            problems,
            vec![
                "session ps1: reserved 0.00 but its PENDING and SENT holds add up to 3.00",
                "session ps1: reserved + settled + available = 7.00 but limit + overdraft = 10.00",
            ]
        );
    }

    #[test]
    fn overdraft_without_late_settlements_is_caught() {
        let keys = ring("k1", 1);
        let (mut session, holds) = clean(&keys);
        session.overdraft_micros = 1_000_000;
        session.available_micros += 1_000_000;
        let problems = audit_session(&session, &holds, &keys);
        assert_eq!(
            problems,
            vec!["session ps1: overdraft 1.00 exceeds its late settlements 0.00"]
        );
    }

    #[test]
    fn a_hold_of_another_session_is_caught() {
        let keys = ring("k1", 1);
        let (session, mut holds) = clean(&keys);
        holds[3].payment_session_id = "ps2".into();
        holds[3].seal(&keys);
        let problems = audit_session(&session, &holds, &keys);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("names session ps2"), "{problems:?}");
    }

    #[test]
    fn balances_edited_to_the_maximum_are_reported_without_overflow() {
        let keys = ring("k1", 1);
        let (mut session, holds) = clean(&keys);
        session.available_micros = u64::MAX;
        session.settled_micros = u64::MAX;
        let problems = audit_session(&session, &holds, &keys);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
