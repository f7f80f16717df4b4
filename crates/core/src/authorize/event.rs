//! The authorize event: the 402 as received and the tool call's context, parsed strictly; and the
//! one verify request per `accepts` entry that the decision then weighs.
//!
//! Fields (DESIGN, "Enforcing mode"): `version`, `x402Version` (1 or 2), the 402 as received —
//! `body` (the v1 JSON body, an object) or `paymentRequired` (the v2 `PAYMENT-REQUIRED` header
//! value) — `requestUrl`, `userId`, `agentId`, `paymentSessionId`, `paymentInstrumentId`,
//! `toolName`, `toolUseId` and `attempt` (1-based). Unknown fields are refused, as in verify.
//! Errors name the field, never its value.

use serde_json::{Map, Value};

use crate::payment_id::payment_id;
use crate::request_url::HttpUrl;
use crate::verify::{
    check_identifier, identifier, problem, string_field, unknown_field, FieldProblem,
    VerifyRequest, EVENT_VERSION, PAYMENT_TYPE_X402,
};
use crate::x402::base64_json_object;

const KNOWN_FIELDS: [&str; 11] = [
    "version",
    "x402Version",
    "body",
    "paymentRequired",
    "requestUrl",
    "userId",
    "agentId",
    "paymentSessionId",
    "paymentInstrumentId",
    "toolName",
    "toolUseId",
];
const ATTEMPT: &str = "attempt";

/// The most `accepts` entries one 402 may offer (x402 servers offer a handful).
pub const MAX_ENTRIES: usize = 16;
/// The most signing attempts for one tool call.
pub const MAX_ATTEMPT: u64 = 100;

/// An authorize event, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthorizeRequest {
    /// 1 or 2.
    pub x402_version: u64,
    /// The 402's `accepts` entries as received, in the merchant's order.
    pub entries: Vec<Value>,
    /// v2: the top-level resource URL the merchant declares (v1 entries carry their own).
    pub resource: Option<String>,
    /// v2: the offer's `resource` object as received (the payment header repeats it).
    pub resource_object: Option<Value>,
    /// The URL the tool requested.
    pub request_url: Option<HttpUrl>,
    /// The wallet owner.
    pub user_id: String,
    /// The agent asking to pay.
    pub agent_id: String,
    /// The AgentCore payment session.
    pub payment_session_id: String,
    /// The wallet's payment instrument.
    pub payment_instrument_id: String,
    /// The tool whose call hit the 402.
    pub tool_name: String,
    /// The tool call.
    pub tool_use_id: String,
    /// The signing attempt for this tool call, from 1.
    pub attempt: u32,
}

/// Parses an authorize event. The 402's entries are kept as received: each is judged on its own,
/// so one malformed entry does not hide the others.
pub fn parse_authorize(event: &Value) -> Result<AuthorizeRequest, FieldProblem> {
    let obj = event
        .as_object()
        .ok_or_else(|| problem("event", "must be a JSON object"))?;
    if let Some(unknown) = obj
        .keys()
        .find(|k| !KNOWN_FIELDS.contains(&k.as_str()) && k.as_str() != ATTEMPT)
    {
        return Err(unknown_field(unknown, "is not a known field"));
    }
    match obj.get("version") {
        Some(Value::String(v)) if v == EVENT_VERSION => {}
        Some(_) => return Err(problem("version", "must be the string \"1\"")),
        None => return Err(problem("version", "is required")),
    }
    let x402_version = match obj.get("x402Version").and_then(Value::as_u64) {
        Some(v @ (1 | 2)) => v,
        Some(_) | None if obj.contains_key("x402Version") => {
            return Err(problem("x402Version", "must be the number 1 or 2"))
        }
        _ => return Err(problem("x402Version", "is required")),
    };
    let offer = match (x402_version, obj.get("body"), obj.get("paymentRequired")) {
        (1, Some(Value::Object(body)), None) => body.clone(),
        (1, Some(_), None) => {
            return Err(problem("body", "must be the 402's JSON body (an object)"))
        }
        (1, _, _) => {
            return Err(problem(
                "body",
                "is required for x402 v1 (the 402's JSON body), and paymentRequired is not",
            ))
        }
        (_, None, Some(Value::String(header))) => {
            match base64_json_object(header, "paymentRequired") {
                Ok(Value::Object(offer)) => offer,
                _ => {
                    return Err(problem(
                        "paymentRequired",
                        "must be the PAYMENT-REQUIRED header value (base64 of a JSON object)",
                    ))
                }
            }
        }
        (_, None, Some(_)) => {
            return Err(problem(
                "paymentRequired",
                "must be the PAYMENT-REQUIRED header value (a string)",
            ))
        }
        _ => {
            return Err(problem(
                "paymentRequired",
                "is required for x402 v2 (the PAYMENT-REQUIRED header value), and body is not",
            ))
        }
    };
    // The 402 says which version it speaks; the event may not say another.
    if offer.get("x402Version").and_then(Value::as_u64) != Some(x402_version) {
        let field = if x402_version == 1 {
            "body"
        } else {
            "paymentRequired"
        };
        return Err(problem(
            field,
            "must carry the same x402Version as the event's x402Version",
        ));
    }
    let entries = accepts(&offer)?;
    // v2 declares the resource once, as {url, ...}; one declared in another shape cannot be held
    // against requestUrl, so it is refused rather than taken as declaring none. (v1 entries
    // declare their own, checked with each entry.)
    let resource = match (x402_version, offer.get("resource")) {
        (2, Some(Value::Object(r))) => match r.get("url") {
            Some(Value::String(url)) => Some(url.clone()),
            _ => {
                return Err(problem(
                    "paymentRequired",
                    "resource.url must be the resource's URL (a string)",
                ))
            }
        },
        (2, Some(_)) => {
            return Err(problem(
                "paymentRequired",
                "resource must be an object with a url",
            ))
        }
        _ => None,
    };
    let request_url = string_field(obj, "requestUrl", false)?
        .map(|text| {
            HttpUrl::parse(&text).map_err(|p| FieldProblem {
                field: "requestUrl".into(),
                problem: p.to_string(),
            })
        })
        .transpose()?;
    let tool_use_id = string_field(obj, "toolUseId", true)?.unwrap_or_default();
    check_identifier("toolUseId", &tool_use_id)?;
    let attempt = match obj.get(ATTEMPT).and_then(Value::as_u64) {
        Some(a @ 1..=MAX_ATTEMPT) => a as u32,
        _ if obj.contains_key(ATTEMPT) => {
            return Err(problem(ATTEMPT, "must be an integer from 1 to 100"))
        }
        _ => return Err(problem(ATTEMPT, "is required")),
    };
    let resource_object = offer.get("resource").filter(|_| x402_version == 2).cloned();
    Ok(AuthorizeRequest {
        x402_version,
        entries,
        resource,
        resource_object,
        request_url,
        user_id: identifier(obj, "userId")?,
        agent_id: identifier(obj, "agentId")?,
        payment_session_id: identifier(obj, "paymentSessionId")?,
        payment_instrument_id: identifier(obj, "paymentInstrumentId")?,
        tool_name: identifier(obj, "toolName")?,
        tool_use_id,
        attempt,
    })
}

fn accepts(offer: &Map<String, Value>) -> Result<Vec<Value>, FieldProblem> {
    match offer.get("accepts") {
        Some(Value::Array(entries)) if entries.is_empty() => {
            Err(problem("accepts", "offers no payment option"))
        }
        Some(Value::Array(entries)) if entries.len() > MAX_ENTRIES => {
            Err(problem("accepts", "offers more than 16 payment options"))
        }
        Some(Value::Array(entries)) => Ok(entries.clone()),
        Some(_) => Err(problem("accepts", "must be a list of payment options")),
        None => Err(problem("accepts", "is required")),
    }
}

impl AuthorizeRequest {
    /// The verify request for entry `index`: its paymentId from the documented layout, the entry
    /// as received, and this call's context. `None` when the entry has no paymentId (it holds a
    /// float, which no x402 entry does: it is then refused as a malformed requirement).
    pub fn verify_request(&self, index: usize) -> Option<VerifyRequest> {
        let entry = self.entries.get(index)?;
        let payment_id = payment_id(
            &self.payment_session_id,
            &self.tool_use_id,
            entry,
            self.attempt,
        )
        .ok()?;
        Some(VerifyRequest {
            payment_id,
            payment_type: PAYMENT_TYPE_X402.to_string(),
            x402_version: self.x402_version,
            requirement: entry.clone(),
            resource: self.resource.clone(),
            request_url: self.request_url.clone(),
            user_id: self.user_id.clone(),
            payment_session_id: self.payment_session_id.clone(),
            payment_instrument_id: self.payment_instrument_id.clone(),
            agent_id: self.agent_id.clone(),
            tool_name: self.tool_name.clone(),
            tool_use_id: Some(self.tool_use_id.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde_json::json;

    fn entry(amount: &str) -> Value {
        json!({"scheme": "exact", "network": "eip155:84532", "amount": amount,
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "maxTimeoutSeconds": 60,
            "extra": {"name": "USDC", "version": "2"}})
    }

    fn v2_event(offer: &Value) -> Value {
        json!({"version": "1", "x402Version": 2,
            "paymentRequired": STANDARD.encode(offer.to_string()),
            "requestUrl": "https://api.weather.example/v2/forecast",
            "userId": "user-alice", "agentId": "agent-research", "paymentSessionId": "ps-alice-main",
            "paymentInstrumentId": "pi-wallet-1", "toolName": "http_request",
            "toolUseId": "tooluse-1", "attempt": 1})
    }

    fn offer() -> Value {
        json!({"x402Version": 2, "resource": {"url": "https://api.weather.example/v2/forecast"},
            "accepts": [entry("10000"), entry("20000"), {"scheme": "exact"}]})
    }

    #[test]
    fn a_v2_event_keeps_every_entry_as_received_and_the_declared_resource() {
        let r = parse_authorize(&v2_event(&offer())).unwrap();
        assert_eq!(r.entries.len(), 3);
        assert_eq!(r.entries[2], json!({"scheme": "exact"}));
        assert_eq!(
            r.resource.as_deref(),
            Some("https://api.weather.example/v2/forecast")
        );
        assert_eq!(r.attempt, 1);
        let v = r.verify_request(0).unwrap();
        // the paymentId is the plugin's layout over this entry
        assert_eq!(
            v.payment_id,
            payment_id("ps-alice-main", "tooluse-1", &entry("10000"), 1).unwrap()
        );
        assert_ne!(v.payment_id, r.verify_request(1).unwrap().payment_id);
        assert_eq!(v.tool_use_id.as_deref(), Some("tooluse-1"));
    }

    #[test]
    fn a_v1_event_takes_the_body_object() {
        let mut e = v2_event(&offer());
        let obj = e.as_object_mut().unwrap();
        obj.remove("paymentRequired");
        obj.insert("x402Version".into(), json!(1));
        obj.insert(
            "body".into(),
            json!({"x402Version": 1, "accepts": [entry("1")]}),
        );
        let r = parse_authorize(&e).unwrap();
        assert_eq!((r.x402_version, r.entries.len(), r.resource), (1, 1, None));
    }

    #[test]
    fn malformed_events_name_the_field() {
        let base = v2_event(&offer());
        let cases: Vec<(&str, Value, &str)> = vec![
            ("an unknown field", json!({"extra": 1}), "extra"),
            ("no attempt", json!({"attempt": null}), "attempt"),
            ("attempt 0", json!({"attempt": 0}), "attempt"),
            ("attempt 101", json!({"attempt": 101}), "attempt"),
            ("version 2", json!({"version": "2"}), "version"),
            ("x402Version 3", json!({"x402Version": 3}), "x402Version"),
            ("a body for v2", json!({"body": {}}), "paymentRequired"),
            (
                "header not base64",
                json!({"paymentRequired": "%%%"}),
                "paymentRequired",
            ),
            (
                "bad requestUrl",
                json!({"requestUrl": "https:host"}),
                "requestUrl",
            ),
            ("no toolUseId", json!({"toolUseId": null}), "toolUseId"),
            ("bad userId", json!({"userId": "a b"}), "userId"),
        ];
        for (what, patch, field) in cases {
            let mut e = base.clone();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    e.as_object_mut().unwrap().remove(k);
                } else {
                    e[k] = v.clone();
                }
            }
            assert_eq!(parse_authorize(&e).unwrap_err().field, field, "{what}");
        }
        for offer in [
            json!({"x402Version": 1, "accepts": [entry("1")]}),
            json!({"accepts": [entry("1")]}),
            json!({"x402Version": "2", "accepts": [entry("1")]}),
        ] {
            assert_eq!(
                parse_authorize(&v2_event(&offer)).unwrap_err().field,
                "paymentRequired",
                "{offer}"
            );
        }
        let mut v1_says_2 = base.clone();
        let obj = v1_says_2.as_object_mut().unwrap();
        obj.remove("paymentRequired");
        obj.insert("x402Version".into(), json!(1));
        obj.insert(
            "body".into(),
            json!({"x402Version": 2, "accepts": [entry("1")]}),
        );
        assert_eq!(parse_authorize(&v1_says_2).unwrap_err().field, "body");
        let too_many = json!({"x402Version": 2, "accepts": vec![entry("1"); MAX_ENTRIES + 1]});
        assert_eq!(
            parse_authorize(&v2_event(&too_many)).unwrap_err().field,
            "accepts"
        );
        let none = json!({"x402Version": 2, "accepts": []});
        assert_eq!(
            parse_authorize(&v2_event(&none)).unwrap_err().field,
            "accepts"
        );
    }

    #[test]
    fn a_v2_offer_declaring_its_resource_in_another_shape_is_refused_not_taken_as_declaring_none() {
        for resource in [
            json!("https://evil.example/v2/forecast"),
            json!({"url": 5, "href": "https://evil.example/v2/forecast"}),
            json!({"href": "https://evil.example/v2/forecast"}),
        ] {
            let offer = json!({"x402Version": 2, "resource": resource,
                "accepts": [entry("10000")]});
            let refused = parse_authorize(&v2_event(&offer)).unwrap_err();
            assert_eq!(refused.field, "paymentRequired", "{resource}");
            assert!(!refused.problem.contains("evil"), "{resource}");
        }
        let undeclared = json!({"x402Version": 2, "accepts": [entry("10000")]});
        assert!(parse_authorize(&v2_event(&undeclared))
            .unwrap()
            .resource
            .is_none());
    }
}
