/* monitors.h — what the node and process monitors share with the monitor
 * agent, `sonde agent monitor`.
 *
 * On a batch backend the components run on other machines, so sonde cannot
 * read their /proc. Each job then starts one agent per node (an overlapping
 * job step, written into the job script): it samples the node and the job's
 * processes there (those whose environment holds SLURM_JOB_ID=<the job>) and
 * appends one JSON line per sample to DIR/<node>.jsonl on the shared file
 * system. The node and process monitors inside sonde read those lines and
 * record the same series as on the local backend, labelled with the node. */
#ifndef SONDE_MONITORS_H
#define SONDE_MONITORS_H

#include "drivers/monitors/procfs.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct monitor_series {
    const char *name, *unit;
    bool summarize; /* gets _mean and _max metrics at the end */
};

/* ---- the node monitor's series ---- */
enum {
    NODE_CPU,
    NODE_MEM,
    NODE_MEM_PCT,
    NODE_NET_RX,
    NODE_NET_TX,
    NODE_DISK_RD,
    NODE_DISK_WR,
    NODE_NSERIES,
};
extern const struct monitor_series node_series[NODE_NSERIES];

struct node_sample {
    int64_t mono;
    struct procfs_cpu cpu;
    struct procfs_mem mem;
    struct procfs_net net;
    struct procfs_disk disk;
};
int node_sample_read(struct node_sample *s);
/* The series' values over the interval from a to b. */
void node_sample_values(const struct node_sample *a, const struct node_sample *b,
                        double v[NODE_NSERIES]);

/* The name series of this machine carry: SLURMD_NODENAME (inside a job, the
 * node's Slurm name), else the host name. */
void monitor_node_name(char *buf, size_t n);

/* ---- the monitor agent ---- */

/* In the environment of the agent's step, so it does not count itself among
 * the job's processes. */
#define MONITOR_AGENT_ENV "SONDE_MONITOR_AGENT=1"
/* The agents' directory under a job's component directory. */
#define MONITOR_AGENT_DIR "monitor"

struct agent_sample {
    int64_t t; /* wall clock, ns */
    char node[64];
    double node_v[NODE_NSERIES];
    bool has_job; /* job_* are set: the agent knew its job */
    double job_cpu_percent, job_rss_bytes, job_nprocs;
};

/* Samples every interval_ns until *stop (or until the job's processes, once
 * seen, have all been gone for 5 samples), appending to DIR/<node>.jsonl.
 * node: SLURMD_NODENAME, else the host name; the job: SLURM_JOB_ID (unset:
 * node series only). 0, or -errno with err set. */
int agent_run(const char *dir, int64_t interval_ns, volatile sig_atomic_t *stop, char *err,
              size_t errlen);
/* The agents' command in the job of the component whose directory is
 * comp_dir, sampling every interval_ns (trial_agent_interval); NULL when 0.
 * exe: sonde's program on the nodes. Caller frees (strv_free). */
char **agent_job_argv(const char *exe, const char *comp_dir, int64_t interval_ns);
/* Where the agents' own messages go: comp_dir/monitor/agent.log. Caller frees. */
char *agent_job_log(const char *comp_dir);
/* One line of an agent's file (without its newline). 0, or -EINVAL. */
int agent_parse_line(const char *line, size_t len, struct agent_sample *out);

/* Follows the agents' files of one or more directories: each poll reads the
 * lines completed since the last (a line still being written waits). */
struct agent_reader;
struct agent_reader *agent_reader_new(void);
void agent_reader_free(struct agent_reader *r);
/* Calls fn for every new sample in DIR/ *.jsonl; a malformed line is skipped
 * (counted in agent_reader_bad). A missing dir is not an error. 0, or what fn
 * returned when it was non-zero. */
int agent_reader_poll(struct agent_reader *r, const char *dir,
                      int (*fn)(const struct agent_sample *s, void *ud), void *ud);
uint64_t agent_reader_bad(const struct agent_reader *r);
/* Whether any sample was read from a file in dir. */
bool agent_reader_has(const struct agent_reader *r, const char *dir);

/* Polls the agents' directory of every batch job of c's trial (but c's own). */
struct comp;
int agent_poll_jobs(struct agent_reader *r, struct comp *c,
                    int (*fn)(struct comp *job, const struct agent_sample *s, void *ud), void *ud);

#endif
