/* test_json_scan.c — the allocation-free JSON scanner: what it accepts is what
 * jansson accepts, and the values it finds at paths. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/json_scan.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Scans text with no paths; the verdict must equal jansson's. */
static enum js_type both(const char *text, size_t len)
{
    json_t *j = json_loadb(text, len, 0, NULL);
    enum js_type t = js_scan(text, len, NULL, NULL);
    bool ok = j && (json_is_object(j) || json_is_array(j));
    if (ok != (t != JS_NONE))
        fail_msg("jansson %s, js_scan %s: '%.*s'", ok ? "accepts" : "rejects",
                 t != JS_NONE ? "accepts" : "rejects", (int)(len > 200 ? 200 : len), text);
    json_decref(j);
    return t;
}

static void test_grammar(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "{}",
        "[]",
        " { } ",
        "[1,2,3]",
        "{\"a\":1}",
        "{\"a\":1,}",
        "[1,]",
        "[,1]",
        "{\"a\" 1}",
        "{a:1}",
        "[01]",
        "[-0]",
        "[-]",
        "[1.]",
        "[.5]",
        "[1e5]",
        "[1E+5]",
        "[1e-5]",
        "[1e]",
        "[1.5e3]",
        "[-1.25]",
        "[9223372036854775807]",
        "[9223372036854775808]",
        "[-9223372036854775808]",
        "[-9223372036854775809]",
        "[1e400]",
        "[-1e400]",
        "[1e-400]",
        "[true,false,null]",
        "[tru]",
        "[truex]",
        "[nul]",
        "[\"a\\u0041\"]",
        "[\"\\u0000\"]",
        "[\"\\ud83d\\ude00\"]",
        "[\"\\ud83d\"]",
        "[\"\\ude00\"]",
        "[\"\\ud83dx\"]",
        "[\"\\ud83d\\u0041\"]",
        "[\"\\x\"]",
        "[\"\\u12\"]",
        "[\"\\u12G4\"]",
        "[\"a\tb\"]",
        "[\"\xc3\xa9\"]",
        "[\"\xc3\"]",
        "[\"\xc0\x80\"]",
        "[\"\xed\xa0\x80\"]",
        "[\"\xf4\x90\x80\x80\"]",
        "[\"\xe2\x82\xac\"]",
        "[\"\xf0\x9f\x98\x80\"]",
        "[\"\xff\"]",
        "\"s\"",
        "1",
        "true",
        "",
        " ",
        "[1] x",
        "[1] ",
        "{\"a\":[{\"b\":{}}]}",
        "[[[]]]",
        "{",
        "[",
        "[\"abc",
        "{\"a\":}",
        "{\"a\"}",
        "{\"\":0}",
        "{\"a\":1 \"b\":2}",
        "[1 2]",
        "\xef\xbb\xbf[]",
        "[1]\n",
        "[\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"]",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        both(cases[i], strlen(cases[i]));
    /* a NUL byte in the text */
    both("[\"a\0b\"]", 7);
    assert_int_equal(js_scan("[1,\0 2]", 7, NULL, NULL), JS_NONE); /* jansson: some NULs pass */
}

static void test_depth(void **state)
{
    (void)state;
    for (int n = 2045; n <= 2050; n++) {
        char *t = malloc((size_t)(2 * n + 2));
        memset(t, '[', (size_t)n);
        t[n] = '1';
        memset(t + n + 1, ']', (size_t)n);
        both(t, (size_t)(2 * n + 1));
        memset(t + n, ']', (size_t)n); /* nested empty arrays */
        both(t, (size_t)(2 * n));
        free(t);
    }
}

static void test_paths(void **state)
{
    (void)state;
    static const char *const want[] = {
        "error",      "choices[0].text", "choices[0].delta.content", "usage.completion_tokens",
        "choices[1]", "a.b[2][0]"};
    struct js_paths p;
    struct js_found f[6];
    assert_int_equal(js_paths_init(&p, want, 6), 0);
    const char *doc = "{\"id\":\"x\",\"choices\":[{\"index\":0,\"text\":\" tok\\n\"},{\"t\":1}],"
                      "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":-7},"
                      "\"a\":{\"b\":[0,1,[true]]}}";
    assert_int_equal(js_scan(doc, strlen(doc), &p, f), JS_OBJECT);
    assert_int_equal(f[0].type, JS_NONE);
    assert_int_equal(f[1].type, JS_STRING);
    assert_int_equal(f[1].raw_len, 6);
    assert_memory_equal(f[1].raw, " tok\\n", 6);
    assert_int_equal(f[2].type, JS_NONE);
    assert_int_equal(f[3].type, JS_INTEGER);
    assert_int_equal(f[3].integer, -7);
    assert_int_equal(f[4].type, JS_OBJECT);
    assert_int_equal(f[5].type, JS_TRUE);

    /* chat delta, an empty string, an error of any type (null too) */
    doc = "{\"choices\":[{\"delta\":{\"content\":\"\"}}],\"error\":null}";
    assert_int_equal(js_scan(doc, strlen(doc), &p, f), JS_OBJECT);
    assert_int_equal(f[2].type, JS_STRING);
    assert_int_equal(f[2].raw_len, 0);
    assert_int_equal(f[0].type, JS_NULL);

    /* a repeated key: the last one wins, also for the paths under it */
    doc = "{\"choices\":[{\"text\":\"a\"}],\"choices\":[{}],\"usage\":{\"completion_tokens\":1,"
          "\"completion_tokens\":2.5}}";
    assert_int_equal(js_scan(doc, strlen(doc), &p, f), JS_OBJECT);
    assert_int_equal(f[1].type, JS_NONE);
    assert_int_equal(f[3].type, JS_REAL);

    /* keys written with escapes match once decoded */
    doc = "{\"\\u0065rror\":{\"message\":\"x\"},\"choices\":[{\"te\\u0078t\":\"\\u00e9\"}]}";
    assert_int_equal(js_scan(doc, strlen(doc), &p, f), JS_OBJECT);
    assert_int_equal(f[0].type, JS_OBJECT);
    assert_int_equal(f[1].type, JS_STRING);

    /* invalid JSON: nothing found */
    doc = "{\"error\":1,\"choices\":[{\"text\":\"a\"}]";
    assert_int_equal(js_scan(doc, strlen(doc), &p, f), JS_NONE);
    assert_int_equal(f[0].type, JS_NONE);
    assert_int_equal(f[1].type, JS_NONE);
}

/* The same path twice, and paths that share a prefix, all get their values. */
static void test_path_set(void **state)
{
    (void)state;
    static const char *const want[] = {"a.b", "a", "a.b", "a.c[1]", "[0]", "a.b.x"};
    struct js_paths p;
    struct js_found f[6];
    assert_int_equal(js_paths_init(&p, want, 6), 0);
    assert_int_equal(p.nnodes, 2 + 6); /* none, the root; a, b, c, [1], [0], x: prefixes once */
    const char *doc = "{\"a\":{\"b\":7,\"c\":[0,\"z\"]}}";
    assert_int_equal(js_scan(doc, strlen(doc), &p, f), JS_OBJECT);
    assert_int_equal(f[0].type, JS_INTEGER);
    assert_int_equal(f[0].integer, 7);
    assert_int_equal(f[1].type, JS_OBJECT);
    assert_int_equal(f[2].type, JS_INTEGER);
    assert_int_equal(f[2].integer, 7);
    assert_int_equal(f[3].type, JS_STRING);
    assert_int_equal(f[4].type, JS_NONE); /* the top value is an object */
    assert_int_equal(f[5].type, JS_NONE);
    doc = "[{\"a\":1}]";
    assert_int_equal(js_scan(doc, strlen(doc), &p, f), JS_ARRAY);
    assert_int_equal(f[4].type, JS_OBJECT);
    assert_int_equal(f[1].type, JS_NONE);
    static const char *const bad[] = {"a", "a..b"};
    assert_int_equal(js_paths_init(&p, bad, 2), -22);
    assert_int_equal(js_paths_init(&p, want, JS_MAX_PATHS + 1), -22);
}

static void test_path_parse(void **state)
{
    (void)state;
    struct js_path p;
    assert_int_equal(js_path_parse("a", &p), 0);
    assert_int_equal(p.nseg, 1);
    assert_int_equal(js_path_parse("a[3].b[0][1]", &p), 0);
    assert_int_equal(p.nseg, 5);
    assert_false(p.seg[1].is_key);
    assert_int_equal(p.seg[1].index, 3);
    assert_int_equal(js_path_parse("[0]", &p), 0);
    static const char *const bad[] = {"",      "a.", ".a",    "a..b",  "a[",    "a[x]",
                                      "a[-1]", "a]", "a[0]b", "a.[0]", "a[+1]", "a.b.c.d.e.f.g"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (js_path_parse(bad[i], &p) != -22)
            fail_msg("'%s' parsed", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grammar),    cmocka_unit_test(test_depth),
        cmocka_unit_test(test_paths),      cmocka_unit_test(test_path_set),
        cmocka_unit_test(test_path_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
