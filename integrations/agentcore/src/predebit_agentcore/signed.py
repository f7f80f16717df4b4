"""The post-sign check: read what ProcessPayment signed and compare it with the approved payment.

Two things are read, both before anything leaves the process:

* the scheme payload ProcessPayment returned (``paymentOutput.cryptoX402.payload``): EIP-3009
  ``{signature, authorization}`` or Permit2 ``{signature, permit2Authorization}``, as x402's
  ``exact`` EVM scheme defines them (``specs/schemes/exact/scheme_exact_evm.md``);
* the ``PaymentPayload`` the SDK encodes from it into the payment header: v1
  ``{x402Version, scheme, network, payload}``, v2 ``{x402Version, resource, accepted, payload}``
  (``bedrock_agentcore.payments.manager.PaymentManager._build_payment_header``; @x402/core's
  ``x402Client.createPaymentPayload`` produces the same shapes).

An EIP-3009 authorization does not name its token or chain: both are in the EIP-712 domain the
signature covers. The network and token the merchant is told are the header's (v1 ``network``;
v2 ``accepted.network`` and ``accepted.asset``), so those are read there and checked against the
approved hold. The SDK always writes them, so a header without them is refused.

Decoding follows ``predebit x402 decode`` (``crates/core/src/x402/payment.rs``): uint256 fields are
decimal or ``0x`` hex strings (timestamps may also be JSON integers, amounts may not); Permit2's
inclusive ``deadline`` becomes an exclusive ``validBefore`` (deadline + 1). Solana transactions are
not decoded: the plugin declines Solana payments before anything is signed. Messages name the
field that differs, never a value.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# x402's current x402ExactPermit2Proxy (CREATE2, the same address on every EVM chain): the
# default Permit2 spender an `exact` payment may name (PredebitConfig.permit2_proxies).
X402_EXACT_PERMIT2_PROXY = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001"
DEFAULT_PERMIT2_PROXIES: tuple[str, ...] = (X402_EXACT_PERMIT2_PROXY,)

# x402 v1 network names and their CAIP-2 ids: the same table as crates/core/src/network.rs
# (V1_NETWORKS), which tests/test_signed.py holds this one to.
V1_NETWORKS: dict[str, str] = {
    "base": "eip155:8453",
    "base-sepolia": "eip155:84532",
    "avalanche": "eip155:43114",
    "avalanche-fuji": "eip155:43113",
    "polygon": "eip155:137",
    "polygon-amoy": "eip155:80002",
    "sei": "eip155:1329",
    "sei-testnet": "eip155:1328",
    "iotex": "eip155:4689",
    "abstract": "eip155:2741",
    "abstract-testnet": "eip155:11124",
    "peaq": "eip155:3338",
    "story": "eip155:1514",
    "educhain": "eip155:41923",
    "skale-base-sepolia": "eip155:324705682",
    "solana": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
    "solana-devnet": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
}

_DECIMAL = re.compile(r"^[0-9]+$")
_HEX = re.compile(r"^0[xX][0-9a-fA-F]+$")
_EVM_ADDRESS = re.compile(r"^0[xX][0-9a-fA-F]{40}$")
_UINT256_MAX = (1 << 256) - 1
_U64_MAX = 2**64 - 1


class SignedPayloadError(ValueError):
    """The signed payload is malformed or differs from the approved payment (message names the field)."""


@dataclass(frozen=True)
class Approved:
    """The payment predebit approved and holds: the terms a signature must commit to.

    ``network`` is CAIP-2 and ``asset`` the token address, both as the ledger's hold has them.
    """

    pay_to: str
    amount_atomic: str
    network: str
    asset: str | None
    max_timeout_seconds: int


@dataclass(frozen=True)
class SignedTerms:
    """The terms a scheme payload's signature commits to."""

    kind: str  # "eip3009" | "permit2"
    to: str
    value: str
    valid_before: int
    asset: str | None = None  # Permit2's permitted.token; EIP-3009 carries none
    spender: str | None = None


@dataclass(frozen=True)
class PaymentClaims:
    """The network and token a PaymentPayload tells the merchant (None where it carries none)."""

    network: str | None
    asset: str | None


def caip2(network: str) -> str:
    """A v1 network name's CAIP-2 id; a CAIP-2 id (or an unknown name) unchanged."""
    return V1_NETWORKS.get(network, network)


def _uint(obj: Mapping[str, Any], path: str, name: str, allow_int: bool) -> int:
    value = obj.get(name)
    if isinstance(value, bool):
        raise SignedPayloadError(f"{path}.{name}: must be a string of decimal digits")
    if isinstance(value, int) and allow_int:
        n = value
    elif isinstance(value, str) and _DECIMAL.match(value):
        n = int(value, 10)
    elif isinstance(value, str) and _HEX.match(value):
        n = int(value, 16)
    else:
        raise SignedPayloadError(f"{path}.{name}: must be a decimal or 0x hex string")
    if n < 0 or n > _UINT256_MAX:
        raise SignedPayloadError(f"{path}.{name}: out of uint256 range")
    return n


def _address(obj: Mapping[str, Any], path: str, name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not _EVM_ADDRESS.match(value):
        raise SignedPayloadError(f"{path}.{name}: must be a 0x EVM address")
    return value


def _text(obj: Mapping[str, Any], path: str, name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise SignedPayloadError(f"{path}.{name}: must be a non-empty string")
    return value


def _object(obj: Mapping[str, Any], path: str, name: str) -> Mapping[str, Any]:
    value = obj.get(name)
    if not isinstance(value, Mapping):
        raise SignedPayloadError(f"{path}.{name}: must be a JSON object")
    return value


def decode_evm_payload(payload: Any) -> SignedTerms:
    """Decodes an EVM `exact` scheme payload: EIP-3009 ``authorization`` or ``permit2Authorization``.

    A payload carrying both is refused: which one a facilitator settles would be its choice.
    """
    if not isinstance(payload, Mapping):
        raise SignedPayloadError("payload: must be a JSON object")
    if "authorization" in payload and "permit2Authorization" in payload:
        raise SignedPayloadError(
            "payload: carries both authorization (EIP-3009) and permit2Authorization; exactly one is allowed"
        )
    if "authorization" in payload:
        auth = _object(payload, "payload", "authorization")
        path = "payload.authorization"
        return SignedTerms(
            kind="eip3009",
            to=_address(auth, path, "to"),
            value=str(_uint(auth, path, "value", allow_int=False)),
            valid_before=min(_uint(auth, path, "validBefore", allow_int=True), _U64_MAX),
        )
    if "permit2Authorization" in payload:
        auth = _object(payload, "payload", "permit2Authorization")
        path = "payload.permit2Authorization"
        permitted = _object(auth, path, "permitted")
        witness = _object(auth, path, "witness")
        deadline = _uint(auth, path, "deadline", allow_int=True)
        return SignedTerms(
            kind="permit2",
            to=_address(witness, f"{path}.witness", "to"),
            value=str(_uint(permitted, f"{path}.permitted", "amount", allow_int=False)),
            # Permit2 accepts block.timestamp == deadline; predebit expiries are exclusive.
            valid_before=min(deadline + 1, _U64_MAX),
            asset=_address(permitted, f"{path}.permitted", "token"),
            spender=_address(auth, path, "spender"),
        )
    raise SignedPayloadError("payload: an EVM payload must carry authorization (EIP-3009) or permit2Authorization")


def check_against_approved(
    terms: SignedTerms,
    approved: Approved,
    *,
    now: int,
    slack_seconds: int,
    permit2_proxies: tuple[str, ...] = DEFAULT_PERMIT2_PROXIES,
) -> None:
    """Raises SignedPayloadError naming the first signed term that differs from the approved payment."""
    if terms.to.lower() != approved.pay_to.lower():
        raise SignedPayloadError("signed recipient differs from the approved payTo")
    if terms.value != str(int(approved.amount_atomic)):
        raise SignedPayloadError("signed amount differs from the approved amount")
    if terms.valid_before <= now:
        raise SignedPayloadError("signed authorization is already expired")
    if terms.valid_before > now + approved.max_timeout_seconds + slack_seconds:
        raise SignedPayloadError("signed authorization outlives the requirement's maxTimeoutSeconds")
    if terms.kind == "permit2":
        if approved.asset is None or terms.asset is None or terms.asset.lower() != approved.asset.lower():
            raise SignedPayloadError("signed Permit2 token differs from the approved asset")
        if terms.spender is None or terms.spender.lower() not in {p.lower() for p in permit2_proxies}:
            raise SignedPayloadError("signed Permit2 spender is not a configured Permit2 proxy")


def payment_claims(payment_payload: Mapping[str, Any], path: str) -> PaymentClaims:
    """The network and token a PaymentPayload names: v2 ``accepted.network`` / ``accepted.asset``,
    v1 ``network`` (a v1 PaymentPayload names no token)."""
    if "accepted" in payment_payload:
        accepted = _object(payment_payload, path, "accepted")
        asset = _address(accepted, f"{path}.accepted", "asset") if "asset" in accepted else None
        return PaymentClaims(network=_text(accepted, f"{path}.accepted", "network"), asset=asset)
    network = _text(payment_payload, path, "network") if "network" in payment_payload else None
    asset = _address(payment_payload, path, "asset") if "asset" in payment_payload else None
    return PaymentClaims(network=network, asset=asset)


def check_claims(claims: PaymentClaims, approved: Approved, path: str) -> None:
    """Raises SignedPayloadError when a named network or token differs from the approved one."""
    if claims.network is not None and caip2(claims.network) != approved.network:
        raise SignedPayloadError(f"{path}: the network differs from the approved network")
    if claims.asset is not None and (approved.asset is None or claims.asset.lower() != approved.asset.lower()):
        raise SignedPayloadError(f"{path}: the token differs from the approved asset")


def decode_payment_header(header: Any, x402_version: int) -> Any:
    """The PaymentPayload in a ``{name: value}`` payment header: exactly one header, ``X-PAYMENT``
    (v1) or ``PAYMENT-SIGNATURE`` (v2), whose value is base64 of the JSON (as @x402/core encodes it)."""
    name = "X-PAYMENT" if x402_version == 1 else "PAYMENT-SIGNATURE"
    if not isinstance(header, Mapping) or list(header) != [name]:
        raise SignedPayloadError("header: must be the one payment header of the requirement's x402 version")
    value = header[name]
    try:
        return json.loads(base64.b64decode(value, validate=True))
    except (ValueError, TypeError, binascii.Error) as e:
        raise SignedPayloadError("header: must be base64 of a JSON PaymentPayload") from e


def check_header_payload(
    header_payload: Any,
    signed_payload: Mapping[str, Any],
    terms: SignedTerms,
    approved: Approved,
    x402_version: int,
) -> PaymentClaims:
    """Checks the PaymentPayload the SDK encoded into the payment header, before it is applied.

    It must carry the scheme payload that was checked, unchanged, and name the approved network
    (and, in v2, the approved token, which for EIP-3009 is read only here). Returns what it names.
    """
    path = "header"
    if not isinstance(header_payload, Mapping):
        raise SignedPayloadError(f"{path}: must be a JSON object")
    if header_payload.get("x402Version") != x402_version:
        raise SignedPayloadError(f"{path}.x402Version: differs from the requirement's version")
    if header_payload.get("payload") != signed_payload:
        raise SignedPayloadError(f"{path}.payload: differs from the payload that was checked")
    claims = payment_claims(header_payload, path)
    # The SDK always writes these (v1 `network` from the selected requirement, v2 `accepted`),
    # so a header without them did not come from the SDK's encoder: refuse it.
    if claims.network is None:
        raise SignedPayloadError(f"{path}: names no network")
    if x402_version >= 2 and claims.asset is None:
        raise SignedPayloadError(f"{path}.accepted.asset: names no token")
    check_claims(claims, approved, path)
    if terms.asset is not None and claims.asset is not None and terms.asset.lower() != claims.asset.lower():
        raise SignedPayloadError(f"{path}: the token differs from the signed Permit2 token")
    return claims


def mark_sent_terms(terms: SignedTerms, network: str, asset: str | None) -> dict[str, Any]:
    """The ledger's markSent ``signed`` object, from what was read off the signed payment."""
    signed: dict[str, Any] = {
        "to": terms.to,
        "value": terms.value,
        "network": network,
        "validBefore": terms.valid_before,
    }
    token = terms.asset or asset
    if token is not None:
        signed["asset"] = token
    return signed
