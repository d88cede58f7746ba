/* probe.h — readiness probes: TCP connect, HTTP GET 2xx, a command exiting 0,
 * a log line matching a regex. */
#ifndef SONDE_PROBE_H
#define SONDE_PROBE_H

#include "recipe.h"
#include "backends/proc.h"

/* One attempt, bounded by attempt_ns. 1 ready, 0 not yet, -errno hard error
 * (bad URL, bad regex). detail gets a short human description of the last
 * outcome ("connection refused", "HTTP 503", "exit status 2"). The probe's
 * text fields must already be interpolated. log_path is the component's log
 * file for PROBE_LOG; user runs PROBE_CMD as that user. */
int probe_once(const struct probe_spec *p, const char *log_path, const char *user,
               int64_t attempt_ns, char *detail, size_t dlen);
/* "tcp 127.0.0.1:5432", "http http://...", "command pg_isready ...", "log /ready/" */
void probe_describe(const struct probe_spec *p, char *buf, size_t n);

#endif
