/* db.h — what the sql client needs from a database engine (PostgreSQL through libpq,
 * MariaDB/MySQL through libmariadb): non-blocking connections and operations driven by
 * the caller's event loop. Another engine is one more file implementing sql_db_ops.
 *
 * Every operation is started by a *_start call and advanced by cont() each time the
 * connection's socket is ready as asked. Both return SQL_DONE (0) when the operation has
 * finished (its outcome then in result()), a mask of SQL_WANT_READ / SQL_WANT_WRITE to
 * wait for, or SQL_WANT_FAIL when the connection is unusable (result() says why). A
 * connection runs one operation at a time. */
#ifndef SONDE_SQL_DB_H
#define SONDE_SQL_DB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { SQL_DONE = 0, SQL_WANT_READ = 1, SQL_WANT_WRITE = 2, SQL_WANT_FAIL = 4 };

/* Error classes: every failed transaction is counted in exactly one. */
enum sql_err {
    SQL_OK = -1,
    SQL_ERR_CONNECT = 0,   /* the connection could not be made */
    SQL_ERR_AUTH,          /* refused: password or authorization */
    SQL_ERR_LOST,          /* the connection broke mid-run */
    SQL_ERR_SERIALIZATION, /* serialization failure (SQLSTATE 40001) */
    SQL_ERR_DEADLOCK,      /* deadlock detected (40P01, MySQL 1213) */
    SQL_ERR_CONSTRAINT,    /* integrity constraint violation (23xxx) */
    SQL_ERR_TIMEOUT,       /* statement or connect timeout */
    SQL_ERR_SYNTAX,        /* the server rejected a statement: syntax or access (42xxx) */
    SQL_ERR_OTHER,         /* any other error the server reported */
    SQL_ERR_COUNT
};
const char *sql_err_name(int e); /* "connect", "auth", ... */

struct sql_res {
    enum sql_err err; /* SQL_OK on success */
    char sqlstate[6]; /* "" when unknown */
    char msg[256];    /* the server's or the library's message (one line) */
    uint64_t rows;    /* rows returned or affected */
};

/* Where to connect. Passwords are read by the caller from the environment or a
 * file and passed here only. */
struct sql_target {
    const char *host, *port, *user, *password, *database;
    int connect_timeout_s; /* 0: none */
};

struct sql_conn;

struct sql_db_ops {
    const char *name;             /* "postgres" */
    bool dollar_params;           /* $1, $2 placeholders (else ?) */
    const char *default_user;     /* when the recipe names none */
    const char *default_database; /* idem */
    int (*connect_start)(const struct sql_target *t, struct sql_conn **out);
    int (*fd)(const struct sql_conn *c); /* the socket, -1 while unknown */
    int (*prepare_start)(struct sql_conn *c, int id, const char *sql, int nparams);
    /* the prepared statement id with its integer parameters */
    int (*exec_start)(struct sql_conn *c, int id, int nparams, const int64_t *values);
    int (*query_start)(struct sql_conn *c, const char *sql); /* not prepared, no parameters */
    int (*cont)(struct sql_conn *c);
    void (*result)(struct sql_conn *c, struct sql_res *res);
    bool (*in_tx)(const struct sql_conn *c); /* inside a transaction (failed or not) */
    void (*close)(struct sql_conn *c);       /* NULL is fine */
    /* The statements that create and fill pgbench's tables at scale (server side,
     * as pgbench -I dtGvp), NULL-terminated; caller frees with strv_free. */
    char **(*tpcb_init_sql)(int scale);
};

extern const struct sql_db_ops sql_db_postgres, sql_db_mariadb;
/* The engine named name ("postgres", "mariadb"), or NULL. */
const struct sql_db_ops *sql_db_find(const char *name);
extern const char *const sql_db_names[];

/* Runs a started operation (rc: what its start returned) to its end, waiting with
 * poll() (setup and init, not the measured loop); timeout_ns <= 0: none; *stop (may
 * be NULL) set ends the wait. SQL_DONE or SQL_WANT_FAIL, the outcome in *res (a
 * timeout or a stop as SQL_ERR_TIMEOUT). */
int sql_block(const struct sql_db_ops *db, struct sql_conn *c, int rc, int64_t timeout_ns,
              const atomic_bool *stop, struct sql_res *res);

#endif
