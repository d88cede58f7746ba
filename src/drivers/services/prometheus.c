/* prometheus.c — placeholder, being written. */
#include "core/session.h"

static const struct opt_def prom_opts[] = {{.name = NULL}};

const struct driver_ops driver_service_prometheus = {
    .name = "prometheus",
    .role = ROLE_SERVICE,
    .summary = "(being written)",
    .opts = prom_opts,
};
