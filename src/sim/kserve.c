/* kserve.c — sonde-sim --kserve: the KServe v2 (Open Inference Protocol) REST
 * endpoints of a Triton-like server: liveness and readiness, server and model
 * metadata, model readiness, infer with JSON tensors, and Triton-style
 * Prometheus metrics. The models come from --kserve-model; each output
 * echoes its input (an identity model). Scheduling lives in loop.c; the
 * rules are in docs/sim.md ("KServe v2 mode"). */
#include "sim/sim.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util/util.h"

#define KS_DEFAULT_MODEL "simple:INPUT0=INT32[-1,16],INPUT1=INT32[-1,16]"
#define KS_NAME_MAX      128
#define KS_DIM_MAX       ((int64_t)1 << 31)
#define KS_ELEMS_MAX     ((int64_t)1 << 40)
#define KS_NEST_MAX      32 /* nesting of the arrays of one input's data */
#define KS_SYNTAX        "expected NAME[@VERSION]:INPUT=DTYPE[DIMS][,INPUT=DTYPE[DIMS]...]"

/* ---- datatypes ----------------------------------------------------------- */

enum {
    KS_BOOL,
    KS_UINT8,
    KS_UINT16,
    KS_UINT32,
    KS_UINT64,
    KS_INT8,
    KS_INT16,
    KS_INT32,
    KS_INT64,
    KS_FP16,
    KS_FP32,
    KS_FP64,
    KS_BYTES,
    KS_NTYPES
};

static const char *const ks_types[KS_NTYPES] = {
    "BOOL",  "UINT8", "UINT16", "UINT32", "UINT64", "INT8",  "INT16",
    "INT32", "INT64", "FP16",   "FP32",   "FP64",   "BYTES",
};

/* Integer ranges (UINT64 stops at INT64_MAX: JSON integers are parsed as int64). */
static const int64_t ks_lo[KS_NTYPES] = {
    [KS_INT8] = INT8_MIN, [KS_INT16] = INT16_MIN, [KS_INT32] = INT32_MIN, [KS_INT64] = INT64_MIN};
static const int64_t ks_hi[KS_NTYPES] = {
    [KS_UINT8] = UINT8_MAX,  [KS_UINT16] = UINT16_MAX, [KS_UINT32] = UINT32_MAX,
    [KS_UINT64] = INT64_MAX, [KS_INT8] = INT8_MAX,     [KS_INT16] = INT16_MAX,
    [KS_INT32] = INT32_MAX,  [KS_INT64] = INT64_MAX};
/* Largest finite magnitude of the float types. */
static const double ks_fmax[KS_NTYPES] = {
    [KS_FP16] = 65504.0, [KS_FP32] = 3.4028234663852886e38, [KS_FP64] = 1.7976931348623157e308};

static int dtype_find(const char *s, size_t n)
{
    for (int t = 0; t < KS_NTYPES; t++)
        if (strlen(ks_types[t]) == n && memcmp(ks_types[t], s, n) == 0)
            return t;
    return -1;
}

static bool elem_ok(const json_t *v, int t)
{
    switch (t) {
    case KS_BOOL:
        return json_is_boolean(v);
    case KS_BYTES:
        return json_is_string(v);
    case KS_FP16:
    case KS_FP32:
    case KS_FP64:
        return json_is_number(v) && fabs(json_number_value(v)) <= ks_fmax[t];
    }
    if (!json_is_integer(v))
        return false;
    json_int_t x = json_integer_value(v);
    return x >= ks_lo[t] && x <= ks_hi[t];
}

/* What an element of type t must be, for error messages. */
static void elem_want(int t, char *buf, size_t n)
{
    if (t == KS_BOOL)
        snprintf(buf, n, "true or false");
    else if (t == KS_BYTES)
        snprintf(buf, n, "a string");
    else if (t >= KS_FP16 && t <= KS_FP64)
        snprintf(buf, n, "a number of magnitude at most %g", ks_fmax[t]);
    else
        snprintf(buf, n, "an integer from %" PRId64 " to %" PRId64, ks_lo[t], ks_hi[t]);
}

/* ---- models (the options) ------------------------------------------------ */

/* Names of models, versions and tensors: 1-128 of A-Z a-z 0-9 _ . - (safe in
 * a URL path, JSON and a Prometheus label without escaping). */
static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > KS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

static int model_find(const struct sim_config *cfg, const char *name, size_t n)
{
    for (size_t i = 0; i < cfg->ks_nmodels; i++)
        if (strlen(cfg->ks_models[i]->name) == n && memcmp(cfg->ks_models[i]->name, name, n) == 0)
            return (int)i;
    return -1;
}

static void model_free(struct ks_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->nin; i++)
        free(m->in[i].name);
    free(m->name);
    free(m->version);
    free(m);
}

/* "-1,4" (n bytes) into t's dims. */
static const char *parse_dims(const char *s, size_t n, struct ks_tensor *t)
{
    char *text = xstrndup(s, n), *p = text;
    const char *why = NULL;
    t->rank = 0;
    while (!why) {
        char *end;
        errno = 0;
        long long d = strtoll(p, &end, 10);
        if (end == p || errno || !(d == -1 || (d >= 1 && d <= KS_DIM_MAX)) || (*end != ',' && *end))
            why = "a dimension must be -1 (variable) or from 1 to 2^31";
        else if (t->rank == KS_MAX_DIMS)
            why = "at most 8 dimensions";
        else
            t->dims[t->rank++] = d;
        if (why || !*end)
            break;
        p = end + 1;
    }
    free(text);
    return why;
}

/* "A=FP32[-1,4],B=BYTES[-1]" into m's inputs. */
static const char *parse_inputs(const char *s, struct ks_model *m)
{
    for (;;) {
        const char *eq = strchr(s, '='), *lb = eq ? strchr(eq, '[') : NULL;
        const char *rb = lb ? strchr(lb, ']') : NULL;
        if (!rb || (rb[1] && rb[1] != ','))
            return "each input is INPUT=DTYPE[DIMS], e.g. INPUT0=FP32[-1,4]; inputs are "
                   "separated by commas";
        if (m->nin == KS_MAX_INPUTS)
            return "at most 16 inputs per model";
        if (!name_ok(s, (size_t)(eq - s)))
            return "an input name must be 1-128 characters of A-Z a-z 0-9 _ . -";
        for (int i = 0; i < m->nin; i++)
            if (strlen(m->in[i].name) == (size_t)(eq - s) && !memcmp(m->in[i].name, s, eq - s))
                return "two inputs of the model have the same name";
        struct ks_tensor *t = &m->in[m->nin];
        t->dtype = dtype_find(eq + 1, (size_t)(lb - eq - 1));
        if (t->dtype < 0)
            return "unknown datatype; one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, "
                   "INT32, INT64, FP16, FP32, FP64, BYTES";
        const char *why = parse_dims(lb + 1, (size_t)(rb - lb - 1), t);
        if (why)
            return why;
        t->name = xstrndup(s, (size_t)(eq - s));
        m->nin++;
        if (!rb[1])
            return NULL;
        s = rb + 2;
    }
}

const char *ks_add_model(struct sim_config *cfg, const char *spec)
{
    const char *colon = strchr(spec, ':');
    if (!colon)
        return KS_SYNTAX;
    const char *at = memchr(spec, '@', (size_t)(colon - spec));
    size_t nlen = (size_t)((at ? at : colon) - spec);
    struct ks_model *m = xcalloc(1, sizeof(*m));
    m->ready = true;
    m->name = xstrndup(spec, nlen);
    m->version = at ? xstrndup(at + 1, (size_t)(colon - at - 1)) : xstrdup("1");
    const char *why = NULL;
    if (!name_ok(m->name, nlen))
        why = "the model name must be 1-128 characters of A-Z a-z 0-9 _ . -";
    else if (!name_ok(m->version, strlen(m->version)))
        why = "the version must be 1-128 characters of A-Z a-z 0-9 _ . -";
    else if (model_find(cfg, m->name, nlen) >= 0)
        why = "a model of that name was given before";
    else
        why = parse_inputs(colon + 1, m);
    if (why) {
        model_free(m);
        return why;
    }
    cfg->ks_models = xrealloc(cfg->ks_models, (cfg->ks_nmodels + 1) * sizeof(*cfg->ks_models));
    cfg->ks_models[cfg->ks_nmodels++] = m;
    return NULL;
}

int ks_config_check(struct sim_config *cfg)
{
    if (!cfg->kserve) {
        if (cfg->ks_nmodels || cfg->ks_unready || cfg->ks_item_ns) {
            fprintf(stderr, "sonde-sim: --kserve-model, --kserve-unready and --kserve-item-delay "
                            "need --kserve\n");
            return -EINVAL;
        }
        return 0;
    }
    if (cfg->ks_nmodels == 0 && ks_add_model(cfg, KS_DEFAULT_MODEL))
        return -EINVAL; /* not reached: the default is well-formed */
    for (char **u = cfg->ks_unready; u && *u; u++) {
        int i = model_find(cfg, *u, strlen(*u));
        if (i < 0) {
            fprintf(stderr,
                    "sonde-sim: invalid kserve-unready '%s': no --kserve-model of that name\n", *u);
            return -EINVAL;
        }
        cfg->ks_models[i]->ready = false;
    }
    return 0;
}

void ks_config_free(struct sim_config *cfg)
{
    for (size_t i = 0; i < cfg->ks_nmodels; i++)
        model_free(cfg->ks_models[i]);
    free(cfg->ks_models);
    strv_free(cfg->ks_unready);
    cfg->ks_models = NULL;
    cfg->ks_nmodels = 0;
    cfg->ks_unready = NULL;
}

/* ---- responses ----------------------------------------------------------- */

static void respond(struct sbuf *out, int status, const char *type, const char *body, size_t blen,
                    bool head, bool close)
{
    sbuf_printf(out, "HTTP/1.1 %d %s\r\nServer: sonde-sim\r\n", status, sim_reason(status));
    if (type)
        sbuf_printf(out, "Content-Type: %s\r\n", type);
    sbuf_printf(out, "Content-Length: %zu\r\n%s\r\n", blen, close ? "Connection: close\r\n" : "");
    if (!head && blen)
        sbuf_add(out, body, blen);
}

/* {"error":"msg"}, msg escaped by jansson (it holds only ASCII: see shown()). */
static void respond_error(struct sbuf *out, int status, const char *msg, bool head, bool close)
{
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(msg));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    respond(out, status, "application/json", text, text ? strlen(text) : 0, head, close);
    free(text);
}

/* A name from the request, fit for a message: printable ASCII, at most 64 bytes. */
static void shown(const char *s, size_t n, char *buf, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap && i < 64; i++)
        buf[k++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (n > 64 && k + 4 < cap)
        k += (size_t)snprintf(buf + k, cap - k, "...");
    buf[k] = '\0';
}

static void add_shape(struct sbuf *b, const int64_t *dims, int rank)
{
    sbuf_add(b, "[", 1);
    for (int i = 0; i < rank; i++)
        sbuf_printf(b, "%s%" PRId64, i ? "," : "", dims[i]);
    sbuf_add(b, "]", 1);
}

static void add_tensors(struct sbuf *b, const struct ks_model *m, bool outputs)
{
    sbuf_add(b, "[", 1);
    for (int i = 0; i < m->nin; i++) {
        const struct ks_tensor *t = &m->in[i];
        if (outputs)
            sbuf_printf(b, "%s{\"name\":\"OUTPUT%d\"", i ? "," : "", i);
        else
            sbuf_printf(b, "%s{\"name\":\"%s\"", i ? "," : "", t->name);
        sbuf_printf(b, ",\"datatype\":\"%s\",\"shape\":", ks_types[t->dtype]);
        add_shape(b, t->dims, t->rank);
        sbuf_add(b, "}", 1);
    }
    sbuf_add(b, "]", 1);
}

static void model_metadata(const struct ks_model *m, struct sbuf *b)
{
    sbuf_printf(b, "{\"name\":\"%s\",\"versions\":[\"%s\"],\"platform\":\"sonde-sim\",\"inputs\":",
                m->name, m->version);
    add_tensors(b, m, false);
    sbuf_puts(b, ",\"outputs\":");
    add_tensors(b, m, true);
    sbuf_add(b, "}", 1);
}

/* Triton's per-model counters (names and meaning as in Triton's metrics
 * documentation); the durations are in whole microseconds, as Triton's. */
static const struct {
    const char *name, *help;
    size_t off; /* of the atomic_llong in struct ks_model */
    bool ns;    /* the counter holds nanoseconds: written as microseconds */
} ks_metrics[] = {
    {"nv_inference_request_success", "Number of successful inference requests, all batch sizes",
     offsetof(struct ks_model, success), false},
    {"nv_inference_request_failure", "Number of failed inference requests, all batch sizes",
     offsetof(struct ks_model, failure), false},
    {"nv_inference_count", "Number of inferences performed (a batch of N is N inferences)",
     offsetof(struct ks_model, count), false},
    {"nv_inference_exec_count", "Number of model executions performed (one per successful request)",
     offsetof(struct ks_model, exec), false},
    {"nv_inference_request_duration_us",
     "Cumulative inference request duration in microseconds (successful requests: the --delay "
     "draw plus batch x --kserve-item-delay)",
     offsetof(struct ks_model, request_ns), true},
    {"nv_inference_queue_duration_us",
     "Cumulative inference queuing duration in microseconds (the --delay draws)",
     offsetof(struct ks_model, queue_ns), true},
    {"nv_inference_compute_infer_duration_us",
     "Cumulative compute inference duration in microseconds (batch x --kserve-item-delay)",
     offsetof(struct ks_model, compute_ns), true},
};

static void metrics_text(const struct sim_config *cfg, struct sbuf *b)
{
    for (size_t k = 0; k < sizeof(ks_metrics) / sizeof(ks_metrics[0]); k++) {
        const char *name = ks_metrics[k].name;
        sbuf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, ks_metrics[k].help, name);
        for (size_t i = 0; i < cfg->ks_nmodels; i++) {
            struct ks_model *m = cfg->ks_models[i];
            long long v = atomic_load((atomic_llong *)((char *)m + ks_metrics[k].off));
            sbuf_printf(b, "%s{model=\"%s\",version=\"%s\"} %lld\n", name, m->name, m->version,
                        ks_metrics[k].ns ? v / 1000 : v);
        }
    }
}

void ks_account(struct sim_config *cfg, int m, int64_t delay_ns, int64_t extra_ns)
{
    struct ks_model *mod = cfg->ks_models[m];
    atomic_fetch_add(&mod->request_ns, delay_ns + extra_ns);
    atomic_fetch_add(&mod->queue_ns, delay_ns);
    atomic_fetch_add(&mod->compute_ns, extra_ns);
}

/* ---- routing ------------------------------------------------------------- */

enum ks_route {
    KS_SERVER,
    KS_LIVE,
    KS_READY,
    KS_MODEL,
    KS_MODEL_READY,
    KS_INFER,
    KS_METRICS,
    KS_NOT_FOUND,
};

static bool is(const char *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* The path segments after "/v2/models/": name[/versions/V][/ready|/infer]. */
struct ks_path {
    const char *name, *version;
    size_t nlen, vlen;
};

static enum ks_route model_route(const char *p, size_t n, struct ks_path *mp)
{
    const char *seg[5] = {NULL};
    size_t len[5] = {0}, k = 0;
    const char *end = p + n;
    while (p <= end && k < 5) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *e = slash ? slash : end;
        seg[k] = p;
        len[k++] = (size_t)(e - p);
        p = e + 1;
        if (!slash)
            break;
    }
    if (p <= end || len[0] == 0)
        return KS_NOT_FOUND; /* more than 5 segments, or no name */
    mp->name = seg[0];
    mp->nlen = len[0];
    size_t i = 1;
    if (k >= 3 && is(seg[1], len[1], "versions")) {
        mp->version = seg[2];
        mp->vlen = len[2];
        i = 3;
    }
    if (k == i)
        return KS_MODEL;
    if (k == i + 1 && is(seg[i], len[i], "ready"))
        return KS_MODEL_READY;
    if (k == i + 1 && is(seg[i], len[i], "infer"))
        return KS_INFER;
    return KS_NOT_FOUND;
}

static enum ks_route route_of(const char *t, size_t n, struct ks_path *mp)
{
    const char *q = memchr(t, '?', n);
    if (q)
        n = (size_t)(q - t);
    if (is(t, n, "/metrics"))
        return KS_METRICS;
    if (is(t, n, "/v2") || is(t, n, "/v2/"))
        return KS_SERVER;
    if (is(t, n, "/v2/health/live"))
        return KS_LIVE;
    if (is(t, n, "/v2/health/ready"))
        return KS_READY;
    if (n > 11 && !memcmp(t, "/v2/models/", 11))
        return model_route(t + 11, n - 11, mp);
    return KS_NOT_FOUND;
}

/* The model a model route names: its index, or -1 with a 404 message in why. */
static int model_of(const struct sim_config *cfg, const struct ks_path *mp, char *why, size_t wlen)
{
    char name[80], ver[80];
    shown(mp->name, mp->nlen, name, sizeof(name));
    int i = model_find(cfg, mp->name, mp->nlen);
    if (i < 0) {
        snprintf(why, wlen, "unknown model '%s'", name);
        return -1;
    }
    const char *have = cfg->ks_models[i]->version;
    if (mp->version && !is(mp->version, mp->vlen, have)) {
        shown(mp->version, mp->vlen, ver, sizeof(ver));
        snprintf(why, wlen, "unknown version '%s' of model '%s' (it has version '%s')", ver, name,
                 have);
        return -1;
    }
    return i;
}

int ks_head(struct sim_config *cfg, const char *method, size_t mlen, const char *target,
            size_t tlen, int inject_status, bool head, bool close, struct sbuf *out)
{
    struct ks_path mp = {0};
    enum ks_route route = route_of(target, tlen, &mp);
    bool post = is(method, mlen, "POST"), get = is(method, mlen, "GET") || head;
    char why[256];
    int m = -1;
    struct sbuf b = {0};
    if (route == KS_NOT_FOUND) {
        respond_error(out, 404, "no such route", head, close);
        return -1;
    }
    if (route == KS_INFER ? !post : !get) {
        respond_error(out, 405, "method not allowed for this route", head, close);
        return -1;
    }
    if (route >= KS_MODEL && route <= KS_INFER && (m = model_of(cfg, &mp, why, sizeof(why))) < 0) {
        respond_error(out, 404, why, head, close);
        return -1;
    }
    struct ks_model *mod = m >= 0 ? cfg->ks_models[m] : NULL;
    if (inject_status) {
        if (route == KS_INFER)
            atomic_fetch_add(&mod->failure, 1);
        respond_error(out, inject_status, "injected error", head, close);
        return -1;
    }
    switch (route) {
    case KS_SERVER:
        sbuf_printf(&b, "{\"name\":\"sonde-sim\",\"version\":\"%s\",\"extensions\":[]}",
                    SONDE_VERSION);
        break;
    case KS_MODEL:
        model_metadata(mod, &b);
        break;
    case KS_MODEL_READY:
        respond(out, mod->ready ? 200 : 400, NULL, NULL, 0, head, close);
        return -1;
    case KS_INFER:
        if (mod->ready)
            return m;
        atomic_fetch_add(&mod->failure, 1);
        snprintf(why, sizeof(why), "model '%s' is not ready", mod->name);
        respond_error(out, 400, why, head, close);
        return -1;
    case KS_METRICS:
        metrics_text(cfg, &b);
        respond(out, 200, "text/plain; version=0.0.4", b.s, b.len, head, close);
        sbuf_free(&b);
        return -1;
    default: /* live, ready: 200 with an empty body */
        respond(out, 200, NULL, NULL, 0, head, close);
        return -1;
    }
    respond(out, 200, "application/json", b.s, b.len, head, close);
    sbuf_free(&b);
    return -1;
}

/* ---- infer --------------------------------------------------------------- */

/* One checked input: its shape and its data, flattened. */
struct ks_in {
    json_t *flat;
    int64_t shape[KS_MAX_DIMS];
    int rank;
};

struct ks_req {
    const struct ks_model *m;
    struct ks_in in[KS_MAX_INPUTS];
    int64_t batch; /* -1 until an input with a variable first dimension sets it */
    char why[384];
};

static bool req_fail(struct ks_req *q, const char *fmt, ...) SONDE_PRINTF(2, 3);
static bool req_fail(struct ks_req *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->why, sizeof(q->why), fmt, ap);
    va_end(ap);
    return false;
}

/* Appends the elements of v (nested arrays flattened) to flat, checking each. */
static bool flatten(struct ks_req *q, const char *name, int t, json_t *v, json_t *flat, int depth)
{
    if (json_is_array(v)) {
        if (depth >= KS_NEST_MAX)
            return req_fail(q, "input '%s': 'data' is nested more than %d deep", name, KS_NEST_MAX);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (!flatten(q, name, t, e, flat, depth + 1))
                return false;
        }
        return true;
    }
    if (!elem_ok(v, t)) {
        char want[96];
        elem_want(t, want, sizeof(want));
        return req_fail(q, "input '%s': data element %zu is not a valid %s (%s)", name,
                        json_array_size(flat), ks_types[t], want);
    }
    json_array_append(flat, v);
    return true;
}

static void shape_text(const int64_t *dims, int rank, char *buf, size_t n)
{
    struct sbuf b = {0};
    add_shape(&b, dims, rank);
    snprintf(buf, n, "%s", b.s);
    sbuf_free(&b);
}

/* Reads the shape of input t (model tensor mt) into in; checks it against the model. */
static bool check_shape(struct ks_req *q, const struct ks_tensor *mt, json_t *shape,
                        struct ks_in *in)
{
    char want[160], got[160] = "";
    shape_text(mt->dims, mt->rank, want, sizeof(want));
    if (!json_is_array(shape) || json_array_size(shape) > KS_MAX_DIMS)
        return req_fail(q, "input '%s': 'shape' must be a list of at most %d integers", mt->name,
                        KS_MAX_DIMS);
    in->rank = (int)json_array_size(shape);
    for (int i = 0; i < in->rank; i++) {
        json_t *d = json_array_get(shape, (size_t)i);
        if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > KS_DIM_MAX)
            return req_fail(q, "input '%s': 'shape' must be a list of integers from 0 to 2^31",
                            mt->name);
        in->shape[i] = json_integer_value(d);
    }
    bool match = in->rank == mt->rank;
    for (int i = 0; match && i < in->rank; i++)
        match = mt->dims[i] < 0 || mt->dims[i] == in->shape[i];
    if (!match) {
        shape_text(in->shape, in->rank, got, sizeof(got));
        return req_fail(q, "input '%s': shape %s does not match the model's %s", mt->name, got,
                        want);
    }
    if (mt->dims[0] >= 0)
        return true;
    if (q->batch >= 0 && q->batch != in->shape[0])
        return req_fail(
            q, "input '%s': batch size %" PRId64 " differs from the other inputs' %" PRId64,
            mt->name, in->shape[0], q->batch);
    q->batch = in->shape[0];
    return true;
}

static bool check_input(struct ks_req *q, json_t *o)
{
    const struct ks_model *m = q->m;
    json_t *name = json_object_get(o, "name");
    if (!json_is_object(o) || !json_is_string(name))
        return req_fail(q, "each entry of 'inputs' must be an object with a string 'name'");
    const char *n = json_string_value(name);
    char shown_name[80];
    shown(n, strlen(n), shown_name, sizeof(shown_name));
    int k = 0;
    while (k < m->nin && strcmp(m->in[k].name, n) != 0)
        k++;
    if (k == m->nin)
        return req_fail(q, "unexpected input '%s' for model '%s'", shown_name, m->name);
    const struct ks_tensor *mt = &m->in[k];
    struct ks_in *in = &q->in[k];
    if (in->flat)
        return req_fail(q, "input '%s' is given twice", mt->name);
    json_t *dt = json_object_get(o, "datatype");
    if (!json_is_string(dt))
        return req_fail(q, "input '%s': 'datatype' must be a string", mt->name);
    if (strcmp(json_string_value(dt), ks_types[mt->dtype]) != 0) {
        char got[80];
        shown(json_string_value(dt), strlen(json_string_value(dt)), got, sizeof(got));
        return req_fail(q, "input '%s': datatype '%s' does not match the model's %s", mt->name, got,
                        ks_types[mt->dtype]);
    }
    if (!check_shape(q, mt, json_object_get(o, "shape"), in))
        return false;
    int64_t need = 1; /* the product of the shape, capped above KS_ELEMS_MAX */
    for (int i = 0; i < in->rank; i++)
        need = in->shape[i] == 0                    ? 0
               : need > KS_ELEMS_MAX / in->shape[i] ? KS_ELEMS_MAX + 1
                                                    : need * in->shape[i];
    json_t *data = json_object_get(o, "data");
    if (!data)
        return req_fail(q, "input '%s' has no 'data'", mt->name);
    in->flat = json_array();
    if (!flatten(q, mt->name, mt->dtype, data, in->flat, 0))
        return false;
    int64_t got = (int64_t)json_array_size(in->flat);
    if (got != need) {
        char s[160], needs[32] = "more than 2^40";
        shape_text(in->shape, in->rank, s, sizeof(s));
        if (need <= KS_ELEMS_MAX)
            snprintf(needs, sizeof(needs), "%" PRId64, need);
        return req_fail(q, "input '%s': %" PRId64 " elements in 'data', but shape %s needs %s",
                        mt->name, got, s, needs);
    }
    return true;
}

/* The requested outputs (all when absent) into want[]. */
static bool check_outputs(struct ks_req *q, json_t *outs, bool *want)
{
    if (!outs) {
        for (int i = 0; i < q->m->nin; i++)
            want[i] = true;
        return true;
    }
    if (!json_is_array(outs))
        return req_fail(q, "'outputs' must be a list");
    size_t i;
    json_t *o;
    json_array_foreach(outs, i, o)
    {
        json_t *name = json_object_get(o, "name");
        if (!json_is_object(o) || !json_is_string(name))
            return req_fail(q, "each entry of 'outputs' must be an object with a string 'name'");
        const char *n = json_string_value(name);
        int k = 0;
        char expect[24];
        for (; k < q->m->nin; k++) {
            snprintf(expect, sizeof(expect), "OUTPUT%d", k);
            if (!strcmp(n, expect))
                break;
        }
        if (k == q->m->nin) {
            char s[80];
            shown(n, strlen(n), s, sizeof(s));
            return req_fail(q, "unexpected output '%s' for model '%s'", s, q->m->name);
        }
        want[k] = true;
    }
    return true;
}

/* Checks the request; returns the response object, or NULL with q->why set. */
static json_t *infer_check(struct ks_req *q, json_t *root)
{
    bool want[KS_MAX_INPUTS] = {false};
    if (!json_is_object(root))
        return req_fail(q, "the request body must be a JSON object"), NULL;
    json_t *id = json_object_get(root, "id"), *params = json_object_get(root, "parameters");
    json_t *inputs = json_object_get(root, "inputs");
    if (id && !json_is_string(id))
        return req_fail(q, "'id' must be a string"), NULL;
    if (params && !json_is_object(params))
        return req_fail(q, "'parameters' must be an object"), NULL;
    if (!json_is_array(inputs) || json_array_size(inputs) == 0)
        return req_fail(q, "'inputs' must be a non-empty list"), NULL;
    size_t i;
    json_t *o;
    json_array_foreach(inputs, i, o)
    {
        if (!check_input(q, o))
            return NULL;
    }
    for (int k = 0; k < q->m->nin; k++)
        if (!q->in[k].flat)
            return req_fail(q, "missing input '%s' of model '%s'", q->m->in[k].name, q->m->name),
                   NULL;
    if (!check_outputs(q, json_object_get(root, "outputs"), want))
        return NULL;
    json_t *resp = json_object(), *outs = json_array();
    json_object_set_new(resp, "model_name", json_string(q->m->name));
    json_object_set_new(resp, "model_version", json_string(q->m->version));
    if (id)
        json_object_set(resp, "id", id);
    for (int k = 0; k < q->m->nin; k++) {
        if (!want[k])
            continue;
        json_t *t = json_object(), *shape = json_array();
        char name[24];
        snprintf(name, sizeof(name), "OUTPUT%d", k);
        for (int d = 0; d < q->in[k].rank; d++)
            json_array_append_new(shape, json_integer(q->in[k].shape[d]));
        json_object_set_new(t, "name", json_string(name));
        json_object_set_new(t, "datatype", json_string(ks_types[q->m->in[k].dtype]));
        json_object_set_new(t, "shape", shape);
        json_object_set(t, "data", q->in[k].flat);
        json_array_append_new(outs, t);
    }
    json_object_set_new(resp, "outputs", outs);
    return resp;
}

int64_t ks_infer(struct sim_config *cfg, int m, const char *body, size_t len, bool close,
                 struct sbuf *out)
{
    struct ks_model *mod = cfg->ks_models[m];
    struct ks_req *q = xcalloc(1, sizeof(*q));
    q->m = mod;
    q->batch = -1;
    json_t *root = json_loadb(body, len, 0, NULL), *resp = NULL;
    if (!root)
        req_fail(q, "the request body is not valid JSON");
    else
        resp = infer_check(q, root);
    int64_t batch = q->batch < 0 ? 1 : q->batch, extra = -1;
    char *text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    if (text) {
        atomic_fetch_add(&mod->success, 1);
        atomic_fetch_add(&mod->count, batch);
        atomic_fetch_add(&mod->exec, 1);
        respond(out, 200, "application/json", text, strlen(text), false, close);
        extra = batch * cfg->ks_item_ns;
    } else {
        atomic_fetch_add(&mod->failure, 1);
        respond_error(out, 400, resp ? "cannot format the response" : q->why, false, close);
    }
    free(text);
    json_decref(resp);
    json_decref(root);
    for (int k = 0; k < KS_MAX_INPUTS; k++)
        json_decref(q->in[k].flat);
    free(q);
    return extra;
}
