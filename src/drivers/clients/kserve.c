/* kserve.c — the `kserve` client: load on a KServe v2 / Triton inference server
 * through the load engine (loadgen/engine.h), closed or open loop. Before the
 * load it checks the server's and the model's readiness and, without `inputs`,
 * reads the model's metadata to build the request's tensors; every request is
 * the same POST /v2/models/{m}[/versions/{v}]/infer with JSON tensors. It
 * measures latency, service time, throughput and inferences/s, and counts
 * errors by class (a 200 whose body is not a usable answer included).
 * Options and the exact rules: docs/kserve.md. */
#include "drivers/clients/client_common.h"
#include "drivers/clients/fanout.h"

#include "core/session.h"
#include "loadgen/engine.h"
#include "loadgen/http_parser.h"
#include "util/hdr.h"
#include "util/rng.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KS_CONNS_MAX   100000
#define KS_BODY_MAX    ((size_t)64 << 20) /* a response body */
#define KS_GET_MAX     ((size_t)4 << 20)  /* a metadata or readiness answer */
#define KS_ELEMS_MAX   ((int64_t)1 << 24) /* tensor elements of one request */
#define KS_BATCH_MAX   1000000
#define KS_DIMS_MAX    16
#define KS_HDR_MAX     (3600LL * 1000000000LL)
#define KS_NS_PER_S    1000000000LL
#define KS_GET_TIMEOUT (10LL * KS_NS_PER_S) /* the start GETs, without `timeout` */

/* ---- datatypes ---------------------------------------------------------------------------- */

enum {
    KD_BOOL,
    KD_UINT8,
    KD_UINT16,
    KD_UINT32,
    KD_UINT64,
    KD_INT8,
    KD_INT16,
    KD_INT32,
    KD_INT64,
    KD_FP16,
    KD_FP32,
    KD_FP64,
    KD_BYTES,
    KD_COUNT
};

static const char *const ks_dtypes[KD_COUNT + 1] = {
    "BOOL",  "UINT8", "UINT16", "UINT32", "UINT64", "INT8",  "INT16",
    "INT32", "INT64", "FP16",   "FP32",   "FP64",   "BYTES", NULL,
};

static const int64_t ks_lo[KD_COUNT] = {
    [KD_INT8] = INT8_MIN, [KD_INT16] = INT16_MIN, [KD_INT32] = INT32_MIN, [KD_INT64] = INT64_MIN};
static const uint64_t ks_hi[KD_COUNT] = {
    [KD_UINT8] = UINT8_MAX,   [KD_UINT16] = UINT16_MAX, [KD_UINT32] = UINT32_MAX,
    [KD_UINT64] = UINT64_MAX, [KD_INT8] = INT8_MAX,     [KD_INT16] = INT16_MAX,
    [KD_INT32] = INT32_MAX,   [KD_INT64] = INT64_MAX};
static const double ks_fmax[KD_COUNT] = {
    [KD_FP16] = 65504.0, [KD_FP32] = 3.4028234663852886e38, [KD_FP64] = 1.7976931348623157e308};

static int ks_dtype(const char *s)
{
    for (int t = 0; t < KD_COUNT; t++)
        if (!strcmp(ks_dtypes[t], s))
            return t;
    return -1;
}

static bool ks_is_float(int t)
{
    return t == KD_FP16 || t == KD_FP32 || t == KD_FP64;
}

/* ---- options ------------------------------------------------------------------------------ */

static const struct opt_def ks_input_fields[] = {
    {"name", OPT_STR, true, NULL, "the input's name", NULL, NULL},
    {"datatype", OPT_ENUM, true, NULL, "its datatype", ks_dtypes, NULL},
    {"shape", OPT_STR_LIST, true, NULL,
     "its dimensions; -1: batch_size for the first, variable_dim for the others", NULL, NULL},
    {"data", OPT_STR_LIST, false, NULL,
     "its values, flat: the whole tensor, or one batch item repeated (default: seeded random "
     "values)",
     NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

static const struct opt_def ks_opts[] = {
    {"url", OPT_STR, true, NULL,
     "base URL of the server, e.g. "
     "\"http://${services.triton.host}:${services.triton.port}\" "
     "(/v2/... is appended)",
     NULL, NULL},
    {"model", OPT_STR, true, NULL, "the model's name", NULL, NULL},
    {"version", OPT_STR, false, NULL, "the model's version (default: the server's choice)", NULL,
     NULL},
    {"inputs", OPT_MAP_LIST, false, NULL,
     "the request's tensors (default: built from the model's metadata)", NULL, ks_input_fields},
    {"batch_size", OPT_INT, false, "1",
     "inferences per request: the size of a variable (-1) first dimension", NULL, NULL},
    {"variable_dim", OPT_INT, false, "1", "the size of the other variable (-1) dimensions", NULL,
     NULL},
    {"check_ready", OPT_BOOL, false, "true",
     "before the load, the model and the server must answer ready", NULL, NULL},
    {"seed", OPT_INT, false, "1", "seed of the arrival schedule and of the generated data", NULL,
     NULL},
    {"connections", OPT_INT, false, "1", "connections in total (closed loop: concurrent users)",
     NULL, NULL},
    {"threads", OPT_INT, false, "1", "worker threads (<= connections)", NULL, NULL},
    {"mode", OPT_ENUM, false, "closed", "load model", cl_mode_choices, NULL},
    {"rate", OPT_FLOAT, false, NULL, "open loop: requests/s in total (required there)", NULL, NULL},
    {"arrival", OPT_ENUM, false, "poisson", "open loop: arrival process", cl_arrival_choices, NULL},
    {"burstiness", OPT_FLOAT, false, "1", "gamma arrivals: shape k (1 = Poisson)", NULL, NULL},
    {"ramp_from", OPT_FLOAT, false, NULL, "open loop: starting rate, ramped linearly to rate", NULL,
     NULL},
    {"ramp", OPT_DURATION, false, NULL, "open loop: length of the ramp", NULL, NULL},
    CL_OPTS_BOUNDS,
    CL_OPTS_TIMEOUTS,
    CL_OPT_BUSY_POLL,
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

/* Error classes: the engine's (enum lg_err), then those of a 2xx response
 * that cannot be used. */
enum {
    KE_JSON = LG_ERR_COUNT, /* the body is not a JSON object */
    KE_API,                 /* an "error" member, or no "outputs" list */
    KE_COUNT
};

static const char *ks_err_name(int e)
{
    static const char *const own[] = {"json", "api"};
    return e < LG_ERR_COUNT ? lg_err_name((enum lg_err)e) : own[e - LG_ERR_COUNT];
}

/* ---- state -------------------------------------------------------------------------------- */

/* One input tensor of the request. */
struct ks_input {
    char *name;
    int dtype;
    int rank;
    int64_t dims[KS_DIMS_MAX]; /* as given: -1 variable */
    int64_t shape[KS_DIMS_MAX];
    int64_t elems;
    struct sbuf data; /* the JSON elements, comma-separated */
};

/* One request in flight (owned by the worker thread that sent it). */
struct ks_req {
    int64_t sstar, s;
    int status;
    int err; /* first error class, -1 when none */
    struct sbuf body;
};

struct ks_state {
    struct lg_config cfg;
    struct lg_run *run;
    bool waited;
    int64_t status_at;
    /* the target */
    char *host_header, *prefix, *model_path, *model, *version;
    int64_t get_timeout_ns;
    /* the request */
    struct ks_input *in;
    size_t nin;
    int64_t batch, vdim, seed;
    bool batched; /* an input's first dimension was variable */
    struct sbuf req;
    /* measured window as this client sees it (starts at or just before the engine's) */
    int64_t ws, end;
    uint64_t max_requests;
    /* results, under mu */
    pthread_mutex_t mu;
    bool mu_ok;
    struct hdr *latency, *service;
    uint64_t requests, ok, errors[KE_COUNT], status_class[6];
    struct cl_secs secs; /* a: requests, b: errors */
    int64_t fanout;      /* batch backend: tasks of the agent job (0: the load runs in sonde) */
};

static void ks_inputs_free(struct ks_input *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(in[i].name);
        sbuf_free(&in[i].data);
    }
    free(in);
}

/* ---- JSON text ---------------------------------------------------------------------------- */

/* Each appender returns 0 or -ENOSPC (the buffer's maximum; it is then left
 * with a prefix of the text, so the caller gives up). */
static int ks_json_str(struct sbuf *b, const char *s)
{
    int e = sbuf_add(b, "\"", 1);
    for (; *s && !e; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            e = sbuf_printf(b, "\\%c", ch);
        else if (ch < 0x20)
            e = sbuf_printf(b, "\\u%04x", ch);
        else
            e = sbuf_add(b, s, 1);
    }
    return e ? e : sbuf_add(b, "\"", 1);
}

/* The shortest text that reads back as x. */
static int ks_json_double(struct sbuf *b, double x)
{
    char buf[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof(buf), "%.*g", p, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    return sbuf_puts(b, buf);
}

/* Appends one element given as text s (from the recipe), checked against type
 * t: 0, -EINVAL with what it must be in why, or -ENOSPC. */
static int ks_put_value(struct sbuf *b, int t, const char *s, char *why, size_t n)
{
    char *end = NULL;
    errno = 0;
    if (t == KD_BYTES)
        return ks_json_str(b, s);
    if (t == KD_BOOL) {
        if (!strcmp(s, "true") || !strcmp(s, "false"))
            return sbuf_puts(b, s);
        snprintf(why, n, "true or false");
        return -EINVAL;
    }
    if (ks_is_float(t)) {
        double x = strtod(s, &end);
        if (end != s && !*end && !errno && isfinite(x) && fabs(x) <= ks_fmax[t])
            return ks_json_double(b, x);
        snprintf(why, n, "a number of magnitude at most %g", ks_fmax[t]);
        return -EINVAL;
    }
    if (t == KD_INT8 || t == KD_INT16 || t == KD_INT32 || t == KD_INT64) {
        long long x = strtoll(s, &end, 10);
        if (end != s && !*end && !errno && x >= ks_lo[t] && x <= (long long)ks_hi[t])
            return sbuf_printf(b, "%lld", x);
        snprintf(why, n, "an integer from %" PRId64 " to %" PRIu64, ks_lo[t], ks_hi[t]);
        return -EINVAL;
    }
    unsigned long long x = strtoull(s, &end, 10);
    if (end != s && !*end && !errno && s[0] != '-' && x <= ks_hi[t])
        return sbuf_printf(b, "%llu", x);
    snprintf(why, n, "an integer from 0 to %" PRIu64, ks_hi[t]);
    return -EINVAL;
}

/* A seeded element of type t: small integers 0..99, numbers k/100 below 100,
 * random booleans, strings of 8 lowercase letters. */
static int ks_put_random(struct sbuf *b, int t, struct rng *rng)
{
    uint64_t r = rng_next(rng);
    char word[9];
    if (t == KD_BOOL)
        return sbuf_puts(b, r & 1 ? "true" : "false");
    if (ks_is_float(t))
        return ks_json_double(b, (double)(r % 10000) / 100.0);
    if (t != KD_BYTES)
        return sbuf_printf(b, "%llu", (unsigned long long)(r % 100));
    for (int i = 0; i < 8; i++, r /= 26)
        word[i] = (char)('a' + r % 26);
    word[8] = '\0';
    return ks_json_str(b, word);
}

/* ---- tensors ------------------------------------------------------------------------------ */

/* Resolves the variable dimensions of in and counts its elements. */
static int ks_resolve(struct ks_input *in, int64_t batch, int64_t vdim, bool *batched, char *why,
                      size_t n)
{
    in->elems = 1;
    for (int d = 0; d < in->rank; d++) {
        in->shape[d] = in->dims[d] >= 0 ? in->dims[d] : d == 0 ? batch : vdim;
        if (d == 0 && in->dims[d] < 0)
            *batched = true;
        if (in->shape[d] && in->elems > KS_ELEMS_MAX / in->shape[d]) {
            snprintf(why, n, "more than %lld elements", (long long)KS_ELEMS_MAX);
            return -E2BIG;
        }
        in->elems *= in->shape[d];
    }
    return 0;
}

/* The data of in from the list `data` (NULL: seeded values from rng): the
 * whole tensor, or one batch item repeated shape[0] times. */
static int ks_fill(struct ks_input *in, const struct sv *data, struct rng *rng, char *why, size_t n)
{
    struct sbuf *b = &in->data;
    int64_t k = data ? (int64_t)data->n : 0;
    int64_t item = in->rank && in->shape[0] ? in->elems / in->shape[0] : 0;
    char want[96];
    int e = 0;
    b->max = KS_BODY_MAX;
    if (data && (data->kind != SV_SEQ || (k != in->elems && (k != item || k == 0)))) {
        if (data->kind != SV_SEQ)
            snprintf(why, n, "'data' must be a flat list of values");
        else if (item > 0 && item != in->elems)
            snprintf(why, n, "%lld values, but the shape needs %lld (or %lld for one batch item)",
                     (long long)k, (long long)in->elems, (long long)item);
        else
            snprintf(why, n, "%lld values, but the shape needs %lld", (long long)k,
                     (long long)in->elems);
        return -EINVAL;
    }
    for (int64_t i = 0; i < in->elems && !e; i++) {
        const struct sv *v = data ? data->kids[i % k] : NULL;
        e = i ? sbuf_add(b, ",", 1) : 0;
        if (!e && !v)
            e = ks_put_random(b, in->dtype, rng);
        else if (!e)
            e = v->kind == SV_SCALAR ? ks_put_value(b, in->dtype, v->str, want, sizeof(want))
                                     : (snprintf(want, sizeof(want), "a value"), -EINVAL);
        if (e == -EINVAL && v) /* only a recipe's value can be invalid */
            snprintf(why, n, "value %lld ('%.64s') is not %s", (long long)(i % k),
                     v->kind == SV_SCALAR ? v->str : "a list", want);
    }
    if (e && e != -EINVAL)
        snprintf(why, n, "its data is larger than 64 MiB");
    return e;
}

/* One entry of `inputs` (a map) into in (without data). 0, or -EINVAL with why. */
static int ks_input_from_sv(const struct sv *m, struct ks_input *in, char *why, size_t n)
{
    const char *name = cl_opt_text(m, "name"), *dt = cl_opt_text(m, "datatype");
    const struct sv *shape = sv_get(m, "shape");
    memset(in, 0, sizeof(*in));
    in->dtype = dt ? ks_dtype(dt) : -1;
    if (!name || !name[0] || in->dtype < 0 || !shape || shape->kind != SV_SEQ) {
        snprintf(why, n, "needs a 'name', a 'datatype' (BOOL, INT8 ... FP64, BYTES) and a 'shape'");
        return -EINVAL;
    }
    if (shape->n > KS_DIMS_MAX) {
        snprintf(why, n, "'shape' has more than %d dimensions", KS_DIMS_MAX);
        return -EINVAL;
    }
    for (size_t d = 0; d < shape->n; d++) {
        int64_t x = 0;
        if (sv_as_int(shape->kids[d], &x) < 0 || x < -1 || x > ((int64_t)1 << 31)) {
            snprintf(why, n, "'shape' holds integers from -1 (variable) to 2^31");
            return -EINVAL;
        }
        in->dims[in->rank++] = x;
    }
    in->name = xstrdup(name);
    return 0;
}

/* ---- the URL and the start GETs ---------------------------------------------------------- */

/* Appends s as one URL path segment (percent-encoded but for unreserved bytes). */
static void ks_put_seg(struct sbuf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~')
            sbuf_add(b, s, 1);
        else
            sbuf_printf(b, "%%%02X", ch);
    }
}

static int ks_target(struct comp *c, struct ks_state *st)
{
    const char *text = cl_opt_text(c->spec->with, "url");
    struct cl_url u;
    if (!text) {
        comp_set_reason(c, "option 'url' is missing (the server's base URL)");
        return -EINVAL;
    }
    if (cl_base_url_parse(text, &u) < 0) {
        comp_set_reason(c, "option 'url': expected http[s]://host[:port][/path], got '%s'", text);
        return -EINVAL;
    }
    st->prefix = xasprintf("%s%s", u.path, str_endswith(u.path, "/v2") ? "" : "/v2");
    struct sbuf p = {0};
    sbuf_printf(&p, "%s/models/", st->prefix);
    ks_put_seg(&p, st->model);
    if (st->version) {
        sbuf_puts(&p, "/versions/");
        ks_put_seg(&p, st->version);
    }
    st->model_path = sbuf_steal(&p);
    st->host_header = u.host_header;
    st->cfg.host = u.host;
    st->cfg.port = u.port;
    st->cfg.tls = u.tls;
    u.host_header = u.host = NULL;
    cl_url_clear(&u);
    return 0;
}

/* The answer to one start GET. */
struct ks_get {
    bool done, ok, cut; /* cut: the body was longer than KS_GET_MAX */
    enum lg_err err;
    int status;
    struct sbuf body;
};

static void ks_get_headers(void *ud, void **rs, int status, int64_t t)
{
    struct ks_get *g = ud;
    (void)rs;
    (void)t;
    if (!g->done)
        g->status = status;
}

static void ks_get_body(void *ud, void **rs, const char *data, size_t len, int64_t t)
{
    struct ks_get *g = ud;
    (void)rs;
    (void)t;
    if (!g->done && !g->cut)
        g->cut = sbuf_add(&g->body, data, len) < 0;
}

static void ks_get_done(void *ud, void **rs, bool ok, enum lg_err err, int64_t t)
{
    struct ks_get *g = ud;
    (void)rs;
    (void)t;
    if (g->done || (!ok && err == LG_ERR_COUNT)) /* the first answer; not a cancel */
        return;
    g->done = true;
    g->ok = ok;
    g->err = err;
}

/* GET path from the server, one request on the engine. 0 with *g set (any
 * status), or -EIO with the reason set when no answer came. */
static int ks_get(struct comp *c, const struct ks_state *st, const char *path, struct ks_get *g)
{
    static const struct lg_stream_ops ops = {
        .on_headers = ks_get_headers, .on_body = ks_get_body, .on_done = ks_get_done};
    static const char *const headers[] = {"Accept: application/json", NULL};
    struct sbuf req = {0};
    memset(g, 0, sizeof(*g));
    g->body.max = KS_GET_MAX;
    int r = http_req_build(&req, "GET", st->host_header, path, headers, NULL, 0);
    if (r < 0) {
        comp_set_reason(c, "cannot build GET %s: %s", path, strerror(-r));
        return -EINVAL;
    }
    struct lg_config cfg = {
        .host = st->cfg.host,
        .port = st->cfg.port,
        .tls = st->cfg.tls,
        .request = req.s,
        .request_len = req.len,
        .threads = 1,
        .connections = 1,
        .model = LG_CLOSED,
        .seed = 1,
        .max_requests = 1,
        .connect_timeout_ns = st->cfg.connect_timeout_ns,
        .request_timeout_ns = st->get_timeout_ns,
        .hdr_sigfigs = 2,
        .stream = &ops,
        .stream_ud = g,
    };
    struct lg_run *run = NULL;
    struct lg_stats *s = NULL;
    char err[256] = "";
    r = lg_start(&cfg, &run, err, sizeof(err));
    if (r == 0)
        r = lg_wait(run, &s);
    if (r < 0)
        comp_set_reason(c, "GET %s from %s:%u: %s", path, st->cfg.host, st->cfg.port,
                        err[0] ? err : strerror(-r));
    else if (!g->done || !g->ok) {
        int e = g->done ? (int)g->err : 0;
        for (int i = 0; !g->done && s && i < LG_ERR_COUNT; i++)
            e = s->errors[i] ? i : e;
        comp_set_reason(c, "GET %s from %s:%u: no answer (%s error)", path, st->cfg.host,
                        st->cfg.port, lg_err_name((enum lg_err)e));
        r = -EIO;
    }
    lg_stats_free(s);
    lg_free(run);
    sbuf_free(&req);
    return r;
}

/* ": <the error member of the answer>" when it has one, else "". */
static void ks_get_error(const struct ks_get *g, char *buf, size_t n)
{
    json_t *o = json_loadb(g->body.s ? g->body.s : "", g->body.len, 0, NULL);
    const char *e = json_string_value(json_object_get(o, "error"));
    snprintf(buf, n, "%s%.200s", e ? ": " : "", e ? e : "");
    json_decref(o);
}

static void ks_model_text(const struct ks_state *st, char *buf, size_t n)
{
    if (st->version)
        snprintf(buf, n, "model '%s' version '%s'", st->model, st->version);
    else
        snprintf(buf, n, "model '%s'", st->model);
}

/* The model, then the server, must answer ready (200). */
static int ks_check_ready(struct comp *c, struct ks_state *st)
{
    struct ks_get g;
    char what[320], err[256];
    char *path = xasprintf("%s/ready", st->model_path);
    int r = ks_get(c, st, path, &g);
    ks_model_text(st, what, sizeof(what));
    if (r == 0 && g.status != 200) {
        ks_get_error(&g, err, sizeof(err));
        comp_set_reason(c, "%s %s: GET %s answered %d%s", what,
                        g.status == 404 ? "is unknown to the server" : "is not ready", path,
                        g.status, err);
        r = -EIO;
    }
    sbuf_free(&g.body);
    free(path);
    if (r < 0)
        return r;
    path = xasprintf("%s/health/ready", st->prefix);
    r = ks_get(c, st, path, &g);
    if (r == 0 && g.status != 200) {
        comp_set_reason(c, "the server is not ready: GET %s answered %d", path, g.status);
        r = -EIO;
    }
    sbuf_free(&g.body);
    free(path);
    return r;
}

/* The inputs listed in a metadata answer into st->in (without data). */
static int ks_meta_inputs(struct comp *c, struct ks_state *st, json_t *meta, const char *what)
{
    json_t *ins = json_object_get(meta, "inputs");
    if (!json_is_array(ins) || json_array_size(ins) == 0) {
        comp_set_reason(c, "the metadata of %s lists no inputs: give 'inputs'", what);
        return -EINVAL;
    }
    st->nin = json_array_size(ins);
    st->in = xcalloc(st->nin, sizeof(*st->in));
    for (size_t i = 0; i < st->nin; i++) {
        json_t *o = json_array_get(ins, i), *shape = json_object_get(o, "shape");
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *dt = json_string_value(json_object_get(o, "datatype"));
        struct ks_input *in = &st->in[i];
        in->dtype = dt ? ks_dtype(dt) : -1;
        bool ok =
            name && in->dtype >= 0 && json_is_array(shape) && json_array_size(shape) <= KS_DIMS_MAX;
        for (size_t d = 0; ok && d < json_array_size(shape); d++) {
            json_t *x = json_array_get(shape, d);
            ok = json_is_integer(x) && json_integer_value(x) >= -1 &&
                 json_integer_value(x) <= ((int64_t)1 << 31);
            in->dims[in->rank++] = ok ? json_integer_value(x) : 0;
        }
        if (!ok) {
            comp_set_reason(c,
                            "the metadata of %s: input %zu needs a 'name', a known 'datatype' and "
                            "a 'shape' of at most %d integers >= -1%s%s",
                            what, i, KS_DIMS_MAX, dt && in->dtype < 0 ? "; unknown datatype " : "",
                            dt && in->dtype < 0 ? dt : "");
            return -EINVAL;
        }
        in->name = xstrdup(name);
    }
    return 0;
}

/* GET the model's metadata; its inputs into st->in. */
static int ks_metadata(struct comp *c, struct ks_state *st)
{
    struct ks_get g;
    char what[320], err[256];
    ks_model_text(st, what, sizeof(what));
    int r = ks_get(c, st, st->model_path, &g);
    json_t *meta = NULL;
    if (r == 0 && g.status != 200) {
        ks_get_error(&g, err, sizeof(err));
        comp_set_reason(c, "%s%s: GET %s answered %d%s", what,
                        g.status == 404 ? " is unknown to the server" : "", st->model_path,
                        g.status, err);
        r = -EIO;
    }
    if (r == 0 && !g.cut)
        meta = json_loadb(g.body.s ? g.body.s : "", g.body.len, 0, NULL);
    if (r == 0 && !json_is_object(meta)) {
        comp_set_reason(c, "the metadata of %s (GET %s) is %s", what, st->model_path,
                        g.cut ? "larger than 4 MiB" : "not a JSON object");
        r = -EIO;
    }
    if (r == 0)
        r = ks_meta_inputs(c, st, meta, what);
    json_decref(meta);
    sbuf_free(&g.body);
    return r;
}

/* ---- the request -------------------------------------------------------------------------- */

/* st->in from the `inputs` option, with their data. */
static int ks_recipe_inputs(struct comp *c, struct ks_state *st, const struct sv *list,
                            struct rng *rng)
{
    char why[384];
    st->nin = list->n;
    st->in = xcalloc(st->nin, sizeof(*st->in));
    for (size_t i = 0; i < list->n; i++) {
        const struct sv *m = list->kids[i];
        struct ks_input *in = &st->in[i];
        int r = m->kind == SV_MAP ? ks_input_from_sv(m, in, why, sizeof(why)) : -EINVAL;
        if (m->kind != SV_MAP)
            snprintf(why, sizeof(why), "must be a map");
        r = r ? r : ks_resolve(in, st->batch, st->vdim, &st->batched, why, sizeof(why));
        r = r ? r : ks_fill(in, sv_get(m, "data"), rng, why, sizeof(why));
        if (r < 0) {
            comp_set_reason(c, "option 'inputs': entry %zu%s%s%s: %s", i, in->name ? " ('" : "",
                            in->name ? in->name : "", in->name ? "')" : "", why);
            return r;
        }
    }
    return 0;
}

/* Shapes and data of the inputs read from the metadata. */
static int ks_meta_fill(struct comp *c, struct ks_state *st, struct rng *rng)
{
    char why[256], what[320];
    ks_model_text(st, what, sizeof(what));
    for (size_t i = 0; i < st->nin; i++) {
        struct ks_input *in = &st->in[i];
        if (ks_resolve(in, st->batch, st->vdim, &st->batched, why, sizeof(why)) < 0) {
            comp_set_reason(c, "input '%s' of %s: %s", in->name, what, why);
            return -EINVAL;
        }
    }
    if (st->batch > 1 && !st->batched) {
        comp_set_reason(c,
                        "batch_size %lld needs an input whose first dimension is variable (-1); "
                        "the inputs of %s have fixed ones",
                        (long long)st->batch, what);
        return -EINVAL;
    }
    for (size_t i = 0; i < st->nin; i++) {
        if (ks_fill(&st->in[i], NULL, rng, why, sizeof(why)) < 0) {
            comp_set_reason(c, "input '%s' of %s: %s", st->in[i].name, what, why);
            return -EINVAL;
        }
    }
    return 0;
}

/* The JSON body and the whole request into st->req. */
static int ks_build(struct comp *c, struct ks_state *st)
{
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    struct sbuf body = {.max = KS_BODY_MAX};
    int e = sbuf_puts(&body, "{\"inputs\":[");
    for (size_t i = 0; i < st->nin; i++) {
        const struct ks_input *in = &st->in[i];
        e |= sbuf_puts(&body, i ? ",{\"name\":" : "{\"name\":");
        e |= ks_json_str(&body, in->name);
        e |= sbuf_printf(&body, ",\"datatype\":\"%s\",\"shape\":[", ks_dtypes[in->dtype]);
        for (int d = 0; d < in->rank; d++)
            e |= sbuf_printf(&body, "%s%lld", d ? "," : "", (long long)in->shape[d]);
        e |= sbuf_puts(&body, "],\"data\":[");
        e |= sbuf_add(&body, in->data.s ? in->data.s : "", in->data.len);
        e |= sbuf_puts(&body, "]}");
    }
    e |= sbuf_puts(&body, "]}");
    char *target = xasprintf("%s/infer", st->model_path);
    st->req.max = KS_BODY_MAX + 4096;
    int r =
        e ? -ENOSPC
          : http_req_build(&st->req, "POST", st->host_header, target, headers, body.s, body.len);
    if (r < 0)
        comp_set_reason(c, "cannot build the request: %s",
                        r == -ENOSPC ? "its body is larger than 64 MiB" : strerror(-r));
    free(target);
    sbuf_free(&body);
    return r;
}

/* ---- the hooks (worker threads) ---------------------------------------------------------- */

static void ks_fail(struct ks_req *r, int cls)
{
    if (r->err < 0)
        r->err = cls;
}

static void ks_on_sent(void *ud, void **rs, int64_t intended, int64_t sent)
{
    (void)ud;
    struct ks_req *r = xcalloc(1, sizeof(*r));
    r->sstar = intended;
    r->s = sent;
    r->err = -1;
    r->body.max = KS_BODY_MAX;
    *rs = r;
}

static void ks_on_headers(void *ud, void **rs, int status, int64_t t)
{
    struct ks_req *r = *rs;
    (void)ud;
    (void)t;
    if (!r)
        return;
    r->status = status;
    if (status / 100 != 2)
        ks_fail(r, LG_ERR_STATUS);
}

static void ks_on_body(void *ud, void **rs, const char *data, size_t len, int64_t t)
{
    struct ks_req *r = *rs;
    (void)ud;
    (void)t;
    if (r && r->err < 0 && sbuf_add(&r->body, data, len) < 0)
        ks_fail(r, LG_ERR_PROTOCOL);
}

/* A complete 2xx body: a JSON object with an "outputs" list and no "error". */
static void ks_check_body(struct ks_req *r)
{
    json_t *o = json_loadb(r->body.s ? r->body.s : "", r->body.len, 0, NULL);
    if (!json_is_object(o))
        ks_fail(r, KE_JSON);
    else if (json_object_get(o, "error") || !json_is_array(json_object_get(o, "outputs")))
        ks_fail(r, KE_API);
    json_decref(o);
}

static void ks_on_done(void *ud, void **rs, bool ok, enum lg_err err, int64_t t)
{
    struct ks_state *st = ud;
    struct ks_req *r = *rs;
    *rs = NULL;
    if (!r)
        return;
    bool cancelled = !ok && err == LG_ERR_COUNT; /* at the end of the run: not a result */
    if (!ok)
        ks_fail(r, (int)err);
    else if (r->err < 0)
        ks_check_body(r);
    if (!cancelled && t >= st->ws && t < st->end) {
        pthread_mutex_lock(&st->mu);
        if (!st->max_requests || st->requests < st->max_requests) {
            st->requests++;
            cl_count_status(st->status_class, r->status);
            if (r->err >= 0)
                st->errors[r->err]++;
            else {
                st->ok++;
                hdr_record(st->latency, t - r->sstar);
                hdr_record(st->service, t - r->s);
            }
            cl_secs_add(&st->secs, st->ws, t, 1, r->err >= 0);
        }
        pthread_mutex_unlock(&st->mu);
    }
    sbuf_free(&r->body);
    free(r);
}

/* ---- start -------------------------------------------------------------------------------- */

static int ks_options(struct comp *c, struct ks_state *st)
{
    const struct sv *w = c->spec->with;
    int r = cl_limits(c, &st->cfg, 1, KS_CONNS_MAX);
    r = r ? r : cl_load_model(c, &st->cfg);
    r = r ? r : cl_opt_int(c, "batch_size", 1, 1, KS_BATCH_MAX, &st->batch);
    r = r ? r : cl_opt_int(c, "variable_dim", 1, 1, KS_BATCH_MAX, &st->vdim);
    r = r ? r : cl_opt_int(c, "seed", 1, INT64_MIN, INT64_MAX, &st->seed);
    if (r)
        return r;
    if (st->cfg.threads > st->cfg.connections) {
        comp_set_reason(c, "option 'threads' (%u) must not exceed 'connections' (%u)",
                        st->cfg.threads, st->cfg.connections);
        return -EINVAL;
    }
    const char *model = cl_opt_text(w, "model"), *version = cl_opt_text(w, "version");
    if (!model || !model[0]) {
        comp_set_reason(c, "option 'model' is missing (the name of the model to load)");
        return -EINVAL;
    }
    st->model = xstrdup(model);
    st->version = version && version[0] ? xstrdup(version) : NULL;
    st->get_timeout_ns =
        st->cfg.request_timeout_ns > 0 ? st->cfg.request_timeout_ns : KS_GET_TIMEOUT;
    return 0;
}

/* Readiness, the inputs (from the recipe or the metadata), the request. */
static int ks_prepare(struct comp *c, struct ks_state *st)
{
    const struct sv *inputs = sv_get(c->spec->with, "inputs");
    bool check = true;
    struct rng rng;
    rng_seed(&rng, (uint64_t)st->seed);
    int r = cl_opt_bool(c, "check_ready", true, &check);
    r = r ? r : check ? ks_check_ready(c, st) : 0;
    if (r == 0 && inputs && (inputs->kind != SV_SEQ || inputs->n == 0)) {
        comp_set_reason(c, "option 'inputs' must be a non-empty list");
        r = -EINVAL;
    } else if (r == 0 && inputs)
        r = ks_recipe_inputs(c, st, inputs, &rng);
    else if (r == 0) {
        r = ks_metadata(c, st);
        r = r ? r : ks_meta_fill(c, st, &rng);
    }
    return r ? r : ks_build(c, st);
}

/* The options and the target, for task `task` of `ntasks` (fanout_split). */
static int ks_setup(struct comp *c, struct ks_state *st, unsigned task, unsigned ntasks)
{
    pthread_mutex_init(&st->mu, NULL);
    st->mu_ok = true;
    int r = ks_options(c, st);
    r = r ? r : fanout_split(c, &st->cfg, task, ntasks);
    return r ? r : ks_target(c, st);
}

/* Readiness, metadata and the request (from the server), then the load. */
static int ks_run(struct comp *c, struct ks_state *st)
{
    static const struct lg_stream_ops ops = {
        .on_headers = ks_on_headers,
        .on_body = ks_on_body,
        .on_done = ks_on_done,
        .on_sent = ks_on_sent,
    };
    int r = ks_prepare(c, st);
    r = r ? r : hdr_init(1, KS_HDR_MAX, 3, &st->latency);
    r = r ? r : hdr_init(1, KS_HDR_MAX, 3, &st->service);
    if (r < 0) {
        if (!c->reason)
            comp_set_reason(c, "cannot prepare the load: %s", strerror(-r));
        return r;
    }
    st->cfg.request = st->req.s;
    st->cfg.request_len = st->req.len;
    st->cfg.stream = &ops;
    st->cfg.stream_ud = st;
    st->max_requests = st->cfg.max_requests;
    st->ws = mono_ns() + st->cfg.warmup_ns; /* the engine's window starts a little later */
    st->end = st->cfg.duration_ns > 0 ? st->ws + st->cfg.duration_ns : INT64_MAX;
    return cl_start(c, &st->cfg, &st->run);
}

static int ks_start(struct comp *c)
{
    struct ks_state *st = xcalloc(1, sizeof(*st));
    c->priv = st;
    if (fanout_wanted(c->spec) && c->backend->batch) {
        st->fanout = comp_tasks(c);
        int r = ks_setup(c, st, 0, (unsigned)st->fanout); /* the tasks ask the server */
        return r ? r : fanout_start(c, sv_clone(c->spec->with), NULL);
    }
    int r = ks_setup(c, st, 0, 1);
    return r ? r : ks_run(c, st);
}

static int ks_tick(struct comp *c, int64_t now)
{
    struct ks_state *st = c->priv;
    if (st && st->fanout)
        return fanout_tick(c, (unsigned)st->fanout, &st->status_at, now);
    if (!st || cl_done(st->run))
        return 1;
    if (cl_status_due(&st->status_at, now)) {
        struct lg_progress p;
        lg_progress(st->run, &p);
        cl_live(c, &p, true);
        pthread_mutex_lock(&st->mu);
        uint64_t ok = st->ok, errs = cl_total_errors(st->errors, KE_COUNT);
        pthread_mutex_unlock(&st->mu);
        if (p.warming_up)
            comp_status(c, "%.1f s, warming up", (double)p.elapsed_ns / 1e9);
        else
            comp_status(c, "%.1f s, %llu requests ok, %llu inferences, %llu errors",
                        (double)p.elapsed_ns / 1e9, (unsigned long long)ok,
                        (unsigned long long)(ok * (uint64_t)st->batch), (unsigned long long)errs);
    }
    return 0;
}

static int ks_stop(struct comp *c)
{
    struct ks_state *st = c->priv;
    if (st)
        cl_stop(st->run, st->waited);
    return 0;
}

/* ---- results ------------------------------------------------------------------------------ */

/* The client's results (the workers are joined) as extras of s, the form
 * they take in a task's file and after a merge (ks_put_results reads them).
 * The histograms move into s. */
static int ks_collect(struct ks_state *st, struct lg_stats *s)
{
    cl_add_engine_errors(st->errors, &st->requests, s);
    int r = cl_counts_to_extra(s, st->requests, st->ok, st->errors, KE_COUNT, ks_err_name,
                               st->status_class);
    r = r ? r : lg_extra_add_hdr(s, "latency", st->latency);
    st->latency = NULL;
    r = r ? r : lg_extra_add_hdr(s, "service_time", st->service);
    st->service = NULL;
    r = r ? r : lg_extra_add_secs(s, "requests_s", st->secs.a, st->secs.n);
    r = r ? r : lg_extra_add_secs(s, "errors_s", st->secs.b, st->secs.n);
    return r;
}

static void ks_put_rates(struct comp *c, const struct ks_state *st, const struct lg_stats *s,
                         uint64_t requests, uint64_t ok)
{
    double window = (double)s->window_ns / 1e9, per = window > 0 ? 1 / window : 0;
    uint64_t inferences = ok * (uint64_t)st->batch;
    comp_metric(c, "batch_size", NULL, NULL, (double)st->batch);
    comp_metric(c, "inferences", NULL, NULL, (double)inferences);
    comp_metric(c, "throughput", "req/s", NULL, (double)requests * per);
    comp_metric(c, "inferences_per_s", "inf/s", NULL, (double)inferences * per);
    comp_metric(c, "connects", NULL, NULL, (double)s->connects);
    cl_put_open_loop(c, &st->cfg, s);
}

/* Per-second requests and errors (this client's), latency p50/p99 (the engine's,
 * of the 2xx responses) over the measured window. */
static void ks_put_series(struct comp *c, const struct lg_stats *s)
{
    const struct lg_extra *req = lg_extra_find(s, "requests_s", LG_EXTRA_SECS);
    const struct lg_extra *err = lg_extra_find(s, "errors_s", LG_EXTRA_SECS);
    size_t n = (size_t)((s->window_ns + KS_NS_PER_S - 1) / KS_NS_PER_S);
    for (size_t i = 0; req && err && i < n; i++) {
        int64_t t = s->window_start_wall_ns + (int64_t)i * KS_NS_PER_S;
        comp_series_point(c, "requests", "req/s", NULL, t,
                          i < req->nsecs ? (double)req->secs[i] : 0.0);
        comp_series_point(c, "errors", "err/s", NULL, t,
                          i < err->nsecs ? (double)err->secs[i] : 0.0);
        const struct lg_second *sec = i < s->nsecs ? &s->secs[i] : NULL;
        if (sec && sec->p50_ns >= 0)
            comp_series_point(c, "latency_p50", "ms", NULL, t, (double)sec->p50_ns / CL_NS_PER_MS);
        if (sec && sec->p99_ns >= 0)
            comp_series_point(c, "latency_p99", "ms", NULL, t, (double)sec->p99_ns / CL_NS_PER_MS);
    }
}

/* Every metric, from s (the engine's statistics and the client's extras, of
 * one run or merged from a fan-out's tasks). */
static int ks_put_results(struct comp *c, const struct ks_state *st, const struct lg_stats *s)
{
    uint64_t requests, ok, errors[KE_COUNT], status[6];
    cl_counts_from_extra(s, &requests, &ok, errors, KE_COUNT, ks_err_name, status);
    cl_put_counts(c, requests, ok, errors, KE_COUNT, ks_err_name, status);
    ks_put_rates(c, st, s, requests, ok);
    static const char *const hists[] = {"latency", "service_time"};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(hists); i++) {
        const struct lg_extra *x = lg_extra_find(s, hists[i], LG_EXTRA_HDR);
        if (x)
            cl_put_hdr_summary(c, hists[i], x->hdr);
    }
    for (size_t i = 0; i < SONDE_ARRAY_LEN(hists); i++) {
        const struct lg_extra *x = lg_extra_find(s, hists[i], LG_EXTRA_HDR);
        cl_put_histogram(c, hists[i], x ? x->hdr : NULL);
    }
    cl_put_histogram(c, "issue_delay", s->issue_delay);
    ks_put_series(c, s);
    return cl_judge(c, ok, errors, KE_COUNT, ks_err_name);
}

static int ks_finish(struct comp *c)
{
    struct ks_state *st = c->priv;
    struct lg_stats *s = NULL;
    if (!st)
        return -EINVAL;
    int r = fanout_stats(c, st->fanout, st->run, &st->waited, &s);
    if (r < 0)
        return r;
    if (!st->fanout)
        r = ks_collect(st, s); /* the workers are joined: no lock needed from here */
    r = r ? r : ks_put_results(c, st, s);
    lg_stats_free(s);
    return r;
}

static void ks_cleanup(struct comp *c)
{
    struct ks_state *st = c->priv;
    if (!st)
        return;
    lg_free(st->run);
    free(st->cfg.host);
    free(st->host_header);
    free(st->prefix);
    free(st->model_path);
    free(st->model);
    free(st->version);
    ks_inputs_free(st->in, st->nin);
    sbuf_free(&st->req);
    hdr_free(st->latency);
    hdr_free(st->service);
    cl_secs_free(&st->secs);
    if (st->mu_ok)
        pthread_mutex_destroy(&st->mu);
    free(st);
    c->priv = NULL;
}

/* ---- the agent (one task of a fan-out job) ----------------------------------------------- */

/* driver_ops.agent_run: one task's share of the load (it asks the server for
 * readiness and metadata itself); its result, with the client's extras, to
 * out_path. */
static int ks_agent_run(const struct sv *with, unsigned task, unsigned ntasks, const char *out_path,
                        const volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    struct comp_spec spec = {
        .role = ROLE_CLIENT, .name = "agent", .driver = "kserve", .with = (struct sv *)with};
    struct comp c = {.name = "agent", .spec = &spec};
    struct ks_state *st = xcalloc(1, sizeof(*st));
    struct lg_stats *s = NULL;
    c.priv = st;
    int r = ks_setup(&c, st, task, ntasks);
    st->cfg.keep_second_hdrs = true; /* the latency series is merged exactly */
    r = r ? r : ks_run(&c, st);
    r = r ? r : fanout_agent_wait(&c, st->run, &st->waited, stop, &s);
    r = r ? r : ks_collect(st, s);
    r = fanout_agent_write(&c, r, s, out_path, err, errlen);
    ks_cleanup(&c);
    free(c.reason);
    return r;
}

/* ---- validation --------------------------------------------------------------------------- */

/* An integer option known now (not a run-time reference), or def. */
static int64_t ks_chk_int(const struct comp_spec *spec, const char *key, int64_t def)
{
    int64_t x = def;
    if (cl_chk_text(spec, key) && sv_as_int(sv_get(spec->with, key), &x) < 0)
        return def;
    return x;
}

/* True when v or anything under it holds a run-time reference. */
static bool ks_has_ref(const struct sv *v)
{
    if (!v)
        return false;
    if (v->kind == SV_SCALAR)
        return recipe_has_ref(v->str);
    for (size_t i = 0; i < v->n; i++)
        if (ks_has_ref(v->kids[i]))
            return true;
    return false;
}

/* The entries of `inputs` known now, built as at start (seeded data aside). */
static void ks_check_inputs(const struct comp_spec *spec, struct diags *d)
{
    const struct sv *list = sv_get(spec->with, "inputs");
    int64_t batch = ks_chk_int(spec, "batch_size", 1), vdim = ks_chk_int(spec, "variable_dim", 1);
    if (!list || list->kind != SV_SEQ)
        return;
    batch = batch < 1 ? 1 : batch; /* a bad one is said apart */
    vdim = vdim < 1 ? 1 : vdim;
    if (list->n == 0)
        cl_chk_fail(spec, d, "inputs", "give at least one input (or leave 'inputs' out)");
    for (size_t i = 0; i < list->n; i++) {
        const struct sv *m = list->kids[i];
        struct ks_input in = {0};
        char why[384];
        bool batched = false;
        struct rng rng;
        rng_seed(&rng, 1);
        if (m->kind != SV_MAP || ks_has_ref(m))
            continue;
        int r = ks_input_from_sv(m, &in, why, sizeof(why));
        r = r ? r : ks_resolve(&in, batch, vdim, &batched, why, sizeof(why));
        r = r ? r : ks_fill(&in, sv_get(m, "data"), &rng, why, sizeof(why));
        for (size_t j = 0; r == 0 && j < i; j++) {
            const char *other = cl_opt_text(list->kids[j], "name");
            if (other && !strcmp(other, in.name)) {
                snprintf(why, sizeof(why), "input '%s' is given twice", in.name);
                r = -EINVAL;
            }
        }
        if (r < 0) {
            char *path = xasprintf("clients.%s.with.inputs[%zu]", spec->name, i);
            diags_add(d, m->pos, path, NULL, "%s", why);
            free(path);
        }
        free(in.name);
        sbuf_free(&in.data);
    }
}

static int ks_check(const struct comp_spec *spec, struct diags *d)
{
    if (!d)
        return 0;
    size_t before = d->n + d->dropped;
    const char *url = cl_chk_text(spec, "url"), *model = cl_chk_text(spec, "model");
    struct cl_url u;
    if (url && cl_base_url_parse(url, &u) < 0)
        cl_chk_fail(spec, d, "url", "expected http[s]://host[:port][/path], got '%s'", url);
    else if (url)
        cl_url_clear(&u);
    if (model && !model[0])
        cl_chk_fail(spec, d, "model", "the model's name must not be empty");
    cl_chk_bounds(spec, d);
    int64_t batch = ks_chk_int(spec, "batch_size", 1), vdim = ks_chk_int(spec, "variable_dim", 1);
    int64_t conns = ks_chk_int(spec, "connections", 1), threads = ks_chk_int(spec, "threads", 1);
    if (batch < 1 || batch > KS_BATCH_MAX)
        cl_chk_fail(spec, d, "batch_size", "must be between 1 and %d", KS_BATCH_MAX);
    if (vdim < 1 || vdim > KS_BATCH_MAX)
        cl_chk_fail(spec, d, "variable_dim", "must be between 1 and %d", KS_BATCH_MAX);
    if (threads > conns)
        cl_chk_fail(spec, d, "threads", "must not exceed 'connections' (%lld)", (long long)conns);
    ks_check_inputs(spec, d);
    return d->n + d->dropped > before ? -EINVAL : 0;
}

const struct driver_ops driver_client_kserve = {
    .name = "kserve",
    .role = ROLE_CLIENT,
    .summary = "load on a KServe v2 / Triton inference server (JSON tensors, readiness and "
               "metadata first): latency, req/s, inferences/s",
    .opts = ks_opts,
    .job_argv = fanout_argv,
    .agent_run = ks_agent_run,
    .check = ks_check,
    .start = ks_start,
    .tick = ks_tick,
    .stop = ks_stop,
    .finish = ks_finish,
    .cleanup = ks_cleanup,
};
