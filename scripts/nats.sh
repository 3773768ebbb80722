#!/usr/bin/env bash
# Installs nats-server (with JetStream) for the NATS tests, and prints the path of its binary.
#
# Debian's package is fetched with `apt-get download` and unpacked into
#   ${RIFFLE_TOOLS:-$HOME/.cache/riffle/tools}/nats
# without installing it: no service is registered or started. The tests start the server on
# a free loopback port (crates/riffle-nats/src/testing.rs). Idempotent.
set -euo pipefail

TOOLS="${RIFFLE_TOOLS:-$HOME/.cache/riffle/tools}"
DEST="$TOOLS/nats"
BIN="$DEST/root/usr/sbin/nats-server"

if [[ -x "$BIN" ]] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi
command -v apt-get >/dev/null || { echo "error: apt-get is needed to fetch nats-server" >&2; exit 1; }
rm -rf "$DEST"
mkdir -p "$DEST/pkgs" "$DEST/root"
echo "fetching nats-server (Debian's package) into $DEST" >&2
(
  cd "$DEST/pkgs"
  if ! apt-get download -qq nats-server >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get download -qq nats-server >/dev/null
  fi
)
for deb in "$DEST"/pkgs/*.deb; do
  dpkg -x "$deb" "$DEST/root"
done
[[ -x "$BIN" ]] || { echo "error: no nats-server in the package" >&2; exit 1; }
"$BIN" --version >&2
echo "$BIN"
