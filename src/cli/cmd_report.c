/* cmd_report.c — `sonde report SESSION --format text|json|csv|md [--output FILE]`. */
#include "cli/cli.h"

#include "report/report.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char help_report[] =
    "usage: sonde report SESSION [--format text|json|csv|md] [--output FILE]\n";

int cmd_report(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTS,
                                         {"format", required_argument, NULL, 'f'},
                                         {"output", required_argument, NULL, 'o'},
                                         {NULL, 0, NULL, 0}};
    enum report_format f = REPORT_TEXT;
    const char *output = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "f:o:", opts, NULL)) != -1) {
        if (opt == 'f') {
            if (report_format_parse(optarg, &f) < 0) {
                cli_error("--format: expected text, json, csv or md, got '%s'", optarg);
                return EXIT_USAGE;
            }
        } else if (opt == 'o') {
            output = optarg;
        } else if (cli_common_opt(cli, opt, optarg, help_report) <= 0) {
            return EXIT_USAGE;
        }
    }
    if (cli->json)
        f = REPORT_JSON;
    if (argc - optind != 1)
        return cli_usage(help_report);
    struct store *st = NULL;
    if (cli_open_store(cli, &st) < 0)
        return 1;
    struct session_row s = {0};
    int rc = 1;
    if (cli_find_session(st, argv[optind], &s) < 0)
        goto out;
    FILE *out = output ? fopen(output, "w") : stdout;
    if (!out) {
        cli_error("cannot write %s: %s", output, strerror(errno));
        goto out;
    }
    int r = report_render(st, s.id, f, out);
    if (output && fclose(out) != 0)
        r = -errno;
    if (r < 0)
        cli_error("cannot render the report: %s", strerror(-r));
    rc = r < 0 ? 1 : 0;
out:
    session_row_free(&s);
    store_close(st);
    return rc;
}
