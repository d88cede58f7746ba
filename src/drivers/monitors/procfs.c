/* procfs.c — machine and process-group counters from /proc. */
#include "drivers/monitors/procfs.h"

#include "backends/proc.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROCFS_MAX_BYTES ((size_t)16 << 20) /* /proc/stat grows with CPUs and IRQs */

static int read_proc(const char *path, char **text)
{
    return read_file(path, PROCFS_MAX_BYTES, text, NULL);
}

int procfs_parse_cpu(const char *text, struct procfs_cpu *out)
{
    struct procfs_cpu c = {0};
    bool found = false;
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, "cpu ", 4) == 0) {
            unsigned long long v[8] = {0};
            int n = sscanf(l + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                           &v[3], &v[4], &v[5], &v[6], &v[7]);
            if (n < 4)
                return -EINVAL;
            for (int i = 0; i < n; i++)
                c.total += v[i];
            c.idle = v[3] + v[4];
            found = true;
        } else if (strncmp(l, "cpu", 3) == 0 && l[3] >= '0' && l[3] <= '9') {
            c.ncpus++;
        }
    }
    if (!found || c.ncpus == 0)
        return -EINVAL;
    *out = c;
    return 0;
}

int procfs_read_cpu(struct procfs_cpu *out)
{
    char *text = NULL;
    int r = read_proc("/proc/stat", &text);
    if (r == 0)
        r = procfs_parse_cpu(text, out);
    free(text);
    return r;
}

static bool meminfo_field(const char *text, const char *key, uint64_t *bytes)
{
    size_t klen = strlen(key);
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        unsigned long long kb;
        if (strncmp(l, key, klen) == 0 && l[klen] == ':' &&
            sscanf(l + klen + 1, "%llu", &kb) == 1) {
            *bytes = (uint64_t)kb * 1024;
            return true;
        }
    }
    return false;
}

int procfs_parse_mem(const char *text, struct procfs_mem *out)
{
    struct procfs_mem m = {0};
    if (!meminfo_field(text, "MemTotal", &m.total_bytes) || m.total_bytes == 0)
        return -EINVAL;
    if (!meminfo_field(text, "MemAvailable", &m.available_bytes) &&
        !meminfo_field(text, "MemFree", &m.available_bytes))
        return -EINVAL;
    if (m.available_bytes > m.total_bytes)
        m.available_bytes = m.total_bytes;
    *out = m;
    return 0;
}

int procfs_read_mem(struct procfs_mem *out)
{
    char *text = NULL;
    int r = read_proc("/proc/meminfo", &text);
    if (r == 0)
        r = procfs_parse_mem(text, out);
    free(text);
    return r;
}

int procfs_parse_net(const char *text, struct procfs_net *out)
{
    struct procfs_net t = {0};
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        const char *colon = strchr(l, ':');
        const char *eol = strchr(l, '\n');
        if (!colon || (eol && colon > eol))
            continue; /* header lines */
        const char *name = l + strspn(l, " ");
        if (colon - name == 2 && strncmp(name, "lo", 2) == 0)
            continue;
        unsigned long long rx, tx;
        if (sscanf(colon + 1, "%llu %*u %*u %*u %*u %*u %*u %*u %llu", &rx, &tx) != 2)
            return -EINVAL;
        t.rx_bytes += rx;
        t.tx_bytes += tx;
    }
    *out = t;
    return 0;
}

int procfs_read_net(struct procfs_net *out)
{
    char *text = NULL;
    int r = read_proc("/proc/net/dev", &text);
    if (r == 0)
        r = procfs_parse_net(text, out);
    free(text);
    return r;
}

/* Whole disks only: partitions would count twice, virtual devices too. */
static bool disk_counts(const char *name)
{
    static const char *const skip[] = {"loop", "ram", "zram", "dm-", "md", "nbd", "sr"};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(skip); i++)
        if (str_startswith(name, skip[i]))
            return false;
    char path[128];
    snprintf(path, sizeof(path), "/sys/block/%s", name);
    for (char *p = path + 11; *p; p++)
        if (*p == '/')
            *p = '!'; /* cciss/c0d0 is /sys/block/cciss!c0d0 */
    return access(path, F_OK) == 0;
}

int procfs_read_disk(struct procfs_disk *out)
{
    char *text = NULL;
    int r = read_proc("/proc/diskstats", &text);
    if (r < 0)
        return r;
    struct procfs_disk d = {0};
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        char name[64];
        unsigned long long rd, wr;
        if (sscanf(l, "%*u %*u %63s %*u %*u %llu %*u %*u %*u %llu", name, &rd, &wr) != 3)
            continue;
        if (!disk_counts(name))
            continue;
        d.read_bytes += (uint64_t)rd * 512;
        d.write_bytes += (uint64_t)wr * 512;
    }
    free(text);
    *out = d;
    return 0;
}

static double ticks_to_seconds(uint64_t ticks)
{
    static long hz;
    if (hz <= 0)
        hz = sysconf(_SC_CLK_TCK);
    return (double)ticks / (double)(hz > 0 ? hz : 100);
}

static uint64_t pages_to_bytes(uint64_t pages)
{
    static long page;
    if (page <= 0)
        page = sysconf(_SC_PAGESIZE);
    return pages * (uint64_t)(page > 0 ? page : 4096);
}

struct pgroups_ctx {
    const pid_t *pgids;
    size_t n;
    struct procfs_usage *out;
};

static int add_to_group(const struct proc_stat *st, void *ud)
{
    struct pgroups_ctx *x = ud;
    for (size_t i = 0; i < x->n; i++) {
        if (x->pgids[i] != st->pgrp)
            continue;
        /* A zombie's own times are not yet in its parent's cutime: count them. */
        x->out[i].cpu_seconds += ticks_to_seconds(st->utime + st->stime + st->cutime + st->cstime);
        if (st->state != 'Z' && st->state != 'X') {
            x->out[i].rss_bytes += pages_to_bytes(st->rss_pages);
            x->out[i].nprocs++;
        }
        break;
    }
    return 0;
}

int procfs_read_pgroups(const pid_t *pgids, size_t n, struct procfs_usage *out)
{
    struct procfs_usage *tmp = xcalloc(n ? n : 1, sizeof(*tmp));
    struct pgroups_ctx x = {.pgids = pgids, .n = n, .out = tmp};
    int r = proc_scan(add_to_group, &x);
    if (r == 0)
        memcpy(out, tmp, n * sizeof(*tmp));
    free(tmp);
    return r;
}

int procfs_read_pgroup(pid_t pgid, struct procfs_usage *out)
{
    struct procfs_usage u;
    int r = procfs_read_pgroups(&pgid, 1, &u);
    if (r < 0)
        return r;
    if (u.nprocs == 0)
        return -ESRCH;
    *out = u;
    return 0;
}

struct tagged_ctx {
    const char *with, *without;
    struct procfs_usage u;
};

static int add_if_tagged(const struct proc_stat *st, void *ud)
{
    struct tagged_ctx *x = ud;
    if (st->pid == getpid() || !proc_environ_has(st->pid, x->with) ||
        (x->without && proc_environ_has(st->pid, x->without)))
        return 0;
    /* As for groups: children inherit the environment, so a reaped child's
     * time moves into its tagged parent's cutime and is counted once. */
    x->u.cpu_seconds += ticks_to_seconds(st->utime + st->stime + st->cutime + st->cstime);
    if (st->state != 'Z' && st->state != 'X') {
        x->u.rss_bytes += pages_to_bytes(st->rss_pages);
        x->u.nprocs++;
    }
    return 0;
}

int procfs_read_tagged(const char *with, const char *without, struct procfs_usage *out)
{
    struct tagged_ctx x = {.with = with, .without = without};
    int r = proc_scan(add_if_tagged, &x);
    if (r == 0)
        *out = x.u;
    return r;
}

int procfs_read_pid(pid_t pid, struct procfs_usage *out)
{
    struct proc_stat st;
    int r = proc_read_stat(pid, &st);
    if (r < 0)
        return r == -ENOENT ? -ESRCH : r;
    *out = (struct procfs_usage){
        .cpu_seconds = ticks_to_seconds(st.utime + st.stime),
        .rss_bytes = pages_to_bytes(st.rss_pages),
        .nprocs = st.state != 'Z',
    };
    return 0;
}
