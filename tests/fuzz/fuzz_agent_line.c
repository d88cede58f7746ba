/* fuzz_agent_line.c — libFuzzer target: any bytes as one line of a monitor
 * agent's file (drivers/monitors/monitors.h). What parses has a node name
 * that fits, a positive time and finite values. */
#include "drivers/monitors/monitors.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_sample s;
    if (agent_parse_line((const char *)data, size, &s) < 0)
        return 0;
    size_t n = strnlen(s.node, sizeof(s.node));
    if (n == 0 || n >= sizeof(s.node) || s.t <= 0)
        abort();
    for (int i = 0; i < NODE_NSERIES; i++)
        if (!isfinite(s.node_v[i]))
            abort();
    if (!isfinite(s.job_cpu_percent) || !isfinite(s.job_rss_bytes) || !isfinite(s.job_nprocs))
        abort();
    return 0;
}
