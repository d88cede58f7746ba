/* stats_file.h — a load run's results in a file, and the exact merge of several.
 *
 * A load client fanned out as N tasks (Slurm: separate processes, possibly on
 * different nodes) writes one file per task; the coordinator reads them all
 * and merges them into one struct lg_stats, as if one client had done all the
 * work: counters are summed, histograms merged slot by slot (so percentiles
 * come from the merged distribution, never from averaging the tasks'
 * percentiles), and the per-second series merged by wall-clock second.
 *
 * File format: one JSON object (UTF-8), written atomically (temporary file +
 * rename), e.g.
 *
 *   {"format": "sonde-lg-stats", "version": 1,
 *    "requests": 2000, "ok": 1990,
 *    "errors": {"connect": 0, "timeout": 10, "read": 0, "write": 0, "status": 0,
 *               "protocol": 0, "tls": 0},
 *    "status_class": [0, 0, 1990, 0, 0, 0],
 *    "bytes_in": 512000, "bytes_out": 74000, "connects": 8,
 *    "window_start_wall_ns": 1767225600000000000, "window_ns": 2000000000,
 *    "achieved_rate": 1000.0, "rate_missed": false, "unsent": 0,
 *    "latency": "U0hEMQ...", "service": "U0hEMQ...", "issue_delay": null,
 *    "secs": [{"requests": 1000, "errors": 4, "bytes_in": 256000,
 *              "p50_ns": 1023, "p99_ns": 2047, "latency": "U0hEMQ..."}, ...],
 *    "extra": [{"name": "output_tokens", "counter": 12800},
 *              {"name": "ttft", "histogram": "U0hEMQ..."},
 *              {"name": "tokens_per_s", "secs": [6400, 6400]},
 *              {"name": "first_done_ns", "min": 2000000000}, ...]}
 *
 * Error classes are keyed by lg_err_name(). Histograms are the base64 (RFC 4648,
 * padded) of hdr_encode(); issue_delay is null or absent in closed loop, a
 * second's latency null when the run did not keep it (keep_second_hdrs).
 * "extra" holds the client driver's own results (struct lg_extra), each with
 * exactly one of counter, histogram, secs, min and max; names unique. Version 1 files
 * (no "extra") are still read.
 * Counters are JSON integers: they must be in [0, INT64_MAX] (writing a larger
 * one fails). Reading is strict: every field listed above is required (but
 * issue_delay), of its type, non-negative, no other field is allowed, and
 * requests == ok + the sum of errors. Any change to the format changes the
 * version. */
#ifndef SONDE_LOADGEN_STATS_FILE_H
#define SONDE_LOADGEN_STATS_FILE_H

#include "loadgen/engine.h"

#include <stddef.h>
#include <stdint.h>

#define LG_STATS_FORMAT  "sonde-lg-stats"
#define LG_STATS_VERSION 2
/* Largest file lg_stats_read accepts. */
#define LG_STATS_FILE_MAX ((size_t)256 << 20)
/* Most memory the histograms of one file may need once decoded (a small
 * encoded histogram can describe a large one): about 30 h of per-second
 * histograms at the engine's 36 KB each. */
#define LG_STATS_HDR_MEMORY_MAX ((uint64_t)4 << 30)
/* Longest merged per-second series (the engine's own limit: 48 days). */
#define LG_STATS_SECS_MAX ((size_t)1 << 22)

/* The document for s (NUL-terminated, caller frees) and its length. 0, or
 * -EINVAL with a message in err when s cannot be represented (a counter above
 * INT64_MAX, no latency or service histogram, a non-finite rate). */
int lg_stats_dump(const struct lg_stats *s, char **text, size_t *len, char *err, size_t errlen);
/* lg_stats_dump, written atomically to path. 0, -EINVAL or -errno (message in err). */
int lg_stats_write(const struct lg_stats *s, const char *path, char *err, size_t errlen);

/* Parses a document; name (the file's path) starts every message, e.g.
 * "/x/task-3.stats: field secs[4].latency: not a valid histogram". 0, or
 * -EINVAL for any invalid input (*out untouched); input may be hostile. */
int lg_stats_parse(const char *text, size_t len, const char *name, struct lg_stats **out, char *err,
                   size_t errlen);
/* Reads and parses the file at path: 0, -EINVAL (invalid, or larger than
 * LG_STATS_FILE_MAX) or -errno when it cannot be read. */
int lg_stats_read(const char *path, struct lg_stats **out, char *err, size_t errlen);

/* Merges n >= 1 results into a new *out (free with lg_stats_free), exactly:
 * - counters (requests, ok, errors, status classes, bytes, connects, unsent)
 *   are summed; rate_missed is true when any input's is;
 * - latency, service and issue_delay are merged with hdr_merge into a
 *   histogram configured like the first input's: exact when the
 *   configurations are equal (within both precisions otherwise, see hdr.h);
 *   an input whose values lie above that histogram's highest trackable value
 *   (they would saturate) is an error, and so is mixing inputs with and
 *   without issue_delay (open and closed loop);
 * - the extra results must have the same names and kinds, in the same order,
 *   in every input: counters are summed, histograms merged, series aligned
 *   like the per-second series below and summed second by second, the
 *   smallest min and the largest max kept;
 * - the window starts at the earliest window_start_wall_ns and ends at the
 *   latest start + window_ns; achieved_rate = requests / window;
 * - per-second series are aligned by wall clock: input k's second i lands in
 *   merged second round((start_k - start_min) / 1 s) + i, the offset rounded
 *   to the NEAREST whole second (half up), so no second is misplaced by more
 *   than half a second (floor would misplace a task starting 0.9 s after the
 *   first by 0.9 s). requests, errors and bytes_in are summed, the latency
 *   histograms merged, and p50/p99 computed from the merged one (-1 when it is
 *   empty). When an input second with successful requests (requests > errors)
 *   has no histogram, the merged second's percentiles are unknown: -1 and no
 *   histogram, unless that input is the second's only one with successful
 *   requests (then its own p50/p99 are exact). The series ends with the last
 *   second any input has.
 * 0, or -EINVAL / -EOVERFLOW with a message in err (inputs named "input K"). */
int lg_stats_merge(struct lg_stats *const *in, size_t n, struct lg_stats **out, char *err,
                   size_t errlen);

#endif
