/* cmd_metrics.c — placeholder, being written. */
#include "cli/cli.h"

int cmd_metrics(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    (void)argv;
    cli_error("metrics: not written yet");
    return 1;
}
