/*
 * model.c -- model files: one layer spec per line, '#' comments.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define MODEL_FILE_MAX ((size_t)64 << 20) /* a model file is text: 64 MiB is absurd */
#define MODEL_LINE_MAX 4096

/* Appends a layer to the model, growing its array. */
static sepconv_status model_append(sepconv_model *model, const sepconv_layer *layer,
                                   size_t *capacity, sepconv_error *error)
{
    if (model->count == *capacity) {
        size_t grown = *capacity ? *capacity * 2 : 16;
        sepconv_layer *layers = realloc(model->layers, grown * sizeof *layers);
        if (!layers)
            return sepconv_fail(error, SEPCONV_NOMEM,
                                "out of memory growing the model to %zu layers",
                                grown);
        model->layers = layers;
        *capacity = grown;
    }
    model->layers[model->count++] = *layer;
    return SEPCONV_OK;
}

/* Parses model text, one spec a line; errors carry "origin:line: ". */
sepconv_status sepconv_model_parse(const char *text, const char *origin,
                                   sepconv_model *model, sepconv_error *error)
{
    if (!text || !model)
        return sepconv_fail(error, SEPCONV_INVALID, "no text or no model given");
    model->layers = NULL;
    model->count = 0;
    size_t capacity = 0;
    char line[MODEL_LINE_MAX];
    size_t number = 0;
    const char *p = text;
    sepconv_status status = SEPCONV_OK;
    while (*p && status == SEPCONV_OK) {
        number++;
        size_t length = strcspn(p, "\n");
        const char *next = p[length] ? p + length + 1 : p + length;
        size_t comment = strcspn(p, "#\n");
        if (comment >= sizeof line) {
            status = sepconv_fail(error, SEPCONV_INVALID,
                                  "%s:%zu: line is longer than %d characters",
                                  origin, number, MODEL_LINE_MAX - 1);
            break;
        }
        memcpy(line, p, comment);
        line[comment] = '\0';
        p = next;
        if (line[strspn(line, " \t\r,")] == '\0')
            continue;
        sepconv_layer layer;
        status = sepconv_layer_parse(line, &layer, error);
        if (status != SEPCONV_OK)
            sepconv_error_prefix(error, "%s:%zu", origin, number);
        else
            status = model_append(model, &layer, &capacity, error);
    }
    if (status == SEPCONV_OK && model->count == 0)
        status = sepconv_fail(error, SEPCONV_INVALID,
                              "%s: no layers (expected one spec per line)", origin);
    if (status != SEPCONV_OK)
        sepconv_model_free(model);
    return status;
}

/* Reads and parses a model file. */
sepconv_status sepconv_model_load(const char *path, sepconv_model *model,
                                  sepconv_error *error)
{
    if (!path || !model)
        return sepconv_fail(error, SEPCONV_INVALID, "no path or no model given");
    char *text = NULL;
    size_t length = 0;
    sepconv_status status = sepconv_read_file(path, MODEL_FILE_MAX, "model file",
                                              &text, &length, error);
    if (status != SEPCONV_OK)
        return status;
    status = sepconv_model_parse(text, path, model, error);
    free(text);
    return status;
}

/* Frees a model's layers. */
void sepconv_model_free(sepconv_model *model)
{
    if (!model)
        return;
    free(model->layers);
    model->layers = NULL;
    model->count = 0;
}
