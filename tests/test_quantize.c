/*
 * test_quantize.c -- the int8 oracle: TFLite's fixed-point rounding at its
 * corners, worked by hand, and the int8 reference against hand-computed
 * layers and against an independent check written from the specification.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"
#include "core/core.h"
#include "reference/quantize.h"

/* Asserts a multiplier's significand and shift. */
static void assert_multiplier(double real, int32_t significand, int shift)
{
    sepconv_qmultiplier m = sepconv_quantize_multiplier(real);
    ck_assert_msg(m.significand == significand && m.shift == shift,
                  "%.17g: (%d, %d), expected (%d, %d)", real, m.significand, m.shift,
                  significand, shift);
}

START_TEST(multipliers_are_q31_significands_and_shifts)
{
    assert_multiplier(0.5, 1 << 30, 0);          /* 0.5 * 2^0 */
    assert_multiplier(1.0, 1 << 30, 1);          /* 0.5 * 2^1 */
    assert_multiplier(0.75, 1610612736, 0);      /* 0.75 * 2^31 */
    assert_multiplier(0.1, 1717986918, -3);      /* 0.8 * 2^-3; 0.8 * 2^31 = ...918.4 */
    assert_multiplier(3.0, 1610612736, 2);       /* 0.75 * 2^2 */
    /* a fraction that rounds up to 1.0: halved, the shift one more */
    assert_multiplier(1.0 - ldexp(1, -40), 1 << 30, 1);
    assert_multiplier(0.0, 0, 0);
    assert_multiplier(ldexp(1, -33), 0, 0);      /* 0.5 * 2^-32: flushed */
    assert_multiplier(ldexp(1, -32), 1 << 30, -31); /* the smallest kept */
    assert_multiplier(ldexp(1, 31), INT32_MAX, 30); /* 0.5 * 2^32: saturated */
    assert_multiplier(ldexp(1, 29), 1 << 30, 30);   /* 0.5 * 2^30: the largest */
}
END_TEST

START_TEST(the_doubling_high_multiply_rounds_ties_up_and_saturates)
{
    ck_assert_int_eq(sepconv_q_doubling_high_mul(INT32_MIN, INT32_MIN), INT32_MAX);
    ck_assert_int_eq(sepconv_q_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);
    ck_assert_int_eq(sepconv_q_doubling_high_mul(1, 1 << 30), 1);    /* 0.5 -> 1 */
    ck_assert_int_eq(sepconv_q_doubling_high_mul(-1, 1 << 30), 0);   /* -0.5 -> 0 */
    ck_assert_int_eq(sepconv_q_doubling_high_mul(-3, 1 << 30), -1);  /* -1.5 -> -1 */
    ck_assert_int_eq(sepconv_q_doubling_high_mul(3, 1 << 30), 2);    /* 1.5 -> 2 */
    ck_assert_int_eq(sepconv_q_doubling_high_mul(-5, 1 << 29), -1);  /* -1.25 -> -1 */
    ck_assert_int_eq(sepconv_q_doubling_high_mul(INT32_MIN, INT32_MAX), -INT32_MAX);
}
END_TEST

START_TEST(the_rounding_shift_rounds_ties_away_from_zero)
{
    ck_assert_int_eq(sepconv_q_rounding_shift(5, 1), 3);    /* 2.5 */
    ck_assert_int_eq(sepconv_q_rounding_shift(-5, 1), -3);  /* -2.5 */
    ck_assert_int_eq(sepconv_q_rounding_shift(6, 2), 2);    /* 1.5 */
    ck_assert_int_eq(sepconv_q_rounding_shift(-6, 2), -2);  /* -1.5 */
    ck_assert_int_eq(sepconv_q_rounding_shift(-7, 2), -2);  /* -1.75 */
    ck_assert_int_eq(sepconv_q_rounding_shift(-5, 2), -1);  /* -1.25 */
    ck_assert_int_eq(sepconv_q_rounding_shift(7, 0), 7);
    ck_assert_int_eq(sepconv_q_rounding_shift(INT32_MIN, 31), -1);
    ck_assert_int_eq(sepconv_q_rounding_shift(INT32_MAX, 31), 1);
    ck_assert_int_eq(sepconv_q_rounding_shift((1 << 30) - 1, 31), 0); /* < 0.5 */
}
END_TEST

START_TEST(rescaling_rounds_twice_as_tflite_does)
{
    sepconv_qmultiplier half = sepconv_quantize_multiplier(0.5);
    ck_assert_int_eq(sepconv_q_rescale(100, half), 50);
    ck_assert_int_eq(sepconv_q_rescale(3, half), 2);    /* 1.5 -> 2 */
    ck_assert_int_eq(sepconv_q_rescale(-3, half), -1);  /* -1.5 -> -1: the high multiply */
    /* 5 * 0.25 = 1.25, but TFLite rounds 2.5 up first, then 1.5 away: 2 */
    ck_assert_int_eq(sepconv_q_rescale(5, sepconv_quantize_multiplier(0.25)), 2);
    ck_assert_int_eq(sepconv_q_rescale(-5, sepconv_quantize_multiplier(0.25)), -1);
    /* a multiplier above 1 shifts left first */
    ck_assert_int_eq(sepconv_q_rescale(1000, sepconv_quantize_multiplier(3.0)), 3000);
    /* ... and saturates where that would leave int32 */
    ck_assert_int_eq(sepconv_q_rescale(1 << 30, sepconv_quantize_multiplier(4.0)), 1 << 30);
    /* a large right shift: 2^-31 of 2^30 is 0.5, rounded away: 1 */
    ck_assert_int_eq(sepconv_q_rescale(1 << 30, sepconv_quantize_multiplier(ldexp(1, -31))), 1);
}
END_TEST

START_TEST(activations_clamp_in_the_quantized_domain)
{
    int32_t lo, hi;
    sepconv_q_activation_range(SEPCONV_ACT_NONE, 0.1f, -10, &lo, &hi);
    ck_assert(lo == -128 && hi == 127);
    sepconv_q_activation_range(SEPCONV_ACT_RELU, 0.1f, -10, &lo, &hi);
    ck_assert(lo == -10 && hi == 127);
    sepconv_q_activation_range(SEPCONV_ACT_RELU6, 0.1f, -10, &lo, &hi);
    ck_assert(lo == -10 && hi == 50);                   /* -10 + round(6 / 0.1) */
    sepconv_q_activation_range(SEPCONV_ACT_RELU6, 0.05f, 10, &lo, &hi);
    ck_assert(lo == 10 && hi == 127);                   /* 10 + 120: past int8 */
    sepconv_q_activation_range(SEPCONV_ACT_RELU6, 1e-30f, 0, &lo, &hi);
    ck_assert(lo == 0 && hi == 127);                    /* 6e30 steps: clamped */
    sepconv_q_activation_range(SEPCONV_ACT_RELU6, 0.5f, -128, &lo, &hi);
    ck_assert(lo == -128 && hi == -116);
}
END_TEST

/* The int8 reference of `spec` (a float32 spec: the quantization is set
 * here, past the parser's checks); the status, the message in `error`. */
static sepconv_status run_int8(const char *spec, const sepconv_quantization *q,
                               const sepconv_qtensors *t, int8_t *output, sepconv_error *error)
{
    sepconv_layer layer = parse_layer(spec);
    layer.dtype = SEPCONV_DTYPE_INT8;
    layer.quant = *q;
    return sepconv_reference_run_int8(&layer, t, output, error);
}

/* A 3x3 image 1..9, weights 1 with the centre 2, bias 8, weight scale 0.25. */
static const int8_t hand_input[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const int8_t hand_weights[9] = {1, 1, 1, 1, 2, 1, 1, 1, 1};
static const int32_t hand_bias[1] = {8};
static const float hand_scales[1] = {0.25f};
static const sepconv_qtensors hand_tensors = {.input = hand_input, .weights = hand_weights,
                                              .bias = hand_bias, .weight_scales = hand_scales};

START_TEST(a_depthwise_layer_worked_by_hand)
{
    /* in_zero 1: the terms read 0..8; multiplier 0.5 * 0.25 / out_scale */
    sepconv_qtensors t = hand_tensors;
    sepconv_quantization q = {.in_scale = 0.5f, .out_scale = 1.0f, .in_zero = 1, .out_zero = 3};
    int8_t out[9];
    sepconv_error error;
    ck_assert_int_eq(run_int8("op=dw df=3 m=1 dk=3 pad=1 bias=1", &q, &t, out, &error),
                     SEPCONV_OK);
    /* centre: 0+1+...+8 = 36, + 4 more at the centre, + 8 = 48; x 0.125 = 6; + 3
     * corner (0,0): 0*2 + 1 + 3 + 4 + 8 = 16; x 0.125 = 2; + 3
     * edge (0,1): 0 + 1*2 + 2 + 3 + 4 + 5 + 8 = 24; x 0.125 = 3; + 3 */
    ck_assert_int_eq(out[4], 9);
    ck_assert_int_eq(out[0], 5);
    ck_assert_int_eq(out[1], 6);
    /* relu6 with out_scale 0.5: [3, 3 + 12]; the centre 48 x 0.25 + 3 = 15,
     * (2,2): 4 + 5 + 7 + 8*2 + 8 = 40 x 0.25 = 10, + 3;
     * (0,2): 1 + 2*2 + 4 + 5 + 8 = 22 x 0.25 = 5.5 -> 6 (a tie, away), + 3 */
    q.out_scale = 0.5f;
    ck_assert_int_eq(run_int8("op=dw df=3 m=1 dk=3 pad=1 bias=1 act=relu6", &q, &t, out,
                              &error), SEPCONV_OK);
    ck_assert_int_eq(out[4], 15);
    ck_assert_int_eq(out[8], 13);
    ck_assert_int_eq(out[2], 9);
    /* in_zero 9: every term <= 0, the bias gone: relu clamps to out_zero */
    t.bias = NULL;
    q.in_zero = 9;
    ck_assert_int_eq(run_int8("op=dw df=3 m=1 dk=3 pad=1 act=relu", &q, &t, out, &error),
                     SEPCONV_OK);
    for (int i = 0; i < 9; i++)
        ck_assert_int_eq(out[i], 3);
}
END_TEST

START_TEST(bad_quantization_is_refused_by_name)
{
    const int8_t input[4] = {0}, weights[4] = {0};
    const float scales[1] = {1.0f}, bad[1] = {-1.0f};
    sepconv_qtensors t = {.input = input, .weights = weights, .weight_scales = scales};
    sepconv_quantization q = {.in_scale = 1, .out_scale = 1};
    int8_t out[4];
    sepconv_error error;
    const char *spec = "op=dw df=2 m=1 dk=1";
    ck_assert_int_eq(run_int8(spec, &q, &t, out, &error), SEPCONV_OK);
    q.in_scale = 0;
    ck_assert_int_eq(run_int8(spec, &q, &t, out, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "in_scale=0: a scale must be finite and > 0"));
    q.in_scale = 1;
    q.out_scale = INFINITY;
    ck_assert_int_eq(run_int8(spec, &q, &t, out, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "out_scale=inf"));
    q.out_scale = 1;
    q.out_zero = 128;
    ck_assert_int_eq(run_int8(spec, &q, &t, out, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "out_zero=128: a zero point must be in [-128, 127]"));
    q.out_zero = 0;
    t.weight_scales = bad;
    ck_assert_int_eq(run_int8(spec, &q, &t, out, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "weight_scales[0]=-1"));
    t.weight_scales = NULL;
    ck_assert_int_eq(run_int8(spec, &q, &t, out, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "weight_scales"));
    /* sep needs the intermediate's quantization and the pointwise scales */
    t.weight_scales = scales;
    ck_assert_int_eq(run_int8("op=sep df=2 m=1 n=1 dk=1", &q, &t, out, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "pw_weights"));
    t.pw_weights = weights;
    ck_assert_int_eq(run_int8("op=sep df=2 m=1 n=1 dk=1", &q, &t, out, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "mid_scale=0"));
}
END_TEST

START_TEST(an_accumulator_past_int32_is_an_error)
{
    /* 1x1 conv over 70000 channels of (127 - (-128)) * 127: past 2^31 */
    enum { M = 70000 };
    int8_t *input = malloc(M), *weights = malloc(M);
    for (int i = 0; i < M; i++) {
        input[i] = 127;
        weights[i] = 127;
    }
    const float scales[1] = {1e-6f};
    sepconv_qtensors t = {.input = input, .weights = weights, .weight_scales = scales};
    sepconv_quantization q = {.in_scale = 1, .out_scale = 1, .in_zero = -128};
    int8_t out[1];
    sepconv_error error;
    ck_assert_int_eq(run_int8("op=pw df=1 m=70000 n=1", &q, &t, out, &error),
                     SEPCONV_OVERFLOW);
    ck_assert_ptr_nonnull(strstr(error.message, "int32 accumulator overflows"));
    free(input);
    free(weights);
}
END_TEST

START_TEST(a_sum_at_an_int32_bound_clamps_and_never_wraps)
{
    /* in_scale 0.069f x weight scale 14.492754f / out_scale 1 = 0.99999999974:
     * significand 2^31 - 1, shift 0.  A bias of INT32_MIN (the input at its
     * zero point adds nothing) rescales to -(2^31 - 1), far below int8's
     * range: -128, where adding out_zero -100 first would overflow (and
     * wrap to 127).  INT32_MAX rescales to 2^31 - 2: 127 with out_zero 100,
     * not a wrapped -128. */
    const int8_t input[1] = {0}, weights[1] = {5};
    const float scales[1] = {14.492754f};
    const int32_t low[1] = {INT32_MIN}, high[1] = {INT32_MAX};
    sepconv_qtensors t = {.input = input, .weights = weights, .bias = low,
                          .weight_scales = scales};
    sepconv_quantization q = {.in_scale = 0.069f, .out_scale = 1, .out_zero = -100};
    int8_t out[1];
    sepconv_error error;
    ck_assert_int_eq(run_int8("op=pw df=1 m=1 n=1 bias=1", &q, &t, out, &error), SEPCONV_OK);
    ck_assert_int_eq(out[0], -128);
    t.bias = high;
    q.out_zero = 100;
    ck_assert_int_eq(run_int8("op=pw df=1 m=1 n=1 bias=1", &q, &t, out, &error), SEPCONV_OK);
    ck_assert_int_eq(out[0], 127);
}
END_TEST

/* ------------------------------------------- the independent check */

/* floor(a / b) for b > 0. */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* The specification's requantization, from its formulas: the Q31
 * significand m and shift of the real multiplier (real = m 2^(shift-31)),
 * x times it with a rounding half up at 2^-31 (a doubling high multiply),
 * then a rounding half away from zero of the right shift. */
static int32_t spec_requantize(int64_t acc, double real, int32_t zero, int32_t lo, int32_t hi)
{
    int exponent;
    double fraction = frexp(real, &exponent);
    int64_t m = (int64_t)floor(ldexp(fraction, 31) + 0.5);
    if (m == INT64_C(1) << 31) {
        m >>= 1;
        exponent++;
    }
    ck_assert(exponent <= 0 && exponent >= -31); /* the test's scales keep it so */
    int64_t high = floor_div(acc * m + (INT64_C(1) << 30), INT64_C(1) << 31);
    int right = -exponent;
    int64_t q = high;
    if (right > 0) {
        int64_t magnitude = high < 0 ? -high : high;
        magnitude = (magnitude + (INT64_C(1) << (right - 1))) >> right;
        q = high < 0 ? -magnitude : magnitude;
    }
    q += zero;
    return (int32_t)(q < lo ? lo : q > hi ? hi : q);
}

/* A random int8 value from the stream, in [-128, 127] or, `small`, [-6, 6]. */
static int8_t random_int8(uint64_t *state, bool small)
{
    uint64_t r = sepconv_random_next(state);
    return (int8_t)(small ? (int)(r % 13) - 6 : (int)(r % 256) - 128);
}

/* A random scale in [lo, 2 lo). */
static float random_scale(uint64_t *state, float lo)
{
    return lo * (1.0f + (float)(sepconv_random_next(state) % 1000) / 1000.0f);
}

/* A depthwise or pointwise NHWC stage the test's own way. */
static void spec_stage(const sepconv_layer *l, bool depthwise, bool first, const int8_t *in,
                       const int8_t *w, const int32_t *bias, const float *ws, float in_scale,
                       int32_t in_zero, float out_scale, int32_t out_zero,
                       sepconv_activation act, int8_t *out)
{
    int64_t H = first ? l->in_h : l->out_h, W = first ? l->in_w : l->out_w;
    int64_t C = first ? l->m : l->mid_c, OC = depthwise ? l->mid_c : l->n;
    int64_t K = depthwise ? l->kernel : 1, S = depthwise ? l->stride : 1;
    int64_t pt = depthwise ? l->pad_top : 0, pl = depthwise ? l->pad_left : 0;
    int32_t lo = -128, hi = 127;
    if (act != SEPCONV_ACT_NONE)
        lo = out_zero > -128 ? out_zero : -128;
    if (act == SEPCONV_ACT_RELU6) {
        double six = out_zero + round((double)(6.0f / out_scale));
        hi = six < 127 ? (int32_t)six : 127;
    }
    for (int64_t y = 0; y < l->out_h; y++)
    for (int64_t x = 0; x < l->out_w; x++)
    for (int64_t o = 0; o < OC; o++) {
        int64_t acc = bias ? bias[o] : 0;
        for (int64_t ky = 0; ky < K; ky++)
        for (int64_t kx = 0; kx < K; kx++) {
            int64_t iy = y * S - pt + ky, ix = x * S - pl + kx;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                continue;
            if (depthwise) {
                acc += (in[(iy * W + ix) * C + o] - in_zero) * (int64_t)w[(ky * K + kx) * OC + o];
            } else {
                for (int64_t c = 0; c < C; c++)
                    acc += (in[(iy * W + ix) * C + c] - in_zero) * (int64_t)w[c * OC + o];
            }
        }
        double real = (double)in_scale * (double)ws[o] / (double)out_scale;
        out[(y * l->out_w + x) * OC + o] = (int8_t)spec_requantize(acc, real, out_zero, lo, hi);
    }
}

static const char *const independent_specs[] = {
    "op=dw df=9 m=24 dk=3 pad=1 bias=1 act=relu6",
    "op=dw df=10 m=16 dk=3 stride=2 pad=same bias=1 act=relu",
    "op=pw df=5 m=40 n=24 bias=1",
    "op=pw df=4 m=64 n=8 act=relu6",
    "op=sep df=8 m=16 n=24 dk=3 pad=1 bias=1 act=relu6",
    "op=sep df=9 m=8 n=16 dk=5 stride=2 pad=2 act=relu",
};

#define INDEPENDENT_SPECS (sizeof independent_specs / sizeof independent_specs[0])

/* Each spec twice: int8's whole range with small multipliers (1e-3), and
 * values in [-6, 6] with multipliers near 0.2, where a sum off by one
 * changes the output. */
START_TEST(the_reference_agrees_with_the_specifications_formulas)
{
    const char *spec = independent_specs[_i % INDEPENDENT_SPECS];
    bool small = _i >= (int)INDEPENDENT_SPECS;
    sepconv_layer l = parse_layer(spec);
    uint64_t state = 1000 + (uint64_t)_i;
    bool sep = l.op == SEPCONV_OP_SEP, dw = l.op == SEPCONV_OP_DW || sep;
    int8_t *input = malloc((size_t)l.input_elements), *weights = malloc((size_t)l.weight_elements);
    int8_t *pw = malloc(sep ? (size_t)l.pw_weight_elements : 1);
    int32_t *bias = malloc(sizeof(int32_t) * (size_t)(l.bias_elements + 1));
    int32_t *pw_bias = malloc(sizeof(int32_t) * (size_t)(l.pw_bias_elements + 1));
    float *scales = malloc(sizeof(float) * (size_t)(l.mid_c + l.n));
    float *pw_scales = malloc(sizeof(float) * (size_t)(l.n + 1));
    int8_t *mid = malloc((size_t)l.mid_elements + 1);
    int8_t *expected = malloc((size_t)l.output_elements), *actual = malloc((size_t)l.output_elements);
    for (int64_t i = 0; i < l.input_elements; i++)
        input[i] = random_int8(&state, small);
    for (int64_t i = 0; i < l.weight_elements; i++)
        weights[i] = random_int8(&state, small);
    for (int64_t i = 0; sep && i < l.pw_weight_elements; i++)
        pw[i] = random_int8(&state, small);
    int32_t reach = small ? 60 : 10000; /* biases in [-reach, reach] */
    for (int64_t i = 0; i < l.bias_elements; i++)
        bias[i] = (int32_t)(sepconv_random_next(&state) % (2 * reach + 1)) - reach;
    for (int64_t i = 0; i < l.pw_bias_elements; i++)
        pw_bias[i] = (int32_t)(sepconv_random_next(&state) % (2 * reach + 1)) - reach;
    for (int64_t i = 0; i < l.mid_c + l.n; i++)
        scales[i] = random_scale(&state, small ? 0.05f : 0.002f);
    for (int64_t i = 0; i < l.n; i++)
        pw_scales[i] = random_scale(&state, small ? 0.05f : 0.002f);
    sepconv_quantization q = {.in_scale = random_scale(&state, small ? 0.5f : 0.02f),
                         .mid_scale = random_scale(&state, small ? 0.1f : 0.05f),
                         .out_scale = random_scale(&state, 0.1f),
                         .in_zero = random_int8(&state, small) / (small ? 2 : 4),
                         .mid_zero = small ? -30 : -20, .out_zero = small ? -60 : 7};
    sepconv_qtensors t = {input, weights, sep ? pw : NULL, l.bias ? bias : NULL,
                          l.bias ? pw_bias : NULL, scales, pw_scales};
    sepconv_error error;
    l.dtype = SEPCONV_DTYPE_INT8;
    l.quant = q;
    ck_assert_msg(sepconv_reference_run_int8(&l, &t, actual, &error) == SEPCONV_OK, "%s",
                  error.message);
    const int32_t *b = l.bias ? bias : NULL, *pb = l.bias ? pw_bias : NULL;
    if (sep) {
        spec_stage(&l, true, true, input, weights, b, scales, q.in_scale, q.in_zero,
                   q.mid_scale, q.mid_zero, l.dw_act, mid);
        spec_stage(&l, false, false, mid, pw, pb, pw_scales, q.mid_scale, q.mid_zero,
                   q.out_scale, q.out_zero, l.pw_act, expected);
    } else {
        spec_stage(&l, dw, true, input, weights, b, scales, q.in_scale, q.in_zero, q.out_scale,
                   q.out_zero, dw ? l.dw_act : l.pw_act, expected);
    }
    int64_t clamped = 0, distinct[256] = {0};
    for (int64_t i = 0; i < l.output_elements; i++) {
        ck_assert_msg(actual[i] == expected[i], "%s%s: output %lld is %d, expected %d", spec,
                      small ? " (small values)" : "", (long long)i, actual[i], expected[i]);
        clamped += actual[i] == -128 || actual[i] == 127;
        distinct[actual[i] + 128] = 1;
    }
    /* the data exercise the rescale, not only the clamps */
    int64_t values = 0;
    for (int i = 0; i < 256; i++)
        values += distinct[i];
    ck_assert_msg(values >= 8, "%s: only %lld distinct outputs", spec,
                  (long long)values);
    ck_assert_msg(clamped < l.output_elements / 2, "%s: %lld of %lld clamped", spec, (long long)clamped, (long long)l.output_elements);
    free(input);
    free(weights);
    free(pw);
    free(bias);
    free(pw_bias);
    free(scales);
    free(pw_scales);
    free(mid);
    free(expected);
    free(actual);
}
END_TEST

/* ------------------------------------------------------------ the spec */

START_TEST(int8_specs_parse_and_print_back)
{
    const char *spec = "op=sep df=8 m=16 n=24 dk=3 dtype=int8 in_scale=0.0235 in_zero=-3 "
                       "mid_scale=0.05 mid_zero=-128 out_scale=0.1 out_zero=127";
    sepconv_layer l = parse_layer(spec);
    ck_assert_int_eq(l.dtype, SEPCONV_DTYPE_INT8);
    ck_assert(l.quant.in_scale == 0.0235f && l.quant.mid_scale == 0.05f &&
              l.quant.out_scale == 0.1f);
    ck_assert(l.quant.in_zero == -3 && l.quant.mid_zero == -128 && l.quant.out_zero == 127);
    char text[512], again[512];
    ck_assert_int_eq(sepconv_layer_format(&l, text, sizeof text, NULL), SEPCONV_OK);
    ck_assert_ptr_nonnull(strstr(text, " dtype=int8 in_scale=0.0235 in_zero=-3 mid_scale=0.05 "
                                       "mid_zero=-128 out_scale=0.1 out_zero=127"));
    sepconv_layer back = parse_layer(text);
    ck_assert_int_eq(sepconv_layer_format(&back, again, sizeof again, NULL), SEPCONV_OK);
    ck_assert_str_eq(text, again);
    ck_assert(memcmp(&back.quant, &l.quant, sizeof l.quant) == 0);
    /* a scale that needs all 9 digits keeps them */
    l = parse_layer("op=pw df=2 m=4 n=4 dtype=int8 in_scale=0.0123456789 out_scale=3e-20");
    ck_assert_int_eq(sepconv_layer_format(&l, text, sizeof text, NULL), SEPCONV_OK);
    ck_assert(parse_layer(text).quant.in_scale == l.quant.in_scale);
    ck_assert_int_eq(l.quant.in_zero, 0); /* zero points default to 0 */
    /* float32 is the default, and its canonical spec names no dtype */
    l = parse_layer("op=dw df=4 m=8 dk=3 dtype=float32");
    ck_assert_int_eq(l.dtype, SEPCONV_DTYPE_FLOAT32);
    ck_assert_int_eq(sepconv_layer_format(&l, text, sizeof text, NULL), SEPCONV_OK);
    ck_assert_ptr_null(strstr(text, "dtype"));
    /* an activation's bytes are one each */
    sepconv_cost cost;
    l = parse_layer(spec);
    ck_assert_int_eq(sepconv_cost_compute(&l, &cost, NULL), SEPCONV_OK);
    ck_assert_int_eq(cost.bytes_read, 8 * 8 * 16 + 8 * 8 * 16);     /* input + intermediate */
    ck_assert_int_eq(cost.bytes_written, 8 * 8 * 16 + 8 * 8 * 24);  /* intermediate + output */
}
END_TEST

/* Asserts that `spec` is refused with a message containing `needle`. */
static void assert_refused(const char *spec, const char *needle)
{
    char message[SEPCONV_MESSAGE_MAX];
    refuse_layer(spec, message, sizeof message);
    ck_assert_msg(strstr(message, needle), "'%s': '%s' lacks '%s'", spec, message, needle);
}

START_TEST(int8_specs_are_checked_by_name)
{
    assert_refused("op=dw df=4 m=8 dk=3 in_scale=0.1",
                   "key 'in_scale' applies to dtype=int8 only");
    assert_refused("op=dw df=4 m=8 dk=3 out_zero=3", "key 'out_zero' applies to dtype=int8");
    assert_refused("op=dw df=4 m=8 dk=3 dtype=int8 out_scale=1", "dtype=int8 needs in_scale");
    assert_refused("op=dw df=4 m=8 dk=3 dtype=int8 in_scale=1", "dtype=int8 needs out_scale");
    assert_refused("op=sep df=4 m=8 n=8 dk=3 dtype=int8 in_scale=1 out_scale=1",
                   "dtype=int8 needs mid_scale");
    assert_refused("op=pw df=4 m=8 n=8 dtype=int8 in_scale=1 out_scale=1 mid_scale=1",
                   "key 'mid_scale' does not apply to op=pw");
    assert_refused("op=dw df=4 m=8 dk=3 dtype=int8 in_scale=0 out_scale=1",
                   "in_scale=0 is not a scale");
    assert_refused("op=dw df=4 m=8 dk=3 dtype=int8 in_scale=-1 out_scale=1",
                   "in_scale=-1 is not a scale");
    assert_refused("op=dw df=4 m=8 dk=3 dtype=int8 in_scale=1 out_scale=inf",
                   "out_scale=inf is not a scale");
    assert_refused("op=dw df=4 m=8 dk=3 dtype=int8 in_scale=1e40 out_scale=1",
                   "in_scale=1e40 is not a scale"); /* past a float */
    assert_refused("op=dw df=4 m=8 dk=3 dtype=int8 in_scale=1e-50 out_scale=1",
                   "in_scale=1e-50 is not a scale"); /* 0 as a float */
    assert_refused("op=dw df=4 m=8 dk=3 dtype=int8 in_scale=0.1x out_scale=1",
                   "in_scale=0.1x is not a scale");
    assert_refused("op=dw df=4 m=8 dk=3 dtype=int8 in_scale=1 out_scale=1 in_zero=128",
                   "in_zero=128 is out of range (expected -128..127)");
    assert_refused("op=dw df=4 m=8 dk=3 dtype=int8 in_scale=1 out_scale=1 out_zero=-129",
                   "out_zero=-129 is out of range");
    assert_refused("op=dw df=4 m=8 dk=3 dtype=int4", "dtype");
}
END_TEST

START_TEST(an_int8_sep_splits_at_its_intermediate)
{
    sepconv_layer sep = parse_layer("op=sep df=8 m=16 n=24 dk=3 dtype=int8 in_scale=0.5 "
                                    "in_zero=1 mid_scale=0.25 mid_zero=-2 out_scale=0.125 "
                                    "out_zero=3"), dw, pw;
    ck_assert_int_eq(sepconv_layer_split(&sep, &dw, &pw, NULL), SEPCONV_OK);
    ck_assert(dw.dtype == SEPCONV_DTYPE_INT8 && pw.dtype == SEPCONV_DTYPE_INT8);
    ck_assert(dw.quant.in_scale == 0.5f && dw.quant.in_zero == 1);
    ck_assert(dw.quant.out_scale == 0.25f && dw.quant.out_zero == -2);
    ck_assert(pw.quant.in_scale == 0.25f && pw.quant.in_zero == -2);
    ck_assert(pw.quant.out_scale == 0.125f && pw.quant.out_zero == 3);
}
END_TEST

START_TEST(float_code_refuses_int8_layers)
{
    sepconv_layer l = parse_layer("op=dw df=6 m=16 dk=3 dtype=int8 in_scale=0.5 out_scale=1");
    sepconv_error error;
    sepconv_buffers buffers;
    ck_assert_int_eq(sepconv_buffers_alloc(&l, &buffers, &error), SEPCONV_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(error.message, "sepconv_kernel_run_int8"));
    /* (the tuner takes int8 layers on int8 data: test_tune.c) */
    float in[6 * 6 * 16] = {0}, w[9 * 16] = {0}, out[6 * 6 * 16];
    sepconv_tensors t = {in, w, NULL, NULL, NULL};
    ck_assert_int_eq(sepconv_reference_run(&l, &t, out, &error), SEPCONV_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(error.message, "the float reference"));
    sepconv_schedule schedule;
    ck_assert_int_eq(sepconv_schedule_default(&l, SEPCONV_TARGET_PORTABLE, &schedule, NULL),
                     SEPCONV_OK);
    /* generation: int8 conv, dw and pw have their template (below); a sep is
     * two of them (sepconv_kernel_create composes them) */
    sepconv_source source;
    sepconv_layer qpw = parse_layer("op=sep df=6 m=16 n=8 dk=3 dtype=int8 in_scale=0.5 "
                                    "mid_scale=0.25 out_scale=1");
    ck_assert_int_eq(sepconv_schedule_default(&qpw, SEPCONV_TARGET_PORTABLE, &schedule, NULL),
                     SEPCONV_OK);
    ck_assert_int_eq(sepconv_generate(&qpw, &schedule, NULL, &source, &error),
                     SEPCONV_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(error.message, "not op=sep"));
    /* the int8 reference takes it, and refuses a float32 layer */
    int8_t qin[6 * 6 * 16] = {0}, qw[9 * 16] = {0}, qout[6 * 6 * 16];
    float scales[16];
    for (int i = 0; i < 16; i++)
        scales[i] = 0.01f;
    sepconv_qtensors qt = {.input = qin, .weights = qw, .weight_scales = scales};
    ck_assert_int_eq(sepconv_reference_run_int8(&l, &qt, qout, &error), SEPCONV_OK);
    sepconv_layer f = parse_layer("op=dw df=6 m=16 dk=3");
    ck_assert_int_eq(sepconv_reference_run_int8(&f, &qt, qout, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "takes dtype=int8 layers"));
}
END_TEST

START_TEST(the_int8_reference_reads_the_specs_quantization)
{
    /* the layer worked by hand above, its quantization in the spec */
    sepconv_qtensors t = hand_tensors;
    sepconv_layer l = parse_layer("op=dw df=3 m=1 dk=3 pad=1 bias=1 dtype=int8 in_scale=0.5 "
                                  "in_zero=1 out_scale=1 out_zero=3");
    int8_t out[9];
    sepconv_error error;
    ck_assert_int_eq(sepconv_reference_run_int8(&l, &t, out, &error), SEPCONV_OK);
    ck_assert(out[4] == 9 && out[0] == 5 && out[1] == 6);
}
END_TEST

/* Generates an int8 layer's kernel for `target` and compiles it with tcc
 * (cc false) or the system compiler; `bug`, when given, replaces the first
 * `was` in the source (a kernel that compiles but is wrong). */
static sepconv_code *int8_kernel(const sepconv_layer *l, sepconv_target target, bool cc,
                                 const char *was, const char *bug, sepconv_qkernel_code *run)
{
    sepconv_schedule schedule;
    sepconv_error error;
    ck_assert_int_eq(sepconv_schedule_default(l, target, &schedule, NULL), SEPCONV_OK);
    sepconv_generate_options options = {.for_cc = cc};
    sepconv_source source;
    ck_assert_msg(sepconv_generate(l, &schedule, &options, &source, &error) == SEPCONV_OK,
                  "%s", error.message);
    ck_assert_ptr_nonnull(strstr(source.code, "int8 "));
    ck_assert_ptr_nonnull(strstr(source.code, "TensorFlow Lite's integer arithmetic"));
    ck_assert_ptr_nonnull(strstr(source.header, "const int *restrict requant"));
    char *code = source.code;
    size_t length = source.code_length;
    char *edited = NULL;
    if (bug) {
        char *at = strstr(code, was);
        ck_assert_ptr_nonnull(at);
        length = source.code_length - strlen(was) + strlen(bug);
        edited = malloc(length + 1);
        size_t head = (size_t)(at - code);
        memcpy(edited, code, head);
        memcpy(edited + head, bug, strlen(bug));
        strcpy(edited + head + strlen(bug), at + strlen(was));
        code = edited;
    }
    sepconv_code *compiled = NULL;
    sepconv_status status;
    if (cc) {
        sepconv_cc_options o;
        memset(&o, 0, sizeof o);
        o.flags = "-O2";
        status = sepconv_cc_compile(code, length, &o, &compiled, &error);
    } else {
        char pack[sizeof source.symbol + 8];
        snprintf(pack, sizeof pack, "%s_pack", source.symbol);
        const char *names[] = {source.symbol, pack};
        status = sepconv_tcc_compile(code, length, target, names,
                                     source.packed_elements > 0 ? 2 : 1, &compiled, &error);
    }
    ck_assert_msg(status == SEPCONV_OK, "%s", error.message);
    char pack[sizeof source.symbol + 8];
    snprintf(pack, sizeof pack, "%s_pack", source.symbol);
    run->run = (sepconv_qkernel_fn)sepconv_code_symbol(compiled, source.symbol);
    run->packed_elements = source.packed_elements;
    run->pack = source.packed_elements > 0 ? (sepconv_qpack_fn)sepconv_code_symbol(compiled, pack)
                                           : NULL;
    ck_assert_ptr_nonnull(run->run);
    /* what packs: exactly the pointwise rows handed to the micro-kernels */
    const bool packs = l->op == SEPCONV_OP_PW && l->layout == SEPCONV_LAYOUT_NHWC &&
                       l->pad_top == 0 && l->pad_left == 0 && !cc &&
                       target != SEPCONV_TARGET_PORTABLE;
    ck_assert_msg((source.packed_elements > 0) == packs, "packed_elements %lld",
                  (long long)source.packed_elements);
    if (packs) {
        ck_assert_ptr_nonnull(run->pack);
        ck_assert_int_eq(source.packed_elements, (l->out_c + 15) / 16 * 16 * (1 + (l->m + 1) / 2));
        /* an ahead-of-time caller finds the packing and its size in the header */
        char line[sizeof source.symbol + 80];
        snprintf(line, sizeof line, "void %s(const signed char *weights, const int *bias, "
                 "int *packed);", pack);
        ck_assert_msg(strstr(source.header, line) != NULL, "%s", source.header);
        ck_assert_ptr_nonnull(strstr(source.header, "_PACKED_ELEMENTS"));
    } else {
        ck_assert_ptr_null(strstr(source.header, "_pack("));
        ck_assert_ptr_nonnull(strstr(source.header, "_PACKED_ELEMENTS 0L"));
    }
    free(edited);
    sepconv_source_free(&source);
    return compiled;
}

/* int8 depthwise, pointwise and conv layers across every spec feature:
 * layouts, strides, dilations, paddings, multipliers, batches, bias,
 * activations, zero points */
static const char *const int8_dw_specs[] = {
    "op=dw df=7 m=5 dk=3 dtype=int8 in_scale=0.05 in_zero=-7 out_scale=0.1 out_zero=3",
    "op=dw df=9 m=8 dk=3 stride=2 bias=1 act=relu dtype=int8 in_scale=0.5 in_zero=12 "
    "out_scale=0.02 out_zero=-100",
    "op=dw h=6 w=11 m=3 dk=5 pad=valid bias=1 act=relu6 dtype=int8 in_scale=0.03 "
    "out_scale=0.04 out_zero=-128",
    "op=dw df=8 m=4 dk=3 mult=2 dilation=2 batch=2 layout=nchw bias=1 dtype=int8 "
    "in_scale=0.1 in_zero=127 out_scale=0.3 out_zero=127",
    "op=dw df=10 m=6 dk=3 stride=2 pad=same layout=nchw act=relu6 dtype=int8 "
    "in_scale=0.25 in_zero=-128 out_scale=0.125 out_zero=5",
    "op=dw df=5 m=2 dk=1 bias=1 dtype=int8 in_scale=1 out_scale=0.001",
    "op=pw df=6 m=24 n=10 bias=1 act=relu6 dtype=int8 in_scale=0.02 in_zero=-5 "
    "out_scale=0.05 out_zero=-20",
    "op=pw h=3 w=5 m=7 n=9 batch=2 layout=nchw dtype=int8 in_scale=0.1 in_zero=30 "
    "out_scale=0.5 out_zero=1",
    "op=conv df=7 m=3 n=8 dk=3 stride=2 bias=1 act=relu dtype=int8 in_scale=0.05 "
    "in_zero=-10 out_scale=0.2 out_zero=-50",
    "op=conv h=6 w=5 m=4 n=5 dk=5 pad=valid layout=nchw dtype=int8 in_scale=0.01 "
    "out_scale=0.3 out_zero=9",
    /* channel blocks of 64: a short last block, and whole blocks */
    "op=dw df=5 m=72 dk=3 stride=2 bias=1 act=relu6 dtype=int8 in_scale=0.04 in_zero=-3 "
    "out_scale=0.06 out_zero=-9",
    "op=pw df=3 m=9 n=130 bias=1 dtype=int8 in_scale=0.07 in_zero=100 out_scale=0.2 "
    "out_zero=4",
    "op=conv df=5 m=2 n=128 dk=3 act=relu dtype=int8 in_scale=0.3 in_zero=-1 "
    "out_scale=0.9 out_zero=-2",
    /* the AVX2 pointwise: rows of 14 pixels in tiles of 4, 4, 3 and 3, even
     * m, whole blocks of 16; rows of 17 whose pairs fill its stack buffer in
     * chunks of 15 and 2 pixels, odd m, a short last block; an m whose pairs
     * fit 5 pixels at a time; and one whose pairs of 4 pixels do not fit
     * (the plain C path) */
    "op=pw df=14 m=40 n=48 bias=1 act=relu dtype=int8 in_scale=0.03 in_zero=-20 "
    "out_scale=0.08 out_zero=-6",
    "op=pw h=2 w=17 m=2051 n=17 bias=1 dtype=int8 in_scale=0.01 in_zero=9 out_scale=0.5 "
    "out_zero=2",
    "op=pw h=1 w=3 m=5463 n=16 dtype=int8 in_scale=0.01 in_zero=-9 out_scale=0.7",
    "op=pw h=1 w=3 m=8195 n=16 dtype=int8 in_scale=0.01 in_zero=-9 out_scale=0.7",
    /* the AVX2 depthwise row's unrolled 3x3 interior, two whole blocks of 16 */
    "op=dw df=9 m=32 dk=3 bias=1 act=relu6 dtype=int8 in_scale=0.02 in_zero=11 "
    "out_scale=0.03 out_zero=-30"};
#define INT8_DW_SPECS (sizeof int8_dw_specs / sizeof int8_dw_specs[0])

START_TEST(generated_int8_kernels_are_bit_exact)
{
    /* each spec through tcc (plain C, and the int8 micro-kernels of every
     * ISA this CPU runs) and cc: the bits are the int8 reference's */
    sepconv_layer l = parse_layer(int8_dw_specs[_i / 2]);
    bool cc = _i % 2;
    const sepconv_target targets[] = {SEPCONV_TARGET_PORTABLE, SEPCONV_TARGET_AVX2,
                                      SEPCONV_TARGET_AVX512, SEPCONV_TARGET_NEON};
    for (int t = 0; t < (cc ? 1 : 4); t++) {
        if (t > 0 && !test_target_runs(targets[t], "quantize: int8 tcc micro-kernel code"))
            continue;
        sepconv_qkernel_code run;
        sepconv_code *code = int8_kernel(&l, targets[t], cc, NULL, NULL, &run);
        sepconv_verify_report report;
        sepconv_error error;
        ck_assert_msg(sepconv_verify_int8_kernel(&l, &run, 7 + (uint64_t)_i, &report, &error) ==
                          SEPCONV_OK, "%s (%s, %s): %s", int8_dw_specs[_i / 2],
                      cc ? "cc" : "tcc", sepconv_target_name(targets[t]), error.message);
        ck_assert_int_eq(report.comparison.checked, l.output_elements);
        ck_assert_int_eq(report.guard_damage, 0);
        sepconv_code_free(code);
    }
}
END_TEST

START_TEST(int8_verification_catches_wrong_kernels)
{
    /* kernels that compile but round, offset or index wrongly are refused,
     * naming the pass and the first output that differs */
    /* (no activation: relu's clamp at out_zero would hide the negative
     * sums that the first bug rounds wrongly) */
    sepconv_layer l = parse_layer(int8_dw_specs[0]);
    const struct { const char *was, *bug, *pass; } bugs[] = {
        {"+ (1LL << 30)) >> 31", "+ (1LL << 30)) / (1LL << 31)", "random"},
        {"(mask >> 1) + (x < 0)", "(mask >> 1)", "random"},
        {"+ 7) *", "+ 6) *", "random"},
        {"out[c0 + c] =", "out[c0 + c + 1] =", "wrote outside"}};
    for (size_t i = 0; i < sizeof bugs / sizeof bugs[0]; i++) {
        sepconv_qkernel_code run;
        sepconv_code *code = int8_kernel(&l, SEPCONV_TARGET_PORTABLE, false, bugs[i].was,
                                         bugs[i].bug, &run);
        sepconv_verify_report report;
        sepconv_error error;
        ck_assert_msg(sepconv_verify_int8_kernel(&l, &run, 3, &report, &error) ==
                          SEPCONV_MISMATCH, "bug %zu (%s) passed verification", i, bugs[i].bug);
        ck_assert_msg(strstr(error.message, bugs[i].pass) != NULL, "bug %zu: %s", i,
                      error.message);
        sepconv_code_free(code);
    }
    /* a packed pointwise kernel (tcc calling the micro-kernels) whose
     * packing folds the wrong zero point in, or that packs nothing */
    sepconv_layer packs = parse_layer(int8_dw_specs[6]); /* in_zero=-5 */
    const sepconv_target uk[] = {SEPCONV_TARGET_AVX2, SEPCONV_TARGET_NEON};
    bool packed_checked = false;
    for (int t = 0; t < 2 && !packed_checked; t++) {
        if (!test_target_runs(uk[t], "quantize: a wrongly packed int8 pointwise kernel"))
            continue;
        sepconv_qkernel_code run;
        sepconv_code *code = int8_kernel(&packs, uk[t], false, "/* in_zero */ -5",
                                         "/* in_zero */ -4", &run);
        sepconv_verify_report report;
        sepconv_error error;
        ck_assert_int_eq(sepconv_verify_int8_kernel(&packs, &run, 3, &report, &error),
                         SEPCONV_MISMATCH);
        ck_assert_ptr_nonnull(strstr(error.message, "random"));
        sepconv_qkernel_code no_pack = {run.run, NULL, run.packed_elements};
        ck_assert_int_eq(sepconv_verify_int8_kernel(&packs, &no_pack, 3, &report, &error),
                         SEPCONV_INVALID);
        ck_assert_ptr_nonnull(strstr(error.message, "no packing function"));
        sepconv_code_free(code);
        packed_checked = true;
    }
    /* the requantization table, and what it refuses */
    sepconv_layer dw = parse_layer("op=dw df=4 m=2 dk=3 dtype=int8 in_scale=0.5 out_scale=0.25");
    const float scales[2] = {0.5f, 0.375f}, bad[2] = {0.5f, -1};
    int32_t table[4];
    sepconv_error error;
    ck_assert_int_eq(sepconv_int8_requant(&dw, scales, table, &error), SEPCONV_OK);
    /* 0.5 * 0.5 / 0.25 = 1 = 2^30 * 2^(1 - 31); 0.5 * 0.375 / 0.25 = 0.75 =
     * (0.75 * 2^31) * 2^(0 - 31) */
    ck_assert_int_eq(table[0], 1 << 30);
    ck_assert_int_eq(table[2], 1);
    ck_assert_int_eq(table[1], 1610612736);
    ck_assert_int_eq(table[3], 0);
    ck_assert_int_eq(sepconv_int8_requant(&dw, bad, table, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "weight_scales[1]"));
    sepconv_layer f = parse_layer("op=dw df=4 m=2 dk=3");
    ck_assert_int_eq(sepconv_int8_requant(&f, scales, table, &error), SEPCONV_UNSUPPORTED);
    /* a pw layer's table has one entry per output channel (n) */
    sepconv_layer pw = parse_layer("op=pw df=2 m=5 n=2 dtype=int8 in_scale=0.5 out_scale=0.25");
    ck_assert_int_eq(sepconv_int8_requant(&pw, scales, table, &error), SEPCONV_OK);
    ck_assert_int_eq(table[1], 1610612736);
    ck_assert_int_eq(table[3], 0);
}
END_TEST

START_TEST(generated_kernels_clamp_a_sum_at_an_int32_bound)
{
    /* the bound case worked by hand above, through the generated code:
     * tcc's plain C, its micro-kernel calls (auto) and cc (weights 0 and a
     * bias of INT32_MIN + 1: set-up refuses sums that could leave int32;
     * -(2^31 - 2) less 100 would overflow as well) */
    const int8_t input[1] = {0}, weights[1] = {0};
    const float scales[1] = {14.492754f};
    int32_t bias[1];
    sepconv_qtensors t = {.input = input, .weights = weights, .bias = bias,
                          .weight_scales = scales};
    for (int way = 0; way < 3; way++)
        for (int side = 0; side < 2; side++) {
            sepconv_layer l = parse_layer(side ? "op=pw df=1 m=1 n=1 bias=1 dtype=int8 "
                                                 "in_scale=0.069 out_scale=1 out_zero=100"
                                               : "op=pw df=1 m=1 n=1 bias=1 dtype=int8 "
                                                 "in_scale=0.069 out_scale=1 out_zero=-100");
            bias[0] = side ? INT32_MAX : INT32_MIN + 1;
            sepconv_kernel_options options = sepconv_kernel_defaults();
            options.backend = way < 2 ? SEPCONV_BACKEND_TCC : SEPCONV_BACKEND_CC;
            options.target = way == 0 ? SEPCONV_TARGET_PORTABLE : SEPCONV_TARGET_AUTO;
            options.cc.flags = native_flags("-O2");
            sepconv_kernel *kernel = NULL;
            sepconv_error error;
            ck_assert_msg(sepconv_kernel_create(&l, &options, &kernel, &error) == SEPCONV_OK,
                          "%s", error.message);
            ck_assert_msg(sepconv_kernel_set_qweights(kernel, &t, &error) == SEPCONV_OK, "%s",
                          error.message);
            int8_t out[1] = {0};
            ck_assert_int_eq(sepconv_kernel_run_int8(kernel, input, out, &error), SEPCONV_OK);
            ck_assert_msg(out[0] == (side ? 127 : -128), "way %d, out_zero %d: %d", way,
                          side ? 100 : -100, out[0]);
            sepconv_kernel_free(kernel);
        }
}
END_TEST

START_TEST(int8_kernels_through_the_api)
{
    /* create (generate, compile, verify bit for bit), set int8 weights,
     * run on every backend and thread count: the bits are the oracle's; a
     * float call on an int8 kernel and the reverse are refused by name */
    /* (the sep layers: a kernel for each stage and the int8 intermediate,
     * the same bits as the oracle's two stages) */
    const char *specs[] = {
        int8_dw_specs[1], int8_dw_specs[3], int8_dw_specs[6], int8_dw_specs[8],
        "op=sep df=7 m=8 n=12 dk=3 stride=2 bias=1 act=relu6 dtype=int8 in_scale=0.05 "
        "in_zero=-3 mid_scale=0.08 mid_zero=5 out_scale=0.1 out_zero=-7",
        "op=sep h=5 w=6 m=3 n=4 dk=3 layout=nchw dtype=int8 in_scale=0.3 mid_scale=0.2 "
        "mid_zero=-1 out_scale=0.5"};
    for (int s = 0; s < 6; s++) {
        sepconv_layer l = parse_layer(specs[s]);
        const bool sep = l.op == SEPCONV_OP_SEP;
        const int64_t channels = sep ? l.mid_c : l.out_c; /* of the (first) stage */
        int8_t *x = malloc((size_t)l.input_elements), *w = malloc((size_t)l.weight_elements);
        int8_t *pw = malloc((size_t)l.pw_weight_elements + 1);
        int8_t *y = malloc((size_t)l.output_elements), *expected = malloc((size_t)l.output_elements);
        int32_t *b = malloc((size_t)(channels + 1) * sizeof *b);
        int32_t *pb = malloc((size_t)(l.out_c + 1) * sizeof *pb);
        float *scales = malloc((size_t)channels * sizeof *scales);
        float *pw_scales = malloc((size_t)l.out_c * sizeof *pw_scales);
        uint32_t state = 99u + (uint32_t)s;
        for (int64_t i = 0; i < l.input_elements; i++)
            x[i] = (int8_t)((state = state * 1103515245u + 12345u) >> 24);
        for (int64_t i = 0; i < l.weight_elements; i++)
            w[i] = (int8_t)((state = state * 1103515245u + 12345u) >> 24);
        for (int64_t i = 0; i < l.pw_weight_elements; i++)
            pw[i] = (int8_t)((state = state * 1103515245u + 12345u) >> 24);
        for (int64_t c = 0; c < channels; c++) {
            b[c] = (int32_t)((state = state * 1103515245u + 12345u) >> 20) - 2048;
            scales[c] = 0.002f * (float)(1 + c % 7);
        }
        for (int64_t c = 0; c < l.out_c; c++) {
            pb[c] = (int32_t)((state = state * 1103515245u + 12345u) >> 21) - 1024;
            pw_scales[c] = 0.003f * (float)(1 + c % 5);
        }
        sepconv_qtensors t = {x, w, sep ? pw : NULL, l.bias ? b : NULL,
                              sep && l.bias ? pb : NULL, scales, sep ? pw_scales : NULL};
        sepconv_error error;
        ck_assert_msg(sepconv_reference_run_int8(&l, &t, expected, &error) == SEPCONV_OK, "%s",
                      error.message);
        for (int way = 0; way < 4; way++) {
            sepconv_kernel_options options = sepconv_kernel_defaults();
            options.backend = way < 2 ? SEPCONV_BACKEND_TCC : SEPCONV_BACKEND_CC;
            options.cc.flags = native_flags("-O2"); /* (what valgrind's CPU runs, under it) */
            options.threads = way % 2 ? 2 : 1;
            sepconv_kernel *kernel = NULL;
            ck_assert_msg(sepconv_kernel_create(&l, &options, &kernel, &error) == SEPCONV_OK,
                          "%s: %s", specs[s], error.message);
            ck_assert_int_eq(sepconv_kernel_get_info(kernel)->verified, 1);
            ck_assert_int_eq(sepconv_kernel_run_int8(kernel, x, y, &error), SEPCONV_INVALID);
            ck_assert_ptr_nonnull(strstr(error.message, "set the weights first"));
            if (sep) { /* the stage whose parameters are missing is named */
                sepconv_qtensors half = t;
                half.pw_weights = NULL;
                ck_assert_int_eq(sepconv_kernel_set_qweights(kernel, &half, &error),
                                 SEPCONV_INVALID);
                ck_assert_ptr_nonnull(strstr(error.message, "the pointwise stage"));
                ck_assert_int_eq(sepconv_kernel_run_int8(kernel, x, y, &error), SEPCONV_INVALID);
            }
            ck_assert_int_eq(sepconv_kernel_set_qweights(kernel, &t, &error), SEPCONV_OK);
            memset(y, 0x5a, (size_t)l.output_elements);
            ck_assert_int_eq(sepconv_kernel_run_int8(kernel, x, y, &error), SEPCONV_OK);
            ck_assert_msg(memcmp(y, expected, (size_t)l.output_elements) == 0,
                          "%s, way %d: the kernel's bits are not the oracle's", specs[s], way);
            float f[1];
            sepconv_tensors ft = {f, f, f, f, f};
            ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &ft, &error), SEPCONV_INVALID);
            ck_assert_ptr_nonnull(strstr(error.message, "sepconv_kernel_set_qweights"));
            ck_assert_int_eq(sepconv_kernel_run(kernel, f, f, &error), SEPCONV_INVALID);
            ck_assert_ptr_nonnull(strstr(error.message, "sepconv_kernel_run_int8"));
            sepconv_kernel_free(kernel);
        }
        free(x);
        free(w);
        free(pw);
        free(y);
        free(expected);
        free(b);
        free(pb);
        free(scales);
        free(pw_scales);
    }
    /* an int8 sep takes the default schedule, but a wrong one is still an error */
    sepconv_layer qsep = parse_layer(specs[4]);
    sepconv_kernel_options wrong = sepconv_kernel_defaults();
    wrong.schedule = "fuse=9";
    sepconv_kernel *none = NULL;
    sepconv_error why;
    ck_assert_int_eq(sepconv_kernel_create(&qsep, &wrong, &none, &why), SEPCONV_INVALID);
    ck_assert_ptr_null(none);
    ck_assert_ptr_nonnull(strstr(why.message, "fuse=9"));
    /* weights that some input could take past int32 are refused at set-up:
     * 65536 weights of -128 on one output channel reach 255 x 2^23 =
     * 2139095040, and a bias of 2^23 takes that one past INT32_MAX */
    enum { M = 65536 };
    sepconv_layer big = parse_layer("op=pw df=1 m=65536 n=1 bias=1 dtype=int8 in_scale=1 "
                                    "out_scale=1");
    int8_t *bw = malloc(M), *bx = calloc(M, 1), by[1];
    memset(bw, 0x80, M);
    float one = 1;
    int32_t bb = 1 << 23;
    sepconv_qtensors bt = {bx, bw, NULL, &bb, NULL, &one, NULL};
    sepconv_kernel *bk = NULL;
    sepconv_error berror;
    sepconv_kernel_options bo = sepconv_kernel_defaults();
    bo.verify = 0; /* (verified on smaller layers above; this is about set-up) */
    ck_assert_int_eq(sepconv_kernel_create(&big, &bo, &bk, &berror), SEPCONV_OK);
    ck_assert_int_eq(sepconv_kernel_set_qweights(bk, &bt, &berror), SEPCONV_INVALID);
    ck_assert_msg(strstr(berror.message, "output channel 0: its int32 sum can reach "
                                         "2147483648") != NULL, "%s", berror.message);
    ck_assert_int_eq(sepconv_kernel_run_int8(bk, bx, by, &berror), SEPCONV_INVALID);
    bb = (1 << 23) - 1; /* INT32_MAX exactly: every input fits */
    ck_assert_int_eq(sepconv_kernel_set_qweights(bk, &bt, &berror), SEPCONV_OK);
    ck_assert_int_eq(sepconv_kernel_run_int8(bk, bx, by, &berror), SEPCONV_OK);
    sepconv_kernel_free(bk);
    free(bw);
    free(bx);
    /* a float kernel refuses the int8 calls */
    sepconv_layer f = parse_layer("op=dw df=4 m=2 dk=3");
    sepconv_kernel *kernel = NULL;
    sepconv_error error;
    ck_assert_int_eq(sepconv_kernel_create(&f, NULL, &kernel, &error), SEPCONV_OK);
    int8_t q[32] = {0};
    sepconv_qtensors qt = {.input = q, .weights = q};
    ck_assert_int_eq(sepconv_kernel_set_qweights(kernel, &qt, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "float32"));
    ck_assert_int_eq(sepconv_kernel_run_int8(kernel, q, q, &error), SEPCONV_INVALID);
    sepconv_kernel_free(kernel);
}
END_TEST

Suite *quantize_suite(void)
{
    Suite *suite = suite_create("quantize");
    TCase *arithmetic = tcase_create("arithmetic");
    tcase_add_test(arithmetic, multipliers_are_q31_significands_and_shifts);
    tcase_add_test(arithmetic, the_doubling_high_multiply_rounds_ties_up_and_saturates);
    tcase_add_test(arithmetic, the_rounding_shift_rounds_ties_away_from_zero);
    tcase_add_test(arithmetic, rescaling_rounds_twice_as_tflite_does);
    tcase_add_test(arithmetic, activations_clamp_in_the_quantized_domain);
    suite_add_tcase(suite, arithmetic);
    TCase *reference = tcase_create("reference");
    tcase_set_timeout(reference, 60);
    tcase_add_test(reference, a_depthwise_layer_worked_by_hand);
    tcase_add_test(reference, bad_quantization_is_refused_by_name);
    tcase_add_test(reference, an_accumulator_past_int32_is_an_error);
    tcase_add_test(reference, a_sum_at_an_int32_bound_clamps_and_never_wraps);
    tcase_add_loop_test(reference, the_reference_agrees_with_the_specifications_formulas, 0,
                        2 * (int)INDEPENDENT_SPECS);
    suite_add_tcase(suite, reference);
    TCase *kernels = tcase_create("kernels");
    tcase_set_timeout(kernels, 120);
    tcase_add_loop_test(kernels, generated_int8_kernels_are_bit_exact, 0,
                        2 * (int)INT8_DW_SPECS);
    tcase_add_test(kernels, int8_verification_catches_wrong_kernels);
    tcase_add_test(kernels, generated_kernels_clamp_a_sum_at_an_int32_bound);
    tcase_add_test(kernels, int8_kernels_through_the_api);
    suite_add_tcase(suite, kernels);
    TCase *spec = tcase_create("spec");
    tcase_add_test(spec, int8_specs_parse_and_print_back);
    tcase_add_test(spec, int8_specs_are_checked_by_name);
    tcase_add_test(spec, an_int8_sep_splits_at_its_intermediate);
    tcase_add_test(spec, float_code_refuses_int8_layers);
    tcase_add_test(spec, the_int8_reference_reads_the_specs_quantization);
    suite_add_tcase(suite, spec);
    return suite;
}
