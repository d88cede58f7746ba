#!/usr/bin/env bash
# The slurm backend's job scripts: golden dry runs (--dry-run), the checks
# against a site profile, and the generated scripts submitted to a real
# single-machine Slurm (scripts/slurm.sh) where they must run as written.
#   SONDE_UPDATE_GOLDEN=1 rewrites the tests/recipes/slurm/*.expected files.
. "$(dirname "$0")/lib.sh"
R=tests/recipes/slurm
export SONDE_SITES=$PWD/sites

dry() { # site recipe -> the dry run, with this checkout's path made relative
  "$SONDE" run --backend slurm --site "$1" --dry-run --workspace /srv/sonde "$2" |
    sed "s|$PWD/||g"
}

# 1. Golden dry runs: the quickstart and http-sim benchmarks as they are, and a
# containerised GPU service with a client fanned out over 2 nodes x 4 tasks.
for c in "generic recipes/benchmarks/quickstart.yaml quickstart" \
         "meluxina recipes/benchmarks/http-sim.yaml http-sim" \
         "meluxina $R/gpu-fanout.yaml gpu-fanout"; do
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
out=$("$SONDE" run --backend slurm --site nowhere --dry-run $R/real.yaml 2>&1); rc=$?
check "unknown site: exit 2 ($rc)" test "$rc" -eq 2
check "unknown site is named" contains "$out" "no site profile 'nowhere'"
out=$("$SONDE" run --dry-run $R/real.yaml 2>&1); rc=$?
check "--dry-run on the local backend: exit 2 ($rc)" test "$rc" -eq 2
check "... says it is for batch backends" contains "$out" "use it with --backend slurm"
out=$("$SONDE" run --backend slurm $R/real.yaml 2>&1); rc=$?
check "submitting is not there yet: exit 2 ($rc), said plainly" \
  test "$rc" -eq 2 -a -n "$(grep -- 'does not submit jobs yet' <<<"$out")"

# 3. A real Slurm runs the generated scripts as written: the service job keeps
# running, the 2-task client job ends COMPLETED with each task's output in its
# own file and the prepare step done once.
SL=$WS/slurm
trap 'scripts/slurm.sh down "$SL" >/dev/null 2>&1' EXIT # also when a check above aborts
if scripts/slurm.sh up "$SL" >"$WS/slurm-up.log" 2>&1; then
  ok "a single-machine Slurm is up"
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
  check "task 0 wrote its own file" grep -qx "it's a test: task 0 of 2 on .*" "$d/hello/task-0.stdout"
  check "task 1 wrote its own file" grep -qx "it's a test: task 1 of 2 on .*" "$d/hello/task-1.stdout"
  check "the prepare step ran once, in the work directory" grep -qx prepared "$d/hello/work/prepared"
  scancel "$svc"
  for ((i = 0; i < 50; i++)); do [ -z "$(squeue -h -j "$svc,$cli" 2>/dev/null)" ] && break; sleep 0.2; done
  check "after scancel no job of the test is queued" test -z "$(squeue -h -j "$svc,$cli" 2>/dev/null)"
  check "service job CANCELLED ($(state "$svc"))" test "$(state "$svc")" = CANCELLED
  scripts/slurm.sh down "$SL" >>"$WS/slurm-up.log" 2>&1
  check "the Slurm daemons are stopped" test "$(scripts/slurm.sh status "$SL" >/dev/null 2>&1; echo $?)" -ne 0
else
  bad "a single-machine Slurm is up (log: $(tail -5 "$WS/slurm-up.log"))"
fi
finish
