"""Redirects: the payment stays on the origin predebit judged.

From a security review's reproduction: the SDK's own http_request follows redirects with httpx,
which forwards X-PAYMENT / PAYMENT-SIGNATURE to any origin and says nothing of where the answer
came from, so an open redirect on an allow-listed host let another origin's 402 be judged, and
paid, as the allow-listed URL. These tests run the tools for real against loopback HTTP servers
and the plugin against the real verify and ledger functions. "localhost" is the allow-listed host
(agent-redirects' policy allows only it) and "127.0.0.1" the other one: different hosts to
predebit's host rules, and each site is its own server on its own port.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from bedrock_agentcore.payments.integrations.strands import AgentCorePaymentsPlugin

from predebit_agentcore import payment_id
from predebit_agentcore.http_tool import MAX_SAME_ORIGIN_REDIRECTS, http_request, same_origin
from predebit_agentcore.plugin import (
    REDIRECT_UNREPORTED,
    REDIRECTED_ELSEWHERE,
    URL_UNREPORTED,
    answered_url_of,
    judged_url,
)

from .conftest import (
    Harness,
    eip3009_payload,
    endpoint,
    make_harness,
    predebit_cli,
    requirement_v1,
    settlement_header,
)

AGENT = "agent-redirects"
TOOL_USE_ID = "tooluse-redirect-1"
PAYMENT_HEADERS = ("x-payment", "payment-signature")
PLUGIN_LOGGER = "predebit_agentcore.plugin"

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Request:
    host: str | None
    path: str
    paid: bool  # carried a payment header


@dataclass
class Site:
    """A loopback HTTP server answering every GET with ``respond(path, paid)`` and recording it."""

    respond: Callable[[str, bool], Answer]
    seen: list[Request] = field(default_factory=list)

    def start(self, host: str) -> Site:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paid = any(self.headers.get(name) for name in PAYMENT_HEADERS)
                site.seen.append(Request(self.headers.get("Host"), self.path, paid))
                status, headers, body = site.respond(self.path, paid)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def sites() -> Iterator[Callable[[str, Callable[[str, bool], Answer]], Site]]:
    started: list[Site] = []

    def start(host: str, respond: Callable[[str, bool], Answer]) -> Site:
        started.append(Site(respond).start(host))
        return started[-1]

    yield start
    for site in started:
        site.stop()


def paywall(resource: Callable[[], str]) -> Callable[[str, bool], Answer]:
    """A merchant: 402 for 1.00 USDC declaring ``resource()``, then 200 with a settlement once paid."""

    def respond(path: str, paid: bool) -> Answer:
        if paid:
            return 200, {"Content-Type": "application/json", "PAYMENT-RESPONSE": settlement_header()}, b'{"ok":1}'
        body = {"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [requirement_v1_for(resource())]}
        return 402, {"Content-Type": "application/json"}, json.dumps(body).encode()

    return respond


def requirement_v1_for(resource: str) -> dict[str, Any]:
    return {**requirement_v1(), "resource": resource}


def redirect(location: Callable[[], str], status: int = 302) -> Callable[[str, bool], Answer]:
    return lambda path, paid: (status, {"Location": location()}, b"")


@pytest.fixture(scope="module")
def redirect_agent() -> str:
    """agent-redirects, for user-alice with consent, whose policy allows only the host "localhost"."""
    endpoint()  # fail early outside scripts/plugin_test.sh
    predebit_cli("agent", "register", "--agent-id", AGENT, "--user-id", "user-alice")
    predebit_cli("consent", "grant", "--user-id", "user-alice", "--agent-id", AGENT)
    predebit_cli(
        "policy", "put", "--scope", "agent", "--agent-id", AGENT, "-", stdin=json.dumps({"allowedHosts": ["localhost"]})
    )
    return AGENT


@pytest.fixture
def h(redirect_agent: str) -> Iterator[Harness]:
    harness = make_harness(endpoint(), agent_id=redirect_agent)
    yield harness
    harness.stubber.deactivate()


@dataclass
class Watch:
    verified: list[dict[str, Any]]  # every verify event the plugin sent
    signed: list[int]  # one entry per ProcessPayment call reaching AgentCore's client


def watch(h: Harness) -> Watch:
    w = Watch([], [])
    real_verify = h.plugin.predebit.verify

    def verify(event: dict[str, Any]) -> dict[str, Any]:
        w.verified.append(event)
        return real_verify(event)

    h.plugin.predebit.verify = verify  # type: ignore[method-assign]
    assert h.plugin.payment_manager is not None
    h.plugin.payment_manager._payment_client.meta.events.register(
        "before-parameter-build.bedrock-agentcore.ProcessPayment", lambda **_: w.signed.append(1)
    )
    return w


def expect_signature(h: Harness, resource: str) -> str:
    """Stubs AgentCore for one payment of the 1.00 requirement declaring ``resource``; its paymentId."""
    req = requirement_v1_for(resource)
    pid = payment_id(h.session_id, TOOL_USE_ID, req, 1)
    h.stub_instrument()
    h.stub_signature(req, pid, eip3009_payload())
    return pid


def run(h: Harness, tool: Callable[..., Any], use: dict[str, Any], state: dict[str, Any]) -> list[dict[str, Any]]:
    """The agent loop for one tool call: run the tool, the after-tool hooks, and again while they ask."""
    payloads = []
    for _ in range(3):
        result = tool(**use["input"])
        text = result["content"][0]["text"]
        payloads.append(json.loads(text.removeprefix("PAYMENT_REQUIRED:")))
        if not h.after_tool_call(use, state, result).retry:
            break
    return payloads


def tool_call(url: str, name: str = "http_request") -> dict[str, Any]:
    return {"toolUseId": TOOL_USE_ID, "name": name, "input": {"url": url, "method": "GET", "headers": {}}}


def sdk_http_request(h: Harness) -> Callable[..., Any]:
    """The SDK's own http_request tool (which PredebitPaymentsPlugin replaces), bound to the plugin."""
    return AgentCorePaymentsPlugin.__dict__["http_request"].__get__(h.plugin, AgentCorePaymentsPlugin)


def assert_nothing_paid(h: Harness, w: Watch, *sites: Site) -> None:
    assert w.signed == []
    assert h.hold_tokens == {}  # no reserve
    assert h.plugin.holds == {}
    session = h.session()
    assert (session["reserved"], session["settled"]) == ("0.00", "0.00")  # no hold PENDING, SENT or POSTED
    for site in sites:
        assert [r for r in site.seen if r.paid] == []


def assert_declined_before_verify(h: Harness, w: Watch, state: dict[str, Any], message: str) -> None:
    failure = state[f"payment_failure_{TOOL_USE_ID}"]
    assert (failure["exceptionType"], failure["reasonCode"]) == ("PredebitDeclined", "RESOURCE_MISMATCH")
    assert failure["predebitMessage"] == message
    assert "localhost" not in failure["exceptionMessage"] and "127.0.0.1" not in failure["exceptionMessage"]
    assert w.verified == []


# ---- against the real functions ------------------------------------------------------------


def test_a_redirect_to_another_origin_is_returned_to_the_agent_and_never_paid(h: Harness, sites):
    # GIVEN an allow-listed URL that redirects to another origin, which answers 402 declaring the allowed URL
    other = sites("127.0.0.1", paywall(lambda: allowed.origin + "/premium"))
    allowed = sites("localhost", redirect(lambda: other.origin + "/pay"))
    w = watch(h)
    pid_if_paid = expect_signature(h, allowed.origin + "/premium")
    use, state = tool_call(allowed.origin + "/premium"), {}
    # WHEN the agent calls the plugin's http_request
    payloads = run(h, h.plugin.http_request, use, state)
    # THEN the agent gets the redirect itself, not followed: the other origin was never contacted
    assert len(payloads) == 1
    assert payloads[0]["statusCode"] == 302
    assert payloads[0]["headers"]["location"] == other.origin + "/pay"
    assert payloads[0]["url"] == allowed.origin + "/premium"
    assert "redirectNotFollowed" in payloads[0]
    assert other.seen == []
    # ... and nothing was verified, signed or held
    assert w.verified == []
    assert f"payment_failure_{TOOL_USE_ID}" not in state
    assert_nothing_paid(h, w, allowed, other)
    assert pid_if_paid not in h.hold_tokens


def test_the_sdks_http_request_following_a_redirect_to_another_origin_is_declined_before_verify(h: Harness, sites):
    # GIVEN the same open redirect, met by the SDK's own tool, which follows it and names no URL
    other = sites("127.0.0.1", paywall(lambda: allowed.origin + "/premium"))
    allowed = sites("localhost", redirect(lambda: other.origin + "/pay"))
    w = watch(h)
    expect_signature(h, allowed.origin + "/premium")  # what an unguarded plugin would sign
    use, state = tool_call(allowed.origin + "/premium"), {}
    # WHEN the 402 from the other origin reaches the plugin
    payloads = run(h, sdk_http_request(h), use, state)
    # THEN the plugin cannot tell where the 402 came from, and declines before verify
    assert [p["statusCode"] for p in payloads] == [402]
    assert [r.path for r in other.seen] == ["/pay"]
    assert_declined_before_verify(h, w, state, URL_UNREPORTED)
    assert_nothing_paid(h, w, allowed, other)
    assert "X-PAYMENT" not in use["input"]["headers"]


def test_a_tool_that_names_another_origin_as_the_one_that_answered_is_declined_before_verify(h: Harness, sites):
    # GIVEN a custom tool that follows redirects (httpx's default handling) and names the URL that answered
    other = sites("127.0.0.1", paywall(lambda: allowed.origin + "/premium"))
    allowed = sites("localhost", redirect(lambda: other.origin + "/pay"))

    def fetch_paid(url: str, method: str, headers: dict[str, str]) -> dict[str, Any]:
        with httpx.Client(timeout=5.0, follow_redirects=True) as client:
            resp = client.request(method, url, headers=headers)
        payload = {"statusCode": resp.status_code, "headers": dict(resp.headers), "body": resp.json()}
        payload["url"] = str(resp.url)
        marker = "PAYMENT_REQUIRED: " if resp.status_code == 402 else ""
        return {"status": "success", "content": [{"text": marker + json.dumps(payload)}]}

    w = watch(h)
    expect_signature(h, allowed.origin + "/premium")
    use, state = tool_call(allowed.origin + "/premium", name="fetch_paid"), {}
    # WHEN its 402 reaches the plugin
    payloads = run(h, fetch_paid, use, state)
    # THEN the 402 came from another origin than the one requested: RESOURCE_MISMATCH, before verify
    assert payloads[0]["url"] == other.origin + "/pay"
    assert_declined_before_verify(h, w, state, REDIRECTED_ELSEWHERE)
    assert_nothing_paid(h, w, allowed, other)


def test_a_same_origin_redirect_is_followed_and_paid_as_the_url_that_answered(h: Harness, sites):
    # GIVEN an allow-listed URL that redirects (307) within its origin to the merchant's paywall
    wall = paywall(lambda: allowed.origin + "/premium")
    allowed = sites(
        "localhost", lambda path, paid: (307, {"Location": "/premium"}, b"") if path == "/old" else wall(path, paid)
    )
    w = watch(h)
    pid = expect_signature(h, allowed.origin + "/premium")
    use, state = tool_call(allowed.origin + "/old"), {}
    # WHEN the agent calls the plugin's http_request and the plugin pays
    payloads = run(h, h.plugin.http_request, use, state)
    # THEN verify judged the URL that answered, the payment was signed once, sent, settled and committed
    assert [p["statusCode"] for p in payloads] == [402, 200]
    assert [p["url"] for p in payloads] == [allowed.origin + "/premium"] * 2
    assert [e["requestUrl"] for e in w.verified] == [allowed.origin + "/premium"]
    assert w.signed == [1]
    h.stubber.assert_no_pending_responses()
    assert h.hold(pid)["state"] == "POSTED"
    assert h.session()["settled"] == "1.00"
    # ... and the header went to that origin only, on the paid retry and its redirect
    assert [(r.path, r.paid) for r in allowed.seen] == [
        ("/old", False),
        ("/premium", False),
        ("/old", True),
        ("/premium", True),
    ]
    assert {r.host for r in allowed.seen} == {allowed.origin.removeprefix("http://")}


def test_a_paid_retry_redirected_to_another_origin_keeps_the_header_and_the_hold_stays_sent(
    h: Harness, sites, caplog: pytest.LogCaptureFixture
):
    # GIVEN a merchant that answers 402 itself, then redirects the paid retry to another origin
    other = sites("127.0.0.1", lambda path, paid: (200, {"PAYMENT-RESPONSE": settlement_header()}, b"{}"))
    wall = paywall(lambda: allowed.origin + "/premium")
    allowed = sites(
        "localhost",
        lambda path, paid: (302, {"Location": other.origin + "/collect"}, b"") if paid else wall(path, paid),
    )
    w = watch(h)
    pid = expect_signature(h, allowed.origin + "/premium")
    use, state = tool_call(allowed.origin + "/premium"), {}
    # WHEN the plugin pays and the tool retries with the header
    with caplog.at_level(logging.WARNING, logger=PLUGIN_LOGGER):
        payloads = run(h, h.plugin.http_request, use, state)
    # THEN the redirect is not followed: the other origin never saw the header (nor any request)
    assert [p["statusCode"] for p in payloads] == [402, 302]
    assert w.signed == [1]
    assert other.seen == []
    assert [(r.path, r.paid) for r in allowed.seen] == [("/premium", False), ("/premium", True)]
    # ... no settlement was reported, so the hold stays SENT (in doubt), with one warning naming it
    assert h.hold(pid)["state"] == "SENT"
    warnings = [r.getMessage() for r in caplog.records if r.name == PLUGIN_LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and pid in warnings[0] and "reports no settlement" in warnings[0]
    assert use["input"]["headers"]["X-PAYMENT"] not in caplog.text


def test_the_other_origin_judged_as_itself_is_not_allowed(h: Harness, sites):
    # GIVEN the other origin's paywall requested directly (declaring its own URL)
    other = sites("127.0.0.1", paywall(lambda: other.origin + "/pay"))
    w = watch(h)
    h.stub_instrument()
    use, state = tool_call(other.origin + "/pay"), {}
    # WHEN its 402 is handled
    run(h, h.plugin.http_request, use, state)
    # THEN the allow-list declines it: what the redirect would have bypassed
    assert [e["requestUrl"] for e in w.verified] == [other.origin + "/pay"]
    assert state[f"payment_failure_{TOOL_USE_ID}"]["reasonCode"] == "MERCHANT_NOT_ALLOWED"
    assert_nothing_paid(h, w, other)


def strands_tools_402(resource: str, redirects: bool) -> dict[str, Any]:
    """A 402 in strands-agents-tools' http_request text format (no URL; a Redirects line when it followed any)."""
    body = {"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [requirement_v1_for(resource)]}
    lines = ["Status Code: 402"]
    if redirects:
        lines.append("Redirects: 1 redirects followed (302 -> 402)")
    lines += ["Headers: {'Content-Type': 'application/json'}", f"Body: {json.dumps(body)}"]
    return {"status": "success", "content": [{"text": line} for line in lines]}


@pytest.mark.parametrize("listed", [False, True])
def test_a_tool_that_says_it_followed_a_redirect_without_the_url_is_declined(h: Harness, listed: bool):
    # GIVEN strands-agents-tools' format reporting a redirect, the tool listed redirect-free or not
    if listed:
        h.plugin.predebit_config.redirect_free_tools = ("http_request",)
    w = watch(h)
    use, state = tool_call("http://localhost:8080/premium"), {}
    # WHEN its 402 is handled
    h.after_tool_call(use, state, strands_tools_402("http://localhost:8080/premium", redirects=True))
    # THEN declined before verify: the 402's origin is unknown
    assert_declined_before_verify(h, w, state, REDIRECT_UNREPORTED)
    assert_nothing_paid(h, w)


def test_a_tool_naming_no_url_pays_only_when_listed_redirect_free(h: Harness):
    # GIVEN strands-agents-tools' format without a Redirects line (it names no URL)
    url = "http://localhost:8080/premium"
    w = watch(h)
    use, state = tool_call(url), {}
    # WHEN the tool is not listed THEN declined before verify
    h.after_tool_call(use, state, strands_tools_402(url, redirects=False))
    assert_declined_before_verify(h, w, state, URL_UNREPORTED)
    assert_nothing_paid(h, w)
    # WHEN the operator lists it as redirect-free THEN its url input is judged, and it pays
    h.plugin.predebit_config.redirect_free_tools = ("http_request",)
    pid = expect_signature(h, url)
    use, state = tool_call(url), {}
    assert h.after_tool_call(use, state, strands_tools_402(url, redirects=False)).retry is True
    assert [e["requestUrl"] for e in w.verified] == [url]
    assert h.hold(pid)["state"] == "SENT"


# ---- units ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://api.example/v1", "https://api.example/v2?q=1", True),
        ("https://API.Example:443/v1", "https://api.example/v1", True),
        ("http://api.example/", "http://api.example:80/x", True),
        ("http://api.example/", "https://api.example/", False),  # an https upgrade is another origin
        ("https://api.example/", "https://api.example:8443/", False),
        ("https://api.example/", "https://pay.api.example/", False),
        ("http://localhost:1/", "http://127.0.0.1:1/", False),
    ],
)
def test_same_origin(a: str, b: str, same: bool):
    assert same_origin(a, b) is same


def test_the_tool_follows_at_most_ten_same_origin_redirects(sites):
    # GIVEN a site that redirects to itself forever
    loop = sites("localhost", lambda path, paid: (302, {"Location": "/again"}, b""))
    # WHEN the plugin's tool requests it THEN it stops after the limit and returns the last redirect
    result = http_request(loop.origin + "/start")
    payload = json.loads(result["content"][0]["text"])
    assert payload["statusCode"] == 302
    assert len(loop.seen) == MAX_SAME_ORIGIN_REDIRECTS + 1
    assert "redirectNotFollowed" in payload


def block(text: str) -> dict[str, Any]:
    return {"status": "success", "content": [{"text": text}]}


def test_answered_url_is_read_from_the_payment_required_block_only():
    url = "https://api.example/v1"
    pr = "PAYMENT_REQUIRED: " + json.dumps({"statusCode": 402, "headers": {}, "body": {}, "url": url})
    assert answered_url_of(block(pr)) == (url, False)
    # a merchant's text in another block, or a URL inside the body, is not the tool's statement
    spoof = json.dumps({"statusCode": 402, "url": url})
    assert answered_url_of(block(spoof)) == (None, False)
    nested = "PAYMENT_REQUIRED: " + json.dumps({"statusCode": 402, "headers": {}, "body": {"url": url}})
    assert answered_url_of(block(nested)) == (None, False)
    # only the first PAYMENT_REQUIRED block, the one the SDK reads the 402 from, counts
    two = {"content": [{"text": "PAYMENT_REQUIRED: {}"}, {"text": pr}]}
    assert answered_url_of(two) == (None, False)
    assert answered_url_of({"content": [{"text": "Redirects: 2 redirects followed"}]}) == (None, True)
    assert answered_url_of(None) == (None, False)


def test_judged_url_cases():
    use: Mapping[str, Any] = {"url": "https://api.example/a", "method": "GET"}

    def pr(url: str) -> dict[str, Any]:
        return block("PAYMENT_REQUIRED: " + json.dumps({"statusCode": 402, "url": url}))

    assert judged_url("http_request", use, pr("https://api.example/b")) == ("https://api.example/b", None)
    assert judged_url("http_request", use, pr("https://evil.example/b")) == (
        "https://api.example/a",
        REDIRECTED_ELSEWHERE,
    )
    assert judged_url("http_request", use, pr("http://api.example/b"))[1] == REDIRECTED_ELSEWHERE
    # not redirected: the url input as the agent wrote it, for verify's own checks (a backslash is refused there)
    raw = {"url": "http://api.example\\@b.example/"}
    assert judged_url("http_request", raw, pr(str(httpx.URL(raw["url"])))) == (raw["url"], None)
    assert judged_url("t", use, block("PAYMENT_REQUIRED: {}")) == ("https://api.example/a", URL_UNREPORTED)
    assert judged_url("t", use, block("PAYMENT_REQUIRED: {}"), ("t",)) == ("https://api.example/a", None)
    # no url input (an MCP Gateway call): nothing to judge here, verify's host rules fail closed
    assert judged_url("t", {"toolName": "x", "parameters": {}}, block("PAYMENT_REQUIRED: {}")) == (None, None)
