/*
 * test_reliability.c -- numerical edge cases against the reference's
 * semantics, IEEE-breaking flags refused, file-system faults, and many
 * processes and threads at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"

/* The special values mixed into inputs, weights and biases. */
static const float specials[] = {NAN, INFINITY, -INFINITY, -0.0f, 0.0f, 1e-40f, -3e-42f,
                                 1e-45f, 1e15f, -1e15f, 1.0f, -2.5f};
#define SPECIAL_COUNT (sizeof specials / sizeof specials[0])

/* Replaces about one value in `every` with a special value. */
static void sprinkle(float *values, int64_t count, int every, uint64_t *state)
{
    for (int64_t i = 0; i < count; i++)
        if (sepconv_random_next(state) % (uint64_t)every == 0)
            values[i] = specials[sepconv_random_next(state) % SPECIAL_COUNT];
}

/* The activation of a layer's last stage, the one its output went through. */
static sepconv_activation final_activation(const sepconv_layer *layer)
{
    switch (layer->op) {
    case SEPCONV_OP_CONV: return layer->conv_act;
    case SEPCONV_OP_DW: return layer->dw_act;
    default: return layer->pw_act; /* pw, and sep's second stage */
    }
}

/* Runs a kernel on special values and compares with the reference: NaN
 * must land exactly where the reference has NaN, infinities where it has
 * the same infinity, everything else within tolerance. */
static void check_specials(const char *spec, sepconv_backend backend, const char *flags,
                           uint64_t seed)
{
    sepconv_layer layer = parse_layer(spec);
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.backend = backend;
    options.cc.flags = flags;
    options.verify = 0;
    sepconv_kernel *kernel = NULL;
    sepconv_error error;
    ck_assert_msg(sepconv_kernel_create(&layer, &options, &kernel, &error) == SEPCONV_OK, "%s",
                  error.message);
    sepconv_buffers b;
    ck_assert_int_eq(sepconv_buffers_alloc(&layer, &b, NULL), SEPCONV_OK);
    sepconv_buffers_fill_random(&layer, &b, seed);
    uint64_t state = seed;
    sprinkle(b.input, layer.input_elements, 7, &state);
    sprinkle(b.weights, layer.weight_elements, 11, &state);
    if (b.bias)
        sprinkle(b.bias, layer.bias_elements, 5, &state);
    if (b.pw_weights)
        sprinkle(b.pw_weights, layer.pw_weight_elements, 13, &state);
    sepconv_tensors t = sepconv_buffers_tensors(&b);
    size_t count = (size_t)layer.output_elements;
    float *out = malloc(count * sizeof(float));
    double *magnitude = malloc(count * sizeof(double));
    ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &t, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_kernel_run(kernel, b.input, out, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_reference_run(&layer, &t, b.output, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_reference_magnitude(&layer, &t, magnitude, NULL), SEPCONV_OK);
    int nans = 0, infinities = 0;
    for (size_t i = 0; i < count; i++) {
        nans += isnan(b.output[i]) != 0;
        infinities += isinf(b.output[i]) != 0; /* isinf may return -1 for -inf */
        /* checked here, not only through sepconv_compare below */
        ck_assert_msg(!isnan(out[i]) == !isnan(b.output[i]), "%s (%s): output %zu is %g, "
                      "the reference's %g", spec, sepconv_backend_name(backend), i,
                      (double)out[i], (double)b.output[i]);
        if (isinf(b.output[i]) || isinf(out[i]))
            ck_assert_msg(out[i] == b.output[i], "%s (%s): output %zu is %g, the "
                          "reference's %g", spec, sepconv_backend_name(backend), i,
                          (double)out[i], (double)b.output[i]);
    }
    ck_assert_msg(nans > 0 && nans < (int)count, "%s: the data should make some NaNs", spec);
    /* relu6 clamps every infinity to 0 or 6; otherwise some must survive */
    if (final_activation(&layer) == SEPCONV_ACT_RELU6)
        ck_assert_msg(infinities == 0, "%s: relu6 let %d infinities through", spec, infinities);
    else
        ck_assert_msg(infinities > 0, "%s: the data should make some infinities", spec);
    sepconv_comparison comparison;
    ck_assert_msg(sepconv_compare(&layer, b.output, out, magnitude, &comparison, &error) ==
                      SEPCONV_OK, "%s (%s %s): %s", spec, sepconv_backend_name(backend),
                  flags ? flags : "", error.message);
    free(out);
    free(magnitude);
    sepconv_buffers_free(&b);
    sepconv_kernel_free(kernel);
}

START_TEST(special_values_follow_the_reference)
{
    const char *specs[] = {"op=dw df=9 m=5 dk=3 bias=1 act=relu6",
                           "op=pw df=6 m=7 n=9 bias=1 act=relu",
                           "op=conv df=6 m=3 n=4 dk=3 bias=1",
                           "op=sep df=7 m=4 n=6 dk=3 bias=1 dw_act=relu pw_act=relu6"};
    for (int s = 0; s < 4; s++) {
        check_specials(specs[s], SEPCONV_BACKEND_TCC, NULL, 10 + (uint64_t)s);
        check_specials(specs[s], SEPCONV_BACKEND_CC, native_flags("-O3"), 20 + (uint64_t)s);
    }
}
END_TEST

START_TEST(subnormals_and_nan_survive_the_cc_defaults)
{
    /* with flush-to-zero or finite-math a 1e-40 output would be 0 and the
     * NaN would be clamped away by relu: prove the built kernel keeps both */
    sepconv_layer layer = parse_layer("op=pw h=1 w=2 m=1 n=1 act=relu");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.backend = SEPCONV_BACKEND_CC;
    options.cc.flags = native_flags("-O3");
    sepconv_kernel *kernel = NULL;
    ck_assert_int_eq(sepconv_kernel_create(&layer, &options, &kernel, NULL), SEPCONV_OK);
    const float weight[1] = {1.0f}, input[2] = {1e-40f, NAN};
    sepconv_tensors t = {NULL, weight, NULL, NULL, NULL};
    float out[2];
    ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &t, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_kernel_run(kernel, input, out, NULL), SEPCONV_OK);
    ck_assert_float_eq(out[0], 1e-40f);
    ck_assert(isnan(out[1]));
    sepconv_kernel_free(kernel);
}
END_TEST

START_TEST(ieee_breaking_flags_are_refused)
{
    const char *bad[] = {"-O3 -ffast-math", "-Ofast", "-O2 -ffinite-math-only -g",
                         "-funsafe-math-optimizations", "-O2 -fno-signed-zeros"};
    for (int i = 0; i < 5; i++) {
        sepconv_cc_options options = {.flags = bad[i], .no_cache = 1};
        sepconv_code *code = NULL;
        sepconv_error error;
        ck_assert_int_eq(sepconv_cc_compile("int f;", 6, &options, &code, &error),
                         SEPCONV_INVALID);
        ck_assert_ptr_nonnull(strstr(error.message, "breaks IEEE semantics"));
    }
    /* a flag that merely contains the text is not refused */
    sepconv_cc_options fine = {.flags = "-O2 -DNOT_-ffast-math", .no_cache = 1};
    sepconv_code *code = NULL;
    ck_assert_int_eq(sepconv_cc_compile("int f;", 6, &fine, &code, NULL), SEPCONV_OK);
    sepconv_code_free(code);
}
END_TEST

/* In a child process whose files may not grow (RLIMIT_FSIZE 0, as a full
 * disk), appends a record to a fresh regular file: exits 0 if the append
 * failed with SEPCONV_IO and a message naming the write error. */
static void append_to_a_full_file(const char *path, const sepconv_tune_record *record)
{
    struct rlimit none = {0, 0};
    signal(SIGXFSZ, SIG_IGN); /* the write then fails with EFBIG instead */
    sepconv_error error;
    if (setrlimit(RLIMIT_FSIZE, &none) != 0)
        _exit(2);
    sepconv_status status = sepconv_log_append(path, record, &error);
    _exit(status == SEPCONV_IO && strstr(error.message, "cannot append") &&
                  strstr(error.message, strerror(EFBIG))
              ? 0
              : 1);
}

START_TEST(file_system_faults)
{
    sepconv_error error;
    sepconv_tune_record record;
    memset(&record, 0, sizeof record);
    snprintf(record.status, sizeof record.status, "ok");
    /* a full disk: a regular file that cannot grow */
    char full[64];
    snprintf(full, sizeof full, "/tmp/sepconv-full-XXXXXX");
    close(mkstemp(full));
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        append_to_a_full_file(full, &record);
    int exit_status = 0;
    waitpid(child, &exit_status, 0);
    unlink(full);
    ck_assert_msg(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0,
                  "appending to a file that cannot grow should fail with the write's error");
    /* a device is not a log (a FIFO would block a reader forever) */
    ck_assert_int_eq(sepconv_log_append("/dev/full", &record, &error), SEPCONV_IO);
    ck_assert_ptr_nonnull(strstr(error.message, "not a regular file"));
    /* a log in a directory that does not exist, or cannot be written */
    ck_assert_int_eq(sepconv_log_append("/nonexistent/dir/log.jsonl", &record, &error),
                     SEPCONV_IO);
    ck_assert_ptr_nonnull(strstr(error.message, "cannot open for appending"));
    /* tuning stops cleanly with the log's error (here: a device) */
    sepconv_layer layer = parse_layer("op=dw df=4 m=3 dk=3");
    sepconv_tune_options options = sepconv_tune_defaults();
    options.trials = 2;
    options.log_path = "/dev/full";
    sepconv_tune_result result;
    ck_assert_int_eq(sepconv_tune_layer(&layer, &options, &result, &error), SEPCONV_IO);
    ck_assert_ptr_null(result.records);
    /* a cache directory that is a file, or full: compiles go on without it */
    const char *caches[] = {"/dev/full", "/dev/null/cache", "/proc/sepconv"};
    for (int i = 0; i < 3; i++) {
        sepconv_cc_options cc = {.flags = "-O1", .cache_dir = caches[i]};
        sepconv_code *code = NULL;
        ck_assert_msg(sepconv_cc_compile("int f(void) { return 7; }", 25, &cc, &code,
                                         &error) == SEPCONV_OK, "%s: %s", caches[i],
                      error.message);
        ck_assert_int_eq(((int (*)(void))sepconv_code_symbol(code, "f"))(), 7);
        sepconv_code_free(code);
    }
}
END_TEST

START_TEST(eight_processes_share_one_log)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/sepconv-shared-XXXXXX");
    close(mkstemp(path));
    unlink(path);
    sepconv_layer layer = parse_layer("op=dw df=5 m=8 dk=3");
    pid_t children[8];
    for (int shard = 0; shard < 8; shard++) {
        children[shard] = fork();
        ck_assert_int_ge(children[shard], 0);
        if (children[shard] == 0) {
            sepconv_tune_options options = sepconv_tune_defaults();
            options.kernel.target = SEPCONV_TARGET_PORTABLE; /* the space counted below */
            options.shard = shard;
            options.shards = 8;
            options.log_path = path;
            sepconv_tune_result result;
            int ok = sepconv_tune_layer(&layer, &options, &result, NULL) == SEPCONV_OK;
            if (ok)
                sepconv_tune_result_free(&result);
            _exit(ok ? 0 : 1);
        }
    }
    for (int shard = 0; shard < 8; shard++) {
        int status = 0;
        waitpid(children[shard], &status, 0);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    sepconv_tune_log log;
    ck_assert_int_eq(sepconv_log_read(path, &log, NULL), SEPCONV_OK);
    sepconv_kernel_options kernel = sepconv_kernel_defaults();
    kernel.target = SEPCONV_TARGET_PORTABLE; /* the distinct schedules the shards draw */
    sepconv_schedule *distinct = NULL;
    size_t space = 0;
    ck_assert_int_eq(sepconv_space_distinct(&layer, &kernel, &distinct, &space, NULL, NULL),
                     SEPCONV_OK);
    free(distinct);
    ck_assert_uint_eq(log.skipped, 0);            /* every line parses */
    /* every candidate's record is there exactly twice (its sweep's, and
     * its second timing: a shard times its three best again, and here no
     * shard has more than three), beside the eight shards' records of the
     * default schedule (their baseline) */
    ck_assert_uint_le(space, 8 * 3);
    sepconv_schedule defaults;
    char default_text[256];
    ck_assert_int_eq(sepconv_schedule_default(&layer, SEPCONV_TARGET_PORTABLE, &defaults,
                                              NULL), SEPCONV_OK);
    sepconv_schedule_format(&defaults, default_text, sizeof default_text, NULL);
    ck_assert_uint_eq(log.count, 2 * space + 8);
    int defaults_seen = 0;
    for (size_t i = 0; i < log.count; i++) {
        defaults_seen += strcmp(log.records[i].schedule, default_text) == 0;
        int same = 0;
        for (size_t j = 0; j < log.count; j++)
            same += strcmp(log.records[i].schedule, log.records[j].schedule) == 0;
        if (strcmp(log.records[i].schedule, default_text) != 0)
            ck_assert_int_eq(same, 2);
    }
    ck_assert_int_eq(defaults_seen, 8 + 2); /* 8 baselines and its own candidate's two */
    sepconv_log_free(&log);
    unlink(path);
}
END_TEST

/* A thread that compiles, runs (checked against the reference) and frees
 * kernels until its deadline; returns how many iterations failed. */
static void *stress(void *argument)
{
    double deadline = *(const double *)argument;
    long failures = 0;
    for (int i = 0; sepconv_seconds() < deadline; i++) {
        char spec[96];
        snprintf(spec, sizeof spec, "op=sep df=%d m=%d n=4 dk=3 bias=1", 3 + i % 5, 2 + i % 3);
        sepconv_layer layer;
        sepconv_kernel *kernel = NULL;
        sepconv_kernel_options options = sepconv_kernel_defaults();
        options.threads = 1 + i % 2;
        if (sepconv_layer_parse(spec, &layer, NULL) != SEPCONV_OK ||
            sepconv_kernel_create(&layer, &options, &kernel, NULL) != SEPCONV_OK ||
            !agrees_with_reference(kernel, (uint64_t)i, NULL))
            failures++;
        sepconv_kernel_free(kernel);
    }
    return (void *)failures;
}

START_TEST(eight_threads_compile_run_and_free)
{
    const char *setting = getenv("SEPCONV_STRESS_SECONDS");
    double seconds = setting ? atof(setting) : 3.0;
    double deadline = sepconv_seconds() + seconds;
    pthread_t threads[8];
    for (int t = 0; t < 8; t++)
        ck_assert_int_eq(pthread_create(&threads[t], NULL, stress, &deadline), 0);
    long failures = 0;
    for (int t = 0; t < 8; t++) {
        void *result;
        pthread_join(threads[t], &result);
        failures += (long)result;
    }
    ck_assert_int_eq(failures, 0);
}
END_TEST

Suite *reliability_suite(void)
{
    Suite *suite = suite_create("reliability");
    TCase *c = tcase_create("reliability");
    tcase_set_timeout(c, 900);
    tcase_add_test(c, special_values_follow_the_reference);
    tcase_add_test(c, subnormals_and_nan_survive_the_cc_defaults);
    tcase_add_test(c, ieee_breaking_flags_are_refused);
    tcase_add_test(c, file_system_faults);
    tcase_add_test(c, eight_processes_share_one_log);
    tcase_add_test(c, eight_threads_compile_run_and_free);
    suite_add_tcase(suite, c);
    return suite;
}
