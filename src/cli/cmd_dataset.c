/* cmd_dataset.c — `sonde dataset make|info`: a synthetic vector set written as
 * TEXMEX files with its exact neighbours, and what vector files hold. */
#include "cli/cli.h"

#include "vector/vec.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char help_dataset[] =
    "usage: sonde dataset make --kind clustered|uniform --vectors N --queries Q --dim D\n"
    "                          [--clusters C] [--spread S] [--seed X] [--metric l2|ip|cosine]\n"
    "                          [--k K] DIR\n"
    "       sonde dataset info FILE...\n"
    "\n"
    "make generates a synthetic set and writes DIR/base.fvecs, DIR/query.fvecs and the\n"
    "exact K nearest base rows of every query (by the metric) as DIR/groundtruth.ivecs.\n"
    "Defaults: --clusters 100 (at most N), --spread 0.1, --seed 1, --metric l2, --k 100\n"
    "(at most N). Clustered: a mixture of C Gaussians of standard deviation S around\n"
    "centres uniform in [-1, 1]^D; uniform: coordinates uniform in [-1, 1]. Cosine\n"
    "normalises the vectors.\n"
    "\n"
    "info prints the shape, type and value range of .fvecs, .bvecs, .ivecs and .npy\n"
    "files, and the parts and metric of ann-benchmarks .hdf5 files.\n";

enum {
    OPT_KIND = 256,
    OPT_VECTORS,
    OPT_QUERIES,
    OPT_DIM,
    OPT_CLUSTERS,
    OPT_SPREAD,
    OPT_SEED,
    OPT_METRIC,
    OPT_K,
};

/* A whole number in [min, max] for option --name; prints the error. */
static int parse_count(const char *name, const char *arg, unsigned long long min,
                       unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = isdigit((unsigned char)arg[0]) ? strtoull(arg, &end, 10) : 0;
    if (!end || *end || errno || v < min || v > max) {
        cli_error("--%s: expected a whole number from %llu to %llu, got '%s'", name, min, max, arg);
        return -1;
    }
    *out = v;
    return 0;
}

static const char *ext_of(const char *path)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot + 1 : "";
}

/* ---- make ---------------------------------------------------------------------------------- */

static int write_part(const char *dir, const char *name, const struct vec_mat *m,
                      const struct vec_nbrs *t, bool quiet)
{
    char *path = path_join(dir, name), err[512] = "";
    int r =
        m ? vec_fvecs_write(path, m, err, sizeof(err)) : vec_ivecs_write(path, t, err, sizeof(err));
    if (r < 0)
        cli_error("%s", err);
    else if (!quiet && m)
        printf("%s: %zu x %zu float32\n", path, m->n, m->dim);
    else if (!quiet)
        printf("%s: %zu x %zu int32 (exact neighbours)\n", path, t->nq, t->k);
    free(path);
    return r;
}

static int dataset_make(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTS,
                                         {"kind", required_argument, NULL, OPT_KIND},
                                         {"vectors", required_argument, NULL, OPT_VECTORS},
                                         {"queries", required_argument, NULL, OPT_QUERIES},
                                         {"dim", required_argument, NULL, OPT_DIM},
                                         {"clusters", required_argument, NULL, OPT_CLUSTERS},
                                         {"spread", required_argument, NULL, OPT_SPREAD},
                                         {"seed", required_argument, NULL, OPT_SEED},
                                         {"metric", required_argument, NULL, OPT_METRIC},
                                         {"k", required_argument, NULL, OPT_K},
                                         {NULL, 0, NULL, 0}};
    struct vec_synth s = {.spread = 0.1, .seed = 1};
    enum vec_metric metric = VEC_L2;
    unsigned long long vectors = 0, queries = 0, dim = 0, clusters = 0, k = 0, v;
    bool have_kind = false;
    int opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1) {
        switch (opt) {
        case OPT_KIND:
            if (!strcmp(optarg, "clustered") || !strcmp(optarg, "uniform")) {
                s.kind = optarg[0] == 'c' ? VEC_SYNTH_CLUSTERED : VEC_SYNTH_UNIFORM;
                have_kind = true;
                break;
            }
            cli_error("--kind: expected clustered or uniform, got '%s'", optarg);
            return EXIT_USAGE;
        case OPT_VECTORS:
            if (parse_count("vectors", optarg, 1, (unsigned long long)1 << 31, &vectors) < 0)
                return EXIT_USAGE;
            break;
        case OPT_QUERIES:
            if (parse_count("queries", optarg, 1, (unsigned long long)1 << 31, &queries) < 0)
                return EXIT_USAGE;
            break;
        case OPT_DIM:
            if (parse_count("dim", optarg, 1, 65536, &dim) < 0)
                return EXIT_USAGE;
            break;
        case OPT_CLUSTERS:
            if (parse_count("clusters", optarg, 1, (unsigned long long)1 << 31, &clusters) < 0)
                return EXIT_USAGE;
            break;
        case OPT_SEED:
            if (parse_count("seed", optarg, 0, UINT64_MAX, &v) < 0)
                return EXIT_USAGE;
            s.seed = v;
            break;
        case OPT_K:
            if (parse_count("k", optarg, 1, 65536, &k) < 0)
                return EXIT_USAGE;
            break;
        case OPT_SPREAD: {
            char *end = NULL;
            s.spread = strtod(optarg, &end);
            if (end == optarg || *end || !isfinite(s.spread) || !(s.spread > 0)) {
                cli_error("--spread: expected a number above 0, got '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        }
        case OPT_METRIC:
            if (vec_metric_parse(optarg, &metric) < 0) {
                cli_error("--metric: expected l2, ip or cosine, got '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        default:
            if (cli_common_opt(cli, opt, optarg, help_dataset) <= 0)
                return EXIT_USAGE;
        }
    }
    const char *missing = !have_kind       ? "--kind"
                          : !vectors       ? "--vectors"
                          : !queries       ? "--queries"
                          : !dim           ? "--dim"
                          : optind >= argc ? "the output directory"
                                           : NULL;
    if (missing) {
        cli_error("dataset make needs %s (see `sonde dataset --help`)", missing);
        return EXIT_USAGE;
    }
    if (optind != argc - 1) {
        cli_error("dataset make takes one output directory, not %d arguments", argc - optind);
        return EXIT_USAGE;
    }
    if (clusters > vectors) {
        cli_error("--clusters %llu is more than --vectors %llu", clusters, vectors);
        return EXIT_USAGE;
    }
    if (k > vectors) {
        cli_error("--k %llu is more than --vectors %llu", k, vectors);
        return EXIT_USAGE;
    }
    s.n = (size_t)vectors;
    s.nq = (size_t)queries;
    s.dim = (size_t)dim;
    s.clusters = clusters ? (size_t)clusters : vectors < 100 ? (size_t)vectors : 100;
    if (!k)
        k = vectors < 100 ? vectors : 100;
    const char *dir = argv[optind];

    char err[512] = "";
    struct vec_dataset ds;
    struct vec_nbrs truth = {0};
    int r = vec_synth_make(&s, metric, &ds, err, sizeof(err));
    if (r < 0) {
        cli_error("cannot generate the set: %s", err);
        return r == -EINVAL ? EXIT_USAGE : 1;
    }
    int rc = 1;
    if ((r = mkdir_p(dir, 0755)) < 0) {
        cli_error("cannot create %s: %s", dir, strerror(-r));
        goto out;
    }
    if (write_part(dir, "base.fvecs", &ds.base, NULL, cli->quiet) < 0 ||
        write_part(dir, "query.fvecs", &ds.queries, NULL, cli->quiet) < 0)
        goto out;
    if (!cli->quiet)
        fflush(stdout); /* the neighbours take a while */
    if ((r = vec_truth_compute(&ds, (size_t)k, 0, NULL, &truth, err, sizeof(err))) < 0) {
        cli_error("cannot compute the exact neighbours: %s", err);
        goto out;
    }
    if (write_part(dir, "groundtruth.ivecs", NULL, &truth, cli->quiet) < 0)
        goto out;
    rc = 0;
out:
    vec_nbrs_free(&truth);
    vec_dataset_free(&ds);
    return rc;
}

/* ---- info ---------------------------------------------------------------------------------- */

static void print_values(const struct vec_mat *m)
{
    size_t n = m->n * m->dim;
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++) {
        double x = m->data[i];
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
        sum += x;
    }
    printf("values min %g max %g mean %g", lo, hi, n ? sum / (double)n : 0.0);
}

static void print_ids(const struct vec_nbrs *t)
{
    size_t n = t->nq * t->k, none = 0;
    int64_t lo = INT64_MAX, hi = -1;
    for (size_t i = 0; i < n; i++) {
        if (t->ids[i] < 0) {
            none++;
            continue;
        }
        lo = t->ids[i] < lo ? t->ids[i] : lo;
        hi = t->ids[i] > hi ? t->ids[i] : hi;
    }
    if (hi >= 0)
        printf("ids %lld to %lld", (long long)lo, (long long)hi);
    else
        printf("no ids");
    if (none)
        printf(", %zu empty (-1)", none);
}

/* The exit status a reader's failure calls for: a file that is missing or not
 * what it should be is invalid input. */
static int read_status(int r)
{
    return r == -EINVAL || r == -ENOENT || r == -ENOTDIR || r == -EISDIR ? EXIT_USAGE : 1;
}

static int info_hdf5(const char *path)
{
    struct vec_mat train, test;
    struct vec_nbrs truth;
    enum vec_metric m = VEC_L2;
    bool has = false;
    char err[512] = "";
    int r = vec_hdf5_read(path, &train, &test, &truth, &m, &has, err, sizeof(err));
    if (r < 0) {
        cli_error("%s", err);
        return read_status(r);
    }
    static const char *const forms[] = {"squared L2", "negated inner product", "negated cosine"};
    printf("%s: ann-benchmarks HDF5, metric %s\n", path,
           has ? vec_metric_names[m] : "unknown (no 'distance' attribute)");
    printf("  train      %zu x %zu float32, ", train.n, train.dim);
    print_values(&train);
    printf("\n  test       %zu x %zu float32, ", test.n, test.dim);
    print_values(&test);
    if (truth.nq) {
        printf("\n  neighbors  %zu x %zu, ", truth.nq, truth.k);
        print_ids(&truth);
        if (truth.dist)
            printf("\n  distances  %zu x %zu (read as %s)", truth.nq, truth.k, forms[m]);
        else
            printf("\n  distances  %s",
                   has ? "none" : "none used (without the metric their form is unknown)");
    } else
        printf("\n  neighbors  none");
    printf("\n");
    vec_mat_free(&train);
    vec_mat_free(&test);
    vec_nbrs_free(&truth);
    return 0;
}

static int info_file(const char *path)
{
    const char *ext = ext_of(path);
    if (!strcasecmp(ext, "hdf5") || !strcasecmp(ext, "h5"))
        return info_hdf5(path);
    bool npy = !strcasecmp(ext, "npy"), ivecs = !strcasecmp(ext, "ivecs");
    if (!npy && !ivecs && strcasecmp(ext, "fvecs") && strcasecmp(ext, "bvecs")) {
        cli_error("%s: unknown type of file; supported: .fvecs, .bvecs, .ivecs, .npy, .hdf5", path);
        return EXIT_USAGE;
    }
    char err[512] = "", err2[512] = "";
    int r = -EINVAL;
    if (!ivecs) {
        struct vec_mat m;
        r = vec_file_read(path, 0, &m, err, sizeof(err));
        if (r == 0) {
            printf("%s: %s, %zu x %zu %s%s, ", path, npy ? "npy" : ext, m.n, m.dim,
                   !strcasecmp(ext, "bvecs") ? "uint8" : "float32",
                   m.map ? " (memory-mapped)" : "");
            print_values(&m);
            printf("\n");
            vec_mat_free(&m);
            return 0;
        }
        if (!npy) {
            cli_error("%s", err);
            return read_status(r);
        }
    }
    struct vec_nbrs t;
    int r2 = vec_ids_read(path, 0, &t, err2, sizeof(err2));
    if (r2 == 0) {
        printf("%s: %s, %zu x %zu %s ids, ", path, npy ? "npy" : "ivecs", t.nq, t.k,
               npy ? "integer" : "int32");
        print_ids(&t);
        printf("\n");
        vec_nbrs_free(&t);
        return 0;
    }
    /* an .npy failed as both: the complaint that is not about the dtype */
    if (!ivecs && (!strstr(err, "dtype '") || strstr(err2, "dtype '"))) {
        cli_error("%s", err);
        return read_status(r);
    }
    cli_error("%s", err2);
    return read_status(r2);
}

static int dataset_info(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTS, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1)
        if (cli_common_opt(cli, opt, optarg, help_dataset) <= 0)
            return EXIT_USAGE;
    if (optind >= argc)
        return cli_usage(help_dataset);
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        int r = info_file(argv[i]);
        if (r > rc)
            rc = r;
    }
    return rc;
}

int cmd_dataset(struct cli *cli, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(help_dataset);
    const char *sub = argv[1];
    if (!strcmp(sub, "make"))
        return dataset_make(cli, argc - 1, argv + 1);
    if (!strcmp(sub, "info"))
        return dataset_info(cli, argc - 1, argv + 1);
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h"))
        return fputs(help_dataset, stdout), 0;
    cli_error("unknown dataset command '%s' (make, info)", sub);
    return EXIT_USAGE;
}
