/* fuzz_hdr.c — libFuzzer target: any bytes through hdr_decode; whatever decodes
 * must answer queries, iterate consistently and survive encode -> decode exactly. */
#include "util/hdr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t iter_total(const struct hdr *h)
{
    struct hdr_iter it;
    int64_t lo, hi, prev = -1;
    uint64_t c, total = 0;
    hdr_iter_init(&it, h);
    while (hdr_iter_next(&it, &lo, &hi, &c)) {
        if (lo <= prev || hi < lo || c == 0)
            abort();
        prev = hi;
        total += c;
    }
    return total;
}

static void check_queries(const struct hdr *h)
{
    static const double ps[] = {0, 1, 50, 99, 99.99, 100};
    int64_t prev = hdr_percentile(h, 0);
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        int64_t v = hdr_percentile(h, ps[i]);
        if (v < prev || (hdr_count(h) && (v < hdr_min(h) || v > hdr_max(h))))
            abort();
        prev = v;
        (void)hdr_percentile_ok(h, ps[i]);
    }
    (void)hdr_mean(h);
    (void)hdr_stddev(h);
    if (iter_total(h) != hdr_count(h))
        abort();
}

/* Merges into a histogram of another configuration: counts must survive. */
static void check_merge(const struct hdr *h)
{
    struct hdr *m = NULL;
    if (hdr_init(1, 3600000000000LL, 2, &m) < 0)
        abort();
    if (hdr_merge(m, h) < 0 || hdr_count(m) != hdr_count(h) || iter_total(m) != hdr_count(h))
        abort();
    hdr_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hdr *h = NULL, *again = NULL;
    unsigned char *buf = NULL, *buf2 = NULL;
    size_t len, len2;
    if (hdr_decode(data, size, &h) < 0)
        return 0;
    check_queries(h);
    check_merge(h);
    hdr_encode(h, &buf, &len);
    if (hdr_decode(buf, len, &again) < 0)
        abort();
    hdr_encode(again, &buf2, &len2);
    if (len != len2 || memcmp(buf, buf2, len) != 0 || hdr_count(again) != hdr_count(h) ||
        hdr_min(again) != hdr_min(h) || hdr_max(again) != hdr_max(h))
        abort();
    free(buf);
    free(buf2);
    hdr_free(again);
    hdr_free(h);
    return 0;
}
