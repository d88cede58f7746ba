/* units.h — durations and sizes written with units in recipes and on the CLI.
 *
 * Durations: a number (integer or decimal) followed by ns, us, ms, s, m, h, d:
 *   "500ms", "2m", "1.5s", "10s". A bare number is an error (units are required).
 * Sizes: a number followed by B, KB, MB, GB, TB (powers of 1000) or
 *   KiB, MiB, GiB, TiB (powers of 1024), also k/K/M/G as 1024 powers:
 *   "4KiB", "1MB", "512B". A bare integer is accepted as bytes.
 * Both return 0, or -EINVAL (not a valid value) / -ERANGE (overflows int64). */
#ifndef SONDE_UNITS_H
#define SONDE_UNITS_H

#include <stddef.h>
#include <stdint.h>

int parse_duration_ns(const char *s, int64_t *out);
int parse_size_bytes(const char *s, int64_t *out);
/* Human formatting into buf: "1.5s", "250ms", "4.0 KiB". */
void format_duration(int64_t ns, char *buf, size_t n);
void format_size(int64_t bytes, char *buf, size_t n);

#endif
