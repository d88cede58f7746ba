/* test_extract.c — metric extraction from command output (regex and JSON paths). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "drivers/clients/extract.h"

#include <errno.h>
#include <string.h>

static const char pgbench_out[] = "pgbench (15.5 (Debian 15.5-0+deb12u1))\n"
                                  "starting vacuum...end.\n"
                                  "progress: 1.0 s, 900.1 tps, lat 1.100 ms stddev 0.2\n"
                                  "progress: 2.0 s, 1100.9 tps, lat 0.900 ms stddev 0.1\n"
                                  "transaction type: <builtin: TPC-B (sort of)>\n"
                                  "latency average = 3.245 ms\n"
                                  "initial connection time = 2.345 ms\n"
                                  "tps = 1234.567890 (without initial connection time)\n";

static const char fio_json[] = "{\"fio version\":\"fio-3.33\",\"jobs\":[{\"jobname\":\"seq\","
                               "\"read\":{\"iops\":1000.5,\"bw\":4096,\"runtime\":\"12\","
                               "\"ok\":true,\"bad\":\"fast\",\"none\":null,"
                               "\"lat\":{\"percentile\":{\"99.000000\":2048}}}}]}";

static struct extract_rule regex_rule(const char *re)
{
    return (struct extract_rule){.regex = re, .group = 1, .scale = 1, .occurrence = EXTRACT_LAST};
}

static struct extract_rule json_rule(const char *path)
{
    return (struct extract_rule){.json = path, .group = 1, .scale = 1};
}

static int apply(const struct extract_rule *r, const char *text, struct extract_result *res,
                 char *err, size_t n)
{
    return extract_apply(r, text, strlen(text), res, err, n);
}

static void test_number(void **state)
{
    (void)state;
    double v = 0;
    char err[128];
    assert_int_equal(extract_number(" 42.5\n", 6, &v, err, sizeof(err)), 0);
    assert_true(v == 42.5);
    assert_int_equal(extract_number("-1e3", 4, &v, err, sizeof(err)), 0);
    assert_true(v == -1000);
    static const char *const bad[] = {"",      "  ",  "nan",   "inf",   "-Infinity", "0x10",
                                      "12abc", "1,5", "1.2.3", "1e999", "--1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 7;
        assert_int_equal(extract_number(bad[i], strlen(bad[i]), &v, err, sizeof(err)), -EINVAL);
        assert_true(v == 7); /* untouched on failure */
        assert_non_null(strstr(err, "not a number"));
    }
    /* only len bytes count */
    assert_int_equal(extract_number("12junk", 2, &v, err, sizeof(err)), 0);
    assert_true(v == 12);
}

static void test_pgbench(void **state)
{
    (void)state;
    struct extract_result res;
    char err[256];
    struct extract_rule r = regex_rule("^tps = ([0-9.]+)");
    assert_int_equal(apply(&r, pgbench_out, &res, err, sizeof(err)), 0);
    assert_true(res.value == 1234.567890);
    assert_string_equal(res.unit, "");

    r = regex_rule("latency average = ([0-9.]+) (ms|s)");
    r.unit_group = 2;
    assert_int_equal(apply(&r, pgbench_out, &res, err, sizeof(err)), 0);
    assert_true(res.value == 3.245);
    assert_string_equal(res.unit, "ms");

    /* scale: ms to s */
    r = regex_rule("latency average = ([0-9.]+) ms");
    r.scale = 0.001;
    assert_int_equal(apply(&r, pgbench_out, &res, err, sizeof(err)), 0);
    assert_true(res.value > 0.003244 && res.value < 0.003246);
}

static void test_occurrence_and_group(void **state)
{
    (void)state;
    struct extract_result res;
    char err[256];
    struct extract_rule r = regex_rule("progress: [0-9.]+ s, ([0-9.]+) tps");
    assert_int_equal(apply(&r, pgbench_out, &res, err, sizeof(err)), 0);
    assert_true(res.value == 1100.9);
    r.occurrence = EXTRACT_FIRST;
    assert_int_equal(apply(&r, pgbench_out, &res, err, sizeof(err)), 0);
    assert_true(res.value == 900.1);

    /* group 2; ^ anchors at every line start, also after the first match */
    r = regex_rule("^progress: ([0-9.]+) s, ([0-9.]+) tps");
    r.group = 2;
    assert_int_equal(apply(&r, pgbench_out, &res, err, sizeof(err)), 0);
    assert_true(res.value == 1100.9);
    r.group = 1;
    assert_int_equal(apply(&r, pgbench_out, &res, err, sizeof(err)), 0);
    assert_true(res.value == 2.0);

    /* group 0 = the whole match */
    r = regex_rule("[0-9]+\\.[0-9]+$");
    r.group = 0;
    assert_int_equal(apply(&r, "a 1.5\nb 2.5\n", &res, err, sizeof(err)), 0);
    assert_true(res.value == 2.5);
}

static void test_regex_errors(void **state)
{
    (void)state;
    struct extract_result res;
    char err[256];
    struct extract_rule r = regex_rule("tpz = ([0-9.]+)");
    assert_int_equal(apply(&r, pgbench_out, &res, err, sizeof(err)), -ENOENT);

    r = regex_rule("transaction type: (.*)");
    assert_int_equal(apply(&r, pgbench_out, &res, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a number"));
    assert_non_null(strstr(err, "<builtin"));

    r = regex_rule("tps = ([0-9.]+");
    assert_int_equal(apply(&r, pgbench_out, &res, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "invalid regex"));

    r = regex_rule("tps = ([0-9.]+)");
    r.group = 2;
    assert_int_equal(apply(&r, pgbench_out, &res, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "no group 2"));

    regex_t rx;
    assert_int_equal(extract_regex_compile("(a)(b)", 2, 1, &rx, err, sizeof(err)), 0);
    regfree(&rx);
    assert_int_equal(extract_regex_compile("(a)(b)", 1, 3, &rx, err, sizeof(err)), -EINVAL);
    assert_int_equal(extract_regex_compile("(a)", -1, 0, &rx, err, sizeof(err)), -EINVAL);

    /* an optional group that did not take part */
    r = regex_rule("x(=([0-9]+))?$");
    r.group = 2;
    assert_int_equal(apply(&r, "x=1\nx\n", &res, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "did not take part"));

    /* regex matching the empty string terminates */
    r = regex_rule("([0-9]*)");
    r.group = 1;
    assert_int_equal(apply(&r, "abc", &res, err, sizeof(err)), -EINVAL);
}

static void test_nul_bytes(void **state)
{
    (void)state;
    static const char text[] = "junk\0more\nvalue = 5\n";
    struct extract_result res;
    char err[256];
    struct extract_rule r = regex_rule("^value = ([0-9]+)");
    assert_int_equal(extract_apply(&r, text, sizeof(text) - 1, &res, err, sizeof(err)), 0);
    assert_true(res.value == 5);
}

static void test_json_paths(void **state)
{
    (void)state;
    struct extract_result res;
    char err[256];
    static const struct {
        const char *path;
        double want;
    } ok[] = {
        {"jobs[0].read.iops", 1000.5},    {"$.jobs[0].read.bw", 4096},
        {"$.jobs[-1].read.runtime", 12}, /* a string holding a number */
        {"jobs[0].read.ok", 1},           {"jobs[0][\"read\"].lat.percentile[\"99.000000\"]", 2048},
        {"jobs[0]['read'].iops", 1000.5},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct extract_rule r = json_rule(ok[i].path);
        assert_int_equal(apply(&r, fio_json, &res, err, sizeof(err)), 0);
        assert_true(res.value == ok[i].want);
    }
    struct extract_rule r = json_rule("jobs[0].read.bw");
    r.scale = 1024;
    assert_int_equal(apply(&r, fio_json, &res, err, sizeof(err)), 0);
    assert_true(res.value == 4096.0 * 1024);

    /* the root itself and a scalar document */
    r = json_rule("$");
    assert_int_equal(apply(&r, "17", &res, err, sizeof(err)), 0);
    assert_true(res.value == 17);
}

static void test_json_errors(void **state)
{
    (void)state;
    struct extract_result res;
    char err[256];
    struct extract_rule r = json_rule("jobs[3].read.iops");
    assert_int_equal(apply(&r, fio_json, &res, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "'jobs' has 1 element(s), no index 3"));

    r = json_rule("jobs[-2].read");
    assert_int_equal(apply(&r, fio_json, &res, err, sizeof(err)), -ENOENT);

    r = json_rule("jobs[0].write.iops");
    assert_int_equal(apply(&r, fio_json, &res, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "'jobs[0]' has no key 'write'"));

    r = json_rule("jobs[0].read");
    assert_int_equal(apply(&r, fio_json, &res, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "'jobs[0].read' is an object, not a number"));

    r = json_rule("jobs[0].read.bad");
    assert_int_equal(apply(&r, fio_json, &res, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "'fast' is not a number"));

    r = json_rule("jobs[0].read.none");
    assert_int_equal(apply(&r, fio_json, &res, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "null"));

    r = json_rule("jobs.read");
    assert_int_equal(apply(&r, fio_json, &res, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "'jobs' is an array, not an object"));

    r = json_rule("jobs[0].read.iops[0]");
    assert_int_equal(apply(&r, fio_json, &res, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "is a number, not an array"));

    r = json_rule("jobs[0].read.iops");
    assert_int_equal(apply(&r, "{\"jobs\": [", &res, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not valid JSON"));
    assert_int_equal(apply(&r, "", &res, err, sizeof(err)), -EINVAL);
}

static void test_json_noise(void **state)
{
    (void)state;
    /* fio prints notes before its JSON */
    char text[1024];
    snprintf(text, sizeof(text), "note: both iodepth >= 1 and synchronous I/O engine\n%s\n",
             fio_json);
    json_t *root = NULL;
    char err[256];
    assert_int_equal(extract_json_load(text, strlen(text), &root, err, sizeof(err)), 0);
    double v = 0;
    assert_int_equal(extract_json_path(root, "jobs[0].read.iops", &v, err, sizeof(err)), 0);
    assert_true(v == 1000.5);
    json_decref(root);
    assert_int_equal(extract_json_load("no json here\n", 13, &root, err, sizeof(err)), -EINVAL);
}

static void test_json_path_syntax(void **state)
{
    (void)state;
    char err[256];
    static const char *const good[] = {"a",     "a.b.c", "$.a",        "$",          "a[0]",
                                       "a[-1]", "[0].x", "a[\"b.c\"]", "a['b\\'c']", "a-b_c.d9"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(extract_json_path_check(good[i], err, sizeof(err)), 0);
    static const char *const bad[] = {"",       "a..b", "a.",  "a[",    "a[x]", "a[0",
                                      "a[\"b]", ".",    "a b", "a[1]b", "$$"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(extract_json_path_check(bad[i], err, sizeof(err)), -EINVAL);
        assert_true(strlen(err) > 0);
    }
    /* depth limit */
    char deep[EXTRACT_PATH_MAX];
    size_t n = 0;
    for (int i = 0; i < EXTRACT_PATH_DEPTH + 1; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "%sa", i ? "." : "");
    assert_int_equal(extract_json_path_check(deep, err, sizeof(err)), -EINVAL);
    /* a deep path that exists */
    json_t *root = json_loads("{\"a\":{\"b\":{\"c\":{\"d\":[[1,[2,3]]]}}}}", 0, NULL);
    double v = 0;
    assert_int_equal(extract_json_path(root, "a.b.c.d[0][1][1]", &v, err, sizeof(err)), 0);
    assert_true(v == 3);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number),
        cmocka_unit_test(test_pgbench),
        cmocka_unit_test(test_occurrence_and_group),
        cmocka_unit_test(test_regex_errors),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_json_paths),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_json_noise),
        cmocka_unit_test(test_json_path_syntax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
