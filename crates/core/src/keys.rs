//! The key ring: every key predebit uses, read from one Secrets Manager secret.
//!
//! # Secret format (a public contract)
//!
//! ```json
//! {
//!   "version": 1,
//!   "activeKid": "k2026-11",
//!   "keys": { "k2026-11": "<standard base64, at least 32 bytes>" },
//!   "pseudonymKey": "<standard base64, at least 32 bytes>"
//! }
//! ```
//!
//! - `version`: the format version; only `1` exists.
//! - `keys`: the signing keys by kid. They MAC both decision tokens and audit records, with a
//!   distinct domain tag for each use. During a rotation the ring holds the new key and the old
//!   ones, so tokens and audit lines signed under a retired kid still verify.
//! - `activeKid`: the kid new tokens and audit records are signed with; it must be in `keys`.
//! - `pseudonymKey`: keys the user pseudonym in audit records. It never rotates, so one user
//!   keeps one pseudonym for the life of the deployment.
//!
//! A kid is 1 to 64 characters of `A-Z a-z 0-9 _ -` (it appears between dots in a token).
//! Keys are standard base64 with padding (RFC 4648 section 4). Unknown fields are refused so a
//! misspelt field is an error, not a silently missing key.
//!
//! Every MAC is HMAC-SHA256 over `tag || 0x00 || message`, where the tag names the use (for
//! example `predebit/audit/v1`), so a MAC made for one use is never valid for another.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The only secret format version this code reads.
pub const SECRET_VERSION: u64 = 1;

/// The smallest key, in bytes, the ring accepts (the HMAC-SHA256 output size).
pub const MIN_KEY_BYTES: usize = 32;

/// Longest kid accepted.
const MAX_KID_LEN: usize = 64;

/// Domain tag for the user pseudonym.
const PSEUDONYM_TAG: &str = "predebit/pseudonym/v1";

/// Why a secret could not be read as a key ring. Messages name the field, never key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The secret string is not JSON.
    #[error("the key secret is not valid JSON (line {line}, column {column}); store the JSON document described in predebit's keys module")]
    NotJson {
        /// Line of the syntax error.
        line: usize,
        /// Column of the syntax error.
        column: usize,
    },
    /// The secret is JSON but not an object.
    #[error("the key secret must be a JSON object")]
    NotAnObject,
    /// A required field is absent.
    #[error("the key secret has no `{0}` field")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("the key secret's `{field}` must be {expected}")]
    WrongType {
        /// The field.
        field: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A field not in the format.
    #[error("the key secret has an unknown field `{0}`; expected version, activeKid, keys, pseudonymKey")]
    UnknownField(String),
    /// `version` is not one this code reads.
    #[error("the key secret has version {0}; this predebit reads version 1")]
    UnsupportedVersion(u64),
    /// `keys` is empty.
    #[error("the key secret's `keys` is empty; add at least the active key")]
    NoKeys,
    /// A kid has characters or a length the token format cannot carry.
    #[error("a kid in the key secret's `{0}` is not 1-64 characters of A-Z a-z 0-9 _ -")]
    InvalidKid(&'static str),
    /// `activeKid` names no key in `keys`.
    #[error("the key secret's activeKid `{0}` is not in `keys`")]
    ActiveKidNotInKeys(String),
    /// A key is not standard base64.
    #[error("the key secret's `{0}` is not standard base64")]
    NotBase64(String),
    /// A key decodes to fewer than [`MIN_KEY_BYTES`] bytes.
    #[error("the key secret's `{0}` is shorter than 32 bytes; generate it with `predebit secret create`")]
    KeyTooShort(String),
}

/// Every key predebit uses, by kid, plus the pseudonymization key. Debug output redacts keys.
/// Each key is held with its HMAC state already keyed, so a MAC does not hash the key again.
#[derive(Clone)]
pub struct KeyRing {
    active_kid: String,
    keys: BTreeMap<String, PreparedKey>,
    pseudonym: HmacSha256,
}

/// A key's bytes and the HMAC-SHA256 state keyed with them.
#[derive(Clone)]
struct PreparedKey {
    bytes: Vec<u8>,
    mac: HmacSha256,
}

impl PreparedKey {
    fn new(bytes: Vec<u8>) -> Self {
        let mac = HmacSha256::new_from_slice(&bytes).expect("HMAC accepts keys of any length");
        PreparedKey { bytes, mac }
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active_kid", &self.active_kid)
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .field("keys", &"<redacted>")
            .field("pseudonym_key", &"<redacted>")
            .finish()
    }
}

/// Whether `kid` can name a key: 1 to 64 characters of `A-Z a-z 0-9 _ -`.
pub fn is_valid_kid(kid: &str) -> bool {
    (1..=MAX_KID_LEN).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl KeyRing {
    /// Reads the Secrets Manager secret string; the error names the offending field.
    pub fn from_secret_json(s: &str) -> Result<KeyRing, KeyError> {
        let doc: Value = serde_json::from_str(s).map_err(|e| KeyError::NotJson {
            line: e.line(),
            column: e.column(),
        })?;
        let Value::Object(doc) = doc else {
            return Err(KeyError::NotAnObject);
        };
        if let Some(unknown) = doc.keys().find(|k| {
            !matches!(
                k.as_str(),
                "version" | "activeKid" | "keys" | "pseudonymKey"
            )
        }) {
            return Err(KeyError::UnknownField(unknown.clone()));
        }

        let version = doc
            .get("version")
            .ok_or(KeyError::MissingField("version"))?
            .as_u64()
            .ok_or_else(|| wrong_type("version", "the integer 1"))?;
        if version != SECRET_VERSION {
            return Err(KeyError::UnsupportedVersion(version));
        }

        let active_kid = doc
            .get("activeKid")
            .ok_or(KeyError::MissingField("activeKid"))?
            .as_str()
            .ok_or_else(|| wrong_type("activeKid", "a string"))?;
        if !is_valid_kid(active_kid) {
            return Err(KeyError::InvalidKid("activeKid"));
        }

        let encoded_keys = doc
            .get("keys")
            .ok_or(KeyError::MissingField("keys"))?
            .as_object()
            .ok_or_else(|| wrong_type("keys", "an object of kid to base64 key"))?;
        if encoded_keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        let mut keys = BTreeMap::new();
        for (kid, encoded) in encoded_keys {
            if !is_valid_kid(kid) {
                return Err(KeyError::InvalidKid("keys"));
            }
            let field = format!("keys.{kid}");
            let encoded = encoded
                .as_str()
                .ok_or_else(|| wrong_type(&field, "a base64 string"))?;
            keys.insert(kid.clone(), PreparedKey::new(decode_key(encoded, field)?));
        }
        if !keys.contains_key(active_kid) {
            return Err(KeyError::ActiveKidNotInKeys(active_kid.to_string()));
        }

        let pseudonym_key = doc
            .get("pseudonymKey")
            .ok_or(KeyError::MissingField("pseudonymKey"))?
            .as_str()
            .ok_or_else(|| wrong_type("pseudonymKey", "a base64 string"))?;
        let pseudonym_key = decode_key(pseudonym_key, "pseudonymKey".to_string())?;

        Ok(KeyRing {
            active_kid: active_kid.to_string(),
            keys,
            pseudonym: PreparedKey::new(pseudonym_key).mac,
        })
    }

    /// The kid new tokens and audit records are signed with.
    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// The signing key named `kid`, if the ring holds it.
    pub fn key(&self, kid: &str) -> Option<&[u8]> {
        self.keys.get(kid).map(|k| k.bytes.as_slice())
    }

    /// Whether the ring holds a signing key named `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// HMAC-SHA256 over `tag || 0x00 || msg` under the key named `kid`; `None` for an unknown kid.
    pub fn mac(&self, kid: &str, tag: &str, msg: &[u8]) -> Option<[u8; 32]> {
        let key = self.keys.get(kid)?;
        Some(
            tagged_mac(&key.mac, tag, msg)
                .finalize()
                .into_bytes()
                .into(),
        )
    }

    /// Checks `mac` against `tag || 0x00 || msg` under `kid` in constant time; `None` for an
    /// unknown kid.
    pub(crate) fn verify_mac(&self, kid: &str, tag: &str, msg: &[u8], mac: &[u8]) -> Option<bool> {
        let key = self.keys.get(kid)?;
        // verify_slice compares in constant time and refuses truncated MACs.
        Some(tagged_mac(&key.mac, tag, msg).verify_slice(mac).is_ok())
    }

    /// The user's pseudonym: lowercase hex HMAC under `pseudonymKey`, stable across rotations.
    pub fn pseudonymize(&self, user_id: &str) -> String {
        hex_lower(
            &tagged_mac(&self.pseudonym, PSEUDONYM_TAG, user_id.as_bytes())
                .finalize()
                .into_bytes(),
        )
    }

    /// A version 1 secret holding one signing key under `kid`; the caller supplies random bytes.
    ///
    /// `kid` should satisfy [`is_valid_kid`]; otherwise [`KeyRing::from_secret_json`] refuses
    /// the result.
    pub fn new_secret_json(kid: &str, signing_key: &[u8; 32], pseudonym_key: &[u8; 32]) -> String {
        let mut keys = serde_json::Map::new();
        keys.insert(kid.to_string(), Value::String(STANDARD.encode(signing_key)));
        serde_json::json!({
            "version": SECRET_VERSION,
            "activeKid": kid,
            "keys": keys,
            "pseudonymKey": STANDARD.encode(pseudonym_key),
        })
        .to_string()
    }
}

fn wrong_type(field: &str, expected: &'static str) -> KeyError {
    KeyError::WrongType {
        field: field.to_string(),
        expected,
    }
}

fn decode_key(encoded: &str, field: String) -> Result<Vec<u8>, KeyError> {
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| KeyError::NotBase64(field.clone()))?;
    if key.len() < MIN_KEY_BYTES {
        return Err(KeyError::KeyTooShort(field));
    }
    Ok(key)
}

/// The keyed state, continued over `tag || 0x00 || msg`.
fn tagged_mac(keyed: &HmacSha256, tag: &str, msg: &[u8]) -> HmacSha256 {
    let mut mac = keyed.clone();
    mac.update(tag.as_bytes());
    mac.update(&[0]);
    mac.update(msg);
    mac
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Signing key of the test ring: bytes 0, 1, .., 31.
    pub(crate) const SIGNING_KEY: [u8; 32] = {
        let mut k = [0u8; 32];
        let mut i = 0;
        while i < 32 {
            k[i] = i as u8;
            i += 1;
        }
        k
    };
    /// Pseudonym key of the test ring: 32 bytes of 0xA5.
    pub(crate) const PSEUDONYM_KEY: [u8; 32] = [0xa5; 32];

    /// The ring every golden vector uses: one key, kid `k2026-11`.
    pub(crate) fn test_ring() -> KeyRing {
        KeyRing::from_secret_json(&KeyRing::new_secret_json(
            "k2026-11",
            &SIGNING_KEY,
            &PSEUDONYM_KEY,
        ))
        .unwrap()
    }

    /// A ring mid-rotation: `k2026-12` active, `k2026-11` (the test key) retired but present.
    pub(crate) fn rotated_ring() -> KeyRing {
        let secret = serde_json::json!({
            "version": 1,
            "activeKid": "k2026-12",
            "keys": {
                "k2026-11": STANDARD.encode(SIGNING_KEY),
                "k2026-12": STANDARD.encode([0x42u8; 32]),
            },
            "pseudonymKey": STANDARD.encode(PSEUDONYM_KEY),
        });
        KeyRing::from_secret_json(&secret.to_string()).unwrap()
    }

    fn refused(secret: &str) -> KeyError {
        KeyRing::from_secret_json(secret).unwrap_err()
    }

    fn secret_with(field: &str, value: Value) -> String {
        let mut secret: Value = serde_json::from_str(&KeyRing::new_secret_json(
            "k1",
            &SIGNING_KEY,
            &PSEUDONYM_KEY,
        ))
        .unwrap();
        if value.is_null() {
            secret.as_object_mut().unwrap().remove(field);
        } else {
            secret[field] = value;
        }
        secret.to_string()
    }

    #[test]
    fn new_secret_json_round_trips_through_from_secret_json() {
        let ring = test_ring();
        assert_eq!(ring.active_kid(), "k2026-11");
        assert_eq!(ring.key("k2026-11"), Some(&SIGNING_KEY[..]));
        assert!(ring.has_kid("k2026-11"));
        assert!(!ring.has_kid("k2026-12"));
        assert_eq!(ring.key("k2026-12"), None);
    }

    #[test]
    fn new_secret_json_has_the_documented_shape() {
        let secret: Value =
            serde_json::from_str(&KeyRing::new_secret_json("k1", &[0; 32], &[1; 32])).unwrap();
        assert_eq!(
            secret,
            serde_json::json!({
                "version": 1,
                "activeKid": "k1",
                "keys": {"k1": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
                "pseudonymKey": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
            })
        );
    }

    #[test]
    fn debug_output_never_contains_key_material() {
        let ring = test_ring();
        let debug = format!("{ring:?}");
        assert!(debug.contains("k2026-11"));
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains(&STANDARD.encode(SIGNING_KEY)));
        assert!(!debug.contains(&STANDARD.encode(PSEUDONYM_KEY)));
        assert!(!debug.contains("165"), "0xA5 bytes leaked as decimal");
        assert!(!debug.contains("[0, 1, 2"), "signing key bytes leaked");
    }

    #[test]
    fn mac_is_hmac_sha256_of_tag_nul_message() {
        // GIVEN RFC 4231 test case 2 (key "Jefe"), with the message split as tag || 0x00 || rest
        let secret = serde_json::json!({
            "version": 1, "activeKid": "k", "keys": {"k": STANDARD.encode([b'J'; 32])},
            "pseudonymKey": STANDARD.encode([0u8; 32]),
        });
        let ring = KeyRing::from_secret_json(&secret.to_string()).unwrap();
        let direct = {
            let mut m = HmacSha256::new_from_slice(&[b'J'; 32]).unwrap();
            m.update(b"predebit/test\0hello");
            <[u8; 32]>::from(m.finalize().into_bytes())
        };
        // WHEN mac is asked for tag "predebit/test" THEN it is the HMAC of the joined bytes
        assert_eq!(ring.mac("k", "predebit/test", b"hello"), Some(direct));
        assert_eq!(ring.mac("missing", "predebit/test", b"hello"), None);
    }

    #[test]
    fn different_tags_give_different_macs_over_the_same_message() {
        let ring = test_ring();
        assert_ne!(
            ring.mac("k2026-11", "predebit/audit/v1", b"m"),
            ring.mac("k2026-11", "predebit/decision-token/v1", b"m")
        );
    }

    #[test]
    fn verify_mac_accepts_the_mac_and_refuses_any_change_or_truncation() {
        let ring = test_ring();
        let mac = ring.mac("k2026-11", "t", b"m").unwrap();
        assert_eq!(ring.verify_mac("k2026-11", "t", b"m", &mac), Some(true));
        let mut flipped = mac;
        flipped[31] ^= 1;
        assert_eq!(
            ring.verify_mac("k2026-11", "t", b"m", &flipped),
            Some(false)
        );
        assert_eq!(
            ring.verify_mac("k2026-11", "t", b"m", &mac[..16]),
            Some(false)
        );
        assert_eq!(ring.verify_mac("k2026-11", "t", b"n", &mac), Some(false));
        assert_eq!(ring.verify_mac("other", "t", b"m", &mac), None);
    }

    #[test]
    fn pseudonym_is_pinned_and_survives_signing_key_rotation() {
        // GIVEN the same pseudonym key before and after a signing-key rotation
        let before = test_ring().pseudonymize("user-123");
        let after = rotated_ring().pseudonymize("user-123");
        // THEN the pseudonym is unchanged, lowercase hex, and differs per user
        assert_eq!(before, after);
        assert_eq!(
            before,
            "5d374a947bf0d5c029f58f6d2178d7174570023d4f531ea9bb6ad91b931f9363"
        );
        assert_ne!(before, test_ring().pseudonymize("user-124"));
    }

    #[test]
    fn golden_vector_file_secret_reads_and_pseudonymizes_as_pinned() {
        let vectors: Value =
            serde_json::from_str(include_str!("../tests/vectors/golden-v1.json")).unwrap();
        let ring = KeyRing::from_secret_json(vectors["secret"].as_str().unwrap()).unwrap();
        assert_eq!(ring.key("k2026-11"), test_ring().key("k2026-11"));
        let pseudonym = &vectors["pseudonym"];
        assert_eq!(pseudonym["tag"], PSEUDONYM_TAG);
        assert_eq!(
            pseudonym["pseudonym"],
            ring.pseudonymize(pseudonym["userId"].as_str().unwrap())
                .as_str()
        );
    }

    #[test]
    fn pseudonym_does_not_depend_on_the_signing_key() {
        let ring = test_ring();
        let signing_mac = ring
            .mac("k2026-11", PSEUDONYM_TAG, b"user-123")
            .map(|m| hex_lower(&m));
        assert_ne!(Some(ring.pseudonymize("user-123")), signing_mac);
    }

    #[test]
    fn ring_keeps_retired_keys_and_signs_with_the_active_one() {
        let ring = rotated_ring();
        assert_eq!(ring.active_kid(), "k2026-12");
        assert!(ring.has_kid("k2026-11"));
        assert_eq!(ring.key("k2026-12"), Some(&[0x42u8; 32][..]));
    }

    #[test]
    fn non_json_secret_is_refused_with_its_position() {
        assert_eq!(
            refused("{\"version\": 1,"),
            KeyError::NotJson {
                line: 1,
                column: 14
            }
        );
        assert_eq!(refused("[]"), KeyError::NotAnObject);
    }

    #[test]
    fn each_missing_field_is_named() {
        for field in ["version", "activeKid", "keys", "pseudonymKey"] {
            assert_eq!(
                refused(&secret_with(field, Value::Null)),
                KeyError::MissingField(field),
                "{field}"
            );
        }
    }

    #[test]
    fn wrong_types_are_named() {
        let cases = [
            ("version", serde_json::json!("1")),
            ("activeKid", serde_json::json!(7)),
            ("keys", serde_json::json!(["k1"])),
            ("pseudonymKey", serde_json::json!(true)),
        ];
        for (field, value) in cases {
            match KeyRing::from_secret_json(&secret_with(field, value)) {
                Err(KeyError::WrongType { field: named, .. }) => assert_eq!(named, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert_eq!(
            refused(&secret_with("keys", serde_json::json!({"k1": 5}))),
            KeyError::WrongType {
                field: "keys.k1".to_string(),
                expected: "a base64 string"
            }
        );
    }

    #[test]
    fn unsupported_version_is_refused() {
        assert_eq!(
            refused(&secret_with("version", serde_json::json!(2))),
            KeyError::UnsupportedVersion(2)
        );
    }

    #[test]
    fn unknown_field_is_refused_by_name() {
        assert_eq!(
            refused(&secret_with("activekid", serde_json::json!("k1"))),
            KeyError::UnknownField("activekid".to_string())
        );
    }

    #[test]
    fn active_kid_must_name_a_key() {
        assert_eq!(
            refused(&secret_with("activeKid", serde_json::json!("k2"))),
            KeyError::ActiveKidNotInKeys("k2".to_string())
        );
    }

    #[test]
    fn empty_keys_are_refused() {
        assert_eq!(
            refused(&secret_with("keys", serde_json::json!({}))),
            KeyError::NoKeys
        );
    }

    #[test]
    fn kids_that_cannot_sit_in_a_token_are_refused() {
        for kid in ["", "a.b", "k 1", "k/1", &"k".repeat(65)] {
            let keys = serde_json::json!({ kid: STANDARD.encode(SIGNING_KEY) });
            assert_eq!(
                refused(&secret_with("keys", keys)),
                KeyError::InvalidKid("keys"),
                "{kid:?}"
            );
            assert_eq!(
                refused(&secret_with("activeKid", serde_json::json!(kid))),
                KeyError::InvalidKid("activeKid"),
                "{kid:?}"
            );
        }
        assert!(is_valid_kid(&"k".repeat(64)));
        assert!(is_valid_kid("k2026-11_A"));
    }

    #[test]
    fn short_or_non_base64_keys_are_refused_without_echoing_them() {
        let short = STANDARD.encode([7u8; 31]);
        let err = KeyRing::from_secret_json(&secret_with(
            "keys",
            serde_json::json!({"k1": short.clone()}),
        ))
        .unwrap_err();
        assert_eq!(err, KeyError::KeyTooShort("keys.k1".to_string()));
        assert!(!err.to_string().contains(&short));

        let url_safe = "-_".repeat(22);
        let err = KeyRing::from_secret_json(&secret_with(
            "pseudonymKey",
            serde_json::json!(url_safe.clone()),
        ))
        .unwrap_err();
        assert_eq!(err, KeyError::NotBase64("pseudonymKey".to_string()));
        assert!(!err.to_string().contains(&url_safe));

        assert_eq!(
            refused(&secret_with(
                "pseudonymKey",
                serde_json::json!(STANDARD.encode([7u8; 16]))
            )),
            KeyError::KeyTooShort("pseudonymKey".to_string())
        );
    }

    #[test]
    fn hex_lower_encodes_every_nibble() {
        assert_eq!(hex_lower(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
