#!/usr/bin/env bash
# s3.sh SONDE — the s3 client against a real s3rver (npm, started here): every operation
# in a weighted mix with integrity checks, ranged GETs, a tampered object caught, a bucket
# that does not exist, bucket creation, missing credentials, bad options at validate time,
# then the s3-mixed recipe with its s3rver service and nothing left behind. s3rver does
# not check signatures: the signing is tested against AWS's vectors (test_sigv4).
. "$(dirname "$0")/lib.sh"

BIN=$PWD/tests/s3rver/node_modules/.bin
if [ ! -x "$BIN/s3rver" ]; then
  (cd tests/s3rver && npm ci --no-audit --no-fund >/dev/null 2>&1) || { bad "npm ci in tests/s3rver"; finish; exit 1; }
fi
export SONDE_S3RVER_BIN=$BIN AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
DATA=$WS/s3data
mkdir -p "$DATA"
PORT=$(free_port)
NODE_OPTIONS=--openssl-legacy-provider "$BIN/s3rver" -d "$DATA" -a 127.0.0.1 -p "$PORT" --silent --service-endpoint localhost --configure-bucket bench >"$WS/s3rver.log" 2>&1 &
S3PID=$!
trap 'kill $S3PID 2>/dev/null' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done

run() { RUN_WITH=("url: http://127.0.0.1:$PORT"); run_client s3 load "$@"; } # NAME, then lines of with:

# 1. Every operation, mixed by weight, GETs checked byte by byte.
run mix "bucket: bench" "objects: 40" "dirs: 4" 'size: "4KiB:50%,64KiB:40%,1MiB:10%"' \
  "mix: {get: 45, put: 15, delete: 10, stat: 25, list: 5}" "verify: true" "connections: 4" "duration: 3s"
check "mix exits 0" test $? -eq 0
# s3rver's LIST reads each object's metadata file while PUTs write them: now and then it
# answers 500 ("Unexpected end of JSON input" in its log). That is the only error allowed.
check "mix: no errors but s3rver's LIST race ($(val mix errors), list $(val mix list_errors)), every operation ran" python3 -c "
import json
d = json.load(open('$WS/mix.json'))['trials'][0]
m = {x['name']: x['value'] for x in d['metrics']}
assert m['errors'] == m.get('errors_server', 0) == m['list_errors'] <= 0.2 * m['list_ops'], m
assert all(m[op + '_errors'] == 0 for op in ('get', 'put', 'stat', 'delete')), m
for op in ('get', 'put', 'stat', 'delete', 'list'):
    assert m[op + '_ops'] > 0 and m[op + '_latency_p50'] > 0, op
    assert m[op + '_ttfb_p50'] <= m[op + '_latency_p50'], op
assert m['get_bw'] > 0 and m['put_bw'] > 0
n = sum(m[op + '_ops'] for op in ('get', 'put', 'stat', 'delete', 'list'))
assert n == m['ok'] == m['requests'] - m['errors'], (n, m['ok'])
assert 0.35 < m['get_ops'] / n < 0.55 and 0.15 < m['stat_ops'] / n < 0.35, m
h = {x['name'] for x in d['histograms']}
assert {'get_latency', 'get_ttfb', 'put_latency', 'list_latency'} <= h, h"
n=$(find "$DATA/bench/sonde" -path '*/d00*' -name '*._S3rver_object' | wc -l)
check "the prefill PUT the 40 objects over 4 prefixes ($n)" test "$n" = 40
sizes=$(find "$DATA/bench/sonde" -path '*/d00*' -name '*._S3rver_object' -printf '%s\n' | sort -nu | tr '\n' ' ')
check "sizes follow the table: objects of 4 KiB, 64 KiB and 1 MiB only ($sizes)" test "$sizes" = "4096 65536 1048576 "

# 2. Ranged GETs: 1000-byte ranges, checked.
run range "bucket: bench" "objects: 40" "dirs: 4" 'size: "4KiB:50%,64KiB:40%,1MiB:10%"' "prefill: false" \
  "range: 1000B" "verify: true" "connections: 2" "requests: 200"
check "ranged GETs: 200, no errors, 1000 bytes each" py "$(val range get_ops) == 200 and $(val range errors) == 0 and $(val range get_bytes) == 200000"

# 2a. Virtual-host addressing: Host bench.s3.localhost (s3rver's service endpoint here is
# localhost), the connection made to 127.0.0.1 (connect_to), no path-style bucket.
RUN_WITH=("url: http://s3.localhost:$PORT" "connect_to: 127.0.0.1")
run_client s3 load vhost "bucket: bench" "addressing: virtual" "objects: 40" "dirs: 4" \
  'size: "4KiB:50%,64KiB:40%,1MiB:10%"' "prefill: false" "mix: {get: 3, put: 1, list: 1}" \
  "verify: true" "connections: 2" "requests: 200"
# (s3rver's LIST race with concurrent PUTs, as in 1, is the only error allowed)
check "virtual-host addressing: 200 operations, no errors but s3rver's LIST race ($(val vhost errors), list $(val vhost list_errors))" \
  py "$(val vhost ok) + $(val vhost errors) == 200 and $(val vhost errors) == $(val vhost list_errors) <= 0.2 * $(val vhost list_ops) and $(val vhost get_ops) > 0 and $(val vhost list_ops) > 0"

# 2b. A multipart upload: 64 MiB in 8 parts of 8 MiB, 4 in flight, completed, read back.
run mp "bucket: bench" "objects: 0" "prefill: false" "mix: {put: 1}" \
  "multipart: {size: 64MiB, part_size: 8MiB, parallel: 4}" "verify: true" "connections: 1" "requests: 5"
check "multipart: exit 0" test $? -eq 0
check "multipart: one upload of 8 parts, timed ($(val mp multipart_bw) MiB/s)" python3 -c "
import json
d = json.load(open('$WS/mp.json'))['trials'][0]
m = {x['name']: x['value'] for x in d['metrics']}
assert m['multipart_uploads'] == 1 and m['multipart_time'] > 0 and m['multipart_bw'] > 0, m
h = {x['name']: x for x in d['histograms']}
assert h['multipart_part_latency']['count'] == 8, h['multipart_part_latency']"
check "multipart: the object is 64 MiB on the server" test \
  "$(stat -c %s "$DATA"/bench/sonde/mp/0/0._S3rver_object)" = 67108864
run mpnobucket "bucket: no-such-bucket" "objects: 0" "prefill: false" "mix: {put: 1}" \
  "multipart: {size: 16MiB}" "requests: 1"
check "multipart to a missing bucket: exit 1, the step named ($(reason mpnobucket))" \
  contains "$(reason mpnobucket)" "multipart upload of sonde/mp/0/0: creating it failed: HTTP 404 NoSuchBucket: The specified bucket does not exist"

# 3. A tampered object: the integrity check fails, naming the class.
f=$(find "$DATA/bench/sonde/d000" -name 'o00000000._S3rver_object')
printf 'X' | dd of="$f" bs=1 seek=100 conv=notrunc status=none
run tamper "bucket: bench" "objects: 1" 'size: "4KiB:50%,64KiB:40%,1MiB:10%"' "prefill: false" \
  "verify: true" "connections: 1" "requests: 20"
check "tampered object: exit 1" test $? -eq 1
check "it names the integrity errors ($(reason tamper))" contains "$(reason tamper)" "20 of 20 failed with integrity errors"
run tamper_noverify "bucket: bench" "objects: 1" 'size: "4KiB:50%,64KiB:40%,1MiB:10%"' "prefill: false" \
  "connections: 1" "requests: 20"
check "without verify the same GETs succeed" py "$(val tamper_noverify ok) == 20"

# 4. A bucket that does not exist, then one created by the client.
run nobucket "bucket: missing-bucket" "objects: 5" "requests: 10"
check "missing bucket: exit 1" test $? -eq 1
check "it says so ($(reason nobucket))" contains "$(reason nobucket)" "prefill: 5 of 5 PUTs failed (mostly not_found): does the bucket exist? (create_bucket: true)"
run create "bucket: made-by-sonde" "create_bucket: true" "objects: 5" "requests: 10"
check "create_bucket: the run works" py "$(val create ok) == 10"
check "... and the bucket exists" test -d "$DATA/made-by-sonde"

# 4b. Cleanup: every key listed page by page (1000 per page), deleted, then the bucket
# and a last pass that finds none (a DELETE racing a PUT cut off at the end of the load,
# or a key a listing missed, is deleted by a pass in between).
run sweep "bucket: swept" "create_bucket: true" "objects: 1200" "connections: 8" \
  "mix: {get: 2, put: 1}" "requests: 300" "cleanup: true" "delete_bucket: true"
check "cleanup: exit 0" test $? -eq 0
# The 1200 objects and the PUT keys go, whatever their number: PUTs cut off when the 300th
# answer ends the run may land during the cleanup, and s3rver's LIST skips an object whose
# metadata file is still being written (seen: 1-2 fewer keys deleted than PUTs counted,
# the last pass empty and the bucket deleted all the same).
check "cleanup: 2 pages + a pass that finds nothing; the objects and about every PUT deleted ($(val sweep cleanup_list_pages) pages, $(val sweep cleanup_deleted) keys, $(val sweep put_ops) PUTs)" \
  py "3 <= $(val sweep cleanup_list_pages) <= 6 and -4 <= $(val sweep cleanup_deleted) - 1200 - $(val sweep put_ops) <= 16"
check "... and the bucket is gone" test ! -e "$DATA/swept"

# 4c. Retries: sonde-sim (the calibrated reference server) answers 30% of the requests
# 503 SlowDown; without retries ~30% fail, with 5 retries almost none (0.3^6), and the
# retries are counted: ~30% of the 2000 requests sent (the bound counts every send; a
# send still running when the 2000th answer ends the run is not counted: +-4).
SIMPORT=$(free_port)
sonde-sim --port "$SIMPORT" --error-rate 0.3 --error-kind status:503 >"$WS/sim.log" 2>&1 &
SIMPID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$SIMPORT/" && break; sleep 0.1; done
RUN_WITH=("url: http://127.0.0.1:$SIMPORT" "bucket: sim" "objects: 10" "prefill: false" "connections: 4")
run_client s3 load noretry "requests: 2000"
check "no retries: ~30% throttled ($(val noretry errors_slow_down) of $(val noretry requests))" \
  py "0.25 <= $(val noretry errors_slow_down) / $(val noretry requests) <= 0.35"
run_client s3 load retry "requests: 2000" "retries: 5"
check "5 retries: almost all succeed ($(val retry ok) ok, $(val retry errors) errors), retries counted ($(val retry retries))" \
  py "$(val retry errors) <= 10 and 450 <= $(val retry retries) <= 750 and abs($(val retry ok) + $(val retry errors) + $(val retry retries) - 2000) <= 4"
kill "$SIMPID" 2>/dev/null; wait "$SIMPID" 2>/dev/null

# 5. Credentials and options.
( unset AWS_SECRET_ACCESS_KEY; run nocreds "bucket: bench" "objects: 5" "requests: 10" )
check "no secret key: exit 1, named ($(reason nocreds))" contains "$(reason nocreds)" "the environment lacks AWS_SECRET_ACCESS_KEY"
printf '[other]\naws_access_key_id = A\naws_secret_access_key = B\n[bench]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$WS/creds"
run credsfile "bucket: bench" "credentials_file: $WS/creds" "profile: bench" "objects: 5" "requests: 10"
check "credentials from a file's profile" py "$(val credsfile ok) == 10"
check "the secret is in no file of the sessions" bash -c "! grep -rq S3RVER '$WS/sessions' 2>/dev/null"
printf 'kind: benchmark\nname: bad\nclients:\n  load:\n    driver: s3\n    with:\n      url: http://127.0.0.1:1/x\n      bucket: Bad_Bucket\n      size: "4KiB:50%%,1MiB:40%%"\n      mix: {get: 1, copy: 2}\n      duration: 1s\n' >"$WS/bad.yaml"
out=$("$SONDE" recipe validate "$WS/bad.yaml" 2>&1); rc=$?
check "validate: bad options exit 2 ($rc)" test "$rc" -eq 2
check "... a table not adding up to 100%" contains "$out" "bad.yaml:9:13: error: clients.load.with.size:"
check "... an unknown operation" contains "$out" "unknown operation 'copy'"
check "... a bad bucket name" contains "$out" "'Bad_Bucket' is not a bucket name"
check "... a URL with a path" contains "$out" "expected http\[s\]://host\[:port\] (no path)"

# 6. The recipe: object size x concurrency against its own s3rver service; nothing left.
"$SONDE" -q run recipes/benchmarks/s3-mixed.yaml --set 'matrix.size=[4KiB]' --set 'matrix.connections=[2]' \
  --set clients.load.with.duration=2s >"$WS/recipe.out" 2>&1
check "s3-mixed.yaml runs (one trial)" test $? -eq 0
id=$(latest_id)
save_report recipe
check "its report: per-operation throughput and latency percentiles" py "$(val recipe get_per_s) > 0 and $(val recipe put_latency_p50) > 0 and $(val recipe get_latency_p90) > 0"
check "no process left after s3-mixed.yaml" no_procs_left "$id"
kill $S3PID 2>/dev/null
trap - EXIT
finish
