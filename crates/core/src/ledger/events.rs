//! Reading a ledger event's fields: strict, each refusal names the field and never its value.

use serde_json::{Map, Value};

use super::refusals::token_refusal;
use super::responses::{invalid, refused};
use super::{Op, Write};
use crate::address::normalize_address;
use crate::hold::SignedRecord;
use crate::hold_token::{self, HoldClaims};
use crate::keys::KeyRing;
use crate::reason::ReasonCode;
use crate::verify::{is_plain_name, unknown_field};
use crate::x402::parse_atomic_amount;

pub(super) struct Fields<'a> {
    pub(super) op: Op,
    /// The request the event came in (its writes carry it).
    pub(super) request_id: &'a str,
    pub(super) obj: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    pub(super) fn string(&self, field: &str) -> Result<String, Value> {
        match self.obj.get(field) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(invalid(Some(self.op), field, "must not be empty")),
            Some(_) => Err(invalid(Some(self.op), field, "must be a string")),
            None => Err(invalid(Some(self.op), field, "is required")),
        }
    }

    pub(super) fn id(&self, field: &str) -> Result<String, Value> {
        let v = self.string(field)?;
        if v.len() > 256 || !v.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
            return Err(invalid(
                Some(self.op),
                field,
                "must be printable ASCII without spaces or '#'",
            ));
        }
        Ok(v)
    }

    pub(super) fn payment_id(&self) -> Result<String, Value> {
        let v = self.string("paymentId")?;
        if v.len() != 64 || !v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid(
                Some(self.op),
                "paymentId",
                "must be 64 lowercase hex characters",
            ));
        }
        Ok(v)
    }

    /// The hold an op after reserve names (`paymentSessionId`, `paymentId`), once the event's
    /// hold token proves the caller holds it.
    pub(super) fn hold_target(&self, keys: &KeyRing) -> Result<(String, String), Value> {
        let session_id = self.id("paymentSessionId")?;
        let payment_id = self.payment_id()?;
        self.hold_token(keys, &session_id, Some(&payment_id))?;
        Ok((session_id, payment_id))
    }

    /// The hold token reserve returned, checked: its MAC, and that it names this session and
    /// (when given) this payment. Missing, forged or for another hold: TOKEN_INVALID.
    pub(super) fn hold_token(
        &self,
        keys: &KeyRing,
        session_id: &str,
        payment_id: Option<&str>,
    ) -> Result<HoldClaims, Value> {
        let op = Some(self.op);
        let token = match self.obj.get("holdToken") {
            Some(Value::String(t)) if !t.is_empty() => t,
            Some(_) => {
                return Err(refused(
                    op,
                    ReasonCode::TokenInvalid,
                    "holdToken must be the string reserve returned",
                ))
            }
            None => {
                return Err(refused(
                    op,
                    ReasonCode::TokenInvalid,
                    "holdToken is required: pass the one reserve returned",
                ))
            }
        };
        let claims = hold_token::verify(token, keys).map_err(|e| token_refusal(self.op, &e))?;
        if claims.payment_session_id != session_id
            || payment_id.is_some_and(|p| p != claims.payment_id)
        {
            return Err(refused(
                op,
                ReasonCode::TokenInvalid,
                "the hold token is for another hold",
            ));
        }
        Ok(claims)
    }

    /// This request's write at `now`.
    pub(super) fn write(&self, now: u64) -> Write<'a> {
        Write {
            request_id: self.request_id,
            now,
        }
    }

    pub(super) fn only(&self, allowed: &[&str]) -> Result<(), Value> {
        match self
            .obj
            .keys()
            .find(|k| !["version", "op"].contains(&k.as_str()) && !allowed.contains(&k.as_str()))
        {
            Some(k) => {
                let p = unknown_field(k, "is not a known field for this op");
                Err(invalid(Some(self.op), &p.field, &p.problem))
            }
            None => Ok(()),
        }
    }
}

/// The caller's copy of the hold's amount (from the reserve response): lets commit and release
/// change the hold and the session in one request. The store's condition checks it, so a wrong
/// value changes nothing.
pub(super) fn amount_hint(f: &Fields<'_>) -> Result<Option<u64>, Value> {
    match f.obj.get("amountMicros") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(Some(f.op), "amountMicros", "must be a non-negative integer")),
    }
}

pub(super) fn parse_signed(f: &Fields<'_>) -> Result<SignedRecord, Value> {
    let op = Some(f.op);
    let Some(Value::Object(s)) = f.obj.get("signed") else {
        return Err(invalid(
            op,
            "signed",
            "must be an object {to, value, network, asset?, validBefore, nonce?}",
        ));
    };
    if let Some(k) = s.keys().find(|k| {
        !["to", "value", "network", "asset", "validBefore", "nonce"].contains(&k.as_str())
    }) {
        // Named only when plain, as at the top level: a key is the caller's text.
        return Err(if is_plain_name(k) {
            invalid(op, &format!("signed.{k}"), "is not a known field")
        } else {
            invalid(op, "signed", "has a field that is not known")
        });
    }
    let text = |name: &str| -> Result<String, Value> {
        match s.get(name) {
            Some(Value::String(v)) if !v.is_empty() && v.len() <= 128 => Ok(v.clone()),
            Some(_) => Err(invalid(
                op,
                &format!("signed.{name}"),
                "must be a non-empty string",
            )),
            None => Err(invalid(op, &format!("signed.{name}"), "is required")),
        }
    };
    // A v1 network name ("base") names the same network as its CAIP-2 id.
    let network = text("network")?;
    let network = crate::network::v1_network_to_caip2(&network).map_or(network, str::to_string);
    let to = text("to")?;
    let value = parse_atomic_amount(&text("value")?).map_err(|p| invalid(op, "signed.value", p))?;
    let asset = match s.get("asset") {
        None | Some(Value::Null) => None,
        Some(_) => Some(normalize_address(&network, &text("asset")?)),
    };
    let valid_before = match s.get("validBefore") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(v)) => v.parse::<u64>().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        invalid(
            op,
            "signed.validBefore",
            "must be epoch seconds (integer or decimal string)",
        )
    })?;
    let nonce = match s.get("nonce") {
        None | Some(Value::Null) => None,
        Some(_) => {
            let nonce = text("nonce")?.to_ascii_lowercase();
            let hex = nonce.strip_prefix("0x");
            let well_formed = match hex {
                Some(h) => !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()),
                None => nonce.bytes().all(|b| b.is_ascii_digit()),
            };
            if !well_formed {
                return Err(invalid(
                    op,
                    "signed.nonce",
                    "must be 0x-hex or decimal digits",
                ));
            }
            Some(nonce)
        }
    };
    Ok(SignedRecord {
        to: normalize_address(&network, &to),
        value,
        network,
        asset,
        valid_before,
        nonce,
    })
}
