/*
 * compare.c -- compares a kernel's output with the reference's, within a
 * tolerance derived from the reduction length (see sepconv_compare).
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/core.h"

#define UNIT_ROUNDOFF 0x1p-24 /* u for IEEE single precision */

/* gamma(K) = K*u / (1 - K*u): the relative error bound of a K-term sum. */
double sepconv_tolerance_gamma(int64_t reduction_length)
{
    double ku = (double)reduction_length * UNIT_ROUNDOFF;
    return ku < 1.0 ? ku / (1.0 - ku) : INFINITY;
}

/* How many products each output of the layer sums. */
int64_t sepconv_reduction_length(const sepconv_layer *layer)
{
    int64_t taps = layer->kernel * layer->kernel;
    switch (layer->op) {
    case SEPCONV_OP_CONV: return taps * layer->m;
    case SEPCONV_OP_DW: return taps;
    case SEPCONV_OP_PW: return layer->m;
    case SEPCONV_OP_SEP: return taps + layer->mid_c;
    }
    return 0;
}

/* Splits a flat output index into (n, h, w, c) for the layer's layout. */
static void coordinates(const sepconv_layer *layer, int64_t index,
                        sepconv_comparison *result)
{
    int64_t h = layer->out_h, w = layer->out_w, c = layer->out_c;
    if (layer->layout == SEPCONV_LAYOUT_NHWC) {
        result->first_c = index % c;
        result->first_w = index / c % w;
        result->first_h = index / c / w % h;
        result->first_n = index / c / w / h;
    } else {
        result->first_w = index % w;
        result->first_h = index / w % h;
        result->first_c = index / w / h % c;
        result->first_n = index / w / h / c;
    }
}

/* Whether `actual` is within tolerance of `expected`; NaN matches NaN only,
 * an infinity only itself, and equal values always match.  A tolerance
 * that is not a number (an infinite magnitude met a zero weight) bounds
 * nothing, so only those placements are checked there. */
static bool close_enough(float expected, float actual, double tolerance)
{
    if (isnan(expected) || isnan(actual))
        return isnan(expected) && isnan(actual);
    if (isinf(expected) || isinf(actual))
        return expected == actual;
    if (expected == actual || isnan(tolerance))
        return true;
    return fabs((double)actual - (double)expected) <= tolerance;
}

/*
 * Compares outputs element by element and records the first mismatch.
 *
 * Tolerance.  A float dot product of K terms, in any order, with or without
 * FMA, is within gamma(K) * sum|terms| of the exact value, where
 * gamma(K) = K*u / (1 - K*u) and u = 2^-24 (Higham, Accuracy and Stability of
 * Numerical Algorithms, 3.1).  The reference is exact but for one final
 * rounding (u * |expected|).  So output i passes when
 *
 *   |actual - expected| <= gamma(K + 1) * magnitude[i] + u * |expected|
 *                          + K * FLT_TRUE_MIN
 *
 * with K the reduction length of the op (conv dk*dk*m, dw dk*dk, pw m,
 * sep dk*dk + m; the +1 is the bias), magnitude[i] from
 * sepconv_reference_magnitude, and the last term the underflow allowance for
 * subnormal products.  NaN matches only NaN; an infinity only itself.
 */
sepconv_status sepconv_compare(const sepconv_layer *layer,
                               const float *expected, const float *actual,
                               const double *magnitude,
                               sepconv_comparison *result, sepconv_error *error)
{
    if (!layer || !expected || !actual || !magnitude || !result)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "compare needs a layer, both outputs, the "
                            "magnitudes and a result");
    memset(result, 0, sizeof *result);
    int64_t length = sepconv_reduction_length(layer);
    double gamma = sepconv_tolerance_gamma(length + 1);
    double underflow = (double)length * FLT_TRUE_MIN;
    for (int64_t i = 0; i < layer->output_elements; i++) {
        double tolerance = gamma * magnitude[i] +
                           UNIT_ROUNDOFF * fabs((double)expected[i]) + underflow;
        bool ok = close_enough(expected[i], actual[i], tolerance);
        if (isfinite(expected[i]) && isfinite(actual[i])) {
            double difference = fabs((double)actual[i] - (double)expected[i]);
            if (difference > result->max_abs_error)
                result->max_abs_error = difference;
            if (tolerance > 0 && difference / tolerance > result->worst_ratio)
                result->worst_ratio = difference / tolerance;
            if (expected[i] != 0 &&
                difference / fabs((double)expected[i]) > result->max_rel_error)
                result->max_rel_error = difference / fabs((double)expected[i]);
        }
        result->checked++;
        if (ok)
            continue;
        if (result->mismatches++ == 0) {
            result->first_index = i;
            result->first_expected = expected[i];
            result->first_actual = actual[i];
            result->first_tolerance = tolerance;
            coordinates(layer, i, result);
        }
    }
    if (result->mismatches == 0)
        return SEPCONV_OK;
    return sepconv_fail(error, SEPCONV_MISMATCH,
                        "%lld of %lld outputs differ from the reference; the "
                        "first at (n=%lld, h=%lld, w=%lld, c=%lld): expected "
                        "%.9g, got %.9g, tolerance %.3g",
                        (long long)result->mismatches, (long long)result->checked,
                        (long long)result->first_n, (long long)result->first_h,
                        (long long)result->first_w, (long long)result->first_c,
                        (double)result->first_expected,
                        (double)result->first_actual, result->first_tolerance);
}
