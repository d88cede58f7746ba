/* grafana.c — the Grafana dashboards (one table of panels per family, turned
 * into dashboard JSON with jansson) and the file-provisioning YAML.
 *
 * Queries name only metrics that something really emits: sonde's exporter
 * (the names in core/exporter.h; monitor gauges sonde_<driver>_<series> with
 * the series of drivers/monitors), the node exporter, vLLM and Triton as
 * sonde-sim emits them (src/sim). tests/integration/grafana.sh scrapes all of
 * them and fails on a queried name nobody emits. */
#include "report/grafana.h"

#include "util/util.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_VERSION 39
#define MAX_TARGETS    4
#define DS_NAME_FMT    "sonde Prometheus (%s)" /* the provisioned datasource's name */

/* ---- the panels ------------------------------------------------------------------------------ */

/* Label matchers. SEL: a sonde client or monitor series of the chosen
 * sessions and components; SES: of the chosen sessions only (monitor gauges
 * on the client dashboards, whose $component lists clients); INST: a node
 * exporter series of the chosen instances. RI: the rate window. */
#define SEL  "{session=~\"$session\",component=~\"$component\"}"
#define SES  "{session=~\"$session\"}"
#define INST "{instance=~\"$instance\"}"
#define RI   "[$__rate_interval]"

/* rate(M{...}[RI]) summed by component. */
#define RATE_BY(by, m, sel) "sum by (" by ") (rate(" m sel RI "))"
/* A quantile of a histogram's rate, by component (or model...). */
#define QUANT(q, by, m, sel) "histogram_quantile(" q ", sum by (le, " by ") (rate(" m sel RI ")))"
/* The mean of a histogram (or of a Triton duration per request). */
#define MEAN(by, s, c, sel) RATE_BY(by, s, sel) " / " RATE_BY(by, c, sel)

/* vLLM's inter-token latency under its name since 0.11, else the older one. */
#define ITL_QUANT(q)                                                                               \
    "histogram_quantile(" q                                                                        \
    ", " RATE_BY("le, model_name", "vllm:inter_token_latency_seconds_bucket", "") " or " RATE_BY(  \
        "le, model_name", "vllm:time_per_output_token_seconds_bucket", "") ")"

#define REQS "sonde_client_requests_total"
#define ERRS "sonde_client_errors_total"
#define DUR  "sonde_client_request_duration_seconds"

struct target {
    const char *expr, *legend;
};

struct panel {
    const char *type; /* "stat" or "timeseries" */
    const char *title, *unit, *desc;
    int w, h; /* grid units: 24 across */
    struct target t[MAX_TARGETS];
};

/* clang-format off */
#define STAT(title, unit, expr, desc) {"stat", title, unit, desc, 6, 4, {{expr, ""}}}
#define TS(title, unit, desc, ...) {"timeseries", title, unit, desc, 12, 8, {__VA_ARGS__}}
/* clang-format on */

/* Client panels shared by the inference, storage and vector dashboards. */
#define CLIENT_RATE(what)                                                                          \
    TS(what " and errors per second", "reqps",                                                     \
       "Completed " what " and errors of each client component (sonde's exporter).",               \
       {RATE_BY("component", REQS, SEL), "{{component}}"},                                         \
       {RATE_BY("component", ERRS, SEL), "{{component}} errors"})
#define CLIENT_LATENCY                                                                             \
    TS("Latency (p50, p99, mean)", "s",                                                            \
       "Latency of successful requests, from sonde's client histograms.",                          \
       {QUANT("0.5", "component", DUR "_bucket", SEL), "{{component}} p50"},                       \
       {QUANT("0.99", "component", DUR "_bucket", SEL), "{{component}} p99"},                      \
       {MEAN("component", DUR "_sum", DUR "_count", SEL), "{{component}} mean"})
/* clang-format off */
#define TRIALS                                                                                     \
    {"timeseries", "Trials", "short",                                                              \
     "1 while a trial of the session runs (sonde_trial_info), labelled with the trial.", 24, 5,   \
     {{"sonde_trial_info" SES, "{{session}} {{trial_label}}"}, {"sonde_up" SES, "{{session}} up"}}}
/* clang-format on */

static const struct panel inference_panels[] = {
    STAT("Requests/s", "reqps", "sum(rate(" REQS SEL RI "))", "All selected clients."),
    STAT("Errors/s", "reqps", "sum(rate(" ERRS SEL RI "))", "All selected clients."),
    STAT("Latency p99", "s",
         "histogram_quantile(0.99, sum by (le) (rate(" DUR "_bucket" SEL RI ")))",
         "Over all selected clients."),
    STAT("Output tokens/s", "short", "sum(rate(sonde_client_output_tokens_total" SEL RI "))",
         "Tokens the clients received."),
    CLIENT_RATE("Requests"),
    CLIENT_LATENCY,
    TS("Tokens per second (clients)", "short", "Output and input tokens counted by the clients.",
       {RATE_BY("component", "sonde_client_output_tokens_total", SEL), "{{component}} output"},
       {RATE_BY("component", "sonde_client_input_tokens_total", SEL), "{{component}} input"}),
    TS("vLLM: requests running and waiting", "short", "The engine's scheduler queues (vLLM).",
       {"sum by (model_name) (vllm:num_requests_running)", "{{model_name}} running"},
       {"sum by (model_name) (vllm:num_requests_waiting)", "{{model_name}} waiting"}),
    TS("vLLM: KV-cache usage", "percentunit",
       "Fraction of the KV cache in use (vllm:kv_cache_usage_perc; vllm:gpu_cache_usage_perc "
       "before vLLM 0.9).",
       {"max by (model_name) (vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc)",
        "{{model_name}}"}),
    TS("vLLM: time to first token (p50, p99)", "s", "From arrival to the first token (vLLM).",
       {QUANT("0.5", "model_name", "vllm:time_to_first_token_seconds_bucket", ""),
        "{{model_name}} p50"},
       {QUANT("0.99", "model_name", "vllm:time_to_first_token_seconds_bucket", ""),
        "{{model_name}} p99"}),
    TS("vLLM: inter-token latency (p50, p99)", "s",
       "Between consecutive output tokens (vllm:inter_token_latency_seconds; "
       "vllm:time_per_output_token_seconds before vLLM 0.11).",
       {ITL_QUANT("0.5"), "{{model_name}} p50"}, {ITL_QUANT("0.99"), "{{model_name}} p99"}),
    TS("vLLM: request latency and queue time", "s",
       "End-to-end latency of finished requests (p50, p99) and their mean time in the queue.",
       {QUANT("0.5", "model_name", "vllm:e2e_request_latency_seconds_bucket", ""),
        "{{model_name}} e2e p50"},
       {QUANT("0.99", "model_name", "vllm:e2e_request_latency_seconds_bucket", ""),
        "{{model_name}} e2e p99"},
       {MEAN("model_name", "vllm:request_queue_time_seconds_sum",
             "vllm:request_queue_time_seconds_count", ""),
        "{{model_name}} queue mean"}),
    TS("vLLM: tokens and finished requests per second", "short",
       "Prompt and generated tokens processed, and requests finished (vLLM).",
       {RATE_BY("model_name", "vllm:generation_tokens_total", ""), "{{model_name}} generated"},
       {RATE_BY("model_name", "vllm:prompt_tokens_total", ""), "{{model_name}} prompt"},
       {RATE_BY("model_name", "vllm:request_success_total", ""), "{{model_name}} finished"}),
    TS("Triton: inference requests per second", "reqps",
       "Successful and failed inference requests, per model (Triton).",
       {RATE_BY("model", "nv_inference_request_success", ""), "{{model}} success"},
       {RATE_BY("model", "nv_inference_request_failure", ""), "{{model}} failure"},
       {RATE_BY("model", "nv_inference_count", ""), "{{model}} inferences"},
       {RATE_BY("model", "nv_inference_exec_count", ""), "{{model}} executions"}),
    TS("Triton: time per request (queue, compute, total)", "µs",
       "Triton's cumulative durations over its successful requests: mean microseconds each.",
       {MEAN("model", "nv_inference_queue_duration_us", "nv_inference_request_success", ""),
        "{{model}} queue"},
       {MEAN("model", "nv_inference_compute_infer_duration_us", "nv_inference_request_success", ""),
        "{{model}} compute"},
       {MEAN("model", "nv_inference_request_duration_us", "nv_inference_request_success", ""),
        "{{model}} request"}),
    TRIALS,
};

static const struct panel storage_panels[] = {
    STAT("Operations/s", "ops", "sum(rate(" REQS SEL RI "))", "All selected clients."),
    STAT("Read / received", "binBps", "sum(rate(sonde_client_bytes_in_total" SEL RI "))",
         "Bytes the clients read (received)."),
    STAT("Written / sent", "binBps", "sum(rate(sonde_client_bytes_out_total" SEL RI "))",
         "Bytes the clients wrote (sent)."),
    STAT("Latency p99", "s",
         "histogram_quantile(0.99, sum by (le) (rate(" DUR "_bucket" SEL RI ")))",
         "Over all selected clients."),
    CLIENT_RATE("Operations"),
    CLIENT_LATENCY,
    TS("Client throughput", "binBps", "Bytes read (received) and written (sent) by each client.",
       {RATE_BY("component", "sonde_client_bytes_in_total", SEL), "{{component}} read"},
       {RATE_BY("component", "sonde_client_bytes_out_total", SEL), "{{component}} written"}),
    TS("Node disks (node exporter)", "binBps", "Bytes read and written by the block devices.",
       {RATE_BY("instance", "node_disk_read_bytes_total", INST), "{{instance}} read"},
       {RATE_BY("instance", "node_disk_written_bytes_total", INST), "{{instance}} written"}),
    TS("Node disks (sonde node monitor)", "binBps", "The same, from sonde's node monitor.",
       {"sonde_node_disk_read_bytes_per_s" SES, "{{component}} {{node}} read"},
       {"sonde_node_disk_write_bytes_per_s" SES, "{{component}} {{node}} written"}),
    TS("Disk busy time", "percentunit",
       "Fraction of time each instance's busiest device was doing I/O (node exporter).",
       {"max by (instance) (rate(node_disk_io_time_seconds_total" INST RI "))", "{{instance}}"}),
    TS("Node network", "binBps", "Received and sent bytes (node exporter; S3 and SQL traffic).",
       {RATE_BY("instance", "node_network_receive_bytes_total", INST), "{{instance}} received"},
       {RATE_BY("instance", "node_network_transmit_bytes_total", INST), "{{instance}} sent"}),
    TS("Node network (sonde node monitor)", "binBps", "The same, from sonde's node monitor.",
       {"sonde_node_net_rx_bytes_per_s" SES, "{{component}} {{node}} received"},
       {"sonde_node_net_tx_bytes_per_s" SES, "{{component}} {{node}} sent"}),
    TRIALS,
};

static const struct panel vector_panels[] = {
    STAT("Queries/s", "reqps", "sum(rate(" REQS SEL RI "))", "All selected clients."),
    STAT("Latency p50", "s",
         "histogram_quantile(0.5, sum by (le) (rate(" DUR "_bucket" SEL RI ")))",
         "Over all selected clients."),
    STAT("Latency p99", "s",
         "histogram_quantile(0.99, sum by (le) (rate(" DUR "_bucket" SEL RI ")))",
         "Over all selected clients."),
    STAT("Errors/s", "reqps", "sum(rate(" ERRS SEL RI "))", "All selected clients."),
    CLIENT_RATE("Queries"),
    CLIENT_LATENCY,
    TS("Node CPU busy (node exporter)", "percentunit",
       "Fraction of CPU time not idle, per instance: the vector search's compute.",
       {"1 - avg by (instance) "
        "(rate(node_cpu_seconds_total{mode=\"idle\",instance=~\"$instance\"}" RI "))",
        "{{instance}}"}),
    TS("Node CPU and memory (sonde node monitor)", "percent", "From sonde's node monitor.",
       {"sonde_node_cpu_percent" SES, "{{component}} {{node}} CPU"},
       {"sonde_node_mem_used_percent" SES, "{{component}} {{node}} memory"}),
    TS("Watched processes: CPU", "percent",
       "CPU of the processes sonde's process monitor watches (e.g. the vector database).",
       {"sonde_process_cpu_percent" SES, "{{exported_component}} ({{component}})"}),
    TS("Watched processes: memory", "bytes", "Resident memory of the watched processes.",
       {"sonde_process_rss_bytes" SES, "{{exported_component}} ({{component}})"}),
    TRIALS,
};

static const struct panel node_panels[] = {
    STAT("CPU busy", "percentunit",
         "1 - avg(rate(node_cpu_seconds_total{mode=\"idle\",instance=~\"$instance\"}" RI "))",
         "Selected instances (node exporter)."),
    STAT("Memory used", "percentunit",
         "1 - sum(node_memory_MemAvailable_bytes" INST ") / sum(node_memory_MemTotal_bytes" INST
         ")",
         "Selected instances (node exporter)."),
    STAT("GPU utilisation", "percent", "avg(sonde_gpu_utilization_percent" SEL ")",
         "Mean over the GPUs of sonde's gpu monitor."),
    STAT("GPU power", "watt", "sum(sonde_gpu_power_w" SEL ")", "All GPUs of sonde's gpu monitor."),
    TS("CPU busy", "percent", "Node exporter (per instance) and sonde's node monitor.",
       {"100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\",instance=~\"$"
        "instance\"}" RI ")))",
        "{{instance}}"},
       {"sonde_node_cpu_percent" SEL, "{{component}} {{node}} (sonde)"}),
    TS("Load average", "short", "1-minute load average (node exporter).",
       {"node_load1" INST, "{{instance}}"}),
    TS("Memory used", "bytes", "Total minus available memory (node exporter), and sonde's view.",
       {"node_memory_MemTotal_bytes" INST " - node_memory_MemAvailable_bytes" INST, "{{instance}}"},
       {"sonde_node_mem_used_bytes" SEL, "{{component}} {{node}} (sonde)"}),
    TS("Network", "binBps", "Received and sent bytes (node exporter and sonde's node monitor).",
       {RATE_BY("instance", "node_network_receive_bytes_total", INST), "{{instance}} received"},
       {RATE_BY("instance", "node_network_transmit_bytes_total", INST), "{{instance}} sent"},
       {"sonde_node_net_rx_bytes_per_s" SEL, "{{component}} {{node}} received (sonde)"},
       {"sonde_node_net_tx_bytes_per_s" SEL, "{{component}} {{node}} sent (sonde)"}),
    TS("Disks", "binBps", "Read and written bytes (node exporter and sonde's node monitor).",
       {RATE_BY("instance", "node_disk_read_bytes_total", INST), "{{instance}} read"},
       {RATE_BY("instance", "node_disk_written_bytes_total", INST), "{{instance}} written"},
       {"sonde_node_disk_read_bytes_per_s" SEL, "{{component}} {{node}} read (sonde)"},
       {"sonde_node_disk_write_bytes_per_s" SEL, "{{component}} {{node}} written (sonde)"}),
    TS("GPU utilisation", "percent", "SM and memory-controller utilisation (sonde's gpu monitor).",
       {"sonde_gpu_utilization_percent" SEL, "{{component}} {{node}} {{gpu}}"},
       {"sonde_gpu_memory_utilization_percent" SEL, "{{component}} {{node}} {{gpu}} memory"}),
    TS("GPU memory", "bytes", "Used and total GPU memory.",
       {"sonde_gpu_memory_used_bytes" SEL, "{{component}} {{node}} {{gpu}} used"},
       {"sonde_gpu_memory_total_bytes" SEL, "{{component}} {{node}} {{gpu}} total"}),
    TS("GPU power", "watt", "Power draw of each GPU.",
       {"sonde_gpu_power_w" SEL, "{{component}} {{node}} {{gpu}}"}),
    TS("GPU energy", "joule", "Energy each GPU used since the monitor started.",
       {"sonde_gpu_energy_j" SEL, "{{component}} {{node}} {{gpu}}"}),
    TS("GPU temperature", "celsius", "Temperature of each GPU.",
       {"sonde_gpu_temperature_c" SEL, "{{component}} {{node}} {{gpu}}"}),
    TS("GPU clocks", "rotmhz", "SM and memory clocks.",
       {"sonde_gpu_sm_clock_mhz" SEL, "{{component}} {{node}} {{gpu}} SM"},
       {"sonde_gpu_mem_clock_mhz" SEL, "{{component}} {{node}} {{gpu}} memory"}),
    TS("Watched processes: CPU", "percent", "CPU of the processes sonde's process monitor watches.",
       {"sonde_process_cpu_percent" SEL, "{{exported_component}} ({{component}})"}),
    TS("Watched processes: memory", "bytes", "Resident memory of the watched processes.",
       {"sonde_process_rss_bytes" SEL, "{{exported_component}} ({{component}})"}),
    TS("sonde monitors: CPU used", "short",
       "CPU seconds per second each of sonde's monitors used (its own overhead, in cores).",
       {"rate(sonde_monitor_cpu_seconds_total" SEL RI ")", "{{component}}"}),
    TRIALS,
};

struct family {
    const char *name, *title, *desc;
    const char *component_query; /* what $component lists */
    bool instances;              /* node exporter panels: a $instance variable */
    const struct panel *panels;
    size_t n;
};

#define PANELS(a) a, sizeof(a) / sizeof(a[0])

static const struct family families[GRAFANA_NFAMILIES] = {
    [GRAFANA_INFERENCE] = {"inference", "sonde: inference",
                           "Inference clients (sonde's exporter) and the engines they load: vLLM "
                           "and Triton metrics as the engines export them.",
                           "label_values(" REQS SES ", component)", false,
                           PANELS(inference_panels)},
    [GRAFANA_STORAGE] = {"storage", "sonde: storage",
                         "File-system, S3 and SQL clients (sonde's exporter) and the nodes' disks "
                         "and network.",
                         "label_values(" REQS SES ", component)", true, PANELS(storage_panels)},
    [GRAFANA_VECTOR] = {"vector", "sonde: vector search",
                        "Vector-database and FAISS clients (sonde's exporter) and the CPU and "
                        "memory they use.",
                        "label_values(" REQS SES ", component)", true, PANELS(vector_panels)},
    [GRAFANA_NODE] = {"node", "sonde: nodes and GPUs",
                      "Nodes (node exporter and sonde's node monitor), GPUs (sonde's gpu monitor), "
                      "watched processes and sonde's own monitoring overhead.",
                      "label_values(sonde_monitor_cpu_seconds_total" SES ", component)", true,
                      PANELS(node_panels)},
};

/* ---- families and options -------------------------------------------------------------------- */

const char *grafana_family_name(enum grafana_family f)
{
    return f < GRAFANA_NFAMILIES ? families[f].name : "?";
}

int grafana_family_parse(const char *s, unsigned *set)
{
    if (!strcmp(s, "all")) {
        *set |= GRAFANA_ALL;
        return 0;
    }
    for (int f = 0; f < GRAFANA_NFAMILIES; f++)
        if (!strcmp(s, families[f].name)) {
            *set |= 1u << f;
            return 0;
        }
    return -EINVAL;
}

int grafana_family_of_driver(const char *driver)
{
    static const struct {
        const char *driver;
        enum grafana_family f;
    } map[] = {
        {"openai", GRAFANA_INFERENCE}, {"kserve", GRAFANA_INFERENCE}, {"fileio", GRAFANA_STORAGE},
        {"s3", GRAFANA_STORAGE},       {"sql", GRAFANA_STORAGE},      {"faiss", GRAFANA_VECTOR},
        {"chroma", GRAFANA_VECTOR},    {"node", GRAFANA_NODE},        {"gpu", GRAFANA_NODE},
        {"process", GRAFANA_NODE},
    };
    for (size_t i = 0; driver && i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(driver, map[i].driver))
            return (int)map[i].f;
    return -1;
}

const char *grafana_check_uid(const char *uid)
{
    size_t n = strlen(uid);
    if (n == 0 || n > 40)
        return "a datasource uid has 1 to 40 characters";
    for (const char *p = uid; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return "a datasource uid holds only A-Z a-z 0-9 - _";
    return NULL;
}

const char *grafana_check_url(const char *url)
{
    if (!str_startswith(url, "http://") && !str_startswith(url, "https://"))
        return "expected an http:// or https:// URL, e.g. http://prometheus.example:9090";
    const char *host = strstr(url, "://") + 3;
    if (!*host || *host == '/')
        return "the URL has no host";
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '"' || *p == '\\')
            return "a URL has no spaces, quotes, backslashes or control characters";
    return NULL;
}

/* ---- dashboard JSON -------------------------------------------------------------------------- */

static json_t *ds_ref(void)
{
    return json_pack("{s:s, s:s}", "type", "prometheus", "uid", "${datasource}");
}

/* A query variable (multi-value, "All" = any value). */
static json_t *query_var(const char *name, const char *label, const char *query)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:{s:s, s:s}, s:i, s:b, s:b, s:s, s:{s:s, s:s}, "
                     "s:i, s:i, s:s, s:[]}",
                     "name", name, "label", label, "type", "query", "datasource", ds_ref(),
                     "definition", query, "query", "query", query, "refId",
                     "PrometheusVariableQueryEditor-VariableQuery", "refresh", 2, "includeAll", 1,
                     "multi", 1, "allValue", ".*", "current", "text", "All", "value", "$__all",
                     "sort", 1, "hide", 0, "regex", "", "options");
}

static json_t *templating(const struct family *fam, const char *uid)
{
    json_t *list = json_array();
    char name[128];
    snprintf(name, sizeof(name), DS_NAME_FMT, uid);
    json_array_append_new(list,
                          json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:i, s:i, s:s, s:[]}",
                                    "name", "datasource", "label", "Data source", "type",
                                    "datasource", "query", "prometheus", "current", "text", name,
                                    "value", uid, "refresh", 1, "hide", 0, "regex", "", "options"));
    json_array_append_new(list, query_var("session", "Session", "label_values(sonde_up, session)"));
    json_array_append_new(list, query_var("component", "Component", fam->component_query));
    if (fam->instances)
        json_array_append_new(
            list, query_var("instance", "Instance", "label_values(node_uname_info, instance)"));
    return json_pack("{s:o}", "list", list);
}

static json_t *panel_options(const struct panel *p)
{
    if (!strcmp(p->type, "stat"))
        return json_pack("{s:{s:[s], s:s, s:b}, s:s, s:s, s:s, s:s, s:s}", "reduceOptions", "calcs",
                         "lastNotNull", "fields", "", "values", 0, "colorMode", "value",
                         "graphMode", "area", "textMode", "auto", "orientation", "auto",
                         "justifyMode", "auto");
    return json_pack("{s:{s:s, s:s, s:b}, s:{s:s, s:s}}", "legend", "displayMode", "list",
                     "placement", "bottom", "showLegend", 1, "tooltip", "mode", "multi", "sort",
                     "none");
}

static json_t *panel_json(const struct panel *p, int id, int x, int y)
{
    json_t *targets = json_array();
    for (int i = 0; i < MAX_TARGETS && p->t[i].expr; i++)
        json_array_append_new(targets,
                              json_pack("{s:o, s:s, s:s, s:s, s:b}", "datasource", ds_ref(), "expr",
                                        p->t[i].expr, "refId", (char[]){(char)('A' + i), '\0'},
                                        "legendFormat", p->t[i].legend, "range", 1));
    json_t *defaults = json_pack("{s:s}", "unit", p->unit);
    if (!strcmp(p->type, "timeseries"))
        json_object_set_new(defaults, "custom",
                            json_pack("{s:s, s:i, s:i, s:b}", "drawStyle", "line", "lineWidth", 1,
                                      "fillOpacity", 10, "spanNulls", 0));
    return json_pack("{s:i, s:s, s:s, s:s, s:o, s:{s:i, s:i, s:i, s:i}, s:{s:o, s:[]}, s:o, s:o}",
                     "id", id, "type", p->type, "title", p->title, "description", p->desc,
                     "datasource", ds_ref(), "gridPos", "h", p->h, "w", p->w, "x", x, "y", y,
                     "fieldConfig", "defaults", defaults, "overrides", "options", panel_options(p),
                     "targets", targets);
}

/* The panels, laid out left to right in rows 24 units wide. */
static json_t *panels_json(const struct family *fam)
{
    json_t *arr = json_array();
    int x = 0, y = 0, row_h = 0;
    for (size_t i = 0; i < fam->n; i++) {
        const struct panel *p = &fam->panels[i];
        if (x + p->w > 24) {
            x = 0;
            y += row_h;
            row_h = 0;
        }
        json_array_append_new(arr, panel_json(p, (int)i + 1, x, y));
        x += p->w;
        row_h = p->h > row_h ? p->h : row_h;
    }
    return arr;
}

json_t *grafana_dashboard(enum grafana_family f, const char *datasource_uid)
{
    const struct family *fam = &families[f];
    char uid[64];
    snprintf(uid, sizeof(uid), "sonde-%s", fam->name);
    json_t *annotations = json_pack(
        "{s:[{s:i, s:{s:s, s:s}, s:b, s:b, s:s, s:s, s:s}]}", "list", "builtIn", 1, "datasource",
        "type", "grafana", "uid", "-- Grafana --", "enable", 1, "hide", 1, "iconColor",
        "rgba(0, 211, 255, 1)", "name", "Annotations & Alerts", "type", "dashboard");
    return json_pack("{s:n, s:s, s:s, s:s, s:[s, s], s:i, s:i, s:b, s:i, s:s, s:s, "
                     "s:{s:s, s:s}, s:o, s:o, s:o}",
                     "id", "uid", uid, "title", fam->title, "description", fam->desc, "tags",
                     "sonde", fam->name, "schemaVersion", SCHEMA_VERSION, "version", 1, "editable",
                     1, "graphTooltip", 1, "refresh", "10s", "timezone", "browser", "time", "from",
                     "now-1h", "to", "now", "templating", templating(fam, datasource_uid),
                     "annotations", annotations, "panels", panels_json(fam));
}

/* ---- files ----------------------------------------------------------------------------------- */

static int write_text(const char *path, const char *text, char ***written, char *err, size_t errlen)
{
    int r = write_file_atomic(path, text, strlen(text));
    if (r < 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(-r));
        return r;
    }
    if (written)
        strv_push(written, path);
    return 0;
}

static int make_dir(const char *path, char *err, size_t errlen)
{
    int r = mkdir_p(path, 0755);
    if (r < 0)
        snprintf(err, errlen, "cannot create the directory %s: %s", path, strerror(-r));
    return r;
}

static int write_dashboard(const char *dir, enum grafana_family f, const char *uid, char ***written,
                           char *err, size_t errlen)
{
    json_t *d = grafana_dashboard(f, uid);
    char *text = d ? json_dumps(d, JSON_INDENT(2)) : NULL;
    json_decref(d);
    if (!text) {
        snprintf(err, errlen, "cannot render the %s dashboard", grafana_family_name(f));
        return -ENOMEM;
    }
    char *name = xasprintf("sonde-%s.json", grafana_family_name(f));
    char *path = path_join(dir, name);
    struct sbuf b = {0};
    sbuf_printf(&b, "%s\n", text);
    int r = write_text(path, b.s, written, err, errlen);
    sbuf_free(&b);
    free(path);
    free(name);
    free(text);
    return r;
}

/* The two provisioning files. Values are double-quoted YAML scalars: the
 * url and uid were checked to hold no quote or backslash, and dashboards
 * (an absolute path) is escaped here. */
static int write_provisioning(const char *dir, const char *dashboards, const char *url,
                              const char *uid, char ***written, char *err, size_t errlen)
{
    struct sbuf q = {0}, b = {0};
    for (const char *p = dashboards; *p; p++)
        if (*p == '"' || *p == '\\')
            sbuf_printf(&q, "\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            sbuf_printf(&q, "\\x%02x", (unsigned char)*p);
        else
            sbuf_add(&q, p, 1);
    char *ds_dir = path_join(dir, "provisioning/datasources");
    char *db_dir = path_join(dir, "provisioning/dashboards");
    char *ds = path_join(ds_dir, "sonde.yaml"), *db = path_join(db_dir, "sonde.yaml");
    int r = make_dir(ds_dir, err, errlen);
    if (r == 0)
        r = make_dir(db_dir, err, errlen);
    if (r < 0)
        goto out;
    sbuf_printf(&b,
                "# Written by `sonde grafana export`: the Prometheus that scrapes sonde's\n"
                "# exporter, the node exporters and the services. The dashboards refer to it\n"
                "# by its uid; point url at the site's Prometheus.\n"
                "apiVersion: 1\n"
                "datasources:\n"
                "  - name: \"" DS_NAME_FMT "\"\n"
                "    type: prometheus\n"
                "    uid: \"%s\"\n"
                "    access: proxy\n"
                "    url: \"%s\"\n"
                "    isDefault: false\n"
                "    editable: true\n",
                uid, uid, url);
    r = write_text(ds, b.s, written, err, errlen);
    if (r < 0)
        goto out;
    b.len = 0;
    sbuf_printf(&b,
                "# Written by `sonde grafana export`: Grafana loads the sonde dashboards from\n"
                "# path (the files sonde-*.json) into the folder \"sonde\".\n"
                "apiVersion: 1\n"
                "providers:\n"
                "  - name: \"sonde\"\n"
                "    orgId: 1\n"
                "    folder: \"sonde\"\n"
                "    type: file\n"
                "    disableDeletion: false\n"
                "    allowUiUpdates: true\n"
                "    updateIntervalSeconds: 30\n"
                "    options:\n"
                "      path: \"%s\"\n"
                "      foldersFromFilesStructure: false\n",
                q.s);
    r = write_text(db, b.s, written, err, errlen);
out:
    sbuf_free(&q);
    sbuf_free(&b);
    free(ds);
    free(db);
    free(ds_dir);
    free(db_dir);
    return r;
}

int grafana_export(const char *dir, unsigned set, const char *url, const char *datasource_uid,
                   char ***written, char *err, size_t errlen)
{
    const char *why = grafana_check_uid(datasource_uid);
    if (!why)
        why = grafana_check_url(url);
    if (why || (set & GRAFANA_ALL) == 0) {
        snprintf(err, errlen, "%s", why ? why : "no dashboard family to export");
        return -EINVAL;
    }
    char *dash = path_join(dir, "dashboards");
    char abs[PATH_MAX];
    int r = make_dir(dash, err, errlen);
    if (r == 0 && !realpath(dash, abs)) {
        r = -errno;
        snprintf(err, errlen, "cannot resolve %s: %s", dash, strerror(errno));
    }
    for (int f = 0; r == 0 && f < GRAFANA_NFAMILIES; f++)
        if (set & (1u << f))
            r = write_dashboard(dash, (enum grafana_family)f, datasource_uid, written, err, errlen);
    if (r == 0)
        r = write_provisioning(dir, abs, url, datasource_uid, written, err, errlen);
    free(dash);
    return r;
}
