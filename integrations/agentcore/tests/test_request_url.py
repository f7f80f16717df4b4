"""requestUrl: the URL the tool call requested, never the 402's, is what verify's host rules
judge; a declared resource on another origin is RESOURCE_MISMATCH. Against the real functions."""

from __future__ import annotations

import base64
import json
from typing import Any

from predebit_agentcore import payment_id
from predebit_agentcore.plugin import request_url_of

from .conftest import PAY_TO, Harness, eip3009_payload, make_harness, requirement_v1
from .test_plugin_failures import mcp_result_402, mcp_tool_use
from .test_plugin_flow import TOOL_USE_ID, assert_declined

USDC_SEPOLIA = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"


def requirement_v2() -> dict[str, Any]:
    return {
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": "1000000",
        "asset": USDC_SEPOLIA,
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2"},
    }


def result_402_v2(requirement: dict[str, Any], resource_url: str | None, answered: str | None = None) -> dict[str, Any]:
    """A v2 402 result; ``answered`` is the URL the tool says answered (the plugin's http_request names it)."""
    required: dict[str, Any] = {"x402Version": 2, "accepts": [requirement]}
    if resource_url is not None:
        required["resource"] = {"url": resource_url, "mimeType": "application/json"}
    header = base64.b64encode(json.dumps(required).encode()).decode()
    body: dict[str, Any] = {"statusCode": 402, "headers": {"PAYMENT-REQUIRED": header}, "body": {}}
    if answered is not None:
        body["url"] = answered
    return {"status": "success", "content": [{"text": f"PAYMENT_REQUIRED: {json.dumps(body)}"}]}


def http_tool_use(url: str) -> dict[str, Any]:
    return {"toolUseId": TOOL_USE_ID, "name": "http_request", "input": {"url": url, "method": "GET"}}


def recording_verify(h: Harness) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    real_verify = h.plugin.predebit.verify

    def verify(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        return real_verify(event)

    h.plugin.predebit.verify = verify  # type: ignore[method-assign]
    return seen


def test_request_url_is_the_tool_calls_url_even_when_the_402_declares_another_resource(harness: Harness):
    # GIVEN the tool requested api.weather.example and the v2 402 declares a resource elsewhere
    seen = recording_verify(harness)
    harness.stub_instrument()
    use, state = http_tool_use("https://api.weather.example/v2/forecast"), {}
    # WHEN the 402 is handled
    event = harness.after_tool_call(
        use, state, result_402_v2(requirement_v2(), "https://pay.elsewhere.example/v2", use["input"]["url"])
    )
    # THEN verify saw both: requestUrl from the tool call, resource from the 402 ...
    assert len(seen) == 1
    assert seen[0]["requestUrl"] == "https://api.weather.example/v2/forecast"
    assert seen[0]["resource"] == "https://pay.elsewhere.example/v2"
    # ... and declined the origin mismatch before anything was signed or held
    assert_declined(harness, state, event, "RESOURCE_MISMATCH")
    assert harness.session()["reserved"] == "0.00"


def pay_as_travel_agent(
    ledger_url: str, tool_url: str, declared: str | None
) -> tuple[Harness, Any, dict[str, Any], str]:
    h = make_harness(ledger_url, agent_id="agent-travel")  # its policy allows only api.flights.example
    req = requirement_v2()
    pid = payment_id(h.session_id, TOOL_USE_ID, req, 1)
    h.stub_instrument()
    state: dict[str, Any] = {}
    return h, h.after_tool_call(http_tool_use(tool_url), state, result_402_v2(req, declared, tool_url)), state, pid


def test_host_allow_list_admits_the_payment_when_the_tool_requested_the_allowed_host(ledger_url: str):
    # GIVEN agent-travel (allowedHosts: api.flights.example) requested a fare there
    h = make_harness(ledger_url, agent_id="agent-travel")
    seen = recording_verify(h)
    req = requirement_v2()
    pid = payment_id(h.session_id, TOOL_USE_ID, req, 1)
    h.stub_instrument()
    h.stub_signature(req, pid, eip3009_payload(), version="2")
    use, state = http_tool_use("https://api.flights.example/v1/fares"), {}
    # WHEN the 402 (declaring the same origin) is handled
    event = h.after_tool_call(
        use, state, result_402_v2(req, "https://api.flights.example/v1/fares", use["input"]["url"])
    )
    # THEN it is paid and sent
    assert seen[0]["requestUrl"] == "https://api.flights.example/v1/fares"
    assert event.retry is True
    assert h.hold(pid)["state"] == "SENT"
    h.stubber.deactivate()


def test_host_allow_list_declines_when_the_tool_requested_another_host(ledger_url: str):
    # GIVEN agent-travel requested api.weather.example, and the 402 declares no resource
    h, event, state, _ = pay_as_travel_agent(ledger_url, "https://api.weather.example/v2/forecast", None)
    # THEN the allow-list judges the tool's URL: MERCHANT_NOT_ALLOWED, nothing signed
    assert_declined(h, state, event, "MERCHANT_NOT_ALLOWED")
    h.stubber.deactivate()


def test_a_402_declaring_the_allowed_host_does_not_satisfy_the_allow_list(ledger_url: str):
    # GIVEN agent-travel requested api.weather.example but the 402 claims api.flights.example
    h, event, state, _ = pay_as_travel_agent(
        ledger_url, "https://api.weather.example/v2/forecast", "https://api.flights.example/v1/fares"
    )
    # THEN the claim is not believed: the origins differ, NO
    assert_declined(h, state, event, "RESOURCE_MISMATCH")
    h.stubber.deactivate()


def test_an_mcp_call_sends_no_request_url_and_host_rules_fail_closed(harness: Harness):
    # GIVEN an MCP Gateway call (no URL in the tool call) under the demo seed's global blockedHosts
    seen = recording_verify(harness)
    req = requirement_v1()
    harness.stub_instrument()
    use, state = mcp_tool_use(), {}
    # WHEN its 402 is handled
    event = harness.after_tool_call(use, state, mcp_result_402(req))
    # THEN verify got no requestUrl, and declined: a host rule applies and no host is known
    assert "requestUrl" not in seen[0]
    assert state[f"payment_failure_{TOOL_USE_ID}"]["reasonCode"] == "MERCHANT_BLOCKED"
    assert event.retry is False
    harness.stubber.assert_no_pending_responses()


def test_request_url_of_reads_the_url_input_only():
    assert (
        request_url_of({"url": "https://api.weather.example/v1", "method": "GET"}) == "https://api.weather.example/v1"
    )
    assert request_url_of({"toolName": "t", "parameters": {"url": "https://x.example"}}) is None
    assert request_url_of({"url": ""}) is None
    assert request_url_of({"url": ["https://x.example"]}) is None
    assert request_url_of("https://x.example") is None


def test_v2_402_resource_is_not_taken_as_the_request_url(harness: Harness):
    # GIVEN a tool call without a url input (a generic tool) and a v2 402 declaring a resource
    seen = recording_verify(harness)
    harness.stub_instrument()
    use = {"toolUseId": TOOL_USE_ID, "name": "fetch_article", "input": {"article": "42"}}
    state: dict[str, Any] = {}
    harness.after_tool_call(use, state, result_402_v2(requirement_v2(), "https://api.weather.example/v2/forecast"))
    # THEN verify got the resource but no requestUrl, and the host deny-list fails closed
    assert seen[0]["resource"] == "https://api.weather.example/v2/forecast"
    assert "requestUrl" not in seen[0]
    assert state[f"payment_failure_{TOOL_USE_ID}"]["reasonCode"] == "MERCHANT_BLOCKED"
