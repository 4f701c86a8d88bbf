/*
 * verify.c -- runs a generated kernel beside the reference and compares:
 * seeded data, guard zones around the output, NaN-filled output so a skipped
 * element shows, row ranges split as threads would split them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

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

/* Counts guard floats that no longer hold the canary; *first is the
 * offset of the first damaged one from the buffer's start (negative:
 * before it; count or more: past its end). */
static int64_t guard_damage(const float *inside, int64_t count, int64_t *first)
{
    int64_t damaged = 0;
    for (int i = 0; i < 2 * GUARD_FLOATS; i++) {
        int64_t offset = i < GUARD_FLOATS ? i - GUARD_FLOATS : count + i - GUARD_FLOATS;
        if (inside[offset] != GUARD_VALUE && damaged++ == 0)
            *first = offset;
    }
    return damaged;
}

/* The inputs a kernel is checked on, in order. */
typedef enum verify_pass {
    PASS_RANDOM,   /* seeded uniform values in [-1, 1) */
    PASS_ZEROS,    /* zero input: bias and activation only */
    PASS_LARGE,    /* input scaled by 2^40 */
    PASS_TINY,     /* input scaled by 2^-100: products near the subnormals */
    PASS_NAN,      /* one NaN in the input: exactly its windows turn NaN */
    PASS_COUNT
} verify_pass;

static const char *const pass_names[PASS_COUNT] = {
    "on random data", "on a zero input", "on inputs scaled by 2^40",
    "on inputs scaled by 2^-100", "with a NaN in the input"};

/* Everything the passes share. */
typedef struct verify_state {
    const sepconv_layer *layer;
    const sepconv_kernel_code *kernel;
    sepconv_buffers buffers;
    float *random_input, *output, *packed, *scratch;
    int64_t scratch_floats;
    double *magnitude;
} verify_state;

/* Sets the input for a pass from the random one. */
static void prepare_input(verify_state *v, verify_pass pass, uint64_t seed)
{
    int64_t count = v->layer->input_elements;
    float *input = v->buffers.input;
    float scale = pass == PASS_ZEROS ? 0.0f : pass == PASS_LARGE ? 0x1p40f
                  : pass == PASS_TINY ? 0x1p-100f : 1.0f;
    for (int64_t i = 0; i < count; i++)
        input[i] = v->random_input[i] * scale;
    if (pass == PASS_NAN)
        input[(int64_t)(seed % (uint64_t)count)] = NAN;
}

/* Runs one pass: reference, kernel over two row ranges, compare. */
static sepconv_status run_pass(verify_state *v, uint64_t seed,
                               sepconv_verify_report *report, sepconv_error *error)
{
    const sepconv_layer *layer = v->layer;
    const sepconv_kernel_code *kernel = v->kernel;
    sepconv_buffers *b = &v->buffers;
    sepconv_tensors tensors = sepconv_buffers_tensors(b);
    int64_t count = layer->output_elements;
    sepconv_status status = sepconv_reference_run(layer, &tensors, b->output, error);
    if (status == SEPCONV_OK)
        status = sepconv_reference_magnitude(layer, &tensors, v->magnitude, error);
    if (status != SEPCONV_OK)
        return status;
    for (int64_t i = 0; i < count; i++)
        v->output[i] = NAN;
    long rows = (long)(layer->batch * layer->out_h);
    long split = rows > 1 ? 1 + (long)(seed % (uint64_t)(rows - 1)) : rows;
    kernel->run(b->input, b->weights, b->bias, b->pw_weights, b->pw_bias, v->packed,
                v->output, v->scratch, 0, split);
    kernel->run(b->input, b->weights, b->bias, b->pw_weights, b->pw_bias, v->packed,
                v->output, v->scratch, split, rows);
    int64_t first = 0, scratch_first = 0;
    report->guard_damage = guard_damage(v->output, count, &first);
    int64_t scratch_damage = v->scratch ? guard_damage(v->scratch, v->scratch_floats,
                                                       &scratch_first) : 0;
    report->untouched = 0;
    for (int64_t i = 0; i < count; i++)
        report->untouched += isnan(v->output[i]) && !isnan(b->output[i]);
    status = sepconv_compare(layer, b->output, v->output, v->magnitude,
                             &report->comparison, error);
    if (report->guard_damage)
        return sepconv_fail(error, SEPCONV_MISMATCH,
                            "the kernel wrote outside its output: %lld guard floats "
                            "around the %lld-element output changed, the first at "
                            "offset %lld", (long long)report->guard_damage,
                            (long long)count, (long long)first);
    if (scratch_damage)
        return sepconv_fail(error, SEPCONV_MISMATCH,
                            "the kernel wrote outside its scratch: %lld guard floats "
                            "around the %lld-byte scratch changed, the first at float "
                            "offset %lld", (long long)scratch_damage,
                            (long long)(v->scratch_floats * 4), (long long)scratch_first);
    if (report->untouched && status == SEPCONV_MISMATCH)
        sepconv_error_prefix(error, "%lld outputs were never written",
                             (long long)report->untouched);
    return status;
}

/* Verifies a kernel against the reference.  Runs it beside the reference
 * (output rows split into two calls, as threads would), with guard zones
 * around the output and the output pre-filled with NaN, and compares within
 * the documented tolerance (sepconv_compare): on seeded random data, a zero
 * input, inputs scaled by 2^40 and by 2^-100, and a NaN in the input, which
 * must reach exactly the outputs whose window sees it.  MISMATCH if any
 * output differs, a guard was overwritten or an output was never written;
 * the message names the pass. */
sepconv_status sepconv_verify_kernel(const sepconv_layer *layer,
                                     const sepconv_kernel_code *kernel,
                                     uint64_t seed, sepconv_verify_report *report,
                                     sepconv_error *error)
{
    if (!layer || !kernel || !kernel->run || !report)
        return sepconv_fail(error, SEPCONV_INVALID, "verify: missing arguments");
    memset(report, 0, sizeof *report);
    verify_state v = {.layer = layer, .kernel = kernel};
    sepconv_status status = sepconv_buffers_alloc(layer, &v.buffers, error);
    if (status != SEPCONV_OK)
        return status;
    sepconv_buffers_fill_random(layer, &v.buffers, seed);
    int64_t count = layer->output_elements;
    v.output = guarded_alloc(count);
    v.magnitude = malloc((size_t)count * sizeof(double));
    v.random_input = malloc((size_t)layer->input_elements * sizeof(float));
    v.packed = kernel->packed_elements
                   ? malloc((size_t)kernel->packed_elements * sizeof(float)) : NULL;
    v.scratch_floats = (kernel->scratch_bytes + 3) / 4;
    v.scratch = kernel->scratch_bytes ? guarded_alloc(v.scratch_floats) : NULL;
    if (!v.output || !v.magnitude || !v.random_input ||
        (kernel->packed_elements && !v.packed) || (kernel->scratch_bytes && !v.scratch))
        status = sepconv_fail(error, SEPCONV_NOMEM, "verify: out of memory");
    if (status == SEPCONV_OK) {
        memcpy(v.random_input, v.buffers.input,
               (size_t)layer->input_elements * sizeof(float));
        if (v.packed && kernel->pack)
            kernel->pack(v.buffers.weights, v.buffers.pw_weights, v.packed);
    }
    sepconv_verify_report first = {0};
    for (int pass = 0; pass < PASS_COUNT && status == SEPCONV_OK; pass++) {
        prepare_input(&v, (verify_pass)pass, seed + (uint64_t)pass);
        status = run_pass(&v, seed + (uint64_t)pass, report, error);
        if (status != SEPCONV_OK)
            sepconv_error_prefix(error, "%s", pass_names[pass]);
        if (pass == PASS_RANDOM)
            first = *report;
    }
    if (status == SEPCONV_OK)
        *report = first; /* the random pass speaks for the error figures */
    if (v.output)
        free(v.output - GUARD_FLOATS);
    free(v.magnitude);
    free(v.random_input);
    free(v.packed);
    if (v.scratch)
        free(v.scratch - GUARD_FLOATS);
    sepconv_buffers_free(&v.buffers);
    return status;
}
