/* test_slurm_script.c — batch script text (quoting, resources, containers,
 * fan-out) and site profiles (loading, errors). */
#include "backends/site.h"
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
                          .cache = "/project/cache",
                          .image = "docker://vllm/vllm-openai:v0.6",
                          .binds = binds,
                          .task_out_pattern = "/w/task-%t.stdout",
                          .argv = argv};
    char *s = script(&j);
    assert_non_null(strstr(s, "#SBATCH --gpus-per-node=4\n"));
    assert_non_null(strstr(s, "#SBATCH --exclusive\n"));
    assert_non_null(strstr(s, "export APPTAINER_CACHEDIR='/project/cache'\n"));
    assert_non_null(strstr(s, "exec srun --kill-on-bad-exit=1 --output='/w/task-%t.stdout' "
                              "'apptainer' exec --nv --bind '/scratch:/data' --bind "
                              "'/models:/models:ro' 'docker://vllm/vllm-openai:v0.6' 'vllm' "
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote_and_time),
        cmocka_unit_test(test_plain_job),
        cmocka_unit_test(test_container_gpu_fanout),
        cmocka_unit_test(test_sites),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
