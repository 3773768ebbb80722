#!/usr/bin/env bash
# Installs moto's S3 server (a local S3-compatible server in Python), which the Kafka
# broker-outage test uses as Tansu's durable storage (Tansu 0.6 keeps topics either in
# memory, lost when the broker stops, or in S3), and prints the path of `moto_server`.
#
# moto[server]==5.2.5 goes into its own virtualenv at
#   ${RIFFLE_TOOLS:-$HOME/.cache/riffle/tools}/moto-5.2.5
# (not the Python tests' venv: the tests only start the server). Idempotent and quiet: a
# working install is kept.
#
# The test (crates/riffle/tests/kafka_outage.rs) starts and stops the server itself on a
# free loopback port; by hand:
#   "$(scripts/moto.sh)" -H 127.0.0.1 -p 5000
# It finds the binary in $RIFFLE_MOTO, else at the path above, and fails if it is missing.
#
# Environment:
#   RIFFLE_TOOLS   where tools go (default ~/.cache/riffle/tools)
#   RIFFLE_PYTHON  Python used to create the virtualenv (default python3)
set -euo pipefail

VERSION=5.2.5
SPEC="moto[server]==$VERSION"
TOOLS="${RIFFLE_TOOLS:-$HOME/.cache/riffle/tools}"
DEST="$TOOLS/moto-$VERSION"
BIN="$DEST/bin/moto_server"
PYTHON="${RIFFLE_PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

works() {
  [[ -x "$BIN" && -f "$DEST/.riffle-installed" ]] &&
    "$DEST/bin/python" -c 'import moto, moto.server, flask' >/dev/null 2>&1
}

if works; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$TOOLS"
# One installer at a time.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$DEST.lock"
  flock 9
  if works; then
    echo "$BIN"
    exit 0
  fi
fi

echo "installing $SPEC into $DEST" >&2
rm -rf "$DEST"
if ! "$PYTHON" -m venv "$DEST" >&2; then
  # Debian without python3-venv: a venv without pip, filled by the base pip.
  rm -rf "$DEST"
  "$PYTHON" -m venv --without-pip "$DEST" >&2
fi
if "$DEST/bin/python" -m pip --version >/dev/null 2>&1; then
  "$DEST/bin/python" -m pip install -q "$SPEC" >&2
else
  "$PYTHON" -m pip --python "$DEST/bin/python" install -q "$SPEC" >&2
fi
touch "$DEST/.riffle-installed"
if ! works; then
  echo "error: $SPEC did not install a working moto_server in $DEST" >&2
  exit 1
fi
echo "$BIN"
