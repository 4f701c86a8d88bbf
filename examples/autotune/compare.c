/*
 * compare.c -- times each MobileNet v1 layer's default and tuned AOT
 * kernels against each other (interleaved, median of rounds), after
 * verifying both, and prints the speedup per layer and in total.
 */
#include <stdio.h>
#include <stdlib.h>

#include "pairs.h"
#include "sepconv.h"

typedef struct pair {
    const char *name, *spec;
    sepconv_kernel_code code[2]; /* default, tuned */
} pair;

#define PAIR(name, spec, D, T)                                                   \
    {#name, spec,                                                                \
     {{name##_default, name##_default_pack, D##_PACKED_ELEMENTS, D##_SCRATCH_BYTES}, \
      {name##_tuned, name##_tuned_pack, T##_PACKED_ELEMENTS, T##_SCRATCH_BYTES}}},
static const pair pairs[] = {PAIRS};
#undef PAIR

int main(void)
{
    enum { ROUNDS = 21 };
    double total[2] = {0, 0};
    int failures = 0;
    printf("%-6s %12s %12s %8s\n", "layer", "default ms", "tuned ms", "speedup");
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const pair *p = &pairs[i];
        sepconv_layer layer;
        sepconv_buffers b;
        sepconv_error error;
        if (sepconv_layer_parse(p->spec, &layer, &error) != SEPCONV_OK ||
            sepconv_buffers_alloc(&layer, &b, &error) != SEPCONV_OK) {
            fprintf(stderr, "%s: %s\n", p->name, error.message);
            return 1;
        }
        sepconv_buffers_fill_random(&layer, &b, 7);
        long rows = (long)(layer.batch * layer.out_h);
        float *packed[2];
        void *scratch[2];
        for (int k = 0; k < 2; k++) {
            sepconv_verify_report report;
            if (sepconv_verify_kernel(&layer, &p->code[k], 3, &report, &error) != SEPCONV_OK) {
                fprintf(stderr, "%s (%s): %s\n", p->name, k ? "tuned" : "default",
                        error.message);
                failures++;
            }
            packed[k] = malloc((size_t)p->code[k].packed_elements * sizeof(float) + 1);
            scratch[k] = malloc((size_t)p->code[k].scratch_bytes + 1);
            p->code[k].pack(b.weights, b.pw_weights, packed[k]);
        }
        double times[2][ROUNDS];
        for (int round = 0; round < ROUNDS; round++)
            for (int k = 0; k < 2; k++) { /* interleaved: noise hits both */
                double start = sepconv_seconds();
                p->code[k].run(b.input, b.weights, b.bias, b.pw_weights, b.pw_bias,
                               packed[k], b.output, scratch[k], 0, rows);
                times[k][round] = sepconv_seconds() - start;
            }
        for (int k = 0; k < 2; k++) {
            free(packed[k]);
            free(scratch[k]);
        }
        double median[2];
        for (int k = 0; k < 2; k++) {
            median[k] = sepconv_median(times[k], ROUNDS) * 1e3;
            total[k] += median[k];
        }
        printf("%-6s %12.3f %12.3f %7.2fx\n", p->name, median[0], median[1],
               median[0] / median[1]);
        sepconv_buffers_free(&b);
    }
    printf("%-6s %12.3f %12.3f %7.2fx\n", "total", total[0], total[1], total[0] / total[1]);
    return failures ? 1 : 0;
}
