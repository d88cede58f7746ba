/* fetch.c — one blocking HTTP/1.1 request with a deadline and a size cap. */
#include "loadgen/fetch.h"

#include "loadgen/http_parser.h"
#include "util/net.h"
#include "util/units.h"
#include "util/util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FETCH_READ_SIZE ((size_t)64 << 10)

void fetch_result_free(struct fetch_result *r)
{
    if (r) {
        free(r->body);
        memset(r, 0, sizeof(*r));
    }
}

/* Reads the response from fd into out->body. 0, or -errno with err set. */
static int read_response(int fd, const char *url, int64_t deadline, int64_t timeout_ns,
                         size_t max_bytes, bool head, const struct net_cancel *cancel,
                         struct fetch_result *out, char *err, size_t errlen)
{
    struct http_resp_parser p;
    http_resp_init(&p, NULL, head);
    struct sbuf body = {.max = max_bytes + 1};
    char *buf = xmalloc(FETCH_READ_SIZE);
    size_t have = 0; /* unconsumed bytes at the front of buf */
    int r = 0;
    bool done = false;
    while (!done) {
        size_t off = 0;
        for (;;) { /* the events of what is buffered */
            size_t used = 0;
            struct http_resp_events ev;
            int e = http_resp_feed(&p, buf + off, have - off, &used, &ev);
            off += used;
            if (e < 0) {
                snprintf(err, errlen, "%s: malformed response: %s", url, http_strerror(e));
                r = -EPROTO;
                goto out;
            }
            if (e == HTTP_EV_NONE)
                break;
            if (e == HTTP_EV_BODY) {
                if (body.len + ev.len > max_bytes) {
                    char lim[32];
                    format_size((int64_t)max_bytes, lim, sizeof(lim));
                    snprintf(err, errlen, "%s: response larger than the %s limit", url, lim);
                    r = -EFBIG;
                    goto out;
                }
                sbuf_add(&body, ev.data, ev.len);
            }
            if (e == HTTP_EV_DONE) {
                done = true;
                break;
            }
        }
        if (done)
            break;
        memmove(buf, buf + off, have - off);
        have -= off;
        if (have == FETCH_READ_SIZE) { /* one line longer than the buffer: the parser refuses it */
            snprintf(err, errlen, "%s: malformed response: a line over %zu bytes", url, have);
            r = -EPROTO;
            goto out;
        }
        int w = net_wait(fd, POLLIN, deadline, cancel);
        if (w <= 0) {
            r = w < 0 ? w : -ETIMEDOUT;
            if (w == 0)
                snprintf(err, errlen, "%s: no complete response within %.3g s", url,
                         (double)timeout_ns / 1e9);
            else if (w == -ECANCELED)
                snprintf(err, errlen, "%s: cancelled", url);
            else
                snprintf(err, errlen, "%s: %s", url, strerror(-w));
            goto out;
        }
        ssize_t n = recv(fd, buf + have, FETCH_READ_SIZE - have, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            r = -errno;
            snprintf(err, errlen, "%s: %s", url, strerror(errno));
            goto out;
        }
        if (n == 0) {
            int e = http_resp_eof(&p);
            if (e != HTTP_EV_DONE) {
                snprintf(err, errlen,
                         "%s: the connection closed before the response was complete (%s)", url,
                         http_strerror(e));
                r = -EPROTO;
                goto out;
            }
            done = true;
        }
        have += (size_t)n;
    }
    out->status = p.status;
    snprintf(out->content_type, sizeof(out->content_type), "%s", p.content_type);
    out->len = body.len;
    out->body = sbuf_steal(&body);
out:
    sbuf_free(&body);
    free(buf);
    return r;
}

int http_fetch(const char *method, const char *url, const char *const *headers, const char *body,
               size_t body_len, int64_t timeout_ns, size_t max_bytes,
               const struct net_cancel *cancel, struct fetch_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct net_url u;
    if (net_url_parse(url, &u) < 0) {
        snprintf(err, errlen, "'%s': not an http://host[:port][/path] URL", url ? url : "");
        return -EINVAL;
    }
    if (cancel && cancel->fn(cancel->arg)) {
        snprintf(err, errlen, "%s: cancelled", url);
        net_url_free(&u);
        return -ECANCELED;
    }
    int64_t deadline = mono_ns() + timeout_ns;
    struct sbuf req = {0};
    char detail[160];
    int fd = -1;
    const char *hdrs[40] = {"User-Agent: sonde", "Connection: close", "Accept-Encoding: identity"};
    size_t nh = 3;
    for (size_t i = 0; headers && headers[i] && nh + 1 < SONDE_ARRAY_LEN(hdrs); i++)
        hdrs[nh++] = headers[i];
    int r = http_req_build(&req, method, u.hostport, u.path, hdrs, body, body_len);
    if (r < 0) {
        snprintf(err, errlen, "%s: cannot build the request (a header with a bad character?)", url);
        goto out;
    }
    r = net_connect(u.host, u.port, deadline, cancel, &fd, detail, sizeof(detail));
    if (r <= 0) {
        snprintf(err, errlen, "%s: %s", url, detail);
        if (r == 0)
            r = cancel && cancel->fn(cancel->arg) ? -ECANCELED : -ECONNREFUSED;
        goto out;
    }
    r = net_send_all(fd, req.s, req.len, deadline, cancel);
    if (r < 0) {
        if (r == -ECANCELED)
            snprintf(err, errlen, "%s: cancelled", url);
        else
            snprintf(err, errlen, "%s: cannot send the request: %s", url, strerror(-r));
        goto out;
    }
    r = read_response(fd, url, deadline, timeout_ns, max_bytes, strcmp(method, "HEAD") == 0, cancel,
                      out, err, errlen);
out:
    if (fd >= 0)
        close(fd);
    sbuf_free(&req);
    net_url_free(&u);
    return r;
}
