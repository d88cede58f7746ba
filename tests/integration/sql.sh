#!/usr/bin/env bash
# sql.sh SONDE — the sql client against a real PostgreSQL: pgbench's TPC-B (the tables
# created by sonde; rows in pgbench_history == transactions reported), custom weighted
# scripts with \set and \sleep, an open loop, retries of serialization failures,
# constraint violations counted, a wrong password, a server restarted mid-run (errors
# counted, reconnects, no hang), script errors at validate time with file:line and SQL
# the server rejects; then the sql-tpcb recipe with its PostgreSQL service, nothing left.
. "$(dirname "$0")/lib.sh"

PG=$WS/pg
PORT=$(free_port)
scripts/db-local.sh postgres start "$PG" "$PORT" >"$WS/pg-start.log" 2>&1 || { cat "$WS/pg-start.log"; bad "PostgreSQL starts"; finish; exit 1; }
MDB=$WS/mariadb
stop_dbs() { scripts/db-local.sh postgres stop "$PG"; scripts/db-local.sh mariadb stop "$MDB"; }
trap stop_dbs EXIT # before finish removes their directories
sql() { scripts/db-local.sh postgres sql "$PG" "$1"; }
DB=("host: 127.0.0.1" "port: \"$PORT\"" "user: postgres" "database: postgres") # the server to load

run() { RUN_WITH=("${DB[@]}"); run_client sql load "$@"; } # NAME, then the lines of with:

# 1. TPC-B: sonde creates the tables (scale 1), 4 connections on 2 threads, 4 s.
run tpcb "script: tpcb" "scale: 1" "connections: 4" "threads: 2" "duration: 4s"
check "tpcb exits 0" test $? -eq 0
tx=$(val tpcb transactions)
check "tpcb: transactions > 100 ($tx), no errors" py "$tx > 100 and $(val tpcb errors) == 0"
check "tpcb: the tables were created at scale 1" test "$(sql 'SELECT count(*) FROM pgbench_accounts')" = 100000
hist=$(sql 'SELECT count(*) FROM pgbench_history')
check "tpcb: pgbench_history rows ($hist) == transactions reported ($tx)" test "$hist" = "${tx%.0}"
bal=$(sql 'SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history)')
check "tpcb: account balances add up to the history's deltas" test "$bal" = t
check "tpcb: throughput = transactions / 4 s" py "abs($(val tpcb throughput) * 4 - $tx) < 0.1 * $tx"
check "tpcb: latency percentiles and connect time" py "0 < $(val tpcb latency_p50) <= $(val tpcb latency_p99) and $(val tpcb connect_time_max) > 0"
check "tpcb: 7 statement histograms, one count per transaction each" python3 -c "
import json
d = json.load(open('$WS/tpcb.json'))['trials'][0]
h = {x['name']: x for x in d['histograms']}
st = [h['stmt_1_%d' % i] for i in range(1, 8)]
assert all(x['count'] == $tx for x in st), [x['count'] for x in st]
assert h['latency']['count'] == $tx and h['connect_time']['count'] == 4
s = {x['name'] for x in d['series'] if x['component'] == 'load'}
assert {'transactions', 'latency_p99'} <= s, s"
# a second run keeps the tables (init: missing finds them at scale 1)
sql "INSERT INTO pgbench_history (tid, bid, aid, delta) VALUES (1, 1, 1, 0)" >/dev/null
run again "script: select-only" "scale: 1" "connections: 2" "requests: 500"
check "select-only: exactly 500 transactions, the tables kept" py "$(val again transactions) == 500 and $(sql 'SELECT count(*) FROM pgbench_history') == $hist + 1"

# 2. Custom scripts by weight, with \set distributions and \sleep.
sql "DROP TABLE IF EXISTS kv; CREATE TABLE kv (k int PRIMARY KEY, v bigint NOT NULL DEFAULT 0);
     INSERT INTO kv SELECT g, 0 FROM generate_series(1, 1000) g" >/dev/null
cat >"$WS/read.sql" <<'EOF'
-- a read, keys skewed (zipfian)
\set k random_zipfian(1, 1000, 2)
SELECT v FROM kv WHERE k = :k;
EOF
cat >"$WS/write.sql" <<'EOF'
\set k random_gaussian(1, 1000, 3)
\set d random(1, 9) * 10
\sleep 1 ms
BEGIN;
UPDATE kv
   SET v = v + :d
 WHERE k = :k;
COMMIT;
EOF
run mix "scripts: [{script: $WS/read.sql, weight: 3}, {script: $WS/write.sql, weight: 1}]" \
  "connections: 2" "requests: 2000" "seed: 7"
check "weighted scripts exit 0" test $? -eq 0
check "3:1 weights: reads ~1500, writes ~500, 2000 in all" python3 -c "
import json
d = json.load(open('$WS/mix.json'))['trials'][0]
h = {x['name']: x['count'] for x in d['histograms']}
r, w = h['stmt_1_1'], h['stmt_2_2']
assert r + w == 2000 and 1350 < r < 1650, (r, w)
assert h['stmt_2_1'] == w == h['stmt_2_3'], h"
check "the writes' deltas are multiples of 10 between 10 and 90" test \
  "$(sql 'SELECT count(*) FROM kv WHERE v % 10 <> 0')" = 0
# \sleep 1 ms inside each write: its mean latency is above 1 ms
check "\\sleep holds the write transaction" py "$(val mix latency_max) >= 1.0"

# 3. Open loop at 200 tx/s for 3 s.
run open "script: select-only" "scale: 1" "connections: 4" "mode: open" "rate: 200" "duration: 3s"
check "open loop: achieved rate ~200 tx/s ($(val open achieved_rate))" py "180 <= $(val open achieved_rate) <= 220"
check "open loop: issue delay and service time kept" python3 -c "
import json
d = json.load(open('$WS/open.json'))['trials'][0]
n = {x['name'] for x in d['histograms']}
assert {'latency', 'service_time', 'issue_delay'} <= n, n"

# 4. Serialization failures retried; constraint violations counted.
sql "DROP TABLE IF EXISTS hot; CREATE TABLE hot (id int PRIMARY KEY, n int); INSERT INTO hot VALUES (1, 0)" >/dev/null
printf 'BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT n FROM hot WHERE id = 1;\nUPDATE hot SET n = n + 1 WHERE id = 1;\nCOMMIT;\n' >"$WS/hot.sql"
run hot "script: $WS/hot.sql" "connections: 8" "requests: 1500" "max_tries: 100"
ok_hot=$(val hot ok)
check "serialization failures retried (retries $(val hot retries))" py "$(val hot retries) > 0"
check "every committed increment counted: n == ok ($ok_hot)" test "$(sql 'SELECT n FROM hot')" = "${ok_hot%.0}"
sql "DROP TABLE IF EXISTS uniq; CREATE TABLE uniq (k int PRIMARY KEY)" >/dev/null
printf '\\set k random(1, 20)\nINSERT INTO uniq VALUES (:k);\n' >"$WS/uniq.sql"
run uniq "script: $WS/uniq.sql" "connections: 1" "requests: 200"
check "constraint violations counted by class" py "$(val uniq errors_constraint) >= 150 and $(val uniq ok) == $(sql 'SELECT count(*) FROM uniq')"

# 5. A wrong password: a clear message, exit 1.
DB=("host: 127.0.0.1" "port: \"$PORT\"" "database: postgres")
export SQL_TEST_PW=wrong
run badpw "user: sonde" "password_env: SQL_TEST_PW" "script: select-only" "init: never" "duration: 2s"
check "wrong password exits 1" test $? -eq 1
check "it says the password failed ($(reason badpw))" contains "$(reason badpw)" 'password authentication failed for user "sonde"'
check "the password is in no file of the session" bash -c "! grep -rq wrong '$WS/sessions'"
export SQL_TEST_PW=sonde-pw
run goodpw "user: sonde" "password_env: SQL_TEST_PW" "script: select-only" "init: never" "requests: 100"
check "the right password works" py "$(val goodpw transactions) == 100"

DB=("host: 127.0.0.1" "port: \"$PORT\"" "user: postgres" "database: postgres")

# 6. The server restarted mid-run: errors counted, reconnects, the run ends on time.
( sleep 2; scripts/db-local.sh postgres restart "$PG" ) &
t0=$(date +%s)
run restart "script: tpcb" "scale: 1" "connections: 4" "duration: 6s" "timeout: 5s"
rc=$?
wait
t=$(($(date +%s) - t0))
check "restart: exit 0 ($rc) within 20 s ($t s)" py "$rc == 0 and $t <= 20"
check "restart: lost transactions counted ($(val restart errors_lost)), connections reopened ($(val restart reconnects))" \
  py "$(val restart errors_lost) >= 1 and $(val restart reconnects) >= 1 and $(val restart ok) > 0"

# 7. Script errors: at validate time with file:line; SQL the server rejects at run time.
printf 'SELECT 1;\n\\set x random(1,\nSELECT :x;\n' >"$WS/bad.sql"
printf 'kind: benchmark\nname: bad\nclients:\n  load:\n    driver: sql\n    with:\n      script: %s\n      duration: 1s\n' "$WS/bad.sql" >"$WS/bad.yaml"
out=$("$SONDE" recipe validate "$WS/bad.yaml" 2>&1); rc=$?
check "validate: a script syntax error exits 2 ($rc)" test "$rc" -eq 2
check "validate: it names the script's file:line ($out)" contains "$out" "bad.sql:2: "
printf 'SELEC v FROM kv;\n' >"$WS/typo.sql"
run typo "script: $WS/typo.sql" "duration: 2s"
check "SQL the server rejects: exit 1" test $? -eq 1
check "it names the file:line and the server's message ($(reason typo))" contains "$(reason typo)" 'typo.sql:1: postgres rejected the statement: syntax error at or near "SELEC"'

# 8. MariaDB: the same TPC-B through libmariadb, a wrong password, a restart mid-run.
MPORT=$(free_port)
scripts/db-local.sh mariadb start "$MDB" "$MPORT" >"$WS/mdb-start.log" 2>&1
check "MariaDB starts" test $? -eq 0
msql() { scripts/db-local.sh mariadb sql "$MDB" "$1"; }
DB=("engine: mariadb" "host: 127.0.0.1" "port: \"$MPORT\"" "database: sonde")
run mtpcb "script: tpcb" "scale: 1" "connections: 4" "threads: 2" "duration: 4s"
check "mariadb tpcb exits 0" test $? -eq 0
mtx=$(val mtpcb transactions)
check "mariadb tpcb: transactions > 100 ($mtx), no errors" py "$mtx > 100 and $(val mtpcb errors) == 0"
check "mariadb tpcb: pgbench_history rows == transactions" test "$(msql 'SELECT count(*) FROM pgbench_history')" = "${mtx%.0}"
check "mariadb tpcb: balances add up" test "$(msql 'SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history)')" = 1
check "mariadb tpcb: 7 statement histograms" py "'$(val mtpcb stmt_1_7_mean)' != '' and $(val mtpcb latency_p99) > 0"
export SQL_TEST_PW=wrong
run mbadpw "user: sonde" "password_env: SQL_TEST_PW" "script: select-only" "init: never" "duration: 2s"
check "mariadb wrong password exits 1" test $? -eq 1
check "it says access was denied ($(reason mbadpw))" contains "$(reason mbadpw)" "Access denied for user 'sonde'"
( sleep 2; scripts/db-local.sh mariadb restart "$MDB" ) &
t0=$(date +%s)
run mrestart "script: tpcb" "scale: 1" "connections: 4" "duration: 6s" "timeout: 5s"
rc=$?
wait
t=$(($(date +%s) - t0))
check "mariadb restart: exit 0 ($rc) within 20 s ($t s)" py "$rc == 0 and $t <= 20"
check "mariadb restart: lost transactions counted ($(val mrestart errors_lost)), reconnects ($(val mrestart reconnects))" \
  py "$(val mrestart errors_lost) >= 1 and $(val mrestart reconnects) >= 1 and $(val mrestart ok) > 0"
printf 'SELEC 1;\n' >"$WS/mtypo.sql"
run mtypo "script: $WS/mtypo.sql" "duration: 2s"
check "mariadb: SQL the server rejects: exit 1, file:line ($(reason mtypo))" contains "$(reason mtypo)" "mtypo.sql:1: mariadb rejected the statement: You have an error in your SQL syntax"

# 9. The recipe with its own PostgreSQL service; nothing left running.
"$SONDE" -q run recipes/benchmarks/sql-tpcb.yaml --set 'matrix.connections=[2]' \
  --set clients.load.with.duration=2s --set clients.load.with.warmup=1s >"$WS/recipe.out" 2>&1
check "sql-tpcb.yaml runs (one trial)" test $? -eq 0
id=$(latest_id)
save_report recipe
check "its report: throughput and per-statement percentiles" py "$(val recipe throughput) > 0 and '$(val recipe stmt_1_2_p99)' != ''"
check "no process left after sql-tpcb.yaml" no_procs_left "$id"
stop_dbs
servers_left() { ps -eo args= | grep -F -- "$WS/" | grep -v -e grep -e 'ps -eo'; }
check "the test's own servers are stopped" test -z "$(servers_left)"
trap - EXIT
finish
