/* engine.h — the load engine every network client stands on.
 *
 * One epoll event loop per worker thread, nothing shared between threads on
 * the hot path; each worker owns its connections, its histograms and its
 * per-second buckets, merged when the run ends (and read, approximately, once
 * per second for live progress). Keep-alive HTTP/1.1 over TCP (TLS through
 * OpenSSL when req.tls is set).
 *
 * Load models:
 * - closed loop: `connections` users, each sends, waits for the response,
 *   thinks `think_ns`, sends again; latency == service time;
 * - open loop: requests are due at intended send times s* drawn from the
 *   arrival process (constant, Poisson, gamma with `burstiness`) at a total
 *   `rate` (optionally ramped); latency is measured from s*, service time
 *   from the actual send s, issue delay is s - s* (METRICS.md). A request due
 *   while every connection is busy waits (its latency grows): coordinated
 *   omission is never hidden.
 * Warm-up samples (the first warmup_ns) are discarded, not slept through.
 *
 * Times are CLOCK_MONOTONIC nanoseconds. Histograms record nanoseconds. */
#ifndef SONDE_LOADGEN_ENGINE_H
#define SONDE_LOADGEN_ENGINE_H

#include "loadgen/live.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hdr;
struct rng;
struct sbuf;

enum lg_model { LG_CLOSED, LG_OPEN };
enum lg_arrival { LG_CONSTANT, LG_POISSON, LG_GAMMA };

/* Error classes: every failed request is counted in exactly one. */
enum lg_err {
    LG_ERR_CONNECT,  /* connect refused / unreachable / connect timeout */
    LG_ERR_TIMEOUT,  /* first-byte or whole-request timeout */
    LG_ERR_READ,     /* reset or closed mid-response */
    LG_ERR_WRITE,    /* the request could not be sent */
    LG_ERR_STATUS,   /* a status other than expected (per class below) */
    LG_ERR_PROTOCOL, /* malformed response (parser error) */
    LG_ERR_TLS,      /* handshake or TLS record failure */
    LG_ERR_COUNT
};
const char *lg_err_name(enum lg_err e); /* "connect", "timeout", ... */

/* Streaming: called from the worker thread that owns the request, in order,
 * with the arrival time of the bytes. Used by SSE clients (inference). All
 * optional; per-request state lives in *req_state (NULL at start). */
struct lg_stream_ops {
    void (*on_headers)(void *ud, void **req_state, int status, int64_t t_ns);
    void (*on_body)(void *ud, void **req_state, const char *data, size_t len, int64_t t_ns);
    /* ok: the response completed (any status); err: its class when not ok. */
    void (*on_done)(void *ud, void **req_state, bool ok, enum lg_err err, int64_t t_ns);
    /* Once per request, just before its first byte is written (last member, so
     * positional initializers of the three above stay valid): intended_ns is its
     * intended send time s* (== sent_ns in closed loop), sent_ns the actual send
     * time s that service time runs from. Always the request's first hook, so it
     * can set *req_state; on_done follows every request this was called for. */
    void (*on_sent)(void *ud, void **req_state, int64_t intended_ns, int64_t sent_ns);
};

struct lg_config {
    /* target */
    char *host; /* numeric IPv4/IPv6 address or name (resolved once at start) */
    uint16_t port;
    bool tls;        /* https */
    char *sni;       /* TLS server name, NULL = host */
    bool tls_verify; /* check the server's certificate chain and name (off: measure only) */
    char *ca_file;   /* with tls_verify: trusted CAs (PEM); NULL = the system's */
    char *request;   /* the complete request bytes (see http_req_build) */
    size_t request_len;
    /* Per-request requests instead (optional; `request` is then unused):
     * called on worker thread `worker` (0 .. threads-1) before each send with
     * n, the request's number in the run (unique across threads, roughly in
     * send order), and that thread's own seeded random stream; appends the
     * complete request to out (empty on entry). A non-zero return stops the
     * run and lg_wait() returns it. */
    int (*make_request)(void *ud, unsigned worker, uint64_t n, struct rng *rng, struct sbuf *out);
    void *make_request_ud;
    bool head;         /* the request is HEAD (no response body); a request from make_request that
                        * starts with "HEAD " is taken as one too */
    int expect_status; /* 0: 2xx and 3xx succeed; else exactly this status */
    /* concurrency */
    unsigned threads;     /* worker threads, >= 1 */
    unsigned connections; /* total, spread over threads, >= threads */
    /* load model */
    enum lg_model model;
    double rate;      /* open loop: requests/s in total (after the ramp) */
    double ramp_from; /* open loop: starting rate, ramped linearly over ramp_ns; 0 = none */
    int64_t ramp_ns;
    enum lg_arrival arrival;
    double burstiness; /* gamma shape k (1 = Poisson) */
    uint64_t seed;     /* arrival schedule seed (per thread: derived) */
    int64_t think_ns;  /* closed loop */
    /* bounds: whichever comes first; at least one must be set */
    int64_t duration_ns; /* measured part, after warm-up */
    uint64_t max_requests;
    /* Closed loop with max_requests and no warm-up: send exactly max_requests requests,
     * so that none is cut off when the run stops at the last answer (a prefill: every
     * PUT completes); a failed one is not sent again. */
    bool sends_bounded;
    int64_t warmup_ns;
    /* timeouts, 0 = none */
    int64_t connect_timeout_ns;
    int64_t first_byte_timeout_ns;
    int64_t request_timeout_ns;
    /* before sleeping in epoll, poll without sleeping for up to this long
     * after the last event (0: sleep at once); see wait_events() */
    int64_t busy_poll_ns;
    /* histograms: significant digits (default 3), highest trackable (default 1 h) */
    int hdr_sigfigs;
    /* Keep each second's latency histogram (struct lg_second.latency) instead of
     * only its p50/p99, so that the series of several runs can be merged exactly
     * (loadgen/stats_file.h). Costs about 36 KB per second of the window (2
     * significant digits up to 1 h), so about 130 MB per hour; off by default. */
    bool keep_second_hdrs;
    /* streaming hooks (NULL = none) */
    const struct lg_stream_ops *stream;
    void *stream_ud;
};

/* One second of the measured window. */
struct lg_second {
    uint64_t requests, errors; /* completed in that second */
    uint64_t bytes_in;
    int64_t p50_ns, p99_ns; /* latency; -1 when no request completed */
    /* With keep_second_hdrs: the latencies of the requests that succeeded in
     * that second (2 significant digits; empty when none did), owned by the
     * stats. NULL otherwise. */
    struct hdr *latency;
};

/* A result the client driver keeps beside the engine's (its own error
 * classes, token counts, histograms, per-second counts, times), carried in
 * stats files and merged with them (loadgen/stats_file.h): counters and the
 * values of a series' seconds are summed, histograms merged, minima and
 * maxima kept as the smallest and the largest. */
enum lg_extra_kind { LG_EXTRA_COUNTER, LG_EXTRA_HDR, LG_EXTRA_SECS, LG_EXTRA_MIN, LG_EXTRA_MAX };

struct lg_extra {
    char *name; /* [a-z0-9_], at most LG_EXTRA_NAME_MAX bytes */
    enum lg_extra_kind kind;
    uint64_t count;  /* COUNTER */
    struct hdr *hdr; /* HDR (owned) */
    uint64_t *secs;  /* SECS: per second of the window, like lg_stats.secs (owned) */
    size_t nsecs;
    int64_t value; /* MIN, MAX */
};
#define LG_EXTRA_NAME_MAX 64
#define LG_EXTRAS_MAX     256 /* extras of one result */

struct lg_stats {
    uint64_t requests; /* completed (ok + errors) in the measured window */
    uint64_t ok;
    uint64_t errors[LG_ERR_COUNT];
    uint64_t status_class[6]; /* responses by status class: [1]=1xx ... [5]=5xx, [0]=other */
    uint64_t bytes_in, bytes_out;
    uint64_t connects;       /* connections established (TCP, and TLS when on), warm-up too */
    struct hdr *latency;     /* from intended send (== service in closed loop) */
    struct hdr *service;     /* from actual send to the last byte */
    struct hdr *issue_delay; /* open loop only (NULL in closed loop) */
    int64_t window_ns;       /* measured window length */
    double achieved_rate;    /* requests / window */
    bool rate_missed;        /* open loop: issue-delay p99 above 1 ms, or requests dropped */
    uint64_t unsent;         /* open loop: requests that were due but never sent (the
                              * client fell behind: still queued at the end, or dropped
                              * past the queue's maximum of 16M) */
    /* CLOCK_REALTIME at the window's start (after warm-up): secs[i] covers
     * [start + i s, start + (i + 1) s) */
    int64_t window_start_wall_ns;
    struct lg_second *secs;
    size_t nsecs;
    struct lg_extra *extra; /* the client driver's own results, in the order added */
    size_t nextra;
};

struct lg_progress {
    int64_t elapsed_ns;
    uint64_t requests, errors;
    /* Successful requests by latency: lat_buckets[i] ≤ lg_live_le[i] (and above
     * the previous bound); the last counts those above every bound. */
    uint64_t lat_buckets[LG_LIVE_BUCKETS + 1];
    double lat_sum_s;
    uint64_t bytes_in, bytes_out;
    double rate_last_s; /* requests completed in the last second */
    int64_t p99_last_s; /* ns, -1 when unknown */
    bool warming_up;
};

struct lg_run;

/* Checks the config (clear message in errbuf) and starts the workers; returns
 * at once. 0 or -errno. */
int lg_start(const struct lg_config *cfg, struct lg_run **out, char *errbuf, size_t errlen);
bool lg_done(struct lg_run *run);
void lg_progress(struct lg_run *run, struct lg_progress *out);
/* Asks the workers to stop now (cancel); results so far stay valid. */
void lg_stop(struct lg_run *run);
/* Joins the workers and merges their results. 0, the error that stopped the
 * run, or -EALREADY when called again on a run with keep_second_hdrs (the
 * per-second histograms moved into the first call's stats). */
int lg_wait(struct lg_run *run, struct lg_stats **out);
void lg_free(struct lg_run *run);
void lg_stats_free(struct lg_stats *st);

/* Adds an extra result to st (name valid and not yet used, at most
 * LG_EXTRAS_MAX: else -EINVAL). The histogram is taken (freed on error too),
 * the series copied. */
int lg_extra_add_counter(struct lg_stats *st, const char *name, uint64_t count);
int lg_extra_add_hdr(struct lg_stats *st, const char *name, struct hdr *h);
int lg_extra_add_secs(struct lg_stats *st, const char *name, const uint64_t *v, size_t n);
/* kind LG_EXTRA_MIN or LG_EXTRA_MAX. */
int lg_extra_add_bound(struct lg_stats *st, const char *name, enum lg_extra_kind kind,
                       int64_t value);
/* The extra result of that name and kind, or NULL. */
const struct lg_extra *lg_extra_find(const struct lg_stats *st, const char *name,
                                     enum lg_extra_kind kind);
/* Its count, 0 when absent. */
uint64_t lg_extra_count(const struct lg_stats *st, const char *name);
/* The value of a MIN or MAX extra, def when absent. */
int64_t lg_extra_value(const struct lg_stats *st, const char *name, enum lg_extra_kind kind,
                       int64_t def);
/* Whether name is a valid extra name. */
bool lg_extra_name_ok(const char *name);

#endif
