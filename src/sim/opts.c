/* opts.c — sonde-sim command line, delay distributions, RNG and stall windows. */
#include "sim/sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util/units.h"
#include "util/util.h"

#define MAX_THREADS 256
#define MAX_BODY    ((int64_t)1 << 30)
#define MAX_SSE     1000000

static const char usage[] =
    "usage: sonde-sim [options]\n"
    "  --host ADDR            IPv4 address to listen on (127.0.0.1)\n"
    "  --port N               port, 0 for an ephemeral one (0)\n"
    "  --threads N            worker threads, one epoll loop each (1)\n"
    "  --delay SPEC           10ms | uniform:5ms,15ms | exp:10ms | lognormal:10ms,0.5 (0ms)\n"
    "  --size BYTES           response body size, e.g. 2, 4KiB (2)\n"
    "  --status N             response status code (200)\n"
    "  --stall DUR            pause all responses for DUR ...\n"
    "  --stall-every DUR      ... every DUR (first stall at DUR after start)\n"
    "  --error-rate F         fraction of requests that get an error (0)\n"
    "  --error-kind KIND      status:N | reset | malformed | hang (status:503); with\n"
    "                         --openai also truncate | badjson | midstream | stall\n"
    "  --seed N               RNG seed (1)\n"
    "  --sse N                answer with N server-sent events, then [DONE]\n"
    "  --sse-first DUR        delay before the first event (0ms)\n"
    "  --sse-gap DUR          delay between events (0ms)\n"
    "  --max-requests N       exit after N responses (0: never)\n"
    "  --spin DUR             busy-poll this long before each deadline (400us)\n"
    "  --kserve               simulate a KServe v2 / Triton inference server\n"
    "  --kserve-model SPEC    --kserve: a model, NAME[@VERSION]:INPUT=DTYPE[DIMS][,...]\n"
    "                         e.g. simple:INPUT0=FP32[-1,4] (repeatable)\n"
    "  --kserve-unready NAME  --kserve: that model answers not ready (repeatable)\n"
    "  --kserve-item-delay DUR --kserve: extra infer delay per batch element (0ms)\n"
    "  --openai               simulate an OpenAI-compatible inference server\n"
    "  --ttft SPEC            --openai: time to first token, a --delay SPEC (0ms)\n"
    "  --itl SPEC             --openai: delay between output tokens, a --delay SPEC (0ms)\n"
    "  --tokens-per-chunk N   --openai: tokens per streamed chunk (1)\n"
    "  --output-tokens N      --openai: output length without max_tokens (16)\n"
    "  --max-concurrency N    --openai: requests generating at once (0: unlimited)\n"
    "  --model NAME           --openai: the model name (sim-model)\n"
    "  --kv-cache-tokens N    --openai: KV-cache capacity in tokens for the KV-cache usage\n"
    "                         metric (0: running / --max-concurrency)\n"
    "  --help, --version\n";

static int fail(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "sonde-sim: invalid %s '%s': %s\n", opt, val, why);
    return -EINVAL;
}

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_dur(const char *s, int64_t *out)
{
    int64_t v;
    if (parse_duration_ns(s, &v) < 0 || v < 0)
        return -EINVAL;
    *out = v;
    return 0;
}

/* "A,B" with A a duration and B a duration (uniform) or a number (lognormal). */
static int parse_pair(const char *s, bool second_is_dur, struct sim_delay *d)
{
    const char *comma = strchr(s, ',');
    if (!comma)
        return -EINVAL;
    char *first = xstrndup(s, (size_t)(comma - s));
    int r = parse_dur(first, &d->a_ns);
    free(first);
    if (r < 0)
        return r;
    if (second_is_dur)
        return parse_dur(comma + 1, &d->b_ns) < 0 || d->b_ns < d->a_ns ? -EINVAL : 0;
    char *end;
    errno = 0;
    d->sigma = strtod(comma + 1, &end);
    if (errno || end == comma + 1 || *end || !(d->sigma >= 0 && d->sigma <= 10))
        return -EINVAL;
    return 0;
}

int sim_parse_delay(const char *spec, struct sim_delay *out)
{
    struct sim_delay d = {0};
    int r;
    if (str_startswith(spec, "uniform:")) {
        d.kind = DIST_UNIFORM;
        r = parse_pair(spec + 8, true, &d);
    } else if (str_startswith(spec, "exp:")) {
        d.kind = DIST_EXP;
        r = parse_dur(spec + 4, &d.a_ns);
    } else if (str_startswith(spec, "lognormal:")) {
        d.kind = DIST_LOGNORMAL;
        r = parse_pair(spec + 10, false, &d);
    } else {
        d.kind = DIST_FIXED;
        r = parse_dur(spec, &d.a_ns);
    }
    if (r < 0)
        return -EINVAL;
    *out = d;
    return 0;
}

static int parse_error_kind(const char *s, struct sim_config *cfg)
{
    int64_t v;
    if (!strcmp(s, "reset"))
        cfg->error_kind = ERR_RESET;
    else if (!strcmp(s, "malformed"))
        cfg->error_kind = ERR_MALFORMED;
    else if (!strcmp(s, "hang"))
        cfg->error_kind = ERR_HANG;
    else if (!strcmp(s, "truncate"))
        cfg->error_kind = ERR_TRUNCATE;
    else if (!strcmp(s, "badjson"))
        cfg->error_kind = ERR_BADJSON;
    else if (!strcmp(s, "midstream"))
        cfg->error_kind = ERR_MIDSTREAM;
    else if (!strcmp(s, "stall"))
        cfg->error_kind = ERR_STALL;
    else if (str_startswith(s, "status:") && parse_int(s + 7, 100, 999, &v) == 0) {
        cfg->error_kind = ERR_STATUS;
        cfg->error_status = (int)v;
    } else
        return -EINVAL;
    return 0;
}

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_THREADS,
    OPT_DELAY,
    OPT_SIZE,
    OPT_STATUS,
    OPT_STALL,
    OPT_STALL_EVERY,
    OPT_ERROR_RATE,
    OPT_ERROR_KIND,
    OPT_SEED,
    OPT_SSE,
    OPT_SSE_FIRST,
    OPT_SSE_GAP,
    OPT_MAX_REQUESTS,
    OPT_SPIN,
    OPT_KSERVE,
    OPT_KS_MODEL,
    OPT_KS_UNREADY,
    OPT_KS_ITEM_DELAY,
    OPT_OPENAI,
    OPT_TTFT,
    OPT_ITL,
    OPT_TPC,
    OPT_OUTPUT_TOKENS,
    OPT_MAX_CONC,
    OPT_MODEL,
    OPT_KV_TOKENS,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option long_opts[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"delay", required_argument, NULL, OPT_DELAY},
    {"size", required_argument, NULL, OPT_SIZE},
    {"status", required_argument, NULL, OPT_STATUS},
    {"stall", required_argument, NULL, OPT_STALL},
    {"stall-every", required_argument, NULL, OPT_STALL_EVERY},
    {"error-rate", required_argument, NULL, OPT_ERROR_RATE},
    {"error-kind", required_argument, NULL, OPT_ERROR_KIND},
    {"seed", required_argument, NULL, OPT_SEED},
    {"sse", required_argument, NULL, OPT_SSE},
    {"sse-first", required_argument, NULL, OPT_SSE_FIRST},
    {"sse-gap", required_argument, NULL, OPT_SSE_GAP},
    {"max-requests", required_argument, NULL, OPT_MAX_REQUESTS},
    {"spin", required_argument, NULL, OPT_SPIN},
    {"kserve", no_argument, NULL, OPT_KSERVE},
    {"kserve-model", required_argument, NULL, OPT_KS_MODEL},
    {"kserve-unready", required_argument, NULL, OPT_KS_UNREADY},
    {"kserve-item-delay", required_argument, NULL, OPT_KS_ITEM_DELAY},
    {"openai", no_argument, NULL, OPT_OPENAI},
    {"ttft", required_argument, NULL, OPT_TTFT},
    {"itl", required_argument, NULL, OPT_ITL},
    {"tokens-per-chunk", required_argument, NULL, OPT_TPC},
    {"output-tokens", required_argument, NULL, OPT_OUTPUT_TOKENS},
    {"max-concurrency", required_argument, NULL, OPT_MAX_CONC},
    {"model", required_argument, NULL, OPT_MODEL},
    {"kv-cache-tokens", required_argument, NULL, OPT_KV_TOKENS},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int parse_rate(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v <= 1))
        return -EINVAL;
    *out = v;
    return 0;
}

/* A model name goes into JSON unescaped: no quotes, backslashes or controls. */
static bool model_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 256)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '"' || *s == '\\')
            return false;
    return true;
}

/* Applies one option; returns 0 or -EINVAL (message printed). */
static int apply(int opt, const char *arg, struct sim_config *c)
{
    int64_t v;
    struct in_addr addr;
    const char *name = NULL;
    for (const struct option *o = long_opts; o->name; o++)
        if (o->val == opt)
            name = o->name;
    switch (opt) {
    case OPT_HOST:
        if (inet_pton(AF_INET, arg, &addr) != 1)
            return fail(name, arg, "expected an IPv4 address such as 127.0.0.1");
        free(c->host);
        c->host = xstrdup(arg);
        return 0;
    case OPT_PORT:
        return parse_int(arg, 0, 65535, &v) ? fail(name, arg, "expected 0..65535")
                                            : (c->port = (int)v, 0);
    case OPT_THREADS:
        return parse_int(arg, 1, MAX_THREADS, &v) ? fail(name, arg, "expected 1..256")
                                                  : (c->threads = (int)v, 0);
    case OPT_DELAY:
        return sim_parse_delay(arg, &c->delay) ? fail(name, arg, "see --help for the forms") : 0;
    case OPT_SIZE:
        return parse_size_bytes(arg, &v) || v < 0 || v > MAX_BODY
                   ? fail(name, arg, "expected a size up to 1GiB")
                   : (c->size = v, 0);
    case OPT_STATUS:
        return parse_int(arg, 100, 999, &v) ? fail(name, arg, "expected 100..999")
                                            : (c->status = (int)v, 0);
    case OPT_STALL:
        return parse_dur(arg, &c->stall_ns) ? fail(name, arg, "expected a duration") : 0;
    case OPT_STALL_EVERY:
        return parse_dur(arg, &c->stall_every_ns) ? fail(name, arg, "expected a duration") : 0;
    case OPT_ERROR_RATE:
        return parse_rate(arg, &c->error_rate) ? fail(name, arg, "expected 0..1") : 0;
    case OPT_ERROR_KIND:
        return parse_error_kind(arg, c)
                   ? fail(name, arg,
                          "expected status:N, reset, malformed, hang, truncate, badjson, "
                          "midstream or stall")
                   : 0;
    case OPT_SEED:
        return parse_int(arg, 0, INT64_MAX, &v) ? fail(name, arg, "expected an integer >= 0")
                                                : (c->seed = (uint64_t)v, 0);
    case OPT_SSE:
        return parse_int(arg, 1, MAX_SSE, &v) ? fail(name, arg, "expected 1..1000000")
                                              : (c->sse_events = (int)v, 0);
    case OPT_SSE_FIRST:
        return parse_dur(arg, &c->sse_first_ns) ? fail(name, arg, "expected a duration") : 0;
    case OPT_SSE_GAP:
        return parse_dur(arg, &c->sse_gap_ns) ? fail(name, arg, "expected a duration") : 0;
    case OPT_SPIN:
        return parse_dur(arg, &c->spin_ns) || c->spin_ns > 10000000
                   ? fail(name, arg, "expected a duration up to 10ms")
                   : 0;
    case OPT_KSERVE:
        c->kserve = true;
        return 0;
    case OPT_KS_MODEL: {
        const char *why = ks_add_model(c, arg);
        return why ? fail(name, arg, why) : 0;
    }
    case OPT_KS_UNREADY:
        strv_push(&c->ks_unready, arg);
        return 0;
    case OPT_KS_ITEM_DELAY:
        return parse_dur(arg, &c->ks_item_ns) ? fail(name, arg, "expected a duration") : 0;
    case OPT_OPENAI:
        c->openai = true;
        return 0;
    case OPT_TTFT:
        return sim_parse_delay(arg, &c->ttft) ? fail(name, arg, "see --help for the forms") : 0;
    case OPT_ITL:
        return sim_parse_delay(arg, &c->itl) ? fail(name, arg, "see --help for the forms") : 0;
    case OPT_TPC:
        return parse_int(arg, 1, OAI_MAX_TOKENS, &v) ? fail(name, arg, "expected 1..1000000")
                                                     : (c->tokens_per_chunk = (int)v, 0);
    case OPT_OUTPUT_TOKENS:
        return parse_int(arg, 1, OAI_MAX_TOKENS, &v) ? fail(name, arg, "expected 1..1000000")
                                                     : (c->output_tokens = v, 0);
    case OPT_KV_TOKENS:
        return parse_int(arg, 0, INT64_MAX / 4, &v) ? fail(name, arg, "expected an integer >= 0")
                                                    : (c->kv_tokens = v, 0);
    case OPT_MAX_CONC:
        return parse_int(arg, 0, 1000000, &v) ? fail(name, arg, "expected 0..1000000")
                                              : (c->max_concurrency = (int)v, 0);
    case OPT_MODEL:
        if (!model_ok(arg))
            return fail(name, arg,
                        "expected 1-256 characters without quotes, backslashes, controls");
        free(c->model);
        c->model = xstrdup(arg);
        return 0;
    case OPT_MAX_REQUESTS:
        return parse_int(arg, 0, INT64_MAX, &v) ? fail(name, arg, "expected an integer >= 0")
                                                : (c->max_requests = v, 0);
    }
    fprintf(stderr, "%s", usage);
    return -EINVAL;
}

static void set_defaults(struct sim_config *c)
{
    memset(c, 0, sizeof(*c));
    c->host = xstrdup("127.0.0.1");
    c->threads = 1;
    c->size = 2;
    c->status = 200;
    c->error_kind = ERR_STATUS;
    c->error_status = 503;
    c->seed = 1;
    c->spin_ns = 400 * 1000;
    c->stop_fd = -1;
    c->tokens_per_chunk = 1;
    c->output_tokens = 16;
    c->model = xstrdup("sim-model");
    c->oai_wake_fd = -1;
}

static int check_combination(const struct sim_config *c)
{
    if ((c->stall_ns > 0) != (c->stall_every_ns > 0)) {
        fprintf(stderr, "sonde-sim: --stall and --stall-every go together\n");
        return -EINVAL;
    }
    if (c->stall_ns > 0 && c->stall_ns >= c->stall_every_ns) {
        fprintf(stderr, "sonde-sim: --stall must be shorter than --stall-every\n");
        return -EINVAL;
    }
    if (c->kserve && (c->openai || c->sse_events > 0)) {
        fprintf(stderr, "sonde-sim: --kserve cannot be combined with --openai or --sse\n");
        return -EINVAL;
    }
    if (c->openai && c->sse_events > 0) {
        fprintf(stderr, "sonde-sim: --openai and --sse cannot be combined\n");
        return -EINVAL;
    }
    if (c->kv_tokens > 0 && !c->openai) {
        fprintf(stderr, "sonde-sim: --kv-cache-tokens needs --openai\n");
        return -EINVAL;
    }
    if (c->error_kind >= ERR_TRUNCATE && !c->openai) {
        fprintf(stderr, "sonde-sim: --error-kind truncate, badjson, midstream and stall need "
                        "--openai\n");
        return -EINVAL;
    }
    return 0;
}

int sim_parse_args(int argc, char **argv, struct sim_config *cfg)
{
    set_defaults(cfg);
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (opt == OPT_HELP || opt == OPT_VERSION) {
            printf(opt == OPT_HELP ? usage : "sonde-sim " SONDE_VERSION "\n");
            return 1;
        }
        if (opt == '?') {
            fprintf(stderr, "sonde-sim: unknown or incomplete option '%s'\n%s", argv[optind - 1],
                    usage);
            return -EINVAL;
        }
        if (apply(opt, optarg, cfg) < 0)
            return -EINVAL;
    }
    if (optind < argc) {
        fprintf(stderr, "sonde-sim: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    return check_combination(cfg) < 0 ? -EINVAL : ks_config_check(cfg);
}

void sim_config_free(struct sim_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->host);
    free(cfg->body);
    free(cfg->model);
    cfg->host = cfg->body = cfg->model = NULL;
    ks_config_free(cfg);
}

/* Draws are capped at one hour so that a heavy tail cannot overflow. */
static int64_t clamp_ns(double ns)
{
    const double cap = 3600e9;
    return ns <= 0 ? 0 : ns >= cap ? (int64_t)cap : (int64_t)ns;
}

int64_t sim_delay_draw(const struct sim_delay *d, struct rng *r)
{
    double u, v;
    switch (d->kind) {
    case DIST_UNIFORM:
        return d->a_ns + (int64_t)(rng_unit(r) * (double)(d->b_ns - d->a_ns));
    case DIST_EXP:
        return clamp_ns(-(double)d->a_ns * log1p(-rng_unit(r)));
    case DIST_LOGNORMAL:
        u = 1.0 - rng_unit(r); /* (0, 1] */
        v = rng_unit(r);
        return clamp_ns((double)d->a_ns *
                        exp(d->sigma * sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v)));
    case DIST_FIXED:
        break;
    }
    return d->a_ns;
}

int64_t sim_stall_release(const struct sim_config *cfg, int64_t t)
{
    if (cfg->stall_ns <= 0)
        return t;
    int64_t rel = t - cfg->start_ns;
    if (rel < cfg->stall_every_ns)
        return t;
    int64_t k = rel / cfg->stall_every_ns;
    int64_t begin = cfg->start_ns + k * cfg->stall_every_ns;
    return t < begin + cfg->stall_ns ? begin + cfg->stall_ns : t;
}
