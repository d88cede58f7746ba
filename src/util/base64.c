/* base64.c — strict base64 (see base64.h). */
#include "util/base64.h"
#include "util/util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of an alphabet character, -1 for anything else ('=' included). */
static int sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

char *base64_encode(const void *data, size_t len, size_t *out_len)
{
    const unsigned char *p = data;
    size_t n = (len + 2) / 3 * 4;
    char *out = xmalloc(n + 1), *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = '\0';
    if (out_len)
        *out_len = n;
    return out;
}

int base64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len)
{
    if (len % 4 != 0)
        return -EINVAL;
    const unsigned char *p = (const unsigned char *)s;
    size_t pad = 0;
    if (len > 0 && p[len - 1] == '=')
        pad = len > 1 && p[len - 2] == '=' ? 2 : 1;
    size_t n = len / 4 * 3 - pad;
    unsigned char *buf = xmalloc(n ? n : 1), *o = buf;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        size_t have = last ? 4 - pad : 4; /* alphabet characters in this group */
        uint32_t v = 0;
        for (size_t j = 0; j < 4; j++) {
            int x = j < have ? sextet(p[i + j]) : 0;
            if (x < 0)
                goto bad;
            v = v << 6 | (uint32_t)x;
        }
        /* the bits a short last group does not use must be zero */
        if ((have == 2 && (v & 0xffff)) || (have == 3 && (v & 0xff)))
            goto bad;
        *o++ = (unsigned char)(v >> 16);
        if (have > 2)
            *o++ = (unsigned char)(v >> 8);
        if (have > 3)
            *o++ = (unsigned char)v;
    }
    *out = buf;
    *out_len = n;
    return 0;
bad:
    free(buf);
    return -EINVAL;
}
