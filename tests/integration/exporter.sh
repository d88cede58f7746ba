#!/usr/bin/env bash
# exporter.sh SONDE — sonde's own /metrics while a session runs: an http load against
# sonde-sim with node and process monitors, scraped twice during the load (counters
# grow, the latency histogram agrees with the request counter, every monitor reading
# is there with the session's labels), the monitors' CPU recorded, the endpoint gone
# with the session; a fileio client's operations, bytes and latency histogram live;
# a bad or busy address fails before anything starts.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
cat >"$WS/load.yaml" <<EOF
kind: benchmark
name: exporter-load
timeout: 2m
services:
  sim:
    use: sonde-sim
    with:
      command: [sonde-sim, --host, "\${self.listen}", --port, "\${self.port}", --delay, 2ms]
clients:
  load:
    use: http
    with:
      url: "http://\${services.sim.host}:\${services.sim.port}/"
      connections: 4
      duration: 6s
monitors:
  node: {use: node, interval: 500ms}
  process: {use: process, interval: 500ms}
EOF
"$SONDE" run --exporter "127.0.0.1:$PORT" "$WS/load.yaml" >"$WS/load.out" 2>&1 &
RUNPID=$!
trap 'kill $RUNPID 2>/dev/null' EXIT
# the first scrape once the load's counter is there, the second 1.5 s later
scrape_until "$PORT" "$WS/scrape1.txt" '^sonde_client_requests_total{.*} [1-9]'
sleep 1.5
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WS/scrape2.txt"
wait $RUNPID
rc=$?
check "the session ends done (exit $rc)" test $rc -eq 0
check "the address is said at the start" grep -q "exporter: http://127.0.0.1:$PORT/metrics" "$WS/load.out"
ID=$(latest_id)

# The scrapes, parsed: name{labels} value (no timestamps in sonde's output)
cat >"$WS/parse.py" <<'EOF'
import re, sys
line = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
lab = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
def parse(path):
    out, types = [], {}
    for l in open(path):
        l = l.rstrip('\n')
        if l.startswith('# TYPE '):
            _, _, n, t = l.split(' ', 3); types[n] = t; continue
        if l.startswith('#') or not l:
            continue
        m = line.match(l)
        assert m, 'not a sample line: %r' % l
        labels = dict(lab.findall(m.group(3) or ''))
        out.append((m.group(1), labels, float(m.group(4))))
    return out, types
def one(samples, name, **want):
    v = [x for n, l, x in samples if n == name and all(l.get(k) == w for k, w in want.items())]
    assert len(v) == 1, (name, want, v)
    return v[0]
EOF
check "both scrapes are valid text format with the session's labels" python3 - "$WS" "$ID" <<'EOF'
import sys; sys.path.insert(0, sys.argv[1]); from parse import *
for f in ('scrape1.txt', 'scrape2.txt'):
    s, t = parse(sys.argv[1] + '/' + f)
    assert len(s) > 30, (f, len(s))
    for n, l, _ in s:
        if n != 'sonde_up':
            assert l.get('session') == sys.argv[2] and l.get('trial') == '1', (n, l)
EOF
check "counters grow between scrapes; errors 0" python3 - "$WS" <<'EOF'
import sys; sys.path.insert(0, sys.argv[1]); from parse import *
a, t = parse(sys.argv[1] + '/scrape1.txt'); b, _ = parse(sys.argv[1] + '/scrape2.txt')
assert t['sonde_client_requests_total'] == 'counter'
r1, r2 = one(a, 'sonde_client_requests_total', component='load'), one(b, 'sonde_client_requests_total', component='load')
assert 0 < r1 < r2, (r1, r2)
assert one(b, 'sonde_client_errors_total', component='load') == 0
assert one(a, 'sonde_client_bytes_in_total', component='load') < one(b, 'sonde_client_bytes_in_total', component='load')
print('requests', r1, '->', r2)
EOF
check "latency histogram: cumulative buckets, +Inf = _count = requests (no errors), mean in the sim's range" python3 - "$WS" <<'EOF'
import sys; sys.path.insert(0, sys.argv[1]); from parse import *
s, t = parse(sys.argv[1] + '/scrape2.txt')
assert t['sonde_client_request_duration_seconds'] == 'histogram'
b = [(l['le'], x) for n, l, x in s if n == 'sonde_client_request_duration_seconds_bucket']
vals = [x for _, x in b]
assert vals == sorted(vals) and b[-1][0] == '+Inf', b
count = one(s, 'sonde_client_request_duration_seconds_count', component='load')
total = one(s, 'sonde_client_request_duration_seconds_sum', component='load')
req = one(s, 'sonde_client_requests_total', component='load')
assert count == b[-1][1] and abs(count - req) <= req * 0.01 + 8, (count, req)
mean = total / count
assert 0.002 <= mean < 0.05, mean  # the sim answers after 2 ms
below = dict(b)['0.001']
assert below == 0, below  # nothing faster than the sim's 2 ms delay
print('count', count, 'mean', mean)
EOF
check "monitor readings: sonde_node_* and sonde_process_* gauges, monitor CPU counters" python3 - "$WS" <<'EOF'
import sys; sys.path.insert(0, sys.argv[1]); from parse import *
s, t = parse(sys.argv[1] + '/scrape2.txt')
names = {n for n, _, _ in s}
for n in ('sonde_node_cpu_percent', 'sonde_node_mem_used_bytes', 'sonde_node_net_rx_bytes_per_s',
          'sonde_process_cpu_percent', 'sonde_process_rss_bytes', 'sonde_up', 'sonde_trial_info'):
    assert n in names and t[n] == 'gauge', n
assert 0 < one(s, 'sonde_node_mem_used_bytes', component='node')
procs = {l.get('exported_component') for n, l, _ in s if n == 'sonde_process_rss_bytes'}
assert {'sim', 'load'} <= procs or {'sim'} <= procs, procs  # each watched group its own series
cpu = [x for n, l, x in s if n == 'sonde_monitor_cpu_seconds_total']
assert len(cpu) == 2 and all(x > 0 for x in cpu), cpu
assert one(s, 'sonde_trial_info', recipe='exporter-load') == 1
EOF
"$SONDE" report "$ID" --format json >"$WS/load.json"
check "each monitor's CPU is stored (seconds and % of one core, under 5%)" python3 - "$WS/load.json" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))['trials'][0]
m = {(x['component'], x['name']): x['value'] for x in t['metrics'] if not x['labels']}
for c in ('node', 'process'):
    assert 0 < m[(c, 'monitor_cpu_seconds')] < 1, m.get((c, 'monitor_cpu_seconds'))
    assert 0 < m[(c, 'monitor_cpu_percent')] < 5, m.get((c, 'monitor_cpu_percent'))
EOF
check "the endpoint is gone with the session" bash -c "! curl -s -o /dev/null http://127.0.0.1:$PORT/metrics"
check "nothing of the session is left running" no_procs_left "$ID"

# A fileio client: its operations, bytes and latency histogram live too.
FPORT=$(free_port)
mkdir -p "$WS/fx"
cat >"$WS/fileio.yaml" <<EOF
kind: benchmark
name: exporter-fileio
timeout: 1m
clients:
  io:
    driver: fileio
    with: {path: "$WS/fx", rw: randread, bs: 4KiB, size: 8MiB, duration: 4s}
EOF
"$SONDE" -q run --exporter "127.0.0.1:$FPORT" "$WS/fileio.yaml" >"$WS/fileio.out" 2>&1 &
RUNPID=$!
scrape_until "$FPORT" "$WS/fscrape.txt" '^sonde_client_requests_total{.*} [1-9]'
sleep 1
curl -sf "http://127.0.0.1:$FPORT/metrics" >"$WS/fscrape.txt"
wait $RUNPID
rc=$?
check "fileio: the session ends done (exit $rc)" test $rc -eq 0
check "fileio: operations, bytes read, no error, and a latency histogram that counts every operation" python3 - "$WS" <<'EOF'
import sys; sys.path.insert(0, sys.argv[1]); from parse import *
s, t = parse(sys.argv[1] + '/fscrape.txt')
req = one(s, 'sonde_client_requests_total', component='io')
assert req > 0 and one(s, 'sonde_client_bytes_in_total', component='io') > 0
assert one(s, 'sonde_client_errors_total', component='io') == 0
assert t['sonde_client_request_duration_seconds'] == 'histogram'
b = [(l['le'], x) for n, l, x in s if n == 'sonde_client_request_duration_seconds_bucket' and l.get('component') == 'io']
assert [x for _, x in b] == sorted(x for _, x in b) and b[-1][0] == '+Inf', b
count = one(s, 'sonde_client_request_duration_seconds_count', component='io')
assert count == b[-1][1] and abs(count - req) <= req * 0.01 + 100, (count, req)
mean = one(s, 'sonde_client_request_duration_seconds_sum', component='io') / count
assert 0 < mean < 1, mean
print('operations', req, 'mean latency', mean)
EOF

# Bad addresses: refused before any trial, the reason named.
out=$("$SONDE" run --exporter "no-port" "$WS/load.yaml" 2>&1)
rc=$?
check "--exporter without a port: non-zero exit ($rc), the address named" \
  bash -c "[ $rc -ne 0 ] && grep -q \"exporter address 'no-port': expected HOST:PORT\" <<<\"\$1\"" _ "$out"
python3 -c "
import socket, sys, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(8)" >"$WS/busy.port" &
HOLD=$!
for _ in $(seq 50); do [ -s "$WS/busy.port" ] && break; sleep 0.1; done
BUSY=$(cat "$WS/busy.port")
out=$("$SONDE" run --exporter "127.0.0.1:$BUSY" "$WS/load.yaml" 2>&1)
rc=$?
kill $HOLD 2>/dev/null
check "--exporter on a busy port: exit $rc, 'cannot listen' said, no trial ran" \
  bash -c "[ $rc -ne 0 ] && grep -q 'cannot listen on 127.0.0.1:$BUSY' <<<\"\$1\" && ! grep -q 'trial 1' <<<\"\$1\"" _ "$out"
printf 'kind: benchmark\nname: bad-exporter\nexporter: 127.0.0.1\nclients:\n  c: {driver: exec, with: {command: [true]}}\n' >"$WS/bad.yaml"
out=$("$SONDE" recipe validate "$WS/bad.yaml" 2>&1)
rc=$?
check "exporter: without a port in a recipe: exit 2, position named" \
  bash -c "[ $rc -eq 2 ] && grep -q 'bad.yaml:3:.*exporter.*expected HOST:PORT' <<<\"\$1\"" _ "$out"
finish
