/* llm_data.h — where the openai client's requests come from: token lengths
 * fixed or drawn from a distribution, and prompt datasets (ShareGPT-format
 * JSON, JSONL of prompts) loaded once before the run. Pure functions of their
 * input and the caller's RNG, so the fuzz target and unit tests drive them
 * directly. Rules and formats: docs/inference.md, "Datasets". */
#ifndef SONDE_LLM_DATA_H
#define SONDE_LLM_DATA_H

#include "util/rng.h"

#include <stddef.h>
#include <stdint.h>

/* A token length: "N", "uniform:LO,HI" (integers, inclusive) or
 * "normal:MEAN,SD" (rounded, clamped to [lo, hi] of the parse). */
enum llm_len_kind { LLM_LEN_FIXED, LLM_LEN_UNIFORM, LLM_LEN_NORMAL };

struct llm_len {
    enum llm_len_kind kind;
    double a, b;    /* fixed: a; uniform: a..b; normal: mean a, sd b */
    int64_t lo, hi; /* the clamp */
};

/* Parses text with every value in [lo, hi]. 0, or -EINVAL with a message in
 * err (errlen bytes) saying what was expected. */
int llm_len_parse(const char *text, int64_t lo, int64_t hi, struct llm_len *out, char *err,
                  size_t errlen);
/* One draw (no RNG use for a fixed length). */
int64_t llm_len_draw(const struct llm_len *l, struct rng *r);
/* The mean of the distribution (for messages and plans). */
double llm_len_mean(const struct llm_len *l);

/* One prompt of a dataset. */
struct llm_item {
    char *prompt;
    int64_t words; /* whitespace-separated words of prompt */
    int64_t out;   /* output tokens the entry asks for, 0: none given */
};

struct llm_set {
    struct llm_item *items;
    size_t n, cap;
    size_t skipped; /* ShareGPT entries left out by the filter */
};

/* Whitespace-separated words of s (the token estimate of sonde and sonde-sim). */
int64_t llm_words(const char *s);

/* Loads a ShareGPT-format document: a JSON array of objects whose
 * "conversations" (or "conversation") is a list of {"from", "value"} turns;
 * the first human/user turn is the prompt, the turn after it the reference
 * answer, whose word count is the item's out. Entries with fewer than two
 * such turns, fewer than 4 words in either, a prompt over 1024 words or over
 * 2048 words in both are skipped (counted). At most limit items (0: all).
 * 0, or -EINVAL with *err (malloc'd) naming the entry or the JSON position. */
int llm_load_sharegpt(const char *text, size_t len, size_t limit, struct llm_set *out, char **err);

/* Loads JSONL: every non-blank line is a JSON string (the prompt) or an
 * object with "prompt" (a string) and optionally "max_tokens" or
 * "output_tokens" (an integer 1..10^7). At most limit items (0: all). 0, or
 * -EINVAL with *err (malloc'd) naming the line. */
int llm_load_jsonl(const char *text, size_t len, size_t limit, struct llm_set *out, char **err);

/* Reads path (at most 1 GiB) and loads it as type "sharegpt" or "jsonl";
 * errors name the file. An empty result is an error. */
int llm_load_file(const char *path, const char *type, size_t limit, struct llm_set *out,
                  char **err);

void llm_set_free(struct llm_set *s);

#endif
