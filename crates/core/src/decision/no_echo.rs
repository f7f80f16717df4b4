//! No value from a verify event, its requirement or a policy document reaches the agent or the
//! audit record unless it passed strict validation, and nothing grows with the input. Long (up to
//! 300,000 characters) and adversarial strings go into every field and key of v1 and v2 events,
//! and into every field of a policy; the response, the sealed audit record and the decision
//! token are searched for a marker no valid value can hold.
//!
//! The strategies and spoilers are shared with the ledger's and the x402 parsers' tests
//! (`ledger/no_echo.rs`, `x402/no_echo.rs`).

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::tests::{block_on, event, keys, store, NOW};
use super::{decide, Decision, DecisionContext, Verdict};
use crate::memory::MemoryStore;
use crate::reason::ReasonCode;

/// What a test searches for, case-insensitively (validators may lowercase what they keep).
pub(crate) const MARKER_CORE: &str = "QZXecho7f3aXZQ";
/// The marker injected: the core, then a space and both quotes. No identifier, hex id, CAIP-2
/// network, address, amount, URL or plain name can hold a space, so a value carrying the marker
/// never passes validation and is never legitimately recorded; a response or record that holds
/// the core copied input.
pub(crate) const MARKER: &str = "QZXecho7f3aXZQ \"'";

/// A verify response, serialized, is at most this long whatever the event held. A YES for the
/// templates here, decision token included, is 1,301 bytes; the rest is room for a detail.
/// Valid values are bounded by their own validation (identifiers 256 bytes, URLs 2048), so this
/// bound is for events like the templates: the point is that it does not grow with the input.
pub(crate) const MAX_RESPONSE_BYTES: usize = 4 * 1024;
/// The audit log line (and so its canonical record) is at most this long; the templates' YES
/// line is 941 bytes.
pub(crate) const MAX_AUDIT_LINE_BYTES: usize = 8 * 1024;

/// Strings that break naive escaping or quoting, always holding [`MARKER`], sometimes 300,000
/// characters long.
pub(crate) fn adversarial_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(" ".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\\".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\u{0}".to_string()),
        Just("\u{202e}".to_string()),
        Just("é".to_string()),
        Just("💥".to_string()),
        Just("{\"a\":[".to_string()),
        Just("https://api.example/".to_string()),
        Just("eip155:8453".to_string()),
        Just("eip155:".to_string()),
        Just("base".to_string()),
        Just("\t".to_string()),
        Just("0x".to_string()),
        Just("CRYPTO_X402".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,6}",
    ];
    (
        prop::collection::vec(piece, 0..6),
        prop_oneof![3 => Just(0usize), 1 => 1usize..300_000],
        any::<bool>(),
    )
        .prop_map(|(pieces, padding, marker_first)| {
            let noise = pieces.concat();
            let padding = "x".repeat(padding);
            if marker_first {
                format!("{MARKER}{noise}{padding}")
            } else {
                format!("{noise}{padding}{MARKER}")
            }
        })
}

/// JSON pointers to every value below the root of `value` (objects, arrays and leaves).
pub(crate) fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    for (key, child) in children {
        let path = format!("{at}/{key}");
        out.push(path.clone());
        pointers(child, &path, out);
    }
}

/// How a field is spoiled.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Spoil {
    /// The field becomes the string.
    String,
    /// A string field keeps its value with the string after it (a valid prefix); others as
    /// [`Spoil::String`].
    Append,
    /// The field becomes an object keyed by the string, holding it.
    ObjectKey,
    /// The field becomes an array holding the string.
    Array,
    /// The field becomes a JSON number (it cannot carry the marker: only the sizes are judged).
    Number,
    /// The field's parent gains a key named by the string (the field itself is kept).
    SiblingKey,
}

/// Every way to spoil a field.
pub(crate) const SPOILS: [Spoil; 6] = [
    Spoil::String,
    Spoil::Append,
    Spoil::ObjectKey,
    Spoil::Array,
    Spoil::Number,
    Spoil::SiblingKey,
];

/// Spoils the field at `pointer` of `doc` with `text`, the way `how` says.
pub(crate) fn spoil(doc: &mut Value, pointer: &str, how: Spoil, text: &str) {
    let text_value = Value::String(text.to_string());
    let set = |doc: &mut Value, value: Value| {
        if let Some(slot) = doc.pointer_mut(pointer) {
            *slot = value;
        }
    };
    match how {
        Spoil::String => set(doc, text_value),
        Spoil::Append => {
            let appended = match doc.pointer(pointer) {
                Some(Value::String(s)) => Value::String(format!("{s}{text}")),
                _ => text_value,
            };
            set(doc, appended);
        }
        Spoil::ObjectKey => {
            let mut map = Map::new();
            map.insert(text.to_string(), text_value);
            set(doc, Value::Object(map));
        }
        Spoil::Array => set(doc, Value::Array(vec![text_value])),
        // Long enough to overflow anything that reads it as a small integer.
        Spoil::Number => set(doc, json!(18_446_744_073_709_551_615u64)),
        Spoil::SiblingKey => {
            let parent = pointer.rsplit_once('/').map_or("", |(p, _)| p);
            if let Some(Value::Object(map)) = doc.pointer_mut(parent) {
                map.insert(text.to_string(), text_value);
            }
        }
    }
}

/// Whether `text` holds the marker's core, in any letter case.
pub(crate) fn holds_marker(text: &str) -> bool {
    text.to_ascii_lowercase()
        .contains(&MARKER_CORE.to_ascii_lowercase())
}

/// The first 200 characters, for a failure message that stays readable.
pub(crate) fn head(text: &str) -> String {
    text.chars().take(200).collect()
}

const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const USDC_BASE: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";

/// A v2 event with every optional field: toolUseId, the top-level resource and `extra`.
fn v2_event() -> Value {
    let mut e = event("1000000");
    e["toolUseId"] = json!("tooluse-1");
    e["requirement"]["extra"] = json!({"name": "USD Coin", "version": "2"});
    e["requirement"]["description"] = json!("market data");
    e["requirement"]["mimeType"] = json!("application/json");
    e
}

/// A v1 event: the entry carries its own resource and a v1 network name.
fn v1_event() -> Value {
    let mut e = v2_event();
    e["x402Version"] = json!(1);
    e.as_object_mut().unwrap().remove("resource");
    e["requirement"] = json!({
        "scheme": "exact", "network": "base", "maxAmountRequired": "1000000",
        "resource": "https://api.example/x", "description": "market data",
        "mimeType": "application/json", "payTo": PAY_TO, "maxTimeoutSeconds": 60,
        "asset": USDC_BASE,
        "outputSchema": {"input": {"type": "http", "method": "GET"}},
        "extra": {"name": "USD Coin", "version": "2"}
    });
    e
}

/// A policy the templates pass that restricts every field, so spoiled events reach each check.
fn strict_policy() -> Value {
    json!({
        "allowedPayTo": [PAY_TO], "blockedPayTo": ["0x1111111111111111111111111111111111111111"],
        "allowedHosts": ["api.example", "*.example"], "blockedHosts": ["evil.example"],
        "allowedUrls": ["https://api.example/"], "blockedUrls": ["https://api.example/admin/"],
        "allowedNetworks": ["eip155:8453"], "allowedAssets": ["USDC", "DAI"],
        "extraAssets": [{"network": "eip155:1", "address": "0x6B175474E89094C44Da98b954EedeAC495271d0F",
            "symbol": "DAI", "decimals": 18, "usdPegged": true}],
        "maxPerPayment": "5.00", "maxAuthorizationSeconds": 300,
        "allowedTools": ["http_request"], "consentRequired": false
    })
}

fn store_with(policy: &Value) -> MemoryStore {
    store(Some(&policy.to_string()), None, 10_000_000)
}

fn decide_full(store: &MemoryStore, event: &Value) -> Decision {
    let keys = keys();
    block_on(decide(
        store,
        event,
        DecisionContext {
            verification_id: "v-no-echo",
            now: NOW,
            keys: &keys,
            policies: &crate::policy::PolicyCache::new(),
        },
    ))
}

/// The response, the audit record and line and the token's claims hold no marker, and the
/// response and the line stay under their bounds.
fn assert_quiet(d: &Decision, context: &str) -> Result<(), TestCaseError> {
    let response = serde_json::to_string(&d.response).unwrap();
    let line = d.audit.log_line();
    prop_assert!(
        response.len() <= MAX_RESPONSE_BYTES,
        "{context}: a {}-byte response: {}",
        response.len(),
        head(&response)
    );
    prop_assert!(
        line.len() <= MAX_AUDIT_LINE_BYTES,
        "{context}: a {}-byte audit line",
        line.len()
    );
    let claims = d
        .response
        .decision_token
        .as_deref()
        .map(|t| crate::token::verify(t, &keys(), NOW).expect("a token verify issued verifies"))
        .map(|c| serde_json::to_string(&c).unwrap())
        .unwrap_or_default();
    for (what, text) in [
        ("response", &response),
        ("audit record", &d.audit.canonical),
        ("audit line", &line),
        ("token claims", &claims),
    ] {
        prop_assert!(
            !holds_marker(text),
            "{context}: the {what} echoes input: {}",
            head(text)
        );
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum Template {
    V1,
    V2,
}

impl Template {
    fn event(self) -> Value {
        match self {
            Template::V1 => v1_event(),
            Template::V2 => v2_event(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_spoiled_event_field_or_key_is_echoed_or_grows_the_answer(
        template in prop::sample::select(vec![Template::V1, Template::V2]),
        strict in any::<bool>(),
        field in any::<prop::sample::Index>(),
        how in prop::sample::select(SPOILS.to_vec()),
        text in adversarial_text(),
    ) {
        // GIVEN a valid v1 or v2 event with one field, at any depth, or its key spoiled
        let mut e = template.event();
        let mut all = Vec::new();
        pointers(&e, "", &mut all);
        let pointer = field.get(&all).clone();
        spoil(&mut e, &pointer, how, &text);
        // WHEN decided under an open policy or one that restricts every field
        let policy = if strict { strict_policy() } else { json!({}) };
        let d = decide_full(&store_with(&policy), &e);
        // THEN nothing of the input is in the answer, the record or the token, and all are small
        assert_quiet(&d, &format!("{template:?} {pointer} {how:?} strict={strict}"))?;
    }

    #[test]
    fn no_spoiled_policy_field_reaches_the_agent_or_the_record(
        scope_is_user in any::<bool>(),
        field in any::<prop::sample::Index>(),
        how in prop::sample::select(SPOILS.to_vec()),
        text in adversarial_text(),
    ) {
        // GIVEN an operator's policy with one field, at any depth, or its key spoiled
        let mut policy = strict_policy();
        let mut all = Vec::new();
        pointers(&policy, "", &mut all);
        let pointer = field.get(&all).clone();
        spoil(&mut policy, &pointer, how, &text);
        let s = if scope_is_user {
            store(Some("{}"), Some(&policy.to_string()), 10_000_000)
        } else {
            store_with(&policy)
        };
        // WHEN a valid event is decided
        let d = decide_full(&s, &v2_event());
        // THEN the agent's answer and the record name the scope and field at most
        assert_quiet(&d, &format!("policy {pointer} {how:?}"))?;
    }
}

#[test]
fn both_templates_are_approved_under_both_policies_so_a_spoiled_field_is_what_a_test_exercises() {
    for policy in [json!({}), strict_policy()] {
        for template in [Template::V1, Template::V2] {
            let d = decide_full(&store_with(&policy), &template.event());
            assert_eq!(
                d.response.decision,
                Verdict::Yes,
                "{template:?} {policy}: {:?}",
                d.response
            );
        }
    }
}

#[test]
fn an_unknown_top_level_key_is_named_only_when_it_is_a_plain_name() {
    // GIVEN one event with a misspelt field and one with a key of 300,000 adversarial characters
    let s = store_with(&json!({}));
    let mut misspelt = v2_event();
    misspelt["toolUseID"] = json!("x");
    let mut hostile = v2_event();
    let key = format!("{MARKER}{}", "k".repeat(300_000));
    hostile[key.as_str()] = json!("x");
    // WHEN decided
    let misspelt = decide_full(&s, &misspelt);
    let hostile = decide_full(&s, &hostile);
    // THEN the misspelt field is named, the hostile key is not, and the record says the same
    let malformed = ReasonCode::InvalidRequest.message();
    assert_eq!(
        misspelt.response.message,
        format!("{malformed} (toolUseID: is not a known field)"),
    );
    let not_named =
        "event: has a field that is not known (its name is not repeated: it is not a plain identifier)";
    assert_eq!(
        hostile.response.message,
        format!("{malformed} ({not_named})")
    );
    let record: Value = serde_json::from_str(&hostile.audit.canonical).unwrap();
    assert_eq!(record["detail"], not_named);
}

#[test]
fn an_unsupported_payment_type_or_scheme_is_recorded_only_when_it_is_a_plain_name() {
    // GIVEN a payment type and a scheme that are plain names, and both as hostile text
    let s = store_with(&json!({}));
    let record = |payment_type: &str, scheme: &str| {
        let mut e = v2_event();
        e["paymentType"] = json!(payment_type);
        e["requirement"]["scheme"] = json!(scheme);
        let d = decide_full(&s, &e);
        serde_json::from_str::<Value>(&d.audit.canonical).unwrap()
    };
    // WHEN decided THEN the plain ones are recorded, the hostile ones left out
    let plain = record("CARD", "exact");
    assert_eq!(
        (&plain["paymentType"], &plain["reasonCode"]),
        (&json!("CARD"), &json!("PAYMENT_TYPE_NOT_SUPPORTED"))
    );
    let plain = record("CRYPTO_X402", "deferred");
    assert_eq!(
        (&plain["scheme"], &plain["reasonCode"]),
        (&json!("deferred"), &json!("SCHEME_NOT_ALLOWED"))
    );
    let hostile = record(MARKER, "exact");
    assert_eq!(hostile["reasonCode"], "PAYMENT_TYPE_NOT_SUPPORTED");
    assert!(hostile.get("paymentType").is_none(), "{hostile}");
    // A scheme that is not a plain name does not even parse (x402's scheme names are short).
    let hostile = record("CRYPTO_X402", MARKER);
    assert_eq!(hostile["reasonCode"], "REQUIREMENT_INVALID");
    assert!(hostile.get("scheme").is_none(), "{hostile}");
}

#[test]
fn an_invalid_policy_is_reported_to_the_agent_by_scope_and_field_only() {
    // GIVEN policies whose values the parser quotes in its own message
    for (global, user, detail) in [
        (
            json!({"allowedHosts": [format!("{MARKER}.example")]}),
            json!({}),
            "global policy: allowedHosts is invalid",
        ),
        (
            json!({}),
            json!({"allowedNetworks": [MARKER]}),
            "user policy: allowedNetworks is invalid",
        ),
        (
            json!({"blockedUrls": [format!("https://api.example/{MARKER}")]}),
            json!({}),
            "global policy: blockedUrls is invalid",
        ),
        (
            json!({}),
            json!({"allowedUrls": [format!("https://api.example/?{MARKER}")]}),
            "user policy: allowedUrls is invalid",
        ),
        (
            json!({}),
            json!({"maxPerPayment": MARKER}),
            "user policy: maxPerPayment is invalid",
        ),
        (
            json!({MARKER: 1}),
            json!({}),
            "global policy: the document is not a valid policy document",
        ),
        (
            json!({"extraAssets": [{"network": "eip155:1", "address": "0x6B175474E89094C44Da98b954EedeAC495271d0F",
                "symbol": "D".repeat(300_000), "decimals": 18, "usdPegged": true}]}),
            json!({}),
            "global policy: extraAssets is invalid",
        ),
    ] {
        let s = store(
            Some(&global.to_string()),
            Some(&user.to_string()),
            10_000_000,
        );
        // WHEN a valid event is decided
        let d = decide_full(&s, &v2_event());
        // THEN POLICY_INVALID names the scope and the field, never the value
        assert_eq!(
            d.response.message,
            format!("{} ({detail})", ReasonCode::PolicyInvalid.message()),
            "{global} {user}"
        );
        assert!(!holds_marker(&d.audit.canonical));
    }
}
