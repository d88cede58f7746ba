/* http.h — what of the `http` client other modules use: its fan-out on a
 * batch backend. A client whose `resources:` name nodes or tasks_per_node
 * runs there as one job of nodes x tasks_per_node tasks, each a
 * `sonde agent http WITH.json DIR` process that applies its share of the
 * load (connections, requests and rate split evenly) and writes
 * DIR/task-<SLURM_PROCID>.stats (loadgen/stats_file.h); sonde merges them. */
#ifndef SONDE_HTTP_CLIENT_H
#define SONDE_HTTP_CLIENT_H

#include "core/recipe.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* True when spec asks to run as a job (on a batch backend). */
bool http_runs_as_job(const struct comp_spec *spec);
/* The command of each task when spec runs as a job (driver_ops.job_argv):
 * EXE agent http DIR/agent.json DIR/tasks; NULL when it does not. */
char **http_agent_argv(const struct comp_spec *spec, const char *exe, const char *dir);
/* One task: `with` is the client's resolved options (with a url), task of
 * ntasks its share; writes the result to out_path. *stop set (by a signal)
 * ends the load early: then nothing is written and -ECANCELED returned.
 * 0, or -errno with a message in err. */
int http_agent_run(const struct sv *with, unsigned task, unsigned ntasks, const char *out_path,
                   const volatile sig_atomic_t *stop, char *err, size_t errlen);

#endif
