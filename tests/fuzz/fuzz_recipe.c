/* fuzz_recipe.c — libFuzzer target: any bytes through the recipe loader and validator. */
#include "config.h"
#include "core/recipe.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct catalog cat;
static bool cat_ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cat_ready) {
        const char *dirs[] = {SONDE_SOURCE_DIR "/recipes", NULL};
        catalog_init(&cat, dirs);
        cat_ready = true;
    }
    static char *const sets[] = {"description=fuzzed", NULL};
    struct recipe_opts o = {.catalog = &cat, .sets = size % 2 ? sets : NULL};
    struct diags d = {0};
    recipe_validate_buffer("fuzz.yaml", (const char *)data, size, &o, &d);
    char *text = diags_format(&d);
    free(text);
    diags_free(&d);
    return 0;
}
