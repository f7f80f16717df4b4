"""Post-sign decoding against the same vectors as `predebit x402 decode`."""

import base64
import json
from pathlib import Path

import pytest

from predebit_agentcore.signed import (
    X402_PERMIT2_PROXY,
    SignedPayloadError,
    check_against_approved,
    decode_evm_payload,
)

VECTORS = Path(__file__).resolve().parents[3] / "crates" / "core" / "tests" / "vectors" / "x402"


def vector(name: str) -> dict:
    data = json.loads((VECTORS / name).read_text())
    return {"input": json.loads(base64.b64decode(data["input"])), "expected": data["expected"]}


def test_eip3009_vector_decodes_to_the_normalised_terms():
    v = vector("v1_x_payment_eip3009.json")
    terms = decode_evm_payload(v["input"]["payload"])
    auth = v["expected"]["payload"]["authorization"]
    assert (terms.kind, terms.to, terms.value, terms.valid_before) == (
        "eip3009",
        auth["to"],
        auth["value"],
        int(auth["validBefore"]),
    )


def test_permit2_vector_decodes_hex_amount_and_shifts_the_deadline():
    v = vector("v2_payment_signature_permit2.json")
    terms = decode_evm_payload(v["input"]["payload"])
    auth = v["expected"]["payload"]["permit2Authorization"]
    assert terms.value == auth["permitted"]["amount"] == "10000"
    assert terms.asset == auth["permitted"]["token"]
    assert terms.to == auth["witness"]["to"]
    assert terms.spender == X402_PERMIT2_PROXY
    assert terms.valid_before == int(auth["deadline"]) + 1


def approved(terms, **overrides):
    args = dict(
        pay_to=terms.to.lower(),
        amount_atomic=terms.value,
        asset=terms.asset,
        max_timeout_seconds=60,
        now=terms.valid_before - 30,
        slack_seconds=30,
    )
    args.update(overrides)
    check_against_approved(terms, **args)


def test_matching_permit2_terms_pass_and_each_difference_is_named():
    terms = decode_evm_payload(vector("v2_payment_signature_permit2.json")["input"]["payload"])
    approved(terms)
    with pytest.raises(SignedPayloadError, match="recipient"):
        approved(terms, pay_to="0x1111111111111111111111111111111111111111")
    with pytest.raises(SignedPayloadError, match="amount"):
        approved(terms, amount_atomic="10001")
    with pytest.raises(SignedPayloadError, match="token"):
        approved(terms, asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")
    with pytest.raises(SignedPayloadError, match="spender"):
        approved(terms, permit2_spender="0x1111111111111111111111111111111111111111")
    with pytest.raises(SignedPayloadError, match="maxTimeoutSeconds"):
        approved(terms, now=terms.valid_before - 1000)
    with pytest.raises(SignedPayloadError, match="expired"):
        approved(terms, now=terms.valid_before)


def test_numeric_signed_value_is_refused_as_the_cli_does():
    payload = vector("v1_x_payment_eip3009.json")["input"]["payload"]
    payload["authorization"]["value"] = 10000
    with pytest.raises(SignedPayloadError, match=r"payload\.authorization\.value"):
        decode_evm_payload(payload)
