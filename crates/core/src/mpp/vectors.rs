//! Every file in `tests/vectors/mpp/` is read and its expectation asserted: challenges from the
//! mpp-specs drafts (cited by path, line and commit in each file) and from pympp's encoder
//! (`tools/mpp-vectors/generate.py`).

use serde_json::{json, Value};

use super::*;

/// What a vector says about one reading: `{"expected": value}` or `{"error": {field, kind}}`.
fn check<T: serde::Serialize>(result: &Result<T, MppError>, expectation: &Value, context: &str) {
    match (
        result,
        expectation.get("expected"),
        expectation.get("error"),
    ) {
        (Ok(value), Some(expected), None) => {
            assert_eq!(&serde_json::to_value(value).unwrap(), expected, "{context}")
        }
        (Err(error), None, Some(expected)) => {
            let kind = match error {
                MppError::Invalid { .. } => "invalid",
                MppError::UnsupportedIntent { .. } => "unsupportedIntent",
                MppError::UnsupportedMethod { .. } => "unsupportedMethod",
            };
            assert_eq!(
                json!({"field": error.field(), "kind": kind}),
                *expected,
                "{context}: {error}"
            );
        }
        (Ok(_), _, _) => panic!("{context}: parsed, but the vector expects {expectation}"),
        (Err(error), _, _) => {
            panic!("{context}: refused ({error}), the vector expects {expectation}")
        }
    }
}

/// Checks one challenge's reading and, when the vector says, its charge.
fn check_offer(challenge: &Result<Challenge, MppError>, vector: &Value, context: &str) {
    check(
        challenge,
        &vector["challenge"],
        &format!("{context} challenge"),
    );
    if let (Ok(challenge), Some(charge)) = (challenge, vector.get("charge")) {
        check(
            &parse_charge(challenge),
            charge,
            &format!("{context} charge"),
        );
    }
}

#[test]
fn every_mpp_vector_reads_as_it_expects() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/mpp");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let context = path.display().to_string();
        let vector: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let input = vector["input"].as_str().unwrap();
        match vector["kind"].as_str() {
            Some("challenge") => check_offer(&parse_challenge(input), &vector, &context),
            Some("list") => {
                let offered = parse_challenges(input).unwrap();
                let expected = vector["offers"].as_array().unwrap();
                assert_eq!(offered.len(), expected.len(), "{context}");
                for (i, (offer, expected)) in offered.iter().zip(expected).enumerate() {
                    assert_eq!(offer.text, expected["text"].as_str().unwrap(), "{context}");
                    check_offer(&offer.challenge, expected, &format!("{context} [{i}]"));
                }
            }
            other => panic!("{context}: unknown kind {other:?}"),
        }
        count += 1;
    }
    assert!(count >= 10, "only {count} vectors found in {dir}");
}
