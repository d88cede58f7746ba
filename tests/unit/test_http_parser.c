/* test_http_parser.c — response parser (table of cases, each fed whole, byte by
 * byte and at random splits), limits, SSE splitter and request builder. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "loadgen/http_parser.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- response driver: simulates a caller that keeps the unconsumed tail ---- */

struct result {
    int err; /* 0 or the positive enum http_err */
    bool done;
    bool keep;
    int status;
    int minor;
    size_t consumed; /* bytes consumed up to DONE or the end */
    struct sbuf body;
    struct sbuf heads; /* "name=value\n" per header with report_headers */
    char reason[48];
    char ctype[64];
};

static uint64_t rng_state;
static size_t rng_next(size_t max)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return 1 + (size_t)(rng_state % max);
}

/* split: 0 whole, 1 byte by byte, else random chunks up to split bytes. */
static size_t chunk_size(int split, size_t left)
{
    size_t k = split == 0 ? left : split == 1 ? 1 : rng_next((size_t)split);
    return k < left ? k : left;
}

static bool on_event(struct http_resp_parser *p, int r, const struct http_resp_events *ev,
                     struct result *res)
{
    if (r == HTTP_EV_BODY)
        assert_int_equal(sbuf_add(&res->body, ev->data, ev->len), 0);
    if (r == HTTP_EV_HEADER) {
        sbuf_add(&res->heads, ev->name, ev->name_len);
        sbuf_add(&res->heads, "=", 1);
        sbuf_add(&res->heads, ev->data, ev->len);
        sbuf_add(&res->heads, "\n", 1);
    }
    if (r == HTTP_EV_STATUS)
        assert_memory_equal(ev->data, p->reason, ev->len < 47 ? ev->len : 47);
    return r == HTTP_EV_DONE;
}

static void finish(struct http_resp_parser *p, int r, struct result *res)
{
    if (r < 0)
        res->err = -r;
    res->done = r == HTTP_EV_DONE;
    res->keep = http_resp_keep_alive(p);
    res->status = p->status;
    res->minor = p->version_minor;
    memcpy(res->reason, p->reason, sizeof(res->reason));
    memcpy(res->ctype, p->content_type, sizeof(res->ctype));
}

static void run(const char *in, size_t len, bool head, bool eof, bool report, int split,
                struct result *res)
{
    struct http_resp_parser p;
    http_resp_init(&p, NULL, head);
    http_resp_report_headers(&p, report);
    memset(res, 0, sizeof(*res));
    size_t start = 0, avail = 0;
    int r = HTTP_EV_NONE;
    for (;;) {
        if (r == HTTP_EV_NONE) {
            if (avail == len) {
                r = eof ? http_resp_eof(&p) : HTTP_EV_NONE;
                break;
            }
            avail += chunk_size(split, len - avail);
        }
        /* A fresh exact-size copy, so reads past the end are caught by ASan. */
        char *buf = xmalloc(avail - start);
        memcpy(buf, in + start, avail - start);
        size_t used = 0;
        struct http_resp_events ev;
        r = http_resp_feed(&p, buf, avail - start, &used, &ev);
        if (r > 0) {
            assert_true(used <= avail - start);
            if (r == HTTP_EV_BODY)
                assert_true(ev.data >= buf && ev.data + ev.len <= buf + (avail - start));
            on_event(&p, r, &ev, res);
            start += used;
        } else if (r == 0) {
            start += used;
        }
        free(buf);
        if (r < 0 || r == HTTP_EV_DONE)
            break;
    }
    res->consumed = start;
    finish(&p, r, res);
}

static void result_free(struct result *r)
{
    sbuf_free(&r->body);
    sbuf_free(&r->heads);
}

static void assert_same(const struct result *a, const struct result *b)
{
    assert_int_equal(a->err, b->err);
    assert_int_equal(a->done, b->done);
    assert_int_equal(a->keep, b->keep);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->minor, b->minor);
    if (!a->err) /* on errors consumption stops at the last event */
        assert_int_equal(a->consumed, b->consumed);
    assert_int_equal(a->body.len, b->body.len);
    if (a->body.len)
        assert_memory_equal(a->body.s, b->body.s, a->body.len);
    assert_int_equal(a->heads.len, b->heads.len);
    if (a->heads.len)
        assert_memory_equal(a->heads.s, b->heads.s, a->heads.len);
    assert_string_equal(a->reason, b->reason);
    assert_string_equal(a->ctype, b->ctype);
}

/* ---- the table ----------------------------------------------------------- */

#define IN(s)   s, sizeof(s) - 1
#define OK_RESP "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
#define CHUNKED "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

struct rcase {
    const char *name;
    const char *in;
    size_t len;
    bool head; /* HEAD request */
    bool eof;  /* the connection closes after the input */
    int err;   /* expected enum http_err, 0 for success */
    int status;
    const char *body;
    bool keep;
    size_t consumed; /* 0: all of the input */
};

static const struct rcase cases[] = {
    {"content-length", IN(OK_RESP), false, false, 0, 200, "ok", true, 0},
    {"cl zero", IN("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), false, false, 0, 200, "", true,
     0},
    {"bare LF", IN("HTTP/1.1 200 OK\nContent-Length: 2\n\nhi"), false, false, 0, 200, "hi", true,
     0},
    {"no reason", IN("HTTP/1.1 404\r\nContent-Length: 1\r\n\r\nx"), false, false, 0, 404, "x", true,
     0},
    {"empty reason", IN("HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n"), false, false, 0, 500, "",
     true, 0},
    {"OWS values", IN("HTTP/1.1 200 OK\r\nContent-Length: \t 3 \t\r\n\r\nabc"), false, false, 0,
     200, "abc", true, 0},
    {"conn close", IN("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nz"), false,
     false, 0, 200, "z", false, 0},
    {"conn list", IN("HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n"),
     false, false, 0, 200, "", false, 0},
    {"http/1.0", IN("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nz"), false, false, 0, 200, "z",
     false, 0},
    {"http/1.0 keep", IN("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nz"),
     false, false, 0, 200, "z", true, 0},
    {"http/1.2 as 1.1", IN("HTTP/1.2 200 OK\r\nContent-Length: 1\r\n\r\nz"), false, false, 0, 200,
     "z", true, 0},
    {"until close 1.0", IN("HTTP/1.0 200 OK\r\n\r\nall of it\r\nuntil close"), false, true, 0, 200,
     "all of it\r\nuntil close", false, 0},
    {"until close 1.1", IN("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody"), false, true, 0, 200,
     "body", false, 0},
    {"until close no body", IN("HTTP/1.1 200 OK\r\n\r\n"), false, true, 0, 200, "", false, 0},
    {"chunked", IN(CHUNKED "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), false, false, 0, 200,
     "hello world", true, 0},
    {"chunked ext+trailers",
     IN(CHUNKED "5;name=val;x\r\nhello\r\n1 ; e=\"q\"\r\n!\r\n0;last\r\nX-T: a\r\nY: b\r\n\r\n"),
     false, false, 0, 200, "hello!", true, 0},
    {"chunked hex", IN(CHUNKED "A\r\n0123456789\r\nb\r\nabcdefghijk\r\n000\r\n\r\n"), false, false,
     0, 200, "0123456789abcdefghijk", true, 0},
    {"chunked bare LF", IN(CHUNKED "3\nabc\n0\n\n"), false, false, 0, 200, "abc", true, 0},
    {"te list chunked",
     IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n2\r\nzz\r\n0\r\n\r\n"), false,
     false, 0, 200, "zz", true, 0},
    {"te not chunked", IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw"), false, true, 0,
     200, "raw", false, 0},
    {"te wins over cl",
     IN("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\nhi\r\n0\r\n\r\n"),
     false, false, 0, 200, "hi", false, 0},
    {"head", IN("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), true, false, 0, 200, "", true,
     0},
    {"204 ignores body", IN("HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\nbody"), false,
     false, 0, 204, "", true, sizeof("HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\n") - 1},
    {"304", IN("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"), false, false, 0,
     304, "", true, 0},
    {"100 continue", IN("HTTP/1.1 100 Continue\r\n\r\n" OK_RESP), false, false, 0, 200, "ok", true,
     0},
    {"103 hints",
     IN("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
        "HTTP/1.1 100 Continue\r\n\r\n" OK_RESP),
     false, false, 0, 200, "ok", true, 0},
    {"pipelined", IN(OK_RESP OK_RESP "HTTP/1.1 500 X\r\n"), false, false, 0, 200, "ok", true,
     sizeof(OK_RESP) - 1},
    {"pipelined chunked", IN(CHUNKED "1\r\na\r\n0\r\n\r\n" OK_RESP), false, false, 0, 200, "a",
     true, sizeof(CHUNKED "1\r\na\r\n0\r\n\r\n") - 1},
    {"dup cl same", IN("HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok"),
     false, false, 0, 200, "ok", true, 0},
    {"big cl, eof", IN("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nabc"), false,
     true, HTTP_E_EOF, 200, "abc", false, 0},
    /* errors */
    {"not http", IN("HTTX/1.1 200 OK\r\n\r\n"), false, false, HTTP_E_STATUS_LINE, 0, "", false, 0},
    {"garbage", IN("hello\r\n"), false, false, HTTP_E_STATUS_LINE, 0, "", false, 0},
    {"leading blank line", IN("\r\n" OK_RESP), false, false, HTTP_E_STATUS_LINE, 0, "", false, 0},
    {"http/2", IN("HTTP/2.0 200 OK\r\n\r\n"), false, false, HTTP_E_VERSION, 0, "", false, 0},
    {"http/1", IN("HTTP/1 200 OK\r\n\r\n"), false, false, HTTP_E_VERSION, 0, "", false, 0},
    {"version letters", IN("HTTP/1.x 200 OK\r\n\r\n"), false, false, HTTP_E_VERSION, 0, "", false,
     0},
    {"two-digit code", IN("HTTP/1.1 20 OK\r\n\r\n"), false, false, HTTP_E_STATUS_CODE, 0, "", false,
     0},
    {"four-digit code", IN("HTTP/1.1 2000 OK\r\n\r\n"), false, false, HTTP_E_STATUS_CODE, 0, "",
     false, 0},
    {"code 600", IN("HTTP/1.1 600 X\r\n\r\n"), false, false, HTTP_E_STATUS_CODE, 0, "", false, 0},
    {"code 099", IN("HTTP/1.1 099 X\r\n\r\n"), false, false, HTTP_E_STATUS_CODE, 0, "", false, 0},
    {"code letters", IN("HTTP/1.1 2x0 X\r\n\r\n"), false, false, HTTP_E_STATUS_CODE, 0, "", false,
     0},
    {"CR in status", IN("HTTP/1.1 200 O\rK\r\n\r\n"), false, false, HTTP_E_STATUS_LINE, 0, "",
     false, 0},
    {"no colon", IN("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n"), false, false, HTTP_E_HEADER, 200, "",
     false, 0},
    {"empty name", IN("HTTP/1.1 200 OK\r\n: v\r\n\r\n"), false, false, HTTP_E_HEADER, 200, "",
     false, 0},
    {"space before colon", IN("HTTP/1.1 200 OK\r\nName : v\r\n\r\n"), false, false, HTTP_E_HEADER,
     200, "", false, 0},
    {"obs-fold", IN("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"), false, false, HTTP_E_HEADER, 200, "",
     false, 0},
    {"NUL in header", IN("HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n"), false, false, HTTP_E_HEADER, 200,
     "", false, 0},
    {"NUL in status", IN("HTTP/1.1 200 O\0K\r\n\r\n"), false, false, HTTP_E_STATUS_LINE, 0, "",
     false, 0},
    {"CR in header", IN("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n"), false, false, HTTP_E_HEADER, 200, "",
     false, 0},
    {"cl letters", IN("HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n"), false, false,
     HTTP_E_CONTENT_LENGTH, 200, "", false, 0},
    {"cl negative", IN("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), false, false,
     HTTP_E_CONTENT_LENGTH, 200, "", false, 0},
    {"cl empty", IN("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"), false, false,
     HTTP_E_CONTENT_LENGTH, 200, "", false, 0},
    {"cl list", IN("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok"), false, false,
     HTTP_E_CONTENT_LENGTH, 200, "", false, 0},
    {"cl overflow", IN("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n"), false,
     false, HTTP_E_CONTENT_LENGTH, 200, "", false, 0},
    {"cl conflict", IN("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"),
     false, false, HTTP_E_CONTENT_LENGTH, 200, "", false, 0},
    {"chunk not hex", IN(CHUNKED "zz\r\n"), false, false, HTTP_E_CHUNK_SIZE, 200, "", false, 0},
    {"chunk empty size", IN(CHUNKED "\r\n"), false, false, HTTP_E_CHUNK_SIZE, 200, "", false, 0},
    {"chunk negative", IN(CHUNKED "-5\r\n"), false, false, HTTP_E_CHUNK_SIZE, 200, "", false, 0},
    {"chunk junk after", IN(CHUNKED "5 x\r\nhello\r\n"), false, false, HTTP_E_CHUNK_SIZE, 200, "",
     false, 0},
    {"chunk overflow", IN(CHUNKED "11111111111111111\r\n"), false, false, HTTP_E_CHUNK_SIZE, 200,
     "", false, 0},
    {"chunk no CRLF", IN(CHUNKED "5\r\nhelloX\r\n0\r\n\r\n"), false, false, HTTP_E_CHUNK_END, 200,
     "hello", false, 0},
    {"chunk CR no LF", IN(CHUNKED "5\r\nhello\rX"), false, false, HTTP_E_CHUNK_END, 200, "hello",
     false, 0},
    {"bad trailer", IN(CHUNKED "0\r\nno colon\r\n\r\n"), false, false, HTTP_E_HEADER, 200, "",
     false, 0},
    {"closed before", "", 0, false, true, HTTP_E_CLOSED, 0, "", false, 0},
    {"eof in status", IN("HTTP/1.1 20"), false, true, HTTP_E_EOF, 0, "", false, 0},
    {"eof in headers", IN("HTTP/1.1 200 OK\r\nContent-Le"), false, true, HTTP_E_EOF, 200, "", false,
     0},
    {"eof after 100", IN("HTTP/1.1 100 Continue\r\n\r\n"), false, true, HTTP_E_EOF, 0, "", false,
     0},
    {"eof in body", IN("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), false, true, HTTP_E_EOF,
     200, "abc", false, 0},
    {"eof in chunk", IN(CHUNKED "5\r\nhel"), false, true, HTTP_E_EOF, 200, "hel", false, 0},
    {"eof before last chunk", IN(CHUNKED "5\r\nhello\r\n"), false, true, HTTP_E_EOF, 200, "hello",
     false, 0},
    {"eof in trailers", IN(CHUNKED "0\r\nX: y\r\n"), false, true, HTTP_E_EOF, 200, "", false, 0},
};

static void check_case(const struct rcase *c, const struct result *r)
{
    if (r->err != c->err || r->status != c->status || r->keep != c->keep)
        print_error("case '%s': err %d (%s) status %d keep %d\n", c->name, r->err,
                    http_strerror(r->err), r->status, r->keep);
    assert_int_equal(r->err, c->err);
    assert_int_equal(r->done, c->err == 0);
    assert_int_equal(r->status, c->status);
    assert_int_equal(r->keep, c->keep);
    assert_int_equal(r->body.len, strlen(c->body));
    if (r->body.len)
        assert_memory_equal(r->body.s, c->body, r->body.len);
    if (c->err == 0)
        assert_int_equal(r->consumed, c->consumed ? c->consumed : c->len);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < SONDE_ARRAY_LEN(cases); i++) {
        const struct rcase *c = &cases[i];
        for (int report = 0; report < 2; report++) {
            struct result whole, other;
            run(c->in, c->len, c->head, c->eof, report, 0, &whole);
            check_case(c, &whole);
            run(c->in, c->len, c->head, c->eof, report, 1, &other);
            assert_same(&whole, &other);
            result_free(&other);
            for (int seed = 1; seed <= 20; seed++) {
                rng_state = 0x9e3779b97f4a7c15ULL * (uint64_t)seed;
                run(c->in, c->len, c->head, c->eof, report, 2 + seed % 9, &other);
                assert_same(&whole, &other);
                result_free(&other);
            }
            result_free(&whole);
        }
    }
}

static void test_report_headers(void **state)
{
    (void)state;
    static const char in[] = "HTTP/1.1 103 Early\r\nLink: x\r\n\r\n"
                             "HTTP/1.1 201 Created here\r\nContent-Type:  text/event-stream \r\n"
                             "X-Empty:\r\nContent-Length: 0\r\n\r\n";
    struct result r;
    run(in, sizeof(in) - 1, false, false, true, 1, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.reason, "Created here");
    assert_string_equal(r.ctype, "text/event-stream");
    assert_string_equal(r.heads.s, "Content-Type=text/event-stream\nX-Empty=\nContent-Length=0\n");
    result_free(&r);
    /* Without reporting, the selected headers are still parsed. */
    run(in, sizeof(in) - 1, false, false, false, 0, &r);
    assert_null(r.heads.s);
    assert_string_equal(r.ctype, "text/event-stream");
    result_free(&r);
}

static void test_pipeline_reset(void **state)
{
    (void)state;
    static const char in[] = OK_RESP CHUNKED "3\r\nabc\r\n0\r\n\r\n"
                                             "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    struct http_resp_parser p;
    struct http_resp_events ev;
    size_t off = 0, used = 0, bodies = 0;
    http_resp_init(&p, NULL, false);
    int r, done = 0;
    while (done < 3 && (r = http_resp_feed(&p, in + off, sizeof(in) - 1 - off, &used, &ev)) > 0) {
        off += used;
        if (r == HTTP_EV_BODY)
            bodies += ev.len;
        if (r == HTTP_EV_DONE) {
            assert_true(http_resp_keep_alive(&p));
            /* Feeding a finished parser consumes nothing. */
            assert_int_equal(http_resp_feed(&p, in + off, 1, &used, &ev), HTTP_EV_DONE);
            assert_int_equal(used, 0);
            http_resp_reset(&p, ++done == 2);
        }
    }
    assert_int_equal(done, 3);
    assert_int_equal(bodies, 5);
    assert_int_equal(off, sizeof(in) - 1);
}

static void test_eof_after_headers(void **state)
{
    (void)state;
    static const char *const complete[] = {
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    };
    struct http_resp_parser p;
    struct http_resp_events ev;
    size_t used, off;
    for (size_t i = 0; i < SONDE_ARRAY_LEN(complete); i++) {
        /* The socket closes right after the last byte, before DONE was pulled. */
        http_resp_init(&p, NULL, false);
        size_t len = strlen(complete[i]);
        for (off = 0; off < len; off += used)
            assert_true(http_resp_feed(&p, complete[i] + off, len - off, &used, &ev) > 0);
        assert_int_equal(http_resp_eof(&p), HTTP_EV_DONE);
    }
    /* An error sticks: further feeds and EOF report it again. */
    http_resp_init(&p, NULL, false);
    assert_int_equal(http_resp_feed(&p, "HTTP/9.9 200 OK\r\n", 17, &used, &ev), -HTTP_E_VERSION);
    assert_int_equal(http_resp_feed(&p, "HTTP/1.1 200 OK\r\n", 17, &used, &ev), -HTTP_E_VERSION);
    assert_int_equal(http_resp_eof(&p), -HTTP_E_VERSION);
    assert_false(http_resp_keep_alive(&p));
    /* Not done yet: keep-alive is false until DONE. */
    http_resp_init(&p, NULL, false);
    assert_int_equal(http_resp_feed(&p, OK_RESP, 4, &used, &ev), HTTP_EV_NONE);
    assert_false(http_resp_keep_alive(&p));
}

/* ---- limits ---------------------------------------------------------------- */

static int run_err(const char *in, size_t len, const struct http_limits *lim, int split)
{
    struct http_resp_parser p;
    http_resp_init(&p, lim, false);
    size_t start = 0, avail = 0;
    int r = HTTP_EV_NONE;
    while (r >= 0 && r != HTTP_EV_DONE) {
        if (r == HTTP_EV_NONE) {
            if (avail == len)
                return 0;
            avail += chunk_size(split, len - avail);
        }
        size_t used = 0;
        struct http_resp_events ev;
        r = http_resp_feed(&p, in + start, avail - start, &used, &ev);
        if (r >= 0)
            start += used;
        /* An incomplete line never waits beyond the limits. */
        if (split)
            assert_true(avail - start <= 70000 + 4096);
    }
    return r < 0 ? -r : 0;
}

static char *big_response(size_t pre, size_t line, int count, bool complete)
{
    struct sbuf b = {0};
    sbuf_puts(&b, "HTTP/1.1 200 OK");
    for (size_t i = 0; i < pre; i++)
        sbuf_add(&b, "s", 1); /* extends the status line's reason */
    sbuf_puts(&b, "\r\n");
    for (int h = 0; h < count; h++) {
        sbuf_printf(&b, "X-%d: ", h);
        for (size_t i = 0; i < line; i++)
            sbuf_add(&b, "v", 1);
        sbuf_puts(&b, "\r\n");
    }
    if (complete)
        sbuf_puts(&b, "Content-Length: 0\r\n\r\n");
    return sbuf_steal(&b);
}

static void test_limits(void **state)
{
    (void)state;
    for (int split = 0; split < 3; split++) {
        int s = split == 2 ? 4096 : split;
        rng_state = 42;
        char *in = big_response(0, 1 << 20, 1, true); /* a 1 MiB header line */
        assert_int_equal(run_err(in, strlen(in), NULL, s), HTTP_E_HEADER_TOO_LARGE);
        in[(8 << 10) + 100] = '\0'; /* never completed: an error, not a wait */
        assert_int_equal(run_err(in, strlen(in), NULL, s), HTTP_E_HEADER_TOO_LARGE);
        free(in);
        in = big_response(0, 8 << 10, 1, true); /* just over 8 KiB with the name */
        assert_int_equal(run_err(in, strlen(in), NULL, s), HTTP_E_HEADER_TOO_LARGE);
        free(in);
        in = big_response(0, (8 << 10) - 10, 1, true); /* just under */
        assert_int_equal(run_err(in, strlen(in), NULL, s), 0);
        free(in);
        in = big_response(0, 1000, 70, true); /* 70 KB section */
        assert_int_equal(run_err(in, strlen(in), NULL, s), HTTP_E_HEADER_TOO_LARGE);
        free(in);
        in = big_response(0, 1, 256, false); /* 256 + Content-Length */
        size_t n = strlen(in);
        assert_int_equal(run_err(in, n, NULL, s), 0);
        free(in);
        in = big_response(0, 1, 256, true);
        assert_int_equal(run_err(in, strlen(in), NULL, s), HTTP_E_TOO_MANY_HEADERS);
        free(in);
        in = big_response((8 << 10) - 20, 1, 0, true);
        assert_int_equal(run_err(in, strlen(in), NULL, s), 0);
        free(in);
        in = big_response(9 << 10, 1, 0, true);
        assert_int_equal(run_err(in, strlen(in), NULL, s), HTTP_E_STATUS_TOO_LONG);
        free(in);
    }
    /* Chunk-size line with a long extension. */
    struct sbuf b = {0};
    sbuf_puts(&b, CHUNKED "5;");
    for (int i = 0; i < 2000; i++)
        sbuf_add(&b, "e", 1);
    sbuf_puts(&b, "\r\nhello\r\n0\r\n\r\n");
    assert_int_equal(run_err(b.s, b.len, NULL, 1), HTTP_E_CHUNK_LINE_TOO_LONG);
    assert_int_equal(run_err(b.s, b.len, NULL, 0), HTTP_E_CHUNK_LINE_TOO_LONG);
    /* Custom limits. */
    struct http_limits lim = http_limits_default;
    lim.chunk_line_max = 4096;
    assert_int_equal(run_err(b.s, b.len, &lim, 1), 0);
    lim.header_count_max = 1;
    assert_int_equal(run_err(IN(OK_RESP), &lim, 1), 0);
    assert_int_equal(run_err(IN("HTTP/1.1 200 OK\r\nA: b\r\nContent-Length: 0\r\n\r\n"), &lim, 0),
                     HTTP_E_TOO_MANY_HEADERS);
    sbuf_free(&b);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(http_strerror(-HTTP_E_STATUS_LINE), "malformed status line");
    assert_string_equal(http_strerror(HTTP_E_CLOSED), "connection closed before response");
    assert_string_equal(http_strerror(-HTTP_E_HEADER_TOO_LARGE), "header too large");
    assert_string_equal(http_strerror(-EINVAL), strerror(EINVAL));
    /* Every error is named distinctly. */
    for (int e = HTTP_E_STATUS_LINE; e <= HTTP_E_CLOSED; e++)
        for (int f = e + 1; f <= HTTP_E_CLOSED; f++)
            assert_string_not_equal(http_strerror(e), http_strerror(f));
}

/* ---- throughput (printed, not asserted) -------------------------------------- */

static void test_throughput(void **state)
{
    (void)state;
    static const char one[] = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n"
                              "Date: Wed, 25 Nov 2026 07:00:00 GMT\r\n"
                              "Content-Type: text/html\r\nContent-Length: 100\r\n"
                              "Last-Modified: Wed, 25 Nov 2026 06:00:00 GMT\r\n"
                              "Connection: keep-alive\r\nETag: \"abc-64\"\r\n"
                              "Accept-Ranges: bytes\r\n\r\n";
    size_t per = sizeof(one) - 1 + 100, count = 20000;
    char *buf = xmalloc(per * count);
    for (size_t i = 0; i < count; i++) {
        memcpy(buf + i * per, one, sizeof(one) - 1);
        memset(buf + i * per + sizeof(one) - 1, 'x', 100);
    }
    struct http_resp_parser p;
    struct http_resp_events ev;
    http_resp_init(&p, NULL, false);
    int64_t t0 = mono_ns();
    size_t done = 0, rounds = 10;
    for (size_t round = 0; round < rounds; round++) {
        size_t off = 0, used, goal = done + count;
        while (done < goal) {
            int r = http_resp_feed(&p, buf + off, per * count - off, &used, &ev);
            assert_true(r > 0);
            off += used;
            if (r == HTTP_EV_DONE) {
                done++;
                http_resp_reset(&p, false);
            }
        }
    }
    double s = (double)(mono_ns() - t0) / 1e9;
    assert_int_equal(done, count * rounds);
    print_message("http parser: %.0f MB/s, %.2f M responses/s (%zu-byte responses)\n",
                  (double)(per * count * rounds) / s / 1e6, (double)done / s / 1e6, per);
    free(buf);
}

/* ---- SSE ------------------------------------------------------------------ */

static void collect(void *ud, const char *event, size_t elen, const char *data, size_t dlen)
{
    struct sbuf *b = ud;
    assert_int_equal(data[dlen], '\0');
    sbuf_add(b, event, elen);
    sbuf_add(b, "|", 1);
    sbuf_add(b, data, dlen);
    sbuf_add(b, ";", 1);
}

/* Feeds in at the given split; returns the collected events ("" when none). */
static char *sse_run(const char *in, size_t len, int split, size_t max, int *err, char **id)
{
    struct sse_parser p;
    struct sbuf out = {0};
    sse_init(&p, max);
    int r = 0;
    for (size_t off = 0; off < len && r == 0;) {
        size_t k = chunk_size(split, len - off);
        char *chunk = xmalloc(k);
        memcpy(chunk, in + off, k);
        r = sse_feed(&p, chunk, k, collect, &out);
        free(chunk);
        off += k;
    }
    *err = r;
    if (id)
        *id = xstrdup(sse_last_id(&p));
    sse_free(&p);
    return sbuf_steal(&out);
}

struct sse_case {
    const char *in;
    const char *want;
    const char *id;
};

static const struct sse_case sse_cases[] = {
    {"data: hello\n\n", "message|hello;", ""},
    {"data: a\ndata: b\n\n", "message|a\nb;", ""},
    {"data: x\r\rdata: y\r\r", "message|x;message|y;", ""},
    {"event: upd\r\ndata: 1\r\n\r\n", "upd|1;", ""},
    {": keepalive\n\n:another\ndata: z\n\n", "message|z;", ""},
    {"id: 42\ndata: q\n\nid\ndata: r\n\n", "message|q;message|r;", ""},
    {"id: 42\ndata: q\n\n", "message|q;", "42"},
    {"data:nospace\n\ndata:  two\n\n", "message|nospace;message| two;", ""},
    {"data\n\n", "message|;", ""},
    {"data:\ndata:\n\n", "message|\n;", ""},
    {"data: a\n\ndata: b\n", "message|a;", ""},
    {"data: a\n\ndata: b", "message|a;", ""},
    {"event: e1\ndata: 1\n\ndata: 2\n\n", "e1|1;message|2;", ""},
    {"event: lonely\n\ndata: 3\n\n", "message|3;", ""},
    {"foo: bar\ndata: 4\nretry: x\n\n", "message|4;", ""},
    {"\xEF\xBB\xBF"
     "data: bom\n\n",
     "message|bom;", ""},
    {"data: a\r\n\r\ndata: b\r\n\r\n", "message|a;message|b;", ""},
    {"data: mixed\r\ndata: ends\n\r", "message|mixed\nends;", ""},
    {"data: {\"a\":1}\n\ndata: [DONE]\n\n", "message|{\"a\":1};message|[DONE];", ""},
    {"", "", ""},
};

static void test_sse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < SONDE_ARRAY_LEN(sse_cases); i++) {
        const struct sse_case *c = &sse_cases[i];
        for (int split = 0; split < 12; split++) {
            rng_state = 7 + (uint64_t)split;
            int err;
            char *id;
            char *got = sse_run(c->in, strlen(c->in), split, 0, &err, &id);
            assert_int_equal(err, 0);
            if (strcmp(got, c->want) != 0)
                print_error("sse case %zu split %d: got '%s'\n", i, split, got);
            assert_string_equal(got, c->want);
            assert_string_equal(id, c->id);
            free(got);
            free(id);
        }
    }
}

static void test_sse_split_crlf(void **state)
{
    (void)state;
    struct sse_parser p;
    struct sbuf out = {0};
    sse_init(&p, 0);
    /* A CRLF split across feeds is one line end, not two (else "a" would dispatch). */
    assert_int_equal(sse_feed(&p, "data: a\r", 8, collect, &out), 0);
    assert_int_equal(sse_feed(&p, "\ndata: b\r\n", 10, collect, &out), 0);
    assert_null(out.s);
    assert_int_equal(sse_feed(&p, "\r", 1, collect, &out), 0);
    assert_string_equal(out.s, "message|a\nb;");
    /* A lone CR at the end of a feed followed by another line. */
    assert_int_equal(sse_feed(&p, "retry: 1500\r", 12, collect, &out), 0);
    assert_int_equal(sse_feed(&p, "data: c\n\n", 9, collect, &out), 0);
    assert_string_equal(out.s, "message|a\nb;message|c;");
    assert_int_equal(p.retry_ms, 1500);
    sse_free(&p);
    sbuf_free(&out);
    sse_free(NULL);
}

static void test_sse_limits(void **state)
{
    (void)state;
    for (int split = 0; split < 3; split++) {
        rng_state = 99;
        int err;
        char *got;
        /* Data over the bound. */
        got = sse_run("data: 0123456789\ndata: 0123456789\n\n", 35, split, 20, &err, NULL);
        assert_int_equal(err, -EMSGSIZE);
        free(got);
        /* A line that never ends. */
        char line[200];
        memset(line, 'x', sizeof(line));
        got = sse_run(line, sizeof(line), split, 64, &err, NULL);
        assert_int_equal(err, -EMSGSIZE);
        free(got);
        /* Under the bound. */
        got = sse_run("data: 0123456789\n\n", 18, split, 20, &err, NULL);
        assert_int_equal(err, 0);
        assert_string_equal(got, "message|0123456789;");
        free(got);
    }
    /* After an error every feed fails. */
    struct sse_parser p;
    struct sbuf out = {0};
    sse_init(&p, 8);
    assert_int_equal(sse_feed(&p, "data: 123456789\n\n", 17, collect, &out), -EMSGSIZE);
    assert_int_equal(sse_feed(&p, "data: 1\n\n", 9, collect, &out), -EMSGSIZE);
    assert_null(out.s);
    sse_free(&p);
}

/* ---- request builder -------------------------------------------------------- */

static void test_req_build(void **state)
{
    (void)state;
    struct sbuf b = {0};
    assert_int_equal(http_req_build(&b, "GET", "example.com", "/", NULL, NULL, 0), 0);
    assert_string_equal(b.s, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    const char *hdrs[] = {"Content-Type: application/json", "X-Id: 7", NULL};
    assert_int_equal(http_req_build(&b, "POST", "h:8080", "/v1/x?a=b", hdrs, "{}", 2), 0);
    assert_string_equal(b.s, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
                             "POST /v1/x?a=b HTTP/1.1\r\nHost: h:8080\r\n"
                             "Content-Type: application/json\r\nX-Id: 7\r\n"
                             "Content-Length: 2\r\n\r\n{}");
    sbuf_free(&b);
    /* Empty body: Content-Length 0; body bytes may be anything. */
    assert_int_equal(http_req_build(&b, "PUT", "h", "/", NULL, "", 0), 0);
    assert_string_equal(b.s, "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    sbuf_free(&b);
    assert_int_equal(http_req_build(&b, "POST", "h", "/", NULL, "a\r\n\0b", 5), 0);
    assert_int_equal(b.len, strlen("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n") + 5);
    sbuf_free(&b);
    /* A caller's Host replaces the default one. */
    const char *host[] = {"host: other", NULL};
    assert_int_equal(http_req_build(&b, "GET", "h", "/", host, NULL, 0), 0);
    assert_string_equal(b.s, "GET / HTTP/1.1\r\nhost: other\r\n\r\n");
    sbuf_free(&b);
}

static void test_req_injection(void **state)
{
    (void)state;
    struct sbuf b = {0};
    sbuf_puts(&b, "keep");
    const char *bad_hdrs[][2] = {
        {"X: a\r\nEvil: 1", NULL},
        {"X: a\nEvil: 1", NULL},
        {"NoColon", NULL},
        {": novalue", NULL},
        {"Bad Name: v", NULL},
        {"Content-Length: 5", NULL},
        {"transfer-encoding: chunked", NULL},
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(bad_hdrs); i++)
        assert_int_equal(http_req_build(&b, "GET", "h", "/", bad_hdrs[i], NULL, 0), -EINVAL);
    assert_int_equal(http_req_build(&b, "GET\r\n", "h", "/", NULL, NULL, 0), -EINVAL);
    assert_int_equal(http_req_build(&b, "GET /x", "h", "/", NULL, NULL, 0), -EINVAL);
    assert_int_equal(http_req_build(&b, "", "h", "/", NULL, NULL, 0), -EINVAL);
    assert_int_equal(http_req_build(&b, NULL, "h", "/", NULL, NULL, 0), -EINVAL);
    assert_int_equal(http_req_build(&b, "GET", "h", "/a\r\nX: y", NULL, NULL, 0), -EINVAL);
    assert_int_equal(http_req_build(&b, "GET", "h", "/a b", NULL, NULL, 0), -EINVAL);
    assert_int_equal(http_req_build(&b, "GET", "h", "", NULL, NULL, 0), -EINVAL);
    assert_int_equal(http_req_build(&b, "GET", "h\r\nX: y", "/", NULL, NULL, 0), -EINVAL);
    assert_int_equal(http_req_build(&b, "GET", "h\n", "/", NULL, NULL, 0), -EINVAL);
    assert_int_equal(http_req_build(&b, "GET", NULL, "/", NULL, NULL, 0), -EINVAL);
    assert_string_equal(b.s, "keep");
    /* Full buffer: -ENOSPC and the buffer unchanged. */
    b.max = 32;
    assert_int_equal(http_req_build(&b, "GET", "example.com", "/long/path", NULL, NULL, 0),
                     -ENOSPC);
    assert_string_equal(b.s, "keep");
    assert_int_equal(b.len, 4);
    sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_report_headers),
        cmocka_unit_test(test_pipeline_reset), cmocka_unit_test(test_eof_after_headers),
        cmocka_unit_test(test_limits),         cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_throughput),     cmocka_unit_test(test_sse_table),
        cmocka_unit_test(test_sse_split_crlf), cmocka_unit_test(test_sse_limits),
        cmocka_unit_test(test_req_build),      cmocka_unit_test(test_req_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
