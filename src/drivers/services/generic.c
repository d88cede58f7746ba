/* generic.c — any command as a service, with optional prepare and stop commands. */
#include "core/session.h"
#include "util/log.h"
#include "util/net.h"
#include "util/units.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
     "where its Prometheus metrics are: a path (e.g. /metrics, at http://HOST:PORT/PATH) or a "
     "whole http:// URL (metrics on a port of their own); a prometheus service listed after it, "
     "and a prometheus monitor's with.scrape, scrape them",
     NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

/* `metrics`: a path, or a whole http:// URL; neither with a query string.
 * Where it holds ${...} (resolved at run time), the text before the first one. */
static int generic_check(const struct comp_spec *spec, struct diags *d)
{
    const struct sv *m = sv_get(spec->with, "metrics");
    if (!m || m->kind != SV_SCALAR)
        return 0;
    const char *ref = strstr(m->str, "${");
    char *lit = ref ? xstrndup(m->str, (size_t)(ref - m->str)) : xstrdup(m->str);
    char *path = xasprintf("%ss.%s.with.metrics", comp_role_name(spec->role), spec->name);
    struct net_url u;
    const char *scheme_end = strstr(lit, "://");
    if (scheme_end && (scheme_end - lit != 4 || strncasecmp(lit, "http", 4) != 0))
        diags_add(d, m->pos, path, NULL,
                  "'%s' is not an http://HOST:PORT/PATH URL (nor a path such as /metrics)", m->str);
    else if (scheme_end && !ref && net_url_parse(m->str, &u) < 0)
        diags_add(d, m->pos, path, NULL, "'%s' is not an http://HOST:PORT/PATH URL", m->str);
    else if (scheme_end && !ref)
        net_url_free(&u);
    if (strchr(lit, '?'))
        diags_add(d, m->pos, path, NULL, "'%s': a query string is not supported", m->str);
    free(path);
    free(lit);
    return 0;
}

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
    .check = generic_check,
    .runs_command = true,
    .start = generic_start,
    .stop = generic_stop,
};
