/* exporter.c — placeholder, being written. */
#include "core/exporter.h"

#include <errno.h>
#include <stdio.h>

int exporter_start(const char *addr, struct exporter **out, char *err, size_t errlen)
{
    (void)addr;
    *out = NULL;
    snprintf(err, errlen, "not written yet");
    return -ENOSYS;
}
const char *exporter_target(const struct exporter *e)
{
    (void)e;
    return NULL;
}
void exporter_stop(struct exporter *e)
{
    (void)e;
}
void exporter_set(struct exporter *e, const char *name, const char *help, enum live_kind kind,
                  const char *labels, double value)
{
    (void)e, (void)name, (void)help, (void)kind, (void)labels, (void)value;
}
void exporter_set_histogram(struct exporter *e, const char *name, const char *help,
                            const char *labels, const double *le, const uint64_t *counts, size_t n,
                            double sum)
{
    (void)e, (void)name, (void)help, (void)labels, (void)le, (void)counts, (void)n, (void)sum;
}
void exporter_forget(struct exporter *e, const char *match)
{
    (void)e, (void)match;
}
