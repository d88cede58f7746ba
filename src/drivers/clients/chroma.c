/* chroma.c — the `chroma` client (being written). */
#include "core/driver.h"

static const struct opt_def chroma_opts[] = {
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

const struct driver_ops driver_client_chroma = {
    .name = "chroma",
    .role = ROLE_CLIENT,
    .summary = "(being written)",
    .opts = chroma_opts,
};
