/* test_slurm_script.c — batch script text (quoting, resources, containers,
 * fan-out), site profiles (loading, errors) and how `scontrol show job` lines
 * become a job's state. */
#include "backends/backend.h"
#include "backends/site.h"
#include "backends/slurm.h"
#include "backends/slurm_script.h"
#include "util/util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define MIN (60LL * 1000000000LL)

static char *script(const struct slurm_job *j)
{
    struct sbuf o = {0};
    assert_int_equal(slurm_script(j, &o), 0);
    return sbuf_steal(&o);
}

static void test_quote_and_time(void **state)
{
    (void)state;
    struct sbuf o = {0};
    shell_quote(&o, "it's $HOME `x` \"q\"");
    assert_string_equal(o.s, "'it'\\''s $HOME `x` \"q\"'");
    sbuf_free(&o);
    char t[32];
    slurm_time(1, t, sizeof(t));
    assert_string_equal(t, "0-00:01:00"); /* rounded up to a minute */
    slurm_time(90 * MIN, t, sizeof(t));
    assert_string_equal(t, "0-01:30:00");
    slurm_time(25 * 60 * MIN + 1, t, sizeof(t));
    assert_string_equal(t, "1-01:01:00");
}

static void test_plain_job(void **state)
{
    (void)state;
    struct resources r = {.nodes = 1,
                          .tasks_per_node = 1,
                          .cpus_per_task = 8,
                          .mem_bytes = (1LL << 30) + 1,
                          .time_ns = 30 * MIN,
                          .partition = (char *)"cpu",
                          .account = (char *)"p200000",
                          .gpus_per_node = -1,
                          .exclusive = -1};
    char *argv[] = {"postgres", "-D", "/data/pg dir", NULL};
    char *prep[] = {"initdb", "-D", "/data/pg dir", NULL};
    char *const *steps[] = {prep, NULL};
    char *env[] = {"PGDATA=/data/it's", "BAD", NULL};
    char *mods[] = {"Apptainer/1.2", NULL};
    struct slurm_job j = {.job_name = "sonde-x-db",
                          .out_path = "/w/db/stdout",
                          .err_path = "/w/db/stderr",
                          .workdir = "/w/db/work",
                          .res = &r,
                          .modules = mods,
                          .env = env,
                          .steps = steps,
                          .argv = argv};
    char *s = script(&j);
    static const char want[] = "#!/bin/bash\n"
                               "#SBATCH --job-name=sonde-x-db\n"
                               "#SBATCH --output=/w/db/stdout\n"
                               "#SBATCH --error=/w/db/stderr\n"
                               "#SBATCH --chdir=/w/db/work\n"
                               "#SBATCH --partition=cpu\n"
                               "#SBATCH --account=p200000\n"
                               "#SBATCH --nodes=1\n"
                               "#SBATCH --ntasks-per-node=1\n"
                               "#SBATCH --cpus-per-task=8\n"
                               "#SBATCH --mem=1025M\n"
                               "#SBATCH --time=0-00:30:00\n"
                               "#SBATCH --no-requeue\n"
                               "set -euo pipefail\n"
                               "module load 'Apptainer/1.2'\n"
                               "export PGDATA='/data/it'\\''s'\n"
                               "'initdb' '-D' '/data/pg dir'\n"
                               "exec 'postgres' '-D' '/data/pg dir'\n";
    assert_string_equal(s, want);
    free(s);
    j.argv = NULL;
    struct sbuf o = {0};
    assert_int_equal(slurm_script(&j, &o), -EINVAL);
    sbuf_free(&o);
}

static void test_container_gpu_fanout(void **state)
{
    (void)state;
    struct resources r = {.nodes = 2, .tasks_per_node = 4, .gpus_per_node = 4, .exclusive = 1};
    char *argv[] = {"vllm", "serve", "m", NULL};
    char *binds[] = {"/scratch:/data", "/models:/models:ro", NULL};
    struct slurm_job j = {.job_name = "n",
                          .res = &r,
                          .runtime = "apptainer",
                          .image = "/cache/vllm-openai_v0.6-0123456789ab.sif",
                          .binds = binds,
                          .task_out_pattern = "/w/task-%t.stdout",
                          .argv = argv};
    char *s = script(&j);
    assert_non_null(strstr(s, "#SBATCH --gpus-per-node=4\n"));
    assert_non_null(strstr(s, "#SBATCH --exclusive\n"));
    assert_null(strstr(s, "APPTAINER_CACHEDIR")); /* sonde pulled it: jobs never pull */
    assert_non_null(strstr(s,
                           "exec srun --kill-on-bad-exit=1 --ntasks=8 "
                           "--output='/w/task-%t.stdout' "
                           "'apptainer' exec --nv --bind '/scratch:/data' --bind "
                           "'/models:/models:ro' '/cache/vllm-openai_v0.6-0123456789ab.sif' 'vllm' "
                           "'serve' 'm'\n"));
    free(s);
    /* no GPUs: no --nv; one task: no srun */
    r = (struct resources){.nodes = 1, .gpus_per_node = 0, .exclusive = -1};
    s = script(&j);
    assert_null(strstr(s, "--nv"));
    assert_null(strstr(s, "srun"));
    assert_null(strstr(s, "--exclusive"));
    free(s);
}

/* The monitor agent: one per node, overlapping, detached, before the steps. */
static void test_monitor_agent(void **state)
{
    (void)state;
    struct resources r = {.nodes = 3, .tasks_per_node = 2};
    char *argv[] = {"server", NULL};
    char *agent[] = {"/opt/sonde", "agent", "monitor", "/w/db/monitor", "1s", NULL};
    char *step[] = {"initdb", NULL};
    char *const *steps[] = {step, NULL};
    struct slurm_job j = {.job_name = "n",
                          .res = &r,
                          .steps = steps,
                          .monitor_argv = agent,
                          .monitor_log = "/w/db/monitor/agent.log",
                          .argv = argv};
    char *s = script(&j);
    const char *line = strstr(s, "( SONDE_MONITOR_AGENT=1 srun --overlap --nodes=3 --ntasks=3 "
                                 "--ntasks-per-node=1 --quiet '/opt/sonde' 'agent' 'monitor' "
                                 "'/w/db/monitor' '1s' >>'/w/db/monitor/agent.log' 2>&1 "
                                 "</dev/null & )\n");
    assert_non_null(line);
    assert_true(line < strstr(s, "'initdb'\n"));
    free(s);
    j.monitor_argv = NULL;
    s = script(&j);
    assert_null(strstr(s, "agent"));
    free(s);
}

static char *write_tmp(const char *text)
{
    char tmpl[] = "/tmp/test_site_XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return xstrdup(tmpl);
}

static void test_sites(void **state)
{
    (void)state;
    struct diags d = {0};
    struct site *s = NULL;
    assert_int_equal(site_load_file("sites/meluxina.yaml", &s, &d), 0);
    assert_string_equal(s->name, "meluxina");
    assert_string_equal(s->defaults.partition, "cpu");
    const struct site_partition *gpu = site_partition(s, "gpu");
    assert_non_null(gpu);
    assert_int_equal(gpu->gpus_per_node, 4);
    assert_null(site_partition(s, "gpux"));
    assert_non_null(s->modules);
    assert_string_equal(s->runtime, "apptainer");
    site_free(s);
    s = NULL;
    assert_int_equal(site_load_file("sites/generic.yaml", &s, &d), 0);
    site_free(s);
    s = NULL;
    /* malformed profiles: every problem named */
    char *bad = write_tmp("kind: site\nname: x\npartitons: {}\ndefaults: {partition: gpu, "
                          "nodes: 0}\npartitions: {cpu: {cpus_per_node: lots}}\n"
                          "container: {runtime: docker}\n");
    assert_int_equal(site_load_file(bad, &s, &d), -EINVAL);
    assert_null(s);
    char *text = diags_format(&d);
    print_message("%s", text);
    assert_non_null(strstr(text, "unknown key 'partitons' (did you mean 'partitions'?)"));
    assert_non_null(strstr(text, "defaults.nodes: expected a whole number from 1"));
    assert_non_null(strstr(text, "partitions.cpu.cpus_per_node"));
    assert_non_null(strstr(text, "container.runtime"));
    free(text);
    diags_free(&d);
    unlink(bad);
    free(bad);
    assert_int_equal(site_load("no-such-site", (struct sv_pos){0}, &s, &d), -ENOENT);
    text = diags_format(&d);
    assert_non_null(strstr(text, "no site profile 'no-such-site'"));
    free(text);
    diags_free(&d);
}

/* One scontrol line (the fields sonde reads, among others it ignores). */
static void apply(struct proc *p, const char *state, const char *reason, const char *host,
                  const char *code, char *got_host)
{
    char *line = xasprintf("JobId=%lld JobName=sonde-x-db UserId=root(0) JobState=%s Reason=%s "
                           "Dependency=(null) Comment=a b c NodeList=%s BatchHost=%s "
                           "ExitCode=%s StdOut=/x/stdout.log",
                           (long long)p->job, state, reason, host, host, code);
    slurm_apply_job_line(p, line, got_host, 256);
    free(line);
}

static void test_job_states(void **state)
{
    (void)state;
    char host[256];
    struct proc p = {.job = 42};
    /* queued: Slurm's reason, nothing started */
    apply(&p, "PENDING", "Resources", "(null)", "0:0", host);
    assert_string_equal(p.pending, "Resources");
    assert_false(p.running);
    assert_false(p.exited);
    assert_string_equal(host, "");
    apply(&p, "PENDING", "None", "(null)", "0:0", host);
    assert_string_equal(p.pending, "PENDING");
    /* running: its first node is learned */
    apply(&p, "RUNNING", "None", "n7", "0:0", host);
    assert_true(p.running);
    assert_false(p.exited);
    assert_string_equal(p.pending, "");
    assert_string_equal(host, "n7");
    assert_string_equal(p.nodes, "n7");
    assert_true(p.start_mono > 0);
    apply(&p, "COMPLETING", "None", "n7", "1:0", host); /* not final yet */
    assert_false(p.exited);
    /* each end state: exit status and Slurm's words */
    static const struct {
        const char *state, *code, *words;
        int exit, sig;
    } ends[] = {
        {"COMPLETED", "0:0", "job 42 COMPLETED on n7 (exit code 0:0)", 0, 0},
        {"FAILED", "3:0", "job 42 FAILED on n7: a non-zero exit code (exit code 3:0)", 3, 0},
        {"TIMEOUT", "0:15", "job 42 TIMEOUT on n7: it reached its time limit (exit code 0:15)", -1,
         15},
        {"NODE_FAIL", "0:0", "job 42 NODE_FAIL on n7: one of its nodes failed (exit code 0:0)", -1,
         SIGTERM},
        {"PREEMPTED", "0:0", "PREEMPTED on n7: preempted by a higher-priority job", -1, SIGTERM},
        {"OUT_OF_MEMORY", "0:125", "OUT_OF_MEMORY on n7: it ran out of memory", 253, 0},
        {"CANCELLED", "0:9", "CANCELLED on n7: cancelled (scancel, or an administrator)", -1, 9},
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(ends); i++) {
        struct proc q = {.job = 42};
        apply(&q, ends[i].state, "None", "n7", ends[i].code, host);
        assert_true(q.exited);
        assert_non_null(strstr(q.detail, ends[i].words));
        if (ends[i].exit >= 0) {
            assert_true(WIFEXITED(q.status));
            assert_int_equal(WEXITSTATUS(q.status), ends[i].exit);
        } else {
            assert_true(WIFSIGNALED(q.status) || (q.status & 0x7f) == ends[i].sig);
            assert_int_equal(q.status & 0x7f, ends[i].sig);
        }
    }
    /* ended between two looks: it ran (it has a node), for Slurm's EndTime - StartTime */
    struct proc f = {.job = 44};
    slurm_apply_job_line(&f,
                         "JobId=44 JobState=COMPLETED Reason=None ExitCode=0:0 "
                         "StartTime=2026-11-25T11:59:58 EndTime=2026-11-25T12:00:01 "
                         "NodeList=n1 BatchHost=n1",
                         host, 256);
    assert_true(f.exited);
    assert_true(f.running);
    assert_int_equal(f.end_mono - f.start_mono, 3000000000LL);
    assert_string_equal(host, "n1");
    /* queued for a reason that never clears: ended, not waited for */
    struct proc w = {.job = 43};
    apply(&w, "PENDING", "PartitionConfig", "(null)", "0:0", host);
    assert_false(w.exited); /* not at once: a drain can look like it for a while */
    w.never_since -= SLURM_NEVER_NS;
    apply(&w, "PENDING", "PartitionConfig", "(null)", "0:0", host);
    assert_true(w.exited);
    assert_false(w.running);
    assert_non_null(
        strstr(w.detail, "job 43 can never start: Slurm has held it as PartitionConfig for 60s"));
    /* requeued after it ran: ended, the service it was is gone */
    struct proc q = {.job = 45};
    apply(&q, "RUNNING", "None", "n3", "0:0", host);
    apply(&q, "PENDING", "BeginTime", "n3", "0:0", host);
    assert_true(q.exited);
    assert_non_null(
        strstr(q.detail, "job 45 went back to the queue (PENDING, BeginTime) after it ran on n3"));
    assert_true(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 1);
    /* not a job line, or an empty one: nothing changes */
    struct proc r = {.job = 7};
    slurm_apply_job_line(&r, "slurm_load_jobs error: Invalid job id specified", host, 256);
    slurm_apply_job_line(&r, "", host, 256);
    assert_false(r.exited);
    assert_false(r.running);
    assert_string_equal(r.pending, "");
    /* a key that only ends like a wanted one is not it */
    slurm_apply_job_line(&r, "OldJobState=COMPLETED XJobState=FAILED", host, 256);
    assert_false(r.exited);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote_and_time),
        cmocka_unit_test(test_plain_job),
        cmocka_unit_test(test_container_gpu_fanout),
        cmocka_unit_test(test_monitor_agent),
        cmocka_unit_test(test_sites),
        cmocka_unit_test(test_job_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
