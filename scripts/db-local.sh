#!/usr/bin/env bash
# A throwaway database server for the tests and bench/ scripts that need one they
# control themselves (to restart it mid-run, or to share it between sonde and pgbench).
#   scripts/db-local.sh ENGINE start DIR PORT [SETTING=VALUE...]  a new server in DIR on 127.0.0.1:PORT
#   scripts/db-local.sh ENGINE restart DIR                         fast restart (clients are cut off)
#   scripts/db-local.sh ENGINE stop DIR                            shutdown; DIR is kept
#   scripts/db-local.sh ENGINE sql DIR SQL                         runs SQL, prints the rows (tab-separated)
# ENGINE: postgres or mariadb. As root, PostgreSQL runs as the `postgres` user (it refuses
# root) and DIR is given to it; MariaDB runs as root. Users: the superuser (postgres, or
# root for MariaDB) without a password, and `sonde` with the password `sonde-pw` (checked
# over TCP) for the password tests. Databases: postgres, or sonde for MariaDB.
set -euo pipefail
engine=${1:-}; cmd=${2:-}; dir=${3:-}
usage() { sed -n 2,12p "$0" >&2; exit 2; }
[ -n "$engine" ] && [ -n "$cmd" ] && [ -n "$dir" ] || usage

pg_bin=${SONDE_PG_BINDIR:-/usr/lib/postgresql/15/bin}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_port() { sed -n 's/^port = \([0-9]*\)$/\1/p' "$dir/data/postgresql.auto.conf" | tail -1; }

postgres() {
  case "$cmd" in
  start)
    local port=${1:?a port}; shift
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    as_pg "$pg_bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=trust \
      -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    {
      echo "port = $port"
      echo "listen_addresses = '127.0.0.1'"
      echo "unix_socket_directories = '$dir'"
      for kv in "$@"; do echo "${kv%%=*} = '${kv#*=}'"; done
    } >>"$dir/data/postgresql.auto.conf"
    sed -i '/^# TYPE/a host all sonde 127.0.0.1/32 scram-sha-256' "$dir/data/pg_hba.conf"
    as_pg "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
      { tail -20 "$dir/server.log" >&2; exit 1; }
    as_pg "$pg_bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
      -c "CREATE USER sonde PASSWORD 'sonde-pw' SUPERUSER" >/dev/null
    ;;
  restart) as_pg "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null ;;
  stop)
    if [ -d "$dir/data" ]; then as_pg "$pg_bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true; fi
    ;;
  sql) PGOPTIONS="-c client_min_messages=warning" as_pg "$pg_bin/psql" -h "$dir" -p "$(pg_port)" -U postgres -d postgres -qAt -F $'\t' -v ON_ERROR_STOP=1 -c "$1" ;;
  *) usage ;;
  esac
}

mdb_start() { # the server in the background, its pid in DIR/pid; waits until it answers
  # shellcheck disable=SC2046
  /usr/sbin/mariadbd --no-defaults $(cat "$dir/args") >>"$dir/server.log" 2>&1 &
  local i
  for ((i = 0; i < 600; i++)); do
    mariadb-admin --no-defaults --socket="$dir/sock" -u root ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  tail -20 "$dir/server.log" >&2
  exit 1
}
mdb_stop() {
  mariadb-admin --no-defaults --socket="$dir/sock" -u root shutdown >/dev/null 2>&1 || true
  local i pid
  pid=$(cat "$dir/pid" 2>/dev/null || true)
  for ((i = 0; i < 300; i++)); do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}
mariadb() {
  case "$cmd" in
  start)
    local port=${1:?a port}; shift
    mkdir -p "$dir"
    mariadb-install-db --no-defaults --datadir="$dir/data" --user="$(id -un)" \
      --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 ||
      { cat "$dir/install.log" >&2; exit 1; }
    cat >"$dir/init.sql" <<SQL
CREATE DATABASE IF NOT EXISTS sonde;
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'sonde'@'127.0.0.1' IDENTIFIED BY 'sonde-pw';
GRANT ALL ON *.* TO 'sonde'@'127.0.0.1';
SQL
    local extra=""
    for kv in "$@"; do extra+=" --${kv%%=*}=${kv#*=}"; done
    echo "--datadir=$dir/data --port=$port --bind-address=127.0.0.1 --socket=$dir/sock" \
      "--pid-file=$dir/pid --user=$(id -un) --skip-name-resolve --init-file=$dir/init.sql$extra" >"$dir/args"
    mdb_start
    ;;
  restart) mdb_stop; mdb_start ;;
  stop) [ -f "$dir/args" ] && mdb_stop ;;
  sql) command mariadb --no-defaults --socket="$dir/sock" -u root -D sonde -N -B -e "$1" ;;
  *) usage ;;
  esac
}

shift 3
case "$engine" in
postgres) postgres "$@" ;;
mariadb) mariadb "$@" ;;
*) usage ;;
esac
