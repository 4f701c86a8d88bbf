/*
 * tests.h -- the Check suites of sepconv and the helpers they share.
 */
#ifndef SEPCONV_TESTS_H
#define SEPCONV_TESTS_H

#include <check.h>
#include <stdbool.h>

#include "sepconv.h"

Suite *layer_suite(void);
Suite *cost_suite(void);
Suite *reference_suite(void);
Suite *compare_suite(void);
Suite *cli_suite(void);
Suite *generator_suite(void);
Suite *render_suite(void);
Suite *npy_suite(void);
Suite *backend_suite(void);
Suite *kernel_suite(void);
Suite *tune_suite(void);
Suite *reliability_suite(void);

/* Whether the tests run under valgrind (make check-valgrind sets
 * SEPCONV_TEST_VALGRIND): valgrind cannot execute AVX-512. */
bool under_valgrind(void);

/* Flags for "the best this CPU runs": -march=native, or -mavx2 -mfma under
 * valgrind. */
const char *native_flags(const char *optimization);

/* Makes a template directory whose kernel_entry.c.in (copied from the
 * tree's templates/) has `bug` inserted before the stage calls: kernels that
 * compile but are wrong. */
void write_buggy_templates(char *dir, size_t capacity, const char *bug);

/* Parses a spec that must be valid; fails the test with the message if not. */
sepconv_layer parse_layer(const char *spec);

/* Parses a spec that must be refused; returns the status, fills `message`. */
sepconv_status refuse_layer(const char *spec, char *message, size_t capacity);

#endif /* SEPCONV_TESTS_H */
