/* main.c — `sonde`: dispatch to commands. */
#include "cli/cli.h"

#include "config.h"
#include "version.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: sonde [--workspace DIR] [--catalog DIR] COMMAND [ARGS]\n"
    "\n"
    "Recipes:\n"
    "  recipe validate FILE...          check recipes without running them\n"
    "  recipe show FILE [--resolved]    print a recipe (resolved: one block per trial)\n"
    "  recipe list [--kind K]           the catalog of benchmarks, services, clients, monitors\n"
    "Sessions:\n"
    "  run FILE [--set K=V]...          run a benchmark session (--backend local|slurm)\n"
    "  status [SESSION]                 state of a session and its components\n"
    "  stop SESSION                     stop a running session (clean teardown)\n"
    "  list [--json]                    all sessions, newest last\n"
    "  service ps|check [SESSION]       services of a session; check probes them\n"
    "  client ps|check [SESSION]        clients of a session; check their exit status\n"
    "  monitor ps SESSION               monitors of a session\n"
    "  logs SESSION [COMPONENT] [--follow] [--save FILE.tar.gz]\n"
    "Monitoring without a benchmark:\n"
    "  monitor start [--interval 1s] [--node] [--process] [--gpu] [--scrape URL]...\n"
    "                [--exporter HOST:PORT] [--duration D] [--name NAME]\n"
    "                                   watch this machine in the background; prints the session\n"
    "  monitor ps [--all]               the monitor sessions (--all: ended ones too)\n"
    "  monitor stop SESSION|NAME|--all  stop them\n"
    "Results:\n"
    "  report SESSION [--format text|json|csv|md] [--output FILE]\n"
    "  metrics SESSION [--follow] [--csv FILE] [--trial N] [--name REGEX]\n"
    "                                   metrics and series; --follow prints points as stored\n"
    "  grafana export SESSION|--family F DIR\n"
    "                                   Grafana dashboards and provisioning files\n"
    "Vector datasets:\n"
    "  dataset make --kind K --vectors N --queries Q --dim D DIR\n"
    "                                   synthetic vectors (.fvecs) and their exact neighbours\n"
    "  dataset info FILE...             shape and values of .fvecs .bvecs .ivecs .npy .hdf5\n"
    "\n"
    "SESSION is an id, a unique prefix of one, or 'latest'.\n"
    "The workspace (results store and session directories) is --workspace, else\n"
    "$SONDE_HOME, else ~/.local/share/sonde.\n";

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sonde: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage(const char *help)
{
    fputs(help, stderr);
    return EXIT_USAGE;
}

int cli_common_opt(struct cli *cli, int opt, const char *arg, const char *help)
{
    switch (opt) {
    case 'W':
        free(cli->workspace);
        cli->workspace = xstrdup(arg);
        return 1;
    case 'C':
        strv_push(&cli->catalog_dirs, arg);
        return 1;
    case 'J':
        cli->json = true;
        return 1;
    case 'q':
        cli->quiet = true;
        return 1;
    case 'v':
        log_threshold = log_threshold < LOG_DEBUG ? log_threshold + 1 : LOG_DEBUG;
        return 1;
    case 'h':
        fputs(help, stdout);
        exit(0);
    case '?':
        cli_usage(help);
        return -1;
    default:
        return 0;
    }
}

const char *cli_workspace(struct cli *cli)
{
    if (cli->workspace)
        return cli->workspace;
    const char *env = getenv("SONDE_HOME");
    if (env && *env) {
        cli->workspace = xstrdup(env);
        return cli->workspace;
    }
    const char *home = getenv("HOME");
    cli->workspace = xasprintf("%s/.local/share/sonde", home && *home ? home : ".");
    return cli->workspace;
}

const struct catalog *cli_catalog(struct cli *cli)
{
    if (!cli->catalog_ready) {
        catalog_init(&cli->catalog, (const char *const *)cli->catalog_dirs);
        cli->catalog_ready = true;
    }
    return &cli->catalog;
}

int cli_open_store(struct cli *cli, struct store **st)
{
    int r = store_open(cli_workspace(cli), st);
    if (r < 0) {
        cli_error("cannot open the results store in %s: %s", cli_workspace(cli),
                  store_errmsg(*st) ? store_errmsg(*st) : strerror(-r));
        store_close(*st);
        *st = NULL;
    }
    return r;
}

int cli_find_session(struct store *st, const char *id, struct session_row *out)
{
    if (!id)
        id = "latest";
    int r = store_session_get(st, id, out);
    if (r == -ENOENT)
        cli_error("no session '%s' in this workspace (see `sonde list`)", id);
    else if (r < 0 && r != -ENOENT)
        cli_error("session '%s' is ambiguous or unreadable: %s", id,
                  r == -EEXIST || r == -ENOTUNIQ ? "several sessions match; give more of the id"
                                                 : store_errmsg(st));
    return r;
}

static int components_cmd(struct cli *cli, const char *role, int argc, char **argv)
{
    return cmd_components(cli, role, argc, argv);
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    static const struct option opts[] = {
        CLI_COMMON_OPTS, {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
    int opt, rc = EXIT_USAGE;
    while ((opt = getopt_long(argc, argv, "+" CLI_COMMON_SHORT, opts, NULL)) != -1) {
        if (opt == 'V') {
            printf("sonde %s (%s)\n", SONDE_VERSION, SONDE_GIT_COMMIT);
            return 0;
        }
        if (cli_common_opt(&cli, opt, optarg, usage_text) <= 0)
            return EXIT_USAGE;
    }
    if (optind >= argc)
        return cli_usage(usage_text);
    const char *cmd = argv[optind];
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    optind = 0; /* reset getopt for the command's own parsing */
    if (!strcmp(cmd, "recipe"))
        rc = cmd_recipe(&cli, sub_argc, sub_argv);
    else if (!strcmp(cmd, "run"))
        rc = cmd_run(&cli, sub_argc, sub_argv);
    else if (!strcmp(cmd, "status"))
        rc = cmd_status(&cli, sub_argc, sub_argv);
    else if (!strcmp(cmd, "stop"))
        rc = cmd_stop(&cli, sub_argc, sub_argv);
    else if (!strcmp(cmd, "list"))
        rc = cmd_list(&cli, sub_argc, sub_argv);
    else if (!strcmp(cmd, "monitor") && sub_argc > 1 &&
             (!strcmp(sub_argv[1], "start") || !strcmp(sub_argv[1], "stop") ||
              !strcmp(sub_argv[1], "ps")))
        rc = cmd_monitor(&cli, sub_argc, sub_argv);
    else if (!strcmp(cmd, "service") || !strcmp(cmd, "client") || !strcmp(cmd, "monitor"))
        rc = components_cmd(&cli, cmd, sub_argc, sub_argv);
    else if (!strcmp(cmd, "logs"))
        rc = cmd_logs(&cli, sub_argc, sub_argv);
    else if (!strcmp(cmd, "report"))
        rc = cmd_report(&cli, sub_argc, sub_argv);
    else if (!strcmp(cmd, "metrics"))
        rc = cmd_metrics(&cli, sub_argc, sub_argv);
    else if (!strcmp(cmd, "grafana"))
        rc = cmd_grafana(&cli, sub_argc, sub_argv);
    else if (!strcmp(cmd, "dataset"))
        rc = cmd_dataset(&cli, sub_argc, sub_argv);
    else if (!strcmp(cmd, "agent")) /* started inside batch jobs, not by users */
        rc = cmd_agent(&cli, sub_argc, sub_argv);
    else if (!strcmp(cmd, "help"))
        rc = (fputs(usage_text, stdout), 0);
    else {
        static const char *const cmds[] = {"recipe",  "run",     "status",  "stop", "list",
                                           "service", "client",  "monitor", "logs", "report",
                                           "dataset", "metrics", "grafana", "help", NULL};
        const char *s = str_suggest(cmd, cmds);
        cli_error("unknown command '%s'%s%s%s (see `sonde --help`)", cmd,
                  s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
    }
    free(cli.workspace);
    strv_free(cli.catalog_dirs);
    if (cli.catalog_ready)
        catalog_free(&cli.catalog);
    return rc;
}
