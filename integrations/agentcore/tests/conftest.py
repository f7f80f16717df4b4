"""Fixtures: the real predebit functions (under `cargo lambda watch`, started by
scripts/plugin_test.sh) and an agent carrying PredebitPaymentsPlugin in cooperative mode, whose
ProcessPayment is stubbed with botocore's Stubber. Enforcing mode stubs nothing: its harness is
tests/local_agentcore.py."""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import string
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from bedrock_agentcore.payments.integrations.config import AgentCorePaymentsPluginConfig
from botocore.config import Config as BotocoreConfig
from botocore.stub import Stubber
from strands import Agent
from strands.hooks import AfterToolCallEvent, BeforeToolCallEvent
from strands.types.tools import ToolResult, ToolUse

from predebit_agentcore import PredebitConfig, PredebitPaymentsPlugin

MANAGER_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/pm-predebit-a1b2c3d4e5"
USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
PAYER = "0x857b06519E91e3A54538791bDbb0E22373e36b66"
SIGNATURE = (
    "0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608"
    "a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c"
)
ALNUM = string.ascii_lowercase + string.digits


def endpoint() -> str:
    url = os.environ.get("PREDEBIT_LAMBDA_ENDPOINT")
    if not url:
        pytest.fail("PREDEBIT_LAMBDA_ENDPOINT is not set: run these tests through scripts/plugin_test.sh")
    return url


def lambda_client(url: str):
    return boto3.client(
        "lambda",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=BotocoreConfig(connect_timeout=2, read_timeout=30, retries={"max_attempts": 1}),
    )


def invoke_ledger(client, event: dict[str, Any]) -> dict[str, Any]:
    response = client.invoke(FunctionName="ledger", Payload=json.dumps({"version": "1", **event}).encode())
    return json.loads(response["Payload"].read())


def requirement_v1(amount: str = "1000000", pay_to: str = PAY_TO) -> dict[str, Any]:
    return {
        "scheme": "exact",
        "network": "base",
        "maxAmountRequired": amount,
        "resource": "https://api.weather.example/v1/forecast",
        "description": "Seven-day forecast",
        "mimeType": "application/json",
        "payTo": pay_to,
        "maxTimeoutSeconds": 60,
        "asset": USDC_BASE,
        "extra": {"name": "USD Coin", "version": "2"},
    }


# The URL the flow tests' tool calls request (test_plugin_flow.tool_use).
TOOL_URL = "https://api.weather.example/v1/forecast"


def result_402(
    requirement: dict[str, Any], headers: dict[str, str] | None = None, url: str | None = TOOL_URL
) -> dict[str, Any]:
    """An http_request tool result for a v1 402, in the plugin's PAYMENT_REQUIRED: format, naming the
    URL that answered as the plugin's http_request does (``url=None``: a tool that names none)."""
    payload: dict[str, Any] = {
        "statusCode": 402,
        "headers": headers or {"content-type": "application/json"},
        "body": {"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [requirement]},
    }
    if url is not None:
        payload["url"] = url
    return {"status": "success", "content": [{"text": f"PAYMENT_REQUIRED: {json.dumps(payload)}"}]}


def settlement_header(success: bool = True, amount: str = "1000000", network: str = "base") -> str:
    body: dict[str, Any] = {"success": success, "network": network, "payer": PAYER}
    if success:
        body["transaction"] = "0x" + secrets.token_hex(32)
        body["amount"] = amount
    else:
        body["errorReason"] = "insufficient_funds"
        body["transaction"] = ""
    return base64.b64encode(json.dumps(body).encode()).decode()


def result_paid(settlement: str) -> dict[str, Any]:
    """The paid retry's http_request result: 200 with the settlement header."""
    payload = {
        "statusCode": 200,
        "headers": {"PAYMENT-RESPONSE": settlement},
        "body": {"forecast": "sunny"},
        "url": TOOL_URL,
    }
    return {"status": "success", "content": [{"text": json.dumps(payload)}]}


def eip3009_payload(to: str = PAY_TO, value: str = "1000000", valid_for: int = 60) -> dict[str, Any]:
    now = int(time.time())
    return {
        "signature": SIGNATURE,
        "authorization": {
            "from": PAYER,
            "to": to,
            "value": value,
            "validAfter": str(now - 10),
            "validBefore": str(now + valid_for),
            "nonce": "0x" + secrets.token_hex(32),
        },
    }


@dataclass
class Harness:
    """One agent with the plugin, a fresh predebit session and the stubbed AgentCore client."""

    agent: Agent
    plugin: PredebitPaymentsPlugin
    stubber: Stubber
    ledger_client: Any
    session_id: str
    instrument_id: str
    hold_tokens: dict[str, str]  # paymentId -> the holdToken reserve returned to the plugin

    def stub_instrument(self) -> None:
        self.stubber.add_response(
            "get_payment_instrument",
            {
                "paymentInstrument": {
                    "paymentInstrumentId": self.instrument_id,
                    "paymentManagerArn": MANAGER_ARN,
                    "paymentConnectorId": "connector-a1b2c3d4e5",
                    "userId": "user-alice",
                    "paymentInstrumentType": "EMBEDDED_CRYPTO_WALLET",
                    "paymentInstrumentDetails": {
                        "embeddedCryptoWallet": {"network": "ETHEREUM", "linkedAccounts": [], "walletAddress": PAYER}
                    },
                    "createdAt": 1_790_000_000,
                    "status": "ACTIVE",
                    "updatedAt": 1_790_000_000,
                }
            },
        )

    def stub_signature(
        self, requirement: dict[str, Any], payment_id: str, payload: dict[str, Any], version: str = "1"
    ) -> None:
        self.stubber.add_response(
            "process_payment",
            {
                "processPaymentId": "0f8fad5b-d9cb-469f-a165-70867728950e",
                "paymentManagerArn": MANAGER_ARN,
                "paymentSessionId": self.session_id,
                "paymentInstrumentId": self.instrument_id,
                "paymentType": "CRYPTO_X402",
                "status": "PROOF_GENERATED",
                "paymentOutput": {"cryptoX402": {"version": version, "payload": payload}},
                "createdAt": 1_790_000_000,
                "updatedAt": 1_790_000_000,
            },
            expected_params={
                "userId": "user-alice",
                "paymentManagerArn": MANAGER_ARN,
                "paymentSessionId": self.session_id,
                "paymentInstrumentId": self.instrument_id,
                "paymentType": "CRYPTO_X402",
                "paymentInput": {"cryptoX402": {"version": version, "payload": requirement}},
                "clientToken": payment_id,
            },
        )

    def after_tool_call(
        self, tool_use: dict[str, Any], state: dict[str, Any], result: dict[str, Any]
    ) -> AfterToolCallEvent:
        # Plain dicts stand in for strands' ToolUse / ToolResult TypedDicts, as the agent loop's are.
        event = AfterToolCallEvent(
            agent=self.agent,
            selected_tool=None,
            tool_use=cast(ToolUse, tool_use),
            invocation_state=state,
            result=cast(ToolResult, result),
        )
        event, _ = self.agent.hooks.invoke_callbacks(event)
        return event

    def before_tool_call(self, tool_use: dict[str, Any], state: dict[str, Any]) -> list[Any]:
        event = BeforeToolCallEvent(
            agent=self.agent, selected_tool=None, tool_use=cast(ToolUse, tool_use), invocation_state=state
        )
        _, interrupts = self.agent.hooks.invoke_callbacks(event)
        return interrupts

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
        return response["hold"]

    def session(self) -> dict[str, Any]:
        response = invoke_ledger(self.ledger_client, {"op": "getSession", "paymentSessionId": self.session_id})
        assert response["ok"], response
        return response["session"]


def dead_endpoint() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


class SwitchableLedger:
    """A Lambda client that sends chosen ledger ops to a dead endpoint and the rest to predebit.

    ``unreachable`` holds the ops (``"markSent"``, ``"commit"``, ...) that cannot reach the ledger;
    ``fail_next`` counts further calls to those ops that fail before the ledger comes back.
    ``calls`` records every op as it was attempted.
    """

    def __init__(self, real: Any):
        self.real = real
        self.dead = lambda_client(dead_endpoint())
        self.unreachable: set = set()
        self.fail_next: int | None = None
        self.calls: list[str] = []
        self.events: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> Any:
        event = json.loads(kwargs["Payload"])
        op = event.get("op", "verify")
        self.calls.append(op)
        self.events.append(event)
        if op in self.unreachable and (self.fail_next is None or self.fail_next > 0):
            if self.fail_next is not None:
                self.fail_next -= 1
            return self.dead.invoke(**kwargs)
        return self.real.invoke(**kwargs)


def make_harness(
    url: str,
    open_session: bool = True,
    verify_url: str | None = None,
    predebit_client: Any = None,
    ledger_attempts: int = 2,
    sleep: Callable[[float], None] | None = None,
    agent_id: str = "agent-research",
) -> Harness:
    client = lambda_client(url)
    session_id = "payment-session-" + "".join(secrets.choice(ALNUM) for _ in range(15))
    instrument_id = "payment-instrument-" + "".join(secrets.choice(ALNUM) for _ in range(15))
    if open_session:
        opened = invoke_ledger(
            client,
            {
                "op": "openSession",
                "paymentSessionId": session_id,
                "userId": "user-alice",
                "limit": "25.00",
                "expiryMinutes": 60,
            },
        )
        assert opened["ok"], opened
    plugin = PredebitPaymentsPlugin(
        AgentCorePaymentsPluginConfig(
            payment_manager_arn=MANAGER_ARN,
            user_id="user-alice",
            payment_instrument_id=instrument_id,
            payment_session_id=session_id,
            region="us-east-1",
            post_payment_retry_delay_seconds=0,
        ),
        PredebitConfig(
            agent_id=agent_id,
            verify_function="verify",
            ledger_function="ledger",
            lambda_client=predebit_client or (lambda_client(verify_url) if verify_url else client),
            backoff_base_seconds=0.01,
            ledger_attempts=ledger_attempts,
            sleep=sleep or time.sleep,
        ),
    )
    hold_tokens: dict[str, str] = {}
    real_ledger = plugin.predebit.ledger

    def ledger(event: dict[str, Any], attempts: int | None = None) -> dict[str, Any]:
        body = real_ledger(event, attempts)
        if event.get("op") == "reserve" and isinstance(body.get("holdToken"), str):
            hold_tokens[event["paymentId"]] = body["holdToken"]
        return body

    plugin.predebit.ledger = ledger  # type: ignore[method-assign]
    agent = Agent(tools=[], plugins=[plugin], callback_handler=None)
    assert plugin.payment_manager is not None
    stubber = Stubber(plugin.payment_manager._payment_client)
    stubber.activate()
    return Harness(agent, plugin, stubber, client, session_id, instrument_id, hold_tokens)


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = make_harness(endpoint())
    yield h
    h.stubber.deactivate()


@pytest.fixture
def ledger_url() -> str:
    return endpoint()


PREDEBIT_CLI = Path(__file__).resolve().parents[3] / "target" / "debug" / "predebit"


def predebit_cli(*args: str, stdin: str | None = None) -> str:
    """The operator CLI on the tables scripts/plugin_test.sh created (its environment is inherited)."""
    done = subprocess.run(
        [str(PREDEBIT_CLI), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def without_host_rules() -> Iterator[None]:
    """The global policy without its host deny-list, restored afterwards.

    Host rules judge the URL the tool requested, and an MCP Gateway call names none, so under the
    demo seed's global `blockedHosts` every MCP payment is declined (fail closed). The MCP flow
    tests pay under a global policy without host rules.
    """
    original = json.loads(predebit_cli("--json", "policy", "get", "--scope", "global"))["document"]
    relaxed = {k: v for k, v in original.items() if k not in ("blockedHosts", "allowedHosts")}
    assert relaxed != original, "the demo seed's global policy has host rules"
    predebit_cli("policy", "put", "--scope", "global", "-", stdin=json.dumps(relaxed))
    try:
        yield
    finally:
        predebit_cli("policy", "put", "--scope", "global", "-", stdin=json.dumps(original))
