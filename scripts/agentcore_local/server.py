#!/usr/bin/env python3
"""A loopback AgentCore Payments data-plane service for predebit's tests (not AWS; no SigV4 check).

Serves CreatePaymentSession, GetPaymentSession, GetPaymentInstrument and ProcessPayment at the
model's routes in restJson1, validates input by the botocore model (service_model.py), keeps
sessions and their spend, signs real x402 `exact` payloads (signing.py) with seeded throwaway
keys, is idempotent on clientToken, counts every signature, and has fault switches. Everything
under /_local/ is a local admin route, not part of the service. See README.md beside this file.

    server.py --port 8650 [--host 127.0.0.1] [--seed seed.json]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import decimal
import ipaddress
import json
import logging
import re
import secrets
import signal
import string
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_address, to_checksum_address

import signing
from service_model import FieldError, Operation, ServiceModel, validation_message

HERE = Path(__file__).resolve().parent
DEFAULT_SEED = HERE / "seed.json"
ADMIN_PREFIX = "/_local/"
log = logging.getLogger("agentcore-local")

# x402 v1 network names of EVM chains (as crates/core/src/network.rs maps them) -> chain id.
V1_EVM_NETWORKS = {
    "base": 8453,
    "base-sepolia": 84532,
    "avalanche": 43114,
    "avalanche-fuji": 43113,
    "polygon": 137,
    "polygon-amoy": 80002,
    "sei": 1329,
    "sei-testnet": 1328,
    "iotex": 4689,
    "abstract": 2741,
    "abstract-testnet": 11124,
    "peaq": 3338,
    "story": 1514,
    "educhain": 41923,
    "skale-base-sepolia": 324705682,
}

# USDC (6 decimals) by chain id, as crates/core/src/asset.rs trusts it; a seed may add assets.
KNOWN_USDC = {
    8453: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
    84532: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    1: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
    137: "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359",
    42161: "0xaf88d065e77c8cC2239327C5EDb3A432268e5831",
    43114: "0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E",
}

FAULT_KINDS = ("slow", "internalError", "throttle", "wrongTerms")
WRONG_TERMS_FIELDS = ("payTo", "value", "validBeforeDeltaSeconds", "asset", "spender", "chainId")
FAULT_SETTINGS: dict[str, frozenset[str]] = {
    "slow": frozenset({"ms"}),
    "internalError": frozenset({"afterSigning"}),
    "throttle": frozenset(),
    "wrongTerms": frozenset(WRONG_TERMS_FIELDS),
}
EXACT_AMOUNT = decimal.Context(prec=200)  # atomic amounts have up to 78 digits: never round


class ServiceError(Exception):
    """An answer in one of the model's error shapes."""

    def __init__(
        self, code: str, message: str, *, reason: str = "FieldValidationFailed", fields: list[FieldError] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.fields = fields or []


def validation_error(message: str, path: str = "") -> ServiceError:
    fields = [FieldError(path, message)] if path else []
    return ServiceError("ValidationException", message, fields=fields)


def iso(t: float) -> str:
    """An ISO 8601 UTC timestamp with milliseconds, as restJson1's iso8601 format reads it."""
    whole = datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{int((t % 1) * 1000):03d}Z"


def usd_text(amount: Decimal) -> str:
    """A decimal USD amount as text with at least two decimals ("99.99", "0.015", "100.00")."""
    text = format(amount.normalize(EXACT_AMOUNT), "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


@dataclass
class Instrument:
    instrument_id: str
    manager_arn: str
    connector_id: str
    user_id: str
    account: LocalAccount = field(repr=False)
    chain_ids: frozenset[int]
    linked_accounts: list[Any]
    status: str
    created_at: float

    def view(self) -> dict[str, Any]:
        return {
            "paymentInstrumentId": self.instrument_id,
            "paymentManagerArn": self.manager_arn,
            "paymentConnectorId": self.connector_id,
            "userId": self.user_id,
            "paymentInstrumentType": "EMBEDDED_CRYPTO_WALLET",
            "paymentInstrumentDetails": {
                "embeddedCryptoWallet": {
                    "network": "ETHEREUM",
                    "linkedAccounts": self.linked_accounts,
                    "walletAddress": self.account.address,
                }
            },
            "createdAt": iso(self.created_at),
            "status": self.status,
            "updatedAt": iso(self.created_at),
        }


@dataclass
class Session:
    session_id: str
    manager_arn: str
    user_id: str
    limits: dict[str, Any] | None
    max_spend: Decimal | None
    expiry_minutes: int
    created_at: float
    updated_at: float
    spent: Decimal = Decimal(0)
    signatures: int = 0

    @property
    def expires_at(self) -> float:
        return self.created_at + 60 * self.expiry_minutes

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "paymentSessionId": self.session_id,
            "paymentManagerArn": self.manager_arn,
        }
        if self.limits is not None:
            out["limits"] = self.limits
        out.update(
            userId=self.user_id,
            expiryTimeInMinutes=self.expiry_minutes,
            createdAt=iso(self.created_at),
        )
        if self.limits is not None and self.max_spend is not None:
            out["availableLimits"] = {
                "availableSpendAmount": {
                    "value": usd_text(EXACT_AMOUNT.subtract(self.max_spend, self.spent)),
                    "currency": self.limits["maxSpendAmount"]["currency"],
                },
                "updatedAt": iso(self.updated_at),
            }
        out["updatedAt"] = iso(self.updated_at)
        return out


@dataclass
class IssuedPayment:
    process_payment_id: str
    client_token: str
    fingerprint: str
    session_id: str
    instrument_id: str
    method: str
    amount_usd: Decimal
    tampered: list[str]
    body: bytes  # the exact answer, replayed byte for byte for the same clientToken

    def view(self) -> dict[str, Any]:
        return {
            "processPaymentId": self.process_payment_id,
            "clientToken": self.client_token,
            "paymentSessionId": self.session_id,
            "paymentInstrumentId": self.instrument_id,
            "assetTransferMethod": self.method,
            "amountUsd": usd_text(self.amount_usd),
            "tampered": self.tampered,
        }


@dataclass
class Fault:
    operation: str
    remaining: int  # -1: until cleared
    settings: dict[str, Any]


@dataclass(frozen=True)
class Requirement:
    """The selected x402 requirement, checked the way the service must before it signs."""

    version: int
    chain_id: int
    asset: str
    decimals: int
    pay_to: str
    amount: int
    max_timeout_seconds: int
    method: str
    token_name: str
    token_version: str


class PaymentsService:
    """The service's state and its four operations; one lock makes each operation atomic."""

    def __init__(self, model: ServiceModel, seed: Mapping[str, Any]) -> None:
        self.model = model
        self.lock = threading.Lock()
        self.managers: set[str] = set()
        self.instruments: dict[str, Instrument] = {}
        self.assets: dict[tuple[int, str], int] = {(chain, address.lower()): 6 for chain, address in KNOWN_USDC.items()}
        self._load_seed(seed)
        self.reset()

    # ----- state -----

    def reset(self) -> None:
        """Forgets sessions, payments, counts, faults, clock offset and pinned nonces."""
        self.sessions: dict[str, Session] = {}
        self.session_tokens: dict[str, tuple[str, str]] = {}  # clientToken -> (fingerprint, id)
        self.payments: dict[str, IssuedPayment] = {}  # clientToken -> payment
        self.requests: dict[str, int] = {name: 0 for name in self.model.operations}
        self.errors: dict[str, dict[str, int]] = {name: {} for name in self.model.operations}
        self.signatures_by_session: dict[str, int] = {}
        self.signatures_by_instrument: dict[str, int] = {}
        self.signatures_total = 0
        self.replays = 0  # ProcessPayment answers replayed for a known clientToken
        self.faults: dict[tuple[str, str | None], Fault] = {}  # (kind, paymentSessionId or None)
        self.faults_fired: dict[str, int] = {kind: 0 for kind in FAULT_KINDS}
        self.clock_offset = 0.0
        self.clock_frozen_at: float | None = None
        self.pinned_nonces: list[str] = []

    def now(self) -> float:
        return self.clock_frozen_at if self.clock_frozen_at is not None else time.time() + self.clock_offset

    def set_clock(self, body: Mapping[str, Any]) -> None:
        """{now[, frozen]} sets the clock (frozen: it stands still), {offsetSeconds} offsets it from
        the real one, {advanceSeconds} moves it on (a frozen clock stays frozen)."""
        if "advanceSeconds" in body:
            delta = float(body["advanceSeconds"])
            if self.clock_frozen_at is not None:
                self.clock_frozen_at += delta
            self.clock_offset += delta
        elif "now" in body:
            now = float(body["now"])
            self.clock_offset = now - time.time()
            self.clock_frozen_at = now if body.get("frozen") else None
        elif "offsetSeconds" in body:
            self.clock_offset = float(body["offsetSeconds"])
            self.clock_frozen_at = None
        else:
            raise ValueError("give now (and frozen), offsetSeconds or advanceSeconds")

    def _load_seed(self, seed: Mapping[str, Any]) -> None:
        def check(shape: str, value: Any, what: str) -> str:
            errors: list[FieldError] = []
            self.model.check(shape, value, what, errors)
            if errors:
                raise ValueError(f"seed: {validation_message(errors)}")
            return str(value)

        for arn in seed.get("paymentManagers", []):
            self.managers.add(check("PaymentManagerArn", arn, "paymentManagers"))
        for asset in seed.get("assets", []):
            chain = _chain_id(asset["network"])
            if chain is None or not is_address(asset["address"]) or not isinstance(asset["decimals"], int):
                raise ValueError(f"seed: asset {asset.get('address')!r} on {asset.get('network')!r} is invalid")
            self.assets[(chain, asset["address"].lower())] = asset["decimals"]
        created = time.time()
        for entry in seed.get("instruments", []):
            instrument_id = check("PaymentInstrumentId", entry["paymentInstrumentId"], "paymentInstrumentId")
            manager = check("PaymentManagerArn", entry["paymentManagerArn"], "paymentManagerArn")
            if manager not in self.managers:
                raise ValueError(f"seed: instrument {instrument_id} names an unlisted payment manager")
            chains = [_chain_id(n) for n in entry["networks"]]
            if not chains or None in chains:
                raise ValueError(f"seed: instrument {instrument_id} has an unknown network in {entry['networks']}")
            try:
                account = Account.from_key(entry["privateKey"])
            except Exception:  # never echo the key
                raise ValueError(f"seed: instrument {instrument_id} has an unusable privateKey") from None
            status = check("PaymentInstrumentStatus", entry.get("status", "ACTIVE"), "status")
            self.instruments[instrument_id] = Instrument(
                instrument_id=instrument_id,
                manager_arn=manager,
                connector_id=check("PaymentConnectorId", entry["paymentConnectorId"], "paymentConnectorId"),
                user_id=check("UserId", entry["userId"], "userId"),
                account=account,
                chain_ids=frozenset(c for c in chains if c is not None),
                linked_accounts=list(entry.get("linkedAccounts", [])),
                status=status,
                created_at=created,
            )

    # ----- faults -----

    def set_faults(self, spec: Mapping[str, Any]) -> None:
        """Replaces the switches of one scope: with a top-level paymentSessionId, those that fire only
        on requests naming that session (so concurrent tests on their own sessions never meet each
        other's faults); without, the switches for every request."""
        spec = dict(spec)
        scope = spec.pop("paymentSessionId", None)
        if scope is not None and not isinstance(scope, str):
            raise ValueError("paymentSessionId must be a string")
        faults: dict[str, Fault] = {}
        for kind, settings in spec.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
            if not isinstance(settings, dict):
                raise ValueError(f"fault {kind} must be an object")
            settings = dict(settings)
            operation = settings.pop("operation", "ProcessPayment")
            if operation not in self.model.operations:
                raise ValueError(f"fault {kind}: unknown operation {operation!r}")
            times = settings.pop("times", 1)
            if not isinstance(times, int) or isinstance(times, bool) or times == 0 or times < -1:
                raise ValueError(f"fault {kind}: times must be a positive integer or -1 (until cleared)")
            unknown = sorted(set(settings) - FAULT_SETTINGS[kind])
            if unknown:
                raise ValueError(f"fault {kind}: unknown settings {unknown}; it takes {sorted(FAULT_SETTINGS[kind])}")
            if kind == "slow" and (not isinstance(settings.get("ms"), int) or settings["ms"] < 0):
                raise ValueError("fault slow needs ms, a non-negative integer")
            if kind == "internalError" and not isinstance(settings.get("afterSigning", False), bool):
                raise ValueError("fault internalError: afterSigning must be a boolean")
            if kind == "wrongTerms" and (not settings or operation != "ProcessPayment"):
                raise ValueError(f"fault wrongTerms (ProcessPayment only) takes one or more of {WRONG_TERMS_FIELDS}")
            faults[kind] = Fault(operation, times, settings)
        self.faults = {key: f for key, f in self.faults.items() if key[1] != scope}
        self.faults.update({(kind, scope): f for kind, f in faults.items()})

    def fault_view(self, scope: str | None = None) -> dict[str, Any]:
        return {
            kind: {"operation": f.operation, "times": f.remaining, **f.settings}
            for (kind, session), f in self.faults.items()
            if session == scope
        }

    def take_fault(self, kind: str, operation: str, when: Any = None, session: Any = None) -> dict[str, Any] | None:
        """The fault's settings if it applies to this request (and counts it down), else None. A
        switch scoped to the request's session goes before one for every request."""
        for key in ((kind, session), (kind, None)) if isinstance(session, str) else ((kind, None),):
            fault = self.faults.get(key)
            if fault is None or fault.operation != operation:
                continue
            if when is not None and fault.settings.get("afterSigning", False) != when:
                continue
            if fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    del self.faults[key]
            self.faults_fired[kind] += 1
            return fault.settings
        return None

    # ----- callers -----

    @staticmethod
    def caller(params: Mapping[str, Any], headers: Mapping[str, str]) -> str:
        """The end user: the userId header (SigV4 callers) or a bearer token's `sub` (not verified)."""
        user = str(params.get("userId") or "").strip()
        if user:
            return user
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer "):
            try:
                claims_part = auth[len("Bearer ") :].split(".")[1]
                claims = json.loads(base64.urlsafe_b64decode(claims_part + "=" * (-len(claims_part) % 4)))
                if isinstance(claims.get("sub"), str) and claims["sub"]:
                    return str(claims["sub"])
            except (IndexError, ValueError):
                pass
            raise ServiceError("AccessDeniedException", "The bearer token carries no usable sub claim")
        raise validation_error("Member must not be null: userId is required for AWS_IAM callers", "userId")

    def _manager(self, arn: str, missing: str) -> None:
        if arn not in self.managers:
            raise ServiceError(missing, "Payment manager not found")

    # ----- operations -----

    def create_payment_session(self, params: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        user = self.caller(params, headers)
        self._manager(params["paymentManagerArn"], "AccessDeniedException")
        limits = params.get("limits")
        max_spend: Decimal | None = None
        if limits is not None:
            value = limits["maxSpendAmount"]["value"]
            if re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,6})?", value) is None:
                raise validation_error(
                    "Member must be a non-negative decimal amount with at most 6 decimals",
                    "limits.maxSpendAmount.value",
                )
            max_spend = Decimal(value)
        token = params.get("clientToken") or str(uuid.uuid4())
        fingerprint = _fingerprint(params, user)
        known = self.session_tokens.get(token)
        if known is not None:
            if known[0] != fingerprint:
                raise ServiceError("ConflictException", "The clientToken was used with other parameters")
            return {"paymentSession": self.sessions[known[1]].view()}
        now = self.now()
        session = Session(
            session_id="payment-session-" + _random_id(15),
            manager_arn=params["paymentManagerArn"],
            user_id=user,
            limits=limits,
            max_spend=max_spend,
            expiry_minutes=params["expiryTimeInMinutes"],
            created_at=now,
            updated_at=now,
        )
        self.sessions[session.session_id] = session
        self.session_tokens[token] = (fingerprint, session.session_id)
        self.signatures_by_session.setdefault(session.session_id, 0)
        return {"paymentSession": session.view()}

    def get_payment_session(self, params: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        user = self.caller(params, headers)
        self._manager(params["paymentManagerArn"], "ResourceNotFoundException")
        return {"paymentSession": self._session(params, user).view()}

    def get_payment_instrument(self, params: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        user = self.caller(params, headers)
        self._manager(params["paymentManagerArn"], "ResourceNotFoundException")
        instrument = self._instrument(params, user)
        connector = params.get("paymentConnectorId")
        if connector is not None and connector != instrument.connector_id:
            raise ServiceError("ResourceNotFoundException", "Payment instrument not found")
        return {"paymentInstrument": instrument.view()}

    def _session(self, params: Mapping[str, Any], user: str) -> Session:
        session = self.sessions.get(params["paymentSessionId"])
        # Another user's session is not found, as the service scopes sessions to their user.
        if session is None or session.manager_arn != params["paymentManagerArn"] or session.user_id != user:
            raise ServiceError("ResourceNotFoundException", "Payment session not found")
        return session

    def _instrument(self, params: Mapping[str, Any], user: str) -> Instrument:
        instrument = self.instruments.get(params["paymentInstrumentId"])
        if instrument is None or instrument.manager_arn != params["paymentManagerArn"] or instrument.user_id != user:
            raise ServiceError("ResourceNotFoundException", "Payment instrument not found")
        return instrument

    def process_payment(self, params: dict[str, Any], headers: Mapping[str, str]) -> tuple[bytes, IssuedPayment | None]:
        """Signs (or replays) one payment; returns the answer body and the payment if new."""
        user = self.caller(params, headers)
        token = params.get("clientToken") or str(uuid.uuid4())
        fingerprint = _fingerprint(params, user)
        issued = self.payments.get(token)
        if issued is not None:
            if issued.fingerprint != fingerprint:
                raise ServiceError("ConflictException", "The clientToken was used with other parameters")
            self.replays += 1
            return issued.body, None
        self._manager(params["paymentManagerArn"], "ResourceNotFoundException")
        if params["paymentType"] != "CRYPTO_X402":
            raise validation_error("The local service processes CRYPTO_X402 payments only", "paymentType")
        x402 = params["paymentInput"].get("cryptoX402")
        if x402 is None:
            raise validation_error("paymentInput must carry cryptoX402 for paymentType CRYPTO_X402", "paymentInput")
        session = self._session(params, user)
        if self.now() >= session.expires_at:
            raise validation_error("The payment session has expired", "paymentSessionId")
        instrument = self._instrument(params, user)
        if instrument.status != "ACTIVE":
            raise validation_error(
                f"The payment instrument is not active (status {instrument.status})", "paymentInstrumentId"
            )
        requirement = self._requirement(x402, instrument)
        amount_usd = Decimal(requirement.amount).scaleb(-requirement.decimals, EXACT_AMOUNT)
        spent_after = EXACT_AMOUNT.add(session.spent, amount_usd)
        if session.max_spend is not None and spent_after > session.max_spend:
            raise validation_error(
                "Insufficient budget: the payment amount exceeds the session's available spend amount",
                "paymentInput.cryptoX402.payload",
            )
        now = int(self.now())
        nonce = self.pinned_nonces.pop(0) if self.pinned_nonces else signing.new_nonce(requirement.method)
        terms = signing.Terms(
            method=requirement.method,
            chain_id=requirement.chain_id,
            asset=requirement.asset,
            pay_to=requirement.pay_to,
            value=requirement.amount,
            valid_after=signing.valid_after(requirement.version, now),
            valid_before=now + requirement.max_timeout_seconds,
            nonce=_nonce_for(requirement.method, nonce),
            token_name=requirement.token_name,
            token_version=requirement.token_version,
        )
        wrong = self.take_fault("wrongTerms", "ProcessPayment", session=params.get("paymentSessionId"))
        tampered: list[str] = []
        if wrong is not None:
            terms, tampered = _tamper(terms, wrong)
        payload = signing.sign(instrument.account, terms)
        stamp = self.now()
        body = {
            "processPaymentId": str(uuid.uuid4()),
            "paymentManagerArn": params["paymentManagerArn"],
            "paymentSessionId": session.session_id,
            "paymentInstrumentId": instrument.instrument_id,
            "paymentType": "CRYPTO_X402",
            "status": "PROOF_GENERATED",
            "paymentOutput": {"cryptoX402": {"version": x402["version"], "payload": payload}},
            "createdAt": iso(stamp),
            "updatedAt": iso(stamp),
        }
        session.spent = spent_after
        session.updated_at = stamp
        session.signatures += 1
        self.signatures_total += 1
        self.signatures_by_session[session.session_id] = self.signatures_by_session.get(session.session_id, 0) + 1
        self.signatures_by_instrument[instrument.instrument_id] = (
            self.signatures_by_instrument.get(instrument.instrument_id, 0) + 1
        )
        issued = IssuedPayment(
            process_payment_id=body["processPaymentId"],
            client_token=token,
            fingerprint=fingerprint,
            session_id=session.session_id,
            instrument_id=instrument.instrument_id,
            method=requirement.method,
            amount_usd=amount_usd,
            tampered=tampered,
            body=json.dumps(body, separators=(",", ":")).encode(),
        )
        self.payments[token] = issued
        return issued.body, issued

    def _requirement(self, x402: Mapping[str, Any], instrument: Instrument) -> Requirement:
        where = "paymentInput.cryptoX402.payload"
        if x402["version"] not in ("1", "2"):
            raise validation_error("Unsupported x402 version; supported: 1, 2", "paymentInput.cryptoX402.version")
        payload = x402["payload"]
        if not isinstance(payload, dict):
            raise validation_error("The x402 payload must be the selected payment requirement object", where)
        scheme = payload.get("scheme")
        if scheme == "exact" and "permit2AllowanceLimit" in x402:
            # The model: "valid only for the upto (metered) scheme; supplying it for the exact
            # scheme returns a validation error."
            raise validation_error(
                "permit2AllowanceLimit is valid only for the upto scheme",
                "paymentInput.cryptoX402.permit2AllowanceLimit",
            )
        if scheme != "exact":
            raise validation_error("Unsupported x402 scheme; the local service signs exact only", f"{where}.scheme")
        chain_id = _chain_id(payload.get("network"))
        if chain_id is None:
            raise validation_error("Unsupported network", f"{where}.network")
        if chain_id not in instrument.chain_ids:
            raise validation_error("The payment instrument does not support this network", f"{where}.network")
        asset = payload.get("asset")
        decimals = self.assets.get((chain_id, asset.lower())) if isinstance(asset, str) else None
        if decimals is None or not is_address(asset):
            raise validation_error("Unsupported asset on this network", f"{where}.asset")
        pay_to = payload.get("payTo")
        if not isinstance(pay_to, str) or not is_address(pay_to):
            raise validation_error("payTo must be an EVM address", f"{where}.payTo")
        amount_field = "maxAmountRequired" if x402["version"] == "1" else "amount"
        amount = payload.get(amount_field)
        if not isinstance(amount, str) or re.fullmatch(r"[0-9]{1,78}", amount) is None or not 0 < int(amount) < 2**256:
            raise validation_error(
                f"{amount_field} must be a positive integer string in atomic units", f"{where}.{amount_field}"
            )
        timeout = payload.get("maxTimeoutSeconds")
        if not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 < timeout <= 86400:
            raise validation_error("maxTimeoutSeconds must be a positive integer", f"{where}.maxTimeoutSeconds")
        extra = payload.get("extra") or {}
        if not isinstance(extra, dict):
            raise validation_error("extra must be an object", f"{where}.extra")
        method = extra.get("assetTransferMethod", "eip3009")
        if method not in ("eip3009", "permit2"):
            raise validation_error(
                "Unsupported assetTransferMethod; supported: eip3009, permit2", f"{where}.extra.assetTransferMethod"
            )
        name, version = extra.get("name"), extra.get("version")
        if method == "eip3009" and not (isinstance(name, str) and name and isinstance(version, str) and version):
            raise validation_error(
                "EIP-712 domain parameters extra.name and extra.version are required", f"{where}.extra"
            )
        return Requirement(
            version=int(x402["version"]),
            chain_id=chain_id,
            asset=to_checksum_address(asset),
            decimals=decimals,
            pay_to=to_checksum_address(pay_to),
            amount=int(amount),
            max_timeout_seconds=timeout,
            method=method,
            token_name=name if isinstance(name, str) else "",
            token_version=version if isinstance(version, str) else "",
        )

    # ----- admin views -----

    def stats(self) -> dict[str, Any]:
        return {
            "signatures": {
                "total": self.signatures_total,
                "bySession": dict(self.signatures_by_session),
                "byInstrument": dict(self.signatures_by_instrument),
            },
            "replays": self.replays,
            "requests": dict(self.requests),
            "errors": {op: dict(codes) for op, codes in self.errors.items()},
            "faultsFired": dict(self.faults_fired),
            "sessions": {
                s.session_id: {
                    "userId": s.user_id,
                    "spent": usd_text(s.spent),
                    "available": (
                        usd_text(EXACT_AMOUNT.subtract(s.max_spend, s.spent)) if s.max_spend is not None else None
                    ),
                    "signatures": s.signatures,
                    "expiresAt": iso(s.expires_at),
                }
                for s in self.sessions.values()
            },
            "clock": {
                "offsetSeconds": self.clock_offset,
                "frozen": self.clock_frozen_at is not None,
                "now": iso(self.now()),
            },
        }


def _chain_id(network: Any) -> int | None:
    """The EVM chain id of a CAIP-2 `eip155:N` id or an x402 v1 network name."""
    if not isinstance(network, str):
        return None
    match = re.fullmatch(r"eip155:([1-9][0-9]{0,17})", network)
    if match:
        return int(match.group(1))
    return V1_EVM_NETWORKS.get(network)


def _fingerprint(params: Mapping[str, Any], user: str) -> str:
    """What must be equal for a clientToken to replay: every member but the token and agentName."""
    material = {k: v for k, v in params.items() if k not in ("clientToken", "agentName", "userId")}
    material["userId"] = user
    return json.dumps(material, sort_keys=True, separators=(",", ":"))


def _random_id(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _nonce_for(method: str, pinned: str) -> str:
    if method == "eip3009":
        if re.fullmatch(r"0x[0-9a-fA-F]{64}", pinned) is None:
            raise ServiceError("InternalServerException", "A pinned nonce is not a bytes32 hex for EIP-3009")
        return pinned
    if re.fullmatch(r"0x[0-9a-fA-F]{64}", pinned):
        return str(int(pinned, 16))
    if re.fullmatch(r"[0-9]{1,78}", pinned) is None or int(pinned) >= 2**256:
        raise ServiceError("InternalServerException", "A pinned nonce is not a uint256 for Permit2")
    return pinned


def _tamper(terms: signing.Terms, wrong: Mapping[str, Any]) -> tuple[signing.Terms, list[str]]:
    """Terms changed as the wrongTerms fault asks: still validly signed, but not what was asked."""
    changes: dict[str, Any] = {}
    if "payTo" in wrong:
        changes["pay_to"] = to_checksum_address(wrong["payTo"])
    if "value" in wrong:
        changes["value"] = int(wrong["value"])
    if "validBeforeDeltaSeconds" in wrong:
        changes["valid_before"] = terms.valid_before + int(wrong["validBeforeDeltaSeconds"])
    if "asset" in wrong:
        changes["asset"] = to_checksum_address(wrong["asset"])
    if "spender" in wrong:
        changes["spender"] = to_checksum_address(wrong["spender"])
    if "chainId" in wrong:
        changes["chain_id"] = int(wrong["chainId"])
    return dataclasses.replace(terms, **changes), sorted(wrong)


class LocalHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # 200 concurrent callers must not be refused at connect

    def __init__(self, address: tuple[str, int], service: PaymentsService) -> None:
        super().__init__(address, Handler)
        self.service = service


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "predebit-agentcore-local"
    server: LocalHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per answer is logged by _answer, without bodies

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        request_id = str(uuid.uuid4())
        path = self.path.split("?", 1)[0]
        try:
            raw = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        if path.startswith(ADMIN_PREFIX):
            self._admin(method, path, raw)
            return
        service = self.server.service
        op = service.model.route(method, path)
        if op is None:
            self._answer(
                404,
                {"message": f"No operation at {method} {path}"},
                request_id,
                error="UnknownOperationException",
                label=f"{method} {path}",
            )
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        with service.lock:
            service.requests[op.name] += 1
        try:
            self._operation(op, raw, headers, request_id)
        except Exception:  # a defect here must still answer, as the model's 500
            log.exception("%s: unexpected failure; answering InternalServerException", op.name)
            self._error(op, ServiceError("InternalServerException", "Internal failure"), request_id)

    def _operation(self, op: Operation, raw: bytes, headers: dict[str, str], request_id: str) -> None:
        service = self.server.service
        slow_ms = 0
        try:
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                raise ServiceError(
                    "ValidationException", "The request body is not JSON", reason="CannotParse"
                ) from None
            checked = service.model.validate(op, body, headers)
            if checked.errors:
                reason = "CannotParse" if any(e.cannot_parse for e in checked.errors) else "FieldValidationFailed"
                raise ServiceError(
                    "ValidationException", validation_message(checked.errors), reason=reason, fields=checked.errors
                )
            session = checked.params.get("paymentSessionId")
            with service.lock:
                if service.take_fault("throttle", op.name, session=session) is not None:
                    raise ServiceError("ThrottlingException", "Rate exceeded (local fault switch)")
                if service.take_fault("internalError", op.name, when=False, session=session) is not None:
                    raise ServiceError("InternalServerException", "Internal failure (local fault switch)")
                issued = None
                if op.name == "ProcessPayment":
                    answer, issued = service.process_payment(checked.params, headers)
                elif op.name == "CreatePaymentSession":
                    answer = _json(service.create_payment_session(checked.params, headers))
                elif op.name == "GetPaymentSession":
                    answer = _json(service.get_payment_session(checked.params, headers))
                else:
                    answer = _json(service.get_payment_instrument(checked.params, headers))
                # After signing: the signature is counted and stored, so a re-send replays it.
                if service.take_fault("internalError", op.name, when=True, session=session) is not None:
                    raise ServiceError("InternalServerException", "Internal failure after signing (local fault)")
                slow = service.take_fault("slow", op.name, session=session)
                slow_ms = int(slow["ms"]) if slow else 0
            label = op.name + (f" signed {issued.process_payment_id}" if issued else "")
            if slow_ms:
                time.sleep(slow_ms / 1000)
            self._answer(op.success_status, answer, request_id, label=label)
        except ServiceError as e:
            self._error(op, e, request_id)

    def _error(self, op: Operation, e: ServiceError, request_id: str) -> None:
        service = self.server.service
        if e.code not in op.errors:  # every answer must be one the model lists for the operation
            log.error("%s: %s is not a modelled error; answering InternalServerException", op.name, e.code)
            e = ServiceError("InternalServerException", "Internal failure")
        with service.lock:
            service.errors[op.name][e.code] = service.errors[op.name].get(e.code, 0) + 1
        error_body: dict[str, Any] = {"message": e.message}
        if e.code == "ValidationException":
            error_body["reason"] = e.reason
            error_body["fieldList"] = [{"name": f.path, "message": f.constraint} for f in e.fields if f.path]
        self._answer(service.model.error_status(e.code), error_body, request_id, error=e.code, label=op.name)

    def _admin(self, method: str, path: str, raw: bytes) -> None:
        service = self.server.service
        name = path[len(ADMIN_PREFIX) :]
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            with service.lock:
                if method == "GET" and name == "stats":
                    answer: Any = service.stats()
                elif method == "GET" and name == "payments":
                    answer = {"payments": [p.view() for p in service.payments.values()]}
                elif method == "GET" and name == "instruments":
                    answer = {
                        "instruments": [
                            {**i.view(), "networks": sorted(f"eip155:{c}" for c in i.chain_ids)}
                            for i in service.instruments.values()
                        ],
                        "paymentManagers": sorted(service.managers),
                    }
                elif method == "GET" and name == "faults":
                    scoped = sorted({session for _, session in service.faults if session is not None})
                    answer = {
                        "faults": service.fault_view(),
                        "bySession": {session: service.fault_view(session) for session in scoped},
                    }
                elif method == "POST" and name == "faults":
                    service.set_faults(body)
                    scope = body.get("paymentSessionId") if isinstance(body, dict) else None
                    answer = {"faults": service.fault_view(scope if isinstance(scope, str) else None)}
                elif method == "POST" and name == "reset":
                    service.reset()
                    answer = {"reset": True}
                elif method == "POST" and name == "clock":
                    service.set_clock(body)
                    answer = {
                        "offsetSeconds": service.clock_offset,
                        "frozen": service.clock_frozen_at is not None,
                        "now": iso(service.now()),
                    }
                elif method == "POST" and name == "nonces":
                    nonces = body.get("nonces")
                    if not isinstance(nonces, list) or not all(isinstance(n, str) for n in nonces):
                        raise ValueError("nonces must be a list of strings")
                    service.pinned_nonces.extend(nonces)
                    answer = {"pinned": len(service.pinned_nonces)}
                else:
                    self._answer(404, {"error": f"no admin route {method} {path}"}, "-", label="admin")
                    return
        except (ValueError, TypeError) as e:
            self._answer(400, {"error": str(e)}, "-", label=f"admin {name}")
            return
        self._answer(200, answer, "-", label=f"admin {name}")

    def _answer(self, status: int, body: Any, request_id: str, *, error: str | None = None, label: str) -> None:
        data = body if isinstance(body, bytes) else _json(body)
        log.info("%s -> %d%s", label, status, f" {error}" if error else "")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", request_id)
            if error:
                self.send_header("x-amzn-ErrorType", error)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the caller gave up (its timeout); the state is kept


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local AgentCore Payments data-plane service (loopback only)")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="the port to listen on (0: any free one)")
    parser.add_argument("--seed", type=Path, default=DEFAULT_SEED, help="payment managers, instruments, assets")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s agentcore-local %(message)s", stream=sys.stderr)
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error(f"--host must be a loopback address, not {args.host}")
    service = PaymentsService(ServiceModel(), json.loads(args.seed.read_text()))
    server = LocalHTTPServer((args.host, args.port), service)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    host, port = server.server_address[:2]
    log.info(
        "listening on http://%s:%d with %d instrument(s); /_local/ is the admin API",
        host,
        port,
        len(service.instruments),
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
