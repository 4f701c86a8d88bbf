/*
 * int8.c -- the int8 benchmark: each separable layer of a model file as its
 * two int8 stages (dw, then pw) through sepconv (tcc + auto, verified bit
 * for bit when made) beside XNNPACK's per-channel int8 convolution (QC8),
 * oneDNN's s8 convolution (when built with it, bench/int8_onednn.c) and
 * sepconv's own float kernel of the same stage, one thread, medians of
 * interleaved rounds.  Each peer's outputs are checked against sepconv's:
 * XNNPACK's within 1 (it requantizes in float, not with TFLite's
 * fixed-point arithmetic), oneDNN's within onednn_bound (it also halves
 * its weights on CPUs without VNNI); the largest differences are printed,
 * and the run fails if an output lies outside its bound.
 *
 *   bench-int8 [--model FILE] [--rounds N]
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xnnpack.h>

#include "int8_onednn.h"
#include "sepconv.h"

/* The quantization every stage gets: any valid one times the same. */
#define QUANT "dtype=int8 in_scale=0.05 in_zero=-7 out_scale=0.1 out_zero=3"

/* One stage's buffers: int8 for sepconv and the peers, float for sepconv's
 * float kernel; the weights in sepconv's layout and in XNNPACK's. */
typedef struct stage {
    sepconv_layer layer, float_layer;
    int8_t *input, *weights, *xnn_weights, *output, *xnn_output, *dnnl_output;
    int32_t *dnnl_bound; /* per output, how far oneDNN's may be from sepconv's */
    int32_t *bias;
    float *scales, *finput, *fweights, *fbias, *foutput;
    sepconv_kernel *kernel, *float_kernel;
    xnn_operator_t op;
    int8_onednn *dnnl; /* NULL when oneDNN is absent or refused the stage */
} stage;

/* The implementations of a stage, in the order of the table's columns. */
enum { SEPCONV_INT8, XNNPACK, ONEDNN, SEPCONV_FLOAT, IMPLEMENTATIONS };

static uint64_t state = 0x2545f4914f6cdd1du;

/* A pseudo-random integer in [lo, hi]. */
static int64_t next(int64_t lo, int64_t hi)
{
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return lo + (int64_t)(state % (uint64_t)(hi - lo + 1));
}

/* Runs one stage's implementation `which` once. */
static void run_stage(stage *s, int which)
{
    if (which == SEPCONV_INT8)
        sepconv_kernel_run_int8(s->kernel, s->input, s->output, NULL);
    else if (which == XNNPACK)
        xnn_run_operator(s->op, NULL);
    else if (which == ONEDNN)
        int8_onednn_run(s->dnnl);
    else
        sepconv_kernel_run(s->float_kernel, s->finput, s->foutput, NULL);
}

/* Times `runs` calls of one stage's implementation `which`: seconds a call. */
static double time_stage(stage *s, int which, int runs)
{
    double start = sepconv_seconds();
    for (int r = 0; r < runs; r++)
        run_stage(s, which);
    return (sepconv_seconds() - start) / runs;
}

/* oneDNN's bound, per output: a weight off by at most one (its halved
 * weights without VNNI) moves the output by at most the sum of |x - in_zero|
 * over the inputs it reads, times the channel's multiplier in_scale *
 * weight_scale / out_scale; and its float rounding by one more. */
static void onednn_bound(stage *s)
{
    const sepconv_layer *l = &s->layer;
    const int dw = l->op == SEPCONV_OP_DW;
    const int64_t c_out = l->out_c, in_c = l->m;
    for (int64_t oy = 0; oy < l->out_h; oy++)
        for (int64_t ox = 0; ox < l->out_w; ox++)
            for (int64_t c = 0; c < c_out; c++) {
                double sum = 0; /* of |x - in_zero| over what output c reads */
                for (int64_t ky = 0; ky < (dw ? l->kernel : 1); ky++)
                    for (int64_t kx = 0; kx < (dw ? l->kernel : 1); kx++) {
                        const int64_t iy = oy * l->stride - l->pad_top + ky * l->dilation;
                        const int64_t ix = ox * l->stride - l->pad_left + kx * l->dilation;
                        if (iy < 0 || iy >= l->in_h || ix < 0 || ix >= l->in_w)
                            continue;
                        const int8_t *x = s->input + (iy * l->in_w + ix) * in_c;
                        for (int64_t ic = dw ? c : 0; ic < (dw ? c + 1 : in_c); ic++)
                            sum += abs(x[ic] - l->quant.in_zero);
                    }
                const double multiplier = (double)l->quant.in_scale * s->scales[c] /
                                          l->quant.out_scale;
                s->dnnl_bound[(oy * l->out_w + ox) * c_out + c] =
                    (int32_t)ceil(sum * multiplier) + 1;
            }
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
    s->dnnl_output = malloc((size_t)out);
    s->dnnl_bound = malloc((size_t)out * sizeof *s->dnnl_bound);
    s->bias = malloc((size_t)c * sizeof *s->bias);
    s->scales = malloc((size_t)c * sizeof *s->scales);
    s->finput = malloc((size_t)in * sizeof(float));
    s->fweights = malloc((size_t)w * sizeof(float));
    s->fbias = malloc((size_t)c * sizeof(float));
    s->foutput = malloc((size_t)out * sizeof(float));
    if (!s->input || !s->weights || !s->xnn_weights || !s->output || !s->xnn_output ||
        !s->dnnl_output || !s->dnnl_bound || !s->bias || !s->scales || !s->finput ||
        !s->fweights || !s->fbias || !s->foutput) {
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
    char why[256];
    s->dnnl = int8_onednn_make(l, s->input, s->weights, s->bias, s->scales, s->dnnl_output,
                               why, sizeof why);
    if (!s->dnnl) {
        fprintf(stderr, "bench-int8: no oneDNN column for %s: %s\n", spec, why);
        return 1;
    }
    onednn_bound(s);
    return 1;
}

static void free_stage(stage *s)
{
    sepconv_kernel_free(s->kernel);
    sepconv_kernel_free(s->float_kernel);
    if (s->op)
        xnn_delete_operator(s->op);
    int8_onednn_free(s->dnnl);
    free(s->input), free(s->weights), free(s->xnn_weights), free(s->output);
    free(s->xnn_output), free(s->dnnl_output), free(s->dnnl_bound), free(s->bias);
    free(s->scales), free(s->finput), free(s->fweights), free(s->fbias), free(s->foutput);
}

/* Medians of `rounds` interleaved samples of a stage's implementations
 * (NaN for an absent one), each sample at least 2 ms of calls. */
static void measure(stage *s, int rounds, double median[IMPLEMENTATIONS])
{
    int runs = 1;
    while (runs < 1000000 && time_stage(s, SEPCONV_INT8, runs) * runs < 2e-3)
        runs *= 2;
    double samples[IMPLEMENTATIONS][64];
    for (int r = 0; r < rounds; r++)
        for (int which = 0; which < IMPLEMENTATIONS; which++)
            if (which != ONEDNN || s->dnnl)
                samples[which][r] = time_stage(s, which, runs);
    for (int which = 0; which < IMPLEMENTATIONS; which++)
        median[which] = which != ONEDNN || s->dnnl
                            ? sepconv_median(samples[which], (size_t)rounds)
                            : NAN;
}

/* The largest |sepconv - peer| over a stage's outputs after one run of
 * each (-1 for an absent peer), and how many outputs lie outside the
 * peer's bound: 1 for XNNPACK (float rounding), onednn_bound for oneDNN. */
static int largest_difference(stage *s, int peer, int64_t *outside)
{
    *outside = 0;
    if (peer == ONEDNN && !s->dnnl)
        return -1;
    run_stage(s, SEPCONV_INT8);
    run_stage(s, peer);
    const int8_t *theirs = peer == XNNPACK ? s->xnn_output : s->dnnl_output;
    int most = 0;
    for (int64_t i = 0; i < s->layer.output_elements; i++) {
        int d = abs(s->output[i] - theirs[i]);
        most = d > most ? d : most;
        *outside += d > (peer == XNNPACK ? 1 : s->dnnl_bound[i]);
    }
    return most;
}

/* The faster peer's time, ignoring an absent (NaN) one. */
static double best_peer(const double *times)
{
    return times[ONEDNN] < times[XNNPACK] ? times[ONEDNN] : times[XNNPACK];
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
    /* oneDNN runs on OpenMP, whose runtime read OMP_NUM_THREADS when it was
     * loaded: one thread, like the others, the way it offers now */
    void (*omp_set_num_threads)(int) =
        (void (*)(int))(uintptr_t)dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (omp_set_num_threads)
        omp_set_num_threads(1);
    printf("int8 (TFLite semantics) vs XNNPACK QC8, oneDNN s8 and sepconv float, 1 thread, "
           "medians of %d\nCPU: %s (%s); sepconv: tcc + %s\n",
           rounds, e.cpu, e.features, e.target);
    printf("%-8s %-5s %9s %9s %9s %9s %8s %8s %5s %5s  %s\n", "layer", "stage", "int8 ms",
           "xnn ms", "dnnl ms", "float ms", "vs peer", "vs float", "d xnn", "d dnn",
           "oneDNN impl");
    char line[512];
    double total[2][IMPLEMENTATIONS] = {{0}};
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
            double median[IMPLEMENTATIONS];
            if (!make_stage(specs[k], &s)) {
                free_stage(&s);
                status = 1;
                continue;
            }
            measure(&s, rounds, median);
            int64_t xnn_outside, dnnl_outside;
            const int xnn_diff = largest_difference(&s, XNNPACK, &xnn_outside);
            const int dnnl_diff = largest_difference(&s, ONEDNN, &dnnl_outside);
            printf("%-8s %-5s %9.3f %9.3f %9.3f %9.3f %7.2fx %7.2fx %5d %5d  %s\n", l.name,
                   k ? "pw" : "dw", median[SEPCONV_INT8] * 1e3, median[XNNPACK] * 1e3,
                   median[ONEDNN] * 1e3, median[SEPCONV_FLOAT] * 1e3,
                   median[SEPCONV_INT8] / best_peer(median),
                   median[SEPCONV_INT8] / median[SEPCONV_FLOAT],
                   xnn_diff, dnnl_diff, s.dnnl ? int8_onednn_impl(s.dnnl) : "-");
            if (xnn_outside || dnnl_outside) {
                fprintf(stderr, "bench-int8: %s %s: %lld of XNNPACK's outputs differ from "
                        "sepconv's by more than 1, %lld of oneDNN's by more than its bound "
                        "(largest differences %d, %d)\n", l.name, k ? "pw" : "dw",
                        (long long)xnn_outside, (long long)dnnl_outside, xnn_diff, dnnl_diff);
                status = 1;
            }
            for (int which = 0; which < IMPLEMENTATIONS; which++)
                total[k][which] += median[which];
            free_stage(&s);
        }
    }
    fclose(f);
    /* a peer's total is the sum of its stages: NaN if any stage lacked it */
    for (int k = 0; k < 2; k++)
        printf("%-8s %-5s %9.3f %9.3f %9.3f %9.3f %7.2fx %7.2fx\n", "total", k ? "pw" : "dw",
               total[k][SEPCONV_INT8] * 1e3, total[k][XNNPACK] * 1e3, total[k][ONEDNN] * 1e3,
               total[k][SEPCONV_FLOAT] * 1e3, total[k][SEPCONV_INT8] / best_peer(total[k]),
               total[k][SEPCONV_INT8] / total[k][SEPCONV_FLOAT]);
    return status;
}
