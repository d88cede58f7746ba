/* recipe.h — recipes: loading, validation, catalog, `use:`/`with:`, matrix, interpolation.
 *
 * A benchmark recipe is resolved into a bench_spec: one trial_spec per point of
 * matrix × repeat, each holding its components with every `${matrix.*}` and
 * `${env.*}` already substituted. References only known at run time
 * (`${session.*}`, `${self.*}`, `${services.NAME.*}`) stay in the text and are
 * substituted by recipe_interp_runtime() when the component starts. */
#ifndef SONDE_RECIPE_H
#define SONDE_RECIPE_H

#include "diag.h"
#include "value.h"

enum recipe_kind {
    RECIPE_BENCHMARK,
    RECIPE_SERVICE,
    RECIPE_CLIENT,
    RECIPE_MONITOR,
    RECIPE_KIND_COUNT
};
enum comp_role { ROLE_SERVICE, ROLE_CLIENT, ROLE_MONITOR };

const char *recipe_kind_name(enum recipe_kind k); /* "benchmark", ... */
int recipe_kind_parse(const char *s, enum recipe_kind *out);
const char *comp_role_name(enum comp_role r); /* "service", "client", "monitor" */

/* Limits that protect the loader (documented in docs/recipes.md). */
#define RECIPE_MAX_BYTES  (1u << 20) /* 1 MiB */
#define RECIPE_MAX_DEPTH  64
#define RECIPE_MAX_NODES  100000
#define RECIPE_MAX_TRIALS 10000

/* ---- the catalog ---- */
struct catalog_entry {
    enum recipe_kind kind;
    char *name;
    char *description;
    char *path;
};
struct catalog {
    char **dirs; /* searched in order; each holds benchmarks/ services/ clients/ monitors/ */
};
/* Directories to search for files of one sort: those in $env_var
 * (colon-separated), then SONDE_DATADIR/sub, then ./sub (no duplicates, at
 * most 64). NULL-terminated; strv_free it. */
char **recipe_search_dirs(const char *env_var, const char *sub);
/* dirs == NULL: recipe_search_dirs("SONDE_CATALOG", "recipes"). */
int catalog_init(struct catalog *c, const char *const *dirs);
void catalog_free(struct catalog *c);
/* Finds NAME of kind K (file K-dir/NAME.yaml); -ENOENT when absent. */
int catalog_find(const struct catalog *c, enum recipe_kind k, const char *name, char **path);
/* Every entry (kind < 0: all kinds), sorted by kind then name. */
int catalog_list(const struct catalog *c, int kind, struct catalog_entry **out, size_t *n);
void catalog_entries_free(struct catalog_entry *e, size_t n);

/* ---- readiness probes (services) ---- */
enum probe_kind { PROBE_NONE, PROBE_TCP, PROBE_HTTP, PROBE_CMD, PROBE_LOG };
struct probe_spec {
    enum probe_kind kind;
    char *host;          /* TCP: default "127.0.0.1" */
    char *port;          /* TCP: text, may hold ${self.port} until run time */
    char *url;           /* HTTP: http://host:port/path (plain HTTP) */
    char **argv;         /* CMD: exits 0 when ready */
    char *regex;         /* LOG: POSIX extended regex matched against stdout+stderr lines */
    int64_t timeout_ns;  /* default 30 s */
    int64_t interval_ns; /* default 200 ms */
};

/* ---- where a component runs on a batch scheduler (`resources:`) ----
 * Read by the slurm backend (docs/slurm.md); the local backend ignores it.
 * 0 / NULL / -1 = not given (the site profile's default, then Slurm's). */
struct resources {
    int64_t nodes, tasks_per_node, cpus_per_task, gpus_per_node;
    int64_t mem_bytes; /* per node */
    int64_t time_ns;   /* time limit */
    char *gres, *partition, *account, *qos, *constraint, *reservation;
    int exclusive; /* -1 not given, 0, 1 */
};
void resources_clear(struct resources *r);
/* dst = base with every field set in over replacing it (deep copies). */
void resources_merge(struct resources *dst, const struct resources *base,
                     const struct resources *over);
/* Validates a `resources:` map (keys, types, ranges) and fills out. */
int resources_parse(const struct sv *map, const char *path, struct diags *d, struct resources *out);

/* Checks a map against an option table (unknown keys with suggestions, types,
 * required keys); used for option-like blocks outside recipes (site profiles). */
struct opt_def;
bool recipe_check_opts(const struct sv *map, const struct opt_def *defs, const char *path,
                       struct diags *d);

/* ---- resolved components, trials, benchmarks ---- */
struct comp_spec {
    enum comp_role role;
    char *name;   /* key under services:/clients:/monitors: */
    char *driver; /* driver name, e.g. "generic", "exec", "node", "process" */
    char *use;    /* catalog entry it came from, or NULL when inline */
    char *description;
    struct sv *with; /* driver options (a map, possibly empty), validated */
    char *user;      /* run as this user, NULL = as sonde */
    char **env;      /* "KEY=VALUE" added to sonde's environment; NULL-terminated, may be NULL */
    char *cwd;       /* working directory, NULL = the component's directory */
    char *port;      /* services: "auto", a number, or NULL (none) */
    struct probe_spec ready; /* services; kind PROBE_NONE when not given */
    int64_t stop_grace_ns;   /* default 10 s */
    int64_t interval_ns;     /* monitors: sample period, default 1 s */
    struct resources res;    /* `resources:` (batch schedulers) */
    char *image;             /* container image (docker://..., oras://..., a .sif path), or NULL */
    char **binds;    /* container bind mounts "SRC[:DST[:OPTS]]", NULL-terminated, may be NULL */
    char **deps;     /* services this component refers to via ${services.X.*}, NULL-terminated */
    struct sv *node; /* the resolved block (positions, show) */
    bool partial;    /* a catalog entry checked on its own: the benchmark that uses it adds
                        the options it leaves out (required options and drivers' completeness
                        checks wait until then) */
};

struct trial_spec {
    unsigned index;          /* 0-based in expansion order */
    unsigned repetition;     /* 0-based */
    char **matrix;           /* "key=value" in matrix key order; NULL-terminated, may be NULL */
    char *label;             /* e.g. "clients=4 repeat=2", or "trial 1" when no matrix */
    struct comp_spec *comps; /* services in dependency order, then monitors, then clients */
    size_t ncomps;
    int64_t timeout_ns; /* trial time limit (`timeout:`), 0 = none */
};

struct bench_spec {
    char *file;
    char *name;
    char *description;
    char *backend; /* "local" unless given */
    char *site;    /* site profile name (`site:` or --site), NULL = none */
    struct trial_spec *trials;
    size_t ntrials;
    char **report_formats; /* NULL-terminated, may be NULL */
    char *exporter;        /* `exporter:` HOST:PORT of sonde's /metrics endpoint, or NULL */
    char *resolved_yaml;   /* every trial resolved, as shown by `recipe show --resolved` */
    char sha256[65];       /* of resolved_yaml */
};

struct recipe_opts {
    const struct catalog *catalog;
    char *const
        *sets; /* "key.path=value" overrides applied before expansion (--set); may be NULL */
    const char *backend; /* overrides `backend:` when not NULL */
    const char *site;    /* overrides `site:` when not NULL */
};

/* Parses YAML into a tree. Enforces the limits above. Errors go to d; returns
 * 0 or -EINVAL (diagnostics added) or a negative errno for I/O. */
int recipe_load_file(const char *path, struct sv **doc, struct diags *d);
int recipe_load_buffer(const char *name, const char *data, size_t len, struct sv **doc,
                       struct diags *d);

/* Validates a recipe of any kind (benchmarks are fully resolved, so matrix and
 * references are checked too). 0 when valid, -EINVAL with diagnostics. */
int recipe_validate_file(const char *path, const struct recipe_opts *o, struct diags *d);

/* Loads and resolves a benchmark recipe. */
int bench_resolve(const char *path, const struct recipe_opts *o, struct bench_spec **out,
                  struct diags *d);
void bench_free(struct bench_spec *b);

/* Run-time interpolation: replaces ${session.*}, ${self.*}, ${services.NAME.*}
 * and ${trial.*} in every scalar of tree. lookup returns the value of a
 * reference such as "services.db.port", or NULL when unknown (then an error is
 * added to d naming the reference and its position). 0 or -EINVAL. */
typedef const char *(*interp_lookup_fn)(void *ud, const char *ref);
int recipe_interp_runtime(struct sv *tree, interp_lookup_fn lookup, void *ud, struct diags *d);
/* The same for one string; *out is a new string. */
int recipe_interp_string(const char *s, struct sv_pos pos, interp_lookup_fn lookup, void *ud,
                         struct diags *d, char **out);

/* ---- the rest of the recipe layer's interface (CLI, fuzzer, session) ---- */

/* Total text a benchmark may resolve to (all trials, after substitution). */
#define RECIPE_MAX_RESOLVED (32u << 20)

/* recipe_validate_file on text in memory; name is used in positions. */
int recipe_validate_buffer(const char *name, const char *data, size_t len,
                           const struct recipe_opts *o, struct diags *d);
/* Validates an already loaded document (takes no ownership). file is its name. */
int recipe_validate_doc(const char *file, const struct sv *doc, const struct recipe_opts *o,
                        struct diags *d);
/* Parses one YAML value of any kind (a --set value); columns on line 1 are
 * shifted by col_off. Same limits as recipe_load_buffer. */
int yaml_load_value(const char *name, const char *data, size_t len, unsigned col_off,
                    struct sv **out, struct diags *d);
/* Applies "key.path=value" overrides to doc (creating missing maps). 0 or -EINVAL. */
int recipe_apply_sets(struct sv *doc, char *const *sets, struct diags *d);
/* Names of recipes and matrix keys: [A-Za-z0-9._-]+ (dot allowed) or [A-Za-z0-9_-]+. */
bool recipe_name_valid(const char *s, bool allow_dot);

/* A deep copy of src with run-time references (${session.*}, ${self.*},
 * ${services.*}, ${trial.*}) substituted in every text field, and `$${`
 * escapes turned into `${`. Every comp_spec must go through this once before
 * its strings are used. 0 or -EINVAL with diagnostics. */
int comp_spec_interp(const struct comp_spec *src, interp_lookup_fn lookup, void *ud,
                     struct diags *d, struct comp_spec **out);
/* Frees the fields of c, then c itself (a comp_spec_interp result); accepts NULL. */
void comp_spec_free(struct comp_spec *c);
/* The `prepare` steps under with: as argv lists (NULL-terminated; *out NULL
 * when none). -EINVAL when step *bad (1-based) is not a non-empty list of
 * strings. Free with comp_steps_free. */
int comp_spec_steps(const struct comp_spec *c, char ****out, size_t *bad);
void comp_steps_free(char ***steps);
void comp_spec_clear(struct comp_spec *c); /* frees the fields only */

/* True when s holds a `${...}` reference (escaped `$${` does not count). */
bool recipe_has_ref(const char *s);

/* Resolve-time interpolation (used by recipe.c): substitutes ${matrix.*} and
 * ${env.*}, checks every other reference, records ${services.X.*} uses. */
struct interp_dep {
    char *name;
    struct sv_pos pos; /* the scalar that refers to it */
};
struct interp_static {
    const struct sv *matrix; /* the matrix map (its keys), NULL when none */
    char *const *point;      /* this trial's value for each matrix key, in key order */
    char *const *services;   /* service names of the benchmark, NULL-terminated */
    bool self_port;          /* ${self.port} is allowed (a service with a port) */
    bool lenient;            /* a catalog entry on its own: keep matrix/env references */
    bool matrix_unknown;     /* the matrix is invalid: keep ${matrix.*} without errors */
    size_t *budget;          /* bytes left for growth by substitution; NULL = no limit */
    struct interp_dep *deps; /* out: referenced services, each once (free with the struct) */
    size_t ndeps;
};
int recipe_interp_static(struct sv *tree, struct interp_static *c, const char *path,
                         struct diags *d);
void interp_static_free(struct interp_static *c); /* frees deps only */

#endif
