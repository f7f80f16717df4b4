"""ProcessPayment with CRYPTO_X402: signed terms, idempotency, the session's budget, refusals."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

import signing
from conftest import (
    ALICE,
    ALICE_ADDRESS,
    ALICE_INSTRUMENT,
    BOB,
    BOB_INSTRUMENT,
    CAROL,
    CAROL_INSTRUMENT,
    MANAGER_ARN,
    PAY_TO,
    USDC_BASE_SEPOLIA,
    Raw,
    error_of,
    fixture,
    open_session,
    pay,
    requirement_v2,
    token,
)


def signed_terms(payload: dict[str, Any], requirement: dict[str, Any], chain_id: int = 84532) -> signing.Terms:
    extra = requirement.get("extra", {})
    return signing.terms_of_payload(
        payload, chain_id, requirement["asset"], extra.get("name", ""), extra.get("version", "")
    )


def test_an_eip3009_v2_payment_signs_the_requirement_s_terms(client: Any) -> None:
    # GIVEN alice's session and a v2 exact requirement for 0.01 USDC on Base Sepolia
    sid = open_session(client)
    requirement = requirement_v2("10000")
    before = int(time.time())
    # WHEN it is processed
    response = pay(client, sid, requirement, client_token=token("eip3009"))
    # THEN the answer is the model's ProcessPaymentResponse
    assert uuid.UUID(response["processPaymentId"])
    assert (response["paymentSessionId"], response["paymentInstrumentId"]) == (sid, ALICE_INSTRUMENT)
    assert (response["paymentType"], response["status"]) == ("CRYPTO_X402", "PROOF_GENERATED")
    output = response["paymentOutput"]["cryptoX402"]
    assert output["version"] == "2"
    # AND the payload is an x402 exact EIP-3009 authorization for exactly those terms
    payload = output["payload"]
    assert list(payload) == ["authorization", "signature"]
    auth = payload["authorization"]
    assert (auth["from"], auth["to"], auth["value"], auth["validAfter"]) == (ALICE_ADDRESS, PAY_TO, "10000", "0")
    assert before + 60 <= int(auth["validBefore"]) <= int(time.time()) + 60
    assert len(auth["nonce"]) == 66
    # AND its signature recovers to the instrument's wallet address
    assert signing.recover(auth["from"], signed_terms(payload, requirement), payload["signature"]) == ALICE_ADDRESS


def test_an_eip3009_v1_payment_uses_max_amount_required_and_backdates_valid_after(client: Any) -> None:
    sid = open_session(client)
    requirement = fixture("exact_eip3009_v1.json")["requirement"]
    before = int(time.time())
    output = pay(client, sid, requirement, version="1", client_token=token("v1"))["paymentOutput"]["cryptoX402"]
    auth = output["payload"]["authorization"]
    assert output["version"] == "1"
    assert auth["value"] == requirement["maxAmountRequired"]
    assert before - 600 <= int(auth["validAfter"]) <= int(time.time()) - 600
    assert (
        signing.recover(ALICE_ADDRESS, signed_terms(output["payload"], requirement), output["payload"]["signature"])
        == ALICE_ADDRESS
    )


def test_a_permit2_payment_signs_a_witness_transfer_to_the_x402_proxy(client: Any) -> None:
    sid = open_session(client)
    requirement = requirement_v2("25000", assetTransferMethod="permit2")
    payload = pay(client, sid, requirement, client_token=token("permit2"))["paymentOutput"]["cryptoX402"]["payload"]
    assert list(payload) == ["signature", "permit2Authorization"]
    p = payload["permit2Authorization"]
    assert p["from"] == ALICE_ADDRESS
    assert p["permitted"] == {"token": USDC_BASE_SEPOLIA, "amount": "25000"}
    assert p["spender"] == "0x402085c248EeA27D92E8b30b2C58ed07f9E20001"
    assert p["witness"] == {"to": PAY_TO, "validAfter": "0"}
    assert p["nonce"].isdigit() and int(p["nonce"]) < 2**256
    assert signing.recover(ALICE_ADDRESS, signed_terms(payload, requirement), payload["signature"]) == ALICE_ADDRESS


@pytest.mark.parametrize(
    ("name", "version"),
    [("exact_eip3009_v1.json", "1"), ("exact_eip3009_v2.json", "2"), ("exact_permit2_v2.json", "2")],
)
def test_with_the_fixture_s_clock_and_nonce_the_service_returns_the_fixture_s_payload(
    client: Any, raw: Raw, name: str, version: str
) -> None:
    # GIVEN the service's clock frozen at the fixture's and its nonce pinned
    f = fixture(name)
    payload = f["paymentPayload"]["payload"]
    nonce = (
        payload["authorization"]["nonce"] if "authorization" in payload else payload["permit2Authorization"]["nonce"]
    )
    sid = open_session(client)
    raw.admin("POST", "clock", {"now": f["generatedAt"], "frozen": True})
    raw.admin("POST", "nonces", {"nonces": [nonce]})
    # WHEN the fixture's requirement is processed
    output = pay(client, sid, f["requirement"], version=version, client_token=token(name))
    # THEN the payload is the one @x402/evm 2.27.0 signed, byte for byte
    assert output["paymentOutput"]["cryptoX402"]["payload"] == payload


def test_the_same_client_token_and_input_replay_the_same_bytes_without_a_second_signature(
    client: Any, raw: Raw
) -> None:
    # GIVEN a signed payment
    sid = open_session(client, max_usd="0.01")
    body = json.dumps(
        {
            "paymentManagerArn": MANAGER_ARN,
            "paymentSessionId": sid,
            "paymentInstrumentId": ALICE_INSTRUMENT,
            "paymentType": "CRYPTO_X402",
            "clientToken": token("replay"),
            "paymentInput": {"cryptoX402": {"version": "2", "payload": requirement_v2("10000")}},
        }
    ).encode()
    headers = {"X-Amzn-Bedrock-AgentCore-Payments-User-Id": ALICE}
    first = raw.request("POST", "/payments/processPayment", body, headers)
    # WHEN the same request is sent twice more (the session's budget fits only one)
    again = [raw.request("POST", "/payments/processPayment", body, headers) for _ in range(2)]
    # THEN each answer is the first's body, byte for byte (same nonce, same signature, same id)
    assert first[0] == 200
    assert all(status == 200 and data == first[2] for status, _, data in again)
    # AND one signature was counted and spent once
    stats = raw.stats()
    assert stats["signatures"] == {"total": 1, "bySession": {sid: 1}, "byInstrument": {ALICE_INSTRUMENT: 1}}
    assert stats["replays"] == 2
    assert stats["sessions"][sid]["spent"] == "0.01"
    assert stats["requests"]["ProcessPayment"] == 3


def test_a_replay_is_answered_even_after_the_session_expired(client: Any, raw: Raw) -> None:
    sid = open_session(client, minutes=15)
    first = pay(client, sid, requirement_v2(), client_token=token("late-replay"))
    raw.admin("POST", "clock", {"advanceSeconds": 3600})
    again = pay(client, sid, requirement_v2(), client_token=token("late-replay"))
    assert again["paymentOutput"] == first["paymentOutput"]


@pytest.mark.parametrize("change", ["amount", "payTo", "session", "permit2", "user"])
def test_the_same_client_token_with_other_input_is_a_conflict(client: Any, raw: Raw, change: str) -> None:
    # GIVEN a payment signed under a clientToken
    sid = open_session(client)
    pay(client, sid, requirement_v2("10000"), client_token=token("conflict"))
    # WHEN the token comes back with other input
    requirement, session, user, instrument = requirement_v2("10000"), sid, ALICE, ALICE_INSTRUMENT
    if change == "amount":
        requirement["amount"] = "10001"
    elif change == "payTo":
        requirement["payTo"] = ALICE_ADDRESS
    elif change == "session":
        session = open_session(client)
    elif change == "permit2":
        requirement["extra"]["assetTransferMethod"] = "permit2"
    else:
        user, instrument, session = BOB, BOB_INSTRUMENT, open_session(client, user=BOB)
    with pytest.raises(client.exceptions.ConflictException) as e:
        pay(client, session, requirement, client_token=token("conflict"), user=user, instrument=instrument)
    # THEN it is a 409 and nothing more is signed
    assert error_of(e)[2] == 409
    assert raw.stats()["signatures"]["total"] == 1


def test_the_agent_name_does_not_make_a_replay_a_conflict(client: Any) -> None:
    sid = open_session(client)
    args = {
        "userId": ALICE,
        "paymentManagerArn": MANAGER_ARN,
        "paymentSessionId": sid,
        "paymentInstrumentId": ALICE_INSTRUMENT,
        "paymentType": "CRYPTO_X402",
        "clientToken": token("agent"),
        "paymentInput": {"cryptoX402": {"version": "2", "payload": requirement_v2()}},
    }
    first = client.process_payment(agentName="one", **args)
    assert client.process_payment(agentName="two", **args)["processPaymentId"] == first["processPaymentId"]


def test_a_payment_above_the_available_amount_is_refused_and_not_signed(client: Any, raw: Raw) -> None:
    # GIVEN a 0.025 USD session with 0.02 spent
    sid = open_session(client, max_usd="0.025")
    pay(client, sid, requirement_v2("10000"), client_token=token("b1"))
    pay(client, sid, requirement_v2("10000"), client_token=token("b2"))
    # WHEN 0.01 more is asked THEN it is a ValidationException the SDK reads as InsufficientBudget
    with pytest.raises(client.exceptions.ValidationException) as e:
        pay(client, sid, requirement_v2("10000"), client_token=token("b3"))
    assert "Insufficient budget" in error_of(e)[1]
    # AND exactly the rest (0.005) still fits
    pay(client, sid, requirement_v2("5000"), client_token=token("b4"))
    stats = raw.stats()
    assert (stats["signatures"]["total"], stats["sessions"][sid]["available"]) == (3, "0.00")


def test_a_session_without_limits_does_not_cap_spend(client: Any) -> None:
    sid = open_session(client, max_usd=None)
    assert pay(client, sid, requirement_v2("1000000000"), client_token=token("big"))["status"] == "PROOF_GENERATED"


def test_the_amount_is_converted_with_the_asset_s_decimals(client: Any) -> None:
    # 1 atomic unit of USDC is 0.000001 USD: a 0.000001 session fits one, not two
    sid = open_session(client, max_usd="0.000001")
    pay(client, sid, requirement_v2("1"), client_token=token("one"))
    with pytest.raises(client.exceptions.ValidationException):
        pay(client, sid, requirement_v2("1"), client_token=token("two"))


@pytest.mark.parametrize(
    ("mutate", "field", "text"),
    [
        (lambda r: r.update(asset="0x0000000000000000000000000000000000000001"), "payload.asset", "Unsupported asset"),
        (lambda r: r.update(network="eip155:1"), "payload.network", "does not support this network"),
        (
            lambda r: r.update(network="solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"),
            "payload.network",
            "Unsupported network",
        ),
        (lambda r: r.update(scheme="upto"), "payload.scheme", "exact only"),
        (lambda r: r.update(amount="0"), "payload.amount", "positive integer"),
        (lambda r: r.update(amount="1.5"), "payload.amount", "positive integer"),
        (lambda r: r.update(payTo="not-an-address"), "payload.payTo", "EVM address"),
        (lambda r: r.update(maxTimeoutSeconds=0), "payload.maxTimeoutSeconds", "positive integer"),
        (lambda r: r["extra"].pop("name"), "payload.extra", "extra.name and extra.version"),
        (
            lambda r: r["extra"].update(assetTransferMethod="erc7710"),
            "payload.extra.assetTransferMethod",
            "eip3009, permit2",
        ),
    ],
)
def test_a_requirement_the_service_cannot_sign_is_refused(
    client: Any, raw: Raw, mutate: Any, field: str, text: str
) -> None:
    sid = open_session(client)
    requirement = requirement_v2()
    mutate(requirement)
    with pytest.raises(client.exceptions.ValidationException) as e:
        pay(client, sid, requirement, client_token=token("refused"))
    assert text in error_of(e)[1]
    assert e.value.response["fieldList"][0]["name"] == f"paymentInput.cryptoX402.{field}"
    assert raw.stats()["signatures"]["total"] == 0


def test_an_instrument_network_it_does_not_hold_is_refused(client: Any) -> None:
    # bob's instrument is seeded for Base Sepolia only
    sid = open_session(client, user=BOB)
    requirement = requirement_v2()
    requirement.update(network="eip155:8453", asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")
    with pytest.raises(client.exceptions.ValidationException) as e:
        pay(client, sid, requirement, user=BOB, instrument=BOB_INSTRUMENT, client_token=token("bob-base"))
    assert "payment instrument does not support" in error_of(e)[1]


def test_permit2_allowance_limit_on_an_exact_payment_is_a_validation_error(client: Any) -> None:
    # The model: "valid only for the upto scheme; supplying it for the exact scheme returns a
    # validation error".
    sid = open_session(client)
    with pytest.raises(client.exceptions.ValidationException) as e:
        pay(
            client,
            sid,
            requirement_v2(assetTransferMethod="permit2"),
            client_token=token("p2a"),
            permit2AllowanceLimit="10000",
        )
    assert error_of(e)[1] == "permit2AllowanceLimit is valid only for the upto scheme"


def test_a_blocked_instrument_is_refused(client: Any) -> None:
    sid = open_session(client, user=CAROL)
    with pytest.raises(client.exceptions.ValidationException) as e:
        pay(client, sid, requirement_v2(), user=CAROL, instrument=CAROL_INSTRUMENT, client_token=token("carol"))
    assert "not active" in error_of(e)[1]


def test_an_unknown_instrument_is_not_found(client: Any) -> None:
    sid = open_session(client)
    with pytest.raises(client.exceptions.ResourceNotFoundException) as e:
        pay(client, sid, requirement_v2(), instrument="payment-instrument-000000000000000", client_token=token("x"))
    assert error_of(e)[1] == "Payment instrument not found"


def test_another_user_s_instrument_is_not_found(client: Any) -> None:
    sid = open_session(client)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        pay(client, sid, requirement_v2(), instrument=BOB_INSTRUMENT, client_token=token("bobs"))


@pytest.mark.parametrize(("version", "payment_type"), [("3", "CRYPTO_X402"), ("2", "MPP")])
def test_an_unsupported_version_or_payment_type_is_refused(client: Any, version: str, payment_type: str) -> None:
    sid = open_session(client)
    with pytest.raises(client.exceptions.ValidationException):
        client.process_payment(
            userId=ALICE,
            paymentManagerArn=MANAGER_ARN,
            paymentSessionId=sid,
            paymentInstrumentId=ALICE_INSTRUMENT,
            paymentType=payment_type,
            paymentInput={"cryptoX402": {"version": version, "payload": requirement_v2()}},
        )


def test_the_admin_payment_list_names_each_client_token(client: Any, raw: Raw) -> None:
    sid = open_session(client)
    response = pay(client, sid, requirement_v2(), client_token=token("listed"))
    payments = raw.admin("GET", "payments")["payments"]
    assert payments == [
        {
            "processPaymentId": response["processPaymentId"],
            "clientToken": token("listed"),
            "paymentSessionId": sid,
            "paymentInstrumentId": ALICE_INSTRUMENT,
            "assetTransferMethod": "eip3009",
            "amountUsd": "0.01",
            "tampered": [],
        }
    ]
