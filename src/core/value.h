/* value.h — a recipe document as a tree of values that remember where they came from.
 *
 * The YAML loader builds it; validation, `use:`/`with:` merging, matrix expansion
 * and interpolation work on it; drivers read their options from it. Every node
 * keeps the file, line and column it was read from so any later error can point
 * at the source. Positions are 1-based. A node copied or merged keeps its
 * original position. Scalars stay text: typed reads go through sv_get_*(). */
#ifndef SONDE_VALUE_H
#define SONDE_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sv_kind { SV_NULL, SV_SCALAR, SV_SEQ, SV_MAP };

struct sv_pos {
    const char *file; /* interned: lives as long as the process (see sv_intern) */
    unsigned line, col;
};

struct sv {
    enum sv_kind kind;
    struct sv_pos pos;  /* where the value starts */
    char *key;          /* set when this node is the value of a map entry */
    struct sv_pos kpos; /* where that key starts */
    char *str;          /* SV_SCALAR: the text (never NULL for scalars) */
    bool quoted;        /* SV_SCALAR: written in quotes (so "1" stays a string) */
    struct sv **kids;   /* SV_SEQ items / SV_MAP values in document order */
    size_t n, cap;
};

/* Interns a file name so positions can point to it cheaply; never freed. */
const char *sv_intern(const char *file);

struct sv *sv_new(enum sv_kind kind, struct sv_pos pos);
struct sv *sv_new_scalar(const char *text, struct sv_pos pos);
void sv_free(struct sv *v); /* accepts NULL; frees the whole subtree */
struct sv *sv_clone(const struct sv *v);

/* Appends child to a sequence, or (key != NULL) to a map. Takes ownership. */
void sv_append(struct sv *parent, const char *key, struct sv *child);
/* Map lookup; NULL when absent or parent is not a map. */
struct sv *sv_get(const struct sv *map, const char *key);
/* Replaces or adds map[key]; takes ownership of val, frees the old value. */
void sv_set(struct sv *map, const char *key, struct sv *val);
/* Removes map[key] if present. */
void sv_del(struct sv *map, const char *key);

/* Deep merge: maps merge key by key (recursively), anything else in over
 * replaces base; a merged map takes over's position. base is modified; over is
 * only read. */
void sv_merge(struct sv *base, const struct sv *over);

/* Typed reads of a scalar. 0 on success, -EINVAL when the text is not of that
 * type, -ENOENT when v is NULL. */
int sv_as_int(const struct sv *v, int64_t *out);
int sv_as_double(const struct sv *v, double *out);
int sv_as_bool(const struct sv *v, bool *out); /* true/false/yes/no/on/off */
int sv_as_duration(const struct sv *v, int64_t *ns);
int sv_as_size(const struct sv *v, int64_t *bytes);
/* A sequence of scalars as a NULL-terminated vector (caller frees with strv_free). */
int sv_as_strv(const struct sv *v, char ***out);

/* Convenience lookups with a default when the key is absent. */
const char *sv_str(const struct sv *map, const char *key, const char *def);

/* Emits the tree as YAML (block style, strings quoted when needed). */
char *sv_to_yaml(const struct sv *v);
/* Emits the tree as JSON (scalars that look like numbers/bools stay strings
 * unless unquoted and parseable). Caller frees. */
char *sv_to_json(const struct sv *v);

#endif
