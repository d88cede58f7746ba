/* recipe.c — recipe validation, `use:`/`with:` resolution, --set, matrix expansion.
 *
 * A benchmark is checked top-down; every error is collected (file:line:col,
 * key path, what was expected, what was found). Components are resolved once
 * (catalog entry merged under the benchmark's block), then each trial gets its
 * own copy with ${matrix.*} and ${env.*} substituted, which is type-checked
 * and turned into a comp_spec. */
#include "core/recipe.h"

#include "core/driver.h"
#include "util/units.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"benchmark", "service", "client", "monitor", NULL};
static const char *const role_names[] = {"service", "client", "monitor"};
static const char *const role_plural[] = {"services", "clients", "monitors"};

#define DEFAULT_STOP_GRACE       "10s"
#define DEFAULT_MONITOR_INTERVAL "1s"
#define DEFAULT_READY_TIMEOUT    "30s"
#define DEFAULT_READY_INTERVAL   "200ms"
#define NAME_MAX_LEN             128

const char *recipe_kind_name(enum recipe_kind k)
{
    return (unsigned)k < RECIPE_KIND_COUNT ? kind_names[k] : "?";
}

int recipe_kind_parse(const char *s, enum recipe_kind *out)
{
    for (int i = 0; s && i < RECIPE_KIND_COUNT; i++) {
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (enum recipe_kind)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *comp_role_name(enum comp_role r)
{
    return (unsigned)r <= ROLE_MONITOR ? role_names[r] : "?";
}

static enum recipe_kind role_kind(enum comp_role r)
{
    return (enum recipe_kind)(r + 1);
}

bool recipe_name_valid(const char *s, bool allow_dot)
{
    if (!s || !*s || strlen(s) > NAME_MAX_LEN)
        return false;
    for (const char *p = s; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || (allow_dot && *p == '.');
        if (!ok)
            return false;
    }
    return true;
}

/* ---- message helpers ---- */

/* "a map", "a list", "null" or the quoted (shortened) text, for "got ..." messages. */
static const char *got(const struct sv *v)
{
    static _Thread_local char bufs[4][72];
    static _Thread_local unsigned next;
    if (!v || v->kind == SV_NULL)
        return "null (nothing)";
    if (v->kind == SV_MAP)
        return "a map";
    if (v->kind == SV_SEQ)
        return "a list";
    char *b = bufs[next++ % 4];
    size_t n = 0;
    b[n++] = '\'';
    for (const char *p = v->str; *p && n < 60; p++)
        b[n++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    if (strlen(v->str) > 58)
        memcpy(b + n, "...", 3), n += 3;
    b[n++] = '\'';
    b[n] = '\0';
    return b;
}

static char *path_key(const char *path, const char *key)
{
    return xasprintf("%s%s%s", path, *path ? "." : "", key);
}

static char *hint_for(const char *word, const char *const *cands)
{
    const char *s = word ? str_suggest(word, cands) : NULL;
    return s ? xasprintf("did you mean '%s'?", s) : NULL;
}

static size_t nerr(const struct diags *d)
{
    return d->n + d->dropped;
}

static bool want(const struct sv *v, enum sv_kind k, const char *what, const char *path,
                 struct diags *d)
{
    if (v->kind == k)
        return true;
    diags_add(d, v->pos, path, NULL, "expected %s, got %s", what, got(v));
    return false;
}

/* Typed checks skip scalars that still hold a run-time ${...} reference. */
static bool has_ref(const struct sv *v)
{
    return v->kind == SV_SCALAR && recipe_has_ref(v->str);
}

static bool check_duration(const struct sv *v, const char *path, bool positive, struct diags *d,
                           int64_t *ns)
{
    if (has_ref(v))
        return true;
    int64_t x = 0;
    int r = v->kind == SV_SCALAR ? parse_duration_ns(v->str, &x) : -EINVAL;
    if (r == -ERANGE)
        diags_add(d, v->pos, path, NULL, "duration %s is too large", got(v));
    else if (r < 0)
        diags_add(d, v->pos, path, NULL,
                  "expected a duration like 500ms or 2m (units: ns, us, ms, s, m, h, d), got %s",
                  got(v));
    else if (positive && x <= 0)
        diags_add(d, v->pos, path, NULL, "expected a duration greater than 0, got %s", got(v));
    else if (ns)
        *ns = x;
    return r == 0 && (!positive || x > 0);
}

static bool check_size(const struct sv *v, const char *path, struct diags *d)
{
    if (has_ref(v))
        return true;
    int64_t x;
    int r = v->kind == SV_SCALAR ? parse_size_bytes(v->str, &x) : -EINVAL;
    if (r == -ERANGE)
        diags_add(d, v->pos, path, NULL, "size %s is too large", got(v));
    else if (r < 0)
        diags_add(d, v->pos, path, NULL,
                  "expected a size like 4KiB, 512B or 1MB (units: B, KB, MB, GB, TB, KiB, MiB, "
                  "GiB, TiB), got %s",
                  got(v));
    return r == 0;
}

/* A port: 1..65535, "auto" when allowed, or a run-time reference. */
static bool check_port(const struct sv *v, const char *path, bool allow_auto, struct diags *d)
{
    int64_t p;
    if (has_ref(v) || (allow_auto && v->kind == SV_SCALAR && !strcmp(v->str, "auto")))
        return true;
    if (sv_as_int(v, &p) == 0 && p >= 1 && p <= 65535)
        return true;
    diags_add(d, v->pos, path, NULL, "expected a port number 1..65535%s, got %s",
              allow_auto ? " or 'auto'" : "", got(v));
    return false;
}

/* A list whose items are all scalars; non-empty when asked. */
static bool check_scalar_list(const struct sv *v, const char *path, const char *what, bool nonempty,
                              struct diags *d)
{
    if (!want(v, SV_SEQ, what, path, d))
        return false;
    bool ok = true;
    if (nonempty && v->n == 0) {
        diags_add(d, v->pos, path, NULL, "expected %s, got an empty list", what);
        ok = false;
    }
    for (size_t i = 0; i < v->n; i++) {
        if (v->kids[i]->kind == SV_SCALAR)
            continue;
        char *p = xasprintf("%s[%zu]", path, i);
        diags_add(d, v->kids[i]->pos, p, NULL, "expected a string, got %s", got(v->kids[i]));
        free(p);
        ok = false;
    }
    return ok;
}

static bool env_key_ok(const char *k)
{
    return recipe_name_valid(k, false) && !strchr(k, '-') && !(k[0] >= '0' && k[0] <= '9');
}

/* A map of scalar values (environment variables when env is set). */
static bool check_scalar_map(const struct sv *v, const char *path, bool env, struct diags *d)
{
    if (v->kind == SV_NULL)
        return true;
    if (!want(v, SV_MAP, env ? "a map of environment variables" : "a map of strings", path, d))
        return false;
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        const struct sv *k = v->kids[i];
        char *p = path_key(path, k->key);
        if (env && !env_key_ok(k->key)) {
            diags_add(d, k->kpos, p, NULL,
                      "invalid environment variable name '%s' (letters, digits and '_')", k->key);
            ok = false;
        }
        if (k->kind != SV_SCALAR) {
            diags_add(d, k->pos, p, NULL, "expected a string, got %s", got(k));
            ok = false;
        }
        free(p);
    }
    return ok;
}

/* Reads an optional string field; null counts as not given. */
static bool get_str(const struct sv *node, const char *key, const char *path, struct diags *d,
                    char **out)
{
    const struct sv *v = sv_get(node, key);
    if (!v || v->kind == SV_NULL)
        return true;
    char *p = path_key(path, key);
    bool ok = want(v, SV_SCALAR, "a string", p, d);
    free(p);
    if (ok)
        *out = xstrdup(v->str);
    return ok;
}

/* Checks the keys of a map against allowed; unknown keys get a suggestion. */
static bool check_keys(const struct sv *map, const char *const *allowed, const char *path,
                       const char *what, struct diags *d)
{
    bool ok = true;
    for (size_t i = 0; i < map->n; i++) {
        const struct sv *k = map->kids[i];
        bool found = false;
        for (size_t j = 0; allowed[j] && !found; j++)
            found = strcmp(allowed[j], k->key) == 0;
        if (found)
            continue;
        char *hint = hint_for(k->key, allowed), *p = path_key(path, k->key);
        diags_add(d, k->kpos, p, hint, "unknown key '%s' in %s", k->key, what);
        free(hint);
        free(p);
        ok = false;
    }
    return ok;
}

/* ---- driver options (with:) ---- */

static bool check_opts(const struct sv *map, const struct opt_def *defs, const char *driver,
                       bool partial, const char *path, struct diags *d);

static bool check_choice(const struct sv *v, const struct opt_def *o, const char *path,
                         struct diags *d)
{
    if (!want(v, SV_SCALAR, "a string", path, d))
        return false;
    if (has_ref(v))
        return true;
    struct sbuf b = {0};
    for (size_t i = 0; o->choices && o->choices[i]; i++) {
        if (strcmp(o->choices[i], v->str) == 0) {
            sbuf_free(&b);
            return true;
        }
        sbuf_printf(&b, "%s%s", i ? ", " : "", o->choices[i]);
    }
    char *hint = hint_for(v->str, o->choices);
    diags_add(d, v->pos, path, hint, "expected one of %s, got %s", b.s ? b.s : "(none)", got(v));
    free(hint);
    sbuf_free(&b);
    return false;
}

static bool check_typed_scalar(const struct sv *v, enum opt_type t, const char *path,
                               struct diags *d)
{
    static const char *const what[] = {
        [OPT_INT] = "an integer", [OPT_FLOAT] = "a number", [OPT_BOOL] = "true or false"};
    if (!want(v, SV_SCALAR, t == OPT_STR ? "a string" : what[t], path, d) || has_ref(v))
        return v->kind == SV_SCALAR;
    int64_t i;
    double f;
    bool b;
    int r = t == OPT_INT     ? sv_as_int(v, &i)
            : t == OPT_FLOAT ? sv_as_double(v, &f)
            : t == OPT_BOOL  ? sv_as_bool(v, &b)
                             : 0;
    if (r < 0)
        diags_add(d, v->pos, path, NULL, "expected %s, got %s", what[t], got(v));
    return r == 0;
}

static bool check_list_of(const struct sv *v, const struct opt_def *o, const char *path,
                          struct diags *d)
{
    if (o->type == OPT_ARGV)
        return check_scalar_list(v, path, "a command as a list of strings like [prog, arg]", true,
                                 d);
    if (o->type == OPT_STR_LIST)
        return check_scalar_list(v, path, "a list of strings", false, d);
    const char *what =
        o->type == OPT_ARGV_LIST ? "a list of commands (each a list of strings)" : "a list of maps";
    if (!want(v, SV_SEQ, what, path, d))
        return false;
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        char *p = xasprintf("%s[%zu]", path, i);
        if (o->type == OPT_ARGV_LIST)
            ok &= check_scalar_list(v->kids[i], p, "a command as a list of strings", true, d);
        else if (want(v->kids[i], SV_MAP, "a map", p, d))
            ok &= check_opts(v->kids[i], o->fields, NULL, false, p, d);
        else
            ok = false;
        free(p);
    }
    return ok;
}

static bool check_opt_value(const struct sv *v, const struct opt_def *o, const char *path,
                            struct diags *d)
{
    switch (o->type) {
    case OPT_STR:
    case OPT_INT:
    case OPT_FLOAT:
    case OPT_BOOL:
        return check_typed_scalar(v, o->type, path, d);
    case OPT_DURATION:
        return check_duration(v, path, false, d, NULL);
    case OPT_SIZE:
        return check_size(v, path, d);
    case OPT_ENUM:
        return check_choice(v, o, path, d);
    case OPT_STR_MAP:
        return want(v, SV_MAP, "a map of strings", path, d) && check_scalar_map(v, path, false, d);
    case OPT_MAP: /* fields NULL: any keys (the caller checks them) */
        return want(v, SV_MAP, "a map", path, d) &&
               (!o->fields || check_opts(v, o->fields, NULL, false, path, d));
    case OPT_ARGV:
    case OPT_ARGV_LIST:
    case OPT_STR_LIST:
    case OPT_MAP_LIST:
        return check_list_of(v, o, path, d);
    }
    return false;
}

static const struct opt_def *find_opt(const struct opt_def *defs, const char *name)
{
    for (size_t i = 0; defs && defs[i].name; i++)
        if (strcmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

static void unknown_opt(const struct sv *k, const struct opt_def *defs, const char *driver,
                        const char *path, struct diags *d)
{
    size_t n = 0;
    while (defs && defs[n].name)
        n++;
    const char **names = xcalloc(n + 1, sizeof(*names));
    for (size_t i = 0; i < n; i++)
        names[i] = defs[i].name;
    char *hint = hint_for(k->key, names), *p = path_key(path, k->key);
    if (driver)
        diags_add(d, k->kpos, p, hint, "unknown option '%s' for driver '%s'", k->key, driver);
    else
        diags_add(d, k->kpos, p, hint, "unknown key '%s'", k->key);
    free(hint);
    free(p);
    free(names);
}

/* map's keys against defs; partial: required options may be missing (a catalog entry). */
static bool check_opts(const struct sv *map, const struct opt_def *defs, const char *driver,
                       bool partial, const char *path, struct diags *d)
{
    bool ok = true;
    for (size_t i = 0; i < map->n; i++) {
        const struct sv *k = map->kids[i];
        const struct opt_def *o = find_opt(defs, k->key);
        if (!o) {
            unknown_opt(k, defs, driver, path, d);
            ok = false;
            continue;
        }
        char *p = path_key(path, k->key);
        ok &= check_opt_value(k, o, p, d);
        free(p);
    }
    for (size_t i = 0; defs && defs[i].name; i++) {
        if (!defs[i].required || partial || sv_get(map, defs[i].name))
            continue;
        if (driver)
            diags_add(d, map->pos, path, NULL, "missing required option '%s' for driver '%s'",
                      defs[i].name, driver);
        else
            diags_add(d, map->pos, path, NULL, "missing required key '%s'", defs[i].name);
        ok = false;
    }
    return ok;
}

/* ---- component blocks ---- */

static void allowed_keys(enum comp_role role, bool entry, const char **out)
{
    static const char *const common[] = {"driver", "with",  "description", "user",
                                         "env",    "cwd",   "stop_grace",  "resources",
                                         "image",  "binds", NULL};
    size_t n = 0;
    for (size_t i = 0; common[i]; i++)
        out[n++] = common[i];
    out[n++] = entry ? "kind" : "use";
    if (entry)
        out[n++] = "name";
    if (role == ROLE_SERVICE) {
        out[n++] = "port";
        out[n++] = "ready";
    }
    if (role == ROLE_MONITOR)
        out[n++] = "interval";
    out[n] = NULL;
}

static void bad_block_key(const struct sv *k, enum comp_role role, bool entry,
                          const char *const *allowed, const char *path, struct diags *d)
{
    char *p = path_key(path, k->key);
    if (!strcmp(k->key, "port") || !strcmp(k->key, "ready")) {
        diags_add(d, k->kpos, p, NULL, "'%s' is only valid for services", k->key);
    } else if (!strcmp(k->key, "interval")) {
        diags_add(d, k->kpos, p, NULL, "'interval' is only valid for monitors");
    } else if (entry && !strcmp(k->key, "use")) {
        diags_add(d, k->kpos, p, NULL,
                  "a catalog entry cannot 'use:' another entry (name its 'driver:')");
    } else {
        char *hint = hint_for(k->key, allowed);
        diags_add(d, k->kpos, p, hint, "unknown key '%s' in a %s", k->key, role_names[role]);
        free(hint);
    }
    free(p);
}

static void check_block_keys(const struct sv *node, enum comp_role role, bool entry,
                             const char *path, struct diags *d)
{
    const char *allowed[24];
    allowed_keys(role, entry, allowed);
    for (size_t i = 0; i < node->n; i++) {
        bool found = false;
        for (size_t j = 0; allowed[j] && !found; j++)
            found = strcmp(allowed[j], node->kids[i]->key) == 0;
        if (!found)
            bad_block_key(node->kids[i], role, entry, allowed, path, d);
    }
}

static void unknown_driver(const struct sv *v, enum comp_role role, const char *path,
                           struct diags *d)
{
    const char *names[64];
    size_t n = 0;
    const struct driver_ops *other = NULL;
    struct sbuf known = {0};
    for (size_t i = 0; driver_table[i]; i++) {
        if (driver_table[i]->role == role && n + 1 < SONDE_ARRAY_LEN(names)) {
            sbuf_printf(&known, "%s%s", n ? ", " : "", driver_table[i]->name);
            names[n++] = driver_table[i]->name;
        } else if (!strcmp(driver_table[i]->name, v->str)) {
            other = driver_table[i];
        }
    }
    names[n] = NULL;
    char *hint = hint_for(v->str, names);
    if (other)
        diags_add(d, v->pos, path, hint, "'%s' is a %s driver, not a %s driver; known: %s", v->str,
                  role_names[other->role], role_names[role], known.s ? known.s : "none");
    else
        diags_add(d, v->pos, path, hint, "unknown %s driver %s; known: %s", role_names[role],
                  got(v), known.s ? known.s : "none");
    free(hint);
    sbuf_free(&known);
}

/* A missing driver in a catalog entry (entry) was already reported by its header check. */
static const struct driver_ops *check_driver(const struct sv *node, enum comp_role role, bool entry,
                                             const char *path, struct diags *d, char **name)
{
    const struct sv *v = sv_get(node, "driver");
    if (!v) {
        if (!entry)
            diags_add(d, node->pos, path, NULL, "missing 'driver:' (the %s driver to run)",
                      role_names[role]);
        return NULL;
    }
    char *p = path_key(path, "driver");
    const struct driver_ops *ops = NULL;
    if (want(v, SV_SCALAR, "a driver name", p, d)) {
        *name = xstrdup(v->str);
        ops = driver_find(role, v->str);
        if (!ops)
            unknown_driver(v, role, p, d);
    }
    free(p);
    return ops;
}

/* with: absent or null becomes an empty map; options are checked against the driver. */
/* with: checked against the driver's option table; an entry (partial) may leave
 * required options to the benchmark that uses it. */
static void check_with(struct sv *node, const struct driver_ops *ops, bool entry, const char *path,
                       struct diags *d)
{
    struct sv *w = sv_get(node, "with");
    if (!w || w->kind == SV_NULL) {
        struct sv *m = sv_new(SV_MAP, w ? w->pos : node->pos);
        m->kpos = w ? w->kpos : node->pos;
        sv_set(node, "with", m);
        w = m;
    }
    char *p = path_key(path, "with");
    if (want(w, SV_MAP, "a map of driver options", p, d) && ops)
        check_opts(w, ops->opts, ops->name, entry, p, d);
    free(p);
}

static void check_probe_tcp(const struct sv *v, const char *path, struct diags *d,
                            struct probe_spec *ps)
{
    static const char *const keys[] = {"host", "port", NULL};
    const struct sv *port = v;
    if (v->kind == SV_MAP) {
        check_keys(v, keys, path, "a tcp probe", d);
        port = sv_get(v, "port");
        get_str(v, "host", path, d, &ps->host);
        if (!port)
            diags_add(d, v->pos, path, NULL, "missing 'port:' in the tcp probe");
    }
    char *p = v->kind == SV_MAP ? path_key(path, "port") : xstrdup(path);
    if (port && check_port(port, p, false, d))
        ps->port = xstrdup(port->str);
    if (!ps->host)
        ps->host = xstrdup("127.0.0.1");
    free(p);
}

static void check_probe(const struct sv *v, const char *path, struct diags *d,
                        struct probe_spec *ps)
{
    if (!strcmp(v->key, "tcp")) {
        ps->kind = PROBE_TCP;
        check_probe_tcp(v, path, d, ps);
    } else if (!strcmp(v->key, "http")) {
        ps->kind = PROBE_HTTP;
        if (!want(v, SV_SCALAR, "a URL like http://127.0.0.1:8080/health", path, d))
            return;
        if (str_startswith(v->str, "https://"))
            diags_add(d, v->pos, path, NULL,
                      "https is not supported by the http probe; use http://");
        else if (!str_startswith(v->str, "http://") && !str_startswith(v->str, "${"))
            diags_add(d, v->pos, path, NULL,
                      "expected a URL like http://127.0.0.1:8080/health, got %s", got(v));
        ps->url = xstrdup(v->str);
    } else if (!strcmp(v->key, "command")) {
        ps->kind = PROBE_CMD;
        if (check_scalar_list(v, path, "a command as a list of strings like [pg_isready]", true, d))
            sv_as_strv(v, &ps->argv);
    } else {
        ps->kind = PROBE_LOG;
        if (!want(v, SV_SCALAR, "a regular expression", path, d))
            return;
        regex_t re;
        int r = has_ref(v) ? 0 : regcomp(&re, v->str, REG_EXTENDED | REG_NOSUB);
        if (r != 0) {
            char msg[128];
            regerror(r, &re, msg, sizeof(msg));
            diags_add(d, v->pos, path, NULL, "invalid regular expression %s: %s", got(v), msg);
        } else if (!has_ref(v)) {
            regfree(&re);
        }
        ps->regex = xstrdup(v->str);
    }
}

static void check_ready(struct sv *r, const char *path, struct diags *d, struct probe_spec *ps)
{
    static const char *const keys[] = {"tcp",     "http",     "command", "log",
                                       "timeout", "interval", NULL};
    ps->timeout_ns = 30 * 1000000000LL;
    ps->interval_ns = 200 * 1000000LL;
    if (!want(r, SV_MAP, "a map with one of tcp, http, command or log", path, d))
        return;
    check_keys(r, keys, path, "'ready:'", d);
    const struct sv *probe = NULL;
    for (size_t i = 0; i < r->n; i++) {
        const struct sv *v = r->kids[i];
        if (strcmp(v->key, "tcp") && strcmp(v->key, "http") && strcmp(v->key, "command") &&
            strcmp(v->key, "log"))
            continue;
        char *p = path_key(path, v->key);
        if (probe)
            diags_add(d, v->kpos, p, NULL,
                      "'ready:' takes exactly one probe, got both '%s' and '%s'", probe->key,
                      v->key);
        else
            check_probe(probe = v, p, d, ps);
        free(p);
    }
    if (!probe)
        diags_add(d, r->pos, path, NULL, "'ready:' needs one of tcp, http, command or log");
    const struct sv *t = sv_get(r, "timeout"), *iv = sv_get(r, "interval");
    char *p = path_key(path, "timeout");
    if (t)
        check_duration(t, p, true, d, &ps->timeout_ns);
    else
        sv_append(r, "timeout", sv_new_scalar(DEFAULT_READY_TIMEOUT, r->pos));
    free(p);
    p = path_key(path, "interval");
    if (iv)
        check_duration(iv, p, true, d, &ps->interval_ns);
    else
        sv_append(r, "interval", sv_new_scalar(DEFAULT_READY_INTERVAL, r->pos));
    free(p);
}

/* A duration field with a default that is also written into node (for `show --resolved`). */
static void duration_field(struct sv *node, const char *key, const char *def, bool positive,
                           const char *path, struct diags *d, int64_t *ns)
{
    const struct sv *v = sv_get(node, key);
    parse_duration_ns(def, ns);
    if (!v) {
        sv_append(node, key, sv_new_scalar(def, node->pos));
        return;
    }
    char *p = path_key(path, key);
    check_duration(v, p, positive, d, ns);
    free(p);
}

static void fill_env(const struct sv *node, const char *path, struct diags *d, struct comp_spec *s)
{
    const struct sv *env = sv_get(node, "env");
    if (!env)
        return;
    char *p = path_key(path, "env");
    if (check_scalar_map(env, p, true, d)) {
        for (size_t i = 0; i < env->n; i++) {
            char *kv = xasprintf("%s=%s", env->kids[i]->key, env->kids[i]->str);
            strv_push(&s->env, kv);
            free(kv);
        }
    }
    free(p);
}

static void fill_role_fields(struct sv *node, enum comp_role role, const char *path,
                             struct diags *d, struct comp_spec *s)
{
    if (role == ROLE_SERVICE) {
        struct sv *port = sv_get(node, "port"), *ready = sv_get(node, "ready");
        char *p = path_key(path, "port");
        if (port && port->kind != SV_NULL && check_port(port, p, true, d))
            s->port = xstrdup(port->str);
        free(p);
        p = path_key(path, "ready");
        if (ready && ready->kind != SV_NULL)
            check_ready(ready, p, d, &s->ready);
        free(p);
    } else if (role == ROLE_MONITOR) {
        duration_field(node, "interval", DEFAULT_MONITOR_INTERVAL, true, path, d, &s->interval_ns);
    }
}

/* ---- resources:, image:, binds: (batch schedulers and containers) ---- */

static const struct opt_def resource_opts[] = {
    {"nodes", OPT_INT, false, NULL, "nodes", NULL, NULL},
    {"tasks_per_node", OPT_INT, false, NULL, "tasks (processes) per node", NULL, NULL},
    {"cpus_per_task", OPT_INT, false, NULL, "CPUs per task", NULL, NULL},
    {"gpus_per_node", OPT_INT, false, NULL, "GPUs per node", NULL, NULL},
    {"gres", OPT_STR, false, NULL, "generic resources, e.g. gpu:a100:4", NULL, NULL},
    {"mem", OPT_SIZE, false, NULL, "memory per node", NULL, NULL},
    {"time", OPT_DURATION, false, NULL, "time limit", NULL, NULL},
    {"partition", OPT_STR, false, NULL, "partition", NULL, NULL},
    {"account", OPT_STR, false, NULL, "account (project) charged", NULL, NULL},
    {"qos", OPT_STR, false, NULL, "quality of service", NULL, NULL},
    {"constraint", OPT_STR, false, NULL, "node features, e.g. \"gpu&a100\"", NULL, NULL},
    {"reservation", OPT_STR, false, NULL, "reservation", NULL, NULL},
    {"exclusive", OPT_BOOL, false, NULL, "nodes not shared with other jobs", NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

void resources_clear(struct resources *r)
{
    free(r->gres);
    free(r->partition);
    free(r->account);
    free(r->qos);
    free(r->constraint);
    free(r->reservation);
    memset(r, 0, sizeof(*r));
    r->exclusive = -1;
}

static char *pick_str(const char *over, const char *base)
{
    return xstrdup(over ? over : base);
}

void resources_merge(struct resources *dst, const struct resources *base,
                     const struct resources *over)
{
    struct resources r = {
        .nodes = over->nodes ? over->nodes : base->nodes,
        .tasks_per_node = over->tasks_per_node ? over->tasks_per_node : base->tasks_per_node,
        .cpus_per_task = over->cpus_per_task ? over->cpus_per_task : base->cpus_per_task,
        .gpus_per_node = over->gpus_per_node >= 0 ? over->gpus_per_node : base->gpus_per_node,
        .mem_bytes = over->mem_bytes ? over->mem_bytes : base->mem_bytes,
        .time_ns = over->time_ns ? over->time_ns : base->time_ns,
        .gres = pick_str(over->gres, base->gres),
        .partition = pick_str(over->partition, base->partition),
        .account = pick_str(over->account, base->account),
        .qos = pick_str(over->qos, base->qos),
        .constraint = pick_str(over->constraint, base->constraint),
        .reservation = pick_str(over->reservation, base->reservation),
        .exclusive = over->exclusive >= 0 ? over->exclusive : base->exclusive,
    };
    *dst = r;
}

/* An integer resource in [lo, hi]; 0 when absent. */
static void res_int(const struct sv *map, const char *key, int64_t lo, int64_t hi, const char *path,
                    struct diags *d, int64_t *out)
{
    const struct sv *v = sv_get(map, key);
    int64_t x = 0;
    if (!v || sv_as_int(v, &x) < 0)
        return; /* absent, or already reported by the option table */
    if (x < lo || x > hi) {
        char *p = path_key(path, key);
        diags_add(d, v->pos, p, NULL, "expected a whole number from %lld to %lld, got %s",
                  (long long)lo, (long long)hi, got(v));
        free(p);
        return;
    }
    *out = x;
}

int resources_parse(const struct sv *map, const char *path, struct diags *d, struct resources *out)
{
    size_t before = nerr(d);
    resources_clear(out);
    out->gpus_per_node = -1;
    if (!map || map->kind == SV_NULL)
        return 0;
    if (!want(map, SV_MAP, "a map of resources (nodes, tasks_per_node, mem, time, ...)", path, d))
        return -EINVAL;
    check_opts(map, resource_opts, NULL, false, path, d); /* the valid keys are still read below */
    for (size_t i = 0; i < map->n; i++) {
        const struct sv *v = map->kids[i];
        if (v->kind == SV_SCALAR && recipe_has_ref(v->str)) {
            char *p = path_key(path, v->key);
            diags_add(d, v->pos, p, NULL,
                      "resources are fixed before the run starts: only ${matrix.*} and "
                      "${env.*} references can be used here");
            free(p);
        }
    }
    res_int(map, "nodes", 1, 100000, path, d, &out->nodes);
    res_int(map, "tasks_per_node", 1, 100000, path, d, &out->tasks_per_node);
    res_int(map, "cpus_per_task", 1, 100000, path, d, &out->cpus_per_task);
    if (sv_get(map, "gpus_per_node"))
        res_int(map, "gpus_per_node", 0, 1024, path, d, &out->gpus_per_node);
    const struct sv *v;
    if ((v = sv_get(map, "mem")))
        sv_as_size(v, &out->mem_bytes);
    if ((v = sv_get(map, "time")))
        sv_as_duration(v, &out->time_ns);
    if ((v = sv_get(map, "exclusive"))) {
        bool b = false;
        sv_as_bool(v, &b);
        out->exclusive = b;
    }
    out->gres = xstrdup(sv_str(map, "gres", NULL));
    out->partition = xstrdup(sv_str(map, "partition", NULL));
    out->account = xstrdup(sv_str(map, "account", NULL));
    out->qos = xstrdup(sv_str(map, "qos", NULL));
    out->constraint = xstrdup(sv_str(map, "constraint", NULL));
    out->reservation = xstrdup(sv_str(map, "reservation", NULL));
    if (sv_get(map, "time") && out->time_ns > 0 && out->time_ns < 60000000000LL) {
        char *p = path_key(path, "time");
        diags_add(d, sv_get(map, "time")->pos, p, NULL,
                  "a time limit must be at least 1m (Slurm counts whole minutes)");
        free(p);
    }
    return nerr(d) == before ? 0 : -EINVAL;
}

/* image: a scalar; binds: a list of "SRC[:DST[:OPTS]]" with an absolute or
 * referenced SRC. */
static void fill_container(const struct sv *node, const char *path, struct diags *d,
                           struct comp_spec *s)
{
    get_str(node, "image", path, d, &s->image);
    if (s->image && !*s->image) {
        char *p = path_key(path, "image");
        diags_add(d, sv_get(node, "image")->pos, p, NULL,
                  "expected an image like docker://postgres:15 or a .sif path, got ''");
        free(p);
    }
    const struct sv *b = sv_get(node, "binds");
    if (!b || b->kind == SV_NULL)
        return;
    char *p = path_key(path, "binds");
    if (want(b, SV_SEQ, "a list of bind mounts \"SRC[:DST[:OPTS]]\"", p, d)) {
        for (size_t i = 0; i < b->n; i++) {
            const struct sv *e = b->kids[i];
            char *ep = xasprintf("%s[%zu]", p, i);
            if (want(e, SV_SCALAR, "a bind mount \"SRC[:DST[:OPTS]]\"", ep, d)) {
                if (e->str[0] != '/' && e->str[0] != '$')
                    diags_add(d, e->pos, ep, NULL,
                              "expected an absolute source path like /scratch:/data, got '%s'",
                              e->str);
                else
                    strv_push(&s->binds, e->str);
            }
            free(ep);
        }
    }
    free(p);
}

/* Checks one component block (after interpolation) and fills s from it. s->role,
 * name, node and deps are set by the caller. */
static int check_block(struct sv *node, enum comp_role role, bool entry, const char *path,
                       struct diags *d, struct comp_spec *s)
{
    size_t before = nerr(d);
    check_block_keys(node, role, entry, path, d);
    const struct driver_ops *ops = check_driver(node, role, entry, path, d, &s->driver);
    check_with(node, ops, entry, path, d);
    s->with = sv_clone(sv_get(node, "with"));
    s->partial = entry;
    if (!entry)
        s->use = xstrdup(sv_str(node, "use", NULL));
    get_str(node, "description", path, d, &s->description);
    get_str(node, "user", path, d, &s->user);
    get_str(node, "cwd", path, d, &s->cwd);
    fill_env(node, path, d, s);
    duration_field(node, "stop_grace", DEFAULT_STOP_GRACE, false, path, d, &s->stop_grace_ns);
    fill_role_fields(node, role, path, d, s);
    char *rp = path_key(path, "resources");
    resources_parse(sv_get(node, "resources"), rp, d, &s->res);
    free(rp);
    fill_container(node, path, d, s);
    if (nerr(d) == before && ops && ops->check)
        ops->check(s, d);
    return nerr(d) == before ? 0 : -EINVAL;
}

/* ---- recipe header, catalog entries, `use:` ---- */

/* kind, name and description of any recipe. Returns -EINVAL when the kind is unusable. */
static int check_header(const struct sv *doc, enum recipe_kind *kind, struct diags *d)
{
    const struct sv *k = sv_get(doc, "kind"), *n = sv_get(doc, "name");
    const struct sv *desc = sv_get(doc, "description");
    int r = 0;
    if (!k) {
        diags_add(d, doc->pos, "", NULL,
                  "missing 'kind:' (expected benchmark, service, client or monitor)");
        r = -EINVAL;
    } else if (k->kind != SV_SCALAR || recipe_kind_parse(k->str, kind) < 0) {
        char *hint = k->kind == SV_SCALAR ? hint_for(k->str, kind_names) : NULL;
        diags_add(d, k->pos, "kind", hint,
                  "expected one of benchmark, service, client or monitor, got %s", got(k));
        free(hint);
        r = -EINVAL;
    }
    if (!n)
        diags_add(d, doc->pos, "", NULL, "missing 'name:' (letters, digits, '.', '_' and '-')");
    else if (n->kind != SV_SCALAR || !recipe_name_valid(n->str, true))
        diags_add(d, n->pos, "name", NULL,
                  "invalid name %s: expected letters, digits, '.', '_' and '-' (at most %d)",
                  got(n), NAME_MAX_LEN);
    if (desc && desc->kind != SV_NULL)
        want(desc, SV_SCALAR, "a string", "description", d);
    return r;
}

/* A catalog entry's name is its file name without .yaml. */
static void check_stem(const char *file, const struct sv *doc, struct diags *d)
{
    const struct sv *n = sv_get(doc, "name");
    if (!n || n->kind != SV_SCALAR)
        return;
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t len = strlen(base);
    if (str_endswith(base, ".yaml"))
        len -= 5;
    else if (str_endswith(base, ".yml"))
        len -= 4;
    if (strlen(n->str) != len || strncmp(n->str, base, len) != 0)
        diags_add(d, n->pos, "name", NULL,
                  "name '%s' must match the file name '%.*s' (catalog entries are found by "
                  "file name)",
                  n->str, (int)len, base);
}

/* Header checks of a catalog entry of the wanted kind (< 0: any entry kind). */
static int check_entry_header(const char *file, const struct sv *doc, int want_kind,
                              struct diags *d)
{
    size_t before = nerr(d);
    enum recipe_kind k = RECIPE_BENCHMARK;
    if (check_header(doc, &k, d) == 0 && want_kind >= 0 && (int)k != want_kind)
        diags_add(d, sv_get(doc, "kind")->pos, "kind", NULL, "expected kind '%s', got '%s'",
                  kind_names[want_kind], kind_names[k]);
    check_stem(file, doc, d);
    const struct sv *use = sv_get(doc, "use");
    if (use)
        diags_add(d, use->kpos, "use", NULL,
                  "a catalog entry cannot 'use:' another entry (name its 'driver:')");
    else if (!sv_get(doc, "driver"))
        diags_add(d, doc->pos, "", NULL, "missing 'driver:' (a catalog entry names its driver)");
    return nerr(d) == before ? 0 : -EINVAL;
}

static void unknown_entry(const struct catalog *cat, enum comp_role role, const struct sv *use,
                          const char *path, struct diags *d)
{
    struct catalog_entry *e = NULL;
    size_t n = 0;
    const char **names = NULL;
    if (cat && catalog_list(cat, role_kind(role), &e, &n) == 0) {
        names = xcalloc(n + 1, sizeof(*names));
        for (size_t i = 0; i < n; i++)
            names[i] = e[i].name;
    }
    char *hint = hint_for(use->str, names), *other = NULL;
    for (int k = RECIPE_SERVICE; cat && k < RECIPE_KIND_COUNT && !other; k++)
        if (k != (int)role_kind(role) &&
            catalog_find(cat, (enum recipe_kind)k, use->str, &other) == 0)
            diags_add(d, use->pos, path, NULL, "'%s' is a %s in the catalog, not a %s", use->str,
                      kind_names[k], role_names[role]);
    if (!other && cat)
        diags_add(d, use->pos, path, hint, "unknown %s '%s': no %s/%s.yaml in the catalog",
                  role_names[role], use->str, role_plural[role], use->str);
    else if (!other)
        diags_add(d, use->pos, path, NULL, "no catalog to look up %s '%s'", role_names[role],
                  use->str);
    free(other);
    free(hint);
    free(names);
    catalog_entries_free(e, n);
}

static struct sv *load_entry(const struct catalog *cat, enum comp_role role, const struct sv *use,
                             const char *path, struct diags *d)
{
    if (!want(use, SV_SCALAR, "the name of a catalog entry", path, d))
        return NULL;
    char *file = NULL;
    if (!cat || catalog_find(cat, role_kind(role), use->str, &file) < 0) {
        unknown_entry(cat, role, use, path, d);
        return NULL;
    }
    struct sv *doc = NULL;
    if (recipe_load_file(file, &doc, d) < 0 ||
        check_entry_header(file, doc, (int)role_kind(role), d) < 0) {
        sv_free(doc);
        doc = NULL;
    }
    free(file);
    return doc;
}

/* The block with its catalog entry merged under it; NULL when unusable. */
static struct sv *resolve_block(const struct catalog *cat, enum comp_role role, const struct sv *k,
                                const char *path, struct diags *d)
{
    if (k->kind != SV_MAP) {
        diags_add(d, k->pos, path, NULL, "expected a map with 'use:' or 'driver:', got %s", got(k));
        return NULL;
    }
    const struct sv *use = sv_get(k, "use"), *drv = sv_get(k, "driver");
    if (use && drv) {
        diags_add(d, drv->kpos, path, NULL,
                  "give either 'use:' or 'driver:', not both ('use:' takes the driver from the "
                  "catalog entry)");
        return NULL;
    }
    if (!use && !drv) {
        diags_add(d, k->pos, path, NULL,
                  "needs 'use:' (a catalog entry) or 'driver:' (a driver name)");
        return NULL;
    }
    struct sv *out = sv_new(SV_MAP, k->pos);
    out->kpos = k->kpos;
    if (use) {
        char *p = path_key(path, "use");
        struct sv *entry = load_entry(cat, role, use, p, d);
        free(p);
        if (!entry) {
            sv_free(out);
            return NULL;
        }
        sv_append(out, "use", sv_clone(use));
        sv_del(entry, "kind");
        sv_del(entry, "name");
        sv_merge(out, entry);
        sv_free(entry);
    }
    struct sv *over = sv_clone(k);
    sv_del(over, "use");
    sv_merge(out, over);
    sv_free(over);
    struct sv *w = sv_get(out, "with");
    if (use && w && !sv_get(k, "with")) /* the entry's options: errors point to the use: */
        w->pos = w->kpos = use->kpos;
    return out;
}

/* monitors: [node, {use: process, ...}] becomes a map named by use/driver. */
static void normalize_monitors(struct sv *doc, struct diags *d)
{
    struct sv *m = sv_get(doc, "monitors");
    if (!m || m->kind != SV_SEQ)
        return;
    struct sv *map = sv_new(SV_MAP, m->pos);
    map->kpos = m->kpos;
    for (size_t i = 0; i < m->n; i++) {
        struct sv *it = m->kids[i], *block = NULL;
        const struct sv *id = it->kind == SV_SCALAR ? it : NULL;
        char *p = xasprintf("monitors[%zu]", i);
        if (it->kind == SV_SCALAR) {
            block = sv_new(SV_MAP, it->pos);
            sv_append(block, "use", sv_clone(it));
        } else if (it->kind == SV_MAP) {
            id = sv_get(it, "use") ? sv_get(it, "use") : sv_get(it, "driver");
            if (id && id->kind == SV_SCALAR)
                block = sv_clone(it);
            else
                diags_add(d, it->pos, p, NULL,
                          "a monitor in a list needs 'use:' or 'driver:' to name it");
        } else {
            diags_add(d, it->pos, p, NULL, "expected a monitor name or a map, got %s", got(it));
        }
        const struct sv *prev = block ? sv_get(map, id->str) : NULL;
        if (prev) {
            diags_add(d, it->pos, p, NULL,
                      "duplicate monitor '%s' (already listed at line %u; use the map form "
                      "to give each its own name)",
                      id->str, prev->kpos.line);
            sv_free(block);
        } else if (block) {
            block->kpos = it->pos;
            sv_append(map, id->str, block);
        }
        free(p);
    }
    sv_set(doc, "monitors", map);
}

/* ---- --set ---- */

static int set_bad(struct diags *d, const char *arg, const char *fmt, const char *what)
{
    struct sv_pos pos = {sv_intern("--set"), 1, 1};
    diags_add(d, pos, "", NULL, "invalid --set '%s': %s%s", arg, fmt, what ? what : "");
    return -EINVAL;
}

static int set_path(struct sv *doc, const char *arg, const char *path, struct sv *val,
                    struct diags *d)
{
    char *copy = xstrdup(path), *save = NULL;
    struct sv *cur = doc;
    int r = 0;
    char *seg = strtok_r(copy, ".", &save);
    while (seg && r == 0) {
        char *next = strtok_r(NULL, ".", &save);
        struct sv *child = sv_get(cur, seg);
        if (!next) {
            val->kpos = val->pos;
            sv_set(cur, seg, val);
            val = NULL;
        } else if (!child || child->kind == SV_NULL) {
            child = sv_new(SV_MAP, val->pos);
            sv_set(cur, seg, child);
        } else if (child->kind != SV_MAP) {
            r = set_bad(d, arg, "cannot set a key inside ", got(child));
        }
        cur = child;
        seg = next;
    }
    sv_free(val);
    free(copy);
    return r;
}

static int apply_set(struct sv *doc, const char *arg, struct diags *d)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return set_bad(d, arg, "expected key.path=value", NULL);
    char *path = xstrndup(arg, (size_t)(eq - arg));
    int r = 0;
    if (path[0] == '.' || str_endswith(path, ".") || strstr(path, ".."))
        r = set_bad(d, arg, "empty key in the path ", path);
    struct sv *val = NULL;
    struct diags tmp = {0};
    if (r == 0 && yaml_load_value("<--set>", eq + 1, strlen(eq + 1), (unsigned)(eq - arg + 1), &val,
                                  &tmp) < 0)
        r = set_bad(d, arg, "the value is not valid YAML: ", tmp.n ? tmp.v[0].msg : "");
    if (r == 0)
        r = set_path(doc, arg, path, val, d);
    diags_free(&tmp);
    free(path);
    return r;
}

int recipe_apply_sets(struct sv *doc, char *const *sets, struct diags *d)
{
    int r = 0;
    for (size_t i = 0; sets && sets[i]; i++)
        if (apply_set(doc, sets[i], d) < 0)
            r = -EINVAL;
    return r;
}

/* ---- benchmarks ---- */

struct comp_src {
    enum comp_role role;
    char *name;
    char *path;       /* "services.db" */
    struct sv *block; /* resolved block, NULL when unusable */
    size_t size;      /* rough bytes of one copy, for the budget */
};

struct bench_ctx {
    const char *file;
    const struct recipe_opts *o;
    struct diags *d;
    struct sv *doc;
    struct sv *matrix; /* valid matrix (in doc), or NULL */
    bool matrix_bad;
    size_t points;
    int64_t repeat;
    int64_t timeout_ns;
    const struct sv *env; /* valid benchmark env (in doc), or NULL */
    struct comp_src *comps;
    size_t ncomps;
    char **services;
    size_t budget;
    bool over_budget;
    struct bench_spec *b;
};

static const char *const bench_keys[] = {
    "kind", "name",     "description", "backend",  "site",   "matrix",   "repeat", "timeout",
    "env",  "services", "clients",     "monitors", "report", "exporter", NULL};

static size_t text_size(const struct sv *v)
{
    size_t n = 48 + (v->key ? strlen(v->key) : 0) + (v->str ? strlen(v->str) : 0);
    for (size_t i = 0; i < v->n; i++)
        n += text_size(v->kids[i]);
    return n;
}

static bool spend(struct bench_ctx *c, size_t n)
{
    if (n <= c->budget) {
        c->budget -= n;
        return true;
    }
    if (!c->over_budget)
        diags_add(c->d, c->doc->pos, "", NULL,
                  "the resolved benchmark would be larger than %u MiB (%zu trials); use fewer "
                  "trials or smaller values",
                  RECIPE_MAX_RESOLVED >> 20, c->points * (size_t)c->repeat);
    c->over_budget = true;
    return false;
}

/* Substitutes ${env.*} in a top-level value; other references are not allowed there. */
static void interp_top(struct bench_ctx *c, const char *key, bool allow_refs)
{
    struct sv *v = sv_get(c->doc, key);
    if (!v)
        return;
    struct interp_static is = {
        .matrix_unknown = true, .services = c->services, .budget = &c->budget};
    if (recipe_interp_static(v, &is, key, c->d) == 0 && !allow_refs && v->kind == SV_SCALAR &&
        recipe_has_ref(v->str))
        diags_add(c->d, v->pos, key, NULL, "only ${env.*} references can be used in '%s'", key);
    interp_static_free(&is);
}

static void check_top(struct bench_ctx *c)
{
    struct sv *doc = c->doc;
    check_keys(doc, bench_keys, "", "a benchmark", c->d);
    interp_top(c, "description", true);
    interp_top(c, "backend", false);
    interp_top(c, "site", false);
    interp_top(c, "repeat", false);
    interp_top(c, "timeout", false);
    interp_top(c, "report", false);
    interp_top(c, "exporter", false);
    const struct sv *v = sv_get(doc, "backend");
    if (v && want(v, SV_SCALAR, "a backend name like local", "backend", c->d) &&
        !recipe_name_valid(v->str, false))
        diags_add(c->d, v->pos, "backend", NULL, "expected a backend name like local, got %s",
                  got(v));
    v = sv_get(doc, "site");
    if (v && want(v, SV_SCALAR, "a site profile name like meluxina", "site", c->d) &&
        !recipe_name_valid(v->str, false))
        diags_add(c->d, v->pos, "site", NULL, "expected a site profile name like meluxina, got %s",
                  got(v));
    c->repeat = 1;
    if ((v = sv_get(doc, "repeat")) && !recipe_has_ref(v->str ? v->str : "") &&
        (sv_as_int(v, &c->repeat) < 0 || c->repeat < 1 || c->repeat > RECIPE_MAX_TRIALS)) {
        diags_add(c->d, v->pos, "repeat", NULL, "expected a whole number from 1 to %d, got %s",
                  RECIPE_MAX_TRIALS, got(v));
        c->repeat = 1;
    }
    if ((v = sv_get(doc, "timeout")))
        check_duration(v, "timeout", true, c->d, &c->timeout_ns);
    if ((v = sv_get(doc, "exporter")) && v->kind != SV_NULL &&
        want(v, SV_SCALAR, "an address like 127.0.0.1:9464 (port 0: any free one)", "exporter",
             c->d)) {
        const char *colon = strrchr(v->str, ':');
        if (!colon || colon == v->str || !colon[1] ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5 ||
            atoi(colon + 1) > 65535)
            diags_add(c->d, v->pos, "exporter", NULL,
                      "expected HOST:PORT like 127.0.0.1:9464 (port 0: any free one), got %s",
                      got(v));
        else
            c->b->exporter = xstrdup(v->str);
    }
    if ((v = sv_get(doc, "env")) && check_scalar_map(v, "env", true, c->d) && v->kind == SV_MAP)
        c->env = v;
}

static void check_report(struct bench_ctx *c, char ***formats)
{
    static const char *const keys[] = {"formats", NULL};
    static const char *const names[] = {"text", "json", "csv", "md", NULL};
    const struct sv *r = sv_get(c->doc, "report"), *f;
    if (!r || r->kind == SV_NULL ||
        !want(r, SV_MAP, "a map like {formats: [text, json]}", "report", c->d))
        return;
    check_keys(r, keys, "report", "'report:'", c->d);
    if (!(f = sv_get(r, "formats")) ||
        !check_scalar_list(f, "report.formats", "a list of formats like [text, json]", false, c->d))
        return;
    for (size_t i = 0; i < f->n; i++) {
        const struct sv *x = f->kids[i];
        bool ok = false;
        for (size_t j = 0; names[j] && !ok; j++)
            ok = !strcmp(names[j], x->str);
        char *hint = ok ? NULL : hint_for(x->str, names), *p = xasprintf("report.formats[%zu]", i);
        if (ok)
            strv_push(formats, x->str);
        else
            diags_add(c->d, x->pos, p, hint, "expected one of text, json, csv, md, got %s", got(x));
        free(hint);
        free(p);
    }
}

static void check_matrix_entry(struct bench_ctx *c, const struct sv *k, uint64_t *total)
{
    char *p = path_key("matrix", k->key);
    if (!recipe_name_valid(k->key, false))
        diags_add(c->d, k->kpos, p, NULL,
                  "invalid matrix key '%s': use letters, digits, '_' and '-'", k->key);
    if (k->kind != SV_SEQ || k->n == 0)
        diags_add(c->d, k->pos, p, NULL,
                  "expected a non-empty list of values like [1, 2, 4], got %s",
                  k->kind == SV_SEQ ? "an empty list" : got(k));
    for (size_t i = 0; k->kind == SV_SEQ && i < k->n; i++) {
        if (k->kids[i]->kind == SV_SCALAR)
            continue;
        char *pi = xasprintf("%s[%zu]", p, i);
        diags_add(c->d, k->kids[i]->pos, pi, NULL, "expected a single value, got %s",
                  got(k->kids[i]));
        free(pi);
    }
    if (k->kind == SV_SEQ && k->n)
        *total = *total > RECIPE_MAX_TRIALS ? *total : *total * k->n;
    free(p);
}

static void check_matrix(struct bench_ctx *c)
{
    struct sv *m = sv_get(c->doc, "matrix");
    c->points = 1;
    if (!m || m->kind == SV_NULL)
        return;
    size_t before = nerr(c->d);
    uint64_t total = 1;
    if (want(m, SV_MAP, "a map of parameter lists like {clients: [1, 2, 4]}", "matrix", c->d)) {
        for (size_t i = 0; i < m->n; i++)
            check_matrix_entry(c, m->kids[i], &total);
        struct interp_static is = {.services = c->services, .budget = &c->budget};
        recipe_interp_static(m, &is, "matrix", c->d);
        interp_static_free(&is);
    }
    if (nerr(c->d) > before) {
        c->matrix_bad = true;
        return;
    }
    c->matrix = m;
    c->points = (size_t)total;
}

static bool name_taken(const struct bench_ctx *c, const struct sv *k)
{
    for (size_t i = 0; i < c->ncomps; i++) {
        if (strcmp(c->comps[i].name, k->key) != 0)
            continue;
        diags_add(c->d, k->kpos, "", NULL, "component name '%s' is already used by a %s", k->key,
                  role_names[c->comps[i].role]);
        return true;
    }
    return false;
}

static void collect_role(struct bench_ctx *c, enum comp_role role)
{
    const struct sv *m = sv_get(c->doc, role_plural[role]);
    if (!m || m->kind == SV_NULL ||
        !want(m, SV_MAP, "a map of NAME: {use: ENTRY} or NAME: {driver: DRIVER}", role_plural[role],
              c->d))
        return;
    for (size_t i = 0; i < m->n; i++) {
        const struct sv *k = m->kids[i];
        char *p = path_key(role_plural[role], k->key);
        if (!recipe_name_valid(k->key, false)) {
            diags_add(c->d, k->kpos, p, NULL,
                      "invalid %s name '%s': use letters, digits, '_' and '-'", role_names[role],
                      k->key);
            free(p);
            continue;
        }
        if (name_taken(c, k)) {
            free(p);
            continue;
        }
        c->comps = xrealloc(c->comps, (c->ncomps + 1) * sizeof(*c->comps));
        struct comp_src *s = &c->comps[c->ncomps++];
        *s = (struct comp_src){.role = role, .name = xstrdup(k->key), .path = p};
        s->block = resolve_block(c->o ? c->o->catalog : NULL, role, k, p, c->d);
        s->size = s->block ? text_size(s->block) : 0;
        if (role == ROLE_SERVICE)
            strv_push(&c->services, k->key);
    }
}

static void collect_comps(struct bench_ctx *c)
{
    c->services = xcalloc(1, sizeof(*c->services));
    collect_role(c, ROLE_SERVICE);
    collect_role(c, ROLE_MONITOR);
    collect_role(c, ROLE_CLIENT);
    const struct sv *clients = sv_get(c->doc, "clients");
    bool has_client = clients && clients->kind != SV_NULL && (clients->n || clients->str);
    if (!has_client && !sv_get(c->doc, "timeout"))
        diags_add(c->d, c->doc->pos, "", NULL,
                  "a benchmark needs at least one client (or a 'timeout:' that ends each trial)");
}

/* ---- trials ---- */

/* The component's copy for one trial: benchmark env merged under its own, then
 * ${matrix.*}/${env.*} substituted, then checked into s. */
static void build_comp(struct bench_ctx *c, const struct comp_src *src, char *const *point,
                       struct comp_spec *s, struct interp_static *is)
{
    struct sv *node = sv_clone(src->block);
    if (c->env) {
        struct sv *env = sv_clone(c->env), *own = sv_get(node, "env");
        if (own && own->kind == SV_MAP)
            sv_merge(env, own);
        if (!own || own->kind == SV_MAP || own->kind == SV_NULL)
            sv_set(node, "env", env);
        else
            sv_free(env);
    }
    const struct sv *port = sv_get(node, "port");
    *is = (struct interp_static){.matrix = c->matrix,
                                 .point = point,
                                 .services = c->services,
                                 .self_port =
                                     src->role == ROLE_SERVICE && port && port->kind != SV_NULL,
                                 .matrix_unknown = c->matrix_bad,
                                 .budget = &c->budget};
    recipe_interp_static(node, is, src->path, c->d);
    s->role = src->role;
    s->name = xstrdup(src->name);
    s->node = node;
    s->deps = xcalloc(is->ndeps + 1, sizeof(*s->deps));
    for (size_t i = 0; i < is->ndeps; i++)
        s->deps[i] = xstrdup(is->deps[i].name);
    check_block(node, src->role, false, src->path, c->d, s);
}

static size_t service_index(const struct trial_spec *t, size_t ns, const char *name)
{
    for (size_t i = 0; i < ns; i++)
        if (!strcmp(t->comps[i].name, name))
            return i;
    return ns;
}

static bool deps_placed(const struct trial_spec *t, size_t ns, size_t i, const bool *placed)
{
    for (char **d = t->comps[i].deps; d && *d; d++) {
        size_t j = service_index(t, ns, *d);
        if (j < ns && !placed[j])
            return false;
    }
    return true;
}

/* Follows unplaced dependencies from `from` until one repeats, and reports that
 * cycle at the reference that closes it. Returns a node of the cycle. */
static size_t report_cycle(struct bench_ctx *c, const struct trial_spec *t, size_t ns,
                           const bool *placed, const struct interp_static *is, size_t from)
{
    size_t *seen = xcalloc(ns + 1, sizeof(*seen)), n = 0, cur = from, start = 0;
    for (;;) {
        for (start = 0; start < n && seen[start] != cur; start++)
            ;
        if (start < n || n > ns)
            break;
        seen[n++] = cur;
        size_t next = cur;
        for (size_t k = 0; k < is[cur].ndeps && next == cur; k++) {
            size_t j = service_index(t, ns, is[cur].deps[k].name);
            if (j < ns && !placed[j])
                next = j;
        }
        cur = next;
    }
    /* The cycle is seen[start..n); begin it at its first service in document order. */
    size_t first = start;
    for (size_t i = start; i < n; i++)
        if (seen[i] < seen[first])
            first = i;
    struct sbuf msg = {0};
    for (size_t i = 0; i <= n - start; i++)
        sbuf_printf(&msg, "%s%s", i ? " -> " : "",
                    t->comps[seen[start + (first - start + i) % (n - start)]].name);
    size_t a = seen[first], b = seen[start + (first - start + 1) % (n - start)];
    struct sv_pos pos = t->comps[a].node->pos;
    for (size_t k = 0; k < is[a].ndeps; k++)
        if (!strcmp(is[a].deps[k].name, t->comps[b].name))
            pos = is[a].deps[k].pos;
    diags_add(c->d, pos, "", NULL, "dependency cycle: %s", msg.s);
    sbuf_free(&msg);
    free(seen);
    return a;
}

/* Services in dependency order (document order otherwise), then the rest. */
static void order_services(struct bench_ctx *c, struct trial_spec *t,
                           const struct interp_static *is)
{
    size_t ns = 0;
    while (ns < t->ncomps && t->comps[ns].role == ROLE_SERVICE)
        ns++;
    bool *placed = xcalloc(ns + 1, sizeof(*placed));
    size_t *order = xcalloc(ns + 1, sizeof(*order)), n = 0, first = 0;
    while (n < ns) {
        size_t i = first;
        while (i < ns && (placed[i] || !deps_placed(t, ns, i, placed)))
            i++;
        if (i == ns) /* everything left waits on a cycle: report it, then break it */
            i = report_cycle(c, t, ns, placed, is, first);
        placed[i] = true;
        order[n++] = i;
        while (first < ns && placed[first])
            first++;
    }
    struct comp_spec *tmp = xcalloc(ns + 1, sizeof(*tmp));
    for (size_t i = 0; i < ns; i++)
        tmp[i] = t->comps[order[i]];
    memcpy(t->comps, tmp, ns * sizeof(*tmp));
    free(tmp);
    free(order);
    free(placed);
}

static void trial_label(struct bench_ctx *c, struct trial_spec *t, char *const *point)
{
    struct sbuf b = {0};
    for (size_t k = 0; c->matrix && k < c->matrix->n; k++) {
        char *kv = xasprintf("%s=%s", c->matrix->kids[k]->key, point[k]);
        sbuf_printf(&b, "%s%s", k ? " " : "", kv);
        strv_push(&t->matrix, kv);
        free(kv);
    }
    if (!c->matrix || c->matrix->n == 0)
        sbuf_printf(&b, "trial %u", t->index + 1);
    else if (c->repeat > 1)
        sbuf_printf(&b, " #%u", t->repetition + 1);
    t->label = sbuf_steal(&b);
}

static int build_trial(struct bench_ctx *c, struct trial_spec *t, char *const *point)
{
    trial_label(c, t, point);
    if (!spend(c, 2 * strlen(t->label) + 64))
        return -ENOSPC;
    t->timeout_ns = c->timeout_ns;
    t->comps = xcalloc(c->ncomps + 1, sizeof(*t->comps));
    struct interp_static *is = xcalloc(c->ncomps + 1, sizeof(*is));
    int r = 0;
    for (size_t i = 0; i < c->ncomps && r == 0; i++) {
        if (!c->comps[i].block)
            continue;
        if (!spend(c, c->comps[i].size)) {
            r = -ENOSPC;
            break;
        }
        build_comp(c, &c->comps[i], point, &t->comps[t->ncomps], &is[t->ncomps]);
        t->ncomps++;
    }
    if (r == 0)
        order_services(c, t, is);
    for (size_t i = 0; i < c->ncomps; i++)
        interp_static_free(&is[i]);
    free(is);
    return r;
}

static void expand_trials(struct bench_ctx *c)
{
    size_t nk = c->matrix ? c->matrix->n : 0;
    size_t total = c->points * (size_t)c->repeat;
    char **point = xcalloc(nk + 1, sizeof(*point));
    c->b->trials = xcalloc(total, sizeof(*c->b->trials));
    for (size_t p = 0; p < c->points && !c->over_budget; p++) {
        size_t rem = p; /* the last key varies fastest */
        for (size_t k = nk; k-- > 0;) {
            const struct sv *vals = c->matrix->kids[k];
            point[k] = vals->kids[rem % vals->n]->str;
            rem /= vals->n;
        }
        for (int64_t r = 0; r < c->repeat && !c->over_budget; r++) {
            struct trial_spec *t = &c->b->trials[c->b->ntrials++];
            t->index = (unsigned)(c->b->ntrials - 1);
            t->repetition = (unsigned)r;
            build_trial(c, t, point);
        }
    }
    free(point);
}

/* ---- the resolved recipe ---- */

static void put_str(struct sv *map, const char *key, const char *val, struct sv_pos pos)
{
    if (val)
        sv_append(map, key, sv_new_scalar(val, pos));
}

static void put_num(struct sv *map, const char *key, unsigned long long n, struct sv_pos pos)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%llu", n);
    put_str(map, key, buf, pos);
}

static struct sv *trial_tree(const struct bench_ctx *c, const struct trial_spec *t)
{
    struct sv_pos pos = c->doc->pos;
    struct sv *tr = sv_new(SV_MAP, pos), *m = sv_new(SV_MAP, pos);
    put_num(tr, "index", t->index, pos);
    put_num(tr, "repetition", t->repetition, pos);
    put_str(tr, "label", t->label, pos);
    for (size_t k = 0; c->matrix && k < c->matrix->n; k++)
        put_str(m, c->matrix->kids[k]->key, strchr(t->matrix[k], '=') + 1, pos);
    sv_append(tr, "matrix", m);
    static const enum comp_role order[] = {ROLE_SERVICE, ROLE_MONITOR, ROLE_CLIENT};
    for (size_t o = 0; o < SONDE_ARRAY_LEN(order); o++) {
        enum comp_role role = order[o];
        struct sv *map = sv_new(SV_MAP, pos);
        for (size_t i = 0; i < t->ncomps; i++)
            if (t->comps[i].role == role)
                sv_append(map, t->comps[i].name, sv_clone(t->comps[i].node));
        sv_append(tr, role_plural[role], map);
    }
    return tr;
}

static void resolve_output(struct bench_ctx *c)
{
    struct bench_spec *b = c->b;
    struct sv_pos pos = c->doc->pos;
    struct sv *top = sv_new(SV_MAP, pos), *trials = sv_new(SV_SEQ, pos);
    b->file = xstrdup(c->file);
    b->name = xstrdup(sv_str(c->doc, "name", ""));
    b->description = xstrdup(sv_str(c->doc, "description", NULL));
    b->backend =
        xstrdup(c->o && c->o->backend ? c->o->backend : sv_str(c->doc, "backend", "local"));
    put_str(top, "kind", "benchmark", pos);
    put_str(top, "name", b->name, pos);
    put_str(top, "description", b->description, pos);
    put_str(top, "backend", b->backend, pos);
    b->site = xstrdup(c->o && c->o->site ? c->o->site : sv_str(c->doc, "site", NULL));
    if (b->site)
        put_str(top, "site", b->site, pos);
    put_num(top, "repeat", (unsigned long long)c->repeat, pos);
    if (c->timeout_ns)
        put_str(top, "timeout", sv_str(c->doc, "timeout", NULL), pos);
    for (size_t i = 0; i < b->ntrials; i++)
        sv_append(trials, NULL, trial_tree(c, &b->trials[i]));
    sv_append(top, "trials", trials);
    b->resolved_yaml = sv_to_yaml(top);
    sha256_hex(b->resolved_yaml, strlen(b->resolved_yaml), b->sha256);
    sv_free(top);
}

/* ---- freeing ---- */

void comp_spec_clear(struct comp_spec *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->driver);
    free(c->use);
    free(c->description);
    sv_free(c->with);
    free(c->user);
    strv_free(c->env);
    free(c->cwd);
    free(c->port);
    free(c->ready.host);
    free(c->ready.port);
    free(c->ready.url);
    strv_free(c->ready.argv);
    free(c->ready.regex);
    strv_free(c->deps);
    sv_free(c->node);
    resources_clear(&c->res);
    free(c->image);
    strv_free(c->binds);
    memset(c, 0, sizeof(*c));
}

void comp_spec_free(struct comp_spec *c)
{
    comp_spec_clear(c);
    free(c);
}

void bench_free(struct bench_spec *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->ntrials; i++) {
        struct trial_spec *t = &b->trials[i];
        for (size_t j = 0; j < t->ncomps; j++)
            comp_spec_clear(&t->comps[j]);
        free(t->comps);
        strv_free(t->matrix);
        free(t->label);
    }
    free(b->trials);
    free(b->file);
    free(b->name);
    free(b->description);
    free(b->backend);
    free(b->site);
    strv_free(b->report_formats);
    free(b->exporter);
    free(b->resolved_yaml);
    free(b);
}

static void ctx_free(struct bench_ctx *c)
{
    for (size_t i = 0; i < c->ncomps; i++) {
        free(c->comps[i].name);
        free(c->comps[i].path);
        sv_free(c->comps[i].block);
    }
    free(c->comps);
    strv_free(c->services);
    bench_free(c->b);
}

/* ---- entry points ---- */

/* Resolves a benchmark document (sets already applied; header already checked). */
static int resolve_bench(const char *file, struct sv *doc, const struct recipe_opts *o,
                         struct bench_spec **out, struct diags *d)
{
    size_t before = nerr(d);
    struct bench_ctx c = {.file = file, .o = o, .d = d, .doc = doc, .budget = RECIPE_MAX_RESOLVED};
    c.b = xcalloc(1, sizeof(*c.b));
    normalize_monitors(doc, d);
    collect_comps(&c);
    check_top(&c);
    check_matrix(&c);
    check_report(&c, &c.b->report_formats);
    if ((uint64_t)c.points * (uint64_t)c.repeat > RECIPE_MAX_TRIALS) {
        const struct sv *at = c.matrix ? c.matrix : sv_get(doc, "repeat");
        diags_add(d, at ? at->pos : doc->pos, c.matrix ? "matrix" : "repeat", NULL,
                  "expands to %llu trials, more than the limit of %d",
                  (unsigned long long)c.points * (unsigned long long)c.repeat, RECIPE_MAX_TRIALS);
    } else {
        expand_trials(&c);
    }
    int r = -EINVAL;
    if (nerr(d) == before) {
        resolve_output(&c);
        *out = c.b;
        c.b = NULL;
        r = 0;
    }
    ctx_free(&c);
    return r;
}

/* Validates a catalog entry on its own: references are only checked for syntax. */
static int validate_entry(const char *file, struct sv *doc, enum recipe_kind k, struct diags *d)
{
    size_t before = nerr(d);
    enum comp_role role = (enum comp_role)(k - 1);
    check_entry_header(file, doc, (int)k, d);
    struct interp_static is = {.lenient = true, .self_port = true};
    recipe_interp_static(doc, &is, "", d);
    interp_static_free(&is);
    struct comp_spec s = {.role = role, .name = xstrdup(sv_str(doc, "name", ""))};
    s.node = NULL;
    check_block(doc, role, true, "", d, &s);
    comp_spec_clear(&s);
    return nerr(d) == before ? 0 : -EINVAL;
}

/* Applies --set and checks the header; then resolves a benchmark (into *out when
 * out is set) or, when out is NULL, validates whatever kind doc is. Consumes doc. */
static int resolve_doc(const char *file, struct sv *doc, const struct recipe_opts *o,
                       struct bench_spec **out, struct diags *d)
{
    size_t before = nerr(d);
    enum recipe_kind k = RECIPE_BENCHMARK;
    int r = recipe_apply_sets(doc, o ? o->sets : NULL, d);
    if (r == 0)
        r = check_header(doc, &k, d);
    if (r == 0 && k == RECIPE_BENCHMARK) {
        struct bench_spec *b = NULL;
        r = resolve_bench(file, doc, o, &b, d);
        if (r == 0 && out)
            *out = b;
        else
            bench_free(b);
    } else if (r == 0 && !out)
        r = validate_entry(file, doc, k, d);
    else if (r == 0)
        diags_add(d, sv_get(doc, "kind")->pos, "kind", NULL,
                  "expected kind 'benchmark' (this is a %s catalog entry; a benchmark refers "
                  "to it with 'use:')",
                  kind_names[k]);
    sv_free(doc);
    return nerr(d) == before && r == 0 ? 0 : -EINVAL;
}

int bench_resolve(const char *path, const struct recipe_opts *o, struct bench_spec **out,
                  struct diags *d)
{
    struct sv *doc = NULL;
    int r = recipe_load_file(path, &doc, d);
    if (r < 0)
        return r;
    struct bench_spec *b = NULL;
    r = resolve_doc(path, doc, o, &b, d);
    if (r == 0)
        *out = b;
    return r;
}

int recipe_validate_doc(const char *file, const struct sv *doc, const struct recipe_opts *o,
                        struct diags *d)
{
    return resolve_doc(file, sv_clone(doc), o, NULL, d);
}

int recipe_validate_file(const char *path, const struct recipe_opts *o, struct diags *d)
{
    struct sv *doc = NULL;
    int r = recipe_load_file(path, &doc, d);
    if (r < 0)
        return r;
    r = recipe_validate_doc(path, doc, o, d);
    sv_free(doc);
    return r;
}

int recipe_validate_buffer(const char *name, const char *data, size_t len,
                           const struct recipe_opts *o, struct diags *d)
{
    struct sv *doc = NULL;
    int r = recipe_load_buffer(name, data, len, &doc, d);
    if (r < 0)
        return r;
    r = recipe_validate_doc(name, doc, o, d);
    sv_free(doc);
    return r;
}

/* ---- run-time copies ---- */

struct rt {
    interp_lookup_fn lookup;
    void *ud;
    struct diags *d;
    int r;
};

static struct sv_pos field_pos(const struct sv *node, const char *key)
{
    const struct sv *v = sv_get(node, key);
    return v ? v->pos : node ? node->pos : (struct sv_pos){0};
}

static char *rt_str(struct rt *rt, const char *s, struct sv_pos pos)
{
    char *out = NULL;
    if (!s)
        return NULL;
    if (recipe_interp_string(s, pos, rt->lookup, rt->ud, rt->d, &out) < 0) {
        rt->r = -EINVAL;
        return xstrdup(s);
    }
    return out;
}

static char **rt_strv(struct rt *rt, char *const *v, struct sv_pos pos)
{
    char **out = NULL;
    for (size_t i = 0; v && v[i]; i++) {
        char *s = rt_str(rt, v[i], pos);
        strv_push(&out, s);
        free(s);
    }
    return out;
}

static struct sv *rt_tree(struct rt *rt, const struct sv *v)
{
    struct sv *c = sv_clone(v);
    if (c && recipe_interp_runtime(c, rt->lookup, rt->ud, rt->d) < 0)
        rt->r = -EINVAL;
    return c;
}

int comp_spec_interp(const struct comp_spec *src, interp_lookup_fn lookup, void *ud,
                     struct diags *d, struct comp_spec **out)
{
    struct rt rt = {lookup, ud, d, 0};
    const struct sv *n = src->node, *ready = sv_get(n, "ready");
    struct comp_spec *c = xcalloc(1, sizeof(*c));
    *c = (struct comp_spec){.role = src->role,
                            .name = xstrdup(src->name),
                            .driver = xstrdup(src->driver),
                            .use = xstrdup(src->use),
                            .description = xstrdup(src->description),
                            .ready = src->ready,
                            .stop_grace_ns = src->stop_grace_ns,
                            .interval_ns = src->interval_ns,
                            .deps = strv_dup(src->deps)};
    c->with = rt_tree(&rt, src->with);
    c->node = rt_tree(&rt, src->node);
    c->user = rt_str(&rt, src->user, field_pos(n, "user"));
    c->cwd = rt_str(&rt, src->cwd, field_pos(n, "cwd"));
    c->port = rt_str(&rt, src->port, field_pos(n, "port"));
    c->env = rt_strv(&rt, src->env, field_pos(n, "env"));
    resources_merge(&c->res, &src->res, &(struct resources){.gpus_per_node = -1, .exclusive = -1});
    c->image = rt_str(&rt, src->image, field_pos(n, "image"));
    c->binds = rt_strv(&rt, src->binds, field_pos(n, "binds"));
    struct sv_pos rp = ready ? ready->pos : field_pos(n, "ready");
    c->ready.host = rt_str(&rt, src->ready.host, rp);
    c->ready.port = rt_str(&rt, src->ready.port, rp);
    c->ready.url = rt_str(&rt, src->ready.url, rp);
    c->ready.regex = rt_str(&rt, src->ready.regex, rp);
    c->ready.argv = rt_strv(&rt, src->ready.argv, rp);
    if (rt.r < 0) {
        comp_spec_free(c);
        return rt.r;
    }
    *out = c;
    return 0;
}

bool recipe_check_opts(const struct sv *map, const struct opt_def *defs, const char *path,
                       struct diags *d)
{
    return check_opts(map, defs, NULL, false, path, d);
}

void comp_steps_free(char ***steps)
{
    for (size_t i = 0; steps && steps[i]; i++)
        strv_free(steps[i]);
    free(steps);
}

int comp_spec_steps(const struct comp_spec *c, char ****out, size_t *bad)
{
    const struct sv *list = sv_get(c->with, "prepare");
    char ***steps = NULL;
    size_t n = 0;
    *out = NULL;
    for (size_t i = 0; list && list->kind == SV_SEQ && i < list->n; i++) {
        char **argv = NULL;
        if (sv_as_strv(list->kids[i], &argv) < 0 || !argv[0]) {
            strv_free(argv);
            comp_steps_free(steps);
            if (bad)
                *bad = i + 1;
            return -EINVAL;
        }
        steps = xrealloc(steps, (n + 2) * sizeof(*steps));
        steps[n++] = argv;
        steps[n] = NULL;
    }
    *out = steps;
    return 0;
}
