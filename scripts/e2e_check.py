"""Invokes the sample events through the Lambda Invoke API and checks the answers.

Every events/verify/*.json against events/expected/verify/, then a ledger flow
(reserve with the token from verify, markSent, commit, getSession). Prints one line per check and
a closing 'N passed, N failed' line; exits non-zero on any failure.
"""
import json
import pathlib
import sys
import time
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
for step in steps:
    answer = invoke("ledger", step)
    check(f"ledger {step['op']}", answer.get("ok") is True, json.dumps(answer)[:300])
answer = invoke("ledger", {"version": "1", "op": "getSession", "paymentSessionId": session})
settled = answer.get("session", {}).get("settledMicros")
check("ledger getSession settled 1.00", settled == 1000000, f"settled {settled}")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
