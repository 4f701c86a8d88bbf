/*
 * int8.c -- the int8 benchmark: each separable layer of a model file as its
 * two int8 stages (dw, then pw) through sepconv (tcc + auto, verified bit
 * for bit when made) beside XNNPACK's per-channel int8 convolution (QC8)
 * and sepconv's own float kernel of the same stage, one thread, medians of
 * interleaved rounds.  XNNPACK requantizes in float, not with TFLite's
 * fixed-point arithmetic, so its outputs may differ from sepconv's by one:
 * the largest difference is printed, as a check that both compute the same
 * layer.
 *
 *   bench-int8 [--model FILE] [--rounds N]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xnnpack.h>

#include "sepconv.h"

/* The quantization every stage gets: any valid one times the same. */
#define QUANT "dtype=int8 in_scale=0.05 in_zero=-7 out_scale=0.1 out_zero=3"

/* One stage's buffers: int8 for sepconv and XNNPACK, float for sepconv's
 * float kernel; the weights in sepconv's layout and in XNNPACK's. */
typedef struct stage {
    sepconv_layer layer, float_layer;
    int8_t *input, *weights, *xnn_weights, *output, *xnn_output;
    int32_t *bias;
    float *scales, *finput, *fweights, *fbias, *foutput;
    sepconv_kernel *kernel, *float_kernel;
    xnn_operator_t op;
} stage;

static uint64_t state = 0x2545f4914f6cdd1du;

/* A pseudo-random integer in [lo, hi]. */
static int64_t next(int64_t lo, int64_t hi)
{
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return lo + (int64_t)(state % (uint64_t)(hi - lo + 1));
}

/* Times `runs` calls of one stage's implementation `which` (0 sepconv int8,
 * 1 XNNPACK, 2 sepconv float): seconds a call. */
static double time_stage(stage *s, int which, int runs)
{
    double start = sepconv_seconds();
    for (int r = 0; r < runs; r++) {
        if (which == 0)
            sepconv_kernel_run_int8(s->kernel, s->input, s->output, NULL);
        else if (which == 1)
            xnn_run_operator(s->op, NULL);
        else
            sepconv_kernel_run(s->float_kernel, s->finput, s->foutput, NULL);
    }
    return (sepconv_seconds() - start) / runs;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Makes one stage from its spec: random data, the three implementations. */
static int make_stage(const char *spec, stage *s)
{
    char text[512];
    sepconv_error error;
    snprintf(text, sizeof text, "%s " QUANT, spec);
    if (sepconv_layer_parse(text, &s->layer, &error) != SEPCONV_OK ||
        sepconv_layer_parse(spec, &s->float_layer, &error) != SEPCONV_OK) {
        fprintf(stderr, "bench-int8: %s\n", error.message);
        return 0;
    }
    const sepconv_layer *l = &s->layer;
    const int dw = l->op == SEPCONV_OP_DW;
    const int64_t in = l->input_elements, out = l->output_elements, w = l->weight_elements;
    const int64_t c = l->out_c;
    s->input = malloc((size_t)in);
    s->weights = malloc((size_t)w);
    s->xnn_weights = malloc((size_t)w);
    s->output = malloc((size_t)out);
    s->xnn_output = malloc((size_t)out);
    s->bias = malloc((size_t)c * sizeof *s->bias);
    s->scales = malloc((size_t)c * sizeof *s->scales);
    s->finput = malloc((size_t)in * sizeof(float));
    s->fweights = malloc((size_t)w * sizeof(float));
    s->fbias = malloc((size_t)c * sizeof(float));
    s->foutput = malloc((size_t)out * sizeof(float));
    if (!s->input || !s->weights || !s->xnn_weights || !s->output || !s->xnn_output ||
        !s->bias || !s->scales || !s->finput || !s->fweights || !s->fbias || !s->foutput) {
        fprintf(stderr, "bench-int8: out of memory for %s\n", spec);
        return 0;
    }
    for (int64_t i = 0; i < in; i++) {
        s->input[i] = (int8_t)next(-128, 127);
        s->finput[i] = (float)s->input[i] / 64;
    }
    for (int64_t i = 0; i < w; i++) {
        s->weights[i] = (int8_t)next(-127, 127);
        s->fweights[i] = (float)s->weights[i] / 512;
    }
    for (int64_t i = 0; i < c; i++) {
        s->bias[i] = (int32_t)next(-5000, 5000);
        s->fbias[i] = (float)s->bias[i] / 10000;
        s->scales[i] = 0.002f + 0.001f * (float)next(0, 10);
    }
    /* XNNPACK's weights: dw [k][k][c] as sepconv's; pw [n][m] for [m][n] */
    for (int64_t i = 0; i < w; i++)
        s->xnn_weights[i] = dw ? s->weights[i]
                               : s->weights[(i % l->m) * l->n + i / l->m];
    sepconv_kernel_options options = sepconv_kernel_defaults(); /* tcc, auto, verified */
    sepconv_qtensors q = {.weights = s->weights, .bias = s->bias, .weight_scales = s->scales};
    sepconv_tensors f = {.weights = s->fweights, .bias = s->fbias};
    if (sepconv_kernel_create(l, &options, &s->kernel, &error) != SEPCONV_OK ||
        sepconv_kernel_set_qweights(s->kernel, &q, &error) != SEPCONV_OK ||
        sepconv_kernel_create(&s->float_layer, &options, &s->float_kernel, &error) !=
            SEPCONV_OK ||
        sepconv_kernel_set_weights(s->float_kernel, &f, &error) != SEPCONV_OK) {
        fprintf(stderr, "bench-int8: %s: %s\n", spec, error.message);
        return 0;
    }
    int32_t act_min, act_max;
    sepconv_q_activation_range(dw ? l->dw_act : l->pw_act, l->quant.out_scale,
                               l->quant.out_zero, &act_min, &act_max);
    const uint32_t k = (uint32_t)l->kernel;
    if (xnn_create_convolution2d_nhwc_qc8(
            (uint32_t)l->pad_top, (uint32_t)l->pad_right, (uint32_t)l->pad_bottom,
            (uint32_t)l->pad_left, k, k, (uint32_t)l->stride, (uint32_t)l->stride, 1, 1,
            dw ? (uint32_t)l->m : 1, dw ? 1 : (size_t)l->m, dw ? 1 : (size_t)l->n,
            (size_t)l->m, (size_t)c, (int8_t)l->quant.in_zero, l->quant.in_scale, s->scales,
            s->xnn_weights, s->bias, (int8_t)l->quant.out_zero, l->quant.out_scale,
            (int8_t)act_min, (int8_t)act_max, dw ? XNN_FLAG_DEPTHWISE_CONVOLUTION : 0,
            &s->op) != xnn_status_success ||
        xnn_setup_convolution2d_nhwc_qc8(s->op, 1, (size_t)l->in_h, (size_t)l->in_w,
                                         s->input, s->xnn_output, NULL) !=
            xnn_status_success) {
        fprintf(stderr, "bench-int8: XNNPACK refused %s\n", spec);
        return 0;
    }
    return 1;
}

static void free_stage(stage *s)
{
    sepconv_kernel_free(s->kernel);
    sepconv_kernel_free(s->float_kernel);
    if (s->op)
        xnn_delete_operator(s->op);
    free(s->input), free(s->weights), free(s->xnn_weights), free(s->output);
    free(s->xnn_output), free(s->bias), free(s->scales), free(s->finput);
    free(s->fweights), free(s->fbias), free(s->foutput);
}

/* Medians of `rounds` interleaved samples of a stage's three
 * implementations, each sample at least 2 ms of calls. */
static void measure(stage *s, int rounds, double median[3])
{
    int runs = 1;
    while (runs < 1000000 && time_stage(s, 0, runs) * runs < 2e-3)
        runs *= 2;
    double samples[3][64];
    for (int r = 0; r < rounds; r++)
        for (int which = 0; which < 3; which++)
            samples[which][r] = time_stage(s, which, runs);
    for (int which = 0; which < 3; which++) {
        qsort(samples[which], (size_t)rounds, sizeof(double), by_value);
        median[which] = samples[which][rounds / 2];
    }
}

/* The largest |sepconv - XNNPACK| over a stage's outputs, after one run of each. */
static int largest_difference(stage *s)
{
    sepconv_kernel_run_int8(s->kernel, s->input, s->output, NULL);
    xnn_run_operator(s->op, NULL);
    int most = 0;
    for (int64_t i = 0; i < s->layer.output_elements; i++) {
        int d = abs(s->output[i] - s->xnn_output[i]);
        most = d > most ? d : most;
    }
    return most;
}

int main(int argc, char **argv)
{
    const char *model = "examples/mobilenet_v1.layers";
    int rounds = 11;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench-int8 [--model FILE] [--rounds N (1-63)]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > 63) {
        fprintf(stderr, "bench-int8: --rounds takes 1 to 63, not %d\n", rounds);
        return 2;
    }
    FILE *f = fopen(model, "r");
    if (!f) {
        fprintf(stderr, "bench-int8: cannot open '%s'\n", model);
        return 1;
    }
    if (xnn_initialize(NULL) != xnn_status_success) {
        fprintf(stderr, "bench-int8: xnn_initialize failed\n");
        fclose(f);
        return 1;
    }
    sepconv_kernel_options defaults = sepconv_kernel_defaults();
    sepconv_environment e;
    if (sepconv_environment_get(&defaults, &e, NULL) != SEPCONV_OK)
        snprintf(e.cpu, sizeof e.cpu, "unknown"), e.features[0] = e.target[0] = 0;
    printf("int8 (TFLite semantics) vs XNNPACK QC8 and sepconv float, 1 thread, medians of %d\n"
           "CPU: %s (%s); sepconv: tcc + %s\n", rounds, e.cpu, e.features, e.target);
    printf("%-8s %-5s %10s %10s %10s %9s %9s %6s\n", "layer", "stage", "int8 ms", "xnn ms",
           "float ms", "vs xnn", "vs float", "diff");
    char line[512];
    double total[2][3] = {{0}};
    int status = 0;
    while (fgets(line, sizeof line, f)) {
        sepconv_layer l;
        if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line) ||
            sepconv_layer_parse(line, &l, NULL) != SEPCONV_OK || l.op != SEPCONV_OP_SEP)
            continue;
        char specs[2][256];
        snprintf(specs[0], sizeof specs[0],
                 "op=dw h=%lld w=%lld m=%lld dk=%lld stride=%lld bias=1 act=relu6 layout=nhwc",
                 (long long)l.in_h, (long long)l.in_w, (long long)l.m, (long long)l.kernel,
                 (long long)l.stride);
        snprintf(specs[1], sizeof specs[1],
                 "op=pw h=%lld w=%lld m=%lld n=%lld bias=1 act=relu6 layout=nhwc",
                 (long long)l.out_h, (long long)l.out_w, (long long)l.mid_c, (long long)l.n);
        for (int k = 0; k < 2; k++) {
            stage s = {0};
            double median[3];
            if (!make_stage(specs[k], &s)) {
                free_stage(&s);
                status = 1;
                continue;
            }
            measure(&s, rounds, median);
            printf("%-8s %-5s %10.3f %10.3f %10.3f %8.2fx %8.2fx %6d\n", l.name,
                   k ? "pw" : "dw", median[0] * 1e3, median[1] * 1e3, median[2] * 1e3,
                   median[0] / median[1], median[0] / median[2], largest_difference(&s));
            for (int which = 0; which < 3; which++)
                total[k][which] += median[which];
            free_stage(&s);
        }
    }
    fclose(f);
    for (int k = 0; k < 2; k++)
        printf("%-8s %-5s %10.3f %10.3f %10.3f %8.2fx %8.2fx\n", "total", k ? "pw" : "dw",
               total[k][0] * 1e3, total[k][1] * 1e3, total[k][2] * 1e3,
               total[k][0] / total[k][1], total[k][0] / total[k][2]);
    return status;
}
