#!/usr/bin/env bash
# faiss.sh SONDE — the faiss client (FAISS inside sonde) end to end: an exact index
# scores recall 1 on every metric, HNSW and IVF trade recall for speed as their search
# parameter says (a matrix, the index built once and reused from the workspace cache),
# datasets from files with their own neighbours (checked, used, refused when wrong),
# bad input refused with the reason. Sizes stay small: this machine has 2 cores.
. "$(dirname "$0")/lib.sh"

if ! grep -q 'SONDE_HAVE_FAISS 1' "$(dirname "$SONDE")/config.h"; then
  bad "this sonde was built without FAISS (scripts/deps.sh installs libfaiss-dev)"
  finish
  exit 1
fi

SYN=("dataset: {synthetic: clustered, vectors: 4000, queries: 200, dim: 32, clusters: 20, spread: 0.2, seed: 5}")
run() { RUN_WITH=("${SYN[@]}"); run_client faiss search "$@"; } # NAME, then lines of with:

# 1. An exact index finds the exact neighbours: recall 1 for L2, IP and cosine.
for m in l2 ip cosine; do
  run "flat-$m" "metric: $m" "index: Flat" "k: 10" "recall_at: [1, 5]" "rounds: 2" "latency_queries: 200"
  check "Flat $m: exits 0" test $? -eq 0
  check "Flat $m: recall@10 = 1, recall@1 = 1, recall@5 = 1 ($(val flat-$m recall))" \
    py "$(val flat-$m recall) == 1 and $(val flat-$m recall_at_1) == 1 and $(val flat-$m recall_at_5) == 1 and $(val flat-$m recall_min) == 1"
done
check "Flat l2: qps, build time, index size ($(val flat-l2 index_bytes) B > 4000*32*4) and 200 timed queries" \
  py "$(val flat-l2 qps) > 0 and $(val flat-l2 add_time) > 0 and $(val flat-l2 index_bytes) > 4000*32*4 and $(val flat-l2 latency_queries) == 200 and 0 < $(val flat-l2 latency_p50) <= $(val flat-l2 latency_p90)"

# 2. HNSW swept over efSearch: one build, recall grows with ef.
cat >"$WS/sweep.yaml" <<EOF
kind: benchmark
name: faiss-sweep
matrix:
  ef: [4, 128]
clients:
  search:
    driver: faiss
    with:
      ${SYN[0]}
      index: HNSW16
      search: {efSearch: "\${matrix.ef}"}
      k: 10
      rounds: 2
      latency_queries: 100
EOF
"$SONDE" -q run "$WS/sweep.yaml" >"$WS/sweep.out" 2>&1
check "HNSW sweep exits 0" test $? -eq 0
"$SONDE" report latest --format json >"$WS/sweep.json"
check "HNSW: recall grows with efSearch, near 1 at 128; the second trial reuses the index" python3 -c "
import json
d = json.load(open('$WS/sweep.json'))['trials']
m = [{x['name']: x['value'] for x in t['metrics']} for t in d]
print([(t['recall'], t['qps'], t['index_cached']) for t in m])
assert m[0]['recall'] < m[1]['recall'] and m[1]['recall'] >= 0.95, m
assert m[0]['index_cached'] == 0 and m[1]['index_cached'] == 1
assert m[0]['build_time'] == m[1]['build_time'] > 0
assert m[0]['qps'] > m[1]['qps']
"

# 3. IVF: trained, recall grows with nprobe; all lists probed is exact.
run ivf1 "index: IVF32,Flat" "search: {nprobe: 1}" "rounds: 1" "latency_queries: 0"
check "IVF nprobe 1: exits 0, trained ($(val ivf1 train_time) s)" py "$(val ivf1 train_time) > 0 and $(val ivf1 recall) < 1"
run ivf32 "index: IVF32,Flat" "search: {nprobe: 32}" "rounds: 1" "latency_queries: 0"
check "IVF nprobe 32 (every list) is exact: recall $(val ivf32 recall)" py "$(val ivf32 recall) == 1 and $(val ivf32 index_cached) == 1"

# 4. A dataset from files: sonde dataset make, then base/query_file/neighbors.
"$SONDE" dataset make --kind clustered --vectors 3000 --queries 100 --dim 16 --clusters 10 --seed 2 --k 20 "$WS/set" >"$WS/make.out" 2>&1
check "dataset make writes base, query and ground truth" test -s "$WS/set/base.fvecs" -a -s "$WS/set/query.fvecs" -a -s "$WS/set/groundtruth.ivecs"
RUN_WITH=("dataset: {base: $WS/set/base.fvecs, query_file: $WS/set/query.fvecs, neighbors: $WS/set/groundtruth.ivecs}")
run_client faiss search files "index: Flat" "rounds: 1" "latency_queries: 0"
check "files: exits 0, recall 1 with the file's neighbours" py "$(val files recall) == 1"
check "files: the ground truth came from the file" grep -q '"ground_truth.trial-001.search": "file"' "$WS/files.json"
# neighbours of another set: refused
"$SONDE" dataset make --kind clustered --vectors 3000 --queries 100 --dim 16 --clusters 10 --seed 3 --k 20 "$WS/other" >/dev/null 2>&1
RUN_WITH=("dataset: {base: $WS/set/base.fvecs, query_file: $WS/set/query.fvecs, neighbors: $WS/other/groundtruth.ivecs}")
run_client faiss search wrongnb "index: Flat" "rounds: 1" "latency_queries: 0"
rc=$?
check "wrong neighbours: fails (exit $rc) saying they disagree: $(reason wrongnb)" py "$rc != 0 and 'disagree' in '''$(reason wrongnb)'''"
# a truncated vector file
head -c 1000 "$WS/set/base.fvecs" >"$WS/cut.fvecs"
RUN_WITH=("dataset: {base: $WS/cut.fvecs, query_file: $WS/set/query.fvecs}")
run_client faiss search cut "index: Flat"
rc=$?
check "truncated file: fails (exit $rc) naming it: $(reason cut)" py "$rc != 0 and 'cut.fvecs' in '''$(reason cut)'''"

# 5. Bad input: FAISS's own messages reach the user; validation catches the rest.
run badindex "index: NotAnIndex" "rounds: 1"
rc=$?
check "bad factory string: fails (exit $rc) with the reason: $(reason badindex)" py "$rc != 0 and 'NotAnIndex' in '''$(reason badindex)'''"
run badparam "index: Flat" "search: {bogusParam: 3}" "rounds: 1"
rc=$?
check "unknown search parameter: fails (exit $rc): $(reason badparam)" py "$rc != 0 and 'bogusParam' in '''$(reason badparam)'''"
cat >"$WS/invalid.yaml" <<'EOF'
kind: benchmark
name: bad
clients:
  search:
    driver: faiss
    with:
      dataset: {vectors: 10}
      k: 0
EOF
"$SONDE" recipe validate "$WS/invalid.yaml" >"$WS/invalid.out" 2>&1
rc=$?
check "validate: exit 2 ($rc), k and dataset named" py "$rc == 2 and all(w in open('$WS/invalid.out').read() for w in ('with.k: expected an integer', 'with.dataset: give synthetic'))"
sed -i 's/k: 0/metric: hamming/' "$WS/invalid.yaml"
"$SONDE" recipe validate "$WS/invalid.yaml" >"$WS/invalid.out" 2>&1
rc=$?
check "validate: exit 2 ($rc), the metric named" py "$rc == 2 and 'with.metric: expected one of l2, ip, cosine' in open('$WS/invalid.out').read()"

# Live on sonde's exporter: queries answered (batches and singles), the single
# queries' latency histogram.
PORT=$(free_port)
cat >"$WS/live.yaml" <<EOF
kind: benchmark
name: faiss-live
clients:
  search:
    driver: faiss
    with:
      ${SYN[0]}
      index: Flat
      k: 10
      rounds: 2
      latency_queries: 100000
EOF
"$SONDE" -q run --exporter "127.0.0.1:$PORT" "$WS/live.yaml" >"$WS/live.out" 2>&1 &
RUNPID=$!
scrape_until "$PORT" "$WS/live.txt" '^sonde_client_request_duration_seconds_count{.*} [1-9]'
wait $RUNPID
check "live: the session ends done ($?)" test $? -eq 0
check "live: queries counted (2 rounds x 200, then singles), the singles' latency histogram" python3 - "$WS/live.txt" <<'EOF'
import re, sys
v = {}
for l in open(sys.argv[1]):
    m = re.match(r'^(sonde_client_\w+)\{([^}]*)\} (\S+)$', l)
    if m and 'component="search"' in m.group(2):
        le = re.search(r'le="([^"]*)"', m.group(2))
        v[(m.group(1), le.group(1) if le else None)] = float(m.group(3))
n = v[('sonde_client_request_duration_seconds_count', None)]
req = v[('sonde_client_requests_total', None)]
assert n > 0 and v[('sonde_client_request_duration_seconds_bucket', '+Inf')] == n, v
assert req >= 400 + n - 16, (req, n)  # read a moment apart
assert 0 < v[('sonde_client_request_duration_seconds_sum', None)] / n < 0.1, v
assert v[('sonde_client_errors_total', None)] == 0, v
print('queries', req, 'timed', n)
EOF

finish
