/* live.c — latency buckets counted live for sonde's exporter. */
#include "loadgen/live.h"

#include <stdatomic.h>
#include <stddef.h>

const double lg_live_le[LG_LIVE_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60,
};

/* The bounds in ns: compared as integers, no float per operation. */
static const int64_t le_ns[LG_LIVE_BUCKETS] = {
    100000,     250000,     500000,     1000000,     2500000,     5000000,
    10000000,   25000000,   50000000,   100000000,   250000000,   500000000,
    1000000000, 2500000000, 5000000000, 10000000000, 30000000000, 60000000000,
};

void lg_live_record(struct lg_live_hist *h, int64_t ns)
{
    size_t i = 0;
    while (i < LG_LIVE_BUCKETS && ns > le_ns[i])
        i++;
    atomic_fetch_add_explicit(&h->n[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)(ns > 0 ? ns : 0), memory_order_relaxed);
}

void lg_live_read(struct lg_live_hist *h, uint64_t *buckets, double *sum_s)
{
    for (size_t k = 0; k <= LG_LIVE_BUCKETS; k++)
        buckets[k] += atomic_load_explicit(&h->n[k], memory_order_relaxed);
    *sum_s += (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9;
}
