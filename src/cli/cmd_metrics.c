/* cmd_metrics.c — `sonde metrics SESSION`: a session's metrics and series from the
 * store, as a summary, as CSV (every point), or followed live while it runs.
 *
 * Monitors commit their points at every tick (session.c, tick_all), so a
 * reader polling the store sees them within about a second. */
#include "cli/cli.h"

#include "report/report.h"

#include "util/util.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FOLLOW_POLL_NS   1000000000LL /* how often --follow reads the store */
#define FOLLOW_BATCH_MAX 10000        /* points read per query */
#define TABLE_MAX_ROWS   ((size_t)1 << 20)

static const char help_metrics[] =
    "usage: sonde metrics SESSION [--trial N] [--name REGEX] [--json]\n"
    "       sonde metrics SESSION --csv FILE|- [--trial N] [--name REGEX]\n"
    "       sonde metrics SESSION --follow [--trial N] [--name REGEX] [--json]\n"
    "\n"
    "Shows, per trial and component, the scalar metrics and a line per series\n"
    "(points, time span from the trial's start, min, mean, max, last value).\n"
    "  --csv FILE     every series point as CSV (- = standard output):\n"
    "                 session,trial,component,name,labels,unit,time,t_ns,value\n"
    "  --follow       print series points as they are stored, until the session ends\n"
    "                 (--json: one JSON object per line)\n"
    "  --trial N      only trial N (1, 2, ...)\n"
    "  --name REGEX   only metrics and series whose name matches (POSIX extended regex)\n";

struct mopts {
    bool follow;
    const char *csv;
    long trial; /* 0: every trial */
    regex_t re;
    bool have_re;
};

/* What one session holds, loaded once. */
struct mdata {
    struct session_row s;
    struct trial_row *tr;
    struct metric_row *me;
    struct series_row *se;
    size_t ntr, nme, nse;
};

static void mdata_free(struct mdata *d)
{
    session_row_free(&d->s);
    trial_rows_free(d->tr, d->ntr);
    metric_rows_free(d->me, d->nme);
    series_rows_free(d->se, d->nse);
    memset(d, 0, sizeof(*d));
}

/* Reloads trials and series (new ones appear while a session runs). */
static int mdata_load(struct store *st, const char *id, struct mdata *d, bool metrics)
{
    trial_rows_free(d->tr, d->ntr);
    series_rows_free(d->se, d->nse);
    d->tr = NULL, d->se = NULL, d->ntr = d->nse = 0;
    int r = store_trial_list(st, id, &d->tr, &d->ntr);
    if (r == 0)
        r = store_series_list(st, id, -1, &d->se, &d->nse);
    if (r == 0 && metrics)
        r = store_metric_list(st, id, -1, &d->me, &d->nme);
    if (r < 0)
        cli_error("cannot read session %s from the store: %s", id, store_errmsg(st));
    return r;
}

static const struct trial_row *trial_of(const struct mdata *d, int64_t trial_id)
{
    for (size_t i = 0; i < d->ntr; i++)
        if (d->tr[i].id == trial_id)
            return &d->tr[i];
    return NULL;
}

/* The trial's number (1, 2, ...); 0 for session-wide rows. */
static int64_t trial_idx(const struct mdata *d, int64_t trial_id)
{
    const struct trial_row *t = trial_of(d, trial_id);
    return t ? t->idx : 0;
}

static bool wanted(const struct mopts *o, const struct mdata *d, int64_t trial_id, const char *name)
{
    if (o->trial && trial_idx(d, trial_id) != o->trial)
        return false;
    return !o->have_re || regexec(&o->re, name, 0, NULL, 0) == 0;
}

/* ---- small text helpers ------------------------------------------------------------------ */

/* A number for people: 6 significant digits, no exponent below 10^15. */
static char *num_human(double v)
{
    if (fabs(v) >= 1e6 && fabs(v) < 1e15)
        return xasprintf("%.0f", v);
    return xasprintf("%.6g", v);
}

/* Labels stored as a JSON object, shown as k=v,k=v ("-" when none). */
static char *labels_text(const char *json)
{
    char *s = report_kv_json(json);
    if (*s)
        return s;
    free(s);
    return xstrdup("-");
}

static json_t *labels_json(const char *json)
{
    json_t *o = json ? json_loads(json, 0, NULL) : NULL;
    if (o)
        return o;
    return json ? json_string(json) : json_object();
}

/* t - base for people: +12.3s, +4m05s, +2h07m. */
static char *offset_text(int64_t t, int64_t base)
{
    int64_t d = t - base;
    const char *sign = d < 0 ? "-" : "+";
    double s = (double)(d < 0 ? -d : d) / 1e9;
    if (s < 60)
        return xasprintf("%s%.1fs", sign, s);
    long long whole = (long long)s;
    if (whole < 3600)
        return xasprintf("%s%lldm%02llds", sign, whole / 60, whole % 60);
    return xasprintf("%s%lldh%02lldm", sign, whole / 3600, whole / 60 % 60);
}

/* Writes s with control characters as spaces (stored text reaches a terminal). */
static void put_clean(const char *s, FILE *out)
{
    for (; *s; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s, out);
}

/* An aligned table of owned cells, printed and freed by table_flush. */
struct table {
    size_t ncols, nrows;
    char **cells;
};

static void table_row(struct table *t, char **cells)
{
    if (t->nrows >= TABLE_MAX_ROWS) {
        for (size_t i = 0; i < t->ncols; i++)
            free(cells[i]);
        return;
    }
    t->cells = xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(*t->cells));
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = cells[i] ? cells[i] : xstrdup("");
    t->nrows++;
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
}

/* Prints the table (when it has more than its header) and frees it. */
static void table_flush(struct table *t, int indent)
{
    if (t->nrows < 2) {
        table_free(t);
        return;
    }
    size_t w[16] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols && c < 16; c++) {
            size_t l = strlen(t->cells[r * t->ncols + c]);
            w[c] = l > w[c] ? l : w[c];
        }
    for (size_t r = 0; r < t->nrows; r++) {
        printf("%*s", indent, "");
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            put_clean(cell, stdout);
            if (c + 1 < t->ncols && c < 16)
                printf("%*s", (int)(w[c] - strlen(cell) + 2), "");
        }
        fputc('\n', stdout);
    }
    table_free(t);
}

/* ---- the summary ------------------------------------------------------------------------- */

/* The trial ids to show, in order: session-wide (0) first when it has rows. */
static size_t scopes(const struct mdata *d, int64_t *ids)
{
    size_t n = 0;
    bool wide = false;
    for (size_t i = 0; i < d->nme; i++)
        wide |= d->me[i].trial_id == 0;
    for (size_t i = 0; i < d->nse; i++)
        wide |= d->se[i].trial_id == 0;
    if (wide)
        ids[n++] = 0;
    for (size_t i = 0; i < d->ntr; i++)
        ids[n++] = d->tr[i].id;
    return n;
}

/* Components of a trial's rows, each once, in order of appearance. */
static char **components_of(const struct mdata *d, int64_t trial_id)
{
    char **v = NULL;
    for (size_t i = 0; i < d->nme + d->nse; i++) { /* series first: monitors start early */
        bool series = i < d->nse;
        int64_t tid = series ? d->se[i].trial_id : d->me[i - d->nse].trial_id;
        const char *c = series ? d->se[i].component : d->me[i - d->nse].component;
        bool seen = false;
        for (size_t k = 0; v && v[k] && !seen; k++)
            seen = !strcmp(v[k], c);
        if (tid == trial_id && !seen)
            strv_push(&v, c);
    }
    return v;
}

static int64_t scope_base(const struct mdata *d, int64_t trial_id)
{
    const struct trial_row *t = trial_of(d, trial_id);
    return t && t->started > 0 ? t->started : d->s.started;
}

static void text_metrics(const struct mopts *o, const struct mdata *d, int64_t tid,
                         const char *comp)
{
    struct table t = {.ncols = 4};
    table_row(&t,
              (char *[]){xstrdup("METRIC"), xstrdup("LABELS"), xstrdup("VALUE"), xstrdup("UNIT")});
    for (size_t i = 0; i < d->nme; i++) {
        const struct metric_row *m = &d->me[i];
        if (m->trial_id != tid || strcmp(m->component, comp) || !wanted(o, d, tid, m->name))
            continue;
        table_row(&t, (char *[]){xstrdup(m->name), labels_text(m->labels), num_human(m->value),
                                 xstrdup(m->unit ? m->unit : "")});
    }
    table_flush(&t, 4);
}

static int text_series(struct store *st, const struct mopts *o, const struct mdata *d, int64_t tid,
                       const char *comp)
{
    struct table t = {.ncols = 9};
    int r = 0;
    table_row(&t, (char *[]){xstrdup("SERIES"), xstrdup("LABELS"), xstrdup("UNIT"),
                             xstrdup("POINTS"), xstrdup("TIME"), xstrdup("MIN"), xstrdup("MEAN"),
                             xstrdup("MAX"), xstrdup("LAST")});
    int64_t base = scope_base(d, tid);
    for (size_t i = 0; i < d->nse && r == 0; i++) {
        const struct series_row *s = &d->se[i];
        struct series_stats ss = {0};
        if (s->trial_id != tid || strcmp(s->component, comp) || !wanted(o, d, tid, s->name))
            continue;
        if ((r = store_series_stats(st, s->id, &ss)) < 0)
            break;
        bool any = ss.n > 0;
        char *span = NULL;
        if (any) {
            char *a = offset_text(ss.first, base > 0 ? base : ss.first);
            char *b = offset_text(ss.last, base > 0 ? base : ss.first);
            span = xasprintf("%s..%s", a, b);
            free(a);
            free(b);
        }
        table_row(&t, (char *[]){xstrdup(s->name), labels_text(s->labels),
                                 xstrdup(s->unit ? s->unit : ""), xasprintf("%zu", ss.n),
                                 any ? span : xstrdup("-"), any ? num_human(ss.min) : xstrdup("-"),
                                 any ? num_human(ss.mean) : xstrdup("-"),
                                 any ? num_human(ss.max) : xstrdup("-"),
                                 any ? num_human(ss.last_value) : xstrdup("-")});
    }
    if (r < 0)
        cli_error("cannot read series of session %s: %s", d->s.id, store_errmsg(st));
    table_flush(&t, 4);
    return r;
}

static bool scope_has_rows(const struct mopts *o, const struct mdata *d, int64_t tid)
{
    for (size_t i = 0; i < d->nme; i++)
        if (d->me[i].trial_id == tid && wanted(o, d, tid, d->me[i].name))
            return true;
    for (size_t i = 0; i < d->nse; i++)
        if (d->se[i].trial_id == tid && wanted(o, d, tid, d->se[i].name))
            return true;
    return false;
}

static int print_text(struct store *st, const struct mopts *o, const struct mdata *d)
{
    printf("session %s (%s): %s\n", d->s.id, d->s.name, session_effective_state(&d->s));
    int64_t *ids = xcalloc(d->ntr + 1, sizeof(*ids));
    size_t n = scopes(d, ids), shown = 0;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        const struct trial_row *t = trial_of(d, ids[i]);
        if ((o->trial && (!t || t->idx != o->trial)) || !scope_has_rows(o, d, ids[i]))
            continue;
        if (t)
            printf("\ntrial %lld: %s (%s)\n", (long long)t->idx, t->label ? t->label : "",
                   t->state);
        else
            printf("\nsession-wide\n");
        char **comps = components_of(d, ids[i]);
        for (size_t c = 0; comps && comps[c] && r == 0; c++) {
            printf("  %s\n", comps[c]);
            text_metrics(o, d, ids[i], comps[c]);
            r = text_series(st, o, d, ids[i], comps[c]);
        }
        strv_free(comps);
        shown++;
    }
    if (!shown && r == 0)
        printf("\nno metrics or series%s\n", o->trial || o->have_re ? " match" : " yet");
    free(ids);
    return r;
}

static json_t *json_time(int64_t t)
{
    char *s = iso8601(t);
    json_t *j = json_string(s);
    free(s);
    return j;
}

static json_t *json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static int json_scope(struct store *st, const struct mopts *o, const struct mdata *d, int64_t tid,
                      json_t *obj)
{
    json_t *me = json_array(), *se = json_array();
    json_object_set_new(obj, "metrics", me);
    json_object_set_new(obj, "series", se);
    for (size_t i = 0; i < d->nme; i++) {
        const struct metric_row *m = &d->me[i];
        if (m->trial_id == tid && wanted(o, d, tid, m->name))
            json_array_append_new(me, json_pack("{s:s,s:s,s:o,s:o,s:s?}", "component", m->component,
                                                "name", m->name, "labels", labels_json(m->labels),
                                                "value", json_num(m->value), "unit", m->unit));
    }
    for (size_t i = 0; i < d->nse; i++) {
        const struct series_row *s = &d->se[i];
        struct series_stats ss = {0};
        if (s->trial_id != tid || !wanted(o, d, tid, s->name))
            continue;
        if (store_series_stats(st, s->id, &ss) < 0) {
            cli_error("cannot read series of session %s: %s", d->s.id, store_errmsg(st));
            return -EIO;
        }
        bool any = ss.n > 0;
        json_array_append_new(se, json_pack("{s:s,s:s,s:o,s:s?,s:I,s:o,s:o,s:o,s:o,s:o,s:o}",
                                            "component", s->component, "name", s->name, "labels",
                                            labels_json(s->labels), "unit", s->unit, "points",
                                            (json_int_t)ss.n, "first",
                                            any ? json_time(ss.first) : json_null(), "last",
                                            any ? json_time(ss.last) : json_null(), "min",
                                            any ? json_num(ss.min) : json_null(), "mean",
                                            any ? json_num(ss.mean) : json_null(), "max",
                                            any ? json_num(ss.max) : json_null(), "last_value",
                                            any ? json_num(ss.last_value) : json_null()));
    }
    return 0;
}

static int print_json(struct store *st, const struct mopts *o, const struct mdata *d)
{
    json_t *root = json_pack("{s:s,s:s,s:s}", "session", d->s.id, "name", d->s.name, "state",
                             session_effective_state(&d->s));
    json_t *trials = json_array();
    json_object_set_new(root, "trials", trials);
    int64_t *ids = xcalloc(d->ntr + 1, sizeof(*ids));
    size_t n = scopes(d, ids);
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        const struct trial_row *t = trial_of(d, ids[i]);
        if (o->trial && (!t || t->idx != o->trial))
            continue;
        json_t *obj = t ? json_pack("{s:I,s:s?,s:s}", "index", (json_int_t)t->idx, "label",
                                    t->label, "state", t->state)
                        : json_pack("{s:i,s:s}", "index", 0, "label", "session-wide");
        json_array_append_new(trials, obj);
        r = json_scope(st, o, d, ids[i], obj);
    }
    free(ids);
    if (r == 0) {
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
        fputc('\n', stdout);
    }
    json_decref(root);
    return r;
}

/* ---- CSV --------------------------------------------------------------------------------- */

/* One RFC 4180 field: quoted when it holds a comma, quote, CR or LF. */
static void csv_field(struct sbuf *b, const char *s, bool last)
{
    s = s ? s : "";
    if (strpbrk(s, ",\"\r\n")) {
        sbuf_puts(b, "\"");
        for (const char *p = s; *p; p++) {
            if (*p == '"')
                sbuf_puts(b, "\"");
            sbuf_add(b, p, 1);
        }
        sbuf_puts(b, "\"");
    } else {
        sbuf_puts(b, s);
    }
    sbuf_puts(b, last ? "\r\n" : ",");
}

/* Emits the rows of one series into out (a file or stdout). */
static int csv_series(struct store *st, const struct mdata *d, const struct series_row *s,
                      struct afile *af, FILE *fp, size_t *rows)
{
    struct point *p = NULL;
    size_t n = 0;
    int r = store_series_points(st, s->id, &p, &n);
    if (r < 0)
        return r;
    int64_t idx = trial_idx(d, s->trial_id);
    char *trial = idx ? xasprintf("%lld", (long long)idx) : xstrdup("");
    struct sbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        char *time = iso8601(p[i].t), *tns = xasprintf("%lld", (long long)p[i].t);
        char *val = num_exact(p[i].v);
        const char *const f[] = {d->s.id, trial, s->component, s->name, s->labels,
                                 s->unit, time,  tns,          val};
        for (size_t k = 0; k < SONDE_ARRAY_LEN(f); k++)
            csv_field(&b, f[k], k + 1 == SONDE_ARRAY_LEN(f));
        free(time);
        free(tns);
        free(val);
        if (b.len >= (1 << 16) || i + 1 == n) { /* write in pieces: a series may be long */
            if (af)
                afile_write(af, b.s, b.len);
            else
                fwrite(b.s, 1, b.len, fp);
            b.len = 0;
        }
    }
    *rows += n;
    sbuf_free(&b);
    free(trial);
    free(p);
    return 0;
}

static int write_csv(struct store *st, const struct mopts *o, const struct mdata *d)
{
    bool to_stdout = !strcmp(o->csv, "-");
    struct afile af = {0};
    int r = to_stdout ? 0 : afile_open(&af, o->csv);
    if (r < 0) {
        cli_error("--csv: cannot write %s: %s", o->csv, strerror(-r));
        return 1;
    }
    static const char header[] = "session,trial,component,name,labels,unit,time,t_ns,value\r\n";
    if (to_stdout)
        fputs(header, stdout);
    else
        afile_write(&af, header, strlen(header));
    size_t rows = 0, nseries = 0;
    for (size_t i = 0; i < d->nse && r == 0; i++) {
        if (!wanted(o, d, d->se[i].trial_id, d->se[i].name))
            continue;
        r = csv_series(st, d, &d->se[i], to_stdout ? NULL : &af, stdout, &rows);
        nseries++;
    }
    if (r < 0) {
        cli_error("cannot read the points of session %s: %s", d->s.id, store_errmsg(st));
        if (!to_stdout) {
            af.rc = r; /* removes the temporary file */
            afile_commit(&af);
        }
        return 1;
    }
    if (to_stdout) {
        if (fflush(stdout) != 0 || ferror(stdout)) {
            cli_error("--csv: cannot write to standard output");
            return 1;
        }
        return 0;
    }
    if ((r = afile_commit(&af)) < 0) {
        cli_error("--csv: cannot write %s: %s", o->csv, strerror(-r));
        return 1;
    }
    fprintf(stderr, "sonde: wrote %zu points of %zu series to %s\n", rows, nseries, o->csv);
    return 0;
}

/* ---- --follow ---------------------------------------------------------------------------- */

static const struct series_row *series_by_id(const struct mdata *d, int64_t id)
{
    for (size_t i = 0; i < d->nse; i++)
        if (d->se[i].id == id)
            return &d->se[i];
    return NULL;
}

static void follow_line(bool json, const struct mdata *d, const struct series_row *s,
                        const struct point_row *p)
{
    int64_t idx = trial_idx(d, s->trial_id);
    char *time = iso8601(p->t);
    if (json) {
        json_t *o = json_pack("{s:s,s:I,s:s,s:s,s:o,s:o,s:s?}", "time", time, "trial",
                              (json_int_t)idx, "component", s->component, "name", s->name, "labels",
                              labels_json(s->labels), "value", json_num(p->v), "unit", s->unit);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(17));
        fputc('\n', stdout);
        json_decref(o);
    } else {
        char *lab = labels_text(s->labels), *val = num_human(p->v);
        printf("%s  %lld  %s  %s  ", time, (long long)idx, s->component, s->name);
        put_clean(lab, stdout);
        printf("  %s%s", val, s->unit && *s->unit ? " " : "");
        put_clean(s->unit ? s->unit : "", stdout);
        fputc('\n', stdout);
        free(lab);
        free(val);
    }
    free(time);
}

/* Prints the points stored after *seq; reloads the series when new ones appear. */
static int follow_batch(struct store *st, const struct mopts *o, bool json, struct mdata *d,
                        int64_t *seq)
{
    for (;;) {
        struct point_row *p = NULL;
        size_t n = 0;
        int r = store_points_after(st, d->s.id, *seq, FOLLOW_BATCH_MAX, &p, &n);
        if (r < 0) {
            cli_error("cannot read new points of session %s: %s", d->s.id, store_errmsg(st));
            return r;
        }
        for (size_t i = 0; i < n; i++) {
            const struct series_row *s = series_by_id(d, p[i].series_id);
            if (!s && mdata_load(st, d->s.id, d, false) == 0)
                s = series_by_id(d, p[i].series_id);
            if (s && wanted(o, d, s->trial_id, s->name))
                follow_line(json, d, s, &p[i]);
            *seq = p[i].seq;
        }
        free(p);
        fflush(stdout);
        if (n < FOLLOW_BATCH_MAX)
            return 0;
    }
}

static int follow(struct store *st, const struct mopts *o, bool json, struct mdata *d)
{
    int64_t seq = 0;
    if (store_points_last_seq(st, &seq) < 0) {
        cli_error("cannot read the store: %s", store_errmsg(st));
        return 1;
    }
    if (store_session_over(st, d->s.id)) {
        fprintf(stderr,
                "sonde: session %s is %s: no new points will come (see `sonde metrics %s`)\n",
                d->s.id, session_effective_state(&d->s), d->s.id);
        return 0;
    }
    for (;;) {
        /* Read the state first: points stored before the session ended are
         * then all printed by the batch that follows. */
        bool over = store_session_over(st, d->s.id);
        if (follow_batch(st, o, json, d, &seq) < 0)
            return 1;
        if (over)
            return 0;
        sleep_ns(FOLLOW_POLL_NS);
    }
}

/* ---- the command ------------------------------------------------------------------------- */

static int parse(struct cli *cli, int argc, char **argv, struct mopts *o)
{
    static const struct option opts[] = {CLI_COMMON_OPTS,
                                         {"follow", no_argument, NULL, 'f'},
                                         {"csv", required_argument, NULL, 'c'},
                                         {"trial", required_argument, NULL, 't'},
                                         {"name", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "f", opts, NULL)) != -1) {
        if (opt == 'f') {
            o->follow = true;
        } else if (opt == 'c') {
            o->csv = optarg;
        } else if (opt == 't') {
            char *end;
            errno = 0;
            o->trial = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || o->trial <= 0) {
                cli_error("--trial: expected a trial number (1, 2, ...), got '%s'", optarg);
                return -1;
            }
        } else if (opt == 'n') {
            if (o->have_re)
                regfree(&o->re);
            int r = regcomp(&o->re, optarg, REG_EXTENDED | REG_NOSUB);
            o->have_re = r == 0;
            if (r != 0) {
                char msg[256];
                regerror(r, &o->re, msg, sizeof(msg));
                cli_error("--name: invalid regular expression '%s': %s", optarg, msg);
                return -1;
            }
        } else if (cli_common_opt(cli, opt, optarg, help_metrics) <= 0) {
            return -1;
        }
    }
    if (argc - optind != 1) {
        cli_usage(help_metrics);
        return -1;
    }
    if (o->csv && (o->follow || !*o->csv)) {
        cli_error(o->follow ? "--csv and --follow do not go together (write the CSV once the "
                              "session has ended)"
                            : "--csv: expected a file name or - (standard output)");
        return -1;
    }
    return optind;
}

int cmd_metrics(struct cli *cli, int argc, char **argv)
{
    struct mopts o = {0};
    struct mdata d = {0};
    struct store *st = NULL;
    int rc = EXIT_USAGE;
    int i = parse(cli, argc, argv, &o);
    if (i < 0)
        goto out;
    rc = 1;
    if (cli_open_store(cli, &st) < 0 || cli_find_session(st, argv[i], &d.s) < 0 ||
        mdata_load(st, d.s.id, &d, true) < 0)
        goto out;
    bool found = !o.trial || o.follow; /* --follow: the trial may start later */
    for (size_t k = 0; k < d.ntr; k++)
        found |= d.tr[k].idx == o.trial;
    if (!found) {
        cli_error("--trial %ld: session %s has %zu trial(s)", o.trial, d.s.id, d.ntr);
        goto out;
    }
    if (o.csv)
        rc = write_csv(st, &o, &d);
    else if (o.follow)
        rc = follow(st, &o, cli->json, &d);
    else
        rc = (cli->json ? print_json(st, &o, &d) : print_text(st, &o, &d)) < 0 ? 1 : 0;
out:
    if (o.have_re)
        regfree(&o.re);
    mdata_free(&d);
    store_close(st);
    return rc;
}
