#!/usr/bin/env bash
# The gpu monitor on a machine without a GPU: NVML absent (a warning, or a
# failed trial with `required: true`), then against tests/gpu/fake_nvml.c — a
# stand-in libnvidia-ml answering with known values — the exact series and
# metrics it records, energy from the counter and from integrated power,
# per-process GPU memory, older and newer NVML interfaces, missing GPUs,
# readings that never move, and bad options. The stand-in proves the
# monitor's arithmetic and error handling, not NVML's: the check on a real
# GPU is tests/gpu/gpu-check.sh.
. "$(dirname "$0")/lib.sh"

# The stand-in, as a current, an old (no v2/v3 interfaces) and a new (no
# interfaces NVML 13 deprecates) library.
for v in cur old new; do
  mkdir -p "$WS/$v"
  flag=()
  [ "$v" = old ] && flag=(-DFAKE_NVML_OLD)
  [ "$v" = new ] && flag=(-DFAKE_NVML_NEW)
  if ! cc -shared -fPIC "${flag[@]}" -o "$WS/$v/libnvidia-ml.so.1" tests/gpu/fake_nvml.c; then
    bad "build the stand-in NVML library ($v)"
    finish
    exit 1
  fi
done
FAKE=$WS/cur/libnvidia-ml.so.1
printf 'echo $$ > "$1"\nexec sleep "$2"\n' >"$WS/load.sh"

# grun NAME SECONDS WITH [VAR=VALUE...]: writes $WS/NAME.yaml (a gpu monitor
# sampling every $INTERVAL with `with: WITH`, an exec client that writes its
# pid to $WS/pids and sleeps SECONDS), runs it with the environment VAR=VALUE
# added (SONDE_NVML_LIBRARY is the stand-in unless given), sets rc and saves
# the JSON report as $WS/NAME.json. The stand-in logs its init/shutdown
# calls to $WS/nvml.log and lists the client's pid as a GPU process.
INTERVAL=300ms
grun() {
  local name=$1 secs=$2 with=$3
  shift 3
  cat >"$WS/$name.yaml" <<EOF
kind: benchmark
name: gpu-$name
timeout: 1m
monitors:
  gpu:
    driver: gpu
    interval: $INTERVAL
    with: $with
clients:
  load:
    driver: exec
    with:
      command: [sh, "$WS/load.sh", "$WS/pids", "$secs"]
EOF
  rm -f "$WS/pids" "$WS/nvml.log"
  env SONDE_NVML_LIBRARY="$FAKE" FAKE_NVML_PIDS="$WS/pids" FAKE_NVML_LOG="$WS/nvml.log" "$@" \
    "$SONDE" -q run "$WS/$name.yaml" >"$WS/$name.out" 2>&1
  rc=$?
  save_report "$name"
}

# py_on NAME CODE: runs the Python CODE (asserts) on $WS/NAME.json with
# d (report), t (trial 1), warn (warning texts), GIB and these helpers:
#   pts(NAME, GPU) / times(NAME, GPU): values / times (s) of GPU's series NAME
#   metric(NAME[, GPU]): the gpu monitor's metric (no GPU: the unlabelled one)
#   gseries(): the gpu monitor's series
cat >"$WS/h.py" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = d['trials'][0]
warn = [e['message'] for e in d['events'] if e['level'] == 'warning']
GIB = 1 << 30
def gseries():
    return [s for s in t['series'] if s['component'] == 'gpu']
def one(name, gpu):
    s = [x for x in gseries() if x['name'] == name and x['labels'].get('gpu') == str(gpu)
         and 'pid' not in x['labels']]
    assert len(s) == 1, f"{len(s)} series {name} of GPU {gpu}"
    return s[0]
def pts(name, gpu):
    return [p[1] for p in one(name, gpu)['points']]
def times(name, gpu):
    return [p[0] for p in one(name, gpu)['points']]
def metric(name, gpu=None):
    m = [x['value'] for x in t['metrics'] if x['component'] == 'gpu' and x['name'] == name
         and (x['labels'].get('gpu') == str(gpu) if gpu is not None else not x['labels'])]
    assert len(m) == 1, f"{len(m)} metrics {name} of GPU {gpu}"
    return m[0]
exec(sys.argv[2])
PY
py_on() { python3 - "$WS/$1.json" "$2" <"$WS/h.py"; }
inits() { grep -c '^init$' "$WS/nvml.log" 2>/dev/null; }
shutdowns() { grep -c '^shutdown$' "$WS/nvml.log" 2>/dev/null; }

# 1. No NVML: the session goes on with a warning that says why; nothing recorded.
missing=$WS/missing/libnvidia-ml.so.1
grun absent 0.5 '{}' SONDE_NVML_LIBRARY="$missing"
check "absent: exits 0 ($rc)" test "$rc" -eq 0
check "absent: done, a warning naming NVML and dlopen's reason, no GPU series or metrics" py_on absent "
assert t['state'] == 'done', t['state']
w = [x for x in warn if 'monitor gpu: no GPU metrics: no NVML: $missing: cannot open shared object file' in x]
assert len(w) == 1, warn
assert not gseries(), gseries()
assert not [m for m in t['metrics'] if m['component'] == 'gpu' and not m['name'].startswith('monitor_')]"

# 2. The same with required: true fails the trial, naming the library.
grun absent-required 0.5 '{required: true}' SONDE_NVML_LIBRARY="$missing"
check "absent, required: exits 1 ($rc)" test "$rc" -eq 1
check "absent, required: the trial failed, its reason names the missing library" py_on absent-required "
assert t['state'] == 'failed', t['state']
assert t['reason'].startswith('monitor gpu failed to start: no NVML: $missing: cannot open'), t['reason']"

# 3. The stand-in: two GPUs, every value known.
grun full 2 '{}'
pid=$(cat "$WS/pids" 2>/dev/null)
check "full: exits 0 ($rc)" test "$rc" -eq 0
check "full: both GPUs, every series, labelled with index, name and uuid, >= 5 points" py_on full "
names = ['utilization_percent', 'memory_utilization_percent', 'memory_used_bytes',
         'memory_total_bytes', 'power_w', 'energy_j', 'sm_clock_mhz', 'mem_clock_mhz',
         'temperature_c', 'throttle_reasons']
for g in (0, 1):
    for n in names:
        s = one(n, g)
        assert s['labels'] == {'gpu': str(g), 'name': f'Fake GPU {g} (stand-in)',
                               'uuid': 'GPU-fa4e0000-0000-0000-0000-%012d' % g}, s['labels']
        assert len(s['points']) >= 5, (n, g, len(s['points']))
assert len([s for s in gseries() if 'pid' not in s['labels']]) == 20"
check "full: the stand-in's values, in NVML's units converted (mW -> W, bytes, MHz, C)" py_on full "
for g in (0, 1):
    want = {'memory_utilization_percent': 5 + g, 'memory_used_bytes': (g + 1) * GIB,
            'memory_total_bytes': 80 * GIB, 'power_w': 250 + 50 * g, 'sm_clock_mhz': 1980 + g,
            'mem_clock_mhz': 2619, 'temperature_c': 40 + g, 'throttle_reasons': 4 if g == 0 else 1}
    for n, v in want.items():
        assert set(pts(n, g)) == {v}, (n, g, pts(n, g), v)"
check "full: utilization is read afresh each sample (the ramp 20, 30, ...: call 1 was at start)" py_on full "
for g in (0, 1):
    u = pts('utilization_percent', g)
    assert u == [min(100, 10 * (k + 2)) for k in range(len(u))], u"
check "full: GPU 0 energy from the counter: 250 W x time since the monitor started" py_on full "
e, ts = pts('energy_j', 0), times('energy_j', 0)
slope = (e[-1] - e[0]) / (ts[-1] - ts[0])
assert abs(slope / 250 - 1) < 0.01, slope
for k in range(1, len(e)):
    assert abs((e[k] - e[k-1]) / (ts[k] - ts[k-1]) / 250 - 1) < 0.03, (k, e, ts)
assert 0.25 <= e[0] / 250 <= 0.5, e[0]  # the baseline was read at start, one interval before
assert metric('energy_j', 0) == e[-1], (metric('energy_j', 0), e[-1])"
check "full: GPU 1 has no counter: power integrated (300 W x time), said in a warning and provenance" py_on full "
e, ts = pts('energy_j', 1), times('energy_j', 1)
assert abs((e[-1] - e[0]) / (ts[-1] - ts[0]) / 300 - 1) < 0.01, (e, ts)
assert 0.25 <= e[0] / 300 <= 0.5, e[0]
assert metric('energy_j', 1) == e[-1]
w = [x for x in warn if 'GPU 1 (Fake GPU 1 (stand-in)): left out: energy counter (not supported); its energy_j is power integrated' in x]
assert len(w) == 1, warn
assert d['provenance']['gpu_energy_source.trial-001.gpu'] == 'gpu 0: energy counter, gpu 1: integrated power'
assert 'GPU-fa4e0000-0000-0000-0000-000000000001' in d['provenance']['gpus.trial-001.gpu']"
check "full: summaries per GPU and totals agree with the series" py_on full "
us = []
for g in (0, 1):
    u = pts('utilization_percent', g)
    us += u
    assert abs(metric('utilization_percent_mean', g) - sum(u) / len(u)) < 1e-9
    assert metric('utilization_percent_max', g) == max(u)
    assert metric('power_w_mean', g) == 250 + 50 * g and metric('power_w_max', g) == 250 + 50 * g
    assert metric('memory_used_bytes_max', g) == (g + 1) * GIB
assert abs(metric('energy_j') - metric('energy_j', 0) - metric('energy_j', 1)) < 1e-6
assert abs(metric('utilization_percent_mean') - sum(us) / len(us)) < 1e-9
assert metric('gpu_count') == 2"
check "full: process_memory_bytes of the client's pid ($pid) only, 512 MiB on GPU 0" py_on full "
p = [s for s in gseries() if s['name'] == 'process_memory_bytes']
assert len(p) == 1, [s['labels'] for s in p]
assert p[0]['labels'] == {'gpu': '0', 'component': 'load', 'pid': '$pid'}, p[0]['labels']
assert len(p[0]['points']) >= 3 and {v for _, v in p[0]['points']} == {GIB / 2}"
check "full: no other warning" py_on full "assert len(warn) == 1, warn"
check "full: NVML initialised once and shut down once ($(inits)/$(shutdowns))" \
  test "$(inits)/$(shutdowns)" = 1/1

# 4. R535's process list: 32-byte entries under the same symbol.
grun stride32 1 '{}' FAKE_NVML_PROC_STRIDE=32
pid=$(cat "$WS/pids" 2>/dev/null)
check "stride 32: exits 0 ($rc)" test "$rc" -eq 0
check "stride 32: the entry size is read off the list: the client's 512 MiB" py_on stride32 "
p = [s for s in gseries() if s['name'] == 'process_memory_bytes']
assert [s['labels']['pid'] for s in p] == ['$pid'], [s['labels'] for s in p]
assert {v for _, v in p[0]['points']} == {GIB / 2}
assert not [x for x in warn if 'process' in x], warn"

# 5. An old library (memory v1, throttle reasons, unversioned process list).
grun old 1 '{}' SONDE_NVML_LIBRARY="$WS/old/libnvidia-ml.so.1"
check "old NVML: exits 0 ($rc)" test "$rc" -eq 0
check "old NVML: memory v1 (used includes the 512 MiB reserve), throttle reasons, 16-byte process list" py_on old "
assert set(pts('memory_used_bytes', 0)) == {1.5 * GIB}, pts('memory_used_bytes', 0)
assert set(pts('throttle_reasons', 0)) == {4} and set(pts('temperature_c', 1)) == {41}
p = [s for s in gseries() if s['name'] == 'process_memory_bytes']
assert len(p) == 1 and {v for _, v in p[0]['points']} == {GIB / 2}, p
assert len(warn) == 1, warn"

# 6. A library without what NVML 13 deprecates (temperature through nvmlDeviceGetTemperatureV).
grun new 1 '{}' SONDE_NVML_LIBRARY="$WS/new/libnvidia-ml.so.1"
check "new NVML: exits 0 ($rc)" test "$rc" -eq 0
check "new NVML: memory v2, temperature V, clocks event reasons, v3 process list" py_on new "
assert set(pts('memory_used_bytes', 1)) == {2 * GIB}
assert set(pts('temperature_c', 0)) == {40} and set(pts('temperature_c', 1)) == {41}
assert set(pts('throttle_reasons', 1)) == {1}
p = [s for s in gseries() if s['name'] == 'process_memory_bytes']
assert len(p) == 1 and {v for _, v in p[0]['points']} == {GIB / 2}, p
assert len(warn) == 1, warn"

# 6b. Temperature: the V call first; the old one when V fails (a driver without it working).
grun temp-old-deprecated 1 '{}' FAKE_NVML_TEMP_OLD_RET=26
check "temperature: the old call answering 'deprecated' does not matter: V read 40/41 °C" py_on temp-old-deprecated "
assert set(pts('temperature_c', 0)) == {40} and set(pts('temperature_c', 1)) == {41}
assert len(warn) == 1, warn"
grun temp-v-fails 1 '{}' FAKE_NVML_TEMPV_RET=3
check "temperature: V not supported: the old call read 40/41 °C" py_on temp-v-fails "
assert set(pts('temperature_c', 0)) == {40} and set(pts('temperature_c', 1)) == {41}
assert len(warn) == 1, warn"

# 7. devices and processes options.
grun one-gpu 1 '{devices: [1], processes: false}'
check "devices [1]: exits 0 ($rc)" test "$rc" -eq 0
check "devices [1], processes false: GPU 1 only, no process series, totals of one GPU" py_on one-gpu "
assert {s['labels']['gpu'] for s in gseries()} == {'1'}, {s['labels']['gpu'] for s in gseries()}
assert not [s for s in gseries() if s['name'] == 'process_memory_bytes']
assert metric('gpu_count') == 1 and metric('energy_j') == metric('energy_j', 1)"
grun no-gpu7 1 '{devices: [0, 7]}'
check "devices [0, 7]: exits 0 ($rc)" test "$rc" -eq 0
check "devices [0, 7]: GPU 0 measured, a warning that GPU 7 is not present" py_on no-gpu7 "
assert {s['labels']['gpu'] for s in gseries()} == {'0'}
assert [x for x in warn if 'GPU 7 is not present (NVML sees 2 GPUs): not measured' in x], warn"
grun no-gpu7-required 1 '{devices: [0, 7], required: true}'
check "devices [0, 7], required: exits 1 ($rc)" test "$rc" -eq 1
check "devices [0, 7], required: the trial failed naming GPU 7; NVML shut down" py_on no-gpu7-required "
assert t['state'] == 'failed' and 'GPU 7 is not present' in t['reason'], t['reason']"
check "devices [0, 7], required: NVML shut down ($(inits)/$(shutdowns))" \
  test "$(inits)/$(shutdowns)" = 1/1

# 8. Readings that never move while every call succeeds (a mismatched declaration's symptom).
grun zero 1 '{}' FAKE_NVML_ZERO=1
check "all zero: exits 0 ($rc)" test "$rc" -eq 0
check "all zero: a warning per GPU that the values are not to be trusted" py_on zero "
for g in (0, 1):
    assert [x for x in warn if f'GPU {g} (Fake GPU {g} (stand-in)): every reading was 0 for the whole trial' in x], warn"

# 9. nvmlInit fails; NVML sees no GPU.
grun init-fails 0.5 '{}' FAKE_NVML_INIT=9
check "nvmlInit fails: exits 0 ($rc)" test "$rc" -eq 0
check "nvmlInit fails: a warning with NVML's error text, nothing recorded" py_on init-fails "
assert [x for x in warn if 'no GPU metrics: NVML ($FAKE) did not start: nvmlInit_v2: Driver Not Loaded' in x], warn
assert not gseries()"
check "nvmlInit fails: no nvmlShutdown after it ($(inits)/$(shutdowns))" \
  test "$(inits)/$(shutdowns)" = 1/0
grun zero-gpus 0.5 '{required: true}' FAKE_NVML_GPUS=0
check "no GPU, required: exits 1 ($rc)" test "$rc" -eq 1
check "no GPU, required: the reason says NVML sees no GPU" py_on zero-gpus "
assert t['reason'] == 'monitor gpu failed to start: NVML ($FAKE) sees no GPU', t['reason']"

# 10. A trial shorter than one interval gets one sample, at its end.
INTERVAL=10s
grun short 0.3 '{}'
INTERVAL=300ms
check "short trial: exits 0 ($rc)" test "$rc" -eq 0
check "short trial: one point per series, energy over the trial's 0.3+ s" py_on short "
for g in (0, 1):
    assert len(pts('power_w', g)) == 1 and len(pts('energy_j', g)) == 1
    assert pts('utilization_percent', g) == [20]
    assert 0.25 <= metric('energy_j', g) / (250 + 50 * g) <= 2, metric('energy_j', g)"

# 10b. Energy per result: the stand-in's 550 W over the trial, divided by what an http
# load against sonde-sim completed, recorded on the gpu monitor with the client's name.
cat >"$WS/per.yaml" <<EOF
kind: benchmark
name: gpu-per-result
timeout: 1m
services:
  sim:
    use: sonde-sim
    with:
      command: [sonde-sim, --host, "\${self.listen}", --port, "\${self.port}", --delay, 1ms]
monitors:
  gpu: {driver: gpu, interval: $INTERVAL}
clients:
  load:
    use: http
    with:
      url: "http://\${services.sim.host}:\${services.sim.port}/"
      connections: 2
      duration: 2s
EOF
env SONDE_NVML_LIBRARY="$FAKE" "$SONDE" -q run "$WS/per.yaml" >"$WS/per.out" 2>&1
rc=$?
save_report per
check "energy per result: the session ends done ($rc)" test $rc -eq 0
check "energy per request = the GPUs' energy over the client's measured window / its requests" py_on per "
e = metric('energy_j')
req = [x['value'] for x in t['metrics'] if x['component'] == 'load' and x['name'] == 'requests'][0]
bi = [x['value'] for x in t['metrics'] if x['component'] == 'load' and x['name'] == 'bytes_in'][0]
bo = [x['value'] for x in t['metrics'] if x['component'] == 'load' and x['name'] == 'bytes_out'][0]
def gm(name):
    m = [x for x in t['metrics'] if x['component'] == 'gpu' and x['name'] == name]
    assert len(m) == 1 and m[0]['labels'] == {'client': 'load'} and m[0]['unit'] == 'J', (name, m)
    return m[0]['value']
w = gm('energy_window_j')
# the stand-in draws 250 + 300 W; the measured window is the client's 2 s (warm-up none)
assert 0.9 * 550 * 2 <= w <= 1.1 * 550 * 2, w
assert w < e, (w, e)  # the whole trial is longer than the window
assert req > 100, req
assert abs(gm('energy_per_request_j') - w / req) <= 1e-9 * w / req
assert abs(gm('energy_per_gib_j') - w / ((bi + bo) / GIB)) <= 1e-6 * gm('energy_per_gib_j')
assert not [x for x in t['metrics'] if x['name'] == 'energy_per_output_token_j']  # no tokens here"

# 11. Bad options: exit 2 at validate (and at run), naming the option.
badopt() { # description, with: flow map, expected text
  sed "s|^    with: {}\$|    with: $2|" "$WS/full.yaml" >"$WS/bad.yaml"
  "$SONDE" recipe validate "$WS/bad.yaml" >"$WS/bad.out" 2>&1
  local vrc=$?
  check "bad option $1: validate exits 2 ($vrc)" test "$vrc" -eq 2
  check "bad option $1: the error names it: $3" grep -qF -- "$3" "$WS/bad.out"
}
badopt "devices [x]" "{devices: [x]}" "monitors.gpu.with.devices[0]: expected a GPU index"
badopt "devices [-1]" "{devices: [-1]}" "monitors.gpu.with.devices[0]: expected a GPU index"
badopt "devices [0, 0]" "{devices: [0, 0]}" "monitors.gpu.with.devices[1]: GPU 0 is listed twice"
badopt "devices 0" "{devices: 0}" "monitors.gpu.with.devices: expected a list"
badopt "required maybe" "{required: maybe}" "monitors.gpu.with.required: expected true or false"
badopt "processes 3" "{processes: 3}" "monitors.gpu.with.processes: expected true or false"
badopt "device (typo)" "{device: [0]}" "unknown option 'device' for driver 'gpu' (did you mean 'devices'?)"
"$SONDE" -q run "$WS/bad.yaml" >"$WS/bad.out" 2>&1
rrc=$?
check "bad option: run exits 2 too ($rrc)" test "$rrc" -eq 2
check "bad option: run names it" grep -qF "did you mean 'devices'?" "$WS/bad.out"

finish
