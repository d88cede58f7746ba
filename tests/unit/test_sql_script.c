/* test_sql_script.c — the sql client's transaction scripts: parsing (statements,
 * parameters, errors with file:line) and the random functions' ranges and shapes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sql/script.h"
#include "util/rng.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct sql_script *parse(const char *text)
{
    struct sql_script *s = NULL;
    char err[512] = "";
    int r = sql_script_parse("t.sql", text, strlen(text), &s, err, sizeof(err));
    if (r != 0)
        fail_msg("parse failed: %s", err);
    return s;
}

static void parse_err(const char *text, const char *want)
{
    struct sql_script *s = NULL;
    char err[512] = "";
    assert_int_equal(sql_script_parse("t.sql", text, strlen(text), &s, err, sizeof(err)), -EINVAL);
    assert_null(s);
    if (!strstr(err, want))
        fail_msg("error '%s' lacks '%s'", err, want);
}

static const struct sql_cmd *stmt(const struct sql_script *s, int i)
{
    for (size_t k = 0; k < s->ncmds; k++)
        if (s->cmds[k].kind == SQL_CMD_STMT && s->cmds[k].stmt == i)
            return &s->cmds[k];
    fail_msg("no statement %d", i);
    abort(); /* not reached */
}

static void test_builtins(void **state)
{
    (void)state;
    struct sql_script *s = NULL;
    assert_int_equal(sql_script_builtin("tpcb", &s), 0);
    assert_int_equal(s->nstmts, 7);
    const struct sql_cmd *ins = stmt(s, 5);
    assert_string_equal(ins->sql_dollar,
                        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                        "VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)");
    assert_string_equal(ins->sql_qmark, "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                                        "VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP)");
    assert_int_equal(ins->nparams, 4);
    assert_string_equal(s->vars[ins->params[2]], "aid");
    assert_string_equal(stmt(s, 0)->sql_dollar, "BEGIN");
    sql_script_free(s);
    assert_int_equal(sql_script_builtin("select-only", &s), 0);
    assert_int_equal(s->nstmts, 1);
    sql_script_free(s);
    assert_int_equal(sql_script_builtin("simple-update", &s), 0);
    assert_int_equal(s->nstmts, 5);
    sql_script_free(s);
    assert_int_equal(sql_script_builtin("tpcc", &s), -ENOENT);
}

static void test_statements(void **state)
{
    (void)state;
    struct sql_script *s = parse("-- a comment\n"
                                 "\\set a 5\n"
                                 "\n"
                                 "SELECT :a::text, ':a', \"x:a\" -- no :a here\n"
                                 "  FROM t\n"
                                 "  WHERE b = :a OR c = :a;\n"
                                 "UPDATE t SET s = 'semi;colon';\r\n");
    assert_int_equal(s->nstmts, 2);
    const struct sql_cmd *c = stmt(s, 0);
    assert_int_equal(c->line, 4);
    assert_string_equal(c->sql_dollar,
                        "SELECT $1::text, ':a', \"x:a\" FROM t WHERE b = $2 OR c = $3");
    assert_string_equal(c->sql_qmark, "SELECT ?::text, ':a', \"x:a\" FROM t WHERE b = ? OR c = ?");
    assert_int_equal(c->nparams, 3);
    assert_string_equal(stmt(s, 1)->sql_dollar, "UPDATE t SET s = 'semi;colon'");
    assert_int_equal(stmt(s, 1)->line, 7);
    sql_script_free(s);
}

static void test_errors(void **state)
{
    (void)state;
    parse_err("SELECT 1;\n\\sett a 1\n", "t.sql:2: unknown command '\\sett'");
    parse_err("SELECT :nope;\n", "t.sql:1: variable ':nope' is used before");
    parse_err("\\set a random(1)\nSELECT 1;\n", "t.sql:1: random() takes 2 arguments");
    parse_err("\\set a 1 +\nSELECT 1;\n", "t.sql:1: expression ends too early");
    parse_err("\\set a frob(1)\nSELECT 1;\n", "t.sql:1: unknown function 'frob'");
    parse_err("\\set a (1\nSELECT 1;\n", "t.sql:1: expected ')'");
    parse_err("\\set a 1 2\nSELECT 1;\n", "t.sql:1: unexpected '2'");
    parse_err("\\set a 1\n", "t.sql:1: no SQL statement");
    parse_err("SELECT 1;\nSELECT\n  2\n", "t.sql:2: statement without a final ';'");
    parse_err("SELECT 'abc;\n", "t.sql:1: a quoted string is never closed");
    parse_err("\\set a 99999999999999999999\nSELECT 1;\n", "integer out of range");
    parse_err("\\set\nSELECT 1;\n", "t.sql:1: \\set needs a variable name");
}

static int64_t eval_set(const char *expr, struct rng *r, int64_t *vars)
{
    char text[256], err[256];
    snprintf(text, sizeof(text), "\\set x %s\nSELECT :x;\n", expr);
    struct sql_script *s = parse(text);
    int64_t v = 0;
    assert_int_equal(sql_expr_eval(s->cmds[0].expr, vars, r, &v, err, sizeof(err)), 0);
    sql_script_free(s);
    return v;
}

static void test_arithmetic(void **state)
{
    (void)state;
    struct rng r;
    rng_seed(&r, 1);
    int64_t vars[SQL_VARS_MAX] = {[SQL_VAR_SCALE] = 10};
    assert_int_equal(eval_set("1 + 2 * 3 - -4", &r, vars), 11);
    assert_int_equal(eval_set("(1 + 2) * 3 % 5", &r, vars), 4);
    assert_int_equal(eval_set("100000 * :scale / 3", &r, vars), 333333);
    assert_int_equal(eval_set("abs(-7) + least(3, 1, 2) + greatest(3, 9)", &r, vars), 17);
    char err[256];
    struct sql_script *s = parse("\\set x 1 / (:scale - 10)\nSELECT :x;\n");
    int64_t v;
    assert_int_equal(sql_expr_eval(s->cmds[0].expr, vars, &r, &v, err, sizeof(err)), -EDOM);
    assert_string_equal(err, "division by zero");
    sql_script_free(s);
    s = parse("\\set x random(5, 4)\nSELECT :x;\n");
    assert_int_equal(sql_expr_eval(s->cmds[0].expr, vars, &r, &v, err, sizeof(err)), -EDOM);
    sql_script_free(s);
}

/* Draws n values of expr: every one in [lo, hi]; counts[v - lo] for small ranges. */
static void draw(const char *expr, int n, int64_t lo, int64_t hi, int *counts)
{
    struct rng r;
    rng_seed(&r, 42);
    int64_t vars[SQL_VARS_MAX] = {0};
    char text[256], err[256];
    snprintf(text, sizeof(text), "\\set x %s\nSELECT :x;\n", expr);
    struct sql_script *s = parse(text);
    for (int i = 0; i < n; i++) {
        int64_t v = 0;
        assert_int_equal(sql_expr_eval(s->cmds[0].expr, vars, &r, &v, err, sizeof(err)), 0);
        assert_true(v >= lo && v <= hi);
        if (counts)
            counts[v - lo]++;
    }
    sql_script_free(s);
}

static void test_distributions(void **state)
{
    (void)state;
    int u[10] = {0}, g[10] = {0}, z[10] = {0}, e[10] = {0};
    draw("random(1, 10)", 100000, 1, 10, u);
    for (int i = 0; i < 10; i++) /* 10,000 expected each; 5 sigma is about 475 */
        assert_true(u[i] > 9500 && u[i] < 10500);
    draw("random_gaussian(1, 10, 4)", 100000, 1, 10, g);
    assert_true(g[4] > 3 * g[0] && g[5] > 3 * g[9]); /* peaked in the middle */
    draw("random_zipfian(1, 10, 2)", 100000, 1, 10, z);
    for (int i = 0; i + 1 < 10; i++) /* decreasing: 1 most frequent */
        assert_true(z[i] > z[i + 1]);
    /* zipf s = 2 on 1..10: P(1)/P(2) = 4 */
    assert_true((double)z[0] / z[1] > 3.7 && (double)z[0] / z[1] < 4.3);
    draw("random_exponential(1, 10, 3)", 100000, 1, 10, e);
    assert_true(e[0] > e[3] && e[3] > e[9]);
    draw("random(-9223372036854775807 - 1, 9223372036854775807)", 1000, INT64_MIN, INT64_MAX, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins),      cmocka_unit_test(test_statements),
        cmocka_unit_test(test_errors),        cmocka_unit_test(test_arithmetic),
        cmocka_unit_test(test_distributions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
