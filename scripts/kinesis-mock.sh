#!/usr/bin/env bash
# Installs kinesis-mock (the npm package kinesis-local, a Kinesis API server that runs on
# Node) for the Kinesis tests, and prints the path of its main.js.
#
# kinesis-local 0.6.2 is installed with npm into
#   ${RIFFLE_TOOLS:-$HOME/.cache/riffle/tools}/kinesis-local-0.6.2
# Idempotent: an installed copy is kept.
#
# kinesis-mock binds every address and cannot be told otherwise, so the tests run it only
# inside a private network namespace (`unshare -n` with loopback up), never on a shared
# interface; see crates/riffle-kinesis/src/testing.rs.
set -euo pipefail

VERSION=0.6.2
TOOLS="${RIFFLE_TOOLS:-$HOME/.cache/riffle/tools}"
DEST="$TOOLS/kinesis-local-$VERSION"
MAIN="$DEST/node_modules/kinesis-local/main.js"

if [[ -f "$MAIN" && -f "$DEST/node_modules/kinesis-local/server.json" ]]; then
  echo "$MAIN"
  exit 0
fi
command -v npm >/dev/null || { echo "error: npm is needed to install kinesis-local" >&2; exit 1; }
mkdir -p "$DEST"
echo "installing kinesis-local $VERSION into $DEST" >&2
npm install --silent --no-audit --no-fund --prefix "$DEST" "kinesis-local@$VERSION" >&2
[[ -f "$MAIN" ]] || { echo "error: $MAIN is missing after npm install" >&2; exit 1; }
echo "$MAIN"
