/* capture.c — run a short command and collect its output (see capture.h). */
#include "util/capture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS (1000000LL)

volatile sig_atomic_t capture_cancelled;

/* Never returns: execs argv, or reports errno through err_pipe and exits 127. */
static _Noreturn void child(char *const *argv, int out_fd, int err_fd, int err_pipe)
{
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0)
        dup2(nul, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    execvp(argv[0], argv);
    int e = errno;
    (void)!write(err_pipe, &e, sizeof(e));
    _exit(127);
}

/* Reads what is there from fd into b (dropping what exceeds its max); false at EOF. */
static bool drain(int fd, struct sbuf *b)
{
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0)
        return errno == EINTR || errno == EAGAIN;
    if (n == 0)
        return false;
    if (b)
        (void)sbuf_add(b, buf, (size_t)n); /* -ENOSPC: the rest is dropped */
    return true;
}

int capture_run(char *const *argv, struct sbuf *out, struct sbuf *err, int64_t timeout_ns)
{
    if (!argv || !argv[0])
        return -EINVAL;
    int po[2], pe[2], px[2];
    if (pipe2(po, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(pe, O_CLOEXEC) < 0) {
        int e = errno;
        close(po[0]);
        close(po[1]);
        return -e;
    }
    if (pipe2(px, O_CLOEXEC) < 0) { /* closed by a successful exec: tells ENOENT apart */
        int e = errno;
        close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        return -e;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(px[0]);
        child(argv, po[1], pe[1], px[1]);
    }
    int fork_errno = errno;
    close(po[1]);
    close(pe[1]);
    close(px[1]);
    if (pid < 0) {
        close(po[0]), close(pe[0]), close(px[0]);
        return -fork_errno;
    }
    setpgid(pid, pid);
    int64_t deadline = mono_ns() + timeout_ns;
    bool cancelled = false;
    struct pollfd fds[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    bool timed_out = false;
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        int64_t left = deadline - mono_ns();
        if (left <= 0 || capture_cancelled) {
            cancelled = capture_cancelled;
            timed_out = true;
            kill(-pid, SIGKILL);
            break;
        }
        if (left > 100 * MS) /* notice capture_cancelled even if its signal came just before */
            left = 100 * MS;
        int n = poll(fds, 2, (int)(left / MS) + 1);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2 && n > 0; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (!drain(fds[i].fd, i == 0 ? out : err)) {
                close(fds[i].fd);
                fds[i].fd = -1;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    int exec_errno = 0;
    ssize_t got = read(px[0], &exec_errno, sizeof(exec_errno));
    close(px[0]);
    int status = 0;
    /* The pipes may close before the child exits: the deadline holds for that too. */
    for (;;) {
        pid_t w = waitpid(pid, &status, timed_out ? 0 : WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            return -errno;
        if (w == 0 && (mono_ns() >= deadline || capture_cancelled)) {
            cancelled = cancelled || capture_cancelled;
            timed_out = true;
            kill(-pid, SIGKILL);
        } else if (w == 0) {
            sleep_ns(MS);
        }
    }
    if (got == (ssize_t)sizeof(exec_errno) && exec_errno)
        return -exec_errno;
    return cancelled ? -ECANCELED : timed_out ? -ETIMEDOUT : status;
}
