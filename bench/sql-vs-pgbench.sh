#!/usr/bin/env bash
# sonde's sql client side by side with pgbench, against one PostgreSQL on this
# machine. Not a test: run it by hand on a quiet machine.
#
#   bench/sql-vs-pgbench.sh [BUILD_DIR]     (default build/)
#
# One throwaway server (scripts/db-local.sh, default settings), pgbench's tables at
# scale BENCH_SCALE (default 10) created once by pgbench -i. Two workloads, TPC-B
# (pgbench's default transaction) and select-only, each run alternately by pgbench
# and by sonde, 3 runs each, BENCH_CONNECTIONS connections (default 8),
# BENCH_THREADS threads (default 1), BENCH_DURATION seconds (default 30). Both use
# prepared statements (pgbench -M prepared) and a closed loop; pgbench's tps is the
# one "without initial connection time", as sonde's.
# After every run the rows pgbench_history gained must equal the transactions the
# tool reports (TPC-B inserts one row per transaction; select-only none).
# It prints every run, the medians and their ratio per workload; the last line is
# "ratio sonde/pgbench: X.XX", the lower of the two.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
sonde=$build/sonde
[ -x "$sonde" ] || { echo "no $sonde: build first (scripts/build.sh $build)" >&2; exit 1; }
bindir=${SONDE_PG_BINDIR:-/usr/lib/postgresql/15/bin}
[ -x "$bindir/pgbench" ] || { echo "no pgbench in $bindir (apt-get install postgresql-contrib)" >&2; exit 1; }
scale=${BENCH_SCALE:-10}
conns=${BENCH_CONNECTIONS:-8}
threads=${BENCH_THREADS:-1}
dur=${BENCH_DURATION:-30}
for v in scale conns threads dur; do
  [[ ${!v} =~ ^[1-9][0-9]{0,3}$ ]] || { echo "$v must be a positive integer, got '${!v}'" >&2; exit 1; }
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d /var/tmp/sonde-pgbench.XXXXXX)
chmod 755 "$work"
cleanup() { scripts/db-local.sh postgres stop "$work/pg"; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

scripts/db-local.sh postgres start "$work/pg" "$port"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
echo "initialising pgbench's tables at scale $scale..."
as_pg "$bindir/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -q -s "$scale" postgres \
  >"$work/init.log" 2>&1 || { cat "$work/init.log" >&2; exit 1; }
history() { scripts/db-local.sh postgres sql "$work/pg" "SELECT count(*) FROM pgbench_history"; }

# run_pgbench WORKLOAD -> "tps transactions"
run_pgbench() {
  local sel=()
  [ "$1" = select-only ] && sel=(-S)
  as_pg "$bindir/pgbench" -h 127.0.0.1 -p "$port" -U postgres -M prepared -n "${sel[@]}" \
    -c "$conns" -j "$threads" -T "$dur" postgres >"$work/pgbench.out" 2>&1 ||
    { cat "$work/pgbench.out" >&2; return 1; }
  python3 -c '
import re, sys
t = open(sys.argv[1]).read()
tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", t).group(1)
n = re.search(r"number of transactions actually processed: ([0-9]+)", t).group(1)
failed = re.search(r"number of failed transactions: ([0-9]+)", t)
assert not failed or failed.group(1) == "0", t
print(tps, n)
' "$work/pgbench.out"
}

# run_sonde WORKLOAD -> "tps transactions"
run_sonde() {
  cat >"$work/sql.yaml" <<EOF
kind: benchmark
name: bench-sql-vs-pgbench
description: sonde's sql client, driven by bench/sql-vs-pgbench.sh
timeout: $((dur + 120))s
clients:
  load:
    driver: sql
    with:
      host: 127.0.0.1
      port: "$port"
      user: postgres
      database: postgres
      script: $1
      scale: $scale
      init: never
      connections: $conns
      threads: $threads
      duration: ${dur}s
EOF
  "$sonde" -q --workspace "$work/ws" run "$work/sql.yaml" >/dev/null 2>&1 ||
    { echo "sonde failed (session in $work/ws)" >&2; "$sonde" --workspace "$work/ws" report latest >&2; return 1; }
  "$sonde" --workspace "$work/ws" report latest --format json >"$work/sonde.json"
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
m = {x["name"]: x["value"] for x in d["trials"][0]["metrics"]}
assert m["errors"] == 0 and m["transactions"] > 0, m
print("%.1f %d" % (m["throughput"], m["transactions"]))
' "$work/sonde.json"
}

# measure TOOL WORKLOAD -> tps, after checking the rows pgbench_history gained
measure() {
  local before after out tps n want
  before=$(history)
  out=$("run_$1" "$2") || return 1
  read -r tps n <<<"$out"
  after=$(history)
  want=$([ "$2" = tpcb ] && echo "$n" || echo 0)
  if [ $((after - before)) != "$want" ]; then
    echo "$1 $2: pgbench_history gained $((after - before)) rows, the tool reports $n transactions" >&2
    return 1
  fi
  echo "$tps"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "$("$bindir/pgbench" --version), sonde $("$sonde" --version 2>/dev/null | head -n1);" \
  "scale $scale, $conns connections, $threads thread(s), ${dur} s per run, 3 runs each, alternating"
printf '%-12s %-8s %10s %10s %10s %10s\n' workload tool run1 run2 run3 median
worst=
for w in tpcb select-only; do
  p=() s=()
  for i in 1 2 3; do
    p+=("$(measure pgbench "$w")")
    s+=("$(measure sonde "$w")")
  done
  pm=$(printf '%s\n' "${p[@]}" | median)
  sm=$(printf '%s\n' "${s[@]}" | median)
  printf '%-12s %-8s %10s %10s %10s %10s tx/s\n' "$w" pgbench "${p[@]}" "$pm"
  printf '%-12s %-8s %10s %10s %10s %10s tx/s\n' "$w" sonde "${s[@]}" "$sm"
  r=$(python3 -c "print(f'{$sm / $pm:.2f}')")
  echo "$w: sonde/pgbench $r (history rows matched the reported transactions in every run)"
  worst=$(python3 -c "print(min(float('$r'), float('${worst:-99}')))")
done
python3 -c "print(f'ratio sonde/pgbench: {$worst:.2f}')"
