#!/usr/bin/env bash
# Builds the Lambda bootstraps with cargo lambda (release, Amazon Linux 2023 compatible):
# target/lambda/verify/bootstrap, target/lambda/ledger/bootstrap and target/lambda/authorize/bootstrap.
#   ARCH=arm64 (default) or ARCH=x86_64; deploy with the same Architecture parameter.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ARCH=${ARCH:-arm64}
scripts/tools.sh build
# cargo lambda cross-links with zig, which the venv's ziglang package provides.
export PATH="$ROOT/.cache/venv-build/bin:$PATH"
if [ "$ARCH" = arm64 ] && ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  if ! rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
    echo "make build: the aarch64-unknown-linux-gnu standard library cannot be installed on this machine" >&2
    echo "make build: building x86_64 instead; deploy with: sam deploy --parameter-overrides Architecture=x86_64" >&2
    ARCH=x86_64
  fi
fi
case "$ARCH" in
  arm64) flag=--arm64 ;;
  x86_64) flag=--x86-64 ;;
  *) echo "make build: ARCH must be arm64 or x86_64" >&2; exit 2 ;;
esac
cargo-lambda lambda build --release "$flag" --bin verify --bin ledger --bin authorize
for bin in verify ledger authorize; do
  printf '%-8s %s  %s bytes (%s)\n' "$bin" "target/lambda/$bin/bootstrap" \
    "$(stat -c %s "target/lambda/$bin/bootstrap")" "$ARCH"
done
