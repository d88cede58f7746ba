/* verify.c — fileio's self-checking blocks (verify.h). */
#include "fileio/verify.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* CRC-32 of bytes 8 .. len, in pieces zlib's uInt can take. */
static uint32_t block_crc(const unsigned char *buf, size_t len)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t at = 8; at < len;) {
        size_t k = len - at > (1u << 30) ? (1u << 30) : len - at;
        crc = crc32(crc, buf + at, (uInt)k);
        at += k;
    }
    return (uint32_t)crc;
}

void fx_verify_fill(unsigned char *buf, size_t len, uint64_t offset, uint32_t task, uint64_t seq,
                    uint64_t seed)
{
    uint64_t x = seed ^ (offset * 0x9E3779B97F4A7C15ULL) ^ (seq << 17) ^ 0x5DEECE66DULL;
    for (size_t i = FX_VERIFY_HDR; i < len; i += 8) { /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned char w[8];
        put64(w, x);
        memcpy(buf + i, w, len - i < 8 ? len - i : 8);
    }
    put32(buf, FX_VERIFY_MAGIC);
    put64(buf + 8, offset);
    put32(buf + 16, task);
    put32(buf + 20, (uint32_t)len);
    put64(buf + 24, seq);
    put32(buf + 4, block_crc(buf, len));
}

int fx_verify_check(const unsigned char *buf, size_t len, uint64_t offset, char *why, size_t n)
{
    if (len < FX_VERIFY_HDR || get32(buf) != FX_VERIFY_MAGIC) {
        snprintf(why, n, "no block header (never written by a verify run, or overwritten)");
        return -EILSEQ;
    }
    uint64_t at = get64(buf + 8), seq = get64(buf + 24);
    uint32_t task = get32(buf + 16), blen = get32(buf + 20);
    if (at != offset || blen != len) {
        snprintf(why, n, "the header belongs to the block of %u bytes at offset %llu", blen,
                 (unsigned long long)at);
        return -EILSEQ;
    }
    if (block_crc(buf, len) != get32(buf + 4)) {
        snprintf(why, n, "checksum mismatch (written by task %u, sequence %llu)", task,
                 (unsigned long long)seq);
        return -EILSEQ;
    }
    return 0;
}
