//! The post-sign check: the terms a wallet signed, against the payment predebit approved and
//! reserved. A signature that fails it is never handed to a merchant.
//!
//! Checked: the network; the recipient; the amount (exactly the approved atomic amount); the
//! token where the signed payload names it (Permit2's `permitted.token`, v2's `accepted.asset`);
//! `validBefore` after now and no later than the hold's `latestValidBefore`; for Permit2, a spender
//! in the configured proxy list (the `upto` proxies for an `upto` payment, which must be Permit2
//! and name its facilitator; its permitted amount is the approved maximum exactly). An EIP-3009 payload names no token or chain (they are the
//! EIP-712 domain's), so authorize also recovers the signer over the approved terms
//! ([`crate::eip712`]) and requires it to be the payload's `from`; Solana payloads are not
//! decoded and are refused.

use crate::address::addresses_equal;
use crate::hold::Hold;
use crate::x402::{SignedKind, SignedTerms};

/// x402's `x402ExactPermit2Proxy`, the spender `@x402/evm` 2.27 signs Permit2 payments for.
pub const X402_EXACT_PERMIT2_PROXY: &str = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001";
/// x402's `x402UptoPermit2Proxy`, the spender `@x402/evm` 2.27 signs `upto` payments for.
pub const X402_UPTO_PERMIT2_PROXY: &str = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002";

/// The approved payment a signature must match.
#[derive(Debug, Clone, Copy)]
pub struct Approved<'a> {
    /// CAIP-2 network.
    pub network: &'a str,
    /// The token.
    pub asset: &'a str,
    /// The recipient.
    pub pay_to: &'a str,
    /// Atomic amount, canonical decimal digits.
    pub amount_atomic: &'a str,
    /// The latest `validBefore` the approved window allows.
    pub latest_valid_before: u64,
    /// The `upto` scheme: Permit2 only, with the facilitator in the witness.
    pub upto: bool,
}

impl<'a> From<&'a Hold> for Approved<'a> {
    fn from(hold: &'a Hold) -> Self {
        Approved {
            network: &hold.network,
            asset: &hold.asset,
            pay_to: &hold.pay_to,
            amount_atomic: &hold.amount_atomic,
            latest_valid_before: hold.latest_valid_before,
            upto: hold.is_upto(),
        }
    }
}

/// Which signed term differs from the approved payment. Messages name the term, never a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignedMismatch {
    /// The payload is for another network.
    #[error("the signed network differs from the approved one")]
    Network,
    /// The payload pays someone else.
    #[error("the signed recipient differs from the approved payTo")]
    Recipient,
    /// The payload moves another amount.
    #[error("the signed amount differs from the approved amount")]
    Amount,
    /// The payload names another token.
    #[error("the signed token differs from the approved asset")]
    Token,
    /// A Permit2 payload lets a spender predebit does not trust move the funds.
    #[error("the signed Permit2 spender is not a configured x402 proxy")]
    Spender,
    /// The payload has no expiry predebit can read.
    #[error("the signed payload has no validBefore")]
    NoExpiry,
    /// The authorization can no longer settle.
    #[error("the signed authorization has already expired")]
    Expired,
    /// The authorization outlives the approved window (and so its hold).
    #[error("the signed authorization is valid longer than the approved window allows")]
    OutlivesWindow,
    /// The signature is not its payer's over the approved chain, token, recipient and amount.
    #[error("the signature is not the payer's over the approved terms")]
    Signature,
    /// An `upto` payment signed otherwise than with Permit2 and a facilitator in its witness.
    #[error("an upto payment must be a Permit2 authorization naming its facilitator")]
    Scheme,
    /// Terms predebit cannot read from the payload (Solana transactions).
    #[error("the signed payload's terms cannot be read")]
    Unreadable,
}

/// Checks `terms` against `approved` at `now`; `permit2_proxies` are the spenders a Permit2
/// payment may name (case-insensitive).
pub fn check_signed(
    terms: &SignedTerms,
    approved: Approved<'_>,
    permit2_proxies: &[&str],
    now: u64,
) -> Result<(), SignedMismatch> {
    if terms.kind == SignedKind::Solana {
        return Err(SignedMismatch::Unreadable);
    }
    if approved.upto && (terms.kind != SignedKind::Permit2 || terms.facilitator.is_none()) {
        return Err(SignedMismatch::Scheme);
    }
    if terms.network != approved.network {
        return Err(SignedMismatch::Network);
    }
    if !addresses_equal(approved.network, &terms.to, approved.pay_to) {
        return Err(SignedMismatch::Recipient);
    }
    if terms.value != approved.amount_atomic {
        return Err(SignedMismatch::Amount);
    }
    if terms
        .asset
        .as_deref()
        .is_some_and(|a| !addresses_equal(approved.network, a, approved.asset))
    {
        return Err(SignedMismatch::Token);
    }
    if terms.kind == SignedKind::Permit2 {
        let trusted = terms.spender.as_deref().is_some_and(|s| {
            permit2_proxies
                .iter()
                .any(|p| addresses_equal(approved.network, s, p))
        });
        if terms.asset.is_none() {
            return Err(SignedMismatch::Token);
        }
        if !trusted {
            return Err(SignedMismatch::Spender);
        }
    }
    let valid_before = terms.valid_before.ok_or(SignedMismatch::NoExpiry)?;
    if valid_before <= now {
        return Err(SignedMismatch::Expired);
    }
    if valid_before > approved.latest_valid_before {
        return Err(SignedMismatch::OutlivesWindow);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
    const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
    const NOW: u64 = 1_000;

    fn approved() -> Approved<'static> {
        Approved {
            network: "eip155:84532",
            asset: "0x036cbd53842c5426634e7929541ec2318f3dcf7e",
            pay_to: "0x209693bc6afc0c5328ba36faf03c514ef312287c",
            amount_atomic: "10000",
            latest_valid_before: NOW + 330,
            upto: false,
        }
    }

    fn eip3009() -> SignedTerms {
        SignedTerms {
            network: "eip155:84532".into(),
            asset: Some(USDC.into()),
            to: PAY_TO.into(),
            value: "10000".into(),
            valid_before: Some(NOW + 60),
            kind: SignedKind::Eip3009,
            from: "0x857b06519E91e3A54538791bDbb0E22373e36b66".into(),
            spender: None,
            facilitator: None,
        }
    }

    fn permit2() -> SignedTerms {
        SignedTerms {
            kind: SignedKind::Permit2,
            spender: Some(X402_EXACT_PERMIT2_PROXY.to_lowercase()),
            ..eip3009()
        }
    }

    fn check(terms: &SignedTerms) -> Result<(), SignedMismatch> {
        check_signed(terms, approved(), &[X402_EXACT_PERMIT2_PROXY], NOW)
    }

    #[test]
    fn the_approved_terms_pass_in_either_letter_case() {
        assert_eq!(check(&eip3009()), Ok(()));
        assert_eq!(check(&permit2()), Ok(()));
        let v1 = SignedTerms {
            asset: None,
            ..eip3009()
        };
        assert_eq!(check(&v1), Ok(()));
    }

    #[test]
    fn each_differing_term_is_named() {
        let cases: Vec<(SignedTerms, SignedMismatch)> = vec![
            (
                SignedTerms {
                    network: "eip155:8453".into(),
                    ..eip3009()
                },
                SignedMismatch::Network,
            ),
            (
                SignedTerms {
                    to: "0x0000000000000000000000000000000000000001".into(),
                    ..eip3009()
                },
                SignedMismatch::Recipient,
            ),
            (
                SignedTerms {
                    value: "10001".into(),
                    ..eip3009()
                },
                SignedMismatch::Amount,
            ),
            (
                SignedTerms {
                    asset: Some("0x0000000000000000000000000000000000000002".into()),
                    ..eip3009()
                },
                SignedMismatch::Token,
            ),
            (
                SignedTerms {
                    asset: None,
                    ..permit2()
                },
                SignedMismatch::Token,
            ),
            (
                SignedTerms {
                    spender: Some("0x4020615294c913F045dc10f0a5cdEbd86c280001".into()),
                    ..permit2()
                },
                SignedMismatch::Spender,
            ),
            (
                SignedTerms {
                    spender: None,
                    ..permit2()
                },
                SignedMismatch::Spender,
            ),
            (
                SignedTerms {
                    valid_before: None,
                    ..eip3009()
                },
                SignedMismatch::NoExpiry,
            ),
            (
                SignedTerms {
                    valid_before: Some(NOW),
                    ..eip3009()
                },
                SignedMismatch::Expired,
            ),
            (
                SignedTerms {
                    valid_before: Some(NOW + 331),
                    ..eip3009()
                },
                SignedMismatch::OutlivesWindow,
            ),
            (
                SignedTerms {
                    kind: SignedKind::Solana,
                    ..eip3009()
                },
                SignedMismatch::Unreadable,
            ),
        ];
        for (terms, expected) in cases {
            assert_eq!(check(&terms), Err(expected), "{terms:?}");
        }
    }

    #[test]
    fn a_spender_is_trusted_only_when_configured() {
        let old = "0x4020615294c913F045dc10f0a5cdEbd86c280001";
        let terms = SignedTerms {
            spender: Some(old.into()),
            ..permit2()
        };
        assert_eq!(check_signed(&terms, approved(), &[old], NOW), Ok(()));
        assert_eq!(
            check_signed(&terms, approved(), &[], NOW),
            Err(SignedMismatch::Spender)
        );
    }

    #[test]
    fn an_upto_payment_is_permit2_through_the_upto_proxy_naming_a_facilitator() {
        let upto = Approved {
            upto: true,
            ..approved()
        };
        let signed = SignedTerms {
            spender: Some(X402_UPTO_PERMIT2_PROXY.to_lowercase()),
            facilitator: Some("0x70997970c51812dc3a010c7d01b50e0d17dc79c8".into()),
            ..permit2()
        };
        let upto_proxies = [X402_UPTO_PERMIT2_PROXY];
        // GIVEN an upto approval WHEN the upto proxy is the spender THEN it passes
        assert_eq!(check_signed(&signed, upto, &upto_proxies, NOW), Ok(()));
        // WHEN signed with EIP-3009, or with no facilitator in the witness THEN Scheme
        for terms in [
            eip3009(),
            SignedTerms {
                facilitator: None,
                ..signed.clone()
            },
        ] {
            assert_eq!(
                check_signed(&terms, upto, &upto_proxies, NOW),
                Err(SignedMismatch::Scheme)
            );
        }
        // WHEN the spender is the exact proxy THEN Spender; WHEN the permitted amount is above
        // or below the approved maximum THEN Amount
        assert_eq!(
            check_signed(&permit2_with_facilitator(), upto, &upto_proxies, NOW),
            Err(SignedMismatch::Spender)
        );
        for value in ["10001", "9999"] {
            let terms = SignedTerms {
                value: value.into(),
                ..signed.clone()
            };
            assert_eq!(
                check_signed(&terms, upto, &upto_proxies, NOW),
                Err(SignedMismatch::Amount)
            );
        }
    }

    fn permit2_with_facilitator() -> SignedTerms {
        SignedTerms {
            facilitator: Some("0x70997970c51812dc3a010c7d01b50e0d17dc79c8".into()),
            ..permit2()
        }
    }

    #[test]
    fn the_libraries_fixtures_pass_against_their_own_requirements() {
        // GIVEN payloads signed by @x402/core + @x402/evm 2.27.0 (make vectors)
        for name in [
            "exact_eip3009_v2.json",
            "exact_permit2_v2.json",
            "exact_eip3009_v1.json",
            "upto_permit2_v2.json",
        ] {
            let path = format!(
                "{}/tests/vectors/x402/signed/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            let fixture: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let requirement = &fixture["requirement"];
            let network =
                crate::network::v1_network_to_caip2(requirement["network"].as_str().unwrap())
                    .map(str::to_string)
                    .unwrap_or_else(|| requirement["network"].as_str().unwrap().to_string());
            let amount = requirement
                .get("amount")
                .or_else(|| requirement.get("maxAmountRequired"))
                .and_then(|a| a.as_str())
                .unwrap();
            let asset = requirement["asset"].as_str().unwrap().to_lowercase();
            let pay_to = requirement["payTo"].as_str().unwrap().to_lowercase();
            let accepted = fixture["paymentPayload"]
                .get("accepted")
                .and_then(|a| a["asset"].as_str());
            let (_, terms) = crate::x402::payment::parse_payload(
                &fixture["paymentPayload"]["payload"],
                &network,
                accepted,
            )
            .unwrap();
            let terms = terms.unwrap();
            let valid_before = terms.valid_before.unwrap();
            // WHEN checked just after signing THEN they pass
            let approved = Approved {
                network: &network,
                asset: &asset,
                pay_to: &pay_to,
                amount_atomic: amount,
                latest_valid_before: valid_before,
                upto: requirement["scheme"] == "upto",
            };
            let proxies = if approved.upto {
                [X402_UPTO_PERMIT2_PROXY]
            } else {
                [X402_EXACT_PERMIT2_PROXY]
            };
            assert_eq!(
                check_signed(&terms, approved, &proxies, valid_before - 1),
                Ok(()),
                "{name}"
            );
        }
    }
}
