/* fuzz_llm_data.c — libFuzzer target: any bytes as a prompt dataset, the first
 * byte choosing ShareGPT or JSONL (drivers/clients/llm_data.h), and the rest
 * also as a token length spec. What loads has a NUL-terminated prompt and a
 * word count that matches it; an error always has a message; a length that
 * parses draws within its bounds. */
#include "drivers/clients/llm_data.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    struct llm_set set = {0};
    char *err = NULL;
    int r = data[0] & 1 ? llm_load_jsonl(text, len, 0, &set, &err)
                        : llm_load_sharegpt(text, len, 0, &set, &err);
    if ((r < 0) != (err != NULL))
        abort();
    for (size_t i = 0; i < set.n; i++)
        if (!set.items[i].prompt || llm_words(set.items[i].prompt) != set.items[i].words ||
            set.items[i].out < 0)
            abort();
    free(err);
    llm_set_free(&set);

    char *spec = strndup(text, len < 64 ? len : 64), msg[200];
    struct llm_len l;
    if (spec && llm_len_parse(spec, 1, 1000, &l, msg, sizeof(msg)) == 0) {
        struct rng g;
        rng_seed(&g, size);
        for (int i = 0; i < 16; i++) {
            int64_t v = llm_len_draw(&l, &g);
            if (v < 1 || v > 1000)
                abort();
        }
    }
    free(spec);
    return 0;
}
