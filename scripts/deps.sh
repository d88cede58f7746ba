#!/usr/bin/env bash
# Installs what sonde needs on Debian 12 (as root): build tools and libraries,
# and the real components the quickstart and the tests start (PostgreSQL; libpq for
# the sql client).
#   scripts/deps.sh            build + run dependencies
#   scripts/deps.sh --test     also what the test suite needs (cmocka, clang for fuzzing, the
#                              S3 server, the Debian 13 root the Chroma server runs in, ip for
#                              the DNS test's network namespace)
set -euo pipefail
pkgs=(build-essential pkg-config meson ninja-build git
      libyaml-dev libsqlite3-dev libjansson-dev libssl-dev zlib1g-dev liburing-dev libpq-dev libmariadb-dev
      libhdf5-dev libfaiss-dev libopenblas-dev
      postgresql postgresql-contrib procps tar gzip)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(libcmocka-dev clang libclang-rt-dev clang-format sqlite3 python3 openssl curl fio
        mariadb-server debootstrap prometheus prometheus-node-exporter iproute2)
  # s3rver (npm) for the s3 client's tests: Debian's node and npm unless some are there
  command -v node >/dev/null || pkgs+=(nodejs)
  command -v npm >/dev/null || pkgs+=(npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "sonde: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "sonde: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "${1:-}" = "--test" ] && [ ! -x "$(dirname "$0")/../tests/s3rver/node_modules/.bin/s3rver" ]; then
  echo "sonde: npm ci in tests/s3rver (s3rver for the s3 tests)" >&2
  (cd "$(dirname "$0")/../tests/s3rver" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
if [ "${1:-}" = "--test" ]; then
  # Chroma's server (npm chromadb) needs a newer glibc: a Debian 13 root, built once (as root)
  if [ "$(id -u)" -eq 0 ]; then
    "$(dirname "$0")/chroma-local.sh" setup
  elif ! "$(dirname "$0")/chroma-local.sh" check; then
    echo "sonde: no Chroma root (the chroma tests fail): as root, scripts/chroma-local.sh setup" >&2
  fi
fi
