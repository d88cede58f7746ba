/* test_util.c — util.c helpers and the tar.gz writer (checked with the system tar). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/capture.h"
#include "util/keytab.h"
#include "util/targz.h"
#include "util/util.h"

#include <errno.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* keytab: every key found again with its id, across growth; keys that differ
 * only after a NUL byte, or by length, are different keys. */
static void test_keytab(void **state)
{
    (void)state;
    struct keytab t = {0};
    char k[32];
    for (uint32_t i = 0; i < 20000; i++) {
        int n = snprintf(k, sizeof(k), "series%u", i);
        uint64_t h = hash_fnv1a(k, (size_t)n);
        struct keytab_slot *s = keytab_find(&t, k, (size_t)n, h);
        assert_null(s->key);
        keytab_put(&t, s, k, (size_t)n, h, i);
    }
    assert_int_equal(t.n, 20000);
    assert_true(t.n <= t.cap / 10 * 7);
    for (uint32_t i = 0; i < 20000; i++) {
        int n = snprintf(k, sizeof(k), "series%u", i);
        struct keytab_slot *s = keytab_find(&t, k, (size_t)n, hash_fnv1a(k, (size_t)n));
        assert_non_null(s->key);
        assert_int_equal(s->id, i);
    }
    struct keytab_slot *s = keytab_find(&t, "series20000", 11, hash_fnv1a("series20000", 11));
    assert_null(s->key);
    static const char a[] = "x\0a", b[] = "x\0b";
    s = keytab_find(&t, a, 3, hash_fnv1a(a, 3));
    keytab_put(&t, s, a, 3, hash_fnv1a(a, 3), 1);
    assert_null(keytab_find(&t, b, 3, hash_fnv1a(b, 3))->key);
    assert_null(keytab_find(&t, a, 2, hash_fnv1a(a, 2))->key);
    assert_int_equal(keytab_find(&t, a, 3, hash_fnv1a(a, 3))->id, 1);
    /* FNV-1a's published test vectors */
    assert_true(hash_fnv1a("", 0) == 0xcbf29ce484222325ULL);
    assert_true(hash_fnv1a("a", 1) == 0xaf63dc4c8601ec8cULL);
    keytab_free(&t);
    assert_int_equal(t.n, 0);
}

static char *make_tmpdir(void)
{
    char *t = xstrdup("/tmp/sonde-test-util-XXXXXX");
    assert_non_null(mkdtemp(t));
    return t;
}

static void put_file(const char *dir, const char *rel, const void *data, size_t len)
{
    char *p = path_join(dir, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    assert_int_equal(mkdir_p(p, 0755), 0);
    *slash = '/';
    assert_int_equal(write_file_atomic(p, data, len), 0);
    free(p);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static size_t count_entries(const char *dir)
{
    char *cmd = xasprintf("ls -A '%s' | wc -l", dir);
    FILE *f = popen(cmd, "r");
    size_t n = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%zu", &n), 1);
    pclose(f);
    free(cmd);
    return n;
}

/* ---- util.c ---- */

static void test_sbuf(void **state)
{
    (void)state;
    struct sbuf b = {.max = 8};
    assert_int_equal(sbuf_puts(&b, "abc"), 0);
    assert_int_equal(sbuf_printf(&b, "%d", 1234), 0);
    assert_string_equal(b.s, "abc1234");
    assert_int_equal(sbuf_puts(&b, "x"), -ENOSPC); /* 8 bytes would leave no room for NUL */
    assert_string_equal(b.s, "abc1234");           /* unchanged on overflow */
    assert_int_equal(b.len, 7);
    char *s = sbuf_steal(&b);
    assert_string_equal(s, "abc1234");
    assert_null(b.s);
    assert_int_equal(b.max, 8);
    free(s);
    s = sbuf_steal(&b); /* nothing added: an empty string, never NULL */
    assert_string_equal(s, "");
    free(s);
    sbuf_free(&b);
    sbuf_free(NULL);
}

static void test_strv(void **state)
{
    (void)state;
    char **v = NULL;
    assert_int_equal(strv_len(v), 0);
    strv_push(&v, "a");
    strv_push(&v, "bb");
    assert_int_equal(strv_len(v), 2);
    assert_null(v[2]);
    char **d = strv_dup(v);
    assert_ptr_not_equal(d[0], v[0]);
    assert_string_equal(d[1], "bb");
    assert_null(d[2]);
    strv_free(v);
    strv_free(d);
    strv_free(NULL);
    assert_null(strv_dup(NULL));
}

static void test_strings(void **state)
{
    (void)state;
    assert_int_equal(str_distance("kitten", "sitting", 10), 3);
    assert_int_equal(str_distance("same", "same", 3), 0);
    assert_int_equal(str_distance("a", "abcdefgh", 2), 3); /* capped at cap + 1 */
    static const char *const keys[] = {"command", "prepare", "stop_timeout", NULL};
    assert_string_equal(str_suggest("comand", keys), "command");
    assert_string_equal(str_suggest("stop_timout", keys), "stop_timeout");
    assert_null(str_suggest("zzz", keys));
    assert_true(str_startswith("services.db", "services."));
    assert_false(str_startswith("srv", "services"));
    assert_true(str_endswith("out.tar.gz", ".tar.gz"));
    assert_false(str_endswith("gz", ".tar.gz"));
    char *s = xasprintf("%s-%d", "x", 5);
    assert_string_equal(s, "x-5");
    free(s);
    assert_null(xstrdup(NULL));
}

static void test_files(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *deep = path_join(dir, "a/b/c");
    assert_int_equal(mkdir_p(deep, 0755), 0);
    assert_int_equal(mkdir_p(deep, 0755), 0); /* existing is fine */
    char *f = path_join(deep, "f.txt");
    assert_int_equal(write_file_atomic(f, "hello\n", 6), 0);
    assert_int_equal(write_file_atomic(f, "bye", 3), 0); /* replaces */
    char *txt = NULL;
    size_t len = 0;
    assert_int_equal(read_file(f, 3, &txt, &len), 0);
    assert_int_equal(len, 3);
    assert_string_equal(txt, "bye");
    free(txt);
    txt = NULL;
    assert_int_equal(read_file(f, 2, &txt, &len), -EFBIG);
    assert_null(txt);
    assert_int_equal(count_entries(deep), 1); /* no temporary file left behind */
    char *missing = path_join(dir, "nope");
    assert_int_equal(read_file(missing, 10, &txt, &len), -ENOENT);
    char *bad = path_join(dir, "nodir/x");
    assert_true(write_file_atomic(bad, "x", 1) < 0);
    char *top = path_join(dir, "a");
    assert_int_equal(rm_rf(top), 0);
    assert_false(exists(top));
    assert_int_equal(rm_rf(top), 0); /* missing is not an error */
    assert_int_equal(rm_rf(dir), 0);
    free(top);
    free(bad);
    free(missing);
    free(f);
    free(deep);
    free(dir);
    char *j = path_join("a/", "b");
    assert_string_equal(j, "a/b");
    free(j);
    j = path_join("a", "/abs");
    assert_string_equal(j, "/abs");
    free(j);
}

static void test_sha256_time(void **state)
{
    (void)state;
    char hex[65];
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char *t = iso8601(1764051323123456789LL);
    assert_string_equal(t, "2025-11-25T06:15:23.123Z");
    free(t);
    t = iso8601(0);
    assert_string_equal(t, "1970-01-01T00:00:00.000Z");
    free(t);
    int64_t a = mono_ns();
    sleep_ns(2000000);
    assert_true(mono_ns() - a >= 2000000);
    assert_true(wall_ns() > 1700000000LL * 1000000000LL);
}

/* ---- targz ---- */

static int sh(const char *fmt, ...) SONDE_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = xvasprintf(fmt, ap);
    va_end(ap);
    int r = system(cmd);
    free(cmd);
    return r;
}

static void test_targz_round_trip(void **state)
{
    (void)state;
    char *dir = make_tmpdir(), *base = path_join(dir, "base"), *out = path_join(dir, "o.tar.gz");
    static const size_t sizes[] = {0, 1, 511, 512, 513, 200000};
    char *names[8] = {0};
    unsigned char *data = xmalloc(200000);
    for (size_t i = 0; i < 200000; i++)
        data[i] = (unsigned char)((i * 2654435761u) >> 13); /* binary, with NUL bytes */
    for (size_t i = 0; i < SONDE_ARRAY_LEN(sizes); i++) {
        names[i] = xasprintf("trial-1/comp%zu/file-%zu.log", i, sizes[i]);
        put_file(base, names[i], data, sizes[i]);
    }
    /* longer than 100 bytes: stored with the ustar prefix field */
    char longdir[140];
    memset(longdir, 'd', sizeof(longdir) - 1);
    longdir[sizeof(longdir) - 1] = '\0';
    names[6] = xasprintf("%s/stdout-with-a-long-name.log", longdir);
    put_file(base, names[6], "long\n", 5);
    char *exec_file = path_join(base, names[1]);
    assert_int_equal(chmod(exec_file, 0750), 0);

    char err[256] = "";
    assert_int_equal(targz_write(out, base, names, err, sizeof(err)), 0);
    assert_int_equal(count_entries(dir), 2); /* base and o.tar.gz, no temporary */
    assert_int_equal(sh("tar -tzvf '%s' > '%s/list' 2>&1", out, dir), 0);
    char *listp = path_join(dir, "list"), *list = NULL;
    assert_int_equal(read_file(listp, 1 << 20, &list, NULL), 0);
    for (size_t i = 0; names[i]; i++)
        assert_non_null(strstr(list, names[i]));
    assert_non_null(strstr(list, "-rwxr-x---"));
    assert_non_null(strstr(list, " 200000 "));

    char *x = path_join(dir, "x");
    assert_int_equal(mkdir_p(x, 0755), 0);
    assert_int_equal(sh("tar -xzf '%s' -C '%s'", out, x), 0);
    assert_int_equal(sh("diff -r '%s' '%s'", base, x), 0);
    struct stat st;
    char *xf = path_join(x, names[1]);
    assert_int_equal(stat(xf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0750);

    free(xf);
    free(x);
    free(list);
    free(listp);
    free(exec_file);
    for (size_t i = 0; names[i]; i++)
        free(names[i]);
    free(data);
    assert_int_equal(rm_rf(dir), 0);
    free(out);
    free(base);
    free(dir);
}

static void test_targz_empty(void **state)
{
    (void)state;
    char *dir = make_tmpdir(), *out = path_join(dir, "empty.tar.gz");
    char *none[] = {NULL};
    char err[256] = "";
    assert_int_equal(targz_write(out, dir, none, err, sizeof(err)), 0);
    assert_int_equal(sh("test -z \"$(tar -tzf '%s')\"", out), 0);
    assert_int_equal(rm_rf(dir), 0);
    free(out);
    free(dir);
}

/* Each failing archive leaves neither the archive nor a temporary file. */
static void expect_fail(const char *dir, char *const *names, int want, const char *msg)
{
    char *out = path_join(dir, "bad.tar.gz");
    char err[512] = "";
    size_t before = count_entries(dir);
    assert_int_equal(targz_write(out, dir, names, err, sizeof(err)), want);
    assert_non_null(strstr(err, msg));
    assert_false(exists(out));
    assert_int_equal(count_entries(dir), before);
    free(out);
}

static void test_targz_errors(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    put_file(dir, "ok.log", "ok\n", 3);
    assert_int_equal(sh("ln -s /etc/passwd '%s/link'", dir), 0);
    char *sub = path_join(dir, "sub");
    assert_int_equal(mkdir_p(sub, 0755), 0);

    expect_fail(dir, (char *[]){"ok.log", "link", NULL}, -ELOOP, "link: is a symbolic link");
    expect_fail(dir, (char *[]){"ok.log", "missing.log", NULL}, -ENOENT, "missing.log");
    expect_fail(dir, (char *[]){"sub", NULL}, -EINVAL, "sub: not a regular file");
    expect_fail(dir, (char *[]){"../etc/passwd", NULL}, -EINVAL, "not a plain relative path");
    expect_fail(dir, (char *[]){"/etc/passwd", NULL}, -EINVAL, "not a plain relative path");
    expect_fail(dir, (char *[]){"sub/./x", NULL}, -EINVAL, "not a plain relative path");

    char name[160];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    put_file(dir, name, "x", 1);
    expect_fail(dir, (char *[]){name, NULL}, -ENAMETOOLONG, "name too long");

    /* 8 GiB (sparse) is more than ustar can hold */
    char *big = path_join(dir, "big.bin");
    int fd = open(big, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 8LL << 30), 0);
    close(fd);
    expect_fail(dir, (char *[]){"big.bin", NULL}, -EFBIG, "larger than the 8 GiB");

    char err[256] = "";
    char *nodir = path_join(dir, "nodir/out.tar.gz");
    assert_int_equal(targz_write(nodir, dir, (char *[]){"ok.log", NULL}, err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "cannot create"));
    assert_true(
        targz_write("/tmp/x.tar.gz", "/nonexistent-dir", (char *[]){NULL}, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "/nonexistent-dir"));

    free(nodir);
    free(big);
    free(sub);
    assert_int_equal(rm_rf(dir), 0);
    free(dir);
}

static void test_capture(void **state)
{
    (void)state;
    struct sbuf out = {0}, err = {0};
    char *echo[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    int st = capture_run(echo, &out, &err, 10 * 1000000000LL);
    assert_true(st >= 0 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 3);
    assert_string_equal(out.s, "out\n");
    assert_string_equal(err.s, "err\n");
    char line[16];
    static const char text[] = "a\nlast line, long\n\n";
    str_last_line(text, sizeof(text) - 1, line, sizeof(line));
    assert_string_equal(line, "last line, long"); /* 15 of 16 bytes */
    /* a program that is not there is said as such, not as exit status 127 */
    char *none[] = {"sonde-no-such-program", NULL};
    assert_int_equal(capture_run(none, NULL, NULL, 1000000000LL), -ENOENT);
    /* the limit holds also when the child closes its output and lingers */
    char *linger[] = {"sh", "-c", "exec >&- 2>&-; sleep 5", NULL};
    int64_t t0 = mono_ns();
    assert_int_equal(capture_run(linger, NULL, NULL, 300 * 1000000LL), -ETIMEDOUT);
    assert_true(mono_ns() - t0 < 3 * 1000000000LL);
    sbuf_free(&out);
    sbuf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sbuf),        cmocka_unit_test(test_strv),
        cmocka_unit_test(test_strings),     cmocka_unit_test(test_files),
        cmocka_unit_test(test_sha256_time), cmocka_unit_test(test_targz_round_trip),
        cmocka_unit_test(test_targz_empty), cmocka_unit_test(test_targz_errors),
        cmocka_unit_test(test_capture),     cmocka_unit_test(test_keytab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
