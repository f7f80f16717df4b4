"""x402 `exact` EVM payloads signed as @x402/evm 2.27.0 signs them, with eth_account.

Two transfer methods, chosen by the requirement's `extra.assetTransferMethod`:
- `eip3009` (the default): EIP-3009 `TransferWithAuthorization`, EIP-712 domain
  {name, version from `extra`, chainId, verifyingContract = the asset};
- `permit2`: Permit2 `PermitWitnessTransferFrom` with the x402ExactPermit2Proxy as spender and the
  witness `Witness(address to,uint256 validAfter)`, domain {name "Permit2", chainId,
  verifyingContract = the canonical Permit2 contract}.

The payload shapes and key order are those of crates/core/tests/vectors/x402/signed/*.json; given
the same nonce and clock these functions reproduce those fixtures' signatures byte for byte
(tests/test_signing.py).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

PERMIT2_ADDRESS = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
X402_EXACT_PERMIT2_PROXY = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001"

# @x402/evm 2.27.0: the v1 scheme back-dates validAfter by 600 s; the v2 schemes sign validAfter 0
# (the signed fixtures show both).
V1_VALID_AFTER_BACKDATE_SECONDS = 600

_EIP3009_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ],
}

_PERMIT2_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "PermitWitnessTransferFrom": [
        {"name": "permitted", "type": "TokenPermissions"},
        {"name": "spender", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
        {"name": "witness", "type": "Witness"},
    ],
    "TokenPermissions": [
        {"name": "token", "type": "address"},
        {"name": "amount", "type": "uint256"},
    ],
    "Witness": [
        {"name": "to", "type": "address"},
        {"name": "validAfter", "type": "uint256"},
    ],
}


@dataclass(frozen=True)
class Terms:
    """What one signature authorizes. Addresses are checksummed; amounts are atomic units."""

    method: str  # "eip3009" | "permit2"
    chain_id: int
    asset: str
    pay_to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: str  # eip3009: 0x + 64 hex; permit2: a decimal uint256
    token_name: str = ""  # eip3009 domain
    token_version: str = ""  # eip3009 domain
    spender: str = X402_EXACT_PERMIT2_PROXY  # permit2


def new_nonce(method: str) -> str:
    """A fresh random nonce in the method's form, as @x402/evm makes it."""
    raw = secrets.token_bytes(32)
    return "0x" + raw.hex() if method == "eip3009" else str(int.from_bytes(raw, "big"))


def valid_after(x402_version: int, now: int) -> int:
    """The validAfter @x402/evm 2.27.0 signs for this protocol version."""
    return now - V1_VALID_AFTER_BACKDATE_SECONDS if x402_version == 1 else 0


def typed_data(signer: str, terms: Terms) -> dict[str, Any]:
    """The EIP-712 typed data (eth_account's full_message form) that a signature covers."""
    if terms.method == "eip3009":
        return {
            "types": _EIP3009_TYPES,
            "primaryType": "TransferWithAuthorization",
            "domain": {
                "name": terms.token_name,
                "version": terms.token_version,
                "chainId": terms.chain_id,
                "verifyingContract": terms.asset,
            },
            "message": {
                "from": signer,
                "to": terms.pay_to,
                "value": terms.value,
                "validAfter": terms.valid_after,
                "validBefore": terms.valid_before,
                "nonce": bytes.fromhex(terms.nonce[2:]),
            },
        }
    return {
        "types": _PERMIT2_TYPES,
        "primaryType": "PermitWitnessTransferFrom",
        "domain": {"name": "Permit2", "chainId": terms.chain_id, "verifyingContract": PERMIT2_ADDRESS},
        "message": {
            "permitted": {"token": terms.asset, "amount": terms.value},
            "spender": terms.spender,
            "nonce": int(terms.nonce),
            "deadline": terms.valid_before,
            "witness": {"to": terms.pay_to, "validAfter": terms.valid_after},
        },
    }


def sign(account: LocalAccount, terms: Terms) -> dict[str, Any]:
    """The x402 `exact` payload (the `payload` member of a PaymentPayload) for these terms."""
    signable = encode_typed_data(full_message=typed_data(account.address, terms))
    signature = "0x" + bytes(account.sign_message(signable).signature).hex()
    if terms.method == "eip3009":
        return {
            "authorization": {
                "from": account.address,
                "to": terms.pay_to,
                "value": str(terms.value),
                "validAfter": str(terms.valid_after),
                "validBefore": str(terms.valid_before),
                "nonce": terms.nonce,
            },
            "signature": signature,
        }
    return {
        "signature": signature,
        "permit2Authorization": {
            "from": account.address,
            "permitted": {"token": terms.asset, "amount": str(terms.value)},
            "spender": terms.spender,
            "nonce": terms.nonce,
            "deadline": str(terms.valid_before),
            "witness": {"to": terms.pay_to, "validAfter": str(terms.valid_after)},
        },
    }


def terms_of_payload(
    payload: dict[str, Any], chain_id: int, asset: str, token_name: str = "", token_version: str = ""
) -> Terms:
    """Reads the signed terms back out of a payload (the inverse of `sign`, for checks).

    An EIP-3009 payload does not carry its chain, asset or token domain (they are in the EIP-712
    domain only), so the caller gives them; a Permit2 payload carries its token.
    """
    if "authorization" in payload:
        a = payload["authorization"]
        return Terms(
            method="eip3009",
            chain_id=chain_id,
            asset=to_checksum_address(asset),
            pay_to=to_checksum_address(a["to"]),
            value=int(a["value"]),
            valid_after=int(a["validAfter"]),
            valid_before=int(a["validBefore"]),
            nonce=a["nonce"],
            token_name=token_name,
            token_version=token_version,
        )
    p = payload["permit2Authorization"]
    return Terms(
        method="permit2",
        chain_id=chain_id,
        asset=to_checksum_address(p["permitted"]["token"]),
        pay_to=to_checksum_address(p["witness"]["to"]),
        value=int(p["permitted"]["amount"]),
        valid_after=int(p["witness"]["validAfter"]),
        valid_before=int(p["deadline"]),
        nonce=p["nonce"],
        spender=to_checksum_address(p["spender"]),
    )


def recover(signer_claimed: str, terms: Terms, signature: str) -> str:
    """The address that signed these terms with this signature (EIP-712 recovery)."""
    signable = encode_typed_data(full_message=typed_data(to_checksum_address(signer_claimed), terms))
    return str(Account.recover_message(signable, signature=signature))
