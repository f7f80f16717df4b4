//! The `charge` intent's request (mpp-specs `specs/intents/draft-payment-intent-charge-00.md`)
//! for the methods AgentCore Payments signs: `tempo` (`specs/methods/tempo/draft-tempo-charge-00.md`),
//! `evm` (`specs/methods/evm/draft-evm-charge-00.md`) and `solana`
//! (`specs/methods/solana/draft-solana-charge-00.md`).
//!
//! Shared fields: `amount` (base units, a decimal string), `currency` (the token), `recipient`,
//! and method-specific `methodDetails`. Expiry is the challenge's `expires` auth-param, which a
//! charge must carry here: it bounds how long the signed payment can be collected.

use serde_json::{Map, Value};

use super::challenge::{parse_challenge, Challenge};
use super::MppError;
use crate::address::{validate_evm, validate_solana, AddressError};
use crate::network::validate_caip2;
use crate::x402::parse_atomic_amount;

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
    fn max_splits(self) -> usize {
        match self {
            Method::Tempo | Method::Evm => 10,
            Method::Solana => 8,
        }
    }
}

/// A payment leg to a recipient other than the primary one, paid out of `amount`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Split {
    /// The split recipient, validated for the network's address family.
    pub recipient: String,
    /// Its share in base units: canonical digits, greater than zero.
    pub amount: String,
}

/// A `charge` challenge's request, normalised.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeRequest {
    /// The payment method.
    pub method: Method,
    /// CAIP-2: `eip155:<chainId>` for tempo and evm, `solana:<genesis>` for solana.
    pub network: String,
    /// The total the buyer pays, in base units: digits, no leading zero (but "0"), at most
    /// 2^256-1 (2^64-1 for solana).
    pub amount: String,
    /// The token (contract or mint address), validated for the network's address family.
    pub currency: String,
    /// The primary recipient: it receives `amount` less the splits.
    pub recipient: String,
    /// Whether the challenge leaves the network (gas) fees to the buyer, on top of `amount`:
    /// tempo and solana unless `methodDetails.feePayer` is true; evm unless `credentialTypes`
    /// offers a kind the server submits (`permit2`, `authorization`). AgentCore signs such a
    /// charge only with `buyerPaysGasFees: true`.
    pub buyer_pays_fees: bool,
    /// Further recipients paid out of `amount` (their sum is less than `amount`).
    pub splits: Vec<Split>,
    /// The challenge's expiry, epoch seconds (exclusive).
    pub expires: u64,
    /// evm: the Permit2 contract the merchant names, if it names one. Merchant data: a
    /// spender predebit has not configured must be declined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permit2_address: Option<String>,
    /// evm and solana: the token decimals the merchant declares. Information only: amounts are
    /// converted with the trusted asset table, never with this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_decimals: Option<u8>,
}

/// Reads the `charge` request of a parsed challenge.
pub fn parse_charge(challenge: &Challenge) -> Result<ChargeRequest, MppError> {
    if challenge.intent != "charge" {
        return Err(MppError::UnsupportedIntent {
            intent: challenge.intent.clone(),
        });
    }
    let Some(method) = Method::from_name(&challenge.method) else {
        return Err(MppError::UnsupportedMethod {
            method: challenge.method.clone(),
        });
    };
    let request = challenge
        .request
        .as_object()
        .ok_or_else(|| MppError::invalid("request", "must decode to a JSON object"))?;
    let empty = Map::new();
    let details = match request.get("methodDetails") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(details)) => details,
        Some(_) => return Err(invalid_detail("", "must be a JSON object")),
    };
    let network = network(method, details)?;
    let amount = amount(request, "request.amount", method)?;
    let currency = currency(method, request)?;
    let recipient = address(method, request, "request", "recipient")?;
    let buyer_pays_fees = buyer_pays_fees(method, details)?;
    let splits = splits(method, details, &amount)?;
    let expires = challenge.expires.ok_or_else(|| {
        MppError::invalid(
            "expires",
            "is required for a charge (it bounds how long the payment can be collected)",
        )
    })?;
    let permit2_address = match method {
        Method::Evm => {
            optional_address(method, details, "request.methodDetails", "permit2Address")?
        }
        _ => None,
    };
    let declared_decimals = match method {
        Method::Evm | Method::Solana => decimals(details)?,
        Method::Tempo => None,
    };
    if method == Method::Solana {
        solana_rules(details)?;
    }
    Ok(ChargeRequest {
        method,
        network,
        amount,
        currency,
        recipient,
        buyer_pays_fees,
        splits,
        expires,
        permit2_address,
        declared_decimals,
    })
}

/// Reads the one challenge handed to the signer and its `charge` request.
pub fn parse_charge_challenge(value: &str) -> Result<(Challenge, ChargeRequest), MppError> {
    let challenge = parse_challenge(value)?;
    let charge = parse_charge(&challenge)?;
    Ok((challenge, charge))
}

fn invalid_detail(key: &str, problem: &'static str) -> MppError {
    let field = if key.is_empty() {
        "request.methodDetails".to_string()
    } else {
        format!("request.methodDetails.{key}")
    };
    MppError::Invalid { field, problem }
}

/// The CAIP-2 network of the charge.
fn network(method: Method, details: &Map<String, Value>) -> Result<String, MppError> {
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

/// A required base-unit amount at `field` of `map`.
fn amount(map: &Map<String, Value>, field: &str, method: Method) -> Result<String, MppError> {
    let key = field.rsplit('.').next().unwrap_or(field);
    let text = match map.get(key) {
        None | Some(Value::Null) => return Err(MppError::invalid(field, "is required")),
        Some(Value::String(text)) => text,
        Some(Value::Number(_)) => {
            return Err(MppError::invalid(
                field,
                "must be a JSON string of decimal digits, not a JSON number",
            ))
        }
        Some(_) => {
            return Err(MppError::invalid(
                field,
                "must be a string of decimal digits",
            ))
        }
    };
    let canonical = parse_atomic_amount(text).map_err(|p| MppError::invalid(field, p))?;
    if canonical != *text {
        return Err(MppError::invalid(
            field,
            "must not have leading zeros (base units, canonical digits)",
        ));
    }
    if method == Method::Solana && canonical.parse::<u64>().is_err() {
        return Err(MppError::invalid(
            field,
            "exceeds the solana maximum of 2^64-1 base units",
        ));
    }
    Ok(canonical)
}

/// The token: an address of the method's family (native SOL is refused).
fn currency(method: Method, request: &Map<String, Value>) -> Result<String, MppError> {
    if method == Method::Solana && request.get("currency") == Some(&Value::from("sol")) {
        return Err(MppError::invalid(
            "request.currency",
            "native SOL is not supported (a token mint address is required)",
        ));
    }
    address(method, request, "request", "currency")
}

/// A required address at `prefix.key`, valid for the method's family.
fn address(
    method: Method,
    map: &Map<String, Value>,
    prefix: &str,
    key: &str,
) -> Result<String, MppError> {
    optional_address(method, map, prefix, key)?
        .ok_or_else(|| MppError::invalid(format!("{prefix}.{key}"), "is required"))
}

fn optional_address(
    method: Method,
    map: &Map<String, Value>,
    prefix: &str,
    key: &str,
) -> Result<Option<String>, MppError> {
    let field = || format!("{prefix}.{key}");
    let text = match map.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) if text.is_empty() => {
            return Err(MppError::invalid(field(), "must not be empty"))
        }
        Some(Value::String(text)) => text,
        Some(_) => return Err(MppError::invalid(field(), "must be a string")),
    };
    let checked = match method {
        Method::Tempo | Method::Evm => validate_evm(text),
        Method::Solana => validate_solana(text),
    };
    checked.map_err(|e| MppError::invalid(field(), address_problem(e)))?;
    Ok(Some(text.clone()))
}

fn address_problem(e: AddressError) -> &'static str {
    match e {
        AddressError::EvmFormat => "not an EVM address (0x followed by 40 hex digits)",
        AddressError::EvmChecksum => "EVM address fails its EIP-55 checksum",
        AddressError::SolanaFormat => "not a Solana address (base58 of 32 bytes)",
        AddressError::UnsupportedNamespace => "unsupported network namespace",
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
fn buyer_pays_fees(method: Method, details: &Map<String, Value>) -> Result<bool, MppError> {
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

/// `methodDetails.splits`: further recipients, each paid a positive part of `amount`.
fn splits(
    method: Method,
    details: &Map<String, Value>,
    amount: &str,
) -> Result<Vec<Split>, MppError> {
    let entries = match details.get("splits") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(entries))
            if !entries.is_empty() && entries.len() <= method.max_splits() =>
        {
            entries
        }
        Some(Value::Array(_)) => {
            return Err(invalid_detail(
                "splits",
                match method {
                    Method::Solana => "must hold 1 to 8 entries",
                    _ => "must hold 1 to 10 entries",
                },
            ))
        }
        Some(_) => return Err(invalid_detail("splits", "must be a list")),
    };
    let mut splits = Vec::with_capacity(entries.len());
    let mut total = "0".to_string();
    for (i, entry) in entries.iter().enumerate() {
        let prefix = format!("request.methodDetails.splits[{i}]");
        let entry = entry
            .as_object()
            .ok_or_else(|| MppError::invalid(prefix.clone(), "must be a JSON object"))?;
        let share = amount_at(entry, &prefix, method)?;
        if share == "0" {
            return Err(MppError::invalid(
                format!("{prefix}.amount"),
                "must be greater than zero",
            ));
        }
        total = add_decimal(&total, &share);
        splits.push(Split {
            recipient: address(method, entry, &prefix, "recipient")?,
            amount: share,
        });
    }
    if !decimal_less(&total, amount) {
        return Err(invalid_detail(
            "splits",
            "must add up to less than amount (the primary recipient keeps a part)",
        ));
    }
    Ok(splits)
}

fn amount_at(map: &Map<String, Value>, prefix: &str, method: Method) -> Result<String, MppError> {
    amount(map, &format!("{prefix}.amount"), method)
}

/// `methodDetails.decimals`, if declared: a JSON integer 0 to 255.
fn decimals(details: &Map<String, Value>) -> Result<Option<u8>, MppError> {
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
fn solana_rules(details: &Map<String, Value>) -> Result<(), MppError> {
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

/// The sum of two canonical decimal strings, canonical.
fn add_decimal(a: &str, b: &str) -> String {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let mut carry = 0u8;
    for i in 0..a.len().max(b.len()) {
        let digit = |s: &[u8]| {
            s.len()
                .checked_sub(i + 1)
                .and_then(|at| s.get(at))
                .map_or(0, |d| d - b'0')
        };
        let sum = digit(a) + digit(b) + carry;
        out.push(b'0' + sum % 10);
        carry = sum / 10;
    }
    if carry > 0 {
        out.push(b'0' + carry);
    }
    out.reverse();
    let text = String::from_utf8(out).unwrap_or_default();
    let trimmed = text.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Whether canonical decimal `a` is less than canonical decimal `b`.
fn decimal_less(a: &str, b: &str) -> bool {
    (a.len(), a) < (b.len(), b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mpp::challenge::tests::{header_with, tempo_request};
    use serde_json::json;

    const RECIPIENT: &str = "0x742d35Cc6634c0532925a3b844bC9e7595F8fE00";
    const PATH_USD: &str = "0x20c0000000000000000000000000000000000000";
    const SOL_USDC: &str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";
    const SOL_RECIPIENT: &str = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU";

    fn charge_of(method: &str, request: &Value) -> Result<ChargeRequest, MppError> {
        let header =
            header_with(request).replacen("method=\"tempo\"", &format!("method=\"{method}\""), 1);
        parse_charge_challenge(&header).map(|(_, charge)| charge)
    }

    fn tempo(request: &Value) -> Result<ChargeRequest, MppError> {
        charge_of("tempo", request)
    }

    fn with(mut request: Value, pointer: &str, value: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        if parent.is_empty() {
            request[key] = value;
        } else {
            request.pointer_mut(parent).unwrap()[key] = value;
        }
        request
    }

    fn field_of(result: Result<ChargeRequest, MppError>) -> String {
        result.unwrap_err().field().to_string()
    }

    #[test]
    fn a_sponsored_tempo_charge_maps_to_caip2_with_the_seller_paying_fees() {
        // GIVEN the tempo draft's charge with feePayer true WHEN read THEN every field normalised
        assert_eq!(
            tempo(&tempo_request()),
            Ok(ChargeRequest {
                method: Method::Tempo,
                network: "eip155:4217".into(),
                amount: "1000000".into(),
                currency: PATH_USD.into(),
                recipient: RECIPIENT.into(),
                buyer_pays_fees: false,
                splits: vec![],
                expires: 1_736_164_800,
                permit2_address: None,
                declared_decimals: None,
            })
        );
    }

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

    #[test]
    fn amounts_must_be_canonical_base_unit_digits() {
        // GIVEN negative, decimal, exponent, padded, numeric, empty and oversized amounts
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        let cases = [
            (
                json!("-1"),
                "must be decimal digits only (atomic units: no sign, point, exponent or hex)",
            ),
            (
                json!("1.5"),
                "must be decimal digits only (atomic units: no sign, point, exponent or hex)",
            ),
            (
                json!("1e6"),
                "must be decimal digits only (atomic units: no sign, point, exponent or hex)",
            ),
            (
                json!(" 1"),
                "must be decimal digits only (atomic units: no sign, point, exponent or hex)",
            ),
            (
                json!("0x10"),
                "must be decimal digits only (atomic units: no sign, point, exponent or hex)",
            ),
            (json!(""), "must not be empty"),
            (
                json!("0100"),
                "must not have leading zeros (base units, canonical digits)",
            ),
            (
                json!("00"),
                "must not have leading zeros (base units, canonical digits)",
            ),
            (
                json!(1000000),
                "must be a JSON string of decimal digits, not a JSON number",
            ),
            (json!(["1"]), "must be a string of decimal digits"),
            (json!(format!("1{max}")), "exceeds the uint256 maximum"),
            (json!(null), "is required"),
        ];
        // THEN each is refused on request.amount with its problem
        for (amount, problem) in cases {
            let result = tempo(&with(tempo_request(), "/amount", amount.clone()));
            assert_eq!(
                result,
                Err(MppError::invalid("request.amount", problem)),
                "{amount}"
            );
        }
        // AND the uint256 maximum and zero pass
        assert_eq!(
            tempo(&with(tempo_request(), "/amount", json!(max)))
                .unwrap()
                .amount,
            max
        );
        assert_eq!(
            tempo(&with(tempo_request(), "/amount", json!("0")))
                .unwrap()
                .amount,
            "0"
        );
    }

    #[test]
    fn currency_and_recipient_must_be_addresses_of_the_family() {
        // GIVEN bad, checksum-broken, empty, missing and mistyped addresses
        let broken = "0x742d35Cc6634C0532925a3b844Bc9e7595f8fE00";
        for key in ["currency", "recipient"] {
            let field = format!("request.{key}");
            for (value, problem) in [
                (
                    json!("0x123"),
                    "not an EVM address (0x followed by 40 hex digits)",
                ),
                (json!(broken), "EVM address fails its EIP-55 checksum"),
                (
                    json!(SOL_USDC),
                    "not an EVM address (0x followed by 40 hex digits)",
                ),
                (json!(""), "must not be empty"),
                (json!(null), "is required"),
                (json!(7), "must be a string"),
            ] {
                let result = tempo(&with(tempo_request(), &format!("/{key}"), value.clone()));
                assert_eq!(
                    result,
                    Err(MppError::invalid(field.as_str(), problem)),
                    "{value}"
                );
            }
        }
    }

    #[test]
    fn splits_are_kept_and_must_leave_the_primary_recipient_a_part() {
        // GIVEN two valid splits WHEN read THEN kept in order
        let split = |amount: &str| json!({"amount": amount, "recipient": "0xA1B2C3D4E5F6A1B2C3D4E5F6A1B2C3D4E5F6A1B2"});
        let request = with(
            tempo_request(),
            "/methodDetails/splits",
            json!([split("50000"), split("10000")]),
        );
        let charge = tempo(&request).unwrap();
        assert_eq!(charge.splits.len(), 2);
        assert_eq!(charge.splits[1].amount, "10000");
        // AND splits adding up to the amount, over it, zero, empty lists or 11 entries are refused
        let cases = [
            (json!([split("1000000")]), "request.methodDetails.splits"),
            (
                json!([split("999999"), split("1")]),
                "request.methodDetails.splits",
            ),
            (json!([split("2000000")]), "request.methodDetails.splits"),
            (
                json!([split("0")]),
                "request.methodDetails.splits[0].amount",
            ),
            (
                json!([split("01")]),
                "request.methodDetails.splits[0].amount",
            ),
            (json!([]), "request.methodDetails.splits"),
            (json!(vec![split("1"); 11]), "request.methodDetails.splits"),
            (json!({"amount": "1"}), "request.methodDetails.splits"),
            (json!(["x"]), "request.methodDetails.splits[0]"),
            (
                json!([{"amount": "1", "recipient": "0x1"}]),
                "request.methodDetails.splits[0].recipient",
            ),
            (
                json!([{"amount": "1"}]),
                "request.methodDetails.splits[0].recipient",
            ),
        ];
        for (splits, field) in cases {
            let request = with(tempo_request(), "/methodDetails/splits", splits.clone());
            assert_eq!(field_of(tempo(&request)), field, "{splits}");
        }
    }

    #[test]
    fn another_intent_or_method_is_its_own_refusal() {
        // GIVEN a session intent, and the stripe, example and usdc methods WHEN read
        let header = header_with(&tempo_request());
        let session = header.replacen("intent=\"charge\"", "intent=\"session\"", 1);
        assert_eq!(
            parse_charge_challenge(&session).unwrap_err(),
            MppError::UnsupportedIntent {
                intent: "session".into()
            }
        );
        // THEN each names its field, and its message holds no value
        for method in ["stripe", "example", "usdc", "lightning"] {
            let err = charge_of(method, &tempo_request()).unwrap_err();
            assert_eq!(
                err,
                MppError::UnsupportedMethod {
                    method: method.into()
                }
            );
            assert_eq!(err.field(), "method");
            assert!(!err.to_string().contains(method));
        }
        assert_eq!(
            MppError::UnsupportedIntent {
                intent: "QZXecho".into()
            }
            .to_string(),
            "intent: predebit supports only the charge intent"
        );
    }

    #[test]
    fn a_charge_needs_an_expiry() {
        // GIVEN a charge challenge without expires WHEN read THEN refused on expires
        let header =
            header_with(&tempo_request()).replacen(", expires=\"2025-01-06T12:00:00Z\"", "", 1);
        assert_eq!(
            parse_charge_challenge(&header).unwrap_err().field(),
            "expires"
        );
    }

    #[test]
    fn method_details_must_be_an_object() {
        // GIVEN methodDetails as a string WHEN read THEN refused on it
        let request = with(tempo_request(), "/methodDetails", json!("x"));
        assert_eq!(field_of(tempo(&request)), "request.methodDetails");
        let request = with(tempo_request(), "/methodDetails/feePayer", json!("true"));
        assert_eq!(field_of(tempo(&request)), "request.methodDetails.feePayer");
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

    #[test]
    fn decimal_helpers_add_and_compare_beyond_u128() {
        // GIVEN long digit strings WHEN added and compared THEN exact
        assert_eq!(add_decimal("0", "0"), "0");
        assert_eq!(add_decimal("999", "1"), "1000");
        assert_eq!(
            add_decimal(&"9".repeat(78), "1"),
            format!("1{}", "0".repeat(78))
        );
        assert!(decimal_less("99", "100"));
        assert!(!decimal_less("100", "100"));
        assert!(!decimal_less("101", "100"));
    }
}
