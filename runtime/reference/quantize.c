/*
 * quantize.c -- TensorFlow Lite's fixed-point requantization: the Q31
 * multiplier of a real scale, its two roundings, the checks of a layer's
 * scales, a layer's requantization table (the activation bounds, which
 * the generator needs too, are layer/layer.c's).
 * Everything is defined C: shifts of negative values and overflows that
 * C leaves undefined are written out.
 */
#include <math.h>

#include "core/core.h"
#include "reference/quantize.h"

/* The Q31 significand and power of two of a real multiplier. */
sepconv_qmultiplier sepconv_quantize_multiplier(double real)
{
    if (!(real > 0) || !isfinite(real))
        return (sepconv_qmultiplier){0, 0};
    int shift;
    double fraction = frexp(real, &shift); /* real = fraction * 2^shift, [0.5, 1) */
    int64_t significand = llround(fraction * 2147483648.0);
    if (significand == INT64_C(2147483648)) { /* rounded up to 1.0 */
        significand /= 2;
        shift++;
    }
    if (shift < -31)
        return (sepconv_qmultiplier){0, 0};
    if (shift > 30) /* past what a left shift of an int32 can carry */
        return (sepconv_qmultiplier){INT32_MAX, 30};
    return (sepconv_qmultiplier){(int32_t)significand, shift};
}

/* A channel's multiplier as TFLite computes its effective scale: the float
 * scales widened to double, then multiplied and divided. */
sepconv_qmultiplier sepconv_channel_multiplier(float in_scale, float weight_scale,
                                               float out_scale)
{
    return sepconv_quantize_multiplier((double)in_scale * (double)weight_scale /
                                       (double)out_scale);
}

/* round(a * b / 2^31), ties up (-0.5 gives 0), saturating the one overflow. */
int32_t sepconv_q_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
        return INT32_MAX;
    int64_t product = (int64_t)a * b;
    int64_t nudge = product >= 0 ? INT64_C(1) << 30 : 1 - (INT64_C(1) << 30);
    /* C division truncates toward zero, as the original's does */
    return (int32_t)((product + nudge) / (INT64_C(1) << 31));
}

/* x >> exponent as an arithmetic shift (floor of x / 2^exponent). */
static int32_t shift_right(int32_t x, int exponent)
{
    return x < 0 ? ~(~x >> exponent) : x >> exponent;
}

/* x / 2^exponent, to nearest, ties away from zero. */
int32_t sepconv_q_rounding_shift(int32_t x, int exponent)
{
    int32_t mask = (int32_t)((INT64_C(1) << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return shift_right(x, exponent) + (remainder > threshold ? 1 : 0);
}

/* x times significand * 2^(shift - 31), rounded twice as TFLite does. */
int32_t sepconv_q_rescale(int32_t x, sepconv_qmultiplier m)
{
    int left = m.shift > 0 ? m.shift : 0, right = m.shift > 0 ? 0 : -m.shift;
    int64_t shifted = (int64_t)x * (INT64_C(1) << left);
    int32_t in = shifted > INT32_MAX ? INT32_MAX
                 : shifted < INT32_MIN ? INT32_MIN : (int32_t)shifted;
    return sepconv_q_rounding_shift(sepconv_q_doubling_high_mul(in, m.significand), right);
}

/* Checks one activation scale and zero point. */
static sepconv_status check_pair(const char *scale_name, float scale, const char *zero_name,
                                 int32_t zero, sepconv_error *error)
{
    if (!(scale > 0) || !isfinite(scale))
        return sepconv_fail(error, SEPCONV_INVALID,
                            "%s=%g: a scale must be finite and > 0", scale_name, scale);
    if (zero < -128 || zero > 127)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "%s=%d: a zero point must be in [-128, 127]", zero_name, zero);
    return SEPCONV_OK;
}

/* Checks a stage's weight scales, one per output channel. */
static sepconv_status check_weight_scales(const char *name, const float *scales,
                                          int64_t count, sepconv_error *error)
{
    if (!scales)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "the layer needs %s (%lld per-channel scales), but it is NULL",
                            name, (long long)count);
    for (int64_t c = 0; c < count; c++)
        if (!(scales[c] > 0) || !isfinite(scales[c]))
            return sepconv_fail(error, SEPCONV_INVALID,
                                "%s[%lld]=%g: a weight scale must be finite and > 0", name,
                                (long long)c, scales[c]);
    return SEPCONV_OK;
}

/* Checks a layer's quantization and weight scales. */
sepconv_status sepconv_quantization_check(const sepconv_layer *layer, const sepconv_qtensors *t,
                                          sepconv_error *error)
{
    if (!layer || !t)
        return sepconv_fail(error, SEPCONV_INVALID, "no layer or no tensors given");
    if (layer->dtype != SEPCONV_DTYPE_INT8)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "the int8 reference takes dtype=int8 layers, and this one is "
                            "float32");
    const sepconv_quantization *q = &layer->quant;
    bool sep = layer->op == SEPCONV_OP_SEP;
    sepconv_status status = check_pair("in_scale", q->in_scale, "in_zero", q->in_zero, error);
    if (status == SEPCONV_OK && sep)
        status = check_pair("mid_scale", q->mid_scale, "mid_zero", q->mid_zero, error);
    if (status == SEPCONV_OK)
        status = check_pair("out_scale", q->out_scale, "out_zero", q->out_zero, error);
    int64_t first = layer->op == SEPCONV_OP_DW || sep ? layer->mid_c : layer->n;
    if (status == SEPCONV_OK)
        status = check_weight_scales("weight_scales", t->weight_scales, first, error);
    if (status == SEPCONV_OK && sep)
        status = check_weight_scales("pw_weight_scales", t->pw_weight_scales, layer->n, error);
    return status;
}

/* The requantization table of an int8 conv, dw or pw layer. */
sepconv_status sepconv_int8_requant(const sepconv_layer *layer, const float *weight_scales,
                                    int32_t *table, sepconv_error *error)
{
    if (!layer || !weight_scales || !table)
        return sepconv_fail(error, SEPCONV_INVALID, "no layer, weight scales or table given");
    if (layer->dtype != SEPCONV_DTYPE_INT8 || layer->op == SEPCONV_OP_SEP)
        return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                            "the requantization table is for int8 conv, dw and pw layers "
                            "(a sep's stages have one each)");
    sepconv_qtensors scales = {.weight_scales = weight_scales};
    sepconv_status status = sepconv_quantization_check(layer, &scales, error);
    for (int64_t c = 0; status == SEPCONV_OK && c < layer->out_c; c++) {
        sepconv_qmultiplier m = sepconv_channel_multiplier(
            layer->quant.in_scale, weight_scales[c], layer->quant.out_scale);
        table[c] = m.significand;
        table[layer->out_c + c] = m.shift;
    }
    return status;
}
