/* prometheus.c — a real Prometheus as a service of the trial.
 *
 * It scrapes sonde's own exporter (job "sonde"), every service of the trial
 * started before it whose `metrics` option names a path (job = the service's
 * name), and the static `targets`. Its TSDB stays in the component's work
 * directory, but nothing reads it after the trial: before Prometheus is
 * stopped (the `stop` op runs while it still serves), the series named by
 * `pull` are read back through /api/v1/query_range and stored as the
 * component's series, so reports never depend on this Prometheus.
 *
 * It always runs on the machine sonde runs on, also with a batch backend:
 * there it scrapes the services' jobs on their nodes over the network, and
 * the pull-back talks to it locally. */
#include "core/session.h"
#include "loadgen/fetch.h"
#include "util/net.h"
#include "util/units.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SEC_NS              1000000000LL
#define PROM_MAX_POINTS     11000 /* per series: Prometheus refuses more in one query_range */
#define PROM_MAX_RESPONSE   ((size_t)256 << 20)
#define PROM_PULL_POINTS    2000000 /* per answer: ~60 MB of JSON, parsed in memory */
#define PROM_QUERY_TIMEOUT  (15 * SEC_NS)
#define PROM_API_TIMEOUT    (2 * SEC_NS)
#define PROM_STARTUP_WATCH  (8 * SEC_NS) /* 5 s until targets apply, and its start */
#define PROM_POLL_NS        (200 * 1000000LL)
#define PROM_SETTLE_NS      (250 * 1000000LL) /* a scrape's samples are appended after it reports */
#define PROM_MIN_INTERVAL   (100 * 1000000LL)
#define PROM_MAX_INTERVAL   (3600 * SEC_NS)
#define PROM_MAX_SERIES_CAP 1000000
#define SONDE_JOB           "sonde"

static const struct opt_def target_fields[] = {
    {"job", OPT_STR, true, NULL, "the job label of its series (unique in this service)", NULL,
     NULL},
    {"url", OPT_STR, true, NULL, "http://HOST:PORT/PATH of its metrics (no query string)", NULL,
     NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

static const struct opt_def prom_opts[] = {
    {"scrape_interval", OPT_DURATION, false, "1s",
     "how often every target is scraped (100ms to 1h); also the step of the pull-back", NULL, NULL},
    {"targets", OPT_MAP_LIST, false, NULL,
     "extra targets, each {job, url}, scraped besides sonde's exporter and the services with "
     "`metrics`",
     NULL, target_fields},
    {"pull", OPT_STR_LIST, false, "every series of its jobs",
     "PromQL selectors whose series are stored with the session before Prometheus stops; [] "
     "pulls nothing",
     NULL, NULL},
    {"max_series", OPT_INT, false, "20000",
     "most series stored by the pull-back; more are cut with a warning", NULL, NULL},
    {"binary", OPT_STR, false, "prometheus", "the Prometheus program (2.x)", NULL, NULL},
    {"args", OPT_STR_LIST, false, NULL, "extra command-line arguments for Prometheus", NULL, NULL},
    {"retention", OPT_DURATION, false, "1d", "how long its own TSDB keeps samples", NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

struct prom_state {
    int64_t interval_ns;
    int64_t max_series;
    int64_t start_wall; /* the pull-back window starts here */
    char *base;         /* http://HOST:PORT */
    char **jobs;        /* every job it scrapes (the default pull selector) */
};

/* ---- validation ---- */

static char *opt_path(const struct comp_spec *spec, const char *key)
{
    return xasprintf("%ss.%s.with.%s", comp_role_name(spec->role), spec->name, key);
}

/* A scalar option still holding a run-time reference is checked when it runs. */
static bool resolved(const struct sv *v)
{
    return v && v->kind == SV_SCALAR && !recipe_has_ref(v->str);
}

static void check_duration_range(const struct comp_spec *spec, const char *key, int64_t lo,
                                 int64_t hi, struct diags *d)
{
    const struct sv *v = sv_get(spec->with, key);
    int64_t ns = 0;
    if (!resolved(v) || sv_as_duration(v, &ns) < 0 || (ns >= lo && ns <= hi))
        return;
    char a[32], b[32], *p = opt_path(spec, key);
    format_duration(lo, a, sizeof(a));
    format_duration(hi, b, sizeof(b));
    if (hi == INT64_MAX)
        diags_add(d, v->pos, p, NULL, "must be at least %s, got '%s'", a, v->str);
    else
        diags_add(d, v->pos, p, NULL, "must be from %s to %s, got '%s'", a, b, v->str);
    free(p);
}

/* The target's URL: http://HOST:PORT/PATH without a query; 0 or -EINVAL with msg. */
static int target_url(const char *s, struct net_url *u, char *msg, size_t n)
{
    if (net_url_parse(s, u) < 0) {
        snprintf(msg, n, "'%s' is not an http://HOST:PORT/PATH URL", s);
        return -EINVAL;
    }
    if (strchr(u->path, '?')) {
        snprintf(msg, n, "'%s': a query string is not supported in a target's URL", s);
        net_url_free(u);
        return -EINVAL;
    }
    return 0;
}

static void check_targets(const struct comp_spec *spec, struct diags *d)
{
    const struct sv *list = sv_get(spec->with, "targets");
    for (size_t i = 0; list && list->kind == SV_SEQ && i < list->n; i++) {
        const struct sv *job = sv_get(list->kids[i], "job"), *url = sv_get(list->kids[i], "url");
        char *p = xasprintf("%ss.%s.with.targets[%zu]", comp_role_name(spec->role), spec->name, i);
        char *pj = xasprintf("%s.job", p), *pu = xasprintf("%s.url", p);
        if (resolved(job) && (!job->str[0] || !strcmp(job->str, SONDE_JOB)))
            diags_add(d, job->pos, pj, NULL, "'%s' is %s", job->str,
                      job->str[0] ? "the job of sonde's own exporter" : "empty");
        for (size_t k = 0; resolved(job) && k < i; k++) {
            const struct sv *o = sv_get(list->kids[k], "job");
            if (resolved(o) && !strcmp(o->str, job->str))
                diags_add(d, job->pos, pj, NULL, "'%s' is also the job of targets[%zu]", job->str,
                          k);
        }
        struct net_url u;
        char msg[512];
        if (resolved(url) && target_url(url->str, &u, msg, sizeof(msg)) == 0)
            net_url_free(&u);
        else if (resolved(url))
            diags_add(d, url->pos, pu, NULL, "%s", msg);
        free(pj);
        free(pu);
        free(p);
    }
}

static void check_max_series(const struct comp_spec *spec, struct diags *d)
{
    const struct sv *ms = sv_get(spec->with, "max_series");
    int64_t n = 0;
    if (resolved(ms) && sv_as_int(ms, &n) == 0 && (n < 1 || n > PROM_MAX_SERIES_CAP)) {
        char *p = opt_path(spec, "max_series");
        diags_add(d, ms->pos, p, NULL, "must be an integer from 1 to %d, got '%s'",
                  PROM_MAX_SERIES_CAP, ms->str);
        free(p);
    }
}

/* Empty texts where a selector or a program is expected. */
static void check_not_empty(const struct comp_spec *spec, struct diags *d)
{
    const struct sv *pull = sv_get(spec->with, "pull");
    for (size_t i = 0; pull && pull->kind == SV_SEQ && i < pull->n; i++) {
        if (resolved(pull->kids[i]) && !pull->kids[i]->str[0]) {
            char *p = xasprintf("%ss.%s.with.pull[%zu]", comp_role_name(spec->role), spec->name, i);
            diags_add(d, pull->kids[i]->pos, p, NULL, "an empty selector");
            free(p);
        }
    }
    const struct sv *bin = sv_get(spec->with, "binary");
    if (resolved(bin) && !bin->str[0]) {
        char *p = opt_path(spec, "binary");
        diags_add(d, bin->pos, p, NULL, "an empty program name");
        free(p);
    }
}

static int prom_check(const struct comp_spec *spec, struct diags *d)
{
    size_t before = d ? d->n + d->dropped : 0;
    if (!spec->port && !spec->partial) {
        char *p = xasprintf("services.%s", spec->name);
        diags_add(d, spec->node ? spec->node->pos : (struct sv_pos){0}, p, NULL,
                  "the prometheus service needs `port:` (auto or a number) to listen on");
        free(p);
    }
    check_duration_range(spec, "scrape_interval", PROM_MIN_INTERVAL, PROM_MAX_INTERVAL, d);
    check_targets(spec, d);
    check_max_series(spec, d);
    check_not_empty(spec, d);
    check_duration_range(spec, "retention", 60 * SEC_NS, INT64_MAX, d);
    return d && d->n + d->dropped > before ? -EINVAL : 0;
}

/* ---- the configuration ---- */

/* "1500ms": a duration Prometheus reads (flags and configuration alike). */
static char *prom_duration(int64_t ns)
{
    int64_t ms = ns / 1000000;
    return xasprintf("%lldms", (long long)(ms > 0 ? ms : 1));
}

static json_t *scrape_job(const char *job, const char *path, const char *hostport, int64_t interval)
{
    int64_t timeout = interval < 10 * SEC_NS ? interval : 10 * SEC_NS; /* ≤ interval */
    char *to = prom_duration(timeout);
    json_t *j = json_pack("{s:s, s:s, s:s, s:[{s:[s]}]}", "job_name", job, "metrics_path", path,
                          "scrape_timeout", to, "static_configs", "targets", hostport);
    free(to);
    return j;
}

static bool job_taken(char *const *jobs, const char *job)
{
    for (size_t i = 0; jobs && jobs[i]; i++)
        if (!strcmp(jobs[i], job))
            return true;
    return false;
}

/* One job per service of the trial that says where its metrics are. Only
 * those started before this one exist yet: the recipe lists it after them. */
static int add_service_jobs(struct comp *c, struct prom_state *st, json_t *jobs)
{
    struct comp **all = NULL;
    size_t n = session_comps(c->session, &all);
    for (size_t i = 0; i < n; i++) {
        struct comp *o = all[i];
        if (o == c || !o->spec || o->spec->role != ROLE_SERVICE)
            continue;
        char *why = NULL, *url = comp_metrics_url(o, NULL, &why), msg[512];
        struct net_url u;
        if (url && target_url(url, &u, msg, sizeof(msg)) < 0) {
            why = xasprintf("metrics %s", msg);
            free(url);
            url = NULL;
        }
        if (!url) {
            if (why)
                comp_warn(c, "service %s has `metrics`, but %s: not scraped", o->name, why);
            free(why);
            continue;
        }
        free(url);
        if (job_taken(st->jobs, o->name)) {
            comp_set_reason(c,
                            "service %s has `metrics`, but its name is already a job (sonde's "
                            "exporter or one of the targets)",
                            o->name);
            net_url_free(&u);
            return -EINVAL;
        }
        json_array_append_new(jobs, scrape_job(o->name, u.path, u.hostport, st->interval_ns));
        strv_push(&st->jobs, o->name);
        net_url_free(&u);
    }
    return 0;
}

static int add_targets(struct comp *c, struct prom_state *st, json_t *jobs)
{
    const struct sv *list = sv_get(c->spec->with, "targets");
    for (size_t i = 0; list && list->kind == SV_SEQ && i < list->n; i++) {
        const char *job = sv_str(list->kids[i], "job", ""), *url = sv_str(list->kids[i], "url", "");
        struct net_url u;
        char msg[512];
        if (target_url(url, &u, msg, sizeof(msg)) < 0) {
            comp_set_reason(c, "targets[%zu].url: %s", i, msg);
            return -EINVAL;
        }
        if (!job[0] || job_taken(st->jobs, job)) {
            comp_set_reason(c, "targets[%zu].job: '%s' is %s", i, job,
                            job[0] ? "already a job of this Prometheus" : "empty");
            net_url_free(&u);
            return -EINVAL;
        }
        json_array_append_new(jobs, scrape_job(job, u.path, u.hostport, st->interval_ns));
        strv_push(&st->jobs, job);
        net_url_free(&u);
    }
    return 0;
}

/* Writes <work>/prometheus.yml (JSON, which YAML readers take as it is: no
 * quoting rules to get wrong with arbitrary job names). */
static int write_config(struct comp *c, struct prom_state *st, const char *path)
{
    json_t *jobs = json_array();
    const char *exporter = session_exporter_target(c->session);
    if (exporter) {
        json_array_append_new(jobs, scrape_job(SONDE_JOB, "/metrics", exporter, st->interval_ns));
        strv_push(&st->jobs, SONDE_JOB);
    }
    /* targets first: a service named like a target is the conflict reported */
    int r = add_targets(c, st, jobs);
    if (r == 0)
        r = add_service_jobs(c, st, jobs);
    char *iv = prom_duration(st->interval_ns);
    json_t *cfg = json_pack("{s:{s:s, s:s}, s:o}", "global", "scrape_interval", iv,
                            "evaluation_interval", iv, "scrape_configs", jobs);
    free(iv);
    char *json = r == 0 ? json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(cfg);
    if (r < 0)
        return r;
    char *text = xasprintf("# written by sonde for service %s\n%s\n", c->name, json);
    r = write_file_atomic(path, text, strlen(text));
    free(text);
    free(json);
    if (r < 0)
        comp_set_reason(c, "cannot write %s: %s", path, strerror(-r));
    else if (!st->jobs)
        comp_warn(c, "nothing to scrape: no exporter, no service with `metrics`, no targets");
    return r;
}

/* ---- its HTTP API ---- */

/* An RFC 3339 time as Prometheus writes it ("2026-12-03T15:53:50.607123Z",
 * or with an offset) in ns since the epoch; -1 when malformed. */
static int64_t parse_rfc3339(const char *s)
{
    struct tm tm = {0};
    int used = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6)
        return -1;
    if (tm.tm_year < 1970) /* Go's zero time: never */
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t t = (int64_t)timegm(&tm) * SEC_NS;
    const char *p = s + used;
    if (*p == '.') {
        int64_t scale = SEC_NS / 10;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            t += (*p - '0') * scale;
    }
    int hh = 0, mm = 0;
    if (*p == '+' || *p == '-') {
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return -1;
        int64_t off = ((int64_t)hh * 3600 + mm * 60) * SEC_NS;
        t += *p == '+' ? -off : off;
    } else if (*p != 'Z') {
        return -1;
    }
    return t;
}

/* A second Ctrl-C (the user insists) cuts a query in flight short. */
static bool hurried(void *arg)
{
    (void)arg;
    return proc_hurried();
}

/* GET base+path; the parsed JSON of a successful API answer, or NULL with
 * why in err (Prometheus's own error text when it gave one). */
static json_t *api_get(const struct prom_state *st, const char *path, int64_t timeout, char *err,
                       size_t n)
{
    char *url = xasprintf("%s%s", st->base, path);
    struct fetch_result res = {0};
    json_t *doc = NULL;
    const struct net_cancel cancel = {.fn = hurried};
    if (http_fetch("GET", url, NULL, NULL, 0, timeout, PROM_MAX_RESPONSE, &cancel, &res, err, n) ==
        0) {
        json_error_t je;
        doc = json_loadb(res.body, res.len, 0, &je);
        const char *status = json_string_value(json_object_get(doc, "status"));
        if (!doc) {
            char line[200];
            str_last_line(res.body, res.len, line, sizeof(line));
            snprintf(err, n, "HTTP %d, not JSON (%s): %s", res.status, je.text, line);
        } else if (res.status != 200 || !status || strcmp(status, "success")) {
            const char *type = json_string_value(json_object_get(doc, "errorType"));
            const char *msg = json_string_value(json_object_get(doc, "error"));
            snprintf(err, n, "HTTP %d: %s%s%s", res.status, type ? type : "", type ? ": " : "",
                     msg ? msg : "no error text");
            json_decref(doc);
            doc = NULL;
        }
    }
    fetch_result_free(&res);
    free(url);
    return doc;
}

/* How many of Prometheus's active targets were last scraped before `since`
 * (-1: never scraped counts as before 0); *total gets their number. -1 when
 * the API did not answer, with why in err. */
static int targets_behind(const struct prom_state *st, int64_t since, size_t *total, char *err,
                          size_t n)
{
    json_t *doc = api_get(st, "/api/v1/targets?state=active", PROM_API_TIMEOUT, err, n);
    json_t *targets = json_object_get(json_object_get(doc, "data"), "activeTargets");
    size_t i;
    int behind = 0;
    json_t *t;
    json_array_foreach(targets, i, t)
    {
        behind += parse_rfc3339(json_string_value(json_object_get(t, "lastScrape"))) < since;
    }
    *total = json_array_size(targets);
    if (doc && !targets)
        snprintf(err, n, "no activeTargets in /api/v1/targets");
    json_decref(doc);
    return targets ? behind : -1;
}

/* ---- start ---- */

/* The last line Prometheus wrote on stderr (its reason for exiting), or "". */
static void last_words(const struct comp *c, char *buf, size_t n)
{
    buf[0] = '\0';
    int fd = open(c->err_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat sb;
    char tail[4096];
    off_t off = fstat(fd, &sb) == 0 && sb.st_size > (off_t)sizeof(tail)
                    ? sb.st_size - (off_t)sizeof(tail)
                    : 0;
    ssize_t got = pread(fd, tail, sizeof(tail), off);
    close(fd);
    str_last_line(tail, got > 0 ? (size_t)got : 0, buf, n);
}

/* Prometheus checks its flags and configuration within moments: when it
 * exits that early, its own last line is a clearer reason than "exited before
 * it was ready". And it applies its targets only every 5 s: the trial waits
 * until each has been scraped once, or the first seconds of the load would
 * be missing from every series. Bounded; the readiness probe does the rest. */
static int watch_startup(struct comp *c, struct prom_state *st)
{
    int64_t limit = PROM_STARTUP_WATCH + 2 * st->interval_ns;
    int64_t deadline = mono_ns() + limit;
    size_t njobs = strv_len(st->jobs), total = 0;
    char err[512] = "";
    int behind = -1;
    while (!proc_hurried() && !comp_cancelled(c) && mono_ns() < deadline) {
        if (c->backend->poll(&c->proc) == 1) {
            char how[128], said[512];
            proc_describe_status(c->proc.status, how, sizeof(how));
            last_words(c, said, sizeof(said));
            comp_set_reason(c, "prometheus ended at start (%s)%s%s (see %s)", how,
                            said[0] ? ": " : "", said, c->err_path);
            return -EIO;
        }
        behind = targets_behind(st, 0, &total, err, sizeof(err));
        if (behind == 0 && total >= njobs)
            return 0;
        sleep_ns(PROM_POLL_NS);
    }
    if (proc_hurried() || comp_cancelled(c))
        return 0;
    char dur[32];
    format_duration(limit, dur, sizeof(dur));
    if (behind >= 0)
        snprintf(err, sizeof(err), "%d of %zu targets not scraped yet", behind, total);
    comp_warn(c,
              "not every target was scraped within %s of the start (%s): the trial's first "
              "seconds may be missing from its series",
              dur, err);
    return 0;
}

static int prom_argv(struct comp *c, const char *cfg, char ***out)
{
    char **extra = NULL;
    if (sv_get(c->spec->with, "args") && sv_as_strv(sv_get(c->spec->with, "args"), &extra) < 0) {
        comp_set_reason(c, "option 'args' must be a list of strings");
        return -EINVAL;
    }
    char *data = path_join(c->work_dir, "data");
    char *ret = prom_duration(comp_opt_duration(c, "retention", "1d"));
    char **argv = NULL;
    strv_push(&argv, sv_str(c->spec->with, "binary", "prometheus"));
    strv_pushf(&argv, "--config.file=%s", cfg);
    strv_pushf(&argv, "--storage.tsdb.path=%s", data);
    strv_pushf(&argv, "--storage.tsdb.retention.time=%s", ret);
    strv_pushf(&argv, "--web.listen-address=%s:%s", c->backend->listen_host, c->port);
    for (size_t i = 0; extra && extra[i]; i++)
        strv_push(&argv, extra[i]);
    strv_free(extra);
    free(data);
    free(ret);
    *out = argv;
    return 0;
}

static int prom_start(struct comp *c)
{
    if (c->backend->batch) { /* see the top of this file; comp_create gave it this host */
        c->backend = &backend_local;
        if (c->spec->image)
            comp_warn(c, "image: %s is ignored: prometheus runs on the host sonde runs on",
                      c->spec->image);
    }
    if (!c->port || !c->host) {
        comp_set_reason(c, "the prometheus service needs `port:` (auto or a number)");
        return -EINVAL;
    }
    struct prom_state *st = xcalloc(1, sizeof(*st));
    c->priv = st;
    st->interval_ns = comp_opt_duration(c, "scrape_interval", "1s");
    st->max_series = 20000;
    if (sv_get(c->spec->with, "max_series"))
        sv_as_int(sv_get(c->spec->with, "max_series"), &st->max_series);
    st->base = xasprintf("http://%s:%s", c->host, c->port);
    st->start_wall = wall_ns();
    char *cfg = path_join(c->work_dir, "prometheus.yml");
    char **argv = NULL;
    int r = write_config(c, st, cfg);
    if (r == 0)
        r = prom_argv(c, cfg, &argv);
    if (r == 0)
        r = comp_spawn(c, argv);
    if (r == 0)
        r = watch_startup(c, st);
    strv_free(argv);
    free(cfg);
    return r;
}

/* ---- the pull-back ---- */

/* Waits until every target has been scraped once more since `since` (the
 * clients have ended: their last counts are then in Prometheus), bounded by
 * two scrape intervals and 2 s. */
static void wait_last_scrape(struct comp *c, const struct prom_state *st, int64_t since)
{
    int64_t deadline = mono_ns() + 2 * st->interval_ns + 2 * SEC_NS;
    char err[512] = "";
    size_t total = 0;
    int behind = -1;
    while (!proc_hurried() && mono_ns() < deadline) {
        behind = targets_behind(st, since, &total, err, sizeof(err));
        if (behind == 0) {
            sleep_ns(PROM_SETTLE_NS);
            return;
        }
        sleep_ns(PROM_POLL_NS);
    }
    if (behind > 0)
        snprintf(err, sizeof(err), "%d of %zu targets", behind, total);
    if (!proc_hurried())
        comp_warn(c, "not every target was scraped after the clients ended (%s)", err);
}

static char *url_encode(const char *s)
{
    struct sbuf b = {0};
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p))
            sbuf_add(&b, (const char *)p, 1);
        else
            sbuf_printf(&b, "%%%02X", *p);
    }
    return sbuf_steal(&b);
}

/* {job=~"a|b"}: every series of these jobs (names taken literally). */
static char *default_selector(char *const *jobs)
{
    struct sbuf b = {0};
    sbuf_puts(&b, "{job=~\"");
    for (size_t i = 0; jobs && jobs[i]; i++) {
        if (i)
            sbuf_puts(&b, "|");
        for (const char *p = jobs[i]; *p; p++) {
            /* a regex escape, itself escaped in the PromQL string */
            if (*p == '\\')
                sbuf_puts(&b, "\\\\\\\\");
            else if (strchr(".+*?()[]{}|^$", *p))
                sbuf_printf(&b, "\\\\%c", *p);
            else if (*p == '"')
                sbuf_puts(&b, "\\\"");
            else
                sbuf_add(&b, p, 1);
        }
    }
    sbuf_puts(&b, "\"}");
    return sbuf_steal(&b);
}

struct tally {
    size_t series, points, nan_points, cut;
    int64_t step; /* the widest step used */
    char **seen;  /* keys of the series stored, sorted (pulls may overlap) */
    size_t nseen;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Stores one series of a matrix answer under name and its labels without __name__. */
static void store_series(struct comp *c, const char *name, const char *labels, json_t *values,
                         struct tally *t)
{
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v)
    {
        double ts = json_number_value(json_array_get(v, 0));
        const char *text = json_string_value(json_array_get(v, 1));
        char *end = NULL;
        double val = text ? strtod(text, &end) : NAN;
        if (!text || end == text || isnan(val)) { /* the store holds numbers: a gap */
            t->nan_points++;
            continue;
        }
        if (comp_series_point(c, name, NULL, labels, (int64_t)llround(ts * 1e3) * 1000000, val) ==
            0)
            t->points++;
    }
}

/* Stores every series of one answer; returns how many keys it added to
 * t->seen (appended unsorted at its end). */
static size_t store_matrix(struct comp *c, const struct prom_state *st, const char *query,
                           json_t *result, struct tally *t)
{
    size_t i, added = 0, sorted = t->nseen;
    json_t *s;
    json_array_foreach(result, i, s)
    {
        json_t *labels = json_deep_copy(json_object_get(s, "metric"));
        const char *n = json_string_value(json_object_get(labels, "__name__"));
        char *name = xstrdup(n ? n : query); /* an expression's result has no name */
        json_object_del(labels, "__name__");
        char *lt = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
        char *key = xasprintf("%s%s", name, lt ? lt : "{}");
        char **k = &key;
        if (sorted && bsearch(k, t->seen, sorted, sizeof(*t->seen), cmp_str)) {
            free(key);
        } else if (t->series >= (size_t)st->max_series) {
            t->cut++;
            free(key);
        } else {
            t->seen = xrealloc(t->seen, (t->nseen + 1) * sizeof(*t->seen));
            t->seen[t->nseen++] = key;
            added++;
            t->series++;
            store_series(c, name, lt, json_object_get(s, "values"), t);
        }
        free(lt);
        free(name);
        json_decref(labels);
    }
    return added;
}

/* The number of series expr gives at end (count(expr)), or -1 when
 * Prometheus does not say (the pull then reports its error). */
static int64_t count_series(const struct prom_state *st, const char *expr, int64_t end)
{
    char *count = xasprintf("count(%s)", expr), *q = url_encode(count);
    char *path = xasprintf("/api/v1/query?query=%s&time=%.3f", q, (double)end / 1e9);
    char err[512];
    json_t *doc = api_get(st, path, PROM_QUERY_TIMEOUT, err, sizeof(err));
    json_t *result = json_object_get(json_object_get(doc, "data"), "result");
    const char *v =
        json_string_value(json_array_get(json_object_get(json_array_get(result, 0), "value"), 1));
    int64_t n = !json_is_array(result) ? -1 : v ? (int64_t)strtod(v, NULL) : 0;
    json_decref(doc);
    free(path);
    free(q);
    free(count);
    return n;
}

/* The step of a pull of nseries over span: the scrape interval, widened so
 * that a series has at most PROM_MAX_POINTS points and the answer at most
 * PROM_PULL_POINTS (its size, parsed in memory at once); whole ms. */
static int64_t pull_step(int64_t interval, int64_t span, int64_t nseries)
{
    int64_t points = PROM_MAX_POINTS;
    if (nseries > 0 && PROM_PULL_POINTS / nseries < points)
        points = PROM_PULL_POINTS / nseries > 2 ? PROM_PULL_POINTS / nseries : 2;
    int64_t step = interval;
    if (span / step + 1 > points)
        step = (span + points - 2) / (points - 1);
    return (step + 999999) / 1000000 * 1000000;
}

static void pull_one(struct comp *c, const struct prom_state *st, const char *query, int64_t end,
                     struct tally *t)
{
    int64_t span = end - st->start_wall > 0 ? end - st->start_wall : 0;
    int64_t step = pull_step(st->interval_ns, span, count_series(st, query, end));
    int64_t start = end - (span + step - 1) / step * step; /* the last step lands on end */
    t->step = step > t->step ? step : t->step;
    char *q = url_encode(query);
    char *path = xasprintf("/api/v1/query_range?query=%s&start=%.3f&end=%.3f&step=%.3f", q,
                           (double)start / 1e9, (double)end / 1e9, (double)step / 1e9);
    char err[1024];
    json_t *doc = api_get(st, path, PROM_QUERY_TIMEOUT, err, sizeof(err));
    json_t *data = json_object_get(doc, "data");
    const char *type = json_string_value(json_object_get(data, "resultType"));
    if (!doc && proc_hurried())
        ; /* cut short by the user's second Ctrl-C: not a failure to report */
    else if (!doc)
        comp_warn(c, "pull of %s failed: %s", query, err);
    else if (!type || strcmp(type, "matrix"))
        comp_warn(c, "pull of %s: a %s answer, not a matrix of series", query,
                  type ? type : "malformed");
    else {
        comp_batch_begin(c); /* one transaction for the answer's points (no I/O inside) */
        size_t added = store_matrix(c, st, query, json_object_get(data, "result"), t);
        comp_batch_end(c);
        if (added)
            qsort(t->seen, t->nseen, sizeof(*t->seen), cmp_str);
    }
    json_decref(doc);
    free(path);
    free(q);
}

static void pull_all(struct comp *c, const struct prom_state *st)
{
    int64_t end = wall_ns();
    char **pulls = NULL, *all = NULL;
    if (sv_get(c->spec->with, "pull"))
        sv_as_strv(sv_get(c->spec->with, "pull"), &pulls);
    else if (st->jobs)
        strv_push(&pulls, (all = default_selector(st->jobs)));
    struct tally t = {0};
    for (size_t i = 0; pulls && pulls[i] && !proc_hurried(); i++)
        pull_one(c, st, pulls[i], end, &t);
    if (t.cut)
        comp_warn(c, "%zu series were not stored: max_series is %lld", t.cut,
                  (long long)st->max_series);
    if (t.step > st->interval_ns)
        comp_warn(c,
                  "series pulled every %.3g s, not every scrape (%.3g s): a longer trial or "
                  "more series than one answer holds (%lld points)",
                  (double)t.step / 1e9, (double)st->interval_ns / 1e9, (long long)PROM_PULL_POINTS);
    comp_metric(c, "pulled_series", NULL, NULL, (double)t.series);
    comp_metric(c, "pulled_points", NULL, NULL, (double)t.points);
    comp_metric(c, "pulled_nan_points", NULL, NULL, (double)t.nan_points);
    comp_metric(c, "pull_step", "s", NULL, (double)t.step / 1e9);
    for (size_t i = 0; i < t.nseen; i++)
        free(t.seen[i]);
    free(t.seen);
    strv_free(pulls);
    free(all);
}

/* Services with `metrics` that started after this one were never scraped:
 * said, with the fix, rather than silently missing. */
static void warn_unscraped(struct comp *c)
{
    struct comp **all = NULL;
    size_t n = session_comps(c->session, &all);
    bool after = false;
    for (size_t i = 0; i < n; i++) {
        const struct comp *o = all[i];
        after |= o == c;
        if (after && o != c && o->spec && o->spec->role == ROLE_SERVICE &&
            sv_str(o->spec->with, "metrics", NULL))
            comp_warn(c,
                      "service %s has `metrics` but started after %s, so it was not scraped: "
                      "list %s after it",
                      o->name, c->name, c->name);
    }
}

static int prom_stop(struct comp *c)
{
    struct prom_state *st = c->priv;
    if (!st || proc_hurried())
        return 0;
    warn_unscraped(c);
    wait_last_scrape(c, st, wall_ns());
    pull_all(c, st);
    return 0;
}

static void prom_cleanup(struct comp *c)
{
    struct prom_state *st = c->priv;
    if (!st)
        return;
    free(st->base);
    strv_free(st->jobs);
    free(st);
    c->priv = NULL;
}

const struct driver_ops driver_service_prometheus = {
    .name = "prometheus",
    .role = ROLE_SERVICE,
    .summary = "a Prometheus that scrapes sonde's exporter and the trial's services; its series "
               "are stored with the session before it stops",
    .opts = prom_opts,
    .check = prom_check,
    .start = prom_start,
    .stop = prom_stop,
    .cleanup = prom_cleanup,
};
