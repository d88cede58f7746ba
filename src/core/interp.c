/* interp.c — `${...}` references in recipe scalars.
 *
 * Two passes: at resolve time ${matrix.*} and ${env.*} are substituted and every
 * other reference is checked; at run time the rest (${session.*}, ${self.*},
 * ${services.NAME.*}, ${trial.*}) is substituted through a lookup callback.
 * `$${` stays as written until the run-time pass turns it into `${`. */
#include "core/recipe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INTERP_MAX_SCALAR (4u * RECIPE_MAX_BYTES)

/* What a reference handler decided. */
enum ref_result { REF_KEEP, REF_REPLACE, REF_ERROR };

typedef enum ref_result (*ref_fn)(void *ud, const char *ref, struct sv_pos pos, const char *path,
                                  struct diags *d, char **repl);

bool recipe_has_ref(const char *s)
{
    for (const char *p = s; p && (p = strstr(p, "${")); p += 2)
        if (p == s || p[-1] != '$')
            return true;
    return false;
}

/* Appends to b; remembers when the buffer hit its maximum. */
static void put(struct sbuf *b, const char *s, size_t n, bool *full)
{
    if (sbuf_add(b, s, n) < 0)
        *full = true;
}

/* Expands s into out; false when any reference failed (diagnostics added).
 * *full is set when out reached its maximum size. */
static bool expand(const char *s, struct sv_pos pos, const char *path, bool runtime, ref_fn fn,
                   void *ud, struct diags *d, struct sbuf *out, bool *full)
{
    bool ok = true;
    while (*s) {
        if (s[0] == '$' && s[1] == '$' && s[2] == '{') {
            put(out, runtime ? "${" : "$${", runtime ? 2 : 3, full);
            s += 3;
            continue;
        }
        if (s[0] != '$' || s[1] != '{') {
            const char *next = strchr(s + 1, '$');
            size_t n = next ? (size_t)(next - s) : strlen(s);
            put(out, s, n, full);
            s += n;
            continue;
        }
        const char *end = strchr(s + 2, '}');
        if (!end) {
            diags_add(d, pos, path, NULL, "unterminated reference '%.40s' (missing '}')", s);
            return false;
        }
        char *ref = xstrndup(s + 2, (size_t)(end - s - 2));
        char *repl = NULL;
        enum ref_result r = REF_ERROR;
        if (!*ref)
            diags_add(d, pos, path, NULL, "empty reference '${}' (write $${ for a literal '${')");
        else
            r = fn(ud, ref, pos, path, d, &repl);
        if (r == REF_REPLACE)
            put(out, repl, strlen(repl), full);
        else
            put(out, s, (size_t)(end - s + 1), full);
        ok = ok && r != REF_ERROR;
        free(repl);
        free(ref);
        s = end + 1;
    }
    return ok;
}

/* Expands one scalar in place; -EINVAL on errors. */
static int expand_scalar(struct sv *v, const char *path, bool runtime, ref_fn fn, void *ud,
                         struct diags *d, size_t *budget)
{
    if (!strchr(v->str, '$'))
        return 0;
    struct sbuf b = {.max = INTERP_MAX_SCALAR};
    bool full = false;
    bool ok = expand(v->str, v->pos, path, runtime, fn, ud, d, &b, &full);
    size_t in = strlen(v->str);
    if (ok && (full || (budget && b.len > in && b.len - in > *budget))) {
        diags_add(d, v->pos, path, NULL,
                  "the value grows past the size limit after substitution (%u MiB in all)",
                  RECIPE_MAX_RESOLVED >> 20);
        ok = false;
    }
    if (ok) {
        if (budget && b.len > in)
            *budget -= b.len - in;
        free(v->str);
        v->str = sbuf_steal(&b);
    }
    sbuf_free(&b);
    return ok ? 0 : -EINVAL;
}

/* Walks every scalar of tree (keys excluded) with fn; collects all errors. */
static int walk(struct sv *v, const char *path, bool runtime, ref_fn fn, void *ud, struct diags *d,
                size_t *budget)
{
    if (v->kind == SV_SCALAR)
        return expand_scalar(v, path, runtime, fn, ud, d, budget);
    int r = 0;
    for (size_t i = 0; i < v->n; i++) {
        struct sv *k = v->kids[i];
        char *p = v->kind == SV_MAP ? xasprintf("%s%s%s", path, *path ? "." : "", k->key)
                                    : xasprintf("%s[%zu]", path, i);
        if (walk(k, p, runtime, fn, ud, d, budget) < 0)
            r = -EINVAL;
        free(p);
    }
    return r;
}

/* ---- resolve time ---- */

static const char *const namespaces[] = {"matrix",   "env",   "session", "self",
                                         "services", "trial", NULL};
static const char *const session_fields[] = {"dir", "id", NULL};
static const char *const self_fields[] = {"host", "port", "dir", "name", "listen", NULL};
static const char *const service_fields[] = {"host", "port", "dir", NULL};
static const char *const trial_fields[] = {"index", "label", "repetition", NULL};

static bool in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

static char *suggest_hint(const char *word, const char *const *cands)
{
    const char *s = str_suggest(word, cands);
    return s ? xasprintf("did you mean '%s'?", s) : NULL;
}

/* Checks that field is one of fields; an error naming the reference otherwise. */
static bool check_field(const char *ref, const char *field, const char *const *fields,
                        struct sv_pos pos, const char *path, struct diags *d)
{
    if (field && in_list(field, fields))
        return true;
    char *hint = field ? suggest_hint(field, fields) : NULL;
    struct sbuf b = {0};
    for (size_t i = 0; fields[i]; i++)
        sbuf_printf(&b, "%s%s", i ? ", " : "", fields[i]);
    size_t prefix = field ? (size_t)(field - ref) : strlen(ref) + 1;
    diags_add(d, pos, path, hint, "unknown reference '${%s}': expected one of %s after '%.*s.'",
              ref, b.s, (int)(prefix - 1), ref);
    sbuf_free(&b);
    free(hint);
    return false;
}

static bool env_name_ok(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

static enum ref_result ref_env(struct interp_static *c, const char *ref, const char *rest,
                               struct sv_pos pos, const char *path, struct diags *d, char **repl)
{
    const char *dflt = strstr(rest, ":-");
    size_t n = dflt ? (size_t)(dflt - rest) : strlen(rest);
    if (!env_name_ok(rest, n)) {
        diags_add(d, pos, path, NULL,
                  "invalid environment variable name in '${%s}' (expected letters, digits and "
                  "'_')",
                  ref);
        return REF_ERROR;
    }
    if (dflt && strstr(dflt + 2, "${")) { /* the reference ended at the inner '}' */
        diags_add(d, pos, path, NULL,
                  "the default in '${%s}...' holds another reference: defaults are plain text",
                  ref);
        return REF_ERROR;
    }
    if (c->lenient)
        return REF_KEEP;
    char *name = xstrndup(rest, n);
    const char *val = getenv(name);
    enum ref_result r = REF_REPLACE;
    if (val && *val)
        *repl = xstrdup(val);
    else if (dflt)
        *repl = xstrdup(dflt + 2);
    else if (val)
        *repl = xstrdup(val);
    else {
        diags_add(d, pos, path, NULL,
                  "environment variable '%s' is not set (write ${env.%s:-default} to give a "
                  "default)",
                  name, name);
        r = REF_ERROR;
    }
    free(name);
    return r;
}

static enum ref_result ref_matrix(struct interp_static *c, const char *ref, const char *key,
                                  struct sv_pos pos, const char *path, struct diags *d, char **repl)
{
    if (c->lenient || c->matrix_unknown)
        return REF_KEEP;
    const struct sv *m = c->matrix;
    const char **keys = xcalloc((m ? m->n : 0) + 1, sizeof(*keys));
    enum ref_result r = REF_ERROR;
    for (size_t i = 0; m && i < m->n; i++) {
        keys[i] = m->kids[i]->key;
        if (strcmp(keys[i], key) == 0 && c->point) {
            *repl = xstrdup(c->point[i]);
            r = REF_REPLACE;
        }
    }
    if (r == REF_ERROR) {
        char *hint = suggest_hint(key, keys);
        if (m && m->n)
            diags_add(d, pos, path, hint, "unknown matrix key '%s' in '${%s}'", key, ref);
        else
            diags_add(d, pos, path, hint,
                      "'${%s}' refers to the matrix, but the benchmark has no 'matrix:'", ref);
        free(hint);
    }
    free(keys);
    return r;
}

static void add_dep(struct interp_static *c, const char *name, struct sv_pos pos)
{
    for (size_t i = 0; i < c->ndeps; i++)
        if (strcmp(c->deps[i].name, name) == 0)
            return;
    c->deps = xrealloc(c->deps, (c->ndeps + 1) * sizeof(*c->deps));
    c->deps[c->ndeps++] = (struct interp_dep){xstrdup(name), pos};
}

static enum ref_result ref_services(struct interp_static *c, const char *ref, const char *rest,
                                    struct sv_pos pos, const char *path, struct diags *d)
{
    const char *dot = strchr(rest, '.');
    char *name = xstrndup(rest, dot ? (size_t)(dot - rest) : strlen(rest));
    enum ref_result r = REF_KEEP;
    if (!dot) {
        diags_add(d, pos, path, NULL,
                  "incomplete reference '${%s}': expected ${services.NAME.host|port|dir}", ref);
        r = REF_ERROR;
    } else if (!c->lenient && !in_list(name, (const char *const *)c->services)) {
        char *hint = suggest_hint(name, (const char *const *)c->services);
        diags_add(d, pos, path, hint, "'${%s}' refers to an unknown service '%s'", ref, name);
        free(hint);
        r = REF_ERROR;
    } else if (!check_field(ref, dot + 1, service_fields, pos, path, d)) {
        r = REF_ERROR;
    } else if (!c->lenient) {
        add_dep(c, name, pos);
    }
    free(name);
    return r;
}

static enum ref_result ref_static(void *ud, const char *ref, struct sv_pos pos, const char *path,
                                  struct diags *d, char **repl)
{
    struct interp_static *c = ud;
    size_t n = strcspn(ref, ".");
    char *ns = xstrndup(ref, n);
    const char *rest = ref[n] ? ref + n + 1 : NULL;
    enum ref_result r = REF_KEEP;
    if (!in_list(ns, namespaces)) {
        char *hint = suggest_hint(ns, namespaces);
        diags_add(d, pos, path, hint,
                  "unknown reference '${%s}': expected matrix., env., session., self., "
                  "services. or trial.",
                  ref);
        free(hint);
        r = REF_ERROR;
    } else if (!strcmp(ns, "matrix")) {
        r = ref_matrix(c, ref, rest ? rest : "", pos, path, d, repl);
    } else if (!strcmp(ns, "env")) {
        r = ref_env(c, ref, rest ? rest : "", pos, path, d, repl);
    } else if (!strcmp(ns, "services")) {
        r = ref_services(c, ref, rest ? rest : "", pos, path, d);
    } else {
        const char *const *fields = !strcmp(ns, "session") ? session_fields
                                    : !strcmp(ns, "self")  ? self_fields
                                                           : trial_fields;
        if (!check_field(ref, rest, fields, pos, path, d))
            r = REF_ERROR;
        else if (!strcmp(ref, "self.port") && !c->self_port && !c->lenient) {
            diags_add(d, pos, path, NULL,
                      "'${self.port}' needs 'port:' on this service (port: auto or a number)");
            r = REF_ERROR;
        }
    }
    free(ns);
    return r;
}

int recipe_interp_static(struct sv *tree, struct interp_static *c, const char *path,
                         struct diags *d)
{
    return walk(tree, path ? path : "", false, ref_static, c, d, c->budget);
}

void interp_static_free(struct interp_static *c)
{
    for (size_t i = 0; c && i < c->ndeps; i++)
        free(c->deps[i].name);
    if (c) {
        free(c->deps);
        c->deps = NULL;
        c->ndeps = 0;
    }
}

/* ---- run time ---- */

struct runtime_ctx {
    interp_lookup_fn lookup;
    void *ud;
};

static enum ref_result ref_runtime(void *ud, const char *ref, struct sv_pos pos, const char *path,
                                   struct diags *d, char **repl)
{
    const struct runtime_ctx *c = ud;
    const char *v = c->lookup ? c->lookup(c->ud, ref) : NULL;
    if (!v) {
        diags_add(d, pos, path, NULL, "cannot resolve '${%s}' at run time", ref);
        return REF_ERROR;
    }
    *repl = xstrdup(v);
    return REF_REPLACE;
}

int recipe_interp_runtime(struct sv *tree, interp_lookup_fn lookup, void *ud, struct diags *d)
{
    struct runtime_ctx c = {lookup, ud};
    return tree ? walk(tree, "", true, ref_runtime, &c, d, NULL) : 0;
}

int recipe_interp_string(const char *s, struct sv_pos pos, interp_lookup_fn lookup, void *ud,
                         struct diags *d, char **out)
{
    struct sv v = {.kind = SV_SCALAR, .pos = pos, .str = xstrdup(s ? s : "")};
    struct runtime_ctx c = {lookup, ud};
    int r = expand_scalar(&v, "", true, ref_runtime, &c, d, NULL);
    if (r == 0)
        *out = v.str;
    else
        free(v.str);
    return r;
}
