/* fuzz_vecfile.c — libFuzzer target: any bytes as a vector file (src/vector/files.c).
 * The first byte chooses the type (its low 2 bits: .fvecs, .bvecs, .ivecs, .npy)
 * and a row limit (the next 2 bits: 0 = all, else 1 to 3); the rest is the file.
 * What reads has a sane shape, finite values and ids of -1 or more, every value
 * touched; a TEXMEX file read whole writes back byte for byte, an .npy's rows write
 * and read back as .fvecs unchanged; a failure has a message naming the file. */
#include "util/util.h"
#include "vector/vec.h"

#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dir;

static void cleanup(void)
{
    rm_rf(dir);
}

/* A directory of our own, on tmpfs when there is one (the writers fsync). */
static const char *tmp_dir(void)
{
    if (dir)
        return dir;
    struct stat st;
    dir =
        xstrdup(stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm/sonde-fuzz-vec-XXXXXX"
                                                                  : "/tmp/sonde-fuzz-vec-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    return dir;
}

static void put(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    while (size) {
        ssize_t n = write(fd, data, size);
        if (n <= 0)
            abort();
        data += n;
        size -= (size_t)n;
    }
    close(fd);
}

static void check_fail(int r, const char *err, size_t errlen, const char *path)
{
    if (r >= 0 || !memchr(err, '\0', errlen) || strncmp(err, path, strlen(path)) ||
        strlen(err) < strlen(path) + 3)
        abort();
}

static bool same_file(const char *path, const uint8_t *data, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    bool same = read_file(path, size + 1, &text, &len) == 0 && len == size &&
                (size == 0 || !memcmp(text, data, size));
    free(text);
    return same;
}

static void check_mat(const struct vec_mat *m, size_t max_rows, bool bytes)
{
    if (m->n < 1 || m->dim < 1 || m->dim > 65536 || !m->data || (max_rows && m->n > max_rows))
        abort();
    for (size_t i = 0; i < m->n * m->dim; i++)
        if (!isfinite(m->data[i]) ||
            (bytes && (m->data[i] < 0 || m->data[i] > 255 || m->data[i] != floorf(m->data[i]))))
            abort();
}

static void check_ids(const struct vec_nbrs *t, size_t max_rows)
{
    if (t->nq < 1 || t->k < 1 || t->k > 65536 || !t->ids || t->dist ||
        (max_rows && t->nq > max_rows))
        abort();
    for (size_t i = 0; i < t->nq * t->k; i++)
        if (t->ids[i] < -1)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const char *const exts[] = {"fvecs", "bvecs", "ivecs", "npy"};
    int type = data[0] & 3;
    size_t max_rows = (data[0] >> 2) & 3;
    char *path = xasprintf("%s/in.%s", tmp_dir(), exts[type]);
    char *out = xasprintf("%s/out.fvecs", tmp_dir());
    put(path, data + 1, size - 1);
    char err[512];

    if (type != 2) {
        struct vec_mat m, back;
        int r = vec_file_read(path, max_rows, &m, err, sizeof(err));
        if (r < 0)
            check_fail(r, err, sizeof(err), path);
        else {
            check_mat(&m, max_rows, type == 1);
            /* only an .npy is mapped, and its rows lie inside the map */
            if (m.map && (type != 3 || (char *)m.data < (char *)m.map ||
                          (char *)(m.data + m.n * m.dim) > (char *)m.map + m.map_len))
                abort();
            if (vec_fvecs_write(out, &m, err, sizeof(err)) < 0)
                abort();
            if (type == 0 && !max_rows && !same_file(out, data + 1, size - 1))
                abort();
            if (vec_file_read(out, 0, &back, err, sizeof(err)) < 0 || back.n != m.n ||
                back.dim != m.dim || memcmp(back.data, m.data, m.n * m.dim * sizeof(float)))
                abort();
            vec_mat_free(&back);
            vec_mat_free(&m);
        }
    }
    if (type >= 2) {
        struct vec_nbrs t, back;
        int r = vec_ids_read(path, max_rows, &t, err, sizeof(err));
        if (r < 0)
            check_fail(r, err, sizeof(err), path);
        else {
            check_ids(&t, max_rows);
            bool fits = true;
            for (size_t i = 0; i < t.nq * t.k; i++)
                fits = fits && t.ids[i] <= INT32_MAX;
            if (fits) {
                char *iout = xasprintf("%s/out.ivecs", tmp_dir());
                if (vec_ivecs_write(iout, &t, err, sizeof(err)) < 0)
                    abort();
                if (type == 2 && !max_rows && !same_file(iout, data + 1, size - 1))
                    abort();
                if (vec_ids_read(iout, 0, &back, err, sizeof(err)) < 0 || back.nq != t.nq ||
                    back.k != t.k || memcmp(back.ids, t.ids, t.nq * t.k * sizeof(int64_t)))
                    abort();
                vec_nbrs_free(&back);
                free(iout);
            }
            vec_nbrs_free(&t);
        }
    }
    free(path);
    free(out);
    return 0;
}
