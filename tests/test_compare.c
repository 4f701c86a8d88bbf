/*
 * test_compare.c -- the comparison helper: the derived tolerance accepts
 * honest float arithmetic and refuses real errors; coordinates and NaNs.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

/* Everything one comparison needs, for a spec and a seed. */
typedef struct fixture {
    sepconv_layer layer;
    sepconv_buffers buffers;
    float *actual;
    double *magnitude;
} fixture;

/* Allocates, fills and runs the reference and its magnitudes. */
static fixture setup(const char *spec, uint64_t seed)
{
    fixture f = {.layer = parse_layer(spec)};
    ck_assert_int_eq(sepconv_buffers_alloc(&f.layer, &f.buffers, NULL), SEPCONV_OK);
    sepconv_buffers_fill_random(&f.layer, &f.buffers, seed);
    sepconv_tensors t = sepconv_buffers_tensors(&f.buffers);
    size_t count = (size_t)f.layer.output_elements;
    f.actual = malloc(count * sizeof(float));
    f.magnitude = malloc(count * sizeof(double));
    ck_assert_int_eq(sepconv_reference_run(&f.layer, &t, f.buffers.output, NULL),
                     SEPCONV_OK);
    ck_assert_int_eq(sepconv_reference_magnitude(&f.layer, &t, f.magnitude, NULL),
                     SEPCONV_OK);
    memcpy(f.actual, f.buffers.output, count * sizeof(float));
    return f;
}

static void teardown(fixture *f)
{
    sepconv_buffers_free(&f->buffers);
    free(f->actual);
    free(f->magnitude);
}

/* A pointwise layer computed the way a kernel would: float sums, in the
 * order given by `reverse` (forwards or backwards over the channels). */
static void float_pointwise(const fixture *f, bool reverse, bool drop_last)
{
    const sepconv_layer *l = &f->layer;
    int64_t pixels = l->batch * l->out_h * l->out_w;
    for (int64_t p = 0; p < pixels; p++)
        for (int64_t o = 0; o < l->n; o++) {
            float sum = 0;
            int64_t count = drop_last ? l->m - 1 : l->m;
            for (int64_t k = 0; k < count; k++) {
                int64_t i = reverse ? l->m - 1 - k : k;
                sum += f->buffers.input[p * l->m + i] * f->buffers.weights[i * l->n + o];
            }
            f->actual[p * l->n + o] = sum;
        }
}

START_TEST(gamma_values)
{
    ck_assert_double_eq(sepconv_tolerance_gamma(0), 0.0);
    double u = 0x1p-24;
    ck_assert_double_eq_tol(sepconv_tolerance_gamma(1), u / (1 - u), 1e-22);
    ck_assert_double_eq_tol(sepconv_tolerance_gamma(1000), 1000 * u / (1 - 1000 * u),
                            1e-18);
    ck_assert(isinf(sepconv_tolerance_gamma(INT64_C(1) << 24)));
    ck_assert_int_eq(sepconv_reduction_length(&(sepconv_layer){
                         .op = SEPCONV_OP_SEP, .kernel = 3, .mid_c = 64}),
                     9 + 64);
    ck_assert_int_eq(sepconv_reduction_length(&(sepconv_layer){
                         .op = SEPCONV_OP_CONV, .kernel = 5, .m = 7}),
                     25 * 7);
}
END_TEST

START_TEST(identical_outputs_match)
{
    fixture f = setup("op=sep df=6 m=5 n=7 dk=3 bias=1 act=relu", 1);
    sepconv_comparison result;
    ck_assert_int_eq(sepconv_compare(&f.layer, f.buffers.output, f.actual,
                                     f.magnitude, &result, NULL), SEPCONV_OK);
    ck_assert_int_eq(result.checked, f.layer.output_elements);
    ck_assert_int_eq(result.mismatches, 0);
    ck_assert_double_eq(result.max_abs_error, 0);
    teardown(&f);
}
END_TEST

START_TEST(float_sums_in_any_order_pass)
{
    /* a long reduction (m=2048) in float, forwards and backwards */
    fixture f = setup("op=pw df=3 m=2048 n=8", 2);
    for (int reverse = 0; reverse < 2; reverse++) {
        float_pointwise(&f, reverse, false);
        sepconv_comparison result;
        sepconv_error error;
        ck_assert_msg(sepconv_compare(&f.layer, f.buffers.output, f.actual,
                                      f.magnitude, &result, &error) == SEPCONV_OK,
                      "%s", error.message);
        ck_assert_double_gt(result.max_abs_error, 0); /* float did round */
        ck_assert_double_gt(result.worst_ratio, 0);
        ck_assert_double_le(result.worst_ratio, 1);
    }
    teardown(&f);
}
END_TEST

START_TEST(a_dropped_term_is_caught)
{
    fixture f = setup("op=pw df=3 m=2048 n=8", 3);
    float_pointwise(&f, false, true);
    sepconv_comparison result;
    sepconv_error error;
    ck_assert_int_eq(sepconv_compare(&f.layer, f.buffers.output, f.actual,
                                     f.magnitude, &result, &error), SEPCONV_MISMATCH);
    ck_assert_int_gt(result.mismatches, f.layer.output_elements / 2);
    ck_assert_ptr_nonnull(strstr(error.message, "differ from the reference"));
    teardown(&f);
}
END_TEST

START_TEST(first_mismatch_coordinates)
{
    const char *layouts[] = {"nhwc", "nchw"};
    for (int l = 0; l < 2; l++) {
        char spec[128];
        snprintf(spec, sizeof spec, "op=conv h=4 w=5 m=2 n=6 dk=3 batch=3 layout=%s",
                 layouts[l]);
        fixture f = setup(spec, 4);
        /* damage (n=2, h=1, w=3, c=4) and, later in memory, one more */
        int64_t H = 4, W = 5, C = 6;
        int64_t index = l == 0 ? ((2 * H + 1) * W + 3) * C + 4
                               : ((2 * C + 4) * H + 1) * W + 3;
        f.actual[index] += 1.0f;
        f.actual[f.layer.output_elements - 1] = -f.actual[f.layer.output_elements - 1] - 1;
        sepconv_comparison r;
        sepconv_error error;
        ck_assert_int_eq(sepconv_compare(&f.layer, f.buffers.output, f.actual,
                                         f.magnitude, &r, &error), SEPCONV_MISMATCH);
        ck_assert_int_eq(r.mismatches, 2);
        ck_assert_int_eq(r.first_index, index);
        ck_assert_int_eq(r.first_n, 2);
        ck_assert_int_eq(r.first_h, 1);
        ck_assert_int_eq(r.first_w, 3);
        ck_assert_int_eq(r.first_c, 4);
        ck_assert_float_eq(r.first_expected, f.buffers.output[index]);
        ck_assert_ptr_nonnull(strstr(error.message, "(n=2, h=1, w=3, c=4)"));
        ck_assert_double_ge(r.max_abs_error, 1.0 - 1e-6);
        teardown(&f);
    }
}
END_TEST

START_TEST(tolerance_edges)
{
    /* a single term: tolerance = gamma(2)*|x*w| + u*|x*w| + FLT_TRUE_MIN */
    sepconv_layer l = parse_layer("op=pw df=1 m=1 n=1");
    float expected[1] = {1.0f};
    double magnitude[1] = {1.0};
    double tolerance = sepconv_tolerance_gamma(2) + 0x1p-24 + FLT_TRUE_MIN;
    float inside[1] = {(float)(1.0 + tolerance * 0.9)};  /* rounds to 1 ulp up */
    float outside[1] = {1.0f + 4 * FLT_EPSILON};
    sepconv_comparison r;
    ck_assert_int_eq(sepconv_compare(&l, expected, inside, magnitude, &r, NULL),
                     SEPCONV_OK);
    ck_assert_int_eq(sepconv_compare(&l, expected, outside, magnitude, &r, NULL),
                     SEPCONV_MISMATCH);
    ck_assert_double_eq_tol(r.first_tolerance, tolerance, 1e-15);
}
END_TEST

START_TEST(nan_and_infinity)
{
    sepconv_layer l = parse_layer("op=pw h=1 w=6 m=1 n=1");
    const float expected[6] = {NAN, 1, INFINITY, -INFINITY, NAN, 2};
    const float actual[6] = {NAN, NAN, INFINITY, INFINITY, 3, 2};
    const double magnitude[6] = {1, 1, 1, 1, 1, 1};
    sepconv_comparison r;
    ck_assert_int_eq(sepconv_compare(&l, expected, actual, magnitude, &r, NULL),
                     SEPCONV_MISMATCH);
    /* NaN=NaN and inf=inf match; NaN for 1, +inf for -inf, 3 for NaN do not */
    ck_assert_int_eq(r.mismatches, 3);
    ck_assert_int_eq(r.first_index, 1);
    ck_assert(isnan(r.first_actual));
}
END_TEST

START_TEST(unbounded_magnitudes)
{
    sepconv_layer l = parse_layer("op=pw h=1 w=3 m=1 n=1");
    const float expected[3] = {0, 5, 5};
    const float actual[3] = {0, 5.5f, 7};
    const double magnitude[3] = {NAN, NAN, 1};
    sepconv_comparison r;
    /* exact zero matches even with a NaN magnitude; 5.5 for 5 cannot be
     * bounded by a NaN magnitude; 7 for 5 with magnitude 1 is wrong */
    ck_assert_int_eq(sepconv_compare(&l, expected, actual, magnitude, &r, NULL),
                     SEPCONV_MISMATCH);
    ck_assert_int_eq(r.mismatches, 1);
    ck_assert_int_eq(r.first_index, 2);
}
END_TEST

START_TEST(bad_arguments)
{
    sepconv_layer l = parse_layer("op=pw df=1 m=1 n=1");
    float x[1] = {0};
    sepconv_comparison r;
    sepconv_error error;
    ck_assert_int_eq(sepconv_compare(&l, x, x, NULL, &r, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "magnitudes"));
}
END_TEST

Suite *compare_suite(void)
{
    Suite *suite = suite_create("compare");
    TCase *c = tcase_create("compare");
    tcase_add_test(c, gamma_values);
    tcase_add_test(c, identical_outputs_match);
    tcase_add_test(c, float_sums_in_any_order_pass);
    tcase_add_test(c, a_dropped_term_is_caught);
    tcase_add_test(c, first_mismatch_coordinates);
    tcase_add_test(c, tolerance_edges);
    tcase_add_test(c, nan_and_infinity);
    tcase_add_test(c, unbounded_magnitudes);
    tcase_add_test(c, bad_arguments);
    suite_add_tcase(suite, c);
    return suite;
}
