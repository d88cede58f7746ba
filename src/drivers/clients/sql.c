/* sql.c — the `sql` client: transactions against a relational database (PostgreSQL
 * through libpq; the engines behind sql/db.h) from sonde's own loop (sql/run.h):
 * pgbench's built-in transactions or custom scripts (sql/script.h), closed or open loop,
 * transactions/s, per-transaction and per-statement latency histograms, connection
 * setup time apart, errors by class, retries. Options: docs/storage.md. */
#include "drivers/clients/client_common.h"
#include "drivers/clients/fanout.h"

#include "core/session.h"
#include "sql/db.h"
#include "sql/run.h"
#include "sql/script.h"
#include "util/hdr.h"
#include "util/util.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRIPT_MAX   ((size_t)1 << 20)
#define SCRIPTS_MAX  32
#define CONNS_MAX    100000
#define PASSWORD_MAX 4096

static const char *const init_choices[] = {"auto", "missing", "always", "never", NULL};
static const char *const arrival_choices[] = {"poisson", "constant", NULL};

static const struct opt_def script_fields[] = {
    {"script", OPT_STR, true, NULL, "a built-in transaction or a script file", NULL, NULL},
    {"weight", OPT_FLOAT, false, "1", "relative share of the transactions", NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

static const struct opt_def sql_opts[] = {
    {"engine", OPT_ENUM, false, "postgres", "the database engine", sql_db_names, NULL},
    {"target", OPT_STR, false, NULL,
     "a service of the benchmark to load (its host and port), instead of host and port", NULL,
     NULL},
    {"host", OPT_STR, false, "127.0.0.1", "server address, e.g. \"${services.db.host}\"", NULL,
     NULL},
    {"port", OPT_STR, false, NULL, "server port (default: the engine's)", NULL, NULL},
    {"user", OPT_STR, false, NULL, "database user (default: postgres, or root for mariadb)", NULL,
     NULL},
    {"database", OPT_STR, false, NULL,
     "database name (default: postgres, or sonde for mariadb: the service recipes create it)", NULL,
     NULL},
    {"password_env", OPT_STR, false, NULL,
     "name of the environment variable holding the password (never stored)", NULL, NULL},
    {"password_file", OPT_STR, false, NULL, "file whose first line is the password", NULL, NULL},
    {"script", OPT_STR, false, "tpcb",
     "tpcb, select-only, simple-update (pgbench's) or a script file (\\set, \\sleep, SQL;)", NULL,
     NULL},
    {"scripts", OPT_MAP_LIST, false, NULL, "several scripts, each picked by weight", NULL,
     script_fields},
    {"scale", OPT_INT, false, "1", "pgbench scale factor (100,000 accounts each): :scale", NULL,
     NULL},
    {"init", OPT_ENUM, false, "auto",
     "create pgbench's tables: missing (when absent or of another scale), always, never; auto: "
     "missing with a built-in script, never otherwise",
     init_choices, NULL},
    {"connections", OPT_INT, false, "1", "connections in total (closed loop: users)", NULL, NULL},
    {"threads", OPT_INT, false, "1", "worker threads (<= connections)", NULL, NULL},
    {"mode", OPT_ENUM, false, "closed", "load model", cl_mode_choices, NULL},
    {"rate", OPT_FLOAT, false, NULL, "open loop: transactions/s in total (required there)", NULL,
     NULL},
    {"arrival", OPT_ENUM, false, "poisson", "open loop: arrival process", arrival_choices, NULL},
    {"seed", OPT_INT, false, "1", "random parameters and arrivals seed", NULL, NULL},
    CL_OPT("duration", OPT_DURATION, NULL, "measured time (after warmup)"),
    CL_OPT("requests", OPT_INT, NULL, "measured transactions (whichever bound comes first)"),
    CL_OPT("warmup", OPT_DURATION, "0s", "load applied first whose transactions are discarded"),
    CL_OPT("think", OPT_DURATION, NULL, "closed loop: pause between transactions"),
    CL_OPT("connect_timeout", OPT_DURATION, "10s", "limit for a connection to be made"),
    CL_OPT("timeout", OPT_DURATION, NULL,
           "a transaction running longer fails (timeout) and its connection is reopened"),
    {"max_tries", OPT_INT, false, "1",
     "tries of a transaction that hit a serialization failure or deadlock", NULL, NULL},
    CL_OPT("busy_poll", OPT_DURATION, "0s",
           "poll this long after the last event before sleeping (0s: never)"),
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

struct sql_state {
    struct sql_run_config cfg;
    struct sql_script *scripts[SCRIPTS_MAX];
    size_t nscripts;
    char *password;
    struct sql_run *run;
    int64_t status_at;
    int64_t fanout;       /* batch backend: tasks of the agent job (0: the load runs in sonde) */
    unsigned connections; /* in total, over every task */
};

/* ---- scripts ----------------------------------------------------------------------------- */

static bool is_builtin(const char *name)
{
    for (size_t i = 0; sql_builtin_names[i]; i++)
        if (!strcmp(name, sql_builtin_names[i]))
            return true;
    return false;
}

/* A built-in or a file; the message ("file:line: ...") in err. */
static int load_script(const char *name, struct sql_script **out, char *err, size_t errlen)
{
    if (is_builtin(name))
        return sql_script_builtin(name, out);
    char *text = NULL;
    size_t len = 0;
    int r = read_file(name, SCRIPT_MAX, &text, &len);
    if (r < 0) {
        snprintf(err, errlen, "cannot read script %s: %s", name,
                 r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
        return r;
    }
    r = sql_script_parse(name, text, len, out, err, errlen);
    free(text);
    return r;
}

static int load_scripts(struct comp *c, struct sql_state *st)
{
    const struct sv *list = sv_get(c->spec->with, "scripts");
    char err[512] = "";
    size_t n = list && list->kind == SV_SEQ ? list->n : 1;
    if (n > SCRIPTS_MAX) {
        comp_set_reason(c, "option 'scripts': at most %d", SCRIPTS_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const struct sv *item = list ? list->kids[i] : c->spec->with;
        const char *name = list ? sv_str(item, "script", NULL) : sv_str(item, "script", "tpcb");
        double weight = 1;
        if (!name || (list && sv_get(item, "weight") &&
                      (sv_as_double(sv_get(item, "weight"), &weight) < 0 || !(weight > 0)))) {
            comp_set_reason(c, "option 'scripts': entry %zu needs 'script' and a weight above 0",
                            i + 1);
            return -EINVAL;
        }
        int r = load_script(name, &st->scripts[i], err, sizeof(err));
        if (r < 0) {
            comp_set_reason(c, "%s", err);
            return r;
        }
        st->scripts[i]->weight = weight;
        st->nscripts++;
    }
    return 0;
}

/* ---- options ----------------------------------------------------------------------------- */

static int read_password(struct comp *c, struct sql_state *st)
{
    const char *env = cl_opt_text(c->spec->with, "password_env"),
               *file = cl_opt_text(c->spec->with, "password_file");
    if (env) {
        const char *v = cl_env(c, env);
        if (!v) {
            comp_set_reason(c, "option 'password_env': neither env: nor the environment has %s",
                            env);
            return -ENOENT;
        }
        st->password = xstrdup(v);
    } else if (file) {
        char *text = NULL;
        size_t len = 0;
        int r = read_file(file, PASSWORD_MAX, &text, &len);
        if (r < 0) {
            comp_set_reason(c, "option 'password_file': cannot read %s: %s", file, strerror(-r));
            return r;
        }
        text[strcspn(text, "\r\n")] = 0;
        st->password = text;
    }
    return 0;
}

static enum sql_init init_mode(const char *text, const struct sql_state *st)
{
    bool builtin = true;
    for (size_t i = 0; i < st->nscripts; i++)
        builtin = builtin && is_builtin(st->scripts[i]->name);
    if (!strcmp(text, "always"))
        return SQL_INIT_ALWAYS;
    if (!strcmp(text, "never"))
        return SQL_INIT_NEVER;
    if (!strcmp(text, "missing"))
        return SQL_INIT_MISSING;
    return builtin ? SQL_INIT_MISSING : SQL_INIT_NEVER;
}

/* Every option into st->cfg, for task `task` of `ntasks` (its share of the
 * connections, transactions and rate: fanout_split); c->reason set on error. */
static int prepare(struct comp *c, struct sql_state *st, unsigned task, unsigned ntasks)
{
    struct lg_config lg = {0};
    struct sql_run_config *cfg = &st->cfg;
    const struct sv *w = c->spec->with;
    int64_t scale = 1, tries = 1;
    int r = cl_limits(c, &lg, 1, CONNS_MAX);
    r = r ? r : cl_load_model(c, &lg);
    unsigned total = lg.connections;
    st->connections = total;
    r = r ? r : fanout_split(c, &lg, task, ntasks);
    r = r ? r : cl_opt_dur(c, w, "connect_timeout", "10s", &lg.connect_timeout_ns);
    r = r ? r : cl_opt_dur(c, w, "busy_poll", "0s", &lg.busy_poll_ns);
    r = r ? r : cl_opt_int(c, "scale", 1, 1, 10000, &scale);
    r = r ? r : cl_opt_int(c, "max_tries", 1, 1, 1000, &tries);
    r = r ? r : load_scripts(c, st);
    r = r ? r : read_password(c, st);
    if (r < 0)
        return r;
    cfg->db = sql_db_find(sv_str(w, "engine", "postgres"));
    if (!cfg->db) {
        comp_set_reason(c, "option 'engine': unknown engine '%s'", sv_str(w, "engine", ""));
        return -EINVAL;
    }
    const char *host = sv_str(w, "host", "127.0.0.1"), *port = cl_opt_text(w, "port");
    const char *target = cl_opt_text(w, "target");
    if (target) {
        const struct comp *svc = cl_target_service(c, target);
        if (!svc)
            return -ENOENT;
        host = svc->host ? svc->host : "127.0.0.1";
        port = svc->port;
    }
    cfg->target = (struct sql_target){
        .host = host,
        .port = port,
        .user = cl_opt_text(w, "user") ? cl_opt_text(w, "user") : cfg->db->default_user,
        .password = st->password,
        .database =
            cl_opt_text(w, "database") ? cl_opt_text(w, "database") : cfg->db->default_database,
        .connect_timeout_s = (int)((lg.connect_timeout_ns + 999999999) / 1000000000),
    };
    cfg->scripts = st->scripts;
    cfg->nscripts = st->nscripts;
    cfg->scale = scale;
    cfg->init = init_mode(sv_str(w, "init", "auto"), st);
    cfg->connections = lg.connections;
    cfg->threads = lg.threads;
    cfg->model = lg.model;
    cfg->rate = lg.rate;
    cfg->arrival = !strcmp(sv_str(w, "arrival", "poisson"), "constant") ? LG_CONSTANT : LG_POISSON;
    cfg->seed = lg.seed;
    /* :client_id numbers the connections of every task together */
    cfg->client_base =
        ntasks > 1 ? task * (total / ntasks) + (task < total % ntasks ? task : total % ntasks) : 0;
    cfg->duration_ns = lg.duration_ns;
    cfg->warmup_ns = lg.warmup_ns;
    cfg->max_tx = lg.max_requests;
    cfg->think_ns = lg.think_ns;
    cfg->tx_timeout_ns = lg.request_timeout_ns;
    cfg->max_tries = (int)tries;
    cfg->busy_poll_ns = lg.busy_poll_ns;
    return 0;
}

/* Batch backend: the load runs as `sonde agent sql` tasks of one job (fanout.h). The
 * pgbench tables are made here first, once; the tasks get host and port (not a
 * target), absolute script paths and init: never. */
static int start_fanout(struct comp *c, struct sql_state *st)
{
    char err[512] = "";
    int r = prepare(c, st, 0, (unsigned)st->fanout);
    if (r == 0 && st->cfg.init != SQL_INIT_NEVER && (r = sql_setup(&st->cfg, err, sizeof(err))) < 0)
        comp_set_reason(c, "%s", err);
    if (r < 0)
        return r;
    struct sv *with = sv_clone(c->spec->with);
    sv_del(with, "target");
    sv_set(with, "host", sv_new_scalar(st->cfg.target.host, (struct sv_pos){0}));
    if (st->cfg.target.port)
        sv_set(with, "port", sv_new_scalar(st->cfg.target.port, (struct sv_pos){0}));
    sv_set(with, "init", sv_new_scalar("never", (struct sv_pos){0}));
    const struct sv *list = sv_get(with, "scripts");
    for (size_t i = 0; list && list->kind == SV_SEQ && i < list->n; i++) {
        const char *f = cl_opt_text(list->kids[i], "script");
        char *abs = f && !is_builtin(f) && f[0] != '/' ? realpath(f, NULL) : NULL;
        if (abs)
            sv_set(list->kids[i], "script", sv_new_scalar(abs, (struct sv_pos){0}));
        free(abs);
    }
    static const char *const files[] = {"script", "password_file", NULL};
    const char *one = cl_opt_text(with, "script");
    if (one && is_builtin(one))
        return fanout_start(c, with, files + 1);
    return fanout_start(c, with, files);
}

static int sql_start(struct comp *c)
{
    struct sql_state *st = xcalloc(1, sizeof(*st));
    c->priv = st;
    if (fanout_wanted(c->spec) && c->backend->batch) {
        st->fanout = comp_tasks(c);
        return start_fanout(c, st);
    }
    int r = prepare(c, st, 0, 1);
    if (r < 0)
        return r;
    char err[256] = "";
    r = sql_run_start(&st->cfg, &st->run, err, sizeof(err));
    if (r < 0)
        comp_set_reason(c, "cannot start the load: %s", err);
    return r;
}

static int sql_tick(struct comp *c, int64_t now)
{
    struct sql_state *st = c->priv;
    if (st && st->fanout)
        return fanout_tick(c, (unsigned)st->fanout, &st->status_at, now);
    if (!st || sql_run_done(st->run))
        return 1;
    if (cl_status_due(&st->status_at, now)) {
        struct lg_progress p;
        const char *phase = sql_run_progress(st->run, &p);
        cl_live(c, &p, false);
        if (strcmp(phase, "run"))
            comp_status(c, "%s", phase);
        else
            comp_status(c, "%.1f s, %llu transactions, %llu failed", (double)p.elapsed_ns / 1e9,
                        (unsigned long long)p.requests, (unsigned long long)p.errors);
    }
    return 0;
}

static int sql_stop(struct comp *c)
{
    struct sql_state *st = c->priv;
    if (st)
        sql_run_stop(st->run);
    return 0;
}

/* ---- results ------------------------------------------------------------------------------ */

static void put_statements(struct comp *c, const struct sql_state *st, const struct lg_stats *s)
{
    for (size_t i = 0; i < st->nscripts; i++) {
        const struct sql_script *sc = st->scripts[i];
        for (size_t k = 0; k < sc->ncmds; k++) {
            const struct sql_cmd *cmd = &sc->cmds[k];
            char name[LG_EXTRA_NAME_MAX], mname[LG_EXTRA_NAME_MAX + 16];
            if (cmd->kind != SQL_CMD_STMT)
                continue;
            sql_stmt_extra_name(i, cmd->stmt, name, sizeof(name));
            const struct lg_extra *x = lg_extra_find(s, name, LG_EXTRA_HDR);
            if (!x)
                continue;
            json_t *labels = json_pack("{s:s, s:i}", "script", sc->name, "line", cmd->line);
            char *lt = json_dumps(labels, JSON_COMPACT);
            json_object_set_new(labels, "sql", json_string(cmd->text));
            char *ht = json_dumps(labels, JSON_COMPACT); /* the histogram names the statement */
            snprintf(mname, sizeof(mname), "%s_mean", name);
            comp_metric(c, mname, "ms", lt, hdr_mean(x->hdr) / CL_NS_PER_MS);
            if (hdr_percentile_ok(x->hdr, 99)) {
                snprintf(mname, sizeof(mname), "%s_p99", name);
                comp_metric(c, mname, "ms", lt, (double)hdr_percentile(x->hdr, 99) / CL_NS_PER_MS);
            }
            comp_histogram(c, name, "ns", ht, x->hdr);
            free(lt);
            free(ht);
            json_decref(labels);
        }
    }
}

static void put_series(struct comp *c, const struct lg_stats *s)
{
    for (size_t i = 0; i < s->nsecs; i++) {
        const struct lg_second *sec = &s->secs[i];
        int64_t t = s->window_start_wall_ns + (int64_t)i * 1000000000LL;
        comp_series_point(c, "transactions", "tx/s", NULL, t, (double)sec->requests);
        comp_series_point(c, "errors", "err/s", NULL, t, (double)sec->errors);
        if (sec->p50_ns >= 0)
            comp_series_point(c, "latency_p50", "ms", NULL, t, (double)sec->p50_ns / CL_NS_PER_MS);
        if (sec->p99_ns >= 0)
            comp_series_point(c, "latency_p99", "ms", NULL, t, (double)sec->p99_ns / CL_NS_PER_MS);
    }
}

static int sql_finish(struct comp *c)
{
    struct sql_state *st = c->priv;
    struct lg_stats *s = NULL;
    char err[512] = "";
    if (!st || (!st->run && !st->fanout))
        return -EINVAL;
    int r = st->fanout ? fanout_stats(c, st->fanout, NULL, NULL, &s)
                       : sql_run_wait(st->run, &s, err, sizeof(err));
    if (r < 0) {
        if (!st->fanout)
            comp_set_reason(c, "%s", err);
        return r;
    }
    if (!st->fanout && s) /* (fanout_stats says it itself) */
        comp_measured_window(c, s->window_start_wall_ns, s->window_start_wall_ns + s->window_ns);
    uint64_t errors[SQL_ERR_COUNT], status[6] = {0};
    for (int e = 0; e < SQL_ERR_COUNT; e++) {
        char name[LG_EXTRA_NAME_MAX];
        snprintf(name, sizeof(name), "errors_%s", sql_err_name(e));
        errors[e] = lg_extra_count(s, name);
    }
    cl_put_counts(c, s->requests, s->ok, errors, SQL_ERR_COUNT, sql_err_name, status);
    double window = (double)s->window_ns / 1e9;
    comp_metric(c, "transactions", "tx", NULL, (double)s->ok);
    comp_metric(c, "throughput", "tx/s", NULL, window > 0 ? (double)s->ok / window : 0);
    comp_metric(c, "retries", NULL, NULL, (double)lg_extra_count(s, "retries"));
    comp_metric(c, "reconnects", NULL, NULL, (double)lg_extra_count(s, "reconnects"));
    comp_metric(c, "warmup_transactions", "tx", NULL,
                (double)lg_extra_count(s, "warmup_transactions"));
    comp_metric(c, "connections", NULL, NULL, (double)st->connections);
    cl_put_hdr_summary(c, "latency", s->latency);
    cl_put_histogram(c, "latency", s->latency);
    const struct lg_extra *ct = lg_extra_find(s, "connect_time", LG_EXTRA_HDR);
    if (ct) {
        cl_put_hdr_summary(c, "connect_time", ct->hdr);
        cl_put_histogram(c, "connect_time", ct->hdr);
    }
    if (st->cfg.model == LG_OPEN) {
        struct lg_config lg = {.model = LG_OPEN, .rate = st->cfg.rate};
        cl_put_hdr_summary(c, "service_time", s->service);
        cl_put_histogram(c, "service_time", s->service);
        cl_put_histogram(c, "issue_delay", s->issue_delay);
        cl_put_open_loop(c, &lg, s);
    }
    put_statements(c, st, s);
    put_series(c, s);
    r = cl_judge(c, s->ok, errors, SQL_ERR_COUNT, sql_err_name);
    lg_stats_free(s);
    return r;
}

static void sql_cleanup(struct comp *c)
{
    struct sql_state *st = c->priv;
    if (!st)
        return;
    sql_run_free(st->run);
    for (size_t i = 0; i < st->nscripts; i++)
        sql_script_free(st->scripts[i]);
    if (st->password) {
        memset(st->password, 0, strlen(st->password));
        free(st->password);
    }
    free(st);
    c->priv = NULL;
}

/* ---- the agent (one task of a fan-out job) ---------------------------------------------- */

static int sql_agent_run(const struct sv *with, unsigned task, unsigned ntasks,
                         const char *out_path, const volatile sig_atomic_t *stop, char *err,
                         size_t errlen)
{
    struct comp_spec spec = {
        .role = ROLE_CLIENT, .name = "agent", .driver = "sql", .with = (struct sv *)with};
    struct comp c = {.name = "agent", .spec = &spec};
    struct sql_state *st = xcalloc(1, sizeof(*st));
    struct lg_stats *s = NULL;
    char why[512] = "";
    c.priv = st;
    int r = prepare(&c, st, task, ntasks);
    if (r == 0 && (r = sql_run_start(&st->cfg, &st->run, why, sizeof(why))) < 0)
        comp_set_reason(&c, "cannot start the load: %s", why);
    while (r == 0 && !sql_run_done(st->run)) {
        if (stop && *stop)
            sql_run_stop(st->run);
        sleep_ns(50 * 1000000LL);
    }
    if (r == 0 && (r = sql_run_wait(st->run, &s, why, sizeof(why))) < 0)
        comp_set_reason(&c, "%s", why);
    if (r == 0 && stop && *stop) {
        comp_set_reason(&c, "stopped by a signal before the end of the load");
        lg_stats_free(s);
        s = NULL;
        r = -ECANCELED;
    }
    r = fanout_agent_write(&c, r, s, out_path, err, errlen);
    sql_cleanup(&c);
    free(c.reason);
    return r;
}

/* ---- validation --------------------------------------------------------------------------- */

/* A script known now must exist and parse: its errors as file:line. */
static void check_script(const struct comp_spec *spec, struct diags *d, const char *key,
                         const char *name)
{
    struct sql_script *s = NULL;
    char err[512] = "";
    if (!name || strstr(name, "${"))
        return;
    if (load_script(name, &s, err, sizeof(err)) < 0)
        cl_chk_fail(spec, d, key, "%s", err);
    sql_script_free(s);
}

static int sql_check(const struct comp_spec *spec, struct diags *d)
{
    size_t before = d ? d->n + d->dropped : 0;
    if (!d)
        return 0;
    const struct sv *list = sv_get(spec->with, "scripts");
    if (list && sv_get(spec->with, "script"))
        cl_chk_fail(spec, d, "scripts", "give one of 'script' and 'scripts'");
    if (list && list->kind == SV_SEQ && list->n > SCRIPTS_MAX)
        cl_chk_fail(spec, d, "scripts", "at most %d scripts", SCRIPTS_MAX);
    for (size_t i = 0; list && list->kind == SV_SEQ && i < list->n && i < SCRIPTS_MAX; i++) {
        const struct sv *w = sv_get(list->kids[i], "weight");
        double x = 1;
        if (w && w->str && !strstr(w->str, "${") && (sv_as_double(w, &x) < 0 || !(x > 0)))
            cl_chk_fail(spec, d, "scripts", "entry %zu: 'weight' must be above 0", i + 1);
        const struct sv *s = sv_get(list->kids[i], "script");
        check_script(spec, d, "scripts", s ? s->str : NULL);
    }
    if (!list)
        check_script(spec, d, "script", cl_chk_text(spec, "script"));
    if (sv_get(spec->with, "target") && (sv_get(spec->with, "host") || sv_get(spec->with, "port")))
        cl_chk_fail(spec, d, "target", "give either 'target' or 'host' and 'port'");
    if (sv_get(spec->with, "password_env") && sv_get(spec->with, "password_file"))
        cl_chk_fail(spec, d, "password_file",
                    "give at most one of 'password_env' and "
                    "'password_file'");
    double conns = 1, threads = 1;
    const char *tc = cl_chk_text(spec, "connections"), *tt = cl_chk_text(spec, "threads");
    if (tc && tt && sv_as_double(sv_get(spec->with, "connections"), &conns) == 0 &&
        sv_as_double(sv_get(spec->with, "threads"), &threads) == 0 && threads > conns)
        cl_chk_fail(spec, d, "connections", "must be at least 'threads' (%g)", threads);
    cl_chk_bounds(spec, d);
    return d->n + d->dropped > before ? -EINVAL : 0;
}

const struct driver_ops driver_client_sql = {
    .name = "sql",
    .role = ROLE_CLIENT,
    .summary = "transactions against PostgreSQL (pgbench's TPC-B or custom scripts), with "
               "per-statement latency histograms",
    .opts = sql_opts,
    .job_argv = fanout_argv,
    .agent_run = sql_agent_run,
    .check = sql_check,
    .start = sql_start,
    .tick = sql_tick,
    .stop = sql_stop,
    .finish = sql_finish,
    .cleanup = sql_cleanup,
};
