/* openai.c — sonde-sim --openai: routing, request bodies (jansson) and the
 * OpenAI/vLLM-shaped responses. Scheduling and admission live in loop.c.
 *
 * Responses are formatted with snprintf into growable buffers: one buffer per
 * written piece (handed to the output ring) plus a per-worker scratch buffer
 * for the SSE data of a chunk, reused across chunks. */
#include "sim/sim.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"

#define TOK     " tok"
#define TOK_LEN 4

static void add_tokens(struct sbuf *b, int64_t n)
{
    static const char block[] = TOK TOK TOK TOK TOK TOK TOK TOK TOK TOK TOK TOK TOK TOK TOK TOK;
    const int64_t per = (int64_t)(sizeof(block) - 1) / TOK_LEN;
    for (; n > 0; n -= per)
        sbuf_add(b, block, (size_t)(n < per ? n : per) * TOK_LEN);
}

/* ---- routing ------------------------------------------------------------- */

static bool is(const char *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

enum oai_route oai_route(const char *method, size_t mlen, const char *target, size_t tlen)
{
    const char *q = memchr(target, '?', tlen);
    if (q)
        tlen = (size_t)(q - target);
    bool post = is(method, mlen, "POST");
    bool get = is(method, mlen, "GET") || is(method, mlen, "HEAD");
    enum oai_route r = OAI_NOT_FOUND;
    bool want_post = false;
    if (is(target, tlen, "/v1/completions"))
        r = OAI_COMPLETIONS, want_post = true;
    else if (is(target, tlen, "/v1/chat/completions"))
        r = OAI_CHAT, want_post = true;
    else if (is(target, tlen, "/v1/models"))
        r = OAI_MODELS;
    else if (is(target, tlen, "/health"))
        r = OAI_HEALTH;
    else if (is(target, tlen, "/metrics"))
        r = OAI_METRICS;
    if (r != OAI_NOT_FOUND && !(want_post ? post : get))
        r = OAI_BAD_METHOD;
    return r;
}

/* ---- request bodies ------------------------------------------------------ */

static int64_t count_words(const char *s)
{
    int64_t n = 0;
    bool in = false;
    for (; *s; s++) {
        bool sp = *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v';
        n += !sp && !in;
        in = !sp;
    }
    return n;
}

/* Words of a chat message content: a string, or a list of {"type":"text","text":..}. */
static int content_words(json_t *c, int64_t *n)
{
    if (!c || json_is_null(c))
        return 0;
    if (json_is_string(c)) {
        *n += count_words(json_string_value(c));
        return 0;
    }
    if (!json_is_array(c))
        return -1;
    size_t i;
    json_t *part;
    json_array_foreach(c, i, part)
    {
        json_t *t = json_is_object(part) ? json_object_get(part, "text") : NULL;
        if (!json_is_object(part) || (t && !json_is_string(t)))
            return -1;
        if (t)
            *n += count_words(json_string_value(t));
    }
    return 0;
}

/* An optional integer field >= 1; *out untouched when absent or null. */
static int opt_count(json_t *root, const char *key, int64_t *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return -1;
    json_int_t n = json_integer_value(v);
    *out = n > OAI_MAX_TOKENS ? OAI_MAX_TOKENS : (int64_t)n;
    return 0;
}

static int opt_bool(json_t *obj, const char *key, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return -1;
    *out = json_is_true(v);
    return 0;
}

static int parse_root(const struct sim_config *cfg, bool chat, json_t *root, struct oai_req *q,
                      const char **msg)
{
    if (!json_is_object(root))
        return *msg = "the request body must be a JSON object", 400;
    json_t *model = json_object_get(root, "model");
    if (model && !json_is_string(model))
        return *msg = "'model' must be a string", 400;
    q->n_out = cfg->output_tokens;
    if (opt_count(root, "max_tokens", &q->n_out) < 0 ||
        (chat && opt_count(root, "max_completion_tokens", &q->n_out) < 0))
        return *msg = "'max_tokens' must be an integer >= 1", 400;
    bool eos = false;
    if (opt_bool(root, "stream", &q->stream) < 0 || opt_bool(root, "ignore_eos", &eos) < 0)
        return *msg = "'stream' and 'ignore_eos' must be booleans", 400;
    json_t *so = json_object_get(root, "stream_options");
    if (so && !json_is_null(so) &&
        (!json_is_object(so) || opt_bool(so, "include_usage", &q->usage) ||
         opt_bool(so, "continuous_usage_stats", &q->cont_usage)))
        return *msg = "'stream_options' must be an object with booleans 'include_usage' and "
                      "'continuous_usage_stats'",
               400;
    if (!chat) {
        json_t *p = json_object_get(root, "prompt");
        if (json_is_array(p))
            p = json_array_get(p, 0);
        if (!json_is_string(p))
            return *msg = "'prompt' must be a string or a list of strings", 400;
        q->prompt_tokens = count_words(json_string_value(p));
        return 0;
    }
    json_t *ms = json_object_get(root, "messages");
    if (!json_is_array(ms) || json_array_size(ms) == 0)
        return *msg = "'messages' must be a non-empty list", 400;
    size_t i;
    json_t *m;
    json_array_foreach(ms, i, m)
    {
        if (!json_is_object(m) || content_words(json_object_get(m, "content"), &q->prompt_tokens))
            return *msg = "each message must be an object with a string 'content'", 400;
    }
    return 0;
}

int oai_parse(const struct sim_config *cfg, bool chat, const char *body, size_t len,
              struct oai_req *out, const char **msg)
{
    json_error_t err;
    json_t *root = json_loadb(body, len, 0, &err);
    if (!root) {
        *msg = "the request body is not valid JSON";
        return 400;
    }
    struct oai_req q = {.chat = chat};
    int st = parse_root(cfg, chat, root, &q, msg);
    json_decref(root);
    if (st == 0)
        *out = q;
    return st;
}

/* ---- responses ----------------------------------------------------------- */

static const char *conn_hdr(bool close)
{
    return close ? "Connection: close\r\n" : "";
}

/* Appends scratch as one HTTP chunk. */
static void add_chunk(struct sbuf *out, const struct sbuf *data)
{
    sbuf_printf(out, "%zx\r\n", data->len);
    sbuf_add(out, data->s, data->len);
    sbuf_add(out, "\r\n", 2);
}

/* The usage object after n output tokens. */
static void usage_json(const struct oai_req *q, int64_t n, struct sbuf *d)
{
    sbuf_printf(d,
                "\"usage\":{\"prompt_tokens\":%" PRId64 ",\"completion_tokens\":%" PRId64
                ",\"total_tokens\":%" PRId64 "}",
                q->prompt_tokens, n, q->prompt_tokens + n);
}

/* Closes a content chunk's JSON: with continuous usage (and include_usage, as
 * vLLM requires), the usage so far (n output tokens) goes in every chunk. */
static void chunk_end(const struct oai_req *q, int64_t n, struct sbuf *d)
{
    if (q->usage && q->cont_usage) {
        sbuf_add(d, ",", 1);
        usage_json(q, n, d);
    }
    sbuf_add(d, "}\n\n", 3);
}

static void data_chunk(const struct sim_config *cfg, const struct oai_req *q, int64_t from,
                       int64_t count, bool last, struct sbuf *d)
{
    const char *fin = last ? "\"length\"" : "null";
    if (q->chat) {
        sbuf_printf(d,
                    "data: {\"id\":\"chatcmpl-%lld\",\"object\":\"chat.completion.chunk\","
                    "\"created\":%lld,\"model\":\"%s\",\"choices\":[{\"index\":0,\"delta\":{%s"
                    "\"content\":\"",
                    q->id, q->created, cfg->model, from == 0 ? "\"role\":\"assistant\"," : "");
        add_tokens(d, count);
        sbuf_printf(d, "\"},\"logprobs\":null,\"finish_reason\":%s}]", fin);
        chunk_end(q, from + count, d);
        return;
    }
    sbuf_printf(d,
                "data: {\"id\":\"cmpl-%lld\",\"object\":\"text_completion\",\"created\":%lld,"
                "\"model\":\"%s\",\"choices\":[{\"index\":0,\"text\":\"",
                q->id, q->created, cfg->model);
    add_tokens(d, count);
    sbuf_printf(d, "\",\"logprobs\":null,\"finish_reason\":%s}]", fin);
    chunk_end(q, from + count, d);
}

/* The message of an injected midstream error (vLLM sends an error object
 * like this when the engine fails during a streamed generation). */
#define MIDSTREAM_MSG "the engine failed during generation (injected by sonde-sim)"

static const char *error_type(int status);

static void error_json(struct sbuf *d, int status, const char *msg)
{
    sbuf_printf(d, "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"code\":%d}}", msg,
                error_type(status), status);
}

/* A middle piece (not the first, not the last, no fault, no usage in it): the
 * same bytes every time for a count, rendered once per request. */
static void middle_piece(const struct sim_config *cfg, struct oai_req *q, int64_t from,
                         int64_t count, struct sbuf *scratch, struct sbuf *out)
{
    if (q->piece_count != count || q->piece.len == 0) {
        scratch->len = 0;
        data_chunk(cfg, q, from, count, false, scratch);
        q->piece.len = 0;
        add_chunk(&q->piece, scratch);
        q->piece_count = count;
    }
    sbuf_add(out, q->piece.s, q->piece.len);
}

void oai_piece(const struct sim_config *cfg, struct oai_req *q, int64_t from, int64_t count,
               enum sim_error fault, int64_t queue_ns, bool close, struct sbuf *scratch,
               struct sbuf *out)
{
    bool last = from + count >= q->n_out;
    if (from > 0 && !last && fault == ERR_NONE && !(q->usage && q->cont_usage)) {
        middle_piece(cfg, q, from, count, scratch, out);
        return;
    }
    if (from == 0)
        sbuf_printf(out,
                    "HTTP/1.1 200 OK\r\nServer: sonde-sim\r\nContent-Type: text/event-stream\r\n"
                    "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
                    "X-Sim-Queue-Ns: %" PRId64 "\r\n%s\r\n",
                    queue_ns, conn_hdr(close));
    scratch->len = 0;
    switch (fault) {
    case ERR_TRUNCATE:
    case ERR_STALL:
        return;
    case ERR_MIDSTREAM:
        sbuf_add(scratch, "data: ", 6);
        error_json(scratch, 500, MIDSTREAM_MSG);
        sbuf_add(scratch, "\n\n", 2);
        add_chunk(out, scratch);
        scratch->len = 0;
        sbuf_add(scratch, "data: [DONE]\n\n", 14);
        add_chunk(out, scratch);
        sbuf_add(out, "0\r\n\r\n", 5);
        return;
    case ERR_BADJSON:
        sbuf_add(scratch, "data: {not json\n\n", 17);
        add_chunk(out, scratch);
        scratch->len = 0;
        break;
    default:
        break;
    }
    data_chunk(cfg, q, from, count, last, scratch);
    if (last && q->usage) {
        sbuf_printf(scratch,
                    "data: {\"id\":\"%s-%lld\",\"object\":\"%s\",\"created\":%lld,"
                    "\"model\":\"%s\",\"choices\":[],",
                    q->chat ? "chatcmpl" : "cmpl", q->id,
                    q->chat ? "chat.completion.chunk" : "text_completion", q->created, cfg->model);
        usage_json(q, q->n_out, scratch);
        sbuf_add(scratch, "}\n\n", 3);
    }
    if (last)
        sbuf_add(scratch, "data: [DONE]\n\n", 14);
    add_chunk(out, scratch);
    if (last)
        sbuf_add(out, "0\r\n\r\n", 5);
}

void oai_full(const struct sim_config *cfg, const struct oai_req *q, enum sim_error fault,
              int64_t queue_ns, bool close, struct sbuf *scratch, struct sbuf *out)
{
    struct sbuf *d = scratch;
    d->len = 0;
    int status = 200;
    if (fault == ERR_STALL)
        return;
    if (fault == ERR_BADJSON) {
        sbuf_add(d, "{not json", 9);
    } else if (fault == ERR_MIDSTREAM) {
        status = 500;
        error_json(d, status, MIDSTREAM_MSG);
    } else if (q->chat) {
        sbuf_printf(d,
                    "{\"id\":\"chatcmpl-%lld\",\"object\":\"chat.completion\",\"created\":%lld,"
                    "\"model\":\"%s\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                    "\"assistant\",\"content\":\"",
                    q->id, q->created, cfg->model);
        add_tokens(d, q->n_out);
        sbuf_printf(d, "\"},\"logprobs\":null,\"finish_reason\":\"length\"}],");
    } else {
        sbuf_printf(d,
                    "{\"id\":\"cmpl-%lld\",\"object\":\"text_completion\",\"created\":%lld,"
                    "\"model\":\"%s\",\"choices\":[{\"index\":0,\"text\":\"",
                    q->id, q->created, cfg->model);
        add_tokens(d, q->n_out);
        sbuf_printf(d, "\",\"logprobs\":null,\"finish_reason\":\"length\"}],");
    }
    if (status == 200 && fault != ERR_BADJSON) {
        usage_json(q, q->n_out, d);
        sbuf_add(d, "}", 1);
    }
    sbuf_printf(out,
                "HTTP/1.1 %d %s\r\nServer: sonde-sim\r\nContent-Type: application/json\r\n"
                "Content-Length: %zu\r\nX-Sim-Queue-Ns: %" PRId64 "\r\n%s\r\n",
                status, sim_reason(status), d->len, queue_ns, conn_hdr(close));
    /* truncate: the body stops halfway (the connection is then closed) */
    sbuf_add(out, d->s, fault == ERR_TRUNCATE ? d->len / 2 : d->len);
}

/* ---- metrics ------------------------------------------------------------- */

/* Bucket bounds (seconds) of vLLM's histograms of the same names (vLLM's
 * vllm/v1/metrics/loggers.py), so that a dashboard reads the simulator as it
 * reads vLLM. */
static const double ttft_le[] = {0.001, 0.005, 0.01, 0.02,  0.04,  0.06,  0.08, 0.1,
                                 0.25,  0.5,   0.75, 1.0,   2.5,   5.0,   7.5,  10.0,
                                 20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};
static const double itl_le[] = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
static const double req_le[] = {0.3,  0.5,   0.8,   1.0,   1.5,   2.0,    2.5,
                                5.0,  10.0,  15.0,  20.0,  30.0,  40.0,   50.0,
                                60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

static const struct {
    const double *le;
    size_t n;
} hist_le[OAI_NHIST] = {
    [OAI_H_TTFT] = {ttft_le, sizeof(ttft_le) / sizeof(double)},
    [OAI_H_ITL] = {itl_le, sizeof(itl_le) / sizeof(double)},
    [OAI_H_E2E] = {req_le, sizeof(req_le) / sizeof(double)},
    [OAI_H_QUEUE] = {req_le, sizeof(req_le) / sizeof(double)},
};

void oai_observe(struct oai_stats *s, enum oai_hist k, int64_t ns, int64_t times)
{
    if (!s || times <= 0)
        return;
    if (ns < 0)
        ns = 0;
    struct sim_hist *h = &s->h[k];
    size_t b = 0;
    while (b < hist_le[k].n && (double)ns > hist_le[k].le[b] * 1e9)
        b++;
    /* one writer per worker: a relaxed load and store, no locked add */
    atomic_store_explicit(&h->n[b], atomic_load_explicit(&h->n[b], memory_order_relaxed) + times,
                          memory_order_relaxed);
    atomic_store_explicit(&h->sum_ns,
                          atomic_load_explicit(&h->sum_ns, memory_order_relaxed) + ns * times,
                          memory_order_relaxed);
}

static void metric(struct sbuf *d, const char *name, const char *type, const char *help,
                   const char *model, double v)
{
    sbuf_printf(d, "# HELP %s %s\n# TYPE %s %s\n%s{model_name=\"%s\"} %.17g\n", name, help, name,
                type, name, model, v);
}

/* Histogram k summed over the workers, as NAME_bucket{le}, NAME_sum, NAME_count. */
static void histogram(const struct sim_config *cfg, struct sbuf *d, const char *name,
                      const char *help, enum oai_hist k)
{
    long long n[SIM_HIST_MAX + 1] = {0}, sum_ns = 0;
    for (int t = 0; cfg->oai_stats && t < cfg->threads; t++) {
        const struct sim_hist *h = &cfg->oai_stats[t].h[k];
        for (size_t b = 0; b <= hist_le[k].n; b++)
            n[b] += atomic_load_explicit(&h->n[b], memory_order_relaxed);
        sum_ns += atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
    }
    sbuf_printf(d, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    long long cum = 0;
    for (size_t b = 0; b <= hist_le[k].n; b++) {
        cum += n[b];
        if (b < hist_le[k].n)
            sbuf_printf(d, "%s_bucket{model_name=\"%s\",le=\"%g\"} %lld\n", name, cfg->model,
                        hist_le[k].le[b], cum);
        else
            sbuf_printf(d, "%s_bucket{model_name=\"%s\",le=\"+Inf\"} %lld\n", name, cfg->model,
                        cum);
    }
    sbuf_printf(d, "%s_sum{model_name=\"%s\"} %.9f\n%s_count{model_name=\"%s\"} %lld\n", name,
                cfg->model, (double)sum_ns / 1e9, name, cfg->model, cum);
}

/* The KV-cache use: with --kv-cache-tokens, the running requests' tokens over
 * that capacity (at most 1); otherwise running / --max-concurrency (0 when
 * unlimited). */
static double kv_usage(const struct sim_config *cfg, double running)
{
    if (cfg->kv_tokens > 0) {
        double u = (double)atomic_load(&cfg->oai_kv_used) / (double)cfg->kv_tokens;
        return u < 0 ? 0 : u > 1 ? 1 : u;
    }
    return cfg->max_concurrency > 0 ? running / cfg->max_concurrency : 0.0;
}

/* vLLM's names, types and label (model_name), from vLLM's Prometheus logger
 * (vllm/v1/metrics/loggers.py) and its "Production Metrics" page. */
static void metrics_text(struct sim_config *cfg, struct sbuf *d)
{
    double running = (double)atomic_load(&cfg->oai_running);
    double waiting = (double)atomic_load(&cfg->oai_waiting);
    double kv = kv_usage(cfg, running);
    const char *m = cfg->model;
    metric(d, "vllm:num_requests_running", "gauge", "Number of requests generating now.", m,
           running);
    metric(d, "vllm:num_requests_waiting", "gauge", "Number of requests waiting for admission.", m,
           waiting);
    metric(d, "vllm:prompt_tokens_total", "counter", "Prompt tokens of finished requests.", m,
           (double)atomic_load(&cfg->oai_prompt_tokens));
    metric(d, "vllm:generation_tokens_total", "counter", "Generated tokens of finished requests.",
           m, (double)atomic_load(&cfg->oai_gen_tokens));
    metric(d, "vllm:request_success_total", "counter", "Requests that finished generating.", m,
           (double)atomic_load(&cfg->oai_success));
    metric(d, "vllm:kv_cache_usage_perc", "gauge",
           "KV-cache usage, 1 means 100 percent (the simulator's model: see docs/sim.md).", m, kv);
    metric(d, "vllm:gpu_cache_usage_perc", "gauge",
           "KV-cache usage, 1 means 100 percent (vLLM's name before 0.9).", m, kv);
    histogram(cfg, d, "vllm:time_to_first_token_seconds",
              "Time from arrival to the first token, in seconds.", OAI_H_TTFT);
    histogram(cfg, d, "vllm:inter_token_latency_seconds", "Time between output tokens, in seconds.",
              OAI_H_ITL);
    histogram(cfg, d, "vllm:time_per_output_token_seconds",
              "Time between output tokens, in seconds (vLLM's name before 0.11).", OAI_H_ITL);
    histogram(cfg, d, "vllm:e2e_request_latency_seconds",
              "Time from arrival to the last token of finished requests, in seconds.", OAI_H_E2E);
    histogram(cfg, d, "vllm:request_queue_time_seconds",
              "Time finished requests waited for admission, in seconds.", OAI_H_QUEUE);
}

static const char *error_type(int status)
{
    switch (status) {
    case 400:
    case 413:
    case 431:
        return "BadRequestError";
    case 404:
        return "NotFoundError";
    case 405:
        return "MethodNotAllowedError";
    case 429:
        return "RateLimitError";
    }
    return status >= 500 ? "InternalServerError" : "Error";
}

void oai_simple(struct sim_config *cfg, enum oai_route route, int status, const char *msg,
                bool head, bool close, struct sbuf *scratch, struct sbuf *out)
{
    struct sbuf *d = scratch;
    d->len = 0;
    const char *type = "application/json";
    if (status >= 400) {
        if (!msg)
            msg = status == 404   ? "no such route"
                  : status == 405 ? "method not allowed for this route"
                  : status == 413 ? "the request body is larger than 1 MiB"
                                  : sim_reason(status);
        error_json(d, status, msg);
    } else if (route == OAI_MODELS) {
        sbuf_printf(d,
                    "{\"object\":\"list\",\"data\":[{\"id\":\"%s\",\"object\":\"model\","
                    "\"created\":0,\"owned_by\":\"sonde-sim\",\"root\":\"%s\"}]}",
                    cfg->model, cfg->model);
    } else if (route == OAI_METRICS) {
        type = "text/plain; version=0.0.4";
        metrics_text(cfg, d);
    } else {
        type = "text/plain";
    }
    sbuf_printf(out,
                "HTTP/1.1 %d %s\r\nServer: sonde-sim\r\nContent-Type: %s\r\n"
                "Content-Length: %zu\r\nX-Sim-Queue-Ns: 0\r\n%s\r\n",
                status, sim_reason(status), type, d->len, conn_hdr(close));
    if (!head && d->len > 0) /* an empty scratch may have no buffer yet */
        sbuf_add(out, d->s, d->len);
}
