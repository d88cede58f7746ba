/* drivers.c — the table of every driver. Adding a kind is one file plus one line here. */
#include "core/driver.h"

#include <string.h>

extern const struct driver_ops driver_service_generic;
extern const struct driver_ops driver_service_prometheus;
extern const struct driver_ops driver_client_exec;
extern const struct driver_ops driver_client_http;
extern const struct driver_ops driver_client_openai;
extern const struct driver_ops driver_client_kserve;
extern const struct driver_ops driver_client_fileio;
extern const struct driver_ops driver_client_sql;
extern const struct driver_ops driver_client_s3;
extern const struct driver_ops driver_client_faiss;
extern const struct driver_ops driver_client_chroma;
extern const struct driver_ops driver_monitor_node;
extern const struct driver_ops driver_monitor_process;
extern const struct driver_ops driver_monitor_gpu;
extern const struct driver_ops driver_monitor_prometheus;

/* One driver a line (clang-format would pack them): */
/* clang-format off */
const struct driver_ops *const driver_table[] = {
    &driver_service_generic,
    &driver_service_prometheus,
    &driver_client_exec,
    &driver_client_http,
    &driver_client_openai,
    &driver_client_kserve,
    &driver_client_fileio,
    &driver_client_sql,
    &driver_client_s3,
    &driver_client_faiss,
    &driver_client_chroma,
    &driver_monitor_node,
    &driver_monitor_process,
    &driver_monitor_gpu,
    &driver_monitor_prometheus,
    NULL,
};
/* clang-format on */

int64_t trial_agent_interval(const struct trial_spec *t)
{
    int64_t best = 0;
    for (size_t i = 0; i < t->ncomps; i++) {
        const struct comp_spec *c = &t->comps[i];
        const struct driver_ops *ops =
            c->role == ROLE_MONITOR ? driver_find(c->role, c->driver) : NULL;
        if (!ops || !ops->job_agent)
            continue;
        int64_t iv = c->interval_ns > 0 ? c->interval_ns : (int64_t)1000000000;
        best = best == 0 || iv < best ? iv : best;
    }
    return best;
}

const struct driver_ops *driver_find(enum comp_role role, const char *name)
{
    for (size_t i = 0; driver_table[i]; i++)
        if (driver_table[i]->role == role && strcmp(driver_table[i]->name, name) == 0)
            return driver_table[i];
    return NULL;
}
