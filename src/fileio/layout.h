/* layout.h — which blocks of which files one task of a fileio phase touches,
 * and in what order.
 *
 * A phase works on `files` files of `blocks_per_file` blocks each. With
 * FX_PER_TASK every task has files of its own; with FX_SEGMENTED and
 * FX_STRIDED the tasks share the files, as IOR lays out one shared file: the
 * blocks of all files are numbered g = file * blocks_per_file + block, and
 * task k of n owns either one contiguous run of them (segmented: the first
 * G mod n tasks one block more) or every n-th one starting at k (strided).
 * A task visits its blocks in order, or in a random order that is a seeded
 * permutation (each block exactly once, O(1) memory: a Feistel network with
 * cycle walking), or uniformly at random with repeats. */
#ifndef SONDE_FILEIO_LAYOUT_H
#define SONDE_FILEIO_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

enum fx_layout { FX_PER_TASK, FX_SEGMENTED, FX_STRIDED };

/* The blocks one task owns. */
struct fx_space {
    enum fx_layout layout;
    uint64_t files, blocks_per_file;
    unsigned task, ntasks;
    uint64_t n;     /* blocks this task owns (may be 0 when shared blocks are fewer than tasks) */
    uint64_t first; /* FX_SEGMENTED: its first global block */
};

/* 0, or -EINVAL when files or blocks_per_file is 0, task >= ntasks, or the
 * block count overflows 2^62. */
int fx_space_init(struct fx_space *s, enum fx_layout layout, uint64_t files,
                  uint64_t blocks_per_file, unsigned task, unsigned ntasks);
/* The task's i-th block (i < s->n): its file index and block index in it. */
void fx_space_block(const struct fx_space *s, uint64_t i, uint64_t *file, uint64_t *block);

/* A seeded permutation of [0, n), n <= 2^62. */
struct fx_perm {
    uint64_t n;
    unsigned half; /* bits in each half of the Feistel network */
    uint64_t key[4];
};

void fx_perm_init(struct fx_perm *p, uint64_t n, uint64_t seed);
/* The i-th element of the permutation (i < n). */
uint64_t fx_perm_at(const struct fx_perm *p, uint64_t i);

#endif
