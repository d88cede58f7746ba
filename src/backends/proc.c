/* proc.c — process groups: spawn with exec errors reported, stop, reaping, the guardian. */
#include "backends/proc.h"

#include "util/capture.h"
#include "util/log.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MS                  ((int64_t)1000000)
#define STOP_POLL_MAX_NS    (20 * MS)
#define KILL_WAIT_NS        (5000 * MS)
#define GUARDIAN_WAIT_NS    (7000 * MS)
#define GUARDIAN_TERM_NS    (5000 * MS)
#define MAX_SUPP_GROUPS     65536
#define MAX_PW_BUF          (1 << 20)
#define REGISTRY_MAX        4096
#define GUARDIAN_MAX_GROUPS 4096
#define GUARDIAN_MAX_JOBS   4096
#define DEFAULT_PATH        "/usr/local/bin:/usr/bin:/bin"

/* ---- registry of leaders we spawned and have not reaped ---- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t reg_pids[REGISTRY_MAX];
static size_t reg_n;

static void reg_add(pid_t pid)
{
    pthread_mutex_lock(&reg_lock);
    if (reg_n < REGISTRY_MAX)
        reg_pids[reg_n++] = pid;
    else
        log_warn("more than %d live processes; orphan reaping may race", REGISTRY_MAX);
    pthread_mutex_unlock(&reg_lock);
}

static void reg_del(pid_t pid)
{
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < reg_n; i++) {
        if (reg_pids[i] == pid) {
            reg_pids[i] = reg_pids[--reg_n];
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
}

static bool reg_has(pid_t pid)
{
    bool found = false;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < reg_n && !found; i++)
        found = reg_pids[i] == pid;
    pthread_mutex_unlock(&reg_lock);
    return found;
}

/* ---- guardian state (in sonde) ---- */

enum { GUARD_ADD = 1, GUARD_DEL = 2, GUARD_JOB_ADD = 3, GUARD_JOB_DEL = 4, GUARD_DONE = 5 };
struct guard_rec {
    int32_t op;
    int32_t pgid; /* GUARD_ADD, GUARD_DEL */
    int64_t job;  /* GUARD_JOB_ADD, GUARD_JOB_DEL */
};

static int guard_fd = -1;
static pid_t guard_pid;
static pid_t guard_owner; /* the process that started it (forked children inherit the fd) */

static void guard_send_rec(struct guard_rec rec)
{
    if (guard_fd < 0 || guard_owner != getpid())
        return;
    ssize_t n;
    do
        n = send(guard_fd, &rec, sizeof(rec), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(rec))
        log_warn("cannot reach the guardian process: %s", n < 0 ? strerror(errno) : "short write");
}

static void guard_send(int op, pid_t pgid)
{
    guard_send_rec((struct guard_rec){.op = op, .pgid = pgid});
}

void proc_guardian_job(int64_t job, bool add)
{
    guard_send_rec((struct guard_rec){.op = add ? GUARD_JOB_ADD : GUARD_JOB_DEL, .job = job});
}

/* ---- /proc ---- */

static int parse_stat(const char *buf, struct proc_stat *o)
{
    const char *rp = strrchr(buf, ')');
    if (!rp || rp[1] != ' ')
        return -EINVAL;
    char *end;
    long pid = strtol(buf, &end, 10);
    if (end == buf || pid <= 0)
        return -EINVAL;
    char state;
    int ppid, pgrp;
    unsigned long long ut, st;
    long long cut, cst, rss;
    int n = sscanf(rp + 2,
                   "%c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld %*d %*d %*d "
                   "%*d %*u %*u %lld",
                   &state, &ppid, &pgrp, &ut, &st, &cut, &cst, &rss);
    if (n != 8)
        return -EINVAL;
    *o = (struct proc_stat){
        .pid = (pid_t)pid,
        .ppid = ppid,
        .pgrp = pgrp,
        .state = state,
        .utime = ut,
        .stime = st,
        .cutime = cut > 0 ? (uint64_t)cut : 0,
        .cstime = cst > 0 ? (uint64_t)cst : 0,
        .rss_pages = rss > 0 ? (uint64_t)rss : 0,
    };
    return 0;
}

static int read_stat_at(int dirfd, const char *name, struct proc_stat *out)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "%s/stat", name);
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? -ENOENT : -errno;
    ssize_t n;
    do
        n = read(fd, buf, sizeof(buf) - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0)
        return -ENOENT;
    buf[n] = '\0';
    return parse_stat(buf, out);
}

int proc_read_stat(pid_t pid, struct proc_stat *out)
{
    char name[32];
    snprintf(name, sizeof(name), "/proc/%d", (int)pid);
    return read_stat_at(AT_FDCWD, name, out);
}

int proc_scan(int (*fn)(const struct proc_stat *st, void *ud), void *ud)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -errno;
    int r = 0;
    struct dirent *e;
    while (r == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        struct proc_stat st;
        if (read_stat_at(dirfd(d), e->d_name, &st) == 0)
            r = fn(&st, ud);
    }
    closedir(d);
    return r;
}

static int alive_in_group(const struct proc_stat *st, void *ud)
{
    return st->pgrp == *(const pid_t *)ud && st->state != 'Z' && st->state != 'X';
}

bool proc_group_alive(pid_t pgid)
{
    if (pgid <= 0)
        return false;
    if (kill(-pgid, 0) < 0 && errno == ESRCH)
        return false;
    return proc_scan(alive_in_group, &pgid) == 1;
}

/* ---- reaping ---- */

struct reap_ctx {
    pid_t self, self_pgrp;
};

static int reap_one(const struct proc_stat *st, void *ud)
{
    const struct reap_ctx *x = ud;
    if (st->ppid != x->self || st->state != 'Z')
        return 0;
    /* Leave alone: leaders the session tracks, the guardian, and children that
     * other code forked without a group of their own. */
    if (reg_has(st->pid) || st->pid == guard_pid || st->pgrp == x->self_pgrp)
        return 0;
    while (waitpid(st->pid, NULL, WNOHANG) < 0 && errno == EINTR)
        ;
    return 0;
}

void proc_reap_orphans(void)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
        return; /* no child has exited: nothing to do, no /proc scan */
    struct reap_ctx x = {.self = getpid(), .self_pgrp = getpgrp()};
    proc_scan(reap_one, &x);
}

/* ---- status ---- */

void proc_describe_status(int status, char *buf, size_t n)
{
    if (n == 0)
        return;
    if (WIFEXITED(status)) {
        snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        snprintf(buf, n, "killed by signal %d (SIG%s)%s", sig, abbrev ? abbrev : "?",
                 WCOREDUMP(status) ? ", core dumped" : "");
    } else {
        snprintf(buf, n, "wait status 0x%x", (unsigned)status);
    }
}

static void mark_exited(struct proc *p, int status)
{
    p->exited = true;
    p->status = status;
    p->end_mono = mono_ns();
    p->end_wall = wall_ns();
    reg_del(p->pid);
    /* An empty group's id may be reused: the guardian must forget it now. */
    if (!proc_group_alive(p->pid))
        guard_send(GUARD_DEL, p->pid);
}

int proc_poll(struct proc *p)
{
    if (p->exited)
        return 1;
    if (p->pid <= 0)
        return -EINVAL;
    int st = 0;
    pid_t r;
    do
        r = waitpid(p->pid, &st, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return 0;
    if (r < 0) {
        log_debug("waitpid(%d): %s; treating it as gone", (int)p->pid, strerror(errno));
        st = 0;
    }
    mark_exited(p, st);
    return 1;
}

int proc_wait(struct proc *p, int64_t timeout_ns)
{
    if (p->exited)
        return 1;
    if (p->pid <= 0)
        return -EINVAL;
    if (timeout_ns < 0) {
        int st = 0;
        pid_t r;
        do
            r = waitpid(p->pid, &st, 0);
        while (r < 0 && errno == EINTR);
        mark_exited(p, r < 0 ? 0 : st);
        return 1;
    }
    int64_t deadline = mono_ns() + timeout_ns;
    int64_t step = MS;
    for (;;) {
        int r = proc_poll(p);
        if (r != 0)
            return r;
        int64_t left = deadline - mono_ns();
        if (left <= 0)
            return 0;
        sleep_ns(step < left ? step : left);
        if (step < STOP_POLL_MAX_NS)
            step *= 2;
    }
}

int proc_signal(struct proc *p, int sig)
{
    if (p->pid <= 0)
        return -EINVAL;
    if (kill(-p->pid, sig) < 0)
        return -errno;
    return 0;
}

static bool group_gone(struct proc *p)
{
    proc_poll(p);
    bool gone = p->exited && !proc_group_alive(p->pid);
    /* After the check: members seen as zombies (reparented to us) are reaped now. */
    proc_reap_orphans();
    return gone;
}

static const volatile sig_atomic_t *hurry_flag;
static int hurry_level;

void proc_set_hurry(const volatile sig_atomic_t *flag, int level)
{
    hurry_flag = flag;
    hurry_level = level;
}

bool proc_hurried(void)
{
    return hurry_flag && *hurry_flag >= hurry_level;
}

/* Waits for the group to go; a grace period ends early when hurried (the
 * caller then escalates to SIGKILL). */
static bool wait_group_gone(struct proc *p, int64_t ns, bool may_hurry)
{
    int64_t deadline = mono_ns() + ns;
    int64_t step = MS;
    for (;;) {
        if (group_gone(p))
            return true;
        if (may_hurry && proc_hurried())
            return false;
        int64_t left = deadline - mono_ns();
        if (left <= 0)
            return false;
        sleep_ns(step < left ? step : left);
        if (step < STOP_POLL_MAX_NS)
            step *= 2;
    }
}

int proc_stop(struct proc *p, int64_t grace_ns)
{
    if (p->pid <= 0)
        return 0;
    pid_t pg = p->pid;
    if (!group_gone(p)) {
        kill(-pg, SIGTERM);
        kill(-pg, SIGCONT); /* a stopped process must run to see SIGTERM */
        if (!wait_group_gone(p, grace_ns > 0 ? grace_ns : 0, true)) {
            log_debug("process group %d still alive after SIGTERM; sending SIGKILL", (int)pg);
            kill(-pg, SIGKILL);
            if (!wait_group_gone(p, KILL_WAIT_NS, false))
                log_warn("process group %d survived SIGKILL", (int)pg);
        }
    }
    guard_send(GUARD_DEL, pg);
    return 0;
}

/* ---- users ---- */

struct user_info {
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    int ngroups;
    char *name, *home;
};

static void user_info_free(struct user_info *u)
{
    free(u->groups);
    free(u->name);
    free(u->home);
    memset(u, 0, sizeof(*u));
}

static int user_passwd(const char *user, struct user_info *u)
{
    size_t sz = 16384;
    char *buf = xmalloc(sz);
    struct passwd pw, *res = NULL;
    char *end;
    unsigned long num = strtoul(user, &end, 10);
    bool numeric = *user && *end == '\0';
    int r;
    for (;;) {
        r = numeric ? getpwuid_r((uid_t)num, &pw, buf, sz, &res)
                    : getpwnam_r(user, &pw, buf, sz, &res);
        if (r != ERANGE || sz >= MAX_PW_BUF)
            break;
        sz *= 2;
        buf = xrealloc(buf, sz);
    }
    if (r == 0 && !res)
        r = ENOENT;
    if (r == 0) {
        u->uid = pw.pw_uid;
        u->gid = pw.pw_gid;
        u->name = xstrdup(pw.pw_name);
        u->home = xstrdup(pw.pw_dir);
    }
    free(buf);
    return -r;
}

static int user_resolve(const char *user, struct user_info *u)
{
    memset(u, 0, sizeof(*u));
    int r = user_passwd(user, u);
    if (r < 0)
        return r;
    int ng = 32;
    u->groups = xmalloc((size_t)ng * sizeof(gid_t));
    for (;;) {
        int have = ng;
        if (getgrouplist(u->name, u->gid, u->groups, &ng) >= 0)
            break;
        if (ng <= have)
            ng = have * 2;
        if (ng > MAX_SUPP_GROUPS) {
            user_info_free(u);
            return -E2BIG;
        }
        u->groups = xrealloc(u->groups, (size_t)ng * sizeof(gid_t));
    }
    u->ngroups = ng;
    return 0;
}

int proc_lookup_user(const char *user, uid_t *uid, gid_t *gid)
{
    struct user_info u;
    if (!user || !*user)
        return -EINVAL;
    int r = user_passwd(user, &u);
    if (r < 0)
        return r;
    *uid = u.uid;
    *gid = u.gid;
    free(u.name);
    free(u.home);
    return 0;
}

/* ---- spawn ---- */

enum spawn_step {
    STEP_STDIO = 1,
    STEP_GROUPS,
    STEP_GID,
    STEP_UID,
    STEP_CWD,
    STEP_EXEC,
};

struct spawn_err {
    int32_t step;
    int32_t err;
};

struct spawn_ctx {
    int fd_in, fd_out, fd_err, fd_report; /* all >= 3 and close-on-exec */
    char *const *argv;
    char **env;
    char **cands; /* where to execve argv[0], in PATH order */
    const char *cwd;
    const struct user_info *user; /* NULL: keep sonde's identity */
    pid_t parent;
};

/* Moves fd to a number >= 3 (so dup2 onto 0..2 never clobbers it), close-on-exec. */
static int fd_high(int fd)
{
    if (fd < 0 || fd >= 3)
        return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return nfd;
}

static _Noreturn void child_fail(const struct spawn_ctx *x, int step, int err)
{
    struct spawn_err e = {.step = step, .err = err};
    ssize_t n = write(x->fd_report, &e, sizeof(e));
    (void)n;
    _exit(127);
}

static void child_signals_default(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &sa, NULL);
}

static void child_identity(const struct spawn_ctx *x)
{
    if (setgroups((size_t)x->user->ngroups, x->user->groups) < 0)
        child_fail(x, STEP_GROUPS, errno);
    if (setgid(x->user->gid) < 0)
        child_fail(x, STEP_GID, errno);
    if (setuid(x->user->uid) < 0)
        child_fail(x, STEP_UID, errno);
}

static void child_exec(const struct spawn_ctx *x)
{
    int err = ENOENT;
    bool denied = false;
    for (size_t i = 0; x->cands[i]; i++) {
        execve(x->cands[i], x->argv, x->env);
        if (errno == EACCES)
            denied = true;
        else if (errno != ENOENT && errno != ENOTDIR) {
            err = errno;
            break;
        }
    }
    child_fail(x, STEP_EXEC, denied && err == ENOENT ? EACCES : err);
}

static _Noreturn void child_run(const struct spawn_ctx *x)
{
    setpgid(0, 0);
    child_signals_default();
    if (dup2(x->fd_in, 0) < 0 || dup2(x->fd_out, 1) < 0 || dup2(x->fd_err, 2) < 0)
        child_fail(x, STEP_STDIO, errno);
    /* Descriptors sonde's other modules opened without O_CLOEXEC die at exec. */
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    if (x->user)
        child_identity(x);
    if (x->cwd && chdir(x->cwd) < 0)
        child_fail(x, STEP_CWD, errno);
    /* After setuid (which clears it): the leader dies with sonde. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != x->parent)
        _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    child_exec(x);
    _exit(127); /* not reached: child_exec ends in child_fail */
}

static void env_set(char ***env, const char *kv)
{
    size_t klen = strcspn(kv, "=");
    for (size_t i = 0; (*env)[i]; i++) {
        if (strncmp((*env)[i], kv, klen) == 0 && (*env)[i][klen] == '=') {
            free((*env)[i]);
            (*env)[i] = xstrdup(kv);
            return;
        }
    }
    strv_push(env, kv);
}

static char **env_build(char *const *extra, const struct user_info *u)
{
    char **env = strv_dup(environ);
    if (!env)
        env = xcalloc(1, sizeof(char *));
    if (u) {
        char *kv[] = {xasprintf("HOME=%s", u->home), xasprintf("USER=%s", u->name),
                      xasprintf("LOGNAME=%s", u->name)};
        for (size_t i = 0; i < SONDE_ARRAY_LEN(kv); i++) {
            env_set(&env, kv[i]);
            free(kv[i]);
        }
    }
    for (size_t i = 0; extra && extra[i]; i++)
        if (strchr(extra[i], '='))
            env_set(&env, extra[i]);
    return env;
}

static char **exec_candidates(const char *prog, char *const *env)
{
    char **c = xcalloc(1, sizeof(char *));
    if (strchr(prog, '/')) {
        strv_push(&c, prog);
        return c;
    }
    const char *path = DEFAULT_PATH;
    for (size_t i = 0; env[i]; i++)
        if (str_startswith(env[i], "PATH="))
            path = env[i] + 5;
    for (const char *p = path;;) {
        size_t len = strcspn(p, ":");
        char *full = len ? xasprintf("%.*s/%s", (int)len, p, prog) : xasprintf("./%s", prog);
        strv_push(&c, full);
        free(full);
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    return c;
}

static int open_log(const char *path, const struct user_info *u, int *fd, char *errbuf,
                    size_t errlen)
{
    /* Log files stay owned by sonde in a directory the component's user
     * cannot write; O_NOFOLLOW guards against a link planted there anyway.
     * The component writes through the descriptor it inherits. */
    (void)u;
    const char *p = path ? path : "/dev/null";
    int f = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | (path ? O_NOFOLLOW : 0),
                 0644);
    if (f < 0) {
        int e = errno;
        snprintf(errbuf, errlen, "cannot open log file '%s': %s", p, strerror(e));
        return -e;
    }
    *fd = fd_high(f);
    return *fd < 0 ? -errno : 0;
}

static int open_stdio(const struct proc_spec *s, const struct user_info *u, struct spawn_ctx *x,
                      char *errbuf, size_t errlen)
{
    int r = open_log(s->out_path, u, &x->fd_out, errbuf, errlen);
    if (r == 0 && s->err_path)
        r = open_log(s->err_path, u, &x->fd_err, errbuf, errlen);
    else if (r == 0 && (x->fd_err = fcntl(x->fd_out, F_DUPFD_CLOEXEC, 3)) < 0)
        r = -errno;
    if (r < 0)
        return r;
    if (s->stdin_fd >= 0)
        x->fd_in = fcntl(s->stdin_fd, F_DUPFD_CLOEXEC, 3);
    else
        x->fd_in = fd_high(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (x->fd_in < 0) {
        r = -errno;
        snprintf(errbuf, errlen, "cannot set up standard input: %s", strerror(-r));
    }
    return r;
}

static void describe_spawn_err(const struct proc_spec *s, const struct spawn_err *e, char *buf,
                               size_t n)
{
    const char *msg = strerror(e->err);
    switch (e->step) {
    case STEP_CWD:
        snprintf(buf, n, "cannot change directory to '%s': %s", s->cwd, msg);
        break;
    case STEP_GROUPS:
    case STEP_GID:
    case STEP_UID:
        snprintf(buf, n, "cannot switch to user '%s': %s", s->user, msg);
        break;
    case STEP_STDIO:
        snprintf(buf, n, "cannot set up standard streams for '%s': %s", s->argv[0], msg);
        break;
    default:
        snprintf(buf, n, "cannot run '%s': %s", s->argv[0], msg);
        break;
    }
}

/* True when the child reported a failure before exec; EOF means exec succeeded. */
static bool read_report(int fd, struct spawn_err *e)
{
    ssize_t n;
    do
        n = read(fd, e, sizeof(*e));
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(*e);
}

/* Forks and execs; reads the child's pre-exec failure report, if any. */
static int spawn_fork(const struct proc_spec *s, struct spawn_ctx *x, struct proc *out,
                      char *errbuf, size_t errlen)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -errno;
    pfd[0] = fd_high(pfd[0]);
    x->fd_report = pfd[1] = fd_high(pfd[1]);
    if (pfd[0] < 0 || pfd[1] < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        return -e;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    struct proc p = {.start_mono = mono_ns(), .start_wall = wall_ns()};
    x->parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        child_run(x);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        snprintf(errbuf, errlen, "cannot fork: %s", strerror(fork_errno));
        return -fork_errno;
    }
    setpgid(pid, pid); /* also in the child: whichever runs first wins the race */
    struct spawn_err e;
    bool failed = read_report(pfd[0], &e);
    close(pfd[0]);
    if (failed) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        describe_spawn_err(s, &e, errbuf, errlen);
        return e.err > 0 ? -e.err : -EIO;
    }
    p.pid = pid;
    reg_add(pid);
    guard_send(GUARD_ADD, pid);
    *out = p;
    return 0;
}

int proc_spawn(const struct proc_spec *s, struct proc *out, char *errbuf, size_t errlen)
{
    char dummy[8];
    if (!errbuf || errlen == 0) {
        errbuf = dummy;
        errlen = sizeof(dummy);
    }
    errbuf[0] = '\0';
    if (!s->argv || !s->argv[0] || !s->argv[0][0]) {
        snprintf(errbuf, errlen, "empty command");
        return -EINVAL;
    }
    struct user_info u = {0};
    struct spawn_ctx x = {.fd_in = -1, .fd_out = -1, .fd_err = -1, .argv = s->argv, .cwd = s->cwd};
    int r = 0;
    if (s->user) {
        r = user_resolve(s->user, &u);
        if (r < 0) {
            snprintf(errbuf, errlen, "cannot switch to user '%s': %s", s->user,
                     r == -ENOENT ? "no such user" : strerror(-r));
            goto out;
        }
        x.user = &u;
    }
    r = open_stdio(s, x.user, &x, errbuf, errlen);
    if (r < 0)
        goto out;
    x.env = env_build(s->env_extra, x.user);
    x.cands = exec_candidates(s->argv[0], x.env);
    r = spawn_fork(s, &x, out, errbuf, errlen);
out:
    if (x.fd_in >= 0)
        close(x.fd_in);
    if (x.fd_out >= 0)
        close(x.fd_out);
    if (x.fd_err >= 0)
        close(x.fd_err);
    strv_free(x.env);
    strv_free(x.cands);
    user_info_free(&u);
    return r;
}

/* ---- processes tagged with the session's environment variable ---- */

bool proc_environ_has(pid_t pid, const char *tag)
{
    char path[64], buf[65536];
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    size_t tl = strlen(tag);
    for (char *e = buf; e < buf + n; e += strlen(e) + 1)
        if (strncmp(e, tag, tl) == 0 && e[tl] == '\0')
            return true;
    return false;
}

struct tag_scan {
    const char *tag;
    int sig;
    size_t found;
};

static int kill_if_tagged(const struct proc_stat *st, void *ud)
{
    struct tag_scan *t = ud;
    if (st->pid == getpid() || st->state == 'Z' || !proc_environ_has(st->pid, t->tag))
        return 0;
    t->found++;
    if (t->sig)
        kill(st->pid, t->sig);
    return 0;
}

size_t proc_kill_tagged(const char *tag, int sig)
{
    struct tag_scan t = {.tag = tag, .sig = sig};
    if (tag && *tag)
        proc_scan(kill_if_tagged, &t);
    return t.found;
}

/* ---- the guardian ---- */

struct guardian {
    pid_t groups[GUARDIAN_MAX_GROUPS];
    size_t n;
    int64_t jobs[GUARDIAN_MAX_JOBS];
    size_t njobs;
    char tag[256];
    size_t (*sweep)(const char *prefix); /* batch backends: their jobs by name */
    char prefix[256];
    bool done; /* sonde ended normally (GUARD_DONE): it swept itself */
};

static void guardian_apply(struct guardian *g, const struct guard_rec *rec)
{
    if (rec->op == GUARD_DONE) {
        g->done = true;
        return;
    }
    if (rec->op == GUARD_JOB_ADD && rec->job > 0 && g->njobs < GUARDIAN_MAX_JOBS) {
        g->jobs[g->njobs++] = rec->job;
        return;
    }
    for (size_t i = 0; rec->op == GUARD_JOB_DEL && i < g->njobs; i++) {
        if (g->jobs[i] == rec->job) {
            g->jobs[i] = g->jobs[--g->njobs];
            return;
        }
    }
    if (rec->op == GUARD_ADD && rec->pgid > 0 && g->n < GUARDIAN_MAX_GROUPS) {
        g->groups[g->n++] = rec->pgid;
        return;
    }
    for (size_t i = 0; rec->op == GUARD_DEL && i < g->n; i++) {
        if (g->groups[i] == rec->pgid) {
            g->groups[i] = g->groups[--g->n];
            return;
        }
    }
}

static bool guardian_any_alive(const struct guardian *g)
{
    for (size_t i = 0; i < g->n; i++)
        if (proc_group_alive(g->groups[i]))
            return true;
    return false;
}

/* `scancel` for every batch job sonde left behind (bounded wait). */
static void guardian_cancel_jobs(const struct guardian *g)
{
    if (!g->njobs)
        return;
    char **argv = NULL;
    strv_push(&argv, "scancel");
    for (size_t i = 0; i < g->njobs; i++) {
        char id[32];
        snprintf(id, sizeof(id), "%lld", (long long)g->jobs[i]);
        strv_push(&argv, id);
    }
    capture_run(argv, NULL, NULL, GUARDIAN_TERM_NS * 6);
    strv_free(argv);
}

static _Noreturn void guardian_cleanup(const struct guardian *g)
{
    guardian_cancel_jobs(g);
    if (!g->done && g->sweep && g->prefix[0])
        g->sweep(g->prefix);
    for (size_t i = 0; i < g->n; i++) {
        kill(-g->groups[i], SIGTERM);
        kill(-g->groups[i], SIGCONT);
    }
    int64_t deadline = mono_ns() + GUARDIAN_TERM_NS;
    while (guardian_any_alive(g) && mono_ns() < deadline)
        sleep_ns(50 * MS);
    for (size_t i = 0; i < g->n; i++)
        kill(-g->groups[i], SIGKILL);
    /* Processes that left their group (setsid, daemons) still carry the tag. */
    if (proc_kill_tagged(g->tag, SIGTERM)) {
        sleep_ns(GUARDIAN_TERM_NS / 5);
        proc_kill_tagged(g->tag, SIGKILL);
    }
    _exit(0);
}

static void guardian_setup(int fd)
{
    setpgid(0, 0); /* a Ctrl-C on the terminal must not kill it before sonde */
    prctl(PR_SET_NAME, "sonde-guardian");
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Keep only the socket: no session files, no SQLite database. */
    if (fd > 3)
        close_range(3, (unsigned)fd - 1, 0);
    close_range((unsigned)fd + 1, ~0U, 0);
    int nul = open("/dev/null", O_RDWR);
    for (int i = 0; i < 3 && nul >= 0; i++)
        if (i != nul)
            dup2(nul, i);
    if (nul > 2)
        close(nul);
}

static _Noreturn void guardian_main(int fd, const char *tag, size_t (*sweep)(const char *prefix),
                                    const char *job_prefix)
{
    static struct guardian g;
    snprintf(g.tag, sizeof(g.tag), "%s", tag ? tag : "");
    g.sweep = sweep;
    snprintf(g.prefix, sizeof(g.prefix), "%s", job_prefix ? job_prefix : "");
    guardian_setup(fd);
    struct guard_rec rec;
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, (char *)&rec + have, sizeof(rec) - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            guardian_cleanup(&g); /* sonde exited or died */
        have += (size_t)n;
        if (have == sizeof(rec)) {
            guardian_apply(&g, &rec);
            have = 0;
        }
    }
}

int proc_guardian_start(const char *tag, size_t (*sweep)(const char *prefix),
                        const char *job_prefix)
{
    if (guard_fd >= 0 && guard_owner == getpid())
        return 0;
    if (guard_fd >= 0) { /* inherited through fork from the process that started it */
        close(guard_fd);
        guard_fd = -1;
        guard_pid = 0;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        log_warn("cannot become a child subreaper: %s", strerror(errno));
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        return -e;
    }
    if (pid == 0) {
        close(sv[0]);
        guardian_main(sv[1], tag, sweep, job_prefix);
    }
    close(sv[1]);
    setpgid(pid, pid);
    guard_fd = fd_high(sv[0]);
    guard_pid = pid;
    guard_owner = getpid();
    return 0;
}

void proc_guardian_stop(void)
{
    if (guard_fd < 0 || guard_owner != getpid())
        return;
    guard_send_rec((struct guard_rec){.op = GUARD_DONE});
    close(guard_fd);
    guard_fd = -1;
    int64_t deadline = mono_ns() + GUARDIAN_WAIT_NS;
    pid_t r;
    while ((r = waitpid(guard_pid, NULL, WNOHANG)) == 0 && mono_ns() < deadline)
        sleep_ns(5 * MS);
    if (r == 0) {
        log_warn("guardian process %d did not exit; killing it", (int)guard_pid);
        kill(guard_pid, SIGKILL);
        while (waitpid(guard_pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    guard_pid = 0;
}
