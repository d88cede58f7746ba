/* probe.c — readiness probes: TCP connect, HTTP GET 2xx, a command exiting 0, a log line. */
#include "core/probe.h"

#include "util/net.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROBE_LOG_TAIL     ((off_t)4 << 20) /* bytes of each log scanned */
#define PROBE_STATUS_MAX   1024             /* bytes read for an HTTP status line */
#define PROBE_DEFAULT_HOST "127.0.0.1"

/* ---- sockets ---- */

static int probe_tcp(const struct probe_spec *p, int64_t deadline, char *detail, size_t dlen)
{
    int fd = -1;
    int r = net_connect(p->host ? p->host : PROBE_DEFAULT_HOST, p->port, deadline, NULL, &fd,
                        detail, dlen);
    if (r == 1) {
        snprintf(detail, dlen, "connected");
        close(fd);
    }
    return r;
}

/* ---- HTTP ---- */

/* Reads until the end of the first line (or EOF / the limit). -ETIMEDOUT on deadline. */
static int read_status_line(int fd, int64_t deadline, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    while (len + 1 < cap && !memchr(buf, '\n', len)) {
        int w = net_wait_fd(fd, POLLIN, deadline);
        if (w <= 0)
            return w < 0 ? w : -ETIMEDOUT;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    return 0;
}

/* "HTTP/1.1 200 OK" → 200; -EINVAL when it is not a status line. */
static int parse_status(const char *line)
{
    if (strncmp(line, "HTTP/", 5) != 0)
        return -EINVAL;
    const char *sp = strchr(line, ' ');
    if (!sp || sp[1] < '1' || sp[1] > '9' || sp[2] < '0' || sp[2] > '9' || sp[3] < '0' ||
        sp[3] > '9' || (sp[4] != ' ' && sp[4] != '\r' && sp[4] != '\n' && sp[4] != '\0'))
        return -EINVAL;
    return (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
}

static int http_exchange(int fd, const struct net_url *u, int64_t deadline, char *detail,
                         size_t dlen)
{
    char *req = xasprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sonde\r\nAccept: */*\r\n"
                          "Connection: close\r\n\r\n",
                          u->path, u->hostport);
    char line[PROBE_STATUS_MAX];
    int r = net_send_all(fd, req, strlen(req), deadline, NULL);
    free(req);
    if (r == 0)
        r = read_status_line(fd, deadline, line, sizeof(line));
    if (r < 0)
        return net_outcome(-r, detail, dlen);
    int code = parse_status(line);
    if (code < 0) {
        snprintf(detail, dlen, "%s", line[0] ? "malformed response" : "empty response");
        return 0;
    }
    snprintf(detail, dlen, "HTTP %d", code);
    return code >= 200 && code < 300;
}

static int probe_http(const struct probe_spec *p, int64_t deadline, char *detail, size_t dlen)
{
    struct net_url u;
    if (net_url_parse(p->url, &u) < 0) {
        snprintf(detail, dlen, "%s",
                 p->url && strncasecmp(p->url, "http://", 7) == 0
                     ? "malformed URL"
                     : "only http:// URLs are supported");
        return -EINVAL;
    }
    int fd = -1;
    int r = net_connect(u.host, u.port, deadline, NULL, &fd, detail, dlen);
    if (r == 1) {
        r = http_exchange(fd, &u, deadline, detail, dlen);
        close(fd);
    }
    net_url_free(&u);
    return r;
}

/* ---- command ---- */

static int probe_cmd(const struct probe_spec *p, const char *user, int64_t attempt_ns, char *detail,
                     size_t dlen)
{
    struct proc_spec s = {.argv = p->argv, .user = user, .stdin_fd = -1};
    struct proc pr = {0};
    if (!p->argv || !p->argv[0]) {
        snprintf(detail, dlen, "no command given");
        return -EINVAL;
    }
    int r = proc_spawn(&s, &pr, detail, dlen);
    if (r < 0)
        return r;
    if (proc_wait(&pr, attempt_ns) == 0) {
        proc_stop(&pr, 0);
        snprintf(detail, dlen, "timed out");
        return 0;
    }
    proc_stop(&pr, 0); /* members it left behind; also tells the guardian it is gone */
    proc_describe_status(pr.status, detail, dlen);
    return WIFEXITED(pr.status) && WEXITSTATUS(pr.status) == 0;
}

/* ---- log ---- */

/* Reads the last PROBE_LOG_TAIL bytes of path, starting at a line boundary. */
static int read_tail(const char *path, char **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = 0;
    char *buf = NULL;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto out;
    }
    off_t off = st.st_size > PROBE_LOG_TAIL ? st.st_size - PROBE_LOG_TAIL : 0;
    size_t want = (size_t)(st.st_size - off);
    buf = xmalloc(want + 1);
    ssize_t n = pread(fd, buf, want, off);
    if (n < 0) {
        r = -errno;
        goto out;
    }
    for (ssize_t i = 0; i < n; i++) /* a NUL would end the text regexec sees */
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[n] = '\0';
    char *start = buf;
    if (off > 0 && (start = strchr(buf, '\n')) != NULL)
        memmove(buf, start + 1, strlen(start + 1) + 1);
    *out = buf;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return r;
}

/* The component's stdout log and, beside it, stderr.log (PostgreSQL logs to stderr). */
static char *sibling_stderr(const char *log_path)
{
    const char *slash = strrchr(log_path, '/');
    const char *base = slash ? slash + 1 : log_path;
    if (strcmp(base, "stderr.log") == 0)
        return NULL;
    return slash ? xasprintf("%.*s/stderr.log", (int)(slash - log_path), log_path)
                 : xstrdup("stderr.log");
}

static int probe_log(const struct probe_spec *p, const char *log_path, char *detail, size_t dlen)
{
    regex_t re;
    if (!log_path || !p->regex) {
        snprintf(detail, dlen, "no log file or pattern");
        return -EINVAL;
    }
    int rc = regcomp(&re, p->regex, REG_EXTENDED | REG_NOSUB | REG_NEWLINE);
    if (rc != 0) {
        char msg[128];
        regerror(rc, &re, msg, sizeof(msg));
        snprintf(detail, dlen, "bad regular expression /%s/: %s", p->regex, msg);
        return -EINVAL;
    }
    char *paths[2] = {xstrdup(log_path), sibling_stderr(log_path)};
    bool seen = false, match = false;
    for (size_t i = 0; i < 2 && paths[i] && !match; i++) {
        char *text = NULL;
        if (read_tail(paths[i], &text) < 0)
            continue;
        seen = true;
        match = regexec(&re, text, 0, NULL, 0) == 0;
        free(text);
    }
    regfree(&re);
    free(paths[0]);
    free(paths[1]);
    snprintf(detail, dlen, "%s",
             match  ? "matching line found"
             : seen ? "no matching line yet"
                    : "no log file yet");
    return match;
}

int probe_once(const struct probe_spec *p, const char *log_path, const char *user,
               int64_t attempt_ns, char *detail, size_t dlen)
{
    char dummy[8];
    if (!detail || dlen == 0) {
        detail = dummy;
        dlen = sizeof(dummy);
    }
    detail[0] = '\0';
    int64_t deadline = mono_ns() + (attempt_ns > 0 ? attempt_ns : 0);
    switch (p->kind) {
    case PROBE_NONE:
        snprintf(detail, dlen, "no probe");
        return 1;
    case PROBE_TCP:
        return probe_tcp(p, deadline, detail, dlen);
    case PROBE_HTTP:
        return probe_http(p, deadline, detail, dlen);
    case PROBE_CMD:
        return probe_cmd(p, user, attempt_ns > 0 ? attempt_ns : 0, detail, dlen);
    case PROBE_LOG:
        return probe_log(p, log_path, detail, dlen);
    }
    snprintf(detail, dlen, "unknown probe kind");
    return -EINVAL;
}

void probe_describe(const struct probe_spec *p, char *buf, size_t n)
{
    if (n == 0)
        return;
    switch (p->kind) {
    case PROBE_TCP:
        snprintf(buf, n, "tcp %s:%s", p->host ? p->host : PROBE_DEFAULT_HOST,
                 p->port ? p->port : "?");
        return;
    case PROBE_HTTP:
        snprintf(buf, n, "http %s", p->url ? p->url : "?");
        return;
    case PROBE_CMD: {
        struct sbuf b = {.max = n > 1 ? n - 1 : 1};
        sbuf_puts(&b, "command");
        for (size_t i = 0; p->argv && p->argv[i]; i++)
            if (sbuf_printf(&b, " %s", p->argv[i]) < 0)
                break;
        snprintf(buf, n, "%s", b.s ? b.s : "command");
        sbuf_free(&b);
        return;
    }
    case PROBE_LOG:
        snprintf(buf, n, "log /%s/", p->regex ? p->regex : "");
        return;
    case PROBE_NONE:
        break;
    }
    snprintf(buf, n, "none");
}
