/* util.c — allocation, string vectors, bounded buffers, time and file helpers. */
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(void)
{
    static const char msg[] = "sonde: out of memory\n";
    ssize_t r = write(2, msg, sizeof(msg) - 1);
    (void)r;
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom();
    return q;
}

char *xstrdup(const char *s)
{
    return s ? xstrndup(s, strlen(s)) : NULL;
}

char *xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    if (!p)
        oom();
    return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        oom();
    return s;
}

uint64_t hash_fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}

size_t strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

char **strv_dup(char *const *v)
{
    if (!v)
        return NULL;
    size_t n = strv_len(v);
    char **r = xcalloc(n + 1, sizeof(*r));
    for (size_t i = 0; i < n; i++)
        r[i] = xstrdup(v[i]);
    return r;
}

void strv_push(char ***v, const char *s)
{
    size_t n = strv_len(*v);
    *v = xrealloc(*v, (n + 2) * sizeof(**v));
    (*v)[n] = xstrdup(s);
    (*v)[n + 1] = NULL;
}

void strv_pushf(char ***v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    size_t n = strv_len(*v);
    *v = xrealloc(*v, (n + 2) * sizeof(**v));
    (*v)[n] = s;
    (*v)[n + 1] = NULL;
}

void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* Room for n more bytes and the NUL: 0, or -ENOSPC past the buffer's maximum. */
static int sbuf_reserve(struct sbuf *b, size_t n)
{
    size_t max = b->max ? b->max : SBUF_DEFAULT_MAX;
    if (b->len + n + 1 > max || b->len + n < b->len)
        return -ENOSPC;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > max)
            cap = max;
        b->s = xrealloc(b->s, cap);
        b->cap = cap;
    }
    return 0;
}

int sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    int r = sbuf_reserve(b, n);
    if (r < 0)
        return r;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

int sbuf_puts(struct sbuf *b, const char *s)
{
    return sbuf_add(b, s, strlen(s));
}

/* Formats straight into the spare room; grows and formats again when it did not fit. */
int sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->s + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= room) {
        int r = sbuf_reserve(b, (size_t)n);
        if (r < 0) {
            if (b->s)
                b->s[b->len] = '\0'; /* what a cut-short attempt wrote is not kept */
            return r;
        }
        va_start(ap, fmt);
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

char *sbuf_steal(struct sbuf *b)
{
    char *s = b->s ? b->s : xstrdup("");
    size_t max = b->max;
    *b = (struct sbuf){.max = max};
    return s;
}

void sbuf_free(struct sbuf *b)
{
    if (!b)
        return;
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

/* Optimal string alignment distance: insertions, deletions, substitutions and
 * transpositions of neighbours ("rnu" is one step from "run"). */
size_t str_distance(const char *a, const char *b, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if ((la > lb ? la - lb : lb - la) > cap || la > 256 || lb > 256)
        return cap + 1;
    size_t rows[3][257];
    size_t *pp = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            size_t best = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                pp[j - 2] + 1 < best)
                best = pp[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb] > cap ? cap + 1 : prev[lb];
}

const char *str_suggest(const char *word, const char *const *candidates)
{
    size_t limit = strlen(word) / 3;
    if (limit < 1)
        limit = 1;
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (size_t i = 0; candidates && candidates[i]; i++) {
        size_t d = str_distance(word, candidates[i], limit);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    return best;
}

bool str_startswith(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_endswith(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int64_t wall_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

char *iso8601(int64_t wall)
{
    time_t secs = (time_t)(wall / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[64];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    return xasprintf("%s.%03dZ", buf, (int)((wall % 1000000000) / 1000000));
}

void sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int mkdir_p(const char *path, unsigned mode)
{
    char *p = xstrdup(path);
    int r = 0;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST) {
            r = -errno;
            goto out;
        }
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        r = -errno;
out:
    free(p);
    return r;
}

int read_file(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct sbuf b = {.max = max + 2};
    char chunk[65536];
    int r = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            goto out;
        }
        if (n == 0)
            break;
        if (sbuf_add(&b, chunk, (size_t)n) < 0 || b.len > max) {
            r = -EFBIG;
            goto out;
        }
    }
    if (len)
        *len = b.len;
    *out = sbuf_steal(&b);
out:
    sbuf_free(&b);
    close(fd);
    return r;
}

int afile_open(struct afile *f, const char *path)
{
    f->path = xstrdup(path);
    f->tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    f->rc = 0;
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int r = -errno;
        free(f->path);
        free(f->tmp);
        f->path = f->tmp = NULL;
        return r;
    }
    return 0;
}

void afile_write(struct afile *f, const void *data, size_t len)
{
    const char *p = data;
    size_t off = 0;
    while (f->rc == 0 && off < len) {
        ssize_t n = write(f->fd, p + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            f->rc = -errno;
        else
            off += (size_t)n;
    }
}

int afile_commit(struct afile *f)
{
    int r = f->rc;
    if (r == 0 && fsync(f->fd) < 0)
        r = -errno;
    if (close(f->fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(f->tmp, f->path) < 0)
        r = -errno;
    if (r < 0)
        unlink(f->tmp);
    free(f->path);
    free(f->tmp);
    f->path = f->tmp = NULL;
    f->fd = -1;
    return r;
}

int write_file_atomic(const char *path, const char *data, size_t len)
{
    struct afile f;
    int r = afile_open(&f, path);
    if (r < 0)
        return r;
    afile_write(&f, data, len);
    return afile_commit(&f);
}

char *path_join(const char *a, const char *b)
{
    if (!a || !*a || b[0] == '/')
        return xstrdup(b);
    size_t la = strlen(a);
    return xasprintf("%s%s%s", a, a[la - 1] == '/' ? "" : "/", b);
}

int rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) < 0 ? -errno : 0;
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    int r = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *sub = path_join(path, e->d_name);
        int q = rm_rf(sub);
        free(sub);
        if (q < 0 && r == 0)
            r = q;
    }
    closedir(d);
    if (rmdir(path) < 0 && r == 0)
        r = -errno;
    return r;
}

void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < mdlen && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = '\0';
}

char *self_exe(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0)
        return xstrdup("sonde");
    buf[n] = '\0';
    return xstrdup(buf);
}

void str_last_line(const char *text, size_t len, char *buf, size_t n)
{
    if (!n)
        return;
    buf[0] = '\0';
    if (!text)
        return;
    size_t e = len;
    while (e && (text[e - 1] == '\n' || text[e - 1] == '\r' || text[e - 1] == ' '))
        e--;
    size_t s = e;
    while (s && text[s - 1] != '\n')
        s--;
    size_t k = e - s < n - 1 ? e - s : n - 1;
    memcpy(buf, text + s, k);
    buf[k] = '\0';
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
}

char *num_exact(double v)
{
    for (int prec = 15; prec < 17; prec++) {
        char *s = xasprintf("%.*g", prec, v);
        if (strtod(s, NULL) == v || isnan(v))
            return s;
        free(s);
    }
    return xasprintf("%.17g", v);
}
