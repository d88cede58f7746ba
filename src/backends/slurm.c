/* slurm.c — the slurm backend: job scripts, the dry run (see slurm.h), and
 * backend_slurm, which submits, watches and cancels the jobs. */
#include "backends/slurm.h"

#include "backends/backend.h"
#include "backends/image_cache.h"
#include "backends/slurm_script.h"
#include "core/driver.h"
#include "drivers/monitors/monitors.h"
#include "util/capture.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
    if (!strcmp(ref, "self.listen"))
        return backend_slurm.listen_host;
    if (!strcmp(ref, "self.port") && x->self->port && strcmp(x->self->port, "auto"))
        return x->self->port;
    snprintf(x->buf, sizeof(x->buf), "${%s}", ref);
    return x->buf;
}

/* What `apptainer exec` gets for ref (c's image, interpolated): the cache's
 * copy of a remote image (the one slurm_pull_images pulled), a local one made
 * absolute. Nothing is read. NULL with the problem in d when ref is no image
 * reference or c's image depends on run-time values. */
static char *job_image(const struct comp_spec *c, const char *ref, const struct site *site,
                       struct diags *d)
{
    char err[512];
    if (strstr(c->image, "${")) { /* as written: the pull does not interpolate */
        diags_add(d, c->node ? c->node->pos : (struct sv_pos){0}, c->name, NULL,
                  "image '%s' depends on a value known only while the session runs: images are "
                  "pulled before the first job is submitted",
                  ref);
        return NULL;
    }
    char *path = image_job_path(site, ref, err, sizeof(err));
    if (!path)
        diags_add(d, c->node ? c->node->pos : (struct sv_pos){0}, c->name, NULL, "%s", err);
    return path;
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

/* The batch script of one process (s: command, environment, output files,
 * working directory; its job: the rest) over the site's defaults: the one
 * text both a dry run and a submission use. -EINVAL when there is no command. */
static int render_job(const struct proc_spec *s, struct sbuf *text)
{
    const struct job_spec *j = s->job;
    struct resources res;
    resources_merge(&res, &j->site->defaults, j->res);
    struct slurm_job sj = {.job_name = j->name,
                           .comment = j->comment,
                           .out_path = s->out_path,
                           .err_path = s->err_path ? s->err_path : s->out_path,
                           .task_out_pattern = j->task_out_pattern,
                           .task_err_pattern = j->task_err_pattern,
                           .workdir = s->cwd,
                           .res = &res,
                           .modules = j->site->modules,
                           .setup = j->site->setup,
                           .runtime = j->site->runtime,
                           .image = j->image,
                           .binds = j->binds,
                           .env = s->env_extra,
                           .steps = j->steps,
                           .monitor_argv = j->monitor_argv,
                           .monitor_log = j->monitor_log,
                           .argv = s->argv};
    int r = slurm_script(&sj, text);
    resources_clear(&res);
    return r;
}

/* One component's script (or a line saying why it has none). */
static int dry_component(const struct comp_spec *in, const struct trial_spec *t,
                         const struct site *site, const char *tdir, FILE *out, struct diags *d)
{
    char *cdir = path_join(tdir, in->name), *work = path_join(cdir, "work");
    struct dry_ctx x = {.self = in, .self_dir = work};
    struct comp_spec *c = NULL;
    int r = comp_spec_interp(in, dry_lookup, &x, d, &c);
    struct resources res;
    resources_merge(&res, &site->defaults, &in->res);
    check_fit(in, &res, site, d);
    const char *role = comp_role_name(in->role);
    const struct driver_ops *ops = driver_find(in->role, in->driver);
    char *exe = self_exe();
    char **agent = r == 0 && ops && ops->job_argv ? ops->job_argv(c, exe, cdir) : NULL;
    char **monitor = agent_job_argv(exe, cdir, trial_agent_interval(t));
    char *monitor_log = agent_job_log(cdir);
    free(exe);
    if (r == 0 && !runs_command(c) && !agent) {
        const char *how = ops && ops->job_agent
                              ? "runs inside sonde, reading what the monitor agent in each job "
                                "writes (no job of its own)"
                              : "runs inside sonde on the host sonde runs on (no job)";
        fprintf(out, "# ---- %s %s (%s): %s\n\n", role, in->name, in->driver, how);
    } else if (r == 0) {
        char **argv = NULL, ***steps = NULL;
        comp_spec_steps(c, &steps, NULL); /* validated with the recipe */
        if (agent) { /* it runs inside sonde unless it fans out: then these tasks */
            argv = agent;
            agent = NULL;
        } else {
            sv_as_strv(sv_get(c->with, "command"), &argv);
        }
        char *name = xasprintf("sonde-%s-%s", DRY_RUN_ID, in->name);
        /* the paths a session uses (session.c: comp_create) */
        char *outp = path_join(cdir, "stdout.log"), *errp = path_join(cdir, "stderr.log");
        char *tout = path_join(cdir, "tasks/task-%t.stdout");
        char *terr = path_join(cdir, "tasks/task-%t.stderr");
        char *comment = xasprintf("sonde %s %s (%s driver), session %s, %s", role, in->name,
                                  in->driver, DRY_RUN_ID, t->label);
        char *script = path_join(cdir, "job.sh");
        char *image = c->image ? job_image(in, c->image, site, d) : NULL;
        if (image && strcmp(image, c->image) != 0) {
            char *more = xasprintf("%s\n# image %s: sonde pulls it once into %s before submitting",
                                   comment, c->image, image);
            free(comment);
            comment = more;
        }
        struct job_spec j = {.name = name,
                             .comment = comment,
                             .script_path = script,
                             .task_out_pattern = tout,
                             .task_err_pattern = terr,
                             .res = &in->res,
                             .site = site,
                             .image = image,
                             .binds = c->binds,
                             .steps = (char *const *const *)steps,
                             .monitor_argv = monitor,
                             .monitor_log = monitor_log};
        struct proc_spec ps = {.argv = argv,
                               .env_extra = c->env,
                               .cwd = work,
                               .out_path = outp,
                               .err_path = errp,
                               .job = &j};
        struct sbuf text = {0};
        fprintf(out, "# ---- %s %s (%s): %s\n", role, in->name, in->driver, script);
        if (render_job(&ps, &text) == 0)
            fprintf(out, "%s\n", text.s);
        else
            diags_add(d, in->node ? in->node->pos : (struct sv_pos){0}, in->name, NULL,
                      "no command to run");
        sbuf_free(&text);
        free(image);
        free(script);
        free(comment);
        free(name);
        free(outp);
        free(errp);
        free(tout);
        free(terr);
        strv_free(argv);
        comp_steps_free(steps);
    }
    resources_clear(&res);
    strv_free(monitor);
    free(monitor_log);
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
            dry_component(&t->comps[k], t, site, tdir, out, d);
        free(tdir);
    }
    free(sessions);
    free(sdir);
    return d->n + d->dropped == before ? 0 : -EINVAL;
}

/* ---- images ---- */

#define IMAGE_PULL_TIMEOUT_NS (3600LL * 1000000000LL) /* one pull, or waiting for another's */

static void on_pull_signal(int sig)
{
    (void)sig;
    capture_cancelled = 1;
}

/* One image of the benchmark: pulled (or found) once, then its provenance
 * line "REF sha256:... PATH". -errno with the problem in d. */
static int pull_one(const struct comp_spec *in, const struct site *site, bool quiet, char **line,
                    struct diags *d)
{
    const struct sv_pos pos = in->node ? in->node->pos : (struct sv_pos){0};
    struct image_info info = {0};
    char err[1024];
    char *path = image_job_path(site, in->image, err, sizeof(err));
    struct stat st;
    if (path && !quiet && image_is_remote(in->image) && stat(path, &st) < 0)
        fprintf(stderr, "sonde: pulling image %s into %s (once: later sessions reuse it)\n",
                in->image, path);
    int r = path ? 0 : -EINVAL;
    free(path);
    if (r == 0)
        r = image_fetch(site, in->image, false, IMAGE_PULL_TIMEOUT_NS, &info, err, sizeof(err));
    if (r < 0) {
        diags_add(d, pos, in->name, NULL, "%s", err);
        return r;
    }
    *line = xasprintf("%s %s %s", in->image, info.digest ? info.digest : "(a directory: no digest)",
                      info.path);
    image_info_clear(&info);
    return 0;
}

int slurm_pull_images(const struct bench_spec *b, const struct site *site, bool quiet, char ***prov,
                      struct diags *d)
{
    struct sigaction sa = {.sa_handler = on_pull_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    char **refs = NULL, **lines = NULL; /* each distinct image once */
    size_t n = 0;
    int r = 0;
    for (size_t i = 0; i < b->ntrials && r == 0; i++) {
        const struct trial_spec *t = &b->trials[i];
        for (size_t k = 0; k < t->ncomps && r == 0; k++) {
            const struct comp_spec *in = &t->comps[k];
            if (!in->image)
                continue;
            size_t j = 0;
            while (j < n && strcmp(refs[j], in->image) != 0)
                j++;
            if (j == n) {
                char *line = NULL;
                r = pull_one(in, site, quiet, &line, d);
                if (r < 0)
                    break;
                refs = xrealloc(refs, (n + 2) * sizeof(*refs));
                lines = xrealloc(lines, (n + 2) * sizeof(*lines));
                refs[n] = in->image;
                lines[n++] = line;
                refs[n] = lines[n] = NULL;
            }
            char *entry = xasprintf("image.trial-%03u.%s=%s", t->index + 1, in->name, lines[j]);
            strv_push(prov, entry);
            free(entry);
        }
    }
    bool cancelled = capture_cancelled;
    capture_cancelled = 0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(refs);
    strv_free(lines);
    return cancelled ? -ECANCELED : r;
}

/* ---- running jobs: the backend_slurm ops ---- */

#define MS_NS            (1000000LL)
#define SCHED_TIMEOUT_NS (60 * 1000 * MS_NS) /* one sbatch / scontrol / scancel call */
#define POLL_QUEUED_NS   (500 * MS_NS)
#define POLL_RUNNING_NS  (1000 * MS_NS)
#define STOP_EXTRA_NS    (90 * 1000 * MS_NS) /* after grace: Slurm's KillWait and cleanup */

/* Runs a scheduler command; 0 when it exited 0. Else -errno with a message
 * naming the command and what it printed last on stderr. */
static int sched(char *const *argv, struct sbuf *out, char *err, size_t errlen)
{
    struct sbuf e = {.max = 64 << 10};
    int st = capture_run(argv, out, &e, SCHED_TIMEOUT_NS);
    int r = 0;
    if (st == -ENOENT) {
        snprintf(err, errlen, "cannot run %s: not found (is Slurm installed and on PATH?)",
                 argv[0]);
        r = st;
    } else if (st == -ETIMEDOUT) {
        snprintf(err, errlen, "%s did not answer within 60 s", argv[0]);
        r = st;
    } else if (st < 0) {
        snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(-st));
        r = st;
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char line[256], how[64];
        str_last_line(e.s, e.len, line, sizeof(line));
        proc_describe_status(st, how, sizeof(how));
        snprintf(err, errlen, "%s failed (%s)%s%s", argv[0], how, line[0] ? ": " : "", line);
        r = -EIO;
    }
    sbuf_free(&e);
    return r;
}

/* The value of `Key=` in one line of `scontrol show ... -o` output, up to the
 * next space, into buf; false when absent. */
static bool field(const char *line, const char *key, char *buf, size_t n)
{
    size_t klen = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) != NULL; p += klen) {
        if ((p != line && p[-1] != ' ') || p[klen] != '=')
            continue;
        const char *v = p + klen + 1;
        size_t len = strcspn(v, " \n");
        if (len >= n)
            len = n - 1;
        memcpy(buf, v, len);
        buf[len] = '\0';
        return true;
    }
    return false;
}

/* The address of node `name` (NodeAddr: what slurmctld itself uses to reach
 * it), else the name. */
static void node_addr(const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s", name);
    char *argv[] = {"scontrol", "show", "node", "-o", (char *)name, NULL};
    struct sbuf out = {.max = 64 << 10};
    char err[256], addr[256];
    if (sched(argv, &out, err, sizeof(err)) == 0 && out.s &&
        field(out.s, "NodeAddr", addr, sizeof(addr)) && addr[0] && strcmp(addr, "(null)"))
        snprintf(buf, n, "%s", addr);
    sbuf_free(&out);
}

static const char *end_meaning(const char *state)
{
    static const char *const m[][2] = {
        {"FAILED", "a non-zero exit code"},
        {"TIMEOUT", "it reached its time limit"},
        {"NODE_FAIL", "one of its nodes failed"},
        {"PREEMPTED", "preempted by a higher-priority job"},
        {"OUT_OF_MEMORY", "it ran out of memory"},
        {"BOOT_FAIL", "its node failed to boot"},
        {"DEADLINE", "it reached its deadline"},
        {"CANCELLED", "cancelled (scancel, or an administrator)"},
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(m); i++)
        if (!strcmp(state, m[i][0]))
            return m[i][1];
    return NULL;
}

/* EndTime - StartTime of a job line in seconds (Slurm's resolution), -1 when
 * either is missing. */
static int64_t run_seconds(const char *line)
{
    char a[32], b[32];
    struct tm ta = {0}, tb = {0};
    if (!field(line, "StartTime", a, sizeof(a)) || !field(line, "EndTime", b, sizeof(b)) ||
        !strptime(a, "%Y-%m-%dT%H:%M:%S", &ta) || !strptime(b, "%Y-%m-%dT%H:%M:%S", &tb))
        return -1;
    ta.tm_isdst = tb.tm_isdst = -1;
    return (int64_t)difftime(mktime(&tb), mktime(&ta));
}

/* Pending reasons that do not clear by waiting (unless an administrator acts:
 * a node being drained can show as one for a while, hence SLURM_NEVER_NS):
 * what they mean, else NULL. */
static const char *never_starts(const char *reason)
{
    static const char *const m[][2] = {
        {"PartitionConfig", "it asks for more than the partition's nodes offer"},
        {"PartitionNodeLimit", "more nodes than the partition allows"},
        {"PartitionTimeLimit", "a longer time than the partition allows"},
        {"BadConstraints", "constraints no node satisfies"},
        {"InvalidAccount", "an account it may not use"},
        {"InvalidQOS", "a QoS it may not use"},
        {"DependencyNeverSatisfied", "a dependency that can no longer be met"},
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(m); i++)
        if (!strcmp(reason, m[i][0]))
            return m[i][1];
    return NULL;
}

static bool final_state(const char *s)
{
    return !strcmp(s, "COMPLETED") || end_meaning(s) || !strcmp(s, "REVOKED");
}

static void mark_ended(struct proc *p, int status, const char *fmt, ...) SONDE_PRINTF(3, 4);
static void mark_ended(struct proc *p, int status, const char *fmt, ...)
{
    p->exited = true;
    p->status = status;
    p->end_mono = mono_ns();
    p->end_wall = wall_ns();
    p->pending[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->detail, sizeof(p->detail), fmt, ap);
    va_end(ap);
    proc_guardian_job(p->job, false);
}

void slurm_apply_job_line(struct proc *p, const char *line, char *host, size_t hostlen)
{
    char state[64] = "", reason[128] = "", list[256] = "", code[32] = "";
    host[0] = '\0';
    field(line, "JobState", state, sizeof(state));
    field(line, "Reason", reason, sizeof(reason));
    field(line, "BatchHost", host, hostlen);
    if (!strcmp(host, "(null)"))
        host[0] = '\0';
    if (!state[0]) /* not a job line: nothing learned */
        return;
    field(line, "NodeList", list, sizeof(list));
    field(line, "ExitCode", code, sizeof(code));
    bool queued = !strcmp(state, "PENDING") || !strcmp(state, "CONFIGURING") ||
                  !strcmp(state, "REQUEUED") || !strcmp(state, "REQUEUE_HOLD") ||
                  !strcmp(state, "RESV_DEL_HOLD") || !strcmp(state, "SPECIAL_EXIT");
    if (queued && p->running) { /* back in the queue (requeued): what ran there is gone */
        mark_ended(p, 1 << 8, "job %lld went back to the queue (%s, %s) after it ran on %s",
                   (long long)p->job, state, reason, p->nodes[0] ? p->nodes : "?");
        return;
    }
    const char *never = queued ? never_starts(reason) : NULL;
    if (!never || strcmp(p->never_reason, reason)) {
        snprintf(p->never_reason, sizeof(p->never_reason), "%s", never ? reason : "");
        p->never_since = mono_ns();
    }
    if (never && mono_ns() - p->never_since >= SLURM_NEVER_NS) {
        mark_ended(p, 1 << 8, "job %lld can never start: Slurm has held it as %s for %llds (%s)",
                   (long long)p->job, reason, (long long)(SLURM_NEVER_NS / 1000000000LL), never);
        return;
    }
    if (queued) {
        snprintf(p->pending, sizeof(p->pending), "%s", strcmp(reason, "None") ? reason : state);
        return;
    }
    if (host[0] && !p->nodes[0])
        snprintf(p->nodes, sizeof(p->nodes), "%s", strcmp(list, "(null)") ? list : host);
    if (!final_state(state)) { /* RUNNING, COMPLETING, SUSPENDED, ...: it has started */
        if (!p->running) {
            p->running = true;
            p->pending[0] = '\0';
            p->start_mono = mono_ns();
            p->start_wall = wall_ns();
        }
        return;
    }
    bool unseen = !p->running && host[0]; /* it ran between two looks: Slurm's times */
    int ec = 0, sig = 0;
    sscanf(code, "%d:%d", &ec, &sig);
    /* a real signal number, else the shell's 128+N (Slurm writes 0:125 for OOM kills) */
    int status = sig > 0 && sig < 65 ? sig : sig ? ((128 + sig) & 0xff) << 8 : (ec & 0xff) << 8;
    if (status == 0 && strcmp(state, "COMPLETED")) /* ended by Slurm, not by itself */
        status = SIGTERM;
    const char *why = end_meaning(state);
    const char *on = p->nodes[0] ? p->nodes : host;
    if (!strcmp(state, "COMPLETED") || !why)
        mark_ended(p, status, "job %lld %s on %s (exit code %s)", (long long)p->job, state,
                   on[0] ? on : "?", code[0] ? code : "?");
    else
        mark_ended(p, status, "job %lld %s on %s: %s (exit code %s)", (long long)p->job, state,
                   on[0] ? on : "?", why, code[0] ? code : "?");
    if (unseen) {
        p->running = true;
        int64_t ran = run_seconds(line);
        p->start_mono = p->end_mono - (ran > 0 ? ran : 0) * 1000000000LL;
        p->start_wall = p->end_wall - (ran > 0 ? ran : 0) * 1000000000LL;
    }
}

static int cancel(const struct proc *p, bool term_only);

/* The job line says the job has reached a final state. */
static bool final_state_line(const char *line)
{
    char state[64] = "";
    return field(line, "JobState", state, sizeof(state)) && final_state(state);
}

/* Asks Slurm about p's job now. */
static void query(struct proc *p)
{
    char id[32], err[512];
    snprintf(id, sizeof(id), "%lld", (long long)p->job);
    char *argv[] = {"scontrol", "show", "job", "-o", id, NULL};
    struct sbuf out = {.max = 1 << 20};
    int r = sched(argv, &out, err, sizeof(err));
    char host[256];
    if (r == 0 && out.s) {
        slurm_apply_job_line(p, out.s, host, sizeof(host));
        if (p->exited && strstr(out.s, "JobState=") && !final_state_line(out.s))
            cancel(p, false); /* ended for sonde but still queued: take it out */
        if (host[0] && !p->node[0])
            node_addr(host, p->node, sizeof(p->node));
    } else if (r == -EIO && strstr(err, "Invalid job id")) /* forgotten: past MinJobAge */
        mark_ended(p, 255 << 8,
                   "job %lld is no longer known to Slurm (it ended while sonde was not looking)",
                   (long long)p->job);
    else
        log_warn("cannot ask Slurm about job %lld: %s", (long long)p->job, err);
    sbuf_free(&out);
}

static int slurm_poll(struct proc *p)
{
    if (p->exited)
        return 1;
    if (p->job <= 0)
        return -EINVAL;
    int64_t now = mono_ns();
    if (now < p->next_poll)
        return 0;
    p->next_poll = now + (p->running ? POLL_RUNNING_NS : POLL_QUEUED_NS);
    query(p);
    return p->exited ? 1 : 0;
}

static int cancel(const struct proc *p, bool term_only)
{
    char id[32], err[512];
    snprintf(id, sizeof(id), "%lld", (long long)p->job);
    char *term[] = {"scancel", "--full", "--signal=TERM", id, NULL};
    char *kill[] = {"scancel", id, NULL};
    int r = sched(term_only ? term : kill, NULL, err, sizeof(err));
    if (r < 0)
        log_warn("%s", err);
    return r;
}

/* Waits (asking Slurm every 250 ms) until p's job ended or until deadline. */
static bool wait_end(struct proc *p, int64_t deadline, bool may_hurry)
{
    while (!p->exited && mono_ns() < deadline && !(may_hurry && proc_hurried())) {
        p->next_poll = 0;
        if (slurm_poll(p) == 1)
            break;
        sleep_ns(250 * MS_NS);
    }
    return p->exited;
}

/* SIGTERM to every step of the job (the command, or the srun of a fan-out),
 * grace_ns for it to end, then scancel (SIGKILL after the site's KillWait). */
static int slurm_stop(struct proc *p, int64_t grace_ns)
{
    if (p->job <= 0 || p->exited)
        return 0;
    p->next_poll = 0;
    if (slurm_poll(p) == 1)
        return 0;
    /* a second Ctrl-C ends the grace at once */
    if (grace_ns > 0 && p->running && cancel(p, true) == 0 &&
        wait_end(p, mono_ns() + grace_ns, true))
        return 0;
    cancel(p, false);
    if (!wait_end(p, mono_ns() + STOP_EXTRA_NS, false))
        log_warn("job %lld was cancelled but Slurm still lists it", (long long)p->job);
    return 0;
}

static const char *slurm_service_host(void)
{
    return NULL;
}

static int slurm_spawn(const struct proc_spec *s, struct proc *p, char *err, size_t errlen)
{
    const struct job_spec *j = s->job;
    *p = (struct proc){0};
    if (!j || !j->site) {
        snprintf(err, errlen, "the slurm backend runs components as batch jobs (no job given)");
        return -EINVAL;
    }
    struct sbuf text = {0}, out = {.max = 64 << 10};
    char **argv = NULL;
    int r = render_job(s, &text);
    if (r < 0) {
        snprintf(err, errlen, "no command to run");
        goto done;
    }
    r = write_file_atomic(j->script_path, text.s, text.len);
    if (r < 0) {
        snprintf(err, errlen, "cannot write %s: %s", j->script_path, strerror(-r));
        goto done;
    }
    strv_push(&argv, "sbatch");
    strv_push(&argv, "--parsable");
    if (s->user) { /* root only (sbatch --uid); sonde checked that it is root */
        uid_t uid;
        gid_t gid;
        r = proc_lookup_user(s->user, &uid, &gid);
        if (r < 0) {
            snprintf(err, errlen, "no such user '%s'", s->user);
            goto done;
        }
        char *u = xasprintf("--uid=%u", (unsigned)uid), *g = xasprintf("--gid=%u", (unsigned)gid);
        strv_push(&argv, u);
        strv_push(&argv, g);
        free(u);
        free(g);
    }
    strv_push(&argv, j->script_path);
    r = sched(argv, &out, err, errlen);
    if (r < 0)
        goto done;
    char *end = NULL;
    long long id = out.s ? strtoll(out.s, &end, 10) : 0;
    if (id <= 0 || !end || (*end && *end != ';' && *end != '\n')) {
        char line[128];
        str_last_line(out.s, out.len, line, sizeof(line));
        snprintf(err, errlen, "sbatch --parsable printed no job id (got '%s')", line);
        r = -EIO;
        goto done;
    }
    p->job = id;
    p->start_mono = mono_ns();
    p->start_wall = wall_ns();
    p->next_poll = p->start_mono + 200 * MS_NS;
    proc_guardian_job(id, true);
done:
    strv_free(argv);
    sbuf_free(&text);
    sbuf_free(&out);
    return r;
}

static char **slurm_step_argv(const struct proc *p, char *const *argv)
{
    if (p->job <= 0 || !p->running || p->exited)
        return NULL;
    char **v = NULL, id[48];
    snprintf(id, sizeof(id), "--jobid=%lld", (long long)p->job);
    const char *pre[] = {"srun", id, "--overlap", "--nodes=1", "--ntasks=1", "--quiet"};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(pre); i++)
        strv_push(&v, pre[i]);
    for (size_t i = 0; argv[i]; i++)
        strv_push(&v, argv[i]);
    return v;
}

static size_t slurm_sweep(const char *prefix)
{
    /* every partition; only this user's jobs unless root (it submits for others) */
    char *argv[] = {"squeue", "--all", "--noheader", "--format=%i %j", geteuid() ? "--me" : NULL,
                    NULL};
    struct sbuf out = {.max = 16 << 20};
    char err[512];
    size_t n = 0;
    if (sched(argv, &out, err, sizeof(err)) < 0) {
        log_warn("cannot list Slurm's jobs: %s", err);
        sbuf_free(&out);
        return 0;
    }
    if (!out.s) /* no job at all */
        return 0;
    for (char *save = NULL, *line = strtok_r(out.s, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        if (!sp || !str_startswith(sp + 1, prefix))
            continue;
        *sp = '\0';
        struct proc p = {.job = strtoll(line, NULL, 10)};
        if (p.job > 0 && cancel(&p, false) == 0)
            n++;
    }
    sbuf_free(&out);
    return n;
}

const struct backend_ops backend_slurm = {
    .name = "slurm",
    .summary = "every component a Slurm batch job (sbatch), on the nodes its resources ask for",
    .service_host = slurm_service_host,
    .listen_host = "0.0.0.0",
    .batch = true,
    .spawn = slurm_spawn,
    .poll = slurm_poll,
    .stop = slurm_stop,
    .step_argv = slurm_step_argv,
    .sweep = slurm_sweep,
};
