/* run.h — the sql client's load: worker threads, each with an epoll loop over its own
 * database connections (db.h), running transaction scripts (script.h) in a closed loop
 * (each connection a user: run a transaction, think, run the next) or an open loop
 * (transactions due at the times of a Poisson or constant arrival process at `rate`,
 * latency measured from the due time, so a late start is never hidden).
 *
 * Phases: setup (one connection: the pgbench tables created and filled when asked, not
 * measured), connect (every connection made and its statements prepared; each
 * connection's setup time recorded apart), then the measured window (after warm-up).
 * A transaction's latency runs from its start (open loop: its due time) to the answer
 * to its last statement; each statement's own latency is kept per script statement.
 * A failed transaction is counted once, in its error class (db.h); serialization
 * failures and deadlocks are retried up to max_tries with the same random values, as
 * pgbench. A broken connection is reopened (with backoff), its statements prepared
 * again; the transaction it carried counts as failed. */
#ifndef SONDE_SQL_RUN_H
#define SONDE_SQL_RUN_H

#include "loadgen/engine.h"
#include "sql/db.h"
#include "sql/script.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sql_init { SQL_INIT_NEVER, SQL_INIT_MISSING, SQL_INIT_ALWAYS };

struct sql_run_config {
    const struct sql_db_ops *db;
    struct sql_target target;
    struct sql_script **scripts; /* not owned; picked by weight */
    size_t nscripts;
    int64_t scale;
    enum sql_init init; /* the pgbench tables */
    unsigned connections, threads;
    enum lg_model model;
    double rate;             /* open loop: transactions/s in total */
    enum lg_arrival arrival; /* LG_CONSTANT or LG_POISSON */
    uint64_t seed;
    int64_t duration_ns, warmup_ns; /* bounds: duration and/or max_tx */
    uint64_t max_tx;
    int64_t think_ns;      /* closed loop */
    int64_t tx_timeout_ns; /* a transaction running longer fails (timeout); 0: none */
    int max_tries;         /* >= 1 */
    int64_t busy_poll_ns;
    unsigned client_base; /* :client_id of the first connection (tasks of a fan-out) */
};

struct sql_run;

/* The setup phase alone (the pgbench tables as cfg->init says), blocking: a fan-out
 * does it once before its tasks start. 0 or -errno with a message in err. */
int sql_setup(const struct sql_run_config *cfg, char *err, size_t errlen);

/* Checks cfg and starts (setup runs in the run's own thread). 0 or -errno with a
 * message in err. */
int sql_run_start(const struct sql_run_config *cfg, struct sql_run **out, char *err, size_t errlen);
bool sql_run_done(struct sql_run *r);
/* The phase now ("setup", "connect", "warm-up", "run", "done") and the counts. */
const char *sql_run_progress(struct sql_run *r, struct lg_progress *out);
void sql_run_stop(struct sql_run *r);
/* Joins the run. Its statistics in *out: requests = transactions (ok + failed),
 * latency (and service, issue_delay in open loop) histograms, per-second series,
 * and extras: errors_<class> and retries, reconnects, warmup_transactions counters,
 * connect_time and stmt_<script>_<n> histograms (n from 1). 0, or the error that
 * ended the run (message in err). */
int sql_run_wait(struct sql_run *r, struct lg_stats **out, char *err, size_t errlen);
void sql_run_free(struct sql_run *r);

/* The extra name of statement stmt (0-based) of script i: "stmt_<i+1>_<stmt+1>". */
void sql_stmt_extra_name(size_t script, int stmt, char *buf, size_t n);

#endif
