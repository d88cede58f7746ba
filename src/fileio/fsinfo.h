/* fsinfo.h — what a fileio run records about the file system behind its
 * path (provenance), and the page-cache drop before a read phase. */
#ifndef SONDE_FILEIO_FSINFO_H
#define SONDE_FILEIO_FSINFO_H

#include <stddef.h>
#include <stdint.h>

struct fx_fsinfo {
    char type[32];       /* "ext4", "xfs", "tmpfs", "lustre", "gpfs", "nfs", ... or "0x1234abcd" */
    char mount[256];     /* the mount point holding the path */
    char source[256];    /* what is mounted there (device, server:/export, ...) */
    char options[512];   /* mount options, then the file system's own */
    uint64_t free_bytes; /* available to this user */
    uint64_t total_bytes;
};

/* The name of a statfs f_type, or NULL when unknown. */
const char *fx_fs_type_name(unsigned long type);
/* Describes the file system holding path (which must exist): 0 or -errno. */
int fx_fs_describe(const char *path, struct fx_fsinfo *out);
/* Finds, in a /proc/self/mountinfo text, the mount holding path (the longest
 * mount point that is a prefix of it, the last such line winning): 0, or
 * -ENOENT. Fills mount, source, options (type when the fs type is known). */
int fx_mountinfo_find(const char *text, const char *path, struct fx_fsinfo *out);
/* Writes back dirty pages and drops the page cache (root only): 0, or -errno
 * (-EACCES when not allowed) with a message in err. */
int fx_drop_caches(char *err, size_t n);

#endif
