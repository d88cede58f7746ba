/* keytab.h — a table from byte keys to 32-bit ids: open addressing with linear
 * probing, keys copied, at most 70% full. For series looked up by name and
 * labels (the scrape monitor's, the exporter's). Not thread-safe. */
#ifndef SONDE_KEYTAB_H
#define SONDE_KEYTAB_H

#include <stddef.h>
#include <stdint.h>

struct keytab_slot {
    uint64_t hash;
    uint64_t mark; /* the caller's (0 in a new slot) */
    char *key;     /* NULL: an empty slot */
    size_t klen;
    uint32_t id;
};

struct keytab {
    struct keytab_slot *s;
    size_t cap, n;
};

/* The slot of key (hash h: hash_fnv1a, say), or the empty slot where it
 * would go (then fill it with keytab_put). The table may grow first: a slot
 * pointer is valid until the next keytab_find. */
struct keytab_slot *keytab_find(struct keytab *t, const void *key, size_t klen, uint64_t h);
void keytab_put(struct keytab *t, struct keytab_slot *s, const void *key, size_t klen, uint64_t h,
                uint32_t id);
/* Empties the table (its memory freed). */
void keytab_free(struct keytab *t);

#endif
