/* extract.h — metric values pulled out of a command's output (the exec client).
 *
 * Two ways to find a value: a POSIX extended regex whose capture group holds the
 * number (first or last match in the text), or a path into a JSON document such
 * as `jobs[0].read.iops` or `$.a["b.c"][-1]`. Numbers are parsed strictly: a
 * finite decimal (strtod syntax, no hex, nan or inf), surrounding whitespace
 * allowed, nothing else. Every error comes with a message in errbuf that names
 * what was looked for and what was found. */
#ifndef SONDE_EXTRACT_H
#define SONDE_EXTRACT_H

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#define EXTRACT_UNIT_MAX   64   /* bytes of a unit captured by unit_group, NUL included */
#define EXTRACT_PATH_MAX   1024 /* longest JSON path accepted */
#define EXTRACT_PATH_DEPTH 64   /* most steps in a JSON path */

enum extract_occurrence { EXTRACT_LAST, EXTRACT_FIRST };

/* One metric to extract. Exactly one of regex and json is set. */
struct extract_rule {
    const char *regex; /* POSIX ERE (REG_EXTENDED | REG_NEWLINE), or NULL */
    const char *json;  /* JSON path, or NULL */
    int group;         /* regex: capture group holding the number (0 = whole match) */
    int unit_group;    /* regex: capture group holding the unit, 0 = none */
    double scale;      /* the value is multiplied by this (1 = unchanged) */
    enum extract_occurrence occurrence; /* regex: which match counts */
};

struct extract_result {
    double value;                /* already scaled */
    char unit[EXTRACT_UNIT_MAX]; /* from unit_group, "" when none */
};

/* Parses text[0..len) as one finite number. 0, or -EINVAL (errbuf says why). */
int extract_number(const char *text, size_t len, double *out, char *errbuf, size_t errlen);

/* Compiles re with REG_EXTENDED | REG_NEWLINE and checks that group and
 * unit_group (each 0 = whole match / none) exist in it. 0 (free *out with
 * regfree) or -EINVAL with the regcomp message in errbuf. */
int extract_regex_compile(const char *re, int group, int unit_group, regex_t *out, char *errbuf,
                          size_t errlen);

/* Finds the first or last match of a compiled regex in the NUL-terminated
 * text and parses the rule's group (r->regex and r->json are not read). -ENOENT when nothing
 * matches, -EINVAL when the captured text is not a number. */
int extract_regex(const regex_t *re, const struct extract_rule *r, const char *text,
                  struct extract_result *out, char *errbuf, size_t errlen);

/* Checks the syntax of a JSON path without a document. 0 or -EINVAL. */
int extract_json_path_check(const char *path, char *errbuf, size_t errlen);

/* Parses a command's stdout as JSON. Text that is not one JSON document as a
 * whole is retried from the first line starting with '{' or '[' (tools such as
 * fio print notes around their JSON). *out is freed with json_decref.
 * -EINVAL when no JSON can be read (errbuf gives line and column). */
int extract_json_load(const char *text, size_t len, json_t **out, char *errbuf, size_t errlen);

/* Evaluates path in root: a number, a string holding a number, or a bool
 * (1/0). -ENOENT when a key or index along the path is absent, -EINVAL for a
 * bad path or a value of another type (errbuf names the path and the type). */
int extract_json_path(const json_t *root, const char *path, double *out, char *errbuf,
                      size_t errlen);

/* Applies a whole rule to text (one metric): compiles, matches or parses,
 * scales. text[len] must be '\0' (as read_file leaves it); NUL bytes inside
 * count as line ends. Returns as the functions above. */
int extract_apply(const struct extract_rule *r, const char *text, size_t len,
                  struct extract_result *out, char *errbuf, size_t errlen);

#endif
