#!/usr/bin/env bash
# What sonde's monitoring costs: a session with only monitors — node, process, gpu (it
# says so and records nothing where there is no GPU or NVML) and a prometheus scrape of
# a real node exporter — at 1 Hz for BENCH_SECONDS (default 60), beside the peer doing
# the same job, prometheus-node-exporter answering one scrape a second. Not a test: run
# it by hand on a quiet machine.
#
#   bench/monitor-overhead.sh [BUILD_DIR]     (default build/)
#
# Measured: the CPU time (user + system, from wait4's rusage) of the whole `sonde run`
# process (its loop, the store, the exporter-less session's bookkeeping: an upper bound
# on the monitoring alone), the part sonde attributes to each monitor (the
# monitor_cpu_seconds metric: thread CPU time around every call of the monitor, plus
# its scrape thread), and the node exporter's CPU time over the same minute (from its
# /proc/PID/stat). Prints each, the ratio sonde/node-exporter, and as its last line
# "monitor cpu: X.XX% of one core" for the whole sonde process over the session's wall
# time. The bar (issue 10): under 1%.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
sonde=$build/sonde
secs=${BENCH_SECONDS:-60}
[[ $secs =~ ^[1-9][0-9]{0,4}$ ]] || { echo "BENCH_SECONDS must be a positive integer, got '$secs'" >&2; exit 1; }
[ -x "$sonde" ] || { echo "no $sonde: build first (scripts/build.sh $build)" >&2; exit 1; }
exporter_bin=$(command -v prometheus-node-exporter || true)
[ -n "$exporter_bin" ] || { echo "no prometheus-node-exporter (apt-get install prometheus-node-exporter)" >&2; exit 1; }

ws=$(mktemp -d /tmp/sonde-monbench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$exporter_bin" --web.listen-address="127.0.0.1:$port" >"$ws/node-exporter.log" 2>&1 &
npid=$!
trap 'kill $npid 2>/dev/null; wait $npid 2>/dev/null; rm -rf "$ws"' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" || { echo "the node exporter did not start: $(tail -1 "$ws/node-exporter.log")" >&2; exit 1; }

cat >"$ws/monitors.yaml" <<EOF
kind: benchmark
name: monitor-overhead
description: node, process, gpu and a prometheus scrape at 1 Hz for ${secs} s, nothing else
timeout: $((secs + 60))s
monitors:
  node: {use: node, interval: 1s}
  process: {use: process, interval: 1s}
  gpu: {use: gpu, interval: 1s}
  scrape: {use: prometheus-node, interval: 1s, with: {url: "http://127.0.0.1:$port/metrics"}}
clients:
  wait:
    driver: exec
    with:
      command: [sleep, "$secs"]
EOF

ticks=$(getconf CLK_TCK)
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in ticks
n0=$(cpu_of $npid)
# wait4's rusage of the sonde process (its children, the sleep, are negligible)
read -r sonde_cpu wall rc < <(python3 - "$sonde" "$ws" <<'EOF'
import os, sys, time
sonde, ws = sys.argv[1], sys.argv[2]
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    fd = os.open(ws + "/run.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1); os.dup2(fd, 2)
    os.execv(sonde, [sonde, "--workspace", ws + "/ws", "run", ws + "/monitors.yaml"])
_, status, ru = os.wait4(pid, 0)
print(ru.ru_utime + ru.ru_stime, time.monotonic() - t0, os.waitstatus_to_exitcode(status))
EOF
)
n1=$(cpu_of $npid)
[ "$rc" -eq 0 ] || { echo "sonde run failed (exit $rc):" >&2; tail -5 "$ws/run.log" >&2; exit 1; }
"$sonde" --workspace "$ws/ws" report latest --format json >"$ws/report.json"
python3 - "$ws/report.json" "$sonde_cpu" "$wall" "$(( n1 - n0 ))" "$ticks" "$secs" <<'EOF'
import json, sys
rep, sonde_cpu, wall, ncpu, ticks, secs = sys.argv[1:]
sonde_cpu, wall, node_cpu = float(sonde_cpu), float(wall), int(ncpu) / int(ticks)
d = json.load(open(rep))
t = d["trials"][0]
per = {}
for m in t["metrics"]:
    if m["name"] in ("monitor_cpu_seconds", "monitor_cpu_percent") and not m.get("labels"):
        per.setdefault(m["component"], {})[m["name"]] = m["value"]
warn = [e for e in d.get("events", []) if "gpu" in str(e)]
print(f"session: {secs} s of monitors at 1 Hz, {wall:.1f} s wall")
for comp in sorted(per):
    v = per[comp]
    print(f"  {comp:8s} {v.get('monitor_cpu_seconds', 0) * 1000:8.1f} ms  "
          f"({v.get('monitor_cpu_percent', 0):.3f}% of one core, measured by sonde)")
scrapes = [m["value"] for m in t["metrics"] if m["component"] == "scrape" and m["name"] == "scrapes"]
print(f"  scrapes of the node exporter: {scrapes[0] if scrapes else '?'}")
for e in warn:
    print(f"  note: {e.get('message', e) if isinstance(e, dict) else e}")
print(f"sonde process (whole): {sonde_cpu * 1000:.0f} ms CPU")
print(f"node exporter serving the same scrapes: {node_cpu * 1000:.0f} ms CPU")
if node_cpu > 0:
    print(f"ratio sonde/node-exporter: {sonde_cpu / node_cpu:.2f}")
print(f"monitor cpu: {100 * sonde_cpu / wall:.2f}% of one core")
EOF
