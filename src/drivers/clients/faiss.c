/* faiss.c — the `faiss` client (being written). */
#include "core/driver.h"

static const struct opt_def faiss_opts[] = {
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

const struct driver_ops driver_client_faiss = {
    .name = "faiss",
    .role = ROLE_CLIENT,
    .summary = "(being written)",
    .opts = faiss_opts,
};
