/* test_store.c — the results store against a real SQLite file in a temp workspace. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "store/store.h"
#include "util/hdr.h"
#include "util/util.h"

struct fx {
    char dir[64];
    struct store *st;
};

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sonde-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    if (store_open(f->dir, &f->st) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->st);
    rm_rf(f->dir);
    free(f);
    return 0;
}

static char *this_host(void)
{
    char h[256];
    assert_int_equal(gethostname(h, sizeof(h)), 0);
    h[sizeof(h) - 1] = '\0';
    return xstrdup(h);
}

static void add_session(struct store *st, const char *id, int64_t created, const char *state)
{
    struct session_row r = {.id = (char *)(uintptr_t)id,
                            .name = "bench",
                            .recipe_path = "/r/bench.yaml",
                            .backend = "local",
                            .state = (char *)(uintptr_t)state,
                            .dir = "/w/sessions/x",
                            .host = "nohost.invalid",
                            .pid = 1,
                            .created = created};
    assert_int_equal(store_session_create(st, &r), 0);
}

static int64_t add_trial(struct store *st, const char *session, int64_t idx, const char *label)
{
    struct trial_row t = {.session = (char *)(uintptr_t)session,
                          .idx = idx,
                          .label = (char *)(uintptr_t)label,
                          .matrix = "{\"clients\":\"4\"}",
                          .state = "running",
                          .started = 1000};
    int64_t id = 0;
    assert_int_equal(store_trial_create(st, &t, &id), 0);
    assert_true(id > 0);
    return id;
}

static void put_metric(struct store *st, const char *session, int64_t trial, const char *name,
                       const char *labels, double v)
{
    struct metric_row m = {.trial_id = trial,
                           .component = "load",
                           .name = (char *)(uintptr_t)name,
                           .unit = "ops/s",
                           .labels = (char *)(uintptr_t)labels,
                           .value = v};
    assert_int_equal(store_metric_put(st, session, &m), 0);
}

static void test_open_configures_wal(void **state)
{
    struct fx *f = *state;
    char *path = path_join(f->dir, "sonde.db");
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(s, 0), STORE_SCHEMA_VERSION);
    sqlite3_finalize(s);
    sqlite3_close(db);
    free(path);
}

static void test_open_creates_workspace(void **state)
{
    struct fx *f = *state;
    char *ws = xasprintf("%s/a/b/c", f->dir);
    struct store *st = NULL;
    struct stat sb;
    assert_int_equal(store_open(ws, &st), 0);
    char *db = path_join(ws, "sonde.db");
    assert_int_equal(stat(db, &sb), 0);
    store_close(st);
    free(db);
    free(ws);
}

static void test_open_unwritable_fails(void **state)
{
    struct store *st = NULL;
    (void)state;
    assert_true(store_open("/proc/sonde-no-such/ws", &st) < 0);
    assert_null(st);
    assert_true(strlen(store_errmsg(NULL)) > 0);
}

static void test_session_lookup(void **state)
{
    struct fx *f = *state;
    struct session_row r = {0};
    add_session(f->st, "20260101-000000-aaaa", 300, "done");
    add_session(f->st, "20260101-000000-aabb", 100, "done");
    add_session(f->st, "20260202-000000-cccc", 200, "running");

    assert_int_equal(store_session_get(f->st, "20260101-000000-aabb", &r), 0);
    assert_string_equal(r.id, "20260101-000000-aabb");
    assert_string_equal(r.name, "bench");
    assert_string_equal(r.backend, "local");
    assert_string_equal(r.recipe_path, "/r/bench.yaml");
    assert_int_equal(r.created, 100);
    session_row_free(&r);

    assert_int_equal(store_session_get(f->st, "20260202", &r), 0);
    assert_string_equal(r.id, "20260202-000000-cccc");
    session_row_free(&r);

    assert_int_equal(store_session_get(f->st, "latest", &r), 0);
    assert_string_equal(r.id, "20260101-000000-aaaa"); /* newest created */
    session_row_free(&r);

    assert_int_equal(store_session_get(f->st, "20260101-000000-aa", &r), -EEXIST);
    assert_non_null(strstr(store_errmsg(f->st), "ambiguous"));
    assert_int_equal(store_session_get(f->st, "2027", &r), -ENOENT);
    assert_int_equal(store_session_get(f->st, "", &r), -EINVAL);
    /* LIKE wildcards in a prefix are plain characters */
    assert_int_equal(store_session_get(f->st, "2026%", &r), -ENOENT);
    assert_int_equal(store_session_get(f->st, "2026_", &r), -ENOENT);
}

static void test_session_latest_empty(void **state)
{
    struct fx *f = *state;
    struct session_row r = {0};
    struct session_row *rows = NULL;
    size_t n = 99;
    assert_int_equal(store_session_get(f->st, "latest", &r), -ENOENT);
    assert_int_equal(store_session_list(f->st, &rows, &n), 0);
    assert_int_equal(n, 0);
    session_rows_free(rows, n);
}

static void test_session_list_and_state(void **state)
{
    struct fx *f = *state;
    struct session_row *rows = NULL;
    size_t n = 0;
    add_session(f->st, "s-b", 200, "pending");
    add_session(f->st, "s-a", 100, "pending");
    add_session(f->st, "s-c", 300, "pending");
    assert_int_equal(store_session_create(
                         f->st, &(struct session_row){.id = "s-a", .name = "x", .state = "done"}),
                     -EEXIST);

    assert_int_equal(store_session_list(f->st, &rows, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].id, "s-a");
    assert_string_equal(rows[1].id, "s-b");
    assert_string_equal(rows[2].id, "s-c");
    session_rows_free(rows, n);

    assert_int_equal(store_session_set_started(f->st, "s-a", 12345), 0);
    assert_int_equal(store_session_set_state(f->st, "s-a", "running", NULL), 0);
    struct session_row r = {0};
    assert_int_equal(store_session_get(f->st, "s-a", &r), 0);
    assert_string_equal(r.state, "running");
    assert_null(r.reason);
    assert_int_equal(r.started, 12345);
    assert_int_equal(r.ended, 0);
    session_row_free(&r);

    assert_int_equal(store_session_set_state(f->st, "s-a", "failed", "service llm exited with 137"),
                     0);
    assert_int_equal(store_session_get(f->st, "s-a", &r), 0);
    assert_string_equal(r.state, "failed");
    assert_string_equal(r.reason, "service llm exited with 137");
    assert_true(r.ended > 0);
    session_row_free(&r);

    assert_int_equal(store_session_set_state(f->st, "nope", "done", NULL), -ENOENT);
    assert_int_equal(store_session_set_state(f->st, "s-a", "exploded", NULL), -EINVAL);
    assert_int_equal(store_session_set_started(f->st, "nope", 1), -ENOENT);
}

static void test_provenance(void **state)
{
    struct fx *f = *state;
    struct kv_row *kv = NULL;
    size_t n = 0;
    add_session(f->st, "s1", 1, "running");
    assert_int_equal(store_provenance_put(f->st, "s1", "sonde.version", "0.1.0"), 0);
    assert_int_equal(store_provenance_put(f->st, "s1", "host", "node1"), 0);
    assert_int_equal(store_provenance_put(f->st, "s1", "host", "node2"), 0); /* overwrite */
    assert_int_equal(store_provenance_put(f->st, "s1", "recipe.sha256", "'; DROP TABLE x; --"), 0);
    assert_int_equal(store_provenance_put(f->st, "missing", "k", "v"), -ENOENT);
    assert_int_equal(store_provenance_list(f->st, "s1", &kv, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(kv[0].key, "host");
    assert_string_equal(kv[0].value, "node2");
    assert_string_equal(kv[1].key, "recipe.sha256");
    assert_string_equal(kv[1].value, "'; DROP TABLE x; --");
    assert_string_equal(kv[2].key, "sonde.version");
    kv_rows_free(kv, n);
}

static void test_trials(void **state)
{
    struct fx *f = *state;
    struct trial_row *t = NULL;
    size_t n = 0;
    add_session(f->st, "s1", 1, "running");
    int64_t t2 = add_trial(f->st, "s1", 2, "clients=8");
    int64_t t1 = add_trial(f->st, "s1", 1, "clients=4");
    assert_int_equal(store_trial_finish(f->st, t1, "done", NULL, 5000), 0);
    assert_int_equal(store_trial_finish(f->st, t2, "failed", "client load exited with 1", 6000), 0);
    assert_int_equal(store_trial_finish(f->st, 9999, "done", NULL, 1), -ENOENT);
    assert_int_equal(store_trial_list(f->st, "s1", &t, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(t[0].id, t1);
    assert_int_equal(t[0].idx, 1);
    assert_string_equal(t[0].label, "clients=4");
    assert_string_equal(t[0].matrix, "{\"clients\":\"4\"}");
    assert_string_equal(t[0].state, "done");
    assert_null(t[0].reason);
    assert_int_equal(t[0].started, 1000);
    assert_int_equal(t[0].ended, 5000);
    assert_string_equal(t[1].session, "s1");
    assert_string_equal(t[1].state, "failed");
    assert_string_equal(t[1].reason, "client load exited with 1");
    trial_rows_free(t, n);
}

static void test_components(void **state)
{
    struct fx *f = *state;
    struct component_row *c = NULL;
    size_t n = 0;
    int64_t svc = 0, cli = 0;
    add_session(f->st, "s1", 1, "running");
    int64_t t1 = add_trial(f->st, "s1", 1, "a");
    struct component_row r = {.session = "s1",
                              .name = "db",
                              .role = "service",
                              .driver = "generic",
                              .log_path = "/w/db.log",
                              .exit_code = -1,
                              .state = "starting"};
    assert_int_equal(store_component_create(f->st, &r, &svc), 0);
    r.trial_id = t1;
    r.name = "load";
    r.role = "client";
    assert_int_equal(store_component_create(f->st, &r, &cli), 0);

    r.id = cli;
    r.pid = 4242;
    r.command = "[\"/bin/true\"]";
    r.host = "node1";
    r.state = "failed";
    r.reason = "killed";
    r.exit_code = -1;
    r.exit_signal = 9;
    r.started = 10;
    r.ended = 20;
    assert_int_equal(store_component_update(f->st, &r), 0);
    r.id = 9999;
    assert_int_equal(store_component_update(f->st, &r), -ENOENT);

    assert_int_equal(store_component_list(f->st, "s1", -1, &c, &n), 0);
    assert_int_equal(n, 2);
    component_rows_free(c, n);
    assert_int_equal(store_component_list(f->st, "s1", 0, &c, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].name, "db");
    assert_int_equal(c[0].trial_id, 0);
    assert_int_equal(c[0].exit_code, -1);
    component_rows_free(c, n);
    assert_int_equal(store_component_list(f->st, "s1", t1, &c, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].id, cli);
    assert_int_equal(c[0].trial_id, t1);
    assert_string_equal(c[0].role, "client");
    assert_string_equal(c[0].driver, "generic");
    assert_string_equal(c[0].command, "[\"/bin/true\"]");
    assert_string_equal(c[0].host, "node1");
    assert_string_equal(c[0].log_path, "/w/db.log");
    assert_string_equal(c[0].state, "failed");
    assert_string_equal(c[0].reason, "killed");
    assert_int_equal(c[0].pid, 4242);
    assert_int_equal(c[0].exit_signal, 9);
    assert_int_equal(c[0].started, 10);
    assert_int_equal(c[0].ended, 20);
    component_rows_free(c, n);
}

static void test_metrics(void **state)
{
    struct fx *f = *state;
    struct metric_row *m = NULL;
    size_t n = 0;
    add_session(f->st, "s1", 1, "running");
    int64_t t1 = add_trial(f->st, "s1", 1, "a");
    int64_t t2 = add_trial(f->st, "s1", 2, "b");
    put_metric(f->st, "s1", t1, "tps", NULL, 1.0);
    put_metric(f->st, "s1", t1, "tps", NULL, 123.5); /* replaces */
    put_metric(f->st, "s1", t1, "lat", "{\"op\":\"read\"}", 2.0);
    put_metric(f->st, "s1", t1, "lat", "{\"op\":\"write\"}", 3.0);
    put_metric(f->st, "s1", t2, "tps", NULL, 99.0);
    put_metric(f->st, "s1", 0, "overhead", NULL, 0.5);
    struct metric_row bad = {.component = "c", .name = "n"};
    assert_int_equal(store_metric_put(f->st, "nope", &bad), -ENOENT);
    bad.name = NULL;
    assert_int_equal(store_metric_put(f->st, "s1", &bad), -EINVAL);

    assert_int_equal(store_metric_list(f->st, "s1", t1, &m, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(m[0].name, "tps");
    assert_true(m[0].value == 123.5);
    assert_string_equal(m[0].unit, "ops/s");
    assert_string_equal(m[0].component, "load");
    assert_null(m[0].labels);
    assert_int_equal(m[0].trial_id, t1);
    assert_string_equal(m[1].name, "lat");
    assert_string_equal(m[1].labels, "{\"op\":\"read\"}");
    assert_string_equal(m[2].labels, "{\"op\":\"write\"}");
    metric_rows_free(m, n);
    assert_int_equal(store_metric_list(f->st, "s1", -1, &m, &n), 0);
    assert_int_equal(n, 5);
    assert_string_equal(m[0].name, "overhead"); /* session-wide first */
    assert_int_equal(m[0].trial_id, 0);
    metric_rows_free(m, n);
}

static void test_series(void **state)
{
    struct fx *f = *state;
    struct series_row *s = NULL;
    struct point *p = NULL;
    size_t n = 0;
    int64_t a = 0, a2 = 0, b = 0, c = 0;
    add_session(f->st, "s1", 1, "running");
    int64_t t1 = add_trial(f->st, "s1", 1, "a");
    assert_int_equal(store_series_get_or_create(f->st, "s1", t1, "node", "cpu", "%", NULL, &a), 0);
    assert_int_equal(store_series_get_or_create(f->st, "s1", t1, "node", "cpu", "%", NULL, &a2), 0);
    assert_int_equal(a, a2);
    assert_int_equal(
        store_series_get_or_create(f->st, "s1", t1, "node", "cpu", "%", "{\"cpu\":\"0\"}", &b), 0);
    assert_int_not_equal(a, b);
    assert_int_equal(store_series_get_or_create(f->st, "s1", 0, "node", "cpu", "%", NULL, &c), 0);
    assert_int_not_equal(a, c);
    assert_int_equal(store_series_append(f->st, a, 300, 3.0), 0);
    assert_int_equal(store_series_append(f->st, a, 100, 1.0), 0);
    assert_int_equal(store_series_append(f->st, a, 200, 2.0), 0);
    assert_int_equal(store_series_append(f->st, 9999, 1, 1.0), -ENOENT);

    assert_int_equal(store_series_list(f->st, "s1", t1, &s, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(s[0].id, a);
    assert_int_equal(s[0].npoints, 3);
    assert_int_equal(s[0].trial_id, t1);
    assert_string_equal(s[0].unit, "%");
    assert_null(s[0].labels);
    assert_string_equal(s[1].labels, "{\"cpu\":\"0\"}");
    assert_int_equal(s[1].npoints, 0);
    series_rows_free(s, n);
    assert_int_equal(store_series_list(f->st, "s1", -1, &s, &n), 0);
    assert_int_equal(n, 3);
    series_rows_free(s, n);

    assert_int_equal(store_series_points(f->st, a, &p, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(p[0].t, 100);
    assert_true(p[0].v == 1.0);
    assert_int_equal(p[2].t, 300);
    assert_true(p[2].v == 3.0);
    free(p);
}

static void test_events(void **state)
{
    struct fx *f = *state;
    struct event_row *e = NULL;
    size_t n = 0;
    add_session(f->st, "s1", 1, "running");
    int64_t t1 = add_trial(f->st, "s1", 1, "a");
    assert_int_equal(store_event_add(f->st, "s1", 0, "info", "session started"), 0);
    assert_int_equal(store_event_add(f->st, "s1", t1, "warning", "rate not reached"), 0);
    assert_int_equal(store_event_add(f->st, "s1", 0, NULL, "x"), -EINVAL);
    assert_int_equal(store_event_list(f->st, "s1", &e, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(e[0].level, "info");
    assert_int_equal(e[0].trial_id, 0);
    assert_true(e[0].t > 0);
    assert_string_equal(e[1].message, "rate not reached");
    assert_int_equal(e[1].trial_id, t1);
    event_rows_free(e, n);
}

static void test_transactions(void **state)
{
    struct fx *f = *state;
    struct session_row r = {0};
    assert_int_equal(store_begin(f->st), 0);
    assert_int_equal(store_begin(f->st), -EBUSY);
    add_session(f->st, "gone", 1, "running");
    assert_int_equal(store_rollback(f->st), 0);
    assert_int_equal(store_session_get(f->st, "gone", &r), -ENOENT);
    assert_int_equal(store_begin(f->st), 0);
    add_session(f->st, "kept", 1, "running");
    assert_int_equal(store_commit(f->st), 0);
    assert_int_equal(store_session_get(f->st, "kept", &r), 0);
    session_row_free(&r);
    assert_int_equal(store_rollback(f->st), 0); /* none open: no-op */
}

/* A second connection reads while the first holds an open write transaction. */
static void test_concurrent_reader(void **state)
{
    struct fx *f = *state;
    struct store *rd = NULL;
    struct metric_row *m = NULL;
    size_t n = 0;
    add_session(f->st, "s1", 1, "running");
    put_metric(f->st, "s1", 0, "a", NULL, 1);
    assert_int_equal(store_open(f->dir, &rd), 0);
    assert_int_equal(store_begin(f->st), 0);
    put_metric(f->st, "s1", 0, "b", NULL, 2);
    assert_int_equal(store_metric_list(rd, "s1", -1, &m, &n), 0);
    assert_int_equal(n, 1);
    metric_rows_free(m, n);
    assert_int_equal(store_commit(f->st), 0);
    assert_int_equal(store_metric_list(rd, "s1", -1, &m, &n), 0);
    assert_int_equal(n, 2);
    metric_rows_free(m, n);
    store_close(rd);
}

static pid_t dead_pid(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    return pid;
}

static void test_effective_state(void **state)
{
    char *host = this_host();
    struct session_row r = {.state = "running", .host = host, .pid = getpid()};
    (void)state;
    assert_string_equal(session_effective_state(&r), "running");
    r.pid = dead_pid();
    assert_string_equal(session_effective_state(&r), "interrupted");
    r.state = "stopping";
    assert_string_equal(session_effective_state(&r), "interrupted");
    r.state = "done";
    assert_string_equal(session_effective_state(&r), "done");
    r.state = "running";
    r.host = "some-other-host.invalid";
    assert_string_equal(session_effective_state(&r), "running");
    r.host = host;
    r.pid = 0;
    assert_string_equal(session_effective_state(&r), "running");
    free(host);
}

enum { CRASH_COMMITTED_POINTS = 50, CRASH_OPEN_POINTS = 150000 };

/* Child: commits a session, a metric and some points, then dies by SIGKILL in the
 * middle of a transaction holding more. Exit codes name the step that failed. */
static void crash_writer(const char *dir)
{
    struct store *st = NULL;
    char *host = this_host();
    int64_t sid = 0;
    if (store_open(dir, &st) < 0)
        _exit(10);
    struct session_row r = {
        .id = "crash-1", .name = "crash", .state = "running", .host = host, .pid = getpid()};
    if (store_session_create(st, &r) < 0)
        _exit(11);
    struct metric_row m = {.component = "load", .name = "committed", .value = 1};
    if (store_metric_put(st, "crash-1", &m) < 0 ||
        store_series_get_or_create(st, "crash-1", 0, "node", "cpu", "%", NULL, &sid) < 0)
        _exit(12);
    for (int i = 0; i < CRASH_COMMITTED_POINTS; i++)
        if (store_series_append(st, sid, i, i) < 0)
            _exit(13);
    if (store_begin(st) < 0)
        _exit(14);
    m.name = "uncommitted";
    if (store_metric_put(st, "crash-1", &m) < 0 ||
        store_session_set_state(st, "crash-1", "done", NULL) < 0)
        _exit(15);
    for (int i = 0; i < CRASH_OPEN_POINTS; i++)
        if (store_series_append(st, sid, 1000 + i, i) < 0)
            _exit(16);
    raise(SIGKILL);
    _exit(17);
}

static void test_crash_safety(void **state)
{
    struct fx *f = *state;
    struct metric_row *m = NULL;
    struct series_row *s = NULL;
    struct session_row r = {0};
    size_t n = 0;
    int status = 0;
    store_close(f->st); /* no connection crosses fork() */
    f->st = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        crash_writer(f->dir);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    assert_int_equal(store_open(f->dir, &f->st), 0);
    assert_int_equal(store_session_get(f->st, "crash-1", &r), 0);
    assert_string_equal(r.state, "running"); /* the "done" was never committed */
    assert_int_equal(r.ended, 0);
    assert_string_equal(session_effective_state(&r), "interrupted");
    session_row_free(&r);
    assert_int_equal(store_metric_list(f->st, "crash-1", -1, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(m[0].name, "committed");
    metric_rows_free(m, n);
    assert_int_equal(store_series_list(f->st, "crash-1", -1, &s, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(s[0].npoints, CRASH_COMMITTED_POINTS);
    series_rows_free(s, n);
    /* and the store is still writable */
    put_metric(f->st, "crash-1", 0, "after", NULL, 2);
}

static void set_version(const char *dir, int v)
{
    char *path = path_join(dir, "sonde.db");
    char *sql = xasprintf("UPDATE schema_version SET version = %d", v);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    free(sql);
    free(path);
}

static void test_migrations(void **state)
{
    struct fx *f = *state;
    struct store *st = NULL;
    struct session_row r = {0};
    add_session(f->st, "keep", 1, "done");
    store_close(f->st);
    f->st = NULL;
    /* reopening a current database changes nothing */
    assert_int_equal(store_open(f->dir, &st), 0);
    assert_int_equal(store_session_get(st, "keep", &r), 0);
    session_row_free(&r);
    store_close(st);
    st = NULL;
    /* a database written by a newer sonde is refused */
    set_version(f->dir, 99);
    assert_int_equal(store_open(f->dir, &st), -EPROTO);
    assert_null(st);
    char *want = xasprintf("results store schema version 99 is newer than this sonde (%d)",
                           STORE_SCHEMA_VERSION);
    assert_string_equal(store_errmsg(NULL), want);
    free(want);
    set_version(f->dir, STORE_SCHEMA_VERSION);
    assert_int_equal(store_open(f->dir, &f->st), 0);
}

static struct hdr *sample_hdr(int64_t n)
{
    struct hdr *h = NULL;
    assert_int_equal(hdr_init(1, 3600000000000LL, 3, &h), 0);
    for (int64_t i = 1; i <= n; i++)
        assert_int_equal(hdr_record(h, i * 1000), 0);
    return h;
}

static void put_hist(struct store *st, const char *session, int64_t trial, const char *name,
                     const struct hdr *h)
{
    struct histogram_row r = {.trial_id = trial,
                              .component = "load",
                              .name = (char *)(uintptr_t)name,
                              .unit = "ns",
                              .sigfigs = hdr_sigfigs(h),
                              .count = hdr_count(h)};
    assert_int_equal(hdr_encode(h, &r.encoding, &r.len), 0);
    assert_int_equal(store_histogram_put(st, session, &r), 0);
    free(r.encoding);
}

static void test_histograms(void **state)
{
    struct fx *f = *state;
    struct histogram_row *rows = NULL;
    size_t n = 0;
    struct hdr *a = sample_hdr(1000), *b = sample_hdr(10), *back = NULL;
    add_session(f->st, "s1", 1, "running");
    int64_t t1 = add_trial(f->st, "s1", 1, "a");
    int64_t t2 = add_trial(f->st, "s1", 2, "b");
    put_hist(f->st, "s1", t1, "latency", b);
    put_hist(f->st, "s1", t1, "latency", a); /* replaces */
    put_hist(f->st, "s1", t2, "latency", b);
    struct histogram_row bad = {.component = "load", .name = "x"};
    assert_int_equal(store_histogram_put(f->st, "s1", &bad), -EINVAL); /* no encoding */

    assert_int_equal(store_histogram_list(f->st, "s1", t1, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].name, "latency");
    assert_string_equal(rows[0].unit, "ns");
    assert_int_equal(rows[0].count, 1000);
    assert_int_equal(rows[0].sigfigs, 3);
    assert_int_equal(rows[0].trial_id, t1);
    assert_int_equal(hdr_decode(rows[0].encoding, rows[0].len, &back), 0);
    assert_int_equal(hdr_count(back), 1000);
    assert_int_equal(hdr_max(back), 1000000);
    assert_int_equal(hdr_percentile(back, 50), hdr_percentile(a, 50));
    histogram_rows_free(rows, n);
    assert_int_equal(store_histogram_list(f->st, "s1", -1, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows[1].count, 10);
    histogram_rows_free(rows, n);
    hdr_free(back);
    hdr_free(a);
    hdr_free(b);
}

/* A database at schema version 1 (before histograms) migrates in place, keeping its data. */
static void test_migrate_v1_to_v2(void **state)
{
    struct fx *f = *state;
    struct metric_row *m = NULL;
    struct histogram_row *rows = NULL;
    size_t n = 0;
    add_session(f->st, "old", 1, "done");
    put_metric(f->st, "old", 0, "tps", NULL, 7.0);
    store_close(f->st);
    f->st = NULL;
    char *path = path_join(f->dir, "sonde.db");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DROP TABLE histograms", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    set_version(f->dir, 1);
    assert_int_equal(store_open(f->dir, &f->st), 0);
    assert_int_equal(store_metric_list(f->st, "old", -1, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_true(m[0].value == 7.0);
    metric_rows_free(m, n);
    struct hdr *h = sample_hdr(100);
    put_hist(f->st, "old", 0, "latency", h);
    hdr_free(h);
    assert_int_equal(store_histogram_list(f->st, "old", 0, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].count, 100);
    histogram_rows_free(rows, n);
    /* the version is now current */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(s, 0), 2);
    sqlite3_finalize(s);
    sqlite3_close(db);
    free(path);
}

static void test_not_a_database(void **state)
{
    struct fx *f = *state;
    struct store *st = NULL;
    char *ws = xasprintf("%s/bad", f->dir);
    char *db = path_join(ws, "sonde.db");
    const char junk[] = "this is not an SQLite database, just some text padding it out.....";
    assert_int_equal(mkdir_p(ws, 0755), 0);
    assert_int_equal(write_file_atomic(db, junk, sizeof(junk)), 0);
    assert_true(store_open(ws, &st) < 0);
    assert_null(st);
    free(db);
    free(ws);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_configures_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_creates_workspace, setup, teardown),
        cmocka_unit_test(test_open_unwritable_fails),
        cmocka_unit_test_setup_teardown(test_session_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_latest_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_list_and_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provenance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_components, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_reader, setup, teardown),
        cmocka_unit_test(test_effective_state),
        cmocka_unit_test_setup_teardown(test_crash_safety, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histograms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1_to_v2, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
