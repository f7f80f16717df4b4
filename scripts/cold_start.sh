#!/usr/bin/env bash
# Cold start of the release bootstraps (verify, ledger, authorize): each started against a
# loopback Lambda runtime API (scripts/cold_start.py), with DynamoDB Local and moto's Secrets
# Manager, answering one sample event. Run it under `scripts/services.sh run` (make bench does).
# Builds the release binaries natively (x86_64 here; the figure for an arm64 Lambda is its own).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${AWS_ENDPOINT_URL_DYNAMODB:?run under scripts/services.sh run}"
cargo build --release --quiet -p predebit-cli -p predebit-verify -p predebit-ledger -p predebit-authorize
export PREDEBIT_TABLE_PREFIX="cold$$"
export PREDEBIT_KEYS_SECRET_ID="predebit/cold-$$"
target/release/predebit tables create >/dev/null
target/release/predebit secret create >/dev/null
target/release/predebit seed infra/seed/demo.json >/dev/null
export PREDEBIT_POLICIES_TABLE="$PREDEBIT_TABLE_PREFIX-policies"
export PREDEBIT_REGISTRY_TABLE="$PREDEBIT_TABLE_PREFIX-registry"
export PREDEBIT_LEDGER_TABLE="$PREDEBIT_TABLE_PREFIX-ledger"
export PREDEBIT_LEDGER_OPS=all
export PREDEBIT_PAYMENT_MANAGER_ARN=arn:aws:bedrock-agentcore:us-east-1:123456789012:payment-manager/predebit-local-a1b2c3d4e5
# authorize's sample decline names a session the runner opens; here the seeded one stands in.
event=$(mktemp --suffix=.json)
trap 'rm -f "$event"' EXIT
sed 's/"OPENED:00-open-session"/"ps-alice-main"/' events/authorize/05-decline-over-user-cap.json >"$event"
python3 scripts/cold_start.py \
  "verify=target/release/verify:events/verify/allow-v1-base-usdc.json:decision=YES" \
  "ledger=target/release/ledger:events/ledger/14-get-session.json:ok=true" \
  "authorize=target/release/authorize:$event:reasonCode=AMOUNT_OVER_PAYMENT_LIMIT"
