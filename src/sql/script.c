/* script.c — parsing and evaluating the sql client's transaction scripts (script.h). */
#include "sql/script.h"

#include "util/rng.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUNC_ARGS_MAX 8
#define EXPR_DEPTH    64

enum ex_kind { EX_NUM, EX_VAR, EX_NEG, EX_BIN, EX_FUNC };
enum ex_func { F_RANDOM, F_GAUSSIAN, F_EXPONENTIAL, F_ZIPFIAN, F_ABS, F_LEAST, F_GREATEST };

struct sql_expr {
    enum ex_kind kind;
    int64_t num;                       /* NUM */
    int var;                           /* VAR */
    char op;                           /* BIN: + - * / % */
    enum ex_func func;                 /* FUNC */
    struct sql_expr *a[FUNC_ARGS_MAX]; /* NEG, BIN: a[0], a[1]; FUNC: its arguments */
    int nargs;
};

static const struct {
    const char *name;
    enum ex_func f;
    int min, max; /* arguments */
} funcs[] = {
    {"random", F_RANDOM, 2, 2},
    {"random_gaussian", F_GAUSSIAN, 3, 3},
    {"random_exponential", F_EXPONENTIAL, 3, 3},
    {"random_zipfian", F_ZIPFIAN, 3, 3},
    {"abs", F_ABS, 1, 1},
    {"least", F_LEAST, 1, FUNC_ARGS_MAX},
    {"greatest", F_GREATEST, 1, FUNC_ARGS_MAX},
};

const char *const sql_builtin_names[] = {"tpcb", "select-only", "simple-update", NULL};

/* pgbench's built-in transactions (the same statements; COMMIT for END, which
 * every engine knows). */
static const char tpcb_text[] =
    "\\set aid random(1, 100000 * :scale)\n"
    "\\set bid random(1, 1 * :scale)\n"
    "\\set tid random(1, 10 * :scale)\n"
    "\\set delta random(-5000, 5000)\n"
    "BEGIN;\n"
    "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n"
    "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"
    "UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;\n"
    "UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;\n"
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
    "VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);\n"
    "COMMIT;\n";
static const char select_only_text[] = "\\set aid random(1, 100000 * :scale)\n"
                                       "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n";
static const char simple_update_text[] =
    "\\set aid random(1, 100000 * :scale)\n"
    "\\set bid random(1, 1 * :scale)\n"
    "\\set tid random(1, 10 * :scale)\n"
    "\\set delta random(-5000, 5000)\n"
    "BEGIN;\n"
    "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n"
    "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
    "VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);\n"
    "COMMIT;\n";

/* ---- parsing ------------------------------------------------------------------------------- */

struct parser {
    const char *name; /* file, for messages */
    int line;
    char *err;
    size_t errlen;
    struct sql_script *s;
    bool set[SQL_VARS_MAX]; /* assigned by an earlier command */
};

static int fail(struct parser *p, const char *fmt, ...) SONDE_PRINTF(2, 3);
static int fail(struct parser *p, const char *fmt, ...)
{
    va_list ap;
    int k = snprintf(p->err, p->errlen, "%s:%d: ", p->name, p->line);
    va_start(ap, fmt);
    if (k >= 0 && (size_t)k < p->errlen)
        vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int var_find(const struct sql_script *s, const char *name, size_t n)
{
    for (int i = 0; i < s->nvars; i++)
        if (strlen(s->vars[i]) == n && !memcmp(s->vars[i], name, n))
            return i;
    return -1;
}

/* The variable's index, added when new; -1 (message set) past SQL_VARS_MAX. */
static int var_add(struct parser *p, const char *name, size_t n)
{
    int v = var_find(p->s, name, n);
    if (v >= 0)
        return v;
    if (p->s->nvars >= SQL_VARS_MAX) {
        fail(p, "more than %d variables", SQL_VARS_MAX);
        return -1;
    }
    p->s->vars[p->s->nvars] = xstrndup(name, n);
    return p->s->nvars++;
}

static bool name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static void expr_free(struct sql_expr *e)
{
    if (!e)
        return;
    for (int i = 0; i < FUNC_ARGS_MAX; i++)
        expr_free(e->a[i]);
    free(e);
}

struct lex {
    struct parser *p;
    const char *s;
    int depth;
};

static void skip_ws(struct lex *l)
{
    while (*l->s == ' ' || *l->s == '\t')
        l->s++;
}

static struct sql_expr *parse_sum(struct lex *l);

/* A :var that must be set already. */
static struct sql_expr *parse_var(struct lex *l)
{
    const char *start = ++l->s;
    while (name_char(*l->s))
        l->s++;
    size_t n = (size_t)(l->s - start);
    int v = n ? var_find(l->p->s, start, n) : -1;
    if (!n) {
        fail(l->p, "expected a variable name after ':'");
        return NULL;
    }
    if (v < 0 || !l->p->set[v]) {
        fail(l->p, "variable ':%.*s' is used before any \\set gives it a value", (int)n, start);
        return NULL;
    }
    struct sql_expr *e = xcalloc(1, sizeof(*e));
    e->kind = EX_VAR;
    e->var = v;
    return e;
}

static struct sql_expr *parse_func(struct lex *l, const char *name, size_t n)
{
    size_t fi = 0;
    while (fi < SONDE_ARRAY_LEN(funcs) &&
           (strlen(funcs[fi].name) != n || memcmp(funcs[fi].name, name, n)))
        fi++;
    if (fi == SONDE_ARRAY_LEN(funcs)) {
        fail(l->p, "unknown function '%.*s'", (int)n, name);
        return NULL;
    }
    struct sql_expr *e = xcalloc(1, sizeof(*e));
    e->kind = EX_FUNC;
    e->func = funcs[fi].f;
    l->s++; /* ( */
    skip_ws(l);
    while (*l->s != ')') {
        if (e->nargs == FUNC_ARGS_MAX || !(e->a[e->nargs++] = parse_sum(l)))
            goto bad;
        skip_ws(l);
        if (*l->s == ',')
            l->s++;
        else if (*l->s != ')') {
            fail(l->p, "expected ',' or ')' in the arguments of %s()", funcs[fi].name);
            goto bad;
        }
    }
    l->s++;
    if (e->nargs < funcs[fi].min || e->nargs > funcs[fi].max) {
        fail(l->p, "%s() takes %d argument%s", funcs[fi].name, funcs[fi].min,
             funcs[fi].min == 1 ? (funcs[fi].max > 1 ? " or more" : "") : "s");
        goto bad;
    }
    return e;
bad:
    if (!l->p->err[0])
        fail(l->p, "too many arguments to %s()", funcs[fi].name);
    expr_free(e);
    return NULL;
}

static struct sql_expr *parse_atom(struct lex *l)
{
    skip_ws(l);
    if (++l->depth > EXPR_DEPTH) {
        fail(l->p, "expression nested too deeply");
        return NULL;
    }
    struct sql_expr *e = NULL;
    if (*l->s == '(') {
        l->s++;
        e = parse_sum(l);
        skip_ws(l);
        if (e && *l->s != ')') {
            fail(l->p, "expected ')'");
            expr_free(e);
            e = NULL;
        } else if (e)
            l->s++;
    } else if (*l->s == '-') {
        l->s++;
        struct sql_expr *a = parse_atom(l);
        if (a) {
            e = xcalloc(1, sizeof(*e));
            e->kind = EX_NEG;
            e->a[0] = a;
        }
    } else if (*l->s == ':') {
        e = parse_var(l);
    } else if (isdigit((unsigned char)*l->s)) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(l->s, &end, 10);
        if (errno == ERANGE) {
            fail(l->p, "integer out of range");
            return NULL;
        }
        l->s = end;
        e = xcalloc(1, sizeof(*e));
        e->kind = EX_NUM;
        e->num = v;
    } else if (isalpha((unsigned char)*l->s)) {
        const char *name = l->s;
        while (name_char(*l->s))
            l->s++;
        size_t n = (size_t)(l->s - name);
        skip_ws(l);
        if (*l->s != '(') {
            fail(l->p, "'%.*s': a function needs '(' (variables are written :name)", (int)n, name);
            return NULL;
        }
        e = parse_func(l, name, n);
    } else {
        fail(l->p, *l->s ? "unexpected '%c' in an expression" : "expression ends too early%c",
             *l->s ? *l->s : '.');
    }
    l->depth--;
    return e;
}

static struct sql_expr *parse_binary(struct lex *l, const char *ops,
                                     struct sql_expr *(*next)(struct lex *))
{
    struct sql_expr *e = next(l);
    for (;;) {
        skip_ws(l);
        if (!e || !*l->s || !strchr(ops, *l->s))
            return e;
        struct sql_expr *b = xcalloc(1, sizeof(*b));
        b->kind = EX_BIN;
        b->op = *l->s++;
        b->a[0] = e;
        e = b;
        if (!(b->a[1] = next(l))) {
            expr_free(e);
            return NULL;
        }
    }
}

static struct sql_expr *parse_product(struct lex *l)
{
    return parse_binary(l, "*/%", parse_atom);
}

static struct sql_expr *parse_sum(struct lex *l)
{
    return parse_binary(l, "+-", parse_product);
}

/* A whole expression: the rest of the line. */
static struct sql_expr *parse_expr(struct parser *p, const char *s)
{
    struct lex l = {.p = p, .s = s};
    struct sql_expr *e = parse_sum(&l);
    skip_ws(&l);
    if (e && *l.s) {
        fail(p, "unexpected '%s' after the expression", l.s);
        expr_free(e);
        return NULL;
    }
    return e;
}

static struct sql_cmd *cmd_new(struct parser *p, enum sql_cmd_kind kind)
{
    struct sql_script *s = p->s;
    s->cmds = xrealloc(s->cmds, (s->ncmds + 1) * sizeof(*s->cmds));
    struct sql_cmd *c = &s->cmds[s->ncmds++];
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->line = p->line;
    c->var = -1;
    return c;
}

static int parse_set(struct parser *p, const char *args)
{
    while (*args == ' ' || *args == '\t')
        args++;
    const char *name = args;
    while (name_char(*args))
        args++;
    size_t n = (size_t)(args - name);
    if (!n || (*args && *args != ' ' && *args != '\t'))
        return fail(p, "\\set needs a variable name and an expression");
    struct sql_expr *e = parse_expr(p, args);
    if (!e)
        return -EINVAL;
    int v = var_add(p, name, n);
    if (v < 0) {
        expr_free(e);
        return -EINVAL;
    }
    struct sql_cmd *c = cmd_new(p, SQL_CMD_SET);
    c->var = v;
    c->expr = e;
    p->set[v] = true;
    return 0;
}

static int parse_sleep(struct parser *p, const char *args)
{
    static const struct {
        const char *unit;
        int64_t ns;
    } units[] = {{"us", 1000}, {"ms", 1000000}, {"s", 1000000000}};
    char *text = xstrdup(args);
    int64_t unit = 1000000000;
    char *end = text + strlen(text);
    while (end > text && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = 0;
    for (size_t i = 0; i < SONDE_ARRAY_LEN(units); i++) {
        size_t k = strlen(units[i].unit);
        char *u = (size_t)(end - text) > k ? end - k : NULL; /* where the unit would start */
        if (u && !strcmp(u, units[i].unit) &&
            (u[-1] == ' ' || u[-1] == '\t' || isdigit((unsigned char)u[-1]))) {
            unit = units[i].ns;
            *u = 0;
            break;
        }
    }
    struct sql_expr *e = parse_expr(p, text);
    free(text);
    if (!e)
        return -EINVAL;
    struct sql_cmd *c = cmd_new(p, SQL_CMD_SLEEP);
    c->expr = e;
    c->unit_ns = unit;
    return 0;
}

/* Turns the :vars of a statement into parameters, one per occurrence (outside
 * quotes; "::" casts stay). */
static int parse_stmt(struct parser *p, const char *text, int first_line)
{
    struct sbuf d = {0}, q = {0};
    int params[SQL_PARAMS_MAX], np = 0, r = 0;
    char quote = 0;
    int save = p->line;
    p->line = first_line;
    for (const char *s = text; *s && r == 0;) {
        if (quote) {
            if (*s == quote)
                quote = 0;
        } else if (*s == '\'' || *s == '"') {
            quote = *s;
        } else if (s[0] == ':' && s[1] == ':') {
            r = sbuf_add(&d, s, 2) | sbuf_add(&q, s, 2);
            s += 2;
            continue;
        } else if (s[0] == ':' && name_char(s[1])) {
            const char *name = ++s;
            while (name_char(*s))
                s++;
            int v = var_find(p->s, name, (size_t)(s - name));
            if (v < 0 || !p->set[v]) {
                r = fail(p, "variable ':%.*s' is used before any \\set gives it a value",
                         (int)(s - name), name);
                break;
            }
            if (np == SQL_PARAMS_MAX) {
                r = fail(p, "more than %d variables in one statement", SQL_PARAMS_MAX);
                break;
            }
            /* one parameter per occurrence, as MySQL's ? placeholders need */
            params[np++] = v;
            r = sbuf_printf(&d, "$%d", np) | sbuf_add(&q, "?", 1);
            continue;
        }
        r = sbuf_add(&d, s, 1) | sbuf_add(&q, s, 1);
        s++;
    }
    p->line = save;
    if (r == 0 && !d.len)
        r = fail(p, "empty statement");
    if (r < 0) {
        if (r != -EINVAL)
            r = fail(p, "statement too long");
        sbuf_free(&d);
        sbuf_free(&q);
        return r;
    }
    struct sql_cmd *c = cmd_new(p, SQL_CMD_STMT);
    c->line = first_line;
    c->text = xstrdup(text);
    c->sql_dollar = sbuf_steal(&d);
    c->sql_qmark = sbuf_steal(&q);
    c->nparams = np;
    memcpy(c->params, params, sizeof(params));
    c->stmt = p->s->nstmts++;
    return 0;
}

/* Whether line (inside a statement whose quote state is *quote) ends the
 * statement: its last character outside quotes and comments is ';'. *keep: its
 * length without a trailing "--" comment. */
static bool line_ends_stmt(const char *line, size_t n, char *quote, size_t *keep)
{
    char last = 0;
    *keep = n;
    for (size_t i = 0; i < n; i++) {
        char ch = line[i];
        if (*quote) {
            if (ch == *quote)
                *quote = 0;
            last = 'x';
            continue;
        }
        if (ch == '-' && i + 1 < n && line[i + 1] == '-') {
            *keep = i;
            break;
        }
        if (ch == '\'' || ch == '"')
            *quote = ch;
        if (ch != ' ' && ch != '\t' && ch != '\r')
            last = ch;
    }
    return !*quote && last == ';';
}

static int parse_meta(struct parser *p, const char *line)
{
    const char *cmd = line + 1, *args = cmd;
    while (isalpha((unsigned char)*args))
        args++;
    size_t n = (size_t)(args - cmd);
    if (n == 3 && !memcmp(cmd, "set", 3))
        return parse_set(p, args);
    if (n == 5 && !memcmp(cmd, "sleep", 5))
        return parse_sleep(p, args);
    return fail(p, "unknown command '\\%.*s' (known: \\set, \\sleep)", (int)n, cmd);
}

static int parse_lines(struct parser *p, const char *text, size_t len)
{
    struct sbuf stmt = {0};
    int first = 0, r = 0;
    char quote = 0;
    const char *end = text + len;
    for (const char *s = text; s < end && r == 0;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        p->line++;
        if (memchr(s, 0, n)) {
            r = fail(p, "a NUL byte in the script");
            break;
        }
        char *line = xstrndup(s, n);
        s += n + (nl ? 1 : 0);
        char *t = line;
        while (*t == ' ' || *t == '\t' || *t == '\r')
            t++;
        size_t tl = strlen(t);
        while (tl && (t[tl - 1] == '\r' || t[tl - 1] == ' ' || t[tl - 1] == '\t'))
            t[--tl] = 0;
        if (!stmt.len && (!*t || str_startswith(t, "--"))) {
            free(line);
            continue;
        }
        if (!stmt.len && *t == '\\') {
            r = parse_meta(p, t);
            free(line);
            continue;
        }
        if (!stmt.len)
            first = p->line;
        else
            sbuf_add(&stmt, " ", 1);
        size_t keep = tl;
        bool done = line_ends_stmt(t, tl, &quote, &keep);
        while (keep && (t[keep - 1] == ' ' || t[keep - 1] == '\t'))
            keep--;
        if (sbuf_add(&stmt, t, keep) < 0)
            r = fail(p, "statement too long");
        free(line);
        if (r == 0 && done) {
            while (stmt.len && (stmt.s[stmt.len - 1] == ';' || stmt.s[stmt.len - 1] == ' '))
                stmt.s[--stmt.len] = 0;
            r = parse_stmt(p, stmt.s ? stmt.s : "", first);
            stmt.len = 0;
        }
    }
    if (r == 0 && stmt.len) {
        p->line = first;
        r = fail(p, quote ? "a quoted string is never closed" : "statement without a final ';'");
    }
    sbuf_free(&stmt);
    if (r == 0 && !p->s->nstmts)
        r = fail(p, "no SQL statement in the script");
    return r;
}

int sql_script_parse(const char *name, const char *text, size_t len, struct sql_script **out,
                     char *err, size_t errlen)
{
    struct sql_script *s = xcalloc(1, sizeof(*s));
    struct parser p = {.name = name, .err = err, .errlen = errlen, .s = s};
    s->name = xstrdup(name);
    s->weight = 1;
    s->vars[0] = xstrdup("scale");
    s->vars[1] = xstrdup("client_id");
    s->nvars = 2;
    p.set[SQL_VAR_SCALE] = p.set[SQL_VAR_CLIENT] = true;
    if (errlen)
        err[0] = 0;
    int r = parse_lines(&p, text, len);
    if (r < 0) {
        sql_script_free(s);
        return r;
    }
    *out = s;
    return 0;
}

int sql_script_builtin(const char *name, struct sql_script **out)
{
    const char *text = !strcmp(name, "tpcb")            ? tpcb_text
                       : !strcmp(name, "select-only")   ? select_only_text
                       : !strcmp(name, "simple-update") ? simple_update_text
                                                        : NULL;
    char err[256];
    if (!text)
        return -ENOENT;
    return sql_script_parse(name, text, strlen(text), out, err, sizeof(err));
}

void sql_script_free(struct sql_script *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ncmds; i++) {
        expr_free(s->cmds[i].expr);
        free(s->cmds[i].text);
        free(s->cmds[i].sql_dollar);
        free(s->cmds[i].sql_qmark);
    }
    free(s->cmds);
    for (int i = 0; i < s->nvars; i++)
        free(s->vars[i]);
    free(s->name);
    free(s);
}

/* ---- evaluation ---------------------------------------------------------------------------- */

static int eval_fail(char *err, size_t errlen, const char *fmt, ...) SONDE_PRINTF(3, 4);
static int eval_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EDOM;
}

/* Uniform in [0, n) for n >= 1 (multiply-shift: bias below 2^-64 * n). */
static uint64_t below(struct rng *rng, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(rng) * n) >> 64);
}

/* pgbench's gaussian: a standard normal draw rejected outside [-p, p), scaled. */
static double gaussian_unit(struct rng *rng, double p)
{
    double x;
    do {
        double u1 = rng_unit_open(rng), u2 = rng_unit(rng);
        x = sqrt(-2.0 * log(u1)) * sin(2.0 * M_PI * u2);
    } while (x < -p || x >= p);
    return (x + p) / (2.0 * p);
}

/* pgbench's exponential: truncated at p. */
static double exponential_unit(struct rng *rng, double p)
{
    double cut = exp(-p);
    return -log(cut + (1.0 - cut) * rng_unit_open(rng)) / p;
}

/* Zipf's law on 1..n with exponent s > 1 by rejection (Devroye, Non-Uniform
 * Random Variate Generation, X.6), as pgbench. */
static int64_t zipf(struct rng *rng, int64_t n, double s)
{
    double b = pow(2.0, s - 1.0);
    for (;;) {
        double u = rng_unit_open(rng), v = rng_unit(rng);
        double x = floor(pow(u, -1.0 / (s - 1.0)));
        double t = pow(1.0 + 1.0 / x, s - 1.0);
        if (v * x * (t - 1.0) / (b - 1.0) <= t / b && x <= (double)n)
            return (int64_t)x;
    }
}

static int eval_func(const struct sql_expr *e, const int64_t *v, struct rng *rng, int64_t *out,
                     char *err, size_t errlen)
{
    int64_t a[FUNC_ARGS_MAX];
    for (int i = 0; i < e->nargs; i++) {
        int r = sql_expr_eval(e->a[i], v, rng, &a[i], err, errlen);
        if (r < 0)
            return r;
    }
    if (e->func == F_ABS) {
        *out = a[0] < 0 ? -a[0] : a[0];
        return 0;
    }
    if (e->func == F_LEAST || e->func == F_GREATEST) {
        *out = a[0];
        for (int i = 1; i < e->nargs; i++)
            *out = (e->func == F_LEAST) == (a[i] < *out) ? a[i] : *out;
        return 0;
    }
    int64_t lo = a[0], hi = a[1];
    if (hi < lo)
        return eval_fail(err, errlen, "random range [%lld, %lld] is empty", (long long)lo,
                         (long long)hi);
    uint64_t n = (uint64_t)hi - (uint64_t)lo + 1; /* 0: the whole int64 range */
    double p = (double)(e->nargs > 2 ? a[2] : 0);
    switch (e->func) {
    case F_RANDOM:
        *out = (int64_t)((uint64_t)lo + (n ? below(rng, n) : rng_next(rng)));
        return 0;
    case F_GAUSSIAN:
        if (p < 2)
            return eval_fail(err, errlen, "random_gaussian: the parameter must be at least 2");
        *out = lo + (int64_t)((double)n * gaussian_unit(rng, p));
        return 0;
    case F_EXPONENTIAL:
        if (p <= 0)
            return eval_fail(err, errlen, "random_exponential: the parameter must be above 0");
        *out = lo + (int64_t)((double)n * exponential_unit(rng, p));
        return 0;
    case F_ZIPFIAN:
        if (p <= 1 || p > 1000)
            return eval_fail(err, errlen, "random_zipfian: the parameter must be in (1, 1000]");
        *out = lo + zipf(rng, n ? (int64_t)n : INT64_MAX, p) - 1;
        return 0;
    default:
        return eval_fail(err, errlen, "unknown function");
    }
}

int sql_expr_eval(const struct sql_expr *e, const int64_t *vars, struct rng *rng, int64_t *out,
                  char *err, size_t errlen)
{
    int64_t a = 0, b = 0;
    int r = 0;
    switch (e->kind) {
    case EX_NUM:
        *out = e->num;
        return 0;
    case EX_VAR:
        *out = vars[e->var];
        return 0;
    case EX_NEG:
        r = sql_expr_eval(e->a[0], vars, rng, &a, err, errlen);
        *out = (int64_t)(0 - (uint64_t)a);
        return r;
    case EX_FUNC:
        return eval_func(e, vars, rng, out, err, errlen);
    case EX_BIN:
        break;
    }
    if ((r = sql_expr_eval(e->a[0], vars, rng, &a, err, errlen)) < 0 ||
        (r = sql_expr_eval(e->a[1], vars, rng, &b, err, errlen)) < 0)
        return r;
    switch (e->op) { /* wrapping arithmetic: no undefined behaviour on overflow */
    case '+':
        *out = (int64_t)((uint64_t)a + (uint64_t)b);
        return 0;
    case '-':
        *out = (int64_t)((uint64_t)a - (uint64_t)b);
        return 0;
    case '*':
        *out = (int64_t)((uint64_t)a * (uint64_t)b);
        return 0;
    default:
        if (b == 0)
            return eval_fail(err, errlen, "division by zero");
        if (b == -1) /* INT64_MIN / -1 overflows */
            *out = e->op == '/' ? (int64_t)(0 - (uint64_t)a) : 0;
        else
            *out = e->op == '/' ? a / b : a % b;
        return 0;
    }
}
