/* client_common.c — what the clients on the load engine share (client_common.h). */
#include "drivers/clients/client_common.h"

#include "util/units.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cl_mode_choices[] = {"closed", "open", NULL};
const char *const cl_arrival_choices[] = {"constant", "poisson", "gamma", NULL};

/* ---- options ------------------------------------------------------------------------------ */

const char *cl_opt_text(const struct sv *with, const char *key)
{
    const struct sv *v = sv_get(with, key);
    return v && v->kind == SV_SCALAR ? v->str : NULL;
}

int cl_opt_int(struct comp *c, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out)
{
    const struct sv *v = sv_get(c->spec->with, key);
    int64_t x = def;
    if (v && sv_as_int(v, &x) < 0) {
        comp_set_reason(c, "option '%s' must be an integer, got '%s'", key, v->str ? v->str : "");
        return -EINVAL;
    }
    if (x < lo || x > hi) {
        comp_set_reason(c, "option '%s' must be between %lld and %lld, got %lld", key,
                        (long long)lo, (long long)hi, (long long)x);
        return -EINVAL;
    }
    *out = x;
    return 0;
}

int cl_opt_float(struct comp *c, const char *key, double def, double *out)
{
    const struct sv *v = sv_get(c->spec->with, key);
    double x = def;
    if (v && (sv_as_double(v, &x) < 0 || !isfinite(x) || x < 0)) {
        comp_set_reason(c, "option '%s' must be a non-negative number, got '%s'", key,
                        v->str ? v->str : "");
        return -EINVAL;
    }
    *out = x;
    return 0;
}

int cl_opt_bool(struct comp *c, const char *key, bool def, bool *out)
{
    const struct sv *v = sv_get(c->spec->with, key);
    bool x = def;
    if (v && sv_as_bool(v, &x) < 0) {
        comp_set_reason(c, "option '%s' must be true or false", key);
        return -EINVAL;
    }
    *out = x;
    return 0;
}

int cl_opt_dur(struct comp *c, const struct sv *map, const char *key, const char *def, int64_t *out)
{
    const struct sv *v = map ? sv_get(map, key) : NULL;
    int64_t x = 0;
    if (v ? sv_as_duration(v, &x) < 0 : def && parse_duration_ns(def, &x) < 0) {
        comp_set_reason(c, "option '%s' must be a duration like 500ms", key);
        return -EINVAL;
    }
    *out = x;
    return 0;
}

/* ---- URLs --------------------------------------------------------------------------------- */

void cl_url_clear(struct cl_url *u)
{
    free(u->host);
    free(u->host_header);
    free(u->path);
    memset(u, 0, sizeof(*u));
}

/* Splits "host", "host:port", "[v6]" or "[v6]:port" (authority, n bytes) into u. */
static int parse_authority(const char *a, size_t n, struct cl_url *u)
{
    const char *colon = NULL, *hend = a + n;
    if (n && a[0] == '[') {
        const char *rb = memchr(a, ']', n);
        if (!rb || rb == a + 1)
            return -EINVAL;
        u->host = xstrndup(a + 1, (size_t)(rb - a - 1));
        colon = rb + 1 < a + n ? rb + 1 : NULL;
        if (colon && *colon != ':')
            return -EINVAL;
    } else {
        colon = memchr(a, ':', n);
        hend = colon ? colon : a + n;
        if (hend == a)
            return -EINVAL;
        u->host = xstrndup(a, (size_t)(hend - a));
    }
    u->port = u->tls ? 443 : 80;
    if (colon) {
        char *end = NULL, *p = xstrndup(colon + 1, (size_t)(a + n - colon - 1));
        long v = strtol(p, &end, 10);
        bool bad = !*p || *end || v < 1 || v > 65535;
        free(p);
        if (bad)
            return -EINVAL;
        u->port = (uint16_t)v;
    }
    u->host_header = xstrndup(a, n);
    return 0;
}

int cl_url_parse(const char *text, struct cl_url *u)
{
    const char *rest = NULL;
    memset(u, 0, sizeof(*u));
    if (str_startswith(text, "http://"))
        rest = text + 7;
    else if (str_startswith(text, "https://")) {
        rest = text + 8;
        u->tls = true;
    } else
        return -EPROTONOSUPPORT;
    size_t alen = strcspn(rest, "/?#");
    if (strpbrk(text, " \t\r\n") || memchr(rest, '@', alen) || parse_authority(rest, alen, u) < 0) {
        cl_url_clear(u);
        return -EINVAL;
    }
    u->path = xstrndup(rest + alen, strcspn(rest + alen, "#"));
    return 0;
}

/* ---- the engine's configuration ---------------------------------------------------------- */

int cl_load_model(struct comp *c, struct lg_config *cfg)
{
    const struct sv *w = c->spec->with;
    const char *mode = sv_str(w, "mode", "closed"), *arrival = sv_str(w, "arrival", "poisson");
    int64_t seed = 1;
    cfg->model = !strcmp(mode, "open") ? LG_OPEN : LG_CLOSED;
    cfg->arrival = !strcmp(arrival, "constant") ? LG_CONSTANT
                   : !strcmp(arrival, "gamma")  ? LG_GAMMA
                                                : LG_POISSON;
    int r = cl_opt_float(c, "rate", 0, &cfg->rate);
    r = r ? r : cl_opt_float(c, "ramp_from", 0, &cfg->ramp_from);
    r = r ? r : cl_opt_float(c, "burstiness", 1, &cfg->burstiness);
    r = r ? r : cl_opt_int(c, "seed", 1, INT64_MIN, INT64_MAX, &seed);
    r = r ? r : cl_opt_dur(c, w, "ramp", NULL, &cfg->ramp_ns);
    r = r ? r : cl_opt_dur(c, w, "think", NULL, &cfg->think_ns);
    cfg->seed = (uint64_t)seed;
    if (r == 0 && cfg->model == LG_OPEN && !(cfg->rate > 0)) {
        comp_set_reason(c, "mode open needs option 'rate' (requests/s) above 0");
        r = -EINVAL;
    }
    return r;
}

const char *cl_env(const struct comp *c, const char *name)
{
    size_t n = strlen(name);
    for (char **e = c->spec ? c->spec->env : NULL; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=')
            return *e + n + 1;
    return getenv(name);
}

const struct comp *cl_target_service(struct comp *c, const char *name)
{
    const struct comp *s = session_service(c->session, name);
    if (!s)
        comp_set_reason(c, "target '%s' is not a service of this benchmark", name);
    else if (!s->port)
        comp_set_reason(c, "target service '%s' has no port", name);
    return s && s->port ? s : NULL;
}

int cl_limits(struct comp *c, struct lg_config *cfg, int64_t conns_def, int64_t conns_max)
{
    const struct sv *w = c->spec->with;
    int64_t conns = 0, threads = 0, reqs = 0;
    int r = cl_opt_int(c, "connections", conns_def, 1, conns_max, &conns);
    r = r ? r : cl_opt_int(c, "threads", 1, 1, CL_THREADS_MAX, &threads);
    r = r ? r : cl_opt_int(c, "requests", 0, 0, INT64_MAX, &reqs);
    r = r ? r : cl_opt_dur(c, w, "duration", NULL, &cfg->duration_ns);
    r = r ? r : cl_opt_dur(c, w, "warmup", "0s", &cfg->warmup_ns);
    r = r ? r : cl_opt_dur(c, w, "connect_timeout", "5s", &cfg->connect_timeout_ns);
    r = r ? r : cl_opt_dur(c, w, "first_byte_timeout", NULL, &cfg->first_byte_timeout_ns);
    r = r ? r : cl_opt_dur(c, w, "timeout", NULL, &cfg->request_timeout_ns);
    r = r ? r : cl_opt_dur(c, w, "busy_poll", "50us", &cfg->busy_poll_ns);
    if (r < 0)
        return r;
    cfg->connections = (unsigned)conns;
    cfg->threads = (unsigned)threads;
    cfg->max_requests = (uint64_t)reqs;
    cfg->hdr_sigfigs = 3;
    return 0;
}

int cl_start(struct comp *c, const struct lg_config *cfg, struct lg_run **run)
{
    char err[256] = "";
    int r = lg_start(cfg, run, err, sizeof(err));
    if (r < 0)
        comp_set_reason(c, "cannot start the load: %s", err[0] ? err : strerror(-r));
    return r;
}

bool cl_done(struct lg_run *run)
{
    return !run || lg_done(run);
}

bool cl_status_due(int64_t *at, int64_t now)
{
    if (now - *at < 1000000000LL)
        return false;
    *at = now;
    return true;
}

int cl_wait(struct comp *c, struct lg_run *run, bool *waited, struct lg_stats **out)
{
    int r = lg_wait(run, out);
    *waited = true;
    if (r < 0)
        comp_set_reason(c, "the load engine failed: %s", strerror(-r));
    return r;
}

void cl_stop(struct lg_run *run, bool waited)
{
    if (run && !waited)
        lg_stop(run);
}

/* ---- one request outside the load ------------------------------------------------------- */

static void once_sent(void *ud, void **rs, int64_t intended, int64_t sent)
{
    struct cl_once *o = ud;
    (void)rs;
    (void)intended;
    o->sent = sent;
}

static void once_headers(void *ud, void **rs, int status, int64_t t)
{
    struct cl_once *o = ud;
    (void)rs;
    (void)t;
    o->status = status;
}

static void once_body(void *ud, void **rs, const char *data, size_t len, int64_t t)
{
    struct cl_once *o = ud;
    (void)rs;
    (void)t;
    if (o->on_body) {
        o->on_body(o, data, len);
        return;
    }
    size_t max = o->body_max ? o->body_max : 4096;
    if (o->body.len < max)
        sbuf_add(&o->body, data, len < max - o->body.len ? len : max - o->body.len);
}

static void once_done(void *ud, void **rs, bool ok, enum lg_err err, int64_t t)
{
    struct cl_once *o = ud;
    (void)rs;
    o->err = ok ? -1 : (int)err;
    o->done = t;
}

void cl_bounded(struct lg_config *cfg, uint64_t n)
{
    cfg->model = LG_CLOSED;
    cfg->max_requests = n;
    cfg->sends_bounded = true;
    cfg->duration_ns = cfg->warmup_ns = cfg->think_ns = 0;
    cfg->keep_second_hdrs = false;
    if (cfg->connections > n)
        cfg->connections = (unsigned)n;
    if (cfg->threads > cfg->connections)
        cfg->threads = cfg->connections;
}

/* cl_start and cl_wait, the run freed; its statistics in *out (NULL: discarded). */
static int run_whole(struct comp *c, const struct lg_config *cfg, struct lg_stats **out)
{
    struct lg_run *run = NULL;
    struct lg_stats *s = NULL;
    int r = cl_start(c, cfg, &run);
    if (r == 0) {
        bool waited = false;
        r = cl_wait(c, run, &waited, &s);
    }
    lg_free(run);
    if (out)
        *out = s;
    else
        lg_stats_free(s);
    return r;
}

int cl_run(struct comp *c, const struct lg_config *cfg)
{
    return run_whole(c, cfg, NULL);
}

int cl_once_run(struct comp *c, const struct lg_config *base, const struct sbuf *req,
                const char *what, struct cl_once *o)
{
    static const struct lg_stream_ops hooks = {.on_headers = once_headers,
                                               .on_body = once_body,
                                               .on_done = once_done,
                                               .on_sent = once_sent};
    struct lg_config cfg = *base;
    cfg.make_request = NULL;
    cfg.request = req->s;
    cfg.request_len = req->len;
    cfg.head = false;
    cfg.stream = &hooks;
    cfg.stream_ud = o;
    cl_bounded(&cfg, 1);
    cfg.duration_ns = CL_ONCE_LIMIT;
    cfg.expect_status = 0;
    o->err = LG_ERR_COUNT; /* none yet: not even an attempt */
    struct lg_stats *s = NULL;
    int r = run_whole(c, &cfg, &s);
    for (int e = 0; !o->status && o->err == LG_ERR_COUNT && s && e < LG_ERR_COUNT; e++)
        if (s->errors[e]) /* a failure outside any request: connect, TLS */
            o->err = e;
    lg_stats_free(s);
    if (r == 0 && !o->status) {
        comp_set_reason(c, "no answer from %s", what);
        r = -EIO;
    }
    return r;
}

/* ---- results ------------------------------------------------------------------------------ */

const char *cl_lg_err_name(int e)
{
    return lg_err_name((enum lg_err)e);
}

void cl_put_ms(struct comp *c, const char *name, double ns)
{
    comp_metric(c, name, "ms", NULL, ns / CL_NS_PER_MS);
}

void cl_put_hdr_summary(struct comp *c, const char *prefix, const struct hdr *h)
{
    static const struct {
        double p;
        const char *suffix;
    } pcts[] = {{50, "p50"}, {90, "p90"}, {99, "p99"}, {99.9, "p999"}};
    if (!h || hdr_count(h) == 0)
        return;
    for (size_t i = 0; i < SONDE_ARRAY_LEN(pcts); i++) {
        if (!hdr_percentile_ok(h, pcts[i].p))
            continue;
        char *name = xasprintf("%s_%s", prefix, pcts[i].suffix);
        cl_put_ms(c, name, (double)hdr_percentile(h, pcts[i].p));
        free(name);
    }
    char *name = xasprintf("%s_max", prefix);
    cl_put_ms(c, name, (double)hdr_max(h));
    free(name);
    name = xasprintf("%s_mean", prefix);
    cl_put_ms(c, name, hdr_mean(h));
    free(name);
}

void cl_put_histogram(struct comp *c, const char *name, const struct hdr *h)
{
    if (h && hdr_count(h) > 0)
        comp_histogram(c, name, "ns", NULL, h);
}

void cl_count_status(uint64_t status_class[6], int status)
{
    if (status <= 0)
        return;
    int cls = status / 100;
    status_class[cls >= 1 && cls <= 5 ? cls : 0]++;
}

uint64_t cl_total_errors(const uint64_t *errors, int nerr)
{
    uint64_t n = 0;
    for (int i = 0; i < nerr; i++)
        n += errors[i];
    return n;
}

static const char *const status_names[6] = {"status_other", "status_1xx", "status_2xx",
                                            "status_3xx",   "status_4xx", "status_5xx"};

int cl_counts_to_extra(struct lg_stats *s, uint64_t requests, uint64_t ok, const uint64_t *errors,
                       int nerr, cl_err_name_fn *err_name, const uint64_t status_class[6])
{
    int r = lg_extra_add_counter(s, "requests", requests);
    r = r ? r : lg_extra_add_counter(s, "ok", ok);
    for (int i = 0; r == 0 && i < nerr; i++) {
        char *name = xasprintf("errors_%s", err_name(i));
        r = lg_extra_add_counter(s, name, errors[i]);
        free(name);
    }
    for (int i = 0; r == 0 && i < 6; i++)
        r = lg_extra_add_counter(s, status_names[i], status_class[i]);
    return r;
}

void cl_counts_from_extra(const struct lg_stats *s, uint64_t *requests, uint64_t *ok,
                          uint64_t *errors, int nerr, cl_err_name_fn *err_name,
                          uint64_t status_class[6])
{
    *requests = lg_extra_count(s, "requests");
    *ok = lg_extra_count(s, "ok");
    for (int i = 0; i < nerr; i++) {
        char *name = xasprintf("errors_%s", err_name(i));
        errors[i] = lg_extra_count(s, name);
        free(name);
    }
    for (int i = 0; i < 6; i++)
        status_class[i] = lg_extra_count(s, status_names[i]);
}

void cl_live_totals(struct comp *c, double requests, double bytes_in, double bytes_out)
{
    if (requests >= 0)
        comp_live_counter(c, "sonde_client_requests_total",
                          "requests (operations, transactions, queries) completed", requests);
    if (bytes_in >= 0)
        comp_live_counter(c, "sonde_client_bytes_in_total", "bytes received (read)", bytes_in);
    if (bytes_out >= 0)
        comp_live_counter(c, "sonde_client_bytes_out_total", "bytes sent (written)", bytes_out);
}

void cl_live(struct comp *c, const struct lg_progress *p, bool latency)
{
    bool bytes = p->bytes_in || p->bytes_out;
    cl_live_totals(c, (double)p->requests, bytes ? (double)p->bytes_in : -1,
                   bytes ? (double)p->bytes_out : -1);
    comp_live_counter(c, "sonde_client_errors_total", "requests that failed", (double)p->errors);
    if (latency)
        comp_live_histogram(c, "sonde_client_request_duration_seconds",
                            "latency of successful requests (open loop: from the intended send "
                            "time)",
                            lg_live_le, p->lat_buckets, LG_LIVE_BUCKETS, p->lat_sum_s);
}

void cl_live_final(struct comp *c, struct lg_run *run)
{
    struct lg_progress p;
    lg_progress(run, &p);
    cl_live(c, &p, true);
}

void cl_put_counts(struct comp *c, uint64_t requests, uint64_t ok, const uint64_t *errors, int nerr,
                   cl_err_name_fn *err_name, const uint64_t status_class[6])
{
    comp_metric(c, "requests", NULL, NULL, (double)requests);
    comp_metric(c, "ok", NULL, NULL, (double)ok);
    /* the final totals (live values stop at the last tick) */
    cl_live_totals(c, (double)requests, -1, -1);
    comp_live_counter(c, "sonde_client_errors_total", "requests that failed",
                      (double)cl_total_errors(errors, nerr));
    comp_metric(c, "errors", NULL, NULL, (double)cl_total_errors(errors, nerr));
    for (int i = 0; i < nerr; i++) {
        if (!errors[i])
            continue;
        char *name = xasprintf("errors_%s", err_name(i));
        comp_metric(c, name, NULL, NULL, (double)errors[i]);
        free(name);
    }
    for (size_t i = 0; i < SONDE_ARRAY_LEN(status_names); i++)
        if (status_class[i])
            comp_metric(c, status_names[i], NULL, NULL, (double)status_class[i]);
}

int cl_judge(struct comp *c, uint64_t ok, const uint64_t *errors, int nerr,
             cl_err_name_fn *err_name)
{
    if (ok > 0)
        return 0;
    uint64_t errs = cl_total_errors(errors, nerr);
    if (errs == 0) {
        comp_set_reason(c, "no request completed");
        return -EIO;
    }
    int top = 0;
    for (int i = 1; i < nerr; i++)
        if (errors[i] > errors[top])
            top = i;
    comp_set_reason(c, "no successful request: %llu of %llu failed with %s errors",
                    (unsigned long long)errors[top], (unsigned long long)errs, err_name(top));
    return -EIO;
}

/* ---- checks ------------------------------------------------------------------------------- */

void cl_chk_vfail(const struct comp_spec *spec, struct diags *d, const char *key, const char *fmt,
                  va_list ap)
{
    const struct sv *v = key ? sv_get(spec->with, key) : NULL;
    const struct sv *at = v ? v : spec->with ? spec->with : spec->node;
    char *path = xasprintf("clients.%s.with%s%s", spec->name, key ? "." : "", key ? key : "");
    char *msg = xvasprintf(fmt, ap);
    diags_add(d, at ? at->pos : (struct sv_pos){0}, path, NULL, "%s", msg);
    free(msg);
    free(path);
}

void cl_chk_fail(const struct comp_spec *spec, struct diags *d, const char *key, const char *fmt,
                 ...)
{
    va_list ap;
    va_start(ap, fmt);
    cl_chk_vfail(spec, d, key, fmt, ap);
    va_end(ap);
}

const char *cl_chk_text(const struct comp_spec *spec, const char *key)
{
    const char *s = cl_opt_text(spec->with, key);
    return s && !recipe_has_ref(s) ? s : NULL;
}

void cl_chk_bounds(const struct comp_spec *spec, struct diags *d)
{
    const char *mode = cl_chk_text(spec, "mode");
    if (spec->partial)
        return;
    if (!sv_get(spec->with, "duration") && !sv_get(spec->with, "requests"))
        cl_chk_fail(spec, d, NULL, "give 'duration' or 'requests' (or both): when to stop");
    if (mode && !strcmp(mode, "open") && !sv_get(spec->with, "rate"))
        cl_chk_fail(spec, d, "rate", "mode open needs 'rate' (requests/s in total)");
}

int cl_base_url_parse(const char *text, struct cl_url *u)
{
    if (strpbrk(text, "?#@")) {
        memset(u, 0, sizeof(*u));
        return -EINVAL;
    }
    int r = cl_url_parse(text, u);
    size_t n = r == 0 ? strlen(u->path) : 0;
    while (n && u->path[n - 1] == '/')
        u->path[--n] = '\0';
    return r;
}

int cl_server_url(struct comp *c, const char *what, struct cl_url *u)
{
    const char *url = cl_opt_text(c->spec->with, "url"),
               *target = cl_opt_text(c->spec->with, "target");
    char *text = NULL;
    memset(u, 0, sizeof(*u));
    if (url) {
        text = xstrdup(url);
    } else if (target) {
        const struct comp *s = cl_target_service(c, target);
        if (!s)
            return -ENOENT;
        text = xasprintf("http://%s:%s", s->host ? s->host : "127.0.0.1", s->port);
    } else {
        comp_set_reason(c, "set option 'url' or 'target' (%s)", what);
        return -EINVAL;
    }
    int r = cl_base_url_parse(text, u);
    if (r < 0 || u->path[0]) {
        comp_set_reason(c, "option 'url': expected http[s]://host[:port] (no path), got '%s'",
                        text);
        cl_url_clear(u);
        r = -EINVAL;
    }
    free(text);
    return r;
}

void cl_put_open_loop(struct comp *c, const struct lg_config *cfg, const struct lg_stats *s)
{
    if (cfg->model != LG_OPEN)
        return;
    comp_metric(c, "achieved_rate", "req/s", NULL, s->achieved_rate);
    const struct hdr *d = s->issue_delay;
    bool p99 = d && hdr_count(d) && hdr_percentile_ok(d, 99);
    if (p99)
        cl_put_ms(c, "issue_delay_p99", (double)hdr_percentile(d, 99));
    comp_metric(c, "unsent", NULL, NULL, (double)s->unsent);
    if (s->rate_missed)
        comp_warn(c,
                  "could not hold the requested rate: issue delay p99 %.3g ms, %llu due "
                  "requests never sent",
                  p99 ? (double)hdr_percentile(d, 99) / CL_NS_PER_MS : 0.0,
                  (unsigned long long)s->unsent);
}

void cl_add_engine_errors(uint64_t *errors, uint64_t *requests, const struct lg_stats *s)
{
    static const enum lg_err outside[] = {LG_ERR_CONNECT, LG_ERR_TLS};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(outside); i++) {
        enum lg_err e = outside[i];
        uint64_t extra = s->errors[e] > errors[e] ? s->errors[e] - errors[e] : 0;
        errors[e] += extra;
        *requests += extra;
    }
}

void cl_secs_add(struct cl_secs *s, int64_t ws, int64_t t, uint64_t a, uint64_t b)
{
    size_t i = t > ws ? (size_t)((t - ws) / 1000000000LL) : 0;
    if (i >= s->n) {
        size_t n = i + 1 > 2 * s->n ? i + 1 : 2 * s->n;
        s->a = xrealloc(s->a, n * sizeof(*s->a));
        s->b = xrealloc(s->b, n * sizeof(*s->b));
        memset(s->a + s->n, 0, (n - s->n) * sizeof(*s->a));
        memset(s->b + s->n, 0, (n - s->n) * sizeof(*s->b));
        s->n = n;
    }
    s->a[i] += a;
    s->b[i] += b;
}

void cl_secs_free(struct cl_secs *s)
{
    free(s->a);
    free(s->b);
    memset(s, 0, sizeof(*s));
}
