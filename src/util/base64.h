/* base64.h — standard base64 (RFC 4648, "+/" alphabet, "=" padding).
 *
 * Encoding always pads. Decoding is strict, for input that may be hostile:
 * the length must be a multiple of 4, only the alphabet is accepted (no
 * whitespace, no line breaks, no URL-safe "-_"), "=" only as the last one or
 * two characters, and the unused low bits of the last group must be zero, so
 * every byte string has exactly one accepted encoding. */
#ifndef SONDE_BASE64_H
#define SONDE_BASE64_H

#include <stddef.h>

/* Returns the NUL-terminated encoding of data[0..len) (caller frees); *out_len,
 * when not NULL, is set to its length. */
char *base64_encode(const void *data, size_t len, size_t *out_len);
/* Decodes s[0..len) into a new buffer (caller frees; at least one byte is
 * allocated, so an empty result is not NULL). 0, or -EINVAL when s is not
 * valid base64 (then *out is untouched). */
int base64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len);

#endif
