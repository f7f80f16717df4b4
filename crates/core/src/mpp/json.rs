//! Strict JSON for a challenge's decoded `request`: an object, no key twice at any depth, and
//! bounded nesting.
//!
//! serde_json keeps the last of two equal keys; another reader (the signer's) may keep the
//! first. A merchant could then show predebit one amount and have another signed, so a repeated
//! key is refused rather than resolved.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::MAX_REQUEST_DEPTH;

/// Why a request's JSON was refused (fixed text: nothing of the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonProblem {
    /// Not JSON at all, or trailing text.
    NotJson,
    /// Valid JSON, but not an object.
    NotObject,
    /// The same key twice in one object.
    DuplicateKey,
    /// Nested deeper than [`MAX_REQUEST_DEPTH`].
    TooDeep,
}

impl JsonProblem {
    /// The problem as a message.
    pub fn message(self) -> &'static str {
        match self {
            JsonProblem::NotJson => "is not valid JSON after base64url decoding",
            JsonProblem::NotObject => "must decode to a JSON object",
            JsonProblem::DuplicateKey => "holds a JSON key twice in one object",
            JsonProblem::TooDeep => "nests JSON deeper than 16 levels",
        }
    }
}

const DUPLICATE: &str = "duplicate key";
const TOO_DEEP: &str = "too deep";

/// Parses `bytes` as one JSON object under the rules above.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Value, JsonProblem> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Strict { depth: 0 }
        .deserialize(&mut deserializer)
        // serde_json's message quotes the input: classify it by our own markers only.
        .map_err(|e| match e.to_string() {
            m if m.starts_with(DUPLICATE) => JsonProblem::DuplicateKey,
            m if m.starts_with(TOO_DEEP) => JsonProblem::TooDeep,
            m if m.starts_with("recursion limit exceeded") => JsonProblem::TooDeep,
            _ => JsonProblem::NotJson,
        })?;
    deserializer.end().map_err(|_| JsonProblem::NotJson)?;
    if !value.is_object() {
        return Err(JsonProblem::NotObject);
    }
    Ok(value)
}

/// A JSON value at `depth` (the top-level value is depth 0).
#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
}

impl Strict {
    /// The seed for this container's members; refused when the container itself is too deep.
    fn child<E: de::Error>(self) -> Result<Strict, E> {
        if self.depth >= MAX_REQUEST_DEPTH {
            return Err(E::custom(TOO_DEEP));
        }
        Ok(Strict {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = self.child()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(child)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let child = self.child()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE));
            }
            let value = map.next_value_seed(child)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_parses_to_the_same_value_serde_json_gives() {
        // GIVEN a request with every JSON kind WHEN parsed THEN it equals serde_json's reading
        let text = br#"{"amount":"1","n":4217,"neg":-1,"f":1.5,"t":true,"z":null,"a":[1,{"b":[]}],"s":"\u00e9\n"}"#;
        let expected: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(parse_object(text), Ok(expected));
        assert_eq!(
            parse_object(b"{\"chainId\":4217}"),
            Ok(json!({"chainId": 4217}))
        );
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        // GIVEN the same key twice at the top and inside methodDetails WHEN parsed THEN refused
        for text in [
            &br#"{"amount":"1","amount":"1000000"}"#[..],
            br#"{"methodDetails":{"feePayer":true,"feePayer":false}}"#,
            br#"{"a":[{"k":1,"k":1}]}"#,
        ] {
            assert_eq!(parse_object(text), Err(JsonProblem::DuplicateKey));
        }
    }

    #[test]
    fn keys_that_differ_only_after_unescaping_are_the_same_key() {
        // GIVEN "amount" and "amo\u0075nt" WHEN parsed THEN they collide
        assert_eq!(
            parse_object(br#"{"amount":"1","amo\u0075nt":"2"}"#),
            Err(JsonProblem::DuplicateKey)
        );
    }

    #[test]
    fn non_objects_trailing_text_and_garbage_are_refused() {
        // GIVEN arrays, strings, trailing text, and non-JSON WHEN parsed THEN each refused
        assert_eq!(parse_object(b"[1]"), Err(JsonProblem::NotObject));
        assert_eq!(parse_object(b"\"x\""), Err(JsonProblem::NotObject));
        assert_eq!(parse_object(b"{} {}"), Err(JsonProblem::NotJson));
        assert_eq!(parse_object(b"{\"a\":QZX}"), Err(JsonProblem::NotJson));
        assert_eq!(parse_object(b""), Err(JsonProblem::NotJson));
        assert_eq!(parse_object(b"\xff\xfe"), Err(JsonProblem::NotJson));
    }

    #[test]
    fn nesting_is_bounded() {
        // GIVEN 15 nested arrays in an object (16 levels) and one more WHEN parsed
        let ok = format!("{{\"a\":{}{}}}", "[".repeat(15), "]".repeat(15));
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(16), "]".repeat(16));
        let very_deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        // THEN only the first passes, and depth never overflows the stack
        assert!(parse_object(ok.as_bytes()).is_ok());
        assert_eq!(parse_object(deep.as_bytes()), Err(JsonProblem::TooDeep));
        assert_eq!(
            parse_object(very_deep.as_bytes()),
            Err(JsonProblem::TooDeep)
        );
    }
}
