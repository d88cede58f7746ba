/* json_scan.h — a validating JSON scanner that allocates nothing, for hot paths
 * (one SSE chunk per streamed token) where building a tree per document costs
 * more than the rest of the work together.
 *
 * It accepts exactly what jansson's json_loadb(..., 0, ...) accepts (RFC 8259
 * with jansson's limits: UTF-8 only, no \u0000, paired surrogates, integers
 * within int64, finite reals, nesting up to 2048, nothing after the value but
 * whitespace; a NUL byte anywhere is an error, where jansson lets some through
 * between tokens) — the fuzz target checks this against jansson — and reports the
 * values found at a few paths the caller names. Where a key repeats, the last
 * occurrence wins, as in jansson. */
#ifndef SONDE_JSON_SCAN_H
#define SONDE_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JS_MAX_PATHS 16
#define JS_MAX_SEGS  6

enum js_type {
    JS_NONE,
    JS_OBJECT,
    JS_ARRAY,
    JS_STRING,
    JS_INTEGER,
    JS_REAL,
    JS_TRUE,
    JS_FALSE,
    JS_NULL
};

/* A path: segments, each an object key (a slice of text) or an array index. */
struct js_seg {
    bool is_key;
    unsigned char off, len; /* the key: text[off, off + len) */
    size_t index;
};

struct js_path {
    struct js_seg seg[JS_MAX_SEGS];
    int nseg;
    char text[64];
};

/* Paths compiled into a tree (js_paths_init), walked while scanning: a value
 * is compared only with the keys that can continue a path from where it sits. */
struct js_node {
    uint16_t child, next; /* first child, next sibling; 0: none (node 1 is the root) */
    uint8_t len;          /* of the key */
    bool is_key;
    uint32_t ends;  /* paths that end here */
    uint32_t under; /* paths that end here or below */
    size_t index;   /* an array index when !is_key */
    char key[64];   /* the key when is_key (not NUL-terminated) */
};

struct js_paths {
    struct js_path path[JS_MAX_PATHS];
    int npaths;
    struct js_node node[1 + JS_MAX_PATHS * JS_MAX_SEGS];
    int nnodes;
};

/* What was found at one path. */
struct js_found {
    enum js_type type; /* JS_NONE: absent */
    const char *raw;   /* JS_STRING: the string's bytes between the quotes, escapes as written */
    size_t raw_len;    /* 0 exactly when the decoded string is empty */
    int64_t integer;   /* JS_INTEGER */
};

/* Parses "a.b[0].c" into *p (keys without '.', '[' or ']'; at most 63
 * characters in all). 0 or -EINVAL. */
int js_path_parse(const char *text, struct js_path *p);

/* Parses texts[0..n) (n <= JS_MAX_PATHS) into *set: 0, or -EINVAL when one is
 * malformed. */
int js_paths_init(struct js_paths *set, const char *const *texts, int n);

/* Scans text[0..len). Returns the type of the top value (JS_OBJECT or
 * JS_ARRAY, as jansson decodes only those), or JS_NONE when the text is not
 * valid JSON; found[i] is filled for set->path[i] (set NULL: only validates). */
enum js_type js_scan(const char *text, size_t len, const struct js_paths *set,
                     struct js_found *found);

#endif
