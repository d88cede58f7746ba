/* driver.h — drivers: the code that knows one kind of service, client or monitor.
 *
 * Each driver is one file exporting one const struct driver_ops, listed in
 * driver_table (drivers.c). Its option table declares the keys accepted under
 * `with:`, so validation, `recipe show` and docs come from one place. */
#ifndef SONDE_DRIVER_H
#define SONDE_DRIVER_H

#include "recipe.h"

#include <signal.h>
#include <stddef.h>

enum opt_type {
    OPT_STR,       /* any scalar */
    OPT_INT,       /* integer */
    OPT_FLOAT,     /* number */
    OPT_BOOL,      /* true/false */
    OPT_DURATION,  /* "500ms" */
    OPT_SIZE,      /* "4KiB" */
    OPT_ENUM,      /* one of choices */
    OPT_ARGV,      /* list of scalars: one command */
    OPT_ARGV_LIST, /* list of commands (each a list of scalars) */
    OPT_STR_LIST,  /* list of scalars */
    OPT_STR_MAP,   /* map of scalar values (e.g. environment) */
    OPT_MAP,       /* map whose keys are described by fields (NULL: any keys) */
    OPT_MAP_LIST,  /* list of maps described by fields */
};

struct opt_def {
    const char *name;
    enum opt_type type;
    bool required;
    const char *def;              /* default shown in docs, NULL = none */
    const char *help;             /* one line */
    const char *const *choices;   /* OPT_ENUM: NULL-terminated */
    const struct opt_def *fields; /* OPT_MAP / OPT_MAP_LIST: terminated by {NULL} */
};

struct comp; /* a running instance: core/session.h */

struct driver_ops {
    const char *name;
    enum comp_role role;
    const char *summary;        /* one line for `recipe list` and docs */
    const struct opt_def *opts; /* keys under with:, terminated by {NULL} */
    /* Its process is with.prepare's steps then with.command (comp_start_command):
     * batch backends can run it as a job. Otherwise it runs inside sonde. */
    bool runs_command;
    /* Monitors that measure a batch job from inside it, through the monitor
     * agent each job then starts on its nodes (drivers/monitors/monitors.h). */
    bool job_agent;
    /* Drivers that run inside sonde but can fan out as a batch job (the http
     * client): the command of each task when spec asks for that (its
     * `resources:`), NULL otherwise. dir: the component's directory; exe:
     * sonde's program. Caller frees. */
    char **(*job_argv)(const struct comp_spec *spec, const char *exe, const char *dir);
    /* One task of such a fan-out, run by `sonde agent DRIVER WITH.json DIR`
     * (drivers/clients/fanout.h): `with` holds the client's resolved options,
     * task of ntasks its share; writes its result to out_path. *stop set (by
     * a signal) ends the load early: then nothing is written and -ECANCELED
     * returned. 0, or -errno with a message in err. */
    int (*agent_run)(const struct sv *with, unsigned task, unsigned ntasks, const char *out_path,
                     const volatile sig_atomic_t *stop, char *err, size_t errlen);
    /* Extra checks beyond the option table (optional). */
    int (*check)(const struct comp_spec *spec, struct diags *d);
    /* Starts the component (spawns processes through the backend). 0 or -errno,
     * with a reason set on the comp. */
    int (*start)(struct comp *c);
    /* Called by the session loop ~every 100 ms while the trial runs (optional):
     * monitors sample when due; clients advance multi-step commands. Returns 0,
     * 1 when the component has finished, or -errno. */
    int (*tick)(struct comp *c, int64_t now_mono);
    /* Asks the component to stop gracefully, e.g. runs its stop command
     * (optional). The session then stops the process group anyway: SIGTERM,
     * stop_grace, SIGKILL. */
    int (*stop)(struct comp *c);
    /* After the component stopped: parse outputs, record metrics (optional). */
    int (*finish)(struct comp *c);
    /* Frees driver state (optional). */
    void (*cleanup)(struct comp *c);
};

extern const struct driver_ops *const driver_table[]; /* NULL-terminated */
const struct driver_ops *driver_find(enum comp_role role, const char *name);
/* How often the monitor agent in each of a trial's batch jobs samples: the
 * shortest interval of its job_agent monitors (default 1 s each); 0 when the
 * trial has none (the jobs start no agent). */
int64_t trial_agent_interval(const struct trial_spec *t);

#endif
