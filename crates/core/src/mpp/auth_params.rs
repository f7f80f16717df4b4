//! The RFC 9110 challenge list of a `WWW-Authenticate` value (section 11): each challenge is an
//! auth-scheme with either a token68 or comma-separated `name=value` auth-params, where a value
//! is a token or a quoted-string with quoted-pair escapes.
//!
//! The lexer works on bytes, never panics, and refuses anything outside the grammar: a control
//! character anywhere (HTAB aside), an unterminated quoted-string, a missing comma, a parameter
//! before any scheme. Non-ASCII text is allowed only inside quoted-strings (RFC 9110 obs-text).

use super::{
    MppError, MAX_CHALLENGES, MAX_HEADER_BYTES, MAX_PARAMS_PER_CHALLENGE, MAX_PARAM_VALUE_BYTES,
};

/// The field named in every syntax refusal: the header as a whole.
pub(crate) const HEADER: &str = "WWW-Authenticate";

/// One challenge as written: its scheme and its parameters, names lowercased, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawChallenge {
    /// The auth-scheme as written (compare case-insensitively).
    pub scheme: String,
    /// Whether the challenge carries a token68 instead of auth-params.
    pub token68: bool,
    /// `(lowercased name, unescaped value)` pairs, duplicates kept for the caller to refuse.
    pub params: Vec<(String, String)>,
    /// Where the challenge is written in the header: from its scheme to its last byte.
    pub span: std::ops::Range<usize>,
}

impl RawChallenge {
    /// Whether this is a `Payment` challenge (auth-schemes are case-insensitive).
    pub fn is_payment(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Payment")
    }
}

/// Splits a `WWW-Authenticate` value into its challenges, in order.
pub(crate) fn parse_challenge_list(header: &str) -> Result<Vec<RawChallenge>, MppError> {
    if header.len() > MAX_HEADER_BYTES {
        return Err(syntax("exceeds the size limit of 16384 bytes"));
    }
    let mut lexer = Lexer {
        bytes: header.as_bytes(),
        at: 0,
    };
    let mut challenges: Vec<RawChallenge> = Vec::new();
    loop {
        lexer.skip_list_separators();
        if lexer.at_end() {
            break;
        }
        let element_start = lexer.at;
        let name = lexer
            .token()
            .ok_or_else(|| syntax("is not a list of RFC 9110 challenges"))?;
        let spaced = lexer.skip_whitespace();
        if lexer.peek() == Some(b'=') {
            // `name = value`: a further auth-param of the current challenge.
            let current = challenges
                .last_mut()
                .ok_or_else(|| syntax("holds a parameter before any auth-scheme"))?;
            if current.token68 {
                return Err(syntax("holds a parameter after a token68"));
            }
            if current.params.is_empty() {
                // RFC 9110: a scheme's parameters follow it after a space, not after a comma.
                return Err(syntax(
                    "holds a parameter separated from its auth-scheme by a comma",
                ));
            }
            lexer.at += 1;
            lexer.skip_whitespace();
            let value = lexer.value()?;
            push_param(current, name, value)?;
            current.span.end = lexer.at;
            lexer.end_of_element()?;
            continue;
        }
        // A new challenge: `scheme`, `scheme token68` or `scheme name=value`.
        if challenges.len() == MAX_CHALLENGES {
            return Err(syntax("holds more than 8 challenges"));
        }
        let mut challenge = RawChallenge {
            scheme: name.to_string(),
            token68: false,
            params: Vec::new(),
            span: element_start..element_start + name.len(),
        };
        if !(lexer.at_end() || lexer.peek() == Some(b',')) {
            if !spaced {
                return Err(syntax("is not a list of RFC 9110 challenges"));
            }
            match lexer.first_param()? {
                Some((param, value)) => push_param(&mut challenge, param, value)?,
                None => challenge.token68 = true,
            }
            challenge.span.end = lexer.at;
            lexer.end_of_element()?;
        }
        challenges.push(challenge);
    }
    if challenges.is_empty() {
        return Err(syntax("holds no challenge"));
    }
    Ok(challenges)
}

fn push_param(challenge: &mut RawChallenge, name: &str, value: String) -> Result<(), MppError> {
    if challenge.params.len() == MAX_PARAMS_PER_CHALLENGE {
        return Err(syntax("a challenge holds more than 16 parameters"));
    }
    challenge.params.push((name.to_ascii_lowercase(), value));
    Ok(())
}

fn syntax(problem: &'static str) -> MppError {
    MppError::invalid(HEADER, problem)
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 `token68` characters, before its trailing `=` padding.
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Lexer<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Lexer<'a> {
    fn at_end(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Skips SP and HTAB; returns whether any was skipped.
    fn skip_whitespace(&mut self) -> bool {
        let start = self.at;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
        self.at > start
    }

    /// Skips whitespace and commas: the list rule allows empty elements (`a, , b`).
    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.at += 1;
        }
    }

    /// A token (1*tchar), as text; None when the next byte is not a tchar.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        // tchars are ASCII, so the slice is valid UTF-8; `get` keeps this panic-free anyway.
        let bytes = self.bytes.get(start..self.at)?;
        let text = std::str::from_utf8(bytes).ok()?;
        (!text.is_empty()).then_some(text)
    }

    /// After an element: optional whitespace, then a comma or the end.
    fn end_of_element(&mut self) -> Result<(), MppError> {
        self.skip_whitespace();
        match self.peek() {
            None | Some(b',') => Ok(()),
            Some(b) if is_control(b) => Err(syntax("holds a control character")),
            Some(_) => Err(syntax(
                "is not a list of RFC 9110 challenges (a comma is missing between parameters)",
            )),
        }
    }

    /// The first element after a scheme: an auth-param (Some) or a token68 (None).
    fn first_param(&mut self) -> Result<Option<(&'a str, String)>, MppError> {
        let start = self.at;
        if let Some(name) = self.token() {
            self.skip_whitespace();
            if self.peek() == Some(b'=') {
                self.at += 1;
                self.skip_whitespace();
                if self.peek().is_some_and(|b| b == b'"' || is_tchar(b)) {
                    return Ok(Some((name, self.value()?)));
                }
            }
        }
        // Not `name=value`: it must be a token68 (`1*char *"="`) ending the element.
        self.at = start;
        let mut chars = 0usize;
        while self.peek().is_some_and(is_token68_char) {
            self.at += 1;
            chars += 1;
        }
        while self.peek() == Some(b'=') {
            self.at += 1;
        }
        if chars == 0 {
            return Err(match self.peek() {
                Some(b) if is_control(b) => syntax("holds a control character"),
                _ => syntax("is not a list of RFC 9110 challenges"),
            });
        }
        Ok(None)
    }

    /// A parameter value: a token or a quoted-string, unescaped.
    fn value(&mut self) -> Result<String, MppError> {
        if self.peek() == Some(b'"') {
            self.at += 1;
            return self.quoted_string();
        }
        match self.token() {
            Some(token) if token.len() > MAX_PARAM_VALUE_BYTES => Err(too_long()),
            Some(token) => Ok(token.to_string()),
            None => Err(match self.peek() {
                None => syntax("ends where a parameter value is expected"),
                Some(b) if is_control(b) => syntax("holds a control character"),
                Some(_) => {
                    syntax("holds a parameter value that is neither a token nor a quoted-string")
                }
            }),
        }
    }

    /// The rest of a quoted-string after its opening quote, with quoted-pairs unescaped.
    fn quoted_string(&mut self) -> Result<String, MppError> {
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(syntax("holds an unterminated quoted-string"));
            };
            self.at += 1;
            let byte = match b {
                b'"' => break,
                b'\\' => match self.peek() {
                    None => return Err(syntax("holds an unterminated quoted-string")),
                    Some(escaped) if is_control(escaped) => {
                        return Err(syntax("holds a control character"))
                    }
                    Some(escaped) => {
                        self.at += 1;
                        escaped
                    }
                },
                b if is_control(b) => return Err(syntax("holds a control character")),
                b => b,
            };
            if out.len() == MAX_PARAM_VALUE_BYTES {
                return Err(too_long());
            }
            out.push(byte);
        }
        // Only ASCII bytes were removed, at ASCII positions, so the text stays UTF-8.
        String::from_utf8(out).map_err(|_| syntax("holds a quoted-string that is not UTF-8"))
    }
}

/// Control characters RFC 9110 allows nowhere in a field value (HTAB is whitespace).
fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

fn too_long() -> MppError {
    syntax("holds a parameter value over the size limit of 8192 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(header: &str) -> Vec<(String, Vec<(String, String)>)> {
        parse_challenge_list(header)
            .unwrap()
            .into_iter()
            .map(|c| (c.scheme, c.params))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn problem(header: &str) -> String {
        match parse_challenge_list(header).unwrap_err() {
            MppError::Invalid { field, problem } => {
                assert_eq!(field, HEADER);
                problem.to_string()
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn tokens_and_quoted_strings_are_both_values() {
        // GIVEN one challenge mixing token and quoted values, BWS around "=" WHEN lexed
        // THEN names are lowercased and values unquoted
        assert_eq!(
            params(r#"Payment ID="a b", method = tempo,intent="charge""#),
            vec![(
                "Payment".to_string(),
                pairs(&[("id", "a b"), ("method", "tempo"), ("intent", "charge")])
            )]
        );
    }

    #[test]
    fn quoted_pairs_are_unescaped() {
        // GIVEN a quoted-string with \" and \\ and \x WHEN lexed THEN the escapes are removed
        assert_eq!(
            params(r#"Payment description="say \"hi\" \\ \x""#)[0].1,
            pairs(&[("description", r#"say "hi" \ x"#)])
        );
    }

    #[test]
    fn commas_inside_quotes_do_not_split() {
        // GIVEN a comma and a scheme-like word inside a quoted value WHEN lexed THEN one param
        assert_eq!(
            params(r#"Payment description="a, Bearer b=c""#)[0].1,
            pairs(&[("description", "a, Bearer b=c")])
        );
    }

    #[test]
    fn several_challenges_are_split_at_their_schemes() {
        // GIVEN Bearer, Basic with token68, a bare scheme and two Payment challenges
        let list = parse_challenge_list(
            r#"Bearer realm="x", error=invalid_token, Basic dXNlcjpwdw==, Negotiate, Payment id="1", Payment id=2"#,
        )
        .unwrap();
        // THEN each challenge keeps only its own parameters
        let schemes: Vec<&str> = list.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(
            schemes,
            ["Bearer", "Basic", "Negotiate", "Payment", "Payment"]
        );
        assert_eq!(
            list[0].params,
            pairs(&[("realm", "x"), ("error", "invalid_token")])
        );
        assert!(list[1].token68 && list[1].params.is_empty());
        assert!(!list[2].token68 && list[2].params.is_empty());
        assert_eq!(list[4].params, pairs(&[("id", "2")]));
        assert!(list[3].is_payment() && !list[0].is_payment());
    }

    #[test]
    fn empty_list_elements_are_skipped() {
        // GIVEN leading, doubled and trailing commas WHEN lexed THEN they are ignored
        assert_eq!(
            params(", ,Payment id=1, ,method=tempo ,"),
            vec![(
                "Payment".to_string(),
                pairs(&[("id", "1"), ("method", "tempo")])
            )]
        );
    }

    #[test]
    fn non_ascii_is_allowed_only_inside_quotes() {
        // GIVEN UTF-8 text in a quoted value, and outside any quotes WHEN lexed
        assert_eq!(
            params("Payment description=\"café 💥\"")[0].1,
            pairs(&[("description", "café 💥")])
        );
        // THEN the second is refused
        assert!(parse_challenge_list("Payment description=café").is_err());
        assert!(parse_challenge_list("Paymént id=1").is_err());
    }

    #[test]
    fn malformed_lists_are_refused_with_their_problem() {
        // GIVEN hostile syntax WHEN lexed THEN each is refused on the header, naming the problem
        let cases: &[(&str, &str)] = &[
            ("", "holds no challenge"),
            (" , ", "holds no challenge"),
            (r#"Payment id="abc"#, "holds an unterminated quoted-string"),
            (r#"Payment id="abc\"#, "holds an unterminated quoted-string"),
            ("Payment id=\"a\nb\"", "holds a control character"),
            ("Payment id=\"a\u{0}b\"", "holds a control character"),
            ("Payment id=\"a\\\u{7f}\"", "holds a control character"),
            ("Payment id=a\r\n", "holds a control character"),
            (
                r#"Payment id="a" realm="b""#,
                "is not a list of RFC 9110 challenges (a comma is missing between parameters)",
            ),
            (
                r#"id="a", Payment realm="b""#,
                "holds a parameter before any auth-scheme",
            ),
            (
                "Payment a=1, id=",
                "ends where a parameter value is expected",
            ),
            (
                "Payment a=1, id=,",
                "holds a parameter value that is neither a token nor a quoted-string",
            ),
            (
                "Payment a=1, id=(x)",
                "holds a parameter value that is neither a token nor a quoted-string",
            ),
            (
                "Payment id=(x)",
                "is not a list of RFC 9110 challenges (a comma is missing between parameters)",
            ),
            ("Basic abc==, x=1", "holds a parameter after a token68"),
            (
                "Payment, id=1",
                "holds a parameter separated from its auth-scheme by a comma",
            ),
            (
                "Negotiate, id=1",
                "holds a parameter separated from its auth-scheme by a comma",
            ),
            ("Payment\"x\"", "is not a list of RFC 9110 challenges"),
            ("\"Payment\"", "is not a list of RFC 9110 challenges"),
        ];
        for (header, expected) in cases {
            assert_eq!(problem(header), *expected, "{header:?}");
        }
    }

    #[test]
    fn bounds_are_enforced_before_anything_is_kept() {
        // GIVEN a header over 16 KiB, 9 challenges, 17 params, a value over 8 KiB
        let big = format!("Payment id=\"{}\"", "a".repeat(MAX_HEADER_BYTES));
        let nine = ["Payment id=1"; 9].join(", ");
        let seventeen = format!(
            "Payment {}",
            (0..17)
                .map(|i| format!("p{i}=1"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let long_value = format!("Payment id=\"{}\"", "a".repeat(MAX_PARAM_VALUE_BYTES + 1));
        let long_token = format!("Payment id={}", "a".repeat(MAX_PARAM_VALUE_BYTES + 1));
        // THEN each is refused, and exactly the limits pass
        assert_eq!(problem(&big), "exceeds the size limit of 16384 bytes");
        assert_eq!(problem(&nine), "holds more than 8 challenges");
        assert_eq!(
            problem(&seventeen),
            "a challenge holds more than 16 parameters"
        );
        for header in [long_value, long_token] {
            assert_eq!(
                problem(&header),
                "holds a parameter value over the size limit of 8192 bytes"
            );
        }
        assert!(parse_challenge_list(&["Payment id=1"; 8].join(", ")).is_ok());
        let at_limit = format!("Payment id=\"{}\"", "a".repeat(MAX_PARAM_VALUE_BYTES));
        assert!(parse_challenge_list(&at_limit).is_ok());
    }
}
