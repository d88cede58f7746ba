/* exec.c — any command as the load (pgbench, fio, IOR, ...), with metrics parsed
 * from its output by regex or JSON path (extract.h). */
#include "core/session.h"
#include "drivers/clients/extract.h"
#include "util/log.h"
#include "util/units.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUTPUT_MAX ((size_t)64 << 20) /* bytes of stdout/stderr read for metrics */
#define TAIL_MAX   4096               /* bytes of stderr read to explain a failure */
#define LINE_SHOW  200

static const char *const source_choices[] = {"stdout", "stderr", NULL};
static const char *const occurrence_choices[] = {"first", "last", NULL};

static const struct opt_def metric_fields[] = {
    {"name", OPT_STR, true, NULL, "metric name, e.g. tps", NULL, NULL},
    {"regex", OPT_STR, false, NULL,
     "POSIX extended regex (per line); the value is capture group `group`", NULL, NULL},
    {"json", OPT_STR, false, NULL,
     "path into the output parsed as JSON, e.g. jobs[0].read.iops or a[\"b.c\"] ($. optional)",
     NULL, NULL},
    {"group", OPT_INT, false, "1", "regex capture group holding the number", NULL, NULL},
    {"unit", OPT_STR, false, NULL, "unit of the value, e.g. ms", NULL, NULL},
    {"unit_group", OPT_INT, false, NULL, "regex capture group holding the unit instead", NULL,
     NULL},
    {"scale", OPT_FLOAT, false, "1", "multiply the number by this", NULL, NULL},
    {"source", OPT_ENUM, false, "stdout", "the stream searched", source_choices, NULL},
    {"required", OPT_BOOL, false, "true", "a missing match fails the client", NULL, NULL},
    {"occurrence", OPT_ENUM, false, "last", "which regex match counts", occurrence_choices, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

static const struct opt_def exec_opts[] = {
    {"command", OPT_ARGV, true, NULL, "the measured command", NULL, NULL},
    {"prepare", OPT_ARGV_LIST, false, NULL,
     "commands run in order before the measured command, not timed; each must exit 0", NULL, NULL},
    {"prepare_timeout", OPT_DURATION, false, "5m", "limit for each prepare command", NULL, NULL},
    {"timeout", OPT_DURATION, false, NULL,
     "limit for the measured command; when hit it is stopped and the client fails", NULL, NULL},
    {"metrics", OPT_MAP_LIST, false, NULL,
     "values parsed from the output (each with exactly one of regex and json)", NULL,
     metric_fields},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

struct exec_state {
    int64_t timeout_ns; /* 0 = none */
    bool timed_out;
};

static int exec_start(struct comp *c)
{
    struct exec_state *st = xcalloc(1, sizeof(*st));
    c->priv = st;
    st->timeout_ns = comp_opt_duration(c, "timeout", NULL);
    return comp_start_command(c);
}

static int exec_tick(struct comp *c, int64_t now)
{
    struct exec_state *st = c->priv;
    if (!proc_started(&c->proc) || c->proc.exited || c->backend->poll(&c->proc) == 1)
        return 1;
    bool queued = c->proc.job > 0 && !c->proc.running; /* the limit is for running */
    if (st && st->timeout_ns > 0 && !queued && now - c->proc.start_mono >= st->timeout_ns) {
        c->backend->stop(&c->proc, c->spec->stop_grace_ns);
        char dur[32];
        format_duration(st->timeout_ns, dur, sizeof(dur));
        comp_set_reason(c, "timed out after %s (see %s)", dur, c->dir);
        st->timed_out = true;
        return 1;
    }
    return 0;
}

/* The last non-empty line of a file (at most LINE_SHOW bytes) into buf; "" when none. */
static void last_line(const char *path, char *buf, size_t n)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char tail[TAIL_MAX + 1];
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > TAIL_MAX ? end - TAIL_MAX : 0;
    ssize_t got = end > 0 ? pread(fd, tail, (size_t)(end - from), from) : 0;
    close(fd);
    if (got <= 0)
        return;
    str_last_line(tail, (size_t)got, buf, n < LINE_SHOW + 1 ? n : LINE_SHOW + 1);
}

/* Records wall_time and exit_code; fails unless the command exited 0. */
static int record_exit(struct comp *c)
{
    const struct proc *p = &c->proc;
    int64_t end = p->end_mono ? p->end_mono : mono_ns();
    bool ran = p->job <= 0 || p->running; /* a batch job may end without having started */
    if (ran)
        comp_metric(c, "wall_time", "s", NULL, (double)(end - p->start_mono) / 1e9);
    if (ran && WIFEXITED(p->status))
        comp_metric(c, "exit_code", NULL, NULL, WEXITSTATUS(p->status));
    if (WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0)
        return 0;
    char st[sizeof(p->detail)], line[LINE_SHOW + 1];
    if (p->detail[0]) /* a batch job: the scheduler's words ("job 12 TIMEOUT on n1: ...") */
        snprintf(st, sizeof(st), "%s", p->detail);
    else
        proc_describe_status(p->status, st, sizeof(st));
    last_line(c->err_path, line, sizeof(line));
    if (line[0])
        comp_set_reason(c, "%s: %s (see %s)", st, line, c->err_path);
    else
        comp_set_reason(c, "%s (see %s)", st, c->err_path);
    return -EIO;
}

/* ---- metrics ---- */

enum { SRC_STDOUT, SRC_STDERR, SRC_COUNT };

struct outputs {
    char *text[SRC_COUNT];
    size_t len[SRC_COUNT];
    int err[SRC_COUNT]; /* read error, 0 = not read yet or fine */
    json_t *json[SRC_COUNT];
    char jerr[SRC_COUNT][256];
};

static int output_text(struct comp *c, struct outputs *o, int src)
{
    if (o->text[src] || o->err[src])
        return o->err[src];
    const char *path = src == SRC_STDOUT ? c->out_path : c->err_path;
    int r = read_file(path, OUTPUT_MAX, &o->text[src], &o->len[src]);
    if (r == -ENOENT) { /* nothing was ever written */
        o->text[src] = xstrdup("");
        o->len[src] = 0;
        r = 0;
    }
    o->err[src] = r;
    return r;
}

static void outputs_free(struct outputs *o)
{
    for (int i = 0; i < SRC_COUNT; i++) {
        free(o->text[i]);
        json_decref(o->json[i]);
    }
}

/* One metric item read from the recipe. */
struct metric {
    const char *name, *unit;
    struct extract_rule rule;
    int src;
    bool required;
};

static void metric_read(const struct sv *item, struct metric *m)
{
    int64_t group = 1, unit_group = 0;
    double scale = 1;
    bool required = true;
    sv_as_int(sv_get(item, "group"), &group);
    sv_as_int(sv_get(item, "unit_group"), &unit_group);
    sv_as_double(sv_get(item, "scale"), &scale);
    sv_as_bool(sv_get(item, "required"), &required);
    *m = (struct metric){
        .name = sv_str(item, "name", "?"),
        .unit = sv_str(item, "unit", NULL),
        .rule = {.regex = sv_str(item, "regex", NULL),
                 .json = sv_str(item, "json", NULL),
                 .group = group >= 0 && group <= 100 ? (int)group : -1,
                 .unit_group = unit_group >= 0 && unit_group <= 100 ? (int)unit_group : -1,
                 .scale = scale,
                 .occurrence = strcmp(sv_str(item, "occurrence", "last"), "first") ? EXTRACT_LAST
                                                                                   : EXTRACT_FIRST},
        .src = strcmp(sv_str(item, "source", "stdout"), "stderr") ? SRC_STDOUT : SRC_STDERR,
        .required = required,
    };
}

static int metric_eval(struct comp *c, struct outputs *o, const struct metric *m,
                       struct extract_result *res, char *why, size_t n)
{
    int r = output_text(c, o, m->src);
    if (r < 0) {
        snprintf(why, n, "cannot read %s: %s", m->src ? c->err_path : c->out_path,
                 r == -EFBIG ? "larger than 64 MiB" : strerror(-r));
        return r;
    }
    if (!m->rule.json)
        return extract_apply(&m->rule, o->text[m->src], o->len[m->src], res, why, n);
    if (!o->json[m->src] && !o->jerr[m->src][0] &&
        extract_json_load(o->text[m->src], o->len[m->src], &o->json[m->src], o->jerr[m->src],
                          sizeof(o->jerr[m->src])) < 0 &&
        !o->jerr[m->src][0])
        snprintf(o->jerr[m->src], sizeof(o->jerr[m->src]), "not valid JSON");
    if (!o->json[m->src]) {
        snprintf(why, n, "%s", o->jerr[m->src]);
        return -EINVAL;
    }
    res->unit[0] = '\0';
    r = extract_json_path(o->json[m->src], m->rule.json, &res->value, why, n);
    res->value *= m->rule.scale;
    return r;
}

/* Extracts and records one metric; 0, or -errno with *msg (caller frees) saying
 * why a required metric is missing. */
static int metric_collect(struct comp *c, struct outputs *o, const struct sv *item, char **msg)
{
    struct metric m;
    metric_read(item, &m);
    struct extract_result res = {0};
    char why[512] = "";
    int r = metric_eval(c, o, &m, &res, why, sizeof(why));
    if (r == 0) {
        const char *unit = m.unit ? m.unit : res.unit[0] ? res.unit : NULL;
        return comp_metric(c, m.name, unit, NULL, res.value);
    }
    const char *src = m.src == SRC_STDOUT ? "stdout" : "stderr";
    const char *kind = m.rule.json ? "json" : "regex";
    const char *expr = m.rule.json ? m.rule.json : m.rule.regex ? m.rule.regex : "";
    if (!m.required) {
        if (r == -ENOENT)
            log_debug("optional metric '%s' not found in %s", m.name, src);
        else
            comp_warn(c, "optional metric '%s' in %s (%s '%s'): %s", m.name, src, kind, expr, why);
        return 0;
    }
    if (r == -ENOENT && !m.rule.json)
        *msg = xasprintf("metric '%s' not found in %s (regex '%s')", m.name, src, expr);
    else if (r == -ENOENT)
        *msg = xasprintf("metric '%s' not found in %s (json '%s': %s)", m.name, src, expr, why);
    else
        *msg = xasprintf("metric '%s' in %s (%s '%s'): %s", m.name, src, kind, expr, why);
    return r;
}

/* Records every metric that can be found; the first missing required one
 * becomes the reason, later ones are warnings. */
static int collect_all(struct comp *c)
{
    const struct sv *list = sv_get(c->spec->with, "metrics");
    struct outputs o = {0};
    int r = 0;
    for (size_t i = 0; list && list->kind == SV_SEQ && i < list->n; i++) {
        char *msg = NULL;
        int q = list->kids[i]->kind == SV_MAP ? metric_collect(c, &o, list->kids[i], &msg) : 0;
        if (q == 0)
            continue;
        if (r == 0) {
            r = q;
            comp_set_reason(c, "%s", msg ? msg : "cannot store a metric");
        } else if (msg) {
            comp_warn(c, "%s", msg);
        }
        free(msg);
    }
    outputs_free(&o);
    return r;
}

static int exec_finish(struct comp *c)
{
    struct exec_state *st = c->priv;
    if (st && st->timed_out)
        return -ETIMEDOUT;
    if (!proc_started(&c->proc) || !c->proc.exited) {
        comp_set_reason(c, "the command did not run to its end");
        return -EIO;
    }
    int r = record_exit(c);
    if (r < 0)
        return r;
    return collect_all(c);
}

static void exec_cleanup(struct comp *c)
{
    free(c->priv);
    c->priv = NULL;
}

/* ---- validation ---- */

/* Adds a diagnostic for key of the metric at path ("...metrics[2]" + ".regex"). */
static void diag_key(struct diags *d, const struct sv *v, const char *path, const char *key,
                     const char *msg)
{
    char *p = xasprintf("%s.%s", path, key);
    diags_add(d, v->pos, p, NULL, "%s", msg);
    free(p);
}

static bool has_ref(const struct sv *v)
{
    return v && v->kind == SV_SCALAR && strstr(v->str, "${");
}

static void check_regex(const struct sv *item, const char *path, struct diags *d)
{
    const struct sv *re = sv_get(item, "regex");
    int64_t group = 1, unit_group = 0;
    sv_as_int(sv_get(item, "group"), &group);
    sv_as_int(sv_get(item, "unit_group"), &unit_group);
    if (re->kind != SV_SCALAR || has_ref(re))
        return;
    if (group < 0 || group > 100 || unit_group < 0 || unit_group > 100) {
        const char *key = group < 0 || group > 100 ? "group" : "unit_group";
        diag_key(d, sv_get(item, key), path, key, "capture group numbers go from 0 to 100");
        return;
    }
    regex_t rx;
    char err[512];
    if (extract_regex_compile(re->str, (int)group, (int)unit_group, &rx, err, sizeof(err)) < 0)
        diag_key(d, re, path, "regex", err);
    else
        regfree(&rx);
    const struct sv *unit = sv_get(item, "unit"), *ug = sv_get(item, "unit_group");
    if (unit && ug)
        diag_key(d, ug, path, "unit_group", "give 'unit' or 'unit_group', not both");
}

static void check_json(const struct sv *item, const char *path, struct diags *d)
{
    static const char *const regex_only[] = {"group", "unit_group", "occurrence"};
    const struct sv *js = sv_get(item, "json");
    char err[512];
    if (js->kind == SV_SCALAR && !has_ref(js) &&
        extract_json_path_check(js->str, err, sizeof(err)) < 0)
        diag_key(d, js, path, "json", err);
    for (size_t i = 0; i < SONDE_ARRAY_LEN(regex_only); i++) {
        const struct sv *v = sv_get(item, regex_only[i]);
        if (v)
            diag_key(d, v, path, regex_only[i], "applies to regex metrics only");
    }
}

static void check_name(const struct sv *list, size_t i, const char *path, struct diags *d)
{
    const struct sv *name = sv_get(list->kids[i], "name");
    if (!name || name->kind != SV_SCALAR)
        return;
    if (!strcmp(name->str, "wall_time") || !strcmp(name->str, "exit_code")) {
        diag_key(d, name, path, "name",
                 "this name is recorded by the exec driver itself (the command's wall time and "
                 "exit code); choose another");
        return;
    }
    for (size_t j = 0; j < i; j++) {
        const char *prev = sv_str(list->kids[j], "name", NULL);
        if (prev && !strcmp(prev, name->str)) {
            char *msg = xasprintf("metric '%s' is declared twice", name->str);
            diag_key(d, name, path, "name", msg);
            free(msg);
            return;
        }
    }
}

static int exec_check(const struct comp_spec *spec, struct diags *d)
{
    const struct sv *list = sv_get(spec->with, "metrics");
    size_t before = d ? d->n + d->dropped : 0;
    for (size_t i = 0; list && list->kind == SV_SEQ && i < list->n; i++) {
        const struct sv *item = list->kids[i];
        if (item->kind != SV_MAP)
            continue;
        char *path =
            xasprintf("%ss.%s.with.metrics[%zu]", comp_role_name(spec->role), spec->name, i);
        bool re = sv_get(item, "regex"), js = sv_get(item, "json");
        if (re == js)
            diags_add(d, item->pos, path, NULL,
                      "give exactly one of 'regex' and 'json' (how to find the value)");
        else if (re)
            check_regex(item, path, d);
        else
            check_json(item, path, d);
        check_name(list, i, path, d);
        free(path);
    }
    return d && d->n + d->dropped > before ? -EINVAL : 0;
}

const struct driver_ops driver_client_exec = {
    .name = "exec",
    .role = ROLE_CLIENT,
    .summary = "runs any command as the load (pgbench, fio, IOR, ...) and parses metrics from "
               "its output",
    .opts = exec_opts,
    .runs_command = true,
    .check = exec_check,
    .start = exec_start,
    .tick = exec_tick,
    .finish = exec_finish,
    .cleanup = exec_cleanup,
};
