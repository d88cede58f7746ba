/* test_proc.c — process groups, spawn errors, stop, the guardian, against real processes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backends/backend.h"
#include "backends/proc.h"
#include "util/util.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEC ((int64_t)1000000000)

static char tmpdir[] = "/tmp/sonde-test-proc-XXXXXX";

static char *tpath(const char *name)
{
    return path_join(tmpdir, name);
}

static char *slurp(const char *path)
{
    char *s = NULL;
    size_t n;
    assert_int_equal(read_file(path, 1 << 20, &s, &n), 0);
    return s;
}

static int spawn_argv(char *const *argv, const char *out, const char *err, struct proc *p)
{
    struct proc_spec s = {.argv = argv, .out_path = out, .err_path = err, .stdin_fd = -1};
    char eb[256];
    return proc_spawn(&s, p, eb, sizeof(eb));
}

struct count_ctx {
    pid_t pgid;
    int any, live;
};

static int count_group(const struct proc_stat *st, void *ud)
{
    struct count_ctx *c = ud;
    if (st->pgrp == c->pgid) {
        c->any++;
        c->live += st->state != 'Z';
    }
    return 0;
}

static struct count_ctx group_members(pid_t pgid)
{
    struct count_ctx c = {.pgid = pgid};
    proc_scan(count_group, &c);
    return c;
}

static void test_logs(void **state)
{
    char *out = tpath("out.log"), *err = tpath("err.log");
    char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    struct proc p;
    assert_int_equal(spawn_argv(argv, out, err, &p), 0);
    assert_true(p.pid > 0);
    assert_true(p.start_wall > 0);
    assert_int_equal(proc_wait(&p, 10 * SEC), 1);
    assert_true(p.exited);
    assert_true(WIFEXITED(p.status));
    assert_int_equal(WEXITSTATUS(p.status), 3);
    assert_true(p.end_mono >= p.start_mono);
    char *o = slurp(out), *e = slurp(err);
    assert_string_equal(o, "out\n");
    assert_string_equal(e, "err\n");
    free(o);
    free(e);
    /* Appends, and err_path NULL shares stdout. */
    assert_int_equal(spawn_argv(argv, out, NULL, &p), 0);
    assert_int_equal(proc_wait(&p, -1), 1);
    o = slurp(out);
    assert_string_equal(o, "out\nout\nerr\n");
    free(o);
    proc_stop(&p, SEC);
    free(out);
    free(err);
}

static void test_spawn_errors(void **state)
{
    struct proc p = {0};
    char eb[256];
    char *missing[] = {"sonde-no-such-program", NULL};
    struct proc_spec s = {.argv = missing, .stdin_fd = -1};
    assert_int_equal(proc_spawn(&s, &p, eb, sizeof(eb)), -ENOENT);
    assert_string_equal(eb, "cannot run 'sonde-no-such-program': No such file or directory");
    assert_int_equal(p.pid, 0);

    char *abs_missing[] = {"/nonexistent/prog", NULL};
    s.argv = abs_missing;
    assert_int_equal(proc_spawn(&s, &p, eb, sizeof(eb)), -ENOENT);
    assert_string_equal(eb, "cannot run '/nonexistent/prog': No such file or directory");

    char *ok[] = {"true", NULL};
    s.argv = ok;
    s.cwd = "/nonexistent/dir";
    assert_int_equal(proc_spawn(&s, &p, eb, sizeof(eb)), -ENOENT);
    assert_string_equal(eb,
                        "cannot change directory to '/nonexistent/dir': No such file or directory");

    s.cwd = NULL;
    s.user = "sonde-nosuch-user";
    assert_int_equal(proc_spawn(&s, &p, eb, sizeof(eb)), -ENOENT);
    assert_string_equal(eb, "cannot switch to user 'sonde-nosuch-user': no such user");

    s.user = NULL;
    s.out_path = "/nonexistent/dir/out.log";
    assert_true(proc_spawn(&s, &p, eb, sizeof(eb)) < 0);
    assert_non_null(strstr(eb, "cannot open log file '/nonexistent/dir/out.log'"));

    char *empty[] = {NULL};
    s.argv = empty;
    s.out_path = NULL;
    assert_int_equal(proc_spawn(&s, &p, eb, sizeof(eb)), -EINVAL);

    /* A directory is not executable. */
    char *dir[] = {"/tmp", NULL};
    s.argv = dir;
    assert_int_equal(proc_spawn(&s, &p, eb, sizeof(eb)), -EACCES);
    assert_string_equal(eb, "cannot run '/tmp': Permission denied");
}

static void test_env_cwd_stdin(void **state)
{
    char *out = tpath("env.log");
    char *argv[] = {"sh", "-c", "echo \"$FOO $HOME $(pwd)\"; cat", NULL};
    char *extra[] = {"FOO=bar baz", "HOME=/sonde-home", NULL};
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    assert_int_equal(write(pfd[1], "from stdin\n", 11), 11);
    close(pfd[1]);
    struct proc_spec s = {
        .argv = argv, .env_extra = extra, .cwd = "/", .out_path = out, .stdin_fd = pfd[0]};
    struct proc p;
    char eb[256];
    assert_int_equal(proc_spawn(&s, &p, eb, sizeof(eb)), 0);
    close(pfd[0]);
    assert_int_equal(proc_wait(&p, 10 * SEC), 1);
    assert_int_equal(p.status, 0);
    char *o = slurp(out);
    assert_string_equal(o, "bar baz /sonde-home /\nfrom stdin\n");
    free(o);
    free(out);
}

static void test_path_from_env(void **state)
{
    /* argv[0] is searched in the child's PATH (env_extra), not sonde's. */
    char *script = tpath("sonde-hello");
    const char *text = "#!/bin/sh\necho hello from script\n";
    assert_int_equal(write_file_atomic(script, text, strlen(text)), 0);
    assert_int_equal(chmod(script, 0755), 0);
    char *pathvar = xasprintf("PATH=/nonexistent:%s:/usr/bin:/bin", tmpdir);
    char *extra[] = {pathvar, NULL};
    char *argv[] = {"sonde-hello", NULL};
    char *out = tpath("hello.log");
    struct proc_spec s = {.argv = argv, .env_extra = extra, .out_path = out, .stdin_fd = -1};
    struct proc p;
    char eb[256];
    assert_int_equal(proc_spawn(&s, &p, eb, sizeof(eb)), 0);
    assert_int_equal(proc_wait(&p, 10 * SEC), 1);
    assert_int_equal(p.status, 0);
    char *o = slurp(out);
    assert_string_equal(o, "hello from script\n");
    free(o);
    free(out);
    free(pathvar);
    free(script);
}

static void test_stop_grandchild(void **state)
{
    char *argv[] = {"sh", "-c", "sleep 100 & sleep 100 & wait", NULL};
    struct proc p;
    assert_int_equal(spawn_argv(argv, NULL, NULL, &p), 0);
    /* Wait for the grandchildren to exist. */
    for (int i = 0; i < 200 && group_members(p.pid).live < 3; i++)
        sleep_ns(10000000);
    assert_int_equal(group_members(p.pid).live, 3);
    assert_true(proc_group_alive(p.pid));
    assert_int_equal(proc_poll(&p), 0);
    int64_t t0 = mono_ns();
    assert_int_equal(proc_stop(&p, 5 * SEC), 0);
    assert_true(mono_ns() - t0 < 4 * SEC); /* SIGTERM was enough */
    assert_true(p.exited);
    assert_false(proc_group_alive(p.pid));
    proc_reap_orphans();
    struct count_ctx c = group_members(p.pid);
    assert_int_equal(c.live, 0);
    assert_int_equal(c.any, 0); /* orphans were reaped too (we are a subreaper) */
    assert_int_equal(proc_signal(&p, 0), -ESRCH);
    /* Stopping again is harmless. */
    assert_int_equal(proc_stop(&p, SEC), 0);
}

static void test_stop_ignores_term(void **state)
{
    char *argv[] = {"sh", "-c", "trap '' TERM; sleep 100; echo not-reached", NULL};
    struct proc p;
    assert_int_equal(spawn_argv(argv, NULL, NULL, &p), 0);
    for (int i = 0; i < 200 && group_members(p.pid).live < 2; i++)
        sleep_ns(10000000);
    int64_t t0 = mono_ns();
    assert_int_equal(proc_stop(&p, 300000000), 0);
    int64_t took = mono_ns() - t0;
    assert_true(took >= 300000000);
    assert_true(took < 5 * SEC);
    assert_true(p.exited);
    assert_true(WIFSIGNALED(p.status));
    assert_int_equal(WTERMSIG(p.status), SIGKILL);
    assert_false(proc_group_alive(p.pid));
    assert_int_equal(group_members(p.pid).any, 0);
}

static void test_poll_signal(void **state)
{
    char *argv[] = {"sleep", "100", NULL};
    struct proc p;
    assert_int_equal(spawn_argv(argv, NULL, NULL, &p), 0);
    assert_int_equal(proc_poll(&p), 0);
    assert_int_equal(proc_wait(&p, 50000000), 0);
    assert_int_equal(proc_signal(&p, SIGUSR1), 0); /* default action: terminate */
    assert_int_equal(proc_wait(&p, 10 * SEC), 1);
    assert_true(WIFSIGNALED(p.status));
    assert_int_equal(WTERMSIG(p.status), SIGUSR1);
    assert_int_equal(proc_poll(&p), 1);
    proc_stop(&p, SEC);
}

static void test_describe_status(void **state)
{
    char buf[128];
    proc_describe_status(0, buf, sizeof(buf));
    assert_string_equal(buf, "exit status 0");
    proc_describe_status(3 << 8, buf, sizeof(buf));
    assert_string_equal(buf, "exit status 3");
    proc_describe_status(SIGKILL, buf, sizeof(buf));
    assert_string_equal(buf, "killed by signal 9 (SIGKILL)");
    proc_describe_status(SIGSEGV | 0x80, buf, sizeof(buf));
    assert_string_equal(buf, "killed by signal 11 (SIGSEGV), core dumped");
}

static void test_read_stat_odd_comm(void **state)
{
    /* A program whose name holds spaces and parentheses. */
    char *odd = tpath("a) b (c");
    char *s = NULL;
    size_t n;
    assert_int_equal(read_file("/bin/sleep", 1 << 24, &s, &n), 0);
    assert_int_equal(write_file_atomic(odd, s, n), 0);
    free(s);
    assert_int_equal(chmod(odd, 0755), 0);
    char *argv[] = {odd, "100", NULL};
    struct proc p;
    assert_int_equal(spawn_argv(argv, NULL, NULL, &p), 0);
    struct proc_stat st = {0};
    int r = -1;
    for (int i = 0; i < 200; i++) { /* until exec replaced the comm */
        r = proc_read_stat(p.pid, &st);
        char comm[64] = "";
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)p.pid);
        FILE *f = fopen(path, "r");
        bool named = f && fgets(comm, sizeof(comm), f) && strncmp(comm, "a) b (c", 7) == 0;
        if (f)
            fclose(f);
        if (named && r == 0 && st.state == 'S') /* exec'd and asleep in nanosleep */
            break;
        sleep_ns(5000000);
    }
    assert_int_equal(r, 0);
    assert_int_equal(st.pid, p.pid);
    assert_int_equal(st.pgrp, p.pid);
    assert_int_equal(st.ppid, getpid());
    assert_true(st.state == 'S');
    assert_true(st.rss_pages > 0);
    proc_stop(&p, SEC);
    assert_int_equal(proc_read_stat(p.pid, &st), -ENOENT);
    free(odd);
}

/* A child process starts the guardian, spawns a group whose grandchild
 * survives the leader, then dies by SIGKILL: the guardian must clean up. */
static pid_t guardian_scenario(bool with_guardian, pid_t *pgid)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(pfd[0]);
        if (with_guardian && proc_guardian_start(NULL, NULL, NULL) < 0)
            _exit(1);
        char *argv[] = {"sh", "-c", "sleep 100 & wait", NULL};
        struct proc p;
        if (spawn_argv(argv, NULL, NULL, &p) < 0)
            _exit(1);
        for (int i = 0; i < 200 && group_members(p.pid).live < 2; i++)
            sleep_ns(10000000);
        int32_t pg = p.pid;
        if (write(pfd[1], &pg, sizeof(pg)) != sizeof(pg))
            _exit(1);
        raise(SIGKILL);
        _exit(1);
    }
    close(pfd[1]);
    int32_t pg = 0;
    assert_int_equal(read(pfd[0], &pg, sizeof(pg)), sizeof(pg));
    close(pfd[0]);
    int st;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFSIGNALED(st));
    *pgid = pg;
    return child;
}

static bool wait_group_gone(pid_t pg, int64_t ns)
{
    int64_t deadline = mono_ns() + ns;
    while (proc_group_alive(pg) && mono_ns() < deadline)
        sleep_ns(20000000);
    return !proc_group_alive(pg);
}

static void test_guardian(void **state)
{
    pid_t pg;
    /* Control: without a guardian the grandchild outlives the killed sonde. */
    guardian_scenario(false, &pg);
    assert_false(wait_group_gone(pg, SEC));
    kill(-pg, SIGKILL);
    assert_true(wait_group_gone(pg, 5 * SEC));

    guardian_scenario(true, &pg);
    assert_true(wait_group_gone(pg, 6 * SEC));
    proc_reap_orphans();
}

static void test_backend_table(void **state)
{
    assert_ptr_equal(backend_find("local"), &backend_local);
    assert_ptr_equal(backend_find("slurm"), &backend_slurm);
    assert_null(backend_find("kubernetes"));
    assert_null(backend_find(NULL));
    assert_ptr_equal(backend_table[0], &backend_local);
    assert_ptr_equal(backend_table[1], &backend_slurm);
    assert_null(backend_table[2]);
    assert_string_equal(backend_local.service_host(), "127.0.0.1");
    assert_ptr_equal(backend_local.spawn, proc_spawn);
    assert_false(backend_local.batch);
    /* slurm: a service's host is known once its job runs; services listen on every address */
    assert_true(backend_slurm.batch);
    assert_null(backend_slurm.service_host());
    assert_string_equal(backend_slurm.listen_host, "0.0.0.0");
}

static void test_user(void **state)
{
    uid_t uid;
    gid_t gid;
    assert_int_equal(proc_lookup_user("root", &uid, &gid), 0);
    assert_int_equal(uid, 0);
    assert_int_equal(gid, 0);
    assert_int_equal(proc_lookup_user("sonde-nosuch-user", &uid, &gid), -ENOENT);
    struct passwd *pw = getpwnam("nobody");
    if (geteuid() != 0 || !pw) {
        skip();
        return;
    }
    char *out = tpath("user.log");
    char *argv[] = {"sh", "-c", "echo $(id -u) $USER $HOME", NULL};
    struct proc_spec s = {
        .argv = argv, .user = "nobody", .cwd = "/", .out_path = out, .stdin_fd = -1};
    struct proc p;
    char eb[256];
    assert_int_equal(proc_spawn(&s, &p, eb, sizeof(eb)), 0);
    assert_int_equal(proc_wait(&p, 10 * SEC), 1);
    assert_int_equal(p.status, 0);
    char *o = slurp(out);
    char *want = xasprintf("%u nobody %s\n", (unsigned)pw->pw_uid, pw->pw_dir);
    assert_string_equal(o, want);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    /* The log stays sonde's: the component writes through the inherited descriptor. */
    assert_int_equal(st.st_uid, geteuid());
    /* A link planted where a log goes is refused, never followed. */
    char *target = tpath("user.target");
    unlink(out);
    assert_int_equal(symlink(target, out), 0);
    assert_true(proc_spawn(&s, &p, eb, sizeof(eb)) < 0);
    assert_non_null(strstr(eb, "cannot open log file"));
    assert_int_equal(access(target, F_OK), -1);
    free(target);
    free(want);
    free(o);
    free(out);
}

static int setup(void **state)
{
    if (!mkdtemp(tmpdir))
        return -1;
    return proc_guardian_start(NULL, NULL, NULL);
}

static int teardown(void **state)
{
    proc_guardian_stop();
    return rm_rf(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_spawn_errors),
        cmocka_unit_test(test_env_cwd_stdin),
        cmocka_unit_test(test_path_from_env),
        cmocka_unit_test(test_stop_grandchild),
        cmocka_unit_test(test_stop_ignores_term),
        cmocka_unit_test(test_poll_signal),
        cmocka_unit_test(test_describe_status),
        cmocka_unit_test(test_read_stat_odd_comm),
        cmocka_unit_test(test_guardian),
        cmocka_unit_test(test_backend_table),
        cmocka_unit_test(test_user),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
