/* test_image_cache.c — the image cache (pull once, lock, digests) against the
 * Apptainer stand-in tests/standins/apptainer (Apptainer itself cannot run here). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backends/image_cache.h"
#include "backends/site.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEC (1000000000LL)

struct fx {
    char *tmp, *cache, *log, *runtime;
    struct site site;
    char err[1024];
};

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    f->tmp = xstrdup("/tmp/sonde-test-image-XXXXXX");
    assert_non_null(mkdtemp(f->tmp));
    f->cache = path_join(f->tmp, "cache");
    f->log = path_join(f->tmp, "standin.log");
    char *cwd = getcwd(NULL, 0); /* tests run in the project root */
    assert_non_null(cwd);
    f->runtime = path_join(cwd, "tests/standins/apptainer");
    free(cwd);
    assert_int_equal(access(f->runtime, X_OK), 0);
    f->site.runtime = f->runtime;
    f->site.cache = f->cache;
    setenv("SONDE_STANDIN_LOG", f->log, 1);
    unsetenv("SONDE_STANDIN_PULL_SLEEP");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    rm_rf(f->tmp);
    free(f->tmp);
    free(f->cache);
    free(f->log);
    free(f->runtime);
    free(f);
    unsetenv("SONDE_STANDIN_LOG");
    unsetenv("SONDE_STANDIN_PULL_SLEEP");
    return 0;
}

/* Lines of the stand-in's log equal to line. */
static int log_count(const struct fx *f, const char *line)
{
    char *text = NULL;
    size_t len = 0;
    if (read_file(f->log, 1 << 20, &text, &len) < 0)
        return 0;
    int n = 0;
    for (char *p = text, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        assert_non_null(nl);
        if ((size_t)(nl - p) == strlen(line) && !strncmp(p, line, (size_t)(nl - p)))
            n++;
    }
    free(text);
    return n;
}

/* Entries of dir whose name contains part. */
static int dir_count(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, part))
            n++;
    closedir(d);
    return n;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* "sha256:<hex>" of the file, computed here. */
static char *digest_of(const char *path)
{
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(read_file(path, 64 << 20, &data, &len), 0);
    char hex[65];
    sha256_hex(data, len, hex);
    free(data);
    return xasprintf("sha256:%s", hex);
}

static void test_is_remote(void **state)
{
    static const char *const yes[] = {"docker://postgres:15", "oras://ghcr.io/x/y:1",
                                      "library://alpine",     "shub://a/b",
                                      "https://h/x.sif",      "http://h/x.sif"};
    static const char *const no[] = {"/project/images/vllm.sif",
                                     "vllm.sif",
                                     "",
                                     "docker:/x",
                                     "DOCKER://x",
                                     "docker",
                                     "file:///x.sif",
                                     "./docker://x"};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(yes); i++)
        assert_true(image_is_remote(yes[i]));
    for (size_t i = 0; i < SONDE_ARRAY_LEN(no); i++)
        assert_false(image_is_remote(no[i]));
    assert_false(image_is_remote(NULL));
}

static void test_cache_path(void **state)
{
    char hex[65], want[256];
    char *p = image_cache_path("/c", "docker://postgres:15");
    sha256_hex("docker://postgres:15", strlen("docker://postgres:15"), hex);
    snprintf(want, sizeof(want), "/c/postgres_15-%.12s.sif", hex);
    assert_string_equal(p, want);
    char *again = image_cache_path("/c/", "docker://postgres:15");
    assert_string_equal(again, want); /* deterministic, a trailing slash changes nothing */
    char *other = image_cache_path("/c", "docker://postgres_15"); /* same readable name */
    assert_string_not_equal(other, p);
    char *nv = image_cache_path("/c", "docker://nvcr.io/nvidia/tritonserver:24.01-py3");
    assert_true(str_startswith(nv, "/c/tritonserver_24.01-py3-"));
    char *sif = image_cache_path("/c", "https://example.org/images/vllm.sif");
    assert_true(str_startswith(sif, "/c/vllm-") && str_endswith(sif, ".sif"));
    char *dot = image_cache_path("/c", "docker://x/.hidden");
    assert_true(str_startswith(dot, "/c/_hidden-"));
    char *empty = image_cache_path("/c", "docker://x/");
    assert_true(str_startswith(empty, "/c/x-"));
    char *odd = image_cache_path("/c", "docker://a b\t'c\"$(x)");
    assert_true(str_startswith(odd, "/c/a_b__c___x_-"));
    char *long_ref = xmalloc(10001);
    memset(long_ref, 'a', 10000);
    long_ref[10000] = '\0';
    char *lp = image_cache_path("/c", long_ref);
    assert_true(strlen(lp) < 100);
    const char *const all[] = {p, other, nv, sif, dot, empty, odd, lp};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(all); i++)
        for (const char *c = all[i]; *c; c++)
            assert_true(strchr("/._-", *c) || (*c >= '0' && *c <= '9') ||
                        (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z'));
    char **free_me[] = {&p, &again, &other, &nv, &sif, &dot, &empty, &odd, &long_ref, &lp};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(free_me); i++)
        free(*free_me[i]);
}

static void test_cache_dir(void **state)
{
    struct fx *f = *state;
    char *saved_xdg = xstrdup(getenv("XDG_CACHE_HOME"));
    char *saved_home = xstrdup(getenv("HOME"));
    char *d = image_cache_dir(&f->site);
    assert_string_equal(d, f->cache);
    free(d);
    struct site rel = {.cache = "rel/cache"};
    char *cwd = getcwd(NULL, 0);
    char *want = path_join(cwd, "rel/cache");
    d = image_cache_dir(&rel);
    assert_string_equal(d, want); /* absolute: jobs on other nodes get it */
    free(d);
    free(want);
    free(cwd);
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    d = image_cache_dir(NULL);
    assert_string_equal(d, "/xdg/sonde/images");
    free(d);
    setenv("XDG_CACHE_HOME", "relative", 1); /* ignored, as the XDG spec says */
    setenv("HOME", "/home/u", 1);
    d = image_cache_dir(NULL);
    assert_string_equal(d, "/home/u/.cache/sonde/images");
    free(d);
    unsetenv("XDG_CACHE_HOME");
    struct site nocache = {.runtime = "apptainer"};
    d = image_cache_dir(&nocache);
    assert_string_equal(d, "/home/u/.cache/sonde/images");
    free(d);
    if (saved_xdg)
        setenv("XDG_CACHE_HOME", saved_xdg, 1);
    if (saved_home)
        setenv("HOME", saved_home, 1);
    else
        unsetenv("HOME");
    free(saved_xdg);
    free(saved_home);
}

static void test_pull_once(void **state)
{
    struct fx *f = *state;
    struct image_info a, b, c;
    assert_int_equal(
        image_fetch(&f->site, "docker://postgres:15", false, 30 * SEC, &a, f->err, sizeof(f->err)),
        0);
    assert_true(a.pulled);
    assert_string_equal(a.ref, "docker://postgres:15");
    char *want_path = image_cache_path(f->cache, "docker://postgres:15");
    assert_string_equal(a.path, want_path);
    char *want = digest_of(a.path);
    assert_string_equal(a.digest, want);
    struct stat st;
    assert_int_equal(stat(f->cache, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755);
    /* the second fetch finds it */
    assert_int_equal(
        image_fetch(&f->site, "docker://postgres:15", false, 30 * SEC, &b, f->err, sizeof(f->err)),
        0);
    assert_false(b.pulled);
    assert_string_equal(b.path, a.path);
    assert_string_equal(b.digest, want);
    assert_int_equal(log_count(f, "pull docker://postgres:15"), 1);
    /* another image: another file; a quote in the reference survives the shell */
    const char *odd = "docker://registry.example.org/it's/pg:16";
    assert_int_equal(image_fetch(&f->site, odd, false, 30 * SEC, &c, f->err, sizeof(f->err)), 0);
    assert_true(c.pulled);
    assert_string_not_equal(c.path, a.path);
    assert_string_not_equal(c.digest, a.digest);
    char *line = xasprintf("pull %s", odd);
    assert_int_equal(log_count(f, line), 1);
    assert_int_equal(dir_count(f->cache, ".part-"), 0);
    assert_int_equal(dir_count(f->cache, ".sif"), 4); /* two images, two lock files */
    free(line);
    free(want);
    free(want_path);
    image_info_clear(&a);
    image_info_clear(&b);
    image_info_clear(&c);
    image_info_clear(&c); /* twice is fine */
}

static void test_pull_fails(void **state)
{
    struct fx *f = *state;
    struct image_info i;
    const char *ref = "docker://missing/image:1";
    int r = image_fetch(&f->site, ref, false, 30 * SEC, &i, f->err, sizeof(f->err));
    assert_true(r < 0);
    assert_null(i.path);
    assert_null(i.ref);
    char *head = xasprintf("image %s: `%s pull` failed: ", ref, f->runtime);
    assert_true(str_startswith(f->err, head));
    assert_non_null(strstr(f->err, "manifest unknown"));
    assert_null(strchr(f->err, '\n'));
    char *path = image_cache_path(f->cache, ref);
    assert_false(exists(path));
    assert_int_equal(dir_count(f->cache, ".part-"), 0);
    /* it is tried again next time: nothing bad was cached */
    assert_true(image_fetch(&f->site, ref, false, 30 * SEC, &i, f->err, sizeof(f->err)) < 0);
    char *line = xasprintf("pull %s", ref);
    assert_int_equal(log_count(f, line), 2);
    free(line);
    free(path);
    free(head);
}

static void test_pull_timeout(void **state)
{
    struct fx *f = *state;
    struct image_info i;
    setenv("SONDE_STANDIN_PULL_SLEEP", "5", 1);
    int64_t t0 = mono_ns();
    int r = image_fetch(&f->site, "docker://slow:1", false, SEC / 2, &i, f->err, sizeof(f->err));
    assert_int_equal(r, -ETIMEDOUT);
    assert_true(mono_ns() - t0 < 3 * SEC);
    assert_non_null(strstr(f->err, "timed out after 0.5 s"));
    assert_int_equal(dir_count(f->cache, ".part-"), 0);
    assert_int_equal(dir_count(f->cache, ".sif"), 1); /* the lock file only */
}

/* Two sessions fetching the same image at once: one pulls, the other waits. */
static void test_concurrent(void **state)
{
    struct fx *f = *state;
    setenv("SONDE_STANDIN_PULL_SLEEP", "1", 1);
    pid_t pids[2];
    for (int k = 0; k < 2; k++) {
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0) {
            struct image_info i;
            char err[512];
            int r = image_fetch(&f->site, "docker://postgres:15", false, 30 * SEC, &i, err,
                                sizeof(err));
            if (r < 0)
                fprintf(stderr, "child: %s\n", err);
            _exit(r < 0 ? 1 : i.pulled ? 10 : 11);
        }
    }
    int codes = 0;
    for (int k = 0; k < 2; k++) {
        int st;
        assert_int_equal(waitpid(pids[k], &st, 0), pids[k]);
        assert_true(WIFEXITED(st));
        codes += WEXITSTATUS(st);
        assert_true(WEXITSTATUS(st) == 10 || WEXITSTATUS(st) == 11);
    }
    assert_int_equal(codes, 21); /* one pulled, one found it */
    assert_int_equal(log_count(f, "pull docker://postgres:15"), 1);
    assert_int_equal(dir_count(f->cache, ".part-"), 0);
}

static void test_digest_sidecar(void **state)
{
    struct fx *f = *state;
    char *img = path_join(f->tmp, "images/app.sif");
    char *dir = path_join(f->tmp, "images");
    assert_int_equal(mkdir_p(dir, 0755), 0);
    assert_int_equal(write_file_atomic(img, "first content\n", 14), 0);
    struct image_info i;
    assert_int_equal(image_fetch(&f->site, img, false, SEC, &i, f->err, sizeof(f->err)), 0);
    char *want = digest_of(img);
    assert_string_equal(i.digest, want);
    assert_false(i.pulled);
    image_info_clear(&i);
    char *digests = path_join(f->cache, "digests");
    assert_int_equal(dir_count(digests, ""), 1);
    /* the sidecar is what answers while the file is unchanged: make it lie */
    DIR *d = opendir(digests);
    struct dirent *e;
    char *side = NULL;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            side = path_join(digests, e->d_name);
    closedir(d);
    assert_non_null(side);
    assert_int_equal(strlen(strrchr(side, '/') + 1), 16);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(read_file(side, 256, &text, &len), 0);
    /* "<hex> <size> <mtime s> <mtime ns> <inode>" */
    struct stat st;
    assert_int_equal(stat(img, &st), 0);
    char *line = xasprintf("%s %lld %lld %ld %llu\n", want + 7, (long long)st.st_size,
                           (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec,
                           (unsigned long long)st.st_ino);
    assert_string_equal(text, line);
    free(line);
    memset(text, 'a', 64);
    assert_int_equal(write_file_atomic(side, text, len), 0);
    assert_int_equal(image_fetch(&f->site, img, false, SEC, &i, f->err, sizeof(f->err)), 0);
    assert_string_equal(i.digest,
                        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    image_info_clear(&i);
    /* rewritten (same size, other content): computed again */
    assert_int_equal(write_file_atomic(img, "other content\n", 14), 0);
    assert_int_equal(image_fetch(&f->site, img, false, SEC, &i, f->err, sizeof(f->err)), 0);
    char *want2 = digest_of(img);
    assert_string_equal(i.digest, want2);
    assert_string_not_equal(want2, want);
    image_info_clear(&i);
    /* and again from the renewed sidecar */
    assert_int_equal(image_fetch(&f->site, img, false, SEC, &i, f->err, sizeof(f->err)), 0);
    assert_string_equal(i.digest, want2);
    image_info_clear(&i);
    free(text);
    free(side);
    free(digests);
    free(want);
    free(want2);
    free(dir);
    free(img);
}

static void test_local(void **state)
{
    struct fx *f = *state;
    char *img = path_join(f->tmp, "local.sif");
    assert_int_equal(write_file_atomic(img, "a local image", 13), 0);
    char *cwd = getcwd(NULL, 0);
    assert_int_equal(chdir(f->tmp), 0);
    struct image_info i;
    int r = image_fetch(&f->site, "local.sif", false, SEC, &i, f->err, sizeof(f->err));
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(r, 0);
    assert_string_equal(i.path, img); /* made absolute */
    assert_string_equal(i.ref, "local.sif");
    char *want = digest_of(img);
    assert_string_equal(i.digest, want);
    image_info_clear(&i);
    /* a sandbox directory: no digest, not an error */
    char *sandbox = path_join(f->tmp, "sandbox");
    assert_int_equal(mkdir_p(sandbox, 0755), 0);
    assert_int_equal(image_fetch(&f->site, sandbox, false, SEC, &i, f->err, sizeof(f->err)), 0);
    assert_string_equal(i.path, sandbox);
    assert_null(i.digest);
    image_info_clear(&i);
    /* missing */
    char *missing = path_join(f->tmp, "nope/vllm.sif");
    r = image_fetch(&f->site, missing, false, SEC, &i, f->err, sizeof(f->err));
    assert_int_equal(r, -ENOENT);
    char *msg = xasprintf("image %s: no such file (a local image must exist on the submit host; "
                          "use docker://... to pull)",
                          missing);
    assert_string_equal(f->err, msg);
    assert_null(i.path);
    assert_int_equal(log_count(f, ""), 0); /* no runtime ran */
    free(msg);
    free(missing);
    free(sandbox);
    free(want);
    free(cwd);
    free(img);
}

static void test_dry(void **state)
{
    struct fx *f = *state;
    struct image_info i;
    assert_int_equal(
        image_fetch(&f->site, "docker://postgres:15", true, 0, &i, f->err, sizeof(f->err)), 0);
    char *want = image_cache_path(f->cache, "docker://postgres:15");
    assert_string_equal(i.path, want);
    assert_null(i.digest);
    assert_false(i.pulled);
    assert_false(exists(f->cache)); /* no file access at all */
    assert_false(exists(f->log));
    image_info_clear(&i);
    /* a local image that is not there: dry does not look */
    assert_int_equal(
        image_fetch(&f->site, "/nonexistent/x.sif", true, 0, &i, f->err, sizeof(f->err)), 0);
    assert_string_equal(i.path, "/nonexistent/x.sif");
    image_info_clear(&i);
    free(want);
}

static void test_odd_refs(void **state)
{
    struct fx *f = *state;
    struct image_info i;
    char *long_ref = xmalloc(20001);
    memcpy(long_ref, "docker://", 9);
    memset(long_ref + 9, 'x', 20000 - 9);
    long_ref[20000] = '\0';
    const char *const refs[] = {
        "",       "docker://a\nb", "docker://\x1b[31mred", "/tmp/x\ty.sif", "docker://",
        long_ref, "x\x7f"};
    for (size_t k = 0; k < SONDE_ARRAY_LEN(refs); k++) {
        int r = image_fetch(&f->site, refs[k], k % 2 == 0, SEC, &i, f->err, sizeof(f->err));
        assert_int_equal(r, -EINVAL);
        assert_true(str_startswith(f->err, "image"));
        assert_true(strlen(f->err) < 300);
        for (const char *c = f->err; *c; c++)
            assert_true((unsigned char)*c >= 0x20);
        assert_null(i.ref);
    }
    assert_int_equal(image_fetch(&f->site, NULL, false, SEC, &i, f->err, sizeof(f->err)), -EINVAL);
    /* a tiny error buffer is not overrun */
    char small[8];
    assert_int_equal(image_fetch(&f->site, long_ref, false, SEC, &i, small, sizeof(small)),
                     -EINVAL);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(image_fetch(&f->site, "docker://x:1", false, 0, &i, f->err, sizeof(f->err)),
                     -EINVAL); /* no time for a pull */
    assert_false(exists(f->log));
    free(long_ref);
}

static void test_site_setup(void **state)
{
    struct fx *f = *state;
    struct image_info i;
    /* a module that cannot load: a clear error, no pull, no hang */
    char *modules[] = {"nonexistent/1.0", NULL};
    struct site s = f->site;
    s.modules = modules;
    int64_t t0 = mono_ns();
    int r = image_fetch(&s, "docker://postgres:15", false, 30 * SEC, &i, f->err, sizeof(f->err));
    assert_true(r < 0);
    assert_true(mono_ns() - t0 < 10 * SEC);
    assert_true(str_startswith(f->err, "image docker://postgres:15: the site's modules/setup "
                                       "failed before `"));
    assert_non_null(strstr(f->err, "module: command not found"));
    assert_int_equal(log_count(f, "pull docker://postgres:15"), 0);
    assert_int_equal(dir_count(f->cache, ".part-"), 0);
    /* setup lines run before the pull, in the same shell */
    char *log2 = path_join(f->tmp, "setup.log");
    char *line = xasprintf("export SONDE_STANDIN_LOG='%s'", log2);
    char *setup_lines[] = {"true", line, NULL};
    s.modules = NULL;
    s.setup = setup_lines;
    assert_int_equal(
        image_fetch(&s, "docker://postgres:15", false, 30 * SEC, &i, f->err, sizeof(f->err)), 0);
    assert_true(i.pulled);
    image_info_clear(&i);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(read_file(log2, 4096, &text, &len), 0);
    assert_string_equal(text, "pull docker://postgres:15\n");
    free(text);
    free(line);
    free(log2);
    /* a runtime that is not there */
    s.setup = NULL;
    s.runtime = "sonde-no-such-runtime";
    r = image_fetch(&s, "docker://postgres:16", false, 30 * SEC, &i, f->err, sizeof(f->err));
    assert_int_equal(r, -ENOENT);
    assert_string_equal(f->err, "image docker://postgres:16: sonde-no-such-runtime: not found "
                                "(is the site's module loaded?)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_remote),
        cmocka_unit_test(test_cache_path),
        cmocka_unit_test_setup_teardown(test_cache_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest_sidecar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_refs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_site_setup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
