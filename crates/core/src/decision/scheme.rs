//! The x402 schemes predebit approves: `exact` (the signed amount is the charge) always, and
//! `upto` (the signed amount is a maximum the merchant settles under) where a policy's `schemes`
//! allows it. `upto` is x402 v2 on an EVM network, signed with Permit2 through x402's upto
//! proxy, and names the facilitator its signature binds.

use serde_json::Value;

use super::{KNOWN_SCHEMES, SCHEME_UPTO};
use crate::address::{family, validate_address, Family};
use crate::reason::ReasonCode;
use crate::x402::Requirement;

/// A scheme predebit approves, on terms it can sign: `upto` is x402 v2 on an EVM network (it is
/// signed with Permit2) and names the facilitator the signature binds. Whether policy allows the
/// scheme is checked with the policies.
pub(super) fn scheme_terms(requirement: &Requirement) -> Result<(), (ReasonCode, &'static str)> {
    if !KNOWN_SCHEMES.contains(&requirement.scheme.as_str()) {
        return Err((
            ReasonCode::SchemeNotAllowed,
            "requirement.scheme: only 'exact' and 'upto' are approved",
        ));
    }
    if requirement.scheme != SCHEME_UPTO {
        return Ok(());
    }
    if requirement.x402_version != 2 || family(&requirement.network) != Some(Family::Evm) {
        return Err((
            ReasonCode::SchemeNotAllowed,
            "requirement.scheme: 'upto' is approved with x402 v2 on EVM networks only",
        ));
    }
    let facilitator = requirement
        .extra
        .as_ref()
        .and_then(|e| e.get("facilitatorAddress"));
    match facilitator {
        Some(Value::String(a)) if validate_address(&requirement.network, a).is_ok() => Ok(()),
        Some(_) => Err((
            ReasonCode::RequirementInvalid,
            "requirement.extra.facilitatorAddress: must be an EVM address",
        )),
        None => Err((
            ReasonCode::RequirementInvalid,
            "requirement.extra.facilitatorAddress: is required for 'upto'",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::tests::{decide_now, event, keys, store, NOW};
    use crate::reason::ReasonCode;

    const FACILITATOR: &str = "0x1111111111111111111111111111111111111111";

    fn upto_event() -> Value {
        let mut e = event("20000");
        e["requirement"]["scheme"] = json!("upto");
        e["requirement"]["extra"] =
            json!({"name": "USD Coin", "version": "2", "facilitatorAddress": FACILITATOR});
        e
    }

    #[test]
    fn upto_needs_a_policy_that_names_it_and_every_list_that_is_set() {
        // GIVEN an upto payment under policies that do and do not name the scheme
        for (global, user, expected) in [
            ("{}", "{}", ReasonCode::SchemeNotAllowed),
            (
                r#"{"schemes":["exact"]}"#,
                "{}",
                ReasonCode::SchemeNotAllowed,
            ),
            (
                r#"{"schemes":["exact","upto"]}"#,
                "{}",
                ReasonCode::Approved,
            ),
            ("{}", r#"{"schemes":["upto"]}"#, ReasonCode::Approved),
            (
                r#"{"schemes":["exact","upto"]}"#,
                r#"{"schemes":["exact"]}"#,
                ReasonCode::SchemeNotAllowed,
            ),
        ] {
            // WHEN decided THEN it passes only where some list names it and none leaves it out
            let r = decide_now(&store(Some(global), Some(user), 10_000_000), &upto_event());
            assert_eq!(r.reason_code, expected, "{global} {user}: {}", r.message);
        }
    }

    #[test]
    fn exact_is_allowed_unless_a_schemes_list_leaves_it_out() {
        // GIVEN an exact payment WHEN the lists allow it or not THEN it passes only where allowed
        for (user, expected) in [
            ("{}", ReasonCode::Approved),
            (r#"{"schemes":["exact","upto"]}"#, ReasonCode::Approved),
            (r#"{"schemes":["upto"]}"#, ReasonCode::SchemeNotAllowed),
        ] {
            let r = decide_now(&store(Some("{}"), Some(user), 10_000_000), &event("20000"));
            assert_eq!(r.reason_code, expected, "{user}: {}", r.message);
        }
    }

    #[test]
    fn an_approved_upto_payment_is_judged_and_held_at_its_signed_maximum() {
        // GIVEN upto allowed, a per-payment cap of $0.02 and a session with $0.02 left
        let s = store(
            Some(r#"{"schemes":["exact","upto"],"maxPerPayment":"0.02"}"#),
            None,
            20_000,
        );
        // WHEN the maximum fits THEN YES with a token for the upto scheme at the maximum
        let r = decide_now(&s, &upto_event());
        assert_eq!(r.reason_code, ReasonCode::Approved, "{}", r.message);
        let claims =
            crate::token::verify(r.decision_token.as_deref().unwrap(), &keys(), NOW).unwrap();
        assert_eq!(
            (claims.scheme.as_str(), claims.amount_micros),
            ("upto", 20_000)
        );
        // WHEN the maximum is one unit above the cap THEN NO, whatever the merchant might charge
        let mut e = upto_event();
        e["requirement"]["amount"] = json!("20001");
        assert_eq!(
            decide_now(&s, &e).reason_code,
            ReasonCode::AmountOverPaymentLimit
        );
    }

    #[test]
    fn upto_off_evm_or_on_x402_v1_is_not_allowed() {
        let s = store(Some(r#"{"schemes":["exact","upto"]}"#), None, 10_000_000);
        // GIVEN upto on x402 v1 (the entry in v1's shape)
        let mut v1 = upto_event();
        v1["x402Version"] = json!(1);
        let entry = v1["requirement"].as_object_mut().unwrap();
        let amount = entry.remove("amount").unwrap();
        entry.insert("maxAmountRequired".into(), amount);
        entry.insert("network".into(), json!("base"));
        entry.insert("resource".into(), json!("https://api.example/x"));
        entry.insert("description".into(), json!("d"));
        entry.insert("mimeType".into(), json!("application/json"));
        // GIVEN upto on Solana
        let mut solana = upto_event();
        solana["requirement"]["network"] = json!("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp");
        solana["requirement"]["asset"] = json!("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v");
        solana["requirement"]["payTo"] = json!("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM");
        for e in [v1, solana] {
            // WHEN decided THEN SCHEME_NOT_ALLOWED before any policy is read
            let r = decide_now(&s, &e);
            assert_eq!(r.reason_code, ReasonCode::SchemeNotAllowed, "{}", r.message);
            assert!(r.message.contains("EVM"), "{}", r.message);
        }
    }

    #[test]
    fn upto_without_a_valid_facilitator_is_requirement_invalid_naming_the_field_only() {
        let s = store(Some(r#"{"schemes":["exact","upto"]}"#), None, 10_000_000);
        let marker = "0xZZ-facilitator-marker";
        for facilitator in [None, Some(json!(marker)), Some(json!(7))] {
            // GIVEN an upto entry whose facilitatorAddress is missing, not an address or no string
            let mut e = upto_event();
            match facilitator {
                Some(f) => e["requirement"]["extra"]["facilitatorAddress"] = f,
                None => {
                    e["requirement"]["extra"]
                        .as_object_mut()
                        .unwrap()
                        .remove("facilitatorAddress");
                }
            }
            // WHEN decided THEN REQUIREMENT_INVALID naming the field, never its value
            let r = decide_now(&s, &e);
            assert_eq!(r.reason_code, ReasonCode::RequirementInvalid);
            assert!(
                r.message.contains("extra.facilitatorAddress"),
                "{}",
                r.message
            );
            assert!(!r.message.contains("marker"), "{}", r.message);
        }
    }

    #[test]
    fn a_schemes_list_that_is_empty_unknown_or_repeated_is_policy_invalid() {
        for doc in [
            r#"{"schemes":[]}"#,
            r#"{"schemes":["exact","deferred"]}"#,
            r#"{"schemes":["upto","upto"]}"#,
            r#"{"schemes":"upto"}"#,
        ] {
            // GIVEN a global policy with a bad schemes list WHEN decided THEN POLICY_INVALID on it
            let r = decide_now(&store(Some(doc), None, 10_000_000), &event("20000"));
            assert_eq!(r.reason_code, ReasonCode::PolicyInvalid, "{doc}");
            assert!(
                r.message.ends_with("(global policy: schemes is invalid)"),
                "{doc}: {}",
                r.message
            );
        }
    }
}
