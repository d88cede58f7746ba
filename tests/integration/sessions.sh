#!/usr/bin/env bash
# Real sessions on the local backend: success, a service dying mid-trial,
# SIGINT, `sonde stop`, SIGKILL of sonde itself, a readiness timeout.
. "$(dirname "$0")/lib.sh"
R=tests/recipes/sessions
json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

# 1. A successful session: matrix x repeat, parsed metrics, monitors, reports, logs.
out=$("$SONDE" -q run $R/ok.yaml 2>&1); rc=$?
check "ok.yaml exits 0 ($rc)" test "$rc" -eq 0
id=$(latest_id)
rep=$("$SONDE" report "$id" --format json)
check "4 trials (2 matrix points x 2 repeats)" json "assert len(d['trials'])==4" <<<"$rep"
check "metric 'answer' parsed with its unit" json "
v=sorted(m['value'] for t in d['trials'] for m in t['metrics'] if m['name']=='answer')
u={m['unit'] for t in d['trials'] for m in t['metrics'] if m['name']=='answer'}
assert v==[21,21,42,42], v; assert u=={'ms'}, u" <<<"$rep"
check "json path metric a.b[1] = 2.5" json "
assert all(any(m['name']=='json_b' and m['value']==2.5 for m in t['metrics']) for t in d['trials'])" <<<"$rep"
check "node monitor series stored" json "
assert any(s['name']=='cpu_percent' and s['component']=='node' for s in d['trials'][0]['series'])" <<<"$rep"
check "session state done" test "$(session_field "$id" state)" = done
check "summary printed with the report path" contains "$out" "report: "
check "no process left after ok.yaml" no_procs_left "$id"
logs=$("$SONDE" logs "$id")
check "logs lists stderr of the client" contains "$logs" "trial-001/probe/stderr.log"
check "logs COMPONENT prints its output" contains "$("$SONDE" logs "$id" probe --trial 2)" "value=21 ms"
"$SONDE" logs "$id" --save "$WS/logs.tar.gz" >/dev/null
check "logs --save writes a tar.gz with the logs" contains "$(tar -tzf "$WS/logs.tar.gz")" "trial-004/web/stderr.log"
check "client check passes" "$SONDE" client check "$id"
check "service check fails once the session is over" bash -c "! '$SONDE' service check '$id' >/dev/null"
check "csv report has one row per metric plus a header" test "$("$SONDE" report "$id" --format csv | wc -l)" -eq \
  "$(json "print(1+sum(len(t['metrics']) for t in d['trials']))" <<<"$rep")"
check "report files written to the session dir" test -s "$(session_field "$id" dir)/report.json"

# 2. A service that dies during the trial.
t0=$(date +%s)
"$SONDE" -q run $R/service-dies.yaml >/dev/null 2>&1; rc=$?
id=$(latest_id)
check "service-dies exits 1 ($rc)" test "$rc" -eq 1
reason=$(session_field "$id" reason)
check "reason names the service, status and trial: $reason" contains "$reason" \
  "service victim exited with status 137 during trial 1"
check "session state failed" test "$(session_field "$id" state)" = failed
check "no process left after a service died" no_procs_left "$id"
check "results of the failed session kept (monitor points)" json "
assert sum(len(s['points']) for s in d['trials'][0]['series'])>0" <<<"$("$SONDE" report "$id" --format json)"
check "it took less than 20 s ($(($(date +%s) - t0)) s)" test $(($(date +%s) - t0)) -lt 20

# 3. SIGINT to sonde run: clean teardown within 10 s, cancelled, nothing left.
"$SONDE" -q run $R/long.yaml >/dev/null 2>&1 &
pid=$!
if wait_running 30; then ok "long.yaml running"; else bad "long.yaml did not reach running"; fi
id=$(latest_id)
check "the forking service's children exist" test "$(session_procs "$id" | wc -l)" -ge 4
t0=$(date +%s%N)
kill -INT $pid
wait $pid; rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "SIGINT: exit 130 ($rc)" test "$rc" -eq 130
check "SIGINT: teardown in ${ms} ms < 10 s" test "$ms" -lt 10000
check "SIGINT: state cancelled" test "$(session_field "$id" state)" = cancelled
check "SIGINT: reason names the signal" contains "$(session_field "$id" reason)" "SIGINT"
check "SIGINT: no process left (SIGTERM-ignoring service killed)" no_procs_left "$id"

# 4. sonde stop SESSION.
"$SONDE" -q run $R/long.yaml >/dev/null 2>&1 &
pid=$!
wait_running 30 || bad "long.yaml (stop) did not reach running"
id=$(latest_id)
"$SONDE" logs "$id" stubborn --follow >"$WS/follow.txt" 2>&1 &
fpid=$!
ps_out=$("$SONDE" service ps "$id")
check "service ps lists the running services" bash -c "grep -q 'stubborn .*running' <<<'$ps_out' && grep -q 'forker .*running' <<<'$ps_out'"
check "service check passes while the services run" "$SONDE" service check "$id"
check "monitor ps lists node and process" bash -c "'$SONDE' monitor ps '$id' | grep -q '^1 *node ' && '$SONDE' monitor ps '$id' | grep -q '^1 *process '"
check "client check passes while the client runs" "$SONDE" client check "$id"
check "sonde stop exits 0" "$SONDE" stop "$id"
for i in $(seq 1 50); do kill -0 $fpid 2>/dev/null || break; sleep 0.1; done
check "logs --follow ends when the session ends" bash -c "! kill -0 $fpid 2>/dev/null"
kill $fpid 2>/dev/null; wait $fpid 2>/dev/null
check "logs --follow printed the service's output" grep -q '^up$' "$WS/follow.txt"
wait $pid; rc=$?
check "stopped run exits 130 ($rc)" test "$rc" -eq 130
check "stop: state cancelled by SIGTERM" contains "$(session_field "$id" reason)" "SIGTERM"
check "stop: no process left" no_procs_left "$id"

# 5. sonde itself killed with SIGKILL: the guardian stops the components.
"$SONDE" -q run $R/long.yaml >/dev/null 2>&1 &
pid=$!
wait_running 30 || bad "long.yaml (kill -9) did not reach running"
id=$(latest_id)
kill -KILL $pid
wait $pid 2>/dev/null
for i in $(seq 1 100); do no_procs_left "$id" && break; sleep 0.1; done
check "SIGKILL of sonde: no process left within 10 s" no_procs_left "$id"
check "SIGKILL of sonde: status says interrupted" test "$(session_field "$id" state)" = interrupted
"$SONDE" stop "$id" >/dev/null
check "stop marks the interrupted session failed" test "$(session_field "$id" state)" = failed

# 6. A readiness timeout.
"$SONDE" -q run $R/not-ready.yaml >/dev/null 2>&1; rc=$?
id=$(latest_id)
reason=$(session_field "$id" reason)
check "not-ready exits 1 ($rc)" test "$rc" -eq 1
check "reason names the probe: $reason" bash -c "grep -q 'service mute not ready after 2s' <<<'$reason' && grep -q 'tcp 127.0.0.1:' <<<'$reason'"
check "not-ready: no process left" no_procs_left "$id"

# 7. A process that left its group (setsid) is found by its tag and stopped.
"$SONDE" -q run $R/escape.yaml >/dev/null 2>&1; rc=$?
id=$(latest_id)
check "escape.yaml exits 0 ($rc)" test "$rc" -eq 0
check "escape: the setsid child did not outlive the session" no_procs_left "$id"
check "escape: a warning says a process left its group" json "
assert any('left their component' in e['message'] for e in d['events'])" \
  <<<"$("$SONDE" report "$id" --format json)"

# 8. What a client leaves in its group is gone before the next trial.
"$SONDE" -q run $R/leftover.yaml >/dev/null 2>&1
id=$(latest_id)
check "leftover: trial 2 saw nothing of trial 1" json "
v=[m['value'] for t in d['trials'] for m in t['metrics'] if m['name']=='leftover']
assert v==[0,0], v" <<<"$("$SONDE" report "$id" --format json)"
check "leftover: no process left" no_procs_left "$id"

# 9. wall_time is taken at the client's exit, not at the next 100 ms tick.
"$SONDE" -q run $R/timing.yaml >/dev/null 2>&1
id=$(latest_id)
check "sleep 0.05 measures >= 0.05 s always and < 0.1 s in the median trial (tick was 0.1 s)" json "
v=sorted(m['value'] for t in d['trials'] for m in t['metrics'] if m['name']=='wall_time')
assert len(v)==3 and v[0]>=0.05 and v[1]<0.1, v" <<<"$("$SONDE" report "$id" --format json)"

# 10. An inherited SIGCHLD=SIG_IGN must not turn exit statuses into 0.
perl -e '$SIG{CHLD}="IGNORE"; exec @ARGV' "$SONDE" -q run tests/recipes/drivers/exit-status.yaml \
  >/dev/null 2>&1; rc=$?
check "SIGCHLD ignored by the parent: the failing client still fails ($rc)" test "$rc" -eq 1

# 11. SIGINT during a prepare step: cancelled, not failed.
"$SONDE" -q run $R/prepare-long.yaml >/dev/null 2>&1 &
pid=$!
for i in $(seq 1 100); do
  id=$(latest_id 2>/dev/null)
  [ -n "$id" ] && grep -qs preparing "$(session_field "$id" dir)/trial-001/load/steps.log" && break
  sleep 0.1
done
kill -INT $pid
wait $pid; rc=$?
check "SIGINT in a prepare step: exit 130 ($rc)" test "$rc" -eq 130
check "SIGINT in a prepare step: state cancelled" test "$(session_field "$id" state)" = cancelled
check "SIGINT in a prepare step: no process left" no_procs_left "$id"

# 12. A second SIGINT hurries the teardown: no grace period for the stubborn service.
"$SONDE" -q run $R/long.yaml >/dev/null 2>&1 &
pid=$!
wait_running 30 || bad "long.yaml (double SIGINT) did not reach running"
id=$(latest_id)
t0=$(date +%s%N)
kill -INT $pid; sleep 0.1; kill -INT $pid
wait $pid; rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "double SIGINT: exit 130 ($rc)" test "$rc" -eq 130
check "double SIGINT: teardown in ${ms} ms < 1.5 s (grace skipped)" test "$ms" -lt 1500
check "double SIGINT: no process left" no_procs_left "$id"

finish
