/* util.h — small helpers shared by every module: allocation, strings, time, files.
 *
 * Allocation failures abort (xmalloc & co): sonde cannot do anything useful
 * without memory and every caller checking NULL would hide real errors.
 * Everything else returns 0 or a negative errno. */
#ifndef SONDE_UTIL_H
#define SONDE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SONDE_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SONDE_PRINTF(f, a) __attribute__((format(printf, f, a)))

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s); /* xstrdup(NULL) == NULL */
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) SONDE_PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap) SONDE_PRINTF(1, 0);

/* FNV-1a over n bytes: table keys, content derived from a name (not for security). */
uint64_t hash_fnv1a(const void *p, size_t n);

/* NULL-terminated string vectors (argv, envp). strv_free accepts NULL. */
size_t strv_len(char *const *v);
char **strv_dup(char *const *v);
void strv_push(char ***v, const char *s);                            /* appends a copy */
void strv_pushf(char ***v, const char *fmt, ...) SONDE_PRINTF(2, 3); /* appends a formatted one */
void strv_free(char **v);

/* Growable string with a hard maximum. On overflow the buffer stays as it was
 * and the call returns -ENOSPC; callers treat that as an error. */
struct sbuf {
    char *s;    /* always NUL-terminated once anything was added */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* 0 means SBUF_DEFAULT_MAX */
};
#define SBUF_DEFAULT_MAX ((size_t)64 << 20)
int sbuf_add(struct sbuf *b, const char *s, size_t n);
int sbuf_puts(struct sbuf *b, const char *s);
int sbuf_printf(struct sbuf *b, const char *fmt, ...) SONDE_PRINTF(2, 3);
char *sbuf_steal(struct sbuf *b); /* returns the string (never NULL), resets b */
void sbuf_free(struct sbuf *b);

/* Edit distance between a and b, capped at cap+1 (cheap for long strings). */
size_t str_distance(const char *a, const char *b, size_t cap);
/* Best near-miss of word among candidates (NULL-terminated), or NULL when none
 * is within a distance of max(1, strlen(word)/3). */
const char *str_suggest(const char *word, const char *const *candidates);
bool str_startswith(const char *s, const char *prefix);
bool str_endswith(const char *s, const char *suffix);
/* The last non-empty line of text[0..len) (at most n-1 bytes, up to a NUL,
 * control characters as spaces) into buf; "" when none. For error messages
 * that quote what a command printed last. text may be NULL. */
void str_last_line(const char *text, size_t len, char *buf, size_t n);

/* Time. */
int64_t mono_ns(void);       /* CLOCK_MONOTONIC */
int64_t wall_ns(void);       /* CLOCK_REALTIME, ns since the epoch */
char *iso8601(int64_t wall); /* "2026-11-25T06:15:23.123Z", caller frees */
char *num_exact(double v);   /* the shortest "%g" text that reads back as exactly v; caller frees */
void sleep_ns(int64_t ns);

/* Files. */
int mkdir_p(const char *path, unsigned mode);
/* Reads a whole file up to max bytes: -EFBIG when larger. *out is NUL-terminated. */
int read_file(const char *path, size_t max, char **out, size_t *len);
/* Writes through a temporary file + rename, so readers see old or new, never half. */
int write_file_atomic(const char *path, const char *data, size_t len);
/* The same, written in pieces: afile_open creates PATH.tmp.PID (-errno), afile_write
 * appends (the first error is kept, later writes do nothing), afile_commit syncs and
 * renames it over path, or removes it when anything failed (-errno). */
struct afile {
    char *path, *tmp;
    int fd, rc;
};
int afile_open(struct afile *f, const char *path);
void afile_write(struct afile *f, const void *data, size_t len);
int afile_commit(struct afile *f);
char *path_join(const char *a, const char *b);
/* Removes a directory tree (like rm -rf); missing is not an error. */
int rm_rf(const char *path);

/* The absolute path of the running program (/proc/self/exe), "sonde" when
 * it cannot be read. Caller frees. */
char *self_exe(void);

/* Hex SHA-256 of data into out[65]. */
void sha256_hex(const void *data, size_t len, char out[65]);

#endif
