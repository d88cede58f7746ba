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
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

static void set_reason(struct comp *c, const char *fmt, ...) SONDE_PRINTF(2, 3);
static void set_reason(struct comp *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(c->reason);
    c->reason = xvasprintf(fmt, ap);
    va_end(ap);
}

/* A duration option, or its default when absent. */
static int64_t opt_duration(const struct comp *c, const char *key, const char *def)
{
    int64_t ns = 0;
    if (sv_as_duration(sv_get(c->spec->with, key), &ns) < 0 && parse_duration_ns(def, &ns) < 0)
        ns = 0;
    return ns;
}

/* Runs every command of the `prepare` list in order; stops at the first failure. */
static int run_prepare(struct comp *c)
{
    const struct sv *list = sv_get(c->spec->with, "prepare");
    if (!list)
        return 0;
    int64_t timeout = opt_duration(c, "prepare_timeout", "5m");
    for (size_t i = 0; list->kind == SV_SEQ && i < list->n; i++) {
        char **argv = NULL;
        if (sv_as_strv(list->kids[i], &argv) < 0 || !argv[0]) {
            strv_free(argv);
            set_reason(c, "prepare step %zu is not a command (a list of strings)", i + 1);
            return -EINVAL;
        }
        char what[64];
        snprintf(what, sizeof(what), "prepare step %zu", i + 1);
        int r = comp_run_step(c, argv, timeout, what);
        strv_free(argv);
        if (r < 0)
            return r;
    }
    return 0;
}

static int generic_start(struct comp *c)
{
    int r = run_prepare(c);
    if (r < 0)
        return r;
    char **argv = NULL;
    if (sv_as_strv(sv_get(c->spec->with, "command"), &argv) < 0 || !argv[0]) {
        strv_free(argv);
        set_reason(c, "option 'command' must be a non-empty list of strings");
        return -EINVAL;
    }
    r = comp_spawn(c, argv);
    strv_free(argv);
    return r;
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
    int r = comp_run_step(c, argv, opt_duration(c, "stop_timeout", "30s"), "stop command");
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
    .start = generic_start,
    .stop = generic_stop,
};
