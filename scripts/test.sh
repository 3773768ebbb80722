#!/usr/bin/env bash
# The whole test suite: formatting, build, Rust tests, lints, and the Python end-to-end
# tests that drive the real binary through Pinot's Python client (pinotdb).
#
# Needs only the Rust toolchain and Python 3.10+ with pip; installs the rest by itself and
# is quick on re-runs:
#   - Rust builds go to $CARGO_TARGET_DIR (default ~/.cache/riffle/target, outside the clone,
#     so that every clone and CI job on the machine shares one build); stale test binaries
#     of earlier builds are removed from it after the build (scripts/prune-target.py);
#   - the Python clients go to a virtualenv at $RIFFLE_VENV (default ~/.cache/riffle/venv),
#     installed from tests/python/requirements.txt only when that file changes.
#
# Every stage runs even if an earlier one failed; the script ends with a summary and exits
# non-zero if any stage failed.
#
# Environment:
#   CARGO_TARGET_DIR    Rust build directory (default ~/.cache/riffle/target)
#   RIFFLE_VENV         Python virtualenv (default ~/.cache/riffle/venv)
#   RIFFLE_PYTHON       Python used to create it (default python3)
#   RIFFLE_SKIP_LINT=1  skip clippy
#   PYTEST_ARGS         extra arguments for pytest (e.g. "-k quickstart -x")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riffle/target}"
VENV="${RIFFLE_VENV:-$HOME/.cache/riffle/venv}"
PYTHON="${RIFFLE_PYTHON:-python3}"
REQUIREMENTS="$ROOT/tests/python/requirements.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
  BOLD=$'\033[1m' RED=$'\033[31m' GREEN=$'\033[32m' YELLOW=$'\033[33m' RESET=$'\033[0m'
else
  BOLD='' RED='' GREEN='' YELLOW='' RESET=''
fi

STAGES=()   # "name|status|seconds"
FAILED=()

header() {
  echo
  echo "${BOLD}==> $*${RESET}"
}

# stage NAME COMMAND...: runs one stage, records its result, never exits.
stage() {
  local name="$1"
  shift
  header "$name"
  echo "+ $*"
  local start=$SECONDS rc=0
  "$@" </dev/null || rc=$?
  local took=$((SECONDS - start))
  if [[ $rc -eq 0 ]]; then
    echo "${GREEN}--- $name: ok (${took}s)${RESET}"
    STAGES+=("$name|ok|$took")
  else
    echo "${RED}--- $name: FAILED with exit code $rc (${took}s)${RESET}"
    STAGES+=("$name|FAILED (exit $rc)|$took")
    FAILED+=("$name")
  fi
  return 0
}

# not_run NAME WHY: records a stage that could not run as failed.
not_run() {
  header "$1"
  echo "${RED}--- $1: not run: $2${RESET}"
  STAGES+=("$1|FAILED (not run: $2)|0")
  FAILED+=("$1")
}

summary() {
  header "summary"
  local s name status took
  for s in "${STAGES[@]}"; do
    IFS='|' read -r name status took <<<"$s"
    if [[ $status == ok ]]; then
      printf '  %s%-16s %-32s%s %5ss\n' "$GREEN" "$name" "$status" "$RESET" "$took"
    elif [[ $status == skipped* ]]; then
      printf '  %s%-16s %-32s%s %5ss\n' "$YELLOW" "$name" "$status" "$RESET" "$took"
    else
      printf '  %s%-16s %-32s%s %5ss\n' "$RED" "$name" "$status" "$RESET" "$took"
    fi
  done
  if [[ ${#FAILED[@]} -gt 0 ]]; then
    echo "${RED}${BOLD}FAILED: ${FAILED[*]}${RESET}"
    return 1
  fi
  echo "${GREEN}${BOLD}all stages passed${RESET}"
}

# A cargo subcommand that ships as a rustup component (rustfmt, clippy): add it if missing.
ensure_component() {
  local sub="$1" component="$2"
  if cargo "$sub" --version >/dev/null 2>&1; then
    return 0
  fi
  if command -v rustup >/dev/null 2>&1; then
    echo "cargo $sub is missing; installing the $component component"
    rustup component add "$component" || true
  fi
  cargo "$sub" --version >/dev/null 2>&1 || {
    echo "error: cargo $sub is not available (rustup component add $component)" >&2
    return 1
  }
}

# ---------------------------------------------------------------------------------------
# Python virtualenv with the pinned clients.

python_ok() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null
}

venv_stamp() {
  # What the installed set depends on: the requirements and the interpreter.
  "$VENV/bin/python" - "$REQUIREMENTS" <<'EOF'
import hashlib, sys
h = hashlib.sha256(open(sys.argv[1], "rb").read())
h.update(sys.version.encode())
print(h.hexdigest())
EOF
}

# pip for the venv: its own, or (venv created without pip) the base interpreter's pip
# pointed at it.
venv_pip() {
  if "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip "$@"
  else
    "$PYTHON" -m pip --python "$VENV/bin/python" "$@"
  fi
}

create_venv() {
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  echo "creating a virtualenv at $VENV with $("$PYTHON" --version 2>&1)"
  if "$PYTHON" -m venv "$VENV" 2>/tmp/riffle-venv.$$.err; then
    rm -f /tmp/riffle-venv.$$.err
    return 0
  fi
  # Debian without python3-venv has no ensurepip: try virtualenv, then a venv without pip
  # filled by the base interpreter's pip.
  cat /tmp/riffle-venv.$$.err >&2 || true
  rm -f /tmp/riffle-venv.$$.err
  rm -rf "$VENV"
  if "$PYTHON" -m virtualenv --version >/dev/null 2>&1; then
    echo "python -m venv failed; using virtualenv"
    "$PYTHON" -m virtualenv -q "$VENV" && return 0
    rm -rf "$VENV"
  fi
  echo "python -m venv failed; creating the venv without pip and installing with the base pip"
  "$PYTHON" -m venv --without-pip "$VENV" || return 1
  "$PYTHON" -m pip --version >/dev/null 2>&1 || {
    echo "error: no pip for $PYTHON; install python3-venv or python3-pip" >&2
    return 1
  }
}

setup_venv() {
  if ! command -v "$PYTHON" >/dev/null 2>&1 || ! python_ok "$PYTHON"; then
    echo "error: $PYTHON (3.10 or later) is needed for the Python tests; set RIFFLE_PYTHON" >&2
    return 1
  fi
  mkdir -p "$(dirname "$VENV")"
  # One installer at a time (CI jobs on one machine share the venv).
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$VENV.lock"
    flock 9
  fi
  local rc=0
  setup_venv_locked || rc=$?
  if command -v flock >/dev/null 2>&1; then
    exec 9>&-
  fi
  return $rc
}

setup_venv_locked() {
  local stamp_file="$VENV/.riffle-requirements.sha256"
  if [[ -x "$VENV/bin/python" ]] && python_ok "$VENV/bin/python"; then
    if [[ -f $stamp_file && "$(cat "$stamp_file")" == "$(venv_stamp)" ]] &&
      "$VENV/bin/python" -c 'import pinotdb, sqlalchemy, pytest' 2>/dev/null; then
      echo "virtualenv $VENV is up to date: $(grep -v '^#' "$REQUIREMENTS" | grep . | tr '\n' ' ')"
      return 0
    fi
  else
    create_venv || return 1
  fi
  echo "installing from tests/python/requirements.txt: $(grep -v '^#' "$REQUIREMENTS" | grep . | tr '\n' ' ')"
  venv_pip install -q -r "$REQUIREMENTS" || return 1
  "$VENV/bin/python" -c 'import pinotdb, sqlalchemy, pytest' || return 1
  venv_stamp >"$stamp_file"
  echo "installed into $VENV"
}

# ---------------------------------------------------------------------------------------

# cargo fmt --check, with a long diff cut short and the files to format listed.
fmt_check() {
  local out rc=0 n
  out="$(cargo fmt --all -- --check 2>&1)" || rc=$?
  if [[ $rc -ne 0 ]]; then
    n="$(printf '%s\n' "$out" | wc -l)"
    printf '%s\n' "$out" | head -n 120
    if [[ $n -gt 120 ]]; then
      echo "... ($((n - 120)) more lines of diff)"
    fi
    echo "files that need 'cargo fmt --all':"
    printf '%s\n' "$out" | sed -nE "s#^Diff in ($ROOT/)?(.+):[0-9]+:.*\$#  \2#p" | sort -u
  fi
  return $rc
}

run_rust_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    echo "(cargo nextest)"
    cargo nextest run --workspace --no-fail-fast
  else
    echo "(cargo nextest not installed: cargo test)"
    cargo test --workspace --no-fail-fast
  fi
}

run_pytest() {
  local rc=0 rc2=0
  # shellcheck disable=SC2086 # PYTEST_ARGS is split on purpose
  RIFFLE_BIN="$CARGO_TARGET_DIR/debug/riffle" "$VENV/bin/python" -m pytest -q tests/python ${PYTEST_ARGS:-} || rc=$?
  if [[ $rc -eq 5 ]]; then
    echo "pytest collected no tests: that is a failure" >&2
  fi
  # The tests whose servers bind every address (kinesis-mock) run in a private network
  # namespace with only loopback up; the outer namespace is recorded so that they can
  # check they are not in it.
  echo "+ unshare -n: pytest -m netns"
  # shellcheck disable=SC2086
  RIFFLE_BIN="$CARGO_TARGET_DIR/debug/riffle" RIFFLE_OUTER_NETNS="$(readlink /proc/self/ns/net)" \
    unshare -n sh -c 'ip link set lo up && exec "$@"' sh \
    "$VENV/bin/python" -m pytest -q tests/python -m netns ${PYTEST_ARGS:-} || rc2=$?
  if [[ $rc2 -eq 5 ]]; then
    echo "pytest -m netns collected no tests: that is a failure" >&2
  fi
  [[ $rc -ne 0 ]] && return $rc
  return $rc2
}

echo "${BOLD}riffle test suite${RESET} in $ROOT"
echo "  CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
echo "  RIFFLE_VENV=$VENV"

# 1. Formatting: cheap, so first.
if ensure_component fmt rustfmt </dev/null; then
  stage "format" fmt_check
else
  not_run "format" "rustfmt unavailable"
fi
if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "formatting differs: run 'cargo fmt --all' (the other stages still run)"
fi

# 2. Python clients (network only when the requirements changed).
stage "python env" setup_venv
venv_failed=0
[[ " ${FAILED[*]} " == *" python env "* ]] && venv_failed=1

# 2b. Test brokers: Tansu and noida-db (Kafka protocol), kinesis-mock, pulsar-lite,
# redis-server, nats-server, moto (S3) and socat (TLS).
install_tansu() {
  local path
  path="$(./scripts/tansu.sh)" || return 1
  export RIFFLE_TANSU="$path"
  echo "tansu: $RIFFLE_TANSU ($("$RIFFLE_TANSU" --version))"
  # An S3-compatible server (moto) for Tansu's persistent storage in the outage test.
  path="$(./scripts/moto.sh)" || return 1
  export RIFFLE_MOTO="$path"
  echo "moto_server: $RIFFLE_MOTO"
  # A TLS terminator in front of Tansu for the SSL tests.
  ./scripts/socat.sh >/dev/null || return 1
  echo "socat: $(command -v socat)"
  # The second Kafka-protocol broker: noida-db, from the pinned requirements (its wheel
  # carries the binary), for the Rust conformance run and tests/python/test_kafka_noida.py.
  # kinesis-mock (npm), run by the Kinesis tests in a private network namespace.
  path="$(./scripts/kinesis-mock.sh)" || return 1
  export RIFFLE_KINESIS_MOCK="$path"
  echo "kinesis-mock: $RIFFLE_KINESIS_MOCK (node $(node --version))"
  # pulsar-lite, from the pinned requirements (its wheel carries the binary).
  RIFFLE_PULSAR_LITE="$("$VENV/bin/python" -c 'import os, pulsar_lite; print(os.path.join(os.path.dirname(pulsar_lite.__file__), "bin", "pulsar-lite"))')" || return 1
  export RIFFLE_PULSAR_LITE
  [[ -x "$RIFFLE_PULSAR_LITE" ]] || { echo "error: pulsar-lite is missing from $VENV" >&2; return 1; }
  echo "pulsar-lite: $RIFFLE_PULSAR_LITE"
  # redis-server, unpacked from Debian's packages (nothing installed or started).
  path="$(./scripts/redis.sh)" || return 1
  export RIFFLE_REDIS="$path"
  echo "redis-server: $RIFFLE_REDIS"
  # nats-server with JetStream, unpacked from Debian's package (nothing installed or started).
  path="$(./scripts/nats.sh)" || return 1
  export RIFFLE_NATS="$path"
  echo "nats-server: $RIFFLE_NATS"
  export RIFFLE_NOIDA="$VENV/bin/noida-db"
  [[ -x "$RIFFLE_NOIDA" ]] || { echo "error: noida-db is missing from $VENV" >&2; return 1; }
  echo "noida-db: $RIFFLE_NOIDA"
}
stage "test brokers" install_tansu

# 3. Build once for everything below.
stage "build" cargo build --workspace --tests --bins
build_failed=0
[[ " ${FAILED[*]} " == *" build "* ]] && build_failed=1
# Test binaries of earlier builds (every change gives them new hashes) are never removed by
# cargo and once filled the disk: remove those no current build names.
if [[ $build_failed == 0 ]]; then
  stage "prune build directory" python3 scripts/prune-target.py
fi

# 4. Rust tests.
stage "rust tests" run_rust_tests

# 5. Lints.
if [[ "${RIFFLE_SKIP_LINT:-0}" == 1 ]]; then
  header "clippy"
  echo "skipped (RIFFLE_SKIP_LINT=1)"
  STAGES+=("clippy|skipped|0")
elif ensure_component clippy clippy </dev/null; then
  stage "clippy" cargo clippy --workspace --all-targets -- -D warnings
else
  not_run "clippy" "clippy unavailable"
fi

# 6. Python end-to-end tests against the binary just built (never a stale one).
if [[ $build_failed == 1 ]]; then
  not_run "python tests" "the build failed"
elif [[ $venv_failed == 1 ]]; then
  not_run "python tests" "the virtualenv could not be set up"
else
  stage "python tests" run_pytest
fi

summary
