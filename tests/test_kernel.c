/*
 * test_kernel.c -- the runtime API: create, set weights, run; verify on
 * compile refusing a wrong kernel; threads; many kernels at once.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests.h"

/* Creates a kernel that must build; fails the test with the message. */
static sepconv_kernel *create(const sepconv_layer *layer, const sepconv_kernel_options *o)
{
    sepconv_kernel *kernel = NULL;
    sepconv_error error;
    ck_assert_msg(sepconv_kernel_create(layer, o, &kernel, &error) == SEPCONV_OK, "%s",
                  error.message);
    return kernel;
}

/* Runs a kernel on seeded data and checks it against the reference. */
static void check_against_reference(sepconv_kernel *kernel, uint64_t seed)
{
    const sepconv_layer *layer = sepconv_kernel_layer(kernel);
    sepconv_buffers b;
    ck_assert_int_eq(sepconv_buffers_alloc(layer, &b, NULL), SEPCONV_OK);
    sepconv_buffers_fill_random(layer, &b, seed);
    sepconv_tensors t = sepconv_buffers_tensors(&b);
    float *out = malloc((size_t)layer->output_elements * sizeof(float));
    double *magnitude = malloc((size_t)layer->output_elements * sizeof(double));
    sepconv_error error;
    ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &t, &error), SEPCONV_OK);
    ck_assert_int_eq(sepconv_kernel_run(kernel, b.input, out, &error), SEPCONV_OK);
    ck_assert_int_eq(sepconv_reference_run(layer, &t, b.output, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_reference_magnitude(layer, &t, magnitude, NULL), SEPCONV_OK);
    sepconv_comparison comparison;
    ck_assert_msg(sepconv_compare(layer, b.output, out, magnitude, &comparison, &error) ==
                      SEPCONV_OK, "%s", error.message);
    free(out);
    free(magnitude);
    sepconv_buffers_free(&b);
}

START_TEST(tcc_kernel_end_to_end)
{
    sepconv_layer layer = parse_layer("op=sep df=9 m=6 n=10 dk=3 stride=2 bias=1 act=relu6");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    ck_assert_int_eq(options.backend, SEPCONV_BACKEND_TCC);
    sepconv_kernel *kernel = create(&layer, &options);
    const sepconv_kernel_info *info = sepconv_kernel_get_info(kernel);
    ck_assert_int_eq(info->verified, 1);
    ck_assert_double_gt(info->compile_seconds, 0);
    ck_assert_double_lt(info->compile_seconds, 5.0);
    ck_assert_str_eq(info->schedule, "channel_block=16,tile_w=2,pixel_block=4,oc_block=32,"
                                     "pack=1,unroll=none,fuse=1,tile_h=2");
    check_against_reference(kernel, 3);
    sepconv_kernel_free(kernel);
}
END_TEST

START_TEST(cc_kernel_with_a_simd_target)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return;
    sepconv_layer layer = parse_layer("op=sep df=10 m=16 n=24 dk=3 bias=1 act=relu");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.backend = SEPCONV_BACKEND_CC;
    options.target = SEPCONV_TARGET_AVX2;
    options.cc.flags = native_flags("-O2");
    options.schedule = "oc_block=24,channel_block=8";
    sepconv_kernel *kernel = create(&layer, &options);
    check_against_reference(kernel, 4);
    sepconv_kernel_free(kernel);
}
END_TEST

START_TEST(native_target_through_tcc)
{
    /* tcc compiles the layer's code; its rows go to libsepconv's SIMD
     * micro-kernels (AVX-512 here, plain C elsewhere and under valgrind) */
    const char *specs[] = {"op=sep df=9 m=40 n=70 dk=3 stride=2 bias=1 act=relu6",
                           "op=dw df=8 m=19 dk=5 dilation=2 act=relu",
                           "op=pw df=5 m=33 n=17 bias=1"};
    for (int s = 0; s < 3; s++) {
        sepconv_layer layer = parse_layer(specs[s]);
        sepconv_kernel_options options = sepconv_kernel_defaults();
        options.target = SEPCONV_TARGET_NATIVE;
        options.threads = 2;
        sepconv_kernel *kernel = create(&layer, &options);
        ck_assert_int_eq(sepconv_kernel_get_info(kernel)->verified, 1);
        check_against_reference(kernel, 8 + (uint64_t)s);
        sepconv_kernel_free(kernel);
    }
    /* native is for tcc: the cc backend cannot hand it the micro-kernels */
    sepconv_layer layer = parse_layer("op=dw df=6 m=4 dk=3");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.backend = SEPCONV_BACKEND_CC;
    options.target = SEPCONV_TARGET_NATIVE;
    sepconv_kernel *kernel = NULL;
    sepconv_error error;
    ck_assert_int_eq(sepconv_kernel_create(&layer, &options, &kernel, &error),
                     SEPCONV_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(error.message, "target native calls libsepconv's"));
}
END_TEST

START_TEST(refusals)
{
    sepconv_layer layer = parse_layer("op=dw df=6 m=4 dk=3");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    sepconv_kernel *kernel = NULL;
    sepconv_error error;
    options.target = SEPCONV_TARGET_AVX512;
    ck_assert_int_eq(sepconv_kernel_create(&layer, &options, &kernel, &error),
                     SEPCONV_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(error.message, "target avx512 needs the cc backend"));
    options.target = SEPCONV_TARGET_PORTABLE;
    options.threads = -2;
    ck_assert_int_eq(sepconv_kernel_create(&layer, &options, &kernel, &error),
                     SEPCONV_INVALID);
    options.threads = 1;
    options.schedule = "tile_w=3";
    ck_assert_int_eq(sepconv_kernel_create(&layer, &options, &kernel, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_null(kernel);
    options.schedule = NULL;
    kernel = create(&layer, &options);
    float x[144], y[144];
    ck_assert_int_eq(sepconv_kernel_run(kernel, x, y, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "set the weights first"));
    sepconv_tensors none = {0};
    ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &none, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "needs weights (36 floats)"));
    sepconv_kernel_free(kernel);
}
END_TEST

/* A kernel that skips the last row of every call. */
static void write_wrong_templates(char *dir, size_t capacity)
{
    write_buggy_templates(dir, capacity,
                          "    if (row_end > row_begin)\n        row_end--; /* the bug */\n");
}

START_TEST(verify_refuses_a_wrong_kernel)
{
    char dir[64];
    write_wrong_templates(dir, sizeof dir);
    sepconv_layer layer = parse_layer("op=dw df=6 m=4 dk=3");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.generate.template_dir = dir;
    sepconv_kernel *kernel = NULL;
    sepconv_error error;
    ck_assert_int_eq(sepconv_kernel_create(&layer, &options, &kernel, &error),
                     SEPCONV_MISMATCH);
    ck_assert_ptr_null(kernel);
    ck_assert_ptr_nonnull(strstr(error.message, "failed verification"));
    ck_assert_ptr_nonnull(strstr(error.message, "outputs were never written"));
    /* without verification the wrong kernel is built: the check is real */
    options.verify = 0;
    kernel = create(&layer, &options);
    sepconv_kernel_free(kernel);
    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    ck_assert_int_eq(system(command), 0);
}
END_TEST

START_TEST(verify_names_an_out_of_bounds_write)
{
    char dir[64];
    write_buggy_templates(dir, sizeof dir,
                          "    if (row_end == ${plan.rows})\n"
                          "        output[${layer.output_elements} + 2] = 1.0f; /* the bug */\n");
    sepconv_layer layer = parse_layer("op=dw df=6 m=4 dk=3");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.generate.template_dir = dir;
    sepconv_kernel *kernel = NULL;
    sepconv_error error;
    ck_assert_int_eq(sepconv_kernel_create(&layer, &options, &kernel, &error),
                     SEPCONV_MISMATCH);
    ck_assert_ptr_nonnull(strstr(error.message, "wrote outside its output"));
    ck_assert_ptr_nonnull(strstr(error.message, "the first at offset 146")); /* 144 + 2 */
    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    ck_assert_int_eq(system(command), 0);
}
END_TEST

START_TEST(a_template_emitting_bad_c_names_the_saved_source)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/sepconv-badc-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/depthwise.c.in", dir);
    FILE *file = fopen(path, "w");
    fputs("void ${symbol}(void) { this is not C; }\n", file);
    fclose(file);
    sepconv_layer layer = parse_layer("op=dw df=6 m=4 dk=3");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.generate.template_dir = dir;
    sepconv_kernel *kernel = NULL;
    sepconv_error error;
    ck_assert_int_eq(sepconv_kernel_create(&layer, &options, &kernel, &error),
                     SEPCONV_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(error.message, "tcc: <string>:1: error:"));
    ck_assert_ptr_nonnull(strstr(error.message, "the source is saved as /"));
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(results_do_not_depend_on_threads)
{
    const char *specs[] = {"op=sep df=13 m=8 n=12 dk=3 batch=2 bias=1 act=relu",
                           "op=dw df=9 m=5 dk=5 stride=2", "op=conv df=7 m=3 n=6 dk=3",
                           "op=sep df=11 m=4 n=6 dk=3 stride=2"};
    for (int s = 0; s < 4; s++) {
        sepconv_layer layer = parse_layer(specs[s]);
        sepconv_buffers b;
        ck_assert_int_eq(sepconv_buffers_alloc(&layer, &b, NULL), SEPCONV_OK);
        sepconv_buffers_fill_random(&layer, &b, 11);
        sepconv_tensors t = sepconv_buffers_tensors(&b);
        size_t bytes = (size_t)layer.output_elements * sizeof(float);
        float *first = malloc(bytes), *other = malloc(bytes);
        const int counts[] = {1, 2, 3, 0, 7};
        for (int c = 0; c < 5; c++) {
            sepconv_kernel_options options = sepconv_kernel_defaults();
            options.threads = counts[c];
            options.verify = 0;
            sepconv_kernel *kernel = create(&layer, &options);
            ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &t, NULL), SEPCONV_OK);
            ck_assert_int_eq(sepconv_kernel_run(kernel, b.input, c ? other : first, NULL),
                             SEPCONV_OK);
            if (c)
                ck_assert_msg(memcmp(first, other, bytes) == 0, "%s: threads=%d differs",
                              specs[s], counts[c]);
            sepconv_kernel_free(kernel);
        }
        free(first);
        free(other);
        sepconv_buffers_free(&b);
    }
}
END_TEST

/* A thread that creates, runs and checks kernels. */
static void *create_and_run(void *argument)
{
    long index = (long)argument;
    for (int i = 0; i < 6; i++) {
        char spec[128];
        snprintf(spec, sizeof spec, "op=sep df=%ld m=%d n=5 dk=3 bias=1",
                 5 + index, 3 + i);
        sepconv_layer layer;
        sepconv_kernel *kernel = NULL;
        sepconv_kernel_options options = sepconv_kernel_defaults();
        options.threads = 2;
        if (sepconv_layer_parse(spec, &layer, NULL) != SEPCONV_OK ||
            sepconv_kernel_create(&layer, &options, &kernel, NULL) != SEPCONV_OK)
            return (void *)1;
        sepconv_kernel_free(kernel);
    }
    return NULL;
}

START_TEST(threads_create_and_run_kernels_at_once)
{
    pthread_t threads[6];
    for (long t = 0; t < 6; t++)
        ck_assert_int_eq(pthread_create(&threads[t], NULL, create_and_run, (void *)t), 0);
    long failures = 0;
    for (int t = 0; t < 6; t++) {
        void *result;
        pthread_join(threads[t], &result);
        failures += result != NULL;
    }
    ck_assert_int_eq(failures, 0);
}
END_TEST

/* Runs one shared kernel from a thread, many times. */
static void *run_shared(void *argument)
{
    sepconv_kernel *kernel = argument;
    const sepconv_layer *layer = sepconv_kernel_layer(kernel);
    float *input = calloc((size_t)layer->input_elements, sizeof(float));
    float *output = malloc((size_t)layer->output_elements * sizeof(float));
    long failures = 0;
    for (int i = 0; i < 100; i++)
        failures += sepconv_kernel_run(kernel, input, output, NULL) != SEPCONV_OK ||
                    output[0] != 0.0f;
    free(input);
    free(output);
    return (void *)failures;
}

START_TEST(one_kernel_runs_from_many_threads)
{
    sepconv_layer layer = parse_layer("op=sep df=8 m=4 n=8 dk=3 pad=valid");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.threads = 2;
    sepconv_kernel *kernel = create(&layer, &options);
    sepconv_buffers b;
    ck_assert_int_eq(sepconv_buffers_alloc(&layer, &b, NULL), SEPCONV_OK);
    sepconv_buffers_fill_random(&layer, &b, 1);
    sepconv_tensors t = sepconv_buffers_tensors(&b);
    ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &t, NULL), SEPCONV_OK);
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&threads[i], NULL, run_shared, kernel);
    long failures = 0;
    for (int i = 0; i < 4; i++) {
        void *result;
        pthread_join(threads[i], &result);
        failures += (long)result;
    }
    ck_assert_int_eq(failures, 0);
    sepconv_buffers_free(&b);
    sepconv_kernel_free(kernel);
}
END_TEST

START_TEST(a_thousand_create_free_cycles)
{
    /* leaks show under `make check-valgrind` (definite leaks fail it) */
    sepconv_layer layer = parse_layer("op=sep df=4 m=3 n=4 dk=3 bias=1");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.verify = 0;
    sepconv_buffers b;
    ck_assert_int_eq(sepconv_buffers_alloc(&layer, &b, NULL), SEPCONV_OK);
    sepconv_buffers_fill_random(&layer, &b, 5);
    sepconv_tensors t = sepconv_buffers_tensors(&b);
    for (int i = 0; i < 1000; i++) {
        sepconv_kernel *kernel = create(&layer, &options);
        ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &t, NULL), SEPCONV_OK);
        ck_assert_int_eq(sepconv_kernel_run(kernel, b.input, b.output, NULL), SEPCONV_OK);
        sepconv_kernel_free(kernel);
    }
    sepconv_buffers_free(&b);
}
END_TEST

Suite *kernel_suite(void)
{
    Suite *suite = suite_create("kernel");
    TCase *c = tcase_create("kernel");
    tcase_set_timeout(c, 900);
    tcase_add_test(c, tcc_kernel_end_to_end);
    tcase_add_test(c, cc_kernel_with_a_simd_target);
    tcase_add_test(c, native_target_through_tcc);
    tcase_add_test(c, refusals);
    tcase_add_test(c, verify_refuses_a_wrong_kernel);
    tcase_add_test(c, verify_names_an_out_of_bounds_write);
    tcase_add_test(c, a_template_emitting_bad_c_names_the_saved_source);
    tcase_add_test(c, results_do_not_depend_on_threads);
    tcase_add_test(c, threads_create_and_run_kernels_at_once);
    tcase_add_test(c, one_kernel_runs_from_many_threads);
    tcase_add_test(c, a_thousand_create_free_cycles);
    suite_add_tcase(suite, c);
    return suite;
}
