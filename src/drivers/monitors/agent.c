/* agent.c — the monitor agent on a batch job's node, and the reader of its
 * files in sonde (monitors.h). Line format, one sample per line:
 *   {"t":WALL_NS,"node":"n1","cpu_percent":..,"mem_used_bytes":..,...,
 *    "job":{"cpu_percent":..,"rss_bytes":..,"nprocs":..}}
 * with every node series by its name; "job" only when the agent knows its job. */
#include "core/session.h"
#include "drivers/monitors/monitors.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AGENT_GONE_SAMPLES 5    /* job processes seen, then none this often: done */
#define AGENT_MAX_LINE     4096 /* longer lines are not the agent's */
#define AGENT_MAX_FILES    4096 /* files followed per reader */
#define AGENT_READ_CHUNK   ((size_t)1 << 20)

static void sleep_until(int64_t mono_target, volatile sig_atomic_t *stop)
{
    while (!*stop) {
        int64_t left = mono_target - mono_ns();
        if (left <= 0)
            return;
        int64_t step = left < 100000000 ? left : 100000000; /* notice stop within 0.1 s */
        struct timespec ts = {.tv_sec = step / 1000000000, .tv_nsec = step % 1000000000};
        nanosleep(&ts, NULL);
    }
}

void monitor_node_name(char *buf, size_t n)
{
    const char *v = getenv("SLURMD_NODENAME");
    if (v && *v && strlen(v) < n) {
        snprintf(buf, n, "%s", v);
        return;
    }
    if (gethostname(buf, n) < 0 || !*buf)
        snprintf(buf, n, "unknown");
    buf[n - 1] = '\0';
}

static char *sample_line(const struct agent_sample *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "t", json_integer(s->t));
    json_object_set_new(o, "node", json_string(s->node));
    for (int i = 0; i < NODE_NSERIES; i++)
        json_object_set_new(o, node_series[i].name, json_real(s->node_v[i]));
    if (s->has_job)
        json_object_set_new(o, "job",
                            json_pack("{s:f,s:f,s:f}", "cpu_percent", s->job_cpu_percent,
                                      "rss_bytes", s->job_rss_bytes, "nprocs", s->job_nprocs));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int agent_run(const char *dir, int64_t interval_ns, volatile sig_atomic_t *stop, char *err,
              size_t errlen)
{
    char node[64];
    monitor_node_name(node, sizeof(node));
    const char *job = getenv("SLURM_JOB_ID");
    char *tag = job && *job ? xasprintf("SLURM_JOB_ID=%s", job) : NULL;
    char *name = xasprintf("%s.jsonl", node);
    char *path = path_join(dir, name);
    free(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
        free(path);
        free(tag);
        return -e;
    }
    struct node_sample prev, cur;
    struct procfs_usage jprev = {0}, jcur;
    int r = node_sample_read(&prev);
    if (r == 0 && tag)
        r = procfs_read_tagged(tag, MONITOR_AGENT_ENV, &jprev);
    int64_t due = prev.mono + interval_ns;
    bool seen = jprev.nprocs > 0;
    int gone = 0;
    while (r == 0 && !*stop && gone < AGENT_GONE_SAMPLES) {
        sleep_until(due, stop);
        if (*stop)
            break;
        due += interval_ns;
        if (due <= mono_ns()) /* fell behind: no burst */
            due = mono_ns() + interval_ns;
        struct agent_sample s = {.t = wall_ns(), .has_job = tag != NULL};
        snprintf(s.node, sizeof(s.node), "%s", node);
        r = node_sample_read(&cur);
        if (r < 0)
            break;
        node_sample_values(&prev, &cur, s.node_v);
        if (tag) {
            r = procfs_read_tagged(tag, MONITOR_AGENT_ENV, &jcur);
            if (r < 0)
                break;
            double secs = (double)(cur.mono - prev.mono) / 1e9;
            double d = jcur.cpu_seconds - jprev.cpu_seconds; /* < 0: a process left */
            s.job_cpu_percent = secs > 0 && d > 0 ? 100.0 * d / secs : 0.0;
            s.job_rss_bytes = (double)jcur.rss_bytes;
            s.job_nprocs = (double)jcur.nprocs;
            seen = seen || jcur.nprocs > 0;
            gone = seen && jcur.nprocs == 0 ? gone + 1 : 0;
            jprev = jcur;
        }
        prev = cur;
        char *text = sample_line(&s);
        if (!text) {
            r = -ENOMEM;
            break;
        }
        size_t n = strlen(text);
        text[n] = '\n'; /* one write per line: readers never see half of one from here */
        r = write_all(fd, text, n + 1);
        free(text);
    }
    if (r < 0 && !*err)
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
    close(fd);
    free(path);
    free(tag);
    return r;
}

static bool num_field(json_t *o, const char *key, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

int agent_parse_line(const char *line, size_t len, struct agent_sample *out)
{
    if (len == 0 || len > AGENT_MAX_LINE)
        return -EINVAL;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    struct agent_sample s = {0};
    json_t *t = o ? json_object_get(o, "t") : NULL;
    const char *node = o ? json_string_value(json_object_get(o, "node")) : NULL;
    bool ok = json_is_integer(t) && json_integer_value(t) > 0 && node && *node &&
              strlen(node) < sizeof(s.node);
    for (int i = 0; ok && i < NODE_NSERIES; i++)
        ok = num_field(o, node_series[i].name, &s.node_v[i]);
    json_t *job = ok ? json_object_get(o, "job") : NULL;
    if (ok && job) {
        ok = json_is_object(job) && num_field(job, "cpu_percent", &s.job_cpu_percent) &&
             num_field(job, "rss_bytes", &s.job_rss_bytes) &&
             num_field(job, "nprocs", &s.job_nprocs);
        s.has_job = ok;
    }
    if (ok) {
        s.t = json_integer_value(t);
        snprintf(s.node, sizeof(s.node), "%s", node);
        *out = s;
    }
    json_decref(o);
    return ok ? 0 : -EINVAL;
}

/* ---- following the files ---- */

struct followed {
    char *path;
    off_t offset;   /* just after the last complete line read */
    uint64_t lines; /* samples read */
};

struct agent_reader {
    struct followed *f;
    size_t n;
    uint64_t bad;
};

struct agent_reader *agent_reader_new(void)
{
    return xcalloc(1, sizeof(struct agent_reader));
}

void agent_reader_free(struct agent_reader *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->f[i].path);
    free(r->f);
    free(r);
}

uint64_t agent_reader_bad(const struct agent_reader *r)
{
    return r ? r->bad : 0;
}

bool agent_reader_has(const struct agent_reader *r, const char *dir)
{
    size_t n = strlen(dir);
    for (size_t i = 0; r && i < r->n; i++)
        if (r->f[i].lines > 0 && strncmp(r->f[i].path, dir, n) == 0 && r->f[i].path[n] == '/')
            return true;
    return false;
}

static struct followed *followed_get(struct agent_reader *r, const char *path)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->f[i].path, path) == 0)
            return &r->f[i];
    if (r->n >= AGENT_MAX_FILES)
        return NULL;
    r->f = xrealloc(r->f, (r->n + 1) * sizeof(*r->f));
    r->f[r->n] = (struct followed){.path = xstrdup(path)};
    return &r->f[r->n++];
}

/* Reads the complete lines after f->offset (at most AGENT_READ_CHUNK per poll). */
static int follow(struct agent_reader *r, struct followed *f,
                  int (*fn)(const struct agent_sample *s, void *ud), void *ud)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char *buf = xmalloc(AGENT_READ_CHUNK + 1);
    ssize_t n;
    do
        n = pread(fd, buf, AGENT_READ_CHUNK, f->offset);
    while (n < 0 && errno == EINTR);
    close(fd);
    int ret = 0;
    size_t used = 0;
    for (ssize_t i = 0; n > 0 && i < n && ret == 0; i++) {
        if (buf[i] != '\n')
            continue;
        struct agent_sample s;
        if (agent_parse_line(buf + used, (size_t)i - used, &s) == 0) {
            f->lines++;
            ret = fn(&s, ud);
        } else
            r->bad++;
        used = (size_t)i + 1;
    }
    /* A chunk without a newline that fills the buffer is no agent's line: skip it. */
    if (n == (ssize_t)AGENT_READ_CHUNK && used == 0) {
        used = (size_t)n;
        r->bad++;
    }
    f->offset += (off_t)used;
    free(buf);
    return ret;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_jsonl(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 6 && e->d_name[0] != '.' && strcmp(e->d_name + n - 6, ".jsonl") == 0;
}

int agent_reader_poll(struct agent_reader *r, const char *dir,
                      int (*fn)(const struct agent_sample *s, void *ud), void *ud)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, is_jsonl, by_name);
    int ret = 0;
    for (int i = 0; i < n; i++) {
        char *path = path_join(dir, names[i]->d_name);
        struct followed *f = ret == 0 ? followed_get(r, path) : NULL;
        if (f)
            ret = follow(r, f, fn, ud);
        free(path);
        free(names[i]);
    }
    free(names);
    return ret;
}

struct jobs_ctx {
    struct comp *job;
    int (*fn)(struct comp *job, const struct agent_sample *s, void *ud);
    void *ud;
};

static int for_job(const struct agent_sample *s, void *ud)
{
    struct jobs_ctx *x = ud;
    return x->fn(x->job, s, x->ud);
}

int agent_poll_jobs(struct agent_reader *r, struct comp *c,
                    int (*fn)(struct comp *job, const struct agent_sample *s, void *ud), void *ud)
{
    struct comp **all;
    size_t n = session_comps(c->session, &all);
    int ret = 0;
    for (size_t i = 0; i < n && ret == 0; i++) {
        struct comp *o = all[i];
        if (o == c || o->proc.job <= 0 || !o->dir)
            continue;
        char *dir = path_join(o->dir, MONITOR_AGENT_DIR);
        struct jobs_ctx x = {.job = o, .fn = fn, .ud = ud};
        ret = agent_reader_poll(r, dir, for_job, &x);
        free(dir);
    }
    return ret;
}

char **agent_job_argv(const char *exe, const char *comp_dir, int64_t interval_ns)
{
    if (interval_ns <= 0)
        return NULL;
    char iv[32];
    if (interval_ns % 1000000000 == 0)
        snprintf(iv, sizeof(iv), "%llds", (long long)(interval_ns / 1000000000));
    else if (interval_ns % 1000000 == 0)
        snprintf(iv, sizeof(iv), "%lldms", (long long)(interval_ns / 1000000));
    else
        snprintf(iv, sizeof(iv), "%lldus", (long long)(interval_ns / 1000));
    char **argv = xcalloc(6, sizeof(*argv));
    argv[0] = xstrdup(exe);
    argv[1] = xstrdup("agent");
    argv[2] = xstrdup("monitor");
    argv[3] = path_join(comp_dir, MONITOR_AGENT_DIR);
    argv[4] = xstrdup(iv);
    return argv;
}

char *agent_job_log(const char *comp_dir)
{
    return path_join(comp_dir, MONITOR_AGENT_DIR "/agent.log");
}
