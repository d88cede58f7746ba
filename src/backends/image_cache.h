/* image_cache.h — container images pulled once into a cache, with digests.
 *
 * On a Slurm site a component's image runs through `apptainer exec IMAGE`.
 * A remote image (docker://, oras://, library://, shub://, http(s)://) is
 * pulled once, on the submit host, into the site's image cache (a SIF file
 * named after the reference), so jobs neither pull again nor hit registry
 * limits; a local image (a SIF file or a sandbox directory) is used where it
 * is. Either way the file's SHA-256 goes into provenance; it is kept in a
 * sidecar under the cache (digests/) and computed again only when the file's
 * size, mtime or inode changed. Pulls of the same image by two sessions at
 * once are serialised by a lock file next to it: one pulls, the other waits
 * and finds the file. A pull writes to a temporary name and renames it when
 * complete, so a half-pulled image is never taken for a cached one. */
#ifndef SONDE_IMAGE_CACHE_H
#define SONDE_IMAGE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct site;

struct image_info {
    char *ref;    /* as given */
    char *path;   /* what `apptainer exec` gets: the cached SIF, or the local path made absolute */
    char *digest; /* "sha256:<64 hex>" of the file; NULL for a sandbox directory and when dry */
    bool pulled;  /* this call ran the pull */
};

/* Whether ref names a remote image (one of the URI schemes above). */
bool image_is_remote(const char *ref);
/* The cache directory, absolute: the site's container.cache, else
 * $XDG_CACHE_HOME/sonde/images, else ~/.cache/sonde/images. NULL when there
 * is no home directory either. s may be NULL. Caller frees. */
char *image_cache_dir(const struct site *s);
/* Where ref is cached in dir: "DIR/NAME-HASH.sif", NAME the last part of the
 * reference in [A-Za-z0-9._-] (docker://postgres:15 -> postgres_15), HASH 12
 * hex digits of SHA-256(ref). Caller frees. */
char *image_cache_path(const char *dir, const char *ref);
/* Resolves ref into out: a remote one is pulled into the cache (by the site's
 * runtime, after its modules and setup lines, killed after timeout_ns, which
 * also bounds waiting for another session's pull) unless it is there; a local
 * one must exist. Then the digest. dry: the path only (no pull, no digest, no
 * file access). 0, or -errno with a one-line message in err naming the image
 * and saying what failed (out is then empty). */
int image_fetch(const struct site *s, const char *ref, bool dry, int64_t timeout_ns,
                struct image_info *out, char *err, size_t errlen);
void image_info_clear(struct image_info *i);
/* What a job runs for ref (image_fetch with dry: no file access): the cached
 * SIF of a remote image, a local one made absolute. NULL with a one-line
 * message in err when ref is no image reference. Caller frees. */
char *image_job_path(const struct site *s, const char *ref, char *err, size_t errlen);

#endif
