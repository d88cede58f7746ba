/* fuzz_json_scan.c — libFuzzer target, differential: any bytes through the
 * allocation-free scanner (util/json_scan.h) and through jansson. Both must
 * accept or reject alike, and agree on what sits at the OpenAI client's paths
 * (type, string emptiness, integer value). Text holding a NUL byte is only
 * scanned: jansson skips some NUL bytes between tokens and not others, where
 * the scanner rejects every one. */
#include "util/json_scan.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const want[] = {
    "error",
    "choices[0].text",
    "choices[0].delta.content",
    "choices[0].message.content",
    "usage.completion_tokens",
    "usage.prompt_tokens",
    "choices",
    "[1].a",
};
#define NWANT ((int)(sizeof(want) / sizeof(want[0])))

/* The value at path p in j (jansson), or NULL. */
static json_t *lookup(json_t *j, const struct js_path *p)
{
    for (int i = 0; j && i < p->nseg; i++) {
        const struct js_seg *g = &p->seg[i];
        if (g->is_key) {
            char key[64];
            memcpy(key, p->text + g->off, g->len);
            key[g->len] = '\0';
            j = json_is_object(j) ? json_object_get(j, key) : NULL;
        } else
            j = json_is_array(j) ? json_array_get(j, g->index) : NULL;
    }
    return j;
}

static enum js_type type_of(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return JS_OBJECT;
    case JSON_ARRAY:
        return JS_ARRAY;
    case JSON_STRING:
        return JS_STRING;
    case JSON_INTEGER:
        return JS_INTEGER;
    case JSON_REAL:
        return JS_REAL;
    case JSON_TRUE:
        return JS_TRUE;
    case JSON_FALSE:
        return JS_FALSE;
    case JSON_NULL:
        return JS_NULL;
    }
    return JS_NONE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct js_paths set;
    static int ready;
    if (!ready) {
        if (js_paths_init(&set, want, NWANT) < 0)
            abort();
        ready = 1;
    }
    struct js_found f[NWANT];
    enum js_type t = js_scan((const char *)data, size, &set, f);
    if (memchr(data, '\0', size))
        return t == JS_NONE ? 0 : (abort(), 0); /* never accepted by the scanner */
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if ((t != JS_NONE) != (j != NULL) || (j && t != type_of(j)))
        abort();
    for (int i = 0; j && i < NWANT; i++) {
        json_t *v = lookup(j, &set.path[i]);
        if ((v ? type_of(v) : JS_NONE) != f[i].type)
            abort();
        if (v && json_is_string(v) && (json_string_length(v) == 0) != (f[i].raw_len == 0))
            abort();
        if (v && json_is_integer(v) && json_integer_value(v) != f[i].integer)
            abort();
    }
    json_decref(j);
    return 0;
}
