/* fuzz_promtext.c — libFuzzer target: any bytes as a Prometheus text page, the
 * first byte choosing 0.0.4 or OpenMetrics. What the parser hands out keeps the
 * limits it promises: a sample's name is its family's name plus a suffix of its
 * type, at most 64 labels with valid names, values of the length reported, at
 * most 4 KiB, without NUL; the counts add up and an error message comes with the
 * first bad line. */
#include "util/promtext.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    size_t n, last_line;
};

static bool suffix_ok(const char *sfx)
{
    static const char *const ok[] = {"",       "_total", "_created", "_bucket", "_sum",
                                     "_count", "_gsum",  "_gcount",  "_info"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(sfx, ok[i]) == 0)
            return true;
    return false;
}

static int check(const struct prom_sample *s, void *ud)
{
    struct seen *z = ud;
    size_t fl = strlen(s->family);
    if (fl == 0 || strncmp(s->name, s->family, fl) != 0 || !suffix_ok(s->name + fl))
        abort();
    if (s->nlabels > PROMTEXT_MAX_LABELS || s->line < z->last_line)
        abort();
    for (size_t i = 0; i < s->nlabels; i++) {
        const struct prom_label *l = &s->labels[i];
        if (!l->name[0] || strlen(l->value) != l->value_len ||
            l->value_len > PROMTEXT_MAX_LABEL_VAL)
            abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(l->name, s->labels[j].name) == 0)
                abort();
    }
    if (s->part == PROM_PART_BUCKET) {
        bool le = false;
        for (size_t i = 0; i < s->nlabels; i++)
            le = le || strcmp(s->labels[i].name, "le") == 0;
        if (!le)
            abort();
    }
    z->last_line = s->line;
    z->n++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct seen z = {0};
    struct prom_stats st;
    bool om = data[0] & 1;
    if (promtext_parse((const char *)data + 1, size - 1, om, check, &z, &st) != 0)
        abort();
    if (st.samples != z.n || st.samples + st.bad_lines > st.lines + (st.eof ? 1 : 0))
        abort();
    if ((st.bad_lines > 0) != (st.error[0] != '\0'))
        abort();
    return 0;
}
