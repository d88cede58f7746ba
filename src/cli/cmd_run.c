/* cmd_run.c — `sonde run FILE`: resolve the recipe, run the session, summarize. */
#include "cli/cli.h"

#include "backends/backend.h"
#include "backends/slurm.h"
#include "core/session.h"
#include "report/report.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help_run[] =
    "usage: sonde run FILE [--set KEY=VALUE]... [--backend local|slurm] [--site NAME]\n"
    "                 [--exporter HOST:PORT] [--dry-run] [--workspace DIR] [--quiet]\n"
    "\n"
    "Runs every trial of a benchmark recipe, stores the results and writes the\n"
    "reports listed under `report.formats` (default text and json) into the\n"
    "session directory. Exit status: 0 done, 1 failed, 2 invalid recipe, 130 cancelled.\n"
    "\n"
    "  --site NAME   site profile for batch backends (sites/NAME.yaml; docs/slurm.md)\n"
    "  --dry-run     with --backend slurm: print every job script, submit nothing\n"
    "  --exporter HOST:PORT\n"
    "                serve the session's live metrics for Prometheus at\n"
    "                http://HOST:PORT/metrics (port 0: any free one, printed at the start;\n"
    "                overrides the recipe's `exporter:`; docs/monitoring.md)\n";

/* Writes report.<ext> for each format into the session directory. */
static void write_reports(struct store *st, const struct session_row *row,
                          const struct bench_spec *b, char **first_path)
{
    static const char *const def[] = {"text", "json", NULL};
    const char *const *formats = b->report_formats ? (const char *const *)b->report_formats : def;
    for (size_t i = 0; formats[i]; i++) {
        enum report_format f;
        if (report_format_parse(formats[i], &f) < 0)
            continue;
        const char *ext = f == REPORT_TEXT ? "txt" : formats[i];
        char *name = xasprintf("report.%s", ext);
        char *path = path_join(row->dir, name);
        FILE *out = fopen(path, "w");
        if (out) {
            report_render(st, row->id, f, out);
            fclose(out);
            if (!*first_path)
                *first_path = xstrdup(path);
        } else {
            cli_error("cannot write %s", path);
        }
        free(name);
        free(path);
    }
}

static int summarize(struct cli *cli, const char *id, const struct bench_spec *b)
{
    struct store *st = NULL;
    if (cli_open_store(cli, &st) < 0)
        return -1;
    struct session_row row = {0};
    int r = store_session_get(st, id, &row);
    if (r == 0) {
        char *report = NULL;
        write_reports(st, &row, b, &report);
        report_summary(st, id, stdout);
        printf("session: %s\ndirectory: %s\n", row.id, row.dir);
        if (report)
            printf("report: %s\n", report);
        free(report);
    }
    session_row_free(&row);
    store_close(st);
    return r;
}

/* The site profile of a slurm run, and every job script checked against it:
 * scripts go to out (NULL: made and dropped). All or nothing: a problem in any
 * script prints the problems and no script. 0, or EXIT_USAGE. */
static int check_scripts(struct cli *cli, const struct bench_spec *b, FILE *out,
                         struct site **site_out)
{
    struct diags d = {0};
    struct site *site = NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) {
        cli_error("out of memory");
        return 1;
    }
    int r = site_load(b->site ? b->site : "generic", (struct sv_pos){.file = sv_intern(b->file)},
                      &site, &d);
    if (r == 0)
        r = slurm_dry_run(b, site, cli_workspace(cli), mem, &d);
    fclose(mem);
    if (r == 0 && out) {
        fwrite(text, 1, len, out);
    } else if (r < 0) {
        char *msgs = diags_format(&d);
        fputs(msgs, stderr);
        free(msgs);
    }
    free(text);
    diags_free(&d);
    if (r == 0 && site_out)
        *site_out = site;
    else
        site_free(site);
    return r < 0 ? EXIT_USAGE : 0;
}

/* --dry-run: the slurm backend's job scripts on stdout. */
static int dry_run_scripts(struct cli *cli, const char *file, const struct bench_spec *b)
{
    if (strcmp(b->backend, "slurm") != 0) {
        cli_error("%s: --dry-run shows batch job scripts: use it with --backend slurm (this "
                  "recipe runs on '%s')",
                  file, b->backend);
        return EXIT_USAGE;
    }
    return check_scripts(cli, b, stdout, NULL);
}

int cmd_run(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTS,
                                         {"set", required_argument, NULL, 's'},
                                         {"backend", required_argument, NULL, 'b'},
                                         {"site", required_argument, NULL, 'S'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"exporter", required_argument, NULL, 'E'},
                                         {NULL, 0, NULL, 0}};
    char **sets = NULL;
    const char *backend_name = NULL, *site_name = NULL, *exporter = NULL;
    bool dry_run = false;
    int opt, rc = EXIT_USAGE;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1) {
        if (opt == 's')
            strv_push(&sets, optarg);
        else if (opt == 'b')
            backend_name = optarg;
        else if (opt == 'S')
            site_name = optarg;
        else if (opt == 'n')
            dry_run = true;
        else if (opt == 'E')
            exporter = optarg;
        else if (cli_common_opt(cli, opt, optarg, help_run) <= 0)
            goto out;
    }
    if (optind != argc - 1) {
        cli_usage(help_run);
        goto out;
    }
    struct recipe_opts ro = {
        .catalog = cli_catalog(cli), .sets = sets, .backend = backend_name, .site = site_name};
    struct bench_spec *b = NULL;
    struct diags d = {0};
    if (bench_resolve(argv[optind], &ro, &b, &d) < 0) {
        char *text = diags_format(&d);
        fputs(d.n ? text : "sonde: cannot read the recipe\n", stderr);
        free(text);
        diags_free(&d);
        goto out;
    }
    if (dry_run) {
        rc = dry_run_scripts(cli, argv[optind], b);
        bench_free(b);
        goto out;
    }
    const struct backend_ops *be = backend_find(b->backend);
    if (!be) {
        cli_error("%s: backend '%s' is not available in this build (available: local, slurm)",
                  argv[optind], b->backend);
        bench_free(b);
        goto out;
    }
    struct site *site = NULL; /* batch: every script is checked before the first is submitted */
    if (be->batch && (rc = check_scripts(cli, b, NULL, &site)) != 0) {
        bench_free(b);
        goto out;
    }
    char **prov = NULL; /* batch: images pulled before the first job is submitted */
    if (be->batch) {
        struct diags pd = {0};
        int pr = slurm_pull_images(b, site, cli->quiet, &prov, &pd);
        if (pr < 0) {
            char *msgs = diags_format(&pd);
            fputs(msgs, stderr);
            free(msgs);
            if (pr == -ECANCELED)
                cli_error("interrupted while pulling images; nothing was submitted");
            rc = pr == -ECANCELED ? 130 : 1;
        }
        diags_free(&pd);
        if (pr < 0) {
            strv_free(prov);
            site_free(site);
            bench_free(b);
            goto out;
        }
    }
    struct run_opts o = {
        .provenance = prov,
        .exporter = exporter,
        .workspace = cli_workspace(cli),
        .backend = be,
        .site = site,
        .quiet = cli->quiet,
        .verbose = log_threshold >= LOG_INFO,
    };
    char *id = NULL;
    int r = session_run(b, &o, &id);
    if (r < 0) {
        rc = 1;
    } else {
        summarize(cli, id, b);
        rc = r == 0 ? 0 : r == 1 ? 1 : 130;
    }
    free(id);
    strv_free(prov);
    site_free(site);
    bench_free(b);
out:
    strv_free(sets);
    return rc;
}
