/* engine.c — fileio's I/O engines: psync and io_uring (engine.h). */
#include "config.h"
#include "fileio/engine.h"

#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if SONDE_HAVE_LIBURING
#include <liburing.h>
#endif

/* ---- psync: pread/pwrite, one at a time ---------------------------------------------------- */

struct psync {
    struct fx_io *done; /* the request completed by the last queue, or NULL */
};

static int psync_init(struct fx_engine *e, unsigned depth, char *err, size_t n)
{
    if (depth != 1) {
        snprintf(err, n, "engine psync does one I/O at a time: iodepth must be 1, got %u", depth);
        return -EINVAL;
    }
    e->priv = xcalloc(1, sizeof(struct psync));
    return 0;
}

static void psync_exit(struct fx_engine *e)
{
    free(e->priv);
    e->priv = NULL;
}

/* The whole transfer (a regular file moves less only at its end or on error). */
static ssize_t psync_rw(const struct fx_io *io)
{
    size_t done = 0;
    while (done < io->len) {
        char *p = (char *)io->buf + done;
        off_t at = (off_t)(io->offset + done);
        ssize_t k = io->write ? pwrite(io->fd, p, io->len - done, at)
                              : pread(io->fd, p, io->len - done, at);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            break; /* end of file: a short read */
        done += (size_t)k;
    }
    return (ssize_t)done;
}

static int psync_queue(struct fx_engine *e, struct fx_io *io)
{
    struct psync *ps = e->priv;
    io->res = psync_rw(io);
    ps->done = io;
    return 0;
}

static int psync_reap(struct fx_engine *e, unsigned min, struct fx_io **done, unsigned max)
{
    struct psync *ps = e->priv;
    (void)min;
    if (!ps->done || max == 0)
        return 0;
    done[0] = ps->done;
    ps->done = NULL;
    return 1;
}

static const struct fx_engine_ops engine_psync = {
    .name = "psync",
    .summary = "pread/pwrite, one request at a time (iodepth 1)",
    .built = true,
    .max_depth = 1,
    .init = psync_init,
    .exit = psync_exit,
    .queue = psync_queue,
    .reap = psync_reap,
};

/* ---- io_uring (liburing) -------------------------------------------------------------------- */

#if SONDE_HAVE_LIBURING
struct uring {
    struct io_uring ring;
};

static int uring_init(struct fx_engine *e, unsigned depth, char *err, size_t n)
{
    struct uring *u = xcalloc(1, sizeof(*u));
    int r = io_uring_queue_init(depth, &u->ring, 0);
    if (r < 0) {
        snprintf(err, n, "io_uring_queue_init(%u): %s", depth, strerror(-r));
        free(u);
        return r;
    }
    e->priv = u;
    return 0;
}

static void uring_exit(struct fx_engine *e)
{
    struct uring *u = e->priv;
    if (!u)
        return;
    io_uring_queue_exit(&u->ring);
    free(u);
    e->priv = NULL;
}

static int uring_queue(struct fx_engine *e, struct fx_io *io)
{
    struct uring *u = e->priv;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe)
        return -EBUSY; /* more in flight than the depth it was set up for */
    if (io->write)
        io_uring_prep_write(sqe, io->fd, io->buf, (unsigned)io->len, io->offset);
    else
        io_uring_prep_read(sqe, io->fd, io->buf, (unsigned)io->len, io->offset);
    io_uring_sqe_set_data(sqe, io);
    /* submitted at once: a request's latency is counted from when the device
     * can see it (batching submissions measured slower here, too) */
    int r = io_uring_submit(&u->ring);
    return r < 0 ? r : 0;
}

static int uring_reap(struct fx_engine *e, unsigned min, struct fx_io **done, unsigned max)
{
    struct uring *u = e->priv;
    unsigned n = 0;
    struct io_uring_cqe *first;
    if (min && io_uring_peek_cqe(&u->ring, &first) != 0) { /* nothing yet: wait */
        int r = io_uring_wait_cqe_nr(&u->ring, &first, min);
        while (r == -EINTR)
            r = io_uring_wait_cqe_nr(&u->ring, &first, min);
        if (r < 0)
            return r;
    }
    struct io_uring_cqe *cqe;
    while (n < max && io_uring_peek_cqe(&u->ring, &cqe) == 0) {
        struct fx_io *io = io_uring_cqe_get_data(cqe);
        io->res = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
        done[n++] = io;
    }
    return (int)n;
}
#endif

static const struct fx_engine_ops engine_io_uring = {
    .name = "io_uring",
    .summary = "Linux io_uring through liburing, up to iodepth requests in flight",
#if SONDE_HAVE_LIBURING
    .built = true,
    .max_depth = 4096,
    .init = uring_init,
    .exit = uring_exit,
    .queue = uring_queue,
    .reap = uring_reap,
#else
    .built = false,
#endif
};

const struct fx_engine_ops *const fx_engines[] = {&engine_psync, &engine_io_uring, NULL};

const struct fx_engine_ops *fx_engine_find(const char *name)
{
    for (size_t i = 0; fx_engines[i]; i++)
        if (!strcmp(fx_engines[i]->name, name))
            return fx_engines[i];
    return NULL;
}
