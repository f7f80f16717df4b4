#!/usr/bin/env bash
# Local services for tests and the demo: DynamoDB Local, moto (Secrets Manager) and the local
# AgentCore Payments service (scripts/agentcore_local), each on a free loopback port, detached from
# the caller's pipes, stopped by PID.
#   scripts/services.sh start [ddb|moto|agentcore|all]   starts them; state in .cache/run/
#   scripts/services.sh stop                    stops what start started
#   scripts/services.sh env                     prints the export lines for the running ones
#   scripts/services.sh run CMD...              start all, run CMD with the env, stop (even on failure)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="$ROOT/.cache"
RUN="${PREDEBIT_RUN_DIR:-$CACHE/run}"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # name port pid
  local name=$1 port=$2 pid=$3 i
  for i in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "services.sh: $name exited during start-up; log: $RUN/$name.log" >&2
      tail -n 20 "$RUN/$name.log" >&2 || true
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "services.sh: $name did not answer on 127.0.0.1:$port within 30 s" >&2
  return 1
}

start_ddb() {
  "$ROOT/scripts/tools.sh" ddb
  local port pid
  port=$(free_port)
  # DynamoDB Local has no bind-address option; it is reached only through 127.0.0.1.
  ( cd "$CACHE/dynamodb-local" && exec java -Xmx512m -Djava.library.path=DynamoDBLocal_lib \
      -jar DynamoDBLocal.jar -inMemory -disableTelemetry -port "$port" ) \
      >"$RUN/ddb.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$RUN/ddb.pid"; echo "$port" >"$RUN/ddb.port"
  wait_for_port ddb "$port" "$pid"
  warm_ddb "$port"
}

# The JVM's first request can take longer than the clients' 2 s operation timeout on a busy
# machine; one ListTables (any credentials: DynamoDB Local does not check them) warms it.
warm_ddb() { # port
  python3 - "$1" <<'PY' || { echo "services.sh: DynamoDB Local did not answer ListTables" >&2; return 1; }
import sys, urllib.request
request = urllib.request.Request(
    f"http://127.0.0.1:{sys.argv[1]}/",
    data=b"{}",
    headers={
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.ListTables",
        "Authorization": "AWS4-HMAC-SHA256 Credential=local/20240101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host, Signature=0",
    },
)
urllib.request.urlopen(request, timeout=60).read()
PY
}

start_moto() {
  "$ROOT/scripts/tools.sh" venv
  local port pid
  port=$(free_port)
  "$CACHE/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$RUN/moto.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$RUN/moto.pid"; echo "$port" >"$RUN/moto.port"
  wait_for_port moto "$port" "$pid"
}

# Serves the AgentCore Payments data-plane routes on loopback (no SigV4 check; see its README).
start_agentcore() {
  "$ROOT/scripts/tools.sh" agentcore
  local port pid
  port=$(free_port)
  "$CACHE/venv-agentcore/bin/python" "$ROOT/scripts/agentcore_local/server.py" --host 127.0.0.1 --port "$port" \
    >"$RUN/agentcore.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$RUN/agentcore.pid"; echo "$port" >"$RUN/agentcore.port"
  wait_for_port agentcore "$port" "$pid"
}

stop_all() {
  local name pid
  for name in ddb moto agentcore; do
    if [ -f "$RUN/$name.pid" ]; then
      pid=$(cat "$RUN/$name.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$RUN/$name.pid" "$RUN/$name.port"
    fi
  done
}

print_env() {
  echo "export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local"
  if [ -f "$RUN/ddb.port" ]; then
    echo "export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$(cat "$RUN/ddb.port")"
  fi
  if [ -f "$RUN/moto.port" ]; then
    echo "export AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:$(cat "$RUN/moto.port")"
  fi
  if [ -f "$RUN/agentcore.port" ]; then
    echo "export AWS_ENDPOINT_URL_BEDROCK_AGENTCORE=http://127.0.0.1:$(cat "$RUN/agentcore.port")"
  fi
}

mkdir -p "$RUN"
cmd=${1:-}
shift || true
case "$cmd" in
  start)
    case "${1:-all}" in
      ddb) start_ddb ;;
      moto) start_moto ;;
      agentcore) start_agentcore ;;
      all) start_ddb; start_moto; start_agentcore ;;
      *) echo "usage: scripts/services.sh start [ddb|moto|agentcore|all]" >&2; exit 2 ;;
    esac ;;
  stop) stop_all ;;
  env) print_env ;;
  run)
    [ $# -gt 0 ] || { echo "usage: scripts/services.sh run CMD..." >&2; exit 2; }
    # A private run directory, so concurrent runs never stop each other's services.
    RUN=$(mktemp -d "$CACHE/run.XXXXXX")
    trap 'stop_all; rm -rf "$RUN"' EXIT
    start_ddb
    start_moto
    start_agentcore
    eval "$(print_env)"
    "$@" ;;
  *) echo "usage: scripts/services.sh start|stop|env|run" >&2; exit 2 ;;
esac
