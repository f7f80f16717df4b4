//! Who signed an x402 EVM payload, over which terms: the EIP-712 digests of EIP-3009's
//! `TransferWithAuthorization` and of the x402 exact scheme's Permit2
//! `PermitWitnessTransferFrom`, built from the APPROVED terms (chain, token, recipient, amount)
//! and the payload's own nonce and times, and the secp256k1 signer recovered from the signature.
//!
//! A signature made for another chain, token, recipient or amount recovers to another address,
//! so comparing the recovered signer with the payload's `from` binds the signature itself to the
//! approved payment, not only the fields written beside it. Type strings as in `@x402/evm` 2.27
//! (checked against its signed vectors in `tests/vectors/x402/signed/`).

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use serde_json::Value;
use sha3::{Digest, Keccak256};

/// Uniswap's Permit2, the verifying contract of every Permit2 signature (the same address on
/// every EVM chain).
pub const PERMIT2_ADDRESS: &str = "0x000000000022D473030F116dDEE9F6B43aC78BA3";

const EIP712_DOMAIN: &str =
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
const EIP712_DOMAIN_NO_VERSION: &str =
    "EIP712Domain(string name,uint256 chainId,address verifyingContract)";
const TRANSFER_WITH_AUTHORIZATION: &str = "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)";
const PERMIT_WITNESS_TRANSFER_FROM: &str = "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)";
const TOKEN_PERMISSIONS: &str = "TokenPermissions(address token,uint256 amount)";
const WITNESS: &str = "Witness(address to,uint256 validAfter)";
const UPTO_PERMIT_WITNESS_TRANSFER_FROM: &str = "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,uint256 validAfter)";
const UPTO_WITNESS: &str = "Witness(address to,address facilitator,uint256 validAfter)";

/// The approved terms a digest is built from.
#[derive(Debug, Clone, Copy)]
pub struct SignedFor<'a> {
    /// EIP-155 chain id of the approved network.
    pub chain_id: u64,
    /// The approved token.
    pub asset: &'a str,
    /// The approved recipient.
    pub pay_to: &'a str,
    /// The approved atomic amount (decimal).
    pub amount_atomic: &'a str,
    /// The token's EIP-712 domain name and version (the requirement's `extra`), for EIP-3009.
    pub domain: Option<(&'a str, &'a str)>,
    /// The `upto` scheme: its Permit2 witness also names the facilitator.
    pub upto: bool,
}

fn keccak(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Keccak256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// A decimal string as a uint256 word, or None when it is not digits or does not fit.
fn uint_word(decimal: &str) -> Option<[u8; 32]> {
    if decimal.is_empty() || decimal.len() > 78 || !decimal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut word = [0u8; 32];
    for digit in decimal.bytes() {
        let mut carry = u32::from(digit - b'0');
        for byte in word.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(word)
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A 0x address as a left-padded word.
fn address_word(address: &str) -> Option<[u8; 32]> {
    let bytes = hex_bytes(address).filter(|b| b.len() == 20)?;
    let mut word = [0u8; 32];
    word[12..].copy_from_slice(&bytes);
    Some(word)
}

fn bytes32(text: &str) -> Option<[u8; 32]> {
    hex_bytes(text)?.try_into().ok()
}

fn u64_word(n: u64) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[24..].copy_from_slice(&n.to_be_bytes());
    word
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// The final EIP-712 digest: `keccak256(0x1901 || domainSeparator || structHash)`.
fn typed_digest(domain: [u8; 32], message: [u8; 32]) -> [u8; 32] {
    keccak(&[&[0x19, 0x01], &domain, &message])
}

/// The EIP-3009 digest for `authorization` (its from, times and nonce) over the approved token,
/// chain, recipient and amount.
pub fn eip3009_digest(authorization: &Value, approved: SignedFor<'_>) -> Option<[u8; 32]> {
    let (name, version) = approved.domain?;
    let domain = keccak(&[
        &keccak(&[EIP712_DOMAIN.as_bytes()]),
        &keccak(&[name.as_bytes()]),
        &keccak(&[version.as_bytes()]),
        &u64_word(approved.chain_id),
        &address_word(approved.asset)?,
    ]);
    let message = keccak(&[
        &keccak(&[TRANSFER_WITH_AUTHORIZATION.as_bytes()]),
        &address_word(str_at(authorization, &["from"])?)?,
        &address_word(approved.pay_to)?,
        &uint_word(approved.amount_atomic)?,
        &uint_word(str_at(authorization, &["validAfter"])?)?,
        &uint_word(str_at(authorization, &["validBefore"])?)?,
        &bytes32(str_at(authorization, &["nonce"])?)?,
    ]);
    Some(typed_digest(domain, message))
}

/// The x402 Permit2 digest for `permit` (its spender, nonce, deadline, validAfter and, for
/// `upto`, facilitator) over the approved token, chain, recipient and amount.
pub fn permit2_digest(permit: &Value, approved: SignedFor<'_>) -> Option<[u8; 32]> {
    let domain = keccak(&[
        &keccak(&[EIP712_DOMAIN_NO_VERSION.as_bytes()]),
        &keccak(&[b"Permit2"]),
        &u64_word(approved.chain_id),
        &address_word(PERMIT2_ADDRESS)?,
    ]);
    let permitted = keccak(&[
        &keccak(&[TOKEN_PERMISSIONS.as_bytes()]),
        &address_word(approved.asset)?,
        &uint_word(approved.amount_atomic)?,
    ]);
    let valid_after = uint_word(str_at(permit, &["witness", "validAfter"])?)?;
    let (witness, primary) = if approved.upto {
        let witness = keccak(&[
            &keccak(&[UPTO_WITNESS.as_bytes()]),
            &address_word(approved.pay_to)?,
            &address_word(str_at(permit, &["witness", "facilitator"])?)?,
            &valid_after,
        ]);
        (witness, UPTO_PERMIT_WITNESS_TRANSFER_FROM)
    } else {
        let witness = keccak(&[
            &keccak(&[WITNESS.as_bytes()]),
            &address_word(approved.pay_to)?,
            &valid_after,
        ]);
        (witness, PERMIT_WITNESS_TRANSFER_FROM)
    };
    let message = keccak(&[
        &keccak(&[primary.as_bytes()]),
        &permitted,
        &address_word(str_at(permit, &["spender"])?)?,
        &uint_word(str_at(permit, &["nonce"])?)?,
        &uint_word(str_at(permit, &["deadline"])?)?,
        &witness,
    ]);
    Some(typed_digest(domain, message))
}

/// The address that made the 65-byte `signature` (r || s || v, v 27/28 or 0/1) over `digest`.
pub fn recover_signer(digest: &[u8; 32], signature: &str) -> Option<[u8; 20]> {
    let bytes = hex_bytes(signature).filter(|b| b.len() == 65)?;
    let v = match bytes[64] {
        27 | 28 => bytes[64] - 27,
        0 | 1 => bytes[64],
        _ => return None,
    };
    let signature = Signature::from_slice(&bytes[..64]).ok()?;
    let key =
        VerifyingKey::recover_from_prehash(digest, &signature, RecoveryId::from_byte(v)?).ok()?;
    let point = key.to_encoded_point(false);
    let hash = keccak(&[&point.as_bytes()[1..]]);
    hash[12..].try_into().ok()
}

/// Whether `payload` (`{signature, authorization}` or `{signature, permit2Authorization}`) was
/// signed by its own `from` over the approved terms.
pub fn signed_by_payer(payload: &Value, approved: SignedFor<'_>) -> bool {
    let (digest, from) = if let Some(auth) = payload.get("authorization") {
        (eip3009_digest(auth, approved), str_at(auth, &["from"]))
    } else if let Some(permit) = payload.get("permit2Authorization") {
        (permit2_digest(permit, approved), str_at(permit, &["from"]))
    } else {
        return false;
    };
    let (Some(digest), Some(from), Some(signature)) = (
        digest,
        from.and_then(address_word),
        str_at(payload, &["signature"]),
    ) else {
        return false;
    };
    recover_signer(&digest, signature).is_some_and(|signer| signer[..] == from[12..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(name: &str) -> Value {
        let path = format!(
            "{}/tests/vectors/x402/signed/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn approved_of(v: &Value) -> (String, String, String, Option<(String, String)>) {
        let r = &v["requirement"];
        let amount = r["amount"]
            .as_str()
            .or(r["maxAmountRequired"].as_str())
            .unwrap()
            .to_string();
        let domain = r["extra"]["name"].as_str().map(|n| {
            (
                n.to_string(),
                r["extra"]["version"].as_str().unwrap().to_string(),
            )
        });
        (
            r["asset"].as_str().unwrap().to_string(),
            r["payTo"].as_str().unwrap().to_string(),
            amount,
            domain,
        )
    }

    #[test]
    fn the_x402_libraries_signatures_recover_to_their_signer_over_the_approved_terms() {
        for name in ["exact_eip3009_v1", "exact_eip3009_v2", "exact_permit2_v2"] {
            let v = vector(name);
            let (asset, pay_to, amount, domain) = approved_of(&v);
            let approved = SignedFor {
                chain_id: 84532,
                asset: &asset,
                pay_to: &pay_to,
                amount_atomic: &amount,
                domain: domain.as_ref().map(|(n, ver)| (n.as_str(), ver.as_str())),
                upto: false,
            };
            let payload = &v["paymentPayload"]["payload"];
            assert!(signed_by_payer(payload, approved), "{name}");
            // Any approved term changed: the same signature no longer recovers to the payer.
            let other_chain = SignedFor {
                chain_id: 8453,
                ..approved
            };
            let other_token = SignedFor {
                asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                ..approved
            };
            let other_payee = SignedFor {
                pay_to: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                ..approved
            };
            let other_amount = SignedFor {
                amount_atomic: "10001",
                ..approved
            };
            for (what, a) in [
                ("chain", other_chain),
                ("token", other_token),
                ("payee", other_payee),
                ("amount", other_amount),
            ] {
                assert!(!signed_by_payer(payload, a), "{name}: {what}");
            }
        }
    }

    #[test]
    fn the_upto_signature_recovers_over_the_upto_witness_and_its_facilitator_only() {
        // GIVEN an `upto` payload signed by @x402/evm's UptoEvmScheme
        let v = vector("upto_permit2_v2");
        let (asset, pay_to, amount, _) = approved_of(&v);
        let approved = SignedFor {
            chain_id: 84532,
            asset: &asset,
            pay_to: &pay_to,
            amount_atomic: &amount,
            domain: None,
            upto: true,
        };
        let payload = &v["paymentPayload"]["payload"];
        // WHEN recovered over the upto witness THEN it is the payer's
        assert!(signed_by_payer(payload, approved));
        // WHEN read as an exact Permit2 payment, or for another amount THEN it is not
        assert!(!signed_by_payer(
            payload,
            SignedFor {
                upto: false,
                ..approved
            }
        ));
        assert!(!signed_by_payer(
            payload,
            SignedFor {
                amount_atomic: "49999",
                ..approved
            }
        ));
        // WHEN the witness names another facilitator, or none THEN it is not
        let mut other = payload.clone();
        other["permit2Authorization"]["witness"]["facilitator"] =
            Value::String("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".into());
        assert!(!signed_by_payer(&other, approved));
        let mut none = payload.clone();
        none["permit2Authorization"]["witness"]
            .as_object_mut()
            .unwrap()
            .remove("facilitator");
        assert!(!signed_by_payer(&none, approved));
    }

    #[test]
    fn a_forged_or_malformed_signature_is_not_the_payers() {
        let v = vector("exact_eip3009_v2");
        let (asset, pay_to, amount, domain) = approved_of(&v);
        let approved = SignedFor {
            chain_id: 84532,
            asset: &asset,
            pay_to: &pay_to,
            amount_atomic: &amount,
            domain: domain.as_ref().map(|(n, ver)| (n.as_str(), ver.as_str())),
            upto: false,
        };
        let mut payload = v["paymentPayload"]["payload"].clone();
        for forged in [
            format!("0x{}", "11".repeat(65)),
            "0x".to_string(),
            "0x1234".to_string(),
            format!("0x{}1f", "22".repeat(64)),
            "not hex".to_string(),
        ] {
            payload["signature"] = Value::String(forged.clone());
            assert!(!signed_by_payer(&payload, approved), "{forged}");
        }
        // another payer named beside a genuine signature
        let mut other_from = v["paymentPayload"]["payload"].clone();
        other_from["authorization"]["from"] =
            Value::String("0x70997970C51812dc3A010C7d01b50e0d17dc79C8".into());
        assert!(!signed_by_payer(&other_from, approved));
        // no EIP-712 domain for the token: nothing to check against
        assert!(!signed_by_payer(
            &v["paymentPayload"]["payload"],
            SignedFor {
                domain: None,
                ..approved
            }
        ));
    }

    #[test]
    fn uint_words_are_big_endian_and_bounded() {
        assert_eq!(uint_word("0"), Some([0u8; 32]));
        let mut one_two = [0u8; 32];
        one_two[30] = 1;
        one_two[31] = 2;
        assert_eq!(uint_word("258"), Some(one_two));
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(uint_word(max), Some([0xff; 32]));
        let over = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert_eq!(uint_word(over), None);
        for bad in ["", "-1", "1e3", " 1", "0x10"] {
            assert_eq!(uint_word(bad), None, "{bad}");
        }
    }
}
