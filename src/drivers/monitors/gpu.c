/* gpu.c — placeholder, being written. */
#include "core/session.h"

static const struct opt_def gpu_opts[] = {{.name = NULL}};

const struct driver_ops driver_monitor_gpu = {
    .name = "gpu",
    .role = ROLE_MONITOR,
    .summary = "(being written)",
    .opts = gpu_opts,
};
