"""The AgentCore Python SDK's PaymentManager against the local service: it reads what it writes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import signing
from conftest import ALICE, ALICE_ADDRESS, ALICE_INSTRUMENT, MANAGER_ARN, PAY_TO, Raw, fixture, requirement_v2, token


@pytest.fixture
def manager(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    # boto3 reads the service's endpoint from AWS_ENDPOINT_URL_BEDROCK_AGENTCORE, as the Rust SDK does
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    from bedrock_agentcore.payments.manager import PaymentManager

    return PaymentManager(payment_manager_arn=MANAGER_ARN, region_name="us-east-1", agent_name="local-test")


def test_the_sdk_creates_reads_and_pays_a_session(manager: Any, raw: Raw) -> None:
    # GIVEN a session made through the SDK
    session = manager.create_payment_session(
        user_id=ALICE, expiry_time_in_minutes=60, limits={"maxSpendAmount": {"value": "1.00", "currency": "USD"}}
    )
    sid = session["paymentSessionId"]
    # WHEN the SDK processes a v2 payment
    result = manager.process_payment(
        user_id=ALICE,
        payment_session_id=sid,
        payment_instrument_id=ALICE_INSTRUMENT,
        payment_type="CRYPTO_X402",
        payment_input={"cryptoX402": {"version": "2", "payload": requirement_v2("10000")}},
        client_token=token("sdk"),
    )
    # THEN it reads paymentOutput.cryptoX402.payload, and the session shows the spend
    assert result["paymentOutput"]["cryptoX402"]["payload"]["authorization"]["from"] == ALICE_ADDRESS
    available = manager.get_payment_session(user_id=ALICE, payment_session_id=sid)["availableLimits"]
    assert available["availableSpendAmount"]["value"] == "0.99"
    assert raw.stats()["signatures"]["total"] == 1


@pytest.mark.parametrize(
    ("name", "header"), [("exact_eip3009_v1.json", "X-PAYMENT"), ("exact_permit2_v2.json", "PAYMENT-SIGNATURE")]
)
def test_the_sdk_builds_its_payment_header_from_the_service_s_output(manager: Any, name: str, header: str) -> None:
    # GIVEN a 402 as the SDK receives it: v1 in the body, v2 in the PAYMENT-REQUIRED header
    f = fixture(name)
    required = f["paymentRequired"]
    if f["x402Version"] == 1:
        response = {"statusCode": 402, "headers": {}, "body": required}
    else:
        encoded = base64.b64encode(json.dumps(required).encode()).decode()
        response = {"statusCode": 402, "headers": {"PAYMENT-REQUIRED": encoded}, "body": {}}
    sid = manager.create_payment_session(
        user_id=ALICE, expiry_time_in_minutes=60, limits={"maxSpendAmount": {"value": "1.00", "currency": "USD"}}
    )["paymentSessionId"]
    # WHEN the SDK generates the header (GetPaymentInstrument, then ProcessPayment)
    built = manager.generate_payment_header(
        user_id=ALICE,
        payment_instrument_id=ALICE_INSTRUMENT,
        payment_session_id=sid,
        payment_required_request=response,
        client_token=token(name),
    )
    # THEN the header is the fixture's kind, and the signed payload in it pays the requirement
    assert list(built) == [header]
    decoded = json.loads(base64.b64decode(built[header]))
    assert decoded["x402Version"] == f["x402Version"]
    payload = decoded["payload"]
    requirement = f["requirement"]
    terms = signing.terms_of_payload(payload, 84532, requirement["asset"], "USDC", "2")
    assert (terms.pay_to, terms.value) == (PAY_TO, 10000)
    assert signing.recover(ALICE_ADDRESS, terms, payload["signature"]) == ALICE_ADDRESS


def test_the_sdk_reads_a_budget_refusal_as_insufficient_budget(manager: Any) -> None:
    from bedrock_agentcore.payments.manager import InsufficientBudget

    sid = manager.create_payment_session(
        user_id=ALICE, expiry_time_in_minutes=60, limits={"maxSpendAmount": {"value": "0.001", "currency": "USD"}}
    )["paymentSessionId"]
    with pytest.raises(InsufficientBudget):
        manager.process_payment(
            user_id=ALICE,
            payment_session_id=sid,
            payment_instrument_id=ALICE_INSTRUMENT,
            payment_type="CRYPTO_X402",
            payment_input={"cryptoX402": {"version": "2", "payload": requirement_v2("10000")}},
        )


def test_the_sdk_reads_an_expired_session_as_payment_session_expired(manager: Any, raw: Raw) -> None:
    from bedrock_agentcore.payments.manager import PaymentSessionExpired

    sid = manager.create_payment_session(user_id=ALICE, expiry_time_in_minutes=15)["paymentSessionId"]
    raw.admin("POST", "clock", {"advanceSeconds": 901})
    with pytest.raises(PaymentSessionExpired):
        manager.process_payment(
            user_id=ALICE,
            payment_session_id=sid,
            payment_instrument_id=ALICE_INSTRUMENT,
            payment_type="CRYPTO_X402",
            payment_input={"cryptoX402": {"version": "2", "payload": requirement_v2()}},
        )


def test_the_sdk_reads_an_unknown_session_as_not_found(manager: Any) -> None:
    from bedrock_agentcore.payments.manager import PaymentSessionNotFound

    with pytest.raises(PaymentSessionNotFound):
        manager.get_payment_session(user_id=ALICE, payment_session_id="payment-session-000000000000000")
