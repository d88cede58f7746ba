/* test_promtext.c — the Prometheus text 0.0.4 / OpenMetrics parser: families,
 * types and parts, values, escapes, exemplars, timestamps, bad lines and their
 * messages, limits, and a real node exporter page (tests/data/prom). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/promtext.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the callback saw, copied. */
struct got {
    char family[128], name[128], labels[512];
    enum prom_type type;
    enum prom_part part;
    double value, ts;
    bool has_ts;
    size_t line;
};

struct run {
    struct got g[256];
    size_t n;
    struct prom_stats st;
    int rc;
};

static int collect(const struct prom_sample *s, void *ud)
{
    struct run *r = ud;
    assert_true(r->n < SONDE_ARRAY_LEN(r->g));
    struct got *g = &r->g[r->n++];
    snprintf(g->family, sizeof(g->family), "%s", s->family);
    snprintf(g->name, sizeof(g->name), "%s", s->name);
    g->labels[0] = '\0';
    for (size_t i = 0; i < s->nlabels; i++) {
        size_t k = strlen(g->labels);
        assert_int_equal(strlen(s->labels[i].value), s->labels[i].value_len);
        snprintf(g->labels + k, sizeof(g->labels) - k, "%s%s=%s", i ? "," : "", s->labels[i].name,
                 s->labels[i].value);
    }
    g->type = s->type;
    g->part = s->part;
    g->value = s->value;
    g->has_ts = s->has_timestamp;
    g->ts = s->timestamp;
    g->line = s->line;
    return 0;
}

static struct run *parse(const char *text, bool om)
{
    static struct run r;
    memset(&r, 0, sizeof(r));
    r.rc = promtext_parse(text, strlen(text), om, collect, &r, &r.st);
    return &r;
}

static void expect(const struct got *g, const char *family, const char *name, enum prom_type t,
                   enum prom_part part, const char *labels, double value)
{
    assert_string_equal(g->family, family);
    assert_string_equal(g->name, name);
    if (g->type != t || g->part != part)
        fail_msg("%s: type %s part %s, expected %s %s", name, prom_type_name(g->type),
                 prom_part_name(g->part), prom_type_name(t), prom_part_name(part));
    assert_string_equal(g->labels, labels);
    if (isnan(value))
        assert_true(isnan(g->value));
    else
        assert_true(g->value == value);
}

static void test_text_004(void **state)
{
    (void)state;
    const char *doc = "# HELP http_requests_total The total number of HTTP requests.\n"
                      "# TYPE http_requests_total counter\n"
                      "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
                      "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n"
                      "\n"
                      "# A plain comment\n"
                      "#no blank: also a comment\n"
                      "# TYPE temp gauge\n"
                      "temp -3.5\n"
                      "# TYPE lat histogram\n"
                      "lat_bucket{le=\"0.05\"} 24054\n"
                      "lat_bucket{le=\"+Inf\"} 144320\n"
                      "lat_sum 53423\n"
                      "lat_count 144320\n"
                      "# TYPE rpc summary\n"
                      "rpc{quantile=\"0.5\"} 4773\n"
                      "rpc_sum 1.7560473e+07\n"
                      "rpc_count 2693\n"
                      "# TYPE thing untyped\n"
                      "thing 7\n"
                      "other_metric{a=\"b\"} 1e3\n";
    struct run *r = parse(doc, false);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->st.bad_lines, 0);
    assert_string_equal(r->st.error, "");
    assert_int_equal(r->n, 12);
    assert_int_equal(r->st.samples, 12);
    assert_int_equal(r->st.lines, 21);
    expect(&r->g[0], "http_requests_total", "http_requests_total", PROM_COUNTER, PROM_PART_TOTAL,
           "method=post,code=200", 1027);
    assert_true(r->g[0].has_ts);
    assert_true(fabs(r->g[0].ts - 1395066363.0) < 1e-6); /* ms → s */
    assert_int_equal(r->g[0].line, 3);
    expect(&r->g[1], "http_requests_total", "http_requests_total", PROM_COUNTER, PROM_PART_TOTAL,
           "method=post,code=400", 3);
    expect(&r->g[2], "temp", "temp", PROM_GAUGE, PROM_PART_VALUE, "", -3.5);
    assert_false(r->g[2].has_ts);
    expect(&r->g[3], "lat", "lat_bucket", PROM_HISTOGRAM, PROM_PART_BUCKET, "le=0.05", 24054);
    expect(&r->g[4], "lat", "lat_bucket", PROM_HISTOGRAM, PROM_PART_BUCKET, "le=+Inf", 144320);
    expect(&r->g[5], "lat", "lat_sum", PROM_HISTOGRAM, PROM_PART_SUM, "", 53423);
    expect(&r->g[6], "lat", "lat_count", PROM_HISTOGRAM, PROM_PART_COUNT, "", 144320);
    expect(&r->g[7], "rpc", "rpc", PROM_SUMMARY, PROM_PART_QUANTILE, "quantile=0.5", 4773);
    expect(&r->g[8], "rpc", "rpc_sum", PROM_SUMMARY, PROM_PART_SUM, "", 1.7560473e+07);
    expect(&r->g[9], "rpc", "rpc_count", PROM_SUMMARY, PROM_PART_COUNT, "", 2693);
    expect(&r->g[10], "thing", "thing", PROM_UNTYPED, PROM_PART_VALUE, "", 7);
    /* Not a sample of the last TYPE's family: a family of its own, untyped. */
    expect(&r->g[11], "other_metric", "other_metric", PROM_UNTYPED, PROM_PART_VALUE, "a=b", 1000);
}

static void test_openmetrics(void **state)
{
    (void)state;
    const char *doc =
        "# TYPE acme_http_router_request_seconds histogram\n"
        "# UNIT acme_http_router_request_seconds seconds\n"
        "# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request "
        "router.\n"
        "acme_http_router_request_seconds_bucket{path=\"/api/v1\",le=\"0.1\"} 1 # "
        "{trace_id=\"KOO5S4vxi0o\"} 0.067 1.5e9\n"
        "acme_http_router_request_seconds_bucket{path=\"/api/v1\",le=\"+Inf\"} 2 # "
        "{trace_id=\"oHg5SJYRHA0\"} 9.8\n"
        "acme_http_router_request_seconds_sum{path=\"/api/v1\"} 11.5\n"
        "acme_http_router_request_seconds_count{path=\"/api/v1\"} 2\n"
        "acme_http_router_request_seconds_created{path=\"/api/v1\"} 1605281325.0\n"
        "# TYPE foo counter\n"
        "foo_total 17.0 1520879607.789\n"
        "foo_created 1520872607.123\n"
        "# TYPE cache_ratio gaugehistogram\n"
        "cache_ratio_bucket{le=\"0.5\"} 3\n"
        "cache_ratio_gsum 1.25\n"
        "cache_ratio_gcount 3\n"
        "# TYPE build info\n"
        "build_info{version=\"1.2\"} 1\n"
        "# TYPE door stateset\n"
        "door{door=\"open\"} 1\n"
        "# TYPE mystery unknown\n"
        "mystery NaN\n"
        "# TYPE temps gauge\n"
        "temps{room=\"a\"} +Inf\n"
        "temps{room=\"b\"} -Inf\n"
        "temps{room=\"c\"} Inf\n"
        "temps{room=\"d\"} -1.5E-3\n"
        "# EOF\n";
    struct run *r = parse(doc, true);
    assert_int_equal(r->rc, 0);
    if (r->st.bad_lines)
        fail_msg("%s", r->st.error);
    assert_true(r->st.eof);
    assert_int_equal(r->n, 17);
    const char *h = "acme_http_router_request_seconds";
    expect(&r->g[0], h, "acme_http_router_request_seconds_bucket", PROM_HISTOGRAM, PROM_PART_BUCKET,
           "path=/api/v1,le=0.1", 1);
    expect(&r->g[1], h, "acme_http_router_request_seconds_bucket", PROM_HISTOGRAM, PROM_PART_BUCKET,
           "path=/api/v1,le=+Inf", 2);
    assert_false(r->g[0].has_ts); /* the exemplar's timestamp is not the sample's */
    expect(&r->g[2], h, "acme_http_router_request_seconds_sum", PROM_HISTOGRAM, PROM_PART_SUM,
           "path=/api/v1", 11.5);
    expect(&r->g[3], h, "acme_http_router_request_seconds_count", PROM_HISTOGRAM, PROM_PART_COUNT,
           "path=/api/v1", 2);
    expect(&r->g[4], h, "acme_http_router_request_seconds_created", PROM_HISTOGRAM,
           PROM_PART_CREATED, "path=/api/v1", 1605281325.0);
    expect(&r->g[5], "foo", "foo_total", PROM_COUNTER, PROM_PART_TOTAL, "", 17);
    assert_true(r->g[5].has_ts);
    assert_true(fabs(r->g[5].ts - 1520879607.789) < 1e-6); /* seconds, with a fraction */
    expect(&r->g[6], "foo", "foo_created", PROM_COUNTER, PROM_PART_CREATED, "", 1520872607.123);
    expect(&r->g[7], "cache_ratio", "cache_ratio_bucket", PROM_GAUGEHISTOGRAM, PROM_PART_BUCKET,
           "le=0.5", 3);
    expect(&r->g[8], "cache_ratio", "cache_ratio_gsum", PROM_GAUGEHISTOGRAM, PROM_PART_GSUM, "",
           1.25);
    expect(&r->g[9], "cache_ratio", "cache_ratio_gcount", PROM_GAUGEHISTOGRAM, PROM_PART_GCOUNT, "",
           3);
    expect(&r->g[10], "build", "build_info", PROM_INFO, PROM_PART_INFO, "version=1.2", 1);
    expect(&r->g[11], "door", "door", PROM_STATESET, PROM_PART_VALUE, "door=open", 1);
    expect(&r->g[12], "mystery", "mystery", PROM_UNKNOWN, PROM_PART_VALUE, "", NAN);
    expect(&r->g[13], "temps", "temps", PROM_GAUGE, PROM_PART_VALUE, "room=a", INFINITY);
    expect(&r->g[14], "temps", "temps", PROM_GAUGE, PROM_PART_VALUE, "room=b", -INFINITY);
    expect(&r->g[15], "temps", "temps", PROM_GAUGE, PROM_PART_VALUE, "room=c", INFINITY);
    expect(&r->g[16], "temps", "temps", PROM_GAUGE, PROM_PART_VALUE, "room=d", -1.5e-3);

    /* Anything after # EOF is one bad line, and is not parsed. */
    r = parse("# TYPE a gauge\na 1\n# EOF\n\nb 2\nc 3\n", true);
    assert_int_equal(r->n, 1);
    assert_true(r->st.eof);
    assert_int_equal(r->st.bad_lines, 1);
    assert_string_equal(r->st.error, "line 5: text after '# EOF'");
    r = parse("a 1\n# EOF\n", true);
    assert_int_equal(r->st.bad_lines, 0);
}

static void test_values(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        double v;
    } good[] = {
        {"0", 0},
        {"1", 1},
        {"-1", -1},
        {"+2.5", 2.5},
        {".5", 0.5},
        {"5.", 5},
        {"1e3", 1000},
        {"1E-3", 0.001},
        {"-1.5e+2", -150},
        {"Inf", INFINITY},
        {"+Inf", INFINITY},
        {"-Inf", -INFINITY},
        {"inf", INFINITY},
        {"+infinity", INFINITY},
        {"1.7976931348623157e308", 1.7976931348623157e308},
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(good); i++) {
        double v = 0;
        if (promtext_value(good[i].s, strlen(good[i].s), &v) != 0 || v != good[i].v)
            fail_msg("'%s' -> %g", good[i].s, v);
    }
    double v = 0;
    assert_int_equal(promtext_value("NaN", 3, &v), 0);
    assert_true(isnan(v));
    assert_int_equal(promtext_value("nan", 3, &v), 0);
    static const char *const badv[] = {"",    "-",     "+",    ".",     "e5",   "1e",
                                       "1e+", "1.2.3", "0x10", "1,5",   "Infx", "NaNa",
                                       "1 ",  " 1",    "--1",  "1e5.5", "abc"};
    for (size_t i = 0; i < SONDE_ARRAY_LEN(badv); i++)
        if (promtext_value(badv[i], strlen(badv[i]), &v) != -EINVAL)
            fail_msg("'%s' accepted", badv[i]);
    /* A value token is parsed without reading past its end. */
    assert_int_equal(promtext_value("12345", 2, &v), 0);
    assert_true(v == 12);
}

static void test_escapes_and_spacing(void **state)
{
    (void)state;
    struct run *r = parse("m{a=\"x\\\\y\\\"z\\nw\", b = \"\" ,} 1\n"
                          "m { c=\"é€😀\" } 2\n"
                          "m\t3\n"
                          "  m 4  \n"
                          "m 5\r\n",
                          false);
    if (r->st.bad_lines)
        fail_msg("%s", r->st.error);
    assert_int_equal(r->n, 5);
    expect(&r->g[0], "m", "m", PROM_UNTYPED, PROM_PART_VALUE, "a=x\\y\"z\nw,b=", 1);
    expect(&r->g[1], "m", "m", PROM_UNTYPED, PROM_PART_VALUE, "c=é€😀", 2);
    expect(&r->g[2], "m", "m", PROM_UNTYPED, PROM_PART_VALUE, "", 3);
    expect(&r->g[3], "m", "m", PROM_UNTYPED, PROM_PART_VALUE, "", 4);
    expect(&r->g[4], "m", "m", PROM_UNTYPED, PROM_PART_VALUE, "", 5);
    r = parse("http:requests:rate5m{job=\"x\"} 1\n", false);
    assert_int_equal(r->n, 1);
    assert_string_equal(r->g[0].name, "http:requests:rate5m");
}

/* Each bad line alone: its message, and the good lines around it still parse. */
static void test_bad_lines(void **state)
{
    (void)state;
    static const struct {
        const char *line, *msg;
    } cases[] = {
        {"m{a=\"x} 1", "line 2: label value of 'a' not terminated"},
        {"m{a=\"x\"", "line 2: label set not closed with '}'"},
        {"m{a=\"x\" b=\"y\"} 1", "line 2: expected ',' or '}' after the value of label 'a'"},
        {"m{a} 1", "line 2: expected '=' after label name 'a'"},
        {"m{a=x} 1", "line 2: expected '\"' to open the value of label 'a'"},
        {"m{1a=\"x\"} 1", "line 2: expected a label name"},
        {"m{a=\"\\t\"} 1", "line 2: invalid escape '\\t' in the value of label 'a'"},
        {"m{a=\"x\",a=\"y\"} 1", "line 2: label 'a' given twice"},
        {"m", "line 2: no value after 'm'"},
        {"m{a=\"x\"}", "line 2: no value after 'm'"},
        {"m{a=\"x\"}1", "line 2: expected a blank after the name or labels of 'm'"},
        {"m abc", "line 2: bad value 'abc'"},
        {"m 1 2 3", "line 2: unexpected text after the value of 'm'"},
        {"m 1 x", "line 2: bad timestamp 'x'"},
        {"m 1 # 2", "line 2: expected an exemplar '# {...} value' after the value"},
        {"m 1 # {a=\"b\"} zz", "line 2: bad exemplar value 'zz'"},
        {"1m 1", "line 2: expected a metric name"},
        {"{a=\"b\"} 1", "line 2: expected a metric name"},
        {"# TYPE m", "line 2: TYPE of 'm' without a type"},
        {"# TYPE m flavour", "line 2: unknown type 'flavour' for 'm'"},
        {"# TYPE m gauge extra", "line 2: unexpected text after the TYPE of 'm'"},
        {"# TYPE", "line 2: TYPE without a metric name"},
        {"# HELP", "line 2: HELP without a metric name"},
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(cases); i++) {
        char doc[256];
        snprintf(doc, sizeof(doc), "good 1\n%s\ngood 2\n", cases[i].line);
        struct run *r = parse(doc, false);
        if (r->st.bad_lines != 1 || strcmp(r->st.error, cases[i].msg) != 0)
            fail_msg("'%s': %zu bad lines, error '%s', expected '%s'", cases[i].line,
                     r->st.bad_lines, r->st.error, cases[i].msg);
        assert_int_equal(r->n, 2);
        assert_true(r->g[0].value == 1 && r->g[1].value == 2);
        assert_int_equal(r->g[1].line, 3);
    }
    /* The first error is kept; all are counted. */
    struct run *r = parse("a 1\nb x\nc{ 1\nd 4\n", false);
    assert_int_equal(r->st.bad_lines, 2);
    assert_string_equal(r->st.error, "line 2: bad value 'x'");
    assert_int_equal(r->n, 2);
}

static void test_parts_checked(void **state)
{
    (void)state;
    struct run *r =
        parse("# TYPE h histogram\nh_bucket 1\nh_bucket{le=\"x\"} 1\nh_bucket{le=\"1\"} "
              "2\n# TYPE s summary\ns 1\ns{quantile=\"2\"} 1\ns{quantile=\"0.9\"} 3\n",
              false);
    assert_int_equal(r->st.bad_lines, 4);
    assert_string_equal(r->st.error, "line 2: histogram bucket 'h_bucket' without an 'le' label");
    assert_int_equal(r->n, 2);
    expect(&r->g[0], "h", "h_bucket", PROM_HISTOGRAM, PROM_PART_BUCKET, "le=1", 2);
    expect(&r->g[1], "s", "s", PROM_SUMMARY, PROM_PART_QUANTILE, "quantile=0.9", 3);
    /* A TYPE line that fails ends the family before it: the samples are untyped. */
    r = parse("# TYPE c counter\n# TYPE c bogus\nc 5\n", false);
    assert_int_equal(r->st.bad_lines, 1);
    expect(&r->g[0], "c", "c", PROM_UNTYPED, PROM_PART_VALUE, "", 5);
    /* 0.0.4 counters are named X_total themselves; OpenMetrics ones X. */
    r = parse("# TYPE x_total counter\nx_total 3\n# TYPE y counter\ny_total 4\ny 5\n", false);
    expect(&r->g[0], "x_total", "x_total", PROM_COUNTER, PROM_PART_TOTAL, "", 3);
    expect(&r->g[1], "y", "y_total", PROM_COUNTER, PROM_PART_TOTAL, "", 4);
    expect(&r->g[2], "y", "y", PROM_COUNTER, PROM_PART_TOTAL, "", 5);
}

static char *repeat(char ch, size_t n)
{
    char *s = xmalloc(n + 1);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

static void test_limits(void **state)
{
    (void)state;
    /* Label value: 4 KiB is fine, one byte more is a bad line. */
    char *v = repeat('v', PROMTEXT_MAX_LABEL_VAL);
    char *doc = xasprintf("m{a=\"%s\"} 1\nm{a=\"%sv\"} 2\nm 3\n", v, v);
    struct run *r = parse(doc, false);
    assert_int_equal(r->n, 2);
    assert_int_equal(r->st.bad_lines, 1);
    assert_string_equal(r->st.error, "line 2: value of label 'a' longer than 4096 bytes");
    free(doc);
    /* Escapes count once unescaped. */
    char *esc = xmalloc(2 * PROMTEXT_MAX_LABEL_VAL + 1);
    for (size_t i = 0; i < PROMTEXT_MAX_LABEL_VAL; i++)
        memcpy(esc + 2 * i, "\\n", 2);
    esc[2 * PROMTEXT_MAX_LABEL_VAL] = '\0';
    doc = xasprintf("m{a=\"%s\"} 1\n", esc);
    r = parse(doc, false);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->st.bad_lines, 0);
    free(doc);
    free(esc);
    free(v);
    /* 64 labels are fine, 65 are not. */
    struct sbuf b = {0};
    for (int k = 0; k < 2; k++) {
        sbuf_puts(&b, "m{");
        for (int i = 0; i < PROMTEXT_MAX_LABELS + k; i++)
            sbuf_printf(&b, "l%d=\"%d\",", i, i);
        sbuf_puts(&b, "} 1\n");
    }
    r = parse(b.s, false);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->st.bad_lines, 1);
    assert_string_equal(r->st.error, "line 2: more than 64 labels");
    sbuf_free(&b);
    /* A line over 64 KiB is skipped whole; the next one parses. */
    char *name = repeat('n', PROMTEXT_MAX_LINE);
    doc = xasprintf("%s 1\nok 2\n", name);
    r = parse(doc, false);
    assert_int_equal(r->n, 1);
    assert_string_equal(r->g[0].name, "ok");
    assert_int_equal(r->g[0].line, 2);
    assert_string_equal(r->st.error, "line 1: line longer than 64 KiB");
    free(doc);
    /* Exactly 64 KiB is still a line. */
    name[PROMTEXT_MAX_LINE - 2] = ' ';
    name[PROMTEXT_MAX_LINE - 1] = '7';
    r = parse(name, false);
    assert_int_equal(r->n, 1);
    assert_true(r->g[0].value == 7);
    free(name);
}

static void test_bytes(void **state)
{
    (void)state;
    /* NUL bytes: the line is bad, the rest parses. */
    const char nul[] = "a 1\nb\0 2\nc{x=\"\0\"} 3\nd 4";
    struct run *r = &(struct run){0};
    r->rc = promtext_parse(nul, sizeof(nul) - 1, false, collect, r, &r->st);
    assert_int_equal(r->n, 2);
    assert_int_equal(r->st.bad_lines, 2);
    assert_string_equal(r->st.error, "line 2: NUL byte in the line");
    assert_string_equal(r->g[1].name, "d"); /* no final newline: still a line */
    /* Invalid UTF-8 in a label value. */
    static const char *const bad8[] = {
        "\xff",
        "\xc0\xaf" /* overlong */,
        "\xed\xa0\x80" /* surrogate */,
        "\xf4\x90\x80\x80" /* > U+10FFFF */,
        "\xe2\x82" /* truncated */,
        "\x80",
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(bad8); i++) {
        char *doc = xasprintf("m{a=\"%s\"} 1\n", bad8[i]);
        r = parse(doc, false);
        assert_int_equal(r->n, 0);
        assert_string_equal(r->st.error, "line 1: value of label 'a' is not valid UTF-8");
        free(doc);
    }
    /* Bytes above 0x7f outside label values are simply not names. */
    r = parse("m\xff 1\n# HELP m caf\xe9\nm 2\n", false);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->st.bad_lines, 1);
    /* A truncated document: the cut line is bad, nothing read past the end. */
    const char *full = "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_sum 3\n";
    for (size_t n = 0; n <= strlen(full); n++) {
        char *cut = xmalloc(n ? n : 1);
        memcpy(cut, full, n);
        struct run *c = &(struct run){0};
        assert_int_equal(promtext_parse(cut, n, false, collect, c, &c->st), 0);
        assert_true(c->n <= 2);
        free(cut);
    }
    /* An empty document. */
    r = parse("", false);
    assert_int_equal(r->n, 0);
    assert_int_equal(r->st.lines, 0);
}

static int stop_at_second(const struct prom_sample *s, void *ud)
{
    (void)s;
    return ++*(int *)ud == 2 ? -ECANCELED : 0;
}

static void test_callback_stops(void **state)
{
    (void)state;
    int n = 0;
    struct prom_stats st;
    assert_int_equal(promtext_parse("a 1\nb 2\nc 3\n", 12, false, stop_at_second, &n, &st),
                     -ECANCELED);
    assert_int_equal(n, 2);
    /* -1 from the callback is its value too, not a bad line. */
    assert_int_equal(promtext_parse("a 1\n", 4, false, NULL, NULL, NULL), 0);
}

static void test_content_type(void **state)
{
    (void)state;
    assert_true(promtext_is_openmetrics("application/openmetrics-text; version=1.0.0; "
                                        "charset=utf-8"));
    assert_true(promtext_is_openmetrics("application/openmetrics-text"));
    assert_true(promtext_is_openmetrics("Application/OpenMetrics-Text;version=1.0.0"));
    assert_false(promtext_is_openmetrics("text/plain; version=0.0.4; charset=utf-8"));
    assert_false(promtext_is_openmetrics("application/openmetrics-textual"));
    assert_false(promtext_is_openmetrics(""));
    assert_false(promtext_is_openmetrics(NULL));
}

/* A page of a real prometheus-node-exporter 1.5 (Debian 12), trimmed to some
 * families: every sample line parses, with the family and type of its TYPE. */
static void test_node_exporter_page(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(read_file("tests/data/prom/node-exporter-1.5.txt", 1 << 20, &text, &len), 0);
    size_t sample_lines = 0, types = 0;
    for (const char *s = text; s < text + len;) {
        const char *nl = memchr(s, '\n', (size_t)(text + len - s));
        if (*s != '#' && *s != '\n')
            sample_lines++;
        types += strncmp(s, "# TYPE ", 7) == 0;
        s = nl ? nl + 1 : text + len;
    }
    static struct run big;
    size_t counters = 0, quantiles = 0, cpu = 0, cpu_idle_0 = 0;
    struct prom_stats st;
    assert_int_equal(promtext_parse(text, len, false, collect, &big, &st), 0);
    if (st.bad_lines)
        fail_msg("%s", st.error);
    assert_true(types >= 20);
    assert_int_equal(st.samples, sample_lines);
    assert_int_equal(big.n, sample_lines);
    for (size_t i = 0; i < big.n; i++) {
        const struct got *g = &big.g[i];
        if (strcmp(g->family, "node_cpu_seconds_total") == 0) {
            cpu++;
            assert_int_equal(g->type, PROM_COUNTER);
            assert_int_equal(g->part, PROM_PART_TOTAL);
            assert_true(g->value >= 0);
            cpu_idle_0 += strcmp(g->labels, "cpu=0,mode=idle") == 0;
        }
        counters += g->type == PROM_COUNTER;
        if (strcmp(g->family, "go_gc_duration_seconds") == 0 && g->part == PROM_PART_QUANTILE)
            quantiles++;
        if (strcmp(g->name, "go_gc_duration_seconds_count") == 0)
            assert_int_equal(g->part, PROM_PART_COUNT);
        if (strcmp(g->family, "node_load1") == 0)
            assert_int_equal(g->type, PROM_GAUGE);
        if (strcmp(g->family, "node_uname_info") == 0)
            assert_non_null(strstr(g->labels, "version=#1 SMP"));
    }
    assert_true(cpu >= 8); /* 8 modes per CPU */
    assert_int_equal(cpu % 8, 0);
    assert_int_equal(cpu_idle_0, 1);
    assert_int_equal(quantiles, 5);
    assert_true(counters > cpu);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_004),
        cmocka_unit_test(test_openmetrics),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_escapes_and_spacing),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_parts_checked),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_node_exporter_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
