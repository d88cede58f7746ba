/* backend.h — where components run. One const ops struct per backend, listed
 * in backend_table: `local` (process groups on this machine) and `slurm`
 * (each component a batch job; docs/slurm.md). */
#ifndef SONDE_BACKEND_H
#define SONDE_BACKEND_H

#include "proc.h"

struct resources;
struct site;

/* What a batch backend needs beyond the process spec to make a job. */
struct job_spec {
    const char *name;             /* job name, "sonde-<session>-<component>" */
    const char *comment;          /* a comment line in the script, may be NULL */
    const char *script_path;      /* where the script is written (kept in the session) */
    const char *task_out_pattern; /* fan-out: each task's stdout (with %t) */
    const char *task_err_pattern; /* fan-out: each task's stderr */
    const struct resources *res;  /* the component's own; site defaults are merged in */
    const struct site *site;      /* modules, setup, runtime, defaults */
    const char *image;            /* container image, or NULL */
    char *const *binds;           /* container bind mounts, may be NULL */
    char *const *const *steps;    /* prepare steps, run in the job before argv; may be NULL */
    char *const *monitor_argv;    /* the monitor agent, one per node in the background; or NULL */
    const char *monitor_log;      /* where the agents' own messages go */
};

struct backend_ops {
    const char *name;
    const char *summary;
    /* Host name clients use to reach a service started by this backend; NULL
     * when it is known only once the service runs (proc.node then). */
    const char *(*service_host)(void);
    /* The address services listen on (${self.listen}). */
    const char *listen_host;
    /* Components run as batch jobs: prepare steps run inside the job (spawn
     * gets them in proc_spec.job), a job may wait in a queue before it runs
     * (proc.running), and other steps run inside the job through step_argv. */
    bool batch;
    int (*spawn)(const struct proc_spec *s, struct proc *out, char *errbuf, size_t errlen);
    /* 1 when ended (status, and detail where the backend says more), 0 while
     * queued or running. Cheap to call often: batch backends ask their
     * scheduler at most about once a second. */
    int (*poll)(struct proc *p);
    int (*stop)(struct proc *p, int64_t grace_ns);
    /* Batch: argv wrapped to run inside p's job on its first node, run from
     * this host (caller frees); NULL when p's job is not running. */
    char **(*step_argv)(const struct proc *p, char *const *argv);
    /* Batch: cancels every job whose name starts with prefix (jobs submitted
     * but never tracked, e.g. when sbatch was interrupted). Returns how many. */
    size_t (*sweep)(const char *prefix);
};

extern const struct backend_ops backend_local;
extern const struct backend_ops backend_slurm;
extern const struct backend_ops *const backend_table[]; /* NULL-terminated */
const struct backend_ops *backend_find(const char *name);

#endif
