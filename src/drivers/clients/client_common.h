/* client_common.h — what the clients on the load engine (http, openai) share:
 * reading their options, splitting a URL, filling the engine's load model and
 * limits from the common option names, writing results (counts, latency
 * summaries, the verdict) and the diagnostics of their checks. Each function
 * that can fail sets c->reason and returns -errno. */
#ifndef SONDE_CLIENT_COMMON_H
#define SONDE_CLIENT_COMMON_H

#include "core/diag.h"
#include "core/recipe.h"
#include "core/session.h"
#include "loadgen/engine.h"
#include "util/hdr.h"
#include "util/util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#define CL_THREADS_MAX 256 /* worker threads of one client */
#define CL_NS_PER_MS   1e6

/* Entries of the clients' option tables (struct opt_def) read by cl_limits
 * and cl_load_model: when to stop, and the limits of a request. */
#define CL_OPT(name, type, def, help)                                                              \
    {                                                                                              \
        name, type, false, def, help, NULL, NULL                                                   \
    }
#define CL_OPTS_BOUNDS                                                                             \
    CL_OPT("duration", OPT_DURATION, NULL, "measured time (after warmup)"),                        \
        CL_OPT("requests", OPT_INT, NULL, "measured requests (whichever bound comes first)"),      \
        CL_OPT("warmup", OPT_DURATION, "0s", "load applied first whose samples are discarded"),    \
        CL_OPT("think", OPT_DURATION, NULL, "closed loop: pause between a response and the next")
#define CL_OPTS_TIMEOUTS                                                                           \
    CL_OPT("connect_timeout", OPT_DURATION, "5s", "limit for a connection to be established"),     \
        CL_OPT("first_byte_timeout", OPT_DURATION, NULL,                                           \
               "limit from send to the first response byte"),                                      \
        CL_OPT("timeout", OPT_DURATION, NULL, "limit for a whole request")
#define CL_OPT_BUSY_POLL                                                                           \
    CL_OPT("busy_poll", OPT_DURATION, "50us",                                                      \
           "poll this long after the last event before sleeping (0s: never)")

/* The choices of the mode and arrival options (cl_load_model). */
extern const char *const cl_mode_choices[];
extern const char *const cl_arrival_choices[];

/* ---- options (under c->spec->with unless a map is given) ---- */

/* The scalar text of key in with, or NULL (absent or not a scalar). */
const char *cl_opt_text(const struct sv *with, const char *key);
/* An integer, def when absent; must lie in [lo, hi]. */
int cl_opt_int(struct comp *c, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out);
/* A finite non-negative number, def when absent. */
int cl_opt_float(struct comp *c, const char *key, double def, double *out);
int cl_opt_bool(struct comp *c, const char *key, bool def, bool *out);
/* A duration under map (with: or a block in it, NULL: absent), def when absent
 * (NULL: 0). */
int cl_opt_dur(struct comp *c, const struct sv *map, const char *key, const char *def,
               int64_t *out);

/* ---- URLs ---- */

struct cl_url {
    bool tls;
    char *host; /* without brackets */
    uint16_t port;
    char *host_header; /* host[:port] as sent in Host */
    char *path;        /* what follows the authority up to any '#': "", "/a/b", "?q", ... */
};

/* Splits http[s]://host[:port][path] (host may be [v6]; no user info, no
 * whitespace) into *u (cl_url_clear frees it). -EPROTONOSUPPORT for another
 * scheme, -EINVAL when malformed (then *u holds nothing). */
int cl_url_parse(const char *text, struct cl_url *u);
void cl_url_clear(struct cl_url *u);
/* A base URL (a server's root, paths are appended): as cl_url_parse, but no
 * query, fragment or user info, and u->path without trailing '/'s. */
int cl_base_url_parse(const char *text, struct cl_url *u);
/* The server a client loads: its `url` option, or the service its `target` names
 * (http://host:port), as a base URL without a path; `what` names the server in the
 * reason set when neither option is there ("the S3 endpoint"). */
int cl_server_url(struct comp *c, const char *what, struct cl_url *u);

/* The value of environment variable name for the client: its recipe's `env:`
 * first, then sonde's environment; NULL when neither has it. */
const char *cl_env(const struct comp *c, const char *name);

/* The service named name among the benchmark's components (a client's
 * `target:`), or NULL with c->reason set (unknown, or without a port). */
const struct comp *cl_target_service(struct comp *c, const char *name);

/* ---- the engine's configuration ---- */

/* mode, arrival, rate, ramp_from, burstiness, seed, ramp, think into cfg;
 * mode open needs rate above 0. */
int cl_load_model(struct comp *c, struct lg_config *cfg);
/* connections (conns_def when absent, at most conns_max), threads (<=
 * CL_THREADS_MAX), requests, duration, warmup, connect_timeout,
 * first_byte_timeout, timeout and busy_poll into cfg. */
int cl_limits(struct comp *c, struct lg_config *cfg, int64_t conns_def, int64_t conns_max);
/* Waits for the run's end (*waited set): its statistics in *out. */
int cl_wait(struct comp *c, struct lg_run *run, bool *waited, struct lg_stats **out);
/* lg_start with the reason said on failure. */
int cl_start(struct comp *c, const struct lg_config *cfg, struct lg_run **run);
/* True when the run is absent or over (driver_ops.tick returns 1). */
bool cl_done(struct lg_run *run);
/* True once a second (*at is the last time it was): a status line is due. */
bool cl_status_due(int64_t *at, int64_t now);
/* Sets the client's live values for sonde's exporter from the load engine's
 * progress: requests, errors, bytes in/out and, with latency, the histogram of
 * successful requests' latency (core/exporter.h has the names). */
struct lg_progress;
void cl_live(struct comp *c, const struct lg_progress *p, bool latency);
/* cl_live from a finished run (the ticks stopped before its end): the final values. */
struct lg_run;
void cl_live_final(struct comp *c, struct lg_run *run);
/* The live totals by themselves (a client without the load engine, or the
 * final figures at finish); a negative count is left as it is. */
void cl_live_totals(struct comp *c, double requests, double bytes_in, double bytes_out);
/* Stops a run not yet waited for (driver_ops.stop). */
void cl_stop(struct lg_run *run, bool waited);

/* ---- one request outside the load ---- */

#define CL_ONCE_LIMIT (30 * 1000000000LL) /* the most one such request may take */

/* A request sent once (no retry) outside the measured load (a setup step, a check, a
 * cleanup) on the engine, with the target, TLS and timeouts of a client's config: its
 * status and the start of its body. */
struct cl_once {
    int status;       /* 0: no answer */
    struct sbuf body; /* the first body_max bytes (0: 4096); the caller frees it */
    size_t body_max;
    int64_t sent, done; /* when it was sent, when its answer ended */
    int err; /* when no complete answer came: its class (enum lg_err; LG_ERR_COUNT: unknown),
              * else -1 */
    /* Optional: sees every piece of the body instead of body (which stays empty). */
    void (*on_body)(struct cl_once *o, const char *data, size_t len);
    void *ud; /* for on_body */
};

/* cfg as a run of exactly n requests outside the measured load (a prefill, the
 * parts of an upload, a sweep, an ingest): closed loop, every request sent once
 * (sends_bounded), no duration, warm-up or think time, no per-second histograms,
 * connections (and threads) at most n. */
void cl_bounded(struct lg_config *cfg, uint64_t n);
/* Runs cfg to its end (cl_start, cl_wait), its statistics discarded. */
int cl_run(struct comp *c, const struct lg_config *cfg);

/* Sends req (the complete request) once with base's target; 0 when an answer came
 * (any status), else -EIO with the reason "no answer from <what>" (or why the
 * engine could not run it). */
int cl_once_run(struct comp *c, const struct lg_config *base, const struct sbuf *req,
                const char *what, struct cl_once *o);

/* ---- results ---- */

/* The name of error class e (<0 ... LG_ERR_COUNT): the engine's. */
const char *cl_lg_err_name(int e);
typedef const char *cl_err_name_fn(int e);

void cl_put_ms(struct comp *c, const char *name, double ns);
/* <prefix>_p50 ... _p999 (each with enough samples), _max, _mean in ms. */
void cl_put_hdr_summary(struct comp *c, const char *prefix, const struct hdr *h);
/* The histogram h under name (in ns), when it has samples. */
void cl_put_histogram(struct comp *c, const char *name, const struct hdr *h);
uint64_t cl_total_errors(const uint64_t *errors, int nerr);
/* Counts an answer's status in status_class ([1] 1xx ... [5] 5xx, [0] other); none
 * when status <= 0 (no answer). */
void cl_count_status(uint64_t status_class[6], int status);
/* requests, ok, errors, errors_<class> and status_<class> (status_class:
 * other, 1xx ... 5xx) of nerr error classes. */
void cl_put_counts(struct comp *c, uint64_t requests, uint64_t ok, const uint64_t *errors, int nerr,
                   cl_err_name_fn *err_name, const uint64_t status_class[6]);
/* The same counts as extra counters of s (a fan-out task's result: requests,
 * ok, errors_<class>, status_<class>), and back (0 for what s lacks). */
int cl_counts_to_extra(struct lg_stats *s, uint64_t requests, uint64_t ok, const uint64_t *errors,
                       int nerr, cl_err_name_fn *err_name, const uint64_t status_class[6]);
void cl_counts_from_extra(const struct lg_stats *s, uint64_t *requests, uint64_t *ok,
                          uint64_t *errors, int nerr, cl_err_name_fn *err_name,
                          uint64_t status_class[6]);
/* Fails the client (-EIO) when nothing succeeded, naming the most frequent
 * error class. */
int cl_judge(struct comp *c, uint64_t ok, const uint64_t *errors, int nerr,
             cl_err_name_fn *err_name);

/* Open loop (cfg->model): achieved_rate, issue_delay_p99, unsent, and a
 * warning when the engine could not hold the rate. */
void cl_put_open_loop(struct comp *c, const struct lg_config *cfg, const struct lg_stats *s);
/* Failures outside any request (connect, TLS handshake) reach only the
 * engine's counts: adds what the client's errors[] lack to it and to
 * *requests. */
void cl_add_engine_errors(uint64_t *errors, uint64_t *requests, const struct lg_stats *s);

/* Two counters per second of the measured window (from ws), grown on demand. */
struct cl_secs {
    uint64_t *a, *b;
    size_t n;
};
void cl_secs_add(struct cl_secs *s, int64_t ws, int64_t t, uint64_t a, uint64_t b);
void cl_secs_free(struct cl_secs *s);

/* ---- checks (driver_ops.check) ---- */

/* A diagnostic at clients.<name>.with[.key] (key NULL: the block). */
void cl_chk_vfail(const struct comp_spec *spec, struct diags *d, const char *key, const char *fmt,
                  va_list ap) SONDE_PRINTF(4, 0);
void cl_chk_fail(const struct comp_spec *spec, struct diags *d, const char *key, const char *fmt,
                 ...) SONDE_PRINTF(4, 5);
/* The scalar text of key when known now (not holding a run-time reference). */
const char *cl_chk_text(const struct comp_spec *spec, const char *key);
/* When to stop (duration or requests) and an open loop's rate are given;
 * nothing for a catalog entry on its own (spec->partial). */
void cl_chk_bounds(const struct comp_spec *spec, struct diags *d);

#endif
