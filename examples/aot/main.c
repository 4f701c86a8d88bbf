/*
 * main.c -- runs the ahead-of-time MobileNet v1 kernels of build/: each
 * layer against the reference (error/tol: the worst error as a fraction of
 * the documented tolerance; at most 1 passes)
 * and its time against the reference's (median of runs).
 */
#include <stdio.h>
#include <stdlib.h>

#include "kernels.h"
#include "sepconv.h"

typedef struct aot_kernel {
    const char *name, *spec;
    sepconv_kernel_fn run;
    sepconv_pack_fn pack;
    long packed_elements, scratch_bytes;
} aot_kernel;

#define KERNEL(name, spec, packed, scratch) {#name, spec, name, name##_pack, packed, scratch},
static const aot_kernel kernels[] = {KERNELS};
#undef KERNEL

/* The median time in seconds of `repeats` calls of the AOT kernel. */
static double time_kernel(const aot_kernel *k, const sepconv_layer *l,
                          const sepconv_buffers *b, const float *packed, void *scratch,
                          int repeats)
{
    double times[64];
    for (int r = 0; r < repeats; r++) {
        double start = sepconv_seconds();
        k->run(b->input, b->weights, b->bias, b->pw_weights, b->pw_bias, packed, b->output,
               scratch, 0, (long)(l->batch * l->out_h));
        times[r] = sepconv_seconds() - start;
    }
    return sepconv_median(times, (size_t)repeats);
}

int main(void)
{
    printf("%-6s %8s %12s %10s %10s %8s\n", "layer", "MMACs", "error/tol",
           "ref ms", "aot ms", "speedup");
    double total_reference = 0, total_kernel = 0;
    int failures = 0;
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
        const aot_kernel *k = &kernels[i];
        sepconv_layer layer;
        sepconv_cost cost;
        sepconv_buffers b;
        sepconv_error error;
        if (sepconv_layer_parse(k->spec, &layer, &error) != SEPCONV_OK ||
            sepconv_cost_compute(&layer, &cost, &error) != SEPCONV_OK ||
            sepconv_buffers_alloc(&layer, &b, &error) != SEPCONV_OK) {
            fprintf(stderr, "%s: %s\n", k->name, error.message);
            return 1;
        }
        sepconv_buffers_fill_random(&layer, &b, 42 + i);
        /* the check: the library's verifier, with guards and split rows */
        sepconv_kernel_code code = {k->run, k->pack, k->packed_elements, k->scratch_bytes};
        sepconv_verify_report report;
        sepconv_status verified = sepconv_verify_kernel(&layer, &code, 7 + i, &report, &error);
        if (verified != SEPCONV_OK) {
            fprintf(stderr, "%s: %s\n", k->name, error.message);
            failures++;
        }
        float *packed = k->packed_elements ? malloc((size_t)k->packed_elements * 4) : NULL;
        void *scratch = k->scratch_bytes ? malloc((size_t)k->scratch_bytes) : NULL;
        if (packed)
            k->pack(b.weights, b.pw_weights, packed);
        sepconv_tensors t = sepconv_buffers_tensors(&b);
        double start = sepconv_seconds();
        sepconv_reference_run(&layer, &t, b.output, &error);
        double reference = sepconv_seconds() - start;
        double kernel = time_kernel(k, &layer, &b, packed, scratch, 15);
        total_reference += reference;
        total_kernel += kernel;
        printf("%-6s %8.2f %12.2e %10.2f %10.3f %7.0fx%s\n", k->name,
               (double)cost.macs / 1e6, report.comparison.worst_ratio, reference * 1e3,
               kernel * 1e3, reference / kernel, verified == SEPCONV_OK ? "" : "  FAILED");
        free(packed);
        free(scratch);
        sepconv_buffers_free(&b);
    }
    printf("%-6s %8s %12s %10.2f %10.3f %7.0fx\n", "total", "", "", total_reference * 1e3,
           total_kernel * 1e3, total_reference / total_kernel);
    if (failures)
        fprintf(stderr, "%d layers failed verification\n", failures);
    return failures ? 1 : 0;
}
