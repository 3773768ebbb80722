#!/usr/bin/env bash
# Installs redis-server for the Redis Streams tests, and prints the path of a script that
# starts it.
#
# Debian's packages (redis-tools, which holds the server, and the libraries it needs) are
# fetched with `apt-get download` and unpacked into
#   ${RIFFLE_TOOLS:-$HOME/.cache/riffle/tools}/redis
# without installing them: no service is registered or started on the machine. The tests
# start the server on a free loopback port (crates/riffle-redis/src/testing.rs).
# Idempotent: a working copy is kept.
set -euo pipefail

TOOLS="${RIFFLE_TOOLS:-$HOME/.cache/riffle/tools}"
DEST="$TOOLS/redis"
RUN="$DEST/redis-server"

if [[ -x "$RUN" ]] && "$RUN" --version >/dev/null 2>&1; then
  echo "$RUN"
  exit 0
fi
command -v apt-get >/dev/null || { echo "error: apt-get is needed to fetch redis-server" >&2; exit 1; }
rm -rf "$DEST"
mkdir -p "$DEST/pkgs" "$DEST/root"
echo "fetching redis-server (Debian's redis-tools) into $DEST" >&2
(
  cd "$DEST/pkgs"
  if ! apt-get download -qq redis-tools libjemalloc2 liblzf1 >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get download -qq redis-tools libjemalloc2 liblzf1 >/dev/null
  fi
)
for deb in "$DEST"/pkgs/*.deb; do
  dpkg -x "$deb" "$DEST/root"
done
# The package's redis-server is a link to redis-check-rdb, which serves when called by that
# name.
[[ -x "$DEST/root/usr/bin/redis-check-rdb" ]] || { echo "error: no redis server binary in the packages" >&2; exit 1; }
ln -sf redis-check-rdb "$DEST/root/usr/bin/redis-server"
BIN="$DEST/root/usr/bin/redis-server"
cat > "$RUN" <<WRAP
#!/bin/sh
# redis-server from Debian's redis-tools, with the libraries unpacked beside it.
export LD_LIBRARY_PATH="$DEST/root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$BIN" "\$@"
WRAP
chmod +x "$RUN"
"$RUN" --version >&2
echo "$RUN"
