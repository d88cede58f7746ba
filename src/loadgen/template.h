/* template.h — per-request text: literal text with variables that take a new
 * value for every request.
 *
 *   {{counter}}       the request's number in the run: 0, 1, 2, ... (unique
 *                     across the run's threads, roughly in send order)
 *   {{random}}        a uniform random integer in [0, 2^64 - 1]
 *   {{random:LO:HI}}  a uniform random integer in [LO, HI] (signed 64-bit)
 *   {{uuid}}          a random version-4 UUID, lower-case
 *
 * Spaces inside the braces are ignored ({{ counter }}). "{{{{" writes a
 * literal "{{"; any other "{{" must start a variable. Random values come
 * from the caller's generator (seeded: a run is reproducible). */
#ifndef SONDE_LOADGEN_TEMPLATE_H
#define SONDE_LOADGEN_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

struct rng;
struct sbuf;
struct tmpl;

/* Parses len bytes of text (NUL bytes allowed). 0, or -EINVAL with a message
 * naming the offset and the problem in err. */
int tmpl_parse(const char *text, size_t len, struct tmpl **out, char *err, size_t errlen);
/* Number of variables (0: the text is constant). */
size_t tmpl_vars(const struct tmpl *t);
/* The longest text a render can produce. */
size_t tmpl_max_len(const struct tmpl *t);
/* Appends the text for request number `counter` to out. 0 or -ENOSPC (out's
 * maximum reached; out is then unchanged). */
int tmpl_render(const struct tmpl *t, uint64_t counter, struct rng *rng, struct sbuf *out);
void tmpl_free(struct tmpl *t);

#endif
