#!/usr/bin/env bash
# The exec client driver and the generic service driver through real sessions:
# exit statuses, timeouts, signals, metric extraction and its failures,
# prepare and stop steps, cwd/env, and a service port reaching a client.
. "$(dirname "$0")/lib.sh"
R=tests/recipes/drivers
json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

# Runs recipe $1; sets rc, id, ms (wall time of `sonde run`), state, reason
# and dir (from `sonde status --json`), rep (the JSON report) and mets (one
# line per metric of trial 1: "COMPONENT.NAME=VALUE[ UNIT]", %g: 3.0 is 3).
# One python3 call per run: its start-up is slow on small machines.
run() {
  local t0; t0=$(date +%s%N)
  rm -f "$WS"/{run.out,status.json,report.json,state,reason,dir,mets}
  "$SONDE" -q run "$R/$1.yaml" >"$WS/run.out" 2>&1; rc=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
  id=$(sed -n 's/^session: //p' "$WS/run.out")
  [ -n "$id" ] || id=$(latest_id)
  "$SONDE" status "$id" --json >"$WS/status.json"
  "$SONDE" report "$id" --format json >"$WS/report.json"
  rep=$(<"$WS/report.json")
  python3 - "$WS" <<'PY'
import json, sys
ws = sys.argv[1]
s = json.load(open(ws + "/status.json"))
d = json.load(open(ws + "/report.json"))
for k in ("state", "reason", "dir"):
    open(f"{ws}/{k}", "w").write(s[k] or "")
with open(ws + "/mets", "w") as f:
    for m in d["trials"][0]["metrics"] if d["trials"] else []:
        f.write(f"{m['component']}.{m['name']}=%g%s\n" % (m["value"], " " + m["unit"] if m["unit"] else ""))
PY
  state=$(<"$WS/state") reason=$(<"$WS/reason") dir=$(<"$WS/dir")
}
# Asserts the outcome of the last run: name, exit status, state.
outcome() {
  check "$1: exits $2 ($rc)" test "$rc" -eq "$2"
  check "$1: state $3 ($state)" test "$state" = "$3"
  check "$1: session dir exists" test -d "$dir/trial-001"
  check "$1: no process left" no_procs_left "$id"
  check "$1: took < 5 s ($ms ms)" test "$ms" -lt 5000
}
has() { # name, expected fixed text in $reason
  check "$1: reason has '$2'" grep -qF -- "$2" <<<"$reason"
}
# Metric $2 of component $1 in trial 1 of the last run, or "missing".
metric() {
  local v; v=$(sed -n "s/^$1\.$2=//p" "$WS/mets")
  echo "${v:-missing}"
}

# 1. A client command exiting 3.
run exit-status
outcome exit-status 1 failed
has exit-status "client load: exit status 3: disk on fire"
has exit-status "$dir/trial-001/load/stderr.log"
check "exit-status: component exit_code 3 in the report" json "
c=d['trials'][0]['components'][0]; assert c['name']=='load' and c['exit_code']==3, c" <<<"$rep"
check "exit-status: exit_code metric 3" test "$(metric load exit_code)" = 3

# 2. A client over its own timeout.
run client-timeout
outcome client-timeout 1 failed
has client-timeout "client load: timed out after 1s"
check "client-timeout: stopped within 3 s ($ms ms)" test "$ms" -lt 3000

# 3. A client killed by a signal.
run client-signal
outcome client-signal 1 failed
has client-signal "client load: killed by signal 9 (SIGKILL)"

# 4. A required metric missing; an optional one missing is fine.
run metric-missing
outcome metric-missing 1 failed
has metric-missing "client load: metric 'latency' not found in stdout (regex 'latency average = ([0-9.]+) ms')"
check "metric-missing: the metric that was found is kept" test "$(metric load tps)" = 12.5
run metric-optional
outcome metric-optional 0 "done"
check "metric-optional: tps recorded" test "$(metric load tps)" = 12.5
check "metric-optional: missing optional metrics not recorded" \
  test "$(metric load latency)$(metric load iops)" = missingmissing
run json-invalid
outcome json-invalid 1 failed
has json-invalid "client load: metric 'iops' in stdout (json 'jobs[0].read.iops'): not valid JSON"

# 5. Metric extraction: occurrence, scale, unit_group, JSON paths.
run extract
outcome extract 0 "done"
check "extract: occurrence first = 10 ms" test "$(metric text first)" = "10 ms"
check "extract: occurrence last = 30 ms" test "$(metric text last)" = "30 ms"
check "extract: occurrence defaults to last (30)" test "$(metric text default_last)" = 30
check "extract: scale 0.001 turns 10 ms into 0.01 s" test "$(metric text first_s)" = "0.01 s"
check "extract: unit_group takes the unit from the output" test "$(metric text size)" = "4 KiB"
check "extract: json jobs[0].read.iops = 1234.5" test "$(metric fio iops)" = "1234.5 IOPS"
check "extract: json \$.jobs[0].read.lat_ns.mean x 1e-6 = 0.25 ms" test "$(metric fio lat)" = "0.25 ms"

# 6. A failing prepare step: the measured command never runs.
run prepare-fails
outcome prepare-fails 1 failed
has prepare-fails "client load failed to start: prepare step 1 (sh -c echo preparing; exit 4) failed: exit status 4"
has prepare-fails "$dir/trial-001/load/steps.log"
check "prepare-fails: the step's output is in steps.log" grep -qx preparing "$dir/trial-001/load/steps.log"
check "prepare-fails: the measured command never ran" test ! -e "$dir/trial-001/load/work/measured-ran"

# 7. A prepare step whose program does not exist.
run prepare-missing
outcome prepare-missing 1 failed
has prepare-missing "client load failed to start: prepare step 2: cannot run '/nonexistent/sonde-no-such-prepare'"
check "prepare-missing: the measured command never ran" test ! -e "$dir/trial-001/load/work/measured-ran"

# 8. A client whose cwd does not exist.
run cwd-missing
outcome cwd-missing 1 failed
has cwd-missing "client load failed to start: cannot change directory to '/nonexistent/sonde-no-such-dir'"

# 9. A generic service whose program does not exist.
run service-missing
outcome service-missing 1 failed
has service-missing "service ghost failed to start: cannot run '/nonexistent/sonde-no-such-server'"

# 10. A failing prepare step of a generic service: neither it nor the client runs.
run service-prepare-fails
outcome service-prepare-fails 1 failed
has service-prepare-fails "service db failed to start: prepare step 1 (sh -c echo initdb failed >&2; exit 2) failed: exit status 2"
check "service-prepare-fails: the step's stderr is in steps.log" \
  grep -qx "initdb failed" "$dir/trial-001/db/steps.log"
check "service-prepare-fails: the service's command never ran" test ! -e "$dir/trial-001/db/work/server-ran"
check "service-prepare-fails: the client never ran" test ! -e "$dir/trial-001/load/work/client-ran"

# 11. Generic service: prepare writes what the command reads; stop runs at teardown.
run service-prepare-stop
outcome service-prepare-stop 0 "done"
sd=$dir/trial-001/svc
check "service-prepare-stop: prepare wrote config.txt" grep -qx prepared-token-42 "$sd/work/config.txt"
check "service-prepare-stop: the service read it" grep -qx config=prepared-token-42 "$sd/stdout.log"
check "service-prepare-stop: the client read it through services.svc.dir" \
  test "$(metric load token)" = 42
check "service-prepare-stop: stop command ran while the service was alive" \
  grep -qx stopped-while-alive "$sd/work/stop-marker"

# 12. A failing stop command is a warning; the service is stopped anyway.
run stop-fails
outcome stop-fails 0 "done"
check "stop-fails: a warning event names the stop command" json "
assert any(e['level']=='warning' and 'service svc: stop command (sh -c echo stop-says-no; exit 7) failed: exit status 7' in e['message'] for e in d['events']), d['events']" <<<"$rep"
check "stop-fails: the stop command's output is in steps.log" \
  grep -qx stop-says-no "$dir/trial-001/svc/steps.log"

# 13. cwd and env reach the client's command.
run cwd-env
outcome cwd-env 0 "done"
logs=$("$SONDE" logs "$id" load)
check "cwd-env: the command ran in cwd" contains "$logs" "^pwd=$(realpath "$dir")\$"
check "cwd-env: PWD is the cwd" contains "$logs" "^PWD=$dir\$"
check "cwd-env: the client's env wins over the benchmark's" contains "$logs" "^FOO=from-client\$"
check "cwd-env: the benchmark's env reaches the client" contains "$logs" "^BAR=bar-value\$"

# 14. A service's port reaches a client through ${services.web.port}.
run service-port
outcome service-port 0 "done"
check "service-port: the client's GET answered 200" test "$(metric get status)" = 200
check "service-port: the port the client used is the service's" json "
c=[c for c in d['trials'][0]['components'] if c['name']=='web'][0]
assert str(int(float('$(metric get port)'))) in ' '.join(c['command']), c['command']" <<<"$rep"

finish
