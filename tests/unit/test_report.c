/* test_report.c — reports rendered from a real store in a temp workspace. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "report/report.h"
#include "store/store.h"
#include "util/hdr.h"
#include "util/util.h"

#define SID "20260101-120000-abcd"
#define T0  ((int64_t)1767268800 * 1000000000) /* 2026-01-01T12:00:00Z */
#define SEC ((int64_t)1000000000)

struct fx {
    char dir[64];
    struct store *st;
};

static int64_t add_trial(struct store *st, int64_t idx, const char *label, const char *matrix,
                         const char *state, const char *reason)
{
    struct trial_row t = {.session = SID,
                          .idx = idx,
                          .label = (char *)(uintptr_t)label,
                          .matrix = (char *)(uintptr_t)matrix,
                          .state = "running",
                          .started = T0 + idx * 10 * SEC};
    int64_t id = 0;
    assert_int_equal(store_trial_create(st, &t, &id), 0);
    assert_int_equal(store_trial_finish(st, id, state, reason, t.started + 5 * SEC), 0);
    return id;
}

static void add_component(struct store *st, int64_t trial, const char *name, const char *role,
                          int64_t code, int64_t sig)
{
    struct component_row c = {.session = SID,
                              .trial_id = trial,
                              .name = (char *)(uintptr_t)name,
                              .role = (char *)(uintptr_t)role,
                              .driver = "exec",
                              .command = "[\"/bin/x\",\"-n\"]",
                              .pid = 4321,
                              .exit_code = code,
                              .exit_signal = sig,
                              .state = code == 0 ? "done" : "failed"};
    int64_t id = 0;
    assert_int_equal(store_component_create(st, &c, &id), 0);
}

static void add_metric(struct store *st, int64_t trial, const char *comp, const char *name,
                       const char *unit, const char *labels, double v)
{
    struct metric_row m = {.trial_id = trial,
                           .component = (char *)(uintptr_t)comp,
                           .name = (char *)(uintptr_t)name,
                           .unit = (char *)(uintptr_t)unit,
                           .labels = (char *)(uintptr_t)labels,
                           .value = v};
    assert_int_equal(store_metric_put(st, SID, &m), 0);
}

/* A failed two-trial session with provenance, events, components, metrics, series. */
static void build_session(struct store *st)
{
    struct session_row s = {.id = SID,
                            .name = "kv-bench",
                            .recipe_path = "/r/kv.yaml",
                            .backend = "local",
                            .state = "running",
                            .host = "elsewhere.invalid",
                            .pid = 1,
                            .created = T0,
                            .started = T0};
    assert_int_equal(store_session_create(st, &s), 0);
    assert_int_equal(store_session_set_state(st, SID, "failed", "trial 2 failed"), 0);
    assert_int_equal(store_provenance_put(st, SID, "sonde.version", "0.1.0"), 0);
    assert_int_equal(store_provenance_put(st, SID, "cpu.model", "Xeon | Gold"), 0);
    int64_t t1 = add_trial(st, 1, "clients=4", "{\"clients\":\"4\"}", "done", NULL);
    int64_t t2 =
        add_trial(st, 2, "clients=8", "{\"clients\":\"8\"}", "failed", "client load exited with 3");
    assert_int_equal(store_event_add(st, SID, t1, "warning", "rate not reached"), 0);
    assert_int_equal(store_event_add(st, SID, 0, "info", "quiet info event"), 0);
    add_component(st, 0, "db", "service", -1, 15);
    add_component(st, t1, "load", "client", 0, 0);
    add_component(st, t2, "load", "client", 3, 0);
    add_component(st, t1, "node", "monitor", 0, 0);
    add_metric(st, t1, "load", "tps", "ops/s", NULL, 123.5);
    add_metric(st, t1, "load", "p99", "ms", "{\"op\":\"read,write\"}", 2.5);
    add_metric(st, t2, "load", "tps", "ops/s", NULL, 0.1);
    add_metric(st, t1, "node", "cpu_avg", "%", NULL, 20);
    add_metric(st, 0, "db", "startup", "s", NULL, 1.25);
    int64_t sid = 0;
    assert_int_equal(store_series_get_or_create(st, SID, t1, "node", "cpu", "%", NULL, &sid), 0);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(store_series_append(st, sid, T0 + 10 * SEC + i * SEC, 10.0 * i), 0);
}

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sonde-report-XXXXXX");
    if (!mkdtemp(f->dir) || store_open(f->dir, &f->st) < 0)
        return -1;
    build_session(f->st);
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

/* Renders into memory; returns the text (caller frees) or NULL with *ret set. */
static char *render(struct store *st, const char *id, enum report_format fmt, int *ret)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_non_null(m);
    *ret =
        fmt == (enum report_format) - 1 ? report_summary(st, id, m) : report_render(st, id, fmt, m);
    fclose(m);
    /* a copy: gcc -O3 takes what open_memstream wrote into buf for a pointer
     * into buf itself (a -Wdangling-pointer false positive at the callers) */
    char *out = xstrdup(buf ? buf : "");
    free(buf);
    return out;
}

static char *render_ok(struct store *st, enum report_format fmt)
{
    int ret = -1;
    char *s = render(st, SID, fmt, &ret);
    assert_int_equal(ret, 0);
    return s;
}

static json_t *find_by_name(json_t *arr, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!strcmp(json_string_value(json_object_get(v, "name")), name))
            return v;
    }
    fail_msg("no entry named %s", name);
    return NULL;
}

static void test_format_parse(void **state)
{
    enum report_format f = REPORT_TEXT;
    (void)state;
    assert_int_equal(report_format_parse("json", &f), 0);
    assert_int_equal(f, REPORT_JSON);
    assert_int_equal(report_format_parse("csv", &f), 0);
    assert_int_equal(f, REPORT_CSV);
    assert_int_equal(report_format_parse("markdown", &f), 0);
    assert_int_equal(f, REPORT_MD);
    assert_int_equal(report_format_parse("md", &f), 0);
    assert_int_equal(report_format_parse("text", &f), 0);
    assert_int_equal(f, REPORT_TEXT);
    assert_int_equal(report_format_parse("html5", &f), -EINVAL);
    assert_int_equal(report_format_parse(NULL, &f), -EINVAL);
    assert_int_equal(f, REPORT_TEXT);
}

static void test_unknown_session(void **state)
{
    struct fx *f = *state;
    int ret = 0;
    free(render(f->st, "nope", REPORT_JSON, &ret));
    assert_int_equal(ret, -ENOENT);
    free(render(f->st, "nope", (enum report_format) - 1, &ret));
    assert_int_equal(ret, -ENOENT);
}

static void check_json_trial1(json_t *t1)
{
    assert_int_equal(json_integer_value(json_object_get(t1, "index")), 1);
    assert_string_equal(json_string_value(json_object_get(t1, "label")), "clients=4");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(t1, "matrix"), "clients")), "4");
    assert_string_equal(json_string_value(json_object_get(t1, "state")), "done");
    assert_true(json_is_null(json_object_get(t1, "reason")));
    json_t *tps = find_by_name(json_object_get(t1, "metrics"), "tps");
    assert_true(json_real_value(json_object_get(tps, "value")) == 123.5);
    assert_string_equal(json_string_value(json_object_get(tps, "unit")), "ops/s");
    assert_string_equal(json_string_value(json_object_get(tps, "component")), "load");
    json_t *p99 = find_by_name(json_object_get(t1, "metrics"), "p99");
    assert_string_equal(json_string_value(json_object_get(json_object_get(p99, "labels"), "op")),
                        "read,write");
    json_t *load = find_by_name(json_object_get(t1, "components"), "load");
    assert_string_equal(json_string_value(json_object_get(load, "exit")), "exit 0");
    assert_string_equal(json_string_value(json_array_get(json_object_get(load, "command"), 1)),
                        "-n");
    json_t *cpu = find_by_name(json_object_get(t1, "series"), "cpu");
    json_t *pts = json_object_get(cpu, "points");
    assert_int_equal(json_array_size(pts), 3);
    assert_true(json_real_value(json_array_get(json_array_get(pts, 0), 0)) == 1.0);
    assert_true(json_real_value(json_array_get(json_array_get(pts, 2), 1)) == 30.0);
    json_t *sum = json_object_get(cpu, "summary");
    assert_int_equal(json_integer_value(json_object_get(sum, "n")), 3);
    assert_true(json_real_value(json_object_get(sum, "mean")) == 20.0);
    assert_true(json_real_value(json_object_get(sum, "max")) == 30.0);
}

static void test_json(void **state)
{
    struct fx *f = *state;
    char *s = render_ok(f->st, REPORT_JSON);
    json_error_t err;
    json_t *root = json_loads(s, 0, &err);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "schema")), "sonde.report/1");
    json_t *sess = json_object_get(root, "session");
    assert_string_equal(json_string_value(json_object_get(sess, "id")), SID);
    assert_string_equal(json_string_value(json_object_get(sess, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(sess, "reason")), "trial 2 failed");
    assert_string_equal(json_string_value(json_object_get(sess, "started")),
                        "2026-01-01T12:00:00.000Z");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(root, "provenance"), "sonde.version")),
        "0.1.0");
    assert_int_equal(json_array_size(json_object_get(root, "events")), 2);
    json_t *db = find_by_name(json_object_get(root, "components"), "db");
    assert_string_equal(json_string_value(json_object_get(db, "exit")), "signal 15");
    assert_true(json_is_null(json_object_get(db, "exit_code")));
    find_by_name(json_object_get(root, "metrics"), "startup");
    json_t *trials = json_object_get(root, "trials");
    assert_int_equal(json_array_size(trials), 2);
    check_json_trial1(json_array_get(trials, 0));
    json_t *t2 = json_array_get(trials, 1);
    assert_string_equal(json_string_value(json_object_get(t2, "reason")),
                        "client load exited with 3");
    json_t *tps2 = find_by_name(json_object_get(t2, "metrics"), "tps");
    assert_true(json_real_value(json_object_get(tps2, "value")) == 0.1); /* full precision */
    assert_non_null(strstr(s, "\n  \"schema\""));                        /* 2-space indent */
    json_decref(root);
    free(s);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_csv(void **state)
{
    struct fx *f = *state;
    char *s = render_ok(f->st, REPORT_CSV);
    assert_int_equal(count_lines(s), 1 + 5);
    assert_true(str_startswith(s, "session,trial,label,component,name,unit,labels,value\r\n"));
    assert_non_null(strstr(s, SID ",1,clients=4,load,tps,ops/s,,123.5\r\n"));
    assert_non_null(
        strstr(s, SID ",1,clients=4,load,p99,ms,\"{\"\"op\"\":\"\"read,write\"\"}\",2.5\r\n"));
    assert_non_null(strstr(s, SID ",2,clients=8,load,tps,ops/s,,0.1\r\n"));
    assert_non_null(strstr(s, SID ",,,db,startup,s,,1.25\r\n"));
    free(s);
}

static void test_text(void **state)
{
    struct fx *f = *state;
    char *s = render_ok(f->st, REPORT_TEXT);
    assert_true(str_startswith(s, "Session " SID "\n"));
    assert_non_null(strstr(s, "client load exited with 3"));
    assert_non_null(strstr(s, "  state     failed\n"));
    assert_non_null(strstr(s, "\n  duration    5s\n")); /* trial 1: 10s..15s */
    assert_null(strstr(s, " \n"));                      /* no trailing blanks */
    assert_non_null(strstr(s, "Provenance"));
    assert_non_null(strstr(s, "cpu.model      Xeon | Gold"));
    assert_non_null(strstr(s, "rate not reached"));
    assert_null(strstr(s, "quiet info event"));
    assert_non_null(strstr(s, "signal 15"));
    assert_non_null(strstr(s, "exit 3"));
    assert_non_null(strstr(s, "op=read,write"));
    /* series summary: component, name, unit, labels, n, min, mean, max */
    assert_non_null(strstr(s, "    node       cpu     %             3  10   20    30\n"));
    /* the metric table is aligned: values start in the same column */
    const char *a = strstr(s, "    load       tps");
    const char *b = strstr(s, "    load       p99");
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(strstr(a, "123.5") - a, strstr(b, "2.5") - b);
    free(s);
}

static void test_markdown(void **state)
{
    struct fx *f = *state;
    char *s = render_ok(f->st, REPORT_MD);
    assert_true(str_startswith(s, "# sonde report: " SID "\n"));
    assert_non_null(strstr(s, "\n## Trial 2: clients=8\n"));
    assert_non_null(strstr(s, "### Metrics"));
    assert_non_null(strstr(s, "| --- | --- |"));
    assert_non_null(strstr(s, "| cpu.model | Xeon \\| Gold |"));
    assert_non_null(strstr(s, "| reason | client load exited with 3 |"));
    free(s);
}

static void test_summary(void **state)
{
    struct fx *f = *state;
    char *s = render(f->st, SID, (enum report_format) - 1, &(int){0});
    assert_non_null(s);
    assert_true(str_startswith(s, "TRIAL      STATE   tps          p99{op=read,write}  REASON\n"));
    assert_non_null(strstr(s, "\nclients=4  done    123.5 ops/s  2.5 ms\n"));
    assert_non_null(strstr(s, "\nclients=8  failed  0.1 ops/s    -                   client load "
                              "exited with 3\n"));
    assert_null(strstr(s, "cpu_avg")); /* a monitor metric */
    assert_null(strstr(s, "startup")); /* a service metric */
    assert_true(str_endswith(s, "\nsession " SID " failed: trial 2 failed\n"));
    free(s);
}

/* More client metrics than fit across: a row per metric, a column per trial,
 * in the summary and in the text report. */
static void test_summary_transposed(void **state)
{
    struct fx *f = *state;
    const int64_t t1 = 1, t2 = 2; /* the fixture's trials, as the store numbers them */
    static const char *const names[] = {"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        add_metric(f->st, t1, "load", names[i], "ms", NULL, (double)i);
        add_metric(f->st, t2, "load", names[i], "ms", NULL, 10.0 + (double)i);
    }
    char *s = render(f->st, SID, (enum report_format) - 1, &(int){0});
    assert_non_null(s);
    assert_true(str_startswith(s, "TRIAL               clients=4    clients=8\n"
                                  "STATE               done         failed\n"
                                  "tps                 123.5 ops/s  0.1 ops/s\n"
                                  "p99{op=read,write}  2.5 ms       -\n"
                                  "m1                  0 ms         10 ms\n"));
    assert_non_null(strstr(s, "\nm9                  8 ms         18 ms\n"
                              "REASON                           client load exited with 3\n"));
    free(s);
    s = render_ok(f->st, REPORT_TEXT);
    assert_non_null(
        strstr(s, "\nTrials compared (client metrics)\n  TRIAL               clients=4"));
    free(s);
}

/* A running session whose sonde died shows as interrupted. */
static void test_interrupted(void **state)
{
    struct fx *f = *state;
    char host[256];
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    struct session_row s = {
        .id = "dead-1", .name = "x", .state = "running", .host = host, .pid = pid};
    assert_int_equal(store_session_create(f->st, &s), 0);
    int ret = 0;
    char *out = render(f->st, "dead-1", REPORT_JSON, &ret);
    assert_int_equal(ret, 0);
    json_t *root = json_loads(out, 0, NULL);
    json_t *sess = json_object_get(root, "session");
    assert_string_equal(json_string_value(json_object_get(sess, "state")), "interrupted");
    assert_string_equal(json_string_value(json_object_get(sess, "recorded_state")), "running");
    assert_int_equal(json_array_size(json_object_get(root, "trials")), 0);
    json_decref(root);
    free(out);
    out = render(f->st, "dead-1", (enum report_format) - 1, &ret);
    assert_int_equal(ret, 0);
    assert_string_equal(out, "no trials\nsession dead-1 interrupted\n");
    free(out);
}

static void add_hist(struct store *st, int64_t trial, const char *name, const char *unit, int64_t n,
                     int64_t step)
{
    struct hdr *h = NULL;
    assert_int_equal(hdr_init(1, 3600 * SEC, 3, &h), 0);
    for (int64_t i = 1; i <= n; i++)
        assert_int_equal(hdr_record(h, i * step), 0);
    struct histogram_row r = {.trial_id = trial,
                              .component = "load",
                              .name = (char *)(uintptr_t)name,
                              .unit = (char *)(uintptr_t)unit,
                              .sigfigs = 3,
                              .count = hdr_count(h)};
    assert_int_equal(hdr_encode(h, &r.encoding, &r.len), 0);
    assert_int_equal(store_histogram_put(st, SID, &r), 0);
    free(r.encoding);
    hdr_free(h);
}

static double pct(json_t *hist, const char *key)
{
    json_t *v = json_object_get(json_object_get(hist, "percentiles"), key);
    assert_non_null(v);
    return json_real_value(v);
}

/* Histograms: decoded, ns shown in ms, percentiles only where enough samples exist. */
static void test_histograms(void **state)
{
    struct fx *f = *state;
    add_hist(f->st, 1, "latency", "ns", 10000, 1000); /* 1 us .. 10 ms */
    add_hist(f->st, 1, "small", "B", 5, 1);
    unsigned char junk[] = "not a histogram";
    struct histogram_row bad = {.trial_id = 1,
                                .component = "load",
                                .name = "broken",
                                .unit = "ns",
                                .encoding = junk,
                                .len = sizeof(junk),
                                .count = 7};
    assert_int_equal(store_histogram_put(f->st, SID, &bad), 0);
    char *s = render_ok(f->st, REPORT_JSON);
    json_t *root = json_loads(s, 0, NULL);
    assert_non_null(root);
    json_t *t1 = json_array_get(json_object_get(root, "trials"), 0);
    json_t *lat = find_by_name(json_object_get(t1, "histograms"), "latency");
    assert_string_equal(json_string_value(json_object_get(lat, "unit")), "ms");
    assert_int_equal(json_integer_value(json_object_get(lat, "count")), 10000);
    assert_true(json_real_value(json_object_get(lat, "min")) == 0.001);
    assert_true(json_real_value(json_object_get(lat, "max")) == 10.0);
    assert_true(fabs(json_real_value(json_object_get(lat, "mean")) - 5.0005) < 1e-9);
    assert_true(fabs(pct(lat, "50") - 5.0) <= 0.005);
    assert_true(fabs(pct(lat, "99") - 9.9) <= 0.01);
    assert_true(fabs(pct(lat, "99.9") - 9.99) <= 0.01);
    json_t *small = find_by_name(json_object_get(t1, "histograms"), "small");
    assert_string_equal(json_string_value(json_object_get(small, "unit")), "B");
    assert_int_equal(json_object_size(json_object_get(small, "percentiles")), 0);
    assert_true(json_real_value(json_object_get(small, "max")) == 5.0);
    json_t *broken = find_by_name(json_object_get(t1, "histograms"), "broken");
    assert_string_equal(json_string_value(json_object_get(broken, "error")),
                        "malformed histogram encoding");
    assert_int_equal(json_integer_value(json_object_get(broken, "count")), 0);
    assert_true(json_is_null(json_object_get(broken, "max")));
    json_t *t2 = json_array_get(json_object_get(root, "trials"), 1);
    assert_int_equal(json_array_size(json_object_get(t2, "histograms")), 0);
    assert_int_equal(json_array_size(json_object_get(root, "histograms")), 0);
    json_decref(root);
    free(s);
    s = render_ok(f->st, REPORT_TEXT);
    assert_non_null(strstr(s, "Histograms"));
    assert_non_null(strstr(s, "P99.9"));
    assert_non_null(strstr(s, "latency    ms"));
    assert_non_null(strstr(s, "small      B"));
    assert_non_null(strstr(s, "malformed"));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_parse),
        cmocka_unit_test_setup_teardown(test_unknown_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_markdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary_transposed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histograms, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
