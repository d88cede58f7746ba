#!/usr/bin/env bash
# What sonde's faiss client costs on top of FAISS itself: the same searches run by
# sonde (the `faiss` client, through src/vector/faiss_wrap.cpp) and by faiss_direct
# (bench/faiss_direct.cpp, a few lines calling FAISS directly, built here with g++
# against the same libfaiss). Not a test: run it by hand on a quiet machine.
#
#   bench/faiss-overhead.sh [BUILD_DIR]     (default build/)
#
# One clustered set made by `sonde dataset make` (BENCH_VECTORS base vectors, default
# 50,000; BENCH_QUERIES queries, default 10,000, so that a batch at efSearch 16 takes
# about half a second and a stray wake-up of either process is a small part of it;
# 128 dimensions; 100 clusters; seed 1) with its exact ground
# truth; an HNSW32 index (L2); efSearch 16, 32, 64, 128 and 256; k 10; BENCH_THREADS
# OpenMP threads (default 2); per point BENCH_ROUNDS batch searches of all the queries
# (default 5), qps = queries / the median round's time, in both tools alike.
# sonde: one `sonde run` of a recipe with a matrix over efSearch (the client builds the
# index once, keeps it in the workspace and loads it for each trial; no single-query
# latency phase). faiss_direct reads that very index from sonde's workspace (so both
# search one graph: HNSW built on several threads differs from build to build) and
# searches at each efSearch. BENCH_REPEAT times (default 5) both tools alternately, sonde first
# in odd repeats, faiss_direct first in even ones, so that drift hits both; per point
# the medians of the repeats. Both print their recall@10 against the same ground
# truth: on one graph they must agree.
# It prints every run, then per point sonde's qps, faiss_direct's, their ratio and both
# recalls; the last line is "ratio sonde/faiss-direct: X.XX", the lowest over the points.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
sonde=$build/sonde
[ -x "$sonde" ] || { echo "no $sonde: build first (scripts/build.sh $build)" >&2; exit 1; }
[ -f /usr/include/faiss/Index.h ] ||
  { echo "no FAISS headers (apt-get install libfaiss-dev libopenblas-dev)" >&2; exit 1; }
vectors=${BENCH_VECTORS:-50000}
queries=${BENCH_QUERIES:-10000}
threads=${BENCH_THREADS:-2}
rounds=${BENCH_ROUNDS:-5}
repeat=${BENCH_REPEAT:-5}
for v in vectors queries threads rounds repeat; do
  [[ ${!v} =~ ^[1-9][0-9]{0,6}$ ]] || { echo "$v must be a positive integer, got '${!v}'" >&2; exit 1; }
done
efs=(16 32 64 128 256)
k=10
work=$(mktemp -d /var/tmp/sonde-faiss.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building faiss_direct..."
g++ -O2 -std=c++17 bench/faiss_direct.cpp -lfaiss -lopenblas -lgomp -fopenmp \
  -o "$work/faiss_direct"
echo "making the data set ($vectors x 128, clustered)..."
"$sonde" dataset make --kind clustered --vectors "$vectors" --queries "$queries" --dim 128 \
  --clusters 100 --seed 1 "$work/data" >"$work/dataset.log" 2>&1 ||
  { cat "$work/dataset.log" >&2; echo "sonde dataset make failed" >&2; exit 1; }
data=$work/data
for f in base.fvecs query.fvecs groundtruth.ivecs; do
  [ -s "$data/$f" ] || { echo "sonde dataset make wrote no $data/$f" >&2; exit 1; }
done

ef_list=$(IFS=,; echo "${efs[*]}")
cat >"$work/faiss.yaml" <<EOF
kind: benchmark
name: bench-faiss-overhead
description: sonde's faiss client against FAISS called directly, driven by bench/faiss-overhead.sh
timeout: 60m
matrix:
  ef: [${ef_list//,/, }]
clients:
  search:
    driver: faiss
    with:
      dataset: {base: $data/base.fvecs, query_file: $data/query.fvecs, neighbors: $data/groundtruth.ivecs}
      metric: l2
      index: HNSW32
      search: {efSearch: "\${matrix.ef}"}
      k: $k
      threads: $threads
      rounds: $rounds
      latency_queries: 0
EOF
ws=$work/ws

# run_sonde -> one line per point, in the order of efs: "qps recall"
run_sonde() {
  "$sonde" -q --workspace "$ws" run "$work/faiss.yaml" >"$work/sonde.out" 2>&1 ||
    { cat "$work/sonde.out" >&2; echo "sonde failed (session in $ws)" >&2
      "$sonde" --workspace "$ws" report latest >&2 || true; return 1; }
  "$sonde" --workspace "$ws" report latest --format json >"$work/sonde.json"
  python3 - "$work/sonde.json" "${efs[@]}" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
got = {}
for t in d["trials"]:
    if t["state"] != "done":
        sys.exit("trial %s: %s (%s)" % (t["label"], t["state"], t["reason"]))
    m = {x["name"]: x["value"] for x in t["metrics"] if x["component"] == "search"}
    if "qps" not in m or "recall" not in m:
        sys.exit("trial %s has no qps or recall: %s" % (t["label"], sorted(m)))
    got[str(t["matrix"].get("ef"))] = (m["qps"], m["recall"])
for ef in sys.argv[2:]:
    if ef not in got:
        sys.exit("no trial with ef=%s (trials: %s)" % (ef, sorted(got)))
    print("%.1f %.4f" % got[ef])
EOF
}

# run_direct -> the same lines from faiss_direct
run_direct() {
  # the very index sonde built and keeps in its workspace: both search one graph
  local ix; ix=$(ls "$ws"/cache/faiss/index-*.faiss 2>/dev/null | head -n1)
  [ -n "$ix" ] || { echo "no index in $ws/cache/faiss: sonde runs first" >&2; return 1; }
  "$work/faiss_direct" "$data/base.fvecs" "$data/query.fvecs" "@$ix" "$k" "$threads" "$rounds" \
    "efSearch=$ef_list" "$data/groundtruth.ivecs" >"$work/direct.out" 2>"$work/direct.err" ||
    { cat "$work/direct.out" "$work/direct.err" >&2; return 1; }
  python3 - "$work/direct.out" "${efs[@]}" <<'EOF'
import re, sys
got = {}
for line in open(sys.argv[1]):
    m = re.fullmatch(r"param=(\S+) qps=([0-9.]+) recall=([0-9.]+)\n?", line)
    if not m:
        sys.exit("faiss_direct printed: %r" % line)
    got[m.group(1)] = (float(m.group(2)), float(m.group(3)))
for ef in sys.argv[2:]:
    if ef not in got:
        sys.exit("faiss_direct gave no line for efSearch=%s" % ef)
    print("%.1f %.4f" % got[ef])
EOF
}

# run_tool TOOL REPEAT: runs it, prints its line and keeps its figures in $work/TOOL.REPEAT
run_tool() {
  local out
  out=$("run_$1") || { echo "$1 failed in repeat $2" >&2; exit 1; }
  echo "$out" >"$work/$1.$2"
  printf '%-7s %-6s %s\n' "$2" "$1" "$(awk '{printf "%10s", $1}' <<<"$out")  qps"
}

echo "sonde $("$sonde" --version 2>/dev/null | head -n1); $(g++ --version | head -n1);" \
  "HNSW32 (L2), $vectors x 128 clustered, $queries queries, k $k, $threads thread(s)," \
  "$rounds rounds per point, $repeat repeats, alternating"
printf '%-7s %-6s %s\n' repeat tool "$(printf '%10s' "${efs[@]/#/ef=}")"
for ((i = 1; i <= repeat; i++)); do
  if ((i % 2)); then run_tool sonde "$i"; run_tool direct "$i"; else run_tool direct "$i"; run_tool sonde "$i"; fi
done
# The build line faiss_direct printed last (its build time, for the record).
sed 's/^/  /' "$work/direct.err"

python3 - "$work" "$repeat" "${efs[@]}" <<'EOF'
import statistics, sys
work, repeat, efs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def load(tool):
    runs = []
    for i in range(1, repeat + 1):
        rows = [l.split() for l in open("%s/%s.%d" % (work, tool, i))]
        runs.append([(float(q), float(r)) for q, r in rows])
    # per point: the median qps and the median recall over the repeats
    return [(statistics.median_low(r[p][0] for r in runs),
             statistics.median_low(r[p][1] for r in runs)) for p in range(len(efs))]
s, d = load("sonde"), load("direct")
print("%-9s %12s %12s %7s %13s %13s" % ("efSearch", "sonde qps", "direct qps", "ratio",
                                        "sonde rec@10", "direct rec@10"))
worst, differ = None, []
for p, ef in enumerate(efs):
    r = s[p][0] / d[p][0]
    worst = r if worst is None else min(worst, r)
    print("%-9s %12.1f %12.1f %7.2f %13.4f %13.4f" % (ef, s[p][0], d[p][0], r, s[p][1], d[p][1]))
    if abs(s[p][1] - d[p][1]) > 0.01:
        differ.append(ef)
if differ:
    print("warning: recall@10 differs by more than 0.01 at efSearch %s: the two indexes are not "
          "alike, so neither are their qps" % ", ".join(differ))
print("ratio sonde/faiss-direct: %.2f" % worst)
EOF
