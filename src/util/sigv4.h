/* sigv4.h — AWS Signature Version 4 (header-based auth), for the S3 client.
 *
 * Signing a request takes three steps, each exposed here so that tests can
 * compare them against AWS's published vectors:
 *
 *   canonical request  METHOD \n URI \n QUERY \n HEADERS \n \n SIGNED-HEADERS \n PAYLOAD-HASH
 *   string to sign     "AWS4-HMAC-SHA256" \n AMZ-DATE \n SCOPE \n hex(SHA256(canonical request))
 *   signature          hex(HMAC-SHA256(signing key, string to sign))
 *
 * where SCOPE is date8/region/service/aws4_request and the signing key is the
 * HMAC chain of sigv4_signing_key(). The key depends on the date only, so a
 * caller derives it once per UTC day and passes it in with every request; the
 * secret itself is never needed per request, and nothing here prints or logs
 * it (or the key).
 *
 * Built for a load generator: one request costs two SHA-256 passes, no heap
 * allocation of its own (the caller's struct sbuf is reused and grows once),
 * headers sorted in a fixed array (SIGV4_MAX_HEADERS) and query parameters
 * ordered by a comparison that percent-encodes on the fly.
 *
 * Every text-producing function appends to the caller's struct sbuf. On error
 * the buffer is left as it was (same length, same contents) and the function
 * returns a negative errno: -EINVAL for missing or malformed inputs, -E2BIG
 * for more than SIGV4_MAX_HEADERS headers or SIGV4_MAX_QUERY query parameters,
 * -ENOSPC when the buffer's maximum is reached. Thread-safe. */
#ifndef SONDE_SIGV4_H
#define SONDE_SIGV4_H

#include "util/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIGV4_MAX_HEADERS 16 /* signed headers per request */
#define SIGV4_MAX_QUERY   64 /* query parameters per request */
#define SIGV4_KEY_LEN     32 /* signing key, bytes */
#define SIGV4_SIG_HEX_LEN 64 /* signature, hex characters */

/* One header to sign. The name is matched case-insensitively and written in
 * lower case; the value is trimmed and every run of whitespace inside it
 * (spaces, tabs, CR, LF: a folded header) becomes one space. */
struct sigv4_header {
    const char *name;
    const char *value;
};

/* Everything one signature depends on. All strings are NUL-terminated and
 * only read during the call. */
struct sigv4_req {
    const char *method; /* "GET", "PUT", ... (required) */
    /* The canonical URI: the path exactly as sent, already percent-encoded
     * (sigv4_uri_encode with keep_slash; S3 encodes each key once and does not
     * normalise "." / ".." / "//"). "" means "/". Must not contain '?', '#',
     * spaces, control or non-ASCII bytes (-EINVAL: most likely a path that was
     * not encoded). Required. */
    const char *uri;
    /* The query string as sent, without the '?', e.g. "max-keys=2&prefix=J";
     * NULL or "" for none. Canonicalised here: split on '&' (empty pieces are
     * skipped), each name and value is percent-decoded and encoded again in
     * SigV4 form (so already-encoded input stays as it is, lower-case hex
     * becomes upper case, raw bytes such as a space or UTF-8 get encoded and
     * '+' is a literal plus, %2B), a parameter without '=' gets an empty value
     * ("lifecycle" -> "lifecycle="), and the pairs are sorted by encoded name,
     * then encoded value. The caller should therefore send parameters
     * encoded the same way (RFC 3986 unreserved kept, the rest %XX), which is
     * what sigv4_uri_encode(keep_slash=false) produces. */
    const char *query;
    /* Headers to sign, in any order; duplicates of one name are joined with
     * ',' in the order given. Must include at least "host" and, for S3,
     * "x-amz-date" (equal to amz_date) and "x-amz-content-sha256" (equal to
     * payload_hash): this module signs what it is given and adds nothing. */
    const struct sigv4_header *headers;
    size_t n_headers;
    /* Lower-case hex SHA-256 of the body, or "UNSIGNED-PAYLOAD". Required. */
    const char *payload_hash;
    const char *access_key_id;        /* required by sigv4_authorization only */
    const unsigned char *signing_key; /* SIGV4_KEY_LEN bytes, from sigv4_signing_key */
    const char *amz_date;             /* "20150830T123600Z", from sigv4_amz_date */
    const char *region;               /* "us-east-1" */
    const char *service;              /* "s3" */
};

/* Appends s[0..n) percent-encoded the SigV4 way (RFC 3986): the unreserved
 * A-Z a-z 0-9 - . _ ~ are kept, every other byte becomes %XX with upper-case
 * hex (a space is %20, never '+'); '/' is kept when keep_slash (object keys in
 * a path), encoded as %2F otherwise (query names and values). 0, -EINVAL when
 * out is NULL or s is NULL with n > 0, or -ENOSPC. */
int sigv4_uri_encode(struct sbuf *out, const char *s, size_t n, bool keep_slash);

/* Writes the basic ISO 8601 UTC time "20150830T123600Z" of unix_s (seconds
 * since the epoch) into buf, NUL-terminated; its first 8 characters are the
 * date of the credential scope. 0, or -ERANGE outside the years 0000-9999
 * (then buf is ""). */
int sigv4_amz_date(int64_t unix_s, char buf[17]);

/* Derives the signing key HMAC(HMAC(HMAC(HMAC("AWS4" secret, date8), region),
 * service), "aws4_request") into key. Only the first 8 characters of date8
 * are used, so an amz date works too. Intermediate values are wiped. 0, or
 * -EINVAL when an argument is NULL, region or service is empty, or date8 does
 * not start with 8 digits (key is then zeroed). */
int sigv4_signing_key(const char *secret, const char *date8, const char *region,
                      const char *service, unsigned char key[SIGV4_KEY_LEN]);

/* Appends the canonical request of r (see above; it does not end in a
 * newline). Needs method, uri, query, headers, payload_hash; the other fields
 * are ignored. 0 or -errno. */
int sigv4_canonical_request(struct sbuf *out, const struct sigv4_req *r);

/* Appends the string to sign of r: also needs amz_date, region and service.
 * The canonical request is built in out's spare room and dropped again.
 * 0 or -errno. */
int sigv4_string_to_sign(struct sbuf *out, const struct sigv4_req *r);

/* Computes the signature of r (also needs signing_key) as 64 lower-case hex
 * characters plus NUL into sig. scratch is working space only: it is used
 * past its current length and left as it was. 0 or -errno (then sig is ""). */
int sigv4_signature(struct sbuf *scratch, const struct sigv4_req *r,
                    char sig[SIGV4_SIG_HEX_LEN + 1]);

/* Appends the value of the Authorization header, e.g.
 *   AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/s3/aws4_request,
 *   SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=<64 hex>
 * (on one line, ", " between the parts). Needs every field of r. Reusing one
 * sbuf per thread (setting its len to 0 between requests) makes this
 * allocation-free once the buffer has grown to fit. 0 or -errno. */
int sigv4_authorization(struct sbuf *out, const struct sigv4_req *r);

#endif
