/* hdr.h — HDR-style log-linear histogram: fixed memory, O(1) record, exact merge.
 *
 * Values are non-negative int64 in a unit the caller chooses (sonde records
 * nanoseconds). The value range [0, highest] is split into power-of-two
 * "buckets", each divided into 2^k equal linear slots, where 2^(k-1) is the
 * smallest power of two >= 10^sigfigs. A slot of width w only holds values
 * >= 2^(k-1) * w (or lies below 2^k * 2^floor(log2(lowest)), where w <= lowest).
 *
 * Precision guarantee: a recorded value v <= highest is reported (percentiles,
 * iteration upper bound) as r with
 *     v <= r <= v + max(floor(v * 10^-sigfigs), lowest - 1)
 * i.e. never below the truth, and at most 10^-sigfigs above it (exact for
 * integers below 10^sigfigs when lowest is 1). Count, min, max and the sum
 * (so the mean) are exact. Values above highest are counted in the top slot and
 * in hdr_saturated(); percentiles that land on them are lower bounds.
 *
 * Memory is allocated once by hdr_init (see hdr_memory); recording never
 * allocates. A histogram is not thread-safe: use one per thread and merge.
 * Serialized format: docs/histograms.md. */
#ifndef SONDE_HDR_H
#define SONDE_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hdr;

/* Hard cap on one histogram's memory (hdr_init and hdr_decode refuse more). */
#define HDR_MAX_MEMORY ((size_t)64 << 20)

/* Creates an empty histogram. lowest >= 1, highest >= 2 * lowest, sigfigs 1..5;
 * -EINVAL otherwise (or when it would need more than HDR_MAX_MEMORY). */
int hdr_init(int64_t lowest, int64_t highest, int sigfigs, struct hdr **out);
void hdr_free(struct hdr *h);           /* NULL is fine */
void hdr_reset(struct hdr *h);          /* back to empty, same configuration */
size_t hdr_memory(const struct hdr *h); /* bytes held, struct included */

int64_t hdr_lowest(const struct hdr *h);
int64_t hdr_highest(const struct hdr *h);
int hdr_sigfigs(const struct hdr *h);

/* Records v (n times). O(1), no allocation. -EINVAL when v < 0, -EOVERFLOW
 * when the total count would pass UINT64_MAX; the histogram is unchanged then.
 * v > highest is recorded in the top slot and counted by hdr_saturated. */
int hdr_record(struct hdr *h, int64_t v);
int hdr_record_n(struct hdr *h, int64_t v, uint64_t n);

uint64_t hdr_count(const struct hdr *h);
uint64_t hdr_saturated(const struct hdr *h); /* values recorded above highest */
int64_t hdr_min(const struct hdr *h);        /* exact; 0 when empty */
int64_t hdr_max(const struct hdr *h);        /* exact; 0 when empty */
double hdr_mean(const struct hdr *h);        /* exact sum / count; 0 when empty */
/* Population standard deviation around the exact mean, with each value taken
 * at its slot's midpoint (so within the slot precision); 0 when empty. */
double hdr_stddev(const struct hdr *h);

/* Nearest-rank percentile, p in [0, 100] (clamped; NaN counts as 0): the
 * smallest reported value r such that at least p% of the values are <= r.
 * r is the slot's highest value clamped to the exact min..max; p = 0 gives the
 * exact min, p = 100 the exact max; 0 when empty. */
int64_t hdr_percentile(const struct hdr *h, double p);
/* Whether enough samples exist to print pX (METRICS.md): count >= 10/(1-p/100);
 * p <= 0 and p >= 100 need one sample. */
bool hdr_percentile_ok(const struct hdr *h, double p);

/* Adds src to dst. Same configuration: exact (counts slot by slot). Otherwise
 * each src slot's count is recorded at the slot's highest value (clamped to
 * src's min..max) in dst, so a value v ends up reported within dst's precision
 * of a value within src's precision above v: v <= r <= v(1+e_src)(1+e_dst)
 * (plus the lowest-1 terms), e = 10^-sigfigs. Count, min, max and sum stay
 * exact in both cases. -EOVERFLOW (dst unchanged) when counts would overflow. */
int hdr_merge(struct hdr *dst, const struct hdr *src);

/* Iterates over non-empty slots in increasing order of value. The histogram
 * must not change during the iteration. */
struct hdr_iter {
    const struct hdr *h;
    size_t next; /* next slot to look at */
};
void hdr_iter_init(struct hdr_iter *it, const struct hdr *h);
/* Sets [*value_lo, *value_hi] (every value in the slot) and *count; false at the end. */
bool hdr_iter_next(struct hdr_iter *it, int64_t *value_lo, int64_t *value_hi, uint64_t *count);

/* Compact, versioned binary form (docs/histograms.md). *buf is allocated
 * (caller frees). Always 0. */
int hdr_encode(const struct hdr *h, unsigned char **buf, size_t *len);
/* Parses hdr_encode's output; input may be hostile: -EINVAL when malformed or
 * inconsistent, -EOVERFLOW when counts overflow. *out set only on success. */
int hdr_decode(const unsigned char *buf, size_t len, struct hdr **out);

#endif
