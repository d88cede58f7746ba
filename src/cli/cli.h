/* cli.h — the command-line interface: shared options and one entry per command.
 * Commands print for a person (or JSON with --json) and return the process exit
 * status: 0 success, 1 runtime failure, 2 bad usage or invalid input. */
#ifndef SONDE_CLI_H
#define SONDE_CLI_H

#include "core/recipe.h"
#include "store/store.h"

#include <getopt.h>
#include <stdbool.h>

#define EXIT_USAGE 2

struct cli {
    char *workspace;     /* resolved lazily by cli_workspace() */
    char **catalog_dirs; /* --catalog DIR, repeatable; NULL = defaults */
    struct catalog catalog;
    bool catalog_ready;
    bool json;
    bool quiet;
};

/* Options every command accepts; each command appends its own. */
#define CLI_COMMON_OPTS                                                                            \
    {"workspace", required_argument, NULL, 'W'}, {"catalog", required_argument, NULL, 'C'},        \
        {"json", no_argument, NULL, 'J'}, {"quiet", no_argument, NULL, 'q'},                       \
        {"verbose", no_argument, NULL, 'v'},                                                       \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }
#define CLI_COMMON_SHORT "qvh"

/* Handles a common option; returns 1 when handled, 0 when not common, -1 after
 * printing an error. `help` is the command's usage text, printed for --help. */
int cli_common_opt(struct cli *cli, int opt, const char *arg, const char *help);
/* Prints "sonde: MESSAGE" to stderr. */
void cli_error(const char *fmt, ...) SONDE_PRINTF(1, 2);
/* Prints usage to stderr, returns EXIT_USAGE. */
int cli_usage(const char *help);

const char *cli_workspace(struct cli *cli);
const struct catalog *cli_catalog(struct cli *cli);
/* Opens the store; prints the error. */
int cli_open_store(struct cli *cli, struct store **st);
/* Finds a session by id, prefix or "latest" (NULL = latest); prints the error. */
int cli_find_session(struct store *st, const char *id, struct session_row *out);

int cmd_recipe(struct cli *cli, int argc, char **argv);
int cmd_run(struct cli *cli, int argc, char **argv);
int cmd_agent(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_stop(struct cli *cli, int argc, char **argv);
int cmd_list(struct cli *cli, int argc, char **argv);
int cmd_components(struct cli *cli, const char *role, int argc, char **argv);
int cmd_logs(struct cli *cli, int argc, char **argv);
int cmd_report(struct cli *cli, int argc, char **argv);
int cmd_dataset(struct cli *cli, int argc, char **argv);
int cmd_grafana(struct cli *cli, int argc, char **argv);
int cmd_metrics(struct cli *cli, int argc, char **argv);
/* `sonde monitor start|stop|ps`: monitors without a benchmark */
int cmd_monitor(struct cli *cli, int argc, char **argv);

#endif
