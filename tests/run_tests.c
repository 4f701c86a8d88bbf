/*
 * run_tests.c -- runs every Check suite; exit status 0 only if all pass.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
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

/* Check's timeout multiplier when it is above 1, else 1. */
int emulation_factor(void)
{
    const char *scale = getenv("CK_TIMEOUT_MULTIPLIER");
    return scale && atoi(scale) > 1 ? atoi(scale) : 1;
}

/* Appends one line to the file the runner reads at exit ($SEPCONV_TEST_TARGETS):
 * a test's process may be a fork, so memory would not do. */
static void record_target(const char *line)
{
    const char *path = getenv("SEPCONV_TEST_TARGETS");
    if (!path || !path[0])
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0)
        return;
    ssize_t wrote = write(fd, line, strlen(line)); /* one write: lines stay whole */
    (void)wrote;
    close(fd);
}

/* Why a target cannot run here, in a few words for the summary line. */
static const char *skip_reason(sepconv_target target)
{
#if defined(__aarch64__)
    bool here = target == SEPCONV_TARGET_NEON || target == SEPCONV_TARGET_PORTABLE;
#else
    bool here = target != SEPCONV_TARGET_NEON;
#endif
    if (!here)
        return "not this architecture";
    const char *no_avx512 = getenv("SEPCONV_NO_AVX512");
    if (target == SEPCONV_TARGET_AVX512 && under_valgrind())
        return "valgrind cannot run AVX-512";
    if (target == SEPCONV_TARGET_AVX512 && no_avx512 && no_avx512[0] == '1')
        return "SEPCONV_NO_AVX512=1";
    sepconv_target resolved;
    if (sepconv_target_resolve(target, &resolved, NULL) == SEPCONV_OK)
        return "no test ran it"; /* the CPU has it: this run's tests did not ask */
    return target == SEPCONV_TARGET_AVX2     ? "CPU lacks avx2 + fma"
           : target == SEPCONV_TARGET_AVX512 ? "CPU lacks avx512f"
           : target == SEPCONV_TARGET_NEON   ? "CPU lacks neon" : "no test ran it";
}

void test_target_exercised(sepconv_target target, const char *what)
{
    char line[512];
    snprintf(line, sizeof line, "ran %s %s\n", sepconv_target_name(target), what);
    record_target(line);
}

bool test_target_runs(sepconv_target target, const char *what)
{
    sepconv_target resolved;
    sepconv_error error;
    bool runs = sepconv_target_resolve(target, &resolved, &error) == SEPCONV_OK;
    if (runs && resolved == SEPCONV_TARGET_AVX512 && under_valgrind()) {
        runs = false;
        snprintf(error.message, sizeof error.message, "valgrind cannot run AVX-512");
    }
    if (runs) {
        test_target_exercised(resolved, what);
        return true;
    }
    fprintf(stderr, "SKIPPED: %s (target %s): %s\n", what, sepconv_target_name(target),
            error.message);
    char line[512];
    snprintf(line, sizeof line, "skip %s %s\n", sepconv_target_name(target),
             skip_reason(target));
    record_target(line);
    return false;
}

/* Prints which targets the run exercised, from the records of its tests. */
static void print_targets(const char *path)
{
    bool ran[SEPCONV_TARGET_ISA_COUNT] = {false};
    char skipped[SEPCONV_TARGET_ISA_COUNT][96] = {{0}};
    FILE *file = fopen(path, "r");
    char line[512];
    while (file && fgets(line, sizeof line, file)) {
        char kind[8], name[16];
        int used = 0;
        if (sscanf(line, "%7s %15s %n", kind, name, &used) < 2)
            continue;
        sepconv_target t;
        if (sepconv_target_parse(name, &t, NULL) != SEPCONV_OK ||
            (unsigned)t >= SEPCONV_TARGET_ISA_COUNT)
            continue;
        if (strcmp(kind, "ran") == 0)
            ran[t] = true;
        else if (!skipped[t][0])
            snprintf(skipped[t], sizeof skipped[t], "%.*s", (int)strcspn(line + used, "\n"),
                     line + used);
    }
    if (file)
        fclose(file);
    printf("targets exercised:");
    for (int t = 0; t < SEPCONV_TARGET_ISA_COUNT; t++)
        if (ran[t])
            printf(" %s", sepconv_target_name((sepconv_target)t));
    for (int t = 0; t < SEPCONV_TARGET_ISA_COUNT; t++)
        if (!ran[t])
            printf(" (%s: %s%s)", sepconv_target_name((sepconv_target)t),
                   skipped[t][0] ? "skipped, " : "not exercised: ",
                   skipped[t][0] ? skipped[t] : skip_reason((sepconv_target)t));
    printf("\n");
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

int main(int argc, char **argv)
{
    /* run_tests --print-targets FILE: the summary of a run that recorded
     * into FILE ($SEPCONV_TEST_TARGETS), for `make test`'s last line */
    if (argc == 3 && strcmp(argv[1], "--print-targets") == 0) {
        print_targets(argv[2]);
        return EXIT_SUCCESS;
    }
    (void)argc;
    (void)argv;
    /* the tests record the targets they ran here; printed at the end
     * unless the caller set the file (and prints it itself) */
    char targets[4200] = "";
    bool own_targets = !getenv("SEPCONV_TEST_TARGETS");
    if (own_targets) {
        const char *tmp = getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp";
        snprintf(targets, sizeof targets, "%s/sepconv-targets-XXXXXX", tmp);
        int fd = mkstemp(targets);
        if (fd >= 0) {
            close(fd);
            setenv("SEPCONV_TEST_TARGETS", targets, 1);
        } else {
            targets[0] = '\0';
        }
    } else {
        snprintf(targets, sizeof targets, "%s", getenv("SEPCONV_TEST_TARGETS"));
    }
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
    srunner_add_suite(runner, microkernels_suite());
    srunner_add_suite(runner, generator_suite());
    srunner_add_suite(runner, quantize_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    if (targets[0] && own_targets) {
        fflush(stdout);
        print_targets(targets);
        if (own_targets)
            unlink(targets);
    }
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
