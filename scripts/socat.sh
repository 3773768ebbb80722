#!/usr/bin/env bash
# Installs socat (Debian's package) if it is missing, and prints its path. The Kafka TLS
# test (crates/riffle/tests/kafka_tls.rs) puts `socat OPENSSL-LISTEN:...` in front of a
# Tansu broker as its TLS terminator, since Tansu 0.6's own TLS flags do not work there.
#
# Idempotent and quiet: nothing is done when socat is on the PATH. Installing needs
# apt-get as root (or sudo without a password).
set -euo pipefail

if command -v socat >/dev/null 2>&1; then
  command -v socat
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "error: socat is not installed and this user cannot run apt-get: apt-get install socat" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: socat is not installed and there is no apt-get: install socat" >&2
  exit 1
fi

echo "installing socat with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or old on a fresh machine: update once if the install
# fails.
if ! "${SUDO[@]}" apt-get install -y -qq socat >/dev/null 2>&1; then
  "${SUDO[@]}" apt-get update -qq >/dev/null
  "${SUDO[@]}" apt-get install -y -qq socat >/dev/null
fi
command -v socat >/dev/null 2>&1 || {
  echo "error: apt-get did not install socat" >&2
  exit 1
}
command -v socat
