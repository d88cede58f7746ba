/* fake_nvml.c — a stand-in for libnvidia-ml.so.1, for testing the gpu
 * monitor on machines without an NVIDIA GPU. It is not NVML and proves
 * nothing about real GPUs: it answers NVML's calls with values from fixed
 * rules, so that a test can check the monitor's arithmetic (units, energy
 * from the counter, integration, means) and its handling of missing
 * features exactly. tests/gpu/gpu-check.sh is the check on a real GPU.
 *
 *   cc -shared -fPIC -o libnvidia-ml.so.1 tests/gpu/fake_nvml.c
 *     -DFAKE_NVML_OLD  leaves out what older drivers lack (memory v2, clocks
 *                      event reasons, nvmlDeviceGetTemperatureV, process list
 *                      _v2/_v3: the unversioned one with 16-byte entries)
 *     -DFAKE_NVML_NEW  leaves out what NVML 13 deprecates (memory v1,
 *                      nvmlDeviceGetTemperature, throttle reasons, process
 *                      list v1/_v2)
 *
 * The rules, for GPU i (0-based):
 *   name "Fake GPU i (stand-in)", uuid "GPU-fa4e0000-0000-0000-0000-00000000000i"
 *   utilization.gpu = min(100, 10 × k) at the k-th call for that GPU; .memory = 5 + i
 *   memory total 80 GiB, used (i + 1) GiB, reserved 512 MiB (v1's used adds it)
 *   power 250 + 50 i W; energy counter (GPU 0 only; GPU 1+ NOT_SUPPORTED):
 *     10^9 mJ + 250 W × the time since nvmlInit_v2
 *   SM clock 1980 + i MHz, memory clock 2619 MHz, temperature 40 + i °C
 *   throttle reasons 0x4 on GPU 0, 0x1 on the others
 *   FAKE_NVML_TEMP_OLD_RET / FAKE_NVML_TEMPV_RET=N: nvmlDeviceGetTemperature /
 *     nvmlDeviceGetTemperatureV answer N (e.g. 26 "deprecated", 3 not supported)
 *   compute processes on GPU 0: pid 1 with 1 GiB (never one of a session's),
 *     then each pid in the file $FAKE_NVML_PIDS with 512 MiB
 * Environment:
 *   FAKE_NVML_GPUS=N        number of GPUs (default 2)
 *   FAKE_NVML_INIT=CODE     nvmlInit_v2 returns this NVML error code
 *   FAKE_NVML_ZERO=1        every reading is 0 (calls succeed)
 *   FAKE_NVML_PROC_STRIDE=B entry size of the _v2/_v3 process list: 24 (default) or
 *                           32 (as R535's _v3 wrote)
 *   FAKE_NVML_LOG=FILE      appends "init" / "shutdown" per call */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int nvmlReturn_t;
typedef struct fake_device *nvmlDevice_t;

enum {
    OK = 0,
    E_UNINITIALIZED = 1,
    E_INVALID_ARGUMENT = 2,
    E_NOT_SUPPORTED = 3,
    E_INSUFFICIENT_SIZE = 7,
    E_DRIVER_NOT_LOADED = 9,
    E_ARGUMENT_VERSION_MISMATCH = 25,
};

#define FAKE_MAX_GPUS 16
#define GIB           (1024ULL * 1024 * 1024)

struct fake_device {
    unsigned index;
    unsigned util_calls;
};
static struct fake_device devices[FAKE_MAX_GPUS];
static int init_count;
static struct timespec init_time;

static int env_int(const char *name, int def)
{
    const char *s = getenv(name);
    return s && *s ? atoi(s) : def;
}

static unsigned ngpus(void)
{
    int n = env_int("FAKE_NVML_GPUS", 2);
    return n < 0 ? 0 : n > FAKE_MAX_GPUS ? FAKE_MAX_GPUS : (unsigned)n;
}

static int zero(void)
{
    return env_int("FAKE_NVML_ZERO", 0) != 0;
}

static void log_call(const char *what)
{
    const char *path = getenv("FAKE_NVML_LOG");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (f) {
        fprintf(f, "%s\n", what);
        fclose(f);
    }
}

/* The handle's device, or NULL when it is not one of ours or NVML is not initialised. */
static struct fake_device *dev(nvmlDevice_t d, nvmlReturn_t *r)
{
    *r = init_count <= 0 ? E_UNINITIALIZED : E_INVALID_ARGUMENT;
    if (init_count <= 0 || !d || d < devices || d >= devices + ngpus())
        return NULL;
    *r = OK;
    return d;
}

nvmlReturn_t nvmlInit_v2(void)
{
    log_call("init");
    int code = env_int("FAKE_NVML_INIT", 0);
    if (code)
        return code;
    if (init_count++ == 0)
        clock_gettime(CLOCK_MONOTONIC, &init_time);
    for (unsigned i = 0; i < FAKE_MAX_GPUS; i++)
        devices[i] = (struct fake_device){.index = i};
    return OK;
}

nvmlReturn_t nvmlShutdown(void)
{
    log_call("shutdown");
    if (init_count <= 0)
        return E_UNINITIALIZED;
    init_count--;
    return OK;
}

const char *nvmlErrorString(nvmlReturn_t r)
{
    switch (r) {
    case OK:
        return "Success";
    case E_UNINITIALIZED:
        return "Uninitialized";
    case E_INVALID_ARGUMENT:
        return "Invalid Argument";
    case E_NOT_SUPPORTED:
        return "Not Supported";
    case E_INSUFFICIENT_SIZE:
        return "Insufficient Size";
    case E_DRIVER_NOT_LOADED:
        return "Driver Not Loaded";
    case E_ARGUMENT_VERSION_MISMATCH:
        return "Argument Version Mismatch";
    default:
        return "Unknown Error";
    }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    if (init_count <= 0)
        return E_UNINITIALIZED;
    if (!count)
        return E_INVALID_ARGUMENT;
    *count = ngpus();
    return OK;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    if (init_count <= 0)
        return E_UNINITIALIZED;
    if (index >= ngpus() || !device)
        return E_INVALID_ARGUMENT;
    *device = &devices[index];
    return OK;
}

static nvmlReturn_t text(char *buf, unsigned len, const char *s)
{
    if (!buf || strlen(s) + 1 > len)
        return E_INSUFFICIENT_SIZE;
    memcpy(buf, s, strlen(s) + 1);
    return OK;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length)
{
    nvmlReturn_t r;
    struct fake_device *f = dev(d, &r);
    char s[64];
    if (f)
        snprintf(s, sizeof(s), "Fake GPU %u (stand-in)", f->index);
    return f ? text(name, length, s) : r;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length)
{
    nvmlReturn_t r;
    struct fake_device *f = dev(d, &r);
    char s[64];
    if (f)
        snprintf(s, sizeof(s), "GPU-fa4e0000-0000-0000-0000-%012u", f->index);
    return f ? text(uuid, length, s) : r;
}

typedef struct {
    unsigned int gpu, memory;
} nvmlUtilization_t;

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u)
{
    nvmlReturn_t r;
    struct fake_device *f = dev(d, &r);
    if (!f || !u)
        return f ? E_INVALID_ARGUMENT : r;
    f->util_calls++;
    u->gpu = zero() ? 0 : f->util_calls >= 10 ? 100 : 10 * f->util_calls;
    u->memory = zero() ? 0 : 5 + f->index;
    return OK;
}

static unsigned long long mem_used(const struct fake_device *f)
{
    return zero() ? 0 : (f->index + 1) * GIB;
}
#define MEM_TOTAL    (80 * GIB)
#define MEM_RESERVED (GIB / 2)

#ifndef FAKE_NVML_NEW
typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
    nvmlReturn_t r;
    struct fake_device *f = dev(d, &r);
    if (!f || !m)
        return f ? E_INVALID_ARGUMENT : r;
    m->total = zero() ? 0 : MEM_TOTAL;
    m->used = zero() ? 0 : mem_used(f) + MEM_RESERVED;
    m->free = m->total - m->used;
    return OK;
}
#endif

#ifndef FAKE_NVML_OLD
typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m)
{
    nvmlReturn_t r;
    struct fake_device *f = dev(d, &r);
    if (!f || !m)
        return f ? E_INVALID_ARGUMENT : r;
    if (m->version != (unsigned)(sizeof(nvmlMemory_v2_t) | (2u << 24)))
        return E_ARGUMENT_VERSION_MISMATCH;
    m->total = zero() ? 0 : MEM_TOTAL;
    m->reserved = zero() ? 0 : MEM_RESERVED;
    m->used = mem_used(f);
    m->free = m->total - m->used - m->reserved;
    return OK;
}
#endif

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw)
{
    nvmlReturn_t r;
    struct fake_device *f = dev(d, &r);
    if (!f || !mw)
        return f ? E_INVALID_ARGUMENT : r;
    *mw = zero() ? 0 : 250000 + 50000 * f->index;
    return OK;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *mj)
{
    nvmlReturn_t r;
    struct fake_device *f = dev(d, &r);
    if (!f || !mj)
        return f ? E_INVALID_ARGUMENT : r;
    if (f->index != 0)
        return E_NOT_SUPPORTED;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double secs =
        (double)(now.tv_sec - init_time.tv_sec) + (double)(now.tv_nsec - init_time.tv_nsec) / 1e9;
    *mj = zero() ? 0 : 1000000000ULL + (unsigned long long)(250.0 * 1000.0 * secs);
    return OK;
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned int *mhz)
{
    nvmlReturn_t r;
    struct fake_device *f = dev(d, &r);
    if (!f || !mhz || type < 0 || type > 3)
        return f ? E_INVALID_ARGUMENT : r;
    /* graphics 0, SM 1, memory 2, video 3 */
    *mhz = zero() ? 0 : type == 1 ? 1980 + f->index : type == 2 ? 2619 : 1755;
    return OK;
}

static nvmlReturn_t temperature(nvmlDevice_t d, int sensor, unsigned int *c)
{
    nvmlReturn_t r;
    struct fake_device *f = dev(d, &r);
    if (!f || !c || sensor != 0)
        return f ? E_INVALID_ARGUMENT : r;
    *c = zero() ? 0 : 40 + f->index;
    return OK;
}

#ifndef FAKE_NVML_NEW
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *c)
{
    int fail = env_int("FAKE_NVML_TEMP_OLD_RET", 0); /* e.g. 26: deprecated */
    return fail ? (nvmlReturn_t)fail : temperature(d, sensor, c);
}
#endif

#ifndef FAKE_NVML_OLD
typedef struct {
    unsigned int version;
    int sensorType;
    int temperature;
} nvmlTemperature_t;

nvmlReturn_t nvmlDeviceGetTemperatureV(nvmlDevice_t d, nvmlTemperature_t *t)
{
    if (!t)
        return E_INVALID_ARGUMENT;
    if (t->version != (unsigned)(sizeof(nvmlTemperature_t) | (1u << 24)))
        return E_ARGUMENT_VERSION_MISMATCH;
    int fail = env_int("FAKE_NVML_TEMPV_RET", 0);
    if (fail)
        return (nvmlReturn_t)fail;
    unsigned int c = 0;
    nvmlReturn_t r = temperature(d, t->sensorType, &c);
    t->temperature = (int)c;
    return r;
}
#endif

static nvmlReturn_t reasons(nvmlDevice_t d, unsigned long long *bits)
{
    nvmlReturn_t r;
    struct fake_device *f = dev(d, &r);
    if (!f || !bits)
        return f ? E_INVALID_ARGUMENT : r;
    *bits = zero() ? 0 : f->index == 0 ? 0x4 : 0x1;
    return OK;
}

#ifndef FAKE_NVML_OLD
nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t d, unsigned long long *bits)
{
    return reasons(d, bits);
}
#endif
#ifndef FAKE_NVML_NEW
nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t d, unsigned long long *bits)
{
    return reasons(d, bits);
}
#endif

/* The process list of GPU 0 in entries of `stride` bytes: pid at 0, memory
 * at 8, then 0xFFFFFFFF instance ids (24, 32) and 0 protected memory (32). */
static nvmlReturn_t processes(nvmlDevice_t d, unsigned int *count, void *infos, size_t stride)
{
    nvmlReturn_t r;
    struct fake_device *f = dev(d, &r);
    if (!f || !count)
        return f ? E_INVALID_ARGUMENT : r;
    unsigned pids[64], n = 0;
    const char *path = getenv("FAKE_NVML_PIDS");
    FILE *in = f->index == 0 && path ? fopen(path, "r") : NULL;
    if (f->index == 0) /* first: a reader with the wrong entry size then misses the others */
        pids[n++] = 1;
    while (in && n < 64 && fscanf(in, "%u", &pids[n]) == 1)
        n++;
    if (in)
        fclose(in);
    if (*count < n) {
        *count = n;
        return E_INSUFFICIENT_SIZE;
    }
    if (n && !infos)
        return E_INVALID_ARGUMENT;
    for (unsigned i = 0; i < n; i++) {
        unsigned char e[32];
        unsigned long long bytes = zero() ? 0 : pids[i] == 1 ? GIB : GIB / 2, none = 0;
        unsigned ids = 0xFFFFFFFFu;
        memset(e, 0, sizeof(e));
        memcpy(e, &pids[i], 4);
        memcpy(e + 8, &bytes, 8);
        memcpy(e + 16, &ids, 4);
        memcpy(e + 20, &ids, 4);
        memcpy(e + 24, &none, 8);
        memcpy((unsigned char *)infos + i * stride, e, stride);
    }
    *count = n;
    return OK;
}

#ifndef FAKE_NVML_NEW
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t d, unsigned int *count, void *infos)
{
    return processes(d, count, infos, 16);
}
#endif
#if !defined(FAKE_NVML_OLD) && !defined(FAKE_NVML_NEW)
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t d, unsigned int *count,
                                                     void *infos)
{
    return processes(d, count, infos, 24);
}
#endif
#ifndef FAKE_NVML_OLD
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                     void *infos)
{
    size_t stride = env_int("FAKE_NVML_PROC_STRIDE", 24) == 32 ? 32 : 24;
    return processes(d, count, infos, stride);
}
#endif
