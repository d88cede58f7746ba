/* diag.c — collected diagnostics that point at file:line:column. */
#include "core/diag.h"

#include <stdlib.h>
#include <string.h>

/* One source position with one message is one error, whatever path led to it. */
static bool same_diag(const struct diag *a, const char *file, struct sv_pos pos, const char *msg)
{
    return a->line == pos.line && a->col == pos.col && strcmp(a->file, file) == 0 &&
           strcmp(a->msg, msg) == 0;
}

void diags_add(struct diags *d, struct sv_pos pos, const char *path, const char *hint,
               const char *fmt, ...)
{
    if (!d)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    const char *file = pos.file ? pos.file : sv_intern("<input>");
    path = path ? path : "";
    /* The same error found again (in every trial of a matrix, or through the
     * benchmark env merged into each component) is reported once. */
    for (size_t i = 0; i < d->n; i++) {
        if (same_diag(&d->v[i], file, pos, msg)) {
            free(msg);
            return;
        }
    }
    if (d->n >= DIAG_MAX) {
        d->dropped++;
        free(msg);
        return;
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
    }
    d->v[d->n++] = (struct diag){.file = file,
                                 .line = pos.line,
                                 .col = pos.col,
                                 .path = xstrdup(path),
                                 .msg = msg,
                                 .hint = xstrdup(hint)};
}

void diags_free(struct diags *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].path);
        free(d->v[i].msg);
        free(d->v[i].hint);
    }
    free(d->v);
    *d = (struct diags){0};
}

static void format_one(struct sbuf *b, const struct diag *g)
{
    if (g->line)
        sbuf_printf(b, "%s:%u:%u: error: ", g->file, g->line, g->col);
    else
        sbuf_printf(b, "%s: error: ", g->file);
    if (*g->path)
        sbuf_printf(b, "%s: ", g->path);
    sbuf_puts(b, g->msg);
    if (g->hint)
        sbuf_printf(b, " (%s)", g->hint);
    sbuf_puts(b, "\n");
}

char *diags_format(const struct diags *d)
{
    struct sbuf b = {0};
    for (size_t i = 0; d && i < d->n; i++)
        format_one(&b, &d->v[i]);
    if (d && d->dropped)
        sbuf_printf(&b, "sonde: %zu more errors not shown\n", d->dropped);
    return sbuf_steal(&b);
}
