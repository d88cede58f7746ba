/* cmd_session.c — `sonde status|stop|list` and `sonde service|client|monitor ps|check`. */
#include "cli/cli.h"

#include "backends/proc.h"
#include "core/probe.h"
#include "util/util.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help_status[] = "usage: sonde status [SESSION] [--json]\n";
static const char help_stop[] = "usage: sonde stop SESSION [--timeout SECONDS]\n";
static const char help_list[] = "usage: sonde list [--json]\n";
static const char help_comp[] = "usage: sonde service ps|check [SESSION] [--json]\n"
                                "       sonde client ps|check [SESSION] [--json]\n"
                                "       sonde monitor ps [SESSION] [--json]\n";

/* Parses only common options; returns the index of the first operand or -1. */
static int parse_common(struct cli *cli, int argc, char **argv, const char *help)
{
    static const struct option opts[] = {CLI_COMMON_OPTS, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1)
        if (cli_common_opt(cli, opt, optarg, help) <= 0)
            return -1;
    return optind;
}

static bool is_final(const char *state)
{
    return !strcmp(state, "done") || !strcmp(state, "failed") || !strcmp(state, "cancelled");
}

static char *fmt_time(int64_t t)
{
    return t ? iso8601(t) : xstrdup("-");
}

static double duration_s(const struct session_row *r)
{
    if (!r->started)
        return 0;
    int64_t end = r->ended ? r->ended : wall_ns();
    return (double)(end - r->started) / 1e9;
}

static const char *exit_text(const struct component_row *c, char *buf, size_t n)
{
    if (c->exit_signal)
        snprintf(buf, n, "signal %lld", (long long)c->exit_signal);
    else if (c->exit_code >= 0)
        snprintf(buf, n, "exit %lld", (long long)c->exit_code);
    else
        snprintf(buf, n, "-");
    return buf;
}

static bool group_alive(const struct component_row *c)
{
    return c->pid > 0 && !strcmp(c->state, "running") && kill(-(pid_t)c->pid, 0) == 0;
}

/* The session's components, with trial_id replaced by the trial's number (1, 2, ...). */
static int load_components(struct store *st, const char *session, struct component_row **c,
                           size_t *n)
{
    struct trial_row *t = NULL;
    size_t nt = 0;
    int r = store_component_list(st, session, -1, c, n);
    if (r < 0 || store_trial_list(st, session, &t, &nt) < 0)
        return r;
    for (size_t i = 0; i < *n; i++)
        for (size_t k = 0; k < nt; k++)
            if (t[k].id == (*c)[i].trial_id)
                (*c)[i].trial_id = t[k].idx;
    trial_rows_free(t, nt);
    return 0;
}

static json_t *comp_json(const struct component_row *c)
{
    char ex[64];
    return json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s?,s:b}", "name", c->name, "role", c->role,
                     "driver", c->driver, "trial", (json_int_t)c->trial_id, "pid",
                     (json_int_t)c->pid, "state", c->state, "host", c->host ? c->host : "", "exit",
                     exit_text(c, ex, sizeof(ex)), "reason", c->reason, "alive", group_alive(c));
}

static void print_comp_table(struct component_row *c, size_t n, bool json, const char *role)
{
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("%-6s %-16s %-8s %-10s %-8s %-9s %-22s %s\n", "TRIAL", "NAME", "ROLE", "DRIVER",
               "PID", "STATE", "HOST", "EXIT");
    for (size_t i = 0; i < n; i++) {
        if (role && strcmp(c[i].role, role))
            continue;
        char ex[64];
        if (arr)
            json_array_append_new(arr, comp_json(&c[i]));
        else
            printf("%-6lld %-16s %-8s %-10s %-8lld %-9s %-22s %s%s%s\n", (long long)c[i].trial_id,
                   c[i].name, c[i].role, c[i].driver, (long long)c[i].pid,
                   group_alive(&c[i]) ? "running" : c[i].state, c[i].host ? c[i].host : "-",
                   exit_text(&c[i], ex, sizeof(ex)), c[i].reason ? "  " : "",
                   c[i].reason ? c[i].reason : "");
    }
    if (arr) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(arr);
    }
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
    int i = parse_common(cli, argc, argv, help_status);
    if (i < 0 || argc - i > 1)
        return i < 0 ? EXIT_USAGE : cli_usage(help_status);
    struct store *st = NULL;
    if (cli_open_store(cli, &st) < 0)
        return 1;
    struct session_row s = {0};
    int rc = 1;
    if (cli_find_session(st, i < argc ? argv[i] : NULL, &s) < 0)
        goto out;
    struct component_row *c = NULL;
    size_t n = 0;
    load_components(st, s.id, &c, &n);
    const char *state = session_effective_state(&s);
    if (cli->json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s?,s:s,s:I,s:f}", "id", s.id, "name", s.name, "state",
                              state, "reason", s.reason, "dir", s.dir, "pid", (json_int_t)s.pid,
                              "elapsed_s", duration_s(&s));
        json_t *arr = json_array();
        for (size_t k = 0; k < n; k++)
            json_array_append_new(arr, comp_json(&c[k]));
        json_object_set_new(o, "components", arr);
        json_dumpf(o, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(o);
    } else {
        char *started = fmt_time(s.started);
        printf("session:   %s (%s)\nstate:     %s%s%s\nstarted:   %s (%.1fs)\ndirectory: %s\n\n",
               s.id, s.name, state, s.reason ? ": " : "", s.reason ? s.reason : "", started,
               duration_s(&s), s.dir);
        free(started);
        print_comp_table(c, n, false, NULL);
    }
    component_rows_free(c, n);
    rc = 0;
out:
    session_row_free(&s);
    store_close(st);
    return rc;
}

/* Waits until the session reaches a final state; true when it did. */
static bool wait_final(struct store *st, const char *id, int64_t timeout_ns)
{
    int64_t deadline = mono_ns() + timeout_ns;
    while (mono_ns() < deadline) {
        struct session_row s = {0};
        bool fin = store_session_get(st, id, &s) == 0 &&
                   (is_final(s.state) || !strcmp(session_effective_state(&s), "interrupted"));
        session_row_free(&s);
        if (fin)
            return true;
        sleep_ns(100 * 1000000LL);
    }
    return false;
}

/* The sonde process that ran the session is gone: stop what it left, mark it. */
static int stop_orphaned(struct store *st, struct session_row *s)
{
    /* Only processes that carry the session's tag: stored pids may have been reused. */
    char *tag = xasprintf("SONDE_SESSION_ID=%s", s->id);
    size_t n = proc_kill_tagged(tag, SIGKILL);
    free(tag);
    if (n)
        printf("session %s: killed %zu leftover process(es)\n", s->id, n);
    char *why = xasprintf("interrupted: sonde (pid %lld) is gone", (long long)s->pid);
    int r = store_session_set_state(st, s->id, "failed", why);
    printf("session %s: %s; marked failed\n", s->id, why);
    free(why);
    return r < 0 ? 1 : 0;
}

/* The sonde process running the session: the holder of its lock (never a
 * recycled pid); the recorded pid only for sessions without a lock file. */
static int64_t stop_target(const struct session_row *s)
{
    int64_t holder = session_lock_holder(s);
    return holder > 0 ? holder : s->pid;
}

int cmd_stop(struct cli *cli, int argc, char **argv)
{
    int i = parse_common(cli, argc, argv, help_stop);
    if (i < 0 || argc - i != 1)
        return i < 0 ? EXIT_USAGE : cli_usage(help_stop);
    struct store *st = NULL;
    if (cli_open_store(cli, &st) < 0)
        return 1;
    struct session_row s = {0};
    int rc = 1;
    if (cli_find_session(st, argv[i], &s) < 0)
        goto out;
    const char *state = session_effective_state(&s);
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    if (is_final(state)) {
        printf("session %s is already %s\n", s.id, state);
        rc = 0;
    } else if (!strcmp(state, "interrupted")) {
        rc = stop_orphaned(st, &s);
    } else if (strcmp(s.host, host)) {
        cli_error("session %s runs on host %s; run `sonde stop` there", s.id, s.host);
    } else if (kill((pid_t)stop_target(&s), SIGTERM) < 0) {
        cli_error("cannot signal sonde (pid %lld): %s", (long long)stop_target(&s),
                  strerror(errno));
    } else if (!wait_final(st, s.id, 120 * 1000000000LL)) {
        cli_error("session %s did not stop within 120 s", s.id);
    } else {
        printf("session %s stopped\n", s.id);
        rc = 0;
    }
out:
    session_row_free(&s);
    store_close(st);
    return rc;
}

int cmd_list(struct cli *cli, int argc, char **argv)
{
    int i = parse_common(cli, argc, argv, help_list);
    if (i < 0 || i != argc)
        return i < 0 ? EXIT_USAGE : cli_usage(help_list);
    struct store *st = NULL;
    if (cli_open_store(cli, &st) < 0)
        return 1;
    struct session_row *rows = NULL;
    size_t n = 0;
    if (store_session_list(st, &rows, &n) < 0) {
        cli_error("cannot list sessions: %s", store_errmsg(st));
        store_close(st);
        return 1;
    }
    json_t *arr = cli->json ? json_array() : NULL;
    if (!arr)
        printf("%-22s %-11s %-24s %-24s %9s  %s\n", "SESSION", "STATE", "NAME", "STARTED",
               "DURATION", "REASON");
    for (size_t k = 0; k < n; k++) {
        struct session_row *s = &rows[k];
        char *started = fmt_time(s->started);
        const char *state = session_effective_state(s);
        if (arr)
            json_array_append_new(
                arr, json_pack("{s:s,s:s,s:s,s:s?,s:s,s:s,s:f,s:s}", "id", s->id, "name", s->name,
                               "state", state, "reason", s->reason, "started", started, "backend",
                               s->backend, "duration_s", duration_s(s), "dir", s->dir));
        else
            printf("%-22s %-11s %-24s %-24s %8.1fs  %s\n", s->id, state, s->name, started,
                   duration_s(s), s->reason ? s->reason : "");
        free(started);
    }
    if (arr) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(arr);
    }
    session_rows_free(rows, n);
    store_close(st);
    return 0;
}

/* A service is healthy when its group is alive and its port accepts connections. */
static bool check_one(const struct component_row *c, char *why, size_t n)
{
    if (!strcmp(c->role, "client")) {
        bool ok = !strcmp(c->state, "done") && c->exit_code == 0;
        snprintf(why, n, "%s",
                 ok                             ? "finished with exit 0"
                 : !strcmp(c->state, "running") ? "running"
                 : c->reason                    ? c->reason
                                                : c->state);
        return ok || !strcmp(c->state, "running");
    }
    if (!group_alive(c)) {
        snprintf(why, n, "not running (%s)", c->state);
        return false;
    }
    const char *colon = c->host ? strrchr(c->host, ':') : NULL;
    if (!colon) {
        snprintf(why, n, "process group %lld alive", (long long)c->pid);
        return true;
    }
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - c->host), c->host);
    struct probe_spec p = {.kind = PROBE_TCP, .host = host, .port = (char *)colon + 1};
    char detail[256] = "";
    int r = probe_once(&p, NULL, NULL, 2000000000LL, detail, sizeof(detail));
    snprintf(why, n, "%s", r == 1 ? "accepting connections" : detail);
    return r == 1;
}

static int comp_check(struct component_row *c, size_t n, const char *role, int64_t trial)
{
    int bad = 0, seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(c[i].role, role) || c[i].trial_id != trial)
            continue;
        char why[512];
        bool ok = check_one(&c[i], why, sizeof(why));
        printf("%-16s %-4s %s\n", c[i].name, ok ? "ok" : "FAIL", why);
        bad += !ok;
        seen++;
    }
    if (!seen)
        printf("no %s in this session\n", role);
    return bad ? 1 : 0;
}

int cmd_components(struct cli *cli, const char *role, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(help_comp);
    const char *sub = argv[1];
    bool check = !strcmp(sub, "check");
    if ((!check && strcmp(sub, "ps")) || (check && !strcmp(role, "monitor"))) {
        cli_error("unknown %s command '%s' (%s)", role, sub,
                  strcmp(role, "monitor") ? "ps, check" : "ps");
        return EXIT_USAGE;
    }
    int i = parse_common(cli, argc - 1, argv + 1, help_comp);
    if (i < 0 || argc - 1 - i > 1)
        return i < 0 ? EXIT_USAGE : cli_usage(help_comp);
    struct store *st = NULL;
    if (cli_open_store(cli, &st) < 0)
        return 1;
    struct session_row s = {0};
    int rc = 1;
    if (cli_find_session(st, i < argc - 1 ? argv[1 + i] : NULL, &s) < 0)
        goto out;
    struct component_row *c = NULL;
    size_t n = 0;
    load_components(st, s.id, &c, &n);
    int64_t last = 0;
    for (size_t k = 0; k < n; k++)
        last = c[k].trial_id > last ? c[k].trial_id : last;
    if (check)
        rc = comp_check(c, n, role, last);
    else {
        print_comp_table(c, n, cli->json, role);
        rc = 0;
    }
    component_rows_free(c, n);
out:
    session_row_free(&s);
    store_close(st);
    return rc;
}
