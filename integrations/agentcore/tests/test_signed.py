"""The post-sign check on payments signed by the official x402 libraries (make vectors), on
tampered copies of them, and on the vectors `predebit x402 decode` is tested against.

Fast unit tests: no predebit functions, no AgentCore."""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from predebit_agentcore import PredebitConfig
from predebit_agentcore.signed import (
    DEFAULT_PERMIT2_PROXIES,
    V1_NETWORKS,
    X402_EXACT_PERMIT2_PROXY,
    Approved,
    PaymentClaims,
    SignedPayloadError,
    caip2,
    check_against_approved,
    check_claims,
    check_header_payload,
    decode_evm_payload,
    decode_payment_header,
    mark_sent_terms,
    payment_claims,
)

REPO = Path(__file__).resolve().parents[3]
VECTORS = REPO / "crates" / "core" / "tests" / "vectors" / "x402"
SIGNED = VECTORS / "signed"
# The plugin's post-sign check knows the `exact` scheme; an `upto` payment (signed for x402's upto
# proxy) is refused by it, fail closed (tested below).
FIXTURES = sorted(p.name for p in SIGNED.glob("exact_*.json"))
# The x402ExactPermit2Proxy address of @x402/evm before its post-audit upgrade.
OLD_PERMIT2_PROXY = "0x4020615294c913F045dc10f0a5cdEbd86c280001"
OTHER_ADDRESS = "0x1111111111111111111111111111111111111111"
USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
USDC_SEPOLIA = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
SLACK = 30


def fixture(name: str) -> dict[str, Any]:
    return json.loads((SIGNED / name).read_text())


def approved_for(fx: dict[str, Any]) -> Approved:
    """The hold predebit keeps for the fixture's requirement (addresses lowercased, CAIP-2)."""
    req = fx["requirement"]
    return Approved(
        pay_to=req["payTo"].lower(),
        amount_atomic=req.get("amount") or req["maxAmountRequired"],
        network=caip2(req["network"]),
        asset=req["asset"].lower(),
        max_timeout_seconds=req["maxTimeoutSeconds"],
    )


def check(
    fx: dict[str, Any],
    payment_payload: dict[str, Any] | None = None,
    proxies: tuple[str, ...] = DEFAULT_PERMIT2_PROXIES,
) -> PaymentClaims:
    """What the plugin runs: the scheme payload ProcessPayment returned, then the header built from it."""
    pp = payment_payload if payment_payload is not None else fx["paymentPayload"]
    approved = approved_for(fx)
    terms = decode_evm_payload(pp["payload"])
    check_against_approved(terms, approved, now=fx["generatedAt"], slack_seconds=SLACK, permit2_proxies=proxies)
    check_claims(payment_claims(pp["payload"], "payload"), approved, "payload")
    return check_header_payload(pp, pp["payload"], terms, approved, fx["x402Version"])


def kind(fx: dict[str, Any]) -> str:
    return "permit2" if "permit2Authorization" in fx["paymentPayload"]["payload"] else "eip3009"


# ---- the generated fixtures -------------------------------------------------------------------


def test_the_generated_fixtures_are_there_and_record_how_they_were_made():
    # GIVEN the signed vectors WHEN listed THEN all three shapes exist, each naming its libraries
    assert FIXTURES == ["exact_eip3009_v1.json", "exact_eip3009_v2.json", "exact_permit2_v2.json"]
    for name in FIXTURES:
        fx = fixture(name)
        assert fx["generator"]["command"] == "make vectors"
        assert set(fx["generator"]["libraries"]) == {"@x402/core", "@x402/evm", "viem"}
        assert fx["generator"]["libraries"]["@x402/evm"].startswith("2.27.")
        assert re.fullmatch(r"0x[0-9a-fA-F]{40}", fx["signer"])


@pytest.mark.parametrize("name", FIXTURES)
def test_each_payment_signed_by_the_library_passes_as_generated(name: str):
    # GIVEN a payment the official client signed WHEN the plugin's check runs THEN it passes
    fx = fixture(name)
    claims = check(fx)
    # AND the network (and, in v2, the token) are the ones the header names
    assert caip2(claims.network or "") == approved_for(fx).network
    if fx["x402Version"] == 2:
        assert (claims.asset or "").lower() == approved_for(fx).asset


@pytest.mark.parametrize("name", FIXTURES)
def test_the_library_encoded_header_decodes_to_its_payment_payload(name: str):
    # GIVEN the header value @x402/core encoded WHEN decoded as the plugin does THEN it is the payload
    fx = fixture(name)
    header = {fx["header"]["name"]: fx["header"]["value"]}
    assert decode_payment_header(header, fx["x402Version"]) == fx["paymentPayload"]


def test_an_upto_payment_is_refused_by_the_exact_check_not_passed():
    # GIVEN a payment @x402/evm's UptoEvmScheme signed (spender: the upto proxy)
    fx = fixture("upto_permit2_v2.json")
    # WHEN the plugin's post-sign check runs THEN it refuses it on the spender
    with pytest.raises(SignedPayloadError, match="Permit2 proxy"):
        check(fx)


def test_the_v1_header_name_is_refused_for_a_v2_payment():
    fx = fixture("exact_eip3009_v2.json")
    with pytest.raises(SignedPayloadError, match="one payment header"):
        decode_payment_header({"X-PAYMENT": fx["header"]["value"]}, 2)


def test_the_library_payload_shapes_are_the_documented_ones():
    # GIVEN the fixtures THEN v2 carries `accepted` with network and asset, v1 a top-level network,
    # and neither EIP-3009 authorization names its token (it is in the EIP-712 domain only)
    v2 = fixture("exact_eip3009_v2.json")["paymentPayload"]
    v1 = fixture("exact_eip3009_v1.json")["paymentPayload"]
    permit2 = fixture("exact_permit2_v2.json")["paymentPayload"]
    assert set(v2) >= {"x402Version", "accepted", "payload", "resource"}
    assert (v2["accepted"]["network"], v2["accepted"]["asset"]) == ("eip155:84532", USDC_SEPOLIA)
    assert set(v1) == {"x402Version", "scheme", "network", "payload"} and v1["network"] == "base-sepolia"
    for pp in (v1, v2):
        assert set(pp["payload"]) == {"authorization", "signature"}
        assert set(pp["payload"]["authorization"]) == {"from", "to", "value", "validAfter", "validBefore", "nonce"}
    assert permit2["payload"]["permit2Authorization"]["spender"] == X402_EXACT_PERMIT2_PROXY
    assert permit2["payload"]["permit2Authorization"]["permitted"]["token"] == USDC_SEPOLIA


# ---- tampered copies --------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], Any]


def auth(pp: dict[str, Any]) -> dict[str, Any]:
    payload = pp["payload"]
    return payload["authorization"] if "authorization" in payload else payload["permit2Authorization"]


def set_recipient(pp: dict[str, Any]) -> str:
    a = auth(pp)
    (a if "to" in a else a["witness"])["to"] = OTHER_ADDRESS
    return OTHER_ADDRESS


def set_amount(pp: dict[str, Any]) -> str:
    a = auth(pp)
    if "value" in a:
        a["value"] = "10001"
    else:
        a["permitted"]["amount"] = "10001"
    return "10001"


def set_header_token(pp: dict[str, Any]) -> str:
    pp["accepted"]["asset"] = USDC_BASE
    return USDC_BASE


def set_permit2_token(pp: dict[str, Any]) -> str:
    pp["payload"]["permit2Authorization"]["permitted"]["token"] = USDC_BASE
    return USDC_BASE


def set_network(pp: dict[str, Any]) -> str:
    if "accepted" in pp:
        pp["accepted"]["network"] = "eip155:8453"
        return "eip155:8453"
    pp["network"] = "base"
    return "base"


def set_spender(pp: dict[str, Any]) -> str:
    pp["payload"]["permit2Authorization"]["spender"] = OLD_PERMIT2_PROXY
    return OLD_PERMIT2_PROXY


def push_valid_before(pp: dict[str, Any]) -> str:
    a = auth(pp)
    name = "validBefore" if "validBefore" in a else "deadline"
    later = str(int(a[name]) + 3600)
    a[name] = later
    return later


def add_the_other_authorization(pp: dict[str, Any]) -> str:
    payload = pp["payload"]
    if "authorization" in payload:
        other = fixture("exact_permit2_v2.json")["paymentPayload"]["payload"]["permit2Authorization"]
        payload["permit2Authorization"] = other
    else:
        other = fixture("exact_eip3009_v2.json")["paymentPayload"]["payload"]["authorization"]
        payload["authorization"] = other
    return other["nonce"]


TAMPERINGS: list[tuple[str, str, Mutation, str]] = [
    (name, "recipient", set_recipient, "recipient") for name in FIXTURES
]
TAMPERINGS += [(name, "amount", set_amount, "amount") for name in FIXTURES]
TAMPERINGS += [
    ("exact_eip3009_v2.json", "header token", set_header_token, "token"),
    ("exact_permit2_v2.json", "header token", set_header_token, "token"),
    ("exact_permit2_v2.json", "permit2 token", set_permit2_token, "Permit2 token"),
]
TAMPERINGS += [(name, "network", set_network, "network") for name in FIXTURES]
TAMPERINGS += [("exact_permit2_v2.json", "spender", set_spender, "spender")]
TAMPERINGS += [(name, "validBefore", push_valid_before, "maxTimeoutSeconds") for name in FIXTURES]
TAMPERINGS += [(name, "both authorizations", add_the_other_authorization, "both") for name in FIXTURES]


@pytest.mark.parametrize(
    "name,what,mutate,field", TAMPERINGS, ids=[f"{n.removesuffix('.json')}-{w}" for n, w, _, _ in TAMPERINGS]
)
def test_a_tampered_copy_is_refused_naming_the_field_and_not_the_value(
    name: str, what: str, mutate: Mutation, field: str
):
    # GIVEN a library-signed payment with one term changed
    fx = fixture(name)
    pp = copy.deepcopy(fx["paymentPayload"])
    value = mutate(pp)
    # WHEN the plugin's check runs THEN it is refused, naming the field
    with pytest.raises(SignedPayloadError) as refused:
        check(fx, pp)
    message = str(refused.value)
    assert field in message, what
    # AND the message carries no value from the payload
    assert value.lower() not in message.lower()
    assert not re.search(r"0x[0-9a-fA-F]{6,}|[0-9]{5,}", message), message


def test_the_v1_payload_names_no_token_so_only_its_network_is_read():
    # GIVEN the v1 EIP-3009 payment (its header has no `asset`, its authorization no token)
    fx = fixture("exact_eip3009_v1.json")
    claims = payment_claims(fx["paymentPayload"], "header")
    # THEN the network is read and the token is not invented from the hold
    assert claims == PaymentClaims(network="base-sepolia", asset=None)
    signed = mark_sent_terms(decode_evm_payload(fx["paymentPayload"]["payload"]), "base-sepolia", claims.asset)
    assert "asset" not in signed and signed["network"] == "base-sepolia"


def test_the_eip3009_token_sent_to_mark_sent_is_the_one_the_header_names():
    fx = fixture("exact_eip3009_v2.json")
    claims = check(fx)
    signed = mark_sent_terms(decode_evm_payload(fx["paymentPayload"]["payload"]), claims.network or "", claims.asset)
    assert (signed["network"], signed["asset"]) == ("eip155:84532", USDC_SEPOLIA)
    assert signed["value"] == "10000" and signed["to"] == fx["requirement"]["payTo"]


@pytest.mark.parametrize("name", ["exact_eip3009_v2.json", "exact_permit2_v2.json"])
def test_a_v2_header_without_the_token_is_refused(name: str):
    fx = fixture(name)
    pp = copy.deepcopy(fx["paymentPayload"])
    del pp["accepted"]["asset"]
    with pytest.raises(SignedPayloadError, match=r"header\.accepted\.asset: names no token"):
        check(fx, pp)


@pytest.mark.parametrize("name", FIXTURES)
def test_a_header_without_a_network_is_refused(name: str):
    fx = fixture(name)
    pp = copy.deepcopy(fx["paymentPayload"])
    if "accepted" in pp:
        del pp["accepted"]["network"]
        match = r"header\.accepted\.network"
    else:
        del pp["network"]
        match = "names no network"
    with pytest.raises(SignedPayloadError, match=match):
        check(fx, pp)


def test_a_header_carrying_another_payload_than_the_checked_one_is_refused():
    # GIVEN the scheme payload ProcessPayment returned passes, but the header carries another
    fx = fixture("exact_eip3009_v2.json")
    checked = fx["paymentPayload"]["payload"]
    header = copy.deepcopy(fx["paymentPayload"])
    header["payload"]["authorization"]["to"] = OTHER_ADDRESS
    terms = decode_evm_payload(checked)
    # WHEN the header is checked THEN it is refused
    with pytest.raises(SignedPayloadError, match=r"header\.payload: differs"):
        check_header_payload(header, checked, terms, approved_for(fx), 2)


def test_a_header_of_another_x402_version_is_refused():
    fx = fixture("exact_eip3009_v2.json")
    payload = fx["paymentPayload"]["payload"]
    terms = decode_evm_payload(payload)
    with pytest.raises(SignedPayloadError, match="x402Version"):
        check_header_payload(fx["paymentPayload"], payload, terms, approved_for(fx), 1)


# ---- Permit2 proxies --------------------------------------------------------------------------


def test_the_default_permit2_proxy_is_x402s_current_one():
    assert PredebitConfig(agent_id="a").permit2_proxies == (X402_EXACT_PERMIT2_PROXY,)
    assert X402_EXACT_PERMIT2_PROXY == "0x402085c248EeA27D92E8b30b2C58ed07f9E20001"


def test_the_old_proxy_passes_only_when_configured():
    # GIVEN the library's payment re-pointed at the pre-audit proxy (the signature is not checked)
    fx = fixture("exact_permit2_v2.json")
    pp = copy.deepcopy(fx["paymentPayload"])
    set_spender(pp)
    # THEN the default refuses it and a configuration naming it (in any case) lets it through
    with pytest.raises(SignedPayloadError, match="spender"):
        check(fx, pp)
    check(fx, pp, proxies=(X402_EXACT_PERMIT2_PROXY, OLD_PERMIT2_PROXY.lower()))


# ---- the network table and the older vectors ----------------------------------------------------


def test_the_v1_network_table_is_the_one_in_crates_core():
    # GIVEN crates/core/src/network.rs WHEN its V1_NETWORKS entries are read THEN they are the plugin's
    source = (REPO / "crates" / "core" / "src" / "network.rs").read_text()
    table = source[source.index("const V1_NETWORKS") :]
    table = table[: table.index("];")]
    rust = dict(re.findall(r'\("([^"]+)",\s*"([^"]+)"\)', table))
    assert rust == V1_NETWORKS
    assert len(rust) >= 17


def vector(name: str) -> dict[str, Any]:
    data = json.loads((VECTORS / name).read_text())
    return {"input": json.loads(base64.b64decode(data["input"])), "expected": data["expected"]}


def test_eip3009_vector_decodes_to_the_normalised_terms():
    v = vector("v1_x_payment_eip3009.json")
    terms = decode_evm_payload(v["input"]["payload"])
    a = v["expected"]["payload"]["authorization"]
    assert (terms.kind, terms.to, terms.value) == ("eip3009", a["to"], a["value"])
    assert terms.valid_before == int(a["validBefore"])


def test_permit2_vector_decodes_hex_amount_and_shifts_the_deadline():
    v = vector("v2_payment_signature_permit2.json")
    terms = decode_evm_payload(v["input"]["payload"])
    a = v["expected"]["payload"]["permit2Authorization"]
    assert terms.value == a["permitted"]["amount"] == "10000"
    assert terms.asset == a["permitted"]["token"]
    assert terms.to == a["witness"]["to"]
    assert terms.spender == X402_EXACT_PERMIT2_PROXY
    assert terms.valid_before == int(a["deadline"]) + 1


def test_an_expired_authorization_is_refused():
    fx = fixture("exact_eip3009_v2.json")
    terms = decode_evm_payload(fx["paymentPayload"]["payload"])
    with pytest.raises(SignedPayloadError, match="expired"):
        check_against_approved(terms, approved_for(fx), now=terms.valid_before, slack_seconds=SLACK)


def test_numeric_signed_value_is_refused_as_the_cli_does():
    payload = vector("v1_x_payment_eip3009.json")["input"]["payload"]
    payload["authorization"]["value"] = 10000
    with pytest.raises(SignedPayloadError, match=r"payload\.authorization\.value"):
        decode_evm_payload(payload)
