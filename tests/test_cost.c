/*
 * test_cost.c -- the cost model against hand counts and the arithmetic of
 * depthwise separable convolution; MobileNet v1's totals.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

/* The cost of a spec that must be valid. */
static sepconv_cost cost_of(const char *spec)
{
    sepconv_layer layer = parse_layer(spec);
    sepconv_cost cost;
    sepconv_error error;
    ck_assert_msg(sepconv_cost_compute(&layer, &cost, &error) == SEPCONV_OK, "%s",
                  error.message);
    return cost;
}

START_TEST(hand_counted_small_layers)
{
    /* conv 5x5x2 -> 5x5x3, 3x3 taps: 25 pixels * 9 taps * 2 * 3 */
    sepconv_cost conv = cost_of("op=conv df=5 m=2 n=3 dk=3 bias=1");
    ck_assert_int_eq(conv.macs, 25 * 9 * 2 * 3);
    ck_assert_int_eq(conv.weights, 9 * 2 * 3);
    ck_assert_int_eq(conv.biases, 3);
    ck_assert_int_eq(conv.parameters, 57);
    ck_assert_int_eq(conv.bytes_read, 5 * 5 * 2 * 4);
    ck_assert_int_eq(conv.bytes_written, 5 * 5 * 3 * 4);
    ck_assert_int_eq(conv.ratio_to_conv, 0);
    /* dw 6x6x4, mult 2, stride 2: 3x3 outputs * 8 channels * 9 taps */
    sepconv_cost dw = cost_of("op=dw df=6 m=4 dk=3 stride=2 mult=2 bias=1");
    ck_assert_int_eq(dw.macs, 9 * 8 * 9);
    ck_assert_int_eq(dw.dw_macs, dw.macs);
    ck_assert_int_eq(dw.parameters, 9 * 8 + 8);
    ck_assert_int_eq(dw.dw_parameters, dw.parameters);
    /* pw with batch 3 */
    sepconv_cost pw = cost_of("op=pw df=4 m=8 n=16 batch=3");
    ck_assert_int_eq(pw.macs, 3 * 16 * 8 * 16);
    ck_assert_int_eq(pw.pw_parameters, 8 * 16);
    /* sep: both stages and the round trip through the intermediate */
    sepconv_cost sep = cost_of("op=sep df=4 m=2 n=5 dk=3 bias=1");
    ck_assert_int_eq(sep.dw_macs, 16 * 2 * 9);
    ck_assert_int_eq(sep.pw_macs, 16 * 2 * 5);
    ck_assert_int_eq(sep.macs, 16 * 2 * 9 + 16 * 2 * 5);
    ck_assert_int_eq(sep.parameters, 18 + 2 + 10 + 5);
    ck_assert_int_eq(sep.intermediate_bytes, 16 * 2 * 4);
    ck_assert_int_eq(sep.bytes_read, (16 * 2 + 16 * 2) * 4);
    ck_assert_int_eq(sep.bytes_written, (16 * 2 + 16 * 5) * 4);
    ck_assert_int_eq(sep.conv_macs, 16 * 9 * 2 * 5);
    ck_assert_int_eq(sep.parameter_bytes, (18 + 2 + 10 + 5) * 4);
    /* int8: activations and weights a byte, biases and the per-channel
     * weight scales (2 depthwise + 5 pointwise) 4 */
    sepconv_cost q = cost_of("op=sep df=4 m=2 n=5 dk=3 bias=1 dtype=int8 in_scale=0.5 "
                             "mid_scale=0.25 out_scale=1");
    ck_assert_int_eq(q.macs, sep.macs);
    ck_assert_int_eq(q.parameters, sep.parameters);
    ck_assert_int_eq(q.parameter_bytes, 18 + 10 + (2 + 5) * 4 + (2 + 5) * 4);
    ck_assert_int_eq(q.bytes_read, 16 * 2 + 16 * 2);
    ck_assert_int_eq(q.intermediate_bytes, 16 * 2);
    sepconv_cost qdw = cost_of("op=dw df=4 m=3 dk=3 dtype=int8 in_scale=1 out_scale=1");
    ck_assert_int_eq(qdw.parameter_bytes, 27 + 3 * 4);
    sepconv_cost qpw = cost_of("op=pw df=2 m=8 n=16 dtype=int8 in_scale=1 out_scale=1");
    ck_assert_int_eq(qpw.parameter_bytes, 8 * 16 + 16 * 4);
}
END_TEST

START_TEST(ratio_is_one_over_n_plus_one_over_dk_squared)
{
    const int ns[] = {1, 7, 64, 1024};
    const int dks[] = {1, 3, 5, 7};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            char spec[128];
            snprintf(spec, sizeof spec, "op=sep df=9 m=6 n=%d dk=%d", ns[i], dks[j]);
            sepconv_cost cost = cost_of(spec);
            double expected = 1.0 / ns[i] + 1.0 / (dks[j] * dks[j]);
            ck_assert_msg(fabs(cost.ratio_to_conv - expected) < 1e-12,
                          "%s: %g vs %g", spec, cost.ratio_to_conv, expected);
        }
    /* the README's example: N=1024, D_K=3 prints as 0.112 (Howard et al.
     * 2017, arXiv:1704.04861, Section 3.1: a reduction of 1/N + 1/D_K^2) */
    char printed[16];
    snprintf(printed, sizeof printed, "%.3f",
             cost_of("op=sep df=14 m=512 n=1024 dk=3").ratio_to_conv);
    ck_assert_str_eq(printed, "0.112");
}
END_TEST

START_TEST(mobilenet_v1_totals)
{
    char path[4096];
    const char *root = getenv("SEPCONV_ROOT");
    snprintf(path, sizeof path, "%s/examples/mobilenet_v1.layers", root ? root : ".");
    sepconv_model model;
    sepconv_error error;
    ck_assert_msg(sepconv_model_load(path, &model, &error) == SEPCONV_OK, "%s",
                  error.message);
    ck_assert_uint_eq(model.count, 15);
    sepconv_cost total = {0};
    for (size_t i = 0; i < model.count; i++) {
        sepconv_cost cost;
        ck_assert_int_eq(sepconv_cost_compute(&model.layers[i], &cost, &error),
                         SEPCONV_OK);
        ck_assert_int_eq(sepconv_cost_accumulate(&total, &cost, &error), SEPCONV_OK);
    }
    /* Independent count from the architecture's table (Howard et al. 2017,
     * arXiv:1704.04861, Table 1): 13 blocks of (input size, channels in,
     * channels out, stride). */
    const int blocks[13][4] = {
        {112, 32, 64, 1},  {112, 64, 128, 2}, {56, 128, 128, 1},
        {56, 128, 256, 2}, {28, 256, 256, 1}, {28, 256, 512, 2},
        {14, 512, 512, 1}, {14, 512, 512, 1}, {14, 512, 512, 1},
        {14, 512, 512, 1}, {14, 512, 512, 1}, {14, 512, 1024, 2},
        {7, 1024, 1024, 1}};
    int64_t dw = 0, pw = 0, params = 3 * 3 * 3 * 32 + 32 + 1024 * 1000 + 1000;
    for (int b = 0; b < 13; b++) {
        int64_t out = blocks[b][0] / blocks[b][3];
        dw += out * out * blocks[b][1] * 9;
        pw += out * out * blocks[b][1] * blocks[b][2];
        params += 9 * blocks[b][1] + blocks[b][1] + blocks[b][1] * blocks[b][2] +
                  blocks[b][2];
    }
    int64_t conv1 = 112 * 112 * 32 * 27, fc = 1024 * 1000;
    ck_assert_int_eq(total.dw_macs, dw);
    ck_assert_int_eq(total.pw_macs, pw + fc);
    ck_assert_int_eq(total.macs, conv1 + dw + pw + fc);
    ck_assert_int_eq(total.parameters, params);
    ck_assert_int_eq(total.parameter_bytes, params * 4); /* fp32: the totals add them too */
    /* and the paper's rounded figures (Table 4): 569 M mult-adds, 4.2 M
     * parameters */
    ck_assert_int_eq((total.macs + 500000) / 1000000, 569);
    ck_assert_int_eq((total.parameters + 50000) / 100000, 42);
    /* the paper's Table 2 (resource per layer type): the 3x3 depthwise
     * layers take 3.06% of the mult-adds, the 1x1 ones 94.86%; in hundredths
     * of a percent */
    ck_assert_int_eq((20000 * dw / total.macs + 1) / 2, 306);
    ck_assert_int_eq((20000 * pw / total.macs + 1) / 2, 9486);
    sepconv_model_free(&model);
}
END_TEST

START_TEST(accumulate_detects_overflow)
{
    sepconv_cost total = {.macs = INT64_MAX - 1};
    sepconv_cost more = {.macs = 2};
    sepconv_error error;
    ck_assert_int_eq(sepconv_cost_accumulate(&total, &more, &error), SEPCONV_OVERFLOW);
    ck_assert_int_eq(total.macs, INT64_MAX - 1); /* untouched on failure */
}
END_TEST

START_TEST(cost_overflow_is_reported)
{
    /* tensors fit in bytes, but 2^31 pixels x 2^31 channels x 2^31 outputs of
     * multiply-adds do not fit in 64 bits */
    sepconv_layer layer = parse_layer("op=conv df=4 m=1 n=1 dk=1");
    /* hand-made beyond what parse allows: 2^60 pixels times 2^60 per pixel */
    layer.out_h = layer.out_w = INT64_C(1) << 30;
    layer.n = layer.m = INT64_C(1) << 30;
    sepconv_cost cost;
    sepconv_error error;
    ck_assert_int_eq(sepconv_cost_compute(&layer, &cost, &error), SEPCONV_OVERFLOW);
    ck_assert_ptr_nonnull(strstr(error.message, "overflows 64 bits"));
}
END_TEST

Suite *cost_suite(void)
{
    Suite *suite = suite_create("cost");
    TCase *c = tcase_create("cost");
    tcase_add_test(c, hand_counted_small_layers);
    tcase_add_test(c, ratio_is_one_over_n_plus_one_over_dk_squared);
    tcase_add_test(c, mobilenet_v1_totals);
    tcase_add_test(c, accumulate_detects_overflow);
    tcase_add_test(c, cost_overflow_is_reported);
    suite_add_tcase(suite, c);
    return suite;
}
