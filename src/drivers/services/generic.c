/* generic.c — any command as a service, with optional prepare and stop commands. */
#include "core/session.h"
#include "util/log.h"
#include "util/units.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct opt_def generic_opts[] = {
    {"command", OPT_ARGV, true, NULL, "the server command", NULL, NULL},
    {"prepare", OPT_ARGV_LIST, false, NULL,
     "commands run in order before start; each must exit 0 (e.g. initdb)", NULL, NULL},
    {"prepare_timeout", OPT_DURATION, false, "5m", "limit for each prepare command", NULL, NULL},
    {"stop", OPT_ARGV, false, NULL,
     "command that asks the service to stop (e.g. pg_ctl stop); the process group is stopped "
     "anyway afterwards",
     NULL, NULL},
    {"stop_timeout", OPT_DURATION, false, "30s", "limit for the stop command", NULL, NULL},
    {"metrics", OPT_STR, false, NULL,
     "path of its Prometheus metrics (e.g. /metrics): a prometheus service listed after it "
     "scrapes http://HOST:PORT/PATH",
     NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

/* A duration option, or its default when absent. */

static int generic_start(struct comp *c)
{
    return comp_start_command(c);
}

/* Runs the `stop` command; a failure is only a warning because the session
 * stops the process group anyway. */
static int generic_stop(struct comp *c)
{
    char **argv = NULL;
    if (sv_as_strv(sv_get(c->spec->with, "stop"), &argv) < 0 || !argv[0]) {
        strv_free(argv);
        return 0;
    }
    char *saved = c->reason;
    c->reason = NULL;
    int r = comp_run_step(c, argv, comp_opt_duration(c, "stop_timeout", "30s"), "stop command");
    strv_free(argv);
    if (r < 0)
        comp_warn(c, "%s", c->reason ? c->reason : strerror(-r));
    free(c->reason);
    c->reason = saved;
    return 0;
}

const struct driver_ops driver_service_generic = {
    .name = "generic",
    .role = ROLE_SERVICE,
    .summary = "any command as a service, with prepare and stop commands",
    .opts = generic_opts,
    .runs_command = true,
    .start = generic_start,
    .stop = generic_stop,
};
