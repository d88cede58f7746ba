/* truth.c — exact k-NN by brute force and recall@k against it.
 *
 * Every distance is computed in full ((a-b)² summed, or the dot product), never as
 * |a|² + |b|² - 2a·b: that shortcut loses the last digits, and ties would then be
 * decided by rounding. Queries are split among threads; each thread walks the base
 * in blocks that stay in cache while a block of its queries is compared with them,
 * keeping each query's k best in a max-heap ordered by (distance, id). */
#include "vector/vec.h"

#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QBLOCK      16  /* queries compared with one base block */
#define BBLOCK      512 /* base rows per block */
#define THREADS_MAX 256
#define TRUTH_MAGIC "SONDEGT1"
#define K_MAX       100000

/* ---- distances ------------------------------------------------------------------------------ */

/* Eight independent sums, so that the compiler can keep them in one vector register
 * without reordering a single sum (no -ffast-math needed). */
static float dot(const float *a, const float *b, size_t dim)
{
    float acc[8] = {0};
    size_t j = 0;
    for (; j + 8 <= dim; j += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += a[j + l] * b[j + l];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; j < dim; j++)
        s += a[j] * b[j];
    return s;
}

static float l2sq(const float *a, const float *b, size_t dim)
{
    float acc[8] = {0};
    size_t j = 0;
    for (; j + 8 <= dim; j += 8)
        for (int l = 0; l < 8; l++) {
            float d = a[j + l] - b[j + l];
            acc[l] += d * d;
        }
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; j < dim; j++) {
        float d = a[j] - b[j];
        s += d * d;
    }
    return s;
}

float vec_distance(enum vec_metric m, const float *a, const float *b, size_t dim)
{
    return m == VEC_L2 ? l2sq(a, b, dim) : -dot(a, b, dim);
}

/* ---- the k best of one query: a max-heap on (distance, id) ---------------------------------- */

struct heap {
    float *d;
    int64_t *id;
    size_t n, k;
};

static bool worse(float da, int64_t ia, float db, int64_t ib)
{
    return da > db || (da == db && ia > ib);
}

static void heap_swap(struct heap *h, size_t a, size_t b)
{
    float td = h->d[a];
    int64_t ti = h->id[a];
    h->d[a] = h->d[b];
    h->id[a] = h->id[b];
    h->d[b] = td;
    h->id[b] = ti;
}

static void heap_sift_down(struct heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && worse(h->d[l], h->id[l], h->d[m], h->id[m]))
            m = l;
        if (r < h->n && worse(h->d[r], h->id[r], h->d[m], h->id[m]))
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

static void heap_push(struct heap *h, float d, int64_t id)
{
    if (h->n == h->k) {
        if (!worse(h->d[0], h->id[0], d, id))
            return;
        h->d[0] = d;
        h->id[0] = id;
        heap_sift_down(h, 0);
        return;
    }
    size_t i = h->n++;
    h->d[i] = d;
    h->id[i] = id;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(h->d[i], h->id[i], h->d[p], h->id[p]))
            break;
        heap_swap(h, i, p);
        i = p;
    }
}

/* Sorts the heap in place, nearest first, and pads the row with -1. */
static void heap_finish(struct heap *h)
{
    size_t n = h->n;
    while (h->n > 1) {
        size_t last = h->n - 1;
        heap_swap(h, 0, last);
        h->n--;
        heap_sift_down(h, 0);
    }
    for (size_t i = n; i < h->k; i++) {
        h->id[i] = -1;
        h->d[i] = INFINITY;
    }
    h->n = n;
}

/* ---- brute force ------------------------------------------------------------------------------
 */

struct job {
    const struct vec_dataset *ds;
    const atomic_bool *stop; /* checked once per base block */
    bool stopped;
    const size_t *qs; /* the queries to answer (rows of out), NULL: all in order */
    size_t nq, k;
    struct vec_nbrs *out;
    size_t from, to; /* rows of out this thread fills */
};

static void *work(void *arg)
{
    struct job *j = arg;
    const struct vec_dataset *ds = j->ds;
    size_t dim = ds->base.dim;
    for (size_t q0 = j->from; q0 < j->to; q0 += QBLOCK) {
        size_t q1 = q0 + QBLOCK < j->to ? q0 + QBLOCK : j->to;
        struct heap h[QBLOCK];
        for (size_t q = q0; q < q1; q++)
            h[q - q0] = (struct heap){j->out->dist + q * j->k, j->out->ids + q * j->k, 0, j->k};
        for (size_t b0 = 0; b0 < ds->base.n; b0 += BBLOCK) {
            if (j->stop && atomic_load(j->stop)) {
                j->stopped = true;
                return NULL;
            }
            size_t b1 = b0 + BBLOCK < ds->base.n ? b0 + BBLOCK : ds->base.n;
            for (size_t q = q0; q < q1; q++) {
                size_t qi = j->qs ? j->qs[q] : q;
                const float *qv = ds->queries.data + qi * dim;
                int32_t lab = ds->query_label ? ds->query_label[qi] : -1;
                struct heap *hq = &h[q - q0];
                for (size_t b = b0; b < b1; b++) {
                    if (lab >= 0 && ds->base_label[b] != lab)
                        continue;
                    heap_push(hq, vec_distance(ds->metric, qv, ds->base.data + b * dim, dim),
                              (int64_t)b);
                }
            }
        }
        for (size_t q = q0; q < q1; q++)
            heap_finish(&h[q - q0]);
    }
    return NULL;
}

static unsigned threads_for(unsigned threads, size_t nq)
{
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    if (threads > THREADS_MAX)
        threads = THREADS_MAX;
    size_t blocks = (nq + QBLOCK - 1) / QBLOCK;
    if (threads > blocks)
        threads = blocks ? (unsigned)blocks : 1;
    return threads;
}

/* The exact k nearest of the queries qs[0..nq) (NULL: all, in order) into out. */
static int brute(const struct vec_dataset *ds, const size_t *qs, size_t nq, size_t k,
                 unsigned threads, const atomic_bool *stop, struct vec_nbrs *out, char *err,
                 size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (k < 1 || k > K_MAX) {
        snprintf(err, errlen, "k must be in 1..%d, not %zu", K_MAX, k);
        return -EINVAL;
    }
    if (ds->base.dim != ds->queries.dim || ds->base.n < 1) {
        snprintf(err, errlen, "the dataset has no base vectors or mismatched dimensions");
        return -EINVAL;
    }
    out->nq = nq;
    out->k = k;
    out->ids = xmalloc((nq ? nq : 1) * k * sizeof(int64_t));
    out->dist = xmalloc((nq ? nq : 1) * k * sizeof(float));
    threads = threads_for(threads, nq);
    struct job jobs[THREADS_MAX];
    pthread_t tid[THREADS_MAX];
    bool started[THREADS_MAX] = {false};
    size_t blocks = (nq + QBLOCK - 1) / QBLOCK;
    for (unsigned t = 0; t < threads; t++) {
        size_t b0 = blocks * t / threads, b1 = blocks * (t + 1) / threads;
        jobs[t] = (struct job){
            ds, stop, false, qs, nq, k, out, b0 * QBLOCK, b1 * QBLOCK < nq ? b1 * QBLOCK : nq};
        /* the last share (or one whose thread could not start) runs here */
        if (t + 1 < threads)
            started[t] = pthread_create(&tid[t], NULL, work, &jobs[t]) == 0;
        if (!started[t])
            work(&jobs[t]);
    }
    bool stopped = false;
    for (unsigned t = 0; t < threads; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        stopped |= jobs[t].stopped;
    }
    if (stopped) {
        vec_nbrs_free(out);
        snprintf(err, errlen, "stopped before the ground truth was complete");
        return -ECANCELED;
    }
    return 0;
}

int vec_truth_compute(const struct vec_dataset *ds, size_t k, unsigned threads,
                      const atomic_bool *stop, struct vec_nbrs *out, char *err, size_t errlen)
{
    return brute(ds, NULL, ds->queries.n, k, threads, stop, out, err, errlen);
}

/* ---- the cache ------------------------------------------------------------------------------- */

struct cache_head {
    char magic[8];
    unsigned char hash[32];
    uint64_t nq, k;
};

static char *cache_path(const struct vec_dataset *ds, size_t k, const char *dir)
{
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", ds->hash[i]);
    return xasprintf("%s/truth-%.32s-k%zu.bin", dir, hex, k);
}

static int cache_load(const char *path, const struct vec_dataset *ds, size_t k,
                      struct vec_nbrs *out)
{
    char *data = NULL;
    size_t len = 0;
    size_t cells = ds->queries.n * k;
    size_t want = sizeof(struct cache_head) + cells * (sizeof(int64_t) + sizeof(float));
    if (read_file(path, want + 1, &data, &len) < 0)
        return -ENOENT;
    struct cache_head h;
    int r = -EINVAL;
    if (len == want) {
        memcpy(&h, data, sizeof(h));
        if (!memcmp(h.magic, TRUTH_MAGIC, 8) && !memcmp(h.hash, ds->hash, 32) &&
            h.nq == ds->queries.n && h.k == k) {
            out->nq = ds->queries.n;
            out->k = k;
            out->ids = xmalloc((cells ? cells : 1) * sizeof(int64_t));
            out->dist = xmalloc((cells ? cells : 1) * sizeof(float));
            memcpy(out->ids, data + sizeof(h), cells * sizeof(int64_t));
            memcpy(out->dist, data + sizeof(h) + cells * sizeof(int64_t), cells * sizeof(float));
            r = 0;
            for (size_t i = 0; i < cells && r == 0; i++)
                if (out->ids[i] < -1 || out->ids[i] >= (int64_t)ds->base.n)
                    r = -EINVAL;
            if (r < 0)
                vec_nbrs_free(out);
        }
    }
    free(data);
    return r;
}

static void cache_store(const char *dir, const char *path, const struct vec_dataset *ds,
                        const struct vec_nbrs *t)
{
    size_t cells = t->nq * t->k;
    size_t len = sizeof(struct cache_head) + cells * (sizeof(int64_t) + sizeof(float));
    char *data = xmalloc(len);
    struct cache_head h = {.nq = t->nq, .k = t->k};
    memcpy(h.magic, TRUTH_MAGIC, 8);
    memcpy(h.hash, ds->hash, 32);
    memcpy(data, &h, sizeof(h));
    memcpy(data + sizeof(h), t->ids, cells * sizeof(int64_t));
    memcpy(data + sizeof(h) + cells * sizeof(int64_t), t->dist, cells * sizeof(float));
    /* a cache that cannot be written only costs the next run the computation */
    if (mkdir_p(dir, 0755) == 0)
        (void)write_file_atomic(path, data, len);
    free(data);
}

/* ---- neighbours from a file --------------------------------------------------------------------
 */

/* Checks the file's neighbours of `check` queries spread over the set against exact
 * search, then fills *out with its first k ids and their distances. */
static int use_file_truth(const struct vec_dataset *ds, size_t k, unsigned threads,
                          const atomic_bool *stop, size_t check, struct vec_nbrs *out, char *err,
                          size_t errlen)
{
    const struct vec_nbrs *f = &ds->file_truth;
    size_t nq = ds->queries.n, dim = ds->base.dim;
    if (check > nq)
        check = nq;
    if (check > 0) {
        size_t *qs = xmalloc(check * sizeof(size_t));
        for (size_t i = 0; i < check; i++)
            qs[i] = i * nq / check;
        struct vec_nbrs ex;
        int r = brute(ds, qs, check, k, threads, stop, &ex, err, errlen);
        for (size_t i = 0; r == 0 && i < check; i++) {
            size_t q = qs[i];
            size_t avail = 0;
            while (avail < k && ex.ids[i * k + avail] >= 0)
                avail++;
            float kth = avail ? ex.dist[i * k + avail - 1] : INFINITY;
            for (size_t j = 0; j < avail; j++) {
                int64_t id = f->ids[q * f->k + j];
                float d = id >= 0 && id < (int64_t)ds->base.n
                              ? vec_distance(ds->metric, ds->queries.data + q * dim,
                                             ds->base.data + (size_t)id * dim, dim)
                              : INFINITY;
                if (!(d <= kth + fabsf(kth) * 1e-5f + 1e-6f)) {
                    snprintf(err, errlen,
                             "the file's neighbours disagree with exact search: neighbour %zu of "
                             "query %zu is row %lld at distance %g; exact search puts neighbour "
                             "%zu at %g",
                             j + 1, q, (long long)id, (double)d, avail, (double)kth);
                    r = -EINVAL;
                    break;
                }
            }
        }
        vec_nbrs_free(&ex);
        free(qs);
        if (r < 0)
            return r;
    }
    out->nq = nq;
    out->k = k;
    out->ids = xmalloc(nq * k * sizeof(int64_t));
    out->dist = xmalloc(nq * k * sizeof(float));
    struct heap h = {0};
    for (size_t q = 0; q < nq; q++) {
        /* the row as a k-best heap: sorted by (distance, id), nearest first, whatever
         * order the file had; a repeated id is refused */
        h = (struct heap){out->dist + q * k, out->ids + q * k, 0, k};
        for (size_t j = 0; j < k; j++) {
            int64_t id = f->ids[q * f->k + j];
            if (id < 0)
                continue;
            for (size_t i = 0; i < j; i++)
                if (f->ids[q * f->k + i] == id) {
                    snprintf(err, errlen, "the file's neighbours of query %zu name row %lld twice",
                             q, (long long)id);
                    vec_nbrs_free(out);
                    return -EINVAL;
                }
            heap_push(&h,
                      vec_distance(ds->metric, ds->queries.data + q * dim,
                                   ds->base.data + (size_t)id * dim, dim),
                      id);
        }
        heap_finish(&h);
    }
    return 0;
}

int vec_truth_get(const struct vec_dataset *ds, size_t k, unsigned threads, const atomic_bool *stop,
                  const char *cache_dir, size_t check, struct vec_nbrs *out, const char **source,
                  char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    *source = "computed";
    if (ds->file_truth.nq == ds->queries.n && ds->file_truth.k >= k && !ds->labels) {
        *source = "file";
        return use_file_truth(ds, k, threads, stop, check, out, err, errlen);
    }
    char *path = cache_dir ? cache_path(ds, k, cache_dir) : NULL;
    if (path && cache_load(path, ds, k, out) == 0) {
        *source = "cache";
        free(path);
        return 0;
    }
    int r = vec_truth_compute(ds, k, threads, stop, out, err, errlen);
    if (r == 0 && path)
        cache_store(cache_dir, path, ds, out);
    free(path);
    return r;
}

/* ---- recall ------------------------------------------------------------------------------------
 */

double vec_recall(const struct vec_dataset *ds, const struct vec_nbrs *truth, size_t q,
                  const int64_t *ids, size_t nres, size_t kk)
{
    if (kk > truth->k)
        kk = truth->k;
    const int64_t *t = truth->ids + q * truth->k;
    size_t avail = 0;
    while (avail < kk && t[avail] >= 0)
        avail++;
    if (avail == 0)
        return 1.0;
    float kth = truth->dist[q * truth->k + avail - 1];
    float tol = fabsf(kth) * 1e-6f + 1e-12f;
    size_t dim = ds->base.dim, hits = 0;
    int32_t lab = ds->query_label ? ds->query_label[q] : -1;
    const float *qv = ds->queries.data + q * dim;
    if (nres > kk)
        nres = kk;
    for (size_t i = 0; i < nres; i++) {
        int64_t id = ids[i];
        if (id < 0 || id >= (int64_t)ds->base.n || (lab >= 0 && ds->base_label[id] != lab))
            continue;
        bool repeat = false;
        for (size_t j = 0; j < i && !repeat; j++)
            repeat = ids[j] == id;
        if (repeat)
            continue;
        if (vec_distance(ds->metric, qv, ds->base.data + (size_t)id * dim, dim) <= kth + tol)
            hits++;
    }
    return (double)(hits < avail ? hits : avail) / (double)avail;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void vec_recall_summary(const double *per_query, size_t n, struct vec_recall_sum *out)
{
    memset(out, 0, sizeof(*out));
    out->n = n;
    if (n == 0)
        return;
    double *v = xmalloc(n * sizeof(double));
    memcpy(v, per_query, n * sizeof(double));
    qsort(v, n, sizeof(double), cmp_double);
    double sum = 0;
    size_t perfect = 0;
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        perfect += v[i] >= 1.0;
    }
    out->mean = sum / (double)n;
    out->min = v[0];
    /* nearest rank: the smallest value with at least p of the queries at or below it */
    size_t i5 = (size_t)ceil(0.05 * (double)n), i50 = (size_t)ceil(0.5 * (double)n);
    out->p5 = v[i5 ? i5 - 1 : 0];
    out->p50 = v[i50 ? i50 - 1 : 0];
    out->perfect = (double)perfect / (double)n;
    free(v);
}
