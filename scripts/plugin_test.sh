#!/usr/bin/env bash
# The AgentCore plugin's tests (integrations/agentcore) against the real verify, ledger and
# authorize functions under `cargo lambda watch`, with DynamoDB Local and moto; enforcing mode's
# tests sign through the local AgentCore Payments service (AWS_ENDPOINT_URL_BEDROCK_AGENTCORE).
# Run it under `scripts/services.sh run` (make test does). Stops only the watch process it started.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source scripts/lambda-watch.sh
scripts/tools.sh plugin

create_secret() {
  target/debug/predebit secret create >/dev/null
}

start_functions plugin
export PREDEBIT_LAMBDA_ENDPOINT="http://127.0.0.1:$PORT"
: "${AWS_ENDPOINT_URL_BEDROCK_AGENTCORE:?run under scripts/services.sh run: enforcing mode needs the local AgentCore service}"
# pytest exits 5 when it collected no tests: that is a failure here, like any other non-zero.
cd integrations/agentcore
rc=0
"$ROOT/.cache/venv-plugin/bin/python" -m pytest -q -p no:cacheprovider tests || rc=$?
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 5 ] && echo "plugin_test: pytest collected no tests" >&2
  tail -30 "$LOG"
  exit 1
fi
