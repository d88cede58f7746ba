/* test_value.c — the positioned value tree: build, merge, clone, typed reads, YAML/JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/recipe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct sv *load(const char *text)
{
    struct diags d = {0};
    struct sv *v = NULL;
    int r = recipe_load_buffer("t.yaml", text, strlen(text), &v, &d);
    if (r != 0) {
        char *s = diags_format(&d);
        print_error("%s", s);
        free(s);
    }
    assert_int_equal(r, 0);
    diags_free(&d);
    return v;
}

static void test_positions(void **state)
{
    (void)state;
    struct sv *v = load("kind: benchmark\nservices:\n  db:\n    port: 5432\n");
    const struct sv *db = sv_get(sv_get(v, "services"), "db");
    assert_non_null(db);
    assert_int_equal(db->kpos.line, 3);
    assert_int_equal(db->kpos.col, 3);
    const struct sv *port = sv_get(db, "port");
    assert_int_equal(port->pos.line, 4);
    assert_int_equal(port->pos.col, 11);
    assert_string_equal(port->pos.file, "t.yaml");
    assert_ptr_equal(port->pos.file, sv_intern("t.yaml"));
    sv_free(v);
}

static void test_scalars_and_null(void **state)
{
    (void)state;
    struct sv *v = load("a: ~\nb:\nc: null\nd: 'null'\ne: \"1\"\nf: 1\ng: !!str 2\n");
    assert_int_equal(sv_get(v, "a")->kind, SV_NULL);
    assert_int_equal(sv_get(v, "b")->kind, SV_NULL);
    assert_int_equal(sv_get(v, "c")->kind, SV_NULL);
    assert_int_equal(sv_get(v, "d")->kind, SV_SCALAR);
    assert_true(sv_get(v, "e")->quoted);
    assert_false(sv_get(v, "f")->quoted);
    assert_true(sv_get(v, "g")->quoted);
    assert_string_equal(sv_str(v, "f", "x"), "1");
    assert_string_equal(sv_str(v, "missing", "x"), "x");
    assert_string_equal(sv_str(v, "a", "dflt"), "dflt"); /* null is not a string */
    sv_free(v);
}

static void test_set_del_append(void **state)
{
    (void)state;
    struct sv_pos p = {sv_intern("x"), 1, 1};
    struct sv *m = sv_new(SV_MAP, p);
    sv_set(m, "a", sv_new_scalar("1", p));
    sv_set(m, "b", sv_new_scalar("2", p));
    sv_set(m, "a", sv_new_scalar("3", p));
    assert_int_equal(m->n, 2);
    assert_string_equal(m->kids[0]->key, "a");
    assert_string_equal(m->kids[0]->str, "3");
    sv_del(m, "a");
    sv_del(m, "zzz");
    assert_int_equal(m->n, 1);
    assert_null(sv_get(m, "a"));
    struct sv *seq = sv_new(SV_SEQ, p);
    for (int i = 0; i < 20; i++)
        sv_append(seq, NULL, sv_new_scalar("x", p));
    assert_int_equal(seq->n, 20);
    assert_null(sv_get(seq, "x")); /* not a map */
    sv_append(m, "list", seq);
    sv_free(m);
    sv_free(NULL);
}

static void test_merge_and_clone(void **state)
{
    (void)state;
    struct sv *base = load("with: {a: 1, nested: {x: 1, y: 2}, list: [1, 2]}\nuser: pg\n");
    struct sv *over = load("with: {b: 2, nested: {y: 3}, list: [9]}\nenv: {K: v}\n");
    struct sv *copy = sv_clone(base);
    sv_merge(base, over);
    const struct sv *w = sv_get(base, "with");
    assert_string_equal(sv_str(w, "a", NULL), "1");
    assert_string_equal(sv_str(w, "b", NULL), "2");
    assert_string_equal(sv_str(sv_get(w, "nested"), "x", NULL), "1");
    assert_string_equal(sv_str(sv_get(w, "nested"), "y", NULL), "3");
    assert_int_equal(sv_get(w, "list")->n, 1); /* lists replace */
    assert_string_equal(sv_get(w, "list")->kids[0]->str, "9");
    /* merged values keep the position they were written at */
    assert_int_equal(sv_get(sv_get(w, "nested"), "y")->pos.line, 1);
    assert_int_equal(sv_get(sv_get(w, "nested"), "y")->pos.col, 26);
    assert_non_null(sv_get(base, "env"));
    assert_string_equal(sv_str(base, "user", NULL), "pg");
    /* the clone is independent */
    assert_int_equal(sv_get(sv_get(copy, "with"), "list")->n, 2);
    assert_null(sv_get(sv_get(copy, "with"), "b"));
    /* a scalar over a map replaces it, keeping the key */
    struct sv *s = load("with: plain\n");
    sv_merge(sv_get(copy, "with"), sv_get(s, "with"));
    assert_int_equal(sv_get(copy, "with")->kind, SV_SCALAR);
    assert_string_equal(sv_get(copy, "with")->key, "with");
    sv_free(s);
    sv_free(copy);
    sv_free(over);
    sv_free(base);
}

static void test_typed_reads(void **state)
{
    (void)state;
    struct sv *v = load("i: 42\nn: -7\nbig: 99999999999999999999\nf: 2.5\nb1: yes\nb2: False\n"
                        "d: 1.5s\nsz: 4KiB\nl: [a, b, 3]\nbad: [a, [b]]\nw: word\nnan: nan\n");
    int64_t i = 0;
    double f = 0;
    bool b = false;
    char **sv = NULL;
    assert_int_equal(sv_as_int(sv_get(v, "i"), &i), 0);
    assert_int_equal(i, 42);
    assert_int_equal(sv_as_int(sv_get(v, "n"), &i), 0);
    assert_int_equal(i, -7);
    assert_int_equal(sv_as_int(sv_get(v, "big"), &i), -ERANGE);
    assert_int_equal(sv_as_int(sv_get(v, "f"), &i), -EINVAL);
    assert_int_equal(sv_as_int(sv_get(v, "w"), &i), -EINVAL);
    assert_int_equal(sv_as_int(sv_get(v, "l"), &i), -EINVAL);
    assert_int_equal(sv_as_int(NULL, &i), -ENOENT);
    assert_int_equal(sv_as_double(sv_get(v, "f"), &f), 0);
    assert_true(f == 2.5);
    assert_int_equal(sv_as_double(sv_get(v, "nan"), &f), -EINVAL);
    assert_int_equal(sv_as_bool(sv_get(v, "b1"), &b), 0);
    assert_true(b);
    assert_int_equal(sv_as_bool(sv_get(v, "b2"), &b), 0);
    assert_false(b);
    assert_int_equal(sv_as_bool(sv_get(v, "w"), &b), -EINVAL);
    assert_int_equal(sv_as_duration(sv_get(v, "d"), &i), 0);
    assert_int_equal(i, 1500000000LL);
    assert_int_equal(sv_as_duration(sv_get(v, "i"), &i), -EINVAL);
    assert_int_equal(sv_as_size(sv_get(v, "sz"), &i), 0);
    assert_int_equal(i, 4096);
    assert_int_equal(sv_as_strv(sv_get(v, "l"), &sv), 0);
    assert_int_equal(strv_len(sv), 3);
    assert_string_equal(sv[2], "3");
    strv_free(sv);
    assert_int_equal(sv_as_strv(sv_get(v, "bad"), &sv), -EINVAL);
    assert_int_equal(sv_as_strv(sv_get(v, "w"), &sv), -EINVAL);
    sv_free(v);
}

static void test_yaml_roundtrip(void **state)
{
    (void)state;
    const char *text = "kind: benchmark\n"
                       "s: \"1\"\n"
                       "t: 'yes'\n"
                       "colon: \"a: b\"\n"
                       "dash: \"- x\"\n"
                       "flag: -D\n"
                       "hash: \"a #b\"\n"
                       "nl: \"line1\\nline2\"\n"
                       "empty: \"\"\n"
                       "nothing: ~\n"
                       "em: {}\n"
                       "el: []\n"
                       "argv: [prog, \"${self.port}\", \"a,b\"]\n"
                       "nested: [[a, b], {k: v, k2: [1]}]\n"
                       "\"odd key\": 1\n";
    struct sv *v = load(text);
    char *y = sv_to_yaml(v);
    struct sv *back = load(y);
    char *y2 = sv_to_yaml(back);
    assert_string_equal(y, y2);
    assert_true(sv_get(back, "s")->quoted);
    assert_true(sv_get(back, "t")->quoted);
    assert_string_equal(sv_str(back, "colon", NULL), "a: b");
    assert_string_equal(sv_str(back, "nl", NULL), "line1\nline2");
    assert_string_equal(sv_str(back, "empty", NULL), "");
    assert_int_equal(sv_get(back, "nothing")->kind, SV_NULL);
    assert_int_equal(sv_get(back, "em")->kind, SV_MAP);
    assert_int_equal(sv_get(back, "el")->kind, SV_SEQ);
    assert_string_equal(sv_get(back, "argv")->kids[2]->str, "a,b");
    assert_string_equal(sv_get(back, "nested")->kids[1]->kids[1]->kids[0]->str, "1");
    assert_string_equal(sv_str(back, "odd key", NULL), "1");
    assert_non_null(strstr(y, "argv: [prog, \"${self.port}\", \"a,b\"]\n"));
    free(y);
    free(y2);
    sv_free(back);
    sv_free(v);
}

static void test_json(void **state)
{
    (void)state;
    struct sv *v = load("a: 1\nb: \"2\"\nc: true\nd: yes\ne: ~\nf: [1.5e3, x]\ng: \"q\\\"\\t\"\n"
                        "h: 0x10\ni: .5\n");
    char *j = sv_to_json(v);
    assert_string_equal(j, "{\"a\":1,\"b\":\"2\",\"c\":true,\"d\":\"yes\",\"e\":null,"
                           "\"f\":[1.5e3,\"x\"],\"g\":\"q\\\"\\t\",\"h\":\"0x10\",\"i\":\".5\"}");
    free(j);
    j = sv_to_json(NULL);
    assert_string_equal(j, "null");
    free(j);
    sv_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positions),      cmocka_unit_test(test_scalars_and_null),
        cmocka_unit_test(test_set_del_append), cmocka_unit_test(test_merge_and_clone),
        cmocka_unit_test(test_typed_reads),    cmocka_unit_test(test_yaml_roundtrip),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
