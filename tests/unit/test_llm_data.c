/* test_llm_data.c — the openai client's token lengths and prompt datasets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "drivers/clients/llm_data.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_len_parse(void **state)
{
    (void)state;
    struct llm_len l;
    char err[200];
    assert_int_equal(llm_len_parse("64", 1, 100, &l, err, sizeof(err)), 0);
    assert_int_equal(l.kind, LLM_LEN_FIXED);
    assert_int_equal(llm_len_draw(&l, NULL), 64);
    assert_int_equal(llm_len_parse("uniform:3,9", 1, 100, &l, err, sizeof(err)), 0);
    assert_int_equal(l.kind, LLM_LEN_UNIFORM);
    assert_true(llm_len_mean(&l) == 6);
    assert_int_equal(llm_len_parse("normal:50,10", 1, 100, &l, err, sizeof(err)), 0);
    assert_int_equal(l.kind, LLM_LEN_NORMAL);
    static const char *const bad[] = {
        "",
        "0",
        "101",
        "1.5",
        "x",
        "uniform:",
        "uniform:5",
        " 5",
        "uniform:9,3",
        "uniform:0,5",
        "uniform:1,2.5",
        "normal:50,-1",
        "normal:500,1",
        "normal:a,b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(llm_len_parse(bad[i], 1, 100, &l, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "expected N, uniform:LO,HI"));
    }
}

static void test_len_draw(void **state)
{
    (void)state;
    struct llm_len l;
    char err[200];
    struct rng g;
    rng_seed(&g, 7);
    assert_int_equal(llm_len_parse("uniform:3,5", 1, 100, &l, err, sizeof(err)), 0);
    int seen[6] = {0};
    for (int i = 0; i < 3000; i++) {
        int64_t v = llm_len_draw(&l, &g);
        assert_true(v >= 3 && v <= 5);
        seen[v]++;
    }
    for (int v = 3; v <= 5; v++) /* each about 1000 */
        assert_true(seen[v] > 850 && seen[v] < 1150);
    assert_int_equal(llm_len_parse("normal:50,10", 1, 100, &l, err, sizeof(err)), 0);
    double sum = 0, sq = 0;
    for (int i = 0; i < 20000; i++) {
        double v = (double)llm_len_draw(&l, &g);
        sum += v;
        sq += v * v;
    }
    double mean = sum / 20000, sd = sqrt(sq / 20000 - mean * mean);
    assert_true(fabs(mean - 50) < 0.5 && fabs(sd - 10) < 0.5);
    /* clamped to the bounds */
    assert_int_equal(llm_len_parse("normal:1,50", 1, 100, &l, err, sizeof(err)), 0);
    for (int i = 0; i < 1000; i++) {
        int64_t v = llm_len_draw(&l, &g);
        assert_true(v >= 1 && v <= 100);
    }
    /* seeded: the same sequence again */
    struct rng a, b;
    rng_seed(&a, 3);
    rng_seed(&b, 3);
    for (int i = 0; i < 100; i++)
        assert_int_equal(llm_len_draw(&l, &a), llm_len_draw(&l, &b));
}

static void test_words(void **state)
{
    (void)state;
    assert_int_equal(llm_words(""), 0);
    assert_int_equal(llm_words("  \n\t "), 0);
    assert_int_equal(llm_words("one"), 1);
    assert_int_equal(llm_words(" one  two\nthree\t"), 3);
}

static void test_sharegpt(void **state)
{
    (void)state;
    const char *doc = "[{\"conversations\":[{\"from\":\"system\",\"value\":\"be kind\"},"
                      "{\"from\":\"human\",\"value\":\"a b c d\"},"
                      "{\"from\":\"gpt\",\"value\":\"e f g h i\"}]},"
                      "{\"conversations\":[{\"from\":\"human\",\"value\":\"too short\"},"
                      "{\"from\":\"gpt\",\"value\":\"a b c d\"}]},"
                      "{\"conversation\":[{\"role\":\"user\",\"content\":\"w x y z q\"},"
                      "{\"role\":\"assistant\",\"content\":\"1 2 3 4\"}]},"
                      "{\"conversations\":[{\"from\":\"human\",\"value\":\"a b c d\"}]},"
                      "{\"conversations\":[{\"from\":\"human\",\"value\":\"a b c d\"},"
                      "{\"from\":\"human\",\"value\":\"a b c d\"}]}]";
    struct llm_set s = {0};
    char *err = NULL;
    assert_int_equal(llm_load_sharegpt(doc, strlen(doc), 0, &s, &err), 0);
    assert_null(err);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.skipped, 3);
    assert_string_equal(s.items[0].prompt, "a b c d");
    assert_int_equal(s.items[0].words, 4);
    assert_int_equal(s.items[0].out, 5);
    assert_string_equal(s.items[1].prompt, "w x y z q");
    assert_int_equal(s.items[1].out, 4);
    llm_set_free(&s);
    assert_int_equal(llm_load_sharegpt(doc, strlen(doc), 1, &s, &err), 0);
    assert_int_equal(s.n, 1);
    llm_set_free(&s);

    assert_int_equal(llm_load_sharegpt("[1,", 3, 0, &s, &err), -EINVAL);
    assert_non_null(strstr(err, "not JSON at line 1"));
    free(err);
    assert_int_equal(llm_load_sharegpt("{}", 2, 0, &s, &err), -EINVAL);
    assert_non_null(strstr(err, "expected a JSON array"));
    free(err);
    assert_int_equal(llm_load_sharegpt("[{}, 5]", 7, 0, &s, &err), -EINVAL);
    assert_string_equal(err, "entry 1: expected an object with \"conversations\"");
    free(err);
    llm_set_free(&s);
}

static void test_jsonl(void **state)
{
    (void)state;
    const char *doc = "{\"prompt\":\"one two\",\"max_tokens\":5}\n"
                      "\n  \r\n"
                      "\"three\"\r\n"
                      "{\"prompt\":\"x\",\"output_tokens\":2}";
    struct llm_set s = {0};
    char *err = NULL;
    assert_int_equal(llm_load_jsonl(doc, strlen(doc), 0, &s, &err), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.items[0].out, 5);
    assert_int_equal(s.items[0].words, 2);
    assert_string_equal(s.items[1].prompt, "three");
    assert_int_equal(s.items[1].out, 0);
    assert_int_equal(s.items[2].out, 2);
    llm_set_free(&s);

    static const struct {
        const char *doc, *msg;
    } bad[] = {
        {"\"a\"\n{", "line 2: not JSON"},
        {"5", "line 1: expected a JSON string or an object with a string \"prompt\""},
        {"{\"text\":\"a\"}", "line 1: expected a JSON string"},
        {"{\"prompt\":\"a\",\"max_tokens\":0}", "line 1: max_tokens/output_tokens: expected"},
        {"{\"prompt\":\"a\",\"max_tokens\":\"5\"}", "line 1: max_tokens/output_tokens"},
        {"\"a\" \"b\"", "line 1: not JSON"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = NULL;
        assert_int_equal(llm_load_jsonl(bad[i].doc, strlen(bad[i].doc), 0, &s, &err), -EINVAL);
        assert_non_null(err);
        if (!strstr(err, bad[i].msg))
            fail_msg("%s: got '%s'", bad[i].doc, err);
        free(err);
        llm_set_free(&s);
    }
}

static void test_file(void **state)
{
    (void)state;
    struct llm_set s = {0};
    char *err = NULL;
    assert_true(llm_load_file("/nonexistent/x.jsonl", "jsonl", 0, &s, &err) < 0);
    assert_non_null(strstr(err, "cannot read dataset /nonexistent/x.jsonl"));
    free(err);
    assert_int_equal(llm_load_file("/dev/null", "jsonl", 0, &s, &err), -EINVAL);
    assert_string_equal(err, "dataset /dev/null: no entry");
    free(err);
    assert_int_equal(llm_load_file("/dev/null", "csv", 0, &s, &err), -EINVAL);
    assert_non_null(strstr(err, "unknown dataset type 'csv'"));
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_len_parse), cmocka_unit_test(test_len_draw),
        cmocka_unit_test(test_words),     cmocka_unit_test(test_sharegpt),
        cmocka_unit_test(test_jsonl),     cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
