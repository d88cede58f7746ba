#!/usr/bin/env bash
# prometheus.sh SONDE — the prometheus service with a real Prometheus (Debian's 2.42) and node
# exporter, started by the sessions: a session scrapes sonde's exporter and a node-exporter
# service during an http load, and once it has ended (no Prometheus left running) the
# pulled-back series are in the store; explicit targets, pull selectors and max_series; bad
# options at validate time; a Prometheus that cannot start fails the trial, saying why.
. "$(dirname "$0")/lib.sh"
for p in prometheus prometheus-node-exporter; do
  command -v $p >/dev/null || { bad "$p is installed (Debian packages prometheus, prometheus-node-exporter)"; finish; exit 1; }
done
json() { python3 -c "import json,sys; d=json.load(open('$1')); $2"; } # REPORT-FILE, code
no_prom() { ! pgrep -f -- "--config.file=$WS/sessions/$1/" >/dev/null; } # none of session $1 runs

# 1. sonde-sim under a 5 s http load, a node exporter and Prometheus (1 s scrapes), a node
# monitor. The session's exporter is started for the prometheus service without being asked;
# the default pull takes every series of the jobs sonde, node-exporter and a target's.
cat >"$WS/mon.yaml" <<'EOF'
kind: benchmark
name: mon
timeout: 1m
services:
  sim:
    use: sonde-sim
  node-exporter:
    use: node-exporter
  # a service whose metrics are elsewhere (a whole URL, as Triton's second port)
  ne2:
    driver: generic
    port: auto
    with:
      command: [sleep, "120"]
      metrics: "http://${services.node-exporter.host}:${services.node-exporter.port}/metrics"
  prom:
    use: prometheus
    with:
      scrape_interval: 1s
      # the node exporter once more, under a job name that needs escaping in the pull's regex
      targets:
        - job: 'n.e"x\y'
          url: "http://${services.node-exporter.host}:${services.node-exporter.port}/metrics"
clients:
  load:
    use: http
    with:
      url: "http://${services.sim.host}:${services.sim.port}/"
      connections: 4
      duration: 5s
monitors: [node]
EOF
"$SONDE" -q run "$WS/mon.yaml" >"$WS/mon.out" 2>&1; rc=$?
id=$(latest_id)
check "mon.yaml exits 0 ($rc; $(tail -1 "$WS/mon.out"))" test "$rc" -eq 0
check "no Prometheus of the session left running" no_prom "$id"
check "no process of the session left" no_procs_left "$id"
"$SONDE" report "$id" --format json >"$WS/mon.json"
cfg=$WS/sessions/$id/trial-001/prom/work/prometheus.yml
check "prometheus.yml has the jobs sonde, node-exporter, ne2 (its metrics by URL: the node exporter's) and the target's" python3 -c "
import json; t=open('$cfg').read(); c=json.loads(t[t.index('{'):])
assert {j['job_name'] for j in c['scrape_configs']} == {'sonde', 'node-exporter', 'ne2', 'n.e\"x\\\\y'}, c
j={x['job_name']: x for x in c['scrape_configs']}
assert j['ne2']['metrics_path'] == '/metrics' and j['ne2']['static_configs'] == j['node-exporter']['static_configs'], j"
check "Prometheus ran and was stopped by the session (its log)" grep -q "Received SIGTERM" "$WS/sessions/$id/trial-001/prom/stderr.log"
check "node-exporter: node_cpu_seconds_total (every cpu and mode) and node_memory_MemAvailable_bytes, >= 3 points each" json "$WS/mon.json" "
s=[x for x in d['trials'][0]['series'] if x['component']=='prom' and x['labels'].get('job')=='node-exporter']
cpu=[x for x in s if x['name']=='node_cpu_seconds_total']; mem=[x for x in s if x['name']=='node_memory_MemAvailable_bytes']
assert len(cpu) >= 4 and len(mem) == 1, (len(cpu), len(mem))
assert all(len(x['points']) >= 3 for x in cpu + mem), [len(x['points']) for x in cpu + mem]
assert all(x['labels']['instance'] and '__name__' not in x['labels'] for x in s)
assert mem[0]['summary']['min'] > 0"
check "sonde: sonde_up is 1 at >= 3 points" json "$WS/mon.json" "
u=[x for x in d['trials'][0]['series'] if x['component']=='prom' and x['name']=='sonde_up' and x['labels']['job']=='sonde']
assert len(u) == 1 and len(u[0]['points']) >= 3 and {p[1] for p in u[0]['points']} == {1.0}, u"
req=$(json "$WS/mon.json" "print(next(m['value'] for m in d['trials'][0]['metrics'] if m['component']=='load' and m['name']=='requests'))")
check "sonde: sonde_client_requests_total of load rises over >= 3 points to the client's $req requests (a scrape after the client ended)" json "$WS/mon.json" "
r=[x for x in d['trials'][0]['series'] if x['component']=='prom' and x['name']=='sonde_client_requests_total' and x['labels'].get('component')=='load']
assert len(r) == 1, r
v=[p[1] for p in r[0]['points']]
assert len(v) >= 3 and all(a <= b for a, b in zip(v, v[1:])) and v[0] < v[-1], v
assert v[-1] == $req, (v[-1], $req)"
check "pulled_series == the series stored, pulled_points == their points, both > 0" json "$WS/mon.json" "
t=d['trials'][0]; m={x['name']:x['value'] for x in t['metrics'] if x['component']=='prom'}
s=[x for x in t['series'] if x['component']=='prom']
assert m['pulled_series'] == len(s) > 100 and m['pulled_points'] == sum(len(x['points']) for x in s) > 300, (m, len(s))"
check "the target's job, escaped in the pull's selector, pulled as well" json "$WS/mon.json" "
s=[x for x in d['trials'][0]['series'] if x['component']=='prom' and x['labels'].get('job')=='n.e\"x\\\\y' and x['name']=='node_memory_MemAvailable_bytes']
assert len(s) == 1 and len(s[0]['points']) >= 3, s"
check "ne2's job (the node exporter by its URL) scraped and pulled as well" json "$WS/mon.json" "
s=[x for x in d['trials'][0]['series'] if x['component']=='prom' and x['labels'].get('job')=='ne2' and x['name']=='node_memory_MemAvailable_bytes']
assert len(s) == 1 and len(s[0]['points']) >= 3, s"
check "the node monitor ran beside it" json "$WS/mon.json" "
assert any(x['component']=='node' for x in d['trials'][0]['series'])"

# 2. A node exporter started here as a static target, two pull selectors and a malformed one
# (a warning quoting Prometheus), max_series 3 (cut with a warning), a service with `metrics` listed after prom (a warning); no clients: the
# trial ends at its 4 s timeout.
NPORT=$(free_port)
setsid prometheus-node-exporter --web.listen-address=127.0.0.1:$NPORT --no-collector.systemd >"$WS/ne.log" 2>&1 &
NPID=$!
trap 'kill -TERM -- -$NPID 2>/dev/null' EXIT
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$NPORT/metrics" && break; sleep 0.1; done
cat >"$WS/targets.yaml" <<EOF
kind: benchmark
name: targets
timeout: 4s
services:
  prom:
    use: prometheus
    with:
      targets: [{job: ext, url: "http://127.0.0.1:$NPORT/metrics"}]
      pull: ['node_cpu_seconds_total{job="ext"}', 'up{job="ext"}', 'up{']
      max_series: 3
  late: # after prom: not scraped, said
    use: node-exporter
EOF
"$SONDE" -q run "$WS/targets.yaml" >"$WS/targets.out" 2>&1; rc=$?
id=$(latest_id)
check "targets.yaml exits 0 ($rc; $(tail -1 "$WS/targets.out"))" test "$rc" -eq 0
"$SONDE" report "$id" --format json >"$WS/targets.json"
check "3 series of job ext stored, from the selectors only" json "$WS/targets.json" "
s=[x for x in d['trials'][0]['series'] if x['component']=='prom']
assert len(s) == 3 and all(x['labels']['job']=='ext' and x['name'] in ('node_cpu_seconds_total','up') for x in s), s
m={x['name']:x['value'] for x in d['trials'][0]['metrics'] if x['component']=='prom'}
assert m['pulled_series'] == 3 and m['pulled_points'] >= 6, m"
warn=$("$SONDE" report "$id" 2>&1)
check "a warning quotes Prometheus on the malformed selector" contains "$warn" "pull of up{ failed: HTTP 400: bad_data: .*parse error"
check "a warning says series were cut by max_series" contains "$warn" "series were not stored: max_series is 3"
check "a warning names the service started after prom" contains "$warn" "service late has \`metrics\` but started after prom, so it was not scraped: list prom after it"
check "no Prometheus of that session left" no_prom "$id"

# 3. Bad options: exit 2 at validate, each named.
cat >"$WS/bad.yaml" <<'EOF'
kind: benchmark
name: bad
timeout: 10s
services:
  prom:
    use: prometheus
    with:
      scrape_interval: 10ms
      max_series: 0
      retention: 1s
      pull: [""]
      targets:
        - {job: sonde, url: "http://127.0.0.1:1/metrics"}
        - {job: a, url: "ftp://127.0.0.1/x"}
        - {job: a, url: "http://127.0.0.1:1/m?x=1"}
  prom2: # (a driver's own checks run once the option table's pass)
    use: prometheus
    with:
      scrape_intervall: 1s
EOF
out=$("$SONDE" recipe validate "$WS/bad.yaml" 2>&1); rc=$?
check "bad options: validate exits 2 ($rc)" test "$rc" -eq 2
check "... scrape_interval out of range" contains "$out" "services.prom.with.scrape_interval: must be from 100ms to 1h"
check "... max_series below 1" contains "$out" "services.prom.with.max_series: must be an integer from 1"
check "... retention too short" contains "$out" "services.prom.with.retention: must be at least 1m"
check "... an empty pull selector" contains "$out" "services.prom.with.pull\[0\]: an empty selector"
check "... the job sonde is taken" contains "$out" "targets\[0\].job: 'sonde' is the job of sonde's own exporter"
check "... not an http URL" contains "$out" "targets\[1\].url: 'ftp://127.0.0.1/x' is not an http://HOST:PORT/PATH URL"
check "... a job given twice" contains "$out" "targets\[2\].job: 'a' is also the job of targets\[1\]"
check "... a query string" contains "$out" "a query string is not supported"
check "... an unknown option, with a suggestion" contains "$out" "services.prom2.with.scrape_intervall: unknown option 'scrape_intervall' for driver 'prometheus' (did you mean 'scrape_interval'?)"

# 4. A Prometheus that cannot start (a bad argument): the trial fails with its words.
cat >"$WS/badargs.yaml" <<'EOF'
kind: benchmark
name: badargs
timeout: 30s
services:
  prom:
    use: prometheus
    with:
      args: [--no-such-flag]
EOF
"$SONDE" -q run "$WS/badargs.yaml" >/dev/null 2>&1; rc=$?
id=$(latest_id)
reason=$(session_field "$id" reason)
check "bad args: exit 1 ($rc)" test "$rc" -eq 1
check "... the reason quotes Prometheus: $reason" contains "$reason" "service prom failed to start: prometheus ended at start (exit status 1): prometheus: error: unknown long flag '--no-such-flag'"
check "... nothing left" no_procs_left "$id"
printf 'kind: benchmark\nname: nobin\ntimeout: 30s\nservices:\n  prom:\n    use: prometheus\n    with:\n      binary: /nonexistent/prometheus\n' >"$WS/nobin.yaml"
"$SONDE" -q run "$WS/nobin.yaml" >/dev/null 2>&1; rc=$?
reason=$(session_field "$(latest_id)" reason)
check "a missing binary: exit 1 ($rc), named: $reason" py "$rc == 1 and '/nonexistent/prometheus' in '''$reason'''"

kill -TERM -- -$NPID 2>/dev/null
finish
