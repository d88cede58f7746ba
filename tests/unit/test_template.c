/* test_template.c — per-request templates: parsing, errors, rendering, the
 * distribution of random ranges, UUID format, limits. */
#include "loadgen/template.h"
#include "util/rng.h"
#include "util/util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct tmpl *parse_ok(const char *text)
{
    struct tmpl *t = NULL;
    char err[256] = "";
    int rc = tmpl_parse(text, strlen(text), &t, err, sizeof(err));
    if (rc != 0)
        print_message("unexpected error for '%s': %s\n", text, err);
    assert_int_equal(rc, 0);
    return t;
}

/* Renders text for request n with a fresh generator seeded with seed. */
static char *render(const char *text, uint64_t n, uint64_t seed)
{
    struct tmpl *t = parse_ok(text);
    struct rng r;
    struct sbuf out = {0};
    rng_seed(&r, seed);
    assert_int_equal(tmpl_render(t, n, &r, &out), 0);
    assert_true(out.len <= tmpl_max_len(t));
    tmpl_free(t);
    return out.s ? sbuf_steal(&out) : xstrdup("");
}

static void test_literal(void **state)
{
    (void)state;
    struct tmpl *t = parse_ok("no variables { here } {x}");
    assert_int_equal(tmpl_vars(t), 0);
    tmpl_free(t);
    char *s = render("no variables { here } {x}", 5, 1);
    assert_string_equal(s, "no variables { here } {x}");
    free(s);
    s = render("", 5, 1);
    assert_string_equal(s, "");
    free(s);
    /* NUL bytes in the literal text survive */
    struct tmpl *b = NULL;
    char err[64];
    assert_int_equal(tmpl_parse("a\0b{{counter}}", 14, &b, err, sizeof(err)), 0);
    struct sbuf out = {0};
    struct rng r;
    rng_seed(&r, 1);
    assert_int_equal(tmpl_render(b, 42, &r, &out), 0);
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.s, "a\0b42", 5);
    sbuf_free(&out);
    tmpl_free(b);
}

static void test_counter_and_escape(void **state)
{
    (void)state;
    char *s = render("/item/{{counter}}?again={{ counter }}", 0, 1);
    assert_string_equal(s, "/item/0?again=0");
    free(s);
    s = render("{{counter}}", UINT64_MAX, 1);
    assert_string_equal(s, "18446744073709551615");
    free(s);
    s = render("{{{{counter}} and {{{{{{counter}}", 7, 1);
    assert_string_equal(s, "{{counter}} and {{7");
    free(s);
    struct tmpl *t = parse_ok("{{counter}}{{uuid}}{{random}}{{random:1:2}}");
    assert_int_equal(tmpl_vars(t), 4);
    tmpl_free(t);
}

static void test_random_range(void **state)
{
    (void)state;
    struct tmpl *t = parse_ok("{{random:-3:6}}");
    struct rng r;
    rng_seed(&r, 11);
    unsigned hist[10] = {0};
    const unsigned n = 100000;
    for (unsigned i = 0; i < n; i++) {
        struct sbuf out = {0};
        assert_int_equal(tmpl_render(t, i, &r, &out), 0);
        char *end = NULL;
        long v = strtol(out.s, &end, 10);
        assert_true(*end == '\0' && v >= -3 && v <= 6);
        hist[v + 3]++;
        sbuf_free(&out);
    }
    tmpl_free(t);
    /* each of the 10 values near 10%: chi-square with 9 degrees of freedom
     * stays under 30 except with probability < 0.001 */
    double chi = 0, e = n / 10.0;
    for (int i = 0; i < 10; i++)
        chi += (hist[i] - e) * (hist[i] - e) / e;
    print_message("random:-3:6 chi-square %.2f\n", chi);
    assert_true(chi < 30);
    char *s = render("{{random:5:5}}", 0, 3);
    assert_string_equal(s, "5");
    free(s);
    s = render("{{random:-9223372036854775808:-9223372036854775808}}", 0, 3);
    assert_string_equal(s, "-9223372036854775808");
    free(s);
    /* the whole signed range (a span of 2^64) */
    s = render("{{random:-9223372036854775808:9223372036854775807}}", 0, 3);
    char *end = NULL;
    errno = 0;
    (void)strtoll(s, &end, 10);
    assert_true(*end == '\0' && errno == 0);
    free(s);
}

static void test_uuid_and_seed(void **state)
{
    (void)state;
    char *a = render("{{uuid}} {{random}}", 0, 99), *b = render("{{uuid}} {{random}}", 0, 99);
    char *c = render("{{uuid}} {{random}}", 0, 100);
    assert_string_equal(a, b); /* reproducible from the seed */
    assert_string_not_equal(a, c);
    assert_true(strlen(a) > 37 && a[36] == ' ');
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    assert_int_equal(a[14], '4');           /* version 4 */
    assert_non_null(strchr("89ab", a[19])); /* RFC 4122 variant */
    free(a);
    free(b);
    free(c);
}

static void expect_error(const char *text, const char *msg)
{
    struct tmpl *t = NULL;
    char err[256] = "";
    assert_int_equal(tmpl_parse(text, strlen(text), &t, err, sizeof(err)), -EINVAL);
    assert_null(t);
    if (!strstr(err, msg))
        print_message("'%s': got '%s', wanted '%s'\n", text, err, msg);
    assert_non_null(strstr(err, msg));
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("abc{{countr}}", "at offset 3: unknown variable '{{countr}}'");
    expect_error("{{}}", "unknown variable '{{}}'");
    expect_error("x {{counter", "at offset 2: '{{' without a closing '}}'");
    expect_error("{{random:9:1}}", "expected {{random:LO:HI}} with integers LO <= HI");
    expect_error("{{random:1}}", "expected {{random:LO:HI}}");
    expect_error("{{random:a:b}}", "expected {{random:LO:HI}}");
    expect_error("{{random:1:99999999999999999999}}", "expected {{random:LO:HI}}");
    expect_error("{{random: 1:2}}", "expected {{random:LO:HI}}");
    expect_error("{{random:}}", "unknown variable");
}

static void test_limits(void **state)
{
    (void)state;
    struct tmpl *t = parse_ok("0123456789{{uuid}}");
    struct rng r;
    rng_seed(&r, 1);
    struct sbuf out = {.max = 20};
    assert_int_equal(sbuf_add(&out, "keep", 4), 0);
    assert_int_equal(tmpl_render(t, 0, &r, &out), -ENOSPC);
    assert_int_equal(out.len, 4); /* unchanged */
    assert_string_equal(out.s, "keep");
    sbuf_free(&out);
    assert_int_equal(tmpl_max_len(t), 10 + 36);
    tmpl_free(t);
    /* too many parts */
    struct sbuf big = {0};
    for (int i = 0; i < 5000; i++)
        assert_int_equal(sbuf_add(&big, "a{{counter}}", 12), 0);
    struct tmpl *x = NULL;
    char err[256];
    assert_int_equal(tmpl_parse(big.s, big.len, &x, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "more than"));
    sbuf_free(&big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal),      cmocka_unit_test(test_counter_and_escape),
        cmocka_unit_test(test_random_range), cmocka_unit_test(test_uuid_and_seed),
        cmocka_unit_test(test_errors),       cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
