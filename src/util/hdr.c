/* hdr.c — HDR-style log-linear histogram (see hdr.h and docs/histograms.md).
 *
 * Layout: a value v is first shifted right by unit = floor(log2(lowest)),
 * giving x. Bucket 0 holds x in [0, 2^sub_bits) with one slot per x; bucket
 * b >= 1 holds x in [2^(sub_bits-1+b), 2^(sub_bits+b)) with slots of width 2^b,
 * i.e. its upper half only. Slot index = (b << half_bits) + (x >> b), so the
 * slots of consecutive buckets are contiguous. The array ends at highest's slot. */
#include "util/hdr.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct hdr {
    int64_t lowest, highest;
    int sigfigs;
    unsigned unit;      /* floor(log2(lowest)) */
    unsigned sub_bits;  /* log2 of the slots in bucket 0 */
    unsigned half_bits; /* sub_bits - 1 */
    uint64_t sub_mask;  /* (1 << sub_bits) - 1 */
    size_t counts_len;
    uint64_t total, saturated;
    int64_t min, max; /* INT64_MAX and 0 when empty */
    unsigned __int128 sum;
    uint64_t counts[];
};

#define HDR_MAGIC      "SHD1"
#define HDR_HEADER_LEN 73

struct layout {
    unsigned unit, sub_bits;
    uint64_t counts_len;
};

static unsigned bit_len(uint64_t x) /* x > 0 */
{
    return 64u - (unsigned)__builtin_clzll(x);
}

static size_t index_of(unsigned unit, unsigned sub_bits, uint64_t v)
{
    uint64_t x = v >> unit;
    unsigned b = bit_len(x | ((UINT64_C(1) << sub_bits) - 1)) - sub_bits;
    return ((size_t)b << (sub_bits - 1)) + (size_t)(x >> b);
}

static size_t slot_index(const struct hdr *h, uint64_t v)
{
    uint64_t x = v >> h->unit;
    unsigned b = bit_len(x | h->sub_mask) - h->sub_bits;
    return ((size_t)b << h->half_bits) + (size_t)(x >> b);
}

/* Lowest value of slot i and its width. */
static void slot_range(const struct hdr *h, size_t i, uint64_t *lo, uint64_t *width)
{
    unsigned b = 0;
    uint64_t sub = i;
    if (i > h->sub_mask) {
        b = (unsigned)(i >> h->half_bits) - 1;
        sub = i - ((uint64_t)b << h->half_bits);
    }
    *lo = (sub << b) << h->unit;
    *width = UINT64_C(1) << (b + h->unit);
}

static int64_t slot_hi(const struct hdr *h, size_t i)
{
    uint64_t lo, width;
    slot_range(h, i, &lo, &width);
    return (int64_t)(lo + (width - 1));
}

/* Smallest sub_bits with 2^(sub_bits-1) >= 10^sigfigs. */
static unsigned sub_bits_for(int sigfigs)
{
    uint64_t need = 1;
    for (int i = 0; i < sigfigs; i++)
        need *= 10;
    unsigned bits = 1;
    while ((UINT64_C(1) << (bits - 1)) < need)
        bits++;
    return bits;
}

static int layout_for(int64_t lowest, int64_t highest, int sigfigs, struct layout *l)
{
    if (lowest < 1 || highest / 2 < lowest || sigfigs < 1 || sigfigs > 5)
        return -EINVAL;
    l->unit = bit_len((uint64_t)lowest) - 1;
    l->sub_bits = sub_bits_for(sigfigs);
    l->counts_len = index_of(l->unit, l->sub_bits, (uint64_t)highest) + 1;
    if (l->counts_len > (HDR_MAX_MEMORY - sizeof(struct hdr)) / sizeof(uint64_t))
        return -EINVAL;
    return 0;
}

int hdr_init(int64_t lowest, int64_t highest, int sigfigs, struct hdr **out)
{
    struct layout l;
    int r = layout_for(lowest, highest, sigfigs, &l);
    if (r < 0)
        return r;
    struct hdr *h = xcalloc(1, sizeof(*h) + (size_t)l.counts_len * sizeof(uint64_t));
    h->lowest = lowest;
    h->highest = highest;
    h->sigfigs = sigfigs;
    h->unit = l.unit;
    h->sub_bits = l.sub_bits;
    h->half_bits = l.sub_bits - 1;
    h->sub_mask = (UINT64_C(1) << l.sub_bits) - 1;
    h->counts_len = (size_t)l.counts_len;
    h->min = INT64_MAX;
    *out = h;
    return 0;
}

void hdr_free(struct hdr *h)
{
    free(h);
}

void hdr_reset(struct hdr *h)
{
    memset(h->counts, 0, h->counts_len * sizeof(uint64_t));
    h->total = h->saturated = 0;
    h->min = INT64_MAX;
    h->max = 0;
    h->sum = 0;
}

size_t hdr_memory(const struct hdr *h)
{
    return sizeof(*h) + h->counts_len * sizeof(uint64_t);
}

int64_t hdr_lowest(const struct hdr *h)
{
    return h->lowest;
}

int64_t hdr_highest(const struct hdr *h)
{
    return h->highest;
}

int hdr_sigfigs(const struct hdr *h)
{
    return h->sigfigs;
}

int hdr_record_n(struct hdr *h, int64_t v, uint64_t n)
{
    if (__builtin_expect(v < 0, 0))
        return -EINVAL;
    if (__builtin_expect(n > UINT64_MAX - h->total, 0))
        return -EOVERFLOW;
    uint64_t u = (uint64_t)v;
    if (__builtin_expect(v > h->highest, 0)) {
        u = (uint64_t)h->highest;
        h->saturated += n;
    }
    h->counts[slot_index(h, u)] += n;
    h->total += n;
    h->sum += (unsigned __int128)(uint64_t)v * n; /* < 2^127: total < 2^64, v < 2^63 */
    if (n) {
        h->min = v < h->min ? v : h->min;
        h->max = v > h->max ? v : h->max;
    }
    return 0;
}

int hdr_record(struct hdr *h, int64_t v)
{
    return hdr_record_n(h, v, 1);
}

uint64_t hdr_count(const struct hdr *h)
{
    return h->total;
}

uint64_t hdr_saturated(const struct hdr *h)
{
    return h->saturated;
}

int64_t hdr_min(const struct hdr *h)
{
    return h->total ? h->min : 0;
}

int64_t hdr_max(const struct hdr *h)
{
    return h->total ? h->max : 0;
}

double hdr_mean(const struct hdr *h)
{
    if (h->total == 0)
        return 0;
    return (double)((long double)h->sum / (long double)h->total);
}

double hdr_stddev(const struct hdr *h)
{
    if (h->total == 0)
        return 0;
    long double mean = (long double)h->sum / (long double)h->total, acc = 0;
    for (size_t i = 0; i < h->counts_len; i++) {
        if (h->counts[i] == 0)
            continue;
        uint64_t lo, width;
        slot_range(h, i, &lo, &width);
        long double mid = (long double)lo + (long double)(width - 1) / 2;
        mid = fminl(fmaxl(mid, (long double)h->min), (long double)h->max);
        acc += (long double)h->counts[i] * (mid - mean) * (mid - mean);
    }
    return (double)sqrtl(acc / (long double)h->total);
}

/* ceil(p/100 * total) in [1, total], tolerant of p's binary rounding. */
static uint64_t percentile_rank(uint64_t total, double p)
{
    long double x = (long double)p / 100.0L * (long double)total;
    long double r = ceill(x - x * 1e-12L);
    if (r < 1)
        return 1;
    if (r >= (long double)total)
        return total;
    return (uint64_t)r;
}

int64_t hdr_percentile(const struct hdr *h, double p)
{
    if (h->total == 0)
        return 0;
    if (!(p > 0))
        return h->min;
    if (p >= 100)
        return h->max;
    uint64_t rank = percentile_rank(h->total, p), seen = 0;
    for (size_t i = 0; i < h->counts_len; i++) {
        seen += h->counts[i];
        if (seen >= rank) { /* clamped to min too: saturated values lie above every slot */
            int64_t hi = slot_hi(h, i);
            hi = hi < h->max ? hi : h->max;
            return hi > h->min ? hi : h->min;
        }
    }
    return h->max;
}

bool hdr_percentile_ok(const struct hdr *h, double p)
{
    if (h->total == 0)
        return false;
    if (!(p > 0) || p >= 100)
        return true;
    long double need = 1000.0L / (100.0L - (long double)p);
    need = ceill(need - need * 1e-9L);
    return (long double)h->total >= need;
}

static bool same_config(const struct hdr *a, const struct hdr *b)
{
    return a->lowest == b->lowest && a->highest == b->highest && a->sigfigs == b->sigfigs;
}

/* Re-records src's slots at their highest value into a differently laid out dst. */
static void merge_slots(struct hdr *dst, const struct hdr *src)
{
    uint64_t over = 0;
    bool top_over = false;
    for (size_t i = 0; i < src->counts_len; i++) {
        uint64_t c = src->counts[i];
        if (c == 0)
            continue;
        int64_t rep = slot_hi(src, i);
        rep = rep < src->min ? src->min : rep > src->max ? src->max : rep;
        if (rep > dst->highest) {
            over += c;
            rep = dst->highest;
            top_over = top_over || i == src->counts_len - 1;
        }
        dst->counts[slot_index(dst, (uint64_t)rep)] += c;
    }
    /* src's own saturated values sit in its top slot: count them once. */
    dst->saturated += over + (top_over ? 0 : src->saturated);
}

int hdr_merge(struct hdr *dst, const struct hdr *src)
{
    if (src->total == 0)
        return 0;
    if (src->total > UINT64_MAX - dst->total)
        return -EOVERFLOW;
    if (same_config(dst, src)) {
        for (size_t i = 0; i < dst->counts_len; i++)
            dst->counts[i] += src->counts[i];
        dst->saturated += src->saturated;
    } else {
        merge_slots(dst, src);
    }
    dst->total += src->total;
    dst->sum += src->sum;
    dst->min = src->min < dst->min ? src->min : dst->min;
    dst->max = src->max > dst->max ? src->max : dst->max;
    return 0;
}

void hdr_iter_init(struct hdr_iter *it, const struct hdr *h)
{
    it->h = h;
    it->next = 0;
}

bool hdr_iter_next(struct hdr_iter *it, int64_t *value_lo, int64_t *value_hi, uint64_t *count)
{
    const struct hdr *h = it->h;
    while (it->next < h->counts_len && h->counts[it->next] == 0)
        it->next++;
    if (it->next >= h->counts_len)
        return false;
    uint64_t lo, width;
    slot_range(h, it->next, &lo, &width);
    *value_lo = (int64_t)lo;
    *value_hi = (int64_t)(lo + (width - 1));
    *count = h->counts[it->next++];
    return true;
}

/* ---- serialization ---------------------------------------------------------------------- */

/* A writer that only counts bytes while p is NULL. */
struct wbuf {
    unsigned char *p;
    size_t len;
};

static void put_byte(struct wbuf *w, unsigned c)
{
    if (w->p)
        w->p[w->len] = (unsigned char)c;
    w->len++;
}

static void put_le(struct wbuf *w, uint64_t x, int bytes)
{
    for (int i = 0; i < bytes; i++)
        put_byte(w, (unsigned)(x >> (8 * i)) & 0xffu);
}

static void put_varint(struct wbuf *w, uint64_t x)
{
    while (x >= 0x80) {
        put_byte(w, (unsigned)(x & 0x7f) | 0x80u);
        x >>= 7;
    }
    put_byte(w, (unsigned)x);
}

static void write_all(const struct hdr *h, struct wbuf *w)
{
    put_byte(w, 'S');
    put_byte(w, 'H');
    put_byte(w, 'D');
    put_byte(w, '1');
    put_le(w, h->counts_len, 4);
    put_le(w, (uint64_t)h->lowest, 8);
    put_le(w, (uint64_t)h->highest, 8);
    put_le(w, h->total, 8);
    put_le(w, h->saturated, 8);
    put_le(w, (uint64_t)hdr_min(h), 8);
    put_le(w, (uint64_t)hdr_max(h), 8);
    put_le(w, (uint64_t)h->sum, 8);
    put_le(w, (uint64_t)(h->sum >> 64), 8);
    put_byte(w, (unsigned)h->sigfigs);
    size_t zeros = 0;
    for (size_t i = 0; i < h->counts_len; i++) {
        if (h->counts[i] == 0) {
            zeros++;
            continue;
        }
        if (zeros) {
            put_byte(w, 0);
            put_varint(w, zeros);
            zeros = 0;
        }
        put_varint(w, h->counts[i]);
    }
}

int hdr_encode(const struct hdr *h, unsigned char **buf, size_t *len)
{
    struct wbuf w = {0};
    write_all(h, &w);
    w.p = xmalloc(w.len);
    w.len = 0;
    write_all(h, &w);
    *buf = w.p;
    *len = w.len;
    return 0;
}

struct header {
    uint32_t counts_len;
    int64_t lowest, highest, min, max;
    uint64_t total, saturated;
    unsigned __int128 sum;
    int sigfigs;
};

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t x = 0;
    for (int i = 0; i < bytes; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return x;
}

static void read_header(const unsigned char *p, struct header *hd)
{
    hd->counts_len = (uint32_t)get_le(p + 4, 4);
    hd->lowest = (int64_t)get_le(p + 8, 8);
    hd->highest = (int64_t)get_le(p + 16, 8);
    hd->total = get_le(p + 24, 8);
    hd->saturated = get_le(p + 32, 8);
    hd->min = (int64_t)get_le(p + 40, 8);
    hd->max = (int64_t)get_le(p + 48, 8);
    hd->sum = ((unsigned __int128)get_le(p + 64, 8) << 64) | get_le(p + 56, 8);
    hd->sigfigs = p[72];
}

static int get_varint(const unsigned char *p, size_t n, size_t *pos, uint64_t *out)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= n)
            return -EINVAL;
        unsigned c = p[(*pos)++];
        if (shift == 63 && c > 1)
            return -EINVAL;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = x;
            return 0;
        }
    }
    return -EINVAL;
}

static int decode_counts(struct hdr *h, const unsigned char *p, size_t n, uint64_t total)
{
    size_t pos = 0, idx = 0;
    uint64_t seen = 0, x;
    while (pos < n) {
        if (get_varint(p, n, &pos, &x) < 0)
            return -EINVAL;
        if (x == 0) { /* a run of empty slots */
            if (get_varint(p, n, &pos, &x) < 0 || x == 0 || x > h->counts_len - idx)
                return -EINVAL;
            idx += (size_t)x;
            continue;
        }
        if (idx >= h->counts_len)
            return -EINVAL;
        if (x > UINT64_MAX - seen)
            return -EOVERFLOW;
        seen += x;
        h->counts[idx++] = x;
    }
    return seen == total ? 0 : -EINVAL;
}

/* Checks the header's summary against the counts and installs it. */
static int apply_summary(struct hdr *h, const struct header *hd)
{
    if (hd->total == 0)
        return hd->saturated || hd->min || hd->max || hd->sum ? -EINVAL : 0;
    if (hd->min < 0 || hd->max < hd->min || hd->saturated > hd->total)
        return -EINVAL;
    size_t first = 0, last = h->counts_len - 1;
    while (h->counts[first] == 0)
        first++;
    while (h->counts[last] == 0)
        last--;
    uint64_t top = (uint64_t)h->highest;
    uint64_t lo_v = (uint64_t)hd->min < top ? (uint64_t)hd->min : top;
    uint64_t hi_v = (uint64_t)hd->max < top ? (uint64_t)hd->max : top;
    if (slot_index(h, lo_v) > first || last > slot_index(h, hi_v))
        return -EINVAL;
    /* values above highest are exactly the saturated ones */
    if (((uint64_t)hd->max > top) != (hd->saturated > 0) ||
        ((uint64_t)hd->min > top && hd->saturated != hd->total))
        return -EINVAL;
    if (hd->sum < (unsigned __int128)hd->total * (uint64_t)hd->min ||
        hd->sum > (unsigned __int128)hd->total * (uint64_t)hd->max)
        return -EINVAL;
    h->total = hd->total;
    h->saturated = hd->saturated;
    h->min = hd->min;
    h->max = hd->max;
    h->sum = hd->sum;
    return 0;
}

int hdr_decode(const unsigned char *buf, size_t len, struct hdr **out)
{
    struct header hd;
    struct layout l;
    struct hdr *h = NULL;
    int r = -EINVAL;
    if (!buf || len < HDR_HEADER_LEN || memcmp(buf, HDR_MAGIC, 4) != 0)
        goto out;
    read_header(buf, &hd);
    r = layout_for(hd.lowest, hd.highest, hd.sigfigs, &l);
    if (r < 0)
        goto out;
    r = -EINVAL;
    if (l.counts_len != hd.counts_len)
        goto out;
    r = hdr_init(hd.lowest, hd.highest, hd.sigfigs, &h);
    if (r < 0)
        goto out;
    r = decode_counts(h, buf + HDR_HEADER_LEN, len - HDR_HEADER_LEN, hd.total);
    if (r < 0)
        goto out;
    r = apply_summary(h, &hd);
    if (r < 0)
        goto out;
    *out = h;
    h = NULL;
out:
    hdr_free(h);
    return r;
}
