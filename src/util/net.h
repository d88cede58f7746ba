/* net.h — blocking TCP with a deadline, and http:// URLs: what readiness probes,
 * scrapes and Prometheus queries share (the load engine has its own, non-blocking). */
#ifndef SONDE_NET_H
#define SONDE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What cuts a wait short: fn(arg) returning true (asked every NET_CANCEL_POLL_MS
 * while waiting; another thread sets what it reads). NULL where nothing may. */
struct net_cancel {
    bool (*fn)(void *arg);
    void *arg;
};
#define NET_CANCEL_POLL_MS 50

/* Waits for events on fd until deadline (mono_ns): 1 ready, 0 timed out,
 * -ECANCELED when cancel said so, -errno. */
int net_wait(int fd, short events, int64_t deadline, const struct net_cancel *cancel);
/* net_wait that nothing cancels. */
int net_wait_fd(int fd, short events, int64_t deadline);
/* Connects to host:port (numeric port) before deadline, a host name's
 * resolution included (asynchronous, so the deadline and cancel bound it too).
 * 1 connected (*fd set, non-blocking, close-on-exec), 0 not (detail says why:
 * "connection refused", "timed out", "cancelled", "timed out resolving HOST"),
 * -EINVAL for a host that does not resolve or a bad port. cancel may be NULL. */
int net_connect(const char *host, const char *port, int64_t deadline,
                const struct net_cancel *cancel, int *fd, char *detail, size_t dlen);
/* Describes errno err in detail ("connection refused", "timed out", strerror); returns 0. */
int net_outcome(int err, char *detail, size_t dlen);
/* Sends all of buf before deadline: 0, -ETIMEDOUT, -ECANCELED or -errno. */
int net_send_all(int fd, const char *buf, size_t len, int64_t deadline,
                 const struct net_cancel *cancel);

/* http://host[:port][/path][?query]; host may be [v6]. */
struct net_url {
    char *host, *port, *hostport, *path; /* path includes the query; "/" when none */
};
/* 0, or -EINVAL (not http://, no host, a user part, a bad port). */
int net_url_parse(const char *s, struct net_url *u);
void net_url_free(struct net_url *u);

#endif
