#!/usr/bin/env bash
# The ledger part of `make demo` (run by scripts/demo.sh inside `scripts/services.sh run`): every
# sample ledger event in file-name order through the ledger handler, the session's balances after
# each change, then `predebit audit check` on the session.
#   scripts/demo-ledger.sh AUDIT_LOG
set -euo pipefail
P=${PREDEBIT:-target/debug/predebit}
AUDIT_LOG=${1:-/dev/null}
SESSION=ps-alice-main
# The sample ledger events hold real times for this clock (2027-01-15T08:00:00Z): the signed
# authorizations are valid for 60 s after it, as a merchant's maxTimeoutSeconds asks.
CLOCK=1800000000
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# One line per response: op, outcome, the hold's state, replay and expiry counts.
summary() {
  python3 -c '
import json, sys
r = json.load(sys.stdin)
hold = r.get("hold") or {}
parts = [r.get("op") or "-", "ok" if r.get("ok") else "refused " + str(r.get("reasonCode"))]
if hold.get("state"):
    parts.append(hold["state"] + (" (late)" if hold.get("late") else ""))
if hold.get("settlementFailures"):
    parts.append("settlement failed %d time(s), hold kept" % hold["settlementFailures"])
if hold.get("pendingTransaction") and hold.get("state") == "SENT":
    parts.append("settlement pending, its transaction kept")
if r.get("replayed"):
    parts.append("replayed")
if "expired" in r:
    parts.append("expired %(pending)d PENDING, %(sent)d SENT" % r["expired"])
print("  ".join(parts))
sys.exit(0 if r.get("ok") else 3)'
}

balances() {
  "$P" session show "$1" |
    awk -v id="$1" 'NR == 1 { status = $3 } NR == 2 { sub(/^ +/, ""); print "      " id " " status ": " $0 }'
}

# A "VERIFY:<name>" token is replaced by the token from verifying events/verify/<name>.json now,
# and a "HOLD:<event>" token by the hold token that reserve event returned; sets EVENT to the
# file to send.
resolve() {
  local file=$1 source token
  EVENT=$file
  source=$(sed -n 's/.*"decisionToken": *"VERIFY:\([^"]*\)".*/\1/p' "$file")
  if [ -n "$source" ]; then
    token=$("$P" invoke verify --now "$CLOCK" "events/verify/$source.json" 2>>"$AUDIT_LOG" |
      python3 -c 'import json, sys; r = json.load(sys.stdin); print(r.get("decisionToken", ""))')
    [ -n "$token" ] || { echo "demo-ledger.sh: verifying $source.json did not say YES" >&2; exit 1; }
    printf '  %-40s verify: YES, decision token issued\n' "($source.json)"
    EVENT="$TMP/$(basename "$file")"
    sed "s|VERIFY:$source|$token|" "$file" >"$EVENT"
  fi
  source=$(sed -n 's/.*"decisionToken": *"REPLAY:\([^"]*\)".*/\1/p' "$file")
  if [ -n "$source" ]; then
    [ -s "$TMP/$source.decisiontoken" ] || { echo "demo-ledger.sh: $source sent no decision token" >&2; exit 1; }
    EVENT="$TMP/$(basename "$file")"
    sed "s|REPLAY:$source|$(cat "$TMP/$source.decisiontoken")|" "$file" >"$EVENT"
  fi
  source=$(sed -n 's/.*"holdToken": *"HOLD:\([^"]*\)".*/\1/p' "$file")
  if [ -n "$source" ]; then
    [ -s "$TMP/$source.holdtoken" ] || { echo "demo-ledger.sh: $source returned no hold token" >&2; exit 1; }
    EVENT="$TMP/$(basename "$file")"
    sed "s|HOLD:$source|$(cat "$TMP/$source.holdtoken")|" "$file" >"$EVENT"
  fi
}

echo "ledger: events/ledger/*.json in order, with the session's balances after each change"
for file in events/ledger/*.json; do
  name=$(basename "$file" .json)
  args=(--now "$CLOCK")
  case "$name" in
    # The scheduled expire, run 1000 s later: the SENT hold's authorization has lapsed. The
    # clock stays there for the events after it (as the expected results say).
    *-expire) CLOCK=$((CLOCK + 1000)); args=(--now "$CLOCK"); name="$name (clock +1000 s)" ;;
  esac
  resolve "$file"
  session=$(sed -n 's/.*"paymentSessionId": *"\([^"]*\)".*/\1/p' "$file" | head -n 1)
  printf '  %-40s ' "$name"
  # A reserve's hold token is kept (never printed) for the events that name it.
  if "$P" invoke ledger "${args[@]}" "$EVENT" | tee "$TMP/response.json" | summary; then
    # A reserve names no session: its hold does.
    [ -n "$session" ] || session=$(python3 -c 'import json, sys; print((json.load(open(sys.argv[1])).get("hold") or {}).get("paymentSessionId") or "")' "$TMP/response.json")
    balances "${session:-$SESSION}"
  fi
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("holdToken") or "")' \
    "$TMP/response.json" >"$TMP/$(basename "$file" .json).holdtoken"
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("decisionToken") or "")' \
    "$EVENT" >"$TMP/$(basename "$file" .json).decisiontoken"
done
echo
echo "budgets across sessions: dana's daily \$3 budget stopped the second session's reserve above"
echo "(28-31). A warm verify container reads the day's counter and declines the same payment early;"
echo "a cold one (the first decision below) has not seen dana's policy yet, and reserve counts it:"
"$P" invoke verify --now "$CLOCK" events/verify/allow-budget-second-session.json \
  events/verify/allow-budget-second-session.json 2>>"$AUDIT_LOG"
echo
"$P" session show "$SESSION"
echo
"$P" audit check --session "$SESSION"
