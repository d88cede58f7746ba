/* cmd_agent.c — helpers that run inside the jobs sonde submits, not started
 * by users:
 *   sonde agent DRIVER WITH.json DIR: one task of a client (http, openai, kserve)
 *     that a batch backend fans out (drivers/clients/fanout.h); task and task
 *     count from SLURM_PROCID / SLURM_NTASKS.
 *   sonde agent monitor DIR INTERVAL: samples this node and the job's
 *     processes for the node and process monitors (drivers/monitors/monitors.h). */
#include "cli/cli.h"

#include "core/recipe.h"
#include "core/driver.h"
#include "drivers/monitors/monitors.h"
#include "util/units.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_agent[] =
    "usage: sonde agent http|openai|kserve WITH.json DIR\n"
    "       sonde agent monitor DIR INTERVAL\n"
    "\n"
    "Run inside the jobs a batch backend submits (docs/slurm.md), not by hand.\n"
    "http, openai, kserve: one task of such a client fanned out: applies task\n"
    "SLURM_PROCID's share of SLURM_NTASKS of the load the options in WITH.json\n"
    "describe and writes DIR/task-<SLURM_PROCID>.stats.\n"
    "monitor: samples this node and the processes of job SLURM_JOB_ID on it\n"
    "every INTERVAL (e.g. 1s), appending to DIR/<node>.jsonl until stopped.\n";

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* An environment count: def when unset, -1 when not a number in [lo, 1e6]. */
static long env_count(const char *name, long def, long lo)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    return errno || *end || x < lo || x > 1000000 ? -1 : x;
}

static void catch_stop_signals(void)
{
    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int agent_monitor(char **argv)
{
    int64_t interval = 0;
    if (parse_duration_ns(argv[3], &interval) < 0 || interval < 10000000 ||
        interval > (int64_t)3600 * 1000000000) {
        cli_error("agent monitor: INTERVAL '%s' must be a duration from 10ms to 1h", argv[3]);
        return EXIT_USAGE;
    }
    catch_stop_signals();
    char err[1024] = "";
    int r = agent_run(argv[2], interval, &stop_flag, err, sizeof(err));
    if (r < 0)
        cli_error("agent monitor: %s", err);
    return r < 0 ? 1 : 0;
}

int cmd_agent(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    if (argc == 4 && strcmp(argv[1], "monitor") == 0)
        return agent_monitor(argv);
    const struct driver_ops *ops = argc == 4 ? driver_find(ROLE_CLIENT, argv[1]) : NULL;
    if (!ops || !ops->agent_run)
        return cli_usage(help_agent);
    long task = env_count("SLURM_PROCID", 0, 0), ntasks = env_count("SLURM_NTASKS", 1, 1);
    if (task < 0 || ntasks < 0 || task >= ntasks) {
        cli_error("agent: SLURM_PROCID (%s) and SLURM_NTASKS (%s) must be counts with "
                  "PROCID < NTASKS",
                  getenv("SLURM_PROCID") ? getenv("SLURM_PROCID") : "unset",
                  getenv("SLURM_NTASKS") ? getenv("SLURM_NTASKS") : "unset");
        return EXIT_USAGE;
    }
    char *text = NULL;
    size_t len = 0;
    int r = read_file(argv[2], 16 << 20, &text, &len);
    if (r < 0) {
        cli_error("agent: cannot read %s: %s", argv[2], strerror(-r));
        return 1;
    }
    struct sv *with = NULL;
    struct diags d = {0};
    r = yaml_load_value(argv[2], text, len, 0, &with, &d);
    free(text);
    if (r < 0 || !with || with->kind != SV_MAP) {
        char *msg = diags_format(&d);
        cli_error("agent: %s: %s", argv[2], d.n ? msg : "not a map of options");
        free(msg);
        diags_free(&d);
        sv_free(with);
        return EXIT_USAGE;
    }
    diags_free(&d);
    catch_stop_signals();
    char name[64], err[1024] = "";
    snprintf(name, sizeof(name), "task-%ld.stats", task);
    char *out = path_join(argv[3], name);
    r = ops->agent_run(with, (unsigned)task, (unsigned)ntasks, out, &stop_flag, err, sizeof(err));
    if (r < 0)
        cli_error("agent: task %ld of %ld: %s", task, ntasks, err);
    else
        fprintf(stderr, "sonde agent: task %ld of %ld wrote %s\n", task, ntasks, out);
    free(out);
    sv_free(with);
    return r < 0 ? 1 : 0;
}
