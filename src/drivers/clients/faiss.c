/* faiss.c — the `faiss` client: a FAISS index inside sonde (src/vector/faiss_wrap.h),
 * built from a factory string over a dataset (src/vector/vec.h), then searched:
 * batches of every query for QPS, single queries for latency, every answer scored
 * against exact ground truth (recall@k). A sweep over search parameters (nprobe,
 * efSearch) is a recipe matrix over `search:`; the built index is cached in the
 * workspace under the dataset's hash, the factory string and the metric, so the
 * points of a sweep share one build. Options and metrics: docs/vector.md. */
#include "drivers/clients/client_common.h"

#include "config.h"
#include "core/session.h"
#include "util/hdr.h"
#include "util/util.h"
#include "vector/vec.h"
#if SONDE_HAVE_FAISS
#include "vector/faiss_wrap.h"
#endif

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FX_K_MAX      4096
#define FX_ROUNDS_MAX 1000
#define FX_PARAMS_MAX 16
#define FX_AT_MAX     8
#define FX_HDR_MAX    (3600LL * 1000000000LL)
#define NS_PER_S      1e9

static const struct opt_def faiss_opts[] = {
    {"dataset", OPT_MAP, true, NULL, "the vectors and queries (docs/vector.md)", NULL,
     vec_dataset_fields},
    {"metric", OPT_ENUM, false, "l2", "l2, ip (inner product) or cosine", vec_metric_names, NULL},
    {"index", OPT_STR, false, "HNSW32",
     "a FAISS index factory string: Flat, IVF1024,Flat, IVF1024,PQ16, HNSW32, ...", NULL, NULL},
    {"search", OPT_MAP, false, NULL,
     "search parameters by FAISS's names, e.g. {efSearch: 64} or {nprobe: 16}", NULL, NULL},
    {"k", OPT_INT, false, "10", "neighbours asked for each query (recall@k)", NULL, NULL},
    {"recall_at", OPT_STR_LIST, false, "[1]", "also report recall@k' for these k' < k", NULL, NULL},
    {"threads", OPT_INT, false, "0", "threads FAISS uses (0: every CPU)", NULL, NULL},
    {"train_vectors", OPT_INT, false, NULL,
     "train on the first N base vectors only (default: all; indexes that need training)", NULL,
     NULL},
    {"rounds", OPT_INT, false, "5", "batch searches of every query; qps is from the median round",
     NULL, NULL},
    {"latency_queries", OPT_INT, false, "1000",
     "queries searched one at a time, on one thread, for the latency percentiles (0: none)", NULL,
     NULL},
    {"index_cache", OPT_BOOL, false, "true",
     "keep the built index in the workspace and reuse it (a sweep builds once)", NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

struct fx_param {
    char *name;
    double value;
};

struct fx_state {
    struct comp *c;
    struct sv *dataset; /* the dataset block, loaded by the run's thread */
    enum vec_metric metric;
    struct vec_dataset ds;
    struct vec_nbrs truth;
    const char *truth_source;
    char *factory;
    struct fx_param params[FX_PARAMS_MAX];
    size_t nparams;
    size_t k, at[FX_AT_MAX], nat;
    int threads;
    int64_t rounds, latency_queries, train_vectors;
    bool cache;
    char *cache_dir; /* <workspace>/cache/faiss (indexes), NULL without one */
    char *truth_dir; /* <workspace>/cache/truth */
    /* the run, in its own thread */
    pthread_t thread;
    bool thread_started;
    atomic_bool done, stop;
    _Atomic uint64_t queries; /* answered so far (sonde's exporter) */
    struct lg_live_hist lat;  /* the single queries' latencies (sonde's exporter) */
    _Atomic(const char *) phase;
    int result;
    char err[512];
    /* results */
    double train_s, add_s, bytes;
    bool from_cache;
    double *round_s;
    double *recall; /* per query */
    double recall_at[FX_AT_MAX];
    struct hdr *latency;
    int64_t status_at;
};

/* ---- options -------------------------------------------------------------------------------- */

static int read_params(struct comp *c, struct fx_state *st)
{
    const struct sv *m = sv_get(c->spec->with, "search");
    if (!m)
        return 0;
    if (m->kind != SV_MAP) {
        comp_set_reason(c, "with.search must be a map of parameter: value");
        return -EINVAL;
    }
    for (size_t i = 0; i < m->n; i++) {
        if (st->nparams == FX_PARAMS_MAX) {
            comp_set_reason(c, "with.search: at most %d parameters", FX_PARAMS_MAX);
            return -EINVAL;
        }
        double v;
        if (sv_as_double(m->kids[i], &v) < 0 || !isfinite(v)) {
            comp_set_reason(c, "with.search.%s must be a number", m->kids[i]->key);
            return -EINVAL;
        }
        st->params[st->nparams++] = (struct fx_param){xstrdup(m->kids[i]->key), v};
    }
    return 0;
}

static int read_recall_at(struct comp *c, struct fx_state *st)
{
    const struct sv *l = sv_get(c->spec->with, "recall_at");
    if (!l) {
        st->at[st->nat++] = 1;
        return 0;
    }
    for (size_t i = 0; l->kind == SV_SEQ && i < l->n; i++) {
        int64_t v;
        if (sv_as_int(l->kids[i], &v) < 0 || v < 1 || (size_t)v > st->k) {
            comp_set_reason(c, "with.recall_at: each must be an integer in 1..k (%zu)", st->k);
            return -EINVAL;
        }
        if (st->nat < FX_AT_MAX && (size_t)v < st->k)
            st->at[st->nat++] = (size_t)v;
    }
    return 0;
}

static int options(struct comp *c, struct fx_state *st)
{
    const struct sv *w = c->spec->with;
    enum vec_metric metric = VEC_L2;
    const char *mt = cl_opt_text(w, "metric");
    if (mt && vec_metric_parse(mt, &metric) < 0) {
        comp_set_reason(c, "with.metric must be l2, ip or cosine, not '%s'", mt);
        return -EINVAL;
    }
    int64_t k, threads;
    int r = cl_opt_int(c, "k", 10, 1, FX_K_MAX, &k);
    r = r ? r : cl_opt_int(c, "threads", 0, 0, 4096, &threads);
    r = r ? r : cl_opt_int(c, "rounds", 5, 1, FX_ROUNDS_MAX, &st->rounds);
    r = r ? r : cl_opt_int(c, "latency_queries", 1000, 0, INT32_MAX, &st->latency_queries);
    r = r ? r : cl_opt_int(c, "train_vectors", 0, 0, INT64_MAX, &st->train_vectors);
    r = r ? r : cl_opt_bool(c, "index_cache", true, &st->cache);
    if (r < 0)
        return r;
    st->k = (size_t)k;
    st->threads = (int)threads;
    st->factory = xstrdup(cl_opt_text(w, "index") ? cl_opt_text(w, "index") : "HNSW32");
    r = read_params(c, st);
    r = r ? r : read_recall_at(c, st);
    if (r < 0)
        return r;
    st->metric = metric;
    st->dataset = sv_clone(sv_get(w, "dataset"));
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- the run -------------------------------------------------------------------------------- */

#if SONDE_HAVE_FAISS

static double secs_since(int64_t t0)
{
    return (double)(mono_ns() - t0) / NS_PER_S;
}

/* The vectors an index that needs training is trained on. */
static size_t train_count(const struct fx_state *st)
{
    size_t n = st->ds.base.n;
    return st->train_vectors > 0 && (size_t)st->train_vectors < n ? (size_t)st->train_vectors : n;
}

/* <cache>/index-<hash of the dataset, factory, metric, training set, FAISS
 * version>.faiss and its build times beside */
static char *index_path(const struct fx_state *st, const char *ext)
{
    char hex[65], key[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", st->ds.hash[i]);
    /* everything the built index depends on: the data, the factory string, the
     * metric, the vectors it was trained on and FAISS's version */
    char *id = xasprintf("%s|%s|%d|%lld|%s", hex, st->factory, (int)st->ds.metric,
                         (long long)train_count(st), fw_version());
    sha256_hex(id, strlen(id), key);
    free(id);
    return xasprintf("%s/index-%.32s.%s", st->cache_dir, key, ext);
}

static int load_cached(struct fx_state *st, struct fw_index **ix)
{
    char *path = index_path(st, "faiss"), *meta = index_path(st, "json");
    json_t *j = json_load_file(meta, 0, NULL);
    int r = -ENOENT;
    if (j && json_is_number(json_object_get(j, "train_s")) &&
        json_is_number(json_object_get(j, "add_s")) && access(path, R_OK) == 0) {
        char err[256];
        r = fw_read(path, ix, err, sizeof(err));
        if (r == 0 && fw_ntotal(*ix) != st->ds.base.n) {
            fw_free(*ix);
            *ix = NULL;
            r = -EINVAL;
        }
        if (r == 0) {
            st->train_s = json_number_value(json_object_get(j, "train_s"));
            st->add_s = json_number_value(json_object_get(j, "add_s"));
        }
    }
    json_decref(j);
    free(path);
    free(meta);
    return r;
}

static void store_cached(struct fx_state *st, const struct fw_index *ix)
{
    if (mkdir_p(st->cache_dir, 0755) < 0)
        return;
    char *path = index_path(st, "faiss"), *meta = index_path(st, "json");
    char err[256];
    /* fw_write replaces the file atomically; the build times follow it */
    if (fw_write(ix, path, err, sizeof(err)) == 0) {
        json_t *j = json_pack("{s:f, s:f, s:s}", "train_s", st->train_s, "add_s", st->add_s,
                              "factory", st->factory);
        char *t = json_dumps(j, JSON_COMPACT);
        if (t)
            (void)write_file_atomic(meta, t, strlen(t));
        free(t);
        json_decref(j);
    }
    free(path);
    free(meta);
}

static int build(struct fx_state *st, struct fw_index **ix)
{
    const struct vec_dataset *ds = &st->ds;
    if (st->cache && st->cache_dir && load_cached(st, ix) == 0) {
        st->from_cache = true;
        fw_set_threads(*ix, st->threads);
        return 0;
    }
    int r =
        fw_create(st->factory, ds->base.dim, ds->metric != VEC_L2, ix, st->err, sizeof(st->err));
    if (r < 0)
        return r;
    fw_set_threads(*ix, st->threads);
    if (fw_needs_training(*ix)) {
        atomic_store(&st->phase, "train");
        size_t nt = train_count(st);
        int64_t t0 = mono_ns();
        r = fw_train(*ix, nt, ds->base.data, st->err, sizeof(st->err));
        st->train_s = secs_since(t0);
        if (r < 0)
            return r;
    }
    atomic_store(&st->phase, "add");
    int64_t t0 = mono_ns();
    /* in one call: HNSW built from parts (FAISS 1.7.3) is a worse graph (recall@10 0.83
     * against 0.94 at efSearch 16 on 50k clustered vectors), so a stop waits for it */
    r = fw_add(*ix, ds->base.n, ds->base.data, st->err, sizeof(st->err));
    st->add_s = secs_since(t0);
    if (r == 0 && st->cache && st->cache_dir)
        store_cached(st, *ix);
    return r;
}

/* Rounds of one batch of every query; the last round's answers are scored. */
static int batches(struct fx_state *st, struct fw_index *ix)
{
    const struct vec_dataset *ds = &st->ds;
    size_t nq = ds->queries.n, k = st->k;
    float *dist = xmalloc(nq * k * sizeof(float));
    int64_t *ids = xmalloc(nq * k * sizeof(int64_t));
    st->round_s = xcalloc((size_t)st->rounds, sizeof(double));
    int r = 0;
    for (int64_t i = 0; i < st->rounds && r == 0 && !atomic_load(&st->stop); i++) {
        int64_t t0 = mono_ns();
        r = fw_search(ix, nq, ds->queries.data, k, dist, ids, st->err, sizeof(st->err));
        st->round_s[i] = secs_since(t0);
        if (r == 0)
            atomic_fetch_add_explicit(&st->queries, nq, memory_order_relaxed);
    }
    if (r == 0 && !atomic_load(&st->stop)) {
        st->recall = xmalloc(nq * sizeof(double));
        double at_sum[FX_AT_MAX] = {0};
        for (size_t q = 0; q < nq; q++) {
            st->recall[q] = vec_recall(ds, &st->truth, q, ids + q * k, k, k);
            for (size_t a = 0; a < st->nat; a++)
                at_sum[a] += vec_recall(ds, &st->truth, q, ids + q * k, k, st->at[a]);
        }
        for (size_t a = 0; a < st->nat; a++)
            st->recall_at[a] = at_sum[a] / (double)nq;
    }
    free(dist);
    free(ids);
    return r;
}

/* Single queries, one after the other, on one thread: per-query latency. */
static int singles(struct fx_state *st, struct fw_index *ix)
{
    const struct vec_dataset *ds = &st->ds;
    size_t k = st->k, nq = ds->queries.n;
    float *dist = xmalloc(k * sizeof(float));
    int64_t *ids = xmalloc(k * sizeof(int64_t));
    int r = hdr_init(1, FX_HDR_MAX, 3, &st->latency);
    fw_set_threads(ix, 1);
    for (int64_t i = 0; r == 0 && i < st->latency_queries && !atomic_load(&st->stop); i++) {
        size_t q = (size_t)i % nq;
        int64_t t0 = mono_ns();
        r = fw_search(ix, 1, ds->queries.data + q * ds->queries.dim, k, dist, ids, st->err,
                      sizeof(st->err));
        int64_t lat = mono_ns() - t0;
        hdr_record(st->latency, lat);
        if (r == 0) {
            lg_live_record(&st->lat, lat);
            atomic_fetch_add_explicit(&st->queries, 1, memory_order_relaxed);
        }
    }
    fw_set_threads(ix, st->threads);
    free(dist);
    free(ids);
    return r;
}

static int run(struct fx_state *st)
{
    atomic_store(&st->phase, "loading the dataset");
    char err[sizeof(st->err) - 16];
    int r = vec_dataset_load(st->dataset, st->metric, &st->ds, err, sizeof(err));
    if (r < 0) {
        snprintf(st->err, sizeof(st->err), "with.dataset: %s", err);
        return r;
    }
    atomic_store(&st->phase, "ground truth");
    r = vec_truth_get(&st->ds, st->k, (unsigned)st->threads, &st->stop, st->truth_dir, 10,
                      &st->truth, &st->truth_source, st->err, sizeof(st->err));
    if (r < 0)
        return r;
    struct fw_index *ix = NULL;
    atomic_store(&st->phase, "build");
    r = build(st, &ix);
    size_t bytes = 0;
    if (r == 0 && fw_size(ix, &bytes, st->err, sizeof(st->err)) == 0)
        st->bytes = (double)bytes;
    for (size_t i = 0; r == 0 && i < st->nparams; i++)
        r = fw_set_param(ix, st->params[i].name, st->params[i].value, st->err, sizeof(st->err));
    if (r == 0) {
        atomic_store(&st->phase, "search");
        r = batches(st, ix);
    }
    if (r == 0 && st->latency_queries > 0) {
        atomic_store(&st->phase, "latency");
        r = singles(st, ix);
    }
    fw_free(ix);
    if (r == 0 && atomic_load(&st->stop)) {
        snprintf(st->err, sizeof(st->err), "stopped before the end");
        r = -ECANCELED;
    }
    return r;
}

#else

static int run(struct fx_state *st)
{
    snprintf(st->err, sizeof(st->err),
             "this sonde was built without FAISS (apt-get install libfaiss-dev libopenblas-dev, "
             "then build again)");
    return -ENOTSUP;
}

#endif

static void *run_thread(void *arg)
{
    struct fx_state *st = arg;
    st->result = run(st);
    atomic_store(&st->done, true);
    return NULL;
}

/* ---- driver --------------------------------------------------------------------------------- */

static int faiss_start(struct comp *c)
{
    struct fx_state *st = xcalloc(1, sizeof(*st));
    c->priv = st;
    st->c = c;
    atomic_store(&st->phase, "start");
    int r = options(c, st);
    if (r < 0)
        return r;
    st->cache_dir = comp_cache_dir(c, "faiss");
    st->truth_dir = comp_cache_dir(c, "truth");
#if SONDE_HAVE_FAISS
    comp_provenance(c, "faiss_version", fw_version());
#endif
    r = pthread_create(&st->thread, NULL, run_thread, st);
    if (r != 0) {
        comp_set_reason(c, "cannot start a thread: %s", strerror(r));
        return -r;
    }
    st->thread_started = true;
    return 0;
}

/* Queries answered and the single queries' latencies, for sonde's exporter. */
static void faiss_live(struct comp *c, struct fx_state *st)
{
    struct lg_progress p = {.requests = atomic_load_explicit(&st->queries, memory_order_relaxed)};
    lg_live_read(&st->lat, p.lat_buckets, &p.lat_sum_s);
    cl_live(c, &p, true);
}

static int faiss_tick(struct comp *c, int64_t now)
{
    struct fx_state *st = c->priv;
    if (!st || !st->thread_started || atomic_load(&st->done))
        return 1;
    if (cl_status_due(&st->status_at, now)) {
        faiss_live(c, st);
        comp_status(c, "%s", atomic_load(&st->phase));
    }
    return 0;
}

static int faiss_stop(struct comp *c)
{
    struct fx_state *st = c->priv;
    if (st)
        atomic_store(&st->stop, true);
    return 0;
}

static void put_results(struct comp *c, struct fx_state *st)
{
    size_t nq = st->ds.queries.n;

    comp_provenance(c, "dataset", st->ds.desc);
    comp_metric(c, "vectors", NULL, NULL, (double)st->ds.base.n);
    comp_metric(c, "queries", NULL, NULL, (double)nq);
    comp_metric(c, "dim", NULL, NULL, (double)st->ds.base.dim);
    comp_metric(c, "k", NULL, NULL, (double)st->k);
    comp_metric(c, "train_time", "s", NULL, st->train_s);
    comp_metric(c, "add_time", "s", NULL, st->add_s);
    comp_metric(c, "build_time", "s", NULL, st->train_s + st->add_s);
    if (st->train_s + st->add_s > 0)
        comp_metric(c, "ingest_rate", "vectors/s", NULL,
                    (double)st->ds.base.n / (st->train_s + st->add_s));
    comp_metric(c, "index_bytes", "B", NULL, st->bytes);
    comp_metric(c, "index_cached", NULL, NULL, st->from_cache ? 1 : 0);
    comp_provenance(c, "index", st->from_cache ? "from the workspace cache" : "built");
    comp_provenance(c, "ground_truth", st->truth_source);

    double *rs = xmalloc((size_t)st->rounds * sizeof(double));
    memcpy(rs, st->round_s, (size_t)st->rounds * sizeof(double));
    qsort(rs, (size_t)st->rounds, sizeof(double), cmp_double);
    double med = rs[(st->rounds - 1) / 2], best = rs[0];
    free(rs);
    if (med > 0)
        comp_metric(c, "qps", "queries/s", NULL, (double)nq / med);
    if (best > 0)
        comp_metric(c, "qps_best", "queries/s", NULL, (double)nq / best);
    comp_metric(c, "batch_time", "s", NULL, med);

    struct vec_recall_sum rsum;
    vec_recall_summary(st->recall, nq, &rsum);
    comp_metric(c, "recall", NULL, NULL, rsum.mean);
    comp_metric(c, "recall_min", NULL, NULL, rsum.min);
    comp_metric(c, "recall_p5", NULL, NULL, rsum.p5);
    comp_metric(c, "recall_p50", NULL, NULL, rsum.p50);
    comp_metric(c, "recall_perfect", NULL, NULL, rsum.perfect);
    for (size_t a = 0; a < st->nat; a++) {
        char name[64];
        snprintf(name, sizeof(name), "recall_at_%zu", st->at[a]);
        comp_metric(c, name, NULL, NULL, st->recall_at[a]);
    }
    if (st->latency && hdr_count(st->latency) > 0) {
        cl_put_hdr_summary(c, "latency", st->latency);
        cl_put_histogram(c, "latency", st->latency);
        comp_metric(c, "latency_queries", NULL, NULL, (double)hdr_count(st->latency));
    }
}

static int faiss_finish(struct comp *c)
{
    struct fx_state *st = c->priv;
    if (!st || !st->thread_started)
        return -EINVAL;
    pthread_join(st->thread, NULL);
    st->thread_started = false;
    faiss_live(c, st); /* the final values (the ticks stopped before the end) */
    if (st->result < 0) {
        comp_set_reason(c, "%s", st->err[0] ? st->err : strerror(-st->result));
        return st->result;
    }
    put_results(c, st);
    return 0;
}

static void faiss_cleanup(struct comp *c)
{
    struct fx_state *st = c->priv;
    if (!st)
        return;
    if (st->thread_started) {
        atomic_store(&st->stop, true);
        pthread_join(st->thread, NULL);
    }
    sv_free(st->dataset);
    vec_dataset_free(&st->ds);
    vec_nbrs_free(&st->truth);
    for (size_t i = 0; i < st->nparams; i++)
        free(st->params[i].name);
    free(st->factory);
    free(st->cache_dir);
    free(st->truth_dir);
    free(st->round_s);
    free(st->recall);
    hdr_free(st->latency);
    free(st);
    c->priv = NULL;
}

static int faiss_check(const struct comp_spec *spec, struct diags *d)
{
    const char *factory = cl_chk_text(spec, "index");
    if (factory && (!factory[0] || strlen(factory) > 256))
        cl_chk_fail(spec, d, "index", "expected a FAISS factory string such as HNSW32");
    const char *k = cl_chk_text(spec, "k");
    char *end = NULL;
    long long kv = k ? strtoll(k, &end, 10) : 10;
    if (k && (*end || kv < 1 || kv > FX_K_MAX))
        cl_chk_fail(spec, d, "k", "expected an integer in 1..%d, got '%s'", FX_K_MAX, k);
    const struct sv *ds = sv_get(spec->with, "dataset");
    if (ds && ds->kind == SV_MAP && !sv_get(ds, "synthetic") && !sv_get(ds, "file") &&
        !sv_get(ds, "base"))
        cl_chk_fail(spec, d, "dataset", "give synthetic, file, or base and query_file");
#if !SONDE_HAVE_FAISS
    if (!spec->partial)
        cl_chk_fail(spec, d, NULL,
                    "this sonde was built without FAISS (apt-get install libfaiss-dev "
                    "libopenblas-dev, then build again)");
#endif
    return 0;
}

const struct driver_ops driver_client_faiss = {
    .name = "faiss",
    .role = ROLE_CLIENT,
    .summary = "a FAISS index inside sonde: build time, batch QPS, single-query latency and "
               "recall@k against exact ground truth",
    .opts = faiss_opts,
    .check = faiss_check,
    .start = faiss_start,
    .tick = faiss_tick,
    .stop = faiss_stop,
    .finish = faiss_finish,
    .cleanup = faiss_cleanup,
};
