/*
 * reference.c -- generic convolution loops: the oracle every generated kernel
 * is checked against.  Clarity over speed: the layout only changes the index
 * strides; sums are taken in double and rounded once per stage.
 */
#include <math.h>
#include <stdlib.h>

#include "core/core.h"

/* One convolution stage (dense or depthwise) with everything resolved. */
typedef struct stage {
    int64_t batch, in_h, in_w, in_c, out_h, out_w, out_c;
    int64_t kernel, stride, dilation, pad_top, pad_left, multiplier;
    bool depthwise;
    sepconv_layout layout;
    const float *weights, *bias;
    sepconv_activation act;
} stage;

/* Element strides of a 4-d activation tensor. */
typedef struct strides {
    int64_t n, h, w, c;
} strides;

/* Strides of a batch x h x w x c tensor stored in `layout`. */
static strides tensor_strides(sepconv_layout layout, int64_t h, int64_t w,
                              int64_t c)
{
    if (layout == SEPCONV_LAYOUT_NHWC)
        return (strides){h * w * c, w * c, c, 1};
    return (strides){c * h * w, w, 1, h * w};
}

/* Weight strides (ky, kx, input channel, output channel) of a stage. */
static void weight_strides(const stage *s, int64_t *ky, int64_t *kx,
                           int64_t *ci, int64_t *co)
{
    int64_t k = s->kernel;
    if (s->depthwise) { /* nhwc [k][k][m][mult] = [k][k][oc]; nchw [oc][1][k][k] */
        bool nhwc = s->layout == SEPCONV_LAYOUT_NHWC;
        *ky = nhwc ? k * s->out_c : k;
        *kx = nhwc ? s->out_c : 1;
        *ci = 0;
        *co = nhwc ? 1 : k * k;
    } else if (s->layout == SEPCONV_LAYOUT_NHWC) { /* [k][k][m][n] */
        *ky = k * s->in_c * s->out_c;
        *kx = s->in_c * s->out_c;
        *ci = s->out_c;
        *co = 1;
    } else { /* [n][m][k][k] */
        *ky = k;
        *kx = 1;
        *ci = k * k;
        *co = s->in_c * k * k;
    }
}

/* Applies an activation; NaN passes through both relu and relu6. */
static double activate(sepconv_activation act, double x)
{
    if (act == SEPCONV_ACT_NONE)
        return x;
    if (x < 0)
        return 0;
    if (act == SEPCONV_ACT_RELU6 && x > 6)
        return 6;
    return x;
}

/* Runs a stage from float or double input into float or double output.
 * `absolute` takes magnitudes of every term and skips the activation. */
static void run_stage(const stage *s, const float *in_float,
                      const double *in_double, float *out_float,
                      double *out_double, bool absolute)
{
    strides in = tensor_strides(s->layout, s->in_h, s->in_w, s->in_c);
    strides out = tensor_strides(s->layout, s->out_h, s->out_w, s->out_c);
    int64_t w_ky, w_kx, w_ci, w_co;
    weight_strides(s, &w_ky, &w_kx, &w_ci, &w_co);
    for (int64_t n = 0; n < s->batch; n++)
    for (int64_t oy = 0; oy < s->out_h; oy++)
    for (int64_t ox = 0; ox < s->out_w; ox++)
    for (int64_t oc = 0; oc < s->out_c; oc++) {
        double sum = s->bias ? s->bias[oc] : 0.0;
        if (absolute)
            sum = fabs(sum);
        for (int64_t ky = 0; ky < s->kernel; ky++) {
            int64_t iy = oy * s->stride - s->pad_top + ky * s->dilation;
            if (iy < 0 || iy >= s->in_h)
                continue;
            for (int64_t kx = 0; kx < s->kernel; kx++) {
                int64_t ix = ox * s->stride - s->pad_left + kx * s->dilation;
                if (ix < 0 || ix >= s->in_w)
                    continue;
                int64_t first = s->depthwise ? oc / s->multiplier : 0;
                int64_t last = s->depthwise ? first + 1 : s->in_c;
                for (int64_t ic = first; ic < last; ic++) {
                    int64_t at = n * in.n + iy * in.h + ix * in.w + ic * in.c;
                    double x = in_float ? in_float[at] : in_double[at];
                    double w = s->weights[ky * w_ky + kx * w_kx + ic * w_ci +
                                          oc * w_co];
                    sum += absolute ? fabs(x) * fabs(w) : x * w;
                }
            }
        }
        int64_t at = n * out.n + oy * out.h + ox * out.w + oc * out.c;
        if (out_double)
            out_double[at] = absolute ? sum : activate(s->act, sum);
        else
            out_float[at] = (float)activate(s->act, sum);
    }
}

/* The first (or only) stage of a layer: conv, dw, or pw as a 1x1 conv. */
static stage first_stage(const sepconv_layer *layer, const sepconv_tensors *t)
{
    bool depthwise = layer->op == SEPCONV_OP_DW || layer->op == SEPCONV_OP_SEP;
    sepconv_activation act = layer->op == SEPCONV_OP_CONV ? layer->conv_act
                             : layer->op == SEPCONV_OP_PW ? layer->pw_act
                                                          : layer->dw_act;
    return (stage){
        .batch = layer->batch, .in_h = layer->in_h, .in_w = layer->in_w,
        .in_c = layer->m, .out_h = layer->out_h, .out_w = layer->out_w,
        .out_c = depthwise ? layer->mid_c : layer->n, .kernel = layer->kernel,
        .stride = layer->stride, .dilation = layer->dilation,
        .pad_top = layer->pad_top, .pad_left = layer->pad_left,
        .multiplier = layer->multiplier, .depthwise = depthwise,
        .layout = layer->layout, .weights = t->weights,
        .bias = layer->bias ? t->bias : NULL, .act = act};
}

/* The pointwise stage of sep: 1x1, stride 1, over the depthwise output. */
static stage second_stage(const sepconv_layer *layer, const sepconv_tensors *t)
{
    return (stage){
        .batch = layer->batch, .in_h = layer->out_h, .in_w = layer->out_w,
        .in_c = layer->mid_c, .out_h = layer->out_h, .out_w = layer->out_w,
        .out_c = layer->n, .kernel = 1, .stride = 1, .dilation = 1,
        .multiplier = 1, .depthwise = false, .layout = layer->layout,
        .weights = t->pw_weights, .bias = layer->bias ? t->pw_bias : NULL,
        .act = layer->pw_act};
}

/* Checks that every tensor the layer needs was given. */
static sepconv_status check_tensors(const sepconv_layer *layer,
                                    const sepconv_tensors *t, const void *output,
                                    sepconv_error *error)
{
    if (!layer || !t || !output)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "no layer, tensors or output given");
    const char *missing = !t->input ? "input" : !t->weights ? "weights"
                          : layer->bias && !t->bias ? "bias" : NULL;
    if (!missing && layer->op == SEPCONV_OP_SEP)
        missing = !t->pw_weights ? "pw_weights"
                  : layer->bias && !t->pw_bias ? "pw_bias" : NULL;
    if (missing)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "the layer needs the %s tensor, but it is NULL",
                            missing);
    return SEPCONV_OK;
}

/* Runs the reference in value or magnitude mode; sep goes through an
 * intermediate tensor (float, rounded, as a kernel would store it; double
 * for magnitudes). */
static sepconv_status reference(const sepconv_layer *layer,
                                const sepconv_tensors *t, float *out_float,
                                double *out_double, sepconv_error *error)
{
    sepconv_status status = check_tensors(
        layer, t, out_float ? (void *)out_float : (void *)out_double, error);
    if (status != SEPCONV_OK)
        return status;
    bool absolute = out_double != NULL;
    stage first = first_stage(layer, t);
    if (layer->op != SEPCONV_OP_SEP) {
        run_stage(&first, t->input, NULL, out_float, out_double, absolute);
        return SEPCONV_OK;
    }
    int64_t element = absolute ? (int64_t)sizeof(double) : (int64_t)sizeof(float);
    int64_t bytes;
    if (!sepconv_mul(layer->mid_elements, element, &bytes) ||
        (uint64_t)bytes > SIZE_MAX)
        return sepconv_fail(error, SEPCONV_OVERFLOW,
                            "the intermediate tensor (%lld elements) does not "
                            "fit in memory", (long long)layer->mid_elements);
    void *mid = malloc(bytes ? (size_t)bytes : 1);
    if (!mid)
        return sepconv_fail(error, SEPCONV_NOMEM,
                            "out of memory for the %lld-byte intermediate tensor",
                            (long long)bytes);
    stage second = second_stage(layer, t);
    if (absolute) {
        run_stage(&first, t->input, NULL, NULL, mid, true);
        run_stage(&second, NULL, mid, NULL, out_double, true);
    } else {
        run_stage(&first, t->input, NULL, mid, NULL, false);
        run_stage(&second, mid, NULL, out_float, NULL, false);
    }
    free(mid);
    return SEPCONV_OK;
}

/* Computes the layer's output with the generic loops. */
sepconv_status sepconv_reference_run(const sepconv_layer *layer,
                                     const sepconv_tensors *tensors,
                                     float *output, sepconv_error *error)
{
    return reference(layer, tensors, output, NULL, error);
}

/* Computes, per output, the sum of the magnitudes of the terms that make it
 * (the reference run on |input|, |weights|, |bias| without activations).
 * It scales the comparison tolerance (sepconv_compare). */
sepconv_status sepconv_reference_magnitude(const sepconv_layer *layer,
                                           const sepconv_tensors *tensors,
                                           double *magnitude,
                                           sepconv_error *error)
{
    return reference(layer, tensors, NULL, magnitude, error);
}
