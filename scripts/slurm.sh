#!/usr/bin/env bash
# A real single-machine Slurm cluster (Debian 12: Slurm 22.05, MUNGE 0.5) for
# sonde's integration tests. Everything (munge key and socket, slurm.conf,
# state, spool, logs, pid files) lives in DIR; nothing in /etc is used.
#   scripts/slurm.sh up   [DIR]   install packages if missing, start munged,
#                                 slurmctld, slurmd; wait until a job runs
#   scripts/slurm.sh down [DIR]   cancel all jobs, stop the daemons (by pid file)
#   scripts/slurm.sh env  [DIR]   print `export ...` lines: eval "$(scripts/slurm.sh env)"
#   scripts/slurm.sh status [DIR] exit 0 when the daemons are alive
# DIR defaults to /var/tmp/sonde-slurm.
# `up` on a running cluster with the same settings returns at once; with other
# settings (below) it restarts it. Each `up` starts with no jobs (slurmctld -c).
# Environment (read by `up`):
#   SONDE_SLURM_NODES=1|2   2 adds a second slurmd on this machine (node n2,
#                           NodeAddr 127.0.0.2, its own port). Both nodes'
#                           `hostname` is this host's: tell them apart with
#                           $SLURMD_NODENAME
#   SONDE_SLURM_CPUS=N      CPUs each node declares (default: nproc). The
#                           partition debug (the default) is OverSubscribe=FORCE:4
#                           (up to 4 jobs per CPU; --exclusive is overridden),
#                           partition whole gives each job its nodes to itself
#                           (OverSubscribe=EXCLUSIVE); one job may not ask for more tasks
#                           than the declared CPUs unless it passes -O
#                           (--overcommit): `-n4` on 2 CPUs needs -O, or N >= 4
#                           (more than the real count works: config_overrides)
#   SONDE_SLURM_PORT=P      slurmctld port; slurmd ports P+1, P+2 (default: the
#                           first free run from 6817)
#   SONDE_SLURM_TIMEOUT=S   how long `up` waits for the cluster (default 60)
# No accounting database: `sacct` does not work; a finished job stays in
# `scontrol show job ID` for MinJobAge=300 s, and in DIR/log/jobcomp.log.
# Time limits are whole minutes (-t 0:10 becomes 1 min) and slurmctld checks
# them every 30 s: a job past its limit ends as TIMEOUT 60-90 s after it starts.
set -euo pipefail

cmd=${1:-}
DIR=${2:-/var/tmp/sonde-slurm}
case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
DIR=${DIR%/}
CONF="$DIR/slurm.conf"
MSOCK="$DIR/munge/munge.socket.2"
HOST=$(hostname -s)

log() { echo "sonde-slurm: $*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- processes, only those this script started (pid files in DIR) ----------

# pid from FILE when it is alive, is the program NAME and its command line
# names DIR (so a recycled pid is never taken for ours).
ourpid() {
  local file=$1 name=$2 pid
  [ -s "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$DIR/" || return 1
  echo "$pid"
}

# SIGTERM, up to GRACE seconds (default 10), then SIGKILL.
stop_pid() {
  local pid=$1 what=$2 grace=${3:-10} _
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 $((grace * 10))); do
    [ -d "/proc/$pid" ] || { log "stopped $what ($pid)"; return 0; }
    # a zombie of ours counts as gone
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && { log "stopped $what ($pid)"; return 0; }
    sleep 0.1
  done
  [ "$grace" -eq 0 ] || log "$what ($pid) ignored SIGTERM for $grace s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.2
}

descendants() {
  local c
  for c in $(pgrep -P "$1" || true); do
    echo "$c"
    descendants "$c"
  done
}

node_names() {
  local n=${NODES:-1}
  [ -f "$CONF" ] && n=$(grep -c '^NodeName=' "$CONF" || true)
  echo "$HOST"
  [ "${n:-1}" -ge 2 ] && echo n2
  return 0
}

any_slurmd_alive() {
  local n
  for n in $(node_names); do
    ourpid "$DIR/run/slurmd-$n.pid" slurmd >/dev/null && return 0
  done
  return 1
}

daemons_alive() {
  ourpid "$DIR/munge/munged.pid" munged >/dev/null || return 1
  ourpid "$DIR/run/slurmctld.pid" slurmctld >/dev/null || return 1
  local n
  for n in $(node_names); do
    ourpid "$DIR/run/slurmd-$n.pid" slurmd >/dev/null || return 1
  done
}

# ---- packages ----------------------------------------------------------------

install_packages() {
  local p missing=()
  for p in munge slurmctld slurmd slurm-client; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing packages: ${missing[*]} (run as root)"
  local pkgs=(slurm-wlm munge)
  [[ " ${missing[*]} " == *" slurm-client "* ]] && pkgs+=(slurm-client)
  log "installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null 2>"$DIR/apt.err"; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
}

# ---- configuration -------------------------------------------------------------

port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

pick_ports() {
  local p=${SONDE_SLURM_PORT:-6817}
  if [ -z "${SONDE_SLURM_PORT:-}" ]; then
    while ! { port_free "$p" && port_free $((p + 1)) && port_free $((p + 2)); }; do
      p=$((p + 3))
      [ "$p" -lt 7100 ] || die "no free ports for slurm in 6817..7100"
    done
  fi
  CTLD_PORT=$p
  SLURMD_PORT=$((p + 1))
}

write_conf() {
  local cpus mem_mb
  cpus=${SONDE_SLURM_CPUS:-$(nproc)}
  # 80% of the real memory (slurmd drains a node declaring more than it has).
  mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
  [ "$NODES" -ge 2 ] && mem_mb=$((mem_mb / 2))
  pick_ports
  : >"$DIR/plugstack.conf"
  cat >"$CONF" <<EOF
# Written by sonde scripts/slurm.sh: a one-machine cluster for tests.
ClusterName=sonde
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MSOCK
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd-%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DIR/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.log
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_min_interval=0
SlurmdParameters=config_overrides
ReturnToService=2
SlurmctldTimeout=10
SlurmdTimeout=30
MessageTimeout=10
InactiveLimit=0
KillWait=2
MinJobAge=300
OverTimeLimit=0
UnkillableStepTimeout=30
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
EOF
  if [ "$NODES" -ge 2 ]; then
    echo "NodeName=n2 NodeHostname=$HOST NodeAddr=127.0.0.2 Port=$((CTLD_PORT + 2)) CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN" >>"$CONF"
  fi
  # debug: jobs share nodes (more tasks than this machine has CPUs);
  # whole: every job gets its nodes to itself (placement on distinct nodes)
  echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4" >>"$CONF"
  echo "PartitionName=whole Nodes=ALL Default=NO MaxTime=INFINITE State=UP OverSubscribe=EXCLUSIVE" >>"$CONF"
}

# ---- daemons -------------------------------------------------------------------

start_munged() {
  local m="$DIR/munge" user=munge run=(runuser -u munge --) force=()
  getent passwd munge >/dev/null || die "no munge user (is the munge package installed?)"
  # munged (as user munge) needs every directory above its socket searchable
  # by all; under a private directory (mktemp -d) it runs as root with --force
  # instead, and then only root can use the cluster.
  if ! runuser -u nobody -- test -x "$DIR" 2>/dev/null; then
    user=root run=() force=(--force)
    log "$DIR is not reachable by other users: munged runs as root (--force)"
  fi
  mkdir -p "$m"
  if [ ! -s "$m/munge.key" ]; then
    dd if=/dev/urandom of="$m/munge.key" bs=1 count=1024 status=none
  fi
  chown "$user:$user" "$m" "$m/munge.key"
  chmod 0755 "$m"
  chmod 0400 "$m/munge.key"
  rm -f "$MSOCK" "$MSOCK.lock" "$m/munged.pid"
  if ! "${run[@]}" munged "${force[@]}" --key-file="$m/munge.key" --socket="$MSOCK" \
    --pid-file="$m/munged.pid" --log-file="$m/munged.log" --seed-file="$m/munged.seed" \
    </dev/null >>"$DIR/log/start.log" 2>&1 9>&-; then
    fail_with_logs "munged failed to start"
  fi
  local _
  for _ in $(seq 1 50); do
    if [ -S "$MSOCK" ] && munge -n -S "$MSOCK" 2>/dev/null | unmunge -S "$MSOCK" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  fail_with_logs "munged does not answer on $MSOCK"
}

start_slurmctld() {
  # -c: a fresh cluster every `up` (no jobs recovered from an earlier run).
  SLURM_CONF="$CONF" slurmctld -c -f "$CONF" </dev/null >>"$DIR/log/start.log" 2>&1 9>&- \
    || fail_with_logs "slurmctld failed to start"
}

# slurmd (22.05) initialises its cgroup plugin even with proctrack/linuxproc
# and task/none, and fails when /sys/fs/cgroup holds no cgroup file system
# (a chroot without it). Then mount what this process's /proc/self/cgroup
# names: the v1 controllers under a tmpfs (as the host has them), or cgroup2.
ensure_cgroup() {
  local t; t=$(stat -fc %T /sys/fs/cgroup 2>/dev/null || true)
  [ "$t" = cgroup2fs ] && return 0
  [ "$t" = tmpfs ] && [ -n "$(ls /sys/fs/cgroup 2>/dev/null)" ] && return 0
  mkdir -p /sys/fs/cgroup 2>/dev/null || true
  local v1; v1=$(awk -F: '$2 != "" {print $2}' /proc/self/cgroup)
  if [ -n "$v1" ]; then
    mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup || { log "warning: cannot mount cgroups"; return 0; }
    local c dir
    for c in $v1; do
      dir=${c#name=}
      mkdir -p "/sys/fs/cgroup/$dir"
      case "$c" in
        name=*) mount -t cgroup -o "none,$c" cgroup "/sys/fs/cgroup/$dir" ;;
        *) mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$dir" ;;
      esac || log "warning: cannot mount cgroup $c"
    done
    log "mounted the cgroup v1 controllers ($(echo $v1)) on /sys/fs/cgroup (slurmd needs them)"
  elif mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null; then
    log "mounted cgroup2 on /sys/fs/cgroup (slurmd needs a cgroup file system)"
  else
    log "warning: no cgroup file system on /sys/fs/cgroup and none could be mounted: slurmd may fail"
  fi
}

start_slurmd() {
  local n=$1 args=()
  # A second slurmd on this host: slurmd -N NAME (verified with Debian 12's
  # Slurm 22.05: each listens on its node's Port=).
  [ "$n" = "$HOST" ] || args=(-N "$n")
  SLURM_CONF="$CONF" slurmd -f "$CONF" "${args[@]}" </dev/null >>"$DIR/log/start.log" 2>&1 9>&- \
    || fail_with_logs "slurmd ($n) failed to start"
}

fail_with_logs() {
  log "$1"
  local f
  for f in "$DIR/log/start.log" "$DIR/log/slurmctld.log" "$DIR"/log/slurmd-*.log "$DIR/munge/munged.log"; do
    [ -s "$f" ] || continue
    echo "---- tail $f" >&2
    tail -n 25 "$f" >&2 || true
  done
  exit 1
}

wait_ready() {
  local t0=$1 limit=${SONDE_SLURM_TIMEOUT:-60} deadline states n
  deadline=$(awk -v a="$(date +%s)" -v l="$limit" 'BEGIN { print a + l }')
  export SLURM_CONF="$CONF"
  while :; do
    [ "$(date +%s)" -lt "$deadline" ] || fail_with_logs "cluster not ready after ${limit}s"
    daemons_alive || fail_with_logs "a daemon exited"
    states=$(timeout 10 sinfo -h -N -o '%N %t' 2>/dev/null | sort -u || true)
    n=$(echo "$states" | grep -c ' idle$' || true)
    if [ "$n" -ge "$NODES" ]; then break; fi
    sleep 0.2
  done
  log "nodes idle after $(elapsed "$t0")s"
  if ! timeout 30 srun -N"$NODES" -t 1 true 2>"$DIR/log/srun-check.err"; then
    cat "$DIR/log/srun-check.err" >&2
    fail_with_logs "a trivial srun failed"
  fi
  log "srun -N$NODES true ran after $(elapsed "$t0")s"
}

# ---- commands ------------------------------------------------------------------

do_down() {
  local pid n t0
  t0=$(now)
  if [ -f "$CONF" ] && ourpid "$DIR/run/slurmctld.pid" slurmctld >/dev/null; then
    export SLURM_CONF="$CONF"
    local jobs
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null || true)
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      timeout 10 scancel $jobs 2>/dev/null || true
      for _ in $(seq 1 50); do
        [ -z "$(timeout 5 squeue -h -o %A 2>/dev/null || true)" ] && break
        any_slurmd_alive || break # no slurmd to end them: their steps are killed below
        sleep 0.2
      done
    fi
  fi
  for n in $(node_names); do
    if pid=$(ourpid "$DIR/run/slurmd-$n.pid" slurmd); then stop_pid "$pid" "slurmd $n"; fi
  done
  if pid=$(ourpid "$DIR/run/slurmctld.pid" slurmctld); then stop_pid "$pid" slurmctld; fi
  # Step daemons of this cluster's jobs (their environment names our slurm.conf).
  # (pgrep only lists them; each is checked before it is signalled.)
  for pid in $(pgrep -x slurmstepd || true); do
    { tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$CONF" || continue
    # with their job's processes (left over only when slurmd died first)
    local t
    for t in $(descendants "$pid"); do kill -KILL "$t" 2>/dev/null || true; done
    stop_pid "$pid" slurmstepd 0
  done
  if pid=$(ourpid "$DIR/munge/munged.pid" munged); then stop_pid "$pid" munged; fi
  log "down in $(elapsed "$t0")s"
}

# One `up`/`down` at a time per DIR.
lock_dir() {
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"
  flock -w 120 9 || die "another slurm.sh holds $DIR/.lock"
}

do_up() {
  local t0 n want
  t0=$(now)
  [ "$(id -u)" -eq 0 ] || die "up needs root (munged runs as user munge, the slurm daemons as root)"
  NODES=${SONDE_SLURM_NODES:-1}
  case "$NODES" in 1 | 2) ;; *) die "SONDE_SLURM_NODES must be 1 or 2" ;; esac
  want="nodes=$NODES cpus=${SONDE_SLURM_CPUS:-$(nproc)} port=${SONDE_SLURM_PORT:-auto}"
  lock_dir
  if [ "$(cat "$DIR/run/params" 2>/dev/null)" = "$want" ] && daemons_alive \
    && SLURM_CONF="$CONF" timeout 10 scontrol ping >/dev/null 2>&1; then
    log "already up ($DIR, $want)"
    return 0
  fi
  chmod 0755 "$DIR"
  install_packages
  log "packages ready after $(elapsed "$t0")s"
  do_down 2>/dev/null # whatever is left of an earlier run (or one with other parameters)
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/run" "$DIR/log"
  rm -rf "${DIR:?}/state/"* "${DIR:?}/spool/"* "${DIR:?}/run/"*
  write_conf
  for n in $(node_names); do mkdir -p "$DIR/spool/slurmd-$n"; done
  start_munged
  start_slurmctld
  ensure_cgroup
  for n in $(node_names); do start_slurmd "$n"; done
  wait_ready "$t0"
  echo "$want" >"$DIR/run/params"
  log "up in $(elapsed "$t0")s ($want): eval \"\$(scripts/slurm.sh env $DIR)\""
}

case "$cmd" in
  up) do_up ;;
  down)
    [ -d "$DIR" ] || exit 0
    lock_dir
    do_down
    ;;
  env)
    [ -f "$CONF" ] || die "no $CONF (run: scripts/slurm.sh up $DIR)"
    echo "export SLURM_CONF=$CONF"
    ;;
  status) daemons_alive ;;
  *)
    echo "usage: $0 up|down|env|status [DIR]   (DIR default /var/tmp/sonde-slurm)" >&2
    exit 2
    ;;
esac
