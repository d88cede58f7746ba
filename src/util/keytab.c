/* keytab.c — byte keys to ids, open addressing. */
#include "util/keytab.h"

#include "util/util.h"

#include <stdlib.h>
#include <string.h>

#define KEYTAB_MIN_CAP 64

static void grow(struct keytab *t)
{
    size_t cap = t->cap ? 2 * t->cap : KEYTAB_MIN_CAP;
    struct keytab_slot *s = xcalloc(cap, sizeof(*s));
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->s[i].key)
            continue;
        size_t j = t->s[i].hash & (cap - 1);
        while (s[j].key)
            j = (j + 1) & (cap - 1);
        s[j] = t->s[i];
    }
    free(t->s);
    t->s = s;
    t->cap = cap;
}

struct keytab_slot *keytab_find(struct keytab *t, const void *key, size_t klen, uint64_t h)
{
    if (t->n + 1 > t->cap / 10 * 7)
        grow(t);
    size_t j = h & (t->cap - 1);
    while (t->s[j].key &&
           !(t->s[j].hash == h && t->s[j].klen == klen && memcmp(t->s[j].key, key, klen) == 0))
        j = (j + 1) & (t->cap - 1);
    return &t->s[j];
}

void keytab_put(struct keytab *t, struct keytab_slot *s, const void *key, size_t klen, uint64_t h,
                uint32_t id)
{
    s->key = xmalloc(klen ? klen : 1);
    memcpy(s->key, key, klen);
    s->klen = klen;
    s->hash = h;
    s->mark = 0;
    s->id = id;
    t->n++;
}

void keytab_free(struct keytab *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->s[i].key);
    free(t->s);
    memset(t, 0, sizeof(*t));
}
