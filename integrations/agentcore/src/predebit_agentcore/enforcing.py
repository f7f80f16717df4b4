"""Enforcing mode: predebit's authorize function signs; the agent's own role cannot.

The SDK's ``after_tool_call`` turns a 402 into ``payment_required_request`` ({statusCode, headers,
body}) and asks its ``PaymentManager.generate_payment_header`` for the header to retry with. In
enforcing mode the plugin replaces that method on its manager instance: the 402 goes to authorize
as received (``authorize_event``), and authorize chooses the entry, decides, reserves, has AgentCore
sign (clientToken = paymentId), checks the signature and marks the hold SENT, all in one call. The
plugin only checks the answer (``read_answer``) and hands the header back to the SDK, which applies
it and retries the tool.

authorize's answer is treated as untrusted input like the merchant's: the header must be the one the
402's x402 version names (``X-PAYMENT`` for v1, ``PAYMENT-SIGNATURE`` for v2), plain base64 of a JSON
PaymentPayload, and it must pay one of the 402's own ``accepts`` entries, unchanged, under the
paymentId authorize reported (which the plugin recomputes from that entry), with the signed terms
(payee, amount, expiry, Permit2 token and spender, network) matching that entry. Messages name
fields, never values; no header, hold token or user id is logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    PAYMENT_TYPE_NOT_SUPPORTED,
    REQUIREMENT_INVALID,
    SIGNED_PAYLOAD_MISMATCH,
    VERIFIER_UNAVAILABLE,
    PredebitDeclined,
)
from .payment_id import payment_id
from .signed import (
    DEFAULT_PERMIT2_PROXIES,
    Approved,
    PaymentClaims,
    SignedPayloadError,
    SignedTerms,
    caip2,
    check_against_approved,
    check_claims,
    decode_evm_payload,
    payment_claims,
)

# The header each x402 version's paid request carries.
PAYMENT_HEADER_BY_VERSION = {1: "X-PAYMENT", 2: "PAYMENT-SIGNATURE"}
# authorize answers: re-sending the same event continues the same payment (same paymentId).
RETRYABLE_AUTHORIZE_CODES = frozenset({"SIGNER_UNAVAILABLE", "STORE_UNAVAILABLE", "STORE_CONFLICT"})
# A signed x402 exact payment encodes to well under 4 KiB; anything far larger is not one.
MAX_HEADER_VALUE_CHARS = 16 * 1024
MAX_HOLD_TOKEN_CHARS = 4096
MAX_MESSAGE_CHARS = 500

_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_PAYMENT_ID = re.compile(r"^[0-9a-f]{64}$")
_TOKEN = re.compile(r"^v1\.[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_REASON_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_VERIFICATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_DIGITS = re.compile(r"^[0-9]{1,78}$")

MALFORMED_OFFER = "The 402 carries no x402 offer the plugin can read (a v2 PAYMENT-REQUIRED header or a v1 JSON body)."
MPP_ONLY = "predebit does not support MPP payments yet; the 402 offers no x402 option. Nothing was signed."


@dataclass(frozen=True)
class Offer:
    """A 402's x402 offer: the version, and the fields authorize takes it in, as received."""

    x402_version: int
    wire: dict[str, Any]  # {"body": the v1 JSON object} or {"paymentRequired": the v2 header value}


@dataclass(frozen=True)
class Authorized:
    """A YES from authorize that the plugin checked: the header to send and the hold it is SENT on."""

    payment_id: str
    entry: Mapping[str, Any]
    terms: SignedTerms
    claims: PaymentClaims
    amount_micros: int | None
    verification_id: str | None
    # Out of repr: no log line or traceback that prints an Authorized carries them.
    hold_token: str = field(repr=False)
    header: dict[str, str] = field(repr=False)


def _header_values(headers: Any, name: str) -> list[Any]:
    if not isinstance(headers, Mapping):
        return []
    return [value for key, value in headers.items() if isinstance(key, str) and key.lower() == name]


def _json_object(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    if isinstance(value, (str, bytes)):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return None


def _version(obj: Mapping[str, Any]) -> int | None:
    version = obj.get("x402Version")
    return version if type(version) is int and version in (1, 2) else None


def read_offer(payment_required_request: Any, mpp_offered: bool = False) -> Offer:
    """The 402's x402 offer as authorize takes it: the v2 ``PAYMENT-REQUIRED`` header value untouched
    (authorize decodes and judges it), or the v1 body as its JSON object.

    A v2 offer with no header (x402's MCP transport carries it as the result's structured content) is
    passed as base64 of its JSON, the header's own encoding. Raises PredebitDeclined when there is no
    x402 offer (MPP only: PAYMENT_TYPE_NOT_SUPPORTED), before authorize is called.
    """
    request = payment_required_request if isinstance(payment_required_request, Mapping) else {}
    headers = _header_values(request.get("headers"), "payment-required")
    if len(headers) > 1:
        raise PredebitDeclined(REQUIREMENT_INVALID, "The 402 carries more than one PAYMENT-REQUIRED header.")
    if headers:
        value = headers[0]
        if not isinstance(value, str) or not value:
            raise PredebitDeclined(REQUIREMENT_INVALID, "The 402's PAYMENT-REQUIRED header is not a string.")
        return Offer(2, {"paymentRequired": value})
    body = _json_object(request.get("body"))
    version = _version(body) if body is not None else None
    if body is None or version is None or "accepts" not in body:
        if mpp_offered:
            raise PredebitDeclined(PAYMENT_TYPE_NOT_SUPPORTED, MPP_ONLY)
        raise PredebitDeclined(REQUIREMENT_INVALID, MALFORMED_OFFER)
    if version == 1:
        return Offer(1, {"body": dict(body)})
    encoded = base64.b64encode(json.dumps(body, separators=(",", ":")).encode("utf-8")).decode("ascii")
    return Offer(2, {"paymentRequired": encoded})


def offered_entries(offer: Offer) -> tuple[list[Mapping[str, Any]], Any]:
    """The offer's ``accepts`` entries (objects only) and, in v2, its ``resource`` as received."""
    if offer.x402_version == 1:
        decoded: Mapping[str, Any] | None = offer.wire["body"]
    else:
        try:
            decoded = _json_object(base64.b64decode(offer.wire["paymentRequired"], validate=True))
        except (ValueError, binascii.Error):
            decoded = None
    if decoded is None:
        return [], None
    accepts = decoded.get("accepts")
    entries = [e for e in accepts if isinstance(e, Mapping)] if isinstance(accepts, list) else []
    return entries, decoded.get("resource")


def authorize_event(
    offer: Offer,
    *,
    request_url: str | None,
    user_id: str,
    agent_id: str,
    payment_session_id: str,
    payment_instrument_id: str,
    tool_name: str,
    tool_use_id: str,
    attempt: int,
) -> dict[str, Any]:
    """The authorize event (``crates/core/src/authorize/event.rs``) for one signing attempt."""
    event: dict[str, Any] = {
        "version": "1",
        "x402Version": offer.x402_version,
        **offer.wire,
        "userId": user_id,
        "agentId": agent_id,
        "paymentSessionId": payment_session_id,
        "paymentInstrumentId": payment_instrument_id,
        "toolName": tool_name,
        "toolUseId": tool_use_id,
        "attempt": attempt,
    }
    if request_url is not None:
        event["requestUrl"] = request_url
    return event


def _malformed(what: str, verification_id: str | None) -> PredebitDeclined:
    return PredebitDeclined(
        VERIFIER_UNAVAILABLE,
        f"authorize's answer cannot be used ({what}); nothing was sent to the merchant.",
        verification_id,
    )


def _mismatch(what: str, verification_id: str | None) -> PredebitDeclined:
    return PredebitDeclined(
        SIGNED_PAYLOAD_MISMATCH,
        f"The signed payment authorize returned does not pay the 402's offer ({what}); it was not sent.",
        verification_id,
    )


def verification_id_of(answer: Mapping[str, Any]) -> str | None:
    value = answer.get("verificationId")
    return value if isinstance(value, str) and _VERIFICATION_ID.match(value) else None


def decline_of(answer: Mapping[str, Any]) -> PredebitDeclined:
    """authorize's NO as the plugin's decline: its reason code and message, when they look like predebit's."""
    code = answer.get("reasonCode")
    message = answer.get("message")
    verification_id = verification_id_of(answer)
    if not isinstance(code, str) or not _REASON_CODE.match(code) or code == "APPROVED":
        return _malformed("no reason code", verification_id)
    text = message[:MAX_MESSAGE_CHARS] if isinstance(message, str) and message.isprintable() else None
    return PredebitDeclined(code, text, verification_id)


def _entry_terms(entry: Mapping[str, Any], x402_version: int) -> Approved:
    """The terms one of the merchant's entries asks to be signed, in the post-sign check's form."""
    amount = entry.get("maxAmountRequired" if x402_version == 1 else "amount")
    pay_to, network, asset = entry.get("payTo"), entry.get("network"), entry.get("asset")
    timeout = entry.get("maxTimeoutSeconds")
    if not (isinstance(pay_to, str) and isinstance(network, str) and isinstance(amount, str) and _DIGITS.match(amount)):
        raise SignedPayloadError("the paid entry lacks payTo, network or amount")
    if type(timeout) is not int or timeout < 0:
        raise SignedPayloadError("the paid entry's maxTimeoutSeconds is not a whole number")
    return Approved(
        pay_to=pay_to,
        amount_atomic=amount,
        network=caip2(network),
        asset=asset if isinstance(asset, str) else None,
        max_timeout_seconds=timeout,
    )


def _paid_entry(
    decoded: Mapping[str, Any],
    entries: list[Mapping[str, Any]],
    x402_version: int,
    pid: str,
    payment_session_id: str,
    tool_use_id: str,
    attempt: int,
) -> Mapping[str, Any] | None:
    """The 402 entry the header pays: v2 ``accepted`` is that entry as received; a v1 header names its
    scheme and network. Either way the entry's own paymentId must be the one authorize reported."""
    for entry in entries:
        if x402_version == 2:
            if decoded.get("accepted") != entry:
                continue
        elif (decoded.get("scheme"), decoded.get("network")) != (entry.get("scheme"), entry.get("network")):
            continue
        try:
            if payment_id(payment_session_id, tool_use_id, entry, attempt) == pid:
                return entry
        except (TypeError, ValueError):
            continue
    return None


def read_answer(
    answer: Any,
    offer: Offer,
    *,
    payment_session_id: str,
    tool_use_id: str,
    attempt: int,
    now: int,
    slack_seconds: int,
    permit2_proxies: tuple[str, ...] = DEFAULT_PERMIT2_PROXIES,
) -> Authorized:
    """Checks authorize's answer; a YES whose header pays the 402's offer, or PredebitDeclined."""
    if not isinstance(answer, Mapping):
        raise _malformed("not a JSON object", None)
    verification_id = verification_id_of(answer)
    if answer.get("decision") != "YES":
        raise decline_of(answer)
    pid = answer.get("paymentId")
    if not isinstance(pid, str) or not _PAYMENT_ID.match(pid):
        raise _malformed("paymentId", verification_id)
    hold_token = answer.get("holdToken")
    if not isinstance(hold_token, str) or len(hold_token) > MAX_HOLD_TOKEN_CHARS or not _TOKEN.match(hold_token):
        raise _malformed("holdToken", verification_id)
    header = answer.get("paymentHeader")
    expected_name = PAYMENT_HEADER_BY_VERSION[offer.x402_version]
    if not isinstance(header, Mapping) or set(header) != {"name", "value"}:
        raise _malformed("paymentHeader must be {name, value}", verification_id)
    if header["name"] != expected_name:
        raise _malformed(f"paymentHeader.name must be {expected_name} for x402 v{offer.x402_version}", verification_id)
    value = header["value"]
    if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE_CHARS or not _BASE64.match(value):
        raise _malformed("paymentHeader.value must be base64", verification_id)
    try:
        decoded = _json_object(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error):
        decoded = None
    if decoded is None:
        raise _malformed("paymentHeader.value must be base64 of a JSON object", verification_id)

    entries, resource = offered_entries(offer)
    try:
        if decoded.get("x402Version") != offer.x402_version or type(decoded.get("x402Version")) is not int:
            raise SignedPayloadError("header.x402Version differs from the 402's")
        entry = _paid_entry(decoded, entries, offer.x402_version, pid, payment_session_id, tool_use_id, attempt)
        if entry is None:
            raise SignedPayloadError("it pays no entry of the 402 under the paymentId authorize reported")
        if offer.x402_version == 2 and resource is not None and decoded.get("resource") != resource:
            raise SignedPayloadError("header.resource differs from the 402's")
        approved = _entry_terms(entry, offer.x402_version)
        terms = decode_evm_payload(decoded.get("payload"))
        check_against_approved(terms, approved, now=now, slack_seconds=slack_seconds, permit2_proxies=permit2_proxies)
        claims = payment_claims(decoded, "header")
        if claims.network is None:
            raise SignedPayloadError("header: names no network")
        check_claims(claims, approved, "header")
        if terms.asset is not None and claims.asset is not None and terms.asset.lower() != claims.asset.lower():
            raise SignedPayloadError("header: the token differs from the signed Permit2 token")
    except SignedPayloadError as e:
        raise _mismatch(str(e), verification_id) from e
    amount = answer.get("amount")
    micros = amount.get("micros") if isinstance(amount, Mapping) else None
    return Authorized(
        payment_id=pid,
        entry=entry,
        terms=terms,
        claims=claims,
        amount_micros=micros if type(micros) is int and micros >= 0 else None,
        verification_id=verification_id,
        hold_token=hold_token,
        header={expected_name: value},
    )
