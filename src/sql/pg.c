/* pg.c — PostgreSQL for the sql client through libpq's asynchronous API (db.h):
 * PQconnectStartParams / PQconnectPoll, PQsendPrepare, PQsendQueryPrepared, PQflush,
 * PQconsumeInput / PQisBusy / PQgetResult. Errors are classed by SQLSTATE. */
#include "sql/db.h"

#include "sql/script.h"

#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sql_conn {
    PGconn *pg;
    bool connecting, flushing;
    struct sql_res res;
};

static void set_msg(struct sql_res *r, const char *msg)
{
    /* the first line that says something ("FATAL:  ..." trimmed to its text) */
    while (msg && (*msg == '\n' || *msg == ' '))
        msg++;
    if (!msg)
        msg = "";
    if (!strncmp(msg, "FATAL:", 6) || !strncmp(msg, "ERROR:", 6))
        msg += 6;
    while (*msg == ' ')
        msg++;
    size_t n = strcspn(msg, "\n");
    if (n >= sizeof(r->msg))
        n = sizeof(r->msg) - 1;
    memcpy(r->msg, msg, n);
    r->msg[n] = 0;
}

static enum sql_err class_of(const char *state)
{
    static const struct {
        const char *prefix;
        enum sql_err e;
    } map[] = {
        {"40001", SQL_ERR_SERIALIZATION},
        {"40P01", SQL_ERR_DEADLOCK},
        {"57014", SQL_ERR_TIMEOUT}, /* query_canceled: statement_timeout */
        {"57P", SQL_ERR_LOST},      /* admin shutdown, crash shutdown, cannot connect now */
        {"08", SQL_ERR_LOST},
        {"23", SQL_ERR_CONSTRAINT},
        {"28", SQL_ERR_AUTH},
        {"42", SQL_ERR_SYNTAX},
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(map); i++)
        if (!strncmp(state, map[i].prefix, strlen(map[i].prefix)))
            return map[i].e;
    return SQL_ERR_OTHER;
}

/* The connection failed or broke: its message and class. */
static int conn_failed(struct sql_conn *c, enum sql_err e)
{
    const char *msg = PQerrorMessage(c->pg);
    c->res.err = e;
    set_msg(&c->res, msg && *msg ? msg : "connection failed");
    if (e == SQL_ERR_CONNECT && msg &&
        (strstr(msg, "authentication") || strstr(msg, "password") || strstr(msg, "pg_hba.conf") ||
         strstr(msg, "does not exist")))
        c->res.err = SQL_ERR_AUTH;
    return SQL_WANT_FAIL;
}

static int pg_connect_start(const struct sql_target *t, struct sql_conn **out)
{
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", t->connect_timeout_s);
    const char *keys[8], *vals[8];
    int n = 0;
#define KV(k, v)                                                                                   \
    do {                                                                                           \
        if ((v) && *(v)) {                                                                         \
            keys[n] = (k);                                                                         \
            vals[n++] = (v);                                                                       \
        }                                                                                          \
    } while (0)
    KV("host", t->host);
    KV("port", t->port);
    KV("user", t->user);
    KV("password", t->password);
    KV("dbname", t->database);
    if (t->connect_timeout_s > 0) {
        keys[n] = "connect_timeout";
        vals[n++] = timeout;
    }
    KV("application_name", "sonde");
#undef KV
    keys[n] = vals[n] = NULL;
    struct sql_conn *c = xcalloc(1, sizeof(*c));
    *out = c;
    c->res.err = SQL_OK;
    c->pg = PQconnectStartParams(keys, vals, 0);
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD)
        return c->pg ? conn_failed(c, SQL_ERR_CONNECT)
                     : (snprintf(c->res.msg, sizeof(c->res.msg), "out of memory"),
                        c->res.err = SQL_ERR_CONNECT, SQL_WANT_FAIL);
    c->connecting = true;
    return SQL_WANT_WRITE; /* as libpq says: act as if the last poll returned WRITING */
}

static int pg_fd(const struct sql_conn *c)
{
    return c && c->pg ? PQsocket(c->pg) : -1;
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int connect_cont(struct sql_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        return SQL_WANT_READ;
    case PGRES_POLLING_WRITING:
        return SQL_WANT_WRITE;
    case PGRES_POLLING_OK:
        c->connecting = false;
        PQsetNoticeProcessor(c->pg, quiet, NULL); /* NOTICEs are not errors: not printed */
        if (PQsetnonblocking(c->pg, 1) != 0)
            return conn_failed(c, SQL_ERR_CONNECT);
        c->res.err = SQL_OK;
        c->res.msg[0] = 0;
        return SQL_DONE;
    default:
        return conn_failed(c, SQL_ERR_CONNECT);
    }
}

/* After a send: flush what libpq buffered, then wait for the answer. */
static int sent(struct sql_conn *c, int ok)
{
    if (!ok)
        return conn_failed(c, SQL_ERR_LOST);
    c->res.err = SQL_OK;
    c->res.sqlstate[0] = c->res.msg[0] = 0;
    c->res.rows = 0;
    int f = PQflush(c->pg);
    if (f < 0)
        return conn_failed(c, SQL_ERR_LOST);
    c->flushing = f == 1;
    return c->flushing ? SQL_WANT_READ | SQL_WANT_WRITE : SQL_WANT_READ;
}

static int pg_prepare_start(struct sql_conn *c, int id, const char *sql, int nparams)
{
    char name[16];
    snprintf(name, sizeof(name), "s%d", id);
    (void)nparams; /* parameter types are inferred by the server */
    return sent(c, PQsendPrepare(c->pg, name, sql, 0, NULL));
}

static int pg_exec_start(struct sql_conn *c, int id, int nparams, const int64_t *values)
{
    char name[16], text[SQL_PARAMS_MAX][24];
    const char *v[SQL_PARAMS_MAX];
    snprintf(name, sizeof(name), "s%d", id);
    for (int i = 0; i < nparams && i < SQL_PARAMS_MAX; i++) {
        snprintf(text[i], sizeof(text[i]), "%" PRId64, values[i]);
        v[i] = text[i];
    }
    return sent(c, PQsendQueryPrepared(c->pg, name, nparams, v, NULL, NULL, 0));
}

static int pg_query_start(struct sql_conn *c, const char *sql)
{
    return sent(c, PQsendQuery(c->pg, sql));
}

/* One result of the operation: the first error is the operation's. */
static void take_result(struct sql_conn *c, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_SINGLE_TUPLE)
        c->res.rows += (uint64_t)PQntuples(r);
    else if (st == PGRES_COMMAND_OK)
        c->res.rows += strtoull(PQcmdTuples(r), NULL, 10);
    else if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
        if (c->res.err == SQL_OK) {
            c->res.err = SQL_ERR_OTHER;
            set_msg(&c->res, "COPY is not supported in scripts");
        }
    } else if (c->res.err == SQL_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(c->res.sqlstate, sizeof(c->res.sqlstate), "%s", state ? state : "");
        c->res.err = state ? class_of(state) : SQL_ERR_OTHER;
        const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        set_msg(&c->res, m ? m : PQresultErrorMessage(r));
    }
}

static int pg_cont(struct sql_conn *c)
{
    if (c->connecting)
        return connect_cont(c);
    if (c->flushing) {
        int f = PQflush(c->pg);
        if (f < 0)
            return conn_failed(c, SQL_ERR_LOST);
        c->flushing = f == 1;
    }
    if (!PQconsumeInput(c->pg))
        return conn_failed(c, SQL_ERR_LOST);
    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (!r) {
            if (PQstatus(c->pg) == CONNECTION_BAD)
                return conn_failed(c, SQL_ERR_LOST);
            return SQL_DONE;
        }
        take_result(c, r);
        PQclear(r);
    }
    if (PQstatus(c->pg) == CONNECTION_BAD)
        return conn_failed(c, SQL_ERR_LOST);
    return c->flushing ? SQL_WANT_READ | SQL_WANT_WRITE : SQL_WANT_READ;
}

static void pg_result(struct sql_conn *c, struct sql_res *res)
{
    *res = c->res;
}

static bool pg_in_tx(const struct sql_conn *c)
{
    PGTransactionStatusType t = PQtransactionStatus(c->pg);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
}

static void pg_close(struct sql_conn *c)
{
    if (!c)
        return;
    if (c->pg)
        PQfinish(c->pg);
    free(c);
}

static char **pg_tpcb_init_sql(int scale)
{
    char **v = NULL;
    strv_push(&v, "DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_history, "
                  "pgbench_tellers");
    strv_push(&v, "CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, "
                  "mtime timestamp, filler char(22))");
    strv_push(&v, "CREATE TABLE pgbench_tellers (tid int NOT NULL, bid int, tbalance int, "
                  "filler char(84)) WITH (fillfactor = 100)");
    strv_push(&v, "CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, "
                  "filler char(84)) WITH (fillfactor = 100)");
    strv_push(&v, "CREATE TABLE pgbench_branches (bid int NOT NULL, bbalance int, "
                  "filler char(88)) WITH (fillfactor = 100)");
    strv_pushf(&v,
               "INSERT INTO pgbench_branches (bid, bbalance) "
               "SELECT bid, 0 FROM generate_series(1, %d) AS bid",
               scale);
    strv_pushf(&v,
               "INSERT INTO pgbench_tellers (tid, bid, tbalance) "
               "SELECT tid, (tid - 1) / 10 + 1, 0 FROM generate_series(1, %d) AS tid",
               10 * scale);
    strv_pushf(&v,
               "INSERT INTO pgbench_accounts (aid, bid, abalance, filler) "
               "SELECT aid, (aid - 1) / 100000 + 1, 0, '' "
               "FROM generate_series(1, %lld) AS aid",
               100000LL * scale);
    strv_push(&v, "VACUUM ANALYZE pgbench_branches, pgbench_tellers, pgbench_accounts, "
                  "pgbench_history");
    strv_push(&v, "ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid)");
    strv_push(&v, "ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid)");
    strv_push(&v, "ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid)");
    return v;
}

const struct sql_db_ops sql_db_postgres = {
    .name = "postgres",
    .dollar_params = true,
    .default_user = "postgres",
    .default_database = "postgres",
    .connect_start = pg_connect_start,
    .fd = pg_fd,
    .prepare_start = pg_prepare_start,
    .exec_start = pg_exec_start,
    .query_start = pg_query_start,
    .cont = pg_cont,
    .result = pg_result,
    .in_tx = pg_in_tx,
    .close = pg_close,
    .tpcb_init_sql = pg_tpcb_init_sql,
};
