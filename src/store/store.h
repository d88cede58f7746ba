/* store.h — the results store: SQLite (WAL) at <workspace>/sonde.db.
 * The only module that speaks SQL. Every write is its own transaction unless
 * wrapped in store_begin/store_commit, so what was written before a crash
 * stays readable. Times are wall-clock nanoseconds since the epoch (int64).
 * Row structs own their strings; free them with the matching *_free. */
#ifndef SONDE_STORE_H
#define SONDE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 2

struct store;

/* Opens (creating and migrating as needed) <workspace>/sonde.db.
 * -EPROTO when the database was written by a newer sonde (schema too new). */
int store_open(const char *workspace, struct store **out);
void store_close(struct store *st); /* accepts NULL */
/* Text of the last error on st; store_errmsg(NULL) says why the last store_open
 * of this thread failed. Never NULL. */
const char *store_errmsg(struct store *st);
/* An explicit write transaction (BEGIN IMMEDIATE); not nestable (-EBUSY). */
int store_begin(struct store *st);
int store_commit(struct store *st);
int store_rollback(struct store *st);

struct session_row {
    char *id;   /* e.g. "20261125-061523-3f9a" */
    char *name; /* recipe name */
    char *recipe_path;
    char *backend;
    char *state;                     /* pending starting running stopping done failed cancelled */
    char *reason;                    /* failure / cancel reason, or NULL */
    char *dir;                       /* session directory */
    char *host;                      /* host running sonde */
    int64_t pid;                     /* pid of the sonde process that runs it */
    int64_t created, started, ended; /* 0 when unset */
};
void session_row_free(struct session_row *r);
/* r->state, or "interrupted" when the state is not final (pending starting
 * running stopping), r->host is this host and process r->pid no longer exists. */
const char *session_effective_state(const struct session_row *r);
/* Whether a session in this state is still going: pending, starting, running, stopping. */
bool session_state_live(const char *state);
/* Whether session id has ended: its effective state is not live (true when it
 * cannot be read). */
bool store_session_over(struct store *st, const char *id);
/* The pid holding the session's lock (<dir>/.lock, write-locked by the sonde
 * process running it): 0 when nobody holds it, -1 when it cannot be read. */
int64_t session_lock_holder(const struct session_row *r);

int store_session_create(struct store *st, const struct session_row *r);
/* Sets state (and reason when not NULL); sets `ended` for final states (done failed
 * cancelled interrupted) unless already set. -EINVAL for an unknown state, -ENOENT
 * for an unknown session. */
int store_session_set_state(struct store *st, const char *id, const char *state,
                            const char *reason);
int store_session_set_started(struct store *st, const char *id, int64_t t);
/* Finds a session by full id, unique id prefix, or "latest"; -ENOENT / -EEXIST (ambiguous). */
int store_session_get(struct store *st, const char *id, struct session_row *out);
/* All sessions, oldest first. */
int store_session_list(struct store *st, struct session_row **rows, size_t *n);
void session_rows_free(struct session_row *rows, size_t n);

int store_provenance_put(struct store *st, const char *session, const char *key, const char *value);
struct kv_row {
    char *key, *value;
};
int store_provenance_list(struct store *st, const char *session, struct kv_row **rows, size_t *n);
void kv_rows_free(struct kv_row *rows, size_t n);

struct trial_row {
    int64_t id;
    char *session;
    int64_t idx;
    char *label;
    char *matrix; /* JSON object of matrix values, e.g. {"clients":"4"} */
    int64_t repetition;
    char *state; /* running done failed cancelled */
    char *reason;
    int64_t started, ended;
};
void trial_row_free(struct trial_row *r);
int store_trial_create(struct store *st, const struct trial_row *r, int64_t *id);
int store_trial_finish(struct store *st, int64_t id, const char *state, const char *reason,
                       int64_t ended);
int store_trial_list(struct store *st, const char *session, struct trial_row **rows, size_t *n);
void trial_rows_free(struct trial_row *rows, size_t n);

struct component_row {
    int64_t id;
    char *session;
    int64_t trial_id;
    char *name;
    char *role; /* service client monitor */
    char *driver;
    char *command; /* JSON array of the main argv, or NULL */
    char *host;
    char *log_path;
    int64_t pid;         /* 0 when none */
    int64_t exit_code;   /* -1 when unknown / still running */
    int64_t exit_signal; /* 0 when none */
    char *state;         /* starting running done failed */
    char *reason;
    int64_t started, ended;
};
void component_row_free(struct component_row *r);
int store_component_create(struct store *st, const struct component_row *r, int64_t *id);
/* Updates pid, command, host, state, reason, exit_code, exit_signal, started, ended from r (by
 * r->id). */
int store_component_update(struct store *st, const struct component_row *r);
/* trial_id < 0: every component of the session; 0: session-wide ones; > 0: that trial. */
int store_component_list(struct store *st, const char *session, int64_t trial_id,
                         struct component_row **rows, size_t *n);
void component_rows_free(struct component_row *rows, size_t n);

struct metric_row {
    int64_t trial_id;
    char *component, *name, *unit, *labels; /* labels: JSON object or NULL */
    double value;
};
/* trial_id 0: session-wide. Replaces the value of an existing metric with the same
 * (trial, component, name, labels). */
int store_metric_put(struct store *st, const char *session, const struct metric_row *m);
int store_metric_list(struct store *st, const char *session, int64_t trial_id,
                      struct metric_row **rows, size_t *n);
void metric_rows_free(struct metric_row *rows, size_t n);

struct series_row {
    int64_t id;
    int64_t trial_id;
    char *component, *name, *unit, *labels;
    size_t npoints;
};
/* Returns the id of the series (creating it on first use). */
int store_series_get_or_create(struct store *st, const char *session, int64_t trial_id,
                               const char *component, const char *name, const char *unit,
                               const char *labels, int64_t *id);
int store_series_append(struct store *st, int64_t series_id, int64_t t, double v);
int store_series_list(struct store *st, const char *session, int64_t trial_id,
                      struct series_row **rows, size_t *n);
void series_rows_free(struct series_row *rows, size_t n);
struct point {
    int64_t t;
    double v;
};
int store_series_points(struct store *st, int64_t series_id, struct point **pts, size_t *n);

/* A histogram (util/hdr.h) in hdr_encode's form; decode it with hdr_decode. */
struct histogram_row {
    int64_t trial_id;                       /* 0: session-wide */
    char *component, *name, *unit, *labels; /* labels: JSON object or NULL */
    int64_t sigfigs;
    unsigned char *encoding; /* hdr_encode output */
    size_t len;              /* 1..64 MiB */
    uint64_t count;          /* values recorded (for listing without decoding) */
};
/* Replaces an existing histogram with the same (trial, component, name, labels).
 * -EINVAL without component, name or encoding. */
int store_histogram_put(struct store *st, const char *session, const struct histogram_row *h);
/* trial_id < 0: every histogram of the session; otherwise that trial's (0: session-wide). */
int store_histogram_list(struct store *st, const char *session, int64_t trial_id,
                         struct histogram_row **rows, size_t *n);
void histogram_rows_free(struct histogram_row *rows, size_t n);

struct event_row {
    int64_t t;
    int64_t trial_id; /* 0 when session-wide */
    char *level;      /* info warning error */
    char *message;
};
int store_event_add(struct store *st, const char *session, int64_t trial_id, const char *level,
                    const char *message);
int store_event_list(struct store *st, const char *session, struct event_row **rows, size_t *n);
void event_rows_free(struct event_row *rows, size_t n);

/* ---- reads for `sonde metrics` (aggregates and live points) ---- */

/* Aggregates of one series' points: count, first/last time, min, mean, max and
 * the value of the last point (by time). Zeroes when the series has no point. */
struct series_stats {
    size_t n;
    int64_t first, last;
    double min, mean, max, last_value;
};
int store_series_stats(struct store *st, int64_t series_id, struct series_stats *out);

/* A stored point with its insertion order (seq grows with every point stored). */
struct point_row {
    int64_t seq, series_id, t;
    double v;
};
/* The session's points stored after seq `after` (0: from the first), oldest
 * first, at most max (1..1<<20) of them. */
int store_points_after(struct store *st, const char *session, int64_t after, size_t max,
                       struct point_row **rows, size_t *n);
/* The largest seq of any point in the store (0 when none): pass it to
 * store_points_after to follow only the points stored from now on. */
int store_points_last_seq(struct store *st, int64_t *seq);

#endif
