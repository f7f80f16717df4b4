"""Routes, restJson1 wire format and model-driven input validation, through boto3 and plain HTTP."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import botocore
import pytest

from conftest import (
    ALICE,
    ALICE_INSTRUMENT,
    MANAGER_ARN,
    Raw,
    open_session,
    pay,
    requirement_v2,
    token,
)
from service_model import OPERATIONS, ServiceModel

MODEL_FILE = Path(botocore.__file__).parent / "data/bedrock-agentcore/2024-02-28/service-2.json.gz"


def test_the_routes_are_the_model_s_methods_and_uris() -> None:
    # GIVEN the model file the pinned botocore ships WHEN the service loads its routes THEN they match
    raw = json.loads(gzip.decompress(MODEL_FILE.read_bytes()))
    model = ServiceModel()
    expected = {
        "CreatePaymentSession": ("POST", "/payments/createPaymentSession", 201),
        "GetPaymentSession": ("POST", "/payments/getPaymentSession", 200),
        "GetPaymentInstrument": ("POST", "/payments/getPaymentInstrument", 200),
        "ProcessPayment": ("POST", "/payments/processPayment", 200),
    }
    for name in OPERATIONS:
        op = model.operations[name]
        assert (op.method, op.uri, op.success_status) == expected[name]
        assert raw["operations"][name]["http"]["requestUri"] == op.uri
        assert op.header_members == {
            "userId": "X-Amzn-Bedrock-AgentCore-Payments-User-Id",
            "agentName": "X-Amzn-Bedrock-AgentCore-Payments-Agent-Name",
        }
    assert {model.error_status(e) for e in model.operations["ProcessPayment"].errors} == {
        400,
        402,
        403,
        404,
        409,
        429,
        500,
    }


def test_errors_carry_the_type_header_and_a_json_message_as_both_sdks_read_them(raw: Raw) -> None:
    # GIVEN a ProcessPayment missing its required members, sent as plain HTTP
    status, headers, body = raw.request("POST", "/payments/processPayment", b"{}")
    # THEN it is a 400 ValidationException named in x-amzn-errortype (the Rust SDK reads that
    # header first, botocore too) with message, reason and fieldList in the JSON body
    assert status == 400
    assert headers["x-amzn-errortype"] == "ValidationException"
    assert headers["content-type"] == "application/json"
    assert headers["x-amzn-requestid"]
    error = json.loads(body)
    assert error["reason"] == "FieldValidationFailed"
    assert {f["name"] for f in error["fieldList"]} == {
        "paymentManagerArn",
        "paymentSessionId",
        "paymentInstrumentId",
        "paymentType",
        "paymentInput",
    }
    assert error["message"].startswith("5 validation errors detected: Value at 'paymentManagerArn' failed")


def test_a_body_that_is_not_json_cannot_be_parsed(raw: Raw) -> None:
    status, headers, body = raw.request("POST", "/payments/getPaymentSession", b"{not json")
    assert (status, headers["x-amzn-errortype"], json.loads(body)["reason"]) == (
        400,
        "ValidationException",
        "CannotParse",
    )


def test_an_unknown_route_is_an_unknown_operation(raw: Raw) -> None:
    status, headers, _ = raw.request("POST", "/payments/listPaymentSessions", b"{}")
    assert (status, headers["x-amzn-errortype"]) == (404, "UnknownOperationException")


def test_missing_required_members_are_named(unchecked: Any) -> None:
    # GIVEN a CreatePaymentSession without its required members (botocore's own check off)
    with pytest.raises(unchecked.exceptions.ValidationException) as e:
        unchecked.create_payment_session(userId=ALICE, clientToken=token("x"))
    # THEN the service names each one
    fields = e.value.response["fieldList"]
    assert {f["name"] for f in fields} == {"paymentManagerArn", "expiryTimeInMinutes"}
    assert all(f["message"] == "Member must not be null" for f in fields)


@pytest.mark.parametrize(
    ("client_token", "constraint"),
    [
        ("a" * 32, "Member must have length greater than or equal to 33"),
        ("a" * 257, "Member must have length less than or equal to 256"),
        ("-" + "a" * 40, "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,256}"),
        (
            "a" * 20 + ":" + "a" * 20,
            "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,256}",
        ),
    ],
)
def test_a_client_token_outside_its_length_or_pattern_is_refused(
    unchecked: Any, client_token: str, constraint: str
) -> None:
    session = open_session(unchecked)
    with pytest.raises(unchecked.exceptions.ValidationException) as e:
        pay(unchecked, session, requirement_v2(), client_token=client_token)
    assert e.value.response["fieldList"] == [{"name": "clientToken", "message": constraint}]


def test_a_uuid_and_a_64_hex_client_token_are_accepted(client: Any) -> None:
    # GIVEN the two token forms in use: botocore's uuid4 default and predebit's paymentId
    session = open_session(client)
    assert pay(client, session, requirement_v2(), client_token="0e3c2b36-7d1b-4c42-9d2e-5e2d1f0b7a11")
    assert pay(client, session, requirement_v2(), client_token=token("paymentId"))


def test_both_union_members_are_refused(unchecked: Any) -> None:
    session = open_session(unchecked)
    with pytest.raises(unchecked.exceptions.ValidationException) as e:
        unchecked.process_payment(
            userId=ALICE,
            paymentManagerArn=MANAGER_ARN,
            paymentSessionId=session,
            paymentInstrumentId=ALICE_INSTRUMENT,
            paymentType="CRYPTO_X402",
            clientToken=token("union"),
            paymentInput={
                "cryptoX402": {"version": "2", "payload": requirement_v2()},
                "mpp": {"version": "1", "wwwAuthenticateHeaders": ["Payment x"]},
            },
        )
    assert {"name": "paymentInput", "message": "Member must have exactly one member of the union set"} in (
        e.value.response["fieldList"]
    )


def test_an_empty_union_is_refused(raw: Raw) -> None:
    body = {
        "paymentManagerArn": MANAGER_ARN,
        "paymentSessionId": "payment-session-aaaaaaaaaaaaaaa",
        "paymentInstrumentId": ALICE_INSTRUMENT,
        "paymentType": "CRYPTO_X402",
        "paymentInput": {},
    }
    status, _, data = raw.request(
        "POST",
        "/payments/processPayment",
        json.dumps(body).encode(),
        {"X-Amzn-Bedrock-AgentCore-Payments-User-Id": ALICE},
    )
    assert status == 400
    assert json.loads(data)["fieldList"] == [
        {"name": "paymentInput", "message": "Member must have exactly one member of the union set"}
    ]


@pytest.mark.parametrize(
    ("args", "field", "constraint"),
    [
        ({"expiryTimeInMinutes": 14}, "expiryTimeInMinutes", "Member must have value greater than or equal to 15"),
        ({"expiryTimeInMinutes": 481}, "expiryTimeInMinutes", "Member must have value less than or equal to 480"),
        (
            {"limits": {"maxSpendAmount": {"value": "1.00", "currency": "EUR"}}},
            "limits.maxSpendAmount.currency",
            "Member must satisfy enum value set: [USD]",
        ),
        (
            {"limits": {"maxSpendAmount": {"value": "1.00"}}},
            "limits.maxSpendAmount.currency",
            "Member must not be null",
        ),
        (
            {"paymentManagerArn": "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager"},
            "paymentManagerArn",
            "Member must have length greater than or equal to 66",
        ),
        ({"userId": "u" * 121}, "userId", "Member must have length less than or equal to 120"),
    ],
)
def test_create_session_constraints_are_the_model_s(unchecked: Any, args: dict, field: str, constraint: str) -> None:
    request = {"userId": ALICE, "paymentManagerArn": MANAGER_ARN, "expiryTimeInMinutes": 60, **args}
    with pytest.raises(unchecked.exceptions.ValidationException) as e:
        unchecked.create_payment_session(**request)
    assert {"name": field, "message": constraint} in e.value.response["fieldList"]


def test_the_user_id_is_read_from_its_header_not_the_body(raw: Raw) -> None:
    # GIVEN userId in the body (where the model does not bind it) and no header
    body = {"userId": ALICE, "paymentManagerArn": MANAGER_ARN, "expiryTimeInMinutes": 60}
    status, _, data = raw.request("POST", "/payments/createPaymentSession", json.dumps(body).encode())
    # THEN it is an unknown body member
    assert status == 400
    assert {"name": "userId", "message": "Member is not part of the input"} in json.loads(data)["fieldList"]
    # WHEN it is sent as the header THEN the session is the header's user's
    del body["userId"]
    status, _, data = raw.request(
        "POST",
        "/payments/createPaymentSession",
        json.dumps(body).encode(),
        {"X-Amzn-Bedrock-AgentCore-Payments-User-Id": "dave"},
    )
    assert status == 201
    assert json.loads(data)["paymentSession"]["userId"] == "dave"


def test_a_sigv4_caller_without_a_user_id_is_refused(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationException) as e:
        client.create_payment_session(paymentManagerArn=MANAGER_ARN, expiryTimeInMinutes=60)
    assert e.value.response["fieldList"][0]["name"] == "userId"


def test_a_bearer_caller_is_the_token_s_subject(raw: Raw) -> None:
    # GIVEN a CUSTOM_JWT caller (the service derives the user from the JWT's sub; not verified here)
    import base64

    claims = base64.urlsafe_b64encode(json.dumps({"sub": "erin"}).encode()).rstrip(b"=").decode()
    body = {"paymentManagerArn": MANAGER_ARN, "expiryTimeInMinutes": 30}
    status, _, data = raw.request(
        "POST",
        "/payments/createPaymentSession",
        json.dumps(body).encode(),
        {"Authorization": f"Bearer e30.{claims}.sig"},
    )
    assert (status, json.loads(data)["paymentSession"]["userId"]) == (201, "erin")


def test_an_unknown_body_member_is_refused(unchecked: Any, raw: Raw) -> None:
    # GIVEN paymentConnectorId on ProcessPayment (the SDK once sent it; the model has no such member)
    body = {
        "paymentManagerArn": MANAGER_ARN,
        "paymentSessionId": "payment-session-aaaaaaaaaaaaaaa",
        "paymentInstrumentId": ALICE_INSTRUMENT,
        "paymentType": "CRYPTO_X402",
        "paymentInput": {"cryptoX402": {"version": "2", "payload": requirement_v2()}},
        "paymentConnectorId": "local-cdp-a1b2c3d4e5",
    }
    status, _, data = raw.request(
        "POST",
        "/payments/processPayment",
        json.dumps(body).encode(),
        {"X-Amzn-Bedrock-AgentCore-Payments-User-Id": ALICE},
    )
    assert status == 400
    assert json.loads(data)["fieldList"] == [
        {"name": "paymentConnectorId", "message": "Member is not part of the input"}
    ]


def test_a_wrong_json_type_cannot_be_parsed(raw: Raw) -> None:
    body = {"paymentManagerArn": MANAGER_ARN, "expiryTimeInMinutes": "60"}
    status, _, data = raw.request(
        "POST",
        "/payments/createPaymentSession",
        json.dumps(body).encode(),
        {"X-Amzn-Bedrock-AgentCore-Payments-User-Id": ALICE},
    )
    error = json.loads(data)
    assert (status, error["reason"]) == (400, "CannotParse")
    assert error["fieldList"] == [{"name": "expiryTimeInMinutes", "message": "Member must be an integer"}]


def test_permit2_allowance_limit_has_the_model_s_pattern(unchecked: Any) -> None:
    session = open_session(unchecked)
    with pytest.raises(unchecked.exceptions.ValidationException) as e:
        pay(unchecked, session, requirement_v2(), client_token=token("p2"), permit2AllowanceLimit="1e6")
    assert {
        "name": "paymentInput.cryptoX402.permit2AllowanceLimit",
        "message": "Member must satisfy regular expression pattern: [0-9]+",
    } in e.value.response["fieldList"]


def test_validation_failures_are_counted_per_operation_and_code(unchecked: Any, raw: Raw) -> None:
    with pytest.raises(unchecked.exceptions.ValidationException):
        unchecked.get_payment_session(userId=ALICE, paymentManagerArn=MANAGER_ARN, paymentSessionId="x")
    stats = raw.stats()
    assert stats["requests"]["GetPaymentSession"] == 1
    assert stats["errors"]["GetPaymentSession"] == {"ValidationException": 1}


def test_timestamps_parse_as_utc_datetimes(client: Any) -> None:
    import datetime

    session = client.create_payment_session(userId=ALICE, paymentManagerArn=MANAGER_ARN, expiryTimeInMinutes=15)
    created = session["paymentSession"]["createdAt"]
    assert isinstance(created, datetime.datetime) and created.utcoffset() == datetime.timedelta(0)
    assert session["ResponseMetadata"]["HTTPStatusCode"] == 201
