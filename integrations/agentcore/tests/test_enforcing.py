"""PredebitPaymentsPlugin(mode="enforcing") against the real authorize and ledger functions and the
local AgentCore Payments service: authorize signs, the plugin attaches its header and commits.
Nothing is stubbed; the plugin's own AgentCore client must send no request at all."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from bedrock_agentcore.payments.manager import PaymentError

from predebit_agentcore import PredebitDeclined, payment_id

from .conftest import PAY_TO, TOOL_URL, result_402, result_paid, settlement_header
from .local_agentcore import (
    ALICE_INSTRUMENT,
    BOB_WALLET,
    TOOL_USE_ID,
    Enforcing,
    entry_v1,
    entry_v2,
    make_enforcing,
    payment_required_header,
    result_402_v2,
    tool_use,
)


@pytest.fixture
def h() -> Iterator[Enforcing]:
    harness = make_enforcing()
    yield harness
    harness.service.faults({})


def failure_of(state: dict[str, Any], tool_use_id: str = TOOL_USE_ID) -> dict[str, Any]:
    failure = state[f"payment_failure_{tool_use_id}"]
    assert failure["exceptionType"] == "PredebitDeclined"
    return dict(failure)


def assert_no_header(use: dict[str, Any]) -> None:
    headers = use["input"].get("headers", {})
    assert "X-PAYMENT" not in headers
    assert "PAYMENT-SIGNATURE" not in headers


def decoded_header(use: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(use["input"]["headers"][name])))


def signed_to_and_value(payload: dict[str, Any]) -> tuple[str, str]:
    if "authorization" in payload:
        return payload["authorization"]["to"], payload["authorization"]["value"]
    auth = payload["permit2Authorization"]
    return auth["witness"]["to"], auth["permitted"]["amount"]


@pytest.mark.parametrize(
    ("kind", "entry", "header_name"),
    [
        ("v1 EIP-3009", entry_v1(), "X-PAYMENT"),
        ("v2 EIP-3009", entry_v2(), "PAYMENT-SIGNATURE"),
        ("v2 Permit2", entry_v2(permit2=True), "PAYMENT-SIGNATURE"),
    ],
)
def test_a_yes_attaches_authorizes_header_and_commit_posts_the_hold(
    h: Enforcing, kind: str, entry: dict[str, Any], header_name: str
):
    # GIVEN a 0.01 USDC 402 on Base Sepolia
    v2 = entry.get("amount") is not None
    header = payment_required_header(entry) if v2 else ""
    result = result_402_v2(header) if v2 else result_402(entry)
    requests_before = h.service.process_payment_requests()
    use, state = tool_use(), {}
    # WHEN the 402 comes back from the tool
    event = h.after_tool_call(use, state, result)
    # THEN authorize was invoked once with the 402 as received, and its header is on the retried request
    assert event.retry is True, state
    assert len(h.authorize_events) == 1
    sent = h.authorize_events[0]
    if v2:
        assert (sent["x402Version"], sent["paymentRequired"]) == (2, header)
        assert "body" not in sent
    else:
        assert (sent["x402Version"], sent["body"]["accepts"]) == (1, [entry])
        assert "paymentRequired" not in sent
    assert sent["requestUrl"] == TOOL_URL
    assert (sent["userId"], sent["agentId"], sent["paymentSessionId"]) == ("user-alice", "agent-research", h.session_id)
    assert (sent["paymentInstrumentId"], sent["toolName"], sent["toolUseId"], sent["attempt"]) == (
        ALICE_INSTRUMENT,
        "http_request",
        TOOL_USE_ID,
        1,
    )
    paid = decoded_header(use, header_name)
    assert signed_to_and_value(paid["payload"]) == (PAY_TO, "10000"), kind
    # the hold is SENT under the paymentId of the layout, and AgentCore signed exactly once, for authorize
    pid = payment_id(h.session_id, TOOL_USE_ID, entry, 1)
    assert h.hold(pid)["state"] == "SENT"
    assert h.service.signatures(h.session_id) == 1
    assert h.service.process_payment_requests() == requests_before + 1
    # WHEN the paid retry returns 200 with a successful settlement
    network = "eip155:84532" if v2 else "base-sepolia"
    h.after_tool_call(use, state, result_paid(settlement_header(amount="10000", network=network)))
    # THEN the hold is POSTED, the session settled 0.01, and the plugin's own AgentCore client sent nothing
    assert h.hold(pid)["state"] == "POSTED"
    session = h.session()["session"]
    assert (session["settled"], session["reserved"]) == ("0.01", "0.00")
    assert h.service.signatures(h.session_id) == 1
    assert h.agentcore_calls == []
    assert pid not in h.plugin.holds


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        (entry_v2(amount="5000001"), "AMOUNT_OVER_PAYMENT_LIMIT"),  # alice's cap is 5.00
        (entry_v2(asset="0x1111111111111111111111111111111111111111"), "ASSET_NOT_ALLOWED"),
    ],
)
def test_a_no_from_authorize_is_declined_with_no_signature_and_no_hold(h: Enforcing, entry: dict[str, Any], code: str):
    # GIVEN a 402 authorize must refuse
    use, state = tool_use(), {}
    # WHEN it is handled
    event = h.after_tool_call(use, state, result_402_v2(payment_required_header(entry)))
    # THEN the agent gets predebit's structured decline, no header, and nothing was signed or held
    failure = failure_of(state)
    assert failure["reasonCode"] == code
    assert failure["verificationId"]
    assert event.retry is False
    assert_no_header(use)
    assert h.service.signatures(h.session_id) == 0
    answer = h.session()
    assert answer["holds"] == []
    assert answer["session"]["reserved"] == "0.00"
    assert h.agentcore_calls == []


def test_a_replayed_attempt_gets_the_same_header_without_a_second_signature(h: Enforcing):
    # GIVEN a 402 paid once (header attached, hold SENT)
    entry = entry_v2()
    first_use, first_state = tool_use(), {}
    assert h.after_tool_call(first_use, first_state, result_402_v2(payment_required_header(entry))).retry is True
    replays_before = h.service.replays()
    # WHEN the same tool call and attempt comes again (a new invocation, e.g. after a lost answer)
    again_use, again_state = tool_use(), {}
    assert h.after_tool_call(again_use, again_state, result_402_v2(payment_required_header(entry))).retry is True
    # THEN the header is the same signature, AgentCore replayed it, and it signed only once
    assert again_use["input"]["headers"]["PAYMENT-SIGNATURE"] == first_use["input"]["headers"]["PAYMENT-SIGNATURE"]
    assert h.service.signatures(h.session_id) == 1
    assert h.service.replays() == replays_before + 1
    pid = payment_id(h.session_id, TOOL_USE_ID, entry, 1)
    assert [hold["paymentId"] for hold in h.session()["holds"]] == [pid]
    # WHEN it settles, and the attempt is replayed once more
    h.after_tool_call(again_use, again_state, result_paid(settlement_header(amount="10000", network="eip155:84532")))
    assert h.hold(pid)["state"] == "POSTED"
    late_use, late_state = tool_use(), {}
    event = h.after_tool_call(late_use, late_state, result_402_v2(payment_required_header(entry)))
    # THEN a posted attempt is never signed again
    assert failure_of(late_state)["reasonCode"] == "HOLD_ALREADY_POSTED"
    assert event.retry is False
    assert_no_header(late_use)
    assert h.service.signatures(h.session_id) == 1


def test_a_signer_that_keeps_failing_is_signer_unavailable_with_no_header(h: Enforcing):
    # GIVEN AgentCore answering 500 to every ProcessPayment
    h.service.faults({"internalError": {"times": -1}})
    use, state = tool_use(), {}
    # WHEN the 402 is handled
    event = h.after_tool_call(use, state, result_402_v2(payment_required_header(entry_v2())))
    # THEN the same authorize event was sent twice (the re-send continues the same paymentId), then declined
    assert len(h.authorize_events) == 2
    assert h.authorize_events[0] == h.authorize_events[1]
    assert failure_of(state)["reasonCode"] == "SIGNER_UNAVAILABLE"
    assert event.retry is False
    assert_no_header(use)
    assert h.service.signatures(h.session_id) == 0
    # the hold stays PENDING (its window voids it), so the same request could still continue
    assert [hold["state"] for hold in h.session()["holds"]] == ["PENDING"]


def test_a_signer_that_recovers_continues_the_same_payment_on_the_resend(h: Enforcing):
    # GIVEN AgentCore signing but losing its answer (500 after signing) during the first authorize call only
    h.service.faults({"internalError": {"times": -1, "afterSigning": True}})
    first_call = h.plugin.predebit.authorize

    def authorize_then_heal(event: dict[str, Any]) -> dict[str, Any]:
        answer = first_call(event)
        h.service.faults({})
        return answer

    h.plugin.predebit.authorize = authorize_then_heal  # type: ignore[method-assign]
    use, state = tool_use(), {}
    # WHEN the 402 is handled
    event = h.after_tool_call(use, state, result_402_v2(payment_required_header(entry_v2())))
    # THEN the re-send got the signature AgentCore had stored: one signature, header attached, hold SENT
    assert [e["attempt"] for e in h.authorize_events] == [1, 1]
    assert event.retry is True, state
    assert "PAYMENT-SIGNATURE" in use["input"]["headers"]
    assert h.service.signatures(h.session_id) == 1
    assert [hold["state"] for hold in h.session()["holds"]] == ["SENT"]


@pytest.mark.parametrize("wrong", [{"payTo": BOB_WALLET}, {"value": "20000"}, {"validBeforeDeltaSeconds": 3600}])
def test_a_signature_with_other_terms_is_signed_payload_mismatch_and_never_attached(
    h: Enforcing, wrong: dict[str, Any]
):
    # GIVEN AgentCore signing other terms than the requirement's
    h.service.faults({"wrongTerms": wrong})
    use, state = tool_use(), {}
    # WHEN the 402 is handled
    event = h.after_tool_call(use, state, result_402_v2(payment_required_header(entry_v2())))
    # THEN authorize discarded the signature: NO SIGNED_PAYLOAD_MISMATCH, no header, the hold VOIDED
    assert failure_of(state)["reasonCode"] == "SIGNED_PAYLOAD_MISMATCH"
    assert event.retry is False
    assert_no_header(use)
    answer = h.session()
    assert [hold["state"] for hold in answer["holds"]] == ["VOIDED"]
    assert answer["session"]["reserved"] == "0.00"


def test_the_enforcing_plugin_never_calls_process_payment_itself(h: Enforcing):
    # GIVEN the plugin's own PaymentManager and its boto3 client
    manager = h.plugin.payment_manager
    assert manager is not None
    requests_before = h.service.process_payment_requests()
    args: dict[str, Any] = {
        "payment_session_id": h.session_id,
        "payment_instrument_id": ALICE_INSTRUMENT,
        "payment_type": "CRYPTO_X402",
        "payment_input": {"cryptoX402": {"version": "2", "payload": entry_v2()}},
        "user_id": "user-alice",
    }
    # WHEN anything in the agent's process asks it to sign: the manager, or its client directly
    with pytest.raises(PredebitDeclined) as refused:
        manager.process_payment(**args)
    assert refused.value.reason_code == "OP_NOT_ALLOWED"
    with pytest.raises(PredebitDeclined):
        manager._payment_client.process_payment(
            paymentManagerArn="arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/predebit-local-a1b2c3d4e5",
            userId="user-alice",
            paymentSessionId=h.session_id,
            paymentInstrumentId=ALICE_INSTRUMENT,
            paymentType="CRYPTO_X402",
            paymentInput={"cryptoX402": {"version": "2", "payload": entry_v2()}},
            clientToken="c" * 64,
        )
    # THEN no request left the process: the service saw no ProcessPayment and signed nothing
    assert h.service.process_payment_requests() == requests_before
    assert h.service.signatures(h.session_id) == 0
    assert h.agentcore_calls == []


def test_a_402_from_another_origin_is_refused_before_authorize(h: Enforcing):
    # GIVEN a tool result saying the 402 came from another origin than the URL requested (a redirect)
    use, state = tool_use(), {}
    result = result_402_v2(payment_required_header(entry_v2()), url="https://elsewhere.example/pay")
    # WHEN it is handled
    event = h.after_tool_call(use, state, result)
    # THEN RESOURCE_MISMATCH, and authorize was never asked
    assert failure_of(state)["reasonCode"] == "RESOURCE_MISMATCH"
    assert event.retry is False
    assert h.authorize_events == []
    assert h.service.signatures(h.session_id) == 0


def test_a_decline_is_a_payment_error_the_sdk_reports_as_an_interrupt(h: Enforcing):
    # GIVEN a declined payment
    use, state = tool_use(), {}
    h.after_tool_call(use, state, result_402_v2(payment_required_header(entry_v2(amount="5000001"))))
    failure = failure_of(state)
    # THEN it is the SDK's failure record plus predebit's fields, naming no value from the 402
    assert issubclass(PredebitDeclined, PaymentError)
    assert failure["exceptionMessage"].startswith("predebit declined the payment: AMOUNT_OVER_PAYMENT_LIMIT")
    assert "5000001" not in json.dumps(failure)
