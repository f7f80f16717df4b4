//! The ledger's answers: the caller-facing views of sessions and holds, successes and refusals.

use serde_json::{json, Value};

use super::Op;
use crate::hold::{Hold, HoldState};
use crate::money::format_usd;
use crate::reason::ReasonCode;
use crate::records::SessionRecord;
use crate::verify::EVENT_VERSION;

/// A malformed event: names the field, never its value.
pub(super) fn invalid(op: Option<Op>, field: &str, problem: &str) -> Value {
    refused(
        op,
        ReasonCode::InvalidRequest,
        &format!("{field}: {problem}"),
    )
}

pub(super) fn refused(op: Option<Op>, reason: ReasonCode, detail: &str) -> Value {
    let message = if detail.is_empty() {
        reason.message().to_string()
    } else {
        format!("{} ({detail})", reason.message())
    };
    json!({
        "version": EVENT_VERSION,
        "op": op.map(Op::as_str),
        "ok": false,
        "reasonCode": reason,
        "message": message,
    })
}

/// The caller-facing view of a session's balances.
pub fn session_view(s: &SessionRecord) -> Value {
    let mut v = json!({
        "paymentSessionId": s.payment_session_id,
        "status": s.status,
        "expiresAt": s.expires_at,
        "limit": format_usd(s.limit_micros),
        "reserved": format_usd(s.reserved_micros),
        "settled": format_usd(s.settled_micros),
        "available": format_usd(s.available_micros),
        "overdraft": format_usd(s.overdraft_micros),
        "limitMicros": s.limit_micros,
        "reservedMicros": s.reserved_micros,
        "settledMicros": s.settled_micros,
        "availableMicros": s.available_micros,
        "overdraftMicros": s.overdraft_micros,
    });
    if let Some(pool) = &s.pool_id {
        v["poolId"] = json!(pool);
        v["returned"] = json!(format_usd(s.returned_micros));
        v["returnedMicros"] = json!(s.returned_micros);
    }
    v
}

/// The caller-facing view of a hold (no MAC, no token digest).
pub fn hold_view(h: &Hold) -> Value {
    let mut v = json!({
        "paymentId": h.payment_id,
        "paymentSessionId": h.payment_session_id,
        "state": h.state,
        "amount": format_usd(h.amount_micros),
        "amountMicros": h.amount_micros,
        "amountAtomic": h.amount_atomic,
        "network": h.network,
        "asset": h.asset,
        "payTo": h.pay_to,
        "auditHash": h.audit_hash,
        "createdAt": h.created_at,
        "expiresAt": h.hold_expires_at,
        "late": h.late,
    });
    let fields = v.as_object_mut().expect("object");
    if let Some(s) = &h.signed {
        fields.insert(
            "signed".into(),
            serde_json::to_value(s).expect("serializes"),
        );
    }
    if let Some(s) = &h.settlement {
        fields.insert(
            "settlement".into(),
            serde_json::to_value(s).expect("serializes"),
        );
    }
    if let Some(r) = &h.void_reason {
        fields.insert("voidReason".into(), json!(r));
    }
    if h.mark_sent_missing {
        fields.insert("markSentMissing".into(), json!(true));
    }
    if h.settlement_failures > 0 {
        fields.insert("settlementFailures".into(), json!(h.settlement_failures));
    }
    if let Some(tx) = &h.pending_transaction {
        fields.insert("pendingTransaction".into(), json!(tx));
    }
    if h.is_upto() {
        fields.insert("scheme".into(), json!(h.scheme));
    }
    if let Some(settled) = h.settled_micros {
        fields.insert("settled".into(), json!(format_usd(settled)));
        fields.insert("settledMicros".into(), json!(settled));
        // What went back (below the hold) or was reported above it.
        fields.insert(
            "returnedMicros".into(),
            json!(h.amount_micros.saturating_sub(settled)),
        );
        if settled > h.amount_micros {
            fields.insert("excessMicros".into(), json!(settled - h.amount_micros));
        }
    }
    v
}

pub(super) fn ok(
    op: Op,
    replayed: bool,
    hold: Option<&Hold>,
    session: Option<&SessionRecord>,
) -> Value {
    let mut v =
        json!({ "version": EVENT_VERSION, "op": op.as_str(), "ok": true, "replayed": replayed });
    let fields = v.as_object_mut().expect("object");
    if let Some(h) = hold {
        fields.insert("hold".into(), hold_view(h));
    }
    if let Some(s) = session {
        fields.insert("session".into(), session_view(s));
    }
    v
}

/// A transition's response: the hold when the store returned it, else what the op set.
pub(super) fn done(op: Op, hold: Option<Box<Hold>>, payment_id: &str, state: HoldState) -> Value {
    match hold {
        Some(h) => ok(op, false, Some(&h), None),
        None => {
            let mut v = ok(op, false, None, None);
            v["hold"] = json!({ "paymentId": payment_id, "state": state });
            v
        }
    }
}
