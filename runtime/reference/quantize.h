/*
 * quantize.h -- int8 arithmetic with TensorFlow Lite's integer semantics
 * (its quantization specification and reference kernels): the fixed-point
 * multiplier, its rounding, the activation bounds, and the int8 reference
 * of every layer kind built on them.
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

/* round(a * b / 2^31), ties up (toward +infinity), INT32_MAX for
 * INT32_MIN * INT32_MIN (SaturatingRoundingDoublingHighMul). */
int32_t sepconv_q_doubling_high_mul(int32_t a, int32_t b);

/* x / 2^exponent rounded to nearest, ties away from zero, exponent in
 * [0, 31] (RoundingDivideByPOT). */
int32_t sepconv_q_rounding_shift(int32_t x, int exponent);

/* x times the multiplier, rounded as TFLite's MultiplyByQuantizedMultiplier
 * does; a left shift that would leave int32 (undefined there) saturates. */
int32_t sepconv_q_rescale(int32_t x, sepconv_qmultiplier m);

/* The int8 bounds an activation clamps to, from the output's scale and zero
 * point (CalculateActivationRangeQuantized): none [-128, 127], relu
 * [max(-128, zero), 127], relu6 up to min(127, zero + round(6 / scale)). */
void sepconv_q_activation_range(sepconv_activation act, float scale, int32_t zero,
                                int32_t *min, int32_t *max);

/* sepconv_qtensors, sepconv_quantization_check and sepconv_reference_run_int8
 * are public: sepconv.h. */

#endif
