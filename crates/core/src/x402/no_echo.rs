//! The x402 parsers never echo a merchant's value: every refusal names a field and a problem,
//! is short, and holds nothing from the input. Long (up to 300,000 characters) and adversarial
//! strings go into every field of every kind of x402 value, and into the raw header text.

use proptest::prelude::*;
use serde_json::Value;

use super::testdata::*;
use super::*;

// The marker and the adversarial strings are the verify test's: one generator for every
// no-echo test, so a piece of hostile text added there is tried here too.
use crate::decision::no_echo::{adversarial_text, holds_marker, pointers, spoil, Spoil, MARKER};
/// Every refusal's `to_string()` fits in this many bytes.
const MAX_MESSAGE_BYTES: usize = 300;

/// The kinds of x402 value, each with a realistic template and the parsers that read it.
#[derive(Clone, Copy, Debug)]
enum Target {
    V1Entry,
    V2Entry,
    V1Body,
    V2PaymentRequired,
    V1XPayment,
    V2PaymentSignature,
    V2PaymentSignaturePermit2,
    Settlement,
}

const TARGETS: [Target; 8] = [
    Target::V1Entry,
    Target::V2Entry,
    Target::V1Body,
    Target::V2PaymentRequired,
    Target::V1XPayment,
    Target::V2PaymentSignature,
    Target::V2PaymentSignaturePermit2,
    Target::Settlement,
];

impl Target {
    fn template(self) -> Value {
        match self {
            Target::V1Entry => v1_entry(),
            Target::V2Entry => v2_entry(),
            Target::V1Body => v1_body(),
            Target::V2PaymentRequired => v2_payment_required(),
            Target::V1XPayment => v1_x_payment(),
            Target::V2PaymentSignature => v2_payment_signature(),
            Target::V2PaymentSignaturePermit2 => {
                let mut signature = v2_payment_signature();
                signature["payload"] = permit2_payload();
                signature
            }
            Target::Settlement => {
                let mut settlement = v2_settlement();
                settlement["errorReason"] = "insufficient_funds".into();
                settlement["errorMessage"] = "the payer's balance is too low".into();
                settlement
            }
        }
    }

    /// Every refusal the parsers for this kind give `doc`, read every way predebit reads it.
    fn refusals(self, doc: &Value) -> Vec<FieldError> {
        let text = doc.to_string();
        let encoded = b64(doc);
        let results: Vec<Result<(), FieldError>> = match self {
            Target::V1Entry => vec![parse_requirement(1, doc, None).map(drop)],
            Target::V2Entry => vec![parse_requirement(2, doc, Some(URL)).map(drop)],
            Target::V1Body => vec![
                parse_payment_required_body(&text).map(drop),
                decode_wire(Some(WireKind::PaymentRequiredBody), &text).map(drop),
                decode_wire(None, &text).map(drop),
                decode_wire(None, &encoded).map(drop),
            ],
            Target::V2PaymentRequired => vec![
                parse_payment_required_header(&encoded).map(drop),
                parse_payment_required_body(&text).map(drop),
                decode_wire(Some(WireKind::PaymentRequiredHeader), &encoded).map(drop),
                decode_wire(None, &encoded).map(drop),
            ],
            Target::V1XPayment => vec![
                parse_payment_header(WireKind::XPayment, &encoded).map(drop),
                decode_wire(None, &encoded).map(drop),
            ],
            Target::V2PaymentSignature | Target::V2PaymentSignaturePermit2 => vec![
                parse_payment_header(WireKind::PaymentSignature, &encoded).map(drop),
                decode_wire(None, &encoded).map(drop),
            ],
            Target::Settlement => vec![
                parse_settlement(&text).map(drop),
                parse_settlement(&encoded).map(drop),
                decode_wire(Some(WireKind::XPaymentResponse), &encoded).map(drop),
                decode_wire(None, &text).map(drop),
            ],
        };
        results.into_iter().filter_map(Result::err).collect()
    }
}

const URL: &str = "https://api.example.com/premium-data";

fn assert_quiet(refusals: &[FieldError], context: &str) -> Result<(), TestCaseError> {
    for refusal in refusals {
        let message = refusal.to_string();
        prop_assert!(
            message.len() <= MAX_MESSAGE_BYTES,
            "{context}: a {}-byte message: {}",
            message.len(),
            message.chars().take(200).collect::<String>()
        );
        prop_assert!(
            !holds_marker(&message),
            "{context}: the message echoes input: {}",
            message.chars().take(200).collect::<String>()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_refusal_of_a_spoiled_field_echoes_the_input_or_grows_with_it(
        target in prop::sample::select(TARGETS.to_vec()),
        field in any::<prop::sample::Index>(),
        how in prop::sample::select(vec![Spoil::String, Spoil::Append, Spoil::ObjectKey, Spoil::Array, Spoil::Number, Spoil::SiblingKey]),
        text in adversarial_text(),
    ) {
        // GIVEN a realistic x402 value with one field (any depth) spoiled by an adversarial string
        let mut doc = target.template();
        let mut all = Vec::new();
        pointers(&doc, "", &mut all);
        let pointer = field.get(&all).clone();
        spoil(&mut doc, &pointer, how, &text);
        // WHEN every parser of that kind reads it
        let refusals = target.refusals(&doc);
        // THEN no refusal holds the input, and every one is short
        assert_quiet(&refusals, &format!("{target:?} {pointer} {how:?}"))?;
    }

    #[test]
    fn no_refusal_of_raw_header_or_body_text_echoes_it(text in adversarial_text(), k in 0usize..7) {
        // GIVEN adversarial text as the raw value of each header, the body, or an unknown kind
        let kind = [
            WireKind::PaymentRequiredBody,
            WireKind::PaymentRequiredHeader,
            WireKind::XPayment,
            WireKind::PaymentSignature,
            WireKind::XPaymentResponse,
            WireKind::PaymentResponse,
        ]
        .get(k)
        .copied();
        // WHEN it is parsed every way
        let mut refusals: Vec<FieldError> = [
            decode_wire(kind, &text).map(drop),
            parse_payment_required_body(&text).map(drop),
            parse_payment_required_header(&text).map(drop),
            parse_payment_header(WireKind::XPayment, &text).map(drop),
            parse_payment_header(WireKind::PaymentSignature, &text).map(drop),
            parse_settlement(&text).map(drop),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect();
        // (JSON text that is almost right: the marker breaks it mid-way)
        let broken = format!("{{\"x402Version\": 1, \"accepts\": [{text}");
        refusals.extend(decode_wire(kind, &broken).err());
        refusals.extend(parse_settlement(&broken).err());
        // THEN nothing echoes it
        assert_quiet(&refusals, &format!("{kind:?}"))?;
    }

    #[test]
    fn no_refusal_of_a_v2_resource_argument_echoes_it(text in adversarial_text()) {
        // The v2 resource URL the verify event carries beside the entry.
        let refusals: Vec<FieldError> = parse_requirement(2, &v2_entry(), Some(&text)).err().into_iter().collect();
        assert_quiet(&refusals, "resource")?;
    }
}

#[test]
fn every_target_template_parses_so_spoiling_one_field_is_what_a_test_exercises() {
    for target in TARGETS {
        assert_eq!(
            target.refusals(&target.template()),
            Vec::new(),
            "{target:?}"
        );
    }
}

#[test]
fn an_unknown_v1_network_of_300000_characters_is_refused_in_a_short_message() {
    // GIVEN the case the issue names: a huge unknown network name in a v1 entry and X-PAYMENT
    let network = format!("{MARKER}{}", "n".repeat(300_000));
    let mut entry = v1_entry();
    entry["network"] = network.clone().into();
    let mut payment = v1_x_payment();
    payment["network"] = network.into();
    // WHEN parsed
    let from_entry = parse_requirement(1, &entry, None).unwrap_err();
    let from_payment = parse_payment_header(WireKind::XPayment, &b64(&payment)).unwrap_err();
    // THEN both name the field and the problem only
    for e in [from_entry, from_payment] {
        assert_eq!(e.field, "network");
        assert!(
            e.to_string().len() <= MAX_MESSAGE_BYTES,
            "{} bytes",
            e.to_string().len()
        );
        assert!(!holds_marker(&e.to_string()));
    }
}
