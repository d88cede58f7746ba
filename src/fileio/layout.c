/* layout.c — fileio block layouts and seeded permutations (layout.h). */
#include "fileio/layout.h"

#include <errno.h>

#define FX_MAX_BLOCKS ((uint64_t)1 << 62)

int fx_space_init(struct fx_space *s, enum fx_layout layout, uint64_t files,
                  uint64_t blocks_per_file, unsigned task, unsigned ntasks)
{
    *s = (struct fx_space){.layout = layout,
                           .files = files,
                           .blocks_per_file = blocks_per_file,
                           .task = task,
                           .ntasks = ntasks};
    if (!files || !blocks_per_file || !ntasks || task >= ntasks ||
        blocks_per_file > FX_MAX_BLOCKS / files)
        return -EINVAL;
    uint64_t g = files * blocks_per_file, k = task, n = ntasks;
    switch (layout) {
    case FX_PER_TASK:
        s->n = g;
        break;
    case FX_SEGMENTED:
        s->n = g / n + (k < g % n);
        s->first = k * (g / n) + (k < g % n ? k : g % n);
        break;
    case FX_STRIDED:
        s->n = k < g ? (g - k + n - 1) / n : 0;
        break;
    default:
        return -EINVAL;
    }
    return 0;
}

void fx_space_block(const struct fx_space *s, uint64_t i, uint64_t *file, uint64_t *block)
{
    uint64_t g = s->layout == FX_SEGMENTED ? s->first + i
                 : s->layout == FX_STRIDED ? i * s->ntasks + s->task
                                           : i;
    *file = g / s->blocks_per_file;
    *block = g % s->blocks_per_file;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ULL;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dULL;
    x ^= x >> 33;
    return x;
}

void fx_perm_init(struct fx_perm *p, uint64_t n, uint64_t seed)
{
    unsigned bits = 2;
    while (bits < 64 && ((uint64_t)1 << bits) < n)
        bits++;
    p->n = n;
    p->half = (bits + 1) / 2;
    uint64_t k = seed;
    for (int i = 0; i < 4; i++)
        p->key[i] = mix(k += 0x9E3779B97F4A7C15ULL);
}

/* One permutation of [0, 2^(2 half)): four Feistel rounds. */
static uint64_t feistel(const struct fx_perm *p, uint64_t x)
{
    uint64_t mask = ((uint64_t)1 << p->half) - 1;
    uint64_t l = x >> p->half, r = x & mask;
    for (int i = 0; i < 4; i++) {
        uint64_t t = r;
        r = l ^ (mix(r ^ p->key[i]) & mask);
        l = t;
    }
    return (l << p->half) | r;
}

uint64_t fx_perm_at(const struct fx_perm *p, uint64_t i)
{
    /* cycle walking: the domain is at most 4n, so few steps on average */
    do
        i = feistel(p, i);
    while (i >= p->n);
    return i;
}
