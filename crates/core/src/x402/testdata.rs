//! Realistic x402 values shared by the module's tests, and proptest strategies.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use proptest::prelude::*;
use serde_json::{json, Value};

/// USDC on Base Sepolia (EIP-55).
pub const USDC_BASE_SEPOLIA: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
/// USDC on Base (EIP-55).
pub const USDC_BASE: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
/// A merchant address (EIP-55).
pub const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
/// A payer address (EIP-55).
pub const PAYER: &str = "0x857b06519E91e3A54538791bDbb0E22373e36b66";
/// x402's `x402ExactPermit2Proxy`, the spender `@x402/evm` 2.27 signs (lowercase form).
pub const PERMIT2_PROXY: &str = "0x402085c248eea27d92e8b30b2c58ed07f9e20001";
/// USDC mint on Solana mainnet.
pub const USDC_SOLANA: &str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";
/// A Solana merchant address.
pub const SOLANA_PAY_TO: &str = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM";
/// A 65-byte EIP-712 signature in hex.
pub const SIGNATURE: &str = "0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c";
/// A 32-byte EIP-3009 nonce.
pub const NONCE: &str = "0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480";
/// An EVM transaction hash.
pub const TX_HASH: &str = "0xbeef4b2bbd0c5b0c9a3f8d2e4f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6";

/// Standard base64 with padding, as the reference libraries emit.
pub fn b64(value: &Value) -> String {
    STANDARD.encode(value.to_string())
}

/// Standard base64 without padding.
pub fn b64_no_pad(value: &Value) -> String {
    STANDARD_NO_PAD.encode(value.to_string())
}

/// A v1 `accepts` entry as a v1 server sends it.
pub fn v1_entry() -> Value {
    json!({
        "scheme": "exact",
        "network": "base-sepolia",
        "maxAmountRequired": "10000",
        "resource": "https://api.example.com/premium-data",
        "description": "Access to premium market data",
        "mimeType": "application/json",
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 300,
        "asset": USDC_BASE_SEPOLIA,
        "outputSchema": {"input": {"type": "http", "method": "GET", "discoverable": true}},
        "extra": {"name": "USDC", "version": "2"}
    })
}

/// A v1 402 body.
pub fn v1_body() -> Value {
    json!({"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [v1_entry()]})
}

/// A v2 `accepts` entry.
pub fn v2_entry() -> Value {
    json!({
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": "10000",
        "asset": USDC_BASE_SEPOLIA,
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2"}
    })
}

/// A v2 `resource` object.
pub fn v2_resource() -> Value {
    json!({
        "url": "https://api.example.com/premium-data",
        "description": "Access to premium market data",
        "mimeType": "application/json"
    })
}

/// The decoded JSON of a v2 PAYMENT-REQUIRED header.
pub fn v2_payment_required() -> Value {
    json!({
        "x402Version": 2,
        "error": "PAYMENT-SIGNATURE header is required",
        "resource": v2_resource(),
        "accepts": [v2_entry()]
    })
}

/// An EIP-3009 authorization payload.
pub fn eip3009_payload() -> Value {
    json!({
        "signature": SIGNATURE,
        "authorization": {
            "from": PAYER,
            "to": PAY_TO,
            "value": "10000",
            "validAfter": "1740672089",
            "validBefore": "1740672154",
            "nonce": NONCE
        }
    })
}

/// A Permit2 payload paying PAY_TO through the x402 proxy.
pub fn permit2_payload() -> Value {
    json!({
        "signature": SIGNATURE,
        "permit2Authorization": {
            "from": PAYER,
            "permitted": {"token": USDC_BASE_SEPOLIA, "amount": "10000"},
            "spender": PERMIT2_PROXY,
            "nonce": "42",
            "deadline": "1740672154",
            "witness": {"to": PAY_TO, "validAfter": "1740672089", "extra": "0x"}
        }
    })
}

/// The decoded JSON of a v1 X-PAYMENT header.
pub fn v1_x_payment() -> Value {
    json!({"x402Version": 1, "scheme": "exact", "network": "base-sepolia", "payload": eip3009_payload()})
}

/// The decoded JSON of a v2 PAYMENT-SIGNATURE header.
pub fn v2_payment_signature() -> Value {
    json!({
        "x402Version": 2,
        "resource": v2_resource(),
        "accepted": v2_entry(),
        "payload": eip3009_payload()
    })
}

/// The decoded JSON of a successful v2 PAYMENT-RESPONSE header.
pub fn v2_settlement() -> Value {
    json!({
        "success": true,
        "payer": PAYER,
        "transaction": TX_HASH,
        "network": "eip155:84532",
        "amount": "10000"
    })
}

/// Arbitrary JSON values, nested a few levels deep.
pub fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".*".prop_map(Value::String),
        "[0-9]{0,80}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(known_key(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Keys the parsers look for, plus arbitrary ones, so random objects reach deep code paths.
fn known_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "x402Version",
            "accepts",
            "scheme",
            "network",
            "amount",
            "maxAmountRequired",
            "resource",
            "url",
            "payTo",
            "asset",
            "maxTimeoutSeconds",
            "extra",
            "payload",
            "accepted",
            "authorization",
            "permit2Authorization",
            "permitted",
            "witness",
            "transaction",
            "success",
            "from",
            "to",
            "value",
            "validBefore",
            "deadline",
        ])
        .prop_map(str::to_string),
        ".{0,8}",
    ]
}

/// A valid entry of either version with one field replaced by arbitrary JSON.
pub fn mutated_entry() -> impl Strategy<Value = Value> {
    (
        prop::bool::ANY,
        prop::sample::select(vec![
            "scheme",
            "network",
            "amount",
            "maxAmountRequired",
            "resource",
            "payTo",
            "asset",
            "maxTimeoutSeconds",
            "extra",
            "description",
        ]),
        arbitrary_json(),
    )
        .prop_map(|(v1, key, value)| {
            let mut entry = if v1 { v1_entry() } else { v2_entry() };
            entry[key] = value;
            entry
        })
}
