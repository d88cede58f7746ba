/* process.c — the `process` monitor: CPU and memory of each component's process
 * group, and of sonde itself (so the overhead of measuring is measured too).
 * On a batch backend a job's processes are measured on each of its nodes by
 * the monitor agent (monitors.h): the same series, labelled with the node. */
#include "core/session.h"
#include "drivers/monitors/monitors.h"
#include "util/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROCESS_DEFAULT_INTERVAL_NS ((int64_t)1000000000)
#define PROCESS_MAX_WATCHES         4096

/* One watched process group (or sonde itself, pgid 0). */
struct watch {
    char *name;
    char *node;   /* batch backends: the job's node the agent saw; NULL here */
    char *labels; /* {"component":"NAME"} (and "node") */
    pid_t pgid;
    bool have_prev;
    double prev_cpu;
    int64_t prev_mono;
    double cpu_sum, cpu_max, rss_max;
    uint64_t cpu_n, rss_n;
};

struct process_priv {
    char **names; /* `components:`, or NULL for every non-monitor component */
    struct watch *w;
    size_t n;
    struct watch self;
    int64_t next_due;
    bool started;                /* the baseline sample was taken */
    struct agent_reader *reader; /* batch backends */
};

static char *labels_for(const char *name, const char *node)
{
    json_t *o = node ? json_pack("{s:s,s:s}", "component", name, "node", node)
                     : json_pack("{s:s}", "component", name);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *copy = xstrdup(s ? s : "{}");
    free(s);
    return copy;
}

static void watch_init(struct watch *w, const char *name, const char *node)
{
    memset(w, 0, sizeof(*w));
    w->name = xstrdup(name);
    w->node = node ? xstrdup(node) : NULL;
    w->labels = labels_for(name, node);
}

/* The watch of component name (on node; NULL: a local process group). */
static struct watch *watch_find(struct process_priv *p, const char *name, const char *node)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->w[i].name, name) == 0 &&
            (node ? p->w[i].node && strcmp(p->w[i].node, node) == 0 : !p->w[i].node))
            return &p->w[i];
    if (p->n >= PROCESS_MAX_WATCHES)
        return NULL;
    p->w = xrealloc(p->w, (p->n + 1) * sizeof(*p->w));
    watch_init(&p->w[p->n], name, node);
    return &p->w[p->n++];
}

static bool wanted(const struct process_priv *p, const struct comp *o)
{
    if (!p->names)
        return o->spec->role != ROLE_MONITOR;
    for (size_t i = 0; p->names[i]; i++)
        if (strcmp(p->names[i], o->spec->name) == 0)
            return true;
    return false;
}

/* One sample's points (cpu < 0: no CPU value yet) and the summary. */
static int watch_point(struct comp *c, struct watch *w, double cpu, double rss, double nprocs,
                       int64_t wall)
{
    int r = 0;
    if (cpu >= 0) {
        w->cpu_sum += cpu;
        w->cpu_max = w->cpu_n == 0 || cpu > w->cpu_max ? cpu : w->cpu_max;
        w->cpu_n++;
        r = comp_series_point(c, "cpu_percent", "%", w->labels, wall, cpu);
    }
    if (r == 0) {
        w->rss_max = w->rss_n == 0 || rss > w->rss_max ? rss : w->rss_max;
        w->rss_n++;
        r = comp_series_point(c, "rss_bytes", "B", w->labels, wall, rss);
    }
    if (r == 0)
        r = comp_series_point(c, "nprocs", "", w->labels, wall, nprocs);
    return r;
}

/* Emits one group's points from its counters. */
static int watch_record(struct comp *c, struct watch *w, const struct procfs_usage *u, int64_t mono,
                        int64_t wall, bool emit)
{
    if (u->nprocs == 0) { /* gone: stops producing points */
        w->have_prev = false;
        return 0;
    }
    int r = 0;
    if (emit) {
        double cpu = -1;
        if (w->have_prev && mono > w->prev_mono) {
            double d = u->cpu_seconds - w->prev_cpu; /* < 0 when a member's time left the group */
            cpu = 100.0 * (d > 0 ? d : 0) / ((double)(mono - w->prev_mono) / 1e9);
        }
        r = watch_point(c, w, cpu, (double)u->rss_bytes, (double)u->nprocs, wall);
    }
    w->have_prev = true;
    w->prev_cpu = u->cpu_seconds;
    w->prev_mono = mono;
    return r;
}

/* A sample from the monitor agent in job's job (batch backends). */
static int agent_point(struct comp *job, const struct agent_sample *s, void *ud)
{
    struct comp *c = ud;
    struct process_priv *p = c->priv;
    if (!s->has_job || !job->spec || !wanted(p, job) || s->job_nprocs <= 0)
        return 0;
    struct watch *w = watch_find(p, job->spec->name, s->node);
    return w ? watch_point(c, w, s->job_cpu_percent, s->job_rss_bytes, s->job_nprocs, s->t) : 0;
}

/* A group that appears while the monitor runs (a client) was started during the
 * trial: all its CPU time counts, from its start. Groups already running when the
 * monitor started get their baseline from the first sample. */
static void watch_attach(const struct process_priv *p, struct watch *w, const struct proc *pr)
{
    w->pgid = pr->pid;
    w->have_prev = p->started && pr->start_mono > 0;
    w->prev_cpu = 0;
    w->prev_mono = pr->start_mono;
}

/* The watches of live groups this sample, as indices into p->w (which may grow). */
static size_t collect(struct comp *c, struct process_priv *p, pid_t *pgids, size_t *idx, size_t cap)
{
    struct comp **all;
    size_t n = session_comps(c->session, &all), k = 0;
    for (size_t i = 0; i < n && k < cap; i++) {
        struct comp *o = all[i];
        if (o == c || !o->spec || o->proc.pid <= 0 || !wanted(p, o))
            continue;
        struct watch *w = watch_find(p, o->spec->name, NULL);
        if (!w)
            continue;
        if (w->pgid != o->proc.pid) /* new or restarted */
            watch_attach(p, w, &o->proc);
        pgids[k] = w->pgid;
        idx[k++] = (size_t)(w - p->w);
    }
    return k;
}

static int process_sample(struct comp *c, struct process_priv *p, bool emit)
{
    struct comp **all;
    size_t cap = session_comps(c->session, &all);
    pid_t *pgids = xcalloc(cap + 1, sizeof(*pgids));
    size_t *idx = xcalloc(cap + 1, sizeof(*idx));
    struct procfs_usage *u = xcalloc(cap + 1, sizeof(*u));
    size_t k = collect(c, p, pgids, idx, cap);
    int r = procfs_read_pgroups(pgids, k, u);
    int64_t mono = mono_ns(), wall = wall_ns();
    for (size_t i = 0; i < k && r == 0; i++)
        r = watch_record(c, &p->w[idx[i]], &u[i], mono, wall, emit);
    struct procfs_usage me;
    if (r == 0 && procfs_read_pid(getpid(), &me) == 0)
        r = watch_record(c, &p->self, &me, mono, wall, emit);
    free(pgids);
    free(idx);
    free(u);
    return r;
}

static int64_t process_interval(const struct comp *c)
{
    return c->spec->interval_ns > 0 ? c->spec->interval_ns : PROCESS_DEFAULT_INTERVAL_NS;
}

static void process_free(struct process_priv *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->w[i].name);
        free(p->w[i].node);
        free(p->w[i].labels);
    }
    free(p->w);
    free(p->self.name);
    free(p->self.labels);
    strv_free(p->names);
    agent_reader_free(p->reader);
    free(p);
}

static int process_start(struct comp *c)
{
    struct process_priv *p = xcalloc(1, sizeof(*p));
    const struct sv *list = c->spec->with ? sv_get(c->spec->with, "components") : NULL;
    if (list && sv_as_strv(list, &p->names) < 0) {
        free(c->reason);
        c->reason = xstrdup("`components` must be a list of component names");
        process_free(p);
        return -EINVAL;
    }
    watch_init(&p->self, "sonde", NULL);
    if (c->backend && c->backend->batch)
        p->reader = agent_reader_new();
    int r = process_sample(c, p, false); /* baselines for CPU deltas */
    if (r < 0) {
        process_free(p);
        return r;
    }
    p->started = true;
    p->next_due = mono_ns() + process_interval(c);
    c->priv = p;
    return 0;
}

static int process_tick(struct comp *c, int64_t now)
{
    struct process_priv *p = c->priv;
    if (!p || now < p->next_due)
        return 0;
    p->next_due += process_interval(c);
    if (p->next_due <= now)
        p->next_due = now + process_interval(c);
    int r = process_sample(c, p, true);
    if (r == 0 && p->reader)
        r = agent_poll_jobs(p->reader, c, agent_point, c);
    return r < 0 ? r : 0;
}

static void summarize(struct comp *c, const struct watch *w)
{
    if (w->cpu_n > 0) {
        comp_metric(c, "cpu_percent_mean", "%", w->labels, w->cpu_sum / (double)w->cpu_n);
        comp_metric(c, "cpu_percent_max", "%", w->labels, w->cpu_max);
    }
    if (w->rss_n > 0)
        comp_metric(c, "rss_bytes_max", "B", w->labels, w->rss_max);
}

static int process_finish(struct comp *c)
{
    struct process_priv *p = c->priv;
    if (!p)
        return 0;
    if (p->reader) /* what the agents wrote since the last poll */
        agent_poll_jobs(p->reader, c, agent_point, c);
    for (size_t i = 0; i < p->n; i++)
        summarize(c, &p->w[i]);
    summarize(c, &p->self);
    for (size_t i = 0; p->names && p->names[i]; i++) {
        bool seen = false;
        for (size_t j = 0; j < p->n && !seen; j++)
            seen = strcmp(p->w[j].name, p->names[i]) == 0;
        if (!seen)
            comp_warn(c, "component '%s' never ran a process", p->names[i]);
    }
    return 0;
}

static void process_cleanup(struct comp *c)
{
    process_free(c->priv);
    c->priv = NULL;
}

static const struct opt_def process_opts[] = {
    {.name = "components",
     .type = OPT_STR_LIST,
     .help = "components to watch (default: every service and client with a process)"},
    {.name = NULL},
};

const struct driver_ops driver_monitor_process = {
    .name = "process",
    .role = ROLE_MONITOR,
    .summary = "CPU, memory and process count of each component's processes (on a batch "
               "backend: on each of its job's nodes), and of sonde",
    .opts = process_opts,
    .job_agent = true,
    .start = process_start,
    .tick = process_tick,
    .finish = process_finish,
    .cleanup = process_cleanup,
};
