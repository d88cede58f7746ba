/* drivers.c — the table of every driver. Adding a kind is one file plus one line here. */
#include "core/driver.h"

#include <string.h>

extern const struct driver_ops driver_service_generic;
extern const struct driver_ops driver_client_exec;
extern const struct driver_ops driver_client_http;
extern const struct driver_ops driver_monitor_node;
extern const struct driver_ops driver_monitor_process;

const struct driver_ops *const driver_table[] = {
    &driver_service_generic, &driver_client_exec,     &driver_client_http,
    &driver_monitor_node,    &driver_monitor_process, NULL,
};

const struct driver_ops *driver_find(enum comp_role role, const char *name)
{
    for (size_t i = 0; driver_table[i]; i++)
        if (driver_table[i]->role == role && strcmp(driver_table[i]->name, name) == 0)
            return driver_table[i];
    return NULL;
}
