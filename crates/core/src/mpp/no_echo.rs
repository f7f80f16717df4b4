//! The MPP parsers never panic and never echo the merchant: random text, adversarial text (up to
//! 300,000 characters, always holding a marker) and random mutations of valid challenges go in;
//! every refusal must be short, hold no marker, and name a field from the specification.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::challenge::tests::{b64url, header_with, tempo_request};
use super::*;
use crate::decision::no_echo::{adversarial_text, holds_marker, pointers, spoil, Spoil, MARKER};

/// Every refusal's `to_string()` fits in this many bytes.
const MAX_MESSAGE_BYTES: usize = 200;

/// Whether `field` is one predebit itself names: a known auth-param, the header, or a path of
/// spec names under `request`, optionally inside `challenges[i]`.
fn is_spec_field(field: &str) -> bool {
    let field = match field.strip_prefix("challenges[") {
        Some(rest) => match rest.split_once("].") {
            Some((index, rest)) if index.bytes().all(|b| b.is_ascii_digit()) => rest,
            _ => return false,
        },
        None => field,
    };
    // The challenge's own auth-params, the header, and the challenge itself ("").
    const OTHERS: [&str; 2] = ["WWW-Authenticate", ""];
    const REQUEST_KEYS: [&str; 15] = [
        "amount",
        "currency",
        "recipient",
        "methodDetails",
        "chainId",
        "feePayer",
        "feePayerKey",
        "credentialTypes",
        "permit2Address",
        "decimals",
        "splits",
        "network",
        "tokenProgram",
        "confidential",
        "",
    ];
    if super::challenge::KNOWN.contains(&field) || OTHERS.contains(&field) {
        return true;
    }
    let Some(path) = field.strip_prefix("request.") else {
        return false;
    };
    path.split('.').all(|part| {
        let name = match part.split_once('[') {
            Some((name, index)) => match index.strip_suffix(']') {
                Some(i) if !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) => name,
                _ => return false,
            },
            None => part,
        };
        !name.is_empty() && REQUEST_KEYS.contains(&name)
    })
}

fn assert_quiet(error: &MppError, context: &str) -> Result<(), TestCaseError> {
    let message = error.to_string();
    prop_assert!(
        message.len() <= MAX_MESSAGE_BYTES,
        "{context}: a {}-byte message",
        message.len()
    );
    prop_assert!(
        !holds_marker(&message),
        "{context}: echoes input: {message}"
    );
    prop_assert!(
        is_spec_field(error.field()),
        "{context}: names a field that is not the spec's: {message}"
    );
    Ok(())
}

/// Every refusal the parsers give `text`, read every way.
fn refusals(text: &str) -> Vec<MppError> {
    let mut out: Vec<MppError> = Vec::new();
    out.extend(parse_challenge(text).err());
    out.extend(parse_charge_challenge(text).err());
    match parse_challenges(text) {
        Ok(offered) => {
            for offer in offered {
                out.extend(offer.challenge.as_ref().err().cloned());
                if let Ok(challenge) = &offer.challenge {
                    out.extend(parse_charge(challenge).err());
                }
            }
        }
        Err(e) => out.push(e),
    }
    out
}

fn evm_request() -> Value {
    json!({
        "amount": "1000000",
        "currency": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        "recipient": "0x742d35Cc6634c0532925a3b844bC9e7595F8fE00",
        "methodDetails": {"chainId": 8453, "credentialTypes": ["permit2"], "decimals": 6,
                          "permit2Address": "0x000000000022D473030F116dDEE9F6B43aC78BA3",
                          "splits": [{"amount": "1", "recipient": "0x742d35Cc6634c0532925a3b844bC9e7595F8fE00"}]}
    })
}

fn solana_request() -> Value {
    json!({
        "amount": "1000000",
        "currency": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        "recipient": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
        "methodDetails": {"network": "mainnet", "decimals": 6, "feePayer": true,
                          "feePayerKey": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
                          "tokenProgram": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"}
    })
}

/// (method, request) templates that parse, one per method.
fn templates() -> Vec<(&'static str, Value)> {
    vec![
        ("tempo", tempo_request()),
        ("evm", evm_request()),
        ("solana", solana_request()),
    ]
}

fn header_for(method: &str, request: &Value) -> String {
    header_with(request).replacen("method=\"tempo\"", &format!("method=\"{method}\""), 1)
}

/// A header edit: insert text, delete a range, or replace a range with text.
#[derive(Clone, Debug)]
enum Edit {
    Insert(prop::sample::Index, String),
    Delete(prop::sample::Index, usize),
    Replace(prop::sample::Index, usize, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let text = prop_oneof![
        adversarial_text(),
        Just(MARKER.to_string()),
        Just(format!("\"{MARKER}")),
        Just(format!("x={MARKER}")),
        Just(format!(", Payment id=\"{MARKER}\"")),
        Just(", ".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("=".to_string()),
        "[ -~]{0,8}",
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), text.clone()).prop_map(|(i, t)| Edit::Insert(i, t)),
        (any::<prop::sample::Index>(), 0usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<prop::sample::Index>(), 0usize..40, text)
            .prop_map(|(i, n, t)| Edit::Replace(i, n, t)),
    ]
}

/// Applies `edit` to `text` at char boundaries.
fn apply(text: &str, edit: &Edit) -> String {
    let boundaries: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let at = |index: &prop::sample::Index| boundaries[index.index(boundaries.len())];
    let end = |start: usize, n: usize| {
        boundaries
            .iter()
            .copied()
            .find(|&b| b >= start + n)
            .unwrap_or(text.len())
    };
    match edit {
        Edit::Insert(i, t) => {
            let p = at(i);
            format!("{}{t}{}", &text[..p], &text[p..])
        }
        Edit::Delete(i, n) => {
            let p = at(i);
            format!("{}{}", &text[..p], &text[end(p, *n)..])
        }
        Edit::Replace(i, n, t) => {
            let p = at(i);
            format!("{}{t}{}", &text[..p], &text[end(p, *n)..])
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_text_is_refused_quietly(text in ".*") {
        for error in refusals(&text) {
            assert_quiet(&error, "random text")?;
        }
    }

    #[test]
    fn adversarial_text_is_refused_quietly(text in adversarial_text()) {
        let mut errors = refusals(&text);
        errors.extend(refusals(&format!("Payment {text}")));
        errors.extend(refusals(&format!("Payment id=\"{text}\"")));
        for error in errors {
            assert_quiet(&error, "adversarial text")?;
        }
    }

    #[test]
    fn mutated_valid_headers_never_panic_or_echo(
        template in 0usize..3,
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        // GIVEN a valid charge challenge (alone, or second in a list), edited one to three times
        let (method, request) = templates().swap_remove(template);
        let valid = header_for(method, &request);
        let mut header = format!("Bearer realm=\"x\", {valid}");
        for e in &edits {
            header = apply(&header, e);
        }
        // WHEN read every way THEN every refusal is quiet
        for error in refusals(&header) {
            assert_quiet(&error, &format!("{edits:?}"))?;
        }
    }

    #[test]
    fn spoiled_request_fields_are_refused_quietly(
        template in 0usize..3,
        field in any::<prop::sample::Index>(),
        how in prop::sample::select(vec![Spoil::String, Spoil::Append, Spoil::ObjectKey, Spoil::Array, Spoil::Number, Spoil::SiblingKey]),
        text in adversarial_text(),
    ) {
        // GIVEN a valid request with one field (any depth) spoiled by adversarial text
        let (method, mut request) = templates().swap_remove(template);
        let mut all = Vec::new();
        pointers(&request, "", &mut all);
        let pointer = field.get(&all).clone();
        spoil(&mut request, &pointer, how, &text);
        // WHEN encoded into its challenge and read THEN every refusal is quiet
        for error in refusals(&header_for(method, &request)) {
            assert_quiet(&error, &format!("{method} {pointer} {how:?}"))?;
        }
    }

    #[test]
    fn each_listed_challenge_text_reads_as_its_listed_challenge(
        order in prop::collection::vec(0usize..3, 1..5),
        separator in prop::sample::select(vec![", ", ",", " , ", ",  ,\t"]),
    ) {
        // GIVEN one to four valid challenges joined with list separators
        let texts: Vec<String> = order.iter().map(|&i| {
            let (method, request) = templates().swap_remove(i);
            header_for(method, &request)
        }).collect();
        let header = texts.join(separator);
        // WHEN listed THEN each offer's text is the challenge as written, and reads the same alone
        let offered = parse_challenges(&header).unwrap();
        prop_assert_eq!(offered.len(), texts.len());
        for (offer, text) in offered.iter().zip(&texts) {
            prop_assert_eq!(&offer.text, text);
            let alone = parse_challenge(text);
            prop_assert_eq!(offer.challenge.as_ref().ok(), alone.as_ref().ok());
            prop_assert!(parse_charge_challenge(&offer.text).is_ok());
        }
    }
}

#[test]
fn every_template_parses_so_a_spoiled_field_is_what_a_test_exercises() {
    for (method, request) in templates() {
        let header = header_for(method, &request);
        assert!(
            parse_charge_challenge(&header).is_ok(),
            "{method}: {:?}",
            parse_charge_challenge(&header)
        );
    }
}

#[test]
fn the_spec_field_check_refuses_input_shaped_fields() {
    // The check above is only as good as its refusals.
    assert!(is_spec_field(
        "challenges[3].request.methodDetails.splits[0].amount"
    ));
    assert!(is_spec_field("WWW-Authenticate"));
    assert!(!is_spec_field("request.QZXecho"));
    assert!(!is_spec_field("challenges[x].id"));
    assert!(!is_spec_field("request.splits[]"));
    assert!(!is_spec_field("x-future"));
}

#[test]
fn a_huge_quoted_description_is_refused_in_a_short_message() {
    // GIVEN a 300,000-character description with the marker WHEN parsed THEN short and quiet
    let header = format!(
        "{}, description=\"{MARKER}{}\"",
        header_with(&tempo_request()),
        "d".repeat(300_000)
    )
    .replace(MARKER, &MARKER.replace('"', "\\\""));
    let error = parse_challenge(&header).unwrap_err();
    assert_eq!(error.field(), "WWW-Authenticate");
    assert!(!holds_marker(&error.to_string()));
    // AND a request that is valid base64url but not JSON says so without quoting it
    let not_json = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        crate::decision::no_echo::MARKER_CORE,
    );
    let bad = header_with(&json!({})).replacen(&b64url(&json!({})), &not_json, 1);
    assert_eq!(
        parse_challenge(&bad).unwrap_err().to_string(),
        "request: is not valid JSON after base64url decoding"
    );
}
