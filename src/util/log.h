/* log.h — one logging call that checks its level before formatting.
 * Messages go to stderr as "sonde: LEVEL: message". Library code logs
 * warnings and debug; errors are returned to callers and printed once by the CLI. */
#ifndef SONDE_LOG_H
#define SONDE_LOG_H

#include "util.h"

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
extern enum log_level log_threshold; /* default LOG_WARN; -v raises it */

void log_write(enum log_level lvl, const char *fmt, ...) SONDE_PRINTF(2, 3);
#define log_at(lvl, ...)                                                                           \
    do {                                                                                           \
        if ((lvl) <= log_threshold)                                                                \
            log_write((lvl), __VA_ARGS__);                                                         \
    } while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif
