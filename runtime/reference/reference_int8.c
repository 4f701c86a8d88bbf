/*
 * reference_int8.c -- the int8 oracle: TensorFlow Lite's integer kernels
 * (per-channel depthwise, conv and 1x1 conv) as generic loops.  Sums are
 * exact (int64, checked to fit the int32 accumulator TFLite has), each
 * output rescaled once with the channel's fixed-point multiplier.
 */
#include <stdlib.h>

#include "core/core.h"
#include "reference/geometry.h"
#include "reference/quantize.h"

/* One stage: its shape, int8 weights, int32 bias, and the quantization of
 * what it reads and writes. */
typedef struct qstage {
    sepconv_ref_stage g;
    const int8_t *weights;
    const int32_t *bias; /* NULL: none */
    const float *weight_scales;
    float in_scale, out_scale;
    int32_t in_zero, out_zero;
} qstage;

/* Runs one stage; OVERFLOW names the first output whose sum leaves int32. */
static sepconv_status run_qstage(const qstage *s, const int8_t *input, int8_t *output,
                                 sepconv_error *error)
{
    const sepconv_ref_stage *g = &s->g;
    sepconv_ref_strides in = sepconv_ref_tensor_strides(g->layout, g->in_h, g->in_w, g->in_c);
    sepconv_ref_strides out = sepconv_ref_tensor_strides(g->layout, g->out_h, g->out_w, g->out_c);
    int64_t w_ky, w_kx, w_ci, w_co;
    sepconv_ref_weight_strides(g, &w_ky, &w_kx, &w_ci, &w_co);
    int32_t act_min, act_max;
    sepconv_q_activation_range(g->act, s->out_scale, s->out_zero, &act_min, &act_max);
    for (int64_t oc = 0; oc < g->out_c; oc++) {
        sepconv_qmultiplier m = sepconv_channel_multiplier(s->in_scale, s->weight_scales[oc],
                                                           s->out_scale);
        for (int64_t n = 0; n < g->batch; n++)
        for (int64_t oy = 0; oy < g->out_h; oy++)
        for (int64_t ox = 0; ox < g->out_w; ox++) {
            int64_t sum = s->bias ? s->bias[oc] : 0;
            int64_t first, last;
            sepconv_ref_channels(g, oc, &first, &last);
            for (int64_t ky = 0; ky < g->kernel; ky++)
            for (int64_t kx = 0; kx < g->kernel; kx++) {
                /* (padding holds in_zero: its terms are 0) */
                int64_t pixel = sepconv_ref_tap(g, &in, n, oy, ox, ky, kx);
                for (int64_t ic = first; pixel >= 0 && ic < last; ic++) {
                    int64_t x = input[pixel + ic * in.c];
                    int64_t w = s->weights[ky * w_ky + kx * w_kx + ic * w_ci + oc * w_co];
                    sum += (x - s->in_zero) * w;
                }
            }
            if (sum < INT32_MIN || sum > INT32_MAX)
                return sepconv_fail(error, SEPCONV_OVERFLOW,
                                    "the int32 accumulator overflows (%lld) at output "
                                    "(%lld, %lld, %lld, channel %lld)",
                                    (long long)sum, (long long)n, (long long)oy,
                                    (long long)ox, (long long)oc);
            /* clamped before out_zero is added: a rescaled sum near an int32
             * bound cannot overflow (clamp(q + z) = clamp(q, lo - z, hi - z) + z) */
            int32_t q = sepconv_q_rescale((int32_t)sum, m);
            q = q < act_min - s->out_zero ? act_min - s->out_zero
                : q > act_max - s->out_zero ? act_max - s->out_zero : q;
            output[n * out.n + oy * out.h + ox * out.w + oc * out.c] = (int8_t)(q + s->out_zero);
        }
    }
    return SEPCONV_OK;
}

/* Checks that every tensor the layer needs was given. */
static sepconv_status check_qtensors(const sepconv_layer *layer, const sepconv_qtensors *t,
                                     const int8_t *output, sepconv_error *error)
{
    if (!layer || !t || !output)
        return sepconv_fail(error, SEPCONV_INVALID, "no layer, tensors or output given");
    const char *missing = sepconv_ref_missing_tensor(layer, t->input, t->weights, t->bias,
                                                     t->pw_weights, t->pw_bias);
    if (missing)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "the layer needs the %s tensor, but it is NULL", missing);
    return SEPCONV_OK;
}

/* Computes the layer's int8 output; sep through an int8 intermediate. */
sepconv_status sepconv_reference_run_int8(const sepconv_layer *layer, const sepconv_qtensors *t,
                                          int8_t *output, sepconv_error *error)
{
    sepconv_status status = check_qtensors(layer, t, output, error);
    if (status == SEPCONV_OK)
        status = sepconv_quantization_check(layer, t, error);
    if (status != SEPCONV_OK)
        return status;
    const sepconv_quantization *q = &layer->quant;
    bool sep = layer->op == SEPCONV_OP_SEP;
    qstage first = {sepconv_ref_first_stage(layer), t->weights, layer->bias ? t->bias : NULL,
                    t->weight_scales, q->in_scale, sep ? q->mid_scale : q->out_scale,
                    q->in_zero, sep ? q->mid_zero : q->out_zero};
    if (!sep)
        return run_qstage(&first, t->input, output, error);
    if ((uint64_t)layer->mid_elements > SIZE_MAX)
        return sepconv_fail(error, SEPCONV_OVERFLOW,
                            "the intermediate tensor (%lld elements) does not fit in memory",
                            (long long)layer->mid_elements);
    int8_t *mid = malloc(layer->mid_elements ? (size_t)layer->mid_elements : 1);
    if (!mid)
        return sepconv_fail(error, SEPCONV_NOMEM,
                            "out of memory for the %lld-byte intermediate tensor",
                            (long long)layer->mid_elements);
    qstage second = {sepconv_ref_second_stage(layer), t->pw_weights,
                     layer->bias ? t->pw_bias : NULL, t->pw_weight_scales, q->mid_scale,
                     q->out_scale, q->mid_zero, q->out_zero};
    status = run_qstage(&first, t->input, mid, error);
    if (status == SEPCONV_OK)
        status = run_qstage(&second, mid, output, error);
    free(mid);
    return status;
}
