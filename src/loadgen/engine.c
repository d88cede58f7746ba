/* engine.c — the load engine: one epoll loop per worker thread (see engine.h).
 *
 * Hot path (per response): one read() into the worker's 64 KiB buffer (after
 * the connection's carried partial line, if any), parser events, a fresh
 * CLOCK_MONOTONIC read per read() (the arrival time of those bytes, and the
 * completion time of a response they finish), per-thread histograms and
 * counters (relaxed atomics for the progress view), one send() of the next
 * request. No allocation and no lock there. Once per second per thread a
 * mutex is taken to add that second's counts and interval histogram to the
 * run's per-second series.
 *
 * Waiting: after the last event a worker polls epoll without sleeping for up
 * to busy_poll_ns, then sleeps in epoll_pwait2 with a nanosecond timeout to
 * the next deadline (open loop arrival, end of run, think-time wake-up,
 * timeout scan); its timer slack is set to 1 us. Timeouts (connect, first
 * byte, request) and reconnect back-off are checked by a scan of the
 * worker's connections every 5 ms, so they fire up to 5 ms late. */
#include "loadgen/engine.h"
#include "util/rng.h"

#include "loadgen/http_parser.h"
#include "util/hdr.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S   1000000000LL
#define SCAN_NS    (5 * 1000000LL)
#define BACKOFF_NS (10 * 1000000LL)
#define EV_BATCH   256
#define RBUF_SIZE  ((size_t)64 << 10) /* each worker's read buffer */
#define CARRY_MAX                                                                                  \
    ((size_t)16 << 10) /* a connection's unparsed tail: above the parser's line limits */
#define PEND_INIT   ((size_t)4096)
#define PEND_MAX    ((size_t)1 << 24)
#define SECS_MAX    ((size_t)1 << 22)
#define HDR_HIGHEST (3600LL * NS_PER_S)
#define FD_MARGIN   256 /* descriptors for the rest of sonde (store, logs, pipes) */

enum cstate { CS_CLOSED, CS_CONNECTING, CS_HANDSHAKE, CS_IDLE, CS_BUSY, CS_THINK };

struct worker;

struct conn {
    struct worker *w;
    int fd;
    SSL *ssl;
    uint8_t st;
    bool want_out;  /* EPOLLOUT is registered */
    bool got_first; /* a byte of the current response arrived */
    unsigned idle_pos;
    unsigned fails;  /* consecutive connect failures */
    char *buf;       /* the unparsed tail of the last read (a partial line), if any */
    size_t len, cap; /* allocated on first use, at most CARRY_MAX */
    size_t wpos;
    const char *req; /* the current request: the run's fixed one, or wb */
    size_t req_len;
    struct sbuf wb;   /* per-request requests (make_request) */
    int64_t sstar, s; /* intended and actual send time of the current request */
    int64_t deadline; /* connect deadline (CONNECTING) or retry time (CLOSED) */
    int64_t wake;     /* think-time end (THINK) */
    struct http_resp_parser p;
    void *rs; /* stream hooks' per-request state */
};

struct sec_slot {
    uint64_t req, err, bytes;
    struct hdr *h;
    unsigned contrib;
    bool final;
    int64_t p50, p99;
};

struct worker {
    struct lg_run *run;
    pthread_t th;
    bool started;
    unsigned idx;
    int ep;
    struct conn *conns;
    unsigned nconns;
    struct conn **idle;
    unsigned nidle;
    struct conn **think; /* ring, constant think time keeps it ordered */
    unsigned think_head, think_n;
    int64_t *pend; /* open loop: intended send times waiting for a connection */
    size_t pend_cap, pend_head, pend_n;
    uint64_t unsent; /* open loop: due requests dropped at the queue's maximum */
    int64_t next_due;
    struct rng rng;
    struct rng req_rng; /* make_request's stream: the arrival schedule stays as seeded */
    uint64_t seq;       /* requests built by make_request */
    struct hdr *lat, *svc, *idl, *sec_h;
    uint64_t requests, ok, errors[LG_ERR_COUNT], status_class[6], bytes_in, bytes_out;
    uint64_t connects;
    _Atomic uint64_t a_req, a_err;
    struct lg_live_hist live_lat; /* the exporter's, from the intended send time */
    _Atomic uint64_t a_bytes_in, a_bytes_out;
    int64_t cur_sec;
    uint64_t sec_req, sec_err, sec_bytes;
    int64_t next_scan;
    int64_t now;
    char *rbuf; /* RBUF_SIZE + CARRY_MAX: every read lands here (the carry first) */
    int err;    /* fatal error (make_request failed) */
};

struct lg_run {
    struct lg_config cfg;
    struct sockaddr_storage addr;
    socklen_t alen;
    struct worker *w;
    unsigned nw;
    int64_t t0, ws, end;
    int64_t ws_wall; /* ws on CLOCK_REALTIME */
    atomic_int stop;
    atomic_uint running;
    _Atomic uint64_t recorded;
    _Atomic uint64_t sent; /* with cfg.sends_bounded: requests given to connections */
    _Atomic int64_t stop_at;
    pthread_mutex_t mu;
    struct sec_slot *secs;
    size_t nsecs_cap;
    _Atomic uint64_t last_req;
    _Atomic int64_t last_p99;
    _Atomic int64_t last_sec;
    bool joined;
    bool secs_taken; /* keep_second_hdrs: lg_wait moved the histograms out */
    SSL_CTX *ssl_ctx;
    bool sni; /* send SNI (the name is not an IP address) */
};

static const char *const err_names[LG_ERR_COUNT] = {
    "connect", "timeout", "read", "write", "status", "protocol", "tls",
};

const char *lg_err_name(enum lg_err e)
{
    return (unsigned)e < LG_ERR_COUNT ? err_names[e] : "unknown";
}

/* ---- random numbers and arrivals ---- */

static double normal(struct rng *s)
{
    return sqrt(-2.0 * log(rng_unit_open(s))) * cos(2.0 * M_PI * rng_unit_open(s));
}

/* Gamma(k, 1): Marsaglia & Tsang; k < 1 through Gamma(k + 1) * U^(1/k). */
static double gamma_draw(struct rng *s, double k)
{
    if (k < 1.0)
        return gamma_draw(s, k + 1.0) * pow(rng_unit_open(s), 1.0 / k);
    double d = k - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = normal(s), v = 1.0 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = rng_unit_open(s);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v))
            return d * v;
    }
}

/* Per-thread rate at time t (linear ramp from ramp_from). */
static double rate_at(const struct lg_run *r, int64_t t)
{
    const struct lg_config *c = &r->cfg;
    double rate = c->rate;
    if (c->ramp_from > 0 && c->ramp_ns > 0 && t - r->t0 < c->ramp_ns)
        rate = c->ramp_from + (c->rate - c->ramp_from) * (double)(t - r->t0) / (double)c->ramp_ns;
    return rate / r->nw;
}

static int64_t next_gap(struct worker *w, int64_t t)
{
    const struct lg_config *c = &w->run->cfg;
    double mean = 1e9 / rate_at(w->run, t), g = mean;
    if (c->arrival == LG_POISSON)
        g = -log(rng_unit_open(&w->rng)) * mean;
    else if (c->arrival == LG_GAMMA)
        g = gamma_draw(&w->rng, c->burstiness) / c->burstiness * mean;
    return g < 1.0 ? 1 : (int64_t)g;
}

/* ---- per-second series ---- */

static struct sec_slot *sec_slot_get(struct lg_run *r, int64_t sec)
{
    if ((size_t)sec >= SECS_MAX)
        return NULL;
    if ((size_t)sec >= r->nsecs_cap) {
        size_t n = r->nsecs_cap ? r->nsecs_cap : 64;
        while (n <= (size_t)sec)
            n *= 2;
        r->secs = xrealloc(r->secs, n * sizeof(*r->secs));
        memset(r->secs + r->nsecs_cap, 0, (n - r->nsecs_cap) * sizeof(*r->secs));
        r->nsecs_cap = n;
    }
    return &r->secs[sec];
}

static void sec_finalize(struct lg_run *r, int64_t sec, struct sec_slot *s)
{
    s->final = true;
    s->p50 = s->p99 = -1;
    if (s->h && hdr_count(s->h) > 0) {
        s->p50 = hdr_percentile(s->h, 50);
        s->p99 = hdr_percentile(s->h, 99);
    }
    if (!r->cfg.keep_second_hdrs) {
        hdr_free(s->h);
        s->h = NULL;
    }
    if (sec >= atomic_load(&r->last_sec)) {
        atomic_store(&r->last_req, s->req);
        atomic_store(&r->last_p99, s->p99);
        atomic_store(&r->last_sec, sec);
    }
}

/* Adds the worker's current second to the run's series and resets it. */
static void sec_flush(struct worker *w)
{
    struct lg_run *r = w->run;
    pthread_mutex_lock(&r->mu);
    struct sec_slot *s = sec_slot_get(r, w->cur_sec);
    if (s && !s->final) {
        s->req += w->sec_req;
        s->err += w->sec_err;
        s->bytes += w->sec_bytes;
        if (hdr_count(w->sec_h) > 0) {
            if (!s->h && hdr_init(1, HDR_HIGHEST, 2, &s->h) < 0)
                s->h = NULL;
            if (s->h)
                hdr_merge(s->h, w->sec_h);
        }
        if (++s->contrib == r->nw)
            sec_finalize(r, w->cur_sec, s);
    }
    pthread_mutex_unlock(&r->mu);
    hdr_reset(w->sec_h);
    w->sec_req = w->sec_err = w->sec_bytes = 0;
}

static void sec_advance(struct worker *w, int64_t t)
{
    if (t < w->run->ws)
        return;
    int64_t idx = (t - w->run->ws) / NS_PER_S;
    while (w->cur_sec < idx) {
        sec_flush(w);
        w->cur_sec++;
    }
}

/* ---- recording ---- */

static void request_stop(struct lg_run *r, int64_t t)
{
    int64_t z = 0;
    atomic_compare_exchange_strong(&r->stop_at, &z, t);
    atomic_store(&r->stop, 1);
}

/* Whether a completion at t is in the measured window (and within max_requests). */
static bool window_take(struct worker *w, int64_t t)
{
    struct lg_run *r = w->run;
    if (t < r->ws || t >= r->end || atomic_load_explicit(&r->stop, memory_order_relaxed))
        return false;
    if (r->cfg.max_requests) {
        uint64_t n = atomic_fetch_add(&r->recorded, 1);
        if (n >= r->cfg.max_requests)
            return false;
        if (n + 1 == r->cfg.max_requests)
            request_stop(r, t);
    }
    sec_advance(w, t);
    w->requests++;
    w->sec_req++;
    atomic_store_explicit(&w->a_req, w->requests, memory_order_relaxed);
    return true;
}

static void record_error(struct worker *w, enum lg_err e, int64_t t)
{
    if (!window_take(w, t))
        return;
    w->errors[e]++;
    w->sec_err++;
    atomic_fetch_add_explicit(&w->a_err, 1, memory_order_relaxed);
}

static void record_response(struct worker *w, struct conn *c, int64_t e)
{
    int status = c->p.status, cls = status / 100;
    int want = w->run->cfg.expect_status;
    bool ok = want ? status == want : (cls == 2 || cls == 3);
    if (!window_take(w, e))
        return;
    w->status_class[cls >= 1 && cls <= 5 ? cls : 0]++;
    if (!ok) {
        w->errors[LG_ERR_STATUS]++;
        w->sec_err++;
        atomic_fetch_add_explicit(&w->a_err, 1, memory_order_relaxed);
        return;
    }
    w->ok++;
    lg_live_record(&w->live_lat, e - c->sstar);
    hdr_record(w->lat, e - c->sstar);
    hdr_record(w->sec_h, e - c->sstar);
    hdr_record(w->svc, e - c->s);
    if (w->idl)
        hdr_record(w->idl, c->s - c->sstar);
}

/* ---- connections ---- */

static void conn_open(struct conn *c, int64_t now);
static void conn_ready(struct conn *c, int64_t now, bool after_req);

static void ep_set(struct conn *c, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0u), .data.ptr = c};
    if (c->want_out != out)
        epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

static void idle_remove(struct conn *c)
{
    struct worker *w = c->w;
    struct conn *last = w->idle[--w->nidle];
    w->idle[c->idle_pos] = last;
    last->idle_pos = c->idle_pos;
}

static void conn_close(struct conn *c)
{
    if (c->st == CS_IDLE)
        idle_remove(c);
    SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0) {
        epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->len = 0;
    c->want_out = false;
    if (c->st != CS_THINK)
        c->st = CS_CLOSED;
}

static void stream_done(struct conn *c, bool ok, enum lg_err e, int64_t t)
{
    const struct lg_stream_ops *so = c->w->run->cfg.stream;
    if (so && so->on_done)
        so->on_done(c->w->run->cfg.stream_ud, &c->rs, ok, e, t);
    c->rs = NULL;
}

/* The current request failed: count it, close, reconnect. */
static void conn_fail(struct conn *c, enum lg_err e, int64_t t)
{
    if (c->st == CS_BUSY) {
        record_error(c->w, e, t);
        stream_done(c, false, e, t);
    }
    conn_close(c);
    conn_open(c, t);
}

static void connect_failed(struct conn *c, int64_t t)
{
    record_error(c->w, LG_ERR_CONNECT, t);
    conn_close(c);
    c->fails++;
    c->deadline = t + (c->fails > 1 ? BACKOFF_NS : 0);
    if (c->fails <= 1)
        conn_open(c, t);
}

static void tls_step(struct conn *c, int64_t now);

static void connected(struct conn *c, int64_t now)
{
    if (c->w->run->ssl_ctx && !c->ssl) {
        tls_step(c, now);
        return;
    }
    c->fails = 0;
    c->w->connects++;
    ep_set(c, false);
    c->st = CS_CLOSED; /* conn_ready decides */
    conn_ready(c, now, false);
}

static void conn_open(struct conn *c, int64_t now)
{
    const struct lg_run *r = c->w->run;
    int one = 1;
    c->st = CS_CLOSED;
    c->deadline = now + BACKOFF_NS;
    c->fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { /* out of descriptors or memory: retry after the back-off */
        record_error(c->w, LG_ERR_CONNECT, now);
        c->fails++;
        return;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(c->w->ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->want_out = true;
    c->st = CS_CONNECTING;
    c->deadline = r->cfg.connect_timeout_ns ? now + r->cfg.connect_timeout_ns : INT64_MAX;
    if (connect(c->fd, (const struct sockaddr *)&r->addr, r->alen) == 0)
        connected(c, now);
    else if (errno != EINPROGRESS)
        connect_failed(c, now);
}

/* ---- TLS (certificates are verified only with tls_verify: a load generator
 * measures, it does not authenticate; SNI is sent for names) ---- */

static void tls_failed(struct conn *c, int64_t t)
{
    record_error(c->w, LG_ERR_TLS, t);
    conn_close(c);
    c->fails++;
    c->deadline = t + BACKOFF_NS;
}

/* The name the certificate must carry: a DNS name, or an IP address. */
static bool tls_expect_name(SSL *ssl, const char *name, bool is_dns)
{
    if (is_dns)
        return SSL_set1_host(ssl, name) == 1;
    return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
}

/* Starts or continues the handshake; calls connected() when it is done. */
static void tls_step(struct conn *c, int64_t now)
{
    const struct lg_run *r = c->w->run;
    if (!c->ssl) {
        c->ssl = SSL_new(r->ssl_ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
            tls_failed(c, now);
            return;
        }
        const char *name = r->cfg.sni ? r->cfg.sni : r->cfg.host;
        if (r->sni)
            SSL_set_tlsext_host_name(c->ssl, name);
        if (r->cfg.tls_verify && !tls_expect_name(c->ssl, name, r->sni)) {
            tls_failed(c, now);
            return;
        }
        SSL_set_connect_state(c->ssl);
        c->st = CS_HANDSHAKE;
    }
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        c->st = CS_CONNECTING;
        connected(c, now);
        return;
    }
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        ep_set(c, false);
    else if (e == SSL_ERROR_WANT_WRITE)
        ep_set(c, true);
    else
        tls_failed(c, now);
}

/* read()/write() through TLS when it is on: > 0 bytes, 0 EOF, -1 with errno
 * (EAGAIN: try later; EPROTO: a TLS failure). */
static ssize_t io_read(struct conn *c, void *buf, size_t n)
{
    if (!c->ssl)
        return read(c->fd, buf, n);
    ERR_clear_error();
    errno = 0;
    int rc = SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
    if (rc > 0)
        return rc;
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        errno = EAGAIN;
    else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
        return 0;
    else
        errno = e == SSL_ERROR_SSL ? EPROTO : (errno ? errno : EIO);
    return -1;
}

static ssize_t io_write(struct conn *c, const void *buf, size_t n)
{
    if (!c->ssl)
        return send(c->fd, buf, n, MSG_NOSIGNAL);
    ERR_clear_error();
    errno = 0;
    int rc = SSL_write(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
    if (rc > 0)
        return rc;
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        errno = EAGAIN;
    else
        errno = e == SSL_ERROR_SSL ? EPROTO : (errno ? errno : EIO);
    return -1;
}

/* Writes what is left of the request; false when the connection failed. */
static bool conn_write(struct conn *c)
{
    while (c->wpos < c->req_len) {
        ssize_t n = io_write(c, c->req + c->wpos, c->req_len - c->wpos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            ep_set(c, true);
            return true;
        }
        if (n <= 0) {
            conn_fail(c, n < 0 && errno == EPROTO ? LG_ERR_TLS : LG_ERR_WRITE, mono_ns());
            return false;
        }
        c->wpos += (size_t)n;
        if (c->s >= c->w->run->ws && c->s < c->w->run->end) {
            c->w->bytes_out += (uint64_t)n;
            atomic_fetch_add_explicit(&c->w->a_bytes_out, (uint64_t)n, memory_order_relaxed);
        }
    }
    if (c->want_out)
        ep_set(c, false);
    return true;
}

/* The bytes of the next request: the fixed one, or one from make_request
 * (false when it failed: the run stops). */
static bool next_request(struct conn *c)
{
    struct worker *w = c->w;
    const struct lg_config *cfg = &w->run->cfg;
    if (!cfg->make_request) {
        c->req = cfg->request;
        c->req_len = cfg->request_len;
        return true;
    }
    c->wb.len = 0;
    uint64_t n = w->seq++ * w->run->nw + w->idx;
    int rc = cfg->make_request(cfg->make_request_ud, w->idx, n, &w->req_rng, &c->wb);
    if (rc != 0 || c->wb.len == 0) {
        w->err = rc ? rc : -EINVAL;
        request_stop(w->run, mono_ns());
        return false;
    }
    c->req = c->wb.s;
    c->req_len = c->wb.len;
    return true;
}

static void conn_send(struct conn *c, int64_t sstar)
{
    if (!next_request(c)) {
        c->st = CS_CLOSED; /* the run is stopping */
        return;
    }
    c->st = CS_BUSY;
    c->wpos = 0;
    c->got_first = false;
    c->rs = NULL;
    /* a HEAD response has no body: per request, as make_request may mix methods */
    http_resp_reset(&c->p, c->w->run->cfg.head || (c->req_len >= 5 && !memcmp(c->req, "HEAD ", 5)));
    c->s = mono_ns();
    c->sstar = sstar ? sstar : c->s;
    const struct lg_stream_ops *so = c->w->run->cfg.stream;
    if (so && so->on_sent)
        so->on_sent(c->w->run->cfg.stream_ud, &c->rs, c->sstar, c->s);
    (void)conn_write(c);
}

static int64_t pend_pop(struct worker *w)
{
    int64_t v = w->pend[w->pend_head];
    w->pend_head = (w->pend_head + 1) % w->pend_cap;
    w->pend_n--;
    return v;
}

static void pend_push(struct worker *w, int64_t v)
{
    if (w->pend_n == w->pend_cap) {
        if (w->pend_cap >= PEND_MAX) {
            w->unsent++; /* over 16M queued: the schedule is hopeless; counted, never hidden */
            return;
        }
        int64_t *n = xmalloc(2 * w->pend_cap * sizeof(*n));
        for (size_t i = 0; i < w->pend_n; i++)
            n[i] = w->pend[(w->pend_head + i) % w->pend_cap];
        free(w->pend);
        w->pend = n;
        w->pend_head = 0;
        w->pend_cap *= 2;
    }
    w->pend[(w->pend_head + w->pend_n) % w->pend_cap] = v;
    w->pend_n++;
}

/* A connected connection is free: give it work or park it. */
static void conn_ready(struct conn *c, int64_t now, bool after_req)
{
    struct worker *w = c->w;
    const struct lg_config *cfg = &w->run->cfg;
    /* the run is stopping (its last request was recorded): nothing more to send */
    bool stopping = atomic_load_explicit(&w->run->stop, memory_order_relaxed);
    if (cfg->model == LG_CLOSED && !stopping && cfg->sends_bounded &&
        atomic_fetch_add_explicit(&w->run->sent, 1, memory_order_relaxed) >= cfg->max_requests)
        stopping = true; /* every request is out: wait for their answers */
    if (cfg->model == LG_CLOSED && !stopping) {
        if (after_req && cfg->think_ns > 0) {
            c->st = CS_THINK;
            c->wake = now + cfg->think_ns;
            w->think[(w->think_head + w->think_n++) % w->nconns] = c;
            return;
        }
        conn_send(c, 0);
        return;
    }
    if (w->pend_n > 0 && !stopping) {
        conn_send(c, pend_pop(w));
        return;
    }
    c->st = CS_IDLE;
    c->idle_pos = w->nidle;
    w->idle[w->nidle++] = c;
}

/* extra: bytes followed the response (nothing was asked for them). */
static void response_done(struct conn *c, int64_t t, bool extra)
{
    struct worker *w = c->w;
    record_response(w, c, t);
    stream_done(c, true, LG_ERR_COUNT, t);
    bool keep = http_resp_keep_alive(&c->p);
    if (!keep || extra) {
        c->st = CS_CLOSED;
        conn_close(c);
        conn_open(c, t);
        return;
    }
    conn_ready(c, t, true);
}

/* Keeps the unparsed tail for the next read; false when it is too long. */
static bool carry_keep(struct conn *c, const char *tail, size_t n)
{
    c->len = 0;
    if (n == 0)
        return true;
    if (n > CARRY_MAX)
        return false;
    if (n > c->cap) {
        size_t cap = c->cap ? c->cap : 256;
        while (cap < n)
            cap *= 2;
        free(c->buf);
        c->buf = xmalloc(cap);
        c->cap = cap;
    }
    memcpy(c->buf, tail, n);
    c->len = n;
    return true;
}

/* Runs the parser over data (the carry, then the bytes just read); false when
 * the response completed or the connection went away. */
static bool conn_parse(struct conn *c, const char *data, size_t len, int64_t t)
{
    const struct lg_stream_ops *so = c->w->run->cfg.stream;
    void *ud = c->w->run->cfg.stream_ud;
    size_t off = 0;
    for (;;) {
        size_t used = 0;
        struct http_resp_events ev;
        int rc = http_resp_feed(&c->p, data + off, len - off, &used, &ev);
        if (rc < 0) {
            conn_fail(c, LG_ERR_PROTOCOL, t);
            return false;
        }
        off += used;
        if (rc == HTTP_EV_NONE)
            break;
        if (rc == HTTP_EV_HEADERS && so && so->on_headers)
            so->on_headers(ud, &c->rs, c->p.status, t);
        else if (rc == HTTP_EV_BODY && so && so->on_body)
            so->on_body(ud, &c->rs, ev.data, ev.len, t);
        else if (rc == HTTP_EV_DONE) {
            c->len = 0;
            response_done(c, t, off < len);
            return false;
        }
    }
    if (!carry_keep(c, data + off, len - off)) {
        conn_fail(c, LG_ERR_PROTOCOL, t);
        return false;
    }
    return true;
}

static void conn_eof(struct conn *c, int64_t t)
{
    if (c->st != CS_BUSY) { /* the server closed an idle connection */
        conn_close(c);
        if (c->st == CS_CLOSED)
            conn_open(c, t);
        return;
    }
    int rc = http_resp_eof(&c->p);
    if (rc == HTTP_EV_DONE) {
        c->len = 0;
        response_done(c, t, false);
        return;
    }
    conn_fail(c, rc == -HTTP_E_EOF || rc == -HTTP_E_CLOSED ? LG_ERR_READ : LG_ERR_PROTOCOL, t);
}

/* One read into the worker's buffer, after the connection's carried tail:
 * idle connections hold no buffer, and large bodies arrive 64 KiB a read. */
static void conn_read(struct conn *c)
{
    char *buf = c->w->rbuf;
    size_t have = c->len;
    if (have)
        memcpy(buf, c->buf, have);
    ssize_t n = io_read(c, buf + have, RBUF_SIZE + CARRY_MAX - have);
    int64_t t = mono_ns();
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        conn_fail(c, LG_ERR_READ, t);
        return;
    }
    if (n == 0) {
        conn_eof(c, t);
        return;
    }
    if (c->st != CS_BUSY) { /* bytes nobody asked for */
        conn_close(c);
        if (c->st == CS_CLOSED)
            conn_open(c, t);
        return;
    }
    c->got_first = true;
    if (t >= c->w->run->ws && t < c->w->run->end) {
        c->w->bytes_in += (uint64_t)n;
        c->w->sec_bytes += (uint64_t)n;
        atomic_fetch_add_explicit(&c->w->a_bytes_in, (uint64_t)n, memory_order_relaxed);
    }
    if (conn_parse(c, buf, have + (size_t)n, t) && c->ssl && SSL_pending(c->ssl) > 0)
        conn_read(c); /* TLS may hold decrypted bytes epoll cannot see */
}

static void conn_event(struct conn *c, uint32_t evs)
{
    if (c->st == CS_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof(err);
        int64_t t = mono_ns();
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err != 0 ||
            (evs & (EPOLLERR | EPOLLHUP)))
            connect_failed(c, t);
        else if (evs & EPOLLOUT)
            connected(c, t);
        return;
    }
    if (c->st == CS_HANDSHAKE) {
        tls_step(c, mono_ns());
        return;
    }
    if ((evs & EPOLLOUT) && c->st == CS_BUSY && c->wpos < c->req_len) {
        if (!conn_write(c))
            return;
    }
    if (evs & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_read(c);
}

/* ---- worker loop ---- */

static void scan_timeouts(struct worker *w, int64_t now)
{
    const struct lg_config *cfg = &w->run->cfg;
    for (unsigned i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->st == CS_CLOSED && c->fd < 0 && now >= c->deadline)
            conn_open(c, now);
        else if ((c->st == CS_CONNECTING || c->st == CS_HANDSHAKE) && now >= c->deadline)
            connect_failed(c, now);
        else if (c->st == CS_BUSY) {
            bool fb = cfg->first_byte_timeout_ns && !c->got_first &&
                      now - c->s >= cfg->first_byte_timeout_ns;
            bool rq = cfg->request_timeout_ns && now - c->s >= cfg->request_timeout_ns;
            if (fb || rq) {
                conn_fail(c, LG_ERR_TIMEOUT, now);
            }
        }
    }
}

static void run_due(struct worker *w, int64_t now)
{
    const struct lg_config *cfg = &w->run->cfg;
    if (cfg->model == LG_OPEN) {
        while (w->next_due <= now) {
            int64_t due = w->next_due;
            w->next_due += next_gap(w, due);
            if (w->nidle > 0) {
                struct conn *c = w->idle[--w->nidle];
                conn_send(c, due);
            } else
                pend_push(w, due);
        }
        return;
    }
    while (w->think_n > 0) {
        struct conn *c = w->think[w->think_head];
        if (c->wake > now)
            break;
        w->think_head = (w->think_head + 1) % w->nconns;
        w->think_n--;
        c->st = CS_CLOSED;
        if (c->fd >= 0)
            conn_send(c, 0);
        else
            conn_open(c, now);
    }
}

static int64_t next_wake(const struct worker *w)
{
    int64_t t = w->next_scan;
    if (w->run->end < t)
        t = w->run->end;
    if (w->run->cfg.model == LG_OPEN && w->next_due < t)
        t = w->next_due;
    if (w->think_n > 0 && w->think[w->think_head]->wake < t)
        t = w->think[w->think_head]->wake;
    int64_t nsec = w->run->ws + (w->cur_sec + 1) * NS_PER_S;
    return nsec < t ? nsec : t;
}

/* Blocks in epoll until an event or the deadline `until`. With busy_poll_ns
 * set, it first polls without sleeping for up to that long (never past
 * `until`): a thread that sleeps pays the scheduler's wake-up latency on the
 * next response, which would be added to the measured latency and, on
 * virtual machines especially, cost more than the poll. epoll_pwait2
 * (Linux 5.11+) gives nanosecond timeouts; epoll_wait with the timeout
 * rounded up to a millisecond where the kernel lacks it. */
static int wait_events(struct worker *w, struct epoll_event *evs, int64_t until)
{
    static atomic_bool no_pwait2;
    int64_t spin = w->run->cfg.busy_poll_ns;
    if (spin > 0) {
        int64_t now = mono_ns(), stop = now + spin < until ? now + spin : until;
        do {
            int n = epoll_wait(w->ep, evs, EV_BATCH, 0);
            if (n != 0)
                return n;
            now = mono_ns();
        } while (now < stop);
    }
    int64_t d = until - mono_ns();
    if (d < 0)
        d = 0;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = {.tv_sec = d / NS_PER_S, .tv_nsec = d % NS_PER_S};
        int n = epoll_pwait2(w->ep, evs, EV_BATCH, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store(&no_pwait2, true);
    }
    int64_t ms = (d + 999999) / 1000000;
    return epoll_wait(w->ep, evs, EV_BATCH, ms > INT32_MAX ? INT32_MAX : (int)ms);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct lg_run *r = w->run;
    struct epoll_event evs[EV_BATCH];
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE); /* OpenSSL writes with write(): a closed peer must not kill us */
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    int64_t now = mono_ns();
    for (unsigned i = 0; i < w->nconns; i++)
        conn_open(&w->conns[i], now);
    w->next_due = r->t0 + next_gap(w, r->t0);
    w->next_scan = now + SCAN_NS;
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        now = mono_ns();
        if (now >= r->end) {
            request_stop(r, r->end);
            break;
        }
        sec_advance(w, now);
        if (now >= w->next_scan) {
            scan_timeouts(w, now);
            w->next_scan = now + SCAN_NS;
        }
        run_due(w, now);
        int n = wait_events(w, evs, next_wake(w));
        for (int i = 0; i < n; i++)
            conn_event(evs[i].data.ptr, evs[i].events);
    }
    sec_flush(w);
    for (unsigned i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->st == CS_BUSY)
            stream_done(c, false, LG_ERR_COUNT, now);
        SSL_free(c->ssl);
        c->ssl = NULL;
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
    }
    atomic_fetch_sub(&r->running, 1);
    return NULL;
}

/* ---- setup and results ---- */

static int check_config(const struct lg_config *c, char *errbuf, size_t errlen)
{
    const char *m = NULL;
    if (!c->host || !*c->host || c->port == 0)
        m = "a target host and port are needed";
    else if (!c->make_request && (!c->request || c->request_len == 0))
        m = "the request is empty";
    else if (c->threads < 1 || c->threads > 1024)
        m = "threads must be 1..1024";
    else if (c->connections < c->threads || c->connections > 1000000)
        m = "connections must be at least threads (and at most 1000000)";
    else if (c->duration_ns <= 0 && c->max_requests == 0)
        m = "a duration or a request count is needed";
    else if (c->model == LG_OPEN && !(c->rate > 0 && c->rate < 1e9))
        m = "open loop needs a rate above 0";
    else if (c->model == LG_OPEN && c->ramp_from < 0)
        m = "ramp start rate must not be negative";
    else if (c->arrival == LG_GAMMA && !(c->burstiness > 0 && c->burstiness < 1e6))
        m = "gamma arrivals need a burstiness above 0";
    else if (c->hdr_sigfigs < 0 || c->hdr_sigfigs > 5)
        m = "histogram significant digits must be 1..5";
    else if (c->warmup_ns < 0 || c->think_ns < 0 || c->connect_timeout_ns < 0 ||
             c->first_byte_timeout_ns < 0 || c->request_timeout_ns < 0 || c->busy_poll_ns < 0)
        m = "durations must not be negative";
    if (m)
        snprintf(errbuf, errlen, "%s", m);
    return m ? -EINVAL : 0;
}

/* Raises the soft descriptor limit to what `connections` need (plus a margin
 * for the rest of sonde), and the hard one too where the process may. */
static int ensure_fds(unsigned connections, char *errbuf, size_t errlen)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)connections + FD_MARGIN;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
        return 0;
    struct rlimit want = {need, rl.rlim_max >= need ? rl.rlim_max : need};
    if (setrlimit(RLIMIT_NOFILE, &want) == 0)
        return 0;
    snprintf(errbuf, errlen,
             "%u connections need %llu file descriptors; the limit is %llu (hard %llu): "
             "raise it (ulimit -n, or LimitNOFILE= for a service)",
             connections, (unsigned long long)need, (unsigned long long)rl.rlim_cur,
             (unsigned long long)rl.rlim_max);
    return -EMFILE;
}

static int resolve(struct lg_run *r, char *errbuf, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)r->cfg.port);
    int rc = getaddrinfo(r->cfg.host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(errbuf, errlen, "cannot resolve %s: %s", r->cfg.host, gai_strerror(rc));
        return -EHOSTUNREACH;
    }
    memcpy(&r->addr, ai->ai_addr, ai->ai_addrlen);
    r->alen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static int tls_init(struct lg_run *r, char *errbuf, size_t errlen)
{
    unsigned char tmp[16];
    r->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!r->ssl_ctx) {
        snprintf(errbuf, errlen, "cannot create a TLS context");
        return -ENOMEM;
    }
    SSL_CTX_set_verify(r->ssl_ctx, r->cfg.tls_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (r->cfg.tls_verify) {
        int ok = r->cfg.ca_file ? SSL_CTX_load_verify_locations(r->ssl_ctx, r->cfg.ca_file, NULL)
                                : SSL_CTX_set_default_verify_paths(r->ssl_ctx);
        if (ok != 1) {
            char why[160];
            ERR_error_string_n(ERR_get_error(), why, sizeof(why));
            snprintf(errbuf, errlen, "cannot load trusted certificates from %s: %s",
                     r->cfg.ca_file ? r->cfg.ca_file : "the system's default paths", why);
            return -EINVAL;
        }
    }
    /* RELEASE_BUFFERS: an idle connection holds no TLS record buffers */
    SSL_CTX_set_mode(r->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                     SSL_MODE_RELEASE_BUFFERS);
    r->sni = r->cfg.sni || (inet_pton(AF_INET, r->cfg.host, tmp) != 1 &&
                            inet_pton(AF_INET6, r->cfg.host, tmp) != 1);
    return 0;
}

static int worker_init(struct lg_run *r, struct worker *w, unsigned idx, unsigned nconns)
{
    int sig = r->cfg.hdr_sigfigs ? r->cfg.hdr_sigfigs : 3;
    uint64_t seed = r->cfg.seed + 0x51ed27 * (idx + 1);
    w->run = r;
    w->idx = idx;
    w->nconns = nconns;
    rng_seed(&w->rng, seed);
    rng_seed(&w->req_rng, seed ^ 0x7e3a9c1d5b2f4e68ULL);
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->ep < 0)
        return -errno;
    w->conns = xcalloc(nconns, sizeof(*w->conns));
    w->rbuf = xmalloc(RBUF_SIZE + CARRY_MAX);
    w->idle = xcalloc(nconns, sizeof(*w->idle));
    w->think = xcalloc(nconns, sizeof(*w->think));
    w->pend_cap = PEND_INIT;
    w->pend = xcalloc(w->pend_cap, sizeof(*w->pend));
    for (unsigned i = 0; i < nconns; i++) {
        struct conn *c = &w->conns[i];
        c->w = w;
        c->fd = -1;
        http_resp_init(&c->p, NULL, r->cfg.head);
    }
    if (hdr_init(1, HDR_HIGHEST, sig, &w->lat) < 0 || hdr_init(1, HDR_HIGHEST, sig, &w->svc) < 0 ||
        hdr_init(1, HDR_HIGHEST, 2, &w->sec_h) < 0)
        return -EINVAL;
    if (r->cfg.model == LG_OPEN && hdr_init(1, HDR_HIGHEST, sig, &w->idl) < 0)
        return -EINVAL;
    return 0;
}

static void worker_free(struct worker *w)
{
    for (unsigned i = 0; i < w->nconns; i++) {
        SSL_free(w->conns[i].ssl);
        if (w->conns[i].fd >= 0)
            close(w->conns[i].fd);
        free(w->conns[i].buf);
        sbuf_free(&w->conns[i].wb);
    }
    if (w->ep >= 0)
        close(w->ep);
    free(w->conns);
    free(w->rbuf);
    free(w->idle);
    free(w->think);
    free(w->pend);
    hdr_free(w->lat);
    hdr_free(w->svc);
    hdr_free(w->idl);
    hdr_free(w->sec_h);
}

int lg_start(const struct lg_config *cfg, struct lg_run **out, char *errbuf, size_t errlen)
{
    int rc = check_config(cfg, errbuf, errlen);
    if (rc < 0)
        return rc;
    struct lg_run *r = xcalloc(1, sizeof(*r));
    r->cfg = *cfg;
    r->cfg.host = xstrdup(cfg->host);
    r->cfg.sni = xstrdup(cfg->sni);
    r->cfg.ca_file = xstrdup(cfg->ca_file);
    r->cfg.request = NULL;
    if (cfg->request && cfg->request_len) {
        r->cfg.request = xmalloc(cfg->request_len);
        memcpy(r->cfg.request, cfg->request, cfg->request_len);
    }
    pthread_mutex_init(&r->mu, NULL);
    r->nw = cfg->threads;
    r->w = xcalloc(r->nw, sizeof(*r->w));
    for (unsigned i = 0; i < r->nw; i++)
        r->w[i].ep = -1;
    atomic_store(&r->last_p99, -1);
    atomic_store(&r->last_sec, -1);
    rc = ensure_fds(cfg->connections, errbuf, errlen);
    if (rc == 0)
        rc = resolve(r, errbuf, errlen);
    if (rc == 0 && cfg->tls)
        rc = tls_init(r, errbuf, errlen);
    for (unsigned i = 0; rc == 0 && i < r->nw; i++) {
        unsigned n = cfg->connections / r->nw + (i < cfg->connections % r->nw);
        rc = worker_init(r, &r->w[i], i, n);
        if (rc < 0)
            snprintf(errbuf, errlen, "cannot set up worker %u: %s", i, strerror(-rc));
    }
    if (rc < 0)
        goto out;
    int64_t wall0 = wall_ns();
    r->t0 = mono_ns();
    r->ws = r->t0 + cfg->warmup_ns;
    r->ws_wall = wall0 + cfg->warmup_ns;
    r->end = cfg->duration_ns > 0 ? r->ws + cfg->duration_ns : INT64_MAX;
    atomic_store(&r->running, r->nw);
    for (unsigned i = 0; i < r->nw; i++) {
        rc = -pthread_create(&r->w[i].th, NULL, worker_main, &r->w[i]);
        if (rc < 0) {
            snprintf(errbuf, errlen, "cannot start a worker thread: %s", strerror(-rc));
            atomic_store(&r->running, i);
            goto out;
        }
        r->w[i].started = true;
    }
out:
    if (rc < 0) {
        lg_free(r); /* stops and joins the workers already started */
        return rc;
    }
    *out = r;
    return 0;
}

bool lg_done(struct lg_run *run)
{
    return atomic_load(&run->running) == 0;
}

void lg_progress(struct lg_run *run, struct lg_progress *out)
{
    struct lg_progress p = {.p99_last_s = -1};
    int64_t now = mono_ns();
    p.warming_up = now < run->ws;
    p.elapsed_ns = now - run->t0;
    for (unsigned i = 0; i < run->nw; i++) {
        p.requests += atomic_load_explicit(&run->w[i].a_req, memory_order_relaxed);
        p.errors += atomic_load_explicit(&run->w[i].a_err, memory_order_relaxed);
        lg_live_read(&run->w[i].live_lat, p.lat_buckets, &p.lat_sum_s);
        p.bytes_in += atomic_load_explicit(&run->w[i].a_bytes_in, memory_order_relaxed);
        p.bytes_out += atomic_load_explicit(&run->w[i].a_bytes_out, memory_order_relaxed);
    }
    p.rate_last_s = (double)atomic_load(&run->last_req);
    p.p99_last_s = atomic_load(&run->last_p99);
    *out = p;
}

void lg_stop(struct lg_run *run)
{
    if (run)
        request_stop(run, mono_ns());
}

static struct hdr *merged(struct lg_run *r, size_t off)
{
    struct hdr *h = NULL;
    for (unsigned i = 0; i < r->nw; i++) {
        struct hdr *src = *(struct hdr **)((char *)&r->w[i] + off);
        if (!src)
            return NULL;
        if (!h && hdr_init(hdr_lowest(src), hdr_highest(src), hdr_sigfigs(src), &h) < 0)
            return NULL;
        hdr_merge(h, src);
    }
    return h;
}

static void collect_secs(struct lg_run *r, struct lg_stats *st)
{
    size_t n = (size_t)((st->window_ns + NS_PER_S - 1) / NS_PER_S);
    if (n > r->nsecs_cap)
        n = r->nsecs_cap;
    st->secs = xcalloc(n ? n : 1, sizeof(*st->secs));
    st->nsecs = n;
    for (size_t i = 0; i < n; i++) {
        struct sec_slot *s = &r->secs[i];
        if (!s->final)
            sec_finalize(r, (int64_t)i, s);
        st->secs[i] = (struct lg_second){.requests = s->req,
                                         .errors = s->err,
                                         .bytes_in = s->bytes,
                                         .p50_ns = s->p50,
                                         .p99_ns = s->p99};
        if (r->cfg.keep_second_hdrs) { /* the slot's histogram moves into the stats */
            st->secs[i].latency = s->h;
            s->h = NULL;
            if (!st->secs[i].latency && hdr_init(1, HDR_HIGHEST, 2, &st->secs[i].latency) < 0)
                st->secs[i].latency = NULL;
        }
    }
    if (r->cfg.keep_second_hdrs)
        r->secs_taken = true;
}

int lg_wait(struct lg_run *run, struct lg_stats **out)
{
    if (!run->joined) {
        for (unsigned i = 0; i < run->nw; i++)
            if (run->w[i].started)
                pthread_join(run->w[i].th, NULL);
        run->joined = true;
    }
    for (unsigned i = 0; i < run->nw; i++)
        if (run->w[i].err)
            return run->w[i].err;
    if (run->secs_taken)
        return -EALREADY;
    struct lg_stats *st = xcalloc(1, sizeof(*st));
    uint64_t dropped = 0;
    for (unsigned i = 0; i < run->nw; i++) {
        struct worker *w = &run->w[i];
        st->requests += w->requests;
        st->ok += w->ok;
        for (int e = 0; e < LG_ERR_COUNT; e++)
            st->errors[e] += w->errors[e];
        for (int k = 0; k < 6; k++)
            st->status_class[k] += w->status_class[k];
        st->bytes_in += w->bytes_in;
        st->bytes_out += w->bytes_out;
        st->connects += w->connects;
        /* due but never sent: dropped at the queue's maximum, or still queued at the end */
        st->unsent += w->unsent + w->pend_n;
        dropped += w->unsent;
    }
    st->latency = merged(run, offsetof(struct worker, lat));
    st->service = merged(run, offsetof(struct worker, svc));
    if (run->cfg.model == LG_OPEN)
        st->issue_delay = merged(run, offsetof(struct worker, idl));
    int64_t stop_at = atomic_load(&run->stop_at);
    if (stop_at == 0 || stop_at > run->end)
        stop_at = run->end;
    st->window_ns = stop_at > run->ws ? stop_at - run->ws : 0;
    st->window_start_wall_ns = run->ws_wall;
    st->achieved_rate = st->window_ns > 0 ? (double)st->requests * 1e9 / (double)st->window_ns : 0;
    st->rate_missed = (st->issue_delay && hdr_count(st->issue_delay) > 0 &&
                       hdr_percentile(st->issue_delay, 99) > 1000000) ||
                      dropped > 0;
    collect_secs(run, st);
    *out = st;
    return 0;
}

void lg_free(struct lg_run *run)
{
    if (!run)
        return;
    if (!run->joined) {
        lg_stop(run);
        for (unsigned i = 0; i < run->nw; i++)
            if (run->w[i].started)
                pthread_join(run->w[i].th, NULL);
    }
    for (unsigned i = 0; i < run->nw; i++)
        worker_free(&run->w[i]);
    for (size_t i = 0; i < run->nsecs_cap; i++)
        hdr_free(run->secs[i].h);
    free(run->secs);
    free(run->w);
    free(run->cfg.host);
    free(run->cfg.sni);
    free(run->cfg.ca_file);
    free(run->cfg.request);
    SSL_CTX_free(run->ssl_ctx);
    pthread_mutex_destroy(&run->mu);
    free(run);
}

void lg_stats_free(struct lg_stats *st)
{
    if (!st)
        return;
    hdr_free(st->latency);
    hdr_free(st->service);
    hdr_free(st->issue_delay);
    for (size_t i = 0; i < st->nsecs; i++)
        hdr_free(st->secs[i].latency);
    free(st->secs);
    for (size_t i = 0; i < st->nextra; i++) {
        free(st->extra[i].name);
        hdr_free(st->extra[i].hdr);
        free(st->extra[i].secs);
    }
    free(st->extra);
    free(st);
}

bool lg_extra_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= LG_EXTRA_NAME_MAX &&
           strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* A new extra of that name and kind at the end of st's, or NULL when the name
 * is invalid or used, or st holds LG_EXTRAS_MAX already. */
static struct lg_extra *extra_new(struct lg_stats *st, const char *name, enum lg_extra_kind kind)
{
    if (!lg_extra_name_ok(name) || st->nextra >= LG_EXTRAS_MAX)
        return NULL;
    for (size_t i = 0; i < st->nextra; i++)
        if (!strcmp(st->extra[i].name, name))
            return NULL;
    st->extra = xrealloc(st->extra, (st->nextra + 1) * sizeof(*st->extra));
    struct lg_extra *x = &st->extra[st->nextra++];
    *x = (struct lg_extra){.name = xstrdup(name), .kind = kind};
    return x;
}

int lg_extra_add_counter(struct lg_stats *st, const char *name, uint64_t count)
{
    struct lg_extra *x = extra_new(st, name, LG_EXTRA_COUNTER);
    if (!x)
        return -EINVAL;
    x->count = count;
    return 0;
}

int lg_extra_add_hdr(struct lg_stats *st, const char *name, struct hdr *h)
{
    struct lg_extra *x = h ? extra_new(st, name, LG_EXTRA_HDR) : NULL;
    if (!x) {
        hdr_free(h);
        return -EINVAL;
    }
    x->hdr = h;
    return 0;
}

int lg_extra_add_secs(struct lg_stats *st, const char *name, const uint64_t *v, size_t n)
{
    struct lg_extra *x = extra_new(st, name, LG_EXTRA_SECS);
    if (!x)
        return -EINVAL;
    x->secs = xcalloc(n ? n : 1, sizeof(*x->secs));
    if (n)
        memcpy(x->secs, v, n * sizeof(*v));
    x->nsecs = n;
    return 0;
}

int lg_extra_add_bound(struct lg_stats *st, const char *name, enum lg_extra_kind kind,
                       int64_t value)
{
    struct lg_extra *x =
        kind == LG_EXTRA_MIN || kind == LG_EXTRA_MAX ? extra_new(st, name, kind) : NULL;
    if (!x)
        return -EINVAL;
    x->value = value;
    return 0;
}

const struct lg_extra *lg_extra_find(const struct lg_stats *st, const char *name,
                                     enum lg_extra_kind kind)
{
    for (size_t i = 0; st && i < st->nextra; i++)
        if (st->extra[i].kind == kind && !strcmp(st->extra[i].name, name))
            return &st->extra[i];
    return NULL;
}

uint64_t lg_extra_count(const struct lg_stats *st, const char *name)
{
    const struct lg_extra *x = lg_extra_find(st, name, LG_EXTRA_COUNTER);
    return x ? x->count : 0;
}

int64_t lg_extra_value(const struct lg_stats *st, const char *name, enum lg_extra_kind kind,
                       int64_t def)
{
    const struct lg_extra *x = lg_extra_find(st, name, kind);
    return x ? x->value : def;
}
