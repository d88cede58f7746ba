/* report.h — reports rendered from the store only.
 * Formats: text (for a terminal), json (schema in docs/report-json.md,
 * "schema": "sonde.report/1"), csv (one row per metric), md (Markdown). */
#ifndef SONDE_REPORT_H
#define SONDE_REPORT_H

#include <stdio.h>

struct store;

enum report_format { REPORT_TEXT, REPORT_JSON, REPORT_CSV, REPORT_MD };
int report_format_parse(const char *s, enum report_format *out); /* -EINVAL when unknown */

/* Renders the session's report to out. 0, -ENOENT (no such session), -errno. */
int report_render(struct store *st, const char *session_id, enum report_format f, FILE *out);
/* The short summary printed at the end of `sonde run`: one line per trial with
 * its state and the client metrics. */
int report_summary(struct store *st, const char *session_id, FILE *out);
/* A JSON object's text (labels, a matrix point) as "k=v,k=v", strings unquoted;
 * other text unchanged, "" for none. Caller frees. */
char *report_kv_json(const char *text);

#endif
