/* cmd_recipe.c — `sonde recipe validate|show|list`. */
#include "cli/cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_recipe[] =
    "usage: sonde recipe validate FILE...\n"
    "       sonde recipe show FILE [--resolved] [--set K=V]...\n"
    "       sonde recipe list [--kind benchmark|service|client|monitor] [--json]\n";

static void print_diags(const struct diags *d)
{
    char *text = diags_format(d);
    fputs(text, stderr);
    free(text);
}

static int recipe_validate(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTS, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1)
        if (cli_common_opt(cli, opt, optarg, help_recipe) <= 0)
            return EXIT_USAGE;
    if (optind >= argc)
        return cli_usage(help_recipe);
    struct recipe_opts ro = {.catalog = cli_catalog(cli)};
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        struct diags d = {0};
        int r = recipe_validate_file(argv[i], &ro, &d);
        if (r < 0 && d.n == 0)
            diags_add(&d, (struct sv_pos){sv_intern(argv[i]), 1, 1}, "", NULL, "%s", strerror(-r));
        if (d.n) {
            print_diags(&d);
            rc = EXIT_USAGE;
        } else if (!cli->quiet) {
            printf("%s: valid\n", argv[i]);
        }
        diags_free(&d);
    }
    return rc;
}

static int recipe_show(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTS,
                                         {"resolved", no_argument, NULL, 'r'},
                                         {"set", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    bool resolved = false;
    char **sets = NULL;
    int opt, rc = EXIT_USAGE;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1) {
        if (opt == 'r')
            resolved = true;
        else if (opt == 's')
            strv_push(&sets, optarg);
        else if (cli_common_opt(cli, opt, optarg, help_recipe) <= 0)
            goto out;
    }
    if (optind != argc - 1) {
        cli_usage(help_recipe);
        goto out;
    }
    struct diags d = {0};
    if (!resolved) {
        struct sv *doc = NULL;
        if (recipe_load_file(argv[optind], &doc, &d) == 0) {
            char *y = sv_to_yaml(doc);
            fputs(y, stdout);
            free(y);
            rc = 0;
        }
        sv_free(doc);
    } else {
        struct recipe_opts ro = {.catalog = cli_catalog(cli), .sets = sets};
        struct bench_spec *b = NULL;
        if (bench_resolve(argv[optind], &ro, &b, &d) == 0) {
            fputs(b->resolved_yaml, stdout);
            printf("# sha256: %s\n", b->sha256);
            rc = 0;
        }
        bench_free(b);
    }
    if (d.n)
        print_diags(&d);
    else if (rc != 0)
        cli_error("cannot read %s", argv[optind]);
    diags_free(&d);
out:
    strv_free(sets);
    return rc;
}

static int recipe_list(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTS, {"kind", required_argument, NULL, 'k'}, {NULL, 0, NULL, 0}};
    int kind = -1, opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1) {
        if (opt == 'k') {
            enum recipe_kind k;
            if (recipe_kind_parse(optarg, &k) < 0) {
                cli_error("--kind: expected benchmark, service, client or monitor, got '%s'",
                          optarg);
                return EXIT_USAGE;
            }
            kind = (int)k;
        } else if (cli_common_opt(cli, opt, optarg, help_recipe) <= 0) {
            return EXIT_USAGE;
        }
    }
    struct catalog_entry *e = NULL;
    size_t n = 0;
    int r = catalog_list(cli_catalog(cli), kind, &e, &n);
    if (r < 0) {
        cli_error("cannot list the catalog: %s", strerror(-r));
        return 1;
    }
    json_t *arr = cli->json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        if (arr)
            json_array_append_new(
                arr, json_pack("{s:s,s:s,s:s,s:s}", "kind", recipe_kind_name(e[i].kind), "name",
                               e[i].name, "description", e[i].description ? e[i].description : "",
                               "path", e[i].path));
        else
            printf("%-10s %-24s %s\n", recipe_kind_name(e[i].kind), e[i].name,
                   e[i].description ? e[i].description : "");
    }
    if (arr) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(arr);
    }
    catalog_entries_free(e, n);
    return 0;
}

int cmd_recipe(struct cli *cli, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(help_recipe);
    const char *sub = argv[1];
    if (!strcmp(sub, "validate"))
        return recipe_validate(cli, argc - 1, argv + 1);
    if (!strcmp(sub, "show"))
        return recipe_show(cli, argc - 1, argv + 1);
    if (!strcmp(sub, "list"))
        return recipe_list(cli, argc - 1, argv + 1);
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h"))
        return fputs(help_recipe, stdout), 0;
    cli_error("unknown recipe command '%s' (validate, show, list)", sub);
    return EXIT_USAGE;
}
