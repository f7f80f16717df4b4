"""PredebitPaymentsPlugin: the AgentCore payments plugin with predebit before every signature.

Two modes. **Enforcing** (``mode="enforcing"``): predebit's authorize function is the only
principal allowed to call ProcessPayment; on a 402 the plugin sends the 402 as received to
authorize once, which selects the entry, decides, reserves, signs through AgentCore, checks the
signature and marks the hold SENT; the plugin checks the header it returns, lets the SDK retry the
tool with it, and commits with the holdToken after the paid response (enforcing.py). The plugin
never calls ProcessPayment in this mode: the manager's ``process_payment`` and its client's
ProcessPayment operation are both refused.

**Cooperative** (the default, weaker: the agent's own role signs, so code running as the agent can
sign without asking predebit), per payment attempt (DESIGN.md, "The flow"):

    verify -> ledger reserve -> ProcessPayment (clientToken = paymentId) -> post-sign check
      -> [SDK applies the header] -> ledger markSent -> tool retried -> ledger commit

Anything that is not a YES raises ``PredebitDeclined`` (a ``PaymentError``) before the
signature leaves the process. A hold is released only for a payment never sent; a sent payment
whose settlement failed stays SENT until the ledger's expiry decides it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx
from bedrock_agentcore.payments.integrations.config import AgentCorePaymentsPluginConfig
from bedrock_agentcore.payments.integrations.handlers import get_payment_handler
from bedrock_agentcore.payments.integrations.strands import AgentCorePaymentsPlugin
from bedrock_agentcore.payments.manager import PaymentError, PaymentManager
from bedrock_agentcore.payments.mpp import is_mpp_payment_required
from strands import Agent
from strands.hooks import AfterToolCallEvent
from strands.plugins import hook
from strands.tools import tool

from . import http_tool
from .client import PredebitClient, PredebitConfig
from .enforcing import (
    RETRYABLE_AUTHORIZE_CODES,
    Authorized,
    authorize_event,
    read_answer,
    read_offer,
)
from .errors import (
    NETWORK_NOT_ALLOWED,
    OP_NOT_ALLOWED,
    PAYMENT_TYPE_NOT_SUPPORTED,
    RESOURCE_MISMATCH,
    SIGNED_PAYLOAD_MISMATCH,
    VERIFIER_UNAVAILABLE,
    PredebitDeclined,
    PredebitUnavailable,
)
from .payment_id import payment_id
from .signed import (
    Approved,
    PaymentClaims,
    SignedPayloadError,
    SignedTerms,
    check_against_approved,
    check_claims,
    check_header_payload,
    decode_evm_payload,
    decode_payment_header,
    mark_sent_terms,
    payment_claims,
)

logger = logging.getLogger(__name__)

PAYMENT_HEADER_NAMES = ("X-PAYMENT", "PAYMENT-SIGNATURE")
SETTLEMENT_HEADER_NAMES = ("payment-response", "x-payment-response")
# x402's MCP transport: the settlement response rides in the tool result's _meta under this key.
MCP_PAYMENT_RESPONSE_META_KEY = "x402/payment-response"
MCP_RESULT_FIELDS = ("_meta", "metadata", "structuredContent", "isError")


@dataclass
class Hold:
    """A predebit hold this plugin opened and has not seen to a final state."""

    payment_id: str
    payment_session_id: str
    tool_use_id: str
    amount_micros: int | None
    pay_to: str
    amount_atomic: str
    network: str
    asset: str | None
    verification_id: str | None
    signed: dict[str, Any] | None = None
    # reserve's holdToken, which markSent, commit and release must present; in memory only and
    # out of repr, so no log line or traceback that prints a Hold carries it.
    hold_token: str = field(default="", repr=False)

    def ledger_event(self, op: str) -> dict[str, Any]:
        """The fields every ledger op on this hold starts with, its holdToken among them."""
        return {
            "version": "1",
            "op": op,
            "paymentSessionId": self.payment_session_id,
            "paymentId": self.payment_id,
            "holdToken": self.hold_token,
        }


@dataclass
class _ToolCall:
    """What the wrapped PaymentManager needs from the hook that is handling a 402."""

    tool_use_id: str
    tool_name: str
    invocation_state: dict[str, Any]
    request_url: str | None = None  # the url input, or the URL that answered after a same-origin redirect
    resource: str | None = None  # the resource the v2 402 declares
    unjudged: str | None = None  # why the 402's origin may not be the judged one: the decline, before verify
    signed_hold: Hold | None = None  # cooperative: signed and checked here, to markSent once applied
    sent_hold: Hold | None = None  # enforcing: authorize already marked it SENT

    def attempt(self) -> int:
        # The SDK counts signing attempts per tool call before it calls generate_payment_header.
        return max(1, int(self.invocation_state.get(f"payment_retry_count_{self.tool_use_id}", 1)))


@dataclass(frozen=True)
class _Signed:
    """A signature ProcessPayment returned and the plugin checked, awaiting the header check."""

    hold: Hold
    terms: SignedTerms
    payload: Mapping[str, Any]
    approved: Approved
    x402_version: int


@dataclass
class _Signing:
    """One generate_payment_header call: the signature its process_payment produced, if any."""

    signed: _Signed | None = None


MODES = ("cooperative", "enforcing")
NO_PROCESS_PAYMENT = (
    "In enforcing mode only predebit's authorize function calls ProcessPayment; this process never does. "
    "Nothing was signed."
)

_GUARDED: weakref.WeakSet[PaymentManager] = weakref.WeakSet()  # managers whose methods are wrapped
_CALL: ContextVar[_ToolCall | None] = ContextVar("predebit_tool_call", default=None)
_SIGNING: ContextVar[_Signing | None] = ContextVar("predebit_signing", default=None)


def request_url_of(tool_input: Any) -> str | None:
    """The URL a tool call requested: the ``url`` input of an HTTP tool (strands' ``http_request``,
    or any tool the SDK's generic handler pays for, whose input also carries the payment headers).

    An MCP Gateway call (``toolName`` + ``parameters``, the SDK's MCPRequestPaymentHandler shape)
    names no URL: the Gateway target decides it, so there is none to report. Never taken from the
    402: the merchant's declared resource is sent separately, as ``resource``.
    """
    if not isinstance(tool_input, Mapping):
        return None
    if "toolName" in tool_input and "parameters" in tool_input:
        return None
    url = tool_input.get("url")
    return url if isinstance(url, str) and url else None


REDIRECTED_ELSEWHERE = (
    "The 402 came from another origin than the URL the tool call requested (the tool followed a redirect); "
    "predebit pays only the origin its host rules judged, so nothing was signed."
)
REDIRECT_UNREPORTED = (
    "The tool followed a redirect and does not say which URL answered, so the 402's origin is unknown; "
    "nothing was signed."
)
URL_UNREPORTED = (
    "The tool's result does not say which URL answered the 402, so a redirect to another origin cannot be "
    "ruled out; nothing was signed. A tool should report it as `url` in its result (the plugin's http_request "
    "does), or be listed in PredebitConfig.redirect_free_tools if it never follows a redirect."
)
URL_UNREADABLE = "The URL the tool requested or the one that answered cannot be parsed; nothing was signed."


def _content_blocks(result: Any) -> list[Any]:
    """A tool result's content blocks, in the shapes the SDK's handlers read (a list, or ``content``)."""
    content = result if isinstance(result, list) else result.get("content") if isinstance(result, Mapping) else None
    return content if isinstance(content, list) else []


def answered_url_of(result: Any) -> tuple[str | None, bool]:
    """What a tool result says about where its 402 came from: (the URL that answered, whether it says it followed
    a redirect).

    The URL is the ``url`` field of the ``PAYMENT_REQUIRED:`` block, the block the SDK's handler reads the
    402 from; the plugin's http_request writes it. Nothing else in the result counts: the merchant's
    body is under ``body`` there, and another block could be the merchant's text. strands-agents-tools'
    http_request names no URL but writes a ``Redirects: ...`` line when it followed any.
    """
    url: str | None = None
    redirected = False
    seen_402 = False
    for block in _content_blocks(result):
        text = block.get("text") if isinstance(block, Mapping) else getattr(block, "text", None)
        if not isinstance(text, str):
            continue
        if text.startswith("Redirects:"):
            redirected = True
        elif text.startswith(http_tool.PAYMENT_REQUIRED_MARKER) and not seen_402:
            seen_402 = True
            try:
                parsed = json.loads(text[len(http_tool.PAYMENT_REQUIRED_MARKER) :])
            except ValueError:
                continue
            value = parsed.get("url") if isinstance(parsed, dict) else None
            url = value if isinstance(value, str) and value else None
    return url, redirected


def judged_url(
    tool_name: str, tool_input: Any, result: Any, redirect_free_tools: tuple[str, ...] = ()
) -> tuple[str | None, str | None]:
    """The requestUrl verify judges for a tool call's 402, and why it must not be paid (None: it may be asked).

    A tool call with a ``url`` input is judged on the URL that answered, which must be on that input's
    origin: the host rules were written for the URL the agent asked for, and a redirect elsewhere would
    take the paid retry's header along. The tool result states the URL (the plugin's http_request
    does); a tool that says it followed a redirect without naming the URL is refused, and so is one
    that says nothing, unless the operator lists it in ``redirect_free_tools`` (then its ``url`` input
    is the URL that answered). A call without a ``url`` input (an MCP Gateway call) names no URL.
    """
    requested = request_url_of(tool_input)
    if requested is None:
        return None, None
    answered, redirected = answered_url_of(result)
    if answered is not None:
        try:
            moved = not http_tool.same_origin(answered, requested)
            redirected_within = httpx.URL(answered) != httpx.URL(requested)
        except httpx.InvalidURL:
            return requested, URL_UNREADABLE
        if moved:
            return requested, REDIRECTED_ELSEWHERE
        # Not redirected: verify still gets the url input as the agent wrote it, so its refusal of a URL
        # that HTTP clients could read with different hosts (a backslash, ...) still applies.
        return (answered if redirected_within else requested), None
    if redirected:
        return requested, REDIRECT_UNREPORTED
    if tool_name in redirect_free_tools:
        return requested, None
    return requested, URL_UNREPORTED


def _v2_resource_url(payment_required_request: dict[str, Any]) -> str | None:
    """The top-level resource URL of a v2 PAYMENT-REQUIRED header, if there is one."""
    headers = payment_required_request.get("headers") or {}
    for key, value in headers.items():
        if str(key).lower() == "payment-required" and isinstance(value, str):
            try:
                decoded = json.loads(base64.b64decode(value))
            except (ValueError, binascii.Error):
                return None
            resource = decoded.get("resource") if isinstance(decoded, dict) else None
            url = resource.get("url") if isinstance(resource, dict) else None
            if isinstance(url, str):
                return url
            if isinstance(resource, str):
                return resource
    return None


def _refuse_unjudged(call: _ToolCall | None) -> None:
    """Declines a 402 whose origin may not be the one predebit would judge (see ``judged_url``)."""
    if call is not None and call.unjudged is not None:
        logger.info("predebit NO %s before verify for toolUseId %s", RESOURCE_MISMATCH, call.tool_use_id)
        raise PredebitDeclined(RESOURCE_MISMATCH, call.unjudged)


def _check_header(header: dict[str, str], signed: _Signed) -> PaymentClaims:
    """Decodes the payment header the SDK built and checks it against what was signed and approved."""
    decoded = decode_payment_header(header, signed.x402_version)
    return check_header_payload(decoded, signed.payload, signed.terms, signed.approved, signed.x402_version)


def _mismatch(error: Exception, verification_id: str | None) -> PredebitDeclined:
    """The decline for a signed payment that differs from the approved one (never sent)."""
    problem = str(error) if isinstance(error, SignedPayloadError) else "the signed payload is missing or malformed"
    return PredebitDeclined(
        SIGNED_PAYLOAD_MISMATCH,
        f"The signed payment differs from the approved one ({problem}); it was not sent.",
        verification_id,
    )


def _mcp_meta(result: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """An MCP tool result's ``_meta``: Strands' MCP client hands it on as the tool result's
    ``metadata`` (``MCPClient._handle_tool_result``); a raw MCP ``CallToolResult`` keeps ``_meta``."""
    for key in ("_meta", "metadata"):
        meta = result.get(key)
        if isinstance(meta, Mapping):
            return meta
    return None


def _is_mcp_result(result: Any, tool_input: Any) -> bool:
    """Whether a tool result is an MCP one: an MCP Gateway call, or a result carrying MCP fields."""
    if isinstance(tool_input, Mapping) and "toolName" in tool_input and "parameters" in tool_input:
        return True  # the SDK's MCPRequestPaymentHandler shape
    return isinstance(result, Mapping) and any(k in result for k in MCP_RESULT_FIELDS)


def find_settlement(result: Any, tool_name: str, tool_input: Any) -> str | dict[str, Any] | None:
    """The merchant's settlement in a paid retry's tool result, in a form the ledger's commit takes.

    MCP (x402 ``specs/transports-v2/mcp.md``): only ``_meta["x402/payment-response"]``, a
    SettlementResponse object (a JSON or base64 string is passed on as a string). Nothing else in an
    MCP result counts: ``structuredContent`` and ``content`` are the tool's output, not the transport's.
    HTTP tools: the ``PAYMENT-RESPONSE`` / ``X-PAYMENT-RESPONSE`` header value.
    """
    if _is_mcp_result(result, tool_input):
        meta = _mcp_meta(result) if isinstance(result, Mapping) else None
        value = meta.get(MCP_PAYMENT_RESPONSE_META_KEY) if meta is not None else None
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, str) and value:
            return value
        return None
    headers = get_payment_handler(tool_name, tool_input if isinstance(tool_input, dict) else {}).extract_headers(result)
    if headers is None and isinstance(result, dict):
        # The plugin's http_request returns {"statusCode", "headers", "body"} as JSON text.
        for block in result.get("content") or []:
            text = block.get("text") if isinstance(block, dict) else None
            if not isinstance(text, str):
                continue
            text = text.removeprefix("PAYMENT_REQUIRED:").strip()
            try:
                parsed = json.loads(text)
            except ValueError:
                continue
            if isinstance(parsed, dict) and isinstance(parsed.get("headers"), dict):
                headers = parsed["headers"]
                break
    for key, value in (headers or {}).items():
        if str(key).lower() in SETTLEMENT_HEADER_NAMES and isinstance(value, str) and value:
            return value
    return None


class PredebitPaymentsPlugin(AgentCorePaymentsPlugin):
    """``AgentCorePaymentsPlugin`` that asks predebit before every signature.

    Args:
        config: the SDK plugin's own configuration (payment manager, user, instrument, session).
        predebit: where predebit's functions are and how to reach them.
        mode: ``"enforcing"`` (predebit's authorize function signs; the agent's role holds no
            ``bedrock-agentcore:ProcessPayment`` and this plugin never calls it) or
            ``"cooperative"`` (the default: verify, reserve, then the agent's own role signs, which
            code running as the agent could also do without asking predebit).
    """

    def __init__(
        self, config: AgentCorePaymentsPluginConfig, predebit: PredebitConfig, *, mode: str = "cooperative"
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        super().__init__(config)
        self.mode = mode
        self.predebit_config = predebit
        self.predebit = PredebitClient(predebit)
        self._lock = threading.Lock()
        self.holds: dict[str, Hold] = {}  # paymentId -> hold not yet POSTED or VOIDED by this plugin
        self._awaiting_settlement: dict[str, str] = {}  # toolUseId -> paymentId sent with the retry

    # ---- wiring -------------------------------------------------------------------------

    def init_agent(self, agent: Agent) -> None:
        super().init_agent(agent)
        assert self.payment_manager is not None
        self.guard(self.payment_manager)

    def guard(self, manager: PaymentManager) -> None:
        """Wraps ``process_payment`` and ``generate_payment_header`` on this manager instance
        (enforcing mode: replaces them, see ``_enforce``)."""
        if manager in _GUARDED:
            return
        if self.mode == "enforcing":
            self._enforce(manager)
            _GUARDED.add(manager)
            return
        original_process: Callable[..., dict[str, Any]] = manager.process_payment
        original_generate: Callable[..., dict[str, str]] = manager.generate_payment_header

        @functools.wraps(original_process)
        def process_payment(*args: Any, **kwargs: Any) -> dict[str, Any]:
            try:
                return self._guarded_process_payment(original_process, *args, **kwargs)
            except PaymentError:
                raise
            except Exception as e:  # fail closed, and always as a PaymentError the SDK handles
                logger.error("predebit guard failed unexpectedly: %s", type(e).__name__)
                raise PredebitDeclined(VERIFIER_UNAVAILABLE) from e

        @functools.wraps(original_generate)
        def generate_payment_header(*args: Any, **kwargs: Any) -> dict[str, str]:
            call = _CALL.get()
            _refuse_unjudged(call)  # before anything, AgentCore's instrument lookup included
            request = kwargs.get("payment_required_request")
            if call is not None and isinstance(request, dict):
                call.resource = _v2_resource_url(request)
            signing = _Signing()
            token = _SIGNING.set(signing)
            try:
                header = original_generate(*args, **kwargs)
            except BaseException:
                if signing.signed is not None:  # signed, but no header was built: never sent
                    self._release(signing.signed.hold, "NOT_SENT")
                raise
            finally:
                _SIGNING.reset(token)
            if signing.signed is None:
                return header  # nothing was signed under predebit (the wrapper declined first)
            try:
                self._after_header(signing.signed, header, call)
            except PaymentError:
                raise
            except Exception as e:  # fail closed: the header is never returned
                logger.error("predebit header check failed unexpectedly: %s", type(e).__name__)
                self._release(signing.signed.hold, "NOT_SENT")
                raise PredebitDeclined(VERIFIER_UNAVAILABLE) from e
            return header

        # Replacing the two methods on this instance is the integration point (the SDK's plugin
        # calls them on its manager); mypy refuses assignments to methods by default.
        manager.process_payment = process_payment  # type: ignore[method-assign]
        manager.generate_payment_header = generate_payment_header  # type: ignore[method-assign]
        _GUARDED.add(manager)

    def _enforce(self, manager: PaymentManager) -> None:
        """Enforcing mode's integration point, on this manager instance only.

        ``generate_payment_header`` is the one method the SDK's ``after_tool_call`` asks for the
        header (through ``_process_payment_required_request``, after its own configuration checks
        and ``pre_sign_policy``): it becomes one authorize call. ``process_payment`` is refused,
        and so is the ProcessPayment operation on the manager's boto3 client (a botocore
        ``before-call`` handler), so no path through the SDK, MPP's included, signs from here.
        """

        @functools.wraps(manager.generate_payment_header)
        def generate_payment_header(*args: Any, **kwargs: Any) -> dict[str, str]:
            try:
                return self._authorized_header(*args, **kwargs)
            except PaymentError:
                raise
            except Exception as e:  # fail closed, and always as a PaymentError the SDK handles
                logger.error("predebit authorize path failed unexpectedly: %s", type(e).__name__)
                raise PredebitDeclined(VERIFIER_UNAVAILABLE) from e

        @functools.wraps(manager.process_payment)
        def process_payment(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
            raise PredebitDeclined(OP_NOT_ALLOWED, NO_PROCESS_PAYMENT)

        def refuse_process_payment(**_kwargs: Any) -> None:
            raise PredebitDeclined(OP_NOT_ALLOWED, NO_PROCESS_PAYMENT)

        manager.generate_payment_header = generate_payment_header  # type: ignore[method-assign]
        manager.process_payment = process_payment  # type: ignore[method-assign]
        manager._payment_client.meta.events.register(
            "before-call.bedrock-agentcore.ProcessPayment", refuse_process_payment
        )

    # ---- hooks --------------------------------------------------------------------------

    # strands types @hook for plain callbacks (event) -> None; on a method, as in the SDK's own
    # plugin, the callback is bound when the plugin registers it.
    @hook  # type: ignore[call-overload]
    def after_tool_call(self, event: AfterToolCallEvent) -> None:
        """Commits the settlement of a paid retry, then lets the SDK handle a 402 under predebit."""
        tool_use_id = event.tool_use.get("toolUseId", "unknown")
        if event.invocation_state.get(f"payment_signed_{tool_use_id}"):
            with self._lock:
                sent_id = self._awaiting_settlement.pop(tool_use_id, None)
            if sent_id is not None:
                self._settle(sent_id, event)

        tool_name = event.tool_use.get("name", "unknown")
        request_url, unjudged = judged_url(
            tool_name,
            event.tool_use.get("input"),
            event.result,
            tuple(self.predebit_config.redirect_free_tools),
        )
        call = _ToolCall(tool_use_id, tool_name, event.invocation_state, request_url=request_url, unjudged=unjudged)
        token = _CALL.set(call)
        try:
            super().after_tool_call(event)
        finally:
            _CALL.reset(token)

        if call.sent_hold is not None:
            self._after_authorized(event, call.sent_hold)
            return
        hold = call.signed_hold
        if hold is None:
            return
        if not event.retry:
            # Signed, but the SDK did not apply the header: never sent.
            self._release(hold, "NOT_SENT")
            return
        refused = self._mark_sent(hold)
        if refused is not None:
            self._unsend(event, hold, refused)
            return
        with self._lock:
            self._awaiting_settlement[tool_use_id] = hold.payment_id
        logger.info("predebit hold %s SENT", hold.payment_id)

    def _after_authorized(self, event: AfterToolCallEvent, hold: Hold) -> None:
        """Enforcing mode, after the SDK had the header: await the paid retry's settlement."""
        if not event.retry:
            # authorize has marked the hold SENT, so it cannot be released; the header never left
            # this process, and expire voids the hold (returning its budget) after validBefore.
            logger.warning(
                "predebit hold %s stays SENT although the SDK did not send its header; expire will void it",
                hold.payment_id,
            )
            return
        with self._lock:
            self._awaiting_settlement[hold.tool_use_id] = hold.payment_id
        logger.info("predebit hold %s SENT (authorize)", hold.payment_id)

    def _store_payment_failure_state(self, event: AfterToolCallEvent, exception: Exception) -> None:
        super()._store_payment_failure_state(event, exception)
        if isinstance(exception, PredebitDeclined):
            key = f"payment_failure_{event.tool_use.get('toolUseId', 'unknown')}"
            event.invocation_state[key].update(exception.as_dict())

    # ---- the tool ---------------------------------------------------------------------------

    # Replaces the SDK's http_request (Strands registers a subclass's @tool in place of its parent's
    # of the same name; provide_http_request=False still drops it). The SDK's follows every redirect
    # with httpx, which forwards the payment header to whatever origin it is sent to, and does not
    # say which URL answered: a 402 from an open redirect's target would be judged, and paid, as the
    # allow-listed URL. This one never leaves the requested origin and names the URL that answered
    # (see http_tool), so the payment stays on the origin predebit judged, on the first request and
    # on the paid retry alike. after_tool_call also refuses any tool's 402 that came, or may have
    # come, from another origin (judged_url), whatever tool produced it. (mypy: strands types a
    # method tool with its class as the first parameter, so any override differs in that one.)
    @tool
    def http_request(  # type: ignore[override]
        self,
        url: str,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | str | None = None,
    ) -> dict[str, Any]:
        """Call an HTTP endpoint. 402 Payment Required responses are settled automatically, after predebit's check.

        When the endpoint responds with HTTP 402, the payments plugin verifies the payment with predebit,
        signs it, adds the payment header to ``headers`` and re-invokes this tool, yielding the final
        response and (when the merchant settles) its PAYMENT-RESPONSE header.

        Redirects are followed only within the origin (scheme, host, port) of ``url``. A redirect to
        another origin is returned as is (status 3xx, with its ``location`` header) and nothing is paid
        for it; request that URL yourself if you mean to.

        Returns a Strands ToolResult dict: ``status`` is ``success`` for any HTTP answer (HTTP errors are in
        the text, not raised), and ``content`` is one text block holding JSON with ``statusCode``,
        ``headers``, ``body`` and ``url`` (the URL that answered). On 402 the text is prefixed with
        ``PAYMENT_REQUIRED:``.

        Args:
            url: The full URL to request.
            method: HTTP method. Defaults to ``GET``.
            headers: Optional request headers. The plugin adds the payment header here on retry.
            body: Optional request body. ``dict`` is sent as JSON; ``str`` as is. Ignored for ``GET``/``HEAD``.
        """
        return http_tool.http_request(url, method, headers, body)

    # ---- enforcing mode: authorize signs ----------------------------------------------------

    def _authorized_header(
        self,
        payment_instrument_id: str,
        payment_session_id: str,
        payment_required_request: dict[str, Any],
        user_id: str | None = None,
        network_preferences: list[str] | None = None,
        client_token: str | None = None,
        **_ignored: Any,
    ) -> dict[str, str]:
        """generate_payment_header in enforcing mode: one authorize call, its header checked.

        ``network_preferences`` and the SDK's other selection inputs are ignored: authorize chooses
        among the 402's entries itself. The SDK's uuid ``client_token`` is ignored too: authorize
        computes the paymentId (the clientToken AgentCore sees) from the entry it selects.
        """
        call = _CALL.get()
        _refuse_unjudged(call)  # before authorize: the 402 may not be from the URL the host rules judge
        try:
            mpp_offered = bool(is_mpp_payment_required(payment_required_request))
        except Exception:  # a merchant's malformed challenge is no MPP offer
            mpp_offered = False
        offer = read_offer(payment_required_request, mpp_offered)
        tool_use_id = call.tool_use_id if call else (client_token or "direct")
        attempt = call.attempt() if call else 1
        event = authorize_event(
            offer,
            request_url=call.request_url if call else None,
            user_id=user_id or self.config.user_id or "",
            agent_id=self.predebit_config.agent_id,
            payment_session_id=payment_session_id,
            payment_instrument_id=payment_instrument_id,
            tool_name=call.tool_name if call else "direct",
            tool_use_id=tool_use_id,
            attempt=attempt,
        )
        answer = self._authorize(event, tool_use_id)
        try:
            authorized = read_answer(
                answer,
                offer,
                payment_session_id=payment_session_id,
                tool_use_id=tool_use_id,
                attempt=attempt,
                now=int(time.time()),
                slack_seconds=self.predebit_config.valid_before_slack_seconds,
                permit2_proxies=tuple(self.predebit_config.permit2_proxies),
            )
        except PredebitDeclined as e:
            logger.info("predebit NO %s from authorize for toolUseId %s", e.reason_code, tool_use_id)
            raise
        hold = self._authorized_hold(authorized, payment_session_id, tool_use_id)
        with self._lock:
            self.holds[hold.payment_id] = hold
        if call is not None:
            call.sent_hold = hold
        logger.info("predebit YES from authorize: hold %s SENT", hold.payment_id)
        return dict(authorized.header)

    def _authorize(self, event: dict[str, Any], tool_use_id: str) -> dict[str, Any]:
        """authorize, with the same event re-sent while its answer says that is safe and may help.

        The same event is the same paymentId: a re-send meets the first call's hold and
        AgentCore's stored signature for that clientToken, so it never signs twice.
        """
        attempts = max(1, self.predebit_config.authorize_attempts)
        delay = self.predebit_config.backoff_base_seconds
        for n in range(1, attempts + 1):
            try:
                answer = self.predebit.authorize(event)
            except PredebitUnavailable as e:
                if n == attempts:
                    logger.error("predebit authorize unreachable for toolUseId %s: %s", tool_use_id, e)
                    raise PredebitDeclined(VERIFIER_UNAVAILABLE) from e
                logger.warning("predebit authorize unreachable (try %d/%d): %s", n, attempts, e)
            else:
                code = answer.get("reasonCode")
                retryable = isinstance(code, str) and code in RETRYABLE_AUTHORIZE_CODES
                if answer.get("decision") == "YES" or not retryable or n == attempts:
                    return answer
                logger.warning(
                    "predebit authorize answered %s (try %d/%d); sending the same request again", code, n, attempts
                )
            self.predebit_config.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable: the last try returns or raises")

    @staticmethod
    def _authorized_hold(authorized: Authorized, payment_session_id: str, tool_use_id: str) -> Hold:
        """The plugin's record of the SENT hold authorize took, for the commit after the paid retry."""
        entry = authorized.entry
        return Hold(
            payment_id=authorized.payment_id,
            payment_session_id=payment_session_id,
            tool_use_id=tool_use_id,
            amount_micros=authorized.amount_micros,
            pay_to=authorized.terms.to,
            amount_atomic=authorized.terms.value,
            network=authorized.claims.network or str(entry.get("network")),
            asset=authorized.terms.asset or authorized.claims.asset,
            verification_id=authorized.verification_id,
            hold_token=authorized.hold_token,
        )

    # ---- the guarded signature ------------------------------------------------------------

    def _guarded_process_payment(
        self,
        original: Callable[..., dict[str, Any]],
        payment_session_id: str,
        payment_instrument_id: str,
        payment_type: str,
        payment_input: dict[str, Any],
        user_id: str | None = None,
        client_token: str | None = None,
        payment_connector_id: str | None = None,
    ) -> dict[str, Any]:
        call = _CALL.get()
        _refuse_unjudged(call)
        x402 = payment_input.get("cryptoX402") if isinstance(payment_input, dict) else None
        if payment_type != "CRYPTO_X402" or not isinstance(x402, dict):
            raise PredebitDeclined(
                PAYMENT_TYPE_NOT_SUPPORTED,
                f"predebit does not support {payment_type} payments yet; nothing was signed.",
            )
        requirement = x402.get("payload")
        if not isinstance(requirement, dict):
            raise PredebitDeclined("REQUIREMENT_INVALID", "The selected payment requirement is not an object.")
        if str(requirement.get("network", "")).lower().startswith("solana"):
            raise PredebitDeclined(
                NETWORK_NOT_ALLOWED,
                "predebit cannot yet check a signed Solana payment, so the plugin declines Solana payments; "
                "nothing was signed.",
            )
        tool_use_id = call.tool_use_id if call else (client_token or "direct")
        tool_name = call.tool_name if call else "direct"
        attempt = call.attempt() if call else 1
        pid = payment_id(payment_session_id, tool_use_id, requirement, attempt)
        try:
            x402_version = int(x402.get("version", 0))
        except (TypeError, ValueError):
            x402_version = 0

        event: dict[str, Any] = {
            "version": "1",
            "paymentId": pid,
            "paymentType": payment_type,
            "x402Version": x402_version,
            "requirement": requirement,
            "userId": user_id or self.config.user_id,
            "paymentSessionId": payment_session_id,
            "paymentInstrumentId": payment_instrument_id,
            "agentId": self.predebit_config.agent_id,
            "toolName": tool_name,
            "toolUseId": tool_use_id,
        }
        if x402_version == 2 and call is not None and call.resource:
            event["resource"] = call.resource
        if call is not None and call.request_url:
            event["requestUrl"] = call.request_url
        try:
            decision = self.predebit.verify(event)
        except PredebitUnavailable as e:
            logger.error("predebit verify unreachable for paymentId %s: %s", pid, e)
            raise PredebitDeclined(VERIFIER_UNAVAILABLE) from e
        verification_id = decision.get("verificationId")
        if decision.get("decision") != "YES" or not decision.get("decisionToken"):
            logger.info("predebit NO %s for paymentId %s", decision.get("reasonCode"), pid)
            raise PredebitDeclined(
                decision.get("reasonCode") or VERIFIER_UNAVAILABLE, decision.get("message"), verification_id
            )

        try:
            reserved = self.predebit.ledger(
                {
                    "version": "1",
                    "op": "reserve",
                    "decisionToken": decision["decisionToken"],
                    "paymentId": pid,
                    "paymentSessionId": payment_session_id,
                },
                attempts=3,  # the decision token lives 60 s
            )
        except PredebitUnavailable as e:
            raise PredebitDeclined(VERIFIER_UNAVAILABLE, verification_id=verification_id) from e
        if not reserved.get("ok"):
            raise PredebitDeclined(
                reserved.get("reasonCode") or VERIFIER_UNAVAILABLE, reserved.get("message"), verification_id
            )
        held = reserved.get("hold") or {}
        hold_token = reserved.get("holdToken")
        if not isinstance(hold_token, str) or not hold_token:
            # markSent, commit and release need it: without it nothing signed could be recorded.
            # (The PENDING hold cannot be released without it either; its window voids it.)
            logger.error("predebit reserve of %s returned no holdToken; not signing", pid)
            raise PredebitDeclined(
                VERIFIER_UNAVAILABLE, "The ledger's reserve returned no holdToken; nothing was signed.", verification_id
            )
        state = held.get("state")
        if state not in ("PENDING", "SENT"):
            # A replayed reserve of an attempt that already ended: never sign it again.
            code = "HOLD_ALREADY_POSTED" if state == "POSTED" else "HOLD_ALREADY_VOIDED"
            raise PredebitDeclined(code, None, verification_id)
        hold = Hold(
            payment_id=pid,
            payment_session_id=payment_session_id,
            tool_use_id=tool_use_id,
            amount_micros=held.get("amountMicros"),
            pay_to=held["payTo"],
            amount_atomic=held["amountAtomic"],
            network=held["network"],
            asset=held.get("asset"),
            verification_id=verification_id,
            hold_token=hold_token,
        )
        with self._lock:
            self.holds[pid] = hold
        logger.info("predebit hold %s PENDING", pid)

        try:
            result = original(
                payment_session_id=payment_session_id,
                payment_instrument_id=payment_instrument_id,
                payment_type=payment_type,
                payment_input=payment_input,
                user_id=user_id,
                client_token=pid,
                payment_connector_id=payment_connector_id,
            )
        except Exception as e:
            self._release(hold, "SIGNING_FAILED")
            if isinstance(e, PaymentError):
                raise
            raise PaymentError(f"ProcessPayment failed ({type(e).__name__}); the predebit hold was released") from e

        approved = Approved(
            pay_to=hold.pay_to,
            amount_atomic=hold.amount_atomic,
            network=hold.network,
            asset=hold.asset,
            max_timeout_seconds=int(requirement.get("maxTimeoutSeconds") or 0),
        )
        try:
            signed_payload = result["paymentOutput"]["cryptoX402"]["payload"]
            terms = decode_evm_payload(signed_payload)
            check_against_approved(
                terms,
                approved,
                now=int(time.time()),
                slack_seconds=self.predebit_config.valid_before_slack_seconds,
                permit2_proxies=tuple(self.predebit_config.permit2_proxies),
            )
            # In the SDK's shape the scheme payload names no network or token (the header does,
            # checked in _after_header); should ProcessPayment ever name them here, they must match.
            claims = payment_claims(signed_payload, "payload")
            check_claims(claims, approved, "payload")
        except (SignedPayloadError, KeyError, TypeError, ValueError) as e:
            self._release(hold, "SIGNED_PAYLOAD_MISMATCH")
            raise _mismatch(e, verification_id) from e

        signing = _SIGNING.get()
        if signing is not None:
            # Inside generate_payment_header: the header it builds is checked before markSent.
            signing.signed = _Signed(hold, terms, signed_payload, approved, x402_version)
            return result
        # Called directly, outside generate_payment_header: the caller builds and sends the header
        # itself, so markSent now. The network is the one ProcessPayment was asked to sign for
        # (an EIP-3009 payload names none); the ledger maps a v1 name to its CAIP-2 id.
        hold.signed = mark_sent_terms(terms, claims.network or str(requirement.get("network")), claims.asset)
        refused = self._mark_sent(hold)
        if refused is not None:
            self._release(hold, "NOT_SENT")
            raise refused
        return result

    def _after_header(self, signed: _Signed, header: dict[str, str], call: _ToolCall | None) -> None:
        """Checks the header the SDK built from the signature; then markSent (now, or once applied)."""
        hold = signed.hold
        try:
            claims = _check_header(header, signed)
        except SignedPayloadError as e:
            self._release(hold, "SIGNED_PAYLOAD_MISMATCH")
            raise _mismatch(e, hold.verification_id) from e
        assert claims.network is not None  # _check_header refuses a header that names none
        hold.signed = mark_sent_terms(signed.terms, claims.network, claims.asset)
        if call is not None:
            call.signed_hold = hold  # markSent once the SDK has applied the header
            return
        # generate_payment_header called directly: the caller sends what it gets back.
        refused = self._mark_sent(hold)
        if refused is not None:
            self._release(hold, "NOT_SENT")
            raise refused

    def _mark_sent(self, hold: Hold) -> PredebitDeclined | None:
        """PENDING -> SENT with the signed terms; the decline to raise if the ledger refuses or is unreachable."""
        try:
            marked = self.predebit.ledger({**hold.ledger_event("markSent"), "signed": hold.signed})
        except PredebitUnavailable:
            return PredebitDeclined(VERIFIER_UNAVAILABLE, verification_id=hold.verification_id)
        if not marked.get("ok"):
            code = marked.get("reasonCode") or SIGNED_PAYLOAD_MISMATCH
            return PredebitDeclined(code, marked.get("message"), hold.verification_id)
        return None

    # ---- after signing ----------------------------------------------------------------------

    def _release(self, hold: Hold, reason: str) -> None:
        """PENDING -> VOIDED for a payment never sent (retried; a final failure is logged and counted)."""
        event = {**hold.ledger_event("release"), "reason": reason}
        if hold.amount_micros is not None:
            event["amountMicros"] = hold.amount_micros
        try:
            released = self.predebit.ledger(event)
        except PredebitUnavailable:
            return  # logged and counted by the client; the PENDING window voids it
        if released.get("ok"):
            logger.info("predebit hold %s VOIDED (%s)", hold.payment_id, reason)
        else:
            logger.error("predebit release of %s refused: %s", hold.payment_id, released.get("reasonCode"))
        with self._lock:
            self.holds.pop(hold.payment_id, None)

    def _unsend(self, event: AfterToolCallEvent, hold: Hold, decline: PredebitDeclined) -> None:
        """markSent failed: take the header back before the retry, release, and report the decline."""
        tool_input = event.tool_use.get("input")
        for container in (tool_input, (tool_input or {}).get("parameters") if isinstance(tool_input, dict) else None):
            headers = container.get("headers") if isinstance(container, dict) else None
            if isinstance(headers, dict):
                for name in PAYMENT_HEADER_NAMES:
                    headers.pop(name, None)
        event.retry = False
        event.invocation_state.pop(f"payment_signed_{hold.tool_use_id}", None)
        self._release(hold, "NOT_SENT")
        self._store_payment_failure_state(event, decline)

    def _settle(self, sent_id: str, event: AfterToolCallEvent) -> None:
        """commit with the merchant's settlement header; no header leaves the hold SENT (in doubt)."""
        with self._lock:
            hold = self.holds.get(sent_id)
        if hold is None:
            return
        settlement = find_settlement(event.result, event.tool_use.get("name", ""), event.tool_use.get("input"))
        if settlement is None:
            # The merchant may still have settled: the tool did not pass its settlement on (see the README
            # on which tools do). The ledger's expire will void the hold and return its budget (ExpiredSent).
            logger.warning(
                "predebit hold %s stays SENT: the paid retry's result reports no settlement; "
                "expire will return its budget even if the merchant settled",
                sent_id,
            )
            return
        commit = {**hold.ledger_event("commit"), "settlement": settlement}
        if hold.amount_micros is not None:
            commit["amountMicros"] = hold.amount_micros
        try:
            committed = self.predebit.ledger(commit)
        except PredebitUnavailable:
            return  # logged and counted by the client
        state = (committed.get("hold") or {}).get("state")
        if committed.get("ok") and state == "POSTED":
            logger.info("predebit hold %s POSTED", sent_id)
            with self._lock:
                self.holds.pop(sent_id, None)
        else:
            # A failed settlement: the signed authorization may still settle until validBefore.
            logger.warning(
                "predebit hold %s stays %s after the settlement report (%s)",
                sent_id,
                state,
                committed.get("reasonCode"),
            )
