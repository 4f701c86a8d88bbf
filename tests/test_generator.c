/*
 * test_generator.c -- every grid layer, for every target this machine runs:
 * generated, compiled (the embedded tcc backend; gcc -Wall -Werror; clang
 * and the tcc command on a share), run and matched against the reference.  Compiles in batches: one compiler run
 * builds many kernels, since each carries its own symbol names.
 */
#include <stdlib.h>
#include <string.h>

#include "grid.h"
#include "tests.h"

#define BATCH 24 /* kernels per compiler run */

static grid_case cases[GRID_SIZE];
static size_t case_count;

/* Which compilers build which share of a target's grid. */
typedef struct grid_run {
    sepconv_target target;
    const char *compiler;
    const char *flags;
    size_t every; /* 1: every case; k: every k-th case */
} grid_run;

/* compiler NULL: the embedded tcc backend, in memory */
static const grid_run runs[] = {
    {SEPCONV_TARGET_PORTABLE, NULL, NULL, 1},
    {SEPCONV_TARGET_NATIVE, NULL, NULL, 1},
    {SEPCONV_TARGET_PORTABLE, "cc", "-O1 -Wall -Werror", 1},
    {SEPCONV_TARGET_AVX2, "cc", "-O1 -Wall -Werror", 1},
    {SEPCONV_TARGET_AVX512, "cc", "-O1 -Wall -Werror", 1},
    {SEPCONV_TARGET_PORTABLE, "cc", "-O3 -Wall -Wextra -Werror NATIVE", 7},
    {SEPCONV_TARGET_PORTABLE, "clang", "-O1 -Wall -Werror", 5},
    {SEPCONV_TARGET_AVX512, "clang", "-O1 -Wall -Werror", 9},
    {SEPCONV_TARGET_PORTABLE, "tcc", "-Wall -Werror", 3},
};
#define RUN_COUNT (sizeof runs / sizeof runs[0])

/* Whether this CPU runs a target's code. */
static bool cpu_runs(sepconv_target target)
{
    __builtin_cpu_init();
    if (target == SEPCONV_TARGET_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (target == SEPCONV_TARGET_AVX512)
        return __builtin_cpu_supports("avx512f") && !under_valgrind();
    return true;
}

/* Builds the grid once per process. */
static void ensure_grid(void)
{
    if (case_count == 0)
        case_count = grid_build(cases, GRID_SIZE, GRID_SEED);
}

/* One kernel of a batch: its layer and generated source. */
typedef struct batch_entry {
    size_t index;
    sepconv_layer layer;
    sepconv_schedule schedule;
    sepconv_source source;
} batch_entry;

/* Generates, compiles and verifies the cases of one batch of one run. */
static void check_batch(const grid_run *run, size_t first)
{
    batch_entry entries[BATCH];
    size_t count = 0, total = 0;
    for (size_t i = first; i < case_count && count < BATCH; i += run->every) {
        batch_entry *e = &entries[count];
        sepconv_error error;
        e->index = i;
        ck_assert_msg(sepconv_layer_parse(cases[i].spec, &e->layer, &error) == SEPCONV_OK,
                      "%s", error.message);
        ck_assert_int_eq(grid_schedule(&e->layer, run->target, i, &e->schedule, NULL),
                         SEPCONV_OK);
        char schedule_text[256];
        sepconv_schedule_format(&e->schedule, schedule_text, sizeof schedule_text, NULL);
        ck_assert_msg(sepconv_generate(&e->layer, &e->schedule, NULL, &e->source,
                                       &error) == SEPCONV_OK,
                      "%s [%s]: %s", cases[i].spec, schedule_text, error.message);
        total += e->source.code_length;
        count++;
    }
    if (count == 0)
        return;
    char *joined = malloc(total + 1);
    size_t used = 0;
    for (size_t k = 0; k < count; k++) {
        memcpy(joined + used, entries[k].source.code, entries[k].source.code_length);
        used += entries[k].source.code_length;
    }
    joined[used] = '\0';
    char flags[256];
    snprintf(flags, sizeof flags, "%s", run->flags ? run->flags : "");
    char *native = strstr(flags, "NATIVE");
    if (native)
        snprintf(native, sizeof flags - (size_t)(native - flags), "%s", native_flags(""));
    sepconv_cc_options options = {.compiler = run->compiler, .flags = flags,
                                  .no_cache = 1};
    sepconv_code *code = NULL;
    sepconv_error error;
    if (run->compiler) {
        ck_assert_msg(sepconv_cc_compile(joined, used, &options, &code, &error) ==
                          SEPCONV_OK, "%s %s: %s", run->compiler, run->flags, error.message);
    } else {
        char names[2 * BATCH][SEPCONV_SYMBOL_MAX + 8];
        const char *pointers[2 * BATCH];
        for (size_t k = 0; k < count; k++) {
            snprintf(names[2 * k], sizeof names[0], "%s", entries[k].source.symbol);
            snprintf(names[2 * k + 1], sizeof names[0], "%s_pack", entries[k].source.symbol);
            pointers[2 * k] = names[2 * k];
            pointers[2 * k + 1] = names[2 * k + 1];
        }
        ck_assert_msg(sepconv_tcc_compile(joined, used, pointers, 2 * count, &code,
                                          &error) == SEPCONV_OK, "tcc: %s", error.message);
    }
    free(joined);
    for (size_t k = 0; k < count; k++) {
        batch_entry *e = &entries[k];
        char pack_name[SEPCONV_SYMBOL_MAX + 8];
        snprintf(pack_name, sizeof pack_name, "%s_pack", e->source.symbol);
        sepconv_kernel_code kernel = {
            .run = (sepconv_kernel_fn)sepconv_code_symbol(code, e->source.symbol),
            .pack = (sepconv_pack_fn)sepconv_code_symbol(code, pack_name),
            .packed_elements = e->source.packed_elements,
            .scratch_bytes = e->source.scratch_bytes};
        ck_assert_ptr_nonnull(kernel.run);
        ck_assert_ptr_nonnull(kernel.pack);
        sepconv_verify_report report;
        char schedule_text[256];
        sepconv_schedule_format(&e->schedule, schedule_text, sizeof schedule_text, NULL);
        ck_assert_msg(sepconv_verify_kernel(&e->layer, &kernel, 1000 + e->index, &report,
                                            &error) == SEPCONV_OK,
                      "case %zu %s [%s, %s, %s]: %s", e->index, cases[e->index].spec,
                      schedule_text, sepconv_target_name(run->target),
                      run->compiler ? run->compiler : "libtcc",
                      error.message);
        ck_assert_int_eq(report.comparison.checked, e->layer.output_elements);
        sepconv_source_free(&e->source);
    }
    sepconv_code_free(code);
}

START_TEST(grid_run_matches_reference)
{
    ensure_grid();
    const grid_run *run = &runs[_i];
    if (!cpu_runs(run->target))
        return; /* this machine cannot run the target's code */
    size_t stride = BATCH * run->every;
    for (size_t first = 0; first < case_count; first += stride)
        for (size_t offset = 0; offset < run->every && first + offset < case_count;
             offset += run->every)
            check_batch(run, first + offset);
}
END_TEST

START_TEST(grid_covers_every_option_and_knob_value)
{
    ensure_grid();
    ck_assert_uint_ge(case_count, 200);
    /* every op, layout, padding mode, activation, bias, batch > 1 and
     * multiplier > 1 occurs; every value of every knob for every target */
    unsigned ops = 0, layouts = 0, paddings = 0, acts = 0, biases = 0;
    bool batch = false, mult = false, dilation = false, stride = false;
    bool seen[SEPCONV_TARGET_COUNT][4][SEPCONV_KNOB_COUNT][SEPCONV_KNOB_VALUES_MAX] = {{{{false}}}};
    for (size_t i = 0; i < case_count; i++) {
        sepconv_layer l;
        ck_assert_int_eq(sepconv_layer_parse(cases[i].spec, &l, NULL), SEPCONV_OK);
        ops |= 1u << l.op;
        layouts |= 1u << l.layout;
        paddings |= 1u << l.padding;
        acts |= 1u << l.dw_act | 1u << l.pw_act | 1u << l.conv_act;
        biases |= 1u << l.bias;
        batch |= l.batch > 1;
        mult |= l.multiplier > 1;
        dilation |= l.dilation > 1;
        stride |= l.stride > 1;
        for (int t = 0; t < SEPCONV_TARGET_COUNT; t++) {
            sepconv_schedule s;
            ck_assert_int_eq(grid_schedule(&l, (sepconv_target)t, i, &s, NULL), SEPCONV_OK);
            for (int k = 0; k < SEPCONV_KNOB_COUNT; k++) {
                sepconv_knob_info info;
                if (sepconv_knob_describe(l.op, (sepconv_target)t, (sepconv_knob)k, &info,
                                          NULL) != SEPCONV_OK)
                    continue;
                for (int v = 0; v < info.count; v++)
                    if (info.values[v] == s.value[k])
                        seen[t][l.op][k][v] = true;
            }
        }
    }
    ck_assert_uint_eq(ops, 0xf);
    ck_assert_uint_eq(layouts, 0x3);
    ck_assert_uint_eq(paddings, 0x7);
    ck_assert_uint_eq(acts, 0x7);
    ck_assert_uint_eq(biases, 0x3);
    ck_assert(batch && mult && dilation && stride);
    for (int t = 0; t < SEPCONV_TARGET_COUNT; t++)
        for (int op = 0; op < 4; op++)
            for (int k = 0; k < SEPCONV_KNOB_COUNT; k++) {
                sepconv_knob_info info;
                if (sepconv_knob_describe((sepconv_op)op, (sepconv_target)t,
                                          (sepconv_knob)k, &info, NULL) != SEPCONV_OK)
                    continue;
                for (int v = 0; v < info.count; v++)
                    ck_assert_msg(seen[t][op][k][v], "target %d op %s knob %s=%lld never tested",
                                  t, sepconv_op_name((sepconv_op)op), info.name,
                                  (long long)info.values[v]);
            }
}
END_TEST

Suite *generator_suite(void)
{
    Suite *suite = suite_create("generator");
    TCase *grid = tcase_create("grid");
    tcase_set_timeout(grid, 1800);
    tcase_add_test(grid, grid_covers_every_option_and_knob_value);
    tcase_add_loop_test(grid, grid_run_matches_reference, 0, (int)RUN_COUNT);
    suite_add_tcase(suite, grid);
    return suite;
}
