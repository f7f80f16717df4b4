"""The plugin's hooks driven the way the Strands agent loop drives them, against the real
verify and ledger functions; only AgentCore (GetPaymentInstrument, ProcessPayment) is stubbed."""

from __future__ import annotations

import base64
import json
import logging
import socket
from typing import Any

from botocore.stub import Stubber

from predebit_agentcore import payment_id

from .conftest import (
    PAY_TO,
    TOOL_URL,
    Harness,
    eip3009_payload,
    invoke_ledger,
    make_harness,
    requirement_v1,
    result_402,
    result_paid,
    settlement_header,
)

TOOL_USE_ID = "tooluse-forecast-1"


def tool_use(name: str = "http_request") -> dict[str, Any]:
    return {
        "toolUseId": TOOL_USE_ID,
        "name": name,
        "input": {"url": TOOL_URL, "method": "GET"},
    }


def assert_declined(h: Harness, state: dict[str, Any], event: Any, code: str) -> dict[str, Any]:
    failure = state[f"payment_failure_{TOOL_USE_ID}"]
    assert failure["exceptionType"] == "PredebitDeclined"
    assert failure["reasonCode"] == code
    assert code in failure["exceptionMessage"]
    assert event.retry is False
    assert "X-PAYMENT" not in event.tool_use["input"].get("headers", {})
    h.stubber.assert_no_pending_responses()
    return failure


def test_yes_path_signs_with_the_payment_id_marks_sent_and_commits(harness: Harness):
    # GIVEN a 1.00 USDC v1 402 from an allowed merchant
    req = requirement_v1()
    pid = payment_id(harness.session_id, TOOL_USE_ID, req, 1)
    harness.stub_instrument()
    harness.stub_signature(req, pid, eip3009_payload())
    use, state = tool_use(), {}
    # WHEN the 402 comes back from the tool
    event = harness.after_tool_call(use, state, result_402(req))
    # THEN ProcessPayment signed with clientToken = paymentId, the header is applied and the hold is SENT
    harness.stubber.assert_no_pending_responses()
    assert event.retry is True
    header = json.loads(base64.b64decode(use["input"]["headers"]["X-PAYMENT"]))
    assert header["payload"]["authorization"]["to"] == PAY_TO
    assert harness.hold(pid)["state"] == "SENT"
    assert state[f"payment_signed_{TOOL_USE_ID}"] is True
    # WHEN the paid retry returns 200 with a successful PAYMENT-RESPONSE
    harness.after_tool_call(use, state, result_paid(settlement_header()))
    # THEN the hold is POSTED and the session has settled 1.00
    assert harness.hold(pid)["state"] == "POSTED"
    session = harness.session()
    assert (session["settled"], session["reserved"], session["available"]) == ("1.00", "0.00", "24.00")
    assert pid not in harness.plugin.holds


def test_blocked_merchant_is_declined_before_signing(harness: Harness):
    # GIVEN a 402 paying an address the global policy blocks
    req = requirement_v1(pay_to="0x000000000000000000000000000000000000dEaD")
    harness.stub_instrument()
    state: dict[str, Any] = {}
    # WHEN the 402 is handled
    event = harness.after_tool_call(tool_use(), state, result_402(req))
    # THEN a structured decline is stored and nothing was signed or held
    failure = assert_declined(harness, state, event, "MERCHANT_BLOCKED")
    assert failure["verificationId"]
    assert harness.session()["reserved"] == "0.00"


def test_amount_over_the_per_payment_limit_is_declined(harness: Harness):
    # GIVEN 5.000001 USDC against alice's 5.00 cap
    harness.stub_instrument()
    state: dict[str, Any] = {}
    event = harness.after_tool_call(tool_use(), state, result_402(requirement_v1(amount="5000001")))
    # THEN AMOUNT_OVER_PAYMENT_LIMIT
    assert_declined(harness, state, event, "AMOUNT_OVER_PAYMENT_LIMIT")


def test_tool_not_allowed_for_the_agent_is_declined(harness: Harness):
    # GIVEN a tool the agent may not pay from
    harness.stub_instrument()
    state: dict[str, Any] = {}
    use = tool_use("buy_anything")
    use["toolUseId"] = TOOL_USE_ID
    event = harness.after_tool_call(use, state, result_402(requirement_v1()))
    assert_declined(harness, state, event, "TOOL_NOT_ALLOWED")


def test_session_unknown_to_predebit_is_declined(ledger_url: str):
    # GIVEN an AgentCore session predebit never opened
    h = make_harness(ledger_url, open_session=False)
    h.stub_instrument()
    state: dict[str, Any] = {}
    event = h.after_tool_call(tool_use(), state, result_402(requirement_v1()))
    assert_declined(h, state, event, "SESSION_UNKNOWN")


def test_reserve_refusal_after_a_yes_is_declined_with_the_ledger_code(harness: Harness):
    # GIVEN the session is closed between verify's YES and the reserve (the kill switch)
    client = harness.plugin.predebit
    real_verify = client.verify

    def verify_then_close(event):
        decision = real_verify(event)
        closed = invoke_ledger(
            harness.ledger_client, {"op": "closeSession", "paymentSessionId": harness.session_id, "reason": "test"}
        )
        assert closed["ok"], closed
        return decision

    client.verify = verify_then_close  # type: ignore[method-assign]
    harness.stub_instrument()
    state: dict[str, Any] = {}
    event = harness.after_tool_call(tool_use(), state, result_402(requirement_v1()))
    # THEN the reserve's SESSION_CLOSED is the decline, and nothing was signed
    assert_declined(harness, state, event, "SESSION_CLOSED")


def test_decline_reaches_the_agent_as_an_interrupt_on_its_next_tool_call(harness: Harness):
    # GIVEN a declined payment stored by the after-tool hook
    harness.stub_instrument()
    state: dict[str, Any] = {}
    harness.after_tool_call(tool_use(), state, result_402(requirement_v1(amount="5000001")))
    # WHEN the agent calls its next tool
    interrupts = harness.before_tool_call(tool_use(), state)
    # THEN the interrupt's reason carries the structured decline
    assert len(interrupts) == 1
    reason = interrupts[0].reason
    assert (reason["exceptionType"], reason["reasonCode"]) == ("PredebitDeclined", "AMOUNT_OVER_PAYMENT_LIMIT")
    assert reason["verificationId"]
    assert reason["predebitMessage"].startswith("The amount is above the per-payment limit.")


def test_unreachable_verifier_fails_closed(ledger_url: str):
    # GIVEN the verify function cannot be reached (nothing listens on the port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    h = make_harness(ledger_url, verify_url=dead)
    h.stub_instrument()
    state: dict[str, Any] = {}
    event = h.after_tool_call(tool_use(), state, result_402(requirement_v1()))
    # THEN VERIFIER_UNAVAILABLE and nothing signed or held
    assert_declined(h, state, event, "VERIFIER_UNAVAILABLE")
    assert h.session()["reserved"] == "0.00"


def test_failed_settlement_after_sending_leaves_the_hold_sent(harness: Harness):
    # GIVEN a payment signed and sent
    req = requirement_v1()
    pid = payment_id(harness.session_id, TOOL_USE_ID, req, 1)
    harness.stub_instrument()
    harness.stub_signature(req, pid, eip3009_payload())
    use, state = tool_use(), {}
    assert harness.after_tool_call(use, state, result_402(req)).retry is True
    # WHEN the merchant answers 402 with a failed PAYMENT-RESPONSE
    event = harness.after_tool_call(
        use, state, result_402(req, headers={"PAYMENT-RESPONSE": settlement_header(success=False)})
    )
    # THEN the failure is recorded, the hold stays SENT (in doubt), and the SDK reports the rejection
    hold = harness.hold(pid)
    assert hold["state"] == "SENT"
    assert hold["settlementFailures"] == 1
    assert harness.session()["reserved"] == "1.00"
    assert event.retry is False
    assert state[f"payment_failure_{TOOL_USE_ID}"]["exceptionType"] == "PaymentError"


def test_signing_failure_releases_its_hold_and_a_second_attempt_pays(harness: Harness):
    # GIVEN ProcessPayment fails on the first attempt
    req = requirement_v1()
    first = payment_id(harness.session_id, TOOL_USE_ID, req, 1)
    second = payment_id(harness.session_id, TOOL_USE_ID, req, 2)
    assert first != second
    harness.stub_instrument()
    harness.stubber.add_client_error(
        "process_payment", service_error_code="InternalServerException", http_status_code=500
    )
    use, state = tool_use(), {}
    event = harness.after_tool_call(use, state, result_402(req))
    assert event.retry is False
    assert harness.hold(first)["state"] == "VOIDED"
    assert harness.hold(first)["voidReason"] == "SIGNING_FAILED"
    # WHEN the same tool call meets the 402 again and the second attempt signs
    harness.stub_instrument()
    harness.stub_signature(req, second, eip3009_payload())
    state.pop(f"payment_failure_{TOOL_USE_ID}")
    assert harness.after_tool_call(use, state, result_402(req)).retry is True
    harness.after_tool_call(use, state, result_paid(settlement_header()))
    # THEN one hold is VOIDED, one POSTED, and only 1.00 was spent
    assert harness.hold(first)["state"] == "VOIDED"
    assert harness.hold(second)["state"] == "POSTED"
    session = harness.session()
    assert (session["settled"], session["reserved"], session["available"]) == ("1.00", "0.00", "24.00")


def test_signed_payload_that_differs_from_the_approval_is_not_sent(harness: Harness):
    # GIVEN ProcessPayment returns a signature for twice the approved amount
    req = requirement_v1()
    pid = payment_id(harness.session_id, TOOL_USE_ID, req, 1)
    harness.stub_instrument()
    harness.stub_signature(req, pid, eip3009_payload(value="2000000"))
    state: dict[str, Any] = {}
    event = harness.after_tool_call(tool_use(), state, result_402(req))
    # THEN SIGNED_PAYLOAD_MISMATCH, no header on the retry, and the hold released
    assert_declined(harness, state, event, "SIGNED_PAYLOAD_MISMATCH")
    hold = harness.hold(pid)
    assert (hold["state"], hold["voidReason"]) == ("VOIDED", "SIGNED_PAYLOAD_MISMATCH")


def test_mpp_challenge_is_declined_without_signing(harness: Harness):
    # GIVEN a 402 that offers only an MPP charge challenge
    request = (
        base64.urlsafe_b64encode(
            json.dumps(
                {"amount": "1000000", "currency": "USDC", "recipient": PAY_TO, "methodDetails": {"chainId": 8453}}
            ).encode()
        )
        .decode()
        .rstrip("=")
    )
    challenge = f'Payment id="ch-1", realm="api.weather.example", method="evm", intent="charge", request="{request}"'
    payload = {"statusCode": 402, "headers": {"WWW-Authenticate": challenge}, "body": {}, "url": TOOL_URL}
    result = {"status": "success", "content": [{"text": f"PAYMENT_REQUIRED: {json.dumps(payload)}"}]}
    harness.stub_instrument()
    state: dict[str, Any] = {}
    event = harness.after_tool_call(tool_use(), state, result)
    # THEN PAYMENT_TYPE_NOT_SUPPORTED and ProcessPayment never called
    assert_declined(harness, state, event, "PAYMENT_TYPE_NOT_SUPPORTED")


def test_stubber_knows_process_payment():
    # GIVEN the pinned botocore WHEN its model is read THEN ProcessPayment is there for the Stubber
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock-agentcore")
    assert "ProcessPayment" in model.operation_names
    assert isinstance(Stubber, type)


def test_v2_permit2_payment_passes_the_resource_and_commits(harness: Harness):
    # GIVEN a v2 402 (PAYMENT-REQUIRED header) for 1.00 USDC on Base Sepolia, paid through Permit2
    import time

    from predebit_agentcore.signed import X402_EXACT_PERMIT2_PROXY

    usdc_sepolia = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
    req = {
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": "1000000",
        "asset": usdc_sepolia,
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2", "assetTransferMethod": "permit2"},
    }
    required = {"x402Version": 2, "resource": {"url": "https://api.weather.example/v2/forecast"}, "accepts": [req]}
    header = base64.b64encode(json.dumps(required).encode()).decode()
    body = {"statusCode": 402, "headers": {"PAYMENT-REQUIRED": header}, "body": {}, "url": TOOL_URL}
    result = {"status": "success", "content": [{"text": f"PAYMENT_REQUIRED: {json.dumps(body)}"}]}
    pid = payment_id(harness.session_id, TOOL_USE_ID, req, 1)
    now = int(time.time())
    signed = {
        "signature": "0x" + "ab" * 65,
        "permit2Authorization": {
            "from": "0x857b06519E91e3A54538791bDbb0E22373e36b66",
            "permitted": {"token": usdc_sepolia, "amount": "1000000"},
            "spender": X402_EXACT_PERMIT2_PROXY,
            "nonce": "1234",
            "deadline": str(now + 50),
            "witness": {"to": PAY_TO, "validAfter": str(now - 10), "extra": {}},
        },
    }
    harness.stub_instrument()
    harness.stub_signature(req, pid, signed, version="2")
    seen: list[dict[str, Any]] = []
    real_verify = harness.plugin.predebit.verify

    def verify(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        return real_verify(event)

    harness.plugin.predebit.verify = verify  # type: ignore[method-assign]
    use, state = tool_use(), {}
    # WHEN the 402 is handled and the paid retry settles
    assert harness.after_tool_call(use, state, result).retry is True
    assert "PAYMENT-SIGNATURE" in use["input"]["headers"]
    assert seen[0]["resource"] == "https://api.weather.example/v2/forecast"
    assert harness.hold(pid)["state"] == "SENT"
    harness.after_tool_call(use, state, result_paid(settlement_header(network="eip155:84532")))
    # THEN the hold is POSTED
    assert harness.hold(pid)["state"] == "POSTED"


def test_a_paid_retry_without_a_settlement_warns_once_and_the_hold_stays_sent(harness: Harness, caplog):
    # GIVEN a payment signed and sent
    req = requirement_v1()
    pid = payment_id(harness.session_id, TOOL_USE_ID, req, 1)
    harness.stub_instrument()
    harness.stub_signature(req, pid, eip3009_payload())
    use, state = tool_use(), {}
    assert harness.after_tool_call(use, state, result_402(req)).retry is True
    # WHEN the paid retry's result carries no settlement header (a tool that does not pass it on)
    payload = {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": {}, "url": TOOL_URL}
    with caplog.at_level(logging.INFO, logger="predebit_agentcore"):
        harness.after_tool_call(use, state, {"status": "success", "content": [{"text": json.dumps(payload)}]})
    # THEN the hold stays SENT, its budget still reserved, and one warning line names the paymentId
    assert harness.hold(pid)["state"] == "SENT"
    assert harness.session()["reserved"] == "1.00"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].getMessage() == (
        f"predebit hold {pid} stays SENT: the paid retry's result reports no settlement; "
        "expire will return its budget even if the merchant settled"
    )
