/* stats_file.c — lg_stats to and from JSON files, and their exact merge (see stats_file.h). */
#include "loadgen/stats_file.h"
#include "util/base64.h"
#include "util/hdr.h"
#include "util/util.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000LL

static int errf(char *err, size_t errlen, int rc, const char *fmt, ...) SONDE_PRINTF(4, 5);
static int errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- writing ----------------------------------------------------------------------------- */

/* Builds the document; the first problem is kept in err and makes the whole dump fail. */
struct wctx {
    char *err;
    size_t errlen;
    int rc;
};

static void put(struct wctx *w, json_t *obj, const char *key, json_t *v)
{
    if (!v || json_object_set_new(obj, key, v) < 0) {
        if (w->rc == 0)
            w->rc = errf(w->err, w->errlen, -ENOMEM, "cannot build the field %s", key);
    }
}

/* A counter as a JSON integer (json_int_t is long long). */
static json_t *u64_json(struct wctx *w, const char *field, uint64_t v)
{
    if (v > (uint64_t)INT64_MAX) {
        if (w->rc == 0)
            w->rc = errf(w->err, w->errlen, -EINVAL, "field %s: %llu is above INT64_MAX", field,
                         (unsigned long long)v);
        return json_null();
    }
    return json_integer((json_int_t)v);
}

static json_t *hdr_json(const struct hdr *h)
{
    if (!h)
        return json_null();
    unsigned char *buf = NULL;
    size_t len = 0, n = 0;
    hdr_encode(h, &buf, &len);
    char *s = base64_encode(buf, len, &n);
    json_t *v = json_stringn(s, n);
    free(s);
    free(buf);
    return v;
}

/* The client driver's results: [{"name": N, "counter"|"histogram"|"secs": V}, ...]. */
static json_t *extra_json(struct wctx *w, const struct lg_stats *s)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && w->rc == 0 && i < s->nextra; i++) {
        const struct lg_extra *x = &s->extra[i];
        json_t *o = json_object();
        if (o)
            put(w, o, "name", json_string(x->name));
        if (o && x->kind == LG_EXTRA_COUNTER)
            put(w, o, "counter", u64_json(w, x->name, x->count));
        else if (o && (x->kind == LG_EXTRA_MIN || x->kind == LG_EXTRA_MAX))
            put(w, o, x->kind == LG_EXTRA_MIN ? "min" : "max", json_integer(x->value));
        else if (o && x->kind == LG_EXTRA_HDR)
            put(w, o, "histogram", hdr_json(x->hdr));
        else if (o) {
            json_t *v = json_array();
            for (size_t k = 0; v && k < x->nsecs; k++)
                if (json_array_append_new(v, u64_json(w, x->name, x->secs[k])) < 0)
                    w->rc = w->rc ? w->rc : -ENOMEM;
            put(w, o, "secs", v);
        }
        if (!o || json_array_append_new(arr, o) < 0)
            w->rc = w->rc ? w->rc : -ENOMEM;
    }
    return arr;
}

int lg_stats_dump(const struct lg_stats *s, char **text, size_t *len, char *err, size_t errlen)
{
    if (!s->latency || !s->service)
        return errf(err, errlen, -EINVAL, "field %s: no histogram",
                    s->latency ? "service" : "latency");
    if (!isfinite(s->achieved_rate) || s->achieved_rate < 0)
        return errf(err, errlen, -EINVAL, "field achieved_rate: %g is not a rate",
                    s->achieved_rate);
    struct wctx w = {err, errlen, 0};
    json_t *root = json_object();
    if (!root)
        return errf(err, errlen, -ENOMEM, "out of memory");
    put(&w, root, "format", json_string(LG_STATS_FORMAT));
    put(&w, root, "version", json_integer(LG_STATS_VERSION));
    put(&w, root, "requests", u64_json(&w, "requests", s->requests));
    put(&w, root, "ok", u64_json(&w, "ok", s->ok));
    json_t *errs = json_object();
    for (int e = 0; e < LG_ERR_COUNT; e++) {
        const char *name = lg_err_name((enum lg_err)e);
        if (errs)
            put(&w, errs, name, u64_json(&w, name, s->errors[e]));
    }
    put(&w, root, "errors", errs);
    json_t *cls = json_array();
    for (int k = 0; k < 6; k++)
        if (cls && json_array_append_new(cls, u64_json(&w, "status_class", s->status_class[k])) < 0)
            w.rc = w.rc ? w.rc : -ENOMEM;
    put(&w, root, "status_class", cls);
    put(&w, root, "bytes_in", u64_json(&w, "bytes_in", s->bytes_in));
    put(&w, root, "bytes_out", u64_json(&w, "bytes_out", s->bytes_out));
    put(&w, root, "connects", u64_json(&w, "connects", s->connects));
    put(&w, root, "window_start_wall_ns", json_integer(s->window_start_wall_ns));
    put(&w, root, "window_ns", json_integer(s->window_ns));
    put(&w, root, "achieved_rate", json_real(s->achieved_rate));
    put(&w, root, "rate_missed", json_boolean(s->rate_missed));
    put(&w, root, "unsent", u64_json(&w, "unsent", s->unsent));
    put(&w, root, "latency", hdr_json(s->latency));
    put(&w, root, "service", hdr_json(s->service));
    put(&w, root, "issue_delay", hdr_json(s->issue_delay));
    json_t *secs = json_array();
    for (size_t i = 0; secs && w.rc == 0 && i < s->nsecs; i++) {
        const struct lg_second *sec = &s->secs[i];
        json_t *o = json_object();
        char f[3][48];
        snprintf(f[0], sizeof(f[0]), "secs[%zu].requests", i);
        snprintf(f[1], sizeof(f[1]), "secs[%zu].errors", i);
        snprintf(f[2], sizeof(f[2]), "secs[%zu].bytes_in", i);
        if (o) {
            put(&w, o, "requests", u64_json(&w, f[0], sec->requests));
            put(&w, o, "errors", u64_json(&w, f[1], sec->errors));
            put(&w, o, "bytes_in", u64_json(&w, f[2], sec->bytes_in));
            put(&w, o, "p50_ns", json_integer(sec->p50_ns));
            put(&w, o, "p99_ns", json_integer(sec->p99_ns));
            put(&w, o, "latency", hdr_json(sec->latency));
        }
        if (!o || json_array_append_new(secs, o) < 0)
            w.rc = w.rc ? w.rc : -ENOMEM;
    }
    put(&w, root, "secs", secs);
    put(&w, root, "extra", extra_json(&w, s));
    char *out = NULL;
    if (w.rc == 0) {
        /* one key per line: still readable with a pager, a little larger than compact */
        out = json_dumps(root, JSON_INDENT(1));
        if (!out)
            w.rc = errf(err, errlen, -ENOMEM, "cannot serialize the results");
    }
    json_decref(root);
    if (w.rc < 0)
        return w.rc;
    *text = xasprintf("%s\n", out); /* a text file: ends with a newline */
    *len = strlen(*text);
    free(out);
    return 0;
}

int lg_stats_write(const struct lg_stats *s, const char *path, char *err, size_t errlen)
{
    char msg[256] = "";
    char *text = NULL;
    size_t len = 0;
    int r = lg_stats_dump(s, &text, &len, msg, sizeof(msg));
    if (r < 0)
        return errf(err, errlen, r, "%s: %s", path, msg);
    r = write_file_atomic(path, text, len);
    free(text);
    if (r < 0)
        return errf(err, errlen, r, "%s: cannot write: %s", path, strerror(-r));
    return 0;
}

/* ---- reading ----------------------------------------------------------------------------- */

struct pctx {
    const char *name;
    char *err;
    size_t errlen;
    uint64_t hdr_mem; /* memory of the histograms decoded so far */
};

/* "NAME: field PREFIX.KEY: message"; returns -EINVAL. */
static int fail(struct pctx *c, const char *prefix, const char *key, const char *fmt, ...)
    SONDE_PRINTF(4, 5);
static int fail(struct pctx *c, const char *prefix, const char *key, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return errf(c->err, c->errlen, -EINVAL, "%s: field %s%s%s: %s", c->name, prefix ? prefix : "",
                prefix ? "." : "", key, msg);
}

/* Rejects keys of obj that are not in known (NULL-terminated). */
static int check_keys(struct pctx *c, json_t *obj, const char *prefix, const char *const *known)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        const char *const *k = known;
        while (*k && strcmp(*k, key) != 0)
            k++;
        if (!*k)
            return fail(c, prefix, key, "unknown field");
    }
    return 0;
}

static int as_int(struct pctx *c, json_t *v, const char *prefix, const char *key, int64_t min,
                  int64_t *out)
{
    if (!v)
        return fail(c, prefix, key, "missing");
    if (!json_is_integer(v))
        return fail(c, prefix, key, "not an integer");
    json_int_t x = json_integer_value(v);
    if (x < min)
        return fail(c, prefix, key, "%lld is %s", (long long)x,
                    min == 0 ? "negative" : "too small");
    *out = (int64_t)x;
    return 0;
}

static int get_int(struct pctx *c, json_t *obj, const char *prefix, const char *key, int64_t min,
                   int64_t *out)
{
    return as_int(c, json_object_get(obj, key), prefix, key, min, out);
}

static int get_u64(struct pctx *c, json_t *obj, const char *prefix, const char *key, uint64_t *out)
{
    int64_t x = 0;
    int r = get_int(c, obj, prefix, key, 0, &x);
    if (r == 0)
        *out = (uint64_t)x;
    return r;
}

/* A histogram field: base64 of hdr_encode. Absent or null is NULL when optional. */
static int get_hdr(struct pctx *c, json_t *obj, const char *prefix, const char *key, bool optional,
                   struct hdr **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return optional ? 0 : fail(c, prefix, key, v ? "null, a histogram is required" : "missing");
    if (!json_is_string(v))
        return fail(c, prefix, key, "not a string (base64 of a histogram)");
    unsigned char *buf = NULL;
    size_t len = 0;
    if (base64_decode(json_string_value(v), json_string_length(v), &buf, &len) < 0)
        return fail(c, prefix, key, "not valid base64");
    struct hdr *h = NULL;
    int r = hdr_decode(buf, len, &h);
    free(buf);
    if (r < 0)
        return fail(c, prefix, key, "not a valid histogram%s",
                    r == -EOVERFLOW ? " (its counts overflow)" : "");
    c->hdr_mem += hdr_memory(h);
    if (c->hdr_mem > LG_STATS_HDR_MEMORY_MAX) {
        hdr_free(h);
        return fail(c, prefix, key, "the file's histograms would need more than %llu MiB",
                    (unsigned long long)(LG_STATS_HDR_MEMORY_MAX >> 20));
    }
    *out = h;
    return 0;
}

static const char *const top_keys[] = {
    "format",       "version",       "requests",    "ok",       "errors",
    "status_class", "bytes_in",      "bytes_out",   "connects", "window_start_wall_ns",
    "window_ns",    "achieved_rate", "rate_missed", "unsent",   "latency",
    "service",      "issue_delay",   "secs",        "extra",    NULL,
};

static const char *const extra_keys[] = {"name", "counter", "histogram", "secs",
                                         "min",  "max",     NULL};

/* extra[i]: a name and exactly one of counter, histogram, secs, min and max. */
static int parse_extra(struct pctx *c, json_t *o, size_t i, struct lg_stats *st)
{
    char prefix[40];
    snprintf(prefix, sizeof(prefix), "extra[%zu]", i);
    if (!json_is_object(o))
        return errf(c->err, c->errlen, -EINVAL, "%s: field %s: not an object", c->name, prefix);
    int r = check_keys(c, o, prefix, extra_keys);
    json_t *name = json_object_get(o, "name"), *cnt = json_object_get(o, "counter");
    json_t *h = json_object_get(o, "histogram"), *v = json_object_get(o, "secs");
    json_t *lo = json_object_get(o, "min"), *hi = json_object_get(o, "max");
    if (r == 0 && (!json_is_string(name) || !lg_extra_name_ok(json_string_value(name))))
        return fail(c, prefix, "name", "not a name of 1-%d characters [a-z0-9_]",
                    LG_EXTRA_NAME_MAX);
    if (r == 0 && !!cnt + !!h + !!v + !!lo + !!hi != 1)
        return fail(c, prefix, "name",
                    "needs exactly one of counter, histogram, secs, min and max");
    const char *n = r == 0 ? json_string_value(name) : NULL;
    uint64_t x = 0;
    struct hdr *hist = NULL;
    if (r == 0 && cnt) {
        r = get_u64(c, o, prefix, "counter", &x);
        if (r == 0 && lg_extra_add_counter(st, n, x) < 0)
            r = fail(c, prefix, "name", "'%s' is used twice", n);
    } else if (r == 0 && (lo || hi)) {
        int64_t y = 0;
        r = get_int(c, o, prefix, lo ? "min" : "max", INT64_MIN, &y);
        if (r == 0 && lg_extra_add_bound(st, n, lo ? LG_EXTRA_MIN : LG_EXTRA_MAX, y) < 0)
            r = fail(c, prefix, "name", "'%s' is used twice", n);
    } else if (r == 0 && h) {
        r = get_hdr(c, o, prefix, "histogram", false, &hist);
        if (r == 0 && lg_extra_add_hdr(st, n, hist) < 0)
            r = fail(c, prefix, "name", "'%s' is used twice", n);
    } else if (r == 0) {
        if (!json_is_array(v) || json_array_size(v) > LG_STATS_SECS_MAX)
            return fail(c, prefix, "secs", "not an array of at most %zu counts", LG_STATS_SECS_MAX);
        size_t len = json_array_size(v);
        uint64_t *vals = xcalloc(len ? len : 1, sizeof(*vals));
        for (size_t k = 0; r == 0 && k < len; k++) {
            int64_t y = 0;
            r = as_int(c, json_array_get(v, k), prefix, "secs[]", 0, &y);
            vals[k] = (uint64_t)y;
        }
        if (r == 0 && lg_extra_add_secs(st, n, vals, len) < 0)
            r = fail(c, prefix, "name", "'%s' is used twice", n);
        free(vals);
    }
    return r;
}

static const char *const sec_keys[] = {
    "requests", "errors", "bytes_in", "p50_ns", "p99_ns", "latency", NULL,
};

static int parse_second(struct pctx *c, json_t *o, size_t i, struct lg_second *sec)
{
    char prefix[40];
    snprintf(prefix, sizeof(prefix), "secs[%zu]", i);
    if (!json_is_object(o))
        return errf(c->err, c->errlen, -EINVAL, "%s: field %s: not an object", c->name, prefix);
    int r = check_keys(c, o, prefix, sec_keys);
    if (r == 0)
        r = get_u64(c, o, prefix, "requests", &sec->requests);
    if (r == 0)
        r = get_u64(c, o, prefix, "errors", &sec->errors);
    if (r == 0 && sec->errors > sec->requests)
        r = fail(c, prefix, "errors", "%llu errors in %llu requests",
                 (unsigned long long)sec->errors, (unsigned long long)sec->requests);
    if (r == 0)
        r = get_u64(c, o, prefix, "bytes_in", &sec->bytes_in);
    if (r == 0)
        r = get_int(c, o, prefix, "p50_ns", -1, &sec->p50_ns);
    if (r == 0)
        r = get_int(c, o, prefix, "p99_ns", -1, &sec->p99_ns);
    if (r == 0)
        r = get_hdr(c, o, prefix, "latency", true, &sec->latency);
    return r;
}

static int parse_root(struct pctx *c, json_t *root, struct lg_stats *st)
{
    if (!json_is_object(root))
        return errf(c->err, c->errlen, -EINVAL, "%s: not a %s document (not a JSON object)",
                    c->name, LG_STATS_FORMAT);
    /* format and version first: a file of another kind or version says so */
    json_t *v = json_object_get(root, "format");
    if (!v)
        return fail(c, NULL, "format", "missing (not a %s document)", LG_STATS_FORMAT);
    if (!json_is_string(v) || strcmp(json_string_value(v), LG_STATS_FORMAT) != 0)
        return fail(c, NULL, "format", "not \"%s\"", LG_STATS_FORMAT);
    v = json_object_get(root, "version");
    if (!v)
        return fail(c, NULL, "version", "missing");
    if (!json_is_integer(v))
        return fail(c, NULL, "version", "not an integer");
    json_int_t version = json_integer_value(v);
    if (version < 1 || version > LG_STATS_VERSION)
        return fail(c, NULL, "version", "version %lld is not supported (this sonde reads 1-%d)",
                    (long long)version, LG_STATS_VERSION);
    int r = check_keys(c, root, NULL, top_keys);
    if (r == 0)
        r = get_u64(c, root, NULL, "requests", &st->requests);
    if (r == 0)
        r = get_u64(c, root, NULL, "ok", &st->ok);

    json_t *errs = json_object_get(root, "errors");
    if (r == 0 && !errs)
        r = fail(c, NULL, "errors", "missing");
    if (r == 0 && !json_is_object(errs))
        r = fail(c, NULL, "errors", "not an object");
    const char *err_names[LG_ERR_COUNT + 1];
    for (int e = 0; e < LG_ERR_COUNT; e++)
        err_names[e] = lg_err_name((enum lg_err)e);
    err_names[LG_ERR_COUNT] = NULL;
    if (r == 0)
        r = check_keys(c, errs, "errors", err_names);
    uint64_t total = st->ok;
    for (int e = 0; r == 0 && e < LG_ERR_COUNT; e++) {
        r = get_u64(c, errs, "errors", err_names[e], &st->errors[e]);
        if (r == 0 && __builtin_add_overflow(total, st->errors[e], &total))
            r = fail(c, "errors", err_names[e], "the error counts overflow");
    }
    if (r == 0 && total != st->requests)
        r = fail(c, NULL, "requests", "%llu, but ok + errors = %llu",
                 (unsigned long long)st->requests, (unsigned long long)total);

    json_t *cls = json_object_get(root, "status_class");
    if (r == 0 && !cls)
        r = fail(c, NULL, "status_class", "missing");
    if (r == 0 && (!json_is_array(cls) || json_array_size(cls) != 6))
        r = fail(c, NULL, "status_class", "not an array of 6 counts");
    for (size_t k = 0; r == 0 && k < 6; k++) {
        char key[24];
        snprintf(key, sizeof(key), "status_class[%zu]", k);
        int64_t x = 0;
        r = as_int(c, json_array_get(cls, k), NULL, key, 0, &x);
        st->status_class[k] = (uint64_t)x;
    }

    if (r == 0)
        r = get_u64(c, root, NULL, "bytes_in", &st->bytes_in);
    if (r == 0)
        r = get_u64(c, root, NULL, "bytes_out", &st->bytes_out);
    if (r == 0)
        r = get_u64(c, root, NULL, "connects", &st->connects);
    if (r == 0)
        r = get_int(c, root, NULL, "window_start_wall_ns", INT64_MIN, &st->window_start_wall_ns);
    if (r == 0)
        r = get_int(c, root, NULL, "window_ns", 0, &st->window_ns);
    if (r == 0) {
        v = json_object_get(root, "achieved_rate");
        if (!v)
            r = fail(c, NULL, "achieved_rate", "missing");
        else if (!json_is_number(v) || !(json_number_value(v) >= 0))
            r = fail(c, NULL, "achieved_rate", "not a non-negative number");
        else
            st->achieved_rate = json_number_value(v);
    }
    if (r == 0) {
        v = json_object_get(root, "rate_missed");
        if (!v)
            r = fail(c, NULL, "rate_missed", "missing");
        else if (!json_is_boolean(v))
            r = fail(c, NULL, "rate_missed", "not true or false");
        else
            st->rate_missed = json_is_true(v);
    }
    if (r == 0)
        r = get_u64(c, root, NULL, "unsent", &st->unsent);
    if (r == 0)
        r = get_hdr(c, root, NULL, "latency", false, &st->latency);
    if (r == 0)
        r = get_hdr(c, root, NULL, "service", false, &st->service);
    if (r == 0)
        r = get_hdr(c, root, NULL, "issue_delay", true, &st->issue_delay);

    json_t *secs = json_object_get(root, "secs");
    if (r == 0 && !secs)
        r = fail(c, NULL, "secs", "missing");
    if (r == 0 && !json_is_array(secs))
        r = fail(c, NULL, "secs", "not an array");
    if (r == 0 && json_array_size(secs) > LG_STATS_SECS_MAX)
        r = fail(c, NULL, "secs", "more than %zu seconds", LG_STATS_SECS_MAX);
    if (r == 0) {
        size_t n = json_array_size(secs);
        st->secs = xcalloc(n ? n : 1, sizeof(*st->secs));
        for (size_t i = 0; r == 0 && i < n; i++) {
            r = parse_second(c, json_array_get(secs, i), i, &st->secs[i]);
            st->nsecs = i + 1; /* so that lg_stats_free frees what this one decoded */
        }
    }
    json_t *extra = json_object_get(root, "extra"); /* version 2 */
    if (r == 0 && version >= 2 && !extra)
        r = fail(c, NULL, "extra", "missing");
    if (r == 0 && extra && version < 2)
        r = fail(c, NULL, "extra", "unknown field in version 1");
    if (r == 0 && extra && (!json_is_array(extra) || json_array_size(extra) > LG_EXTRAS_MAX))
        r = fail(c, NULL, "extra", "not an array of at most %d results", LG_EXTRAS_MAX);
    for (size_t i = 0; r == 0 && extra && i < json_array_size(extra); i++)
        r = parse_extra(c, json_array_get(extra, i), i, st);
    return r;
}

int lg_stats_parse(const char *text, size_t len, const char *name, struct lg_stats **out, char *err,
                   size_t errlen)
{
    struct pctx c = {name ? name : "(stats)", err, errlen, 0};
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return errf(err, errlen, -EINVAL, "%s: not valid JSON (line %d, column %d: %s)", c.name,
                    je.line, je.column, je.text);
    struct lg_stats *st = xcalloc(1, sizeof(*st));
    int r = parse_root(&c, root, st);
    json_decref(root);
    if (r < 0) {
        lg_stats_free(st);
        return r;
    }
    *out = st;
    return 0;
}

int lg_stats_read(const char *path, struct lg_stats **out, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int r = read_file(path, LG_STATS_FILE_MAX, &text, &len);
    if (r == -EFBIG)
        return errf(err, errlen, -EINVAL, "%s: larger than %zu MiB", path, LG_STATS_FILE_MAX >> 20);
    if (r < 0)
        return errf(err, errlen, r, "%s: cannot read: %s", path, strerror(-r));
    r = lg_stats_parse(text, len, path, out, err, errlen);
    free(text);
    return r;
}

/* ---- merging ----------------------------------------------------------------------------- */

/* Adds src into *dst, created configured like src when NULL. */
static int merge_hdr(struct hdr **dst, const struct hdr *src, const char *what, size_t k, char *err,
                     size_t errlen)
{
    if (!*dst && hdr_init(hdr_lowest(src), hdr_highest(src), hdr_sigfigs(src), dst) < 0)
        return errf(err, errlen, -EINVAL, "input %zu: %s: bad histogram configuration", k, what);
    struct hdr *d = *dst;
    bool same = hdr_lowest(d) == hdr_lowest(src) && hdr_highest(d) == hdr_highest(src) &&
                hdr_sigfigs(d) == hdr_sigfigs(src);
    /* across configurations hdr_merge keeps every value, but one above the
     * destination's range could only be counted as saturated: refuse */
    if (!same && hdr_count(src) > 0 && hdr_max(src) > hdr_highest(d))
        return errf(err, errlen, -EINVAL,
                    "input %zu: %s: values up to %lld ns lie above the merged histogram's "
                    "highest trackable value (%lld ns, from the first input)",
                    k, what, (long long)hdr_max(src), (long long)hdr_highest(d));
    if (hdr_merge(d, src) < 0)
        return errf(err, errlen, -EOVERFLOW, "input %zu: %s: the merged counts overflow", k, what);
    return 0;
}

static int add_counter(uint64_t *acc, uint64_t v, const char *what, size_t k, char *err,
                       size_t errlen)
{
    if (__builtin_add_overflow(*acc, v, acc))
        return errf(err, errlen, -EOVERFLOW, "input %zu: %s: the sum overflows", k, what);
    return 0;
}

/* Accumulates one merged second. */
struct msec {
    struct hdr *h;
    size_t with_ok;   /* inputs with successful requests in this second */
    size_t missing;   /* ... of which without a histogram */
    int64_t p50, p99; /* the last such input's */
};

/* Input k's offset in the merged series: the wall-clock distance from the
 * earliest start, rounded to the nearest second; *total grows to cover it. */
static int sec_offset(const struct lg_stats *s, size_t k, int64_t start, size_t *off, size_t *total,
                      char *err, size_t errlen)
{
    uint64_t d = (uint64_t)s->window_start_wall_ns - (uint64_t)start; /* start is the minimum */
    uint64_t o = d / NS_PER_S + (d % NS_PER_S >= NS_PER_S / 2);
    *off = o > LG_STATS_SECS_MAX ? 0 : (size_t)o; /* also for the extra series */
    if (s->nsecs == 0)
        return 0;
    if (o > LG_STATS_SECS_MAX || s->nsecs > LG_STATS_SECS_MAX - o)
        return errf(err, errlen, -EINVAL,
                    "input %zu: its per-second series ends more than %zu s after the earliest "
                    "start",
                    k, LG_STATS_SECS_MAX);
    *off = (size_t)o;
    if (*off + s->nsecs > *total)
        *total = *off + s->nsecs;
    return 0;
}

/* The per-second series, input k's second i in merged second off[k] + i (of total). */
static int merge_secs(struct lg_stats *const *in, size_t n, const size_t *off, size_t total,
                      struct lg_stats *st, char *err, size_t errlen)
{
    int r = 0;
    struct msec *m = xcalloc(total ? total : 1, sizeof(*m));
    st->secs = xcalloc(total ? total : 1, sizeof(*st->secs));
    st->nsecs = total;
    for (size_t k = 0; r == 0 && k < n; k++) {
        for (size_t i = 0; r == 0 && i < in[k]->nsecs; i++) {
            const struct lg_second *s = &in[k]->secs[i];
            size_t j = off[k] + i;
            struct lg_second *d = &st->secs[j];
            r = add_counter(&d->requests, s->requests, "secs[].requests", k, err, errlen);
            if (r == 0)
                r = add_counter(&d->errors, s->errors, "secs[].errors", k, err, errlen);
            if (r == 0)
                r = add_counter(&d->bytes_in, s->bytes_in, "secs[].bytes_in", k, err, errlen);
            if (r == 0 && s->latency)
                r = merge_hdr(&m[j].h, s->latency, "secs[].latency", k, err, errlen);
            if (s->requests > s->errors) { /* only successful requests have latencies */
                m[j].with_ok++;
                m[j].missing += !s->latency;
                m[j].p50 = s->p50_ns;
                m[j].p99 = s->p99_ns;
            }
        }
    }
    for (size_t j = 0; j < total; j++) {
        struct lg_second *d = &st->secs[j];
        d->p50_ns = d->p99_ns = -1;
        if (r < 0 || m[j].missing > 0) {
            if (r == 0 && m[j].with_ok == 1) { /* the only input with latencies: exact */
                d->p50_ns = m[j].p50;
                d->p99_ns = m[j].p99;
            }
            hdr_free(m[j].h);
            continue;
        }
        d->latency = m[j].h;
        if (d->latency && hdr_count(d->latency) > 0) {
            d->p50_ns = hdr_percentile(d->latency, 50);
            d->p99_ns = hdr_percentile(d->latency, 99);
        }
    }
    free(m);
    return r;
}

/* The client driver's results: the same names and kinds in every input (one
 * driver wrote them all); counters summed, histograms merged, series aligned
 * like the engine's seconds (off). */
static int merge_extra(struct lg_stats *const *in, size_t n, const size_t *off, struct lg_stats *st,
                       char *err, size_t errlen)
{
    const struct lg_stats *a = in[0];
    for (size_t k = 1; k < n; k++) {
        bool same = in[k]->nextra == a->nextra;
        for (size_t i = 0; same && i < a->nextra; i++)
            same = in[k]->extra[i].kind == a->extra[i].kind &&
                   !strcmp(in[k]->extra[i].name, a->extra[i].name);
        if (!same)
            return errf(err, errlen, -EINVAL,
                        "input %zu: its client results (extra) are not those of input 0", k);
    }
    int r = 0;
    for (size_t i = 0; r == 0 && i < a->nextra; i++) {
        const char *name = a->extra[i].name;
        uint64_t sum = 0;
        int64_t bound = a->extra[i].value;
        struct hdr *h = NULL;
        size_t len = 0;
        for (size_t k = 0; r == 0 && k < n; k++) {
            size_t xn = in[k]->extra[i].nsecs;
            if (xn > LG_STATS_SECS_MAX - off[k])
                r = errf(err, errlen, -EINVAL, "input %zu: %s: the series is too long", k, name);
            else if (xn && off[k] + xn > len)
                len = off[k] + xn;
        }
        if (r < 0)
            break;
        uint64_t *v = xcalloc(len ? len : 1, sizeof(*v));
        for (size_t k = 0; r == 0 && k < n; k++) {
            const struct lg_extra *x = &in[k]->extra[i];
            if (x->kind == LG_EXTRA_COUNTER)
                r = add_counter(&sum, x->count, name, k, err, errlen);
            else if (x->kind == LG_EXTRA_MIN && x->value < bound)
                bound = x->value;
            else if (x->kind == LG_EXTRA_MAX && x->value > bound)
                bound = x->value;
            else if (x->kind == LG_EXTRA_HDR)
                r = merge_hdr(&h, x->hdr, name, k, err, errlen);
            for (size_t j = 0; r == 0 && j < x->nsecs; j++)
                r = add_counter(&v[off[k] + j], x->secs[j], name, k, err, errlen);
        }
        if (r == 0 && a->extra[i].kind == LG_EXTRA_COUNTER)
            r = lg_extra_add_counter(st, name, sum);
        else if (r == 0 && (a->extra[i].kind == LG_EXTRA_MIN || a->extra[i].kind == LG_EXTRA_MAX))
            r = lg_extra_add_bound(st, name, a->extra[i].kind, bound);
        else if (r == 0 && a->extra[i].kind == LG_EXTRA_HDR) {
            r = lg_extra_add_hdr(st, name, h);
            h = NULL;
        } else if (r == 0)
            r = lg_extra_add_secs(st, name, v, len);
        hdr_free(h);
        free(v);
    }
    return r;
}

int lg_stats_merge(struct lg_stats *const *in, size_t n, struct lg_stats **out, char *err,
                   size_t errlen)
{
    if (n == 0)
        return errf(err, errlen, -EINVAL, "no results to merge");
    for (size_t k = 0; k < n; k++) {
        if (!in[k] || !in[k]->latency || !in[k]->service)
            return errf(err, errlen, -EINVAL, "input %zu: no %s", k,
                        !in[k]            ? "results"
                        : !in[k]->latency ? "latency histogram"
                                          : "service histogram");
        if (!in[k]->issue_delay != !in[0]->issue_delay)
            return errf(err, errlen, -EINVAL,
                        "input %zu: %s issue-delay histogram (open and closed loop results "
                        "cannot be merged)",
                        k, in[k]->issue_delay ? "an" : "no");
        if (in[k]->window_ns < 0)
            return errf(err, errlen, -EINVAL, "input %zu: negative window", k);
    }
    struct lg_stats *st = xcalloc(1, sizeof(*st));
    int r = 0;
    int64_t start = INT64_MAX, end = INT64_MIN;
    for (size_t k = 0; r == 0 && k < n; k++) {
        const struct lg_stats *s = in[k];
        r = add_counter(&st->requests, s->requests, "requests", k, err, errlen);
        if (r == 0)
            r = add_counter(&st->ok, s->ok, "ok", k, err, errlen);
        for (int e = 0; r == 0 && e < LG_ERR_COUNT; e++)
            r = add_counter(&st->errors[e], s->errors[e], lg_err_name((enum lg_err)e), k, err,
                            errlen);
        for (int c = 0; r == 0 && c < 6; c++)
            r = add_counter(&st->status_class[c], s->status_class[c], "status_class", k, err,
                            errlen);
        if (r == 0)
            r = add_counter(&st->bytes_in, s->bytes_in, "bytes_in", k, err, errlen);
        if (r == 0)
            r = add_counter(&st->bytes_out, s->bytes_out, "bytes_out", k, err, errlen);
        if (r == 0)
            r = add_counter(&st->connects, s->connects, "connects", k, err, errlen);
        if (r == 0)
            r = add_counter(&st->unsent, s->unsent, "unsent", k, err, errlen);
        st->rate_missed = st->rate_missed || s->rate_missed;
        if (r == 0)
            r = merge_hdr(&st->latency, s->latency, "latency", k, err, errlen);
        if (r == 0)
            r = merge_hdr(&st->service, s->service, "service", k, err, errlen);
        if (r == 0 && s->issue_delay)
            r = merge_hdr(&st->issue_delay, s->issue_delay, "issue_delay", k, err, errlen);
        int64_t e_k;
        if (r == 0 && __builtin_add_overflow(s->window_start_wall_ns, s->window_ns, &e_k))
            r = errf(err, errlen, -EOVERFLOW,
                     "input %zu: window_start_wall_ns + window_ns overflows", k);
        if (r == 0) {
            start = s->window_start_wall_ns < start ? s->window_start_wall_ns : start;
            end = e_k > end ? e_k : end;
        }
    }
    if (r == 0 && __builtin_sub_overflow(end, start, &st->window_ns))
        r = errf(err, errlen, -EOVERFLOW, "the inputs' windows span more than INT64_MAX ns");
    size_t *off = xcalloc(n, sizeof(*off)), total = 0;
    for (size_t k = 0; r == 0 && k < n; k++)
        r = sec_offset(in[k], k, start, &off[k], &total, err, errlen);
    if (r == 0) {
        st->window_start_wall_ns = start;
        st->achieved_rate =
            st->window_ns > 0 ? (double)st->requests * 1e9 / (double)st->window_ns : 0;
        r = merge_secs(in, n, off, total, st, err, errlen);
    }
    if (r == 0)
        r = merge_extra(in, n, off, st, err, errlen);
    free(off);
    if (r < 0) {
        lg_stats_free(st);
        return r;
    }
    *out = st;
    return 0;
}
