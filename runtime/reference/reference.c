/*
 * reference.c -- generic convolution loops: the oracle every generated kernel
 * is checked against.  Clarity over speed: the layout only changes the index
 * strides; sums are taken in double and rounded once per stage.
 */
#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "reference/geometry.h"

/* One convolution stage (dense or depthwise) and its float weights. */
typedef struct stage {
    sepconv_ref_stage g;
    const float *weights, *bias; /* bias NULL: none */
} stage;

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
    const sepconv_ref_stage *g = &s->g;
    sepconv_ref_strides in = sepconv_ref_tensor_strides(g->layout, g->in_h, g->in_w, g->in_c);
    sepconv_ref_strides out = sepconv_ref_tensor_strides(g->layout, g->out_h, g->out_w, g->out_c);
    int64_t w_ky, w_kx, w_ci, w_co;
    sepconv_ref_weight_strides(g, &w_ky, &w_kx, &w_ci, &w_co);
    for (int64_t n = 0; n < g->batch; n++)
    for (int64_t oy = 0; oy < g->out_h; oy++)
    for (int64_t ox = 0; ox < g->out_w; ox++)
    for (int64_t oc = 0; oc < g->out_c; oc++) {
        double sum = s->bias ? s->bias[oc] : 0.0;
        if (absolute)
            sum = fabs(sum);
        int64_t first, last;
        sepconv_ref_channels(g, oc, &first, &last);
        for (int64_t ky = 0; ky < g->kernel; ky++)
        for (int64_t kx = 0; kx < g->kernel; kx++) {
            int64_t pixel = sepconv_ref_tap(g, &in, n, oy, ox, ky, kx);
            for (int64_t ic = first; pixel >= 0 && ic < last; ic++) {
                int64_t at = pixel + ic * in.c;
                double x = in_float ? in_float[at] : in_double[at];
                double w = s->weights[ky * w_ky + kx * w_kx + ic * w_ci + oc * w_co];
                sum += absolute ? fabs(x) * fabs(w) : x * w;
            }
        }
        int64_t at = n * out.n + oy * out.h + ox * out.w + oc * out.c;
        if (out_double)
            out_double[at] = absolute ? sum : activate(g->act, sum);
        else
            out_float[at] = (float)activate(g->act, sum);
    }
}

/* A layer's first stage over the float tensors. */
static stage first_stage(const sepconv_layer *layer, const sepconv_tensors *t)
{
    return (stage){sepconv_ref_first_stage(layer), t->weights, layer->bias ? t->bias : NULL};
}

/* sep's pointwise stage over the float tensors. */
static stage second_stage(const sepconv_layer *layer, const sepconv_tensors *t)
{
    return (stage){sepconv_ref_second_stage(layer), t->pw_weights,
                   layer->bias ? t->pw_bias : NULL};
}

/* Checks that every tensor the layer needs was given. */
static sepconv_status check_tensors(const sepconv_layer *layer,
                                    const sepconv_tensors *t, const void *output,
                                    sepconv_error *error)
{
    if (!layer || !t || !output)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "no layer, tensors or output given");
    const char *missing = sepconv_ref_missing_tensor(layer, t->input, t->weights, t->bias,
                                                     t->pw_weights, t->pw_bias);
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
    if (status == SEPCONV_OK)
        status = sepconv_float_only(layer, "the float reference", error);
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
