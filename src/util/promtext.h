/* promtext.h — a parser of the Prometheus text exposition formats: text 0.0.4
 * and OpenMetrics 1.0 text.
 *
 * One call parses a whole document and calls back once per sample with its
 * metric family (from the `# TYPE` line before it), the family's type and the
 * part of the family the sample is (a histogram's bucket, a counter's total...).
 * Nothing is allocated per sample: names and unescaped label values live in a
 * scratch buffer reused for every line, so what the callback gets is valid only
 * during the call. Memory: two buffers of at most one line each.
 *
 * Bad lines (syntax errors, limits passed, NUL bytes, invalid UTF-8 in a label
 * value, a label given twice, a bucket without `le`...) are skipped and counted;
 * the first one's message is kept ("line 12: label value not terminated").
 * Exemplars (` # {trace_id="x"} 1.0 [ts]`) are checked and ignored; `# HELP`,
 * `# UNIT` and other comments are ignored. Duplicate series are not detected:
 * that is the caller's concern. */
#ifndef SONDE_PROMTEXT_H
#define SONDE_PROMTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROMTEXT_MAX_LINE      ((size_t)64 << 10) /* bytes, without the newline */
#define PROMTEXT_MAX_LABELS    64                 /* per sample */
#define PROMTEXT_MAX_LABEL_VAL ((size_t)4 << 10)  /* bytes, unescaped */

enum prom_type {
    PROM_UNTYPED, /* no TYPE line, or "untyped" (0.0.4) */
    PROM_COUNTER,
    PROM_GAUGE,
    PROM_HISTOGRAM,
    PROM_SUMMARY,
    PROM_GAUGEHISTOGRAM, /* OpenMetrics */
    PROM_INFO,           /* OpenMetrics */
    PROM_STATESET,       /* OpenMetrics */
    PROM_UNKNOWN,        /* OpenMetrics */
};

/* Which sample of its family a sample is. */
enum prom_part {
    PROM_PART_VALUE,    /* gauge, untyped, unknown, stateset: the family's name */
    PROM_PART_TOTAL,    /* counter: X_total (OpenMetrics), or X itself (0.0.4) */
    PROM_PART_CREATED,  /* counter, histogram, summary: X_created */
    PROM_PART_BUCKET,   /* (gauge)histogram: X_bucket; has an `le` label */
    PROM_PART_SUM,      /* histogram, summary: X_sum */
    PROM_PART_COUNT,    /* histogram, summary: X_count */
    PROM_PART_GSUM,     /* gaugehistogram: X_gsum */
    PROM_PART_GCOUNT,   /* gaugehistogram: X_gcount */
    PROM_PART_QUANTILE, /* summary: X with a `quantile` label */
    PROM_PART_INFO,     /* info: X_info */
};

struct prom_label {
    const char *name, *value; /* NUL-terminated; value unescaped, valid UTF-8 */
    size_t value_len;
};

struct prom_sample {
    const char *family; /* the family's name: of its TYPE line, else the sample's name */
    enum prom_type type;
    enum prom_part part;
    const char *name; /* the sample's metric name as written */
    const struct prom_label *labels;
    size_t nlabels; /* in the order written */
    double value;   /* NaN and ±Inf included */
    bool has_timestamp;
    double timestamp; /* seconds since the epoch (0.0.4 gives ms: divided by 1000) */
    size_t line;      /* 1-based */
};

/* What one parse saw. */
struct prom_stats {
    size_t lines;     /* lines read (the last one may lack its newline) */
    size_t samples;   /* samples handed to the callback */
    size_t bad_lines; /* lines skipped as malformed */
    bool eof;         /* `# EOF` was seen (OpenMetrics); what follows is a bad line */
    char error[160];  /* the first bad line's message, "" when none */
};

/* Called per sample; a negative return stops the parse and is returned by it. */
typedef int (*prom_sample_fn)(const struct prom_sample *s, void *ud);

/* Parses text[0..len) (need not be NUL-terminated) as OpenMetrics when
 * openmetrics is set (timestamps in seconds), else as text 0.0.4 (timestamps in
 * ms). stats may be NULL. Returns 0, or the callback's negative value. */
int promtext_parse(const char *text, size_t len, bool openmetrics, prom_sample_fn fn, void *ud,
                   struct prom_stats *stats);

/* True when a Content-Type names OpenMetrics text ("application/openmetrics-text; ..."). */
bool promtext_is_openmetrics(const char *content_type);

/* A sample value as the formats write it: decimal or exponent forms, NaN, Inf,
 * +Inf, -Inf (case-insensitive, as Prometheus reads them). s[0..n). 0 or -EINVAL. */
int promtext_value(const char *s, size_t n, double *out);

/* The name of a type ("counter"...) and of a part ("bucket"...), for messages. */
const char *prom_type_name(enum prom_type t);
const char *prom_part_name(enum prom_part p);

#endif
