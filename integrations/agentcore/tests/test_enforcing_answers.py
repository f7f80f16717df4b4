"""Enforcing mode's untrusted inputs, without the functions: the 402 as the merchant sent it
(read_offer) and authorize's answer (read_answer), each refused with a structured decline when it is
not what it must be; and the plugin around them, against a stand-in authorize function."""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
from bedrock_agentcore.payments.integrations.config import AgentCorePaymentsPluginConfig
from botocore.exceptions import EndpointConnectionError
from strands import Agent
from strands.hooks import AfterToolCallEvent
from strands.types.tools import ToolResult, ToolUse

from predebit_agentcore import PredebitConfig, PredebitDeclined, PredebitPaymentsPlugin, payment_id
from predebit_agentcore.enforcing import Offer, read_answer, read_offer
from predebit_agentcore.signed import X402_EXACT_PERMIT2_PROXY

from .conftest import PAYER, SIGNATURE, TOOL_URL, eip3009_payload
from .fake_predebit import HOLD_TOKEN
from .local_agentcore import (
    ALICE_INSTRUMENT,
    BOB_WALLET,
    LOCAL_MANAGER_ARN,
    entry_v1,
    entry_v2,
    payment_required_header,
    result_402_v2,
)

SESSION = "payment-session-unit0000000001"
TOOL_USE = "tooluse-unit-1"
NOW = int(time.time())


def offer_v2(*entries: dict[str, Any]) -> Offer:
    return read_offer({"statusCode": 402, "headers": {"PAYMENT-REQUIRED": payment_required_header(*entries)}})


def offer_v1(*entries: dict[str, Any]) -> Offer:
    return read_offer({"statusCode": 402, "headers": {}, "body": {"x402Version": 1, "accepts": list(entries)}})


def permit2_payload(entry: dict[str, Any], spender: str = X402_EXACT_PERMIT2_PROXY) -> dict[str, Any]:
    return {
        "signature": SIGNATURE,
        "permit2Authorization": {
            "from": PAYER,
            "permitted": {"token": entry["asset"], "amount": entry["amount"]},
            "spender": spender,
            "nonce": "1",
            "deadline": str(NOW + 60),
            "witness": {"to": entry["payTo"], "validAfter": "0"},
        },
    }


def encode(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def yes(
    entry: dict[str, Any], version: int = 2, attempt: int = 1, payload: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The answer authorize gives for this entry (the shape of crates/core/src/authorize/flow.rs)."""
    amount = entry["amount"] if version == 2 else entry["maxAmountRequired"]
    payload = payload or eip3009_payload(to=entry["payTo"], value=amount)
    if version == 1:
        body: dict[str, Any] = {"x402Version": 1, "scheme": entry["scheme"], "network": entry["network"]}
    else:
        body = {"x402Version": 2, "accepted": entry, "resource": {"url": TOOL_URL}}
    body["payload"] = payload
    return {
        "version": "1",
        "decision": "YES",
        "reasonCode": "APPROVED",
        "message": "Approved.",
        "verificationId": "5b7c1f0e-0d1a-4a57-9a8e-3c2f7d6b9e10",
        "auditHash": "ab" * 32,
        "amount": {"atomic": amount, "asset": "USDC", "micros": 10000, "usd": "0.01"},
        "paymentId": payment_id(SESSION, TOOL_USE, entry, attempt),
        "holdToken": HOLD_TOKEN,
        "paymentHeader": {"name": "PAYMENT-SIGNATURE" if version == 2 else "X-PAYMENT", "value": encode(body)},
    }


def read(answer: Any, offer: Offer) -> Any:
    return read_answer(
        answer, offer, payment_session_id=SESSION, tool_use_id=TOOL_USE, attempt=1, now=NOW, slack_seconds=30
    )


def refused(answer: Any, offer: Offer) -> PredebitDeclined:
    with pytest.raises(PredebitDeclined) as declined:
        read(answer, offer)
    return declined.value


# ---- the 402 as the merchant sent it -------------------------------------------------------------


def test_a_v2_header_goes_to_authorize_untouched_even_when_it_is_not_base64():
    # authorize decodes and judges it (an audited NO INVALID_REQUEST), so the plugin forwards it as is
    assert read_offer({"headers": {"payment-required": "%%%"}}) == Offer(2, {"paymentRequired": "%%%"})


def test_a_v1_body_sent_as_json_text_goes_as_its_object():
    body = {"x402Version": 1, "accepts": [entry_v1()]}
    assert read_offer({"headers": {}, "body": json.dumps(body)}) == Offer(1, {"body": body})


def test_a_v2_offer_without_a_header_goes_as_base64_of_its_json():
    # x402's MCP transport carries PaymentRequired as an object in the result, not as a header
    body = {"x402Version": 2, "accepts": [entry_v2()]}
    offer = read_offer({"headers": {}, "body": body})
    assert offer.x402_version == 2
    assert json.loads(base64.b64decode(offer.wire["paymentRequired"])) == body


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        ({"headers": {"PAYMENT-REQUIRED": "a", "payment-required": "b"}}, "REQUIREMENT_INVALID"),
        ({"headers": {"PAYMENT-REQUIRED": ["a"]}}, "REQUIREMENT_INVALID"),
        ({"headers": {}, "body": {"x402Version": "1", "accepts": []}}, "REQUIREMENT_INVALID"),
        ({"headers": {}, "body": {"x402Version": True, "accepts": []}}, "REQUIREMENT_INVALID"),
        ({"headers": {}, "body": {"x402Version": 3, "accepts": []}}, "REQUIREMENT_INVALID"),
        ({"headers": {}, "body": "[1, 2]"}, "REQUIREMENT_INVALID"),
        ({"headers": {}, "body": "{" * 100000}, "REQUIREMENT_INVALID"),
        ("not a request", "REQUIREMENT_INVALID"),
    ],
)
def test_a_402_without_a_readable_x402_offer_is_declined_before_authorize(request_: Any, code: str):
    with pytest.raises(PredebitDeclined) as declined:
        read_offer(request_)
    assert declined.value.reason_code == code


def test_an_mpp_only_402_is_payment_type_not_supported():
    with pytest.raises(PredebitDeclined) as declined:
        read_offer({"headers": {"www-authenticate": 'Payment id="x"'}, "body": {}}, mpp_offered=True)
    assert declined.value.reason_code == "PAYMENT_TYPE_NOT_SUPPORTED"


# ---- authorize's answer ---------------------------------------------------------------------------


def test_a_well_formed_v2_yes_gives_the_header_the_hold_token_and_the_amount():
    entry = entry_v2()
    authorized = read(yes(entry), offer_v2(entry_v2(amount="20000"), entry))
    assert list(authorized.header) == ["PAYMENT-SIGNATURE"]
    assert (authorized.payment_id, authorized.entry) == (payment_id(SESSION, TOOL_USE, entry, 1), entry)
    assert (authorized.hold_token, authorized.amount_micros) == (HOLD_TOKEN, 10000)
    assert HOLD_TOKEN not in repr(authorized)


def test_a_well_formed_v1_yes_gives_an_x_payment_header():
    entry = entry_v1()
    authorized = read(yes(entry, version=1), offer_v1(entry))
    assert list(authorized.header) == ["X-PAYMENT"]
    assert authorized.claims.network == "base-sepolia"


def test_a_well_formed_permit2_yes_passes():
    entry = entry_v2(permit2=True)
    assert read(yes(entry, payload=permit2_payload(entry)), offer_v2(entry)).terms.kind == "permit2"


def patched(answer: dict[str, Any], **fields: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(answer))
    for key, value in fields.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def header_body(answer: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(answer["paymentHeader"]["value"])))


def with_body(answer: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = header_body(answer)
    change(body)
    return patched(answer, paymentHeader={"name": answer["paymentHeader"]["name"], "value": encode(body)})


ENTRY = entry_v2()
GOOD = yes(ENTRY)
GOOD_VALUE = GOOD["paymentHeader"]["value"]


@pytest.mark.parametrize(
    ("what", "answer"),
    [
        ("the v1 header name on a v2 offer", patched(GOOD, paymentHeader={"name": "X-PAYMENT", "value": GOOD_VALUE})),
        ("a lowercase name", patched(GOOD, paymentHeader={"name": "payment-signature", "value": GOOD_VALUE})),
        ("another header", patched(GOOD, paymentHeader={"name": "Authorization", "value": GOOD_VALUE})),
        ("an extra member", patched(GOOD, paymentHeader={"name": "PAYMENT-SIGNATURE", "value": GOOD_VALUE, "x": 1})),
        ("no header", patched(GOOD, paymentHeader=None)),
        (
            "a header injection",
            patched(GOOD, paymentHeader={"name": "PAYMENT-SIGNATURE", "value": GOOD_VALUE + "\r\nX-Evil: 1"}),
        ),
        ("a value that is not text", patched(GOOD, paymentHeader={"name": "PAYMENT-SIGNATURE", "value": 7})),
        ("a huge value", patched(GOOD, paymentHeader={"name": "PAYMENT-SIGNATURE", "value": "A" * 20000})),
        ("base64 of no JSON", patched(GOOD, paymentHeader={"name": "PAYMENT-SIGNATURE", "value": encode("x")[:-2]})),
        ("no holdToken", patched(GOOD, holdToken=None)),
        ("a holdToken of another shape", patched(GOOD, holdToken="v1.k1.a b.c")),
        ("no paymentId", patched(GOOD, paymentId=None)),
        ("a paymentId of another shape", patched(GOOD, paymentId=GOOD["paymentId"].upper())),
        ("no decision", patched(GOOD, decision=None, reasonCode=None)),
    ],
)
def test_a_malformed_yes_is_verifier_unavailable_and_gives_no_header(what: str, answer: dict[str, Any]):
    declined = refused(answer, offer_v2(ENTRY))
    assert declined.reason_code == "VERIFIER_UNAVAILABLE", what
    assert GOOD_VALUE not in str(declined) and HOLD_TOKEN not in str(declined)


@pytest.mark.parametrize(
    ("what", "answer"),
    [
        ("another attempt's paymentId", patched(GOOD, paymentId=payment_id(SESSION, TOOL_USE, ENTRY, 2))),
        ("an entry the 402 never offered", yes(entry_v2(amount="10001"))),
        (
            "a payee other than the entry's",
            with_body(GOOD, lambda b: b["payload"]["authorization"].update(to=BOB_WALLET)),
        ),
        (
            "an amount other than the entry's",
            with_body(GOOD, lambda b: b["payload"]["authorization"].update(value="1")),
        ),
        (
            "an authorization that outlives maxTimeoutSeconds",
            with_body(GOOD, lambda b: b["payload"]["authorization"].update(validBefore=str(NOW + 3600))),
        ),
        (
            "both authorizations",
            with_body(GOOD, lambda b: b["payload"].update(permit2Authorization=permit2_payload(ENTRY))),
        ),
        ("the v1 version in a v2 header", with_body(GOOD, lambda b: b.update(x402Version=1))),
        ("another resource", with_body(GOOD, lambda b: b.update(resource={"url": "https://elsewhere.example/"}))),
        ("no payload", with_body(GOOD, lambda b: b.pop("payload"))),
        (
            "a Permit2 spender that is no configured proxy",
            yes(entry_v2(permit2=True), payload=permit2_payload(entry_v2(permit2=True), spender=BOB_WALLET)),
        ),
    ],
)
def test_a_yes_whose_header_does_not_pay_the_offer_is_signed_payload_mismatch(what: str, answer: dict[str, Any]):
    offer = offer_v2(ENTRY, entry_v2(permit2=True))
    declined = refused(answer, offer)
    assert declined.reason_code == "SIGNED_PAYLOAD_MISMATCH", what
    assert BOB_WALLET not in str(declined) and "10001" not in str(declined)


def test_a_v1_yes_naming_another_network_pays_no_entry():
    entry = entry_v1()
    answer = with_body(yes(entry, version=1), lambda b: b.update(network="base"))
    assert refused(answer, offer_v1(entry)).reason_code == "SIGNED_PAYLOAD_MISMATCH"


def test_a_no_keeps_authorizes_reason_code_and_message():
    answer = {
        "decision": "NO",
        "reasonCode": "MERCHANT_BLOCKED",
        "message": "The payee is blocked.",
        "verificationId": "v-1",
    }
    declined = refused(answer, offer_v2(ENTRY))
    assert (declined.reason_code, declined.message, declined.verification_id) == (
        "MERCHANT_BLOCKED",
        "The payee is blocked.",
        "v-1",
    )


@pytest.mark.parametrize(
    "answer",
    [
        {"decision": "NO", "reasonCode": "<script>"},
        {"decision": "NO", "reasonCode": "APPROVED"},
        {"decision": "NO"},
        {"decision": "MAYBE", "reasonCode": 7},
        ["YES"],
    ],
)
def test_a_no_without_a_reason_code_is_verifier_unavailable(answer: Any):
    assert refused(answer, offer_v2(ENTRY)).reason_code == "VERIFIER_UNAVAILABLE"


def test_a_no_message_with_control_characters_or_a_bad_verification_id_is_not_passed_on():
    answer = {"decision": "NO", "reasonCode": "MERCHANT_BLOCKED", "message": "x\r\ny", "verificationId": "a b"}
    declined = refused(answer, offer_v2(ENTRY))
    assert (declined.message, declined.verification_id) == ("MERCHANT_BLOCKED", None)


# ---- the plugin around them, against a stand-in authorize ---------------------------------------


class FakeAuthorize:
    """``invoke`` like a boto3 Lambda client, answering authorize from ``answers`` in turn."""

    def __init__(self, *answers: Any):
        self.answers = list(answers)
        self.events: list[dict[str, Any]] = []
        self.functions: list[str] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.functions.append(kwargs["FunctionName"])
        self.events.append(json.loads(kwargs["Payload"]))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())}


def plugin_on(fake: FakeAuthorize, attempts: int = 2) -> tuple[PredebitPaymentsPlugin, Agent, list[str]]:
    plugin = PredebitPaymentsPlugin(
        AgentCorePaymentsPluginConfig(
            payment_manager_arn=LOCAL_MANAGER_ARN,
            user_id="user-alice",
            payment_instrument_id=ALICE_INSTRUMENT,
            payment_session_id=SESSION,
            region="us-east-1",
            post_payment_retry_delay_seconds=0,
        ),
        PredebitConfig(
            agent_id="agent-research",
            authorize_function="authorize",
            lambda_client=fake,
            authorize_attempts=attempts,
            sleep=lambda _: None,
        ),
        mode="enforcing",
    )
    agent = Agent(tools=[], plugins=[plugin], callback_handler=None)
    sent: list[str] = []
    assert plugin.payment_manager is not None
    plugin.payment_manager._payment_client.meta.events.register(
        "before-send.bedrock-agentcore.*", lambda **kw: sent.append(kw["event_name"])
    )
    return plugin, agent, sent


def handle(agent: Agent, result: dict[str, Any]) -> tuple[AfterToolCallEvent, dict[str, Any], dict[str, Any]]:
    use: dict[str, Any] = {"toolUseId": TOOL_USE, "name": "http_request", "input": {"url": TOOL_URL}}
    state: dict[str, Any] = {}
    event = AfterToolCallEvent(
        agent=agent,
        selected_tool=None,
        tool_use=cast(ToolUse, use),
        invocation_state=state,
        result=cast(ToolResult, result),
    )
    event, _ = agent.hooks.invoke_callbacks(event)
    return event, use, state


def test_the_plugin_attaches_a_checked_header_and_keeps_the_hold_for_the_commit():
    fake = FakeAuthorize(GOOD)
    plugin, agent, sent = plugin_on(fake)
    event, use, _ = handle(agent, result_402_v2(payment_required_header(ENTRY)))
    assert event.retry is True
    assert use["input"]["headers"] == {"PAYMENT-SIGNATURE": GOOD_VALUE}
    assert fake.functions == ["authorize"]
    hold = plugin.holds[GOOD["paymentId"]]
    assert (hold.hold_token, hold.amount_micros, hold.network) == (HOLD_TOKEN, 10000, "eip155:84532")
    assert sent == []


def test_the_plugin_attaches_nothing_when_authorizes_header_is_the_wrong_one():
    fake = FakeAuthorize(patched(GOOD, paymentHeader={"name": "X-PAYMENT", "value": GOOD_VALUE}))
    plugin, agent, sent = plugin_on(fake)
    event, use, state = handle(agent, result_402_v2(payment_required_header(ENTRY)))
    assert event.retry is False
    assert "headers" not in use["input"]
    assert state[f"payment_failure_{TOOL_USE}"]["reasonCode"] == "VERIFIER_UNAVAILABLE"
    assert plugin.holds == {}
    assert sent == []


def test_after_a_same_origin_redirect_authorize_judges_the_url_that_answered():
    fake = FakeAuthorize(GOOD)
    _, agent, _ = plugin_on(fake)
    answered = "https://api.weather.example/v2/forecast-moved"
    handle(agent, result_402_v2(payment_required_header(ENTRY), url=answered))
    assert fake.events[0]["requestUrl"] == answered


def test_an_mcp_gateway_call_sends_no_request_url():
    fake = FakeAuthorize({"decision": "NO", "reasonCode": "MERCHANT_NOT_ALLOWED"})
    _, agent, _ = plugin_on(fake)
    offer = {"x402Version": 2, "accepts": [ENTRY]}
    use: dict[str, Any] = {
        "toolUseId": TOOL_USE,
        "name": "weather___forecast",
        "input": {"toolName": "weather___forecast", "parameters": {"city": "Oslo"}},
    }
    result = {"status": "error", "structuredContent": offer, "content": [{"text": json.dumps(offer)}]}
    event = AfterToolCallEvent(
        agent=agent,
        selected_tool=None,
        tool_use=cast(ToolUse, use),
        invocation_state={},
        result=cast(ToolResult, result),
    )
    agent.hooks.invoke_callbacks(event)
    assert len(fake.events) == 1
    sent = fake.events[0]
    assert "requestUrl" not in sent
    assert json.loads(base64.b64decode(sent["paymentRequired"])) == offer


def test_an_mpp_only_402_never_reaches_authorize():
    fake = FakeAuthorize(GOOD)
    _, agent, sent = plugin_on(fake)
    request = encode(
        {"amount": "10000", "currency": "USDC", "recipient": ENTRY["payTo"], "methodDetails": {"chainId": 84532}}
    )
    challenge = (
        f'Payment id="ch-1", realm="api.weather.example", method="evm", intent="charge", '
        f'request="{request.replace("+", "-").replace("/", "_").rstrip("=")}"'
    )
    payload = {"statusCode": 402, "headers": {"WWW-Authenticate": challenge}, "body": {}, "url": TOOL_URL}
    event, _, state = handle(
        agent, {"status": "success", "content": [{"text": f"PAYMENT_REQUIRED: {json.dumps(payload)}"}]}
    )
    assert state[f"payment_failure_{TOOL_USE}"]["reasonCode"] == "PAYMENT_TYPE_NOT_SUPPORTED"
    assert fake.events == [] and sent == [] and event.retry is False


def test_signer_unavailable_is_resent_as_the_same_event_up_to_authorize_attempts():
    fake = FakeAuthorize({"decision": "NO", "reasonCode": "SIGNER_UNAVAILABLE", "message": "Send it again."})
    _, agent, _ = plugin_on(fake, attempts=3)
    _, use, state = handle(agent, result_402_v2(payment_required_header(ENTRY)))
    assert len(fake.events) == 3 and all(e == fake.events[0] for e in fake.events)
    assert state[f"payment_failure_{TOOL_USE}"]["reasonCode"] == "SIGNER_UNAVAILABLE"
    assert "headers" not in use["input"]


def test_an_answer_whose_reason_code_is_no_string_is_not_resent_and_is_verifier_unavailable():
    fake = FakeAuthorize({"decision": "NO", "reasonCode": ["SIGNER_UNAVAILABLE"]})
    _, agent, _ = plugin_on(fake, attempts=3)
    _, _, state = handle(agent, result_402_v2(payment_required_header(ENTRY)))
    assert len(fake.events) == 1
    assert state[f"payment_failure_{TOOL_USE}"]["reasonCode"] == "VERIFIER_UNAVAILABLE"


def test_a_final_no_is_not_resent():
    fake = FakeAuthorize({"decision": "NO", "reasonCode": "AMOUNT_OVER_PAYMENT_LIMIT"})
    _, agent, _ = plugin_on(fake, attempts=3)
    handle(agent, result_402_v2(payment_required_header(ENTRY)))
    assert len(fake.events) == 1


def test_a_lost_answer_is_resent_then_declined_verifier_unavailable():
    fake = FakeAuthorize(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    _, agent, _ = plugin_on(fake)
    _, use, state = handle(agent, result_402_v2(payment_required_header(ENTRY)))
    assert len(fake.events) == 2
    assert state[f"payment_failure_{TOOL_USE}"]["reasonCode"] == "VERIFIER_UNAVAILABLE"
    assert "headers" not in use["input"]


def test_a_lost_answer_then_a_yes_attaches_the_header():
    fake = FakeAuthorize(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), GOOD)
    _, agent, _ = plugin_on(fake)
    event, use, _ = handle(agent, result_402_v2(payment_required_header(ENTRY)))
    assert event.retry is True and use["input"]["headers"] == {"PAYMENT-SIGNATURE": GOOD_VALUE}


def test_no_log_line_carries_the_header_the_hold_token_or_the_user(caplog: pytest.LogCaptureFixture):
    fake = FakeAuthorize(GOOD)
    _, agent, _ = plugin_on(fake)
    with caplog.at_level(logging.DEBUG, logger="predebit_agentcore"):
        handle(agent, result_402_v2(payment_required_header(ENTRY)))
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("predebit_agentcore"))
    assert GOOD["paymentId"] in text  # the plugin does log, by paymentId
    assert GOOD_VALUE not in text and HOLD_TOKEN not in text and "user-alice" not in text


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        PredebitPaymentsPlugin(
            AgentCorePaymentsPluginConfig(payment_manager_arn=LOCAL_MANAGER_ARN, user_id="u", region="us-east-1"),
            PredebitConfig(agent_id="a"),
            mode="enforce",
        )
