#!/usr/bin/env bash
# sonde's fileio client side by side with fio, on the same file of this
# machine. Not a test: run it by hand on a quiet machine.
#
#   bench/fileio-vs-fio.sh [BUILD_DIR]     (default build/)
#
# One file of BENCH_SIZE (default 1GiB) in BENCH_DIR (default
# /var/tmp/sonde-fio-bench; it must be on a real disk, not tmpfs), named as
# sonde names the file of its task 0, so fio and sonde read and write the very
# same blocks. Four patterns, each run alternately by fio and by sonde, 3 runs
# each, BENCH_DURATION seconds (default 10):
#   seq-write   1 MiB sequential writes, psync
#   seq-read    1 MiB sequential reads, psync
#   rand-read   4 KiB random reads, psync (queue depth 1)
#   rand-uring  4 KiB random reads, io_uring, queue depth 32
# with O_DIRECT where the file system allows it (else buffered, and the page
# cache dropped before every read run: needs root). Random reads visit each
# block once per pass in both tools (fio's random map, sonde's permutation).
# Before the measured runs of a pattern, one run of it (by fio, not counted)
# brings the device to a steady state: a cloud disk here ran 3x slower for
# the first seconds after a pause.
# It prints every run, the medians (MiB/s for 1 MiB blocks, IOPS for 4 KiB)
# and the ratio of the medians per pattern; the last line is
# "ratio sonde/fio: X.XX", the lowest of the four.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
sonde=$build/sonde
[ -x "$sonde" ] || { echo "no $sonde: build first (scripts/build.sh $build)" >&2; exit 1; }
command -v fio >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio >/dev/null ||
  { echo "fio is missing and could not be installed (apt-get install fio, as root)" >&2; exit 1; }
dir=${BENCH_DIR:-/var/tmp/sonde-fio-bench}
size=${BENCH_SIZE:-1GiB}
dur=${BENCH_DURATION:-10}
[[ $dur =~ ^[1-9][0-9]{0,3}$ ]] || { echo "BENCH_DURATION must be seconds, got '$dur'" >&2; exit 1; }
bytes=$(numfmt --from=iec-i "${size%B}") || { echo "BENCH_SIZE: a size like 1GiB, got '$size'" >&2; exit 1; }
mkdir -p "$dir"
file=$dir/sonde-fileio.0.0
work=$(mktemp -d /var/tmp/sonde-fio-bench-ws.XXXXXX)
cleanup() { rm -rf "$work" "$file"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

fstype=$(findmnt -n -o FSTYPE --target "$dir" 2>/dev/null || stat -f -c %T "$dir")
direct=1
dd if=/dev/zero of="$dir/.probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null || direct=0
rm -f "$dir/.probe"
root=0
[ "$(id -u)" = 0 ] && root=1
if [ "$direct" = 0 ] && [ "$root" = 0 ]; then
  echo "$fstype at $dir refuses O_DIRECT and dropping the page cache needs root: run as root" >&2
  exit 1
fi
echo "laying out $file ($size on $fstype)..."
dd if=/dev/urandom of="$file" bs=1M count=$((bytes / 1048576)) status=none conv=fsync

drop() { [ "$direct" = 0 ] && sync && echo 3 >/proc/sys/vm/drop_caches; return 0; }

# run_fio RW BS ENGINE DEPTH -> MiB/s or IOPS
run_fio() {
  drop
  fio --name=bench --filename="$file" --size="$bytes" --rw="$1" --bs="$2" --ioengine="$3" \
    --iodepth="$4" --direct="$direct" --runtime="$dur" --time_based --output-format=json \
    >"$work/fio.json" 2>"$work/fio.err" || { echo "fio failed: $(cat "$work/fio.err")" >&2; return 1; }
  python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
side = j["write"] if sys.argv[2] == "write" else j["read"]
assert side["total_ios"] > 0 and j["error"] == 0, j["error"]
print("%.1f" % (side["bw_bytes"] / 1048576 if sys.argv[3] == "1MiB" else side["iops"]))
' "$work/fio.json" "$1" "$5"
}

# run_sonde RW BS ENGINE DEPTH -> MiB/s or IOPS
run_sonde() {
  cat >"$work/fileio.yaml" <<EOF
kind: benchmark
name: bench-fileio-vs-fio
description: sonde's fileio client, driven by bench/fileio-vs-fio.sh
timeout: $((dur + 120))s
clients:
  io:
    driver: fileio
    with:
      path: "$dir"
      rw: $1
      bs: $5
      size: $size
      engine: $3
      iodepth: $4
      direct: $([ "$direct" = 1 ] && echo true || echo false)
      duration: ${dur}s
EOF
  "$sonde" -q --workspace "$work/ws" run "$work/fileio.yaml" >/dev/null 2>&1 ||
    { echo "sonde failed (session in $work/ws)" >&2; "$sonde" --workspace "$work/ws" report latest >&2; return 1; }
  "$sonde" --workspace "$work/ws" report latest --format json >"$work/sonde.json"
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
m = {x["name"]: x["value"] for x in d["trials"][0]["metrics"]}
op = "write" if sys.argv[2] == "write" else "read"
assert m["errors"] == 0 and m[op + "_ops"] > 0, m
print("%.1f" % (m[op + "_bw"] if sys.argv[3] == "1MiB" else m[op + "_iops"]))
' "$work/sonde.json" "$1" "$5"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "fio $(fio --version), sonde $("$sonde" --version 2>/dev/null | head -n1); $fstype," \
  "direct=$direct, ${dur} s per run, 3 runs each, alternating"
printf '%-11s %-6s %12s %12s %12s %10s\n' pattern tool run1 run2 run3 median
worst=
for p in "seq-write write psync 1 1MiB" "seq-read read psync 1 1MiB" \
         "rand-read randread psync 1 4KiB" "rand-uring randread io_uring 32 4KiB"; do
  read -r name rw engine depth bs <<<"$p"
  fbs=${bs/MiB/M}
  fbs=${fbs/KiB/k}
  f=() s=()
  run_fio "$rw" "$fbs" "$engine" "$depth" "$bs" >/dev/null # warm-up, not counted
  for i in 1 2 3; do
    f+=("$(run_fio "$rw" "$fbs" "$engine" "$depth" "$bs")")
    s+=("$(run_sonde "$rw" "$bs" "$engine" "$depth" "$bs")")
  done
  fm=$(printf '%s\n' "${f[@]}" | median)
  sm=$(printf '%s\n' "${s[@]}" | median)
  unit=$([ "$bs" = 1MiB ] && echo MiB/s || echo IOPS)
  printf '%-11s %-6s %12s %12s %12s %10s %s\n' "$name" fio "${f[@]}" "$fm" "$unit"
  printf '%-11s %-6s %12s %12s %12s %10s %s\n' "$name" sonde "${s[@]}" "$sm" "$unit"
  r=$(python3 -c "print(f'{$sm / $fm:.2f}')")
  echo "$name: sonde/fio $r"
  worst=$(python3 -c "print(min(float('$r'), float('${worst:-99}')))")
done
python3 -c "print(f'ratio sonde/fio: {$worst:.2f}')"
