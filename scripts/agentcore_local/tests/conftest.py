"""Harness for the local AgentCore Payments service's tests.

Uses the service at AWS_ENDPOINT_URL_BEDROCK_AGENTCORE when it is set (scripts/services.sh run),
else starts one on a free loopback port for the session and stops it by its PID. Every test
starts from a reset service (no sessions, no payments, no faults, zero counts, real clock).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

HERE = Path(__file__).resolve().parent
SERVICE_DIR = HERE.parent
ROOT = SERVICE_DIR.parents[1]
VECTORS = ROOT / "crates/core/tests/vectors/x402/signed"
sys.path.insert(0, str(SERVICE_DIR))

SEED = json.loads((SERVICE_DIR / "seed.json").read_text())
MANAGER_ARN = SEED["paymentManagers"][0]
ALICE = "alice"
ALICE_INSTRUMENT = "payment-instrument-local-alice-001"
ALICE_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # Anvil account 0, the fixtures' signer
BOB = "bob"
BOB_INSTRUMENT = "payment-instrument-local-bob-00001"
CAROL = "carol"
CAROL_INSTRUMENT = "payment-instrument-local-carol-001"  # seeded BLOCKED
PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
USDC_BASE_SEPOLIA = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"


def fixture(name: str) -> dict[str, Any]:
    """One of crates/core/tests/vectors/x402/signed/*.json (signed by @x402/evm 2.27.0)."""
    return json.loads((VECTORS / name).read_text())


def token(label: str) -> str:
    """A clientToken as predebit makes them (64 lowercase hex), distinct per label."""
    import hashlib

    return hashlib.sha256(label.encode()).hexdigest()


def requirement_v2(amount: str = "10000", **extra: str) -> dict[str, Any]:
    return {
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": amount,
        "asset": USDC_BASE_SEPOLIA,
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2", **extra},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def endpoint() -> Iterator[str]:
    url = os.environ.get("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE")
    if url:
        yield url
        return
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVICE_DIR / "server.py"), "--host", "127.0.0.1", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("the local AgentCore service exited during start-up") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


class Raw:
    """Plain HTTP to the service: exact bytes and headers, and the /_local/ admin routes."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def admin(self, method: str, name: str, body: dict[str, Any] | None = None) -> Any:
        status, _, data = self.request(method, f"/_local/{name}", json.dumps(body or {}).encode())
        assert status == 200, data
        return json.loads(data)

    def stats(self) -> Any:
        return self.admin("GET", "stats")

    def faults(self, **spec: Any) -> Any:
        return self.admin("POST", "faults", spec)


@pytest.fixture(scope="session")
def raw(endpoint: str) -> Raw:
    return Raw(endpoint)


@pytest.fixture(autouse=True)
def reset(raw: Raw) -> None:
    raw.admin("POST", "reset")


def make_client(endpoint: str, **config: Any) -> Any:
    """A boto3 bedrock-agentcore client with dummy credentials and no retries unless asked."""
    settings: dict[str, Any] = {"retries": {"total_max_attempts": 1}}
    settings.update(config)
    return boto3.client(
        "bedrock-agentcore",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(**settings),
    )


@pytest.fixture(scope="session")
def client(endpoint: str) -> Any:
    return make_client(endpoint)


@pytest.fixture(scope="session")
def unchecked(endpoint: str) -> Any:
    """A client without botocore's own parameter validation, so the service's is what answers."""
    return make_client(endpoint, parameter_validation=False)


def open_session(client: Any, user: str = ALICE, max_usd: str | None = "1.00", minutes: int = 60) -> str:
    args: dict[str, Any] = {"userId": user, "paymentManagerArn": MANAGER_ARN, "expiryTimeInMinutes": minutes}
    if max_usd is not None:
        args["limits"] = {"maxSpendAmount": {"value": max_usd, "currency": "USD"}}
    return str(client.create_payment_session(**args)["paymentSession"]["paymentSessionId"])


def pay(
    client: Any,
    session_id: str,
    requirement: dict[str, Any],
    *,
    version: str = "2",
    client_token: str | None = None,
    user: str = ALICE,
    instrument: str = ALICE_INSTRUMENT,
    **crypto: Any,
) -> Any:
    args: dict[str, Any] = {
        "userId": user,
        "paymentManagerArn": MANAGER_ARN,
        "paymentSessionId": session_id,
        "paymentInstrumentId": instrument,
        "paymentType": "CRYPTO_X402",
        "paymentInput": {"cryptoX402": {"version": version, "payload": requirement, **crypto}},
    }
    if client_token is not None:
        args["clientToken"] = client_token
    return client.process_payment(**args)


def error_of(excinfo: Any) -> tuple[str, str, int]:
    """(code, message, HTTP status) of a botocore ClientError."""
    response = excinfo.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]
