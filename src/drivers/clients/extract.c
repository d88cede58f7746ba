/* extract.c — metric values from command output: regex captures and JSON paths. */
#include "drivers/clients/extract.h"

#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOW_MAX 40 /* bytes of offending text quoted in messages */

static void errf(char *errbuf, size_t errlen, const char *fmt, ...) SONDE_PRINTF(3, 4);
static void errf(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* ---- numbers ---- */

/* Copies text[0..len) for a message: at most SHOW_MAX bytes, control bytes as '?'. */
static void show(const char *text, size_t len, char *buf, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < len && i < SHOW_MAX && k + 4 < n; i++)
        buf[k++] = (unsigned char)text[i] < 0x20 ? '?' : text[i];
    if (len > SHOW_MAX && k + 4 < n) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
}

static bool only_number_chars(const char *s)
{
    for (; *s; s++)
        if (!strchr("0123456789+-.eE", *s))
            return false;
    return true;
}

int extract_number(const char *text, size_t len, double *out, char *errbuf, size_t errlen)
{
    char shown[SHOW_MAX + 8];
    show(text, len, shown, sizeof(shown));
    while (len && isspace((unsigned char)*text))
        text++, len--;
    while (len && isspace((unsigned char)text[len - 1]))
        len--;
    if (len == 0 || len > 64) {
        errf(errbuf, errlen, "'%s' is not a number", shown);
        return -EINVAL;
    }
    char buf[65];
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *end;
    double v = only_number_chars(buf) ? strtod(buf, &end) : NAN;
    if (isnan(v) || *end != '\0' || !isfinite(v)) { /* underflow to 0 is fine */
        errf(errbuf, errlen, "'%s' is not a number", shown);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* ---- regex ---- */

int extract_regex_compile(const char *re, int group, int unit_group, regex_t *out, char *errbuf,
                          size_t errlen)
{
    int rc = regcomp(out, re, REG_EXTENDED | REG_NEWLINE);
    if (rc != 0) {
        char msg[256];
        regerror(rc, out, msg, sizeof(msg));
        errf(errbuf, errlen, "invalid regex '%s': %s", re, msg);
        return -EINVAL;
    }
    int worst = group > unit_group ? group : unit_group;
    if (group < 0 || unit_group < 0) {
        errf(errbuf, errlen, "capture group numbers must be 0 or more");
        regfree(out);
        return -EINVAL;
    }
    if ((size_t)worst > out->re_nsub) {
        errf(errbuf, errlen,
             "regex '%s' has %zu capture group(s), no group %d (0 is the whole match)", re,
             out->re_nsub, worst);
        regfree(out);
        return -EINVAL;
    }
    return 0;
}

/* Finds the wanted match; fills m (nsub + 1 entries, offsets from text). */
static bool find_match(const regex_t *re, const char *text, enum extract_occurrence occ,
                       regmatch_t *m, size_t nm)
{
    regmatch_t cur[10 + 1], *c = nm <= SONDE_ARRAY_LEN(cur) ? cur : xcalloc(nm, sizeof(*m));
    bool found = false;
    const char *p = text;
    while (*p) {
        int flags = p > text && p[-1] != '\n' ? REG_NOTBOL : 0;
        if (regexec(re, p, nm, c, flags) != 0)
            break;
        for (size_t i = 0; i < nm; i++) {
            m[i].rm_so = c[i].rm_so < 0 ? -1 : c[i].rm_so + (p - text);
            m[i].rm_eo = c[i].rm_eo < 0 ? -1 : c[i].rm_eo + (p - text);
        }
        found = true;
        if (occ == EXTRACT_FIRST)
            break;
        p += c[0].rm_eo > 0 ? c[0].rm_eo : 1; /* an empty match still advances */
    }
    if (c != cur)
        free(c);
    return found;
}

static void copy_unit(const char *text, const regmatch_t *g, char unit[EXTRACT_UNIT_MAX])
{
    unit[0] = '\0';
    if (g->rm_so < 0)
        return;
    const char *s = text + g->rm_so;
    size_t n = (size_t)(g->rm_eo - g->rm_so);
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= EXTRACT_UNIT_MAX)
        n = EXTRACT_UNIT_MAX - 1;
    memcpy(unit, s, n);
    unit[n] = '\0';
}

int extract_regex(const regex_t *re, const struct extract_rule *r, const char *text,
                  struct extract_result *out, char *errbuf, size_t errlen)
{
    size_t nm = re->re_nsub + 1;
    if (r->group < 0 || (size_t)r->group >= nm || r->unit_group < 0 ||
        (size_t)r->unit_group >= nm) {
        errf(errbuf, errlen, "regex has %zu capture group(s), no group %d", re->re_nsub,
             r->group < 0 || (size_t)r->group >= nm ? r->group : r->unit_group);
        return -EINVAL;
    }
    regmatch_t *m = xcalloc(nm, sizeof(*m));
    int rc = 0;
    if (!find_match(re, text, r->occurrence, m, nm)) {
        errf(errbuf, errlen, "no match");
        rc = -ENOENT;
        goto out;
    }
    const regmatch_t *g = &m[r->group];
    double v = 0;
    char why[128];
    if (g->rm_so < 0) {
        errf(errbuf, errlen, "group %d did not take part in the %s match", r->group,
             r->occurrence == EXTRACT_FIRST ? "first" : "last");
        rc = -EINVAL;
        goto out;
    }
    if (extract_number(text + g->rm_so, (size_t)(g->rm_eo - g->rm_so), &v, why, sizeof(why))) {
        errf(errbuf, errlen, "group %d of the %s match: %s", r->group,
             r->occurrence == EXTRACT_FIRST ? "first" : "last", why);
        rc = -EINVAL;
        goto out;
    }
    out->value = v * r->scale;
    if (r->unit_group > 0)
        copy_unit(text, &m[r->unit_group], out->unit);
    else
        out->unit[0] = '\0';
out:
    free(m);
    return rc;
}

/* ---- JSON paths ---- */

struct step {
    bool is_index;
    long long index;
    char key[EXTRACT_PATH_MAX + 1];
};

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-';
}

static int parse_quoted(const char **pp, struct step *st, char *errbuf, size_t errlen)
{
    const char *p = *pp;
    char q = *p++;
    size_t n = 0;
    for (; *p && *p != q; p++) {
        if (*p == '\\' && (p[1] == q || p[1] == '\\'))
            p++;
        if (n >= EXTRACT_PATH_MAX)
            break;
        st->key[n++] = *p;
    }
    if (*p != q) {
        errf(errbuf, errlen, "unterminated quoted key");
        return -EINVAL;
    }
    st->key[n] = '\0';
    *pp = p + 1;
    return 0;
}

static int parse_bracket(const char **pp, struct step *st, char *errbuf, size_t errlen)
{
    const char *p = *pp + 1; /* after '[' */
    if (*p == '"' || *p == '\'') {
        st->is_index = false;
        if (parse_quoted(&p, st, errbuf, errlen) < 0)
            return -EINVAL;
    } else {
        char *end;
        errno = 0;
        st->is_index = true;
        st->index = strtoll(p, &end, 10);
        if (end == p || errno == ERANGE || !(isdigit((unsigned char)*p) || *p == '-')) {
            errf(errbuf, errlen, "expected an index or a quoted key after '['");
            return -EINVAL;
        }
        p = end;
    }
    if (*p != ']') {
        errf(errbuf, errlen, "expected ']'");
        return -EINVAL;
    }
    *pp = p + 1;
    return 0;
}

/* Reads the next step at *pp. Returns 1 with a step, 0 at the end, -EINVAL. */
static int next_step(const char **pp, bool first, struct step *st, char *errbuf, size_t errlen)
{
    const char *p = *pp;
    if (!*p)
        return 0;
    if (*p == '[') {
        if (parse_bracket(&p, st, errbuf, errlen) < 0)
            return -EINVAL;
        *pp = p;
        return 1;
    }
    if (*p == '.')
        p++;
    else if (!first) {
        errf(errbuf, errlen, "expected '.' or '[' at '%c'", *p);
        return -EINVAL;
    }
    size_t n = 0;
    while (ident_char(p[n]))
        n++;
    if (n == 0) {
        errf(errbuf, errlen, "expected a key at '%s'", p);
        return -EINVAL;
    }
    memcpy(st->key, p, n);
    st->key[n] = '\0';
    st->is_index = false;
    *pp = p + n;
    return 1;
}

/* Skips the optional leading "$". */
static const char *path_start(const char *path)
{
    if (path[0] == '$' && (path[1] == '\0' || path[1] == '.' || path[1] == '['))
        return path[1] == '.' ? path + 2 : path + 1;
    return path;
}

static int path_validate(const char *path, char *errbuf, size_t errlen)
{
    if (!*path) {
        errf(errbuf, errlen, "empty JSON path");
        return -EINVAL;
    }
    if (strlen(path) > EXTRACT_PATH_MAX) {
        errf(errbuf, errlen, "JSON path longer than %d bytes", EXTRACT_PATH_MAX);
        return -EINVAL;
    }
    return 0;
}

int extract_json_path_check(const char *path, char *errbuf, size_t errlen)
{
    if (path_validate(path, errbuf, errlen) < 0)
        return -EINVAL;
    struct step *st = xmalloc(sizeof(*st));
    const char *p = path_start(path);
    int r, depth = 0;
    char why[256];
    while ((r = next_step(&p, depth == 0, st, why, sizeof(why))) == 1)
        if (++depth > EXTRACT_PATH_DEPTH) {
            snprintf(why, sizeof(why), "more than %d steps", EXTRACT_PATH_DEPTH);
            r = -EINVAL;
            break;
        }
    if (r < 0)
        errf(errbuf, errlen, "invalid JSON path '%s': %s", path, why);
    free(st);
    return r < 0 ? -EINVAL : 0;
}

static const char *json_type_name(const json_t *v)
{
    if (!v)
        return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a bool";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

/* One step down from cur; *next is NULL when absent (errbuf says why). */
static int json_step(const json_t *cur, const struct step *st, const char *where,
                     const json_t **next, char *errbuf, size_t errlen)
{
    if (st->is_index) {
        if (!json_is_array(cur)) {
            errf(errbuf, errlen, "%s is %s, not an array", where, json_type_name(cur));
            return -EINVAL;
        }
        long long n = (long long)json_array_size(cur);
        long long i = st->index < 0 ? n + st->index : st->index;
        if (i < 0 || i >= n) {
            errf(errbuf, errlen, "%s has %lld element(s), no index %lld", where, n, st->index);
            return -ENOENT;
        }
        *next = json_array_get(cur, (size_t)i);
        return 0;
    }
    if (!json_is_object(cur)) {
        errf(errbuf, errlen, "%s is %s, not an object", where, json_type_name(cur));
        return -EINVAL;
    }
    *next = json_object_get(cur, st->key);
    if (!*next) {
        errf(errbuf, errlen, "%s has no key '%s'", where, st->key);
        return -ENOENT;
    }
    return 0;
}

static int json_leaf(const json_t *v, const char *path, double *out, char *errbuf, size_t errlen)
{
    char why[128];
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v) ? 1 : 0;
        return 0;
    }
    if (json_is_string(v)) {
        if (extract_number(json_string_value(v), json_string_length(v), out, why, sizeof(why)) == 0)
            return 0;
        errf(errbuf, errlen, "'%s' is a string: %s", path, why);
        return -EINVAL;
    }
    errf(errbuf, errlen, "'%s' is %s, not a number", path, json_type_name(v));
    return -EINVAL;
}

int extract_json_path(const json_t *root, const char *path, double *out, char *errbuf,
                      size_t errlen)
{
    if (extract_json_path_check(path, errbuf, errlen) < 0)
        return -EINVAL;
    struct step *st = xmalloc(sizeof(*st));
    const char *start = path_start(path), *p = start, *before = start;
    const json_t *cur = root;
    int r;
    while ((r = next_step(&p, before == start, st, NULL, 0)) == 1) {
        char where[EXTRACT_PATH_MAX + 16]; /* the part of the path walked so far */
        if (before == start)
            snprintf(where, sizeof(where), "the document");
        else
            snprintf(where, sizeof(where), "'%.*s'", (int)(before - path), path);
        r = json_step(cur, st, where, &cur, errbuf, errlen);
        if (r < 0)
            goto out;
        before = p;
    }
    r = json_leaf(cur, path, out, errbuf, errlen);
out:
    free(st);
    return r;
}

int extract_json_load(const char *text, size_t len, json_t **out, char *errbuf, size_t errlen)
{
    json_error_t e;
    json_t *root = json_loadb(text, len, JSON_DECODE_ANY, &e);
    for (size_t i = 0; !root && i < len; i++) {
        if ((text[i] == '{' || text[i] == '[') && (i == 0 || text[i - 1] == '\n')) {
            json_error_t e2;
            root = json_loadb(text + i, len - i, JSON_DISABLE_EOF_CHECK, &e2);
            break;
        }
    }
    if (!root) {
        errf(errbuf, errlen, "not valid JSON: %s at line %d column %d", e.text, e.line, e.column);
        return -EINVAL;
    }
    *out = root;
    return 0;
}

static int apply_json(const struct extract_rule *r, const char *text, size_t len,
                      struct extract_result *out, char *errbuf, size_t errlen)
{
    json_t *root = NULL;
    double v;
    int rc = extract_json_load(text, len, &root, errbuf, errlen);
    if (rc == 0)
        rc = extract_json_path(root, r->json, &v, errbuf, errlen);
    json_decref(root);
    if (rc < 0)
        return rc;
    out->value = v * r->scale;
    out->unit[0] = '\0';
    return 0;
}

int extract_apply(const struct extract_rule *r, const char *text, size_t len,
                  struct extract_result *out, char *errbuf, size_t errlen)
{
    if (!!r->regex == !!r->json) {
        errf(errbuf, errlen, "exactly one of regex and json must be given");
        return -EINVAL;
    }
    if (r->json)
        return apply_json(r, text, len, out, errbuf, errlen);
    regex_t re;
    int rc = extract_regex_compile(r->regex, r->group, r->unit_group, &re, errbuf, errlen);
    if (rc < 0)
        return rc;
    char *copy = NULL;
    if (memchr(text, '\0', len)) { /* NUL bytes would end regexec early */
        copy = xmalloc(len + 1);
        for (size_t i = 0; i < len; i++)
            copy[i] = text[i] ? text[i] : '\n';
        copy[len] = '\0';
    }
    rc = extract_regex(&re, r, copy ? copy : text, out, errbuf, errlen);
    free(copy);
    regfree(&re);
    return rc;
}
