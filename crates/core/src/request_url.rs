//! The URLs policy judges: the URL the tool requested (`requestUrl`, from the tool call) and the
//! resource a merchant declares (from the 402), parsed by the WHATWG URL standard (`url` crate:
//! IDNA to punycode, percent-decoded hosts, default ports, userinfo, IPv6 literals).
//!
//! Host rules are judged on the requested URL only; the declared resource is only compared with
//! it by origin. A URL that different HTTP clients could read with different hosts is refused
//! rather than guessed at: a backslash (WHATWG reads it as `/`, RFC 3986 clients as data),
//! whitespace or control characters (WHATWG strips them), and anything but `http://` or
//! `https://` followed by an authority (WHATWG accepts `https:host` and `https:///host`).
//!
//! URL rules (`allowedUrls`, `blockedUrls`, [`crate::policy`]) also judge the requested URL's
//! path, so it is kept too, once, as the segments servers are expected to read: after WHATWG
//! parsing (which resolves `.` and `..` segments, `%2e` spellings included, and decodes nothing),
//! every segment is percent-decoded (`/v1/%61bc` is `v1`, `abc`). A path different servers could
//! read as different segments is kept as *not judgeable* instead ([`HttpUrl::path_segments`] is
//! `None`): a decoded segment that holds `/` or `\` (`%2F`, `%5C`), is `.` or `..`, holds a `;`
//! (path parameters, which some servers strip: `/v1/..;/admin`), a `%` (a second round of
//! decoding: `%252e`) or a control character, or is not UTF-8; or an empty segment (`//a`,
//! `/a//b`) other than one trailing slash. URL rules fail closed on such a path.

use percent_encoding::percent_decode_str;
use url::{Host, Url};

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why a text is not an http(s) URL predebit can judge. Messages never quote the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    /// Longer than [`MAX_URL_LEN`].
    #[error("is longer than 2048 characters")]
    TooLong,
    /// Contains a character HTTP clients read differently (backslash, whitespace, control).
    #[error("contains a backslash, whitespace or a control character")]
    Ambiguous,
    /// Does not start with `http://` or `https://` and an authority.
    #[error("must be an absolute http:// or https:// URL")]
    NotHttp,
    /// The WHATWG parser refuses it (bad port, bad host, ...).
    #[error("is not a valid URL")]
    Unparseable,
    /// No host remains (empty, or only dots).
    #[error("has no host")]
    NoHost,
}

/// An absolute http(s) URL, reduced to what policy judges: its origin, and its path as decoded
/// segments (or not judgeable). Two `HttpUrl`s are equal when their origins are: the path is
/// what URL rules judge, not part of the URL's identity here.
#[derive(Debug, Clone)]
pub struct HttpUrl {
    scheme: &'static str,
    host: String,
    port: u16,
    /// `None`: a path URL rules cannot judge (see the module documentation).
    path: Option<Vec<String>>,
}

impl PartialEq for HttpUrl {
    fn eq(&self, other: &Self) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port == other.port
    }
}

impl Eq for HttpUrl {}

impl HttpUrl {
    /// Parses `text` strictly (see the module documentation).
    pub fn parse(text: &str) -> Result<Self, UrlProblem> {
        if text.len() > MAX_URL_LEN {
            return Err(UrlProblem::TooLong);
        }
        if text
            .bytes()
            .any(|b| b == b'\\' || b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(UrlProblem::Ambiguous);
        }
        let lower_prefix = |p: &str| {
            text.len() > p.len() && text.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
        };
        let rest = if lower_prefix("https://") {
            &text[8..]
        } else if lower_prefix("http://") {
            &text[7..]
        } else {
            return Err(UrlProblem::NotHttp);
        };
        if rest.starts_with(['/', '?', '#']) {
            return Err(UrlProblem::NotHttp);
        }
        let url = Url::parse(text).map_err(|_| UrlProblem::Unparseable)?;
        let scheme = match url.scheme() {
            "https" => "https",
            "http" => "http",
            _ => return Err(UrlProblem::NotHttp),
        };
        let host = match url.host() {
            Some(Host::Domain(domain)) => normalize_host(domain),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => format!("[{ip}]"),
            None => String::new(),
        };
        if host.is_empty() {
            return Err(UrlProblem::NoHost);
        }
        let port = url.port_or_known_default().ok_or(UrlProblem::Unparseable)?;
        let path = path_segments(url.path());
        Ok(Self {
            scheme,
            host,
            port,
            path,
        })
    }

    /// `"https"` or `"http"`.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// The host, normalized: ASCII (punycode), lowercase, no trailing dots; IPv6 in brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, the scheme's default (443, 80) filled in.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path's segments, percent-decoded, without the trailing slash's empty segment (`/` is
    /// no segment, `/v1/` and `/v1` are `v1`); `None` when the path is not judgeable (see the
    /// module documentation).
    pub fn path_segments(&self) -> Option<&[String]> {
        self.path.as_deref()
    }

    /// Whether both URLs have the same origin: scheme, host and port (default ports filled in).
    pub fn same_origin(&self, other: &HttpUrl) -> bool {
        self == other
    }
}

/// The segments of an absolute path (`/a/b/`), each percent-decoded, or `None` when servers
/// could read it as other segments (see the module documentation). One trailing slash is
/// dropped; any other empty segment makes the path not judgeable.
pub fn path_segments(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return Some(Vec::new());
    }
    // `//` becomes one empty segment here, and is refused below.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    rest.split('/')
        .map(|segment| {
            let decoded = percent_decode_str(segment).decode_utf8().ok()?;
            let ambiguous = decoded.is_empty()
                || decoded == "."
                || decoded == ".."
                || decoded.contains(['/', '\\', ';', '%'])
                || decoded.chars().any(char::is_control);
            (!ambiguous).then(|| decoded.into_owned())
        })
        .collect()
}

/// The comparison form of a DNS name: lowercase, every trailing dot removed (`a.com..` is
/// `a.com`), so allow- and deny-lists match one spelling.
pub fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// A policy host pattern (`name` or `*.name`) in the form hosts are compared in: IDNA to
/// punycode, lowercase, no trailing dots. `None` when it is not a DNS name or IP literal.
pub fn normalize_host_pattern(pattern: &str) -> Option<String> {
    let (wildcard, name) = match pattern.strip_prefix("*.") {
        Some(name) => (true, name),
        None => (false, pattern),
    };
    if name.is_empty() || name.contains(['*', '%']) {
        return None;
    }
    let normalized = match Host::parse(name).ok()? {
        Host::Domain(domain) => normalize_host(&domain),
        Host::Ipv4(_) | Host::Ipv6(_) if wildcard => return None,
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => format!("[{ip}]"),
    };
    let labels_ok = normalized.starts_with('[')
        || normalized.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    (labels_ok && !normalized.is_empty()).then(|| {
        if wildcard {
            format!("*.{normalized}")
        } else {
            normalized
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn host(text: &str) -> Result<String, UrlProblem> {
        HttpUrl::parse(text).map(|u| u.host().to_string())
    }

    #[test]
    fn hosts_are_read_as_browsers_read_them_and_normalized_once() {
        // GIVEN URLs with tricks a hand-written parser gets wrong WHEN parsed THEN the host is
        // the one the request goes to, in one spelling
        for (url, expected) in [
            (
                "https://API.Example.com:8443/premium?x=1",
                "api.example.com",
            ),
            ("https://pay.scam.example.../x", "pay.scam.example"),
            ("https://pay.scam.example./x", "pay.scam.example"),
            ("https://pay%2Escam.example/x", "pay.scam.example"),
            ("https://PAY.SCAM.EXAMPLE/", "pay.scam.example"),
            ("https://good.example@pay.scam.example/", "pay.scam.example"),
            (
                "https://good.example:pw@pay.scam.example/",
                "pay.scam.example",
            ),
            ("https://pay.scam.example#@good.example", "pay.scam.example"),
            ("https://pay.scam.example?@good.example", "pay.scam.example"),
            ("https://bücher.example/", "xn--bcher-kva.example"),
            ("https://xn--bcher-kva.example/", "xn--bcher-kva.example"),
            ("http://[::1]:8080/x", "[::1]"),
            ("http://[0:0:0:0:0:0:0:1]/x", "[::1]"),
            ("http://127.0.0.1:3001/x", "127.0.0.1"),
            ("http://user:pw@localhost:3001/protected-route", "localhost"),
        ] {
            assert_eq!(host(url), Ok(expected.to_string()), "{url}");
        }
    }

    #[test]
    fn ambiguous_or_foreign_urls_are_refused_with_the_problem() {
        // GIVEN URLs HTTP clients disagree on, or that are not http(s) WHEN parsed THEN refused
        for (url, problem) in [
            (
                "https://good.example\\@pay.scam.example/",
                UrlProblem::Ambiguous,
            ),
            (
                "https://good.example\\pay.scam.example/",
                UrlProblem::Ambiguous,
            ),
            ("https://good.example\t/", UrlProblem::Ambiguous),
            (" https://good.example/", UrlProblem::Ambiguous),
            ("https://exa mple.com/", UrlProblem::Ambiguous),
            ("https://pay.scam.example:443x/", UrlProblem::Unparseable),
            ("https://pay.scam.example:99999/", UrlProblem::Unparseable),
            ("https://", UrlProblem::NotHttp),
            ("https:///pay.scam.example", UrlProblem::NotHttp),
            ("https:pay.scam.example", UrlProblem::NotHttp),
            ("ftp://example.com/x", UrlProblem::NotHttp),
            ("mcp://tool/x", UrlProblem::NotHttp),
            ("example.com/x", UrlProblem::NotHttp),
            ("", UrlProblem::NotHttp),
            ("https://./x", UrlProblem::NoHost),
            ("https://.../x", UrlProblem::NoHost),
            ("https://[::1/x", UrlProblem::Unparseable),
        ] {
            assert_eq!(HttpUrl::parse(url), Err(problem), "{url}");
        }
        assert_eq!(
            HttpUrl::parse(&format!("https://a.example/{}", "x".repeat(MAX_URL_LEN))),
            Err(UrlProblem::TooLong)
        );
    }

    #[test]
    fn origins_compare_scheme_host_and_port_with_default_ports_filled_in() {
        let url = |t: &str| HttpUrl::parse(t).unwrap();
        let base = url("https://api.example.com/a");
        assert!(base.same_origin(&url("https://API.example.com:443/b?c")));
        assert!(base.same_origin(&url("https://api.example.com./")));
        assert!(!base.same_origin(&url("http://api.example.com/a")));
        assert!(!base.same_origin(&url("https://api.example.com:8443/a")));
        assert!(!base.same_origin(&url("https://other.example.com/a")));
        assert!(url("http://a.example/").same_origin(&url("http://a.example:80/")));
    }

    #[test]
    fn policy_patterns_are_normalized_like_hosts() {
        for (pattern, expected) in [
            ("API.Example.com", Some("api.example.com")),
            ("*.Example.com.", Some("*.example.com")),
            ("bücher.example", Some("xn--bcher-kva.example")),
            ("*.bücher.example", Some("*.xn--bcher-kva.example")),
            ("127.0.0.1", Some("127.0.0.1")),
            ("[::1]", Some("[::1]")),
            ("a_b.example", Some("a_b.example")),
            ("*.127.0.0.1", None),
            ("", None),
            ("*.", None),
            ("*", None),
            ("a.*.example", None),
            ("https://a.example", None),
            ("a.example/path", None),
            ("a.example:443", None),
            ("exa mple.com", None),
            ("a..example", None),
            ("pay%2Escam.example", None),
        ] {
            assert_eq!(
                normalize_host_pattern(pattern).as_deref(),
                expected,
                "{pattern:?}"
            );
        }
    }

    fn segments(text: &str) -> Option<Vec<String>> {
        HttpUrl::parse(text)
            .unwrap()
            .path_segments()
            .map(<[String]>::to_vec)
    }

    #[test]
    fn paths_are_kept_as_decoded_segments_after_dot_segments_are_resolved() {
        // GIVEN paths with dot segments, escapes and trailing slashes WHEN parsed THEN the
        // segments are those the request goes to, each decoded once
        for (url, expected) in [
            ("https://a.example", vec![]),
            ("https://a.example/", vec![]),
            ("https://a.example/?q=/v1#/v1", vec![]),
            ("https://a.example/v1", vec!["v1"]),
            ("https://a.example/v1/", vec!["v1"]),
            ("https://a.example/v1/x?y=/../z", vec!["v1", "x"]),
            ("https://a.example/v1/%61bc", vec!["v1", "abc"]),
            ("https://a.example/v1/%41bc", vec!["v1", "Abc"]),
            ("https://a.example/a/../b", vec!["b"]),
            ("https://a.example/a/./b", vec!["a", "b"]),
            ("https://a.example/a/%2e%2e/b", vec!["b"]),
            ("https://a.example/a/%2E%2e/b", vec!["b"]),
            ("https://a.example/a/.%2E/b", vec!["b"]),
            ("https://a.example/a/%2e/b", vec!["a", "b"]),
            ("https://a.example/../../b", vec!["b"]),
            ("https://a.example/caf%C3%A9/x", vec!["café", "x"]),
            ("https://a.example/café/x", vec!["café", "x"]),
            ("https://a.example/%7Euser", vec!["~user"]),
        ] {
            let expected: Vec<String> = expected.into_iter().map(String::from).collect();
            assert_eq!(segments(url), Some(expected), "{url}");
        }
    }

    #[test]
    fn paths_servers_could_read_otherwise_are_not_judgeable() {
        // GIVEN paths with encoded separators, empty segments, path parameters, a second
        // round of escapes, control characters or bytes that are not UTF-8
        for url in [
            "https://a.example//a",
            "https://a.example/a//b",
            "https://a.example/a//",
            "https://a.example//",
            "https://a.example/v1%2Fadmin",
            "https://a.example/v1%2fadmin",
            "https://a.example/v1%5Cadmin",
            "https://a.example/v1%5cadmin",
            "https://a.example/v1/..;/admin",
            "https://a.example/v1;x/admin",
            "https://a.example/v1%3Bx/admin",
            "https://a.example/v1/%252e%252e/admin",
            "https://a.example/v1/%25",
            "https://a.example/v1/%zz",
            "https://a.example/v1/%00",
            "https://a.example/v1/a%0Ab",
            "https://a.example/v1/%FF",
            "https://a.example/v1/%C3",
        ] {
            // WHEN parsed THEN the URL parses (its host is judged as before) but not its path
            assert_eq!(segments(url), None, "{url}");
            assert_eq!(host(url), Ok("a.example".to_string()), "{url}");
        }
    }

    #[test]
    fn the_path_is_not_part_of_equality_or_the_origin() {
        let a = HttpUrl::parse("https://a.example/x").unwrap();
        let b = HttpUrl::parse("https://a.example//y").unwrap();
        assert_eq!(a, b);
        assert!(a.same_origin(&b));
        assert_eq!((a.scheme(), a.port()), ("https", 443));
        let c = HttpUrl::parse("http://a.example:8080/").unwrap();
        assert_eq!((c.scheme(), c.port()), ("http", 8080));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in ".*") {
            let _ = HttpUrl::parse(&s);
            let _ = normalize_host_pattern(&s);
            let _ = path_segments(&s);
        }

        #[test]
        fn a_judgeable_path_holds_no_separator_dot_or_empty_segment(
            pieces in proptest::collection::vec(
                prop_oneof![
                    Just("v1"), Just("a"), Just(""), Just("."), Just(".."), Just("%2e"),
                    Just("%2E%2e"), Just("%2F"), Just("%5c"), Just("%25"), Just(";"),
                    Just("%3b"), Just("%61"), Just("é"), Just("%C3%A9"), Just("%FF"),
                ],
                0..6,
            ),
        ) {
            let url = format!("https://a.example/{}", pieces.join("/"));
            if let Ok(parsed) = HttpUrl::parse(&url) {
                for segment in parsed.path_segments().unwrap_or_default() {
                    prop_assert!(!segment.is_empty(), "{}", url);
                    prop_assert!(segment != "." && segment != "..", "{}", url);
                    prop_assert!(!segment.contains(['/', '\\', '%', ';']), "{}", url);
                }
            }
        }

        #[test]
        fn a_parsed_host_is_stable_under_reparsing(
            host in "[a-z][a-z0-9]{0,9}(\\.[a-z][a-z0-9]{0,9}){0,3}\\.{0,3}",
            port in proptest::option::of(1u16..),
        ) {
            let url = match port {
                Some(p) => format!("https://{host}:{p}/x"),
                None => format!("https://{host}/x"),
            };
            if let Ok(parsed) = HttpUrl::parse(&url) {
                let again = HttpUrl::parse(&format!("https://{}:{}/", parsed.host(), parsed.port));
                prop_assert_eq!(again, Ok(parsed));
            }
        }
    }
}
