/*
 * buffers.c -- owned tensors for one layer, and seeded random fill.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* The next value of a splitmix64 stream. */
uint64_t sepconv_random_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Allocates `count` floats at a multiple of `align` (a power of two),
 * zeroed, the size rounded up to `align`; NULL for a count that is negative
 * or whose bytes overflow. */
static float *alloc_aligned(int64_t count, size_t align)
{
    if (count < 0 || (uint64_t)count > (SIZE_MAX - align) / sizeof(float))
        return NULL;
    size_t bytes = ((size_t)count * sizeof(float) + align - 1) / align * align;
    float *block = aligned_alloc(align, bytes ? bytes : align);
    if (block)
        memset(block, 0, bytes);
    return block;
}

/* Allocates `count` floats aligned to 64 bytes, zeroed. */
float *sepconv_alloc_floats(int64_t count)
{
    return alloc_aligned(count, 64);
}

/* Allocates `count` floats, zeroed; a zero count gives NULL and succeeds.
 * A tensor of a page or more starts a page, so input and output always sit
 * at the same offset within a page: a depthwise kernel's speed depends on
 * that offset (its loads following its stores at the same low 12 address
 * bits ran 14x14x512 1.4x slower, Zen 4), and a timing or a tuning sweep
 * must not change with where malloc put the buffers. */
static bool allocate(float **out, int64_t count)
{
    enum { PAGE = 4096 };
    *out = count == 0 ? NULL
           : alloc_aligned(count, count < PAGE / (int64_t)sizeof(float) ? 64 : PAGE);
    return count == 0 || *out != NULL;
}

/* Allocates every tensor a layer needs. */
sepconv_status sepconv_buffers_alloc(const sepconv_layer *layer,
                                     sepconv_buffers *buffers,
                                     sepconv_error *error)
{
    if (!layer || !buffers)
        return sepconv_fail(error, SEPCONV_INVALID, "no layer or no buffers given");
    memset(buffers, 0, sizeof *buffers);
    sepconv_status float_only = sepconv_float_only(layer, "buffers", error);
    if (float_only != SEPCONV_OK)
        return float_only;
    bool ok = allocate(&buffers->input, layer->input_elements) &&
              allocate(&buffers->weights, layer->weight_elements) &&
              allocate(&buffers->bias, layer->bias_elements) &&
              allocate(&buffers->pw_weights, layer->pw_weight_elements) &&
              allocate(&buffers->pw_bias, layer->pw_bias_elements) &&
              allocate(&buffers->output, layer->output_elements);
    if (ok)
        return SEPCONV_OK;
    sepconv_buffers_free(buffers);
    return sepconv_fail(error, SEPCONV_NOMEM,
                        "out of memory for the layer's tensors (%lld input and "
                        "%lld output elements)",
                        (long long)layer->input_elements,
                        (long long)layer->output_elements);
}

/* Fills `count` floats with uniform values in [-1, 1). */
static void fill(float *values, int64_t count, uint64_t *state)
{
    for (int64_t i = 0; i < count; i++)
        values[i] = (float)((double)(sepconv_random_next(state) >> 40) *
                                0x1p-23 - 1.0);
}

/* Fills inputs, weights and biases from one seeded stream. */
void sepconv_buffers_fill_random(const sepconv_layer *layer,
                                 sepconv_buffers *buffers, uint64_t seed)
{
    uint64_t state = seed;
    fill(buffers->input, layer->input_elements, &state);
    fill(buffers->weights, layer->weight_elements, &state);
    fill(buffers->bias, layer->bias_elements, &state);
    fill(buffers->pw_weights, layer->pw_weight_elements, &state);
    fill(buffers->pw_bias, layer->pw_bias_elements, &state);
}

/* The read-only view the kernels take. */
sepconv_tensors sepconv_buffers_tensors(const sepconv_buffers *buffers)
{
    return (sepconv_tensors){buffers->input, buffers->weights, buffers->bias,
                             buffers->pw_weights, buffers->pw_bias};
}

/* Frees every tensor and clears the pointers. */
void sepconv_buffers_free(sepconv_buffers *buffers)
{
    if (!buffers)
        return;
    free(buffers->input);
    free(buffers->weights);
    free(buffers->bias);
    free(buffers->pw_weights);
    free(buffers->pw_bias);
    free(buffers->output);
    memset(buffers, 0, sizeof *buffers);
}

/* Seeded int8 tensors of an int8 layer in one block (see core.h). */
void *sepconv_qtensors_seeded(const sepconv_layer *l, sepconv_qtensors *t, int8_t **output)
{
    const bool sep = l->op == SEPCONV_OP_SEP;
    const int64_t first = sep ? l->mid_c : l->out_c, second = sep ? l->out_c : 0;
    int64_t bytes = 0, ints = 0, total = 0;
    if (!sepconv_add(l->input_elements, l->weight_elements, &bytes) ||
        !sepconv_add(bytes, l->pw_weight_elements, &bytes) ||
        !sepconv_add(bytes, l->output_elements, &bytes) ||
        !sepconv_add(first + second, 1, &ints) ||
        !sepconv_mul(ints, (int64_t)(sizeof(int32_t) + sizeof(float)), &total) ||
        !sepconv_add(total, bytes, &total) || (uint64_t)total > SIZE_MAX)
        return NULL;
    /* (the int32 and float parts first: aligned) */
    char *block = malloc((size_t)total);
    if (!block)
        return NULL;
    int32_t *bias = (int32_t *)(void *)block;
    float *scales = (float *)(void *)(block + ints * (int64_t)sizeof(int32_t));
    int8_t *x = (int8_t *)(block + ints * (int64_t)(sizeof(int32_t) + sizeof(float)));
    int8_t *w = x + l->input_elements, *pw = w + l->weight_elements;
    *output = pw + l->pw_weight_elements;
    uint32_t state = 1; /* (a linear congruential stream: any fixed data will do) */
    for (int64_t i = 0; i < l->input_elements + l->weight_elements + l->pw_weight_elements; i++)
        x[i] = (int8_t)(int)(((state = state * 1103515245u + 12345u) >> 24) - 128);
    for (int64_t c = 0; c < first + second; c++) {
        bias[c] = (int32_t)((state = state * 1103515245u + 12345u) % 4097) - 2048;
        scales[c] = 0.002f * (float)(1 + c % 7);
    }
    *t = (sepconv_qtensors){x, w, sep ? pw : NULL, l->bias ? bias : NULL,
                            sep && l->bias ? bias + first : NULL, scales,
                            sep ? scales + first : NULL};
    return block;
}
