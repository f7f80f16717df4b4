"""A stand-in for predebit's verify and agent-facing ledger functions, for unit tests that run
without them: it answers as the functions' contract says (reserve returns a holdToken, which
markSent, commit and release must present) and records every event it is sent."""

from __future__ import annotations

import io
import json
from typing import Any

from botocore.exceptions import EndpointConnectionError

from predebit_agentcore.signed import caip2

HOLD_TOKEN = "v1.hk1.eyJwYXltZW50SWQiOiJmYWtlIn0.bWFjLW9mLXRoZS1ob2xkLXRva2Vu"
DECISION_TOKEN = "v1.dk1.eyJkZWNpc2lvbiI6ImZha2UifQ.bWFjLW9mLXRoZS1kZWNpc2lvbg"
HOLD_TOKEN_OPS = ("markSent", "commit", "release", "getHold")


class FakePredebit:
    """``invoke`` like a boto3 Lambda client; ``events`` holds every event as sent."""

    def __init__(self, issue_hold_token: bool = True) -> None:
        self.issue_hold_token = issue_hold_token
        self.events: list[dict[str, Any]] = []
        self.unreachable: set[str] = set()
        self.requirement: dict[str, Any] = {}
        self.state = "NONE"

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        event = json.loads(kwargs["Payload"])
        self.events.append(event)
        op = event.get("op", "verify")
        if op in self.unreachable:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
        body = self.answer(op, event)
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(body).encode())}

    def hold(self) -> dict[str, Any]:
        req = self.requirement
        return {
            "state": self.state,
            "payTo": req["payTo"].lower(),
            "amountAtomic": req.get("amount") or req["maxAmountRequired"],
            "network": caip2(req["network"]),
            "asset": req["asset"].lower(),
            "amountMicros": 1_000_000,
        }

    def answer(self, op: str, event: dict[str, Any]) -> dict[str, Any]:
        if op == "verify":
            self.requirement = event["requirement"]
            return {"decision": "YES", "decisionToken": DECISION_TOKEN, "verificationId": "vid-fake-1"}
        if op == "reserve":
            self.state = "PENDING"
            body: dict[str, Any] = {"ok": True, "hold": self.hold()}
            if self.issue_hold_token:
                body["holdToken"] = HOLD_TOKEN
            return body
        if self.issue_hold_token and event.get("holdToken") != HOLD_TOKEN:
            return {"ok": False, "reasonCode": "TOKEN_INVALID", "message": "holdToken is missing or invalid"}
        self.state = {"markSent": "SENT", "commit": "POSTED", "release": "VOIDED"}.get(op, self.state)
        return {"ok": True, "hold": self.hold()}

    def ops(self) -> list[str]:
        return [e.get("op", "verify") for e in self.events]

    def after_reserve(self) -> list[dict[str, Any]]:
        ops = self.ops()
        return self.events[ops.index("reserve") + 1 :]
