/*
 * int8.c -- runs the ahead-of-time int8 kernels of build/ (int8.layers,
 * generated for libsepconv's micro-kernels): each checked bit for bit
 * against the int8 reference by the library's verifier, then timed (median
 * of runs) on seeded data with its weights packed once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "int8_kernels.h"
#include "sepconv.h"

typedef struct aot_qkernel {
    const char *name, *spec;
    sepconv_qkernel_fn run;
    sepconv_qpack_fn pack; /* NULL: the kernel packs nothing */
    long packed_elements;
} aot_qkernel;

#define KERNEL(name, spec, pack, packed) {#name, spec, name, pack, packed},
static const aot_qkernel kernels[] = {INT8_KERNELS};
#undef KERNEL

/* Fills n bytes from a seeded LCG (any int8 will do for timing). */
static void fill(int8_t *x, int64_t n, uint32_t seed)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (int8_t)((seed = seed * 1103515245u + 12345u) >> 24);
}

/* The median time in seconds of `repeats` runs of k over every row. */
static double time_kernel(const aot_qkernel *k, const sepconv_layer *l, const int8_t *x,
                          const int8_t *w, const int32_t *bias, const int32_t *packed,
                          const int32_t *requant, int8_t *y, int repeats)
{
    double times[32];
    for (int r = 0; r < repeats; r++) {
        double start = sepconv_seconds();
        k->run(x, w, bias, packed, requant, y, 0, (long)(l->batch * l->out_h));
        times[r] = sepconv_seconds() - start;
    }
    return sepconv_median(times, (size_t)repeats);
}

int main(void)
{
    printf("%-8s %8s %10s %10s\n", "layer", "MMACs", "bits", "aot ms");
    int failures = 0;
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
        const aot_qkernel *k = &kernels[i];
        sepconv_layer l;
        sepconv_cost cost;
        sepconv_error error;
        if (sepconv_layer_parse(k->spec, &l, &error) != SEPCONV_OK ||
            sepconv_cost_compute(&l, &cost, &error) != SEPCONV_OK) {
            fprintf(stderr, "%s: %s\n", k->name, error.message);
            return 1;
        }
        /* the check: the library's verifier (seeded full-range data, extreme
         * values, split rows, guards), tolerance 0 */
        sepconv_qkernel_code code = {k->run, k->pack, k->packed_elements};
        sepconv_verify_report report;
        const sepconv_status verified =
            sepconv_verify_int8_kernel(&l, &code, 11 + i, &report, &error);
        if (verified != SEPCONV_OK) {
            fprintf(stderr, "%s: %s\n", k->name, error.message);
            failures++;
        }
        int8_t *x = malloc((size_t)l.input_elements), *w = malloc((size_t)l.weight_elements);
        int8_t *y = malloc((size_t)l.output_elements);
        int32_t *bias = calloc((size_t)l.out_c, sizeof *bias);
        int32_t *requant = malloc(2 * (size_t)l.out_c * sizeof *requant);
        float *scales = malloc((size_t)l.out_c * sizeof *scales);
        int32_t *packed = k->packed_elements ? malloc((size_t)k->packed_elements * 4) : NULL;
        if (!x || !w || !y || !bias || !requant || !scales ||
            (k->packed_elements && !packed)) {
            fprintf(stderr, "%s: out of memory\n", k->name);
            return 1;
        }
        fill(x, l.input_elements, 1 + (uint32_t)i);
        fill(w, l.weight_elements, 100 + (uint32_t)i);
        for (int64_t c = 0; c < l.out_c; c++)
            scales[c] = 0.002f * (float)(1 + c % 7);
        if (sepconv_int8_requant(&l, scales, requant, &error) != SEPCONV_OK) {
            fprintf(stderr, "%s: %s\n", k->name, error.message);
            return 1;
        }
        if (packed)
            k->pack(w, bias, packed);
        const double seconds = time_kernel(k, &l, x, w, bias, packed, requant, y, 15);
        printf("%-8s %8.2f %10s %10.3f\n", k->name, (double)cost.macs / 1e6,
               verified == SEPCONV_OK ? "exact" : "FAILED", seconds * 1e3);
        free(x);
        free(w);
        free(y);
        free(bias);
        free(requant);
        free(scales);
        free(packed);
    }
    if (failures)
        fprintf(stderr, "%d int8 layers failed verification\n", failures);
    return failures ? 1 : 0;
}
