/* cmd_grafana.c — `sonde grafana export`: Grafana dashboards and the
 * provisioning files that load them (report/grafana.h). */
#include "cli/cli.h"

#include "report/grafana.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_grafana[] =
    "usage: sonde grafana export SESSION DIR [OPTIONS]\n"
    "       sonde grafana export --family F [--family F]... DIR [OPTIONS]\n"
    "\n"
    "Writes Grafana dashboards for the metrics Prometheus scrapes during sessions\n"
    "(sonde run --exporter, the node exporter, vLLM, Triton), ready for file\n"
    "provisioning:\n"
    "  DIR/dashboards/sonde-FAMILY.json           one dashboard per family\n"
    "  DIR/provisioning/datasources/sonde.yaml    the Prometheus datasource\n"
    "  DIR/provisioning/dashboards/sonde.yaml     a provider reading DIR/dashboards\n"
    "\n"
    "Families: inference, storage, vector, node, or all. With SESSION (an id, a\n"
    "unique prefix or 'latest') they are those of the session's components:\n"
    "openai and kserve clients: inference; fileio, s3 and sql: storage; faiss and\n"
    "chroma: vector; node always.\n"
    "\n"
    "Options:\n"
    "  --family F               a family to export (repeatable)\n"
    "  --prometheus-url URL     the datasource's Prometheus (" GRAFANA_DEFAULT_URL ")\n"
    "  --datasource-uid UID     the datasource's uid (" GRAFANA_DEFAULT_UID ")\n"
    "\n"
    "See docs/monitoring.md for where a site's Grafana takes these files.\n";

enum { OPT_FAMILY = 256, OPT_URL, OPT_UID };

/* The families of a session's components (node always). */
static int session_families(struct cli *cli, const char *id, unsigned *set)
{
    struct store *st = NULL;
    if (cli_open_store(cli, &st) < 0)
        return 1;
    struct session_row s = {0};
    struct component_row *c = NULL;
    size_t n = 0;
    int rc = 1;
    if (cli_find_session(st, id, &s) < 0)
        goto out;
    int r = store_component_list(st, s.id, -1, &c, &n);
    if (r < 0) {
        cli_error("cannot read the components of session %s: %s", s.id, store_errmsg(st));
        goto out;
    }
    *set |= 1u << GRAFANA_NODE;
    for (size_t i = 0; i < n; i++) {
        int f = grafana_family_of_driver(c[i].driver);
        if (f >= 0)
            *set |= 1u << f;
    }
    rc = 0;
out:
    component_rows_free(c, n);
    session_row_free(&s);
    store_close(st);
    return rc;
}

static void print_written(const struct cli *cli, const char *dir, unsigned set, char **files)
{
    if (cli->json) {
        json_t *fam = json_array(), *fl = json_array();
        for (int f = 0; f < GRAFANA_NFAMILIES; f++)
            if (set & (1u << f))
                json_array_append_new(fam, json_string(grafana_family_name(f)));
        for (char **p = files; p && *p; p++)
            json_array_append_new(fl, json_string(*p));
        json_t *o = json_pack("{s:s, s:o, s:o}", "dir", dir, "families", fam, "files", fl);
        json_dumpf(o, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(o);
        return;
    }
    if (cli->quiet)
        return;
    for (char **p = files; p && *p; p++)
        printf("wrote %s\n", *p);
}

static int grafana_export_cmd(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTS,
                                         {"family", required_argument, NULL, OPT_FAMILY},
                                         {"prometheus-url", required_argument, NULL, OPT_URL},
                                         {"datasource-uid", required_argument, NULL, OPT_UID},
                                         {NULL, 0, NULL, 0}};
    const char *url = GRAFANA_DEFAULT_URL, *uid = GRAFANA_DEFAULT_UID, *why;
    unsigned set = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1) {
        switch (opt) {
        case OPT_FAMILY:
            if (grafana_family_parse(optarg, &set) < 0) {
                cli_error("--family: expected inference, storage, vector, node or all, got '%s'",
                          optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_URL:
            url = optarg;
            break;
        case OPT_UID:
            uid = optarg;
            break;
        default:
            if (cli_common_opt(cli, opt, optarg, help_grafana) <= 0)
                return EXIT_USAGE;
        }
    }
    if ((why = grafana_check_url(url))) {
        cli_error("--prometheus-url '%s': %s", url, why);
        return EXIT_USAGE;
    }
    if ((why = grafana_check_uid(uid))) {
        cli_error("--datasource-uid '%s': %s", uid, why);
        return EXIT_USAGE;
    }
    int npos = argc - optind, want = set ? 1 : 2;
    if (npos != want) {
        if (npos > want)
            cli_error(set ? "give either SESSION or --family, not both" : "too many arguments");
        else
            cli_error("missing DIR (expected SESSION DIR, or --family F DIR)");
        return cli_usage(help_grafana);
    }
    if (!set && session_families(cli, argv[optind], &set) != 0)
        return 1;
    const char *dir = argv[argc - 1];
    char **files = NULL, err[1024] = "";
    int r = grafana_export(dir, set, url, uid, &files, err, sizeof(err));
    if (r < 0)
        cli_error("grafana export: %s", err);
    else
        print_written(cli, dir, set, files);
    strv_free(files);
    return r < 0 ? 1 : 0;
}

int cmd_grafana(struct cli *cli, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(help_grafana);
    const char *sub = argv[1];
    if (!strcmp(sub, "export"))
        return grafana_export_cmd(cli, argc - 1, argv + 1);
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h"))
        return fputs(help_grafana, stdout), 0;
    cli_error("unknown grafana command '%s' (export)", sub);
    return EXIT_USAGE;
}
