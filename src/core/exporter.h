/* exporter.h — sonde's own Prometheus endpoint, live during a session.
 *
 * An HTTP server on its own thread answers GET /metrics in the Prometheus text
 * format 0.0.4 with what the drivers set through comp_live_* (session.h): the
 * clients' counters and latency histograms, and every monitor reading (a
 * monitor's series point NAME becomes the gauge sonde_<driver>_<NAME>). Every
 * value carries the labels session, trial and component (and its own labels).
 * Readers never wait on the session: the values sit behind one mutex, and a
 * scrape renders a copy.
 *
 * Names sonde emits (help texts in exporter.c):
 *   sonde_up                                    gauge 1 while the session runs
 *   sonde_trial_info{recipe,trial_label}        gauge 1: the running trial
 *   sonde_client_requests_total                 counter: requests (operations, transactions)
 *   sonde_client_errors_total                   counter
 *   sonde_client_request_duration_seconds       histogram (_bucket{le}, _sum, _count): latency
 *   sonde_client_bytes_in_total                 counter: bytes received (read)
 *   sonde_client_bytes_out_total                counter: bytes sent (written)
 *   sonde_client_output_tokens_total            counter (inference clients)
 *   sonde_client_input_tokens_total             counter (inference clients)
 *   sonde_<monitor driver>_<series>             gauge, e.g. sonde_node_cpu_percent,
 *                                               sonde_gpu_utilization_percent
 *   sonde_monitor_cpu_seconds_total             counter: CPU time sonde spent in each monitor
 */
#ifndef SONDE_EXPORTER_H
#define SONDE_EXPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct exporter;

/* Listens on addr ("HOST:PORT", port 0 = any free one) and serves until
 * exporter_stop. 0, or -errno with err set. */
int exporter_start(const char *addr, struct exporter **out, char *err, size_t errlen);
/* "HOST:PORT" it listens on (the port resolved). */
const char *exporter_target(const struct exporter *e);
/* Stops the thread, closes the socket, frees. NULL is fine. */
void exporter_stop(struct exporter *e);

enum live_kind { LIVE_GAUGE, LIVE_COUNTER };
/* Sets the value of one series. name: a full Prometheus name; labels: the
 * rendered label pairs ('component="c",node="n"'), may be "" or NULL. */
void exporter_set(struct exporter *e, const char *name, const char *help, enum live_kind kind,
                  const char *labels, double value);
/* Sets a histogram: n finite upper bounds le[] (seconds, ascending) and n+1
 * counts per bucket (not cumulative; the last is above the largest bound),
 * with the sum of the observations. */
void exporter_set_histogram(struct exporter *e, const char *name, const char *help,
                            const char *labels, const double *le, const uint64_t *counts, size_t n,
                            double sum);
/* Appends name="value" to b (a comma first unless b is empty), the value
 * escaped as the text format wants (backslash, quote, newline). */
struct sbuf;
void exporter_label(struct sbuf *b, const char *name, const char *value);
/* Makes s a valid name in place: [a-zA-Z_][a-zA-Z0-9_]* (and ':' in metric
 * names); anything else becomes '_'. */
void exporter_sanitize(char *s, bool metric);
/* Forgets every series whose labels contain match (e.g. the trial that ended). */
void exporter_forget(struct exporter *e, const char *match);

#endif
