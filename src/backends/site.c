/* site.c — site profiles (see site.h). */
#include "backends/site.h"

#include "core/driver.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct opt_def partition_opts[] = {
    {"description", OPT_STR, false, NULL, "what the partition is for", NULL, NULL},
    {"nodes", OPT_INT, false, NULL, "nodes in the partition", NULL, NULL},
    {"cpus_per_node", OPT_INT, false, NULL, "CPU cores per node", NULL, NULL},
    {"gpus_per_node", OPT_INT, false, NULL, "GPUs per node", NULL, NULL},
    {"gpu", OPT_STR, false, NULL, "GPU model", NULL, NULL},
    {"mem", OPT_SIZE, false, NULL, "memory per node", NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

static const char *const runtimes[] = {"apptainer", "singularity", NULL};

static const struct opt_def container_opts[] = {
    {"runtime", OPT_ENUM, false, "apptainer", "container runtime command", runtimes, NULL},
    {"cache", OPT_STR, false, "~/.cache/sonde/images",
     "where sonde keeps the images it pulls (SIF files; the runtime's layer cache under it): "
     "a file system the compute nodes see",
     NULL, NULL},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

static const char *const schedulers[] = {"slurm", NULL};

static const struct opt_def site_opts[] = {
    {"kind", OPT_STR, true, NULL, "site", NULL, NULL},
    {"name", OPT_STR, true, NULL, "the profile's name (its file name)", NULL, NULL},
    {"description", OPT_STR, false, NULL, "the machine", NULL, NULL},
    {"scheduler", OPT_ENUM, false, "slurm", "batch scheduler", schedulers, NULL},
    {"defaults", OPT_MAP, false, NULL, "default resources of every job", NULL, NULL},
    {"partitions", OPT_MAP, false, NULL, "the partitions, by name", NULL, NULL},
    {"modules", OPT_STR_LIST, false, NULL, "modules every job loads", NULL, NULL},
    {"setup", OPT_STR_LIST, false, NULL, "shell lines every job runs first", NULL, NULL},
    {"container", OPT_MAP, false, NULL, "container runtime and image cache", NULL, container_opts},
    {NULL, 0, false, NULL, NULL, NULL, NULL},
};

static void read_partitions(const struct sv *map, struct site *s, struct diags *d)
{
    for (size_t i = 0; map && map->kind == SV_MAP && i < map->n; i++) {
        const struct sv *p = map->kids[i];
        char *path = xasprintf("partitions.%s", p->key);
        if (p->kind != SV_MAP && p->kind != SV_NULL) {
            diags_add(d, p->pos, path, NULL, "expected a map (cpus_per_node, gpus_per_node, ...)");
        } else if (p->kind == SV_NULL || recipe_check_opts(p, partition_opts, path, d)) {
            s->parts = xrealloc(s->parts, (s->nparts + 1) * sizeof(*s->parts));
            struct site_partition *sp = &s->parts[s->nparts++];
            memset(sp, 0, sizeof(*sp));
            sp->name = xstrdup(p->key);
            sp->description = xstrdup(sv_str(p, "description", NULL));
            sp->gpu = xstrdup(sv_str(p, "gpu", NULL));
            const struct sv *v;
            if ((v = sv_get(p, "nodes")))
                sv_as_int(v, &sp->nodes);
            if ((v = sv_get(p, "cpus_per_node")))
                sv_as_int(v, &sp->cpus_per_node);
            if ((v = sv_get(p, "gpus_per_node")))
                sv_as_int(v, &sp->gpus_per_node);
            if ((v = sv_get(p, "mem")))
                sv_as_size(v, &sp->mem_bytes);
        }
        free(path);
    }
}

int site_load_file(const char *path, struct site **out, struct diags *d)
{
    struct sv *doc = NULL;
    size_t before = d->n + d->dropped;
    int r = recipe_load_file(path, &doc, d);
    if (r < 0)
        return r;
    struct site *s = xcalloc(1, sizeof(*s));
    s->file = xstrdup(path);
    resources_clear(&s->defaults);
    s->defaults.gpus_per_node = -1;
    if (doc->kind != SV_MAP) {
        diags_add(d, doc->pos, "", NULL, "expected a site profile (a map with kind: site)");
    } else {
        recipe_check_opts(doc, site_opts, "", d); /* the valid keys are still read below */
        const char *kind = sv_str(doc, "kind", "");
        if (strcmp(kind, "site"))
            diags_add(d, sv_get(doc, "kind")->pos, "kind", NULL,
                      "expected 'site' in a site profile, got '%s'", kind);
        s->name = xstrdup(sv_str(doc, "name", ""));
        s->description = xstrdup(sv_str(doc, "description", NULL));
        s->scheduler = xstrdup(sv_str(doc, "scheduler", "slurm"));
        resources_parse(sv_get(doc, "defaults"), "defaults", d, &s->defaults);
        read_partitions(sv_get(doc, "partitions"), s, d);
        const struct sv *v;
        if ((v = sv_get(doc, "modules")))
            sv_as_strv(v, &s->modules); /* a list of strings: checked above */
        if ((v = sv_get(doc, "setup")))
            sv_as_strv(v, &s->setup);
        const struct sv *c = sv_get(doc, "container");
        s->runtime = xstrdup(sv_str(c, "runtime", "apptainer"));
        s->cache = xstrdup(sv_str(c, "cache", NULL));
        if (s->defaults.partition && s->nparts && !site_partition(s, s->defaults.partition))
            diags_add(d, sv_get(sv_get(doc, "defaults"), "partition")->pos, "defaults.partition",
                      NULL, "'%s' is not one of the partitions listed", s->defaults.partition);
    }
    sv_free(doc);
    if (d->n + d->dropped != before) {
        site_free(s);
        return -EINVAL;
    }
    *out = s;
    return 0;
}

int site_load(const char *name, struct sv_pos at, struct site **out, struct diags *d)
{
    char **dirs = recipe_search_dirs("SONDE_SITES", "sites");
    int r = -ENOENT;
    if (!recipe_name_valid(name, false)) {
        diags_add(d, at, "site", NULL, "invalid site name '%s' (letters, digits, '_' and '-')",
                  name);
        r = -EINVAL;
    }
    for (size_t i = 0; r == -ENOENT && dirs[i]; i++) {
        char *base = path_join(dirs[i], name), *path = xasprintf("%s.yaml", base);
        if (access(path, R_OK) == 0)
            r = site_load_file(path, out, d);
        free(base);
        free(path);
    }
    if (r == -ENOENT) {
        struct sbuf where = {0};
        for (size_t i = 0; dirs[i]; i++)
            sbuf_printf(&where, "%s%s", i ? ", " : "", dirs[i]);
        diags_add(d, at, "site", NULL,
                  "no site profile '%s' (looked for %s.yaml in %s; set SONDE_SITES to add a "
                  "directory)",
                  name, name, where.s);
        sbuf_free(&where);
    }
    strv_free(dirs);
    return r;
}

const struct site_partition *site_partition(const struct site *s, const char *name)
{
    for (size_t i = 0; s && name && i < s->nparts; i++)
        if (!strcmp(s->parts[i].name, name))
            return &s->parts[i];
    return NULL;
}

void site_free(struct site *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->description);
    free(s->file);
    free(s->scheduler);
    resources_clear(&s->defaults);
    for (size_t i = 0; i < s->nparts; i++) {
        free(s->parts[i].name);
        free(s->parts[i].description);
        free(s->parts[i].gpu);
    }
    free(s->parts);
    strv_free(s->modules);
    strv_free(s->setup);
    free(s->runtime);
    free(s->cache);
    free(s);
}
