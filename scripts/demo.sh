#!/usr/bin/env bash
# The demo: DynamoDB Local + moto on loopback, tables, keys secret, demo seed, then every
# sample verify event through the verify handler and every sample ledger event through the ledger
# handler (in-process, the Lambdas' code paths), and the audit of the session; then enforcing
# mode: every sample authorize event through the authorize handler, signing through the local
# AgentCore Payments service, and the commit after the paid response.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/tools.sh all
echo "building the predebit CLI (first run compiles the AWS SDK: a few minutes)..." >&2
cargo build --quiet -p predebit-cli
AUDIT_LOG="$ROOT/.cache/demo-audit.jsonl"
scripts/services.sh run bash -c '
  set -euo pipefail
  P=target/debug/predebit
  $P tables create
  $P secret create --kid demo-k1
  $P seed infra/seed/demo.json
  echo
  $P invoke verify events/verify/*.json 2>"$1"
  echo
  echo "audit records (one JSON line per decision): $1"
  echo
  scripts/demo-ledger.sh "$1"
  echo
  scripts/demo-authorize.sh "$1"
' demo "$AUDIT_LOG"
