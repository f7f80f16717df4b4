//! The payment methods predebit reads a charge for, and what each puts in `methodDetails`:
//! the chain (as CAIP-2), who pays the network fees, declared decimals, and solana's own rules.
//!
//! - `tempo` (mpp-specs `specs/methods/tempo/draft-tempo-charge-00.md`): `chainId` (the draft
//!   defaults it to 42431), `feePayer` (true: the server pays the fees).
//! - `evm` (`specs/methods/evm/draft-evm-charge-00.md`): `chainId` (required), `credentialTypes`
//!   (fees follow the type), `permit2Address`, `decimals`.
//! - `solana` (`specs/methods/solana/draft-solana-charge-00.md`): `network` (mainnet, devnet or
//!   localnet; mainnet by default), `feePayer` with `feePayerKey`, `decimals`, `tokenProgram`.

use serde_json::{Map, Value};

use super::charge::optional_address;
use super::MppError;
use crate::network::validate_caip2;

/// Tempo mainnet's EIP-155 chain id.
pub const TEMPO_MAINNET_CHAIN_ID: u64 = 4217;
/// Tempo testnet's (Moderato) EIP-155 chain id: the tempo draft's default for `chainId`.
pub const TEMPO_TESTNET_CHAIN_ID: u64 = 42431;
/// Solana mainnet as CAIP-2.
pub const SOLANA_MAINNET: &str = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp";
/// Solana devnet as CAIP-2.
pub const SOLANA_DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
/// The two token programs the solana draft allows in `methodDetails.tokenProgram`.
const SOLANA_TOKEN_PROGRAMS: [&str; 2] = [
    "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
    "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb",
];

/// The payment methods predebit reads a charge for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// TIP-20 transfers on Tempo, an EVM chain.
    Tempo,
    /// ERC-20 transfers on any EVM chain.
    Evm,
    /// SPL token transfers on Solana.
    Solana,
}

impl Method {
    /// The method of a challenge's `method` name, if predebit knows it.
    pub fn from_name(name: &str) -> Option<Method> {
        match name {
            "tempo" => Some(Method::Tempo),
            "evm" => Some(Method::Evm),
            "solana" => Some(Method::Solana),
            _ => None,
        }
    }

    /// The most `splits` the method's draft allows.
    pub(super) fn max_splits(self) -> usize {
        match self {
            Method::Tempo | Method::Evm => 10,
            Method::Solana => 8,
        }
    }
}

pub(super) fn invalid_detail(key: &str, problem: &'static str) -> MppError {
    let field = if key.is_empty() {
        "request.methodDetails".to_string()
    } else {
        format!("request.methodDetails.{key}")
    };
    MppError::Invalid { field, problem }
}

/// The CAIP-2 network of the charge.
pub(super) fn network(method: Method, details: &Map<String, Value>) -> Result<String, MppError> {
    match method {
        Method::Tempo | Method::Evm => {
            // Tempo's draft defaults a missing chainId to its testnet; the reference SDKs
            // default to mainnet or to the client's chain. predebit does not guess.
            let chain_id = match details.get("chainId") {
                None | Some(Value::Null) => {
                    return Err(invalid_detail(
                        "chainId",
                        "is required (predebit does not assume a default chain)",
                    ))
                }
                Some(Value::Number(n)) => n
                    .as_u64()
                    .filter(|&id| id > 0)
                    .ok_or_else(|| invalid_detail("chainId", "must be a positive JSON integer"))?,
                Some(_) => {
                    return Err(invalid_detail("chainId", "must be a positive JSON integer"))
                }
            };
            let tempo_chain = [TEMPO_MAINNET_CHAIN_ID, TEMPO_TESTNET_CHAIN_ID].contains(&chain_id);
            if method == Method::Tempo && !tempo_chain {
                return Err(invalid_detail(
                    "chainId",
                    "must be a Tempo chain id (4217 mainnet or 42431 testnet)",
                ));
            }
            let network = format!("eip155:{chain_id}");
            validate_caip2(&network)
                .map_err(|_| invalid_detail("chainId", "does not make a CAIP-2 network id"))?;
            Ok(network)
        }
        Method::Solana => match details.get("network") {
            None | Some(Value::Null) => Ok(SOLANA_MAINNET.to_string()),
            Some(Value::String(name)) => match name.as_str() {
                "mainnet" => Ok(SOLANA_MAINNET.to_string()),
                "devnet" => Ok(SOLANA_DEVNET.to_string()),
                "localnet" => Err(invalid_detail(
                    "network",
                    "localnet has no CAIP-2 id and is not a network predebit judges",
                )),
                _ => Err(invalid_detail(
                    "network",
                    "must be mainnet, devnet or localnet",
                )),
            },
            Some(_) => Err(invalid_detail("network", "must be a string")),
        },
    }
}

/// An optional boolean in `methodDetails`, false when absent.
fn flag(details: &Map<String, Value>, key: &str) -> Result<bool, MppError> {
    match details.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid_detail(key, "must be true or false")),
    }
}

/// Who pays the network fees, as the challenge offers it.
pub(super) fn buyer_pays_fees(
    method: Method,
    details: &Map<String, Value>,
) -> Result<bool, MppError> {
    match method {
        Method::Tempo | Method::Solana => Ok(!flag(details, "feePayer")?),
        Method::Evm => {
            // The evm draft: fees follow the credential type; permit2 and authorization are
            // submitted (and paid for) by the server, transaction and hash by the buyer. With
            // no list, servers "MUST accept transaction".
            let types = match details.get("credentialTypes") {
                None | Some(Value::Null) => return Ok(true),
                Some(Value::Array(types)) if !types.is_empty() && types.len() <= 4 => types,
                Some(_) => {
                    return Err(invalid_detail(
                        "credentialTypes",
                        "must be a list of 1 to 4 credential types",
                    ))
                }
            };
            let mut server_submits = false;
            for kind in types {
                match kind.as_str() {
                    Some("permit2" | "authorization") => server_submits = true,
                    Some("transaction" | "hash") => {}
                    _ => {
                        return Err(invalid_detail(
                            "credentialTypes",
                            "holds a value other than permit2, authorization, transaction or hash",
                        ))
                    }
                }
            }
            Ok(!server_submits)
        }
    }
}

/// `methodDetails.decimals`, if declared: a JSON integer 0 to 255.
pub(super) fn decimals(details: &Map<String, Value>) -> Result<Option<u8>, MppError> {
    match details.get("decimals") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|d| u8::try_from(d).ok())
            .map(Some)
            .ok_or_else(|| invalid_detail("decimals", "must be a JSON integer from 0 to 255")),
        Some(_) => Err(invalid_detail(
            "decimals",
            "must be a JSON integer from 0 to 255",
        )),
    }
}

/// The solana draft's MUSTs that change what is paid or who can move it.
pub(super) fn solana_rules(details: &Map<String, Value>) -> Result<(), MppError> {
    let sponsored = flag(details, "feePayer")?;
    match (sponsored, details.get("feePayerKey")) {
        (true, None | Some(Value::Null)) => {
            return Err(invalid_detail(
                "feePayerKey",
                "is required when feePayer is true",
            ))
        }
        (true, Some(_)) => {
            optional_address(
                Method::Solana,
                details,
                "request.methodDetails",
                "feePayerKey",
            )?;
        }
        (false, None | Some(Value::Null)) => {}
        (false, Some(_)) => {
            return Err(invalid_detail(
                "feePayerKey",
                "must be absent unless feePayer is true",
            ))
        }
    }
    match details.get("tokenProgram") {
        None | Some(Value::Null) => {}
        Some(Value::String(program)) if SOLANA_TOKEN_PROGRAMS.contains(&program.as_str()) => {}
        Some(_) => {
            return Err(invalid_detail(
                "tokenProgram",
                "must be the Token or the Token-2022 program",
            ))
        }
    }
    if flag(details, "confidential")? {
        return Err(invalid_detail(
            "confidential",
            "confidential transfers hide the amount on chain and are not supported",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mpp::challenge::tests::tempo_request;
    use crate::mpp::charge::tests::{
        charge_of, field_of, tempo, with, PATH_USD, RECIPIENT, SOL_RECIPIENT, SOL_USDC,
    };
    use serde_json::json;

    #[test]
    fn a_tempo_charge_without_fee_payer_leaves_fees_to_the_buyer() {
        // GIVEN feePayer false, and absent WHEN read THEN the buyer pays the fees
        for details in [
            json!({"chainId": 42431, "feePayer": false}),
            json!({"chainId": 42431}),
        ] {
            let charge = tempo(&with(tempo_request(), "/methodDetails", details)).unwrap();
            assert!(charge.buyer_pays_fees);
            assert_eq!(charge.network, "eip155:42431");
        }
    }

    #[test]
    fn a_missing_or_foreign_tempo_chain_id_is_refused_not_defaulted() {
        // GIVEN no chainId, no methodDetails, a non-Tempo chain, and non-integer ids
        let without = {
            let mut r = tempo_request();
            r.as_object_mut().unwrap().remove("methodDetails");
            r
        };
        let cases = [
            without,
            with(tempo_request(), "/methodDetails/chainId", json!(null)),
            with(tempo_request(), "/methodDetails/chainId", json!(8453)),
            with(tempo_request(), "/methodDetails/chainId", json!("4217")),
            with(tempo_request(), "/methodDetails/chainId", json!(4217.0)),
            with(tempo_request(), "/methodDetails/chainId", json!(-4217)),
            with(tempo_request(), "/methodDetails/chainId", json!(true)),
        ];
        // THEN each is refused on chainId
        for request in cases {
            assert_eq!(
                field_of(tempo(&request)),
                "request.methodDetails.chainId",
                "{request}"
            );
        }
    }

    fn evm_request() -> Value {
        json!({
            "amount": "1000000",
            "currency": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            "recipient": RECIPIENT,
            "methodDetails": {"chainId": 8453, "credentialTypes": ["permit2", "transaction"], "decimals": 6,
                              "permit2Address": "0x000000000022D473030F116dDEE9F6B43aC78BA3"}
        })
    }

    #[test]
    fn an_evm_charge_keeps_its_chain_permit2_and_declared_decimals() {
        // GIVEN an evm charge on Base offering permit2 WHEN read THEN the seller pays the fees
        let charge = charge_of("evm", &evm_request()).unwrap();
        assert_eq!(charge.method, Method::Evm);
        assert_eq!(charge.network, "eip155:8453");
        assert!(!charge.buyer_pays_fees);
        assert_eq!(
            charge.permit2_address.as_deref(),
            Some("0x000000000022D473030F116dDEE9F6B43aC78BA3")
        );
        assert_eq!(charge.declared_decimals, Some(6));
    }

    #[test]
    fn an_evm_charge_pays_its_own_fees_unless_the_server_submits() {
        // GIVEN credential type lists WHEN read THEN buyer_pays_fees follows the evm draft
        for (types, buyer_pays) in [
            (json!(null), true),
            (json!(["transaction", "hash"]), true),
            (json!(["authorization"]), false),
            (json!(["hash", "permit2"]), false),
        ] {
            let request = with(
                evm_request(),
                "/methodDetails/credentialTypes",
                types.clone(),
            );
            assert_eq!(
                charge_of("evm", &request).unwrap().buyer_pays_fees,
                buyer_pays,
                "{types}"
            );
        }
        // AND unknown, empty or mistyped lists are refused
        for types in [
            json!([]),
            json!(["magic"]),
            json!("permit2"),
            json!([1]),
            json!(vec!["hash"; 5]),
        ] {
            let request = with(
                evm_request(),
                "/methodDetails/credentialTypes",
                types.clone(),
            );
            assert_eq!(
                field_of(charge_of("evm", &request)),
                "request.methodDetails.credentialTypes",
                "{types}"
            );
        }
    }

    #[test]
    fn evm_details_are_checked() {
        // GIVEN a missing chain, a bad permit2 address and bad decimals WHEN read THEN refused
        for (pointer, value, field) in [
            (
                "/methodDetails/chainId",
                json!(null),
                "request.methodDetails.chainId",
            ),
            (
                "/methodDetails/chainId",
                json!(0),
                "request.methodDetails.chainId",
            ),
            (
                "/methodDetails/permit2Address",
                json!("0xdead"),
                "request.methodDetails.permit2Address",
            ),
            (
                "/methodDetails/decimals",
                json!(256),
                "request.methodDetails.decimals",
            ),
            (
                "/methodDetails/decimals",
                json!("6"),
                "request.methodDetails.decimals",
            ),
        ] {
            let request = with(evm_request(), pointer, value);
            assert_eq!(field_of(charge_of("evm", &request)), field, "{pointer}");
        }
    }

    fn solana_request() -> Value {
        json!({
            "amount": "1000000",
            "currency": SOL_USDC,
            "recipient": SOL_RECIPIENT,
            "methodDetails": {"network": "mainnet", "decimals": 6,
                              "tokenProgram": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"}
        })
    }

    #[test]
    fn a_solana_charge_maps_its_cluster_to_caip2() {
        // GIVEN mainnet, devnet and no network WHEN read THEN the CAIP-2 ids, mainnet by default
        let charge = charge_of("solana", &solana_request()).unwrap();
        assert_eq!(
            (charge.network.as_str(), charge.buyer_pays_fees),
            (SOLANA_MAINNET, true)
        );
        assert_eq!(charge.declared_decimals, Some(6));
        let devnet = with(solana_request(), "/methodDetails/network", json!("devnet"));
        assert_eq!(charge_of("solana", &devnet).unwrap().network, SOLANA_DEVNET);
        let mut bare = solana_request();
        bare.as_object_mut().unwrap().remove("methodDetails");
        assert_eq!(charge_of("solana", &bare).unwrap().network, SOLANA_MAINNET);
    }

    #[test]
    fn solana_specific_rules_are_enforced() {
        // GIVEN fee sponsoring with and without its key, and the hostile solana fields
        let sponsored = with(solana_request(), "/methodDetails/feePayer", json!(true));
        let keyed = with(
            sponsored.clone(),
            "/methodDetails/feePayerKey",
            json!(SOL_RECIPIENT),
        );
        assert!(!charge_of("solana", &keyed).unwrap().buyer_pays_fees);
        let cases = [
            (sponsored, "request.methodDetails.feePayerKey"),
            (
                with(
                    solana_request(),
                    "/methodDetails/feePayerKey",
                    json!(SOL_RECIPIENT),
                ),
                "request.methodDetails.feePayerKey",
            ),
            (
                with(keyed.clone(), "/methodDetails/feePayerKey", json!("0OIl")),
                "request.methodDetails.feePayerKey",
            ),
            (
                with(
                    solana_request(),
                    "/methodDetails/network",
                    json!("mainnet-beta"),
                ),
                "request.methodDetails.network",
            ),
            (
                with(
                    solana_request(),
                    "/methodDetails/network",
                    json!("localnet"),
                ),
                "request.methodDetails.network",
            ),
            (
                with(
                    solana_request(),
                    "/methodDetails/tokenProgram",
                    json!(SOL_RECIPIENT),
                ),
                "request.methodDetails.tokenProgram",
            ),
            (
                with(solana_request(), "/methodDetails/confidential", json!(true)),
                "request.methodDetails.confidential",
            ),
            (
                with(solana_request(), "/currency", json!("sol")),
                "request.currency",
            ),
            (
                with(solana_request(), "/currency", json!(PATH_USD)),
                "request.currency",
            ),
            (
                with(solana_request(), "/amount", json!("18446744073709551616")),
                "request.amount",
            ),
            (
                with(
                    solana_request(),
                    "/methodDetails/splits",
                    json!(vec![json!({"amount": "1", "recipient": SOL_RECIPIENT}); 9]),
                ),
                "request.methodDetails.splits",
            ),
        ];
        // THEN each is refused on its field
        for (request, field) in cases {
            assert_eq!(field_of(charge_of("solana", &request)), field, "{request}");
        }
        let max = with(solana_request(), "/amount", json!("18446744073709551615"));
        assert!(charge_of("solana", &max).is_ok());
    }
}
