/* live.h — latency counted live for sonde's exporter: fixed Prometheus buckets,
 * cheap to count from any thread as operations complete (one relaxed atomic
 * add per bucket and sum), read while the run goes on. The load engine and the
 * fileio tasks count their latencies into these. */
#ifndef SONDE_LIVE_H
#define SONDE_LIVE_H

#include <stdint.h>

/* The buckets' upper bounds in seconds (100 µs to 60 s). */
#define LG_LIVE_BUCKETS 18
extern const double lg_live_le[LG_LIVE_BUCKETS];

struct lg_live_hist {
    /* n[i]: latencies ≤ lg_live_le[i] and above the previous bound; the last
     * counts those above every bound. Not cumulative. */
    _Atomic uint64_t n[LG_LIVE_BUCKETS + 1];
    _Atomic uint64_t sum_ns;
};

/* Counts one latency of ns (negative counts as 0). */
void lg_live_record(struct lg_live_hist *h, int64_t ns);
/* Adds h's counts to buckets[LG_LIVE_BUCKETS + 1] and its sum (seconds) to *sum_s. */
void lg_live_read(struct lg_live_hist *h, uint64_t *buckets, double *sum_s);

#endif
