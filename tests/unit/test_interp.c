/* test_interp.c — ${...} references: resolve-time and run-time substitution. */
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
    assert_int_equal(recipe_load_buffer("i.yaml", text, strlen(text), &v, &d), 0);
    diags_free(&d);
    return v;
}

/* Expands `v: TEXT` with a matrix {rate: [..], size: [..]} at point (4, 1KiB). */
struct fixture {
    struct sv *matrix;
    char *point[3];
    char *services[3];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->matrix = load("rate: [1, 4]\nsize: [1KiB]\n");
    f->point[0] = "4";
    f->point[1] = "1KiB";
    f->services[0] = "db";
    f->services[1] = "cache";
    *state = f;
    setenv("SONDE_TEST_VAR", "hello", 1);
    setenv("SONDE_TEST_EMPTY", "", 1);
    unsetenv("SONDE_TEST_UNSET");
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sv_free(f->matrix);
    free(f);
    return 0;
}

/* Returns the expanded text (caller frees) or NULL; *diag gets the formatted errors. */
static char *expand(struct fixture *f, const char *text, bool self_port, char **diag,
                    struct interp_static *out_ctx)
{
    char *doc = xasprintf("v: '%s'\n", text);
    struct sv *v = load(doc);
    struct diags d = {0};
    struct interp_static c = {
        .matrix = f->matrix, .point = f->point, .services = f->services, .self_port = self_port};
    int r = recipe_interp_static(v, &c, "", &d);
    char *res = r == 0 ? xstrdup(sv_str(v, "v", NULL)) : NULL;
    *diag = diags_format(&d);
    if (out_ctx)
        *out_ctx = c;
    else
        interp_static_free(&c);
    diags_free(&d);
    sv_free(v);
    free(doc);
    return res;
}

static void expect(struct fixture *f, const char *text, const char *want)
{
    char *diag = NULL;
    char *got = expand(f, text, true, &diag, NULL);
    if (!got)
        print_error("%s: %s", text, diag);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_string_equal(diag, "");
    free(got);
    free(diag);
}

static void expect_error(struct fixture *f, const char *text, const char *msg, bool self_port)
{
    char *diag = NULL;
    char *got = expand(f, text, self_port, &diag, NULL);
    assert_null(got);
    if (!strstr(diag, msg))
        print_error("%s: got %s", text, diag);
    assert_non_null(strstr(diag, msg));
    /* the error points at the scalar: line 1, column 4 */
    assert_non_null(strstr(diag, "i.yaml:1:4: error: v: "));
    free(diag);
}

static void test_matrix_and_env(void **state)
{
    struct fixture *f = *state;
    expect(f, "rate=${matrix.rate} size=${matrix.size}", "rate=4 size=1KiB");
    expect(f, "${env.SONDE_TEST_VAR}", "hello");
    expect(f, "${env.SONDE_TEST_UNSET:-fallback}", "fallback");
    expect(f, "${env.SONDE_TEST_EMPTY:-fallback}", "fallback");
    expect(f, "${env.SONDE_TEST_EMPTY}", "");
    expect(f, "${env.SONDE_TEST_VAR:-x}-${env.SONDE_TEST_UNSET:-}", "hello-");
    expect(f, "plain text $HOME $ {x}", "plain text $HOME $ {x}");
}

static void test_runtime_refs_kept(void **state)
{
    struct fixture *f = *state;
    expect(f, "${session.dir}/${session.id}", "${session.dir}/${session.id}");
    expect(f, "${self.host}:${self.port} ${self.dir} ${self.name}",
           "${self.host}:${self.port} ${self.dir} ${self.name}");
    expect(f, "${trial.index} ${trial.label} ${trial.repetition}",
           "${trial.index} ${trial.label} ${trial.repetition}");
    expect(f, "$${matrix.nope} and $${", "$${matrix.nope} and $${"); /* escapes wait */
}

static void test_service_deps(void **state)
{
    struct fixture *f = *state;
    char *diag = NULL;
    struct interp_static c;
    char *got = expand(f, "${services.db.host}:${services.db.port} ${services.cache.dir}", false,
                       &diag, &c);
    assert_non_null(got);
    assert_int_equal(c.ndeps, 2);
    assert_string_equal(c.deps[0].name, "db");
    assert_string_equal(c.deps[1].name, "cache");
    assert_int_equal(c.deps[0].pos.line, 1);
    interp_static_free(&c);
    free(got);
    free(diag);
}

static void test_errors(void **state)
{
    struct fixture *f = *state;
    expect_error(f, "${matrix.rat}",
                 "unknown matrix key 'rat' in '${matrix.rat}' (did you "
                 "mean 'rate'?)",
                 true);
    expect_error(f, "${env.SONDE_TEST_UNSET}",
                 "environment variable 'SONDE_TEST_UNSET' is not "
                 "set",
                 true);
    expect_error(f, "${env.BAD-NAME}", "invalid environment variable name", true);
    expect_error(f, "${services.nope.host}", "unknown service 'nope'", true);
    expect_error(f, "${services.db.hots}", "expected one of host, port, dir after 'services.db.'",
                 true);
    expect_error(f, "${services.db.hostt}", "(did you mean 'host'?)", true);
    expect_error(f, "${services.db}", "incomplete reference", true);
    expect_error(f, "${sesion.dir}", "(did you mean 'session'?)", true);
    expect_error(f, "${self.pert}", "(did you mean 'port'?)", true);
    expect_error(f, "${trial}", "unknown reference '${trial}'", true);
    expect_error(f, "${self.port}", "needs 'port:' on this service", false);
    expect_error(f, "abc ${session.dir", "unterminated reference", true);
    expect_error(f, "${}", "empty reference", true);
}

static void test_no_matrix_and_lenient(void **state)
{
    (void)state;
    struct sv *v = load("a: ${matrix.x}\nb: ${env.SONDE_TEST_UNSET}\nc: ${services.any.port}\n");
    struct diags d = {0};
    struct interp_static c = {.lenient = true};
    assert_int_equal(recipe_interp_static(v, &c, "", &d), 0);
    assert_int_equal(d.n, 0);
    assert_string_equal(sv_str(v, "a", NULL), "${matrix.x}");
    assert_int_equal(c.ndeps, 0);
    struct interp_static strict = {0};
    assert_int_equal(recipe_interp_static(v, &strict, "", &d), -EINVAL);
    assert_int_equal(d.n, 3); /* all errors, not just the first */
    char *s = diags_format(&d);
    assert_non_null(strstr(s, "i.yaml:1:4: error: a: '${matrix.x}' refers to the matrix, but"));
    free(s);
    diags_free(&d);
    sv_free(v);
}

static const char *lookup(void *ud, const char *ref)
{
    (void)ud;
    if (!strcmp(ref, "services.db.port"))
        return "5432";
    if (!strcmp(ref, "self.dir"))
        return "/tmp/x";
    return NULL;
}

static void test_runtime(void **state)
{
    (void)state;
    struct diags d = {0};
    char *out = NULL;
    struct sv_pos pos = {sv_intern("r.yaml"), 3, 7};
    assert_int_equal(recipe_interp_string("p=${services.db.port} $${lit} ${self.dir}/d", pos,
                                          lookup, NULL, &d, &out),
                     0);
    assert_string_equal(out, "p=5432 ${lit} /tmp/x/d");
    free(out);
    out = NULL;
    assert_int_equal(recipe_interp_string("${session.id}", pos, lookup, NULL, &d, &out), -EINVAL);
    assert_null(out);
    char *s = diags_format(&d);
    assert_string_equal(s, "r.yaml:3:7: error: cannot resolve '${session.id}' at run time\n");
    free(s);
    diags_free(&d);

    struct sv *v = load("cmd: [a, \"${self.dir}\", {k: \"${services.db.port}\"}]\n");
    assert_int_equal(recipe_interp_runtime(v, lookup, NULL, &d), 0);
    assert_string_equal(sv_get(v, "cmd")->kids[1]->str, "/tmp/x");
    assert_string_equal(sv_get(v, "cmd")->kids[2]->kids[0]->str, "5432");
    sv_free(v);
    assert_int_equal(recipe_interp_runtime(NULL, lookup, NULL, &d), 0);
    diags_free(&d);
}

static void test_has_ref(void **state)
{
    (void)state;
    assert_true(recipe_has_ref("x ${self.port}"));
    assert_true(recipe_has_ref("${a}"));
    assert_false(recipe_has_ref("$${a}"));
    assert_false(recipe_has_ref("plain $x"));
    assert_true(recipe_has_ref("$${a} ${b}"));
}

static void test_growth_limit(void **state)
{
    (void)state;
    /* a value repeated many times may not blow up memory */
    struct sbuf b = {0};
    sbuf_puts(&b, "v: \"");
    for (int i = 0; i < 2000; i++)
        sbuf_puts(&b, "${matrix.big}");
    sbuf_puts(&b, "\"\n");
    struct sv *v = load(b.s);
    struct sv *m = load("big: [x]\n");
    char *big = xmalloc(600001);
    memset(big, 'x', 600000);
    big[600000] = '\0';
    char *point[] = {big, NULL};
    size_t budget = 1 << 20;
    struct interp_static c = {.matrix = m, .point = point, .budget = &budget};
    struct diags d = {0};
    assert_int_equal(recipe_interp_static(v, &c, "", &d), -EINVAL);
    char *s = diags_format(&d);
    assert_non_null(strstr(s, "grows past the size limit"));
    free(s);
    diags_free(&d);
    free(big);
    sv_free(m);
    sv_free(v);
    sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix_and_env),
        cmocka_unit_test(test_runtime_refs_kept),
        cmocka_unit_test(test_service_deps),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_no_matrix_and_lenient),
        cmocka_unit_test(test_runtime),
        cmocka_unit_test(test_has_ref),
        cmocka_unit_test(test_growth_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
