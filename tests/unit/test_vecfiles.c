/* test_vecfiles.c — the vector file readers and writers (src/vector/files.c):
 * .fvecs/.bvecs/.ivecs and .npy read back exactly, every truncation and malformed
 * header refused with a message naming the file (never a crash), and a small
 * ann-benchmarks .hdf5 file made here with the HDF5 C API read back with its
 * metric and distances converted. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/util.h"
#include "vector/vec.h"

#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/sonde-test-vecfiles-XXXXXX";

static char *tpath(const char *name)
{
    return path_join(tmpdir, name);
}

static void put(const char *name, const void *data, size_t len)
{
    char *p = tpath(name);
    assert_int_equal(write_file_atomic(p, data, len), 0);
    free(p);
}

static void le32_put(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void want_msg(const char *err, const char *path, const char *want)
{
    if (strncmp(err, path, strlen(path)))
        fail_msg("error '%s' does not start with the file name %s", err, path);
    if (!strstr(err, want))
        fail_msg("error '%s' lacks '%s'", err, want);
}

/* name holds data: vec_file_read must fail with rc and a message containing want. */
static void vec_err(const char *name, const void *data, size_t len, int rc, const char *want)
{
    put(name, data, len);
    char *p = tpath(name), err[512] = "";
    struct vec_mat m = {.n = 99};
    assert_int_equal(vec_file_read(p, 0, &m, err, sizeof(err)), rc);
    assert_int_equal(m.n, 0);
    assert_null(m.data);
    assert_null(m.map);
    want_msg(err, p, want);
    free(p);
}

static void ids_err(const char *name, const void *data, size_t len, int rc, const char *want)
{
    put(name, data, len);
    char *p = tpath(name), err[512] = "";
    struct vec_nbrs t = {.nq = 99};
    assert_int_equal(vec_ids_read(p, 0, &t, err, sizeof(err)), rc);
    assert_int_equal(t.nq, 0);
    assert_null(t.ids);
    want_msg(err, p, want);
    free(p);
}

/* A TEXMEX file of rows x dim 4-byte values (val(i, j)) into buf; its length. */
static size_t texmex4(unsigned char *buf, size_t rows, size_t dim, uint32_t (*val)(size_t, size_t))
{
    size_t off = 0;
    for (size_t i = 0; i < rows; i++) {
        le32_put(buf + off, (uint32_t)dim);
        off += 4;
        for (size_t j = 0; j < dim; j++, off += 4)
            le32_put(buf + off, val(i, j));
    }
    return off;
}

static float fval(size_t i, size_t j)
{
    return (float)i * 10.0f + (float)j - 0.5f;
}

static uint32_t fbits(size_t i, size_t j)
{
    float f = fval(i, j);
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static uint32_t ibits(size_t i, size_t j)
{
    return (uint32_t)(i * 4 + j);
}

/* An .npy file: version major.0, the dict text, padded with spaces and a newline
 * so that the data starts at a multiple of align (1: right after the newline),
 * then data. */
static size_t npy(unsigned char *buf, int major, const char *dict, size_t align, const void *data,
                  size_t dlen)
{
    size_t pre = major == 1 ? 10 : 12, hlen = strlen(dict) + 1;
    while ((pre + hlen) % align)
        hlen++;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    if (major == 1) {
        buf[8] = (unsigned char)hlen;
        buf[9] = (unsigned char)(hlen >> 8);
    } else
        le32_put(buf + 8, (uint32_t)hlen);
    memcpy(buf + pre, dict, strlen(dict));
    memset(buf + pre + strlen(dict), ' ', hlen - strlen(dict) - 1);
    buf[pre + hlen - 1] = '\n';
    if (dlen)
        memcpy(buf + pre + hlen, data, dlen);
    return pre + hlen + dlen;
}

static void fvals(float *out, size_t rows, size_t dim)
{
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < dim; j++)
            out[i * dim + j] = fval(i, j);
}

/* Files in the temporary directory whose names start with prefix. */
static size_t count_files(const char *prefix)
{
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += str_startswith(e->d_name, prefix);
    closedir(d);
    return n;
}

/* ---- TEXMEX -----------------------------------------------------------------------------------
 */

static void test_fvecs_roundtrip(void **state)
{
    (void)state;
    float data[12];
    fvals(data, 3, 4);
    struct vec_mat m = {.n = 3, .dim = 4, .data = data}, back;
    char *p = tpath("a.fvecs"), err[512] = "";
    assert_int_equal(vec_fvecs_write(p, &m, err, sizeof(err)), 0);
    assert_int_equal(count_files("a.fvecs"), 1); /* no temporary left */
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 3 * (4 + 16));
    assert_int_equal(vec_file_read(p, 0, &back, err, sizeof(err)), 0);
    assert_int_equal(back.n, 3);
    assert_int_equal(back.dim, 4);
    assert_null(back.map);
    assert_memory_equal(back.data, data, sizeof(data));
    vec_mat_free(&back);
    assert_null(back.data);
    assert_int_equal(vec_file_read(p, 2, &back, err, sizeof(err)), 0);
    assert_int_equal(back.n, 2);
    assert_memory_equal(back.data, data, 8 * sizeof(float));
    vec_mat_free(&back);
    assert_int_equal(vec_file_read(p, 10, &back, err, sizeof(err)), 0);
    assert_int_equal(back.n, 3);
    vec_mat_free(&back);
    /* replaced atomically: a second write of other rows */
    m.n = 1;
    data[0] = 42.0f;
    assert_int_equal(vec_fvecs_write(p, &m, err, sizeof(err)), 0);
    assert_int_equal(vec_file_read(p, 0, &back, err, sizeof(err)), 0);
    assert_int_equal(back.n, 1);
    assert_true(back.data[0] == 42.0f);
    vec_mat_free(&back);
    /* the same bytes by hand */
    unsigned char buf[256];
    size_t len = texmex4(buf, 3, 4, fbits);
    put("b.fvecs", buf, len);
    free(p);
    p = tpath("b.fvecs");
    assert_int_equal(vec_file_read(p, 0, &back, err, sizeof(err)), 0);
    fvals(data, 3, 4);
    assert_memory_equal(back.data, data, sizeof(data));
    vec_mat_free(&back);
    free(p);
    vec_mat_free(NULL);
    vec_nbrs_free(NULL);
}

static void test_ivecs_roundtrip(void **state)
{
    (void)state;
    int64_t ids[] = {0, 1, -1, 5, 4, INT32_MAX};
    struct vec_nbrs t = {.nq = 2, .k = 3, .ids = ids}, back;
    char *p = tpath("gt.ivecs"), err[512] = "";
    assert_int_equal(vec_ivecs_write(p, &t, err, sizeof(err)), 0);
    assert_int_equal(vec_ids_read(p, 0, &back, err, sizeof(err)), 0);
    assert_int_equal(back.nq, 2);
    assert_int_equal(back.k, 3);
    assert_null(back.dist);
    assert_memory_equal(back.ids, ids, sizeof(ids));
    vec_nbrs_free(&back);
    assert_null(back.ids);
    assert_int_equal(vec_ids_read(p, 1, &back, err, sizeof(err)), 0);
    assert_int_equal(back.nq, 1);
    vec_nbrs_free(&back);
    /* ids an .ivecs cannot hold, and nothing at all */
    ids[2] = -2;
    assert_int_equal(vec_ivecs_write(p, &t, err, sizeof(err)), -EINVAL);
    want_msg(err, p, "id -2");
    ids[2] = (int64_t)INT32_MAX + 1;
    assert_int_equal(vec_ivecs_write(p, &t, err, sizeof(err)), -EINVAL);
    want_msg(err, p, "2147483648");
    t.nq = 0;
    assert_int_equal(vec_ivecs_write(p, &t, err, sizeof(err)), -EINVAL);
    want_msg(err, p, "0 rows");
    free(p);
    /* a file ids below -1 */
    unsigned char buf[64];
    le32_put(buf, 2);
    le32_put(buf + 4, 7);
    le32_put(buf + 8, (uint32_t)-3);
    ids_err("neg.ivecs", buf, 12, -EINVAL, "row 0 has id -3 at column 1");
}

static void test_bvecs(void **state)
{
    (void)state;
    static const unsigned char b[] = {3, 0, 0, 0, 1, 2, 255, 3, 0, 0, 0, 0, 128, 7};
    put("x.bvecs", b, sizeof(b));
    char *p = tpath("x.bvecs"), err[512] = "";
    struct vec_mat m;
    assert_int_equal(vec_file_read(p, 0, &m, err, sizeof(err)), 0);
    assert_int_equal(m.n, 2);
    assert_int_equal(m.dim, 3);
    const float want[] = {1, 2, 255, 0, 128, 7};
    assert_memory_equal(m.data, want, sizeof(want));
    vec_mat_free(&m);
    assert_int_equal(vec_file_read(p, 1, &m, err, sizeof(err)), 0);
    assert_int_equal(m.n, 1);
    vec_mat_free(&m);
    free(p);
    unsigned char mixed[] = {3, 0, 0, 0, 1, 2, 3, 2, 0, 0, 0, 4, 5, 0};
    vec_err("mixed.bvecs", mixed, sizeof(mixed), -EINVAL, "row 1 says dimension 2, row 0 says 3");
}

static void test_dims(void **state)
{
    (void)state;
    unsigned char buf[256];
    size_t len = texmex4(buf, 3, 4, fbits);
    le32_put(buf + 20, 5); /* row 1 */
    vec_err("d.fvecs", buf, len, -EINVAL, "row 1 says dimension 5, row 0 says 4");
    le32_put(buf + 20, 4);
    le32_put(buf, 0);
    vec_err("d.fvecs", buf, len, -EINVAL, "row 0 says dimension 0");
    le32_put(buf, (uint32_t)-4);
    vec_err("d.fvecs", buf, len, -EINVAL, "row 0 says dimension -4");
    le32_put(buf, 65537);
    vec_err("d.fvecs", buf, len, -EINVAL, "dimension 65537");
    le32_put(buf, 0x7fffffff);
    vec_err("d.fvecs", buf, len, -EINVAL, "dimension 2147483647");
    le32_put(buf, 4);
    /* a row cut short */
    le32_put(buf + len, 4);
    vec_err("d.fvecs", buf, len + 8, -EINVAL, "truncated: row 3 has 8 of its 20 bytes");
    /* the largest dimension is fine */
    size_t big = 4 + 4 * 65536;
    unsigned char *one = xcalloc(big, 1);
    le32_put(one, 65536);
    put("big.fvecs", one, big);
    free(one);
    char *p = tpath("big.fvecs"), err[512];
    struct vec_mat m;
    assert_int_equal(vec_file_read(p, 0, &m, err, sizeof(err)), 0);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.dim, 65536);
    vec_mat_free(&m);
    free(p);
}

static void test_nonfinite(void **state)
{
    (void)state;
    unsigned char buf[256];
    size_t len = texmex4(buf, 3, 4, fbits);
    float nan = NAN, inf = -INFINITY;
    memcpy(buf + 2 * 20 + 4 + 4, &nan, 4); /* row 2, column 1 */
    vec_err("n.fvecs", buf, len, -EINVAL, "row 2 has NaN at column 1");
    memcpy(buf + 2 * 20 + 4 + 4, &inf, 4);
    vec_err("n.fvecs", buf, len, -EINVAL, "row 2 has -Inf at column 1");
    /* max_rows stops before it */
    put("n.fvecs", buf, len);
    char *p = tpath("n.fvecs"), err[512];
    struct vec_mat m;
    assert_int_equal(vec_file_read(p, 2, &m, err, sizeof(err)), 0);
    assert_int_equal(m.n, 2);
    vec_mat_free(&m);
    free(p);
    /* and in an .npy */
    float d[6] = {1, 2, 3, 4, INFINITY, 6};
    len = npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 64, d,
              sizeof(d));
    vec_err("n.npy", buf, len, -EINVAL, "row 2 has +Inf at column 0");
}

/* Every prefix of a valid file is refused (cmocka would catch a crash; ASan a
 * read past the end in the fuzz build), except, for TEXMEX files (row > 0 bytes
 * a row), a cut between rows: that is a valid file of fewer rows. */
static void truncations(const char *name, const unsigned char *buf, size_t len, bool ids,
                        size_t row)
{
    char *p = tpath(name), err[512];
    for (size_t cut = 0; cut <= len; cut++) {
        put(name, buf, cut);
        err[0] = '\0';
        int rc;
        size_t n = 0;
        if (ids) {
            struct vec_nbrs t;
            rc = vec_ids_read(p, 0, &t, err, sizeof(err));
            n = t.nq;
            vec_nbrs_free(&t);
        } else {
            struct vec_mat m;
            rc = vec_file_read(p, 0, &m, err, sizeof(err));
            n = m.n;
            vec_mat_free(&m);
        }
        bool whole = cut == len || (row && cut && cut % row == 0);
        if (whole && (rc != 0 || n != (row ? cut / row : n)))
            fail_msg("%s cut at %zu of %zu bytes: rc %d, %zu rows (%s)", name, cut, len, rc, n,
                     err);
        if (!whole && rc != -EINVAL)
            fail_msg("%s cut at %zu of %zu bytes: rc %d (%s)", name, cut, len, rc, err);
        if (!whole)
            want_msg(err, p, cut ? "" : "empty file");
    }
    free(p);
}

static void test_truncated(void **state)
{
    (void)state;
    unsigned char buf[512];
    size_t len = texmex4(buf, 3, 4, fbits);
    truncations("t.fvecs", buf, len, false, 20);
    len = texmex4(buf, 3, 4, ibits);
    truncations("t.ivecs", buf, len, true, 20);
    static const unsigned char b[] = {3, 0, 0, 0, 1, 2, 255, 3, 0, 0, 0, 0, 128, 7};
    truncations("t.bvecs", b, sizeof(b), false, 7);
    float d[6];
    fvals(d, 3, 2);
    len = npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 64, d,
              sizeof(d));
    truncations("t.npy", buf, len, false, 0);
    int32_t ids[6] = {0, 1, 2, 3, -1, 5};
    len = npy(buf, 2, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", 16, ids,
              sizeof(ids));
    truncations("i.npy", buf, len, true, 0);
}

static void test_unknown(void **state)
{
    (void)state;
    char err[512];
    struct vec_mat m;
    struct vec_nbrs t;
    assert_int_equal(vec_file_read("/x/data.txt", 0, &m, err, sizeof(err)), -EINVAL);
    want_msg(err, "/x/data.txt", "supported: .fvecs, .bvecs, .npy");
    assert_int_equal(vec_file_read("/x.npy/data", 0, &m, err, sizeof(err)), -EINVAL);
    want_msg(err, "/x.npy/data", "supported");
    assert_int_equal(vec_ids_read("/x/gt.fvecs", 0, &t, err, sizeof(err)), -EINVAL);
    want_msg(err, "/x/gt.fvecs", "supported: .ivecs, .npy");
    char *p = tpath("missing.fvecs");
    assert_int_equal(vec_file_read(p, 0, &m, err, sizeof(err)), -ENOENT);
    want_msg(err, p, "No such file");
    free(p);
    p = tpath("dir.fvecs");
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(vec_file_read(p, 0, &m, err, sizeof(err)), -EINVAL);
    want_msg(err, p, "not a regular file");
    free(p);
    /* upper case extensions are the same types */
    unsigned char buf[64];
    size_t len = texmex4(buf, 1, 2, fbits);
    put("UP.FVECS", buf, len);
    p = tpath("UP.FVECS");
    assert_int_equal(vec_file_read(p, 0, &m, err, sizeof(err)), 0);
    vec_mat_free(&m);
    free(p);
}

static void test_writer_errors(void **state)
{
    (void)state;
    float d[2] = {1, 2};
    struct vec_mat m = {.n = 1, .dim = 2, .data = d};
    char *p = tpath("no/such/dir.fvecs"), err[512];
    assert_int_equal(vec_fvecs_write(p, &m, err, sizeof(err)), -ENOENT);
    want_msg(err, p, "cannot create");
    free(p);
    p = tpath("e.fvecs");
    m.n = 0;
    assert_int_equal(vec_fvecs_write(p, &m, err, sizeof(err)), -EINVAL);
    want_msg(err, p, "0 rows");
    m.n = 1;
    m.dim = 0;
    assert_int_equal(vec_fvecs_write(p, &m, err, sizeof(err)), -EINVAL);
    assert_int_equal(access(p, F_OK), -1);
    free(p);
}

/* ---- .npy -------------------------------------------------------------------------------------
 */

/* A valid .npy of 3 x 2 floats: read back, mapped when its data starts at a
 * multiple of 4 bytes, else copied. */
static bool npy_ok(const char *name, int major, const char *dict, size_t align)
{
    unsigned char buf[512];
    float d[6];
    fvals(d, 3, 2);
    size_t len = npy(buf, major, dict, align, d, sizeof(d));
    put(name, buf, len);
    char *p = tpath(name), err[512] = "";
    struct vec_mat m;
    if (vec_file_read(p, 0, &m, err, sizeof(err)) != 0)
        fail_msg("%s: %s", dict, err);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.dim, 2);
    assert_memory_equal(m.data, d, sizeof(d));
    bool mapped = (len - sizeof(d)) % 4 == 0;
    if (mapped) {
        assert_non_null(m.map);
        assert_int_equal(m.map_len, len);
        assert_ptr_equal(m.data, (char *)m.map + (len - sizeof(d)));
    } else
        assert_null(m.map);
    vec_mat_free(&m);
    assert_int_equal(vec_file_read(p, 2, &m, err, sizeof(err)), 0);
    assert_int_equal(m.n, 2);
    assert_memory_equal(m.data, d, 4 * sizeof(float));
    vec_mat_free(&m);
    free(p);
    return mapped;
}

static void test_npy(void **state)
{
    (void)state;
    const char *std = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }";
    npy_ok("v1.npy", 1, std, 64);
    npy_ok("v16.npy", 1, std, 16);
    npy_ok("v2.npy", 2, std, 64);
    npy_ok("v3.npy", 3, std, 64);
    /* data at every offset modulo 4: copied when not a multiple of 4 */
    int mapped =
        npy_ok("o0.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2)}", 1);
    mapped += npy_ok("o1.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2) }", 1);
    mapped += npy_ok("o2.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2)  }", 1);
    mapped +=
        npy_ok("o3.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2)   }", 1);
    assert_int_equal(mapped, 1);
    /* other spellings of the same header */
    npy_ok("s1.npy", 1, "{\"shape\":(3,2),\"fortran_order\":False,\"descr\":\"<f4\"}", 64);
    npy_ok("s2.npy", 1, "{'descr':'<f4','fortran_order':False,'shape':(3L, 2L,),}", 64);
}

static void npy_bad(const char *dict, size_t dlen, const char *want)
{
    unsigned char buf[1024];
    float d[64] = {0};
    assert_true(dlen <= sizeof(d));
    size_t len = npy(buf, 1, dict, 64, d, dlen);
    vec_err("bad.npy", buf, len, -EINVAL, want);
}

static void test_npy_bad(void **state)
{
    (void)state;
    npy_bad("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", 24, "fortran_order");
    npy_bad("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", 48, "dtype '<f8'");
    npy_bad("{'descr': '>f4', 'fortran_order': False, 'shape': (3, 2), }", 24, "big-endian");
    npy_bad("{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2), }", 6, "dtype '|u1'");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 24, "1 dimension;");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, "0 dimensions");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1, 2), }", 24, "3 dimensions");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 2), }", 0, "no rows");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }", 0, "rows of 0 values");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 65537), }", 24, "65537");
    /* shapes whose byte count overflows, or whose numbers do */
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 2), }", 24,
            "does not match");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 1), }", 24,
            "does not match");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2305843009213693952, 2), }", 0,
            "does not match");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551616, 2), }", 24,
            "malformed");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 2), }", 24, "malformed");
    /* data longer or shorter than the shape */
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 28, "does not match");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 20, "truncated");
    /* the dict itself */
    npy_bad("{'descr': '<f4', 'fortran_order': False, }", 24, "no 'shape'");
    npy_bad("{'descr': '<f4', 'shape': (3, 2), }", 24, "no 'fortran_order'");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), 'x': 1}", 24,
            "unknown key 'x'");
    npy_bad("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3, 2)}", 24,
            "repeated key 'descr'");
    npy_bad("{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (3,)}", 24,
            "structured");
    npy_bad("{'descr': '<f4, 'fortran_order': False, 'shape': (3, 2)}", 24, "malformed");
    npy_bad("{'descr': '<f4', 'fortran_order': false, 'shape': (3, 2)}", 24, "True or False");
    npy_bad("{'descr': '<f4' 'fortran_order': False, 'shape': (3, 2)}", 24, "',' or '}'");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3 2)}", 24, "',' or ')'");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2)} x", 24, "after the closing");
    npy_bad("['descr', '<f4']", 24, "expected '{'");
    npy_bad("{'de\\x63r': '<f4'}", 24, "quoted key");
    npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2)", 24, "',' or '}'");

    unsigned char buf[256];
    float d[6] = {0};
    size_t len = npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 64, d,
                     sizeof(d));
    buf[1] = 'n';
    vec_err("bad.npy", buf, len, -EINVAL, "not a .npy file");
    buf[1] = 'N';
    buf[6] = 4;
    vec_err("bad.npy", buf, len, -EINVAL, "version 4.0");
    buf[6] = 1;
    buf[7] = 1;
    vec_err("bad.npy", buf, len, -EINVAL, "version 1.1");
    buf[7] = 0;
    buf[8] = 0xff; /* header longer than the file */
    buf[9] = 0xff;
    vec_err("bad.npy", buf, len, -EINVAL, "truncated");
    len = npy(buf, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 64, d,
              sizeof(d));
    le32_put(buf + 8, 0xfffffff0u);
    vec_err("bad.npy", buf, len, -EINVAL, "truncated");
}

static void test_npy_ids(void **state)
{
    (void)state;
    unsigned char buf[512];
    char *p = tpath("ids.npy"), err[512] = "";
    struct vec_nbrs t;
    int32_t i4[6] = {0, 1, 2, 3, -1, 5};
    size_t len = npy(buf, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", 64, i4,
                     sizeof(i4));
    put("ids.npy", buf, len);
    assert_int_equal(vec_ids_read(p, 0, &t, err, sizeof(err)), 0);
    assert_int_equal(t.nq, 2);
    assert_int_equal(t.k, 3);
    assert_null(t.dist);
    for (int i = 0; i < 6; i++)
        assert_int_equal(t.ids[i], i4[i]);
    vec_nbrs_free(&t);
    int64_t i8[6] = {0, (int64_t)1 << 40, 2, 3, -1, 5};
    len = npy(buf, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", 64, i8,
              sizeof(i8));
    put("ids.npy", buf, len);
    assert_int_equal(vec_ids_read(p, 1, &t, err, sizeof(err)), 0);
    assert_int_equal(t.nq, 1);
    assert_memory_equal(t.ids, i8, 3 * sizeof(int64_t));
    vec_nbrs_free(&t);
    /* a vector reader refuses ids, the ids reader vectors */
    vec_err("ids.npy", buf, len, -EINVAL, "dtype '<i8'");
    float f[6] = {0};
    len = npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 64, f,
              sizeof(f));
    ids_err("f.npy", buf, len, -EINVAL, "dtype '<f4'");
    i8[4] = -2;
    len = npy(buf, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", 64, i8,
              sizeof(i8));
    ids_err("neg.npy", buf, len, -EINVAL, "row 1 has id -2 at column 1");
    len = npy(buf, 1, "{'descr': '>i8', 'fortran_order': False, 'shape': (2, 3), }", 64, i8,
              sizeof(i8));
    ids_err("be.npy", buf, len, -EINVAL, "big-endian");
    len = npy(buf, 1, "{'descr': '<u4', 'fortran_order': False, 'shape': (2, 3), }", 64, i4,
              sizeof(i4));
    ids_err("u.npy", buf, len, -EINVAL, "dtype '<u4'");
    free(p);
}

/* ---- ann-benchmarks .hdf5 ------------------------------------------------------------------- */

struct h5spec {
    const char *metric; /* NULL: no attribute */
    bool fixed_string;  /* the attribute as a fixed-length string (else variable, as h5py) */
    bool no_test, no_truth, no_dist;
    size_t test_dim; /* 0: 3 */
    size_t nbr_rows; /* 0: 2 */
    int64_t bad_id;  /* put into neighbors[0][0] when not 0 */
    bool train_1d, train_int, train_nan;
    const float *dist; /* 2 x 2; NULL: {1, 2, 0.5, 3} */
};

static void h5_put(hid_t f, const char *name, hid_t ftype, hid_t mtype, int nd, size_t rows,
                   size_t cols, const void *data)
{
    hsize_t dims[2] = {rows, cols};
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0);
    assert_true(H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
}

static char *h5_make(const char *name, const struct h5spec *s)
{
    char *p = tpath(name);
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    float train[5 * 3];
    for (int i = 0; i < 15; i++)
        train[i] = (float)i * 0.25f;
    if (s->train_nan)
        train[7] = NAN;
    if (s->train_int) {
        int32_t t[15] = {0};
        h5_put(f, "train", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, 5, 3, t);
    } else
        h5_put(f, "train", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, s->train_1d ? 1 : 2,
               s->train_1d ? 15 : 5, 3, train);
    size_t td = s->test_dim ? s->test_dim : 3;
    double test[2 * 8];
    for (size_t i = 0; i < 2 * td; i++)
        test[i] = 0.5 * (double)i;
    if (!s->no_test)
        h5_put(f, "test", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, 2, td, test);
    size_t nr = s->nbr_rows ? s->nbr_rows : 2;
    int32_t nb[3 * 2] = {4, 3, 0, 1, 2, 2};
    if (s->bad_id)
        nb[0] = (int32_t)s->bad_id;
    static const float dist0[4] = {1, 2, 0.5f, 3};
    if (!s->no_truth) {
        h5_put(f, "neighbors", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, nr, 2, nb);
        if (!s->no_dist)
            h5_put(f, "distances", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, 2, 2,
                   s->dist ? s->dist : dist0);
    }
    if (s->metric) {
        hid_t t = H5Tcopy(H5T_C_S1);
        hid_t sp = H5Screate(H5S_SCALAR);
        if (s->fixed_string) {
            H5Tset_size(t, strlen(s->metric));
            H5Tset_strpad(t, H5T_STR_NULLPAD);
        } else {
            H5Tset_size(t, H5T_VARIABLE);
            H5Tset_cset(t, H5T_CSET_UTF8);
        }
        hid_t a = H5Acreate2(f, "distance", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(a >= 0);
        if (s->fixed_string)
            assert_true(H5Awrite(a, t, s->metric) >= 0);
        else
            assert_true(H5Awrite(a, t, &s->metric) >= 0);
        H5Aclose(a);
        H5Sclose(sp);
        H5Tclose(t);
    }
    H5Fclose(f);
    return p;
}

static void h5_err(const struct h5spec *s, const char *want)
{
    char *p = h5_make("bad.hdf5", s), err[512] = "";
    struct vec_mat train, test;
    struct vec_nbrs truth;
    enum vec_metric m = VEC_IP;
    bool has = true;
    assert_int_equal(vec_hdf5_read(p, &train, &test, &truth, &m, &has, err, sizeof(err)), -EINVAL);
    assert_null(train.data);
    assert_null(test.data);
    assert_null(truth.ids);
    assert_false(has);
    assert_int_equal(m, VEC_IP);
    want_msg(err, p, want);
    free(p);
}

static void test_hdf5(void **state)
{
    (void)state;
    struct h5spec s = {.metric = "euclidean"};
    char *p = h5_make("e.hdf5", &s), err[512] = "";
    struct vec_mat train, test;
    struct vec_nbrs truth;
    enum vec_metric m = VEC_IP;
    bool has = false;
    if (vec_hdf5_read(p, &train, &test, &truth, &m, &has, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_true(has);
    assert_int_equal(m, VEC_L2);
    assert_int_equal(train.n, 5);
    assert_int_equal(train.dim, 3);
    assert_true(train.data[14] == 3.5f);
    assert_int_equal(test.n, 2);
    assert_int_equal(test.dim, 3);
    assert_true(test.data[5] == 2.5f); /* float64 converted */
    assert_int_equal(truth.nq, 2);
    assert_int_equal(truth.k, 2);
    assert_int_equal(truth.ids[0], 4);
    assert_int_equal(truth.ids[3], 1);
    assert_non_null(truth.dist);
    assert_true(truth.dist[1] == 4.0f && truth.dist[2] == 0.25f); /* squared */
    vec_mat_free(&train);
    vec_mat_free(&test);
    vec_nbrs_free(&truth);
    free(p);

    /* angular as a fixed-length string: cosine, distances 1 - cos become -cos */
    s = (struct h5spec){
        .metric = "angular", .fixed_string = true, .dist = (const float[]){0.25f, 0.5f, 0, 1}};
    p = h5_make("a.hdf5", &s);
    assert_int_equal(vec_hdf5_read(p, &train, &test, &truth, &m, &has, err, sizeof(err)), 0);
    assert_int_equal(m, VEC_COSINE);
    assert_true(truth.dist[0] == -0.75f && truth.dist[1] == -0.5f && truth.dist[2] == -1.0f &&
                truth.dist[3] == 0.0f);
    vec_mat_free(&train);
    vec_mat_free(&test);
    vec_nbrs_free(&truth);
    free(p);

    /* dot: inner products falling along a row are negated, rising ones kept */
    s = (struct h5spec){.metric = "dot", .dist = (const float[]){5, 3, 4, 1}};
    p = h5_make("d.hdf5", &s);
    assert_int_equal(vec_hdf5_read(p, &train, &test, &truth, NULL, NULL, err, sizeof(err)), 0);
    assert_true(truth.dist[0] == -5.0f && truth.dist[3] == -1.0f);
    vec_mat_free(&train);
    vec_mat_free(&test);
    vec_nbrs_free(&truth);
    free(p);
    s = (struct h5spec){.metric = "ip", .dist = (const float[]){-5, -3, -4, -1}};
    p = h5_make("d.hdf5", &s);
    assert_int_equal(vec_hdf5_read(p, &train, &test, &truth, &m, &has, err, sizeof(err)), 0);
    assert_int_equal(m, VEC_IP);
    assert_true(truth.dist[0] == -5.0f && truth.dist[3] == -1.0f);
    vec_mat_free(&train);
    vec_mat_free(&test);
    vec_nbrs_free(&truth);
    free(p);

    /* no attribute: no metric, and distances of unknown form left out */
    s = (struct h5spec){0};
    p = h5_make("n.hdf5", &s);
    m = VEC_IP;
    assert_int_equal(vec_hdf5_read(p, &train, &test, &truth, &m, &has, err, sizeof(err)), 0);
    assert_false(has);
    assert_int_equal(m, VEC_IP);
    assert_int_equal(truth.nq, 2);
    assert_null(truth.dist);
    vec_mat_free(&train);
    vec_mat_free(&test);
    vec_nbrs_free(&truth);
    free(p);

    /* no neighbours at all: truth zeroed */
    s = (struct h5spec){.metric = "euclidean", .no_truth = true};
    p = h5_make("t.hdf5", &s);
    assert_int_equal(vec_hdf5_read(p, &train, &test, &truth, &m, &has, err, sizeof(err)), 0);
    assert_int_equal(truth.nq, 0);
    assert_null(truth.ids);
    vec_mat_free(&train);
    vec_mat_free(&test);
    free(p);
    /* neighbours without distances */
    s = (struct h5spec){.metric = "euclidean", .no_dist = true};
    p = h5_make("t.hdf5", &s);
    assert_int_equal(vec_hdf5_read(p, &train, &test, &truth, &m, &has, err, sizeof(err)), 0);
    assert_int_equal(truth.nq, 2);
    assert_null(truth.dist);
    vec_mat_free(&train);
    vec_mat_free(&test);
    vec_nbrs_free(&truth);
    free(p);
}

static void test_hdf5_bad(void **state)
{
    (void)state;
    h5_err(&(struct h5spec){.metric = "euclidean", .no_test = true}, "no dataset 'test'");
    h5_err(&(struct h5spec){.metric = "jaccard"}, "distance 'jaccard' is not supported");
    h5_err(&(struct h5spec){.metric = "euclidean", .test_dim = 4},
           "'train' has dimension 3, 'test' 4");
    h5_err(&(struct h5spec){.metric = "euclidean", .nbr_rows = 3},
           "'neighbors' has 3 rows, 'test' has 2");
    h5_err(&(struct h5spec){.metric = "euclidean", .bad_id = 5}, "'neighbors' row 0 has id 5");
    h5_err(&(struct h5spec){.metric = "euclidean", .bad_id = -2}, "id -2");
    h5_err(&(struct h5spec){.metric = "euclidean", .train_1d = true}, "'train' has 1 dimension");
    h5_err(&(struct h5spec){.metric = "euclidean", .train_int = true}, "integer values");
    h5_err(&(struct h5spec){.metric = "euclidean", .train_nan = true}, "'train' row 2 has NaN");
    h5_err(&(struct h5spec){.metric = "euclidean", .dist = (const float[]){1, NAN, 1, 1}},
           "'distances' row 0 has NaN at column 1");

    char err[512];
    struct vec_mat train, test;
    struct vec_nbrs truth;
    put("text.hdf5", "hello", 5);
    char *p = tpath("text.hdf5");
    assert_int_equal(vec_hdf5_read(p, &train, &test, &truth, NULL, NULL, err, sizeof(err)),
                     -EINVAL);
    want_msg(err, p, "not an HDF5 file");
    free(p);
    p = tpath("missing.hdf5");
    assert_int_equal(vec_hdf5_read(p, &train, &test, &truth, NULL, NULL, err, sizeof(err)),
                     -ENOENT);
    want_msg(err, p, "No such file");
    free(p);
    /* a cut-off HDF5 file */
    p = h5_make("cut.hdf5", &(struct h5spec){.metric = "euclidean"});
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(read_file(p, 1 << 20, &data, &len), 0);
    put("cut.hdf5", data, len / 2);
    free(data);
    assert_true(vec_hdf5_read(p, &train, &test, &truth, NULL, NULL, err, sizeof(err)) < 0);
    want_msg(err, p, "");
    free(p);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rm_rf(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fvecs_roundtrip),
        cmocka_unit_test(test_ivecs_roundtrip),
        cmocka_unit_test(test_bvecs),
        cmocka_unit_test(test_dims),
        cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_npy),
        cmocka_unit_test(test_npy_bad),
        cmocka_unit_test(test_npy_ids),
        cmocka_unit_test(test_hdf5),
        cmocka_unit_test(test_hdf5_bad),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
