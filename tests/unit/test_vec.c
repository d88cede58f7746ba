/* test_vec.c — vector datasets, exact ground truth and recall@k: hand-made recall cases
 * (ties, duplicates, repeats, k beyond the collection, filters), brute force against a
 * naive full sort, against FAISS's IndexFlat when sonde has FAISS, synthetic sets
 * reproducible from their seed, the ground-truth cache and a file's neighbours. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "util/util.h"
#include "vector/vec.h"
#if SONDE_HAVE_FAISS
#include "vector/faiss_wrap.h"
#endif

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A dataset from literal rows (owned copies), finished (hash; cosine normalised). */
static void make(struct vec_dataset *ds, enum vec_metric m, const float *base, size_t n,
                 const float *q, size_t nq, size_t dim)
{
    memset(ds, 0, sizeof(*ds));
    ds->metric = m;
    ds->base = (struct vec_mat){n, dim, xmalloc(n * dim * sizeof(float)), NULL, 0};
    ds->queries = (struct vec_mat){nq, dim, xmalloc(nq * dim * sizeof(float)), NULL, 0};
    memcpy(ds->base.data, base, n * dim * sizeof(float));
    memcpy(ds->queries.data, q, nq * dim * sizeof(float));
    char err[256];
    if (vec_dataset_finish(ds, err, sizeof(err)) < 0)
        fail_msg("finish: %s", err);
}

static void truth(const struct vec_dataset *ds, size_t k, struct vec_nbrs *t)
{
    char err[256];
    if (vec_truth_compute(ds, k, 2, NULL, t, err, sizeof(err)) < 0)
        fail_msg("truth: %s", err);
}

static void test_recall_cases(void **state)
{
    (void)state;
    /* 1-D points 0, 1, 1 (a duplicate), 2, 3, 10; query at 0 */
    const float base[] = {0, 1, 1, 2, 3, 10}, q[] = {0};
    struct vec_dataset ds;
    make(&ds, VEC_L2, base, 6, q, 1, 1);
    struct vec_nbrs t;
    truth(&ds, 2, &t);
    assert_int_equal(t.ids[0], 0);
    assert_int_equal(t.ids[1], 1); /* tie between rows 1 and 2: the smaller id */
    int64_t r1[] = {0, 1}, r2[] = {0, 2}, r3[] = {0, 3}, r4[] = {1, 1}, r5[] = {2, 0};
    assert_true(vec_recall(&ds, &t, 0, r1, 2, 2) == 1.0);
    assert_true(vec_recall(&ds, &t, 0, r2, 2, 2) == 1.0); /* the other tied row counts */
    assert_true(vec_recall(&ds, &t, 0, r3, 2, 2) == 0.5); /* row 3 is farther */
    assert_true(vec_recall(&ds, &t, 0, r4, 2, 2) == 0.5); /* a repeat counts once */
    assert_true(vec_recall(&ds, &t, 0, r5, 2, 2) == 1.0); /* order within k does not matter */
    assert_true(vec_recall(&ds, &t, 0, r5, 2, 1) == 0.0); /* recall@1: the first only */
    assert_true(vec_recall(&ds, &t, 0, r3, 1, 2) == 0.5); /* fewer results than k */
    int64_t bad[] = {-1, 99};
    assert_true(vec_recall(&ds, &t, 0, bad, 2, 2) == 0.0); /* none, out of range */
    vec_nbrs_free(&t);

    /* k beyond the collection: 6 rows, k = 10; the denominator is 6 */
    truth(&ds, 10, &t);
    assert_int_equal(t.ids[5], 5);
    assert_int_equal(t.ids[6], -1);
    int64_t all[] = {5, 4, 3, 2, 1, 0}, five[] = {0, 1, 2, 3, 4};
    assert_true(vec_recall(&ds, &t, 0, all, 6, 10) == 1.0);
    assert_true(fabs(vec_recall(&ds, &t, 0, five, 5, 10) - 5.0 / 6) < 1e-12);
    vec_nbrs_free(&t);

    /* filtered: labels 0,1,0,1,0,1; the query wants label 1 -> rows 1, 3, 5 */
    vec_dataset_label(&ds, 2, 1);
    for (int i = 0; i < 6; i++)
        ds.base_label[i] = i % 2;
    ds.query_label[0] = 1;
    truth(&ds, 2, &t);
    assert_int_equal(t.ids[0], 1);
    assert_int_equal(t.ids[1], 3);
    int64_t f1[] = {1, 3}, f2[] = {2, 1}, f3[] = {1, 5};
    assert_true(vec_recall(&ds, &t, 0, f1, 2, 2) == 1.0);
    assert_true(vec_recall(&ds, &t, 0, f2, 2, 2) == 0.5); /* row 2 is nearer, wrong label */
    assert_true(vec_recall(&ds, &t, 0, f3, 2, 2) == 0.5);
    vec_nbrs_free(&t);
    vec_dataset_free(&ds);

    /* summary: nearest-rank percentiles */
    double v[] = {1, 0.5, 1, 1, 0.9, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.2};
    struct vec_recall_sum s;
    vec_recall_summary(v, 20, &s);
    assert_true(fabs(s.mean - 18.6 / 20) < 1e-12);
    assert_true(s.min == 0.2 && s.p5 == 0.2 && s.p50 == 1.0);
    assert_true(fabs(s.perfect - 17.0 / 20) < 1e-12);
}

/* The k nearest by a full sort of every distance, for comparison. */
struct pair {
    float d;
    int64_t id;
};
static int cmp_pair(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static void test_brute_vs_sort(void **state)
{
    (void)state;
    const enum vec_metric ms[] = {VEC_L2, VEC_IP, VEC_COSINE};
    for (int mi = 0; mi < 3; mi++) {
        struct vec_synth s = {VEC_SYNTH_CLUSTERED, 3001, 77, 19, 7, 0.3, 42};
        struct vec_dataset ds;
        char err[256];
        assert_int_equal(vec_synth_make(&s, ms[mi], &ds, err, sizeof(err)), 0);
        struct vec_nbrs t;
        truth(&ds, 25, &t);
        struct pair *p = xmalloc(ds.base.n * sizeof(*p));
        for (size_t q = 0; q < ds.queries.n; q++) {
            for (size_t i = 0; i < ds.base.n; i++)
                p[i] = (struct pair){
                    vec_distance(ds.metric, ds.queries.data + q * 19, ds.base.data + i * 19, 19),
                    (int64_t)i};
            qsort(p, ds.base.n, sizeof(*p), cmp_pair);
            for (size_t j = 0; j < 25; j++) {
                assert_int_equal(t.ids[q * 25 + j], p[j].id);
                assert_true(t.dist[q * 25 + j] == p[j].d);
            }
            assert_true(vec_recall(&ds, &t, q, t.ids + q * 25, 25, 25) == 1.0);
        }
        free(p);
        vec_nbrs_free(&t);
        vec_dataset_free(&ds);
    }
}

#if SONDE_HAVE_FAISS
/* FAISS's IndexFlat gives the same neighbours (ties may be ordered otherwise: every
 * id FAISS returns must be within the exact k-th distance) and the same distances. */
static void test_brute_vs_faiss_flat(void **state)
{
    (void)state;
    const enum vec_metric ms[] = {VEC_L2, VEC_IP, VEC_COSINE};
    for (int mi = 0; mi < 3; mi++) {
        struct vec_synth s = {VEC_SYNTH_CLUSTERED, 5000, 200, 32, 20, 0.2, 7};
        struct vec_dataset ds;
        char err[256];
        assert_int_equal(vec_synth_make(&s, ms[mi], &ds, err, sizeof(err)), 0);
        size_t k = 10, nq = ds.queries.n;
        struct vec_nbrs t;
        truth(&ds, k, &t);
        struct fw_index *ix = NULL;
        if (fw_create("Flat", 32, ms[mi] != VEC_L2, &ix, err, sizeof(err)) < 0 ||
            fw_add(ix, ds.base.n, ds.base.data, err, sizeof(err)) < 0)
            fail_msg("faiss: %s", err);
        float *dist = xmalloc(nq * k * sizeof(float));
        int64_t *ids = xmalloc(nq * k * sizeof(int64_t));
        assert_int_equal(fw_search(ix, nq, ds.queries.data, k, dist, ids, err, sizeof(err)), 0);
        size_t same = 0;
        for (size_t q = 0; q < nq; q++) {
            assert_true(vec_recall(&ds, &t, q, ids + q * k, k, k) == 1.0);
            for (size_t j = 0; j < k; j++) {
                /* FAISS: squared L2, or the inner product (ours is negated) */
                float fd = ms[mi] == VEC_L2 ? dist[q * k + j] : -dist[q * k + j];
                float ours = t.dist[q * k + j];
                assert_true(fabsf(fd - ours) <= 1e-4f * (1 + fabsf(ours)));
                same += ids[q * k + j] == t.ids[q * k + j];
            }
        }
        assert_true(same >= nq * k * 99 / 100); /* only ties may be ordered otherwise */
        free(dist);
        free(ids);
        fw_free(ix);
        vec_nbrs_free(&t);
        vec_dataset_free(&ds);
    }
}
#endif

static void test_synthetic(void **state)
{
    (void)state;
    char err[256];
    struct vec_synth s = {VEC_SYNTH_CLUSTERED, 2000, 50, 16, 10, 0.05, 3};
    struct vec_dataset a, b, c, d;
    assert_int_equal(vec_synth_make(&s, VEC_L2, &a, err, sizeof(err)), 0);
    assert_int_equal(vec_synth_make(&s, VEC_L2, &b, err, sizeof(err)), 0);
    assert_memory_equal(a.hash, b.hash, 32);
    assert_memory_equal(a.base.data, b.base.data, 2000 * 16 * sizeof(float));
    s.nq = 60; /* more queries: the same base, the same first queries */
    assert_int_equal(vec_synth_make(&s, VEC_L2, &c, err, sizeof(err)), 0);
    assert_memory_equal(a.base.data, c.base.data, 2000 * 16 * sizeof(float));
    assert_memory_equal(a.queries.data, c.queries.data, 50 * 16 * sizeof(float));
    assert_memory_not_equal(a.hash, c.hash, 32);
    s.nq = 50;
    s.seed = 4;
    assert_int_equal(vec_synth_make(&s, VEC_L2, &d, err, sizeof(err)), 0);
    assert_memory_not_equal(a.hash, d.hash, 32);
    /* clustered: a point's nearest neighbour is far nearer than a random pair */
    double near = 0, any = 0;
    for (size_t i = 0; i < 50; i++) {
        float best = INFINITY;
        for (size_t j = 0; j < 2000; j++) {
            float dd = vec_distance(VEC_L2, a.queries.data + i * 16, a.base.data + j * 16, 16);
            best = dd < best ? dd : best;
        }
        near += best;
        any += vec_distance(VEC_L2, a.queries.data + i * 16, a.base.data + i * 16 * 7, 16);
    }
    assert_true(near * 20 < any);
    /* labels change the hash; cosine rows have length 1 */
    unsigned char h[32];
    memcpy(h, b.hash, 32);
    vec_dataset_label(&b, 4, 1);
    assert_memory_not_equal(h, b.hash, 32);
    for (size_t i = 0; i < 2000; i++)
        assert_true(b.base_label[i] >= 0 && b.base_label[i] < 4);
    vec_dataset_free(&b);
    assert_int_equal(vec_synth_make(&s, VEC_COSINE, &b, err, sizeof(err)), 0);
    float n2 = -vec_distance(VEC_IP, b.base.data + 5 * 16, b.base.data + 5 * 16, 16);
    assert_true(fabsf(n2 - 1) < 1e-5f);
    /* bad shapes */
    struct vec_synth bad = {VEC_SYNTH_CLUSTERED, 10, 1, 4, 11, 0.1, 1};
    vec_dataset_free(&d);
    assert_int_equal(vec_synth_make(&bad, VEC_L2, &d, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "clusters"));
    vec_dataset_free(&a);
    vec_dataset_free(&b);
    vec_dataset_free(&c);
    vec_dataset_free(&d);
}

static void test_cache_and_file_truth(void **state)
{
    (void)state;
    char err[256], dir[] = "/tmp/sonde-test-vec-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *cache = path_join(dir, "truth");
    struct vec_synth s = {VEC_SYNTH_UNIFORM, 1500, 40, 8, 0, 0, 9};
    struct vec_dataset ds;
    assert_int_equal(vec_synth_make(&s, VEC_L2, &ds, err, sizeof(err)), 0);
    struct vec_nbrs t1, t2, t3;
    const char *src;
    assert_int_equal(vec_truth_get(&ds, 5, 2, NULL, cache, 0, &t1, &src, err, sizeof(err)), 0);
    assert_string_equal(src, "computed");
    assert_int_equal(vec_truth_get(&ds, 5, 2, NULL, cache, 0, &t2, &src, err, sizeof(err)), 0);
    assert_string_equal(src, "cache");
    assert_memory_equal(t1.ids, t2.ids, 40 * 5 * sizeof(int64_t));
    assert_memory_equal(t1.dist, t2.dist, 40 * 5 * sizeof(float));
    vec_nbrs_free(&t2);
    /* another k is another entry; a damaged entry is computed again */
    assert_int_equal(vec_truth_get(&ds, 6, 2, NULL, cache, 0, &t2, &src, err, sizeof(err)), 0);
    assert_string_equal(src, "computed");
    vec_nbrs_free(&t2);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "for f in %s/*-k5.bin; do truncate -s 100 \"$f\"; done", cache);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(vec_truth_get(&ds, 5, 2, NULL, cache, 0, &t2, &src, err, sizeof(err)), 0);
    assert_string_equal(src, "computed");
    assert_memory_equal(t1.ids, t2.ids, 40 * 5 * sizeof(int64_t));
    vec_nbrs_free(&t2);

    /* a file's neighbours: used when they agree on the sample, refused otherwise */
    ds.file_truth.nq = 40;
    ds.file_truth.k = 5;
    ds.file_truth.ids = xmalloc(40 * 5 * sizeof(int64_t));
    memcpy(ds.file_truth.ids, t1.ids, 40 * 5 * sizeof(int64_t));
    assert_int_equal(vec_truth_get(&ds, 5, 2, NULL, NULL, 10, &t3, &src, err, sizeof(err)), 0);
    assert_string_equal(src, "file");
    assert_memory_equal(t1.ids, t3.ids, 40 * 5 * sizeof(int64_t));
    assert_true(fabsf(t3.dist[7] - t1.dist[7]) <= 1e-6f);
    vec_nbrs_free(&t3);
    /* the order within a row is the file's business: rows are sorted; a repeat is refused */
    int64_t *row = ds.file_truth.ids + 7 * 5, tmp = row[0];
    row[0] = row[4];
    row[4] = tmp;
    assert_int_equal(vec_truth_get(&ds, 5, 2, NULL, NULL, 10, &t3, &src, err, sizeof(err)), 0);
    assert_memory_equal(t1.ids, t3.ids, 40 * 5 * sizeof(int64_t));
    vec_nbrs_free(&t3);
    row[4] = row[1];
    assert_int_equal(vec_truth_get(&ds, 5, 2, NULL, NULL, 10, &t3, &src, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "twice"));
    memcpy(ds.file_truth.ids, t1.ids, 40 * 5 * sizeof(int64_t));
    ds.file_truth.ids[4 * 5 + 1] = t1.ids[4 * 5 + 1] == 0 ? 1 : 0; /* query 4 (sampled) */
    assert_int_equal(vec_truth_get(&ds, 5, 2, NULL, NULL, 10, &t3, &src, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "disagree"));
    /* asking more neighbours than the file has: computed */
    assert_int_equal(vec_truth_get(&ds, 7, 2, NULL, NULL, 10, &t3, &src, err, sizeof(err)), 0);
    assert_string_equal(src, "computed");
    vec_nbrs_free(&t3);
    /* a stop ends the computation: nothing half-done is returned or cached */
    atomic_bool stop = true;
    assert_int_equal(vec_truth_get(&ds, 9, 2, &stop, cache, 0, &t3, &src, err, sizeof(err)),
                     -ECANCELED);
    assert_null(t3.ids);
    assert_non_null(strstr(err, "stopped"));
    stop = false;
    assert_int_equal(vec_truth_get(&ds, 9, 2, &stop, cache, 0, &t3, &src, err, sizeof(err)), 0);
    assert_string_equal(src, "computed");
    vec_nbrs_free(&t3);
    vec_nbrs_free(&t1);
    vec_dataset_free(&ds);
    rm_rf(dir);
    free(cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recall_cases),
        cmocka_unit_test(test_brute_vs_sort),
#if SONDE_HAVE_FAISS
        cmocka_unit_test(test_brute_vs_faiss_flat),
#endif
        cmocka_unit_test(test_synthetic),
        cmocka_unit_test(test_cache_and_file_truth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
