"""Runs the enforcing-mode sample events (events/authorize/*.json, in file-name order) and checks
them against events/expected/authorize/.

Each event goes to authorize, or to the ledger when it names an `op` (the commit after the paid
response). Before the first one it opens alice's payment session, one source setting the limit
of both: with --cli, `predebit session open --payment-manager-arn` (the admin openSession creates
the AgentCore session and stores the id it returns); with --lambda, as an application backend
without predebit's admin role would (CreatePaymentSession with boto3, then the ledger's
openSession with that id). Placeholders:
  "OPENED:<event>"      the payment session id that event opened (00-open-session: the one above)
  "AUTHORIZED:<event>"  the field of the same name in that authorize event's response
An expected `sameAs: <event>` asks for that event's paymentId, holdToken and header, unchanged.

After the events: the number of signatures AgentCore Payments issued for the session must equal
the number of distinct payments authorize approved (a replay signs nothing more).

Prints one line per event (a header by name and size, never its value) and exits non-zero on any
mismatch. Needs the environment of `scripts/services.sh run` (the local AgentCore service).

    authorize_events.py --cli target/debug/predebit         (the handlers in-process: make demo)
    authorize_events.py --lambda http://127.0.0.1:PORT      (under cargo lambda watch: scripts/e2e.sh)
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import urllib.request

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events/authorize"
EXPECTED = ROOT / "events/expected/authorize"
# The payment manager and user-alice's instrument of scripts/agentcore_local/seed.json.
MANAGER = "arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/predebit-local-a1b2c3d4e5"
USER = "user-alice"
SESSION_LIMIT = "3.00"
SESSION_MINUTES = 60


class Invoker:
    def __init__(self, cli, lambda_url):
        self.cli, self.lambda_url = cli, lambda_url

    def __call__(self, function, event):
        if self.lambda_url:
            request = urllib.request.Request(
                f"{self.lambda_url}/2015-03-31/functions/{function}/invocations",
                data=json.dumps(event).encode(),
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=300) as response:
                return json.loads(response.read())
        with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
            json.dump(event, file)
            file.flush()
            args = [self.cli, "invoke", function, file.name]
            if function == "authorize":
                args += ["--payment-manager-arn", MANAGER]
            out = subprocess.run(args, check=True, capture_output=True, text=True)
            return json.loads(out.stdout)


def open_session(invoke):
    """Creates the AgentCore payment session, then predebit's with the id AgentCore returned.
    Returns the id and a line saying how."""
    if invoke.cli:
        args = [invoke.cli, "--json", "session", "open", "--user-id", USER, "--limit", SESSION_LIMIT,
                "--expiry-minutes", str(SESSION_MINUTES), "--payment-manager-arn", MANAGER]
        opened = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
        how = f"predebit's openSession created the AgentCore session (maxSpendAmount {SESSION_LIMIT}) and stored its id"
        return opened["session"]["paymentSessionId"], how
    agentcore = boto3.client("bedrock-agentcore", region_name=os.environ.get("AWS_REGION", "us-east-1"))
    created = agentcore.create_payment_session(
        userId=USER,
        paymentManagerArn=MANAGER,
        limits={"maxSpendAmount": {"value": SESSION_LIMIT, "currency": "USD"}},
        expiryTimeInMinutes=SESSION_MINUTES,
    )["paymentSession"]
    session_id = created["paymentSessionId"]
    opened = invoke(
        "ledger",
        {
            "version": "1",
            "op": "openSession",
            "paymentSessionId": session_id,
            "userId": USER,
            "limit": SESSION_LIMIT,
            "expiryMinutes": SESSION_MINUTES,
        },
    )
    if not opened.get("ok"):
        sys.exit(f"authorize_events: openSession refused: {opened.get('reasonCode')}")
    return session_id, f"AgentCore session created (limit {SESSION_LIMIT}); predebit's opened with its id"


def signatures(session_id):
    base = os.environ["AWS_ENDPOINT_URL_BEDROCK_AGENTCORE"]
    with urllib.request.urlopen(f"{base}/_local/stats", timeout=30) as response:
        stats = json.loads(response.read())
    return stats["signatures"]["bySession"].get(session_id, 0)


def resolve(value, sessions, responses):
    if isinstance(value, dict):
        return {k: resolve_field(k, v, sessions, responses) for k, v in value.items()}
    return value


def resolve_field(key, value, sessions, responses):
    if isinstance(value, str) and value.startswith("OPENED:"):
        return sessions[value.removeprefix("OPENED:")]
    if isinstance(value, str) and value.startswith("AUTHORIZED:"):
        return responses[value.removeprefix("AUTHORIZED:")][key]
    return resolve(value, sessions, responses)


def subset_problems(expected, actual, path=""):
    problems = []
    for key, want in expected.items():
        got = actual.get(key) if isinstance(actual, dict) else None
        if isinstance(want, dict):
            problems += subset_problems(want, got or {}, f"{path}.{key}")
        elif want != got:
            problems.append(f"{path}.{key}: expected {want!r}, got {got!r}")
    return problems


def summary(response):
    if "decision" in response:
        header = response.get("paymentHeader") or {}
        shown = f"{header['name']} ({len(header['value'])} bytes)" if header else "-"
        return f"{response['decision']:<4} {response.get('reasonCode', '?'):<26} {(response.get('amount') or {}).get('usd', '-'):>6}  {shown}"
    hold = response.get("hold") or {}
    outcome = "ok" if response.get("ok") else f"refused {response.get('reasonCode')}"
    return f"{response.get('op')}: {outcome}  {hold.get('state', '')}"


def main():
    parser = argparse.ArgumentParser()
    via = parser.add_mutually_exclusive_group(required=True)
    via.add_argument("--cli")
    via.add_argument("--lambda", dest="lambda_url")
    args = parser.parse_args()
    invoke = Invoker(args.cli, args.lambda_url)

    session_id, how = open_session(invoke)
    print(f"  {'00-open-session':<40} {how}")
    sessions, responses, failures, approved = {"00-open-session": session_id}, {}, 0, set()
    for path in sorted(EVENTS.glob("*.json")):
        name = path.stem
        event = resolve(json.loads(path.read_text()), sessions, responses)
        expected = json.loads((EXPECTED / path.name).read_text())
        response = invoke("ledger" if "op" in event else "authorize", event)
        responses[name] = response
        same_as = expected.pop("sameAs", None)
        problems = subset_problems(expected, response)
        if same_as:
            earlier = responses[same_as]
            for field in ("paymentId", "holdToken", "paymentHeader"):
                if response.get(field) != earlier.get(field):
                    problems.append(f"{field} differs from {same_as}'s")
        if response.get("decision") == "YES":
            approved.add(response["paymentId"])
        print(f"  {name:<40} {summary(response)}")
        for problem in problems:
            print(f"    MISMATCH {problem}")
        failures += bool(problems)
    signed = signatures(session_id)
    ok = signed == len(approved)
    print(f"  AgentCore Payments signed {signed} payment(s) for the session; authorize approved {len(approved)}")
    if not ok:
        failures += 1
    print(f"SESSION={session_id}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
