/* fuzz_template.c — libFuzzer target: any bytes through tmpl_parse; whatever
 * parses must render within tmpl_max_len, and a render into a buffer that is
 * too small must fail cleanly and leave it unchanged. */
#include "loadgen/template.h"
#include "util/rng.h"
#include "util/util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tmpl *t = NULL;
    char err[256];
    if (tmpl_parse((const char *)data, size, &t, err, sizeof(err)) != 0) {
        if (t || !memchr(err, '\0', sizeof(err)) || !err[0])
            abort();
        return 0;
    }
    struct rng r;
    rng_seed(&r, size);
    for (uint64_t n = 0; n < 3; n++) {
        struct sbuf out = {0};
        if (tmpl_render(t, n * 0x9e3779b97f4a7c15ULL, &r, &out) != 0 || out.len > tmpl_max_len(t))
            abort();
        if (tmpl_vars(t) == 0 && (out.len != size || (size && memcmp(out.s, data, size))) &&
            !memmem(data, size, "{{{{", 4))
            abort();
        sbuf_free(&out);
    }
    struct sbuf small = {.max = 8};
    if (sbuf_add(&small, "ab", 2) != 0)
        abort();
    int rc = tmpl_render(t, 1, &r, &small);
    if ((rc != 0 && (rc != -ENOSPC || small.len != 2)) || (rc == 0 && small.len > 7))
        abort();
    sbuf_free(&small);
    tmpl_free(t);
    return 0;
}
