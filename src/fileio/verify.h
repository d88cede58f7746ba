/* verify.h — self-checking blocks for fileio's verify mode.
 *
 * A written block starts with a 32-byte header (little-endian):
 *   0  u32 magic "SNDV"     4  u32 CRC-32 of bytes 8 .. len
 *   8  u64 offset in file  16  u32 task that wrote it
 *  20  u32 block length    24  u64 write sequence of that task
 * followed by pseudo-random bytes drawn from (seed, offset, sequence). A
 * read-back checks the magic, that the offset and length are where the block
 * was found, and the checksum: a flipped bit anywhere in the block is caught. */
#ifndef SONDE_FILEIO_VERIFY_H
#define SONDE_FILEIO_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#define FX_VERIFY_HDR   32
#define FX_VERIFY_MAGIC 0x56444e53u /* "SNDV" read as a little-endian u32 */

/* Fills buf[0, len) (len >= FX_VERIFY_HDR) as the block at offset. */
void fx_verify_fill(unsigned char *buf, size_t len, uint64_t offset, uint32_t task, uint64_t seq,
                    uint64_t seed);
/* Checks a block read at offset: 0, or -EILSEQ with what is wrong in why
 * (e.g. "checksum mismatch (written by task 2, sequence 7)"). */
int fx_verify_check(const unsigned char *buf, size_t len, uint64_t offset, char *why, size_t n);

#endif
