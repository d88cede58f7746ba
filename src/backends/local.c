/* local.c — the `local` backend: components run as process groups on this machine. */
#include "backends/backend.h"

#include <string.h>

static const char *local_service_host(void)
{
    return "127.0.0.1";
}

const struct backend_ops backend_local = {
    .name = "local",
    .summary = "run every component as a process group on this machine",
    .service_host = local_service_host,
    .listen_host = "127.0.0.1",
    .spawn = proc_spawn,
    .poll = proc_poll,
    .stop = proc_stop,
};

const struct backend_ops *const backend_table[] = {
    &backend_local,
    &backend_slurm,
    NULL,
};

const struct backend_ops *backend_find(const char *name)
{
    for (size_t i = 0; name && backend_table[i]; i++)
        if (strcmp(backend_table[i]->name, name) == 0)
            return backend_table[i];
    return NULL;
}
