/*
 * test_reference.c -- the oracle against hand-computed tiny cases, and its
 * internal consistency: layouts agree, sep = dw then pw, dw(M=1) = conv.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

/* Runs the reference for `spec` on the given tensors into `output`. */
static sepconv_layer run(const char *spec, const float *input,
                         const float *weights, const float *bias, float *output)
{
    sepconv_layer layer = parse_layer(spec);
    sepconv_tensors tensors = {input, weights, bias, NULL, NULL};
    sepconv_error error;
    ck_assert_msg(sepconv_reference_run(&layer, &tensors, output, &error) ==
                      SEPCONV_OK, "%s: %s", spec, error.message);
    return layer;
}

/* Asserts exact equality of `count` floats (NaN equals NaN). */
static void assert_exact(const float *actual, const float *expected, int count)
{
    for (int i = 0; i < count; i++) {
        bool same = actual[i] == expected[i] ||
                    (isnan(actual[i]) && isnan(expected[i]));
        ck_assert_msg(same, "element %d: got %g, expected %g", i,
                      (double)actual[i], (double)expected[i]);
    }
}

/* A 3x3 single-channel image 1..9 and a 3x3 all-ones kernel. */
static const float image3[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const float ones3[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};

START_TEST(conv_same_padding_sums_neighbourhoods)
{
    float out[9];
    run("op=conv df=3 m=1 n=1 dk=3", image3, ones3, NULL, out);
    const float expected[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    assert_exact(out, expected, 9);
}
END_TEST

START_TEST(conv_valid_padding)
{
    float out[1];
    sepconv_layer l = run("op=conv df=3 m=1 n=1 dk=3 pad=valid", image3, ones3,
                          NULL, out);
    ck_assert_int_eq(l.output_elements, 1);
    ck_assert_float_eq(out[0], 45);
}
END_TEST

START_TEST(conv_stride_two)
{
    /* same, stride 2: out 2x2, one pixel of padding on every side */
    float out[4];
    run("op=conv df=3 m=1 n=1 dk=3 stride=2", image3, ones3, NULL, out);
    const float expected[4] = {12, 16, 24, 28};
    assert_exact(out, expected, 4);
}
END_TEST

START_TEST(conv_explicit_asymmetric_padding)
{
    /* top 0, left 1, bottom 0, right 1: one row of three windows */
    float out[3];
    sepconv_layer l = run("op=conv df=3 m=1 n=1 dk=3 pad=0:1:0:1", image3, ones3,
                          NULL, out);
    ck_assert_int_eq(l.out_h, 1);
    ck_assert_int_eq(l.out_w, 3);
    const float expected[3] = {27, 45, 33};
    assert_exact(out, expected, 3);
}
END_TEST

START_TEST(conv_is_correlation_not_convolution)
{
    /* the only nonzero tap is right of centre: out(y, x) = in(y, x + 1) */
    const float right[9] = {0, 0, 0, 0, 0, 1, 0, 0, 0};
    float out[9];
    run("op=conv df=3 m=1 n=1 dk=3 pad=1", image3, right, NULL, out);
    const float expected[9] = {2, 3, 0, 5, 6, 0, 8, 9, 0};
    assert_exact(out, expected, 9);
}
END_TEST

START_TEST(conv_dilation)
{
    /* 4x4 input in(r,c) = 4r+c+1; 2x2 taps spread by 2 (extent 3), valid */
    float input[16];
    for (int i = 0; i < 16; i++)
        input[i] = (float)(i + 1);
    const float taps[4] = {1, 10, 100, 1000};
    float out[4];
    run("op=conv df=4 m=1 n=1 dk=2 dilation=2 pad=valid", input, taps, NULL, out);
    /* out(0,0) = in(0,0) + 10 in(0,2) + 100 in(2,0) + 1000 in(2,2) */
    const float expected[4] = {1 + 30 + 900 + 11000, 2 + 40 + 1000 + 12000,
                               5 + 70 + 1300 + 15000, 6 + 80 + 1400 + 16000};
    assert_exact(out, expected, 4);
}
END_TEST

START_TEST(conv_channels_nhwc)
{
    /* 1x1 pixel, m=2, n=3: out[o] = sum_i in[i] * w[i][o] (+ bias) */
    const float input[2] = {2, 3};
    const float weights[6] = {1, 2, 3, 10, 20, 30}; /* [1][1][m][n] */
    const float bias[3] = {0.5f, -100, 0};
    float out[3];
    run("op=conv df=1 m=2 n=3 dk=1 bias=1", input, weights, bias, out);
    const float expected[3] = {32.5f, -36, 96};
    assert_exact(out, expected, 3);
}
END_TEST

START_TEST(depthwise_multiplier_and_bias)
{
    /* 2x2 pixels of (a, 10a); mult 2: channel c*2+j is in[c] * w[c][j] */
    const float input[8] = {1, 10, 2, 20, 3, 30, 4, 40};
    const float weights[4] = {1, 2, 3, 4}; /* [1][1][m][mult] */
    const float bias[4] = {0.5f, -0.5f, 1, -1};
    float out[16];
    sepconv_layer l = run("op=dw df=2 m=2 dk=1 mult=2 bias=1", input, weights,
                          bias, out);
    ck_assert_int_eq(l.out_c, 4);
    const float expected[16] = {1.5f, 1.5f, 31, 39,  2.5f, 3.5f, 61, 79,
                                3.5f, 5.5f, 91, 119, 4.5f, 7.5f, 121, 159};
    assert_exact(out, expected, 16);
}
END_TEST

START_TEST(depthwise_3x3_per_channel)
{
    /* two channels, NHWC: channel 0 is image3, channel 1 is -image3; the
     * filters are all-ones and the right-neighbour tap */
    float input[18], weights[18];
    for (int i = 0; i < 9; i++) {
        input[2 * i] = image3[i];
        input[2 * i + 1] = -image3[i];
        weights[2 * i] = 1;
        weights[2 * i + 1] = i == 5 ? 1 : 0;
    }
    float out[18];
    run("op=dw df=3 m=2 dk=3", input, weights, NULL, out);
    const float sums[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    const float shifted[9] = {-2, -3, 0, -5, -6, 0, -8, -9, 0};
    for (int i = 0; i < 9; i++) {
        ck_assert_float_eq(out[2 * i], sums[i]);
        ck_assert_float_eq(out[2 * i + 1], shifted[i]);
    }
}
END_TEST

START_TEST(activations)
{
    /* out = 2x + 1 then the activation; NaN passes through relu and relu6 */
    const float input[6] = {-3, 0.25f, 2.5f, 7, NAN, -INFINITY};
    const float weight[1] = {2}, bias[1] = {1};
    float out[6];
    run("op=pw h=2 w=3 m=1 n=1 bias=1", input, weight, bias, out);
    const float none[6] = {-5, 1.5f, 6, 15, NAN, -INFINITY};
    assert_exact(out, none, 6);
    run("op=pw h=2 w=3 m=1 n=1 bias=1 act=relu", input, weight, bias, out);
    const float relu[6] = {0, 1.5f, 6, 15, NAN, 0};
    assert_exact(out, relu, 6);
    run("op=pw h=2 w=3 m=1 n=1 bias=1 act=relu6", input, weight, bias, out);
    const float relu6[6] = {0, 1.5f, 6, 6, NAN, 0};
    assert_exact(out, relu6, 6);
    ck_assert(isnan(out[4]));
}
END_TEST

START_TEST(accumulates_in_double)
{
    /* 1 + 2^-30 - 1 is 2^-30 in double, 0 in a float running sum */
    const float input[3] = {1, 0x1p-30f, -1};
    const float weights[3] = {1, 1, 1};
    float out[1];
    run("op=pw df=1 m=3 n=1", input, weights, NULL, out);
    ck_assert_float_eq(out[0], 0x1p-30f);
}
END_TEST

/* ---- consistency over random layers ---------------------------------- */

/* Layers that exercise every option in both stages. */
static const char *const consistency_specs[] = {
    "op=conv h=7 w=6 m=3 n=4 dk=3 stride=2 bias=1 act=relu batch=2",
    "op=conv df=6 m=2 n=3 dk=2 dilation=2 pad=1:0:2:1 act=relu6",
    "op=dw h=6 w=7 m=3 dk=3 mult=2 stride=2 bias=1 act=relu6 batch=2",
    "op=dw df=5 m=4 dk=5 dilation=1 pad=valid",
    "op=pw df=5 m=6 n=3 bias=1 act=relu stride=2",
    "op=sep h=7 w=5 m=3 n=5 dk=3 mult=2 stride=2 bias=1 dw_act=relu6 pw_act=relu",
    "op=sep df=6 m=4 n=2 dk=3 dilation=2 pad=2 batch=3",
};

/* Index of (n, h, w, c) in a tensor stored in NHWC or NCHW. */
static int64_t at(bool nchw, int64_t n, int64_t h, int64_t w, int64_t c,
                  int64_t H, int64_t W, int64_t C)
{
    return nchw ? ((n * C + c) * H + h) * W + w : ((n * H + h) * W + w) * C + c;
}

/* Copies an NHWC tensor into NCHW order. */
static void to_nchw(const float *nhwc, float *nchw, int64_t N, int64_t H,
                    int64_t W, int64_t C)
{
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t w = 0; w < W; w++)
                for (int64_t c = 0; c < C; c++)
                    nchw[at(true, n, h, w, c, H, W, C)] =
                        nhwc[at(false, n, h, w, c, H, W, C)];
}

/* TensorFlow weights [k][k][in][out] to PyTorch [out][in][k][k]. */
static void weights_to_nchw(const float *tf, float *pt, int64_t k, int64_t in,
                            int64_t out)
{
    for (int64_t ky = 0; ky < k; ky++)
        for (int64_t kx = 0; kx < k; kx++)
            for (int64_t i = 0; i < in; i++)
                for (int64_t o = 0; o < out; o++)
                    pt[((o * in + i) * k + ky) * k + kx] =
                        tf[((ky * k + kx) * in + i) * out + o];
}

/* Depthwise [k][k][m*mult] to [m*mult][1][k][k]. */
static void depthwise_to_nchw(const float *tf, float *pt, int64_t k, int64_t c)
{
    for (int64_t ky = 0; ky < k; ky++)
        for (int64_t kx = 0; kx < k; kx++)
            for (int64_t o = 0; o < c; o++)
                pt[(o * k + ky) * k + kx] = tf[(ky * k + kx) * c + o];
}

START_TEST(nhwc_and_nchw_agree)
{
    const char *spec = consistency_specs[_i];
    sepconv_layer nhwc = parse_layer(spec);
    char nchw_spec[512];
    snprintf(nchw_spec, sizeof nchw_spec, "%s layout=nchw", spec);
    sepconv_layer nchw = parse_layer(nchw_spec);
    sepconv_buffers a, b;
    ck_assert_int_eq(sepconv_buffers_alloc(&nhwc, &a, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_buffers_alloc(&nchw, &b, NULL), SEPCONV_OK);
    sepconv_buffers_fill_random(&nhwc, &a, 42 + (uint64_t)_i);
    to_nchw(a.input, b.input, nhwc.batch, nhwc.in_h, nhwc.in_w, nhwc.m);
    bool depthwise = nhwc.op == SEPCONV_OP_DW || nhwc.op == SEPCONV_OP_SEP;
    if (depthwise)
        depthwise_to_nchw(a.weights, b.weights, nhwc.kernel, nhwc.mid_c);
    else
        weights_to_nchw(a.weights, b.weights, nhwc.kernel, nhwc.m, nhwc.n);
    if (nhwc.op == SEPCONV_OP_SEP)
        weights_to_nchw(a.pw_weights, b.pw_weights, 1, nhwc.mid_c, nhwc.n);
    if (nhwc.bias) {
        memcpy(b.bias, a.bias, (size_t)nhwc.bias_elements * sizeof(float));
        if (nhwc.pw_bias_elements)
            memcpy(b.pw_bias, a.pw_bias,
                   (size_t)nhwc.pw_bias_elements * sizeof(float));
    }
    sepconv_tensors ta = sepconv_buffers_tensors(&a), tb = sepconv_buffers_tensors(&b);
    ck_assert_int_eq(sepconv_reference_run(&nhwc, &ta, a.output, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_reference_run(&nchw, &tb, b.output, NULL), SEPCONV_OK);
    float *transposed = malloc((size_t)nhwc.output_elements * sizeof(float));
    to_nchw(a.output, transposed, nhwc.batch, nhwc.out_h, nhwc.out_w, nhwc.out_c);
    assert_exact(b.output, transposed, (int)nhwc.output_elements);
    /* a real computation, not zeros everywhere */
    float largest = 0;
    for (int64_t i = 0; i < nhwc.output_elements; i++)
        largest = fmaxf(largest, fabsf(transposed[i]));
    ck_assert_float_gt(largest, 0.1f);
    free(transposed);
    sepconv_buffers_free(&a);
    sepconv_buffers_free(&b);
}
END_TEST

START_TEST(sep_is_dw_then_pw)
{
    const char *specs[] = {
        "h=7 w=5 m=3 n=5 dk=3 mult=2 stride=2 bias=1 dw_act=relu6 pw_act=relu",
        "df=6 m=4 n=2 dk=3 dilation=2 pad=2 batch=3 layout=nchw act=relu",
        "df=5 m=2 n=3 dk=5 pad=valid bias=1"};
    for (int s = 0; s < 3; s++) {
        char text[512];
        snprintf(text, sizeof text, "op=sep %s", specs[s]);
        sepconv_layer sep = parse_layer(text);
        sepconv_buffers buffers;
        ck_assert_int_eq(sepconv_buffers_alloc(&sep, &buffers, NULL), SEPCONV_OK);
        sepconv_buffers_fill_random(&sep, &buffers, 7);
        sepconv_tensors t = sepconv_buffers_tensors(&buffers);
        ck_assert_int_eq(sepconv_reference_run(&sep, &t, buffers.output, NULL),
                         SEPCONV_OK);
        /* the same layer as two: dw with the depthwise activation, then pw */
        char dw_text[512], pw_text[512], canonical[512];
        sepconv_layer_format(&sep, canonical, sizeof canonical, NULL);
        snprintf(dw_text, sizeof dw_text,
                 "op=dw h=%lld w=%lld m=%lld dk=%lld stride=%lld dilation=%lld "
                 "mult=%lld pad=%lld:%lld:%lld:%lld layout=%s bias=%d act=%s "
                 "batch=%lld",
                 (long long)sep.in_h, (long long)sep.in_w, (long long)sep.m,
                 (long long)sep.kernel, (long long)sep.stride,
                 (long long)sep.dilation, (long long)sep.multiplier,
                 (long long)sep.pad_top, (long long)sep.pad_left,
                 (long long)sep.pad_bottom, (long long)sep.pad_right,
                 sepconv_layout_name(sep.layout), sep.bias,
                 sepconv_activation_name(sep.dw_act), (long long)sep.batch);
        snprintf(pw_text, sizeof pw_text,
                 "op=pw h=%lld w=%lld m=%lld n=%lld layout=%s bias=%d act=%s "
                 "batch=%lld",
                 (long long)sep.out_h, (long long)sep.out_w, (long long)sep.mid_c,
                 (long long)sep.n, sepconv_layout_name(sep.layout), sep.bias,
                 sepconv_activation_name(sep.pw_act), (long long)sep.batch);
        sepconv_layer dw = parse_layer(dw_text), pw = parse_layer(pw_text);
        sepconv_layer split_dw, split_pw;
        ck_assert_int_eq(sepconv_layer_split(&sep, &split_dw, &split_pw, NULL), SEPCONV_OK);
        ck_assert_int_eq(memcmp(&split_dw, &dw, sizeof dw), 0);
        ck_assert_int_eq(memcmp(&split_pw, &pw, sizeof pw), 0);
        float *mid = malloc((size_t)dw.output_elements * sizeof(float));
        float *out = malloc((size_t)pw.output_elements * sizeof(float));
        sepconv_tensors tdw = {buffers.input, buffers.weights, buffers.bias, NULL, NULL};
        sepconv_tensors tpw = {mid, buffers.pw_weights, buffers.pw_bias, NULL, NULL};
        ck_assert_int_eq(sepconv_reference_run(&dw, &tdw, mid, NULL), SEPCONV_OK);
        ck_assert_int_eq(sepconv_reference_run(&pw, &tpw, out, NULL), SEPCONV_OK);
        ck_assert_int_eq(pw.output_elements, sep.output_elements);
        assert_exact(buffers.output, out, (int)sep.output_elements);
        free(mid);
        free(out);
        sepconv_buffers_free(&buffers);
    }
}
END_TEST

START_TEST(depthwise_with_one_channel_is_a_conv)
{
    const char *shapes[] = {"df=7 dk=3 stride=2 bias=1 act=relu",
                            "h=6 w=9 dk=5 dilation=2 pad=3",
                            "df=4 dk=2 pad=valid layout=nchw act=relu6 bias=1"};
    for (int s = 0; s < 3; s++) {
        char dw_text[256], conv_text[256];
        snprintf(dw_text, sizeof dw_text, "op=dw m=1 %s", shapes[s]);
        snprintf(conv_text, sizeof conv_text, "op=conv m=1 n=1 %s", shapes[s]);
        sepconv_layer dw = parse_layer(dw_text), conv = parse_layer(conv_text);
        sepconv_buffers buffers;
        ck_assert_int_eq(sepconv_buffers_alloc(&dw, &buffers, NULL), SEPCONV_OK);
        sepconv_buffers_fill_random(&dw, &buffers, 99);
        sepconv_tensors t = sepconv_buffers_tensors(&buffers);
        float *out = malloc((size_t)conv.output_elements * sizeof(float));
        ck_assert_int_eq(sepconv_reference_run(&dw, &t, buffers.output, NULL),
                         SEPCONV_OK);
        ck_assert_int_eq(sepconv_reference_run(&conv, &t, out, NULL), SEPCONV_OK);
        assert_exact(buffers.output, out, (int)dw.output_elements);
        free(out);
        sepconv_buffers_free(&buffers);
    }
}
END_TEST

START_TEST(batch_items_are_independent)
{
    sepconv_layer two = parse_layer("op=sep df=5 m=3 n=4 dk=3 batch=2 bias=1");
    sepconv_layer one = parse_layer("op=sep df=5 m=3 n=4 dk=3 batch=1 bias=1");
    sepconv_buffers buffers;
    ck_assert_int_eq(sepconv_buffers_alloc(&two, &buffers, NULL), SEPCONV_OK);
    sepconv_buffers_fill_random(&two, &buffers, 5);
    sepconv_tensors t = sepconv_buffers_tensors(&buffers);
    ck_assert_int_eq(sepconv_reference_run(&two, &t, buffers.output, NULL), SEPCONV_OK);
    float single[100];
    ck_assert_int_lt(one.output_elements, 101);
    t.input = buffers.input + one.input_elements; /* the second image */
    ck_assert_int_eq(sepconv_reference_run(&one, &t, single, NULL), SEPCONV_OK);
    assert_exact(buffers.output + one.output_elements, single,
                 (int)one.output_elements);
    sepconv_buffers_free(&buffers);
}
END_TEST

START_TEST(magnitude_sums_absolute_terms)
{
    /* out = -2*3 + 4*(-5) + bias(-1) = -27; magnitude 6 + 20 + 1 = 27 */
    sepconv_layer l = parse_layer("op=pw df=1 m=2 n=1 bias=1 act=relu");
    const float input[2] = {-2, 4}, weights[2] = {3, -5}, bias[1] = {-1};
    sepconv_tensors t = {input, weights, bias, NULL, NULL};
    double magnitude[1];
    float out[1];
    ck_assert_int_eq(sepconv_reference_magnitude(&l, &t, magnitude, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_reference_run(&l, &t, out, NULL), SEPCONV_OK);
    ck_assert_double_eq(magnitude[0], 27.0);
    ck_assert_float_eq(out[0], 0); /* relu of -27 */
}
END_TEST

START_TEST(missing_tensors_are_refused)
{
    sepconv_layer l = parse_layer("op=sep df=3 m=1 n=1 dk=3 bias=1");
    float x[9] = {0}, w[9] = {0}, out[9];
    sepconv_tensors t = {x, w, w, w, NULL};
    sepconv_error error;
    ck_assert_int_eq(sepconv_reference_run(&l, &t, out, &error), SEPCONV_INVALID);
    ck_assert_str_eq(error.message, "the layer needs the pw_bias tensor, but it is NULL");
    t.weights = NULL;
    ck_assert_int_eq(sepconv_reference_run(&l, &t, out, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "weights"));
    ck_assert_int_eq(sepconv_reference_run(&l, &t, NULL, &error), SEPCONV_INVALID);
}
END_TEST

Suite *reference_suite(void)
{
    Suite *suite = suite_create("reference");
    TCase *hand = tcase_create("hand-computed");
    tcase_add_test(hand, conv_same_padding_sums_neighbourhoods);
    tcase_add_test(hand, conv_valid_padding);
    tcase_add_test(hand, conv_stride_two);
    tcase_add_test(hand, conv_explicit_asymmetric_padding);
    tcase_add_test(hand, conv_is_correlation_not_convolution);
    tcase_add_test(hand, conv_dilation);
    tcase_add_test(hand, conv_channels_nhwc);
    tcase_add_test(hand, depthwise_multiplier_and_bias);
    tcase_add_test(hand, depthwise_3x3_per_channel);
    tcase_add_test(hand, activations);
    tcase_add_test(hand, accumulates_in_double);
    tcase_add_test(hand, magnitude_sums_absolute_terms);
    tcase_add_test(hand, missing_tensors_are_refused);
    suite_add_tcase(suite, hand);
    TCase *consistency = tcase_create("consistency");
    tcase_add_loop_test(consistency, nhwc_and_nchw_agree, 0,
                        (int)(sizeof consistency_specs / sizeof consistency_specs[0]));
    tcase_add_test(consistency, sep_is_dw_then_pw);
    tcase_add_test(consistency, depthwise_with_one_channel_is_a_conv);
    tcase_add_test(consistency, batch_items_are_independent);
    suite_add_tcase(suite, consistency);
    return suite;
}
