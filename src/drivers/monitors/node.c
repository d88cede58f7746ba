/* node.c — the `node` monitor: CPU, memory, network and disk of this machine. */
#include "core/session.h"
#include "drivers/monitors/monitors.h"
#include "util/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const struct monitor_series node_series[NODE_NSERIES] = {
    [NODE_CPU] = {"cpu_percent", "%", true},
    [NODE_MEM] = {"mem_used_bytes", "B", true},
    [NODE_MEM_PCT] = {"mem_used_percent", "%", false},
    [NODE_NET_RX] = {"net_rx_bytes_per_s", "B/s", true},
    [NODE_NET_TX] = {"net_tx_bytes_per_s", "B/s", true},
    [NODE_DISK_RD] = {"disk_read_bytes_per_s", "B/s", true},
    [NODE_DISK_WR] = {"disk_write_bytes_per_s", "B/s", true},
};

struct node_stats {
    double sum, max;
    uint64_t n;
};

/* One machine's series on a batch backend: sonde's host and each job's nodes. */
struct node_host {
    char name[64];
    char *labels;   /* {"node":"NAME"} */
    int64_t last_t; /* wall ns of the last sample recorded */
    struct node_stats st[NODE_NSERIES];
};

struct node_priv {
    struct node_sample prev;
    int64_t next_due;
    struct node_stats st[NODE_NSERIES]; /* local backend: this machine, no labels */
    /* Batch backends: samples from the agents in the jobs (monitors.h), and
     * sonde's own, gathered each poll and recorded in time order. */
    bool remote;
    char self[64];
    struct agent_reader *reader;
    struct node_host *hosts;
    size_t nhosts;
    struct agent_sample *batch;
    size_t nbatch, capbatch;
};

#define NODE_MAX_HOSTS           65536
#define NODE_DEFAULT_INTERVAL_NS ((int64_t)1000000000)

static int64_t node_interval(const struct comp *c)
{
    return c->spec->interval_ns > 0 ? c->spec->interval_ns : NODE_DEFAULT_INTERVAL_NS;
}

int node_sample_read(struct node_sample *s)
{
    int r = procfs_read_cpu(&s->cpu);
    if (r == 0)
        r = procfs_read_mem(&s->mem);
    if (r == 0)
        r = procfs_read_net(&s->net);
    if (r == 0)
        r = procfs_read_disk(&s->disk);
    s->mono = mono_ns();
    return r;
}

/* Counter delta per second; a counter that went back (wrap, device gone) gives 0. */
static double rate(uint64_t now, uint64_t before, double secs)
{
    return now >= before && secs > 0 ? (double)(now - before) / secs : 0.0;
}

void node_sample_values(const struct node_sample *a, const struct node_sample *b,
                        double v[NODE_NSERIES])
{
    double secs = (double)(b->mono - a->mono) / 1e9;
    uint64_t dt = b->cpu.total > a->cpu.total ? b->cpu.total - a->cpu.total : 0;
    uint64_t di = b->cpu.idle > a->cpu.idle ? b->cpu.idle - a->cpu.idle : 0;
    v[NODE_CPU] = dt ? 100.0 * (double)(dt > di ? dt - di : 0) / (double)dt : 0.0;
    v[NODE_MEM] = (double)(b->mem.total_bytes - b->mem.available_bytes);
    v[NODE_MEM_PCT] = 100.0 * v[NODE_MEM] / (double)b->mem.total_bytes;
    v[NODE_NET_RX] = rate(b->net.rx_bytes, a->net.rx_bytes, secs);
    v[NODE_NET_TX] = rate(b->net.tx_bytes, a->net.tx_bytes, secs);
    v[NODE_DISK_RD] = rate(b->disk.read_bytes, a->disk.read_bytes, secs);
    v[NODE_DISK_WR] = rate(b->disk.write_bytes, a->disk.write_bytes, secs);
}

static int record(struct comp *c, struct node_stats *st, const char *labels, int64_t wall,
                  const double *v)
{
    int r = 0;
    for (int i = 0; i < NODE_NSERIES && r == 0; i++) {
        struct node_stats *s = &st[i];
        s->sum += v[i];
        s->max = s->n == 0 || v[i] > s->max ? v[i] : s->max;
        s->n++;
        r = comp_series_point(c, node_series[i].name, node_series[i].unit, labels, wall, v[i]);
    }
    return r;
}

static struct node_host *host_get(struct node_priv *p, const char *name)
{
    for (size_t i = 0; i < p->nhosts; i++)
        if (strcmp(p->hosts[i].name, name) == 0)
            return &p->hosts[i];
    if (p->nhosts >= NODE_MAX_HOSTS)
        return NULL;
    p->hosts = xrealloc(p->hosts, (p->nhosts + 1) * sizeof(*p->hosts));
    struct node_host *h = &p->hosts[p->nhosts++];
    *h = (struct node_host){0};
    snprintf(h->name, sizeof(h->name), "%s", name);
    json_t *o = json_pack("{s:s}", "node", name);
    h->labels = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!h->labels)
        h->labels = xstrdup("{}");
    return h;
}

static int gather(struct comp *job, const struct agent_sample *s, void *ud)
{
    (void)job;
    struct node_priv *p = ud;
    if (p->nbatch == p->capbatch) {
        p->capbatch = p->capbatch ? 2 * p->capbatch : 64;
        p->batch = xrealloc(p->batch, p->capbatch * sizeof(*p->batch));
    }
    p->batch[p->nbatch++] = *s;
    return 0;
}

static int by_time(const void *a, const void *b)
{
    int64_t x = ((const struct agent_sample *)a)->t, y = ((const struct agent_sample *)b)->t;
    return x < y ? -1 : x > y;
}

/* Records the gathered samples in time order. A node seen by more than one
 * agent (two jobs on it, or sonde's host) gets one series: a sample closer
 * than 0.9 interval to the last one recorded for its node is left out. */
static int record_batch(struct comp *c, struct node_priv *p)
{
    if (p->nbatch == 0) /* nothing gathered (p->batch may still be NULL) */
        return 0;
    qsort(p->batch, p->nbatch, sizeof(*p->batch), by_time);
    int64_t gap = node_interval(c) / 10 * 9;
    int r = 0;
    for (size_t i = 0; i < p->nbatch && r == 0; i++) {
        const struct agent_sample *s = &p->batch[i];
        struct node_host *h = host_get(p, s->node);
        if (!h || (h->last_t && s->t < h->last_t + gap))
            continue;
        h->last_t = s->t;
        r = record(c, h->st, h->labels, s->t, s->node_v);
    }
    p->nbatch = 0;
    return r;
}

static int node_record(struct comp *c, struct node_priv *p)
{
    struct node_sample cur;
    int r = node_sample_read(&cur);
    if (r < 0)
        return r;
    double v[NODE_NSERIES];
    node_sample_values(&p->prev, &cur, v);
    p->prev = cur;
    if (!p->remote)
        return record(c, p->st, NULL, wall_ns(), v);
    struct agent_sample self = {.t = wall_ns()};
    snprintf(self.node, sizeof(self.node), "%s", p->self);
    memcpy(self.node_v, v, sizeof(v));
    gather(NULL, &self, p);
    agent_poll_jobs(p->reader, c, gather, p);
    return record_batch(c, p);
}

static int node_start(struct comp *c)
{
    struct node_priv *p = xcalloc(1, sizeof(*p));
    int r = node_sample_read(&p->prev);
    if (r < 0) {
        free(p);
        return r;
    }
    p->next_due = p->prev.mono + node_interval(c);
    p->remote = c->backend && c->backend->batch;
    if (p->remote) {
        p->reader = agent_reader_new();
        monitor_node_name(p->self, sizeof(p->self)); /* as the agents name theirs */
    }
    c->priv = p;
    return 0;
}

static int node_tick(struct comp *c, int64_t now)
{
    struct node_priv *p = c->priv;
    if (!p || now < p->next_due)
        return 0;
    p->next_due += node_interval(c);
    if (p->next_due <= now) /* fell behind: do not burst */
        p->next_due = now + node_interval(c);
    int r = node_record(c, p);
    return r < 0 ? r : 0;
}

static void summarize(struct comp *c, const struct node_stats *st, const char *labels)
{
    for (int i = 0; i < NODE_NSERIES; i++) {
        const struct node_stats *s = &st[i];
        if (!node_series[i].summarize || s->n == 0)
            continue;
        char *mean = xasprintf("%s_mean", node_series[i].name);
        char *max = xasprintf("%s_max", node_series[i].name);
        comp_metric(c, mean, node_series[i].unit, labels, s->sum / (double)s->n);
        comp_metric(c, max, node_series[i].unit, labels, s->max);
        free(mean);
        free(max);
    }
}

/* A job that ran a while without one sample from its agent: most likely the
 * agent could not start on the node (sonde's program not on a shared file
 * system); said once per job, pointing at the agent's messages. */
static void warn_silent_agents(struct comp *c, const struct node_priv *p)
{
    struct comp **all;
    size_t n = session_comps(c->session, &all);
    int64_t now = wall_ns(), enough = 3 * node_interval(c) + (int64_t)5000000000;
    for (size_t i = 0; i < n; i++) {
        const struct comp *o = all[i];
        if (o == c || o->proc.job <= 0 || !o->proc.running || !o->dir || !o->spec)
            continue;
        int64_t ran = (o->proc.exited ? o->proc.end_wall : now) - o->proc.start_wall;
        char *dir = path_join(o->dir, MONITOR_AGENT_DIR);
        if (ran >= enough && !agent_reader_has(p->reader, dir))
            comp_warn(c,
                      "no sample from the monitor agent in job %lld (%s), which ran %.0f s: see "
                      "%s/agent.log (sonde's program must be on a file system the nodes see)",
                      (long long)o->proc.job, o->spec->name, (double)ran / 1e9, dir);
        free(dir);
    }
}

static int node_finish(struct comp *c)
{
    struct node_priv *p = c->priv;
    if (!p)
        return 0;
    if (p->remote) { /* what the agents wrote since the last poll */
        agent_poll_jobs(p->reader, c, gather, p);
        record_batch(c, p);
        for (size_t i = 0; i < p->nhosts; i++)
            summarize(c, p->hosts[i].st, p->hosts[i].labels);
        warn_silent_agents(c, p);
        if (agent_reader_bad(p->reader))
            comp_warn(c, "%llu malformed lines in the monitor agents' files were skipped",
                      (unsigned long long)agent_reader_bad(p->reader));
        return 0;
    }
    /* A trial shorter than one interval still gets one sample. */
    if (p->st[NODE_CPU].n == 0 && mono_ns() - p->prev.mono >= 10000000)
        node_record(c, p);
    summarize(c, p->st, NULL);
    return 0;
}

static void node_cleanup(struct comp *c)
{
    struct node_priv *p = c->priv;
    if (p) {
        for (size_t i = 0; i < p->nhosts; i++)
            free(p->hosts[i].labels);
        free(p->hosts);
        free(p->batch);
        agent_reader_free(p->reader);
        free(p);
    }
    c->priv = NULL;
}

static const struct opt_def node_opts[] = {{.name = NULL}};

const struct driver_ops driver_monitor_node = {
    .name = "node",
    .role = ROLE_MONITOR,
    .summary =
        "CPU, memory, network and disk of the machine (on a batch backend: of every job's nodes "
        "and sonde's host), from /proc",
    .opts = node_opts,
    .job_agent = true,
    .start = node_start,
    .tick = node_tick,
    .finish = node_finish,
    .cleanup = node_cleanup,
};
