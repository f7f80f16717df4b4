# Sourced by scripts/e2e.sh and scripts/plugin_test.sh: builds the functions, creates fresh tables
# named after $1 and seeds them, then runs the verify and ledger functions under
# `cargo lambda watch` on a free loopback port, with authorize (enforcing mode) signing through the
# local AgentCore Payments service (scripts/agentcore_local, its seeded payment manager). Sets PORT and LOG; stops the watch process (and
# only it) when the calling script exits. The caller creates the keys secret
# ($PREDEBIT_KEYS_SECRET_ID) in its `create_secret` function, called before the functions start.
# Needs the environment of `scripts/services.sh run`.

# The payment manager of scripts/agentcore_local/seed.json.
LOCAL_PAYMENT_MANAGER_ARN=arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/predebit-local-a1b2c3d4e5

start_functions() {
  local prefix=$1
  : "${AWS_ENDPOINT_URL_DYNAMODB:?run under scripts/services.sh run}"
  : "${AWS_ENDPOINT_URL_BEDROCK_AGENTCORE:?run under scripts/services.sh run}"
  scripts/tools.sh build
  cargo build --quiet -p predebit-cli -p predebit-verify -p predebit-ledger -p predebit-authorize
  export PREDEBIT_TABLE_PREFIX="$prefix$$"
  export PREDEBIT_KEYS_SECRET_ID="predebit/$prefix-$$"
  target/debug/predebit tables create >/dev/null
  create_secret
  target/debug/predebit seed infra/seed/demo.json >/dev/null
  export PREDEBIT_POLICIES_TABLE="$PREDEBIT_TABLE_PREFIX-policies"
  export PREDEBIT_REGISTRY_TABLE="$PREDEBIT_TABLE_PREFIX-registry"
  export PREDEBIT_LEDGER_TABLE="$PREDEBIT_TABLE_PREFIX-ledger"
  export PREDEBIT_LEDGER_OPS=all
  export PREDEBIT_PAYMENT_MANAGER_ARN="$LOCAL_PAYMENT_MANAGER_ARN"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  LOG=$(mktemp)
  .cache/venv-build/bin/cargo-lambda lambda watch -A 127.0.0.1 -P "$PORT" --ignore-changes >"$LOG" 2>&1 </dev/null &
  WATCH=$!
  trap 'kill $WATCH 2>/dev/null || true; sleep 0.5; kill -9 $WATCH 2>/dev/null || true; rm -f "$LOG"' EXIT
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    kill -0 $WATCH 2>/dev/null || { echo "cargo lambda watch exited"; tail -20 "$LOG"; exit 1; }
    sleep 0.5
  done
  echo "cargo lambda watch did not answer on 127.0.0.1:$PORT within 300 s"
  exit 1
}
