/* sigv4.c — AWS Signature Version 4 (see sigv4.h).
 *
 * HMAC-SHA256 is built here from SHA-256 (RFC 2104) so that one fetched
 * EVP_MD and one EVP_MD_CTX per thread serve every request: OpenSSL's
 * one-shot helpers look the algorithm up and allocate a context on every
 * call, which would cost more than the hashing itself. */
#include "util/sigv4.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>

#define SHA256_LEN   32
#define SHA256_BLOCK 64

static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";
static const char algorithm[] = "AWS4-HMAC-SHA256";
static const char terminator[] = "aws4_request";

/* ---- SHA-256 and HMAC ---------------------------------------------------- */

static const EVP_MD *sha256_md;
static pthread_key_t ctx_key;
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;

static void crypto_fail(const char *what)
{
    fprintf(stderr, "sonde: sigv4: %s failed\n", what);
    abort();
}

static void ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void crypto_init(void)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
#else
    sha256_md = EVP_sha256();
#endif
    if (!sha256_md)
        crypto_fail("fetching SHA-256");
    if (pthread_key_create(&ctx_key, ctx_free) != 0)
        crypto_fail("pthread_key_create");
}

/* This thread's digest context, created on first use, freed at thread exit. */
static EVP_MD_CTX *md_ctx(void)
{
    pthread_once(&crypto_once, crypto_init);
    EVP_MD_CTX *ctx = pthread_getspecific(ctx_key);
    if (!ctx) {
        ctx = EVP_MD_CTX_new();
        if (!ctx || pthread_setspecific(ctx_key, ctx) != 0)
            crypto_fail("creating a digest context");
    }
    return ctx;
}

/* SHA-256 of a[0..an) followed by b[0..bn). */
static void sha256_2(const void *a, size_t an, const void *b, size_t bn,
                     unsigned char out[SHA256_LEN])
{
    EVP_MD_CTX *ctx = md_ctx();
    if (EVP_DigestInit_ex(ctx, sha256_md, NULL) != 1 || EVP_DigestUpdate(ctx, a, an) != 1 ||
        (bn && EVP_DigestUpdate(ctx, b, bn) != 1) || EVP_DigestFinal_ex(ctx, out, NULL) != 1)
        crypto_fail("SHA-256");
}

/* HMAC-SHA256 (RFC 2104). out may alias key; it must not alias msg. */
static void hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                        unsigned char out[SHA256_LEN])
{
    unsigned char k[SHA256_BLOCK] = {0}, pad[SHA256_BLOCK], inner[SHA256_LEN];
    if (klen > SHA256_BLOCK)
        sha256_2(key, klen, NULL, 0, k);
    else
        memcpy(k, key, klen);
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        pad[i] = k[i] ^ 0x36;
    sha256_2(pad, sizeof(pad), msg, mlen, inner);
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        pad[i] = k[i] ^ 0x5c;
    sha256_2(pad, sizeof(pad), inner, sizeof(inner), out);
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(inner, sizeof(inner));
}

static void hex_encode(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_lower[p[i] >> 4];
        out[2 * i + 1] = hex_lower[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- output ------------------------------------------------------------- */

/* Batches small appends into a local buffer: one sbuf_add per few hundred
 * bytes instead of one per character. The first error sticks. */
struct emit {
    struct sbuf *b;
    size_t n;
    int err;
    char buf[512];
};

static void emit_flush(struct emit *e)
{
    if (e->n && !e->err)
        e->err = sbuf_add(e->b, e->buf, e->n);
    e->n = 0;
}

static inline void emit_c(struct emit *e, char c)
{
    if (e->n == sizeof(e->buf))
        emit_flush(e);
    e->buf[e->n++] = c;
}

static void emit_n(struct emit *e, const char *s, size_t n)
{
    if (n > sizeof(e->buf) - e->n) {
        emit_flush(e);
        if (n > sizeof(e->buf)) {
            if (!e->err)
                e->err = sbuf_add(e->b, s, n);
            return;
        }
    }
    memcpy(e->buf + e->n, s, n);
    e->n += n;
}

static void emit_s(struct emit *e, const char *s)
{
    emit_n(e, s, strlen(s));
}

/* Room for n bytes in the local buffer, to be claimed by adding to e->n;
 * NULL when n does not fit even in an empty one. */
static char *emit_room(struct emit *e, size_t n)
{
    if (n > sizeof(e->buf) - e->n) {
        emit_flush(e);
        if (n > sizeof(e->buf))
            return NULL;
    }
    return e->buf + e->n;
}

/* Drops what was appended past len (on errors, and for scratch space). */
static void sbuf_cut(struct sbuf *b, size_t len)
{
    if (b->len > len) {
        b->len = len;
        b->s[len] = '\0';
    }
}

/* ---- character classes -------------------------------------------------- */

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* RFC 9110 token characters: header names and methods. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

static bool is_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

static bool is_visible(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* Non-empty, visible ASCII without the separators of the credential scope
 * and the Authorization header. */
static bool is_scope_part(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!is_visible((unsigned char)*s) || *s == '/' || *s == ',' || *s == ';' || *s == '=')
            return false;
    return true;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* ---- percent-encoding --------------------------------------------------- */

static void emit_encoded(struct emit *e, const unsigned char *p, size_t n, bool keep_slash)
{
    for (size_t i = 0; i < n;) {
        size_t run = i;
        while (run < n && (is_unreserved(p[run]) || (p[run] == '/' && keep_slash)))
            run++;
        emit_n(e, (const char *)p + i, run - i);
        if (run == n)
            break;
        emit_c(e, '%');
        emit_c(e, hex_upper[p[run] >> 4]);
        emit_c(e, hex_upper[p[run] & 15]);
        i = run + 1;
    }
}

int sigv4_uri_encode(struct sbuf *out, const char *s, size_t n, bool keep_slash)
{
    if (!out || (!s && n))
        return -EINVAL;
    size_t base = out->len;
    struct emit e = {.b = out};
    emit_encoded(&e, (const unsigned char *)s, n, keep_slash);
    emit_flush(&e);
    if (e.err)
        sbuf_cut(out, base);
    return e.err;
}

/* Yields the canonical (decoded, then SigV4-encoded) form of a query name or
 * value one character at a time, so that parameters can be compared in their
 * encoded order without writing them anywhere first. */
struct qiter {
    const char *p, *end;
    char pend[2];
    unsigned npend;
};

static int qiter_next(struct qiter *it)
{
    if (it->npend)
        return (unsigned char)it->pend[2 - it->npend--];
    if (it->p >= it->end)
        return -1;
    unsigned char c = (unsigned char)*it->p++;
    if (c == '%' && it->end - it->p >= 2) {
        int hi = hexval((unsigned char)it->p[0]), lo = hexval((unsigned char)it->p[1]);
        if (hi >= 0 && lo >= 0) {
            c = (unsigned char)(hi << 4 | lo);
            it->p += 2;
        }
    }
    if (is_unreserved(c))
        return c;
    it->pend[0] = hex_upper[c >> 4];
    it->pend[1] = hex_upper[c & 15];
    it->npend = 2;
    return '%';
}

static int qcmp(const char *a, size_t an, const char *b, size_t bn)
{
    struct qiter x = {.p = a, .end = a + an}, y = {.p = b, .end = b + bn};
    for (;;) {
        int cx = qiter_next(&x), cy = qiter_next(&y);
        if (cx != cy)
            return cx < cy ? -1 : 1;
        if (cx < 0)
            return 0;
    }
}

/* A query name or value; plain when it holds only unreserved characters,
 * i.e. is its own canonical form (the usual case, and a cheaper one). */
struct qpart {
    const char *s;
    size_t n;
    bool plain;
};

static struct qpart qpart_of(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_unreserved((unsigned char)s[i]))
        i++;
    return (struct qpart){s, n, i == n};
}

static void emit_qpart(struct emit *e, const struct qpart *q)
{
    if (q->plain) {
        emit_n(e, q->s, q->n);
        return;
    }
    struct qiter it = {.p = q->s, .end = q->s + q->n};
    for (int c; (c = qiter_next(&it)) >= 0;)
        emit_c(e, (char)c);
}

static int qpart_cmp(const struct qpart *a, const struct qpart *b)
{
    if (a->plain && b->plain) {
        int c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
        return c ? c : (a->n > b->n) - (a->n < b->n);
    }
    return qcmp(a->s, a->n, b->s, b->n);
}

struct qparam {
    struct qpart name, value;
};

static int qparam_cmp(const struct qparam *a, const struct qparam *b)
{
    int c = qpart_cmp(&a->name, &b->name);
    return c ? c : qpart_cmp(&a->value, &b->value);
}

/* Splits query into params, sorted in canonical order. 0 or -E2BIG. */
static int query_parse(const char *query, struct qparam *qp, size_t *np)
{
    size_t n = 0;
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len) {
            if (n == SIGV4_MAX_QUERY)
                return -E2BIG;
            const char *eq = memchr(p, '=', len);
            size_t nlen = eq ? (size_t)(eq - p) : len;
            struct qparam q = {.name = qpart_of(p, nlen),
                               .value =
                                   eq ? qpart_of(eq + 1, len - nlen - 1) : qpart_of(p + len, 0)};
            size_t i = n++;
            for (; i > 0 && qparam_cmp(&qp[i - 1], &q) > 0; i--)
                qp[i] = qp[i - 1];
            qp[i] = q;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    *np = n;
    return 0;
}

/* ---- canonical request -------------------------------------------------- */

static int name_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = lower((unsigned char)*a), y = lower((unsigned char)*b);
        if (x != y || !x)
            return x < y ? -1 : x > y;
    }
}

/* Header indices sorted by lower-cased name; stable, so duplicates keep the
 * caller's order. */
struct hdr_order {
    size_t n;
    unsigned char idx[SIGV4_MAX_HEADERS];
    bool same[SIGV4_MAX_HEADERS]; /* same name as the one before */
};

static int check_canonical(const struct sigv4_req *r)
{
    if (!r || !is_token(r->method) || !r->uri || (r->n_headers && !r->headers) ||
        !r->payload_hash || !*r->payload_hash)
        return -EINVAL;
    if (r->uri[0] && r->uri[0] != '/')
        return -EINVAL;
    for (const char *p = r->uri; *p; p++)
        if (!is_visible((unsigned char)*p) || *p == '?' || *p == '#')
            return -EINVAL;
    for (const char *p = r->payload_hash; *p; p++)
        if (!is_visible((unsigned char)*p))
            return -EINVAL;
    for (size_t i = 0; i < r->n_headers; i++)
        if (!is_token(r->headers[i].name) || !r->headers[i].value)
            return -EINVAL;
    if (r->n_headers > SIGV4_MAX_HEADERS)
        return -E2BIG;
    return 0;
}

static bool is_amz_date(const char *d)
{
    if (!d)
        return false;
    for (int i = 0; i < 16; i++) {
        bool ok = i == 8 ? d[i] == 'T' : i == 15 ? d[i] == 'Z' : (d[i] >= '0' && d[i] <= '9');
        if (!ok)
            return false;
    }
    return d[16] == '\0';
}

static int check_scope(const struct sigv4_req *r)
{
    if (!is_amz_date(r->amz_date) || !is_scope_part(r->region) || !is_scope_part(r->service))
        return -EINVAL;
    return 0;
}

/* The value trimmed, each inner run of whitespace as one space. */
static void emit_value(struct emit *e, const char *v)
{
    for (bool first = true;;) {
        while (is_ws(*v))
            v++;
        if (!*v)
            return;
        const char *run = v;
        while (*v && !is_ws(*v))
            v++;
        if (!first)
            emit_c(e, ' ');
        first = false;
        emit_n(e, run, (size_t)(v - run));
    }
}

static void emit_lower(struct emit *e, const char *s)
{
    size_t n = strlen(s);
    char *p = emit_room(e, n);
    if (!p) {
        for (; *s; s++)
            emit_c(e, (char)lower((unsigned char)*s));
        return;
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (char)lower((unsigned char)s[i]);
    e->n += n;
}

static void emit_signed_headers(struct emit *e, const struct sigv4_req *r,
                                const struct hdr_order *o)
{
    for (size_t i = 0; i < o->n; i++) {
        if (o->same[i])
            continue;
        if (i > 0)
            emit_c(e, ';');
        emit_lower(e, r->headers[o->idx[i]].name);
    }
}

/* Appends the canonical request (inputs already checked) and fills o. */
static int canonical(struct sbuf *out, const struct sigv4_req *r, struct hdr_order *o)
{
    struct qparam qp[SIGV4_MAX_QUERY];
    size_t nq = 0;
    int rc = query_parse(r->query, qp, &nq);
    if (rc < 0)
        return rc;

    o->n = r->n_headers;
    for (size_t i = 0; i < o->n; i++) {
        size_t j = i;
        for (; j > 0 && name_cmp(r->headers[o->idx[j - 1]].name, r->headers[i].name) > 0; j--)
            o->idx[j] = o->idx[j - 1];
        o->idx[j] = (unsigned char)i;
    }
    for (size_t i = 0; i < o->n; i++)
        o->same[i] =
            i > 0 && name_cmp(r->headers[o->idx[i - 1]].name, r->headers[o->idx[i]].name) == 0;

    size_t base = out->len;
    struct emit e = {.b = out};
    emit_s(&e, r->method);
    emit_c(&e, '\n');
    emit_s(&e, r->uri[0] ? r->uri : "/");
    emit_c(&e, '\n');
    for (size_t i = 0; i < nq; i++) {
        if (i > 0)
            emit_c(&e, '&');
        emit_qpart(&e, &qp[i].name);
        emit_c(&e, '=');
        emit_qpart(&e, &qp[i].value);
    }
    emit_c(&e, '\n');
    for (size_t i = 0; i < o->n;) {
        const struct sigv4_header *h = &r->headers[o->idx[i]];
        emit_lower(&e, h->name);
        emit_c(&e, ':');
        emit_value(&e, h->value);
        for (i++; i < o->n && o->same[i]; i++) {
            emit_c(&e, ',');
            emit_value(&e, r->headers[o->idx[i]].value);
        }
        emit_c(&e, '\n');
    }
    emit_c(&e, '\n');
    emit_signed_headers(&e, r, o);
    emit_c(&e, '\n');
    emit_s(&e, r->payload_hash);
    emit_flush(&e);
    if (e.err)
        sbuf_cut(out, base);
    return e.err;
}

int sigv4_canonical_request(struct sbuf *out, const struct sigv4_req *r)
{
    if (!out)
        return -EINVAL;
    int rc = check_canonical(r);
    if (rc < 0)
        return rc;
    struct hdr_order o;
    return canonical(out, r, &o);
}

/* ---- string to sign, signature, header ---------------------------------- */

static void emit_scope(struct emit *e, const struct sigv4_req *r)
{
    emit_n(e, r->amz_date, 8);
    emit_c(e, '/');
    emit_s(e, r->region);
    emit_c(e, '/');
    emit_s(e, r->service);
    emit_c(e, '/');
    emit_s(e, terminator);
}

/* Appends the string to sign (inputs already checked) and fills o. */
static int string_to_sign(struct sbuf *out, const struct sigv4_req *r, struct hdr_order *o)
{
    size_t base = out->len;
    int rc = canonical(out, r, o);
    if (rc < 0)
        return rc;
    unsigned char md[SHA256_LEN];
    char hex[2 * SHA256_LEN + 1];
    sha256_2(out->s + base, out->len - base, NULL, 0, md);
    hex_encode(md, sizeof(md), hex);
    sbuf_cut(out, base);

    struct emit e = {.b = out};
    emit_s(&e, algorithm);
    emit_c(&e, '\n');
    emit_s(&e, r->amz_date);
    emit_c(&e, '\n');
    emit_scope(&e, r);
    emit_c(&e, '\n');
    emit_n(&e, hex, 2 * SHA256_LEN);
    emit_flush(&e);
    if (e.err)
        sbuf_cut(out, base);
    return e.err;
}

int sigv4_string_to_sign(struct sbuf *out, const struct sigv4_req *r)
{
    if (!out)
        return -EINVAL;
    int rc = check_canonical(r);
    if (rc == 0)
        rc = check_scope(r);
    if (rc < 0)
        return rc;
    struct hdr_order o;
    return string_to_sign(out, r, &o);
}

static int check_signature(const struct sigv4_req *r)
{
    int rc = check_canonical(r);
    if (rc == 0)
        rc = check_scope(r);
    if (rc == 0 && !r->signing_key)
        rc = -EINVAL;
    return rc;
}

/* Signature of r (inputs already checked), computed in scratch's spare room. */
static int signature(struct sbuf *scratch, const struct sigv4_req *r, struct hdr_order *o,
                     char sig[SIGV4_SIG_HEX_LEN + 1])
{
    size_t base = scratch->len;
    int rc = string_to_sign(scratch, r, o);
    if (rc < 0)
        return rc;
    unsigned char mac[SHA256_LEN];
    hmac_sha256(r->signing_key, SIGV4_KEY_LEN, scratch->s + base, scratch->len - base, mac);
    sbuf_cut(scratch, base);
    hex_encode(mac, sizeof(mac), sig);
    return 0;
}

int sigv4_signature(struct sbuf *scratch, const struct sigv4_req *r,
                    char sig[SIGV4_SIG_HEX_LEN + 1])
{
    if (!sig)
        return -EINVAL;
    sig[0] = '\0';
    if (!scratch)
        return -EINVAL;
    int rc = check_signature(r);
    if (rc < 0)
        return rc;
    struct hdr_order o;
    return signature(scratch, r, &o, sig);
}

int sigv4_authorization(struct sbuf *out, const struct sigv4_req *r)
{
    if (!out)
        return -EINVAL;
    int rc = check_signature(r);
    if (rc == 0 && !is_scope_part(r->access_key_id))
        rc = -EINVAL;
    if (rc < 0)
        return rc;
    struct hdr_order o;
    char sig[SIGV4_SIG_HEX_LEN + 1];
    rc = signature(out, r, &o, sig);
    if (rc < 0)
        return rc;

    size_t base = out->len;
    struct emit e = {.b = out};
    emit_s(&e, algorithm);
    emit_s(&e, " Credential=");
    emit_s(&e, r->access_key_id);
    emit_c(&e, '/');
    emit_scope(&e, r);
    emit_s(&e, ", SignedHeaders=");
    emit_signed_headers(&e, r, &o);
    emit_s(&e, ", Signature=");
    emit_n(&e, sig, SIGV4_SIG_HEX_LEN);
    emit_flush(&e);
    if (e.err)
        sbuf_cut(out, base);
    return e.err;
}

/* ---- date and signing key ----------------------------------------------- */

static void put_digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

int sigv4_amz_date(int64_t unix_s, char buf[17])
{
    /* 0000-01-01T00:00:00Z .. 9999-12-31T23:59:59Z */
    if (unix_s < -62167219200LL || unix_s > 253402300799LL) {
        buf[0] = '\0';
        return -ERANGE;
    }
    int64_t days = unix_s / 86400, sec = unix_s % 86400;
    if (sec < 0) {
        sec += 86400;
        days--;
    }
    /* Civil date from a day count, with years starting on March 1st so that
     * the leap day is the last day of the year: shift the epoch to
     * 0000-03-01, split into 400-year cycles of 146097 days, then into years
     * of the cycle, then into months of 153 days per 5 months. */
    int64_t z = days + 719468;
    int64_t cycle = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doc = (unsigned)(z - cycle * 146097);                        /* 0..146096 */
    unsigned yoc = (doc - doc / 1460 + doc / 36524 - doc / 146096) / 365; /* 0..399 */
    unsigned doy = doc - (365 * yoc + yoc / 4 - yoc / 100);               /* 0..365 */
    unsigned mp = (5 * doy + 2) / 153;                                    /* 0 = March */
    unsigned day = doy - (153 * mp + 2) / 5 + 1;
    unsigned month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = cycle * 400 + yoc + (month <= 2);

    put_digits(buf, (unsigned)year, 4);
    put_digits(buf + 4, month, 2);
    put_digits(buf + 6, day, 2);
    buf[8] = 'T';
    put_digits(buf + 9, (unsigned)(sec / 3600), 2);
    put_digits(buf + 11, (unsigned)(sec / 60 % 60), 2);
    put_digits(buf + 13, (unsigned)(sec % 60), 2);
    buf[15] = 'Z';
    buf[16] = '\0';
    return 0;
}

int sigv4_signing_key(const char *secret, const char *date8, const char *region,
                      const char *service, unsigned char key[SIGV4_KEY_LEN])
{
    if (!key)
        return -EINVAL;
    memset(key, 0, SIGV4_KEY_LEN);
    if (!secret || !date8 || !is_scope_part(region) || !is_scope_part(service))
        return -EINVAL;
    for (int i = 0; i < 8; i++)
        if (date8[i] < '0' || date8[i] > '9')
            return -EINVAL;

    size_t slen = strlen(secret);
    unsigned char small[128], *k = slen + 4 <= sizeof(small) ? small : xmalloc(slen + 4);
    memcpy(k, "AWS4", 4);
    memcpy(k + 4, secret, slen);
    unsigned char t[SHA256_LEN];
    hmac_sha256(k, slen + 4, date8, 8, t);
    hmac_sha256(t, sizeof(t), region, strlen(region), t);
    hmac_sha256(t, sizeof(t), service, strlen(service), t);
    hmac_sha256(t, sizeof(t), terminator, strlen(terminator), key);
    OPENSSL_cleanse(k, slen + 4);
    OPENSSL_cleanse(t, sizeof(t));
    if (k != small)
        free(k);
    return 0;
}
