/* test_fetch.c — http_fetch against a small server on a thread (every framing,
 * a server that never answers, one that sends too much, garbage), and sonde's
 * exporter read back through http_fetch. */
#include "core/exporter.h"
#include "loadgen/fetch.h"
#include "util/net.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* One connection served with a canned answer: what, then close (or hold). */
struct server {
    int lfd, port;
    const char *answer; /* NULL: read the request and never answer */
    size_t answer_len;
    size_t repeat; /* the answer's body part sent this many times (big bodies) */
    const char *body_part;
    int64_t hold_ns; /* after answering (or not), keep the connection this long */
    pthread_t th;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char req[4096];
    ssize_t n = recv(fd, req, sizeof(req), 0);
    (void)n;
    if (s->answer) {
        ssize_t w = send(fd, s->answer, s->answer_len, MSG_NOSIGNAL);
        for (size_t i = 0; w >= 0 && i < s->repeat; i++)
            w = send(fd, s->body_part, strlen(s->body_part), MSG_NOSIGNAL);
    }
    if (s->hold_ns)
        sleep_ns(s->hold_ns);
    close(fd);
    return NULL;
}

static void server_start(struct server *s)
{
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    if (s->answer && !s->answer_len)
        s->answer_len = strlen(s->answer);
    assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
}

static void server_end(struct server *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
}

static int fetch_from(struct server *s, int64_t timeout_ns, size_t max, struct fetch_result *out,
                      char *err, size_t errlen)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics?x=1", s->port);
    return http_fetch("GET", url, NULL, NULL, 0, timeout_ns, max, NULL, out, err, errlen);
}

static void content_length_and_chunked(void **state)
{
    (void)state;
    struct server s = {.answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                 "Content-Length: 5\r\n\r\nhello"};
    server_start(&s);
    struct fetch_result r;
    char err[256] = "";
    assert_int_equal(fetch_from(&s, 2000000000, 1 << 20, &r, err, sizeof(err)), 0);
    server_end(&s);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 5);
    assert_string_equal(r.body, "hello");
    assert_string_equal(r.content_type, "text/plain");
    fetch_result_free(&r);

    struct server c = {.answer = "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"};
    server_start(&c);
    assert_int_equal(fetch_from(&c, 2000000000, 1 << 20, &r, err, sizeof(err)), 0);
    server_end(&c);
    assert_int_equal(r.status, 404); /* any status comes back: the caller judges it */
    assert_string_equal(r.body, "abcdefg");
    fetch_result_free(&r);

    /* read until close */
    struct server u = {.answer = "HTTP/1.0 200 OK\r\n\r\nuntil the end"};
    server_start(&u);
    assert_int_equal(fetch_from(&u, 2000000000, 1 << 20, &r, err, sizeof(err)), 0);
    server_end(&u);
    assert_string_equal(r.body, "until the end");
    fetch_result_free(&r);
}

static void silent_server_times_out(void **state)
{
    (void)state;
    struct server s = {.answer = NULL, .hold_ns = 1500000000};
    server_start(&s);
    struct fetch_result r;
    char err[256] = "";
    int64_t t0 = mono_ns();
    assert_int_equal(fetch_from(&s, 300000000, 1 << 20, &r, err, sizeof(err)), -ETIMEDOUT);
    int64_t took = mono_ns() - t0;
    server_end(&s);
    assert_true(took >= 290000000 && took < 1200000000); /* the deadline, not the server */
    assert_non_null(strstr(err, "no complete response within 0.3 s"));
    assert_null(r.body);
}

/* Cancelled when the flag's time has come: set by the test's clock, read by fetch. */
static int64_t cancel_at;
static bool cancel_due(void *arg)
{
    (void)arg;
    return mono_ns() >= cancel_at;
}

static void a_cancel_cuts_a_silent_server_short(void **state)
{
    (void)state;
    struct server s = {.answer = NULL, .hold_ns = 1500000000};
    server_start(&s);
    struct fetch_result r;
    char err[256] = "", url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", s.port);
    const struct net_cancel cancel = {.fn = cancel_due};
    int64_t t0 = mono_ns();
    cancel_at = t0 + 200000000;
    assert_int_equal(
        http_fetch("GET", url, NULL, NULL, 0, 10000000000, 1 << 20, &cancel, &r, err, sizeof(err)),
        -ECANCELED);
    int64_t took = mono_ns() - t0;
    server_end(&s);
    assert_true(took >= 190000000 && took < 1200000000); /* the cancel, far before the timeout */
    assert_non_null(strstr(err, "cancelled"));
    assert_null(r.body);
    /* already cancelled: nothing is sent (the refused port is not even tried) */
    cancel_at = 0;
    assert_int_equal(http_fetch("GET", "http://127.0.0.1:1/", NULL, NULL, 0, 1000000000, 1024,
                                &cancel, &r, err, sizeof(err)),
                     -ECANCELED);
}

static void too_large_is_refused(void **state)
{
    (void)state;
    static char part[4097];
    memset(part, 'x', sizeof(part) - 1);
    struct server s = {.answer = "HTTP/1.1 200 OK\r\nContent-Length: 4194304\r\n\r\n",
                       .body_part = part,
                       .repeat = 1024};
    server_start(&s);
    struct fetch_result r;
    char err[256] = "";
    assert_int_equal(fetch_from(&s, 5000000000, 1 << 20, &r, err, sizeof(err)), -EFBIG);
    server_end(&s);
    assert_non_null(strstr(err, "larger than the 1.0 MiB limit"));
    assert_null(r.body);
}

static void garbage_and_refused(void **state)
{
    (void)state;
    struct server s = {.answer = "SSH-2.0-OpenSSH\r\n\r\n"};
    server_start(&s);
    struct fetch_result r;
    char err[256] = "";
    assert_int_equal(fetch_from(&s, 2000000000, 1 << 20, &r, err, sizeof(err)), -EPROTO);
    server_end(&s);
    assert_non_null(strstr(err, "malformed response"));

    struct server t = {.answer = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"};
    server_start(&t);
    assert_int_equal(fetch_from(&t, 2000000000, 1 << 20, &r, err, sizeof(err)), -EPROTO);
    server_end(&t);
    assert_non_null(strstr(err, "closed before the response was complete"));

    /* nothing listens: a port bound and closed again */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    assert_true(
        http_fetch("GET", url, NULL, NULL, 0, 1000000000, 1024, NULL, &r, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "connection refused"));
    assert_int_equal(http_fetch("GET", "https://x/", NULL, NULL, 0, 1000000000, 1024, NULL, &r, err,
                                sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "not an http://"));
}

static void exporter_serves_what_was_set(void **state)
{
    (void)state;
    struct exporter *x = NULL;
    char err[256] = "";
    assert_int_equal(exporter_start("127.0.0.1:0", &x, err, sizeof(err)), 0);
    const char *target = exporter_target(x);
    assert_non_null(strstr(target, "127.0.0.1:"));
    exporter_set(x, "sonde_client_requests_total", "requests\ndone", LIVE_COUNTER,
                 "session=\"s\",trial=\"1\",component=\"c\"", 42);
    exporter_set(x, "sonde_node_cpu_percent", "cpu", LIVE_GAUGE,
                 "session=\"s\",trial=\"2\",component=\"n\"", 12.5);
    static const double le[2] = {0.001, 0.01};
    static const uint64_t counts[3] = {3, 4, 1};
    exporter_set_histogram(x, "sonde_client_request_duration_seconds", "latency",
                           "session=\"s\",trial=\"1\",component=\"c\"", le, counts, 2, 0.5);
    char url[320];
    snprintf(url, sizeof(url), "http://%s/metrics", target);
    struct fetch_result r;
    assert_int_equal(
        http_fetch("GET", url, NULL, NULL, 0, 2000000000, 1 << 20, NULL, &r, err, sizeof(err)), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.content_type, "version=0.0.4"));
    assert_non_null(strstr(r.body, "# HELP sonde_client_requests_total requests\\ndone\n"
                                   "# TYPE sonde_client_requests_total counter\n"
                                   "sonde_client_requests_total{session=\"s\",trial=\"1\","
                                   "component=\"c\"} 42\n"));
    assert_non_null(strstr(r.body, "# TYPE sonde_node_cpu_percent gauge\n"));
    /* buckets cumulative, +Inf and _count equal the total */
    assert_non_null(strstr(r.body, "component=\"c\",le=\"0.001\"} 3\n"));
    assert_non_null(strstr(r.body, "component=\"c\",le=\"0.01\"} 7\n"));
    assert_non_null(strstr(r.body, "component=\"c\",le=\"+Inf\"} 8\n"));
    assert_non_null(strstr(r.body, "sonde_client_request_duration_seconds_count{session=\"s\","
                                   "trial=\"1\",component=\"c\"} 8\n"));
    assert_non_null(strstr(r.body, "sonde_client_request_duration_seconds_sum{session=\"s\","
                                   "trial=\"1\",component=\"c\"} 0.5\n"));
    fetch_result_free(&r);

    /* the trial that ended is forgotten; the other stays */
    exporter_forget(x, ",trial=\"1\",");
    assert_int_equal(
        http_fetch("GET", url, NULL, NULL, 0, 2000000000, 1 << 20, NULL, &r, err, sizeof(err)), 0);
    assert_null(strstr(r.body, "sonde_client_requests_total"));
    assert_non_null(strstr(r.body, "sonde_node_cpu_percent{session=\"s\",trial=\"2\""));
    fetch_result_free(&r);

    /* after the forget the series that stayed is still found (a new value
     * replaces its one line), and 3000 more each keep their own */
    exporter_set(x, "sonde_node_cpu_percent", "cpu", LIVE_GAUGE,
                 "session=\"s\",trial=\"2\",component=\"n\"", 99);
    for (int i = 0; i < 3000; i++) {
        char l[80];
        snprintf(l, sizeof(l), "session=\"s\",trial=\"2\",component=\"k%d\"", i);
        exporter_set(x, "sonde_k", "k", LIVE_GAUGE, l, i);
        exporter_set(x, "sonde_k", "k", LIVE_GAUGE, l, i + 1);
    }
    assert_int_equal(
        http_fetch("GET", url, NULL, NULL, 0, 2000000000, 1 << 22, NULL, &r, err, sizeof(err)), 0);
    assert_non_null(strstr(r.body, "sonde_node_cpu_percent{session=\"s\",trial=\"2\","
                                   "component=\"n\"} 99\n"));
    assert_null(strstr(strstr(r.body, "sonde_node_cpu_percent{") + 1, "sonde_node_cpu_percent{"));
    size_t lines = 0;
    for (const char *p = r.body; (p = strstr(p, "\nsonde_k{")) != NULL; p++)
        lines++;
    assert_int_equal(lines, 3000);
    assert_non_null(strstr(r.body, "component=\"k0\"} 1\n"));
    assert_non_null(strstr(r.body, "component=\"k2999\"} 3000\n"));
    fetch_result_free(&r);

    snprintf(url, sizeof(url), "http://%s/other", target);
    assert_int_equal(
        http_fetch("GET", url, NULL, NULL, 0, 2000000000, 1 << 20, NULL, &r, err, sizeof(err)), 0);
    assert_int_equal(r.status, 404);
    fetch_result_free(&r);
    assert_int_equal(
        http_fetch("POST", url, NULL, "x", 1, 2000000000, 1 << 20, NULL, &r, err, sizeof(err)), 0);
    assert_int_equal(r.status, 405);
    fetch_result_free(&r);
    exporter_stop(x);

    assert_int_equal(exporter_start("nonsense", &x, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "expected HOST:PORT"));
}

/* A client that connects and sends nothing delays the next scrape by the
 * server's read limit at most: the server answers the one after it. */
static void exporter_outlives_a_silent_client(void **state)
{
    (void)state;
    struct exporter *x = NULL;
    char err[256] = "";
    assert_int_equal(exporter_start("127.0.0.1:0", &x, err, sizeof(err)), 0);
    exporter_set(x, "sonde_up", "up", LIVE_GAUGE, "", 1);
    char host[300];
    snprintf(host, sizeof(host), "%s", exporter_target(x));
    char *colon = strrchr(host, ':');
    *colon = '\0';
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, host, &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char url[320];
    snprintf(url, sizeof(url), "http://%s:%s/metrics", host, colon + 1);
    struct fetch_result r;
    int64_t t0 = mono_ns();
    assert_int_equal(
        http_fetch("GET", url, NULL, NULL, 0, 5000000000, 1 << 20, NULL, &r, err, sizeof(err)), 0);
    assert_true(mono_ns() - t0 < 4000000000);
    assert_non_null(strstr(r.body, "sonde_up 1\n"));
    fetch_result_free(&r);
    close(fd);
    exporter_stop(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(content_length_and_chunked),
        cmocka_unit_test(silent_server_times_out),
        cmocka_unit_test(a_cancel_cuts_a_silent_server_short),
        cmocka_unit_test(too_large_is_refused),
        cmocka_unit_test(garbage_and_refused),
        cmocka_unit_test(exporter_serves_what_was_set),
        cmocka_unit_test(exporter_outlives_a_silent_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
