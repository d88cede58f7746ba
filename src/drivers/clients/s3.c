/* s3.c — the `s3` client: an S3-compatible object store (AWS, MinIO, Ceph RGW, s3rver)
 * loaded through the load engine (loadgen/engine.h), every request signed with AWS
 * Signature Version 4 (util/sigv4.h) by the worker that sends it.
 *
 * A run: the bucket created when asked; a prefill (not measured) PUTs the objects the
 * reads use, keys <prefix>d<NNN>/o<NNNNNNNN> spread over `dirs` prefixes, each object's
 * size drawn from `size` by its index and its content a function of its key (so a GET can
 * be checked: `verify`); then the measured load, each request an operation drawn from
 * `mix` by weight: GET (whole or a `range`), PUT (new keys <prefix>w/<task>/<n>), STAT
 * (HEAD), DELETE (the oldest key this worker PUT, or a missing one: S3 answers 204 either
 * way), LIST (one ListObjectsV2 page under the prefix). Per operation: ops/s, MiB/s,
 * latency (from the intended send) and time-to-first-byte histograms, errors by class.
 * Options: docs/storage.md. */
#include "drivers/clients/client_common.h"
#include "drivers/clients/fanout.h"

#include "core/session.h"
#include "loadgen/engine.h"
#include "loadgen/http_parser.h"
#include "util/hdr.h"
#include "util/rng.h"
#include "util/sigv4.h"
#include "util/units.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S3_CONNS_MAX  100000
#define S3_OBJECT_MAX ((int64_t)1 << 30) /* one PUT; larger objects need multipart */
#define S3_SIZES_MAX  16
#define S3_PATTERN    65536 /* object content: a rotation of one random block */
#define S3_KEY_MAX    512
#define S3_HDR_MAX    (3600 * 1000000000LL)

enum s3_op { OP_GET, OP_PUT, OP_STAT, OP_DELETE, OP_LIST, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"get", "put", "stat", "delete", "list"};

/* Error classes of the s3 client: the engine's first, then S3's. */
enum {
    SE_FORBIDDEN = LG_ERR_COUNT, /* 403: credentials, signature, policy */
    SE_NOT_FOUND,                /* 404: no such key or bucket */
    SE_SLOW_DOWN,                /* 503: SlowDown, throttling */
    SE_CLIENT,                   /* another 4xx */
    SE_SERVER,                   /* another 5xx */
    SE_INTEGRITY,                /* a GET's bytes differ from what was PUT */
    SE_COUNT
};

static const char *s3_err_name(int e)
{
    static const char *const names[] = {"forbidden", "not_found", "slow_down",
                                        "client",    "server",    "integrity"};
    return e < LG_ERR_COUNT ? lg_err_name((enum lg_err)e) : names[e - LG_ERR_COUNT];
}

static const char *const addressing_choices[] = {"path", "virtual", NULL};

static const struct opt_def mp_fields[] = {
    {"size", OPT_SIZE, false, "64MiB", "the object", NULL, NULL},
    {"part_size", OPT_SIZE, false, "8MiB", "each part (>= 5 MiB but the last, on AWS)", NULL, NULL},
    {"parallel", OPT_INT, false, "4", "parts in flight at once", NULL, NULL},
    {"uploads", OPT_INT, false, "1", "objects uploaded one after the other", NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

static const struct opt_def s3_opts[] = {
    {"url", OPT_STR, false, NULL, "the endpoint: http[s]://host:port", NULL, NULL},
    {"target", OPT_STR, false, NULL, "a service of the benchmark to load instead of url", NULL,
     NULL},
    {"bucket", OPT_STR, true, NULL, "the bucket", NULL, NULL},
    {"region", OPT_STR, false, "us-east-1", "the region the requests are signed for", NULL, NULL},
    {"connect_to", OPT_STR, false, NULL,
     "connect to this address instead of the URL's host (the Host header and the signature "
     "keep the URL's name), as curl --connect-to",
     NULL, NULL},
    {"addressing", OPT_ENUM, false, "path",
     "path: /bucket/key; virtual: Host bucket.endpoint (DNS must resolve it)", addressing_choices,
     NULL},
    {"access_key_env", OPT_STR, false, "AWS_ACCESS_KEY_ID",
     "environment variable holding the access key id", NULL, NULL},
    {"secret_key_env", OPT_STR, false, "AWS_SECRET_ACCESS_KEY",
     "environment variable holding the secret key (never stored)", NULL, NULL},
    {"credentials_file", OPT_STR, false, NULL,
     "a file with aws_access_key_id and aws_secret_access_key lines (as ~/.aws/credentials), "
     "instead of the environment",
     NULL, NULL},
    {"profile", OPT_STR, false, "default", "the section of credentials_file", NULL, NULL},
    {"objects", OPT_INT, false, "100", "objects the reads (get, stat) use, PUT by the prefill",
     NULL, NULL},
    {"size", OPT_STR, false, "4KiB",
     "object size: 4KiB, or a table 4KiB:50%,1MiB:40%,64MiB:10%, or uniform:1KiB:1MiB, or "
     "lognormal:64KiB:1 (median, sigma)",
     NULL, NULL},
    {"prefix", OPT_STR, false, "sonde/", "key prefix", NULL, NULL},
    {"dirs", OPT_INT, false, "1", "the objects spread over this many prefixes (fan-out)", NULL,
     NULL},
    {"mix", OPT_STR_MAP, false, "{get: 1}",
     "operations by weight: get, put, stat, delete, list (e.g. {get: 45, put: 15, delete: 10, "
     "stat: 30})",
     NULL, NULL},
    {"range", OPT_SIZE, false, NULL, "GETs read this many bytes at a random offset", NULL, NULL},
    {"list_max", OPT_INT, false, "100", "keys per LIST page", NULL, NULL},
    {"retries", OPT_INT, false, "0",
     "send a request that failed with 503, another 5xx, a timeout or a reset again, up to this "
     "many times (counted in `retries`; only the last try's outcome counts)",
     NULL, NULL},
    {"prefill", OPT_BOOL, false, "true", "PUT the objects before the load (not measured)", NULL,
     NULL},
    {"create_bucket", OPT_BOOL, false, "false", "create the bucket first (an existing one is fine)",
     NULL, NULL},
    {"verify", OPT_BOOL, false, "false", "check every GET's bytes against what was PUT", NULL,
     NULL},
    {"payload_hash", OPT_BOOL, false, "false",
     "sign the SHA-256 of PUT bodies (else UNSIGNED-PAYLOAD, as most S3 tools)", NULL, NULL},
    {"multipart", OPT_MAP, false, NULL,
     "multipart uploads after the prefill, measured apart: {size, part_size, parallel, uploads}",
     NULL, mp_fields},
    {"cleanup", OPT_BOOL, false, "false",
     "after the load, list every key under the prefix (all pages) and delete them", NULL, NULL},
    {"delete_bucket", OPT_BOOL, false, "false", "after the cleanup, delete the bucket", NULL, NULL},
    {"seed", OPT_INT, false, "1", "object sizes, contents, operation draws", NULL, NULL},
    {"connections", OPT_INT, false, "8", "connections in total (closed loop: users)", NULL, NULL},
    {"threads", OPT_INT, false, "1", "worker threads (<= connections)", NULL, NULL},
    {"mode", OPT_ENUM, false, "closed", "load model", cl_mode_choices, NULL},
    {"rate", OPT_FLOAT, false, NULL, "open loop: operations/s in total (required there)", NULL,
     NULL},
    {"arrival", OPT_ENUM, false, "poisson", "open loop: arrival process", cl_arrival_choices, NULL},
    {"burstiness", OPT_FLOAT, false, "1", "gamma arrivals: shape k", NULL, NULL},
    CL_OPTS_BOUNDS,
    CL_OPTS_TIMEOUTS,
    {"tls_verify", OPT_BOOL, false, "false", "https: check the server's certificate", NULL, NULL},
    {"ca_file", OPT_STR, false, NULL, "with tls_verify: trusted CA certificates (PEM)", NULL, NULL},
    CL_OPT_BUSY_POLL,
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

enum size_kind { SZ_TABLE, SZ_UNIFORM, SZ_LOGNORMAL };

struct s3_sizes {
    enum size_kind kind;
    int64_t v[S3_SIZES_MAX];  /* TABLE: sizes; UNIFORM: lo, hi; LOGNORMAL: median */
    double cum[S3_SIZES_MAX]; /* TABLE: cumulative shares; LOGNORMAL: cum[0] = sigma */
    int n;
    int64_t max;
};

struct s3_worker {
    struct s3_req *retry; /* S3_RETRY_QUEUE requests to send again (retries > 0) */
    size_t retry_head, retry_n;
    uint64_t put_seq, del_seq;
    int64_t date_s; /* the second amz_date holds */
    char amz_date[17];
    char date8[9];
    unsigned char key[SIGV4_KEY_LEN];
};

struct s3_opstat {
    struct hdr *latency, *ttfb;
    uint64_t ok, bytes, failed;
};

struct s3_req {
    enum s3_op op;
    int64_t sstar, s, tfb;
    int status, err;
    uint64_t bytes;
    uint64_t obj;      /* GET, STAT: the object index */
    int64_t off;       /* GET: the offset of the next body byte in the object */
    int64_t expect;    /* GET: the bytes expected (whole object or range) */
    int64_t range_off; /* GET: where its range starts (-1: the whole object) */
    uint64_t seq;      /* PUT, DELETE: the number of the key */
    unsigned worker;   /* the thread that sends it (and runs its hooks) */
    int tries;         /* sends so far, retries included */
};

#define S3_RETRY_QUEUE 4096 /* failed requests waiting to be sent again, per thread */

/* What make_request decided for the request on_sent will see (same thread, right after). */
static _Thread_local struct s3_req pending;

struct s3_state {
    struct lg_config cfg;
    struct lg_run *run;
    char *host_header; /* endpoint host[:port] or bucket.host[:port] */
    char *path_base;   /* "/bucket" (path style) or "" */
    char *bucket, *region, *akid, *secret, *prefix_enc;
    uint64_t objects, dirs;
    struct s3_sizes sizes;
    double mix[OP_COUNT]; /* cumulative weights */
    int64_t range, list_max;
    bool verify, payload_hash;
    uint64_t seed, task;
    unsigned char *pattern; /* S3_PATTERN random bytes */
    struct s3_worker *w;
    bool prefilling;
    /* results (under mu) */
    pthread_mutex_t mu;
    bool mu_ok;
    struct s3_opstat ops[OP_COUNT];
    uint64_t requests, ok, errors[SE_COUNT], status_class[6];
    uint64_t retried;    /* failed requests sent again (not counted in requests) */
    int retries;         /* the most times one is sent again */
    struct cl_secs secs; /* requests, errors */
    struct cl_secs bytes_secs;
    int64_t ws, end;
    uint64_t max_requests;
    int64_t status_at;
    bool waited;
    int64_t prefill_ns;
    int64_t fanout; /* batch backend: tasks of the agent job (0: the load runs in sonde) */
    int64_t mp_ns, mp_bytes, mp_uploads; /* the multipart phase */
    struct hdr *mp_parts;                /* its parts' latencies */
};

/* ---- objects: names, sizes, contents --------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static int obj_key(const struct s3_state *st, uint64_t i, char *buf, size_t n)
{
    return snprintf(buf, n, "%sd%03llu/o%08llu", st->prefix_enc, (unsigned long long)(i % st->dirs),
                    (unsigned long long)i);
}

/* The size of object i: drawn from the distribution by its index, the same every run. */
static int64_t obj_size(const struct s3_state *st, uint64_t i)
{
    const struct s3_sizes *z = &st->sizes;
    uint64_t h = mix64(st->seed * 0x9e3779b97f4a7c15ULL + i);
    double u = (double)(h >> 11) * 0x1.0p-53;
    switch (z->kind) {
    case SZ_UNIFORM:
        return z->v[0] + (int64_t)(u * (double)(z->v[1] - z->v[0] + 1));
    case SZ_LOGNORMAL: {
        double u2 = (double)(mix64(h) >> 11) * 0x1.0p-53;
        double g = sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * u2);
        double v = (double)z->v[0] * exp(z->cum[0] * g);
        return v < 1 ? 1 : v > (double)z->max ? z->max : (int64_t)v;
    }
    case SZ_TABLE:
        break;
    }
    int k = 0;
    while (k + 1 < z->n && u >= z->cum[k])
        k++;
    return z->v[k];
}

/* Byte o of the object whose key hashes to kh: a rotation of the pattern. */
static size_t pat_at(uint64_t kh, int64_t o)
{
    return (size_t)((kh + (uint64_t)o) % S3_PATTERN);
}

static uint64_t key_hash(const char *key)
{
    return mix64(hash_fnv1a(key, strlen(key)));
}

/* Appends bytes [from, from + n) of the content of the object with key hash kh. */
static int put_content(const struct s3_state *st, struct sbuf *out, uint64_t kh, int64_t from,
                       int64_t n)
{
    int64_t o = from;
    n += from;
    while (o < n) {
        size_t at = pat_at(kh, o), k = S3_PATTERN - at;
        if ((int64_t)k > n - o)
            k = (size_t)(n - o);
        int r = sbuf_add(out, (const char *)st->pattern + at, k);
        if (r < 0)
            return r;
        o += (int64_t)k;
    }
    return 0;
}

/* ---- signing ------------------------------------------------------------------------------- */

static int refresh_date(struct s3_state *st, struct s3_worker *w)
{
    int64_t now = wall_ns() / 1000000000LL;
    if (now == w->date_s)
        return 0;
    char date[17];
    int r = sigv4_amz_date(now, date);
    if (r < 0)
        return r;
    if (memcmp(date, w->date8, 8) != 0 || !w->date8[0]) {
        memcpy(w->date8, date, 8);
        w->date8[8] = 0;
        r = sigv4_signing_key(st->secret, w->date8, st->region, "s3", w->key);
        if (r < 0)
            return r;
    }
    memcpy(w->amz_date, date, sizeof(date));
    w->date_s = now;
    return 0;
}

/* The signed request: method uri[?query] with the body (NULL: none) into out. */
/* The signed request head: payload_hash is the body's hex SHA-256 or UNSIGNED-PAYLOAD,
 * length the body's (-1: no body, so no Content-Length but for PUT and POST: 0). */
static int build_head(struct s3_state *st, struct s3_worker *w, const char *method, const char *uri,
                      const char *query, const char *range, const char *payload_hash,
                      int64_t length, struct sbuf *out)
{
    int r = refresh_date(st, w);
    if (r < 0)
        return r;
    struct sigv4_header h[4] = {{"host", st->host_header},
                                {"x-amz-content-sha256", payload_hash},
                                {"x-amz-date", w->amz_date},
                                {"range", range}};
    struct sigv4_req sr = {.method = method,
                           .uri = uri,
                           .query = query,
                           .headers = h,
                           .n_headers = range ? 4 : 3,
                           .payload_hash = payload_hash,
                           .access_key_id = st->akid,
                           .signing_key = w->key,
                           .amz_date = w->amz_date,
                           .region = st->region,
                           .service = "s3"};
    r = sbuf_printf(out,
                    "%s %s%s%s HTTP/1.1\r\nHost: %s\r\nx-amz-content-sha256: %s\r\n"
                    "x-amz-date: %s\r\n",
                    method, uri, query && *query ? "?" : "", query ? query : "", st->host_header,
                    payload_hash, w->amz_date);
    if (r == 0 && range)
        r = sbuf_printf(out, "Range: %s\r\n", range);
    r = r ? r : sbuf_puts(out, "Authorization: ");
    r = r ? r : sigv4_authorization(out, &sr);
    if (r == 0 && length < 0 && (!strcmp(method, "PUT") || !strcmp(method, "POST")))
        length = 0;
    if (r == 0 && length >= 0)
        r = sbuf_printf(out, "\r\nContent-Length: %lld\r\n\r\n", (long long)length);
    else if (r == 0)
        r = sbuf_puts(out, "\r\n\r\n");
    return r;
}

/* The signed request with the body (NULL: none) into out. */
static int build(struct s3_state *st, struct s3_worker *w, const char *method, const char *uri,
                 const char *query, const char *range, const char *body, size_t body_len,
                 struct sbuf *out)
{
    char hash[65] = "UNSIGNED-PAYLOAD";
    if (body && st->payload_hash)
        sha256_hex(body, body_len, hash);
    int r = build_head(st, w, method, uri, query, range, hash, body ? (int64_t)body_len : -1, out);
    return r == 0 && body ? sbuf_add(out, body, body_len) : r;
}

/* The lower-case hex digest (md: SHA-256, MD5) of bytes [from, from + n) of the object
 * with key hash kh, computed over the pattern without building them. */
static int content_digest(const struct s3_state *st, uint64_t kh, int64_t from, int64_t n,
                          const EVP_MD *md, char *hex)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, md, NULL);
    for (int64_t o = from; ok && o < from + n;) {
        size_t at = pat_at(kh, o), k = S3_PATTERN - at;
        if ((int64_t)k > from + n - o)
            k = (size_t)(from + n - o);
        ok = EVP_DigestUpdate(ctx, st->pattern + at, k);
        o += (int64_t)k;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, d, &len);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; ok && i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return ok ? 0 : -EIO;
}

/* A PUT of bytes [from, from + n) of the object key: the head (signed over the bytes' hash
 * when payload_hash is on), then the bytes straight into out, never copied twice. */
static int put_request(struct s3_state *st, struct s3_worker *w, const char *uri, const char *query,
                       const char *key, int64_t from, int64_t n, struct sbuf *out)
{
    char hash[65] = "UNSIGNED-PAYLOAD";
    uint64_t kh = key_hash(key);
    if (out->max < (size_t)n + 65536)
        out->max = (size_t)n + 65536;
    int r = st->payload_hash ? content_digest(st, kh, from, n, EVP_sha256(), hash) : 0;
    r = r ? r : build_head(st, w, "PUT", uri, query, NULL, hash, n, out);
    return r ? r : put_content(st, out, kh, from, n);
}

/* ---- requests -------------------------------------------------------------------------- */

static enum s3_op draw_op(const struct s3_state *st, struct rng *rng)
{
    double x = rng_unit(rng) * st->mix[OP_COUNT - 1];
    int k = 0;
    while (k + 1 < OP_COUNT && x >= st->mix[k])
        k++;
    return (enum s3_op)k;
}

/* PUT of object i (the prefill) or of a new key. */
static int make_put(struct s3_state *st, struct s3_worker *w, const char *key, uint64_t size_of,
                    struct sbuf *out)
{
    char uri[S3_KEY_MAX + 128];
    snprintf(uri, sizeof(uri), "%s/%s", st->path_base, key);
    int64_t size = obj_size(st, size_of);
    pending.bytes = (uint64_t)size;
    return put_request(st, w, uri, NULL, key, 0, size, out);
}

/* The request d describes, built and signed. */
static int render(struct s3_state *st, struct s3_worker *w, const struct s3_req *d,
                  struct sbuf *out)
{
    char key[S3_KEY_MAX], uri[S3_KEY_MAX + 128], range[64];
    if (d->op == OP_PUT || d->op == OP_DELETE) {
        snprintf(key, sizeof(key), "%sw/%llu-%u/%llu", st->prefix_enc, (unsigned long long)st->task,
                 d->worker, (unsigned long long)d->seq);
        if (d->op == OP_PUT)
            return make_put(st, w, key, st->objects + d->seq + 1, out);
        snprintf(uri, sizeof(uri), "%s/%s", st->path_base, key);
        return build(st, w, "DELETE", uri, NULL, NULL, NULL, 0, out);
    }
    if (d->op == OP_LIST) {
        snprintf(uri, sizeof(uri), "%s/", st->path_base);
        /* the prefix is sent %-encoded as a query value (its '/' too) */
        struct sbuf q = {0};
        int r = sbuf_printf(&q, "list-type=2&max-keys=%lld&prefix=", (long long)st->list_max);
        r = r ? r : sigv4_uri_encode(&q, st->prefix_enc, strlen(st->prefix_enc), false);
        r = r ? r : build(st, w, "GET", uri, q.s, NULL, NULL, 0, out);
        sbuf_free(&q);
        return r;
    }
    obj_key(st, d->obj, key, sizeof(key));
    snprintf(uri, sizeof(uri), "%s/%s", st->path_base, key);
    if (d->op == OP_STAT)
        return build(st, w, "HEAD", uri, NULL, NULL, NULL, 0, out);
    if (d->range_off < 0)
        return build(st, w, "GET", uri, NULL, NULL, NULL, 0, out);
    snprintf(range, sizeof(range), "bytes=%lld-%lld", (long long)d->range_off,
             (long long)(d->range_off + d->expect - 1));
    return build(st, w, "GET", uri, NULL, range, NULL, 0, out);
}

/* The next operation, drawn from the mix. */
static void draw(struct s3_state *st, struct s3_worker *w, struct rng *rng, struct s3_req *d)
{
    d->op = draw_op(st, rng);
    d->range_off = -1;
    if (d->op == OP_PUT) {
        d->seq = w->put_seq++;
    } else if (d->op == OP_DELETE) {
        d->seq = w->del_seq < w->put_seq ? w->del_seq++ : w->put_seq + (w->del_seq++);
    } else if (d->op == OP_GET || d->op == OP_STAT) {
        d->obj = st->objects ? (uint64_t)(rng_unit(rng) * (double)st->objects) : 0;
        int64_t size = d->op == OP_GET ? obj_size(st, d->obj) : 0;
        d->expect = size;
        if (d->op == OP_GET && st->range > 0 && st->range < size) {
            d->range_off = (int64_t)(rng_unit(rng) * (double)(size - st->range + 1));
            d->expect = st->range;
        }
    }
}

static int s3_make_request(void *ud, unsigned worker, uint64_t n, struct rng *rng, struct sbuf *out)
{
    struct s3_state *st = ud;
    struct s3_worker *w = &st->w[worker];
    char key[S3_KEY_MAX];
    memset(&pending, 0, sizeof(pending));
    pending.worker = worker;
    if (st->prefilling) {
        pending.op = OP_PUT;
        obj_key(st, n, key, sizeof(key));
        return make_put(st, w, key, n, out);
    }
    if (w->retry_n) { /* a failed request first, as it was */
        pending = w->retry[w->retry_head];
        w->retry_head = (w->retry_head + 1) % S3_RETRY_QUEUE;
        w->retry_n--;
    } else
        draw(st, w, rng, &pending);
    pending.off = pending.range_off > 0 ? pending.range_off : 0;
    return render(st, w, &pending, out);
}

/* ---- the hooks (worker threads) ---------------------------------------------------------- */

static void s3_on_sent(void *ud, void **rs, int64_t intended, int64_t sent)
{
    (void)ud;
    struct s3_req *r = xmalloc(sizeof(*r));
    *r = pending;
    r->sstar = intended;
    r->s = sent;
    r->err = -1;
    r->tfb = 0;
    r->tries++;
    if (r->op == OP_GET)
        r->bytes = 0;
    *rs = r;
}

static void s3_on_headers(void *ud, void **rs, int status, int64_t t)
{
    struct s3_req *r = *rs;
    (void)ud;
    if (!r)
        return;
    r->status = status;
    r->tfb = t;
    if (status / 100 == 2)
        return;
    r->err = status == 403   ? SE_FORBIDDEN
             : status == 404 ? SE_NOT_FOUND
             : status == 503 ? SE_SLOW_DOWN
             : status >= 500 ? SE_SERVER
                             : SE_CLIENT;
}

static void s3_on_body(void *ud, void **rs, const char *data, size_t len, int64_t t)
{
    struct s3_state *st = ud;
    struct s3_req *r = *rs;
    (void)t;
    if (!r || r->op != OP_GET || r->err >= 0)
        return;
    if (st->verify) {
        char key[S3_KEY_MAX];
        obj_key(st, r->obj, key, sizeof(key));
        uint64_t kh = key_hash(key);
        size_t done = 0;
        while (done < len) {
            size_t at = pat_at(kh, r->off + (int64_t)done), k = S3_PATTERN - at;
            if (k > len - done)
                k = len - done;
            if (memcmp(data + done, st->pattern + at, k) != 0) {
                r->err = SE_INTEGRITY;
                return;
            }
            done += k;
        }
    }
    r->off += (int64_t)len;
    r->bytes += len;
}

/* Worth sending again: throttled, a server error, a timeout, a connection reset. */
static bool retryable(int e)
{
    return e == SE_SLOW_DOWN || e == SE_SERVER || e == LG_ERR_TIMEOUT || e == LG_ERR_READ ||
           e == LG_ERR_WRITE;
}

static void s3_on_done(void *ud, void **rs, bool ok, enum lg_err err, int64_t t)
{
    struct s3_state *st = ud;
    struct s3_req *r = *rs;
    *rs = NULL;
    if (!r)
        return;
    bool cancelled = !ok && err == LG_ERR_COUNT;
    if (!ok && r->err < 0)
        r->err = (int)err;
    if (ok && r->err < 0 && st->verify && r->op == OP_GET && (int64_t)r->bytes != r->expect)
        r->err = SE_INTEGRITY; /* short or long */
    struct s3_worker *w = &st->w[r->worker];
    bool again = !cancelled && !st->prefilling && r->err >= 0 && r->tries <= st->retries &&
                 retryable(r->err) && w->retry_n < S3_RETRY_QUEUE && w->retry;
    if (again) { /* sent again by this thread's next make_request; counted once, then */
        struct s3_req *q = &w->retry[(w->retry_head + w->retry_n++) % S3_RETRY_QUEUE];
        *q = *r;
        q->err = -1;
        q->status = 0;
        q->bytes = r->op == OP_PUT ? r->bytes : 0;
        pthread_mutex_lock(&st->mu);
        if (t >= st->ws && t < st->end)
            st->retried++;
        pthread_mutex_unlock(&st->mu);
        free(r);
        return;
    }
    if (!cancelled && (st->prefilling || (t >= st->ws && t < st->end))) {
        pthread_mutex_lock(&st->mu);
        if (!st->max_requests || st->requests < st->max_requests) {
            st->requests++;
            cl_count_status(st->status_class, r->status);
            if (r->err >= 0) {
                st->errors[r->err]++;
                st->ops[r->op].failed++;
            } else {
                struct s3_opstat *o = &st->ops[r->op];
                st->ok++;
                o->ok++;
                o->bytes += r->bytes;
                hdr_record(o->latency, t - r->sstar);
                if (r->tfb)
                    hdr_record(o->ttfb, r->tfb - r->s);
            }
            if (!st->prefilling) {
                cl_secs_add(&st->secs, st->ws, t, 1, r->err >= 0);
                cl_secs_add(&st->bytes_secs, st->ws, t, r->err < 0 ? r->bytes : 0, 0);
            }
        }
        pthread_mutex_unlock(&st->mu);
    }
    free(r);
}

static const struct lg_stream_ops s3_hooks = {
    .on_headers = s3_on_headers,
    .on_body = s3_on_body,
    .on_done = s3_on_done,
    .on_sent = s3_on_sent,
};

/* ---- options ------------------------------------------------------------------------------ */

/* size: "4KiB", "4KiB:50%,1MiB:50%", "uniform:1KiB:1MiB", "lognormal:64KiB:1". */
static int parse_sizes(const char *text, struct s3_sizes *z, char *why, size_t n)
{
    memset(z, 0, sizeof(*z));
    char *s = xstrdup(text), *save = NULL;
    int r = 0;
    if (str_startswith(s, "uniform:") || str_startswith(s, "lognormal:")) {
        bool uni = s[0] == 'u';
        char *a = strchr(s, ':') + 1, *b = strchr(a, ':');
        z->kind = uni ? SZ_UNIFORM : SZ_LOGNORMAL;
        if (!b) {
            snprintf(why, n, "expected %s", uni ? "uniform:LO:HI" : "lognormal:MEDIAN:SIGMA");
            free(s);
            return -EINVAL;
        }
        *b++ = 0;
        char *end = NULL;
        if (parse_size_bytes(a, &z->v[0]) < 0 || z->v[0] < 1)
            r = -EINVAL;
        else if (uni && (parse_size_bytes(b, &z->v[1]) < 0 || z->v[1] < z->v[0]))
            r = -EINVAL;
        else if (!uni &&
                 (!(z->cum[0] = strtod(b, &end)) || *end || !(z->cum[0] > 0) || z->cum[0] > 5))
            r = -EINVAL;
        z->max = uni ? z->v[1] : S3_OBJECT_MAX;
        if (r < 0)
            snprintf(why, n, "'%s': sizes like 4KiB%s", text,
                     uni ? ", LO <= HI" : " and a sigma in (0, 5]");
        free(s);
        return r;
    }
    z->kind = SZ_TABLE;
    double total = 0;
    for (char *tok = strtok_r(s, ",", &save); tok && r == 0; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *colon = strchr(tok, ':');
        double share = 100;
        if (colon) {
            *colon++ = 0;
            char *end = NULL;
            share = strtod(colon, &end);
            if (end == colon || strcmp(end, "%") || !(share > 0))
                r = -EINVAL;
        }
        if (z->n == S3_SIZES_MAX || parse_size_bytes(tok, &z->v[z->n]) < 0 || z->v[z->n] < 0)
            r = -EINVAL;
        if (r == 0) {
            total += share;
            z->cum[z->n] = total;
            z->max = z->v[z->n] > z->max ? z->v[z->n] : z->max;
            z->n++;
        }
    }
    free(s);
    if (r == 0 && (!z->n || (z->n > 1 && fabs(total - 100) > 1e-6)))
        r = -EINVAL;
    if (r < 0) {
        snprintf(why, n,
                 "'%s': a size (4KiB), or a table of sizes with shares adding up to 100%% "
                 "(4KiB:50%%,1MiB:50%%), uniform:LO:HI or lognormal:MEDIAN:SIGMA",
                 text);
        return r;
    }
    for (int i = 0; i < z->n; i++)
        z->cum[i] /= total;
    if (z->max > S3_OBJECT_MAX) {
        snprintf(why, n, "'%s': objects above 1 GiB need multipart uploads (not yet)", text);
        return -EINVAL;
    }
    return 0;
}

static int parse_mix(const struct sv *m, double cum[OP_COUNT], char *why, size_t n)
{
    double w[OP_COUNT] = {0}, total = 0;
    if (!m) {
        w[OP_GET] = 1;
    } else {
        for (size_t i = 0; i < m->n; i++) {
            int k = 0;
            while (k < OP_COUNT && strcmp(m->kids[i]->key, op_names[k]))
                k++;
            double x = 0;
            if (k == OP_COUNT) {
                snprintf(why, n, "unknown operation '%s' (get, put, stat, delete, list)",
                         m->kids[i]->key);
                return -EINVAL;
            }
            if (sv_as_double(m->kids[i], &x) < 0 || !(x >= 0)) {
                snprintf(why, n, "'%s': a weight, a number >= 0", m->kids[i]->key);
                return -EINVAL;
            }
            w[k] = x;
        }
    }
    for (int k = 0; k < OP_COUNT; k++)
        cum[k] = (total += w[k]);
    if (!(total > 0)) {
        snprintf(why, n, "give at least one operation a weight above 0");
        return -EINVAL;
    }
    return 0;
}

/* aws_access_key_id / aws_secret_access_key of [profile] in an AWS credentials file. */
static int read_credentials(struct comp *c, struct s3_state *st, const char *path)
{
    char *text = NULL, *save = NULL;
    size_t len = 0;
    int r = read_file(path, 1 << 20, &text, &len);
    if (r < 0) {
        comp_set_reason(c, "option 'credentials_file': cannot read %s: %s", path, strerror(-r));
        return r;
    }
    const char *profile = sv_str(c->spec->with, "profile", "default");
    bool in = false;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t')
            line++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\r' || line[l - 1] == ' '))
            line[--l] = 0;
        if (line[0] == '[') {
            in = l >= 2 && line[l - 1] == ']' && l - 2 == strlen(profile) &&
                 !strncmp(line + 1, profile, l - 2);
            continue;
        }
        char *eq = strchr(line, '=');
        if (!in || !eq)
            continue;
        char *k = line, *v = eq + 1;
        char *ke = eq;
        while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
            ke--;
        *ke = 0;
        while (*v == ' ' || *v == '\t')
            v++;
        if (!strcmp(k, "aws_access_key_id")) {
            free(st->akid);
            st->akid = xstrdup(v);
        } else if (!strcmp(k, "aws_secret_access_key")) {
            free(st->secret);
            st->secret = xstrdup(v);
        }
    }
    memset(text, 0, len);
    free(text);
    if (!st->akid || !st->secret) {
        comp_set_reason(c,
                        "option 'credentials_file': %s has no aws_access_key_id and "
                        "aws_secret_access_key under [%s]",
                        path, profile);
        return -ENOENT;
    }
    return 0;
}

static int read_keys(struct comp *c, struct s3_state *st)
{
    const char *file = cl_opt_text(c->spec->with, "credentials_file");
    if (file)
        return read_credentials(c, st, file);
    const char *ka = sv_str(c->spec->with, "access_key_env", "AWS_ACCESS_KEY_ID"),
               *ks = sv_str(c->spec->with, "secret_key_env", "AWS_SECRET_ACCESS_KEY");
    const char *a = cl_env(c, ka), *s = cl_env(c, ks);
    if (!a || !s) {
        comp_set_reason(c,
                        "no credentials: the environment lacks %s (set access_key_env and "
                        "secret_key_env, or credentials_file)",
                        !a ? ka : ks);
        return -ENOENT;
    }
    st->akid = xstrdup(a);
    st->secret = xstrdup(s);
    return 0;
}

/* The endpoint (url or target) into cfg and the addressing. */
static int endpoint(struct comp *c, struct s3_state *st)
{
    struct cl_url u;
    int r = cl_server_url(c, "the S3 endpoint", &u);
    if (r < 0)
        return r;
    bool vhost = !strcmp(sv_str(c->spec->with, "addressing", "path"), "virtual");
    st->host_header =
        vhost ? xasprintf("%s.%s", st->bucket, u.host_header) : xstrdup(u.host_header);
    st->path_base = vhost ? xstrdup("") : xasprintf("/%s", st->bucket);
    const char *to = cl_opt_text(c->spec->with, "connect_to");
    st->cfg.host = to ? xstrdup(to) : u.host; /* the Host header stays the URL's */
    if (!to)
        u.host = NULL;
    if (to && u.tls)
        st->cfg.sni = xstrdup(u.host); /* TLS still names the URL's host */
    st->cfg.port = u.port;
    st->cfg.tls = u.tls;
    cl_url_clear(&u);
    return 0;
}

static bool bucket_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return false;
    for (const char *p = b; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') && *p != '-' && *p != '.')
            return false;
    return true;
}

static int options(struct comp *c, struct s3_state *st, unsigned task, unsigned ntasks)
{
    const struct sv *w = c->spec->with;
    char why[320] = "";
    int64_t objects = 100, dirs = 1, seed = 1, list_max = 100;
    st->bucket = xstrdup(sv_str(w, "bucket", ""));
    st->region = xstrdup(sv_str(w, "region", "us-east-1"));
    if (!bucket_ok(st->bucket)) {
        comp_set_reason(c, "option 'bucket': '%s' is not a bucket name (3-63 of a-z 0-9 . -)",
                        st->bucket);
        return -EINVAL;
    }
    int r = cl_limits(c, &st->cfg, 8, S3_CONNS_MAX);
    r = r ? r : cl_load_model(c, &st->cfg);
    r = r ? r : cl_opt_int(c, "objects", 100, 0, 1000000000, &objects);
    r = r ? r : cl_opt_int(c, "dirs", 1, 1, 1000, &dirs);
    r = r ? r : cl_opt_int(c, "seed", 1, 0, INT64_MAX, &seed);
    r = r ? r : cl_opt_int(c, "list_max", 100, 1, 1000, &list_max);
    int64_t retries = 0;
    r = r ? r : cl_opt_int(c, "retries", 0, 0, 100, &retries);
    st->retries = (int)retries;
    r = r ? r : cl_opt_bool(c, "verify", false, &st->verify);
    r = r ? r : cl_opt_bool(c, "payload_hash", false, &st->payload_hash);
    r = r ? r : cl_opt_bool(c, "tls_verify", false, &st->cfg.tls_verify);
    if (r < 0)
        return r;
    const char *range = cl_opt_text(w, "range");
    if (range && (parse_size_bytes(range, &st->range) < 0 || st->range < 1)) {
        comp_set_reason(c, "option 'range': a size like 64KiB, got '%s'", range);
        return -EINVAL;
    }
    if (parse_sizes(sv_str(w, "size", "4KiB"), &st->sizes, why, sizeof(why)) < 0) {
        comp_set_reason(c, "option 'size': %s", why);
        return -EINVAL;
    }
    if (parse_mix(sv_get(w, "mix"), st->mix, why, sizeof(why)) < 0) {
        comp_set_reason(c, "option 'mix': %s", why);
        return -EINVAL;
    }
    bool reads = st->mix[OP_GET] > 0 || st->mix[OP_STAT] > st->mix[OP_PUT]; /* get or stat */
    if (reads && objects == 0) {
        comp_set_reason(c, "option 'objects': get and stat need objects (> 0)");
        return -EINVAL;
    }
    struct sbuf p = {0};
    const char *prefix = sv_str(w, "prefix", "sonde/");
    if (strlen(prefix) > 200 || sigv4_uri_encode(&p, prefix, strlen(prefix), true) < 0) {
        comp_set_reason(c, "option 'prefix': at most 200 bytes");
        sbuf_free(&p);
        return -EINVAL;
    }
    st->prefix_enc = sbuf_steal(&p);
    st->objects = (uint64_t)objects;
    st->dirs = (uint64_t)dirs;
    st->seed = (uint64_t)seed;
    st->list_max = list_max;
    st->task = task;
    r = fanout_split(c, &st->cfg, task, ntasks);
    if (r < 0)
        return r;
    if (st->cfg.threads > st->cfg.connections) {
        comp_set_reason(c, "option 'threads' (%u) must not exceed 'connections' (%u)",
                        st->cfg.threads, st->cfg.connections);
        return -EINVAL;
    }
    r = read_keys(c, st);
    return r ? r : endpoint(c, st);
}

/* ---- setup requests: the bucket, the prefill ------------------------------------------- */

/* One signed request outside the load (the bucket, multipart steps): its status and
 * the start of its body. */
static int once_run(struct comp *c, struct s3_state *st, const struct sbuf *req, struct cl_once *o)
{
    return cl_once_run(c, &st->cfg, req, "the S3 endpoint", o);
}

/* The text between <tag> and </tag> in xml, or NULL (caller frees). */
static char *xml_text(const char *xml, const char *tag)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *a = xml ? strstr(xml, open) : NULL;
    const char *b = a ? strstr(a, close) : NULL;
    return b ? xstrndup(a + strlen(open), (size_t)(b - a - (ptrdiff_t)strlen(open))) : NULL;
}

/* "HTTP 404 NoSuchBucket: The specified bucket does not exist" from an S3 error answer
 * (caller frees). */
static char *s3_error(const struct cl_once *o)
{
    char *code = xml_text(o->body.s, "Code"), *msg = xml_text(o->body.s, "Message");
    char *t = xasprintf("HTTP %d%s%s%s%s", o->status, code ? " " : "", code ? code : "",
                        msg ? ": " : "", msg ? msg : "");
    free(code);
    free(msg);
    return t;
}

static int create_bucket(struct comp *c, struct s3_state *st)
{
    struct sbuf req = {0};
    struct cl_once o = {0};
    int r = build(st, &st->w[0], "PUT", st->path_base[0] ? st->path_base : "/", NULL, NULL, NULL, 0,
                  &req);
    r = r ? r : once_run(c, st, &req, &o);
    /* 409 BucketAlreadyOwnedByYou / BucketAlreadyExists: there already */
    if (r == 0 && o.status / 100 != 2 && o.status != 409) {
        char *e = s3_error(&o);
        comp_set_reason(c, "cannot create bucket '%s': %s", st->bucket, e);
        free(e);
        r = -EIO;
    }
    sbuf_free(&req);
    sbuf_free(&o.body);
    return r;
}

static int prefill(struct comp *c, struct s3_state *st)
{
    struct lg_config cfg = st->cfg;
    cfg.threads = 1; /* request numbers 0, 1, ... in order: one per object */
    cl_bounded(&cfg, st->objects);
    st->prefilling = true;
    int64_t t0 = mono_ns();
    int r = cl_run(c, &cfg);
    st->prefill_ns = mono_ns() - t0;
    st->prefilling = false;
    uint64_t errs = 0;
    int top = 0;
    for (int e = 0; e < SE_COUNT; e++) {
        errs += st->errors[e];
        top = st->errors[e] > st->errors[top] ? e : top;
    }
    if (r == 0 && (errs || st->ok < st->objects)) {
        comp_set_reason(c, "prefill: %llu of %llu PUTs failed (mostly %s)%s",
                        (unsigned long long)(errs ? errs : st->objects - st->ok),
                        (unsigned long long)st->objects, s3_err_name(top),
                        st->errors[SE_NOT_FOUND] ? ": does the bucket exist? (create_bucket: true)"
                                                 : "");
        r = -EIO;
    }
    /* the measured counts start from zero */
    memset(st->errors, 0, sizeof(st->errors));
    memset(st->status_class, 0, sizeof(st->status_class));
    st->requests = st->ok = 0;
    for (int k = 0; k < OP_COUNT; k++) {
        st->ops[k].ok = st->ops[k].bytes = st->ops[k].failed = 0;
        hdr_reset(st->ops[k].latency);
        hdr_reset(st->ops[k].ttfb);
    }
    return r;
}

/* ---- multipart uploads ----------------------------------------------------------------- */

struct mp {
    struct s3_state *st;
    char key[S3_KEY_MAX], uri[S3_KEY_MAX + 128];
    char *upload_enc; /* the upload id, %-encoded for the query */
    int64_t size, part_size;
    unsigned nparts;
    char (*etag)[33]; /* per part: MD5 hex of its bytes (S3's ETag of a part) */
    struct hdr *lat;  /* per part: send to answer */
    unsigned failed;
    int status;         /* of a failed part */
    int64_t sent[1024]; /* per part (nparts <= 1024): when it was sent */
};

static _Thread_local unsigned mp_part;

static int mp_make_request(void *ud, unsigned worker, uint64_t n, struct rng *rng, struct sbuf *out)
{
    struct mp *m = ud;
    struct s3_state *st = m->st;
    struct s3_worker *w = &st->w[worker];
    (void)rng;
    if (n >= m->nparts)
        return -ERANGE; /* not reached: sends_bounded */
    int64_t off = (int64_t)n * m->part_size;
    int64_t len = m->size - off < m->part_size ? m->size - off : m->part_size;
    char query[256];
    snprintf(query, sizeof(query), "partNumber=%u&uploadId=%s", (unsigned)n + 1, m->upload_enc);
    int r = content_digest(st, key_hash(m->key), off, len, EVP_md5(), m->etag[n]);
    mp_part = (unsigned)n;
    return r ? r : put_request(st, w, m->uri, query, m->key, off, len, out);
}

static void mp_sent(void *ud, void **rs, int64_t intended, int64_t sent)
{
    struct mp *m = ud;
    (void)intended;
    *rs = (void *)(uintptr_t)(mp_part + 1);
    m->sent[mp_part] = sent;
}

static void mp_headers(void *ud, void **rs, int status, int64_t t)
{
    struct mp *m = ud;
    (void)t;
    if (status / 100 != 2 && *rs) {
        m->failed++;
        m->status = status;
        *rs = NULL; /* counted */
    }
}

static void mp_done(void *ud, void **rs, bool ok, enum lg_err err, int64_t t)
{
    struct mp *m = ud;
    (void)err;
    uintptr_t part = (uintptr_t)*rs;
    *rs = NULL;
    if (!part)
        return;
    if (!ok)
        m->failed++;
    else
        hdr_record(m->lat, t - m->sent[part - 1]);
}

/* POST/DELETE/GET on the multipart object with query; the answer in *o. */
static int mp_call(struct comp *c, struct mp *m, const char *method, const char *query,
                   const char *body, size_t len, struct cl_once *o)
{
    struct sbuf req = {.max = len + 65536};
    int r = build(m->st, &m->st->w[0], method, m->uri, query, NULL, body, len, &req);
    r = r ? r : once_run(c, m->st, &req, o);
    sbuf_free(&req);
    return r;
}

static void mp_abort(struct comp *c, struct mp *m)
{
    char query[256];
    struct cl_once o = {0};
    char *why = c->reason ? xstrdup(c->reason) : NULL;
    snprintf(query, sizeof(query), "uploadId=%s", m->upload_enc);
    mp_call(c, m, "DELETE", query, NULL, 0, &o); /* best effort: the reason stays */
    if (why)
        comp_set_reason(c, "%s", why);
    free(why);
    sbuf_free(&o.body);
}

static int mp_parts(struct comp *c, struct mp *m)
{
    static const struct lg_stream_ops hooks = {
        .on_headers = mp_headers, .on_done = mp_done, .on_sent = mp_sent};
    struct lg_config cfg = m->st->cfg;
    int64_t parallel = 4;
    const struct sv *spec = sv_get(c->spec->with, "multipart");
    const struct sv *pv = spec ? sv_get(spec, "parallel") : NULL;
    double x = 4;
    if (pv && sv_as_double(pv, &x) == 0 && x >= 1 && x <= 1024)
        parallel = (int64_t)x;
    cfg.make_request = mp_make_request;
    cfg.make_request_ud = m;
    cfg.stream = &hooks;
    cfg.stream_ud = m;
    cfg.threads = 1;
    cfg.connections = (unsigned)parallel;
    cl_bounded(&cfg, m->nparts);
    int r = cl_run(c, &cfg);
    if (r == 0 && m->failed) {
        comp_set_reason(c, "multipart upload of %s: %u of %u parts failed%s%d", m->key, m->failed,
                        m->nparts, m->status ? " (HTTP " : "", m->status);
        r = -EIO;
    }
    return r;
}

static int mp_complete(struct comp *c, struct mp *m)
{
    struct sbuf x = {0};
    struct cl_once o = {0};
    char query[256];
    int r = sbuf_puts(&x, "<CompleteMultipartUpload>");
    for (unsigned i = 0; i < m->nparts && r == 0; i++)
        r = sbuf_printf(&x, "<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag></Part>", i + 1,
                        m->etag[i]);
    r = r ? r : sbuf_puts(&x, "</CompleteMultipartUpload>");
    snprintf(query, sizeof(query), "uploadId=%s", m->upload_enc);
    r = r ? r : mp_call(c, m, "POST", query, x.s, x.len, &o);
    /* S3 may answer 200 and put the error in the body */
    if (r == 0 && (o.status != 200 || (o.body.s && strstr(o.body.s, "<Error>")))) {
        char *e = s3_error(&o);
        comp_set_reason(c, "multipart upload of %s: completing it failed: %s", m->key, e);
        free(e);
        r = -EIO;
    }
    sbuf_free(&x);
    sbuf_free(&o.body);
    return r;
}

/* A body checked against the object with key hash kh, piece by piece. */
struct pat_check {
    const unsigned char *pattern;
    uint64_t kh;
    int64_t off;
    bool bad;
};

static void pat_check_body(struct cl_once *o, const char *data, size_t len)
{
    struct pat_check *pc = o->ud;
    for (size_t i = 0; i < len && !pc->bad; i++)
        pc->bad = (unsigned char)data[i] != pc->pattern[pat_at(pc->kh, pc->off + (int64_t)i)];
    pc->off += (int64_t)len;
}

/* A GET of the whole object, its bytes checked. */
static int mp_verify(struct comp *c, struct mp *m)
{
    struct pat_check pc = {.pattern = m->st->pattern, .kh = key_hash(m->key)};
    struct cl_once o = {.on_body = pat_check_body, .ud = &pc};
    int r = mp_call(c, m, "GET", NULL, NULL, 0, &o);
    if (r == 0 && (o.status != 200 || pc.bad || pc.off != m->size)) {
        comp_set_reason(c, "multipart upload of %s: reading it back: %s", m->key,
                        o.status != 200 ? "not HTTP 200"
                        : pc.bad        ? "its bytes differ from the parts sent"
                                        : "its length differs from the parts sent");
        r = -EIO;
    }
    sbuf_free(&o.body);
    return r;
}

/* One upload: create, the parts in parallel, complete (abort when a step fails), check. */
static int mp_one(struct comp *c, struct mp *m)
{
    struct cl_once o = {0};
    int r = mp_call(c, m, "POST", "uploads", NULL, 0, &o);
    char *id = r == 0 && o.status == 200 ? xml_text(o.body.s, "UploadId") : NULL;
    if (r == 0 && !id) {
        char *e = s3_error(&o);
        comp_set_reason(c, "multipart upload of %s: creating it failed: %s", m->key, e);
        free(e);
        r = -EIO;
    }
    sbuf_free(&o.body);
    if (r < 0)
        return r;
    struct sbuf e = {0};
    sigv4_uri_encode(&e, id, strlen(id), false);
    free(id);
    m->upload_enc = sbuf_steal(&e);
    r = mp_parts(c, m);
    r = r ? r : mp_complete(c, m);
    if (r < 0)
        mp_abort(c, m);
    else if (m->st->verify)
        r = mp_verify(c, m);
    free(m->upload_enc);
    m->upload_enc = NULL;
    return r;
}

static int multipart(struct comp *c, struct s3_state *st)
{
    const struct sv *spec = sv_get(c->spec->with, "multipart");
    int64_t size = 64 << 20, part = 8 << 20, uploads = 1;
    const char *t;
    if ((t = cl_opt_text(spec, "size")) && parse_size_bytes(t, &size) < 0)
        size = -1;
    if ((t = cl_opt_text(spec, "part_size")) && parse_size_bytes(t, &part) < 0)
        part = -1;
    double x = 1;
    if (sv_get(spec, "uploads") && (sv_as_double(sv_get(spec, "uploads"), &x) < 0 || x < 1))
        uploads = -1;
    else
        uploads = (int64_t)x;
    if (size < 1 || part < 1 || uploads < 1 || uploads > 1000 || size > ((int64_t)1 << 40) ||
        (size + part - 1) / part > 1024) {
        comp_set_reason(c, "option 'multipart': size and part_size are sizes, at most 1024 "
                           "parts, uploads 1 to 1000");
        return -EINVAL;
    }
    struct mp m = {.st = st, .size = size, .part_size = part};
    m.nparts = (unsigned)((size + part - 1) / part);
    m.etag = xcalloc(m.nparts, sizeof(*m.etag));
    int r = hdr_init(1, S3_HDR_MAX, 3, &m.lat);
    int64_t t0 = mono_ns();
    for (int64_t u = 0; u < uploads && r == 0; u++) {
        snprintf(m.key, sizeof(m.key), "%smp/%llu/%lld", st->prefix_enc,
                 (unsigned long long)st->task, (long long)u);
        snprintf(m.uri, sizeof(m.uri), "%s/%s", st->path_base, m.key);
        r = mp_one(c, &m);
    }
    st->mp_ns = mono_ns() - t0;
    st->mp_bytes = r == 0 ? size * uploads : 0;
    st->mp_uploads = r == 0 ? uploads : 0;
    st->mp_parts = hdr_count(m.lat) ? m.lat : NULL;
    if (!st->mp_parts)
        hdr_free(m.lat);
    free(m.etag);
    return r;
}

/* ---- cleanup: every key under the prefix, listed page by page, deleted ------------------ */

struct sweep {
    struct s3_state *st;
    char **keys; /* %-encoded for the path */
    size_t n;
    uint64_t failed;
};

static int sweep_make_request(void *ud, unsigned worker, uint64_t n, struct rng *rng,
                              struct sbuf *out)
{
    struct sweep *sw = ud;
    char uri[S3_KEY_MAX * 3 + 128];
    (void)rng;
    if (n >= sw->n)
        return -ERANGE;
    snprintf(uri, sizeof(uri), "%s/%s", sw->st->path_base, sw->keys[n]);
    return build(sw->st, &sw->st->w[worker], "DELETE", uri, NULL, NULL, NULL, 0, out);
}

static void sweep_headers(void *ud, void **rs, int status, int64_t t)
{
    struct sweep *sw = ud;
    (void)rs;
    (void)t;
    if (status / 100 != 2)
        sw->failed++;
}

/* The keys of one ListObjectsV2 page appended to sw; *token: the next page's, or NULL. */
static int list_page(struct comp *c, struct s3_state *st, struct sweep *sw, char **token)
{
    struct sbuf q = {0}, req = {0};
    struct cl_once o = {.body_max = 4 << 20};
    char uri[S3_KEY_MAX];
    snprintf(uri, sizeof(uri), "%s/", st->path_base);
    int r = sbuf_puts(&q, "list-type=2&max-keys=1000");
    if (*token) {
        r = r ? r : sbuf_puts(&q, "&continuation-token=");
        r = r ? r : sigv4_uri_encode(&q, *token, strlen(*token), false);
    }
    r = r ? r : sbuf_puts(&q, "&prefix=");
    r = r ? r : sigv4_uri_encode(&q, st->prefix_enc, strlen(st->prefix_enc), false);
    r = r ? r : build(st, &st->w[0], "GET", uri, q.s, NULL, NULL, 0, &req);
    r = r ? r : once_run(c, st, &req, &o);
    free(*token);
    *token = NULL;
    if (r == 0 && o.status != 200) {
        char *e = s3_error(&o);
        comp_set_reason(c, "cleanup: listing the keys failed: %s", e);
        free(e);
        r = -EIO;
    }
    for (const char *p = o.body.s; r == 0 && p && (p = strstr(p, "<Key>"));) {
        const char *e = strstr(p, "</Key>");
        if (!e)
            break;
        struct sbuf k = {0};
        /* the XML escapes of a key: ours use none, others are kept as sent */
        sigv4_uri_encode(&k, p + 5, (size_t)(e - p - 5), true);
        sw->keys = xrealloc(sw->keys, (sw->n + 1) * sizeof(*sw->keys));
        sw->keys[sw->n++] = sbuf_steal(&k);
        p = e;
    }
    char *trunc = r == 0 ? xml_text(o.body.s, "IsTruncated") : NULL;
    if (trunc && !strcmp(trunc, "true"))
        *token = xml_text(o.body.s, "NextContinuationToken");
    if (trunc && !strcmp(trunc, "true") && !*token) {
        comp_set_reason(c, "cleanup: a truncated listing without NextContinuationToken");
        r = -EIO;
    }
    free(trunc);
    sbuf_free(&q);
    sbuf_free(&req);
    sbuf_free(&o.body);
    return r;
}

/* One pass: every key listed (all pages), then deleted. *pages and *deleted grow. */
static int sweep_pass(struct comp *c, struct s3_state *st, int *pages, uint64_t *deleted,
                      uint64_t *failed)
{
    static const struct lg_stream_ops hooks = {.on_headers = sweep_headers};
    struct sweep sw = {.st = st};
    char *token = NULL;
    int r = 0, n = 0;
    do {
        r = list_page(c, st, &sw, &token);
        n++;
    } while (r == 0 && token && n < 100000);
    free(token);
    *pages += n;
    if (r == 0 && sw.n) {
        struct lg_config cfg = st->cfg;
        cfg.make_request = sweep_make_request;
        cfg.make_request_ud = &sw;
        cfg.stream = &hooks;
        cfg.stream_ud = &sw;
        cfg.threads = 1;
        cl_bounded(&cfg, sw.n);
        r = cl_run(c, &cfg);
        *deleted += sw.n - sw.failed;
    }
    *failed = sw.failed;
    for (size_t i = 0; i < sw.n; i++)
        free(sw.keys[i]);
    free(sw.keys);
    return r;
}

/* Passes until one lists no key (at most 4): a key whose DELETE failed (a PUT cut off at
 * the end of the load may still be landing) or that a listing missed is deleted by the
 * next pass; the last pass proves the prefix empty. */
static int cleanup_keys(struct comp *c, struct s3_state *st)
{
    int pages = 0, pass = 0, r = 0;
    uint64_t deleted = 0, failed = 0, before = 0;
    bool empty = false;
    do {
        if (pass && failed)
            sleep_ns(200 * 1000000LL);
        before = deleted;
        r = sweep_pass(c, st, &pages, &deleted, &failed);
        empty = r == 0 && !failed && deleted == before;
    } while (r == 0 && !empty && ++pass < 4);
    if (r == 0 && !empty) {
        comp_set_reason(c,
                        "cleanup: keys remain under the prefix after 4 passes (%llu DELETEs "
                        "failed in the last)",
                        (unsigned long long)failed);
        r = -EIO;
    }
    comp_metric(c, "cleanup_list_pages", NULL, NULL, pages);
    comp_metric(c, "cleanup_deleted", NULL, NULL, (double)deleted);
    return r;
}

static int delete_bucket(struct comp *c, struct s3_state *st)
{
    struct sbuf req = {0};
    struct cl_once o = {0};
    int r = build(st, &st->w[0], "DELETE", st->path_base[0] ? st->path_base : "/", NULL, NULL, NULL,
                  0, &req);
    r = r ? r : once_run(c, st, &req, &o);
    if (r == 0 && o.status / 100 != 2) {
        char *e = s3_error(&o);
        comp_set_reason(c, "cannot delete bucket '%s': %s", st->bucket, e);
        free(e);
        r = -EIO;
    }
    sbuf_free(&req);
    sbuf_free(&o.body);
    return r;
}

/* ---- the driver ---------------------------------------------------------------------------- */

static int setup(struct comp *c, struct s3_state *st, unsigned task, unsigned ntasks)
{
    pthread_mutex_init(&st->mu, NULL);
    st->mu_ok = true;
    int r = options(c, st, task, ntasks);
    if (r < 0)
        return r;
    st->w = xcalloc(st->cfg.threads, sizeof(*st->w));
    for (unsigned i = 0; st->retries > 0 && i < st->cfg.threads; i++)
        st->w[i].retry = xcalloc(S3_RETRY_QUEUE, sizeof(*st->w[i].retry));
    st->pattern = xmalloc(S3_PATTERN);
    struct rng rng;
    rng_seed(&rng, st->seed);
    for (size_t i = 0; i < S3_PATTERN; i += 8) {
        uint64_t v = rng_next(&rng);
        memcpy(st->pattern + i, &v, 8);
    }
    for (int k = 0; k < OP_COUNT && r == 0; k++) {
        r = hdr_init(1, S3_HDR_MAX, 3, &st->ops[k].latency);
        r = r ? r : hdr_init(1, S3_HDR_MAX, 3, &st->ops[k].ttfb);
    }
    st->cfg.make_request = s3_make_request;
    st->cfg.make_request_ud = st;
    st->cfg.stream = &s3_hooks;
    st->cfg.stream_ud = st;
    st->cfg.ca_file = (char *)cl_opt_text(c->spec->with, "ca_file");
    return r;
}

static int s3_start(struct comp *c)
{
    struct s3_state *st = xcalloc(1, sizeof(*st));
    c->priv = st;
    bool create = false, fill = true;
    bool fan = fanout_wanted(c->spec) && c->backend->batch;
    if (fan)
        st->fanout = comp_tasks(c);
    int r = setup(c, st, 0, fan ? (unsigned)st->fanout : 1);
    r = r ? r : cl_opt_bool(c, "create_bucket", false, &create);
    r = r ? r : cl_opt_bool(c, "prefill", true, &fill);
    if (r == 0 && create)
        r = create_bucket(c, st);
    if (r == 0 && fill && st->objects > 0)
        r = prefill(c, st);
    if (r == 0 && fan) {
        /* the bucket and the objects are there: the tasks only load (and multipart) */
        struct sv *with = sv_clone(c->spec->with);
        char *url = xasprintf("%s://%s:%u", st->cfg.tls ? "https" : "http", st->cfg.host,
                              (unsigned)st->cfg.port);
        sv_del(with, "target");
        sv_set(with, "url", sv_new_scalar(url, (struct sv_pos){0}));
        sv_set(with, "prefill", sv_new_scalar("false", (struct sv_pos){0}));
        sv_set(with, "create_bucket", sv_new_scalar("false", (struct sv_pos){0}));
        free(url);
        static const char *const files[] = {"credentials_file", "ca_file", NULL};
        return fanout_start(c, with, files);
    }
    if (r == 0 && sv_get(c->spec->with, "multipart"))
        r = multipart(c, st);
    if (r < 0)
        return r;
    st->max_requests = st->cfg.max_requests;
    st->ws = mono_ns() + st->cfg.warmup_ns;
    st->end = st->cfg.duration_ns > 0 ? st->ws + st->cfg.duration_ns : INT64_MAX;
    return cl_start(c, &st->cfg, &st->run);
}

static int s3_tick(struct comp *c, int64_t now)
{
    struct s3_state *st = c->priv;
    if (st && st->fanout)
        return fanout_tick(c, (unsigned)st->fanout, &st->status_at, now);
    if (!st || cl_done(st->run))
        return 1;
    if (cl_status_due(&st->status_at, now)) {
        struct lg_progress p;
        lg_progress(st->run, &p);
        cl_live(c, &p, true);
        comp_status(c, "%.1f s, %.0f op/s, %llu operations, %llu errors",
                    (double)p.elapsed_ns / 1e9, p.rate_last_s, (unsigned long long)p.requests,
                    (unsigned long long)p.errors);
    }
    return 0;
}

static int s3_stop(struct comp *c)
{
    struct s3_state *st = c->priv;
    if (st)
        cl_stop(st->run, st->waited);
    return 0;
}

/* ---- results: the run's own counts as extras of its statistics (merged as they are
 * when tasks fan out), and the metrics read back from them ------------------------------- */

static int add_hdr_copy(struct lg_stats *s, const char *name, const struct hdr *h)
{
    struct hdr *copy = NULL;
    if (!h || !hdr_count(h))
        return 0;
    int r = hdr_init(hdr_lowest(h), hdr_highest(h), hdr_sigfigs(h), &copy);
    r = r ? r : hdr_merge(copy, h);
    return r ? (hdr_free(copy), r) : lg_extra_add_hdr(s, name, copy);
}

static int s3_collect(struct s3_state *st, struct lg_stats *s)
{
    uint64_t errors[SE_COUNT], requests = st->requests;
    char name[LG_EXTRA_NAME_MAX];
    memcpy(errors, st->errors, sizeof(errors));
    cl_add_engine_errors(errors, &requests, s);
    int r =
        cl_counts_to_extra(s, requests, st->ok, errors, SE_COUNT, s3_err_name, st->status_class);
    for (int k = 0; r == 0 && k < OP_COUNT; k++) {
        snprintf(name, sizeof(name), "%s_ops", op_names[k]);
        r = lg_extra_add_counter(s, name, st->ops[k].ok);
        snprintf(name, sizeof(name), "%s_bytes", op_names[k]);
        r = r ? r : lg_extra_add_counter(s, name, st->ops[k].bytes);
        snprintf(name, sizeof(name), "%s_errors", op_names[k]);
        r = r ? r : lg_extra_add_counter(s, name, st->ops[k].failed);
        snprintf(name, sizeof(name), "%s_latency", op_names[k]);
        r = r ? r : add_hdr_copy(s, name, st->ops[k].latency);
        snprintf(name, sizeof(name), "%s_ttfb", op_names[k]);
        r = r ? r : add_hdr_copy(s, name, st->ops[k].ttfb);
    }
    if (r == 0 && st->bytes_secs.n)
        r = lg_extra_add_secs(s, "bytes", st->bytes_secs.a, st->bytes_secs.n);
    if (r == 0 && st->secs.n) /* failures of every class, integrity too */
        r = lg_extra_add_secs(s, "failed", st->secs.b, st->secs.n);
    if (r == 0 && st->mp_uploads > 0) {
        r = lg_extra_add_counter(s, "multipart_uploads", (uint64_t)st->mp_uploads);
        r = r ? r : lg_extra_add_counter(s, "multipart_bytes", (uint64_t)st->mp_bytes);
        r = r ? r : lg_extra_add_bound(s, "multipart_ns", LG_EXTRA_MAX, st->mp_ns);
        r = r ? r : add_hdr_copy(s, "multipart_part_latency", st->mp_parts);
    }
    if (r == 0 && st->prefill_ns > 0)
        r = lg_extra_add_bound(s, "prefill_ns", LG_EXTRA_MAX, st->prefill_ns);
    r = r ? r : lg_extra_add_counter(s, "retries", st->retried);
    return r;
}

static const struct hdr *extra_hdr(const struct lg_stats *s, const char *name)
{
    const struct lg_extra *x = lg_extra_find(s, name, LG_EXTRA_HDR);
    return x ? x->hdr : NULL;
}

static void put_op(struct comp *c, const struct s3_state *st, const struct lg_stats *s, int k,
                   double window)
{
    char name[64];
    snprintf(name, sizeof(name), "%s_ops", op_names[k]);
    uint64_t ops = lg_extra_count(s, name);
    if (!ops && !(st->mix[k] - (k ? st->mix[k - 1] : 0) > 0))
        return;
    comp_metric(c, name, NULL, NULL, (double)ops);
    snprintf(name, sizeof(name), "%s_errors", op_names[k]);
    comp_metric(c, name, NULL, NULL, (double)lg_extra_count(s, name));
    snprintf(name, sizeof(name), "%s_per_s", op_names[k]);
    comp_metric(c, name, "op/s", NULL, window > 0 ? (double)ops / window : 0);
    if (k == OP_GET || k == OP_PUT) {
        snprintf(name, sizeof(name), "%s_bytes", op_names[k]);
        double bytes = (double)lg_extra_count(s, name);
        comp_metric(c, name, "B", NULL, bytes);
        snprintf(name, sizeof(name), "%s_bw", op_names[k]);
        comp_metric(c, name, "MiB/s", NULL, window > 0 ? bytes / 1048576.0 / window : 0);
    }
    snprintf(name, sizeof(name), "%s_latency", op_names[k]);
    const struct hdr *h = extra_hdr(s, name);
    if (h) {
        cl_put_hdr_summary(c, name, h);
        cl_put_histogram(c, name, h);
    }
    snprintf(name, sizeof(name), "%s_ttfb", op_names[k]);
    if ((h = extra_hdr(s, name))) {
        cl_put_hdr_summary(c, name, h);
        cl_put_histogram(c, name, h);
    }
}

static int s3_report(struct comp *c, struct s3_state *st, const struct lg_stats *s)
{
    uint64_t errors[SE_COUNT], requests = 0, ok = 0, status[6];
    cl_counts_from_extra(s, &requests, &ok, errors, SE_COUNT, s3_err_name, status);
    double window = (double)s->window_ns / 1e9;
    cl_put_counts(c, requests, ok, errors, SE_COUNT, s3_err_name, status);
    comp_metric(c, "throughput", "op/s", NULL, window > 0 ? (double)ok / window : 0);
    if (st->retries > 0)
        comp_metric(c, "retries", NULL, NULL, (double)lg_extra_count(s, "retries"));
    double bytes = (double)(lg_extra_count(s, "get_bytes") + lg_extra_count(s, "put_bytes"));
    comp_metric(c, "bandwidth", "MiB/s", NULL, window > 0 ? bytes / 1048576.0 / window : 0);
    int64_t prefill = lg_extra_value(s, "prefill_ns", LG_EXTRA_MAX, st->prefill_ns);
    if (prefill > 0)
        comp_metric(c, "prefill_time", "s", NULL, (double)prefill / 1e9);
    uint64_t uploads = lg_extra_count(s, "multipart_uploads");
    if (uploads > 0) {
        double t = (double)lg_extra_value(s, "multipart_ns", LG_EXTRA_MAX, 0) / 1e9;
        comp_metric(c, "multipart_uploads", NULL, NULL, (double)uploads);
        comp_metric(c, "multipart_time", "s", NULL, t);
        comp_metric(c, "multipart_bw", "MiB/s", NULL,
                    t > 0 ? (double)lg_extra_count(s, "multipart_bytes") / 1048576.0 / t : 0);
        const struct hdr *h = extra_hdr(s, "multipart_part_latency");
        if (h) {
            cl_put_hdr_summary(c, "multipart_part_latency", h);
            cl_put_histogram(c, "multipart_part_latency", h);
        }
    }
    for (int k = 0; k < OP_COUNT; k++)
        put_op(c, st, s, k, window);
    cl_put_open_loop(c, &st->cfg, s);
    const struct lg_extra *bs = lg_extra_find(s, "bytes", LG_EXTRA_SECS),
                          *fs = lg_extra_find(s, "failed", LG_EXTRA_SECS);
    for (size_t i = 0; i < s->nsecs; i++) {
        int64_t t = s->window_start_wall_ns + (int64_t)i * 1000000000LL;
        comp_series_point(c, "operations", "op/s", NULL, t, (double)s->secs[i].requests);
        comp_series_point(c, "errors", "err/s", NULL, t,
                          fs && i < fs->nsecs ? (double)fs->secs[i] : 0);
        comp_series_point(c, "bandwidth", "MiB/s", NULL, t,
                          bs && i < bs->nsecs ? (double)bs->secs[i] / 1048576.0 : 0);
    }
    return cl_judge(c, ok, errors, SE_COUNT, s3_err_name);
}

static int s3_finish(struct comp *c)
{
    struct s3_state *st = c->priv;
    struct lg_stats *s = NULL;
    if (!st || (!st->run && !st->fanout))
        return -EINVAL;
    int r = fanout_stats(c, st->fanout, st->run, &st->waited, &s);
    if (r == 0 && !st->fanout && (r = s3_collect(st, s)) < 0)
        comp_set_reason(c, "collecting the results: %s", strerror(-r));
    if (r < 0) {
        lg_stats_free(s);
        return r;
    }
    r = s3_report(c, st, s);
    lg_stats_free(s);
    bool sweep = false, drop = false;
    cl_opt_bool(c, "cleanup", false, &sweep);
    cl_opt_bool(c, "delete_bucket", false, &drop);
    int rc = sweep ? cleanup_keys(c, st) : 0;
    rc = rc ? rc : drop ? delete_bucket(c, st) : 0;
    return r ? r : rc;
}

/* ---- the agent (one task of a fan-out job) ---------------------------------------------- */

static void s3_cleanup(struct comp *c);

static int s3_agent_run(const struct sv *with, unsigned task, unsigned ntasks, const char *out_path,
                        const volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    struct comp_spec spec = {
        .role = ROLE_CLIENT, .name = "agent", .driver = "s3", .with = (struct sv *)with};
    struct comp c = {.name = "agent", .spec = &spec};
    struct s3_state *st = xcalloc(1, sizeof(*st));
    struct lg_stats *s = NULL;
    c.priv = st;
    int r = setup(&c, st, task, ntasks);
    if (r == 0 && sv_get(with, "multipart"))
        r = multipart(&c, st);
    if (r == 0) {
        st->max_requests = st->cfg.max_requests;
        st->ws = mono_ns() + st->cfg.warmup_ns;
        st->end = st->cfg.duration_ns > 0 ? st->ws + st->cfg.duration_ns : INT64_MAX;
        r = cl_start(&c, &st->cfg, &st->run);
    }
    r = r ? r : fanout_agent_wait(&c, st->run, &st->waited, stop, &s);
    r = r ? r : s3_collect(st, s);
    r = fanout_agent_write(&c, r, s, out_path, err, errlen);
    s3_cleanup(&c);
    free(c.reason);
    return r;
}

static void s3_cleanup(struct comp *c)
{
    struct s3_state *st = c->priv;
    if (!st)
        return;
    lg_free(st->run);
    for (unsigned i = 0; st->w && i < st->cfg.threads; i++)
        free(st->w[i].retry);
    free(st->w);
    for (int k = 0; k < OP_COUNT; k++) {
        hdr_free(st->ops[k].latency);
        hdr_free(st->ops[k].ttfb);
    }
    cl_secs_free(&st->secs);
    cl_secs_free(&st->bytes_secs);
    hdr_free(st->mp_parts);
    if (st->mu_ok)
        pthread_mutex_destroy(&st->mu);
    if (st->secret) {
        memset(st->secret, 0, strlen(st->secret));
        free(st->secret);
    }
    free(st->akid);
    free(st->pattern);
    free(st->cfg.host);
    free(st->cfg.sni);
    free(st->host_header);
    free(st->path_base);
    free(st->bucket);
    free(st->region);
    free(st->prefix_enc);
    free(st);
    c->priv = NULL;
}

/* ---- validation ------------------------------------------------------------------------- */

static int s3_check(const struct comp_spec *spec, struct diags *d)
{
    size_t before = d ? d->n + d->dropped : 0;
    char why[320];
    if (!d)
        return 0;
    const char *size = cl_chk_text(spec, "size"), *bucket = cl_chk_text(spec, "bucket"),
               *url = cl_chk_text(spec, "url");
    struct s3_sizes z;
    if (size && parse_sizes(size, &z, why, sizeof(why)) < 0)
        cl_chk_fail(spec, d, "size", "%s", why);
    const struct sv *mix = sv_get(spec->with, "mix");
    double cum[OP_COUNT];
    if (mix && mix->kind == SV_MAP && parse_mix(mix, cum, why, sizeof(why)) < 0)
        cl_chk_fail(spec, d, "mix", "%s", why);
    if (bucket && !bucket_ok(bucket))
        cl_chk_fail(spec, d, "bucket", "'%s' is not a bucket name (3-63 of a-z 0-9 . -)", bucket);
    bool has_url = sv_get(spec->with, "url"), has_target = sv_get(spec->with, "target");
    if (has_url && has_target)
        cl_chk_fail(spec, d, "target", "give only one of 'url' and 'target'");
    else if (!has_url && !has_target && !spec->partial)
        cl_chk_fail(spec, d, "url", "give 'url' or 'target' (the S3 endpoint)");
    struct cl_url u = {0};
    if (url && (cl_base_url_parse(url, &u) < 0 || u.path[0]))
        cl_chk_fail(spec, d, "url", "expected http[s]://host[:port] (no path), got '%s'", url);
    cl_url_clear(&u);
    if (sv_get(spec->with, "credentials_file") &&
        (sv_get(spec->with, "access_key_env") || sv_get(spec->with, "secret_key_env")))
        cl_chk_fail(spec, d, "credentials_file",
                    "give either 'credentials_file' or the *_key_env options");
    cl_chk_bounds(spec, d);
    return d->n + d->dropped > before ? -EINVAL : 0;
}

const struct driver_ops driver_client_s3 = {
    .name = "s3",
    .role = ROLE_CLIENT,
    .summary = "S3 object store load (GET, PUT, HEAD, DELETE, LIST mixes), SigV4-signed, with "
               "per-operation latency histograms",
    .opts = s3_opts,
    .job_argv = fanout_argv,
    .agent_run = s3_agent_run,
    .check = s3_check,
    .start = s3_start,
    .tick = s3_tick,
    .stop = s3_stop,
    .finish = s3_finish,
    .cleanup = s3_cleanup,
};
