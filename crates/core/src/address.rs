//! On-chain addresses: EVM (`eip155:*`, EIP-55 checked when mixed-case, compared
//! case-insensitively) and Solana (`solana:*`, base58 of 32 bytes, compared exactly).

use std::cell::RefCell;
use std::collections::HashSet;

use sha3::{Digest, Keccak256};

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not `0x` followed by 40 hexadecimal digits.
    #[error("not an EVM address (0x followed by 40 hex digits)")]
    EvmFormat,
    /// Mixed-case but the EIP-55 checksum does not match.
    #[error("EVM address fails its EIP-55 checksum")]
    EvmChecksum,
    /// Not base58 of 32 bytes.
    #[error("not a Solana address (base58 of 32 bytes)")]
    SolanaFormat,
    /// The network's namespace has no address rules here.
    #[error("unsupported network namespace")]
    UnsupportedNamespace,
}

/// The address family a CAIP-2 network uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `eip155:*`.
    Evm,
    /// `solana:*`.
    Solana,
}

/// The address family of a CAIP-2 network, if predebit knows it.
pub fn family(network: &str) -> Option<Family> {
    match network.split_once(':').map(|(ns, _)| ns) {
        Some("eip155") => Some(Family::Evm),
        Some("solana") => Some(Family::Solana),
        _ => None,
    }
}

/// Checks an address for the given CAIP-2 network.
pub fn validate_address(network: &str, address: &str) -> Result<(), AddressError> {
    match family(network) {
        Some(Family::Evm) => validate_evm(address),
        Some(Family::Solana) => validate_solana(address),
        None => Err(AddressError::UnsupportedNamespace),
    }
}

/// The comparison form: EVM lowercased, Solana unchanged.
pub fn normalize_address(network: &str, address: &str) -> String {
    match family(network) {
        Some(Family::Evm) => address.to_ascii_lowercase(),
        _ => address.to_string(),
    }
}

/// Whether two addresses on `network` name the same account.
pub fn addresses_equal(network: &str, a: &str, b: &str) -> bool {
    match family(network) {
        Some(Family::Evm) => a.eq_ignore_ascii_case(b),
        _ => a == b,
    }
}

/// Validates an EVM address; a mixed-case one must carry a correct EIP-55 checksum.
pub fn validate_evm(address: &str) -> Result<(), AddressError> {
    let hex = address.strip_prefix("0x").ok_or(AddressError::EvmFormat)?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AddressError::EvmFormat);
    }
    let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper && !checksum_holds(hex, address) {
        return Err(AddressError::EvmChecksum);
    }
    Ok(())
}

/// How many checksummed addresses a thread remembers as verified before it starts afresh.
const CHECKED_CAPACITY: usize = 256;

thread_local! {
    /// Mixed-case addresses (their 40 digits, case included) whose checksum this thread has
    /// verified: a warm container sees the same assets and merchants again and again, and a
    /// Keccak-256 costs more than the rest of the address checks together. Only successes are
    /// kept, so a wrong checksum is hashed, and refused, every time.
    static CHECKED: RefCell<HashSet<[u8; 40]>> = RefCell::new(HashSet::new());
}

/// Whether the mixed-case `address` (`0x` + `hex`) carries its EIP-55 checksum.
fn checksum_holds(hex: &str, address: &str) -> bool {
    let Ok(digits) = <[u8; 40]>::try_from(hex.as_bytes()) else {
        return false;
    };
    if CHECKED.with(|c| c.borrow().contains(&digits)) {
        return true;
    }
    let holds = eip55_checksum(hex) == address;
    if holds {
        CHECKED.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() >= CHECKED_CAPACITY {
                c.clear();
            }
            c.insert(digits);
        });
    }
    holds
}

/// The EIP-55 form (`0x` + mixed case) of 40 hex digits given in any case.
pub fn eip55_checksum(hex40: &str) -> String {
    let lower = hex40.to_ascii_lowercase();
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        if c.is_ascii_alphabetic() && nibble >= 8 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Validates a Solana address: base58 (Bitcoin alphabet) decoding to exactly 32 bytes.
pub fn validate_solana(address: &str) -> Result<(), AddressError> {
    match base58_decode(address) {
        Some(bytes) if bytes.len() == 32 => Ok(()),
        _ => Err(AddressError::SolanaFormat),
    }
}

const BASE58_ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Decodes base58 (Bitcoin alphabet); `None` on an invalid character or empty input.
pub fn base58_decode(input: &str) -> Option<Vec<u8>> {
    // Solana addresses are at most 44 characters; refuse long input before the quadratic loop.
    if input.is_empty() || input.len() > 128 {
        return None;
    }
    let mut bytes: Vec<u8> = Vec::with_capacity(input.len());
    for c in input.bytes() {
        let mut carry = BASE58_ALPHABET.iter().position(|&a| a == c)? as u32;
        for b in bytes.iter_mut().rev() {
            carry += (*b as u32) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let leading_zeros = input.bytes().take_while(|&c| c == b'1').count();
    let mut out = vec![0u8; leading_zeros];
    out.extend(bytes.into_iter().skip_while(|&b| b == 0));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksummed_usdc_on_base_is_valid() {
        assert_eq!(
            validate_evm("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
            Ok(())
        );
    }

    #[test]
    fn eip55_reproduces_the_reference_vectors() {
        for addr in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            assert_eq!(eip55_checksum(&addr[2..]), addr);
        }
    }

    #[test]
    fn single_case_evm_addresses_skip_the_checksum() {
        assert_eq!(
            validate_evm("0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"),
            Ok(())
        );
        assert_eq!(
            validate_evm("0x833589FCD6EDB6E08F4C7C32D4F71B54BDA02913"),
            Ok(())
        );
    }

    #[test]
    fn a_remembered_checksum_answers_as_the_hash_does() {
        // GIVEN a checksummed address verified once (and so remembered)
        let good = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
        assert_eq!(validate_evm(good), Ok(()));
        // THEN it passes again, and a spelling with one letter's case flipped still fails
        assert_eq!(validate_evm(good), Ok(()));
        let flipped = "0x833589fcD6eDb6E08f4c7C32D4f71b54bdA02913";
        for _ in 0..2 {
            assert_eq!(validate_evm(flipped), Err(AddressError::EvmChecksum));
        }
        // AND past the memo's capacity every answer is still the hash's
        for i in 0..(CHECKED_CAPACITY + 10) {
            let hex = format!("{:040x}", (i as u128) * 0x9e37_79b9_7f4a_7c15);
            let checksummed = eip55_checksum(&hex);
            assert_eq!(validate_evm(&checksummed), Ok(()), "{checksummed}");
        }
        assert_eq!(validate_evm(good), Ok(()));
        assert_eq!(validate_evm(flipped), Err(AddressError::EvmChecksum));
    }

    #[test]
    fn one_flipped_case_fails_the_checksum() {
        assert_eq!(
            validate_evm("0x833589fcD6eDb6E08f4c7C32D4f71b54bdA02913"),
            Err(AddressError::EvmChecksum)
        );
    }

    #[test]
    fn malformed_evm_addresses_are_refused() {
        for bad in [
            "",
            "0x",
            "833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            "0x123",
            "0xZZ3589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA0291300",
        ] {
            assert_eq!(validate_evm(bad), Err(AddressError::EvmFormat), "{bad}");
        }
    }

    #[test]
    fn solana_usdc_mint_is_valid_and_garbage_is_not() {
        assert_eq!(
            validate_solana("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"),
            Ok(())
        );
        assert_eq!(validate_solana("11111111111111111111111111111111"), Ok(()));
        assert_eq!(validate_solana("0OIl"), Err(AddressError::SolanaFormat));
        assert_eq!(validate_solana("abc"), Err(AddressError::SolanaFormat));
    }

    #[test]
    fn evm_compares_case_insensitively_and_solana_exactly() {
        assert!(addresses_equal(
            "eip155:8453",
            "0xAbC0000000000000000000000000000000000001",
            "0xabc0000000000000000000000000000000000001"
        ));
        assert!(!addresses_equal(
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
            "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
            "epjfwdd5aufqssqem2qn1xzybapc8g4wegGkZwyTDt1v"
        ));
    }
}
