/* test_stats_file.c — load results through files and their exact merge: four
 * synthetic tasks with known, different latency distributions, counters and
 * start times are written, read back field by field, and merged; the merged
 * histograms must equal, byte for byte, one histogram that recorded every raw
 * value directly. Then the readers' answers to broken files. */
#include "loadgen/engine.h"
#include "loadgen/stats_file.h"
#include "util/base64.h"
#include "util/hdr.h"
#include "util/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define MS      1000000LL
#define SEC     1000000000LL
#define HOUR_NS (3600 * SEC)
#define T0      1767225600000000000LL /* 2026-01-01T00:00:00Z */
#define NTASKS  4
#define MAXSECS 16

/* splitmix64: small, seeded, reproducible. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int64_t uniform(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* One task: its latencies come from [lo, hi]; `slow` tasks are few but far out. */
struct task_spec {
    int64_t start_offset_ns; /* from T0 */
    size_t nsecs;
    uint64_t ok;
    int64_t lo, hi;
};

static const struct task_spec specs[NTASKS] = {
    {0, 10, 5000, 1 * MS, 2 * MS},          /* fast */
    {1000 * MS, 8, 3000, 2 * MS, 10 * MS},  /* starts 1 s later: offset 1 */
    {400 * MS, 12, 8000, MS / 2, 1 * MS},   /* 0.4 s later: rounds to offset 0 */
    {1500 * MS, 6, 100, 50 * MS, 200 * MS}, /* 1.5 s later: rounds (half up) to 2; slow */
};
static const size_t offsets[NTASKS] = {0, 1, 0, 2};

/* The raw values everything is checked against. */
struct reference {
    struct hdr *latency, *service, *issue_delay, *ttft;
    uint64_t tokens, tokens_secs[MAXSECS];
    struct hdr *secs[MAXSECS];
    uint64_t sec_requests[MAXSECS], sec_errors[MAXSECS], sec_bytes[MAXSECS];
};

static struct hdr *new_hdr(int sigfigs)
{
    struct hdr *h = NULL;
    assert_int_equal(hdr_init(1, HOUR_NS, sigfigs, &h), 0);
    return h;
}

/* Builds task k and records the same values into ref. */
static struct lg_stats *make_task(size_t k, struct reference *ref)
{
    const struct task_spec *sp = &specs[k];
    struct lg_stats *s = xcalloc(1, sizeof(*s));
    s->latency = new_hdr(3);
    s->service = new_hdr(3);
    s->issue_delay = new_hdr(3);
    s->nsecs = sp->nsecs;
    s->secs = xcalloc(sp->nsecs, sizeof(*s->secs));
    for (size_t i = 0; i < sp->nsecs; i++)
        s->secs[i].latency = new_hdr(2);
    for (uint64_t n = 0; n < sp->ok; n++) {
        int64_t v = uniform(sp->lo, sp->hi), svc = v - uniform(0, v / 10), delay = v - svc;
        size_t i = (size_t)(n % sp->nsecs), j = offsets[k] + i;
        assert_int_equal(hdr_record(s->latency, v), 0);
        assert_int_equal(hdr_record(s->service, svc), 0);
        assert_int_equal(hdr_record(s->issue_delay, delay), 0);
        assert_int_equal(hdr_record(s->secs[i].latency, v), 0);
        assert_int_equal(hdr_record(ref->latency, v), 0);
        assert_int_equal(hdr_record(ref->service, svc), 0);
        assert_int_equal(hdr_record(ref->issue_delay, delay), 0);
        assert_int_equal(hdr_record(ref->secs[j], v), 0);
        s->secs[i].requests++;
        s->secs[i].bytes_in += 100 + k;
    }
    s->ok = sp->ok;
    s->requests = sp->ok;
    for (int e = 0; e < LG_ERR_COUNT; e++) {
        s->errors[e] = (uint64_t)(e + 1) * (k + 1); /* differs per class and per task */
        s->requests += s->errors[e];
        for (uint64_t n = 0; n < s->errors[e]; n++) { /* spread over the seconds */
            struct lg_second *sec = &s->secs[(n * 3 + (size_t)e) % sp->nsecs];
            sec->requests++;
            sec->errors++;
        }
    }
    s->status_class[2] = sp->ok;
    s->status_class[5] = s->errors[LG_ERR_STATUS];
    s->status_class[0] = k;
    s->bytes_in = 1000003ULL * (k + 1);
    s->bytes_out = 70001ULL * (k + 1);
    s->connects = 4 + k;
    s->window_start_wall_ns = T0 + sp->start_offset_ns;
    s->window_ns = (int64_t)sp->nsecs * SEC - (int64_t)k * 1000; /* not whole seconds */
    s->achieved_rate = (double)s->requests * 1e9 / (double)s->window_ns;
    s->rate_missed = k == 2;
    /* a client's own results: a counter, a histogram, a series */
    struct hdr *ttft = new_hdr(3);
    uint64_t tokens[MAXSECS] = {0};
    for (uint64_t n = 0; n < sp->ok; n++) {
        int64_t v = uniform(sp->lo / 2, sp->hi / 2);
        assert_int_equal(hdr_record(ttft, v), 0);
        assert_int_equal(hdr_record(ref->ttft, v), 0);
        tokens[n % sp->nsecs] += 64;
        ref->tokens_secs[offsets[k] + n % sp->nsecs] += 64;
    }
    ref->tokens += 64 * sp->ok;
    assert_int_equal(lg_extra_add_counter(s, "output_tokens", 64 * sp->ok), 0);
    assert_int_equal(lg_extra_add_hdr(s, "ttft", ttft), 0);
    assert_int_equal(lg_extra_add_secs(s, "output_tokens_s", tokens, sp->nsecs), 0);
    assert_int_equal(lg_extra_add_bound(s, "end_min", LG_EXTRA_MIN, -3 + (int64_t)k * 7), 0);
    assert_int_equal(lg_extra_add_bound(s, "end_max", LG_EXTRA_MAX, (int64_t)(k % 3) * 11), 0);
    s->unsent = k * 7;
    for (size_t i = 0; i < sp->nsecs; i++) {
        struct lg_second *sec = &s->secs[i];
        size_t j = offsets[k] + i;
        sec->p50_ns = hdr_count(sec->latency) ? hdr_percentile(sec->latency, 50) : -1;
        sec->p99_ns = hdr_count(sec->latency) ? hdr_percentile(sec->latency, 99) : -1;
        ref->sec_requests[j] += sec->requests;
        ref->sec_errors[j] += sec->errors;
        ref->sec_bytes[j] += sec->bytes_in;
    }
    return s;
}

static void ref_init(struct reference *ref)
{
    memset(ref, 0, sizeof(*ref));
    ref->latency = new_hdr(3);
    ref->service = new_hdr(3);
    ref->issue_delay = new_hdr(3);
    ref->ttft = new_hdr(3);
    for (size_t j = 0; j < MAXSECS; j++)
        ref->secs[j] = new_hdr(2);
}

static void ref_free(struct reference *ref)
{
    hdr_free(ref->latency);
    hdr_free(ref->service);
    hdr_free(ref->issue_delay);
    hdr_free(ref->ttft);
    for (size_t j = 0; j < MAXSECS; j++)
        hdr_free(ref->secs[j]);
}

/* Byte-for-byte equality of the encodings (NULL equals only NULL). */
static void assert_hdr_same(const struct hdr *a, const struct hdr *b)
{
    if (!a || !b) {
        assert_true(a == b);
        return;
    }
    unsigned char *ba = NULL, *bb = NULL;
    size_t la = 0, lb = 0;
    hdr_encode(a, &ba, &la);
    hdr_encode(b, &bb, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
}

static void assert_stats_same(const struct lg_stats *a, const struct lg_stats *b)
{
    assert_int_equal(a->requests, b->requests);
    assert_int_equal(a->ok, b->ok);
    for (int e = 0; e < LG_ERR_COUNT; e++)
        assert_int_equal(a->errors[e], b->errors[e]);
    for (int c = 0; c < 6; c++)
        assert_int_equal(a->status_class[c], b->status_class[c]);
    assert_int_equal(a->bytes_in, b->bytes_in);
    assert_int_equal(a->bytes_out, b->bytes_out);
    assert_int_equal(a->connects, b->connects);
    assert_int_equal(a->window_ns, b->window_ns);
    assert_int_equal(a->window_start_wall_ns, b->window_start_wall_ns);
    assert_true(a->achieved_rate == b->achieved_rate); /* exactly: 17 digits in the file */
    assert_int_equal(a->rate_missed, b->rate_missed);
    assert_int_equal(a->unsent, b->unsent);
    assert_hdr_same(a->latency, b->latency);
    assert_hdr_same(a->service, b->service);
    assert_hdr_same(a->issue_delay, b->issue_delay);
    assert_int_equal(a->nsecs, b->nsecs);
    for (size_t i = 0; i < a->nsecs; i++) {
        assert_int_equal(a->secs[i].requests, b->secs[i].requests);
        assert_int_equal(a->secs[i].errors, b->secs[i].errors);
        assert_int_equal(a->secs[i].bytes_in, b->secs[i].bytes_in);
        assert_int_equal(a->secs[i].p50_ns, b->secs[i].p50_ns);
        assert_int_equal(a->secs[i].p99_ns, b->secs[i].p99_ns);
        assert_hdr_same(a->secs[i].latency, b->secs[i].latency);
    }
    assert_int_equal(a->nextra, b->nextra);
    for (size_t i = 0; i < a->nextra; i++) {
        const struct lg_extra *x = &a->extra[i], *y = &b->extra[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->kind, y->kind);
        assert_int_equal(x->count, y->count);
        assert_int_equal(x->value, y->value);
        assert_hdr_same(x->hdr, y->hdr);
        assert_int_equal(x->nsecs, y->nsecs);
        for (size_t j = 0; j < x->nsecs; j++)
            assert_int_equal(x->secs[j], y->secs[j]);
    }
}

static char *tmp_dir(void)
{
    char tmpl[] = "/tmp/test_stats_file_XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return xstrdup(tmpl);
}

/* Writes s to DIR/task-K.stats and reads it back. */
static struct lg_stats *round_trip(const struct lg_stats *s, const char *dir, size_t k)
{
    char *path = xasprintf("%s/task-%zu.stats", dir, k);
    char err[256] = "";
    int rc = lg_stats_write(s, path, err, sizeof(err));
    if (rc < 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    struct lg_stats *back = NULL;
    rc = lg_stats_read(path, &back, err, sizeof(err));
    if (rc < 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_stats_same(s, back);
    free(path);
    return back;
}

static void test_round_trip_and_merge(void **state)
{
    (void)state;
    rng_state = 42;
    struct reference ref;
    ref_init(&ref);
    struct lg_stats *tasks[NTASKS], *back[NTASKS];
    char *dir = tmp_dir();
    for (size_t k = 0; k < NTASKS; k++) {
        tasks[k] = make_task(k, &ref);
        back[k] = round_trip(tasks[k], dir, k);
    }

    struct lg_stats *m = NULL;
    char err[256] = "";
    int rc = lg_stats_merge(back, NTASKS, &m, err, sizeof(err));
    if (rc < 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);

    /* counters: sums */
    uint64_t requests = 0, ok = 0, errors[LG_ERR_COUNT] = {0}, bytes_in = 0, unsent = 0;
    for (size_t k = 0; k < NTASKS; k++) {
        requests += tasks[k]->requests;
        ok += tasks[k]->ok;
        bytes_in += tasks[k]->bytes_in;
        unsent += tasks[k]->unsent;
        for (int e = 0; e < LG_ERR_COUNT; e++)
            errors[e] += tasks[k]->errors[e];
    }
    assert_int_equal(m->requests, requests);
    assert_int_equal(m->ok, ok);
    for (int e = 0; e < LG_ERR_COUNT; e++)
        assert_int_equal(m->errors[e], errors[e]);
    assert_int_equal(m->status_class[2], ok);
    assert_int_equal(m->status_class[0], 0 + 1 + 2 + 3);
    assert_int_equal(m->bytes_in, bytes_in);
    assert_int_equal(m->bytes_out, 70001ULL * 10);
    assert_int_equal(m->connects, 4 * 4 + 6);
    assert_int_equal(m->unsent, unsent);
    assert_true(m->rate_missed);

    /* histograms: the merge equals recording every value into one histogram */
    assert_int_equal(hdr_count(m->latency), ok);
    assert_hdr_same(m->latency, ref.latency);
    assert_hdr_same(m->service, ref.service);
    assert_hdr_same(m->issue_delay, ref.issue_delay);
    static const double ps[] = {50, 90, 99, 99.9, 100};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(ps); i++)
        assert_int_equal(hdr_percentile(m->latency, ps[i]), hdr_percentile(ref.latency, ps[i]));
    assert_int_equal(hdr_max(m->latency), hdr_max(ref.latency));
    assert_int_equal(hdr_min(m->latency), hdr_min(ref.latency));

    /* why percentiles are never averaged: the slow task holds 0.6 % of the
     * requests, so the merged p99 lies in task 1's range (2-10 ms), while the
     * mean of the four p99s is pulled to ~50 ms by the slow task's own p99 */
    double avg_p99 = 0;
    for (size_t k = 0; k < NTASKS; k++)
        avg_p99 += (double)hdr_percentile(tasks[k]->latency, 99) / NTASKS;
    int64_t p99 = hdr_percentile(m->latency, 99);
    print_message("merged p99 %.3f ms, mean of the tasks' p99 %.3f ms\n", (double)p99 / 1e6,
                  avg_p99 / 1e6);
    assert_true(p99 <= 10 * MS + 10 * MS / 1000);
    assert_true(avg_p99 > 40.0 * MS);

    /* the window: earliest start to latest end */
    int64_t end = 0;
    for (size_t k = 0; k < NTASKS; k++) {
        int64_t e = tasks[k]->window_start_wall_ns + tasks[k]->window_ns;
        end = e > end ? e : end;
    }
    assert_int_equal(m->window_start_wall_ns, T0);
    assert_int_equal(m->window_ns, end - T0);
    assert_true(m->achieved_rate == (double)requests * 1e9 / (double)(end - T0));

    /* per-second series, aligned by wall clock (offsets 0, 1, 0, 2) */
    assert_int_equal(m->nsecs, 12); /* task 2: 0 + 12; task 1: 1 + 8; task 3: 2 + 6 */
    uint64_t sum = 0;
    for (size_t j = 0; j < m->nsecs; j++) {
        const struct lg_second *s = &m->secs[j];
        assert_int_equal(s->requests, ref.sec_requests[j]);
        assert_int_equal(s->errors, ref.sec_errors[j]);
        assert_int_equal(s->bytes_in, ref.sec_bytes[j]);
        assert_hdr_same(s->latency, ref.secs[j]);
        assert_int_equal(s->p50_ns, hdr_percentile(ref.secs[j], 50));
        assert_int_equal(s->p99_ns, hdr_percentile(ref.secs[j], 99));
        sum += s->requests;
    }
    assert_int_equal(sum, requests);
    /* the client's own results: summed, merged, aligned like the seconds */
    assert_int_equal(m->nextra, 5);
    assert_int_equal(lg_extra_value(m, "end_min", LG_EXTRA_MIN, 0), -3);  /* task 0's */
    assert_int_equal(lg_extra_value(m, "end_max", LG_EXTRA_MAX, 0), 22);  /* task 2's */
    assert_int_equal(lg_extra_value(m, "end_max", LG_EXTRA_MIN, 99), 99); /* name and kind */
    assert_int_equal(lg_extra_count(m, "output_tokens"), ref.tokens);
    assert_hdr_same(lg_extra_find(m, "ttft", LG_EXTRA_HDR)->hdr, ref.ttft);
    const struct lg_extra *ts = lg_extra_find(m, "output_tokens_s", LG_EXTRA_SECS);
    assert_non_null(ts);
    assert_int_equal(ts->nsecs, 12);
    for (size_t j = 0; j < ts->nsecs; j++)
        assert_int_equal(ts->secs[j], ref.tokens_secs[j]);
    assert_null(lg_extra_find(m, "ttft", LG_EXTRA_COUNTER)); /* name and kind */
    /* second 2 is the first the slow task (offset 2) contributes to */
    assert_true(m->secs[1].p99_ns < 50 * MS && m->secs[2].p99_ns >= 50 * MS);

    /* the merged result is a result too: it round-trips and merges again (here
     * with itself: every count doubles, percentiles stay) */
    struct lg_stats *mback = round_trip(m, dir, 99), *m2 = NULL;
    struct lg_stats *twice[] = {m, mback};
    assert_int_equal(lg_stats_merge(twice, 2, &m2, err, sizeof(err)), 0);
    assert_int_equal(m2->requests, 2 * requests);
    assert_int_equal(hdr_count(m2->latency), 2 * ok);
    assert_int_equal(hdr_percentile(m2->latency, 99), p99);
    assert_int_equal(m2->nsecs, m->nsecs);
    assert_int_equal(m2->window_ns, m->window_ns);

    /* a single input merges into itself */
    struct lg_stats *one = NULL;
    assert_int_equal(lg_stats_merge(&back[1], 1, &one, err, sizeof(err)), 0);
    assert_stats_same(one, back[1]);

    lg_stats_free(one);
    lg_stats_free(m2);
    lg_stats_free(mback);
    lg_stats_free(m);
    for (size_t k = 0; k < NTASKS; k++) {
        lg_stats_free(tasks[k]);
        lg_stats_free(back[k]);
    }
    ref_free(&ref);
    assert_int_equal(rm_rf(dir), 0);
    free(dir);
}

/* Inputs without per-second histograms (keep_second_hdrs off): merged
 * percentiles are unknown where they would have to be invented. */
static void test_missing_second_hdrs(void **state)
{
    (void)state;
    rng_state = 7;
    struct reference ref;
    ref_init(&ref);
    struct lg_stats *a = make_task(0, &ref), *b = make_task(3, &ref), *m = NULL;
    /* b (offset 2, 6 s) keeps no histograms; a covers seconds 0-9 */
    for (size_t i = 0; i < b->nsecs; i++) {
        hdr_free(b->secs[i].latency);
        b->secs[i].latency = NULL;
    }
    b->nsecs = 9; /* seconds 8-10: only b, with requests in 8 and none in 9 and 10 */
    b->secs = xrealloc(b->secs, b->nsecs * sizeof(*b->secs));
    b->secs[6] = (struct lg_second){.requests = 5, .p50_ns = 3 * MS, .p99_ns = 4 * MS};
    b->secs[7] = (struct lg_second){.requests = 2, .errors = 2, .p50_ns = -1, .p99_ns = -1};
    b->secs[8] = (struct lg_second){.p50_ns = -1, .p99_ns = -1};
    struct lg_stats *in[] = {a, b};
    char err[256] = "";
    assert_int_equal(lg_stats_merge(in, 2, &m, err, sizeof(err)), 0);
    assert_int_equal(m->nsecs, 11);
    /* 0, 1: only a, with histograms: known */
    assert_non_null(m->secs[0].latency);
    assert_int_equal(m->secs[0].p99_ns, a->secs[0].p99_ns);
    /* 2-7: a and b, b without: unknown */
    for (size_t j = 2; j < 8; j++) {
        assert_null(m->secs[j].latency);
        assert_int_equal(m->secs[j].p50_ns, -1);
        assert_int_equal(m->secs[j].p99_ns, -1);
        assert_int_equal(m->secs[j].requests, a->secs[j].requests + b->secs[j - 2].requests);
    }
    /* 8: a's last second and b's: unknown; 9: a's is gone, b's has only errors */
    assert_int_equal(m->secs[8].p99_ns, -1);
    assert_int_equal(m->secs[9].p99_ns, a->secs[9].p99_ns);
    assert_int_equal(m->secs[9].requests, a->secs[9].requests + 2);
    /* 10: b alone, no request: nothing unknown, nothing known */
    assert_int_equal(m->secs[10].requests, 0);
    assert_int_equal(m->secs[10].p50_ns, -1);
    assert_null(m->secs[10].latency);
    lg_stats_free(m);

    /* b alone: its own percentiles are exact (it is the only input) */
    assert_int_equal(lg_stats_merge(&b, 1, &m, err, sizeof(err)), 0);
    assert_int_equal(m->secs[6].p50_ns, 3 * MS);
    assert_int_equal(m->secs[6].p99_ns, 4 * MS);
    assert_null(m->secs[6].latency);
    lg_stats_free(m);

    lg_stats_free(a);
    lg_stats_free(b);
    ref_free(&ref);
}

static void test_merge_errors(void **state)
{
    (void)state;
    rng_state = 3;
    struct reference ref;
    ref_init(&ref);
    struct lg_stats *a = make_task(0, &ref), *b = make_task(1, &ref), *m = NULL;
    struct lg_stats *in[] = {a, b};
    char err[256] = "";

    assert_int_equal(lg_stats_merge(in, 0, &m, err, sizeof(err)), -EINVAL);

    /* open and closed loop */
    struct hdr *idl = b->issue_delay;
    b->issue_delay = NULL;
    assert_int_equal(lg_stats_merge(in, 2, &m, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "input 1: no issue-delay histogram"));
    b->issue_delay = idl;

    /* another configuration: merged within precision, counts exact */
    struct hdr *wide = NULL;
    assert_int_equal(hdr_init(1000, 2 * HOUR_NS, 2, &wide), 0);
    assert_int_equal(hdr_merge(wide, b->latency), 0);
    struct hdr *lat = b->latency;
    b->latency = wide;
    assert_int_equal(lg_stats_merge(in, 2, &m, err, sizeof(err)), 0);
    assert_int_equal(hdr_count(m->latency), a->ok + b->ok);
    assert_int_equal(hdr_max(m->latency), hdr_max(lat));
    assert_int_equal(hdr_sigfigs(m->latency), 3); /* configured like the first input */
    lg_stats_free(m);
    /* ... unless values lie above the first input's range: they would saturate */
    assert_int_equal(hdr_record(wide, HOUR_NS + SEC), 0);
    assert_int_equal(lg_stats_merge(in, 2, &m, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "input 1: latency: values up to"));
    b->latency = lat;
    hdr_free(wide);

    /* the client results of another driver (other names, or fewer) */
    free(b->extra[2].name);
    b->extra[2].name = xstrdup("tokens");
    assert_int_equal(lg_stats_merge(in, 2, &m, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "input 1: its client results (extra) are not those of input 0"));
    size_t nx = b->nextra;
    b->nextra = 2; /* the others are still freed below: only counted out */
    assert_int_equal(lg_stats_merge(in, 2, &m, err, sizeof(err)), -EINVAL);
    b->nextra = nx;
    free(b->extra[2].name);
    b->extra[2].name = xstrdup("output_tokens_s");

    /* counters that would overflow */
    a->bytes_out = UINT64_MAX - 1;
    assert_int_equal(lg_stats_merge(in, 2, &m, err, sizeof(err)), -EOVERFLOW);
    assert_non_null(strstr(err, "bytes_out"));
    a->bytes_out = 1;

    /* starts too far apart for a per-second series */
    b->window_start_wall_ns = T0 + (int64_t)LG_STATS_SECS_MAX * SEC;
    assert_int_equal(lg_stats_merge(in, 2, &m, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "input 1"));
    b->window_start_wall_ns = INT64_MIN;
    a->window_start_wall_ns = INT64_MAX - 1;
    assert_true(lg_stats_merge(in, 2, &m, err, sizeof(err)) < 0);

    lg_stats_free(a);
    lg_stats_free(b);
    ref_free(&ref);
}

/* ---- broken files ---- */

static char *dir_g;

static char *valid_text(void)
{
    rng_state = 11;
    struct reference ref;
    ref_init(&ref);
    struct lg_stats *s = make_task(1, &ref);
    char *text = NULL, err[256];
    size_t len = 0;
    assert_int_equal(lg_stats_dump(s, &text, &len, err, sizeof(err)), 0);
    assert_int_equal(strlen(text), len);
    lg_stats_free(s);
    ref_free(&ref);
    return text;
}

/* Writes text to a file, reads it: expects rc and a message with every needle. */
static void expect_read(const char *text, size_t len, int rc, const char *needle,
                        const char *needle2)
{
    char *path = path_join(dir_g, "bad.stats");
    assert_int_equal(write_file_atomic(path, text, len), 0);
    struct lg_stats *s = NULL;
    char err[256] = "";
    int r = lg_stats_read(path, &s, err, sizeof(err));
    if (r != rc || !strstr(err, needle) || (needle2 && !strstr(err, needle2)))
        print_error("got %d \"%s\", want %d and \"%s\"\n", r, err, rc, needle);
    assert_int_equal(r, rc);
    assert_null(s);
    assert_true(str_startswith(err, path)); /* the file is named */
    assert_non_null(strstr(err, needle));
    if (needle2)
        assert_non_null(strstr(err, needle2));
    free(path);
}

/* Parses the valid document, lets edit change it, and expects the read to fail. */
static void expect_edit(void (*edit)(json_t *root), const char *needle, const char *needle2)
{
    char *text = valid_text();
    json_t *root = json_loads(text, 0, NULL);
    assert_non_null(root);
    edit(root);
    char *bad = json_dumps(root, JSON_COMPACT);
    expect_read(bad, strlen(bad), -EINVAL, needle, needle2);
    free(bad);
    json_decref(root);
    free(text);
}

static json_t *sec1(json_t *root)
{
    return json_array_get(json_object_get(root, "secs"), 1);
}

static void e_version(json_t *r)
{
    json_object_set_new(r, "version", json_integer(3));
}
static json_t *extra(json_t *r, size_t i)
{
    return json_array_get(json_object_get(r, "extra"), i);
}
static void e_extra_v1(json_t *r)
{
    json_object_set_new(r, "version", json_integer(1));
}
static void e_extra_missing(json_t *r)
{
    json_object_del(r, "extra");
}
static void e_extra_name(json_t *r)
{
    json_object_set_new(extra(r, 1), "name", json_string("TTFT ms"));
}
static void e_extra_twice(json_t *r)
{
    json_object_set_new(extra(r, 2), "name", json_string("ttft"));
}
static void e_extra_two_values(json_t *r)
{
    json_object_set_new(extra(r, 0), "histogram", json_null());
}
static void e_extra_no_value(json_t *r)
{
    json_object_del(extra(r, 0), "counter");
}
static void e_extra_negative(json_t *r)
{
    json_array_set_new(json_object_get(extra(r, 2), "secs"), 1, json_integer(-1));
}
static void e_extra_hdr(json_t *r)
{
    json_object_set_new(extra(r, 1), "histogram", json_string("AAAA"));
}
static void e_format(json_t *r)
{
    json_object_set_new(r, "format", json_string("other"));
}
static void e_negative(json_t *r)
{
    json_object_set_new(r, "bytes_out", json_integer(-5));
}
static void e_negative_error(json_t *r)
{
    json_object_set_new(json_object_get(r, "errors"), "tls", json_integer(-1));
}
static void e_base64(json_t *r)
{
    json_object_set_new(sec1(r), "latency", json_string("U0hE*Q=="));
}
static void e_base64_top(json_t *r)
{
    json_object_set_new(r, "service", json_string("U0hEMQ"));
}
static void e_not_hdr(json_t *r)
{
    json_object_set_new(sec1(r), "latency", json_string("U0hEMQ==")); /* "SHD1" alone */
}
static void e_missing(json_t *r)
{
    json_object_del(r, "connects");
}
static void e_missing_hdr(json_t *r)
{
    json_object_del(r, "latency");
}
static void e_type(json_t *r)
{
    json_object_set_new(r, "window_ns", json_string("2s"));
}
static void e_real(json_t *r)
{
    json_object_set_new(sec1(r), "requests", json_real(1.5));
}
static void e_unknown(json_t *r)
{
    json_object_set_new(r, "latency_p99", json_integer(1));
}
static void e_unknown_class(json_t *r)
{
    json_object_set_new(json_object_get(r, "errors"), "dns", json_integer(0));
}
static void e_classes(json_t *r)
{
    json_array_remove(json_object_get(r, "status_class"), 5);
}
static void e_sum(json_t *r)
{
    json_object_set_new(r, "ok", json_integer(1));
}
static void e_sec_errors(json_t *r)
{
    json_object_set_new(sec1(r), "errors", json_integer(1000000));
}
static void e_p50(json_t *r)
{
    json_object_set_new(sec1(r), "p50_ns", json_integer(-2));
}
static void e_sec_type(json_t *r)
{
    json_array_set_new(json_object_get(r, "secs"), 3, json_integer(3));
}
static void e_rate(json_t *r)
{
    json_object_set_new(r, "achieved_rate", json_integer(-1));
}
static void e_bool(json_t *r)
{
    json_object_set_new(r, "rate_missed", json_integer(0));
}

static void test_bad_files(void **state)
{
    (void)state;
    dir_g = tmp_dir();
    char *text = valid_text();
    size_t len = strlen(text);

    /* the valid one reads */
    expect_read("", 0, -EINVAL, "not valid JSON", NULL);
    char *path = path_join(dir_g, "good.stats");
    assert_int_equal(write_file_atomic(path, text, len), 0);
    struct lg_stats *s = NULL;
    char err[256] = "";
    assert_int_equal(lg_stats_read(path, &s, err, sizeof(err)), 0);
    assert_non_null(s->issue_delay);
    lg_stats_free(s);
    /* version 1 (before client results) still reads, without extras */
    json_t *v1 = json_loads(text, 0, NULL);
    json_object_set_new(v1, "version", json_integer(1));
    json_object_del(v1, "extra");
    char *v1text = json_dumps(v1, 0);
    assert_int_equal(lg_stats_parse(v1text, strlen(v1text), "v1", &s, err, sizeof(err)), 0);
    assert_int_equal(s->nextra, 0);
    lg_stats_free(s);
    free(v1text);
    json_decref(v1);

    /* truncated anywhere: never a crash, always -EINVAL naming the file; a
     * truncated document is not JSON, so the position (not a field) is named */
    for (size_t cut = 0; cut < len - 1; cut += 1 + cut / 8) /* len - 1: all but the newline */
        expect_read(text, cut, -EINVAL, "not valid JSON", NULL);
    expect_read(text, len / 2, -EINVAL, "not valid JSON (line", NULL);
    expect_read("[1, 2]", 6, -EINVAL, "not a JSON object", NULL);
    expect_read("{}", 2, -EINVAL, "field format: missing", NULL);

    expect_edit(e_version, "field version", "version 3 is not supported");
    expect_edit(e_extra_v1, "field extra", "unknown field in version 1");
    expect_edit(e_extra_missing, "field extra", "missing");
    expect_edit(e_extra_name, "field extra[1].name", "not a name");
    expect_edit(e_extra_twice, "field extra[2].name", "'ttft' is used twice");
    expect_edit(e_extra_two_values, "field extra[0].name", "exactly one of");
    expect_edit(e_extra_no_value, "field extra[0].name", "exactly one of");
    expect_edit(e_extra_negative, "field extra[2].secs[]", "negative");
    expect_edit(e_extra_hdr, "field extra[1].histogram", "not a valid histogram");
    expect_edit(e_format, "field format", NULL);
    expect_edit(e_negative, "field bytes_out", "negative");
    expect_edit(e_negative_error, "field errors.tls", "negative");
    expect_edit(e_base64, "field secs[1].latency", "not valid base64");
    expect_edit(e_base64_top, "field service", "not valid base64");
    expect_edit(e_not_hdr, "field secs[1].latency", "not a valid histogram");
    expect_edit(e_missing, "field connects", "missing");
    expect_edit(e_missing_hdr, "field latency", "missing");
    expect_edit(e_type, "field window_ns", "not an integer");
    expect_edit(e_real, "field secs[1].requests", "not an integer");
    expect_edit(e_unknown, "field latency_p99", "unknown field");
    expect_edit(e_unknown_class, "field errors.dns", "unknown field");
    expect_edit(e_classes, "field status_class", "6 counts");
    expect_edit(e_sum, "field requests", "ok + errors");
    expect_edit(e_sec_errors, "field secs[1].errors", NULL);
    expect_edit(e_p50, "field secs[1].p50_ns", NULL);
    expect_edit(e_sec_type, "field secs[3]", "not an object");
    expect_edit(e_rate, "field achieved_rate", NULL);
    expect_edit(e_bool, "field rate_missed", NULL);

    /* duplicate keys, integers beyond int64 */
    const char *dup = "{\"format\": \"sonde-lg-stats\", \"format\": \"sonde-lg-stats\"}";
    expect_read(dup, strlen(dup), -EINVAL, "not valid JSON", "duplicate");
    const char *at = strstr(text, "\"bytes_out\": ");
    assert_non_null(at);
    at += strlen("\"bytes_out\": ");
    char *big = xasprintf("%.*s99999999999999999999%s", (int)(at - text), text,
                          at + strspn(at, "0123456789"));
    expect_read(big, strlen(big), -EINVAL, "not valid JSON", "too big");
    free(big);

    /* larger than 256 MiB (sparse) */
    char *huge = path_join(dir_g, "huge.stats");
    FILE *f = fopen(huge, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(truncate(huge, (off_t)LG_STATS_FILE_MAX + 1), 0);
    assert_int_equal(lg_stats_read(huge, &s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "larger than 256 MiB"));
    free(huge);

    /* a missing file is not invalid: its errno */
    char *none = path_join(dir_g, "none.stats");
    assert_int_equal(lg_stats_read(none, &s, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "none.stats: cannot read"));
    free(none);

    free(path);
    free(text);
    assert_int_equal(rm_rf(dir_g), 0);
    free(dir_g);
}

static void test_write_errors(void **state)
{
    (void)state;
    rng_state = 5;
    struct reference ref;
    ref_init(&ref);
    struct lg_stats *s = make_task(2, &ref);
    char err[256] = "";
    char *text = NULL;
    size_t len = 0;

    s->bytes_in = (uint64_t)INT64_MAX + 1;
    assert_int_equal(lg_stats_dump(s, &text, &len, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "field bytes_in"));
    s->bytes_in = (uint64_t)INT64_MAX; /* the largest that fits */
    assert_int_equal(lg_stats_dump(s, &text, &len, err, sizeof(err)), 0);
    struct lg_stats *back = NULL;
    assert_int_equal(lg_stats_parse(text, len, "mem", &back, err, sizeof(err)), 0);
    assert_stats_same(s, back);
    lg_stats_free(back);
    free(text);

    /* closed loop: no issue delay, and no per-second histograms */
    hdr_free(s->issue_delay);
    s->issue_delay = NULL;
    for (size_t i = 0; i < s->nsecs; i++) {
        hdr_free(s->secs[i].latency);
        s->secs[i].latency = NULL;
    }
    assert_int_equal(lg_stats_dump(s, &text, &len, err, sizeof(err)), 0);
    assert_non_null(strstr(text, "\"issue_delay\": null"));
    assert_int_equal(lg_stats_parse(text, len, "mem", &back, err, sizeof(err)), 0);
    assert_stats_same(s, back);
    lg_stats_free(back);
    free(text);

    struct hdr *svc = s->service;
    s->service = NULL;
    assert_int_equal(lg_stats_dump(s, &text, &len, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "service"));
    s->service = svc;

    assert_int_equal(lg_stats_write(s, "/nonexistent-dir/x.stats", err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent-dir/x.stats: cannot write"));

    lg_stats_free(s);
    ref_free(&ref);
}

static void test_base64(void **state)
{
    (void)state;
    /* RFC 4648 section 10 */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(plain); i++) {
        size_t n = 0;
        char *e = base64_encode(plain[i], strlen(plain[i]), &n);
        assert_string_equal(e, coded[i]);
        assert_int_equal(n, strlen(coded[i]));
        unsigned char *d = NULL;
        assert_int_equal(base64_decode(e, n, &d, &n), 0);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(d, plain[i], n);
        free(d);
        free(e);
    }
    /* every byte value */
    unsigned char all[256];
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (unsigned char)i;
    size_t n = 0;
    char *e = base64_encode(all, sizeof(all), &n);
    unsigned char *d = NULL;
    assert_int_equal(base64_decode(e, n, &d, &n), 0);
    assert_int_equal(n, sizeof(all));
    assert_memory_equal(d, all, n);
    free(d);
    free(e);
    /* strict: length, alphabet, padding, unused bits */
    static const char *const bad[] = {
        "Zg",    "Zg=",  "Zg===", "Z===",     "====",    "Zm9v\n",    "Zm 9v",
        "Zm9-",  "Zm9_", "Zh==",  "Zm9=Zm9v", "=Zm9",    "Zm8=Zg==",  "Zm9",
        "Zm9vY", "Zm+=", "A=B=",  "Zg=A",     "Zm9vYg=", "Zm9vYg===",
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(bad); i++) {
        d = NULL;
        if (base64_decode(bad[i], strlen(bad[i]), &d, &n) != -EINVAL)
            print_error("accepted \"%s\"\n", bad[i]);
        assert_int_equal(base64_decode(bad[i], strlen(bad[i]), &d, &n), -EINVAL);
        assert_null(d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_merge), cmocka_unit_test(test_missing_second_hdrs),
        cmocka_unit_test(test_merge_errors),         cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_write_errors),         cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
