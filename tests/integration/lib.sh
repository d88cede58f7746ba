# Helpers shared by the integration tests (sourced). Each test script gets the
# sonde binary as $1, runs from the repository root, and ends with
# "N passed, N failed"; it exits 1 when anything failed.
set -uo pipefail
SONDE=${1:?usage: $0 PATH-TO-SONDE}
SONDE=$(realpath "$SONDE")
PASS=0
FAIL=0
WS=$(mktemp -d /var/tmp/sonde-it.XXXXXX)
chmod 755 "$WS"
export SONDE_HOME=$WS
[ -f scripts/env.sh ] && . scripts/env.sh
export PATH="$(dirname "$SONDE")/src/sim:$PATH" # sonde-sim of the same build

ok() { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
check() { # description, then a command that must succeed
  local d=$1; shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}
contains() { grep -q -- "$2" <<<"$1"; } # text, fixed regex
not_contains() { ! grep -q -- "$2" <<<"$1"; }
finish() {
  rm -rf "$WS"
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
}

# Pids of live processes started for a session (they carry SONDE_SESSION_ID).
session_procs() {
  local id=$1 p
  for p in /proc/[0-9]*; do
    if grep -qzx "SONDE_SESSION_ID=$id" "$p/environ" 2>/dev/null; then
      local st; st=$(awk '{print $3}' "$p/stat" 2>/dev/null)
      [ "$st" = Z ] || echo "${p#/proc/}"
    fi
  done
}
no_procs_left() { [ -z "$(session_procs "$1")" ]; }

latest_id() { "$SONDE" list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])'; }
session_field() { # id field
  "$SONDE" status "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'] or '')"
}
# Waits (up to $2 s) until `sonde status` of the latest session says "running"
# and at least one client runs.
wait_running() {
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    if "$SONDE" status --json 2>/dev/null | python3 -c '
import json,sys
s=json.load(sys.stdin)
sys.exit(0 if s["state"]=="running" and any(c["role"]=="client" and c["alive"] for c in s["components"]) else 1)' 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}
