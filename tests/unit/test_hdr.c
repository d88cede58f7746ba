/* test_hdr.c — the HDR histogram against exact percentiles of sorted samples. */
#include "util/base64.h"
#include "util/hdr.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define NSAMPLES 200000
#define HOUR_NS  3600000000000LL

/* splitmix64: small, seeded, reproducible. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static double rng_unit(void) /* (0, 1) */
{
    return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_normal(void)
{
    return sqrt(-2 * log(rng_unit())) * cos(6.283185307179586 * rng_unit());
}

static int64_t clamp_ns(double v)
{
    return v < 0 ? 0 : v > 1e15 ? (int64_t)1e15 : (int64_t)v;
}

enum dist { UNIFORM, EXPONENTIAL, LOGNORMAL, BIMODAL, SMALL };

static int64_t draw(enum dist d)
{
    switch (d) {
    case UNIFORM:
        return 1000 + (int64_t)(rng_next() % 1000000000);
    case EXPONENTIAL:
        return clamp_ns(-log(rng_unit()) * 1e6);
    case LOGNORMAL:
        return clamp_ns(exp(log(1e6) + 1.5 * rng_normal()));
    case BIMODAL:
        if (rng_next() & 1)
            return clamp_ns(100e3 + 10e3 * rng_normal());
        return clamp_ns(50e6 + 5e6 * rng_normal());
    case SMALL:
        return (int64_t)(rng_next() % 5000);
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t *samples(enum dist d, uint64_t seed)
{
    rng_state = seed;
    int64_t *v = xmalloc(NSAMPLES * sizeof(*v));
    for (size_t i = 0; i < NSAMPLES; i++)
        v[i] = draw(d);
    return v;
}

static struct hdr *new_hdr(int64_t lowest, int64_t highest, int sigfigs)
{
    struct hdr *h = NULL;
    assert_int_equal(hdr_init(lowest, highest, sigfigs, &h), 0);
    assert_non_null(h);
    return h;
}

/* p as per-100000 integers, so the exact nearest rank needs no floating point. */
static const long pct_milli[] = {1000, 10000, 50000, 90000, 99000, 99900, 99990};

static void check_dist(enum dist d, int64_t lowest, int sigfigs)
{
    int64_t *v = samples(d, 42 + (uint64_t)d);
    struct hdr *h = new_hdr(lowest, HOUR_NS, sigfigs);
    long double sum = 0;
    for (size_t i = 0; i < NSAMPLES; i++) {
        assert_int_equal(hdr_record(h, v[i]), 0);
        sum += v[i];
    }
    qsort(v, NSAMPLES, sizeof(*v), cmp_i64);
    assert_int_equal(hdr_count(h), NSAMPLES);
    assert_int_equal(hdr_min(h), v[0]);
    assert_int_equal(hdr_max(h), v[NSAMPLES - 1]);
    assert_int_equal(hdr_percentile(h, 0), v[0]);
    assert_int_equal(hdr_percentile(h, 100), v[NSAMPLES - 1]);
    double mean = (double)(sum / NSAMPLES);
    assert_true(fabs(hdr_mean(h) - mean) <= 1e-9 * mean);
    double eps = pow(10, -sigfigs);
    for (size_t k = 0; k < SONDE_ARRAY_LEN(pct_milli); k++) {
        size_t rank = (size_t)((pct_milli[k] * (long)NSAMPLES + 99999) / 100000);
        int64_t exact = v[rank - 1], got = hdr_percentile(h, pct_milli[k] / 1000.0);
        double slack = fmax(floor((double)exact * eps), (double)(lowest - 1));
        if (got < exact || (double)(got - exact) > slack)
            fail_msg("dist %d sigfigs %d lowest %lld p%g: got %lld exact %lld", (int)d, sigfigs,
                     (long long)lowest, pct_milli[k] / 1000.0, (long long)got, (long long)exact);
    }
    hdr_free(h);
    free(v);
}

static void test_percentiles_match_sorted_samples(void **state)
{
    (void)state;
    for (enum dist d = UNIFORM; d <= SMALL; d++) {
        for (int s = 1; s <= 5; s++)
            check_dist(d, 1, s);
        check_dist(d, 1000, 3);
        check_dist(d, 7, 2);
    }
}

static void test_stddev(void **state)
{
    (void)state;
    struct hdr *h = new_hdr(1, HOUR_NS, 3);
    assert_int_equal(hdr_record_n(h, 123456789, 1000), 0);
    assert_true(hdr_stddev(h) == 0);
    assert_true(hdr_mean(h) == 123456789.0);
    hdr_reset(h);
    int64_t *v = samples(UNIFORM, 7);
    long double sum = 0, sq = 0;
    for (size_t i = 0; i < NSAMPLES; i++) {
        hdr_record(h, v[i]);
        sum += v[i];
    }
    long double mean = sum / NSAMPLES;
    for (size_t i = 0; i < NSAMPLES; i++)
        sq += (v[i] - mean) * (v[i] - mean);
    double exact = (double)sqrtl(sq / NSAMPLES);
    assert_true(fabs(hdr_stddev(h) - exact) <= 1e-3 * exact);
    free(v);
    hdr_free(h);
}

static void encode(const struct hdr *h, unsigned char **buf, size_t *len)
{
    assert_int_equal(hdr_encode(h, buf, len), 0);
}

static void assert_same_bytes(const struct hdr *a, const struct hdr *b)
{
    unsigned char *ba, *bb;
    size_t la, lb;
    encode(a, &ba, &la);
    encode(b, &bb, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
}

static void test_merge_parts_equals_whole(void **state)
{
    (void)state;
    int64_t *v = samples(LOGNORMAL, 99);
    struct hdr *whole = new_hdr(1, HOUR_NS, 3), *merged = new_hdr(1, HOUR_NS, 3);
    struct hdr *part[4];
    for (int p = 0; p < 4; p++)
        part[p] = new_hdr(1, HOUR_NS, 3);
    for (size_t i = 0; i < NSAMPLES; i++) {
        hdr_record(whole, v[i]);
        hdr_record(part[i % 4], v[i]);
    }
    hdr_record(part[3], 2 * HOUR_NS); /* saturation survives the merge */
    hdr_record(whole, 2 * HOUR_NS);
    for (int p = 0; p < 4; p++) {
        assert_int_equal(hdr_merge(merged, part[p]), 0);
        hdr_free(part[p]);
    }
    assert_int_equal(hdr_count(merged), NSAMPLES + 1);
    assert_int_equal(hdr_saturated(merged), 1);
    assert_same_bytes(whole, merged);
    hdr_free(whole);
    hdr_free(merged);
    free(v);
}

static void test_merge_other_config(void **state)
{
    (void)state;
    int64_t *v = samples(EXPONENTIAL, 5);
    struct hdr *src = new_hdr(1, HOUR_NS, 3), *dst = new_hdr(1000, 1000000000, 2);
    for (size_t i = 0; i < NSAMPLES; i++)
        hdr_record(src, v[i]);
    hdr_record(src, 5000000000); /* above dst's highest */
    assert_int_equal(hdr_merge(dst, src), 0);
    assert_int_equal(hdr_count(dst), NSAMPLES + 1);
    assert_int_equal(hdr_min(dst), hdr_min(src));
    assert_int_equal(hdr_max(dst), 5000000000);
    assert_true(hdr_mean(dst) == hdr_mean(src));
    assert_true(hdr_saturated(dst) >= 1);
    qsort(v, NSAMPLES, sizeof(*v), cmp_i64);
    for (size_t k = 0; k < SONDE_ARRAY_LEN(pct_milli) - 1; k++) {
        size_t rank = (size_t)((pct_milli[k] * (long)(NSAMPLES + 1) + 99999) / 100000);
        int64_t exact = v[rank - 1], got = hdr_percentile(dst, pct_milli[k] / 1000.0);
        /* documented bound: (1 + 1e-3)(1 + 1e-2), plus lowest - 1 */
        assert_true(got >= exact);
        assert_true((double)got <= (double)exact * 1.001 * 1.01 + 1000);
    }
    free(v);
    hdr_free(src);
    hdr_free(dst);
}

static void test_saturation_and_errors(void **state)
{
    (void)state;
    struct hdr *h = new_hdr(1, 1000000, 3);
    assert_int_equal(hdr_record(h, -1), -EINVAL);
    assert_int_equal(hdr_record(h, 500), 0);
    assert_int_equal(hdr_record_n(h, 2000000, 3), 0);
    assert_int_equal(hdr_record(h, INT64_MAX), 0);
    assert_int_equal(hdr_count(h), 5);
    assert_int_equal(hdr_saturated(h), 4);
    assert_int_equal(hdr_max(h), INT64_MAX);
    assert_int_equal(hdr_percentile(h, 100), INT64_MAX);
    assert_true(hdr_percentile(h, 50) >= 1000000);
    assert_int_equal(hdr_record_n(h, 1, UINT64_MAX), -EOVERFLOW);
    assert_int_equal(hdr_count(h), 5);
    assert_int_equal(hdr_record_n(h, 1, 0), 0);
    assert_int_equal(hdr_min(h), 500);
    hdr_reset(h);
    assert_int_equal(hdr_count(h), 0);
    assert_int_equal(hdr_saturated(h), 0);
    assert_int_equal(hdr_min(h), 0);
    assert_int_equal(hdr_max(h), 0);
    assert_int_equal(hdr_percentile(h, 50), 0);
    /* every value above highest: a percentile is never below the exact min */
    assert_int_equal(hdr_record_n(h, 5000000, 2), 0);
    assert_int_equal(hdr_record(h, 7000000), 0);
    assert_int_equal(hdr_saturated(h), 3);
    assert_int_equal(hdr_percentile(h, 50), 5000000);
    assert_int_equal(hdr_percentile(h, 99), 5000000);
    hdr_free(h);
    /* a file claiming values above highest but none saturated (found by fuzz_hdr) */
    static const char crash[] =
        "U0hEMQgAAAAAtf/+AABABwAAAAIAL/8dAwAAAAAAAAAAAAAAAAAAACcAAAAAFgBRAAAAAAAAAVgdAA"
        "ABVf//9wAAAAAAAAAAAQAFAAID";
    unsigned char *bin = NULL;
    size_t binlen = 0;
    assert_int_equal(base64_decode(crash, strlen(crash), &bin, &binlen), 0);
    struct hdr *none = NULL;
    assert_int_equal(hdr_decode(bin, binlen, &none), -EINVAL);
    assert_null(none);
    free(bin);
    hdr_free(NULL);

    struct hdr *bad = NULL;
    assert_int_equal(hdr_init(0, 100, 3, &bad), -EINVAL);
    assert_int_equal(hdr_init(10, 19, 3, &bad), -EINVAL);
    assert_int_equal(hdr_init(1, 100, 0, &bad), -EINVAL);
    assert_int_equal(hdr_init(1, 100, 6, &bad), -EINVAL);
    assert_int_equal(hdr_init(INT64_MAX / 2 + 1, INT64_MAX, 3, &bad), -EINVAL);
    assert_null(bad);
}

static void test_memory(void **state)
{
    (void)state;
    struct hdr *h = new_hdr(1, HOUR_NS, 3);
    printf("# hdr memory (1 ns .. 1 h, 3 sigfigs): %zu bytes\n", hdr_memory(h));
    assert_true(hdr_memory(h) <= 270 * 1024); /* docs/histograms.md */
    hdr_free(h);
    h = new_hdr(1, INT64_MAX, 5); /* the largest configuration there is */
    assert_true(hdr_memory(h) <= HDR_MAX_MEMORY);
    hdr_free(h);
}

static void test_iterate(void **state)
{
    (void)state;
    struct hdr *h = new_hdr(1, HOUR_NS, 3);
    hdr_record_n(h, 5, 2);
    hdr_record(h, 1000000);
    hdr_record(h, 3000);
    struct hdr_iter it;
    int64_t lo, hi, prev = -1;
    uint64_t c, total = 0;
    int n = 0;
    hdr_iter_init(&it, h);
    while (hdr_iter_next(&it, &lo, &hi, &c)) {
        assert_true(lo > prev && lo <= hi && c > 0);
        prev = hi;
        total += c;
        n++;
    }
    assert_int_equal(n, 3);
    assert_int_equal(total, 4);
    assert_true(lo <= 1000000 && hi >= 1000000 && hi - lo + 1 <= 1024);
    hdr_free(h);
}

static void test_percentile_ok(void **state)
{
    (void)state;
    struct hdr *h = new_hdr(1, HOUR_NS, 3);
    assert_false(hdr_percentile_ok(h, 0));
    assert_false(hdr_percentile_ok(h, 100));
    hdr_record(h, 1);
    assert_true(hdr_percentile_ok(h, 0));
    assert_true(hdr_percentile_ok(h, 100));
    static const struct {
        double p;
        uint64_t need;
    } cases[] = {{50, 20}, {90, 100}, {99, 1000}, {99.9, 10000}, {99.99, 100000}};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(cases); i++) {
        hdr_reset(h);
        hdr_record_n(h, 1, cases[i].need - 1);
        assert_false(hdr_percentile_ok(h, cases[i].p));
        hdr_record(h, 1);
        assert_true(hdr_percentile_ok(h, cases[i].p));
    }
    hdr_free(h);
}

static struct hdr *sample_hdr(void)
{
    int64_t *v = samples(BIMODAL, 11);
    struct hdr *h = new_hdr(1, HOUR_NS, 3);
    for (size_t i = 0; i < NSAMPLES; i++)
        hdr_record(h, v[i]);
    hdr_record(h, 2 * HOUR_NS);
    free(v);
    return h;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct hdr *h = sample_hdr(), *d = NULL, *e = NULL;
    unsigned char *buf;
    size_t len;
    encode(h, &buf, &len);
    printf("# encoded 200001 bimodal values in %zu bytes\n", len);
    assert_int_equal(hdr_decode(buf, len, &d), 0);
    assert_same_bytes(h, d);
    assert_int_equal(hdr_count(d), hdr_count(h));
    assert_int_equal(hdr_saturated(d), 1);
    assert_int_equal(hdr_min(d), hdr_min(h));
    assert_int_equal(hdr_max(d), hdr_max(h));
    assert_true(hdr_mean(d) == hdr_mean(h));
    for (double p = 0; p <= 100; p += 0.5)
        assert_int_equal(hdr_percentile(d, p), hdr_percentile(h, p));
    free(buf);
    hdr_reset(h);
    encode(h, &buf, &len); /* empty */
    assert_int_equal(hdr_decode(buf, len, &e), 0);
    assert_int_equal(hdr_count(e), 0);
    free(buf);
    hdr_free(e);
    hdr_free(d);
    hdr_free(h);
}

static int decode_status(const unsigned char *buf, size_t len)
{
    struct hdr *h = NULL;
    int r = hdr_decode(buf, len, &h);
    assert_true(r < 0 ? h == NULL : h != NULL);
    hdr_free(h);
    return r;
}

static void put64(unsigned char *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(x >> (8 * i));
}

/* A small valid encoding to corrupt: lowest 1, highest 1000, 1 sigfig. */
static size_t small_encoding(unsigned char *out)
{
    struct hdr *h = new_hdr(1, 1000, 1);
    hdr_record_n(h, 3, 2);
    hdr_record(h, 700);
    unsigned char *buf;
    size_t len;
    encode(h, &buf, &len);
    assert_true(len <= 128);
    memcpy(out, buf, len);
    free(buf);
    hdr_free(h);
    return len;
}

static void test_decode_rejects(void **state)
{
    (void)state;
    struct hdr *h = sample_hdr();
    unsigned char *buf, b[128], c[160];
    size_t len;
    encode(h, &buf, &len);
    for (size_t n = 0; n < len; n++) /* every truncation */
        assert_true(decode_status(buf, n) < 0);
    assert_int_equal(decode_status(NULL, 0), -EINVAL);
    free(buf);
    hdr_free(h);

    size_t n = small_encoding(b);
    assert_int_equal(decode_status(b, n), 0);
    static const struct {
        size_t off;
        unsigned char val;
    } flips[] = {
        {0, 'X'},   /* magic */
        {4, 99},    /* counts_len */
        {8, 0},     /* lowest 0 */
        {16, 1},    /* highest changed: counts_len no longer matches */
        {24, 9},    /* total != sum of counts */
        {32, 9},    /* saturated > total */
        {40, 200},  /* min after the first slot */
        {48, 2},    /* max below the last slot */
        {57, 0x40}, /* sum above total * max */
        {72, 0},    /* sigfigs 0 */
        {72, 6},    /* sigfigs 6 */
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(flips); i++) {
        memcpy(c, b, n);
        c[flips[i].off] = flips[i].val;
        if (decode_status(c, n) != -EINVAL)
            fail_msg("corruption %zu at offset %zu accepted", i, flips[i].off);
    }
    memcpy(c, b, n); /* a count past the last slot */
    memcpy(c + n, "\x00\x7f\x01", 3);
    assert_int_equal(decode_status(c, n + 3), -EINVAL);
    memcpy(c, b, n); /* overlong varint */
    memset(c + n, 0x80, 11);
    c[n + 11] = 0;
    assert_int_equal(decode_status(c, n + 12), -EINVAL);
    memcpy(c, b, n); /* zero-length run */
    memcpy(c + n, "\x00\x00", 2);
    assert_int_equal(decode_status(c, n + 2), -EINVAL);
    memcpy(c, b, 73); /* counts summing past UINT64_MAX */
    put64(c + 24, UINT64_MAX);
    memcpy(c + 73,
           "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 20);
    assert_int_equal(decode_status(c, 93), -EOVERFLOW);
    memcpy(c, b, n); /* oversized: a config whose counts_len does not match */
    put64(c + 16, INT64_MAX);
    assert_int_equal(decode_status(c, n), -EINVAL);
}

static void test_timing(void **state)
{
    (void)state;
    enum { N = 10000000 };
    struct hdr *h = new_hdr(1, HOUR_NS, 3);
    rng_state = 3;
    uint64_t x = rng_next();
    int64_t t0 = mono_ns();
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        hdr_record(h, (int64_t)(x >> 28));
    }
    int64_t t1 = mono_ns();
    assert_int_equal(hdr_count(h), N);
    printf("# hdr_record: %.2f ns/record\n", (double)(t1 - t0) / N);
    hdr_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentiles_match_sorted_samples),
        cmocka_unit_test(test_stddev),
        cmocka_unit_test(test_merge_parts_equals_whole),
        cmocka_unit_test(test_merge_other_config),
        cmocka_unit_test(test_saturation_and_errors),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_iterate),
        cmocka_unit_test(test_percentile_ok),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
