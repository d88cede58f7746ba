#!/usr/bin/env bash
# scrape.sh SONDE — the prometheus monitor against real endpoints: a real
# prometheus-node-exporter with the prometheus-node preset beside the node monitor
# (counter rates, gauges, no warning), an OpenMetrics page whose histogram grows by
# known amounts per scrape (p50/p90/p99/mean/count/buckets exact, counter rate, the
# Accept header), one that restarts (increases counted across the reset), a service
# scraped by name (labelled, its own label renamed); bad endpoints served by a python3 server: one that never answers
# (scrapes time out, the node monitor beside it keeps its 1 Hz, the session ends on
# time though a 30 s scrape is in flight), a 50 MB body (an error naming the limit,
# sonde's peak RSS bounded), garbage with NaN/Inf and duplicate series (bad lines and
# duplicates counted); bad options at validate time; the prometheus-vllm preset
# against sonde-sim's /metrics, by URL and by service name.
. "$(dirname "$0")/lib.sh"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); t=d['trials'][0]; $1"; }
PIDS=()
stop_all() { local p; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap stop_all EXIT

# A node exporter on a free loopback port.
NE_PORT=$(free_port)
/usr/bin/prometheus-node-exporter --web.listen-address="127.0.0.1:$NE_PORT" >"$WS/ne.log" 2>&1 &
PIDS+=($!)
# The python3 endpoints (their port in $WS/srv.port).
cat >"$WS/srv.py" <<'EOF'
# Endpoints for scrape.sh, on 127.0.0.1 (port written to argv[1]):
#   /hang     accepts, never answers
#   /big      a 50 MB text body
#   /garbage  malformed lines, NaN/Inf, duplicate series, one good gauge
#   /hist     OpenMetrics: per request, a histogram gains 1, 2, 1 and 1 observations
#             in its buckets le=0.1, 0.2, 0.4, +Inf (sum +1.0) and a counter +10;
#             the Accept header of the first request goes to argv[2]
#   /svc      a gauge with a label named service (scraped as a service by name)
#   /reset    a counter and a histogram (count, le=1 and +Inf buckets) at 10, 20 on
#             requests 1 and 2, then the endpoint "restarts": 11, 22, 33, ... from
#             request 3; its le=0.1 bucket 5, 6, then 7, 14, 21, ... (up at the
#             restart); a histogram of negative observations: count 2k, sum -k;
#             summaries like each (rs_rpc, neg_rpc; quantile gauges 0.9, -0.9), and
#             one of only a _sum like the counter (lone_rpc)
import http.server, os, socketserver, sys, threading, time

lock = threading.Lock()
hits = 0
reset_hits = 0

class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send(self, body, ctype="text/plain; version=0.0.4; charset=utf-8"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        global hits, reset_hits
        if self.path == "/hang":
            time.sleep(3600)
        elif self.path == "/big":
            chunk = (b"big_gauge{i=\"%08d\"} 1\n" % 0) * 4096
            total = 50 * 1000 * 1000
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(total))
            self.end_headers()
            try:
                sent = 0
                while sent < total:
                    n = min(len(chunk), total - sent)
                    self.wfile.write(chunk[:n])
                    sent += n
            except OSError:
                pass
        elif self.path == "/garbage":
            self.send(b"# TYPE good gauge\ngood 42\n"
                      b"this is not a sample\n"
                      b"bad{a=\"x} 1\n"
                      b"\x00\xff\xfe 3\n"
                      b"nan_gauge NaN\ninf_gauge +Inf\nminf_gauge -Inf\n"
                      b"dup{a=\"1\",b=\"2\"} 1\ndup{b=\"2\",a=\"1\"} 2\ndup{a=\"1\",b=\"2\"} 3\n"
                      b"# TYPE h histogram\nh_bucket 5\n")
        elif self.path == "/hist":
            with lock:
                hits += 1
                k = hits
                if k == 1:
                    open(sys.argv[2], "w").write(self.headers.get("Accept", ""))
            body = ("# TYPE hist_latency_seconds histogram\n"
                    "# UNIT hist_latency_seconds seconds\n"
                    "hist_latency_seconds_bucket{path=\"/a\",le=\"0.1\"} %d # {trace_id=\"t%d\"} 0.05 %d.5\n"
                    "hist_latency_seconds_bucket{path=\"/a\",le=\"0.2\"} %d\n"
                    "hist_latency_seconds_bucket{path=\"/a\",le=\"0.4\"} %d\n"
                    "hist_latency_seconds_bucket{path=\"/a\",le=\"+Inf\"} %d\n"
                    "hist_latency_seconds_sum{path=\"/a\"} %d.0\n"
                    "hist_latency_seconds_count{path=\"/a\"} %d\n"
                    "hist_latency_seconds_created{path=\"/a\"} 1700000000.0\n"
                    "# TYPE hist_requests counter\n"
                    "hist_requests_total %d\n"
                    "hist_requests_created 1700000000.0\n"
                    "# TYPE hist_other gauge\nhist_other 1\n"
                    "# EOF\n") % (k, k, int(time.time()), 3 * k, 4 * k, 5 * k, k, 5 * k, 10 * k)
            self.send(body.encode(), "application/openmetrics-text; version=1.0.0; charset=utf-8")
        elif self.path == "/svc":
            self.send(b"# TYPE svc_gauge gauge\nsvc_gauge{service=\"inner\",x=\"1\"} 7\n")
        elif self.path == "/reset":
            with lock:
                reset_hits += 1
                k = reset_hits
            v = 10 * k if k <= 2 else 11 * (k - 2)
            low = 4 + k if k <= 2 else 7 * (k - 2)
            body = ("# TYPE rs_seconds histogram\n"
                    "rs_seconds_bucket{le=\"0.1\"} %d\n"
                    "rs_seconds_bucket{le=\"1\"} %d\nrs_seconds_bucket{le=\"+Inf\"} %d\n"
                    "rs_seconds_sum %g\nrs_seconds_count %d\n"
                    "# TYPE rs_total counter\nrs_total %d\n"
                    "# TYPE neg_seconds histogram\n"
                    "neg_seconds_bucket{le=\"0\"} %d\nneg_seconds_bucket{le=\"+Inf\"} %d\n"
                    "neg_seconds_sum %d\nneg_seconds_count %d\n"
                    "# TYPE rs_rpc summary\nrs_rpc{quantile=\"0.5\"} 0.9\n"
                    "rs_rpc_sum %g\nrs_rpc_count %d\n"
                    "# TYPE neg_rpc summary\nneg_rpc{quantile=\"0.5\"} -0.9\n"
                    "neg_rpc_sum %d\nneg_rpc_count %d\n"
                    "# TYPE lone_rpc summary\nlone_rpc_sum %d\n") % (
                        low, v, v, v / 2, v, v, 2 * k, 2 * k, -k, 2 * k, v / 2, v, -k, 2 * k, v)
            self.send(body.encode())
        else:
            self.send_error(404)

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

s = S(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
EOF
python3 "$WS/srv.py" "$WS/srv.port" "$WS/accept.txt" 2>"$WS/srv.log" &
PIDS+=($!)
for ((i = 0; i < 50; i++)); do
  [ -s "$WS/srv.port" ] && curl -sf "http://127.0.0.1:$NE_PORT/metrics" >/dev/null && break
  sleep 0.1
done
SRV="http://127.0.0.1:$(cat "$WS/srv.port" 2>/dev/null)"
NE="http://127.0.0.1:$NE_PORT/metrics"
check "node exporter and the python3 endpoints answer" curl -sf -o /dev/null "$SRV/garbage"

# run NAME: runs $WS/NAME.yaml quietly (in the background, sonde's VmHWM sampled
# into $WS/NAME.hwm; stopped after 90 s), saves the report as $WS/NAME.json; the
# exit status is sonde's.
run() {
  local t0 pid rc hwm=0 h i
  t0=$(date +%s.%N)
  "$SONDE" -q run "$WS/$1.yaml" >"$WS/$1.out" 2>&1 &
  pid=$!
  for ((i = 0; i < 900 && $(kill -0 "$pid" 2>/dev/null && echo 1 || echo 0); i++)); do
    h=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
    sleep 0.1
  done
  kill "$pid" 2>/dev/null
  wait "$pid"
  rc=$?
  echo "$hwm" >"$WS/$1.hwm"
  python3 -c "print($(date +%s.%N) - $t0)" >"$WS/$1.secs"
  "$SONDE" report latest --format json >"$WS/$1.json"
  return $rc
}

# 1. Good endpoints: the node preset beside the node monitor; the OpenMetrics page.
cat >"$WS/good.yaml" <<EOF
kind: benchmark
name: scrape-good
timeout: 1m
services: # the python3 server, as a service that says where its metrics are
  py: {driver: generic, port: $(cat "$WS/srv.port"), with: {command: [sleep, "60"], metrics: /svc}}
  # another port's metrics, by URL (as Triton's second port)
  py2: {driver: generic, port: $(free_port), with: {command: [sleep, "60"], metrics: "$SRV/svc"}}
clients:
  wait: {driver: exec, with: {command: [sleep, "4"]}}
monitors:
  node: {use: node}
  ne: {use: prometheus-node, with: {url: "$NE"}}
  om:
    use: prometheus
    with:
      url: "$SRV/hist"
      match: [hist_latency_seconds, hist_requests_total]
  rs: {use: prometheus, with: {url: "$SRV/reset"}}
  svc: {use: prometheus, with: {scrape: [py, py2]}}
EOF
run good
check "good: exits 0" test $? -eq 0
rep=$(cat "$WS/good.json")
check "good: node_cpu_seconds_total as rates (/s, >= 0, >= 2 points each, cpu x mode series)" json "
s=[x for x in t['series'] if x['component']=='ne' and x['name']=='node_cpu_seconds_total']
assert len(s) >= 8 and all(x['unit']=='/s' for x in s), s
assert all(len(x['points']) >= 2 and all(p[1] >= 0 for p in x['points']) for x in s), s
assert any(x['labels'].get('mode')=='idle' and x['labels'].get('cpu')=='0' for x in s)
assert sum(p[1] for x in s if x['labels'].get('mode')=='idle' for p in x['points']) > 0" <<<"$rep"
check "good: gauges recorded (memory, load: >= 3 points, no unit) with _mean and _max" json "
s={x['name']: x for x in t['series'] if x['component']=='ne'}
for n in ('node_memory_MemTotal_bytes', 'node_load1'):
    assert len(s[n]['points']) >= 3 and s[n]['unit'] is None, s[n]
m={x['name']: x['value'] for x in t['metrics'] if x['component']=='ne'}
assert m['node_memory_MemTotal_bytes_max'] > 0 and m['node_memory_MemTotal_bytes_mean'] > 0
assert 'node_load1_mean' in m and 'node_network_receive_bytes_total_rate_mean' in m
assert not any(x['name'].startswith('go_') for x in t['series'])  # not in the preset's match" <<<"$rep"
check "good: scrape metrics: >= 3 scrapes, no error, no bad line, no drop" json "
m={x['name']: x for x in t['metrics'] if x['component']=='ne'}
assert m['scrapes']['value'] >= 3 and m['scrape_errors']['value'] == 0, m
assert m['bad_lines']['value'] == 0 and m['dropped_series']['value'] == 0
assert m['duplicate_samples']['value'] == 0 and 0 < m['scrape_duration_mean']['value'] < 1000
assert m['scrape_duration_mean']['unit'] == 'ms'" <<<"$rep"
check "good: the node monitor beside it still samples" json "
assert any(x['component']=='node' and x['name']=='cpu_percent' and len(x['points']) >= 3 for x in t['series'])" <<<"$rep"
check "good: no warning" json "
assert not [e for e in d['events'] if e['level'] in ('warning', 'error')], d['events']" <<<"$rep"
# Per scrape the histogram gains (1, 2, 1, 1) in its buckets and 1.0 in its sum: over
# K = scrapes - 1 intervals 5K observations, p50 = 0.1 + 0.1 * 1.5/2 = 0.175, p90 and
# p99 in +Inf (the largest finite bound: 0.4), mean 0.2, bucket le=0.2 3K.
check "om: histogram p50/p90/p99, mean, count and buckets of the trial" json "
m={(x['name'], x['labels'].get('le')): x for x in t['metrics'] if x['component']=='om'}
k=m[('scrapes', None)]['value'] - 1
assert k >= 2, k
v=lambda n, le=None: m[(n, le)]['value']
assert abs(v('hist_latency_seconds_p50') - 0.175) < 1e-9, v('hist_latency_seconds_p50')
assert v('hist_latency_seconds_p90') == 0.4 and v('hist_latency_seconds_p99') == 0.4
assert abs(v('hist_latency_seconds_mean') - 0.2) < 1e-9 and v('hist_latency_seconds_count') == 5 * k
assert [v('hist_latency_seconds_bucket', le) for le in ('0.1', '0.2', '0.4', '+Inf')] == [k, 3 * k, 4 * k, 5 * k]
assert m[('hist_latency_seconds_p50', None)]['labels'] == {'path': '/a'}" <<<"$rep"
check "om: counter rate (10 per scrape, about 10/s), _count rate, nothing of _created or unmatched" json "
s={x['name']: x for x in t['series'] if x['component']=='om'}
assert set(s) == {'hist_requests_total', 'hist_latency_seconds_count'}, set(s)
assert s['hist_requests_total']['unit'] == '/s' and len(s['hist_requests_total']['points']) >= 2
m={x['name']: x['value'] for x in t['metrics'] if x['component']=='om'}
assert 6 < m['hist_requests_total_rate_mean'] < 15, m['hist_requests_total_rate_mean']" <<<"$rep"
check "svc: services scraped by name (a path; a whole URL): labelled service=NAME, their own service label kept as exported_service" json "
s=sorted((x for x in t['series'] if x['component']=='svc'), key=lambda x: x['labels']['service'])
assert [x['labels'] for x in s] == [{'service': n, 'exported_service': 'inner', 'x': '1'} for n in ('py', 'py2')], s
assert all(len(x['points']) >= 3 and all(p[1] == 7 for p in x['points']) for x in s), s" <<<"$rep"
# /reset: 10, 20, then a restart: 11, 22, 33, ... The increases over K intervals
# are 10 + 11 (K - 1), as Prometheus's increase() counts them; last minus first
# would be wrong once the value climbs past the first again. The whole histogram
# is reset with its count: the le=0.1 bucket's 6 -> 7 is 7 new, 1 + 7 (K - 1) in all.
# The negative observations' _sum goes down without a reset: mean -0.5. Summaries
# the same: count and mean over the trial, reset with their count.
check "reset: counter and histogram increases counted across the endpoint's restart" json "
m={(x['name'], x['labels'].get('le')): x['value'] for x in t['metrics'] if x['component']=='rs'}
k=m[('scrapes', None)] - 1
assert k >= 3, k
want=10 + 11 * (k - 1)
assert m[('rs_seconds_count', None)] == want, (m, want)
assert m[('rs_seconds_bucket', '1')] == want and m[('rs_seconds_bucket', '+Inf')] == want, m
assert m[('rs_seconds_bucket', '0.1')] == 1 + 7 * (k - 1), m
assert abs(m[('rs_seconds_mean', None)] - 0.5) < 1e-9, m
assert m[('neg_seconds_count', None)] == 2 * k and m[('neg_seconds_bucket', '0')] == 2 * k, m
assert abs(m[('neg_seconds_mean', None)] + 0.5) < 1e-9, m
# summaries: keyed by all their labels (the quantile gauges' own _mean has a quantile label)
q={(x['name'], tuple(sorted(x['labels'].items()))): x['value'] for x in t['metrics'] if x['component']=='rs'}
assert q[('rs_rpc_count', ())] == want and abs(q[('rs_rpc_mean', ())] - 0.5) < 1e-9, q
assert q[('neg_rpc_count', ())] == 2 * k and abs(q[('neg_rpc_mean', ())] + 0.5) < 1e-9, q
assert q[('rs_rpc_mean', (('quantile', '0.5'),))] == 0.9 and q[('neg_rpc_max', (('quantile', '0.5'),))] == -0.9, q
assert q[('neg_rpc_count_rate_mean', ())] > 0 and ('neg_rpc_sum_rate_mean', ()) not in q, q
assert q[('lone_rpc_sum', ())] == want, q  # a summary without _count: its sum's increase, reset as a counter
s=[x for x in t['series'] if x['component']=='rs' and x['name']=='rs_total'][0]
assert len(s['points']) == k and all(p[1] > 0 for p in s['points']), s  # a point at the reset too
assert 5 < m[('rs_total_rate_mean', None)] < 25, m" <<<"$rep"
check "om: the scrape asks for OpenMetrics first" grep -q '^application/openmetrics-text;version=1.0.0;q=0.9,text/plain;version=0.0.4' "$WS/accept.txt"

# 2. Bad endpoints beside the node monitor; the session ends on time.
cat >"$WS/bad.yaml" <<EOF
kind: benchmark
name: scrape-bad
timeout: 1m
clients:
  wait: {driver: exec, with: {command: [sleep, "4"]}}
monitors:
  node: {use: node}
  hang: {use: prometheus, with: {url: "$SRV/hang"}}
  hang30: {use: prometheus, with: {url: "$SRV/hang", timeout: 30s}}
  big: {use: prometheus, interval: 10s, with: {url: "$SRV/big", max_bytes: 4MiB}} # one scrape
  garbage: {use: prometheus, with: {url: "$SRV/garbage"}}
  few: {use: prometheus, with: {url: "$SRV/garbage", max_series: 2}}
EOF
run bad
check "bad: exits 0 (the session goes on)" test $? -eq 0
secs=$(cat "$WS/bad.secs")
check "bad: ends within 8 s though a 30 s scrape is in flight ($secs s)" py "$secs < 8"
rep=$(cat "$WS/bad.json")
m() { json "m={(x['component'], x['name']): x['value'] for x in t['metrics']}; $1" <<<"$rep"; }
check "bad: the node monitor keeps its 1 Hz beside a hanging endpoint" json "
s=[x for x in t['series'] if x['component']=='node' and x['name']=='cpu_percent']
assert s and len(s[0]['points']) >= 3, s" <<<"$rep"
check "bad: hang: every scrape timed out (after 1 s, the interval), counted" m "
assert m[('hang','scrapes')] >= 2 and m[('hang','scrape_errors')] == m[('hang','scrapes')], m"
check "bad: hang30: its one scrape was abandoned at the end" m "assert m[('hang30','scrapes')] == 0, m"
check "bad: a warning per failing endpoint, naming the URL, the count and the first error" json "
w=[e['message'] for e in d['events'] if e['level']=='warning']
assert any('scrape of $SRV/hang: ' in x and ' failed: no complete response within 1 s' in x for x in w), w
assert any('scrape of $SRV/big: 1 of 1 failed: response larger than the 4.0 MiB limit' in x for x in w), w
assert any('scrape of $SRV/hang: none finished during the trial (the one in flight at its end was abandoned)' in x for x in w), w
assert any('scrape of $SRV/garbage: ' in x and 'malformed lines skipped (first: line 3: bad value ' in x and 'duplicate samples' in x for x in w), w" <<<"$rep"
hwm=$(cat "$WS/bad.hwm") base=$(cat "$WS/good.hwm")
check "bad: big: its scrape failed; sonde's peak RSS ($((hwm / 1024)) MiB, $((base / 1024)) MiB in 'good') far below +50 MB" m "
assert m[('big','scrapes')] == 1 and m[('big','scrape_errors')] == 1, m
assert $base > 0 and $hwm < $base + 30 * 1024, ($hwm, $base)"
check "bad: garbage: bad lines and duplicates counted, the good gauge kept, NaN/Inf not stored" json "
m={(x['name']): x['value'] for x in t['metrics'] if x['component']=='garbage'}
n=m['scrapes']
assert n >= 2 and m['scrape_errors'] == 0, m
assert m['bad_lines'] == 4 * n and m['duplicate_samples'] == 2 * n, m
assert m['good_mean'] == 42 and 'nan_gauge_mean' not in m and 'inf_gauge_mean' not in m, m
s={x['name']: x for x in t['series'] if x['component']=='garbage'}
assert len(s['good']['points']) == n and all(p[1] == 42 for p in s['good']['points'])
assert len(s['dup']['points']) == n and all(p[1] == 1 for p in s['dup']['points']), s['dup']
assert all(len(s[k]['points']) == 0 for k in ('nan_gauge', 'inf_gauge') if k in s)" <<<"$rep"

check "bad: few: beyond max_series new series are dropped, counted, one warning" json "
m={x['name']: x['value'] for x in t['metrics'] if x['component']=='few'}
assert m['dropped_series'] == 3 and m['duplicate_samples'] == 2 * m['scrapes'], m  # inf_gauge, minf_gauge, dup (3 times)
assert {x['name'] for x in t['series'] if x['component']=='few'} <= {'good', 'nan_gauge'}
w=[e['message'] for e in d['events'] if e['level']=='warning' and 'max_series (2)' in e['message']]
assert len(w) == 1, w" <<<"$rep"

# 3. Bad options: exit 2 at validate time, each naming its option.
cat >"$WS/opts.yaml" <<'EOF'
kind: benchmark
name: scrape-opts
services: # where its metrics are: not an http:// URL (twice); a query string
  s1: {driver: generic, port: 1, with: {command: [sleep, "1"], metrics: "https://127.0.0.1:1/metrics"}}
  s2: {driver: generic, port: 1, with: {command: [sleep, "1"], metrics: "/metrics?x=1"}}
  s3: {driver: generic, port: 1, with: {command: [sleep, "1"], metrics: "https://${self.host}:1/metrics"}}
clients:
  wait: {driver: exec, with: {command: [true]}}
monitors:
  a: {driver: prometheus, with: {url: "http://127.0.0.1:1/metrics", match: ["ok", "a("]}}
  b: {driver: prometheus, with: {match: [x]}}
  c: {use: prometheus-node, with: {url: "https://127.0.0.1:1/metrics"}}
  d: {use: prometheus, with: {url: "127.0.0.1:1"}}
  e: {use: prometheus, with: {url: "http://127.0.0.1:1/", labels: {mode: "[z"}, max_series: 0}}
  f: {use: prometheus, with: {url: "http://127.0.0.1:1/", scrape: [x]}}
  g: {use: prometheus, with: {scrape: []}}
  h: {use: prometheus, with: {scrape: [x, x]}}
EOF
out=$("$SONDE" run "$WS/opts.yaml" 2>&1)
rc=$?
check "opts: exit 2 ($rc)" test "$rc" -eq 2
check "opts: a bad regex names match[1]" contains "$out" "monitors.a.with.match\[1\]: 'a(' is not a valid regular expression"
check "opts: a missing url" contains "$out" "monitors.b.with.url: missing: give \`url\` (an endpoint) or \`scrape\` (services by name)"
check "opts: url and scrape together; an empty scrape list; a service named twice" bash -c '
grep -q "monitors.f.with.scrape: give \`url\` or \`scrape\`, not both" <<<"$1" &&
grep -q "monitors.g.with.scrape: an empty list: name at least one service" <<<"$1" &&
grep -q "monitors.h.with.scrape\[1\]: .x. is named twice" <<<"$1"' _ "$out"
check "opts: https and a bare host:port are not http:// URLs" py "$(grep -c 'with.url: expected an http://host\[:port\]/path URL' <<<"$out") == 2"
check "opts: a bad label regex" contains "$out" "monitors.e.with.labels.mode: '\[z' is not a valid regular expression"
check "opts: max_series out of range" contains "$out" "monitors.e.with.max_series: must be between 1 and 1000000"
check "opts: a service's metrics: not an http:// URL (also before a \${...}); a query string" bash -c '
grep -q "services.s1.with.metrics: .https://127.0.0.1:1/metrics. is not an http://HOST:PORT/PATH URL" <<<"$1" &&
grep -q "services.s2.with.metrics: ./metrics?x=1.: a query string is not supported" <<<"$1" &&
grep -q "services.s3.with.metrics: .https://\${self.host}:1/metrics. is not an http://" <<<"$1"' _ "$out"
check "opts: nothing ran" not_contains "$out" "session "

# 4. The prometheus-vllm preset against sonde-sim's vLLM-named /metrics: by URL, and
# by service name (two services, one loaded, each on its own thread and labelled).
cat >"$WS/vllm.yaml" <<'EOF'
kind: benchmark
name: scrape-vllm
timeout: 1m
services:
  llm:
    use: sonde-sim-llm
    with:
      command: [sonde-sim, --openai, --host, "${self.listen}", --port, "${self.port}",
                --ttft, 100ms, --itl, 5ms, --max-concurrency, "8"]
  idle: {use: sonde-sim-llm}
clients:
  gen:
    use: openai
    with:
      url: "http://${services.llm.host}:${services.llm.port}"
      model: sim-model
      endpoint: completions
      mode: closed
      connections: 4
      input_tokens: 32
      max_tokens: 16
      duration: 4s
monitors:
  vllm: {use: prometheus-vllm, with: {url: "http://${services.llm.host}:${services.llm.port}/metrics"}}
  byname: {use: prometheus-vllm, with: {scrape: [llm, idle]}}
EOF
run vllm
check "vllm: exits 0" test $? -eq 0
check "vllm: TTFT histogram of the trial: mean ~100 ms, p50 in the bucket around it" json "
m={x['name']: x['value'] for x in t['metrics'] if x['component']=='vllm'}
assert m['scrape_errors'] == 0 and m['bad_lines'] == 0, m
assert m['vllm:time_to_first_token_seconds_count'] > 10, m
assert 0.095 < m['vllm:time_to_first_token_seconds_mean'] < 0.2, m['vllm:time_to_first_token_seconds_mean']
assert 0.05 <= m['vllm:time_to_first_token_seconds_p50'] <= 0.25, m['vllm:time_to_first_token_seconds_p50']
assert 'vllm:e2e_request_latency_seconds_p99' in m and 'vllm:inter_token_latency_seconds_p50' in m" <<<"$(cat "$WS/vllm.json")"
check "vllm: token rates and running requests / KV-cache gauges recorded" json "
s={x['name']: x for x in t['series'] if x['component']=='vllm'}
assert s['vllm:generation_tokens_total']['unit'] == '/s'
assert max(p[1] for p in s['vllm:generation_tokens_total']['points']) > 0
assert 'vllm:num_requests_running' in s and 'vllm:kv_cache_usage_perc' in s and 'vllm:gpu_cache_usage_perc' in s
assert max(p[1] for p in s['vllm:num_requests_running']['points']) > 0" <<<"$(cat "$WS/vllm.json")"

check "by name: each service scraped and labelled; the loaded one's TTFT as by URL, the idle one's 0" json "
m={(x['name'], x['labels'].get('service')): x['value'] for x in t['metrics'] if x['component']=='byname'}
u={x['name']: x['value'] for x in t['metrics'] if x['component']=='vllm'}
for svc in ('llm', 'idle'):
    assert m[('scrapes', svc)] >= 3 and m[('scrape_errors', svc)] == 0, (svc, m)
n=m[('vllm:time_to_first_token_seconds_count', 'llm')]
assert abs(n - u['vllm:time_to_first_token_seconds_count']) <= 8, (n, u['vllm:time_to_first_token_seconds_count'])
assert 0.095 < m[('vllm:time_to_first_token_seconds_mean', 'llm')] < 0.2, m
assert m[('vllm:time_to_first_token_seconds_count', 'idle')] == 0, m
s=[x for x in t['series'] if x['component']=='byname']
assert s and all(x['labels'].get('service') in ('llm', 'idle') for x in s)
assert {x['labels']['service'] for x in s if x['name']=='vllm:num_requests_running'} == {'llm', 'idle'}" <<<"$(cat "$WS/vllm.json")"

# A service that is not in the benchmark: the trial fails before any client, naming it.
cat >"$WS/noservice.yaml" <<'EOF'
kind: benchmark
name: scrape-noservice
clients:
  wait: {driver: exec, with: {command: [sleep, "5"]}}
monitors:
  m: {use: prometheus, with: {scrape: [nosuch]}}
EOF
out=$("$SONDE" -q run "$WS/noservice.yaml" 2>&1)
rc=$?
check "by name: an unknown service fails the trial (exit $rc), named" bash -c '
[ "$2" -eq 1 ] && grep -q "with.scrape\[0\]: .nosuch. is not a service of this benchmark" <<<"$1"' _ "$out" "$rc"

finish
