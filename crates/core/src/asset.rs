//! The trusted asset table: (network, asset address) -> symbol, decimals, USD peg.
//! Decimals come from here, never from the 402.

use std::sync::OnceLock;

use crate::address::{addresses_equal, validate_address};

/// Most decimals an asset may have: 10^77 is the largest power of ten below 2^256.
pub const MAX_ASSET_DECIMALS: u8 = 77;
/// The longest symbol a policy's extra asset may have (tickers are far shorter).
pub const MAX_SYMBOL_CHARS: usize = 32;

/// What predebit trusts about one token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssetInfo {
    /// CAIP-2 network, e.g. `eip155:8453`.
    pub network: String,
    /// Token contract (EVM) or mint (Solana) address.
    pub address: String,
    /// Ticker symbol, e.g. `USDC`.
    pub symbol: String,
    /// Decimals of the atomic unit.
    pub decimals: u8,
    /// Whether one token is worth one US dollar.
    pub usd_pegged: bool,
}

impl AssetInfo {
    /// Whether `other` states the same facts (symbol, decimals, peg) about the same token.
    fn same_facts(&self, other: &AssetInfo) -> bool {
        self.symbol == other.symbol
            && self.decimals == other.decimals
            && self.usd_pegged == other.usd_pegged
    }

    /// Checks an asset supplied by a policy, the `index`th of its list. Messages name the entry
    /// and the field, never the value (they reach verify responses as POLICY_INVALID).
    fn validate(&self, index: usize) -> Result<(), String> {
        let entry = format!("extraAssets[{index}]");
        if !is_caip2(&self.network) {
            return Err(format!(
                "{entry}.network: is not a CAIP-2 id such as \"eip155:8453\""
            ));
        }
        validate_address(&self.network, &self.address)
            .map_err(|e| format!("{entry}.address: {e}"))?;
        // The symbol is shown to the agent in every verify answer on the asset, so it is short.
        if self.symbol.is_empty()
            || self.symbol.chars().count() > MAX_SYMBOL_CHARS
            || self.symbol.chars().any(char::is_whitespace)
        {
            return Err(format!(
                "{entry}.symbol: must be 1 to {MAX_SYMBOL_CHARS} characters without spaces"
            ));
        }
        if self.decimals > MAX_ASSET_DECIMALS {
            return Err(format!(
                "{entry}.decimals: must be at most {MAX_ASSET_DECIMALS}"
            ));
        }
        Ok(())
    }
}

/// The assets predebit knows: the built-in trusted list plus any a policy adds.
#[derive(Debug, Clone)]
pub struct AssetTable {
    trusted: &'static [AssetInfo],
    extra: Vec<AssetInfo>,
}

/// USDC deployments: (CAIP-2 network, token address).
const TRUSTED_USDC: [(&str, &str); 8] = [
    ("eip155:8453", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
    ("eip155:84532", "0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
    ("eip155:1", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
    ("eip155:137", "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"),
    ("eip155:42161", "0xaf88d065e77c8cC2239327C5EDb3A432268e5831"),
    ("eip155:43114", "0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E"),
    (
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
        "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
    ),
    (
        "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
        "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
    ),
];

impl AssetTable {
    /// The built-in table: USDC (6 decimals, USD-pegged) on the networks x402 facilitators serve.
    pub fn trusted() -> AssetTable {
        static TRUSTED: OnceLock<Vec<AssetInfo>> = OnceLock::new();
        let trusted = TRUSTED.get_or_init(|| {
            TRUSTED_USDC
                .iter()
                .map(|(network, address)| AssetInfo {
                    network: (*network).to_string(),
                    address: (*address).to_string(),
                    symbol: "USDC".to_string(),
                    decimals: 6,
                    usd_pegged: true,
                })
                .collect()
        });
        AssetTable {
            trusted,
            extra: Vec::new(),
        }
    }

    /// This table plus policy-supplied assets; redefining a known token's facts is an error.
    pub fn with_extra(&self, extra: &[AssetInfo]) -> Result<AssetTable, String> {
        let mut table = self.clone();
        for (index, asset) in extra.iter().enumerate() {
            asset.validate(index)?;
            let trusted = self.lookup(&asset.network, &asset.address).is_some();
            match table.lookup(&asset.network, &asset.address) {
                Some(known) if known.same_facts(asset) => {}
                Some(_) if trusted => return Err(format!(
                    "extraAssets[{index}]: conflicts with a trusted asset (a different symbol, decimals or peg)"
                )),
                Some(_) => return Err(
                    "extraAssets: two entries (in one scope or across scopes) conflict: they describe the same token differently"
                        .to_string(),
                ),
                None => table.extra.push(asset.clone()),
            }
        }
        Ok(table)
    }

    /// The asset at `address` on `network` (EVM addresses compared case-insensitively).
    pub fn lookup(&self, network: &str, address: &str) -> Option<&AssetInfo> {
        self.iter()
            .find(|a| a.network == network && addresses_equal(network, &a.address, address))
    }

    /// Every asset in the table, trusted first.
    pub fn iter(&self) -> impl Iterator<Item = &AssetInfo> {
        self.trusted.iter().chain(self.extra.iter())
    }
}

/// Whether `network` is a CAIP-2 chain id: `namespace:reference`, namespace `[-a-z0-9]{3,8}`,
/// reference `[-_a-zA-Z0-9]{1,32}`.
pub(crate) fn is_caip2(network: &str) -> bool {
    let Some((namespace, reference)) = network.split_once(':') else {
        return false;
    };
    (3..=8).contains(&namespace.len())
        && namespace
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && (1..=32).contains(&reference.len())
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "eip155:8453";
    const BASE_USDC: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
    const SOLANA: &str = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp";
    const SOLANA_USDC: &str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";
    // DAI on Ethereum mainnet, an 18-decimal token.
    const DAI: &str = "0x6B175474E89094C44Da98b954EedeAC495271d0F";

    fn dai() -> AssetInfo {
        AssetInfo {
            network: "eip155:1".into(),
            address: DAI.into(),
            symbol: "DAI".into(),
            decimals: 18,
            usd_pegged: true,
        }
    }

    #[test]
    fn trusted_table_knows_usdc_on_base() {
        let table = AssetTable::trusted();
        let usdc = table.lookup(BASE, BASE_USDC).unwrap();
        assert_eq!(usdc.symbol, "USDC");
        assert_eq!(usdc.decimals, 6);
        assert!(usdc.usd_pegged);
    }

    #[test]
    fn trusted_table_has_eight_usdc_entries_with_valid_addresses() {
        // GIVEN the built-in table THEN every address passes its network's checks (EIP-55 too)
        let table = AssetTable::trusted();
        assert_eq!(table.iter().count(), 8);
        for asset in table.iter() {
            assert!(is_caip2(&asset.network), "{}", asset.network);
            assert_eq!(
                validate_address(&asset.network, &asset.address),
                Ok(()),
                "{}",
                asset.address
            );
            assert_eq!((asset.symbol.as_str(), asset.decimals), ("USDC", 6));
        }
    }

    #[test]
    fn lookup_compares_evm_addresses_case_insensitively() {
        let table = AssetTable::trusted();
        let lower = BASE_USDC.to_ascii_lowercase();
        assert_eq!(table.lookup(BASE, &lower).unwrap().address, BASE_USDC);
    }

    #[test]
    fn lookup_compares_solana_addresses_exactly() {
        let table = AssetTable::trusted();
        assert!(table.lookup(SOLANA, SOLANA_USDC).is_some());
        assert!(table
            .lookup(SOLANA, &SOLANA_USDC.to_ascii_lowercase())
            .is_none());
    }

    #[test]
    fn lookup_requires_the_same_network() {
        // GIVEN Base's USDC address WHEN looked up on Ethereum mainnet THEN it is unknown
        let table = AssetTable::trusted();
        assert!(table.lookup("eip155:1", BASE_USDC).is_none());
    }

    #[test]
    fn with_extra_adds_a_new_asset() {
        let table = AssetTable::trusted().with_extra(&[dai()]).unwrap();
        assert_eq!(table.lookup("eip155:1", DAI), Some(&dai()));
        assert_eq!(table.iter().count(), 9);
    }

    #[test]
    fn with_extra_accepts_a_restatement_of_a_known_asset() {
        let usdc = AssetTable::trusted()
            .lookup(BASE, BASE_USDC)
            .unwrap()
            .clone();
        let restated = AssetInfo {
            address: BASE_USDC.to_ascii_lowercase(),
            ..usdc
        };
        let table = AssetTable::trusted().with_extra(&[restated]).unwrap();
        assert_eq!(table.iter().count(), 8);
    }

    #[test]
    fn with_extra_refuses_to_redefine_usdc_decimals() {
        // GIVEN an extra asset naming Base USDC with 18 decimals WHEN added THEN it is refused
        let fake = AssetInfo {
            network: BASE.into(),
            address: BASE_USDC.to_ascii_lowercase(),
            symbol: "USDC".into(),
            decimals: 18,
            usd_pegged: true,
        };
        let err = AssetTable::trusted().with_extra(&[fake]).unwrap_err();
        assert!(err.contains("conflicts with a trusted asset"), "{err}");
    }

    #[test]
    fn with_extra_refuses_two_extras_that_disagree() {
        let other = AssetInfo {
            decimals: 6,
            ..dai()
        };
        assert!(AssetTable::trusted().with_extra(&[dai(), other]).is_err());
    }

    #[test]
    fn with_extra_refuses_an_invalid_address() {
        let bad = AssetInfo {
            address: "0x6B175474E89094C44Da98b954EedeAC495271d0f".into(),
            ..dai()
        };
        let err = AssetTable::trusted().with_extra(&[bad]).unwrap_err();
        assert!(err.contains("checksum"), "{err}");
    }

    #[test]
    fn with_extra_refuses_an_empty_symbol() {
        let bad = AssetInfo {
            symbol: String::new(),
            ..dai()
        };
        let err = AssetTable::trusted().with_extra(&[bad]).unwrap_err();
        assert!(err.contains("symbol"), "{err}");
    }

    #[test]
    fn with_extra_refuses_a_symbol_longer_than_32_characters() {
        // GIVEN a symbol of 33 characters (one of 32, multi-byte, is fine)
        let bad = AssetInfo {
            symbol: "D".repeat(MAX_SYMBOL_CHARS + 1),
            ..dai()
        };
        let ok = AssetInfo {
            symbol: "₮".repeat(MAX_SYMBOL_CHARS),
            ..dai()
        };
        // WHEN added THEN the long one is refused on its symbol and the other kept
        let err = AssetTable::trusted().with_extra(&[bad]).unwrap_err();
        assert_eq!(
            err,
            "extraAssets[0].symbol: must be 1 to 32 characters without spaces"
        );
        assert!(AssetTable::trusted().with_extra(&[ok]).is_ok());
    }

    #[test]
    fn with_extra_refuses_more_than_77_decimals() {
        let bad = AssetInfo {
            decimals: 78,
            ..dai()
        };
        let err = AssetTable::trusted().with_extra(&[bad]).unwrap_err();
        assert!(err.contains("decimals"), "{err}");
        let ok = AssetInfo {
            decimals: 77,
            ..dai()
        };
        assert!(AssetTable::trusted().with_extra(&[ok]).is_ok());
    }

    #[test]
    fn with_extra_refuses_a_malformed_network() {
        for network in [
            "eip155",
            "eip155:",
            "EIP155:1",
            "bitcoin:000000000019d6689c085ae165831e93",
        ] {
            let bad = AssetInfo {
                network: network.into(),
                ..dai()
            };
            assert!(
                AssetTable::trusted().with_extra(&[bad]).is_err(),
                "{network}"
            );
        }
    }

    #[test]
    fn with_extra_refusals_name_the_entry_and_field_never_the_value() {
        // GIVEN extra assets whose network, address, symbol or decimals are wrong, each holding
        // a marker in its text fields
        let marker = "QZX-echo-marker";
        let spoiled = [
            AssetInfo {
                network: format!("{marker}:{}", "1".repeat(300)),
                ..dai()
            },
            AssetInfo {
                address: format!("0x{marker}"),
                ..dai()
            },
            AssetInfo {
                symbol: format!("{marker} USD"),
                ..dai()
            },
            AssetInfo {
                symbol: marker.into(),
                decimals: 99,
                ..dai()
            },
            AssetInfo {
                symbol: marker.into(),
                decimals: 18,
                ..AssetTable::trusted()
                    .lookup(BASE, BASE_USDC)
                    .unwrap()
                    .clone()
            },
        ];
        let fields = [
            "network",
            "address",
            "symbol",
            "decimals",
            "conflicts with a trusted asset",
        ];
        for (asset, field) in spoiled.into_iter().zip(fields) {
            // WHEN added as the second extra asset
            let err = AssetTable::trusted()
                .with_extra(&[dai(), asset])
                .unwrap_err();
            // THEN the refusal names entry 1 and the field, and holds no value
            assert!(err.starts_with("extraAssets[1]"), "{err}");
            assert!(err.contains(field), "{err}");
            assert!(
                !err.contains(marker) && !err.contains("0x6B17") && err.len() < 200,
                "{err}"
            );
        }
    }

    #[test]
    fn with_extra_refuses_two_disagreeing_extras_without_naming_them() {
        let other = AssetInfo {
            decimals: 6,
            ..dai()
        };
        let err = AssetTable::trusted()
            .with_extra(&[dai(), other])
            .unwrap_err();
        assert!(err.contains("describe the same token differently"), "{err}");
        assert!(!err.contains(DAI) && !err.contains("DAI"), "{err}");
    }

    #[test]
    fn asset_info_reads_camel_case_json() {
        let json = r#"{"network":"eip155:1","address":"0x6B175474E89094C44Da98b954EedeAC495271d0F","symbol":"DAI","decimals":18,"usdPegged":true}"#;
        assert_eq!(serde_json::from_str::<AssetInfo>(json).unwrap(), dai());
    }

    #[test]
    fn asset_info_refuses_unknown_fields() {
        let json = r#"{"network":"eip155:1","address":"0x6B175474E89094C44Da98b954EedeAC495271d0F","symbol":"DAI","decimals":18,"usdPegged":true,"price":1}"#;
        assert!(serde_json::from_str::<AssetInfo>(json).is_err());
    }
}
