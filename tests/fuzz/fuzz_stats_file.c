/* fuzz_stats_file.c — libFuzzer target: any bytes through lg_stats_parse. What
 * parses must dump to a document that parses back and dumps identically, and
 * merge with itself into exactly twice the counts. */
#include "loadgen/stats_file.h"
#include "util/hdr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Memory of every histogram in s: the merge touches all of it. */
static size_t hdrs_memory(const struct lg_stats *s)
{
    size_t n = hdr_memory(s->latency) + hdr_memory(s->service);
    if (s->issue_delay)
        n += hdr_memory(s->issue_delay);
    for (size_t i = 0; i < s->nsecs; i++)
        if (s->secs[i].latency)
            n += hdr_memory(s->secs[i].latency);
    return n;
}

static void check_merge(struct lg_stats *s)
{
    struct lg_stats *in[] = {s, s}, *m = NULL;
    char err[256];
    /* overflowing counts or windows are refused, with a message */
    if (lg_stats_merge(in, 2, &m, err, sizeof(err)) < 0) {
        if (!err[0])
            abort();
        return;
    }
    if (m->requests != 2 * s->requests || hdr_count(m->latency) != 2 * hdr_count(s->latency) ||
        m->nsecs != s->nsecs || m->window_ns != s->window_ns ||
        m->window_start_wall_ns != s->window_start_wall_ns)
        abort();
    for (size_t i = 0; i < m->nsecs; i++)
        if (m->secs[i].requests != 2 * s->secs[i].requests ||
            (m->secs[i].latency && s->secs[i].latency &&
             hdr_count(m->secs[i].latency) != 2 * hdr_count(s->secs[i].latency)))
            abort();
    lg_stats_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lg_stats *s = NULL, *again = NULL;
    char err[256], *text = NULL, *text2 = NULL;
    size_t len = 0, len2 = 0;
    if (lg_stats_parse((const char *)data, size, "fuzz", &s, err, sizeof(err)) < 0) {
        if (strncmp(err, "fuzz: ", 6) != 0) /* every message names the file */
            abort();
        return 0;
    }
    if (lg_stats_dump(s, &text, &len, err, sizeof(err)) < 0 ||
        lg_stats_parse(text, len, "again", &again, err, sizeof(err)) < 0 ||
        lg_stats_dump(again, &text2, &len2, err, sizeof(err)) < 0 || len != len2 ||
        memcmp(text, text2, len) != 0)
        abort();
    if (hdrs_memory(s) <= ((size_t)64 << 20))
        check_merge(s);
    free(text);
    free(text2);
    lg_stats_free(again);
    lg_stats_free(s);
    return 0;
}
