/* report.c — session reports rendered from the results store only.
 *
 * The session and all its rows are loaded once (struct rdata); each format
 * walks that data. Text and Markdown share one walker that emits headings and
 * tables through struct emit; JSON is built with jansson; CSV is one row per
 * metric. Trial id 0 rows (session-wide components, metrics, series) are shown
 * in a "session-wide" block (top-level keys in JSON). */
#include "report/report.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store/store.h"
#include "util/hdr.h"
#include "util/units.h"
#include "util/util.h"

#define REPORT_SCHEMA     "sonde.report/1"
#define TABLE_MAX_CELLS   ((size_t)1 << 24)
#define SUMMARY_MAX_COLS  64
#define SUMMARY_WIDE_COLS 8 /* more client metrics than this: a row per metric */

int report_format_parse(const char *s, enum report_format *out)
{
    static const struct {
        const char *name;
        enum report_format f;
    } names[] = {{"text", REPORT_TEXT},
                 {"json", REPORT_JSON},
                 {"csv", REPORT_CSV},
                 {"md", REPORT_MD},
                 {"markdown", REPORT_MD}};
    for (size_t i = 0; s && i < SONDE_ARRAY_LEN(names); i++) {
        if (!strcmp(s, names[i].name)) {
            *out = names[i].f;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- loading ---------------------------------------------------------------- */

struct rdata {
    struct session_row s;
    struct kv_row *prov;
    struct event_row *ev;
    struct trial_row *tr;
    struct component_row *co;
    struct metric_row *me;
    struct series_row *se;
    struct histogram_row *hi;
    size_t nprov, nev, ntr, nco, nme, nse, nhi;
};

static void rdata_free(struct rdata *d)
{
    session_row_free(&d->s);
    kv_rows_free(d->prov, d->nprov);
    event_rows_free(d->ev, d->nev);
    trial_rows_free(d->tr, d->ntr);
    component_rows_free(d->co, d->nco);
    metric_rows_free(d->me, d->nme);
    series_rows_free(d->se, d->nse);
    histogram_rows_free(d->hi, d->nhi);
    memset(d, 0, sizeof(*d));
}

static int rdata_load(struct store *st, const char *id, struct rdata *d)
{
    memset(d, 0, sizeof(*d));
    int ret = store_session_get(st, id, &d->s);
    if (ret < 0)
        return ret;
    const char *sid = d->s.id;
    if ((ret = store_provenance_list(st, sid, &d->prov, &d->nprov)) < 0 ||
        (ret = store_event_list(st, sid, &d->ev, &d->nev)) < 0 ||
        (ret = store_trial_list(st, sid, &d->tr, &d->ntr)) < 0 ||
        (ret = store_component_list(st, sid, -1, &d->co, &d->nco)) < 0 ||
        (ret = store_metric_list(st, sid, -1, &d->me, &d->nme)) < 0 ||
        (ret = store_series_list(st, sid, -1, &d->se, &d->nse)) < 0 ||
        (ret = store_histogram_list(st, sid, -1, &d->hi, &d->nhi)) < 0)
        rdata_free(d);
    return ret;
}

/* ---- small formatting helpers ------------------------------------------------------ */

static char *fmt_time(int64_t t)
{
    return t > 0 ? iso8601(t) : xstrdup("-");
}

static char *fmt_duration(int64_t start, int64_t end)
{
    char buf[64];
    if (start <= 0 || end <= 0 || end < start)
        return xstrdup("-");
    format_duration(end - start, buf, sizeof(buf));
    return xstrdup(buf);
}

/* A number for people: 6 significant digits, no exponent below 10^15. */
static char *fmt_num(double v)
{
    if (fabs(v) >= 1e6 && fabs(v) < 1e15)
        return xasprintf("%.0f", v);
    return xasprintf("%.6g", v);
}

static char *fmt_value_unit(double v, const char *unit)
{
    char *n = fmt_num(v);
    if (!unit || !*unit)
        return n;
    char *s = xasprintf("%s %s", n, unit);
    free(n);
    return s;
}

/* "exit 0", "signal 9", or "-" while unknown. */
static char *fmt_exit(const struct component_row *c)
{
    if (c->exit_signal > 0)
        return xasprintf("signal %lld", (long long)c->exit_signal);
    if (c->exit_code >= 0)
        return xasprintf("exit %lld", (long long)c->exit_code);
    return xstrdup("-");
}

char *report_kv_json(const char *text)
{
    json_t *o = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
    struct sbuf b = {0};
    const char *k;
    json_t *v;
    if (!json_is_object(o)) {
        json_decref(o);
        return xstrdup(text ? text : "");
    }
    json_object_foreach(o, k, v)
    {
        char *vs = json_is_string(v) ? xstrdup(json_string_value(v))
                                     : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        sbuf_printf(&b, "%s%s=%s", b.len ? "," : "", k, vs ? vs : "?");
        free(vs);
    }
    json_decref(o);
    return sbuf_steal(&b);
}

struct summary {
    size_t n;
    double min, mean, max;
};

static struct summary summarize(const struct point *p, size_t n)
{
    struct summary s = {.n = n};
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        s.min = i == 0 || p[i].v < s.min ? p[i].v : s.min;
        s.max = i == 0 || p[i].v > s.max ? p[i].v : s.max;
        sum += p[i].v;
    }
    s.mean = n ? sum / (double)n : 0;
    return s;
}

/* ---- tables ---------------------------------------------------------------------- */

struct table {
    size_t ncols, nrows, cap;
    char **cells; /* row-major, owned */
};

static void table_init(struct table *t, size_t ncols)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* Appends one row taking ownership of the ncols strings in cells (NULL means ""). */
static int table_add_owned(struct table *t, char **cells)
{
    size_t need = (t->nrows + 1) * t->ncols;
    if (need > TABLE_MAX_CELLS) {
        for (size_t i = 0; i < t->ncols; i++)
            free(cells[i]);
        return -EFBIG;
    }
    if (need > t->cap) {
        t->cap = need * 2;
        t->cells = xrealloc(t->cells, t->cap * sizeof(*t->cells));
    }
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = cells[i] ? cells[i] : xstrdup("");
    t->nrows++;
    return 0;
}

/* Appends one row of copies of the ncols strings in cells. */
static int table_add(struct table *t, const char *const *cells)
{
    char *own[SUMMARY_MAX_COLS + 4];
    if (t->ncols > SONDE_ARRAY_LEN(own))
        return -E2BIG;
    for (size_t i = 0; i < t->ncols; i++)
        own[i] = xstrdup(cells[i] ? cells[i] : "");
    return table_add_owned(t, own);
}

/* Display width: UTF-8 code points. */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

/* Writes s with control characters (newlines, tabs, escapes) shown as spaces. */
static void put_clean(FILE *out, const char *s, bool md)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            fputc(' ', out);
        else if (md && (c == '|' || c == '\\'))
            fprintf(out, "\\%c", c);
        else
            fputc(c, out);
    }
}

static void table_print_text(const struct table *t, FILE *out, int indent)
{
    size_t w[SUMMARY_MAX_COLS + 4] = {0};
    size_t nc = t->ncols < SONDE_ARRAY_LEN(w) ? t->ncols : SONDE_ARRAY_LEN(w);
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < nc; c++) {
            size_t cw = text_width(t->cells[r * t->ncols + c]);
            w[c] = cw > w[c] ? cw : w[c];
        }
    for (size_t r = 0; r < t->nrows; r++) {
        char *const *row = &t->cells[r * t->ncols];
        size_t last = nc; /* no padding after the last non-empty cell */
        while (last > 1 && !*row[last - 1])
            last--;
        fprintf(out, "%*s", indent, "");
        for (size_t c = 0; c < last; c++) {
            put_clean(out, row[c], false);
            if (c + 1 < last)
                fprintf(out, "%*s", (int)(w[c] - text_width(row[c]) + 2), "");
        }
        fputc('\n', out);
    }
}

static void table_print_md(const struct table *t, FILE *out)
{
    for (size_t r = 0; r < t->nrows; r++) {
        fputc('|', out);
        for (size_t c = 0; c < t->ncols; c++) {
            fputc(' ', out);
            put_clean(out, t->cells[r * t->ncols + c], true);
            fputs(" |", out);
        }
        fputc('\n', out);
        if (r == 0) {
            fputc('|', out);
            for (size_t c = 0; c < t->ncols; c++)
                fputs(" --- |", out);
            fputc('\n', out);
        }
    }
    fputc('\n', out);
}

/* ---- text and Markdown ------------------------------------------------------------------ */

struct emit {
    FILE *out;
    bool md;
    int level; /* of the last heading */
};

static void emit_heading(struct emit *e, int level, const char *title)
{
    e->level = level;
    if (e->md) {
        fprintf(e->out, "%.*s ", level, "######");
        put_clean(e->out, title, false);
        fputs("\n\n", e->out);
        return;
    }
    if (level == 2)
        fputc('\n', e->out);
    fprintf(e->out, "%*s", level >= 3 ? 2 * (level - 2) : 0, "");
    put_clean(e->out, title, false);
    fputc('\n', e->out);
}

/* Prints t (first row: the header) and frees it. */
static void emit_table(struct emit *e, struct table *t)
{
    if (e->md)
        table_print_md(t, e->out);
    else
        table_print_text(t, e->out, e->level >= 3 ? 2 * (e->level - 1) : 2);
    table_free(t);
}

/* A two-column field/value table; vals[i] are owned and freed. */
static void emit_fields(struct emit *e, const char *const *names, char **vals, size_t n)
{
    struct table t;
    table_init(&t, 2);
    if (e->md)
        table_add(&t, (const char *const[]){"field", "value"});
    for (size_t i = 0; i < n; i++) {
        if (vals[i])
            table_add_owned(&t, (char *[]){xstrdup(names[i]), vals[i]});
    }
    emit_table(e, &t);
}

static void emit_session(struct emit *e, const struct rdata *d)
{
    static const char *const names[] = {"name", "recipe", "backend", "state", "reason",
                                        "host", "dir",    "started", "ended", "duration"};
    const struct session_row *s = &d->s;
    char *vals[] = {xstrdup(s->name),    xstrdup(s->recipe_path),
                    xstrdup(s->backend), xstrdup(session_effective_state(s)),
                    xstrdup(s->reason),  xstrdup(s->host),
                    xstrdup(s->dir),     fmt_time(s->started),
                    fmt_time(s->ended),  fmt_duration(s->started, s->ended)};
    char *title = xasprintf("%s %s", e->md ? "sonde report:" : "Session", s->id);
    emit_heading(e, 1, title);
    free(title);
    emit_fields(e, names, vals, SONDE_ARRAY_LEN(vals));
}

static void emit_provenance(struct emit *e, const struct rdata *d)
{
    struct table t;
    if (!d->nprov)
        return;
    emit_heading(e, 2, "Provenance");
    table_init(&t, 2);
    table_add(&t, (const char *const[]){"KEY", "VALUE"});
    for (size_t i = 0; i < d->nprov; i++) {
        const char *v = d->prov[i].value;
        /* Multi-line values (the resolved recipe) are in the JSON report and
         * the session directory; a table shows their size. */
        char *shown = strchr(v, '\n') || strlen(v) > 160
                          ? xasprintf("(%zu bytes; see the JSON report)", strlen(v))
                          : xstrdup(v);
        table_add(&t, (const char *const[]){d->prov[i].key, shown});
        free(shown);
    }
    emit_table(e, &t);
}

static const struct trial_row *trial_by_id(const struct rdata *d, int64_t id)
{
    for (size_t i = 0; i < d->ntr; i++)
        if (d->tr[i].id == id)
            return &d->tr[i];
    return NULL;
}

/* Events worth a person's attention: warnings and errors. */
static void emit_events(struct emit *e, const struct rdata *d)
{
    struct table t;
    table_init(&t, 4);
    table_add(&t, (const char *const[]){"TIME", "LEVEL", "TRIAL", "MESSAGE"});
    for (size_t i = 0; i < d->nev; i++) {
        const struct event_row *ev = &d->ev[i];
        if (!strcmp(ev->level, "info") || !strcmp(ev->level, "debug"))
            continue;
        const struct trial_row *tr = trial_by_id(d, ev->trial_id);
        table_add_owned(&t, (char *[]){fmt_time(ev->t), xstrdup(ev->level),
                                       tr ? xasprintf("%lld", (long long)tr->idx) : xstrdup("-"),
                                       xstrdup(ev->message)});
    }
    if (t.nrows > 1) {
        emit_heading(e, 2, "Events");
        emit_table(e, &t);
    }
    table_free(&t);
}

static void emit_components(struct emit *e, const struct rdata *d, int64_t trial_id)
{
    struct table t;
    table_init(&t, 7);
    table_add(&t,
              (const char *const[]){"NAME", "ROLE", "DRIVER", "PID", "EXIT", "STATE", "REASON"});
    for (size_t i = 0; i < d->nco; i++) {
        const struct component_row *c = &d->co[i];
        if (c->trial_id != trial_id)
            continue;
        table_add_owned(&t,
                        (char *[]){xstrdup(c->name), xstrdup(c->role), xstrdup(c->driver),
                                   c->pid > 0 ? xasprintf("%lld", (long long)c->pid) : xstrdup("-"),
                                   fmt_exit(c), xstrdup(c->state), xstrdup(c->reason)});
    }
    if (t.nrows > 1) {
        emit_heading(e, 3, "Components");
        emit_table(e, &t);
    }
    table_free(&t);
}

static void emit_metrics(struct emit *e, const struct rdata *d, int64_t trial_id)
{
    struct table t;
    table_init(&t, 5);
    table_add(&t, (const char *const[]){"COMPONENT", "METRIC", "VALUE", "UNIT", "LABELS"});
    for (size_t i = 0; i < d->nme; i++) {
        const struct metric_row *m = &d->me[i];
        if (m->trial_id != trial_id)
            continue;
        table_add_owned(&t, (char *[]){xstrdup(m->component), xstrdup(m->name), fmt_num(m->value),
                                       xstrdup(m->unit), report_kv_json(m->labels)});
    }
    if (t.nrows > 1) {
        emit_heading(e, 3, "Metrics");
        emit_table(e, &t);
    }
    table_free(&t);
}

/* Series over time: the trial's span cut into SERIES_SAMPLES equal windows;
 * each cell is the stored point nearest the middle of its window ("-" when the
 * window holds none), so the values shown are real samples, not averages. */
#define SERIES_SAMPLES   8
#define SERIES_MAX_SHOWN 200 /* series tabled per trial; the JSON report has them all */

struct span {
    int64_t start, end; /* wall ns; end > start */
};

/* The span a trial's (or the session's, trial_id 0) series are shown over:
 * start to end, or to now while it runs. */
static struct span series_span(const struct rdata *d, int64_t trial_id)
{
    const struct trial_row *tr = trial_by_id(d, trial_id);
    struct span sp = {tr ? tr->started : d->s.started, tr ? tr->ended : d->s.ended};
    if (sp.end <= sp.start)
        sp.end = wall_ns();
    return sp;
}

/* Offset from the span's start for a column heading: +12.3s, +4m05s, +2h07m. */
static char *fmt_offset(int64_t ns)
{
    double s = (double)(ns < 0 ? 0 : ns) / 1e9;
    if (s < 60)
        return xasprintf("+%.1fs", s);
    long long w = (long long)s;
    if (w < 3600)
        return xasprintf("+%lldm%02llds", w / 60, w % 60);
    return xasprintf("+%lldh%02lldm", w / 3600, w / 60 % 60);
}

static int64_t window_mid(const struct span *sp, size_t k)
{
    double w = (double)(sp->end - sp->start) / SERIES_SAMPLES;
    return sp->start + (int64_t)(w * ((double)k + 0.5));
}

/* The cells of one series over the span's windows (points sorted by time). */
static void sample_cells(const struct point *p, size_t n, const struct span *sp, char **cells)
{
    double w = (double)(sp->end - sp->start) / SERIES_SAMPLES;
    size_t i = 0;
    for (size_t k = 0; k < SERIES_SAMPLES; k++) {
        int64_t lo = sp->start + (int64_t)(w * (double)k);
        int64_t hi = k + 1 == SERIES_SAMPLES ? sp->end + 1 : sp->start + (int64_t)(w * (k + 1.0));
        int64_t mid = window_mid(sp, k), best_d = INT64_MAX;
        const struct point *best = NULL;
        for (; i < n && p[i].t < lo; i++)
            ;
        for (size_t j = i; j < n && p[j].t < hi; j++) {
            int64_t dist = p[j].t > mid ? p[j].t - mid : mid - p[j].t;
            if (dist < best_d)
                best = &p[j], best_d = dist;
        }
        cells[k] = best ? fmt_num(best->v) : xstrdup("-");
    }
}

static void emit_more(struct emit *e, size_t more)
{
    if (!more)
        return;
    fprintf(e->out, "%*s... and %zu more series (all of them: the JSON report, `sonde metrics`)\n",
            e->md ? 0 : (e->level >= 3 ? 2 * (e->level - 1) : 2), "", more);
    if (e->md)
        fputc('\n', e->out);
}

static int emit_series(struct emit *e, struct store *st, const struct rdata *d, int64_t trial_id)
{
    struct table t, g;
    int ret = 0;
    size_t shown = 0, more = 0;
    struct span sp = series_span(d, trial_id);
    table_init(&t, 8);
    table_add(&t, (const char *const[]){"COMPONENT", "SERIES", "UNIT", "LABELS", "N", "MIN", "MEAN",
                                        "MAX"});
    table_init(&g, 4 + SERIES_SAMPLES);
    char *head[4 + SERIES_SAMPLES] = {xstrdup("COMPONENT"), xstrdup("SERIES"), xstrdup("LABELS"),
                                      xstrdup("UNIT")};
    for (size_t k = 0; k < SERIES_SAMPLES; k++)
        head[4 + k] = fmt_offset(window_mid(&sp, k) - sp.start);
    table_add_owned(&g, head);
    for (size_t i = 0; i < d->nse && ret == 0; i++) {
        const struct series_row *s = &d->se[i];
        struct point *p = NULL;
        size_t n = 0;
        if (s->trial_id != trial_id)
            continue;
        if (shown == SERIES_MAX_SHOWN) {
            more++;
            continue;
        }
        if ((ret = store_series_points(st, s->id, &p, &n)) < 0)
            continue;
        struct summary sm = summarize(p, n);
        bool any = sm.n > 0;
        table_add_owned(&t, (char *[]){xstrdup(s->component), xstrdup(s->name), xstrdup(s->unit),
                                       report_kv_json(s->labels), xasprintf("%zu", sm.n),
                                       any ? fmt_num(sm.min) : xstrdup("-"),
                                       any ? fmt_num(sm.mean) : xstrdup("-"),
                                       any ? fmt_num(sm.max) : xstrdup("-")});
        char *row[4 + SERIES_SAMPLES] = {xstrdup(s->component), xstrdup(s->name),
                                         report_kv_json(s->labels), xstrdup(s->unit)};
        sample_cells(p, n, &sp, row + 4);
        table_add_owned(&g, row);
        free(p);
        shown++;
    }
    if (ret == 0 && t.nrows > 1) {
        emit_heading(e, 3, "Series");
        emit_table(e, &t);
        emit_more(e, more);
        emit_heading(e, 3, "Series over time (the point nearest each offset from the start)");
        emit_table(e, &g);
        emit_more(e, more);
    }
    table_free(&t);
    table_free(&g);
    return ret;
}

/* ---- histograms ---------------------------------------------------------------------------- */

/* The percentiles reported for a histogram, as JSON keys and table headings. */
static const struct {
    double p;
    const char *key;
} hist_pcts[] = {{50, "50"}, {90, "90"}, {99, "99"}, {99.9, "99.9"}};

/* A decoded histogram with the scale to the unit it is shown in: values recorded
 * in ns are shown in ms, others in their own unit. NULL h when malformed. */
struct hist_view {
    struct hdr *h;
    double scale;
    const char *unit;
};

static struct hist_view hist_view(const struct histogram_row *r)
{
    struct hist_view v = {.scale = 1, .unit = r->unit};
    if (hdr_decode(r->encoding, r->len, &v.h) < 0)
        v.h = NULL;
    if (r->unit && !strcmp(r->unit, "ns")) {
        v.scale = 1e-6;
        v.unit = "ms";
    }
    return v;
}

static void emit_histograms(struct emit *e, const struct rdata *d, int64_t trial_id)
{
    struct table t;
    table_init(&t, 8 + SONDE_ARRAY_LEN(hist_pcts));
    table_add(&t, (const char *const[]){"COMPONENT", "HISTOGRAM", "UNIT", "LABELS", "N", "MIN",
                                        "MEAN", "P50", "P90", "P99", "P99.9", "MAX"});
    for (size_t i = 0; i < d->nhi; i++) {
        const struct histogram_row *r = &d->hi[i];
        if (r->trial_id != trial_id)
            continue;
        struct hist_view v = hist_view(r);
        bool any = v.h && hdr_count(v.h) > 0;
        char *cells[8 + SONDE_ARRAY_LEN(hist_pcts)] = {
            xstrdup(r->component),
            xstrdup(r->name),
            xstrdup(v.unit),
            report_kv_json(r->labels),
            v.h ? xasprintf("%llu", (unsigned long long)hdr_count(v.h)) : xstrdup("malformed"),
            any ? fmt_num((double)hdr_min(v.h) * v.scale) : xstrdup("-"),
            any ? fmt_num(hdr_mean(v.h) * v.scale) : xstrdup("-")};
        size_t c = 7;
        for (size_t k = 0; k < SONDE_ARRAY_LEN(hist_pcts); k++, c++)
            cells[c] = any && hdr_percentile_ok(v.h, hist_pcts[k].p)
                           ? fmt_num((double)hdr_percentile(v.h, hist_pcts[k].p) * v.scale)
                           : xstrdup("-");
        cells[c] = any ? fmt_num((double)hdr_max(v.h) * v.scale) : xstrdup("-");
        table_add_owned(&t, cells);
        hdr_free(v.h);
    }
    if (t.nrows > 1) {
        emit_heading(e, 3, "Histograms");
        emit_table(e, &t);
    }
    table_free(&t);
}

static int emit_trial(struct emit *e, struct store *st, const struct rdata *d,
                      const struct trial_row *tr)
{
    static const char *const names[] = {"matrix",  "repetition", "state",   "reason",
                                        "started", "ended",      "duration"};
    char *title = tr->label ? xasprintf("Trial %lld: %s", (long long)tr->idx, tr->label)
                            : xasprintf("Trial %lld", (long long)tr->idx);
    char *vals[] = {report_kv_json(tr->matrix),
                    xasprintf("%lld", (long long)tr->repetition),
                    xstrdup(tr->state),
                    xstrdup(tr->reason),
                    fmt_time(tr->started),
                    fmt_time(tr->ended),
                    fmt_duration(tr->started, tr->ended)};
    emit_heading(e, 2, title);
    free(title);
    emit_fields(e, names, vals, SONDE_ARRAY_LEN(vals));
    emit_components(e, d, tr->id);
    emit_metrics(e, d, tr->id);
    emit_histograms(e, d, tr->id);
    return emit_series(e, st, d, tr->id);
}

static bool has_session_wide(const struct rdata *d)
{
    for (size_t i = 0; i < d->nco; i++)
        if (d->co[i].trial_id == 0)
            return true;
    for (size_t i = 0; i < d->nme; i++)
        if (d->me[i].trial_id == 0)
            return true;
    for (size_t i = 0; i < d->nse; i++)
        if (d->se[i].trial_id == 0)
            return true;
    for (size_t i = 0; i < d->nhi; i++)
        if (d->hi[i].trial_id == 0)
            return true;
    return false;
}

static void summary_build(const struct rdata *d, struct table *t); /* the summary, below */

static int render_text(struct store *st, const struct rdata *d, FILE *out, bool md)
{
    struct emit e = {.out = out, .md = md};
    int ret = 0;
    emit_session(&e, d);
    emit_provenance(&e, d);
    emit_events(&e, d);
    if (has_session_wide(d)) {
        emit_heading(&e, 2, "Session-wide");
        emit_components(&e, d, 0);
        emit_metrics(&e, d, 0);
        emit_histograms(&e, d, 0);
        ret = emit_series(&e, st, d, 0);
    }
    if (d->ntr > 1) {
        struct table t;
        emit_heading(&e, 2, "Trials compared (client metrics)");
        summary_build(d, &t);
        emit_table(&e, &t);
    }
    for (size_t i = 0; i < d->ntr && ret == 0; i++)
        ret = emit_trial(&e, st, d, &d->tr[i]);
    return ret;
}

/* ---- JSON --------------------------------------------------------------------------------- */

/* A JSON string, with bytes that are not valid UTF-8 replaced by '?'; null for NULL. */
static json_t *jstr(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    char *c = xstrdup(s);
    for (char *p = c; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(c);
    free(c);
    return j ? j : json_null();
}

static json_t *jreal(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jtime(int64_t t)
{
    if (t <= 0)
        return json_null();
    char *s = iso8601(t);
    json_t *j = json_string(s);
    free(s);
    return j;
}

static json_t *jduration(int64_t start, int64_t end)
{
    if (start <= 0 || end <= 0 || end < start)
        return json_null();
    return json_real((double)(end - start) / 1e9);
}

/* Stored JSON text as a value: parsed when valid, else the text itself; {} for NULL. */
static json_t *jparsed(const char *text)
{
    if (!text)
        return json_object();
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    return j ? j : jstr(text);
}

static json_t *json_session(const struct session_row *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", jstr(s->id));
    json_object_set_new(o, "name", jstr(s->name));
    json_object_set_new(o, "recipe", jstr(s->recipe_path));
    json_object_set_new(o, "backend", jstr(s->backend));
    json_object_set_new(o, "state", jstr(session_effective_state(s)));
    json_object_set_new(o, "recorded_state", jstr(s->state));
    json_object_set_new(o, "reason", jstr(s->reason));
    json_object_set_new(o, "host", jstr(s->host));
    json_object_set_new(o, "pid", json_integer(s->pid));
    json_object_set_new(o, "dir", jstr(s->dir));
    json_object_set_new(o, "created", jtime(s->created));
    json_object_set_new(o, "started", jtime(s->started));
    json_object_set_new(o, "ended", jtime(s->ended));
    json_object_set_new(o, "duration_s", jduration(s->started, s->ended));
    return o;
}

static json_t *json_events(const struct rdata *d)
{
    json_t *a = json_array();
    for (size_t i = 0; i < d->nev; i++) {
        const struct trial_row *tr = trial_by_id(d, d->ev[i].trial_id);
        json_t *o = json_object();
        json_object_set_new(o, "time", jtime(d->ev[i].t));
        json_object_set_new(o, "trial", tr ? json_integer(tr->idx) : json_null());
        json_object_set_new(o, "level", jstr(d->ev[i].level));
        json_object_set_new(o, "message", jstr(d->ev[i].message));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *json_component(const struct component_row *c)
{
    json_t *o = json_object();
    char *ex = fmt_exit(c);
    json_object_set_new(o, "name", jstr(c->name));
    json_object_set_new(o, "role", jstr(c->role));
    json_object_set_new(o, "driver", jstr(c->driver));
    json_object_set_new(o, "command", c->command ? jparsed(c->command) : json_null());
    json_object_set_new(o, "host", jstr(c->host));
    json_object_set_new(o, "pid", c->pid > 0 ? json_integer(c->pid) : json_null());
    json_object_set_new(o, "exit_code",
                        c->exit_code >= 0 ? json_integer(c->exit_code) : json_null());
    json_object_set_new(o, "exit_signal",
                        c->exit_signal > 0 ? json_integer(c->exit_signal) : json_null());
    json_object_set_new(o, "exit", strcmp(ex, "-") ? jstr(ex) : json_null());
    json_object_set_new(o, "state", jstr(c->state));
    json_object_set_new(o, "reason", jstr(c->reason));
    json_object_set_new(o, "log", jstr(c->log_path));
    json_object_set_new(o, "started", jtime(c->started));
    json_object_set_new(o, "ended", jtime(c->ended));
    free(ex);
    return o;
}

static json_t *json_metric(const struct metric_row *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "component", jstr(m->component));
    json_object_set_new(o, "name", jstr(m->name));
    json_object_set_new(o, "unit", jstr(m->unit));
    json_object_set_new(o, "labels", jparsed(m->labels));
    json_object_set_new(o, "value", jreal(m->value));
    return o;
}

/* A series with its points, t in seconds since base (ns; the first point when 0). */
static int json_series(struct store *st, const struct series_row *s, int64_t base, json_t **out)
{
    struct point *p = NULL;
    size_t n = 0;
    int ret = store_series_points(st, s->id, &p, &n);
    if (ret < 0)
        return ret;
    if (base <= 0 && n)
        base = p[0].t;
    json_t *o = json_object(), *pts = json_array(), *sum = json_object();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            pts, json_pack("[oo]", json_real((double)(p[i].t - base) / 1e9), jreal(p[i].v)));
    struct summary sm = summarize(p, n);
    free(p);
    json_object_set_new(sum, "n", json_integer((json_int_t)sm.n));
    json_object_set_new(sum, "min", n ? jreal(sm.min) : json_null());
    json_object_set_new(sum, "mean", n ? jreal(sm.mean) : json_null());
    json_object_set_new(sum, "max", n ? jreal(sm.max) : json_null());
    json_object_set_new(o, "component", jstr(s->component));
    json_object_set_new(o, "name", jstr(s->name));
    json_object_set_new(o, "unit", jstr(s->unit));
    json_object_set_new(o, "labels", jparsed(s->labels));
    json_object_set_new(o, "points", pts);
    json_object_set_new(o, "summary", sum);
    *out = o;
    return 0;
}

static json_t *json_histogram(const struct histogram_row *r)
{
    json_t *o = json_object(), *pc = json_object();
    struct hist_view v = hist_view(r);
    bool any = v.h && hdr_count(v.h) > 0;
    json_object_set_new(o, "component", jstr(r->component));
    json_object_set_new(o, "name", jstr(r->name));
    json_object_set_new(o, "unit", jstr(v.unit));
    json_object_set_new(o, "labels", jparsed(r->labels));
    json_object_set_new(o, "count", json_integer(v.h ? (json_int_t)hdr_count(v.h) : 0));
    json_object_set_new(o, "min", any ? jreal((double)hdr_min(v.h) * v.scale) : json_null());
    json_object_set_new(o, "max", any ? jreal((double)hdr_max(v.h) * v.scale) : json_null());
    json_object_set_new(o, "mean", any ? jreal(hdr_mean(v.h) * v.scale) : json_null());
    for (size_t k = 0; any && k < SONDE_ARRAY_LEN(hist_pcts); k++)
        if (hdr_percentile_ok(v.h, hist_pcts[k].p))
            json_object_set_new(pc, hist_pcts[k].key,
                                jreal((double)hdr_percentile(v.h, hist_pcts[k].p) * v.scale));
    json_object_set_new(o, "percentiles", pc);
    if (!v.h)
        json_object_set_new(o, "error", json_string("malformed histogram encoding"));
    hdr_free(v.h);
    return o;
}

/* Sets "components", "metrics", "histograms" and "series" of obj to the rows of trial_id. */
static int json_rows(struct store *st, const struct rdata *d, int64_t trial_id, int64_t base,
                     json_t *obj)
{
    json_t *co = json_array(), *me = json_array(), *se = json_array(), *hi = json_array();
    int ret = 0;
    json_object_set_new(obj, "components", co);
    json_object_set_new(obj, "metrics", me);
    json_object_set_new(obj, "histograms", hi);
    json_object_set_new(obj, "series", se);
    for (size_t i = 0; i < d->nhi; i++)
        if (d->hi[i].trial_id == trial_id)
            json_array_append_new(hi, json_histogram(&d->hi[i]));
    for (size_t i = 0; i < d->nco; i++)
        if (d->co[i].trial_id == trial_id)
            json_array_append_new(co, json_component(&d->co[i]));
    for (size_t i = 0; i < d->nme; i++)
        if (d->me[i].trial_id == trial_id)
            json_array_append_new(me, json_metric(&d->me[i]));
    for (size_t i = 0; i < d->nse && ret == 0; i++) {
        json_t *s = NULL;
        if (d->se[i].trial_id == trial_id && (ret = json_series(st, &d->se[i], base, &s)) == 0)
            json_array_append_new(se, s);
    }
    return ret;
}

static int json_trial(struct store *st, const struct rdata *d, const struct trial_row *tr,
                      json_t **out)
{
    json_t *o = json_object();
    json_object_set_new(o, "index", json_integer(tr->idx));
    json_object_set_new(o, "label", jstr(tr->label));
    json_object_set_new(o, "matrix", jparsed(tr->matrix));
    json_object_set_new(o, "repetition", json_integer(tr->repetition));
    json_object_set_new(o, "state", jstr(tr->state));
    json_object_set_new(o, "reason", jstr(tr->reason));
    json_object_set_new(o, "started", jtime(tr->started));
    json_object_set_new(o, "ended", jtime(tr->ended));
    json_object_set_new(o, "duration_s", jduration(tr->started, tr->ended));
    int ret = json_rows(st, d, tr->id, tr->started, o);
    if (ret < 0) {
        json_decref(o);
        return ret;
    }
    *out = o;
    return 0;
}

static int render_json(struct store *st, const struct rdata *d, FILE *out)
{
    json_t *root = json_object(), *prov = json_object(), *trials = json_array();
    int ret;
    json_object_set_new(root, "schema", json_string(REPORT_SCHEMA));
    json_object_set_new(root, "session", json_session(&d->s));
    json_object_set_new(root, "provenance", prov);
    json_object_set_new(root, "events", json_events(d));
    for (size_t i = 0; i < d->nprov; i++)
        json_object_set_new(prov, d->prov[i].key, jstr(d->prov[i].value));
    ret = json_rows(st, d, 0, d->s.started, root);
    for (size_t i = 0; i < d->ntr && ret == 0; i++) {
        json_t *t = NULL;
        if ((ret = json_trial(st, d, &d->tr[i], &t)) == 0)
            json_array_append_new(trials, t);
    }
    json_object_set_new(root, "trials", trials);
    if (ret == 0 && json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) < 0)
        ret = -EIO;
    if (ret == 0)
        fputc('\n', out);
    json_decref(root);
    return ret;
}

/* ---- CSV ------------------------------------------------------------------------------------ */

/* One RFC 4180 field: quoted when it holds a comma, quote, CR or LF. */
static void csv_field(FILE *out, const char *s, bool last)
{
    s = s ? s : "";
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', out);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', out);
            fputc(*s, out);
        }
        fputc('"', out);
    } else {
        fputs(s, out);
    }
    fputs(last ? "\r\n" : ",", out);
}

static void render_csv(const struct rdata *d, FILE *out)
{
    static const char *const header[] = {"session", "trial", "label",  "component",
                                         "name",    "unit",  "labels", "value"};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(header); i++)
        csv_field(out, header[i], i + 1 == SONDE_ARRAY_LEN(header));
    for (size_t i = 0; i < d->nme; i++) {
        const struct metric_row *m = &d->me[i];
        const struct trial_row *tr = trial_by_id(d, m->trial_id);
        char *idx = tr ? xasprintf("%lld", (long long)tr->idx) : xstrdup("");
        char *val = num_exact(m->value);
        csv_field(out, d->s.id, false);
        csv_field(out, idx, false);
        csv_field(out, tr ? tr->label : NULL, false);
        csv_field(out, m->component, false);
        csv_field(out, m->name, false);
        csv_field(out, m->unit, false);
        csv_field(out, m->labels, false);
        csv_field(out, val, true);
        free(idx);
        free(val);
    }
}

/* ---- entry points -----------------------------------------------------------------------------
 */

int report_render(struct store *st, const char *session_id, enum report_format f, FILE *out)
{
    struct rdata d;
    int ret = rdata_load(st, session_id, &d);
    if (ret < 0)
        return ret;
    switch (f) {
    case REPORT_TEXT:
    case REPORT_MD:
        ret = render_text(st, &d, out, f == REPORT_MD);
        break;
    case REPORT_JSON:
        ret = render_json(st, &d, out);
        break;
    case REPORT_CSV:
        render_csv(&d, out);
        break;
    default:
        ret = -EINVAL;
    }
    rdata_free(&d);
    if (ret == 0 && (fflush(out) != 0 || ferror(out)))
        ret = -EIO;
    return ret;
}

/* ---- summary ------------------------------------------------------------------------------------
 */

static bool is_client(const struct rdata *d, const struct metric_row *m)
{
    const char *role = NULL;
    for (size_t i = 0; i < d->nco; i++) {
        const struct component_row *c = &d->co[i];
        if (strcmp(c->name, m->component) != 0)
            continue;
        role = c->role;
        if (c->trial_id == m->trial_id)
            break;
    }
    return role && !strcmp(role, "client");
}

/* Column key of a client metric: [component.]name[{labels}]. */
static char *summary_key(const struct metric_row *m, bool with_component)
{
    char *lab = report_kv_json(m->labels);
    char *key =
        xasprintf("%s%s%s%s%s%s", with_component ? m->component : "", with_component ? "." : "",
                  m->name, *lab ? "{" : "", lab, *lab ? "}" : "");
    free(lab);
    return key;
}

struct columns {
    char *key[SUMMARY_MAX_COLS];
    size_t n;
};

static size_t column_of(struct columns *c, const char *key, bool add)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->key[i], key))
            return i;
    if (!add || c->n == SUMMARY_MAX_COLS)
        return SIZE_MAX;
    c->key[c->n] = xstrdup(key);
    return c->n++;
}

/* True when client metrics come from more than one component. */
static bool many_clients(const struct rdata *d)
{
    const char *first = NULL;
    for (size_t i = 0; i < d->nme; i++) {
        if (!is_client(d, &d->me[i]))
            continue;
        if (first && strcmp(first, d->me[i].component) != 0)
            return true;
        first = d->me[i].component;
    }
    return false;
}

/* The cells of one trial: label, state, one per column, the reason when
 * with_reason; owned by the caller. */
static char **summary_row(const struct rdata *d, const struct trial_row *tr, struct columns *cols,
                          bool with_comp, bool with_reason)
{
    size_t n = 2 + cols->n + with_reason;
    char **cells = xcalloc(n, sizeof(*cells));
    cells[0] = tr->label ? xstrdup(tr->label) : xasprintf("#%lld", (long long)tr->idx);
    cells[1] = xstrdup(tr->state);
    for (size_t i = 0; i < d->nme; i++) {
        const struct metric_row *m = &d->me[i];
        if (m->trial_id != tr->id || !is_client(d, m))
            continue;
        char *key = summary_key(m, with_comp);
        size_t c = column_of(cols, key, false);
        free(key);
        if (c != SIZE_MAX && !cells[2 + c])
            cells[2 + c] = fmt_value_unit(m->value, m->unit);
    }
    for (size_t c = 2; c < 2 + cols->n; c++)
        cells[c] = cells[c] ? cells[c] : xstrdup("-");
    if (with_reason)
        cells[n - 1] = xstrdup(tr->reason ? tr->reason : "");
    return cells;
}

/* The client metrics of every trial in t: a row per trial, or, when there are
 * more metrics than fit across (and few enough trials), a row per metric and
 * a column per trial. */
static void summary_build(const struct rdata *d, struct table *t)
{
    struct columns cols = {0};
    bool with_comp = many_clients(d), with_reason = false;
    for (size_t i = 0; i < d->nme; i++) {
        if (d->me[i].trial_id > 0 && is_client(d, &d->me[i])) {
            char *key = summary_key(&d->me[i], with_comp);
            column_of(&cols, key, true);
            free(key);
        }
    }
    for (size_t i = 0; i < d->ntr; i++)
        with_reason = with_reason || d->tr[i].reason;
    size_t w = 2 + cols.n + with_reason;
    char ***rows = xcalloc(d->ntr ? d->ntr : 1, sizeof(*rows));
    for (size_t i = 0; i < d->ntr; i++)
        rows[i] = summary_row(d, &d->tr[i], &cols, with_comp, with_reason);
    char *head[SUMMARY_MAX_COLS + 3] = {xstrdup("TRIAL"), xstrdup("STATE")};
    for (size_t c = 0; c < cols.n; c++)
        head[2 + c] = cols.key[c]; /* the table takes the column keys */
    if (with_reason)
        head[2 + cols.n] = xstrdup("REASON");
    if (cols.n > SUMMARY_WIDE_COLS && d->ntr <= SUMMARY_MAX_COLS) {
        table_init(t, 1 + d->ntr);
        for (size_t r = 0; r < w; r++) {
            char *line[SUMMARY_MAX_COLS + 1] = {head[r]};
            for (size_t i = 0; i < d->ntr; i++)
                line[1 + i] = rows[i][r];
            table_add_owned(t, line);
        }
    } else {
        table_init(t, w);
        table_add_owned(t, head);
        for (size_t i = 0; i < d->ntr; i++)
            table_add_owned(t, rows[i]);
    }
    for (size_t i = 0; i < d->ntr; i++)
        free(rows[i]);
    free(rows);
}

static void summary_table(const struct rdata *d, FILE *out)
{
    struct table t;
    summary_build(d, &t);
    table_print_text(&t, out, 0);
    table_free(&t);
}

int report_summary(struct store *st, const char *session_id, FILE *out)
{
    struct rdata d;
    int ret = rdata_load(st, session_id, &d);
    if (ret < 0)
        return ret;
    if (d.ntr)
        summary_table(&d, out);
    else
        fputs("no trials\n", out);
    const char *state = session_effective_state(&d.s);
    fprintf(out, "session %s %s%s", d.s.id, state, d.s.reason ? ": " : "");
    put_clean(out, d.s.reason ? d.s.reason : "", false);
    fputc('\n', out);
    rdata_free(&d);
    return fflush(out) != 0 || ferror(out) ? -EIO : 0;
}
