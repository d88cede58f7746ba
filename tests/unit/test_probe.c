/* test_probe.c — readiness probes against real sockets, an HTTP server, commands and logs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/probe.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MS ((int64_t)1000000)

static char tmpdir[] = "/tmp/sonde-test-probe-XXXXXX";

/* A listening socket on 127.0.0.1:0; its port as text in port. */
static int listen_any(char *port, size_t n, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, backlog), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    snprintf(port, n, "%u", (unsigned)ntohs(a.sin_port));
    return fd;
}

static void test_tcp(void **state)
{
    char port[16], detail[128];
    int fd = listen_any(port, sizeof(port), 16);
    struct probe_spec p = {.kind = PROBE_TCP, .port = port};
    assert_int_equal(probe_once(&p, NULL, NULL, 1000 * MS, detail, sizeof(detail)), 1);
    assert_string_equal(detail, "connected");
    p.host = "localhost";
    assert_int_equal(probe_once(&p, NULL, NULL, 1000 * MS, detail, sizeof(detail)), 1);
    close(fd);
    /* The port is closed now. */
    p.host = "127.0.0.1";
    assert_int_equal(probe_once(&p, NULL, NULL, 1000 * MS, detail, sizeof(detail)), 0);
    assert_string_equal(detail, "connection refused");
    /* Bad port text (an unresolved reference) is a hard error. */
    p.port = "${self.port}";
    assert_int_equal(probe_once(&p, NULL, NULL, 1000 * MS, detail, sizeof(detail)), -EINVAL);
    p.port = NULL;
    assert_int_equal(probe_once(&p, NULL, NULL, 1000 * MS, detail, sizeof(detail)), -EINVAL);
}

/* ---- a tiny HTTP server ---- */

struct server {
    int fd;
    atomic_bool stop;
    pthread_t thread;
    char last_request[1024];
};

static void serve_one(struct server *s, int c)
{
    char req[1024];
    size_t len = 0;
    while (len + 1 < sizeof(req)) {
        ssize_t n = recv(c, req + len, sizeof(req) - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    req[len] = '\0';
    snprintf(s->last_request, sizeof(s->last_request), "%s", req);
    const char *resp = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    if (strncmp(req, "GET /ok ", 8) == 0)
        resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    else if (strncmp(req, "GET /busy ", 10) == 0)
        resp = "HTTP/1.0 503 Service Unavailable\r\n\r\n";
    else if (strncmp(req, "GET /garbage ", 13) == 0)
        resp = "hello there\r\n";
    else if (strncmp(req, "GET /empty ", 11) == 0)
        resp = "";
    else if (strncmp(req, "GET /silent ", 12) == 0) {
        struct pollfd pfd = {.fd = c, .events = POLLIN};
        poll(&pfd, 1, 3000); /* until the client gives up */
        resp = "";
    }
    if (*resp)
        (void)!send(c, resp, strlen(resp), MSG_NOSIGNAL);
    close(c);
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0)
            serve_one(s, c);
    }
    return NULL;
}

static void test_http(void **state)
{
    static struct server s;
    char port[16], detail[128];
    s.fd = listen_any(port, sizeof(port), 16);
    atomic_store(&s.stop, false);
    assert_int_equal(pthread_create(&s.thread, NULL, server_main, &s), 0);
    char *base = xasprintf("http://127.0.0.1:%s", port);
    struct {
        const char *path;
        int want;
        const char *detail;
    } cases[] = {
        {"/ok", 1, "HTTP 200"},          {"/busy", 0, "HTTP 503"},
        {"/missing?x=1", 0, "HTTP 404"}, {"/garbage", 0, "malformed response"},
        {"/empty", 0, "empty response"},
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(cases); i++) {
        char *url = xasprintf("%s%s", base, cases[i].path);
        struct probe_spec p = {.kind = PROBE_HTTP, .url = url};
        assert_int_equal(probe_once(&p, NULL, NULL, 2000 * MS, detail, sizeof(detail)),
                         cases[i].want);
        assert_string_equal(detail, cases[i].detail);
        free(url);
    }
    /* The request line and Host header the server saw. */
    char *want = xasprintf("GET /empty HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n", port);
    assert_true(str_startswith(s.last_request, want));
    assert_non_null(strstr(s.last_request, "Connection: close\r\n"));
    free(want);
    /* A server that never answers: bounded by the attempt time. */
    char *url = xasprintf("%s/silent", base);
    struct probe_spec p = {.kind = PROBE_HTTP, .url = url};
    int64_t t0 = mono_ns();
    assert_int_equal(probe_once(&p, NULL, NULL, 300 * MS, detail, sizeof(detail)), 0);
    int64_t took = mono_ns() - t0;
    assert_string_equal(detail, "timed out");
    assert_true(took >= 290 * MS && took < 2000 * MS);
    free(url);
    /* localhost and a missing path. */
    url = xasprintf("http://localhost:%s", port);
    p.url = url;
    assert_int_equal(probe_once(&p, NULL, NULL, 2000 * MS, detail, sizeof(detail)), 0);
    assert_string_equal(detail, "HTTP 404");
    assert_true(str_startswith(s.last_request, "GET / HTTP/1.1\r\n"));
    free(url);
    atomic_store(&s.stop, true);
    pthread_join(s.thread, NULL);
    close(s.fd);
    /* Now nobody listens. */
    url = xasprintf("%s/ok", base);
    p.url = url;
    assert_int_equal(probe_once(&p, NULL, NULL, 1000 * MS, detail, sizeof(detail)), 0);
    assert_string_equal(detail, "connection refused");
    free(url);
    free(base);
}

static void test_http_bad_urls(void **state)
{
    char detail[128];
    const char *bad[] = {"https://127.0.0.1/", "ftp://x/",    "http://",      "http://:80/",
                         "http://h:port/",     "http://u@h/", "http://[::1/", NULL};
    for (size_t i = 0; bad[i]; i++) {
        struct probe_spec p = {.kind = PROBE_HTTP, .url = (char *)(uintptr_t)bad[i]};
        assert_int_equal(probe_once(&p, NULL, NULL, 100 * MS, detail, sizeof(detail)), -EINVAL);
    }
    struct probe_spec p = {.kind = PROBE_HTTP, .url = "https://127.0.0.1/"};
    probe_once(&p, NULL, NULL, 100 * MS, detail, sizeof(detail));
    assert_string_equal(detail, "only http:// URLs are supported");
}

static void test_cmd(void **state)
{
    char detail[128];
    char *t[] = {"true", NULL}, *f[] = {"sh", "-c", "exit 2", NULL}, *slow[] = {"sleep", "5", NULL};
    char *missing[] = {"sonde-no-such-probe", NULL};
    struct probe_spec p = {.kind = PROBE_CMD, .argv = t};
    assert_int_equal(probe_once(&p, NULL, NULL, 2000 * MS, detail, sizeof(detail)), 1);
    assert_string_equal(detail, "exit status 0");
    p.argv = f;
    assert_int_equal(probe_once(&p, NULL, NULL, 2000 * MS, detail, sizeof(detail)), 0);
    assert_string_equal(detail, "exit status 2");
    p.argv = slow;
    int64_t t0 = mono_ns();
    assert_int_equal(probe_once(&p, NULL, NULL, 300 * MS, detail, sizeof(detail)), 0);
    assert_true(mono_ns() - t0 < 3000 * MS);
    assert_string_equal(detail, "timed out");
    p.argv = missing;
    assert_int_equal(probe_once(&p, NULL, NULL, 300 * MS, detail, sizeof(detail)), -ENOENT);
    assert_string_equal(detail, "cannot run 'sonde-no-such-probe': No such file or directory");
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char *path = path_join(dir, name);
    assert_int_equal(write_file_atomic(path, text, strlen(text)), 0);
    free(path);
}

static void test_log(void **state)
{
    char detail[128];
    char *dir = path_join(tmpdir, "log");
    assert_int_equal(mkdir_p(dir, 0755), 0);
    char *out = path_join(dir, "stdout.log");
    struct probe_spec p = {.kind = PROBE_LOG, .regex = "ready to accept( connections)?$"};
    assert_int_equal(probe_once(&p, out, NULL, 100 * MS, detail, sizeof(detail)), 0);
    assert_string_equal(detail, "no log file yet");
    write_text(dir, "stdout.log", "starting\nnot ready to accept connections yet\n");
    assert_int_equal(probe_once(&p, out, NULL, 100 * MS, detail, sizeof(detail)), 0);
    assert_string_equal(detail, "no matching line yet");
    /* PostgreSQL writes to stderr: the sibling stderr.log counts. */
    write_text(dir, "stderr.log", "LOG:  database system is ready to accept connections\n");
    assert_int_equal(probe_once(&p, out, NULL, 100 * MS, detail, sizeof(detail)), 1);
    assert_string_equal(detail, "matching line found");
    /* '^' anchors at each line (REG_NEWLINE). */
    p.regex = "^LOG: ";
    assert_int_equal(probe_once(&p, out, NULL, 100 * MS, detail, sizeof(detail)), 1);
    p.regex = "^database";
    assert_int_equal(probe_once(&p, out, NULL, 100 * MS, detail, sizeof(detail)), 0);
    p.regex = "(unclosed";
    assert_int_equal(probe_once(&p, out, NULL, 100 * MS, detail, sizeof(detail)), -EINVAL);
    assert_true(str_startswith(detail, "bad regular expression"));
    free(out);
    free(dir);
}

static void test_log_tail(void **state)
{
    char detail[128];
    char *dir = path_join(tmpdir, "big");
    assert_int_equal(mkdir_p(dir, 0755), 0);
    /* 5 MiB: the marker at the start is outside the scanned tail. */
    size_t n = (size_t)5 << 20;
    char *big = xmalloc(n + 1);
    memset(big, 'x', n);
    for (size_t i = 99; i < n; i += 100)
        big[i] = '\n';
    memcpy(big, "EARLY", 5);
    memcpy(big + n - 50, "LATE", 4);
    big[n - 1000] = '\0'; /* a NUL byte does not end the text */
    char *path = path_join(dir, "stdout.log");
    assert_int_equal(write_file_atomic(path, big, n), 0);
    struct probe_spec p = {.kind = PROBE_LOG, .regex = "EARLY"};
    assert_int_equal(probe_once(&p, path, NULL, 100 * MS, detail, sizeof(detail)), 0);
    p.regex = "^x*LATE";
    assert_int_equal(probe_once(&p, path, NULL, 100 * MS, detail, sizeof(detail)), 1);
    free(path);
    free(big);
    free(dir);
}

static void test_describe(void **state)
{
    char buf[128];
    char *argv[] = {"pg_isready", "-h", "127.0.0.1", NULL};
    struct probe_spec tcp = {.kind = PROBE_TCP, .port = "5432"};
    probe_describe(&tcp, buf, sizeof(buf));
    assert_string_equal(buf, "tcp 127.0.0.1:5432");
    struct probe_spec http = {.kind = PROBE_HTTP, .url = "http://h:8000/health"};
    probe_describe(&http, buf, sizeof(buf));
    assert_string_equal(buf, "http http://h:8000/health");
    struct probe_spec cmd = {.kind = PROBE_CMD, .argv = argv};
    probe_describe(&cmd, buf, sizeof(buf));
    assert_string_equal(buf, "command pg_isready -h 127.0.0.1");
    probe_describe(&cmd, buf, 12);
    assert_string_equal(buf, "command");
    struct probe_spec log = {.kind = PROBE_LOG, .regex = "ready"};
    probe_describe(&log, buf, sizeof(buf));
    assert_string_equal(buf, "log /ready/");
    struct probe_spec none = {.kind = PROBE_NONE};
    probe_describe(&none, buf, sizeof(buf));
    assert_string_equal(buf, "none");
    assert_int_equal(probe_once(&none, NULL, NULL, 0, buf, sizeof(buf)), 1);
}

static int setup(void **state)
{
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    return rm_rf(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp),           cmocka_unit_test(test_http),
        cmocka_unit_test(test_http_bad_urls), cmocka_unit_test(test_cmd),
        cmocka_unit_test(test_log),           cmocka_unit_test(test_log_tail),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
