#!/usr/bin/env bash
# The enforcing-mode part of `make demo` (run by scripts/demo.sh inside `scripts/services.sh run`):
# events/authorize/*.json in order through the authorize handler, which signs through the local
# AgentCore Payments service, then the commit after the paid response; the session with its holds
# and the audit of it.
#   scripts/demo-authorize.sh AUDIT_LOG
set -euo pipefail
P=${PREDEBIT:-target/debug/predebit}
AUDIT_LOG=${1:-/dev/null}
OUT=$(mktemp)
trap 'rm -rf "$OUT"' EXIT

echo "enforcing mode: events/authorize/*.json in order (authorize selects, reserves, has AgentCore sign, checks, marks SENT)"
.cache/venv-agentcore/bin/python scripts/authorize_events.py --cli "$P" 2>>"$AUDIT_LOG" | tee "$OUT" | grep -v '^SESSION='
SESSION=$(sed -n 's/^SESSION=//p' "$OUT")
echo
"$P" session show "$SESSION"
echo
"$P" audit check --session "$SESSION"
