/* llm_data.c — token lengths and prompt datasets of the openai client (llm_data.h). */
#include "drivers/clients/llm_data.h"

#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLM_FILE_MAX   ((size_t)1 << 30)
#define LLM_OUT_MAX    10000000
#define SG_MIN_WORDS   4
#define SG_MAX_PROMPT  1024
#define SG_MAX_WORDS   2048
#define LLM_LEN_NUMBER "a number"

/* ---- lengths ----------------------------------------------------------------------------- */

/* A finite number filling all of s. */
static int num(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || isspace((unsigned char)*s))
        return -EINVAL;
    *out = v;
    return 0;
}

/* "A,B" into two numbers. */
static int num_pair(const char *s, double *a, double *b)
{
    const char *comma = strchr(s, ',');
    if (!comma)
        return -EINVAL;
    char *first = xstrndup(s, (size_t)(comma - s));
    int r = num(first, a);
    free(first);
    return r ? r : num(comma + 1, b);
}

int llm_len_parse(const char *text, int64_t lo, int64_t hi, struct llm_len *out, char *err,
                  size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->lo = lo;
    out->hi = hi;
    double a = 0, b = 0;
    int r;
    if (!strncmp(text, "uniform:", 8)) {
        out->kind = LLM_LEN_UNIFORM;
        r = num_pair(text + 8, &a, &b);
        r = r ? r : (a != floor(a) || b != floor(b) || a < (double)lo || b > (double)hi || a > b);
    } else if (!strncmp(text, "normal:", 7)) {
        out->kind = LLM_LEN_NORMAL;
        r = num_pair(text + 7, &a, &b);
        r = r ? r : (a < (double)lo || a > (double)hi || b < 0);
    } else {
        out->kind = LLM_LEN_FIXED;
        r = num(text, &a);
        r = r ? r : (a != floor(a) || a < (double)lo || a > (double)hi);
    }
    if (r) {
        snprintf(err, errlen,
                 "expected N, uniform:LO,HI (integers) or normal:MEAN,SD with values in "
                 "%lld..%lld, got '%s'",
                 (long long)lo, (long long)hi, text);
        return -EINVAL;
    }
    out->a = a;
    out->b = b;
    return 0;
}

int64_t llm_len_draw(const struct llm_len *l, struct rng *r)
{
    double v = l->a;
    if (l->kind == LLM_LEN_UNIFORM)
        v = l->a + (double)(rng_next(r) % (uint64_t)(l->b - l->a + 1));
    else if (l->kind == LLM_LEN_NORMAL) { /* Box-Muller */
        double u1 = rng_unit_open(r), u2 = rng_unit(r);
        v = nearbyint(l->a + l->b * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
    }
    if (v < (double)l->lo)
        return l->lo;
    return v > (double)l->hi ? l->hi : (int64_t)v;
}

double llm_len_mean(const struct llm_len *l)
{
    return l->kind == LLM_LEN_UNIFORM ? (l->a + l->b) / 2 : l->a;
}

/* ---- datasets ---------------------------------------------------------------------------- */

int64_t llm_words(const char *s)
{
    int64_t n = 0;
    bool in = false;
    for (; *s; s++) {
        bool sp = isspace((unsigned char)*s);
        n += !sp && !in;
        in = !sp;
    }
    return n;
}

static void set_add(struct llm_set *s, const char *prompt, int64_t out)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->items = xrealloc(s->items, s->cap * sizeof(*s->items));
    }
    s->items[s->n++] = (struct llm_item){xstrdup(prompt), llm_words(prompt), out};
}

void llm_set_free(struct llm_set *s)
{
    for (size_t i = 0; s && i < s->n; i++)
        free(s->items[i].prompt);
    if (s)
        free(s->items);
    if (s)
        memset(s, 0, sizeof(*s));
}

static bool sg_from(const json_t *turn, const char *const *names)
{
    const char *from = json_string_value(json_object_get(turn, "from"));
    if (!from)
        from = json_string_value(json_object_get(turn, "role"));
    for (size_t i = 0; from && names[i]; i++)
        if (!strcmp(from, names[i]))
            return true;
    return false;
}

static const char *sg_text(const json_t *turn)
{
    const char *v = json_string_value(json_object_get(turn, "value"));
    return v ? v : json_string_value(json_object_get(turn, "content"));
}

/* The prompt and answer of one ShareGPT entry, or NULL (not usable). */
static const char *sg_entry(const json_t *e, const char **answer)
{
    static const char *const human[] = {"human", "user", NULL};
    static const char *const model[] = {"gpt", "assistant", "chatgpt", "bard", "model", NULL};
    const json_t *conv = json_object_get(e, "conversations");
    if (!conv)
        conv = json_object_get(e, "conversation");
    size_t n = json_array_size(conv);
    for (size_t i = 0; i + 1 < n; i++) {
        const json_t *t = json_array_get(conv, i), *next = json_array_get(conv, i + 1);
        if (!sg_from(t, human))
            continue;
        const char *p = sg_text(t);
        *answer = sg_from(next, model) ? sg_text(next) : NULL;
        return p && *answer ? p : NULL;
    }
    return NULL;
}

int llm_load_sharegpt(const char *text, size_t len, size_t limit, struct llm_set *out, char **err)
{
    json_error_t je;
    json_t *doc = json_loadb(text, len, 0, &je);
    *err = NULL;
    if (!doc) {
        *err = xasprintf("not JSON at line %d column %d: %s", je.line, je.column, je.text);
        return -EINVAL;
    }
    if (!json_is_array(doc)) {
        json_decref(doc);
        *err = xstrdup("expected a JSON array of conversations (ShareGPT format)");
        return -EINVAL;
    }
    size_t i;
    json_t *e;
    json_array_foreach(doc, i, e)
    {
        if (limit && out->n >= limit)
            break;
        if (!json_is_object(e)) {
            *err = xasprintf("entry %zu: expected an object with \"conversations\"", i);
            break;
        }
        const char *answer = NULL, *prompt = sg_entry(e, &answer);
        int64_t pw = prompt ? llm_words(prompt) : 0, aw = answer ? llm_words(answer) : 0;
        if (pw < SG_MIN_WORDS || aw < SG_MIN_WORDS || pw > SG_MAX_PROMPT || pw + aw > SG_MAX_WORDS)
            out->skipped++;
        else
            set_add(out, prompt, aw);
    }
    json_decref(doc);
    return *err ? -EINVAL : 0;
}

/* One JSONL line (NUL-terminated) into out; a message in *err on failure. */
static int jsonl_line(const char *line, size_t len, struct llm_set *out, char **err)
{
    json_error_t je;
    json_t *v = json_loadb(line, len, JSON_DECODE_ANY, &je);
    int64_t n = 0;
    const json_t *p = v, *mt = NULL;
    if (!v) {
        *err = xasprintf("not JSON (column %d: %s)", je.column, je.text);
        return -EINVAL;
    }
    if (json_is_object(v)) {
        p = json_object_get(v, "prompt");
        mt = json_object_get(v, "max_tokens");
        mt = mt ? mt : json_object_get(v, "output_tokens");
    }
    if (!json_is_string(p))
        *err = xstrdup("expected a JSON string or an object with a string \"prompt\"");
    else if (mt && (!json_is_integer(mt) || (n = json_integer_value(mt)) < 1 || n > LLM_OUT_MAX))
        *err = xasprintf("max_tokens/output_tokens: expected an integer 1..%d", LLM_OUT_MAX);
    else
        set_add(out, json_string_value(p), n);
    json_decref(v);
    return *err ? -EINVAL : 0;
}

int llm_load_jsonl(const char *text, size_t len, size_t limit, struct llm_set *out, char **err)
{
    *err = NULL;
    size_t lineno = 0;
    for (size_t at = 0; at < len && (!limit || out->n < limit);) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        lineno++;
        size_t b = at, e = end;
        while (b < e && isspace((unsigned char)text[b]))
            b++;
        if (b < e) {
            char *why = NULL;
            if (jsonl_line(text + b, e - b, out, &why) < 0) {
                *err = xasprintf("line %zu: %s", lineno, why);
                free(why);
                return -EINVAL;
            }
        }
        at = end + 1;
    }
    return 0;
}

int llm_load_file(const char *path, const char *type, size_t limit, struct llm_set *out, char **err)
{
    char *text = NULL, *why = NULL;
    size_t len = 0;
    *err = NULL;
    int r = read_file(path, LLM_FILE_MAX, &text, &len);
    if (r < 0) {
        *err = xasprintf("cannot read dataset %s: %s", path, strerror(-r));
        return r;
    }
    if (!strcmp(type, "sharegpt"))
        r = llm_load_sharegpt(text, len, limit, out, &why);
    else if (!strcmp(type, "jsonl"))
        r = llm_load_jsonl(text, len, limit, out, &why);
    else {
        r = -EINVAL;
        why = xasprintf("unknown dataset type '%s' (known: sharegpt, jsonl)", type);
    }
    free(text);
    if (r == 0 && out->n == 0) {
        r = -EINVAL;
        why = out->skipped
                  ? xasprintf("no usable entry (%zu left out by the length filter)", out->skipped)
                  : xstrdup("no entry");
    }
    if (r < 0) {
        *err = xasprintf("dataset %s: %s", path, why);
        free(why);
        llm_set_free(out);
    }
    return r;
}
