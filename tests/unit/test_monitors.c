/* test_monitors.c — /proc readers and the node/process monitors, on this real machine. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backends/proc.h"
#include "core/session.h"
#include "drivers/monitors/monitors.h"
#include "util/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS ((int64_t)1000000)

extern const struct driver_ops driver_monitor_node;
extern const struct driver_ops driver_monitor_process;

/* ---- readers ---- */

static void test_cpu(void **state)
{
    struct procfs_cpu a, b;
    assert_int_equal(procfs_read_cpu(&a), 0);
    assert_true(a.ncpus >= 1);
    assert_int_equal(a.ncpus, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    assert_true(a.idle <= a.total);
    assert_true(a.total > 0);
    sleep_ns(30 * MS);
    assert_int_equal(procfs_read_cpu(&b), 0);
    assert_true(b.total > a.total); /* 30 ms is at least a few jiffies */
    assert_true(b.idle >= a.idle);
}

static void test_parse_cpu(void **state)
{
    struct procfs_cpu c;
    const char *text = "cpu  100 1 50 1000 20 3 4 5 7 0\ncpu0 50 0 25 500 10 1 2 2 0 0\n"
                       "cpu1 50 1 25 500 10 2 2 3 0 0\nintr 12345\nctxt 99\n";
    assert_int_equal(procfs_parse_cpu(text, &c), 0);
    assert_int_equal(c.total, 100 + 1 + 50 + 1000 + 20 + 3 + 4 + 5); /* guest is inside user */
    assert_int_equal(c.idle, 1020);
    assert_int_equal(c.ncpus, 2);
    assert_int_equal(procfs_parse_cpu("intr 1\n", &c), -EINVAL);
    assert_int_equal(procfs_parse_cpu("cpu  x\ncpu0 1 2 3 4\n", &c), -EINVAL);
    assert_int_equal(procfs_parse_cpu("", &c), -EINVAL);
}

static void test_mem(void **state)
{
    struct procfs_mem m;
    assert_int_equal(procfs_read_mem(&m), 0);
    uint64_t phys = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    assert_true(m.total_bytes > 0);
    assert_true(m.total_bytes <= phys + (64u << 20) && m.total_bytes >= phys / 2);
    assert_true(m.available_bytes > 0 && m.available_bytes <= m.total_bytes);
    assert_int_equal(
        procfs_parse_mem("MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable: 600 kB\n", &m), 0);
    assert_int_equal(m.total_bytes, 1024000);
    assert_int_equal(m.available_bytes, 614400);
    assert_int_equal(procfs_parse_mem("MemFree: 10 kB\n", &m), -EINVAL);
}

static void test_net(void **state)
{
    struct procfs_net a, b;
    assert_int_equal(procfs_read_net(&a), 0);
    assert_int_equal(procfs_read_net(&b), 0);
    assert_true(b.rx_bytes >= a.rx_bytes && b.tx_bytes >= a.tx_bytes);
    const char *text =
        "Inter-|   Receive                            |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets\n"
        "    lo:    8421     109    0    0    0     0          0         0     8421     109    0 "
        "   0    0     0       0          0\n"
        "  eth0: 1000    29    0    0    0     0          0         0   200    28    0    0    0 "
        "    0       0          0\n"
        "  eth1: 5 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0\n";
    assert_int_equal(procfs_parse_net(text, &a), 0);
    assert_int_equal(a.rx_bytes, 1005);
    assert_int_equal(a.tx_bytes, 207);
    assert_int_equal(procfs_parse_net("  eth0: x y\n", &a), -EINVAL);
}

static void test_disk(void **state)
{
    struct procfs_disk a, b;
    assert_int_equal(procfs_read_disk(&a), 0);
    assert_int_equal(procfs_read_disk(&b), 0);
    assert_true(b.read_bytes >= a.read_bytes && b.write_bytes >= a.write_bytes);
    assert_int_equal(a.read_bytes % 512, 0);
}

/* ---- process groups ---- */

static void spawn(char *const *argv, struct proc *p)
{
    struct proc_spec s = {.argv = argv, .stdin_fd = -1};
    char eb[256];
    assert_int_equal(proc_spawn(&s, p, eb, sizeof(eb)), 0);
}

static char *busy_argv[] = {"sh", "-c", "while :; do :; done", NULL};
static char *sleep_argv[] = {"sleep", "100", NULL};

/* CPU use of group pg over a 0.5 s window, in percent of one core. */
static double window_percent(pid_t pg)
{
    struct procfs_usage a, b;
    assert_int_equal(procfs_read_pgroup(pg, &a), 0);
    int64_t t0 = mono_ns();
    sleep_ns(500 * MS);
    assert_int_equal(procfs_read_pgroup(pg, &b), 0);
    double secs = (double)(mono_ns() - t0) / 1e9;
    return 100.0 * (b.cpu_seconds - a.cpu_seconds) / secs;
}

static void test_pgroup_busy(void **state)
{
    struct proc busy, idle;
    spawn(busy_argv, &busy);
    spawn(sleep_argv, &idle);
    sleep_ns(50 * MS); /* let both exec */
    /* A loaded machine (parallel tests) may starve one window: best of three. */
    double busy_pct = 0;
    for (int i = 0; i < 3 && busy_pct <= 50.0; i++) {
        double w = window_percent(busy.pid);
        assert_true(w < 110.0); /* one process cannot use more than one core */
        busy_pct = w > busy_pct ? w : busy_pct;
    }
    assert_true(busy_pct > 50.0);
    assert_true(window_percent(idle.pid) < 10.0);
    pid_t pg[3] = {busy.pid, idle.pid, 999999999};
    struct procfs_usage u[3];
    assert_int_equal(procfs_read_pgroups(pg, 3, u), 0);
    assert_int_equal(u[0].nprocs, 1);
    assert_int_equal(u[1].nprocs, 1);
    assert_true(u[0].rss_bytes > 0 && u[1].rss_bytes > 0);
    assert_true(u[0].cpu_seconds > 0.25);
    assert_int_equal(u[2].nprocs, 0);
    assert_int_equal(u[2].rss_bytes, 0);
    struct procfs_usage one;
    assert_int_equal(procfs_read_pgroup(busy.pid, &one), 0);
    assert_true(one.cpu_seconds >= u[0].cpu_seconds);
    proc_stop(&busy, 1000 * MS);
    proc_stop(&idle, 1000 * MS);
    assert_int_equal(procfs_read_pgroup(busy.pid, &one), -ESRCH);
}

static int64_t cpu_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void test_self(void **state)
{
    struct procfs_usage a, b;
    assert_int_equal(procfs_read_pid(getpid(), &a), 0);
    assert_int_equal(a.nprocs, 1);
    assert_true(a.rss_bytes > 0);
    volatile uint64_t x = 0;
    int64_t end = cpu_clock_ns() + 200 * MS; /* 200 ms of CPU, however long that takes */
    while (cpu_clock_ns() < end)
        x++;
    assert_int_equal(procfs_read_pid(getpid(), &b), 0);
    assert_true(b.cpu_seconds - a.cpu_seconds >= 0.15);
    assert_int_equal(procfs_read_pid(999999999, &b), -ESRCH);
}

static void test_sample_cost(void **state)
{
    /* A whole node sample plus a process-group scan stays well under 5 ms of CPU
     * (CPU time, not wall time, so a loaded machine does not fail it). */
    int64_t t0 = cpu_clock_ns();
    for (int i = 0; i < 50; i++) {
        struct procfs_cpu c;
        struct procfs_mem m;
        struct procfs_net n;
        struct procfs_disk d;
        struct procfs_usage u[2];
        pid_t pg[2] = {getpgrp(), 1};
        assert_int_equal(procfs_read_cpu(&c), 0);
        assert_int_equal(procfs_read_mem(&m), 0);
        assert_int_equal(procfs_read_net(&n), 0);
        assert_int_equal(procfs_read_disk(&d), 0);
        assert_int_equal(procfs_read_pgroups(pg, 2, u), 0);
    }
    int64_t each = (cpu_clock_ns() - t0) / 50;
    assert_true(each < 5 * MS);
}

/* ---- the drivers, with a recording stand-in for the session's sinks ---- */

struct point {
    char name[64], labels[128];
    double value;
    bool metric;
};

struct session {
    struct comp **comps;
    size_t n;
    struct point pts[4096];
    size_t npts;
    int warnings;
};

static int record(struct comp *c, const char *name, const char *labels, double v, bool metric)
{
    struct session *s = c->session;
    if (s->npts >= SONDE_ARRAY_LEN(s->pts))
        return -ENOSPC;
    struct point *p = &s->pts[s->npts++];
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->labels, sizeof(p->labels), "%s", labels ? labels : "");
    p->value = v;
    p->metric = metric;
    return 0;
}

int comp_metric(struct comp *c, const char *name, const char *unit, const char *labels,
                double value)
{
    return record(c, name, labels, value, true);
}

int comp_series_point(struct comp *c, const char *name, const char *unit, const char *labels,
                      int64_t wall, double value)
{
    assert_true(wall > 0);
    return record(c, name, labels, value, false);
}

void comp_warn(struct comp *c, const char *fmt, ...)
{
    c->session->warnings++;
}

size_t session_comps(struct session *s, struct comp ***out)
{
    *out = s->comps;
    return s->n;
}

/* The last value recorded under name/labels, or -1 with *found false. */
static double find(const struct session *s, const char *name, const char *labels, bool metric,
                   int *count)
{
    double v = -1;
    *count = 0;
    for (size_t i = 0; i < s->npts; i++) {
        const struct point *p = &s->pts[i];
        if (p->metric == metric && strcmp(p->name, name) == 0 &&
            strcmp(p->labels, labels ? labels : "") == 0) {
            v = p->value;
            (*count)++;
        }
    }
    return v;
}

static void test_node_driver(void **state)
{
    static struct session s;
    memset(&s, 0, sizeof(s));
    struct comp_spec spec = {.role = ROLE_MONITOR, .name = "node", .interval_ns = 100 * MS};
    struct comp c = {.spec = &spec, .ops = &driver_monitor_node, .session = &s};
    assert_int_equal(driver_monitor_node.start(&c), 0);
    assert_int_equal(driver_monitor_node.tick(&c, mono_ns()), 0);
    assert_int_equal(s.npts, 0); /* not due yet */
    for (int i = 0; i < 3; i++) {
        sleep_ns(110 * MS);
        assert_int_equal(driver_monitor_node.tick(&c, mono_ns()), 0);
    }
    int n;
    double cpu = find(&s, "cpu_percent", NULL, false, &n);
    assert_int_equal(n, 3);
    assert_true(cpu >= 0 && cpu <= 100);
    double mem = find(&s, "mem_used_bytes", NULL, false, &n);
    assert_int_equal(n, 3);
    assert_true(mem > 0);
    double pct = find(&s, "mem_used_percent", NULL, false, &n);
    assert_true(pct > 0 && pct < 100);
    const char *rates[] = {"net_rx_bytes_per_s", "net_tx_bytes_per_s", "disk_read_bytes_per_s",
                           "disk_write_bytes_per_s"};
    for (size_t i = 0; i < 4; i++) {
        assert_true(find(&s, rates[i], NULL, false, &n) >= 0);
        assert_int_equal(n, 3);
    }
    assert_int_equal(driver_monitor_node.finish(&c), 0);
    assert_true(find(&s, "cpu_percent_mean", NULL, true, &n) >= 0);
    assert_int_equal(n, 1);
    assert_true(find(&s, "cpu_percent_max", NULL, true, &n) >= 0);
    assert_true(find(&s, "mem_used_bytes_max", NULL, true, &n) >= mem * 0.5);
    assert_true(find(&s, "disk_write_bytes_per_s_mean", NULL, true, &n) >= 0);
    assert_int_equal(n, 1);
    find(&s, "mem_used_percent_mean", NULL, true, &n);
    assert_int_equal(n, 0);
    driver_monitor_node.cleanup(&c);
    assert_null(c.priv);
}

static void test_process_driver(void **state)
{
    static struct session s;
    memset(&s, 0, sizeof(s));
    struct comp_spec mspec = {.role = ROLE_MONITOR, .name = "proc", .interval_ns = 300 * MS};
    struct comp_spec sspec = {.role = ROLE_SERVICE, .name = "busy"};
    struct comp_spec cspec = {.role = ROLE_CLIENT, .name = "late"};
    struct comp mon = {.spec = &mspec, .ops = &driver_monitor_process, .session = &s};
    struct comp svc = {.spec = &sspec, .session = &s};
    struct comp cli = {.spec = &cspec, .session = &s};
    struct comp *comps[3] = {&svc, &mon, &cli};
    s.comps = comps;
    s.n = 2; /* the client is not there yet */
    spawn(busy_argv, &svc.proc);
    assert_int_equal(driver_monitor_process.start(&mon), 0);
    sleep_ns(320 * MS);
    assert_int_equal(driver_monitor_process.tick(&mon, mono_ns()), 0);
    int n;
    double cpu = find(&s, "cpu_percent", "{\"component\":\"busy\"}", false, &n);
    assert_int_equal(n, 1);
    assert_true(cpu > 25 && cpu < 110); /* accuracy is test_pgroup_busy's job */
    assert_true(find(&s, "rss_bytes", "{\"component\":\"busy\"}", false, &n) > 0);
    assert_int_equal(find(&s, "nprocs", "{\"component\":\"busy\"}", false, &n), 1);
    assert_true(find(&s, "cpu_percent", "{\"component\":\"sonde\"}", false, &n) >= 0);
    assert_int_equal(n, 1);
    /* A client that starts later is picked up; a group that ends stops producing. */
    spawn(sleep_argv, &cli.proc);
    s.n = 3;
    proc_stop(&svc.proc, 1000 * MS);
    sleep_ns(320 * MS);
    assert_int_equal(driver_monitor_process.tick(&mon, mono_ns()), 0);
    find(&s, "cpu_percent", "{\"component\":\"busy\"}", false, &n);
    assert_int_equal(n, 1);
    assert_int_equal(find(&s, "nprocs", "{\"component\":\"late\"}", false, &n), 1);
    /* Started during the trial: counted from its start, so a point right away. */
    assert_true(find(&s, "cpu_percent", "{\"component\":\"late\"}", false, &n) < 10);
    assert_int_equal(n, 1);
    sleep_ns(320 * MS);
    assert_int_equal(driver_monitor_process.tick(&mon, mono_ns()), 0);
    assert_true(find(&s, "cpu_percent", "{\"component\":\"late\"}", false, &n) < 10);
    assert_int_equal(n, 2);
    assert_int_equal(driver_monitor_process.finish(&mon), 0);
    assert_true(find(&s, "cpu_percent_mean", "{\"component\":\"busy\"}", true, &n) > 25);
    assert_int_equal(n, 1);
    assert_true(find(&s, "cpu_percent_max", "{\"component\":\"busy\"}", true, &n) > 25);
    assert_true(find(&s, "rss_bytes_max", "{\"component\":\"late\"}", true, &n) > 0);
    assert_true(find(&s, "rss_bytes_max", "{\"component\":\"sonde\"}", true, &n) > 0);
    assert_int_equal(s.warnings, 0);
    driver_monitor_process.cleanup(&mon);
    proc_stop(&cli.proc, 1000 * MS);
}

static int setup(void **state)
{
    return proc_guardian_start(NULL, NULL, NULL);
}

static int teardown(void **state)
{
    proc_guardian_stop();
    return 0;
}

/* ---- the monitor agent (batch jobs' nodes) ---- */

static const char good_line[] =
    "{\"t\":1795615796830328730,\"node\":\"n2\",\"cpu_percent\":93.9,\"mem_used_bytes\":457330688."
    "0,"
    "\"mem_used_percent\":1.8,\"net_rx_bytes_per_s\":0,\"net_tx_bytes_per_s\":0,"
    "\"disk_read_bytes_per_s\":12282.7,\"disk_write_bytes_per_s\":61413.7,"
    "\"job\":{\"cpu_percent\":31.9,\"rss_bytes\":3477504.0,\"nprocs\":2}}";

static void test_agent_parse(void **state)
{
    (void)state;
    struct agent_sample s;
    assert_int_equal(agent_parse_line(good_line, strlen(good_line), &s), 0);
    assert_true(s.t == 1795615796830328730LL);
    assert_string_equal(s.node, "n2");
    assert_true(s.node_v[NODE_CPU] == 93.9 && s.node_v[NODE_DISK_WR] == 61413.7);
    assert_true(s.has_job && s.job_nprocs == 2 && s.job_rss_bytes == 3477504.0);
    /* without the job part: node series only */
    const char *nojob = "{\"t\":5,\"node\":\"a\",\"cpu_percent\":1,\"mem_used_bytes\":2,"
                        "\"mem_used_percent\":3,\"net_rx_bytes_per_s\":4,\"net_tx_bytes_per_s\":5,"
                        "\"disk_read_bytes_per_s\":6,\"disk_write_bytes_per_s\":7}";
    assert_int_equal(agent_parse_line(nojob, strlen(nojob), &s), 0);
    assert_false(s.has_job);
    assert_true(s.node_v[NODE_MEM_PCT] == 3);
    const char *bad[] = {
        "",
        "{",
        "[]",
        "{\"t\":5,\"node\":\"a\"}",                       /* series missing */
        "{\"t\":\"5\",\"node\":\"a\",\"cpu_percent\":1}", /* t a string */
        "{\"t\":0,\"node\":\"a\",\"cpu_percent\":1,\"mem_used_bytes\":2,\"mem_used_percent\":3,"
        "\"net_rx_bytes_per_s\":4,\"net_tx_bytes_per_s\":5,\"disk_read_bytes_per_s\":6,"
        "\"disk_write_bytes_per_s\":7}", /* t = 0 */
        "{\"t\":5,\"node\":\"\",\"cpu_percent\":1,\"mem_used_bytes\":2,\"mem_used_percent\":3,"
        "\"net_rx_bytes_per_s\":4,\"net_tx_bytes_per_s\":5,\"disk_read_bytes_per_s\":6,"
        "\"disk_write_bytes_per_s\":7}", /* empty node */
        "{\"t\":5,\"node\":\"a\",\"cpu_percent\":1,\"mem_used_bytes\":2,\"mem_used_percent\":3,"
        "\"net_rx_bytes_per_s\":4,\"net_tx_bytes_per_s\":5,\"disk_read_bytes_per_s\":6,"
        "\"disk_write_bytes_per_s\":7,\"job\":{\"cpu_percent\":1}}", /* job incomplete */
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(bad); i++)
        assert_int_equal(agent_parse_line(bad[i], strlen(bad[i]), &s), -EINVAL);
    char *huge = xcalloc(10000, 1);
    memset(huge, ' ', 9999);
    assert_int_equal(agent_parse_line(huge, 9999, &s), -EINVAL);
    free(huge);
}

/* A process of the pretend job: spins (busy) or sleeps, with SLURM_JOB_ID=job
 * (and the agent's own mark when agent_mark). */
static pid_t job_process(const char *job, bool busy, bool agent_mark)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("SLURM_JOB_ID", job, 1);
        if (agent_mark)
            setenv("SONDE_MONITOR_AGENT", "1", 1);
        else
            unsetenv("SONDE_MONITOR_AGENT");
        if (busy)
            execlp("sh", "sh", "-c", "while :; do :; done", (char *)NULL);
        else
            execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static volatile sig_atomic_t agent_stop;
static void agent_on_term(int sig)
{
    (void)sig;
    agent_stop = 1;
}

static pid_t start_agent(const char *dir, const char *job)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("SLURM_JOB_ID", job, 1);
        setenv("SLURMD_NODENAME", "testnode", 1);
        signal(SIGTERM, agent_on_term);
        char err[256] = "";
        _exit(agent_run(dir, 50 * MS, &agent_stop, err, sizeof(err)) == 0 ? 0 : 1);
    }
    return pid;
}

struct collected {
    size_t n, busy_samples;
    double max_job_cpu, max_nprocs;
};

static int collect_sample(const struct agent_sample *s, void *ud)
{
    struct collected *c = ud;
    assert_string_equal(s->node, "testnode");
    assert_true(s->has_job);
    c->n++;
    c->max_job_cpu = s->job_cpu_percent > c->max_job_cpu ? s->job_cpu_percent : c->max_job_cpu;
    c->max_nprocs = s->job_nprocs > c->max_nprocs ? s->job_nprocs : c->max_nprocs;
    c->busy_samples += s->job_cpu_percent > 30; /* a spinner shares 2 cores with the tests */
    return 0;
}

static bool exited_within(pid_t pid, int64_t ns, int *status)
{
    for (int64_t t = 0; t < ns; t += 10 * MS) {
        if (waitpid(pid, status, WNOHANG) == pid)
            return true;
        sleep_ns(10 * MS);
    }
    return false;
}

/* The agent counts the job's processes (by SLURM_JOB_ID), not its own marked
 * ones nor other jobs', and ends by itself once the job's processes are gone. */
static void test_agent_run(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_agent_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char job[64];
    snprintf(job, sizeof(job), "test-%d", (int)getpid());
    pid_t spin = job_process(job, true, false);
    pid_t idle = job_process(job, false, false);
    pid_t marked = job_process(job, false, true); /* like the agent's own step */
    pid_t other = job_process("another-job", false, false);
    sleep_ns(50 * MS);
    pid_t agent = start_agent(dir, job);
    sleep_ns(600 * MS);
    struct agent_reader *r = agent_reader_new();
    struct collected c = {0};
    int polled = agent_reader_poll(r, dir, collect_sample, &c);
    /* the job's processes end (and the others: nothing outlives a failed check) */
    pid_t all[] = {spin, idle, marked, other};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(all); i++) {
        kill(all[i], SIGKILL);
        waitpid(all[i], NULL, 0);
    }
    int st = 0;
    bool ended = exited_within(agent, 3000 * MS, &st); /* within 5 samples */
    if (!ended) {
        kill(agent, SIGKILL);
        waitpid(agent, NULL, 0);
    }
    assert_int_equal(polled, 0);
    assert_true(c.n >= 5);            /* 50 ms for 600 ms, on a busy machine */
    assert_true(c.max_nprocs == 2);   /* spin + idle: not the marked one, not the other job's */
    assert_true(c.busy_samples >= 1); /* the spinning process is seen using a CPU */
    assert_true(c.max_job_cpu < 100 * 1.5); /* one spinner: no process counted twice */
    assert_true(ended && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    size_t before = c.n;
    assert_int_equal(agent_reader_poll(r, dir, collect_sample, &c), 0);
    assert_true(c.n > before);
    assert_int_equal(agent_reader_bad(r), 0);
    agent_reader_free(r);
    char *file = path_join(dir, "testnode.jsonl");
    unlink(file);
    free(file);
    rmdir(dir);
}

/* SIGTERM ends it at once (Slurm's end of the step). */
static void test_agent_stop(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_agent_XXXXXX";
    assert_non_null(mkdtemp(dir));
    pid_t agent = start_agent(dir, "no-such-job-processes");
    sleep_ns(150 * MS);
    kill(agent, SIGTERM);
    int st = 0;
    bool ended = exited_within(agent, 1000 * MS, &st);
    if (!ended) {
        kill(agent, SIGKILL);
        waitpid(agent, NULL, 0);
    }
    assert_true(ended && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *file = path_join(dir, "testnode.jsonl");
    unlink(file);
    free(file);
    rmdir(dir);
    /* an unwritable directory: an error, not a hang */
    agent_stop = 0;
    char err[256] = "";
    assert_true(agent_run("/nonexistent/dir", 50 * MS, &agent_stop, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "/nonexistent/dir/"));
}

static int count_sample(const struct agent_sample *s, void *ud)
{
    (void)s;
    (*(size_t *)ud)++;
    return 0;
}

/* The reader takes complete lines only, once each, and skips bad ones. */
static void test_agent_reader(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_agentr_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *f1 = path_join(dir, "a.jsonl"), *f2 = path_join(dir, "b.jsonl");
    char *other = path_join(dir, "agent.log");
    FILE *a = fopen(f1, "w");
    assert_non_null(a);
    fprintf(a, "%s\n%s\nnot json\n%.40s", good_line, good_line, good_line); /* + half a line */
    fflush(a);
    FILE *log = fopen(other, "w");
    fprintf(log, "%s\n", good_line); /* not a .jsonl: ignored */
    fclose(log);
    struct agent_reader *r = agent_reader_new();
    size_t n = 0;
    assert_int_equal(agent_reader_poll(r, dir, count_sample, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(agent_reader_bad(r), 1);
    n = 0;
    assert_int_equal(agent_reader_poll(r, dir, count_sample, &n), 0);
    assert_int_equal(n, 0);             /* nothing new */
    fprintf(a, "%s\n", good_line + 40); /* the half line completed */
    fclose(a);
    FILE *b = fopen(f2, "w");
    fprintf(b, "%s\n", good_line);
    fclose(b);
    assert_int_equal(agent_reader_poll(r, dir, count_sample, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(agent_reader_bad(r), 1);
    assert_true(agent_reader_has(r, dir));
    char *sibling = xasprintf("%sx", dir); /* a prefix, not the directory */
    assert_false(agent_reader_has(r, sibling));
    free(sibling);
    /* a directory that is not there (yet) is no error */
    char *none = path_join(dir, "none");
    assert_int_equal(agent_reader_poll(r, none, count_sample, &n), 0);
    assert_false(agent_reader_has(r, none));
    agent_reader_free(r);
    unlink(f1);
    unlink(f2);
    unlink(other);
    rmdir(dir);
    free(f1);
    free(f2);
    free(other);
    free(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu),         cmocka_unit_test(test_parse_cpu),
        cmocka_unit_test(test_mem),         cmocka_unit_test(test_net),
        cmocka_unit_test(test_disk),        cmocka_unit_test(test_pgroup_busy),
        cmocka_unit_test(test_self),        cmocka_unit_test(test_sample_cost),
        cmocka_unit_test(test_node_driver), cmocka_unit_test(test_process_driver),
        cmocka_unit_test(test_agent_parse), cmocka_unit_test(test_agent_run),
        cmocka_unit_test(test_agent_stop),  cmocka_unit_test(test_agent_reader),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
