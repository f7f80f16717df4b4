"""Synchronous Lambda invocations of predebit's verify, ledger and authorize functions."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config as BotocoreConfig

from .errors import PredebitUnavailable
from .signed import DEFAULT_PERMIT2_PROXIES

logger = logging.getLogger(__name__)

# Ledger refusals that a later identical call may not meet; everything else is final.
RETRYABLE_LEDGER_CODES = frozenset({"STORE_UNAVAILABLE", "STORE_CONFLICT"})


@dataclass
class PredebitConfig:
    """Where predebit runs and how hard the plugin tries to reach it.

    Attributes:
        agent_id: the predebit agent id this agent pays as.
        verify_function: name, alias or ARN of the verify function (cooperative mode).
        ledger_function: name, alias or ARN of the agent-facing ledger function.
        authorize_function: name, alias or ARN of the authorize function (enforcing mode).
        region: AWS region of the functions (default: the boto3 default).
        endpoint_url: Lambda endpoint override (e.g. ``cargo lambda watch`` on loopback).
        connect_timeout / read_timeout: seconds per invocation; a timeout is a decline. In enforcing
            mode one authorize call includes AgentCore's ProcessPayment and three DynamoDB requests,
            each bounded at 2 s by the function; an answer lost to read_timeout is re-sent as the
            same event (a replay, see authorize_attempts), so a short timeout costs a retry, not money.
        lambda_client: a ready boto3 Lambda client; built from the fields above when None.
        ledger_attempts: tries for markSent, commit and release (exponential backoff).
        backoff_base_seconds: first backoff delay, doubled each try.
        authorize_attempts: enforcing mode: how many times the same authorize event is sent while
            the answer is SIGNER_UNAVAILABLE, STORE_UNAVAILABLE or STORE_CONFLICT, or is lost in
            transport. The same event is the same paymentId and clientToken, so a re-send continues
            the first call and never signs twice. Default 2 (one re-send).
        valid_before_slack_seconds: clock slack allowed over the requirement's maxTimeoutSeconds.
        permit2_proxies: the spenders a signed Permit2 payment may name (EVM addresses, compared
            case-insensitively); default: x402's current x402ExactPermit2Proxy,
            ``0x402085c248EeA27D92E8b30b2C58ed07f9E20001``. Any other spender is refused as
            SIGNED_PAYLOAD_MISMATCH before the payment leaves the process.
        redirect_free_tools: names of tools whose result does not say which URL answered but which
            never follow a redirect, so their ``url`` input is the URL that answered. A tool with a
            ``url`` input that is neither listed here nor reports ``url`` in its result (the plugin's
            own http_request does) is declined RESOURCE_MISMATCH before verify: a redirect to another
            origin cannot be ruled out. Default: none.
    """

    agent_id: str
    verify_function: str = "predebit-verify"
    ledger_function: str = "predebit-ledger"
    authorize_function: str = "predebit-authorize"
    region: str | None = None
    endpoint_url: str | None = None
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    lambda_client: Any = None
    ledger_attempts: int = 5
    backoff_base_seconds: float = 0.2
    authorize_attempts: int = 2
    valid_before_slack_seconds: int = 30
    permit2_proxies: tuple[str, ...] = DEFAULT_PERMIT2_PROXIES
    redirect_free_tools: tuple[str, ...] = ()
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


def _name(event: dict[str, Any]) -> str:
    """What an event asks for, for messages: the ledger op, authorize, or verify."""
    if "op" in event:
        return str(event["op"])
    return "authorize" if "attempt" in event else "verify"


class PredebitClient:
    """Invokes verify and ledger; every transport failure, timeout or Lambda error is PredebitUnavailable."""

    def __init__(self, config: PredebitConfig):
        self.config = config
        self.lambda_client = config.lambda_client or boto3.client(
            "lambda",
            region_name=config.region,
            endpoint_url=config.endpoint_url,
            config=BotocoreConfig(
                connect_timeout=config.connect_timeout,
                read_timeout=config.read_timeout,
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )
        self.final_failures = 0  # ledger calls given up after every retry (logged, counted)

    def _invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.lambda_client.invoke(
                FunctionName=function,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode("utf-8"),
            )
            payload = response["Payload"].read()
        except Exception as e:  # transport, timeout, throttling, missing permission
            raise PredebitUnavailable(f"{_name(event)}: {type(e).__name__}") from e
        if response.get("FunctionError"):
            raise PredebitUnavailable(f"{_name(event)}: function error {response['FunctionError']}")
        try:
            body = json.loads(payload)
        except ValueError as e:
            raise PredebitUnavailable(f"{_name(event)}: response is not JSON") from e
        if not isinstance(body, dict):
            raise PredebitUnavailable(f"{_name(event)}: response is not a JSON object")
        return body

    def verify(self, event: dict[str, Any]) -> dict[str, Any]:
        """One verify call (read-only, so one retry on a transport failure)."""
        try:
            return self._invoke(self.config.verify_function, event)
        except PredebitUnavailable:
            self.config.sleep(self.config.backoff_base_seconds)
            return self._invoke(self.config.verify_function, event)

    def authorize(self, event: dict[str, Any]) -> dict[str, Any]:
        """One authorize call (enforcing mode). The caller decides on re-sends: see PredebitConfig."""
        return self._invoke(self.config.authorize_function, event)

    def ledger(self, event: dict[str, Any], attempts: int | None = None) -> dict[str, Any]:
        """A ledger op, retried with exponential backoff while unreachable or conflicting.

        Every op is idempotent by paymentId, so a retry after a lost response replays it.
        Raises PredebitUnavailable after the last try (logged and counted). Events carry the
        decisionToken or the holdToken: only an event's op and paymentId are ever logged.
        """
        attempts = attempts or self.config.ledger_attempts
        delay = self.config.backoff_base_seconds
        last: Exception | None = None
        for attempt in range(1, attempts + 1):
            try:
                body = self._invoke(self.config.ledger_function, event)
                if body.get("ok") or body.get("reasonCode") not in RETRYABLE_LEDGER_CODES:
                    return body
                last = PredebitUnavailable(f"{event['op']}: {body.get('reasonCode')}")
            except PredebitUnavailable as e:
                last = e
            if attempt < attempts:
                logger.warning("predebit ledger %s failed (try %d/%d): %s", event["op"], attempt, attempts, last)
                self.config.sleep(delay)
                delay *= 2
        self.final_failures += 1
        logger.error(
            "predebit ledger %s for paymentId %s failed after %d tries: %s; the ledger's expiry is the backstop",
            event["op"],
            event.get("paymentId"),
            attempts,
            last,
        )
        assert last is not None
        raise PredebitUnavailable(str(last)) from last
