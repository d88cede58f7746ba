#!/usr/bin/env bash
# Runs the whole test suite (unit + integration) and prints "N passed, N failed".
#   scripts/test.sh [BUILD_DIR] [extra meson setup options...]
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test || exit 1
dir=${1:-build}
shift || true
scripts/build.sh "$dir" -Dtests=enabled "$@" || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
. scripts/env.sh
export SONDE_HOME=$(mktemp -d /var/tmp/sonde-test.XXXXXX 2>/dev/null || mktemp -d)
chmod 755 "$SONDE_HOME"
# SONDE_TEST_ARGS: more `meson test` arguments (CI's sanitizer run: --no-suite external)
# shellcheck disable=SC2086
meson test -C "$dir" --print-errorlogs --no-rebuild --num-processes 2 ${SONDE_TEST_ARGS:-} 2>&1 |
  tee "$dir/test-output.txt"
status=${PIPESTATUS[0]}
# The GPU checks (tests/gpu/) need an NVIDIA GPU: run where there is one, and
# counted as skipped, visibly, where there is none.
gpu=0
tests/gpu/gpu-check.sh "$dir/sonde" 2>&1 | tee "$dir/gpu-output.txt"
gpu=${PIPESTATUS[0]}
rm -rf "$SONDE_HOME"
python3 - "$dir/meson-logs/testlog.json" "$gpu" <<'PY'
import json, sys
ok = bad = skip = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["result"] in ("OK", "EXPECTEDFAIL"): ok += 1
    elif r["result"] == "SKIP": skip += 1
    else: bad += 1
gpu = int(sys.argv[2])
if gpu == 0: ok += 1
elif gpu != 77: bad += 1
note = ", 1 skipped (tests/gpu: no NVIDIA GPU here)" if gpu == 77 else ""
print(f"{ok} passed, {bad + skip} failed{note}")
PY
[ "$gpu" -eq 0 ] || [ "$gpu" -eq 77 ] || status=1
exit $status
