/* slurm.c — the slurm backend: job scripts and the dry run (see slurm.h). */
#include "backends/slurm.h"

#include "backends/slurm_script.h"
#include "core/driver.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRY_RUN_ID "dry-run"

/* Components whose process is with.prepare then with.command (the others run
 * inside sonde). */
static bool runs_command(const struct comp_spec *c)
{
    const struct driver_ops *ops = driver_find(c->role, c->driver);
    return ops && ops->runs_command;
}

struct dry_ctx {
    const struct comp_spec *self;
    const char *self_dir;
    char buf[512];
};

/* Values a dry run knows (the component's own directory and name); the others
 * are known only at run time and stay written as ${...}. */
static const char *dry_lookup(void *ud, const char *ref)
{
    struct dry_ctx *x = ud;
    if (!strcmp(ref, "self.dir"))
        return x->self_dir;
    if (!strcmp(ref, "self.name"))
        return x->self->name;
    if (!strcmp(ref, "session.id"))
        return DRY_RUN_ID;
    if (!strcmp(ref, "self.port") && x->self->port && strcmp(x->self->port, "auto"))
        return x->self->port;
    snprintf(x->buf, sizeof(x->buf), "${%s}", ref);
    return x->buf;
}

/* Checks r against the site's partition; problems go to d at the component. */
static void check_fit(const struct comp_spec *c, const struct resources *r, const struct site *s,
                      struct diags *d)
{
    const struct sv_pos pos = c->node ? c->node->pos : (struct sv_pos){0};
    char *path = xasprintf("%ss.%s.resources", comp_role_name(c->role), c->name);
    const struct site_partition *p = site_partition(s, r->partition);
    if (r->partition && s->nparts && !p) {
        struct sbuf names = {0};
        for (size_t i = 0; i < s->nparts; i++)
            sbuf_printf(&names, "%s%s", i ? ", " : "", s->parts[i].name);
        diags_add(d, pos, path, NULL, "partition '%s' is not one of site %s's: %s", r->partition,
                  s->name, names.s);
        sbuf_free(&names);
    }
    if (p && r->gpus_per_node > p->gpus_per_node)
        diags_add(d, pos, path, NULL,
                  "%lld GPUs per node asked, but partition %s has %lld per node",
                  (long long)r->gpus_per_node, p->name, (long long)p->gpus_per_node);
    int64_t cpus =
        (r->tasks_per_node ? r->tasks_per_node : 1) * (r->cpus_per_task ? r->cpus_per_task : 1);
    if (p && p->cpus_per_node && cpus > p->cpus_per_node)
        diags_add(d, pos, path, NULL,
                  "%lld CPUs per node asked (tasks_per_node x cpus_per_task), but partition %s "
                  "has %lld",
                  (long long)cpus, p->name, (long long)p->cpus_per_node);
    if (p && p->nodes && r->nodes > p->nodes)
        diags_add(d, pos, path, NULL, "%lld nodes asked, but partition %s has %lld",
                  (long long)r->nodes, p->name, (long long)p->nodes);
    if (p && p->mem_bytes && r->mem_bytes > p->mem_bytes)
        diags_add(d, pos, path, NULL, "more memory per node asked than partition %s has", p->name);
    free(path);
}

static bool path_ok_for_slurm(const char *p)
{
    for (; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '%' || *p == 0x7f)
            return false;
    return true;
}

/* One component's script (or a line saying why it has none). */
static int dry_component(const struct comp_spec *in, const struct site *site, const char *tdir,
                         FILE *out, struct diags *d)
{
    char *cdir = path_join(tdir, in->name), *work = path_join(cdir, "work");
    struct dry_ctx x = {.self = in, .self_dir = work};
    struct comp_spec *c = NULL;
    int r = comp_spec_interp(in, dry_lookup, &x, d, &c);
    struct resources res;
    resources_merge(&res, &site->defaults, &in->res);
    check_fit(in, &res, site, d);
    const char *role = comp_role_name(in->role);
    if (r == 0 && !runs_command(c)) {
        fprintf(out, "# ---- %s %s (%s): runs inside sonde on the host sonde runs on (no job)\n\n",
                role, in->name, in->driver);
    } else if (r == 0) {
        char **argv = NULL, ***steps = NULL;
        size_t nsteps = 0;
        const struct sv *prep = sv_get(c->with, "prepare");
        for (size_t i = 0; prep && prep->kind == SV_SEQ && i < prep->n; i++) {
            char **step = NULL;
            if (sv_as_strv(prep->kids[i], &step) == 0) {
                steps = xrealloc(steps, (nsteps + 2) * sizeof(*steps));
                steps[nsteps++] = step;
                steps[nsteps] = NULL;
            }
        }
        sv_as_strv(sv_get(c->with, "command"), &argv);
        char *name = xasprintf("sonde-%s-%s", DRY_RUN_ID, in->name);
        char *outp = path_join(cdir, "stdout"), *errp = path_join(cdir, "stderr");
        char *tout = path_join(cdir, "task-%t.stdout"), *terr = path_join(cdir, "task-%t.stderr");
        char *comment = xasprintf("sonde %s %s (%s driver)", role, in->name, in->driver);
        struct slurm_job j = {.job_name = name,
                              .comment = comment,
                              .out_path = outp,
                              .err_path = errp,
                              .task_out_pattern = tout,
                              .task_err_pattern = terr,
                              .workdir = work,
                              .res = &res,
                              .modules = site->modules,
                              .setup = site->setup,
                              .runtime = site->runtime,
                              .cache = site->cache,
                              .image = c->image,
                              .binds = c->binds,
                              .env = c->env,
                              .steps = (char *const *const *)steps,
                              .argv = argv};
        struct sbuf text = {0};
        char *script = path_join(cdir, "job.sh");
        fprintf(out, "# ---- %s %s (%s): %s\n", role, in->name, in->driver, script);
        if (slurm_script(&j, &text) == 0)
            fprintf(out, "%s\n", text.s);
        else
            diags_add(d, in->node ? in->node->pos : (struct sv_pos){0}, in->name, NULL,
                      "no command to run");
        sbuf_free(&text);
        free(script);
        free(comment);
        free(name);
        free(outp);
        free(errp);
        free(tout);
        free(terr);
        strv_free(argv);
        for (size_t i = 0; i < nsteps; i++)
            strv_free(steps[i]);
        free(steps);
    }
    resources_clear(&res);
    comp_spec_free(c);
    free(cdir);
    free(work);
    return r;
}

int slurm_dry_run(const struct bench_spec *b, const struct site *site, const char *workspace,
                  FILE *out, struct diags *d)
{
    size_t before = d->n + d->dropped;
    char *sessions = path_join(workspace, "sessions"), *sdir = path_join(sessions, DRY_RUN_ID);
    if (!path_ok_for_slurm(sdir))
        diags_add(d, (struct sv_pos){0}, "workspace", NULL,
                  "the slurm backend needs a workspace path without spaces, control characters "
                  "or '%%' (Slurm reads it from #SBATCH lines), got '%s'",
                  workspace);
    fprintf(out, "# sonde dry run: benchmark %s, backend slurm, site %s (%s)\n", b->name,
            site->name, site->file);
    fprintf(out,
            "# %zu trial(s); nothing is submitted. Values known only when the session runs "
            "are shown as ${...}.\n\n",
            b->ntrials);
    for (size_t i = 0; i < b->ntrials && d->n + d->dropped == before; i++) {
        const struct trial_spec *t = &b->trials[i];
        char tname[32];
        snprintf(tname, sizeof(tname), "trial-%03u", t->index + 1);
        char *tdir = path_join(sdir, tname);
        fprintf(out, "# ==== trial %u of %zu: %s\n\n", t->index + 1, b->ntrials, t->label);
        for (size_t k = 0; k < t->ncomps; k++)
            dry_component(&t->comps[k], site, tdir, out, d);
        free(tdir);
    }
    free(sessions);
    free(sdir);
    return d->n + d->dropped == before ? 0 : -EINVAL;
}
