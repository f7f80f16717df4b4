#!/usr/bin/env bash
# End-to-end: the verify and ledger functions run as Lambda functions under `cargo lambda watch`
# (host debug build), against DynamoDB Local and moto, invoked through the Lambda Invoke API on
# loopback with the sample events. Run it under `scripts/services.sh run` (make test does).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${AWS_ENDPOINT_URL_DYNAMODB:?run under scripts/services.sh run}"
scripts/tools.sh build
scripts/tools.sh sam
cargo build --quiet -p predebit-cli -p predebit-verify -p predebit-ledger
P=target/debug/predebit
export PREDEBIT_TABLE_PREFIX="e2e$$"
export PREDEBIT_KEYS_SECRET_ID="predebit/e2e-$$"
$P tables create >/dev/null
# The keys secret as a deployment creates it: the template's KeysInitializer code fills it.
AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}" .cache/venv-sam/bin/python scripts/keys_initializer_check.py "$PREDEBIT_KEYS_SECRET_ID"
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
  kill -0 $WATCH 2>/dev/null || { echo "e2e: cargo lambda watch exited"; tail -20 "$LOG"; exit 1; }
  sleep 0.5
done
python3 scripts/e2e_check.py "http://127.0.0.1:$PORT" || { tail -30 "$LOG"; exit 1; }
