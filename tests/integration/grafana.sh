#!/usr/bin/env bash
# grafana.sh SONDE — `sonde grafana export`: the dashboards of each family and of all, their
# structure and provisioning files; the families a session's components select; bad input.
# Then live: sonde-sim's /metrics in OpenAI (vLLM names) and KServe (Triton names) mode,
# checked against the simulator's known timing; a real node exporter, two sessions with
# sonde's exporter, and a real Prometheus scraping all of them. Every metric name the
# dashboards query must be in some scrape (the GPU monitor's names excepted, listed as not
# checkable without a GPU), and every query must evaluate to series in that Prometheus.
. "$(dirname "$0")/lib.sh"
CHECK=(python3 tests/data/grafana/check.py)
for p in prometheus prometheus-node-exporter promtool sonde-sim; do
  command -v $p >/dev/null || { bad "$p is installed (Debian packages prometheus, prometheus-node-exporter)"; finish; exit 1; }
done
PGIDS=()
cleanup() { local p; for p in "${PGIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done; }
trap cleanup EXIT
start() { setsid "$@" & PGIDS+=($!); } # a process in its own group, killed at exit
# up URL: waits (5 s at most) until URL answers
up() { local i; for i in $(seq 50); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }
GPU=(sonde_gpu_utilization_percent sonde_gpu_memory_utilization_percent sonde_gpu_memory_used_bytes
  sonde_gpu_memory_total_bytes sonde_gpu_power_w sonde_gpu_energy_j sonde_gpu_sm_clock_mhz
  sonde_gpu_mem_clock_mhz sonde_gpu_temperature_c)

# ---- 1. exports ----------------------------------------------------------------------------------
check "the metric-name extractor reads known expressions right" "${CHECK[@]}" selftest
for f in inference storage vector node; do
  "$SONDE" grafana export --family $f "$WS/g-$f" >"$WS/g-$f.out" 2>&1; rc=$?
  check "export --family $f: exit 0 ($rc)" test $rc -eq 0
  check "... one dashboard, its panels and the provisioning files check out" \
    "${CHECK[@]}" files "$WS/g-$f" $f http://localhost:9090 sonde-prometheus
done
"$SONDE" grafana export --family all "$WS/g-all" >"$WS/g-all.out" 2>&1; rc=$?
check "export --family all: exit 0 ($rc), the 6 files named" test $rc -eq 0 -a "$(grep -c '^wrote ' "$WS/g-all.out")" -eq 6
check "... four dashboards, distinct uids" "${CHECK[@]}" files "$WS/g-all" inference,storage,vector,node \
  http://localhost:9090 sonde-prometheus
"$SONDE" grafana export --family all "$WS/g-all2" >/dev/null 2>&1
check "... the same dashboards twice (deterministic)" diff -r "$WS/g-all/dashboards" "$WS/g-all2/dashboards"
(cd "$WS" && "$SONDE" grafana export --family vector --family node --prometheus-url http://prom.example:9090/ \
  --datasource-uid site-prom_1 rel/g >/dev/null 2>&1)
check "a relative DIR, --prometheus-url and --datasource-uid: in the YAML (absolute path) and the dashboards" \
  "${CHECK[@]}" files "$WS/rel/g" vector,node http://prom.example:9090/ site-prom_1
"$SONDE" --json grafana export --family storage "$WS/g-json" >"$WS/g-json.out" 2>&1
check "--json: the families and the files written" python3 -c "
import json; d=json.load(open('$WS/g-json.out'))
assert d['families'] == ['storage'] and len(d['files']) == 3 and d['dir'] == '$WS/g-json', d"

# bad input: each exits non-zero and says what is wrong
bad_case() { # description, expected status, expected message, args...
  local d=$1 want=$2 msg=$3; shift 3
  local out rc
  out=$("$SONDE" grafana "$@" 2>&1); rc=$?
  check "$d: exit $want ($rc), says '$msg'" test "$rc" -eq "$want" -a -n "$(grep -F -- "$msg" <<<"$out")"
}
bad_case "an unknown family" 2 "--family: expected inference, storage, vector, node or all, got 'bogus'" \
  export --family bogus "$WS/b1"
check "... and writes nothing" test ! -e "$WS/b1"
bad_case "no DIR" 2 "missing DIR" export --family inference
bad_case "SESSION without DIR" 2 "missing DIR" export latest
bad_case "an unknown session" 1 "no session 'nosuchsession'" export nosuchsession "$WS/b2"
check "... and writes nothing" test ! -e "$WS/b2"
bad_case "SESSION and --family" 2 "give either SESSION or --family, not both" export --family node latest "$WS/b3"
bad_case "a URL that is not http" 2 "--prometheus-url 'ftp://x': expected an http:// or https:// URL" \
  export --family node --prometheus-url ftp://x "$WS/b4"
bad_case "a uid with a space" 2 "--datasource-uid 'a b': a datasource uid holds only A-Z a-z 0-9 - _" \
  export --family node --datasource-uid "a b" "$WS/b5"
touch "$WS/afile"
bad_case "a DIR that cannot be created" 1 "cannot create the directory $WS/afile/x/dashboards" \
  export --family node "$WS/afile/x"
bad_case "an unknown subcommand" 2 "unknown grafana command 'frob'" frob

# ---- 2. sonde-sim /metrics, against the simulator's fixed timing --------------------------------
# OpenAI: 3 streamed requests of 4 tokens (3-word prompts), TTFT 200 ms, ITL 10 ms, 2 at once, a
# KV cache of 100 tokens.
OP=$(free_port)
start sonde-sim --openai --port "$OP" --ttft 200ms --itl 10ms --output-tokens 4 --max-concurrency 2 \
  --kv-cache-tokens 100 >"$WS/sim-oai.log" 2>&1
up "http://127.0.0.1:$OP/health"
vals() { curl -s "http://127.0.0.1:$1/metrics" | awk '!/^#/ {split($1, a, "{"); v[a[1]] = $2} END {for (k in v) print k, v[k]}' | sort; }
get() { awk -v k="$2" '$1 == k {print $2}' <<<"$1"; } # TEXT NAME
python3 - "$OP" "$WS/oai.prom" >"$WS/oai.out" 2>&1 <<'EOF'
import http.client, sys, threading, time
port, out = int(sys.argv[1]), sys.argv[2]
def metrics():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    return text
def values(text):
    return {l.split("{")[0]: float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l and l[0] != "#"}
done = []
def gen():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/v1/completions", body='{"prompt": "one two three", "stream": true}')
    done.append(c.getresponse().read().count(b"data: [DONE]"))
th = [threading.Thread(target=gen) for _ in range(3)]
for t in th:
    t.start()
deadline = time.monotonic() + 1
while time.monotonic() < deadline:  # until the three are read (first tokens are due at 200 ms)
    m = values(metrics())
    if m["vllm:num_requests_running"] + m["vllm:num_requests_waiting"] == 3:
        break
    time.sleep(0.005)
for t in th:
    t.join(10)
open(out, "w").write(metrics())
r, w, kv, gkv = (m["vllm:" + k] for k in ("num_requests_running", "num_requests_waiting",
                                          "kv_cache_usage_perc", "gpu_cache_usage_perc"))
print("during: running %g waiting %g kv %g; streams done %r" % (r, w, kv, done))
sys.exit(0 if (r, w) == (2, 1) and abs(kv - 0.06) < 1e-9 and kv == gkv and done == [1, 1, 1] else 1)
EOF
rc=$?
check "openai: while the first two of 3 streams generate: running 2, waiting 1, KV usage 2 x 3 prompt tokens / 100; all 3 end ($(cat "$WS/oai.out"))" test $rc -eq 0
check "openai: the text format parses (promtool check metrics)" \
  bash -c "promtool check metrics <'$WS/oai.prom' >'$WS/oai.lint' 2>&1; [ \$? -ne 1 ] && ! grep -q 'error while linting' '$WS/oai.lint'"
check "openai: counters, gauges and histograms follow the timing (TTFT = queue + 200 ms, 3 gaps of 10 ms each, e2e = TTFT + 30 ms)" python3 -c "
import re
v = {}
for line in open('$WS/oai.prom'):
    if line.startswith('#') or not line.strip(): continue
    k, x = line.rsplit(' ', 1); v[k] = float(x)
def g(n, extra=''): return v['%s{model_name=\"sim-model\"%s}' % (n, extra)]
print({k: x for k, x in v.items() if '_bucket' not in k})
assert g('vllm:request_success_total') == 3 and g('vllm:generation_tokens_total') == 12
assert g('vllm:prompt_tokens_total') == 9 and g('vllm:num_requests_running') == 0
assert g('vllm:kv_cache_usage_perc') == 0 and g('vllm:num_requests_waiting') == 0
for h in ('time_to_first_token', 'inter_token_latency', 'time_per_output_token', 'e2e_request_latency', 'request_queue_time'):
    n = 'vllm:%s_seconds' % h
    b = [(float(re.search(r'le=\"([^\"]+)\"', k).group(1)), x) for k, x in v.items() if k.startswith(n + '_bucket')]
    b.sort()
    assert b[-1][0] == float('inf') and b[-1][1] == g(n + '_count'), (n, b[-1])
    assert all(x <= y for (_, x), (_, y) in zip(b, b[1:])), (n, b)
q, t, e = (g('vllm:%s_seconds_sum' % h) for h in ('request_queue_time', 'time_to_first_token', 'e2e_request_latency'))
assert g('vllm:time_to_first_token_seconds_count') == 3 and g('vllm:inter_token_latency_seconds_count') == 9
assert abs(g('vllm:inter_token_latency_seconds_sum') - 0.09) < 1e-6, g('vllm:inter_token_latency_seconds_sum')
assert g('vllm:time_per_output_token_seconds_sum') == g('vllm:inter_token_latency_seconds_sum')
assert abs(t - (q + 0.6)) < 1e-6 and abs(e - (t + 0.09)) < 1e-6, (q, t, e)
assert 0.2 < q < 0.3, q  # the third waited for a slot: one generation, 230 ms, less the gap between reads
assert g('vllm:time_to_first_token_seconds_bucket', ',le=\"0.1\"') == 0 and g('vllm:time_to_first_token_seconds_bucket', ',le=\"0.25\"') == 2"

# KServe: two infers of batch 2 and one bad one; --delay 3ms, 1 ms per batch element.
KP=$(free_port)
start sonde-sim --kserve --port "$KP" --delay 3ms --kserve-item-delay 1ms >"$WS/sim-ks.log" 2>&1
up "http://127.0.0.1:$KP/v2/health/ready"
row='[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]'
body="{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"INT32\",\"shape\":[2,16],\"data\":[$row,$row]},{\"name\":\"INPUT1\",\"datatype\":\"INT32\",\"shape\":[2,16],\"data\":[$row,$row]}]}"
codes=""
for b in "$body" "$body" '{"inputs": 5}'; do
  codes="$codes $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$KP/v2/models/simple/infer" -d "$b")"
done
m=$(vals "$KP")
check "kserve: answers 200 200 400 ($codes)" test "$codes" = " 200 200 400"
check "kserve: success 2, failure 1, inferences 4, executions 2; durations (µs): request 2 x (3000 + 2000), queue 2 x 3000, compute 2 x 2000 ($(tr '\n' ' ' <<<"$m"))" \
  test "$(for n in success failure; do get "$m" nv_inference_request_$n; done; for n in count exec_count request_duration_us queue_duration_us compute_infer_duration_us; do get "$m" nv_inference_$n; done)" \
  = "$(printf '%s\n' 2 1 4 2 10000 6000 4000)"
curl -s "http://127.0.0.1:$KP/metrics" | promtool check metrics >"$WS/ks.lint" 2>&1
check "kserve: the text format parses (promtool check metrics)" test $? -ne 1 -a -z "$(grep 'error while linting' "$WS/ks.lint")"

# ---- 3. live: Prometheus scrapes sims under load, a node exporter and two sessions' exporters ---
NP=$(free_port); PP=$(free_port); EP1=$(free_port); EP2=$(free_port)
start prometheus-node-exporter --web.listen-address=127.0.0.1:$NP --no-collector.systemd >"$WS/ne.log" 2>&1
check "the node exporter answers" up "http://127.0.0.1:$NP/metrics"
cat >"$WS/prom.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - {job_name: node, static_configs: [{targets: ["127.0.0.1:$NP"]}]}
  - {job_name: vllm, static_configs: [{targets: ["127.0.0.1:$OP"]}]}
  - {job_name: triton, static_configs: [{targets: ["127.0.0.1:$KP"]}]}
  - {job_name: sonde, static_configs: [{targets: ["127.0.0.1:$EP1", "127.0.0.1:$EP2"]}]}
EOF
start prometheus --config.file="$WS/prom.yml" --storage.tsdb.path="$WS/tsdb" \
  --web.listen-address=127.0.0.1:$PP >"$WS/prom.log" 2>&1
PROM=http://127.0.0.1:$PP
for _ in $(seq 100); do curl -sf -o /dev/null "$PROM/-/ready" && break; sleep 0.1; done
check "Prometheus is ready" curl -sf -o /dev/null "$PROM/-/ready"
# (its discovery hands the targets over a few seconds after the start; bounded: 20 s)
for _ in $(seq 100); do
  n=$(curl -s "$PROM/api/v1/targets?state=active" | python3 -c "import json,sys
print(sum(t['health'] == 'up' and t['labels']['job'] in ('node', 'vllm', 'triton') for t in json.load(sys.stdin)['data']['activeTargets']))")
  [ "$n" = 3 ] && break
  sleep 0.2
done
check "Prometheus scrapes the node exporter and both simulators ($n of 3 up)" test "$n" = 3
# a light load on both simulators for the whole live part (bounded: 60 s)
start bash -c "for i in \$(seq 300); do [ -e '$WS/stop' ] && break
  curl -s -o /dev/null http://127.0.0.1:$OP/v1/completions -d '{\"prompt\": \"a b\", \"max_tokens\": 2}'
  curl -s -o /dev/null http://127.0.0.1:$KP/v2/models/simple/infer -d '$body'; sleep 0.2; done"

cat >"$WS/gen.yaml" <<'EOF'
kind: benchmark
name: grafana-gen
timeout: 1m
services:
  llm:
    use: sonde-sim-llm
clients:
  gen:
    driver: openai
    with:
      url: "http://${services.llm.host}:${services.llm.port}"
      model: sim-model
      max_tokens: 8
      prompt: hello there
      connections: 2
      duration: 5s
monitors: [node, process]
EOF
mkdir -p "$WS/fs"
cat >"$WS/io.yaml" <<EOF
kind: benchmark
name: grafana-io
timeout: 1m
clients:
  io:
    driver: fileio
    with:
      path: $WS/fs
      size: 4MiB
      bs: 64KiB
      phases: [write, read]
      duration: 3s
      drop_caches: false
monitors: [node]
EOF
# session NAME PORT: runs $WS/NAME.yaml with the exporter on PORT and scrapes it every 0.2 s
# while the session runs (bounded: 60 s); sets T (a time in the middle of the client's live
# series) and ID.
session() {
  local name=$1 port=$2 i n=0 first="" last=""
  start "$SONDE" run --exporter 127.0.0.1:$port "$WS/$name.yaml" >"$WS/$name.out" 2>"$WS/$name.err"
  local pid=${PGIDS[-1]}
  for i in $(seq 300); do
    if curl -sf -o "$WS/scrape-$name-$i.prom" "http://127.0.0.1:$port/metrics"; then
      n=$((n + 1))
      if grep -q '^sonde_client_requests_total{' "$WS/scrape-$name-$i.prom"; then
        last=$(date +%s.%N); first=${first:-$last}
      fi
    else
      rm -f "$WS/scrape-$name-$i.prom"
      kill -0 "$pid" 2>/dev/null || break
    fi
    sleep 0.2
  done
  wait "$pid"; local rc=$?
  check "session $name: exit 0 ($rc), $n scrapes of its exporter" test $rc -eq 0 -a "$n" -ge 5
  check "... it printed where its exporter listens" grep -qF "exporter: http://127.0.0.1:$port/metrics" "$WS/$name.err"
  ID=$(latest_id)
  T=$(python3 -c "f, l = ${first:-0}, ${last:-0}; print(max(f + 2.5, (f + l) / 2) if l - f > 4 else (f + l) / 2)")
  check "... its client's series were live for > 3 s ($first .. $last)" python3 -c "assert ${last:-0} - ${first:-0} > 3"
}
session gen "$EP1"; ID1=$ID; T1=$T
session io "$EP2"; ID2=$ID; T2=$T
touch "$WS/stop"
curl -s "http://127.0.0.1:$OP/metrics" >"$WS/scrape-vllm.prom"
curl -s "http://127.0.0.1:$KP/metrics" >"$WS/scrape-triton.prom"
curl -s "http://127.0.0.1:$NP/metrics" >"$WS/scrape-node.prom"

# the families of a session
fams() { ls "$1/dashboards" | tr '\n' ' '; }
"$SONDE" grafana export "$ID1" "$WS/s1" >/dev/null 2>&1
check "export by SESSION (openai client, node and process monitors): inference and node ($(fams "$WS/s1"))" \
  test "$(fams "$WS/s1")" = "sonde-inference.json sonde-node.json "
"$SONDE" grafana export "${ID2%?}" "$WS/s2" >/dev/null 2>&1
check "export by a prefix of SESSION (fileio client, node monitor): storage and node ($(fams "$WS/s2"))" \
  test "$(fams "$WS/s2")" = "sonde-node.json sonde-storage.json "
"$SONDE" grafana export latest "$WS/s3" >/dev/null 2>&1
check "export latest: the fileio session's" diff -r "$WS/s2/dashboards" "$WS/s3/dashboards"
check "... the provisioning files check out" "${CHECK[@]}" files "$WS/s1" inference,node http://localhost:9090 sonde-prometheus

# every queried name in some scrape
"${CHECK[@]}" names "$WS/g-all" >"$WS/queried.txt"
"${CHECK[@]}" scraped "$WS"/scrape-*.prom >"$WS/scraped.txt"
echo "metric names the dashboards query ($(wc -l <"$WS/queried.txt")):"
sed 's/^/    /' "$WS/queried.txt"
missing=$(comm -23 "$WS/queried.txt" "$WS/scraped.txt")
gpu_missing=$(grep -xF -f <(printf '%s\n' "${GPU[@]}") <<<"$missing")
other=$(grep -vxF -f <(printf '%s\n' "${GPU[@]}") <<<"$missing")
for n in $gpu_missing; do echo "    not checkable here (needs a GPU): $n"; done
check "every queried name is in a scrape of sonde-sim (openai, kserve), the node exporter or a session's exporter (missing: ${other:-none})" \
  test -z "$other"
check "... the names queried include vLLM's, Triton's, the node exporter's and sonde's" python3 -c "
q = open('$WS/queried.txt').read().split()
for p in ('vllm:', 'nv_inference_', 'node_', 'sonde_client_', 'sonde_node_', 'sonde_process_', 'sonde_gpu_'):
    assert sum(n.startswith(p) for n in q) >= 2, p"

# a real Prometheus evaluates every query at the two sessions' times
q=$(curl -s "$PROM/api/v1/query?query=up&time=$T1")
check "Prometheus scraped every target (up == 1 for node, vllm, triton and the first exporter at $T1)" python3 -c "
import json; r = json.loads('''$q''')['data']['result']
up = {(x['metric']['job'], x['metric']['instance']) for x in r if x['value'][1] == '1'}
assert {('node', '127.0.0.1:$NP'), ('vllm', '127.0.0.1:$OP'), ('triton', '127.0.0.1:$KP'), ('sonde', '127.0.0.1:$EP1')} <= up, r"
s=$(curl -s "$PROM/api/v1/label/session/values?match[]=sonde_up")
check "the dashboards' session variable would list both sessions ($s)" \
  test -n "$(grep -F "$ID1" <<<"$s")" -a -n "$(grep -F "$ID2" <<<"$s")"
check "every dashboard query evaluates to series (at the sessions' times; GPU-only ones may be empty)" \
  "${CHECK[@]}" promql "$PROM" "$WS/g-all" "$T1,$T2" "${GPU[@]}"

finish
