/* targz.c — a gzip-compressed POSIX ustar archive of a list of regular files. */
#include "util/targz.h"

#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define BLOCK  512
#define RECORD (20 * BLOCK) /* GNU tar's default blocking factor */
#define CHUNK  (64 * 1024)

struct tar_writer {
    gzFile gz;
    unsigned long long written; /* uncompressed bytes */
    char *errbuf;
    size_t errlen;
};

static void errf(struct tar_writer *w, const char *fmt, ...) SONDE_PRINTF(2, 3);
static void errf(struct tar_writer *w, const char *fmt, ...)
{
    if (!w->errbuf || w->errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errbuf, w->errlen, fmt, ap);
    va_end(ap);
}

static int put(struct tar_writer *w, const void *buf, size_t n)
{
    if (n == 0)
        return 0;
    if (gzwrite(w->gz, buf, (unsigned)n) != (int)n) {
        int zerr = 0;
        const char *msg = gzerror(w->gz, &zerr);
        errf(w, "cannot write the archive: %s", zerr == Z_ERRNO ? strerror(errno) : msg);
        return -EIO;
    }
    w->written += n;
    return 0;
}

static int pad_to(struct tar_writer *w, size_t unit)
{
    static const char zeros[RECORD];
    size_t rem = (size_t)(w->written % unit);
    return rem ? put(w, zeros, unit - rem) : 0;
}

/* Writes v in octal into a field of width bytes: width-1 digits and a NUL. */
static void octal(char *field, size_t width, unsigned long long v)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%0*llo", (int)(width - 1), v);
    memcpy(field, tmp, width - 1);
    field[width - 1] = '\0';
}

/* A relative name without "." or ".." components, empty components or a leading '/'. */
static bool name_ok(const char *rel)
{
    if (!*rel || rel[0] == '/')
        return false;
    for (const char *p = rel; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n;
        if (*p == '/' && *++p == '\0')
            return false;
    }
    return true;
}

/* Splits rel into the ustar name (<= 100) and prefix (<= 155) fields. */
static int split_name(const char *rel, char *name, char *prefix)
{
    size_t len = strlen(rel);
    if (len <= 100) {
        memcpy(name, rel, len);
        return 0;
    }
    for (size_t i = 0; i < len && i <= 155; i++) {
        if (rel[i] == '/' && len - i - 1 <= 100) {
            memcpy(prefix, rel, i);
            memcpy(name, rel + i + 1, len - i - 1);
            return 0;
        }
    }
    return -ENAMETOOLONG;
}

static int write_header(struct tar_writer *w, const char *rel, const struct stat *st)
{
    unsigned char h[BLOCK] = {0};
    if (split_name(rel, (char *)h, (char *)h + 345) < 0) {
        errf(w,
             "%s: name too long for a tar archive (ustar allows 100 bytes, or 255 split "
             "at a '/')",
             rel);
        return -ENAMETOOLONG;
    }
    octal((char *)h + 100, 8, st->st_mode & 07777);
    octal((char *)h + 108, 8, st->st_uid <= 07777777 ? st->st_uid : 0);
    octal((char *)h + 116, 8, st->st_gid <= 07777777 ? st->st_gid : 0);
    octal((char *)h + 124, 12, (unsigned long long)st->st_size);
    octal((char *)h + 136, 12, st->st_mtime > 0 ? (unsigned long long)st->st_mtime : 0);
    memset(h + 148, ' ', 8);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    unsigned sum = 0;
    for (size_t i = 0; i < BLOCK; i++)
        sum += h[i];
    char ck[8];
    snprintf(ck, sizeof(ck), "%06o", sum);
    memcpy(h + 148, ck, 7); /* six digits, NUL, and the space already there */
    return put(w, h, BLOCK);
}

static int copy_body(struct tar_writer *w, int fd, const char *rel, off_t size)
{
    char *buf = xmalloc(CHUNK);
    int r = 0;
    for (off_t left = size; left > 0;) {
        ssize_t n = read(fd, buf, left < CHUNK ? (size_t)left : CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -errno : -EIO;
            errf(w, "%s: %s", rel, n < 0 ? strerror(errno) : "file shrank while being archived");
            goto out;
        }
        if ((r = put(w, buf, (size_t)n)) < 0)
            goto out;
        left -= n;
    }
    r = pad_to(w, BLOCK);
out:
    free(buf);
    return r;
}

static int add_file(struct tar_writer *w, int dirfd, const char *rel)
{
    if (!name_ok(rel)) {
        errf(w, "%s: not a plain relative path", rel);
        return -EINVAL;
    }
    int fd = openat(dirfd, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        errf(w, "%s: %s", rel, e == ELOOP ? "is a symbolic link" : strerror(e));
        return -e;
    }
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        errf(w, "%s: %s", rel, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = -EINVAL;
        errf(w, "%s: not a regular file", rel);
        goto out;
    }
    if (st.st_size > TARGZ_MAX_FILE_SIZE) {
        errf(w, "%s: %lld bytes, larger than the 8 GiB a tar (ustar) entry can hold", rel,
             (long long)st.st_size);
        r = -EFBIG;
        goto out;
    }
    r = write_header(w, rel, &st);
    if (r == 0)
        r = copy_body(w, fd, rel, st.st_size);
out:
    close(fd);
    return r;
}

/* Writes every entry and the end-of-archive blocks into fd. */
static int write_archive(struct tar_writer *w, int fd, int dirfd, char *const *rel_paths)
{
    int gzfd = dup(fd);
    if (gzfd < 0 || !(w->gz = gzdopen(gzfd, "wb"))) {
        int e = errno ? errno : ENOMEM;
        if (gzfd >= 0)
            close(gzfd);
        errf(w, "cannot start compression: %s", strerror(e));
        return -e;
    }
    int r = 0;
    for (size_t i = 0; rel_paths && rel_paths[i] && r == 0; i++)
        r = add_file(w, dirfd, rel_paths[i]);
    static const char end[2 * BLOCK];
    if (r == 0)
        r = put(w, end, sizeof(end));
    if (r == 0)
        r = pad_to(w, RECORD);
    int z = gzclose(w->gz);
    w->gz = NULL;
    if (r == 0 && z != Z_OK) {
        errf(w, "cannot finish the archive: %s", z == Z_ERRNO ? strerror(errno) : "zlib error");
        r = -EIO;
    }
    if (r == 0 && fsync(fd) < 0) {
        r = -errno;
        errf(w, "cannot write the archive: %s", strerror(errno));
    }
    return r;
}

int targz_write(const char *out_path, const char *base_dir, char *const *rel_paths, char *errbuf,
                size_t errlen)
{
    struct tar_writer w = {.errbuf = errbuf, .errlen = errlen};
    char *tmp = xasprintf("%s.XXXXXX", out_path);
    int r = 0, fd = -1;
    int dirfd = open(base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        r = -errno;
        errf(&w, "%s: %s", base_dir, strerror(errno));
        goto out;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        errf(&w, "cannot create %s: %s", out_path, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0644) < 0) {
        r = -errno;
        errf(&w, "cannot create %s: %s", out_path, strerror(errno));
        goto out;
    }
    r = write_archive(&w, fd, dirfd, rel_paths);
    if (r < 0)
        goto out;
    if (rename(tmp, out_path) < 0) {
        r = -errno;
        errf(&w, "cannot create %s: %s", out_path, strerror(errno));
    }
out:
    if (fd >= 0)
        close(fd);
    if (fd >= 0 && r < 0)
        unlink(tmp);
    if (dirfd >= 0)
        close(dirfd);
    free(tmp);
    return r;
}
