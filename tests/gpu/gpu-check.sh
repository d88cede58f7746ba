#!/usr/bin/env bash
# The gpu monitor on a real NVIDIA GPU, against nvidia-smi, under a real load.
# Run by hand on a GPU machine, from the repository root:
#   tests/gpu/gpu-check.sh build/sonde          (GPU_CHECK_INDEX=N: GPU N, default 0)
# On a machine without build tools (the lent device machine), build here with
# tests/gpu/bundle.sh, carry build-gpu, and run tests/gpu/gpu-check.sh build-gpu/sonde.
# Exits 77 (skipped) when there is no NVIDIA GPU, or no python3 with CUDA torch
# to load it; 0 when every check passed, 1 otherwise.
#
# A sonde session runs an exec client — python3/torch bf16 matmuls for
# $GPU_CHECK_SECONDS s (default 20) after 4 s idle — with the gpu monitor at
# 1 Hz, while nvidia-smi samples the same GPU every second. Checks:
# utilization > 50% under load; power under load above 1.5 x idle; energy from
# the counter > 0 and within 10% of power x time over the same span (sonde's
# power integrated, and nvidia-smi's mean power); sonde's means over the loaded
# window within 5% of nvidia-smi's (utilization, power, memory used, SM clock,
# temperature); the load's per-process GPU memory within 5% of nvidia-smi's.
. "$(dirname "$0")/../integration/lib.sh"

IDX=${GPU_CHECK_INDEX:-0}
export TZ=UTC # nvidia-smi's timestamps are local time: one zone for it and the analysis
SECS=${GPU_CHECK_SECONDS:-20}
skip() {
  echo "SKIP: $*"
  rm -rf "$WS"
  exit 77
}

command -v nvidia-smi >/dev/null || skip "no NVIDIA GPU here (no nvidia-smi)"
if ! out=$(nvidia-smi -L 2>&1); then
  skip "no NVIDIA GPU here (nvidia-smi -L: $(head -n1 <<<"$out"))"
fi
grep -q "^GPU $IDX:" <<<"$out" || skip "no NVIDIA GPU $IDX here (nvidia-smi -L: $(head -n1 <<<"$out"))"
# The load runs on the same GPU, named by its UUID (CUDA's numbering may differ from NVML's).
uuid=$(nvidia-smi -i "$IDX" --query-gpu=uuid --format=csv,noheader 2>/dev/null)
[ -n "$uuid" ] || skip "no UUID for GPU $IDX (nvidia-smi -i $IDX --query-gpu=uuid)"
export CUDA_VISIBLE_DEVICES=$uuid
python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null ||
  skip "GPU $IDX is here but python3 has no torch with CUDA to load it"
echo "GPU: $(grep "^GPU $IDX:" <<<"$out")"

cat >"$WS/load.py" <<'PY'
# 4 s idle (the idle power), then bf16 matmuls for SECS s holding 4 GiB more.
import json, os, sys, time
out, secs = sys.argv[1], float(sys.argv[2])
idle0 = time.time()
time.sleep(4)
idle1 = time.time()
import torch
n = 8192
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
hold = torch.ones(4 << 30, dtype=torch.uint8, device="cuda")
torch.cuda.synchronize()
t0, iters = time.time(), 0
while time.time() - t0 < secs:
    for _ in range(20):
        c = a @ b
    torch.cuda.synchronize()
    iters += 20
t1 = time.time()
json.dump({"pid": os.getpid(), "idle": [idle0, idle1], "load": [t0, t1],
           "tflops": 2 * n ** 3 * iters / (t1 - t0) / 1e12}, open(out, "w"))
PY
cat >"$WS/check.yaml" <<EOF
kind: benchmark
name: gpu-check
timeout: 5m
monitors:
  gpu:
    driver: gpu
    interval: 1s
    with: {devices: [$IDX], required: true}
clients:
  load:
    driver: exec
    with:
      command: [python3, "$WS/load.py", "$WS/load.json", "$SECS"]
EOF

# nvidia-smi beside the session: the GPU's readings, and its compute processes.
bg=()
cleanup() { for p in "${bg[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT
nvidia-smi -i "$IDX" --format=csv,noheader,nounits -lms 1000 \
  --query-gpu=timestamp,utilization.gpu,power.draw,memory.used,clocks.sm,temperature.gpu \
  >"$WS/smi.csv" 2>"$WS/smi.err" &
bg+=($!)
(for ((i = 0; i < SECS + 60; i++)); do
  nvidia-smi -i "$IDX" --query-compute-apps=pid,used_memory --format=csv,noheader,nounits
  sleep 1
done >"$WS/apps.csv" 2>/dev/null) &
bg+=($!)

"$SONDE" -q run "$WS/check.yaml" >"$WS/run.out" 2>&1
rc=$?
cleanup
check "the session ran to its end (exit $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || cat "$WS/run.out"
id=$(sed -n 's/^session: //p' "$WS/run.out")
[ -n "$id" ] || id=$(latest_id)
"$SONDE" report "$id" --format json >"$WS/report.json"
"$SONDE" metrics "$id" --csv "$WS/sonde.csv" >/dev/null 2>&1
check "sonde's series written as CSV" test -s "$WS/sonde.csv"
check "the load ran and wrote its times" test -s "$WS/load.json"
check "nvidia-smi sampled" test -s "$WS/smi.csv"

# Each check below prints its figures; a failed assert names what differed.
cat >"$WS/an.py" <<'PY'
import csv, json, sys
from datetime import datetime
ws, idx, what = sys.argv[1], sys.argv[2], sys.argv[3]
rep = json.load(open(ws + "/report.json"))
load = json.load(open(ws + "/load.json"))
t0, t1 = load["load"][0] + 2, load["load"][1] - 1   # loaded window: ramp-up/down left out
i0, i1 = load["idle"][0] + 1, load["idle"][1]       # idle window
def num(s):
    try:
        return float(s)
    except ValueError:
        return None                                  # "[N/A]", "[Not Supported]"
# sonde: {(name, pid or None): [(t, v)]} of GPU idx
sonde = {}
for r in csv.DictReader(open(ws + "/sonde.csv")):
    lab = json.loads(r["labels"] or "{}")
    if r["component"] == "gpu" and lab.get("gpu") == idx:
        sonde.setdefault((r["name"], lab.get("pid")), []).append((int(r["t_ns"]) / 1e9, float(r["value"])))
smi = {k: [] for k in ("util", "power", "mem", "sm", "temp")}
for row in csv.reader(open(ws + "/smi.csv")):
    if len(row) < 6:
        continue
    t = datetime.strptime(row[0].strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
    for k, v in zip(smi, row[1:6]):
        if num(v) is not None:
            smi[k].append((t, num(v)))
def mean(pts, a, b):
    v = [x for t, x in pts if a <= t <= b]
    assert v, f"no sample between {a:.1f} and {b:.1f}"
    return sum(v) / len(v), len(v)
def integral(pts, a, b):
    p = [(t, x) for t, x in pts if a <= t <= b]
    return sum((p[k][0] - p[k-1][0]) * (p[k][1] + p[k-1][1]) / 2 for k in range(1, len(p)))
def metric(name):
    m = [x["value"] for x in rep["trials"][0]["metrics"]
         if x["component"] == "gpu" and x["name"] == name and x["labels"].get("gpu") == idx]
    assert len(m) == 1, (name, m)
    return m[0]
def close(a, b, tol):
    return b != 0 and abs(a / b - 1) <= tol

if what == "util":
    s, n = mean(sonde[("utilization_percent", None)], t0, t1)
    m, k = mean(smi["util"], t0, t1)
    print(f"  utilization under load: sonde {s:.1f}% ({n} samples), nvidia-smi {m:.1f}% ({k}); "
          f"{load['tflops']:.0f} TFLOPS bf16")
    assert n >= 5 and s > 50, s
elif what == "power":
    s_idle, n = mean(sonde[("power_w", None)], i0, i1)
    s_load, _ = mean(sonde[("power_w", None)], t0, t1)
    print(f"  power: idle {s_idle:.1f} W ({n} samples), under load {s_load:.1f} W")
    assert s_load > 1.5 * s_idle, (s_idle, s_load)
elif what == "energy":
    e = sonde[("energy_j", None)]
    a, b = e[0][0], e[-1][0]
    de = e[-1][1] - e[0][1]
    ps = integral(sonde[("power_w", None)], a, b)
    pm = mean(smi["power"], a, b)[0] * (b - a)  # its samples do not reach a and b
    src = rep["provenance"].get("gpu_energy_source.trial-001.gpu")
    print(f"  energy over {b - a:.1f} s: counter {de:.0f} J, sonde's power integrated {ps:.0f} J, "
          f"nvidia-smi's mean power x time {pm:.0f} J; energy_j of the trial "
          f"{metric('energy_j'):.0f} J ({src})")
    assert src == "energy counter", src
    assert metric("energy_j") > 0 and de > 0
    assert close(de, ps, 0.10) and close(de, pm, 0.10), (de, ps, pm)
elif what == "versus":
    bad = []
    for name, key, scale in (("utilization_percent", "util", 1), ("power_w", "power", 1),
                             ("memory_used_bytes", "mem", 1 / 2**20),
                             ("sm_clock_mhz", "sm", 1), ("temperature_c", "temp", 1)):
        s, n = mean(sonde[(name, None)], t0, t1)
        m, k = mean(smi[key], t0, t1)
        s *= scale
        ok = close(s, m, 0.05)
        print(f"  {name:22s} sonde {s:10.1f} ({n:2d})  nvidia-smi {m:10.1f} ({k:2d})  {'ok' if ok else 'DIFFERS'}")
        if not ok:
            bad.append(name)
    assert not bad, bad
elif what == "process":
    pid = str(load["pid"])
    apps = [float(r[1]) for r in csv.reader(open(ws + "/apps.csv"))
            if len(r) >= 2 and r[0].strip() == pid and num(r[1]) is not None]
    if not apps:
        print(f"  NOTE: nvidia-smi lists no process {pid} (another pid namespace?): not compared")
        sys.exit(0)
    mine = [v for (n, p), pts in sonde.items() if n == "process_memory_bytes" and p == pid for _, v in pts]
    assert mine, f"sonde recorded no process_memory_bytes for pid {pid}"
    print(f"  GPU memory of the load (pid {pid}): sonde {max(mine) / 2**20:.0f} MiB, nvidia-smi {max(apps):.0f} MiB")
    assert close(max(mine) / 2**20, max(apps), 0.05)
elif what == "warnings":
    w = [e["message"] for e in rep["events"] if e["level"] == "warning" and "monitor gpu" in e["message"]]
    for x in w:
        print("  warning:", x)
    assert not [x for x in w if "every reading was 0" in x or "failed" in x or "did not advance" in x], w
PY
an() { python3 "$WS/an.py" "$WS" "$IDX" "$1"; }
if [ -s "$WS/load.json" ] && [ -s "$WS/smi.csv" ] && [ -s "$WS/sonde.csv" ]; then
  check "utilization > 50% under load" an util
  check "power under load > 1.5 x idle" an power
  check "energy counter: > 0, within 10% of power x time" an energy
  check "sonde's means within 5% of nvidia-smi's over the loaded window" an versus
  check "per-process GPU memory of the load within 5% of nvidia-smi's" an process
  check "no warning that the readings are wrong" an warnings
fi
finish
