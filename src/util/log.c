/* log.c — stderr logging with a level threshold. */
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>

enum log_level log_threshold = LOG_WARN;

void log_write(enum log_level lvl, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "sonde: %s: %s\n", names[lvl], msg);
    free(msg);
}
