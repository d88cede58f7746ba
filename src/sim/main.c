/* sonde-sim — the calibrated reference HTTP/1.1 server (see docs/sim.md).
 *
 * main() parses the options, opens one SO_REUSEPORT listener per worker
 * thread, prints "listening on HOST:PORT", then waits for SIGTERM/SIGINT (or
 * --max-requests) and stops the workers through one eventfd. */
#include "sim/sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/util.h"

int main(int argc, char **argv);

struct thread_arg {
    struct sim_config *cfg;
    pthread_t tid;
    int lfd, index, rc;
    struct sim_totals totals;
};

#define FD_WANT ((rlim_t)1 << 16) /* connections a test may open */

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_max < FD_WANT) { /* where the process may raise the hard limit */
        struct rlimit more = {FD_WANT, FD_WANT};
        if (setrlimit(RLIMIT_NOFILE, &more) == 0)
            return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Opens a listener on host:*port (SO_REUSEPORT); sets *port when it was 0. */
static int open_listener(const char *host, int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, r = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 65535) < 0) {
        r = -errno;
        goto out;
    }
    socklen_t len = sizeof(sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        r = -errno;
        goto out;
    }
    *port = ntohs(sa.sin_port);
out:
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    a->rc = sim_worker_run(a->cfg, a->lfd, a->index, &a->totals);
    return NULL;
}

static char *make_body(int64_t size)
{
    char *b = xmalloc((size_t)size + 1);
    for (int64_t i = 0; i < size; i++)
        b[i] = i % 2 ? 'k' : 'o';
    b[size] = '\0';
    return b;
}

/* Blocks until SIGTERM/SIGINT arrives or a worker signals stop_fd. */
static void wait_for_stop(int sfd, int stop_fd)
{
    struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
    while (poll(p, 2, -1) < 0 && errno == EINTR)
        ;
    uint64_t one = 1;
    if (write(stop_fd, &one, sizeof(one)) < 0)
        fprintf(stderr, "sonde-sim: cannot stop the workers: %s\n", strerror(errno));
}

static int start_threads(struct sim_config *cfg, struct thread_arg *ta)
{
    int port = cfg->port;
    for (int i = 0; i < cfg->threads; i++) {
        ta[i] = (struct thread_arg){.cfg = cfg, .index = i, .lfd = -1};
        ta[i].lfd = open_listener(cfg->host, &port);
        if (ta[i].lfd < 0) {
            fprintf(stderr, "sonde-sim: cannot listen on %s:%d: %s\n", cfg->host, port,
                    strerror(-ta[i].lfd));
            return ta[i].lfd;
        }
    }
    cfg->start_ns = mono_ns();
    for (int i = 0; i < cfg->threads; i++) {
        int r = pthread_create(&ta[i].tid, NULL, thread_main, &ta[i]);
        if (r != 0) {
            fprintf(stderr, "sonde-sim: cannot start a thread: %s\n", strerror(r));
            exit(1);
        }
    }
    printf("listening on %s:%d\n", cfg->host, port);
    fflush(stdout);
    return 0;
}

static int finish(struct sim_config *cfg, struct thread_arg *ta)
{
    struct sim_totals sum = {0};
    int rc = 0;
    for (int i = 0; i < cfg->threads; i++) {
        pthread_join(ta[i].tid, NULL);
        close(ta[i].lfd);
        sum.responses += ta[i].totals.responses;
        sum.errors += ta[i].totals.errors;
        if (ta[i].rc < 0) {
            fprintf(stderr, "sonde-sim: worker %d failed: %s\n", i, strerror(-ta[i].rc));
            rc = 1;
        }
    }
    fprintf(stderr, "sonde-sim: %" PRIu64 " requests served, %" PRIu64 " errors injected\n",
            sum.responses, sum.errors);
    return rc;
}

int main(int argc, char **argv)
{
    struct sim_config cfg;
    int r = sim_parse_args(argc, argv, &cfg);
    if (r != 0) {
        sim_config_free(&cfg);
        return r > 0 ? 0 : 2;
    }
    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the workers inherit the mask */
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    cfg.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    cfg.body = make_body(cfg.size);
    if (cfg.openai && cfg.max_concurrency > 0 && cfg.threads > 1)
        cfg.oai_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (cfg.openai)
        cfg.oai_stats = xcalloc((size_t)cfg.threads, sizeof(*cfg.oai_stats));
    struct thread_arg *ta = xcalloc((size_t)cfg.threads, sizeof(*ta));
    if (sfd < 0 || cfg.stop_fd < 0 || start_threads(&cfg, ta) < 0)
        return 1;
    wait_for_stop(sfd, cfg.stop_fd);
    r = finish(&cfg, ta);
    close(sfd);
    close(cfg.stop_fd);
    if (cfg.oai_wake_fd >= 0)
        close(cfg.oai_wake_fd);
    free(ta);
    free(cfg.oai_stats);
    sim_config_free(&cfg);
    return r;
}
