"""The plugin's failure paths after a signature, against the real verify and ledger functions:
markSent failing, a header never applied, ledger retries and their final failure, and the
settlement of an MCP Gateway call. Only AgentCore (GetPaymentInstrument, ProcessPayment) is
stubbed; a ledger "outage" sends the chosen ops to a loopback port nothing listens on."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

from predebit_agentcore import payment_id

from .conftest import (
    TOOL_URL,
    Harness,
    SwitchableLedger,
    eip3009_payload,
    invoke_ledger,
    lambda_client,
    make_harness,
    requirement_v1,
    result_402,
    result_paid,
    settlement_header,
)
from .test_plugin_flow import TOOL_USE_ID, tool_use

CLIENT_LOGGER = "predebit_agentcore.client"


class Sleeps:
    """An injected sleep that records the backoff instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def outage_harness(url: str, attempts: int = 3) -> tuple[Harness, SwitchableLedger, Sleeps]:
    switch = SwitchableLedger(lambda_client(url))
    sleeps = Sleeps()
    h = make_harness(url, predebit_client=switch, ledger_attempts=attempts, sleep=sleeps)
    return h, switch, sleeps


@pytest.fixture
def outage(ledger_url: str):
    h, switch, sleeps = outage_harness(ledger_url)
    yield h, switch, sleeps
    h.stubber.deactivate()


def signed_and_ready(h: Harness) -> tuple[dict[str, Any], str]:
    req = requirement_v1()
    pid = payment_id(h.session_id, TOOL_USE_ID, req, 1)
    h.stub_instrument()
    h.stub_signature(req, pid, eip3009_payload())
    return req, pid


# ---- markSent failing: the header is taken back, the hold released, the payment declined ----


def test_mark_sent_unreachable_takes_the_header_back_releases_and_declines(outage, caplog):
    h, switch, sleeps = outage
    # GIVEN the ledger can be reached for reserve and release but not for markSent
    switch.unreachable = {"markSent"}
    req, pid = signed_and_ready(h)
    use, state = tool_use(), {}
    # WHEN the 402 is handled and ProcessPayment signs
    with caplog.at_level(logging.WARNING):
        event = h.after_tool_call(use, state, result_402(req))
    # THEN markSent was tried with backoff, then given up (counted) ...
    h.stubber.assert_no_pending_responses()
    assert switch.calls.count("markSent") == 3
    assert sleeps.delays == [0.01, 0.02]
    assert h.plugin.predebit.final_failures == 1
    assert "markSent" in caplog.text and "failed after 3 tries" in caplog.text
    # ... the header is gone and the paid retry does not go out ...
    assert event.retry is False
    assert "X-PAYMENT" not in use["input"].get("headers", {})
    assert f"payment_signed_{TOOL_USE_ID}" not in state
    # ... the hold was released as never sent, and the agent gets a structured decline
    hold = h.hold(pid)
    assert (hold["state"], hold["voidReason"]) == ("VOIDED", "NOT_SENT")
    assert h.session()["reserved"] == "0.00"
    assert pid not in h.plugin.holds
    failure = state[f"payment_failure_{TOOL_USE_ID}"]
    assert (failure["exceptionType"], failure["reasonCode"]) == ("PredebitDeclined", "VERIFIER_UNAVAILABLE")
    assert failure["verificationId"]
    interrupts = h.before_tool_call(use, state)
    assert len(interrupts) == 1 and interrupts[0].reason["reasonCode"] == "VERIFIER_UNAVAILABLE"
    # AND no header or token reached the log
    assert "decisionToken" not in caplog.text and "eyJ" not in caplog.text


def test_mark_sent_refused_by_the_ledger_is_not_sent_and_released(harness: Harness):
    # GIVEN markSent reports terms that differ from the approved payment, which the ledger refuses
    req, pid = signed_and_ready(harness)
    client = harness.plugin.predebit
    real_ledger = client.ledger
    marks: list[dict[str, Any]] = []

    def ledger(event: dict[str, Any], attempts: Any = None) -> dict[str, Any]:
        if event["op"] == "markSent":
            event = {**event, "signed": {**event["signed"], "value": "2000000"}}
            marks.append(event)
        return real_ledger(event, attempts)

    client.ledger = ledger  # type: ignore[method-assign]
    use, state = tool_use(), {}
    # WHEN the 402 is handled
    event = harness.after_tool_call(use, state, result_402(req))
    # THEN the refusal is final (not retried), nothing goes out, the hold is VOIDED as NOT_SENT
    harness.stubber.assert_no_pending_responses()
    assert len(marks) == 1
    assert client.final_failures == 0
    assert event.retry is False
    assert "X-PAYMENT" not in use["input"].get("headers", {})
    assert f"payment_signed_{TOOL_USE_ID}" not in state
    hold = harness.hold(pid)
    assert (hold["state"], hold["voidReason"]) == ("VOIDED", "NOT_SENT")
    failure = state[f"payment_failure_{TOOL_USE_ID}"]
    assert (failure["exceptionType"], failure["reasonCode"]) == ("PredebitDeclined", "SIGNED_PAYLOAD_MISMATCH")
    # AND the tool is not re-run with the payment: a later result commits nothing
    harness.after_tool_call(use, state, result_paid(settlement_header()))
    assert harness.hold(pid)["state"] == "VOIDED"
    assert harness.session()["settled"] == "0.00"


@pytest.mark.usefixtures("without_host_rules")
def test_mark_sent_refused_for_a_mcp_call_takes_the_header_out_of_parameters(harness: Harness):
    # GIVEN an MCP Gateway tool call whose markSent the ledger refuses
    req, pid = signed_and_ready(harness)
    client = harness.plugin.predebit
    real_ledger = client.ledger

    def ledger(event: dict[str, Any], attempts: Any = None) -> dict[str, Any]:
        if event["op"] == "markSent":
            event = {**event, "signed": {**event["signed"], "to": "0x000000000000000000000000000000000000bEEF"}}
        return real_ledger(event, attempts)

    client.ledger = ledger  # type: ignore[method-assign]
    use, state = mcp_tool_use(), {}
    event = harness.after_tool_call(use, state, mcp_result_402(req))
    # THEN the header the SDK put into parameters.headers is gone and the hold is released
    assert event.retry is False
    assert "X-PAYMENT" not in use["input"]["parameters"].get("headers", {})
    hold = harness.hold(pid)
    assert (hold["state"], hold["voidReason"]) == ("VOIDED", "NOT_SENT")
    assert state[f"payment_failure_{TOOL_USE_ID}"]["reasonCode"] == "SIGNED_PAYLOAD_MISMATCH"


# ---- a header never applied ----------------------------------------------------------------


def test_signed_payment_whose_header_is_never_applied_is_released_as_not_sent(harness: Harness):
    # GIVEN a tool input whose headers are a string, so the SDK signs but cannot apply the header
    req, pid = signed_and_ready(harness)
    use = tool_use()
    use["input"]["headers"] = "Accept: application/json"
    state: dict[str, Any] = {}
    # WHEN the 402 is handled
    event = harness.after_tool_call(use, state, result_402(req))
    # THEN ProcessPayment signed, the SDK did not retry, and the hold was released as never sent
    harness.stubber.assert_no_pending_responses()
    assert event.retry is False
    assert use["input"]["headers"] == "Accept: application/json"
    assert f"payment_signed_{TOOL_USE_ID}" not in state
    hold = harness.hold(pid)
    assert (hold["state"], hold["voidReason"]) == ("VOIDED", "NOT_SENT")
    assert harness.session()["reserved"] == "0.00"
    assert pid not in harness.plugin.holds
    assert state[f"payment_failure_{TOOL_USE_ID}"]["exceptionType"] == "Exception"


# ---- ledger retries: backoff, then a final failure that is logged and counted ----------------


def test_commit_is_retried_with_backoff_until_the_ledger_answers(outage):
    h, switch, sleeps = outage
    req, pid = signed_and_ready(h)
    use, state = tool_use(), {}
    assert h.after_tool_call(use, state, result_402(req)).retry is True
    assert h.hold(pid)["state"] == "SENT"
    # GIVEN the ledger is unreachable for the first two commit tries
    switch.unreachable, switch.fail_next = {"commit"}, 2
    # WHEN the paid retry settles
    h.after_tool_call(use, state, result_paid(settlement_header()))
    # THEN the third try commits, after backing off twice, and nothing counts as a final failure
    assert switch.calls.count("commit") == 3
    assert sleeps.delays == [0.01, 0.02]
    assert h.plugin.predebit.final_failures == 0
    assert h.hold(pid)["state"] == "POSTED"
    assert pid not in h.plugin.holds


def test_commit_final_failure_is_logged_counted_and_the_hold_stays_sent(outage, caplog):
    h, switch, sleeps = outage
    req, pid = signed_and_ready(h)
    use, state = tool_use(), {}
    assert h.after_tool_call(use, state, result_402(req)).retry is True
    # GIVEN the ledger is unreachable for every commit try
    switch.unreachable = {"commit"}
    settlement = settlement_header()
    # WHEN the paid retry settles
    with caplog.at_level(logging.WARNING):
        h.after_tool_call(use, state, result_paid(settlement))
    # THEN every try was made with backoff, the give-up is logged and counted, not dropped
    assert switch.calls.count("commit") == 3
    assert sleeps.delays == [0.01, 0.02]
    assert h.plugin.predebit.final_failures == 1
    errors = [r for r in caplog.records if r.name == CLIENT_LOGGER and r.levelno == logging.ERROR]
    assert len(errors) == 1 and "commit" in errors[0].getMessage() and pid in errors[0].getMessage()
    assert settlement not in caplog.text
    # AND the hold is still tracked by the plugin and SENT in the ledger (its expiry is the backstop)
    assert pid in h.plugin.holds
    assert h.hold(pid)["state"] == "SENT"
    assert h.session()["reserved"] == "1.00"


def test_release_final_failure_after_a_signing_failure_is_logged_and_counted(outage, caplog):
    h, switch, sleeps = outage
    # GIVEN ProcessPayment fails and the ledger is unreachable for release
    req = requirement_v1()
    pid = payment_id(h.session_id, TOOL_USE_ID, req, 1)
    h.stub_instrument()
    h.stubber.add_client_error("process_payment", service_error_code="InternalServerException", http_status_code=500)
    switch.unreachable = {"release"}
    use, state = tool_use(), {}
    # WHEN the 402 is handled
    with caplog.at_level(logging.WARNING):
        event = h.after_tool_call(use, state, result_402(req))
    # THEN release was tried with backoff, the final failure logged and counted ...
    assert switch.calls.count("release") == 3
    assert sleeps.delays == [0.01, 0.02]
    assert h.plugin.predebit.final_failures == 1
    assert any(
        r.name == CLIENT_LOGGER and r.levelno == logging.ERROR and "release" in r.getMessage() for r in caplog.records
    )
    # ... the signing failure still reaches the agent, and the hold stays PENDING (its window voids it)
    assert event.retry is False
    assert state[f"payment_failure_{TOOL_USE_ID}"]["exceptionType"] == "PaymentError"
    assert pid in h.plugin.holds
    assert h.hold(pid)["state"] == "PENDING"


def test_release_is_retried_until_the_ledger_answers(outage):
    h, switch, sleeps = outage
    # GIVEN the signed payload differs from the approval and release fails once
    req = requirement_v1()
    pid = payment_id(h.session_id, TOOL_USE_ID, req, 1)
    h.stub_instrument()
    h.stub_signature(req, pid, eip3009_payload(value="2000000"))
    switch.unreachable, switch.fail_next = {"release"}, 1
    state: dict[str, Any] = {}
    h.after_tool_call(tool_use(), state, result_402(req))
    # THEN the second try releases it
    assert switch.calls.count("release") == 2
    assert sleeps.delays == [0.01]
    assert h.plugin.predebit.final_failures == 0
    hold = h.hold(pid)
    assert (hold["state"], hold["voidReason"]) == ("VOIDED", "SIGNED_PAYLOAD_MISMATCH")


# ---- MCP: 402 in structuredContent, settlement only in _meta["x402/payment-response"] ----------


def mcp_tool_use() -> dict[str, Any]:
    return {
        "toolUseId": TOOL_USE_ID,
        "name": "fetch_weather",
        "input": {"toolName": "weather___forecast", "parameters": {"city": "Lisbon"}},
    }


def mcp_result_402(requirement: dict[str, Any]) -> dict[str, Any]:
    required = {"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [requirement]}
    return {"status": "success", "content": [{"text": "Payment required"}], "structuredContent": required}


def settlement_object(header: str) -> dict[str, Any]:
    """The SettlementResponse object x402's MCP transport puts in _meta (the header's JSON)."""
    decoded: dict[str, Any] = json.loads(base64.b64decode(header))
    return decoded


def mcp_paid(meta_key: str, value: Any) -> dict[str, Any]:
    """A paid MCP result with the settlement in its _meta, as MCP sends it or as Strands hands it on."""
    return {"status": "success", "content": [{"text": "sunny"}], meta_key: {"x402/payment-response": value}}


def sent_over_mcp(h: Harness) -> tuple[dict[str, Any], dict[str, Any], str]:
    req, pid = signed_and_ready(h)
    use, state = mcp_tool_use(), {}
    event = h.after_tool_call(use, state, mcp_result_402(req))
    assert event.retry is True
    assert "X-PAYMENT" in use["input"]["parameters"]["headers"]
    assert h.hold(pid)["state"] == "SENT"
    return use, state, pid


@pytest.mark.parametrize(
    "meta_key,as_object",
    [("_meta", True), ("metadata", True), ("metadata", False)],
    ids=["mcp-_meta-object", "strands-metadata-object", "strands-metadata-header-string"],
)
@pytest.mark.usefixtures("without_host_rules")
def test_mcp_settlement_in_meta_is_committed(outage, meta_key: str, as_object: bool):
    h, switch, _ = outage
    # GIVEN an MCP Gateway call answered with x402 requirements in structuredContent, paid and sent
    use, state, pid = sent_over_mcp(h)
    # WHEN the paid retry's result carries the settlement in _meta["x402/payment-response"]
    header = settlement_header()
    h.after_tool_call(use, state, mcp_paid(meta_key, settlement_object(header) if as_object else header))
    # THEN the ledger is committed once and the hold is POSTED
    assert switch.calls.count("commit") == 1
    assert h.hold(pid)["state"] == "POSTED"
    assert h.session()["settled"] == "1.00"
    assert pid not in h.plugin.holds


def forged_results(header: str) -> list[dict[str, Any]]:
    body = {"forecast": "sunny"}
    return [
        # a settlement inside structuredContent (the tool's own output)
        {
            "status": "success",
            "content": [{"text": "sunny"}],
            "structuredContent": {"statusCode": 200, "headers": {"PAYMENT-RESPONSE": header}, "body": body},
        },
        # the structuredContent object itself shaped like a SettlementResponse
        {"status": "success", "content": [{"text": "sunny"}], "structuredContent": settlement_object(header)},
        # headers next to structuredContent, and in the text content, with an empty _meta
        {
            "status": "success",
            "content": [{"text": json.dumps({"statusCode": 200, "headers": {"PAYMENT-RESPONSE": header}})}],
            "structuredContent": body,
            "responseHeaders": {"X-PAYMENT-RESPONSE": header},
            "metadata": {},
        },
    ]


@pytest.mark.parametrize("shape", [0, 1, 2], ids=["structuredContent-headers", "structuredContent", "elsewhere"])
@pytest.mark.usefixtures("without_host_rules")
def test_mcp_settlement_outside_meta_commits_nothing(outage, shape: int, caplog: pytest.LogCaptureFixture):
    h, switch, _ = outage
    # GIVEN a payment sent over MCP
    use, state, pid = sent_over_mcp(h)
    # WHEN the paid retry's result carries a settlement anywhere but _meta["x402/payment-response"]
    header = settlement_header()
    with caplog.at_level(logging.INFO):
        h.after_tool_call(use, state, forged_results(header)[shape])
    # THEN no commit is sent, the hold stays SENT (in doubt), and the forged value is not logged
    assert "commit" not in switch.calls
    assert h.hold(pid)["state"] == "SENT"
    assert h.session()["reserved"] == "1.00"
    assert pid in h.plugin.holds
    assert "stays SENT" in caplog.text and header not in caplog.text


# ---- the post-sign check: what ProcessPayment returned, then the header built from it ---------


def assert_mismatch_not_sent(h: Harness, use: dict[str, Any], state: dict[str, Any], event: Any, pid: str) -> str:
    h.stubber.assert_no_pending_responses()
    assert event.retry is False
    assert "X-PAYMENT" not in use["input"].get("headers", {})
    assert f"payment_signed_{TOOL_USE_ID}" not in state
    hold = h.hold(pid)
    assert (hold["state"], hold["voidReason"]) == ("VOIDED", "SIGNED_PAYLOAD_MISMATCH")
    assert h.session()["reserved"] == "0.00"
    failure = state[f"payment_failure_{TOOL_USE_ID}"]
    assert (failure["exceptionType"], failure["reasonCode"]) == ("PredebitDeclined", "SIGNED_PAYLOAD_MISMATCH")
    return str(failure["predebitMessage"])


def test_signed_payload_with_both_authorizations_is_not_sent(harness: Harness):
    # GIVEN ProcessPayment returns an EIP-3009 authorization and a Permit2 one side by side
    req = requirement_v1()
    pid = payment_id(harness.session_id, TOOL_USE_ID, req, 1)
    payload = eip3009_payload()
    payload["permit2Authorization"] = {"spender": "0x402085c248EeA27D92E8b30b2C58ed07f9E20001"}
    harness.stub_instrument()
    harness.stub_signature(req, pid, payload)
    use, state = tool_use(), {}
    # WHEN the 402 is handled
    event = harness.after_tool_call(use, state, result_402(req))
    # THEN it is refused before the header is built, and the hold is released
    message = assert_mismatch_not_sent(harness, use, state, event, pid)
    assert "both authorization" in message


def test_header_naming_another_network_than_the_approved_one_is_never_applied(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN the SDK's header encoder names Base Sepolia while predebit approved Base
    manager = harness.plugin.payment_manager
    assert manager is not None
    real_build = manager._build_payment_header

    def build(version: int, x402_payload: Any, accept: dict[str, Any], proof: Any) -> dict[str, str]:
        return real_build(version, x402_payload, {**accept, "network": "base-sepolia"}, proof)

    monkeypatch.setattr(manager, "_build_payment_header", build)
    req = requirement_v1()
    pid = payment_id(harness.session_id, TOOL_USE_ID, req, 1)
    harness.stub_instrument()
    harness.stub_signature(req, pid, eip3009_payload())
    use, state = tool_use(), {}
    # WHEN the 402 is handled
    event = harness.after_tool_call(use, state, result_402(req))
    # THEN the header is never applied, the hold is released, and the message names the field only
    message = assert_mismatch_not_sent(harness, use, state, event, pid)
    assert "network" in message and "base-sepolia" not in message


def test_header_carrying_another_payload_than_the_one_checked_is_never_applied(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN the header encoder swaps the recipient after ProcessPayment's payload passed the check
    manager = harness.plugin.payment_manager
    assert manager is not None
    real_build = manager._build_payment_header

    def build(version: int, x402_payload: Any, accept: dict[str, Any], proof: Any) -> dict[str, str]:
        swapped = {"payload": {**proof["payload"], "authorization": {**proof["payload"]["authorization"]}}}
        swapped["payload"]["authorization"]["to"] = "0x000000000000000000000000000000000000bEEF"
        return real_build(version, x402_payload, accept, swapped)

    monkeypatch.setattr(manager, "_build_payment_header", build)
    req = requirement_v1()
    pid = payment_id(harness.session_id, TOOL_USE_ID, req, 1)
    harness.stub_instrument()
    harness.stub_signature(req, pid, eip3009_payload())
    use, state = tool_use(), {}
    event = harness.after_tool_call(use, state, result_402(req))
    message = assert_mismatch_not_sent(harness, use, state, event, pid)
    assert "header.payload" in message


def test_permit2_to_the_pre_audit_proxy_is_refused_unless_configured(ledger_url: str):
    # GIVEN a v2 Permit2 payment whose spender is @x402/evm's old x402ExactPermit2Proxy
    import time

    old_proxy = "0x4020615294c913F045dc10f0a5cdEbd86c280001"
    usdc_sepolia = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
    req = {
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": "1000000",
        "asset": usdc_sepolia,
        "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2", "assetTransferMethod": "permit2"},
    }
    header = base64.b64encode(
        json.dumps(
            {"x402Version": 2, "resource": {"url": "https://api.weather.example/v2/forecast"}, "accepts": [req]}
        ).encode()
    ).decode()
    result = {
        "status": "success",
        "content": [
            {
                "text": "PAYMENT_REQUIRED: "
                + json.dumps({"statusCode": 402, "headers": {"PAYMENT-REQUIRED": header}, "body": {}, "url": TOOL_URL})
            }
        ],
    }

    def signed() -> dict[str, Any]:
        now = int(time.time())
        return {
            "signature": "0x" + "ab" * 65,
            "permit2Authorization": {
                "from": "0x857b06519E91e3A54538791bDbb0E22373e36b66",
                "permitted": {"token": usdc_sepolia, "amount": "1000000"},
                "spender": old_proxy,
                "nonce": "1234",
                "deadline": str(now + 50),
                "witness": {"to": req["payTo"], "validAfter": "0"},
            },
        }

    for proxies, expected in [(None, False), ((old_proxy,), True)]:
        h = make_harness(ledger_url)
        if proxies is not None:
            h.plugin.predebit_config.permit2_proxies = proxies
        pid = payment_id(h.session_id, TOOL_USE_ID, req, 1)
        h.stub_instrument()
        h.stub_signature(req, pid, signed(), version="2")
        use, state = tool_use(), {}
        # WHEN the 402 is handled
        event = h.after_tool_call(use, state, result)
        # THEN the default refuses the spender; a configuration naming it sends the payment
        assert event.retry is expected
        if expected:
            assert h.hold(pid)["state"] == "SENT"
        else:
            assert "spender" in assert_mismatch_not_sent(h, use, state, event, pid)
        h.stubber.deactivate()


# ---- holdToken, against the functions ---------------------------------------------------------


def test_every_ledger_call_after_reserve_presents_reserves_hold_token(outage, caplog: pytest.LogCaptureFixture):
    h, switch, _ = outage
    # GIVEN a payment signed, sent and settled through the real ledger (every log level on)
    req, pid = signed_and_ready(h)
    use, state = tool_use(), {}
    with caplog.at_level(logging.DEBUG, logger="predebit_agentcore"):
        assert h.after_tool_call(use, state, result_402(req)).retry is True
        h.after_tool_call(use, state, result_paid(settlement_header()))
    # THEN markSent and commit each presented the token reserve returned, and the hold is POSTED
    token = h.hold_tokens[pid]
    assert token.startswith("v1.")
    assert [e.get("op", "verify") for e in switch.events] == ["verify", "reserve", "markSent", "commit"]
    assert [e.get("holdToken") for e in switch.events[2:]] == [token, token]
    assert h.hold(pid)["state"] == "POSTED"
    # AND no predebit log line carries it
    assert caplog.records and all(token not in r.getMessage() for r in caplog.records)


def test_release_presents_the_hold_token_and_a_forged_one_changes_nothing(outage):
    h, switch, _ = outage
    # GIVEN ProcessPayment fails, so the plugin releases the hold
    req = requirement_v1()
    pid = payment_id(h.session_id, TOOL_USE_ID, req, 1)
    h.stub_instrument()
    h.stubber.add_client_error("process_payment", service_error_code="InternalServerException", http_status_code=500)
    h.after_tool_call(tool_use(), {}, result_402(req))
    # THEN the release presented the token and the ledger voided the hold
    release = [e for e in switch.events if e.get("op") == "release"]
    assert len(release) == 1 and release[0]["holdToken"] == h.hold_tokens[pid]
    assert h.hold(pid)["state"] == "VOIDED"
    # AND the ledger refuses a getHold with another token (TOKEN_INVALID)
    forged = h.hold_tokens[pid][:-4] + ("AAAA" if not h.hold_tokens[pid].endswith("AAAA") else "BBBB")
    refused = invoke_ledger(
        h.ledger_client, {"op": "getHold", "paymentSessionId": h.session_id, "paymentId": pid, "holdToken": forged}
    )
    assert (refused["ok"], refused["reasonCode"]) == (False, "TOKEN_INVALID")
