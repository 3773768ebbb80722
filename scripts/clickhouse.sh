#!/usr/bin/env bash
# Installs ClickHouse (Debian's clickhouse-server 18.16, the peer the Kafka benchmark
# compares with) and prints the path of a script that starts it on loopback.
#
# Debian's packages and the libraries they need are fetched with `apt-get download` and
# unpacked into ${RIFFLE_TOOLS:-$HOME/.cache/riffle/tools}/clickhouse without installing
# them (no service is registered or started). The start script takes a data directory and
# an HTTP port: `clickhouse-start DIR HTTP_PORT` runs the server in the foreground with a
# config that listens on 127.0.0.1 only, whose Kafka consumers start a new group at the
# earliest offset (librdkafka's `auto.offset.reset`, so that ClickHouse drains a topic's
# backlog as Riffle does). Only the benchmark uses it; the tests do not.
set -euo pipefail

TOOLS="${RIFFLE_TOOLS:-$HOME/.cache/riffle/tools}"
DEST="$TOOLS/clickhouse"
RUN="$DEST/clickhouse-start"
PKGS=(clickhouse-server clickhouse-common libboost-filesystem1.74.0 libboost-program-options1.74.0
  libcapnp-0.9.2 libcctz2 libcpuinfo0 libdouble-conversion3 libfarmhash0 libicu72 libjemalloc2
  liblz4-1 libmariadb3 libmetrohash1 libpocodata80 libpocodataodbc80 libpocofoundation80
  libpocomongodb80 libpoconet80 libpoconetssl80 libpocoutil80 libpocoxml80 libpocojson80
  libpococrypto80 librdkafka1 libre2-9 libzstd1 libodbc2 libpcre3 libltdl7)

if [[ -x "$RUN" ]]; then
  echo "$RUN"
  exit 0
fi
command -v apt-get >/dev/null || { echo "error: apt-get is needed to fetch clickhouse-server" >&2; exit 1; }
rm -rf "$DEST"
mkdir -p "$DEST/pkgs" "$DEST/root"
echo "fetching clickhouse-server 18.16 (Debian's packages) into $DEST" >&2
(
  cd "$DEST/pkgs"
  if ! apt-get download -qq "${PKGS[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get download -qq "${PKGS[@]}" >/dev/null
  fi
)
for deb in "$DEST"/pkgs/*.deb; do
  dpkg -x "$deb" "$DEST/root"
done
cat > "$RUN" <<WRAP
#!/bin/sh
# clickhouse-start DIR HTTP_PORT: ClickHouse in the foreground, on 127.0.0.1 only, data in DIR.
set -e
DIR="\$1"; PORT="\$2"
mkdir -p "\$DIR/data" "\$DIR/log"
sed -e "s#/var/log/clickhouse-server#\$DIR/log#g; s#/var/lib/clickhouse#\$DIR/data#g" \\
    -e "s#<http_port>8123#<http_port>\$PORT#; s#<tcp_port>9000#<tcp_port>\$((PORT+1))#" \\
    -e "s#<interserver_http_port>9009#<interserver_http_port>\$((PORT+2))#" \\
    -e "s#<listen_host>::1</listen_host>##; s#users.xml#\$DIR/users.xml#" \\
    -e "s#</yandex>#<kafka><auto_offset_reset>smallest</auto_offset_reset></kafka></yandex>#" \\
    "$DEST/root/etc/clickhouse-server/config.xml" > "\$DIR/config.xml"
cp "$DEST/root/etc/clickhouse-server/users.xml" "\$DIR/users.xml"
export LD_LIBRARY_PATH="$DEST/root/usr/lib/x86_64-linux-gnu:$DEST/root/lib/x86_64-linux-gnu"
exec "$DEST/root/usr/sbin/clickhouse-server" --config-file="\$DIR/config.xml"
WRAP
chmod +x "$RUN"
echo "$RUN"
