/* site.h — site profiles (sites/NAME.yaml): what a batch-scheduled machine
 * offers and expects. Default resources (account, partition, QoS, time),
 * its partitions (for checks and docs), the `module load`s and setup lines
 * every job script starts with, and the container runtime and image cache.
 * Found in $SONDE_SITES (colon-separated), SONDE_DATADIR/sites, ./sites.
 * Format: docs/slurm.md. */
#ifndef SONDE_SITE_H
#define SONDE_SITE_H

#include "core/diag.h"
#include "core/recipe.h"

#include <stdint.h>

struct site_partition {
    char *name;
    char *description;
    int64_t nodes, cpus_per_node, gpus_per_node, mem_bytes; /* 0 = not stated */
    char *gpu;                                              /* GPU model, e.g. "A100-40GB" */
};

struct site {
    char *name, *description, *file;
    char *scheduler; /* "slurm" */
    struct resources defaults;
    struct site_partition *parts;
    size_t nparts;
    char **modules; /* each becomes "module load X" */
    char **setup;   /* shell lines run before the component's commands */
    char *runtime;  /* container runtime command: apptainer (default) or singularity */
    char *cache;    /* where sonde keeps pulled images (backends/image_cache.h), NULL = default */
};

/* Finds and loads site NAME. -ENOENT (with the places searched in d, at
 * `at`: where the name was given) when there is no such profile, -EINVAL with
 * diagnostics when it is malformed. */
int site_load(const char *name, struct sv_pos at, struct site **out, struct diags *d);
/* Loads a profile from a file (any name). */
int site_load_file(const char *path, struct site **out, struct diags *d);
void site_free(struct site *s);
const struct site_partition *site_partition(const struct site *s, const char *name);

#endif
