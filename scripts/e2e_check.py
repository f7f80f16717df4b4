"""Invokes the sample events through the Lambda Invoke API and checks the answers.

Every events/verify/*.json against events/expected/verify/, then a ledger flow
(reserve with the token from verify, markSent, commit, getSession), then payloads the Lambda
runtime itself would refuse (not JSON, not UTF-8, nested 200 levels, 300 KiB), sent to verify,
ledger and authorize: each must be the function's structured INVALID_REQUEST answer, never a
Lambda error. Prints one line per check and a closing 'N passed, N failed' line; exits non-zero on any failure.
"""
import json
import pathlib
import sys
import time
import urllib.error
import urllib.request

BASE = sys.argv[1]
ROOT = pathlib.Path(__file__).resolve().parent.parent
passed = failed = 0


def invoke(function, payload):
    request = urllib.request.Request(
        f"{BASE}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(payload).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())


def invoke_raw(function, body):
    """POSTs `body` (bytes) unchanged; returns the status, the headers and the parsed answer."""
    request = urllib.request.Request(
        f"{BASE}/2015-03-31/functions/{function}/invocations", data=body, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, error.headers, error.read()
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {"unparsed": raw[:200].decode(errors="replace")}
    return status, headers, answer


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


for path in sorted((ROOT / "events/verify").glob("*.json")):
    expected = json.loads((ROOT / "events/expected/verify" / path.name).read_text())
    answer = invoke("verify", json.loads(path.read_text()))
    same = all(answer.get(k) == v for k, v in expected.items())
    check(f"verify {path.name}", same, f"expected {expected}, got {answer.get('decision')} {answer.get('reasonCode')}")

event = json.loads((ROOT / "events/verify/allow-v1-base-usdc.json").read_text())
event["paymentId"] = "e2e0" + event["paymentId"][4:]
decision = invoke("verify", event)
session, payment = event["paymentSessionId"], event["paymentId"]
steps = [
    {"version": "1", "op": "reserve", "decisionToken": decision.get("decisionToken", "")},
    {"version": "1", "op": "markSent", "paymentSessionId": session, "paymentId": payment,
     "signed": {"to": event["requirement"]["payTo"], "value": "1000000", "network": "base", "validBefore": int(time.time()) + 60}},
    {"version": "1", "op": "commit", "paymentSessionId": session, "paymentId": payment, "amountMicros": 1000000,
     "settlement": {"success": True, "transaction": "0x" + "ab" * 32, "network": "base"}},
]
hold_token = ""
for step in steps:
    if step["op"] != "reserve":
        step["holdToken"] = hold_token
    answer = invoke("ledger", step)
    hold_token = answer.get("holdToken") or hold_token
    check(f"ledger {step['op']}", answer.get("ok") is True, json.dumps(answer)[:300])
answer = invoke("ledger", {"version": "1", "op": "getSession", "paymentSessionId": session, "holdToken": hold_token})
settled = answer.get("session", {}).get("settledMicros")
check("ledger getSession settled 1.00", settled == 1000000, f"settled {settled}")

# Payloads the runtime's own serde_json would turn into a Lambda error (FunctionError) before
# the handler ran. MARKER must never come back in an answer.
MARKER = "e2e-marker-5f1d"
deep = {}
inner = deep
for _ in range(199):
    inner["a"] = {}
    inner = inner["a"]
deep_verify = json.loads((ROOT / "events/verify/allow-v1-base-usdc.json").read_text())
deep_verify["requirement"]["extra"] = deep
large_verify = json.loads((ROOT / "events/verify/allow-v1-base-usdc.json").read_text())
large_verify["requirement"]["description"] = MARKER * (300 * 1024 // len(MARKER))
deep_ledger = {"version": "1", "op": "getSession", "paymentSessionId": deep}
large_ledger = {"version": "1", "op": "getSession", "paymentSessionId": MARKER * (300 * 1024 // len(MARKER))}
refused = [
    ("not JSON", b"not json " + MARKER.encode(), b"not json " + MARKER.encode(), "event: is not valid JSON"),
    ("not UTF-8", b'{"version": "1", "x": "' + bytes([0xFF]) + b'"}',
     b'{"version": "1", "op": "' + bytes([0xFF]) + b'"}', "event: is not valid JSON"),
    ("200 levels deep (verify: in requirement.extra)", json.dumps(deep_verify).encode(), json.dumps(deep_ledger).encode(),
     "event: nests deeper than 64 levels"),
    ("300 KiB", json.dumps(large_verify).encode(), json.dumps(large_ledger).encode(),
     "event: is larger than 262144 bytes"),
]
for name, verify_body, ledger_body, problem in refused:
    # authorize parses its payload as verify does: the verify body stands for it.
    for function, body in (("verify", verify_body), ("ledger", ledger_body), ("authorize", verify_body)):
        status, headers, answer = invoke_raw(function, body)
        # AWS marks a function error with this header; cargo lambda watch answers HTTP 500 with
        # an errorType body instead. Either fails the check.
        function_error = headers.get("X-Amz-Function-Error")
        shape = (
            answer.get("decision") == "NO" and bool(answer.get("auditHash"))
            if function in ("verify", "authorize")
            else answer.get("ok") is False and "op" in answer and answer["op"] is None
        )
        ok = (
            status == 200
            and function_error is None
            and "errorType" not in answer
            and answer.get("reasonCode") == "INVALID_REQUEST"
            and answer.get("version") == "1"
            and shape
            and problem in answer.get("message", "")
            and MARKER not in json.dumps(answer)
        )
        check(f"{function} {name} is INVALID_REQUEST, not a Lambda error", ok,
              f"status {status}, X-Amz-Function-Error {function_error}, {json.dumps(answer)[:300]}")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
