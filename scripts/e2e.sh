#!/usr/bin/env bash
# End-to-end: the verify, ledger and authorize functions run as Lambda functions under `cargo lambda watch`
# (host debug build), against DynamoDB Local and moto, invoked through the Lambda Invoke API on
# loopback with the sample events. Run it under `scripts/services.sh run` (make test does).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source scripts/lambda-watch.sh
scripts/tools.sh sam

# The keys secret as a deployment creates it: the template's KeysInitializer code fills it.
create_secret() {
  AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}" .cache/venv-sam/bin/python \
    scripts/keys_initializer_check.py "$PREDEBIT_KEYS_SECRET_ID"
}

start_functions e2e
python3 scripts/e2e_check.py "http://127.0.0.1:$PORT" || { tail -30 "$LOG"; exit 1; }
# Enforcing mode: the sample authorize events through the authorize function, signing through the
# local AgentCore Payments service.
scripts/tools.sh agentcore
.cache/venv-agentcore/bin/python scripts/authorize_events.py --lambda "http://127.0.0.1:$PORT" ||
  { tail -30 "$LOG"; exit 1; }
