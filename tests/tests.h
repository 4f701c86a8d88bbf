/*
 * tests.h -- the Check suites of sepconv and the helpers they share.
 */
#ifndef SEPCONV_TESTS_H
#define SEPCONV_TESTS_H

#include <check.h>
#include <stdbool.h>

#include "sepconv.h"
#include "backend/backend.h"
#include "tune/space.h"
#include "generate/generate.h"
#include "log/log.h"

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
Suite *stats_suite(void);
Suite *microkernels_suite(void);
Suite *quantize_suite(void);

/* Whether the tests run under valgrind (make check-valgrind sets
 * SEPCONV_TEST_VALGRIND): valgrind cannot execute AVX-512. */
bool under_valgrind(void);

/* How many times slower than native the tests run: Check's timeout
 * multiplier (tests/arm64_check.sh sets 4 under qemu), else 1. */
int emulation_factor(void);

/* Whether this machine runs code of a target (an ISA), for a test that
 * exercises it as `what`: true is recorded as exercised; false is said on
 * stderr ("SKIPPED: ... (CPU lacks avx512f ...)") and recorded, and the
 * runner's last line names what ran and what was skipped, and why. */
bool test_target_runs(sepconv_target target, const char *what);
/* Records that a test exercised a target (resolved, e.g. auto's ISA). */
void test_target_exercised(sepconv_target target, const char *what);

/* Flags for "the best this CPU runs": -march=native, or -mavx2 -mfma under
 * valgrind. */
const char *native_flags(const char *optimization);

/* Makes a template directory whose kernel_entry.c.in (copied from the
 * tree's templates/) has `bug` inserted before the stage calls: kernels that
 * compile but are wrong. */
void write_buggy_templates(char *dir, size_t capacity, const char *bug);

/* Runs a kernel (weights set from `seed`) on seeded data and compares it
 * with the reference; false, with the message, if a step fails or they
 * disagree.  Thread-safe. */
bool agrees_with_reference(sepconv_kernel *kernel, uint64_t seed, sepconv_error *error);

/* Writes an executable shell script at `path` (a stand-in compiler). */
void write_script(const char *path, const char *text);

/* Parses a spec that must be valid; fails the test with the message if not. */
sepconv_layer parse_layer(const char *spec);

/* Parses a spec that must be refused; returns the status, fills `message`. */
sepconv_status refuse_layer(const char *spec, char *message, size_t capacity);

/* Reads up to capacity-1 bytes of a file into `text` ("" if unreadable). */
void read_text_file(const char *path, char *text, size_t capacity);

/* What one run of the sepconv command printed and returned. */
typedef struct cli_outcome {
    int code;
    char out[65536];
    char err[16384];
} cli_outcome;

/* The longest a test lets one run of the command take (`timeout`). */
#define CLI_RUN_SECONDS_MAX 300

/* Runs `$SEPCONV_CLI ARGS` (ARGS shell-quoted) in `dir` (NULL: the source
 * tree), standard input from `in` (NULL: /dev/null), standard output to
 * `to` (NULL: captured), standard error captured; a run past
 * CLI_RUN_SECONDS_MAX fails the test.  The result is overwritten by the
 * next call. */
cli_outcome *run_sepconv_in(const char *dir, const char *in, const char *to,
                            const char *args);

#endif /* SEPCONV_TESTS_H */
