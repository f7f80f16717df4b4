//! URL rules (`allowedUrls`, `blockedUrls`): merchants named by scheme, host, port and path
//! prefix, judged on the URL the tool requested.
//!
//! A pattern is `https://api.example.com/v1/`: the scheme (`http` or `https`), a host written as
//! host rules write it (a hostname, an IP literal or a `*.` wildcard matching strict subdomains;
//! IDNA to punycode, lowercase, trailing dots removed), an optional port, and an optional path
//! prefix. No userinfo, query or fragment. Without a port a pattern matches the scheme's default
//! port only (443, 80); a default port written out is the same pattern.
//!
//! The path prefix matches whole segments: `/v1/` and `/v1` match `/v1`, `/v1/` and `/v1/x`,
//! never `/v10` or `/v1x`; no path (or `/`) matches every path of the origin. Segments compare
//! percent-decoded (`/v1/%61bc` matches `/v1/abc`); a pattern's path must itself be judgeable
//! (no dot, empty or encoded-separator segment, see [`crate::request_url`]).
//!
//! Paths compare exactly in an allow-list and ignoring letter case in a deny-list: a server
//! that ignores case cannot be reached around a deny-list by `/ADMIN`, and one that does not
//! loses nothing by a deny-list that blocks a little more. A requested path that is not
//! judgeable passes no allow-list and is blocked by every deny-list entry of its origin.

use std::collections::HashMap;

use super::PolicyError;
use crate::request_url::{normalize_host_pattern, path_segments, HttpUrl, MAX_URL_LEN};

/// One pattern's scheme, port and path prefix; its host is the key it is filed under.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    scheme: &'static str,
    port: u16,
    /// Percent-decoded; lowercased in a deny-list.
    prefix: Vec<String>,
}

/// A pattern as written, parsed: its host (normalized, `*.` kept) and its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    host: String,
    entry: Entry,
}

/// An `allowedUrls` or `blockedUrls` list, filed by host: exact hosts, and the suffixes of `*.`
/// patterns (".example.com"), so a lookup probes the host and each of its parent domains.
#[derive(Debug, Clone, Default)]
pub(super) struct UrlSet {
    exact: HashMap<String, Vec<Entry>>,
    suffixes: HashMap<String, Vec<Entry>>,
    /// A deny-list: paths compare ignoring letter case.
    fold_case: bool,
}

impl UrlSet {
    /// Every entry must be a URL pattern (see the module documentation). `fold_case` for a
    /// deny-list.
    pub(super) fn compile(
        field: &'static str,
        list: &Option<Vec<String>>,
        fold_case: bool,
    ) -> Result<Option<Self>, PolicyError> {
        let Some(list) = list else { return Ok(None) };
        let mut set = UrlSet {
            fold_case,
            ..UrlSet::default()
        };
        for text in list {
            let Some(Pattern { host, mut entry }) = parse_pattern(text) else {
                return Err(PolicyError::Url {
                    field,
                    value: text.clone(),
                });
            };
            if fold_case {
                entry.prefix = fold(&entry.prefix);
            }
            let (map, key) = match host.strip_prefix('*') {
                Some(suffix) => (&mut set.suffixes, suffix.to_string()),
                None => (&mut set.exact, host),
            };
            map.entry(key).or_default().push(entry);
        }
        Ok(Some(set))
    }

    /// Whether the list has no entry.
    pub(super) fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffixes.is_empty()
    }

    /// Whether an entry admits `url`: same scheme, host and port, and its path starts with the
    /// entry's segments. A path that is not judgeable is admitted by none.
    pub(super) fn allows(&self, url: &HttpUrl) -> bool {
        let Some(path) = url.path_segments() else {
            return false;
        };
        self.same_origin(url)
            .any(|entry| path.starts_with(&entry.prefix))
    }

    /// Whether an entry blocks `url`: same scheme, host and port, and its path starts with the
    /// entry's segments in any letter case. A path that is not judgeable is blocked by any
    /// entry of its origin.
    pub(super) fn blocks(&self, url: &HttpUrl) -> bool {
        let mut entries = self.same_origin(url).peekable();
        if entries.peek().is_none() {
            return false;
        }
        let Some(path) = url.path_segments() else {
            return true;
        };
        let folded;
        let path = if self.fold_case {
            folded = fold(path);
            &folded
        } else {
            path
        };
        entries.any(|entry| path.starts_with(&entry.prefix))
    }

    /// The entries filed under the URL's host or one of its parent domains, with its scheme
    /// and port.
    fn same_origin<'a>(&'a self, url: &'a HttpUrl) -> impl Iterator<Item = &'a Entry> + 'a {
        let host = url.host();
        let parents = host
            .match_indices('.')
            .filter(|(i, _)| *i > 0)
            .filter_map(move |(i, _)| self.suffixes.get(&host[i..]));
        self.exact
            .get(host)
            .into_iter()
            .chain(parents)
            .flatten()
            .filter(move |e| e.scheme == url.scheme() && e.port == url.port())
    }
}

fn fold(segments: &[String]) -> Vec<String> {
    segments.iter().map(|s| s.to_lowercase()).collect()
}

/// Parses a pattern, or `None` when it is not one (see the module documentation).
fn parse_pattern(text: &str) -> Option<Pattern> {
    if text.len() > MAX_URL_LEN
        || text.bytes().any(|b| {
            matches!(b, b'\\' | b'?' | b'#') || b.is_ascii_whitespace() || b.is_ascii_control()
        })
    {
        return None;
    }
    let starts = |p: &str| {
        text.len() >= p.len() && text.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
    };
    let (scheme, default_port, rest) = if starts("https://") {
        ("https", 443, &text[8..])
    } else if starts("http://") {
        ("http", 80, &text[7..])
    } else {
        return None;
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return None;
    }
    let (host, port) = split_port(authority)?;
    let host = normalize_host_pattern(host)?;
    let port = match port {
        None => default_port,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse().ok()?
        }
        Some(_) => return None,
    };
    let prefix = path_segments(path)?;
    Some(Pattern {
        host,
        entry: Entry {
            scheme,
            port,
            prefix,
        },
    })
}

/// `host` and `host:port`, `[v6]` and `[v6]:port`; the port as written.
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')? + 1;
        let (host, after) = authority.split_at(end);
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    Some(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A parsed pattern in one canonical spelling: `scheme://host:port/segment/segment`, each
    /// segment decoded, or `None` when refused.
    fn pattern(text: &str) -> Option<String> {
        parse_pattern(text).map(|p| {
            let Entry {
                scheme,
                port,
                prefix,
            } = p.entry;
            format!("{scheme}://{}:{port}/{}", p.host, prefix.join("/"))
        })
    }

    fn set(field: &'static str, list: &[&str]) -> UrlSet {
        let list = Some(list.iter().map(|s| s.to_string()).collect());
        UrlSet::compile(field, &list, field == "blockedUrls")
            .unwrap()
            .unwrap()
    }

    fn url(text: &str) -> HttpUrl {
        HttpUrl::parse(text).unwrap()
    }

    #[test]
    fn patterns_are_read_into_host_scheme_port_and_decoded_segments() {
        // GIVEN patterns in every accepted spelling WHEN parsed THEN they are normalized
        for (text, expected) in [
            (
                "https://api.example.com/v1/",
                "https://api.example.com:443/v1",
            ),
            (
                "https://api.example.com/v1",
                "https://api.example.com:443/v1",
            ),
            ("https://api.example.com", "https://api.example.com:443/"),
            ("https://api.example.com/", "https://api.example.com:443/"),
            (
                "HTTPS://API.Example.COM./V1/",
                "https://api.example.com:443/V1",
            ),
            (
                "https://api.example.com:443/a/b",
                "https://api.example.com:443/a/b",
            ),
            (
                "https://api.example.com:8443/",
                "https://api.example.com:8443/",
            ),
            ("http://api.example.com/", "http://api.example.com:80/"),
            ("http://api.example.com:80/", "http://api.example.com:80/"),
            ("http://api.example.com:443/", "http://api.example.com:443/"),
            ("https://*.example.com/v1/", "https://*.example.com:443/v1"),
            (
                "https://bücher.example/café/",
                "https://xn--bcher-kva.example:443/café",
            ),
            (
                "https://a.example/caf%C3%A9/%61bc",
                "https://a.example:443/café/abc",
            ),
            (
                "https://a.example/users/@me",
                "https://a.example:443/users/@me",
            ),
            ("http://127.0.0.1:3001/x", "http://127.0.0.1:3001/x"),
            ("http://[::1]:8080/x", "http://[::1]:8080/x"),
            ("http://[0:0:0:0:0:0:0:1]/x", "http://[::1]:80/x"),
        ] {
            assert_eq!(pattern(text).as_deref(), Some(expected), "{text}");
        }
    }

    #[test]
    fn patterns_with_query_fragment_userinfo_or_an_ambiguous_path_are_refused() {
        // GIVEN patterns that are not scheme + host (+ port) + path prefix, or whose path is
        // one servers could read otherwise
        for bad in [
            "",
            "api.example.com/v1/",
            "//api.example.com/v1/",
            "ftp://api.example.com/",
            "https:api.example.com/",
            "https:///api.example.com/",
            "https://",
            "https:///",
            "https://api.example.com/v1/?x=1",
            "https://api.example.com/v1/?",
            "https://api.example.com/v1/#top",
            "https://user@api.example.com/",
            "https://user:pw@api.example.com/",
            "https://api.example.com:/",
            "https://api.example.com:x/",
            "https://api.example.com:-1/",
            "https://api.example.com:+443/",
            "https://api.example.com:65536/",
            "https://api.example.com:443:443/",
            "https://[::1/",
            "https://[::1]x/",
            "https://*/",
            "https://*.127.0.0.1/",
            "https://a.*.example/",
            "https://a..example/",
            "https://pay%2Escam.example/",
            "https://api.example.com/a/../b",
            "https://api.example.com/a/./b",
            "https://api.example.com/a/%2e%2e/b",
            "https://api.example.com/a/%2E/b",
            "https://api.example.com//a",
            "https://api.example.com/a//b",
            "https://api.example.com/v1%2Fadmin",
            "https://api.example.com/v1%5cadmin",
            "https://api.example.com/v1\\admin",
            "https://api.example.com/v1/..;/admin",
            "https://api.example.com/v1/%252e",
            "https://api.example.com/v1/%FF",
            "https://api.example.com/v1/%00",
            "https://api.example.com/a b",
            " https://api.example.com/",
        ] {
            // WHEN compiled THEN refused, naming the field and the entry
            for field in ["allowedUrls", "blockedUrls"] {
                let list = Some(vec![bad.to_string()]);
                assert_eq!(
                    UrlSet::compile(field, &list, false).map(|s| s.is_some()),
                    Err(PolicyError::Url {
                        field,
                        value: bad.to_string()
                    }),
                    "{bad:?}"
                );
            }
        }
        let long = format!("https://a.example/{}", "x".repeat(MAX_URL_LEN));
        assert_eq!(pattern(&long), None);
    }

    #[test]
    fn an_absent_list_is_none_and_an_empty_one_admits_nothing() {
        assert!(UrlSet::compile("allowedUrls", &None, false)
            .unwrap()
            .is_none());
        let empty = UrlSet::compile("allowedUrls", &Some(vec![]), false)
            .unwrap()
            .unwrap();
        assert!(empty.is_empty());
        assert!(!empty.allows(&url("https://a.example/")));
        assert!(!empty.blocks(&url("https://a.example//x")));
    }

    #[test]
    fn allow_lists_match_whole_segments_on_the_same_scheme_host_and_port() {
        // GIVEN an allow-list of path prefixes, exact and wildcard hosts, ports and schemes
        let s = set(
            "allowedUrls",
            &[
                "https://api.example.com/v1/",
                "https://*.shop.example/cart",
                "http://localhost:3001/paid",
                "https://bücher.example/katalog/",
                "https://root.example",
            ],
        );
        for (text, expected) in [
            // prefix at segment boundaries
            ("https://api.example.com/v1", true),
            ("https://api.example.com/v1/", true),
            ("https://api.example.com/v1/x/y?z=1#f", true),
            ("https://api.example.com/v10", false),
            ("https://api.example.com/v1x/y", false),
            ("https://api.example.com/", false),
            ("https://api.example.com/V1/x", false),
            ("https://api.example.com/x/v1/", false),
            // decoded segments, uppercase escapes
            ("https://api.example.com/%76%31/x", true),
            ("https://api.example.com/v1/%61bc", true),
            ("https://api.example.com/%76%31x", false),
            // dot segments resolved before matching, tricks not judged
            ("https://api.example.com/v1/../admin", false),
            ("https://api.example.com/v1/%2e%2e/admin", false),
            ("https://api.example.com/v1/%2E%2e/admin", false),
            ("https://api.example.com/admin/../v1/x", true),
            ("https://api.example.com/v1/./x", true),
            ("https://api.example.com//v1/x", false),
            ("https://api.example.com/v1//x", false),
            ("https://api.example.com/v1%2Fx", false),
            ("https://api.example.com/v1/x%2F..%2F..%2Fadmin", false),
            ("https://api.example.com/v1/x%5C..%5Cadmin", false),
            ("https://api.example.com/v1/..;/admin", false),
            ("https://api.example.com/v1/%252e%252e/admin", false),
            // hosts, ports and schemes
            ("https://API.Example.COM./v1/x", true),
            ("https://api.example.com:443/v1/x", true),
            ("https://api.example.com:8443/v1/x", false),
            ("http://api.example.com/v1/x", false),
            ("https://other.example.com/v1/x", false),
            ("https://a.shop.example/cart/1", true),
            ("https://a.b.shop.example/cart", true),
            ("https://shop.example/cart", false),
            ("https://badshop.example/cart", false),
            ("http://localhost:3001/paid/x", true),
            ("http://localhost/paid/x", false),
            ("https://localhost:3001/paid/x", false),
            // unicode hosts and paths
            ("https://xn--bcher-kva.example/katalog/1", true),
            ("https://BÜCHER.example/katalog/1", true),
            ("https://root.example/", true),
            ("https://root.example/anything/at/all", true),
            ("https://root.example//x", false),
        ] {
            assert_eq!(s.allows(&url(text)), expected, "{text}");
        }
    }

    #[test]
    fn deny_lists_match_in_any_letter_case_and_block_what_they_cannot_judge() {
        // GIVEN a deny-list of an admin prefix on one origin
        let s = set(
            "blockedUrls",
            &["https://api.example.com/Admin/", "https://*.evil.example"],
        );
        for (text, expected) in [
            ("https://api.example.com/admin", true),
            ("https://api.example.com/ADMIN/x", true),
            ("https://api.example.com/%61dmin/x", true),
            ("https://api.example.com/v1/../admin/x", true),
            ("https://api.example.com/v1/%2e%2e/admin/x", true),
            ("https://api.example.com/administrator", false),
            ("https://api.example.com/v1/admin", false),
            // not judgeable on the blocked origin: blocked
            ("https://api.example.com//admin", true),
            ("https://api.example.com/v1/..;/admin", true),
            ("https://api.example.com/x%2F..%2Fadmin", true),
            ("https://api.example.com/x%5Cadmin", true),
            ("https://api.example.com/%252e%252e/admin", true),
            // not judgeable on another origin: that origin has no rule
            ("https://other.example.com//admin", false),
            ("http://api.example.com//admin", false),
            ("https://api.example.com:8443//admin", false),
            // a wildcard host with no path blocks the whole origin
            ("https://a.evil.example/", true),
            ("https://evil.example/", false),
        ] {
            assert_eq!(s.blocks(&url(text)), expected, "{text}");
        }
    }

    fn path_piece() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("v1"),
            Just("V1"),
            Just("v10"),
            Just("abc"),
            Just("%61bc"),
            Just("admin"),
            Just(""),
            Just("."),
            Just(".."),
            Just("%2e%2e"),
            Just("%2E"),
            Just("%2F"),
            Just("%5C"),
            Just("..;"),
            Just("%25"),
        ]
    }

    proptest! {
        #[test]
        fn compiling_and_matching_never_panic(pattern in "\\PC*", request in "\\PC*") {
            let list = Some(vec![pattern]);
            if let Ok(Some(s)) = UrlSet::compile("allowedUrls", &list, false) {
                if let Ok(u) = HttpUrl::parse(&request) {
                    let _ = s.allows(&u);
                    let _ = s.blocks(&u);
                }
            }
        }

        #[test]
        fn a_pattern_allows_and_blocks_the_url_it_spells(
            host in "[a-z]{1,8}(\\.[a-z]{1,8}){0,2}",
            port in proptest::option::of(1u16..),
            pieces in proptest::collection::vec(path_piece(), 0..4),
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let text = format!("https://{host}{port}/{}", pieces.join("/"));
            if parse_pattern(&text).is_some() {
                let request = url(&text);
                prop_assert!(set("allowedUrls", &[&text]).allows(&request), "{}", text);
                prop_assert!(set("blockedUrls", &[&text]).blocks(&request), "{}", text);
            }
        }
    }
}
