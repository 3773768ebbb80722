#!/usr/bin/env bash
# The full crash test: RIFFLE_KILLS random SIGKILLs (200 by default) of a server that is
# ingesting and sealing, then exact COUNT(*), COUNT(DISTINCT id) and SUM checks.
# Needs the environment ./scripts/test.sh prepares (the Python venv and a debug build).
set -euo pipefail
cd "$(dirname "$0")/.."
export RIFFLE_KILLS="${RIFFLE_KILLS:-200}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riffle/target}"
cargo build --workspace --tests --bins --quiet
VENV="${RIFFLE_VENV:-$HOME/.cache/riffle/venv}"
RIFFLE_BIN="$CARGO_TARGET_DIR/debug/riffle" exec "$VENV/bin/python" -m pytest -q -s tests/python/test_kill.py -k random_kills "$@"
