//! The `charge` intent's request (mpp-specs `specs/intents/draft-payment-intent-charge-00.md`)
//! for the methods AgentCore Payments signs (tempo, evm, solana; their details in `method.rs`).
//!
//! Shared fields: `amount` (base units, a decimal string), `currency` (the token), `recipient`,
//! and method-specific `methodDetails`. Expiry is the challenge's `expires` auth-param, which a
//! charge must carry here: it bounds how long the signed payment can be collected.

use serde_json::{Map, Value};

use super::challenge::{parse_challenge, Challenge};
use super::method::{buyer_pays_fees, decimals, invalid_detail, network, solana_rules, Method};
use super::MppError;
use crate::address::{validate_evm, validate_solana, AddressError};
use crate::x402::parse_atomic_amount;

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

pub(super) fn optional_address(
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
pub(crate) mod tests {
    use super::*;
    use crate::mpp::challenge::tests::{header_with, tempo_request};
    use serde_json::json;

    pub(crate) const RECIPIENT: &str = "0x742d35Cc6634c0532925a3b844bC9e7595F8fE00";
    pub(crate) const PATH_USD: &str = "0x20c0000000000000000000000000000000000000";
    pub(crate) const SOL_USDC: &str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";
    pub(crate) const SOL_RECIPIENT: &str = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU";

    pub(crate) fn charge_of(method: &str, request: &Value) -> Result<ChargeRequest, MppError> {
        let header =
            header_with(request).replacen("method=\"tempo\"", &format!("method=\"{method}\""), 1);
        parse_charge_challenge(&header).map(|(_, charge)| charge)
    }

    pub(crate) fn tempo(request: &Value) -> Result<ChargeRequest, MppError> {
        charge_of("tempo", request)
    }

    pub(crate) fn with(mut request: Value, pointer: &str, value: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        if parent.is_empty() {
            request[key] = value;
        } else {
            request.pointer_mut(parent).unwrap()[key] = value;
        }
        request
    }

    pub(crate) fn field_of(result: Result<ChargeRequest, MppError>) -> String {
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
