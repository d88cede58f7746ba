/* task.c — one task of a fileio run: files, the measured phases, results (task.h).
 *
 * Barriers, in order: 0 "setup" (shared files exist), 1..N the measured
 * phases (data) or metadata phases, N+1 "end" (nobody still uses a shared
 * file when task 0 removes it). */
#include "fileio/task.h"

#include "fileio/fsinfo.h"
#include "fileio/verify.h"
#include "util/hdr.h"
#include "util/rng.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *const fx_rw_names[FX_RW_COUNT + 1] = {"read", "write",  "randread", "randwrite",
                                                  "rw",   "randrw", NULL};
const char *const fx_op_names[FX_OP_COUNT] = {"read", "write", "sync",  "create",
                                              "stat", "open",  "delete"};
const char *const fx_md_names[FX_MD_COUNT + 1] = {"create", "stat", "open", "read", "delete", NULL};
const char *const fx_err_names[FX_E_COUNT] = {"io",    "space",  "notfound", "permission",
                                              "short", "verify", "deleted",  "other"};

#define NS_PER_S     1000000000LL
#define FX_HDR_MAX   (3600LL * NS_PER_S)
#define FX_ALIGN     4096
#define LAYOUT_CHUNK ((size_t)1 << 20)
#define FX_SECS_MAX  ((size_t)1 << 22)

struct task {
    const struct fx_spec *sp;
    const struct fx_coord *co;
    unsigned k, n;
    bool leader;
    struct fx_progress *prog;
    struct fx_result *res;
    struct fx_engine eng;
    bool eng_ok;
    /* the files of its space: descriptors opened on first use (-1: not open) */
    int *fds;
    uint64_t nfiles;
    bool *created; /* this task created the file (it removes it at the end) */
    /* one buffer and one request per slot of the queue; the buffers in one
     * mapping (see map_buffers) */
    unsigned char **bufs, *area;
    size_t area_len;
    struct fx_io *ios;
    uint64_t *slot_file;
    unsigned depth, *free_slots, nfree;
    struct rng rng;
    uint64_t wseq;
    uint64_t writes_since_sync;
    int64_t t0_mono;
    unsigned barrier; /* the next barrier's index */
    bool noticed;     /* the first task's finish was seen in this phase */
};

static enum fx_err err_class(int e)
{
    switch (e) {
    case EIO:
        return FX_E_IO;
    case ENOSPC:
    case EDQUOT:
        return FX_E_SPACE;
    case ENOENT:
    case ESTALE:
        return FX_E_NOTFOUND;
    case EACCES:
    case EPERM:
    case EROFS:
        return FX_E_PERMISSION;
    }
    return FX_E_OTHER;
}

/* Counts an error of class cls, keeps the first message, stops every task.
 * Returns -e (or -EIO when e is 0). */
static int fail(struct task *t, enum fx_err cls, int e, const char *fmt, ...) SONDE_PRINTF(4, 5);
static int fail(struct task *t, enum fx_err cls, int e, const char *fmt, ...)
{
    t->res->errors[cls]++;
    if (t->prog)
        atomic_fetch_add_explicit(&t->prog->errors, 1, memory_order_relaxed);
    if (!t->res->error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->res->error, sizeof(t->res->error), fmt, ap);
        va_end(ap);
    }
    t->co->ops->abort(t->co->ud);
    return e ? -e : -EIO;
}

/* Waits at the next barrier: 0, -ECANCELED when the run was stopped (not an
 * error of this task), or an error of the coordination itself. */
static int wait_barrier(struct task *t, unsigned *barrier, int64_t *t0)
{
    char err[256] = "";
    *barrier = t->barrier++;
    int r = t->co->ops->barrier(t->co->ud, t->k, *barrier, t0, err, sizeof(err));
    if (r < 0 && !t->co->ops->aborted(t->co->ud))
        return fail(t, FX_E_OTHER, -r, "%s", err);
    return r < 0 ? -ECANCELED : 0;
}

char *fx_file_path(const struct fx_spec *spec, unsigned task, uint64_t file)
{
    if (spec->layout == FX_PER_TASK)
        return xasprintf("%s/sonde-fileio.%u.%llu", spec->dir, task, (unsigned long long)file);
    return xasprintf("%s/sonde-fileio.shared.%llu", spec->dir, (unsigned long long)file);
}

uint64_t fx_space_needed(const struct fx_spec *spec, unsigned ntasks)
{
    if (spec->metadata) {
        uint64_t per = (spec->md_size + FX_ALIGN - 1) / FX_ALIGN * FX_ALIGN;
        return spec->md_files * ntasks * (per ? per : FX_ALIGN);
    }
    uint64_t files = spec->layout == FX_PER_TASK ? spec->files * ntasks : spec->files;
    return files * spec->file_size;
}

static bool rw_writes(enum fx_rw rw);

/* ---- files ----------------------------------------------------------------------------------- */

static const char *fs_type_of(const char *path, char *buf, size_t n)
{
    struct fx_fsinfo fi;
    snprintf(buf, n, "%s", fx_fs_describe(path, &fi) == 0 ? fi.type : "its file system");
    return buf;
}

/* Opens file f of the space for the measured phases (O_DIRECT when asked). */
static int open_data(struct task *t, uint64_t f, int *out)
{
    char *path = fx_file_path(t->sp, t->k, f);
    bool writes = false;
    for (unsigned p = 0; p < t->sp->nphases; p++)
        writes |= rw_writes(t->sp->phase[p]);
    int flags = (writes ? O_RDWR : O_RDONLY) | O_CLOEXEC | (t->sp->direct ? O_DIRECT : 0);
    int fd = open(path, flags);
    int r = 0;
    if (fd < 0 && errno == EINVAL && t->sp->direct) {
        char type[32];
        r = fail(t, FX_E_OTHER, EINVAL,
                 "%s refuses O_DIRECT (direct: true) at %s: run with direct: false (caches are "
                 "dropped before reads when sonde runs as root)",
                 fs_type_of(t->sp->dir, type, sizeof(type)), path);
    } else if (fd < 0)
        r = fail(t, err_class(errno), errno, "cannot open %s: %s", path, strerror(errno));
    free(path);
    *out = fd;
    return r;
}

static int fd_of(struct task *t, uint64_t f, int *fd)
{
    if (t->fds[f] >= 0) {
        *fd = t->fds[f];
        return 0;
    }
    int r = open_data(t, f, fd);
    if (r == 0 && !t->sp->open_per_io)
        t->fds[f] = *fd;
    return r;
}

/* Writes [from, to) of fd with data the phases can read back (verify blocks
 * when asked), in chunks of whole blocks; not counted. */
static int fill(struct task *t, int fd, const char *path, uint64_t from, uint64_t to)
{
    const struct fx_spec *sp = t->sp;
    size_t chunk = sp->bs >= LAYOUT_CHUNK ? sp->bs : LAYOUT_CHUNK / sp->bs * sp->bs;
    unsigned char *buf = xmalloc(chunk);
    for (size_t i = 0; i < chunk; i++)
        buf[i] = (unsigned char)(rng_next(&t->rng) >> 56);
    int r = 0;
    for (uint64_t at = from; at < to && r == 0;) {
        size_t len = to - at < chunk ? (size_t)(to - at) : chunk;
        for (size_t b = 0; sp->verify && b + sp->bs <= len; b += sp->bs)
            fx_verify_fill(buf + b, sp->bs, at + b, t->k, t->wseq++, sp->seed);
        ssize_t w = pwrite(fd, buf, len, (off_t)at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            r = fail(t, w < 0 ? err_class(errno) : FX_E_SHORT, w < 0 ? errno : EIO,
                     "laying out %s at offset %llu: %s", path, (unsigned long long)at,
                     w < 0 ? strerror(errno) : "nothing written");
        else
            at += (uint64_t)w;
    }
    if (r == 0 && fdatasync(fd) < 0)
        r = fail(t, err_class(errno), errno, "laying out %s: fdatasync: %s", path, strerror(errno));
    free(buf);
    return r;
}

/* Whether any phase reads before writing everything (the files need data). */
static bool needs_data(const struct fx_spec *sp)
{
    return sp->verify || sp->phase[0] == FX_READ || sp->phase[0] == FX_RANDREAD ||
           sp->phase[0] == FX_RW || sp->phase[0] == FX_RANDRW;
}

/* A file gets data when this run created it (a shared one: task 0 created it
 * empty) or when it is shorter than the phases need; an existing file of the
 * full size is read as it is (verify: checked as it is). */
static bool needs_fill(struct task *t, int fd, uint64_t f)
{
    struct stat st;
    return (t->sp->layout == FX_PER_TASK && t->created[f]) || fstat(fd, &st) < 0 ||
           st.st_size < (off_t)t->sp->file_size;
}

/* Creates file f (exclusively: t->created says whether this task did). */
static int create_file(struct task *t, uint64_t f)
{
    char *path = fx_file_path(t->sp, t->k, f);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    t->created[f] = fd >= 0;
    if (fd < 0 && errno == EEXIST)
        fd = open(path, O_RDWR | O_CLOEXEC);
    int r = 0;
    if (fd < 0)
        r = fail(t, err_class(errno), errno, "cannot create %s: %s", path, strerror(errno));
    else if (t->sp->fallocate && !needs_data(t->sp) &&
             posix_fallocate(fd, 0, (off_t)t->sp->file_size) == ENOSPC)
        r = fail(t, FX_E_SPACE, ENOSPC, "cannot allocate %llu bytes for %s: %s",
                 (unsigned long long)t->sp->file_size, path, strerror(ENOSPC));
    if (fd >= 0)
        close(fd);
    free(path);
    return r;
}

/* Before the first phase: the files exist with data where the phases read. */
static int layout(struct task *t)
{
    const struct fx_spec *sp = t->sp;
    int r = 0;
    bool shared = sp->layout != FX_PER_TASK;
    if (!shared || t->k == 0)
        for (uint64_t f = 0; f < t->nfiles && r == 0; f++)
            r = create_file(t, f);
    unsigned barrier;
    int64_t t0;
    int rb = wait_barrier(t, &barrier, &t0);
    r = r ? r : rb;
    if (r || !needs_data(sp))
        return r;
    struct fx_space s;
    fx_space_init(&s, sp->layout, sp->files, sp->file_size / sp->bs, t->k, t->n);
    /* fill this task's blocks: runs of consecutive blocks of one file at a time */
    for (uint64_t i = 0; i < s.n && r == 0;) {
        uint64_t f, b, f2, b2, j = i + 1;
        fx_space_block(&s, i, &f, &b);
        for (; j < s.n; j++) {
            fx_space_block(&s, j, &f2, &b2);
            if (f2 != f || b2 != b + (j - i))
                break;
        }
        char *path = fx_file_path(sp, t->k, f);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            r = fail(t, err_class(errno), errno, "cannot open %s: %s", path, strerror(errno));
        else if (needs_fill(t, fd, f))
            r = fill(t, fd, path, b * sp->bs, (b + (j - i)) * sp->bs);
        if (fd >= 0)
            close(fd);
        free(path);
        i = j;
    }
    return r;
}

/* ---- measured phases: bookkeeping ----------------------------------------------------------- */

static int stat_begin(struct task *t, enum fx_op op, int64_t t0_wall)
{
    struct fx_opstat *st = &t->res->op[op];
    st->used = true;
    st->t0_wall = t0_wall;
    return st->lat ? 0 : hdr_init(1, FX_HDR_MAX, 3, &st->lat);
}

/* A measured phase starts: all tasks behind its barrier, then this task's
 * clock and the operations it records (used). */
static int phase_begin(struct task *t, const bool *used, unsigned *barrier)
{
    int64_t t0;
    int r = wait_barrier(t, barrier, &t0);
    t->t0_mono = mono_ns();
    t->noticed = false;
    t->writes_since_sync = 0;
    for (int op = 0; op < FX_OP_COUNT && r == 0; op++)
        if (used[op])
            r = stat_begin(t, (enum fx_op)op, t0);
    return r;
}

/* One completed operation of kind op that moved bytes, at now. */
static void account(struct task *t, enum fx_op op, uint64_t bytes, int64_t lat, int64_t now)
{
    struct fx_opstat *st = &t->res->op[op];
    st->ops++;
    st->bytes += bytes;
    hdr_record(st->lat, lat > 0 ? lat : 1);
    int64_t el = now - t->t0_mono;
    size_t sec = el > 0 ? (size_t)(el / NS_PER_S) : 0;
    if (sec < FX_SECS_MAX) {
        if (sec >= st->nsec) {
            size_t n = sec + 1 > st->nsec * 2 ? sec + 1 : st->nsec * 2;
            st->sec_ops = xrealloc(st->sec_ops, n * sizeof(*st->sec_ops));
            st->sec_bytes = xrealloc(st->sec_bytes, n * sizeof(*st->sec_bytes));
            memset(st->sec_ops + st->nsec, 0, (n - st->nsec) * sizeof(*st->sec_ops));
            memset(st->sec_bytes + st->nsec, 0, (n - st->nsec) * sizeof(*st->sec_bytes));
            st->nsec = n;
        }
        st->sec_ops[sec]++;
        st->sec_bytes[sec] += bytes;
    }
    if (t->prog) {
        atomic_fetch_add_explicit(&t->prog->bytes, bytes, memory_order_relaxed);
        if (op == FX_OP_READ)
            atomic_fetch_add_explicit(&t->prog->bytes_read, bytes, memory_order_relaxed);
        else if (op == FX_OP_WRITE)
            atomic_fetch_add_explicit(&t->prog->bytes_written, bytes, memory_order_relaxed);
        atomic_fetch_add_explicit(&t->prog->ops, 1, memory_order_relaxed);
        lg_live_record(&t->prog->lat, lat);
    }
}

/* What this task had done when the first task finished the phase: taken the
 * first time it sees that (or at its own end when it is the first). */
static void snapshot_first(struct task *t)
{
    for (int op = 0; op < FX_OP_COUNT; op++) {
        struct fx_opstat *st = &t->res->op[op];
        st->ops_first = st->ops;
        st->bytes_first = st->bytes;
    }
    t->noticed = true;
}

/* The phase's end for this task: its time, the coordinator told. */
static void phase_end(struct task *t, unsigned barrier, const bool *ops_used)
{
    int64_t end = mono_ns() - t->t0_mono;
    for (int op = 0; op < FX_OP_COUNT; op++)
        if (ops_used[op])
            t->res->op[op].end_ns = end;
    if (!t->noticed)
        snapshot_first(t);
    t->co->ops->done(t->co->ud, t->k, barrier, wall_ns());
}

/* Trims the per-second series to the seconds the phase lasted. */
static void trim_secs(struct fx_opstat *st)
{
    size_t n = (size_t)((st->end_ns + NS_PER_S - 1) / NS_PER_S);
    if (n < st->nsec)
        st->nsec = n;
}

/* ---- data phases ---------------------------------------------------------------------------- */

static bool rw_reads(enum fx_rw rw)
{
    return rw != FX_WRITE && rw != FX_RANDWRITE;
}

static bool rw_writes(enum fx_rw rw)
{
    return rw != FX_READ && rw != FX_RANDREAD;
}

static bool rw_random(enum fx_rw rw)
{
    return rw == FX_RANDREAD || rw == FX_RANDWRITE || rw == FX_RANDRW;
}

/* The operations a data phase of pattern rw performs (sync: with fsync options). */
static void phase_ops(const struct fx_spec *sp, enum fx_rw rw, bool used[FX_OP_COUNT])
{
    used[FX_OP_READ] |= rw_reads(rw);
    used[FX_OP_WRITE] |= rw_writes(rw);
    used[FX_OP_SYNC] |= rw_writes(rw) && (sp->fsync_every || sp->fdatasync_every || sp->end_fsync);
}

static int sync_fd(struct task *t, int fd, uint64_t f, bool data_only)
{
    int64_t a = mono_ns();
    int r = data_only ? fdatasync(fd) : fsync(fd);
    if (r < 0) {
        char *path = fx_file_path(t->sp, t->k, f);
        r = fail(t, err_class(errno), errno, "%s of %s: %s", data_only ? "fdatasync" : "fsync",
                 path, strerror(errno));
        free(path);
        return r;
    }
    int64_t b = mono_ns();
    account(t, FX_OP_SYNC, 0, b - a, b);
    return 0;
}

/* A completed request: errors, verification, accounting, syncs every N writes. */
static int complete(struct task *t, struct fx_io *io, int64_t now)
{
    const struct fx_spec *sp = t->sp;
    uint64_t f = t->slot_file[io->slot];
    int r = 0;
    if (io->res < 0 || (size_t)io->res != io->len) {
        char *path = fx_file_path(sp, t->k, f);
        if (io->res < 0)
            r = fail(t, err_class((int)-io->res), (int)-io->res, "%s of %s at offset %llu: %s",
                     io->write ? "write" : "read", path, (unsigned long long)io->offset,
                     strerror((int)-io->res));
        else
            r = fail(t, FX_E_SHORT, EIO,
                     "short %s of %s at offset %llu: %zd of %zu bytes (the file is shorter than "
                     "'size', or it was truncated)",
                     io->write ? "write" : "read", path, (unsigned long long)io->offset, io->res,
                     io->len);
        free(path);
    } else if (!io->write && sp->verify) {
        char why[160];
        if (fx_verify_check(io->buf, io->len, io->offset, why, sizeof(why)) < 0) {
            char *path = fx_file_path(sp, t->k, f);
            r = fail(t, FX_E_VERIFY, EILSEQ, "verify: %s, block at offset %llu: %s", path,
                     (unsigned long long)io->offset, why);
            free(path);
        }
    }
    if (sp->open_per_io)
        close(io->fd);
    if (r == 0)
        account(t, io->write ? FX_OP_WRITE : FX_OP_READ, io->len, now - io->t0, now);
    if (r == 0 && io->write && (sp->fsync_every || sp->fdatasync_every) && !sp->open_per_io) {
        uint64_t every = sp->fsync_every ? sp->fsync_every : sp->fdatasync_every;
        if (++t->writes_since_sync >= every) {
            t->writes_since_sync = 0;
            r = sync_fd(t, t->fds[f], f, !sp->fsync_every);
        }
    }
    t->free_slots[t->nfree++] = io->slot;
    return r;
}

/* Reaps at least min completions. */
static int reap(struct task *t, unsigned min, unsigned *inflight)
{
    struct fx_io *done[64];
    int r = 0;
    do {
        int n = t->eng.ops->reap(&t->eng, min, done, SONDE_ARRAY_LEN(done));
        if (n < 0)
            return fail(t, FX_E_OTHER, -n, "%s: waiting for completions: %s", t->eng.ops->name,
                        strerror(-n));
        int64_t now = mono_ns();
        for (int i = 0; i < n; i++) {
            int c = complete(t, done[i], now);
            r = r ? r : c;
        }
        *inflight -= (unsigned)n;
        min = min > (unsigned)n ? min - (unsigned)n : 0;
    } while (min > 0);
    return r;
}

/* The order of the task's blocks in an epoch. */
struct order {
    struct fx_space s;
    struct fx_perm perm;
    bool random, repeat;
    uint64_t i;
};

static void order_epoch(struct task *t, struct order *o, unsigned epoch)
{
    o->i = 0;
    if (o->random && !o->repeat)
        fx_perm_init(&o->perm, o->s.n ? o->s.n : 1,
                     t->sp->seed ^ ((uint64_t)t->k << 40) ^ ((uint64_t)epoch << 20) ^ 0xF11E);
}

static void order_next(struct task *t, struct order *o, uint64_t *file, uint64_t *block)
{
    uint64_t j = !o->random  ? o->i
                 : o->repeat ? rng_next(&t->rng) % o->s.n
                             : fx_perm_at(&o->perm, o->i);
    o->i++;
    fx_space_block(&o->s, j, file, block);
}

/* Issues one request for the next block. */
static int issue(struct task *t, struct order *o, enum fx_rw rw)
{
    const struct fx_spec *sp = t->sp;
    uint64_t f, b;
    order_next(t, o, &f, &b);
    bool write = rw == FX_WRITE || rw == FX_RANDWRITE ||
                 ((rw == FX_RW || rw == FX_RANDRW) && rng_next(&t->rng) % 100 >= sp->rwmix_read);
    int fd, r = fd_of(t, f, &fd);
    if (r < 0)
        return r;
    unsigned slot = t->free_slots[--t->nfree];
    struct fx_io *io = &t->ios[slot];
    *io = (struct fx_io){.fd = fd,
                         .write = write,
                         .buf = t->bufs[slot],
                         .len = sp->bs,
                         .offset = b * sp->bs,
                         .slot = slot};
    t->slot_file[slot] = f;
    if (write && sp->verify)
        fx_verify_fill(io->buf, io->len, io->offset, t->k, t->wseq++, sp->seed);
    io->t0 = mono_ns();
    r = t->eng.ops->queue(&t->eng, io);
    if (r < 0) {
        t->free_slots[t->nfree++] = slot;
        return fail(t, FX_E_OTHER, -r, "%s: cannot queue a request: %s", t->eng.ops->name,
                    strerror(-r));
    }
    return 0;
}

/* Whether the phase goes on: no abort, no stonewall stop, time left. */
static bool keep_going(struct task *t, unsigned barrier, int64_t deadline)
{
    if (t->co->ops->aborted(t->co->ud))
        return false;
    int64_t first = t->co->ops->first_done(t->co->ud, barrier);
    if (first && !t->noticed)
        snapshot_first(t);
    if (first && t->sp->stonewall)
        return false;
    return !deadline || mono_ns() < deadline;
}

/* end_fsync: every file this task wrote reaches stable storage (timed: part of
 * the phase, as a checkpoint is not done before it is durable). */
static int end_sync(struct task *t)
{
    int r = 0;
    for (uint64_t f = 0; f < t->nfiles && r == 0; f++)
        if (t->fds[f] >= 0)
            r = sync_fd(t, t->fds[f], f, false);
    return r;
}

/* Files deleted while the run had them open are an error (nlink 0). */
static int check_deleted(struct task *t)
{
    for (uint64_t f = 0; f < t->nfiles; f++) {
        struct stat st;
        if (t->fds[f] >= 0 && fstat(t->fds[f], &st) == 0 && st.st_nlink == 0) {
            char *path = fx_file_path(t->sp, t->k, f);
            int r = fail(t, FX_E_DELETED, ENOENT, "%s was deleted during the run", path);
            free(path);
            return r;
        }
    }
    return 0;
}

static void maybe_drop_caches(struct task *t, enum fx_rw rw)
{
    char err[200];
    if (!rw_reads(rw) || t->sp->direct || !t->sp->drop_caches || !t->leader)
        return;
    if (fx_drop_caches(err, sizeof(err)) < 0)
        t->res->cache_kept = true;
}

static int data_phase(struct task *t, unsigned p)
{
    const struct fx_spec *sp = t->sp;
    enum fx_rw rw = sp->phase[p];
    bool used[FX_OP_COUNT] = {false};
    phase_ops(sp, rw, used);
    struct order o = {.random = rw_random(rw), .repeat = sp->random_repeat};
    fx_space_init(&o.s, sp->layout, sp->files, sp->file_size / sp->bs, t->k, t->n);
    maybe_drop_caches(t, rw);
    unsigned barrier;
    int r = phase_begin(t, used, &barrier);
    if (r < 0)
        return r;
    int64_t deadline = sp->duration_ns ? t->t0_mono + sp->duration_ns : 0;
    unsigned inflight = 0;
    for (unsigned e = 0; r == 0 && o.s.n && (deadline || e < sp->epochs); e++) {
        order_epoch(t, &o, e);
        while (r == 0 && o.i < o.s.n && keep_going(t, barrier, deadline)) {
            if (inflight == t->depth)
                r = reap(t, 1, &inflight);
            if (r == 0 && (r = issue(t, &o, rw)) == 0)
                inflight++;
            if (r == 0 && sp->engine->max_depth == 1) /* psync: done in queue */
                r = reap(t, 1, &inflight);
        }
        if (r == 0 && deadline && !keep_going(t, barrier, deadline))
            break;
    }
    if (inflight) {
        int d = reap(t, inflight, &inflight);
        r = r ? r : d;
    }
    if (r == 0 && rw_writes(rw) && sp->end_fsync && !sp->open_per_io)
        r = end_sync(t);
    phase_end(t, barrier, used);
    for (int op = 0; op < FX_OP_COUNT; op++)
        if (used[op])
            trim_secs(&t->res->op[op]);
    return r ? r : check_deleted(t);
}

/* ---- metadata phases ------------------------------------------------------------------------ */

static const enum fx_op md_op[FX_MD_COUNT] = {FX_OP_CREATE, FX_OP_STAT, FX_OP_OPEN, FX_OP_READ,
                                              FX_OP_DELETE};

static char *md_dir(const struct fx_spec *sp, unsigned task)
{
    if (sp->md_shared_dir)
        return xasprintf("%s/sonde-md.shared", sp->dir);
    return xasprintf("%s/sonde-md.%u", sp->dir, task);
}

/* One metadata operation on file i; bytes moved in *bytes. */
static int md_one(struct task *t, enum fx_md m, const char *path, unsigned char *buf,
                  uint64_t *bytes)
{
    const struct fx_spec *sp = t->sp;
    int fd = -1, r = 0;
    *bytes = 0;
    switch (m) {
    case FX_MD_CREATE:
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0 && sp->md_size) {
            ssize_t w = write(fd, buf, sp->md_size);
            r = w == (ssize_t)sp->md_size ? 0 : w < 0 ? -errno : -EIO;
            *bytes = r == 0 ? sp->md_size : 0;
        }
        break;
    case FX_MD_STAT: {
        struct stat st;
        r = stat(path, &st) < 0 ? -errno : 0;
        break;
    }
    case FX_MD_OPEN:
        fd = open(path, O_RDONLY | O_CLOEXEC);
        break;
    case FX_MD_READ:
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && sp->md_size) {
            ssize_t got = read(fd, buf, sp->md_size);
            r = got == (ssize_t)sp->md_size ? 0 : got < 0 ? -errno : -EIO;
            *bytes = r == 0 ? sp->md_size : 0;
        }
        break;
    case FX_MD_DELETE:
        r = unlink(path) < 0 ? -errno : 0;
        break;
    default:
        return -EINVAL;
    }
    if (m != FX_MD_STAT && m != FX_MD_DELETE && fd < 0)
        r = -errno;
    if (fd >= 0 && close(fd) < 0 && r == 0)
        r = -errno;
    return r;
}

static int md_phase(struct task *t, enum fx_md m, unsigned char *buf, uint64_t *created)
{
    const struct fx_spec *sp = t->sp;
    bool used[FX_OP_COUNT] = {false};
    used[md_op[m]] = true;
    unsigned barrier;
    int r = phase_begin(t, used, &barrier);
    if (r < 0)
        return r;
    char *dir = md_dir(sp, t->k);
    uint64_t n = m == FX_MD_CREATE ? sp->md_files : *created;
    for (uint64_t i = 0; i < n && r == 0 && keep_going(t, barrier, 0); i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/f.%u.%llu", dir, t->k, (unsigned long long)i);
        uint64_t bytes;
        int64_t a = mono_ns();
        int e = md_one(t, m, path, buf, &bytes);
        int64_t b = mono_ns();
        if (e < 0)
            r = fail(t, e == -EIO ? FX_E_SHORT : err_class(-e), -e, "%s %s: %s", fx_md_names[m],
                     path, e == -EIO ? "fewer bytes than md_size" : strerror(-e));
        else
            account(t, md_op[m], bytes, b - a, b);
        if (e == 0 && m == FX_MD_CREATE)
            *created = i + 1;
    }
    phase_end(t, barrier, used);
    trim_secs(&t->res->op[md_op[m]]);
    free(dir);
    return r;
}

/* Removes what the metadata phases left (files not deleted, the directory). */
static void md_cleanup(struct task *t, uint64_t created)
{
    char *dir = md_dir(t->sp, t->k);
    for (uint64_t i = 0; i < created && !t->sp->keep_files; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/f.%u.%llu", dir, t->k, (unsigned long long)i);
        unlink(path);
    }
    if (!t->sp->keep_files)
        rmdir(dir); /* a shared one goes with its last task */
    free(dir);
}

static int metadata(struct task *t)
{
    const struct fx_spec *sp = t->sp;
    char *dir = md_dir(sp, t->k);
    int r = 0;
    if (mkdir(dir, 0755) < 0 && !(errno == EEXIST && sp->md_shared_dir))
        r = fail(t, err_class(errno), errno, "cannot create %s: %s", dir, strerror(errno));
    free(dir);
    unsigned barrier;
    int64_t t0;
    int b = wait_barrier(t, &barrier, &t0);
    r = r ? r : b;
    unsigned char *buf = xmalloc(sp->md_size ? sp->md_size : 1);
    for (uint64_t i = 0; i < sp->md_size; i++)
        buf[i] = (unsigned char)(rng_next(&t->rng) >> 56);
    uint64_t created = 0;
    for (int m = 0; m < FX_MD_COUNT && r == 0; m++)
        if (sp->md_phases & (1u << m))
            r = md_phase(t, (enum fx_md)m, buf, &created);
    md_cleanup(t, created);
    free(buf);
    return r;
}

/* ---- a task from start to end --------------------------------------------------------------- */

#define FX_HUGE ((size_t)2 << 20)

/* The queue's buffers in one mapping aligned to 2 MiB and marked for
 * transparent huge pages: a 1 MiB direct read into 4 KiB pages needs 256
 * segments, more than many devices take in one request (virtio: 254), so
 * it is split in two; in a huge page it is one segment (measured here: 2.0
 * instead of 1.0 GiB/s for 1 MiB reads). fio's buffers get the same. */
static int map_buffers(struct task *t)
{
    size_t each = (t->sp->bs + FX_ALIGN - 1) / FX_ALIGN * FX_ALIGN;
    size_t need = each * t->depth, len = (need + FX_HUGE - 1) / FX_HUGE * FX_HUGE;
    unsigned char *raw =
        mmap(NULL, len + FX_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return -ENOMEM;
    t->area = raw;
    t->area_len = len + FX_HUGE;
    unsigned char *base =
        (unsigned char *)(((uintptr_t)raw + FX_HUGE - 1) & ~(uintptr_t)(FX_HUGE - 1));
    (void)madvise(base, len, MADV_HUGEPAGE); /* a hint: 4 KiB pages work too */
    for (unsigned i = 0; i < t->depth; i++)
        t->bufs[i] = base + (size_t)i * each;
    return 0;
}

static int setup(struct task *t)
{
    const struct fx_spec *sp = t->sp;
    char err[256] = "";
    t->depth = sp->depth ? sp->depth : 1;
    t->eng.ops = sp->engine;
    if (!sp->engine->built)
        return fail(t, FX_E_OTHER, ENOTSUP, "engine %s is not in this build of sonde",
                    sp->engine->name);
    int r = sp->engine->init(&t->eng, t->depth, err, sizeof(err));
    if (r < 0)
        return fail(t, FX_E_OTHER, -r, "engine %s: %s", sp->engine->name, err);
    t->eng_ok = true;
    t->bufs = xcalloc(t->depth, sizeof(*t->bufs));
    t->ios = xcalloc(t->depth, sizeof(*t->ios));
    t->slot_file = xcalloc(t->depth, sizeof(*t->slot_file));
    t->free_slots = xcalloc(t->depth, sizeof(*t->free_slots));
    if (map_buffers(t) < 0)
        return fail(t, FX_E_OTHER, ENOMEM, "cannot map %u buffers of %llu bytes", t->depth,
                    (unsigned long long)sp->bs);
    for (unsigned i = 0; i < t->depth; i++) {
        for (uint64_t b = 0; b < sp->bs; b += 8) { /* data that does not compress */
            uint64_t x = rng_next(&t->rng);
            memcpy(t->bufs[i] + b, &x, sp->bs - b < 8 ? sp->bs - b : 8);
        }
        t->free_slots[t->nfree++] = i;
    }
    return 0;
}

/* Closes the files; removes those the run created (shared ones: task 0,
 * after the end barrier), unless keep_files. */
static void data_cleanup(struct task *t)
{
    for (uint64_t f = 0; f < t->nfiles; f++) {
        if (t->fds[f] >= 0)
            close(t->fds[f]);
        t->fds[f] = -1;
        if (t->created[f] && !t->sp->keep_files) {
            char *path = fx_file_path(t->sp, t->k, f);
            unlink(path);
            free(path);
        }
    }
}

static void task_free(struct task *t)
{
    if (t->eng_ok)
        t->eng.ops->exit(&t->eng);
    if (t->area)
        munmap(t->area, t->area_len);
    free(t->bufs);
    free(t->ios);
    free(t->slot_file);
    free(t->free_slots);
    free(t->fds);
    free(t->created);
}

int fx_task_run(const struct fx_spec *spec, const struct fx_coord *coord, unsigned task,
                unsigned ntasks, bool leader, struct fx_progress *prog, struct fx_result *res)
{
    memset(res, 0, sizeof(*res));
    struct task t = {.sp = spec,
                     .co = coord,
                     .k = task,
                     .n = ntasks,
                     .leader = leader,
                     .prog = prog,
                     .res = res};
    rng_seed(&t.rng, spec->seed ^ ((uint64_t)task * 0x9E3779B97F4A7C15ULL));
    int r = 0;
    if (spec->metadata) {
        r = metadata(&t);
    } else {
        t.nfiles = spec->files;
        t.fds = xmalloc(t.nfiles * sizeof(*t.fds));
        t.created = xcalloc(t.nfiles, sizeof(*t.created));
        for (uint64_t f = 0; f < t.nfiles; f++)
            t.fds[f] = -1;
        r = setup(&t);
        if (r == 0)
            r = layout(&t);
        else { /* the others wait for it at the setup barrier */
            unsigned b;
            int64_t t0;
            wait_barrier(&t, &b, &t0);
        }
        for (unsigned p = 0; p < spec->nphases && r == 0; p++) {
            if (prog)
                atomic_store(&prog->phase, p);
            r = data_phase(&t, p);
        }
    }
    /* nobody uses a shared file any more once everybody is here */
    unsigned b;
    int64_t t0;
    int e = r == 0 ? wait_barrier(&t, &b, &t0) : 0;
    r = r ? r : e;
    if (!spec->metadata)
        data_cleanup(&t);
    task_free(&t);
    return r;
}

void fx_result_free(struct fx_result *res)
{
    for (int op = 0; op < FX_OP_COUNT; op++) {
        hdr_free(res->op[op].lat);
        free(res->op[op].sec_ops);
        free(res->op[op].sec_bytes);
    }
    memset(res, 0, sizeof(*res));
}

/* ---- results as stats extras ---------------------------------------------------------------- */

static int put_op(struct lg_stats *s, const char *op, const struct fx_opstat *st)
{
    char name[LG_EXTRA_NAME_MAX + 1];
#define NAME(what) (snprintf(name, sizeof(name), "%s_%s", op, what), name)
    int r = lg_extra_add_counter(s, NAME("ops"), st->ops);
    r = r ? r : lg_extra_add_counter(s, NAME("bytes"), st->bytes);
    r = r ? r : lg_extra_add_counter(s, NAME("ops_first"), st->ops_first);
    r = r ? r : lg_extra_add_counter(s, NAME("bytes_first"), st->bytes_first);
    struct hdr *h = NULL;
    r = r ? r : hdr_init(1, FX_HDR_MAX, 3, &h);
    if (r == 0 && st->lat)
        hdr_merge(h, st->lat);
    r = r ? r : lg_extra_add_hdr(s, NAME("latency"), h);
    r = r ? r : lg_extra_add_secs(s, NAME("ops_s"), st->sec_ops, st->nsec);
    r = r ? r : lg_extra_add_secs(s, NAME("bytes_s"), st->sec_bytes, st->nsec);
    /* a phase this task never began leaves the others' times as they are */
    r = r ? r
          : lg_extra_add_bound(s, NAME("t0_wall"), LG_EXTRA_MIN,
                               st->used ? st->t0_wall : INT64_MAX);
    r = r ? r
          : lg_extra_add_bound(s, NAME("first_ns"), LG_EXTRA_MIN,
                               st->used ? st->end_ns : INT64_MAX);
    r = r ? r : lg_extra_add_bound(s, NAME("last_ns"), LG_EXTRA_MAX, st->used ? st->end_ns : 0);
#undef NAME
    return r;
}

void fx_spec_ops(const struct fx_spec *sp, bool used[FX_OP_COUNT])
{
    for (int op = 0; op < FX_OP_COUNT; op++)
        used[op] = false;
    for (int m = 0; sp->metadata && m < FX_MD_COUNT; m++)
        if (sp->md_phases & (1u << m))
            used[md_op[m]] = true;
    for (unsigned p = 0; !sp->metadata && p < sp->nphases; p++)
        phase_ops(sp, sp->phase[p], used);
}

int fx_result_stats(const struct fx_spec *spec, const struct fx_result *res, struct lg_stats **out)
{
    bool used[FX_OP_COUNT];
    fx_spec_ops(spec, used);
    struct lg_stats *s = xcalloc(1, sizeof(*s));
    int r = hdr_init(1, FX_HDR_MAX, 3, &s->latency);
    r = r ? r : hdr_init(1, FX_HDR_MAX, 3, &s->service);
    int64_t start = INT64_MAX, end = 0;
    for (int op = 0; op < FX_OP_COUNT && r == 0; op++) {
        const struct fx_opstat *st = &res->op[op];
        if (!used[op]) /* every task names the same operations, begun or not */
            continue;
        s->requests += st->ops;
        s->ok += st->ops;
        if (st->lat) {
            hdr_merge(s->latency, st->lat);
            hdr_merge(s->service, st->lat);
        }
        if (st->used) {
            start = st->t0_wall < start ? st->t0_wall : start;
            end = st->t0_wall + st->end_ns > end ? st->t0_wall + st->end_ns : end;
        }
        r = put_op(s, fx_op_names[op], st);
    }
    for (int e = 0; e < FX_E_COUNT && r == 0; e++) {
        char name[64];
        snprintf(name, sizeof(name), "errors_%s", fx_err_names[e]);
        r = lg_extra_add_counter(s, name, res->errors[e]);
        s->requests += res->errors[e];
        s->errors[LG_ERR_READ] += res->errors[e]; /* the engine's class nearest to a file error */
    }
    r = r ? r : lg_extra_add_counter(s, "cache_kept", res->cache_kept);
    s->window_start_wall_ns = start == INT64_MAX ? 0 : start;
    s->window_ns = start == INT64_MAX ? 0 : end - start;
    s->achieved_rate = s->window_ns > 0 ? (double)s->requests * 1e9 / (double)s->window_ns : 0;
    if (r < 0) {
        lg_stats_free(s);
        return r;
    }
    *out = s;
    return 0;
}
