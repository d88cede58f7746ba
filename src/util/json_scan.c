/* json_scan.c — a validating JSON scanner that allocates nothing (json_scan.h). */
#include "util/json_scan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JS_MAX_DEPTH 2048 /* values nested, the top one at 1 (jansson's limit) */

struct sc {
    const char *p, *end;
    const struct js_paths *set; /* NULL: no paths */
    struct js_found *found;
};

/* Bytes that stand for themselves inside a string: printable ASCII but '"' and '\\'. */
/* clang-format off */
static const unsigned char js_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
/* clang-format on */

static void ws(struct sc *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p (p + 4 <= end checked by the caller): the value or -1. */
static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* One UTF-8 sequence at p (first byte >= 0x80): its length, or 0 when invalid
 * (overlong, a surrogate, above U+10FFFF, cut short). */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned long v;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        v = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        v = c & 0x07;
    } else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) ||
        (v >= 0xd800 && v <= 0xdfff))
        return 0;
    return n;
}

/* A \uXXXX escape (and its low surrogate) at p, just after the backslash: the
 * bytes it spans from the 'u' (5 or 11), its code point in *cp; 0 if invalid. */
static size_t u_escape(const char *p, const char *end, unsigned long *cp)
{
    if (end - p < 5)
        return 0;
    long v = hex4(p + 1);
    if (v <= 0 || (v >= 0xdc00 && v <= 0xdfff)) /* \u0000 or a lone low surrogate */
        return 0;
    if (v < 0xd800 || v > 0xdbff) {
        *cp = (unsigned long)v;
        return 5;
    }
    if (end - p < 11 || p[5] != '\\' || p[6] != 'u')
        return 0;
    long lo = hex4(p + 7);
    if (lo < 0xdc00 || lo > 0xdfff)
        return 0;
    *cp = 0x10000 + (((unsigned long)v - 0xd800) << 10) + ((unsigned long)lo - 0xdc00);
    return 11;
}

/* A string at s->p (on its opening quote): its raw bytes, and whether it has
 * escapes. 0 or -1. */
static int scan_string(struct sc *s, const char **raw, size_t *len, bool *esc)
{
    const char *p = s->p + 1;
    *esc = false;
    while (p < s->end) {
        while (p < s->end && js_plain[(unsigned char)*p]) /* the common bytes, fast */
            p++;
        if (p >= s->end)
            break;
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *raw = s->p + 1;
            *len = (size_t)(p - *raw);
            s->p = p + 1;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            *esc = true;
            if (p + 1 >= s->end)
                return -1;
            char e = p[1];
            unsigned long cp;
            if (e == 'u') {
                size_t n = u_escape(p + 1, s->end, &cp);
                if (!n)
                    return -1;
                p += 1 + n;
            } else if (strchr("\"\\/bfnrt", e) && e) {
                p += 2;
            } else
                return -1;
        } else if (c >= 0x80) {
            size_t n = utf8_seq((const unsigned char *)p, (const unsigned char *)s->end);
            if (!n)
                return -1;
            p += n;
        } else
            p++;
    }
    return -1;
}

/* Whether the raw (already validated) string equals key[0, klen) once decoded. */
static bool key_equal(const char *raw, size_t len, bool esc, const char *key, size_t klen)
{
    if (!esc)
        return klen == len && (len == 0 || raw[0] == key[0]) && memcmp(raw, key, len) == 0;
    const char *p = raw, *end = raw + len;
    const unsigned char *k = (const unsigned char *)key, *kend = k + klen;
    while (p < end) {
        unsigned char buf[4];
        size_t n = 1;
        if (*p != '\\') {
            buf[0] = (unsigned char)*p++;
        } else if (p[1] != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            buf[0] = (unsigned char)to[strchr(from, p[1]) - from];
            p += 2;
        } else {
            unsigned long cp = 0;
            p += 1 + u_escape(p + 1, end, &cp);
            if (cp < 0x80)
                buf[0] = (unsigned char)cp;
            else if (cp < 0x800) {
                buf[0] = (unsigned char)(0xc0 | (cp >> 6));
                buf[1] = (unsigned char)(0x80 | (cp & 0x3f));
                n = 2;
            } else if (cp < 0x10000) {
                buf[0] = (unsigned char)(0xe0 | (cp >> 12));
                buf[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                buf[2] = (unsigned char)(0x80 | (cp & 0x3f));
                n = 3;
            } else {
                buf[0] = (unsigned char)(0xf0 | (cp >> 18));
                buf[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
                buf[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                buf[3] = (unsigned char)(0x80 | (cp & 0x3f));
                n = 4;
            }
        }
        for (size_t i = 0; i < n; i++, k++)
            if (k == kend || *k != buf[i])
                return false;
    }
    return k == kend;
}

/* A number at s->p: JS_INTEGER (within int64, in *iv) or JS_REAL (finite), or
 * JS_NONE when malformed or out of range. */
static enum js_type scan_number(struct sc *s, int64_t *iv)
{
    const char *start = s->p, *p = s->p;
    bool neg = p < s->end && *p == '-';
    p += neg;
    if (p >= s->end || *p < '0' || *p > '9')
        return JS_NONE;
    uint64_t mag = 0;
    bool big = false;
    if (*p == '0')
        p++;
    else
        for (; p < s->end && *p >= '0' && *p <= '9'; p++) {
            unsigned d = (unsigned)(*p - '0');
            big = big || mag > (UINT64_MAX - d) / 10;
            mag = mag * 10 + d;
        }
    bool real = false;
    if (p < s->end && *p == '.') {
        real = true;
        if (++p >= s->end || *p < '0' || *p > '9')
            return JS_NONE;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        if (p < s->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= s->end || *p < '0' || *p > '9')
            return JS_NONE;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < s->end && *p >= '0' && *p <= '9') /* "01" */
        return JS_NONE;
    s->p = p;
    if (!real) {
        if (big || mag > (uint64_t)INT64_MAX + neg)
            return JS_NONE;
        *iv = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        return JS_INTEGER;
    }
    /* a real: finite once converted (strtod needs a terminated copy) */
    size_t n = (size_t)(p - start);
    char small[128], *buf = n < sizeof(small) ? small : malloc(n + 1);
    if (!buf)
        return JS_NONE;
    memcpy(buf, start, n);
    buf[n] = '\0';
    errno = 0;
    double v = strtod(buf, NULL);
    bool over = errno == ERANGE && (v > 1 || v < -1);
    if (buf != small)
        free(buf);
    return over ? JS_NONE : JS_REAL;
}

#define NODE_NONE 0 /* no path goes on from here */
#define NODE_ROOT 1

/* The child of node that key (or index, when raw is NULL) continues, or NODE_NONE. */
static int child(const struct sc *s, int node, const char *raw, size_t len, bool esc, size_t index)
{
    const struct js_paths *set = s->set;
    if (node == NODE_NONE)
        return NODE_NONE;
    for (int c = set->node[node].child; c != NODE_NONE; c = set->node[c].next) {
        const struct js_node *n = &set->node[c];
        if (raw ? n->is_key && key_equal(raw, len, esc, n->key, n->len)
                : !n->is_key && n->index == index)
            return c;
    }
    return NODE_NONE;
}

static enum js_type scan_value(struct sc *s, int nest, int node);

static int scan_object(struct sc *s, int nest, int node)
{
    s->p++; /* { */
    ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        const char *raw;
        size_t len;
        bool esc;
        if (s->p >= s->end || *s->p != '"' || scan_string(s, &raw, &len, &esc) < 0)
            return -1;
        ws(s);
        if (s->p >= s->end || *s->p != ':')
            return -1;
        s->p++;
        int c = child(s, node, raw, len, esc, 0);
        if (c != NODE_NONE) /* a repeated key: the last one wins, for the paths under it too */
            for (uint32_t m = s->set->node[c].under; m; m &= m - 1)
                s->found[__builtin_ctz(m)].type = JS_NONE;
        if (scan_value(s, nest + 1, c) == JS_NONE)
            return -1;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            ws(s);
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return 0;
        }
        return -1;
    }
}

static int scan_array(struct sc *s, int nest, int node)
{
    s->p++; /* [ */
    ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return 0;
    }
    for (size_t k = 0;; k++) {
        if (scan_value(s, nest + 1, child(s, node, NULL, 0, false, k)) == JS_NONE)
            return -1;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            return 0;
        }
        return -1;
    }
}

static bool literal(struct sc *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return false;
    s->p += n;
    return true;
}

/* The value at s->p (after whitespace), nest values deep (the top one at 1);
 * node: where it sits in the path tree (NODE_NONE: on no path). */
static enum js_type scan_value(struct sc *s, int nest, int node)
{
    ws(s);
    if (nest > JS_MAX_DEPTH || s->p >= s->end)
        return JS_NONE;
    const char *raw = NULL;
    size_t len = 0;
    int64_t iv = 0;
    enum js_type t;
    bool esc;
    switch (*s->p) {
    case '{':
        t = scan_object(s, nest, node) < 0 ? JS_NONE : JS_OBJECT;
        break;
    case '[':
        t = scan_array(s, nest, node) < 0 ? JS_NONE : JS_ARRAY;
        break;
    case '"':
        t = scan_string(s, &raw, &len, &esc) < 0 ? JS_NONE : JS_STRING;
        break;
    case 't':
        t = literal(s, "true") ? JS_TRUE : JS_NONE;
        break;
    case 'f':
        t = literal(s, "false") ? JS_FALSE : JS_NONE;
        break;
    case 'n':
        t = literal(s, "null") ? JS_NULL : JS_NONE;
        break;
    default:
        t = scan_number(s, &iv);
    }
    if (t != JS_NONE && node != NODE_NONE)
        for (uint32_t m = s->set->node[node].ends; m; m &= m - 1)
            s->found[__builtin_ctz(m)] = (struct js_found){t, raw, len, iv};
    return t;
}

enum js_type js_scan(const char *text, size_t len, const struct js_paths *set,
                     struct js_found *found)
{
    struct sc s = {text, text + len, set, found};
    int n = set ? set->npaths : 0;
    for (int i = 0; i < n; i++)
        found[i] = (struct js_found){0};
    ws(&s);
    if (s.p >= s.end || (*s.p != '{' && *s.p != '['))
        return JS_NONE;
    enum js_type t = scan_value(&s, 1, set ? NODE_ROOT : NODE_NONE);
    ws(&s);
    if (t == JS_NONE || s.p != s.end) {
        for (int i = 0; i < n; i++)
            found[i] = (struct js_found){0};
        return JS_NONE;
    }
    return t;
}

/* The child of node for segment g of path i, added when new. */
static int add_child(struct js_paths *set, int node, int i, const struct js_seg *g)
{
    const char *key = set->path[i].text + g->off;
    uint16_t *link = &set->node[node].child;
    for (; *link != NODE_NONE; link = &set->node[*link].next) {
        const struct js_node *c = &set->node[*link];
        if (c->is_key == g->is_key &&
            (g->is_key ? c->len == g->len && !memcmp(c->key, key, g->len) : c->index == g->index))
            return *link;
    }
    int c = set->nnodes++;
    set->node[c] = (struct js_node){.len = g->len, .is_key = g->is_key, .index = g->index};
    if (g->is_key)
        memcpy(set->node[c].key, key, g->len);
    *link = (uint16_t)c;
    return c;
}

int js_paths_init(struct js_paths *set, const char *const *texts, int n)
{
    memset(set, 0, sizeof(*set));
    if (n < 0 || n > JS_MAX_PATHS)
        return -EINVAL;
    set->npaths = n;
    set->nnodes = NODE_ROOT + 1;
    for (int i = 0; i < n; i++) {
        struct js_path *p = &set->path[i];
        if (js_path_parse(texts[i], p) < 0)
            return -EINVAL;
        int node = NODE_ROOT;
        set->node[node].under |= 1u << i;
        for (int k = 0; k < p->nseg; k++) {
            node = add_child(set, node, i, &p->seg[k]);
            set->node[node].under |= 1u << i;
        }
        set->node[node].ends |= 1u << i;
    }
    return 0;
}

int js_path_parse(const char *text, struct js_path *p)
{
    memset(p, 0, sizeof(*p));
    size_t tl = strlen(text);
    if (tl == 0 || tl >= sizeof(p->text))
        return -EINVAL;
    memcpy(p->text, text, tl + 1);
    const char *q = p->text;
    while (*q) {
        if (p->nseg == JS_MAX_SEGS)
            return -EINVAL;
        struct js_seg *g = &p->seg[p->nseg++];
        if (*q == '[') {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(q + 1, &end, 10);
            if (end == q + 1 || *end != ']' || errno || q[1] < '0' || q[1] > '9')
                return -EINVAL;
            g->index = (size_t)v;
            q = end + 1;
        } else {
            size_t n = strcspn(q, ".[]");
            if (n == 0)
                return -EINVAL;
            *g = (struct js_seg){
                .is_key = true, .off = (unsigned char)(q - p->text), .len = (unsigned char)n};
            q += n;
        }
        if (*q == '.' && q[1] && q[1] != '.' && q[1] != '[')
            q++;
        else if (*q && *q != '[')
            return -EINVAL;
    }
    return 0;
}
