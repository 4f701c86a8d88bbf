/*
 * quantize.h -- int8 arithmetic with TensorFlow Lite's integer semantics
 * (its quantization specification and reference kernels): the fixed-point
 * multiplier and its rounding (the int8 reference of every layer kind is
 * built on them; the public parts are in sepconv.h).
 */
#ifndef SEPCONV_REFERENCE_QUANTIZE_H
#define SEPCONV_REFERENCE_QUANTIZE_H

#include <stdint.h>

#include "sepconv.h"

/* A positive real multiplier as a Q31 significand and a power of two:
 * real ~= significand * 2^(shift - 31), significand in [2^30, 2^31). */
typedef struct sepconv_qmultiplier {
    int32_t significand;
    int shift;
} sepconv_qmultiplier;

/* The multiplier of `real` (finite, >= 0) as TFLite's QuantizeMultiplier
 * makes it: 0 stays 0, below 2^-32 becomes 0, from 2^30 on saturates. */
sepconv_qmultiplier sepconv_quantize_multiplier(double real);

/* sepconv_quantize_multiplier of in_scale * weight_scale / out_scale, the
 * floats widened to double first, as TFLite computes a channel's. */
sepconv_qmultiplier sepconv_channel_multiplier(float in_scale, float weight_scale,
                                               float out_scale);

/* round(a * b / 2^31), ties up (toward +infinity), INT32_MAX for
 * INT32_MIN * INT32_MIN (SaturatingRoundingDoublingHighMul). */
int32_t sepconv_q_doubling_high_mul(int32_t a, int32_t b);

/* x / 2^exponent rounded to nearest, ties away from zero, exponent in
 * [0, 31] (RoundingDivideByPOT). */
int32_t sepconv_q_rounding_shift(int32_t x, int exponent);

/* x times the multiplier, rounded as TFLite's MultiplyByQuantizedMultiplier
 * does; a left shift that would leave int32 (undefined there) saturates. */
int32_t sepconv_q_rescale(int32_t x, sepconv_qmultiplier m);

/* sepconv_qtensors, sepconv_quantization_check, sepconv_reference_run_int8 and
 * sepconv_q_activation_range are public: sepconv.h. */

#endif
