#!/usr/bin/env bash
# The AgentCore plugin's tests (integrations/agentcore) against the real verify and ledger
# functions under `cargo lambda watch`, with DynamoDB Local and moto. Run it under
# `scripts/services.sh run` (make test does). Stops only the watch process it started.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${AWS_ENDPOINT_URL_DYNAMODB:?run under scripts/services.sh run}"
scripts/tools.sh build
scripts/tools.sh plugin
cargo build --quiet -p predebit-cli -p predebit-verify -p predebit-ledger
P=target/debug/predebit
export PREDEBIT_TABLE_PREFIX="plugin$$"
export PREDEBIT_KEYS_SECRET_ID="predebit/plugin-$$"
$P tables create >/dev/null
$P secret create >/dev/null
$P seed infra/seed/demo.json >/dev/null
export PREDEBIT_POLICIES_TABLE="$PREDEBIT_TABLE_PREFIX-policies"
export PREDEBIT_REGISTRY_TABLE="$PREDEBIT_TABLE_PREFIX-registry"
export PREDEBIT_LEDGER_TABLE="$PREDEBIT_TABLE_PREFIX-ledger"
export PREDEBIT_LEDGER_OPS=all
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LOG=$(mktemp)
.cache/venv-build/bin/cargo-lambda lambda watch -A 127.0.0.1 -P "$PORT" --ignore-changes >"$LOG" 2>&1 </dev/null &
WATCH=$!
trap 'kill $WATCH 2>/dev/null || true; sleep 0.5; kill -9 $WATCH 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 600); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 $WATCH 2>/dev/null || { echo "plugin_test: cargo lambda watch exited"; tail -20 "$LOG"; exit 1; }
  sleep 0.5
done
export PREDEBIT_LAMBDA_ENDPOINT="http://127.0.0.1:$PORT"
# pytest exits 5 when it collected no tests: that is a failure here, like any other non-zero.
cd integrations/agentcore
rc=0
"$ROOT/.cache/venv-plugin/bin/python" -m pytest -q -p no:cacheprovider tests || rc=$?
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 5 ] && echo "plugin_test: pytest collected no tests" >&2
  tail -30 "$LOG"
  exit 1
fi
