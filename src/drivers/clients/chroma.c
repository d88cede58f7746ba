/* chroma.c — the `chroma` client: a Chroma server (1.x) loaded through its HTTP API v2
 * on the load engine (loadgen/engine.h).
 *
 * A run: the dataset (vector/vec.h) and its exact ground truth, computed or read from
 * the workspace's cache; the server's heartbeat and version; the tenant and database
 * (created when missing); the collection, per the `existing` policy, with its HNSW
 * configuration; the ingest (not part of the measured load, measured on its own: every
 * base vector added in batches over `ingest_connections` connections, ids the row
 * numbers); the collection's count checked; then the measured load: each request one
 * query (query q = request number mod the queries) or, in a `mix`, a get of random ids
 * whose embeddings are checked. Every answer is parsed and scored against the truth
 * (recall@k, averaged per query). The setup runs in a thread of its own so the
 * session's loop keeps ticking (status lines, a stop). Options, metrics and the API
 * facts: docs/vector.md. */
#include "drivers/clients/client_common.h"

#include "core/session.h"
#include "loadgen/engine.h"
#include "loadgen/http_parser.h"
#include "util/hdr.h"
#include "util/rng.h"
#include "util/util.h"
#include "vector/vec.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CH_CONNS_MAX   10000
#define CH_BATCH_MAX   100000
#define CH_K_MAX       10000
#define CH_LABELS_MAX  1000000
#define CH_GET_MAX     1000
#define CH_HDR_MAX     (3600 * 1000000000LL)
#define CH_BODY_MAX    ((size_t)64 << 20) /* an answer above this is a protocol error */
#define CH_ERRTEXT_MAX 300                /* bytes of a server's error kept for a reason */
#define CH_SAMPLE      8                  /* ids a reused collection is checked on */

enum ch_op { OP_QUERY, OP_GET, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"query", "get"};

/* Error classes: the engine's first (its `protocol` also counts answers that are not the
 * JSON expected), then Chroma's. */
enum {
    CE_CLIENT = LG_ERR_COUNT, /* 4xx: a bad request, a missing collection */
    CE_SERVER,                /* 5xx */
    CE_INTEGRITY,             /* a get's embeddings differ from the dataset's */
    CE_COUNT
};

static const char *ch_err_name(int e)
{
    static const char *const names[] = {"client", "server", "integrity"};
    return e < LG_ERR_COUNT ? lg_err_name((enum lg_err)e) : names[e - LG_ERR_COUNT];
}

enum ch_existing { EX_REUSE, EX_RECREATE, EX_FAIL };
static const char *const existing_choices[] = {"reuse", "recreate", "fail", NULL};

enum ch_phase { PH_DATASET, PH_TRUTH, PH_CONNECT, PH_COLLECTION, PH_INGEST, PH_COUNT, PH_DONE };
static const char *const phase_names[] = {"loading the dataset",
                                          "ground truth",
                                          "connecting",
                                          "collection",
                                          "ingest",
                                          "counting",
                                          "ready"};

static const struct opt_def hnsw_fields[] = {
    {"M", OPT_INT, false, "16", "links per node (Chroma's max_neighbors)", NULL, NULL},
    {"construction_ef", OPT_INT, false, "100",
     "candidates kept while inserting (Chroma's ef_construction)", NULL, NULL},
    {"search_ef", OPT_INT, false, "100", "candidates kept while searching (Chroma's ef_search)",
     NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

static const struct opt_def chroma_opts[] = {
    {"url", OPT_STR, false, NULL, "the server: http[s]://host:port", NULL, NULL},
    {"target", OPT_STR, false, NULL, "a service of the benchmark to load instead of url", NULL,
     NULL},
    {"tenant", OPT_STR, false, "default_tenant", "the tenant (created when missing)", NULL, NULL},
    {"database", OPT_STR, false, "default_database", "the database (created when missing)", NULL,
     NULL},
    {"collection", OPT_STR, false, "sonde",
     "the collection: 3-512 of [a-zA-Z0-9._-], first and last a letter or digit", NULL, NULL},
    {"existing", OPT_ENUM, false, "recreate",
     "when the collection exists: reuse it (its space and the hnsw settings given must match; "
     "ingest skipped when it holds the dataset, else every vector added, the ones it has "
     "ignored), recreate it, or fail",
     existing_choices, NULL},
    {"dataset", OPT_MAP, true, NULL, "the vectors and queries (docs/vector.md)", NULL,
     vec_dataset_fields},
    {"metric", OPT_ENUM, false, "l2", "the dataset's metric, for the ground truth: l2, ip, cosine",
     vec_metric_names, NULL},
    {"space", OPT_ENUM, false, NULL, "the collection's distance: l2, ip, cosine (default: metric)",
     vec_metric_names, NULL},
    {"hnsw", OPT_MAP, false, NULL, "the index: {M, construction_ef, search_ef}", NULL, hnsw_fields},
    {"k", OPT_INT, false, "10", "results per query (n_results; recall@k)", NULL, NULL},
    {"filter_labels", OPT_INT, false, "0",
     "give every vector a label {\"label\": 0..N-1} and filter every query on one (where), recall "
     "against the filtered truth (0: none)",
     NULL, NULL},
    {"batch", OPT_INT, false, "100", "vectors per add request while ingesting", NULL, NULL},
    {"ingest_connections", OPT_INT, false, "4", "add requests in flight while ingesting", NULL,
     NULL},
    {"mix", OPT_STR_MAP, false, "{query: 1}",
     "requests by weight: query, get (a get fetches get_ids random ids, embeddings checked)", NULL,
     NULL},
    {"get_ids", OPT_INT, false, "10", "ids one get fetches", NULL, NULL},
    {"give_up", OPT_DURATION, false, "3s",
     "end the load when nothing succeeded for this long while requests failed (the server is "
     "gone; 0s: never)",
     NULL, NULL},
    {"delete_collection", OPT_BOOL, false, "false", "delete the collection after the load", NULL,
     NULL},
    {"seed", OPT_INT, false, "1", "the labels, the get ids, open-loop arrivals", NULL, NULL},
    {"connections", OPT_INT, false, "1", "connections in total (closed loop: users)", NULL, NULL},
    {"threads", OPT_INT, false, "1",
     "worker threads (<= connections; the ingest's too, at most ingest_connections)", NULL, NULL},
    {"mode", OPT_ENUM, false, "closed", "load model", cl_mode_choices, NULL},
    {"rate", OPT_FLOAT, false, NULL, "open loop: requests/s in total (required there)", NULL, NULL},
    {"arrival", OPT_ENUM, false, "poisson", "open loop: arrival process", cl_arrival_choices, NULL},
    {"burstiness", OPT_FLOAT, false, "1", "gamma arrivals: shape k", NULL, NULL},
    CL_OPTS_BOUNDS,
    CL_OPTS_TIMEOUTS,
    {"tls_verify", OPT_BOOL, false, "false", "https: check the server's certificate", NULL, NULL},
    {"ca_file", OPT_STR, false, NULL, "with tls_verify: trusted CA certificates (PEM)", NULL, NULL},
    CL_OPT_BUSY_POLL,
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

/* One request of the load (or one batch of the ingest). */
struct ch_req {
    enum ch_op op;
    uint64_t q; /* query: its number; get: its first id (the ids a run from there); ingest: the
                 * batch */
    int64_t sstar, s;
    int status, err;
    struct sbuf body;
};

struct ch_state {
    struct comp *c;
    struct lg_config cfg; /* the measured load */
    char *host_header;
    char *db_path;   /* /api/v2/tenants/T/databases/D */
    char *coll_path; /* db_path/collections/ID */
    char *tenant, *database, *collection, *coll_id;
    enum ch_existing existing;
    enum vec_metric metric, space;
    int64_t hnsw_m, hnsw_efc, hnsw_efs; /* -1: not given */
    int64_t k, labels, batch, ingest_conns, get_ids, give_up_ns, seed;
    double mix[OP_COUNT]; /* cumulative weights */
    bool delete_coll;
    /* the dataset and its truth */
    struct vec_dataset ds;
    bool ds_ok;
    struct vec_nbrs truth;
    const char *truth_source;
    char *truth_dir;
    char **qjson; /* every query's vector as a JSON array */
    /* the setup thread */
    struct comp scratch; /* its reasons (never the session's comp from another thread) */
    pthread_t thread;
    bool thread_started;
    atomic_bool setup_done, stopping;
    atomic_int phase;
    int setup_rc;
    pthread_mutex_t run_mu; /* cur: the engine run the setup thread waits for */
    struct lg_run *cur;
    char version[64];
    char *hnsw_desc; /* the collection's configuration as the server reports it */
    /* the ingest */
    atomic_uint_least64_t ingest_added, ingest_failed, next_batch;
    struct hdr *ingest_lat;
    int64_t ingest_ns;
    bool ingest_skipped;
    char ingest_err[CH_ERRTEXT_MAX + 64];
    uint64_t count, count_before; /* the collection's, after and (reused) before the ingest */
    bool reused;
    /* the load (under mu) */
    struct lg_run *run;
    bool waited, gave_up;
    pthread_mutex_t mu;
    bool mu_ok;
    uint64_t requests, ok, errors[CE_COUNT], status_class[6];
    uint64_t op_ok[OP_COUNT], op_failed[OP_COUNT];
    struct hdr *lat[OP_COUNT];
    double *rsum, *r1sum; /* per query: the recalls summed */
    uint32_t *rcount;
    uint64_t filter_violations, results;
    struct cl_secs secs; /* requests, failed */
    int64_t ws, end, last_ok;
    int64_t seen_ok;      /* last_ok as the previous tick saw it */
    uint64_t fails_at_ok; /* failures counted then: more since means failing now */
    uint64_t max_requests;
    int64_t status_at;
};

/* What make_request decided for the request on_sent will see (same thread, right after). */
static _Thread_local struct ch_req pending;

/* ---- names and paths --------------------------------------------------------------------- */

/* Chroma's rule for collection (and, here, tenant and database) names. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 512)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && ((i == 0 || i == n - 1) || (ch != '.' && ch != '_' && ch != '-')))
            return false;
    }
    return true;
}

static const char *const name_rule =
    "3-512 of [a-zA-Z0-9._-], the first and the last a letter or a digit";

/* ---- requests ------------------------------------------------------------------------------ */

static int post_json(const struct ch_state *st, struct sbuf *out, const char *method,
                     const char *path, const char *body, size_t len)
{
    static const char *const headers[] = {"Content-Type: application/json",
                                          "Accept: application/json", NULL};
    if (out->max < len + 4096)
        out->max = len + 4096;
    return http_req_build(out, method, st->host_header, path, body ? headers : headers + 1, body,
                          body ? len : 0);
}

/* A float as JSON: 9 significant digits read back as the same float32 (the shortest such
 * text costs 3 times the CPU: 0.6 s per million floats, a sixth of a 2-core ingest). */
static int put_float(struct sbuf *b, float v)
{
    char t[32];
    snprintf(t, sizeof(t), "%.9g", (double)v);
    return sbuf_puts(b, t);
}

static int put_vector(struct sbuf *b, const float *v, size_t dim)
{
    int r = sbuf_puts(b, "[");
    for (size_t j = 0; r == 0 && j < dim; j++) {
        if (j)
            r = sbuf_puts(b, ",");
        r = r ? r : put_float(b, v[j]);
    }
    return r ? r : sbuf_puts(b, "]");
}

/* Base rows [from, to) as the body of an add. */
static int add_body(const struct ch_state *st, size_t from, size_t to, struct sbuf *b)
{
    const struct vec_mat *m = &st->ds.base;
    int r = sbuf_puts(b, "{\"ids\":[");
    for (size_t i = from; r == 0 && i < to; i++)
        r = sbuf_printf(b, "%s\"%zu\"", i > from ? "," : "", i);
    r = r ? r : sbuf_puts(b, "],\"embeddings\":[");
    for (size_t i = from; r == 0 && i < to; i++) {
        if (i > from)
            r = sbuf_puts(b, ",");
        r = r ? r : put_vector(b, m->data + i * m->dim, m->dim);
    }
    r = r ? r : sbuf_puts(b, "]");
    if (r == 0 && st->ds.base_label) {
        r = sbuf_puts(b, ",\"metadatas\":[");
        for (size_t i = from; r == 0 && i < to; i++)
            r = sbuf_printf(b, "%s{\"label\":%d}", i > from ? "," : "", (int)st->ds.base_label[i]);
        r = r ? r : sbuf_puts(b, "]");
    }
    return r ? r : sbuf_puts(b, "}");
}

static int query_request(const struct ch_state *st, uint64_t q, struct sbuf *out)
{
    struct sbuf b = {0};
    char *path = xasprintf("%s/query", st->coll_path);
    int r = sbuf_printf(&b, "{\"query_embeddings\":[%s],\"n_results\":%lld", st->qjson[q],
                        (long long)st->k);
    if (r == 0 && st->ds.query_label)
        r = sbuf_printf(&b, ",\"where\":{\"label\":%d}", (int)st->ds.query_label[q]);
    r = r ? r : sbuf_puts(&b, ",\"include\":[\"distances\"]}");
    r = r ? r : post_json(st, out, "POST", path, b.s, b.len);
    sbuf_free(&b);
    free(path);
    return r;
}

static int get_request(const struct ch_state *st, const int64_t *ids, size_t n, bool labels,
                       struct sbuf *out)
{
    struct sbuf b = {0};
    char *path = xasprintf("%s/get", st->coll_path);
    int r = sbuf_puts(&b, "{\"ids\":[");
    for (size_t i = 0; r == 0 && i < n; i++)
        r = sbuf_printf(&b, "%s\"%lld\"", i ? "," : "", (long long)ids[i]);
    r = r ? r
          : sbuf_printf(&b, "],\"include\":[\"embeddings\"%s]}", labels ? ",\"metadatas\"" : "");
    r = r ? r : post_json(st, out, "POST", path, b.s, b.len);
    sbuf_free(&b);
    free(path);
    return r;
}

/* ---- answers ---------------------------------------------------------------------------- */

/* A result id ("123") as a row number, or -1 when it is not one. */
static int64_t parse_id(const json_t *v)
{
    const char *s = json_string_value(v);
    char *end = NULL;
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    return *end || errno || x < 0 ? -1 : (int64_t)x;
}

/* The ids of a query's answer {"ids": [[...]], ...} into ids (at most max): their number,
 * or -1 when the answer is not that. */
static long query_ids(const json_t *root, int64_t *ids, size_t max)
{
    const json_t *outer = json_object_get(root, "ids");
    const json_t *row = json_array_get(outer, 0);
    if (!json_is_array(outer) || json_array_size(outer) != 1 || !json_is_array(row))
        return -1;
    size_t n = json_array_size(row);
    for (size_t i = 0; i < n && i < max; i++)
        ids[i] = parse_id(json_array_get(row, i));
    return (long)(n < max ? n : max);
}

/* A get's answer checked against the dataset: every id asked for (or, with some_missing,
 * some of them), once, with the dataset's embedding (and label). 1: right, 0: wrong, -1:
 * not a get's answer. */
static int check_get(const struct ch_state *st, const json_t *root, const int64_t *want, size_t n,
                     bool some_missing)
{
    const json_t *ids = json_object_get(root, "ids"), *embs = json_object_get(root, "embeddings");
    const json_t *metas = json_object_get(root, "metadatas");
    if (!json_is_array(ids) || !json_is_array(embs) ||
        json_array_size(ids) != json_array_size(embs))
        return -1;
    size_t dim = st->ds.base.dim, got = json_array_size(ids);
    int good = some_missing ? got <= n : got == n;
    for (size_t i = 0; i < got; i++) {
        int64_t id = parse_id(json_array_get(ids, i));
        const json_t *e = json_array_get(embs, i);
        if (id < 0 || !json_is_array(e))
            return -1;
        bool asked = false;
        for (size_t j = 0; j < n && !asked; j++)
            asked = want[j] == id;
        if (!asked || (size_t)id >= st->ds.base.n || json_array_size(e) != dim) {
            good = 0;
            continue;
        }
        const float *row = st->ds.base.data + (size_t)id * dim;
        for (size_t j = 0; j < dim; j++) {
            const json_t *x = json_array_get(e, j);
            if (!json_is_number(x))
                return -1;
            if ((float)json_number_value(x) != row[j])
                good = 0;
        }
        if (st->ds.base_label) {
            const json_t *lab = json_object_get(json_array_get(metas, i), "label");
            if (!json_is_integer(lab) || json_integer_value(lab) != st->ds.base_label[id])
                good = 0;
        }
    }
    return good;
}

/* ---- the load's hooks (worker threads) --------------------------------------------------- */

static enum ch_op draw_op(const struct ch_state *st, struct rng *rng)
{
    if (!(st->mix[OP_GET] > st->mix[OP_QUERY]))
        return OP_QUERY;
    double x = rng_unit(rng) * st->mix[OP_COUNT - 1];
    return x < st->mix[OP_QUERY] ? OP_QUERY : OP_GET;
}

/* The ids a get starting at from asks for: distinct, a run (wrapping) of get_ids. */
static size_t get_ids_of(const struct ch_state *st, uint64_t from, int64_t *ids)
{
    size_t n = (size_t)st->get_ids < st->ds.base.n ? (size_t)st->get_ids : st->ds.base.n;
    for (size_t i = 0; i < n; i++)
        ids[i] = (int64_t)((from + i) % st->ds.base.n);
    return n;
}

static int ch_make_request(void *ud, unsigned worker, uint64_t n, struct rng *rng, struct sbuf *out)
{
    struct ch_state *st = ud;
    (void)worker;
    memset(&pending, 0, sizeof(pending));
    pending.op = draw_op(st, rng);
    if (pending.op == OP_QUERY) {
        pending.q = n % st->ds.queries.n;
        return query_request(st, pending.q, out);
    }
    int64_t ids[CH_GET_MAX];
    pending.q = (uint64_t)(rng_unit(rng) * (double)st->ds.base.n);
    size_t nids = get_ids_of(st, pending.q, ids);
    return get_request(st, ids, nids, st->ds.base_label != NULL, out);
}

static void ch_on_sent(void *ud, void **rs, int64_t intended, int64_t sent)
{
    (void)ud;
    struct ch_req *r = xmalloc(sizeof(*r));
    *r = pending;
    r->sstar = intended;
    r->s = sent;
    r->err = -1;
    r->body = (struct sbuf){.max = CH_BODY_MAX};
    *rs = r;
}

static int status_err(int status)
{
    return status >= 500 ? CE_SERVER : status >= 400 ? CE_CLIENT : LG_ERR_PROTOCOL;
}

static void ch_on_headers(void *ud, void **rs, int status, int64_t t)
{
    struct ch_req *r = *rs;
    (void)ud;
    (void)t;
    if (!r)
        return;
    r->status = status;
    if (status / 100 != 2)
        r->err = status_err(status);
}

static void ch_on_body(void *ud, void **rs, const char *data, size_t len, int64_t t)
{
    struct ch_req *r = *rs;
    (void)ud;
    (void)t;
    if (r && r->err < 0 && sbuf_add(&r->body, data, len) < 0)
        r->err = LG_ERR_PROTOCOL; /* far larger than any answer asked for */
}

static void req_free(struct ch_req *r)
{
    sbuf_free(&r->body);
    free(r);
}

static void ch_on_done(void *ud, void **rs, bool ok, enum lg_err err, int64_t t)
{
    struct ch_state *st = ud;
    struct ch_req *r = *rs;
    *rs = NULL;
    if (!r)
        return;
    bool cancelled = !ok && err == LG_ERR_COUNT;
    if (!ok && r->err < 0)
        r->err = (int)err;
    /* the answer, parsed outside the lock */
    int64_t *ids = NULL;
    long nres = 0;
    int good = 1;
    if (!cancelled && r->err < 0) {
        json_t *root = json_loadb(r->body.s ? r->body.s : "", r->body.len, 0, NULL);
        if (r->op == OP_QUERY) {
            ids = xmalloc((size_t)st->k * sizeof(*ids));
            nres = query_ids(root, ids, (size_t)st->k);
        } else {
            int64_t want[CH_GET_MAX];
            size_t n = get_ids_of(st, r->q, want);
            good = check_get(st, root, want, n, false);
        }
        json_decref(root);
        if (nres < 0 || good < 0)
            r->err = LG_ERR_PROTOCOL;
        else if (!good)
            r->err = CE_INTEGRITY;
    }
    double rec = 0, rec1 = 0;
    uint64_t violations = 0;
    if (!cancelled && r->err < 0 && r->op == OP_QUERY) {
        rec = vec_recall(&st->ds, &st->truth, r->q, ids, (size_t)nres, (size_t)st->k);
        rec1 = vec_recall(&st->ds, &st->truth, r->q, ids, (size_t)nres, 1);
        for (long i = 0; st->ds.query_label && i < nres; i++)
            violations += ids[i] < 0 || (size_t)ids[i] >= st->ds.base.n ||
                          st->ds.base_label[ids[i]] != st->ds.query_label[r->q];
    }
    if (!cancelled && t >= st->ws && t < st->end) {
        pthread_mutex_lock(&st->mu);
        if (!st->max_requests || st->requests < st->max_requests) {
            st->requests++;
            cl_count_status(st->status_class, r->status);
            if (r->err >= 0) {
                st->errors[r->err]++;
                st->op_failed[r->op]++;
            } else {
                st->ok++;
                st->op_ok[r->op]++;
                hdr_record(st->lat[r->op], t - r->sstar);
                if (r->op == OP_QUERY) {
                    st->rsum[r->q] += rec;
                    st->r1sum[r->q] += rec1;
                    st->rcount[r->q]++;
                    st->filter_violations += violations;
                    st->results += (uint64_t)nres;
                }
            }
            cl_secs_add(&st->secs, st->ws, t, 1, r->err >= 0);
        }
        pthread_mutex_unlock(&st->mu);
    }
    if (!cancelled && r->err < 0)
        __atomic_store_n(&st->last_ok, t, __ATOMIC_RELAXED);
    free(ids);
    req_free(r);
}

static const struct lg_stream_ops ch_hooks = {
    .on_headers = ch_on_headers,
    .on_body = ch_on_body,
    .on_done = ch_on_done,
    .on_sent = ch_on_sent,
};

/* ---- the ingest's hooks ------------------------------------------------------------------- */

static _Thread_local uint64_t pending_batch;

static int ingest_make_request(void *ud, unsigned worker, uint64_t n, struct rng *rng,
                               struct sbuf *out)
{
    struct ch_state *st = ud;
    (void)worker;
    (void)rng;
    /* the engine's numbers interleave its threads; every batch must be sent exactly once */
    n = atomic_fetch_add(&st->next_batch, 1);
    size_t from = (size_t)n * (size_t)st->batch, to = from + (size_t)st->batch;
    if (from >= st->ds.base.n)
        return -ERANGE; /* not reached: sends_bounded */
    if (to > st->ds.base.n)
        to = st->ds.base.n;
    struct sbuf b = {0};
    char *path = xasprintf("%s/add", st->coll_path);
    int r = add_body(st, from, to, &b);
    r = r ? r : post_json(st, out, "POST", path, b.s, b.len);
    sbuf_free(&b);
    free(path);
    pending_batch = n;
    return r;
}

static void ingest_sent(void *ud, void **rs, int64_t intended, int64_t sent)
{
    (void)ud;
    (void)intended;
    struct ch_req *r = xcalloc(1, sizeof(*r));
    r->q = pending_batch;
    r->s = sent;
    r->err = -1;
    r->body = (struct sbuf){.max = CH_ERRTEXT_MAX + 1}; /* + its NUL */
    *rs = r;
}

static void ingest_body(void *ud, void **rs, const char *data, size_t len, int64_t t)
{
    struct ch_req *r = *rs;
    (void)ud;
    (void)t;
    if (r && r->body.len < CH_ERRTEXT_MAX) /* the start of an error's text */
        sbuf_add(&r->body, data,
                 len < CH_ERRTEXT_MAX - r->body.len ? len : CH_ERRTEXT_MAX - r->body.len);
}

static void ingest_done(void *ud, void **rs, bool ok, enum lg_err err, int64_t t)
{
    struct ch_state *st = ud;
    struct ch_req *r = *rs;
    *rs = NULL;
    if (!r)
        return;
    if (ok && r->status / 100 == 2) {
        size_t from = (size_t)r->q * (size_t)st->batch, to = from + (size_t)st->batch;
        to = to > st->ds.base.n ? st->ds.base.n : to;
        atomic_fetch_add(&st->ingest_added, to - from);
        pthread_mutex_lock(&st->mu);
        hdr_record(st->ingest_lat, t - r->s);
        pthread_mutex_unlock(&st->mu);
    } else if (ok || err != LG_ERR_COUNT) {
        atomic_fetch_add(&st->ingest_failed, 1);
        pthread_mutex_lock(&st->mu);
        if (!st->ingest_err[0]) {
            if (ok)
                snprintf(st->ingest_err, sizeof(st->ingest_err), "HTTP %d: %s", r->status,
                         r->body.s ? r->body.s : "");
            else
                snprintf(st->ingest_err, sizeof(st->ingest_err), "%s error", lg_err_name(err));
        }
        pthread_mutex_unlock(&st->mu);
    }
    req_free(r);
}

static const struct lg_stream_ops ingest_hooks = {
    .on_body = ingest_body,
    .on_done = ingest_done,
    .on_sent = ingest_sent,
    .on_headers = ch_on_headers,
};

/* ---- setup requests (the setup thread) ----------------------------------------------------- */

/* An engine run the setup thread waits for, stoppable from the session's thread. */
static int run_setup_engine(struct ch_state *st, const struct lg_config *cfg)
{
    struct lg_run *run = NULL;
    struct lg_stats *s = NULL;
    int r = cl_start(&st->scratch, cfg, &run);
    if (r < 0)
        return r;
    pthread_mutex_lock(&st->run_mu);
    st->cur = run;
    if (atomic_load(&st->stopping))
        lg_stop(run);
    pthread_mutex_unlock(&st->run_mu);
    bool waited = false;
    r = cl_wait(&st->scratch, run, &waited, &s);
    pthread_mutex_lock(&st->run_mu);
    st->cur = NULL;
    pthread_mutex_unlock(&st->run_mu);
    lg_stats_free(s);
    lg_free(run);
    return r;
}

/* "HTTP 404 NotFoundError: Collection [x] does not exist" from an error answer. */
static char *api_error(const struct cl_once *o)
{
    json_t *root = json_loadb(o->body.s ? o->body.s : "", o->body.len, 0, NULL);
    const char *e = json_string_value(json_object_get(root, "error")),
               *m = json_string_value(json_object_get(root, "message"));
    char *t = xasprintf("HTTP %d%s%s%s%.*s", o->status, e ? " " : "", e ? e : "", m ? ": " : "",
                        CH_ERRTEXT_MAX, m ? m : "");
    json_decref(root);
    return t;
}

/* One request of the setup: method on path with body (NULL: none); the answer in *o
 * (the caller frees o->body). */
static int call(struct ch_state *st, const char *method, const char *path, const char *body,
                struct cl_once *o)
{
    struct sbuf req = {0};
    memset(o, 0, sizeof(*o));
    o->body_max = 1 << 20;
    if (atomic_load(&st->stopping))
        return -ECANCELED;
    int r = post_json(st, &req, method, path, body, body ? strlen(body) : 0);
    if (r < 0) {
        comp_set_reason(&st->scratch, "cannot build %s %s: %s", method, path, strerror(-r));
        sbuf_free(&req);
        return r;
    }
    r = cl_once_run(&st->scratch, &st->cfg, &req, "the Chroma server", o);
    sbuf_free(&req);
    if (r == -EIO && !o->status)
        comp_set_reason(&st->scratch, "%s %s: no answer from the Chroma server at %s:%u (%s%s)",
                        method, path, st->cfg.host, (unsigned)st->cfg.port,
                        o->err >= 0 && o->err < LG_ERR_COUNT ? lg_err_name((enum lg_err)o->err)
                                                             : "no reply",
                        o->err >= 0 && o->err < LG_ERR_COUNT ? " error" : "");
    return r;
}

/* A failed step: the reason names it and the server's answer. */
static int step_fail(struct ch_state *st, struct cl_once *o, const char *fmt, ...)
    SONDE_PRINTF(3, 4);
static int step_fail(struct ch_state *st, struct cl_once *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = xvasprintf(fmt, ap);
    va_end(ap);
    char *e = api_error(o);
    comp_set_reason(&st->scratch, "%s: %s", what, e);
    free(e);
    free(what);
    sbuf_free(&o->body);
    return -EIO;
}

static int connect_server(struct ch_state *st)
{
    struct cl_once o;
    int r = call(st, "GET", "/api/v2/heartbeat", NULL, &o);
    if (r == 0 && o.status != 200)
        return step_fail(st, &o, "GET /api/v2/heartbeat (is this a Chroma 1.x server?)");
    sbuf_free(&o.body);
    r = r ? r : call(st, "GET", "/api/v2/version", NULL, &o);
    if (r < 0)
        return r;
    json_t *v = o.status == 200 ? json_loadb(o.body.s, o.body.len, JSON_DECODE_ANY, NULL) : NULL;
    snprintf(st->version, sizeof(st->version), "%s",
             json_is_string(v) ? json_string_value(v) : "unknown");
    json_decref(v);
    sbuf_free(&o.body);
    /* the largest add the server takes (its clients split batches by it) */
    r = call(st, "GET", "/api/v2/pre-flight-checks", NULL, &o);
    if (r == 0 && o.status == 200) {
        json_t *p = json_loadb(o.body.s, o.body.len, 0, NULL);
        json_int_t max = json_integer_value(json_object_get(p, "max_batch_size"));
        json_decref(p);
        if (max > 0 && st->batch > max) {
            comp_set_reason(&st->scratch,
                            "option 'batch' (%lld) is above the server's "
                            "max_batch_size (%lld)",
                            (long long)st->batch, (long long)max);
            r = -EINVAL;
        }
    }
    sbuf_free(&o.body);
    return r;
}

/* The tenant and the database, created when missing. */
static int ensure_database(struct ch_state *st)
{
    struct cl_once o;
    char *path = xasprintf("/api/v2/tenants/%s", st->tenant);
    int r = call(st, "GET", path, NULL, &o);
    if (r == 0 && o.status == 404) {
        sbuf_free(&o.body);
        char *body = xasprintf("{\"name\":\"%s\"}", st->tenant);
        r = call(st, "POST", "/api/v2/tenants", body, &o);
        free(body);
        if (r == 0 && o.status / 100 != 2 && o.status != 409)
            r = step_fail(st, &o, "cannot create tenant '%s'", st->tenant);
    } else if (r == 0 && o.status != 200)
        r = step_fail(st, &o, "GET tenant '%s'", st->tenant);
    sbuf_free(&o.body);
    free(path);
    if (r < 0)
        return r;
    r = call(st, "GET", st->db_path, NULL, &o);
    if (r == 0 && o.status == 404) {
        sbuf_free(&o.body);
        char *body = xasprintf("{\"name\":\"%s\"}", st->database);
        path = xasprintf("/api/v2/tenants/%s/databases", st->tenant);
        r = call(st, "POST", path, body, &o);
        free(body);
        free(path);
        if (r == 0 && o.status / 100 != 2 && o.status != 409) /* 409: made meanwhile */
            r = step_fail(st, &o, "cannot create database '%s'", st->database);
    } else if (r == 0 && o.status != 200)
        r = step_fail(st, &o, "GET database '%s'", st->database);
    sbuf_free(&o.body);
    return r;
}

static char *coll_name_path(const struct ch_state *st)
{
    return xasprintf("%s/collections/%s", st->db_path, st->collection);
}

static int create_collection(struct ch_state *st, struct cl_once *o)
{
    struct sbuf b = {0};
    char *path = xasprintf("%s/collections", st->db_path);
    int r = sbuf_printf(&b, "{\"name\":\"%s\",\"configuration\":{\"hnsw\":{\"space\":\"%s\"",
                        st->collection, vec_metric_names[st->space]);
    if (r == 0 && st->hnsw_m > 0)
        r = sbuf_printf(&b, ",\"max_neighbors\":%lld", (long long)st->hnsw_m);
    if (r == 0 && st->hnsw_efc > 0)
        r = sbuf_printf(&b, ",\"ef_construction\":%lld", (long long)st->hnsw_efc);
    if (r == 0 && st->hnsw_efs > 0)
        r = sbuf_printf(&b, ",\"ef_search\":%lld", (long long)st->hnsw_efs);
    r = r ? r : sbuf_puts(&b, "}}}");
    r = r ? r : call(st, "POST", path, b.s, o);
    if (r == 0 && o->status != 200)
        r = step_fail(st, o, "cannot create collection '%s'", st->collection);
    sbuf_free(&b);
    free(path);
    return r;
}

/* A reused collection's vectors: a sample of ids with their embeddings (and labels); with
 * partial, those it lacks are not held against it. */
static int check_sample(struct ch_state *st, bool partial)
{
    int64_t ids[CH_SAMPLE];
    size_t n = st->ds.base.n < CH_SAMPLE ? st->ds.base.n : CH_SAMPLE;
    for (size_t i = 0; i < n; i++)
        ids[i] = (int64_t)(i * (st->ds.base.n - 1) / (n > 1 ? n - 1 : 1));
    struct sbuf req = {0};
    struct cl_once o = {.body_max = 16 << 20};
    int r = get_request(st, ids, n, st->ds.base_label != NULL, &req);
    r = r ? r : cl_once_run(&st->scratch, &st->cfg, &req, "the Chroma server", &o);
    sbuf_free(&req);
    if (r == 0 && o.status != 200)
        return step_fail(st, &o, "get of a sample of collection '%s'", st->collection);
    json_t *root = r == 0 ? json_loadb(o.body.s ? o.body.s : "", o.body.len, 0, NULL) : NULL;
    int good = r == 0 ? check_get(st, root, ids, n, partial) : 1;
    json_decref(root);
    sbuf_free(&o.body);
    if (r == 0 && good != 1) {
        comp_set_reason(&st->scratch,
                        "collection '%s' holds %llu vectors but not this dataset's (a sample of "
                        "ids has %sother embeddings%s): use existing: recreate",
                        st->collection, (unsigned long long)st->count, partial ? "" : "missing or ",
                        st->ds.base_label ? " or labels" : "");
        r = -EINVAL;
    }
    return r;
}

static int get_count(struct ch_state *st, uint64_t *out)
{
    struct cl_once o;
    char *path = xasprintf("%s/count", st->coll_path);
    int r = call(st, "GET", path, NULL, &o);
    free(path);
    if (r == 0 && o.status != 200)
        return step_fail(st, &o, "count of collection '%s'", st->collection);
    json_t *v = r == 0 ? json_loadb(o.body.s, o.body.len, JSON_DECODE_ANY, NULL) : NULL;
    if (r == 0 && (!json_is_integer(v) || json_integer_value(v) < 0)) {
        comp_set_reason(&st->scratch, "count of collection '%s': not a number", st->collection);
        r = -EIO;
    }
    if (r == 0)
        *out = (uint64_t)json_integer_value(v);
    json_decref(v);
    sbuf_free(&o.body);
    return r;
}

/* What the server says of the collection: its id, dimension, HNSW configuration. */
static int read_collection(struct ch_state *st, const struct cl_once *o, int64_t *dim,
                           json_t **hnsw)
{
    json_t *root = json_loadb(o->body.s ? o->body.s : "", o->body.len, 0, NULL);
    const char *id = json_string_value(json_object_get(root, "id"));
    if (!id || !*id || strpbrk(id, "/?# ")) {
        comp_set_reason(&st->scratch, "collection '%s': the server's answer has no id",
                        st->collection);
        json_decref(root);
        return -EIO;
    }
    free(st->coll_id);
    st->coll_id = xstrdup(id);
    free(st->coll_path);
    st->coll_path = xasprintf("%s/collections/%s", st->db_path, id);
    const json_t *d = json_object_get(root, "dimension");
    *dim = json_is_integer(d) ? (int64_t)json_integer_value(d) : -1;
    const json_t *h = json_object_get(json_object_get(root, "configuration_json"), "hnsw");
    *hnsw = json_is_object(h) ? json_incref((json_t *)h) : NULL;
    json_decref(root);
    return 0;
}

static int64_t hnsw_int(const json_t *h, const char *key)
{
    const json_t *v = json_object_get(h, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

/* A reused collection must be what was asked for: the space, the dimension, and the HNSW
 * settings given (a changed ef_search is stored by the server but used only once it loads
 * the index again, after a restart: measuring then would report settings not in use). */
static int adopt(struct ch_state *st, int64_t dim, const json_t *hnsw)
{
    const char *space = json_string_value(json_object_get(hnsw, "space"));
    if (space && strcmp(space, vec_metric_names[st->space])) {
        comp_set_reason(&st->scratch,
                        "collection '%s' exists with space %s, not %s: use existing: recreate",
                        st->collection, space, vec_metric_names[st->space]);
        return -EINVAL;
    }
    if (dim >= 0 && (size_t)dim != st->ds.base.dim) {
        comp_set_reason(&st->scratch,
                        "collection '%s' holds vectors of dimension %lld, the dataset %zu: use "
                        "existing: recreate",
                        st->collection, (long long)dim, st->ds.base.dim);
        return -EINVAL;
    }
    static const char *const keys[] = {"max_neighbors", "ef_construction", "ef_search"},
                             *const shown[] = {"M", "construction_ef", "search_ef"};
    const int64_t want[] = {st->hnsw_m, st->hnsw_efc, st->hnsw_efs};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(keys); i++) {
        int64_t has = hnsw_int(hnsw, keys[i]);
        if (want[i] > 0 && has > 0 && has != want[i]) {
            comp_set_reason(&st->scratch,
                            "collection '%s' exists with hnsw %s %lld, not %lld (Chroma cannot "
                            "change it on a loaded index): use existing: recreate",
                            st->collection, shown[i], (long long)has, (long long)want[i]);
            return -EINVAL;
        }
    }
    return 0;
}

static void describe_hnsw(struct ch_state *st, const json_t *h)
{
    free(st->hnsw_desc);
    st->hnsw_desc =
        xasprintf("space=%s M=%lld construction_ef=%lld search_ef=%lld",
                  json_string_value(json_object_get(h, "space"))
                      ? json_string_value(json_object_get(h, "space"))
                      : "?",
                  (long long)hnsw_int(h, "max_neighbors"),
                  (long long)hnsw_int(h, "ef_construction"), (long long)hnsw_int(h, "ef_search"));
}

/* The collection per the policy; *fresh: it was created now (empty). */
static int ensure_collection(struct ch_state *st, bool *fresh)
{
    struct cl_once o;
    char *path = coll_name_path(st);
    int r = call(st, "GET", path, NULL, &o);
    *fresh = false;
    if (r == 0 && o.status == 200 && st->existing == EX_FAIL) {
        comp_set_reason(&st->scratch, "collection '%s' already exists (existing: fail)",
                        st->collection);
        r = -EEXIST;
    } else if (r == 0 && o.status == 200 && st->existing == EX_RECREATE) {
        sbuf_free(&o.body);
        r = call(st, "DELETE", path, NULL, &o);
        if (r == 0 && o.status != 200)
            r = step_fail(st, &o, "cannot delete collection '%s' to recreate it", st->collection);
        o.status = 404;
    } else if (r == 0 && o.status != 200 && o.status != 404)
        r = step_fail(st, &o, "GET collection '%s'", st->collection);
    free(path);
    json_t *hnsw = NULL;
    int64_t dim = -1;
    if (r == 0 && o.status == 404) {
        sbuf_free(&o.body);
        r = create_collection(st, &o);
        *fresh = true;
    } else if (r == 0) {
        st->reused = true;
        r = read_collection(st, &o, &dim, &hnsw);
        r = r ? r : adopt(st, dim, hnsw);
    }
    if (r == 0 && *fresh)
        r = read_collection(st, &o, &dim, &hnsw);
    if (r == 0)
        describe_hnsw(st, hnsw);
    json_decref(hnsw);
    sbuf_free(&o.body);
    return r;
}

static int ingest(struct ch_state *st)
{
    struct lg_config cfg = st->cfg;
    uint64_t nb = (st->ds.base.n + (size_t)st->batch - 1) / (size_t)st->batch;
    cfg.make_request = ingest_make_request;
    cfg.make_request_ud = st;
    cfg.stream = &ingest_hooks;
    cfg.stream_ud = st;
    cfg.connections = (unsigned)st->ingest_conns;
    cl_bounded(&cfg, nb);
    int64_t t0 = mono_ns();
    int r = nb ? run_setup_engine(st, &cfg) : 0;
    st->ingest_ns = mono_ns() - t0;
    uint64_t failed = atomic_load(&st->ingest_failed);
    if (r == 0 && atomic_load(&st->stopping))
        r = -ECANCELED;
    if (r == 0 && failed) {
        comp_set_reason(&st->scratch, "ingest: %llu of %llu add requests failed, the first: %s",
                        (unsigned long long)failed, (unsigned long long)nb, st->ingest_err);
        r = -EIO;
    }
    return r;
}

static void set_phase(struct ch_state *st, enum ch_phase p)
{
    atomic_store(&st->phase, (int)p);
}

/* The setup thread: dataset, truth, server, collection, ingest, count. */
static void *setup_main(void *arg)
{
    struct ch_state *st = arg;
    const struct sv *w = st->c->spec->with;
    char err[512] = "";
    set_phase(st, PH_DATASET);
    int r = vec_dataset_load(sv_get(w, "dataset"), st->metric, &st->ds, err, sizeof(err));
    if (r < 0)
        comp_set_reason(&st->scratch, "option 'dataset': %s", err);
    st->ds_ok = r == 0;
    if (r == 0 && st->labels > 0)
        vec_dataset_label(&st->ds, (unsigned)st->labels, (uint64_t)st->seed);
    if (r == 0 && (!st->ds.base.n || !st->ds.queries.n)) {
        comp_set_reason(&st->scratch, "option 'dataset': no base vectors or no queries");
        r = -EINVAL;
    }
    if (r == 0 && (size_t)st->k > st->ds.base.n) {
        comp_set_reason(&st->scratch, "option 'k' (%lld) is above the base vectors (%zu)",
                        (long long)st->k, st->ds.base.n);
        r = -EINVAL;
    }
    if (r == 0 && !atomic_load(&st->stopping)) {
        set_phase(st, PH_TRUTH);
        r = vec_truth_get(&st->ds, (size_t)st->k, 0, &st->stopping, st->truth_dir, 10, &st->truth,
                          &st->truth_source, err, sizeof(err));
        if (r < 0)
            comp_set_reason(&st->scratch, "ground truth: %s", err);
    }
    if (r == 0) {
        size_t nq = st->ds.queries.n, dim = st->ds.queries.dim;
        st->qjson = xcalloc(nq, sizeof(*st->qjson));
        for (size_t q = 0; r == 0 && q < nq; q++) {
            struct sbuf b = {0};
            r = put_vector(&b, st->ds.queries.data + q * dim, dim);
            st->qjson[q] = sbuf_steal(&b);
        }
        st->rsum = xcalloc(nq, sizeof(*st->rsum));
        st->r1sum = xcalloc(nq, sizeof(*st->r1sum));
        st->rcount = xcalloc(nq, sizeof(*st->rcount));
    }
    if (r == 0) {
        set_phase(st, PH_CONNECT);
        r = connect_server(st);
    }
    r = r ? r : ensure_database(st);
    bool fresh = false;
    if (r == 0) {
        set_phase(st, PH_COLLECTION);
        r = ensure_collection(st, &fresh);
    }
    if (r == 0 && !fresh) { /* reused: ingest only when it lacks vectors */
        r = get_count(st, &st->count);
        if (r == 0 && st->count > st->ds.base.n) {
            comp_set_reason(&st->scratch,
                            "collection '%s' holds %llu vectors, more than the dataset's %zu: "
                            "use existing: recreate",
                            st->collection, (unsigned long long)st->count, st->ds.base.n);
            r = -EINVAL;
        }
        st->count_before = st->count;
        st->ingest_skipped = r == 0 && st->count == st->ds.base.n;
        if (r == 0 && st->count > 0)
            r = check_sample(st, !st->ingest_skipped);
    }
    if (r == 0 && !st->ingest_skipped) {
        set_phase(st, PH_INGEST);
        r = ingest(st);
    }
    if (r == 0) {
        set_phase(st, PH_COUNT);
        r = get_count(st, &st->count);
        if (r == 0 && st->count != st->ds.base.n) {
            comp_set_reason(&st->scratch,
                            "collection '%s' counts %llu vectors after the ingest, not %zu",
                            st->collection, (unsigned long long)st->count, st->ds.base.n);
            r = -EIO;
        }
    }
    if (r == 0 && atomic_load(&st->stopping))
        r = -ECANCELED;
    if (r < 0 && !st->scratch.reason)
        comp_set_reason(&st->scratch, "setup failed: %s", strerror(-r));
    st->setup_rc = r;
    set_phase(st, PH_DONE);
    atomic_store(&st->setup_done, true);
    return NULL;
}

/* ---- options ----------------------------------------------------------------------------- */

static int parse_mix(const struct sv *m, double cum[OP_COUNT], char *why, size_t n)
{
    double w[OP_COUNT] = {1, 0};
    if (m) {
        w[OP_QUERY] = 0;
        for (size_t i = 0; i < m->n; i++) {
            int k = 0;
            while (k < OP_COUNT && strcmp(m->kids[i]->key, op_names[k]))
                k++;
            if (k == OP_COUNT) {
                snprintf(why, n, "unknown request '%s' (query, get)", m->kids[i]->key);
                return -EINVAL;
            }
            if (sv_as_double(m->kids[i], &w[k]) < 0 || !(w[k] >= 0) || !isfinite(w[k])) {
                snprintf(why, n, "'%s': a weight, a number >= 0", m->kids[i]->key);
                return -EINVAL;
            }
        }
    }
    cum[0] = w[0];
    cum[1] = w[0] + w[1];
    if (!(cum[1] > 0)) {
        snprintf(why, n, "give query or get a weight above 0");
        return -EINVAL;
    }
    return 0;
}

/* The hnsw block's key (-1 when absent). */
static int hnsw_opt(struct comp *c, const char *key, int64_t *out)
{
    const struct sv *h = sv_get(c->spec->with, "hnsw"), *v = h ? sv_get(h, key) : NULL;
    *out = -1;
    if (v && (sv_as_int(v, out) < 0 || *out < 1 || *out > 1000000)) {
        comp_set_reason(c, "option 'hnsw.%s' must be an integer from 1 to 1000000", key);
        return -EINVAL;
    }
    return 0;
}

static int endpoint(struct comp *c, struct ch_state *st)
{
    struct cl_url u;
    int r = cl_server_url(c, "the Chroma server", &u);
    if (r < 0)
        return r;
    st->host_header = u.host_header;
    st->cfg.host = u.host;
    st->cfg.port = u.port;
    st->cfg.tls = u.tls;
    u.host_header = u.host = NULL;
    cl_url_clear(&u);
    return 0;
}

static int options(struct comp *c, struct ch_state *st)
{
    const struct sv *w = c->spec->with;
    char why[256];
    st->tenant = xstrdup(sv_str(w, "tenant", "default_tenant"));
    st->database = xstrdup(sv_str(w, "database", "default_database"));
    st->collection = xstrdup(sv_str(w, "collection", "sonde"));
    const char *bad = !name_ok(st->collection) ? "collection"
                      : !name_ok(st->tenant)   ? "tenant"
                      : !name_ok(st->database) ? "database"
                                               : NULL;
    if (bad) {
        comp_set_reason(c, "option '%s': '%s' is not a name Chroma takes (%s)", bad,
                        sv_str(w, bad, ""), name_rule);
        return -EINVAL;
    }
    const char *ex = sv_str(w, "existing", "recreate");
    st->existing = !strcmp(ex, "reuse") ? EX_REUSE : !strcmp(ex, "fail") ? EX_FAIL : EX_RECREATE;
    if (vec_metric_parse(sv_str(w, "metric", "l2"), &st->metric) < 0) {
        comp_set_reason(c, "option 'metric': l2, ip or cosine");
        return -EINVAL;
    }
    st->space = st->metric;
    if (sv_get(w, "space") && vec_metric_parse(sv_str(w, "space", ""), &st->space) < 0) {
        comp_set_reason(c, "option 'space': l2, ip or cosine");
        return -EINVAL;
    }
    int r = cl_limits(c, &st->cfg, 1, CH_CONNS_MAX);
    r = r ? r : cl_load_model(c, &st->cfg);
    r = r ? r : cl_opt_int(c, "k", 10, 1, CH_K_MAX, &st->k);
    r = r ? r : cl_opt_int(c, "filter_labels", 0, 0, CH_LABELS_MAX, &st->labels);
    r = r ? r : cl_opt_int(c, "batch", 100, 1, CH_BATCH_MAX, &st->batch);
    r = r ? r : cl_opt_int(c, "ingest_connections", 4, 1, CL_THREADS_MAX, &st->ingest_conns);
    r = r ? r : cl_opt_int(c, "get_ids", 10, 1, CH_GET_MAX, &st->get_ids);
    r = r ? r : cl_opt_int(c, "seed", 1, 0, INT64_MAX, &st->seed);
    r = r ? r : cl_opt_dur(c, w, "give_up", "3s", &st->give_up_ns);
    r = r ? r : cl_opt_bool(c, "delete_collection", false, &st->delete_coll);
    r = r ? r : cl_opt_bool(c, "tls_verify", false, &st->cfg.tls_verify);
    r = r ? r : hnsw_opt(c, "M", &st->hnsw_m);
    r = r ? r : hnsw_opt(c, "construction_ef", &st->hnsw_efc);
    r = r ? r : hnsw_opt(c, "search_ef", &st->hnsw_efs);
    if (r < 0)
        return r;
    if (parse_mix(sv_get(w, "mix"), st->mix, why, sizeof(why)) < 0) {
        comp_set_reason(c, "option 'mix': %s", why);
        return -EINVAL;
    }
    if (st->cfg.threads > st->cfg.connections) {
        comp_set_reason(c, "option 'threads' (%u) must not exceed 'connections' (%u)",
                        st->cfg.threads, st->cfg.connections);
        return -EINVAL;
    }
    if (!sv_get(w, "dataset")) {
        comp_set_reason(c, "option 'dataset' is missing (the vectors and queries)");
        return -EINVAL;
    }
    st->db_path = xasprintf("/api/v2/tenants/%s/databases/%s", st->tenant, st->database);
    st->cfg.ca_file = (char *)cl_opt_text(w, "ca_file");
    return endpoint(c, st);
}

/* ---- the driver ------------------------------------------------------------------------ */

static int ch_start(struct comp *c)
{
    struct ch_state *st = xcalloc(1, sizeof(*st));
    c->priv = st;
    st->c = c;
    st->scratch = (struct comp){.name = c->name, .spec = c->spec};
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->run_mu, NULL);
    st->mu_ok = true;
    int r = options(c, st);
    for (int k = 0; r == 0 && k < OP_COUNT; k++)
        r = hdr_init(1, CH_HDR_MAX, 3, &st->lat[k]);
    r = r ? r : hdr_init(1, CH_HDR_MAX, 3, &st->ingest_lat);
    if (r < 0)
        return r;
    st->truth_dir = comp_cache_dir(c, "truth");
    st->cfg.make_request = ch_make_request;
    st->cfg.make_request_ud = st;
    st->cfg.stream = &ch_hooks;
    st->cfg.stream_ud = st;
    st->cfg.expect_status = 0;
    r = pthread_create(&st->thread, NULL, setup_main, st);
    if (r != 0) {
        comp_set_reason(c, "cannot start the setup thread: %s", strerror(r));
        return -r;
    }
    st->thread_started = true;
    return 0;
}

/* The setup thread is over: its outcome, then the measured load. */
static int start_load(struct comp *c, struct ch_state *st)
{
    pthread_join(st->thread, NULL);
    st->thread_started = false;
    if (st->version[0])
        comp_provenance(c, "chroma_version", st->version);
    if (st->hnsw_desc)
        comp_provenance(c, "chroma_collection", st->hnsw_desc);
    if (st->ds_ok)
        comp_provenance(c, "dataset", st->ds.desc);
    if (st->truth_source)
        comp_provenance(c, "truth_source", st->truth_source);
    if (st->setup_rc < 0) {
        comp_set_reason(c, "%s", st->scratch.reason ? st->scratch.reason : "setup failed");
        return st->setup_rc;
    }
    st->max_requests = st->cfg.max_requests;
    st->ws = mono_ns() + st->cfg.warmup_ns;
    st->end = st->cfg.duration_ns > 0 ? st->ws + st->cfg.duration_ns : INT64_MAX;
    st->last_ok = st->seen_ok = mono_ns();
    return cl_start(c, &st->cfg, &st->run);
}

static int ch_tick(struct comp *c, int64_t now)
{
    struct ch_state *st = c->priv;
    if (!st)
        return 1;
    if (st->thread_started) {
        if (!atomic_load(&st->setup_done)) {
            if (cl_status_due(&st->status_at, now)) {
                int p = atomic_load(&st->phase);
                if (p == PH_INGEST)
                    comp_status(c, "ingest: %llu of %zu vectors",
                                (unsigned long long)atomic_load(&st->ingest_added), st->ds.base.n);
                else
                    comp_status(c, "%s", phase_names[p]);
            }
            return 0;
        }
        int r = start_load(c, st);
        return r < 0 ? r : 0;
    }
    if (cl_done(st->run))
        return 1;
    int64_t last = __atomic_load_n(&st->last_ok, __ATOMIC_RELAXED);
    struct lg_progress p;
    lg_progress(st->run, &p);
    cl_live(c, &p, true);
    pthread_mutex_lock(&st->mu);
    uint64_t fails = p.errors + (st->requests - st->ok); /* the engine's and the answers' */
    pthread_mutex_unlock(&st->mu);
    if (last != st->seen_ok) {
        st->seen_ok = last;
        st->fails_at_ok = fails;
    }
    if (st->give_up_ns > 0 && !st->gave_up && now - last > st->give_up_ns &&
        fails > st->fails_at_ok) {
        st->gave_up = true; /* the server is gone: the run ends now, counted as it is */
        lg_stop(st->run);
    }
    if (cl_status_due(&st->status_at, now))
        comp_status(c, "%.1f s, %.0f req/s, %llu requests, %llu errors", (double)p.elapsed_ns / 1e9,
                    p.rate_last_s, (unsigned long long)p.requests, (unsigned long long)p.errors);
    return 0;
}

static int ch_stop(struct comp *c)
{
    struct ch_state *st = c->priv;
    if (!st)
        return 0;
    atomic_store(&st->stopping, true);
    pthread_mutex_lock(&st->run_mu);
    if (st->cur)
        lg_stop(st->cur);
    pthread_mutex_unlock(&st->run_mu);
    cl_stop(st->run, st->waited);
    return 0;
}

/* ---- results ------------------------------------------------------------------------------ */

static void put_ingest(struct comp *c, struct ch_state *st)
{
    uint64_t added = atomic_load(&st->ingest_added);
    comp_metric(c, "ingest_vectors", NULL, NULL, (double)added);
    comp_metric(c, "collection_count", NULL, NULL, (double)st->count);
    if (st->reused)
        comp_metric(c, "collection_count_before", NULL, NULL, (double)st->count_before);
    if (st->ingest_skipped || !added)
        return;
    double t = (double)st->ingest_ns / 1e9;
    comp_metric(c, "ingest_time", "s", NULL, t);
    comp_metric(c, "ingest_rate", "vectors/s", NULL, t > 0 ? (double)added / t : 0);
    cl_put_hdr_summary(c, "ingest_batch_latency", st->ingest_lat);
    cl_put_histogram(c, "ingest_batch_latency", st->ingest_lat);
}

static void put_recall(struct comp *c, struct ch_state *st)
{
    size_t nq = st->ds.queries.n, n = 0;
    double *per = xcalloc(nq ? nq : 1, sizeof(*per)), sum1 = 0;
    for (size_t q = 0; q < nq; q++) {
        if (!st->rcount[q])
            continue;
        sum1 += st->r1sum[q] / st->rcount[q];
        per[n++] = st->rsum[q] / st->rcount[q];
    }
    if (n) {
        struct vec_recall_sum s;
        vec_recall_summary(per, n, &s);
        comp_metric(c, "recall", NULL, NULL, s.mean);
        comp_metric(c, "recall_min", NULL, NULL, s.min);
        comp_metric(c, "recall_p5", NULL, NULL, s.p5);
        comp_metric(c, "recall_p50", NULL, NULL, s.p50);
        comp_metric(c, "recall_perfect", NULL, NULL, s.perfect);
        comp_metric(c, "recall_at_1", NULL, NULL, sum1 / (double)n);
        comp_metric(c, "recall_queries", NULL, NULL, (double)n);
        comp_metric(c, "k", NULL, NULL, (double)st->k);
    }
    free(per);
    if (st->labels > 0)
        comp_metric(c, "filter_violations", NULL, NULL, (double)st->filter_violations);
}

static int ch_finish(struct comp *c)
{
    struct ch_state *st = c->priv;
    struct lg_stats *s = NULL;
    if (!st || !st->run)
        return -EINVAL;
    int r = cl_wait(c, st->run, &st->waited, &s);
    if (r == 0)
        cl_live_final(c, st->run);
    if (r < 0)
        return r;
    uint64_t errors[CE_COUNT], requests = st->requests;
    memcpy(errors, st->errors, sizeof(errors));
    cl_add_engine_errors(errors, &requests, s);
    double window = (double)s->window_ns / 1e9;
    put_ingest(c, st);
    cl_put_counts(c, requests, st->ok, errors, CE_COUNT, ch_err_name, st->status_class);
    comp_metric(c, "qps", "queries/s", NULL, window > 0 ? (double)st->op_ok[OP_QUERY] / window : 0);
    cl_put_hdr_summary(c, "latency", st->lat[OP_QUERY]);
    cl_put_histogram(c, "latency", st->lat[OP_QUERY]);
    if (st->mix[OP_GET] > st->mix[OP_QUERY]) {
        comp_metric(c, "queries", NULL, NULL, (double)st->op_ok[OP_QUERY]);
        comp_metric(c, "gets", NULL, NULL, (double)st->op_ok[OP_GET]);
        comp_metric(c, "get_per_s", "req/s", NULL,
                    window > 0 ? (double)st->op_ok[OP_GET] / window : 0);
        cl_put_hdr_summary(c, "get_latency", st->lat[OP_GET]);
        cl_put_histogram(c, "get_latency", st->lat[OP_GET]);
    }
    put_recall(c, st);
    cl_put_open_loop(c, &st->cfg, s);
    for (size_t i = 0; i < s->nsecs; i++) {
        int64_t t = s->window_start_wall_ns + (int64_t)i * 1000000000LL;
        comp_series_point(c, "requests", "req/s", NULL, t,
                          i < st->secs.n ? (double)st->secs.a[i] : 0);
        comp_series_point(c, "errors", "err/s", NULL, t,
                          i < st->secs.n ? (double)st->secs.b[i] : 0);
    }
    lg_stats_free(s);
    if (st->gave_up) {
        int top = 0;
        for (int e = 1; e < CE_COUNT; e++)
            top = errors[e] > errors[top] ? e : top;
        comp_set_reason(c,
                        "the server stopped answering: nothing succeeded for %.1f s (%llu "
                        "errors, mostly %s)",
                        (double)st->give_up_ns / 1e9,
                        (unsigned long long)cl_total_errors(errors, CE_COUNT), ch_err_name(top));
        r = -EIO;
    } else
        r = cl_judge(c, st->ok, errors, CE_COUNT, ch_err_name);
    if (st->delete_coll) {
        struct cl_once o;
        char *path = coll_name_path(st);
        int d = call(st, "DELETE", path, NULL, &o);
        free(path);
        if (d == 0 && o.status != 200) {
            char *e = api_error(&o);
            comp_warn(c, "cannot delete collection '%s': %s", st->collection, e);
            free(e);
        } else if (d < 0)
            comp_warn(c, "cannot delete collection '%s': %s", st->collection,
                      st->scratch.reason ? st->scratch.reason : strerror(-d));
        sbuf_free(&o.body);
    }
    return r;
}

static void ch_cleanup(struct comp *c)
{
    struct ch_state *st = c->priv;
    if (!st)
        return;
    if (st->thread_started) {
        ch_stop(c);
        pthread_join(st->thread, NULL);
    }
    if (st->run && !st->waited) {
        struct lg_stats *s = NULL;
        lg_stop(st->run);
        lg_wait(st->run, &s);
        lg_stats_free(s);
    }
    lg_free(st->run);
    for (int k = 0; k < OP_COUNT; k++)
        hdr_free(st->lat[k]);
    hdr_free(st->ingest_lat);
    for (size_t q = 0; st->qjson && q < st->ds.queries.n; q++)
        free(st->qjson[q]);
    free(st->qjson);
    free(st->rsum);
    free(st->r1sum);
    free(st->rcount);
    cl_secs_free(&st->secs);
    vec_nbrs_free(&st->truth);
    vec_dataset_free(&st->ds);
    if (st->mu_ok) {
        pthread_mutex_destroy(&st->mu);
        pthread_mutex_destroy(&st->run_mu);
    }
    free(st->scratch.reason);
    free(st->truth_dir);
    free(st->cfg.host);
    free(st->host_header);
    free(st->db_path);
    free(st->coll_path);
    free(st->coll_id);
    free(st->tenant);
    free(st->database);
    free(st->collection);
    free(st->hnsw_desc);
    free(st);
    c->priv = NULL;
}

/* ---- validation ------------------------------------------------------------------------- */

static void chk_int(const struct comp_spec *spec, struct diags *d, const struct sv *map,
                    const char *key, const char *shown, int64_t lo, int64_t hi)
{
    const struct sv *v = map ? sv_get(map, key) : NULL;
    int64_t x;
    if (!v || v->kind != SV_SCALAR || recipe_has_ref(v->str))
        return;
    if (sv_as_int(v, &x) < 0 || x < lo || x > hi)
        cl_chk_fail(spec, d, shown, "%s%s%smust be an integer from %lld to %lld, got '%s'",
                    strcmp(key, shown) ? "'" : "", strcmp(key, shown) ? key : "",
                    strcmp(key, shown) ? "' " : "", (long long)lo, (long long)hi, v->str);
}

static int ch_check(const struct comp_spec *spec, struct diags *d)
{
    if (!d)
        return 0;
    size_t before = d->n + d->dropped;
    char why[256];
    static const char *const names[] = {"collection", "tenant", "database"};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(names); i++) {
        const char *v = cl_chk_text(spec, names[i]);
        if (v && !name_ok(v))
            cl_chk_fail(spec, d, names[i], "'%s' is not a name Chroma takes (%s)", v, name_rule);
    }
    const struct sv *w = spec->with;
    chk_int(spec, d, w, "k", "k", 1, CH_K_MAX);
    chk_int(spec, d, w, "batch", "batch", 1, CH_BATCH_MAX);
    chk_int(spec, d, w, "ingest_connections", "ingest_connections", 1, CL_THREADS_MAX);
    chk_int(spec, d, w, "filter_labels", "filter_labels", 0, CH_LABELS_MAX);
    chk_int(spec, d, w, "get_ids", "get_ids", 1, CH_GET_MAX);
    const struct sv *h = sv_get(w, "hnsw");
    chk_int(spec, d, h, "M", "hnsw", 1, 1000000);
    chk_int(spec, d, h, "construction_ef", "hnsw", 1, 1000000);
    chk_int(spec, d, h, "search_ef", "hnsw", 1, 1000000);
    static const char *const metrics[] = {"metric", "space"};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(metrics); i++) {
        const char *m = cl_chk_text(spec, metrics[i]);
        enum vec_metric x;
        if (m && vec_metric_parse(m, &x) < 0)
            cl_chk_fail(spec, d, metrics[i], "'%s' is not a metric (l2, ip, cosine)", m);
    }
    const struct sv *mix = sv_get(w, "mix");
    double cum[OP_COUNT];
    if (mix && mix->kind == SV_MAP && parse_mix(mix, cum, why, sizeof(why)) < 0)
        cl_chk_fail(spec, d, "mix", "%s", why);
    if (!spec->partial && !sv_get(w, "dataset"))
        cl_chk_fail(spec, d, NULL, "give a 'dataset' block (synthetic: ..., or file: / base: ...)");
    const struct sv *ds = sv_get(w, "dataset");
    if (ds && ds->kind != SV_MAP)
        cl_chk_fail(spec, d, "dataset", "a map (synthetic: ..., or file: / base: ...)");
    bool has_url = sv_get(w, "url"), has_target = sv_get(w, "target");
    const char *url = cl_chk_text(spec, "url");
    if (has_url && has_target)
        cl_chk_fail(spec, d, "target", "give only one of 'url' and 'target'");
    else if (!has_url && !has_target && !spec->partial)
        cl_chk_fail(spec, d, "url", "give 'url' or 'target' (the Chroma server)");
    struct cl_url u = {0};
    if (url && (cl_base_url_parse(url, &u) < 0 || u.path[0]))
        cl_chk_fail(spec, d, "url", "expected http[s]://host[:port] (no path), got '%s'", url);
    cl_url_clear(&u);
    cl_chk_bounds(spec, d);
    return d->n + d->dropped > before ? -EINVAL : 0;
}

const struct driver_ops driver_client_chroma = {
    .name = "chroma",
    .role = ROLE_CLIENT,
    .summary = "Chroma vector database (HTTP API v2): ingest rate, query QPS and latency, "
               "recall@k against exact ground truth, filtered search",
    .opts = chroma_opts,
    .check = ch_check,
    .start = ch_start,
    .tick = ch_tick,
    .stop = ch_stop,
    .finish = ch_finish,
    .cleanup = ch_cleanup,
};
