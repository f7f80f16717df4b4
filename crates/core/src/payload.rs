//! The raw invocation payload, parsed within bounds before anything reads it.
//!
//! A payload that is too large, nests too deep or is not JSON is refused here with a message
//! that names the problem, never a part of the payload. The bounds keep every later recursive
//! walk (serde_json's own parser, the canonical JSON of a requirement, dropping a `Value`) far
//! from any stack limit, whatever the caller sends.

use serde_json::Value;

use crate::decision::{prepare, Outcome};
use crate::reason::ReasonCode;
use crate::verify::EVENT_VERSION;

/// The largest payload accepted, in bytes (256 KiB, Lambda's asynchronous invoke limit).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// The deepest nesting of arrays and objects accepted; the top-level object is level 1.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Why a payload was refused before it was read. Names the problem, never the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadProblem {
    /// More than [`MAX_PAYLOAD_BYTES`] bytes.
    #[error("event: is larger than {} bytes", MAX_PAYLOAD_BYTES)]
    TooLarge,
    /// Arrays and objects nested more than [`MAX_NESTING_DEPTH`] levels.
    #[error("event: nests deeper than {} levels", MAX_NESTING_DEPTH)]
    TooDeep,
    /// Not one JSON value in UTF-8 (RFC 8259 requires UTF-8).
    #[error("event: is not valid JSON")]
    NotJson,
}

/// Parses a raw payload: the size first, then a linear pre-scan of the nesting depth, then
/// serde_json. No step recurses on the input before the depth is known to be bounded.
pub fn parse(raw: &[u8]) -> Result<Value, PayloadProblem> {
    if raw.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadProblem::TooLarge);
    }
    if nesting_depth(raw) > MAX_NESTING_DEPTH {
        return Err(PayloadProblem::TooDeep);
    }
    serde_json::from_slice(raw).map_err(|_| PayloadProblem::NotJson)
}

/// The deepest bracket nesting outside JSON strings. Unbalanced input is left to the parser to
/// refuse; this only bounds how deep it would recurse.
fn nesting_depth(raw: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in raw {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The verify decision's INVALID_REQUEST outcome for a refused payload, ready for
/// [`crate::decision::finish`], so a refused payload still leaves a sealed audit record.
pub fn verify_refusal(problem: PayloadProblem) -> Outcome {
    // The outcome `prepare` gives an event that is not an object is exactly the one wanted here
    // (no request, no requirement); only the detail differs. Reusing it keeps one INVALID_REQUEST path.
    let mut outcome = match prepare(&Value::Null) {
        Err(outcome) => *outcome,
        Ok(_) => unreachable!("a null event is never a valid verify request"),
    };
    outcome.reason = ReasonCode::InvalidRequest;
    outcome.detail = Some(problem.to_string());
    outcome
}

/// The ledger's refusal of a payload it could not read: its usual refusal shape, no op.
pub fn ledger_refusal(problem: PayloadProblem) -> Value {
    let reason = ReasonCode::InvalidRequest;
    serde_json::json!({
        "version": EVENT_VERSION,
        "op": null,
        "ok": false,
        "reasonCode": reason,
        "message": format!("{} ({problem})", reason.message()),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn nested_arrays(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn a_payload_nested_exactly_64_levels_is_accepted() {
        // GIVEN arrays nested exactly at the bound
        let raw = nested_arrays(MAX_NESTING_DEPTH);
        // WHEN it is parsed
        let value = parse(raw.as_bytes()).expect("64 levels are within the bound");
        // THEN the value is the nested arrays
        assert_eq!(serde_json::to_string(&value).unwrap(), raw);
    }

    #[test]
    fn a_payload_nested_65_levels_is_refused_as_too_deep() {
        let raw = nested_arrays(MAX_NESTING_DEPTH + 1);
        assert_eq!(parse(raw.as_bytes()), Err(PayloadProblem::TooDeep));
    }

    #[test]
    fn objects_and_arrays_both_count_as_levels() {
        // GIVEN a verify-like event whose requirement.extra nests 200 objects deep
        let mut extra = json!({});
        for _ in 0..200 {
            extra = json!({ "a": extra });
        }
        let raw = serde_json::to_vec(&json!({ "requirement": { "extra": extra } })).unwrap();
        // WHEN it is parsed THEN it is refused before serde_json's recursion limit is reached
        assert_eq!(parse(&raw), Err(PayloadProblem::TooDeep));
    }

    #[test]
    fn brackets_inside_strings_do_not_count_as_nesting() {
        // GIVEN a shallow object whose string values are full of brackets and escaped quotes
        let text = format!("{}\\\"{}", "[[[[{{{{".repeat(100), "[".repeat(100));
        let raw = format!(r#"{{"description": "{text}", "b": ["x"]}}"#);
        // WHEN it is parsed THEN it is accepted: the depth is 2
        let value = parse(raw.as_bytes()).expect("brackets in strings are text");
        assert_eq!(value["b"], json!(["x"]));
        assert_eq!(nesting_depth(raw.as_bytes()), 2);
    }

    #[test]
    fn an_escaped_backslash_before_a_quote_ends_the_string() {
        // "\\" is one backslash; the quote after it closes the string, so the brackets count.
        let raw = format!(r#"["\\", {}]"#, nested_arrays(MAX_NESTING_DEPTH));
        assert_eq!(parse(raw.as_bytes()), Err(PayloadProblem::TooDeep));
    }

    #[test]
    fn a_payload_of_exactly_256_kib_is_read_and_one_byte_more_is_refused() {
        // GIVEN a JSON string padded to exactly the bound
        let padding = MAX_PAYLOAD_BYTES - 2;
        let raw = format!("\"{}\"", "a".repeat(padding));
        assert_eq!(raw.len(), MAX_PAYLOAD_BYTES);
        // THEN it parses, and one more byte is refused as too large
        assert_eq!(
            parse(raw.as_bytes()),
            Ok(Value::String("a".repeat(padding)))
        );
        let raw = format!("\"{}\"", "a".repeat(padding + 1));
        assert_eq!(parse(raw.as_bytes()), Err(PayloadProblem::TooLarge));
    }

    #[test]
    fn the_size_is_checked_before_the_depth() {
        let raw = nested_arrays(MAX_PAYLOAD_BYTES);
        assert_eq!(parse(raw.as_bytes()), Err(PayloadProblem::TooLarge));
    }

    #[test]
    fn a_body_that_is_not_json_is_refused() {
        for raw in [&b"not json"[..], b"", b"{", b"{} {}", b"{\"a\":1,}"] {
            assert_eq!(parse(raw), Err(PayloadProblem::NotJson), "{raw:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_refused_as_not_json() {
        // Inside a string and outside one: JSON text is UTF-8 (RFC 8259, section 8.1).
        for raw in [&b"{\"a\": \"\xff\"}"[..], b"\xfe{}", b"{\"a\": \"\xc3\"}"] {
            assert_eq!(parse(raw), Err(PayloadProblem::NotJson), "{raw:?}");
        }
    }

    #[test]
    fn messages_name_the_problem_and_never_the_payload() {
        assert_eq!(
            PayloadProblem::TooLarge.to_string(),
            format!("event: is larger than {MAX_PAYLOAD_BYTES} bytes")
        );
        assert_eq!(
            PayloadProblem::TooDeep.to_string(),
            format!("event: nests deeper than {MAX_NESTING_DEPTH} levels")
        );
        let marker = "MARKER-7f3a";
        let problem = parse(format!("{{\"{marker}\": nope}}").as_bytes()).unwrap_err();
        assert_eq!(problem.to_string(), "event: is not valid JSON");
    }

    #[test]
    fn the_verify_refusal_is_invalid_request_with_only_the_problem_as_detail() {
        let outcome = verify_refusal(PayloadProblem::TooDeep);
        assert_eq!(outcome.reason, ReasonCode::InvalidRequest);
        assert_eq!(
            outcome.detail.as_deref(),
            Some("event: nests deeper than 64 levels")
        );
        assert!(outcome.request.is_none() && outcome.requirement.is_none());
    }

    #[test]
    fn the_ledger_refusal_has_the_ledger_refusal_shape() {
        assert_eq!(
            ledger_refusal(PayloadProblem::NotJson),
            json!({
                "version": "1",
                "op": null,
                "ok": false,
                "reasonCode": "INVALID_REQUEST",
                "message": format!(
                    "{} (event: is not valid JSON)",
                    ReasonCode::InvalidRequest.message()
                ),
            })
        );
    }
}
