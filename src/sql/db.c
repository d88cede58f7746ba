/* db.c — what every database engine of the sql client shares (db.h). */
#include "sql/db.h"

#include "util/util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

static const char *const err_names[SQL_ERR_COUNT] = {
    "connect",    "auth",    "lost",   "serialization", "deadlock",
    "constraint", "timeout", "syntax", "other",
};

const char *sql_err_name(int e)
{
    return e >= 0 && e < SQL_ERR_COUNT ? err_names[e] : "?";
}

const char *const sql_db_names[] = {"postgres", "mariadb", "mysql", NULL};

const struct sql_db_ops *sql_db_find(const char *name)
{
    if (name && !strcmp(name, "postgres"))
        return &sql_db_postgres;
    if (name && (!strcmp(name, "mariadb") || !strcmp(name, "mysql")))
        return &sql_db_mariadb;
    return NULL;
}

int sql_block(const struct sql_db_ops *db, struct sql_conn *c, int rc, int64_t timeout_ns,
              const atomic_bool *stop, struct sql_res *res)
{
    int64_t deadline = timeout_ns > 0 ? mono_ns() + timeout_ns : 0;
    while (rc != SQL_DONE && !(rc & SQL_WANT_FAIL)) {
        int64_t now = mono_ns();
        if ((deadline && now >= deadline) || (stop && atomic_load(stop))) {
            memset(res, 0, sizeof(*res));
            res->err = SQL_ERR_TIMEOUT;
            snprintf(res->msg, sizeof(res->msg), "%s",
                     stop && atomic_load(stop) ? "stopped" : "no answer in time");
            return SQL_WANT_FAIL;
        }
        struct pollfd p = {.fd = db->fd(c),
                           .events = (short)(((rc & SQL_WANT_READ) ? POLLIN : 0) |
                                             ((rc & SQL_WANT_WRITE) ? POLLOUT : 0))};
        int ms = 100;
        if (deadline && (deadline - now) / 1000000 < ms)
            ms = (int)((deadline - now) / 1000000) + 1;
        int n = poll(&p, 1, ms);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0)
            rc = db->cont(c);
    }
    db->result(c, res);
    if (rc != SQL_DONE && res->err == SQL_OK) {
        res->err = SQL_ERR_LOST;
        snprintf(res->msg, sizeof(res->msg), "poll: %s", strerror(errno));
    }
    return rc == SQL_DONE ? SQL_DONE : SQL_WANT_FAIL;
}
