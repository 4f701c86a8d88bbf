/*
 * run_tests.c -- runs every Check suite; exit status 0 only if all pass.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests.h"

/* Runs a kernel on seeded data and compares with the reference; false
 * (with the message) if the kernel fails or disagrees.  Thread-safe. */
bool agrees_with_reference(sepconv_kernel *kernel, uint64_t seed, sepconv_error *error)
{
    const sepconv_layer *layer = sepconv_kernel_layer(kernel);
    sepconv_buffers b;
    if (sepconv_buffers_alloc(layer, &b, error) != SEPCONV_OK)
        return false;
    sepconv_buffers_fill_random(layer, &b, seed);
    sepconv_tensors t = sepconv_buffers_tensors(&b);
    float *out = malloc((size_t)layer->output_elements * sizeof(float));
    double *magnitude = malloc((size_t)layer->output_elements * sizeof(double));
    sepconv_comparison comparison;
    if ((!out || !magnitude) && error)
        snprintf(error->message, sizeof error->message, "out of memory for the outputs");
    bool ok = out && magnitude &&
              sepconv_kernel_set_weights(kernel, &t, error) == SEPCONV_OK &&
              sepconv_kernel_run(kernel, b.input, out, error) == SEPCONV_OK &&
              sepconv_reference_run(layer, &t, b.output, error) == SEPCONV_OK &&
              sepconv_reference_magnitude(layer, &t, magnitude, error) == SEPCONV_OK &&
              sepconv_compare(layer, b.output, out, magnitude, &comparison, error) ==
                  SEPCONV_OK;
    free(out);
    free(magnitude);
    sepconv_buffers_free(&b);
    return ok;
}

/* Writes an executable shell script (a stand-in compiler, say). */
void write_script(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    fputs(text, file);
    ck_assert_int_eq(fclose(file), 0);
    ck_assert_int_eq(chmod(path, 0755), 0);
}

/* Whether the tests run under valgrind. */
bool under_valgrind(void)
{
    const char *flag = getenv("SEPCONV_TEST_VALGRIND");
    return flag && flag[0] == '1';
}

/* Compiler flags for this CPU's best code that valgrind can still run. */
const char *native_flags(const char *optimization)
{
    static char flags[128];
    snprintf(flags, sizeof flags, "%s %s", optimization,
             under_valgrind() ? "-mavx2 -mfma" : "-march=native");
    return flags;
}

/* Writes a template directory whose kernel_entry.c.in has `bug` inserted
 * before the stage calls: a kernel that compiles but is wrong. */
void write_buggy_templates(char *dir, size_t capacity, const char *bug)
{
    snprintf(dir, capacity, "/tmp/sepconv-wrong-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char source[512], target[512];
    const char *root = getenv("SEPCONV_ROOT");
    snprintf(source, sizeof source, "%s/templates/kernel_entry.c.in", root ? root : ".");
    snprintf(target, sizeof target, "%s/kernel_entry.c.in", dir);
    FILE *in = fopen(source, "r"), *out = fopen(target, "w");
    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(out);
    char line[512];
    while (fgets(line, sizeof line, in)) {
        if (strcmp(line, "$body()\n") == 0)
            fputs(bug, out);
        fputs(line, out);
    }
    fclose(in);
    fclose(out);
}

/* Parses a spec that must be valid. */
sepconv_layer parse_layer(const char *spec)
{
    sepconv_layer layer;
    sepconv_error error = {0};
    sepconv_status status = sepconv_layer_parse(spec, &layer, &error);
    ck_assert_msg(status == SEPCONV_OK, "'%s' refused: %s", spec, error.message);
    return layer;
}

/* Parses a spec that must be refused. */
sepconv_status refuse_layer(const char *spec, char *message, size_t capacity)
{
    sepconv_layer layer;
    sepconv_error error = {0};
    sepconv_status status = sepconv_layer_parse(spec, &layer, &error);
    ck_assert_msg(status != SEPCONV_OK, "'%s' was accepted", spec);
    snprintf(message, capacity, "%s", error.message);
    return status;
}

int main(void)
{
    SRunner *runner = srunner_create(layer_suite());
    srunner_add_suite(runner, cost_suite());
    srunner_add_suite(runner, reference_suite());
    srunner_add_suite(runner, compare_suite());
    srunner_add_suite(runner, cli_suite());
    srunner_add_suite(runner, npy_suite());
    srunner_add_suite(runner, render_suite());
    srunner_add_suite(runner, backend_suite());
    srunner_add_suite(runner, kernel_suite());
    srunner_add_suite(runner, tune_suite());
    srunner_add_suite(runner, reliability_suite());
    srunner_add_suite(runner, stats_suite());
    srunner_add_suite(runner, generator_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
