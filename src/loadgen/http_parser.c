/* http_parser.c — incremental HTTP/1.1 response parser, SSE splitter and
 * request builder (see http_parser.h for the contract and the decisions). */
#include "loadgen/http_parser.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const struct http_limits http_limits_default = {
    .status_line_max = 8 << 10,
    .header_line_max = 8 << 10,
    .header_section_max = 64 << 10,
    .header_count_max = 256,
    .chunk_line_max = 1 << 10,
};

enum {
    S_STATUS,
    S_HEADER,
    S_NOBODY,
    S_BODY_CL,
    S_BODY_CLOSE,
    S_CHUNK_SIZE,
    S_CHUNK_DATA,
    S_CHUNK_CR,
    S_CHUNK_LF,
    S_TRAILER,
    S_DONE,
    S_ERROR,
};

static const char *const err_names[] = {
    "malformed status line",
    "bad HTTP version",
    "bad status code",
    "status line too long",
    "header too large",
    "too many headers",
    "malformed header",
    "bad content-length",
    "bad chunk size",
    "chunk-size line too long",
    "chunk not terminated by CRLF",
    "unexpected EOF",
    "connection closed before response",
};

const char *http_strerror(int err)
{
    if (err < 0)
        err = -err;
    if (err >= HTTP_E_STATUS_LINE && err <= HTTP_E_CLOSED)
        return err_names[err - HTTP_E_STATUS_LINE];
    return strerror(err);
}

/* RFC 9110 tchar, as bit masks over ASCII 0..63 and 64..127. */
static bool is_tchar(unsigned char c)
{
    static const uint64_t lo = 0x3ff6cfa00000000ULL, hi = 0x57ffffffc7fffffeULL;
    if (c < 64)
        return (lo >> c) & 1;
    return c < 128 && ((hi >> (c - 64)) & 1);
}

void http_resp_init(struct http_resp_parser *p, const struct http_limits *lim, bool head_request)
{
    memset(p, 0, offsetof(struct http_resp_parser, reason) + 1);
    p->lim = lim ? *lim : http_limits_default;
    p->head_request = head_request;
    p->state = S_STATUS;
    p->content_type[0] = '\0';
}

void http_resp_reset(struct http_resp_parser *p, bool head_request)
{
    struct http_limits lim = p->lim;
    bool report = p->report_headers;
    http_resp_init(p, &lim, head_request);
    p->report_headers = report;
}

void http_resp_report_headers(struct http_resp_parser *p, bool on)
{
    p->report_headers = on;
}

static int fail(struct http_resp_parser *p, int err)
{
    p->error = err;
    p->state = S_ERROR;
    return -err;
}

/* Finds the line at data[0..len). Returns 1 with *line_len (content, CR
 * stripped) and *raw (with the terminator), 0 when incomplete (after checking
 * that the pending bytes cannot become a line within max), or -1 when the line
 * is or will be longer than max. */
static int find_line(struct http_resp_parser *p, const char *data, size_t len, size_t max,
                     size_t *line_len, size_t *raw)
{
    size_t from = p->scan < len ? p->scan : len;
    const char *lf = memchr(data + from, '\n', len - from);
    if (!lf) {
        p->scan = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
        return len > max + 1 ? -1 : 0;
    }
    size_t n = (size_t)(lf - data);
    *raw = n + 1;
    if (n && data[n - 1] == '\r')
        n--;
    p->scan = 0;
    *line_len = n;
    return n > max ? -1 : 1;
}

/* "HTTP/1.1 200 OK": sets version, status and reason. */
static int parse_status(struct http_resp_parser *p, const char *s, size_t n)
{
    if (memchr(s, '\0', n) || memchr(s, '\r', n) || n < 5 || memcmp(s, "HTTP/", 5) != 0)
        return HTTP_E_STATUS_LINE;
    if (n < 9 || s[5] != '1' || s[6] != '.' || s[7] < '0' || s[7] > '9' || s[8] != ' ')
        return HTTP_E_VERSION;
    p->version_minor = s[7] == '0' ? 0 : 1;
    if (n < 12)
        return HTTP_E_STATUS_CODE;
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9')
            return HTTP_E_STATUS_CODE;
        code = code * 10 + (s[i] - '0');
    }
    if (code < 100 || code > 599 || (n > 12 && s[12] != ' '))
        return HTTP_E_STATUS_CODE;
    p->status = code;
    size_t rl = n > 13 ? n - 13 : 0;
    size_t copy = rl < sizeof(p->reason) - 1 ? rl : sizeof(p->reason) - 1;
    if (copy)
        memcpy(p->reason, s + 13, copy);
    p->reason[copy] = '\0';
    return 0;
}

static bool token_eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* Calls fn for each comma-separated, OWS-trimmed, non-empty element. */
static void for_each_token(const char *v, size_t n,
                           void (*fn)(struct http_resp_parser *, const char *, size_t),
                           struct http_resp_parser *p)
{
    size_t i = 0;
    while (i < n) {
        const char *c = memchr(v + i, ',', n - i);
        size_t end = c ? (size_t)(c - v) : n;
        size_t a = i, b = end;
        while (a < b && (v[a] == ' ' || v[a] == '\t'))
            a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
            b--;
        if (b > a)
            fn(p, v + a, b - a);
        i = end + 1;
    }
}

static void conn_token(struct http_resp_parser *p, const char *t, size_t n)
{
    if (token_eq(t, n, "close"))
        p->conn_close = true;
    else if (token_eq(t, n, "keep-alive"))
        p->conn_keep = true;
}

static void te_token(struct http_resp_parser *p, const char *t, size_t n)
{
    p->chunked = token_eq(t, n, "chunked");
}

static int parse_content_length(struct http_resp_parser *p, const char *v, size_t n)
{
    uint64_t x = 0;
    if (n == 0)
        return HTTP_E_CONTENT_LENGTH;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)v[i] - '0';
        if (d > 9 || x > (UINT64_MAX - d) / 10)
            return HTTP_E_CONTENT_LENGTH;
        x = x * 10 + d;
    }
    if (p->have_cl && p->content_length != x)
        return HTTP_E_CONTENT_LENGTH;
    p->have_cl = true;
    p->content_length = x;
    return 0;
}

/* Looks at the headers that decide framing and keep-alive. */
static int known_header(struct http_resp_parser *p, const char *name, size_t nl, const char *v,
                        size_t vl)
{
    switch (nl) {
    case 10:
        if (strncasecmp(name, "connection", 10) == 0)
            for_each_token(v, vl, conn_token, p);
        break;
    case 12:
        if (strncasecmp(name, "content-type", 12) == 0) {
            size_t c = vl < sizeof(p->content_type) - 1 ? vl : sizeof(p->content_type) - 1;
            memcpy(p->content_type, v, c);
            p->content_type[c] = '\0';
        }
        break;
    case 14:
        if (strncasecmp(name, "content-length", 14) == 0)
            return parse_content_length(p, v, vl);
        break;
    case 17:
        if (strncasecmp(name, "transfer-encoding", 17) == 0) {
            p->te_present = true;
            for_each_token(v, vl, te_token, p);
        }
        break;
    default:
        break;
    }
    return 0;
}

/* Splits "Name: value" (value OWS-trimmed); checks the name's characters. */
static int split_header(const char *s, size_t n, size_t *name_len, const char **v, size_t *vl)
{
    if (memchr(s, '\0', n) || memchr(s, '\r', n))
        return HTTP_E_HEADER;
    const char *colon = memchr(s, ':', n);
    if (!colon || colon == s)
        return HTTP_E_HEADER;
    size_t nl = (size_t)(colon - s);
    for (size_t i = 0; i < nl; i++)
        if (!is_tchar((unsigned char)s[i]))
            return HTTP_E_HEADER;
    size_t a = nl + 1, b = n;
    while (a < b && (s[a] == ' ' || s[a] == '\t'))
        a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
        b--;
    *name_len = nl;
    *v = s + a;
    *vl = b - a;
    return 0;
}

/* Decides body framing once the header section ended (RFC 9112 6.3). */
static void choose_framing(struct http_resp_parser *p)
{
    if (p->head_request || p->status == 204 || p->status == 304) {
        p->state = S_NOBODY;
    } else if (p->te_present && p->chunked) {
        p->state = S_CHUNK_SIZE;
    } else if (p->te_present) {
        p->state = S_BODY_CLOSE;
        p->until_close = true;
    } else if (p->have_cl) {
        p->state = S_BODY_CL;
        p->remaining = p->content_length;
    } else {
        p->state = S_BODY_CLOSE;
        p->until_close = true;
    }
}

/* Clears what a 1xx response set, keeping the limits and settings. */
static void skip_interim(struct http_resp_parser *p)
{
    struct http_resp_parser keep = *p;
    http_resp_init(p, &keep.lim, keep.head_request);
    p->report_headers = keep.report_headers;
    p->started = true;
}

static bool is_interim(const struct http_resp_parser *p)
{
    return p->status >= 100 && p->status < 200;
}

/* One complete header line (n bytes, raw with terminator). Returns 1 when an
 * event was produced in ev, 0 to continue, or a negative error. */
static int header_line(struct http_resp_parser *p, const char *s, size_t n, size_t raw,
                       struct http_resp_events *ev)
{
    if (n == 0) {
        if (is_interim(p)) {
            skip_interim(p);
            return 0;
        }
        choose_framing(p);
        ev->type = HTTP_EV_HEADERS;
        return 1;
    }
    p->hdr_bytes += (uint32_t)raw;
    if (p->hdr_bytes > p->lim.header_section_max)
        return fail(p, HTTP_E_HEADER_TOO_LARGE);
    if (++p->hdr_count > p->lim.header_count_max)
        return fail(p, HTTP_E_TOO_MANY_HEADERS);
    if (s[0] == ' ' || s[0] == '\t')
        return fail(p, HTTP_E_HEADER);
    size_t nl, vl;
    const char *v;
    int r = split_header(s, n, &nl, &v, &vl);
    if (r == 0)
        r = known_header(p, s, nl, v, vl);
    if (r)
        return fail(p, r);
    if (!p->report_headers || is_interim(p))
        return 0;
    ev->type = HTTP_EV_HEADER;
    ev->name = s;
    ev->name_len = nl;
    ev->data = v;
    ev->len = vl;
    return 1;
}

/* Step results besides events (>= 0) and errors (< 0). */
#define CONT 100

static int step_status(struct http_resp_parser *p, const char *d, size_t n, size_t *used,
                       struct http_resp_events *ev)
{
    size_t ll = 0, raw = 0;
    if (n)
        p->started = true;
    int f = find_line(p, d, n, p->lim.status_line_max, &ll, &raw);
    if (f < 0)
        return fail(p, HTTP_E_STATUS_TOO_LONG);
    if (f == 0)
        return HTTP_EV_NONE;
    int e = parse_status(p, d, ll);
    if (e)
        return fail(p, e);
    *used = raw;
    p->state = S_HEADER;
    if (!p->report_headers || is_interim(p))
        return CONT;
    ev->data = ll > 13 ? d + 13 : d + ll;
    ev->len = ll > 13 ? ll - 13 : 0;
    return HTTP_EV_STATUS;
}

/* The next line of a header or trailer section: 1 found (*ll, *raw set),
 * HTTP_EV_NONE (0) when more bytes are needed, or an error past the limits. */
static int section_line(struct http_resp_parser *p, const char *d, size_t n, size_t *ll,
                        size_t *raw)
{
    int f = find_line(p, d, n, p->lim.header_line_max, ll, raw);
    if (f < 0)
        return fail(p, HTTP_E_HEADER_TOO_LARGE);
    if (f == 0) {
        /* Two or more pending bytes make a non-empty line of at least n+1 bytes. */
        if (n >= 2 && (uint64_t)p->hdr_bytes + n + 1 > p->lim.header_section_max)
            return fail(p, HTTP_E_HEADER_TOO_LARGE);
        return HTTP_EV_NONE;
    }
    return 1;
}

static int step_header(struct http_resp_parser *p, const char *d, size_t n, size_t *used,
                       struct http_resp_events *ev)
{
    size_t ll = 0, raw = 0;
    int f = section_line(p, d, n, &ll, &raw);
    if (f <= 0)
        return f;
    *used = raw;
    int r = header_line(p, d, ll, raw, ev);
    if (r < 0)
        return r;
    return r ? ev->type : CONT;
}

static int step_trailer(struct http_resp_parser *p, const char *d, size_t n, size_t *used)
{
    size_t ll = 0, raw = 0;
    int f = section_line(p, d, n, &ll, &raw);
    if (f <= 0)
        return f;
    *used = raw;
    if (ll == 0) {
        p->state = S_DONE;
        return HTTP_EV_DONE;
    }
    p->hdr_bytes += (uint32_t)raw;
    if (p->hdr_bytes > p->lim.header_section_max)
        return fail(p, HTTP_E_HEADER_TOO_LARGE);
    if (++p->hdr_count > p->lim.header_count_max)
        return fail(p, HTTP_E_TOO_MANY_HEADERS);
    size_t nl, vl;
    const char *v;
    if (d[0] == ' ' || d[0] == '\t' || split_header(d, ll, &nl, &v, &vl) != 0)
        return fail(p, HTTP_E_HEADER);
    return CONT;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int step_chunk_size(struct http_resp_parser *p, const char *d, size_t n, size_t *used)
{
    size_t ll = 0, raw = 0;
    int f = find_line(p, d, n, p->lim.chunk_line_max, &ll, &raw);
    if (f < 0)
        return fail(p, HTTP_E_CHUNK_LINE_TOO_LONG);
    if (f == 0)
        return HTTP_EV_NONE;
    uint64_t size = 0;
    size_t i = 0;
    for (int h; i < ll && (h = hexval((unsigned char)d[i])) >= 0; i++) {
        if (size > (UINT64_MAX >> 4))
            return fail(p, HTTP_E_CHUNK_SIZE);
        size = size << 4 | (uint64_t)h;
    }
    if (i == 0 || memchr(d, '\0', ll) || memchr(d, '\r', ll))
        return fail(p, HTTP_E_CHUNK_SIZE);
    while (i < ll && (d[i] == ' ' || d[i] == '\t'))
        i++;
    if (i < ll && d[i] != ';')
        return fail(p, HTTP_E_CHUNK_SIZE);
    *used = raw;
    if (size == 0) {
        p->state = S_TRAILER;
        p->hdr_bytes = 0;
        p->hdr_count = 0;
    } else {
        p->state = S_CHUNK_DATA;
        p->remaining = size;
    }
    return CONT;
}

/* Hands out up to p->remaining bytes (or all of them when until_close). */
static int body_bytes(struct http_resp_parser *p, const char *d, size_t n, size_t *used,
                      struct http_resp_events *ev)
{
    if (n == 0)
        return HTTP_EV_NONE;
    size_t take = n;
    if (!p->until_close) {
        take = p->remaining < n ? (size_t)p->remaining : n;
        p->remaining -= take;
    }
    p->body_bytes += take;
    ev->data = d;
    ev->len = take;
    *used = take;
    return HTTP_EV_BODY;
}

static int step_chunk_end(struct http_resp_parser *p, const char *d, size_t n, size_t *used)
{
    if (n == 0)
        return HTTP_EV_NONE;
    if (d[0] == '\r' && p->state == S_CHUNK_CR) {
        p->state = S_CHUNK_LF;
    } else if (d[0] == '\n') {
        p->state = S_CHUNK_SIZE;
    } else {
        return fail(p, HTTP_E_CHUNK_END);
    }
    *used = 1;
    return CONT;
}

static int step(struct http_resp_parser *p, const char *d, size_t n, size_t *used,
                struct http_resp_events *ev)
{
    switch (p->state) {
    case S_STATUS:
        return step_status(p, d, n, used, ev);
    case S_HEADER:
        return step_header(p, d, n, used, ev);
    case S_BODY_CL:
        if (p->remaining == 0) {
            p->state = S_DONE;
            return HTTP_EV_DONE;
        }
        return body_bytes(p, d, n, used, ev);
    case S_BODY_CLOSE:
        return body_bytes(p, d, n, used, ev);
    case S_CHUNK_SIZE:
        return step_chunk_size(p, d, n, used);
    case S_CHUNK_DATA: {
        int r = body_bytes(p, d, n, used, ev);
        if (p->remaining == 0)
            p->state = S_CHUNK_CR;
        return r;
    }
    case S_CHUNK_CR:
    case S_CHUNK_LF:
        return step_chunk_end(p, d, n, used);
    case S_TRAILER:
        return step_trailer(p, d, n, used);
    case S_NOBODY:
        p->state = S_DONE;
        return HTTP_EV_DONE;
    case S_DONE:
        return HTTP_EV_DONE;
    default:
        return -p->error;
    }
}

int http_resp_feed(struct http_resp_parser *p, const char *data, size_t len, size_t *consumed,
                   struct http_resp_events *ev)
{
    size_t pos = 0;
    ev->data = NULL;
    ev->len = 0;
    for (;;) {
        size_t used = 0;
        int r = step(p, data + pos, len - pos, &used, ev);
        pos += used;
        if (r == CONT)
            continue;
        if (r < 0)
            return r;
        ev->type = r;
        *consumed = pos;
        return r;
    }
}

int http_resp_eof(struct http_resp_parser *p)
{
    switch (p->state) {
    case S_BODY_CL:
        if (p->remaining)
            return fail(p, HTTP_E_EOF);
        p->state = S_DONE;
        return HTTP_EV_DONE;
    case S_BODY_CLOSE:
    case S_NOBODY:
    case S_DONE:
        p->state = S_DONE;
        return HTTP_EV_DONE;
    case S_ERROR:
        return -p->error;
    case S_STATUS:
        if (!p->started && p->scan == 0)
            return fail(p, HTTP_E_CLOSED);
        return fail(p, HTTP_E_EOF);
    default:
        return fail(p, HTTP_E_EOF);
    }
}

bool http_resp_keep_alive(const struct http_resp_parser *p)
{
    if (p->state != S_DONE || p->until_close || (p->te_present && p->have_cl) || p->conn_close)
        return false;
    return p->version_minor >= 1 || p->conn_keep;
}

/* ---- SSE ---------------------------------------------------------------- */

void sse_init(struct sse_parser *p, size_t max_event)
{
    memset(p, 0, sizeof(*p));
    p->max_event = max_event ? max_event : SSE_DEFAULT_MAX;
    size_t bmax = p->max_event + 16;
    p->line.max = p->data.max = p->event.max = p->id.max = bmax;
    p->retry_ms = -1;
    p->first_line = true;
}

void sse_free(struct sse_parser *p)
{
    if (!p)
        return;
    sbuf_free(&p->line);
    sbuf_free(&p->data);
    sbuf_free(&p->event);
    sbuf_free(&p->id);
}

const char *sse_last_id(const struct sse_parser *p)
{
    return p->id.s && p->id.len ? p->id.s : "";
}

static int sse_set(struct sbuf *b, const char *v, size_t n)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
    return sbuf_add(b, v, n);
}

static void sse_dispatch(struct sse_parser *p, sse_event_fn on_event, void *ud)
{
    if (p->data.len) {
        p->data.s[--p->data.len] = '\0'; /* the last "\n" */
        bool typed = p->event.len > 0;
        on_event(ud, typed ? p->event.s : "message", typed ? p->event.len : 7, p->data.s,
                 p->data.len);
    }
    p->data.len = 0;
    p->event.len = 0;
}

static int sse_field(struct sse_parser *p, const char *f, size_t fl, const char *v, size_t vl)
{
    if (fl == 4 && memcmp(f, "data", 4) == 0) {
        if (p->data.len + vl + 1 + p->event.len > p->max_event)
            return -EMSGSIZE;
        int r = sbuf_add(&p->data, v, vl);
        return r ? r : sbuf_add(&p->data, "\n", 1);
    }
    if (fl == 5 && memcmp(f, "event", 5) == 0) {
        if (p->data.len + vl > p->max_event)
            return -EMSGSIZE;
        return sse_set(&p->event, v, vl);
    }
    if (fl == 2 && memcmp(f, "id", 2) == 0 && !memchr(v, '\0', vl))
        return vl > p->max_event ? -EMSGSIZE : sse_set(&p->id, v, vl);
    if (fl == 5 && memcmp(f, "retry", 5) == 0 && vl > 0 && vl < 16) {
        int64_t ms = 0;
        for (size_t i = 0; i < vl; i++) {
            if (v[i] < '0' || v[i] > '9')
                return 0;
            ms = ms * 10 + (v[i] - '0');
        }
        p->retry_ms = ms;
    }
    return 0;
}

static int sse_line(struct sse_parser *p, const char *s, size_t n, sse_event_fn on_event, void *ud)
{
    if (p->first_line) {
        p->first_line = false;
        if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
            s += 3;
            n -= 3;
        }
    }
    if (n == 0) {
        sse_dispatch(p, on_event, ud);
        return 0;
    }
    if (s[0] == ':')
        return 0;
    const char *colon = memchr(s, ':', n);
    size_t fl = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vl = colon ? n - fl - 1 : 0;
    if (vl && v[0] == ' ') {
        v++;
        vl--;
    }
    return sse_field(p, s, fl, v, vl);
}

/* Index of the first CR or LF in s[0..n), or n. */
static size_t sse_line_end(const char *s, size_t n)
{
    const char *lf = memchr(s, '\n', n);
    size_t lim = lf ? (size_t)(lf - s) : n;
    const char *cr = memchr(s, '\r', lim);
    return cr ? (size_t)(cr - s) : lim;
}

/* Handles the line ending at s[e] (a partial line may be buffered). */
static int sse_complete(struct sse_parser *p, const char *s, size_t e, sse_event_fn on_event,
                        void *ud)
{
    int r;
    if (p->line.len) {
        if (p->line.len + e > p->max_event)
            return -EMSGSIZE;
        if ((r = sbuf_add(&p->line, s, e)) < 0)
            return r;
        r = sse_line(p, p->line.s, p->line.len, on_event, ud);
        p->line.len = 0;
        return r;
    }
    if (e > p->max_event)
        return -EMSGSIZE;
    return sse_line(p, s, e, on_event, ud);
}

int sse_feed(struct sse_parser *p, const char *data, size_t len, sse_event_fn on_event, void *ud)
{
    size_t i = 0;
    int r = 0;
    if (p->error)
        return p->error;
    if (p->cr_pending && len) {
        p->cr_pending = false;
        if (data[0] == '\n')
            i = 1;
    }
    while (i < len && r == 0) {
        const char *s = data + i;
        size_t n = len - i, e = sse_line_end(s, n);
        if (e == n) {
            r = p->line.len + n > p->max_event ? -EMSGSIZE : sbuf_add(&p->line, s, n);
            break;
        }
        r = sse_complete(p, s, e, on_event, ud);
        i += e + 1;
        if (s[e] == '\r' && i < len && data[i] == '\n')
            i++;
        else if (s[e] == '\r' && i == len)
            p->cr_pending = true;
    }
    if (r < 0)
        p->error = r;
    return r;
}

/* ---- request builder ----------------------------------------------------- */

static bool valid_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

/* Non-empty, no controls, no spaces (method targets and Host values). */
static bool valid_word(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* Checks the caller's headers; sets *has_host when one is a Host header. */
static int check_headers(const char *const *headers, bool *has_host)
{
    for (size_t i = 0; headers && headers[i]; i++) {
        const char *h = headers[i];
        const char *colon = strchr(h, ':');
        if (strpbrk(h, "\r\n") || !colon || !valid_token(h, (size_t)(colon - h)))
            return -EINVAL;
        size_t nl = (size_t)(colon - h);
        if (token_eq(h, nl, "content-length") || token_eq(h, nl, "transfer-encoding"))
            return -EINVAL;
        if (token_eq(h, nl, "host"))
            *has_host = true;
    }
    return 0;
}

static int req_lines(struct sbuf *out, const char *method, const char *host, const char *target,
                     const char *const *headers, bool has_host)
{
    int r = 0;
    r = r ? r : sbuf_puts(out, method);
    r = r ? r : sbuf_add(out, " ", 1);
    r = r ? r : sbuf_puts(out, target);
    r = r ? r : sbuf_add(out, " HTTP/1.1\r\n", 11);
    if (!has_host) {
        r = r ? r : sbuf_add(out, "Host: ", 6);
        r = r ? r : sbuf_puts(out, host);
        r = r ? r : sbuf_add(out, "\r\n", 2);
    }
    for (size_t i = 0; headers && headers[i] && !r; i++) {
        r = sbuf_puts(out, headers[i]);
        r = r ? r : sbuf_add(out, "\r\n", 2);
    }
    return r;
}

int http_req_build(struct sbuf *out, const char *method, const char *host_header,
                   const char *target, const char *const *headers, const char *body,
                   size_t body_len)
{
    bool has_host = false;
    if (!method || !valid_token(method, strlen(method)) || !valid_word(target) ||
        !valid_word(host_header) || check_headers(headers, &has_host) < 0)
        return -EINVAL;
    size_t old = out->len;
    int r = req_lines(out, method, host_header, target, headers, has_host);
    if (!r && body) {
        char cl[48];
        int n = snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n\r\n", body_len);
        r = sbuf_add(out, cl, (size_t)n);
        r = r ? r : sbuf_add(out, body, body_len);
    } else if (!r) {
        r = sbuf_add(out, "\r\n", 2);
    }
    if (r) {
        out->len = old;
        if (out->s)
            out->s[old] = '\0';
    }
    return r;
}
