/* fileio.c — the `fileio` client: file-system bandwidth, IOPS, latency and
 * metadata rates, measured by sonde's own tasks (src/fileio/: layouts,
 * engines, verify blocks, coordination). Inside sonde the tasks are threads;
 * on a batch backend with `resources:` the client fans out (fanout.h): every
 * job task runs `tasks` threads and the tasks of all nodes meet through files
 * on the file system under test. Options and metrics: docs/storage.md. */
#include "drivers/clients/client_common.h"
#include "drivers/clients/fanout.h"

#include "core/session.h"
#include "fileio/fsinfo.h"
#include "fileio/task.h"
#include "loadgen/stats_file.h"
#include "util/hdr.h"
#include "util/units.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define FX_TASKS_MAX 1024
#define FX_DEPTH_MAX 4096
#define FX_NS_PER_S  1000000000LL
#define MIB          1048576.0

static const char *const workloads[] = {"data", "metadata", NULL};
static const char *const layouts[] = {"file-per-task", "segmented", "strided", NULL};
static const char *const engines[] = {"psync", "io_uring", NULL};
static const char *const opens[] = {"once", "per_io", NULL};
static const char *const md_dirs[] = {"per-task", "shared", NULL};

static const struct opt_def fx_opts[] = {
    {"path", OPT_STR, true, NULL, "the directory the files go in (it must exist)", NULL, NULL},
    {"prepare", OPT_ARGV_LIST, false, NULL,
     "commands run first, in order (e.g. mkdir, lfs setstripe); on a batch backend once, in the "
     "job, before its tasks",
     NULL, NULL},
    {"prepare_timeout", OPT_DURATION, false, "5m", "limit for each prepare command", NULL, NULL},
    {"workload", OPT_ENUM, false, "data",
     "data: reads and writes of blocks; metadata: create, stat, open, read, delete of small "
     "files (mdtest-like)",
     workloads, NULL},
    {"rw", OPT_ENUM, false, "read", "the access pattern (fio's names)", fx_rw_names, NULL},
    {"phases", OPT_STR_LIST, false, NULL,
     "instead of rw: several patterns measured one after the other, e.g. [write, read] (a "
     "checkpoint and its read-back); no two may do the same operation",
     NULL, NULL},
    {"rwmix_read", OPT_INT, false, "50", "rw and randrw: percent of the operations that read", NULL,
     NULL},
    {"bs", OPT_SIZE, false, "4KiB", "block size of every read and write", NULL, NULL},
    {"size", OPT_SIZE, false, NULL, "data: the size of each file (a multiple of bs; required)",
     NULL, NULL},
    {"files", OPT_INT, false, "1",
     "files per task (file-per-task), or shared by all tasks (segmented, strided)", NULL, NULL},
    {"layout", OPT_ENUM, false, "file-per-task",
     "file-per-task, or files shared by the tasks: segmented (each task a contiguous part) or "
     "strided (block i belongs to task i mod tasks), as IOR",
     layouts, NULL},
    {"tasks", OPT_INT, false, "1",
     "tasks (threads) in each sonde process; with resources on a batch backend, every job task "
     "runs this many",
     NULL, NULL},
    {"engine", OPT_ENUM, false, "psync", "psync (pread/pwrite) or io_uring", engines, NULL},
    {"iodepth", OPT_INT, false, "1", "requests in flight per task (io_uring)", NULL, NULL},
    {"direct", OPT_BOOL, false, "false", "O_DIRECT: bypass the page cache", NULL, NULL},
    {"fsync", OPT_INT, false, "0", "fsync after every N writes (0: never)", NULL, NULL},
    {"fdatasync", OPT_INT, false, "0", "fdatasync after every N writes (0: never)", NULL, NULL},
    {"end_fsync", OPT_BOOL, false, "false",
     "fsync every written file at the end of a write phase, inside its time", NULL, NULL},
    {"fallocate", OPT_BOOL, false, "true", "allocate files before a write phase (not counted)",
     NULL, NULL},
    {"duration", OPT_DURATION, false, NULL,
     "each phase runs this long (passes over the blocks repeat); absent: `epochs` passes", NULL,
     NULL},
    {"epochs", OPT_INT, false, "1", "passes over each task's blocks per phase", NULL, NULL},
    {"random_repeat", OPT_BOOL, false, "false",
     "random patterns may visit a block twice in a pass (default: each block once)", NULL, NULL},
    {"open", OPT_ENUM, false, "once",
     "once: files stay open; per_io: open, read or write, close for every I/O (a data loader's "
     "samples)",
     opens, NULL},
    {"verify", OPT_BOOL, false, "false",
     "written blocks carry a header and a checksum; reads check them, and a write phase is read "
     "back and checked",
     NULL, NULL},
    {"stonewall", OPT_BOOL, false, "false",
     "stop every task of a phase when the first one finishes", NULL, NULL},
    {"drop_caches", OPT_BOOL, false, "true",
     "drop the page cache before a phase that reads (as root; otherwise a warning)", NULL, NULL},
    {"space_check", OPT_BOOL, false, "true",
     "refuse to start when the files need more space than is free", NULL, NULL},
    {"keep_files", OPT_BOOL, false, "false", "leave the files the run created", NULL, NULL},
    {"seed", OPT_INT, false, "1", "seed of random orders and mixes", NULL, NULL},
    {"md_files", OPT_INT, false, "1000", "metadata: files per task", NULL, NULL},
    {"md_size", OPT_SIZE, false, "0", "metadata: bytes written at create, read back by read", NULL,
     NULL},
    {"md_dir", OPT_ENUM, false, "per-task", "metadata: a directory per task, or one shared",
     md_dirs, NULL},
    {"md_phases", OPT_STR_LIST, false, "[create, stat, open, read, delete]",
     "metadata: the phases, in this order (create first)", NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

/* ---- options ------------------------------------------------------------------------------ */

static int enum_index(const char *const *names, const char *s)
{
    for (int i = 0; s && names[i]; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

static int opt_size(struct comp *c, const char *key, const char *def, uint64_t *out)
{
    const char *s = cl_opt_text(c->spec->with, key);
    int64_t v = 0;
    if (!s)
        s = def;
    if (s && (parse_size_bytes(s, &v) < 0 || v < 0)) {
        comp_set_reason(c, "option '%s': expected a size like 4KiB or 1GiB, got '%s'", key, s);
        return -EINVAL;
    }
    *out = (uint64_t)v;
    return 0;
}

static int opt_u(struct comp *c, const char *key, int64_t def, int64_t lo, int64_t hi,
                 uint64_t *out)
{
    int64_t v;
    int r = cl_opt_int(c, key, def, lo, hi, &v);
    if (r == 0)
        *out = (uint64_t)v;
    return r;
}

/* The phases: `phases` or `rw`. */
static int read_phases(struct comp *c, struct fx_spec *sp)
{
    const struct sv *list = sv_get(c->spec->with, "phases");
    if (!list) {
        int i = enum_index(fx_rw_names, sv_str(c->spec->with, "rw", "read"));
        sp->phase[0] = (enum fx_rw)(i < 0 ? 0 : i);
        sp->nphases = 1;
        return 0;
    }
    for (size_t k = 0; k < list->n; k++) {
        const struct sv *v = list->kids[k];
        int i = v->kind == SV_SCALAR ? enum_index(fx_rw_names, v->str) : -1;
        if (i < 0 || k >= FX_PHASES_MAX) {
            comp_set_reason(c, "option 'phases': %s",
                            i < 0 ? "each one of read, write, "
                                    "randread, randwrite, rw, randrw"
                                  : "at most 4 phases");
            return -EINVAL;
        }
        sp->phase[sp->nphases++] = (enum fx_rw)i;
    }
    return 0;
}

static int read_md(struct comp *c, struct fx_spec *sp)
{
    const struct sv *w = c->spec->with, *list = sv_get(w, "md_phases");
    int r = opt_u(c, "md_files", 1000, 1, 1LL << 40, &sp->md_files);
    r = r ? r : opt_size(c, "md_size", "0", &sp->md_size);
    sp->md_shared_dir = !strcmp(sv_str(w, "md_dir", "per-task"), "shared");
    sp->md_phases = list ? 0 : (1u << FX_MD_COUNT) - 1;
    for (size_t k = 0; r == 0 && list && k < list->n; k++) {
        const struct sv *v = list->kids[k];
        int i = v->kind == SV_SCALAR ? enum_index(fx_md_names, v->str) : -1;
        if (i < 0) {
            comp_set_reason(c, "option 'md_phases': each one of create, stat, open, read, delete");
            r = -EINVAL;
        } else
            sp->md_phases |= 1u << i;
    }
    if (r == 0 && !(sp->md_phases & 1u)) {
        comp_set_reason(c, "option 'md_phases': the other phases need 'create' first");
        r = -EINVAL;
    }
    return r;
}

/* Reads every option into *sp and the task count into *tasks (reason set on error). */
static int fx_spec_read(struct comp *c, struct fx_spec *sp, unsigned *tasks)
{
    const struct sv *w = c->spec->with;
    uint64_t v = 0;
    memset(sp, 0, sizeof(*sp));
    sp->dir = xstrdup(sv_str(w, "path", ""));
    sp->metadata = !strcmp(sv_str(w, "workload", "data"), "metadata");
    int r = opt_u(c, "tasks", 1, 1, FX_TASKS_MAX, &v);
    *tasks = (unsigned)v;
    r = r ? r : cl_opt_bool(c, "keep_files", false, &sp->keep_files);
    r = r ? r : opt_u(c, "seed", 1, INT64_MIN, INT64_MAX, &sp->seed);
    r = r ? r : cl_opt_bool(c, "stonewall", false, &sp->stonewall);
    r = r ? r : cl_opt_bool(c, "drop_caches", true, &sp->drop_caches);
    if (r || sp->metadata)
        return r ? r : read_md(c, sp);
    r = read_phases(c, sp);
    r = r ? r : opt_u(c, "rwmix_read", 50, 0, 100, &v);
    sp->rwmix_read = (unsigned)v;
    r = r ? r : opt_size(c, "bs", "4KiB", &sp->bs);
    r = r ? r : opt_size(c, "size", NULL, &sp->file_size);
    r = r ? r : opt_u(c, "files", 1, 1, 1LL << 30, &sp->files);
    r = r ? r : opt_u(c, "iodepth", 1, 1, FX_DEPTH_MAX, &v);
    sp->depth = (unsigned)v;
    r = r ? r : cl_opt_bool(c, "direct", false, &sp->direct);
    r = r ? r : opt_u(c, "fsync", 0, 0, INT64_MAX, &sp->fsync_every);
    r = r ? r : opt_u(c, "fdatasync", 0, 0, INT64_MAX, &sp->fdatasync_every);
    r = r ? r : cl_opt_bool(c, "end_fsync", false, &sp->end_fsync);
    r = r ? r : cl_opt_bool(c, "fallocate", true, &sp->fallocate);
    r = r ? r : cl_opt_dur(c, w, "duration", NULL, &sp->duration_ns);
    r = r ? r : opt_u(c, "epochs", 1, 1, 1000000, &v);
    sp->epochs = (unsigned)v;
    r = r ? r : cl_opt_bool(c, "random_repeat", false, &sp->random_repeat);
    r = r ? r : cl_opt_bool(c, "verify", false, &sp->verify);
    if (r)
        return r;
    sp->layout = (enum fx_layout)enum_index(layouts, sv_str(w, "layout", "file-per-task"));
    sp->engine = fx_engine_find(sv_str(w, "engine", "psync"));
    sp->open_per_io = !strcmp(sv_str(w, "open", "once"), "per_io");
    if (!sp->file_size || !sp->bs || sp->file_size % sp->bs) {
        comp_set_reason(c, "options 'size' and 'bs': %s",
                        !sp->file_size ? "'size' (of each file) is required"
                                       : "'size' must be a whole number of blocks of 'bs'");
        return -EINVAL;
    }
    if (!sp->engine || !sp->engine->built) {
        comp_set_reason(c, "option 'engine': %s is not in this build of sonde",
                        sv_str(w, "engine", "?"));
        return -EINVAL;
    }
    if (sp->depth > sp->engine->max_depth) {
        comp_set_reason(c, "option 'iodepth': engine %s holds at most %u request%s in flight",
                        sp->engine->name, sp->engine->max_depth,
                        sp->engine->max_depth == 1 ? "" : "s");
        return -EINVAL;
    }
    return 0;
}

static void fx_spec_clear(struct fx_spec *sp)
{
    free(sp->dir);
    sp->dir = NULL;
}

/* ---- the run inside sonde: tasks as threads ------------------------------------------------ */

struct fx_state;

struct fx_thread {
    struct fx_state *st;
    unsigned index; /* among this process's tasks */
    pthread_t tid;
    bool started;
    struct fx_result res;
    struct fx_progress prog; /* this task's own counters: tasks do not add to the same ones */
    int rc;
};

struct fx_state {
    struct fx_spec spec;
    unsigned tasks;  /* threads in this process */
    unsigned first;  /* the global index of the first */
    unsigned ntasks; /* tasks of the whole run */
    struct fx_thread *th;
    struct fx_local_coord *lc;
    struct fx_file_coord *fc;
    struct fx_coord coord;
    _Atomic unsigned running;
    int64_t fanout; /* batch backend: processes of the agent job (0: the tasks run in sonde) */
    int64_t status_at, last_bytes, last_at;
    bool joined;
};

static void *fx_thread_main(void *arg)
{
    struct fx_thread *th = arg;
    struct fx_state *st = th->st;
    th->rc = fx_task_run(&st->spec, &st->coord, st->first + th->index, st->ntasks, th->index == 0,
                         &th->prog, &th->res);
    atomic_fetch_sub(&st->running, 1);
    return NULL;
}

/* Starts st->tasks threads; *why when one cannot be created. */
static int fx_spawn(struct fx_state *st, char *why, size_t n)
{
    st->th = xcalloc(st->tasks, sizeof(*st->th));
    atomic_store(&st->running, st->tasks);
    for (unsigned i = 0; i < st->tasks; i++) {
        st->th[i] = (struct fx_thread){.st = st, .index = i};
        int e = pthread_create(&st->th[i].tid, NULL, fx_thread_main, &st->th[i]);
        if (e) {
            snprintf(why, n, "cannot start task %u: %s", i, strerror(e));
            st->coord.ops->abort(st->coord.ud);
            atomic_fetch_sub(&st->running, st->tasks - i);
            return -e;
        }
        st->th[i].started = true;
    }
    return 0;
}

static void fx_join(struct fx_state *st)
{
    for (unsigned i = 0; st->th && i < st->tasks && !st->joined; i++)
        if (st->th[i].started)
            pthread_join(st->th[i].tid, NULL);
    st->joined = true;
}

/* This process's tasks' results merged into *out; the first error in why. */
static int fx_merge_threads(struct fx_state *st, struct lg_stats **out, char *why, size_t n)
{
    struct lg_stats **parts = xcalloc(st->tasks, sizeof(*parts));
    int r = 0;
    why[0] = '\0';
    for (unsigned i = 0; i < st->tasks && r == 0; i++) {
        struct fx_thread *th = &st->th[i];
        if (!why[0] && th->res.error[0])
            snprintf(why, n, "task %u: %s", st->first + i, th->res.error);
        r = fx_result_stats(&st->spec, &th->res, &parts[i]);
    }
    char err[256] = "";
    if (r == 0 && (r = lg_stats_merge(parts, st->tasks, out, err, sizeof(err))) < 0 && !why[0])
        snprintf(why, n, "merging the tasks' results: %s", err);
    for (unsigned i = 0; i < st->tasks; i++)
        lg_stats_free(parts[i]);
    free(parts);
    return r;
}

/* Raises the soft descriptor limit to the hard one (many files open). */
static void fx_more_fds(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The file system under the path, in the session's provenance, and whether
 * the run fits in it. */
static int fx_check_path(struct comp *c, const struct fx_spec *sp, unsigned ntasks, bool check)
{
    struct stat stb;
    if (stat(sp->dir, &stb) < 0 || !S_ISDIR(stb.st_mode)) {
        comp_set_reason(c, "option 'path': %s: %s", sp->dir,
                        errno && !S_ISDIR(stb.st_mode) ? strerror(errno) : "not a directory");
        return -ENOENT;
    }
    struct fx_fsinfo fi;
    if (fx_fs_describe(sp->dir, &fi) < 0)
        return 0;
    char freeb[32], total[32];
    format_size((int64_t)fi.free_bytes, freeb, sizeof(freeb));
    format_size((int64_t)fi.total_bytes, total, sizeof(total));
    char *desc = xasprintf("%s %s on %s (%s); %s free of %s", fi.type, fi.source, fi.mount,
                           fi.options, freeb, total);
    comp_provenance(c, "fs", desc);
    free(desc);
    uint64_t need = fx_space_needed(sp, ntasks);
    if (check && fi.total_bytes && need > fi.free_bytes) { /* total 0: the fs does not say */
        char needb[32];
        format_size((int64_t)need, needb, sizeof(needb));
        comp_set_reason(c,
                        "the files need %s but %s has %s free (%s at %s): make 'size', 'files' "
                        "or 'tasks' smaller, or set space_check: false",
                        needb, sp->dir, freeb, fi.type, fi.mount);
        return -ENOSPC;
    }
    return 0;
}

static int fx_start(struct comp *c)
{
    struct fx_state *st = xcalloc(1, sizeof(*st));
    c->priv = st;
    int r = fx_spec_read(c, &st->spec, &st->tasks);
    bool check = true;
    r = r ? r : cl_opt_bool(c, "space_check", true, &check);
    if (r)
        return r;
    if (fanout_wanted(c->spec) && c->backend->batch) {
        static const char *const files[] = {"path", NULL};
        st->fanout = comp_tasks(c);
        return fanout_start(c, sv_clone(c->spec->with), files);
    }
    st->ntasks = st->tasks;
    r = comp_run_prepare(c);
    r = r ? r : fx_check_path(c, &st->spec, st->ntasks, check);
    if (r)
        return r;
    fx_more_fds();
    st->lc = fx_local_coord_new(st->tasks);
    st->coord = fx_local_coord(st->lc);
    char why[256];
    r = fx_spawn(st, why, sizeof(why));
    if (r)
        comp_set_reason(c, "%s", why);
    st->last_at = mono_ns();
    return r;
}

/* The tasks' progress together: the live values for sonde's exporter, all
 * bytes moved and the phase of the first task. */
static void fx_progress_sum(struct fx_state *st, struct lg_progress *p, uint64_t *bytes,
                            unsigned *phase)
{
    memset(p, 0, sizeof(*p));
    *bytes = 0;
    *phase = 0;
    for (unsigned i = 0; st->th && i < st->tasks; i++) {
        struct fx_progress *g = &st->th[i].prog;
        p->requests += atomic_load_explicit(&g->ops, memory_order_relaxed);
        p->errors += atomic_load_explicit(&g->errors, memory_order_relaxed);
        p->bytes_in += atomic_load_explicit(&g->bytes_read, memory_order_relaxed);
        p->bytes_out += atomic_load_explicit(&g->bytes_written, memory_order_relaxed);
        *bytes += atomic_load_explicit(&g->bytes, memory_order_relaxed);
        lg_live_read(&g->lat, p->lat_buckets, &p->lat_sum_s);
        if (i == 0)
            *phase = atomic_load(&g->phase);
    }
}

static int fx_tick(struct comp *c, int64_t now)
{
    struct fx_state *st = c->priv;
    if (st && st->fanout)
        return fanout_tick(c, (unsigned)st->fanout, &st->status_at, now);
    if (!st || atomic_load(&st->running) == 0)
        return 1;
    if (cl_status_due(&st->status_at, now)) {
        struct lg_progress p;
        uint64_t bytes;
        unsigned phase;
        fx_progress_sum(st, &p, &bytes, &phase);
        cl_live(c, &p, true);
        double secs = (double)(now - st->last_at) / 1e9;
        double rate = secs > 0 ? (double)(bytes - (uint64_t)st->last_bytes) / MIB / secs : 0;
        comp_status(c, "%s, %.0f MiB/s, %llu operations",
                    st->spec.metadata ? "metadata" : fx_rw_names[st->spec.phase[phase]], rate,
                    (unsigned long long)p.requests);
        st->last_bytes = (int64_t)bytes;
        st->last_at = now;
    }
    return 0;
}

static int fx_stop(struct comp *c)
{
    struct fx_state *st = c->priv;
    if (st && st->coord.ops)
        st->coord.ops->abort(st->coord.ud);
    return 0;
}

/* ---- results -------------------------------------------------------------------------------- */

static uint64_t xcount(const struct lg_stats *s, const char *op, const char *what)
{
    char name[LG_EXTRA_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s_%s", op, what);
    return lg_extra_count(s, name);
}

static int64_t xvalue(const struct lg_stats *s, const char *op, const char *what,
                      enum lg_extra_kind kind, int64_t def)
{
    char name[LG_EXTRA_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s_%s", op, what);
    return lg_extra_value(s, name, kind, def);
}

static const struct lg_extra *xfind(const struct lg_stats *s, const char *op, const char *what,
                                    enum lg_extra_kind kind)
{
    char name[LG_EXTRA_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s_%s", op, what);
    return lg_extra_find(s, name, kind);
}

static void put(struct comp *c, const char *op, const char *what, const char *unit, double v)
{
    char *name = xasprintf("%s_%s", op, what);
    comp_metric(c, name, unit, NULL, v);
    free(name);
}

/* The per-second series of op: MiB/s (data) and operations/s. */
static void put_op_series(struct comp *c, const struct lg_stats *s, const char *op, bool data,
                          int64_t last)
{
    const struct lg_extra *b = xfind(s, op, "bytes_s", LG_EXTRA_SECS);
    const struct lg_extra *o = xfind(s, op, "ops_s", LG_EXTRA_SECS);
    int64_t t0 = xvalue(s, op, "t0_wall", LG_EXTRA_MIN, 0);
    size_t n = (size_t)((last + FX_NS_PER_S - 1) / FX_NS_PER_S);
    char *bw = xasprintf("%s_bw", op), *rate = xasprintf("%s_%s", op, data ? "iops" : "per_s");
    for (size_t i = 0; b && o && i < n; i++) {
        int64_t t = t0 + (int64_t)i * FX_NS_PER_S;
        if (data)
            comp_series_point(c, bw, "MiB/s", NULL, t, i < b->nsecs ? (double)b->secs[i] / MIB : 0);
        comp_series_point(c, rate, "op/s", NULL, t, i < o->nsecs ? (double)o->secs[i] : 0);
    }
    free(bw);
    free(rate);
}

/* Everything about one kind of operation: counts, rates over the phase until
 * the last task finished (and until the first did, with several tasks), the
 * latency histogram, the per-second series. */
static void put_op(struct comp *c, const struct lg_stats *s, enum fx_op opk, bool many)
{
    const char *op = fx_op_names[opk];
    bool data = opk == FX_OP_READ || opk == FX_OP_WRITE;
    uint64_t ops = xcount(s, op, "ops"), bytes = xcount(s, op, "bytes");
    int64_t last = xvalue(s, op, "last_ns", LG_EXTRA_MAX, 0);
    int64_t first = xvalue(s, op, "first_ns", LG_EXTRA_MIN, INT64_MAX);
    put(c, op, "ops", NULL, (double)ops);
    if (data || bytes)
        put(c, op, "bytes", "B", (double)bytes);
    if (last <= 0)
        return;
    double secs = (double)last / 1e9;
    put(c, op, "time", "s", secs);
    if (data)
        put(c, op, "bw", "MiB/s", (double)bytes / MIB / secs);
    put(c, op, data ? "iops" : "per_s", "op/s", (double)ops / secs);
    if (many && first > 0 && first < INT64_MAX) { /* stonewall figures */
        double fs = (double)first / 1e9;
        put(c, op, "time_first_done", "s", fs);
        if (data)
            put(c, op, "bw_first_done", "MiB/s", (double)xcount(s, op, "bytes_first") / MIB / fs);
        put(c, op, data ? "iops_first_done" : "per_s_first_done", "op/s",
            (double)xcount(s, op, "ops_first") / fs);
    }
    const struct lg_extra *h = xfind(s, op, "latency", LG_EXTRA_HDR);
    char *name = xasprintf("%s_latency", op);
    if (h && hdr_count(h->hdr)) {
        cl_put_hdr_summary(c, name, h->hdr);
        cl_put_histogram(c, name, h->hdr);
    }
    free(name);
    put_op_series(c, s, op, data, last);
}

static void fx_put_results(struct comp *c, const struct fx_spec *sp, const struct lg_stats *s,
                           unsigned ntasks)
{
    bool used[FX_OP_COUNT];
    fx_spec_ops(sp, used);
    uint64_t ops = 0;
    for (int op = 0; op < FX_OP_COUNT; op++) {
        if (used[op])
            put_op(c, s, (enum fx_op)op, ntasks > 1);
        ops += used[op] ? xcount(s, fx_op_names[op], "ops") : 0;
    }
    /* the final totals (the live ones stop at the last tick) */
    cl_live_totals(c, (double)ops, (double)xcount(s, fx_op_names[FX_OP_READ], "bytes"),
                   (double)xcount(s, fx_op_names[FX_OP_WRITE], "bytes"));
    if (!sp->metadata && sp->open_per_io && used[FX_OP_READ]) { /* one read = one sample */
        int64_t last = xvalue(s, "read", "last_ns", LG_EXTRA_MAX, 0);
        if (last > 0)
            comp_metric(c, "samples_per_s", "samples/s", NULL,
                        (double)xcount(s, "read", "ops") * 1e9 / (double)last);
    }
    uint64_t errors = 0;
    for (int e = 0; e < FX_E_COUNT; e++) {
        char name[64];
        snprintf(name, sizeof(name), "errors_%s", fx_err_names[e]);
        uint64_t n = lg_extra_count(s, name);
        errors += n;
        if (n)
            comp_metric(c, name, NULL, NULL, (double)n);
    }
    comp_metric(c, "errors", NULL, NULL, (double)errors);
    if (lg_extra_count(s, "cache_kept"))
        comp_warn(c, "the page cache could not be dropped before reading (sonde is not root): "
                     "reads may have come from memory");
}

/* The first error a fan-out's tasks wrote (tasks/task-K.error), in why. */
static void fx_task_errors(struct comp *c, unsigned n, char *why, size_t len)
{
    why[0] = '\0';
    for (unsigned k = 0; k < n && !why[0]; k++) {
        char name[64], *text = NULL;
        size_t tl = 0;
        snprintf(name, sizeof(name), "tasks/task-%u.error", k);
        char *path = path_join(c->dir, name);
        if (read_file(path, 4096, &text, &tl) == 0 && tl)
            snprintf(why, len, "%.*s", (int)strcspn(text, "\n"), text);
        free(text);
        free(path);
    }
}

static int fx_finish(struct comp *c)
{
    struct fx_state *st = c->priv;
    if (!st)
        return -EINVAL;
    struct lg_stats *s = NULL;
    char why[600] = "";
    int r;
    if (st->fanout) {
        r = fanout_stats(c, st->fanout, NULL, NULL, &s);
        if (r < 0)
            return r;
        fx_task_errors(c, (unsigned)st->fanout, why, sizeof(why));
        char *sync = path_join(c->dir, "tasks/sync");
        rm_rf(sync);
        free(sync);
    } else {
        fx_join(st);
        struct lg_progress p;
        uint64_t bytes;
        unsigned phase;
        fx_progress_sum(st, &p, &bytes, &phase);
        cl_live(c, &p, true); /* the final values (the ticks stopped before the end) */
        r = fx_merge_threads(st, &s, why, sizeof(why));
        if (r == 0)
            comp_metric(c, "tasks", NULL, NULL, st->tasks);
    }
    if (r == 0)
        fx_put_results(c, &st->spec, s, st->fanout ? 2 : st->tasks);
    lg_stats_free(s);
    if (why[0]) {
        comp_set_reason(c, "%s", why);
        return -EIO;
    }
    return r;
}

static void fx_cleanup(struct comp *c)
{
    struct fx_state *st = c->priv;
    if (!st)
        return;
    if (st->coord.ops)
        st->coord.ops->abort(st->coord.ud); /* a run cut short: its tasks end */
    fx_join(st);
    for (unsigned i = 0; st->th && i < st->tasks; i++)
        fx_result_free(&st->th[i].res);
    free(st->th);
    fx_local_coord_free(st->lc);
    fx_file_coord_free(st->fc);
    fx_spec_clear(&st->spec);
    free(st);
    c->priv = NULL;
}

/* ---- the agent (one task of a fan-out job) --------------------------------------------------- */

/* driver_ops.agent_run: `tasks` threads, the tasks task*tasks .. of
 * ntasks*tasks, meeting the other job tasks through files in DIR/sync; their
 * merged result to out_path, the first error beside it (task-K.error: the run
 * failed, its results so far are kept). */
static int fx_agent_run(const struct sv *with, unsigned task, unsigned ntasks, const char *out_path,
                        const volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    struct comp_spec spec = {
        .role = ROLE_CLIENT, .name = "agent", .driver = "fileio", .with = (struct sv *)with};
    struct comp c = {.name = "agent", .spec = &spec};
    struct fx_state *st = xcalloc(1, sizeof(*st));
    c.priv = st;
    struct lg_stats *s = NULL;
    char why[600] = "", *dir = xstrdup(out_path), *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    char *sync = path_join(slash ? dir : ".", "sync");
    size_t base = strlen(out_path) - (str_endswith(out_path, ".stats") ? 6 : 0);
    char *errpath = xasprintf("%.*s.error", (int)base, out_path);
    bool check = true;
    int r = fx_spec_read(&c, &st->spec, &st->tasks);
    r = r ? r : cl_opt_bool(&c, "space_check", true, &check);
    if (r == 0 && mkdir(sync, 0755) < 0 && errno != EEXIST) {
        comp_set_reason(&c, "cannot create %s: %s", sync, strerror(errno));
        r = -errno;
    }
    if (r == 0) {
        st->first = task * st->tasks;
        st->ntasks = ntasks * st->tasks;
        st->fc = fx_file_coord_new(sync, st->ntasks, stop);
        st->coord = fx_file_coord(st->fc);
        r = fx_check_path(&c, &st->spec, st->ntasks, check && task == 0);
        if (r < 0) /* the other job tasks wait for this one at the first barrier */
            st->coord.ops->abort(st->coord.ud);
    }
    if (r == 0) {
        fx_more_fds();
        r = fx_spawn(st, why, sizeof(why));
        fx_join(st);
        int m = fx_merge_threads(st, &s, why, sizeof(why));
        r = r ? r : m;
    }
    if (r == 0 && why[0] && write_file_atomic(errpath, why, strlen(why)) < 0)
        r = -EIO;
    if (r == 0 && stop && *stop) {
        comp_set_reason(&c, "stopped by a signal before the end of the run");
        r = -ECANCELED;
    }
    r = fanout_agent_write(&c, r, s, out_path, err, errlen);
    fx_cleanup(&c);
    free(c.reason);
    free(errpath);
    free(sync);
    free(dir);
    return r;
}

/* ---- validation ----------------------------------------------------------------------------- */

static bool chk_size(const struct comp_spec *spec, const char *key, int64_t *v)
{
    const char *s = cl_chk_text(spec, key);
    return s && parse_size_bytes(s, v) == 0;
}

static bool chk_int(const struct comp_spec *spec, const char *key, int64_t *v)
{
    const char *s = cl_chk_text(spec, key);
    return s && sv_as_int(sv_get(spec->with, key), v) == 0;
}

static bool chk_on(const struct comp_spec *spec, const char *key)
{
    bool on = false;
    return cl_chk_text(spec, key) && sv_as_bool(sv_get(spec->with, key), &on) == 0 && on;
}

/* Each phase a known pattern; no operation in two phases (metric names). */
static void chk_phases(const struct comp_spec *spec, struct diags *d)
{
    const struct sv *list = sv_get(spec->with, "phases");
    if (!list)
        return;
    if (sv_get(spec->with, "rw"))
        cl_chk_fail(spec, d, "phases", "give 'rw' or 'phases', not both");
    if (list->kind != SV_SEQ || list->n == 0 || list->n > FX_PHASES_MAX) {
        cl_chk_fail(spec, d, "phases", "a list of 1 to %d patterns", FX_PHASES_MAX);
        return;
    }
    bool reads = false, writes = false;
    for (size_t k = 0; k < list->n; k++) {
        const struct sv *v = list->kids[k];
        if (v->kind == SV_SCALAR && recipe_has_ref(v->str))
            continue;
        int i = v->kind == SV_SCALAR ? enum_index(fx_rw_names, v->str) : -1;
        if (i < 0) {
            cl_chk_fail(spec, d, "phases",
                        "'%s' is not one of read, write, randread, "
                        "randwrite, rw, randrw",
                        v->kind == SV_SCALAR ? v->str : "(a list or map)");
            continue;
        }
        bool r = i != FX_WRITE && i != FX_RANDWRITE, w = i != FX_READ && i != FX_RANDREAD;
        if ((r && reads) || (w && writes))
            cl_chk_fail(spec, d, "phases",
                        "'%s' %s like an earlier phase: each operation is measured in one phase",
                        v->str, r && reads ? "reads" : "writes");
        reads |= r;
        writes |= w;
    }
}

static void chk_data(const struct comp_spec *spec, struct diags *d)
{
    int64_t bs = 4096, size = 0, depth = 1, v;
    bool has_bs = chk_size(spec, "bs", &bs), has_size = chk_size(spec, "size", &size);
    (void)has_bs;
    if (!sv_get(spec->with, "size") && !spec->partial)
        cl_chk_fail(spec, d, "size", "give 'size': the size of each file");
    if (bs <= 0)
        cl_chk_fail(spec, d, "bs", "must be at least 1 byte");
    else if (has_size && (size <= 0 || size % bs))
        cl_chk_fail(spec, d, "size", "must be a whole number (1 or more) of blocks of %lld bytes",
                    (long long)bs);
    if (chk_on(spec, "direct") && bs > 0 && bs % 512)
        cl_chk_fail(spec, d, "bs",
                    "direct I/O needs blocks of a multiple of 512 bytes (4KiB is "
                    "safe)");
    if (chk_on(spec, "verify") && bs > 0 && bs < 32)
        cl_chk_fail(spec, d, "bs", "verify needs blocks of at least 32 bytes (the header)");
    const char *engine = cl_chk_text(spec, "engine");
    chk_int(spec, "iodepth", &depth);
    if ((!engine || !strcmp(engine, "psync")) && depth != 1)
        cl_chk_fail(spec, d, "iodepth",
                    "engine psync does one I/O at a time: use engine: "
                    "io_uring for iodepth %lld",
                    (long long)depth);
    const struct fx_engine_ops *e = engine ? fx_engine_find(engine) : NULL;
    if (e && !e->built)
        cl_chk_fail(spec, d, "engine",
                    "%s is not in this build of sonde (built without its "
                    "library)",
                    engine);
    if (sv_get(spec->with, "fsync") && sv_get(spec->with, "fdatasync"))
        cl_chk_fail(spec, d, "fdatasync", "give 'fsync' or 'fdatasync', not both");
    const char *open_mode = cl_chk_text(spec, "open");
    if (open_mode && !strcmp(open_mode, "per_io") &&
        (sv_get(spec->with, "fsync") || sv_get(spec->with, "fdatasync") ||
         chk_on(spec, "end_fsync")))
        cl_chk_fail(spec, d, "open", "per_io closes each file after its I/O: no fsync options");
    if (sv_get(spec->with, "duration") && sv_get(spec->with, "epochs"))
        cl_chk_fail(spec, d, "epochs", "give 'duration' or 'epochs', not both");
    if (chk_int(spec, "rwmix_read", &v) && (v < 0 || v > 100))
        cl_chk_fail(spec, d, "rwmix_read", "a percentage from 0 to 100");
    chk_phases(spec, d);
}

static void chk_md(const struct comp_spec *spec, struct diags *d)
{
    const struct sv *list = sv_get(spec->with, "md_phases");
    bool create = !list;
    for (size_t k = 0; list && list->kind == SV_SEQ && k < list->n; k++) {
        const struct sv *v = list->kids[k];
        int i = v->kind == SV_SCALAR ? enum_index(fx_md_names, v->str) : -1;
        if (i < 0)
            cl_chk_fail(spec, d, "md_phases", "'%s' is not one of create, stat, open, read, delete",
                        v->kind == SV_SCALAR ? v->str : "(a list or map)");
        create |= i == FX_MD_CREATE;
    }
    if (!create)
        cl_chk_fail(spec, d, "md_phases", "the phases need 'create' (the files they use)");
}

static int fx_check(const struct comp_spec *spec, struct diags *d)
{
    if (!d)
        return 0;
    size_t before = d->n + d->dropped;
    int64_t v;
    const char *workload = cl_chk_text(spec, "workload");
    if (chk_int(spec, "tasks", &v) && (v < 1 || v > FX_TASKS_MAX))
        cl_chk_fail(spec, d, "tasks", "from 1 to %d", FX_TASKS_MAX);
    if (workload && !strcmp(workload, "metadata"))
        chk_md(spec, d);
    else
        chk_data(spec, d);
    return d->n + d->dropped > before ? -EINVAL : 0;
}

const struct driver_ops driver_client_fileio = {
    .name = "fileio",
    .role = ROLE_CLIENT,
    .summary = "file-system bandwidth, IOPS and latency (sequential, random, mixed; psync or "
               "io_uring; file-per-task or shared), verify, metadata rates",
    .opts = fx_opts,
    .job_argv = fanout_argv,
    .agent_run = fx_agent_run,
    .check = fx_check,
    .start = fx_start,
    .tick = fx_tick,
    .stop = fx_stop,
    .finish = fx_finish,
    .cleanup = fx_cleanup,
};
