/* coord.c — how the tasks of a fileio run meet (task.h): threads of one
 * process through a mutex and a condition, or the processes of a batch job
 * through files on a shared file system. */
#include "fileio/task.h"

#include "util/log.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000LL

/* ---- threads of one process ------------------------------------------------------------------ */

struct fx_local_coord {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned ntasks, arrived;
    unsigned long generation; /* barriers passed */
    int64_t t0;               /* the start of the last barrier's phase */
    _Atomic int64_t first[FX_PHASES_MAX + FX_MD_COUNT];
    _Atomic bool aborted;
};

static int local_barrier(void *ud, unsigned task, unsigned phase, int64_t *t0, char *err, size_t n)
{
    struct fx_local_coord *lc = ud;
    (void)task;
    (void)phase;
    (void)err;
    (void)n;
    pthread_mutex_lock(&lc->mu);
    unsigned long gen = lc->generation;
    if (++lc->arrived == lc->ntasks) {
        lc->arrived = 0;
        lc->t0 = wall_ns();
        lc->generation++;
        pthread_cond_broadcast(&lc->cv);
    } else
        while (gen == lc->generation && !atomic_load(&lc->aborted))
            pthread_cond_wait(&lc->cv, &lc->mu);
    *t0 = lc->t0;
    int r = atomic_load(&lc->aborted) ? -ECANCELED : 0;
    pthread_mutex_unlock(&lc->mu);
    return r;
}

static void local_done(void *ud, unsigned task, unsigned phase, int64_t t)
{
    struct fx_local_coord *lc = ud;
    int64_t zero = 0;
    (void)task;
    if (phase < SONDE_ARRAY_LEN(lc->first))
        atomic_compare_exchange_strong(&lc->first[phase], &zero, t);
}

static int64_t local_first(void *ud, unsigned phase)
{
    struct fx_local_coord *lc = ud;
    return phase < SONDE_ARRAY_LEN(lc->first) ? atomic_load(&lc->first[phase]) : 0;
}

static void local_abort(void *ud)
{
    struct fx_local_coord *lc = ud;
    pthread_mutex_lock(&lc->mu);
    atomic_store(&lc->aborted, true);
    pthread_cond_broadcast(&lc->cv); /* nobody waits at a barrier for ever */
    pthread_mutex_unlock(&lc->mu);
}

static bool local_aborted(void *ud)
{
    struct fx_local_coord *lc = ud;
    return atomic_load(&lc->aborted);
}

static const struct fx_coord_ops local_ops = {
    .barrier = local_barrier,
    .done = local_done,
    .first_done = local_first,
    .abort = local_abort,
    .aborted = local_aborted,
};

struct fx_local_coord *fx_local_coord_new(unsigned ntasks)
{
    struct fx_local_coord *lc = xcalloc(1, sizeof(*lc));
    pthread_mutex_init(&lc->mu, NULL);
    pthread_cond_init(&lc->cv, NULL);
    lc->ntasks = ntasks;
    return lc;
}

void fx_local_coord_free(struct fx_local_coord *lc)
{
    if (!lc)
        return;
    pthread_mutex_destroy(&lc->mu);
    pthread_cond_destroy(&lc->cv);
    free(lc);
}

struct fx_coord fx_local_coord(struct fx_local_coord *lc)
{
    return (struct fx_coord){&local_ops, lc};
}

/* ---- processes of a batch job, through files --------------------------------------------------
 *
 * In dir: "ready-P-K" when task K reached phase P's barrier; "go-P" (written
 * by task 0 once all are ready, atomically) holds the common start, a little
 * in the future so that every task can sleep until it; "done-P" (created
 * exclusively by the first task to finish) holds when; "abort" stops all.
 * Clocks of different nodes are assumed in step (NTP: within milliseconds). */

#define FILE_POLL_NS     (2 * 1000000LL)   /* waiting at a barrier */
#define FILE_CHECK_NS    (20 * 1000000LL)  /* looking for done and abort files while running */
#define FILE_START_AHEAD (200 * 1000000LL) /* the start, after the last task is ready */
#define FILE_BARRIER_MAX (600 * NS_PER_S)  /* a task that never comes */

struct fx_file_coord {
    char *dir;
    unsigned ntasks;
    const volatile sig_atomic_t *stop;
    /* what the files said, shared by the threads of one process: read on
     * every I/O without a lock, refreshed by one thread at a time (mu) */
    pthread_mutex_t mu;
    _Atomic int64_t checked_at, first[FX_PHASES_MAX + FX_MD_COUNT];
    _Atomic bool aborted;
};

/* dir/WHAT-PHASE, or dir/WHAT-PHASE-TASK when task >= 0. */
static char *fc_path(const struct fx_file_coord *fc, const char *what, unsigned phase, int task)
{
    char name[64];
    if (task >= 0)
        snprintf(name, sizeof(name), "%s-%u-%d", what, phase, task);
    else
        snprintf(name, sizeof(name), "%s-%u", what, phase);
    return path_join(fc->dir, name);
}

/* Writes the decimal v to path atomically (a temporary file renamed). */
static int put_value(const char *path, int64_t v)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%lld\n", (long long)v);
    return write_file_atomic(path, text, (size_t)n);
}

/* Reads a decimal value from path: 0, or -errno (-ENOENT: not there yet). */
static int get_value(const char *path, int64_t *v)
{
    char *text = NULL;
    size_t len = 0;
    int r = read_file(path, 64, &text, &len);
    if (r == 0) {
        char *end = NULL;
        long long x = strtoll(text, &end, 10);
        r = end == text ? -EINVAL : 0;
        *v = x;
    }
    free(text);
    return r;
}

/* Ready files of phase P present in dir. */
static unsigned count_ready(const struct fx_file_coord *fc, unsigned phase)
{
    char prefix[32];
    int pl = snprintf(prefix, sizeof(prefix), "ready-%u-", phase);
    unsigned n = 0;
    DIR *d = opendir(fc->dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += !strncmp(e->d_name, prefix, (size_t)pl);
    if (d)
        closedir(d);
    return n;
}

static bool file_stopping(struct fx_file_coord *fc);

static int file_barrier(void *ud, unsigned task, unsigned phase, int64_t *t0, char *err, size_t n)
{
    struct fx_file_coord *fc = ud;
    char *ready = fc_path(fc, "ready", phase, (int)task), *go = fc_path(fc, "go", phase, -1);
    int r = put_value(ready, task);
    if (r < 0)
        snprintf(err, n, "cannot write %s: %s", ready, strerror(-r));
    int64_t deadline = mono_ns() + FILE_BARRIER_MAX;
    bool posted = false;
    while (r == 0) {
        if (get_value(go, t0) == 0)
            break;
        if (file_stopping(fc)) {
            r = -ECANCELED;
            snprintf(err, n, "stopped while waiting for the other tasks");
        } else if (mono_ns() > deadline) {
            r = -ETIMEDOUT;
            snprintf(err, n, "only %u of %u tasks reached phase %u within %lld s",
                     count_ready(fc, phase), fc->ntasks, phase + 1,
                     (long long)(FILE_BARRIER_MAX / NS_PER_S));
        } else if (task == 0 && !posted && count_ready(fc, phase) >= fc->ntasks) {
            r = put_value(go, wall_ns() + FILE_START_AHEAD);
            posted = true;
            if (r < 0)
                snprintf(err, n, "cannot write %s: %s", go, strerror(-r));
        } else
            sleep_ns(FILE_POLL_NS);
    }
    if (r == 0) { /* every task starts at t0 by its own clock */
        int64_t wait = *t0 - wall_ns();
        if (wait > 0)
            sleep_ns(wait);
    }
    free(ready);
    free(go);
    return r;
}

static void file_done(void *ud, unsigned task, unsigned phase, int64_t t)
{
    struct fx_file_coord *fc = ud;
    (void)task;
    char *done = fc_path(fc, "done", phase, -1);
    char *tmp = fc_path(fc, "done", phase, (int)task);
    /* the first to link its file under the name wins; the link is atomic */
    if (put_value(tmp, t) == 0 && link(tmp, done) < 0 && errno != EEXIST)
        log_warn("fileio: cannot create %s: %s", done, strerror(errno));
    unlink(tmp);
    free(tmp);
    free(done);
}

/* Looks for the abort file and phase's done file at most every
 * FILE_CHECK_NS (one thread of the process does, the others go on). */
static void file_check(struct fx_file_coord *fc, unsigned phase)
{
    int64_t now = mono_ns();
    if (now - atomic_load_explicit(&fc->checked_at, memory_order_relaxed) < FILE_CHECK_NS ||
        pthread_mutex_trylock(&fc->mu) != 0)
        return;
    if (now - atomic_load(&fc->checked_at) >= FILE_CHECK_NS) {
        atomic_store(&fc->checked_at, now);
        char *ab = path_join(fc->dir, "abort");
        if (access(ab, F_OK) == 0)
            atomic_store(&fc->aborted, true);
        free(ab);
        int64_t t = 0;
        if (phase < SONDE_ARRAY_LEN(fc->first) && !atomic_load(&fc->first[phase])) {
            char *done = fc_path(fc, "done", phase, -1);
            if (get_value(done, &t) == 0)
                atomic_store(&fc->first[phase], t);
            free(done);
        }
    }
    pthread_mutex_unlock(&fc->mu);
}

static int64_t file_first(void *ud, unsigned phase)
{
    struct fx_file_coord *fc = ud;
    file_check(fc, phase);
    return phase < SONDE_ARRAY_LEN(fc->first) ? atomic_load(&fc->first[phase]) : 0;
}

static void file_abort(void *ud)
{
    struct fx_file_coord *fc = ud;
    if (atomic_exchange(&fc->aborted, true))
        return; /* said already */
    char *ab = path_join(fc->dir, "abort");
    put_value(ab, wall_ns());
    free(ab);
}

static bool file_stopping(struct fx_file_coord *fc)
{
    if (fc->stop && *fc->stop)
        file_abort(fc);
    file_check(fc, UINT32_MAX); /* the abort file only */
    return atomic_load(&fc->aborted);
}

static bool file_aborted(void *ud)
{
    return file_stopping(ud);
}

static const struct fx_coord_ops file_ops = {
    .barrier = file_barrier,
    .done = file_done,
    .first_done = file_first,
    .abort = file_abort,
    .aborted = file_aborted,
};

struct fx_file_coord *fx_file_coord_new(const char *dir, unsigned ntasks,
                                        const volatile sig_atomic_t *stop)
{
    struct fx_file_coord *fc = xcalloc(1, sizeof(*fc));
    fc->dir = xstrdup(dir);
    fc->ntasks = ntasks;
    fc->stop = stop;
    atomic_store(&fc->checked_at, INT64_MIN / 2);
    pthread_mutex_init(&fc->mu, NULL);
    return fc;
}

void fx_file_coord_free(struct fx_file_coord *fc)
{
    if (!fc)
        return;
    pthread_mutex_destroy(&fc->mu);
    free(fc->dir);
    free(fc);
}

struct fx_coord fx_file_coord(struct fx_file_coord *fc)
{
    return (struct fx_coord){&file_ops, fc};
}
