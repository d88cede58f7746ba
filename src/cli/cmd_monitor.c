/* cmd_monitor.c — placeholder, being written. */
#include "cli/cli.h"

int cmd_monitor(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    (void)argv;
    cli_error("monitor: not written yet");
    return 1;
}
