/* capture.h — run a short command and collect what it prints.
 *
 * For scheduler commands (sbatch, squeue, scontrol, scancel): the child gets
 * its own process group, so a Ctrl-C on the terminal reaches sonde, not a
 * half-done submission, and it is reaped here before this returns. */
#ifndef SONDE_CAPTURE_H
#define SONDE_CAPTURE_H

#include "util/util.h"

#include <signal.h>
#include <stdint.h>

/* Runs argv (looked up in PATH), stdin from /dev/null, stdout into out and
 * stderr into err (either may be NULL: discarded; each kept up to its sbuf's
 * max, the rest read and dropped). Kills the child's group after timeout_ns.
 * Returns the raw wait status (>= 0), -ETIMEDOUT when killed for time, or
 * -errno when it could not start (-ENOENT: no such program). */
int capture_run(char *const *argv, struct sbuf *out, struct sbuf *err, int64_t timeout_ns);

/* Set from a signal handler during a long call (Ctrl-C while an image is
 * pulled): a capture_run in progress, or started while it is set, kills its
 * child's group and returns -ECANCELED. Whoever sets it clears it: the
 * scheduler calls of a teardown must not be cancelled. */
extern volatile sig_atomic_t capture_cancelled;

#endif
