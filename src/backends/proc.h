/* proc.h — process supervision for the local backend.
 *
 * Every process sonde starts gets its own process group; stopping a component
 * signals the whole group (SIGTERM, a grace period, then SIGKILL) so children
 * such as PostgreSQL's backends go with it. A guardian process, forked once per
 * session, is told every group sonde starts; when sonde exits or dies (even by
 * SIGKILL) the guardian's pipe closes and it kills whatever groups remain, so
 * no process outlives the session. sonde is also a child subreaper, so
 * grandchildren that daemonize are reparented to it and can be reaped. */
#ifndef SONDE_PROC_H
#define SONDE_PROC_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct job_spec;

struct proc_spec {
    char *const *argv; /* argv[0] is looked up in PATH when it has no '/' */
    char *const
        *env_extra;   /* "KEY=VALUE" added to (or replacing in) sonde's environment; may be NULL */
    const char *cwd;  /* NULL = inherit */
    const char *user; /* NULL = as sonde; else drop to this user and its groups (needs root) */
    const char *out_path;       /* stdout appended here; NULL = /dev/null */
    const char *err_path;       /* stderr appended here; NULL = same file as out_path */
    int stdin_fd;               /* -1 = /dev/null */
    const struct job_spec *job; /* batch backends (backend.h); NULL for local processes */
};

struct proc {
    pid_t pid;                      /* also the process group id; 0 for a batch job */
    int64_t start_mono, start_wall; /* batch: submission, then when it started running */
    int64_t end_mono, end_wall;
    bool exited; /* reaped (batch: the job ended) */
    int status;  /* raw wait status when exited (batch: from the job's exit code) */
    /* Batch backends only. */
    int64_t job;            /* job id, 0 = none */
    bool running;           /* the job has started (node is known) */
    char node[256];         /* address of the job's first node, once running */
    char nodes[256];        /* every node of the job (the scheduler's list syntax) */
    char pending[128];      /* why it waits in the queue, "" when it does not */
    char detail[256];       /* how it ended in the scheduler's words ("TIMEOUT ..."), "" = none */
    int64_t next_poll;      /* mono ns: when the scheduler is asked again */
    char never_reason[128]; /* a queue reason that does not clear by waiting, seen since: */
    int64_t never_since;    /* mono ns */
};

/* True once p stands for something started (a process group or a batch job). */
static inline bool proc_started(const struct proc *p)
{
    return p->pid > 0 || p->job > 0;
}

/* Starts argv. Errors that happen in the child before execve (no such program,
 * bad cwd, unknown user) are reported back through a close-on-exec pipe and
 * returned here as -errno with a message in errbuf, so "no such file" is an
 * error of proc_spawn, not a mystery exit status 127. */
int proc_spawn(const struct proc_spec *s, struct proc *out, char *errbuf, size_t errlen);
/* Non-blocking: reaps if it exited. Returns 1 when exited (status set), 0 when running. */
int proc_poll(struct proc *p);
/* Blocks up to timeout_ns (<0 forever) for the process to exit. 1 exited, 0 timeout. */
int proc_wait(struct proc *p, int64_t timeout_ns);
/* Signals the whole process group. */
int proc_signal(struct proc *p, int sig);
/* While *flag >= level, grace periods of proc_stop end at once (SIGKILL): a
 * user pressing Ctrl-C twice does not wait for them. flag NULL disables. */
void proc_set_hurry(const volatile sig_atomic_t *flag, int level);
/* True once that flag reached its level: backends end grace periods early. */
bool proc_hurried(void);
/* SIGTERM to the group, waits up to grace_ns for the leader AND every other
 * member of the group to go, then SIGKILL the group; reaps the leader. Always
 * leaves nothing of the group running. Returns 0. */
int proc_stop(struct proc *p, int64_t grace_ns);
/* True while any process of the group exists. */
bool proc_group_alive(pid_t pgid);
/* "exit status 3" / "killed by signal 9 (SIGKILL)"; writes buf. */
void proc_describe_status(int status, char *buf, size_t n);
/* Reaps any reparented orphans (we are a subreaper); call from the session loop. */
void proc_reap_orphans(void);

/* The guardian. proc_guardian_start forks it (call once, early, while sonde
 * is single-threaded); proc_spawn reports each new group to it automatically.
 * tag ("SONDE_SESSION_ID=<id>", may be NULL): when sonde dies the guardian also
 * kills every process whose environment holds it (those that left their group). */
/* sweep (may be NULL): a batch backend's sweep (backend.h), called with
 * job_prefix when sonde dies, for jobs it submitted but had not yet reported
 * (killed between sbatch and proc_guardian_job). Not after proc_guardian_stop. */
int proc_guardian_start(const char *tag, size_t (*sweep)(const char *prefix),
                        const char *job_prefix);

/* Sends sig to every live process (not sonde itself) whose environment holds
 * the exact entry tag; sig 0 only counts them. Returns how many were found. */
size_t proc_kill_tagged(const char *tag, int sig);
/* True when process pid's environment (as it was exec'd) holds the entry
 * "KEY=VALUE" exactly; false when it does not or cannot be read. */
bool proc_environ_has(pid_t pid, const char *entry);
/* Tells the guardian about a batch job sonde submitted (add) or saw end: when
 * sonde dies the guardian runs `scancel` for those still listed. */
void proc_guardian_job(int64_t job, bool add);
/* Tells the guardian all groups are stopped and lets it exit. */
void proc_guardian_stop(void);

/* Resolves a user name to uid/gid (for chown of session files). -ENOENT when unknown. */
int proc_lookup_user(const char *user, uid_t *uid, gid_t *gid);

/* One process as /proc/PID/stat describes it (the fields sonde uses). */
struct proc_stat {
    pid_t pid, ppid, pgrp;
    char state;              /* 'R', 'S', 'Z', ... */
    uint64_t utime, stime;   /* clock ticks, the process itself */
    uint64_t cutime, cstime; /* clock ticks, its reaped children */
    uint64_t rss_pages;
};
/* Reads /proc/PID/stat (the comm field may hold spaces and ')'). -ENOENT when
 * the process is gone, -EINVAL when the text cannot be parsed. */
int proc_read_stat(pid_t pid, struct proc_stat *out);
/* Calls fn for every process in /proc (those that vanish meanwhile are skipped);
 * stops early when fn returns non-zero and returns that value. */
int proc_scan(int (*fn)(const struct proc_stat *st, void *ud), void *ud);

#endif
