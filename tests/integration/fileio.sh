#!/usr/bin/env bash
# fileio.sh SONDE — the fileio client on this machine's file systems: data
# phases (sequential, random, mixed; psync and io_uring; file-per-task and
# shared layouts), the metadata workload, verify catching a flipped byte at
# its offset, and bad conditions (a missing path, no permission, a full file
# system, O_DIRECT refused, a file deleted mid-run): a failed trial with the
# reason, results kept, no file and no process left behind.
. "$(dirname "$0")/lib.sh"

D=$WS/data # on the workspace's file system (/var/tmp: a real disk)
mkdir -p "$D"
MNT=$WS/small # a 4 MiB tmpfs: a full file system, and one that refuses O_DIRECT

run() { run_client fileio io "$@"; } # NAME, then the lines of with:
no_files() { [ -z "$(find "$1" -name 'sonde-fileio.*' -o -name 'sonde-md.*' 2>/dev/null)" ]; }

# 1. A checkpoint: 2 tasks write 8 MiB each (1 MiB blocks, fsync at the end), then read it back.
run ckpt "path: $D" "phases: [write, read]" "bs: 1MiB" "size: 8MiB" "tasks: 2" "end_fsync: true"
rc=$?
check "write then read: exit 0 ($rc)" test "$rc" -eq 0
check "... every byte written and read ($(val ckpt write_bytes), $(val ckpt read_bytes))" \
  py "$(val ckpt write_bytes) == 16 << 20 and $(val ckpt read_bytes) == 16 << 20"
check "... 16 writes, 16 reads, 2 fsyncs ($(val ckpt write_ops), $(val ckpt read_ops), $(val ckpt sync_ops))" \
  py "$(val ckpt write_ops) == 16 and $(val ckpt read_ops) == 16 and $(val ckpt sync_ops) == 2"
check "... bandwidth, IOPS, time and latency percentiles per operation" python3 -c "
import json
t = json.load(open('$WS/ckpt.json'))['trials'][0]
m = {x['name']: x for x in t['metrics']}
for op in ('read', 'write'):
    for k in ('bw', 'iops', 'time', 'bw_first_done', 'latency_mean', 'latency_max'):
        assert op + '_' + k in m, (op, k)
    assert m[op + '_bw']['unit'] == 'MiB/s' and m[op + '_bw']['value'] > 0
    assert m[op + '_bw_first_done']['value'] >= m[op + '_bw']['value'] * 0.5
h = {x['name']: x for x in t['histograms']}
assert h['read_latency']['count'] == 16 and h['write_latency']['count'] == 16, h.keys()
assert h['sync_latency']['count'] == 2
assert any(s['name'] == 'write_bw' and s['unit'] == 'MiB/s' for s in t['series'])"
check "... the file system in provenance" python3 -c "
import json
p = json.load(open('$WS/ckpt.json'))['provenance']
v = p['fs.trial-001.io']
assert v.split()[0] in ('ext4', 'xfs', 'btrfs', 'tmpfs', 'overlay'), v
assert ' free of ' in v, v"
check "... no file left" no_files "$D"

# 1b. prepare steps run first (here: the directory the files go in).
run prep "path: $D/made" "prepare: [[mkdir, -p, $D/made]]" "rw: write" "size: 1MiB"
rc=$?
check "prepare creates the path first: exit 0 ($rc)" test "$rc" -eq 0 -a -d "$D/made"
rmdir "$D/made"

# 2. Random reads, every block once per epoch: 2 tasks x 256 blocks x 3 epochs.
run rand "path: $D" "rw: randread" "bs: 4KiB" "size: 1MiB" "tasks: 2" "epochs: 3"
check "randread, 3 epochs: 1536 reads ($(val rand read_ops))" py "$(val rand read_ops) == 1536"
check "... no errors" py "$(val rand errors) == 0"

# 3. A shared file, segmented and strided, 4 tasks: the file written exactly once.
for l in segmented strided; do
  run "$l" "path: $D" "rw: write" "layout: $l" "bs: 64KiB" "size: 4MiB" "tasks: 4"
  check "shared $l file, 4 tasks: 4 MiB written in 64 writes ($(val "$l" write_bytes))" \
    py "$(val "$l" write_bytes) == 4 << 20 and $(val "$l" write_ops) == 64"
done

# 4. io_uring, 8 in flight, and a 70/30 mix.
run uring "path: $D" "rw: randrw" "rwmix_read: 70" "engine: io_uring" "iodepth: 8" "bs: 4KiB" \
  "size: 4MiB" "epochs: 2"
rc=$?
check "io_uring randrw 70%: exit 0 ($rc)" test "$rc" -eq 0
check "... 2048 operations, about 70% reads ($(val uring read_ops) reads)" \
  py "$(val uring read_ops) + $(val uring write_ops) == 2048 and 0.64 < $(val uring read_ops) / 2048 < 0.76"

# 5. Direct I/O where the file system allows it (the workspace's disk).
run direct "path: $D" "rw: read" "bs: 64KiB" "size: 2MiB" "direct: true"
check "direct reads: 32 ($(val direct read_ops))" py "$(val direct read_ops) == 32"

# 6. Metadata: 2 tasks x 200 files of 4 KiB: create, stat, open, read, delete.
run md "path: $D" "workload: metadata" "tasks: 2" "md_files: 200" "md_size: 4KiB"
rc=$?
check "metadata: exit 0 ($rc)" test "$rc" -eq 0
check "... 400 of each: create, stat, open, read, delete" python3 -c "
import json
t = json.load(open('$WS/md.json'))['trials'][0]
m = {x['name']: x['value'] for x in t['metrics']}
for op in ('create', 'stat', 'open', 'read', 'delete'):
    assert m[op + '_ops'] == 400, (op, m.get(op + '_ops'))
    assert m[op + ('_iops' if op == 'read' else '_per_s')] > 0, op
assert m['read_bytes'] == 400 * 4096
h = {x['name']: x for x in t['histograms']}
assert h['create_latency']['count'] == 400 and h['delete_latency']['count'] == 400"
check "... no directory left" no_files "$D"
run mdshared "path: $D" "workload: metadata" "tasks: 3" "md_files: 50" "md_dir: shared" \
  "md_phases: [create, stat]"
check "metadata in one shared directory: 150 creates, 150 stats, nothing left" \
  py "$(val mdshared create_ops) == 150 and $(val mdshared stat_ops) == 150 and '$(no_files "$D" && echo y)' == 'y'"

# 7. Verify: blocks written with headers, one byte flipped, the read-back names its block.
run vwrite "path: $D" "rw: write" "bs: 4KiB" "size: 256KiB" "verify: true" "keep_files: true"
rc=$?
check "verify write (its read-back passes): exit 0 ($rc)" test "$rc" -eq 0
f=$D/sonde-fileio.0.0
check "... the file is kept" test -s "$f"
python3 -c "
f = open('$f', 'r+b'); f.seek(41 * 4096 + 1000); b = f.read(1); f.seek(41 * 4096 + 1000)
f.write(bytes([b[0] ^ 0x10])); f.close()"
run vread "path: $D" "rw: read" "bs: 4KiB" "size: 256KiB" "verify: true"
rc=$?
r=$(reason vread)
check "a flipped byte: exit 1 ($rc)" test "$rc" -eq 1
check "... the reason names the block at offset 167936: $r" \
  contains "$r" "verify: $f, block at offset 167936: checksum mismatch"
check "... one verify error, the blocks before it read ($(val vread read_ops))" \
  py "$(val vread errors_verify) == 1 and $(val vread read_ops) >= 41"
check "... the file it did not create is left as it was" test -s "$f"
rm -f "$f"

# 8. Bad conditions.
run nopath "path: $D/none" "rw: read" "size: 1MiB"
rc=$?
check "a path that does not exist: exit 1 ($rc)" test "$rc" -eq 1
check "... named: $(reason nopath)" contains "$(reason nopath)" "option 'path': $D/none: No such file or directory"

mkdir -p "$WS/locked" "$WS/nobody"
chmod 755 "$WS/locked"
chmod 777 "$WS/nobody"
cat >"$WS/perm.yaml" <<EOF
kind: benchmark
name: fileio-perm
clients:
  io:
    driver: fileio
    with: {path: "$WS/locked", rw: write, size: 1MiB}
EOF
if id nobody >/dev/null 2>&1 && command -v runuser >/dev/null; then
  runuser -u nobody -- "$SONDE" -q --workspace "$WS/nobody" run "$WS/perm.yaml" >"$WS/perm.out" 2>&1
  rc=$?
  r=$(runuser -u nobody -- "$SONDE" --workspace "$WS/nobody" report latest --format json |
    python3 -c "import json,sys; print(json.load(sys.stdin)['trials'][0].get('reason') or '')")
  check "no permission: exit 1 ($rc)" test "$rc" -eq 1
  check "... named: $r" contains "$r" "cannot create $WS/locked/sonde-fileio.0.0: Permission denied"
else
  bad "no permission: needs the user nobody and runuser"
fi

mkdir -p "$MNT"
if mount -t tmpfs -o size=4M sonde-test "$MNT"; then
  run full "path: $MNT" "rw: write" "bs: 64KiB" "size: 8MiB"
  rc=$?
  r=$(reason full)
  check "more than is free: refused at start, exit 1 ($rc)" test "$rc" -eq 1
  check "... with the numbers: $r" contains "$r" "the files need 8.0 MiB but $MNT has 4.0 MiB free (tmpfs"
  run enospc "path: $MNT" "rw: write" "bs: 64KiB" "size: 8MiB" "space_check: false" "fallocate: false"
  rc=$?
  r=$(reason enospc)
  check "the file system fills up: exit 1 ($rc)" test "$rc" -eq 1
  check "... the reason says where: $r" contains "$r" "write of $MNT/sonde-fileio.0.0 at offset [0-9]*: No space left on device"
  check "... the writes before it are kept ($(val enospc write_ops) writes, $(val enospc errors_space) space error)" \
    py "$(val enospc write_ops) > 10 and $(val enospc errors_space) == 1"
  check "... no file left" no_files "$MNT"
  umount "$MNT"
else
  bad "cannot mount a tmpfs (needs root)"
fi
RAM=$WS/ram # ramfs refuses O_DIRECT (tmpfs takes it since Linux 6.6)
mkdir -p "$RAM"
if mount -t ramfs sonde-test "$RAM"; then
  run odirect "path: $RAM" "rw: read" "bs: 4KiB" "size: 1MiB" "direct: true"
  rc=$?
  r=$(reason odirect)
  check "O_DIRECT refused: exit 1 ($rc)" test "$rc" -eq 1
  check "... named with the file system: $r" contains "$r" "ramfs refuses O_DIRECT (direct: true) at $RAM/sonde-fileio.0.0"
  check "... no file left" no_files "$RAM"
  umount "$RAM"
else
  bad "cannot mount a ramfs (needs root)"
fi

# A file deleted while a 4 s run reads it.
{
  printf 'kind: benchmark\nname: fileio-deleted\nclients:\n  io:\n    driver: fileio\n'
  printf '    with: {path: "%s", rw: randread, bs: 4KiB, size: 4MiB, duration: 4s}\n' "$D"
} >"$WS/deleted.yaml"
"$SONDE" -q run "$WS/deleted.yaml" >"$WS/deleted.out" 2>&1 &
pid=$!
for _ in $(seq 50); do [ -e "$D/sonde-fileio.0.0" ] && break; sleep 0.1; done
sleep 1.5
rm -f "$D/sonde-fileio.0.0"
wait "$pid"
rc=$?
save_report deleted
r=$(reason deleted)
check "a file deleted mid-run: exit 1 ($rc)" test "$rc" -eq 1
check "... named: $r" contains "$r" "$D/sonde-fileio.0.0 was deleted during the run"
check "... the reads until then are kept ($(val deleted read_ops))" py "$(val deleted read_ops) > 100"
check "... no sonde process left" test -z "$(pgrep -f "sonde.*run $WS/deleted.yaml")"

# 9. Validation.
cat >"$WS/invalid.yaml" <<EOF
kind: benchmark
name: fileio-invalid
clients:
  io:
    driver: fileio
    with:
      path: /tmp
      rw: read
      phases: [write, randwrite]
      bs: 4000
      size: 10KiB
      direct: true
      iodepth: 4
      fsync: 1
      fdatasync: 1
      duration: 1s
      epochs: 2
EOF
out=$("$SONDE" recipe validate "$WS/invalid.yaml" 2>&1)
rc=$?
check "bad options: exit 2 ($rc)" test "$rc" -eq 2
check "rw and phases" contains "$out" "with.phases: give 'rw' or 'phases', not both"
check "two phases that write" contains "$out" "'randwrite' writes like an earlier phase"
check "size not whole blocks" contains "$out" "with.size: must be a whole number (1 or more) of blocks of 4000 bytes"
check "direct needs 512-byte multiples" contains "$out" "with.bs: direct I/O needs blocks of a multiple of 512 bytes"
check "psync depth" contains "$out" "with.iodepth: engine psync does one I/O at a time"
check "fsync and fdatasync" contains "$out" "give 'fsync' or 'fdatasync', not both"
check "duration and epochs" contains "$out" "give 'duration' or 'epochs', not both"
printf 'kind: benchmark\nname: x\nclients:\n  io:\n    driver: fileio\n    with: {path: /tmp, workload: metadata, md_phases: [stat, remove]}\n' >"$WS/md-invalid.yaml"
out=$("$SONDE" recipe validate "$WS/md-invalid.yaml" 2>&1)
check "metadata phases: unknown, and create missing" contains "$out" "'remove' is not one of create"
check "... create missing" contains "$out" "the phases need 'create'"

# 10. The shipped recipes run here (smaller), each trial's report with MiB/s, IOPS, latency.
shipped() { # NAME --set...
  local name=$1; shift
  "$SONDE" -q run "recipes/benchmarks/$name.yaml" "$@" >"$WS/$name.out" 2>&1
  local rc=$?
  save_report "$name"
  check "recipes/benchmarks/$name.yaml runs here ($rc)" test "$rc" -eq 0
}
shipped fs-sweep --set clients.io.with.size=8MiB --set clients.io.with.duration=1s \
  --set clients.io.with.path="$D"
check "... 12 trials, each with its pattern's bandwidth, IOPS and latency percentiles" python3 -c "
import json
d = json.load(open('$WS/fs-sweep.json'))
assert len(d['trials']) == 12, len(d['trials'])
for t in d['trials']:
    op = 'write' if 'write' in t['matrix']['rw'] else 'read'
    m = {x['name']: x['value'] for x in t['metrics'] if x['component'] == 'io'}
    assert t['state'] == 'done' and m[op + '_bw'] > 0 and m[op + '_iops'] > 0, (t['label'], m)
    assert op + '_latency_p50' in m and op + '_latency_max' in m, (t['label'], sorted(m))"
shipped dataloader --set clients.loader.with.files=200 --set clients.loader.with.path="$D"
check "... samples/s, MiB/s and read latency percentiles" python3 -c "
import json
m = {x['name']: x['value'] for x in json.load(open('$WS/dataloader.json'))['trials'][0]['metrics']}
assert m['read_ops'] == 600 and m['samples_per_s'] > 0 and m['read_bw'] > 0, m
assert m['read_latency_p90'] > 0 and m['tasks'] == 4, m"
shipped checkpoint --set clients.ckpt.with.size=16MiB --set clients.ckpt.with.path="$D"
check "... checkpoint time and bandwidth, then the read-back's" python3 -c "
import json
m = {x['name']: x['value'] for x in json.load(open('$WS/checkpoint.json'))['trials'][0]['metrics']}
assert m['write_bytes'] == 64 << 20 and m['read_bytes'] == 64 << 20, m
assert m['write_time'] > 0 and m['write_bw'] > 0 and m['read_bw'] > 0 and m['sync_ops'] == 4, m"
shipped mdtest-like --set clients.md.with.md_files=100 --set clients.md.with.path="$D"
check "... per-task and shared directory: every phase's ops/s and latency" python3 -c "
import json
d = json.load(open('$WS/mdtest-like.json'))
assert [t['matrix']['md_dir'] for t in d['trials']] == ['per-task', 'shared'], d['trials']
for t in d['trials']:
    m = {x['name']: x['value'] for x in t['metrics'] if x['component'] == 'md'}
    for op in ('create', 'stat', 'open', 'delete'):
        assert m[op + '_ops'] == 400 and m[op + '_per_s'] > 0, (op, m)
        assert m[op + '_latency_p50'] > 0, (op, sorted(m))"

check "nothing left in the data directory" no_files "$D"
finish
