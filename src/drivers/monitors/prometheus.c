/* prometheus.c — placeholder, being written. */
#include "core/session.h"

static const struct opt_def prometheus_opts[] = {{.name = NULL}};

const struct driver_ops driver_monitor_prometheus = {
    .name = "prometheus",
    .role = ROLE_MONITOR,
    .summary = "(being written)",
    .opts = prometheus_opts,
};
