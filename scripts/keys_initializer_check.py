"""Runs the template's KeysInitializer code (the inline Lambda that fills the keys secret) against
Secrets Manager on moto, so the secret the functions then read is the one a deployment creates.

Usage: python keys_initializer_check.py SECRET_NAME   (under scripts/services.sh run; needs boto3
and cfn-lint, which the SAM venv has). Prints one line per check; exits non-zero on a failure.
"""
import base64
import json
import pathlib
import sys
import types

import boto3
from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parent.parent
secret_name = sys.argv[1]
template, matches = decode(str(ROOT / "template.yaml"))
if matches:
    sys.exit(f"template.yaml does not parse: {matches}")
code = template["Resources"]["KeysInitializer"]["Properties"]["Code"]["ZipFile"]

responses = []
cfnresponse = types.ModuleType("cfnresponse")
cfnresponse.SUCCESS, cfnresponse.FAILED = "SUCCESS", "FAILED"
cfnresponse.send = lambda event, context, status, data: responses.append((status, data))
sys.modules["cfnresponse"] = cfnresponse
module = types.ModuleType("index")
exec(compile(code, "KeysInitializer", "exec"), module.__dict__)

sm = boto3.client("secretsmanager")
arn = sm.create_secret(Name=secret_name, Description="predebit keys")["ARN"]
failures = 0


def check(name, ok, detail=""):
    global failures
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f" {detail}"))
    failures += 0 if ok else 1


module.handler({"RequestType": "Create", "ResourceProperties": {"SecretId": arn}}, None)
check("create answers SUCCESS", responses[-1][0] == "SUCCESS", responses[-1])
ring = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
check("the secret has the key ring's fields", set(ring) == {"version", "activeKid", "keys", "pseudonymKey"}, ring.keys())
check("version 1, active kid in keys", ring["version"] == 1 and ring["activeKid"] in ring["keys"])
for name, value in [("signing key", ring["keys"][ring["activeKid"]]), ("pseudonym key", ring["pseudonymKey"])]:
    check(f"{name} is 32 random bytes in base64", len(base64.b64decode(value, validate=True)) == 32)
check("the two keys differ", ring["keys"][ring["activeKid"]] != ring["pseudonymKey"])

module.handler({"RequestType": "Create", "ResourceProperties": {"SecretId": arn}}, None)
again = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
check("a second create never overwrites the keys", again == ring)
module.handler({"RequestType": "Delete", "ResourceProperties": {"SecretId": arn}}, None)
check("delete answers SUCCESS and keeps the secret", responses[-1][0] == "SUCCESS"
      and json.loads(sm.get_secret_value(SecretId=arn)["SecretString"]) == ring)
sys.exit(1 if failures else 0)
