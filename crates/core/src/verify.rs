//! The verify event: strict parsing into a [`VerifyRequest`], errors naming the field.

use serde_json::{Map, Value};

use crate::request_url::HttpUrl;
use crate::store::VerifyKeys;

/// The only event and response version this build speaks.
pub const EVENT_VERSION: &str = "1";
/// The only payment type predebit verifies today.
pub const PAYMENT_TYPE_X402: &str = "CRYPTO_X402";
/// The longest identifier accepted (AgentCore ids are far shorter).
pub const MAX_ID_LEN: usize = 256;

const KNOWN_FIELDS: [&str; 13] = [
    "version",
    "paymentId",
    "paymentType",
    "x402Version",
    "requirement",
    "resource",
    "requestUrl",
    "userId",
    "paymentSessionId",
    "paymentInstrumentId",
    "agentId",
    "toolName",
    "toolUseId",
];

/// A verify event, parsed. The requirement stays raw JSON until the payment type is known.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyRequest {
    /// Lowercase hex SHA-256 computed by the plugin; the ledger's idempotency key.
    pub payment_id: String,
    /// `CRYPTO_X402` (anything else is declined, not malformed).
    pub payment_type: String,
    /// 1 or 2.
    pub x402_version: u64,
    /// The selected `accepts` entry, as received.
    pub requirement: Value,
    /// The resource the merchant declares: v2's top-level `resource.url`, copied by the caller
    /// from the 402 (v1 entries carry their own). Compared with `request_url` by origin only.
    pub resource: Option<String>,
    /// The URL the tool requested, from the tool call (never from the 402); host and URL rules
    /// judge it. `None` when the tool call has no URL: host and URL rules then fail closed.
    pub request_url: Option<HttpUrl>,
    /// The wallet owner.
    pub user_id: String,
    /// The AgentCore payment session.
    pub payment_session_id: String,
    /// The wallet's payment instrument.
    pub payment_instrument_id: String,
    /// The agent asking to pay.
    pub agent_id: String,
    /// The tool whose call hit the 402.
    pub tool_name: String,
    /// The tool call, when the caller has it.
    pub tool_use_id: Option<String>,
}

/// A malformed event: the field and what is wrong with it (never the value).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldProblem {
    /// The JSON field name.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

pub(crate) fn problem(field: &str, problem: &str) -> FieldProblem {
    FieldProblem {
        field: field.to_string(),
        problem: problem.to_string(),
    }
}

/// The longest name [`is_plain_name`] accepts.
pub const MAX_PLAIN_NAME_LEN: usize = 64;

/// Whether a name from the event is plain enough to repeat: an ASCII letter, then at most 63
/// ASCII letters, digits or `_` (`^[A-Za-z][A-Za-z0-9_]{0,63}$`). Every field name predebit
/// knows is one, so a misspelt field still gets named, and so are real schemes and payment
/// types; a key or value with spaces, quotes, punctuation, or anything longer, is the caller's
/// text and is never repeated.
pub fn is_plain_name(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && key.len() <= MAX_PLAIN_NAME_LEN
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The refusal of an unknown key: named when [`is_plain_name`], else reported on `event`
/// as "has a field that is not known" (the key itself is never repeated).
pub fn unknown_field(key: &str, problem: &str) -> FieldProblem {
    if is_plain_name(key) {
        FieldProblem {
            field: key.to_string(),
            problem: problem.to_string(),
        }
    } else {
        FieldProblem {
            field: "event".into(),
            problem: "has a field that is not known (its name is not repeated: it is not a plain identifier)".into(),
        }
    }
}

pub(crate) fn string_field(
    obj: &Map<String, Value>,
    field: &str,
    required: bool,
) -> Result<Option<String>, FieldProblem> {
    match obj.get(field) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(problem(field, "is required")),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(problem(field, "must be a string")),
    }
}

/// An identifier: non-empty, at most [`MAX_ID_LEN`] bytes, printable ASCII without `#` (which
/// separates the parts of predebit's keys) or spaces.
pub(crate) fn identifier(obj: &Map<String, Value>, field: &str) -> Result<String, FieldProblem> {
    let value = string_field(obj, field, true)?.unwrap_or_default();
    check_identifier(field, &value)?;
    Ok(value)
}

pub(crate) fn check_identifier(field: &str, value: &str) -> Result<(), FieldProblem> {
    if value.is_empty() {
        return Err(problem(field, "must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(problem(field, "is longer than 256 characters"));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
        return Err(problem(
            field,
            "must be printable ASCII without spaces or '#'",
        ));
    }
    Ok(())
}

/// Parses a verify event. Unknown fields are refused so a typo never passes silently.
pub fn parse_request(event: &Value) -> Result<VerifyRequest, FieldProblem> {
    let obj = event
        .as_object()
        .ok_or_else(|| problem("event", "must be a JSON object"))?;
    if let Some(unknown) = obj.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        return Err(unknown_field(unknown, "is not a known field"));
    }
    match obj.get("version") {
        Some(Value::String(v)) if v == EVENT_VERSION => {}
        Some(Value::String(_)) => return Err(problem("version", "must be \"1\"")),
        Some(_) => return Err(problem("version", "must be the string \"1\"")),
        None => return Err(problem("version", "is required")),
    }
    let payment_id = string_field(obj, "paymentId", true)?.unwrap_or_default();
    if payment_id.len() != 64
        || !payment_id
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(problem(
            "paymentId",
            "must be 64 lowercase hex characters (SHA-256)",
        ));
    }
    let payment_type = string_field(obj, "paymentType", true)?.unwrap_or_default();
    if payment_type.is_empty() {
        return Err(problem("paymentType", "must not be empty"));
    }
    let x402_version = match obj.get("x402Version") {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v @ (1 | 2)) => v,
            _ => return Err(problem("x402Version", "must be 1 or 2")),
        },
        Some(_) => return Err(problem("x402Version", "must be the number 1 or 2")),
        None => return Err(problem("x402Version", "is required")),
    };
    let requirement = match obj.get("requirement") {
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(problem(
                "requirement",
                "must be an object (the selected accepts entry)",
            ))
        }
        None => return Err(problem("requirement", "is required")),
    };
    let resource = string_field(obj, "resource", false)?;
    if resource
        .as_ref()
        .is_some_and(|r| r.is_empty() || r.len() > 2048)
    {
        return Err(problem("resource", "must be a URL of 1 to 2048 characters"));
    }
    let request_url = string_field(obj, "requestUrl", false)?
        .map(|text| {
            HttpUrl::parse(&text).map_err(|p| FieldProblem {
                field: "requestUrl".into(),
                problem: p.to_string(),
            })
        })
        .transpose()?;
    let tool_use_id = string_field(obj, "toolUseId", false)?;
    if let Some(id) = &tool_use_id {
        check_identifier("toolUseId", id)?;
    }
    Ok(VerifyRequest {
        payment_id,
        payment_type,
        x402_version,
        requirement,
        resource,
        request_url,
        user_id: identifier(obj, "userId")?,
        payment_session_id: identifier(obj, "paymentSessionId")?,
        payment_instrument_id: identifier(obj, "paymentInstrumentId")?,
        agent_id: identifier(obj, "agentId")?,
        tool_name: identifier(obj, "toolName")?,
        tool_use_id,
    })
}

impl VerifyRequest {
    /// The keys of the records this decision reads.
    pub fn keys(&self) -> VerifyKeys {
        VerifyKeys {
            user_id: self.user_id.clone(),
            agent_id: self.agent_id.clone(),
            payment_session_id: self.payment_session_id.clone(),
            counters: Vec::new(),
        }
    }
}
