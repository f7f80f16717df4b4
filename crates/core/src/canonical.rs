//! RFC 8785 JSON Canonicalization Scheme (JCS), by `serde_json_canonicalizer`.
//!
//! The audit record is hashed and MACed over its canonical form, so anyone holding the record can
//! recompute both with any JCS implementation. Canonical form: no whitespace, object members
//! sorted by the UTF-16 code units of their names, strings with only `"`, `\` and control
//! characters escaped, and numbers as ECMAScript prints the IEEE 754 double.
//!
//! One restriction is predebit's own: non-integer numbers are refused with
//! [`CanonicalError::NonIntegerNumber`], because a float in a record would be a bug: money is
//! integer micro-USD and atomic amounts are decimal strings (DESIGN.md, "Amounts"). Integers are
//! canonicalized as JCS says, through a double: exact up to 2^53, and above it the digits
//! ECMAScript prints (so `u64::MAX` is `18446744073709552000`), which is what every other JCS
//! implementation computes too.
//!
//! [`CanonicalObject`] writes the canonical form of an object whose member names the caller
//! gives in canonical order (records with a fixed set of keys), straight into the output: no
//! intermediate map, no sort. Its strings are escaped as JCS escapes them and its integers
//! printed as [`canonicalize`] prints them; tests hold both against the library.

use serde_json::Value;

/// The largest integer a double holds exactly: JCS prints up to it digit for digit.
const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// Why a JSON value has no canonical form here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// A number is not an integer (or does not fit `i64`/`u64`); predebit records hold no floats.
    #[error("number {0} is not an integer; predebit records must not contain floats")]
    NonIntegerNumber(String),
}

/// The RFC 8785 canonical form of `v`; refuses non-integer numbers.
pub fn canonicalize(v: &Value) -> Result<String, CanonicalError> {
    if let Some(n) = first_non_integer(v) {
        return Err(CanonicalError::NonIntegerNumber(n));
    }
    Ok(serde_json_canonicalizer::to_string(v)
        .expect("a serde_json Value without floats always canonicalizes"))
}

/// The RFC 8785 form of an object written member by member, names in canonical order (for
/// ASCII names, byte order). A name out of order is a programming error, caught in tests.
#[derive(Debug)]
pub struct CanonicalObject {
    out: Vec<u8>,
    last: Option<&'static str>,
}

impl Default for CanonicalObject {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl CanonicalObject {
    /// An empty object with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        CanonicalObject { out, last: None }
    }

    fn name(&mut self, name: &'static str) {
        debug_assert!(name.is_ascii(), "member names are ASCII");
        debug_assert!(
            self.last.is_none_or(|last| last < name),
            "member {name:?} written after {:?}",
            self.last
        );
        if self.last.is_some() {
            self.out.push(b',');
        }
        self.last = Some(name);
        self.string_bytes(name);
        self.out.push(b':');
    }

    fn string_bytes(&mut self, value: &str) {
        // serde_json escapes exactly what JCS does: `"`, `\`, and controls as \b \t \n \f \r or
        // \u00xx in lowercase hex; everything else is written as it is.
        serde_json::to_writer(&mut self.out, value).expect("writing to a Vec cannot fail");
    }

    /// A string member.
    pub fn string(&mut self, name: &'static str, value: &str) -> &mut Self {
        self.name(name);
        self.string_bytes(value);
        self
    }

    /// An unsigned integer member, printed as JCS prints it (through a double above 2^53).
    pub fn uint(&mut self, name: &'static str, value: u64) -> &mut Self {
        self.name(name);
        if value <= MAX_SAFE_INTEGER {
            serde_json::to_writer(&mut self.out, &value).expect("writing to a Vec cannot fail");
        } else {
            let text = serde_json_canonicalizer::to_string(&value)
                .expect("an integer always canonicalizes");
            self.out.extend_from_slice(text.as_bytes());
        }
        self
    }

    /// An unsigned integer member, or `null`.
    pub fn uint_or_null(&mut self, name: &'static str, value: Option<u64>) -> &mut Self {
        match value {
            Some(value) => self.uint(name, value),
            None => {
                self.name(name);
                self.out.extend_from_slice(b"null");
                self
            }
        }
    }

    /// A boolean member.
    pub fn bool(&mut self, name: &'static str, value: bool) -> &mut Self {
        self.name(name);
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
        self
    }

    /// An object member, written by `members`.
    pub fn object(
        &mut self,
        name: &'static str,
        members: impl FnOnce(&mut CanonicalObject),
    ) -> &mut Self {
        self.name(name);
        let mut inner = CanonicalObject {
            out: std::mem::take(&mut self.out),
            last: None,
        };
        inner.out.push(b'{');
        members(&mut inner);
        inner.out.push(b'}');
        self.out = inner.out;
        self
    }

    /// The canonical text.
    pub fn finish(mut self) -> String {
        self.out.push(b'}');
        String::from_utf8(self.out).expect("only str and ASCII were written")
    }
}

/// The first number that is not an `i64` or `u64`, as written.
fn first_non_integer(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => Some(n.to_string()),
        Value::Array(items) => items.iter().find_map(first_non_integer),
        Value::Object(members) => members.values().find_map(first_non_integer),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn canon(text: &str) -> Result<String, CanonicalError> {
        canonicalize(&serde_json::from_str(text).expect("test input is JSON"))
    }

    #[test]
    fn rfc8785_sorting_example_orders_by_utf16_code_units() {
        // GIVEN the member-sorting example of RFC 8785 section 3.2.3
        let input = r#"{
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\ud83d\ude00": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        // WHEN canonicalized THEN the order is the RFC's: U+1F600 before U+FB33
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
            \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
            \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(canon(input).unwrap(), expected);
    }

    #[test]
    fn rfc8785_string_and_literal_example_without_numbers_matches() {
        // GIVEN the section 3.2.2 example with its "numbers" member removed
        let input = r#"{
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        // WHEN canonicalized THEN the output is the RFC's, byte for byte
        let expected = "{\"literals\":[null,true,false],\"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
        assert_eq!(canon(input).unwrap(), expected);
    }

    #[test]
    fn rfc8785_example_with_floats_is_refused() {
        // GIVEN the full section 3.2.2 example, which holds non-integer numbers
        let input =
            r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]}"#;
        // WHEN canonicalized THEN the first float is named in the error
        match canon(input) {
            Err(CanonicalError::NonIntegerNumber(n)) => {
                assert!(n.starts_with("333333333.333"), "{n}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn integral_float_is_refused_rather_than_printed_as_integer() {
        assert_eq!(
            canon("{\"a\":1.0}"),
            Err(CanonicalError::NonIntegerNumber("1.0".to_string()))
        );
    }

    #[test]
    fn supplementary_plane_key_sorts_before_private_use_key() {
        // GIVEN U+E000 (UTF-8 EE 80 80) and U+10000 (UTF-8 F0 90 80 80, UTF-16 D800 DC00)
        let v = json!({"\u{e000}": 1, "\u{10000}": 2, "z": 3});
        // WHEN canonicalized THEN UTF-16 order puts U+10000 first, unlike byte order
        assert_eq!(
            canonicalize(&v).unwrap(),
            "{\"z\":3,\"\u{10000}\":2,\"\u{e000}\":1}"
        );
    }

    #[test]
    fn keys_sort_by_code_unit_not_by_length_or_case() {
        let v = json!({"b": 1, "B": 2, "aa": 3, "a": 4, "": 5});
        assert_eq!(
            canonicalize(&v).unwrap(),
            "{\"\":5,\"B\":2,\"a\":4,\"aa\":3,\"b\":1}"
        );
    }

    #[test]
    fn nested_objects_are_sorted_and_arrays_keep_their_order() {
        let v = json!({"z": [3, 1, {"y": 1, "x": 2}], "a": {"d": null, "c": true}});
        assert_eq!(
            canonicalize(&v).unwrap(),
            "{\"a\":{\"c\":true,\"d\":null},\"z\":[3,1,{\"x\":2,\"y\":1}]}"
        );
    }

    #[test]
    fn control_characters_use_short_escapes_or_lowercase_hex() {
        let v = json!("\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f}\u{7f}");
        assert_eq!(
            canonicalize(&v).unwrap(),
            "\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\u{7f}\""
        );
    }

    #[test]
    fn non_ascii_slash_and_line_separators_are_written_literally() {
        let v = json!("/\u{e9}\u{2028}\u{2029}\u{1f600}");
        assert_eq!(
            canonicalize(&v).unwrap(),
            "\"/\u{e9}\u{2028}\u{2029}\u{1f600}\""
        );
    }

    #[test]
    fn rfc8785_full_example_with_numbers_matches_through_the_library() {
        // GIVEN the whole section 3.2.2 example, floats included
        let input: Value = serde_json::from_str(
            r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#,
        )
        .unwrap();
        // WHEN the library canonicalizes it THEN the output is the RFC's, byte for byte
        let expected = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
        assert_eq!(
            serde_json_canonicalizer::to_string(&input).unwrap(),
            expected
        );
    }

    #[test]
    fn rfc8785_appendix_b_numbers_print_as_ecmascript_does() {
        // GIVEN integers from RFC 8785 appendix B's table (IEEE 754 value -> JCS text)
        for (value, text) in [
            (json!(0), "0"),
            (json!(-0), "0"),
            (json!(9007199254740991_u64), "9007199254740991"),
            (json!(-9007199254740991_i64), "-9007199254740991"),
            (json!(295147905179352830000.0), "295147905179352830000"),
            (json!(1e21), "1e+21"),
        ] {
            assert_eq!(serde_json_canonicalizer::to_string(&value).unwrap(), text);
        }
    }

    #[test]
    fn integers_print_exactly_up_to_2_pow_53_and_as_ecmascript_above() {
        // GIVEN integers across i64 and u64 WHEN canonicalized THEN every safe integer is exact
        // and the ones above 2^53 are printed through a double, as every JCS implementation does
        let v = json!([
            0,
            -0,
            1,
            -1,
            9007199254740992_u64,
            i64::MIN,
            i64::MAX,
            u64::MAX
        ]);
        assert_eq!(
            canonicalize(&v).unwrap(),
            "[0,0,1,-1,9007199254740992,-9223372036854776000,9223372036854776000,18446744073709552000]"
        );
    }

    #[test]
    fn empty_containers_and_literals_have_no_whitespace() {
        let v = json!({"o": {}, "a": [], "n": null, "t": true, "f": false});
        assert_eq!(
            canonicalize(&v).unwrap(),
            "{\"a\":[],\"f\":false,\"n\":null,\"o\":{},\"t\":true}"
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            // JCS carries integers through a double: exact round trips up to 2^53.
            (-(1i64 << 53)..=(1i64 << 53)).prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn canonical_object_writes_what_the_library_writes() {
        // GIVEN members of every kind, the awkward values among them
        let mut o = CanonicalObject::default();
        o.string("a", "\u{0}\u{1f}\"\\/\u{7f}\u{2028}\u{e9}\u{1f600}")
            .uint("b", 9_007_199_254_740_993)
            .uint("c", u64::MAX)
            .uint("d", 1 << 53)
            .uint_or_null("e", None)
            .bool("f", false)
            .object("g", |g| {
                g.uint_or_null("agent", Some(7)).uint("global", 0);
            })
            .object("h", |_| {});
        let text = o.finish();
        // THEN it is the library's canonical form of the same value
        let value = json!({
            "a": "\u{0}\u{1f}\"\\/\u{7f}\u{2028}\u{e9}\u{1f600}",
            "b": 9_007_199_254_740_993_u64, "c": u64::MAX, "d": 1_u64 << 53, "e": null,
            "f": false, "g": {"agent": 7, "global": 0}, "h": {}
        });
        assert_eq!(text, canonicalize(&value).unwrap());
        assert!(text.contains(r#""c":18446744073709552000"#), "{text}");
    }

    #[test]
    #[should_panic(expected = "written after")]
    fn canonical_object_refuses_a_name_out_of_order() {
        CanonicalObject::default().uint("b", 1).uint("a", 2);
    }

    proptest! {
        #[test]
        fn canonical_object_matches_the_library_for_any_string_and_integer(
            text in any::<String>(),
            n in any::<u64>(),
            m in proptest::option::of(any::<u64>()),
        ) {
            let mut o = CanonicalObject::default();
            o.string("s", &text).uint("u", n).uint_or_null("v", m);
            let written = o.finish();
            let expected = canonicalize(&serde_json::json!({"s": text, "u": n, "v": m})).unwrap();
            prop_assert_eq!(written, expected);
        }

        #[test]
        fn canonical_form_parses_back_to_the_same_value(v in arb_json()) {
            let text = canonicalize(&v).unwrap();
            let parsed: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&parsed, &v);
            prop_assert_eq!(canonicalize(&parsed).unwrap(), text);
        }

        #[test]
        fn canonical_form_is_independent_of_input_formatting(v in arb_json()) {
            let pretty = serde_json::to_string_pretty(&v).unwrap();
            let reparsed: Value = serde_json::from_str(&pretty).unwrap();
            prop_assert_eq!(canonicalize(&reparsed).unwrap(), canonicalize(&v).unwrap());
        }
    }
}
