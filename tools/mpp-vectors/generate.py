"""Writes MPP charge-challenge test vectors with the reference Python SDK (pympp).

Each vector is a WWW-Authenticate value produced by pympp's own encoder
(`Challenge.create(...).to_www_authenticate(realm)`: HMAC-bound id, JCS request,
unpadded base64url), next to the facts the generator put in, which predebit's
parser must read back. Tempo requests go through pympp's route model
(`mpp.methods.tempo.schemas.ChargeInput`, display amount + decimals to base units).
pympp 0.16.0 has no solana method, and its evm model needs eth-utils, so those
requests are written by hand in the shape of their drafts and only encoded by pympp.

Run from the repository root (no network at run time):

    pip install --target /tmp/mppvec -r tools/mpp-vectors/requirements.txt
    PYTHONPATH=/tmp/mppvec python3 tools/mpp-vectors/generate.py

It rewrites crates/core/tests/vectors/mpp/pympp_*.json; the output is deterministic.
"""

import calendar
import json
import pathlib
import time
from importlib.metadata import version

from mpp import Challenge
from mpp.methods.tempo.schemas import ChargeInput

OUT = pathlib.Path("crates/core/tests/vectors/mpp")
SECRET = "predebit-test-vectors"  # fixes the HMAC-bound ids
REALM = "api.example.com"
EXPIRES = "2026-06-01T12:00:00Z"
USDC_E_TEMPO = "0x20C000000000000000000000b9537d11c60E8b50"
PATH_USD = "0x20c0000000000000000000000000000000000000"
RECIPIENT = "0x742d35Cc6634c0532925a3b844bC9e7595F8fE00"  # EIP-55 form
PLATFORM = "0xA1B2C3D4E5F6A1B2C3D4E5F6A1B2C3D4E5F6A1B2"
BASE_USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
SOL_USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
SOL_RECIPIENT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
SOLANA_MAINNET = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"


def epoch(rfc3339):
    return calendar.timegm(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ"))


def challenge(method, intent, request, description=None):
    c = Challenge.create(
        secret_key=SECRET,
        realm=REALM,
        method=method,
        intent=intent,
        request=request,
        expires=EXPIRES,
        description=description,
    )
    expected = {
        "id": c.id,
        "realm": REALM,
        "method": method,
        "intent": intent,
        "request": request,
        "expires": epoch(EXPIRES),
    }
    if description is not None:
        expected["description"] = description
    return c.to_www_authenticate(REALM), expected


def charge(method, network, amount, currency, recipient, buyer_pays_fees, splits=(), **extra):
    out = {
        "method": method,
        "network": network,
        "amount": amount,
        "currency": currency,
        "recipient": recipient,
        "buyerPaysFees": buyer_pays_fees,
        "splits": list(splits),
        "expires": epoch(EXPIRES),
    }
    out.update(extra)
    return out


def tempo(**fields):
    return ChargeInput(**fields).model_dump()


def vectors():
    sponsored = tempo(amount="0.01", currency=USDC_E_TEMPO, recipient=RECIPIENT, chainId=4217, feePayer=True)
    text, ch = challenge("tempo", "charge", sponsored)
    yield "pympp_tempo_charge_sponsored", "tempo charge on Tempo mainnet, fees sponsored by the seller", text, ch, {
        "expected": charge("tempo", "eip155:4217", "10000", USDC_E_TEMPO, RECIPIENT, False)
    }

    description = 'Caf\u00e9 "premium" \\ data, 1 call'
    buyer_pays = tempo(amount="1.5", currency=PATH_USD, recipient=RECIPIENT, chainId=42431)
    text, ch = challenge("tempo", "charge", buyer_pays, description)
    yield "pympp_tempo_charge_buyer_pays_fees", "tempo charge on Tempo testnet, no fee sponsoring, a description needing escapes", text, ch, {
        "expected": charge("tempo", "eip155:42431", "1500000", PATH_USD, RECIPIENT, True)
    }

    with_splits = tempo(
        amount="1",
        currency=USDC_E_TEMPO,
        recipient=RECIPIENT,
        chainId=4217,
        splits=[{"amount": "50000", "recipient": PLATFORM}],
    )
    text, ch = challenge("tempo", "charge", with_splits)
    yield "pympp_tempo_charge_splits", "tempo charge paying a platform split out of the amount", text, ch, {
        "expected": charge(
            "tempo", "eip155:4217", "1000000", USDC_E_TEMPO, RECIPIENT, True,
            splits=[{"recipient": PLATFORM, "amount": "50000"}],
        )
    }

    no_chain = tempo(amount="0.01", currency=USDC_E_TEMPO, recipient=RECIPIENT)
    text, ch = challenge("tempo", "charge", no_chain)
    yield "pympp_tempo_charge_without_chain_id", "tempo charge without chainId: pympp defaults 4217, the draft 42431; predebit refuses", text, ch, {
        "error": {"field": "request.methodDetails.chainId", "kind": "invalid"}
    }

    evm_request = {
        "amount": "2500000",
        "currency": BASE_USDC,
        "recipient": RECIPIENT,
        "methodDetails": {"chainId": 8453, "credentialTypes": ["authorization"], "decimals": 6},
    }
    text, ch = challenge("evm", "charge", evm_request)
    yield "pympp_evm_charge_authorization", "evm charge on Base paid with an EIP-3009 authorization (server submits, so pays gas)", text, ch, {
        "expected": charge("evm", "eip155:8453", "2500000", BASE_USDC, RECIPIENT, False, declaredDecimals=6)
    }

    solana_request = {
        "amount": "1000000",
        "currency": SOL_USDC,
        "recipient": SOL_RECIPIENT,
        "methodDetails": {
            "network": "mainnet",
            "decimals": 6,
            "tokenProgram": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
            "feePayer": True,
            "feePayerKey": SOL_RECIPIENT,
        },
    }
    text, ch = challenge("solana", "charge", solana_request)
    yield "pympp_solana_charge_sponsored", "solana USDC charge with a server fee payer (request shaped by hand per the solana draft)", text, ch, {
        "expected": charge("solana", SOLANA_MAINNET, "1000000", SOL_USDC, SOL_RECIPIENT, False, declaredDecimals=6)
    }

    text, ch = challenge("tempo", "session", {"amount": "1", "currency": PATH_USD, "recipient": RECIPIENT})
    yield "pympp_tempo_session", "a tempo session challenge: not the charge intent", text, ch, {
        "error": {"field": "intent", "kind": "unsupportedIntent"}
    }


def main():
    pympp = version("pympp")
    for name, description, text, expected_challenge, expected_charge in vectors():
        vector = {
            "description": description,
            "source": {
                "generator": "tools/mpp-vectors/generate.py",
                "encoder": f"pympp {pympp} (PyPI)",
            },
            "kind": "challenge",
            "input": text,
            "challenge": {"expected": expected_challenge},
            "charge": expected_charge,
        }
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(vector, indent=2, ensure_ascii=False) + "\n")
        print(path)


if __name__ == "__main__":
    main()
