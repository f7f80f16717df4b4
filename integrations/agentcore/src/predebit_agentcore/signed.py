"""The post-sign check: decode what ProcessPayment signed and compare it with the approved payment.

Decoding follows ``predebit x402 decode`` (``crates/core/src/x402/payment.rs``) and is tested
against the same vectors (``crates/core/tests/vectors/x402``): uint256 fields are decimal or
``0x`` hex strings (timestamps may also be JSON integers, amounts may not); Permit2's inclusive
``deadline`` becomes an exclusive ``validBefore`` (deadline + 1). Solana transactions are not
decoded: the plugin declines Solana payments before anything is signed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# x402's Permit2 proxy (x402ExactPermit2Proxy), the only spender an `exact` Permit2 payment may name.
X402_PERMIT2_PROXY = "0x4020615294c913F045dc10f0a5cdEbd86c280001"

_DECIMAL = re.compile(r"^[0-9]+$")
_HEX = re.compile(r"^0[xX][0-9a-fA-F]+$")
_UINT256_MAX = (1 << 256) - 1


class SignedPayloadError(ValueError):
    """The signed payload is malformed or differs from the approved payment (message names the field)."""


@dataclass(frozen=True)
class SignedTerms:
    """The terms a signature commits to."""

    kind: str  # "eip3009" | "permit2"
    to: str
    value: str
    valid_before: int
    asset: str | None = None
    spender: str | None = None

    def for_mark_sent(self, network: str, asset: str | None) -> dict[str, Any]:
        """The ledger's markSent ``signed`` object."""
        signed: dict[str, Any] = {
            "to": self.to,
            "value": self.value,
            "network": network,
            "validBefore": self.valid_before,
        }
        if self.asset or asset:
            signed["asset"] = self.asset or asset
        return signed


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
    if not isinstance(value, str) or not re.match(r"^0[xX][0-9a-fA-F]{40}$", value):
        raise SignedPayloadError(f"{path}.{name}: must be a 0x EVM address")
    return value


def _object(obj: Mapping[str, Any], path: str, name: str) -> Mapping[str, Any]:
    value = obj.get(name)
    if not isinstance(value, Mapping):
        raise SignedPayloadError(f"{path}.{name}: must be a JSON object")
    return value


def decode_evm_payload(payload: Any) -> SignedTerms:
    """Decodes an EVM `exact` scheme payload (EIP-3009 ``authorization`` or ``permit2Authorization``)."""
    if not isinstance(payload, Mapping):
        raise SignedPayloadError("payload: must be a JSON object")
    if "authorization" in payload:
        auth = _object(payload, "payload", "authorization")
        path = "payload.authorization"
        return SignedTerms(
            kind="eip3009",
            to=_address(auth, path, "to"),
            value=str(_uint(auth, path, "value", allow_int=False)),
            valid_before=min(_uint(auth, path, "validBefore", allow_int=True), 2**64 - 1),
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
            valid_before=min(deadline + 1, 2**64 - 1),
            asset=_address(permitted, f"{path}.permitted", "token"),
            spender=_address(auth, path, "spender"),
        )
    raise SignedPayloadError("payload: an EVM payload must carry authorization (EIP-3009) or permit2Authorization")


def check_against_approved(
    terms: SignedTerms,
    *,
    pay_to: str,
    amount_atomic: str,
    asset: str | None,
    max_timeout_seconds: int,
    now: int,
    slack_seconds: int,
    permit2_spender: str = X402_PERMIT2_PROXY,
) -> None:
    """Raises SignedPayloadError naming the first signed term that differs from the approved payment."""
    if terms.to.lower() != pay_to.lower():
        raise SignedPayloadError("signed recipient differs from the approved payTo")
    if terms.value != str(int(amount_atomic)):
        raise SignedPayloadError("signed amount differs from the approved amount")
    if terms.valid_before <= now:
        raise SignedPayloadError("signed authorization is already expired")
    if terms.valid_before > now + max_timeout_seconds + slack_seconds:
        raise SignedPayloadError("signed authorization outlives the requirement's maxTimeoutSeconds")
    if terms.kind == "permit2":
        if asset is None or terms.asset is None or terms.asset.lower() != asset.lower():
            raise SignedPayloadError("signed Permit2 token differs from the approved asset")
        if terms.spender is None or terms.spender.lower() != permit2_spender.lower():
            raise SignedPayloadError("signed Permit2 spender is not the x402 Permit2 proxy")
