#!/usr/bin/env bash
# Installs what predebit's tests and demo need into the git-ignored cache .cache/, once.
#   scripts/tools.sh ddb    DynamoDB Local (from the npm package amplify-dynamodb-simulator)
#   scripts/tools.sh venv   Python venv with moto[server] (Secrets Manager on loopback)
#   scripts/tools.sh sam    Python venv with aws-sam-cli and cfn-lint (template checks, offline)
#   scripts/tools.sh build  Python venv with cargo-lambda and zig (Lambda builds, cargo lambda watch)
#   scripts/tools.sh plugin Python venv for the AgentCore plugin's tests (integrations/agentcore)
#   scripts/tools.sh vectors the @x402 npm packages of tools/x402-vectors (make vectors)
#   scripts/tools.sh agentcore Python venv for the local AgentCore Payments service and its tests
#   scripts/tools.sh all    DynamoDB Local, moto and the local AgentCore service (what the tests need)
# Idempotent: a second run only checks that the files are there.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="$ROOT/.cache"
DDB_SIMULATOR_VERSION=2.9.30
MOTO_VERSION=5.2.5
SAM_CLI_VERSION=1.170.0
CARGO_LAMBDA_VERSION=1.9.2
ZIGLANG_VERSION=0.17.1
CFN_LINT_VERSION=1.58.0
DDB_DIR="$CACHE/dynamodb-local"
VENV="$CACHE/venv"

ensure_ddb() {
  if [ -f "$DDB_DIR/DynamoDBLocal.jar" ] && [ -d "$DDB_DIR/DynamoDBLocal_lib" ]; then
    return 0
  fi
  command -v java >/dev/null || { echo "tools.sh: java not found; install a Java 17 runtime" >&2; exit 1; }
  command -v npm >/dev/null || { echo "tools.sh: npm not found; install Node.js with npm" >&2; exit 1; }
  local tmp
  tmp=$(mktemp -d "$CACHE/ddb-fetch.XXXXXX")
  echo "tools.sh: fetching DynamoDB Local (amplify-dynamodb-simulator@$DDB_SIMULATOR_VERSION)" >&2
  (cd "$tmp" && npm pack --silent "amplify-dynamodb-simulator@$DDB_SIMULATOR_VERSION" >/dev/null \
    && tar xzf amplify-dynamodb-simulator-*.tgz)
  rm -rf "$DDB_DIR"
  mv "$tmp/package/emulator" "$DDB_DIR"
  rm -rf "$tmp"
}

ensure_venv() {
  if [ -x "$VENV/bin/moto_server" ] && [ -f "$VENV/.predebit-moto-$MOTO_VERSION" ]; then
    return 0
  fi
  echo "tools.sh: creating $VENV with moto[server]==$MOTO_VERSION" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  touch "$VENV/.predebit-moto-$MOTO_VERSION"
}

ensure_sam() {
  local venv="$CACHE/venv-sam" stamp="$CACHE/venv-sam/.predebit-$SAM_CLI_VERSION-$CFN_LINT_VERSION"
  if [ -x "$venv/bin/sam" ] && [ -x "$venv/bin/cfn-lint" ] && [ -f "$stamp" ]; then
    return 0
  fi
  echo "tools.sh: creating $venv with aws-sam-cli==$SAM_CLI_VERSION cfn-lint==$CFN_LINT_VERSION" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "aws-sam-cli==$SAM_CLI_VERSION" "cfn-lint==$CFN_LINT_VERSION"
  touch "$stamp"
}

ensure_build() {
  local venv="$CACHE/venv-build" stamp="$CACHE/venv-build/.predebit-$CARGO_LAMBDA_VERSION-$ZIGLANG_VERSION"
  if [ -x "$venv/bin/cargo-lambda" ] && [ -f "$stamp" ]; then
    return 0
  fi
  echo "tools.sh: creating $venv with cargo-lambda==$CARGO_LAMBDA_VERSION ziglang==$ZIGLANG_VERSION" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION"
  touch "$stamp"
}

ensure_plugin() {
  local venv="$CACHE/venv-plugin" req="$ROOT/integrations/agentcore/requirements-dev.txt" stamp
  stamp="$venv/.predebit-$(sha256sum "$req" | cut -c1-16)"
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ]; then
    return 0
  fi
  echo "tools.sh: creating $venv from integrations/agentcore/requirements-dev.txt" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$ROOT/integrations/agentcore"
  rm -f "$venv"/.predebit-*
  touch "$stamp"
}

# The local AgentCore Payments service (scripts/agentcore_local): eth-account signs, botocore's model
# drives validation; its tests add boto3, bedrock-agentcore and pytest. Pinned in its requirements.txt.
ensure_agentcore() {
  local venv="$CACHE/venv-agentcore" req="$ROOT/scripts/agentcore_local/requirements.txt" stamp
  stamp="$venv/.predebit-$(sha256sum "$req" | cut -c1-16)"
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ]; then
    return 0
  fi
  echo "tools.sh: creating $venv from scripts/agentcore_local/requirements.txt" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  rm -f "$venv"/.predebit-*
  touch "$stamp"
}

# npm packages pinned exactly in tools/x402-vectors/package.json, installed without a lockfile
# (it would record registry URLs); tools/x402-vectors/node_modules links to them.
ensure_vectors() {
  local dir="$CACHE/x402-vectors" pkg="$ROOT/tools/x402-vectors/package.json" stamp
  stamp="$dir/.predebit-$(sha256sum "$pkg" | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ ! -d "$dir/node_modules/@x402/evm" ]; then
    command -v npm >/dev/null || { echo "tools.sh: npm not found; install Node.js 20+ with npm" >&2; exit 1; }
    echo "tools.sh: installing tools/x402-vectors/package.json into $dir" >&2
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$pkg" "$dir/package.json"
    (cd "$dir" && npm install --silent --no-package-lock --no-audit --no-fund >/dev/null)
    touch "$stamp"
  fi
  ln -sfn ../../.cache/x402-vectors/node_modules "$ROOT/tools/x402-vectors/node_modules"
}

mkdir -p "$CACHE"
case "${1:-all}" in
  ddb) ensure_ddb ;;
  venv) ensure_venv ;;
  sam) ensure_sam ;;
  build) ensure_build ;;
  plugin) ensure_plugin ;;
  vectors) ensure_vectors ;;
  agentcore) ensure_agentcore ;;
  all) ensure_ddb; ensure_venv; ensure_agentcore ;;
  *) echo "usage: scripts/tools.sh [ddb|venv|sam|build|plugin|vectors|agentcore|all]" >&2; exit 2 ;;
esac
