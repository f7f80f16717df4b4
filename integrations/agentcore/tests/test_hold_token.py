"""holdToken: reserve's token is kept on the plugin's Hold, presented on every later ledger op on
that hold, and never logged. Unit tests against a stand-in for the functions (tests/fake_predebit.py),
AgentCore stubbed with botocore's Stubber as in the other tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from predebit_agentcore import payment_id

from .conftest import Harness, eip3009_payload, make_harness, requirement_v1, result_402, result_paid, settlement_header
from .fake_predebit import DECISION_TOKEN, HOLD_TOKEN, FakePredebit
from .test_plugin_flow import TOOL_USE_ID, tool_use

NOWHERE = "http://127.0.0.1:9"  # the Harness's own ledger client is never used here


def harness_on(fake: FakePredebit) -> Harness:
    return make_harness(NOWHERE, open_session=False, predebit_client=fake, ledger_attempts=2, sleep=lambda _: None)


@pytest.fixture
def fake() -> FakePredebit:
    return FakePredebit()


@pytest.fixture
def h(fake: FakePredebit) -> Iterator[Harness]:
    harness = harness_on(fake)
    yield harness
    harness.stubber.deactivate()


def sign(h: Harness, payload: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    req = requirement_v1()
    pid = payment_id(h.session_id, TOOL_USE_ID, req, 1)
    h.stub_instrument()
    h.stub_signature(req, pid, payload or eip3009_payload())
    return req, pid


def test_every_ledger_call_after_reserve_carries_the_hold_token(h: Harness, fake: FakePredebit):
    # GIVEN a payment signed, sent and settled
    req, pid = sign(h)
    use, state = tool_use(), {}
    assert h.after_tool_call(use, state, result_402(req)).retry is True
    h.after_tool_call(use, state, result_paid(settlement_header()))
    # THEN reserve came after verify, and markSent and commit each presented reserve's holdToken
    assert fake.ops() == ["verify", "reserve", "markSent", "commit"]
    assert all(e["holdToken"] == HOLD_TOKEN for e in fake.after_reserve())
    assert all(e["paymentId"] == pid for e in fake.after_reserve())
    assert "holdToken" not in fake.events[0] and "holdToken" not in fake.events[1]
    assert fake.state == "POSTED"


def test_release_after_a_signing_failure_carries_the_hold_token(h: Harness, fake: FakePredebit):
    req = requirement_v1()
    h.stub_instrument()
    h.stubber.add_client_error("process_payment", service_error_code="InternalServerException", http_status_code=500)
    h.after_tool_call(tool_use(), {}, result_402(req))
    assert fake.ops() == ["verify", "reserve", "release"]
    assert fake.events[-1]["holdToken"] == HOLD_TOKEN
    assert fake.events[-1]["reason"] == "SIGNING_FAILED"
    assert fake.state == "VOIDED"


def test_release_of_a_mismatched_signature_carries_the_hold_token(h: Harness, fake: FakePredebit):
    req, _ = sign(h, eip3009_payload(value="2000000"))
    state: dict[str, Any] = {}
    h.after_tool_call(tool_use(), state, result_402(req))
    assert fake.ops() == ["verify", "reserve", "release"]
    assert (fake.events[-1]["holdToken"], fake.events[-1]["reason"]) == (HOLD_TOKEN, "SIGNED_PAYLOAD_MISMATCH")
    assert state[f"payment_failure_{TOOL_USE_ID}"]["reasonCode"] == "SIGNED_PAYLOAD_MISMATCH"


def test_no_log_line_carries_the_hold_token_or_the_decision_token(fake: FakePredebit, caplog: pytest.LogCaptureFixture):
    # GIVEN every log level on, a paid payment, then one whose markSent cannot reach the ledger
    with caplog.at_level(logging.DEBUG):
        h = harness_on(fake)
        req, _ = sign(h)
        use, state = tool_use(), {}
        h.after_tool_call(use, state, result_402(req))
        h.after_tool_call(use, state, result_paid(settlement_header()))
        h.stubber.deactivate()
        fake.unreachable = {"markSent"}
        h2 = harness_on(fake)
        req2, _ = sign(h2)
        h2.after_tool_call(tool_use(), {}, result_402(req2))
        h2.stubber.deactivate()
    # THEN the tokens went to the ledger but into no log line (the give-up was logged)
    assert any(e.get("holdToken") == HOLD_TOKEN for e in fake.events)
    assert "failed after 2 tries" in caplog.text
    for record in caplog.records:
        line = record.getMessage()
        assert HOLD_TOKEN not in line and DECISION_TOKEN not in line
        assert "hk1." not in line and "dk1." not in line
    # AND the release after the failed markSent still presented the token
    assert fake.events[-1]["op"] == "release" and fake.events[-1]["holdToken"] == HOLD_TOKEN


def test_the_hold_token_is_not_in_a_holds_repr(h: Harness, fake: FakePredebit):
    # GIVEN a hold the plugin still tracks (SENT, awaiting settlement)
    req, pid = sign(h)
    assert h.after_tool_call(tool_use(), {}, result_402(req)).retry is True
    hold = h.plugin.holds[pid]
    # THEN the token is kept in memory and out of its repr
    assert hold.hold_token == HOLD_TOKEN
    assert HOLD_TOKEN not in repr(hold) and HOLD_TOKEN not in str(h.plugin.holds)


def test_a_reserve_without_a_hold_token_is_declined_before_signing():
    # GIVEN a ledger whose reserve answers ok but returns no holdToken
    fake = FakePredebit(issue_hold_token=False)
    h = harness_on(fake)
    h.stub_instrument()
    state: dict[str, Any] = {}
    event = h.after_tool_call(tool_use(), state, result_402(requirement_v1()))
    # THEN nothing is signed (no ProcessPayment stubbed, none called) and the payment is declined
    h.stubber.assert_no_pending_responses()
    assert fake.ops() == ["verify", "reserve"]
    assert event.retry is False
    failure = state[f"payment_failure_{TOOL_USE_ID}"]
    assert (failure["reasonCode"], failure["exceptionType"]) == ("VERIFIER_UNAVAILABLE", "PredebitDeclined")
    assert "holdToken" in failure["predebitMessage"]
    h.stubber.deactivate()
