#!/usr/bin/env bash
# The Chroma server on this machine: its npm package's `chroma run` needs glibc >= 2.38,
# Debian 12 has 2.36, so it runs inside a Debian 13 (trixie) root built with debootstrap.
#   scripts/chroma-local.sh setup [ROOT]        builds ROOT once (idempotent; as root)
#   scripts/chroma-local.sh run [--root ROOT] --path DATA --host H --port P
#                                               the server on H:P with its data in DATA
#   scripts/chroma-local.sh check [ROOT]        exit 0 when ROOT is built and current
# ROOT defaults to $SONDE_CHROMA_ROOT, else /var/cache/sonde/chroma-root. The root holds
# nodejs + npm from trixie and chromadb from tests/chroma/package.json + package-lock.json
# (npm ci). It is built in ROOT.tmp and renamed when complete, so a half-built root is
# never used; a root built from another package-lock.json is rebuilt.
# /proc and /dev (and DATA, at /data in the root) are mounted only inside a private
# mount namespace (unshare --mount) that dies with the last process in it: no mount
# outlives this script or the server, and deleting ROOT never walks into /dev. (Where
# the machine is itself a chroot, a shell in the namespace unmounts them: enter().)
# `run` keeps the server as its only child in the caller's process group: a SIGTERM,
# SIGINT or SIGHUP to this script or to its group stops the server within about a second
# (chroma's node process never exits after SIGTERM by itself, so it gets SIGKILL after
# 1 s; docs/vector.md); nothing is left running.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pkgdir=$here/tests/chroma
default_root=${SONDE_CHROMA_ROOT:-/var/cache/sonde/chroma-root}
path_env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

usage() { sed -n 2,9p "$0" >&2; exit 2; }
die() { echo "chroma-local: $*" >&2; exit 1; }

# The stamp a built root carries: the hash of the package files it was built from.
stamp() { cat "$pkgdir/package.json" "$pkgdir/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1; }
built() { [ -f "$1/.sonde-chroma" ] && [ -x "$1/opt/chroma/node_modules/.bin/chroma" ]; }
ready() { built "$1" && [ "$(cat "$1/.sonde-chroma")" = "$(stamp)" ]; }
alive() { local s; read -r _ _ s _ <"/proc/$1/stat" 2>/dev/null && [ "$s" != Z ]; }

# Refuses to go on while anything is mounted under $1 (rm -rf must never cross a mount).
no_mounts() {
  local d
  d=$(realpath -m "$1")
  if awk -v d="$d" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    die "something is mounted under $d (unmount it first)"
  fi
}

# Runs "$@" chrooted into ROOT with /proc, /dev (and DATA at /data, unless DATA is
# empty) mounted in a mount namespace of its own:
#   unshare --mount --propagation "$prop" -- /bin/sh -c "$enter_sh" sh ROOT DATA "$priv" CMD...
# (ns_prop sets prop and priv).
# Normally the namespace is private (unshare --propagation private), its mounts die with
# it and the chrooted command is exec'd. Where / is not a mount point (this machine is
# itself a chroot) that cannot be set: then propagation stays as it is, and a shell stays
# in between to unmount what it mounted when the command ends or a signal stops it
# (SIGTERM, then SIGKILL after 0.5 s).
ns_prop() {
  priv=1 prop=private
  unshare --mount --propagation private true 2>/dev/null || { priv=0; prop=unchanged; }
}
# shellcheck disable=SC2016 # expanded by the inner shell
enter_sh='
    r=$1 d=$2 priv=$3; shift 3
    undo() {
      [ -z "$d" ] || umount -l "$r/data" 2>/dev/null
      umount -l "$r/dev" 2>/dev/null; umount -l "$r/proc" 2>/dev/null
    }
    mount -t proc proc "$r/proc" && mount --bind /dev "$r/dev" &&
      { [ -z "$d" ] || mount --bind "$d" "$r/data"; } || { undo; exit 1; }
    [ "$priv" = 1 ] && exec chroot "$r" "$@"
    chroot "$r" "$@" &
    c=$!
    trap "kill -TERM $c 2>/dev/null; sleep 0.5; kill -KILL $c 2>/dev/null" TERM INT HUP
    while :; do
      wait "$c"; rc=$?
      kill -0 "$c" 2>/dev/null || break
    done
    undo
    exit "$rc"'

# Runs "$@" chrooted into $1 (setup: apt-get, npm).
in_root() {
  local root=$1 priv prop; shift
  ns_prop
  unshare --mount --propagation "$prop" -- /bin/sh -c "$enter_sh" sh "$root" "" "$priv" \
    env -i "$path_env" HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# The Debian archive this machine uses (its apt sources), for debootstrap.
mirror() {
  local m=${SONDE_DEBIAN_MIRROR:-}
  if [ -z "$m" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ { u = $2 } /^Suites:/ && u != "" && $0 !~ /security/ { print u; exit }' \
      /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
      /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

setup() {
  local root=${1:-$default_root} tmp t0 lockfile
  root=$(realpath -m "$root")
  [ -f "$pkgdir/package.json" ] || die "$pkgdir/package.json is missing"
  ready "$root" && return 0
  [ "$(id -u)" = 0 ] || die "building $root needs root (debootstrap, chroot)"
  command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
  mkdir -p "$(dirname "$root")"
  # One builder at a time; a second waits, then finds the root ready.
  exec 9>"$root.lock"
  flock 9
  ready "$root" && return 0
  t0=$SECONDS
  tmp=$root.tmp
  no_mounts "$tmp"
  rm -rf "$tmp"
  echo "chroma-local: debootstrap trixie into $tmp ($(mirror))" >&2
  debootstrap --variant=minbase trixie "$tmp" "$(mirror)" >"$root.log" 2>&1 ||
    { tail -20 "$root.log" >&2; die "debootstrap failed (log: $root.log)"; }
  cp /etc/resolv.conf "$tmp/etc/resolv.conf"
  # npm may be reached through a proxy whose CA only the host's bundle holds.
  cp /etc/ssl/certs/ca-certificates.crt "$tmp/etc/sonde-host-ca.pem"
  echo "chroma-local: apt-get install nodejs npm" >&2
  in_root "$tmp" apt-get install -y -q --no-install-recommends nodejs npm ca-certificates \
    >>"$root.log" 2>&1 || { tail -20 "$root.log" >&2; die "apt-get in the root failed (log: $root.log)"; }
  in_root "$tmp" apt-get clean >>"$root.log" 2>&1
  mkdir -p "$tmp/opt/chroma" "$tmp/data"
  cp "$pkgdir/package.json" "$tmp/opt/chroma/"
  printf 'cafile=/etc/sonde-host-ca.pem\nfund=false\naudit=false\nupdate-notifier=false\n' \
    >"$tmp/root/.npmrc"
  lockfile=$pkgdir/package-lock.json
  if [ -f "$lockfile" ]; then
    cp "$lockfile" "$tmp/opt/chroma/"
    echo "chroma-local: npm ci (chromadb)" >&2
    in_root "$tmp" sh -c 'cd /opt/chroma && npm ci --loglevel=error' >>"$root.log" 2>&1 ||
      { tail -20 "$root.log" >&2; die "npm ci in the root failed (log: $root.log)"; }
  else
    # First build only: resolve the lock here and keep it in the source tree.
    echo "chroma-local: npm install (chromadb; writes $lockfile)" >&2
    in_root "$tmp" sh -c 'cd /opt/chroma && npm install --loglevel=error' >>"$root.log" 2>&1 ||
      { tail -20 "$root.log" >&2; die "npm install in the root failed (log: $root.log)"; }
    cp "$tmp/opt/chroma/package-lock.json" "$lockfile"
  fi
  [ -x "$tmp/opt/chroma/node_modules/.bin/chroma" ] || die "no chroma binary after npm"
  stamp >"$tmp/.sonde-chroma"
  if [ -e "$root" ]; then # built from other package files: replaced
    no_mounts "$root"
    mv "$root" "$root.old"
    mv "$tmp" "$root"
    rm -rf "$root.old"
  else
    mv "$tmp" "$root"
  fi
  echo "chroma-local: $root ready ($((SECONDS - t0)) s)" >&2
}

run() {
  local root=$default_root data='' host=127.0.0.1 port=''
  while [ $# -gt 0 ]; do
    case "$1" in
    --root) root=${2:?}; shift 2 ;;
    --path) data=${2:?}; shift 2 ;;
    --host) host=${2:?}; shift 2 ;;
    --port) port=${2:?}; shift 2 ;;
    *) usage ;;
    esac
  done
  [ -n "$data" ] && [ -n "$port" ] || usage
  root=$(realpath -m "$root")
  built "$root" || die "$root is not built: run scripts/chroma-local.sh setup $root"
  mkdir -p "$data"
  data=$(realpath "$data")
  # unshare -> sh -> chroot -> env -> node is exec'd all the way: one process, the
  # server, a child of this shell in the caller's process group. On SIGTERM the server
  # shuts its listener down but never exits (it spins on a CPU): this shell gives it
  # the signal and a moment, then SIGKILL, and exits; so a signal to this process or
  # to its group stops everything within about a second.
  # A clean environment in the root, but sonde's SONDE_* (its session tag finds the server).
  local keep=() n
  for n in $(compgen -e); do [[ $n == SONDE_* ]] && keep+=("$n=${!n}"); done
  # the traps first: a signal while the server starts stops it too
  local server=
  stop() {
    trap '' TERM INT HUP
    [ -n "$server" ] || exit "$1" # a signal before the server started
    kill -TERM "$server" 2>/dev/null || exit "$1"
    local i
    for ((i = 0; i < 10; i++)); do # its graceful part takes a few ms
      alive "$server" || break
      sleep 0.1
    done
    kill -KILL "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    exit "$1"
  }
  trap 'stop 143' TERM
  trap 'stop 130' INT
  trap 'stop 129' HUP
  local priv prop
  ns_prop
  unshare --mount --propagation "$prop" -- /bin/sh -c "$enter_sh" sh "$root" "$data" "$priv" \
    env -i "$path_env" HOME=/root LANG=C.UTF-8 "${keep[@]}" \
    /opt/chroma/node_modules/.bin/chroma run --path /data --host "$host" --port "$port" &
  server=$!
  local rc=0
  wait "$server" || rc=$?
  # wait returns early when a trapped signal arrives; the trap then exits
  exit "$rc"
}

case "${1:-}" in
setup) shift; setup "$@" ;;
run) shift; run "$@" ;;
check) shift; ready "$(realpath -m "${1:-$default_root}")" ;;
*) usage ;;
esac
