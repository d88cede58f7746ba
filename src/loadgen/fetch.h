/* fetch.h — one blocking HTTP/1.1 request with a deadline and a cap on the
 * response: what monitors (Prometheus scrapes) and services (Prometheus's
 * query API) use outside the load engine. Plain http:// only. */
#ifndef SONDE_FETCH_H
#define SONDE_FETCH_H

#include <stddef.h>
#include <stdint.h>

struct fetch_result {
    int status;            /* HTTP status code */
    char *body;            /* NUL-terminated (the NUL not counted in len); owned */
    size_t len;            /* body bytes */
    char content_type[64]; /* as sent, truncated; "" when none */
};

/* Sends METHOD url with the extra headers ("Name: value", NULL-terminated, may be
 * NULL) and body (NULL: none), and reads the whole response before timeout_ns
 * has passed (connect included). A body above max_bytes stops the read: -EFBIG.
 * cancel (may be NULL) cuts the request short within NET_CANCEL_POLL_MS:
 * -ECANCELED. 0 with out filled (any status: the caller judges it), or -errno
 * with err set ("http://h:1/metrics: connection refused", "...: no complete
 * response within 5 s", "...: response larger than the 16 MiB limit", "...:
 * malformed response: ...", "...: cancelled"). out is left empty on error. */
struct net_cancel;
int http_fetch(const char *method, const char *url, const char *const *headers, const char *body,
               size_t body_len, int64_t timeout_ns, size_t max_bytes,
               const struct net_cancel *cancel, struct fetch_result *out, char *err, size_t errlen);
void fetch_result_free(struct fetch_result *r);

#endif
