/* diag.h — diagnostics that point at the source: file:line:column, key path, message, hint.
 *
 * Printed as:
 *   recipes/x.yaml:12:5: error: services.db.comand: unknown key (did you mean 'command'?)
 * The loader and validator collect every error they find (up to DIAG_MAX) instead
 * of stopping at the first, so a user fixes a recipe in one round. */
#ifndef SONDE_DIAG_H
#define SONDE_DIAG_H

#include "value.h"
#include "util/util.h"

#define DIAG_MAX 100

struct diag {
    const char *file; /* interned */
    unsigned line, col;
    char *path; /* key path like "services.db.with.command[2]", may be "" */
    char *msg;  /* what is wrong and what was expected */
    char *hint; /* "did you mean 'command'?" or NULL */
};

struct diags {
    struct diag *v;
    size_t n, cap;
    size_t dropped; /* errors past DIAG_MAX */
};

void diags_add(struct diags *d, struct sv_pos pos, const char *path, const char *hint,
               const char *fmt, ...) SONDE_PRINTF(5, 6);
void diags_free(struct diags *d);
/* Formats all diagnostics, one per line, as shown above. Caller frees. */
char *diags_format(const struct diags *d);

#endif
