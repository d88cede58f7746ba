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

# A free TCP port on the loopback (free when asked: another process may take it).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# scrape_until PORT FILE REGEX: fetches http://127.0.0.1:PORT/metrics into FILE
# until a line matches REGEX (grep), for up to 15 s; 0 when one did.
scrape_until() {
  local i
  for ((i = 0; i < 150; i++)); do
    curl -sf "http://127.0.0.1:$1/metrics" >"$2" 2>/dev/null && grep -q "$3" "$2" && return 0
    sleep 0.1
  done
  return 1
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

# One client's benchmark, written and run: run_client DRIVER COMPONENT NAME [LINE...]
# writes $WS/NAME.yaml (the client COMPONENT of driver DRIVER, with: RUN_WITH's lines then
# the LINEs, timeout RUN_TIMEOUT), runs it, saves its report as $WS/NAME.json and returns
# sonde's exit status; val/reason read that report.
RUN_WITH=()
RUN_TIMEOUT=10m
run_client() {
  local driver=$1 comp=$2 name=$3; shift 3
  {
    printf 'kind: benchmark\nname: %s-%s\ntimeout: %s\nclients:\n  %s:\n    driver: %s\n    with:\n' \
      "$driver" "$name" "$RUN_TIMEOUT" "$comp" "$driver"
    [ ${#RUN_WITH[@]} -eq 0 ] || printf '      %s\n' "${RUN_WITH[@]}"
    printf '      %s\n' "$@"
  } >"$WS/$name.yaml"
  "$SONDE" -q run "$WS/$name.yaml" >"$WS/$name.out" 2>&1
  local rc=$?
  save_report "$name"
  return $rc
}
save_report() { "$SONDE" report latest --format json >"$WS/$1.json"; } # NAME
val() { # NAME METRIC -> the metric of the first trial of $WS/NAME.json ('' when absent)
  python3 -c "
import json
d = json.load(open('$WS/$1.json'))
v = [x['value'] for x in d['trials'][0]['metrics'] if x['name'] == '$2']
print(v[0] if v else '')"
}
reason() { python3 -c "import json; print(json.load(open('$WS/$1.json'))['trials'][0].get('reason') or '')"; }
py() { python3 -c "import sys; sys.exit(0 if ($1) else 1)"; } # a Python condition holds
