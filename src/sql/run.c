/* run.c — the sql client's load loop (run.h). */
#include "sql/run.h"

#include "util/hdr.h"
#include "util/log.h"
#include "util/rng.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define NS_PER_S        1000000000LL
#define TICK_NS         (100 * 1000000LL) /* the longest sleep of a worker */
#define DRAIN_NS        (10 * NS_PER_S)   /* in-flight transactions after the end */
#define BACKOFF_MIN_NS  (50 * 1000000LL)
#define BACKOFF_MAX_NS  NS_PER_S
#define DUE_QUEUE_MAX   (1u << 20)
#define HDR_HIGHEST     (3600 * NS_PER_S)
#define SEC_SIGFIGS     2
#define CONNS_PER_EVENT 256

enum cstate { C_DOWN, C_CONNECTING, C_PREPARING, C_IDLE, C_SLEEP, C_EXEC, C_ROLLBACK };

struct worker;

struct conn {
    struct worker *w;
    struct sql_conn *db;
    int fd;      /* registered with epoll, -1: none */
    uint32_t ev; /* the events registered */
    enum cstate st;
    int prep_next;
    bool first_connect; /* not a reconnect */
    int64_t connect_t0, wake, backoff;
    /* the transaction */
    bool in_txn;
    size_t script, cmd;
    int tries;
    int64_t t_due, t_sent, stmt_t0;
    struct rng rng;          /* its own stream: the parameters it draws */
    struct rng rng_at_start; /* a retry draws the same values */
    int64_t vars[SQL_VARS_MAX];
};

struct sec_slot {
    struct hdr *h;
    unsigned flushed; /* workers done with that second */
    int64_t p50, p99;
    uint64_t tx, err;
};

struct worker {
    struct sql_run *run;
    unsigned idx;
    pthread_t th;
    bool started;
    int ep;
    struct conn *conns;
    unsigned nconns;
    struct rng rng;
    /* open loop */
    int64_t next_due;
    int64_t *due;
    size_t due_head, due_n;
    uint64_t unsent;
    /* results */
    struct hdr *lat, *svc, *delay, *connect, **stmt;
    uint64_t ok, errors[SQL_ERR_COUNT], retries, reconnects, warm_tx;
    int64_t last_done;
    int64_t sec;       /* the second being filled, relative to the window */
    struct hdr *sec_h; /* its latencies */
    uint64_t sec_tx, sec_err;
    int64_t pv[SQL_PARAMS_MAX]; /* parameters of the statement being sent */
};

struct sql_run {
    struct sql_run_config cfg;
    char *host, *port, *user, *password, *database;
    int *stmt_base; /* per script: the id of its first statement */
    int nstmts;
    const struct sql_cmd **stmt_cmd; /* per statement id: the command */
    size_t *stmt_script;             /* per statement id: its script */
    double *cum_weight;
    pthread_t coord;
    bool coord_started;
    atomic_bool stop, done;
    _Atomic(const char *) phase;
    atomic_uint connected;
    atomic_int_fast64_t t_measure; /* 0 until every connection is ready */
    int64_t t_window, t_end;
    atomic_uint_fast64_t started_tx, progress_tx, progress_err;
    struct worker *w;
    pthread_mutex_t mu; /* the fields below */
    struct sec_slot *secs;
    size_t nsecs;
    int rc;
    char err[512];
};

/* ---- failures of the whole run ------------------------------------------------------------ */

static void run_fail(struct sql_run *r, int rc, const char *fmt, ...) SONDE_PRINTF(3, 4);
static void run_fail(struct sql_run *r, int rc, const char *fmt, ...)
{
    pthread_mutex_lock(&r->mu);
    if (!r->rc) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, sizeof(r->err), fmt, ap);
        va_end(ap);
        r->rc = rc;
    }
    pthread_mutex_unlock(&r->mu);
    atomic_store(&r->stop, true);
}

void sql_stmt_extra_name(size_t script, int stmt, char *buf, size_t n)
{
    snprintf(buf, n, "stmt_%zu_%d", script + 1, stmt + 1);
}

/* ---- per-second series ------------------------------------------------------------------- */

static struct sec_slot *slot_get(struct sql_run *r, int64_t sec)
{
    if ((size_t)sec >= r->nsecs) {
        size_t n = (size_t)sec + 16;
        r->secs = xrealloc(r->secs, n * sizeof(*r->secs));
        memset(r->secs + r->nsecs, 0, (n - r->nsecs) * sizeof(*r->secs));
        r->nsecs = n;
    }
    return &r->secs[sec];
}

/* The worker is done with its second w->sec: merged into the run's slot, which is
 * summarised once every worker has passed it. */
static void sec_flush(struct worker *w)
{
    struct sql_run *r = w->run;
    pthread_mutex_lock(&r->mu);
    struct sec_slot *s = slot_get(r, w->sec);
    s->tx += w->sec_tx;
    s->err += w->sec_err;
    if (hdr_count(w->sec_h)) {
        if (!s->h && hdr_init(1000, HDR_HIGHEST, SEC_SIGFIGS, &s->h) < 0)
            s->h = NULL;
        if (s->h)
            hdr_merge(s->h, w->sec_h);
    }
    if (++s->flushed == r->cfg.threads) {
        s->p50 = s->h ? hdr_percentile(s->h, 50) : -1;
        s->p99 = s->h ? hdr_percentile(s->h, 99) : -1;
        hdr_free(s->h);
        s->h = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    hdr_reset(w->sec_h);
    w->sec_tx = w->sec_err = 0;
}

/* Moves the worker's second forward to the one holding t. */
static void sec_advance(struct worker *w, int64_t t)
{
    int64_t sec = (t - w->run->t_window) / NS_PER_S;
    while (w->sec < sec) {
        sec_flush(w);
        w->sec++;
    }
}

/* ---- epoll --------------------------------------------------------------------------------- */

static void ep_want(struct conn *c, int want)
{
    struct worker *w = c->w;
    int fd = w->run->cfg.db->fd(c->db);
    uint32_t ev = ((want & SQL_WANT_READ) ? EPOLLIN : 0) | ((want & SQL_WANT_WRITE) ? EPOLLOUT : 0);
    if (fd != c->fd && c->fd >= 0) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        c->fd = -1;
    }
    if (fd < 0)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (c->fd < 0) {
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &e) == 0) {
            c->fd = fd;
            c->ev = ev;
        }
    } else if (ev != c->ev && epoll_ctl(w->ep, EPOLL_CTL_MOD, fd, &e) == 0)
        c->ev = ev;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    c->fd = -1;
    c->ev = 0;
    c->w->run->cfg.db->close(c->db);
    c->db = NULL;
}

/* ---- transactions ------------------------------------------------------------------------- */

static bool measuring(const struct sql_run *r, int64_t t)
{
    return t >= r->t_window;
}

static void conn_handle(struct conn *c, int rc, int64_t now);

/* The transaction ended (ok: err == SQL_OK) at t. */
static void txn_done(struct conn *c, enum sql_err err, int64_t t)
{
    struct worker *w = c->w;
    struct sql_run *r = w->run;
    c->in_txn = false;
    w->last_done = t;
    if (!measuring(r, c->t_due)) {
        w->warm_tx += err == SQL_OK;
        return;
    }
    sec_advance(w, t);
    if (err == SQL_OK) {
        w->ok++;
        hdr_record(w->lat, t - c->t_due);
        hdr_record(w->sec_h, t - c->t_due);
        if (w->svc)
            hdr_record(w->svc, t - c->t_sent);
    } else {
        w->errors[err]++;
        w->sec_err++;
        atomic_fetch_add_explicit(&r->progress_err, 1, memory_order_relaxed);
    }
    w->sec_tx++;
    atomic_fetch_add_explicit(&r->progress_tx, 1, memory_order_relaxed);
}

static void start_op(struct conn *c, enum cstate st, int rc, int64_t now)
{
    c->st = st;
    conn_handle(c, rc, now);
}

/* Runs the script from c->cmd: \set and \sleep here, a statement sent. */
static void txn_step(struct conn *c, int64_t now)
{
    struct worker *w = c->w;
    struct sql_run *r = w->run;
    const struct sql_script *s = r->cfg.scripts[c->script];
    char err[256];
    while (c->cmd < s->ncmds) {
        const struct sql_cmd *cmd = &s->cmds[c->cmd];
        int64_t v = 0;
        if (cmd->kind != SQL_CMD_STMT &&
            sql_expr_eval(cmd->expr, c->vars, &c->rng, &v, err, sizeof(err)) < 0) {
            run_fail(r, -EDOM, "%s:%d: %s", s->name, cmd->line, err);
            c->in_txn = false;
            c->st = C_IDLE;
            return;
        }
        if (cmd->kind == SQL_CMD_SET) {
            c->vars[cmd->var] = v;
            c->cmd++;
            continue;
        }
        if (cmd->kind == SQL_CMD_SLEEP) {
            c->cmd++;
            c->st = C_SLEEP;
            c->wake = now + (v > 0 ? v * cmd->unit_ns : 0);
            return;
        }
        for (int i = 0; i < cmd->nparams; i++)
            w->pv[i] = c->vars[cmd->params[i]];
        c->stmt_t0 = now;
        start_op(
            c, C_EXEC,
            r->cfg.db->exec_start(c->db, r->stmt_base[c->script] + cmd->stmt, cmd->nparams, w->pv),
            now);
        return;
    }
    txn_done(c, SQL_OK, now);
    c->st = C_SLEEP; /* think, then the next one */
    c->wake = now + (r->cfg.model == LG_CLOSED ? r->cfg.think_ns : 0);
}

static size_t pick_script(struct conn *c)
{
    const struct sql_run *r = c->w->run;
    if (r->cfg.nscripts == 1)
        return 0;
    double x = rng_unit(&c->rng) * r->cum_weight[r->cfg.nscripts - 1];
    size_t i = 0;
    while (i + 1 < r->cfg.nscripts && x >= r->cum_weight[i])
        i++;
    return i;
}

static void txn_begin(struct conn *c, int64_t due, int64_t now)
{
    struct worker *w = c->w;
    c->in_txn = true;
    c->script = pick_script(c);
    c->cmd = 0;
    c->tries = 1;
    c->t_due = due;
    c->t_sent = now;
    c->rng_at_start = c->rng;
    if (w->delay && measuring(w->run, due))
        hdr_record(w->delay, now - due);
    txn_step(c, now);
}

/* ---- connections ------------------------------------------------------------------------ */

static void conn_open(struct conn *c, int64_t now)
{
    struct sql_run *r = c->w->run;
    c->connect_t0 = now;
    c->prep_next = 0;
    start_op(c, C_CONNECTING, r->cfg.db->connect_start(&r->cfg.target, &c->db), now);
}

/* The connection is unusable: the transaction it carried fails with err, and it is
 * opened again after a backoff (setup failures end the run instead). */
static void conn_lost(struct conn *c, enum sql_err err, const struct sql_res *res, int64_t now)
{
    struct sql_run *r = c->w->run;
    if (!atomic_load(&r->t_measure)) {
        run_fail(r, err == SQL_ERR_AUTH ? -EACCES : -ECONNREFUSED, "cannot connect to %s: %s",
                 r->cfg.db->name, res->msg[0] ? res->msg : sql_err_name(err));
        conn_close(c);
        c->st = C_DOWN;
        c->wake = INT64_MAX;
        return;
    }
    if (c->in_txn)
        txn_done(c, err, now);
    conn_close(c);
    c->st = C_DOWN;
    c->backoff = c->backoff ? c->backoff * 2 : BACKOFF_MIN_NS;
    if (c->backoff > BACKOFF_MAX_NS)
        c->backoff = BACKOFF_MAX_NS;
    c->wake = now + c->backoff;
}

static void prepared(struct conn *c, const struct sql_res *res, int64_t now)
{
    struct worker *w = c->w;
    struct sql_run *r = w->run;
    if (res->err != SQL_OK) {
        /* the statement that failed: script and line */
        const struct sql_cmd *cmd = r->stmt_cmd[c->prep_next];
        const struct sql_script *s = r->cfg.scripts[r->stmt_script[c->prep_next]];
        run_fail(r, -EINVAL, "%s:%d: %s rejected the statement: %s", s->name, cmd->line,
                 r->cfg.db->name, res->msg);
        conn_close(c);
        c->st = C_DOWN;
        c->wake = INT64_MAX;
        return;
    }
    if (++c->prep_next < r->nstmts) {
        const struct sql_cmd *cmd = r->stmt_cmd[c->prep_next];
        start_op(c, C_PREPARING,
                 r->cfg.db->prepare_start(
                     c->db, c->prep_next,
                     r->cfg.db->dollar_params ? cmd->sql_dollar : cmd->sql_qmark, cmd->nparams),
                 now);
        return;
    }
    /* ready */
    if (c->first_connect) {
        c->first_connect = false;
        hdr_record(w->connect, now - c->connect_t0);
        atomic_fetch_add(&r->connected, 1);
    } else
        w->reconnects++;
    c->backoff = 0;
    c->st = C_IDLE;
}

static void connected(struct conn *c, int64_t now)
{
    struct sql_res ok = {.err = SQL_OK};
    c->prep_next = -1; /* prepared() moves to statement 0 */
    prepared(c, &ok, now);
}

static void exec_done(struct conn *c, const struct sql_res *res, int64_t now)
{
    struct worker *w = c->w;
    struct sql_run *r = w->run;
    const struct sql_script *s = r->cfg.scripts[c->script];
    const struct sql_cmd *cmd = &s->cmds[c->cmd];
    if (res->err == SQL_OK) {
        if (measuring(r, c->t_due))
            hdr_record(w->stmt[r->stmt_base[c->script] + cmd->stmt], now - c->stmt_t0);
        c->cmd++;
        txn_step(c, now);
        return;
    }
    bool retry = (res->err == SQL_ERR_SERIALIZATION || res->err == SQL_ERR_DEADLOCK) &&
                 c->tries < r->cfg.max_tries && !atomic_load(&r->stop);
    if (retry) {
        c->tries++;
        w->retries += measuring(r, c->t_due);
        c->cmd = 0;
        c->rng = c->rng_at_start;
    } else
        txn_done(c, res->err, now);
    if (r->cfg.db->in_tx(c->db)) {
        start_op(c, C_ROLLBACK, r->cfg.db->query_start(c->db, "ROLLBACK"), now);
        return;
    }
    if (retry) {
        txn_step(c, now);
        return;
    }
    c->st = C_IDLE;
}

/* What an operation's start or cont returned. */
static void conn_handle(struct conn *c, int rc, int64_t now)
{
    struct sql_run *r = c->w->run;
    struct sql_res res;
    if (rc & SQL_WANT_FAIL) {
        r->cfg.db->result(c->db, &res);
        conn_lost(c, res.err == SQL_OK ? SQL_ERR_LOST : res.err, &res, now);
        return;
    }
    if (rc != SQL_DONE) {
        ep_want(c, rc);
        return;
    }
    switch (c->st) {
    case C_CONNECTING:
        ep_want(c, SQL_WANT_READ);
        connected(c, now);
        break;
    case C_PREPARING:
        r->cfg.db->result(c->db, &res);
        prepared(c, &res, now);
        break;
    case C_EXEC:
        r->cfg.db->result(c->db, &res);
        exec_done(c, &res, now);
        break;
    case C_ROLLBACK:
        if (c->in_txn) /* a retry */
            txn_step(c, now);
        else
            c->st = C_IDLE;
        break;
    default:
        break;
    }
}

/* ---- the worker loop -------------------------------------------------------------------- */

static int64_t next_gap(struct worker *w)
{
    double rate = w->run->cfg.rate / w->run->cfg.threads;
    if (w->run->cfg.arrival == LG_CONSTANT)
        return (int64_t)(1e9 / rate);
    return (int64_t)(-log(rng_unit_open(&w->rng)) * 1e9 / rate);
}

/* Open loop: the due times up to now join the queue. */
static void schedule(struct worker *w, int64_t now, bool accept)
{
    while (w->next_due <= now) {
        if (accept && w->due_n < DUE_QUEUE_MAX) {
            w->due[(w->due_head + w->due_n) % DUE_QUEUE_MAX] = w->next_due;
            w->due_n++;
        } else if (accept)
            w->unsent++;
        w->next_due += next_gap(w);
    }
}

/* May a new transaction start? Counts it against max_tx. */
static bool may_start(struct sql_run *r, int64_t now)
{
    if (atomic_load_explicit(&r->stop, memory_order_relaxed) || now >= r->t_end)
        return false;
    if (!r->cfg.max_tx || !measuring(r, now))
        return true;
    return atomic_fetch_add(&r->started_tx, 1) < r->cfg.max_tx;
}

static void start_idle(struct worker *w, int64_t now)
{
    struct sql_run *r = w->run;
    for (unsigned i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if ((c->st == C_SLEEP || c->st == C_DOWN) && c->wake <= now) {
            if (c->st == C_DOWN && c->wake != INT64_MAX && !atomic_load(&r->stop))
                conn_open(c, now);
            else if (c->st == C_SLEEP && c->in_txn)
                txn_step(c, now);
            else if (c->st == C_SLEEP)
                c->st = C_IDLE;
        }
        if (c->st != C_IDLE)
            continue;
        if (r->cfg.model == LG_OPEN) {
            if (!w->due_n || !may_start(r, now))
                continue;
            int64_t due = w->due[w->due_head];
            w->due_head = (w->due_head + 1) % DUE_QUEUE_MAX;
            w->due_n--;
            txn_begin(c, due, now);
        } else if (may_start(r, now))
            txn_begin(c, now, now);
    }
}

static void scan_timeouts(struct worker *w, int64_t now)
{
    int64_t limit = w->run->cfg.tx_timeout_ns;
    for (unsigned i = 0; limit > 0 && i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->in_txn && (c->st == C_EXEC || c->st == C_ROLLBACK) && now - c->t_sent > limit) {
            struct sql_res res = {.err = SQL_ERR_TIMEOUT};
            snprintf(res.msg, sizeof(res.msg), "transaction timeout");
            conn_lost(c, SQL_ERR_TIMEOUT, &res, now); /* the only safe way out mid-statement */
        }
    }
}

/* Until when may the worker sleep? */
static int64_t next_wake(const struct worker *w, int64_t now)
{
    int64_t t = now + TICK_NS;
    for (unsigned i = 0; i < w->nconns; i++) {
        const struct conn *c = &w->conns[i];
        if ((c->st == C_SLEEP || c->st == C_DOWN) && c->wake < t)
            t = c->wake;
    }
    if (w->run->cfg.model == LG_OPEN && w->next_due < t)
        t = w->next_due;
    return t;
}

static bool busy(const struct worker *w)
{
    for (unsigned i = 0; i < w->nconns; i++)
        if (w->conns[i].in_txn)
            return true;
    return false;
}

static void poll_once(struct worker *w, int64_t until, int64_t *last_event)
{
    struct epoll_event evs[CONNS_PER_EVENT];
    int64_t now = mono_ns();
    int ms = 0;
    if (now - *last_event >= w->run->cfg.busy_poll_ns && until > now)
        ms = (int)((until - now + 999999) / 1000000);
    int n = epoll_wait(w->ep, evs, CONNS_PER_EVENT, ms);
    if (n <= 0)
        return;
    now = mono_ns();
    *last_event = now;
    for (int i = 0; i < n; i++) {
        struct conn *c = evs[i].data.ptr;
        if (c->db && c->st != C_IDLE && c->st != C_SLEEP && c->st != C_DOWN)
            conn_handle(c, w->run->cfg.db->cont(c->db), now);
        else if (c->db && c->st == C_IDLE) {
            /* a notice or the server closing an idle connection */
            int rc = w->run->cfg.db->cont(c->db);
            if (rc & SQL_WANT_FAIL)
                conn_handle(c, rc, now);
        }
    }
}

static bool all_ready(const struct worker *w)
{
    for (unsigned i = 0; i < w->nconns; i++)
        if (w->conns[i].st != C_IDLE)
            return false;
    return true;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct sql_run *r = w->run;
    int64_t last_event = 0;
    /* connect and prepare */
    int64_t now = mono_ns();
    for (unsigned i = 0; i < w->nconns; i++)
        conn_open(&w->conns[i], now);
    while (!atomic_load(&r->stop) && !all_ready(w))
        poll_once(w, mono_ns() + TICK_NS, &last_event);
    /* wait for the others */
    while (!atomic_load(&r->stop) && !atomic_load(&r->t_measure))
        poll_once(w, mono_ns() + 1000000, &last_event);
    int64_t t0 = atomic_load(&r->t_measure);
    w->next_due = t0;
    bool stopping = false;
    while (t0) {
        now = mono_ns();
        stopping = stopping || atomic_load(&r->stop) || now >= r->t_end ||
                   (r->cfg.max_tx && atomic_load(&r->started_tx) >= r->cfg.max_tx);
        if (r->cfg.model == LG_OPEN)
            schedule(w, now, !stopping);
        if (!stopping)
            start_idle(w, now);
        else {
            for (unsigned i = 0; i < w->nconns; i++) /* a \sleep inside a transaction */
                if (w->conns[i].st == C_SLEEP && w->conns[i].in_txn && w->conns[i].wake <= now)
                    txn_step(&w->conns[i], now);
        }
        scan_timeouts(w, now);
        if (stopping && (!busy(w) || atomic_load(&r->stop) ||
                         now >= (r->t_end < INT64_MAX - DRAIN_NS ? r->t_end : now) + DRAIN_NS))
            break;
        poll_once(w, next_wake(w, now), &last_event);
    }
    if (w->due_n)
        w->unsent += w->due_n;
    if (t0 && w->last_done >= r->t_window) /* the seconds up to the last transaction */
        sec_advance(w, w->last_done);
    for (unsigned i = 0; i < w->nconns; i++)
        conn_close(&w->conns[i]);
    return NULL;
}

/* ---- setup: the pgbench tables ----------------------------------------------------------- */

static int setup_exec(struct sql_run *r, struct sql_conn *c, const char *sql, struct sql_res *res)
{
    return sql_block(r->cfg.db, c, r->cfg.db->query_start(c, sql), 0, &r->stop, res);
}

static int setup_tables(struct sql_run *r)
{
    const struct sql_db_ops *db = r->cfg.db;
    struct sql_conn *c = NULL;
    struct sql_res res;
    int rc = sql_block(
        db, c, db->connect_start(&r->cfg.target, &c),
        (int64_t)(r->cfg.target.connect_timeout_s > 0 ? r->cfg.target.connect_timeout_s : 30) *
            NS_PER_S,
        &r->stop, &res);
    if (rc != SQL_DONE) {
        run_fail(r, res.err == SQL_ERR_AUTH ? -EACCES : -ECONNREFUSED, "cannot connect to %s: %s",
                 db->name, res.msg);
        db->close(c);
        return -1;
    }
    bool init = r->cfg.init == SQL_INIT_ALWAYS;
    if (r->cfg.init == SQL_INIT_MISSING) {
        char *q =
            xasprintf("SELECT 1 FROM pgbench_branches HAVING count(*) = %" PRId64, r->cfg.scale);
        rc = setup_exec(r, c, q, &res);
        free(q);
        init = rc != SQL_DONE || res.err != SQL_OK || res.rows != 1;
        if (rc != SQL_DONE) { /* the error may have closed it */
            db->close(c);
            c = NULL;
            rc = sql_block(db, c, db->connect_start(&r->cfg.target, &c), 30 * NS_PER_S, &r->stop,
                           &res);
        }
    }
    if (init && rc == SQL_DONE) {
        atomic_store(&r->phase, "init");
        char **stmts = db->tpcb_init_sql((int)r->cfg.scale);
        for (size_t i = 0; stmts[i] && rc == SQL_DONE; i++) {
            rc = setup_exec(r, c, stmts[i], &res);
            if (rc == SQL_DONE && res.err != SQL_OK)
                rc = SQL_WANT_FAIL;
            if (rc != SQL_DONE)
                run_fail(r, -EIO, "creating pgbench's tables (scale %" PRId64 "): %s: %s",
                         r->cfg.scale, stmts[i], res.msg);
        }
        strv_free(stmts);
    }
    db->close(c);
    return rc == SQL_DONE ? 0 : -1;
}

int sql_setup(const struct sql_run_config *cfg, char *err, size_t errlen)
{
    struct sql_run r = {.cfg = *cfg};
    pthread_mutex_init(&r.mu, NULL);
    atomic_init(&r.phase, "setup");
    int rc = cfg->init == SQL_INIT_NEVER ? 0 : setup_tables(&r);
    if (rc < 0)
        snprintf(err, errlen, "%s", r.err);
    pthread_mutex_destroy(&r.mu);
    return rc < 0 ? (r.rc ? r.rc : -EIO) : 0;
}

static void *coord_main(void *arg)
{
    struct sql_run *r = arg;
    if (r->cfg.init != SQL_INIT_NEVER) {
        atomic_store(&r->phase, "setup");
        if (setup_tables(r) < 0) {
            atomic_store(&r->done, true);
            return NULL;
        }
    }
    atomic_store(&r->phase, "connect");
    for (unsigned i = 0; i < r->cfg.threads; i++) {
        if (pthread_create(&r->w[i].th, NULL, worker_main, &r->w[i]) != 0) {
            run_fail(r, -EAGAIN, "cannot start a worker thread");
            break;
        }
        r->w[i].started = true;
    }
    while (!atomic_load(&r->stop) && atomic_load(&r->connected) < r->cfg.connections)
        sleep_ns(1000000);
    if (!atomic_load(&r->stop)) {
        int64_t t = mono_ns();
        r->t_window = t + r->cfg.warmup_ns;
        r->t_end = r->cfg.duration_ns > 0 ? r->t_window + r->cfg.duration_ns : INT64_MAX;
        atomic_store(&r->phase, r->cfg.warmup_ns > 0 ? "warm-up" : "run");
        atomic_store(&r->t_measure, t);
    }
    for (unsigned i = 0; i < r->cfg.threads; i++)
        if (r->w[i].started)
            pthread_join(r->w[i].th, NULL);
    atomic_store(&r->phase, "done");
    atomic_store(&r->done, true);
    return NULL;
}

/* ---- the API ------------------------------------------------------------------------------- */

static int worker_init(struct sql_run *r, struct worker *w, unsigned idx, unsigned nconns)
{
    w->run = r;
    w->idx = idx;
    w->nconns = nconns;
    w->conns = xcalloc(nconns, sizeof(*w->conns));
    rng_seed(&w->rng, ~(r->cfg.seed * 0x9e3779b97f4a7c15ULL + idx + 1)); /* arrivals */
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->ep < 0)
        return -errno;
    int sig = 3;
    int rc = hdr_init(1000, HDR_HIGHEST, sig, &w->lat);
    rc = rc ? rc : hdr_init(1000, HDR_HIGHEST, sig, &w->connect);
    rc = rc ? rc : hdr_init(1000, HDR_HIGHEST, SEC_SIGFIGS, &w->sec_h);
    if (rc == 0 && r->cfg.model == LG_OPEN) {
        rc = hdr_init(1000, HDR_HIGHEST, sig, &w->svc);
        rc = rc ? rc : hdr_init(1, HDR_HIGHEST, sig, &w->delay);
        w->due = xcalloc(DUE_QUEUE_MAX, sizeof(*w->due));
    }
    w->stmt = xcalloc((size_t)r->nstmts, sizeof(*w->stmt));
    for (int i = 0; rc == 0 && i < r->nstmts; i++)
        rc = hdr_init(1000, HDR_HIGHEST, sig, &w->stmt[i]);
    for (unsigned i = 0; i < nconns; i++) {
        struct conn *c = &w->conns[i];
        c->w = w;
        c->fd = -1;
        c->first_connect = true;
        c->vars[SQL_VAR_SCALE] = r->cfg.scale;
        c->vars[SQL_VAR_CLIENT] = 0; /* set below: global numbering */
    }
    return rc;
}

static int check_config(const struct sql_run_config *c, char *err, size_t n)
{
    const char *why = !c->db         ? "no database engine"
                      : !c->nscripts ? "no script"
                      : c->threads < 1 || c->connections < c->threads
                          ? "connections must be at least threads (>= 1)"
                      : c->model == LG_OPEN && !(c->rate > 0) ? "open loop needs a rate above 0"
                      : c->duration_ns <= 0 && !c->max_tx ? "set a duration or a transaction count"
                      : c->max_tries < 1                  ? "max_tries must be at least 1"
                      : c->scale < 1                      ? "scale must be at least 1"
                                                          : NULL;
    if (why)
        snprintf(err, n, "%s", why);
    return why ? -EINVAL : 0;
}

int sql_run_start(const struct sql_run_config *cfg, struct sql_run **out, char *err, size_t errlen)
{
    int rc = check_config(cfg, err, errlen);
    if (rc < 0)
        return rc;
    struct sql_run *r = xcalloc(1, sizeof(*r));
    r->cfg = *cfg;
    r->host = xstrdup(cfg->target.host);
    r->port = xstrdup(cfg->target.port);
    r->user = xstrdup(cfg->target.user);
    r->password = xstrdup(cfg->target.password);
    r->database = xstrdup(cfg->target.database);
    r->cfg.target = (struct sql_target){r->host,     r->port,     r->user,
                                        r->password, r->database, cfg->target.connect_timeout_s};
    pthread_mutex_init(&r->mu, NULL);
    atomic_init(&r->phase, "start");
    r->stmt_base = xcalloc(cfg->nscripts, sizeof(int));
    r->cum_weight = xcalloc(cfg->nscripts, sizeof(double));
    for (size_t i = 0; i < cfg->nscripts; i++) {
        r->stmt_base[i] = r->nstmts;
        r->nstmts += cfg->scripts[i]->nstmts;
        r->cum_weight[i] = (i ? r->cum_weight[i - 1] : 0) + cfg->scripts[i]->weight;
    }
    r->stmt_cmd = xcalloc((size_t)r->nstmts, sizeof(*r->stmt_cmd));
    r->stmt_script = xcalloc((size_t)r->nstmts, sizeof(*r->stmt_script));
    for (size_t i = 0; i < cfg->nscripts; i++)
        for (size_t k = 0; k < cfg->scripts[i]->ncmds; k++) {
            const struct sql_cmd *cmd = &cfg->scripts[i]->cmds[k];
            if (cmd->kind == SQL_CMD_STMT) {
                r->stmt_cmd[r->stmt_base[i] + cmd->stmt] = cmd;
                r->stmt_script[r->stmt_base[i] + cmd->stmt] = i;
            }
        }
    r->w = xcalloc(cfg->threads, sizeof(*r->w));
    unsigned client = cfg->client_base;
    for (unsigned i = 0; i < cfg->threads && rc == 0; i++) {
        unsigned n = cfg->connections / cfg->threads + (i < cfg->connections % cfg->threads);
        rc = worker_init(r, &r->w[i], i, n);
        for (unsigned k = 0; k < n; k++, client++) {
            r->w[i].conns[k].vars[SQL_VAR_CLIENT] = client;
            rng_seed(&r->w[i].conns[k].rng, cfg->seed * 0x9e3779b97f4a7c15ULL + client + 1);
        }
    }
    if (rc == 0 && pthread_create(&r->coord, NULL, coord_main, r) != 0)
        rc = -EAGAIN;
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the run: %s", strerror(-rc));
        sql_run_free(r);
        return rc;
    }
    r->coord_started = true;
    *out = r;
    return 0;
}

bool sql_run_done(struct sql_run *r)
{
    return !r || atomic_load(&r->done);
}

const char *sql_run_progress(struct sql_run *r, struct lg_progress *out)
{
    memset(out, 0, sizeof(*out));
    int64_t t0 = atomic_load(&r->t_measure);
    out->elapsed_ns = t0 ? mono_ns() - t0 : 0;
    out->requests = atomic_load_explicit(&r->progress_tx, memory_order_relaxed);
    out->errors = atomic_load_explicit(&r->progress_err, memory_order_relaxed);
    out->warming_up = t0 && mono_ns() < r->t_window;
    out->p99_last_s = -1;
    const char *phase = atomic_load(&r->phase);
    if (t0 && !strcmp(phase, "warm-up") && !out->warming_up)
        phase = "run";
    return phase;
}

void sql_run_stop(struct sql_run *r)
{
    if (r)
        atomic_store(&r->stop, true);
}

static int add_hdr(struct lg_stats *st, const char *name, struct hdr *h)
{
    return hdr_count(h) ? lg_extra_add_hdr(st, name, h) : (hdr_free(h), 0);
}

/* The workers' results merged into st. */
static int merge(struct sql_run *r, struct lg_stats *st)
{
    uint64_t errors[SQL_ERR_COUNT] = {0}, retries = 0, reconnects = 0, warm = 0, unsent = 0;
    struct hdr *connect = NULL, **stmt = xcalloc((size_t)r->nstmts, sizeof(*stmt));
    int64_t last = r->t_window;
    int rc = hdr_init(1000, HDR_HIGHEST, 3, &st->latency);
    rc = rc ? rc : hdr_init(1000, HDR_HIGHEST, 3, &connect);
    if (rc == 0 && r->cfg.model == LG_OPEN) {
        rc = hdr_init(1000, HDR_HIGHEST, 3, &st->service);
        rc = rc ? rc : hdr_init(1, HDR_HIGHEST, 3, &st->issue_delay);
    }
    for (int i = 0; rc == 0 && i < r->nstmts; i++)
        rc = hdr_init(1000, HDR_HIGHEST, 3, &stmt[i]);
    for (unsigned i = 0; rc == 0 && i < r->cfg.threads; i++) {
        struct worker *w = &r->w[i];
        hdr_merge(st->latency, w->lat);
        hdr_merge(connect, w->connect);
        if (st->service) {
            hdr_merge(st->service, w->svc);
            hdr_merge(st->issue_delay, w->delay);
        }
        for (int k = 0; k < r->nstmts; k++)
            hdr_merge(stmt[k], w->stmt[k]);
        st->ok += w->ok;
        for (int e = 0; e < SQL_ERR_COUNT; e++)
            errors[e] += w->errors[e];
        retries += w->retries;
        reconnects += w->reconnects;
        warm += w->warm_tx;
        unsent += w->unsent;
        last = w->last_done > last ? w->last_done : last;
    }
    if (rc == 0 && !st->service) { /* closed loop: service time is the latency */
        rc = hdr_init(1000, HDR_HIGHEST, 3, &st->service);
        rc = rc ? rc : hdr_merge(st->service, st->latency);
    }
    uint64_t failed = 0;
    for (int e = 0; e < SQL_ERR_COUNT; e++)
        failed += errors[e];
    st->requests = st->ok + failed;
    st->connects = hdr_count(connect) + reconnects;
    st->unsent = unsent;
    /* the window: up to the end, or to the last transaction when they ran past it */
    int64_t end = r->t_end < INT64_MAX && r->t_end > last ? r->t_end : last;
    st->window_ns = end > r->t_window ? end - r->t_window : 0;
    st->achieved_rate = st->window_ns ? (double)st->requests * 1e9 / (double)st->window_ns : 0;
    for (int e = 0; rc == 0 && e < SQL_ERR_COUNT; e++) {
        char name[LG_EXTRA_NAME_MAX];
        snprintf(name, sizeof(name), "errors_%s", sql_err_name(e));
        rc = lg_extra_add_counter(st, name, errors[e]);
    }
    rc = rc ? rc : lg_extra_add_counter(st, "retries", retries);
    rc = rc ? rc : lg_extra_add_counter(st, "reconnects", reconnects);
    rc = rc ? rc : lg_extra_add_counter(st, "warmup_transactions", warm);
    rc = rc ? rc : add_hdr(st, "connect_time", connect);
    connect = NULL;
    for (size_t s = 0; s < r->cfg.nscripts; s++)
        for (int k = 0; k < r->cfg.scripts[s]->nstmts; k++) {
            char name[LG_EXTRA_NAME_MAX];
            sql_stmt_extra_name(s, k, name, sizeof(name));
            int id = r->stmt_base[s] + k;
            if (rc == 0)
                rc = add_hdr(st, name, stmt[id]);
            else
                hdr_free(stmt[id]);
            stmt[id] = NULL;
        }
    hdr_free(connect);
    free(stmt);
    return rc;
}

static void collect_secs(struct sql_run *r, struct lg_stats *st)
{
    size_t n = st->window_ns > 0 ? (size_t)((st->window_ns + NS_PER_S - 1) / NS_PER_S) : 0;
    if (n > r->nsecs)
        n = r->nsecs;
    st->secs = xcalloc(n ? n : 1, sizeof(*st->secs));
    st->nsecs = n;
    st->window_start_wall_ns = wall_ns() - (mono_ns() - r->t_window);
    for (size_t i = 0; i < n; i++) {
        struct sec_slot *s = &r->secs[i];
        st->secs[i].requests = s->tx;
        st->secs[i].errors = s->err;
        bool final = s->flushed == r->cfg.threads;
        st->secs[i].p50_ns = final ? s->p50 : -1;
        st->secs[i].p99_ns = final ? s->p99 : -1;
    }
}

int sql_run_wait(struct sql_run *r, struct lg_stats **out, char *err, size_t errlen)
{
    if (r->coord_started) {
        pthread_join(r->coord, NULL);
        r->coord_started = false;
    }
    if (r->rc) {
        snprintf(err, errlen, "%s", r->err);
        return r->rc;
    }
    /* the workers flushed the seconds they saw; the rest of the window is empty */
    struct lg_stats *st = xcalloc(1, sizeof(*st));
    int rc = merge(r, st);
    if (rc == 0) {
        for (unsigned i = 0; i < r->cfg.threads; i++) {
            struct worker *w = &r->w[i];
            if (st->window_ns > 0)
                sec_advance(w, r->t_window + st->window_ns - 1);
            sec_flush(w);
            w->sec++;
        }
        collect_secs(r, st);
    }
    if (rc < 0) {
        snprintf(err, errlen, "merging the results: %s", strerror(-rc));
        lg_stats_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void sql_run_free(struct sql_run *r)
{
    if (!r)
        return;
    sql_run_stop(r);
    if (r->coord_started)
        pthread_join(r->coord, NULL);
    for (unsigned i = 0; r->w && i < r->cfg.threads; i++) {
        struct worker *w = &r->w[i];
        for (unsigned k = 0; k < w->nconns; k++)
            if (w->conns[k].db)
                r->cfg.db->close(w->conns[k].db);
        free(w->conns);
        if (w->ep > 0)
            close(w->ep);
        hdr_free(w->lat);
        hdr_free(w->svc);
        hdr_free(w->delay);
        hdr_free(w->connect);
        hdr_free(w->sec_h);
        for (int k = 0; w->stmt && k < r->nstmts; k++)
            hdr_free(w->stmt[k]);
        free(w->stmt);
        free(w->due);
    }
    for (size_t i = 0; i < r->nsecs; i++)
        hdr_free(r->secs[i].h);
    free(r->secs);
    free(r->w);
    free(r->stmt_base);
    free(r->stmt_cmd);
    free(r->stmt_script);
    free(r->cum_weight);
    free(r->host);
    free(r->port);
    free(r->user);
    if (r->password) {
        memset(r->password, 0, strlen(r->password));
        free(r->password);
    }
    free(r->database);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
