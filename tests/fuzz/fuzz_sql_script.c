/* fuzz_sql_script.c — libFuzzer target: any bytes through the sql client's script
 * parser; a failure must say file:line, a script that parses must be consistent
 * (statements numbered in order, parameters naming variables set before them) and
 * evaluate without crashing, whatever the values. */
#include "sql/script.h"
#include "util/rng.h"
#include "util/util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sql_script *s = NULL;
    char err[512];
    if (sql_script_parse("f.sql", (const char *)data, size, &s, err, sizeof(err)) != 0) {
        if (s || !memchr(err, '\0', sizeof(err)) || strncmp(err, "f.sql:", 6))
            abort();
        return 0;
    }
    struct rng r;
    rng_seed(&r, size);
    int64_t vars[SQL_VARS_MAX];
    for (int i = 0; i < SQL_VARS_MAX; i++)
        vars[i] = (int64_t)rng_next(&r);
    int next = 0;
    for (size_t i = 0; i < s->ncmds; i++) {
        const struct sql_cmd *c = &s->cmds[i];
        if (c->kind == SQL_CMD_STMT) {
            if (c->stmt != next++ || c->nparams < 0 || c->nparams > SQL_PARAMS_MAX ||
                !c->sql_dollar || !c->sql_qmark)
                abort();
            for (int k = 0; k < c->nparams; k++)
                if (c->params[k] < 0 || c->params[k] >= s->nvars)
                    abort();
            continue;
        }
        int64_t v;
        char e[256];
        int rc = sql_expr_eval(c->expr, vars, &r, &v, e, sizeof(e));
        if (rc != 0 && rc != -EDOM)
            abort();
        if (rc == 0 && c->kind == SQL_CMD_SET)
            vars[c->var] = v;
    }
    if (next != s->nstmts || s->nstmts < 1)
        abort();
    sql_script_free(s);
    return 0;
}
