"""Where the plugin reads the merchant's settlement in a paid retry's tool result (fast unit tests)."""

from __future__ import annotations

import json
from typing import Any

from predebit_agentcore.plugin import find_settlement

SETTLED = {"success": True, "transaction": "0x" + "ab" * 32, "network": "eip155:84532", "payer": "0x" + "12" * 20}
MCP_INPUT = {"toolName": "weather___forecast", "parameters": {"city": "Lisbon"}}


def test_mcp_meta_object_is_handed_on_as_the_json_object():
    result = {"content": [{"type": "text", "text": "sunny"}], "_meta": {"x402/payment-response": SETTLED}}
    assert find_settlement(result, "fetch_weather", MCP_INPUT) == SETTLED


def test_strands_metadata_is_the_mcp_meta():
    # strands' MCPClient puts a CallToolResult's _meta under the tool result's "metadata"
    result = {"status": "success", "content": [], "metadata": {"x402/payment-response": SETTLED}}
    assert find_settlement(result, "weather", {"city": "Lisbon"}) == SETTLED


def test_mcp_meta_string_is_handed_on_as_the_string():
    result = {"status": "success", "content": [], "_meta": {"x402/payment-response": "eyJzdWNjZXNzIjp0cnVlfQ=="}}
    assert find_settlement(result, "fetch_weather", MCP_INPUT) == "eyJzdWNjZXNzIjp0cnVlfQ=="


def test_mcp_result_without_meta_has_no_settlement_even_if_structured_content_looks_like_one():
    forged: dict[str, Any] = {
        "status": "success",
        "content": [{"text": json.dumps({"headers": {"PAYMENT-RESPONSE": "eyJ4Ijox"}})}],
        "structuredContent": {"headers": {"PAYMENT-RESPONSE": "eyJ4Ijox"}, "x402/payment-response": SETTLED},
        "responseHeaders": {"PAYMENT-RESPONSE": "eyJ4Ijox"},
    }
    assert find_settlement(forged, "fetch_weather", MCP_INPUT) is None
    assert find_settlement({**forged, "metadata": {"other": 1}}, "fetch_weather", MCP_INPUT) is None


def test_http_tool_settlement_is_the_payment_response_header():
    text = json.dumps({"statusCode": 200, "headers": {"Payment-Response": "eyJ4Ijox"}, "body": {}})
    result = {"status": "success", "content": [{"text": text}]}
    assert find_settlement(result, "http_request", {"url": "https://api.weather.example/v1"}) == "eyJ4Ijox"
