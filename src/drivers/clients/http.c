/* http.c — the `http` client: HTTP/1.1 load through the load engine (loadgen/engine.h),
 * closed or open loop, with latency / service time / issue delay histograms, errors by
 * class and a per-second series recorded into the store. Options: docs/http.md. */
#include "drivers/clients/fanout.h"

#include "drivers/clients/client_common.h"

#include "core/session.h"
#include "loadgen/engine.h"
#include "loadgen/http_parser.h"
#include "loadgen/template.h"
#include "util/hdr.h"
#include "util/log.h"
#include "util/units.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX        ((size_t)64 << 20) /* body / body_file */
#define REQUEST_MAX     (BODY_MAX + ((size_t)1 << 20))
#define CONNECTIONS_MAX 1000000

static const struct opt_def http_opts[] = {
    {"url", OPT_STR, false, NULL,
     "http://host:port/path or https://...; e.g. \"http://${services.web.host}:"
     "${services.web.port}/\"",
     NULL, NULL},
    {"target", OPT_STR, false, NULL, "a service of the benchmark to load instead of url", NULL,
     NULL},
    {"path", OPT_STR, false, "/", "request target with `target`", NULL, NULL},
    {"method", OPT_STR, false, "GET", "request method", NULL, NULL},
    {"headers", OPT_STR_MAP, false, NULL, "extra request headers", NULL, NULL},
    {"body", OPT_STR, false, NULL, "request body", NULL, NULL},
    {"body_file", OPT_STR, false, NULL, "request body read from this file at start (<= 64 MiB)",
     NULL, NULL},
    {"template", OPT_BOOL, false, "false",
     "the path, header values and body are per-request templates: {{counter}}, {{random}}, "
     "{{random:LO:HI}}, {{uuid}}",
     NULL, NULL},
    {"expect_status", OPT_INT, false, NULL, "the only successful status (default: any 2xx/3xx)",
     NULL, NULL},
    {"connections", OPT_INT, false, "10", "connections in total (closed loop: users)", NULL, NULL},
    {"threads", OPT_INT, false, "1", "worker threads (<= connections)", NULL, NULL},
    {"mode", OPT_ENUM, false, "closed", "load model", cl_mode_choices, NULL},
    {"rate", OPT_FLOAT, false, NULL, "open loop: requests/s in total (required there)", NULL, NULL},
    {"arrival", OPT_ENUM, false, "poisson", "open loop: arrival process", cl_arrival_choices, NULL},
    {"burstiness", OPT_FLOAT, false, "1", "gamma arrivals: shape k (1 = Poisson, < 1 burstier)",
     NULL, NULL},
    {"seed", OPT_INT, false, "1", "arrival schedule seed", NULL, NULL},
    CL_OPTS_BOUNDS,
    {"ramp_from", OPT_FLOAT, false, NULL, "open loop: starting rate, ramped linearly to rate", NULL,
     NULL},
    {"ramp", OPT_DURATION, false, NULL, "open loop: length of the ramp", NULL, NULL},
    CL_OPTS_TIMEOUTS,
    {"tls_verify", OPT_BOOL, false, "false",
     "https: check the server's certificate and name (off: encrypt, do not authenticate)", NULL,
     NULL},
    {"ca_file", OPT_STR, false, NULL, "with tls_verify: trusted CA certificates (PEM)", NULL, NULL},
    CL_OPT_BUSY_POLL,
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

struct http_state {
    struct lg_config cfg;
    struct lg_run *run;
    struct sbuf req;
    struct tmpl *head_t, *body_t; /* with template: true */
    struct sbuf *scratch;         /* one body buffer per worker thread */
    int64_t status_at;            /* monotonic time of the last status line */
    bool waited;
    int64_t fanout; /* batch backend: tasks of the agent job (0: the load runs in sonde) */
};

/* ---- URL ---------------------------------------------------------------------------------- */

/* cl_url_parse, then u->path becomes the request target: path?query, "/" when empty. */
static int parse_url(const char *s, struct cl_url *u)
{
    int r = cl_url_parse(s, u);
    if (r == 0 && (!u->path[0] || u->path[0] == '?')) {
        char *target = xasprintf("/%s", u->path);
        free(u->path);
        u->path = target;
    }
    return r;
}

/* The URL text from `url`, or from `target` (a service of the benchmark) and
 * `path` (caller frees); NULL with c->reason set when there is none. */
static char *url_text(struct comp *c)
{
    const char *url = cl_opt_text(c->spec->with, "url"),
               *target = cl_opt_text(c->spec->with, "target");
    if (url)
        return xstrdup(url);
    if (!c->session) { /* an agent: sonde wrote the URL for it */
        comp_set_reason(c, "option 'url' is missing");
        return NULL;
    }
    if (!target) {
        comp_set_reason(c, "set option 'url' or 'target' (what to load)");
        return NULL;
    }
    const struct comp *s = cl_target_service(c, target);
    if (!s)
        return NULL;
    return xasprintf("http://%s:%s%s", s->host ? s->host : "127.0.0.1", s->port,
                     sv_str(c->spec->with, "path", "/"));
}

static int resolve_url(struct comp *c, struct cl_url *u)
{
    char *text = url_text(c);
    if (!text)
        return -ENOENT;
    int r = parse_url(text, u);
    if (r < 0 && cl_opt_text(c->spec->with, "url"))
        comp_set_reason(c, "option 'url': %s: '%s'",
                        r == -EPROTONOSUPPORT ? "the scheme must be http:// or https://"
                                              : "not a valid URL",
                        text);
    else if (r < 0)
        comp_set_reason(c, "cannot build a URL for target '%s': '%s'",
                        cl_opt_text(c->spec->with, "target"), text);
    free(text);
    return r;
}

/* ---- building the request and the configuration ----------------------------------------- */

static int load_body(struct comp *c, char **body, size_t *len)
{
    const char *inline_body = cl_opt_text(c->spec->with, "body");
    const char *file = cl_opt_text(c->spec->with, "body_file");
    *body = NULL;
    *len = 0;
    if (inline_body) {
        *len = strlen(inline_body);
        *body = xstrdup(inline_body);
        return 0;
    }
    if (!file)
        return 0;
    int r = read_file(file, BODY_MAX, body, len);
    if (r < 0)
        comp_set_reason(c, "cannot read body_file %s: %s", file,
                        r == -EFBIG ? "larger than 64 MiB" : strerror(-r));
    return r;
}

/* template: true: one request per send (see template.h) */
static int http_make_request(void *ud, unsigned worker, uint64_t n, struct rng *rng,
                             struct sbuf *out)
{
    struct http_state *st = ud;
    int r = tmpl_render(st->head_t, n, rng, out);
    if (r == 0 && st->body_t) {
        struct sbuf *body = &st->scratch[worker];
        char cl[48];
        body->len = 0;
        r = tmpl_render(st->body_t, n, rng, body);
        int k = snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n\r\n", body->len);
        r = r ? r : sbuf_add(out, cl, (size_t)k);
        r = r ? r : sbuf_add(out, body->s ? body->s : "", body->len);
    } else if (r == 0)
        r = sbuf_add(out, "\r\n", 2);
    return r;
}

/* Compiles the request head (st->req without its final CRLF) and the body into
 * templates; fails when one is malformed or a request could outgrow a buffer. */
static int build_templates(struct comp *c, struct http_state *st, const char *body, size_t body_len)
{
    char err[256] = "";
    int r = tmpl_parse(st->req.s, st->req.len - 2, &st->head_t, err, sizeof(err));
    if (r < 0) {
        comp_set_reason(c, "option 'template': the path or a header: %s", err);
        return r;
    }
    if (body && (r = tmpl_parse(body, body_len, &st->body_t, err, sizeof(err))) < 0) {
        comp_set_reason(c, "option 'template': the body: %s", err);
        return r;
    }
    size_t most = tmpl_max_len(st->head_t) + (st->body_t ? tmpl_max_len(st->body_t) : 0) + 64;
    if (most >= SBUF_DEFAULT_MAX) {
        comp_set_reason(c, "option 'template': a request could grow past 64 MiB");
        return -EINVAL;
    }
    st->scratch = xcalloc(st->cfg.threads, sizeof(*st->scratch));
    st->cfg.make_request = http_make_request;
    st->cfg.make_request_ud = st;
    return 0;
}

static int build_request(struct comp *c, struct http_state *st, const struct cl_url *u)
{
    const struct sv *hs = sv_get(c->spec->with, "headers");
    const char *method = sv_str(c->spec->with, "method", "GET");
    char **headers = NULL, *body = NULL;
    size_t body_len = 0;
    bool tmpl = false;
    if (cl_opt_bool(c, "template", false, &tmpl) < 0)
        return -EINVAL;
    for (size_t i = 0; hs && hs->kind == SV_MAP && i < hs->n; i++) {
        char *h = xasprintf("%s: %s", hs->kids[i]->key, hs->kids[i]->str ? hs->kids[i]->str : "");
        strv_push(&headers, h);
        free(h);
    }
    int r = load_body(c, &body, &body_len);
    if (r == 0) {
        st->req.max = REQUEST_MAX;
        /* with a template the head is built alone; the body follows per request */
        r = http_req_build(&st->req, method, u->host_header, u->path, (const char *const *)headers,
                           tmpl ? NULL : body, body_len);
        if (r < 0)
            comp_set_reason(c, "cannot build the request: %s",
                            r == -ENOSPC ? "too large"
                                         : "invalid method, header (\"Name: value\", no CR/LF, "
                                           "no Content-Length) or target");
    }
    if (r == 0 && tmpl)
        r = build_templates(c, st, body, body_len);
    st->cfg.head = r == 0 && !strcmp(method, "HEAD");
    strv_free(headers);
    free(body);
    return r;
}

static int fill_config(struct comp *c, struct lg_config *cfg)
{
    int64_t expect = 0;
    int r = cl_limits(c, cfg, 10, CONNECTIONS_MAX);
    r = r ? r : cl_opt_int(c, "expect_status", 0, 0, 599, &expect);
    r = r ? r : cl_load_model(c, cfg);
    r = r ? r : cl_opt_bool(c, "tls_verify", false, &cfg->tls_verify);
    cfg->expect_status = (int)expect;
    return r;
}

/* Reads every option into st (the URL, the engine's configuration for task
 * `task` of `ntasks`, the request); sets c->reason on error. */
static int prepare(struct comp *c, struct http_state *st, unsigned task, unsigned ntasks)
{
    struct cl_url u = {0};
    int r = resolve_url(c, &u);
    if (r == 0)
        r = fill_config(c, &st->cfg);
    if (r == 0)
        r = fanout_split(c, &st->cfg, task, ntasks);
    if (r == 0)
        r = build_request(c, st, &u);
    if (r == 0) {
        st->cfg.host = u.host;
        st->cfg.port = u.port;
        st->cfg.tls = u.tls;
        st->cfg.ca_file = (char *)cl_opt_text(c->spec->with, "ca_file"); /* copied by lg_start */
        st->cfg.request = st->req.s;
        st->cfg.request_len = st->req.len;
        u.host = NULL; /* owned by cfg now */
    }
    cl_url_clear(&u);
    return r;
}

/* Batch backend: the load runs as `sonde agent http` tasks of one job
 * (fanout.h). The options are checked here first, so a mistake is said before
 * submitting. */
static int start_fanout(struct comp *c, struct http_state *st)
{
    static const char *const files[] = {"body_file", "ca_file", NULL};
    int r = prepare(c, st, 0, (unsigned)st->fanout);
    if (r < 0)
        return r;
    struct sv *with = sv_clone(c->spec->with);
    char *url = url_text(c); /* target + path become the URL they name */
    sv_del(with, "target");
    sv_del(with, "path");
    sv_set(with, "url", sv_new_scalar(url, (struct sv_pos){0}));
    free(url);
    return fanout_start(c, with, files);
}

static int http_start(struct comp *c)
{
    struct http_state *st = xcalloc(1, sizeof(*st));
    c->priv = st;
    if (fanout_wanted(c->spec) && c->backend->batch) {
        st->fanout = comp_tasks(c);
        return start_fanout(c, st);
    }
    int r = prepare(c, st, 0, 1);
    if (r < 0)
        return r;
    return cl_start(c, &st->cfg, &st->run);
}

/* The live status line: elapsed time (of the duration when one is set), the
 * last full second's rate and p99, the errors so far. */
static void show_status(struct comp *c, struct http_state *st)
{
    struct lg_progress p;
    lg_progress(st->run, &p);
    cl_live(c, &p, true);
    char total[32] = "", p99[32] = "-";
    int64_t whole = st->cfg.warmup_ns + st->cfg.duration_ns;
    if (st->cfg.duration_ns > 0)
        snprintf(total, sizeof(total), "/%.0f", (double)whole / 1e9);
    if (p.p99_last_s >= 0)
        snprintf(p99, sizeof(p99), "%.3g ms", (double)p.p99_last_s / CL_NS_PER_MS);
    if (p.warming_up)
        comp_status(c, "%.1f%s s, warming up", (double)p.elapsed_ns / 1e9, total);
    else
        comp_status(c, "%.1f%s s, %.0f req/s, p99 %s, %llu requests, %llu errors",
                    (double)p.elapsed_ns / 1e9, total, p.rate_last_s, p99,
                    (unsigned long long)p.requests, (unsigned long long)p.errors);
}

static int http_tick(struct comp *c, int64_t now)
{
    struct http_state *st = c->priv;
    if (st && st->fanout)
        return fanout_tick(c, (unsigned)st->fanout, &st->status_at, now);
    if (!st || cl_done(st->run))
        return 1;
    if (cl_status_due(&st->status_at, now))
        show_status(c, st);
    return 0;
}

static int http_stop(struct comp *c)
{
    struct http_state *st = c->priv;
    if (st)
        cl_stop(st->run, st->waited);
    return 0;
}

/* ---- results -------------------------------------------------------------------------------- */

static void put_counts(struct comp *c, const struct lg_stats *s)
{
    cl_put_counts(c, s->requests, s->ok, s->errors, LG_ERR_COUNT, cl_lg_err_name, s->status_class);
    comp_metric(c, "bytes_in", "B", NULL, (double)s->bytes_in);
    comp_metric(c, "bytes_out", "B", NULL, (double)s->bytes_out);
    cl_live_totals(c, -1, (double)s->bytes_in, (double)s->bytes_out); /* the final totals */
    comp_metric(c, "connects", NULL, NULL, (double)s->connects);
    double window = (double)s->window_ns / 1e9;
    comp_metric(c, "throughput", "req/s", NULL, window > 0 ? (double)s->requests / window : 0);
}

static void put_series(struct comp *c, const struct lg_stats *s)
{
    int64_t t0 = s->window_start_wall_ns;
    for (size_t i = 0; i < s->nsecs; i++) {
        const struct lg_second *sec = &s->secs[i];
        int64_t t = t0 + (int64_t)i * 1000000000LL;
        comp_series_point(c, "requests", "req/s", NULL, t, (double)sec->requests);
        comp_series_point(c, "errors", "err/s", NULL, t, (double)sec->errors);
        if (sec->p50_ns >= 0)
            comp_series_point(c, "latency_p50", "ms", NULL, t, (double)sec->p50_ns / CL_NS_PER_MS);
        if (sec->p99_ns >= 0)
            comp_series_point(c, "latency_p99", "ms", NULL, t, (double)sec->p99_ns / CL_NS_PER_MS);
    }
}

static int http_finish(struct comp *c)
{
    struct http_state *st = c->priv;
    struct lg_stats *s = NULL;
    if (!st)
        return -EINVAL;
    int r = fanout_stats(c, st->fanout, st->run, &st->waited, &s);
    if (r < 0)
        return r;
    put_counts(c, s);
    cl_put_hdr_summary(c, "latency", s->latency);
    cl_put_hdr_summary(c, "service_time", s->service);
    cl_put_open_loop(c, &st->cfg, s);
    put_series(c, s);
    cl_put_histogram(c, "latency", s->latency);
    cl_put_histogram(c, "service_time", s->service);
    cl_put_histogram(c, "issue_delay", s->issue_delay);
    r = cl_judge(c, s->ok, s->errors, LG_ERR_COUNT, cl_lg_err_name);
    lg_stats_free(s);
    return r;
}

static void http_cleanup(struct comp *c)
{
    struct http_state *st = c->priv;
    if (!st)
        return;
    lg_free(st->run); /* stops and joins the workers when cancelled mid-run */
    free(st->cfg.host);
    sbuf_free(&st->req);
    for (unsigned i = 0; st->scratch && i < st->cfg.threads; i++)
        sbuf_free(&st->scratch[i]);
    free(st->scratch);
    tmpl_free(st->head_t);
    tmpl_free(st->body_t);
    free(st);
    c->priv = NULL;
}

/* ---- the agent (one task of a fan-out job) ---------------------------------------------- */

/* driver_ops.agent_run: one task's share of the load, its result to out_path. */
static int http_agent_run(const struct sv *with, unsigned task, unsigned ntasks,
                          const char *out_path, const volatile sig_atomic_t *stop, char *err,
                          size_t errlen)
{
    struct comp_spec spec = {.role = ROLE_CLIENT, .name = "agent", .with = (struct sv *)with};
    struct comp c = {.name = "agent", .spec = &spec};
    struct http_state *st = xcalloc(1, sizeof(*st));
    struct lg_stats *s = NULL;
    c.priv = st;
    int r = prepare(&c, st, task, ntasks);
    if (r == 0) {
        st->cfg.keep_second_hdrs = true; /* merged exactly, second by second */
        r = cl_start(&c, &st->cfg, &st->run);
    }
    if (r == 0)
        r = fanout_agent_wait(&c, st->run, &st->waited, stop, &s);
    r = fanout_agent_write(&c, r, s, out_path, err, errlen);
    http_cleanup(&c);
    free(c.reason);
    return r;
}

/* ---- validation ------------------------------------------------------------------------------ */

struct chk {
    const struct comp_spec *spec;
    struct diags *d;
};

static const char *chk_text(const struct chk *k, const char *key)
{
    return cl_chk_text(k->spec, key);
}

static void chk_fail(const struct chk *k, const char *key, const char *fmt, ...) SONDE_PRINTF(3, 4);
static void chk_fail(const struct chk *k, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cl_chk_vfail(k->spec, k->d, key, fmt, ap);
    va_end(ap);
}

static void check_target(const struct chk *k)
{
    bool has_url = sv_get(k->spec->with, "url"), has_target = sv_get(k->spec->with, "target");
    const char *url = chk_text(k, "url");
    struct cl_url u = {0};
    if (has_url && has_target)
        chk_fail(k, "target", "give only one of 'url' and 'target' (what to load)");
    else if (!has_url && !has_target && !k->spec->partial)
        chk_fail(k, "url", "give 'url' or 'target' (what to load)");
    if (sv_get(k->spec->with, "path") && !has_target)
        chk_fail(k, "path", "'path' goes with 'target' (with 'url', put the path in it)");
    if (url && parse_url(url, &u) < 0)
        chk_fail(k, "url", "expected http://host[:port]/path or https://..., got '%s'", url);
    cl_url_clear(&u);
    if (sv_get(k->spec->with, "ca_file") && !sv_get(k->spec->with, "tls_verify"))
        chk_fail(k, "ca_file", "'ca_file' goes with 'tls_verify: true'");
    if (sv_get(k->spec->with, "body") && sv_get(k->spec->with, "body_file"))
        chk_fail(k, "body_file", "give at most one of 'body' and 'body_file'");
}

static bool chk_num(const struct chk *k, const char *key, double *out)
{
    const char *s = chk_text(k, key);
    const struct sv *v = sv_get(k->spec->with, key);
    return s && sv_as_double(v, out) == 0;
}

/* Reads a number option; *known is false when it holds a run-time reference. */
static void chk_opt_num(const struct chk *k, const char *key, double *x, bool *known)
{
    const struct sv *v = sv_get(k->spec->with, key);
    *known = !v || (chk_text(k, key) && sv_as_double(v, x) == 0);
}

static void check_counts(const struct chk *k)
{
    double conns = 10, threads = 1, x = 0;
    bool kc = false, kt = false;
    chk_opt_num(k, "connections", &conns, &kc);
    chk_opt_num(k, "threads", &threads, &kt);
    if (kc && (conns < 1 || conns > CONNECTIONS_MAX))
        chk_fail(k, "connections", "must be between 1 and %d", CONNECTIONS_MAX);
    if (kt && (threads < 1 || threads > CL_THREADS_MAX))
        chk_fail(k, "threads", "must be between 1 and %d", CL_THREADS_MAX);
    else if (kc && kt && threads > conns)
        chk_fail(k, "connections", "must be at least 'threads' (%g): each thread needs one",
                 threads);
    if (chk_num(k, "requests", &x) && x < 1)
        chk_fail(k, "requests", "must be at least 1");
    if (chk_num(k, "expect_status", &x) && (x < 100 || x > 599))
        chk_fail(k, "expect_status", "must be an HTTP status between 100 and 599");
}

static void check_model(const struct chk *k)
{
    double x = 0;
    cl_chk_bounds(k->spec, k->d);
    if (chk_num(k, "rate", &x) && !(x > 0))
        chk_fail(k, "rate", "must be above 0");
    if (chk_num(k, "burstiness", &x) && !(x > 0))
        chk_fail(k, "burstiness", "must be above 0");
    if (chk_num(k, "ramp_from", &x) && x < 0)
        chk_fail(k, "ramp_from", "must not be negative");
    if (sv_get(k->spec->with, "ramp_from") && !sv_get(k->spec->with, "ramp"))
        chk_fail(k, "ramp_from", "'ramp_from' needs 'ramp' (how long the ramp lasts)");
}

/* With template: true, the texts known now must parse as templates. */
static void check_template(const struct chk *k)
{
    static const char *const keys[] = {"url", "path", "body"};
    bool on = false;
    const char *t = chk_text(k, "template");
    if (!t || sv_as_bool(sv_get(k->spec->with, "template"), &on) < 0 || !on)
        return;
    for (size_t i = 0; i < SONDE_ARRAY_LEN(keys); i++) {
        const char *text = chk_text(k, keys[i]);
        struct tmpl *tp = NULL;
        char err[256] = "";
        if (text && tmpl_parse(text, strlen(text), &tp, err, sizeof(err)) < 0)
            chk_fail(k, keys[i], "template %s", err);
        tmpl_free(tp);
    }
}

static int http_check(const struct comp_spec *spec, struct diags *d)
{
    struct chk k = {.spec = spec, .d = d};
    size_t before = d ? d->n + d->dropped : 0;
    if (!d)
        return 0;
    check_target(&k);
    check_counts(&k);
    check_model(&k);
    check_template(&k);
    return d->n + d->dropped > before ? -EINVAL : 0;
}

const struct driver_ops driver_client_http = {
    .name = "http",
    .role = ROLE_CLIENT,
    .summary = "HTTP/1.1 load (closed or open loop) through sonde's engine, with latency "
               "histograms",
    .opts = http_opts,
    .job_argv = fanout_argv,
    .agent_run = http_agent_run,
    .check = http_check,
    .start = http_start,
    .tick = http_tick,
    .stop = http_stop,
    .finish = http_finish,
    .cleanup = http_cleanup,
};
