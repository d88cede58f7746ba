/* http_parser.h — HTTP/1.1 client-side protocol pieces for the load engine:
 * an incremental response parser, a text/event-stream (SSE) splitter and a
 * request builder.
 *
 * Response parser: a pull parser with no allocation. The caller owns the read
 * buffer and calls http_resp_feed() repeatedly; every call consumes a prefix of
 * the buffer (*consumed) and returns one event (or 0 = "need more bytes").
 * Bytes not consumed (a partial status/header/chunk-size line) must be kept by
 * the caller at the front of the buffer and presented again, unchanged, with
 * the next bytes appended: the parser never copies a line and remembers how
 * far it already scanned. Body bytes are always consumed at once and given as
 * a pointer into the caller's buffer (no copy). Feeding any split of a byte
 * stream gives the same events and the same result.
 *
 *   struct http_resp_parser p;
 *   http_resp_init(&p, NULL, false);              // NULL limits: defaults
 *   for (;;) {                                    // per read() of buf[0..len)
 *       size_t used; struct http_resp_events ev;
 *       int r = http_resp_feed(&p, buf + off, len - off, &used, &ev);
 *       off += used;
 *       if (r < 0) error(http_strerror(r));        // counts as a protocol error
 *       if (r == HTTP_EV_NONE) break;              // keep buf[off..len), read more
 *       if (r == HTTP_EV_BODY) use(ev.data, ev.len);
 *       if (r == HTTP_EV_DONE) { keep = http_resp_keep_alive(&p); reset; ... }
 *   }
 *   on EOF from the socket: r = http_resp_eof(&p) (HTTP_EV_DONE or an error).
 *
 * Decisions (RFC 9112):
 * - Line ends: CRLF, and a bare LF is accepted (lenient, like wrk). A CR
 *   anywhere else in a line, or a NUL byte, is malformed.
 * - Status line: "HTTP/1.x SP 3DIGIT [SP reason]". Major version must be 1;
 *   a minor above 1 is treated as 1.1. Codes outside 100..599 are rejected.
 * - 1xx interim responses are skipped entirely (no events), then the final
 *   response is parsed. No body for HEAD requests, 1xx, 204 and 304 (any
 *   Content-Length there is ignored and no body bytes are read).
 * - Transfer-Encoding with chunked as the final coding wins over
 *   Content-Length; a response with both is accepted but the connection is
 *   not kept alive. Transfer-Encoding without a final chunked means
 *   read-until-close. Content-Length must be plain digits (no lists); a
 *   duplicate with a different value is an error, an identical one is fine.
 * - obs-fold (a header line starting with SP/HTAB) is rejected as malformed.
 *   Empty lines before the status line are malformed too.
 * - Chunk extensions are ignored; trailers are read and skipped (bounded by
 *   the header limits); a chunk must end with CRLF (or LF).
 * - A too-long header line and a too-large header section are one error,
 *   HTTP_E_HEADER_TOO_LARGE (so the result does not depend on read splits).
 */
#ifndef SONDE_HTTP_PARSER_H
#define SONDE_HTTP_PARSER_H

#include "util/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_limits {
    uint32_t status_line_max;    /* bytes, excluding CRLF: 8 KiB */
    uint32_t header_line_max;    /* one header line: 8 KiB */
    uint32_t header_section_max; /* all header lines with their CRLFs: 64 KiB */
    uint32_t header_count_max;   /* 256 */
    uint32_t chunk_line_max;     /* chunk-size line: 1 KiB */
};
extern const struct http_limits http_limits_default;

/* Events, returned by http_resp_feed (also in ev->type). */
enum http_ev {
    HTTP_EV_NONE = 0,    /* need more bytes: keep the unconsumed tail, read more */
    HTTP_EV_STATUS = 1,  /* only with report_headers: ev->data/len = reason phrase */
    HTTP_EV_HEADER = 2,  /* only with report_headers: ev->name/name_len, ev->data/len */
    HTTP_EV_HEADERS = 3, /* header section complete: status/version/framing known */
    HTTP_EV_BODY = 4,    /* ev->data/len: body bytes (de-chunked), in the caller's buffer */
    HTTP_EV_DONE = 5,    /* message complete; the next byte belongs to the next response */
};

/* Errors are negative values of this enum (above errno's range); http_strerror
 * names them. The parser stays in the error state until re-initialized. */
enum http_err {
    HTTP_E_STATUS_LINE = 1000,  /* malformed status line */
    HTTP_E_VERSION,             /* bad HTTP version */
    HTTP_E_STATUS_CODE,         /* bad status code */
    HTTP_E_STATUS_TOO_LONG,     /* status line over the limit */
    HTTP_E_HEADER_TOO_LARGE,    /* a header line or the header section over the limit */
    HTTP_E_TOO_MANY_HEADERS,    /* header count over the limit */
    HTTP_E_HEADER,              /* malformed header line (incl. NUL, obs-fold) */
    HTTP_E_CONTENT_LENGTH,      /* non-digits, overflow, conflicting duplicates */
    HTTP_E_CHUNK_SIZE,          /* bad chunk-size line (not hex, overflow) */
    HTTP_E_CHUNK_LINE_TOO_LONG, /* chunk-size line over the limit */
    HTTP_E_CHUNK_END,           /* chunk data not followed by CRLF */
    HTTP_E_EOF,                 /* connection closed mid-headers or mid-body */
    HTTP_E_CLOSED,              /* connection closed before any byte of a response */
};
/* Name of an http_err (negative or positive), or strerror() for an errno. */
const char *http_strerror(int err);

struct http_resp_events {
    int type;         /* enum http_ev */
    const char *name; /* HTTP_EV_HEADER: header name (not NUL-terminated) */
    size_t name_len;  /* HTTP_EV_HEADER */
    const char *data; /* HEADER: value (OWS trimmed); STATUS: reason; BODY: bytes */
    size_t len;       /* length of data */
};

/* Embedded by the caller; no allocation. Fields are read-only for callers. */
struct http_resp_parser {
    struct http_limits lim;
    uint8_t state;
    uint8_t version_minor; /* 0 or 1, valid from HTTP_EV_STATUS/HEADERS on */
    bool head_request;
    bool report_headers;
    bool started;       /* a byte of this response was seen */
    bool conn_close;    /* Connection: close */
    bool conn_keep;     /* Connection: keep-alive */
    bool have_cl;       /* a valid Content-Length was seen */
    bool te_present;    /* Transfer-Encoding was seen */
    bool chunked;       /* Transfer-Encoding ends in chunked */
    bool until_close;   /* body runs until the connection closes */
    int status;         /* status code, valid from HTTP_EV_STATUS/HEADERS on */
    int error;          /* the enum http_err once failed, else 0 */
    uint32_t scan;      /* bytes of the unconsumed tail already scanned for LF */
    uint32_t hdr_bytes; /* header (or trailer) section bytes so far */
    uint32_t hdr_count;
    uint64_t content_length; /* valid when have_cl */
    uint64_t remaining;      /* bytes left in the body or the current chunk */
    uint64_t body_bytes;     /* body bytes delivered so far */
    char reason[48];         /* NUL-terminated, truncated copy of the reason phrase */
    char content_type[64];   /* NUL-terminated, truncated copy of Content-Type */
};

/* Prepares p for one response. lim NULL means http_limits_default (copied).
 * head_request: the request was HEAD, so the response has no body. */
void http_resp_init(struct http_resp_parser *p, const struct http_limits *lim, bool head_request);
/* Prepares p for the next response on the same connection, keeping the limits
 * and the report_headers setting. */
void http_resp_reset(struct http_resp_parser *p, bool head_request);
/* With on: HTTP_EV_STATUS and one HTTP_EV_HEADER per header are returned too
 * (default off: headers are parsed for framing only, no events). */
void http_resp_report_headers(struct http_resp_parser *p, bool on);
/* Consumes a prefix of data[0..len): returns an enum http_ev (>= 0) with
 * *consumed and *ev set, or a negative enum http_err (*consumed untouched:
 * the connection is unusable after an error). After HTTP_EV_DONE
 * further calls return HTTP_EV_DONE consuming nothing. */
int http_resp_feed(struct http_resp_parser *p, const char *data, size_t len, size_t *consumed,
                   struct http_resp_events *ev);
/* The peer closed the connection: HTTP_EV_DONE when that completes the
 * response (read-until-close body, or already done), else a negative error
 * (HTTP_E_CLOSED when nothing of the response had arrived, else HTTP_E_EOF). */
int http_resp_eof(struct http_resp_parser *p);
/* After HTTP_EV_DONE: may the connection carry another request? False before
 * completion, after errors, for read-until-close bodies, for "Connection:
 * close" (and HTTP/1.0 without "Connection: keep-alive"), and for CL+TE. */
bool http_resp_keep_alive(const struct http_resp_parser *p);

/* SSE (text/event-stream) splitter. Lines end in CRLF, LF or CR (also split
 * across feeds); fields data (joined with "\n"), event, id, retry; comments
 * (':') ignored; a blank line dispatches the event when it has data. A
 * leading BOM is skipped. An event (pending line + data + type) larger than
 * max_event is an error (-EMSGSIZE), after which every feed fails. */
#define SSE_DEFAULT_MAX ((size_t)1 << 20)
struct sse_parser {
    struct sbuf line;  /* partial line carried between feeds */
    struct sbuf data;  /* data of the event being built */
    struct sbuf event; /* event type of the event being built */
    struct sbuf id;    /* last event id (persists between events) */
    int64_t retry_ms;  /* last valid retry field, -1 when none */
    size_t max_event;
    bool cr_pending; /* the previous feed ended in CR: skip a leading LF */
    bool first_line; /* the next line is the stream's first (BOM check) */
    int error;
};
typedef void (*sse_event_fn)(void *ud, const char *event, size_t elen, const char *data,
                             size_t dlen);
/* max_event 0 means SSE_DEFAULT_MAX. */
void sse_init(struct sse_parser *p, size_t max_event);
/* Frees the buffers; p can be sse_init'ed again. Accepts NULL. */
void sse_free(struct sse_parser *p);
/* Splits data into events, calling on_event for each complete one (event is
 * "message" when no event field was given; data is NUL-terminated). Returns 0
 * or -EMSGSIZE. */
int sse_feed(struct sse_parser *p, const char *data, size_t len, sse_event_fn on_event, void *ud);
/* The last id field seen (empty when none), NUL-terminated. */
const char *sse_last_id(const struct sse_parser *p);

/* Appends an HTTP/1.1 request to out: "METHOD target HTTP/1.1", Host (unless
 * headers has one), the headers ("Name: value", NULL-terminated list, may be
 * NULL), Content-Length when body is non-NULL (body_len may be 0), then the
 * body. -EINVAL for CR, LF or NUL in any input, a method or target with spaces,
 * a header without a valid "Name:", an empty method/target/host, or a
 * caller-given Content-Length/Transfer-Encoding; -ENOSPC when out is full. On
 * error out is unchanged. */
int http_req_build(struct sbuf *out, const char *method, const char *host_header,
                   const char *target, const char *const *headers, const char *body,
                   size_t body_len);

#endif
