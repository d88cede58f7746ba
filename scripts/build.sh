#!/usr/bin/env bash
# Configures and builds sonde into build/ (or $1); further arguments are meson
# options (applied to an existing build directory too). Quiet unless it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ -f "$dir/build.ninja" ]; then
  [ $# -eq 0 ] || meson configure "$dir" "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
else
  meson setup "$dir" "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
fi
ninja -C "$dir" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
