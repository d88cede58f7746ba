#!/usr/bin/env bash
# tools.sh SONDE — the wrapped file-system tools (recipes/clients/fio.yaml,
# ior.yaml, mdtest.yaml): their outputs become sonde metrics. IOR and mdtest
# are not in Debian: their parsers read real outputs kept in tests/data/tools/
# (IOR 4.1.0+dev and mdtest built from source beside the project, run with
# OpenMPI on this machine); fio runs for real.
. "$(dirname "$0")/lib.sh"

DATA=$PWD/tests/data/tools
# parse NAME ENTRY FILE: the catalog entry ENTRY with its command replaced by
# `cat FILE`; its metrics in $WS/NAME.json
parse() {
  cat >"$WS/$1.yaml" <<EOF
kind: benchmark
name: tools-$1
clients:
  tool:
    use: $2
    with: {command: [cat, "$DATA/$3"]}
EOF
  "$SONDE" -q run "$WS/$1.yaml" >"$WS/$1.out" 2>&1
  local rc=$?
  "$SONDE" report latest --format json >"$WS/$1.json"
  return $rc
}
# expect NAME 'metric=value ...': every value exactly, with its unit when given as metric=value/unit
expect() {
  python3 - "$WS/$1.json" "$2" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))['trials'][0]
m = {x['name']: x for x in t['metrics']}
bad = []
for item in sys.argv[2].split():
    name, want = item.split('=')
    want, _, unit = want.partition('/')
    got = m.get(name)
    if not got or abs(got['value'] - float(want)) > 1e-9 * max(1, abs(float(want))) or (unit and got['unit'] != unit.replace('_', '/')):
        bad.append((name, want, unit, got and (got['value'], got['unit'])))
if bad or t['state'] != 'done':
    print(t['state'], t.get('reason'), bad)
    sys.exit(1)
PY
}

parse ior1 ior ior-file-per-process.txt
rc=$?
check "IOR, file per process: exit 0 ($rc)" test "$rc" -eq 0
check "... write and read bandwidth, IOPS, time and tasks from the summary" expect ior1 \
  "write_bw_max=833.40/MiB_s write_bw_mean=833.40 write_iops_max=833.40/op_s write_time_mean=0.03840/s
   read_bw_max=20074.44 read_bw_mean=20074.44 read_iops_max=20074.44 read_time_mean=0.00159 tasks=2"
parse ior2 ior ior-shared-2-reps.txt
check "IOR, one shared file, 2 repetitions: max and mean differ" expect ior2 \
  "write_bw_max=3033.17 write_bw_mean=1709.10 read_bw_max=23205.00 read_bw_mean=20611.61
   write_time_mean=0.04683 tasks=2"

parse md mdtest mdtest.txt
check "mdtest: every phase's rate from the SUMMARY table" expect md \
  "file_create_per_s=61576.804/op_s file_stat_per_s=663550.704 file_read_per_s=243840.707
   file_remove_per_s=125800.186 dir_create_per_s=31630.536 dir_stat_per_s=731479.595
   dir_remove_per_s=9578.180 tree_create_per_s=27060.026 tree_remove_per_s=414.416 tasks=2"

parse fio1 fio fio-randrw-2-jobs.json
check "fio's JSON (2 jobs, group reporting): bandwidth in MiB/s, IOPS, latency in ms" expect fio1 \
  "read_iops=21557.721139/op_s read_bw=84.20984745025635/MiB_s read_ios=43137
   write_iops=9270.364818 write_clat_p99=0.061696/ms errors=0"

# The IOR entry on an output that is not IOR's: nothing found, the client fails with the
# reason, nothing crashes.
parse notior ior mdtest.txt
rc=$?
check "IOR's parser on mdtest's output: no metric, exit 0 (all optional) ($rc)" test "$rc" -eq 0
check "... none of its metrics" python3 -c "
import json
t = json.load(open('$WS/notior.json'))['trials'][0]
assert not [x for x in t['metrics'] if x['name'].startswith(('write_', 'read_'))], t['metrics']"
parse notmd mdtest ior-file-per-process.txt
rc=$?
check "mdtest's parser on IOR's output: exit 1 ($rc)" test "$rc" -eq 1
check "... the reason names the missing metric" python3 -c "
import json
r = json.load(open('$WS/notmd.json'))['trials'][0]['reason']
assert 'file_create_per_s' in r, r"

# fio for real, on this machine.
mkdir -p "$WS/fio"
cat >"$WS/fio.yaml" <<EOF
kind: benchmark
name: tools-fio
clients:
  fio:
    use: fio
    with:
      command: [fio, --output-format=json, --group_reporting, --name=rr, --directory=$WS/fio,
                --size=16M, --bs=4k, --rw=randread, --numjobs=2, --runtime=2, --time_based]
EOF
"$SONDE" -q run "$WS/fio.yaml" >"$WS/fio.out" 2>&1
rc=$?
"$SONDE" report latest --format json >"$WS/fio.json"
check "a real fio run: exit 0 ($rc)" test "$rc" -eq 0
check "... read IOPS, bandwidth and latency from its JSON" python3 -c "
import json
m = {x['name']: x['value'] for x in json.load(open('$WS/fio.json'))['trials'][0]['metrics']}
assert m['read_iops'] > 100 and m['read_ios'] > 100 and m['read_bw'] > 0, m
assert abs(m['read_bw'] * 1048576 / 4096 - m['read_iops']) < 0.01 * m['read_iops'], m
assert m['read_clat_p50'] > 0 and m['write_ios'] == 0 and m['errors'] == 0, m"
finish
