/* cmd_monitor.c — `sonde monitor start|stop|ps`: monitors without a benchmark.
 *
 * `start` writes a benchmark recipe that holds only monitors into
 * <workspace>/monitors/NAME.yaml and runs it with `sonde run`, detached (its own
 * session, output to NAME.log beside the recipe). A trial without clients runs
 * until its timeout or until sonde is signalled, so `stop` is `sonde stop`.
 * A session is a monitor session when its recipe lies in <workspace>/monitors/. */
#include "cli/cli.h"

#include "util/units.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_WAIT_NS     (10 * 1000000000LL) /* for the started session to be running */
#define NO_DURATION       "365d" /* without --duration: until stopped (a timeout is required) */
#define STOP_EXIT_WAIT_NS (10 * 1000000000LL) /* for its sonde to exit once the session ended */
#define MAX_SCRAPES       32
#define NAME_SUFFIX_MAX   100

static const char help_monitor[] =
    "usage: sonde monitor start [--interval 1s] [--node] [--process] [--gpu] [--scrape URL]...\n"
    "                           [--exporter HOST:PORT] [--duration D] [--name NAME]\n"
    "       sonde monitor ps [--all] [--json]\n"
    "       sonde monitor ps SESSION [--json]\n"
    "       sonde monitor stop SESSION|NAME|--all\n"
    "\n"
    "Watches this machine without a benchmark (e.g. beside your own job).\n"
    "  start   writes <workspace>/monitors/NAME.yaml (only monitors: node and process\n"
    "          unless --node/--process/--gpu/--scrape choose), runs it in the background\n"
    "          and prints the session id (-q: only the id). Without --duration it runs\n"
    "          until `sonde monitor stop` (at most " NO_DURATION ").\n"
    "  ps      running monitor sessions (--all: ended ones too); with a SESSION: the\n"
    "          monitors of that session\n"
    "  stop    stops a monitor session (by id, id prefix or name; --all: every one)\n"
    "See the points with `sonde metrics SESSION [--follow]`.\n";

/* <workspace>/monitors as an absolute path (created when create is set; the
 * workspace itself exists once the store is open); NULL after printing why. */
static char *monitors_dir(struct cli *cli, bool create)
{
    const char *ws = cli_workspace(cli);
    char *dir = path_join(ws, "monitors"), *abs = NULL;
    int r = create ? mkdir_p(dir, 0755) : 0;
    char *wabs = r == 0 ? realpath(ws, NULL) : NULL;
    if (wabs)
        abs = path_join(wabs, "monitors");
    else
        cli_error("cannot %s %s: %s", create ? "create" : "find", dir,
                  strerror(r < 0 ? -r : errno));
    free(wabs);
    free(dir);
    return abs;
}

static bool is_monitor_session(const struct session_row *s, const char *mdir)
{
    size_t n = strlen(mdir);
    return s->recipe_path && !strncmp(s->recipe_path, mdir, n) && s->recipe_path[n] == '/' &&
           !strchr(s->recipe_path + n + 1, '/');
}

static bool state_over(const char *state)
{
    return !strcmp(state, "done") || !strcmp(state, "failed") || !strcmp(state, "cancelled");
}

/* ---- start ------------------------------------------------------------------------------- */

struct start_opts {
    const char *interval, *duration, *name, *exporter;
    bool node, process, gpu;
    const char *scrape[MAX_SCRAPES];
    size_t nscrape;
};

static struct sv *scalar(const char *text)
{
    return sv_new_scalar(text, (struct sv_pos){sv_intern("monitor start"), 1, 1});
}

static void add_monitor(struct sv *mons, const char *name, const char *driver,
                        const struct start_opts *o, const char *url)
{
    struct sv *m = sv_new(SV_MAP, (struct sv_pos){sv_intern("monitor start"), 1, 1});
    sv_append(m, "driver", scalar(driver));
    sv_append(m, "interval", scalar(o->interval));
    if (url) {
        struct sv *with = sv_new(SV_MAP, m->pos);
        struct sv *u = scalar(url);
        u->quoted = true;
        sv_append(with, "url", u);
        sv_append(m, "with", with);
    }
    sv_append(mons, name, m);
}

/* The recipe's text: a benchmark with only monitors and a timeout. */
static char *recipe_text(const struct start_opts *o)
{
    struct sv_pos pos = {sv_intern("monitor start"), 1, 1};
    struct sv *doc = sv_new(SV_MAP, pos), *mons = sv_new(SV_MAP, pos);
    char host[256] = "localhost";
    gethostname(host, sizeof(host) - 1);
    char *desc = xasprintf("monitors of %s started by `sonde monitor start`", host);
    sv_append(doc, "kind", scalar("benchmark"));
    sv_append(doc, "name", scalar(o->name));
    sv_append(doc, "description", scalar(desc));
    sv_append(doc, "timeout", scalar(o->duration ? o->duration : NO_DURATION));
    bool none = !o->node && !o->process && !o->gpu && !o->nscrape;
    if (o->node || none)
        add_monitor(mons, "node", "node", o, NULL);
    if (o->process || none)
        add_monitor(mons, "process", "process", o, NULL);
    if (o->gpu)
        add_monitor(mons, "gpu", "gpu", o, NULL);
    for (size_t i = 0; i < o->nscrape; i++) {
        char key[32] = "scrape";
        if (o->nscrape > 1)
            snprintf(key, sizeof(key), "scrape%zu", i + 1);
        add_monitor(mons, key, "prometheus", o, o->scrape[i]);
    }
    sv_append(doc, "monitors", mons);
    char *yaml = sv_to_yaml(doc);
    char *now = iso8601(wall_ns());
    char *text = xasprintf("# written by `sonde monitor start` at %s\n"
                           "# (`sonde run FILE` runs it again, in the foreground)\n%s",
                           now, yaml);
    free(now);
    free(yaml);
    free(desc);
    sv_free(doc);
    return text;
}

static int check_duration_arg(const char *opt, const char *v)
{
    int64_t ns = 0;
    int r = parse_duration_ns(v, &ns);
    if (r < 0 || ns <= 0) {
        cli_error("%s: expected a duration greater than 0 like 500ms, 1s or 2h, got '%s'", opt, v);
        return -1;
    }
    return 0;
}

/* A running (or interrupted: not yet marked) session of this recipe, if any. */
static int running_of(struct store *st, const char *recipe, struct session_row *out)
{
    struct session_row *rows = NULL;
    size_t n = 0;
    int found = 0;
    if (store_session_list(st, &rows, &n) < 0)
        return -1;
    for (size_t i = n; i-- > 0 && !found;) {
        if (rows[i].recipe_path && !strcmp(rows[i].recipe_path, recipe) &&
            session_state_live(session_effective_state(&rows[i]))) {
            *out = rows[i];
            memset(&rows[i], 0, sizeof(rows[i]));
            found = 1;
        }
    }
    session_rows_free(rows, n);
    return found;
}

/* The default name: monitor-YYYYmmdd-HHMMSS (local time), made unique in dir. */
static char *default_name(const char *dir)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y%m%d-%H%M%S", &tm);
    for (int i = 1; i <= NAME_SUFFIX_MAX; i++) {
        char *name = i == 1 ? xasprintf("monitor-%s", ts) : xasprintf("monitor-%s-%d", ts, i);
        char *file = xasprintf("%s/%s.yaml", dir, name);
        bool taken = access(file, F_OK) == 0;
        free(file);
        if (!taken)
            return name;
        free(name);
    }
    return xasprintf("monitor-%s-%d", ts, (int)getpid());
}

/* Starts `sonde run RECIPE` in its own session, output appended to log; the
 * child's pid or -1. mdir: the workspace's monitors directory (absolute). */
static pid_t spawn_run(struct cli *cli, const char *mdir, const char *recipe, const char *log,
                       const char *exporter)
{
    char **argv = NULL;
    const char *slash = strrchr(mdir, '/');
    char *exe = self_exe(), *ws = slash > mdir ? xstrndup(mdir, slash - mdir) : xstrdup("/");
    strv_push(&argv, exe);
    strv_push(&argv, "--workspace");
    strv_push(&argv, ws);
    for (size_t i = 0; cli->catalog_dirs && cli->catalog_dirs[i]; i++) {
        strv_push(&argv, "--catalog");
        strv_push(&argv, cli->catalog_dirs[i]);
    }
    strv_push(&argv, "run");
    strv_push(&argv, recipe);
    if (exporter) {
        strv_push(&argv, "--exporter");
        strv_push(&argv, exporter);
    }
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0)
        cli_error("cannot write %s: %s", log, strerror(errno));
    if (out >= 0) { /* the log keeps every start of this name: mark where this one begins */
        char *now = iso8601(wall_ns());
        dprintf(out, "==> %s: sonde run %s\n", now, recipe);
        free(now);
    }
    int in = out >= 0 ? open("/dev/null", O_RDONLY | O_CLOEXEC) : -1;
    pid_t pid = out >= 0 && in >= 0 ? fork() : -1;
    if (pid == 0) {
        /* Its own session: the terminal's Ctrl-C and hangup do not reach it. */
        setsid();
        /* A clean slate: a shell may have started us with SIGINT ignored (`&`). */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int sigs[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD};
        for (size_t i = 0; i < SONDE_ARRAY_LEN(sigs); i++)
            signal(sigs[i], SIG_DFL);
        dup2(in, STDIN_FILENO);
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
        execv(exe, argv);
        dprintf(STDERR_FILENO, "sonde: cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    if (pid < 0 && out >= 0)
        cli_error("cannot start `sonde run %s`: %s", recipe, strerror(errno));
    if (out >= 0)
        close(out);
    if (in >= 0)
        close(in);
    free(exe);
    free(ws);
    strv_free(argv);
    return pid;
}

/* Why the child ended, with the last line of its log. */
static void report_early_exit(int status, const char *log)
{
    char *text = NULL, last[512] = "";
    size_t len = 0;
    if (read_file(log, 1 << 20, &text, &len) == 0)
        str_last_line(text, len, last, sizeof(last));
    free(text);
    if (WIFEXITED(status))
        cli_error("the monitor session ended at once (sonde run exited with %d)%s%s; see %s",
                  WEXITSTATUS(status), last[0] ? ": " : "", last, log);
    else
        cli_error("the monitor session ended at once (signal %d); see %s",
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0, log);
}

/* The newest session that process pid runs for recipe, into out; true when found. */
static bool find_session(struct store *st, pid_t pid, const char *recipe, struct session_row *out)
{
    struct session_row *rows = NULL;
    size_t n = 0;
    bool seen = false;
    store_session_list(st, &rows, &n);
    for (size_t i = n; i-- > 0 && !seen;) {
        if (rows[i].pid != pid || !rows[i].recipe_path || strcmp(rows[i].recipe_path, recipe))
            continue;
        session_row_free(out);
        *out = rows[i];
        memset(&rows[i], 0, sizeof(rows[i]));
        seen = true;
    }
    session_rows_free(rows, n);
    return seen;
}

/* Waits (bounded) until the child's session runs (or already ended well);
 * 0 with the session in out, -1 after printing why not. */
static int wait_session(struct store *st, pid_t pid, const char *recipe, const char *log,
                        struct session_row *out)
{
    int64_t deadline = mono_ns() + START_WAIT_NS;
    for (;;) {
        int status;
        bool exited = waitpid(pid, &status, WNOHANG) == pid;
        bool seen = find_session(st, pid, recipe, out); /* after waitpid: sees its last state */
        if (seen && !strcmp(out->state, "failed")) {
            cli_error("monitor session %s failed: %s (see %s)", out->id,
                      out->reason ? out->reason : "no reason recorded", log);
            return -1;
        }
        if (seen && (!strcmp(out->state, "running") || state_over(out->state)))
            return 0;
        if (exited) {
            report_early_exit(status, log);
            return -1;
        }
        if (mono_ns() >= deadline && seen) { /* it exists: name it, say it is slow */
            fprintf(stderr, "sonde: session %s is still %s after 10 s; see %s\n", out->id,
                    out->state, log);
            return 0;
        }
        if (mono_ns() >= deadline) {
            cli_error("no session of %s appeared within 10 s (pid %d); see %s", recipe, (int)pid,
                      log);
            return -1;
        }
        sleep_ns(50 * 1000000LL);
    }
}

static int parse_start(struct cli *cli, int argc, char **argv, struct start_opts *o)
{
    static const struct option opts[] = {CLI_COMMON_OPTS,
                                         {"interval", required_argument, NULL, 'i'},
                                         {"node", no_argument, NULL, 'N'},
                                         {"process", no_argument, NULL, 'P'},
                                         {"gpu", no_argument, NULL, 'G'},
                                         {"scrape", required_argument, NULL, 's'},
                                         {"exporter", required_argument, NULL, 'e'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"name", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    int opt;
    o->interval = "1s";
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1) {
        switch (opt) {
        case 'i':
            o->interval = optarg;
            break;
        case 'N':
            o->node = true;
            break;
        case 'P':
            o->process = true;
            break;
        case 'G':
            o->gpu = true;
            break;
        case 's':
            if (o->nscrape == MAX_SCRAPES) {
                cli_error("--scrape: at most %d URLs", MAX_SCRAPES);
                return -1;
            }
            if (strncmp(optarg, "http://", 7) || strpbrk(optarg, " \t\r\n\v\f")) {
                cli_error("--scrape: expected a URL like http://HOST:PORT/metrics (https is not "
                          "supported), got '%s'",
                          optarg);
                return -1;
            }
            o->scrape[o->nscrape++] = optarg;
            break;
        case 'e':
            if (!strchr(optarg, ':')) {
                cli_error("--exporter: expected HOST:PORT (e.g. 127.0.0.1:9464), got '%s'", optarg);
                return -1;
            }
            o->exporter = optarg;
            break;
        case 'd':
            o->duration = optarg;
            break;
        case 'n':
            o->name = optarg;
            break;
        default:
            if (cli_common_opt(cli, opt, optarg, help_monitor) <= 0)
                return -1;
        }
    }
    if (optind != argc) {
        cli_error("monitor start takes no operands (got '%s')", argv[optind]);
        return -1;
    }
    if (check_duration_arg("--interval", o->interval) < 0 ||
        (o->duration && check_duration_arg("--duration", o->duration) < 0))
        return -1;
    if (o->name && !recipe_name_valid(o->name, true)) {
        cli_error("--name: '%s' is not a valid name (letters, digits, '.', '_' and '-')", o->name);
        return -1;
    }
    return 0;
}

/* Writes and validates the recipe; EXIT_USAGE / 1 after printing why, else 0. */
static int write_recipe(struct cli *cli, const struct start_opts *o, const char *path)
{
    char *text = recipe_text(o);
    int r = write_file_atomic(path, text, strlen(text));
    free(text);
    if (r < 0) {
        cli_error("cannot write %s: %s", path, strerror(-r));
        return 1;
    }
    struct recipe_opts ro = {.catalog = cli_catalog(cli)};
    struct diags d = {0};
    r = recipe_validate_file(path, &ro, &d);
    if (r < 0) {
        char *msgs = diags_format(&d);
        fputs(d.n ? msgs : "", stderr);
        free(msgs);
        cli_error("the monitor recipe is not valid%s (kept in %s)", d.n ? "" : ": cannot read it",
                  path);
    }
    diags_free(&d);
    return r < 0 ? EXIT_USAGE : 0;
}

static int monitor_start(struct cli *cli, int argc, char **argv)
{
    struct start_opts o = {0};
    if (parse_start(cli, argc, argv, &o) < 0)
        return EXIT_USAGE;
    char *dir = NULL, *name = NULL, *recipe = NULL, *log = NULL;
    struct store *st = NULL;
    struct session_row s = {0};
    int rc = 1;
    if (cli_open_store(cli, &st) < 0 || !(dir = monitors_dir(cli, true)))
        goto out;
    name = o.name ? xstrdup(o.name) : default_name(dir);
    o.name = name;
    recipe = xasprintf("%s/%s.yaml", dir, name);
    log = xasprintf("%s/%s.log", dir, name);
    if (running_of(st, recipe, &s) > 0) {
        cli_error("monitor '%s' is already running as session %s; stop it first (`sonde monitor "
                  "stop %s`) or choose another --name",
                  name, s.id, name);
        goto out;
    }
    if ((rc = write_recipe(cli, &o, recipe)) != 0)
        goto out;
    rc = 1;
    pid_t pid = spawn_run(cli, dir, recipe, log, o.exporter);
    if (pid < 0 || wait_session(st, pid, recipe, log, &s) < 0)
        goto out;
    if (cli->json) {
        json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s}", "session", s.id, "name", name, "pid",
                              (json_int_t)pid, "state", s.state, "recipe", recipe, "log", log);
        json_dumpf(j, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(j);
    } else if (cli->quiet) {
        printf("%s\n", s.id);
    } else {
        printf("monitor %s started: session %s (pid %d)\nrecipe: %s\nlog:    %s\n"
               "see it:  sonde metrics %s --follow\nstop it: sonde monitor stop %s\n",
               name, s.id, (int)pid, recipe, log, s.id, s.id);
    }
    rc = 0;
out:
    session_row_free(&s);
    store_close(st);
    free(dir);
    free(name);
    free(recipe);
    free(log);
    return rc;
}

/* ---- ps ---------------------------------------------------------------------------------- */

/* The monitors of a session: its monitor components, else the recipe's monitors. */
static char *monitors_of(struct store *st, const struct session_row *s)
{
    struct component_row *c = NULL;
    size_t n = 0;
    struct sbuf b = {0};
    if (store_component_list(st, s->id, -1, &c, &n) == 0) {
        int64_t last = 0;
        for (size_t i = 0; i < n; i++)
            last = c[i].trial_id > last ? c[i].trial_id : last;
        for (size_t i = 0; i < n; i++)
            if (c[i].trial_id == last && !strcmp(c[i].role, "monitor"))
                sbuf_printf(&b, "%s%s", b.len ? "," : "", c[i].name);
        component_rows_free(c, n);
    }
    struct sv *doc = NULL;
    struct diags d = {0};
    if (!b.len && recipe_load_file(s->recipe_path, &doc, &d) == 0) {
        const struct sv *m = sv_get(doc, "monitors");
        for (size_t i = 0; m && m->kind == SV_MAP && i < m->n; i++)
            sbuf_printf(&b, "%s%s", b.len ? "," : "", m->kids[i]->key);
    }
    sv_free(doc);
    diags_free(&d);
    return b.len ? sbuf_steal(&b) : xstrdup("-");
}

static int list_monitors(struct cli *cli, bool all)
{
    struct store *st = NULL;
    char *dir = NULL;
    if (cli_open_store(cli, &st) < 0 || !(dir = monitors_dir(cli, false))) {
        store_close(st);
        return 1;
    }
    struct session_row *rows = NULL;
    size_t n = 0, shown = 0;
    if (store_session_list(st, &rows, &n) < 0) {
        cli_error("cannot list sessions: %s", store_errmsg(st));
        store_close(st);
        free(dir);
        return 1;
    }
    json_t *arr = cli->json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        const struct session_row *s = &rows[i];
        const char *state = session_effective_state(s);
        if (!is_monitor_session(s, dir) || (!all && state_over(state)))
            continue;
        char *mons = monitors_of(st, s), *started = s->started ? iso8601(s->started) : xstrdup("-");
        if (arr) {
            json_array_append_new(
                arr, json_pack("{s:s,s:s,s:s,s:s?,s:s,s:I,s:s,s:s}", "id", s->id, "name", s->name,
                               "state", state, "reason", s->reason, "started", started, "pid",
                               (json_int_t)s->pid, "monitors", mons, "recipe", s->recipe_path));
        } else {
            if (!shown)
                printf("%-22s %-28s %-11s %-24s %-8s %s\n", "SESSION", "NAME", "STATE", "STARTED",
                       "PID", "MONITORS");
            printf("%-22s %-28s %-11s %-24s %-8lld %s\n", s->id, s->name, state, started,
                   (long long)s->pid, mons);
        }
        shown++;
        free(mons);
        free(started);
    }
    if (arr) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(arr);
    } else if (!shown) {
        printf("no %smonitor sessions (start one with `sonde monitor start`)\n",
               all ? "" : "running ");
    }
    session_rows_free(rows, n);
    store_close(st);
    free(dir);
    return 0;
}

/* The options of ps and stop (argv[0] is "monitor", argv[1] the verb): the
 * common ones and --all. 0, or -1 after an error was said. */
static int parse_all_opt(struct cli *cli, int argc, char **argv, bool *all)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTS, {"all", no_argument, NULL, 'a'}, {NULL, 0, NULL, 0}};
    *all = false;
    int opt;
    while ((opt = getopt_long(argc - 1, argv + 1, CLI_COMMON_SHORT "a", opts, NULL)) != -1) {
        if (opt == 'a')
            *all = true;
        else if (cli_common_opt(cli, opt, optarg, help_monitor) <= 0)
            return -1;
    }
    return 0;
}

static int monitor_ps(struct cli *cli, int argc, char **argv)
{
    bool all;
    if (parse_all_opt(cli, argc, argv, &all) < 0)
        return EXIT_USAGE;
    if (optind < argc - 1) {
        /* `monitor ps SESSION`: the monitors of that session, as before. */
        if (all) {
            cli_error("monitor ps: --all lists monitor sessions; it takes no SESSION");
            return EXIT_USAGE;
        }
        optind = 0;
        return cmd_components(cli, "monitor", argc, argv);
    }
    return list_monitors(cli, all);
}

/* ---- stop -------------------------------------------------------------------------------- */

/* Monitor sessions to stop: by name (running ones), else by id; --all: every running one. */
static int stop_targets(struct store *st, const char *dir, const char *what, char ***ids)
{
    struct session_row *rows = NULL;
    size_t n = 0;
    if (store_session_list(st, &rows, &n) < 0) {
        cli_error("cannot list sessions: %s", store_errmsg(st));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *state = session_effective_state(&rows[i]);
        if (is_monitor_session(&rows[i], dir) && !state_over(state) &&
            (!what || !strcmp(rows[i].name, what)))
            strv_push(ids, rows[i].id);
    }
    session_rows_free(rows, n);
    if (*ids || !what)
        return 0;
    struct session_row s = {0};
    int r = cli_find_session(st, what, &s);
    if (r == 0 && !is_monitor_session(&s, dir)) {
        cli_error("session %s (%s) was not started by `sonde monitor start`; stop it with "
                  "`sonde stop %s`",
                  s.id, s.name, s.id);
        r = -1;
    } else if (r == 0) {
        strv_push(ids, s.id);
    }
    session_row_free(&s);
    return r < 0 ? -1 : 0;
}

static size_t points_of(struct store *st, const char *id)
{
    struct series_row *se = NULL;
    size_t n = 0, pts = 0;
    if (store_series_list(st, id, -1, &se, &n) == 0)
        for (size_t i = 0; i < n; i++)
            pts += se[i].npoints;
    series_rows_free(se, n);
    return pts;
}

/* `sonde stop ID`, its own output hidden under --json (errors still reach stderr). */
static int stop_one(struct cli *cli, const char *id)
{
    char *argv[] = {"stop", (char *)id, NULL};
    int saved = -1;
    fflush(stdout);
    if (cli->json) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        saved = null >= 0 ? dup(STDOUT_FILENO) : -1;
        if (saved >= 0)
            dup2(null, STDOUT_FILENO);
        if (null >= 0)
            close(null);
    }
    optind = 0;
    bool json = cli->json;
    cli->json = false;
    int rc = cmd_stop(cli, 2, argv);
    cli->json = json;
    fflush(stdout);
    if (saved >= 0) {
        dup2(saved, STDOUT_FILENO);
        close(saved);
    }
    return rc;
}

/* True once process pid has exited (a zombie counts: it runs nothing). */
static bool pid_gone(pid_t pid)
{
    if (pid <= 0 || kill(pid, 0) < 0)
        return true;
    char path[64], *stat = NULL;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    bool zombie = false;
    if (read_file(path, 4096, &stat, NULL) == 0) {
        const char *p = strrchr(stat, ')');
        zombie = p && p[1] == ' ' && p[2] == 'Z';
    }
    free(stat);
    return zombie;
}

/* The session is over once its state is final, but its sonde still writes the
 * reports: wait (bounded) for it to exit, so that nothing is left running. */
static void wait_exit(const struct session_row *s)
{
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    if (!s->host || strcmp(s->host, host))
        return;
    int64_t deadline = mono_ns() + STOP_EXIT_WAIT_NS;
    while (!pid_gone((pid_t)s->pid) && mono_ns() < deadline)
        sleep_ns(50 * 1000000LL);
    if (!pid_gone((pid_t)s->pid))
        fprintf(stderr, "sonde: session %s has ended but its sonde (pid %lld) still runs\n", s->id,
                (long long)s->pid);
}

static int monitor_stop(struct cli *cli, int argc, char **argv)
{
    bool all;
    if (parse_all_opt(cli, argc, argv, &all) < 0)
        return EXIT_USAGE;
    int nargs = argc - 1 - optind;
    if (all == (nargs == 1) || nargs > 1) {
        cli_error("monitor stop: give one SESSION or NAME, or --all");
        return cli_usage(help_monitor);
    }
    const char *what = all ? NULL : argv[1 + optind];
    char *dir = NULL, **ids = NULL;
    struct store *st = NULL;
    int rc = 1;
    if (cli_open_store(cli, &st) < 0 || !(dir = monitors_dir(cli, false)) ||
        stop_targets(st, dir, what, &ids) < 0)
        goto out;
    if (!ids) {
        cli_error("no monitor session is running (see `sonde monitor ps --all`)");
        goto out;
    }
    json_t *arr = cli->json ? json_array() : NULL;
    rc = 0;
    for (size_t i = 0; ids[i]; i++) {
        int r = stop_one(cli, ids[i]);
        struct session_row s = {0};
        if (store_session_get(st, ids[i], &s) < 0) {
            rc = 1;
            continue;
        }
        wait_exit(&s);
        const char *state = session_effective_state(&s);
        size_t pts = points_of(st, s.id);
        if (arr)
            json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s?,s:I}", "id", s.id, "name",
                                                 s.name, "state", state, "reason", s.reason,
                                                 "points", (json_int_t)pts));
        else
            printf("session %s (%s): %s%s%s%s; %zu series points stored\n", s.id, s.name, state,
                   s.reason ? " (" : "", s.reason ? s.reason : "", s.reason ? ")" : "", pts);
        rc = r != 0 || !state_over(state) ? 1 : rc;
        session_row_free(&s);
    }
    if (arr) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(arr);
    }
out:
    strv_free(ids);
    store_close(st);
    free(dir);
    return rc;
}

int cmd_monitor(struct cli *cli, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(help_monitor);
    if (!strcmp(argv[1], "start"))
        return monitor_start(cli, argc - 1, argv + 1);
    if (!strcmp(argv[1], "ps"))
        return monitor_ps(cli, argc, argv);
    if (!strcmp(argv[1], "stop"))
        return monitor_stop(cli, argc, argv);
    cli_error("unknown monitor command '%s' (start, stop, ps)", argv[1]);
    return EXIT_USAGE;
}
