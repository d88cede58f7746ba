/* units.c — durations and sizes with units: "500ms", "1.5s", "4KiB", "1MB". */
#include "util/units.h"
#include "util/util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct unit {
    const char *name;
    int64_t mult;
};

static const struct unit duration_units[] = {
    {"ns", 1LL},
    {"us", 1000LL},
    {"ms", 1000000LL},
    {"s", 1000000000LL},
    {"m", 60LL * 1000000000LL},
    {"h", 3600LL * 1000000000LL},
    {"d", 86400LL * 1000000000LL},
    {NULL, 0},
};

static const struct unit size_units[] = {
    {"B", 1LL},
    {"KB", 1000LL},
    {"kB", 1000LL},
    {"MB", 1000LL * 1000},
    {"GB", 1000LL * 1000 * 1000},
    {"TB", 1000LL * 1000 * 1000 * 1000},
    {"KiB", 1LL << 10},
    {"MiB", 1LL << 20},
    {"GiB", 1LL << 30},
    {"TiB", 1LL << 40},
    {"k", 1LL << 10},
    {"K", 1LL << 10},
    {"M", 1LL << 20},
    {"G", 1LL << 30},
    {"T", 1LL << 40},
    {NULL, 0},
};

/* A parsed "number": integer part and the fraction digits as written. */
struct number {
    int64_t ipart;
    const char *frac; /* first fraction digit, or NULL */
    size_t nfrac;
};

/* Parses digits[.digits] from *sp; advances *sp. -EINVAL / -ERANGE. */
static int parse_number(const char **sp, struct number *n)
{
    const char *s = *sp;
    *n = (struct number){0};
    if (*s < '0' || *s > '9')
        return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (n->ipart > (INT64_MAX - (*s - '0')) / 10)
            return -ERANGE;
        n->ipart = n->ipart * 10 + (*s - '0');
    }
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return -EINVAL;
        n->frac = s;
        while (*s >= '0' && *s <= '9')
            s++, n->nfrac++;
    }
    *sp = s;
    return 0;
}

static const struct unit *find_unit(const struct unit *units, const char *s)
{
    for (size_t i = 0; units[i].name; i++)
        if (strcmp(units[i].name, s) == 0)
            return &units[i];
    return NULL;
}

/* value = n * mult, with overflow checks. */
static int scale(const struct number *n, int64_t mult, int64_t *out)
{
    if (n->ipart > INT64_MAX / mult)
        return -ERANGE;
    int64_t v = n->ipart * mult;
    /* Each fraction digit adds digit * mult / 10^k; digits past ns precision vanish. */
    int64_t f = 0, div = 10;
    for (size_t k = 0; k < n->nfrac && div <= mult; k++, div *= 10)
        f += (n->frac[k] - '0') * (mult / div) + (n->frac[k] - '0') * (mult % div) / div;
    if (v > INT64_MAX - f)
        return -ERANGE;
    *out = v + f;
    return 0;
}

static int parse_with_units(const char *s, const struct unit *units, bool bare_ok, int64_t *out)
{
    if (!s)
        return -EINVAL;
    struct number n;
    int r = parse_number(&s, &n);
    if (r < 0)
        return r;
    while (*s == ' ')
        s++;
    if (*s == '\0') {
        if (!bare_ok || n.frac)
            return -EINVAL;
        *out = n.ipart;
        return 0;
    }
    const struct unit *u = find_unit(units, s);
    if (!u)
        return -EINVAL;
    return scale(&n, u->mult, out);
}

int parse_duration_ns(const char *s, int64_t *out)
{
    return parse_with_units(s, duration_units, false, out);
}

int parse_size_bytes(const char *s, int64_t *out)
{
    return parse_with_units(s, size_units, true, out);
}

/* Prints v with up to two decimals, trailing zeros removed. */
static void print_trimmed(char *buf, size_t n, double v, const char *unit)
{
    char num[64];
    snprintf(num, sizeof(num), "%.2f", v);
    char *dot = strchr(num, '.');
    if (dot) {
        char *e = num + strlen(num) - 1;
        while (e > dot && *e == '0')
            *e-- = '\0';
        if (e == dot)
            *e = '\0';
    }
    snprintf(buf, n, "%s%s", num, unit);
}

void format_duration(int64_t ns, char *buf, size_t n)
{
    if (n == 0)
        return;
    const char *sign = ns < 0 ? "-" : "";
    double a = ns < 0 ? -(double)ns : (double)ns;
    char tmp[64];
    if (a < 1e3)
        print_trimmed(tmp, sizeof(tmp), a, "ns");
    else if (a < 1e6)
        print_trimmed(tmp, sizeof(tmp), a / 1e3, "us");
    else if (a < 1e9)
        print_trimmed(tmp, sizeof(tmp), a / 1e6, "ms");
    else if (a < 60e9)
        print_trimmed(tmp, sizeof(tmp), a / 1e9, "s");
    else if (a < 3600e9)
        print_trimmed(tmp, sizeof(tmp), a / 60e9, "m");
    else
        print_trimmed(tmp, sizeof(tmp), a / 3600e9, "h");
    snprintf(buf, n, "%s%s", sign, tmp);
}

void format_size(int64_t bytes, char *buf, size_t n)
{
    static const char *const names[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (n == 0)
        return;
    if (bytes < 1024 && bytes > -1024) {
        snprintf(buf, n, "%lld B", (long long)bytes);
        return;
    }
    double v = (double)bytes;
    size_t i = 0;
    v /= 1024.0;
    while ((v >= 1024.0 || v <= -1024.0) && i + 1 < SONDE_ARRAY_LEN(names))
        v /= 1024.0, i++;
    snprintf(buf, n, "%.1f %s", v, names[i]);
}
