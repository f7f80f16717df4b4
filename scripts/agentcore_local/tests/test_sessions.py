"""Payment sessions and instruments: create, get, scoping, idempotency, expiry."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from conftest import (
    ALICE,
    ALICE_ADDRESS,
    ALICE_INSTRUMENT,
    BOB,
    BOB_INSTRUMENT,
    MANAGER_ARN,
    Raw,
    error_of,
    open_session,
    pay,
    requirement_v2,
    token,
)

OTHER_MANAGER = "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/other-manager-a1b2c3d4e5"


def test_create_returns_the_session_with_its_limits_and_full_availability(client: Any) -> None:
    # GIVEN a session for alice with a 5.00 USD limit for 30 minutes
    response = client.create_payment_session(
        userId=ALICE,
        paymentManagerArn=MANAGER_ARN,
        expiryTimeInMinutes=30,
        limits={"maxSpendAmount": {"value": "5.00", "currency": "USD"}},
        clientToken=token("s1"),
    )
    session = response["paymentSession"]
    # THEN it is 201 with the model's PaymentSession members
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert session["paymentSessionId"].startswith("payment-session-") and len(session["paymentSessionId"]) == 31
    assert (session["paymentManagerArn"], session["userId"], session["expiryTimeInMinutes"]) == (MANAGER_ARN, ALICE, 30)
    assert session["limits"] == {"maxSpendAmount": {"value": "5.00", "currency": "USD"}}
    assert session["availableLimits"]["availableSpendAmount"] == {"value": "5.00", "currency": "USD"}
    assert isinstance(session["createdAt"], datetime.datetime)


def test_get_returns_what_create_returned(client: Any) -> None:
    created = client.create_payment_session(
        userId=ALICE,
        paymentManagerArn=MANAGER_ARN,
        expiryTimeInMinutes=60,
        limits={"maxSpendAmount": {"value": "1", "currency": "USD"}},
    )
    sid = created["paymentSession"]["paymentSessionId"]
    got = client.get_payment_session(userId=ALICE, paymentManagerArn=MANAGER_ARN, paymentSessionId=sid)
    assert got["paymentSession"] == created["paymentSession"]
    assert got["paymentSession"]["availableLimits"]["availableSpendAmount"]["value"] == "1.00"


def test_a_session_without_limits_has_no_available_limits(client: Any) -> None:
    sid = open_session(client, max_usd=None)
    session = client.get_payment_session(userId=ALICE, paymentManagerArn=MANAGER_ARN, paymentSessionId=sid)
    assert "limits" not in session["paymentSession"] and "availableLimits" not in session["paymentSession"]


def test_the_available_amount_falls_by_each_signed_payment(client: Any) -> None:
    # GIVEN a 0.05 USD session WHEN 0.01 and 0.015 USDC are signed THEN 0.025 remains
    sid = open_session(client, max_usd="0.05")
    pay(client, sid, requirement_v2("10000"), client_token=token("a"))
    pay(client, sid, requirement_v2("15000"), client_token=token("b"))
    got = client.get_payment_session(userId=ALICE, paymentManagerArn=MANAGER_ARN, paymentSessionId=sid)
    assert got["paymentSession"]["availableLimits"]["availableSpendAmount"] == {"value": "0.025", "currency": "USD"}
    assert got["paymentSession"]["availableLimits"]["updatedAt"] >= got["paymentSession"]["createdAt"]


def test_create_is_idempotent_on_its_client_token(client: Any, raw: Raw) -> None:
    args = {"userId": ALICE, "paymentManagerArn": MANAGER_ARN, "expiryTimeInMinutes": 60, "clientToken": token("c")}
    first = client.create_payment_session(**args)["paymentSession"]
    again = client.create_payment_session(**args)["paymentSession"]
    assert first == again
    assert len(raw.stats()["sessions"]) == 1


def test_create_with_a_used_client_token_and_other_input_is_a_conflict(client: Any) -> None:
    args = {"userId": ALICE, "paymentManagerArn": MANAGER_ARN, "expiryTimeInMinutes": 60, "clientToken": token("d")}
    client.create_payment_session(**args)
    with pytest.raises(client.exceptions.ConflictException) as e:
        client.create_payment_session(**{**args, "expiryTimeInMinutes": 61})
    assert error_of(e)[2] == 409


def test_a_malformed_limit_value_is_refused(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationException) as e:
        client.create_payment_session(
            userId=ALICE,
            paymentManagerArn=MANAGER_ARN,
            expiryTimeInMinutes=60,
            limits={"maxSpendAmount": {"value": "-1", "currency": "USD"}},
        )
    assert e.value.response["fieldList"][0]["name"] == "limits.maxSpendAmount.value"


def test_an_unknown_manager_cannot_create_sessions(client: Any) -> None:
    # CreatePaymentSession models no ResourceNotFoundException; an unknown manager is access denied
    with pytest.raises(client.exceptions.AccessDeniedException) as e:
        client.create_payment_session(userId=ALICE, paymentManagerArn=OTHER_MANAGER, expiryTimeInMinutes=60)
    assert error_of(e)[2] == 403


def test_an_unknown_session_is_not_found(client: Any) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as e:
        client.get_payment_session(
            userId=ALICE, paymentManagerArn=MANAGER_ARN, paymentSessionId="payment-session-000000000000000"
        )
    assert error_of(e) == ("ResourceNotFoundException", "Payment session not found", 404)


def test_another_user_s_session_is_not_found(client: Any) -> None:
    sid = open_session(client, user=ALICE)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_payment_session(userId=BOB, paymentManagerArn=MANAGER_ARN, paymentSessionId=sid)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        pay(client, sid, requirement_v2(), user=BOB, instrument=BOB_INSTRUMENT, client_token=token("bob"))


def test_an_expired_session_refuses_payments_and_still_reads(client: Any, raw: Raw) -> None:
    # GIVEN a 15-minute session WHEN the service's clock passes its expiry
    sid = open_session(client, minutes=15)
    raw.admin("POST", "clock", {"advanceSeconds": 15 * 60})
    # THEN ProcessPayment is a ValidationException naming the expiry (the SDK maps it to
    # PaymentSessionExpired) and nothing is signed
    with pytest.raises(client.exceptions.ValidationException) as e:
        pay(client, sid, requirement_v2(), client_token=token("late"))
    assert "expired" in error_of(e)[1]
    assert raw.stats()["signatures"]["total"] == 0
    # AND the session can still be read
    assert client.get_payment_session(userId=ALICE, paymentManagerArn=MANAGER_ARN, paymentSessionId=sid)


def test_a_session_pays_until_one_second_before_its_expiry(client: Any, raw: Raw) -> None:
    sid = open_session(client, minutes=15)
    raw.admin("POST", "clock", {"advanceSeconds": 15 * 60 - 1})
    assert pay(client, sid, requirement_v2(), client_token=token("in-time"))["status"] == "PROOF_GENERATED"


def test_get_instrument_returns_the_model_s_shape_with_the_wallet_address(client: Any) -> None:
    instrument = client.get_payment_instrument(
        userId=ALICE, paymentManagerArn=MANAGER_ARN, paymentInstrumentId=ALICE_INSTRUMENT
    )["paymentInstrument"]
    assert instrument["paymentInstrumentId"] == ALICE_INSTRUMENT
    assert instrument["userId"] == ALICE
    assert instrument["paymentInstrumentType"] == "EMBEDDED_CRYPTO_WALLET"
    assert instrument["status"] == "ACTIVE"
    wallet = instrument["paymentInstrumentDetails"]["embeddedCryptoWallet"]
    assert wallet == {
        "network": "ETHEREUM",
        "linkedAccounts": [{"email": {"emailAddress": "alice@example.com"}}],
        "walletAddress": ALICE_ADDRESS,
    }


def test_get_instrument_scopes_to_user_and_connector(client: Any) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_payment_instrument(userId=BOB, paymentManagerArn=MANAGER_ARN, paymentInstrumentId=ALICE_INSTRUMENT)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_payment_instrument(
            userId=ALICE,
            paymentManagerArn=MANAGER_ARN,
            paymentInstrumentId=ALICE_INSTRUMENT,
            paymentConnectorId="other-cdp-a1b2c3d4e5",
        )
    assert client.get_payment_instrument(
        userId=ALICE,
        paymentManagerArn=MANAGER_ARN,
        paymentInstrumentId=ALICE_INSTRUMENT,
        paymentConnectorId="local-cdp-a1b2c3d4e5",
    )["paymentInstrument"]


def test_the_admin_instrument_list_shows_no_key_material(raw: Raw) -> None:
    listing = raw.admin("GET", "instruments")
    text = str(listing).lower()
    assert "privatekey" not in text and "ac0974bec39a17e36ba4a6b4d238ff944bacb478" not in text
    assert {i["paymentInstrumentId"] for i in listing["instruments"]} >= {ALICE_INSTRUMENT, BOB_INSTRUMENT}
