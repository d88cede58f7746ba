#!/usr/bin/env bash
# KServe v2: sonde-sim --kserve's endpoints checked over raw HTTP (metadata, readiness,
# infer with several datatypes and shapes, the 400 answers of a bad request, metrics),
# then the kserve client driver against it: infer with FP32, INT64 + BOOL and BYTES
# models at batch sizes 1 and 4, inputs from the recipe, a model that is not ready,
# an unknown model, requests answered 400, latency against --delay, errors by class
# from a scripted server, an open loop, and bad options.
. "$(dirname "$0")/lib.sh"

MODELS=(--kserve-model "f32:INPUT0=FP32[-1,4]" --kserve-model "i64@2:A=INT64[-1,2,3],B=BOOL[-1,1]"
  --kserve-model "txt:TEXT=BYTES[-1]" --kserve-model "h16:H=FP16[2,2]"
  --kserve-model "down:X=FP16[-1,2]" --kserve-unready down)
SIM_PIDS=() # the sims (and the scripted server) this test started
SIM_NAMES=()
cleanup() {
  local p
  for p in "${SIM_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT

# start_sim NAME ARGS...: runs sonde-sim --kserve on a free port; sets PORT and B (base URL)
start_sim() {
  local name=$1 i
  shift
  sonde-sim --kserve --port 0 "$@" >"$WS/$name.out" 2>"$WS/$name.err" &
  SIM_PIDS+=($!)
  SIM_NAMES+=("$name")
  for ((i = 0; i < 50; i++)); do
    PORT=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$WS/$name.out")
    [ -n "$PORT" ] && break
    sleep 0.1
  done
  B="http://127.0.0.1:$PORT"
}
# http METHOD PATH [BODY [CONTENT-LENGTH]]: the raw response to one request on its own
# connection (bash's /dev/tcp: no HTTP client needed), within 10 s
http() {
  local body=${3-}
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
  printf '%s %s HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n' "$1" "$2" >&3
  printf 'Content-Length: %s\r\nConnection: close\r\n\r\n%s' "${4:-${#body}}" "$body" >&3
  timeout 10 cat <&3
  exec 3<&-
}
# req METHOD PATH [BODY]: prints "STATUS BODY"; the body also in $WS/body
req() {
  http "$@" >"$WS/resp"
  sed '1,/^\r$/d' "$WS/resp" >"$WS/body"
  echo "$(sed -n '1s/^HTTP\/1.1 \([0-9]*\) .*/\1/p' "$WS/resp") $(cat "$WS/body")"
}
# jbody EXPR: asserts a Python expression on the JSON body d of the last req
jbody() { python3 -c "import json; d=json.load(open('$WS/body')); assert ($1), d"; }
# metric NAME MODEL: a counter of the sim's /metrics
metric() {
  http GET /metrics | sed -n "s/^$1{model=\"$2\",version=\"[^\"]*\"} //p"
}

# ---- 1. the simulator's endpoints ----------------------------------------------------------------
start_sim main "${MODELS[@]}"
check "sonde-sim --kserve listens ($PORT)" test -n "$PORT"
out=$(req GET /v2)
check "GET /v2: 200 ($out)" test "${out%% *}" = 200
check "GET /v2: name, version, extensions" \
  jbody "d['name'] == 'sonde-sim' and d['version'] and d['extensions'] == []"
check "GET /v2/health/live: 200" test "$(req GET /v2/health/live)" = "200 "
check "GET /v2/health/ready: 200" test "$(req GET /v2/health/ready)" = "200 "
out=$(req GET /v2/models/i64)
check "model metadata: 200 ($out)" test "${out%% *}" = 200
check "model metadata: name, versions, platform, inputs and outputs with shapes" jbody "
d['name'] == 'i64' and d['versions'] == ['2'] and d['platform'] == 'sonde-sim' and
d['inputs'] == [{'name': 'A', 'datatype': 'INT64', 'shape': [-1, 2, 3]},
                {'name': 'B', 'datatype': 'BOOL', 'shape': [-1, 1]}] and
[o['name'] for o in d['outputs']] == ['OUTPUT0', 'OUTPUT1'] and d['outputs'][1]['shape'] == [-1, 1]"
check "model metadata by version: 200" test "$(req GET /v2/models/i64/versions/2 | cut -c1-3)" = 200
out=$(req GET /v2/models/i64/versions/7)
check "another version: 404 naming it ($out)" contains "$out" "^404 .*unknown version '7' of model 'i64'"
out=$(req GET /v2/models/nope)
check "unknown model: 404 naming it ($out)" contains "$out" "^404 .*unknown model 'nope'"
check "ready model: 200" test "$(req GET /v2/models/f32/ready)" = "200 "
check "ready model by version: 200" test "$(req GET /v2/models/i64/versions/2/ready)" = "200 "
check "model not ready (--kserve-unready): 400, as Triton" test "$(req GET /v2/models/down/ready)" = "400 "
check "unknown model ready: 404" test "$(req GET /v2/models/nope/ready | cut -c1-3)" = 404

# infer: the outputs echo the inputs, with their shapes; nested or flat data
out=$(req POST /v2/models/f32/infer \
  '{"id":"r1","inputs":[{"name":"INPUT0","shape":[2,4],"datatype":"FP32","data":[[1,2,3,4],[5,6,7,8.5]]}]}')
check "infer FP32 [2,4], nested data: 200 ($out)" test "${out%% *}" = 200
check "infer FP32: the output echoes the input, id kept" jbody "
d['model_name'] == 'f32' and d['model_version'] == '1' and d['id'] == 'r1' and
d['outputs'] == [{'name': 'OUTPUT0', 'datatype': 'FP32', 'shape': [2, 4],
                  'data': [1, 2, 3, 4, 5, 6, 7, 8.5]}]"
out=$(req POST /v2/models/i64/versions/2/infer \
  '{"inputs":[{"name":"A","shape":[1,2,3],"datatype":"INT64","data":[1,2,3,4,5,-9000000000]},
   {"name":"B","shape":[1,1],"datatype":"BOOL","data":[true]}],"outputs":[{"name":"OUTPUT1"}]}')
check "infer INT64 [1,2,3] + BOOL [1,1], one output asked for: 200 ($out)" test "${out%% *}" = 200
check "infer INT64 + BOOL: only OUTPUT1" jbody "
[o['name'] for o in d['outputs']] == ['OUTPUT1'] and d['outputs'][0]['data'] == [True]"
out=$(req POST /v2/models/txt/infer '{"inputs":[{"name":"TEXT","shape":[3],"datatype":"BYTES","data":["a","b\"c",""]}]}')
check "infer BYTES [3]: 200, strings echoed ($out)" test "${out%% *}" = 200
check "infer BYTES: data" jbody "d['outputs'][0]['data'] == ['a', 'b\"c', ''] and d['outputs'][0]['shape'] == [3]"

# the 400 answers name what is wrong
bad400() { # DESCRIPTION PATH BODY EXPECTED-TEXT
  local out
  out=$(req POST "$2" "$3")
  check "$1: 400 ($out)" contains "$out" "^400 {\"error\":\".*$4"
}
bad400 "wrong element count" /v2/models/f32/infer \
  '{"inputs":[{"name":"INPUT0","shape":[2,4],"datatype":"FP32","data":[1,2,3,4,5,6,7]}]}' \
  "input 'INPUT0': 7 elements in 'data', but shape \[2,4\] needs 8"
bad400 "wrong shape" /v2/models/f32/infer \
  '{"inputs":[{"name":"INPUT0","shape":[1,5],"datatype":"FP32","data":[1,2,3,4,5]}]}' \
  "input 'INPUT0': shape \[1,5\] does not match the model's \[-1,4\]"
bad400 "wrong datatype" /v2/models/f32/infer \
  '{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"INT32","data":[1,2,3,4]}]}' \
  "input 'INPUT0': datatype 'INT32' does not match the model's FP32"
bad400 "an INT64 element that is not an integer" /v2/models/i64/infer \
  '{"inputs":[{"name":"A","shape":[1,2,3],"datatype":"INT64","data":[1,2,3.5,4,5,6]},{"name":"B","shape":[1,1],"datatype":"BOOL","data":[true]}]}' \
  "input 'A': data element 2 is not a valid INT64"
bad400 "a BOOL element that is a number" /v2/models/i64/infer \
  '{"inputs":[{"name":"A","shape":[1,2,3],"datatype":"INT64","data":[1,2,3,4,5,6]},{"name":"B","shape":[1,1],"datatype":"BOOL","data":[1]}]}' \
  "input 'B': data element 0 is not a valid BOOL"
bad400 "batch sizes that differ" /v2/models/i64/infer \
  '{"inputs":[{"name":"A","shape":[1,2,3],"datatype":"INT64","data":[1,2,3,4,5,6]},{"name":"B","shape":[2,1],"datatype":"BOOL","data":[true,false]}]}' \
  "input 'B': batch size 2 differs"
bad400 "a missing input" /v2/models/i64/infer \
  '{"inputs":[{"name":"A","shape":[1,2,3],"datatype":"INT64","data":[1,2,3,4,5,6]}]}' \
  "missing input 'B' of model 'i64'"
bad400 "an unknown input" /v2/models/f32/infer \
  '{"inputs":[{"name":"IN9","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}' \
  "unexpected input 'IN9' for model 'f32'"
bad400 "an unknown output" /v2/models/f32/infer \
  '{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"X"}]}' \
  "unexpected output 'X'"
bad400 "an FP16 element out of range" /v2/models/h16/infer \
  '{"inputs":[{"name":"H","shape":[2,2],"datatype":"FP16","data":[1,2,3,70000]}]}' \
  "input 'H': data element 3 is not a valid FP16"
bad400 "infer on a model that is not ready" /v2/models/down/infer \
  '{"inputs":[{"name":"X","shape":[1,2],"datatype":"FP16","data":[1,2]}]}' \
  "model 'down' is not ready"
bad400 "a body that is not JSON" /v2/models/f32/infer 'inputs=1' "the request body is not valid JSON"
bad400 "no inputs" /v2/models/f32/infer '{"inputs":[]}' "'inputs' must be a non-empty list"
out=$(req POST /v2/models/nope/infer '{}')
check "infer on an unknown model: 404 ($out)" contains "$out" "^404 .*unknown model 'nope'"
out=$(req GET /v2/models/f32/infer)
check "GET on infer: 405 ($out)" contains "$out" "^405 "
check "an unknown path: 404" test "$(req GET /v2/nothing | cut -c1-3)" = 404
out=$(req POST /v2/models/f32/infer "" 1100000)
check "a body over 1 MiB: 413 at once, without reading it ($out)" test "$out" = "413 "

# Triton-style metrics: counted per model and version
# f32: 1 success; 7 failures (element count, shape, datatype, unknown input, unknown output,
# not JSON, no inputs); the 405 and the 413 are not infers of the model
got="$(metric nv_inference_request_success f32) $(metric nv_inference_request_failure f32)"
check "metrics: f32 success 1, failure 7 ($got)" test "$got" = "1 7"
check "metrics: f32 2 inferences (a batch of 2), 1 execution" \
  test "$(metric nv_inference_count f32) $(metric nv_inference_exec_count f32)" = "2 1"
check "metrics: labels model and version" contains "$(http GET /metrics)" \
  '^nv_inference_request_success{model="i64",version="2"} 1$'

# option errors: exit 2 with a message
opt_err() { # DESCRIPTION EXPECTED-TEXT ARGS...
  local d=$1 want=$2 out rc
  shift 2
  out=$(sonde-sim --port 0 "$@" 2>&1 </dev/null)
  rc=$?
  check "$d: exit 2 ($rc: $out)" test "$rc" -eq 2
  check "$d: the message" contains "$out" "$want"
}
opt_err "a model without inputs" "invalid kserve-model 'm': expected NAME" --kserve --kserve-model m
opt_err "an unknown datatype" "unknown datatype" --kserve --kserve-model "m:X=FP8[1]"
opt_err "a bad dimension" "a dimension must be -1" --kserve --kserve-model "m:X=FP32[0]"
opt_err "a model given twice" "given before" --kserve --kserve-model "m:X=FP32[1]" --kserve-model "m:Y=FP32[1]"
opt_err "--kserve-unready of no model" "invalid kserve-unready 'zz'" --kserve --kserve-unready zz
opt_err "--kserve with --openai" "cannot be combined" --kserve --openai
opt_err "--kserve-model without --kserve" "need --kserve" --kserve-model "m:X=FP32[1]"

# ---- 2. the kserve client against it ----------------------------------------------------------------
# recipe NAME URL MODEL "CLIENT OPTIONS (YAML lines, 6 spaces in)": writes $WS/NAME.yaml
recipe() {
  cat >"$WS/$1.yaml" <<EOF
kind: benchmark
name: kserve-$1
timeout: 1m
clients:
  inf:
    driver: kserve
    with:
      url: "$2"
      model: $3
$4
EOF
}
# run NAME: runs $WS/NAME.yaml; prints its exit status, leaves its output in $WS/NAME.out,
# its report in $WS/NAME.json and the client's metrics, "NAME VALUE" a line, in $WS/NAME.m
# (no Python here: it starts slowly on a loaded VM)
run() {
  "$SONDE" -q run "$WS/$1.yaml" >"$WS/$1.out" 2>&1
  local rc=$? id
  id=$(sed -n 's/^session: //p' "$WS/$1.out")
  "$SONDE" report "$id" --format json >"$WS/$1.json"
  "$SONDE" report "$id" --format csv | awk -F, '{ sub(/\r$/, "") } $4 == "inf" { print $5, $8 }' >"$WS/$1.m"
  echo "$rc"
}
# reason NAME: why the session of run NAME failed
reason() { sed -n 's/^session [^ ]* failed: //p' "$WS/$1.out"; }
# m NAME METRIC: a metric of the client (empty when absent)
m() { awk -v k="$2" '$1 == k { print $2 }' "$WS/$1.m"; }
near() { awk -v x="$1" -v y="$2" -v t="$3" 'BEGIN { d = x - y; exit !(x != "" && d <= t && -d <= t) }'; }
# all_ok NAME BATCH: requests > 0, all ok, no errors, inferences = BATCH x ok
all_ok() {
  awk -v b="$2" '{ v[$1] = $2 } END { exit !(v["requests"] > 0 && v["ok"] == v["requests"] &&
    v["errors"] == 0 && v["inferences"] == b * v["ok"]) }' "$WS/$1.m"
}
# sim_delta MODEL BEFORE-SUCCESS BEFORE-COUNT BATCH NAME: the sim counted at least the client's
# ok requests, and BATCH inferences for each
sim_delta() {
  local s=$(($(metric nv_inference_request_success "$1") - $2))
  local c=$(($(metric nv_inference_count "$1") - $3)) ok
  ok=$(m "$5" ok)
  [ "$s" -ge "$ok" ] && [ "$ok" -gt 0 ] && [ "$c" -eq $(($4 * s)) ]
}

# infer from the metadata: each model (FP32; INT64 + BOOL; BYTES) at batch sizes 1 and 4
for spec in "f32 1" "f32 4" "i64 1" "i64 4" "txt 1" "txt 4"; do
  set -- $spec
  name="$1-b$2"
  s0=$(metric nv_inference_request_success "$1")
  c0=$(metric nv_inference_count "$1")
  recipe "$name" "$B" "$1" "      batch_size: $2
      connections: 2
      requests: 60"
  rc=$(run "$name")
  check "$name: exits 0 ($rc)" test "$rc" -eq 0
  check "$name: 60 requests ok, no errors, inferences = $2 x ok ($(m "$name" ok), $(m "$name" inferences))" \
    all_ok "$name" "$2"
  check "$name: the sim counted them, $2 inferences each" sim_delta "$1" "$s0" "$c0" "$2" "$name"
done
check "f32-b4: inferences/s = 4 x throughput (all ok) ($(m f32-b4 inferences_per_s))" \
  awk -v i="$(m f32-b4 inferences_per_s)" -v t="$(m f32-b4 throughput)" \
  'BEGIN { d = i - 4 * t; exit !(t > 0 && d <= 1e-9 * i && -d <= 1e-9 * i) }'
check "f32-b4: latency and service-time summaries" test -n "$(m f32-b4 latency_mean)" -a \
  -n "$(m f32-b4 latency_p50)" -a -n "$(m f32-b4 service_time_max)"
check "f32-b4: latency and service-time histograms, series of requests and errors" python3 -c "
import json
d=json.load(open('$WS/f32-b4.json'))['trials'][0]
h={x['name'] for x in d['histograms'] if x['component']=='inf'}
s={x['name'] for x in d['series'] if x['component']=='inf'}
assert {'latency','service_time'} <= h and {'requests','errors'} <= s, (h, s)"

# inputs from the recipe: one batch item of data repeated; no readiness check
recipe explicit "$B/" i64 "      check_ready: false
      batch_size: 4
      requests: 40
      inputs:
        - {name: A, datatype: INT64, shape: [-1, 2, 3], data: [1, -2, 3, 4, 5, 6]}
        - {name: B, datatype: BOOL, shape: [-1, 1], data: [\"true\"]}"
rc=$(run explicit)
check "inputs from the recipe: exits 0 ($rc)" test "$rc" -eq 0
check "inputs from the recipe: all ok, 4 inferences each" all_ok explicit 4

# a fixed first dimension (FP16 [2,2]): batch 1 works, batch_size 4 is refused at start
recipe h16 "$B" h16 "      requests: 20"
rc=$(run h16)
check "FP16 [2,2], batch 1: exits 0, all ok ($rc)" all_ok h16 1
recipe h16b4 "$B" h16 "      requests: 20
      batch_size: 4"
rc=$(run h16b4)
reason=$(reason h16b4)
check "FP16 [2,2], batch_size 4: exits 1, reason: $reason" \
  contains "$rc $reason" "^1 .*batch_size 4 needs an input whose first dimension is variable"

# a model that is not ready: the client fails before the load, naming it
recipe unready "$B" down "      requests: 10"
rc=$(run unready)
reason=$(reason unready)
check "model not ready: exits 1 ($rc)" test "$rc" -eq 1
check "model not ready: the reason names the model and readiness: $reason" \
  contains "$reason" "model 'down' is not ready: GET /v2/models/down/ready answered 400"
# an unknown model
recipe unknown "$B" nope "      requests: 10"
rc=$(run unknown)
reason=$(reason unknown)
check "unknown model: exits 1 ($rc)" test "$rc" -eq 1
check "unknown model: a clear reason: $reason" contains "$reason" "model 'nope' is unknown to the server"
recipe unknown_meta "$B" nope "      check_ready: false
      requests: 10"
rc=$(run unknown_meta)
reason=$(reason unknown_meta)
check "unknown model, metadata: exits 1, reason: $reason" \
  contains "$rc $reason" "^1 .*model 'nope' is unknown to the server: GET /v2/models/nope answered 404"
recipe noserver "http://127.0.0.1:9" f32 "      requests: 10
      connect_timeout: 2s"
rc=$(run noserver)
reason=$(reason noserver)
check "no server: exits 1, reason names the GET and the connect error: $reason" \
  contains "$rc $reason" "^1 .*GET /v2/models/f32/ready from 127.0.0.1:9: no answer (connect error)"

# requests the server answers 400 (wrong shape; wrong datatype): status errors, the client fails
f0=$(metric nv_inference_request_failure f32)
recipe shape400 "$B" f32 "      requests: 20
      inputs: [{name: INPUT0, datatype: FP32, shape: [-1, 5]}]"
rc=$(run shape400)
reason=$(reason shape400)
check "wrong shape: exits 1 ($rc)" test "$rc" -eq 1
check "wrong shape: errors_status = status_4xx = requests = 20, ok 0" test \
  "$(m shape400 requests) $(m shape400 errors_status) $(m shape400 status_4xx) $(m shape400 ok)" = \
  "20 20 20 0"
check "wrong shape: the reason names status errors: $reason" contains "$reason" "20 of 20 failed with status errors"
check "wrong shape: the sim counted at least 20 failures" \
  test $(($(metric nv_inference_request_failure f32) - f0)) -ge 20
recipe dtype400 "$B" f32 "      requests: 20
      inputs: [{name: INPUT0, datatype: INT32, shape: [1, 4]}]"
rc=$(run dtype400)
check "wrong datatype: exits 1, all 20 errors_status ($rc, $(m dtype400 errors_status))" \
  test "$rc $(m dtype400 errors_status) $(m dtype400 ok)" = "1 20 0"

# injected errors (--error-rate 1, status:503): errors by class
start_sim err503 "${MODELS[@]}" --error-rate 1 --error-kind status:503
recipe err503 "$B" f32 "      check_ready: false
      requests: 20
      inputs: [{name: INPUT0, datatype: FP32, shape: [1, 4], data: [1, 2, 3, 4]}]"
rc=$(run err503)
check "injected 503: exits 1, errors_status = status_5xx = 20 ($rc)" \
  test "$rc $(m err503 errors_status) $(m err503 status_5xx)" = "1 20 20"

# latency: --delay 5ms, one connection: mean 5 ms +- 0.5; --kserve-item-delay 1ms at batch 4: 9 ms.
# The shared VM may make the server late: up to 5 tries. A sanitizer build of sonde-sim and
# sonde (JSON parsing on both sides) adds a few tenths of a millisecond: there the bound is 1 ms.
TOL=0.5
if grep -q __asan_init "$(command -v sonde-sim)"; then
  TOL=1
  echo "# sonde-sim is a sanitizer build: latency bound $TOL ms"
fi
start_sim slow "${MODELS[@]}" --delay 5ms
recipe delay "$B" f32 "      connections: 1
      duration: 2s"
for try in 1 2 3 4 5; do
  rc=$(run delay)
  near "$(m delay latency_mean)" 5 $TOL && break
done
check "--delay 5ms: exits 0 ($rc)" test "$rc" -eq 0
check "--delay 5ms: latency mean 5 ms +- $TOL ($(m delay latency_mean) ms, try $try)" \
  near "$(m delay latency_mean)" 5 $TOL
start_sim item "${MODELS[@]}" --delay 5ms --kserve-item-delay 1ms
recipe item "$B" f32 "      batch_size: 4
      connections: 1
      duration: 1s"
for try in 1 2 3 4 5; do
  rc=$(run item)
  near "$(m item latency_mean)" 9 $TOL && break
done
check "--kserve-item-delay 1ms, batch 4: latency mean 9 ms +- $TOL ($(m item latency_mean) ms, try $try)" \
  near "$(m item latency_mean)" 9 $TOL

# open loop: 100 req/s for 1 s; issue delay recorded
recipe open "$B" txt "      mode: open
      rate: 100
      arrival: constant
      duration: 1s"
rc=$(run open)
check "open loop: exits 0, about 100 requests, all ok ($rc, $(m open requests))" \
  test "$rc" -eq 0 -a "$(m open requests)" -ge 90 -a "$(m open requests)" -le 101 -a "$(m open errors)" = 0
check "open loop: an issue_delay histogram" python3 -c "
import json
d=json.load(open('$WS/open.json'))['trials'][0]
assert 'issue_delay' in {x['name'] for x in d['histograms'] if x['component']=='inf'}"

# errors by class from a scripted server: request k gets a good answer, a 200 that is
# not JSON, or a 200 with an "error" member
cat >"$WS/bad_server.py" <<'PY'
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
n = [0]
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, body):
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def do_GET(self): self.answer(b"")
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            k = n[0] % 3; n[0] += 1
        self.answer([b'{"model_name":"m","outputs":[]}', b"<html>", b'{"error":"boom"}'][k])
ThreadingHTTPServer.daemon_threads = True
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print("listening on 127.0.0.1:%d" % s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$WS/bad_server.py" >"$WS/bad.out" 2>&1 &
BAD_PID=$!
for ((i = 0; i < 50; i++)); do
  BADPORT=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$WS/bad.out")
  [ -n "$BADPORT" ] && break
  sleep 0.1
done
recipe bad "http://127.0.0.1:$BADPORT" m "      requests: 30
      inputs: [{name: X, datatype: UINT8, shape: [2], data: [0, 255]}]"
rc=$(run bad)
got="requests=$(m bad requests) ok=$(m bad ok) json=$(m bad errors_json) api=$(m bad errors_api)"
check "scripted server: exits 0 (some good), 10 ok, 10 json, 10 api ($rc: $got)" \
  test "$rc $got" = "0 requests=30 ok=10 json=10 api=10"
recipe badmeta "http://127.0.0.1:$BADPORT" m "      requests: 5"
rc=$(run badmeta)
reason=$(reason badmeta)
check "metadata that is not JSON: exits 1, reason: $reason" \
  contains "$rc $reason" "^1 .*the metadata of model 'm' (GET /v2/models/m) is not a JSON object"
kill "$BAD_PID"

# the sims stop cleanly on SIGTERM: exit 0, no sanitizer report (in a sanitizer build)
for i in "${!SIM_PIDS[@]}"; do
  kill "${SIM_PIDS[$i]}"
  wait "${SIM_PIDS[$i]}"
  rc=$?
  check "sonde-sim ${SIM_NAMES[$i]}: exit 0 on SIGTERM, stderr clean ($rc)" test "$rc" -eq 0 -a \
    -z "$(grep -E 'Sanitizer|runtime error' "$WS/${SIM_NAMES[$i]}.err")"
done
SIM_PIDS=()

# ---- 3. bad options are validation errors (exit 2) ----------------------------------------------
cat >"$WS/invalid.yaml" <<'EOF'
kind: benchmark
name: kserve-invalid
clients:
  inf:
    driver: kserve
    with:
      url: "ftp://x"
      model: ""
      batch_size: 0
      connections: 1
      threads: 2
      inputs:
        - {name: A, datatype: INT8, shape: [2], data: [1, 300]}
        - {name: B, datatype: FP32, shape: [-1, x]}
        - {name: C, datatype: FP32, shape: [2, 2], data: [1, 2, 3]}
        - {name: A, datatype: BYTES, shape: [1]}
EOF
out=$("$SONDE" recipe validate "$WS/invalid.yaml" 2>&1)
rc=$?
check "bad options exit 2 ($rc)" test "$rc" -eq 2
check "bad url" contains "$out" "with.url: expected http\[s\]://host"
check "empty model" contains "$out" "with.model: the model's name must not be empty"
check "batch_size 0" contains "$out" "with.batch_size: must be between 1"
check "threads over connections" contains "$out" "with.threads: must not exceed 'connections'"
check "no bound" contains "$out" "give 'duration' or 'requests'"
check "an INT8 value out of range" contains "$out" "inputs\[0\]: value 1 ('300') is not an integer from -128 to 127"
check "a shape that is not integers" contains "$out" "inputs\[1\]: 'shape' holds integers"
check "too few values" contains "$out" "inputs\[2\]: 3 values, but the shape needs 4 (or 2 for one batch item)"
check "an input given twice" contains "$out" "inputs\[3\]: input 'A' is given twice"
sed -i 's/BYTES, shape/FP8, shape/' "$WS/invalid.yaml"
out=$("$SONDE" recipe validate "$WS/invalid.yaml" 2>&1)
check "an unknown datatype" contains "$out" "inputs\[3\].datatype: expected one of BOOL, UINT8"
out=$("$SONDE" recipe validate "$WS/explicit.yaml" 2>&1)
check "a good recipe validates ($out)" test $? -eq 0

finish
