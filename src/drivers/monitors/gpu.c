/* gpu.c — the `gpu` monitor: NVIDIA GPU telemetry through NVML.
 *
 * NVML (libnvidia-ml.so.1) comes with the NVIDIA driver, not with a package
 * sonde could build against (Debian has no nvml.h, CI machines have no GPU),
 * so it is loaded with dlopen when the monitor starts, from the path in
 * $SONDE_NVML_LIBRARY when set. The few functions, structs and constants
 * used are declared below from NVML's reference (nvml.h). A declaration that
 * does not match the library fails silently — NVML then answers
 * NVML_SUCCESS with zeros or garbage — so the monitor warns when every
 * reading of a GPU stayed 0 for a whole trial.
 *
 * Without NVML (no library, nvmlInit fails, no GPU) the monitor warns once
 * and records nothing; the session goes on, unless `required: true`.
 * Only the GPUs of sonde's own machine are measured. */
#include "core/session.h"
#include "util/util.h"

#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- NVML's interface, as far as sonde uses it ---- */

typedef int nvml_ret;                 /* nvmlReturn_t: an enum */
typedef struct nvml_device *nvml_dev; /* nvmlDevice_t: an opaque handle */

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
};
enum { NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2 }; /* nvmlClockType_t */
enum { NVML_TEMPERATURE_GPU = 0 };              /* nvmlTemperatureSensors_t */
#define NVML_TEXT_LEN 96 /* NVML_DEVICE_NAME_V2_BUFFER_SIZE, NVML_DEVICE_UUID_V2_BUFFER_SIZE */

struct nvml_utilization { /* nvmlUtilization_t */
    unsigned int gpu, memory;
};
struct nvml_memory { /* nvmlMemory_t (v1): used includes the memory reserved by the driver */
    unsigned long long total, free, used;
};
struct nvml_memory_v2 { /* nvmlMemory_v2_t: used excludes reserved, as nvidia-smi shows it */
    unsigned int version;
    unsigned long long total, reserved, free, used;
};
struct nvml_temperature { /* nvmlTemperature_v1_t */
    unsigned int version;
    int sensor; /* nvmlTemperatureSensors_t */
    int temperature;
};
/* NVML_STRUCT_VERSION(T, ver): the struct's size, with the version in the top byte. */
#define NVML_VERSION(type, ver) ((unsigned int)(sizeof(type) | ((unsigned int)(ver) << 24)))
_Static_assert(sizeof(struct nvml_memory_v2) == 40, "nvmlMemory_v2_t is 40 bytes");
_Static_assert(sizeof(struct nvml_temperature) == 12, "nvmlTemperature_v1_t is 12 bytes");

/* The compute-process list's entries: pid (unsigned int) at 0, usedGpuMemory
 * (unsigned long long, bytes; ULLONG_MAX when not available) at 8, then
 * fields whose number changed between drivers under the same symbol (R535's
 * _v3 wrote 32-byte entries, earlier and later ones 24; the unversioned
 * function 16). The entry size is read off each answer (proc_stride). */
#define NVML_PROC_SLOT 32 /* room per entry: the largest layout seen */
#define NVML_PROC_MAX  4096

struct nvml_api {
    void *lib;
    bool inited;
    nvml_ret (*init)(void);
    nvml_ret (*shutdown)(void);
    const char *(*error_string)(nvml_ret);
    nvml_ret (*count)(unsigned int *);
    nvml_ret (*handle)(unsigned int, nvml_dev *);
    nvml_ret (*name)(nvml_dev, char *, unsigned int);
    nvml_ret (*uuid)(nvml_dev, char *, unsigned int);
    nvml_ret (*utilization)(nvml_dev, struct nvml_utilization *);
    nvml_ret (*memory_v2)(nvml_dev, struct nvml_memory_v2 *);
    nvml_ret (*memory)(nvml_dev, struct nvml_memory *);
    nvml_ret (*power)(nvml_dev, unsigned int *);            /* mW */
    nvml_ret (*energy)(nvml_dev, unsigned long long *);     /* mJ since the driver loaded */
    nvml_ret (*clock)(nvml_dev, int, unsigned int *);       /* MHz */
    nvml_ret (*temperature)(nvml_dev, int, unsigned int *); /* °C */
    nvml_ret (*temperature_v)(nvml_dev, struct nvml_temperature *);
    nvml_ret (*reasons)(nvml_dev, unsigned long long *); /* bitmask */
    nvml_ret (*processes)(nvml_dev, unsigned int *, void *);
};

/* Symbols looked up, in order; where several fill one slot the first found
 * wins (the newer name first). The first five are required. */
static const struct nvml_sym {
    const char *name;
    size_t off;
} nvml_syms[] = {
    {"nvmlInit_v2", offsetof(struct nvml_api, init)},
    {"nvmlShutdown", offsetof(struct nvml_api, shutdown)},
    {"nvmlErrorString", offsetof(struct nvml_api, error_string)},
    {"nvmlDeviceGetCount_v2", offsetof(struct nvml_api, count)},
    {"nvmlDeviceGetHandleByIndex_v2", offsetof(struct nvml_api, handle)},
    {"nvmlDeviceGetName", offsetof(struct nvml_api, name)},
    {"nvmlDeviceGetUUID", offsetof(struct nvml_api, uuid)},
    {"nvmlDeviceGetUtilizationRates", offsetof(struct nvml_api, utilization)},
    {"nvmlDeviceGetMemoryInfo_v2", offsetof(struct nvml_api, memory_v2)},
    {"nvmlDeviceGetMemoryInfo", offsetof(struct nvml_api, memory)},
    {"nvmlDeviceGetPowerUsage", offsetof(struct nvml_api, power)},
    {"nvmlDeviceGetTotalEnergyConsumption", offsetof(struct nvml_api, energy)},
    {"nvmlDeviceGetClockInfo", offsetof(struct nvml_api, clock)},
    {"nvmlDeviceGetTemperature", offsetof(struct nvml_api, temperature)},
    {"nvmlDeviceGetTemperatureV", offsetof(struct nvml_api, temperature_v)},
    {"nvmlDeviceGetCurrentClocksEventReasons", offsetof(struct nvml_api, reasons)},
    {"nvmlDeviceGetCurrentClocksThrottleReasons", offsetof(struct nvml_api, reasons)},
    {"nvmlDeviceGetComputeRunningProcesses_v3", offsetof(struct nvml_api, processes)},
    {"nvmlDeviceGetComputeRunningProcesses_v2", offsetof(struct nvml_api, processes)},
    {"nvmlDeviceGetComputeRunningProcesses", offsetof(struct nvml_api, processes)},
};
#define NVML_NREQUIRED 5

/* ---- what the monitor records ---- */

enum gpu_ser {
    S_UTIL,
    S_MEM_UTIL,
    S_MEM_USED,
    S_MEM_TOTAL,
    S_POWER,
    S_ENERGY,
    S_SM_CLOCK,
    S_MEM_CLOCK,
    S_TEMP,
    S_REASONS,
    S_N,
};
static const struct {
    const char *name, *unit;
} gpu_series[S_N] = {
    [S_UTIL] = {"utilization_percent", "%"},
    [S_MEM_UTIL] = {"memory_utilization_percent", "%"},
    [S_MEM_USED] = {"memory_used_bytes", "B"},
    [S_MEM_TOTAL] = {"memory_total_bytes", "B"},
    [S_POWER] = {"power_w", "W"},
    [S_ENERGY] = {"energy_j", "J"},
    [S_SM_CLOCK] = {"sm_clock_mhz", "MHz"},
    [S_MEM_CLOCK] = {"mem_clock_mhz", "MHz"},
    [S_TEMP] = {"temperature_c", "C"},
    [S_REASONS] = {"throttle_reasons", ""},
};

/* One NVML call per reading; a reading a GPU does not support is left out. */
enum gpu_read {
    RD_UTIL,
    RD_MEMORY,
    RD_POWER,
    RD_ENERGY,
    RD_SM,
    RD_MEMCLK,
    RD_TEMP,
    RD_REASONS,
    RD_PROCS,
    RD_N
};
static const char *const read_names[RD_N] = {
    "utilization",    "memory",           "power",
    "energy counter", "SM clock",         "memory clock",
    "temperature",    "throttle reasons", "per-process GPU memory",
};

struct gpu_sample {
    int64_t mono, wall;
    bool have[S_N];
    double v[S_N];
    bool have_counter;
    unsigned long long counter_mj;
};

struct gpu_stat {
    double sum, max;
    uint64_t n;
};

struct gpu_dev {
    unsigned index;
    nvml_dev h;
    char name[NVML_TEXT_LEN], uuid[NVML_TEXT_LEN];
    char *labels;           /* {"gpu":"0","name":...,"uuid":...} */
    bool off[RD_N];         /* not supported (or not in the library): left out */
    bool off_said[RD_N];    /* ... and said so */
    nvml_ret off_why[RD_N]; /* NVML_ERROR_NOT_SUPPORTED or _FUNCTION_NOT_FOUND */
    uint64_t fails[RD_N];   /* other errors, the first one said */
    /* Energy: the counter's increase since the first reading, and power
     * integrated over time (trapezoid) for GPUs without the counter. */
    bool have_counter, have_power;
    unsigned long long counter_last;
    double counter_j, integ_j, power_last;
    int64_t power_mono, first_mono, last_mono;
    struct gpu_stat util, power, mem_used;
    uint64_t nvalues; /* readings that succeeded */
    bool nonzero;     /* one of them was not 0 */
};

struct gpu_priv {
    struct nvml_api api;
    const char *lib_path;
    struct gpu_dev *g;
    size_t n;
    bool required, processes;
    char **devices; /* `devices:`, NULL = all */
    int64_t next_due, last_sample;
    /* Per-process memory: the list buffer, and what was seen. */
    unsigned char *pbuf;
    unsigned pcap;
    uint64_t proc_points;
    pid_t foreign[8]; /* pids NVML listed that belong to no component */
    size_t nforeign;
};

#define GPU_DEFAULT_INTERVAL_NS ((int64_t)1000000000)
#define GPU_MAX_INDEX           4095
#define GPU_DEFAULT_LIBRARY     "libnvidia-ml.so.1"

static int64_t gpu_interval(const struct comp *c)
{
    return c->spec->interval_ns > 0 ? c->spec->interval_ns : GPU_DEFAULT_INTERVAL_NS;
}

static const char *nvml_err(const struct nvml_api *a, nvml_ret r)
{
    const char *s = a->error_string ? a->error_string(r) : NULL;
    return s && *s ? s : "unknown NVML error";
}

/* ---- loading NVML ---- */

/* dlopen + dlsym of every symbol; 0, or -ENOENT with *why set (caller frees). */
static int nvml_load(struct nvml_api *a, const char *path, char **why)
{
    a->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!a->lib) {
        const char *e = dlerror();
        /* dlerror's text names the path */
        *why = e ? xasprintf("no NVML: %s", e) : xasprintf("no NVML: dlopen %s failed", path);
        return -ENOENT;
    }
    for (size_t i = 0; i < SONDE_ARRAY_LEN(nvml_syms); i++) {
        void *slot = (char *)a + nvml_syms[i].off, *cur, *sym;
        memcpy(&cur, slot, sizeof(cur));
        if (cur)
            continue;
        sym = dlsym(a->lib, nvml_syms[i].name);
        if (!sym && i < NVML_NREQUIRED) {
            *why = xasprintf("no NVML: %s has no %s (not an NVML library, or too old)", path,
                             nvml_syms[i].name);
            return -ENOENT;
        }
        /* POSIX guarantees object and function pointers convert through dlsym. */
        memcpy(slot, &sym, sizeof(sym));
    }
    return 0;
}

static void nvml_unload(struct nvml_api *a)
{
    if (a->inited && a->shutdown)
        a->shutdown();
    if (a->lib)
        dlclose(a->lib);
    memset(a, 0, sizeof(*a));
}

/* ---- readings: one NVML call each, into the sample ---- */

typedef nvml_ret (*gpu_reader)(struct nvml_api *a, nvml_dev h, struct gpu_sample *s);

static nvml_ret read_util(struct nvml_api *a, nvml_dev h, struct gpu_sample *s)
{
    struct nvml_utilization u = {0};
    nvml_ret r = a->utilization ? a->utilization(h, &u) : NVML_ERROR_FUNCTION_NOT_FOUND;
    if (r == NVML_SUCCESS) {
        s->have[S_UTIL] = s->have[S_MEM_UTIL] = true;
        s->v[S_UTIL] = u.gpu;
        s->v[S_MEM_UTIL] = u.memory;
    }
    return r;
}

/* v2 first: its `used` leaves out the driver's reserve, as nvidia-smi does.
 * A library that does not know v2 answers with one of the errors below,
 * and v1 is used from then on. */
static nvml_ret read_memory(struct nvml_api *a, nvml_dev h, struct gpu_sample *s)
{
    unsigned long long total = 0, used = 0;
    nvml_ret r = NVML_ERROR_FUNCTION_NOT_FOUND;
    if (a->memory_v2) {
        struct nvml_memory_v2 m = {.version = NVML_VERSION(struct nvml_memory_v2, 2)};
        r = a->memory_v2(h, &m);
        total = m.total, used = m.used;
        if (r == NVML_ERROR_FUNCTION_NOT_FOUND || r == NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
            a->memory_v2 = NULL;
    }
    if (r != NVML_SUCCESS && a->memory) { /* v2 unknown, or not supported on this GPU */
        struct nvml_memory m = {0};
        r = a->memory(h, &m);
        total = m.total, used = m.used;
    }
    if (r == NVML_SUCCESS) {
        s->have[S_MEM_USED] = s->have[S_MEM_TOTAL] = true;
        s->v[S_MEM_USED] = (double)used;
        s->v[S_MEM_TOTAL] = (double)total;
    }
    return r;
}

static nvml_ret read_power(struct nvml_api *a, nvml_dev h, struct gpu_sample *s)
{
    unsigned int mw = 0;
    nvml_ret r = a->power ? a->power(h, &mw) : NVML_ERROR_FUNCTION_NOT_FOUND;
    if (r == NVML_SUCCESS) {
        s->have[S_POWER] = true;
        s->v[S_POWER] = mw / 1000.0;
    }
    return r;
}

static nvml_ret read_energy(struct nvml_api *a, nvml_dev h, struct gpu_sample *s)
{
    unsigned long long mj = 0;
    nvml_ret r = a->energy ? a->energy(h, &mj) : NVML_ERROR_FUNCTION_NOT_FOUND;
    if (r == NVML_SUCCESS) {
        s->have_counter = true;
        s->counter_mj = mj;
    }
    return r;
}

static nvml_ret read_clock(struct nvml_api *a, nvml_dev h, struct gpu_sample *s, int type,
                           enum gpu_ser ser)
{
    unsigned int mhz = 0;
    nvml_ret r = a->clock ? a->clock(h, type, &mhz) : NVML_ERROR_FUNCTION_NOT_FOUND;
    if (r == NVML_SUCCESS) {
        s->have[ser] = true;
        s->v[ser] = mhz;
    }
    return r;
}

static nvml_ret read_sm_clock(struct nvml_api *a, nvml_dev h, struct gpu_sample *s)
{
    return read_clock(a, h, s, NVML_CLOCK_SM, S_SM_CLOCK);
}

static nvml_ret read_mem_clock(struct nvml_api *a, nvml_dev h, struct gpu_sample *s)
{
    return read_clock(a, h, s, NVML_CLOCK_MEM, S_MEM_CLOCK);
}

/* nvmlDeviceGetTemperatureV first: nvmlDeviceGetTemperature is deprecated
 * since NVML 13 (a driver may answer it "deprecated" one day); the old call
 * where the new one is missing or fails (older drivers). */
static nvml_ret read_temp(struct nvml_api *a, nvml_dev h, struct gpu_sample *s)
{
    unsigned int c = 0;
    nvml_ret r = NVML_ERROR_FUNCTION_NOT_FOUND;
    if (a->temperature_v) {
        struct nvml_temperature t = {.version = NVML_VERSION(struct nvml_temperature, 1),
                                     .sensor = NVML_TEMPERATURE_GPU};
        r = a->temperature_v(h, &t);
        c = t.temperature > 0 ? (unsigned int)t.temperature : 0;
    }
    if (r != NVML_SUCCESS && a->temperature)
        r = a->temperature(h, NVML_TEMPERATURE_GPU, &c);
    if (r == NVML_SUCCESS) {
        s->have[S_TEMP] = true;
        s->v[S_TEMP] = c;
    }
    return r;
}

static nvml_ret read_reasons(struct nvml_api *a, nvml_dev h, struct gpu_sample *s)
{
    unsigned long long bits = 0;
    nvml_ret r = a->reasons ? a->reasons(h, &bits) : NVML_ERROR_FUNCTION_NOT_FOUND;
    if (r == NVML_SUCCESS) {
        s->have[S_REASONS] = true;
        s->v[S_REASONS] = (double)bits;
    }
    return r;
}

static const gpu_reader gpu_readers[RD_PROCS] = {
    [RD_UTIL] = read_util,     [RD_MEMORY] = read_memory,   [RD_POWER] = read_power,
    [RD_ENERGY] = read_energy, [RD_SM] = read_sm_clock,     [RD_MEMCLK] = read_mem_clock,
    [RD_TEMP] = read_temp,     [RD_REASONS] = read_reasons,
};

/* ---- per-GPU bookkeeping ---- */

/* Readings found unsupported since the last call, said in one warning. */
static void say_unsupported(struct comp *c, struct gpu_dev *g)
{
    struct sbuf b = {0};
    for (int i = 0; i < RD_N; i++) {
        if (!g->off[i] || g->off_said[i])
            continue;
        g->off_said[i] = true;
        sbuf_printf(&b, "%s%s (%s)", b.len ? ", " : "", read_names[i],
                    g->off_why[i] == NVML_ERROR_NOT_SUPPORTED ? "not supported"
                                                              : "not in this NVML library");
    }
    if (b.len == 0) {
        sbuf_free(&b);
        return;
    }
    bool integrate = g->off[RD_ENERGY] && !g->off[RD_POWER];
    comp_warn(c, "GPU %u (%s): left out: %s%s", g->index, g->name, b.s,
              integrate ? "; its energy_j is power integrated over time" : "");
    sbuf_free(&b);
}

/* Sorts out one call's result: 0 when it gave a value. */
static int gpu_result(struct comp *c, struct gpu_priv *p, struct gpu_dev *g, enum gpu_read rd,
                      nvml_ret r)
{
    if (r == NVML_SUCCESS)
        return 0;
    if (r == NVML_ERROR_NOT_SUPPORTED || r == NVML_ERROR_FUNCTION_NOT_FOUND) {
        g->off[rd] = true;
        g->off_why[rd] = r;
    } else if (g->fails[rd]++ == 0) {
        comp_warn(c, "GPU %u (%s): reading its %s failed: %s (left out where it fails)", g->index,
                  g->name, read_names[rd], nvml_err(&p->api, r));
    }
    return -1;
}

static void stat_add(struct gpu_stat *st, double v)
{
    st->max = st->n == 0 || v > st->max ? v : st->max;
    st->sum += v;
    st->n++;
}

/* Energy since the first reading: the counter's increase (a counter that went
 * back, e.g. a driver reload, adds nothing), and power integrated over time. */
static void energy_update(struct gpu_dev *g, struct gpu_sample *s)
{
    if (s->have_counter) {
        if (g->have_counter && s->counter_mj >= g->counter_last)
            g->counter_j += (double)(s->counter_mj - g->counter_last) / 1000.0;
        g->counter_last = s->counter_mj;
        g->have_counter = true;
    }
    if (s->have[S_POWER]) {
        if (g->have_power && s->mono > g->power_mono)
            g->integ_j +=
                (g->power_last + s->v[S_POWER]) / 2.0 * (double)(s->mono - g->power_mono) / 1e9;
        g->power_last = s->v[S_POWER];
        g->power_mono = s->mono;
        g->have_power = true;
    }
    bool counter = !g->off[RD_ENERGY] && g->have_counter;
    s->have[S_ENERGY] = counter ? s->have_counter : s->have[S_POWER];
    s->v[S_ENERGY] = counter ? g->counter_j : g->integ_j;
}

/* Takes every supported reading of one GPU. */
static void gpu_read(struct comp *c, struct gpu_priv *p, struct gpu_dev *g, struct gpu_sample *s)
{
    memset(s, 0, sizeof(*s));
    s->wall = wall_ns();
    for (int rd = 0; rd < RD_PROCS; rd++)
        if (!g->off[rd])
            gpu_result(c, p, g, (enum gpu_read)rd, gpu_readers[rd](&p->api, g->h, s));
    s->mono = mono_ns();
    if (s->have_counter) {
        g->nvalues++;
        g->nonzero = g->nonzero || s->counter_mj != 0;
    }
    for (int i = 0; i < S_N; i++) {
        if (s->have[i]) {
            g->nvalues++;
            g->nonzero = g->nonzero || s->v[i] != 0;
        }
    }
    if (!g->first_mono)
        g->first_mono = s->mono;
    g->last_mono = s->mono;
    energy_update(g, s);
}

/* ---- per-process GPU memory ---- */

/* The entry size of a list of n entries: the library writes n whole entries
 * over a buffer filled with 0xA5, so the written extent is n × the size.
 * (The last bytes of every layout, a memory amount or an instance id, are
 * never 0xA5 in practice.) 0 when it fits none of the known layouts. */
static size_t proc_stride(const unsigned char *buf, size_t len, unsigned n)
{
    if (n == 1)
        return NVML_PROC_SLOT; /* one entry: pid and memory are at 0 and 8 in every layout */
    size_t end = len;
    while (end > 0 && buf[end - 1] == 0xA5)
        end--;
    size_t s = end / n;
    return end % n == 0 && (s == 16 || s == 24 || s == 32) ? s : 0;
}

/* The component whose process group pid is in, or NULL. */
static const struct comp *proc_owner(struct comp *c, pid_t pid)
{
    pid_t pg = getpgid(pid);
    if (pg <= 0)
        return NULL;
    struct comp **all;
    size_t n = session_comps(c->session, &all);
    for (size_t i = 0; i < n; i++)
        if (all[i] != c && all[i]->spec && all[i]->proc.pid > 0 && all[i]->proc.pid == pg)
            return all[i];
    return NULL;
}

static int proc_point(struct comp *c, struct gpu_priv *p, struct gpu_dev *g, pid_t pid,
                      unsigned long long bytes, int64_t wall)
{
    const struct comp *o = proc_owner(c, pid);
    if (!o) {
        bool known = false;
        for (size_t i = 0; i < p->nforeign && !known; i++)
            known = p->foreign[i] == pid;
        if (!known && p->nforeign < SONDE_ARRAY_LEN(p->foreign))
            p->foreign[p->nforeign++] = pid;
        return 0;
    }
    if (bytes == ~0ULL) /* NVML_VALUE_NOT_AVAILABLE */
        return 0;
    char gpu[16], spid[24];
    snprintf(gpu, sizeof(gpu), "%u", g->index);
    snprintf(spid, sizeof(spid), "%d", (int)pid);
    json_t *l = json_pack("{s:s,s:s,s:s}", "gpu", gpu, "component", o->spec->name, "pid", spid);
    char *labels = l ? json_dumps(l, JSON_COMPACT) : NULL;
    json_decref(l);
    int r = labels ? comp_series_point(c, "process_memory_bytes", "B", labels, wall, (double)bytes)
                   : -ENOMEM;
    free(labels);
    p->proc_points += r == 0;
    return r;
}

/* The list of compute processes on g into p->pbuf, *n entries; 0, or 1 when
 * it could not be read (said by gpu_result). */
static int proc_list(struct comp *c, struct gpu_priv *p, struct gpu_dev *g, unsigned *n)
{
    nvml_ret r = NVML_ERROR_INSUFFICIENT_SIZE;
    for (int attempt = 0; attempt < 2 && r == NVML_ERROR_INSUFFICIENT_SIZE; attempt++) {
        memset(p->pbuf, 0xA5, (size_t)p->pcap * NVML_PROC_SLOT);
        *n = p->pcap;
        r = p->api.processes(g->h, n, p->pbuf);
        if (r == NVML_ERROR_INSUFFICIENT_SIZE && *n > p->pcap && *n <= NVML_PROC_MAX) {
            p->pcap = *n + 16;
            p->pbuf = xrealloc(p->pbuf, (size_t)p->pcap * NVML_PROC_SLOT);
        }
    }
    if (gpu_result(c, p, g, RD_PROCS, r) < 0)
        return 1;
    if (*n > p->pcap) /* a library that says more than it could write */
        *n = p->pcap;
    return 0;
}

static int gpu_procs(struct comp *c, struct gpu_priv *p, struct gpu_dev *g, int64_t wall)
{
    unsigned n = 0;
    if (!p->processes || g->off[RD_PROCS] || proc_list(c, p, g, &n) != 0 || n == 0)
        return 0;
    size_t stride = proc_stride(p->pbuf, (size_t)p->pcap * NVML_PROC_SLOT, n);
    if (!stride) {
        g->off[RD_PROCS] = g->off_said[RD_PROCS] = true;
        comp_warn(c,
                  "GPU %u (%s): cannot tell the entry size of NVML's process list (%u entries): "
                  "per-process GPU memory left out",
                  g->index, g->name, n);
        return 0;
    }
    int r = 0;
    for (unsigned i = 0; i < n && r == 0; i++) {
        unsigned int pid;
        unsigned long long bytes;
        memcpy(&pid, p->pbuf + i * stride, sizeof(pid));
        memcpy(&bytes, p->pbuf + i * stride + 8, sizeof(bytes));
        if (pid > 0 && pid <= 0x7fffffffu)
            r = proc_point(c, p, g, (pid_t)pid, bytes, wall);
    }
    return r;
}

/* ---- sampling ---- */

static int gpu_emit(struct comp *c, struct gpu_dev *g, const struct gpu_sample *s)
{
    int r = 0;
    for (int i = 0; i < S_N && r == 0; i++)
        if (s->have[i])
            r = comp_series_point(c, gpu_series[i].name, gpu_series[i].unit, g->labels, s->wall,
                                  s->v[i]);
    if (s->have[S_UTIL])
        stat_add(&g->util, s->v[S_UTIL]);
    if (s->have[S_POWER])
        stat_add(&g->power, s->v[S_POWER]);
    if (s->have[S_MEM_USED])
        stat_add(&g->mem_used, s->v[S_MEM_USED]);
    return r;
}

/* One reading of every GPU; emit false: the baseline at start (energy from
 * the trial's start), nothing recorded. */
static int gpu_sample(struct comp *c, struct gpu_priv *p, bool emit)
{
    int r = 0;
    for (size_t i = 0; i < p->n && r == 0; i++) {
        struct gpu_sample s;
        gpu_read(c, p, &p->g[i], &s);
        if (emit)
            r = gpu_emit(c, &p->g[i], &s);
        if (r == 0 && emit)
            r = gpu_procs(c, p, &p->g[i], s.wall);
        say_unsupported(c, &p->g[i]);
    }
    p->last_sample = mono_ns();
    return r;
}

/* ---- start ---- */

static char *labels_for(const struct gpu_dev *g)
{
    char idx[16];
    snprintf(idx, sizeof(idx), "%u", g->index);
    json_t *o = json_pack("{s:s}", "gpu", idx);
    if (o && g->name[0])
        json_object_set_new(o, "name", json_string(g->name));
    if (o && g->uuid[0])
        json_object_set_new(o, "uuid", json_string(g->uuid));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *copy = xstrdup(s ? s : "{}");
    free(s);
    return copy;
}

/* The GPU at index, added to p; 0 or -1 with *why set. */
static int gpu_add(struct gpu_priv *p, unsigned index, char **why)
{
    nvml_dev h = NULL;
    nvml_ret r = p->api.handle(index, &h);
    if (r != NVML_SUCCESS) {
        *why = xasprintf("GPU %u: nvmlDeviceGetHandleByIndex_v2: %s", index, nvml_err(&p->api, r));
        return -1;
    }
    p->g = xrealloc(p->g, (p->n + 1) * sizeof(*p->g));
    struct gpu_dev *g = &p->g[p->n++];
    memset(g, 0, sizeof(*g));
    g->index = index;
    g->h = h;
    /* Names are bounded by NVML's buffer size; a failure leaves them out of the labels. */
    if (!p->api.name || p->api.name(h, g->name, sizeof(g->name)) != NVML_SUCCESS)
        g->name[0] = '\0';
    if (!p->api.uuid || p->api.uuid(h, g->uuid, sizeof(g->uuid)) != NVML_SUCCESS)
        g->uuid[0] = '\0';
    g->name[sizeof(g->name) - 1] = g->uuid[sizeof(g->uuid) - 1] = '\0';
    g->labels = labels_for(g);
    return 0;
}

/* Opens the GPUs asked for. 0, or -ENODEV with *why (nothing to measure, or
 * a listed GPU missing while required). Problems with single GPUs that leave
 * others to measure are warnings. */
static int gpu_open(struct comp *c, struct gpu_priv *p, char **why)
{
    unsigned count = 0;
    nvml_ret r = p->api.count(&count);
    if (r != NVML_SUCCESS) {
        *why = xasprintf("NVML (%s) cannot count GPUs: nvmlDeviceGetCount_v2: %s", p->lib_path,
                         nvml_err(&p->api, r));
        return -ENODEV;
    }
    if (count == 0) {
        *why = xasprintf("NVML (%s) sees no GPU", p->lib_path);
        return -ENODEV;
    }
    for (unsigned i = 0; p->devices ? p->devices[i] != NULL : i < count; i++) {
        unsigned idx = p->devices ? (unsigned)strtoul(p->devices[i], NULL, 10) : i;
        char *err = idx < count ? NULL
                                : xasprintf("GPU %u is not present (NVML sees %u GPU%s)", idx,
                                            count, count == 1 ? "" : "s");
        if (!err && gpu_add(p, idx, &err) == 0)
            continue;
        if (p->required) {
            *why = err;
            return -ENODEV;
        }
        comp_warn(c, "%s: not measured", err);
        free(err);
    }
    if (p->n == 0) {
        *why = xstrdup("none of the GPUs asked for can be measured");
        return -ENODEV;
    }
    return 0;
}

static void gpu_free(struct gpu_priv *p)
{
    if (!p)
        return;
    nvml_unload(&p->api);
    for (size_t i = 0; i < p->n; i++)
        free(p->g[i].labels);
    free(p->g);
    free(p->pbuf);
    strv_free(p->devices);
    free(p);
}

static int gpu_options(struct comp *c, struct gpu_priv *p)
{
    /* Validated with the recipe; a failure here means a bug upstream. */
    const struct sv *w = c->spec->with, *v;
    const char *bad = NULL;
    p->processes = true;
    if ((v = sv_get(w, "required")) && sv_as_bool(v, &p->required) < 0)
        bad = "`required` must be true or false";
    else if ((v = sv_get(w, "processes")) && sv_as_bool(v, &p->processes) < 0)
        bad = "`processes` must be true or false";
    else if ((v = sv_get(w, "devices")) && sv_as_strv(v, &p->devices) < 0)
        bad = "`devices` must be a list of GPU indices";
    if (bad)
        comp_set_reason(c, "%s", bad);
    return bad ? -EINVAL : 0;
}

static void gpu_provenance(struct comp *c, const struct gpu_priv *p)
{
    struct sbuf b = {0};
    for (size_t i = 0; i < p->n; i++)
        sbuf_printf(&b, "%s%u: %s (%s)", i ? "; " : "", p->g[i].index,
                    p->g[i].name[0] ? p->g[i].name : "?", p->g[i].uuid[0] ? p->g[i].uuid : "?");
    comp_provenance(c, "gpus", b.s);
    sbuf_free(&b);
}

/* NVML could not be used: a warning, or with `required` the start fails. */
static int gpu_unavailable(struct comp *c, struct gpu_priv *p, char *why)
{
    int r = 0;
    if (p->required) {
        comp_set_reason(c, "%s", why);
        r = -ENODEV;
    } else {
        comp_warn(c, "no GPU metrics: %s", why);
    }
    free(why);
    gpu_free(p);
    c->priv = NULL;
    return r;
}

static int gpu_start(struct comp *c)
{
    struct gpu_priv *p = xcalloc(1, sizeof(*p));
    c->priv = NULL;
    if (gpu_options(c, p) < 0) {
        gpu_free(p);
        return -EINVAL;
    }
    const char *env = getenv("SONDE_NVML_LIBRARY");
    p->lib_path = env && *env ? env : GPU_DEFAULT_LIBRARY;
    char *why = NULL;
    if (nvml_load(&p->api, p->lib_path, &why) < 0)
        return gpu_unavailable(c, p, why);
    nvml_ret r = p->api.init();
    if (r != NVML_SUCCESS)
        return gpu_unavailable(c, p,
                               xasprintf("NVML (%s) did not start: nvmlInit_v2: %s", p->lib_path,
                                         nvml_err(&p->api, r)));
    p->api.inited = true;
    if (gpu_open(c, p, &why) < 0)
        return gpu_unavailable(c, p, why);
    for (size_t i = 0; i < p->n && p->processes && !p->api.processes; i++) {
        p->g[i].off[RD_PROCS] = true;
        p->g[i].off_why[RD_PROCS] = NVML_ERROR_FUNCTION_NOT_FOUND;
    }
    p->pcap = 64;
    p->pbuf = xmalloc((size_t)p->pcap * NVML_PROC_SLOT);
    if (c->backend && c->backend->batch)
        comp_warn(c,
                  "on the %s backend the gpu monitor measures the GPUs of sonde's own machine, "
                  "not those of the jobs' nodes",
                  c->backend->name);
    gpu_provenance(c, p);
    gpu_sample(c, p, false);
    p->next_due = mono_ns() + gpu_interval(c);
    c->priv = p;
    return 0;
}

/* ---- tick, finish ---- */

static int gpu_tick(struct comp *c, int64_t now)
{
    struct gpu_priv *p = c->priv;
    if (!p || now < p->next_due)
        return 0;
    p->next_due += gpu_interval(c);
    if (p->next_due <= now) /* fell behind: do not burst */
        p->next_due = now + gpu_interval(c);
    int r = gpu_sample(c, p, true);
    return r < 0 ? r : 0;
}

/* The GPU's energy over the trial in J (< 0: none), and where it came from. */
static double gpu_energy(struct comp *c, struct gpu_dev *g, const char **source)
{
    double secs = (double)(g->last_mono - g->first_mono) / 1e9;
    bool counter = !g->off[RD_ENERGY] && g->have_counter;
    /* A counter that never moved while power was drawn is not to be believed. */
    if (counter && g->counter_j == 0 && g->integ_j > 0 && secs >= 2) {
        comp_warn(c,
                  "GPU %u (%s): the energy counter did not advance in %.1f s while power was "
                  "drawn; energy_j is power integrated over time instead",
                  g->index, g->name, secs);
        counter = false;
    }
    *source = counter ? "energy counter" : "integrated power";
    if (counter)
        return g->counter_j;
    return g->have_power ? g->integ_j : -1;
}

static void gpu_summary(struct comp *c, struct gpu_dev *g)
{
    const struct {
        const char *name, *unit;
        const struct gpu_stat *st;
        bool mean, max;
    } m[] = {
        {"utilization_percent", "%", &g->util, true, true},
        {"power_w", "W", &g->power, true, true},
        {"memory_used_bytes", "B", &g->mem_used, false, true},
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(m); i++) {
        if (m[i].st->n == 0)
            continue;
        char *mean = xasprintf("%s_mean", m[i].name), *max = xasprintf("%s_max", m[i].name);
        if (m[i].mean)
            comp_metric(c, mean, m[i].unit, g->labels, m[i].st->sum / (double)m[i].st->n);
        if (m[i].max)
            comp_metric(c, max, m[i].unit, g->labels, m[i].st->max);
        free(mean);
        free(max);
    }
    if (g->nvalues > 0 && !g->nonzero)
        comp_warn(c,
                  "GPU %u (%s): every reading was 0 for the whole trial although NVML answered "
                  "each call with success: the values are not to be trusted (an NVML library "
                  "whose interface differs from what sonde declares?)",
                  g->index, g->name);
}

/* Energy of each GPU, their total, and where it came from (provenance). */
static void gpu_energy_totals(struct comp *c, struct gpu_priv *p)
{
    double total = 0;
    bool any = false, mixed = false;
    const char *first = NULL;
    struct sbuf b = {0};
    for (size_t i = 0; i < p->n; i++) {
        const char *src;
        double e = gpu_energy(c, &p->g[i], &src);
        if (e < 0)
            continue;
        comp_metric(c, "energy_j", "J", p->g[i].labels, e);
        total += e;
        mixed = mixed || (first && strcmp(first, src) != 0);
        first = first ? first : src;
        sbuf_printf(&b, "%sgpu %u: %s", any ? ", " : "", p->g[i].index, src);
        any = true;
    }
    if (any) {
        comp_metric(c, "energy_j", "J", NULL, total);
        comp_provenance(c, "gpu_energy_source", mixed ? b.s : first);
    }
    sbuf_free(&b);
}

static int gpu_finish(struct comp *c)
{
    struct gpu_priv *p = c->priv;
    if (!p)
        return 0;
    /* The last reading closes the energy window at the trial's end (and a
     * trial shorter than one interval still gets its one sample). */
    if (mono_ns() - p->last_sample >= 10000000)
        gpu_sample(c, p, true);
    struct gpu_stat all = {0};
    comp_batch_begin(c); /* the summary metrics in one transaction */
    for (size_t i = 0; i < p->n; i++) {
        gpu_summary(c, &p->g[i]);
        all.sum += p->g[i].util.sum;
        all.n += p->g[i].util.n;
    }
    gpu_energy_totals(c, p);
    if (all.n > 0)
        comp_metric(c, "utilization_percent_mean", "%", NULL, all.sum / (double)all.n);
    comp_metric(c, "gpu_count", "", NULL, (double)p->n);
    comp_batch_end(c);
    if (p->processes && p->proc_points == 0 && p->nforeign > 0) {
        struct sbuf b = {0};
        for (size_t i = 0; i < p->nforeign; i++)
            sbuf_printf(&b, "%s%d", i ? ", " : "", (int)p->foreign[i]);
        comp_warn(c,
                  "NVML listed GPU processes (pids %s), none of them in a component's process "
                  "group: no process_memory_bytes (inside a container NVML may give the host's "
                  "pids)",
                  b.s);
        sbuf_free(&b);
    }
    return 0;
}

static void gpu_cleanup(struct comp *c)
{
    gpu_free(c->priv);
    c->priv = NULL;
}

/* ---- options ---- */

static int gpu_check(const struct comp_spec *spec, struct diags *d)
{
    const struct sv *list = spec->with ? sv_get(spec->with, "devices") : NULL;
    size_t before = d ? d->n + d->dropped : 0;
    for (size_t i = 0; list && list->kind == SV_SEQ && i < list->n; i++) {
        const struct sv *item = list->kids[i];
        int64_t v = -1;
        char *path =
            xasprintf("%ss.%s.with.devices[%zu]", comp_role_name(spec->role), spec->name, i);
        if (item->kind != SV_SCALAR || sv_as_int(item, &v) < 0 || v < 0 || v > GPU_MAX_INDEX)
            diags_add(d, item->pos, path, NULL,
                      "expected a GPU index (an integer from 0 to %d, as nvidia-smi numbers them)",
                      GPU_MAX_INDEX);
        for (size_t j = 0; j < i && v >= 0; j++) {
            int64_t w;
            if (sv_as_int(list->kids[j], &w) == 0 && w == v) {
                diags_add(d, item->pos, path, NULL, "GPU %lld is listed twice", (long long)v);
                break;
            }
        }
        free(path);
    }
    return d && d->n + d->dropped > before ? -EINVAL : 0;
}

static const struct opt_def gpu_opts[] = {
    {.name = "devices",
     .type = OPT_STR_LIST,
     .def = "all",
     .help = "indices of the GPUs to measure, as nvidia-smi numbers them (default: every GPU)"},
    {.name = "required",
     .type = OPT_BOOL,
     .def = "false",
     .help = "fail the trial when NVML or a listed GPU is missing (default: a warning)"},
    {.name = "processes",
     .type = OPT_BOOL,
     .def = "true",
     .help = "record the GPU memory of each process of the session's components"},
    {.name = NULL},
};

const struct driver_ops driver_monitor_gpu = {
    .name = "gpu",
    .role = ROLE_MONITOR,
    .summary = "NVIDIA GPUs of sonde's machine through NVML (loaded at run time): utilization, "
               "memory, power, energy, clocks, temperature, per-process memory",
    .opts = gpu_opts,
    .check = gpu_check,
    .start = gpu_start,
    .tick = gpu_tick,
    .finish = gpu_finish,
    .cleanup = gpu_cleanup,
};
