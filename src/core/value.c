/* value.c — the positioned value tree: construction, merge, typed reads, YAML/JSON output. */
#include "core/value.h"

#include "util/units.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

/* ---- interned file names ---- */

struct intern {
    struct intern *next;
    char name[];
};

static struct intern *interned;
static pthread_mutex_t intern_lock = PTHREAD_MUTEX_INITIALIZER;

const char *sv_intern(const char *file)
{
    if (!file)
        return NULL;
    pthread_mutex_lock(&intern_lock);
    struct intern *i;
    for (i = interned; i; i = i->next)
        if (strcmp(i->name, file) == 0)
            break;
    if (!i) {
        size_t n = strlen(file) + 1;
        i = xmalloc(sizeof(*i) + n);
        memcpy(i->name, file, n);
        i->next = interned;
        interned = i;
    }
    pthread_mutex_unlock(&intern_lock);
    return i->name;
}

/* ---- construction ---- */

struct sv *sv_new(enum sv_kind kind, struct sv_pos pos)
{
    struct sv *v = xcalloc(1, sizeof(*v));
    v->kind = kind;
    v->pos = pos;
    v->kpos = pos;
    return v;
}

struct sv *sv_new_scalar(const char *text, struct sv_pos pos)
{
    struct sv *v = sv_new(SV_SCALAR, pos);
    v->str = xstrdup(text ? text : "");
    return v;
}

/* Frees what v owns, not v itself. */
static void sv_clear(struct sv *v)
{
    for (size_t i = 0; i < v->n; i++)
        sv_free(v->kids[i]);
    free(v->kids);
    free(v->str);
    v->kids = NULL;
    v->str = NULL;
    v->n = v->cap = 0;
}

void sv_free(struct sv *v)
{
    if (!v)
        return;
    sv_clear(v);
    free(v->key);
    free(v);
}

struct sv *sv_clone(const struct sv *v)
{
    if (!v)
        return NULL;
    struct sv *c = sv_new(v->kind, v->pos);
    c->kpos = v->kpos;
    c->key = xstrdup(v->key);
    c->str = xstrdup(v->str);
    c->quoted = v->quoted;
    if (v->n) {
        c->kids = xcalloc(v->n, sizeof(*c->kids));
        c->cap = v->n;
        for (size_t i = 0; i < v->n; i++)
            c->kids[i] = sv_clone(v->kids[i]);
        c->n = v->n;
    }
    return c;
}

void sv_append(struct sv *parent, const char *key, struct sv *child)
{
    if (parent->n == parent->cap) {
        parent->cap = parent->cap ? parent->cap * 2 : 4;
        parent->kids = xrealloc(parent->kids, parent->cap * sizeof(*parent->kids));
    }
    if (key) {
        free(child->key);
        child->key = xstrdup(key);
    }
    parent->kids[parent->n++] = child;
}

static ssize_t sv_index(const struct sv *map, const char *key)
{
    if (!map || map->kind != SV_MAP || !key)
        return -1;
    for (size_t i = 0; i < map->n; i++)
        if (map->kids[i]->key && strcmp(map->kids[i]->key, key) == 0)
            return (ssize_t)i;
    return -1;
}

struct sv *sv_get(const struct sv *map, const char *key)
{
    ssize_t i = sv_index(map, key);
    return i < 0 ? NULL : map->kids[i];
}

void sv_set(struct sv *map, const char *key, struct sv *val)
{
    ssize_t i = sv_index(map, key);
    if (i < 0) {
        sv_append(map, key, val);
        return;
    }
    free(val->key);
    val->key = xstrdup(key);
    sv_free(map->kids[i]);
    map->kids[i] = val;
}

void sv_del(struct sv *map, const char *key)
{
    ssize_t i = sv_index(map, key);
    if (i < 0)
        return;
    sv_free(map->kids[i]);
    memmove(&map->kids[i], &map->kids[i + 1], (map->n - (size_t)i - 1) * sizeof(*map->kids));
    map->n--;
}

void sv_merge(struct sv *base, const struct sv *over)
{
    if (!base || !over)
        return;
    if (base->kind == SV_MAP && over->kind == SV_MAP) {
        base->pos = over->pos; /* the later writer's: what its errors point to */
        for (size_t i = 0; i < over->n; i++) {
            const struct sv *o = over->kids[i];
            struct sv *b = sv_get(base, o->key);
            if (b && b->kind == SV_MAP && o->kind == SV_MAP)
                sv_merge(b, o);
            else
                sv_set(base, o->key, sv_clone(o));
        }
        return;
    }
    /* Replace base's content in place; base keeps its key. */
    struct sv *c = sv_clone(over);
    sv_clear(base);
    base->kind = c->kind;
    base->pos = c->pos;
    base->str = c->str;
    base->quoted = c->quoted;
    base->kids = c->kids;
    base->n = c->n;
    base->cap = c->cap;
    free(c->key);
    free(c);
}

/* ---- typed reads ---- */

static int scalar_text(const struct sv *v, const char **s)
{
    if (!v)
        return -ENOENT;
    if (v->kind != SV_SCALAR)
        return -EINVAL;
    *s = v->str;
    return 0;
}

int sv_as_int(const struct sv *v, int64_t *out)
{
    const char *s;
    int r = scalar_text(v, &s);
    if (r < 0)
        return r;
    if (!*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
        return -EINVAL;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (*end != '\0')
        return -EINVAL;
    if (errno == ERANGE)
        return -ERANGE;
    *out = x;
    return 0;
}

int sv_as_double(const struct sv *v, double *out)
{
    const char *s;
    int r = scalar_text(v, &s);
    if (r < 0)
        return r;
    if (!*s || strchr(" \t\n", *s) || strpbrk(s, "xXnN") || strpbrk(s, "iI"))
        return -EINVAL; /* no hex floats, nan or inf */
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (*end != '\0' || !isfinite(x))
        return -EINVAL;
    if (errno == ERANGE)
        return -ERANGE;
    *out = x;
    return 0;
}

int sv_as_bool(const struct sv *v, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    const char *s;
    int r = scalar_text(v, &s);
    if (r < 0)
        return r;
    for (size_t i = 0; i < SONDE_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int sv_as_duration(const struct sv *v, int64_t *ns)
{
    const char *s;
    int r = scalar_text(v, &s);
    return r < 0 ? r : parse_duration_ns(s, ns);
}

int sv_as_size(const struct sv *v, int64_t *bytes)
{
    const char *s;
    int r = scalar_text(v, &s);
    return r < 0 ? r : parse_size_bytes(s, bytes);
}

int sv_as_strv(const struct sv *v, char ***out)
{
    if (!v)
        return -ENOENT;
    if (v->kind != SV_SEQ)
        return -EINVAL;
    for (size_t i = 0; i < v->n; i++)
        if (v->kids[i]->kind != SV_SCALAR)
            return -EINVAL;
    char **r = xcalloc(v->n + 1, sizeof(*r));
    for (size_t i = 0; i < v->n; i++)
        r[i] = xstrdup(v->kids[i]->str);
    *out = r;
    return 0;
}

const char *sv_str(const struct sv *map, const char *key, const char *def)
{
    const struct sv *v = sv_get(map, key);
    return v && v->kind == SV_SCALAR ? v->str : def;
}

/* ---- YAML output ---- */

static bool looks_special(const char *s)
{
    static const char *const words[] = {"null", "Null",  "NULL",  "~",     "true", "True",
                                        "TRUE", "false", "False", "FALSE", "yes",  "no",
                                        "on",   "off",   "Yes",   "No",    "On",   "Off"};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(words); i++)
        if (strcmp(s, words[i]) == 0)
            return true;
    char *end;
    (void)strtod(s, &end);
    return end != s && *end == '\0';
}

/* Plain YAML scalars must not need quoting to read back as the same text. */
static bool needs_quotes(const char *s, bool quoted)
{
    if (!*s || (quoted && looks_special(s)))
        return true;
    if (strchr(",[]{}#&*!|>'\"%@` \t", s[0]))
        return true;
    if (strchr("-?:", s[0]) && (s[1] == '\0' || s[1] == ' ' || s[1] == '\t'))
        return true;
    size_t n = strlen(s);
    if (s[n - 1] == ' ' || s[n - 1] == ':' || strstr(s, ": ") || strstr(s, " #"))
        return true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

static void yaml_quoted(struct sbuf *b, const char *s)
{
    sbuf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            sbuf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            sbuf_puts(b, "\\n");
        else if (*p == '\t')
            sbuf_puts(b, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            sbuf_printf(b, "\\x%02x", *p);
        else
            sbuf_add(b, (const char *)p, 1);
    }
    sbuf_puts(b, "\"");
}

static void yaml_scalar(struct sbuf *b, const struct sv *v)
{
    if (v->kind == SV_NULL)
        sbuf_puts(b, "null");
    else if (needs_quotes(v->str, v->quoted))
        yaml_quoted(b, v->str);
    else
        sbuf_puts(b, v->str);
}

static bool is_empty_coll(const struct sv *v)
{
    return (v->kind == SV_MAP || v->kind == SV_SEQ) && v->n == 0;
}

static void yaml_node(struct sbuf *b, const struct sv *v, int indent);

/* A short list of plain scalars is written in flow style: [a, b, c]. */
static bool flow_ok(const struct sv *v, int indent)
{
    size_t len = (size_t)indent + 8;
    if (v->kind != SV_SEQ || v->n == 0)
        return false;
    for (size_t i = 0; i < v->n; i++) {
        const struct sv *k = v->kids[i];
        if (k->kind != SV_SCALAR)
            return false;
        len += strlen(k->str) + 4;
    }
    return len <= 80;
}

static void yaml_flow(struct sbuf *b, const struct sv *v)
{
    sbuf_puts(b, " [");
    for (size_t i = 0; i < v->n; i++) {
        const struct sv *k = v->kids[i];
        sbuf_puts(b, i ? ", " : "");
        if (needs_quotes(k->str, k->quoted) || strpbrk(k->str, ",[]{}#"))
            yaml_quoted(b, k->str);
        else
            sbuf_puts(b, k->str);
    }
    sbuf_puts(b, "]\n");
}

/* Writes the value part after "key:" or "-". */
static void yaml_child(struct sbuf *b, const struct sv *v, int indent, bool in_seq)
{
    if (is_empty_coll(v)) {
        sbuf_puts(b, v->kind == SV_MAP ? " {}\n" : " []\n");
    } else if (flow_ok(v, indent)) {
        yaml_flow(b, v);
    } else if (in_seq && (v->kind == SV_MAP || v->kind == SV_SEQ)) {
        sbuf_puts(b, " ");
        yaml_node(b, v, -(indent + 2)); /* first entry on the dash line */
    } else if (v->kind == SV_MAP || v->kind == SV_SEQ) {
        sbuf_puts(b, "\n");
        yaml_node(b, v, indent + 2);
    } else {
        sbuf_puts(b, " ");
        yaml_scalar(b, v);
        sbuf_puts(b, "\n");
    }
}

/* indent < 0: the first line is already indented (after "- "). */
static void yaml_node(struct sbuf *b, const struct sv *v, int indent)
{
    bool first_inline = indent < 0;
    int ind = indent < 0 ? -indent : indent;
    if (v->kind != SV_MAP && v->kind != SV_SEQ) {
        yaml_scalar(b, v);
        sbuf_puts(b, "\n");
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const struct sv *k = v->kids[i];
        if (!(first_inline && i == 0))
            sbuf_printf(b, "%*s", ind, "");
        if (v->kind == SV_MAP) {
            struct sv key = {.kind = SV_SCALAR, .str = k->key ? k->key : (char *)""};
            yaml_scalar(b, &key);
            sbuf_puts(b, ":");
            yaml_child(b, k, ind, false);
        } else {
            sbuf_puts(b, "-");
            yaml_child(b, k, ind, true);
        }
    }
}

char *sv_to_yaml(const struct sv *v)
{
    struct sbuf b = {0};
    if (!v)
        sbuf_puts(&b, "null\n");
    else if (is_empty_coll(v))
        sbuf_puts(&b, v->kind == SV_MAP ? "{}\n" : "[]\n");
    else
        yaml_node(&b, v, 0);
    return sbuf_steal(&b);
}

/* ---- JSON output ---- */

static bool json_number(const char *s)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (*p == '.') {
        if (*++p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

static void json_string(struct sbuf *b, const char *s)
{
    sbuf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            sbuf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            sbuf_puts(b, "\\n");
        else if (*p == '\t')
            sbuf_puts(b, "\\t");
        else if (*p == '\r')
            sbuf_puts(b, "\\r");
        else if (*p < 0x20)
            sbuf_printf(b, "\\u%04x", *p);
        else
            sbuf_add(b, (const char *)p, 1);
    }
    sbuf_puts(b, "\"");
}

static void json_node(struct sbuf *b, const struct sv *v)
{
    switch (v->kind) {
    case SV_NULL:
        sbuf_puts(b, "null");
        break;
    case SV_SCALAR:
        if (!v->quoted &&
            (json_number(v->str) || !strcmp(v->str, "true") || !strcmp(v->str, "false")))
            sbuf_puts(b, v->str);
        else
            json_string(b, v->str);
        break;
    case SV_SEQ:
    case SV_MAP:
        sbuf_puts(b, v->kind == SV_MAP ? "{" : "[");
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                sbuf_puts(b, ",");
            if (v->kind == SV_MAP) {
                json_string(b, v->kids[i]->key ? v->kids[i]->key : "");
                sbuf_puts(b, ":");
            }
            json_node(b, v->kids[i]);
        }
        sbuf_puts(b, v->kind == SV_MAP ? "}" : "]");
        break;
    }
}

char *sv_to_json(const struct sv *v)
{
    struct sbuf b = {0};
    if (v)
        json_node(&b, v);
    else
        sbuf_puts(&b, "null");
    return sbuf_steal(&b);
}
