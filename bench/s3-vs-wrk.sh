#!/usr/bin/env bash
# sonde's s3 client (every GET signed with SigV4) side by side with wrk (unsigned GETs),
# against nginx serving a directory as bucket/key paths (it ignores the signature). Not a
# test: run it by hand on a quiet machine.
#
#   bench/s3-vs-wrk.sh [BUILD_DIR]     (default build/)
#
# One 4 KiB object, bench/sonde/d000/o00000000, as sonde names object 0; nginx (one
# worker) on CPU 1; wrk and sonde alternately, 3 runs each, BENCH_DURATION (default 10s),
# one thread, 100 connections, pinned to CPU 0. sonde signs each request (a fresh
# x-amz-date each second, the signing key each day), checks the status and records per
# operation latency and time-to-first-byte histograms. Each run also prints the client's CPU
# (user + system) per request: nginx on one core is usually the limit, so the rates alone
# can tie while the clients' costs differ.
# The last line is "ratio sonde-s3/wrk: X.XX" (median GET/s over median req/s).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
sonde=$build/sonde
[ -x "$sonde" ] || { echo "no $sonde: build first (scripts/build.sh)" >&2; exit 1; }
. bench/nginx.sh
nginx_deps
dur=${BENCH_DURATION:-10s}
work=$(mktemp -d /var/tmp/sonde-s3bench.XXXXXX)
chmod 755 "$work"
cleanup() { nginx_stop "$work"; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/www/bench/sonde/d000"
head -c 4096 /dev/urandom >"$work/www/bench/sonde/d000/o00000000"
nginx_start "$work" "$work/www"
port=$NGINX_PORT
cat >"$work/s3.yaml" <<EOF
kind: benchmark
name: bench-s3-vs-wrk
description: sonde's s3 client against nginx, driven by bench/s3-vs-wrk.sh
timeout: 2m
clients:
  load:
    driver: s3
    env:
      AWS_ACCESS_KEY_ID: AKIDBENCH
      AWS_SECRET_ACCESS_KEY: bench-secret-not-checked
    with:
      url: http://127.0.0.1:$port
      bucket: bench
      objects: 1
      size: 4KiB
      prefill: false
      mix: {get: 1}
      connections: 100
      threads: 1
      duration: $dur
EOF
ws=$work/ws
TIMEFORMAT='%U %S' # the client's CPU (user, system) of each run, into $work/cpu
run_wrk() {
  { time taskset -c 0 wrk -t1 -c100 -d"$dur" "http://127.0.0.1:$port/bench/sonde/d000/o00000000" \
      >"$work/wrk.out"; } 2>"$work/cpu"
  awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out"
}
run_sonde() {
  { time taskset -c 0 "$sonde" -q --workspace "$ws" run "$work/s3.yaml" >/dev/null; } 2>"$work/cpu" ||
    { "$sonde" --workspace "$ws" report latest >&2; return 1; }
  "$sonde" --workspace "$ws" report latest --format json | python3 -c '
import json, sys
d = json.load(sys.stdin)
m = {x["name"]: x["value"] for x in d["trials"][0]["metrics"] if x["component"] == "load"}
assert m["errors"] == 0 and m["get_bytes"] == 4096 * m["get_ops"], m
print(round(m["get_per_s"]))'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: >"$work/wrk.txt"
: >"$work/sonde.txt"
secs=$(python3 -c "s='$dur'; print(float(s[:-1]) if s.endswith('s') else float(s))")
us_per() { python3 -c "u, s = open('$work/cpu').read().split(); print(round((float(u) + float(s)) * 1e6 / ($1 * $secs), 2))"; }
for i in 1 2 3; do
  w=$(run_wrk); wc=$(us_per "$w")
  s=$(run_sonde); sc=$(us_per "$s")
  echo "run $i: wrk $w req/s ($wc µs CPU/request), sonde-s3 $s GET/s ($sc µs CPU/request)"
  echo "$w" >>"$work/wrk.txt"
  echo "$s" >>"$work/sonde.txt"
done
mw=$(median <"$work/wrk.txt")
ms=$(median <"$work/sonde.txt")
echo "wrk median: $mw req/s (unsigned); sonde-s3 median: $ms GET/s (SigV4 per request, histograms per operation)"
python3 -c "print(f'ratio sonde-s3/wrk: {$ms / $mw:.2f}')"
