#!/usr/bin/env bash
# The local AgentCore Payments service's tests (scripts/agentcore_local/tests): boto3, the AgentCore
# Python SDK and plain HTTP against the service. Under `scripts/services.sh run` they use the service
# it started (AWS_ENDPOINT_URL_BEDROCK_AGENTCORE); run alone, they start one on a free loopback port
# and stop it by its PID.
#   scripts/services.sh run scripts/agentcore_local_test.sh
#   scripts/agentcore_local_test.sh [pytest args]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/tools.sh" agentcore
cd "$ROOT/scripts/agentcore_local"
# pytest exits 5 when it collected no tests: that is a failure here, like any other non-zero.
rc=0
"$ROOT/.cache/venv-agentcore/bin/python" -m pytest -q -p no:cacheprovider "$@" || rc=$?
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 5 ] && echo "agentcore_local_test: pytest collected no tests" >&2
  exit 1
fi
