/* fanout.h — a client on the load engine fanned out over a batch job.
 *
 * A client whose `resources:` name nodes or tasks_per_node runs, on a batch
 * backend, as one job of nodes x tasks_per_node tasks, each a
 * `sonde agent DRIVER DIR/agent.json DIR/tasks` process (the driver's
 * driver_ops.agent_run) that applies its share of the load (connections,
 * requests and rate split evenly, its own seed) and writes
 * DIR/tasks/task-<SLURM_PROCID>.stats (loadgen/stats_file.h, with the
 * driver's own results as extras); sonde merges the files exactly. On the
 * local backend such a client runs inside sonde as usual. */
#ifndef SONDE_CLIENT_FANOUT_H
#define SONDE_CLIENT_FANOUT_H

#include "core/recipe.h"
#include "core/session.h"
#include "loadgen/engine.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* True when spec asks to run as a job (on a batch backend). */
bool fanout_wanted(const struct comp_spec *spec);
/* driver_ops.job_argv of such clients: EXE agent DRIVER DIR/agent.json
 * DIR/tasks when spec fans out, else NULL. */
char **fanout_argv(const struct comp_spec *spec, const char *exe, const char *dir);

/* Task `task` of `ntasks` takes its share of cfg: connections, requests and
 * the open-loop rate (and ramp start) split, the first tasks taking the
 * remainders; its own arrival seed. Sets c->reason when the totals cannot be
 * spread (fewer connections or requests than tasks). */
int fanout_split(struct comp *c, struct lg_config *cfg, unsigned task, unsigned ntasks);

/* Writes `with` (the client's options, as the tasks will read them; taken)
 * to DIR/agent.json and submits the job of agent tasks. The options named in
 * files[] (NULL-terminated; "map.key" for a key of a map option) that hold
 * relative paths are made absolute first: the tasks run in the job's work
 * directory. */
int fanout_start(struct comp *c, struct sv *with, const char *const *files);
/* driver_ops.tick while the job runs: 1 once it ended; its state on the
 * status line (*status_at: the last time one was shown). */
int fanout_tick(struct comp *c, unsigned ntasks, int64_t *status_at, int64_t now);
/* driver_ops.finish: the statistics of the fan-out's tasks merged (and the
 * `tasks` metric) when fanout > 0, else of the run inside sonde (cl_wait). */
int fanout_stats(struct comp *c, int64_t fanout, struct lg_run *run, bool *waited,
                 struct lg_stats **out);

/* In a task: waits for run to end (lg_stop once *stop is set), then its
 * statistics in *out; -ECANCELED when *stop ended it early. */
int fanout_agent_wait(struct comp *c, struct lg_run *run, bool *waited,
                      const volatile sig_atomic_t *stop, struct lg_stats **out);
/* In a task, at its end: s (taken) written to out_path when r is 0, else
 * c's reason (or r's) in err. Returns r, or the write's error. */
int fanout_agent_write(const struct comp *c, int r, struct lg_stats *s, const char *out_path,
                       char *err, size_t errlen);

#endif
