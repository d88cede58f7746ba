/* mariadb.c — MariaDB and MySQL for the sql client through MariaDB Connector/C's
 * non-blocking API (db.h): mysql_real_connect_start / _cont, mysql_stmt_prepare_start,
 * mysql_stmt_execute_start then mysql_stmt_store_result_start and
 * mysql_stmt_free_result_start for statements that return rows, mysql_real_query_start
 * for plain queries. Each start and cont call returns the events to wait for (MYSQL_WAIT_);
 * an operation of several library calls is chained here, so the caller sees one.
 * Errors are classed by error number, then SQLSTATE. */
#include "sql/db.h"

#include "sql/script.h"
#include "util/util.h"

#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum op {
    OP_NONE,
    OP_CONNECT,
    OP_PREPARE,
    OP_EXECUTE,
    OP_STORE_STMT,
    OP_FREE_STMT,
    OP_QUERY,
    OP_STORE
};

struct sql_conn {
    MYSQL *m;
    enum op op;
    int wait; /* the MYSQL_WAIT_* asked for */
    MYSQL_STMT **stmts;
    bool *plain; /* statement i runs as a plain query (the server cannot prepare it) */
    char **text; /* its SQL, for plain ones */
    int nstmts;
    MYSQL_STMT *cur;
    int64_t vals[SQL_PARAMS_MAX];
    MYSQL_BIND bind[SQL_PARAMS_MAX];
    struct sql_res res;
};

static void set_msg(struct sql_res *r, const char *msg)
{
    snprintf(r->msg, sizeof(r->msg), "%s", msg && *msg ? msg : "unknown error");
    r->msg[strcspn(r->msg, "\n")] = 0;
}

static enum sql_err class_of(unsigned no, const char *state, bool connecting)
{
    switch (no) {
    case ER_LOCK_DEADLOCK:
        return SQL_ERR_DEADLOCK;
    case ER_LOCK_WAIT_TIMEOUT:
    case ER_STATEMENT_TIMEOUT:
        return SQL_ERR_TIMEOUT;
    case ER_CHECKREAD: /* the record changed since it was read (snapshot isolation) */
        return SQL_ERR_SERIALIZATION;
    case ER_ACCESS_DENIED_ERROR:
    case ER_DBACCESS_DENIED_ERROR:
    case ER_BAD_DB_ERROR:
        return SQL_ERR_AUTH;
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_UNKNOWN_HOST:
        return connecting ? SQL_ERR_CONNECT : SQL_ERR_LOST;
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
        return connecting ? SQL_ERR_CONNECT : SQL_ERR_LOST;
    default:
        break;
    }
    if (!strncmp(state, "40001", 5))
        return SQL_ERR_DEADLOCK; /* MySQL reports deadlocks as 40001 */
    if (!strncmp(state, "23", 2))
        return SQL_ERR_CONSTRAINT;
    if (!strncmp(state, "42", 2))
        return SQL_ERR_SYNTAX;
    if (!strncmp(state, "08", 2))
        return connecting ? SQL_ERR_CONNECT : SQL_ERR_LOST;
    if (!strncmp(state, "28", 2))
        return SQL_ERR_AUTH;
    return connecting ? SQL_ERR_CONNECT : SQL_ERR_OTHER;
}

/* The error of the connection (stmt NULL) or of a statement: its class and
 * message; the operation ends. */
static int failed(struct sql_conn *c, MYSQL_STMT *stmt)
{
    unsigned no = stmt ? mysql_stmt_errno(stmt) : mysql_errno(c->m);
    const char *state = stmt ? mysql_stmt_sqlstate(stmt) : mysql_sqlstate(c->m);
    c->res.err = class_of(no, state ? state : "", c->op == OP_CONNECT);
    snprintf(c->res.sqlstate, sizeof(c->res.sqlstate), "%s", state ? state : "");
    set_msg(&c->res, stmt ? mysql_stmt_error(stmt) : mysql_error(c->m));
    enum op op = c->op;
    c->op = OP_NONE;
    /* a broken connection is unusable; a statement's error is the transaction's */
    return op == OP_CONNECT || c->res.err == SQL_ERR_LOST ? SQL_WANT_FAIL : SQL_DONE;
}

static int want(struct sql_conn *c, int status)
{
    c->wait = status;
    int w = 0;
    if (status & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT))
        w |= SQL_WANT_READ;
    if (status & MYSQL_WAIT_WRITE)
        w |= SQL_WANT_WRITE;
    return w ? w : SQL_WANT_READ; /* a timeout alone: the caller's own limits apply */
}

static void op_begin(struct sql_conn *c, enum op op)
{
    c->op = op;
    c->res = (struct sql_res){.err = SQL_OK};
}

static int mdb_connect_start(const struct sql_target *t, struct sql_conn **out)
{
    struct sql_conn *c = xcalloc(1, sizeof(*c));
    *out = c;
    op_begin(c, OP_CONNECT);
    c->m = mysql_init(NULL);
    if (!c->m) {
        c->res.err = SQL_ERR_CONNECT;
        set_msg(&c->res, "out of memory");
        return SQL_WANT_FAIL;
    }
    unsigned timeout = t->connect_timeout_s > 0 ? (unsigned)t->connect_timeout_s : 0;
    mysql_options(c->m, MYSQL_OPT_NONBLOCK, 0);
    if (timeout)
        mysql_options(c->m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_options(c->m, MYSQL_READ_DEFAULT_GROUP, NULL);
    char *end = NULL;
    unsigned long port = t->port ? strtoul(t->port, &end, 10) : 3306;
    if (t->port && (!*t->port || *end || port > 65535)) {
        c->res.err = SQL_ERR_CONNECT;
        set_msg(&c->res, "the port is not a number");
        return SQL_WANT_FAIL;
    }
    MYSQL *ret = NULL;
    int st = mysql_real_connect_start(&ret, c->m, t->host, t->user ? t->user : "root", t->password,
                                      t->database, (unsigned)port, NULL, 0);
    if (st)
        return want(c, st);
    return ret ? (c->op = OP_NONE, SQL_DONE) : failed(c, NULL);
}

static int mdb_fd(const struct sql_conn *c)
{
    return c && c->m ? (int)mysql_get_socket(c->m) : -1;
}

static void grow(struct sql_conn *c, int id)
{
    if (id < c->nstmts)
        return;
    int n = id + 8;
    c->stmts = xrealloc(c->stmts, (size_t)n * sizeof(*c->stmts));
    c->plain = xrealloc(c->plain, (size_t)n * sizeof(*c->plain));
    c->text = xrealloc(c->text, (size_t)n * sizeof(*c->text));
    for (int i = c->nstmts; i < n; i++) {
        c->stmts[i] = NULL;
        c->plain[i] = false;
        c->text[i] = NULL;
    }
    c->nstmts = n;
}

/* ---- statements ---------------------------------------------------------------------------- */

static int stmt_free_step(struct sql_conn *c, int st, my_bool fr)
{
    if (st)
        return want(c, st);
    (void)fr;
    c->op = OP_NONE;
    return SQL_DONE;
}

/* After store_result: the rows counted, the result freed. */
static int stmt_stored(struct sql_conn *c, int st, int rc)
{
    if (st)
        return want(c, st);
    if (rc)
        return failed(c, c->cur);
    c->res.rows = mysql_stmt_num_rows(c->cur);
    my_bool fr = 0;
    c->op = OP_FREE_STMT;
    st = mysql_stmt_free_result_start(&fr, c->cur);
    return stmt_free_step(c, st, fr);
}

static int stmt_executed(struct sql_conn *c, int st, int rc)
{
    if (st)
        return want(c, st);
    if (rc)
        return failed(c, c->cur);
    if (mysql_stmt_field_count(c->cur) == 0) {
        c->res.rows = mysql_stmt_affected_rows(c->cur);
        c->op = OP_NONE;
        return SQL_DONE;
    }
    c->op = OP_STORE_STMT;
    st = mysql_stmt_store_result_start(&rc, c->cur);
    return stmt_stored(c, st, rc);
}

/* A plain query's result: rows counted and freed (it is buffered whole). */
static int query_stored(struct sql_conn *c, int st, MYSQL_RES *res)
{
    if (st)
        return want(c, st);
    if (!res && mysql_errno(c->m))
        return failed(c, NULL);
    c->res.rows = res ? mysql_num_rows(res) : 0;
    mysql_free_result(res);
    c->op = OP_NONE;
    return SQL_DONE;
}

static int query_done(struct sql_conn *c, int st, int rc)
{
    if (st)
        return want(c, st);
    if (rc)
        return failed(c, NULL);
    if (mysql_field_count(c->m) == 0) {
        c->res.rows = mysql_affected_rows(c->m);
        c->op = OP_NONE;
        return SQL_DONE;
    }
    MYSQL_RES *res = NULL;
    c->op = OP_STORE;
    st = mysql_store_result_start(&res, c->m);
    return query_stored(c, st, res);
}

static int prepared(struct sql_conn *c, int st, int rc, int id)
{
    if (st)
        return want(c, st);
    if (rc && mysql_stmt_errno(c->cur) == ER_UNSUPPORTED_PS) {
        c->plain[id] = true; /* BEGIN and the like on older servers: sent as text */
        c->op = OP_NONE;
        return SQL_DONE;
    }
    if (rc)
        return failed(c, c->cur);
    c->op = OP_NONE;
    return SQL_DONE;
}

static int mdb_prepare_start(struct sql_conn *c, int id, const char *sql, int nparams)
{
    (void)nparams;
    grow(c, id);
    op_begin(c, OP_PREPARE);
    if (!c->stmts[id] && !(c->stmts[id] = mysql_stmt_init(c->m)))
        return failed(c, NULL);
    free(c->text[id]);
    c->text[id] = xstrdup(sql);
    c->cur = c->stmts[id];
    int rc = 0;
    int st = mysql_stmt_prepare_start(&rc, c->cur, sql, strlen(sql));
    return prepared(c, st, rc, id);
}

static int mdb_query_start(struct sql_conn *c, const char *sql)
{
    int rc = 0;
    op_begin(c, OP_QUERY);
    int st = mysql_real_query_start(&rc, c->m, sql, strlen(sql));
    return query_done(c, st, rc);
}

static int mdb_exec_start(struct sql_conn *c, int id, int nparams, const int64_t *values)
{
    if (id >= c->nstmts || !c->stmts[id]) {
        op_begin(c, OP_EXECUTE);
        c->res.err = SQL_ERR_OTHER;
        set_msg(&c->res, "statement not prepared");
        c->op = OP_NONE;
        return SQL_DONE;
    }
    if (c->plain[id])
        return mdb_query_start(c, c->text[id]);
    op_begin(c, OP_EXECUTE);
    c->cur = c->stmts[id];
    if (nparams > 0) {
        memset(c->bind, 0, (size_t)nparams * sizeof(*c->bind));
        for (int i = 0; i < nparams; i++) {
            c->vals[i] = values[i];
            c->bind[i].buffer_type = MYSQL_TYPE_LONGLONG;
            c->bind[i].buffer = &c->vals[i];
        }
        if (mysql_stmt_bind_param(c->cur, c->bind))
            return failed(c, c->cur);
    }
    int rc = 0;
    int st = mysql_stmt_execute_start(&rc, c->cur);
    return stmt_executed(c, st, rc);
}

static int mdb_cont(struct sql_conn *c)
{
    int ev = c->wait & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT);
    int rc = 0;
    my_bool fr = 0;
    MYSQL_RES *res = NULL;
    MYSQL *ret = NULL;
    int st = 0; /* evaluated before the outcome it sets is read */
    switch (c->op) {
    case OP_CONNECT: {
        st = mysql_real_connect_cont(&ret, c->m, ev);
        if (st)
            return want(c, st);
        return ret ? (c->op = OP_NONE, SQL_DONE) : failed(c, NULL);
    }
    case OP_PREPARE: {
        int id = 0;
        while (id < c->nstmts && c->stmts[id] != c->cur)
            id++;
        st = mysql_stmt_prepare_cont(&rc, c->cur, ev);
        return prepared(c, st, rc, id);
    }
    case OP_EXECUTE:
        st = mysql_stmt_execute_cont(&rc, c->cur, ev);
        return stmt_executed(c, st, rc);
    case OP_STORE_STMT:
        st = mysql_stmt_store_result_cont(&rc, c->cur, ev);
        return stmt_stored(c, st, rc);
    case OP_FREE_STMT:
        st = mysql_stmt_free_result_cont(&fr, c->cur, ev);
        return stmt_free_step(c, st, fr);
    case OP_QUERY:
        st = mysql_real_query_cont(&rc, c->m, ev);
        return query_done(c, st, rc);
    case OP_STORE:
        st = mysql_store_result_cont(&res, c->m, ev);
        return query_stored(c, st, res);
    case OP_NONE:
        break;
    }
    /* nothing running: the socket woke on an idle connection (the server closed it) */
    char b;
    ssize_t n = recv(mdb_fd(c), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        c->res.err = SQL_ERR_LOST;
        set_msg(&c->res, "the server closed the connection");
        return SQL_WANT_FAIL;
    }
    return SQL_WANT_READ;
}

static void mdb_result(struct sql_conn *c, struct sql_res *res)
{
    *res = c->res;
}

static bool mdb_in_tx(const struct sql_conn *c)
{
    unsigned status = 0;
    if (mariadb_get_infov(c->m, MARIADB_CONNECTION_SERVER_STATUS, &status))
        return false;
    return status & SERVER_STATUS_IN_TRANS;
}

static void mdb_close(struct sql_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nstmts; i++) {
        if (c->stmts[i])
            mysql_stmt_close(c->stmts[i]);
        free(c->text[i]);
    }
    free(c->stmts);
    free(c->plain);
    free(c->text);
    if (c->m)
        mysql_close(c->m);
    free(c);
}

static char **mdb_tpcb_init_sql(int scale)
{
    char **v = NULL;
    strv_push(&v, "DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_history, "
                  "pgbench_tellers");
    strv_push(&v, "CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, "
                  "mtime timestamp NULL, filler char(22)) ENGINE = InnoDB");
    strv_push(&v, "CREATE TABLE pgbench_tellers (tid int NOT NULL PRIMARY KEY, bid int, "
                  "tbalance int, filler char(84)) ENGINE = InnoDB");
    strv_push(&v, "CREATE TABLE pgbench_accounts (aid int NOT NULL PRIMARY KEY, bid int, "
                  "abalance int, filler char(84)) ENGINE = InnoDB");
    strv_push(&v, "CREATE TABLE pgbench_branches (bid int NOT NULL PRIMARY KEY, bbalance int, "
                  "filler char(88)) ENGINE = InnoDB");
    /* rows from the built-in SEQUENCE engine, in key order */
    strv_pushf(&v, "INSERT INTO pgbench_branches (bid, bbalance) SELECT seq, 0 FROM seq_1_to_%d",
               scale);
    strv_pushf(&v,
               "INSERT INTO pgbench_tellers (tid, bid, tbalance) "
               "SELECT seq, (seq - 1) DIV 10 + 1, 0 FROM seq_1_to_%d",
               10 * scale);
    strv_pushf(&v,
               "INSERT INTO pgbench_accounts (aid, bid, abalance, filler) "
               "SELECT seq, (seq - 1) DIV 100000 + 1, 0, '' FROM seq_1_to_%lld",
               100000LL * scale);
    strv_push(&v, "ANALYZE TABLE pgbench_branches, pgbench_tellers, pgbench_accounts, "
                  "pgbench_history");
    return v;
}

const struct sql_db_ops sql_db_mariadb = {
    .name = "mariadb",
    .dollar_params = false,
    .default_user = "root",
    .default_database = "sonde",
    .connect_start = mdb_connect_start,
    .fd = mdb_fd,
    .prepare_start = mdb_prepare_start,
    .exec_start = mdb_exec_start,
    .query_start = mdb_query_start,
    .cont = mdb_cont,
    .result = mdb_result,
    .in_tx = mdb_in_tx,
    .close = mdb_close,
    .tpcb_init_sql = mdb_tpcb_init_sql,
};
