/* test_faiss_wrap.c — the C interface to FAISS (src/vector/faiss_wrap.cpp): exact
 * search with both metrics, training, search parameters, FAISS's errors turned into
 * messages, and the index written, read back and sized. Built only with FAISS. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "vector/faiss_wrap.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* FAISS 1.7.3's read_index leaks the index it was filling when the file ends too
 * soon (no RAII there): the truncated-file check runs with LeakSanitizer off. */
#if defined(__SANITIZE_ADDRESS__)
#define LSAN_HERE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LSAN_HERE 1
#endif
#endif
#ifdef LSAN_HERE
#include <sanitizer/lsan_interface.h>
#define LSAN_DISABLE() __lsan_disable()
#define LSAN_ENABLE()  __lsan_enable()
#else
#define LSAN_DISABLE() ((void)0)
#define LSAN_ENABLE()  ((void)0)
#endif

#define N   300
#define DIM 16

/* n*dim floats uniform in [-1, 1) from a fixed seed (xorshift64*). */
static float *random_rows(size_t n, size_t dim, uint64_t seed)
{
    float *x = malloc(n * dim * sizeof(*x));
    assert_non_null(x);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n * dim; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        uint64_t r = s * 0x2545F4914F6CDD1Dull;
        x[i] = (float)((double)(r >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
    }
    return x;
}

static struct fw_index *create(const char *factory, int inner_product)
{
    struct fw_index *ix = NULL;
    char err[512] = "";
    if (fw_create(factory, DIM, inner_product, &ix, err, sizeof(err)) != 0)
        fail_msg("fw_create(%s): %s", factory, err);
    assert_non_null(ix);
    return ix;
}

static void add(struct fw_index *ix, size_t n, const float *x)
{
    char err[512] = "";
    if (fw_add(ix, n, x, err, sizeof(err)) != 0)
        fail_msg("fw_add: %s", err);
}

static void search(struct fw_index *ix, size_t n, const float *x, size_t k, float *dist,
                   int64_t *labels)
{
    char err[512] = "";
    if (fw_search(ix, n, x, k, dist, labels, err, sizeof(err)) != 0)
        fail_msg("fw_search: %s", err);
}

static void set_param(struct fw_index *ix, const char *name, double v)
{
    char err[512] = "";
    if (fw_set_param(ix, name, v, err, sizeof(err)) != 0)
        fail_msg("fw_set_param(%s, %g): %s", name, v, err);
}

static void assert_err_has(const char *err, const char *want)
{
    if (!strstr(err, want))
        fail_msg("error '%s' lacks '%s'", err, want);
}

static double l2sq(const float *a, const float *b)
{
    double s = 0;
    for (size_t j = 0; j < DIM; j++)
        s += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
    return s;
}

static double dot(const float *a, const float *b)
{
    double s = 0;
    for (size_t j = 0; j < DIM; j++)
        s += (double)a[j] * b[j];
    return s;
}

/* Every base row is its own nearest neighbour at distance 0; the second one is the
 * nearest other row by brute force, at its squared L2 distance. */
static void test_flat_l2(void **state)
{
    (void)state;
    const char *v = fw_version();
    assert_non_null(v);
    assert_non_null(strchr(v, '.'));
    float *x = random_rows(N, DIM, 1);
    struct fw_index *ix = create("Flat", 0);
    fw_set_threads(ix, 1);
    assert_int_equal(fw_needs_training(ix), 0);
    assert_int_equal(fw_ntotal(ix), 0);
    add(ix, N, x);
    assert_int_equal(fw_ntotal(ix), N);
    float dist[N * 2];
    int64_t labels[N * 2];
    search(ix, N, x, 2, dist, labels);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(labels[2 * i], (int64_t)i);
        assert_true(fabsf(dist[2 * i]) < 1e-4f);
        size_t best = i == 0 ? 1 : 0;
        for (size_t j = 0; j < N; j++)
            if (j != i && l2sq(x + i * DIM, x + j * DIM) < l2sq(x + i * DIM, x + best * DIM))
                best = j;
        assert_int_equal(labels[2 * i + 1], (int64_t)best);
        assert_true(fabs(dist[2 * i + 1] - l2sq(x + i * DIM, x + best * DIM)) < 1e-3);
    }
    /* More neighbours than rows: the rest are -1. */
    float d5[N + 5];
    int64_t l5[N + 5];
    search(ix, 1, x, N + 5, d5, l5);
    assert_int_equal(l5[N - 1] >= 0, 1);
    assert_int_equal(l5[N], -1);
    fw_free(ix);
    free(x);
}

/* METRIC_INNER_PRODUCT: the largest inner product first, the distance is it. */
static void test_inner_product(void **state)
{
    (void)state;
    float *x = random_rows(N, DIM, 2);
    float *q = random_rows(10, DIM, 3);
    struct fw_index *ix = create("Flat", 1);
    add(ix, N, x);
    float dist[10 * 3];
    int64_t labels[10 * 3];
    search(ix, 10, q, 3, dist, labels);
    for (size_t i = 0; i < 10; i++) {
        size_t best = 0;
        for (size_t j = 1; j < N; j++)
            if (dot(q + i * DIM, x + j * DIM) > dot(q + i * DIM, x + best * DIM))
                best = j;
        assert_int_equal(labels[3 * i], (int64_t)best);
        assert_true(fabs(dist[3 * i] - dot(q + i * DIM, x + best * DIM)) < 1e-4);
        assert_true(dist[3 * i] >= dist[3 * i + 1]);
        assert_true(dist[3 * i + 1] >= dist[3 * i + 2]);
    }
    fw_free(ix);
    free(q);
    free(x);
}

/* IVF must be trained: adding first fails with a message and changes nothing. */
static void test_ivf_training(void **state)
{
    (void)state;
    float *x = random_rows(N, DIM, 4);
    struct fw_index *ix = create("IVF4,Flat", 0);
    assert_int_equal(fw_needs_training(ix), 1);
    char err[512] = "";
    assert_int_equal(fw_add(ix, N, x, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "trained");
    assert_int_equal(fw_ntotal(ix), 0);
    err[0] = '\0';
    float d;
    int64_t l;
    assert_int_equal(fw_search(ix, 1, x, 1, &d, &l, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "trained");
    assert_int_equal(fw_train(ix, 0, x, err, sizeof(err)), -EINVAL);
    if (fw_train(ix, N, x, err, sizeof(err)) != 0)
        fail_msg("fw_train: %s", err);
    assert_int_equal(fw_needs_training(ix), 0);
    add(ix, N, x);
    assert_int_equal(fw_ntotal(ix), N);
    set_param(ix, "nprobe", 4); /* every list: exact */
    float dist[N];
    int64_t labels[N];
    search(ix, N, x, 1, dist, labels);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(labels[i], (int64_t)i);
        assert_true(fabsf(dist[i]) < 1e-4f);
    }
    fw_free(ix);
    free(x);
}

/* Parameters go through ParameterSpace: known ones accepted, others rejected with
 * FAISS's own message. */
static void test_params(void **state)
{
    (void)state;
    float *x = random_rows(N, DIM, 5);
    struct fw_index *hnsw = create("HNSW32", 0);
    assert_int_equal(fw_needs_training(hnsw), 0);
    add(hnsw, N, x);
    set_param(hnsw, "efSearch", 64);
    float dist[N];
    int64_t labels[N];
    search(hnsw, N, x, 1, dist, labels);
    size_t self = 0;
    for (size_t i = 0; i < N; i++)
        self += labels[i] == (int64_t)i;
    assert_true(self >= N * 95 / 100);

    char err[512] = "";
    assert_int_equal(fw_set_param(hnsw, "bogus", 1, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "could not set parameter bogus");
    assert_null(strstr(err, "Error in ")); /* FAISS's location prefix is dropped */
    err[0] = '\0';
    assert_int_equal(fw_set_param(hnsw, "nprobe", 4, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "nprobe");
    err[0] = '\0';
    assert_int_equal(fw_set_param(hnsw, "efSearch", NAN, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "finite");
    assert_int_equal(fw_set_param(hnsw, "", 1, err, sizeof(err)), -EINVAL);
    assert_int_equal(fw_set_param(hnsw, NULL, 1, err, sizeof(err)), -EINVAL);
    fw_free(hnsw);

    struct fw_index *ivf = create("IVF4,Flat", 0);
    set_param(ivf, "nprobe", 2);
    assert_int_equal(fw_set_param(ivf, "efSearch", 16, err, sizeof(err)), -EINVAL);
    fw_free(ivf);
    free(x);
}

/* Bad arguments and factory strings: an error and a message, never a crash. */
static void test_errors(void **state)
{
    (void)state;
    static char junk;
    struct fw_index *ix = (struct fw_index *)(void *)&junk; /* must be reset to NULL */
    char err[512] = "";
    assert_int_equal(fw_create("NotAnIndex", DIM, 0, &ix, err, sizeof(err)), -EINVAL);
    assert_null(ix);
    assert_err_has(err, "NotAnIndex");
    err[0] = '\0';
    assert_int_equal(fw_create("IVF4,Bogus", DIM, 0, &ix, err, sizeof(err)), -EINVAL);
    assert_null(ix);
    assert_true(err[0] != '\0');
    assert_int_equal(fw_create("Flat", 0, 0, &ix, err, sizeof(err)), -EINVAL);
    assert_int_equal(fw_create(NULL, DIM, 0, &ix, err, sizeof(err)), -EINVAL);
    assert_int_equal(fw_create("", DIM, 0, &ix, err, sizeof(err)), -EINVAL);
    assert_int_equal(fw_create("Flat", DIM, 0, NULL, err, sizeof(err)), -EINVAL);
    /* A too-small buffer is truncated, and no buffer is fine. */
    char small[8];
    assert_int_equal(fw_create("NotAnIndex", DIM, 0, &ix, small, sizeof(small)), -EINVAL);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(fw_create("NotAnIndex", DIM, 0, &ix, NULL, 0), -EINVAL);

    ix = create("Flat", 0);
    float q[DIM] = {0};
    float d[4];
    int64_t l[4];
    assert_int_equal(fw_search(ix, 1, q, 0, d, l, err, sizeof(err)), -EINVAL);
    assert_int_equal(fw_search(ix, 1, NULL, 1, d, l, err, sizeof(err)), -EINVAL);
    assert_int_equal(fw_search(ix, 1, q, 1, NULL, l, err, sizeof(err)), -EINVAL);
    assert_int_equal(fw_search(NULL, 1, q, 1, d, l, err, sizeof(err)), -EINVAL);
    assert_int_equal(fw_search(ix, 0, q, 1, d, l, err, sizeof(err)), 0);
    assert_int_equal(fw_add(ix, 1, NULL, err, sizeof(err)), -EINVAL);
    assert_int_equal(fw_add(ix, 0, NULL, err, sizeof(err)), 0);
    assert_int_equal(fw_add(NULL, 1, q, err, sizeof(err)), -EINVAL);
    assert_int_equal(fw_train(NULL, 1, q, err, sizeof(err)), -EINVAL);
    size_t bytes = 1;
    assert_int_equal(fw_size(NULL, &bytes, err, sizeof(err)), -EINVAL);
    assert_int_equal(fw_size(ix, NULL, err, sizeof(err)), -EINVAL);
    assert_int_equal(fw_needs_training(NULL), 0);
    assert_int_equal(fw_ntotal(NULL), 0);
    fw_free(ix);
    fw_free(NULL);
}

/* An index written and read back answers exactly as before; a missing file is
 * -ENOENT, a broken one -EINVAL naming the file; a failed write leaves nothing. */
static void test_write_read(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_faiss_wrap_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[sizeof(dir) + 32], bad[sizeof(dir) + 32];
    snprintf(path, sizeof(path), "%s/hnsw.index", dir);
    snprintf(bad, sizeof(bad), "%s/bad.index", dir);
    float *x = random_rows(N, DIM, 6);
    float *q = random_rows(20, DIM, 7);
    struct fw_index *a = create("HNSW32", 0);
    add(a, N, x);
    set_param(a, "efSearch", 40);
    char err[512] = "";
    if (fw_write(a, path, err, sizeof(err)) != 0)
        fail_msg("fw_write: %s", err);
    struct fw_index *b = NULL;
    if (fw_read(path, &b, err, sizeof(err)) != 0)
        fail_msg("fw_read: %s", err);
    assert_int_equal(fw_ntotal(b), N);
    set_param(b, "efSearch", 40);
    float da[20 * 10], db[20 * 10];
    int64_t la[20 * 10], lb[20 * 10];
    search(a, 20, q, 10, da, la);
    search(b, 20, q, 10, db, lb);
    assert_memory_equal(la, lb, sizeof(la));
    assert_memory_equal(da, db, sizeof(da));
    size_t sa = 0, sb = 0;
    assert_int_equal(fw_size(a, &sa, err, sizeof(err)), 0);
    assert_int_equal(fw_size(b, &sb, err, sizeof(err)), 0);
    assert_int_equal(sa, sb);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    assert_int_equal((size_t)ftell(f), sa);
    fclose(f);
    fw_free(b);
    fw_free(a);

    static char junk;
    b = (struct fw_index *)(void *)&junk; /* must be reset to NULL */
    char missing[sizeof(dir) + 32];
    snprintf(missing, sizeof(missing), "%s/none.index", dir);
    assert_int_equal(fw_read(missing, &b, err, sizeof(err)), -ENOENT);
    assert_null(b);
    assert_err_has(err, "none.index");
    f = fopen(bad, "wb");
    assert_non_null(f);
    fputs("this is not an index", f);
    fclose(f);
    err[0] = '\0';
    assert_int_equal(fw_read(bad, &b, err, sizeof(err)), -EINVAL);
    assert_null(b);
    assert_err_has(err, "bad.index: ");
    /* Truncated: the first half of a real index. */
    assert_int_equal(truncate(path, (off_t)(sa / 2)), 0);
    LSAN_DISABLE();
    int r = fw_read(path, &b, err, sizeof(err));
    LSAN_ENABLE();
    assert_int_equal(r, -EINVAL);
    assert_null(b);

    a = create("Flat", 0);
    char nodir[sizeof(dir) + 32];
    snprintf(nodir, sizeof(nodir), "%s/no/such.index", dir);
    assert_int_equal(fw_write(a, nodir, err, sizeof(err)), -ENOENT);
    assert_err_has(err, "such.index");
    /* Renaming over a directory fails: the temporary file is removed. */
    assert_int_equal(fw_write(a, dir, err, sizeof(err)), -EISDIR);
    assert_err_has(err, dir);
    char tmp[sizeof(dir) + 32];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", dir, (long)getpid());
    assert_int_equal(access(tmp, F_OK), -1);
    fw_free(a);

    assert_int_equal(unlink(path), 0);
    assert_int_equal(unlink(bad), 0);
    assert_int_equal(rmdir(dir), 0); /* no temporary file left behind */
    free(q);
    free(x);
}

/* The serialised size of a flat index holds at least its vectors. */
static void test_size(void **state)
{
    (void)state;
    float *x = random_rows(N, DIM, 8);
    struct fw_index *ix = create("Flat", 0);
    size_t empty = 0, full = 0;
    char err[512] = "";
    assert_int_equal(fw_size(ix, &empty, err, sizeof(err)), 0);
    add(ix, N, x);
    assert_int_equal(fw_size(ix, &full, err, sizeof(err)), 0);
    assert_true(full > (size_t)N * DIM * sizeof(float));
    assert_int_equal(full - empty, (size_t)N * DIM * sizeof(float));
    fw_free(ix);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_l2),      cmocka_unit_test(test_inner_product),
        cmocka_unit_test(test_ivf_training), cmocka_unit_test(test_params),
        cmocka_unit_test(test_errors),       cmocka_unit_test(test_write_read),
        cmocka_unit_test(test_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
