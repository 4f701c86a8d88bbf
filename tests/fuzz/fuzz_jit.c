/*
 * fuzz_jit.c -- spec -> generate -> tcc -> run -> verify on small layers the
 * input describes.  A spec the parser refuses is an invalid input, not a
 * finding; for a spec it accepts, every outcome but a kernel (OK) or a named
 * budget (LIMIT) is a finding (abort): a kernel that disagrees with the
 * reference, writes outside its output, leaves an output unwritten, or
 * whose generated C fails to render or compile.
 */
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

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 13)
        return 0;
    char spec[256];
    describe(data, spec, sizeof spec);
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
    options.schedule = schedule;
    options.verify_seed = data[12];
    sepconv_kernel *kernel = NULL;
    sepconv_status status = sepconv_kernel_create(&layer, &options, &kernel, &error);
    /* LIMIT is a budget the library enforces by design (source size, memory,
     * time), named in the message; anything else from a spec the parser
     * accepted is a defect: a schedule or template the generator cannot
     * render, C that tcc cannot compile, a kernel that fails verification */
    if (status != SEPCONV_OK && status != SEPCONV_LIMIT) {
        fprintf(stderr, "finding: %s [%s]: %s: %s\n", spec, schedule,
                sepconv_status_name(status), error.message);
        abort();
    }
    sepconv_kernel_free(kernel);
    return 0;
}
