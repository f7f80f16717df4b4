//! Networks: CAIP-2 identifiers, and the mapping from x402 v1 network names to them.
//!
//! predebit speaks CAIP-2 everywhere (`eip155:8453`, `solana:5eykt4Us...`); v1 names such as
//! `base` are mapped once, at parse time, and an unknown v1 name is refused rather than guessed.

/// Why a network identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// Not `namespace:reference` with CAIP-2's character sets and lengths.
    #[error("not a CAIP-2 network id (namespace:reference, e.g. eip155:8453)")]
    NotCaip2,
    /// A well-formed CAIP-2 id whose namespace predebit has no rules for.
    #[error("unsupported CAIP-2 namespace (predebit knows eip155 and solana)")]
    UnsupportedNamespace,
    /// An `eip155` reference that is not a decimal chain id without leading zeros.
    #[error("eip155 reference must be a decimal chain id without leading zeros")]
    BadEip155Reference,
    /// A `solana` reference that is not 32 base58 characters of the genesis hash.
    #[error("solana reference must be the first 32 base58 characters of the genesis hash")]
    BadSolanaReference,
}

/// x402 v1 network names and their CAIP-2 ids; the complete set predebit accepts in v1.
const V1_NETWORKS: &[(&str, &str)] = &[
    ("base", "eip155:8453"),
    ("base-sepolia", "eip155:84532"),
    ("avalanche", "eip155:43114"),
    ("avalanche-fuji", "eip155:43113"),
    ("polygon", "eip155:137"),
    ("polygon-amoy", "eip155:80002"),
    ("sei", "eip155:1329"),
    ("sei-testnet", "eip155:1328"),
    ("iotex", "eip155:4689"),
    ("abstract", "eip155:2741"),
    ("abstract-testnet", "eip155:11124"),
    ("peaq", "eip155:3338"),
    ("story", "eip155:1514"),
    ("educhain", "eip155:41923"),
    ("skale-base-sepolia", "eip155:324705682"),
    ("solana", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"),
    ("solana-devnet", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"),
];

/// The CAIP-2 id of an x402 v1 network name (exact, case-sensitive match), if known.
pub fn v1_network_to_caip2(name: &str) -> Option<&'static str> {
    V1_NETWORKS
        .iter()
        .find(|(v1, _)| *v1 == name)
        .map(|(_, caip2)| *caip2)
}

/// The x402 v1 name of a CAIP-2 id, if it has one.
pub fn caip2_to_v1_network(caip2: &str) -> Option<&'static str> {
    V1_NETWORKS
        .iter()
        .find(|(_, c)| *c == caip2)
        .map(|(v1, _)| *v1)
}

/// Checks a CAIP-2 id and that predebit knows its namespace (`eip155` or `solana`).
pub fn validate_caip2(s: &str) -> Result<(), NetworkError> {
    let (namespace, reference) = s.split_once(':').ok_or(NetworkError::NotCaip2)?;
    let namespace_ok = (3..=8).contains(&namespace.len())
        && namespace
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_lowercase() || b.is_ascii_digit());
    let reference_ok = (1..=32).contains(&reference.len())
        && reference
            .bytes()
            .all(|b| b == b'-' || b == b'_' || b.is_ascii_alphanumeric());
    if !namespace_ok || !reference_ok {
        return Err(NetworkError::NotCaip2);
    }
    match namespace {
        "eip155" => {
            let decimal = reference.bytes().all(|b| b.is_ascii_digit());
            if !decimal || reference.starts_with('0') {
                return Err(NetworkError::BadEip155Reference);
            }
            Ok(())
        }
        "solana" => {
            // Base58 excludes 0, O, I and l; '-' and '_' are CAIP-2 legal but not base58.
            let base58 = reference
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l'));
            if reference.len() != 32 || !base58 {
                return Err(NetworkError::BadSolanaReference);
            }
            Ok(())
        }
        _ => Err(NetworkError::UnsupportedNamespace),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_base_maps_to_eip155_8453() {
        // GIVEN the v1 name "base" WHEN mapped THEN it is Base mainnet's chain id
        assert_eq!(v1_network_to_caip2("base"), Some("eip155:8453"));
    }

    #[test]
    fn every_v1_name_maps_to_the_listed_caip2_id() {
        // GIVEN the full v1 table WHEN each name is mapped THEN the listed id comes back
        let expected = [
            ("base", "eip155:8453"),
            ("base-sepolia", "eip155:84532"),
            ("avalanche", "eip155:43114"),
            ("avalanche-fuji", "eip155:43113"),
            ("polygon", "eip155:137"),
            ("polygon-amoy", "eip155:80002"),
            ("sei", "eip155:1329"),
            ("sei-testnet", "eip155:1328"),
            ("iotex", "eip155:4689"),
            ("abstract", "eip155:2741"),
            ("abstract-testnet", "eip155:11124"),
            ("peaq", "eip155:3338"),
            ("story", "eip155:1514"),
            ("educhain", "eip155:41923"),
            ("skale-base-sepolia", "eip155:324705682"),
            ("solana", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"),
            ("solana-devnet", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"),
        ];
        for (name, caip2) in expected {
            assert_eq!(v1_network_to_caip2(name), Some(caip2), "{name}");
            assert_eq!(caip2_to_v1_network(caip2), Some(name), "{caip2}");
        }
        assert_eq!(V1_NETWORKS.len(), expected.len());
    }

    #[test]
    fn every_mapped_v1_network_is_valid_caip2() {
        // GIVEN the v1 table WHEN each target is validated THEN all pass
        for (_, caip2) in V1_NETWORKS {
            assert_eq!(validate_caip2(caip2), Ok(()), "{caip2}");
        }
    }

    #[test]
    fn v1_mapping_refuses_unknown_and_differently_cased_names() {
        // GIVEN names not in the table WHEN mapped THEN none is guessed
        for name in [
            "Base",
            "BASE",
            "base-mainnet",
            "ethereum",
            "",
            "eip155:8453",
            " base",
        ] {
            assert_eq!(v1_network_to_caip2(name), None, "{name:?}");
        }
    }

    #[test]
    fn caip2_accepts_eip155_and_solana_ids() {
        // GIVEN well-formed ids in known namespaces WHEN validated THEN they pass
        for id in [
            "eip155:1",
            "eip155:8453",
            "eip155:324705682",
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
        ] {
            assert_eq!(validate_caip2(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn caip2_refuses_malformed_ids() {
        // GIVEN strings outside CAIP-2 syntax WHEN validated THEN NotCaip2
        for id in [
            "",
            "base",
            ":8453",
            "eip155:",
            "ei:1",
            "EIP155:1",
            "eip155x12:1",
            "eip155:1:2",
            "eip155:84 53",
            "eip155:123456789012345678901234567890123",
        ] {
            assert_eq!(validate_caip2(id), Err(NetworkError::NotCaip2), "{id:?}");
        }
    }

    #[test]
    fn caip2_refuses_unknown_namespace() {
        // GIVEN a syntactically valid id in another namespace WHEN validated THEN refused
        assert_eq!(
            validate_caip2("cosmos:cosmoshub-4"),
            Err(NetworkError::UnsupportedNamespace)
        );
    }

    #[test]
    fn caip2_refuses_eip155_reference_that_is_not_a_plain_chain_id() {
        // GIVEN eip155 references with leading zero, zero, hex or letters WHEN validated THEN refused
        for id in ["eip155:08453", "eip155:0", "eip155:0x2105", "eip155:base"] {
            assert_eq!(
                validate_caip2(id),
                Err(NetworkError::BadEip155Reference),
                "{id}"
            );
        }
    }

    #[test]
    fn caip2_refuses_solana_reference_that_is_not_32_base58_characters() {
        // GIVEN solana references too short or with non-base58 characters WHEN validated THEN refused
        for id in [
            "solana:mainnet",
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvd0",
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvd_",
        ] {
            assert_eq!(
                validate_caip2(id),
                Err(NetworkError::BadSolanaReference),
                "{id}"
            );
        }
    }
}
