/*
 * verify.c -- runs a generated kernel beside the reference and compares:
 * seeded data, guard zones around the output, NaN-filled output so a skipped
 * element shows, row ranges split as threads would split them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define GUARD_FLOATS 64
#define GUARD_VALUE 1234.5678f /* a canary no kernel computes by accident */

/* Allocates `count` floats with guard zones; returns the inside. */
static float *guarded_alloc(int64_t count)
{
    float *block = malloc(((size_t)count + 2 * GUARD_FLOATS) * sizeof(float));
    if (!block)
        return NULL;
    for (int i = 0; i < GUARD_FLOATS; i++)
        block[i] = block[GUARD_FLOATS + count + i] = GUARD_VALUE;
    for (int64_t i = 0; i < count; i++)
        block[GUARD_FLOATS + i] = NAN;
    return block + GUARD_FLOATS;
}

/* Counts guard floats that no longer hold the canary. */
static int64_t guard_damage(const float *inside, int64_t count)
{
    int64_t damaged = 0;
    for (int i = 0; i < GUARD_FLOATS; i++) {
        damaged += inside[-GUARD_FLOATS + i] != GUARD_VALUE;
        damaged += inside[count + i] != GUARD_VALUE;
    }
    return damaged;
}

/* Verifies a kernel against the reference on seeded data. */
sepconv_status sepconv_verify_kernel(const sepconv_layer *layer,
                                     const sepconv_kernel_code *kernel,
                                     uint64_t seed, sepconv_verify_report *report,
                                     sepconv_error *error)
{
    if (!layer || !kernel || !kernel->run || !report)
        return sepconv_fail(error, SEPCONV_INVALID, "verify: missing arguments");
    memset(report, 0, sizeof *report);
    sepconv_buffers buffers;
    sepconv_status status = sepconv_buffers_alloc(layer, &buffers, error);
    if (status != SEPCONV_OK)
        return status;
    sepconv_buffers_fill_random(layer, &buffers, seed);
    sepconv_tensors tensors = sepconv_buffers_tensors(&buffers);
    int64_t count = layer->output_elements;
    float *output = guarded_alloc(count);
    double *magnitude = malloc((size_t)count * sizeof(double));
    float *packed = kernel->packed_elements
                        ? malloc((size_t)kernel->packed_elements * sizeof(float))
                        : NULL;
    void *scratch = kernel->scratch_bytes ? malloc((size_t)kernel->scratch_bytes)
                                          : NULL;
    if (!output || !magnitude || (kernel->packed_elements && !packed) ||
        (kernel->scratch_bytes && !scratch))
        status = sepconv_fail(error, SEPCONV_NOMEM, "verify: out of memory");
    if (status == SEPCONV_OK)
        status = sepconv_reference_run(layer, &tensors, buffers.output, error);
    if (status == SEPCONV_OK)
        status = sepconv_reference_magnitude(layer, &tensors, magnitude, error);
    if (status == SEPCONV_OK) {
        if (packed && kernel->pack)
            kernel->pack(buffers.weights, buffers.pw_weights, packed);
        long rows = (long)(layer->batch * layer->out_h);
        long split = rows > 1 ? 1 + (long)(seed % (uint64_t)(rows - 1)) : rows;
        kernel->run(buffers.input, buffers.weights, buffers.bias, buffers.pw_weights,
                    buffers.pw_bias, packed, output, scratch, 0, split);
        kernel->run(buffers.input, buffers.weights, buffers.bias, buffers.pw_weights,
                    buffers.pw_bias, packed, output, scratch, split, rows);
        report->guard_damage = guard_damage(output, count);
        for (int64_t i = 0; i < count; i++)
            report->untouched += isnan(output[i]) && !isnan(buffers.output[i]);
        status = sepconv_compare(layer, buffers.output, output, magnitude,
                                 &report->comparison, error);
        if (report->guard_damage)
            status = sepconv_fail(error, SEPCONV_MISMATCH,
                                  "the kernel wrote outside its output: %lld guard "
                                  "floats around the %lld-element output changed",
                                  (long long)report->guard_damage, (long long)count);
        else if (report->untouched && status == SEPCONV_MISMATCH)
            sepconv_error_prefix(error, "%lld outputs were never written",
                                 (long long)report->untouched);
    }
    if (output)
        free(output - GUARD_FLOATS);
    free(magnitude);
    free(packed);
    free(scratch);
    sepconv_buffers_free(&buffers);
    return status;
}
