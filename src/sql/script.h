/* script.h — the transaction scripts of the `sql` client: pgbench's script language, a
 * subset, parsed once and evaluated per transaction.
 *
 * A script is lines of text:
 *   \set NAME EXPR      an integer variable; EXPR has + - * / % ( ), integers, :vars and
 *                       random(lo, hi), random_gaussian(lo, hi, p), random_exponential(lo,
 *                       hi, p), random_zipfian(lo, hi, s), abs(x), least(a, ...),
 *                       greatest(a, ...) — pgbench's definitions of the distributions
 *   \sleep N [us|ms|s]  a pause inside the transaction (N may be a :var)
 *   SQL;                a statement, one or more lines up to a ';' that ends a line
 *                       (outside quotes); :name in it becomes a parameter of a prepared
 *                       statement ($1, $2, ... or ?, by the engine's placeholder style)
 *   -- comment          and empty lines are skipped
 * Values are 64-bit integers (no doubles, unlike pgbench). Predefined variables:
 * :scale and :client_id. Errors name file:line. */
#ifndef SONDE_SQL_SCRIPT_H
#define SONDE_SQL_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rng;
struct sql_expr;

#define SQL_VARS_MAX   64 /* variables of one script, the predefined ones included */
#define SQL_PARAMS_MAX 32 /* parameters of one statement */
#define SQL_VAR_SCALE  0
#define SQL_VAR_CLIENT 1

enum sql_cmd_kind { SQL_CMD_SET, SQL_CMD_SLEEP, SQL_CMD_STMT };

struct sql_cmd {
    enum sql_cmd_kind kind;
    int line;              /* 1-based, of its first line */
    int var;               /* SET: the variable set */
    struct sql_expr *expr; /* SET: the value; SLEEP: the length */
    int64_t unit_ns;       /* SLEEP: ns per unit */
    char *text;            /* STMT: as written (for messages) */
    char *sql_dollar;      /* STMT: :vars as $1, $2, ... */
    char *sql_qmark;       /* STMT: :vars as ? */
    int nparams;
    int params[SQL_PARAMS_MAX]; /* STMT: the variable of each parameter */
    int stmt;                   /* STMT: its index among the script's statements */
};

struct sql_script {
    char *name; /* builtin name or the file's path */
    double weight;
    struct sql_cmd *cmds;
    size_t ncmds;
    int nstmts;
    char *vars[SQL_VARS_MAX]; /* names; [0] "scale", [1] "client_id" */
    int nvars;
};

/* Parses text (from file `name`, for messages) into *out. -EINVAL with
 * "name:line: what" in err when malformed. */
int sql_script_parse(const char *name, const char *text, size_t len, struct sql_script **out,
                     char *err, size_t errlen);
/* A built-in script: "tpcb" (pgbench's TPC-B-like transaction), "select-only" or
 * "simple-update"; -ENOENT for another name. */
int sql_script_builtin(const char *name, struct sql_script **out);
/* The names of the built-in scripts, NULL-terminated. */
extern const char *const sql_builtin_names[];
void sql_script_free(struct sql_script *s);

/* Evaluates e with the variables vars[] (every one set before use: the parser
 * checks that). -EDOM with a message in err on division by zero or a bad
 * random() range at run time. */
int sql_expr_eval(const struct sql_expr *e, const int64_t *vars, struct rng *rng, int64_t *out,
                  char *err, size_t errlen);

#endif
