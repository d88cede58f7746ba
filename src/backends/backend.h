/* backend.h — where components run. One const ops struct per backend, listed
 * in backend_table. This issue ships `local`; slurm and kubernetes come later. */
#ifndef SONDE_BACKEND_H
#define SONDE_BACKEND_H

#include "proc.h"

struct backend_ops {
    const char *name;
    const char *summary;
    /* Host name clients use to reach a service started by this backend. */
    const char *(*service_host)(void);
    int (*spawn)(const struct proc_spec *s, struct proc *out, char *errbuf, size_t errlen);
    int (*poll)(struct proc *p);
    int (*stop)(struct proc *p, int64_t grace_ns);
};

extern const struct backend_ops backend_local;
extern const struct backend_ops *const backend_table[]; /* NULL-terminated */
const struct backend_ops *backend_find(const char *name);

#endif
