#!/usr/bin/env bash
# The quickstart end to end: a real PostgreSQL, pgbench at 1/4/8 clients, monitors,
# then the JSON report must hold tps per matrix point, monitor series and provenance.
. "$(dirname "$0")/lib.sh"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
extra=()
[ "$(id -u)" -eq 0 ] || extra=(--set "services.db.user=$(id -un)")
t0=$(date +%s)
out=$("$SONDE" run recipes/benchmarks/quickstart.yaml "${extra[@]}" 2>&1); rc=$?
secs=$(($(date +%s) - t0))
echo "$out" | tail -n 12
check "quickstart exits 0 ($rc)" test "$rc" -eq 0
check "quickstart finished in ${secs} s < 120 s" test "$secs" -lt 120
id=$(latest_id)
rep=$("$SONDE" report "$id" --format json)
check "report schema sonde.report/1" json "assert d['schema']=='sonde.report/1'" <<<"$rep"
check "tps > 0 for clients=1,4,8" json "
got={t['matrix']['clients']: [m['value'] for m in t['metrics'] if m['name']=='tps' and m['component']=='pgbench'] for t in d['trials']}
assert set(got)=={'1','4','8'}, got
assert all(len(v)==1 and v[0]>0 for v in got.values()), got" <<<"$rep"
check "latency_avg in ms" json "
assert all(any(m['name']=='latency_avg' and m['unit']=='ms' and m['value']>0 for m in t['metrics']) for t in d['trials'])" <<<"$rep"
check "node and process monitor series with >= 5 points per trial" json "
for t in d['trials']:
    node=[s for s in t['series'] if s['component']=='node' and s['name']=='cpu_percent']
    proc=[s for s in t['series'] if s['component']=='process' and s['name']=='cpu_percent' and s['labels'].get('component')=='db']
    assert node and len(node[0]['points'])>=5, node
    assert proc and len(proc[0]['points'])>=5, proc" <<<"$rep"
check "provenance complete" json "
need=['recipe.resolved','recipe.sha256','sonde.version','sonde.git_commit','host.name','host.cpu_model','host.cpu_count','host.memory_bytes','host.kernel','session.started','session.ended']
missing=[k for k in need if not d['provenance'].get(k)]
assert not missing, missing
assert len(d['provenance']['recipe.sha256'])==64" <<<"$rep"
check "components exited: server stopped, clients exit 0" json "
for t in d['trials']:
    c={x['name']: x for x in t['components']}
    assert c['pgbench']['exit_code']==0, c['pgbench']" <<<"$rep"
check "summary table printed" contains "$out" "tps"
check "no process left" no_procs_left "$id"
finish
