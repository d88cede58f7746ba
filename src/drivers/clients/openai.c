/* openai.c — the `openai` client: load on an OpenAI-compatible inference server
 * (completions or chat, streaming or not) through the load engine
 * (loadgen/engine.h), closed or open loop, with TTFT, ITL, TPOT and E2E
 * histograms, token counts, throughput and goodput against SLOs (METRICS.md,
 * "LLM inference"). Options and the exact rules: docs/inference.md. */
#include "drivers/clients/client_common.h"
#include "drivers/clients/fanout.h"
#include "drivers/clients/llm_data.h"

#include "core/session.h"
#include "loadgen/engine.h"
#include "loadgen/http_parser.h"
#include "util/hdr.h"
#include "util/json_scan.h"
#include "util/rng.h"
#include "util/units.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OAI_CONNS_MAX 100000
#define OAI_BODY_MAX  ((size_t)16 << 20) /* a non-streaming response body */
#define OAI_HDR_MAX   (3600LL * 1000000000LL)
#define OAI_NS_PER_S  1000000000LL

static const char *const oai_endpoints[] = {"chat", "completions", NULL};

static const struct opt_def oai_slo_fields[] = {
    {"ttft", OPT_DURATION, false, NULL, "time to first token at most this", NULL, NULL},
    {"tpot", OPT_DURATION, false, NULL, "time per output token at most this", NULL, NULL},
    {"e2e", OPT_DURATION, false, NULL, "whole request at most this", NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

static const char *const oai_dataset_types[] = {"sharegpt", "jsonl", NULL};

static const struct opt_def oai_dataset_fields[] = {
    {"type", OPT_ENUM, true, NULL, "sharegpt: a ShareGPT JSON array; jsonl: one prompt per line",
     oai_dataset_types, NULL},
    {"path", OPT_STR, true, NULL, "the file (relative: to sonde's working directory)", NULL, NULL},
    {"limit", OPT_INT, false, NULL, "use at most this many entries (the first ones)", NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

static const struct opt_def oai_opts[] = {
    {"url", OPT_STR, true, NULL,
     "base URL of the server, e.g. \"http://${services.llm.host}:${services.llm.port}\" "
     "(/v1/... is appended)",
     NULL, NULL},
    {"endpoint", OPT_ENUM, false, "chat",
     "chat: /v1/chat/completions; completions: /v1/completions", oai_endpoints, NULL},
    {"model", OPT_STR, true, NULL, "the model field of every request", NULL, NULL},
    {"max_tokens", OPT_STR, false, "128",
     "output tokens asked for per request: N, uniform:LO,HI or normal:MEAN,SD (seeded); with a "
     "dataset, its entries' own lengths unless given",
     NULL, NULL},
    {"ignore_eos", OPT_BOOL, false, "true", "ask the server to generate all max_tokens", NULL,
     NULL},
    {"temperature", OPT_FLOAT, false, "0", "sampling temperature", NULL, NULL},
    {"stream", OPT_BOOL, false, "true",
     "stream the output (SSE, with usage); off: E2E and token counts only", NULL, NULL},
    {"continuous_usage", OPT_BOOL, false, "false",
     "ask for usage in every chunk (vLLM's stream_options.continuous_usage_stats): exact tokens "
     "per chunk",
     NULL, NULL},
    {"extra_body", OPT_MAP, false, NULL, "fields added to every request body (e.g. top_p, seed)",
     NULL, NULL},
    {"api_key_env", OPT_STR, false, NULL,
     "name of an environment variable holding the bearer token (never the key itself)", NULL, NULL},
    {"prompt", OPT_STR, false, NULL, "the prompt of every request", NULL, NULL},
    {"input_tokens", OPT_STR, false, NULL,
     "instead of prompt: random prompts of this many words: N, uniform:LO,HI or normal:MEAN,SD "
     "(seeded)",
     NULL, NULL},
    {"dataset", OPT_MAP, false, NULL,
     "instead of prompt: prompts from a file ({type: sharegpt|jsonl, path: FILE, limit: N})", NULL,
     oai_dataset_fields},
    {"records", OPT_BOOL, false, "false",
     "write one JSON line per measured request to requests.jsonl in the session directory", NULL,
     NULL},
    {"seed", OPT_INT, false, "1", "seed of the arrival schedule and of the random prompts", NULL,
     NULL},
    {"connections", OPT_INT, false, "1", "connections in total (closed loop: concurrent users)",
     NULL, NULL},
    {"threads", OPT_INT, false, "1", "worker threads (<= connections)", NULL, NULL},
    {"mode", OPT_ENUM, false, "closed", "load model", cl_mode_choices, NULL},
    {"rate", OPT_FLOAT, false, NULL, "open loop: requests/s in total (required there)", NULL, NULL},
    {"arrival", OPT_ENUM, false, "poisson", "open loop: arrival process", cl_arrival_choices, NULL},
    {"burstiness", OPT_FLOAT, false, "1", "gamma arrivals: shape k (1 = Poisson)", NULL, NULL},
    CL_OPTS_BOUNDS,
    CL_OPTS_TIMEOUTS,
    CL_OPT_BUSY_POLL,
    {"slo", OPT_MAP, false, NULL,
     "goodput: the request-level objectives every good request meets (any of ttft, tpot, e2e)",
     NULL, oai_slo_fields},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

/* Error classes: the engine's (enum lg_err), then the ones of a response that
 * arrived but cannot be used. */
enum {
    OE_JSON = LG_ERR_COUNT, /* a data line (or the body) that is not a JSON object */
    OE_API,                 /* an "error" object in the stream or the body */
    OE_TRUNCATED,           /* the stream ended without data: [DONE] */
    OE_EMPTY,               /* a stream without any content chunk */
    OE_COUNT
};

static const char *oai_err_name(int e)
{
    static const char *const own[] = {"json", "api", "truncated", "empty"};
    return e < LG_ERR_COUNT ? lg_err_name((enum lg_err)e) : own[e - LG_ERR_COUNT];
}

/* What a response's JSON is read for (in this order), found by
 * the allocation-free scanner (util/json_scan.h): one document per streamed
 * chunk, so no tree is built. */
enum { P_ERROR, P_TEXT, P_DELTA, P_MESSAGE, P_COMPLETION, P_PROMPT, P_COUNT };
static const char *const oai_path_text[P_COUNT] = {
    "error",
    "choices[0].text",
    "choices[0].delta.content",
    "choices[0].message.content",
    "usage.completion_tokens",
    "usage.prompt_tokens",
};

/* One request in flight (owned by the worker thread that sent it). */
struct oai_req {
    int64_t sstar, s, now;
    int status;
    int err; /* first error class, -1 when none */
    bool done_seen, have_usage;
    int64_t prompt_tokens, completion_tokens;
    int64_t *chunk_t;   /* arrival times of the content chunks */
    int64_t *chunk_cum; /* usage.completion_tokens in each (continuous usage), -1: none */
    size_t nchunks, cap;
    struct sse_parser sse;
    struct sbuf body;             /* non-streaming */
    const struct js_paths *paths; /* oai_path_text, compiled */
};

struct oai_state {
    struct lg_config cfg;
    struct lg_run *run;
    bool waited;
    int64_t status_at;
    /* the request */
    bool chat, stream, ignore_eos, continuous, out_given;
    struct llm_len out_len, in_len; /* in_len.hi == 0: no random prompts */
    struct llm_set set;             /* a dataset, or none */
    json_t *extra;                  /* extra_body, or NULL */
    double temperature;
    char *model, *prompt, *host_header, *target, *auth;
    struct sbuf req;
    FILE *records; /* requests.jsonl.part while running, or NULL */
    char *records_path;
    int task;       /* a fan-out task's index (in its records), -1 inside sonde */
    int64_t fanout; /* batch backend: tasks of the agent job (0: the load runs in sonde) */
    /* goodput objectives, 0 = none */
    int64_t slo_ttft, slo_tpot, slo_e2e;
    bool slo;
    /* measured window as this client sees it (starts at or just before the engine's) */
    int64_t ws, end;
    uint64_t max_requests;
    /* results, under mu */
    pthread_mutex_t mu;
    bool mu_ok;
    struct hdr *ttft, *ttft_intended, *itl, *tpot, *e2e, *norm;
    struct js_paths paths;
    uint64_t requests, ok, good, errors[OE_COUNT], status_class[6];
    uint64_t out_tokens, prompt_tokens, est_requests;
    struct cl_secs secs; /* a: requests, b: output tokens */
};

/* ---- the URL ----------------------------------------------------------------------------- */

/* ---- requests ---------------------------------------------------------------------------- */

static const char *const oai_words[] = {
    "the",   "model", "tells", "a",      "story", "about", "light", "and",
    "time",  "when",  "every", "city",   "keeps", "its",   "old",   "rivers",
    "under", "stone", "while", "people", "walk",  "home",  "past",  "bright",
    "signs", "of",    "quiet", "green",  "hills", "near",  "sea",   "wind",
};

/* The prompt and output length of one request: the fixed prompt, a dataset
 * entry drawn from rng, or random words of a drawn length. */
static const char *oai_pick(const struct oai_state *st, struct rng *rng, struct sbuf *words,
                            int64_t *max_tokens)
{
    const char *prompt = st->prompt;
    int64_t out = 0;
    if (st->set.n) {
        const struct llm_item *it = &st->set.items[rng_next(rng) % st->set.n];
        prompt = it->prompt;
        out = it->out;
    } else if (!prompt) {
        int64_t n = llm_len_draw(&st->in_len, rng);
        for (int64_t i = 0; i < n; i++) {
            const char *w = oai_words[rng_next(rng) % SONDE_ARRAY_LEN(oai_words)];
            sbuf_printf(words, "%s%s", i ? " " : "", w);
        }
        prompt = words->s ? words->s : "";
    }
    *max_tokens = out && !st->out_given ? out : llm_len_draw(&st->out_len, rng);
    return prompt;
}

/* The JSON body of one request (rng NULL: a fixed prompt and length). */
static char *oai_body(const struct oai_state *st, struct rng *rng)
{
    struct sbuf words = {0};
    int64_t max_tokens;
    const char *prompt = oai_pick(st, rng, &words, &max_tokens);
    json_t *o = json_object();
    if (st->extra)
        json_object_update(o, st->extra);
    json_object_set_new(o, "model", json_string(st->model));
    if (st->chat) {
        json_t *m = json_object();
        json_object_set_new(m, "role", json_string("user"));
        json_object_set_new(m, "content", json_string(prompt));
        json_t *msgs = json_array();
        json_array_append_new(msgs, m);
        json_object_set_new(o, "messages", msgs);
    } else
        json_object_set_new(o, "prompt", json_string(prompt));
    json_object_set_new(o, "max_tokens", json_integer(max_tokens));
    json_object_set_new(o, "temperature", json_real(st->temperature));
    json_object_set_new(o, "ignore_eos", json_boolean(st->ignore_eos));
    json_object_set_new(o, "stream", json_boolean(st->stream));
    if (st->stream) {
        json_t *so = json_object();
        json_object_set_new(so, "include_usage", json_true());
        if (st->continuous)
            json_object_set_new(so, "continuous_usage_stats", json_true());
        json_object_set_new(o, "stream_options", so);
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    sbuf_free(&words);
    return text;
}

static int oai_build(const struct oai_state *st, struct rng *rng, struct sbuf *out)
{
    const char *headers[3] = {"Content-Type: application/json", st->auth, NULL};
    char *body = oai_body(st, rng);
    if (!body)
        return -EINVAL;
    int r = http_req_build(out, "POST", st->host_header, st->target, headers, body, strlen(body));
    free(body);
    return r;
}

static int oai_make_request(void *ud, unsigned worker, uint64_t n, struct rng *rng,
                            struct sbuf *out)
{
    (void)worker;
    (void)n;
    return oai_build(ud, rng, out);
}

/* ---- the stream hooks (worker threads) ---------------------------------------------------- */

static void oai_fail(struct oai_req *r, int cls)
{
    if (r->err < 0)
        r->err = cls;
}

static void oai_on_sent(void *ud, void **rs, int64_t intended, int64_t sent)
{
    const struct oai_state *st = ud;
    struct oai_req *r = xcalloc(1, sizeof(*r));
    r->sstar = intended;
    r->s = sent;
    r->paths = &st->paths;
    r->err = -1;
    if (st->stream)
        sse_init(&r->sse, 0);
    r->body.max = OAI_BODY_MAX;
    *rs = r;
}

static void oai_on_headers(void *ud, void **rs, int status, int64_t t)
{
    struct oai_req *r = *rs;
    (void)ud;
    (void)t;
    if (!r)
        return;
    r->status = status;
    if (status / 100 != 2)
        oai_fail(r, LG_ERR_STATUS);
}

/* One JSON document of a response (a chunk, or a whole body): the error class
 * it makes (OE_JSON: not a JSON object, OE_API: an "error" member), or -1;
 * *content: whether choices[0] carries generated text (text, delta.content or
 * message.content, the first that is a string, non-empty); *cum: the output
 * tokens its usage reports, or -1 (with usage, r's counts are updated). */
static int oai_doc(struct oai_req *r, const char *data, size_t len, bool *content, int64_t *cum)
{
    struct js_found f[P_COUNT];
    *content = false;
    *cum = -1;
    if (js_scan(data, len, r->paths, f) != JS_OBJECT)
        return OE_JSON;
    if (f[P_ERROR].type != JS_NONE)
        return OE_API;
    for (int p = P_TEXT; p <= P_MESSAGE; p++)
        if (f[p].type == JS_STRING) {
            *content = f[p].raw_len > 0;
            break;
        }
    if (f[P_COMPLETION].type == JS_INTEGER && f[P_COMPLETION].integer >= 0) {
        r->have_usage = true;
        *cum = r->completion_tokens = f[P_COMPLETION].integer;
        r->prompt_tokens = f[P_PROMPT].type == JS_INTEGER ? f[P_PROMPT].integer : 0;
    }
    return -1;
}

static void oai_event(void *ud, const char *event, size_t elen, const char *data, size_t dlen)
{
    struct oai_req *r = ud;
    (void)event;
    (void)elen;
    if (r->err >= 0 || r->done_seen)
        return;
    if (dlen == 6 && !memcmp(data, "[DONE]", 6)) {
        r->done_seen = true;
        return;
    }
    bool content;
    int64_t cum;
    int err = oai_doc(r, data, dlen, &content, &cum);
    if (err >= 0) {
        oai_fail(r, err);
        return;
    }
    if (content) {
        if (r->nchunks == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 64;
            r->chunk_t = xrealloc(r->chunk_t, r->cap * sizeof(*r->chunk_t));
            r->chunk_cum = xrealloc(r->chunk_cum, r->cap * sizeof(*r->chunk_cum));
        }
        r->chunk_cum[r->nchunks] = cum;
        r->chunk_t[r->nchunks++] = r->now;
    }
}

static void oai_on_body(void *ud, void **rs, const char *data, size_t len, int64_t t)
{
    const struct oai_state *st = ud;
    struct oai_req *r = *rs;
    if (!r || r->err >= 0)
        return;
    r->now = t;
    if (st->stream) {
        if (sse_feed(&r->sse, data, len, oai_event, r) < 0)
            oai_fail(r, LG_ERR_PROTOCOL);
    } else if (sbuf_add(&r->body, data, len) < 0)
        oai_fail(r, LG_ERR_PROTOCOL);
}

/* A complete non-streaming body: usage and errors. */
static void oai_parse_body(struct oai_req *r)
{
    bool content;
    int64_t cum;
    int err = oai_doc(r, r->body.s ? r->body.s : "", r->body.len, &content, &cum);
    if (err >= 0)
        oai_fail(r, err);
}

/* Tokens in content chunk k of K when the response said N in all (METRICS.md Δ):
 * N split as evenly as possible, the first N mod K chunks one more; 1 each when
 * N < K or N is unknown (N <= 0). */
static int64_t oai_delta(int64_t n, size_t k, size_t nk)
{
    if (n < (int64_t)nk || n <= 0)
        return 1;
    return n / (int64_t)nk + ((int64_t)k < n % (int64_t)nk ? 1 : 0);
}

/* True when every content chunk carried a running count that grew by at least
 * one token per chunk up to the final n: the tokens per chunk are known. */
static bool oai_counted(const struct oai_req *r, int64_t n)
{
    int64_t prev = 0;
    for (size_t k = 0; k < r->nchunks; k++) {
        if (r->chunk_cum[k] <= prev)
            return false;
        prev = r->chunk_cum[k];
    }
    return r->nchunks > 0 && prev == n;
}

/* A duration in ms, or null when absent (< 0). */
static void oai_rec_ms(struct sbuf *b, const char *key, int64_t ns)
{
    if (ns < 0)
        sbuf_printf(b, ",\"%s\":null", key);
    else
        sbuf_printf(b, ",\"%s\":%.6f", key, (double)ns / 1e6);
}

/* One line of requests.jsonl (under mu); ttft and tpot < 0: not measured. */
static void oai_write_record(struct oai_state *st, const struct oai_req *r, int64_t e, int64_t ttft,
                             int64_t tpot, int64_t n, bool good)
{
    if (!st->records)
        return;
    struct sbuf b = {0};
    sbuf_puts(&b, "{");
    if (st->task >= 0)
        sbuf_printf(&b, "\"task\":%d,", st->task);
    sbuf_printf(&b, "\"sent_s\":%.9f,\"intended_s\":%.9f,\"status\":%d",
                (double)(r->s - st->ws) / 1e9, (double)(r->sstar - st->ws) / 1e9, r->status);
    if (r->err >= 0)
        sbuf_printf(&b, ",\"error\":\"%s\"", oai_err_name(r->err));
    else
        sbuf_puts(&b, ",\"error\":null");
    oai_rec_ms(&b, "e2e_ms", e - r->s);
    oai_rec_ms(&b, "ttft_ms", ttft);
    oai_rec_ms(&b, "tpot_ms", tpot);
    sbuf_printf(&b, ",\"chunks\":%zu,\"output_tokens\":%lld,\"prompt_tokens\":%lld,\"good\":%s}\n",
                r->nchunks, (long long)n, (long long)r->prompt_tokens, good ? "true" : "false");
    fwrite(b.s, 1, b.len, st->records);
    sbuf_free(&b);
}

/* Records a successful request (under mu). */
static void oai_record_ok(struct oai_state *st, const struct oai_req *r, int64_t e)
{
    int64_t e2e = e - r->s, n = r->have_usage ? r->completion_tokens : (int64_t)r->nchunks;
    int64_t ttft = st->stream ? r->chunk_t[0] - r->s : 0, tpot = -1;
    st->ok++;
    hdr_record(st->e2e, e2e);
    if (n > 0)
        hdr_record(st->norm, e2e / n);
    if (st->stream) {
        hdr_record(st->ttft, ttft);
        if (st->cfg.model == LG_OPEN)
            hdr_record(st->ttft_intended, r->chunk_t[0] - r->sstar);
        if (n > 1) {
            tpot = (e2e - ttft) / (n - 1);
            hdr_record(st->tpot, tpot);
        }
        bool counted = r->have_usage && oai_counted(r, n);
        for (size_t k = 1; k < r->nchunks; k++) {
            int64_t d =
                counted ? r->chunk_cum[k] - r->chunk_cum[k - 1] : oai_delta(n, k, r->nchunks);
            int64_t gap = r->chunk_t[k] - r->chunk_t[k - 1];
            hdr_record_n(st->itl, (gap + d / 2) / d, (uint64_t)d);
        }
        if (!counted && (!r->have_usage || n != (int64_t)r->nchunks))
            st->est_requests++;
    }
    st->out_tokens += n > 0 ? (uint64_t)n : 0;
    st->prompt_tokens += r->prompt_tokens > 0 ? (uint64_t)r->prompt_tokens : 0;
    bool good = (!st->slo_ttft || (st->stream && ttft <= st->slo_ttft)) &&
                (!st->slo_tpot || tpot < 0 || tpot <= st->slo_tpot) &&
                (!st->slo_e2e || e2e <= st->slo_e2e);
    st->good += good;
    cl_secs_add(&st->secs, st->ws, e, 1, n > 0 ? (uint64_t)n : 0);
    oai_write_record(st, r, e, st->stream ? ttft : -1, tpot, n, good);
}

static void oai_on_done(void *ud, void **rs, bool ok, enum lg_err err, int64_t t)
{
    struct oai_state *st = ud;
    struct oai_req *r = *rs;
    *rs = NULL;
    if (!r)
        return;
    bool cancelled = !ok && err == LG_ERR_COUNT; /* at the end of the run: not a result */
    if (!ok)
        oai_fail(r, (int)err);
    else if (r->err < 0 && st->stream && !r->done_seen)
        oai_fail(r, OE_TRUNCATED);
    else if (r->err < 0 && st->stream && r->nchunks == 0)
        oai_fail(r, OE_EMPTY);
    else if (r->err < 0 && !st->stream)
        oai_parse_body(r);
    if (!cancelled && t >= st->ws && t < st->end) {
        pthread_mutex_lock(&st->mu);
        if (!st->max_requests || st->requests < st->max_requests) {
            st->requests++;
            cl_count_status(st->status_class, r->status);
            if (r->err >= 0) {
                st->errors[r->err]++;
                cl_secs_add(&st->secs, st->ws, t, 1, 0);
                oai_write_record(st, r, t, -1, -1, 0, false);
            } else
                oai_record_ok(st, r, t);
        }
        pthread_mutex_unlock(&st->mu);
    }
    sse_free(&r->sse);
    sbuf_free(&r->body);
    free(r->chunk_t);
    free(r->chunk_cum);
    free(r);
}

/* ---- start ------------------------------------------------------------------------------- */

static int oai_limits(struct comp *c, struct lg_config *cfg)
{
    int r = cl_limits(c, cfg, 1, OAI_CONNS_MAX);
    if (r == 0 && cfg->threads > cfg->connections) {
        comp_set_reason(c, "option 'threads' (%u) must not exceed 'connections' (%u)", cfg->threads,
                        cfg->connections);
        r = -EINVAL;
    }
    return r;
}

/* Request fields sonde sets itself: never in extra_body. */
static const char *const oai_own_fields[] = {
    "model",       "prompt", "messages",       "max_tokens", "max_completion_tokens",
    "temperature", "stream", "stream_options", "ignore_eos", NULL,
};

/* A token length option (llm_len_parse) into *out, def when absent. */
static int oai_len_opt(struct comp *c, const char *key, const char *def, struct llm_len *out)
{
    const char *text = cl_opt_text(c->spec->with, key);
    char err[200];
    if (llm_len_parse(text ? text : def, 1, 10000000, out, err, sizeof(err)) < 0) {
        comp_set_reason(c, "option '%s': %s", key, err);
        return -EINVAL;
    }
    return 0;
}

/* The prompt source: prompt, input_tokens or dataset (exactly one). */
static int oai_prompts(struct comp *c, struct oai_state *st)
{
    const struct sv *w = c->spec->with, *ds = sv_get(w, "dataset");
    st->prompt = xstrdup(cl_opt_text(w, "prompt"));
    if (!!st->prompt + !!sv_get(w, "input_tokens") + !!ds != 1) {
        comp_set_reason(c, "give exactly one of 'prompt', 'input_tokens' and 'dataset'");
        return -EINVAL;
    }
    if (sv_get(w, "input_tokens"))
        return oai_len_opt(c, "input_tokens", NULL, &st->in_len);
    if (!ds)
        return 0;
    int64_t limit = 0;
    const char *l = cl_opt_text(ds, "limit"), *path = cl_opt_text(ds, "path");
    if (l && (sv_as_int(sv_get(ds, "limit"), &limit) < 0 || limit < 1)) {
        comp_set_reason(c, "dataset.limit: expected an integer >= 1, got '%s'", l);
        return -EINVAL;
    }
    char *err = NULL;
    int r = llm_load_file(path ? path : "", sv_str(ds, "type", ""), (size_t)limit, &st->set, &err);
    if (r < 0)
        comp_set_reason(c, "%s", err);
    free(err);
    return r;
}

/* extra_body as a JSON object. */
static int oai_extra(struct comp *c, struct oai_state *st)
{
    const struct sv *x = sv_get(c->spec->with, "extra_body");
    if (!x)
        return 0;
    char *text = sv_to_json(x);
    st->extra = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_object(st->extra)) {
        comp_set_reason(c, "option 'extra_body': expected a map of request fields");
        return -EINVAL;
    }
    for (size_t i = 0; oai_own_fields[i]; i++)
        if (json_object_get(st->extra, oai_own_fields[i])) {
            comp_set_reason(c, "option 'extra_body': '%s' is set by sonde (use its own option)",
                            oai_own_fields[i]);
            return -EINVAL;
        }
    return 0;
}

static int oai_request_opts(struct comp *c, struct oai_state *st)
{
    const struct sv *w = c->spec->with;
    int r = cl_opt_bool(c, "stream", true, &st->stream);
    r = r ? r : cl_opt_bool(c, "ignore_eos", true, &st->ignore_eos);
    r = r ? r : cl_opt_bool(c, "continuous_usage", false, &st->continuous);
    r = r ? r : oai_len_opt(c, "max_tokens", "128", &st->out_len);
    r = r ? r : cl_opt_float(c, "temperature", 0, &st->temperature);
    r = r ? r : oai_prompts(c, st);
    r = r ? r : oai_extra(c, st);
    if (r)
        return r;
    st->out_given = sv_get(w, "max_tokens") != NULL;
    st->chat = strcmp(sv_str(w, "endpoint", "chat"), "completions") != 0;
    st->model = xstrdup(cl_opt_text(w, "model"));
    if (!st->model) {
        comp_set_reason(c, "option 'model' is required");
        return -EINVAL;
    }
    const char *env = cl_opt_text(w, "api_key_env");
    if (env) {
        const char *key = getenv(env);
        if (!key || !key[0]) {
            comp_set_reason(c, "api_key_env: the environment variable %s is not set", env);
            return -EINVAL;
        }
        st->auth = xasprintf("Authorization: Bearer %s", key);
    }
    const struct sv *slo = sv_get(w, "slo");
    r = cl_opt_dur(c, slo, "ttft", NULL, &st->slo_ttft);
    r = r ? r : cl_opt_dur(c, slo, "tpot", NULL, &st->slo_tpot);
    r = r ? r : cl_opt_dur(c, slo, "e2e", NULL, &st->slo_e2e);
    st->slo = slo != NULL;
    return r;
}

static int oai_target(struct comp *c, struct oai_state *st)
{
    const char *text = cl_opt_text(c->spec->with, "url");
    struct cl_url u;
    if (!text || cl_base_url_parse(text, &u) < 0) {
        comp_set_reason(c, "option 'url': expected http[s]://host[:port][/path], got '%s'",
                        text ? text : "");
        return -EINVAL;
    }
    const char *tail = st->chat ? "/chat/completions" : "/completions";
    st->target = xasprintf("%s%s%s", u.path, str_endswith(u.path, "/v1") ? "" : "/v1", tail);
    st->host_header = u.host_header;
    st->cfg.host = u.host;
    st->cfg.port = u.port;
    st->cfg.tls = u.tls;
    u.host_header = u.host = NULL;
    cl_url_clear(&u);
    return 0;
}

/* Opens PATH.part for the per-request records when the recipe asks for them
 * (renamed to PATH at the end). */
static int oai_records_open(struct comp *c, struct oai_state *st, const char *path)
{
    bool on = false;
    int r = cl_opt_bool(c, "records", false, &on);
    if (r || !on)
        return r;
    st->records_path = xstrdup(path);
    char *part = xasprintf("%s.part", st->records_path);
    st->records = fopen(part, "we");
    if (!st->records) {
        r = -errno;
        comp_set_reason(c, "cannot create %s: %s", part, strerror(errno));
    }
    free(part);
    return r;
}

/* Closes the records' .part file and gives it its name (keep: a complete file). */
static int oai_records_close(struct comp *c, struct oai_state *st, bool keep)
{
    if (!st->records)
        return 0;
    char *part = xasprintf("%s.part", st->records_path);
    int r = fclose(st->records) == 0 ? 0 : -errno;
    st->records = NULL;
    if (r == 0 && keep && rename(part, st->records_path) < 0)
        r = -errno;
    if (r < 0)
        comp_set_reason(c, "cannot write %s: %s", st->records_path, strerror(-r));
    if (r < 0 || !keep)
        unlink(part);
    free(part);
    return r;
}

/* A fan-out's records: the tasks' files (each line names its task) one after
 * the other in requests.jsonl, written atomically. */
static int oai_records_join(struct comp *c, unsigned ntasks)
{
    bool on = false;
    if (cl_opt_bool(c, "records", false, &on) < 0 || !on)
        return 0;
    struct sbuf all = {.max = (size_t)1 << 40};
    int r = 0;
    for (unsigned k = 0; r == 0 && k < ntasks; k++) {
        char name[64], *text = NULL;
        size_t len = 0;
        snprintf(name, sizeof(name), "tasks/task-%u.requests.jsonl", k);
        char *path = path_join(c->dir, name);
        r = read_file(path, all.max, &text, &len);
        if (r == 0)
            r = sbuf_add(&all, text, len);
        if (r < 0)
            comp_set_reason(c, "cannot read the records of task %u (%s): %s", k, path,
                            strerror(-r));
        free(text);
        free(path);
    }
    char *path = path_join(c->dir, "requests.jsonl");
    if (r == 0 && (r = write_file_atomic(path, all.s ? all.s : "", all.len)) < 0)
        comp_set_reason(c, "cannot write %s: %s", path, strerror(-r));
    free(path);
    sbuf_free(&all);
    return r;
}

static int oai_hdrs(struct oai_state *st)
{
    struct hdr **all[] = {&st->ttft, &st->ttft_intended, &st->itl, &st->tpot, &st->e2e, &st->norm};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(all); i++) {
        int r = hdr_init(1, OAI_HDR_MAX, 3, all[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Reads every option into st: the engine's configuration for task `task` of
 * `ntasks` (fanout_split), the request or how to make one, the histograms.
 * Sets c->reason on error. */
static int oai_prepare(struct comp *c, struct oai_state *st, unsigned task, unsigned ntasks)
{
    static const struct lg_stream_ops ops = {
        .on_headers = oai_on_headers,
        .on_body = oai_on_body,
        .on_done = oai_on_done,
        .on_sent = oai_on_sent,
    };
    pthread_mutex_init(&st->mu, NULL);
    st->mu_ok = true;
    st->task = -1;
    if (js_paths_init(&st->paths, oai_path_text, P_COUNT) < 0)
        abort(); /* constant paths */
    int r = oai_limits(c, &st->cfg);
    r = r ? r : cl_load_model(c, &st->cfg);
    r = r ? r : fanout_split(c, &st->cfg, task, ntasks);
    r = r ? r : oai_request_opts(c, st);
    r = r ? r : oai_target(c, st);
    r = r ? r : oai_hdrs(st);
    if (r == 0 && st->prompt && st->out_len.kind == LLM_LEN_FIXED) { /* one fixed request */
        r = oai_build(st, NULL, &st->req);
        st->cfg.request = st->req.s;
        st->cfg.request_len = st->req.len;
    } else if (r == 0) {
        st->cfg.make_request = oai_make_request;
        st->cfg.make_request_ud = st;
    }
    if (r < 0) {
        if (!c->reason)
            comp_set_reason(c, "cannot build the request: %s", strerror(-r));
        return r;
    }
    st->cfg.stream = &ops;
    st->cfg.stream_ud = st;
    st->max_requests = st->cfg.max_requests;
    return 0;
}

/* Starts the engine; the client's window starts now + warm-up. */
static int oai_run(struct comp *c, struct oai_state *st)
{
    st->ws = mono_ns() + st->cfg.warmup_ns; /* the engine's window starts a little later */
    st->end = st->cfg.duration_ns > 0 ? st->ws + st->cfg.duration_ns : INT64_MAX;
    return cl_start(c, &st->cfg, &st->run);
}

static int oai_start(struct comp *c)
{
    struct oai_state *st = xcalloc(1, sizeof(*st));
    c->priv = st;
    if (fanout_wanted(c->spec) && c->backend->batch) {
        static const char *const files[] = {"dataset.path", NULL};
        st->fanout = comp_tasks(c);
        int r = oai_prepare(c, st, 0, (unsigned)st->fanout); /* said before submitting */
        return r ? r : fanout_start(c, sv_clone(c->spec->with), files);
    }
    char *records = path_join(c->dir, "requests.jsonl");
    int r = oai_prepare(c, st, 0, 1);
    r = r ? r : oai_records_open(c, st, records);
    r = r ? r : oai_run(c, st);
    free(records);
    return r;
}

/* The token totals for sonde's exporter. */
static void live_tokens(struct comp *c, uint64_t out, uint64_t prompt)
{
    comp_live_counter(c, "sonde_client_output_tokens_total", "output tokens received", (double)out);
    comp_live_counter(c, "sonde_client_input_tokens_total", "prompt tokens sent", (double)prompt);
}

static int oai_tick(struct comp *c, int64_t now)
{
    struct oai_state *st = c->priv;
    if (st && st->fanout)
        return fanout_tick(c, (unsigned)st->fanout, &st->status_at, now);
    if (!st || cl_done(st->run))
        return 1;
    if (cl_status_due(&st->status_at, now)) {
        struct lg_progress p;
        lg_progress(st->run, &p);
        pthread_mutex_lock(&st->mu);
        uint64_t ok = st->ok, tokens = st->out_tokens, prompt = st->prompt_tokens;
        pthread_mutex_unlock(&st->mu);
        cl_live(c, &p, true);
        live_tokens(c, tokens, prompt);
        if (p.warming_up)
            comp_status(c, "%.1f s, warming up", (double)p.elapsed_ns / 1e9);
        else
            comp_status(c, "%.1f s, %llu requests ok, %llu output tokens, %llu errors",
                        (double)p.elapsed_ns / 1e9, (unsigned long long)ok,
                        (unsigned long long)tokens, (unsigned long long)p.errors);
    }
    return 0;
}

static int oai_stop(struct comp *c)
{
    struct oai_state *st = c->priv;
    if (st)
        cl_stop(st->run, st->waited);
    return 0;
}

/* ---- results ----------------------------------------------------------------------------- */

/* The histograms this client keeps: their metric names, and where st holds each. */
#define OAI_NHDR 6
static const char *const oai_hdr_names[OAI_NHDR] = {"ttft", "ttft_intended", "itl",
                                                    "tpot", "e2e",           "normalized_latency"};

static struct hdr **oai_hdr_slot(struct oai_state *st, size_t i)
{
    struct hdr **slots[OAI_NHDR] = {&st->ttft, &st->ttft_intended, &st->itl,
                                    &st->tpot, &st->e2e,           &st->norm};
    return slots[i];
}

/* The client's results (the workers are joined) as extras of s, the form
 * they take in a task's file and after a merge (oai_put_results reads them).
 * The histograms move into s. */
static int oai_collect(struct oai_state *st, struct lg_stats *s)
{
    cl_add_engine_errors(st->errors, &st->requests, s);
    int r = cl_counts_to_extra(s, st->requests, st->ok, st->errors, OE_COUNT, oai_err_name,
                               st->status_class);
    r = r ? r : lg_extra_add_counter(s, "good", st->good);
    r = r ? r : lg_extra_add_counter(s, "output_tokens", st->out_tokens);
    r = r ? r : lg_extra_add_counter(s, "prompt_tokens", st->prompt_tokens);
    r = r ? r : lg_extra_add_counter(s, "itl_estimated_requests", st->est_requests);
    for (size_t i = 0; r == 0 && i < OAI_NHDR; i++) {
        struct hdr **h = oai_hdr_slot(st, i);
        r = lg_extra_add_hdr(s, oai_hdr_names[i], *h);
        *h = NULL;
    }
    r = r ? r : lg_extra_add_secs(s, "requests_s", st->secs.a, st->secs.n);
    r = r ? r : lg_extra_add_secs(s, "output_tokens_s", st->secs.b, st->secs.n);
    return r;
}

static const struct hdr *oai_extra_hdr(const struct lg_stats *s, const char *name)
{
    const struct lg_extra *x = lg_extra_find(s, name, LG_EXTRA_HDR);
    return x ? x->hdr : NULL;
}

/* The histogram of that name and its summary (cl_put_hdr_summary). */
static void oai_put_summary(struct comp *c, const struct lg_stats *s, const char *name)
{
    const struct hdr *h = oai_extra_hdr(s, name);
    cl_put_histogram(c, name, h);
    if (h)
        cl_put_hdr_summary(c, name, h);
}

/* Token counts, throughput and goodput over the measured window. */
static void oai_put_rates(struct comp *c, const struct oai_state *st, const struct lg_stats *s,
                          uint64_t requests)
{
    uint64_t out = lg_extra_count(s, "output_tokens"), prompt = lg_extra_count(s, "prompt_tokens");
    double window = (double)s->window_ns / 1e9, per = window > 0 ? 1 / window : 0;
    comp_metric(c, "output_tokens", NULL, NULL, (double)out);
    live_tokens(c, out, prompt);
    comp_metric(c, "prompt_tokens", NULL, NULL, (double)prompt);
    comp_metric(c, "throughput", "req/s", NULL, (double)requests * per);
    comp_metric(c, "output_tokens_per_s", "tok/s", NULL, (double)out * per);
    comp_metric(c, "total_tokens_per_s", "tok/s", NULL, (double)(out + prompt) * per);
    if (st->slo)
        comp_metric(c, "goodput", "req/s", NULL, (double)lg_extra_count(s, "good") * per);
    if (st->stream)
        comp_metric(c, "itl_estimated", NULL, NULL,
                    lg_extra_count(s, "itl_estimated_requests") ? 1 : 0);
}

/* Per-second requests and output tokens over the measured window; the peak second. */
static void oai_put_series(struct comp *c, const struct lg_stats *s)
{
    const struct lg_extra *req = lg_extra_find(s, "requests_s", LG_EXTRA_SECS);
    const struct lg_extra *tok = lg_extra_find(s, "output_tokens_s", LG_EXTRA_SECS);
    size_t n = (size_t)((s->window_ns + OAI_NS_PER_S - 1) / OAI_NS_PER_S);
    uint64_t peak = 0;
    for (size_t i = 0; req && tok && i < n && i < req->nsecs && i < tok->nsecs; i++) {
        int64_t t = s->window_start_wall_ns + (int64_t)i * OAI_NS_PER_S;
        comp_series_point(c, "requests", "req/s", NULL, t, (double)req->secs[i]);
        comp_series_point(c, "output_tokens", "tok/s", NULL, t, (double)tok->secs[i]);
        /* a full second only: the last one may be cut short */
        if ((int64_t)(i + 1) * OAI_NS_PER_S <= s->window_ns && tok->secs[i] > peak)
            peak = tok->secs[i];
    }
    if (n >= 1)
        comp_metric(c, "peak_output_tokens_per_s", "tok/s", NULL, (double)peak);
}

/* Every metric, from s (the engine's statistics and the client's extras, of
 * one run or merged from a fan-out's tasks). */
static int oai_put_results(struct comp *c, const struct oai_state *st, const struct lg_stats *s)
{
    uint64_t requests, ok, errors[OE_COUNT], status[6];
    cl_counts_from_extra(s, &requests, &ok, errors, OE_COUNT, oai_err_name, status);
    cl_put_counts(c, requests, ok, errors, OE_COUNT, oai_err_name, status);
    oai_put_rates(c, st, s, requests);
    for (size_t i = 0; i < OAI_NHDR; i++)
        if (strcmp(oai_hdr_names[i], "ttft_intended") != 0 || st->cfg.model == LG_OPEN)
            oai_put_summary(c, s, oai_hdr_names[i]);
    cl_put_histogram(c, "issue_delay", s->issue_delay);
    comp_metric(c, "connects", NULL, NULL, (double)s->connects);
    oai_put_series(c, s);
    uint64_t est = lg_extra_count(s, "itl_estimated_requests");
    if (est)
        comp_warn(c,
                  "ITL is estimated for %llu of %llu requests: tokens per chunk derived from "
                  "usage.completion_tokens spread evenly over the content chunks (or 1 per chunk "
                  "without usage)",
                  (unsigned long long)est, (unsigned long long)ok);
    cl_put_open_loop(c, &st->cfg, s);
    return cl_judge(c, ok, errors, OE_COUNT, oai_err_name);
}

static int oai_finish(struct comp *c)
{
    struct oai_state *st = c->priv;
    struct lg_stats *s = NULL;
    if (!st)
        return -EINVAL;
    int r = fanout_stats(c, st->fanout, st->run, &st->waited, &s), rec = 0;
    if (r < 0)
        return r;
    if (st->fanout)
        rec = oai_records_join(c, (unsigned)st->fanout);
    else { /* the workers are joined: no lock needed from here */
        r = oai_collect(st, s);
        rec = oai_records_close(c, st, true);
    }
    r = r ? r : oai_put_results(c, st, s);
    lg_stats_free(s);
    return r ? r : rec;
}

static void oai_cleanup(struct comp *c)
{
    struct oai_state *st = c->priv;
    if (!st)
        return;
    lg_free(st->run);
    free(st->cfg.host);
    free(st->model);
    free(st->prompt);
    free(st->host_header);
    free(st->target);
    free(st->auth);
    sbuf_free(&st->req);
    if (st->records)
        oai_records_close(c, st, false);
    free(st->records_path);
    llm_set_free(&st->set);
    json_decref(st->extra);
    for (size_t i = 0; i < OAI_NHDR; i++)
        hdr_free(*oai_hdr_slot(st, i));
    cl_secs_free(&st->secs);
    if (st->mu_ok)
        pthread_mutex_destroy(&st->mu);
    free(st);
    c->priv = NULL;
}

/* ---- the agent (one task of a fan-out job) ----------------------------------------------- */

/* driver_ops.agent_run: one task's share of the load; its result (with the
 * client's extras) to out_path, its records beside it
 * (task-K.requests.jsonl). */
static int oai_agent_run(const struct sv *with, unsigned task, unsigned ntasks,
                         const char *out_path, const volatile sig_atomic_t *stop, char *err,
                         size_t errlen)
{
    struct comp_spec spec = {
        .role = ROLE_CLIENT, .name = "agent", .driver = "openai", .with = (struct sv *)with};
    struct comp c = {.name = "agent", .spec = &spec};
    struct oai_state *st = xcalloc(1, sizeof(*st));
    struct lg_stats *s = NULL;
    c.priv = st;
    char *records =
        xasprintf("%.*s.requests.jsonl",
                  (int)(strlen(out_path) - (str_endswith(out_path, ".stats") ? 6 : 0)), out_path);
    int r = oai_prepare(&c, st, task, ntasks);
    st->task = (int)task;
    r = r ? r : oai_records_open(&c, st, records);
    r = r ? r : oai_run(&c, st);
    r = r ? r : fanout_agent_wait(&c, st->run, &st->waited, stop, &s);
    r = r ? r : oai_collect(st, s);
    r = r ? r : oai_records_close(&c, st, true);
    r = fanout_agent_write(&c, r, s, out_path, err, errlen);
    oai_cleanup(&c);
    free(records);
    free(c.reason);
    return r;
}

/* ---- validation -------------------------------------------------------------------------- */

static int oai_check(const struct comp_spec *spec, struct diags *d)
{
    if (!d)
        return 0;
    size_t before = d->n + d->dropped;
    const struct sv *w = spec->with;
    const char *url = cl_chk_text(spec, "url");
    struct cl_url u;
    if (url && cl_base_url_parse(url, &u) < 0)
        cl_chk_fail(spec, d, "url", "expected http[s]://host[:port][/path], got '%s'", url);
    else if (url)
        cl_url_clear(&u);
    int sources = !!sv_get(w, "prompt") + !!sv_get(w, "input_tokens") + !!sv_get(w, "dataset");
    if (sources > 1 || (sources == 0 && !spec->partial))
        cl_chk_fail(spec, d, "prompt",
                    "give exactly one of 'prompt', 'input_tokens' and 'dataset': the prompts");
    static const char *const lens[] = {"max_tokens", "input_tokens"};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(lens); i++) {
        const char *text = cl_chk_text(spec, lens[i]);
        struct llm_len l;
        char err[200];
        if (text && llm_len_parse(text, 1, 10000000, &l, err, sizeof(err)) < 0)
            cl_chk_fail(spec, d, lens[i], "%s", err);
    }
    const struct sv *x = sv_get(w, "extra_body");
    for (size_t i = 0; x && oai_own_fields[i]; i++)
        if (sv_get(x, oai_own_fields[i]))
            cl_chk_fail(spec, d, "extra_body", "'%s' is set by sonde: use its own option",
                        oai_own_fields[i]);
    cl_chk_bounds(spec, d);
    const char *stream = cl_chk_text(spec, "stream");
    bool on = true;
    const struct sv *slo = sv_get(w, "slo");
    if (stream && sv_as_bool(sv_get(w, "stream"), &on) == 0 && !on &&
        (sv_get(slo, "ttft") || sv_get(slo, "tpot")))
        cl_chk_fail(spec, d, "slo", "ttft and tpot objectives need 'stream: true'");
    const char *env = cl_chk_text(spec, "api_key_env");
    if (env && (!env[0] || strchr(env, '=') || strchr(env, ' ')))
        cl_chk_fail(spec, d, "api_key_env",
                    "the name of an environment variable (the key itself never goes in a recipe)");
    return d->n + d->dropped > before ? -EINVAL : 0;
}

const struct driver_ops driver_client_openai = {
    .name = "openai",
    .role = ROLE_CLIENT,
    .summary = "load on an OpenAI-compatible inference server (completions or chat, streaming): "
               "TTFT, ITL, TPOT, E2E, tokens/s, goodput",
    .opts = oai_opts,
    .job_argv = fanout_argv,
    .agent_run = oai_agent_run,
    .check = oai_check,
    .start = oai_start,
    .tick = oai_tick,
    .stop = oai_stop,
    .finish = oai_finish,
    .cleanup = oai_cleanup,
};
