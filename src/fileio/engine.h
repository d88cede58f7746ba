/* engine.h — how fileio issues its reads and writes: an engine is one const
 * ops struct in a table (fio's ioengine idea). `psync` does one pread/pwrite
 * at a time; `io_uring` keeps up to `depth` requests in flight (liburing; a
 * build without liburing lists it as not built).
 *
 * A task queues requests (struct fx_io) and reaps completions; the engine
 * never allocates per request and sets io->res to the bytes moved or -errno. */
#ifndef SONDE_FILEIO_ENGINE_H
#define SONDE_FILEIO_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct fx_io {
    int fd;
    bool write;
    void *buf;
    size_t len;
    uint64_t offset;
    int64_t t0; /* when it was queued (the task's clock) */
    ssize_t res;
    unsigned slot; /* the task's */
};

struct fx_engine;

struct fx_engine_ops {
    const char *name;
    const char *summary;
    bool built;         /* false: named but not in this build (queue fails) */
    unsigned max_depth; /* requests in flight it can hold */
    /* Sets up for up to depth requests in flight; err says why not. */
    int (*init)(struct fx_engine *e, unsigned depth, char *err, size_t n);
    void (*exit)(struct fx_engine *e);
    /* Takes io; it completes in a later reap (psync: at once). 0 or -errno. */
    int (*queue)(struct fx_engine *e, struct fx_io *io);
    /* Submits what was queued and waits until at least min requests have
     * completed; puts up to max of them in done. Their count, or -errno. */
    int (*reap)(struct fx_engine *e, unsigned min, struct fx_io **done, unsigned max);
};

struct fx_engine {
    const struct fx_engine_ops *ops;
    void *priv;
};

extern const struct fx_engine_ops *const fx_engines[]; /* NULL-terminated */
const struct fx_engine_ops *fx_engine_find(const char *name);

#endif
