/* test_fileio.c — fileio's pieces that need no file system: block layouts,
 * seeded permutations (every block exactly once), verify headers, the
 * mountinfo reader, and results as stats extras (merged like any other). */
#include "fileio/fsinfo.h"
#include "fileio/layout.h"
#include "fileio/task.h"
#include "fileio/verify.h"
#include "loadgen/stats_file.h"
#include "util/hdr.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

/* Each i < n maps to a distinct value < n. */
static void assert_permutation(uint64_t n, uint64_t seed)
{
    struct fx_perm p;
    fx_perm_init(&p, n, seed);
    unsigned char *seen = xcalloc(n, 1);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = fx_perm_at(&p, i);
        assert_true(v < n);
        assert_false(seen[v]);
        seen[v] = 1;
    }
    free(seen);
}

static void test_perm(void **state)
{
    (void)state;
    static const uint64_t sizes[] = {1, 2, 3, 5, 7, 64, 100, 1000, 4097, 100003};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(sizes); i++)
        for (uint64_t seed = 0; seed < 3; seed++)
            assert_permutation(sizes[i], seed);
    /* seeded: the same seed, the same order; another seed, another order */
    struct fx_perm a, b, c;
    fx_perm_init(&a, 1000, 7);
    fx_perm_init(&b, 1000, 7);
    fx_perm_init(&c, 1000, 8);
    int same = 0, moved = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        assert_int_equal(fx_perm_at(&a, i), fx_perm_at(&b, i));
        same += fx_perm_at(&a, i) == fx_perm_at(&c, i);
        moved += fx_perm_at(&a, i) != i;
    }
    assert_true(same < 20);   /* another seed: nearly every position differs */
    assert_true(moved > 950); /* and it is not the identity */
}

/* The tasks' blocks of a shared layout cover every block exactly once. */
static void assert_cover(enum fx_layout l, uint64_t files, uint64_t bpf, unsigned n)
{
    uint64_t g = files * bpf, total = 0, lo = UINT64_MAX, hi = 0;
    unsigned char *seen = xcalloc(g, 1);
    for (unsigned k = 0; k < n; k++) {
        struct fx_space s;
        assert_int_equal(fx_space_init(&s, l, files, bpf, k, n), 0);
        lo = s.n < lo ? s.n : lo;
        hi = s.n > hi ? s.n : hi;
        uint64_t prev = 0;
        for (uint64_t i = 0; i < s.n; i++) {
            uint64_t f, b;
            fx_space_block(&s, i, &f, &b);
            assert_true(f < files && b < bpf);
            uint64_t at = f * bpf + b;
            assert_false(seen[at]);
            seen[at] = 1;
            if (l == FX_SEGMENTED && i) /* one contiguous run */
                assert_int_equal(at, prev + 1);
            if (l == FX_STRIDED) /* every n-th block from k */
                assert_int_equal(at % n, k);
            prev = at;
        }
        total += s.n;
    }
    assert_int_equal(total, g);
    assert_true(hi - lo <= 1); /* shared evenly */
    free(seen);
}

static void test_layouts(void **state)
{
    (void)state;
    for (unsigned n = 1; n <= 9; n++) {
        assert_cover(FX_SEGMENTED, 1, 100, n);
        assert_cover(FX_STRIDED, 1, 100, n);
        assert_cover(FX_SEGMENTED, 7, 3, n); /* many small files: whole files per task */
        assert_cover(FX_STRIDED, 7, 3, n);
    }
    assert_cover(FX_STRIDED, 1, 3, 8); /* fewer blocks than tasks: some have none */
    struct fx_space s;
    assert_int_equal(fx_space_init(&s, FX_PER_TASK, 3, 10, 2, 4), 0);
    assert_int_equal(s.n, 30); /* its own files, all of them */
    uint64_t f, b;
    fx_space_block(&s, 25, &f, &b);
    assert_int_equal(f, 2);
    assert_int_equal(b, 5);
    assert_int_equal(fx_space_init(&s, FX_STRIDED, 1, 1, 4, 4), -EINVAL); /* task >= n */
    assert_int_equal(fx_space_init(&s, FX_STRIDED, 0, 1, 0, 4), -EINVAL);
    assert_int_equal(fx_space_init(&s, FX_PER_TASK, 1ULL << 40, 1ULL << 40, 0, 1), -EINVAL);
}

static void test_verify(void **state)
{
    (void)state;
    unsigned char buf[4096];
    char why[200];
    fx_verify_fill(buf, sizeof(buf), 8192, 3, 17, 42);
    assert_int_equal(fx_verify_check(buf, sizeof(buf), 8192, why, sizeof(why)), 0);
    /* any flipped bit, anywhere in the block, is caught */
    for (size_t at = 0; at < sizeof(buf); at += 97) {
        buf[at] ^= 0x04;
        assert_int_equal(fx_verify_check(buf, sizeof(buf), 8192, why, sizeof(why)), -EILSEQ);
        buf[at] ^= 0x04;
    }
    buf[300] ^= 1;
    fx_verify_check(buf, sizeof(buf), 8192, why, sizeof(why));
    assert_string_equal(why, "checksum mismatch (written by task 3, sequence 17)");
    buf[300] ^= 1;
    /* a block found at another offset (a misdirected write) */
    assert_int_equal(fx_verify_check(buf, sizeof(buf), 4096, why, sizeof(why)), -EILSEQ);
    assert_string_equal(why, "the header belongs to the block of 4096 bytes at offset 8192");
    memset(buf, 0, sizeof(buf)); /* never written */
    assert_int_equal(fx_verify_check(buf, sizeof(buf), 0, why, sizeof(why)), -EILSEQ);
    assert_non_null(strstr(why, "no block header"));
    /* the payload depends on the offset and the sequence */
    unsigned char other[4096];
    fx_verify_fill(other, sizeof(other), 8192, 3, 18, 42);
    fx_verify_fill(buf, sizeof(buf), 8192, 3, 17, 42);
    assert_true(memcmp(buf + 64, other + 64, 64) != 0);
}

static void test_mountinfo(void **state)
{
    (void)state;
    const char *text =
        "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,errors=remount-ro\n"
        "30 22 0:25 / /scratch rw,nosuid master:3 - lustre 10.0.0.1@o2ib:/fs rw,flock\n"
        "31 30 0:26 / /scratch/my\\040dir rw - tmpfs tmpfs rw,size=4096k\n"
        "32 22 0:27 / /scratchy rw - nfs srv:/x rw,vers=4.2\n"
        "malformed line\n";
    struct fx_fsinfo fi;
    memset(&fi, 0, sizeof(fi));
    assert_int_equal(fx_mountinfo_find(text, "/scratch/project/a", &fi), 0);
    assert_string_equal(fi.type, "lustre");
    assert_string_equal(fi.mount, "/scratch");
    assert_string_equal(fi.source, "10.0.0.1@o2ib:/fs");
    assert_string_equal(fi.options, "rw,nosuid,rw,flock");
    assert_int_equal(fx_mountinfo_find(text, "/scratch/my dir/x", &fi), 0);
    assert_string_equal(fi.type, "tmpfs");
    assert_string_equal(fi.mount, "/scratch/my dir");
    assert_int_equal(fx_mountinfo_find(text, "/scratchy", &fi), 0); /* not /scratch */
    assert_string_equal(fi.type, "nfs");
    assert_int_equal(fx_mountinfo_find(text, "/home/u", &fi), 0);
    assert_string_equal(fi.type, "ext4");
    assert_int_equal(fx_mountinfo_find("garbage\n", "/", &fi), -ENOENT);
    assert_string_equal(fx_fs_type_name(0xEF53), "ext4");
    assert_string_equal(fx_fs_type_name(0x0BD00BD0), "lustre");
    assert_string_equal(fx_fs_type_name(0x47504653), "gpfs");
    assert_null(fx_fs_type_name(0x12345));
}

/* A task's results as extras, two of them merged: counts summed, histograms
 * merged, the first and last finish kept. */
static void fake_result(struct fx_result *r, uint64_t ops, int64_t end, int64_t lat)
{
    memset(r, 0, sizeof(*r));
    struct fx_opstat *st = &r->op[FX_OP_READ];
    st->used = true;
    st->ops = st->ops_first = ops;
    st->bytes = st->bytes_first = ops * 4096;
    assert_int_equal(hdr_init(1, 3600LL * 1000000000LL, 3, &st->lat), 0);
    for (uint64_t i = 0; i < ops; i++)
        hdr_record(st->lat, lat);
    st->t0_wall = 1767225600000000000LL;
    st->end_ns = end;
    st->nsec = 2;
    st->sec_ops = xcalloc(2, sizeof(uint64_t));
    st->sec_bytes = xcalloc(2, sizeof(uint64_t));
    st->sec_ops[0] = ops;
    st->sec_bytes[0] = ops * 4096;
}

static void test_result_stats(void **state)
{
    (void)state;
    struct fx_spec sp = {.nphases = 1, .phase = {FX_RANDREAD}};
    struct fx_result a, b;
    fake_result(&a, 100, 2000000000, 1000);
    fake_result(&b, 50, 1500000000, 3000);
    b.errors[FX_E_IO] = 1;
    struct lg_stats *sa = NULL, *sb = NULL, *m = NULL;
    assert_int_equal(fx_result_stats(&sp, &a, &sa), 0);
    assert_int_equal(fx_result_stats(&sp, &b, &sb), 0);
    /* through the file format and back */
    char *text = NULL, err[256];
    size_t len = 0;
    assert_int_equal(lg_stats_dump(sb, &text, &len, err, sizeof(err)), 0);
    lg_stats_free(sb);
    assert_int_equal(lg_stats_parse(text, len, "b", &sb, err, sizeof(err)), 0);
    free(text);
    struct lg_stats *in[] = {sa, sb};
    assert_int_equal(lg_stats_merge(in, 2, &m, err, sizeof(err)), 0);
    assert_int_equal(lg_extra_count(m, "read_ops"), 150);
    assert_int_equal(lg_extra_count(m, "read_bytes"), 150 * 4096);
    assert_int_equal(lg_extra_count(m, "errors_io"), 1);
    assert_int_equal(lg_extra_value(m, "read_first_ns", LG_EXTRA_MIN, 0), 1500000000);
    assert_int_equal(lg_extra_value(m, "read_last_ns", LG_EXTRA_MAX, 0), 2000000000);
    const struct lg_extra *h = lg_extra_find(m, "read_latency", LG_EXTRA_HDR);
    assert_non_null(h);
    assert_int_equal(hdr_count(h->hdr), 150);
    assert_int_equal(hdr_min(h->hdr), 1000);
    assert_int_equal(hdr_max(h->hdr), 3000);
    /* the write and sync operations of another spec are not there */
    assert_null(lg_extra_find(m, "write_ops", LG_EXTRA_COUNTER));
    lg_stats_free(sa);
    lg_stats_free(sb);
    lg_stats_free(m);
    fx_result_free(&a);
    fx_result_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_perm),         cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_verify),       cmocka_unit_test(test_mountinfo),
        cmocka_unit_test(test_result_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
