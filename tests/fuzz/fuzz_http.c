/* fuzz_http.c — libFuzzer target: bytes through the HTTP response parser and
 * the SSE splitter, fed whole and at splits taken from the input; both ways
 * must give the same transcript (abort() otherwise).
 *
 * Input: byte 0 = flags (bit 0 HEAD, bit 1 report headers, bit 2 EOF at the
 * end, bit 3 tiny limits), bytes 1..4 = split sizes (cycled), rest = stream. */
#include "loadgen/http_parser.h"
#include "util/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct splits {
    const uint8_t *sizes; /* NULL: whole */
    size_t i;
};

static size_t next_split(struct splits *s, size_t left)
{
    if (!s->sizes)
        return left;
    size_t k = 1 + s->sizes[s->i++ % 4] % 64;
    return k < left ? k : left;
}

static void note(struct sbuf *t, const char *what, long v)
{
    char b[48];
    int n = snprintf(b, sizeof(b), "%s%ld;", what, v);
    if (sbuf_add(t, b, (size_t)n) < 0)
        abort();
}

static void note_event(struct sbuf *t, int r, const struct http_resp_events *ev)
{
    note(t, "ev", r);
    if (r == HTTP_EV_HEADER && sbuf_add(t, ev->name, ev->name_len) < 0)
        abort();
    if (r == HTTP_EV_BODY && ev->len == 0)
        abort(); /* body events always carry bytes */
    /* Body pieces depend on the split: record bytes, not piece boundaries. */
    if (r >= HTTP_EV_STATUS && r <= HTTP_EV_BODY && ev->len && sbuf_add(t, ev->data, ev->len) < 0)
        abort();
}

/* Parses responses back to back until an error or the end; writes a transcript. */
static void run_http(const char *in, size_t len, uint8_t flags, struct splits *sp, struct sbuf *t)
{
    static const struct http_limits tiny = {64, 64, 256, 8, 16};
    struct http_resp_parser p;
    http_resp_init(&p, flags & 8 ? &tiny : NULL, flags & 1);
    http_resp_report_headers(&p, flags & 2);
    size_t start = 0, avail = 0;
    int r = HTTP_EV_NONE;
    for (int msgs = 0; msgs < 64;) {
        if (r == HTTP_EV_NONE) {
            if (avail == len)
                break;
            avail += next_split(sp, len - avail);
        }
        char *buf = xmalloc(avail - start);
        memcpy(buf, in + start, avail - start);
        size_t used = 0;
        struct http_resp_events ev;
        r = http_resp_feed(&p, buf, avail - start, &used, &ev);
        if (r > HTTP_EV_NONE && r != HTTP_EV_BODY)
            note_event(t, r, &ev);
        else if (r == HTTP_EV_BODY && sbuf_add(t, ev.data, ev.len) < 0)
            abort();
        free(buf);
        if (r < 0)
            break;
        if (used > avail - start)
            abort();
        start += used;
        if (r == HTTP_EV_DONE) {
            note(t, "status", p.status);
            note(t, "keep", http_resp_keep_alive(&p));
            note(t, "at", (long)start);
            http_resp_reset(&p, flags & 1);
            msgs++;
        }
    }
    if (r >= 0 && (flags & 4))
        r = http_resp_eof(&p);
    note(t, "end", r);
}

static void collect(void *ud, const char *event, size_t elen, const char *d, size_t dlen)
{
    struct sbuf *t = ud;
    if (d[dlen] != '\0' || sbuf_add(t, event, elen) < 0 || sbuf_add(t, "|", 1) < 0 ||
        sbuf_add(t, d, dlen) < 0 || sbuf_add(t, ";", 1) < 0)
        abort();
}

static void run_sse(const char *in, size_t len, struct splits *sp, struct sbuf *t)
{
    struct sse_parser p;
    sse_init(&p, 512);
    int r = 0;
    for (size_t off = 0; off < len && r == 0;) {
        size_t k = next_split(sp, len - off);
        char *buf = xmalloc(k);
        memcpy(buf, in + off, k);
        r = sse_feed(&p, buf, k, collect, t);
        free(buf);
        off += k;
    }
    note(t, "end", r);
    if (sbuf_puts(t, sse_last_id(&p)) < 0)
        abort();
    note(t, "retry", (long)p.retry_ms);
    sse_free(&p);
}

static void compare(struct sbuf *a, struct sbuf *b)
{
    if (a->len != b->len || (a->len && memcmp(a->s, b->s, a->len) != 0))
        abort();
    sbuf_free(a);
    sbuf_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    const char *in = (const char *)data + 5;
    size_t len = size - 5;
    struct sbuf whole = {0}, split = {0};
    struct splits w = {NULL, 0}, s = {data + 1, 0};
    run_http(in, len, data[0], &w, &whole);
    run_http(in, len, data[0], &s, &split);
    compare(&whole, &split);
    w.i = s.i = 0;
    run_sse(in, len, &w, &whole);
    run_sse(in, len, &s, &split);
    compare(&whole, &split);
    return 0;
}
