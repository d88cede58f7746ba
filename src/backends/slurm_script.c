/* slurm_script.c — batch scripts for the slurm backend (see slurm_script.h). */
#include "backends/slurm_script.h"
#include "drivers/monitors/monitors.h" /* MONITOR_AGENT_ENV */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define NS_PER_MIN (60LL * 1000000000LL)

void shell_quote(struct sbuf *out, const char *s)
{
    sbuf_add(out, "'", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            sbuf_add(out, "'\\''", 4);
        else
            sbuf_add(out, p, 1);
    }
    sbuf_add(out, "'", 1);
}

void slurm_time(int64_t ns, char *buf, size_t n)
{
    int64_t min = (ns + NS_PER_MIN - 1) / NS_PER_MIN;
    snprintf(buf, n, "%" PRId64 "-%02" PRId64 ":%02" PRId64 ":00", min / 1440, min / 60 % 24,
             min % 60);
}

static void directive(struct sbuf *o, const char *opt, const char *val)
{
    if (!val)
        return;
    sbuf_printf(o, "#SBATCH --%s", opt);
    if (*val) {
        sbuf_add(o, "=", 1);
        /* #SBATCH lines are not shell-parsed: quoting would become part of the value */
        sbuf_puts(o, val);
    }
    sbuf_add(o, "\n", 1);
}

static void directive_int(struct sbuf *o, const char *opt, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    directive(o, opt, buf);
}

static int64_t tasks(const struct resources *r)
{
    return (r->nodes ? r->nodes : 1) * (r->tasks_per_node ? r->tasks_per_node : 1);
}

static void directives(struct sbuf *o, const struct slurm_job *j)
{
    const struct resources *r = j->res;
    directive(o, "job-name", j->job_name);
    directive(o, "output", j->out_path);
    directive(o, "error", j->err_path);
    directive(o, "chdir", j->workdir);
    directive(o, "partition", r->partition);
    directive(o, "account", r->account);
    directive(o, "qos", r->qos);
    directive(o, "reservation", r->reservation);
    directive(o, "constraint", r->constraint);
    if (r->nodes)
        directive_int(o, "nodes", r->nodes);
    if (r->tasks_per_node)
        directive_int(o, "ntasks-per-node", r->tasks_per_node);
    if (r->cpus_per_task)
        directive_int(o, "cpus-per-task", r->cpus_per_task);
    if (r->gpus_per_node > 0)
        directive_int(o, "gpus-per-node", r->gpus_per_node);
    directive(o, "gres", r->gres);
    if (r->mem_bytes > 0) { /* MiB, rounded up: Slurm's default unit */
        char buf[32];
        snprintf(buf, sizeof(buf), "%" PRId64 "M", (r->mem_bytes + (1 << 20) - 1) >> 20);
        directive(o, "mem", buf);
    }
    if (r->time_ns > 0) {
        char buf[32];
        slurm_time(r->time_ns, buf, sizeof(buf));
        directive(o, "time", buf);
    }
    if (r->exclusive > 0)
        directive(o, "exclusive", "");
    /* a requeued job would come back on another node behind sonde's back */
    directive(o, "no-requeue", "");
}

static void words(struct sbuf *o, char *const *argv)
{
    for (size_t i = 0; argv && argv[i]; i++) {
        if (i)
            sbuf_add(o, " ", 1);
        shell_quote(o, argv[i]);
    }
}

/* "apptainer exec --nv --bind a:b IMAGE " before each step, or nothing. */
static void container_prefix(struct sbuf *o, const struct slurm_job *j)
{
    if (!j->image)
        return;
    shell_quote(o, j->runtime ? j->runtime : "apptainer");
    sbuf_puts(o, " exec");
    if (j->res->gpus_per_node > 0 || j->res->gres)
        sbuf_puts(o, " --nv");
    for (size_t i = 0; j->binds && j->binds[i]; i++) {
        sbuf_puts(o, " --bind ");
        shell_quote(o, j->binds[i]);
    }
    sbuf_add(o, " ", 1);
    shell_quote(o, j->image);
    sbuf_add(o, " ", 1);
}

static void environment(struct sbuf *o, const struct slurm_job *j)
{
    for (size_t i = 0; j->env && j->env[i]; i++) {
        const char *eq = strchr(j->env[i], '=');
        if (!eq || eq == j->env[i])
            continue;
        sbuf_printf(o, "export %.*s=", (int)(eq - j->env[i]), j->env[i]);
        shell_quote(o, eq + 1);
        sbuf_add(o, "\n", 1);
    }
}

/* One agent per node, as an overlapping step (it takes no CPUs from the job's
 * own steps), detached from the shell: the command that replaces the shell
 * must not inherit it as a child (a server that reaps unknown children may
 * take its exit for a crash of its own). Slurm ends it with the job. */
static void monitor_agent(struct sbuf *o, const struct slurm_job *j)
{
    if (!j->monitor_argv || !j->monitor_argv[0])
        return;
    long long nodes = j->res->nodes > 0 ? (long long)j->res->nodes : 1;
    sbuf_puts(o,
              "# sonde's monitor agent: samples each node of this job and its processes there\n");
    sbuf_printf(o,
                "( " MONITOR_AGENT_ENV " srun --overlap --nodes=%lld --ntasks=%lld "
                "--ntasks-per-node=1 --quiet ",
                nodes, nodes);
    words(o, j->monitor_argv);
    if (j->monitor_log) {
        sbuf_puts(o, " >>");
        shell_quote(o, j->monitor_log);
        sbuf_puts(o, " 2>&1");
    } else {
        sbuf_puts(o, " >/dev/null 2>&1");
    }
    sbuf_puts(o, " </dev/null & )\n");
}

int slurm_script(const struct slurm_job *j, struct sbuf *o)
{
    if (!j->argv || !j->argv[0])
        return -EINVAL;
    sbuf_puts(o, "#!/bin/bash\n");
    directives(o, j);
    if (j->comment)
        sbuf_printf(o, "# %s\n", j->comment);
    sbuf_puts(o, "set -euo pipefail\n");
    for (size_t i = 0; j->modules && j->modules[i]; i++) {
        sbuf_puts(o, "module load ");
        shell_quote(o, j->modules[i]);
        sbuf_add(o, "\n", 1);
    }
    for (size_t i = 0; j->setup && j->setup[i]; i++)
        sbuf_printf(o, "%s\n", j->setup[i]);
    environment(o, j);
    monitor_agent(o, j);
    for (size_t i = 0; j->steps && j->steps[i]; i++) {
        container_prefix(o, j);
        words(o, j->steps[i]);
        sbuf_add(o, "\n", 1);
    }
    sbuf_puts(o, "exec ");
    if (tasks(j->res) > 1) {
        /* the task count sonde expects, whatever srun would derive from the CPUs */
        sbuf_printf(o, "srun --kill-on-bad-exit=1 --ntasks=%lld", (long long)tasks(j->res));
        if (j->task_out_pattern) {
            sbuf_puts(o, " --output=");
            shell_quote(o, j->task_out_pattern);
        }
        if (j->task_err_pattern) {
            sbuf_puts(o, " --error=");
            shell_quote(o, j->task_err_pattern);
        }
        sbuf_add(o, " ", 1);
    }
    container_prefix(o, j);
    words(o, j->argv);
    sbuf_add(o, "\n", 1);
    return 0;
}
