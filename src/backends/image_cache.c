/* image_cache.c — container images pulled once into a cache, with digests (see image_cache.h). */
#include "backends/image_cache.h"

#include "backends/site.h"
#include "backends/slurm_script.h"
#include "util/capture.h"
#include "util/log.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS          (1000000LL)
#define CHUNK       ((size_t)1 << 20) /* digest reads */
#define REF_MAX     4096              /* longer references are refused */
#define SHOWN_MAX   160               /* bytes of a reference quoted in a message */
#define NAME_MAX_   64                /* bytes of the readable part of a cached file's name */
#define PULL_MARKER "--- sonde: modules and setup done, pulling ---"

static const char *const schemes[] = {"docker://", "oras://", "library://", "shub://",
                                      "https://",  "http://", NULL};

static const char *scheme_of(const char *ref)
{
    for (size_t i = 0; ref && schemes[i]; i++)
        if (str_startswith(ref, schemes[i]))
            return schemes[i];
    return NULL;
}

bool image_is_remote(const char *ref)
{
    return scheme_of(ref) != NULL;
}

/* p made absolute against the working directory (not resolved: links stay). */
static char *absolute(const char *p)
{
    if (p[0] == '/')
        return xstrdup(p);
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        return xstrdup(p);
    char *r = path_join(cwd, p);
    free(cwd);
    return r;
}

char *image_cache_dir(const struct site *s)
{
    if (s && s->cache && *s->cache)
        return absolute(s->cache);
    const char *x = getenv("XDG_CACHE_HOME");
    if (x && x[0] == '/') /* the XDG spec: a relative value is ignored */
        return path_join(x, "sonde/images");
    const char *home = getenv("HOME");
    if (!home || home[0] != '/') {
        struct passwd *pw = getpwuid(getuid());
        home = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
    }
    return home ? path_join(home, ".cache/sonde/images") : NULL;
}

char *image_cache_path(const char *dir, const char *ref)
{
    const char *p = ref;
    const char *sep = strstr(ref, "://");
    if (sep)
        p = sep + 3;
    size_t end = strlen(p);
    while (end && p[end - 1] == '/')
        end--;
    size_t start = end;
    while (start && p[start - 1] != '/')
        start--;
    size_t n = end - start;
    if (n > 4 && !strncmp(p + end - 4, ".sif", 4)) /* https://.../x.sif -> x-HASH.sif */
        n -= 4;
    char name[NAME_MAX_ + 1];
    size_t k = 0;
    for (size_t i = 0; i < n && k < NAME_MAX_; i++) {
        char c = p[start + i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (k == 0 && c == '.') /* no hidden files */
            ok = false;
        name[k] = ok ? c : '_';
        k++;
    }
    name[k] = '\0';
    char hash[65];
    sha256_hex(ref, strlen(ref), hash);
    char *file = xasprintf("%s-%.12s.sif", k ? name : "image", hash);
    char *r = path_join(dir, file);
    free(file);
    return r;
}

char *image_job_path(const struct site *s, const char *ref, char *err, size_t errlen)
{
    struct image_info info = {0};
    if (image_fetch(s, ref, true, 0, &info, err, errlen) < 0)
        return NULL;
    char *path = info.path;
    info.path = NULL;
    image_info_clear(&info);
    return path;
}

void image_info_clear(struct image_info *i)
{
    if (!i)
        return;
    free(i->ref);
    free(i->path);
    free(i->digest);
    *i = (struct image_info){0};
}

SONDE_PRINTF(4, 5)
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return r;
}

/* s as it can be quoted in a one-line message: control characters as '?',
 * cut after SHOWN_MAX bytes. */
static void shown(const char *s, char buf[SHOWN_MAX + 4])
{
    size_t k = 0;
    for (; s[k] && k < SHOWN_MAX; k++)
        buf[k] = (unsigned char)s[k] < 0x20 || s[k] == 0x7f ? '?' : s[k];
    strcpy(buf + k, s[k] ? "..." : "");
}

static int check_ref(const char *ref, char *err, size_t errlen)
{
    if (!ref || !*ref)
        return fail(err, errlen, -EINVAL, "image: empty reference");
    char show[SHOWN_MAX + 4];
    shown(ref, show);
    size_t len = strnlen(ref, REF_MAX + 1);
    if (len > REF_MAX)
        return fail(err, errlen, -EINVAL, "image %s: reference too long (over %d bytes)", show,
                    REF_MAX);
    for (const char *p = ref; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return fail(err, errlen, -EINVAL, "image %s: reference contains a control character",
                        show);
    const char *scheme = scheme_of(ref);
    if (scheme && !ref[strlen(scheme)])
        return fail(err, errlen, -EINVAL, "image %s: nothing after the scheme", show);
    return 0;
}

/* ---- digests ---- */

static int sha256_fd(int fd, char hex[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return -ENOMEM;
    }
    unsigned char *buf = xmalloc(CHUNK);
    int r = 0;
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            break;
        }
        if (n == 0)
            break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            r = -EIO;
            break;
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (r == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32))
        r = -EIO;
    for (unsigned i = 0; r == 0 && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    free(buf);
    EVP_MD_CTX_free(ctx);
    return r;
}

/* <cachedir>/digests/<16 hex of SHA-256(path)>: "<hex> <size> <mtime s> <mtime ns> <inode>". */
static char *sidecar_path(const char *cachedir, const char *path)
{
    char h[65];
    sha256_hex(path, strlen(path), h);
    h[16] = '\0';
    char *digests = path_join(cachedir, "digests");
    char *r = path_join(digests, h);
    free(digests);
    return r;
}

static void sidecar_line(const struct stat *st, const char *hex, char *buf, size_t n)
{
    snprintf(buf, n, "%s %lld %lld %ld %llu\n", hex, (long long)st->st_size,
             (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec,
             (unsigned long long)st->st_ino);
}

/* The digest the sidecar holds for a file in state st, if it still holds. */
static bool sidecar_read(const char *side, const struct stat *st, char hex[65])
{
    char *text = NULL;
    size_t len = 0;
    if (read_file(side, 256, &text, &len) < 0)
        return false;
    char got[65] = "";
    bool ok = sscanf(text, "%64s", got) == 1 && strlen(got) == 64 &&
              strspn(got, "0123456789abcdef") == 64;
    char want[256];
    if (ok) {
        sidecar_line(st, got, want, sizeof(want));
        ok = !strcmp(text, want);
    }
    free(text);
    if (ok)
        memcpy(hex, got, 65);
    return ok;
}

static void sidecar_write(const char *cachedir, const char *side, const struct stat *st,
                          const char *hex)
{
    char *digests = path_join(cachedir, "digests");
    char line[256];
    sidecar_line(st, hex, line, sizeof(line));
    int r = mkdir_p(digests, 0755);
    if (r == 0)
        r = write_file_atomic(side, line, strlen(line));
    if (r < 0) /* a read-only cache: the digest is computed every time */
        log_debug("cannot keep the digest of an image in %s: %s", side, strerror(-r));
    free(digests);
}

/* "sha256:<hex>" of the regular file path into *out, through the sidecar
 * under cachedir (NULL: none). */
static int file_digest(const char *cachedir, const char *path, const char *show, char **out,
                       char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return fail(err, errlen, -e, "image %s: cannot open %s: %s", show, path, strerror(e));
    }
    struct stat before, after;
    int r = fstat(fd, &before) < 0 ? -errno : 0;
    char *side = cachedir ? sidecar_path(cachedir, path) : NULL;
    char hex[65];
    if (r == 0 && side && sidecar_read(side, &before, hex))
        goto done;
    if (r == 0)
        r = sha256_fd(fd, hex);
    if (r < 0) {
        fail(err, errlen, r, "image %s: cannot compute the digest of %s: %s", show, path,
             strerror(-r));
        goto done;
    }
    if (fstat(fd, &after) < 0 || after.st_size != before.st_size ||
        after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
        after.st_mtim.tv_nsec != before.st_mtim.tv_nsec) {
        r = fail(err, errlen, -EAGAIN, "image %s: %s changed while its digest was computed", show,
                 path);
        goto done;
    }
    if (side)
        sidecar_write(cachedir, side, &before, hex);
done:
    if (r == 0)
        *out = xasprintf("sha256:%s", hex);
    free(side);
    close(fd);
    return r;
}

/* ---- pulls ---- */

/* Takes the lock on fd, waiting until deadline. A file system without
 * flock (some Lustre mounts) gets no lock: two sessions may then both pull,
 * which the rename into place keeps harmless. */
static int lock_until(int fd, int64_t deadline, const char *lock)
{
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == ENOSYS || errno == EOPNOTSUPP || errno == ENOLCK) {
            log_warn("cannot lock %s (%s): pulling without a lock", lock, strerror(errno));
            return 0;
        }
        if (errno != EWOULDBLOCK)
            return -errno;
        if (capture_cancelled)
            return -ECANCELED;
        if (mono_ns() >= deadline)
            return -ETIMEDOUT;
        sleep_ns(50 * MS);
    }
}

/* Removes PATH.part-* left by pulls that died; called holding the lock, so
 * no pull of this image is under way. */
static void remove_stale_parts(const char *path)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    *slash = '\0';
    char *prefix = xasprintf("%s.part-", slash + 1);
    DIR *d = opendir(*dir ? dir : "/");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!str_startswith(e->d_name, prefix))
            continue;
        char *f = path_join(*dir ? dir : "/", e->d_name);
        rm_rf(f);
        free(f);
    }
    if (d)
        closedir(d);
    free(prefix);
    free(dir);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* The script that loads the site's modules, runs its setup and pulls ref to tmp. */
static char *pull_script(const struct site *s, const char *rt, const char *dir, const char *tmp,
                         const char *ref)
{
    struct sbuf b = {0};
    sbuf_puts(&b, "set -e\n");
    for (size_t i = 0; s && s->modules && s->modules[i]; i++) {
        sbuf_puts(&b, "module load ");
        shell_quote(&b, s->modules[i]);
        sbuf_puts(&b, "\n");
    }
    for (size_t i = 0; s && s->setup && s->setup[i]; i++) {
        sbuf_puts(&b, s->setup[i]);
        sbuf_puts(&b, "\n");
    }
    char *layers = path_join(dir, "apptainer"); /* the runtime's own layer cache */
    sbuf_puts(&b, "export APPTAINER_CACHEDIR=");
    shell_quote(&b, layers);
    sbuf_puts(&b, "\n");
    if (!strcmp(base_name(rt), "singularity")) {
        sbuf_puts(&b, "export SINGULARITY_CACHEDIR=");
        shell_quote(&b, layers);
        sbuf_puts(&b, "\n");
    }
    free(layers);
    sbuf_puts(&b, "echo '" PULL_MARKER "'\nexec ");
    shell_quote(&b, rt);
    sbuf_puts(&b, " pull --force ");
    shell_quote(&b, tmp);
    sbuf_puts(&b, " ");
    shell_quote(&b, ref);
    sbuf_puts(&b, "\n");
    return sbuf_steal(&b);
}

/* Runs the pull into path (through a temporary file renamed into place). */
static int pull(const struct site *s, const char *dir, const char *path, const char *ref,
                const char *show, int64_t deadline, int64_t timeout_ns, char *err, size_t errlen)
{
    const char *rt = s && s->runtime && *s->runtime ? s->runtime : "apptainer";
    char *tmp = xasprintf("%s.part-%ld", path, (long)getpid());
    char *script = pull_script(s, rt, dir, tmp, ref);
    char *argv[] = {"bash", "-c", script, NULL};
    struct sbuf out = {.max = 1 << 20}, errb = {0};
    int64_t left = deadline - mono_ns();
    int st = left > 0 ? capture_run(argv, &out, &errb, left) : -ETIMEDOUT;
    bool setup_done = out.s && strstr(out.s, PULL_MARKER);
    char last[512];
    str_last_line(errb.s, errb.len, last, sizeof(last));
    char status[64];
    if (st >= 0 && WIFSIGNALED(st))
        snprintf(status, sizeof(status), "killed by signal %d", WTERMSIG(st));
    else
        snprintf(status, sizeof(status), "exit status %d", st >= 0 ? WEXITSTATUS(st) : -1);
    const char *why = *last ? last : status;
    int r = 0;
    struct stat sb;
    if (st == -ECANCELED) {
        r = fail(err, errlen, -ECANCELED, "image %s: `%s pull` interrupted", show, rt);
    } else if (st == -ETIMEDOUT) {
        r = fail(err, errlen, -ETIMEDOUT, "image %s: `%s pull` timed out after %g s", show, rt,
                 (double)timeout_ns / 1e9);
    } else if (st < 0) {
        r = fail(err, errlen, st, "image %s: cannot run bash for `%s pull`: %s", show, rt,
                 strerror(-st));
    } else if (!setup_done) {
        r = fail(err, errlen, -EIO,
                 "image %s: the site's modules/setup failed before `%s pull`: %s%s", show, rt, why,
                 strstr(last, "module: command not found")
                     ? " (is the module command set up in sonde's environment?)"
                     : "");
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
        r = fail(err, errlen, -ENOENT, "image %s: %s: not found (is the site's module loaded?)",
                 show, rt);
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        r = fail(err, errlen, -EIO, "image %s: `%s pull` failed: %s", show, rt, why);
    } else if (stat(tmp, &sb) < 0) {
        r = fail(err, errlen, -EIO, "image %s: `%s pull` succeeded but wrote no %s", show, rt, tmp);
    } else if (rename(tmp, path) < 0) {
        int e = errno;
        r = fail(err, errlen, -e, "image %s: cannot move the pulled image to %s: %s", show, path,
                 strerror(e));
    }
    if (r < 0)
        rm_rf(tmp);
    sbuf_free(&out);
    sbuf_free(&errb);
    free(script);
    free(tmp);
    return r;
}

/* The cached file, pulled first when it is not there yet. */
static int ensure_pulled(const struct site *s, const char *dir, const char *path, const char *ref,
                         const char *show, int64_t timeout_ns, bool *pulled, char *err,
                         size_t errlen)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        return 0; /* cached: no lock needed, the cache may be read-only */
    int64_t deadline = mono_ns() + timeout_ns;
    int r = mkdir_p(dir, 0755);
    if (r < 0)
        return fail(err, errlen, r, "image %s: cannot create the image cache %s: %s", show, dir,
                    strerror(-r));
    char *lock = xasprintf("%s.lock", path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        r = fail(err, errlen, -e, "image %s: cannot open %s: %s", show, lock, strerror(e));
        goto out;
    }
    r = lock_until(fd, deadline, lock);
    if (r == -ETIMEDOUT) {
        fail(err, errlen, r, "image %s: timed out after %g s waiting for another pull of it (%s)",
             show, (double)timeout_ns / 1e9, lock);
        goto out;
    } else if (r < 0) {
        fail(err, errlen, r, "image %s: cannot lock %s: %s", show, lock, strerror(-r));
        goto out;
    }
    if (stat(path, &st) == 0) { /* pulled by another session while we waited */
        if (!S_ISREG(st.st_mode))
            r = fail(err, errlen, -EEXIST, "image %s: %s is in the way (not a file)", show, path);
        goto out;
    }
    remove_stale_parts(path);
    r = pull(s, dir, path, ref, show, deadline, timeout_ns, err, errlen);
    *pulled = r == 0;
out:
    if (fd >= 0)
        close(fd); /* releases the lock */
    free(lock);
    return r;
}

/* A local image: a file (digest) or a sandbox directory (none). */
static int check_local(const char *path, const char *show, bool *is_dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return fail(err, errlen, -ENOENT,
                        "image %s: no such file (a local image must exist on the submit host; "
                        "use docker://... to pull)",
                        show);
        return fail(err, errlen, -e, "image %s: %s", show, strerror(e));
    }
    *is_dir = S_ISDIR(st.st_mode);
    if (!*is_dir && !S_ISREG(st.st_mode))
        return fail(err, errlen, -EINVAL, "image %s: not a file or a sandbox directory", show);
    return 0;
}

int image_fetch(const struct site *s, const char *ref, bool dry, int64_t timeout_ns,
                struct image_info *out, char *err, size_t errlen)
{
    *out = (struct image_info){0};
    if (errlen)
        err[0] = '\0';
    int r = check_ref(ref, err, errlen);
    if (r < 0)
        return r;
    char show[SHOWN_MAX + 4];
    shown(ref, show);
    bool remote = image_is_remote(ref);
    char *dir = image_cache_dir(s);
    out->ref = xstrdup(ref);
    if (remote && !dir) {
        r = fail(err, errlen, -ENOENT,
                 "image %s: no image cache (set the site's container.cache, or $HOME)", show);
        goto out;
    }
    out->path = remote ? image_cache_path(dir, ref) : absolute(ref);
    if (dry)
        goto out;
    bool is_dir = false;
    if (remote && timeout_ns <= 0) {
        r = fail(err, errlen, -EINVAL, "image %s: no time allowed for the pull", show);
    } else if (remote) {
        r = ensure_pulled(s, dir, out->path, ref, show, timeout_ns, &out->pulled, err, errlen);
    } else {
        shown(out->path, show); /* name the local image by its absolute path */
        r = check_local(out->path, show, &is_dir, err, errlen);
    }
    if (r == 0 && !is_dir)
        r = file_digest(dir, out->path, show, &out->digest, err, errlen);
out:
    free(dir);
    if (r < 0)
        image_info_clear(out);
    return r;
}
