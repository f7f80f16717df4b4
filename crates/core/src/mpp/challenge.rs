//! The `Payment` challenge (mpp-specs `specs/core/draft-httpauth-payment-00.md`, "Challenge"):
//! required auth-params `id`, `realm`, `method`, `intent`, `request`; optional `expires`,
//! `digest`, `description`, `opaque`; unknown ones ignored, as the spec requires of clients.
//!
//! `request` is base64url without padding (the spec: padding "MUST NOT be included") of a JSON
//! object, read strictly (see `json.rs`). `expires` is an RFC 3339 date-time, kept as epoch
//! seconds rounded down, so a challenge is never taken to live longer than it says.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use super::auth_params::{parse_challenge_list, RawChallenge, HEADER};
use super::json::parse_object;
use super::{MppError, MAX_REQUEST_JSON_BYTES};

/// The longest `id` kept: AgentCore echoes it as `selectedPaymentId`.
pub const MAX_ID_BYTES: usize = 256;
/// The longest `realm` kept.
pub const MAX_REALM_BYTES: usize = 256;
/// The longest `method` or `intent` name.
pub const MAX_NAME_BYTES: usize = 32;

/// One `Payment` challenge, its parameters checked and its `request` decoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Challenge {
    /// The challenge id the credential echoes: 1 to 256 visible ASCII characters.
    pub id: String,
    /// The protection space, 1 to 256 bytes. Merchant text: never a basis for host rules.
    pub realm: String,
    /// The payment method: 1 to 32 lowercase ASCII letters (`tempo`, `evm`, `solana`).
    pub method: String,
    /// The intent: 1 to 32 ASCII letters, digits or `-` (`charge`, `session`).
    pub intent: String,
    /// The decoded `request`: a JSON object, no key twice.
    pub request: Value,
    /// When the challenge expires, epoch seconds (exclusive), if it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// The request-body digest (RFC 9530) the credential must be sent with, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Display text; the spec forbids relying on it for verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Server correlation data the credential returns unchanged, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opaque: Option<String>,
}

/// One challenge of a header listing several: its exact text and its reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedChallenge {
    /// The challenge as written in the header, from `Payment` to its last parameter: the value
    /// to hand ProcessPayment (and to judge with [`parse_challenge`]).
    pub text: String,
    /// The challenge, or why it was refused (fields prefixed by `challenges[i].`).
    pub challenge: Result<Challenge, MppError>,
}

/// Reads the value ProcessPayment signs: exactly one `Payment` challenge and nothing else, so
/// what predebit judges is all the signer can pay.
pub fn parse_challenge(value: &str) -> Result<Challenge, MppError> {
    let mut list = parse_challenge_list(value)?;
    if list.len() != 1 {
        return Err(MppError::invalid(
            HEADER,
            "must hold exactly one challenge (the one to pay)",
        ));
    }
    let raw = list.remove(0);
    if !raw.is_payment() {
        return Err(MppError::invalid(HEADER, "must be a Payment challenge"));
    }
    Challenge::from_raw(&raw)
}

/// Reads a whole `WWW-Authenticate` value and returns its `Payment` challenges in order, each
/// read on its own so that one malformed offer does not hide the others. Other schemes are
/// skipped. The header's syntax, and at least one `Payment` challenge, are required.
pub fn parse_challenges(header: &str) -> Result<Vec<OfferedChallenge>, MppError> {
    let list = parse_challenge_list(header)?;
    let offered: Vec<OfferedChallenge> = list
        .iter()
        .enumerate()
        .filter(|(_, raw)| raw.is_payment())
        .map(|(i, raw)| OfferedChallenge {
            text: header.get(raw.span.clone()).unwrap_or_default().to_string(),
            challenge: Challenge::from_raw(raw).map_err(|e| e.within(&format!("challenges[{i}]"))),
        })
        .collect();
    if offered.is_empty() {
        return Err(MppError::invalid(HEADER, "holds no Payment challenge"));
    }
    Ok(offered)
}

/// The auth-params the specification defines; any other is ignored.
pub(super) const KNOWN: [&str; 9] = [
    "id",
    "realm",
    "method",
    "intent",
    "request",
    "expires",
    "digest",
    "description",
    "opaque",
];

impl Challenge {
    fn from_raw(raw: &RawChallenge) -> Result<Challenge, MppError> {
        if raw.token68 {
            return Err(MppError::invalid(
                HEADER,
                "a Payment challenge carries auth-params, not a token68",
            ));
        }
        let params = Params::collect(raw)?;
        let id = params.required("id")?;
        let visible = id.bytes().all(|b| b.is_ascii_graphic());
        if id.len() > MAX_ID_BYTES || !visible {
            return Err(MppError::invalid(
                "id",
                "must be 1 to 256 visible ASCII characters",
            ));
        }
        let realm = params.required("realm")?;
        if realm.len() > MAX_REALM_BYTES {
            return Err(MppError::invalid("realm", "exceeds 256 bytes"));
        }
        let method = params.required("method")?;
        if method.len() > MAX_NAME_BYTES || !method.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(MppError::invalid(
                "method",
                "must be 1 to 32 lowercase ASCII letters",
            ));
        }
        let intent = params.required("intent")?;
        let plain = intent
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if intent.len() > MAX_NAME_BYTES || !plain {
            return Err(MppError::invalid(
                "intent",
                "must be 1 to 32 ASCII letters, digits or -",
            ));
        }
        let request = decode_request(params.required("request")?)?;
        let expires = params.optional("expires").map(parse_expires).transpose()?;
        Ok(Challenge {
            id: id.to_string(),
            realm: realm.to_string(),
            method: method.to_string(),
            intent: intent.to_string(),
            request,
            expires,
            digest: params.optional("digest").map(str::to_string),
            description: params.optional("description").map(str::to_string),
            opaque: params.optional("opaque").map(str::to_string),
        })
    }
}

/// A challenge's known parameters, each at most once.
struct Params<'a> {
    values: [Option<&'a str>; KNOWN.len()],
}

impl<'a> Params<'a> {
    fn collect(raw: &'a RawChallenge) -> Result<Params<'a>, MppError> {
        let mut values = [None; KNOWN.len()];
        for (i, (name, _)) in raw.params.iter().enumerate() {
            if raw.params[..i].iter().any(|(earlier, _)| earlier == name) {
                // RFC 9110: a parameter name occurs only once per challenge. Unknown names
                // are not repeated in the message.
                let field = KNOWN.iter().find(|k| *k == name).copied().unwrap_or(HEADER);
                return Err(MppError::invalid(
                    field,
                    "a challenge parameter appears more than once",
                ));
            }
        }
        for (name, value) in &raw.params {
            if let Some(slot) = KNOWN.iter().position(|k| k == name) {
                values[slot] = Some(value.as_str());
            }
        }
        Ok(Params { values })
    }

    fn optional(&self, name: &str) -> Option<&'a str> {
        let slot = KNOWN.iter().position(|k| *k == name)?;
        self.values[slot]
    }

    fn required(&self, name: &'static str) -> Result<&'a str, MppError> {
        match self.optional(name) {
            None => Err(MppError::invalid(name, "is required")),
            Some("") => Err(MppError::invalid(name, "must not be empty")),
            Some(value) => Ok(value),
        }
    }
}

/// Base64url without padding, decoding to one strict JSON object.
fn decode_request(encoded: &str) -> Result<Value, MppError> {
    if encoded.contains('=') {
        return Err(MppError::invalid(
            "request",
            "must be base64url without = padding",
        ));
    }
    let alphabet = encoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !alphabet {
        return Err(MppError::invalid(
            "request",
            "is not base64url (A-Z a-z 0-9 - _)",
        ));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        // The decoder's message quotes a byte and its offset: input, not kept.
        .map_err(|_| MppError::invalid("request", "is not valid base64url"))?;
    if bytes.len() > MAX_REQUEST_JSON_BYTES {
        return Err(MppError::invalid(
            "request",
            "decodes to more than 6144 bytes",
        ));
    }
    parse_object(&bytes).map_err(|p| MppError::invalid("request", p.message()))
}

/// An RFC 3339 date-time (`2025-01-15T12:05:00Z`, fraction and offset allowed) as epoch
/// seconds, rounded down.
fn parse_expires(text: &str) -> Result<u64, MppError> {
    let refuse = || {
        MppError::invalid(
            "expires",
            "must be an RFC 3339 date-time such as 2025-01-15T12:05:00Z",
        )
    };
    if !rfc3339_shape(text.as_bytes()) {
        return Err(refuse());
    }
    let timestamp: jiff::Timestamp = text.parse().map_err(|_| refuse())?;
    u64::try_from(timestamp.as_second())
        .map_err(|_| MppError::invalid("expires", "must not be before 1970"))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`, checked before a date library is
/// trusted with it (they accept more than RFC 3339: spaces, week dates, bracketed zones).
fn rfc3339_shape(s: &[u8]) -> bool {
    let digits = |range: std::ops::Range<usize>| {
        s.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, b: u8| s.get(i) == Some(&b);
    if !(digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && at(10, b'T')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        let start = i + 1;
        i = start;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start || i - start > 9 {
            return false;
        }
    }
    match s.get(i) {
        Some(b'Z') => s.len() == i + 1,
        Some(b'+' | b'-') => {
            s.len() == i + 6 && digits(i + 1..i + 3) && at(i + 3, b':') && digits(i + 4..i + 6)
        }
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// base64url (no padding) of a JSON value's text.
    pub(crate) fn b64url(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    /// A valid tempo charge request (the tempo-charge draft's example, recipient EIP-55).
    pub(crate) fn tempo_request() -> Value {
        json!({
            "amount": "1000000",
            "currency": "0x20c0000000000000000000000000000000000000",
            "recipient": "0x742d35Cc6634c0532925a3b844bC9e7595F8fE00",
            "methodDetails": {"chainId": 4217, "feePayer": true}
        })
    }

    /// A valid tempo charge challenge carrying `request`.
    pub(crate) fn header_with(request: &Value) -> String {
        format!(
            "Payment id=\"kM9xPqWvT2nJrHsY4aDfEb\", realm=\"api.example.com\", method=\"tempo\", \
             intent=\"charge\", request=\"{}\", expires=\"2025-01-06T12:00:00Z\"",
            b64url(request)
        )
    }

    fn refusal(header: &str) -> (String, &'static str) {
        match parse_challenge(header).unwrap_err() {
            MppError::Invalid { field, problem } => (field, problem),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_tempo_charge_challenge_parses_with_every_field() {
        // GIVEN a challenge with all optional params WHEN parsed THEN each is kept
        let header = format!(
            "{}, digest=\"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:\", \
             description=\"Premium \\\"data\\\"\", opaque=eyJvIjoiMSJ9",
            header_with(&tempo_request())
        );
        let challenge = parse_challenge(&header).unwrap();
        assert_eq!(
            challenge,
            Challenge {
                id: "kM9xPqWvT2nJrHsY4aDfEb".into(),
                realm: "api.example.com".into(),
                method: "tempo".into(),
                intent: "charge".into(),
                request: tempo_request(),
                expires: Some(1_736_164_800),
                digest: Some("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:".into()),
                description: Some("Premium \"data\"".into()),
                opaque: Some("eyJvIjoiMSJ9".into()),
            }
        );
    }

    #[test]
    fn the_scheme_and_parameter_names_are_case_insensitive() {
        // GIVEN PAYMENT and upper-case parameter names WHEN parsed THEN they are the same
        let header = header_with(&tempo_request())
            .replacen("Payment", "PAYMENT", 1)
            .replacen("realm=", "Realm=", 1)
            .replacen("request=", "REQUEST=", 1);
        assert_eq!(parse_challenge(&header).unwrap().realm, "api.example.com");
    }

    #[test]
    fn unknown_parameters_are_ignored_and_unquoted_tokens_accepted() {
        // GIVEN an unknown param and every value as a bare token WHEN parsed THEN it passes
        let header = format!(
            "Payment id=abc, realm=api.example.com, method=tempo, intent=charge, request={}, \
             x-future=1",
            b64url(&tempo_request())
        );
        let challenge = parse_challenge(&header).unwrap();
        assert_eq!((challenge.id.as_str(), challenge.expires), ("abc", None));
    }

    #[test]
    fn missing_and_empty_required_parameters_are_named() {
        // GIVEN a challenge missing or emptying each required param WHEN parsed THEN named
        for name in ["id", "realm", "method", "intent", "request"] {
            let header = header_with(&tempo_request());
            let params: Vec<&str> = header["Payment ".len()..].split(", ").collect();
            let without: Vec<&str> = params
                .iter()
                .copied()
                .filter(|p| !p.starts_with(&format!("{name}=")))
                .collect();
            let missing = format!("Payment {}", without.join(", "));
            assert_eq!(refusal(&missing), (name.to_string(), "is required"));
            let empty = format!("{missing}, {name}=\"\"");
            assert_eq!(refusal(&empty), (name.to_string(), "must not be empty"));
        }
    }

    #[test]
    fn a_repeated_parameter_is_refused_known_by_name_unknown_without_it() {
        // GIVEN request twice, and an unknown param twice in different case WHEN parsed
        let header = header_with(&tempo_request());
        let twice = format!("{header}, request=\"{}\"", b64url(&json!({"amount": "1"})));
        let unknown = format!("{header}, QZXecho=1, qzxecho=2");
        // THEN both are refused, and the unknown name is not repeated
        assert_eq!(
            refusal(&twice),
            (
                "request".into(),
                "a challenge parameter appears more than once"
            )
        );
        assert_eq!(
            refusal(&unknown),
            (
                HEADER.into(),
                "a challenge parameter appears more than once"
            )
        );
    }

    #[test]
    fn the_value_handed_to_the_signer_must_be_exactly_one_payment_challenge() {
        // GIVEN two Payment challenges, a Bearer one beside it, or only a Bearer one
        let one = header_with(&tempo_request());
        let cases = [
            (
                format!("{one}, {one}"),
                "must hold exactly one challenge (the one to pay)",
            ),
            (
                format!("Bearer realm=\"x\", {one}"),
                "must hold exactly one challenge (the one to pay)",
            ),
            (
                "Bearer realm=\"x\"".to_string(),
                "must be a Payment challenge",
            ),
        ];
        // THEN each is refused: the signer could pay a challenge predebit did not judge
        for (header, problem) in cases {
            assert_eq!(refusal(&header), (HEADER.into(), problem), "{header}");
        }
    }

    #[test]
    fn a_token68_payment_challenge_is_refused() {
        // GIVEN Payment followed by a token68 (and `id=` alone, which lexes as one) WHEN parsed
        for header in ["Payment eyJhIjoxfQ", "Payment id="] {
            assert_eq!(
                refusal(header),
                (
                    HEADER.into(),
                    "a Payment challenge carries auth-params, not a token68"
                )
            );
        }
    }

    #[test]
    fn request_encodings_other_than_unpadded_base64url_are_refused() {
        // GIVEN padded, standard-alphabet, truncated and non-canonical base64 WHEN parsed
        let good = b64url(&json!({"amount": "1"}));
        let standard = base64::engine::general_purpose::STANDARD_NO_PAD.encode(r#"{"a":"??>"}"#);
        let cases = [
            (format!("{good}=="), "must be base64url without = padding"),
            (standard, "is not base64url (A-Z a-z 0-9 - _)"),
            ("eyJhIjoxfQx".to_string(), "is not valid base64url"),
            ("eyJhIjoxfR".to_string(), "is not valid base64url"),
            ("W10".to_string(), "must decode to a JSON object"),
            (
                "eyJhIjox".to_string(),
                "is not valid JSON after base64url decoding",
            ),
            (b64url(&json!("x")), "must decode to a JSON object"),
        ];
        for (request, problem) in cases {
            let header = header_with(&json!({})).replacen(
                &format!("request=\"{}\"", b64url(&json!({}))),
                &format!("request=\"{request}\""),
                1,
            );
            assert_eq!(refusal(&header), ("request".into(), problem), "{request}");
        }
    }

    #[test]
    fn a_request_with_a_repeated_key_is_refused() {
        // GIVEN amount twice in the decoded request WHEN parsed THEN refused on request
        let text = r#"{"amount":"1","amount":"1000000"}"#;
        let header =
            header_with(&json!({})).replacen(&b64url(&json!({})), &URL_SAFE_NO_PAD.encode(text), 1);
        assert_eq!(
            refusal(&header),
            ("request".into(), "holds a JSON key twice in one object")
        );
    }

    #[test]
    fn method_intent_and_id_syntax_is_enforced() {
        // GIVEN names outside the spec's grammar WHEN parsed THEN refused naming each
        let header = header_with(&tempo_request());
        let cases = [
            ("method=\"tempo\"", "method=\"Tempo\"", "method"),
            ("method=\"tempo\"", "method=\"tempo2\"", "method"),
            ("intent=\"charge\"", "intent=\"char ge\"", "intent"),
            (
                "intent=\"charge\"",
                &format!("intent=\"{}\"", "c".repeat(33)),
                "intent",
            ),
            ("id=\"kM9xPqWvT2nJrHsY4aDfEb\"", "id=\"a b\"", "id"),
            (
                "id=\"kM9xPqWvT2nJrHsY4aDfEb\"",
                &format!("id=\"{}\"", "i".repeat(257)),
                "id",
            ),
            (
                "realm=\"api.example.com\"",
                &format!("realm=\"{}\"", "r".repeat(257)),
                "realm",
            ),
        ];
        for (from, to, field) in cases {
            let bad = header.replacen(from, to, 1);
            assert_eq!(refusal(&bad).0, field, "{to}");
        }
    }

    #[test]
    fn expires_is_strict_rfc_3339_rounded_down_to_seconds() {
        // GIVEN RFC 3339 forms WHEN parsed THEN epoch seconds, fractions dropped
        let read = |expires: &str| {
            let header = header_with(&tempo_request()).replacen("2025-01-06T12:00:00Z", expires, 1);
            parse_challenge(&header).map(|c| c.expires)
        };
        assert_eq!(read("2025-01-06T12:00:00Z"), Ok(Some(1_736_164_800)));
        assert_eq!(read("2025-01-06T12:00:00.999Z"), Ok(Some(1_736_164_800)));
        assert_eq!(read("2025-01-06T13:00:00+01:00"), Ok(Some(1_736_164_800)));
        // AND anything else is refused on expires
        for bad in [
            "2025-01-06 12:00:00Z",
            "2025-01-06T12:00:00",
            "2025-01-06T12:00Z",
            "2025-01-06t12:00:00z",
            "2025-13-06T12:00:00Z",
            "2025-02-30T12:00:00Z",
            "2025-01-06T12:00:00.Z",
            "2025-01-06T12:00:00.1234567890Z",
            "2025-01-06T12:00:00+0100",
            "1736164800",
            "tomorrow",
        ] {
            assert_eq!(read(bad).unwrap_err().field(), "expires", "{bad}");
        }
        assert_eq!(
            read("1969-12-31T23:59:59Z"),
            Err(MppError::invalid("expires", "must not be before 1970"))
        );
    }

    #[test]
    fn a_list_reads_each_payment_challenge_on_its_own_with_its_exact_text() {
        // GIVEN Bearer, a good challenge, a broken one and a session one
        let good = header_with(&tempo_request());
        let broken =
            "Payment id=\"b\", realm=\"r\", method=\"tempo\", intent=\"charge\", request=\"!!\"";
        let session = good.replacen("intent=\"charge\"", "intent=\"session\"", 1);
        let header = format!("Bearer realm=\"x\", {good},{broken} , {session}");
        // WHEN listed
        let offered = parse_challenges(&header).unwrap();
        // THEN the three Payment ones come back in order with their text; only the broken fails
        assert_eq!(offered.len(), 3);
        assert_eq!(offered[0].text, good);
        assert_eq!(offered[1].text, broken);
        assert_eq!(offered[2].text, session);
        assert_eq!(offered[0].challenge, parse_challenge(&good));
        assert_eq!(
            offered[1].challenge,
            Err(MppError::invalid(
                "challenges[2].request",
                "is not base64url (A-Z a-z 0-9 - _)"
            ))
        );
        assert_eq!(offered[2].challenge.as_ref().unwrap().intent, "session");
    }

    #[test]
    fn a_list_without_payment_challenges_is_refused() {
        // GIVEN only Bearer WHEN listed THEN refused on the header
        assert_eq!(
            parse_challenges("Bearer realm=\"x\"").unwrap_err(),
            MppError::invalid(HEADER, "holds no Payment challenge")
        );
    }
}
