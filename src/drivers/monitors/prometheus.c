/* prometheus.c — the `prometheus` monitor: scrapes a Prometheus / OpenMetrics
 * endpoint every interval and records the selected families.
 *
 * Scrapes run on a thread of the monitor's own, so a slow or hanging endpoint
 * stalls neither the session loop nor the other monitors: the thread fetches
 * (http_fetch, bounded by `timeout` and `max_bytes`), parses (util/promtext.h),
 * keeps the samples of the selected families and labels and queues the result;
 * tick() takes the finished scrapes under the mutex and records them.
 *
 * The thread owns the series table (a sample's name and labels → a series id);
 * it publishes each series' description (name, labels as JSON, kind) in chunks
 * that never move, so tick() reads them without the lock once it has seen their
 * count, which is published with the scrape that used them. Memory: at most
 * max_series series (and 4096 more remembered as dropped), their names and
 * labels together at most max_bytes; one response of at most max_bytes; at most
 * 16 finished scrapes queued (the oldest goes first). At finish a scrape
 * still in flight is cancelled and abandoned, so stopping never waits out a
 * long timeout (every wait of a fetch, name resolution included, is
 * cancellable); the state both sides share is reference-counted, for the rare
 * thread that does not come out in time (it is detached and frees the state).
 *
 * What is recorded: gauges, untyped and unknown samples and summary quantiles
 * as series points, with _mean and _max per series at the end; counters (and
 * the _count of histograms and summaries) as per-second rates between
 * consecutive scrapes; summaries' count and mean over the trial; histograms as
 * the distribution of the trial (the increases of each part between
 * consecutive scrapes):
 * p50/p90/p99 interpolated inside the bucket as Prometheus's histogram_quantile
 * does, mean, count and the bucket deltas. A counter below its previous value
 * is a reset (the endpoint restarted): the increase is the new value, as
 * Prometheus's rate() and increase() count it; a histogram is reset as a whole
 * when its count goes down (its _sum may go down on its own: negative
 * observations), and so is a summary. */
#include "core/session.h"
#include "loadgen/fetch.h"
#include "util/keytab.h"
#include "util/net.h"
#include "util/promtext.h"
#include "util/util.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PM_DEFAULT_INTERVAL_NS ((int64_t)1000000000)
#define PM_MAX_DEFAULT_TIMEOUT ((int64_t)10000000000)
#define PM_DEFAULT_MAX_SERIES  5000
#define PM_MAX_MAX_SERIES      1000000
#define PM_DEFAULT_MAX_BYTES   ((int64_t)16 << 20)
#define PM_MIN_MAX_BYTES       ((int64_t)1 << 10)
#define PM_MAX_MAX_BYTES       ((int64_t)1 << 30)
#define PM_QUEUE_MAX           16                   /* finished scrapes waiting for tick() */
#define PM_CHUNK               256                  /* series descriptions per chunk */
#define PM_STOP_GRACE_NS       ((int64_t)300000000) /* for a scrape in flight at finish */
#define PM_QUANTILES           3
#define PM_DROPPED             UINT32_MAX /* the id of a series beyond max_series */
#define PM_DROPPED_KEYS        4096       /* series beyond max_series remembered as such */

/* OpenMetrics first (counters' _created stay inside their family), then 0.0.4. */
#define PM_ACCEPT                                                                                  \
    "Accept: application/openmetrics-text;version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.5,"     \
    "*/*;q=0.1"

enum pm_kind {
    PK_GAUGE,   /* a point per scrape; _mean and _max */
    PK_COUNTER, /* a rate per interval */
    PK_BUCKET,  /* histogram bucket: its increase over the trial */
    PK_HSUM,    /* histogram or summary _sum: its increase over the trial */
    PK_HCOUNT,  /* histogram or summary _count: its increase over the trial, and a rate */
};

/* One series, immutable once published. */
struct pm_meta {
    char *name;   /* the sample's name */
    char *labels; /* its labels as a JSON object text (histogram parts: without le); NULL: none */
    char *family;
    enum pm_kind kind;
    double le; /* PK_BUCKET: the bound, and as written */
    char *le_text;
    uint32_t group; /* histogram parts: which histogram (family + labels without le) */
};

/* A finished scrape. */
struct pm_result {
    struct pm_result *next;
    int64_t wall, mono, dur_ns;
    char *error;       /* why the scrape failed, NULL when it did not */
    char *parse_error; /* the first bad line's message, or NULL */
    size_t bad_lines, dups, dropped;
    size_t n, cap;
    uint32_t *ids;
    double *vals;
};

struct pm_filter {
    char *label;
    regex_t re;
};

/* What the monitor and its scrape thread share. */
struct pm_shared {
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Options (read-only once the thread runs). */
    char *url;
    char *service; /* added to every series as label `service` (scrape:); NULL: none */
    int64_t interval, timeout;
    size_t max_bytes, max_series;
    regex_t *match;
    size_t nmatch;
    struct pm_filter *filters;
    size_t nfilters;
    /* Series descriptions: chunk pointers allocated up front, so they never move. */
    struct pm_meta **chunks;
    atomic_bool cancel; /* set with stop: cuts the fetch in flight short */
    /* Under mu. */
    bool stop, exited;
    bool cut;     /* a scrape was in flight when the thread was stopped */
    size_t nmeta; /* published descriptions */
    struct pm_result *head, *tail;
    size_t nq, lost; /* queued results; results dropped from a full queue */
    int64_t cpu_ns;
    /* The thread's own. */
    size_t created;               /* descriptions written (published with the next result) */
    struct keytab series, groups; /* the thread's own */
    size_t key_bytes;             /* of the series table's keys: at most max_bytes */
    uint64_t scrape_no;
    struct sbuf key;
    char fam[256]; /* the family of the last filter decision, and the decision */
    bool fam_keep, fam_valid;
};

/* Per-series recording state, tick() side. */
struct pm_state {
    bool has_prev;
    double prev; /* counters and histogram parts: the value and time of the previous scrape */
    int64_t prev_mono;
    double sum, max; /* gauges */
    uint64_t n;
    double inc, dt; /* counters and histogram parts: increases and the time they span */
};

/* A histogram (family + labels without le), tick() side. */
struct pm_group {
    const struct pm_meta *any; /* a part of it, for the family and labels */
    long sum_id, count_id;     /* -1: not seen */
    long inf_id;               /* the +Inf bucket; -1: not seen */
    uint64_t reset_at;         /* the scrape (p->scrapes) in which it was reset, 0: none */
    uint32_t *buckets;
    size_t nb, cap;
};

/* One endpoint: its thread, the series taken in and their state. */
struct pm_target {
    struct pm_shared *sh;
    char *mlabels;     /* the monitor's own metrics' labels ({"service": NAME}); NULL: none */
    int64_t cpu_added; /* of the scrape thread's CPU time, what comp_add_cpu has had */
    pthread_t th;
    bool thread_running; /* created and neither joined nor detached */
    struct pm_state *st;
    size_t nst, capst;
    struct pm_group *g;
    size_t ng, capg;
    uint64_t scrapes, errors;
    double dur_sum_ms;
    size_t bad_lines, dups, dropped_max;
    char *first_error, *first_parse_error;
    bool warned_dropped;
    bool abandoned; /* a scrape was in flight when the thread was stopped */
    size_t lost;    /* finished scrapes dropped from a full queue */
};

/* The monitor: an endpoint (`url`) or each service named in `scrape`. */
struct pm_priv {
    struct pm_target *t;
    size_t n;
};

/* ---- shared state ---------------------------------------------------------------------------- */

static void result_free(struct pm_result *r)
{
    if (r) {
        free(r->error);
        free(r->parse_error);
        free(r->ids);
        free(r->vals);
        free(r);
    }
}

static struct pm_meta *meta_at(const struct pm_shared *sh, size_t id)
{
    return &sh->chunks[id / PM_CHUNK][id % PM_CHUNK];
}

static void shared_free(struct pm_shared *sh)
{
    for (size_t i = 0; i < sh->created; i++) {
        struct pm_meta *m = meta_at(sh, i);
        free(m->name);
        free(m->labels);
        free(m->family);
        free(m->le_text);
    }
    for (size_t i = 0; sh->chunks && i * PM_CHUNK < sh->max_series; i++)
        free(sh->chunks[i]);
    free(sh->chunks);
    while (sh->head) {
        struct pm_result *r = sh->head;
        sh->head = r->next;
        result_free(r);
    }
    for (size_t i = 0; i < sh->nmatch; i++)
        regfree(&sh->match[i]);
    free(sh->match);
    for (size_t i = 0; i < sh->nfilters; i++) {
        free(sh->filters[i].label);
        regfree(&sh->filters[i].re);
    }
    free(sh->filters);
    keytab_free(&sh->series);
    keytab_free(&sh->groups);
    sbuf_free(&sh->key);
    free(sh->url);
    free(sh->service);
    pthread_cond_destroy(&sh->cv);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

static void shared_unref(struct pm_shared *sh)
{
    if (sh && atomic_fetch_sub(&sh->refs, 1) == 1)
        shared_free(sh);
}

/* ---- one scrape (scrape thread) -------------------------------------------------------------- */

/* Whether a regex matches all of s. */
static bool full_match(const regex_t *re, const char *s)
{
    regmatch_t m;
    return regexec(re, s, 1, &m, 0) == 0 && m.rm_so == 0 && s[m.rm_eo] == '\0';
}

/* A family is kept when a `match` regex matches its name in full; a counter
 * family also when one matches its name with _total (OpenMetrics names the
 * family without it, 0.0.4 with it), so `x_total` selects it in both. */
static bool family_kept(struct pm_shared *sh, const char *family, enum prom_type t)
{
    if (sh->fam_valid && strcmp(sh->fam, family) == 0)
        return sh->fam_keep;
    bool keep = sh->nmatch == 0;
    char *total = t == PROM_COUNTER ? xasprintf("%s_total", family) : NULL;
    for (size_t i = 0; i < sh->nmatch && !keep; i++)
        keep = full_match(&sh->match[i], family) || (total && full_match(&sh->match[i], total));
    free(total);
    sh->fam_valid = strlen(family) < sizeof(sh->fam);
    if (sh->fam_valid)
        snprintf(sh->fam, sizeof(sh->fam), "%s", family);
    sh->fam_keep = keep;
    return keep;
}

static const char *label_value(const struct prom_sample *s, const char *name)
{
    for (size_t i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i].name, name) == 0)
            return s->labels[i].value;
    return "";
}

/* `labels:` filters: a missing label counts as "" (as in Prometheus). */
static bool labels_kept(const struct pm_shared *sh, const struct prom_sample *s)
{
    for (size_t i = 0; i < sh->nfilters; i++)
        if (!full_match(&sh->filters[i].re, label_value(s, sh->filters[i].label)))
            return false;
    return true;
}

/* How a sample is recorded; false: it is not (_created, info). */
static bool sample_kind(const struct prom_sample *s, enum pm_kind *k)
{
    switch (s->part) {
    case PROM_PART_CREATED:
    case PROM_PART_INFO:
        return false;
    case PROM_PART_TOTAL:
        *k = PK_COUNTER;
        return true;
    case PROM_PART_BUCKET:
        *k = s->type == PROM_HISTOGRAM ? PK_BUCKET : PK_GAUGE;
        return true;
    case PROM_PART_SUM: /* a summary's _sum and _count are grouped as a histogram's */
        *k = s->type == PROM_HISTOGRAM || s->type == PROM_SUMMARY ? PK_HSUM : PK_COUNTER;
        return true;
    case PROM_PART_COUNT:
        *k = s->type == PROM_HISTOGRAM || s->type == PROM_SUMMARY ? PK_HCOUNT : PK_COUNTER;
        return true;
    default: /* gauges, untyped, unknown, stateset, quantiles, gaugehistogram gsum/gcount */
        *k = PK_GAUGE;
        return true;
    }
}

/* The labels sorted by name (Prometheus ignores their order), skipping `skip`. */
static size_t sorted_labels(const struct prom_sample *s, const char *skip,
                            const struct prom_label **out)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nlabels; i++) {
        if (skip && strcmp(s->labels[i].name, skip) == 0)
            continue;
        size_t j = n++;
        while (j > 0 && strcmp(out[j - 1]->name, s->labels[i].name) > 0) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = &s->labels[i];
    }
    return n;
}

/* A key: the name, then each label as name NUL value NUL (values hold no NUL). */
static void make_key(struct sbuf *b, const char *name, const struct prom_label *const *l, size_t n)
{
    b->len = 0;
    sbuf_add(b, name, strlen(name) + 1);
    for (size_t i = 0; i < n; i++) {
        sbuf_add(b, l[i]->name, strlen(l[i]->name) + 1);
        sbuf_add(b, l[i]->value, l[i]->value_len + 1);
    }
}

/* The labels as a JSON object text, with service="NAME" when a service is
 * scraped by name (a label of that name the endpoint sent becomes
 * exported_service, as Prometheus renames a clashing target label); NULL when
 * there are none. */
static char *labels_json(const struct prom_label *const *l, size_t n, const char *service)
{
    if (n == 0 && !service)
        return NULL;
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        if (!service || strcmp(l[i]->name, "service")) {
            json_object_set_new(o, l[i]->name, json_stringn(l[i]->value, l[i]->value_len));
            continue;
        }
        /* exported_service, or exported_exported_service if that is taken too, ... */
        char *name = xstrdup("exported_service");
        for (bool taken = true; taken;) {
            taken = false;
            for (size_t j = 0; j < n && !taken; j++)
                taken = !strcmp(l[j]->name, name);
            if (taken) {
                char *longer = xasprintf("exported_%s", name);
                free(name);
                name = longer;
            }
        }
        json_object_set_new(o, name, json_stringn(l[i]->value, l[i]->value_len));
        free(name);
    }
    if (service)
        json_object_set_new(o, "service", json_string(service));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

/* The id of a histogram (family + labels without le), created when new. */
static uint32_t group_id(struct pm_shared *sh, const struct prom_sample *s)
{
    const struct prom_label *l[PROMTEXT_MAX_LABELS];
    size_t n = sorted_labels(s, "le", l);
    make_key(&sh->key, s->family, l, n);
    uint64_t h = hash_fnv1a(sh->key.s, sh->key.len);
    struct keytab_slot *slot = keytab_find(&sh->groups, sh->key.s, sh->key.len, h);
    if (!slot->key)
        keytab_put(&sh->groups, slot, sh->key.s, sh->key.len, h, (uint32_t)sh->groups.n);
    return slot->id;
}

/* Writes the description of a new series (published with the scrape's result). */
static uint32_t new_series(struct pm_shared *sh, const struct prom_sample *s, enum pm_kind k)
{
    uint32_t id = (uint32_t)sh->created;
    if (id % PM_CHUNK == 0 && !sh->chunks[id / PM_CHUNK])
        sh->chunks[id / PM_CHUNK] = xcalloc(PM_CHUNK, sizeof(struct pm_meta));
    struct pm_meta *m = meta_at(sh, id);
    const struct prom_label *l[PROMTEXT_MAX_LABELS];
    bool hist = k == PK_BUCKET || k == PK_HSUM || k == PK_HCOUNT;
    size_t n = sorted_labels(s, hist ? "le" : NULL, l);
    *m = (struct pm_meta){.name = xstrdup(s->name),
                          .labels = labels_json(l, n, sh->service),
                          .family = xstrdup(s->family),
                          .kind = k};
    if (k == PK_BUCKET) {
        const char *le = label_value(s, "le");
        promtext_value(le, strlen(le), &m->le); /* the parser checked it */
        m->le_text = xstrdup(le);
    }
    if (hist)
        m->group = group_id(sh, s);
    sh->created++;
    return id;
}

struct scrape {
    struct pm_shared *sh;
    struct pm_result *res;
};

static void result_add(struct pm_result *r, uint32_t id, double v)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 256;
        r->ids = xrealloc(r->ids, r->cap * sizeof(*r->ids));
        r->vals = xrealloc(r->vals, r->cap * sizeof(*r->vals));
    }
    r->ids[r->n] = id;
    r->vals[r->n++] = v;
}

/* The parser's callback: keeps the samples selected, one per series and scrape. */
static int on_sample(const struct prom_sample *s, void *ud)
{
    struct scrape *x = ud;
    struct pm_shared *sh = x->sh;
    enum pm_kind k;
    if (!sample_kind(s, &k) || !family_kept(sh, s->family, s->type) || !labels_kept(sh, s))
        return 0;
    const struct prom_label *l[PROMTEXT_MAX_LABELS];
    size_t n = sorted_labels(s, NULL, l);
    make_key(&sh->key, s->name, l, n);
    uint64_t h = hash_fnv1a(sh->key.s, sh->key.len);
    struct keytab_slot *slot = keytab_find(&sh->series, sh->key.s, sh->key.len, h);
    if (slot->key && slot->mark == sh->scrape_no) {
        x->res->dups++; /* the same series twice in one page: the first counts */
        return 0;
    }
    bool room = sh->key_bytes + sh->key.len <= sh->max_bytes; /* memory bound */
    if (!slot->key && room && sh->created < sh->max_series) {
        size_t klen = sh->key.len; /* new_series reuses sh->key for the group's key */
        keytab_put(&sh->series, slot, sh->key.s, klen, h, 0);
        slot->id = new_series(sh, s, k); /* may grow the group table, not this one */
        sh->key_bytes += klen;
    } else if (!slot->key && room && sh->series.n - sh->created < PM_DROPPED_KEYS) {
        keytab_put(&sh->series, slot, sh->key.s, sh->key.len, h, PM_DROPPED); /* remembered */
        sh->key_bytes += sh->key.len;
    } else if (!slot->key) {
        x->res->dropped++; /* too many dropped to remember them: each sample counts */
        return 0;
    }
    slot->mark = sh->scrape_no;
    if (slot->id == PM_DROPPED) {
        x->res->dropped++;
        return 0;
    }
    result_add(x->res, slot->id, s->value);
    return 0;
}

static void parse_body(struct pm_shared *sh, const struct fetch_result *f, struct pm_result *r)
{
    struct scrape x = {.sh = sh, .res = r};
    struct prom_stats st;
    sh->fam_valid = false;
    promtext_parse(f->body, f->len, promtext_is_openmetrics(f->content_type), on_sample, &x, &st);
    r->bad_lines = st.bad_lines;
    if (st.error[0])
        r->parse_error = xstrdup(st.error);
    if (st.samples == 0 && st.bad_lines > 0)
        r->error = xasprintf("%s: malformed response (%s): %s", sh->url,
                             f->content_type[0] ? f->content_type : "no content type", st.error);
}

static bool scrape_cancelled(void *arg)
{
    struct pm_shared *sh = arg;
    return atomic_load_explicit(&sh->cancel, memory_order_relaxed);
}

static struct pm_result *scrape_once(struct pm_shared *sh)
{
    struct pm_result *r = xcalloc(1, sizeof(*r));
    const char *hdrs[] = {PM_ACCEPT, NULL};
    struct fetch_result f;
    char err[512];
    int64_t t0 = mono_ns();
    sh->scrape_no++;
    const struct net_cancel cancel = {.fn = scrape_cancelled, .arg = sh};
    int e = http_fetch("GET", sh->url, hdrs, NULL, 0, sh->timeout, sh->max_bytes, &cancel, &f, err,
                       sizeof(err));
    if (e < 0)
        r->error = xstrdup(err);
    else if (f.status != 200)
        r->error = xasprintf("%s: HTTP status %d", sh->url, f.status);
    else
        parse_body(sh, &f, r);
    fetch_result_free(&f);
    r->mono = mono_ns();
    r->wall = wall_ns();
    r->dur_ns = r->mono - t0;
    return r;
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Queues a result and publishes the descriptions it refers to (under mu). */
static void queue_result(struct pm_shared *sh, struct pm_result *r)
{
    sh->nmeta = sh->created;
    if (sh->nq >= PM_QUEUE_MAX) { /* tick() has not run for a long while: keep the newest */
        struct pm_result *old = sh->head;
        sh->head = old->next;
        if (!sh->head)
            sh->tail = NULL;
        result_free(old);
        sh->nq--;
        sh->lost++;
    }
    if (sh->tail)
        sh->tail->next = r;
    else
        sh->head = r;
    sh->tail = r;
    sh->nq++;
}

static void wait_until(struct pm_shared *sh, int64_t due)
{
    while (!sh->stop) {
        int64_t now = mono_ns();
        if (now >= due)
            return;
        struct timespec ts = {.tv_sec = (time_t)(due / 1000000000), .tv_nsec = due % 1000000000};
        pthread_cond_timedwait(&sh->cv, &sh->mu, &ts);
    }
}

static void *scrape_main(void *arg)
{
    struct pm_shared *sh = arg;
    int64_t due = mono_ns();
    pthread_mutex_lock(&sh->mu);
    for (;;) {
        wait_until(sh, due);
        if (sh->stop)
            break;
        pthread_mutex_unlock(&sh->mu);
        struct pm_result *r = scrape_once(sh);
        int64_t cpu = thread_cpu_ns();
        pthread_mutex_lock(&sh->mu);
        sh->cpu_ns = cpu;
        if (sh->stop || atomic_load(&sh->cancel)) { /* cut short or too late: nobody takes it */
            sh->cut = true;
            result_free(r);
            break;
        }
        queue_result(sh, r);
        due += sh->interval;
        int64_t now = mono_ns();
        if (due < now) /* the scrape took longer than the interval: next one now, no burst */
            due = now;
    }
    sh->exited = true;
    pthread_cond_broadcast(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
    shared_unref(sh);
    return NULL;
}

/* ---- options --------------------------------------------------------------------------------- */

/* "^(re)$": regexes select whole names and values. */
static int compile_full(regex_t *re, const char *text, char *err, size_t errlen)
{
    int r = regcomp(re, text, REG_EXTENDED | REG_NOSUB); /* alone first: "a)|(b" is not one */
    if (r == 0) {
        regfree(re);
        char *p = xasprintf("^(%s)$", text);
        r = regcomp(re, p, REG_EXTENDED);
        free(p);
    }
    if (r != 0) { /* re is not compiled: nothing to free */
        regerror(r, re, err, errlen);
        return -EINVAL;
    }
    return 0;
}

static int64_t pm_interval(const struct comp_spec *spec)
{
    return spec->interval_ns > 0 ? spec->interval_ns : PM_DEFAULT_INTERVAL_NS;
}

static int int_opt(const struct sv *with, const char *key, int64_t def, int64_t *out)
{
    const struct sv *v = sv_get(with, key);
    *out = def;
    return v ? sv_as_int(v, out) : 0;
}

static int size_opt(const struct sv *with, const char *key, int64_t def, int64_t *out)
{
    const struct sv *v = sv_get(with, key);
    *out = def;
    return v ? sv_as_size(v, out) : 0;
}

/* Fills the options of sh from the component's (validated) with:, for the
 * endpoint url (of the service named service, or NULL). */
static int read_options(struct comp *c, struct pm_shared *sh, const char *url, const char *service)
{
    const struct sv *w = c->spec->with;
    char err[256];
    int64_t ms = 0, mb = 0;
    sh->url = url ? xstrdup(url) : NULL;
    sh->service = service ? xstrdup(service) : NULL;
    sh->interval = pm_interval(c->spec);
    sh->timeout = comp_opt_duration(c, "timeout", NULL);
    if (sh->timeout <= 0)
        sh->timeout = sh->interval < PM_MAX_DEFAULT_TIMEOUT ? sh->interval : PM_MAX_DEFAULT_TIMEOUT;
    if (int_opt(w, "max_series", PM_DEFAULT_MAX_SERIES, &ms) < 0 || ms < 1 ||
        ms > PM_MAX_MAX_SERIES || size_opt(w, "max_bytes", PM_DEFAULT_MAX_BYTES, &mb) < 0 ||
        mb < PM_MIN_MAX_BYTES || mb > PM_MAX_MAX_BYTES || !sh->url) {
        comp_set_reason(c, "bad options (url or scrape, max_series or max_bytes)");
        return -EINVAL;
    }
    sh->max_series = (size_t)ms;
    sh->max_bytes = (size_t)mb;
    const struct sv *m = sv_get(w, "match");
    sh->match = xcalloc(m ? m->n + 1 : 1, sizeof(*sh->match));
    for (size_t i = 0; m && m->kind == SV_SEQ && i < m->n; i++, sh->nmatch++)
        if (compile_full(&sh->match[i], m->kids[i]->str, err, sizeof(err)) < 0) {
            comp_set_reason(c, "match[%zu] '%s': %s", i, m->kids[i]->str, err);
            return -EINVAL;
        }
    const struct sv *l = sv_get(w, "labels");
    sh->filters = xcalloc(l ? l->n + 1 : 1, sizeof(*sh->filters));
    for (size_t i = 0; l && l->kind == SV_MAP && i < l->n; i++, sh->nfilters++) {
        if (compile_full(&sh->filters[i].re, l->kids[i]->str, err, sizeof(err)) < 0) {
            comp_set_reason(c, "labels.%s '%s': %s", l->kids[i]->key, l->kids[i]->str, err);
            return -EINVAL;
        }
        sh->filters[i].label = xstrdup(l->kids[i]->key);
    }
    return 0;
}

/* ---- recording (tick side) ------------------------------------------------------------------- */

static struct pm_group *group_get(struct pm_target *p, uint32_t g)
{
    while (p->ng <= g) {
        if (p->ng == p->capg) {
            p->capg = p->capg ? 2 * p->capg : 16;
            p->g = xrealloc(p->g, p->capg * sizeof(*p->g));
        }
        p->g[p->ng++] = (struct pm_group){.sum_id = -1, .count_id = -1, .inf_id = -1};
    }
    return &p->g[g];
}

/* Takes in the descriptions published up to n: their state, their histograms. */
static void sync_series(struct pm_target *p, size_t n)
{
    if (n > p->capst) {
        p->capst = n > 2 * p->capst ? n : 2 * p->capst;
        p->st = xrealloc(p->st, p->capst * sizeof(*p->st));
    }
    for (; p->nst < n; p->nst++) {
        p->st[p->nst] = (struct pm_state){0};
        const struct pm_meta *m = meta_at(p->sh, p->nst);
        if (m->kind == PK_GAUGE || m->kind == PK_COUNTER)
            continue;
        struct pm_group *g = group_get(p, m->group);
        g->any = m;
        if (m->kind == PK_HSUM)
            g->sum_id = (long)p->nst;
        else if (m->kind == PK_HCOUNT)
            g->count_id = (long)p->nst;
        else {
            if (g->nb == g->cap) {
                g->cap = g->cap ? 2 * g->cap : 16;
                g->buckets = xrealloc(g->buckets, g->cap * sizeof(*g->buckets));
            }
            g->buckets[g->nb++] = (uint32_t)p->nst;
            if (isinf(m->le) && m->le > 0)
                g->inf_id = (long)p->nst;
        }
    }
}

/* How a value below the previous one is read. */
enum pm_step {
    STEP_COUNTER, /* a reset (the process restarted): the counter climbed from 0 to the value */
    STEP_DELTA,   /* a decrease (a histogram's _sum with negative observations) */
    STEP_RESET,   /* its histogram was reset in this scrape: the value is all new */
};

/* A counter's increase since the previous scrape, as Prometheus's increase()
 * counts it (STEP_COUNTER), accumulated into s->inc over s->dt; false for the
 * first scrape of a series (nothing to compare). */
static bool advance(struct pm_state *s, double v, int64_t mono, enum pm_step step, double *inc,
                    double *dt)
{
    if (!isfinite(v))
        return false;
    bool have = s->has_prev && mono > s->prev_mono;
    if (have) {
        *inc = step == STEP_RESET ? v : step == STEP_COUNTER && v < s->prev ? v : v - s->prev;
        *dt = (double)(mono - s->prev_mono) / 1e9;
        s->inc += *inc;
        s->dt += *dt;
    }
    s->prev = v;
    s->prev_mono = mono;
    s->has_prev = true;
    return have;
}

/* A counter's rate since the previous scrape. */
static void record_rate(struct comp *c, const struct pm_meta *m, struct pm_state *s, double v,
                        const struct pm_result *r, enum pm_step step)
{
    double inc, dt;
    if (advance(s, v, r->mono, step, &inc, &dt))
        comp_series_point(c, m->name, "/s", m->labels, r->wall, inc / dt);
}

/* A histogram is reset as a whole, when its count (else its +Inf bucket)
 * goes down: then every part's value is new, whatever each part did (a low
 * bucket may be back above its old value; the _sum may go down without a
 * reset when observations are negative). Marks the histograms of r reset. */
static void find_resets(struct pm_target *p, const struct pm_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct pm_meta *m = meta_at(p->sh, r->ids[i]);
        if (m->kind != PK_HCOUNT && m->kind != PK_BUCKET)
            continue;
        struct pm_group *g = &p->g[m->group];
        long ref = g->count_id >= 0 ? g->count_id : g->inf_id;
        const struct pm_state *st = &p->st[r->ids[i]];
        if (ref == (long)r->ids[i] && st->has_prev && isfinite(r->vals[i]) && r->vals[i] < st->prev)
            g->reset_at = p->scrapes;
    }
}

/* How a histogram part's decrease is read: by its histogram's reset, or as a
 * counter's when the histogram has neither a count nor a +Inf bucket. */
static enum pm_step part_step(const struct pm_target *p, const struct pm_meta *m)
{
    const struct pm_group *g = &p->g[m->group];
    if (g->count_id < 0 && g->inf_id < 0)
        return STEP_COUNTER;
    return g->reset_at == p->scrapes ? STEP_RESET : STEP_DELTA;
}

static void record_value(struct comp *c, struct pm_target *p, uint32_t id, double v,
                         const struct pm_result *r)
{
    const struct pm_meta *m = meta_at(p->sh, id);
    struct pm_state *s = &p->st[id];
    switch (m->kind) {
    case PK_GAUGE:
        if (!isfinite(v))
            return;
        comp_series_point(c, m->name, NULL, m->labels, r->wall, v);
        s->sum += v;
        s->max = s->n == 0 || v > s->max ? v : s->max;
        s->n++;
        return;
    case PK_COUNTER:
        record_rate(c, m, s, v, r, STEP_COUNTER);
        return;
    case PK_HCOUNT:
        record_rate(c, m, s, v, r, part_step(p, m));
        return;
    case PK_BUCKET:
    case PK_HSUM: {
        double inc, dt;
        advance(s, v, r->mono, part_step(p, m), &inc, &dt);
        return;
    }
    }
}

static void keep_first(char **slot, const char *msg)
{
    if (!*slot && msg)
        *slot = xstrdup(msg);
}

static void record_result(struct comp *c, struct pm_target *p, const struct pm_result *r)
{
    p->scrapes++;
    p->dur_sum_ms += (double)r->dur_ns / 1e6;
    p->bad_lines += r->bad_lines;
    keep_first(&p->first_parse_error, r->parse_error);
    if (r->error) {
        p->errors++;
        keep_first(&p->first_error, r->error);
        return;
    }
    p->dups += r->dups;
    if (r->dropped > p->dropped_max)
        p->dropped_max = r->dropped;
    if (r->dropped && !p->warned_dropped) {
        p->warned_dropped = true;
        comp_warn(c,
                  "scrape of %s: new series beyond max_series (%zu) (or their names and labels "
                  "beyond max_bytes) are dropped: dropped_series counts them; narrow 'match' "
                  "or raise 'max_series'",
                  p->sh->url, p->sh->max_series);
    }
    find_resets(p, r);
    for (size_t i = 0; i < r->n; i++)
        record_value(c, p, r->ids[i], r->vals[i], r);
}

/* Records the scrapes the thread finished since the last call. */
static void take_results(struct comp *c, struct pm_target *p)
{
    struct pm_shared *sh = p->sh;
    pthread_mutex_lock(&sh->mu);
    struct pm_result *r = sh->head;
    size_t n = sh->nmeta;
    sh->head = sh->tail = NULL;
    sh->nq = 0;
    pthread_mutex_unlock(&sh->mu);
    sync_series(p, n);
    while (r) {
        struct pm_result *next = r->next;
        record_result(c, p, r);
        result_free(r);
        r = next;
    }
}

/* ---- the end of a trial ---------------------------------------------------------------------- */

struct bucket {
    double le, count;
    const char *le_text;
};

static int by_le(const void *a, const void *b)
{
    double x = ((const struct bucket *)a)->le, y = ((const struct bucket *)b)->le;
    return x < y ? -1 : x > y;
}

/* The q-quantile of cumulative buckets sorted by le, the last being +Inf, as
 * Prometheus's histogram_quantile computes it: linear inside the bucket that
 * holds the rank; in the +Inf bucket, the largest finite bound. NaN when empty. */
static double bucket_quantile(const struct bucket *b, size_t n, double q)
{
    if (n < 2 || !isinf(b[n - 1].le) || !(b[n - 1].count > 0))
        return NAN;
    double rank = q * b[n - 1].count;
    size_t i = 0;
    while (i < n - 1 && b[i].count < rank)
        i++;
    if (i == n - 1)
        return b[n - 2].le;
    if (i == 0 && b[0].le <= 0)
        return b[0].le;
    double start = i == 0 ? 0 : b[i - 1].le, below = i == 0 ? 0 : b[i - 1].count;
    double in = b[i].count - below;
    return in > 0 ? start + (b[i].le - start) * (rank - below) / in : b[i].le;
}

/* The histogram's labels with le (as the endpoint wrote it). */
static char *with_le(const char *labels, const char *le)
{
    json_t *o = labels ? json_loads(labels, 0, NULL) : NULL;
    if (!o)
        o = json_object();
    json_object_set_new(o, "le", json_string(le));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

static void metric_f(struct comp *c, const char *family, const char *suffix, const char *unit,
                     const char *labels, double v)
{
    if (!isfinite(v))
        return;
    char *name = xasprintf("%s%s", family, suffix);
    comp_metric(c, name, unit, labels, v);
    free(name);
}

/* The trial's distribution of one histogram: the increases of its parts. A
 * summary (no buckets: its quantiles are gauges) gets its count and mean, or
 * without a _count its sum's increase. */
static void summarize_histogram(struct comp *c, struct pm_target *p, const struct pm_group *g)
{
    static const struct {
        double q;
        const char *sfx;
    } qs[PM_QUANTILES] = {{0.5, "_p50"}, {0.9, "_p90"}, {0.99, "_p99"}};
    const struct pm_state *cnt = g->count_id >= 0 ? &p->st[g->count_id] : NULL;
    if (!g->any)
        return;
    if (g->nb == 0 && !cnt) { /* a summary of only its _sum: the sum's increase */
        if (g->sum_id >= 0)
            metric_f(c, g->any->family, "_sum", NULL, g->any->labels, p->st[g->sum_id].inc);
        return;
    }
    struct bucket *b = g->nb ? xcalloc(g->nb, sizeof(*b)) : NULL;
    for (size_t i = 0; i < g->nb; i++) {
        b[i].le = meta_at(p->sh, g->buckets[i])->le;
        b[i].le_text = meta_at(p->sh, g->buckets[i])->le_text;
        b[i].count = p->st[g->buckets[i]].inc > 0 ? p->st[g->buckets[i]].inc : 0;
    }
    const char *fam = g->any->family, *labels = g->any->labels;
    if (g->nb) {
        qsort(b, g->nb, sizeof(*b), by_le);
        for (size_t i = 1; i < g->nb; i++) /* deltas of cumulative counts stay monotonic */
            if (b[i].count < b[i - 1].count)
                b[i].count = b[i - 1].count;
        for (size_t k = 0; k < PM_QUANTILES; k++)
            metric_f(c, fam, qs[k].sfx, NULL, labels, bucket_quantile(b, g->nb, qs[k].q));
    }
    double n = cnt ? cnt->inc : b[g->nb - 1].count;
    metric_f(c, fam, "_count", NULL, labels, n);
    if (g->sum_id >= 0 && n > 0)
        metric_f(c, fam, "_mean", NULL, labels, p->st[g->sum_id].inc / n);
    for (size_t i = 0; i < g->nb; i++) {
        char *l = with_le(labels, b[i].le_text);
        metric_f(c, fam, "_bucket", NULL, l, b[i].count);
        free(l);
    }
    free(b);
}

static void summarize(struct comp *c, struct pm_target *p)
{
    for (size_t i = 0; i < p->nst; i++) {
        const struct pm_meta *m = meta_at(p->sh, i);
        const struct pm_state *s = &p->st[i];
        if (m->kind == PK_GAUGE && s->n > 0) {
            metric_f(c, m->name, "_mean", NULL, m->labels, s->sum / (double)s->n);
            metric_f(c, m->name, "_max", NULL, m->labels, s->max);
        } else if ((m->kind == PK_COUNTER || m->kind == PK_HCOUNT) && s->dt > 0) {
            metric_f(c, m->name, "_rate_mean", "/s", m->labels, s->inc / s->dt);
        }
    }
    for (size_t i = 0; i < p->ng; i++)
        summarize_histogram(c, p, &p->g[i]);
}

/* msg without the "URL: " that fetch errors start with (the warning names it once). */
static const char *after_url(const char *msg, const char *url)
{
    size_t n = strlen(url);
    return strncmp(msg, url, n) == 0 && strncmp(msg + n, ": ", 2) == 0 ? msg + n + 2 : msg;
}

static void report(struct comp *c, struct pm_target *p)
{
    const char *url = p->sh->url;
    comp_metric(c, "scrapes", NULL, p->mlabels, (double)p->scrapes);
    comp_metric(c, "scrape_errors", NULL, p->mlabels, (double)p->errors);
    if (p->scrapes)
        comp_metric(c, "scrape_duration_mean", "ms", p->mlabels,
                    p->dur_sum_ms / (double)p->scrapes);
    comp_metric(c, "bad_lines", NULL, p->mlabels, (double)p->bad_lines);
    comp_metric(c, "dropped_series", NULL, p->mlabels, (double)p->dropped_max);
    comp_metric(c, "duplicate_samples", NULL, p->mlabels, (double)p->dups);
    if (p->scrapes == 0)
        comp_warn(c, "scrape of %s: none finished during the trial%s", url,
                  p->abandoned ? " (the one in flight at its end was abandoned)" : "");
    if (p->errors)
        comp_warn(c, "scrape of %s: %llu of %llu failed: %s", url, (unsigned long long)p->errors,
                  (unsigned long long)p->scrapes,
                  p->first_error ? after_url(p->first_error, url) : "?");
    if (p->lost)
        comp_warn(c,
                  "scrape of %s: %zu finished scrapes were not recorded: the session loop did "
                  "not take them in time (%d at most wait)",
                  url, p->lost, PM_QUEUE_MAX);
    if (p->bad_lines || p->dups)
        comp_warn(c,
                  "scrape of %s: %zu malformed lines skipped%s%s%s, %zu duplicate samples ignored",
                  url, p->bad_lines, p->first_parse_error ? " (first: " : "",
                  p->first_parse_error ? p->first_parse_error : "", p->first_parse_error ? ")" : "",
                  p->dups);
}

/* Asks the thread to stop: a scrape in flight is cancelled (its fetch returns
 * within NET_CANCEL_POLL_MS). */
static void ask_stop(struct pm_target *p)
{
    struct pm_shared *sh = p->sh;
    if (!p->thread_running)
        return;
    atomic_store(&sh->cancel, true);
    pthread_mutex_lock(&sh->mu);
    sh->stop = true;
    pthread_cond_broadcast(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
}

/* Stops the thread and joins it. Every wait of a scrape ends within
 * NET_CANCEL_POLL_MS of the cancel; only a thread still not out at due (mono
 * ns; say, parsing a large page on a loaded machine) is detached, and it frees
 * the shared state when it ends. */
static void stop_thread(struct pm_target *p, int64_t due)
{
    struct pm_shared *sh = p->sh;
    if (!p->thread_running)
        return;
    ask_stop(p);
    pthread_mutex_lock(&sh->mu);
    struct timespec ts = {.tv_sec = (time_t)(due / 1000000000), .tv_nsec = due % 1000000000};
    while (!sh->exited && pthread_cond_timedwait(&sh->cv, &sh->mu, &ts) != ETIMEDOUT)
        ;
    bool exited = sh->exited, cut = sh->cut;
    pthread_mutex_unlock(&sh->mu);
    if (exited)
        pthread_join(p->th, NULL);
    else
        pthread_detach(p->th);
    p->abandoned = !exited || cut;
    p->thread_running = false;
}

/* ---- the driver ------------------------------------------------------------------------------ */

static struct pm_shared *shared_new(void)
{
    struct pm_shared *sh = xcalloc(1, sizeof(*sh));
    atomic_init(&sh->refs, 1);
    pthread_mutex_init(&sh->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sh->cv, &ca);
    pthread_condattr_destroy(&ca);
    sh->key.max = PROMTEXT_MAX_LINE + 2 * PROMTEXT_MAX_LABELS + 16;
    return sh;
}

static int start_target(struct comp *c, struct pm_target *p, const char *url, const char *service)
{
    p->sh = shared_new();
    if (service) {
        json_t *o = json_pack("{s:s}", "service", service);
        p->mlabels = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    }
    int r = read_options(c, p->sh, url, service);
    if (r < 0)
        return r;
    p->sh->chunks = xcalloc(p->sh->max_series / PM_CHUNK + 1, sizeof(*p->sh->chunks));
    atomic_fetch_add(&p->sh->refs, 1); /* the thread's */
    sigset_t all, old;
    sigfillset(&all); /* signals go to the session's thread, not this one */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&p->th, NULL, scrape_main, p->sh);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        atomic_fetch_sub(&p->sh->refs, 1);
        comp_set_reason(c, "cannot start the scrape thread: %s", strerror(e));
        return -e;
    }
    p->thread_running = true;
    return 0;
}

/* The metrics URL of the session's service `name`: its `metrics` URL, or
 * http://HOST:PORT and its `metrics` path (default /metrics). NULL with the
 * reason set when there is no such service, or it has no address. */
static char *service_url(struct comp *c, const char *name, size_t idx)
{
    const struct comp *o = session_service(c->session, name);
    if (!o) {
        comp_set_reason(c, "with.scrape[%zu]: '%s' is not a service of this benchmark", idx, name);
        return NULL;
    }
    char *why = NULL, *url = comp_metrics_url(o, "/metrics", &why);
    if (!url)
        comp_set_reason(c, "with.scrape[%zu]: service '%s' %s", idx, name, why);
    free(why);
    return url;
}

static int pm_start(struct comp *c)
{
    struct pm_priv *m = xcalloc(1, sizeof(*m));
    c->priv = m;
    const struct sv *list = sv_get(c->spec->with, "scrape");
    if (!list) {
        m->t = xcalloc(1, sizeof(*m->t));
        m->n = 1;
        return start_target(c, &m->t[0], sv_str(c->spec->with, "url", NULL), NULL);
    }
    m->t = xcalloc(list->n ? list->n : 1, sizeof(*m->t));
    for (size_t i = 0; i < list->n; i++) {
        const char *name = list->kids[i]->str;
        char *url = service_url(c, name, i);
        if (!url)
            return -ENOENT;
        m->n++;
        int r = start_target(c, &m->t[i], url, name);
        free(url);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The scrape thread's CPU time since the last call, to the monitor's account. */
static void add_thread_cpu(struct comp *c, struct pm_target *p)
{
    pthread_mutex_lock(&p->sh->mu);
    int64_t cpu = p->sh->cpu_ns;
    pthread_mutex_unlock(&p->sh->mu);
    comp_add_cpu(c, cpu - p->cpu_added);
    p->cpu_added = cpu;
}

static int pm_tick(struct comp *c, int64_t now)
{
    (void)now;
    struct pm_priv *m = c->priv;
    for (size_t i = 0; m && i < m->n; i++) {
        if (!m->t[i].sh)
            continue;
        take_results(c, &m->t[i]);
        add_thread_cpu(c, &m->t[i]); /* live: sonde_monitor_cpu_seconds_total includes it */
    }
    return 0;
}

static int pm_finish(struct comp *c)
{
    struct pm_priv *m = c->priv;
    if (!m)
        return 0;
    for (size_t i = 0; i < m->n; i++) /* every thread asked first: their stops overlap */
        if (m->t[i].sh)
            ask_stop(&m->t[i]);
    int64_t due = mono_ns() + PM_STOP_GRACE_NS; /* one grace for them all */
    for (size_t i = 0; i < m->n; i++) {
        struct pm_target *p = &m->t[i];
        if (!p->sh)
            continue;
        stop_thread(p, due);
        take_results(c, p);
        pthread_mutex_lock(&p->sh->mu);
        p->lost = p->sh->lost;
        pthread_mutex_unlock(&p->sh->mu);
        add_thread_cpu(c, p);
    }
    comp_batch_begin(c); /* the summary metrics in one transaction */
    for (size_t i = 0; i < m->n; i++)
        if (m->t[i].sh) {
            summarize(c, &m->t[i]);
            report(c, &m->t[i]);
        }
    comp_batch_end(c);
    return 0;
}

static void pm_cleanup(struct comp *c)
{
    struct pm_priv *m = c->priv;
    for (size_t k = 0; m && k < m->n; k++)
        if (m->t[k].sh)
            ask_stop(&m->t[k]);
    int64_t due = mono_ns() + PM_STOP_GRACE_NS;
    for (size_t k = 0; m && k < m->n; k++) {
        struct pm_target *p = &m->t[k];
        if (!p->sh)
            continue;
        stop_thread(p, due);
        shared_unref(p->sh);
        for (size_t i = 0; i < p->ng; i++)
            free(p->g[i].buckets);
        free(p->g);
        free(p->st);
        free(p->first_error);
        free(p->first_parse_error);
        free(p->mlabels);
    }
    if (m)
        free(m->t);
    free(m);
    c->priv = NULL;
}

/* ---- validation ------------------------------------------------------------------------------ */

static void chk_fail(const struct comp_spec *spec, struct diags *d, const struct sv *at,
                     const char *key, const char *fmt, ...) SONDE_PRINTF(5, 6);
static void chk_fail(const struct comp_spec *spec, struct diags *d, const struct sv *at,
                     const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    char *path = xasprintf("monitors.%s.with.%s", spec->name, key);
    const struct sv *where = at ? at : spec->with ? spec->with : spec->node;
    diags_add(d, where ? where->pos : (struct sv_pos){0}, path, NULL, "%s", msg);
    free(path);
    free(msg);
}

/* A scalar option known now (not a ${...} reference). */
static const char *known(const struct sv *v)
{
    return v && v->kind == SV_SCALAR && !recipe_has_ref(v->str) ? v->str : NULL;
}

static void check_regex(const struct comp_spec *spec, struct diags *d, const struct sv *v,
                        const char *key)
{
    regex_t re;
    char err[160];
    const char *text = known(v);
    if (text && compile_full(&re, text, err, sizeof(err)) < 0)
        chk_fail(spec, d, v, key, "'%s' is not a valid regular expression (POSIX extended): %s",
                 text, err);
    else if (text)
        regfree(&re);
}

static void check_url(const struct comp_spec *spec, struct diags *d)
{
    const struct sv *v = sv_get(spec->with, "url"), *sc = sv_get(spec->with, "scrape");
    const char *url = known(v);
    struct net_url u;
    if (v && sc)
        chk_fail(spec, d, sc, "scrape", "give `url` or `scrape`, not both");
    else if (!v && !sc && !spec->partial)
        chk_fail(spec, d, NULL, "url",
                 "missing: give `url` (an endpoint) or `scrape` (services by name)");
    for (size_t i = 0; sc && sc->kind == SV_SEQ && i < sc->n; i++) {
        const char *name = known(sc->kids[i]);
        char *key = xasprintf("scrape[%zu]", i);
        if (name && !name[0])
            chk_fail(spec, d, sc->kids[i], key, "an empty service name");
        for (size_t j = 0; name && j < i; j++)
            if (known(sc->kids[j]) && !strcmp(known(sc->kids[j]), name))
                chk_fail(spec, d, sc->kids[i], key, "'%s' is named twice", name);
        free(key);
    }
    if (sc && sc->kind == SV_SEQ && sc->n == 0)
        chk_fail(spec, d, sc, "scrape", "an empty list: name at least one service");
    if (!url)
        return;
    if (net_url_parse(url, &u) < 0)
        chk_fail(spec, d, v, "url",
                 "expected an http://host[:port]/path URL (https is not supported), got '%s'", url);
    else
        net_url_free(&u);
}

static void check_selection(const struct comp_spec *spec, struct diags *d)
{
    const struct sv *m = sv_get(spec->with, "match"), *l = sv_get(spec->with, "labels");
    for (size_t i = 0; m && m->kind == SV_SEQ && i < m->n; i++) {
        char *key = xasprintf("match[%zu]", i);
        check_regex(spec, d, m->kids[i], key);
        free(key);
    }
    for (size_t i = 0; l && l->kind == SV_MAP && i < l->n; i++) {
        char *key = xasprintf("labels.%s", l->kids[i]->key);
        const char *k = l->kids[i]->key;
        bool name_ok = *k && !(*k >= '0' && *k <= '9');
        for (const char *s = k; *s; s++)
            name_ok = name_ok && (*s == '_' || (*s >= 'a' && *s <= 'z') ||
                                  (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9'));
        if (!name_ok)
            chk_fail(spec, d, l->kids[i], key, "'%s' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                     k);
        check_regex(spec, d, l->kids[i], key);
        free(key);
    }
}

static void check_limits(const struct comp_spec *spec, struct diags *d)
{
    const struct sv *v;
    int64_t x = 0;
    if ((v = sv_get(spec->with, "max_series")) && known(v) && sv_as_int(v, &x) == 0 &&
        (x < 1 || x > PM_MAX_MAX_SERIES))
        chk_fail(spec, d, v, "max_series", "must be between 1 and %d", PM_MAX_MAX_SERIES);
    if ((v = sv_get(spec->with, "max_bytes")) && known(v) && sv_as_size(v, &x) == 0 &&
        (x < PM_MIN_MAX_BYTES || x > PM_MAX_MAX_BYTES))
        chk_fail(spec, d, v, "max_bytes", "must be between 1KiB and 1GiB");
    if ((v = sv_get(spec->with, "timeout")) && known(v) && sv_as_duration(v, &x) == 0 && x <= 0)
        chk_fail(spec, d, v, "timeout", "must be above 0");
}

static int pm_check(const struct comp_spec *spec, struct diags *d)
{
    if (!d)
        return 0;
    size_t before = d->n + d->dropped;
    check_url(spec, d);
    check_selection(spec, d);
    check_limits(spec, d);
    return d->n + d->dropped > before ? -EINVAL : 0;
}

static const struct opt_def prometheus_opts[] = {
    {"url", OPT_STR, false, NULL,
     "the endpoint to scrape, http://host:port/metrics (OpenMetrics or text 0.0.4); or give "
     "`scrape`",
     NULL, NULL},
    {"scrape", OPT_STR_LIST, false, NULL,
     "services of the benchmark to scrape at http://HOST:PORT and their `metrics` path "
     "(default /metrics), each on its own thread, every series labelled service=NAME",
     NULL, NULL},
    {"match", OPT_STR_LIST, false, "everything",
     "regexes (POSIX extended) of the families to record, matching the whole family name (a "
     "counter's also with _total)",
     NULL, NULL},
    {"labels", OPT_STR_MAP, false, NULL,
     "label: regex; a sample is kept when each named label matches in full (missing: \"\")", NULL,
     NULL},
    {"timeout", OPT_DURATION, false, "the interval, at most 10s",
     "a scrape not answered within it fails", NULL, NULL},
    {"max_series", OPT_INT, false, "5000", "series beyond it are dropped (and counted)", NULL,
     NULL},
    {"max_bytes", OPT_SIZE, false, "16MiB", "a larger response fails its scrape", NULL, NULL},
    {.name = NULL},
};

const struct driver_ops driver_monitor_prometheus = {
    .name = "prometheus",
    .role = ROLE_MONITOR,
    .summary = "scrapes a Prometheus/OpenMetrics endpoint every interval: gauges as series, "
               "counters as rates, histograms as the trial's quantiles",
    .opts = prometheus_opts,
    .check = pm_check,
    .start = pm_start,
    .tick = pm_tick,
    .finish = pm_finish,
    .cleanup = pm_cleanup,
};
