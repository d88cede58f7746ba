/* exporter.c — sonde's own Prometheus endpoint, live during a session.
 *
 * One thread accepts connections and answers them one at a time: a scrape is
 * small (a few hundred series) and Prometheus opens one connection per scrape.
 * A client that sends nothing is dropped after EXP_IO_NS, so it can delay the
 * next scrape by that much but never stop the server. Values are set by the
 * session's thread under the mutex; a scrape renders them into a buffer while
 * holding it (microseconds for this size) and sends after releasing it. */
#include "core/exporter.h"

#include "util/keytab.h"
#include "util/log.h"
#include "util/net.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXP_IO_NS       ((int64_t)2000000000) /* to read a request, and to send an answer */
#define EXP_REQ_MAX     8192                  /* bytes of a request's head */
#define EXP_SERIES_MAX  100000                /* a bound on what drivers can make us keep */
#define EXP_CONTENT_TYP "text/plain; version=0.0.4; charset=utf-8"

struct entry {
    char *name, *help, *labels;
    enum live_kind kind;
    bool hist;
    double value;
    double *le;
    uint64_t *counts; /* n + 1 */
    size_t n;
    double sum;
};

struct exporter {
    int lfd;
    int wake[2]; /* a byte here ends the thread's poll */
    pthread_t th;
    bool running;
    atomic_int stop;
    char target[300];
    pthread_mutex_t mu;
    struct entry *e;
    size_t n, cap;
    struct keytab idx; /* name NUL labels → index in e */
    struct sbuf key;
    bool full_said;
};

/* ---- values ---- */

/* The slot of a series in the index; its key (name NUL labels) is left in
 * x->key and its hash in *h, for index_put. */
static struct keytab_slot *index_slot(struct exporter *x, const char *name, const char *labels,
                                      uint64_t *h)
{
    x->key.len = 0;
    sbuf_add(&x->key, name, strlen(name) + 1);
    sbuf_add(&x->key, labels, strlen(labels));
    *h = hash_fnv1a(x->key.s, x->key.len);
    return keytab_find(&x->idx, x->key.s, x->key.len, *h);
}

/* Indexes entry i in the empty slot index_slot just gave. */
static void index_put(struct exporter *x, struct keytab_slot *slot, uint64_t h, size_t i)
{
    keytab_put(&x->idx, slot, x->key.s, x->key.len, h, (uint32_t)i);
}

static struct entry *find_or_add(struct exporter *x, const char *name, const char *help,
                                 const char *labels)
{
    labels = labels ? labels : "";
    uint64_t h;
    struct keytab_slot *slot = index_slot(x, name, labels, &h);
    if (slot->key)
        return &x->e[slot->id];
    if (x->n >= EXP_SERIES_MAX) {
        if (!x->full_said)
            log_warn("exporter: more than %d series; new ones are not exported", EXP_SERIES_MAX);
        x->full_said = true;
        return NULL;
    }
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 64;
        x->e = xrealloc(x->e, x->cap * sizeof(*x->e));
    }
    index_put(x, slot, h, x->n);
    struct entry *e = &x->e[x->n++];
    *e = (struct entry){
        .name = xstrdup(name), .help = xstrdup(help ? help : ""), .labels = xstrdup(labels)};
    return e;
}

static void entry_free(struct entry *e)
{
    free(e->name);
    free(e->help);
    free(e->labels);
    free(e->le);
    free(e->counts);
}

void exporter_set(struct exporter *x, const char *name, const char *help, enum live_kind kind,
                  const char *labels, double value)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    struct entry *e = find_or_add(x, name, help, labels);
    if (e && !e->hist) {
        /* A counter never goes down: a smaller total (a client's final count
         * defined a little differently from its live one) would read as a reset. */
        if (kind == LIVE_COUNTER && e->kind == LIVE_COUNTER && value < e->value)
            value = e->value;
        e->kind = kind;
        e->value = value;
    }
    pthread_mutex_unlock(&x->mu);
}

void exporter_set_histogram(struct exporter *x, const char *name, const char *help,
                            const char *labels, const double *le, const uint64_t *counts, size_t n,
                            double sum)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    struct entry *e = find_or_add(x, name, help, labels);
    if (e && (e->hist || e->n == 0)) {
        if (e->n != n || !e->hist) {
            free(e->le);
            free(e->counts);
            e->le = xmalloc((n ? n : 1) * sizeof(*e->le));
            e->counts = xmalloc((n + 1) * sizeof(*e->counts));
            e->n = n;
        }
        e->hist = true;
        memcpy(e->le, le, n * sizeof(*le));
        memcpy(e->counts, counts, (n + 1) * sizeof(*counts));
        e->sum = sum;
    }
    pthread_mutex_unlock(&x->mu);
}

void exporter_forget(struct exporter *x, const char *match)
{
    if (!x || !match)
        return;
    pthread_mutex_lock(&x->mu);
    size_t k = 0;
    for (size_t i = 0; i < x->n; i++) {
        if (strstr(x->e[i].labels, match))
            entry_free(&x->e[i]);
        else
            x->e[k++] = x->e[i];
    }
    x->n = k;
    keytab_free(&x->idx); /* the indices moved */
    for (size_t i = 0; i < x->n; i++) {
        uint64_t h;
        struct keytab_slot *slot = index_slot(x, x->e[i].name, x->e[i].labels, &h);
        index_put(x, slot, h, i);
    }
    pthread_mutex_unlock(&x->mu);
}

/* ---- the text format ---- */

static int by_name(const void *a, const void *b)
{
    const struct entry *x = *(struct entry *const *)a, *y = *(struct entry *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->labels, y->labels);
}

static void put_value(struct sbuf *b, double v)
{
    if (isnan(v))
        sbuf_puts(b, "NaN");
    else if (isinf(v))
        sbuf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else
        sbuf_printf(b, "%.16g", v);
}

/* HELP text escapes: backslash and newline. */
static void put_help(struct sbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            sbuf_puts(b, "\\\\");
        else if (*s == '\n')
            sbuf_puts(b, "\\n");
        else
            sbuf_add(b, s, 1);
    }
}

static void put_sample(struct sbuf *b, const char *name, const char *suffix, const char *labels,
                       const char *extra, double v)
{
    sbuf_printf(b, "%s%s", name, suffix);
    bool any = labels[0] || extra;
    if (any)
        sbuf_printf(b, "{%s%s%s}", labels, labels[0] && extra ? "," : "", extra ? extra : "");
    sbuf_puts(b, " ");
    put_value(b, v);
    sbuf_puts(b, "\n");
}

static char *render(struct exporter *x, size_t *len)
{
    struct sbuf b = {.max = (size_t)256 << 20};
    pthread_mutex_lock(&x->mu);
    struct entry **v = xmalloc((x->n ? x->n : 1) * sizeof(*v));
    for (size_t i = 0; i < x->n; i++)
        v[i] = &x->e[i];
    qsort(v, x->n, sizeof(*v), by_name);
    for (size_t i = 0; i < x->n; i++) {
        const struct entry *e = v[i];
        if (i == 0 || strcmp(v[i - 1]->name, e->name) != 0) {
            sbuf_printf(&b, "# HELP %s ", e->name);
            put_help(&b, e->help);
            sbuf_printf(&b, "\n# TYPE %s %s\n", e->name,
                        e->hist                   ? "histogram"
                        : e->kind == LIVE_COUNTER ? "counter"
                                                  : "gauge");
        }
        if (!e->hist) {
            put_sample(&b, e->name, "", e->labels, NULL, e->value);
            continue;
        }
        uint64_t cum = 0;
        char le[64];
        for (size_t k = 0; k < e->n; k++) {
            cum += e->counts[k];
            snprintf(le, sizeof(le), "le=\"%.16g\"", e->le[k]);
            put_sample(&b, e->name, "_bucket", e->labels, le, (double)cum);
        }
        cum += e->counts[e->n];
        put_sample(&b, e->name, "_bucket", e->labels, "le=\"+Inf\"", (double)cum);
        put_sample(&b, e->name, "_sum", e->labels, NULL, e->sum);
        put_sample(&b, e->name, "_count", e->labels, NULL, (double)cum);
    }
    pthread_mutex_unlock(&x->mu);
    free(v);
    *len = b.len;
    return sbuf_steal(&b);
}

void exporter_label(struct sbuf *b, const char *name, const char *value)
{
    sbuf_printf(b, "%s%s=\"", b->len ? "," : "", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            sbuf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            sbuf_puts(b, "\\n");
        else
            sbuf_add(b, p, 1);
    }
    sbuf_puts(b, "\"");
}

void exporter_sanitize(char *s, bool metric)
{
    for (char *p = s; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                  (p > s && *p >= '0' && *p <= '9') || (metric && *p == ':');
        if (!ok)
            *p = '_';
    }
}

/* ---- the server ---- */

static void answer(int fd, int code, const char *reason, const char *type, const char *body,
                   size_t len, bool head)
{
    char *hdr = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                          "Connection: close\r\n\r\n",
                          code, reason, type, len);
    int64_t deadline = mono_ns() + EXP_IO_NS;
    if (net_send_all(fd, hdr, strlen(hdr), deadline, NULL) == 0 && !head && len)
        net_send_all(fd, body, len, deadline, NULL);
    free(hdr);
}

static void serve_one(struct exporter *x, int fd)
{
    char req[EXP_REQ_MAX + 1];
    size_t len = 0;
    int64_t deadline = mono_ns() + EXP_IO_NS;
    while (len < EXP_REQ_MAX) { /* the request line is all we need, up to the head's end */
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
        if (net_wait_fd(fd, POLLIN, deadline) <= 0 || atomic_load(&x->stop))
            return;
        ssize_t n = recv(fd, req + len, EXP_REQ_MAX - len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    req[len] = '\0';
    char method[8] = "", path[256] = "";
    if (sscanf(req, "%7s %255s HTTP/1.", method, path) != 2) {
        static const char msg[] = "malformed request\n";
        answer(fd, 400, "Bad Request", "text/plain", msg, sizeof(msg) - 1, false);
        return;
    }
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        static const char msg[] = "only GET and HEAD\n";
        answer(fd, 405, "Method Not Allowed", "text/plain", msg, sizeof(msg) - 1, false);
        return;
    }
    path[strcspn(path, "?")] = '\0';
    if (strcmp(path, "/metrics") == 0) {
        size_t blen = 0;
        char *body = render(x, &blen);
        answer(fd, 200, "OK", EXP_CONTENT_TYP, body, blen, head);
        free(body);
    } else if (strcmp(path, "/") == 0) {
        static const char msg[] = "sonde exporter: the session's live metrics are at /metrics\n";
        answer(fd, 200, "OK", "text/plain", msg, sizeof(msg) - 1, head);
    } else {
        static const char msg[] = "not found: the metrics are at /metrics\n";
        answer(fd, 404, "Not Found", "text/plain", msg, sizeof(msg) - 1, head);
    }
}

static void *server(void *arg)
{
    struct exporter *x = arg;
    while (!atomic_load(&x->stop)) {
        struct pollfd p[2] = {{.fd = x->lfd, .events = POLLIN},
                              {.fd = x->wake[0], .events = POLLIN}};
        if (poll(p, 2, 1000) <= 0 || (p[1].revents & POLLIN))
            continue;
        int fd = accept4(x->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve_one(x, fd);
        close(fd);
    }
    return NULL;
}

/* "HOST:PORT" or "[V6]:PORT" → host, port. */
static int split_addr(const char *addr, char **host, char **port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1] ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return -EINVAL;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    *host = xstrndup(h, hl);
    *port = xstrdup(colon + 1);
    return 0;
}

int exporter_start(const char *addr, struct exporter **out, char *err, size_t errlen)
{
    *out = NULL;
    char *host = NULL, *port = NULL;
    if (!addr || split_addr(addr, &host, &port) < 0) {
        snprintf(err, errlen, "exporter address '%s': expected HOST:PORT (port 0: any free one)",
                 addr ? addr : "");
        return -EINVAL;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "exporter address '%s': %s", addr, gai_strerror(g));
        free(host);
        free(port);
        return -EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1, r = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 16) < 0) {
        r = -errno;
        snprintf(err, errlen, "exporter: cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    freeaddrinfo(res);
    if (r < 0) {
        free(host);
        free(port);
        return r;
    }
    struct exporter *x = xcalloc(1, sizeof(*x));
    x->lfd = fd;
    pthread_mutex_init(&x->mu, NULL);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char hbuf[NI_MAXHOST] = "", pbuf[NI_MAXSERV] = "";
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), pbuf, sizeof(pbuf),
                    NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(x->target, sizeof(x->target), strchr(hbuf, ':') ? "[%s]:%s" : "%s:%s", hbuf, pbuf);
    free(host);
    free(port);
    int e = pipe2(x->wake, O_CLOEXEC | O_NONBLOCK) < 0 ? errno : 0;
    if (e == 0) {
        e = pthread_create(&x->th, NULL, server, x);
        if (e) {
            close(x->wake[0]);
            close(x->wake[1]);
        }
    }
    if (e) {
        snprintf(err, errlen, "exporter: cannot start its thread: %s", strerror(e));
        close(fd);
        pthread_mutex_destroy(&x->mu);
        free(x);
        return -e;
    }
    x->running = true;
    *out = x;
    return 0;
}

const char *exporter_target(const struct exporter *x)
{
    return x ? x->target : NULL;
}

void exporter_stop(struct exporter *x)
{
    if (!x)
        return;
    if (x->running) {
        atomic_store(&x->stop, 1);
        ssize_t w = write(x->wake[1], "x", 1);
        (void)w;
        pthread_join(x->th, NULL);
    }
    close(x->wake[0]);
    close(x->wake[1]);
    close(x->lfd);
    for (size_t i = 0; i < x->n; i++)
        entry_free(&x->e[i]);
    free(x->e);
    keytab_free(&x->idx);
    sbuf_free(&x->key);
    pthread_mutex_destroy(&x->mu);
    free(x);
}
