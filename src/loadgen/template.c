/* template.c — per-request text templates (see template.h). Parsed once into
 * parts (literal runs and variables); a render appends the parts, so the hot
 * path is a few memcpy()s and integer formatting, no parsing. */
#include "loadgen/template.h"

#include "util/rng.h"
#include "util/util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARTS_MAX  4096
#define DIGITS_MAX 20 /* 2^64 - 1 */
#define SIGNED_MAX 20 /* "-9223372036854775808" */
#define UUID_LEN   36

enum part_kind { P_LIT, P_COUNTER, P_RANDOM, P_RANGE, P_UUID };

struct part {
    enum part_kind kind;
    size_t off, len; /* P_LIT: bytes of the owned text */
    int64_t lo;      /* P_RANGE */
    uint64_t span;   /* P_RANGE: HI - LO + 1, 0 for the whole 64-bit range */
};

struct tmpl {
    char *text;
    struct part *parts;
    size_t n, cap, vars, max_len;
};

static void add_part(struct tmpl *t, struct part p)
{
    if (p.kind == P_LIT && p.len == 0)
        return;
    if (p.kind == P_LIT && t->n > 0 && t->parts[t->n - 1].kind == P_LIT &&
        t->parts[t->n - 1].off + t->parts[t->n - 1].len == p.off) {
        t->parts[t->n - 1].len += p.len; /* contiguous literal text */
        t->max_len += p.len;
        return;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 8;
        t->parts = xrealloc(t->parts, t->cap * sizeof(*t->parts));
    }
    t->parts[t->n++] = p;
    t->vars += p.kind != P_LIT;
    t->max_len += p.kind == P_LIT     ? p.len
                  : p.kind == P_UUID  ? UUID_LEN
                  : p.kind == P_RANGE ? SIGNED_MAX
                                      : DIGITS_MAX;
}

/* Strict signed decimal over exactly [s, s + n). */
static bool parse_i64(const char *s, size_t n, int64_t *out)
{
    char buf[32];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || end == buf || buf[0] == ' ' || buf[0] == '+')
        return false;
    *out = v;
    return true;
}

/* Parses the variable name (and arguments) in [s, s + n), spaces trimmed. */
static int parse_var(const char *s, size_t n, struct part *p, char *err, size_t errlen, size_t at)
{
    while (n && *s == ' ')
        s++, n--;
    while (n && s[n - 1] == ' ')
        n--;
    *p = (struct part){0};
    if (n == 7 && !memcmp(s, "counter", 7))
        p->kind = P_COUNTER;
    else if (n == 6 && !memcmp(s, "random", 6))
        p->kind = P_RANDOM;
    else if (n == 4 && !memcmp(s, "uuid", 4))
        p->kind = P_UUID;
    else if (n > 7 && !memcmp(s, "random:", 7)) {
        const char *a = s + 7, *colon = memchr(a, ':', n - 7);
        int64_t lo = 0, hi = 0;
        if (!colon || !parse_i64(a, (size_t)(colon - a), &lo) ||
            !parse_i64(colon + 1, (size_t)(s + n - colon - 1), &hi) || hi < lo) {
            snprintf(err, errlen,
                     "at offset %zu: expected {{random:LO:HI}} with integers LO <= HI, got "
                     "'{{%.*s}}'",
                     at, (int)(n > 60 ? 60 : n), s);
            return -EINVAL;
        }
        p->kind = P_RANGE;
        p->lo = lo;
        p->span = (uint64_t)hi - (uint64_t)lo + 1; /* wraps to 0 for the whole range */
    } else {
        snprintf(err, errlen,
                 "at offset %zu: unknown variable '{{%.*s}}' (known: {{counter}}, {{random}}, "
                 "{{random:LO:HI}}, {{uuid}}; write {{{{ for a literal {{)",
                 at, (int)(n > 60 ? 60 : n), s);
        return -EINVAL;
    }
    return 0;
}

int tmpl_parse(const char *text, size_t len, struct tmpl **out, char *err, size_t errlen)
{
    struct tmpl *t = xcalloc(1, sizeof(*t));
    t->text = xmalloc(len + 1);
    memcpy(t->text, text, len);
    t->text[len] = '\0';
    size_t i = 0, lit = 0;
    int rc = 0;
    while (rc == 0 && i + 1 < len) {
        if (text[i] != '{' || text[i + 1] != '{') {
            i++;
            continue;
        }
        add_part(t, (struct part){.kind = P_LIT, .off = lit, .len = i - lit});
        if (i + 3 < len && text[i + 2] == '{' && text[i + 3] == '{') {
            add_part(t, (struct part){.kind = P_LIT, .off = i, .len = 2});
            i += 4;
            lit = i;
            continue;
        }
        const char *close = NULL;
        for (size_t j = i + 2; j + 1 < len && !close; j++)
            if (text[j] == '}' && text[j + 1] == '}')
                close = text + j;
        struct part p;
        if (!close) {
            snprintf(err, errlen, "at offset %zu: '{{' without a closing '}}'", i);
            rc = -EINVAL;
        } else if ((rc = parse_var(text + i + 2, (size_t)(close - text - i - 2), &p, err, errlen,
                                   i)) == 0) {
            add_part(t, p);
            i = (size_t)(close - text) + 2;
            lit = i;
        }
        if (rc == 0 && t->n > PARTS_MAX) {
            snprintf(err, errlen, "more than %d variables and literal runs", PARTS_MAX);
            rc = -EINVAL;
        }
    }
    if (rc < 0) {
        tmpl_free(t);
        return rc;
    }
    add_part(t, (struct part){.kind = P_LIT, .off = lit, .len = len - lit});
    *out = t;
    return 0;
}

size_t tmpl_vars(const struct tmpl *t)
{
    return t->vars;
}

size_t tmpl_max_len(const struct tmpl *t)
{
    return t->max_len;
}

/* Decimal digits of v, right-aligned in buf[DIGITS_MAX]; returns the first. */
static char *u64_dec(uint64_t v, char *end)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

/* Uniform in [0, span) without modulo bias (Lemire's multiply-and-reject). */
static uint64_t bounded(struct rng *r, uint64_t span)
{
    __extension__ typedef unsigned __int128 u128;
    u128 m = (u128)rng_next(r) * span;
    uint64_t low = (uint64_t)m;
    if (low < span) {
        uint64_t floor = -span % span;
        while (low < floor) {
            m = (u128)rng_next(r) * span;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

static size_t put_uuid(struct rng *r, char *out)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    uint64_t x = rng_next(r), y = rng_next(r);
    memcpy(b, &x, 8);
    memcpy(b + 8, &y, 8);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    return o;
}

int tmpl_render(const struct tmpl *t, uint64_t counter, struct rng *rng, struct sbuf *out)
{
    size_t old = out->len;
    int rc = 0;
    for (size_t i = 0; i < t->n && rc == 0; i++) {
        const struct part *p = &t->parts[i];
        char buf[UUID_LEN + 1], *end = buf + sizeof(buf), *s = end;
        switch (p->kind) {
        case P_LIT:
            rc = sbuf_add(out, t->text + p->off, p->len);
            continue;
        case P_COUNTER:
            s = u64_dec(counter, end);
            break;
        case P_RANDOM:
            s = u64_dec(rng_next(rng), end);
            break;
        case P_RANGE: {
            uint64_t v = (uint64_t)p->lo + (p->span ? bounded(rng, p->span) : rng_next(rng));
            int64_t sv = (int64_t)v;
            s = u64_dec(sv < 0 ? 0 - v : v, end); /* magnitude, two's complement */
            if (sv < 0)
                *--s = '-';
            break;
        }
        case P_UUID:
            s = buf;
            end = buf + put_uuid(rng, buf);
            break;
        }
        rc = sbuf_add(out, s, (size_t)(end - s));
    }
    if (rc) {
        out->len = old;
        if (out->s)
            out->s[old] = '\0';
    }
    return rc;
}

void tmpl_free(struct tmpl *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->parts);
    free(t);
}
