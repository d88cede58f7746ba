#!/usr/bin/env bash
# The slurm backend's job scripts: golden dry runs (--dry-run), the checks
# against a site profile, and the generated scripts submitted to a real
# single-machine Slurm (scripts/slurm.sh) where they must run as written.
#   SONDE_UPDATE_GOLDEN=1 rewrites the tests/recipes/slurm/*.expected files.
. "$(dirname "$0")/lib.sh"
R=tests/recipes/slurm
export SONDE_SITES=$PWD/sites

dry() { # site recipe -> the dry run, with this checkout's path made relative
  XDG_CACHE_HOME=/srv/cache "$SONDE" run --backend slurm --site "$1" --dry-run --workspace /srv/sonde "$2" |
    sed -e "s|'$SONDE'|'sonde'|g" -e "s|$PWD/||g"
}

# 1. Golden dry runs: the quickstart and http-sim benchmarks as they are, and a
# containerised GPU service with a client fanned out over 2 nodes x 4 tasks, the
# vLLM rate sweep of docs/inference.md, the Lustre fileio, MinIO and PostgreSQL
# runs of docs/storage.md, the Chroma image of docs/vector.md.
for c in "generic recipes/benchmarks/quickstart.yaml quickstart" \
         "meluxina recipes/benchmarks/http-sim.yaml http-sim" \
         "meluxina $R/gpu-fanout.yaml gpu-fanout" \
         "meluxina $R/llm-meluxina.yaml llm-meluxina" \
         "meluxina $R/fileio-meluxina.yaml fileio-meluxina" \
         "meluxina $R/pg-meluxina.yaml pg-meluxina" \
         "meluxina $R/minio-meluxina.yaml minio-meluxina" \
         "meluxina $R/chroma-meluxina.yaml chroma-meluxina"; do
  read -r site file name <<<"$c"
  out=$(dry "$site" "$file"); rc=$?
  if [ "${SONDE_UPDATE_GOLDEN:-}" = 1 ]; then printf '%s\n' "$out" >"$R/$name.expected"; fi
  check "dry run of $name on $site exits 0 ($rc)" test "$rc" -eq 0
  check "dry run of $name matches $R/$name.expected" diff -u "$R/$name.expected" <(printf '%s\n' "$out")
done

# 2. What the site cannot give is an error before anything is submitted.
out=$("$SONDE" run --backend slurm --site meluxina --dry-run $R/gpu-fanout.yaml \
  --set services.llm.resources.gpus_per_node=8 --set clients.load.resources.partition=gpux 2>&1); rc=$?
check "too many GPUs / unknown partition: exit 2 ($rc)" test "$rc" -eq 2
check "names the GPU limit" contains "$out" "services.llm.resources: 8 GPUs per node asked, but partition gpu has 4 per node"
check "names the partitions" contains "$out" "partition 'gpux' is not one of site meluxina's: cpu, gpu, fpga, largemem"
check "no script printed when one is wrong" not_contains "$out" "#!/bin/bash"
out=$("$SONDE" run --backend slurm --site generic --dry-run $R/fanout.yaml 2>&1); rc=$?
check "dry run of an HTTP fan-out: one job of 4 agent tasks ($rc)" contains "$out" \
  "^exec srun --kill-on-bad-exit=1 .* '$SONDE' 'agent' 'http' '[^ ]*/load/agent.json' '[^ ]*/load/tasks'$"
check "... with 2 nodes x 2 tasks" contains "$out" "#SBATCH --ntasks-per-node=2"
out=$("$SONDE" run --backend slurm --site nowhere --dry-run $R/real.yaml 2>&1); rc=$?
check "unknown site: exit 2 ($rc)" test "$rc" -eq 2
check "unknown site is named" contains "$out" "no site profile 'nowhere'"
out=$("$SONDE" run --dry-run $R/real.yaml 2>&1); rc=$?
check "--dry-run on the local backend: exit 2 ($rc)" test "$rc" -eq 2
check "... says it is for batch backends" contains "$out" "use it with --backend slurm"

# 4. `sonde run --backend slurm` against the real Slurm (run_sessions, called
# once it is up): sessions, failures, stops, two nodes, local vs slurm.
json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
sid_of() { sed -n 's/^session: //p' <<<"$1"; }                 # the id `sonde run` printed
jobs_of() { squeue -h -o '%j' 2>/dev/null | grep -c "^sonde-$1-"; } # its jobs still listed
no_jobs_left() { # up to 10 s for Slurm to forget a session's jobs
  for ((k = 0; k < 50; k++)); do [ "$(jobs_of "$1")" -eq 0 ] && return 0; sleep 0.2; done
  return 1
}
slurm_run() { "$SONDE" run -q --backend slurm --site generic "$@" 2>&1; }
# The structure of a JSON report: per trial label, its components and the
# names of what they stored (labels aside: on slurm, monitors add the node).
structure() {
  python3 -c '
import json, sys
d = json.load(sys.stdin)
for t in d["trials"]:
    print(t["label"], t["state"], sorted((c["name"], c["role"], c["state"]) for c in t["components"]))
    for kind in ("metrics", "histograms", "series"):
        print(" ", kind, sorted({(x["component"], x["name"], x.get("unit")) for x in t[kind]}))
'
}

run_sessions() {
  # g (started first: Slurm enforces a 1-minute limit 60-90 s after the job starts)
  "$SONDE" run -q --backend slurm "$R/timeout.yaml" >"$WS/timeout.out" 2>&1 &
  local tpid=$! out rc sid rep
  # h (also started first: a queue reason must hold 60 s before it counts as never clearing)
  "$SONDE" run -q --backend slurm "$R/unplaceable.yaml" >"$WS/unplaceable.out" 2>&1 &
  local upid=$!

  # a. a service job and a 2-task client job
  out=$(slurm_run "$R/real.yaml"); rc=$?; sid=$(sid_of "$out"); [ "$rc" -eq 0 ] || printf "%s\n" "$out" | tail -5
  check "service + 2-task client session done ($rc)" test "$rc" -eq 0 -a -n "$sid"
  local t1=$WS/sessions/$sid/trial-001
  check "task 0 of the client wrote tasks/task-0.stdout" grep -qx "it's a test: task 0 of 2 on .*" "$t1/hello/tasks/task-0.stdout"
  check "task 1 of the client wrote tasks/task-1.stdout" grep -qx "it's a test: task 1 of 2 on .*" "$t1/hello/tasks/task-1.stdout"
  check "the job scripts are kept in the session" test -s "$t1/idle/job.sh" -a -s "$t1/hello/job.sh"
  rep=$("$SONDE" report "$sid" --format json)
  check "job ids and nodes in provenance" json "
p=d['provenance']
assert p['backend']=='slurm', p['backend']
import re
assert re.match(r'^\d+ nodes=\S+; job \d+ COMPLETED on ', p['job.trial-001.hello']), p
assert re.match(r'^\d+ nodes=\S+; job \d+ ', p['job.trial-001.idle']), p" <<<"$rep"
  check "no job of the session left in squeue" no_jobs_left "$sid"
  check "no process of the session left" no_procs_left "$sid"

  # b. the service and its clients on different nodes
  out=$(slurm_run "$R/two-nodes.yaml"); rc=$?; sid=$(sid_of "$out")
  check "two-node session done ($rc)" test "$rc" -eq 0 -a -n "$sid"
  rep=$("$SONDE" report "$sid" --format json)
  check "service and client job ran on different nodes" json "
p=d['provenance']
s=p['job.trial-001.sim'].split()[1].rstrip(';'); c=p['job.trial-001.fetch'].split()[1].rstrip(';')
assert s.startswith('nodes=') and c.startswith('nodes=') and s!=c, (s, c)" <<<"$rep"
  check "the client job fetched from the service's node (HTTP 200)" json "
m={x['component']+'.'+x['name']: x['value'] for x in d['trials'][0]['metrics']}
assert m['fetch.http_status']==200, m" <<<"$rep"
  check "sonde's HTTP client loaded it across nodes without errors" json "
m={x['component']+'.'+x['name']: x['value'] for x in d['trials'][0]['metrics']}
assert m['load.requests']>100 and m['load.errors']==0, m" <<<"$rep"
  local node addr
  node=$(json "print(d['provenance']['job.trial-001.sim'].split()[1][6:].rstrip(';'))" <<<"$rep")
  addr=$(scontrol show node -o "$node" | grep -o 'NodeAddr=[^ ]*' | cut -d= -f2)
  check "clients reached the service at its node's address ($node: $addr)" json "
c=[c for c in d['trials'][0]['components'] if c['name']=='sim'][0]
assert '$addr' and c['host'].startswith('$addr:'), c['host']" <<<"$rep"
  local cnode
  cnode=$(json "print(d['provenance']['job.trial-001.fetch'].split()[1][6:].rstrip(';'))" <<<"$rep")
  check "process monitor: the service's processes measured on its node ($node) by the job's agent" json "
t=d['trials'][0]
pts=[x for x in t['series'] if x['component']=='process' and x['labels'].get('component')=='sim']
assert pts and all(x['labels'].get('node')=='$node' for x in pts), pts[:3]
n=[x for x in pts if x['name']=='nprocs']
assert n and all(pt[1]>=1 for p in n for pt in p['points']), n[:1]
m={(x['name'], x['labels'].get('component'), x['labels'].get('node')): x['value'] for x in t['metrics'] if x['component']=='process'}
assert m[('rss_bytes_max','sim','$node')] > 1e6, m" <<<"$rep"
  check "node monitor: series of both jobs' nodes ($node, $cnode) from their agents" json "
t=d['trials'][0]
nodes={x['labels'].get('node') for x in t['series'] if x['component']=='node' and x['name']=='cpu_percent'}
assert {'$node','$cnode'} <= nodes, nodes
m={(x['name'], x['labels'].get('node')) for x in t['metrics'] if x['component']=='node'}
assert ('cpu_percent_mean','$node') in m and ('mem_used_bytes_max','$cnode') in m, m" <<<"$rep"
  check "the agents' files are in the jobs' directories" test -s "$WS/sessions/$sid/trial-001/sim/monitor/$node.jsonl" -a -s "$WS/sessions/$sid/trial-001/fetch/monitor/$cnode.jsonl"

  # b2. sonde's HTTP client fanned out over 2 nodes x 2 tasks: the merged
  # result is exactly the sum of the tasks' result files, kept in tasks/
  out=$(slurm_run "$R/fanout.yaml"); rc=$?; sid=$(sid_of "$out")
  check "fan-out session done ($rc)" test "$rc" -eq 0 -a -n "$sid"
  rep=$("$SONDE" report "$sid" --format json)
  for t in 1 2; do
    check "trial $t: merged counters are the sums of the 4 tasks' files" python3 -c '
import glob, json, sys
d = json.load(sys.stdin); t = d["trials"][int(sys.argv[2]) - 1]
files = sorted(glob.glob("%s/trial-%03d/load/tasks/task-*.stats" % (sys.argv[1], int(sys.argv[2]))))
parts = [json.load(open(f)) for f in files]
assert len(parts) == 4, files
m = {x["name"]: x["value"] for x in t["metrics"] if x["component"] == "load"}
assert m["tasks"] == 4, m
for k in ("requests", "ok", "bytes_in", "bytes_out", "connects"):
    assert m[k] == sum(p[k] for p in parts), (k, m[k], [p[k] for p in parts])
assert m["errors"] == sum(sum(p["errors"].values()) for p in parts), m
assert all(p["requests"] > 0 for p in parts), [p["requests"] for p in parts]
h = {x["name"]: x for x in t["histograms"] if x["component"] == "load"}
assert h["latency"]["count"] == m["ok"], (h["latency"]["count"], m["ok"])
for q, name in (("50", "latency_p50"), ("99", "latency_p99")):
    assert abs(h["latency"]["percentiles"][q] - m[name]) < 1e-9, (q, h["latency"]["percentiles"][q], m[name])
s = [x for x in t["series"] if x["component"] == "load" and x["name"] == "requests"][0]
assert sum(p[1] for p in s["points"]) == m["requests"], (s["points"], m["requests"])
' "$WS/sessions/$sid" "$t" <<<"$rep"
  done
  check "the open-loop rate was split over the tasks" json "
t=d['trials'][1]; m={x['name']: x['value'] for x in t['metrics'] if x['component']=='load'}
assert 800 < m['achieved_rate'] < 1100, m['achieved_rate']" <<<"$rep"
  check "... the job ran on both nodes" json "
import re
assert re.match(r'^\d+ nodes=\S+\[|^\d+ nodes=\S+,', d['provenance']['job.trial-001.load']), d['provenance']['job.trial-001.load']" <<<"$rep"

  # b3. sonde's openai client fanned out the same way: its own results (tokens,
  # TTFT/ITL histograms, goodput, per-second tokens) are merged exactly too
  out=$(slurm_run "$R/llm-fanout.yaml"); rc=$?; sid=$(sid_of "$out")
  check "openai fan-out session done ($rc)" test "$rc" -eq 0 -a -n "$sid"
  rep=$("$SONDE" report "$sid" --format json)
  for t in 1 2; do
    check "openai trial $t: merged counts, histograms and records are those of the 4 tasks" python3 -c '
import base64, glob, json, sys
d = json.load(sys.stdin); t = d["trials"][int(sys.argv[2]) - 1]
tdir = "%s/trial-%03d/gen" % (sys.argv[1], int(sys.argv[2]))
files = sorted(glob.glob(tdir + "/tasks/task-*.stats"))
parts = [{x["name"]: x for x in json.load(open(f))["extra"]} for f in files]
assert len(parts) == 4, files
m = {x["name"]: x["value"] for x in t["metrics"] if x["component"] == "gen"}
assert m["tasks"] == 4 and m["errors"] == 0, m
for k in ("requests", "ok", "output_tokens", "prompt_tokens"):
    assert m[k] == sum(p[k]["counter"] for p in parts), (k, m[k], [p[k]["counter"] for p in parts])
assert all(p["ok"]["counter"] > 0 for p in parts), [p["ok"]["counter"] for p in parts]
assert m["output_tokens"] == 16 * m["ok"], m
w = [x for x in t["series"] if x["component"] == "gen" and x["name"] == "output_tokens"][0]
assert sum(p[1] for p in w["points"]) == m["output_tokens"], (w["points"], m["output_tokens"])
h = {x["name"]: x for x in t["histograms"] if x["component"] == "gen"}
assert h["ttft"]["count"] == m["ok"] and h["itl"]["count"] == 15 * m["ok"], (h["ttft"]["count"], m["ok"])
assert abs(h["ttft"]["percentiles"]["50"] - m["ttft_p50"]) < 1e-9, (h["ttft"], m["ttft_p50"])
assert 49 < m["ttft_mean"] < 56 and 4.8 < m["itl_mean"] < 5.3, (m["ttft_mean"], m["itl_mean"])
assert m["goodput"] == m["throughput"], m
recs = [json.loads(l) for l in open(tdir + "/requests.jsonl")]
assert len(recs) == m["requests"] and {r["task"] for r in recs} == {0, 1, 2, 3}, len(recs)
assert sum(r["output_tokens"] for r in recs) == m["output_tokens"]
' "$WS/sessions/$sid" "$t" <<<"$rep"
  done
  check "openai: the open-loop rate (40/s) was split over the tasks" json "
t=d['trials'][1]; m={x['name']: x['value'] for x in t['metrics'] if x['component']=='gen'}
assert 32 < m['achieved_rate'] < 46 and 'ttft_intended_p50' in m, m.get('achieved_rate')" <<<"$rep"
  check "... the job ran on both nodes" json "
import re
assert re.match(r'^\d+ nodes=\S+\[|^\d+ nodes=\S+,', d['provenance']['job.trial-001.gen']), d['provenance']['job.trial-001.gen']" <<<"$rep"

  # b4. the kserve client too: each task reads the model's metadata itself
  out=$(slurm_run "$R/kserve-fanout.yaml"); rc=$?; sid=$(sid_of "$out")
  check "kserve fan-out session done ($rc)" test "$rc" -eq 0 -a -n "$sid"
  rep=$("$SONDE" report "$sid" --format json)
  check "kserve: merged counts and histograms are those of the 4 tasks, inferences = 4 x ok" python3 -c '
import glob, json, sys
d = json.load(sys.stdin); t = d["trials"][0]
files = sorted(glob.glob(sys.argv[1] + "/trial-001/infer/tasks/task-*.stats"))
parts = [{x["name"]: x for x in json.load(open(f))["extra"]} for f in files]
assert len(parts) == 4, files
m = {x["name"]: x["value"] for x in t["metrics"] if x["component"] == "infer"}
assert m["tasks"] == 4 and m["errors"] == 0, m
for k in ("requests", "ok", "status_2xx"):
    assert m[k] == sum(p[k]["counter"] for p in parts), (k, m[k], [p[k]["counter"] for p in parts])
assert all(p["ok"]["counter"] > 0 for p in parts) and m["inferences"] == 4 * m["ok"], m
h = {x["name"]: x for x in t["histograms"] if x["component"] == "infer"}
assert h["latency"]["count"] == m["ok"] and m["latency_p50"] >= 2.0, (h["latency"]["count"], m)
s = [x for x in t["series"] if x["component"] == "infer" and x["name"] == "requests"][0]
assert sum(p[1] for p in s["points"]) == m["requests"], (s["points"], m["requests"])
' "$WS/sessions/$sid" <<<"$rep"

  # b5. the fileio client: 4 tasks on 2 nodes meet through files; the merged latency
  # histogram is exactly the sum of the 4 tasks' (slot by slot), as is the same run's
  # with 4 threads inside sonde on the local backend
  out=$(slurm_run "$R/fileio-fanout.yaml"); rc=$?; sid=$(sid_of "$out")
  check "fileio fan-out session done ($rc)" test "$rc" -eq 0 -a -n "$sid"
  check "fileio: 4 tasks x 512 blocks x 2 passes; the merged histogram is the tasks' summed" python3 -c '
import base64, glob, json, sqlite3, sys
sys.path.insert(0, "tests/integration")
from hdr_decode import decode, merge
ws, sid = sys.argv[1], sys.argv[2]
files = sorted(glob.glob("%s/sessions/%s/trial-001/io/tasks/task-*.stats" % (ws, sid)))
parts = [{x["name"]: x for x in json.load(open(f))["extra"]} for f in files]
assert len(parts) == 4, files
assert [p["read_ops"]["counter"] for p in parts] == [1024] * 4, [p["read_ops"]["counter"] for p in parts]
want = merge([decode(base64.b64decode(p["read_latency"]["histogram"])) for p in parts])
db = sqlite3.connect(ws + "/sonde.db")
blob, count = db.execute("SELECT encoding, count FROM histograms WHERE session_id = ? AND name = ?",
                         (sid, "read_latency")).fetchone()
got = decode(blob)
assert count == 4096 and got["total"] == 4096, (count, got["total"])
for k in ("slots", "min", "max", "sum"):
    assert got[k] == want[k], k
m = {r[0]: r[1] for r in db.execute("SELECT name, value FROM metrics WHERE session_id = ?", (sid,))}
assert m["read_ops"] == 4096 and m["read_bytes"] == 4096 * 4096 and m["errors"] == 0, m
assert m["read_time_first_done"] <= m["read_time"], m
' "$WS" "$sid"
  check "... the tasks met through files, removed afterwards" test ! -e "$WS/sessions/$sid/trial-001/io/tasks/sync"
  out=$(SONDE_TEST_FILEIO_TASKS=4 "$SONDE" run -q "$R/fileio-fanout.yaml" 2>&1); rc=$?; sid=$(sid_of "$out")
  check "the same 4 tasks as threads on local: done ($rc)" test "$rc" -eq 0 -a -n "$sid"
  check "... 4096 reads, their histogram holds each" python3 -c '
import sqlite3, sys
sys.path.insert(0, "tests/integration")
from hdr_decode import decode
db = sqlite3.connect(sys.argv[1] + "/sonde.db")
blob, = db.execute("SELECT encoding FROM histograms WHERE session_id = ? AND name = ?",
                   (sys.argv[2], "read_latency")).fetchone()
m = {r[0]: r[1] for r in db.execute("SELECT name, value FROM metrics WHERE session_id = ?", (sys.argv[2],))}
h = decode(blob)
assert m["read_ops"] == 4096 and h["total"] == 4096 and sum(h["slots"]) == 4096, (m, h["total"])
assert m["tasks"] == 4, m
' "$WS" "$sid"

  # b6. the sql client: 2 nodes x 2 tasks against a PostgreSQL of the test's own; the
  # tables made once by sonde, the tasks' transactions merged exactly and all committed
  PG=$WS/pg
  SONDE_TEST_PG_PORT=$(free_port)
  export SONDE_TEST_PG_PORT
  if scripts/db-local.sh postgres start "$PG" "$SONDE_TEST_PG_PORT" >"$WS/pg.log" 2>&1; then
    out=$(slurm_run "$R/sql-fanout.yaml"); rc=$?; sid=$(sid_of "$out")
    check "sql fan-out session done ($rc)" test "$rc" -eq 0 -a -n "$sid"
    hist=$(scripts/db-local.sh postgres sql "$PG" "SELECT count(*) FROM pgbench_history")
    check "sql: 4 tasks; transactions = the tasks' sum = pgbench_history's rows ($hist)" python3 -c '
import glob, json, sys
d = json.load(sys.stdin); t = d["trials"][0]
files = sorted(glob.glob(sys.argv[1] + "/trial-001/load/tasks/task-*.stats"))
parts = [json.load(open(f)) for f in files]
assert len(parts) == 4, files
m = {x["name"]: x["value"] for x in t["metrics"] if x["component"] == "load"}
assert m["tasks"] == 4 and m["errors"] == 0 and m["connections"] == 8, m
assert m["transactions"] == sum(p["ok"] for p in parts) == int(sys.argv[2]), (m["transactions"], sys.argv[2])
assert all(p["ok"] > 0 for p in parts)
h = {x["name"]: x for x in t["histograms"] if x["component"] == "load"}
assert h["latency"]["count"] == m["transactions"] and h["connect_time"]["count"] == 8, h["connect_time"]
assert h["stmt_1_7"]["count"] == m["transactions"]
' "$WS/sessions/$sid" "$hist" <<<"$("$SONDE" report "$sid" --format json)"
  else
    bad "PostgreSQL for the sql fan-out starts ($(tail -3 "$WS/pg.log"))"
  fi
  scripts/db-local.sh postgres stop "$PG"

  # b7. the s3 client: 2 nodes x 2 tasks against an s3rver of the test's own; the bucket and
  # the objects made once by sonde, every GET checked, the tasks' counts merged exactly
  S3BIN=$PWD/tests/s3rver/node_modules/.bin
  SONDE_TEST_S3_PORT=$(free_port)
  export SONDE_TEST_S3_PORT AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
  mkdir -p "$WS/s3data"
  NODE_OPTIONS=--openssl-legacy-provider "$S3BIN/s3rver" -d "$WS/s3data" -a 127.0.0.1 \
    -p "$SONDE_TEST_S3_PORT" --silent >"$WS/s3rver.log" 2>&1 &
  s3pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$SONDE_TEST_S3_PORT/" && break; sleep 0.1; done
  out=$(slurm_run "$R/s3-fanout.yaml"); rc=$?; sid=$(sid_of "$out")
  check "s3 fan-out session done ($rc)" test "$rc" -eq 0 -a -n "$sid"
  check "s3: 4 tasks, no errors, the counts the tasks' sums, the 40 objects PUT once" python3 -c '
import glob, json, os, sys
d = json.load(sys.stdin); t = d["trials"][0]
files = sorted(glob.glob(sys.argv[1] + "/trial-001/load/tasks/task-*.stats"))
parts = [{x["name"]: x for x in json.load(open(f))["extra"]} for f in files]
assert len(parts) == 4, files
m = {x["name"]: x["value"] for x in t["metrics"] if x["component"] == "load"}
assert m["tasks"] == 4 and m["errors"] == 0, m
for k in ("ok", "get_ops", "put_ops", "delete_ops", "stat_ops", "get_bytes"):
    assert m[k] == sum(p[k]["counter"] for p in parts), (k, m[k])
assert all(p["get_ops"]["counter"] > 0 for p in parts) and m["get_bytes"] == 16384 * m["get_ops"], m
h = {x["name"]: x for x in t["histograms"] if x["component"] == "load"}
assert h["get_latency"]["count"] == m["get_ops"], h["get_latency"]
objs = glob.glob(sys.argv[2] + "/fanout/sonde/d000/*._S3rver_object")
assert len(objs) == 40, len(objs)
' "$WS/sessions/$sid" "$WS/s3data" <<<"$("$SONDE" report "$sid" --format json)"
  kill "$s3pid" 2>/dev/null; wait "$s3pid" 2>/dev/null

  # c. a client job that exits 1
  out=$(slurm_run "$R/fail.yaml"); rc=$?; sid=$(sid_of "$out")
  check "failed client job: exit 1 ($rc)" test "$rc" -eq 1
  check "... the reason names the job, FAILED and its exit code" \
    contains "$out" "failed: client bad: job [0-9]* FAILED on .*exit code 1:0.*no such table: results"
  check "... no job of the session left" no_jobs_left "$sid"

  # d. a service job that fails before it is ready
  out=$(slurm_run "$R/service-fail.yaml"); rc=$?; sid=$(sid_of "$out")
  check "failed service job: exit 1 ($rc)" test "$rc" -eq 1
  check "... the reason says so" \
    contains "$out" "service broken ended: job [0-9]* FAILED on .*exit code 3:0) before it was ready"
  check "... its client was never submitted" test ! -e "$WS/sessions/$sid/trial-001/never/job.sh"

  # d2. a service queued behind another (partition whole) until the trial's timeout
  out=$(slurm_run "$R/queued.yaml"); rc=$?; sid=$(sid_of "$out")
  check "queued service: exit 1 ($rc)" test "$rc" -eq 1
  check "... the reason gives the time and Slurm's reason" \
    contains "$out" "service second: job [0-9]* still queued after 6s (the trial's timeout): Resources"
  check "... no job of the session left" no_jobs_left "$sid"

  # e. sonde stop, Ctrl-C (SIGINT) and kill -9 while a service and a client run
  local how pid id
  for how in stop int kill; do
    "$SONDE" run -q --backend slurm "$R/stop.yaml" >"$WS/stop-$how.out" 2>&1 &
    pid=$! id=
    for ((k = 0; k < 150; k++)); do
      id=$(squeue -h -o '%j %T' | sed -n 's/^sonde-\(.*\)-wait RUNNING$/\1/p')
      [ -n "$id" ] && break
      sleep 0.2
    done
    for ((k = 0; k < 50; k++)); do # the agents have started (they create their files)
      [ -n "$id" ] && [ -n "$(ls "$WS/sessions/$id"/trial-001/*/monitor/*.jsonl 2>/dev/null)" ] && break
      sleep 0.1
    done
    case $how in
    stop) "$SONDE" stop "$id" >/dev/null 2>&1 ;;
    int) kill -INT "$pid" ;;
    kill) # and a job of the session sonde had not yet reported to its guardian
      # (as when sonde dies between sbatch and reading its reply): swept by name
      sbatch -Q --job-name="sonde-$id-stray" --output=/dev/null --wrap 'sleep 300' >/dev/null
      kill -KILL "$pid" ;;
    esac
    wait "$pid" 2>/dev/null; rc=$?
    check "$how: the client job was running (session ${id:-none})" test -n "$id"
    case $how in
    stop | int)
      check "$how: sonde exits 130 ($rc)" test "$rc" -eq 130
      [ "$rc" -eq 130 ] || tail -n 30 "$WS/stop-$how.out"
      ;;
    esac
    check "$how: no job of the session left in squeue" no_jobs_left "$id"
    check "$how: no process of the session left" no_procs_left "$id"
    check "$how: the jobs' monitor agents had started" test -n "$(ls "$WS/sessions/$id"/trial-001/*/monitor/*.jsonl 2>/dev/null)"
    check "$how: ... and none is left" test -z "$(pgrep -f "agent monitor $WS/sessions/$id/" || true)"
  done

  # e2. a service that ignores SIGTERM, with a 60 s stop grace: a second Ctrl-C
  # ends the grace at once (scancel, KillWait 2 s here) instead of after 60 s
  "$SONDE" run -q --backend slurm "$R/stop.yaml" --set services.idle.stop_grace=60s \
    --set 'services.idle.with.command=[sh, -c, "trap \"\" TERM; exec sleep 300"]' >"$WS/hurry.out" 2>&1 &
  pid=$! id=
  for ((k = 0; k < 150; k++)); do
    id=$(squeue -h -o '%j %T' | sed -n 's/^sonde-\(.*\)-wait RUNNING$/\1/p')
    [ -n "$id" ] && break
    sleep 0.2
  done
  kill -INT "$pid"; sleep 2; kill -INT "$pid"
  local t0=$SECONDS; wait "$pid"; rc=$?
  check "second Ctrl-C: sonde exits 130 within 20 s, not after the 60 s grace ($rc, $((SECONDS - t0)) s)" \
    test "$rc" -eq 130 -a $((SECONDS - t0)) -le 20
  check "... no job of the session left in squeue" no_jobs_left "$id"

  # e3. an agent that cannot start on the node (sonde's program gone from the
  # path the job names, as when it is not on a shared file system): a warning
  # pointing at the agent's log, not silence
  mkdir -p "$WS/gone" && cp "$SONDE" "$WS/gone/sonde"
  "$WS/gone/sonde" run -q --backend slurm "$R/stop.yaml" >"$WS/gone.out" 2>&1 &
  pid=$! id=
  sleep 0.5; rm -f "$WS/gone/sonde"
  for ((k = 0; k < 150; k++)); do
    id=$(squeue -h -o '%j %T' | sed -n 's/^sonde-\(.*\)-wait RUNNING$/\1/p')
    [ -n "$id" ] && break
    sleep 0.2
  done
  sleep 10; "$SONDE" stop "$id" >/dev/null 2>&1; wait "$pid"
  check "silent monitor agents are reported, with their log" grep -q \
    "no sample from the monitor agent in job [0-9]* (wait), which ran .*wait/monitor/agent.log" \
    "$WS/sessions/$id/report.txt"

  # f. the same recipes on both backends give reports of the same structure
  local name args
  for name in http-sim quickstart; do
    if [ $name = http-sim ]; then
      args=(--set clients.load.with.duration=1s --set clients.load.with.warmup=0s)
    else
      args=(--set 'matrix.clients=[2]' --set 'clients.pgbench.with.command=[pgbench, -c, "2", -T, "2"]')
      [ "$(id -u)" -eq 0 ] || args+=(--set "services.db.user=$(id -un)")
    fi
    out=$("$SONDE" run -q "recipes/benchmarks/$name.yaml" "${args[@]}" 2>&1); rc=$?
    local lrep srep
    lrep=$("$SONDE" report "$(sid_of "$out")" --format json | structure)
    out=$(slurm_run "recipes/benchmarks/$name.yaml" "${args[@]}"); rc=$((rc + $?))
    srep=$("$SONDE" report "$(sid_of "$out")" --format json | structure)
    check "$name runs on local and slurm ($rc)" test "$rc" -eq 0
    check "$name: the reports agree in structure" diff <(echo "$lrep") <(echo "$srep")
    check "$name: ... and are not empty" contains "$srep" "metrics \[('"
  done

  # i. container images: pulled once into the site's cache before anything is
  # submitted, digests in provenance (Apptainer is not packaged for Debian 12:
  # tests/standins/apptainer stands in for it, see its header)
  mkdir -p "$WS/sites"
  printf 'kind: site\nname: imgsite\nscheduler: slurm\ncontainer:\n  runtime: apptainer\n  cache: %s\n' \
    "$WS/images" >"$WS/sites/imgsite.yaml"
  local ilog=$WS/standin.log irun
  irun() { PATH=$PWD/tests/standins:$PATH SONDE_STANDIN_LOG=$ilog SONDE_SITES=$WS/sites:$PWD/sites \
    "$SONDE" run -q --backend slurm --site imgsite "$@" 2>&1; }
  out=$(irun "$R/image.yaml"); rc=$?; sid=$(sid_of "$out")
  check "image session done ($rc)" test "$rc" -eq 0 -a -n "$sid"
  out=$(irun "$R/image.yaml"); rc=$?; local sid2; sid2=$(sid_of "$out")
  check "a second session with the same image done ($rc)" test "$rc" -eq 0 -a -n "$sid2"
  check "the image was pulled once for both sessions and both jobs" test "$(grep -c '^pull ' "$ilog")" -eq 1
  local sif; sif=$(ls "$WS"/images/hello_1-*.sif)
  check "... into the site's cache ($sif)" test -s "$sif"
  check "both jobs of both sessions ran the cached file" test "$(grep -cx "exec $sif" "$ilog")" -eq 4
  check "the job script runs the cached file, not the reference" grep -q "^exec 'apptainer' exec --bind '/tmp' '$sif' 'sh'" \
    "$WS/sessions/$sid2/trial-001/second/job.sh"
  rep=$("$SONDE" report "$sid2" --format json)
  check "provenance: reference, the file's SHA-256 and path" json "
p=d['provenance']
want='docker://sonde-test/hello:1 sha256:$(sha256sum "$sif" | cut -d' ' -f1) $sif'
assert p['image.trial-001.first']==want and p['image.trial-001.second']==want, (p.get('image.trial-001.first'), want)" <<<"$rep"
  out=$(irun "$R/image.yaml" --set clients.second.image=docker://sonde-test/missing:1); rc=$?
  check "an image that cannot be pulled: exit 1 ($rc)" test "$rc" -eq 1
  check "... says why, in the runtime's words, naming the component" contains "$out" "second.*manifest unknown"
  check "... before any job was submitted" not_contains "$out" "^session: "
  check "... leaving no partial file in the cache" test -z "$(ls "$WS/images" | grep -v -e '\.sif$' -e '\.lock$' -e '^apptainer$' -e '^digests$')"
  # Ctrl-C while an image is pulled: the pull stops, nothing is submitted
  PATH=$PWD/tests/standins:$PATH SONDE_STANDIN_LOG=$ilog SONDE_STANDIN_PULL_SLEEP=60 \
    SONDE_SITES=$WS/sites:$PWD/sites "$SONDE" run -q --backend slurm --site imgsite "$R/image.yaml" \
    --set clients.first.image=docker://sonde-test/slow:1 --set clients.second.image=docker://sonde-test/slow:1 \
    >"$WS/pull-int.out" 2>&1 &
  local ipid=$!
  for ((k = 0; k < 100; k++)); do grep -q 'pull docker://sonde-test/slow:1' "$ilog" && break; sleep 0.1; done
  kill -INT "$ipid"
  local t0=$SECONDS; wait "$ipid"; rc=$?
  check "Ctrl-C during a pull: exit 130 within 5 s ($rc, $((SECONDS - t0)) s)" test "$rc" -eq 130 -a $((SECONDS - t0)) -le 5
  check "... says nothing was submitted" grep -q "nothing was submitted" "$WS/pull-int.out"
  check "... no pull left running" test -z "$(pgrep -f 'standins/apptainer pull' || true)"
  check "... no image and no partial file of it" test -z "$(ls "$WS/images" | grep '^slow_1-' | grep -v '\.lock$')"

  # g. a client job past its time limit
  for ((k = 0; k < 750; k++)); do kill -0 "$tpid" 2>/dev/null || break; sleep 0.2; done
  wait "$tpid"; rc=$?
  out=$(cat "$WS/timeout.out")
  check "timed-out client job: exit 1 ($rc)" test "$rc" -eq 1
  check "... the reason says TIMEOUT" contains "$out" "client slow: job [0-9]* TIMEOUT on .*: it reached its time limit"

  # h. a job that can never start (more nodes than the cluster has)
  for ((k = 0; k < 750; k++)); do kill -0 "$upid" 2>/dev/null || break; sleep 0.2; done
  wait "$upid"; rc=$?
  out=$(cat "$WS/unplaceable.out")
  check "a job that can never start: exit 1 ($rc)" test "$rc" -eq 1
  check "... Slurm's reason, explained" contains "$out" \
    "client wide: job [0-9]* can never start: Slurm has held it as PartitionConfig for 60s (it asks for more than the partition's nodes offer)"
  check "... taken out of the queue" no_jobs_left "$(sid_of "$out")"
}

# 3. A real Slurm (two slurmd on this machine: nodes vm-name at 127.0.0.1 and
# n2 at 127.0.0.2) runs the generated scripts as written: the service job
# keeps running, the 2-task client job ends COMPLETED with each task's output
# in its own file and the prepare step done once.
SL=$WS/slurm
trap 'scripts/slurm.sh down "$SL" >/dev/null 2>&1' EXIT # also when a check above aborts
if SONDE_SLURM_NODES=2 scripts/slurm.sh up "$SL" >"$WS/slurm-up.log" 2>&1; then
  ok "a two-node Slurm is up on this machine"
  eval "$(scripts/slurm.sh env "$SL")"
  "$SONDE" run --backend slurm --site generic --dry-run --workspace "$WS" $R/real.yaml >"$WS/real.dry"
  # split the dry run into one script per job ("# ---- ROLE NAME (DRIVER): PATH")
  python3 - "$WS/real.dry" <<'PY'
import os, re, sys
path = None
for line in open(sys.argv[1]):
    m = re.match(r'# ---- \w+ \S+ \(\w+\): (/\S+)$', line)
    if m:
        path = m.group(1)
        os.makedirs(os.path.join(os.path.dirname(path), 'work'), exist_ok=True)
        os.makedirs(os.path.join(os.path.dirname(path), 'tasks'), exist_ok=True)
        open(path, 'w').close()
    elif line.startswith('# ===='):
        path = None
    elif path:
        open(path, 'a').write(line)
PY
  d=$WS/sessions/dry-run/trial-001
  svc=$(sbatch --parsable "$d/idle/job.sh"); cli=$(sbatch --parsable "$d/hello/job.sh")
  check "both scripts accepted by sbatch ($svc, $cli)" test -n "$svc" -a -n "$cli"
  state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
  for ((i = 0; i < 150; i++)); do
    case "$(state "$cli")" in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL) break ;; esac
    sleep 0.2
  done
  check "client job COMPLETED ($(state "$cli"))" test "$(state "$cli")" = COMPLETED
  check "service job still RUNNING ($(state "$svc"))" test "$(state "$svc")" = RUNNING
  check "task 0 wrote its own file" grep -qx "it's a test: task 0 of 2 on .*" "$d/hello/tasks/task-0.stdout"
  check "task 1 wrote its own file" grep -qx "it's a test: task 1 of 2 on .*" "$d/hello/tasks/task-1.stdout"
  check "the prepare step ran once, in the work directory" grep -qx prepared "$d/hello/work/prepared"
  scancel "$svc"
  for ((i = 0; i < 50; i++)); do [ -z "$(squeue -h -j "$svc,$cli" 2>/dev/null)" ] && break; sleep 0.2; done
  check "after scancel no job of the test is queued" test -z "$(squeue -h -j "$svc,$cli" 2>/dev/null)"
  check "service job CANCELLED ($(state "$svc"))" test "$(state "$svc")" = CANCELLED
  run_sessions
  scripts/slurm.sh down "$SL" >>"$WS/slurm-up.log" 2>&1
  check "the Slurm daemons are stopped" test "$(scripts/slurm.sh status "$SL" >/dev/null 2>&1; echo $?)" -ne 0
else
  bad "a single-machine Slurm is up (log: $(tail -5 "$WS/slurm-up.log"))"
fi
finish
