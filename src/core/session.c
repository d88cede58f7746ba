/* session.c — runs a resolved benchmark: trials, components, teardown, results. */
#include "core/session.h"

#include "config.h"
#include "version.h"
#include "backends/image_cache.h"
#include "backends/site.h"
#include "core/exporter.h"
#include "core/probe.h"
#include "drivers/monitors/monitors.h"
#include "store/store.h"
#include "util/hdr.h"
#include "util/log.h"
#include "util/units.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS    (100 * 1000000LL)
#define MAX_REASON 1024

#define STATUS_EVERY_NS (10 * 1000000000LL) /* status lines when stderr is not a terminal */

struct session {
    const struct bench_spec *bench;
    const struct run_opts *opts;
    struct store *st;
    char *id;
    char *dir;
    const struct trial_spec *trial;
    int64_t trial_id;
    char *trial_dir;
    struct comp **comps; /* started or starting components of the current trial */
    size_t ncomps;
    bool progress;
    bool tty;             /* stderr is a terminal: the status line is redrawn in place */
    bool status_shown;    /* a status line is on the terminal, not yet ended */
    int64_t status_last;  /* when a status line was last printed (not on a terminal) */
    bool tearing_down;    /* a signal no longer interrupts stop steps */
    char *tag;            /* "SONDE_SESSION_ID=<id>", in every component's environment */
    struct exporter *exp; /* sonde's /metrics endpoint, or NULL */
    /* Energy per result (derive_energy): what the trial's components recorded. */
    double energy_j; /* the gpu monitors' total energy_j, NAN when none */
    struct derived_in {
        char *client;
        double requests, output_tokens, bytes_in, bytes_out;
        int64_t w0, w1; /* its measured window (wall ns), 0 when unknown */
    } * din;
    size_t ndin;
    struct energy_series { /* each GPU's cumulative energy_j points */
        char *labels;
        int64_t *t;
        double *e;
        size_t n, cap;
    } * es;
    size_t nes;
    int lock_fd; /* <dir>/.lock, write-locked while this process runs the session */
};

static volatile sig_atomic_t cancel_signal;
static volatile sig_atomic_t cancel_count; /* a second signal hurries the teardown */

static void on_signal(int sig)
{
    if (!cancel_signal)
        cancel_signal = sig;
    if (cancel_count < 100)
        cancel_count++;
}

/* Grace between SIGTERM and SIGKILL: none once the user insisted (a second signal). */
static int64_t grace(const struct comp *c)
{
    return cancel_count >= 2 ? 0 : c->spec->stop_grace_ns;
}

static bool cancelled(void)
{
    return cancel_signal != 0;
}

/* Sleeps up to ns, waking early when a child exits (SIGCHLD is blocked and
 * waited for here, so exits are seen at once, not at the next tick) or when a
 * signal asks to stop. */
static void nap(int64_t ns)
{
    if (ns <= 0 || cancelled())
        return;
    if (ns > TICK_NS)
        ns = TICK_NS;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    sigtimedwait(&set, NULL, &ts);
}

/* Erases the live status line (comp_status) before other output. */
static void status_end(struct session *s)
{
    if (s->status_shown)
        fputs("\r\033[K", stderr);
    s->status_shown = false;
}

static void progress(struct session *s, const char *fmt, ...) SONDE_PRINTF(2, 3);
static void progress(struct session *s, const char *fmt, ...)
{
    if (!s->progress)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    status_end(s);
    fprintf(stderr, "sonde: %s\n", msg);
    free(msg);
}

/* ---- driver-facing API ---- */

static void live_series_point(struct comp *c, const char *name, const char *unit,
                              const char *labels, double value);
static int64_t thread_cpu_ns(void);
static void live_monitor_cpu(struct comp *c);
static void record_monitor_cpu(struct comp *c);
static void derive_energy(struct session *s);
static void din_clear(struct session *s);
static void energy_point(struct comp *c, const char *labels, int64_t wall, double e);

int comp_metric(struct comp *c, const char *name, const char *unit, const char *labels,
                double value)
{
    struct metric_row m = {
        .trial_id = c->session->trial_id,
        .component = (char *)c->spec->name,
        .name = (char *)name,
        .unit = (char *)unit,
        .labels = (char *)labels,
        .value = value,
    };
    if (c->spec->role == ROLE_MONITOR && !strcmp(c->spec->driver, "gpu") && !labels &&
        !strcmp(name, "energy_j") && isfinite(value))
        c->session->energy_j = (isnan(c->session->energy_j) ? 0 : c->session->energy_j) + value;
    int r = store_metric_put(c->session->st, c->session->id, &m);
    if (r < 0) /* never silent: a lost number must at least be said */
        log_warn("%s: cannot store metric %s: %s", c->name, name, store_errmsg(c->session->st));
    return r;
}

int comp_series_point(struct comp *c, const char *name, const char *unit, const char *labels,
                      int64_t wall, double value)
{
    int64_t sid;
    int r = store_series_get_or_create(c->session->st, c->session->id, c->session->trial_id,
                                       c->spec->name, name, unit, labels, &sid);
    if (r == 0)
        r = store_series_append(c->session->st, sid, wall, value);
    if (r < 0)
        log_warn("%s: cannot store a point of %s: %s", c->name, name, store_errmsg(c->session->st));
    live_series_point(c, name, unit, labels, value);
    if (c->spec->role == ROLE_MONITOR && !strcmp(c->spec->driver, "gpu") && labels &&
        !strcmp(name, "energy_j") && isfinite(value))
        energy_point(c, labels, wall, value);
    return r;
}

void comp_batch_begin(struct comp *c)
{
    store_begin(c->session->st);
}

void comp_batch_end(struct comp *c)
{
    store_commit(c->session->st);
}

int comp_histogram(struct comp *c, const char *name, const char *unit, const char *labels,
                   const struct hdr *h)
{
    struct histogram_row row = {
        .trial_id = c->session->trial_id,
        .component = (char *)c->spec->name,
        .name = (char *)name,
        .unit = (char *)unit,
        .labels = (char *)labels,
        .sigfigs = hdr_sigfigs(h),
        .count = hdr_count(h),
    };
    hdr_encode(h, &row.encoding, &row.len);
    int r = store_histogram_put(c->session->st, c->session->id, &row);
    if (r < 0)
        log_warn("%s: cannot store histogram %s: %s", c->name, name, store_errmsg(c->session->st));
    free(row.encoding);
    return r;
}

void comp_warn(struct comp *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *body = xvasprintf(fmt, ap);
    va_end(ap);
    char *msg = xasprintf("%s %s: %s", comp_role_name(c->spec->role), c->spec->name, body);
    store_event_add(c->session->st, c->session->id, c->session->trial_id, "warning", msg);
    progress(c->session, "warning: %s", msg);
    free(msg);
    free(body);
}

void comp_status(struct comp *c, const char *fmt, ...)
{
    struct session *s = c->session;
    int64_t now = mono_ns();
    if (!s->progress || (!s->tty && s->status_last && now - s->status_last < STATUS_EVERY_NS))
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    if (s->tty) { /* redrawn in place; the next message or the session's end erases it */
        fprintf(stderr, "\r\033[Ksonde: %s: %s", c->spec->name, msg);
        s->status_shown = true;
    } else {
        fprintf(stderr, "sonde: %s: %s\n", c->spec->name, msg);
    }
    fflush(stderr);
    s->status_last = now;
    free(msg);
}

size_t session_comps(struct session *s, struct comp ***out)
{
    *out = s->comps;
    return s->ncomps;
}

struct comp *session_service(struct session *s, const char *name)
{
    for (size_t i = 0; s && i < s->ncomps; i++) {
        struct comp *c = s->comps[i];
        if (c->spec && c->spec->role == ROLE_SERVICE && !strcmp(c->spec->name, name))
            return c;
    }
    return NULL;
}

char *comp_metrics_url(const struct comp *svc, const char *def_path, char **why)
{
    *why = NULL;
    const char *m = svc->spec ? sv_str(svc->spec->with, "metrics", NULL) : NULL;
    if (!m || !m[0])
        m = def_path;
    if (!m)
        return NULL;
    if (strstr(m, "://")) /* a whole URL: checked by the service driver */
        return xstrdup(m);
    if (!svc->host || !svc->port) {
        *why = xstrdup("has no host and port to scrape");
        return NULL;
    }
    return xasprintf("http://%s:%s%s%s", svc->host, svc->port, m[0] == '/' ? "" : "/", m);
}

void comp_set_reason(struct comp *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *reason = xvasprintf(fmt, ap); /* before freeing: the old reason may be an argument */
    va_end(ap);
    free(c->reason);
    c->reason = reason;
}

int64_t comp_opt_duration(const struct comp *c, const char *key, const char *def)
{
    int64_t ns = 0;
    if (sv_as_duration(sv_get(c->spec->with, key), &ns) < 0 &&
        (!def || parse_duration_ns(def, &ns) < 0))
        ns = 0;
    return ns;
}

/* The prepare steps (comp_spec_steps); c->reason names a malformed one. */
static int prepare_steps(struct comp *c, char ****out)
{
    size_t bad = 0;
    int r = comp_spec_steps(c->spec, out, &bad);
    if (r < 0)
        comp_set_reason(c, "prepare step %zu is not a command (a list of strings)", bad);
    return r;
}

int64_t comp_tasks(const struct comp *c)
{
    if (!c->backend->batch)
        return 1;
    const struct site *site = c->session->opts->site;
    struct resources r;
    resources_merge(&r, site ? &site->defaults : &(struct resources){0}, &c->spec->res);
    int64_t n = (r.nodes > 0 ? r.nodes : 1) * (r.tasks_per_node > 0 ? r.tasks_per_node : 1);
    resources_clear(&r);
    return n;
}

int comp_run_prepare(struct comp *c)
{
    char ***steps = NULL;
    int r = prepare_steps(c, &steps);
    int64_t timeout = comp_opt_duration(c, "prepare_timeout", "5m");
    for (size_t i = 0; r == 0 && steps && steps[i]; i++) {
        char what[64];
        snprintf(what, sizeof(what), "prepare step %zu", i + 1);
        r = comp_run_step(c, steps[i], timeout, what);
    }
    comp_steps_free(steps);
    return r;
}

int comp_start_command(struct comp *c)
{
    /* Batch backends run the prepare steps inside the job, before the command. */
    int r = c->backend->batch ? 0 : comp_run_prepare(c);
    if (r < 0)
        return r;
    char **argv = NULL;
    if (sv_as_strv(sv_get(c->spec->with, "command"), &argv) < 0 || !argv[0]) {
        strv_free(argv);
        comp_set_reason(c, "option 'command' must be a non-empty list of strings");
        return -EINVAL;
    }
    r = comp_spawn(c, argv);
    strv_free(argv);
    return r;
}

/* The component's environment: its recipe env plus SONDE_* variables. */
static char **comp_env(struct comp *c)
{
    char **env = strv_dup(c->spec->env);
    char *kv[] = {
        xasprintf("SONDE_SESSION_ID=%s", c->session->id),
        xasprintf("SONDE_SESSION_DIR=%s", c->session->dir),
        xasprintf("SONDE_COMPONENT=%s", c->spec->name),
        xasprintf("SONDE_COMPONENT_DIR=%s", c->work_dir),
        xasprintf("SONDE_TRIAL=%u", c->session->trial->index),
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(kv); i++) {
        strv_push(&env, kv[i]);
        free(kv[i]);
    }
    return env;
}

/* The user to switch to: none when the component runs as sonde's own user.
 * A batch job runs as the user who submits it: only root can submit for
 * another (sbatch --uid); otherwise `user:` is ignored (said once, at start). */
static const char *switch_user(const struct comp *c)
{
    const char *u = c->spec->user;
    if (!u || geteuid() == 0)
        return u;
    struct passwd *pw = getpwuid(geteuid());
    if (c->backend->batch)
        return NULL;
    return pw && !strcmp(pw->pw_name, u) ? NULL : u;
}

/* A batch job's description for the backend (the main process only);
 * agent: the monitor agent's command when the trial has monitors that use
 * it; image: the file the container runtime gets (the cached copy of a
 * remote image). Borrowed from the caller. */
static void job_fill(struct comp *c, char *const *const *steps, char *const *agent,
                     const char *agent_log, const char *image, struct job_spec *j)
{
    struct session *s = c->session;
    *j = (struct job_spec){
        .image = image,
        .monitor_argv = agent,
        .monitor_log = agent_log,
        .name = c->job_name,
        .comment = c->job_comment,
        .script_path = c->script_path,
        .task_out_pattern = c->task_out,
        .task_err_pattern = c->task_err,
        .res = &c->spec->res,
        .site = s->opts->site,
        .binds = c->spec->binds,
        .steps = steps,
    };
}

static char *comp_where(const struct comp *c);

/* The store row of a started component: running, where, its command. */
static void comp_update_running(struct comp *c)
{
    char *cmd = sv_to_json(sv_get(c->spec->with, "command"));
    char *host = comp_where(c);
    struct component_row row = {
        .id = c->store_id,
        .pid = c->proc.pid,
        .command = cmd,
        .host = host,
        .state = "running",
        .exit_code = -1,
        .started = c->proc.start_wall,
    };
    store_component_update(c->session->st, &row);
    free(host);
    free(cmd);
}

/* Starts argv through be with the component's user, cwd and environment;
 * job: the batch job's description (NULL for a local process). */
static int spawn_to(struct comp *c, const struct backend_ops *be, const struct job_spec *job,
                    char *const *argv, const char *out, const char *err, struct proc *p)
{
    char **env = comp_env(c);
    struct proc_spec ps = {
        .argv = argv,
        .env_extra = env,
        .cwd = c->spec->cwd ? c->spec->cwd : c->work_dir,
        .user = switch_user(c),
        .out_path = out,
        .err_path = err,
        .stdin_fd = -1,
        .job = job,
    };
    char errbuf[512] = "";
    int r = be->spawn(&ps, p, errbuf, sizeof(errbuf));
    if (r < 0)
        comp_set_reason(c, "%s", errbuf[0] ? errbuf : strerror(-r));
    strv_free(env);
    return r;
}

int comp_spawn(struct comp *c, char *const *argv)
{
    int r;
    if (c->backend->batch) {
        char ***steps = NULL, *exe = self_exe();
        char **agent = agent_job_argv(exe, c->dir, trial_agent_interval(c->session->trial));
        char *agent_log = agent_job_log(c->dir);
        struct job_spec j;
        char ierr[512]; /* the image was pulled before the session (slurm_pull_images) */
        char *image = c->spec->image ? image_job_path(c->session->opts->site, c->spec->image, ierr,
                                                      sizeof(ierr))
                                     : NULL;
        r = c->spec->image && !image ? -EINVAL : 0;
        if (r < 0)
            comp_set_reason(c, "%s", ierr);
        if (r == 0)
            r = prepare_steps(c, &steps);
        if (r == 0) {
            job_fill(c, (char *const *const *)steps, agent, agent_log, image, &j);
            r = spawn_to(c, c->backend, &j, argv, c->out_path, c->err_path, &c->proc);
        }
        comp_steps_free(steps);
        free(image);
        strv_free(agent);
        free(agent_log);
        free(exe);
        if (r == 0)
            progress(c->session, "%s %s: job %lld submitted (%s)", comp_role_name(c->spec->role),
                     c->spec->name, (long long)c->proc.job, c->script_path);
    } else {
        r = spawn_to(c, c->backend, NULL, argv, c->out_path, c->err_path, &c->proc);
    }
    if (r < 0)
        return r;
    c->started = true;
    comp_update_running(c);
    return 0;
}

static char *argv_text(char *const *argv)
{
    struct sbuf b = {.max = 4096};
    for (size_t i = 0; argv[i]; i++)
        if (sbuf_printf(&b, "%s%s", i ? " " : "", argv[i]) < 0)
            break;
    return sbuf_steal(&b);
}

int comp_run_step(struct comp *c, char *const *argv, int64_t timeout_ns, const char *what)
{
    struct proc p = {0};
    char *cmd = argv_text(argv);
    /* On a batch backend a step runs inside the component's job (srun), started
     * from here: a local process either way. */
    const struct backend_ops *be = c->backend->batch ? &backend_local : c->backend;
    char **wrapped = c->backend->batch ? c->backend->step_argv(&c->proc, argv) : NULL;
    int r = -ESRCH;
    if (c->backend->batch && !wrapped)
        comp_set_reason(c, "%s (%s): the component's job is not running", what, cmd);
    else
        r = spawn_to(c, be, NULL, wrapped ? wrapped : argv, c->steps_path, NULL, &p);
    strv_free(wrapped);
    if (r < 0) {
        if (r != -ESRCH)
            comp_set_reason(c, "%s: %s", what, c->reason);
        goto out;
    }
    int64_t deadline = mono_ns() + timeout_ns;
    while (be->poll(&p) == 0) {
        bool interrupt = cancelled() && (!c->session->tearing_down || cancel_count >= 2);
        if (interrupt || mono_ns() > deadline) {
            be->stop(&p, grace(c));
            if (interrupt)
                comp_set_reason(c, "%s (%s) interrupted", what, cmd);
            else
                comp_set_reason(c, "%s (%s) timed out", what, cmd);
            r = interrupt ? -ECANCELED : -ETIMEDOUT;
            goto out;
        }
        nap(deadline - mono_ns());
    }
    be->stop(&p, grace(c)); /* what the step left in its group */
    bool job_ended = false;
    if (c->backend->batch && (!WIFEXITED(p.status) || WEXITSTATUS(p.status) != 0)) {
        /* A step inside a job is cut off when the job ends (a stop command
         * that made the service exit): that is its success, not a failure. */
        for (int i = 0; i < 20 && !job_ended; i++) { /* it may be completing: 2 s */
            c->proc.next_poll = 0;
            job_ended = c->backend->poll(&c->proc) == 1;
            if (!job_ended)
                sleep_ns(TICK_NS);
        }
    }
    if (!job_ended && (!WIFEXITED(p.status) || WEXITSTATUS(p.status) != 0)) {
        char st[128];
        proc_describe_status(p.status, st, sizeof(st));
        comp_set_reason(c, "%s (%s) failed: %s (see %s)", what, cmd, st, c->steps_path);
        r = -EIO;
    }
out:
    free(cmd);
    return r;
}

/* ---- component instances ---- */

struct lookup_ctx {
    struct session *s;
    const struct comp_spec *self;
    char buf[4096];
};

static struct comp *find_comp(struct session *s, const char *name)
{
    for (size_t i = 0; i < s->ncomps; i++)
        if (strcmp(s->comps[i]->name, name) == 0)
            return s->comps[i];
    return NULL;
}

static const char *comp_field(struct lookup_ctx *l, const char *name, const char *field)
{
    struct comp *c = find_comp(l->s, name);
    if (!c)
        return NULL;
    /* A batch job's own host is known once it runs: until then it stays
     * written as ${self.host} (the spec is resolved again once placed). */
    if (!strcmp(field, "host") && !c->host && l->self && !strcmp(name, l->self->name))
        return "${self.host}";
    if (!strcmp(field, "host"))
        return c->host;
    if (!strcmp(field, "listen"))
        return c->backend->listen_host;
    if (!strcmp(field, "port"))
        return c->port;
    if (!strcmp(field, "dir"))
        return c->work_dir;
    if (!strcmp(field, "name"))
        return c->name;
    return NULL;
}

static const char *lookup(void *ud, const char *ref)
{
    struct lookup_ctx *l = ud;
    struct session *s = l->s;
    if (!strcmp(ref, "session.dir"))
        return s->dir;
    if (!strcmp(ref, "session.id"))
        return s->id;
    if (!strcmp(ref, "trial.label"))
        return s->trial->label;
    if (!strcmp(ref, "trial.index") || !strcmp(ref, "trial.repetition")) {
        unsigned v = ref[6] == 'i' ? s->trial->index : s->trial->repetition;
        snprintf(l->buf, sizeof(l->buf), "%u", v);
        return l->buf;
    }
    if (str_startswith(ref, "self."))
        return comp_field(l, l->self->name, ref + 5);
    if (str_startswith(ref, "services.")) {
        const char *name = ref + 9, *dot = strchr(name, '.');
        if (!dot || (size_t)(dot - name) >= sizeof(l->buf))
            return NULL;
        char n[256];
        snprintf(n, sizeof(n), "%.*s", (int)(dot - name), name);
        return comp_field(l, n, dot + 1);
    }
    return NULL;
}

/* A copy of the spec with every run-time reference substituted. */
static int spec_instantiate(struct session *s, const struct comp_spec *in, struct comp_spec **out,
                            char **err)
{
    struct lookup_ctx l = {.s = s, .self = in};
    struct diags d = {0};
    int r = comp_spec_interp(in, lookup, &l, &d, out);
    if (r < 0) {
        *err = d.n ? diags_format(&d) : xstrdup("cannot resolve references");
        size_t n = strlen(*err);
        if (n && (*err)[n - 1] == '\n')
            (*err)[n - 1] = '\0';
    }
    diags_free(&d);
    return r;
}

static void comp_free(struct comp *c)
{
    if (!c)
        return;
    if (c->ops && c->ops->cleanup)
        c->ops->cleanup(c);
    comp_spec_free(c->spec);
    free(c->dir);
    free(c->work_dir);
    free(c->out_path);
    free(c->err_path);
    free(c->steps_path);
    free(c->job_name);
    free(c->job_comment);
    free(c->script_path);
    free(c->task_out);
    free(c->task_err);
    free(c->host);
    free(c->port);
    free(c->reason);
    free(c->live_labels);
    free(c);
}

/* "exited with status 3" / "was killed by signal 9 (SIGKILL)" / "ended: job 12
 * TIMEOUT on n1: it reached its time limit (exit code 0:15)". */
static void describe_end(const struct proc *p, char *buf, size_t n)
{
    if (p->detail[0]) {
        snprintf(buf, n, "ended: %s", p->detail);
        return;
    }
    if (WIFEXITED(p->status)) {
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(p->status));
        return;
    }
    char st[128];
    proc_describe_status(p->status, st, sizeof(st));
    snprintf(buf, n, "was %s", st);
}

static int free_port(char *buf, size_t n)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int r = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        r = -errno;
    else
        snprintf(buf, n, "%u", ntohs(a.sin_port));
    close(fd);
    return r;
}

/* Every directory above path must be searchable by uid, or the component
 * (running as that user) cannot reach its own directory. */
static int check_reachable(const char *path, const char *user, char **err)
{
    uid_t uid;
    gid_t gid;
    if (proc_lookup_user(user, &uid, &gid) < 0) {
        *err = xasprintf("no such user '%s'", user);
        return -ENOENT;
    }
    char *p = xstrdup(path);
    int r = 0;
    for (char *slash = strrchr(p, '/'); slash && slash != p; slash = strrchr(p, '/')) {
        *slash = '\0';
        struct stat st;
        if (stat(p, &st) < 0)
            continue;
        bool ok = (st.st_mode & S_IXOTH) || (st.st_uid == uid && (st.st_mode & S_IXUSR)) ||
                  (st.st_gid == gid && (st.st_mode & S_IXGRP));
        if (!ok) {
            *err = xasprintf("user '%s' cannot reach %s (directory %s is not searchable by it): "
                             "use a workspace every component user can traverse "
                             "(--workspace DIR or $SONDE_HOME)",
                             user, path, p);
            r = -EACCES;
            break;
        }
    }
    free(p);
    return r;
}

/* <dir> stays sonde's (logs live there, so a component cannot swap them for
 * links); <dir>/work belongs to the component's user. */
static int comp_prepare_dir(struct comp *c, char **err)
{
    int r = mkdir_p(c->work_dir, 0755);
    if (r < 0) {
        *err = xasprintf("cannot create %s: %s", c->work_dir, strerror(-r));
        return r;
    }
    /* batch: where fan-out tasks and monitor agents write */
    char *tasks = c->backend->batch ? path_join(c->dir, "tasks") : NULL;
    char *agents = c->backend->batch ? path_join(c->dir, MONITOR_AGENT_DIR) : NULL;
    const char *dirs[] = {tasks, agents};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(dirs) && dirs[i] && r == 0; i++) {
        r = mkdir_p(dirs[i], 0755);
        if (r < 0)
            *err = xasprintf("cannot create %s: %s", dirs[i], strerror(-r));
    }
    uid_t uid = 0;
    gid_t gid = 0;
    if (r == 0 && c->spec->user && geteuid() == 0 &&
        proc_lookup_user(c->spec->user, &uid, &gid) < 0) {
        *err = xasprintf("no such user '%s'", c->spec->user);
        r = -ENOENT;
    }
    /* A batch job (sbatch --uid) writes its own output files as that user:
     * they exist beforehand, given to it, like its directories. */
    const char *give[] = {c->work_dir, tasks, agents, tasks ? c->out_path : NULL,
                          tasks ? c->err_path : NULL};
    for (size_t i = 0; c->spec->user && geteuid() == 0 && i < SONDE_ARRAY_LEN(give) && r == 0;
         i++) {
        if (!give[i])
            continue;
        if (i >= 3) {
            int fd = open(give[i], O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
            if (fd >= 0)
                close(fd);
        }
        if (chown(give[i], uid, gid) < 0) {
            r = -errno;
            *err = xasprintf("cannot give %s to user '%s': %s", give[i], c->spec->user,
                             strerror(errno));
        }
    }
    free(tasks);
    free(agents);
    if (r < 0 || !c->spec->user || geteuid() != 0)
        return r;
    return check_reachable(c->work_dir, c->spec->user, err);
}

/* Creates the instance and its store row; does not start it. */
static int comp_create(struct session *s, const struct comp_spec *spec, struct comp **out,
                       char **err)
{
    struct comp *c = xcalloc(1, sizeof(*c));
    c->session = s;
    c->name = spec->name;
    c->backend = s->opts->backend;
    c->ops = driver_find(spec->role, spec->driver);
    c->dir = path_join(s->trial_dir, spec->name);
    c->work_dir = path_join(c->dir, "work");
    c->out_path = path_join(c->dir, "stdout.log");
    c->err_path = path_join(c->dir, "stderr.log");
    c->steps_path = path_join(c->dir, "steps.log");
    c->host = xstrdup(c->backend->service_host());
    if (c->backend->batch && !(c->ops && c->ops->runs_command)) { /* runs inside sonde */
        free(c->host);
        c->host = xstrdup(backend_local.service_host());
    }
    if (c->backend->batch) {
        c->job_name = xasprintf("sonde-%s-%s", s->id, spec->name);
        c->job_comment =
            xasprintf("sonde %s %s (%s driver), session %s, %s", comp_role_name(spec->role),
                      spec->name, spec->driver, s->id, s->trial->label);
        c->script_path = path_join(c->dir, "job.sh");
        c->task_out = path_join(c->dir, "tasks/task-%t.stdout");
        c->task_err = path_join(c->dir, "tasks/task-%t.stderr");
    }
    s->comps = xrealloc(s->comps, (s->ncomps + 1) * sizeof(*s->comps));
    s->comps[s->ncomps++] = c;
    *out = c;
    if (!c->ops) {
        *err = xasprintf("%s %s: unknown driver '%s'", comp_role_name(spec->role), spec->name,
                         spec->driver);
        return -ENOENT;
    }
    if (spec->port) {
        char buf[16];
        int r = strcmp(spec->port, "auto") ? 0 : free_port(buf, sizeof(buf));
        if (r < 0) {
            *err = xasprintf("service %s: no free port: %s", spec->name, strerror(-r));
            return r;
        }
        c->port = xstrdup(strcmp(spec->port, "auto") ? spec->port : buf);
    }
    return 0;
}

/* "host:port" / "host"; a batch job not yet placed is "(queued)". */
static char *comp_where(const struct comp *c)
{
    const char *h = c->host ? c->host : c->proc.node[0] ? c->proc.node : "(queued)";
    return c->port ? xasprintf("%s:%s", h, c->port) : xstrdup(h);
}

static int comp_register(struct comp *c)
{
    struct session *s = c->session;
    char *host = comp_where(c);
    struct component_row row = {
        .session = s->id,
        .trial_id = s->trial_id,
        .name = (char *)c->spec->name,
        .role = (char *)comp_role_name(c->spec->role),
        .driver = (char *)c->spec->driver,
        .host = host,
        .log_path = c->dir,
        .exit_code = -1,
        .state = "starting",
        .started = wall_ns(),
    };
    int r = store_component_create(s->st, &row, &c->store_id);
    free(host);
    return r;
}

char *comp_cache_dir(const struct comp *c, const char *what)
{
    const struct session *s = c->session;
    if (!s || !s->opts || !s->opts->workspace)
        return NULL;
    char *cache = path_join(s->opts->workspace, "cache");
    char *dir = path_join(cache, what);
    free(cache);
    return dir;
}

void comp_provenance(struct comp *c, const char *what, const char *value)
{
    struct session *s = c->session;
    if (!s)
        return;
    char *key = xasprintf("%s.trial-%03u.%s", what, s->trial->index + 1, c->spec->name);
    store_provenance_put(s->st, s->id, key, value ? value : "");
    free(key);
}

/* Provenance of a batch job: "job.trial-001.db" = "12345 on n1 (COMPLETED ...)". */
static void record_job(struct comp *c)
{
    struct session *s = c->session;
    if (c->proc.job <= 0)
        return;
    char *key = xasprintf("job.trial-%03u.%s", s->trial->index + 1, c->spec->name);
    char *val = xasprintf("%lld nodes=%s%s%s", (long long)c->proc.job,
                          c->proc.nodes[0] ? c->proc.nodes : "-", c->proc.detail[0] ? "; " : "",
                          c->proc.detail);
    store_provenance_put(s->st, s->id, key, val);
    free(key);
    free(val);
}

static void comp_record_end(struct comp *c, const char *state)
{
    record_job(c);
    char *host = comp_where(c);
    struct component_row row = {
        .id = c->store_id,
        .pid = c->proc.pid,
        .host = host,
        .state = (char *)state,
        .reason = c->reason,
        .exit_code = -1,
        .started = c->proc.start_wall,
        .ended = c->proc.end_wall ? c->proc.end_wall : wall_ns(),
    };
    if (proc_started(&c->proc) && c->proc.exited) {
        if (WIFEXITED(c->proc.status))
            row.exit_code = WEXITSTATUS(c->proc.status);
        else if (WIFSIGNALED(c->proc.status))
            row.exit_signal = WTERMSIG(c->proc.status);
    }
    char *cmd = sv_to_json(sv_get(c->spec->with, "command"));
    row.command = cmd;
    store_component_update(c->session->st, &row);
    free(cmd);
    free(host);
}

/* ---- one trial ---- */

struct trial_run {
    char *reason; /* why it failed, or NULL */
    bool cancel;
};

static void trial_fail(struct trial_run *t, const char *fmt, ...) SONDE_PRINTF(2, 3);
static void trial_fail(struct trial_run *t, const char *fmt, ...)
{
    if (t->reason)
        return; /* the first cause is the one that matters */
    va_list ap;
    va_start(ap, fmt);
    t->reason = xvasprintf(fmt, ap);
    va_end(ap);
}

static const char *trial_ord(struct session *s)
{
    static char buf[64];
    snprintf(buf, sizeof(buf), "trial %u", s->trial->index + 1);
    return buf;
}

/* True (the trial failed, saying how) when the service's process or job has
 * ended while sonde waits for it to be ready. */
static bool ended_before_ready(struct session *s, struct comp *c, struct trial_run *t)
{
    if (c->backend->poll(&c->proc) != 1)
        return false;
    char st[320];
    describe_end(&c->proc, st, sizeof(st));
    trial_fail(t, "service %s %s before it was ready (%s; see %s)", c->spec->name, st, trial_ord(s),
               c->dir);
    return true;
}

static int wait_ready(struct session *s, struct comp *c, struct trial_run *t)
{
    const struct probe_spec *p = &c->spec->ready;
    if (p->kind == PROBE_NONE)
        return 0;
    char what[512], detail[256] = "no attempt yet";
    probe_describe(p, what, sizeof(what));
    int64_t t0 = mono_ns(), deadline = t0 + p->timeout_ns;
    for (;;) {
        if (cancelled())
            return -ECANCELED;
        if (ended_before_ready(s, c, t))
            return -EIO;
        int64_t left = deadline - mono_ns();
        int r = probe_once(p, c->out_path, switch_user(c),
                           left < p->interval_ns ? left : p->interval_ns, detail, sizeof(detail));
        if (r == 1) {
            progress(s, "service %s ready after %.1fs (%s)", c->spec->name,
                     (double)(mono_ns() - t0) / 1e9, what);
            return 0;
        }
        if (r < 0) {
            trial_fail(t, "service %s: readiness probe %s failed: %s", c->spec->name, what, detail);
            return r;
        }
        if (mono_ns() >= deadline) {
            char dur[32];
            format_duration(p->timeout_ns, dur, sizeof(dur));
            trial_fail(t, "service %s not ready after %s: probe %s: %s", c->spec->name, dur, what,
                       detail);
            return -ETIMEDOUT;
        }
        int64_t next = mono_ns() + (p->interval_ns < left ? p->interval_ns : left);
        while (!cancelled() && mono_ns() < next)
            nap(next - mono_ns());
    }
}

/* The text of the parts of spec that go into a batch job (env, cwd, with:)
 * still holds ${self.host}: only known once the job runs. */
static bool job_needs_host(const struct comp_spec *spec)
{
    char *cmd = sv_to_json(sv_get(spec->with, "command"));
    char *prep = sv_to_json(sv_get(spec->with, "prepare"));
    bool found = (cmd && strstr(cmd, "${self.host}")) || (prep && strstr(prep, "${self.host}"));
    free(cmd);
    free(prep);
    for (size_t i = 0; spec->env && spec->env[i] && !found; i++)
        found = strstr(spec->env[i], "${self.host}") != NULL;
    found = found || (spec->cwd && strstr(spec->cwd, "${self.host}"));
    return found;
}

/* A batch backend's service: waits until its job runs (saying why it is
 * queued), bounded by the trial's timeout when there is one; then its host is
 * known and the spec is resolved again from orig with it (the readiness
 * probe and stop command use it). */
static int wait_placed(struct session *s, struct comp *c, const struct comp_spec *orig,
                       struct trial_run *t)
{
    char shown[sizeof(c->proc.pending)] = "";
    int64_t t0 = mono_ns(), limit = s->trial->timeout_ns;
    while (!c->proc.running) {
        if (cancelled())
            return -ECANCELED;
        if (ended_before_ready(s, c, t))
            return -EIO;
        if (c->proc.running)
            break;
        if (c->proc.pending[0] && strcmp(shown, c->proc.pending)) {
            progress(s, "service %s: job %lld queued (%s)", c->spec->name, (long long)c->proc.job,
                     c->proc.pending);
            snprintf(shown, sizeof(shown), "%s", c->proc.pending);
        }
        if (limit > 0 && mono_ns() - t0 >= limit) {
            char dur[32];
            format_duration(limit, dur, sizeof(dur));
            trial_fail(t, "service %s: job %lld still queued after %s (the trial's timeout): %s",
                       c->spec->name, (long long)c->proc.job, dur,
                       c->proc.pending[0] ? c->proc.pending : "no reason given");
            return -ETIMEDOUT;
        }
        nap(TICK_NS);
    }
    free(c->host);
    c->host = xstrdup(c->proc.node);
    progress(s, "service %s: job %lld running on %s (%s)", c->spec->name, (long long)c->proc.job,
             c->proc.nodes, c->host);
    struct comp_spec *inst = NULL;
    char *err = NULL;
    if (spec_instantiate(s, orig, &inst, &err) < 0) {
        trial_fail(t, "service %s: %s", c->spec->name, err);
        free(err);
        return -EINVAL;
    }
    comp_spec_free(c->spec);
    c->spec = inst;
    if (inst->ready.kind == PROBE_TCP && !inst->ready.host) /* its node, not this host */
        inst->ready.host = xstrdup(c->host);
    comp_update_running(c);
    return 0;
}

static int start_one(struct session *s, const struct comp_spec *spec, struct trial_run *t)
{
    struct comp *c = NULL;
    char *err = NULL;
    struct comp_spec *inst = NULL;
    int r = comp_create(s, spec, &c, &err);
    if (r == 0) {
        r = spec_instantiate(s, spec, &inst, &err);
        c->spec = inst;
    }
    if (r == 0 && c->backend->batch && job_needs_host(inst)) {
        err = xasprintf("${self.host} is known only once the job runs on %s, so it cannot be in "
                        "the command, prepare steps, env or cwd (a service listens on every "
                        "address of its node with ${self.listen})",
                        c->backend->name);
        r = -EINVAL;
    }
    if (r == 0)
        r = comp_prepare_dir(c, &err);
    if (r == 0)
        r = comp_register(c);
    if (r < 0) {
        trial_fail(t, "%s %s: %s", comp_role_name(spec->role), spec->name,
                   err ? err : strerror(-r));
        free(err);
        return r;
    }
    progress(s, "%s: starting %s %s (%s)", trial_ord(s), comp_role_name(spec->role), spec->name,
             spec->driver);
    struct passwd *me = getpwuid(geteuid());
    if (c->backend->batch && c->spec->user && geteuid() != 0 && c->ops->runs_command &&
        !(me && !strcmp(me->pw_name, c->spec->user)))
        comp_warn(c, "user: %s is ignored on %s: a job runs as the user who submits it",
                  c->spec->user, c->backend->name);
    if (!c->backend->batch && c->spec->image)
        comp_warn(c,
                  "image: %s is ignored on the %s backend: the command runs on this machine "
                  "as it is (images run through Apptainer on slurm)",
                  c->spec->image, c->backend->name);
    c->start_mono = mono_ns();
    c->start_wall = wall_ns();
    int64_t cpu0 = thread_cpu_ns();
    r = c->ops->start ? c->ops->start(c) : 0;
    if (spec->role == ROLE_MONITOR)
        c->cpu_ns += thread_cpu_ns() - cpu0;
    if (r < 0 && cancelled()) {
        t->cancel = true;
        return r;
    }
    if (r < 0) {
        trial_fail(t, "%s %s failed to start: %s", comp_role_name(spec->role), spec->name,
                   c->reason ? c->reason : strerror(-r));
        return r;
    }
    c->started = true;
    if (spec->role == ROLE_SERVICE && c->backend->batch && proc_started(&c->proc)) {
        r = wait_placed(s, c, spec, t);
        if (r < 0) {
            t->cancel = r == -ECANCELED;
            return r;
        }
    }
    if (spec->role == ROLE_SERVICE)
        return wait_ready(s, c, t);
    return 0;
}

static void stop_one(struct comp *c)
{
    if (!c->spec)
        return;
    bool queued = c->proc.job > 0 && !c->proc.running; /* a job that never ran: no stop step */
    if (c->started && c->ops->stop && proc_started(&c->proc) && !c->proc.exited && !queued)
        c->ops->stop(c);
    if (proc_started(&c->proc)) /* also when the leader is gone: its group may live on */
        c->backend->stop(&c->proc, grace(c));
    if (c->started && !c->finished && c->spec->role == ROLE_MONITOR) {
        c->finished = true;
        int64_t cpu0 = thread_cpu_ns();
        if (c->ops->finish)
            c->ops->finish(c);
        c->cpu_ns += thread_cpu_ns() - cpu0;
        record_monitor_cpu(c);
    }
}

static void check_services(struct session *s, struct trial_run *t)
{
    for (size_t i = 0; i < s->ncomps; i++) {
        struct comp *c = s->comps[i];
        if (!c->spec || c->spec->role != ROLE_SERVICE || !proc_started(&c->proc) || c->proc.exited)
            continue;
        if (c->backend->poll(&c->proc) == 1) {
            char st[320];
            describe_end(&c->proc, st, sizeof(st));
            comp_set_reason(c, "%s during the trial", st);
            trial_fail(t, "service %s %s during %s", c->spec->name, st, trial_ord(s));
        }
    }
}

/* Ticks monitors and clients; returns true when every client has finished. */
static bool tick_all(struct session *s, struct trial_run *t, int64_t now)
{
    /* Write transactions stay short: never open while a driver may block
     * (a client's tick can stop a process group), so other sonde processes
     * sharing the store are not locked out. */
    bool clients_done = true;
    for (size_t i = 0; i < s->ncomps; i++) {
        struct comp *c = s->comps[i];
        if (!c->spec || !c->started || c->finished || c->spec->role == ROLE_SERVICE)
            continue;
        bool monitor = c->spec->role == ROLE_MONITOR;
        int64_t cpu0 = monitor ? thread_cpu_ns() : 0;
        if (monitor)
            store_begin(s->st);
        int r = c->ops->tick ? c->ops->tick(c, now) : 0;
        if (monitor) {
            store_commit(s->st);
            c->cpu_ns += thread_cpu_ns() - cpu0;
            live_monitor_cpu(c);
            if (r < 0)
                comp_warn(c, "sampling failed: %s", strerror(-r));
            continue;
        }
        if (r == 0) {
            clients_done = false;
            continue;
        }
        c->finished = true;
        store_begin(s->st);
        int f = r > 0 && c->ops->finish ? c->ops->finish(c) : r < 0 ? r : 0;
        store_commit(s->st);
        if (f < 0)
            trial_fail(t, "client %s: %s", c->spec->name, c->reason ? c->reason : strerror(-f));
        else
            progress(s, "%s: client %s finished", trial_ord(s), c->spec->name);
    }
    return clients_done;
}

static void supervise(struct session *s, struct trial_run *t)
{
    int64_t t0 = mono_ns();
    int64_t limit = s->trial->timeout_ns;
    for (;;) {
        if (cancelled()) {
            t->cancel = true;
            return;
        }
        check_services(s, t);
        int64_t now = mono_ns();
        bool done = tick_all(s, t, now);
        if (t->reason)
            return;
        bool has_clients = false;
        for (size_t i = 0; i < s->trial->ncomps; i++)
            has_clients |= s->trial->comps[i].role == ROLE_CLIENT;
        if (has_clients && done)
            return;
        if (limit > 0 && now - t0 >= limit) {
            if (has_clients) {
                char dur[32];
                format_duration(limit, dur, sizeof(dur));
                trial_fail(t, "%s timed out after %s with clients still running", trial_ord(s),
                           dur);
            }
            return;
        }
        proc_reap_orphans();
        nap(TICK_NS);
    }
}

/* Processes that left their group (setsid, daemons) still carry the
 * session's tag in their environment: nothing of a trial outlives it. */
static void sweep_tagged(struct session *s)
{
    size_t n = proc_kill_tagged(s->tag, SIGTERM);
    if (!n)
        return;
    for (int i = 0; i < 20 && proc_kill_tagged(s->tag, 0); i++) {
        proc_reap_orphans();
        sleep_ns(TICK_NS);
    }
    proc_kill_tagged(s->tag, SIGKILL);
    char *msg = xasprintf("%zu process(es) had left their component's process group (setsid or "
                          "a daemon); sonde stopped them at the end of %s",
                          n, trial_ord(s));
    store_event_add(s->st, s->id, s->trial_id, "warning", msg);
    progress(s, "warning: %s", msg);
    free(msg);
}

static void teardown(struct session *s)
{
    s->tearing_down = true;
    for (size_t i = s->ncomps; i-- > 0;) {
        struct comp *c = s->comps[i];
        bool failed = c->reason != NULL;
        bool cut = c->spec && c->spec->role == ROLE_CLIENT && !c->finished;
        stop_one(c);
        if (c->spec && c->store_id)
            comp_record_end(c, failed ? "failed" : cut ? "stopped" : "done");
    }
    derive_energy(s);
    din_clear(s);
    for (size_t i = 0; i < s->ncomps; i++)
        comp_free(s->comps[i]);
    free(s->comps);
    s->comps = NULL;
    s->ncomps = 0;
    s->tearing_down = false;
    sweep_tagged(s);
    if (s->opts->backend->sweep) { /* jobs submitted but never tracked (sbatch interrupted) */
        char *prefix = xasprintf("sonde-%s-", s->id);
        size_t n = s->opts->backend->sweep(prefix);
        if (n) {
            char *msg = xasprintf("%zu job(s) of the session were not tracked; sonde cancelled "
                                  "them at the end of %s",
                                  n, trial_ord(s));
            store_event_add(s->st, s->id, s->trial_id, "warning", msg);
            progress(s, "warning: %s", msg);
            free(msg);
        }
        free(prefix);
    }
    proc_reap_orphans();
}

static char *matrix_json(const struct trial_spec *tr)
{
    struct sbuf b = {.max = 1 << 20};
    sbuf_puts(&b, "{");
    for (size_t i = 0; tr->matrix && tr->matrix[i]; i++) {
        const char *eq = strchr(tr->matrix[i], '=');
        if (!eq)
            continue;
        sbuf_printf(&b, "%s\"%.*s\":\"", i ? "," : "", (int)(eq - tr->matrix[i]), tr->matrix[i]);
        for (const char *p = eq + 1; *p; p++) {
            if (*p == '"' || *p == '\\')
                sbuf_printf(&b, "\\%c", *p);
            else if ((unsigned char)*p < 0x20)
                sbuf_printf(&b, "\\u%04x", *p);
            else
                sbuf_add(&b, p, 1);
        }
        sbuf_puts(&b, "\"");
    }
    sbuf_puts(&b, "}");
    return sbuf_steal(&b);
}

/* Runs one trial; returns 0 done, 1 failed, 2 cancelled. */
static bool trial_has_clients(const struct trial_spec *tr)
{
    for (size_t i = 0; i < tr->ncomps; i++)
        if (tr->comps[i].role == ROLE_CLIENT)
            return true;
    return false;
}

static int run_trial(struct session *s, const struct trial_spec *tr)
{
    s->trial = tr;
    char name[32];
    snprintf(name, sizeof(name), "trial-%03u", tr->index + 1);
    s->trial_dir = path_join(s->dir, name);
    char *mj = matrix_json(tr);
    struct trial_row row = {
        .session = s->id,
        .idx = tr->index + 1, /* 1-based, like the trial-NNN directories */
        .label = tr->label,
        .matrix = mj,
        .repetition = tr->repetition,
        .state = "running",
        .started = wall_ns(),
    };
    store_trial_create(s->st, &row, &s->trial_id);
    free(mj);
    progress(s, "%s of %zu: %s", trial_ord(s), s->bench->ntrials, tr->label);
    char *trial_labels = NULL;
    if (s->exp && tr->index > 0) {
        /* The last trial's series end as this one begins (Prometheus marks them
         * stale): until then its final counts stay there to be scraped. */
        char *match = xasprintf(",trial=\"%u\",", tr->index);
        exporter_forget(s->exp, match);
        free(match);
    }
    if (s->exp) {
        struct sbuf b = {0};
        char idx[16];
        snprintf(idx, sizeof(idx), "%u", tr->index + 1);
        exporter_label(&b, "session", s->id);
        exporter_label(&b, "trial", idx);
        exporter_label(&b, "recipe", s->bench->name ? s->bench->name : "");
        exporter_label(&b, "trial_label", tr->label ? tr->label : "");
        trial_labels = sbuf_steal(&b);
        exporter_set(s->exp, "sonde_trial_info", "the trial running (1), with its recipe and label",
                     LIVE_GAUGE, trial_labels, 1);
    }
    store_session_set_state(s->st, s->id, "starting", NULL);
    struct trial_run t = {0};
    for (size_t i = 0; i < tr->ncomps && !t.reason && !cancelled(); i++)
        start_one(s, &tr->comps[i], &t);
    if (cancelled())
        t.cancel = true;
    if (!t.reason && !t.cancel) {
        store_session_set_state(s->st, s->id, "running", NULL);
        supervise(s, &t);
    }
    store_session_set_state(s->st, s->id, "stopping", NULL);
    teardown(s);
    free(trial_labels);
    /* A trial of monitors only (`sonde monitor start`) has no end of its own
     * but its timeout: a stop is its normal end. */
    if (t.cancel && !trial_has_clients(tr))
        t.cancel = false;
    const char *state = t.reason ? "failed" : t.cancel ? "cancelled" : "done";
    store_trial_finish(s->st, s->trial_id, state, t.reason, wall_ns());
    if (t.reason) {
        store_session_set_state(s->st, s->id, "failed", t.reason);
        status_end(s);
        fprintf(stderr, "sonde: %s failed: %s\n", trial_ord(s), t.reason);
    }
    free(t.reason);
    free(s->trial_dir);
    s->trial_dir = NULL;
    return t.reason ? 1 : t.cancel ? 2 : 0;
}

/* ---- provenance ---- */

static char *first_line_value(const char *path, const char *key)
{
    char *text = NULL;
    if (read_file(path, 1 << 20, &text, NULL) < 0)
        return NULL;
    char *res = NULL;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!str_startswith(line, key))
            continue;
        char *v = strchr(line, key[strlen(key) - 1] == '=' ? '=' : ':');
        if (!v)
            continue;
        for (v++; *v == ' ' || *v == '\t' || *v == '"'; v++)
            ;
        size_t n = strlen(v);
        while (n && (v[n - 1] == '"' || v[n - 1] == ' '))
            n--;
        res = xstrndup(v, n);
        break;
    }
    free(text);
    return res;
}

static void prov(struct session *s, const char *key, const char *value)
{
    store_provenance_put(s->st, s->id, key, value ? value : "");
}

static void prov_owned(struct session *s, const char *key, char *value)
{
    prov(s, key, value);
    free(value);
}

static void record_provenance(struct session *s, const char *host)
{
    const struct bench_spec *b = s->bench;
    struct utsname u;
    uname(&u);
    store_begin(s->st);
    prov(s, "recipe.name", b->name);
    prov(s, "recipe.file", b->file);
    prov(s, "recipe.sha256", b->sha256);
    prov(s, "recipe.resolved", b->resolved_yaml);
    prov(s, "sonde.version", SONDE_VERSION);
    prov(s, "sonde.git_commit", SONDE_GIT_COMMIT);
    prov(s, "backend", s->opts->backend->name);
    prov(s, "host.name", host);
    prov_owned(s, "host.cpu_model", first_line_value("/proc/cpuinfo", "model name"));
    prov_owned(s, "host.cpu_count", xasprintf("%ld", sysconf(_SC_NPROCESSORS_ONLN)));
    char *mem = first_line_value("/proc/meminfo", "MemTotal");
    prov_owned(s, "host.memory_bytes",
               xasprintf("%lld", mem ? strtoll(mem, NULL, 10) * 1024 : 0LL));
    free(mem);
    prov_owned(s, "host.kernel", xasprintf("%s %s %s", u.sysname, u.release, u.version));
    prov(s, "host.arch", u.machine);
    prov_owned(s, "host.os", first_line_value("/etc/os-release", "PRETTY_NAME="));
    prov_owned(s, "session.started", iso8601(wall_ns()));
    struct passwd *pw = getpwuid(geteuid());
    prov(s, "session.user", pw ? pw->pw_name : "?");
    for (size_t i = 0; s->opts->provenance && s->opts->provenance[i]; i++) {
        char *key = xstrdup(s->opts->provenance[i]), *eq = strchr(key, '=');
        if (eq) {
            *eq = '\0';
            prov(s, key, eq + 1);
        }
        free(key);
    }
    store_commit(s->st);
}

static char *new_session_id(void)
{
    unsigned char rnd[2] = {0};
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd[0] = (unsigned char)getpid(), rnd[1] = (unsigned char)(getpid() >> 8);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y%m%d-%H%M%S", &tm);
    return xasprintf("%s-%02x%02x", ts, rnd[0], rnd[1]);
}

static void install_signals(struct sigaction *old)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(sigs); i++)
        sigaction(sigs[i], &sa, &old[i]);
    signal(SIGPIPE, SIG_IGN);
    /* An inherited SIGCHLD=SIG_IGN would reap children behind our back and
     * lose their exit status. SIGCHLD is blocked and waited for in nap(). */
    signal(SIGCHLD, SIG_DFL);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
}

static void restore_signals(struct sigaction *old)
{
    int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(sigs); i++)
        sigaction(sigs[i], &old[i], NULL);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_UNBLOCK, &chld, NULL);
}

static int session_open(struct session *s, const struct run_opts *o, char *host)
{
    int r = store_open(o->workspace, &s->st);
    if (r < 0) {
        fprintf(stderr, "sonde: cannot open the results store in %s: %s\n", o->workspace,
                store_errmsg(s->st) ? store_errmsg(s->st) : strerror(-r));
        return r;
    }
    s->id = new_session_id();
    char *sessions = path_join(o->workspace, "sessions");
    s->dir = path_join(sessions, s->id);
    free(sessions);
    r = mkdir_p(s->dir, 0755);
    if (r < 0) {
        fprintf(stderr, "sonde: cannot create %s: %s\n", s->dir, strerror(-r));
        return r;
    }
    /* Readers tell a running session from an interrupted one by this lock,
     * not by a pid that may have been reused. */
    char *lock = path_join(s->dir, ".lock");
    s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (s->lock_fd < 0 || fcntl(s->lock_fd, F_SETLK, &fl) < 0) {
        r = -errno;
        fprintf(stderr, "sonde: cannot lock %s: %s\n", lock, strerror(errno));
        free(lock);
        return r;
    }
    free(lock);
    struct session_row row = {
        .id = s->id,
        .name = s->bench->name,
        .recipe_path = s->bench->file,
        .backend = (char *)o->backend->name,
        .state = "pending",
        .dir = s->dir,
        .host = host,
        .pid = getpid(),
        .created = wall_ns(),
    };
    r = store_session_create(s->st, &row);
    if (r < 0) {
        fprintf(stderr, "sonde: cannot record the session: %s\n", store_errmsg(s->st));
        return r;
    }
    char *resolved = path_join(s->dir, "recipe.resolved.yaml");
    write_file_atomic(resolved, s->bench->resolved_yaml, strlen(s->bench->resolved_yaml));
    free(resolved);
    return 0;
}

/* sonde's /metrics endpoint: where --exporter or the recipe's `exporter:` says,
 * else on a free loopback port when a trial has a prometheus service (which
 * scrapes it); none otherwise. A given address that cannot be bound fails the
 * session before any trial: the user asked for it. */
static int start_exporter(struct session *s)
{
    const char *addr = s->opts->exporter ? s->opts->exporter : s->bench->exporter;
    for (size_t i = 0; !addr && i < s->bench->ntrials; i++)
        for (size_t k = 0; !addr && k < s->bench->trials[i].ncomps; k++)
            if (s->bench->trials[i].comps[k].role == ROLE_SERVICE &&
                !strcmp(s->bench->trials[i].comps[k].driver, "prometheus"))
                addr = "127.0.0.1:0";
    if (!addr)
        return 0;
    char err[320];
    int r = exporter_start(addr, &s->exp, err, sizeof(err));
    if (r < 0) {
        store_session_set_state(s->st, s->id, "failed", err);
        fprintf(stderr, "sonde: %s\n", err);
        return r;
    }
    char *url = xasprintf("http://%s/metrics", exporter_target(s->exp));
    prov(s, "exporter.url", url);
    if (!s->opts->quiet) /* said even without -v: whoever scrapes it needs the port */
        fprintf(stderr, "sonde: exporter: %s\n", url);
    free(url);
    struct sbuf b = {0};
    exporter_label(&b, "session", s->id);
    exporter_set(s->exp, "sonde_up", "1 while the sonde session runs", LIVE_GAUGE, b.s, 1);
    sbuf_free(&b);
    return 0;
}

int session_run(const struct bench_spec *b, const struct run_opts *o, char **session_id)
{
    /* Progress goes to a terminal; piped output stays quiet unless asked (-v). */
    bool tty = isatty(STDERR_FILENO) == 1;
    struct session s = {.bench = b,
                        .opts = o,
                        .progress = !o->quiet && (tty || o->verbose),
                        .tty = tty,
                        .lock_fd = -1,
                        .energy_j = NAN};
    char host[256] = "localhost";
    gethostname(host, sizeof(host) - 1);
    cancel_signal = 0;
    cancel_count = 0;
    proc_set_hurry(&cancel_count, 2);
    struct sigaction old[3];
    install_signals(old);
    int r = session_open(&s, o, host);
    if (r < 0)
        goto out;
    record_provenance(&s, host);
    progress(&s, "session %s: %zu trial(s), directory %s", s.id, b->ntrials, s.dir);
    s.tag = xasprintf("SONDE_SESSION_ID=%s", s.id);
    char *job_prefix = xasprintf("sonde-%s-", s.id); /* every job's name starts so */
    r = proc_guardian_start(s.tag, o->backend->sweep, job_prefix);
    free(job_prefix);
    if (r < 0) {
        char *msg = xasprintf("no guardian process (%s): if sonde is killed, components may "
                              "outlive the session",
                              strerror(-r));
        store_event_add(s.st, s.id, 0, "warning", msg);
        fprintf(stderr, "sonde: warning: %s\n", msg);
        free(msg);
    }
    store_session_set_started(s.st, s.id, wall_ns());
    store_session_set_state(s.st, s.id, "starting", NULL);
    r = start_exporter(&s);
    if (r < 0) {
        proc_guardian_stop();
        goto out;
    }
    int result = 0;
    size_t ran = 0;
    for (; ran < b->ntrials && result == 0 && !cancelled(); ran++)
        result = run_trial(&s, &b->trials[ran]);
    bool any_clients = false;
    for (size_t i = 0; i < b->ntrials; i++)
        any_clients |= trial_has_clients(&b->trials[i]);
    if (result == 0 && cancelled() && any_clients && ran < b->ntrials)
        result = 2; /* a signal between two trials: the rest did not run */
    if (result == 0 && cancelled() && !any_clients) { /* monitors only, stopped: done */
        const char *sig = sigabbrev_np(cancel_signal);
        char *why = xasprintf("stopped by SIG%s", sig ? sig : "?");
        store_session_set_state(s.st, s.id, "done", why);
        free(why);
        result = -1; /* the state is set */
    }
    proc_guardian_stop();
    prov_owned(&s, "session.ended", iso8601(wall_ns()));
    if (result == 2) {
        const char *sig = sigabbrev_np(cancel_signal);
        char *why = xasprintf("cancelled: received SIG%s", sig ? sig : "?");
        store_session_set_state(s.st, s.id, "cancelled", why);
        free(why);
    } else if (result == 0) {
        store_session_set_state(s.st, s.id, "done", NULL);
    }
    r = result < 0 ? 0 : result;
    *session_id = xstrdup(s.id);
out:
    exporter_stop(s.exp);
    status_end(&s);
    proc_set_hurry(NULL, 0);
    restore_signals(old);
    store_close(s.st);
    if (s.lock_fd >= 0)
        close(s.lock_fd);
    free(s.tag);
    free(s.id);
    free(s.dir);
    return r;
}

/* ---- live values: sonde's exporter ---- */

static struct derived_in *din_get(struct session *s, const char *client)
{
    for (size_t i = 0; i < s->ndin; i++)
        if (strcmp(s->din[i].client, client) == 0)
            return &s->din[i];
    s->din = xrealloc(s->din, (s->ndin + 1) * sizeof(*s->din));
    s->din[s->ndin] = (struct derived_in){.client = xstrdup(client)};
    return &s->din[s->ndin++];
}

static void din_clear(struct session *s)
{
    for (size_t i = 0; i < s->ndin; i++)
        free(s->din[i].client);
    free(s->din);
    s->din = NULL;
    s->ndin = 0;
    s->energy_j = NAN;
    for (size_t i = 0; i < s->nes; i++) {
        free(s->es[i].labels);
        free(s->es[i].t);
        free(s->es[i].e);
    }
    free(s->es);
    s->es = NULL;
    s->nes = 0;
}

/* A gpu monitor's cumulative energy reading of one GPU (its labels): joules
 * since the monitor started, so each series begins with 0 at that time. */
static void energy_point(struct comp *c, const char *labels, int64_t wall, double e)
{
    struct session *s = c->session;
    struct energy_series *x = NULL;
    for (size_t i = 0; i < s->nes && !x; i++)
        if (!strcmp(s->es[i].labels, labels))
            x = &s->es[i];
    if (!x) {
        s->es = xrealloc(s->es, (s->nes + 1) * sizeof(*s->es));
        x = &s->es[s->nes++];
        *x = (struct energy_series){.labels = xstrdup(labels)};
        if (c->start_wall > 0 && c->start_wall < wall)
            energy_point(c, labels, c->start_wall, 0);
    }
    if (x->n && wall <= x->t[x->n - 1])
        return; /* time only goes forward here */
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 64;
        x->t = xrealloc(x->t, x->cap * sizeof(*x->t));
        x->e = xrealloc(x->e, x->cap * sizeof(*x->e));
    }
    x->t[x->n] = wall;
    x->e[x->n++] = e;
}

/* A GPU's cumulative energy at time t, linear between its readings and held
 * at the first and last one outside them. */
static double energy_at(const struct energy_series *x, int64_t t)
{
    if (t <= x->t[0])
        return x->e[0];
    if (t >= x->t[x->n - 1])
        return x->e[x->n - 1];
    size_t i = 1;
    while (x->t[i] < t)
        i++;
    double f = (double)(t - x->t[i - 1]) / (double)(x->t[i] - x->t[i - 1]);
    return x->e[i - 1] + f * (x->e[i] - x->e[i - 1]);
}

/* The GPUs' energy over [w0, w1]; NAN when some GPU has fewer than 2 readings. */
static double energy_between(const struct session *s, int64_t w0, int64_t w1)
{
    double sum = 0;
    for (size_t i = 0; i < s->nes; i++) {
        if (s->es[i].n < 2)
            return NAN;
        sum += energy_at(&s->es[i], w1) - energy_at(&s->es[i], w0);
    }
    return s->nes ? sum : NAN;
}

void comp_measured_window(struct comp *c, int64_t start_wall, int64_t end_wall)
{
    if (c->spec->role != ROLE_CLIENT || end_wall <= start_wall || start_wall <= 0)
        return;
    struct derived_in *d = din_get(c->session, c->spec->name);
    d->w0 = start_wall;
    d->w1 = end_wall;
}

static const char *live_labels(struct comp *c)
{
    if (!c->live_labels) {
        struct sbuf b = {0};
        char trial[16];
        snprintf(trial, sizeof(trial), "%u", c->session->trial ? c->session->trial->index + 1 : 0);
        exporter_label(&b, "session", c->session->id);
        exporter_label(&b, "trial", trial);
        exporter_label(&b, "component", c->spec->name);
        c->live_labels = sbuf_steal(&b);
    }
    return c->live_labels;
}

/* The component's labels plus extra (JSON object text of scalar values). */
static bool strv_has(char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (!strcmp(v[i], s))
            return true;
    return false;
}

/* The component's labels plus extra (JSON object text of scalar values). A
 * name that clashes with session, trial or component gets the prefix
 * "exported_", as Prometheus does; one that is empty, or the same as an
 * earlier one once sanitised, is left out (the page must stay valid). */
static char *labels_with(struct comp *c, const char *json_labels)
{
    struct sbuf b = {0};
    sbuf_puts(&b, live_labels(c));
    char **seen = NULL;
    strv_push(&seen, "session");
    strv_push(&seen, "trial");
    strv_push(&seen, "component");
    json_t *o = json_labels && *json_labels ? json_loads(json_labels, 0, NULL) : NULL;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        char *name = xstrdup(k), *val = NULL;
        exporter_sanitize(name, false);
        if (json_is_string(v))
            val = xstrdup(json_string_value(v));
        else if (json_is_number(v))
            val = xasprintf("%.17g", json_number_value(v));
        if (val &&
            (!strcmp(name, "session") || !strcmp(name, "trial") || !strcmp(name, "component"))) {
            char *renamed = xasprintf("exported_%s", name);
            free(name);
            name = renamed;
        }
        if (val && *name && !strv_has(seen, name)) {
            exporter_label(&b, name, val);
            strv_push(&seen, name);
        }
        free(name);
        free(val);
    }
    json_decref(o);
    strv_free(seen);
    return sbuf_steal(&b);
}

static void note_client_total(struct comp *c, const char *name, double total)
{
    if (c->spec->role != ROLE_CLIENT)
        return;
    struct derived_in *d = din_get(c->session, c->spec->name);
    if (!strcmp(name, "sonde_client_requests_total"))
        d->requests = total;
    else if (!strcmp(name, "sonde_client_output_tokens_total"))
        d->output_tokens = total;
    else if (!strcmp(name, "sonde_client_bytes_in_total"))
        d->bytes_in = total;
    else if (!strcmp(name, "sonde_client_bytes_out_total"))
        d->bytes_out = total;
}

void comp_live_counter(struct comp *c, const char *name, const char *help, double total)
{
    note_client_total(c, name, total);
    if (c->session->exp)
        exporter_set(c->session->exp, name, help, LIVE_COUNTER, live_labels(c), total);
}

void comp_live_gauge(struct comp *c, const char *name, const char *help, const char *labels,
                     double value)
{
    if (!c->session->exp)
        return;
    char *l = labels_with(c, labels);
    exporter_set(c->session->exp, name, help, LIVE_GAUGE, l, value);
    free(l);
}

void comp_live_histogram(struct comp *c, const char *name, const char *help, const double *le,
                         const uint64_t *counts, size_t n, double sum)
{
    if (c->session->exp)
        exporter_set_histogram(c->session->exp, name, help, live_labels(c), le, counts, n, sum);
}

/* A monitor's reading, live: the gauge sonde_<driver>_<series>. The prometheus
 * monitor's points are another program's metrics: Prometheus scrapes those
 * where they come from. */
static void live_series_point(struct comp *c, const char *name, const char *unit,
                              const char *labels, double value)
{
    if (!c->session->exp || c->spec->role != ROLE_MONITOR || !strcmp(c->spec->driver, "prometheus"))
        return;
    char *full = xasprintf("sonde_%s_%s", c->spec->driver, name);
    exporter_sanitize(full, true);
    bool u = unit && *unit;
    char *help = xasprintf("%s monitor: %s%s%s%s", c->spec->driver, name, u ? " (" : "",
                           u ? unit : "", u ? ")" : "");
    comp_live_gauge(c, full, help, labels, value);
    free(help);
    free(full);
}

bool comp_cancelled(const struct comp *c)
{
    (void)c;
    return cancelled();
}

const char *session_exporter_target(const struct session *s)
{
    return s ? exporter_target(s->exp) : NULL;
}

void comp_add_cpu(struct comp *c, int64_t ns)
{
    if (ns > 0)
        c->cpu_ns += ns;
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void live_monitor_cpu(struct comp *c)
{
    if (c->session->exp)
        exporter_set(c->session->exp, "sonde_monitor_cpu_seconds_total",
                     "CPU time sonde spent in the monitor (sampling, parsing, storing)",
                     LIVE_COUNTER, live_labels(c), (double)c->cpu_ns / 1e9);
}

/* At a monitor's end: the CPU it cost, as seconds and as a share of one core
 * over the time it ran. */
static void record_monitor_cpu(struct comp *c)
{
    double secs = (double)(mono_ns() - c->start_mono) / 1e9;
    comp_metric(c, "monitor_cpu_seconds", "s", NULL, (double)c->cpu_ns / 1e9);
    if (secs > 0)
        comp_metric(c, "monitor_cpu_percent", "%", NULL, 100.0 * (double)c->cpu_ns / 1e9 / secs);
    live_monitor_cpu(c);
}

/* Energy per result: the gpu monitors' energy over the trial divided by what
 * each client completed (requests, output tokens, GiB moved), recorded on the
 * first gpu monitor with the client's name as a label. */
static void derive_energy(struct session *s)
{
    if (isnan(s->energy_j) || s->energy_j <= 0)
        return;
    struct comp *gpu = NULL;
    for (size_t i = 0; i < s->ncomps && !gpu; i++)
        if (s->comps[i]->spec && s->comps[i]->spec->role == ROLE_MONITOR &&
            !strcmp(s->comps[i]->spec->driver, "gpu"))
            gpu = s->comps[i];
    if (!gpu)
        return;
    store_begin(s->st);
    for (size_t i = 0; i < s->ndin; i++) {
        const struct derived_in *d = &s->din[i];
        /* The energy of the client's measured window where it is known (the
         * counts are of that window), else the monitor's whole span. */
        double e = d->w1 > d->w0 ? energy_between(s, d->w0, d->w1) : NAN;
        bool windowed = !isnan(e);
        if (!windowed)
            e = s->energy_j;
        json_t *o = json_pack("{s:s}", "client", d->client);
        char *l = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(o);
        if (windowed)
            comp_metric(gpu, "energy_window_j", "J", l, e);
        if (d->requests > 0)
            comp_metric(gpu, "energy_per_request_j", "J", l, e / d->requests);
        if (d->output_tokens > 0)
            comp_metric(gpu, "energy_per_output_token_j", "J", l, e / d->output_tokens);
        double gib = (d->bytes_in + d->bytes_out) / (1024.0 * 1024.0 * 1024.0);
        if (gib > 0)
            comp_metric(gpu, "energy_per_gib_j", "J", l, e / gib);
        free(l);
    }
    store_commit(s->st);
}
