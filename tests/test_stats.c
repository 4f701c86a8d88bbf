/*
 * test_stats.c -- sepconv_quantile and sepconv_median against values worked
 * out by hand (linear interpolation at position q * (count - 1)).
 */
#include <math.h>

#include "tests.h"

START_TEST(odd_count_hits_exact_ranks)
{
    /* sorted: 1 2 3 4 5; positions 0, 1, 2, 3, 4 */
    const double qs[] = {0, 0.25, 0.5, 0.75, 1};
    const double expected[] = {1, 2, 3, 4, 5};
    for (int i = 0; i < 5; i++) {
        double samples[] = {5, 1, 4, 2, 3};
        ck_assert_double_eq(sepconv_quantile(samples, 5, qs[i]), expected[i]);
    }
}
END_TEST

START_TEST(even_count_interpolates)
{
    /* sorted: 10 20 30 40; 0.25 is position 0.75, 0.5 is 1.5, 0.75 is 2.25 */
    const double qs[] = {0, 0.25, 0.5, 0.75, 1};
    const double expected[] = {10, 17.5, 25, 32.5, 40};
    for (int i = 0; i < 5; i++) {
        double samples[] = {40, 10, 30, 20};
        ck_assert_double_eq(sepconv_quantile(samples, 4, qs[i]), expected[i]);
    }
    double samples[] = {3, 1, 2, 4};
    ck_assert_double_eq(sepconv_median(samples, 4), 2.5);
    double three[] = {9, -1, 0.5};
    ck_assert_double_eq(sepconv_median(three, 3), 0.5);
}
END_TEST

START_TEST(samples_are_sorted_in_place)
{
    double samples[] = {0.3, -2, 7, 0.3, 1};
    const double sorted[] = {-2, 0.3, 0.3, 1, 7};
    sepconv_quantile(samples, 5, 0.5);
    for (int i = 0; i < 5; i++)
        ck_assert_double_eq(samples[i], sorted[i]);
}
END_TEST

START_TEST(one_sample_is_every_quantile)
{
    const double qs[] = {0, 0.25, 0.5, 1};
    for (int i = 0; i < 4; i++) {
        double samples[] = {7};
        ck_assert_double_eq(sepconv_quantile(samples, 1, qs[i]), 7);
    }
}
END_TEST

START_TEST(no_samples_or_a_bad_q_is_nan)
{
    double samples[] = {1, 2, 3};
    ck_assert(isnan(sepconv_quantile(samples, 0, 0.5)));
    ck_assert(isnan(sepconv_median(samples, 0)));
    ck_assert(isnan(sepconv_quantile(NULL, 3, 0.5)));
    ck_assert(isnan(sepconv_quantile(samples, 3, -0.01)));
    ck_assert(isnan(sepconv_quantile(samples, 3, 1.01)));
    ck_assert(isnan(sepconv_quantile(samples, 3, NAN)));
    /* untouched when refused */
    ck_assert_double_eq(samples[0], 1);
}
END_TEST

START_TEST(nan_sorts_last_and_infinities_stay)
{
    double samples[] = {NAN, 2, 1};
    ck_assert_double_eq(sepconv_quantile(samples, 3, 0), 1);
    ck_assert_double_eq(samples[1], 2);
    ck_assert(isnan(samples[2]));
    ck_assert_double_eq(sepconv_quantile(samples, 3, 0.5), 2);
    ck_assert(isnan(sepconv_quantile(samples, 3, 1)));
    /* between two equal infinities, and at an exact rank beside one: no
     * inf - inf */
    double infinite[] = {INFINITY, 1, INFINITY};
    ck_assert(isinf(sepconv_quantile(infinite, 3, 0.75)));
    ck_assert_double_eq(sepconv_quantile(infinite, 3, 0), 1);
    double mixed[] = {INFINITY, 1, 3};
    ck_assert_double_eq(sepconv_quantile(mixed, 3, 0.5), 3);
}
END_TEST

Suite *stats_suite(void)
{
    Suite *suite = suite_create("stats");
    TCase *c = tcase_create("stats");
    tcase_add_test(c, odd_count_hits_exact_ranks);
    tcase_add_test(c, even_count_interpolates);
    tcase_add_test(c, samples_are_sorted_in_place);
    tcase_add_test(c, one_sample_is_every_quantile);
    tcase_add_test(c, no_samples_or_a_bad_q_is_nan);
    tcase_add_test(c, nan_sorts_last_and_infinities_stay);
    suite_add_tcase(suite, c);
    return suite;
}
