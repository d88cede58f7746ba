/* task.h — one task of a fileio run: its files, its phases, its results.
 *
 * A run is N tasks doing the same thing (struct fx_spec) on their own files
 * or on shared ones (layout.h). Each measured phase starts behind a barrier
 * (struct fx_coord_ops: threads inside sonde, or files on a shared file
 * system for the tasks of a batch job), and every task records, per kind of
 * operation, counts, bytes, a latency histogram (util/hdr.h), per-second
 * series and when it finished; fx_task_stats turns that into a stats file's
 * extras (loadgen/stats_file.h) so that N results merge exactly. */
#ifndef SONDE_FILEIO_TASK_H
#define SONDE_FILEIO_TASK_H

#include "fileio/engine.h"
#include "fileio/layout.h"
#include "loadgen/engine.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Access patterns, named as fio names them. */
enum fx_rw { FX_READ, FX_WRITE, FX_RANDREAD, FX_RANDWRITE, FX_RW, FX_RANDRW, FX_RW_COUNT };
extern const char *const fx_rw_names[FX_RW_COUNT + 1];

/* Kinds of operation, each reported on its own (metric names start with them). */
enum fx_op {
    FX_OP_READ,
    FX_OP_WRITE,
    FX_OP_SYNC,
    FX_OP_CREATE,
    FX_OP_STAT,
    FX_OP_OPEN,
    FX_OP_DELETE,
    FX_OP_COUNT
};
extern const char *const fx_op_names[FX_OP_COUNT];

/* Metadata phases, in the order they run. */
enum fx_md { FX_MD_CREATE, FX_MD_STAT, FX_MD_OPEN, FX_MD_READ, FX_MD_DELETE, FX_MD_COUNT };
extern const char *const fx_md_names[FX_MD_COUNT + 1];

/* Error classes (errors_<class> counters). */
enum fx_err {
    FX_E_IO,
    FX_E_SPACE,
    FX_E_NOTFOUND,
    FX_E_PERMISSION,
    FX_E_SHORT,
    FX_E_VERIFY,
    FX_E_DELETED,
    FX_E_OTHER,
    FX_E_COUNT
};
extern const char *const fx_err_names[FX_E_COUNT];

#define FX_PHASES_MAX 4

/* What every task of a run does (read-only while tasks run). */
struct fx_spec {
    char *dir;     /* where the files go (exists) */
    bool metadata; /* the mdtest-like workload instead of data phases */
    /* data phases */
    enum fx_rw phase[FX_PHASES_MAX];
    unsigned nphases;
    enum fx_layout layout;
    uint64_t files; /* per task (FX_PER_TASK) or shared by all tasks */
    uint64_t file_size, bs;
    const struct fx_engine_ops *engine;
    unsigned depth;
    unsigned rwmix_read; /* percent of reads in rw and randrw */
    bool direct, verify, open_per_io, random_repeat, end_fsync, fallocate, stonewall;
    bool drop_caches, keep_files;
    uint64_t fsync_every, fdatasync_every; /* writes between syncs, 0: none */
    int64_t duration_ns;                   /* per phase; 0: bounded by size and epochs */
    unsigned epochs;
    uint64_t seed;
    /* metadata */
    uint64_t md_files, md_size;
    bool md_shared_dir;
    unsigned md_phases; /* bits of enum fx_md */
};

/* How the tasks of a run meet. Every function may be called from any task. */
struct fx_coord_ops {
    /* Waits until all tasks reached phase `phase`; *t0_wall: its common
     * start (CLOCK_REALTIME ns). 0, or -errno with a message in err. */
    int (*barrier)(void *ud, unsigned task, unsigned phase, int64_t *t0_wall, char *err, size_t n);
    /* Task finished phase `phase` at wall time t (the first one counts). */
    void (*done)(void *ud, unsigned task, unsigned phase, int64_t t);
    /* The wall time the first task finished the phase, 0 while none has. */
    int64_t (*first_done)(void *ud, unsigned phase);
    /* Stops every task (an error, or sonde stopping the run). */
    void (*abort)(void *ud);
    bool (*aborted)(void *ud);
};

struct fx_coord {
    const struct fx_coord_ops *ops;
    void *ud;
};

/* What one task measured for one kind of operation. */
struct fx_opstat {
    bool used;                       /* its phase ran */
    uint64_t ops, bytes;             /* completed without error */
    uint64_t ops_first, bytes_first; /* ... by the time the first task finished the phase */
    struct hdr *lat;                 /* latency of each completed operation, ns */
    uint64_t *sec_ops, *sec_bytes;   /* per second from the phase's start */
    size_t nsec;
    int64_t t0_wall; /* the phase's common start */
    int64_t end_ns;  /* when this task finished the phase, from t0 */
};

struct fx_result {
    struct fx_opstat op[FX_OP_COUNT];
    uint64_t errors[FX_E_COUNT];
    char error[512]; /* the first error, "" when none */
    bool cache_kept; /* a read phase found the page cache not dropped (not root) */
    uint64_t space_needed;
};

/* Shared progress for a status line (may be NULL). */
struct fx_progress {
    _Atomic uint64_t bytes, ops, errors;
    _Atomic uint64_t bytes_read, bytes_written; /* bytes by direction (sonde's exporter) */
    struct lg_live_hist lat;                    /* every operation's latency (the exporter) */
    _Atomic unsigned phase;
};

/* Runs task `task` of `ntasks` to its end (or the first error or abort);
 * leader: this task drops the node's page cache before a read phase;
 * fills *res (fx_result_free frees it). 0, or -errno when the run failed
 * (res->error says why; the results so far stay valid). */
int fx_task_run(const struct fx_spec *spec, const struct fx_coord *coord, unsigned task,
                unsigned ntasks, bool leader, struct fx_progress *prog, struct fx_result *res);
void fx_result_free(struct fx_result *res);

/* The operations a run's phases perform. */
void fx_spec_ops(const struct fx_spec *sp, bool used[FX_OP_COUNT]);
/* The result as a stats-file result (extras named <op>_<what> for every
 * operation of the spec, errors_<class>) so that tasks' results merge with
 * lg_stats_merge. 0 or -errno. */
int fx_result_stats(const struct fx_spec *spec, const struct fx_result *res, struct lg_stats **out);

/* Bytes of files the run will create: what must be free before it starts. */
uint64_t fx_space_needed(const struct fx_spec *spec, unsigned ntasks);
/* The name of a file of the run (caller frees): data file `file` of task
 * `task` (FX_PER_TASK) or shared. */
char *fx_file_path(const struct fx_spec *spec, unsigned task, uint64_t file);

/* In-process coordination for tasks that are threads of one process. */
struct fx_local_coord;
struct fx_local_coord *fx_local_coord_new(unsigned ntasks);
void fx_local_coord_free(struct fx_local_coord *lc);
struct fx_coord fx_local_coord(struct fx_local_coord *lc);

/* Coordination through files in dir (on a file system every task sees), for
 * the tasks of a batch job; dir exists. */
struct fx_file_coord;
struct fx_file_coord *fx_file_coord_new(const char *dir, unsigned ntasks,
                                        const volatile sig_atomic_t *stop);
void fx_file_coord_free(struct fx_file_coord *fc);
struct fx_coord fx_file_coord(struct fx_file_coord *fc);

#endif
