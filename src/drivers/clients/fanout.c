/* fanout.c — a client on the load engine fanned out over a batch job (fanout.h). */
#include "drivers/clients/fanout.h"

#include "drivers/clients/client_common.h"
#include "loadgen/stats_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define FANOUT_SEED_STEP 0x9E3779B97F4A7C15ULL

bool fanout_wanted(const struct comp_spec *spec)
{
    return spec->res.nodes > 0 || spec->res.tasks_per_node > 0;
}

char **fanout_argv(const struct comp_spec *spec, const char *exe, const char *dir)
{
    if (!fanout_wanted(spec))
        return NULL;
    char **argv = NULL;
    char *with = path_join(dir, "agent.json"), *tasks = path_join(dir, "tasks");
    const char *words[] = {exe, "agent", spec->driver, with, tasks};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(words); i++)
        strv_push(&argv, words[i]);
    free(with);
    free(tasks);
    return argv;
}

int fanout_split(struct comp *c, struct lg_config *cfg, unsigned task, unsigned ntasks)
{
    if (ntasks <= 1)
        return 0;
    if (cfg->connections < ntasks) {
        comp_set_reason(c,
                        "%u connections cannot be spread over %u tasks: give at least one "
                        "per task",
                        cfg->connections, ntasks);
        return -EINVAL;
    }
    if (cfg->max_requests && cfg->max_requests < ntasks) {
        comp_set_reason(c, "%llu requests cannot be spread over %u tasks",
                        (unsigned long long)cfg->max_requests, ntasks);
        return -EINVAL;
    }
    cfg->connections = cfg->connections / ntasks + (task < cfg->connections % ntasks);
    if (cfg->threads > cfg->connections)
        cfg->threads = cfg->connections;
    if (cfg->max_requests)
        cfg->max_requests = cfg->max_requests / ntasks + (task < cfg->max_requests % ntasks);
    cfg->rate /= ntasks;
    cfg->ramp_from /= ntasks;
    cfg->seed += (uint64_t)task * FANOUT_SEED_STEP;
    return 0;
}

int fanout_start(struct comp *c, struct sv *with, const char *const *files)
{
    if (c->spec->image) {
        comp_set_reason(c,
                        "a fanned-out %s client runs sonde itself on the nodes: 'image' cannot "
                        "be used with it",
                        c->spec->driver);
        sv_free(with);
        return -EINVAL;
    }
    for (size_t i = 0; files && files[i]; i++) {
        const char *dot = strchr(files[i], '.'), *key = dot ? dot + 1 : files[i];
        struct sv *map = with;
        if (dot) { /* "dataset.path": a key of a map option */
            char *outer = xstrndup(files[i], (size_t)(dot - files[i]));
            map = sv_get(with, outer);
            free(outer);
        }
        const char *f = map && map->kind == SV_MAP ? cl_opt_text(map, key) : NULL;
        char *abs = f && f[0] != '/' ? realpath(f, NULL) : NULL;
        if (abs)
            sv_set(map, key, sv_new_scalar(abs, (struct sv_pos){0}));
        free(abs);
    }
    char *json = sv_to_json(with);
    sv_free(with);
    char *path = path_join(c->dir, "agent.json");
    int r = write_file_atomic(path, json, strlen(json));
    if (r < 0)
        comp_set_reason(c, "cannot write %s: %s", path, strerror(-r));
    if (r == 0) {
        char *exe = self_exe();
        char **argv = fanout_argv(c->spec, exe, c->dir);
        r = comp_spawn(c, argv);
        strv_free(argv);
        free(exe);
    }
    free(json);
    free(path);
    return r;
}

int fanout_tick(struct comp *c, unsigned ntasks, int64_t *status_at, int64_t now)
{
    if (!proc_started(&c->proc) || c->backend->poll(&c->proc) == 1)
        return 1;
    if (cl_status_due(status_at, now)) {
        if (!c->proc.running)
            comp_status(c, "job %lld queued (%s), %u tasks", (long long)c->proc.job,
                        c->proc.pending[0] ? c->proc.pending : "no reason yet", ntasks);
        else
            comp_status(c, "job %lld: %u tasks running on %s, %.0f s", (long long)c->proc.job,
                        ntasks, c->proc.nodes, (double)(now - c->proc.start_mono) / 1e9);
    }
    return 0;
}

/* The tasks' files (tasks/task-K.stats, kept) merged into *out, once the job
 * ended well; -errno with c->reason set otherwise. */
static int fanout_result(struct comp *c, unsigned ntasks, struct lg_stats **out)
{
    const struct proc *p = &c->proc;
    if (!p->exited || !WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
        char *err0 = path_join(c->dir, "tasks/task-*.stderr");
        comp_set_reason(c, "the load %s (see %s and the tasks' %s)",
                        p->detail[0] ? p->detail : "job did not run to its end", c->err_path, err0);
        free(err0);
        return -EIO;
    }
    size_t n = ntasks;
    struct lg_stats **parts = xcalloc(n, sizeof(*parts));
    char err[512] = "";
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        char name[64];
        snprintf(name, sizeof(name), "tasks/task-%zu.stats", i);
        char *path = path_join(c->dir, name);
        /* a shared file system may show a file written on another node late */
        for (int k = 0; k < 50; k++) {
            r = lg_stats_read(path, &parts[i], err, sizeof(err));
            if (r != -ENOENT)
                break;
            sleep_ns(100 * 1000000LL);
        }
        if (r == -ENOENT)
            snprintf(err, sizeof(err), "task %zu of %zu wrote no results (%s)", i, n, path);
        free(path);
    }
    if (r == 0)
        r = lg_stats_merge(parts, n, out, err, sizeof(err));
    if (r < 0)
        comp_set_reason(c, "merging the results of %zu tasks: %s", n, err);
    for (size_t i = 0; i < n; i++)
        lg_stats_free(parts[i]);
    free(parts);
    return r;
}

static int stats_of(struct comp *c, int64_t fanout, struct lg_run *run, bool *waited,
                    struct lg_stats **out);

int fanout_stats(struct comp *c, int64_t fanout, struct lg_run *run, bool *waited,
                 struct lg_stats **out)
{
    int r = stats_of(c, fanout, run, waited, out);
    if (r == 0 && *out) /* energy per result is of this window */
        comp_measured_window(c, (*out)->window_start_wall_ns,
                             (*out)->window_start_wall_ns + (*out)->window_ns);
    return r;
}

static int stats_of(struct comp *c, int64_t fanout, struct lg_run *run, bool *waited,
                    struct lg_stats **out)
{
    if (fanout > 0) {
        int r = fanout_result(c, (unsigned)fanout, out);
        if (r == 0)
            comp_metric(c, "tasks", NULL, NULL, (double)fanout);
        return r;
    }
    if (!run)
        return -EINVAL;
    int r = cl_wait(c, run, waited, out);
    if (r == 0)
        cl_live_final(c, run);
    return r;
}

int fanout_agent_wait(struct comp *c, struct lg_run *run, bool *waited,
                      const volatile sig_atomic_t *stop, struct lg_stats **out)
{
    while (!lg_done(run)) {
        if (stop && *stop)
            lg_stop(run);
        sleep_ns(50 * 1000000LL);
    }
    int r = cl_wait(c, run, waited, out);
    if (r == 0 && stop && *stop) {
        comp_set_reason(c, "stopped by a signal before the end of the load");
        lg_stats_free(*out);
        *out = NULL;
        r = -ECANCELED;
    }
    return r;
}

int fanout_agent_write(const struct comp *c, int r, struct lg_stats *s, const char *out_path,
                       char *err, size_t errlen)
{
    if (r == 0)
        r = lg_stats_write(s, out_path, err, errlen);
    else
        snprintf(err, errlen, "%s", c->reason ? c->reason : strerror(-r));
    lg_stats_free(s);
    return r;
}
