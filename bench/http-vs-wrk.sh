#!/usr/bin/env bash
# sonde's HTTP engine side by side with wrk, against nginx serving a small
# static file on 127.0.0.1. Not a test: run it by hand on a quiet machine.
#
#   bench/http-vs-wrk.sh [BUILD_DIR]     (default build/)
#
# nginx (one worker) runs on CPU 1; wrk and sonde run alternately, 3 runs
# each, 10 s, one thread, 100 connections, pinned to CPU 0. sonde records full
# latency histograms and the per-second series while it runs. Then sonde
# runs open loop at 80% of wrk's median rate, 3 times, and reports each run's
# issue delay p99 and their median.
# The last line is "ratio sonde/wrk: X.XX" (median req/s over median req/s).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
sonde=$build/sonde
[ -x "$sonde" ] || { echo "no $sonde: build first (scripts/build.sh)" >&2; exit 1; }
. bench/nginx.sh
nginx_deps
dur=${BENCH_DURATION:-10s}
work=$(mktemp -d /var/tmp/sonde-bench.XXXXXX)
chmod 755 "$work"
cleanup() { nginx_stop "$work"; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/www"
printf 'hello from nginx\n' >"$work/www/index.html"
nginx_start "$work" "$work/www"
port=$NGINX_PORT
ws=$work/ws
run_wrk() {
  taskset -c 0 wrk -t1 -c100 -d"$dur" "http://127.0.0.1:$port/index.html" |
    awk '/^Requests\/sec:/ {print $2}'
}
run_sonde() { # mode rate -> prints "throughput issue_delay_p99_ms"
  BENCH_PORT=$port BENCH_MODE=$1 BENCH_RATE=$2 BENCH_DURATION=$dur \
    taskset -c 0 "$sonde" -q --workspace "$ws" run bench/http-nginx.yaml >/dev/null
  "$sonde" --workspace "$ws" report latest --format json | python3 -c '
import json, sys
d = json.load(sys.stdin)
m = {x["name"]: x["value"] for x in d["trials"][0]["metrics"] if x["component"] == "load"}
print(round(m.get("throughput", 0)), round(m.get("issue_delay_p99", -1), 3))'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: >"$work/wrk.txt"
: >"$work/sonde.txt"
for i in 1 2 3; do
  w=$(run_wrk)
  s=$(run_sonde closed 1 | awk '{print $1}')
  echo "run $i: wrk $w req/s, sonde $s req/s"
  echo "$w" >>"$work/wrk.txt"
  echo "$s" >>"$work/sonde.txt"
done
mw=$(median <"$work/wrk.txt")
ms=$(median <"$work/sonde.txt")
rate=$(python3 -c "print(round(0.8 * $mw))") # 80% of the bar: wrk's median
: >"$work/open.txt"
for i in 1 2 3; do
  read -r got idp99 < <(run_sonde open "$rate")
  echo "open loop run $i at $rate req/s: achieved $got req/s, issue delay p99 $idp99 ms"
  echo "$idp99" >>"$work/open.txt"
done
echo "wrk median: $mw req/s; sonde median: $ms req/s (closed loop, full histograms + per-second series)"
echo "open loop at 80% ($rate req/s): median issue delay p99 $(median <"$work/open.txt") ms"
python3 -c "print(f'ratio sonde/wrk: {$ms / $mw:.2f}')"
