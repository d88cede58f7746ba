/* dataset.c — vector datasets: synthetic ones generated from a seed, or read from
 * files (files.c), normalised for cosine, labelled for filtered search, and
 * identified by a SHA-256 over everything a result depends on. */
#include "vector/vec.h"

#include "core/value.h"
#include "util/rng.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define VEC_DIM_MAX   65536
#define VEC_ROWS_MAX  ((size_t)1 << 31) /* ids are int64, but Chroma's and ours stay sane */
#define VEC_BYTES_MAX ((size_t)64 << 30)

const char *const vec_metric_names[] = {"l2", "ip", "cosine", NULL};

int vec_metric_parse(const char *name, enum vec_metric *out)
{
    for (int i = 0; name && vec_metric_names[i]; i++)
        if (!strcmp(name, vec_metric_names[i])) {
            *out = (enum vec_metric)i;
            return 0;
        }
    return -EINVAL;
}

static const char *const synth_choices[] = {"clustered", "uniform", NULL};

const struct opt_def vec_dataset_fields[] = {
    {"synthetic", OPT_ENUM, false, NULL,
     "generate the set: clustered (a Gaussian mixture) or uniform", synth_choices, NULL},
    {"vectors", OPT_INT, false, NULL, "synthetic: base vectors", NULL, NULL},
    {"queries", OPT_INT, false, "1000", "synthetic: query vectors", NULL, NULL},
    {"dim", OPT_INT, false, NULL, "synthetic: dimensions", NULL, NULL},
    {"clusters", OPT_INT, false, "100", "synthetic clustered: Gaussian components", NULL, NULL},
    {"spread", OPT_FLOAT, false, "0.1",
     "synthetic clustered: standard deviation of each coordinate around its centre (centres "
     "uniform in [-1, 1])",
     NULL, NULL},
    {"seed", OPT_INT, false, "1", "synthetic: the seed (base, queries, labels)", NULL, NULL},
    {"file", OPT_STR, false, NULL, "an ann-benchmarks .hdf5 file (train, test, neighbors)", NULL,
     NULL},
    {"base", OPT_STR, false, NULL, "base vectors: .fvecs, .bvecs or .npy", NULL, NULL},
    {"query_file", OPT_STR, false, NULL, "query vectors: .fvecs, .bvecs or .npy", NULL, NULL},
    {"neighbors", OPT_STR, false, NULL,
     "the queries' true neighbours (.ivecs or .npy): checked on a sample, then used", NULL, NULL},
    {"max_vectors", OPT_INT, false, NULL, "use only the first N base vectors", NULL, NULL},
    {"max_queries", OPT_INT, false, NULL, "use only the first N queries", NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

/* ---- synthetic sets ---------------------------------------------------------------------- */

static double gauss(struct rng *r)
{
    /* Box-Muller; the second value is dropped so that every draw takes the same
     * number of steps of the stream */
    double u = rng_unit_open(r), v = rng_unit(r);
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static void synth_rows(const struct vec_synth *s, const float *centres, struct rng *r, float *out,
                       size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float *row = out + i * s->dim;
        if (s->kind == VEC_SYNTH_UNIFORM) {
            for (size_t j = 0; j < s->dim; j++)
                row[j] = (float)(2.0 * rng_unit(r) - 1.0);
            continue;
        }
        const float *c = centres + (rng_next(r) % s->clusters) * s->dim;
        for (size_t j = 0; j < s->dim; j++)
            row[j] = c[j] + (float)(s->spread * gauss(r));
    }
}

static int mat_alloc(struct vec_mat *m, size_t n, size_t dim, char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    if (n > VEC_ROWS_MAX || dim > VEC_DIM_MAX || n * dim > VEC_BYTES_MAX / sizeof(float)) {
        snprintf(err, errlen, "%zu vectors of %zu dimensions are more than sonde handles", n, dim);
        return -E2BIG;
    }
    m->n = n;
    m->dim = dim;
    m->data = xmalloc((n ? n : 1) * dim * sizeof(float));
    return 0;
}

int vec_synth_make(const struct vec_synth *s, enum vec_metric m, struct vec_dataset *ds, char *err,
                   size_t errlen)
{
    memset(ds, 0, sizeof(*ds));
    if (s->n < 1 || s->nq < 1 || s->dim < 1 || s->dim > VEC_DIM_MAX) {
        snprintf(err, errlen, "a synthetic set needs vectors >= 1, queries >= 1 and dim 1..%d",
                 VEC_DIM_MAX);
        return -EINVAL;
    }
    if (s->kind == VEC_SYNTH_CLUSTERED &&
        (s->clusters < 1 || s->clusters > s->n || !(s->spread > 0) || !isfinite(s->spread))) {
        snprintf(err, errlen, "a clustered set needs 1 <= clusters <= vectors and spread > 0");
        return -EINVAL;
    }
    int r = mat_alloc(&ds->base, s->n, s->dim, err, errlen);
    r = r ? r : mat_alloc(&ds->queries, s->nq, s->dim, err, errlen);
    if (r < 0) {
        vec_dataset_free(ds);
        return r;
    }
    /* three streams of one seed: centres, base, queries (changing the number of
     * queries never changes the base, and the other way round) */
    struct rng rc, rb, rq;
    rng_seed(&rc, s->seed);
    rng_seed(&rb, s->seed ^ 0x5bd1e9955bd1e995ULL);
    rng_seed(&rq, s->seed ^ 0x9e3779b97f4a7c15ULL);
    float *centres = NULL;
    if (s->kind == VEC_SYNTH_CLUSTERED) {
        centres = xmalloc(s->clusters * s->dim * sizeof(float));
        for (size_t i = 0; i < s->clusters * s->dim; i++)
            centres[i] = (float)(2.0 * rng_unit(&rc) - 1.0);
    }
    synth_rows(s, centres, &rb, ds->base.data, s->n);
    synth_rows(s, centres, &rq, ds->queries.data, s->nq);
    free(centres);
    ds->metric = m;
    if (s->kind == VEC_SYNTH_CLUSTERED)
        ds->desc =
            xasprintf("clustered n=%zu queries=%zu dim=%zu clusters=%zu spread=%g seed=%llu", s->n,
                      s->nq, s->dim, s->clusters, s->spread, (unsigned long long)s->seed);
    else
        ds->desc = xasprintf("uniform n=%zu queries=%zu dim=%zu seed=%llu", s->n, s->nq, s->dim,
                             (unsigned long long)s->seed);
    return vec_dataset_finish(ds, err, errlen);
}

/* ---- identity, normalisation, labels ------------------------------------------------------ */

static void rehash(struct vec_dataset *ds)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        abort();
    uint64_t head[5] = {(uint64_t)ds->metric, ds->base.n, ds->base.dim, ds->queries.n, ds->labels};
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, head, sizeof(head));
    EVP_DigestUpdate(ctx, ds->base.data, ds->base.n * ds->base.dim * sizeof(float));
    EVP_DigestUpdate(ctx, ds->queries.data, ds->queries.n * ds->queries.dim * sizeof(float));
    if (ds->labels) {
        EVP_DigestUpdate(ctx, ds->base_label, ds->base.n * sizeof(int32_t));
        EVP_DigestUpdate(ctx, ds->query_label, ds->queries.n * sizeof(int32_t));
    }
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, ds->hash, &len);
    EVP_MD_CTX_free(ctx);
}

/* A matrix that is a view into a memory map becomes an owned copy. */
static void own(struct vec_mat *m)
{
    if (!m->map)
        return;
    float *copy = xmalloc((m->n ? m->n : 1) * m->dim * sizeof(float));
    memcpy(copy, m->data, m->n * m->dim * sizeof(float));
    munmap(m->map, m->map_len);
    m->map = NULL;
    m->map_len = 0;
    m->data = copy;
}

static int normalise(struct vec_mat *m, const char *what, char *err, size_t errlen)
{
    own(m);
    for (size_t i = 0; i < m->n; i++) {
        float *row = m->data + i * m->dim;
        double ss = 0;
        for (size_t j = 0; j < m->dim; j++)
            ss += (double)row[j] * row[j];
        if (!(ss > 0)) {
            snprintf(err, errlen, "%s vector %zu is zero: its cosine distance is undefined", what,
                     i);
            return -EINVAL;
        }
        double inv = 1.0 / sqrt(ss);
        for (size_t j = 0; j < m->dim; j++)
            row[j] = (float)(row[j] * inv);
    }
    return 0;
}

int vec_dataset_finish(struct vec_dataset *ds, char *err, size_t errlen)
{
    if (ds->base.n < 1 || ds->queries.n < 1) {
        snprintf(err, errlen, "the set has %zu base vectors and %zu queries: it needs both",
                 ds->base.n, ds->queries.n);
        return -EINVAL;
    }
    if (ds->base.dim != ds->queries.dim) {
        snprintf(err, errlen, "base vectors have %zu dimensions, queries %zu", ds->base.dim,
                 ds->queries.dim);
        return -EINVAL;
    }
    if (ds->metric == VEC_COSINE) {
        int r = normalise(&ds->base, "base", err, errlen);
        r = r ? r : normalise(&ds->queries, "query", err, errlen);
        if (r < 0)
            return r;
    }
    rehash(ds);
    return 0;
}

void vec_dataset_label(struct vec_dataset *ds, unsigned labels, uint64_t seed)
{
    free(ds->base_label);
    free(ds->query_label);
    ds->base_label = ds->query_label = NULL;
    ds->labels = labels;
    if (labels) {
        struct rng r;
        rng_seed(&r, seed ^ 0xd6e8feb86659fd93ULL);
        ds->base_label = xmalloc((ds->base.n ? ds->base.n : 1) * sizeof(int32_t));
        ds->query_label = xmalloc((ds->queries.n ? ds->queries.n : 1) * sizeof(int32_t));
        for (size_t i = 0; i < ds->base.n; i++)
            ds->base_label[i] = (int32_t)(rng_next(&r) % labels);
        for (size_t i = 0; i < ds->queries.n; i++)
            ds->query_label[i] = (int32_t)(rng_next(&r) % labels);
    }
    rehash(ds);
}

void vec_dataset_free(struct vec_dataset *ds)
{
    if (!ds)
        return;
    free(ds->desc);
    vec_mat_free(&ds->base);
    vec_mat_free(&ds->queries);
    vec_nbrs_free(&ds->file_truth);
    free(ds->base_label);
    free(ds->query_label);
    memset(ds, 0, sizeof(*ds));
}

/* ---- a driver's `dataset:` block ------------------------------------------------------------ */

static int opt_count(const struct sv *o, const char *key, int64_t def, int64_t lo, int64_t hi,
                     int64_t *out, char *err, size_t errlen)
{
    const struct sv *v = sv_get(o, key);
    *out = def;
    if (!v)
        return 0;
    if (sv_as_int(v, out) < 0 || *out < lo || *out > hi) {
        snprintf(err, errlen, "dataset.%s must be an integer in %lld..%lld", key, (long long)lo,
                 (long long)hi);
        return -EINVAL;
    }
    return 0;
}

static void truncate_rows(struct vec_mat *m, int64_t max)
{
    if (max > 0 && (size_t)max < m->n)
        m->n = (size_t)max;
}

static int load_synthetic(const struct sv *o, const char *kind, enum vec_metric metric,
                          struct vec_dataset *ds, char *err, size_t errlen)
{
    struct vec_synth s = {.kind =
                              strcmp(kind, "uniform") ? VEC_SYNTH_CLUSTERED : VEC_SYNTH_UNIFORM};
    int64_t n, nq, dim, clusters, seed;
    int r = opt_count(o, "vectors", 0, 1, (int64_t)VEC_ROWS_MAX, &n, err, errlen);
    r = r ? r : opt_count(o, "queries", 1000, 1, (int64_t)VEC_ROWS_MAX, &nq, err, errlen);
    r = r ? r : opt_count(o, "dim", 0, 1, VEC_DIM_MAX, &dim, err, errlen);
    r = r ? r : opt_count(o, "clusters", 100, 1, (int64_t)VEC_ROWS_MAX, &clusters, err, errlen);
    r = r ? r : opt_count(o, "seed", 1, 0, INT64_MAX, &seed, err, errlen);
    if (r < 0)
        return r;
    if (!n || !dim) {
        snprintf(err, errlen, "a synthetic dataset needs dataset.%s", n ? "dim" : "vectors");
        return -EINVAL;
    }
    s.spread = 0.1;
    const struct sv *sp = sv_get(o, "spread");
    if (sp && (sv_as_double(sp, &s.spread) < 0 || !(s.spread > 0) || !isfinite(s.spread))) {
        snprintf(err, errlen, "dataset.spread must be a number above 0");
        return -EINVAL;
    }
    if (s.kind == VEC_SYNTH_CLUSTERED && clusters > n)
        clusters = n;
    s.n = (size_t)n;
    s.nq = (size_t)nq;
    s.dim = (size_t)dim;
    s.clusters = (size_t)clusters;
    s.seed = (uint64_t)seed;
    return vec_synth_make(&s, metric, ds, err, errlen);
}

static const char *metric_word(enum vec_metric m)
{
    return m == VEC_L2 ? "l2 (euclidean)" : m == VEC_IP ? "ip (dot)" : "cosine (angular)";
}

static int load_files(const struct sv *o, enum vec_metric metric, struct vec_dataset *ds, char *err,
                      size_t errlen)
{
    const char *file = sv_str(o, "file", NULL), *base = sv_str(o, "base", NULL);
    const char *qf = sv_str(o, "query_file", NULL), *nb = sv_str(o, "neighbors", NULL);
    int64_t maxv, maxq;
    int r = opt_count(o, "max_vectors", 0, 1, INT64_MAX, &maxv, err, errlen);
    r = r ? r : opt_count(o, "max_queries", 0, 1, INT64_MAX, &maxq, err, errlen);
    if (r < 0)
        return r;
    ds->metric = metric;
    if (file) {
        if (base || qf || nb) {
            snprintf(err, errlen,
                     "dataset.file (an .hdf5 set) excludes base, query_file and "
                     "neighbors");
            return -EINVAL;
        }
        enum vec_metric fm = metric;
        bool has = false;
        r = vec_hdf5_read(file, &ds->base, &ds->queries, &ds->file_truth, &fm, &has, err, errlen);
        if (r < 0)
            return r;
        if (has && fm != metric) {
            snprintf(err, errlen, "%s is a %s dataset, but the metric is %s: set metric: %s", file,
                     metric_word(fm), vec_metric_names[metric], vec_metric_names[fm]);
            return -EINVAL;
        }
        ds->desc = xstrdup(file);
    } else {
        if (!base || !qf) {
            snprintf(err, errlen, "dataset needs synthetic, file, or base and query_file");
            return -EINVAL;
        }
        r = vec_file_read(base, maxv > 0 ? (size_t)maxv : 0, &ds->base, err, errlen);
        r = r ? r : vec_file_read(qf, maxq > 0 ? (size_t)maxq : 0, &ds->queries, err, errlen);
        if (r == 0 && nb) {
            r = vec_ids_read(nb, maxq > 0 ? (size_t)maxq : 0, &ds->file_truth, err, errlen);
            if (r == 0 && ds->file_truth.nq < ds->queries.n) {
                snprintf(err, errlen, "%s has neighbours of %zu queries, %s has %zu queries", nb,
                         ds->file_truth.nq, qf, ds->queries.n);
                r = -EINVAL;
            }
        }
        if (r < 0)
            return r;
        ds->desc = xasprintf("%s + %s", base, qf);
    }
    /* neighbours of the whole base say nothing of a part of it */
    if (maxv > 0 && (size_t)maxv < ds->base.n)
        vec_nbrs_free(&ds->file_truth);
    truncate_rows(&ds->base, maxv);
    truncate_rows(&ds->queries, maxq);
    if (ds->file_truth.nq > ds->queries.n)
        ds->file_truth.nq = ds->queries.n;
    for (size_t i = 0; i < ds->file_truth.nq * ds->file_truth.k; i++)
        if (ds->file_truth.ids[i] >= (int64_t)ds->base.n) {
            snprintf(err, errlen, "the neighbours name base vector %lld, the base has %zu",
                     (long long)ds->file_truth.ids[i], ds->base.n);
            return -EINVAL;
        }
    return vec_dataset_finish(ds, err, errlen);
}

int vec_dataset_load(const struct sv *opts, enum vec_metric metric, struct vec_dataset *ds,
                     char *err, size_t errlen)
{
    memset(ds, 0, sizeof(*ds));
    if (!opts || opts->kind != SV_MAP) {
        snprintf(err, errlen, "dataset must be a map (synthetic: ..., or file: / base: ...)");
        return -EINVAL;
    }
    const char *kind = sv_str(opts, "synthetic", NULL);
    int r;
    if (kind) {
        if (strcmp(kind, "clustered") && strcmp(kind, "uniform")) {
            snprintf(err, errlen, "dataset.synthetic must be clustered or uniform, not '%s'", kind);
            return -EINVAL;
        }
        if (sv_get(opts, "file") || sv_get(opts, "base")) {
            snprintf(err, errlen, "dataset.synthetic excludes file and base");
            return -EINVAL;
        }
        r = load_synthetic(opts, kind, metric, ds, err, errlen);
    } else {
        r = load_files(opts, metric, ds, err, errlen);
    }
    if (r < 0)
        vec_dataset_free(ds);
    return r;
}
