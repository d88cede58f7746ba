/* cmd_logs.c — `sonde logs SESSION [COMPONENT] [--follow] [--save FILE.tar.gz]`.
 * Only files inside the session directory are read: components are looked up
 * in the store, never taken as paths from the command line. */
#include "cli/cli.h"

#include "util/targz.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char help_logs[] =
    "usage: sonde logs SESSION [COMPONENT] [--trial N] [--follow] [--save FILE.tar.gz]\n"
    "\n"
    "Without COMPONENT: lists the session's log files. With it: prints them\n"
    "(--follow keeps printing until the session ends). --save writes a tar.gz of\n"
    "the logs (all of them, or COMPONENT's) plus the resolved recipe and reports.\n";

static const char *const log_names[] = {"steps.log", "stdout.log", "stderr.log", NULL};

/* Relative paths (to the session dir) of every log file, filtered by component and trial. */
static char **collect_logs(const char *dir, const char *comp, long trial)
{
    char **out = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    struct dirent *e;
    char **trials = NULL;
    while ((e = readdir(d)))
        if (str_startswith(e->d_name, "trial-") &&
            (trial <= 0 || strtol(e->d_name + 6, NULL, 10) == trial))
            strv_push(&trials, e->d_name);
    closedir(d);
    for (size_t t = 0; trials && trials[t]; t++) {
        char *tdir = path_join(dir, trials[t]);
        DIR *cd = opendir(tdir);
        while (cd && (e = readdir(cd))) {
            if (e->d_name[0] == '.' || (comp && strcmp(comp, e->d_name)))
                continue;
            for (size_t k = 0; log_names[k]; k++) {
                char *rel = xasprintf("%s/%s/%s", trials[t], e->d_name, log_names[k]);
                char *abs = path_join(dir, rel);
                struct stat st;
                if (stat(abs, &st) == 0 && S_ISREG(st.st_mode))
                    strv_push(&out, rel);
                free(rel);
                free(abs);
            }
        }
        if (cd)
            closedir(cd);
        free(tdir);
    }
    strv_free(trials);
    size_t n = strv_len(out);
    for (size_t i = 1; i < n; i++) /* sort: trials in order, stable listing */
        for (size_t j = i; j > 0 && strcmp(out[j - 1], out[j]) > 0; j--) {
            char *tmp = out[j];
            out[j] = out[j - 1];
            out[j - 1] = tmp;
        }
    return out;
}

static bool component_known(struct store *st, const char *session, const char *name)
{
    struct component_row *c = NULL;
    size_t n = 0;
    bool found = false;
    store_component_list(st, session, -1, &c, &n);
    for (size_t i = 0; i < n && !found; i++)
        found = !strcmp(c[i].name, name);
    component_rows_free(c, n);
    return found;
}

/* Copies from offset to the end of path; returns the new offset. */
static long copy_from(const char *path, long off)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return off;
    if (fseek(f, off, SEEK_SET) == 0) {
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
            fwrite(buf, 1, n, stdout);
            off += (long)n;
        }
    }
    fclose(f);
    fflush(stdout);
    return off;
}

static int show_logs(struct store *st, const struct session_row *s, const char *comp, long trial,
                     bool follow)
{
    char **logs = collect_logs(s->dir, comp, trial);
    size_t n = strv_len(logs);
    long *offs = xcalloc(n + 1, sizeof(*offs));
    for (;;) {
        bool fin = follow ? store_session_over(st, s->id) : true;
        for (size_t i = 0; i < n; i++) {
            char *abs = path_join(s->dir, logs[i]);
            struct stat stt;
            if (stat(abs, &stt) == 0 && stt.st_size > offs[i]) {
                printf("==> %s <==\n", logs[i]);
                offs[i] = copy_from(abs, offs[i]);
            }
            free(abs);
        }
        if (fin)
            break;
        sleep_ns(250 * 1000000LL);
        strv_free(logs); /* new trials may have started */
        logs = collect_logs(s->dir, comp, trial);
        size_t m = strv_len(logs);
        offs = xrealloc(offs, (m + 1) * sizeof(*offs));
        for (size_t i = n; i < m; i++)
            offs[i] = 0;
        n = m;
    }
    free(offs);
    strv_free(logs);
    return 0;
}

static int list_logs(const struct session_row *s)
{
    char **logs = collect_logs(s->dir, NULL, 0);
    for (size_t i = 0; logs && logs[i]; i++) {
        char *abs = path_join(s->dir, logs[i]);
        struct stat st;
        printf("%-48s %10lld B\n", logs[i], stat(abs, &st) == 0 ? (long long)st.st_size : 0LL);
        free(abs);
    }
    if (!logs)
        printf("no log files in %s\n", s->dir);
    strv_free(logs);
    return 0;
}

static int save_logs(const struct session_row *s, const char *comp, long trial, const char *out)
{
    char **files = collect_logs(s->dir, comp, trial);
    static const char *const extra[] = {"recipe.resolved.yaml", "report.txt", "report.json",
                                        "report.csv",           "report.md",  NULL};
    for (size_t i = 0; extra[i]; i++) {
        char *abs = path_join(s->dir, extra[i]);
        struct stat st;
        if (stat(abs, &st) == 0)
            strv_push(&files, extra[i]);
        free(abs);
    }
    char err[512] = "";
    int r = files ? targz_write(out, s->dir, files, err, sizeof(err)) : -ENOENT;
    if (r < 0)
        cli_error("cannot save logs to %s: %s", out, err[0] ? err : strerror(-r));
    else
        printf("saved %zu files to %s\n", strv_len(files), out);
    strv_free(files);
    return r < 0 ? 1 : 0;
}

int cmd_logs(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTS,
                                         {"follow", no_argument, NULL, 'f'},
                                         {"save", required_argument, NULL, 's'},
                                         {"trial", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    bool follow = false;
    const char *save = NULL;
    long trial = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORT "f", opts, NULL)) != -1) {
        if (opt == 'f')
            follow = true;
        else if (opt == 's')
            save = optarg;
        else if (opt == 't') {
            char *end;
            trial = strtol(optarg, &end, 10);
            if (*end || trial <= 0) {
                cli_error("--trial: expected a trial number (1, 2, ...), got '%s'", optarg);
                return EXIT_USAGE;
            }
        } else if (cli_common_opt(cli, opt, optarg, help_logs) <= 0)
            return EXIT_USAGE;
    }
    int nargs = argc - optind;
    if (nargs < 1 || nargs > 2)
        return cli_usage(help_logs);
    const char *comp = nargs == 2 ? argv[optind + 1] : NULL;
    struct store *st = NULL;
    if (cli_open_store(cli, &st) < 0)
        return 1;
    struct session_row s = {0};
    int rc = 1;
    if (cli_find_session(st, argv[optind], &s) < 0)
        goto out;
    if (comp && !component_known(st, s.id, comp)) {
        cli_error("session %s has no component '%s' (see `sonde status %s`)", s.id, comp, s.id);
        goto out;
    }
    if (save)
        rc = save_logs(&s, comp, trial, save);
    else if (comp || follow)
        rc = show_logs(st, &s, comp, trial, follow);
    else
        rc = list_logs(&s);
out:
    session_row_free(&s);
    store_close(st);
    return rc;
}
