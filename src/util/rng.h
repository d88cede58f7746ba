/* rng.h — xoshiro256** seeded with splitmix64: fast, seedable, reproducible
 * random numbers for load schedules and simulated delays. Not for secrets. */
#ifndef SONDE_RNG_H
#define SONDE_RNG_H

#include <stdint.h>

struct rng {
    uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
double rng_unit(struct rng *r);      /* uniform in [0, 1) */
double rng_unit_open(struct rng *r); /* uniform in (0, 1]: safe under log() */

#endif
