/* session.h — one execution of a benchmark recipe.
 *
 * State machine (persisted in the store): pending → starting → running →
 * stopping → done | failed | cancelled. A session that was running when sonde
 * died is reported as `interrupted` by readers (its owner pid is gone).
 * For each trial: services start in dependency order and are probed ready,
 * then monitors, then clients; when the clients finish (or the trial times
 * out, or a service dies, or sonde is signalled) everything stops in reverse
 * order. */
#ifndef SONDE_SESSION_H
#define SONDE_SESSION_H

#include "driver.h"
#include "recipe.h"
#include "backends/backend.h"

struct store;
struct session;

/* A started component within a trial. Drivers keep their state in priv. */
struct comp {
    const char *name;       /* the component's name (lives as long as the session) */
    struct comp_spec *spec; /* interpolated copy owned by the session; read-only for drivers */
    const struct driver_ops *ops;
    const struct backend_ops *backend;
    struct session *session;
    int64_t store_id; /* components.id */
    char *dir;        /* <session dir>/trial-NNN/<name>: sonde's (logs); users cannot write it */
    char *work_dir;   /* <dir>/work: ${self.dir} and the default cwd, owned by spec->user */
    char *out_path;   /* <dir>/stdout.log: the main process's stdout */
    char *err_path;   /* <dir>/stderr.log: the main process's stderr */
    char *steps_path; /* <dir>/steps.log: prepare/stop steps, both streams */
    /* Batch backends: the job's name, comment and script (<dir>/job.sh), and
     * where each task of a fan-out writes (<dir>/tasks/task-%t.stdout|stderr). */
    char *job_name, *job_comment, *script_path, *task_out, *task_err;
    char *host;       /* where it runs (services: what clients connect to); NULL on a batch
                       * backend until the job runs */
    char *port;       /* services: resolved port text, or NULL */
    struct proc proc; /* main process (pid 0 when none, e.g. in-process monitors) */
    bool started, finished;
    char *reason; /* why it failed, or NULL */
    void *priv;
    /* The session's: CPU time spent for the component in sonde (ticks of a
     * monitor, and what its driver adds with comp_add_cpu), since start_mono. */
    int64_t cpu_ns, start_mono, start_wall;
    char *live_labels; /* session="..",trial="..",component=".." for the exporter */
};

/* Sets c->reason (replacing any earlier one). */
void comp_set_reason(struct comp *c, const char *fmt, ...) SONDE_PRINTF(2, 3);
/* The duration option `key` under with:, else def (a duration text, may be NULL), else 0. */
int64_t comp_opt_duration(const struct comp *c, const char *key, const char *def);
/* Runs the `prepare` commands under with: in order (prepare_timeout each, default
 * 5m) through comp_run_step; stops at the first failure with c->reason set. */
int comp_run_prepare(struct comp *c);
/* How many tasks the component's job runs (nodes x tasks_per_node, with the
 * site's defaults); 1 on the local backend. */
int64_t comp_tasks(const struct comp *c);
/* The usual start of a process component: comp_run_prepare, then comp_spawn of
 * the `command` option. */
int comp_start_command(struct comp *c);

/* Starts the component's main process through its backend, as its user, in its
 * cwd, with its environment, stdout/stderr to out_path/err_path; fills c->proc.
 * On failure sets c->reason ("cannot start 'postgres': No such file or directory"). */
int comp_spawn(struct comp *c, char *const *argv);

/* <workspace>/cache/<what>: where drivers keep what later sessions can reuse
 * (ground truth, built indexes), keyed by content hashes. NULL outside a session.
 * Caller frees; the directory may not exist yet. */
char *comp_cache_dir(const struct comp *c, const char *what);

/* Provenance of the component in this trial: "WHAT.trial-NNN.NAME" = value
 * (e.g. the file system a fileio client measured). */
void comp_provenance(struct comp *c, const char *what, const char *value);

/* Metrics and time series recorded by drivers for the current trial.
 * labels: a JSON object text or NULL. */
int comp_metric(struct comp *c, const char *name, const char *unit, const char *labels,
                double value);
int comp_series_point(struct comp *c, const char *name, const char *unit, const char *labels,
                      int64_t wall_ns, double value);
/* Groups the metrics and points a driver records outside tick/finish (e.g. many
 * points pulled back in a service's stop) into one store transaction. Never
 * hold one across anything that may block. */
void comp_batch_begin(struct comp *c);
void comp_batch_end(struct comp *c);
/* Stores a histogram (util/hdr.h) of the current trial, encoded with hdr_encode;
 * unit is the unit of the recorded values (e.g. "ns"). */
struct hdr;
int comp_histogram(struct comp *c, const char *name, const char *unit, const char *labels,
                   const struct hdr *h);
/* Live values for sonde's Prometheus exporter (core/exporter.h); no-ops when the
 * session runs none. The session adds the labels session, trial and component.
 * name: the full Prometheus name (sonde_client_requests_total); labels: extra
 * 'k="v"' pairs or NULL. Counters are given as their running total. */
void comp_live_counter(struct comp *c, const char *name, const char *help, double total);
void comp_live_gauge(struct comp *c, const char *name, const char *help, const char *labels,
                     double value);
/* A histogram: n finite upper bounds le[] (ascending) and n+1 per-bucket counts
 * (not cumulative; the last is above the largest bound), with the sum. */
void comp_live_histogram(struct comp *c, const char *name, const char *help, const double *le,
                         const uint64_t *counts, size_t n, double sum);
/* A client's measured window (wall ns; warm-up excluded): energy per result
 * divides the GPUs' energy over it by what the client completed in it. */
void comp_measured_window(struct comp *c, int64_t start_wall, int64_t end_wall);
/* Whether the session was asked to stop (a signal): a driver's long wait ends then. */
bool comp_cancelled(const struct comp *c);
/* "HOST:PORT" of the session's exporter, or NULL when it runs none. */
const char *session_exporter_target(const struct session *s);
/* CPU time a driver spent on threads of its own (a scrape thread) for the
 * component: added to what the session measures around its tick calls, and
 * reported for monitors as monitor_cpu_seconds (and _percent of one core). */
void comp_add_cpu(struct comp *c, int64_t ns);

/* A live status line for a running client (e.g. "12.0/30 s, 48213 req/s,
 * p99 1.2 ms, 0 errors"), call it about once a second: on a terminal it is
 * redrawn in place; with -v and no terminal a line is printed every 10 s;
 * with -q or no terminal it is not shown. Never stored. */
void comp_status(struct comp *c, const char *fmt, ...) SONDE_PRINTF(2, 3);
/* A warning attached to the session (shown in reports). */
void comp_warn(struct comp *c, const char *fmt, ...) SONDE_PRINTF(2, 3);
/* Every component of the current trial (monitors use it to find process groups). */
size_t session_comps(struct session *s, struct comp ***out);
/* The current trial's service named name; NULL when there is none. */
struct comp *session_service(struct session *s, const char *name);
/* The URL of a service's Prometheus metrics, from its `metrics` option: a path
 * on the service's own address (http://HOST:PORT/PATH), or a whole http:// URL
 * (metrics on a port of their own, as Triton's); def_path when the option is
 * absent. Allocated; NULL when there is none, or with *why set (allocated)
 * when a path has no address to go with. */
char *comp_metrics_url(const struct comp *svc, const char *def_path, char **why);
/* Runs a helper command for a component (prepare/stop steps) as the component's
 * user, in its cwd, with its environment, output appended to steps_path, bounded
 * by timeout_ns (then the step's group is killed). Returns 0 on exit status 0, else -errno
 * with c->reason describing what failed. */
int comp_run_step(struct comp *c, char *const *argv, int64_t timeout_ns, const char *what);

struct run_opts {
    const char *workspace;
    const struct backend_ops *backend;
    const struct site *site; /* batch backends: the site profile (backends/site.h) */
    bool quiet;              /* no progress on stderr */
    bool verbose;            /* progress on stderr even when it is not a terminal */
    char *const *provenance; /* more "KEY=VALUE" provenance (e.g. image digests), may be NULL */
    const char *exporter;    /* HOST:PORT for sonde's /metrics endpoint (overrides the recipe's) */
};

/* Runs a whole session; prints progress to stderr unless quiet. Returns 0 when
 * the session ended `done`, 1 when failed, 2 when cancelled, -errno when it
 * could not even start. *session_id receives the id (caller frees). */
int session_run(const struct bench_spec *b, const struct run_opts *o, char **session_id);

#endif
