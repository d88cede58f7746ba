#!/usr/bin/env bash
# The http client driver against sonde-sim: closed and open loop, histograms and the
# per-second series in the report, a refused connection, cancellation, bad options.
. "$(dirname "$0")/lib.sh"
R=tests/recipes/http
json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
metric() { # report-json trial-index name
  json "print(next(m['value'] for m in d['trials'][$2]['metrics'] if m['name']=='$3'))" <<<"$1"
}

# 1. Closed loop against a 1 ms delay.
"$SONDE" -q run $R/closed.yaml >/dev/null 2>&1; rc=$?
check "closed.yaml exits 0 ($rc)" test "$rc" -eq 0
id=$(latest_id)
rep=$("$SONDE" report "$id" --format json)
check "requests > 0 ($(metric "$rep" 0 requests))" json "
m={x['name']:x['value'] for x in d['trials'][0]['metrics']}; assert m['requests']>0 and m['ok']==m['requests']" <<<"$rep"
check "no errors" json "
m={x['name']:x['value'] for x in d['trials'][0]['metrics']}; assert m['errors']==0" <<<"$rep"
p50=$(metric "$rep" 0 latency_p50)
# Never below the server's 1 ms; the upper bound is loose because meson runs tests side
# by side on a 2-core CI machine (a run there saw 2.25 ms). Tight accuracy bounds live
# in inference.sh, where delays of 10-100 ms dwarf scheduler noise.
check "latency p50 ~ 1 ms ($p50 ms)" python3 -c "assert 1.0 <= $p50 <= 5.0"
check "throughput in req/s" json "
assert any(m['name']=='throughput' and m['unit']=='req/s' and m['value']>0 for m in d['trials'][0]['metrics'])" <<<"$rep"
check "per-second series: requests, errors, p50, p99 with >= 3 points" json "
s={x['name']:x for x in d['trials'][0]['series'] if x['component']=='load'}
for n in ('requests','errors','latency_p50','latency_p99'): assert len(s[n]['points'])>=3, (n, s.get(n))
assert s['requests']['unit']=='req/s' and s['latency_p99']['unit']=='ms'" <<<"$rep"
check "latency histogram with percentiles in ms" json "
h={x['name']:x for x in d['trials'][0]['histograms']}['latency']
assert h['unit']=='ms' and h['count']>1000, h
p=h['percentiles']; assert set(p)=={'50','90','99'} | ({'99.9'} if h['count'] >= 10000 else set()), p
assert 1.0 <= p['50'] <= 5.0 and p['50'] <= p['99'] <= h['max'], p" <<<"$rep"
check "service_time histogram, no issue_delay in closed loop" json "
n={x['name'] for x in d['trials'][0]['histograms']}; assert n=={'latency','service_time'}, n" <<<"$rep"
txt=$("$SONDE" report "$id")
check "text report shows the histogram table" contains "$txt" "P99.9"
check "no process left after closed.yaml" no_procs_left "$id"

# 2. Open loop by target service name, POST with a body, bounded by a request count.
"$SONDE" -q run $R/target.yaml >/dev/null 2>&1; rc=$?
check "target.yaml exits 0 ($rc)" test "$rc" -eq 0
rep=$("$SONDE" report "$(latest_id)" --format json)
check "exactly 300 requests, all ok" json "
m={x['name']:x['value'] for x in d['trials'][0]['metrics']}
assert m['requests']==300 and m['ok']==300 and m['status_2xx']==300, m" <<<"$rep"
check "open loop: achieved_rate and an issue_delay histogram" json "
m={x['name']:x['value'] for x in d['trials'][0]['metrics']}; assert 300 < m['achieved_rate'] < 700, m
assert 'issue_delay' in {x['name'] for x in d['trials'][0]['histograms']}" <<<"$rep"

# 3. Nothing listens: the client fails, naming connect errors.
"$SONDE" -q run $R/refused.yaml >/dev/null 2>&1; rc=$?
id=$(latest_id)
check "refused.yaml exits 1 ($rc)" test "$rc" -eq 1
reason=$(session_field "$id" reason)
check "reason names connect errors: $reason" contains "$reason" "failed with connect errors"
rep=$("$SONDE" report "$id" --format json)
check "errors_connect counted" json "
m={x['name']:x['value'] for x in d['trials'][0]['metrics']}
assert m['errors_connect']>0 and m['errors']==m['errors_connect'] and m['ok']==0, m" <<<"$rep"

# 4. SIGINT mid-run: prompt, cancelled, nothing left.
"$SONDE" -q run $R/long.yaml >/dev/null 2>&1 &
pid=$!
for ((i = 0; i < 100; i++)); do # the client runs in sonde itself: wait for the trial
  [ "$(session_field latest state 2>/dev/null)" = running ] && break
  sleep 0.1
done
sleep 2
t0=$(date +%s)
kill -INT $pid
wait $pid; rc=$?
id=$(latest_id)
check "cancelled run exits 130 ($rc)" test "$rc" -eq 130
check "it stopped within 10 s ($(($(date +%s) - t0)) s)" test $(($(date +%s) - t0)) -lt 10
check "session state cancelled" test "$(session_field "$id" state)" = cancelled
check "no process left after cancel" no_procs_left "$id"

# 5. Bad options are validation errors (exit 2) with precise messages.
out=$("$SONDE" recipe validate $R/open-no-rate.yaml 2>&1); rc=$?
check "bad options exit 2 ($rc)" test "$rc" -eq 2
check "open without rate" contains "$out" "with.rate: mode open needs 'rate'"
check "bad URL scheme" contains "$out" "with.url: expected http://host\[:port\]/path"
check "connections < threads" contains "$out" "with.connections: must be at least 'threads'"
check "no bound" contains "$out" "give 'duration' or 'requests'"
out=$("$SONDE" run $R/open-no-rate.yaml 2>&1); rc=$?
check "run refuses it too (exit 2, $rc)" test "$rc" -eq 2
check "shipped recipes validate" "$SONDE" recipe validate recipes/benchmarks/http-sim.yaml \
  recipes/services/sonde-sim.yaml recipes/clients/http.yaml

# 6. Per-request templates, as a real HTTP server (python3's http.server) received them.
export SONDE_TEST_DIR=$PWD/tests/integration
"$SONDE" -q run $R/template.yaml >/dev/null 2>&1; rc=$?
check "template.yaml exits 0 ($rc)" test "$rc" -eq 0
id=$(latest_id)
cap="$WS/sessions/$id/trial-001/capture/work/requests.jsonl"
check "the server saw every request with the template filled in" python3 - "$cap" <<'PY'
import json, re, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) >= 400, len(recs)
uuid = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')
ns, rs, ids = [], set(), set()
for r in recs:
    m = re.fullmatch(r'/item/(\d+)\?r=(-?\d+)', r['path'])
    assert m, r['path']
    b = json.loads(r['body'])  # Content-Length matched the rendered body
    assert int(r['headers']['Content-Length']) == len(r['body'].encode()), r
    assert b['n'] == int(m.group(1)), r        # one counter value per request
    assert b['lit'] == '{{x}}', b
    assert uuid.match(b['id']) and uuid.match(r['headers']['X-Request-Id']), r
    ns.append(b['n']); rs.add(int(m.group(2))); ids.add(b['id'])
assert len(set(ns)) == len(ns), 'counter values repeat'
for k in (0, 1):  # thread k of 2 numbers its requests k, k+2, k+4, ... with no gap
    mine = sorted(n for n in ns if n % 2 == k)
    assert mine == list(range(k, 2 * len(mine), 2)), (k, mine[:10])
assert rs <= set(range(-5, 6)) and len(rs) >= 8, rs
assert len(ids) == len(recs), 'uuids repeat'
PY
# 7. Live status: redrawn in place on a terminal (script(1) gives one), a plain
# line with -v when stderr is not a terminal, nothing with -q.
out=$(script -qec "'$SONDE' run $R/closed.yaml" /dev/null 2>&1); rc=$?
check "on a terminal: exit 0 ($rc)" test "$rc" -eq 0
check "on a terminal: a status line with rate, p99, errors" grep -qE \
  $'\r\033\\[Ksonde: load: [0-9.]+/4 s, [0-9]+ req/s, p99 [0-9.]+ ms, [0-9]+ requests, 0 errors' <<<"$out"
check "on a terminal: the status line is erased before the next message" grep -qE \
  $'\r\033\\[Ksonde: trial 1: client load finished' <<<"$out"
out=$("$SONDE" -v run $R/closed.yaml 2>&1 >/dev/null)
check "-v without a terminal: a plain status line" grep -qE \
  '^sonde: load: [0-9.]+/4 s, (warming up|[0-9]+ req/s)' <<<"$out"
out=$("$SONDE" -q run $R/closed.yaml 2>&1 >/dev/null)
check "-q: no status line" test -z "$out"

# 8. 10,000 concurrent connections from one sonde process, with sonde's memory
# growth per connection bounded (its RSS as the process monitor sampled it,
# against the same run with 10 connections).
c10k() { # connections -> prints "connects requests errors sonde_rss_max"
  "$SONDE" -q run $R/c10k.yaml --set clients.load.with.connections="$1" >/dev/null 2>&1
  "$SONDE" report "$(latest_id)" --format json | python3 -c '
import json, sys
m = {(x["labels"] or {}).get("component", x["component"]) + "." + x["name"]: x["value"]
     for x in json.load(sys.stdin)["trials"][0]["metrics"]}
print(int(m.get("load.connects", -1)), int(m.get("load.requests", -1)),
      int(m.get("load.errors", -1)), int(m.get("sonde.rss_bytes_max", -1)))'
}
read -r conn10 req10 err10 rss10 < <(c10k 10)
read -r conn req err rss < <(c10k 10000)
check "c10k: all 10000 connections established ($conn)" test "$conn" -eq 10000
check "c10k: no errors ($err)" test "$err" -eq 0
check "c10k: each user served about once a second ($req requests in 3 s)" test "$req" -ge 25000
check "c10k: 10 connections ran too ($conn10, $req10 requests, $err10 errors)" \
  test "$conn10" -eq 10 -a "$err10" -eq 0
growth=$(( (rss - rss10) / 9990 ))
check "c10k: sonde's RSS $((rss >> 20)) MiB at 10000 connections, $((rss10 >> 20)) MiB at 10: \
$growth B per connection (bound: 2 KiB)" test "$rss10" -gt 0 -a "$growth" -lt 2048
finish
