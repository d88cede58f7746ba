/* test_units.c — durations and sizes with units. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/units.h"

#include <errno.h>
#include <string.h>

static int64_t dur(const char *s)
{
    int64_t v = -1;
    assert_int_equal(parse_duration_ns(s, &v), 0);
    return v;
}

static void test_duration_units(void **state)
{
    (void)state;
    assert_int_equal(dur("500ms"), 500000000LL);
    assert_int_equal(dur("2m"), 120000000000LL);
    assert_int_equal(dur("1.5s"), 1500000000LL);
    assert_int_equal(dur("10s"), 10000000000LL);
    assert_int_equal(dur("7ns"), 7);
    assert_int_equal(dur("3us"), 3000);
    assert_int_equal(dur("1h"), 3600000000000LL);
    assert_int_equal(dur("1d"), 86400000000000LL);
    assert_int_equal(dur("0.25ms"), 250000);
    assert_int_equal(dur("0s"), 0);
    assert_int_equal(dur("10 s"), 10000000000LL);
}

static void test_duration_errors(void **state)
{
    (void)state;
    int64_t v = 42;
    const char *bad[] = {"10",  "",     "s",         "ms5", "10 parsecs", "-1s", "1.s",
                         ".5s", "1e3s", "5 minutes", "1s ", "0x10s",      "1,5s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_duration_ns(bad[i], &v), -EINVAL);
        assert_int_equal(v, 42); /* untouched on error */
    }
    assert_int_equal(parse_duration_ns(NULL, &v), -EINVAL);
    assert_int_equal(parse_duration_ns("9999999999999999999999s", &v), -ERANGE);
    assert_int_equal(parse_duration_ns("200000000000d", &v), -ERANGE);
    assert_int_equal(parse_duration_ns("106751d", &v), 0); /* just below the limit */
    assert_int_equal(parse_duration_ns("106752d", &v), -ERANGE);
}

static void test_sizes(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(parse_size_bytes("4KiB", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(parse_size_bytes("1MB", &v), 0);
    assert_int_equal(v, 1000000);
    assert_int_equal(parse_size_bytes("512B", &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(parse_size_bytes("512", &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(parse_size_bytes("1.5GiB", &v), 0);
    assert_int_equal(v, 1610612736LL);
    assert_int_equal(parse_size_bytes("2M", &v), 0);
    assert_int_equal(v, 2097152);
    assert_int_equal(parse_size_bytes("1TB", &v), 0);
    assert_int_equal(v, 1000000000000LL);
    v = 7;
    assert_int_equal(parse_size_bytes("1.5", &v), -EINVAL);
    assert_int_equal(parse_size_bytes("4 parsecs", &v), -EINVAL);
    assert_int_equal(parse_size_bytes("KiB", &v), -EINVAL);
    assert_int_equal(parse_size_bytes("-4KiB", &v), -EINVAL);
    assert_int_equal(parse_size_bytes("4kib", &v), -EINVAL);
    assert_int_equal(v, 7);
    assert_int_equal(parse_size_bytes("9223372036854775808", &v), -ERANGE);
    assert_int_equal(parse_size_bytes("9000000TiB", &v), -ERANGE);
}

static void test_format(void **state)
{
    (void)state;
    char b[32];
    format_duration(1500000000LL, b, sizeof(b));
    assert_string_equal(b, "1.5s");
    format_duration(250000000LL, b, sizeof(b));
    assert_string_equal(b, "250ms");
    format_duration(120000000000LL, b, sizeof(b));
    assert_string_equal(b, "2m");
    format_duration(42, b, sizeof(b));
    assert_string_equal(b, "42ns");
    format_duration(-2000, b, sizeof(b));
    assert_string_equal(b, "-2us");
    format_size(4096, b, sizeof(b));
    assert_string_equal(b, "4.0 KiB");
    format_size(100, b, sizeof(b));
    assert_string_equal(b, "100 B");
    format_size(3LL << 30, b, sizeof(b));
    assert_string_equal(b, "3.0 GiB");
    format_size(1, b, 3); /* truncated, still terminated */
    assert_int_equal(strlen(b), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_units),
        cmocka_unit_test(test_duration_errors),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
