/*
 * verify_int8.c -- runs a generated int8 kernel beside the int8 reference
 * and compares bit for bit: TFLite's integer arithmetic is exact, so the
 * tolerance is 0.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define GUARD_BYTES 64
#define GUARD_BYTE 0x5a /* a canary; the outputs start as its complement */

/* The data a kernel is checked on, in order. */
typedef enum qpass {
    QPASS_RANDOM,  /* every tensor seeded uniform over its whole range */
    QPASS_EXTREME, /* inputs and weights -128 or 127: the largest sums */
    QPASS_ZERO,    /* every input in_zero: bias, rescale and clamp only */
    QPASS_COUNT
} qpass;

static const char *const qpass_names[QPASS_COUNT] = {
    "on random full-range data", "on extreme values (-128 and 127)",
    "on an input of in_zero"};

/* A seeded int8 value over the whole range. */
static int8_t random_int8(uint64_t *state)
{
    return (int8_t)(int)((sepconv_random_next(state) >> 56) - 128);
}

/* Fills the tensors of one pass (weights and scales from the seed alone). */
static void fill_pass(const sepconv_layer *l, qpass pass, uint64_t seed, int8_t *input,
                      int8_t *weights, int32_t *bias, float *scales)
{
    uint64_t state = seed;
    for (int64_t i = 0; i < l->input_elements; i++) {
        int8_t random = random_int8(&state);
        input[i] = pass == QPASS_ZERO ? (int8_t)l->quant.in_zero
                   : pass == QPASS_EXTREME ? (random < 0 ? -128 : 127) : random;
    }
    for (int64_t i = 0; i < l->weight_elements; i++) {
        int8_t random = random_int8(&state);
        weights[i] = pass == QPASS_EXTREME ? (random < 0 ? -128 : 127) : random;
    }
    /* biases of a few thousand and scales over two decades: multipliers
     * from below 2^-10 to above 1, so both shifts and the clamps occur */
    for (int64_t i = 0; i < l->bias_elements; i++)
        bias[i] = (int32_t)(sepconv_random_next(&state) % 20001) - 10000;
    for (int64_t c = 0; c < l->out_c; c++)
        scales[c] = (float)(0.001 + 0.2 * (double)(sepconv_random_next(&state) >> 11) /
                                        9007199254740992.0);
}

/* Runs one pass and compares; the first differing output is named. */
static sepconv_status run_qpass(const sepconv_layer *l, const sepconv_qkernel_code *kernel,
                                qpass pass, uint64_t seed, int8_t *buffers[4], int32_t *bias,
                                int32_t *table, int32_t *packed, float *scales,
                                sepconv_verify_report *report, sepconv_error *error)
{
    int8_t *input = buffers[0], *weights = buffers[1], *expected = buffers[2];
    int8_t *output = buffers[3];
    fill_pass(l, pass, seed, input, weights, bias, scales);
    sepconv_status status = sepconv_int8_requant(l, scales, table, error);
    sepconv_qtensors t = {input, weights, NULL, l->bias ? bias : NULL, NULL, scales, NULL};
    if (status == SEPCONV_OK)
        status = sepconv_reference_run_int8(l, &t, expected, error);
    if (status != SEPCONV_OK)
        return status;
    const int64_t count = l->output_elements;
    memset(output - GUARD_BYTES, GUARD_BYTE, GUARD_BYTES);
    memset(output + count, GUARD_BYTE, GUARD_BYTES);
    memset(output, ~GUARD_BYTE & 0xff, (size_t)count);
    long rows = (long)(l->batch * l->out_h);
    long split = rows > 1 ? 1 + (long)(seed % (uint64_t)(rows - 1)) : rows;
    const int32_t *b = l->bias ? bias : NULL;
    if (packed) /* the pass's own weights, packed as the runtime packs them */
        kernel->pack(weights, b, packed);
    kernel->run(input, weights, b, packed, table, output, 0, split);
    kernel->run(input, weights, b, packed, table, output, split, rows);
    report->guard_damage = 0;
    for (int i = 0; i < GUARD_BYTES; i++)
        report->guard_damage += ((unsigned char)output[-1 - i] != GUARD_BYTE) +
                                ((unsigned char)output[count + i] != GUARD_BYTE);
    if (report->guard_damage)
        return sepconv_fail(error, SEPCONV_MISMATCH,
                            "the int8 kernel wrote outside its output %s: %lld guard bytes "
                            "around the %lld-byte output changed", qpass_names[pass],
                            (long long)report->guard_damage, (long long)count);
    report->comparison.checked = count;
    for (int64_t i = 0; i < count; i++)
        if (output[i] != expected[i])
            return sepconv_fail(error, SEPCONV_MISMATCH,
                                "the int8 kernel differs from the int8 reference %s: "
                                "output element %lld is %d, the reference's %d (int8 "
                                "results must be bit-exact)", qpass_names[pass],
                                (long long)i, output[i], expected[i]);
    return SEPCONV_OK;
}

/* Verifies an int8 kernel against the int8 reference on every pass. */
sepconv_status sepconv_verify_int8_kernel(const sepconv_layer *layer,
                                          const sepconv_qkernel_code *kernel, uint64_t seed,
                                          sepconv_verify_report *report, sepconv_error *error)
{
    if (!layer || !kernel || !kernel->run || !report)
        return sepconv_fail(error, SEPCONV_INVALID, "no layer, kernel or report given");
    if (kernel->packed_elements < 0 || (kernel->packed_elements > 0 && !kernel->pack))
        return sepconv_fail(error, SEPCONV_INVALID, "the int8 kernel packs %lld elements "
                            "but has no packing function (expected both or neither)",
                            (long long)kernel->packed_elements);
    memset(report, 0, sizeof *report);
    if (layer->dtype != SEPCONV_DTYPE_INT8 || layer->op == SEPCONV_OP_SEP)
        return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                            "int8 verification is for int8 conv, dw and pw kernels so far");
    const int64_t counts[4] = {layer->input_elements, layer->weight_elements,
                               layer->output_elements, layer->output_elements};
    int8_t *blocks[4] = {NULL}, *buffers[4];
    int32_t *bias = NULL, *table = NULL, *packed = NULL;
    float *scales = NULL;
    sepconv_status status = SEPCONV_OK;
    for (int i = 0; i < 4 && status == SEPCONV_OK; i++) {
        if ((uint64_t)counts[i] > SIZE_MAX - 2 * GUARD_BYTES)
            status = sepconv_fail(error, SEPCONV_OVERFLOW, "the int8 tensors do not fit "
                                                           "in memory");
        else if (!(blocks[i] = malloc((size_t)counts[i] + 2 * GUARD_BYTES)))
            status = sepconv_fail(error, SEPCONV_NOMEM, "out of memory for int8 "
                                                        "verification");
        else
            buffers[i] = blocks[i] + GUARD_BYTES;
    }
    if (status == SEPCONV_OK) {
        size_t channels = (size_t)layer->out_c + 1;
        bias = malloc(channels * sizeof *bias);
        table = malloc(2 * channels * sizeof *table);
        scales = malloc(channels * sizeof *scales);
        if (kernel->packed_elements > 0 &&
            (uint64_t)kernel->packed_elements <= SIZE_MAX / sizeof *packed)
            packed = malloc((size_t)kernel->packed_elements * sizeof *packed);
        if (!bias || !table || !scales || (kernel->packed_elements > 0 && !packed))
            status = sepconv_fail(error, SEPCONV_NOMEM, "out of memory for int8 "
                                                        "verification");
    }
    for (int pass = 0; status == SEPCONV_OK && pass < QPASS_COUNT; pass++)
        status = run_qpass(layer, kernel, (qpass)pass, seed + (uint64_t)pass, buffers, bias,
                           table, packed, scales, report, error);
    for (int i = 0; i < 4; i++)
        free(blocks[i]);
    free(bias);
    free(table);
    free(packed);
    free(scales);
    return status;
}
