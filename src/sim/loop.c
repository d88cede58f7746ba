/* loop.c — one sonde-sim worker: an edge-triggered epoll loop, its connections,
 * request parsing, and a binary heap of per-connection deadlines.
 *
 * Each connection owns a FIFO of pending responses (at most MAX_PENDING) and a
 * ring of output segments (at most OUTQ, headers owned, bodies pointing into the
 * shared body). Only the head of the FIFO can be written (responses go out in
 * request order), so the heap holds at most one deadline per connection: the
 * head's due time, or the end of the current stall window. Reading stops while
 * the FIFO is full or more than OUT_HIGH bytes wait to be written. Streamed
 * --openai pieces that fall due together are gathered into one staged
 * segment (at most STAGE_MAX bytes) rather than one segment each. */
#include "sim/sim.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define HDR_MAX     (64 * 1024) /* request header section limit (431 beyond) */
#define RBUF_INIT   2048
#define RBUF_MAX    (HDR_MAX + 4)
#define MAX_PENDING 32
#define OUTQ        16
#define OUT_HIGH    (256 * 1024)
#define STAGE_MAX   (32 * 1024)            /* streamed pieces gathered into one segment */
#define LINGER_NS   (1000 * 1000 * 1000LL) /* lingering close: drain input for 1 s */
#define MAX_EVENTS  256
#define NEVER       INT64_MAX

enum resp_kind { R_NORMAL, R_SSE, R_RESET, R_MALFORMED, R_HANG, R_REJECT, R_OAI, R_OAI_SIMPLE };

struct job;

struct resp {
    int64_t due;  /* time the next piece may be written (before stalls) */
    int64_t base; /* SSE: scheduled time of event 0 */
    /* --kserve: the prepared response (owned, handed to the output ring when
     * due; NULL otherwise), the delay added to the --delay draw, and the
     * model of an infer whose body is being read */
    char *text;
    size_t text_len;
    int64_t extra_ns;
    int model;
    uint8_t kind;
    bool close, head, injected;
    bool ks_ok;    /* --kserve: an infer that succeeded (its times go into the metrics) */
    uint8_t fault; /* --openai: an injected ERR_TRUNCATE..ERR_STALL, or ERR_NONE */
    int status;
    int sse_next;    /* SSE: -1 before the headers, then the next event index */
    uint8_t route;   /* --openai: enum oai_route */
    const char *msg; /* --openai: error message (static) */
    struct job *job; /* --openai generation: owned, freed when popped */
};

/* --openai: one generation request, from its read to its last token. */
enum job_state { J_WAITING, J_RUNNING, J_DONE };

struct job {
    struct oai_req q;
    struct conn *c;
    struct job *prev, *next; /* the worker's admission FIFO while J_WAITING */
    unsigned slot;           /* its index in c->q */
    uint8_t state;
    int64_t t0, ta;    /* read complete, admitted */
    int64_t first_tok; /* due time of token 0 (ta + the --ttft draw) */
    int64_t last_due;  /* due time of the last piece written */
    int64_t tok_due;   /* due time of token `sent` */
    int64_t sent;      /* tokens written */
    int64_t chunk;     /* tokens in the piece now scheduled */

    /* an injected ERR_TRUNCATE..ERR_STALL (or ERR_NONE): it replaces (badjson:
     * precedes) the piece that starts at token fault_at */
    uint8_t fault;
    int64_t fault_at;
};

struct seg {
    const char *p;
    size_t len;
    char *own; /* freed when written; NULL for the shared body */
};

struct worker;

struct conn {
    struct worker *w;
    int fd;
    bool dead, eof, closing, draining, read_blocked;
    char *rbuf;
    size_t rlen, rcap, scan;
    int64_t body_left; /* request body bytes still to skip (or to buffer) */
    struct resp cur;   /* the request whose body is being skipped */
    char *bbuf;        /* --openai: the body being buffered, or NULL */
    size_t blen;
    struct resp q[MAX_PENDING];
    unsigned qhead, qlen;
    struct seg out[OUTQ];
    unsigned ohead, olen;
    size_t obytes;
    struct sbuf stage; /* --openai pieces not yet in the ring (out_stage_push) */
    int64_t wake;
    size_t heap_idx; /* SIZE_MAX: not in the heap */
    struct conn *prev, *next;
};

struct worker {
    struct sim_config *cfg;
    int ep, lfd;
    struct rng rng;
    struct conn **heap;
    size_t nheap, heap_cap;
    struct conn *conns;     /* live connections */
    struct conn *graveyard; /* closed this iteration, freed after the batch */
    int64_t accept_paused_until;
    struct sim_totals totals;
    struct job *wait_head, *wait_tail; /* --openai admission FIFO */
    struct oai_stats *stats;           /* --openai: this worker's histograms */
    struct sbuf scratch;
};

/* ---- timer heap ---------------------------------------------------------- */

static void heap_swap(struct worker *w, size_t a, size_t b)
{
    struct conn *t = w->heap[a];
    w->heap[a] = w->heap[b];
    w->heap[b] = t;
    w->heap[a]->heap_idx = a;
    w->heap[b]->heap_idx = b;
}

static void heap_fix(struct worker *w, size_t i)
{
    while (i > 0 && w->heap[(i - 1) / 2]->wake > w->heap[i]->wake) {
        heap_swap(w, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->nheap && w->heap[l]->wake < w->heap[m]->wake)
            m = l;
        if (r < w->nheap && w->heap[r]->wake < w->heap[m]->wake)
            m = r;
        if (m == i)
            return;
        heap_swap(w, i, m);
        i = m;
    }
}

static void heap_remove(struct conn *c)
{
    struct worker *w = c->w;
    size_t i = c->heap_idx;
    if (i == SIZE_MAX)
        return;
    heap_swap(w, i, --w->nheap);
    c->heap_idx = SIZE_MAX;
    c->wake = NEVER;
    if (i < w->nheap)
        heap_fix(w, i);
}

/* Sets (or clears, with NEVER) the connection's single deadline. */
static void conn_wake_at(struct conn *c, int64_t t)
{
    struct worker *w = c->w;
    if (t == NEVER) {
        heap_remove(c);
        return;
    }
    c->wake = t;
    if (c->heap_idx == SIZE_MAX) {
        if (w->nheap == w->heap_cap) {
            w->heap_cap = w->heap_cap ? 2 * w->heap_cap : 64;
            w->heap = xrealloc(w->heap, w->heap_cap * sizeof(*w->heap));
        }
        c->heap_idx = w->nheap;
        w->heap[w->nheap++] = c;
    }
    heap_fix(w, c->heap_idx);
}

/* ---- --openai admission --------------------------------------------------
 *
 * cfg->oai_running counts the requests generating now, in all workers; a
 * request takes a slot with a compare-and-swap that never lets it exceed
 * --max-concurrency. Each worker keeps a FIFO of its own waiting requests and
 * admits from its head only, so within a worker admission is first come,
 * first served. A slot is freed when a request's last token is due; the
 * freeing worker admits from its own FIFO first, then, when requests wait in
 * other workers and a slot is still free, writes the shared eventfd
 * (edge-triggered in every worker's epoll, never read) so they try too. */

static int64_t itl_sum(struct worker *w, int64_t k)
{
    const struct sim_delay *d = &w->cfg->itl;
    if (k <= 0)
        return 0;
    if (d->kind == DIST_FIXED)
        return k * d->a_ns;
    int64_t t = 0;
    for (int64_t i = 0; i < k; i++)
        t += sim_delay_draw(d, &w->rng);
    return t;
}

/* Schedules the next piece of a running job: a chunk of up to
 * --tokens-per-chunk tokens (all of them without streaming), due when its
 * last token is. */
static void job_schedule(struct worker *w, struct job *j)
{
    int64_t left = j->q.n_out - j->sent;
    int64_t tpc = w->cfg->tokens_per_chunk;
    j->chunk = j->q.stream && tpc < left ? tpc : left;
    j->c->q[j->slot].due = j->tok_due + itl_sum(w, j->chunk - 1);
}

/* --kv-cache-tokens: the tokens held by running requests (a prompt from
 * admission, each output token from its piece), released when they end. */
static void kv_add(struct sim_config *cfg, int64_t n)
{
    if (cfg->kv_tokens > 0)
        atomic_fetch_add(&cfg->oai_kv_used, n);
}

static bool slot_take(struct sim_config *cfg)
{
    long long n = atomic_load(&cfg->oai_running);
    for (;;) {
        if (cfg->max_concurrency > 0 && n >= cfg->max_concurrency)
            return false;
        if (atomic_compare_exchange_weak(&cfg->oai_running, &n, n + 1))
            return true;
    }
}

/* Admits waiting jobs of this worker, in order, while slots are free; t is
 * the admission time (never before a job's own read time). */
static void admit_waiting(struct worker *w, int64_t t)
{
    while (w->wait_head && slot_take(w->cfg)) {
        struct job *j = w->wait_head;
        w->wait_head = j->next;
        if (w->wait_head)
            w->wait_head->prev = NULL;
        else
            w->wait_tail = NULL;
        j->next = NULL;
        atomic_fetch_sub(&w->cfg->oai_waiting, 1);
        j->state = J_RUNNING;
        j->ta = t > j->t0 ? t : j->t0;
        j->tok_due = j->first_tok = j->ta + sim_delay_draw(&w->cfg->ttft, &w->rng);
        j->sent = 0;
        kv_add(w->cfg, j->q.prompt_tokens); /* the prompt's KV entries, from admission */
        job_schedule(w, j);
        struct conn *c = j->c;
        int64_t due = c->q[j->slot].due;
        if (!c->dead && !c->draining && (c->heap_idx == SIZE_MAX || c->wake > due))
            conn_wake_at(c, due);
    }
}

static void job_submit(struct worker *w, struct job *j)
{
    j->state = J_WAITING;
    j->prev = w->wait_tail;
    if (w->wait_tail)
        w->wait_tail->next = j;
    else
        w->wait_head = j;
    w->wait_tail = j;
    atomic_fetch_add(&w->cfg->oai_waiting, 1);
    admit_waiting(w, j->t0);
}

static void slot_release(struct worker *w, int64_t t)
{
    struct sim_config *cfg = w->cfg;
    atomic_fetch_sub(&cfg->oai_running, 1);
    admit_waiting(w, t);
    if (cfg->oai_wake_fd >= 0 && atomic_load(&cfg->oai_waiting) > 0 &&
        atomic_load(&cfg->oai_running) < cfg->max_concurrency) {
        uint64_t one = 1;
        if (write(cfg->oai_wake_fd, &one, sizeof(one)) < 0)
            log_warn("sonde-sim: cannot wake the workers: %s", strerror(errno));
    }
}

/* A running job ends (finished, broken or dropped) at t: its KV tokens and
 * its slot are freed. */
static void job_end(struct worker *w, struct job *j, int64_t t)
{
    kv_add(w->cfg, -(j->q.prompt_tokens + j->sent));
    j->state = J_DONE;
    slot_release(w, t);
}

static void job_unlink(struct worker *w, struct job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        w->wait_head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        w->wait_tail = j->prev;
    j->prev = j->next = NULL;
    atomic_fetch_sub(&w->cfg->oai_waiting, 1);
}

/* Frees the jobs of pending responses from..qlen-1 (the connection closes or
 * drops them): waiting ones leave the FIFO, running ones free their slot. */
static void job_free(struct job *j)
{
    if (j)
        sbuf_free(&j->q.piece);
    free(j);
}

static void drop_jobs(struct conn *c, unsigned from)
{
    struct worker *w = c->w;
    for (unsigned i = from; i < c->qlen; i++) {
        struct job *j = c->q[(c->qhead + i) % MAX_PENDING].job;
        if (j && j->state == J_WAITING) {
            job_unlink(w, j);
            j->state = J_DONE;
        }
    }
    for (unsigned i = from; i < c->qlen; i++) {
        struct resp *r = &c->q[(c->qhead + i) % MAX_PENDING];
        free(r->text);
        r->text = NULL;
        if (!r->job)
            continue;
        if (r->job->state == J_RUNNING)
            job_end(w, r->job, mono_ns());
        job_free(r->job);
        r->job = NULL;
    }
}

/* ---- connection lifetime ------------------------------------------------- */

static void drop_jobs(struct conn *c, unsigned from);

static void conn_close(struct conn *c, bool reset)
{
    if (c->dead)
        return;
    drop_jobs(c, 0);
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(c->fd);
    heap_remove(c);
    c->dead = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = NULL;
    c->next = c->w->graveyard;
    c->w->graveyard = c;
}

static void conn_free(struct conn *c)
{
    free(c->bbuf);
    sbuf_free(&c->stage);
    for (unsigned i = 0; i < c->olen; i++)
        free(c->out[(c->ohead + i) % OUTQ].own);
    free(c->rbuf);
    free(c);
}

static void drain_input(struct conn *c)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || errno != EAGAIN)
            conn_close(c, false);
        return;
    }
}

/* Lingering close: stop sending, read and drop input until EOF or LINGER_NS,
 * so that unread request bytes do not turn the close into a reset. */
static void conn_begin_linger(struct conn *c, int64_t now)
{
    shutdown(c->fd, SHUT_WR);
    c->draining = true;
    conn_wake_at(c, now + LINGER_NS);
    drain_input(c);
}

/* ---- output -------------------------------------------------------------- */

static void out_stage_push(struct conn *c);

static void out_push(struct conn *c, const char *p, size_t len, char *own)
{
    out_stage_push(c); /* what was staged goes first */
    struct seg *s = &c->out[(c->ohead + c->olen) % OUTQ];
    *s = (struct seg){.p = p, .len = len, .own = own};
    c->olen++;
    c->obytes += len;
}

/* The staged text becomes one segment of the ring, which frees it once written. */
static void out_stage_push(struct conn *c)
{
    if (c->stage.len == 0)
        return;
    size_t n = c->stage.len;
    char *text = sbuf_steal(&c->stage);
    out_push(c, text, n, text);
}

static void out_push_str(struct conn *c, char *own)
{
    out_push(c, own, strlen(own), own);
}

static void out_advance(struct conn *c, size_t n)
{
    c->obytes -= n;
    while (n > 0) {
        struct seg *s = &c->out[c->ohead];
        size_t take = n < s->len ? n : s->len;
        s->p += take;
        s->len -= take;
        n -= take;
        if (s->len == 0) {
            free(s->own);
            c->ohead = (c->ohead + 1) % OUTQ;
            c->olen--;
        }
    }
}

/* Writes as much as the socket takes. Returns true when everything went out. */
static bool conn_flush(struct conn *c)
{
    while (c->olen > 0) {
        struct iovec iov[OUTQ];
        int n = 0;
        for (unsigned i = 0; i < c->olen; i++) {
            struct seg *s = &c->out[(c->ohead + i) % OUTQ];
            iov[n++] = (struct iovec){.iov_base = (void *)(uintptr_t)s->p, .iov_len = s->len};
        }
        ssize_t k = writev(c->fd, iov, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            if (errno != EAGAIN)
                conn_close(c, false);
            return false;
        }
        out_advance(c, (size_t)k);
    }
    return true;
}

/* ---- responses ----------------------------------------------------------- */

const char *sim_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    return "Status";
}

static void emit_plain(struct conn *c, const struct resp *r)
{
    const struct sim_config *cfg = c->w->cfg;
    bool nobody = r->status < 200 || r->status == 204 || r->status == 304;
    int64_t size = r->kind == R_REJECT ? 0 : cfg->size;
    const char *conn_hdr = r->close ? "Connection: close\r\n" : "";
    if (nobody) {
        out_push_str(c, xasprintf("HTTP/1.1 %d %s\r\nServer: sonde-sim\r\n%s\r\n", r->status,
                                  sim_reason(r->status), conn_hdr));
        return;
    }
    out_push_str(c, xasprintf("HTTP/1.1 %d %s\r\nServer: sonde-sim\r\nContent-Type: text/plain\r\n"
                              "Content-Length: %" PRId64 "\r\n%s\r\n",
                              r->status, sim_reason(r->status), size, conn_hdr));
    if (size > 0 && !r->head)
        out_push(c, cfg->body, (size_t)size, NULL);
}

static void out_chunk(struct conn *c, char *data)
{
    out_push_str(c, xasprintf("%zx\r\n%s\r\n", strlen(data), data));
    free(data);
}

/* Emits the next SSE piece; returns true when the response is complete. */
static bool emit_sse(struct conn *c, struct resp *r)
{
    const struct sim_config *cfg = c->w->cfg;
    if (r->sse_next < 0) {
        out_push_str(c, xasprintf("HTTP/1.1 200 OK\r\nServer: sonde-sim\r\n"
                                  "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                                  "Transfer-Encoding: chunked\r\n%s\r\n",
                                  r->close ? "Connection: close\r\n" : ""));
        r->sse_next = 0;
        r->due = r->base;
        return false;
    }
    int64_t t = r->base + (int64_t)r->sse_next * cfg->sse_gap_ns;
    out_chunk(c, xasprintf("data: {\"i\":%d,\"t_ns\":%" PRId64 "}\n\n", r->sse_next, t));
    if (++r->sse_next < cfg->sse_events) {
        r->due = t + cfg->sse_gap_ns;
        return false;
    }
    out_chunk(c, xstrdup("data: [DONE]\n\n"));
    out_push_str(c, xstrdup("0\r\n\r\n"));
    return true;
}

/* The piece of j due at `due` carries its tokens: into the histograms (the
 * first token's TTFT; the gaps between the piece's tokens and the one before,
 * each observed as their mean: exact with one token per piece or a fixed
 * --itl) and the KV tokens. */
static void observe_piece(struct worker *w, struct job *j, int64_t due)
{
    int64_t gaps = j->sent == 0 ? j->chunk - 1 : j->chunk;
    int64_t from = j->sent == 0 ? j->first_tok : j->last_due;
    if (j->sent == 0)
        oai_observe(w->stats, OAI_H_TTFT, j->first_tok - j->t0, 1);
    if (gaps > 0)
        oai_observe(w->stats, OAI_H_ITL, (due - from) / gaps, gaps);
    j->last_due = due;
    kv_add(w->cfg, j->chunk);
}

/* Emits the next piece of a generation; returns true when it is complete. */
static bool emit_oai(struct conn *c, struct resp *r)
{
    struct worker *w = c->w;
    struct sim_config *cfg = w->cfg;
    struct job *j = r->job;
    int64_t queue_ns = j->ta - j->t0;
    enum sim_error fault = j->sent == j->fault_at ? (enum sim_error)j->fault : ERR_NONE;
    if (j->q.stream) /* gathered with the pieces due with it (release_due) */
        oai_piece(cfg, &j->q, j->sent, j->chunk, fault, queue_ns, r->close, &w->scratch, &c->stage);
    else
        oai_full(cfg, &j->q, fault, queue_ns, r->close, &w->scratch, &c->stage);
    if (fault == ERR_STALL) {
        r->kind = R_HANG; /* holds its slot until the connection closes */
        return false;
    }
    if (fault == ERR_TRUNCATE || fault == ERR_MIDSTREAM) {
        job_end(w, j, r->due); /* not a finished generation for the metrics */
        r->close = r->close || fault == ERR_TRUNCATE; /* a clean close once written */
        return true;
    }
    observe_piece(w, j, r->due);
    j->sent += j->chunk;
    if (j->sent < j->q.n_out) {
        j->tok_due = r->due + itl_sum(w, 1);
        job_schedule(w, j);
        return false;
    }
    atomic_fetch_add(&cfg->oai_prompt_tokens, j->q.prompt_tokens);
    atomic_fetch_add(&cfg->oai_gen_tokens, j->q.n_out);
    atomic_fetch_add(&cfg->oai_success, 1);
    oai_observe(w->stats, OAI_H_E2E, r->due - j->t0, 1);
    oai_observe(w->stats, OAI_H_QUEUE, j->ta - j->t0, 1);
    job_end(w, j, r->due); /* the slot frees when the last token is due */
    return true;
}

static void emit_oai_simple(struct conn *c, const struct resp *r)
{
    bool reject = r->kind == R_REJECT;
    oai_simple(c->w->cfg, reject ? OAI_NONE : r->route, r->status, reject ? NULL : r->msg,
               !reject && r->head, r->close, &c->w->scratch, &c->stage);
}

static void count_response(struct conn *c)
{
    struct sim_config *cfg = c->w->cfg;
    c->w->totals.responses++;
    if (cfg->max_requests > 0 && atomic_fetch_add(&cfg->responses, 1) + 1 == cfg->max_requests) {
        uint64_t one = 1;
        if (write(cfg->stop_fd, &one, sizeof(one)) < 0)
            log_warn("sonde-sim: cannot signal stop: %s", strerror(errno));
    }
}

static void pop_response(struct conn *c)
{
    struct resp *r = &c->q[c->qhead];
    bool close_after = r->close;
    job_free(r->job); /* J_DONE */
    r->job = NULL;
    free(r->text); /* NULL once emitted */
    r->text = NULL;
    if (close_after)
        drop_jobs(c, 1);
    c->qhead = (c->qhead + 1) % MAX_PENDING;
    c->qlen--;
    count_response(c);
    if (close_after) {
        c->closing = true;
        c->qlen = 0; /* requests pipelined after a closing one are dropped */
    }
}

static const char malformed[] = "HTTP/1.1 ??? sonde-sim garbage status line\r\n\r\n";

/* Emits one piece of the head response. Returns 1 after progress, 0 when it
 * must wait for the output ring to drain, -1 when nothing will follow (the
 * head hangs forever, or the connection was reset). */
static int emit_head(struct conn *c)
{
    struct resp *r = &c->q[c->qhead];
    if (r->text) { /* --kserve */
        out_push(c, r->text, r->text_len, r->text);
        r->text = NULL;
        pop_response(c);
        return 1;
    }
    switch (r->kind) {
    case R_HANG:
        return -1;
    case R_RESET:
        if (c->olen > 0 || c->stage.len > 0)
            return 0;
        count_response(c);
        conn_close(c, true);
        return -1;
    case R_MALFORMED:
        out_push(c, malformed, sizeof(malformed) - 1, NULL);
        r->close = true;
        break;
    case R_SSE:
        if (!emit_sse(c, r))
            return 1;
        break;
    case R_OAI:
        if (!emit_oai(c, r))
            return 1;
        break;
    case R_OAI_SIMPLE:
        emit_oai_simple(c, r);
        break;
    default:
        if (c->w->cfg->openai)
            emit_oai_simple(c, r);
        else
            emit_plain(c, r);
    }
    pop_response(c);
    return 1;
}

/* Moves due pieces into the output ring. Returns the next time something
 * becomes due: `now` when a due piece waits for room in the ring, NEVER when
 * nothing is pending. */
static int64_t release_due(struct conn *c, int64_t now)
{
    while (!c->dead && c->qlen > 0) {
        struct resp *r = &c->q[c->qhead];
        if (r->kind == R_HANG)
            return NEVER;
        if (r->due > now)
            return r->due;
        if (c->olen + 3 > OUTQ || c->stage.len >= STAGE_MAX)
            return now;
        int rc = emit_head(c);
        if (rc <= 0)
            return rc == 0 ? now : NEVER;
    }
    return NEVER;
}

/* Releases due responses and writes them, honouring stall windows; sets the
 * connection's deadline. */
static void conn_pump(struct conn *c, int64_t now)
{
    int64_t stall_end = sim_stall_release(c->w->cfg, now);
    if (stall_end != now) {
        conn_wake_at(c, stall_end);
        return;
    }
    int64_t next;
    for (;;) {
        next = release_due(c, now);
        if (c->dead)
            return;
        out_stage_push(c); /* never an empty segment: it would never drain */
        bool all = conn_flush(c);
        if (c->dead)
            return;
        if (!all) { /* the socket is full: EPOLLOUT resumes us */
            next = next <= now ? NEVER : next;
            break;
        }
        if (next > now)
            break;
    }
    conn_wake_at(c, next);
}

/* ---- requests ------------------------------------------------------------ */

static bool header_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

static bool value_has(const char *v, size_t len, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(v + i, word, n) == 0)
            return true;
    return false;
}

/* The method and target of a request line (pointers into the read buffer). */
struct reqline {
    const char *method, *target;
    size_t mlen, tlen;
};

/* Parses the request line; returns 0 or -EINVAL. Sets r->head, r->close, *rl. */
static int parse_request_line(const char *p, size_t len, struct resp *r, struct reqline *rl)
{
    const char *sp1 = memchr(p, ' ', len);
    if (!sp1 || sp1 == p)
        return -EINVAL;
    for (const char *m = p; m < sp1; m++)
        if (*m < 'A' || *m > 'Z')
            return -EINVAL;
    const char *sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - p));
    if (!sp2 || sp2 == sp1 + 1 || (size_t)(p + len - sp2) != 9)
        return -EINVAL;
    if (memcmp(sp2 + 1, "HTTP/1.1", 8) == 0)
        r->close = false;
    else if (memcmp(sp2 + 1, "HTTP/1.0", 8) == 0)
        r->close = true;
    else
        return -EINVAL;
    r->head = sp1 - p == 4 && memcmp(p, "HEAD", 4) == 0;
    *rl = (struct reqline){
        .method = p, .mlen = (size_t)(sp1 - p), .target = sp1 + 1, .tlen = (size_t)(sp2 - sp1 - 1)};
    return 0;
}

static int parse_content_length(const char *v, size_t len, int64_t *out)
{
    int64_t n = 0;
    size_t i = 0;
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (i == len)
        return -EINVAL;
    for (; i < len && v[i] >= '0' && v[i] <= '9'; i++) {
        if (n > (INT64_MAX - 9) / 10)
            return -EINVAL;
        n = n * 10 + (v[i] - '0');
    }
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (i != len || (*out >= 0 && *out != n))
        return -EINVAL;
    *out = n;
    return 0;
}

/* Parses one header line into r / *clen. Returns 0, -EINVAL or -ENOTSUP. */
static int parse_header(const char *p, size_t len, struct resp *r, int64_t *clen)
{
    const char *colon = memchr(p, ':', len);
    if (!colon || colon == p || memchr(p, ' ', (size_t)(colon - p)))
        return -EINVAL;
    const char *v = colon + 1;
    size_t vlen = len - (size_t)(v - p);
    if (header_is(p, len, "content-length"))
        return parse_content_length(v, vlen, clen);
    if (header_is(p, len, "transfer-encoding"))
        return -ENOTSUP;
    if (header_is(p, len, "connection")) {
        if (value_has(v, vlen, "close"))
            r->close = true;
        else if (value_has(v, vlen, "keep-alive"))
            r->close = false;
    }
    return 0;
}

/* Parses a header section (ending in CRLFCRLF). Returns the status to reject
 * the request with, or 0 (then r and *clen are set). */
static int parse_request(const char *p, size_t len, struct resp *r, int64_t *clen,
                         struct reqline *rl)
{
    const char *end = p + len - 2; /* the final empty line */
    while (p < end && p[0] == '\r' && p[1] == '\n')
        p += 2; /* empty lines before the request line are ignored */
    *clen = -1;
    bool first = true;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
        if (!eol)
            return 400;
        size_t n = (size_t)(eol - p);
        int rc = first ? parse_request_line(p, n, r, rl) : parse_header(p, n, r, clen);
        if (rc == -ENOTSUP)
            return 501;
        if (rc < 0)
            return 400;
        first = false;
        p = eol + 2;
    }
    if (first)
        return 400;
    if (*clen < 0)
        *clen = 0;
    return 0;
}

/* Decides how request r will be answered (error injection, SSE). */
static void classify(struct worker *w, struct resp *r)
{
    const struct sim_config *cfg = w->cfg;
    r->kind = cfg->sse_events > 0 ? R_SSE : R_NORMAL;
    r->status = cfg->status;
    r->sse_next = -1;
    if (cfg->error_rate <= 0 || rng_unit(&w->rng) >= cfg->error_rate)
        return;
    r->injected = true;
    w->totals.errors++;
    switch (cfg->error_kind) {
    case ERR_RESET:
        r->kind = R_RESET;
        break;
    case ERR_MALFORMED:
        r->kind = R_MALFORMED;
        break;
    case ERR_HANG:
        r->kind = R_HANG;
        break;
    case ERR_TRUNCATE:
    case ERR_BADJSON:
    case ERR_MIDSTREAM:
    case ERR_STALL:
        r->fault = (uint8_t)cfg->error_kind; /* applied to generations only (oai_classify) */
        break;
    default:
        r->kind = R_NORMAL;
        r->status = cfg->error_status;
    }
}

/* The request in c->cur has been read completely at `now`: schedule it. A
 * generation job waits for admission (due NEVER until admitted). */
static void enqueue(struct conn *c, int64_t now)
{
    const struct sim_config *cfg = c->w->cfg;
    struct resp *r = &c->cur;
    if (r->kind == R_OAI) {
        r->due = NEVER;
    } else if (r->kind != R_REJECT) {
        int64_t d = sim_delay_draw(&cfg->delay, &c->w->rng);
        r->due = now + d + r->extra_ns;
        if (r->ks_ok)
            ks_account(c->w->cfg, r->model, d, r->extra_ns);
    } else {
        r->due = now;
    }
    r->base = r->due + cfg->sse_first_ns;
    unsigned slot = (c->qhead + c->qlen) % MAX_PENDING;
    c->q[slot] = *r;
    c->qlen++;
    r->job = NULL;
    r->text = NULL;
    if (r->close)
        c->closing = true;
    struct job *j = c->q[slot].job;
    if (j) {
        j->c = c;
        j->slot = slot;
        j->t0 = now;
        job_submit(c->w, j);
    }
}

/* A stream fault drawn for a request that generates nothing is not injected. */
static void uninject(struct worker *w, struct resp *r)
{
    r->injected = false;
    r->fault = ERR_NONE;
    w->totals.errors--;
}

/* --openai: decides how a request whose headers were just parsed is answered,
 * and whether its body is buffered (generation routes only, at most 1 MiB). */
static void oai_classify(struct conn *c, struct resp *r, const struct reqline *rl, int64_t clen)
{
    r->route = (uint8_t)oai_route(rl->method, rl->mlen, rl->target, rl->tlen);
    if (r->kind != R_NORMAL)
        return; /* an injected reset, malformed or hang */
    r->kind = R_OAI_SIMPLE;
    if (r->injected && !r->fault)
        return; /* status:N, with an OpenAI-style error body */
    r->status = r->route == OAI_NOT_FOUND ? 404 : r->route == OAI_BAD_METHOD ? 405 : 200;
    if (r->route == OAI_COMPLETIONS || r->route == OAI_CHAT) {
        c->bbuf = xmalloc((size_t)clen + 1);
        c->blen = 0;
    } else if (r->fault) {
        uninject(c->w, r);
    }
}

/* --kserve: answers what needs no body at once (the text is sent when due);
 * an infer of a known model gets its body buffered (at most 1 MiB). */
static void ks_classify(struct conn *c, struct resp *r, const struct reqline *rl, int64_t clen)
{
    if (r->kind != R_NORMAL)
        return; /* an injected reset, malformed or hang */
    struct sbuf out = {0};
    r->model = ks_head(c->w->cfg, rl->method, rl->mlen, rl->target, rl->tlen,
                       r->injected ? r->status : 0, r->head, r->close, &out);
    r->text_len = out.len;
    r->text = r->model < 0 ? sbuf_steal(&out) : NULL;
    if (r->model >= 0) {
        c->bbuf = xmalloc((size_t)clen + 1);
        c->blen = 0;
    }
}

/* --kserve: an infer body is complete; its answer. */
static void ks_finish(struct conn *c)
{
    struct resp *r = &c->cur;
    struct sbuf out = {0};
    int64_t extra = ks_infer(c->w->cfg, r->model, c->bbuf, c->blen, r->close, &out);
    r->ks_ok = extra >= 0;
    r->extra_ns = extra > 0 ? extra : 0;
    free(c->bbuf);
    c->bbuf = NULL;
    r->text_len = out.len;
    r->text = sbuf_steal(&out);
}

/* A request's body is complete: parse a buffered one, then schedule. */
static void finish_request(struct conn *c, int64_t now)
{
    struct resp *r = &c->cur;
    if (c->bbuf && c->w->cfg->kserve)
        ks_finish(c);
    if (c->bbuf) {
        struct sim_config *cfg = c->w->cfg;
        struct oai_req q;
        int st = oai_parse(cfg, r->route == OAI_CHAT, c->bbuf, c->blen, &q, &r->msg);
        free(c->bbuf);
        c->bbuf = NULL;
        if (st) {
            r->status = st;
            if (r->fault)
                uninject(c->w, r);
        } else {
            q.id = atomic_fetch_add(&cfg->oai_ids, 1) + 1;
            q.created = (long long)(wall_ns() / 1000000000);
            r->kind = R_OAI;
            r->job = xcalloc(1, sizeof(*r->job));
            r->job->q = q;
            /* a fault hits the piece starting chunk K/2 of K (the only one
             * without streaming) */
            int64_t tpc = q.stream ? cfg->tokens_per_chunk : q.n_out;
            r->job->fault = r->fault;
            r->job->fault_at = r->fault ? (q.n_out + tpc - 1) / tpc / 2 * tpc : -1;
        }
    }
    enqueue(c, now);
}

static void reject(struct conn *c, int status, int64_t now)
{
    c->cur = (struct resp){.kind = R_REJECT, .status = status, .close = true};
    enqueue(c, now);
    c->rlen = c->scan = 0;
}

/* Parses what the read buffer holds: complete requests are queued, bodies are
 * skipped. Stops when the queue is full or the connection stops reading. */
static void conn_parse(struct conn *c, int64_t now)
{
    size_t pos = 0;
    while (!c->closing && c->qlen < MAX_PENDING) {
        if (c->body_left > 0) {
            size_t avail = c->rlen - pos;
            size_t take = (uint64_t)c->body_left < avail ? (size_t)c->body_left : avail;
            if (c->bbuf) {
                memcpy(c->bbuf + c->blen, c->rbuf + pos, take);
                c->blen += take;
            }
            pos += take;
            c->body_left -= (int64_t)take;
            if (c->body_left > 0)
                break;
            finish_request(c, now);
            continue;
        }
        size_t from = c->scan > pos + 3 ? c->scan - 3 : pos;
        char *e = memmem(c->rbuf + from, c->rlen - from, "\r\n\r\n", 4);
        if (!e) {
            if (c->rlen - pos > HDR_MAX)
                return reject(c, 431, now);
            c->scan = c->rlen;
            break;
        }
        size_t hlen = (size_t)(e + 4 - (c->rbuf + pos));
        if (hlen > HDR_MAX)
            return reject(c, 431, now);
        struct resp r = {0};
        struct reqline rl = {0};
        int64_t clen;
        int st = parse_request(c->rbuf + pos, hlen, &r, &clen, &rl);
        if (!st && (c->w->cfg->openai || c->w->cfg->kserve) && clen > OAI_MAX_BODY)
            st = 413;
        if (st)
            return reject(c, st, now);
        classify(c->w, &r);
        if (c->w->cfg->openai)
            oai_classify(c, &r, &rl, clen);
        else if (c->w->cfg->kserve)
            ks_classify(c, &r, &rl, clen);
        c->cur = r;
        pos += hlen;
        c->scan = pos;
        c->body_left = clen;
        if (clen == 0)
            finish_request(c, now);
    }
    memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
    c->rlen -= pos;
    c->scan = c->scan > pos ? c->scan - pos : 0;
}

static bool conn_blocked(const struct conn *c)
{
    return c->qlen >= MAX_PENDING || c->obytes > OUT_HIGH;
}

static void conn_read(struct conn *c)
{
    if (c->rlen > 0)
        conn_parse(c, mono_ns());
    while (!c->dead && !c->closing && !c->eof) {
        if (conn_blocked(c)) {
            c->read_blocked = true;
            return;
        }
        if (c->rlen == c->rcap) {
            c->rcap = c->rcap ? (c->rcap * 2 < RBUF_MAX ? c->rcap * 2 : RBUF_MAX) : RBUF_INIT;
            c->rbuf = xrealloc(c->rbuf, c->rcap);
        }
        ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n > 0) {
            c->rlen += (size_t)n;
            conn_parse(c, mono_ns());
        } else if (n == 0) {
            c->eof = true;
        } else if (errno != EINTR) {
            if (errno != EAGAIN)
                conn_close(c, false);
            return;
        }
    }
}

/* Reads (when readable or resumed), releases and writes; closes when done. */
static void conn_service(struct conn *c, int64_t now, bool readable)
{
    if (c->draining) {
        if (readable)
            drain_input(c);
        return;
    }
    if (readable || c->read_blocked) {
        c->read_blocked = false;
        conn_read(c);
    }
    while (!c->dead) {
        conn_pump(c, now);
        if (c->dead || !c->read_blocked || conn_blocked(c) || c->closing)
            break;
        c->read_blocked = false;
        conn_read(c);
        now = mono_ns();
    }
    if (c->dead || c->olen > 0)
        return;
    bool hangs = c->qlen > 0 && c->q[c->qhead].kind == R_HANG;
    if (c->eof && (c->qlen == 0 || hangs))
        conn_close(c, false);
    else if (c->closing && c->qlen == 0)
        conn_begin_linger(c, now);
}

/* ---- the loop ------------------------------------------------------------ */

static void accept_ready(struct worker *w, int64_t now)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn("sonde-sim: accept: %s; pausing accepts for 50 ms", strerror(errno));
                epoll_ctl(w->ep, EPOLL_CTL_DEL, w->lfd, NULL);
                w->accept_paused_until = now + 50 * 1000 * 1000;
            }
            return;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = xcalloc(1, sizeof(*c));
        *c = (struct conn){.w = w, .fd = fd, .heap_idx = SIZE_MAX, .wake = NEVER};
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = c};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
    }
}

static int listen_add(struct worker *w)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->lfd};
    return epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &ev) < 0 ? -errno : 0;
}

static void run_timers(struct worker *w, int64_t now)
{
    if (w->accept_paused_until && now >= w->accept_paused_until) {
        w->accept_paused_until = 0;
        (void)listen_add(w);
    }
    while (w->nheap > 0 && w->heap[0]->wake <= now) {
        struct conn *c = w->heap[0];
        heap_remove(c);
        if (c->draining)
            conn_close(c, false);
        else
            conn_service(c, now, false);
    }
}

static int wait_events(struct worker *w, struct epoll_event *evs, int64_t now)
{
    int64_t next = w->nheap > 0 ? w->heap[0]->wake : NEVER;
    if (w->accept_paused_until && w->accept_paused_until < next)
        next = w->accept_paused_until;
    if (next == NEVER)
        return epoll_wait(w->ep, evs, MAX_EVENTS, -1);
    /* Sleep until spin_ns before the deadline, then poll without sleeping:
     * timer wake-ups are late by 0.1-0.3 ms on idle (virtual) machines. */
    int64_t spin = w->cfg->spin_ns;
    int64_t d = next - now > spin ? next - now - spin : 0;
    struct timespec ts = {.tv_sec = d / 1000000000, .tv_nsec = d % 1000000000};
    int n = epoll_pwait2(w->ep, evs, MAX_EVENTS, &ts, NULL);
    if (n < 0 && errno == ENOSYS) /* kernels before 5.11: millisecond timeouts */
        n = epoll_wait(w->ep, evs, MAX_EVENTS, (int)((d + 999999) / 1000000));
    return n;
}

static void dispatch(struct worker *w, struct epoll_event *ev, int64_t now)
{
    if (ev->data.ptr == &w->lfd) {
        accept_ready(w, now);
        return;
    }
    struct conn *c = ev->data.ptr;
    if (c->dead)
        return;
    bool readable = ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    conn_service(c, now, readable);
}

static void free_graveyard(struct worker *w)
{
    while (w->graveyard) {
        struct conn *c = w->graveyard;
        w->graveyard = c->next;
        conn_free(c);
    }
}

/* Stop: one last non-blocking flush of what was released, then close all. */
static void worker_shutdown(struct worker *w)
{
    while (w->conns) {
        struct conn *c = w->conns;
        if (c->olen > 0)
            (void)conn_flush(c);
        conn_close(c, false);
    }
    free_graveyard(w);
    free(w->heap);
    sbuf_free(&w->scratch);
    close(w->ep);
}

static int worker_init(struct worker *w, struct sim_config *cfg, int lfd, int index)
{
    *w = (struct worker){.cfg = cfg, .lfd = lfd};
    w->stats = cfg->oai_stats ? &cfg->oai_stats[index] : NULL;
    rng_seed(&w->rng, cfg->seed + (uint64_t)index);
    (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->ep < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cfg->stop_fd};
    struct epoll_event wev = {.events = EPOLLIN | EPOLLET, .data.ptr = &cfg->oai_wake_fd};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, cfg->stop_fd, &ev) < 0 || listen_add(w) < 0 ||
        (cfg->oai_wake_fd >= 0 && epoll_ctl(w->ep, EPOLL_CTL_ADD, cfg->oai_wake_fd, &wev) < 0)) {
        int r = -errno;
        close(w->ep);
        return r;
    }
    return 0;
}

int sim_worker_run(struct sim_config *cfg, int lfd, int index, struct sim_totals *totals)
{
    struct worker w;
    int r = worker_init(&w, cfg, lfd, index);
    if (r < 0)
        return r;
    struct epoll_event evs[MAX_EVENTS];
    bool stop = false;
    while (!stop) {
        run_timers(&w, mono_ns());
        free_graveyard(&w);
        int n = wait_events(&w, evs, mono_ns());
        if (n < 0 && errno != EINTR) {
            r = -errno;
            break;
        }
        int64_t now = mono_ns();
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &cfg->stop_fd)
                stop = true;
            else if (evs[i].data.ptr == &cfg->oai_wake_fd)
                admit_waiting(&w, mono_ns());
            else
                dispatch(&w, &evs[i], now);
        }
        free_graveyard(&w);
    }
    worker_shutdown(&w);
    *totals = w.totals;
    return r;
}
