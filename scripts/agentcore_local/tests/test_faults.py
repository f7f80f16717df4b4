"""The fault switches (slow, internalError, throttle, wrongTerms) and concurrency."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.exceptions
import pytest

import signing
from conftest import (
    ALICE,
    ALICE_ADDRESS,
    ALICE_INSTRUMENT,
    MANAGER_ARN,
    PAY_TO,
    Raw,
    error_of,
    make_client,
    open_session,
    pay,
    requirement_v2,
    token,
)

OTHER_PAY_TO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_a_slow_answer_times_the_caller_out_and_a_resend_gets_the_stored_signature(endpoint: str, raw: Raw) -> None:
    # GIVEN a caller with a 0.5 s read timeout and the next ProcessPayment answered after 1.5 s
    impatient = make_client(endpoint, read_timeout=0.5)
    sid = open_session(impatient)
    raw.faults(slow={"ms": 1500})
    # WHEN it pays, times out, and re-sends the same clientToken
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        pay(impatient, sid, requirement_v2(), client_token=token("slow"))
    resent = pay(impatient, sid, requirement_v2(), client_token=token("slow"))
    # THEN the re-send is answered at once with the signature made for the first attempt
    stats = raw.stats()
    assert stats["signatures"]["total"] == 1 and stats["replays"] == 1
    assert stats["faultsFired"]["slow"] == 1
    assert raw.admin("GET", "payments")["payments"][0]["processPaymentId"] == resent["processPaymentId"]


def test_a_slow_answer_still_arrives_for_a_patient_caller(client: Any, raw: Raw) -> None:
    sid = open_session(client)
    raw.faults(slow={"ms": 300, "times": 2})
    started = time.monotonic()
    pay(client, sid, requirement_v2(), client_token=token("patient"))
    assert time.monotonic() - started >= 0.3
    assert raw.admin("GET", "faults")["faults"]["slow"]["times"] == 1


def test_an_internal_error_before_signing_signs_nothing_and_the_retry_signs_once(client: Any, raw: Raw) -> None:
    # GIVEN the next two ProcessPayments answered 500
    sid = open_session(client)
    raw.faults(internalError={"times": 2})
    for _ in range(2):
        with pytest.raises(client.exceptions.InternalServerException) as e:
            pay(client, sid, requirement_v2(), client_token=token("5xx"))
        assert error_of(e)[2] == 500
    assert raw.stats()["signatures"]["total"] == 0
    # WHEN the same request comes a third time THEN it is signed, once
    assert pay(client, sid, requirement_v2(), client_token=token("5xx"))["status"] == "PROOF_GENERATED"
    assert raw.stats()["signatures"]["total"] == 1
    assert raw.stats()["errors"]["ProcessPayment"] == {"InternalServerException": 2}


def test_boto3_s_own_retries_ride_over_the_internal_errors(endpoint: str, raw: Raw) -> None:
    # GIVEN a client with standard retries and two 500s: the SDK re-sends with the same token
    retrying = make_client(endpoint, retries={"mode": "standard", "total_max_attempts": 3})
    sid = open_session(retrying)
    raw.faults(internalError={"times": 2})
    assert pay(retrying, sid, requirement_v2())["status"] == "PROOF_GENERATED"
    stats = raw.stats()
    assert (stats["requests"]["ProcessPayment"], stats["signatures"]["total"], stats["replays"]) == (3, 1, 0)


def test_an_internal_error_after_signing_keeps_the_signature_for_the_resend(client: Any, raw: Raw) -> None:
    sid = open_session(client, max_usd="0.01")
    raw.faults(internalError={"afterSigning": True})
    with pytest.raises(client.exceptions.InternalServerException):
        pay(client, sid, requirement_v2("10000"), client_token=token("after"))
    # the signature was made and the budget spent; the re-send replays it (a new payment would not fit)
    assert raw.stats()["signatures"]["total"] == 1
    resent = pay(client, sid, requirement_v2("10000"), client_token=token("after"))
    assert raw.admin("GET", "payments")["payments"][0]["processPaymentId"] == resent["processPaymentId"]
    assert raw.stats()["signatures"]["total"] == 1


def test_throttling_answers_429_for_the_asked_operation_only(client: Any, raw: Raw) -> None:
    raw.faults(throttle={"operation": "GetPaymentSession"})
    sid = open_session(client)
    with pytest.raises(client.exceptions.ThrottlingException) as e:
        client.get_payment_session(userId=ALICE, paymentManagerArn=MANAGER_ARN, paymentSessionId=sid)
    assert error_of(e)[2] == 429
    assert client.get_payment_session(userId=ALICE, paymentManagerArn=MANAGER_ARN, paymentSessionId=sid)


def test_faults_fire_only_on_valid_requests(unchecked: Any, raw: Raw) -> None:
    raw.faults(internalError={"times": 1})
    with pytest.raises(unchecked.exceptions.ValidationException):
        unchecked.process_payment(userId=ALICE, paymentManagerArn=MANAGER_ARN)
    assert raw.admin("GET", "faults")["faults"]["internalError"]["times"] == 1


@pytest.mark.parametrize(
    ("wrong", "check"),
    [
        ({"payTo": OTHER_PAY_TO}, lambda a: a["to"] == OTHER_PAY_TO),
        ({"value": "20000"}, lambda a: a["value"] == "20000"),
        ({"validBeforeDeltaSeconds": 3600}, lambda a: int(a["validBefore"]) >= int(time.time()) + 3600),
    ],
)
def test_wrong_terms_are_validly_signed_but_not_what_was_asked(client: Any, raw: Raw, wrong: dict, check: Any) -> None:
    # GIVEN the wrongTerms switch WHEN a 0.01 USDC payment to PAY_TO is processed
    sid = open_session(client)
    raw.faults(wrongTerms=wrong)
    requirement = requirement_v2("10000")
    payload = pay(client, sid, requirement, client_token=token("wrong"))["paymentOutput"]["cryptoX402"]["payload"]
    # THEN the authorization carries the wrong term, and its signature is still the wallet's:
    # only a caller that compares the terms with what it approved can tell
    assert check(payload["authorization"])
    terms = signing.terms_of_payload(payload, 84532, requirement["asset"], "USDC", "2")
    assert signing.recover(ALICE_ADDRESS, terms, payload["signature"]) == ALICE_ADDRESS
    assert raw.admin("GET", "payments")["payments"][0]["tampered"] == sorted(wrong)
    # AND the switch is spent: the next payment is right
    payload = pay(client, sid, requirement, client_token=token("right"))["paymentOutput"]["cryptoX402"]["payload"]
    assert (payload["authorization"]["to"], payload["authorization"]["value"]) == (PAY_TO, "10000")


def test_wrong_terms_reach_permit2_fields_too(client: Any, raw: Raw) -> None:
    sid = open_session(client)
    raw.faults(
        wrongTerms={
            "spender": OTHER_PAY_TO,
            "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            "payTo": OTHER_PAY_TO,
        }
    )
    requirement = requirement_v2("10000", assetTransferMethod="permit2")
    payload = pay(client, sid, requirement, client_token=token("p2wrong"))["paymentOutput"]["cryptoX402"]["payload"]
    p = payload["permit2Authorization"]
    assert (p["spender"], p["permitted"]["token"], p["witness"]["to"]) == (
        OTHER_PAY_TO,
        "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        OTHER_PAY_TO,
    )
    terms = signing.terms_of_payload(payload, 84532, p["permitted"]["token"])
    assert signing.recover(ALICE_ADDRESS, terms, payload["signature"]) == ALICE_ADDRESS


def test_a_wrong_chain_id_signature_does_not_recover_on_the_asked_chain(client: Any, raw: Raw) -> None:
    sid = open_session(client)
    raw.faults(wrongTerms={"chainId": 8453})
    requirement = requirement_v2("10000")
    payload = pay(client, sid, requirement, client_token=token("chain"))["paymentOutput"]["cryptoX402"]["payload"]
    asked = signing.terms_of_payload(payload, 84532, requirement["asset"], "USDC", "2")
    assert signing.recover(ALICE_ADDRESS, asked, payload["signature"]) != ALICE_ADDRESS


def test_a_replay_of_a_tampered_payment_is_the_same_tampered_payload(client: Any, raw: Raw) -> None:
    sid = open_session(client)
    raw.faults(wrongTerms={"value": "1"})
    first = pay(client, sid, requirement_v2(), client_token=token("tampered-replay"))
    assert (
        pay(client, sid, requirement_v2(), client_token=token("tampered-replay"))["paymentOutput"]
        == (first["paymentOutput"])
    )


@pytest.mark.parametrize(
    "spec",
    [
        {"nope": {}},
        {"slow": {}},
        {"slow": {"ms": 5, "times": 0}},
        {"slow": {"ms": 5, "afterSigning": True}},
        {"wrongTerms": {"value": "1", "operation": "GetPaymentSession"}},
        {"wrongTerms": {}},
        {"wrongTerms": {"colour": "red"}},
        {"throttle": {"operation": "ListPaymentSessions"}},
    ],
)
def test_a_bad_fault_spec_is_refused(raw: Raw, spec: dict) -> None:
    status, _, data = raw.request("POST", "/_local/faults", json.dumps(spec).encode())
    assert status == 400 and "error" in json.loads(data)


def test_reset_clears_faults_counts_and_clock(client: Any, raw: Raw) -> None:
    sid = open_session(client)
    pay(client, sid, requirement_v2(), client_token=token("before-reset"))
    raw.faults(slow={"ms": 1, "times": -1})
    raw.admin("POST", "clock", {"advanceSeconds": 99})
    raw.admin("POST", "reset")
    stats = raw.stats()
    assert stats["signatures"]["total"] == 0 and stats["sessions"] == {} and stats["clock"]["offsetSeconds"] == 0
    assert raw.admin("GET", "faults") == {"faults": {}, "bySession": {}}


def test_concurrent_payments_on_one_session_sign_exactly_what_the_budget_fits(endpoint: str, raw: Raw) -> None:
    # GIVEN a session whose budget fits 7 payments of 0.01 and 40 concurrent distinct payments
    sid = open_session(make_client(endpoint), max_usd="0.07")
    outcomes: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        caller = make_client(endpoint)
        try:
            pay(caller, sid, requirement_v2("10000"), client_token=token(f"race-{i}"))
            result = "signed"
        except caller.exceptions.ValidationException:
            result = "refused"
        with lock:
            outcomes.append(result)

    with ThreadPoolExecutor(max_workers=40) as pool:
        list(pool.map(one, range(40)))
    # THEN exactly 7 were signed and counted, and the session is spent to the cent
    assert outcomes.count("signed") == 7 and outcomes.count("refused") == 33
    stats = raw.stats()
    assert stats["signatures"]["bySession"] == {sid: 7}
    assert stats["sessions"][sid]["available"] == "0.00"


def test_concurrent_replays_of_one_token_sign_once(endpoint: str, raw: Raw) -> None:
    sid = open_session(make_client(endpoint))

    def one(_: int) -> str:
        return str(pay(make_client(endpoint), sid, requirement_v2(), client_token=token("same"))["processPaymentId"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = set(pool.map(one, range(20)))
    assert len(ids) == 1
    stats = raw.stats()
    assert (stats["signatures"]["total"], stats["replays"]) == (1, 19)
    assert stats["requests"]["ProcessPayment"] == 20
    assert ALICE_INSTRUMENT in stats["signatures"]["byInstrument"]


def test_two_hundred_concurrent_payments_each_replayed_sign_exactly_what_the_budget_fits(client: Any, raw: Raw) -> None:
    # GIVEN a session that fits 50 payments of 0.01, and 200 distinct payments sent at once,
    # each of them three times (issue 9's figure), over plain HTTP
    sid = open_session(client, max_usd="0.50")
    headers = {"X-Amzn-Bedrock-AgentCore-Payments-User-Id": ALICE}

    def body(i: int) -> bytes:
        return json.dumps(
            {
                "paymentManagerArn": MANAGER_ARN,
                "paymentSessionId": sid,
                "paymentInstrumentId": ALICE_INSTRUMENT,
                "paymentType": "CRYPTO_X402",
                "clientToken": token(f"crowd-{i}"),
                "paymentInput": {"cryptoX402": {"version": "2", "payload": requirement_v2("10000")}},
            }
        ).encode()

    def one(i: int) -> tuple[int, int, bytes]:
        status, _, data = raw.request("POST", "/payments/processPayment", body(i % 200), headers)
        return i % 200, status, data

    with ThreadPoolExecutor(max_workers=200) as pool:
        answers = list(pool.map(one, [i for _ in range(3) for i in range(200)]))
    # THEN exactly 50 payments were signed, each once, and every replay of a signed one is its bytes
    signed: dict[int, set[bytes]] = {}
    for i, status, data in answers:
        if status == 200:
            signed.setdefault(i, set()).add(data)
        else:
            assert (status, "Insufficient budget" in json.loads(data)["message"]) == (400, True)
    assert len(signed) == 50
    assert all(len(bodies) == 1 for bodies in signed.values())
    stats = raw.stats()
    assert stats["signatures"]["bySession"] == {sid: 50}
    assert stats["requests"]["ProcessPayment"] == 600
    assert stats["sessions"][sid]["available"] == "0.00"


def test_a_fault_scoped_to_a_session_fires_only_there_and_leaves_other_scopes_alone(
    client: Any, raw: Raw
) -> None:
    # GIVEN two sessions and an internal error on GetPaymentSession scoped to the first
    first, second = open_session(client), open_session(client)
    scoped = raw.admin(
        "POST",
        "faults",
        {"paymentSessionId": first, "internalError": {"operation": "GetPaymentSession", "times": -1}},
    )
    assert scoped["faults"] == {"internalError": {"operation": "GetPaymentSession", "times": -1}}

    def get(session: str) -> Any:
        return client.get_payment_session(userId=ALICE, paymentManagerArn=MANAGER_ARN, paymentSessionId=session)

    # THEN only the first session meets it
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        get(first)
    assert error_of(caught)[0] == "InternalServerException"
    assert get(second)["paymentSession"]["paymentSessionId"] == second
    # AND an unscoped switch set afterwards leaves the scoped one in place
    raw.faults(slow={"ms": 1, "operation": "GetPaymentSession"})
    view = raw.admin("GET", "faults")
    assert set(view["faults"]) == {"slow"} and set(view["bySession"][first]) == {"internalError"}
    # AND clearing the first session's scope keeps the unscoped switch
    raw.admin("POST", "faults", {"paymentSessionId": first})
    view = raw.admin("GET", "faults")
    assert view["bySession"] == {} and set(view["faults"]) == {"slow"}
    assert get(first)["paymentSession"]["paymentSessionId"] == first
