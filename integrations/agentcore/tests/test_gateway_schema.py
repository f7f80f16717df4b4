"""The AgentCore Gateway tool schema stays in step with the verify event and response schemas."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def load(path: str):
    return json.loads((ROOT / path).read_text())


def test_gateway_tool_input_has_the_verify_event_fields_and_required_list():
    (tool,) = load("infra/agentcore/gateway-tool-schema.json")
    event = load("infra/schemas/verify-event.schema.json")
    assert set(tool["inputSchema"]["properties"]) == set(event["properties"])
    assert sorted(tool["inputSchema"]["required"]) == sorted(event["required"])


def test_gateway_tool_output_fields_exist_in_the_verify_response():
    (tool,) = load("infra/agentcore/gateway-tool-schema.json")
    response = load("infra/schemas/verify-response.schema.json")
    assert set(tool["outputSchema"]["properties"]) <= set(response["properties"])
    assert set(tool["outputSchema"]["required"]) <= set(response["required"])
