/* catalog.c — named recipes found in catalog directories (benchmarks/ services/ ...). */
#include "core/recipe.h"

#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CATALOG_MAX_DIRS    64
#define CATALOG_MAX_ENTRIES 10000

static const char *const kind_dirs[RECIPE_KIND_COUNT] = {"benchmarks", "services", "clients",
                                                         "monitors"};

static void add_dir(char ***dirs, const char *dir)
{
    if (!dir || !*dir || strv_len(*dirs) >= CATALOG_MAX_DIRS)
        return;
    for (size_t i = 0; *dirs && (*dirs)[i]; i++)
        if (strcmp((*dirs)[i], dir) == 0)
            return;
    strv_push(dirs, dir);
}

char **recipe_search_dirs(const char *env_var, const char *sub)
{
    char **v = xcalloc(1, sizeof(*v));
    const char *env = getenv(env_var);
    char *copy = xstrdup(env ? env : "");
    char *save = NULL;
    for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save))
        add_dir(&v, t);
    free(copy);
    char *installed = path_join(SONDE_DATADIR, sub);
    add_dir(&v, installed);
    free(installed);
    add_dir(&v, sub);
    return v;
}

int catalog_init(struct catalog *c, const char *const *dirs)
{
    char **v = NULL;
    if (dirs) {
        v = xcalloc(1, sizeof(*v));
        for (size_t i = 0; dirs[i]; i++)
            add_dir(&v, dirs[i]);
    } else {
        v = recipe_search_dirs("SONDE_CATALOG", "recipes");
    }
    c->dirs = v;
    return 0;
}

void catalog_free(struct catalog *c)
{
    if (!c)
        return;
    strv_free(c->dirs);
    c->dirs = NULL;
}

int catalog_find(const struct catalog *c, enum recipe_kind k, const char *name, char **path)
{
    if ((unsigned)k >= RECIPE_KIND_COUNT || !name || !recipe_name_valid(name, true) ||
        name[0] == '.')
        return -EINVAL;
    for (size_t i = 0; c && c->dirs && c->dirs[i]; i++) {
        char *p = xasprintf("%s/%s/%s.yaml", c->dirs[i], kind_dirs[k], name);
        if (access(p, R_OK) == 0) {
            *path = p;
            return 0;
        }
        free(p);
    }
    return -ENOENT;
}

static bool listed(const struct catalog_entry *e, size_t n, enum recipe_kind k, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (e[i].kind == k && strcmp(e[i].name, name) == 0)
            return true;
    return false;
}

static char *entry_description(const char *path)
{
    struct diags d = {0};
    struct sv *doc = NULL;
    char *desc = NULL;
    if (recipe_load_file(path, &doc, &d) == 0)
        desc = xstrdup(sv_str(doc, "description", NULL));
    sv_free(doc);
    diags_free(&d);
    return desc;
}

/* Adds the entries of one kind directory; the first directory naming an entry wins. */
static void scan_dir(const char *dir, enum recipe_kind k, struct catalog_entry **e, size_t *n)
{
    char *p = xasprintf("%s/%s", dir, kind_dirs[k]);
    DIR *dh = opendir(p);
    struct dirent *de;
    while (dh && (de = readdir(dh)) && *n < CATALOG_MAX_ENTRIES) {
        if (!str_endswith(de->d_name, ".yaml") || de->d_name[0] == '.')
            continue;
        char *name = xstrndup(de->d_name, strlen(de->d_name) - 5);
        if (!recipe_name_valid(name, true) || listed(*e, *n, k, name)) {
            free(name);
            continue;
        }
        *e = xrealloc(*e, (*n + 1) * sizeof(**e));
        char *path = xasprintf("%s/%s", p, de->d_name);
        (*e)[(*n)++] = (struct catalog_entry){
            .kind = k, .name = name, .description = entry_description(path), .path = path};
    }
    if (dh)
        closedir(dh);
    free(p);
}

static int entry_cmp(const void *a, const void *b)
{
    const struct catalog_entry *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->name, y->name);
}

int catalog_list(const struct catalog *c, int kind, struct catalog_entry **out, size_t *n)
{
    struct catalog_entry *e = NULL;
    size_t cnt = 0;
    if (kind >= RECIPE_KIND_COUNT)
        return -EINVAL;
    for (size_t i = 0; c && c->dirs && c->dirs[i]; i++)
        for (int k = 0; k < RECIPE_KIND_COUNT; k++)
            if (kind < 0 || kind == k)
                scan_dir(c->dirs[i], (enum recipe_kind)k, &e, &cnt);
    if (cnt)
        qsort(e, cnt, sizeof(*e), entry_cmp);
    *out = e;
    *n = cnt;
    return 0;
}

void catalog_entries_free(struct catalog_entry *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++) {
        free(e[i].name);
        free(e[i].description);
        free(e[i].path);
    }
    free(e);
}
