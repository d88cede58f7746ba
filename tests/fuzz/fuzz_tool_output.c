/* fuzz_tool_output.c — libFuzzer target: any bytes as what a wrapped
 * file-system tool or the kernel printed: a /proc/self/mountinfo text (the
 * fileio client's provenance), and a tool's stdout read the way the fio,
 * ior and mdtest catalog entries read it (JSON paths into fio's document,
 * regexes over IOR's and mdtest's summaries). Whatever is found is a finite
 * number or a string that fits; nothing crashes, nothing leaks. */
#include "drivers/clients/extract.h"
#include "fileio/fsinfo.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const json_paths[] = {
    "jobs[0].read.bw_bytes",
    "jobs[0].read.clat_ns.percentile[\"99.000000\"]",
    "jobs[0].write.iops",
    "jobs[0].error",
};

static const struct {
    const char *re;
    int group;
} regexes[] = {
    {"^write +([0-9.]+) ", 1},
    {"^read +([0-9.]+ +){8}([0-9.]+) ", 2},
    {"^(write|read) +([^ ]+ +){12}([0-9]+) ", 3},
    {"^ +File creation +([0-9.]+)", 1},
};

static void mountinfo(const char *text)
{
    struct fx_fsinfo fi;
    memset(&fi, 0, sizeof(fi));
    if (fx_mountinfo_find(text, "/scratch/a/b", &fi) == 0 &&
        (strnlen(fi.mount, sizeof(fi.mount)) == sizeof(fi.mount) ||
         strnlen(fi.type, sizeof(fi.type)) == sizeof(fi.type)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    mountinfo(text);
    char err[256];
    json_t *doc = NULL;
    if (extract_json_load(text, size, &doc, err, sizeof(err)) == 0) {
        for (size_t i = 0; i < sizeof(json_paths) / sizeof(json_paths[0]); i++) {
            double v;
            if (extract_json_path(doc, json_paths[i], &v, err, sizeof(err)) == 0 && !isfinite(v))
                abort();
        }
        json_decref(doc);
    }
    for (size_t i = 0; i < sizeof(regexes) / sizeof(regexes[0]); i++) {
        regex_t re;
        if (extract_regex_compile(regexes[i].re, regexes[i].group, 0, &re, err, sizeof(err)) < 0)
            abort(); /* the catalog's own regexes */
        struct extract_rule r = {.regex = regexes[i].re, .group = regexes[i].group, .scale = 1};
        struct extract_result out;
        if (extract_regex(&re, &r, text, &out, err, sizeof(err)) == 0 && !isfinite(out.value))
            abort();
        regfree(&re);
    }
    free(text);
    return 0;
}
