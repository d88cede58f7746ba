#!/usr/bin/env bash
# sonde's openai client side by side with a Python asyncio/aiohttp streaming
# client (bench/llm_python_client.py, modelled on vLLM's benchmark client),
# both against one sonde-sim --openai with zero token delay. Not a test: run
# it by hand on a quiet machine.
#
#   bench/llm-vs-python.sh [BUILD_DIR]     (default build/)
#
# sonde-sim (--threads 1, TTFT 0, ITL 0, one token per chunk) runs on CPU 1;
# the Python client and sonde run alternately, 3 runs each, BENCH_DURATION
# seconds (default 10), 64 concurrent streams (BENCH_STREAMS), completions of
# BENCH_TOKENS tokens (default 256), pinned to CPU 0. An event is a content
# chunk (one data: line with one token) of a request that completed in the
# measured window; CPU time is user + system of the whole client process,
# start to exit (from wait4). Per run and as medians it prints events/s,
# requests/s and CPU seconds per 1,000 requests.
# The last line is "ratio sonde/python: X.XX" (median events/s over median events/s).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
sonde=$build/sonde
sim=$build/src/sim/sonde-sim
for b in "$sonde" "$sim"; do
  [ -x "$b" ] || { echo "no $b: build first (scripts/build.sh $build)" >&2; exit 1; }
done
dur=${BENCH_DURATION:-10}
streams=${BENCH_STREAMS:-64}
tokens=${BENCH_TOKENS:-256}
for v in dur streams tokens; do
  [[ ${!v} =~ ^[1-9][0-9]{0,4}$ ]] || { echo "$v must be a positive integer, got '${!v}'" >&2; exit 1; }
done
py=/usr/bin/python3 # Debian's interpreter, the one python3-aiohttp installs into
for p in python3 python3-aiohttp; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null ||
    { echo "$p is missing and could not be installed (apt-get install $p, as root)" >&2; exit 1; }
done
aiohttp_v=$($py -c 'import aiohttp; print(aiohttp.__version__)') ||
  { echo "$py cannot import aiohttp (python3-aiohttp)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/sonde-bench.XXXXXX)
chmod 755 "$work"
sim_pid=
cleanup() {
  if [ -n "$sim_pid" ]; then
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

taskset -c 1 "$sim" --openai --threads 1 --ttft 0ms --itl 0ms --tokens-per-chunk 1 \
  --output-tokens "$tokens" --port 0 >"$work/sim.out" 2>"$work/sim.err" &
sim_pid=$!
for _ in $(seq 50); do
  grep -q '^listening on ' "$work/sim.out" && break
  kill -0 "$sim_pid" 2>/dev/null || break
  sleep 0.1
done
port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/sim.out")
[ -n "$port" ] || { echo "sonde-sim did not start: $(cat "$work/sim.err")" >&2; exit 1; }
url=http://127.0.0.1:$port

cat >"$work/llm.yaml" <<EOF
kind: benchmark
name: bench-llm-vs-python
description: sonde's openai client against sonde-sim, driven by bench/llm-vs-python.sh
timeout: $((dur + 60))s
clients:
  gen:
    driver: openai
    with:
      url: "$url"
      model: sim-model
      endpoint: completions
      prompt: tell me a story
      max_tokens: $tokens
      connections: $streams
      threads: 1
      duration: ${dur}s
EOF

# cpu_run FILE CMD...: runs CMD, writes its CPU seconds (user + system, its own
# and those of children it waited for) to FILE, exits with its status.
cpu_run() {
  python3 -c '
import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, st, ru = os.wait4(p.pid, 0)
open(sys.argv[1], "w").write("%.3f\n" % (ru.ru_utime + ru.ru_stime))
sys.exit(os.waitstatus_to_exitcode(st) & 255)' "$@"
}
# Each run prints "events/s req/s cpu_s_per_1000_requests".
run_python() {
  cpu_run "$work/cpu" taskset -c 0 $py bench/llm_python_client.py "$url" --concurrency "$streams" \
    --duration "$dur" --max-tokens "$tokens" >"$work/py.json" ||
    { echo "the Python client failed: $(cat "$work/py.json")" >&2; return 1; }
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); cpu = float(open(sys.argv[2]).read())
assert d["errors"] == 0 and d["ok"] > 0, "python: errors or no requests: %s" % d
assert d["events"] == d["output_tokens"], "python: events != usage tokens: %s" % d
print("%.0f %.1f %.3f" % (d["events"] / d["duration_s"], d["ok"] / d["duration_s"], 1000 * cpu / d["ok"]))
' "$work/py.json" "$work/cpu"
}
run_sonde() {
  cpu_run "$work/cpu" taskset -c 0 "$sonde" -q --workspace "$work/ws" run "$work/llm.yaml" >/dev/null ||
    { echo "sonde failed (session in $work/ws)" >&2; return 1; }
  "$sonde" --workspace "$work/ws" report latest --format json >"$work/sonde.json"
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); cpu = float(open(sys.argv[2]).read())
m = {x["name"]: x["value"] for x in d["trials"][0]["metrics"] if x["component"] == "gen"}
assert m["errors"] == 0 and m["ok"] > 0, "sonde: errors or no requests: %s" % m
assert m["itl_estimated"] == 0, "sonde: chunks != tokens"
print("%.0f %.1f %.3f" % (m["output_tokens_per_s"], m["throughput"], 1000 * cpu / m["ok"]))
' "$work/sonde.json" "$work/cpu"
}
# use REQ/S CPU_S_PER_1000: the share of its core the client used while it ran
use() { python3 -c "print(f'{$1 * $2 / 10:.0f}%')"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "sonde-sim --openai --threads 1 --ttft 0ms --itl 0ms on CPU 1; clients on CPU 0;"
echo "$streams streams, $tokens tokens per request (1 per chunk), ${dur} s per run;" \
  "python $($py -c 'import sys; print(sys.version.split()[0])'), aiohttp $aiohttp_v"
row() { printf '%-7s %-7s %12s %10s %16s %8s\n' "$@"; }
row run client events/s req/s "CPU s/1000 req" "CPU use"
: >"$work/python.txt"
: >"$work/sonde.txt"
for i in 1 2 3; do
  p=$(run_python)
  s=$(run_sonde)
  read -r pe pr pc <<<"$p"
  read -r se sr sc <<<"$s"
  row "$i" python "$pe" "$pr" "$pc" "$(use "$pr" "$pc")" \
    "$i" sonde "$se" "$sr" "$sc" "$(use "$sr" "$sc")"
  echo "$p" >>"$work/python.txt"
  echo "$s" >>"$work/sonde.txt"
done
col() { awk -v c="$1" '{print $c}' "$2" | median; }
for side in python sonde; do
  row median "$side" "$(col 1 "$work/$side.txt")" \
    "$(col 2 "$work/$side.txt")" "$(col 3 "$work/$side.txt")" ""
done
python3 -c "print(f'CPU per 1,000 requests python/sonde: {$(col 3 "$work/python.txt") / $(col 3 "$work/sonde.txt"):.2f}')"
python3 -c "print(f'ratio sonde/python: {$(col 1 "$work/sonde.txt") / $(col 1 "$work/python.txt"):.2f}')"
