"""The enforcing-mode harness: the real authorize and ledger functions (under `cargo lambda watch`,
started by scripts/plugin_test.sh) signing through the local AgentCore Payments service
(scripts/agentcore_local, AWS_ENDPOINT_URL_BEDROCK_AGENTCORE, started by scripts/services.sh).
No Stubber: AgentCore is the local service, and only authorize reaches it."""

from __future__ import annotations

import base64
import json
import os
import urllib.request
from dataclasses import dataclass, field
from typing import Any, cast

import boto3
import pytest
from bedrock_agentcore.payments.integrations.config import AgentCorePaymentsPluginConfig
from strands import Agent
from strands.hooks import AfterToolCallEvent
from strands.types.tools import ToolResult, ToolUse

from predebit_agentcore import PredebitConfig, PredebitPaymentsPlugin

from .conftest import PAY_TO, TOOL_URL, endpoint, invoke_ledger, lambda_client

# scripts/agentcore_local/seed.json: the payment manager, and user-alice's instrument of infra/seed/demo.json.
LOCAL_MANAGER_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/predebit-local-a1b2c3d4e5"
ALICE_INSTRUMENT = "payment-instrument-demo-user-alice"
ALICE_WALLET = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
USDC_BASE_SEPOLIA = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
BOB_WALLET = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
TOOL_USE_ID = "tooluse-enforcing-1"


def agentcore_endpoint() -> str:
    url = os.environ.get("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE")
    if not url:
        pytest.fail("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE is not set: run through scripts/services.sh run")
    return url


class LocalAgentCore:
    """The local service's AgentCore client and its admin routes (/_local/...)."""

    def __init__(self, url: str):
        self.url = url
        self.client = boto3.client(
            "bedrock-agentcore",
            region_name="us-east-1",
            endpoint_url=url,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def _admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="GET" if body is None else "POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return cast(dict[str, Any], json.loads(response.read()))

    def stats(self) -> dict[str, Any]:
        return self._admin("/_local/stats")

    def faults(self, switches: dict[str, Any]) -> None:
        self._admin("/_local/faults", switches)

    def signatures(self, session_id: str) -> int:
        return int(self.stats()["signatures"]["bySession"].get(session_id, 0))

    def process_payment_requests(self) -> int:
        return int(self.stats()["requests"].get("ProcessPayment", 0))

    def replays(self) -> int:
        return int(self.stats()["replays"])

    def create_session(self, max_spend: str = "25.00", minutes: int = 60) -> str:
        created = self.client.create_payment_session(
            userId="user-alice",
            paymentManagerArn=LOCAL_MANAGER_ARN,
            expiryTimeInMinutes=minutes,
            limits={"maxSpendAmount": {"value": max_spend, "currency": "USD"}},
        )
        return str(created["paymentSession"]["paymentSessionId"])


@dataclass
class Enforcing:
    """An agent with PredebitPaymentsPlugin(mode="enforcing") on a session opened at both ends."""

    agent: Agent
    plugin: PredebitPaymentsPlugin
    ledger_client: Any
    service: LocalAgentCore
    session_id: str
    authorize_events: list[dict[str, Any]] = field(default_factory=list)
    hold_tokens: dict[str, str] = field(default_factory=dict)  # paymentId -> holdToken authorize returned
    # Every request the plugin's own AgentCore client sent (botocore before-send): must stay empty.
    agentcore_calls: list[str] = field(default_factory=list)

    def after_tool_call(
        self, tool_use: dict[str, Any], state: dict[str, Any], result: dict[str, Any]
    ) -> AfterToolCallEvent:
        event = AfterToolCallEvent(
            agent=self.agent,
            selected_tool=None,
            tool_use=cast(ToolUse, tool_use),
            invocation_state=state,
            result=cast(ToolResult, result),
        )
        event, _ = self.agent.hooks.invoke_callbacks(event)
        return event

    def hold(self, payment_id: str) -> dict[str, Any]:
        response = invoke_ledger(
            self.ledger_client,
            {
                "op": "getHold",
                "paymentSessionId": self.session_id,
                "paymentId": payment_id,
                "holdToken": self.hold_tokens[payment_id],
            },
        )
        assert response["ok"], response
        return cast(dict[str, Any], response["hold"])

    def session(self) -> dict[str, Any]:
        """The session and its holds (the test deployment serves every op, getSession without a holdToken)."""
        response = invoke_ledger(self.ledger_client, {"op": "getSession", "paymentSessionId": self.session_id})
        assert response["ok"], response
        return response


def make_enforcing(agent_id: str = "agent-research", limit: str = "25.00", authorize_attempts: int = 2) -> Enforcing:
    service = LocalAgentCore(agentcore_endpoint())
    client = lambda_client(endpoint())
    session_id = service.create_session(max_spend=limit)
    opened = invoke_ledger(
        client,
        {
            "op": "openSession",
            "paymentSessionId": session_id,
            "userId": "user-alice",
            "limit": limit,
            "expiryMinutes": 60,
        },
    )
    assert opened["ok"], opened
    plugin = PredebitPaymentsPlugin(
        AgentCorePaymentsPluginConfig(
            payment_manager_arn=LOCAL_MANAGER_ARN,
            user_id="user-alice",
            payment_instrument_id=ALICE_INSTRUMENT,
            payment_session_id=session_id,
            region="us-east-1",
            post_payment_retry_delay_seconds=0,
        ),
        PredebitConfig(
            agent_id=agent_id,
            authorize_function="authorize",
            ledger_function="ledger",
            lambda_client=client,
            backoff_base_seconds=0.01,
            authorize_attempts=authorize_attempts,
        ),
        mode="enforcing",
    )
    h = Enforcing(Agent(tools=[], plugins=[plugin], callback_handler=None), plugin, client, service, session_id)
    real_authorize = plugin.predebit.authorize

    def authorize(event: dict[str, Any]) -> dict[str, Any]:
        h.authorize_events.append(json.loads(json.dumps(event)))
        answer = real_authorize(event)
        if isinstance(answer.get("holdToken"), str):
            h.hold_tokens[answer["paymentId"]] = answer["holdToken"]
        return answer

    plugin.predebit.authorize = authorize  # type: ignore[method-assign]
    assert plugin.payment_manager is not None
    plugin.payment_manager._payment_client.meta.events.register(
        "before-send.bedrock-agentcore.*", lambda **kw: h.agentcore_calls.append(kw["event_name"])
    )
    return h


def entry_v2(amount: str = "10000", asset: str = USDC_BASE_SEPOLIA, permit2: bool = False) -> dict[str, Any]:
    extra: dict[str, Any] = {"name": "USDC", "version": "2"}
    if permit2:
        extra["assetTransferMethod"] = "permit2"
    return {
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": amount,
        "asset": asset,
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "extra": extra,
    }


def entry_v1(amount: str = "10000") -> dict[str, Any]:
    return {
        "scheme": "exact",
        "network": "base-sepolia",
        "maxAmountRequired": amount,
        "resource": TOOL_URL,
        "description": "Seven-day forecast",
        "mimeType": "application/json",
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "asset": USDC_BASE_SEPOLIA,
        "extra": {"name": "USDC", "version": "2"},
    }


def payment_required_header(*entries: dict[str, Any]) -> str:
    offer = {"x402Version": 2, "resource": {"url": TOOL_URL}, "accepts": list(entries)}
    return base64.b64encode(json.dumps(offer).encode()).decode()


def result_402_v2(header: str, url: str = TOOL_URL) -> dict[str, Any]:
    """The plugin's http_request result for a v2 402: the offer in the PAYMENT-REQUIRED header."""
    payload = {"statusCode": 402, "headers": {"PAYMENT-REQUIRED": header}, "body": {}, "url": url}
    return {"status": "success", "content": [{"text": f"PAYMENT_REQUIRED: {json.dumps(payload)}"}]}


def tool_use(tool_use_id: str = TOOL_USE_ID) -> dict[str, Any]:
    return {"toolUseId": tool_use_id, "name": "http_request", "input": {"url": TOOL_URL, "method": "GET"}}
