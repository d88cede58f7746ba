/* slurm_script.h — the batch script of one component on Slurm.
 *
 * Pure text generation (no Slurm needed): resources become #SBATCH lines,
 * the site's modules and setup lines come first, the environment is
 * exported, prepare steps run in order (set -e: one failing fails the job),
 * and the command replaces the shell (exec) so scancel's signals reach it.
 * With an image every step runs through `apptainer exec` (--nv when the job
 * has GPUs, --bind for each bind). A job of more than one task runs the
 * command through srun, one process per task, each task's output in its
 * own files. Every word is single-quoted for the shell. */
#ifndef SONDE_SLURM_SCRIPT_H
#define SONDE_SLURM_SCRIPT_H

#include "core/recipe.h"
#include "util/util.h"

struct slurm_job {
    const char *job_name;
    const char *comment;          /* a "# ..." line under the header, NULL = none */
    const char *out_path;         /* the batch script's stdout */
    const char *err_path;         /* its stderr */
    const char *task_out_pattern; /* fan-out: srun --output (with %t), NULL = out_path */
    const char *task_err_pattern; /* fan-out: srun --error */
    const char *workdir;          /* --chdir */
    const struct resources *res;  /* merged: site defaults, then the component's */
    char *const *modules;         /* module load ... */
    char *const *setup;           /* raw shell lines */
    const char *runtime;          /* "apptainer" / "singularity" */
    const char *image;            /* NULL = run on the node directly */
    char *const *binds;
    char *const *env;          /* "KEY=VALUE" exported */
    char *const *const *steps; /* prepare steps (argv each), NULL-terminated, may be NULL */
    char *const *monitor_argv; /* the monitor agent (one per node, in the background), or NULL */
    const char *monitor_log;   /* its messages (appended) */
    char *const *argv;         /* the command */
};

/* Appends the script to out. 0, or -EINVAL when argv is empty. */
int slurm_script(const struct slurm_job *j, struct sbuf *out);
/* Appends s single-quoted for the shell ('it'\''s'). */
void shell_quote(struct sbuf *out, const char *s);
/* Slurm's time format D-HH:MM:SS, rounded up to whole minutes. */
void slurm_time(int64_t ns, char *buf, size_t n);

#endif
