/* net.c — blocking TCP with a deadline, and http:// URLs. */
#include "util/net.h"

#include "util/util.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

int net_wait(int fd, short events, int64_t deadline, const struct net_cancel *cancel)
{
    for (;;) {
        if (cancel && cancel->fn(cancel->arg))
            return -ECANCELED;
        int64_t left = deadline - mono_ns();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = fd, .events = events};
        int ms = (int)((left + 999999) / 1000000);
        if (cancel && ms > NET_CANCEL_POLL_MS)
            ms = NET_CANCEL_POLL_MS;
        int r = poll(&pfd, 1, ms);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

int net_wait_fd(int fd, short events, int64_t deadline)
{
    return net_wait(fd, events, deadline, NULL);
}

int net_outcome(int err, char *detail, size_t dlen)
{
    if (err == ECONNREFUSED)
        snprintf(detail, dlen, "connection refused");
    else if (err == ECANCELED)
        snprintf(detail, dlen, "cancelled");
    else if (err == ETIMEDOUT)
        snprintf(detail, dlen, "timed out");
    else
        snprintf(detail, dlen, "%s", strerror(err));
    return 0;
}

/* Tries one address: 1 connected (*fd set), 0 failed (detail set). */
static int connect_addr(const struct addrinfo *ai, int64_t deadline,
                        const struct net_cancel *cancel, int *fd, char *detail, size_t dlen)
{
    int s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (s < 0)
        return net_outcome(errno, detail, dlen);
    int err = 0;
    if (connect(s, ai->ai_addr, ai->ai_addrlen) < 0) {
        err = errno;
        if (err == EINPROGRESS) {
            int w = net_wait(s, POLLOUT, deadline, cancel);
            socklen_t len = sizeof(err);
            if (w == 0)
                err = ETIMEDOUT;
            else if (w < 0)
                err = -w;
            else if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        }
    }
    if (err) {
        close(s);
        return net_outcome(err, detail, dlen);
    }
    *fd = s;
    return 1;
}

/* A host-name lookup handed to glibc's getaddrinfo_a, shared: a caller that
 * needs host:port while a lookup of it is in flight waits on that one rather
 * than starting another. So a name slower than one caller's deadline still
 * resolves for a later caller (a readiness probe's next attempt, the next
 * scrape), and a DNS server that does not answer holds one of glibc's lookup
 * threads per name, not one per attempt. A lookup nobody waits on any more
 * runs to its end (glibc cannot stop one that has started); its answer then
 * serves callers for NET_GAI_KEEP_NS, and it is freed after that. */
struct net_gai {
    struct gaicb cb;
    struct addrinfo hints;
    char *host, *port;
    int users;         /* callers holding it */
    int64_t done_seen; /* mono ns when first seen finished; 0: not yet */
    struct net_gai *next;
};
#define NET_GAI_KEEP_NS ((int64_t)5000000000)

static pthread_mutex_t gai_mu = PTHREAD_MUTEX_INITIALIZER;
static struct net_gai *lookups; /* under gai_mu, as are users and done_seen */

static void gai_free(struct net_gai *q)
{
    if (q->cb.ar_result)
        freeaddrinfo(q->cb.ar_result);
    free(q->host);
    free(q->port);
    free(q);
}

/* Under gai_mu: notes the lookups that finished; frees those nobody holds
 * that failed, or whose answer is older than NET_GAI_KEEP_NS. */
static void gai_reap_locked(int64_t now)
{
    for (struct net_gai **p = &lookups; *p;) {
        struct net_gai *q = *p;
        int e = gai_error(&q->cb);
        if (e != EAI_INPROGRESS && !q->done_seen)
            q->done_seen = now;
        if (e == EAI_INPROGRESS || q->users > 0 ||
            (e == 0 && now - q->done_seen <= NET_GAI_KEEP_NS)) {
            p = &q->next;
            continue;
        }
        *p = q->next;
        gai_free(q);
    }
}

/* The lookup of host:port, held (users + 1): the one under way or still
 * fresh, else a new one. NULL with *err (an EAI_ code) when glibc takes none. */
static struct net_gai *gai_hold(const char *host, const char *port, int *err)
{
    pthread_mutex_lock(&gai_mu);
    gai_reap_locked(mono_ns());
    struct net_gai *q = lookups;
    while (q && (strcmp(q->host, host) || strcmp(q->port, port)))
        q = q->next;
    if (!q) {
        q = xcalloc(1, sizeof(*q));
        q->host = xstrdup(host);
        q->port = xstrdup(port);
        q->hints = (struct addrinfo){.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
        q->cb = (struct gaicb){.ar_name = q->host, .ar_service = q->port, .ar_request = &q->hints};
        struct gaicb *list[1] = {&q->cb};
        int g = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
        if (g != 0 && gai_error(&q->cb) != EAI_INPROGRESS) { /* not queued */
            pthread_mutex_unlock(&gai_mu);
            gai_free(q);
            *err = g;
            return NULL;
        }
        q->next = lookups;
        lookups = q;
    }
    q->users++;
    pthread_mutex_unlock(&gai_mu);
    return q;
}

static void gai_release(struct net_gai *q)
{
    pthread_mutex_lock(&gai_mu);
    q->users--;
    if (!q->done_seen && gai_error(&q->cb) != EAI_INPROGRESS)
        q->done_seen = mono_ns();
    pthread_mutex_unlock(&gai_mu);
}

#define GAVE_UP_TIMEDOUT  (-ETIMEDOUT) /* beside glibc's EAI_ codes, none of which these are */
#define GAVE_UP_CANCELLED (-ECANCELED)
#define GAVE_UP(g)        ((g) == GAVE_UP_TIMEDOUT || (g) == GAVE_UP_CANCELLED)

/* Resolves host:port before deadline: a numeric address at once (*res, to
 * freeaddrinfo), a name through a shared lookup (*held, whose answer *res is:
 * gai_release it), looked at every NET_CANCEL_POLL_MS so that cancel and the
 * deadline end the wait; a DNS server that does not answer would hold
 * getaddrinfo for its timeouts × attempts. 0; an EAI_ code;
 * GAVE_UP_TIMEDOUT; GAVE_UP_CANCELLED. */
static int resolve(const char *host, const char *port, int64_t deadline,
                   const struct net_cancel *cancel, struct addrinfo **res, struct net_gai **held)
{
    *held = NULL;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST};
    int g = getaddrinfo(host, port, &hints, res);
    if (g != EAI_NONAME)
        return g;
    if (cancel && cancel->fn(cancel->arg))
        return GAVE_UP_CANCELLED;
    if (deadline <= mono_ns()) /* no lookup that nobody would wait for */
        return GAVE_UP_TIMEDOUT;
    struct net_gai *q = gai_hold(host, port, &g);
    if (!q)
        return g;
    struct gaicb *list[1] = {&q->cb};
    while ((g = gai_error(&q->cb)) == EAI_INPROGRESS) {
        int64_t left = deadline - mono_ns();
        if (cancel && cancel->fn(cancel->arg)) {
            g = GAVE_UP_CANCELLED;
            break;
        }
        if (left <= 0) {
            g = GAVE_UP_TIMEDOUT;
            break;
        }
        if (left > (int64_t)NET_CANCEL_POLL_MS * 1000000)
            left = (int64_t)NET_CANCEL_POLL_MS * 1000000;
        struct timespec ts = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
        gai_suspend((const struct gaicb *const *)list, 1, &ts);
    }
    if (g != 0) {
        gai_release(q);
        return g;
    }
    *res = q->cb.ar_result;
    *held = q;
    return 0;
}

int net_connect(const char *host, const char *port, int64_t deadline,
                const struct net_cancel *cancel, int *fd, char *detail, size_t dlen)
{
    struct addrinfo *res = NULL;
    struct net_gai *held = NULL;
    if (!port || !*port) {
        snprintf(detail, dlen, "no port given");
        return -EINVAL;
    }
    int g = resolve(host, port, deadline, cancel, &res, &held);
    if (GAVE_UP(g)) {
        snprintf(detail, dlen, "%s resolving %s",
                 g == GAVE_UP_CANCELLED ? "cancelled" : "timed out", host);
        return 0;
    }
    if (g != 0) {
        snprintf(detail, dlen, "cannot resolve %s:%s: %s", host, port, gai_strerror(g));
        return g == EAI_NONAME || g == EAI_SERVICE ? -EINVAL : 0;
    }
    int r = 0;
    for (const struct addrinfo *ai = res; ai && r == 0; ai = ai->ai_next) {
        if (cancel && cancel->fn(cancel->arg)) { /* no other address is tried */
            net_outcome(ECANCELED, detail, dlen);
            break;
        }
        r = connect_addr(ai, deadline, cancel, fd, detail, dlen);
    }
    if (held)
        gai_release(held);
    else
        freeaddrinfo(res);
    return r;
}

int net_send_all(int fd, const char *buf, size_t len, int64_t deadline,
                 const struct net_cancel *cancel)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            int w = net_wait(fd, POLLOUT, deadline, cancel);
            if (w <= 0)
                return w < 0 ? w : -ETIMEDOUT;
            continue;
        }
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        }
    }
    return 0;
}

void net_url_free(struct net_url *u)
{
    free(u->host);
    free(u->port);
    free(u->hostport);
    free(u->path);
    memset(u, 0, sizeof(*u));
}

int net_url_parse(const char *s, struct net_url *u)
{
    memset(u, 0, sizeof(*u));
    if (!s || strncasecmp(s, "http://", 7) != 0)
        return -EINVAL;
    const char *h = s + 7;
    size_t hlen = strcspn(h, "/?#");
    if (hlen == 0 || memchr(h, '@', hlen))
        return -EINVAL;
    u->hostport = xstrndup(h, hlen);
    const char *colon = NULL;
    if (h[0] == '[') {
        const char *rb = memchr(h, ']', hlen);
        if (!rb)
            goto bad;
        u->host = xstrndup(h + 1, (size_t)(rb - h - 1));
        colon = rb[1] == ':' ? rb + 1 : NULL;
        if (!colon && rb + 1 != h + hlen)
            goto bad;
    } else {
        colon = memchr(h, ':', hlen);
        u->host = xstrndup(h, colon ? (size_t)(colon - h) : hlen);
    }
    u->port = colon ? xstrndup(colon + 1, (size_t)(h + hlen - colon - 1)) : xstrdup("80");
    if (!*u->host || !*u->port || strspn(u->port, "0123456789") != strlen(u->port))
        goto bad;
    if (h[hlen] == '/')
        u->path = xstrndup(h + hlen, strcspn(h + hlen, "#"));
    else if (h[hlen] == '?') /* "http://h:1?x": the path is "/" */
        u->path = xasprintf("/%.*s", (int)strcspn(h + hlen, "#"), h + hlen);
    else
        u->path = xstrdup("/");
    return 0;
bad:
    net_url_free(u);
    return -EINVAL;
}
