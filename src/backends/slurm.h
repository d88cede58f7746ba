/* slurm.h — the slurm backend (docs/slurm.md). This part: turning a resolved
 * benchmark into the batch scripts sonde submits, checked against the site
 * profile, and `sonde run --backend slurm --dry-run`, which prints them. */
#ifndef SONDE_SLURM_H
#define SONDE_SLURM_H

#include "backends/site.h"
#include "core/recipe.h"

#include <stdio.h>

/* Prints every job script of every trial of b (session "dry-run" under
 * workspace) to out, without submitting anything. Components that run inside
 * sonde (the http client, the node and process monitors) are listed as such.
 * Problems (a partition the site does not have, more GPUs or CPUs than its
 * nodes hold, a workspace path Slurm cannot take) go to d: -EINVAL. */
int slurm_dry_run(const struct bench_spec *b, const struct site *site, const char *workspace,
                  FILE *out, struct diags *d);

/* Pulls every container image of b once into the site's image cache (a
 * local image is only checked), before any job is submitted; a Ctrl-C stops
 * the pull. Appends "image.trial-NNN.NAME=REF sha256:HEX PATH" per component
 * with an image to *prov (provenance). 0; -ECANCELED when interrupted; else
 * -errno with the problem in d. quiet: no progress on stderr. */
int slurm_pull_images(const struct bench_spec *b, const struct site *site, bool quiet, char ***prov,
                      struct diags *d);

/* Applies one line of `scontrol show job -o ID` to p (a job of backend_slurm):
 * queued (p->pending: Slurm's reason), running (p->running, start time),
 * or ended (p->exited, p->status from ExitCode, p->detail in Slurm's words:
 * FAILED, TIMEOUT, NODE_FAIL, PREEMPTED, OUT_OF_MEMORY, CANCELLED ...).
 * The job's first node (BatchHost) goes to host ("" when none yet); its
 * address is the caller's to find. Lines that lack fields leave p queued. */
struct proc;
/* How long a job may stay queued for a reason that does not clear by waiting
 * (PartitionConfig, InvalidAccount, ...) before it counts as never starting. */
#define SLURM_NEVER_NS (60 * 1000000000LL)
void slurm_apply_job_line(struct proc *p, const char *line, char *host, size_t hostlen);

#endif
