/* promtext.c — the Prometheus text 0.0.4 / OpenMetrics 1.0 text parser. */
#include "util/promtext.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"

#define VALUE_MAX 256 /* characters of a value or timestamp token */

struct parser {
    bool om;
    prom_sample_fn fn;
    void *ud;
    struct prom_stats *st;
    size_t lineno;
    /* The family of the last TYPE line: its samples follow it. */
    char *family;
    bool has_family;
    enum prom_type ftype;
    /* One line's strings (names, unescaped label values); strings of a line
     * together never exceed the line, so one line's worth plus the NULs fits. */
    char *scratch;
    size_t scap, sused;
    struct prom_label labels[PROMTEXT_MAX_LABELS];
    size_t nlabels;
    int stop;      /* the callback's negative value: the parse ends */
    char why[120]; /* what is wrong with the current line */
};

/* A position in the current line: [s, e). */
struct cur {
    const char *s, *e;
};

static int bad(struct parser *p, const char *fmt, ...) SONDE_PRINTF(2, 3);
static int bad(struct parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof(p->why), fmt, ap);
    va_end(ap);
    return -1;
}

static void blanks(struct cur *c)
{
    while (c->s < c->e && (*c->s == ' ' || *c->s == '\t'))
        c->s++;
}

static bool at_blank(const struct cur *c)
{
    return c->s < c->e && (*c->s == ' ' || *c->s == '\t');
}

static bool name_start(char ch, bool colon)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
           (colon && ch == ':');
}

static bool name_char(char ch, bool colon)
{
    return name_start(ch, colon) || (ch >= '0' && ch <= '9');
}

/* A metric name (colon: true) or label name at c; its length (0: none). */
static size_t take_name(struct cur *c, bool colon)
{
    const char *s = c->s;
    if (s >= c->e || !name_start(*s, colon))
        return 0;
    while (s < c->e && name_char(*s, colon))
        s++;
    size_t n = (size_t)(s - c->s);
    c->s = s;
    return n;
}

/* Copies src[0..n) into the scratch buffer, NUL-terminated. */
static char *put(struct parser *p, const char *src, size_t n)
{
    if (p->sused + n + 1 > p->scap)
        return NULL; /* cannot happen: the buffer holds a whole line and its NULs */
    char *d = p->scratch + p->sused;
    memcpy(d, src, n);
    d[n] = '\0';
    p->sused += n + 1;
    return d;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        size_t k;
        unsigned lo = 0x80, hi = 0xBF;
        if (b < 0x80) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF)
            k = 1;
        else if (b >= 0xE0 && b <= 0xEF) {
            k = 2;
            lo = b == 0xE0 ? 0xA0 : 0x80;
            hi = b == 0xED ? 0x9F : 0xBF;
        } else if (b >= 0xF0 && b <= 0xF4) {
            k = 3;
            lo = b == 0xF0 ? 0x90 : 0x80;
            hi = b == 0xF4 ? 0x8F : 0xBF;
        } else
            return false;
        if (n - i <= k)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t j = 2; j <= k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xBF)
                return false;
        i += k + 1;
    }
    return true;
}

/* A quoted label value at c (after the opening quote), unescaped into the
 * scratch buffer. keep: store it (false for exemplars: only checked). */
static int take_label_value(struct parser *p, struct cur *c, const char *label, bool keep,
                            const char **out, size_t *outlen)
{
    char *d = p->scratch + p->sused; /* unescaped is never longer than escaped */
    size_t n = 0, room = p->scap - p->sused;
    for (;;) {
        if (c->s >= c->e)
            return bad(p, "label value of '%.40s' not terminated", label);
        char ch = *c->s++;
        if (ch == '"')
            break;
        if (ch == '\\') {
            if (c->s >= c->e)
                return bad(p, "label value of '%.40s' not terminated", label);
            char x = *c->s++;
            if (x == 'n')
                ch = '\n';
            else if (x == '\\' || x == '"')
                ch = x;
            else
                return bad(p, "invalid escape '\\%c' in the value of label '%.40s'",
                           x >= 0x20 && x < 0x7f ? x : '?', label);
        }
        if (n >= PROMTEXT_MAX_LABEL_VAL)
            return bad(p, "value of label '%.40s' longer than %zu bytes", label,
                       PROMTEXT_MAX_LABEL_VAL);
        if (n + 1 >= room)
            return bad(p, "line too long");
        d[n++] = ch;
    }
    if (!utf8_valid((const unsigned char *)d, n))
        return bad(p, "value of label '%.40s' is not valid UTF-8", label);
    if (keep) {
        d[n] = '\0';
        p->sused += n + 1;
        *out = d;
        *outlen = n;
    }
    return 0;
}

/* `{name="value",...}` at c (on the '{'). keep: store the labels in p->labels. */
static int take_labels(struct parser *p, struct cur *c, bool keep)
{
    size_t count = 0;
    c->s++; /* '{' */
    for (;;) {
        blanks(c);
        if (c->s < c->e && *c->s == '}') {
            c->s++;
            break;
        }
        const char *ns = c->s;
        size_t nl = take_name(c, false);
        if (nl == 0)
            return bad(p, c->s >= c->e ? "label set not closed with '}'" : "expected a label name");
        char lname[48];
        snprintf(lname, sizeof(lname), "%.*s", (int)(nl < 47 ? nl : 47), ns);
        blanks(c);
        if (c->s >= c->e || *c->s != '=')
            return bad(p, "expected '=' after label name '%s'", lname);
        c->s++;
        blanks(c);
        if (c->s >= c->e || *c->s != '"')
            return bad(p, "expected '\"' to open the value of label '%s'", lname);
        c->s++;
        if (count >= PROMTEXT_MAX_LABELS)
            return bad(p, "more than %d labels", PROMTEXT_MAX_LABELS);
        const char *name = NULL, *val = NULL;
        size_t vlen = 0;
        if (keep && !(name = put(p, ns, nl)))
            return bad(p, "line too long");
        if (take_label_value(p, c, lname, keep, &val, &vlen) < 0)
            return -1;
        if (keep) {
            for (size_t i = 0; i < count; i++)
                if (strcmp(p->labels[i].name, name) == 0)
                    return bad(p, "label '%s' given twice", lname);
            p->labels[count] = (struct prom_label){.name = name, .value = val, .value_len = vlen};
        }
        count++;
        blanks(c);
        if (c->s < c->e && *c->s == ',') {
            c->s++;
            continue;
        }
        if (c->s < c->e && *c->s == '}') {
            c->s++;
            break;
        }
        return bad(p,
                   c->s >= c->e ? "label set not closed with '}'"
                                : "expected ',' or '}' after the value of label '%s'",
                   lname);
    }
    if (keep)
        p->nlabels = count;
    return 0;
}

static bool ieq(const char *s, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(s, word, n) == 0;
}

int promtext_value(const char *s, size_t n, double *out)
{
    if (!s || n == 0 || n > VALUE_MAX)
        return -EINVAL;
    size_t i = s[0] == '+' || s[0] == '-' ? 1 : 0;
    bool neg = s[0] == '-';
    if (ieq(s + i, n - i, "inf") || ieq(s + i, n - i, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    if (ieq(s + i, n - i, "nan")) {
        *out = NAN;
        return 0;
    }
    size_t digits = 0, j = i;
    while (j < n && s[j] >= '0' && s[j] <= '9')
        j++, digits++;
    if (j < n && s[j] == '.')
        for (j++; j < n && s[j] >= '0' && s[j] <= '9'; j++)
            digits++;
    if (digits == 0)
        return -EINVAL;
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        j++;
        if (j < n && (s[j] == '+' || s[j] == '-'))
            j++;
        size_t ed = 0;
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++, ed++;
        if (ed == 0)
            return -EINVAL;
    }
    if (j != n)
        return -EINVAL;
    char buf[VALUE_MAX + 1];
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, NULL); /* out of range: ±HUGE_VAL (±Inf) or 0 */
    return 0;
}

/* A whitespace-delimited token at c. */
static size_t take_token(struct cur *c, const char **tok)
{
    *tok = c->s;
    while (c->s < c->e && *c->s != ' ' && *c->s != '\t')
        c->s++;
    return (size_t)(c->s - *tok);
}

/* A timestamp token at c: 0.0.4 in ms, OpenMetrics in seconds; into seconds. */
static int take_timestamp(struct parser *p, struct cur *c, double *ts)
{
    const char *t;
    size_t n = take_token(c, &t);
    if (promtext_value(t, n, ts) < 0 || !isfinite(*ts))
        return bad(p, "bad timestamp '%.*s'", (int)(n > 40 ? 40 : n), t);
    if (!p->om)
        *ts /= 1000.0;
    return 0;
}

/* An OpenMetrics exemplar at c (on the '#'): `# {labels} value [timestamp]`. */
static int take_exemplar(struct parser *p, struct cur *c)
{
    c->s++;
    blanks(c);
    if (c->s >= c->e || *c->s != '{')
        return bad(p, "expected an exemplar '# {...} value' after the value");
    if (take_labels(p, c, false) < 0)
        return -1;
    blanks(c);
    const char *t;
    size_t n = take_token(c, &t);
    double v;
    if (promtext_value(t, n, &v) < 0)
        return bad(p, "bad exemplar value '%.*s'", (int)(n > 40 ? 40 : n), t);
    blanks(c);
    if (c->s < c->e && take_timestamp(p, c, &v) < 0)
        return -1;
    return 0;
}

static const struct prom_label *label_find(const struct parser *p, const char *name)
{
    for (size_t i = 0; i < p->nlabels; i++)
        if (strcmp(p->labels[i].name, name) == 0)
            return &p->labels[i];
    return NULL;
}

/* The parts a family of type t has, by the suffix added to the family's name. */
struct suffix {
    const char *sfx;
    enum prom_part part;
};

static const struct suffix *suffixes(enum prom_type t)
{
    static const struct suffix counter[] = {
        {"_total", PROM_PART_TOTAL}, {"_created", PROM_PART_CREATED}, {"", PROM_PART_TOTAL}, {0}};
    static const struct suffix histogram[] = {{"_bucket", PROM_PART_BUCKET},
                                              {"_sum", PROM_PART_SUM},
                                              {"_count", PROM_PART_COUNT},
                                              {"_created", PROM_PART_CREATED},
                                              {0}};
    static const struct suffix ghistogram[] = {{"_bucket", PROM_PART_BUCKET},
                                               {"_gsum", PROM_PART_GSUM},
                                               {"_gcount", PROM_PART_GCOUNT},
                                               {0}};
    static const struct suffix summary[] = {{"", PROM_PART_QUANTILE},
                                            {"_sum", PROM_PART_SUM},
                                            {"_count", PROM_PART_COUNT},
                                            {"_created", PROM_PART_CREATED},
                                            {0}};
    static const struct suffix info[] = {{"_info", PROM_PART_INFO}, {"", PROM_PART_VALUE}, {0}};
    static const struct suffix plain[] = {{"", PROM_PART_VALUE}, {0}};
    switch (t) {
    case PROM_COUNTER:
        return counter;
    case PROM_HISTOGRAM:
        return histogram;
    case PROM_GAUGEHISTOGRAM:
        return ghistogram;
    case PROM_SUMMARY:
        return summary;
    case PROM_INFO:
        return info;
    default:
        return plain;
    }
}

/* Sets the sample's family, type and part: the current TYPE family when the
 * name is one of its samples, else a family of its own without a type. */
static int classify(struct parser *p, struct prom_sample *s)
{
    size_t fl = p->has_family ? strlen(p->family) : 0;
    s->family = s->name;
    s->type = p->om ? PROM_UNKNOWN : PROM_UNTYPED;
    s->part = PROM_PART_VALUE;
    if (p->has_family && strncmp(s->name, p->family, fl) == 0) {
        for (const struct suffix *x = suffixes(p->ftype); x->sfx; x++)
            if (strcmp(s->name + fl, x->sfx) == 0) {
                s->family = p->family;
                s->type = p->ftype;
                s->part = x->part;
                break;
            }
    }
    const struct prom_label *l;
    double v;
    if (s->part == PROM_PART_BUCKET) {
        if (!(l = label_find(p, "le")))
            return bad(p, "histogram bucket '%.60s' without an 'le' label", s->name);
        if (promtext_value(l->value, l->value_len, &v) < 0 || isnan(v))
            return bad(p, "bad 'le' value '%.40s'", l->value);
    } else if (s->part == PROM_PART_QUANTILE) {
        if (!(l = label_find(p, "quantile")))
            return bad(p, "summary sample '%.60s' without a 'quantile' label", s->name);
        if (promtext_value(l->value, l->value_len, &v) < 0 || !(v >= 0 && v <= 1))
            return bad(p, "bad 'quantile' value '%.40s'", l->value);
    }
    return 0;
}

/* A sample line: name [labels] value [timestamp] [exemplar]. 0 parsed (the
 * callback's negative value in p->stop), -1 bad. */
static int sample_line(struct parser *p, struct cur *c)
{
    const char *ns = c->s;
    size_t nl = take_name(c, true);
    if (nl == 0)
        return bad(p, "expected a metric name");
    struct prom_sample s = {.line = p->lineno};
    if (!(s.name = put(p, ns, nl)))
        return bad(p, "line too long");
    p->nlabels = 0;
    bool sep = at_blank(c);
    blanks(c);
    if (c->s < c->e && *c->s == '{') {
        if (take_labels(p, c, true) < 0)
            return -1;
        sep = at_blank(c);
        blanks(c);
    }
    if (c->s >= c->e)
        return bad(p, "no value after '%.60s'", s.name);
    if (!sep)
        return bad(p, "expected a blank after the name or labels of '%.60s'", s.name);
    const char *t;
    size_t n = take_token(c, &t);
    if (n == 0)
        return bad(p, "no value after '%.60s'", s.name);
    if (promtext_value(t, n, &s.value) < 0)
        return bad(p, "bad value '%.*s'", (int)(n > 40 ? 40 : n), t);
    blanks(c);
    if (c->s < c->e && *c->s != '#') {
        if (take_timestamp(p, c, &s.timestamp) < 0)
            return -1;
        s.has_timestamp = true;
        blanks(c);
    }
    if (c->s < c->e && *c->s == '#' && take_exemplar(p, c) < 0)
        return -1;
    blanks(c);
    if (c->s < c->e)
        return bad(p, "unexpected text after the value of '%.60s'", s.name);
    if (classify(p, &s) < 0)
        return -1;
    s.labels = p->labels;
    s.nlabels = p->nlabels;
    if (p->st)
        p->st->samples++;
    int r = p->fn ? p->fn(&s, p->ud) : 0;
    if (r < 0)
        p->stop = r;
    return 0;
}

static const char *const type_names[] = {
    [PROM_UNTYPED] = "untyped", [PROM_COUNTER] = "counter",
    [PROM_GAUGE] = "gauge",     [PROM_HISTOGRAM] = "histogram",
    [PROM_SUMMARY] = "summary", [PROM_GAUGEHISTOGRAM] = "gaugehistogram",
    [PROM_INFO] = "info",       [PROM_STATESET] = "stateset",
    [PROM_UNKNOWN] = "unknown",
};

const char *prom_type_name(enum prom_type t)
{
    return (unsigned)t < SONDE_ARRAY_LEN(type_names) ? type_names[t] : "?";
}

const char *prom_part_name(enum prom_part part)
{
    static const char *const names[] = {
        [PROM_PART_VALUE] = "value",       [PROM_PART_TOTAL] = "total",
        [PROM_PART_CREATED] = "created",   [PROM_PART_BUCKET] = "bucket",
        [PROM_PART_SUM] = "sum",           [PROM_PART_COUNT] = "count",
        [PROM_PART_GSUM] = "gsum",         [PROM_PART_GCOUNT] = "gcount",
        [PROM_PART_QUANTILE] = "quantile", [PROM_PART_INFO] = "info",
    };
    return (unsigned)part < SONDE_ARRAY_LEN(names) ? names[part] : "?";
}

/* `# TYPE name type`: the family the next samples belong to. */
static int type_line(struct parser *p, struct cur *c)
{
    p->has_family = false;
    if (!at_blank(c))
        return bad(p, "TYPE without a metric name");
    blanks(c);
    const char *ns = c->s;
    size_t nl = take_name(c, true);
    if (nl == 0)
        return bad(p, "TYPE without a metric name");
    if (!at_blank(c))
        return bad(p, "TYPE of '%.*s' without a type", (int)(nl > 60 ? 60 : nl), ns);
    blanks(c);
    const char *t;
    size_t tl = take_token(c, &t);
    blanks(c);
    if (c->s < c->e)
        return bad(p, "unexpected text after the TYPE of '%.*s'", (int)(nl > 60 ? 60 : nl), ns);
    for (size_t i = 0; i < SONDE_ARRAY_LEN(type_names); i++)
        if (tl == strlen(type_names[i]) && memcmp(t, type_names[i], tl) == 0) {
            memcpy(p->family, ns, nl);
            p->family[nl] = '\0';
            p->ftype = (enum prom_type)i;
            p->has_family = true;
            return 0;
        }
    return bad(p, "unknown type '%.*s' for '%.*s'", (int)(tl > 30 ? 30 : tl), t,
               (int)(nl > 60 ? 60 : nl), ns);
}

/* A line starting with '#': TYPE sets the family, EOF ends the document (1),
 * HELP needs a name; UNIT and other comments are ignored. */
static int comment_line(struct parser *p, struct cur *c)
{
    c->s++;
    if (!at_blank(c))
        return 0; /* "#text": a plain comment */
    blanks(c);
    const char *w;
    size_t wl = take_token(c, &w);
    if (wl == 4 && memcmp(w, "TYPE", 4) == 0)
        return type_line(p, c);
    if (wl == 3 && memcmp(w, "EOF", 3) == 0) {
        blanks(c);
        return c->s < c->e ? 0 : 1;
    }
    if (wl == 4 && memcmp(w, "HELP", 4) == 0) {
        blanks(c);
        if (take_name(c, true) == 0)
            return bad(p, "HELP without a metric name");
    }
    return 0;
}

/* One line [s, e) without its newline: 0, 1 at `# EOF`, -1 bad. */
static int one_line(struct parser *p, const char *s, const char *e)
{
    if ((size_t)(e - s) > PROMTEXT_MAX_LINE)
        return bad(p, "line longer than %zu KiB", PROMTEXT_MAX_LINE >> 10);
    if (e > s && e[-1] == '\r')
        e--;
    if (memchr(s, '\0', (size_t)(e - s)))
        return bad(p, "NUL byte in the line");
    struct cur c = {s, e};
    p->sused = 0;
    blanks(&c);
    if (c.s >= c.e)
        return 0;
    if (*c.s == '#')
        return comment_line(p, &c);
    return sample_line(p, &c);
}

/* After `# EOF`: anything but blank lines is one bad line. */
static void after_eof(struct parser *p, const char *s, const char *end)
{
    size_t line = p->lineno + 1;
    for (; s < end; s++) {
        if (*s == '\n')
            line++;
        else if (*s != ' ' && *s != '\t' && *s != '\r') {
            p->st->bad_lines++;
            if (!p->st->error[0])
                snprintf(p->st->error, sizeof(p->st->error), "line %zu: text after '# EOF'", line);
            return;
        }
    }
}

bool promtext_is_openmetrics(const char *content_type)
{
    const char *m = "application/openmetrics-text";
    size_t n = strlen(m);
    if (!content_type)
        return false;
    while (*content_type == ' ')
        content_type++;
    return strncasecmp(content_type, m, n) == 0 &&
           (content_type[n] == '\0' || content_type[n] == ';' || content_type[n] == ' ');
}

int promtext_parse(const char *text, size_t len, bool openmetrics, prom_sample_fn fn, void *ud,
                   struct prom_stats *stats)
{
    struct prom_stats dummy;
    struct parser p = {.om = openmetrics, .fn = fn, .ud = ud, .st = stats ? stats : &dummy};
    memset(p.st, 0, sizeof(*p.st));
    size_t line_max = len < PROMTEXT_MAX_LINE ? len : PROMTEXT_MAX_LINE;
    p.scap = line_max + 2 * PROMTEXT_MAX_LABELS + 8;
    p.scratch = xmalloc(p.scap);
    p.family = xmalloc(line_max + 1);
    const char *s = text, *end = text + len;
    int r = 0;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        p.lineno++;
        p.st->lines++;
        int k = one_line(&p, s, e);
        s = nl ? nl + 1 : end;
        if (k == 1) {
            p.st->eof = true;
            after_eof(&p, s, end);
            break;
        }
        if (k < 0) {
            p.st->bad_lines++;
            if (!p.st->error[0])
                snprintf(p.st->error, sizeof(p.st->error), "line %zu: %s", p.lineno, p.why);
        }
        if (p.stop < 0) {
            r = p.stop;
            break;
        }
    }
    free(p.scratch);
    free(p.family);
    return r;
}
