/* files.c — vector files (vec.h): TEXMEX .fvecs/.bvecs/.ivecs and NumPy .npy read
 * and checked, ann-benchmarks .hdf5 read through libhdf5, .fvecs/.ivecs written.
 *
 * TEXMEX: every row is a little-endian int32 dimension, then that many values
 * (float32, uint8 or int32); all rows of a file have the same dimension.
 * .npy: "\x93NUMPY", a version byte pair (1.0, 2.0 or 3.0), the header's length
 * (uint16 in 1.0, uint32 later), a Python dict literal with 'descr',
 * 'fortran_order' and 'shape', then the array, C order. Rows in messages are
 * numbered from 0, like ids. */
#include "vector/vec.h"

#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIM_MAX   65536
#define NPY_NDIMS 8 /* more than any shape we take: counted, not kept */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_LE 1
#else
#define HOST_LE 0
#endif

void vec_mat_free(struct vec_mat *m)
{
    if (!m)
        return;
    if (m->map)
        munmap(m->map, m->map_len);
    else
        free(m->data);
    memset(m, 0, sizeof(*m));
}

void vec_nbrs_free(struct vec_nbrs *t)
{
    if (!t)
        return;
    free(t->ids);
    free(t->dist);
    memset(t, 0, sizeof(*t));
}

/* ---- helpers ------------------------------------------------------------------------------ */

static int fail(char *err, size_t errlen, int rc, const char *path, const char *fmt, ...)
    SONDE_PRINTF(5, 6);
static int fail(char *err, size_t errlen, int rc, const char *path, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        int k = snprintf(err, errlen, "%s: ", path);
        va_start(ap, fmt);
        if (k >= 0 && (size_t)k < errlen)
            vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* n little-endian float32 from src (any alignment) into dst. */
static void copy_f32(float *dst, const unsigned char *src, size_t n)
{
#if HOST_LE
    memcpy(dst, src, n * sizeof(float));
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t u = le32(src + 4 * i);
        memcpy(&dst[i], &u, sizeof(float));
    }
#endif
}

/* The index of the first NaN or infinity in v[0..n), n when there is none. */
static size_t first_nonfinite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return i;
    return n;
}

static const char *nonfinite_word(float v)
{
    return isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
}

/* a * b * c into *out; false when it does not fit a size_t. */
static bool mul3(uint64_t a, uint64_t b, uint64_t c, size_t *out)
{
    uint64_t ab, abc;
    if (__builtin_mul_overflow(a, b, &ab) || __builtin_mul_overflow(ab, c, &abc) || abc > SIZE_MAX)
        return false;
    *out = (size_t)abc;
    return true;
}

/* The extension of path ("fvecs"), "" when none. */
static const char *extension(const char *path)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot + 1 : "";
}

/* ---- a mapped input file ------------------------------------------------------------------- */

struct rd {
    const char *path;
    char *err;
    size_t errlen;
    const unsigned char *p; /* the whole file, mapped read-only */
    size_t size;
};

static int rd_fail(const struct rd *r, int rc, const char *fmt, ...) SONDE_PRINTF(3, 4);
static int rd_fail(const struct rd *r, int rc, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fail(r->err, r->errlen, rc, r->path, "%s", msg);
}

/* Maps r->path read-only. Anything but a non-empty regular file is refused. (A file
 * truncated by someone else while it is mapped would fault: not guarded.) */
static int rd_open(struct rd *r)
{
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return rd_fail(r, -e, "cannot open: %s", strerror(e));
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        rc = rd_fail(r, -e, "cannot stat: %s", strerror(e));
    } else if (!S_ISREG(st.st_mode))
        rc = rd_fail(r, -EINVAL, "not a regular file");
    else if (st.st_size == 0)
        rc = rd_fail(r, -EINVAL, "empty file");
    else if ((uintmax_t)st.st_size > SIZE_MAX)
        rc = rd_fail(r, -EFBIG, "too large to map (%jd bytes)", (intmax_t)st.st_size);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    r->size = (size_t)st.st_size;
    void *m = mmap(NULL, r->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED)
        return rd_fail(r, -e, "cannot map %zu bytes: %s", r->size, strerror(e));
    r->p = m;
    return 0;
}

static void rd_close(struct rd *r)
{
    if (r->p)
        munmap((void *)r->p, r->size);
    r->p = NULL;
}

/* malloc for sizes a file asks for: a message instead of aborting when there is
 * not that much memory. */
static void *rd_alloc(const struct rd *r, size_t n, int *rc)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        *rc = rd_fail(r, -ENOMEM, "cannot allocate %zu bytes for its contents", n);
    return p;
}

/* ---- TEXMEX .fvecs / .bvecs / .ivecs --------------------------------------------------------- */

/* Walks the row headers of a TEXMEX file of elem-byte values: *dim from row 0,
 * the same in every row read (the first max_rows when max_rows > 0), and the file
 * a whole number of rows. */
static int texmex_shape(const struct rd *r, size_t elem, size_t max_rows, size_t *n, size_t *dim)
{
    if (r->size < 4)
        return rd_fail(r, -EINVAL, "truncated: %zu bytes, less than the 4-byte dimension of a row",
                       r->size);
    int32_t d = (int32_t)le32(r->p);
    if (d < 1 || d > DIM_MAX)
        return rd_fail(r, -EINVAL, "row 0 says dimension %" PRId32 " (expected 1 to %d)", d,
                       DIM_MAX);
    size_t row = 4 + (size_t)d * elem, rows = 0, off = 0;
    while (off < r->size && (!max_rows || rows < max_rows)) {
        if (r->size - off < 4)
            return rd_fail(r, -EINVAL,
                           "truncated: row %zu has %zu of its 4 dimension bytes (the file ends "
                           "at byte %zu)",
                           rows, r->size - off, r->size);
        int32_t di = (int32_t)le32(r->p + off);
        if (di != d)
            return rd_fail(r, -EINVAL, "row %zu says dimension %" PRId32 ", row 0 says %" PRId32,
                           rows, di, d);
        if (r->size - off < row)
            return rd_fail(r, -EINVAL,
                           "truncated: row %zu has %zu of its %zu bytes (dimension %" PRId32
                           " of %zu-byte values)",
                           rows, r->size - off, row, d, elem);
        off += row;
        rows++;
    }
    if (r->size % row)
        return rd_fail(r, -EINVAL,
                       "%zu bytes is not a whole number of rows of dimension %" PRId32
                       " (%zu bytes each): truncated, or rows of another dimension later",
                       r->size, d, row);
    *n = rows;
    *dim = (size_t)d;
    return 0;
}

/* .fvecs (elem 4: float32, checked finite) or .bvecs (elem 1: uint8) rows as floats. */
static int texmex_floats(struct rd *r, size_t elem, size_t max_rows, struct vec_mat *out)
{
    size_t n, d, bytes;
    int rc = texmex_shape(r, elem, max_rows, &n, &d);
    if (rc < 0)
        return rc;
    if (!mul3(n, d, sizeof(float), &bytes))
        return rd_fail(r, -EFBIG, "%zu rows of dimension %zu are too many", n, d);
    float *data = rd_alloc(r, bytes, &rc);
    if (!data)
        return rc;
    for (size_t i = 0; i < n; i++) {
        float *row = data + i * d;
        const unsigned char *src = r->p + i * (4 + elem * d) + 4;
        if (elem == 1) {
            for (size_t j = 0; j < d; j++)
                row[j] = (float)src[j];
            continue;
        }
        copy_f32(row, src, d);
        size_t j = first_nonfinite(row, d);
        if (j < d) {
            rc = rd_fail(r, -EINVAL, "row %zu has %s at column %zu", i, nonfinite_word(row[j]), j);
            free(data);
            return rc;
        }
    }
    *out = (struct vec_mat){.n = n, .dim = d, .data = data};
    return 0;
}

static int ivecs_read(struct rd *r, size_t max_rows, struct vec_nbrs *out)
{
    size_t n, k, bytes;
    int rc = texmex_shape(r, 4, max_rows, &n, &k);
    if (rc < 0)
        return rc;
    if (!mul3(n, k, sizeof(int64_t), &bytes))
        return rd_fail(r, -EFBIG, "%zu rows of %zu ids are too many", n, k);
    int64_t *ids = rd_alloc(r, bytes, &rc);
    if (!ids)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *src = r->p + i * (4 + 4 * k) + 4;
        for (size_t j = 0; j < k; j++) {
            int32_t v = (int32_t)le32(src + 4 * j);
            if (v < -1) {
                rc = rd_fail(r, -EINVAL,
                             "row %zu has id %" PRId32 " at column %zu (ids are -1 or more)", i, v,
                             j);
                free(ids);
                return rc;
            }
            ids[i * k + j] = v;
        }
    }
    *out = (struct vec_nbrs){.nq = n, .k = k, .ids = ids};
    return 0;
}

/* ---- NumPy .npy ------------------------------------------------------------------------------ */

struct npy {
    char descr[16];
    bool fortran;
    int ndim;                  /* entries of the shape tuple */
    uint64_t shape[NPY_NDIMS]; /* the first NPY_NDIMS of them */
    size_t off;                /* where the data starts */
};

struct cur {
    const char *s, *end, *start;
};

static void cur_ws(struct cur *c)
{
    while (c->s < c->end && (*c->s == ' ' || *c->s == '\t' || *c->s == '\n' || *c->s == '\r'))
        c->s++;
}

static bool cur_eat(struct cur *c, char ch)
{
    cur_ws(c);
    if (c->s < c->end && *c->s == ch) {
        c->s++;
        return true;
    }
    return false;
}

/* A quoted string of printable characters other than quotes and backslashes
 * (all that a key or a simple dtype holds) into out[n]. */
static bool cur_str(struct cur *c, char *out, size_t n)
{
    cur_ws(c);
    if (c->s >= c->end || (*c->s != '\'' && *c->s != '"'))
        return false;
    char q = *c->s++;
    size_t len = 0;
    while (c->s < c->end && *c->s != q) {
        unsigned char ch = (unsigned char)*c->s;
        if (ch < 0x20 || ch > 0x7e || ch == '\\' || ch == '\'' || ch == '"' || len + 1 >= n)
            return false;
        out[len++] = (char)ch;
        c->s++;
    }
    if (c->s >= c->end)
        return false;
    c->s++;
    out[len] = '\0';
    return true;
}

static bool cur_word(struct cur *c, const char *w)
{
    cur_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->s) < n || memcmp(c->s, w, n) ||
        (c->s + n < c->end && (isalnum((unsigned char)c->s[n]) || c->s[n] == '_')))
        return false;
    c->s += n;
    return true;
}

/* A non-negative integer (Python 2's 'L' suffix allowed); false on overflow. */
static bool cur_uint(struct cur *c, uint64_t *v)
{
    cur_ws(c);
    if (c->s >= c->end || !isdigit((unsigned char)*c->s))
        return false;
    uint64_t x = 0;
    while (c->s < c->end && isdigit((unsigned char)*c->s)) {
        if (__builtin_mul_overflow(x, 10, &x) ||
            __builtin_add_overflow(x, (uint64_t)(*c->s - '0'), &x))
            return false;
        c->s++;
    }
    if (c->s < c->end && *c->s == 'L')
        c->s++;
    *v = x;
    return true;
}

static int npy_bad(const struct rd *r, const struct cur *c, const char *what)
{
    return rd_fail(r, -EINVAL, "malformed .npy header: %s at byte %zu of it", what,
                   (size_t)(c->s - c->start));
}

static int npy_shape(const struct rd *r, struct cur *c, struct npy *h)
{
    if (!cur_eat(c, '('))
        return npy_bad(r, c, "expected a shape tuple '('");
    if (cur_eat(c, ')'))
        return 0;
    for (;;) {
        uint64_t v;
        if (!cur_uint(c, &v))
            return npy_bad(r, c, "expected a dimension (a non-negative integer below 2^64)");
        if (h->ndim < NPY_NDIMS)
            h->shape[h->ndim] = v;
        if (h->ndim < INT32_MAX)
            h->ndim++;
        if (cur_eat(c, ',')) {
            if (cur_eat(c, ')'))
                return 0;
        } else if (cur_eat(c, ')'))
            return 0;
        else
            return npy_bad(r, c, "expected ',' or ')' in the shape");
    }
}

/* Parses the preamble and header of the .npy file in r. */
static int npy_header(const struct rd *r, struct npy *h)
{
    memset(h, 0, sizeof(*h));
    static const unsigned char magic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    if (r->size < 8 || memcmp(r->p, magic, 6))
        return rd_fail(r, -EINVAL, "%s",
                       r->size < 8 && !memcmp(r->p, magic, r->size < 6 ? r->size : 6)
                           ? "truncated: the .npy preamble is cut short"
                           : "not a .npy file (no \\x93NUMPY magic)");
    unsigned major = r->p[6], minor = r->p[7];
    size_t hstart = major == 1 ? 10 : 12;
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return rd_fail(r, -EINVAL, ".npy format version %u.%u is not supported (1.0, 2.0, 3.0)",
                       major, minor);
    if (r->size < hstart)
        return rd_fail(r, -EINVAL, "truncated: the .npy preamble is cut short");
    size_t hlen = major == 1 ? (size_t)(r->p[8] | r->p[9] << 8) : (size_t)le32(r->p + 8);
    if (hlen > r->size - hstart)
        return rd_fail(r, -EINVAL,
                       "truncated: the .npy header says %zu bytes, the file has %zu after "
                       "the preamble",
                       hlen, r->size - hstart);
    struct cur c = {(const char *)r->p + hstart, (const char *)r->p + hstart + hlen,
                    (const char *)r->p + hstart};
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    if (!cur_eat(&c, '{'))
        return npy_bad(r, &c, "expected '{'");
    while (!cur_eat(&c, '}')) {
        char key[32];
        if (!cur_str(&c, key, sizeof(key)))
            return npy_bad(r, &c, "expected a quoted key");
        if (!cur_eat(&c, ':'))
            return npy_bad(r, &c, "expected ':' after a key");
        if (!strcmp(key, "descr") && !seen_descr) {
            seen_descr = true;
            cur_ws(&c);
            if (c.s < c.end && *c.s == '[')
                return rd_fail(r, -EINVAL,
                               "a structured dtype (a list of fields) is not supported: "
                               "save a plain 2-D array");
            if (!cur_str(&c, h->descr, sizeof(h->descr)))
                return npy_bad(r, &c, "expected a dtype string for 'descr'");
        } else if (!strcmp(key, "fortran_order") && !seen_fortran) {
            seen_fortran = true;
            if (cur_word(&c, "True"))
                h->fortran = true;
            else if (!cur_word(&c, "False"))
                return npy_bad(r, &c, "expected True or False for 'fortran_order'");
        } else if (!strcmp(key, "shape") && !seen_shape) {
            seen_shape = true;
            int rc = npy_shape(r, &c, h);
            if (rc < 0)
                return rc;
        } else
            return rd_fail(r, -EINVAL, "malformed .npy header: %s key '%s'",
                           strcmp(key, "descr") && strcmp(key, "fortran_order") &&
                                   strcmp(key, "shape")
                               ? "unknown"
                               : "repeated",
                           key);
        if (!cur_eat(&c, ',')) {
            if (cur_eat(&c, '}'))
                break;
            return npy_bad(r, &c, "expected ',' or '}'");
        }
    }
    cur_ws(&c);
    if (c.s != c.end)
        return npy_bad(r, &c, "text after the closing '}'");
    if (!seen_descr || !seen_fortran || !seen_shape)
        return rd_fail(r, -EINVAL, "malformed .npy header: no '%s'",
                       !seen_descr     ? "descr"
                       : !seen_fortran ? "fortran_order"
                                       : "shape");
    h->off = hstart + hlen;
    return 0;
}

/* The checks both readers make of a header: 2-D, C order, rows and columns in
 * range, and the data exactly as long as the shape says for elem-byte values. */
static int npy_check(const struct rd *r, const struct npy *h, size_t elem, size_t *rows,
                     size_t *cols)
{
    if (h->fortran)
        return rd_fail(r, -EINVAL,
                       "fortran_order is True (column-major): save a C-order array "
                       "(numpy.ascontiguousarray)");
    if (h->ndim != 2)
        return rd_fail(r, -EINVAL, "the array has %d dimension%s; expected 2 (rows, columns)",
                       h->ndim, h->ndim == 1 ? "" : "s");
    if (h->shape[0] == 0)
        return rd_fail(r, -EINVAL, "no rows (shape (0, %" PRIu64 "))", h->shape[1]);
    if (h->shape[1] < 1 || h->shape[1] > DIM_MAX)
        return rd_fail(r, -EINVAL, "rows of %" PRIu64 " values (expected 1 to %d)", h->shape[1],
                       DIM_MAX);
    size_t need;
    if (!mul3(h->shape[0], h->shape[1], elem, &need) || need != r->size - h->off)
        return rd_fail(r, -EINVAL,
                       "shape (%" PRIu64 ", %" PRIu64 ") of '%s' does not match the %zu bytes of "
                       "data in the file%s",
                       h->shape[0], h->shape[1], h->descr, r->size - h->off,
                       mul3(h->shape[0], h->shape[1], elem, &need) && need > r->size - h->off
                           ? " (truncated?)"
                           : "");
    *rows = (size_t)h->shape[0];
    *cols = (size_t)h->shape[1];
    return 0;
}

static int npy_dtype_fail(const struct rd *r, const struct npy *h, const char *want)
{
    const char *d = h->descr;
    if (d[0] == '>' && strlen(d) > 1)
        return rd_fail(r, -EINVAL,
                       "dtype '%s' is big-endian; only %s is read (save it with "
                       "astype('<%s'))",
                       d, want, d + 1);
    return rd_fail(r, -EINVAL, "dtype '%s' is not supported; only %s is read", d, want);
}

/* rows kept: all, or the first max_rows */
static size_t keep_rows(size_t rows, size_t max_rows)
{
    return max_rows && max_rows < rows ? max_rows : rows;
}

static int npy_vectors(struct rd *r, size_t max_rows, struct vec_mat *out)
{
    struct npy h;
    size_t rows, d;
    int rc = npy_header(r, &h);
    if (rc < 0)
        return rc;
    if (strcmp(h.descr, "<f4"))
        return npy_dtype_fail(r, &h, "'<f4' (little-endian float32)");
    if ((rc = npy_check(r, &h, sizeof(float), &rows, &d)) < 0)
        return rc;
    size_t n = keep_rows(rows, max_rows), count = n * d;
    const unsigned char *src = r->p + h.off;
    float *data;
    if (HOST_LE && h.off % _Alignof(float) == 0)
        data = (float *)(uintptr_t)src; /* the map is page-aligned */
    else if (!(data = rd_alloc(r, count * sizeof(float), &rc)))
        return rc;
    else
        copy_f32(data, src, count);
    size_t bad = first_nonfinite(data, count);
    if (bad < count) {
        rc = rd_fail(r, -EINVAL, "row %zu has %s at column %zu", bad / d, nonfinite_word(data[bad]),
                     bad % d);
        if ((const unsigned char *)data != src)
            free(data);
        return rc;
    }
    *out = (struct vec_mat){.n = n, .dim = d, .data = data};
    if ((const unsigned char *)data == src) {
        out->map = (void *)r->p;
        out->map_len = r->size;
        r->p = NULL; /* the matrix owns the map now */
    }
    return 0;
}

static int npy_ids(struct rd *r, size_t max_rows, struct vec_nbrs *out)
{
    struct npy h;
    size_t rows, k, bytes;
    int rc = npy_header(r, &h);
    if (rc < 0)
        return rc;
    size_t elem = !strcmp(h.descr, "<i4") ? 4 : !strcmp(h.descr, "<i8") ? 8 : 0;
    if (!elem)
        return npy_dtype_fail(r, &h, "'<i4' or '<i8' (little-endian int32 or int64)");
    if ((rc = npy_check(r, &h, elem, &rows, &k)) < 0)
        return rc;
    size_t n = keep_rows(rows, max_rows);
    if (!mul3(n, k, sizeof(int64_t), &bytes))
        return rd_fail(r, -EFBIG, "%zu rows of %zu ids are too many", n, k);
    int64_t *ids = rd_alloc(r, bytes, &rc);
    if (!ids)
        return rc;
    const unsigned char *src = r->p + h.off;
    for (size_t i = 0; i < n * k; i++) {
        int64_t v = elem == 4 ? (int64_t)(int32_t)le32(src + 4 * i) : (int64_t)le64(src + 8 * i);
        if (v < -1) {
            rc =
                rd_fail(r, -EINVAL, "row %zu has id %" PRId64 " at column %zu (ids are -1 or more)",
                        i / k, v, i % k);
            free(ids);
            return rc;
        }
        ids[i] = v;
    }
    *out = (struct vec_nbrs){.nq = n, .k = k, .ids = ids};
    return 0;
}

/* ---- the readers ------------------------------------------------------------------------------
 */

int vec_file_read(const char *path, size_t max_rows, struct vec_mat *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *ext = extension(path);
    int kind = !strcasecmp(ext, "fvecs")   ? 1
               : !strcasecmp(ext, "bvecs") ? 2
               : !strcasecmp(ext, "npy")   ? 3
                                           : 0;
    if (!kind)
        return fail(err, errlen, -EINVAL, path,
                    "unknown type of vector file; supported: .fvecs, .bvecs, .npy");
    struct rd r = {.path = path, .err = err, .errlen = errlen};
    int rc = rd_open(&r);
    if (rc < 0)
        return rc;
    if (kind != 3)
        madvise((void *)r.p, r.size, MADV_SEQUENTIAL);
    rc = kind == 1   ? texmex_floats(&r, 4, max_rows, out)
         : kind == 2 ? texmex_floats(&r, 1, max_rows, out)
                     : npy_vectors(&r, max_rows, out);
    rd_close(&r);
    return rc;
}

int vec_ids_read(const char *path, size_t max_rows, struct vec_nbrs *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *ext = extension(path);
    bool ivecs = !strcasecmp(ext, "ivecs");
    if (!ivecs && strcasecmp(ext, "npy"))
        return fail(err, errlen, -EINVAL, path,
                    "unknown type of neighbour file; supported: .ivecs, .npy");
    struct rd r = {.path = path, .err = err, .errlen = errlen};
    int rc = rd_open(&r);
    if (rc < 0)
        return rc;
    rc = ivecs ? ivecs_read(&r, max_rows, out) : npy_ids(&r, max_rows, out);
    rd_close(&r);
    return rc;
}

/* ---- ann-benchmarks .hdf5
 * ------------------------------------------------------------------------ */

struct h5 {
    const char *path;
    char *err;
    size_t errlen;
    hid_t file;
};

struct h5_walk_msg {
    char inner[200]; /* the most specific description on the error stack */
};

static herr_t h5_walk(unsigned n, const H5E_error2_t *e, void *data)
{
    struct h5_walk_msg *m = data;
    if (n == 0 && e && e->desc)
        snprintf(m->inner, sizeof(m->inner), "%s", e->desc);
    return 0;
}

/* A message of our own, with what libhdf5's error stack says appended (when it
 * says anything); the stack is cleared. */
static int h5_fail(const struct h5 *h, int rc, const char *fmt, ...) SONDE_PRINTF(3, 4);
static int h5_fail(const struct h5 *h, int rc, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct h5_walk_msg w = {""};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk, &w);
    H5Eclear2(H5E_DEFAULT);
    for (char *s = w.inner; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
    if (w.inner[0])
        return fail(h->err, h->errlen, rc, h->path, "%s (HDF5: %s)", msg, w.inner);
    return fail(h->err, h->errlen, rc, h->path, "%s", msg);
}

static const char *h5_class_word(H5T_class_t c)
{
    switch (c) {
    case H5T_INTEGER:
        return "integer";
    case H5T_FLOAT:
        return "floating-point";
    case H5T_STRING:
        return "string";
    case H5T_COMPOUND:
        return "compound";
    default:
        return "other";
    }
}

/* The 2-D dataset `name`, of class cls, read as mem_type (elem bytes a value)
 * into a new buffer. -ENOENT without a message when there is no such dataset. */
static int h5_matrix(const struct h5 *h, const char *name, H5T_class_t cls, hid_t mem_type,
                     size_t elem, void **data, size_t *rows, size_t *cols)
{
    *data = NULL;
    htri_t ex = H5Lexists(h->file, name, H5P_DEFAULT);
    if (ex < 0)
        return h5_fail(h, -EINVAL, "cannot look up '%s'", name);
    if (ex == 0) {
        H5Eclear2(H5E_DEFAULT);
        return -ENOENT;
    }
    hid_t ds = H5Dopen2(h->file, name, H5P_DEFAULT);
    if (ds < 0)
        return h5_fail(h, -EINVAL, "'%s' is not a readable dataset", name);
    hid_t sp = H5Dget_space(ds), ty = H5Dget_type(ds);
    int rc = 0;
    hsize_t dims[2] = {0, 0};
    int nd = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    H5T_class_t c = ty < 0 ? H5T_NO_CLASS : H5Tget_class(ty);
    size_t bytes = 0;
    if (sp < 0 || ty < 0 || nd < 0)
        rc = h5_fail(h, -EINVAL, "cannot read the shape and type of '%s'", name);
    else if (nd != 2)
        rc = h5_fail(h, -EINVAL, "'%s' has %d dimension%s; expected 2 (rows, columns)", name, nd,
                     nd == 1 ? "" : "s");
    else if (H5Sget_simple_extent_dims(sp, dims, NULL) < 0)
        rc = h5_fail(h, -EINVAL, "cannot read the shape of '%s'", name);
    else if (c != cls)
        rc = h5_fail(h, -EINVAL, "'%s' holds %s values; expected %s ones", name, h5_class_word(c),
                     h5_class_word(cls));
    else if (dims[0] == 0)
        rc = h5_fail(h, -EINVAL, "'%s' has no rows", name);
    else if (dims[1] < 1 || dims[1] > DIM_MAX)
        rc = h5_fail(h, -EINVAL, "'%s' has rows of %llu values (expected 1 to %d)", name,
                     (unsigned long long)dims[1], DIM_MAX);
    else if (!mul3(dims[0], dims[1], elem, &bytes))
        rc = h5_fail(h, -EFBIG, "'%s' is too large (%llu x %llu)", name,
                     (unsigned long long)dims[0], (unsigned long long)dims[1]);
    else if (!(*data = malloc(bytes)))
        rc = h5_fail(h, -ENOMEM, "cannot allocate %zu bytes for '%s'", bytes, name);
    else if (H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *data) < 0) {
        rc = h5_fail(h, -EINVAL, "cannot read '%s'", name);
        free(*data);
        *data = NULL;
    }
    if (ty >= 0)
        H5Tclose(ty);
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(ds);
    if (rc == 0) {
        *rows = (size_t)dims[0];
        *cols = (size_t)dims[1];
    }
    return rc;
}

/* A float matrix dataset (float32 as is, float64 and others converted by libhdf5),
 * every value finite. */
static int h5_vectors(const struct h5 *h, const char *name, struct vec_mat *m)
{
    void *data;
    size_t n, d;
    int rc = h5_matrix(h, name, H5T_FLOAT, H5T_NATIVE_FLOAT, sizeof(float), &data, &n, &d);
    if (rc == -ENOENT)
        return fail(h->err, h->errlen, -EINVAL, h->path,
                    "no dataset '%s' (an ann-benchmarks file has "
                    "'train' and 'test')",
                    name);
    if (rc < 0)
        return rc;
    size_t bad = first_nonfinite(data, n * d);
    if (bad < n * d) {
        rc = fail(h->err, h->errlen, -EINVAL, h->path, "'%s' row %zu has %s at column %zu", name,
                  bad / d, nonfinite_word(((float *)data)[bad]), bad % d);
        free(data);
        return rc;
    }
    *m = (struct vec_mat){.n = n, .dim = d, .data = data};
    return 0;
}

/* The root group's "distance" attribute (a string, fixed or variable length) into
 * *m; *has false when there is none. */
static int h5_metric(const struct h5 *h, enum vec_metric *m, bool *has)
{
    *has = false;
    htri_t ex = H5Aexists(h->file, "distance");
    if (ex < 0)
        return h5_fail(h, -EINVAL, "cannot look up the attribute 'distance'");
    if (ex == 0)
        return 0;
    hid_t a = H5Aopen(h->file, "distance", H5P_DEFAULT);
    if (a < 0)
        return h5_fail(h, -EINVAL, "cannot open the attribute 'distance'");
    hid_t ty = H5Aget_type(a), sp = H5Aget_space(a), mt = -1;
    char val[64] = "";
    int rc = 0;
    if (ty < 0 || sp < 0)
        rc = h5_fail(h, -EINVAL, "cannot read the type of the attribute 'distance'");
    else if (H5Tget_class(ty) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1)
        rc = h5_fail(h, -EINVAL, "the attribute 'distance' is not a single string");
    else if ((mt = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_cset(mt, H5Tget_cset(ty)) < 0)
        rc = h5_fail(h, -EINVAL, "cannot read the attribute 'distance'");
    else if (H5Tis_variable_str(ty) > 0) {
        char *s = NULL;
        if (H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Aread(a, mt, &s) < 0)
            rc = h5_fail(h, -EINVAL, "cannot read the attribute 'distance'");
        else
            snprintf(val, sizeof(val), "%s", s ? s : "");
        if (s)
            H5free_memory(s);
    } else {
        size_t n = H5Tget_size(ty);
        char *s = n && n < 4096 ? xcalloc(n + 1, 1) : NULL;
        if (!s || H5Tset_size(mt, n + 1) < 0 || H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0 ||
            H5Aread(a, mt, s) < 0)
            rc = h5_fail(h, -EINVAL, "cannot read the attribute 'distance'");
        else
            snprintf(val, sizeof(val), "%s", s);
        free(s);
    }
    if (mt >= 0)
        H5Tclose(mt);
    if (sp >= 0)
        H5Sclose(sp);
    if (ty >= 0)
        H5Tclose(ty);
    H5Aclose(a);
    if (rc < 0)
        return rc;
    size_t len = strlen(val);
    while (len && val[len - 1] == ' ')
        val[--len] = '\0';
    for (char *s = val; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
    if (!strcasecmp(val, "euclidean") || !strcasecmp(val, "l2"))
        *m = VEC_L2;
    else if (!strcasecmp(val, "angular") || !strcasecmp(val, "cosine"))
        *m = VEC_COSINE;
    else if (!strcasecmp(val, "dot") || !strcasecmp(val, "ip") || !strcasecmp(val, "inner_product"))
        *m = VEC_IP;
    else
        return fail(h->err, h->errlen, -EINVAL, h->path,
                    "distance '%s' is not supported (euclidean, angular, dot)", val);
    *has = true;
    return 0;
}

/* ann-benchmarks' distances into the comparable form of vec.h. Its "euclidean" is
 * the plain Euclidean distance (squared here) and its "angular" the cosine
 * distance 1 - cos (-cos here). For "dot", which ann-benchmarks itself does not
 * define, files made by other tools disagree: some store the inner product
 * (largest first), some its negation (smallest first). The rows are nearest
 * first either way, so their order tells: when more rows fall than rise, the
 * values are inner products and are negated; otherwise they are taken as the
 * negated inner product already. */
static void h5_convert_dist(enum vec_metric m, float *d, size_t nq, size_t k)
{
    size_t n = nq * k;
    if (m == VEC_L2) {
        for (size_t i = 0; i < n; i++)
            d[i] *= d[i];
    } else if (m == VEC_COSINE) {
        for (size_t i = 0; i < n; i++)
            d[i] -= 1.0f;
    } else {
        size_t rise = 0, fall = 0;
        for (size_t q = 0; q < nq; q++) {
            rise += d[q * k + k - 1] > d[q * k];
            fall += d[q * k + k - 1] < d[q * k];
        }
        if (fall > rise)
            for (size_t i = 0; i < n; i++)
                d[i] = -d[i];
    }
}

/* "neighbors" (and "distances" when there) into *t, checked against the shapes of
 * train and test. */
static int h5_truth(const struct h5 *h, const struct vec_mat *train, const struct vec_mat *test,
                    bool has_metric, enum vec_metric m, struct vec_nbrs *t)
{
    void *ids = NULL, *dist = NULL;
    size_t nq, k, dq, dk;
    int rc =
        h5_matrix(h, "neighbors", H5T_INTEGER, H5T_NATIVE_INT64, sizeof(int64_t), &ids, &nq, &k);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    if (nq != test->n) {
        rc = fail(h->err, h->errlen, -EINVAL, h->path,
                  "'neighbors' has %zu rows, 'test' has %zu queries", nq, test->n);
        goto bad;
    }
    for (size_t i = 0; i < nq * k; i++) {
        int64_t v = ((int64_t *)ids)[i];
        if (v < -1 || v >= (int64_t)train->n) {
            rc = fail(h->err, h->errlen, -EINVAL, h->path,
                      "'neighbors' row %zu has id %" PRId64 " at column %zu ('train' has %zu rows)",
                      i / k, v, i % k, train->n);
            goto bad;
        }
    }
    rc = h5_matrix(h, "distances", H5T_FLOAT, H5T_NATIVE_FLOAT, sizeof(float), &dist, &dq, &dk);
    if (rc == -ENOENT || (rc == 0 && !has_metric)) {
        /* without the metric their form is unknown: left out */
        free(dist);
        dist = NULL;
        rc = 0;
    } else if (rc < 0)
        goto bad;
    else if (dq != nq || dk != k) {
        rc = fail(h->err, h->errlen, -EINVAL, h->path,
                  "'distances' is %zu x %zu, 'neighbors' %zu x %zu", dq, dk, nq, k);
        goto bad;
    } else {
        size_t bad = first_nonfinite(dist, nq * k);
        if (bad < nq * k) {
            rc = fail(h->err, h->errlen, -EINVAL, h->path,
                      "'distances' row %zu has %s at column %zu", bad / k,
                      nonfinite_word(((float *)dist)[bad]), bad % k);
            goto bad;
        }
        h5_convert_dist(m, dist, nq, k);
    }
    *t = (struct vec_nbrs){.nq = nq, .k = k, .ids = ids, .dist = dist};
    return 0;
bad:
    free(ids);
    free(dist);
    return rc;
}

static int hdf5_read(const char *path, struct vec_mat *train, struct vec_mat *test,
                     struct vec_nbrs *truth, enum vec_metric *metric, bool *has_metric, char *err,
                     size_t errlen);

/* Debian's libhdf5 is not built thread-safe, and its error-printing setting is
 * global: one reader at a time (two clients of one trial may read at once). */
static pthread_mutex_t hdf5_mu = PTHREAD_MUTEX_INITIALIZER;

int vec_hdf5_read(const char *path, struct vec_mat *train, struct vec_mat *test,
                  struct vec_nbrs *truth, enum vec_metric *metric, bool *has_metric, char *err,
                  size_t errlen)
{
    pthread_mutex_lock(&hdf5_mu);
    int r = hdf5_read(path, train, test, truth, metric, has_metric, err, errlen);
    pthread_mutex_unlock(&hdf5_mu);
    return r;
}

static int hdf5_read(const char *path, struct vec_mat *train, struct vec_mat *test,
                     struct vec_nbrs *truth, enum vec_metric *metric, bool *has_metric, char *err,
                     size_t errlen)
{
    memset(train, 0, sizeof(*train));
    memset(test, 0, sizeof(*test));
    memset(truth, 0, sizeof(*truth));
    if (has_metric)
        *has_metric = false;
    /* the system's word on a missing or unreadable file, before libhdf5's */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return fail(err, errlen, -e, path, "cannot open: %s", strerror(e));
    }
    struct stat st;
    bool reg = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    close(fd);
    if (!reg)
        return fail(err, errlen, -EINVAL, path, "not a regular file");

    H5E_auto2_t old_func = NULL;
    void *old_data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages, not libhdf5's printing */
    struct h5 h = {.path = path, .err = err, .errlen = errlen, .file = -1};
    int rc = 0;
    htri_t is = H5Fis_hdf5(path);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
#if (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10 && H5_VERS_RELEASE >= 7) ||                         \
    (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 12 && H5_VERS_RELEASE >= 1) ||                         \
    (H5_VERS_MAJOR == 1 && H5_VERS_MINOR > 12) || H5_VERS_MAJOR > 1
    /* read only: no locks, which shared file systems often refuse */
    if (fapl >= 0)
        H5Pset_file_locking(fapl, false, true);
#endif
    if (is <= 0)
        rc = is == 0 ? fail(err, errlen, -EINVAL, path, "not an HDF5 file")
                     : h5_fail(&h, -EINVAL, "cannot read the file");
    else if ((h.file = H5Fopen(path, H5F_ACC_RDONLY, fapl >= 0 ? fapl : H5P_DEFAULT)) < 0)
        rc = h5_fail(&h, -EINVAL, "cannot open as HDF5");
    if (fapl >= 0)
        H5Pclose(fapl);
    enum vec_metric m = VEC_L2;
    bool has = false;
    if (rc == 0)
        rc = h5_metric(&h, &m, &has);
    if (rc == 0)
        rc = h5_vectors(&h, "train", train);
    if (rc == 0)
        rc = h5_vectors(&h, "test", test);
    if (rc == 0 && train->dim != test->dim)
        rc = fail(err, errlen, -EINVAL, path, "'train' has dimension %zu, 'test' %zu", train->dim,
                  test->dim);
    if (rc == 0)
        rc = h5_truth(&h, train, test, has, m, truth);
    if (h.file >= 0)
        H5Fclose(h.file);
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
    if (rc < 0) {
        vec_mat_free(train);
        vec_mat_free(test);
        vec_nbrs_free(truth);
        return rc;
    }
    if (has && metric)
        *metric = m;
    if (has_metric)
        *has_metric = has;
    return 0;
}

/* ---- writers -----------------------------------------------------------------------------------
 */

struct wr {
    struct afile f;
    const char *path;
    unsigned char buf[1 << 16];
    size_t len;
};

static int wr_open(struct wr *w, const char *path, char *err, size_t errlen)
{
    w->path = path;
    w->len = 0;
    int r = afile_open(&w->f, path);
    return r < 0 ? fail(err, errlen, r, path, "cannot create: %s", strerror(-r)) : 0;
}

static void wr_u32(struct wr *w, uint32_t v)
{
    if (sizeof(w->buf) - w->len < 4) {
        afile_write(&w->f, w->buf, w->len);
        w->len = 0;
    }
    put_le32(w->buf + w->len, v);
    w->len += 4;
}

/* Flushes, syncs and renames into place; on any failure removes the temporary. */
static int wr_close(struct wr *w, char *err, size_t errlen)
{
    afile_write(&w->f, w->buf, w->len);
    int r = afile_commit(&w->f);
    return r < 0 ? fail(err, errlen, r, w->path, "cannot write: %s", strerror(-r)) : 0;
}

int vec_fvecs_write(const char *path, const struct vec_mat *m, char *err, size_t errlen)
{
    if (!m->n || !m->data || m->dim < 1 || m->dim > DIM_MAX)
        return fail(err, errlen, -EINVAL, path, "cannot write %zu rows of dimension %zu as .fvecs",
                    m->n, m->dim);
    struct wr *w = xmalloc(sizeof(*w));
    int rc = wr_open(w, path, err, errlen);
    if (rc < 0) {
        free(w);
        return rc;
    }
    for (size_t i = 0; i < m->n && w->f.rc == 0; i++) {
        wr_u32(w, (uint32_t)m->dim);
        for (size_t j = 0; j < m->dim; j++) {
            uint32_t u;
            memcpy(&u, &m->data[i * m->dim + j], sizeof(u));
            wr_u32(w, u);
        }
    }
    rc = wr_close(w, err, errlen);
    free(w);
    return rc;
}

int vec_ivecs_write(const char *path, const struct vec_nbrs *t, char *err, size_t errlen)
{
    if (!t->nq || !t->ids || t->k < 1 || t->k > DIM_MAX)
        return fail(err, errlen, -EINVAL, path, "cannot write %zu rows of %zu ids as .ivecs", t->nq,
                    t->k);
    for (size_t i = 0; i < t->nq * t->k; i++)
        if (t->ids[i] < -1 || t->ids[i] > INT32_MAX)
            return fail(err, errlen, -EINVAL, path,
                        "id %" PRId64 " (row %zu) does not fit an .ivecs file (int32, -1 or more)",
                        t->ids[i], i / t->k);
    struct wr *w = xmalloc(sizeof(*w));
    int rc = wr_open(w, path, err, errlen);
    if (rc < 0) {
        free(w);
        return rc;
    }
    for (size_t i = 0; i < t->nq && w->f.rc == 0; i++) {
        wr_u32(w, (uint32_t)t->k);
        for (size_t j = 0; j < t->k; j++)
            wr_u32(w, (uint32_t)(int32_t)t->ids[i * t->k + j]);
    }
    rc = wr_close(w, err, errlen);
    free(w);
    return rc;
}
