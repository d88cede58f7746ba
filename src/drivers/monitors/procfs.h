/* procfs.h — machine and process-group counters read from /proc (Linux).
 *
 * Every reader returns 0 or a negative errno and fills its struct only on
 * success. Counters are cumulative since boot; monitors turn them into rates
 * from deltas over the elapsed time between two samples. */
#ifndef SONDE_PROCFS_H
#define SONDE_PROCFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct procfs_cpu {
    uint64_t total; /* jiffies over all CPUs (user..steal; guest is inside user) */
    uint64_t idle;  /* idle + iowait jiffies */
    unsigned ncpus; /* "cpuN" lines */
};
int procfs_read_cpu(struct procfs_cpu *out);

struct procfs_mem {
    uint64_t total_bytes;     /* MemTotal */
    uint64_t available_bytes; /* MemAvailable */
};
int procfs_read_mem(struct procfs_mem *out);

struct procfs_net {
    uint64_t rx_bytes, tx_bytes; /* summed over every interface except lo */
};
int procfs_read_net(struct procfs_net *out);

struct procfs_disk {
    uint64_t read_bytes, write_bytes; /* sectors × 512 over whole disks (no partitions,
                                         loop, ram, zram, dm-*, md*) */
};
int procfs_read_disk(struct procfs_disk *out);

struct procfs_usage {
    double cpu_seconds; /* user + system time; for groups also of reaped children */
    uint64_t rss_bytes; /* sum of resident sets (shared pages count once per process) */
    unsigned nprocs;    /* live (non-zombie) processes */
};
/* Sums every process whose process group is pgids[i] into out[i] (one /proc
 * scan for all groups). A group with no process gets nprocs 0. */
int procfs_read_pgroups(const pid_t *pgids, size_t n, struct procfs_usage *out);
/* One group; -ESRCH when it has no live process. */
int procfs_read_pgroup(pid_t pgid, struct procfs_usage *out);
/* Every process (but this one) whose environment holds the entry `with`
 * ("SLURM_JOB_ID=12") and not the entry `without` (may be NULL): a batch
 * job's processes on this node, whatever their process groups. */
int procfs_read_tagged(const char *with, const char *without, struct procfs_usage *out);
/* One process (its own user + system time, not its children's). */
int procfs_read_pid(pid_t pid, struct procfs_usage *out);

/* Parsers behind the readers, exposed for tests and fuzzing. */
int procfs_parse_cpu(const char *text, struct procfs_cpu *out);
int procfs_parse_mem(const char *text, struct procfs_mem *out);
int procfs_parse_net(const char *text, struct procfs_net *out);

#endif
