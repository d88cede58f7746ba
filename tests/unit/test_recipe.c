/* test_recipe.c — benchmarks resolved against a catalog made in a temp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/recipe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmpdir[] = "/tmp/sonde-test-recipe-XXXXXX";
static struct catalog cat;

static void put(const char *rel, const char *text)
{
    char *p = path_join(tmpdir, rel);
    char *dir = xstrdup(p);
    *strrchr(dir, '/') = '\0';
    assert_int_equal(mkdir_p(dir, 0755), 0);
    assert_int_equal(write_file_atomic(p, text, strlen(text)), 0);
    free(dir);
    free(p);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    put("cat/services/kv.yaml", "kind: service\nname: kv\ndescription: a key-value store\n"
                                "driver: generic\nport: auto\n"
                                "with:\n  command: [kvd, --port, \"${self.port}\"]\n"
                                "  stop: [kvctl, stop]\n"
                                "env: {KV_MODE: fast, KV_LOG: info}\n"
                                "ready: {tcp: \"${self.port}\"}\n");
    put("cat/clients/load.yaml", "kind: client\nname: load\ndriver: exec\n"
                                 "with: {command: [loadgen, -n, \"10\"], timeout: 1m}\n");
    put("cat/monitors/node.yaml", "kind: monitor\nname: node\ndriver: node\ninterval: 2s\n");
    put("cat/services/wrongname.yaml", "kind: service\nname: other\ndriver: generic\n"
                                       "with: {command: [x]}\n");
    const char *dirs[] = {NULL, NULL};
    char *c = path_join(tmpdir, "cat");
    dirs[0] = c;
    catalog_init(&cat, dirs);
    free(c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    catalog_free(&cat);
    rm_rf(tmpdir);
    return 0;
}

/* Resolves TEXT (written to a file); returns NULL on errors, with *err the formatted diags. */
static struct bench_spec *resolve(const char *text, char *const *sets, char **err)
{
    put("b.yaml", text);
    char *p = path_join(tmpdir, "b.yaml");
    struct recipe_opts o = {.catalog = &cat, .sets = sets};
    struct diags d = {0};
    struct bench_spec *b = NULL;
    int r = bench_resolve(p, &o, &b, &d);
    *err = diags_format(&d);
    assert_true((r == 0) == (b != NULL));
    assert_true((r == 0) == (d.n == 0));
    diags_free(&d);
    free(p);
    return b;
}

static struct bench_spec *ok(const char *text, char *const *sets)
{
    char *err = NULL;
    struct bench_spec *b = resolve(text, sets, &err);
    if (!b)
        print_error("%s", err);
    assert_non_null(b);
    free(err);
    return b;
}

/* Expects an error containing want (which may start with "LINE:COL: "). */
static void fails(const char *text, char *const *sets, const char *want)
{
    char *err = NULL;
    struct bench_spec *b = resolve(text, sets, &err);
    assert_null(b);
    if (!strstr(err, want))
        print_error("expected '%s' in:\n%s", want, err);
    assert_non_null(strstr(err, want));
    free(err);
}

static const struct comp_spec *comp(const struct trial_spec *t, const char *name)
{
    for (size_t i = 0; i < t->ncomps; i++)
        if (!strcmp(t->comps[i].name, name))
            return &t->comps[i];
    fail_msg("no component %s", name);
    abort(); /* not reached: fail_msg ends the test (the compiler cannot know) */
}

#define CLIENT "clients:\n  c:\n    driver: exec\n    with: {command: [\"true\"]}\n"

static void test_minimal(void **state)
{
    (void)state;
    struct bench_spec *b = ok("kind: benchmark\nname: m\n" CLIENT, NULL);
    assert_string_equal(b->name, "m");
    assert_string_equal(b->backend, "local");
    assert_null(b->description);
    assert_int_equal(b->ntrials, 1);
    assert_string_equal(b->trials[0].label, "trial 1");
    assert_null(b->trials[0].matrix);
    assert_int_equal(b->trials[0].ncomps, 1);
    const struct comp_spec *c = &b->trials[0].comps[0];
    assert_int_equal(c->role, ROLE_CLIENT);
    assert_string_equal(c->driver, "exec");
    assert_null(c->use);
    assert_int_equal(c->with->kind, SV_MAP);
    assert_int_equal(c->stop_grace_ns, 10000000000LL);
    assert_null(c->deps[0]);
    assert_int_equal(strlen(b->sha256), 64);
    assert_non_null(strstr(b->resolved_yaml, "kind: benchmark\nname: m\n"));
    assert_non_null(strstr(b->resolved_yaml, "label: trial 1"));
    bench_free(b);
    bench_free(NULL);
}

static void test_matrix_order_and_repeat(void **state)
{
    (void)state;
    struct bench_spec *b = ok("kind: benchmark\nname: m\nrepeat: 2\ntimeout: 5s\n"
                              "matrix:\n  a: [x, y]\n  n: [1, 2, 3]\n"
                              "clients:\n  c:\n    driver: exec\n"
                              "    with: {command: [run, \"${matrix.a}\", \"${matrix.n}\"]}\n",
                              NULL);
    assert_int_equal(b->ntrials, 12);
    const char *labels[] = {"a=x n=1 #1", "a=x n=1 #2", "a=x n=2 #1", "a=x n=2 #2",
                            "a=x n=3 #1", "a=x n=3 #2", "a=y n=1 #1", "a=y n=1 #2"};
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(b->trials[i].index, i);
        assert_int_equal(b->trials[i].repetition, i % 2);
        assert_string_equal(b->trials[i].label, labels[i]);
        assert_int_equal(b->trials[i].timeout_ns, 5000000000LL);
    }
    assert_string_equal(b->trials[7].matrix[0], "a=y");
    assert_string_equal(b->trials[7].matrix[1], "n=1");
    assert_null(b->trials[7].matrix[2]);
    const struct sv *cmd = sv_get(b->trials[11].comps[0].with, "command");
    assert_string_equal(cmd->kids[1]->str, "y");
    assert_string_equal(cmd->kids[2]->str, "3");
    bench_free(b);

    b = ok("kind: benchmark\nname: m\nrepeat: 3\n" CLIENT, NULL);
    assert_int_equal(b->ntrials, 3);
    assert_string_equal(b->trials[2].label, "trial 3");
    assert_int_equal(b->trials[2].repetition, 2);
    bench_free(b);
}

static void test_use_merge(void **state)
{
    (void)state;
    struct bench_spec *b =
        ok("kind: benchmark\nname: u\nenv: {GLOBAL: g, KV_LOG: bench}\n"
           "services:\n  db:\n    use: kv\n    env: {KV_MODE: safe}\n"
           "    with: {stop: [kvctl, halt]}\n"
           "clients:\n  l:\n    use: load\n"
           "    with: {command: [loadgen, \"${services.db.host}:${services.db.port}\"]}\n"
           "monitors: [node]\n",
           NULL);
    const struct trial_spec *t = &b->trials[0];
    assert_int_equal(t->ncomps, 3);
    assert_int_equal(t->comps[0].role, ROLE_SERVICE);
    assert_int_equal(t->comps[1].role, ROLE_MONITOR);
    assert_int_equal(t->comps[2].role, ROLE_CLIENT);
    const struct comp_spec *db = comp(t, "db");
    assert_string_equal(db->use, "kv");
    assert_string_equal(db->driver, "generic");
    assert_string_equal(db->description, "a key-value store");
    assert_string_equal(db->port, "auto");
    assert_int_equal(db->ready.kind, PROBE_TCP);
    assert_string_equal(db->ready.port, "${self.port}");
    assert_string_equal(db->ready.host, "127.0.0.1");
    assert_int_equal(db->ready.timeout_ns, 30000000000LL);
    /* with: merged key by key; the entry's command stays, stop is replaced */
    assert_string_equal(sv_get(db->with, "command")->kids[0]->str, "kvd");
    assert_string_equal(sv_get(db->with, "stop")->kids[1]->str, "halt");
    /* env: benchmark env under the entry's env under the block's env */
    char *env = xstrdup("");
    for (char **e = db->env; e && *e; e++) {
        char *n = xasprintf("%s%s;", env, *e);
        free(env);
        env = n;
    }
    assert_string_equal(env, "GLOBAL=g;KV_LOG=info;KV_MODE=safe;");
    free(env);
    const struct comp_spec *l = comp(t, "l");
    assert_string_equal(l->deps[0], "db");
    assert_null(l->deps[1]);
    assert_string_equal(sv_get(l->with, "timeout")->str, "1m");
    assert_string_equal(sv_get(l->with, "command")->kids[1]->str,
                        "${services.db.host}:${services.db.port}");
    const struct comp_spec *n = comp(t, "node");
    assert_int_equal(n->interval_ns, 2000000000LL);
    /* positions of merged values point to the file they were written in */
    const struct sv *kvd = sv_get(db->with, "command");
    assert_non_null(strstr(kvd->pos.file, "cat/services/kv.yaml"));
    assert_int_equal(kvd->pos.line, 7);
    assert_int_equal(kvd->pos.col, 12);
    bench_free(b);
}

static void test_sets(void **state)
{
    (void)state;
    char *sets[] = {"repeat=2", "matrix.n=[1, 2]", "clients.c.with.timeout=5s",
                    "clients.c.env.NEW=1", NULL};
    struct bench_spec *b = ok("kind: benchmark\nname: s\n" CLIENT, sets);
    assert_int_equal(b->ntrials, 4);
    assert_string_equal(b->trials[3].label, "n=2 #2");
    const struct comp_spec *c = &b->trials[0].comps[0];
    assert_string_equal(sv_get(c->with, "timeout")->str, "5s");
    assert_string_equal(c->env[0], "NEW=1");
    bench_free(b);

    char *bad_val[] = {"repeat=-1", NULL};
    fails("kind: benchmark\nname: s\n" CLIENT, bad_val,
          "<--set>:1:8: error: repeat: expected a whole number from 1 to 10000, got '-1'");
    char *no_eq[] = {"repeat", NULL};
    fails("kind: benchmark\nname: s\n" CLIENT, no_eq,
          "--set:1:1: error: invalid --set 'repeat': expected key.path=value");
    char *yaml[] = {"matrix.n=[1, 2", NULL};
    fails("kind: benchmark\nname: s\n" CLIENT, yaml, "invalid --set 'matrix.n=[1, 2': the value");
    char *through[] = {"name.x=1", NULL};
    fails("kind: benchmark\nname: s\n" CLIENT, through, "cannot set a key inside 's'");
    char *empty[] = {"a..b=1", NULL};
    fails("kind: benchmark\nname: s\n" CLIENT, empty, "empty key in the path");
    char *unknown[] = {"clients.c.with.comand=[x]", NULL};
    fails("kind: benchmark\nname: s\n" CLIENT, unknown,
          "<--set>:1:23: error: clients.c.with.comand: unknown option 'comand' for driver "
          "'exec' (did you mean 'command'?)");
}

static void test_dependency_order_and_cycles(void **state)
{
    (void)state;
    struct bench_spec *b =
        ok("kind: benchmark\nname: d\n"
           "services:\n"
           "  web:\n    driver: generic\n    with: {command: [w, \"${services.app.port}\"]}\n"
           "  app:\n    driver: generic\n    with: {command: [a, \"${services.db.port}\"]}\n"
           "  other:\n    driver: generic\n    with: {command: [o]}\n"
           "  db:\n    driver: generic\n    port: 5432\n    with: {command: [d]}\n" CLIENT,
           NULL);
    const struct trial_spec *t = &b->trials[0];
    const char *order[] = {"other", "db", "app", "web", "c"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(t->comps[i].name, order[i]);
    bench_free(b);

    fails("kind: benchmark\nname: d\nservices:\n"
          "  a:\n    driver: generic\n    with: {command: [a, \"${services.x.host}\"]}\n"
          "  b:\n    driver: generic\n    with: {command: [b, \"${services.a.host}\"]}\n"
          "  x:\n    driver: generic\n    with: {command: [x, \"${services.b.host}\"]}\n" CLIENT,
          NULL, "b.yaml:6:25: error: dependency cycle: a -> x -> b -> a");
}

static void test_error_positions(void **state)
{
    (void)state;
    fails("kind: benchmark\nname: e\n" CLIENT "    stop_grace: 10\n", NULL,
          "b.yaml:7:17: error: clients.c.stop_grace: expected a duration like 500ms or 2m");
    /* several errors in one round */
    char *err = NULL;
    struct bench_spec *b = resolve("kind: benchmark\nname: e\nrepeat: x\ntimout: 1s\n"
                                   "clients:\n  c:\n    driver: exex\n",
                                   NULL, &err);
    assert_null(b);
    assert_non_null(strstr(err, "b.yaml:3:9: error: repeat:"));
    assert_non_null(strstr(err, "b.yaml:4:1: error: timout: unknown key 'timout' in a "
                                "benchmark (did you mean 'timeout'?)"));
    assert_non_null(strstr(err, "b.yaml:7:13: error: clients.c.driver: unknown client driver"));
    free(err);
    /* errors inside a catalog entry point into the entry */
    fails("kind: benchmark\nname: e\nservices:\n  w:\n    use: wrongname\n" CLIENT, NULL,
          "cat/services/wrongname.yaml:2:7: error: name: name 'other' must match");
    /* the same error in every trial is reported once */
    err = NULL;
    b = resolve("kind: benchmark\nname: e\nmatrix: {n: [1, 2, 3]}\n" CLIENT "    stop_grace: 10\n",
                NULL, &err);
    assert_null(b);
    assert_non_null(strstr(err, "stop_grace"));
    assert_null(strstr(strstr(err, "stop_grace") + 1, "stop_grace: expected"));
    free(err);
}

static void test_validate_kinds(void **state)
{
    (void)state;
    struct recipe_opts o = {.catalog = &cat};
    struct diags d = {0};
    char *p = path_join(tmpdir, "cat/services/kv.yaml");
    assert_int_equal(recipe_validate_file(p, &o, &d), 0);
    free(p);
    p = path_join(tmpdir, "cat/services/wrongname.yaml");
    assert_int_equal(recipe_validate_file(p, &o, &d), -EINVAL);
    assert_int_equal(d.n, 1);
    free(p);
    diags_free(&d);
    const char *entry = "kind: client\nname: x\ndriver: exec\nwith: {command: [a], bogus: 1}\n";
    assert_int_equal(recipe_validate_buffer("x.yaml", entry, strlen(entry), &o, &d), -EINVAL);
    char *s = diags_format(&d);
    assert_string_equal(s, "x.yaml:4:22: error: with.bogus: unknown option 'bogus' for driver "
                           "'exec'\n");
    free(s);
    diags_free(&d);
    /* bench_resolve refuses a catalog entry */
    p = path_join(tmpdir, "cat/clients/load.yaml");
    struct bench_spec *b = NULL;
    assert_int_equal(bench_resolve(p, &o, &b, &d), -EINVAL);
    assert_null(b);
    assert_non_null(strstr(d.v[0].msg, "expected kind 'benchmark'"));
    free(p);
    diags_free(&d);
    /* I/O errors are returned as such */
    assert_int_equal(recipe_validate_file("/nonexistent/x.yaml", &o, &d), -ENOENT);
    assert_int_equal(d.n, 1);
    diags_free(&d);
}

static void test_catalog(void **state)
{
    (void)state;
    struct catalog_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(catalog_list(&cat, -1, &e, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(e[0].kind, RECIPE_SERVICE);
    assert_string_equal(e[0].name, "kv");
    assert_string_equal(e[0].description, "a key-value store");
    assert_string_equal(e[1].name, "wrongname");
    assert_int_equal(e[2].kind, RECIPE_CLIENT);
    assert_int_equal(e[3].kind, RECIPE_MONITOR);
    catalog_entries_free(e, n);
    assert_int_equal(catalog_list(&cat, RECIPE_MONITOR, &e, &n), 0);
    assert_int_equal(n, 1);
    catalog_entries_free(e, n);
    char *path = NULL;
    assert_int_equal(catalog_find(&cat, RECIPE_CLIENT, "load", &path), 0);
    assert_true(str_endswith(path, "/cat/clients/load.yaml"));
    free(path);
    assert_int_equal(catalog_find(&cat, RECIPE_SERVICE, "load", &path), -ENOENT);
    assert_int_equal(catalog_find(&cat, RECIPE_SERVICE, "../clients/load", &path), -EINVAL);
    assert_int_equal(catalog_find(&cat, RECIPE_SERVICE, "..", &path), -EINVAL);
}

static const char *rt_lookup(void *ud, const char *ref)
{
    (void)ud;
    return !strcmp(ref, "self.port") ? "4242" : !strcmp(ref, "self.dir") ? "/d" : NULL;
}

static void test_comp_spec_interp(void **state)
{
    (void)state;
    struct bench_spec *b = ok("kind: benchmark\nname: r\nservices:\n  db:\n    use: kv\n"
                              "    cwd: \"${self.dir}\"\n" CLIENT,
                              NULL);
    const struct comp_spec *db = comp(&b->trials[0], "db");
    struct comp_spec *c = NULL;
    struct diags d = {0};
    assert_int_equal(comp_spec_interp(db, rt_lookup, NULL, &d, &c), 0);
    assert_string_equal(c->ready.port, "4242");
    assert_string_equal(c->cwd, "/d");
    assert_string_equal(sv_get(c->with, "command")->kids[2]->str, "4242");
    assert_string_equal(db->ready.port, "${self.port}"); /* the source is untouched */
    comp_spec_free(c);
    c = NULL;
    assert_int_equal(comp_spec_interp(db, NULL, NULL, &d, &c), -EINVAL);
    assert_null(c);
    assert_true(d.n > 0);
    diags_free(&d);
    comp_spec_free(NULL);
    bench_free(b);
}

static void test_loader_limits(void **state)
{
    (void)state;
    struct diags d = {0};
    struct sv *v = NULL;
    struct sbuf s = {0};
    sbuf_puts(&s, "a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 8; i++)
        sbuf_printf(&s, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", 'a' + i,
                    'a' + i, 'a' + i - 1, 'a' + i - 1, 'a' + i - 1, 'a' + i - 1, 'a' + i - 1,
                    'a' + i - 1, 'a' + i - 1, 'a' + i - 1, 'a' + i - 1, 'a' + i - 1);
    assert_int_equal(recipe_load_buffer("bomb", s.s, s.len, &v, &d), -EINVAL);
    assert_null(v);
    assert_non_null(strstr(d.v[0].msg, "more than 100000 nodes"));
    diags_free(&d);
    sbuf_free(&s);
    /* aliases within the limits are copies */
    const char *t = "base: &b {x: 1}\nuse: *b\n";
    assert_int_equal(recipe_load_buffer("alias", t, strlen(t), &v, &d), 0);
    assert_string_equal(sv_str(sv_get(v, "use"), "x", NULL), "1");
    sv_free(v);
    const char *rec = "a: &a [1, *a]\n";
    assert_int_equal(recipe_load_buffer("rec", rec, strlen(rec), &v, &d), -EINVAL);
    assert_non_null(strstr(d.v[0].msg, "contains it"));
    diags_free(&d);
    char big[64];
    memset(big, 'a', sizeof(big));
    assert_int_equal(recipe_load_buffer("nul", "a: b\n\0c", 7, &v, &d), -EINVAL);
    assert_int_equal(d.v[0].line, 2);
    assert_int_equal(d.v[0].col, 1);
    diags_free(&d);
    assert_int_equal(recipe_load_buffer("huge", big, (size_t)RECIPE_MAX_BYTES + 1, &v, &d),
                     -EINVAL);
    assert_non_null(strstr(d.v[0].msg, "larger than 1 MiB"));
    diags_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_matrix_order_and_repeat),
        cmocka_unit_test(test_use_merge),
        cmocka_unit_test(test_sets),
        cmocka_unit_test(test_dependency_order_and_cycles),
        cmocka_unit_test(test_error_positions),
        cmocka_unit_test(test_validate_kinds),
        cmocka_unit_test(test_catalog),
        cmocka_unit_test(test_comp_spec_interp),
        cmocka_unit_test(test_loader_limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
