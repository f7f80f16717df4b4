//! The hold token reserve returns: proof that the caller is the one the hold was reserved for.
//!
//! Format: the decision token's envelope, `v1.<kid>.<payload>.<mac>`, with its own domain tag
//! (`predebit/hold-token/v1`), over the JSON of [`HoldClaims`]. markSent, commit, release and
//! getHold require it, and getSession on the agent-facing ledger requires one of the session, so
//! knowing a session id and a paymentId is not enough to read or move someone else's hold. It
//! does not expire: it is good for as long as the hold exists. It is issued under the kid that
//! sealed the hold, so a replayed reserve returns the same token.

use serde::{Deserialize, Serialize};

use crate::hold::Hold;
use crate::keys::KeyRing;
use crate::token::{open, seal, TokenError};

/// Domain tag of the hold-token MAC.
pub const HOLD_TOKEN_MAC_TAG: &str = "predebit/hold-token/v1";

/// What a hold token names: one hold and whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldClaims {
    /// The session the hold draws on.
    pub payment_session_id: String,
    /// The hold.
    pub payment_id: String,
    /// The wallet owner the hold was reserved for.
    pub user_id: String,
    /// The agent that reserved it.
    pub agent_id: String,
}

/// The hold token for `hold`, reserved for `user_id`, under the kid that sealed the hold when the
/// ring still holds it (else the active kid).
pub fn issue_for(hold: &Hold, user_id: &str, keys: &KeyRing) -> String {
    let claims = HoldClaims {
        payment_session_id: hold.payment_session_id.clone(),
        payment_id: hold.payment_id.clone(),
        user_id: user_id.to_string(),
        agent_id: hold.agent_id.clone(),
    };
    let payload = serde_json::to_vec(&claims).expect("HoldClaims always serializes");
    let kid = if keys.has_kid(&hold.mac_kid) {
        hold.mac_kid.as_str()
    } else {
        keys.active_kid()
    };
    seal(HOLD_TOKEN_MAC_TAG, &payload, keys, kid)
}

/// Checks a hold token's MAC and returns what it names.
pub fn verify(token: &str, keys: &KeyRing) -> Result<HoldClaims, TokenError> {
    let payload = open(HOLD_TOKEN_MAC_TAG, token, keys)?;
    serde_json::from_slice(&payload)
        .map_err(|_| TokenError::Malformed("payload is not hold-token claims"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hold::tests::fixture;
    use crate::hold::HoldState;
    use crate::keys::tests::{rotated_ring, test_ring};
    use proptest::prelude::*;

    fn hold(keys: &KeyRing) -> Hold {
        fixture(&"ab".repeat(32), HoldState::Pending, 1_000_000, keys)
    }

    #[test]
    fn a_hold_token_names_its_hold_and_owner() {
        let keys = test_ring();
        let token = issue_for(&hold(&keys), "u1", &keys);
        assert_eq!(
            verify(&token, &keys),
            Ok(HoldClaims {
                payment_session_id: "ps1".into(),
                payment_id: "ab".repeat(32),
                user_id: "u1".into(),
                agent_id: "a1".into(),
            })
        );
    }

    #[test]
    fn the_same_hold_gets_the_same_token_even_after_rotation() {
        // GIVEN a hold sealed before a rotation
        let old = test_ring();
        let h = hold(&old);
        let before = issue_for(&h, "u1", &old);
        // THEN the rotated ring (which still holds the old kid) issues the same token
        assert_eq!(issue_for(&h, "u1", &rotated_ring()), before);
    }

    #[test]
    fn a_decision_token_mac_is_not_a_hold_token_mac() {
        // GIVEN a decision-token envelope over hold claims
        let keys = test_ring();
        let claims = verify(&issue_for(&hold(&keys), "u1", &keys), &keys).unwrap();
        let payload = serde_json::to_vec(&claims).unwrap();
        let forged = seal(
            crate::token::TOKEN_MAC_TAG,
            &payload,
            &keys,
            keys.active_kid(),
        );
        // THEN it is refused as a hold token
        assert_eq!(verify(&forged, &keys), Err(TokenError::BadMac));
    }

    #[test]
    fn an_edited_claim_is_a_bad_mac() {
        let keys = test_ring();
        let token = issue_for(&hold(&keys), "u1", &keys);
        let parts: Vec<&str> = token.split('.').collect();
        let other = issue_for(&hold(&keys), "u2", &keys);
        let other_payload = other.split('.').nth(2).unwrap();
        let spliced = format!("{}.{}.{}.{}", parts[0], parts[1], other_payload, parts[3]);
        assert_eq!(verify(&spliced, &keys), Err(TokenError::BadMac));
    }

    proptest! {
        #[test]
        fn verify_never_panics_and_never_accepts_garbage(s in ".{0,300}") {
            prop_assert!(verify(&s, &test_ring()).is_err());
        }
    }
}
