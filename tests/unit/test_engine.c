/* Tests of the load engine against sonde-sim (the real server, started per
 * test on port 0) and against tiny misbehaving servers in a thread. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backends/proc.h"
#include "loadgen/engine.h"
#include "loadgen/http_parser.h"
#include "loadgen/stats_file.h"
#include "util/hdr.h"
#include "util/util.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS  1000000LL
#define SEC 1000000000LL

struct sim {
    struct proc p;
    char out[64];
    uint16_t port;
};

static struct sim running_sim;
static bool running;

/* Starts sonde-sim with the given extra arguments (NULL-terminated). */
static void sim_start(struct sim *s, const char *const *args)
{
    const char *bin = getenv("SONDE_SIM");
    assert_non_null(bin);
    char *argv[32] = {(char *)bin, (char *)"--port", (char *)"0"};
    size_t n = 3;
    for (; *args && n < 30; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    snprintf(s->out, sizeof(s->out), "/tmp/test_engine_sim_XXXXXX");
    int fd = mkstemp(s->out);
    assert_true(fd >= 0);
    close(fd);
    struct proc_spec spec = {
        .argv = argv, .out_path = s->out, .err_path = "/dev/null", .stdin_fd = -1};
    char err[256];
    assert_int_equal(proc_spawn(&spec, &s->p, err, sizeof(err)), 0);
    running_sim = *s; /* a copy: the test's frame is gone when the teardown runs */
    running = true;
    s->port = 0;
    for (int i = 0; i < 500 && !s->port; i++) {
        char *txt = NULL;
        size_t len = 0;
        if (read_file(s->out, 4096, &txt, &len) == 0) {
            const char *l = strstr(txt, "listening on 127.0.0.1:");
            if (l)
                s->port = (uint16_t)atoi(l + strlen("listening on 127.0.0.1:"));
        }
        free(txt);
        if (!s->port)
            sleep_ns(10 * MS);
    }
    assert_true(s->port > 0);
}

static void sim_stop(struct sim *s)
{
    proc_stop(&s->p, SEC);
    unlink(s->out);
    running = false;
}

/* A failed assertion leaves the test early: stop its server here. */
static int teardown(void **state)
{
    (void)state;
    if (running) {
        proc_stop(&running_sim.p, SEC);
        unlink(running_sim.out);
        running = false;
    }
    return 0;
}

static char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

static struct lg_config base_cfg(uint16_t port)
{
    return (struct lg_config){.host = (char *)"127.0.0.1",
                              .port = port,
                              .request = request,
                              .request_len = strlen(request),
                              .threads = 1,
                              .connections = 4,
                              .model = LG_CLOSED,
                              .seed = 7,
                              .busy_poll_ns = 50000};
}

static struct lg_stats *run_cfg(const struct lg_config *cfg)
{
    struct lg_run *run = NULL;
    char err[256] = "";
    int rc = lg_start(cfg, &run, err, sizeof(err));
    if (rc < 0)
        print_error("lg_start: %s\n", err);
    assert_int_equal(rc, 0);
    struct lg_stats *st = NULL;
    assert_int_equal(lg_wait(run, &st), 0);
    lg_free(run);
    return st;
}

static uint64_t total_errors(const struct lg_stats *st)
{
    uint64_t n = 0;
    for (int e = 0; e < LG_ERR_COUNT; e++)
        n += st->errors[e];
    return n;
}

static void test_closed_loop_delay(void **state)
{
    (void)state;
    struct sim s;
    sim_start(&s, (const char *const[]){"--delay", "10ms", NULL});
    struct lg_config cfg = base_cfg(s.port);
    cfg.duration_ns = 2 * SEC;
    cfg.warmup_ns = 200 * MS;
    struct lg_stats *st = run_cfg(&cfg);
    double med = (double)hdr_percentile(st->latency, 50) / 1e6;
    print_message("closed loop: %llu requests, median %.3f ms, p99 %.3f ms, %zu seconds\n",
                  (unsigned long long)st->requests, med,
                  (double)hdr_percentile(st->latency, 99) / 1e6, st->nsecs);
    assert_true(med >= 10.0 && med <= 10.7);
    assert_int_equal(st->requests, st->ok);
    assert_int_equal(total_errors(st), 0);
    assert_true(st->requests > 600 && st->requests < 820); /* 4 users * 2 s / ~10 ms */
    assert_int_equal(st->status_class[2], st->ok);
    assert_int_equal(st->nsecs, 2);
    assert_int_equal(st->secs[0].requests + st->secs[1].requests, st->requests);
    assert_true(st->secs[0].p50_ns >= 10 * MS && st->secs[0].p50_ns < 11 * MS);
    assert_null(st->secs[0].latency); /* not kept by default */
    assert_true(st->bytes_in > 0 && st->bytes_out > 0);
    assert_null(st->issue_delay);
    lg_stats_free(st);
    sim_stop(&s);
}

/* keep_second_hdrs: each second carries its histogram, and a real run's
 * results survive the stats file and a merge with themselves. */
static void test_keep_second_hdrs(void **state)
{
    (void)state;
    struct sim s;
    sim_start(&s, (const char *const[]){"--delay", "2ms", NULL});
    struct lg_config cfg = base_cfg(s.port);
    cfg.threads = 2;
    cfg.duration_ns = 2 * SEC;
    cfg.warmup_ns = 300 * MS;
    cfg.keep_second_hdrs = true;
    struct lg_run *run = NULL;
    char err[256] = "";
    int64_t before = wall_ns();
    assert_int_equal(lg_start(&cfg, &run, err, sizeof(err)), 0);
    int64_t after = wall_ns();
    struct lg_stats *st = NULL, *again = NULL;
    assert_int_equal(lg_wait(run, &st), 0);
    assert_int_equal(lg_wait(run, &again), -EALREADY); /* the histograms moved out */
    lg_free(run);
    assert_true(st->window_start_wall_ns >= before + cfg.warmup_ns);
    assert_true(st->window_start_wall_ns <= after + cfg.warmup_ns);
    assert_int_equal(st->nsecs, 2);
    uint64_t n = 0;
    for (size_t i = 0; i < st->nsecs; i++) {
        const struct lg_second *sec = &st->secs[i];
        assert_non_null(sec->latency);
        assert_int_equal(hdr_count(sec->latency), sec->requests - sec->errors);
        assert_int_equal(sec->p50_ns, hdr_percentile(sec->latency, 50));
        assert_int_equal(sec->p99_ns, hdr_percentile(sec->latency, 99));
        n += hdr_count(sec->latency);
    }
    assert_true(n > 0);
    assert_int_equal(n, hdr_count(st->latency));

    char path[] = "/tmp/test_engine_stats_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(lg_stats_write(st, path, err, sizeof(err)), 0);
    struct lg_stats *back = NULL, *m = NULL;
    assert_int_equal(lg_stats_read(path, &back, err, sizeof(err)), 0);
    unlink(path);
    struct lg_stats *in[] = {st, back};
    assert_int_equal(lg_stats_merge(in, 2, &m, err, sizeof(err)), 0);
    assert_int_equal(m->requests, 2 * st->requests);
    assert_int_equal(hdr_count(m->latency), 2 * hdr_count(st->latency));
    assert_int_equal(hdr_percentile(m->latency, 99), hdr_percentile(st->latency, 99));
    assert_int_equal(m->nsecs, st->nsecs);
    assert_int_equal(m->secs[1].p99_ns, st->secs[1].p99_ns);
    lg_stats_free(m);
    lg_stats_free(back);
    lg_stats_free(st);
    sim_stop(&s);
}

static void test_max_requests(void **state)
{
    (void)state;
    struct sim s;
    sim_start(&s, (const char *const[]){NULL});
    struct lg_config cfg = base_cfg(s.port);
    cfg.max_requests = 1000;
    cfg.connections = 8;
    cfg.threads = 2;
    struct lg_stats *st = run_cfg(&cfg);
    assert_int_equal(st->requests, 1000);
    assert_int_equal(st->ok, 1000);
    assert_int_equal(hdr_count(st->latency), 1000);
    lg_stats_free(st);
    sim_stop(&s);
}

/* During the 1 s stall (from 2 s on) the server answers nothing. With only 4
 * connections all four are soon busy, so the requests due during the stall
 * wait inside the engine: their latency (from the intended send time s*)
 * grows to ~1 s, but once the stall ends they are sent on free connections
 * and served in ~1 ms, so most service times stay small. (With one connection
 * per due request, every request would be sent on time and its service time
 * would include the stall too — service time hides nothing then, but it is
 * not what this test shows.) Issue delay is large here: the client could not
 * send on time because no connection was free, so rate_missed is set. */
static void test_open_loop_stall(void **state)
{
    (void)state;
    struct sim s;
    sim_start(
        &s, (const char *const[]){"--delay", "1ms", "--stall", "1s", "--stall-every", "2s", NULL});
    struct lg_config cfg = base_cfg(s.port);
    cfg.model = LG_OPEN;
    cfg.rate = 500;
    cfg.arrival = LG_CONSTANT;
    cfg.connections = 4;
    cfg.duration_ns = 3500 * MS;
    struct lg_stats *st = run_cfg(&cfg);
    int64_t lat99 = hdr_percentile(st->latency, 99), svc90 = hdr_percentile(st->service, 90);
    print_message("stall: %llu requests, latency p99 %.1f ms, service p90 %.3f ms p99 %.1f ms\n",
                  (unsigned long long)st->requests, (double)lat99 / 1e6, (double)svc90 / 1e6,
                  (double)hdr_percentile(st->service, 99) / 1e6);
    assert_true(lat99 >= 500 * MS);
    assert_true(svc90 < 50 * MS);
    assert_true(st->rate_missed);
    assert_int_equal(total_errors(st), 0);
    lg_stats_free(st);
    sim_stop(&s);
}

/* Poisson arrivals at 1000 req/s for 2 s: the count of a Poisson process has
 * a standard deviation of sqrt(2000) = 45 (2.2%), so 5% is a fair bound (the
 * seed is fixed, so the schedule is the same every run). At 200 req/s the
 * same bound would be 1 sd only. Issue delay: this 2-core VM runs the whole
 * team's builds and tests, so wake-up delays of several ms (p99 up to 50 ms
 * seen) come from preemption; the test asserts the median issue delay is
 * under 1 ms and that rate_missed agrees with p99, and prints p90/p99. */
static void test_open_loop_poisson(void **state)
{
    (void)state;
    struct sim s;
    sim_start(&s, (const char *const[]){"--delay", "1ms", NULL});
    struct lg_config cfg = base_cfg(s.port);
    cfg.model = LG_OPEN;
    cfg.rate = 1000;
    cfg.arrival = LG_POISSON;
    cfg.connections = 16;
    cfg.duration_ns = 2 * SEC;
    struct lg_stats *st = run_cfg(&cfg);
    int64_t d90 = hdr_percentile(st->issue_delay, 90), d99 = hdr_percentile(st->issue_delay, 99);
    print_message("poisson: achieved %.1f req/s (%llu), issue delay p50 %.3f p90 %.3f p99 %.3f "
                  "max %.3f ms\n",
                  st->achieved_rate, (unsigned long long)st->requests,
                  (double)hdr_percentile(st->issue_delay, 50) / 1e6, (double)d90 / 1e6,
                  (double)d99 / 1e6, (double)hdr_max(st->issue_delay) / 1e6);
    assert_true(st->achieved_rate > 950 && st->achieved_rate < 1050);
    assert_true(hdr_percentile(st->issue_delay, 50) < 1 * MS);
    assert_true(st->rate_missed == (d99 > 1 * MS));
    assert_int_equal(total_errors(st), 0);
    assert_int_equal(hdr_count(st->issue_delay), st->ok);
    lg_stats_free(st);
    sim_stop(&s);
}

/* Ramp 100 -> 1000 req/s over the 2 s run (constant arrivals): ~1100
 * requests; gamma arrivals (k = 0.5, bursty) at 500 req/s: the mean rate
 * holds (a count's sd is sqrt(2 * 1000) = 4.5%, so 12% is 2.7 sd). */
static void test_ramp_and_gamma(void **state)
{
    (void)state;
    struct sim s;
    sim_start(&s, (const char *const[]){NULL});
    struct lg_config cfg = base_cfg(s.port);
    cfg.model = LG_OPEN;
    cfg.rate = 1000;
    cfg.ramp_from = 100;
    cfg.ramp_ns = 2 * SEC;
    cfg.connections = 8;
    cfg.duration_ns = 2 * SEC;
    struct lg_stats *st = run_cfg(&cfg);
    print_message("ramp: %llu requests (1100 expected), second 0: %llu, second 1: %llu\n",
                  (unsigned long long)st->requests, (unsigned long long)st->secs[0].requests,
                  (unsigned long long)st->secs[1].requests);
    assert_true(st->requests > 1045 && st->requests < 1155);
    assert_true(st->secs[0].requests < st->secs[1].requests);
    lg_stats_free(st);

    cfg.ramp_from = 0;
    cfg.rate = 500;
    cfg.arrival = LG_GAMMA;
    cfg.burstiness = 0.5;
    st = run_cfg(&cfg);
    print_message("gamma: achieved %.1f req/s\n", st->achieved_rate);
    assert_true(st->achieved_rate > 440 && st->achieved_rate < 560);
    assert_int_equal(total_errors(st), 0);
    lg_stats_free(st);
    sim_stop(&s);
}

/* Closed loop with 10 ms think time: 4 users make ~4 / 10.x ms requests;
 * progress is readable while the run goes on, and shows the warm-up. */
static void test_think_and_progress(void **state)
{
    (void)state;
    struct sim s;
    sim_start(&s, (const char *const[]){NULL});
    struct lg_config cfg = base_cfg(s.port);
    cfg.think_ns = 10 * MS;
    cfg.warmup_ns = 300 * MS;
    cfg.duration_ns = 1500 * MS;
    struct lg_run *run = NULL;
    char err[256];
    assert_int_equal(lg_start(&cfg, &run, err, sizeof(err)), 0);
    struct lg_progress p;
    sleep_ns(50 * MS);
    lg_progress(run, &p);
    assert_true(p.warming_up);
    assert_int_equal(p.requests, 0);
    assert_false(lg_done(run));
    sleep_ns(1400 * MS);
    lg_progress(run, &p);
    assert_false(p.warming_up);
    assert_true(p.requests > 100);
    assert_true(p.rate_last_s > 250 && p.rate_last_s < 420);
    assert_true(p.p99_last_s > 0 && p.p99_last_s < 50 * MS);
    struct lg_stats *st = NULL;
    assert_int_equal(lg_wait(run, &st), 0);
    assert_true(lg_done(run));
    print_message("think: %.1f req/s (4 users, 10 ms think)\n", st->achieved_rate);
    assert_true(st->achieved_rate > 250 && st->achieved_rate < 400);
    assert_int_equal(total_errors(st), 0);
    lg_stats_free(st);
    lg_free(run);
    sim_stop(&s);
}

/* ---- SSE through the stream hooks ---- */

struct sse_check {
    struct sse_parser sp;
    int64_t t_arrival;
    int events, done;
    int64_t worst;
    int64_t errs[64];
    int headers_status;
    int sent, out_of_order; /* on_sent: calls; hooks that saw no on_sent before them */
    int64_t last_sent;
};

static void on_event(void *ud, const char *ev, size_t elen, const char *data, size_t dlen)
{
    (void)ev;
    (void)elen;
    (void)dlen;
    struct sse_check *c = ud;
    const char *t = strstr(data, "\"t_ns\":");
    if (!t)
        return;
    int64_t sched = strtoll(t + 7, NULL, 10), d = c->t_arrival - sched;
    if (d < 0)
        d = -d;
    if (d > c->worst)
        c->worst = d;
    if (c->events < 64)
        c->errs[c->events] = d;
    c->events++;
}

/* on_sent comes first and once per request: it marks the request's state, which
 * the later hooks of that request see (and on_done clears). */
static void on_sent(void *ud, void **rs, int64_t intended, int64_t sent)
{
    struct sse_check *c = ud;
    c->sent++;
    if (*rs || intended != sent || sent > mono_ns() || sent < c->last_sent)
        c->out_of_order++;
    c->last_sent = sent;
    *rs = c;
}

static void on_headers(void *ud, void **rs, int status, int64_t t)
{
    struct sse_check *c = ud;
    if (*rs != c || t < c->last_sent)
        c->out_of_order++;
    c->headers_status = status;
}

static void on_body(void *ud, void **rs, const char *data, size_t len, int64_t t)
{
    (void)rs;
    struct sse_check *c = ud;
    c->t_arrival = t;
    sse_feed(&c->sp, data, len, on_event, c);
}

static void on_done(void *ud, void **rs, bool ok, enum lg_err err, int64_t t)
{
    struct sse_check *c = ud;
    bool cancelled = !ok && err == LG_ERR_COUNT; /* at the run's end: t is the loop's last */
    if (*rs != c || (!cancelled && t < c->last_sent))
        c->out_of_order++;
    *rs = NULL;
    if (ok)
        c->done++;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One run of 10 SSE requests (5 events each, 20 ms to the first, 10 ms
 * between); returns the worst arrival error in ns. */
static int64_t sse_attempt(uint16_t port)
{
    struct sse_check chk = {0};
    sse_init(&chk.sp, 0);
    static const struct lg_stream_ops ops = {on_headers, on_body, on_done, on_sent};
    struct lg_config cfg = base_cfg(port);
    cfg.connections = 1;
    cfg.max_requests = 10;
    cfg.stream = &ops;
    cfg.stream_ud = &chk;
    struct lg_stats *st = run_cfg(&cfg);
    qsort(chk.errs, 50, sizeof(chk.errs[0]), cmp_i64);
    print_message("sse: %d events, arrival error p50 %.3f p90 %.3f worst %.3f ms\n", chk.events,
                  (double)chk.errs[25] / 1e6, (double)chk.errs[45] / 1e6, (double)chk.worst / 1e6);
    assert_int_equal(st->ok, 10);
    assert_int_equal(chk.done, 10);
    /* the 10th response stops the run; the connection may have sent an 11th, cancelled */
    print_message("sse: on_sent %d, out of order %d\n", chk.sent, chk.out_of_order);
    assert_true(chk.sent >= 10 && chk.sent <= 11);
    assert_int_equal(chk.out_of_order, 0);
    assert_int_equal(chk.headers_status, 200);
    assert_int_equal(chk.events, 50);
    sse_free(&chk.sp);
    lg_stats_free(st);
    return chk.errs[45]; /* the 90th percentile of the 50 events' errors */
}

/* The events' arrival times (as the engine reports them to the stream hooks)
 * are within 0.5 ms of the times sonde-sim scheduled them: 90% of them, in one
 * run of up to 10. The error includes the server's own lateness and the
 * scheduler's noise on this shared 2-core VM, where meson runs another test
 * beside this one: a single preempted event (seen: 2-9 ms, in every one of 10
 * runs on a fresh machine) says nothing of the engine, the bulk does. */
static void test_sse_stream(void **state)
{
    (void)state;
    struct sim s;
    sim_start(
        &s, (const char *const[]){"--sse", "5", "--sse-first", "20ms", "--sse-gap", "10ms", NULL});
    /* ASan and UBSan slow every path: their builds get a looser bound */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
    const int64_t bound = 2 * MS;
#else
    const int64_t bound = MS / 2;
#endif
    int64_t best = INT64_MAX;
    for (int i = 0; i < 10 && best >= bound; i++) {
        int64_t p90 = sse_attempt(s.port);
        best = p90 < best ? p90 : best;
    }
    assert_true(best < bound);
    sim_stop(&s);
}

/* ---- bad servers ---- */

static void test_refused(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, l), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd); /* bound, never listened: connections are refused */
    struct lg_config cfg = base_cfg(ntohs(a.sin_port));
    cfg.duration_ns = 300 * MS;
    int64_t t0 = mono_ns();
    struct lg_stats *st = run_cfg(&cfg);
    assert_true(mono_ns() - t0 < 2 * SEC);
    assert_true(st->errors[LG_ERR_CONNECT] > 0);
    assert_int_equal(st->ok, 0);
    assert_int_equal(st->requests, st->errors[LG_ERR_CONNECT]);
    lg_stats_free(st);
}

static struct lg_stats *run_sim_errors(const char *kind, int64_t fb_timeout)
{
    struct sim s;
    sim_start(&s, (const char *const[]){"--error-rate", "1", "--error-kind", kind, NULL});
    struct lg_config cfg = base_cfg(s.port);
    cfg.duration_ns = 500 * MS;
    cfg.first_byte_timeout_ns = fb_timeout;
    struct lg_stats *st = run_cfg(&cfg);
    sim_stop(&s);
    return st;
}

static void test_sim_errors(void **state)
{
    (void)state;
    struct lg_stats *st = run_sim_errors("reset", 0);
    assert_true(st->errors[LG_ERR_READ] > 0);
    assert_int_equal(st->ok, 0);
    assert_int_equal(total_errors(st), st->errors[LG_ERR_READ]);
    lg_stats_free(st);

    st = run_sim_errors("malformed", 0);
    assert_true(st->errors[LG_ERR_PROTOCOL] > 0);
    assert_int_equal(total_errors(st), st->errors[LG_ERR_PROTOCOL]);
    lg_stats_free(st);

    st = run_sim_errors("hang", 200 * MS);
    /* 4 connections, each times out after 200 ms (+ up to 5 ms scan) */
    assert_true(st->errors[LG_ERR_TIMEOUT] >= 4 && st->errors[LG_ERR_TIMEOUT] <= 12);
    assert_int_equal(total_errors(st), st->errors[LG_ERR_TIMEOUT]);
    lg_stats_free(st);

    /* whole-request timeout: the first bytes come at once, the stream takes 500 ms */
    struct sim s;
    sim_start(&s, (const char *const[]){"--sse", "5", "--sse-gap", "100ms", NULL});
    struct lg_config cfg = base_cfg(s.port);
    cfg.duration_ns = 600 * MS;
    cfg.first_byte_timeout_ns = 100 * MS;
    cfg.request_timeout_ns = 200 * MS;
    st = run_cfg(&cfg);
    sim_stop(&s);
    assert_true(st->errors[LG_ERR_TIMEOUT] >= 4 && st->errors[LG_ERR_TIMEOUT] <= 12);
    assert_int_equal(st->ok, 0);
    lg_stats_free(st);

    st = run_sim_errors("status:503", 0);
    assert_true(st->errors[LG_ERR_STATUS] > 0);
    assert_int_equal(st->status_class[5], st->errors[LG_ERR_STATUS]);
    assert_int_equal(st->ok, 0);
    lg_stats_free(st);
}

/* A raw server thread: accepts connections and answers every request (any
 * bytes) with `reply` of reply_len bytes, keeping the connection open. */
struct raw_srv {
    int lfd;
    uint16_t port;
    const char *reply;
    size_t reply_len;
    int64_t trickle_ns; /* > 0: send the reply one byte at a time (slowloris) */
    pthread_t th;
    volatile int stop;
};

static void raw_send(struct raw_srv *s, int c)
{
    size_t off = 0;
    while (off < s->reply_len && !s->stop) {
        size_t n = s->trickle_ns ? 1 : s->reply_len - off;
        ssize_t w = send(c, s->reply + off, n, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
        if (s->trickle_ns)
            sleep_ns(s->trickle_ns);
    }
}

static void *raw_main(void *arg)
{
    struct raw_srv *s = arg;
    while (!s->stop) {
        int c = accept(s->lfd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[4096];
        if (read(c, buf, sizeof(buf)) > 0)
            raw_send(s, c);
        sleep_ns(20 * MS);
        close(c);
    }
    return NULL;
}

static void raw_start(struct raw_srv *s, const char *reply, size_t len, int64_t trickle_ns)
{
    s->trickle_ns = trickle_ns;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, l), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &l), 0);
    struct timeval tv = {.tv_usec = 100000};
    setsockopt(s->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    s->port = ntohs(a.sin_port);
    s->reply = reply;
    s->reply_len = len;
    s->stop = 0;
    assert_int_equal(pthread_create(&s->th, NULL, raw_main, s), 0);
}

static void raw_stop(struct raw_srv *s)
{
    s->stop = 1;
    pthread_join(s->th, NULL);
    close(s->lfd);
}

static struct lg_stats *run_raw(const char *reply, size_t len)
{
    struct raw_srv s;
    raw_start(&s, reply, len, 0);
    struct lg_config cfg = base_cfg(s.port);
    cfg.connections = 1;
    cfg.duration_ns = 300 * MS;
    struct lg_stats *st = run_cfg(&cfg);
    raw_stop(&s);
    return st;
}

static void test_raw_bad_responses(void **state)
{
    (void)state;
    /* 1 MiB header line */
    size_t big = (size_t)1 << 20;
    char *r = xmalloc(big + 64);
    int n = snprintf(r, 64, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(r + n, 'a', big);
    memcpy(r + n + big, "\r\n\r\n", 4);
    struct lg_stats *st = run_raw(r, (size_t)n + big + 4);
    assert_true(st->errors[LG_ERR_PROTOCOL] > 0);
    assert_int_equal(st->ok, 0);
    lg_stats_free(st);
    free(r);

    static const char chunk[] =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n";
    st = run_raw(chunk, strlen(chunk));
    assert_true(st->errors[LG_ERR_PROTOCOL] > 0);
    assert_int_equal(st->ok, 0);
    lg_stats_free(st);

    /* slowloris: a valid response trickled a byte every 20 ms; the whole
     * request timeout (300 ms) ends each attempt, and nothing hangs */
    static const char slow[] = "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\nok";
    struct raw_srv rs;
    raw_start(&rs, slow, strlen(slow), 20 * MS);
    struct lg_config cfg = base_cfg(rs.port);
    cfg.connections = 1;
    cfg.duration_ns = 700 * MS;
    cfg.request_timeout_ns = 300 * MS;
    int64_t t0 = mono_ns();
    st = run_cfg(&cfg);
    assert_true(mono_ns() - t0 < 2 * SEC);
    raw_stop(&rs);
    assert_true(st->errors[LG_ERR_TIMEOUT] >= 1 && st->errors[LG_ERR_TIMEOUT] <= 3);
    assert_int_equal(st->ok, 0);
    lg_stats_free(st);

    /* sanity: the same server with a good response succeeds */
    static const char good[] =
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    st = run_raw(good, strlen(good));
    assert_true(st->ok > 0);
    assert_int_equal(total_errors(st), 0);
    lg_stats_free(st);

    /* ... also when it arrives a byte at a time (every line split across
     * reads: the unparsed tail is carried from read to read) */
    static const char chunked_good[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
                                       "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    raw_start(&rs, chunked_good, strlen(chunked_good), MS);
    cfg = base_cfg(rs.port);
    cfg.connections = 1;
    cfg.max_requests = 2;
    st = run_cfg(&cfg);
    raw_stop(&rs);
    assert_int_equal(st->ok, 2);
    assert_int_equal(total_errors(st), 0);
    assert_int_equal(st->bytes_in, 2 * strlen(chunked_good));
    lg_stats_free(st);
}

static void test_bad_config(void **state)
{
    (void)state;
    struct lg_config cfg = base_cfg(80);
    struct lg_run *run = NULL;
    char err[256] = "";
    assert_int_equal(lg_start(&cfg, &run, err, sizeof(err)), -EINVAL); /* no bound */
    assert_non_null(strstr(err, "duration"));
    cfg.duration_ns = SEC;
    cfg.model = LG_OPEN;
    assert_int_equal(lg_start(&cfg, &run, err, sizeof(err)), -EINVAL);
    assert_null(run);
    assert_non_null(strstr(err, "rate"));
    cfg.model = LG_CLOSED;
    cfg.host = (char *)"no-such-host.invalid";
    assert_true(lg_start(&cfg, &run, err, sizeof(err)) < 0);
    assert_null(run);
    assert_string_equal(lg_err_name(LG_ERR_TIMEOUT), "timeout");
}

/* ---- TLS against `openssl s_server -www` (HTTP/1.0, closes after each
 * response, so every request also does a handshake) ---- */

static int run_cmd(char *const *argv, const char *out)
{
    struct proc_spec spec = {.argv = argv, .out_path = out, .stdin_fd = -1};
    struct proc p;
    char err[256];
    int rc = proc_spawn(&spec, &p, err, sizeof(err));
    if (rc < 0)
        return rc;
    proc_wait(&p, 20 * SEC);
    return WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0 ? 0 : -1;
}

static void test_tls(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_engine_tls_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *key = path_join(dir, "k.pem"), *crt = path_join(dir, "c.pem"),
         *out = path_join(dir, "out");
    char *gen[] = {"openssl",
                   "req",
                   "-x509",
                   "-newkey",
                   "ec",
                   "-pkeyopt",
                   "ec_paramgen_curve:prime256v1",
                   "-nodes",
                   "-subj",
                   "/CN=localhost",
                   "-addext",
                   "subjectAltName=DNS:localhost",
                   "-days",
                   "1",
                   "-keyout",
                   key,
                   "-out",
                   crt,
                   NULL};
    if (run_cmd(gen, out) < 0) {
        rm_rf(dir);
        free(key), free(crt), free(out);
        skip(); /* no openssl command */
    }
    char *srv[] = {"openssl", "s_server", "-accept", "0", "-cert", crt, "-key", key, "-www", NULL};
    struct proc_spec spec = {.argv = srv, .out_path = out, .stdin_fd = -1};
    struct proc p;
    char err[256];
    assert_int_equal(proc_spawn(&spec, &p, err, sizeof(err)), 0);
    uint16_t port = 0;
    for (int i = 0; i < 500 && !port; i++) {
        char *txt = NULL;
        size_t len = 0;
        const char *l;
        if (read_file(out, 4096, &txt, &len) == 0 && (l = strstr(txt, "ACCEPT [::]:")))
            port = (uint16_t)atoi(l + strlen("ACCEPT [::]:"));
        free(txt);
        if (!port)
            sleep_ns(10 * MS);
    }
    assert_true(port > 0);
    struct lg_config cfg = base_cfg(port);
    cfg.host = (char *)"::1";
    cfg.tls = true;
    cfg.sni = (char *)"localhost";
    cfg.connections = 1;
    cfg.max_requests = 20;
    cfg.duration_ns = 10 * SEC;
    struct lg_stats *st = run_cfg(&cfg);
    print_message("tls: %llu ok, %llu tls errors\n", (unsigned long long)st->ok,
                  (unsigned long long)st->errors[LG_ERR_TLS]);
    assert_int_equal(st->ok, 20);
    assert_int_equal(total_errors(st), 0);
    assert_true(st->bytes_in > 20 * 100);
    lg_stats_free(st);

    /* verified: trusted through ca_file, the name matches */
    cfg.tls_verify = true;
    cfg.ca_file = crt;
    cfg.max_requests = 5;
    st = run_cfg(&cfg);
    assert_int_equal(st->ok, 5);
    assert_int_equal(total_errors(st), 0);
    lg_stats_free(st);
    /* ... a name the certificate does not carry: every handshake fails */
    cfg.sni = (char *)"other.example";
    cfg.max_requests = 0;
    cfg.duration_ns = 300 * MS;
    st = run_cfg(&cfg);
    assert_int_equal(st->ok, 0);
    assert_true(st->errors[LG_ERR_TLS] > 0 && st->errors[LG_ERR_TLS] == total_errors(st));
    lg_stats_free(st);
    /* ... the system's CAs do not trust a self-signed certificate */
    cfg.sni = (char *)"localhost";
    cfg.ca_file = NULL;
    st = run_cfg(&cfg);
    assert_int_equal(st->ok, 0);
    assert_true(st->errors[LG_ERR_TLS] > 0 && st->errors[LG_ERR_TLS] == total_errors(st));
    lg_stats_free(st);
    /* ... an unreadable CA file is a start error naming it */
    cfg.ca_file = (char *)"/nonexistent/ca.pem";
    struct lg_run *run = NULL;
    assert_int_equal(lg_start(&cfg, &run, err, sizeof(err)), -EINVAL);
    assert_null(run);
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
    cfg.tls_verify = false;
    cfg.ca_file = NULL;

    /* plain HTTP to the TLS port: the "response" is a TLS alert, not HTTP */
    cfg.tls = false;
    cfg.max_requests = 0;
    cfg.duration_ns = 300 * MS;
    st = run_cfg(&cfg);
    assert_int_equal(st->ok, 0);
    assert_true(total_errors(st) > 0);
    lg_stats_free(st);
    proc_stop(&p, SEC);
    rm_rf(dir);
    free(key);
    free(crt);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_bad_config, teardown),
        cmocka_unit_test_teardown(test_closed_loop_delay, teardown),
        cmocka_unit_test_teardown(test_keep_second_hdrs, teardown),
        cmocka_unit_test_teardown(test_max_requests, teardown),
        cmocka_unit_test_teardown(test_open_loop_stall, teardown),
        cmocka_unit_test_teardown(test_open_loop_poisson, teardown),
        cmocka_unit_test_teardown(test_ramp_and_gamma, teardown),
        cmocka_unit_test_teardown(test_think_and_progress, teardown),
        cmocka_unit_test_teardown(test_sse_stream, teardown),
        cmocka_unit_test_teardown(test_refused, teardown),
        cmocka_unit_test_teardown(test_sim_errors, teardown),
        cmocka_unit_test_teardown(test_raw_bad_responses, teardown),
        cmocka_unit_test_teardown(test_tls, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
