/*
 * fuzz_jit.c -- spec -> generate -> tcc -> run -> verify on small layers the
 * input describes.  A spec the parser refuses is an invalid input, not a
 * finding; for a spec it accepts, every outcome but a kernel (OK) or a named
 * budget (LIMIT) is a finding (abort): a kernel that disagrees with the
 * reference, writes outside its output, leaves an output unwritten, or
 * whose generated C fails to render or compile.  From 16 bytes on, an odd
 * 14th byte makes the layer int8 (its quantization from bytes 14-16), whose
 * kernels are verified bit for bit.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sepconv.h"

/* Writes the spec the first 12 input bytes describe (keys per op). */
static void describe(const unsigned char *d, char *spec, size_t capacity)
{
    static const char *const ops[] = {"conv", "dw", "pw", "sep"};
    static const char *const pads[] = {"same", "valid", "1", "0:1:2:0"};
    static const char *const acts[] = {"none", "relu", "relu6"};
    const char *op = ops[d[0] % 4];
    size_t used = (size_t)snprintf(spec, capacity, "op=%s h=%d w=%d m=%d", op, 1 + d[1] % 9,
                                   1 + d[2] % 9, 1 + d[3] % 9);
    if (strcmp(op, "dw") != 0)
        used += (size_t)snprintf(spec + used, capacity - used, " n=%d", 1 + d[4] % 9);
    if (strcmp(op, "pw") != 0)
        used += (size_t)snprintf(spec + used, capacity - used, " dk=%d dilation=%d",
                                 1 + d[5] % 4, 1 + d[7] % 2);
    if (strcmp(op, "dw") == 0 || strcmp(op, "sep") == 0)
        used += (size_t)snprintf(spec + used, capacity - used, " mult=%d", 1 + d[8] % 2);
    snprintf(spec + used, capacity - used,
             " stride=%d pad=%s batch=%d layout=%s bias=%d act=%s", 1 + d[6] % 3,
             pads[d[9] % 4], 1 + d[10] % 2, d[11] & 1 ? "nchw" : "nhwc", (d[11] >> 1) & 1,
             acts[(d[11] >> 2) % 3]);
}

/* Appends the int8 quantization bytes 13-15 describe: scales from fine to
 * coarse, zero points anywhere in [-128, 127]. */
static void quantize(const unsigned char *d, bool sep, char *spec, size_t capacity)
{
    static const char *const scales[] = {"0.003", "0.02", "0.1", "0.6", "4"};
    size_t used = strlen(spec);
    used += (size_t)snprintf(spec + used, capacity - used,
                             " dtype=int8 in_scale=%s in_zero=%d out_scale=%s out_zero=%d",
                             scales[(d[13] >> 1) % 5], (int)d[14] - 128,
                             scales[(d[13] >> 4) % 5], (int)d[15] - 128);
    if (sep)
        snprintf(spec + used, capacity - used, " mid_scale=%s mid_zero=%d",
                 scales[(d[14] >> 5) % 5], (int)(d[15] ^ d[14]) - 128);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 13)
        return 0;
    char spec[384];
    describe(data, spec, sizeof spec);
    const bool int8 = size >= 16 && (data[13] & 1);
    if (int8)
        quantize(data, data[0] % 4 == 3, spec, sizeof spec);
    sepconv_layer layer;
    sepconv_error error;
    sepconv_status parsed = sepconv_layer_parse(spec, &layer, &error);
    if (parsed == SEPCONV_INVALID || parsed == SEPCONV_OVERFLOW)
        return 0; /* e.g. a kernel over the padded input: refused, fine */
    if (parsed != SEPCONV_OK) {
        fprintf(stderr, "finding: parsing %s: %s: %s\n", spec, sepconv_status_name(parsed),
                error.message);
        abort();
    }
    static const char *const unrolls[] = {"none", "row", "full"};
    char schedule[64];
    snprintf(schedule, sizeof schedule, "unroll=%s", unrolls[data[12] % 3]);
    sepconv_kernel_options options = sepconv_kernel_defaults(); /* tcc, verified */
    options.schedule = int8 ? NULL : schedule; /* int8 code has no knobs yet */
    options.verify_seed = data[12];
    sepconv_kernel *kernel = NULL;
    sepconv_status status = sepconv_kernel_create(&layer, &options, &kernel, &error);
    /* LIMIT is a budget the library enforces by design (source size, memory,
     * time), named in the message; anything else from a spec the parser
     * accepted is a defect: a schedule or template the generator cannot
     * render, C that tcc cannot compile, a kernel that fails verification */
    if (status != SEPCONV_OK && status != SEPCONV_LIMIT) {
        fprintf(stderr, "finding: %s [%s]: %s: %s\n", spec,
                options.schedule ? options.schedule : "the default schedule",
                sepconv_status_name(status), error.message);
        abort();
    }
    sepconv_kernel_free(kernel);
    return 0;
}
