/* store.c — the results store on SQLite (WAL). The only file that speaks SQL.
 *
 * Every statement is a constant string in stmt_sql[] and is prepared once per
 * connection; data only ever reaches SQLite through bound parameters.
 * A trial id of 0 ("session-wide") is stored as NULL so that foreign keys hold. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <sqlite3.h>

#include "util/log.h"
#include "util/util.h"

#define STORE_ERRMSG_MAX 512
#define STORE_LIST_MAX   ((size_t)1 << 22) /* rows returned by one list call */
#define STORE_POINTS_MAX ((size_t)1 << 24) /* points returned for one series */
#define STORE_BUSY_MS    10000
#define STORE_BLOB_MAX   ((size_t)64 << 20) /* one histogram encoding (HDR_MAX_MEMORY) */

/* ---- schema and migrations ------------------------------------------------ */

/* migrations[i] brings the schema from version i to version i + 1. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE sessions("
    " id TEXT PRIMARY KEY, name TEXT NOT NULL, recipe_path TEXT, backend TEXT,"
    " state TEXT NOT NULL, reason TEXT, dir TEXT, host TEXT,"
    " pid INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL DEFAULT 0,"
    " started INTEGER NOT NULL DEFAULT 0, ended INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX sessions_created ON sessions(created);"
    "CREATE TABLE provenance("
    " session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    " key TEXT NOT NULL, value TEXT, PRIMARY KEY(session_id, key));"
    "CREATE TABLE trials("
    " id INTEGER PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    " idx INTEGER NOT NULL, label TEXT, matrix TEXT, repetition INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL, reason TEXT, started INTEGER NOT NULL DEFAULT 0,"
    " ended INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX trials_session ON trials(session_id, idx);"
    "CREATE TABLE components("
    " id INTEGER PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    " trial_id INTEGER REFERENCES trials(id) ON DELETE CASCADE, name TEXT NOT NULL,"
    " role TEXT, driver TEXT, command TEXT, host TEXT, log_path TEXT,"
    " pid INTEGER NOT NULL DEFAULT 0, exit_code INTEGER NOT NULL DEFAULT -1,"
    " exit_signal INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, reason TEXT,"
    " started INTEGER NOT NULL DEFAULT 0, ended INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX components_session ON components(session_id, trial_id);"
    "CREATE TABLE metrics("
    " id INTEGER PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    " trial_id INTEGER REFERENCES trials(id) ON DELETE CASCADE, component TEXT NOT NULL,"
    " name TEXT NOT NULL, unit TEXT, labels TEXT, value REAL NOT NULL);"
    "CREATE UNIQUE INDEX metrics_key ON metrics(session_id, COALESCE(trial_id, 0), component,"
    " name, COALESCE(labels, ''));"
    "CREATE TABLE series("
    " id INTEGER PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    " trial_id INTEGER REFERENCES trials(id) ON DELETE CASCADE, component TEXT NOT NULL,"
    " name TEXT NOT NULL, unit TEXT, labels TEXT);"
    "CREATE UNIQUE INDEX series_key ON series(session_id, COALESCE(trial_id, 0), component,"
    " name, COALESCE(labels, ''));"
    "CREATE TABLE series_points("
    " series_id INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,"
    " t INTEGER NOT NULL, v REAL NOT NULL);"
    "CREATE INDEX series_points_series ON series_points(series_id, t);"
    "CREATE TABLE events("
    " id INTEGER PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    " trial_id INTEGER REFERENCES trials(id) ON DELETE CASCADE, t INTEGER NOT NULL,"
    " level TEXT NOT NULL, message TEXT NOT NULL);"
    "CREATE INDEX events_session ON events(session_id, t);",
    /* 1 -> 2: histograms (hdr_encode blobs) */
    "CREATE TABLE histograms("
    " id INTEGER PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    " trial_id INTEGER REFERENCES trials(id) ON DELETE CASCADE, component TEXT NOT NULL,"
    " name TEXT NOT NULL, unit TEXT, labels TEXT, sigfigs INTEGER NOT NULL,"
    " encoding BLOB NOT NULL, count INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX histograms_key ON histograms(session_id, COALESCE(trial_id, 0),"
    " component, name, COALESCE(labels, ''));",
};
_Static_assert(SONDE_ARRAY_LEN(migrations) == STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* ---- prepared statements ---------------------------------------------------- */

enum stmt_id {
    S_VERSION_TABLE,
    S_VERSION_GET,
    S_VERSION_SET,
    S_SESSION_INSERT,
    S_SESSION_STATE,
    S_SESSION_STATE_FINAL,
    S_SESSION_STARTED,
    S_SESSION_BY_ID,
    S_SESSION_BY_PREFIX,
    S_SESSION_LATEST,
    S_SESSION_LIST,
    S_PROV_PUT,
    S_PROV_LIST,
    S_TRIAL_INSERT,
    S_TRIAL_FINISH,
    S_TRIAL_LIST,
    S_COMP_INSERT,
    S_COMP_UPDATE,
    S_COMP_LIST_ALL,
    S_COMP_LIST_TRIAL,
    S_METRIC_PUT,
    S_METRIC_LIST_ALL,
    S_METRIC_LIST_TRIAL,
    S_SERIES_INSERT,
    S_SERIES_FIND,
    S_SERIES_APPEND,
    S_SERIES_LIST_ALL,
    S_SERIES_LIST_TRIAL,
    S_SERIES_POINTS,
    S_EVENT_ADD,
    S_EVENT_LIST,
    S_HIST_PUT,
    S_HIST_LIST_ALL,
    S_HIST_LIST_TRIAL,
    S__COUNT
};

#define SESSION_COLS                                                                               \
    "id, name, recipe_path, backend, state, reason, dir, host, pid, created, started, ended"
#define TRIAL_COLS "id, session_id, idx, label, matrix, repetition, state, reason, started, ended"
#define COMP_COLS                                                                                  \
    "id, session_id, COALESCE(trial_id, 0), name, role, driver, command, host, log_path, pid,"     \
    " exit_code, exit_signal, state, reason, started, ended"
#define METRIC_COLS "COALESCE(trial_id, 0), component, name, unit, labels, value"
#define HIST_COLS   "COALESCE(trial_id, 0), component, name, unit, labels, sigfigs, encoding, count"
#define SERIES_COLS                                                                                \
    "s.id, COALESCE(s.trial_id, 0), s.component, s.name, s.unit, s.labels,"                        \
    " (SELECT COUNT(*) FROM series_points p WHERE p.series_id = s.id)"

static const char *const stmt_sql[S__COUNT] = {
    [S_VERSION_TABLE] = "SELECT 1 FROM sqlite_master WHERE type = 'table'"
                        " AND name = 'schema_version'",
    [S_VERSION_GET] = "SELECT version FROM schema_version",
    [S_VERSION_SET] = "UPDATE schema_version SET version = ?1",
    [S_SESSION_INSERT] = "INSERT INTO sessions(" SESSION_COLS
                         ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [S_SESSION_STATE] = "UPDATE sessions SET state = ?2, reason = COALESCE(?3, reason)"
                        " WHERE id = ?1",
    [S_SESSION_STATE_FINAL] = "UPDATE sessions SET state = ?2, reason = COALESCE(?3, reason),"
                              " ended = CASE WHEN ended = 0 THEN ?4 ELSE ended END WHERE id = ?1",
    [S_SESSION_STARTED] = "UPDATE sessions SET started = ?2 WHERE id = ?1",
    [S_SESSION_BY_ID] = "SELECT " SESSION_COLS " FROM sessions WHERE id = ?1",
    [S_SESSION_BY_PREFIX] = "SELECT " SESSION_COLS " FROM sessions"
                            " WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2",
    [S_SESSION_LATEST] = "SELECT " SESSION_COLS " FROM sessions"
                         " ORDER BY created DESC, rowid DESC LIMIT 1",
    [S_SESSION_LIST] = "SELECT " SESSION_COLS " FROM sessions ORDER BY created, rowid",
    [S_PROV_PUT] = "INSERT INTO provenance(session_id, key, value) VALUES(?1, ?2, ?3)"
                   " ON CONFLICT(session_id, key) DO UPDATE SET value = excluded.value",
    [S_PROV_LIST] = "SELECT key, value FROM provenance WHERE session_id = ?1 ORDER BY key",
    [S_TRIAL_INSERT] = "INSERT INTO trials(session_id, idx, label, matrix, repetition, state,"
                       " reason, started, ended) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [S_TRIAL_FINISH] = "UPDATE trials SET state = ?2, reason = COALESCE(?3, reason), ended = ?4"
                       " WHERE id = ?1",
    [S_TRIAL_LIST] = "SELECT " TRIAL_COLS " FROM trials WHERE session_id = ?1 ORDER BY idx, id",
    [S_COMP_INSERT] = "INSERT INTO components(session_id, trial_id, name, role, driver, command,"
                      " host, log_path, pid, exit_code, exit_signal, state, reason, started,"
                      " ended) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                      " ?14, ?15)",
    [S_COMP_UPDATE] = "UPDATE components SET pid = ?2, command = ?3, host = ?4, state = ?5,"
                      " reason = ?6, exit_code = ?7, exit_signal = ?8, started = ?9, ended = ?10"
                      " WHERE id = ?1",
    [S_COMP_LIST_ALL] = "SELECT " COMP_COLS " FROM components WHERE session_id = ?1 ORDER BY id",
    [S_COMP_LIST_TRIAL] = "SELECT " COMP_COLS " FROM components WHERE session_id = ?1"
                          " AND COALESCE(trial_id, 0) = ?2 ORDER BY id",
    [S_METRIC_PUT] = "INSERT INTO metrics(session_id, trial_id, component, name, unit, labels,"
                     " value) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(session_id,"
                     " COALESCE(trial_id, 0), component, name, COALESCE(labels, '')) DO UPDATE"
                     " SET unit = excluded.unit, value = excluded.value",
    [S_METRIC_LIST_ALL] = "SELECT " METRIC_COLS " FROM metrics WHERE session_id = ?1"
                          " ORDER BY COALESCE(trial_id, 0), id",
    [S_METRIC_LIST_TRIAL] = "SELECT " METRIC_COLS " FROM metrics WHERE session_id = ?1"
                            " AND COALESCE(trial_id, 0) = ?2 ORDER BY id",
    [S_SERIES_INSERT] = "INSERT OR IGNORE INTO series(session_id, trial_id, component, name,"
                        " unit, labels) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [S_SERIES_FIND] = "SELECT id FROM series WHERE session_id = ?1 AND COALESCE(trial_id, 0) = ?2"
                      " AND component = ?3 AND name = ?4 AND COALESCE(labels, '') ="
                      " COALESCE(?5, '')",
    [S_SERIES_APPEND] = "INSERT INTO series_points(series_id, t, v) VALUES(?1, ?2, ?3)",
    [S_SERIES_LIST_ALL] = "SELECT " SERIES_COLS " FROM series s WHERE s.session_id = ?1"
                          " ORDER BY COALESCE(s.trial_id, 0), s.id",
    [S_SERIES_LIST_TRIAL] = "SELECT " SERIES_COLS " FROM series s WHERE s.session_id = ?1"
                            " AND COALESCE(s.trial_id, 0) = ?2 ORDER BY s.id",
    [S_SERIES_POINTS] = "SELECT t, v FROM series_points WHERE series_id = ?1 ORDER BY t, rowid",
    [S_EVENT_ADD] = "INSERT INTO events(session_id, trial_id, t, level, message)"
                    " VALUES(?1, ?2, ?3, ?4, ?5)",
    [S_EVENT_LIST] = "SELECT t, COALESCE(trial_id, 0), level, message FROM events"
                     " WHERE session_id = ?1 ORDER BY t, id",
    [S_HIST_PUT] = "INSERT INTO histograms(session_id, trial_id, component, name, unit, labels,"
                   " sigfigs, encoding, count) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                   " ON CONFLICT(session_id, COALESCE(trial_id, 0), component, name,"
                   " COALESCE(labels, '')) DO UPDATE SET unit = excluded.unit,"
                   " sigfigs = excluded.sigfigs, encoding = excluded.encoding,"
                   " count = excluded.count",
    [S_HIST_LIST_ALL] = "SELECT " HIST_COLS " FROM histograms WHERE session_id = ?1"
                        " ORDER BY COALESCE(trial_id, 0), id",
    [S_HIST_LIST_TRIAL] = "SELECT " HIST_COLS " FROM histograms WHERE session_id = ?1"
                          " AND COALESCE(trial_id, 0) = ?2 ORDER BY id",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[S__COUNT];
    char errmsg[STORE_ERRMSG_MAX];
};

/* Why the last store_open of this thread failed (store_errmsg(NULL)). */
static _Thread_local char open_errmsg[STORE_ERRMSG_MAX];

/* ---- errors ------------------------------------------------------------------ */

static int sqlite_to_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EBADMSG;
    case SQLITE_TOOBIG:
        return -E2BIG;
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        return -EINVAL;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return -ENOENT;
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
            return -EEXIST;
        return -EINVAL;
    default:
        return -EIO;
    }
}

static void set_err(struct store *st, const char *fmt, ...) SONDE_PRINTF(2, 3);
static void set_err(struct store *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->errmsg, sizeof(st->errmsg), fmt, ap);
    va_end(ap);
}

/* Records SQLite's message for rc and returns it as a negative errno. */
static int db_fail(struct store *st, int rc)
{
    set_err(st, "%s", sqlite3_errmsg(st->db));
    return sqlite_to_errno(rc);
}

const char *store_errmsg(struct store *st)
{
    if (!st)
        return open_errmsg;
    return st->errmsg;
}

/* ---- statement helpers -------------------------------------------------------- */

/* Returns the cached statement id, reset and with cleared bindings. */
static int stmt_get(struct store *st, enum stmt_id id, sqlite3_stmt **out)
{
    if (!st->stmt[id]) {
        int rc = sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &st->stmt[id], NULL);
        if (rc != SQLITE_OK)
            return db_fail(st, rc);
    }
    sqlite3_reset(st->stmt[id]);
    sqlite3_clear_bindings(st->stmt[id]);
    *out = st->stmt[id];
    return 0;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

static void bind_trial(sqlite3_stmt *s, int i, int64_t trial_id)
{
    if (trial_id > 0)
        sqlite3_bind_int64(s, i, trial_id);
    else
        sqlite3_bind_null(s, i);
}

static char *col_str(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? xstrdup((const char *)t) : NULL;
}

/* Runs a statement that returns no rows. -ENOENT when need_change and no row changed. */
static int stmt_exec(struct store *st, sqlite3_stmt *s, bool need_change)
{
    int rc = sqlite3_step(s);
    int ret = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        ret = db_fail(st, sqlite3_extended_errcode(st->db));
    else if (need_change && sqlite3_changes(st->db) == 0) {
        set_err(st, "no such row");
        ret = -ENOENT;
    }
    sqlite3_reset(s);
    return ret;
}

/* Steps s; 1 with a row, 0 when done, negative errno on failure. */
static int stmt_step(struct store *st, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return db_fail(st, sqlite3_extended_errcode(st->db));
}

/* Makes room for one more element of elsize bytes in *arr (holding n, room for *cap). */
static int grow(struct store *st, void **arr, size_t *cap, size_t n, size_t elsize, size_t max)
{
    if (n < *cap)
        return 0;
    if (n >= max) {
        set_err(st, "result larger than %zu rows", max);
        return -EFBIG;
    }
    size_t ncap = *cap ? *cap * 2 : 16;
    if (ncap > max)
        ncap = max;
    *arr = xrealloc(*arr, ncap * elsize);
    memset((char *)*arr + *cap * elsize, 0, (ncap - *cap) * elsize);
    *cap = ncap;
    return 0;
}

/* Reads every row of s into an array of elsize-byte elements filled by fill().
 * On failure, free_rows() releases what was read. */
typedef void (*fill_fn)(sqlite3_stmt *s, void *row);
typedef void (*free_rows_fn)(void *rows, size_t n);
static int stmt_collect(struct store *st, sqlite3_stmt *s, size_t elsize, size_t max, fill_fn fill,
                        free_rows_fn free_rows, void **rows, size_t *nrows)
{
    void *arr = NULL;
    size_t n = 0, cap = 0;
    int ret;
    while ((ret = stmt_step(st, s)) == 1) {
        ret = grow(st, &arr, &cap, n, elsize, max);
        if (ret < 0)
            break;
        fill(s, (char *)arr + n * elsize);
        n++;
    }
    sqlite3_reset(s);
    if (ret < 0) {
        free_rows(arr, n);
        return ret;
    }
    *rows = arr;
    *nrows = n;
    return 0;
}

/* ---- open, close, transactions ------------------------------------------------- */

static int exec_sql(struct store *st, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        set_err(st, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return sqlite_to_errno(rc);
    }
    return 0;
}

/* Current schema version; 0 for a new database. Only reads, so that opening the
 * store never waits for a writer. */
static int schema_version(struct store *st, int64_t *version)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get(st, S_VERSION_TABLE, &s);
    if (ret < 0)
        return ret;
    ret = stmt_step(st, s);
    sqlite3_reset(s);
    if (ret <= 0) {
        if (ret == 0)
            *version = 0;
        return ret;
    }
    ret = stmt_get(st, S_VERSION_GET, &s);
    if (ret < 0)
        return ret;
    ret = stmt_step(st, s);
    *version = ret == 1 ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return ret < 0 ? ret : 0;
}

/* Applies migration v (to version v + 1) in its own transaction, unless another
 * process already did. */
static int migrate_one(struct store *st, int64_t v)
{
    sqlite3_stmt *s = NULL;
    int64_t now = 0;
    int ret = exec_sql(st, "BEGIN IMMEDIATE");
    if (ret < 0)
        return ret;
    ret = exec_sql(st, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);"
                       "INSERT INTO schema_version(version) SELECT 0"
                       " WHERE NOT EXISTS (SELECT 1 FROM schema_version)");
    if (ret == 0)
        ret = schema_version(st, &now);
    if (ret < 0 || now != v)
        goto out;
    ret = exec_sql(st, migrations[v]);
    if (ret < 0)
        goto out;
    ret = stmt_get(st, S_VERSION_SET, &s);
    if (ret < 0)
        goto out;
    sqlite3_bind_int64(s, 1, v + 1);
    ret = stmt_exec(st, s, true);
out:
    if (ret < 0) {
        exec_sql(st, "ROLLBACK");
        return ret;
    }
    return exec_sql(st, "COMMIT");
}

static int migrate(struct store *st)
{
    int64_t v = 0;
    int ret = schema_version(st, &v);
    while (ret == 0 && v < STORE_SCHEMA_VERSION) {
        ret = migrate_one(st, v);
        if (ret == 0)
            ret = schema_version(st, &v);
    }
    if (ret == 0 && v > STORE_SCHEMA_VERSION) {
        set_err(st, "results store schema version %lld is newer than this sonde (%d)", (long long)v,
                STORE_SCHEMA_VERSION);
        ret = -EPROTO;
    }
    return ret;
}

static int configure(struct store *st)
{
    int rc = sqlite3_busy_timeout(st->db, STORE_BUSY_MS);
    if (rc != SQLITE_OK)
        return db_fail(st, rc);
    sqlite3_extended_result_codes(st->db, 1);
    return exec_sql(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                        " PRAGMA foreign_keys=ON");
}

int store_open(const char *workspace, struct store **out)
{
    struct store *st = xcalloc(1, sizeof(*st));
    char *path = NULL;
    int ret = mkdir_p(workspace, 0755);
    if (ret < 0) {
        set_err(st, "cannot create workspace %s: %s", workspace, strerror(-ret));
        goto out;
    }
    path = path_join(workspace, "sonde.db");
    int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        set_err(st, "cannot open %s: %s", path, st->db ? sqlite3_errmsg(st->db) : "no memory");
        ret = sqlite_to_errno(rc);
        goto out;
    }
    ret = configure(st);
    if (ret == 0)
        ret = migrate(st);
out:
    free(path);
    if (ret < 0) {
        snprintf(open_errmsg, sizeof(open_errmsg), "%s", st->errmsg);
        store_close(st);
        return ret;
    }
    *out = st;
    return 0;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < S__COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    sqlite3_close(st->db);
    free(st);
}

int store_begin(struct store *st)
{
    if (!sqlite3_get_autocommit(st->db)) {
        set_err(st, "a transaction is already open");
        return -EBUSY;
    }
    return exec_sql(st, "BEGIN IMMEDIATE");
}

int store_commit(struct store *st)
{
    return exec_sql(st, "COMMIT");
}

int store_rollback(struct store *st)
{
    if (sqlite3_get_autocommit(st->db))
        return 0;
    return exec_sql(st, "ROLLBACK");
}

/* ---- sessions --------------------------------------------------------------------- */

void session_row_free(struct session_row *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->name);
    free(r->recipe_path);
    free(r->backend);
    free(r->state);
    free(r->reason);
    free(r->dir);
    free(r->host);
    memset(r, 0, sizeof(*r));
}

void session_rows_free(struct session_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        session_row_free(&rows[i]);
    free(rows);
}

static const char *const session_states[] = {"pending",   "starting",    "running",
                                             "stopping",  "done",        "failed",
                                             "cancelled", "interrupted", NULL};

static bool state_is_final(const char *state)
{
    return !strcmp(state, "done") || !strcmp(state, "failed") || !strcmp(state, "cancelled") ||
           !strcmp(state, "interrupted");
}

static bool state_known(const char *state)
{
    for (size_t i = 0; session_states[i]; i++)
        if (!strcmp(session_states[i], state))
            return true;
    return false;
}

int store_session_create(struct store *st, const struct session_row *r)
{
    sqlite3_stmt *s = NULL;
    if (!r->id || !r->name || !r->state || !state_known(r->state)) {
        set_err(st, "session needs an id, a name and a known state");
        return -EINVAL;
    }
    int ret = stmt_get(st, S_SESSION_INSERT, &s);
    if (ret < 0)
        return ret;
    const char *text[] = {r->id,    r->name,   r->recipe_path, r->backend,
                          r->state, r->reason, r->dir,         r->host};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(text); i++)
        bind_text(s, (int)i + 1, text[i]);
    sqlite3_bind_int64(s, 9, r->pid);
    sqlite3_bind_int64(s, 10, r->created ? r->created : wall_ns());
    sqlite3_bind_int64(s, 11, r->started);
    sqlite3_bind_int64(s, 12, r->ended);
    return stmt_exec(st, s, false);
}

int store_session_set_state(struct store *st, const char *id, const char *state, const char *reason)
{
    sqlite3_stmt *s = NULL;
    if (!state || !state_known(state)) {
        set_err(st, "unknown session state '%s'", state ? state : "(null)");
        return -EINVAL;
    }
    bool final = state_is_final(state);
    int ret = stmt_get(st, final ? S_SESSION_STATE_FINAL : S_SESSION_STATE, &s);
    if (ret < 0)
        return ret;
    bind_text(s, 1, id);
    bind_text(s, 2, state);
    bind_text(s, 3, reason);
    if (final)
        sqlite3_bind_int64(s, 4, wall_ns());
    return stmt_exec(st, s, true);
}

int store_session_set_started(struct store *st, const char *id, int64_t t)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get(st, S_SESSION_STARTED, &s);
    if (ret < 0)
        return ret;
    bind_text(s, 1, id);
    sqlite3_bind_int64(s, 2, t);
    return stmt_exec(st, s, true);
}

static void fill_session(sqlite3_stmt *s, void *row)
{
    struct session_row *r = row;
    r->id = col_str(s, 0);
    r->name = col_str(s, 1);
    r->recipe_path = col_str(s, 2);
    r->backend = col_str(s, 3);
    r->state = col_str(s, 4);
    r->reason = col_str(s, 5);
    r->dir = col_str(s, 6);
    r->host = col_str(s, 7);
    r->pid = sqlite3_column_int64(s, 8);
    r->created = sqlite3_column_int64(s, 9);
    r->started = sqlite3_column_int64(s, 10);
    r->ended = sqlite3_column_int64(s, 11);
}

static void free_sessions(void *rows, size_t n)
{
    session_rows_free(rows, n);
}

/* Runs a session query bound to key; -ENOENT with no row, -EEXIST with two. */
static int session_query(struct store *st, enum stmt_id id, const char *key,
                         struct session_row *out)
{
    sqlite3_stmt *s = NULL;
    struct session_row *rows = NULL;
    size_t n = 0;
    int ret = stmt_get(st, id, &s);
    if (ret < 0)
        return ret;
    if (key)
        bind_text(s, 1, key);
    ret = stmt_collect(st, s, sizeof(*rows), 2, fill_session, free_sessions, (void **)&rows, &n);
    if (ret < 0)
        return ret;
    if (n != 1) {
        set_err(st, n ? "session id '%s' is ambiguous" : "no session '%s'", key ? key : "latest");
        ret = n ? -EEXIST : -ENOENT;
    } else {
        *out = rows[0];
        n = 0;
    }
    session_rows_free(rows, n);
    return ret;
}

int store_session_get(struct store *st, const char *id, struct session_row *out)
{
    if (!id || !*id) {
        set_err(st, "empty session id");
        return -EINVAL;
    }
    if (!strcmp(id, "latest"))
        return session_query(st, S_SESSION_LATEST, NULL, out);
    int ret = session_query(st, S_SESSION_BY_ID, id, out);
    if (ret == -ENOENT)
        ret = session_query(st, S_SESSION_BY_PREFIX, id, out);
    return ret;
}

int store_session_list(struct store *st, struct session_row **rows, size_t *n)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get(st, S_SESSION_LIST, &s);
    if (ret < 0)
        return ret;
    return stmt_collect(st, s, sizeof(**rows), STORE_LIST_MAX, fill_session, free_sessions,
                        (void **)rows, n);
}

int64_t session_lock_holder(const struct session_row *r)
{
    if (!r->dir)
        return -1;
    char *path = xasprintf("%s/.lock", r->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    free(path);
    if (fd < 0)
        return -1;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int rc = fcntl(fd, F_GETLK, &fl);
    close(fd);
    if (rc < 0)
        return -1;
    return fl.l_type == F_UNLCK ? 0 : (int64_t)fl.l_pid;
}

bool session_state_live(const char *state)
{
    static const char *const live[] = {"pending", "starting", "running", "stopping"};
    for (size_t i = 0; state && i < SONDE_ARRAY_LEN(live); i++)
        if (!strcmp(state, live[i]))
            return true;
    return false;
}

bool store_session_over(struct store *st, const char *id)
{
    struct session_row s = {0};
    bool over =
        store_session_get(st, id, &s) < 0 || !session_state_live(session_effective_state(&s));
    session_row_free(&s);
    return over;
}

const char *session_effective_state(const struct session_row *r)
{
    char host[256];
    if (!r->state)
        return "unknown";
    if (!session_state_live(r->state) || r->pid <= 0 || r->pid > INT32_MAX || !r->host)
        return r->state;
    if (gethostname(host, sizeof(host)) < 0)
        return r->state;
    host[sizeof(host) - 1] = '\0';
    if (strcmp(host, r->host) != 0)
        return r->state;
    /* The session's lock tells the truth; a pid alone may have been reused. */
    int64_t holder = session_lock_holder(r);
    if (holder == 0 || (holder < 0 && kill((pid_t)r->pid, 0) < 0 && errno == ESRCH))
        return "interrupted";
    return r->state;
}

/* ---- provenance ------------------------------------------------------------------ */

int store_provenance_put(struct store *st, const char *session, const char *key, const char *value)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get(st, S_PROV_PUT, &s);
    if (ret < 0)
        return ret;
    bind_text(s, 1, session);
    bind_text(s, 2, key);
    bind_text(s, 3, value);
    return stmt_exec(st, s, false);
}

void kv_rows_free(struct kv_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].key);
        free(rows[i].value);
    }
    free(rows);
}

static void fill_kv(sqlite3_stmt *s, void *row)
{
    struct kv_row *r = row;
    r->key = col_str(s, 0);
    r->value = col_str(s, 1);
}

static void free_kvs(void *rows, size_t n)
{
    kv_rows_free(rows, n);
}

int store_provenance_list(struct store *st, const char *session, struct kv_row **rows, size_t *n)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get(st, S_PROV_LIST, &s);
    if (ret < 0)
        return ret;
    bind_text(s, 1, session);
    return stmt_collect(st, s, sizeof(**rows), STORE_LIST_MAX, fill_kv, free_kvs, (void **)rows, n);
}

/* ---- trials ------------------------------------------------------------------------ */

void trial_row_free(struct trial_row *r)
{
    if (!r)
        return;
    free(r->session);
    free(r->label);
    free(r->matrix);
    free(r->state);
    free(r->reason);
    memset(r, 0, sizeof(*r));
}

void trial_rows_free(struct trial_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        trial_row_free(&rows[i]);
    free(rows);
}

int store_trial_create(struct store *st, const struct trial_row *r, int64_t *id)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get(st, S_TRIAL_INSERT, &s);
    if (ret < 0)
        return ret;
    bind_text(s, 1, r->session);
    sqlite3_bind_int64(s, 2, r->idx);
    bind_text(s, 3, r->label);
    bind_text(s, 4, r->matrix);
    sqlite3_bind_int64(s, 5, r->repetition);
    bind_text(s, 6, r->state ? r->state : "running");
    bind_text(s, 7, r->reason);
    sqlite3_bind_int64(s, 8, r->started);
    sqlite3_bind_int64(s, 9, r->ended);
    ret = stmt_exec(st, s, false);
    if (ret == 0)
        *id = sqlite3_last_insert_rowid(st->db);
    return ret;
}

int store_trial_finish(struct store *st, int64_t id, const char *state, const char *reason,
                       int64_t ended)
{
    sqlite3_stmt *s = NULL;
    if (!state) {
        set_err(st, "trial state is required");
        return -EINVAL;
    }
    int ret = stmt_get(st, S_TRIAL_FINISH, &s);
    if (ret < 0)
        return ret;
    sqlite3_bind_int64(s, 1, id);
    bind_text(s, 2, state);
    bind_text(s, 3, reason);
    sqlite3_bind_int64(s, 4, ended);
    return stmt_exec(st, s, true);
}

static void fill_trial(sqlite3_stmt *s, void *row)
{
    struct trial_row *r = row;
    r->id = sqlite3_column_int64(s, 0);
    r->session = col_str(s, 1);
    r->idx = sqlite3_column_int64(s, 2);
    r->label = col_str(s, 3);
    r->matrix = col_str(s, 4);
    r->repetition = sqlite3_column_int64(s, 5);
    r->state = col_str(s, 6);
    r->reason = col_str(s, 7);
    r->started = sqlite3_column_int64(s, 8);
    r->ended = sqlite3_column_int64(s, 9);
}

static void free_trials(void *rows, size_t n)
{
    trial_rows_free(rows, n);
}

int store_trial_list(struct store *st, const char *session, struct trial_row **rows, size_t *n)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get(st, S_TRIAL_LIST, &s);
    if (ret < 0)
        return ret;
    bind_text(s, 1, session);
    return stmt_collect(st, s, sizeof(**rows), STORE_LIST_MAX, fill_trial, free_trials,
                        (void **)rows, n);
}

/* ---- components ----------------------------------------------------------------------- */

void component_row_free(struct component_row *r)
{
    if (!r)
        return;
    free(r->session);
    free(r->name);
    free(r->role);
    free(r->driver);
    free(r->command);
    free(r->host);
    free(r->log_path);
    free(r->state);
    free(r->reason);
    memset(r, 0, sizeof(*r));
}

void component_rows_free(struct component_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        component_row_free(&rows[i]);
    free(rows);
}

int store_component_create(struct store *st, const struct component_row *r, int64_t *id)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get(st, S_COMP_INSERT, &s);
    if (ret < 0)
        return ret;
    bind_text(s, 1, r->session);
    bind_trial(s, 2, r->trial_id);
    const char *text[] = {r->name, r->role, r->driver, r->command, r->host, r->log_path};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(text); i++)
        bind_text(s, (int)i + 3, text[i]);
    sqlite3_bind_int64(s, 9, r->pid);
    sqlite3_bind_int64(s, 10, r->exit_code);
    sqlite3_bind_int64(s, 11, r->exit_signal);
    bind_text(s, 12, r->state ? r->state : "starting");
    bind_text(s, 13, r->reason);
    sqlite3_bind_int64(s, 14, r->started);
    sqlite3_bind_int64(s, 15, r->ended);
    ret = stmt_exec(st, s, false);
    if (ret == 0)
        *id = sqlite3_last_insert_rowid(st->db);
    return ret;
}

int store_component_update(struct store *st, const struct component_row *r)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get(st, S_COMP_UPDATE, &s);
    if (ret < 0)
        return ret;
    sqlite3_bind_int64(s, 1, r->id);
    sqlite3_bind_int64(s, 2, r->pid);
    bind_text(s, 3, r->command);
    bind_text(s, 4, r->host);
    bind_text(s, 5, r->state ? r->state : "starting");
    bind_text(s, 6, r->reason);
    sqlite3_bind_int64(s, 7, r->exit_code);
    sqlite3_bind_int64(s, 8, r->exit_signal);
    sqlite3_bind_int64(s, 9, r->started);
    sqlite3_bind_int64(s, 10, r->ended);
    return stmt_exec(st, s, true);
}

static void fill_component(sqlite3_stmt *s, void *row)
{
    struct component_row *r = row;
    r->id = sqlite3_column_int64(s, 0);
    r->session = col_str(s, 1);
    r->trial_id = sqlite3_column_int64(s, 2);
    r->name = col_str(s, 3);
    r->role = col_str(s, 4);
    r->driver = col_str(s, 5);
    r->command = col_str(s, 6);
    r->host = col_str(s, 7);
    r->log_path = col_str(s, 8);
    r->pid = sqlite3_column_int64(s, 9);
    r->exit_code = sqlite3_column_int64(s, 10);
    r->exit_signal = sqlite3_column_int64(s, 11);
    r->state = col_str(s, 12);
    r->reason = col_str(s, 13);
    r->started = sqlite3_column_int64(s, 14);
    r->ended = sqlite3_column_int64(s, 15);
}

static void free_components(void *rows, size_t n)
{
    component_rows_free(rows, n);
}

/* Binds session (and trial_id unless it is negative) to the _ALL or _TRIAL statement. */
static int stmt_get_scoped(struct store *st, enum stmt_id all, enum stmt_id one,
                           const char *session, int64_t trial_id, sqlite3_stmt **out)
{
    int ret = stmt_get(st, trial_id < 0 ? all : one, out);
    if (ret < 0)
        return ret;
    bind_text(*out, 1, session);
    if (trial_id >= 0)
        sqlite3_bind_int64(*out, 2, trial_id);
    return 0;
}

int store_component_list(struct store *st, const char *session, int64_t trial_id,
                         struct component_row **rows, size_t *n)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get_scoped(st, S_COMP_LIST_ALL, S_COMP_LIST_TRIAL, session, trial_id, &s);
    if (ret < 0)
        return ret;
    return stmt_collect(st, s, sizeof(**rows), STORE_LIST_MAX, fill_component, free_components,
                        (void **)rows, n);
}

/* ---- metrics ------------------------------------------------------------------------- */

int store_metric_put(struct store *st, const char *session, const struct metric_row *m)
{
    sqlite3_stmt *s = NULL;
    if (!m->component || !m->name) {
        set_err(st, "metric needs a component and a name");
        return -EINVAL;
    }
    int ret = stmt_get(st, S_METRIC_PUT, &s);
    if (ret < 0)
        return ret;
    bind_text(s, 1, session);
    bind_trial(s, 2, m->trial_id);
    bind_text(s, 3, m->component);
    bind_text(s, 4, m->name);
    bind_text(s, 5, m->unit);
    bind_text(s, 6, m->labels);
    sqlite3_bind_double(s, 7, m->value);
    return stmt_exec(st, s, false);
}

void metric_rows_free(struct metric_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].component);
        free(rows[i].name);
        free(rows[i].unit);
        free(rows[i].labels);
    }
    free(rows);
}

static void fill_metric(sqlite3_stmt *s, void *row)
{
    struct metric_row *r = row;
    r->trial_id = sqlite3_column_int64(s, 0);
    r->component = col_str(s, 1);
    r->name = col_str(s, 2);
    r->unit = col_str(s, 3);
    r->labels = col_str(s, 4);
    r->value = sqlite3_column_double(s, 5);
}

static void free_metrics(void *rows, size_t n)
{
    metric_rows_free(rows, n);
}

int store_metric_list(struct store *st, const char *session, int64_t trial_id,
                      struct metric_row **rows, size_t *n)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get_scoped(st, S_METRIC_LIST_ALL, S_METRIC_LIST_TRIAL, session, trial_id, &s);
    if (ret < 0)
        return ret;
    return stmt_collect(st, s, sizeof(**rows), STORE_LIST_MAX, fill_metric, free_metrics,
                        (void **)rows, n);
}

/* ---- series ----------------------------------------------------------------------------- */

static void bind_series_key(sqlite3_stmt *s, const char *session, const char *component,
                            const char *name)
{
    bind_text(s, 1, session);
    bind_text(s, 3, component);
    bind_text(s, 4, name);
}

int store_series_get_or_create(struct store *st, const char *session, int64_t trial_id,
                               const char *component, const char *name, const char *unit,
                               const char *labels, int64_t *id)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get(st, S_SERIES_INSERT, &s);
    if (ret < 0)
        return ret;
    bind_series_key(s, session, component, name);
    bind_trial(s, 2, trial_id);
    bind_text(s, 5, unit);
    bind_text(s, 6, labels);
    ret = stmt_exec(st, s, false);
    if (ret < 0)
        return ret;
    ret = stmt_get(st, S_SERIES_FIND, &s);
    if (ret < 0)
        return ret;
    bind_series_key(s, session, component, name);
    sqlite3_bind_int64(s, 2, trial_id > 0 ? trial_id : 0);
    bind_text(s, 5, labels);
    ret = stmt_step(st, s);
    if (ret == 1)
        *id = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (ret == 0) {
        set_err(st, "series %s/%s was not created", component, name);
        ret = -EIO;
    }
    return ret < 0 ? ret : 0;
}

int store_series_append(struct store *st, int64_t series_id, int64_t t, double v)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get(st, S_SERIES_APPEND, &s);
    if (ret < 0)
        return ret;
    sqlite3_bind_int64(s, 1, series_id);
    sqlite3_bind_int64(s, 2, t);
    sqlite3_bind_double(s, 3, v);
    return stmt_exec(st, s, false);
}

void series_rows_free(struct series_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].component);
        free(rows[i].name);
        free(rows[i].unit);
        free(rows[i].labels);
    }
    free(rows);
}

static void fill_series(sqlite3_stmt *s, void *row)
{
    struct series_row *r = row;
    r->id = sqlite3_column_int64(s, 0);
    r->trial_id = sqlite3_column_int64(s, 1);
    r->component = col_str(s, 2);
    r->name = col_str(s, 3);
    r->unit = col_str(s, 4);
    r->labels = col_str(s, 5);
    r->npoints = (size_t)sqlite3_column_int64(s, 6);
}

static void free_series(void *rows, size_t n)
{
    series_rows_free(rows, n);
}

int store_series_list(struct store *st, const char *session, int64_t trial_id,
                      struct series_row **rows, size_t *n)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get_scoped(st, S_SERIES_LIST_ALL, S_SERIES_LIST_TRIAL, session, trial_id, &s);
    if (ret < 0)
        return ret;
    return stmt_collect(st, s, sizeof(**rows), STORE_LIST_MAX, fill_series, free_series,
                        (void **)rows, n);
}

static void fill_point(sqlite3_stmt *s, void *row)
{
    struct point *p = row;
    p->t = sqlite3_column_int64(s, 0);
    p->v = sqlite3_column_double(s, 1);
}

static void free_points(void *rows, size_t n)
{
    (void)n;
    free(rows);
}

int store_series_points(struct store *st, int64_t series_id, struct point **pts, size_t *n)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get(st, S_SERIES_POINTS, &s);
    if (ret < 0)
        return ret;
    sqlite3_bind_int64(s, 1, series_id);
    return stmt_collect(st, s, sizeof(**pts), STORE_POINTS_MAX, fill_point, free_points,
                        (void **)pts, n);
}

/* ---- events ------------------------------------------------------------------------------ */

int store_event_add(struct store *st, const char *session, int64_t trial_id, const char *level,
                    const char *message)
{
    sqlite3_stmt *s = NULL;
    if (!level || !message) {
        set_err(st, "event needs a level and a message");
        return -EINVAL;
    }
    int ret = stmt_get(st, S_EVENT_ADD, &s);
    if (ret < 0)
        return ret;
    bind_text(s, 1, session);
    bind_trial(s, 2, trial_id);
    sqlite3_bind_int64(s, 3, wall_ns());
    bind_text(s, 4, level);
    bind_text(s, 5, message);
    return stmt_exec(st, s, false);
}

void event_rows_free(struct event_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].level);
        free(rows[i].message);
    }
    free(rows);
}

static void fill_event(sqlite3_stmt *s, void *row)
{
    struct event_row *r = row;
    r->t = sqlite3_column_int64(s, 0);
    r->trial_id = sqlite3_column_int64(s, 1);
    r->level = col_str(s, 2);
    r->message = col_str(s, 3);
}

static void free_events(void *rows, size_t n)
{
    event_rows_free(rows, n);
}

int store_event_list(struct store *st, const char *session, struct event_row **rows, size_t *n)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get(st, S_EVENT_LIST, &s);
    if (ret < 0)
        return ret;
    bind_text(s, 1, session);
    return stmt_collect(st, s, sizeof(**rows), STORE_LIST_MAX, fill_event, free_events,
                        (void **)rows, n);
}

/* ---- histograms ---------------------------------------------------------------------------- */

int store_histogram_put(struct store *st, const char *session, const struct histogram_row *h)
{
    sqlite3_stmt *s = NULL;
    if (!h->component || !h->name || !h->encoding || h->len == 0 || h->len > STORE_BLOB_MAX) {
        set_err(st, "histogram needs a component, a name and an encoding of 1..%zu bytes",
                STORE_BLOB_MAX);
        return -EINVAL;
    }
    int ret = stmt_get(st, S_HIST_PUT, &s);
    if (ret < 0)
        return ret;
    bind_text(s, 1, session);
    bind_trial(s, 2, h->trial_id);
    bind_text(s, 3, h->component);
    bind_text(s, 4, h->name);
    bind_text(s, 5, h->unit);
    bind_text(s, 6, h->labels);
    sqlite3_bind_int64(s, 7, h->sigfigs);
    sqlite3_bind_blob64(s, 8, h->encoding, h->len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 9, (int64_t)h->count);
    return stmt_exec(st, s, false);
}

void histogram_rows_free(struct histogram_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].component);
        free(rows[i].name);
        free(rows[i].unit);
        free(rows[i].labels);
        free(rows[i].encoding);
    }
    free(rows);
}

static void fill_histogram(sqlite3_stmt *s, void *row)
{
    struct histogram_row *r = row;
    r->trial_id = sqlite3_column_int64(s, 0);
    r->component = col_str(s, 1);
    r->name = col_str(s, 2);
    r->unit = col_str(s, 3);
    r->labels = col_str(s, 4);
    r->sigfigs = sqlite3_column_int64(s, 5);
    const void *blob = sqlite3_column_blob(s, 6);
    int len = sqlite3_column_bytes(s, 6);
    r->len = blob && len > 0 ? (size_t)len : 0;
    r->encoding = xmalloc(r->len ? r->len : 1);
    if (r->len)
        memcpy(r->encoding, blob, r->len);
    r->count = (uint64_t)sqlite3_column_int64(s, 7);
}

static void free_histograms(void *rows, size_t n)
{
    histogram_rows_free(rows, n);
}

int store_histogram_list(struct store *st, const char *session, int64_t trial_id,
                         struct histogram_row **rows, size_t *n)
{
    sqlite3_stmt *s = NULL;
    int ret = stmt_get_scoped(st, S_HIST_LIST_ALL, S_HIST_LIST_TRIAL, session, trial_id, &s);
    if (ret < 0)
        return ret;
    return stmt_collect(st, s, sizeof(**rows), STORE_LIST_MAX, fill_histogram, free_histograms,
                        (void **)rows, n);
}

/* ---- reads for `sonde metrics` ---------------------------------------------------------------
 * Prepared per call (not cached in stmt_sql[]): they run once per series or
 * once a second, where preparing costs nothing worth caching. */

static int prepare_once(struct store *st, const char *sql, sqlite3_stmt **out)
{
    int rc = sqlite3_prepare_v2(st->db, sql, -1, out, NULL);
    return rc == SQLITE_OK ? 0 : db_fail(st, rc);
}

int store_series_stats(struct store *st, int64_t series_id, struct series_stats *out)
{
    static const char sql[] =
        "SELECT COUNT(*), MIN(t), MAX(t), MIN(v), AVG(v), MAX(v), (SELECT v FROM series_points"
        " WHERE series_id = ?1 ORDER BY t DESC, rowid DESC LIMIT 1) FROM series_points"
        " WHERE series_id = ?1";
    sqlite3_stmt *s = NULL;
    int ret = prepare_once(st, sql, &s);
    if (ret < 0)
        return ret;
    sqlite3_bind_int64(s, 1, series_id);
    ret = stmt_step(st, s);
    if (ret == 1) {
        struct series_stats r = {.n = (size_t)sqlite3_column_int64(s, 0)};
        if (r.n) {
            r.first = sqlite3_column_int64(s, 1);
            r.last = sqlite3_column_int64(s, 2);
            r.min = sqlite3_column_double(s, 3);
            r.mean = sqlite3_column_double(s, 4);
            r.max = sqlite3_column_double(s, 5);
            r.last_value = sqlite3_column_double(s, 6);
        }
        *out = r;
    }
    sqlite3_finalize(s);
    return ret < 0 ? ret : 0;
}

static void fill_point_row(sqlite3_stmt *s, void *row)
{
    struct point_row *p = row;
    p->seq = sqlite3_column_int64(s, 0);
    p->series_id = sqlite3_column_int64(s, 1);
    p->t = sqlite3_column_int64(s, 2);
    p->v = sqlite3_column_double(s, 3);
}

int store_points_after(struct store *st, const char *session, int64_t after, size_t max,
                       struct point_row **rows, size_t *n)
{
    /* CROSS JOIN keeps the points' rowid range as the outer loop: new points
     * are found at the end of the table, whatever the session's size. */
    static const char sql[] = "SELECT p.rowid, p.series_id, p.t, p.v FROM series_points p"
                              " CROSS JOIN series s ON s.id = p.series_id"
                              " WHERE p.rowid > ?2 AND s.session_id = ?1 ORDER BY p.rowid LIMIT ?3";
    if (max == 0 || max > ((size_t)1 << 20)) {
        set_err(st, "points per read must be 1..%zu", (size_t)1 << 20);
        return -EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int ret = prepare_once(st, sql, &s);
    if (ret < 0)
        return ret;
    bind_text(s, 1, session);
    sqlite3_bind_int64(s, 2, after);
    sqlite3_bind_int64(s, 3, (int64_t)max);
    ret = stmt_collect(st, s, sizeof(**rows), max, fill_point_row, free_points, (void **)rows, n);
    sqlite3_finalize(s);
    return ret;
}

int store_points_last_seq(struct store *st, int64_t *seq)
{
    sqlite3_stmt *s = NULL;
    int ret = prepare_once(st, "SELECT COALESCE(MAX(rowid), 0) FROM series_points", &s);
    if (ret < 0)
        return ret;
    ret = stmt_step(st, s);
    if (ret == 1)
        *seq = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return ret < 0 ? ret : 0;
}
