/* targz.h — writes a gzip-compressed POSIX ustar archive (for `sonde logs --save`).
 *
 * Only regular files are stored, under the relative names given (no ".."
 * components, no leading '/'); a name longer than 100 bytes is split into the
 * ustar prefix field (at a '/', up to 155 + 100 bytes) or refused. Files of
 * 8 GiB or more cannot be stored in ustar and are refused. The archive is
 * written to a temporary file next to out_path and renamed into place, so a
 * failure never leaves a half archive behind. */
#ifndef SONDE_TARGZ_H
#define SONDE_TARGZ_H

#include <stddef.h>

#define TARGZ_MAX_FILE_SIZE 077777777777LL /* 8 GiB - 1: the largest ustar size field */

/* Archives base_dir/rel_paths[i] (NULL-terminated list) as rel_paths[i] into
 * out_path. Symbolic links and other non-regular files are refused. 0, or
 * -errno with a message in errbuf naming the file and the problem. */
int targz_write(const char *out_path, const char *base_dir, char *const *rel_paths, char *errbuf,
                size_t errlen);

#endif
