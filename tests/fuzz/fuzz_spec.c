/*
 * fuzz_spec.c -- the layer-spec parser and model files: any bytes end in a
 * layer or an error; a parsed layer's canonical form parses to itself.
 */
#include <stdlib.h>
#include <string.h>

#include "sepconv.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    sepconv_layer layer, again;
    sepconv_error error;
    if (sepconv_layer_parse(text, &layer, &error) == SEPCONV_OK) {
        char canonical[1024], twice[1024];
        if (sepconv_layer_format(&layer, canonical, sizeof canonical, NULL) != SEPCONV_OK ||
            sepconv_layer_parse(canonical, &again, NULL) != SEPCONV_OK ||
            sepconv_layer_format(&again, twice, sizeof twice, NULL) != SEPCONV_OK ||
            strcmp(canonical, twice) != 0)
            abort(); /* the canonical form must round-trip */
        sepconv_cost cost;
        sepconv_cost_compute(&layer, &cost, NULL);
    } else if (error.message[0] == '\0') {
        abort(); /* every refusal says why */
    }
    sepconv_model model;
    if (sepconv_model_parse(text, "fuzz", &model, NULL) == SEPCONV_OK)
        sepconv_model_free(&model);
    free(text);
    return 0;
}
