/* cmd_grafana.c — placeholder, being written. */
#include "cli/cli.h"

int cmd_grafana(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    (void)argv;
    cli_error("grafana: not written yet");
    return 1;
}
