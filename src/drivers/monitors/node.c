/* node.c — the `node` monitor: CPU, memory, network and disk of this machine. */
#include "core/session.h"
#include "drivers/monitors/procfs.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>

enum {
    S_CPU,
    S_MEM,
    S_MEM_PCT,
    S_NET_RX,
    S_NET_TX,
    S_DISK_RD,
    S_DISK_WR,
    S_COUNT,
};

static const struct {
    const char *name, *unit;
    bool summarize; /* gets _mean and _max metrics at the end */
} series[S_COUNT] = {
    [S_CPU] = {"cpu_percent", "%", true},
    [S_MEM] = {"mem_used_bytes", "B", true},
    [S_MEM_PCT] = {"mem_used_percent", "%", false},
    [S_NET_RX] = {"net_rx_bytes_per_s", "B/s", true},
    [S_NET_TX] = {"net_tx_bytes_per_s", "B/s", true},
    [S_DISK_RD] = {"disk_read_bytes_per_s", "B/s", true},
    [S_DISK_WR] = {"disk_write_bytes_per_s", "B/s", true},
};

struct node_sample {
    int64_t mono;
    struct procfs_cpu cpu;
    struct procfs_mem mem;
    struct procfs_net net;
    struct procfs_disk disk;
};

struct node_stats {
    double sum, max;
    uint64_t n;
};

struct node_priv {
    struct node_sample prev;
    int64_t next_due;
    struct node_stats st[S_COUNT];
};

#define NODE_DEFAULT_INTERVAL_NS ((int64_t)1000000000)

static int64_t node_interval(const struct comp *c)
{
    return c->spec->interval_ns > 0 ? c->spec->interval_ns : NODE_DEFAULT_INTERVAL_NS;
}

static int node_sample(struct node_sample *s)
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

static void node_values(const struct node_sample *a, const struct node_sample *b, double *v)
{
    double secs = (double)(b->mono - a->mono) / 1e9;
    uint64_t dt = b->cpu.total > a->cpu.total ? b->cpu.total - a->cpu.total : 0;
    uint64_t di = b->cpu.idle > a->cpu.idle ? b->cpu.idle - a->cpu.idle : 0;
    v[S_CPU] = dt ? 100.0 * (double)(dt > di ? dt - di : 0) / (double)dt : 0.0;
    v[S_MEM] = (double)(b->mem.total_bytes - b->mem.available_bytes);
    v[S_MEM_PCT] = 100.0 * v[S_MEM] / (double)b->mem.total_bytes;
    v[S_NET_RX] = rate(b->net.rx_bytes, a->net.rx_bytes, secs);
    v[S_NET_TX] = rate(b->net.tx_bytes, a->net.tx_bytes, secs);
    v[S_DISK_RD] = rate(b->disk.read_bytes, a->disk.read_bytes, secs);
    v[S_DISK_WR] = rate(b->disk.write_bytes, a->disk.write_bytes, secs);
}

static int node_record(struct comp *c, struct node_priv *p)
{
    struct node_sample cur;
    int r = node_sample(&cur);
    if (r < 0)
        return r;
    double v[S_COUNT];
    node_values(&p->prev, &cur, v);
    int64_t wall = wall_ns();
    for (int i = 0; i < S_COUNT; i++) {
        struct node_stats *s = &p->st[i];
        s->sum += v[i];
        s->max = s->n == 0 || v[i] > s->max ? v[i] : s->max;
        s->n++;
        r = comp_series_point(c, series[i].name, series[i].unit, NULL, wall, v[i]);
        if (r < 0)
            break;
    }
    p->prev = cur;
    return r;
}

static int node_start(struct comp *c)
{
    struct node_priv *p = xcalloc(1, sizeof(*p));
    int r = node_sample(&p->prev);
    if (r < 0) {
        free(p);
        return r;
    }
    p->next_due = p->prev.mono + node_interval(c);
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

static int node_finish(struct comp *c)
{
    struct node_priv *p = c->priv;
    if (!p)
        return 0;
    /* A trial shorter than one interval still gets one sample. */
    if (p->st[S_CPU].n == 0 && mono_ns() - p->prev.mono >= 10000000)
        node_record(c, p);
    for (int i = 0; i < S_COUNT; i++) {
        const struct node_stats *s = &p->st[i];
        if (!series[i].summarize || s->n == 0)
            continue;
        char *mean = xasprintf("%s_mean", series[i].name);
        char *max = xasprintf("%s_max", series[i].name);
        comp_metric(c, mean, series[i].unit, NULL, s->sum / (double)s->n);
        comp_metric(c, max, series[i].unit, NULL, s->max);
        free(mean);
        free(max);
    }
    return 0;
}

static void node_cleanup(struct comp *c)
{
    free(c->priv);
    c->priv = NULL;
}

static const struct opt_def node_opts[] = {{.name = NULL}};

const struct driver_ops driver_monitor_node = {
    .name = "node",
    .role = ROLE_MONITOR,
    .summary = "CPU, memory, network and disk of the machine, from /proc",
    .opts = node_opts,
    .start = node_start,
    .tick = node_tick,
    .finish = node_finish,
    .cleanup = node_cleanup,
};
