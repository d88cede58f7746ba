#!/usr/bin/env bash
# `sonde monitor start|stop|ps` (monitors without a benchmark, detached) and
# `sonde metrics` (summary, --json, --csv, --follow), plus the report's series
# tables, against real monitor sessions on this machine.
. "$(dirname "$0")/lib.sh"
PIDS=()
cleanup() { # sessions a failed check may have left running
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
}
trap cleanup EXIT
json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
status() { "$@" >/dev/null 2>&1; echo $?; }
gone() { # pid: exited (a zombie waiting for init to reap it runs nothing)
  ! kill -0 "$1" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]
}
ENDED='done' # a stopped monitor session ends done (a stop is its normal end)
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; } # of one JSON object

# 1. start: a recipe of only monitors, run detached; the session id comes back.
t0=$(date +%s)
out=$("$SONDE" monitor start --interval 200ms --duration 30s --name mon1 --json 2>"$WS/start.err")
rc=$?
check "monitor start exits 0 ($rc: $(head -c 300 "$WS/start.err"))" test "$rc" -eq 0
ID=$(field session <<<"$out")
PID=$(field pid <<<"$out")
PIDS+=("$PID")
check "it printed the session id ($ID) and pid ($PID)" test -n "$ID" -a "$PID" -gt 1
check "the sonde running it is alive" kill -0 "$PID"
check "it runs in its own session (setsid)" test "$(ps -o sid= -p "$PID" | tr -d ' ')" = "$PID"
check "the recipe is in the workspace, with node and process at 200ms" python3 -c "
import re
t = open('$WS/monitors/mon1.yaml').read()
assert 'kind: benchmark' in t and 'timeout: 30s' in t, t
assert re.search(r'node:\n +driver: node\n +interval: 200ms', t), t
assert re.search(r'process:\n +driver: process\n +interval: 200ms', t), t
assert 'clients' not in t and 'services' not in t, t"
check "the recipe validates" "$SONDE" -q recipe validate "$WS/monitors/mon1.yaml"
check "its log is beside it" test -f "$WS/monitors/mon1.log"

# 2. ps lists it, from the store and the recipe.
ps=$("$SONDE" monitor ps)
check "monitor ps lists it as running with its monitors" python3 -c "
import sys
rows = [l.split() for l in sys.stdin.read().splitlines()[1:]]
r = [x for x in rows if x[0] == '$ID']
assert r and r[0][1] == 'mon1' and r[0][2] == 'running' and r[0][4] == '$PID', rows
assert r[0][5] == 'node,process', r" <<<"$ps"
check "monitor ps --json: id, name, pid, state" json "
r = [x for x in d if x['id'] == '$ID'][0]
assert r['name'] == 'mon1' and r['pid'] == $PID and r['state'] == 'running', r" \
  <<<"$("$SONDE" monitor ps --json)"
check "monitor ps SESSION keeps its meaning: the monitors of that session" python3 -c "
import sys
t = sys.stdin.read()
assert 'node' in t and 'process' in t and 'monitor' in t and 'TRIAL' in t, t" \
  <<<"$("$SONDE" monitor ps "$ID")"

# 3. metrics while it runs: points arrive in the store during the trial.
sleep 2
m=$("$SONDE" metrics "$ID" --json)
check "metrics --json: node series with points, consistent summaries" json "
t = d['trials'][0]
assert d['session'] == '$ID' and d['state'] == 'running', d['state']
s = {x['name']: x for x in t['series'] if x['component'] == 'node'}
c = s['cpu_percent']
assert c['points'] >= 5, c
assert c['min'] <= c['mean'] <= c['max'] and c['min'] <= c['last_value'] <= c['max'], c
assert c['first'] < c['last'], c
assert {'mem_used_bytes', 'net_rx_bytes_per_s', 'disk_read_bytes_per_s'} <= set(s), sorted(s)" <<<"$m"
txt=$("$SONDE" metrics "$ID")
check "metrics text: a series line per node series with points and a time span" python3 -c "
import sys, re
t = sys.stdin.read()
l = [x for x in t.splitlines() if x.split()[:1] == ['cpu_percent']]
assert len(l) == 2, t  # node and process
f = l[0].split()
assert re.match(r'\+\d+\.\ds\.\.\+\d+\.\ds$', f[4]) and int(f[3]) >= 5, l[0]" <<<"$txt"

# 4. --follow prints new points as they are stored, a line each.
f0=$(date -u +%Y-%m-%dT%H:%M:%S)
timeout 5 "$SONDE" metrics "$ID" --follow >"$WS/follow.txt" 2>&1
check "metrics --follow printed new points live ($(wc -l <"$WS/follow.txt") lines in 5 s)" python3 -c "
lines = open('$WS/follow.txt').read().splitlines()
assert len(lines) >= 3, lines
for l in lines:
    f = l.split()
    assert len(f) >= 6 and f[1] == '1' and f[2] in ('node', 'process'), l
    assert f[0][:19] >= '$f0', (f[0], '$f0')   # stored after it started
assert any(l.split()[3] == 'cpu_percent' for l in lines), lines"
timeout 2 "$SONDE" metrics "$ID" --follow --json --name '^rss_bytes$' >"$WS/follow.json" 2>&1
check "metrics --follow --json: one JSON object per line, filtered by --name" python3 -c "
import json
rows = [json.loads(l) for l in open('$WS/follow.json')]
assert rows and all(r['name'] == 'rss_bytes' and r['component'] == 'process' and r['value'] > 0
                    for r in rows), rows"

# 5. stop: SIGTERM through `sonde stop`, the end state and the points stored.
out=$("$SONDE" monitor stop "$ID" 2>&1); rc=$?
check "monitor stop exits 0 ($rc)" test "$rc" -eq 0
pts=$("$SONDE" metrics "$ID" --json | json "print(sum(s['points'] for t in d['trials'] for s in t['series']))")
check "monitor stop says the end state and the points stored ($pts): $out" \
  contains "$out" "session $ID (mon1): $ENDED.*; $pts series points stored"
check "the session's sonde is gone" gone "$PID"
check "nothing of the session is left running" no_procs_left "$ID"
check "no sonde run of its recipe is left (pgrep)" bash -c "! pgrep -f '[m]onitors/mon1.yaml' >/dev/null"
check "monitor ps no longer lists it" not_contains "$("$SONDE" monitor ps)" "$ID"
check "monitor ps --all shows it ended" contains "$("$SONDE" monitor ps --all)" "$ID .*mon1 .*$ENDED"
check "monitor stop of an ended session: nothing to stop (exit 1)" \
  test "$(status "$SONDE" monitor stop mon1)" -eq 1

# 6. --csv: every point, RFC 4180, written atomically; - is standard output.
"$SONDE" metrics "$ID" --csv "$WS/points.csv" 2>/dev/null
check "metrics --csv: header, one row per stored point ($pts), values and times parse" python3 -c "
import csv, datetime
rows = list(csv.reader(open('$WS/points.csv', newline='')))
assert rows[0] == 'session,trial,component,name,labels,unit,time,t_ns,value'.split(','), rows[0]
rows = rows[1:]
assert len(rows) == $pts, (len(rows), $pts)
for r in rows:
    assert len(r) == 9 and r[0] == '$ID' and r[1] == '1', r
    float(r[8])
    t = datetime.datetime.strptime(r[6], '%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.timezone.utc)
    assert abs(t.timestamp() - int(r[7]) / 1e9) < 0.002, r
assert any(r[2] == 'process' and r[4] == '{\"component\":\"sonde\"}' for r in rows)"
check "metrics --csv -: the same rows on standard output" \
  test "$("$SONDE" metrics "$ID" --csv - | wc -l)" -eq "$((pts + 1))"
check "metrics --name filters series and metrics (POSIX ERE)" json "
names = {s['name'] for t in d['trials'] for s in t['series']} | {m['name'] for t in d['trials'] for m in t['metrics']}
assert names == {'cpu_percent', 'cpu_percent_mean', 'cpu_percent_max'}, names" \
  <<<"$("$SONDE" metrics "$ID" --json --name '^cpu_percent(_mean|_max)?$')"

# 7. the report: a series table and the series over time, sampled from real points.
rep=$("$SONDE" report "$ID")
check "text report has the series summary and the series over time" python3 -c "
import sys
t = sys.stdin.read()
assert '  Series\n' in t and 'Series over time' in t, t[-2000:]" <<<"$rep"
check "each time column holds a stored point of that series" python3 -c "
import csv, sys
pts = {}
for r in list(csv.reader(open('$WS/points.csv', newline='')))[1:]:
    pts.setdefault((r[2], r[3]), []).append(float(r[8]))
t = sys.stdin.read().split('Series over time')[1].splitlines()
head = t[1].split()
assert head[:4] == ['COMPONENT', 'SERIES', 'LABELS', 'UNIT'] and len(head) == 12, head
row = [l.split() for l in t[2:] if l.split()[:2] == ['node', 'mem_used_bytes']][0]
cells = row[-8:]
assert sum(c != '-' for c in cells) >= 6, row
for c in cells:
    assert c == '-' or any(abs(float(c) - v) <= 1e-5 * abs(v) for v in pts[('node', 'mem_used_bytes')]), c" \
  <<<"$rep"
check "markdown report has the series over time table" \
  contains "$("$SONDE" report "$ID" --format md)" "### Series over time"

# 8. --duration ends a session by itself (done); a name runs once at a time; stop by name.
out=$("$SONDE" monitor start --interval 200ms --duration 2s --name mon2 --json 2>&1)
ID2=$(field session <<<"$out" 2>/dev/null)
PIDS+=("$(field pid <<<"$out" 2>/dev/null)")
check "a second monitor of the same name while it runs: exit 1" \
  test "$(status "$SONDE" monitor start --duration 2s --name mon2)" -eq 1
for ((i = 0; i < 100; i++)); do
  [ "$(session_field "$ID2" state)" = done ] && break
  sleep 0.1
done
check "--duration 2s: the session ends done by itself" test "$(session_field "$ID2" state)" = done
out=$("$SONDE" -q monitor start --node --interval 500ms --name mon3 2>&1)
ID3=$out
PIDS+=("$(session_field "$ID3" pid)")
check "-q prints only the id ($ID3); --node: only the node monitor" \
  test "$("$SONDE" monitor ps --json | json "print([r['monitors'] for r in d if r['id'] == '$ID3'][0])")" = node
check "monitor stop NAME stops it" contains "$("$SONDE" monitor stop mon3)" "session $ID3 (mon3): $ENDED"

# 9. --exporter goes to `sonde run` (an HTTP /metrics endpoint); --scrape records such an
# endpoint with the prometheus monitor: one monitor session scraping another.
P=$(free_port)
out=$("$SONDE" monitor start --interval 200ms --duration 30s --name exp --exporter "127.0.0.1:$P" --json 2>&1)
IDE=$(field session <<<"$out" 2>/dev/null)
PIDS+=("$(field pid <<<"$out" 2>/dev/null)")
check "--exporter: its /metrics answers with the node monitor's values" \
  bash -c "for i in \$(seq 50); do curl -sf --max-time 5 http://127.0.0.1:$P/metrics |
    grep -q '^sonde_node_cpu_percent{' && exit 0; sleep 0.1; done; exit 1" # the first sample: 200 ms
out=$("$SONDE" monitor start --interval 300ms --duration 30s --name scr --scrape "http://127.0.0.1:$P/metrics" --json 2>&1)
IDS=$(field session <<<"$out" 2>/dev/null)
PIDS+=("$(field pid <<<"$out" 2>/dev/null)")
check "--scrape URL: a prometheus monitor with that url" grep -q "url: http://127.0.0.1:$P/metrics" "$WS/monitors/scr.yaml"
sleep 2
check "--scrape: the exporter's series are recorded" json "
s = [x for x in d['trials'][0]['series'] if x['name'] == 'sonde_node_cpu_percent']
assert s and s[0]['component'] == 'scrape' and s[0]['points'] >= 2, d['trials'][0]['series'][:3]
assert s[0]['labels']['session'] == '$IDE', s[0]['labels']" \
  <<<"$("$SONDE" metrics "$IDS" --json --name '^sonde_node_cpu_percent$')"
out=$("$SONDE" monitor stop --all 2>&1)
check "monitor stop --all stops both" bash -c "grep -q '$IDE (exp): $ENDED' <<<'$out' && grep -q '$IDS (scr): $ENDED' <<<'$out'"

# 10. bad input: clear errors, exit 2 (usage) or 1 (nothing to do, no such thing).
check "start --interval fast: exit 2" test "$(status "$SONDE" monitor start --interval fast)" -eq 2
check "start --interval 0s: exit 2" test "$(status "$SONDE" monitor start --interval 0s)" -eq 2
check "start --duration -1s: exit 2" test "$(status "$SONDE" monitor start --duration -1s)" -eq 2
check "start --bogus: exit 2" test "$(status "$SONDE" monitor start --bogus)" -eq 2
check "start --name 'a b': exit 2" test "$(status "$SONDE" monitor start --name 'a b')" -eq 2
check "start --scrape not-a-url: exit 2" test "$(status "$SONDE" monitor start --scrape ftp://x)" -eq 2
check "stop without a target: exit 2" test "$(status "$SONDE" monitor stop)" -eq 2
check "stop NAME --all: exit 2" test "$(status "$SONDE" monitor stop mon1 --all)" -eq 2
check "stop --all with nothing running: exit 1" test "$(status "$SONDE" monitor stop --all)" -eq 1
check "stop of an unknown session: exit 1" test "$(status "$SONDE" monitor stop nosuchsession)" -eq 1
check "monitor frobnicate: exit 2" test "$(status "$SONDE" monitor frobnicate)" -eq 2
printf 'kind: benchmark\nname: plain\ntimeout: 1s\nmonitors: [node]\n' >"$WS/plain.yaml"
"$SONDE" -q run "$WS/plain.yaml" >/dev/null 2>&1
err=$("$SONDE" monitor stop "$(latest_id)" 2>&1); rc=$?
check "stop of a session not started by monitor start: exit 1, says so" \
  bash -c "[ $rc -eq 1 ] && grep -q 'not started by .sonde monitor start' <<<'$err'"
check "metrics of an unknown session: exit 1" test "$(status "$SONDE" metrics nosuchsession)" -eq 1
check "metrics --name with a bad regex: exit 2" test "$(status "$SONDE" metrics "$ID" --name '(')" -eq 2
check "metrics --csv to an unwritable path: exit 1, no file" \
  bash -c "[ $(status "$SONDE" metrics "$ID" --csv "$WS/no/such/dir/x.csv") -eq 1 ] && [ ! -e '$WS/no/such/dir' ]"
check "metrics --csv with --follow: exit 2" test "$(status "$SONDE" metrics "$ID" --csv - --follow)" -eq 2
check "metrics --trial 0: exit 2" test "$(status "$SONDE" metrics "$ID" --trial 0)" -eq 2
check "metrics --trial 5 of a one-trial session: exit 1" test "$(status "$SONDE" metrics "$ID" --trial 5)" -eq 1
check "metrics --follow of an ended session returns at once (exit 0)" \
  timeout 5 "$SONDE" metrics "$ID" --follow

for p in "${PIDS[@]}"; do
  check "no sonde of this test left running (pid $p)" gone "$p"
done
check "the whole test took under 60 s ($(($(date +%s) - t0)) s)" test $(($(date +%s) - t0)) -lt 60
finish
