/* sim.h — sonde-sim, the calibrated reference HTTP/1.1 server (internal to src/sim).
 *
 * One epoll loop per worker thread, each with its own SO_REUSEPORT listener,
 * its own timer heap and its own RNG; the only shared state is the read-only
 * configuration, the response body, and (only with --max-requests) one atomic
 * counter. See docs/sim.md for the options and timing semantics. */
#ifndef SONDE_SIM_H
#define SONDE_SIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"
#include "util/util.h" /* struct sbuf */

/* A response delay distribution. */
enum sim_dist { DIST_FIXED, DIST_UNIFORM, DIST_EXP, DIST_LOGNORMAL };

struct sim_delay {
    enum sim_dist kind;
    int64_t a_ns; /* fixed value, uniform low, exp mean, lognormal median */
    int64_t b_ns; /* uniform high */
    double sigma; /* lognormal sigma */
};

struct ks_model; /* --kserve: below */

/* --openai: the latency histograms of one worker. Only that worker writes
 * them (relaxed load + store, no locked instruction on the token path); a
 * /metrics answer in any worker sums all workers' with relaxed loads. */
#define SIM_HIST_MAX 24 /* finite bucket bounds at most */

struct sim_hist {
    atomic_llong n[SIM_HIST_MAX + 1]; /* per bucket, not cumulative; then above the last */
    atomic_llong sum_ns;
};

enum oai_hist {
    OAI_H_TTFT,  /* arrival to the first token's scheduled time */
    OAI_H_ITL,   /* the gaps between consecutive tokens */
    OAI_H_E2E,   /* arrival to the last token, finished generations */
    OAI_H_QUEUE, /* arrival to admission, finished generations */
    OAI_NHIST
};

struct oai_stats {
    struct sim_hist h[OAI_NHIST];
};

/* Records `times` observations of ns in histogram k of a worker's stats. */
void oai_observe(struct oai_stats *s, enum oai_hist k, int64_t ns, int64_t times);

/* The kinds after ERR_HANG break a streamed generation (--openai only; docs/sim.md). */
enum sim_error {
    ERR_NONE,
    ERR_STATUS,
    ERR_RESET,
    ERR_MALFORMED,
    ERR_HANG,
    ERR_TRUNCATE,  /* the stream stops midway: a clean close */
    ERR_BADJSON,   /* one data line midway is not JSON */
    ERR_MIDSTREAM, /* an error object midway, then [DONE] */
    ERR_STALL,     /* nothing more after midway; the connection stays open */
};

struct sim_config {
    char *host;
    int port;
    int threads;
    struct sim_delay delay;
    int64_t size;
    int status;
    int64_t stall_ns, stall_every_ns;
    double error_rate;
    enum sim_error error_kind;
    int error_status;
    uint64_t seed;
    int sse_events; /* 0: SSE mode off */
    int64_t sse_first_ns, sse_gap_ns;
    int64_t max_requests; /* 0: unlimited */
    int64_t spin_ns;      /* busy-poll this long before each deadline */

    /* --kserve: the KServe v2 / Triton simulator (see docs/kserve.md). */
    bool kserve;
    struct ks_model **ks_models; /* from --kserve-model (a default one when none) */
    size_t ks_nmodels;
    char **ks_unready;  /* --kserve-unready names, applied by ks_config_check */
    int64_t ks_item_ns; /* --kserve-item-delay: extra delay per batch element of an infer */

    /* --openai: the inference-engine simulator (see docs/sim.md). */
    bool openai;
    struct sim_delay ttft, itl;
    int tokens_per_chunk;
    int64_t output_tokens;
    int max_concurrency; /* 0: unlimited */
    char *model;

    /* Filled in by main before the workers start. */
    char *body;             /* size bytes, shared read-only */
    int64_t start_ns;       /* CLOCK_MONOTONIC origin of the stall windows */
    int stop_fd;            /* eventfd: readable once the server must stop */
    atomic_llong responses; /* counted only when max_requests > 0 */

    int64_t kv_tokens; /* --kv-cache-tokens: the modelled KV-cache capacity (0: none) */

    /* --openai, shared by all workers. */
    int oai_wake_fd;          /* eventfd written when a slot frees and others wait */
    atomic_llong oai_running; /* requests generating now (admission counter) */
    atomic_llong oai_waiting; /* requests in the workers' admission FIFOs */
    atomic_llong oai_prompt_tokens, oai_gen_tokens, oai_success, oai_ids;
    atomic_llong oai_kv_used;    /* with kv_tokens: tokens the running requests hold */
    struct oai_stats *oai_stats; /* one per worker (index), allocated by main */
};

/* Totals of one worker, summed by main for the exit summary. */
struct sim_totals {
    uint64_t responses, errors;
};

/* ---- --kserve (kserve.c) ---- */

#define KS_MAX_DIMS   8
#define KS_MAX_INPUTS 16

/* One input (and its echoing output) of a simulated model. */
struct ks_tensor {
    char *name;
    int dtype; /* index into the datatype names (kserve.c) */
    int rank;
    int64_t dims[KS_MAX_DIMS]; /* -1: variable */
};

/* A simulated model; the counters are shared by all workers. */
struct ks_model {
    char *name, *version;
    bool ready;
    struct ks_tensor in[KS_MAX_INPUTS];
    int nin;
    atomic_llong success, failure, count, exec;
    atomic_llong request_ns, queue_ns, compute_ns; /* summed over the successful infers */
};

/* --kserve-model SPEC: adds a model; NULL, or why SPEC is wrong. */
const char *ks_add_model(struct sim_config *cfg, const char *spec);
/* After the options: the default model, --kserve-unready, the kserve options
 * without --kserve. 0, or -EINVAL after printing a message. */
int ks_config_check(struct sim_config *cfg);
void ks_config_free(struct sim_config *cfg);

/* Answers a request from its request line alone into out (the whole
 * response), and returns -1; for a well-formed infer of a known model,
 * returns the model's index and leaves out empty: ks_infer answers once the
 * body is read. inject_status: an injected error status (0: none). */
int ks_head(struct sim_config *cfg, const char *method, size_t mlen, const char *target,
            size_t tlen, int inject_status, bool head, bool close, struct sbuf *out);

/* Parses and checks an infer body for model m; appends the whole response
 * (200 with the outputs, or 400) and counts it in the model's metrics.
 * Returns the extra delay of a successful infer (the batch size times
 * --kserve-item-delay, >= 0), or -1 after a 400. */
int64_t ks_infer(struct sim_config *cfg, int m, const char *body, size_t len, bool close,
                 struct sbuf *out);

/* Adds a successful infer's times to model m's duration counters: delay_ns
 * (the --delay draw, which the simulator counts as queue time) and extra_ns
 * (batch x --kserve-item-delay, counted as compute time). */
void ks_account(struct sim_config *cfg, int m, int64_t delay_ns, int64_t extra_ns);

/* ---- --openai (openai.c) ---- */

#define OAI_MAX_BODY   (1 << 20) /* request bodies above get 413 */
#define OAI_MAX_TOKENS 1000000

enum oai_route {
    OAI_NONE, /* not --openai */
    OAI_COMPLETIONS,
    OAI_CHAT,
    OAI_MODELS,
    OAI_HEALTH,
    OAI_METRICS,
    OAI_NOT_FOUND,
    OAI_BAD_METHOD,
};

/* One parsed generation request. */
struct oai_req {
    bool chat, stream, usage;
    bool cont_usage; /* stream_options.continuous_usage_stats: usage in every chunk */
    int64_t n_out, prompt_tokens;
    long long id;
    long long created; /* unix seconds */
    /* the HTTP chunk of a middle piece of piece_count tokens, rendered once
     * (every middle piece of a stream is the same without continuous usage);
     * owned, freed by the caller (sbuf_free) */
    struct sbuf piece;
    int64_t piece_count;
};

enum oai_route oai_route(const char *method, size_t mlen, const char *target, size_t tlen);

/* Parses a generation request body. Returns 0, or 400 with *msg set. */
int oai_parse(const struct sim_config *cfg, bool chat, const char *body, size_t len,
              struct oai_req *out, const char **msg);

/* Appends to out the streamed piece carrying tokens [from, from+count): the
 * response headers first when from is 0, the end of the stream (usage chunk,
 * [DONE], the zero chunk) when the piece holds the last token. With a fault
 * (ERR_TRUNCATE..ERR_STALL, else ERR_NONE) the piece is the one breaking the
 * stream: truncate and stall write only the headers (when from is 0),
 * midstream an error object, [DONE] and the end, badjson a non-JSON data
 * line before the normal piece. */
void oai_piece(const struct sim_config *cfg, struct oai_req *q, int64_t from, int64_t count,
               enum sim_error fault, int64_t queue_ns, bool close, struct sbuf *scratch,
               struct sbuf *out);

/* Appends the whole non-streaming response, or with a fault: truncate the
 * headers and half the body, badjson a 200 whose body is not JSON,
 * midstream a 500 error object, stall nothing. */
void oai_full(const struct sim_config *cfg, const struct oai_req *q, enum sim_error fault,
              int64_t queue_ns, bool close, struct sbuf *scratch, struct sbuf *out);

/* Appends a response that generates nothing: models, health, metrics, or an
 * error (status >= 400, msg NULL for a default message). */
void oai_simple(struct sim_config *cfg, enum oai_route route, int status, const char *msg,
                bool head, bool close, struct sbuf *scratch, struct sbuf *out);

const char *sim_reason(int status);

/* Parses argv into cfg (defaults first). Returns 0, 1 when --help was
 * printed, or -EINVAL after printing a message to stderr. */
int sim_parse_args(int argc, char **argv, struct sim_config *cfg);
void sim_config_free(struct sim_config *cfg);

/* "10ms", "uniform:5ms,15ms", "exp:10ms", "lognormal:10ms,0.5". 0 or -EINVAL. */
int sim_parse_delay(const char *spec, struct sim_delay *out);

int64_t sim_delay_draw(const struct sim_delay *d, struct rng *r);

/* When t lies in a stall window, the window's end; otherwise t. */
int64_t sim_stall_release(const struct sim_config *cfg, int64_t t);

/* Runs one worker loop on listener lfd until cfg->stop_fd becomes readable.
 * Returns 0 or a negative errno; totals are filled in either way. */
int sim_worker_run(struct sim_config *cfg, int lfd, int index, struct sim_totals *totals);

#endif
