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

/* compiler NULL: the embedded tcc backend, in memory (an ISA: plain C
 * calling libsepconv's micro-kernels of it); a compiler: the ISA's intrinsics */
static const grid_run runs[] = {
    {SEPCONV_TARGET_PORTABLE, NULL, NULL, 1},
    {SEPCONV_TARGET_AVX2, NULL, NULL, 1},
    {SEPCONV_TARGET_AVX512, NULL, NULL, 1},
    {SEPCONV_TARGET_NEON, NULL, NULL, 1},
    {SEPCONV_TARGET_PORTABLE, "cc", "-O1 -Wall -Werror", 1},
    {SEPCONV_TARGET_AVX2, "cc", "-O1 -Wall -Werror", 1},
    {SEPCONV_TARGET_AVX512, "cc", "-O1 -Wall -Werror", 1},
    {SEPCONV_TARGET_NEON, "cc", "-O1 -Wall -Werror", 1},
    {SEPCONV_TARGET_PORTABLE, "cc", "-O3 -Wall -Wextra -Werror NATIVE", 7},
    {SEPCONV_TARGET_PORTABLE, "clang", "-O1 -Wall -Werror", 5},
    {SEPCONV_TARGET_AVX512, "clang", "-O1 -Wall -Werror", 9},
    {SEPCONV_TARGET_PORTABLE, "tcc", "-Wall -Werror", 3},
};
#define RUN_COUNT (sizeof runs / sizeof runs[0])

/* Whether this CPU runs a grid run's code; a skip is said and recorded. */
static bool cpu_runs(const grid_run *run)
{
    char what[128];
    snprintf(what, sizeof what, "generator grid, %s%s%s%s",
             run->compiler ? run->compiler : "libtcc", run->flags ? " " : "",
             run->flags ? run->flags : "", run->every > 1 ? ", a share" : "");
    return test_target_runs(run->target, what);
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
        /* source for a compiler: intrinsics; for libtcc: micro-kernel calls */
        sepconv_generate_options generate = {.for_cc = run->compiler != NULL,
                                             .source_budget = SEPCONV_SOURCE_BUDGET_DEFAULT};
        ck_assert_msg(sepconv_generate(&e->layer, &e->schedule, &generate, &e->source,
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
        ck_assert_msg(sepconv_tcc_compile(joined, used, run->target, pointers, 2 * count,
                                          &code, &error) == SEPCONV_OK,
                      "tcc: %s", error.message);
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
    if (!cpu_runs(run))
        return; /* this machine cannot run the target's code (said on stderr) */
    /* a batch takes every run->every-th case from `first` on, BATCH of
     * them; the next batch starts where that one's stride ends */
    size_t stride = BATCH * run->every;
    for (size_t first = 0; first < case_count; first += stride)
        check_batch(run, first);
}
END_TEST

/* The int8 runs: the embedded tcc backend for every ISA (plain C calling
 * its int8 micro-kernels, or none for portable) and cc on a share; int8
 * code has no schedule knobs yet, so cc's target is the host's. */
static const grid_run int8_runs[] = {
    {SEPCONV_TARGET_PORTABLE, NULL, NULL, 1}, {SEPCONV_TARGET_AVX2, NULL, NULL, 1},
    {SEPCONV_TARGET_AVX512, NULL, NULL, 1},   {SEPCONV_TARGET_NEON, NULL, NULL, 1},
    {SEPCONV_TARGET_AUTO, "cc", "-O2", 6},
};
#define INT8_RUN_COUNT (sizeof int8_runs / sizeof int8_runs[0])

/* Grid case i as an int8 layer: a seeded quantization appended, scales
 * from fine to coarse (outputs from spread to saturated) and zero points
 * from bound to bound. */
static sepconv_layer int8_case(size_t i, char *spec, size_t capacity)
{
    static const char *const scales[] = {"0.004", "0.03", "0.1", "0.5", "2"};
    static const int zeros[] = {-128, -9, 0, 3, 64, 127};
    uint64_t state = GRID_SEED ^ (0x9e3779b97f4a7c15u * (i + 1));
    int picks[6];
    for (int k = 0; k < 6; k++)
        picks[k] = (int)(sepconv_random_next(&state) % 30);
    sepconv_layer l;
    sepconv_error error;
    ck_assert_int_eq(sepconv_layer_parse(cases[i].spec, &l, NULL), SEPCONV_OK);
    int used = snprintf(spec, capacity, "%s dtype=int8 in_scale=%s in_zero=%d out_scale=%s "
                        "out_zero=%d", cases[i].spec, scales[picks[0] % 5], zeros[picks[1] % 6],
                        scales[picks[2] % 5], zeros[picks[3] % 6]);
    if (l.op == SEPCONV_OP_SEP) /* and the intermediate's */
        snprintf(spec + used, capacity - (size_t)used, " mid_scale=%s mid_zero=%d",
                 scales[picks[4] % 5], zeros[picks[5] % 6]);
    ck_assert_msg(sepconv_layer_parse(spec, &l, &error) == SEPCONV_OK, "%s: %s", spec,
                  error.message);
    return l;
}

/* Seeded int8 values in [-128, 127]. */
static void int8_fill(int8_t *x, int64_t count, uint64_t *state)
{
    for (int64_t i = 0; i < count; i++)
        x[i] = (int8_t)(sepconv_random_next(state) >> 56);
}

/* One int8 grid case through the kernel API: created (verified bit for
 * bit against the oracle when made), then run on seeded tensors, on 1 or 2
 * threads: the bits are the oracle's. */
static void check_int8_case(const grid_run *run, size_t i)
{
    char spec[512];
    const sepconv_layer l = int8_case(i, spec, sizeof spec);
    const bool sep = l.op == SEPCONV_OP_SEP;
    const int64_t channels = sep ? l.mid_c : l.out_c; /* of the (first) stage */
    uint64_t state = 77 + i;
    int8_t *x = malloc((size_t)l.input_elements), *w = malloc((size_t)l.weight_elements);
    int8_t *pw = malloc((size_t)l.pw_weight_elements + 1);
    int8_t *y = malloc((size_t)l.output_elements), *expected = malloc((size_t)l.output_elements);
    int32_t *b = malloc((size_t)channels * sizeof *b), *pb = malloc((size_t)l.out_c * sizeof *pb);
    float *scales = malloc((size_t)channels * sizeof *scales);
    float *pw_scales = malloc((size_t)l.out_c * sizeof *pw_scales);
    ck_assert(x && w && pw && y && expected && b && pb && scales && pw_scales);
    int8_fill(x, l.input_elements, &state);
    int8_fill(w, l.weight_elements, &state);
    int8_fill(pw, l.pw_weight_elements, &state);
    for (int64_t c = 0; c < channels; c++) {
        b[c] = (int32_t)(sepconv_random_next(&state) % 8001) - 4000;
        scales[c] = 0.001f * (float)(1 + sepconv_random_next(&state) % 20);
    }
    for (int64_t c = 0; c < l.out_c; c++) {
        pb[c] = (int32_t)(sepconv_random_next(&state) % 8001) - 4000;
        pw_scales[c] = 0.001f * (float)(1 + sepconv_random_next(&state) % 20);
    }
    sepconv_qtensors t = {x, w, sep ? pw : NULL, l.bias ? b : NULL, sep && l.bias ? pb : NULL,
                          scales, sep ? pw_scales : NULL};
    sepconv_error error;
    ck_assert_msg(sepconv_reference_run_int8(&l, &t, expected, &error) == SEPCONV_OK, "%s: %s",
                  spec, error.message);
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.backend = run->compiler ? SEPCONV_BACKEND_CC : SEPCONV_BACKEND_TCC;
    options.target = run->target;
    options.cc.flags = run->compiler ? native_flags(run->flags) : NULL;
    options.threads = 1 + (int)(i % 2);
    options.verify_seed = 3000 + i;
    sepconv_kernel *kernel = NULL;
    ck_assert_msg(sepconv_kernel_create(&l, &options, &kernel, &error) == SEPCONV_OK,
                  "case %zu %s (%s, %s): %s", i, spec, sepconv_target_name(run->target),
                  run->compiler ? run->compiler : "libtcc", error.message);
    ck_assert_int_eq(sepconv_kernel_get_info(kernel)->verified, 1);
    ck_assert_int_eq(sepconv_kernel_set_qweights(kernel, &t, &error), SEPCONV_OK);
    memset(y, 0x5a, (size_t)l.output_elements);
    ck_assert_int_eq(sepconv_kernel_run_int8(kernel, x, y, &error), SEPCONV_OK);
    for (int64_t k = 0; k < l.output_elements; k++)
        ck_assert_msg(y[k] == expected[k], "case %zu %s (%s, %s, %d threads): output %lld is "
                      "%d, the oracle's %d", i, spec, sepconv_target_name(run->target),
                      run->compiler ? run->compiler : "libtcc", options.threads,
                      (long long)k, y[k], expected[k]);
    sepconv_kernel_free(kernel);
    free(x), free(w), free(pw), free(y), free(expected), free(b), free(pb);
    free(scales), free(pw_scales);
}

START_TEST(int8_grid_run_is_bit_exact)
{
    ensure_grid();
    const grid_run *run = &int8_runs[_i];
    char what[128];
    snprintf(what, sizeof what, "generator int8 grid, %s", run->compiler ? "cc" : "libtcc");
    if (run->target != SEPCONV_TARGET_AUTO && !test_target_runs(run->target, what))
        return; /* this machine cannot run the target's code (said on stderr) */
    /* under valgrind and qemu a third of them, the others in turn: every
     * case runs natively (make test, ASan) */
    const size_t every = run->every * (under_valgrind() || emulation_factor() > 1 ? 3 : 1);
    for (size_t i = (size_t)_i % every; i < case_count; i += every)
        check_int8_case(run, i);
}
END_TEST

START_TEST(int8_grid_covers_every_op_and_quantization)
{
    /* the int8 grid is the float one's layers, so it has their options;
     * its quantizations reach both zero-point bounds and every scale, and
     * some cases saturate (an output at -128 or 127) */
    ensure_grid();
    unsigned ops = 0;
    bool low_zero = false, high_zero = false, fine = false, coarse = false;
    for (size_t i = 0; i < case_count; i++) {
        char spec[512];
        const sepconv_layer l = int8_case(i, spec, sizeof spec);
        ck_assert_int_eq(l.dtype, SEPCONV_DTYPE_INT8);
        ops |= 1u << l.op;
        low_zero |= l.quant.in_zero == -128 || l.quant.out_zero == -128;
        high_zero |= l.quant.in_zero == 127 || l.quant.out_zero == 127;
        fine |= l.quant.out_scale < 0.005f;
        coarse |= l.quant.out_scale > 1.0f;
    }
    ck_assert_uint_eq(ops, 1u << SEPCONV_OP_CONV | 1u << SEPCONV_OP_DW | 1u << SEPCONV_OP_PW |
                               1u << SEPCONV_OP_SEP);
    ck_assert(low_zero && high_zero && fine && coarse);
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
    bool seen[SEPCONV_TARGET_ISA_COUNT][4][SEPCONV_KNOB_COUNT][SEPCONV_KNOB_VALUES_MAX] = {{{{false}}}};
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
        for (int t = 0; t < SEPCONV_TARGET_ISA_COUNT; t++) {
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
    for (int t = 0; t < SEPCONV_TARGET_ISA_COUNT; t++)
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

/* Generates a spec under a schedule ("" for the default), for cc or not,
 * within `budget` bytes (0: the default). */
static sepconv_status generate_for(const char *spec, const char *schedule,
                                   sepconv_target target, bool for_cc, size_t budget,
                                   sepconv_source *source, sepconv_error *error)
{
    sepconv_layer layer;
    sepconv_schedule parsed;
    ck_assert_msg(sepconv_layer_parse(spec, &layer, error) == SEPCONV_OK, "%s: %s", spec,
                  error->message);
    ck_assert_msg(sepconv_schedule_parse(schedule, &layer, target, &parsed, error) ==
                      SEPCONV_OK, "%s: %s", schedule, error->message);
    sepconv_generate_options options = {.source_budget = budget, .for_cc = for_cc};
    return sepconv_generate(&layer, &parsed, &options, source, error);
}

/* The layer of issue #10 whose unroll=row source (917 KB) gcc compiled for
 * 5 minutes: 7 row segments x 19 columns x 49 taps. */
static const char *const unrolled_conv = "op=conv h=9 w=19 m=5 n=3 dk=7";
static const char *const unrolled_schedule = "channel_block=16,tile_w=8,unroll=row";

START_TEST(estimate_sees_unrolled_rows_coming)
{
    sepconv_source source, again;
    sepconv_error error;
    ck_assert_int_eq(generate_for(unrolled_conv, unrolled_schedule, SEPCONV_TARGET_AVX2,
                                  true, (size_t)1 << 30, &source, &error), SEPCONV_OK);
    /* a budget of 0.8x the real size is refused by the estimate, before
     * rendering ("would be at least"), not by the renderer on its way */
    size_t real = source.code_length;
    ck_assert_int_eq(generate_for(unrolled_conv, unrolled_schedule, SEPCONV_TARGET_AVX2,
                                  true, real * 8 / 10, &again, &error), SEPCONV_LIMIT);
    ck_assert_msg(strstr(error.message, "would be at least"), "%s", error.message);
    ck_assert_ptr_null(again.code);
    /* and the estimate is a lower bound: the real size itself passes */
    ck_assert_int_eq(generate_for(unrolled_conv, unrolled_schedule, SEPCONV_TARGET_AVX2,
                                  true, real, &again, &error), SEPCONV_OK);
    sepconv_source_free(&again);
    sepconv_source_free(&source);
    /* the same over every unroll and target, on layers with large kernels */
    const char *specs[] = {unrolled_conv, "op=dw df=14 m=64 dk=7 mult=2 act=relu",
                           "op=sep df=12 m=16 n=24 dk=5 stride=2 layout=nchw",
                           "op=conv df=10 m=4 n=20 dk=5 dilation=2 bias=1"};
    const char *schedules[] = {"unroll=row", "unroll=full", "unroll=row,tile_w=8"};
    /* (t: every ISA; for_cc: its intrinsics, or plain C calling micro-kernels) */
    for (int i = 0; i < 4; i++)
        for (int u = 0; u < 3; u++)
            for (int t = 0; t < 2 * SEPCONV_TARGET_ISA_COUNT; t++) {
                sepconv_target target = (sepconv_target)(t / 2);
                bool cc = t % 2;
                ck_assert_int_eq(generate_for(specs[i], schedules[u], target, cc,
                                              (size_t)1 << 30, &source, &error),
                                 SEPCONV_OK);
                real = source.code_length;
                sepconv_source_free(&source);
                ck_assert_msg(generate_for(specs[i], schedules[u], target, cc, real,
                                           &again, &error) == SEPCONV_OK,
                              "%s %s: %s", specs[i], schedules[u], error.message);
                sepconv_source_free(&again);
                ck_assert_int_eq(generate_for(specs[i], schedules[u], target, cc,
                                              real / 2, &again, &error), SEPCONV_LIMIT);
                ck_assert_msg(strstr(error.message, "would be at least"),
                              "%s %s %s: estimate below half the real %zu bytes: %s",
                              specs[i], schedules[u], sepconv_target_name(target), real,
                              error.message);
            }
}
END_TEST

START_TEST(cc_source_has_its_own_budget)
{
    /* 440 KiB of unrolled depthwise: fine for tcc's 4 MiB; for cc, whose
     * compile of it took 20 s, refused at once by the estimate */
    const char *spec = "op=dw df=112 m=32 dk=3";
    sepconv_source source;
    sepconv_error error;
    ck_assert_int_eq(generate_for(spec, "unroll=row", SEPCONV_TARGET_PORTABLE, false, 0,
                                  &source, &error), SEPCONV_OK);
    ck_assert_uint_gt(source.code_length, SEPCONV_CC_SOURCE_BUDGET_DEFAULT);
    ck_assert_uint_le(source.code_length, SEPCONV_SOURCE_BUDGET_DEFAULT);
    sepconv_source_free(&source);
    ck_assert_int_eq(generate_for(spec, "unroll=row", SEPCONV_TARGET_PORTABLE, true, 0,
                                  &source, &error), SEPCONV_LIMIT);
    ck_assert_ptr_null(source.code);
    char expected[160];
    snprintf(expected, sizeof expected, "source-size budget of %zu bytes (128.0 KiB), "
             "the cc backend's default (options.generate.source_budget)",
             SEPCONV_CC_SOURCE_BUDGET_DEFAULT);
    ck_assert_msg(strstr(error.message, expected), "%s", error.message);
    ck_assert_ptr_nonnull(strstr(error.message, "would be at least"));
    ck_assert_ptr_nonnull(strstr(error.message, "raise the budget"));
    /* a budget given applies to cc as well */
    ck_assert_int_eq(generate_for(spec, "unroll=row", SEPCONV_TARGET_PORTABLE, true,
                                  (size_t)1 << 20, &source, &error), SEPCONV_OK);
    sepconv_source_free(&source);
    /* the kernel API generates for its backend */
    sepconv_layer layer;
    ck_assert_int_eq(sepconv_layer_parse(spec, &layer, &error), SEPCONV_OK);
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.backend = SEPCONV_BACKEND_CC;
    options.schedule = "unroll=row";
    sepconv_kernel *kernel = NULL;
    ck_assert_int_eq(sepconv_kernel_create(&layer, &options, &kernel, &error),
                     SEPCONV_LIMIT);
    ck_assert_msg(strstr(error.message, "the cc backend's default"), "%s", error.message);
    ck_assert_ptr_null(kernel);
}
END_TEST

START_TEST(budget_messages_read_as_sizes)
{
    sepconv_source source;
    sepconv_error error;
    /* 512 KiB once printed as "524288 bytes (0 MiB)" */
    ck_assert_int_eq(generate_for("op=dw df=112 m=32 dk=3", "unroll=row",
                                  SEPCONV_TARGET_AVX2, true, (size_t)512 << 10, &source,
                                  &error), SEPCONV_LIMIT);
    ck_assert_msg(strstr(error.message, "budget of 524288 bytes (512.0 KiB), as given "
                                        "(options.generate.source_budget)"),
                  "%s", error.message);
    ck_assert_ptr_null(strstr(error.message, "0 MiB"));
    /* a source that the estimate lets through but the renderer stops: the
     * same readable budget, and where to raise it */
    ck_assert_int_eq(generate_for("op=dw df=6 m=8 dk=3", "", SEPCONV_TARGET_PORTABLE,
                                  false, 0, &source, &error), SEPCONV_OK);
    size_t real = source.code_length;
    sepconv_source_free(&source);
    ck_assert_int_eq(generate_for("op=dw df=6 m=8 dk=3", "", SEPCONV_TARGET_PORTABLE,
                                  false, real - 1, &source, &error), SEPCONV_LIMIT);
    char expected[160];
    snprintf(expected, sizeof expected, "passed the source-size budget of %zu bytes "
             "(%.1f KiB), as given (options.generate.source_budget)", real - 1,
             (double)(real - 1) / 1024);
    ck_assert_msg(strstr(error.message, expected), "%s", error.message);
    ck_assert_ptr_nonnull(strstr(error.message, "raise the budget"));
}
END_TEST

/* Layers at the edges of what the spec accepts: the largest kernels a
 * padded input takes, one channel and a thousand, one row and 224. */
static const char *const edge_layers[] = {
    "op=conv df=9 m=8 n=8 dk=7", "op=conv df=7 m=8 n=8 dk=7",
    "op=conv df=14 m=32 n=32 dk=5", "op=conv h=9 w=19 m=5 n=3 dk=7",
    "op=conv df=56 m=3 n=1000 dk=7 stride=2 bias=1 act=relu",
    "op=conv df=40 m=1 n=1 dk=39", "op=conv h=1 w=300 m=2 n=33 dk=250 layout=nchw",
    "op=conv df=20 m=17 n=9 dk=9 dilation=2 stride=3",
    "op=dw df=224 m=32 dk=7", "op=dw df=64 m=1 dk=63 bias=1",
    "op=dw df=30 m=1000 dk=29 mult=2 layout=nchw", "op=dw h=2 w=200 m=5 dk=199",
    "op=sep df=112 m=32 n=64 dk=7 act=relu6", "op=sep df=20 m=1 n=1000 dk=19",
    "op=sep df=9 m=1000 n=7 dk=9 stride=2 dilation=3 layout=nchw",
    "op=pw df=224 m=3 n=1000 stride=2", "op=pw h=1 w=500 m=1000 n=1"};
#define EDGE_LAYERS (sizeof edge_layers / sizeof edge_layers[0])

START_TEST(default_schedules_fit_the_cc_budget)
{
    for (size_t i = 0; i < EDGE_LAYERS; i++)
        for (int t = 0; t < SEPCONV_TARGET_ISA_COUNT; t++) {
            sepconv_source source;
            sepconv_error error;
            ck_assert_msg(generate_for(edge_layers[i], "", (sepconv_target)t, true, 0,
                                       &source, &error) == SEPCONV_OK,
                          "%s --target %s: %s", edge_layers[i],
                          sepconv_target_name((sepconv_target)t), error.message);
            ck_assert_uint_le(source.code_length, SEPCONV_CC_SOURCE_BUDGET_DEFAULT);
            sepconv_source_free(&source);
        }
}
END_TEST

START_TEST(largest_default_compiles_with_cc)
{
    /* not a timing test: the largest default source of issue #10's layers
     * compiles with cc -O3 and verifies */
    sepconv_target target = SEPCONV_TARGET_PORTABLE;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        target = SEPCONV_TARGET_AVX2;
#elif defined(__aarch64__)
    target = SEPCONV_TARGET_NEON;
#endif
    size_t largest = 0, worst = 0;
    for (size_t i = 0; i < 4; i++) {
        sepconv_source source;
        sepconv_error error;
        ck_assert_int_eq(generate_for(edge_layers[i], "", target, true, 0, &source, &error),
                         SEPCONV_OK);
        if (source.code_length > largest) {
            largest = source.code_length;
            worst = i;
        }
        sepconv_source_free(&source);
    }
    sepconv_layer layer;
    sepconv_error error;
    ck_assert_int_eq(sepconv_layer_parse(edge_layers[worst], &layer, &error), SEPCONV_OK);
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.backend = SEPCONV_BACKEND_CC;
    options.target = target;
    options.cc.no_cache = 1;
    options.cc.flags = native_flags("-O3"); /* what valgrind can run */
    sepconv_kernel *kernel = NULL;
    ck_assert_msg(sepconv_kernel_create(&layer, &options, &kernel, &error) == SEPCONV_OK,
                  "%s: %s", edge_layers[worst], error.message);
    ck_assert_int_eq(sepconv_kernel_get_info(kernel)->verified, 1);
    sepconv_kernel_free(kernel);
}
END_TEST

/* The depthwise sliding window (cc, SIMD targets): layers that take its
 * every path (weights held along the row or not, border columns joining the
 * interior's groups, strides 1-3, dilation, asymmetric and valid padding,
 * a channel rest that is vectors or not, rows too short for a loop), each
 * compiled with cc -O2 -Wall -Werror and matched against the reference. */
static const struct { const char *spec, *schedule; sepconv_target target; } windows[] = {
    {"op=dw df=14 m=64 dk=3 bias=1 act=relu6", "channel_block=32,tile_w=4", SEPCONV_TARGET_AVX512},
    {"op=dw df=7 m=48 dk=3", "channel_block=32,tile_w=4", SEPCONV_TARGET_AVX512},
    {"op=dw df=13 m=40 dk=3 stride=2 act=relu", "channel_block=16,tile_w=8", SEPCONV_TARGET_AVX512},
    /* 15 columns and 3 weights kept: more in-out operands than one asm takes */
    {"op=dw df=32 m=64 dk=3 stride=2 pad=same bias=1 act=relu6", "channel_block=32,tile_w=8",
     SEPCONV_TARGET_AVX512},
    {"op=dw h=5 w=19 m=16 dk=3 dilation=2 pad=1:0:2:1", "channel_block=16,tile_w=4", SEPCONV_TARGET_AVX512},
    {"op=dw df=11 m=35 dk=2 stride=3 pad=valid bias=1", "channel_block=16,tile_w=2", SEPCONV_TARGET_AVX512},
    {"op=dw h=3 w=2 m=32 dk=3", "channel_block=32,tile_w=2", SEPCONV_TARGET_AVX512},
    {"op=dw df=9 m=24 dk=3 batch=2 bias=1", "channel_block=16,tile_w=2", SEPCONV_TARGET_AVX2},
    {"op=sep df=10 m=32 n=16 dk=3 dw_act=relu6 pw_act=none", "channel_block=16,tile_w=4", SEPCONV_TARGET_AVX512},
};

START_TEST(sliding_window_kernels_match_reference)
{
    if (!test_target_runs(windows[_i].target, "sliding-window depthwise, cc"))
        return;
    sepconv_layer layer;
    sepconv_error error;
    ck_assert_int_eq(sepconv_layer_parse(windows[_i].spec, &layer, &error), SEPCONV_OK);
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.backend = SEPCONV_BACKEND_CC;
    options.target = windows[_i].target;
    options.schedule = windows[_i].schedule;
    options.cc.no_cache = 1;
    options.cc.flags = "-O2 -Wall -Werror";
    sepconv_kernel *kernel = NULL;
    ck_assert_msg(sepconv_kernel_create(&layer, &options, &kernel, &error) == SEPCONV_OK,
                  "%s [%s]: %s", windows[_i].spec, windows[_i].schedule, error.message);
    ck_assert_int_eq(sepconv_kernel_get_info(kernel)->verified, 1);
    sepconv_kernel_free(kernel);
}
END_TEST

/* Counts the occurrences of `needle` in `text` from `from` to `to`. */
static int count_between(const char *from, const char *to, const char *needle)
{
    int count = 0;
    for (const char *at = strstr(from, needle); at && at < to; at = strstr(at + 1, needle))
        count++;
    return count;
}

/* The shape of the window, on the 14x14x512 layer (avx512, 32 channels x 4
 * columns): each interior row of the group loads its 6 input columns once
 * per vector (2 vectors, 3 rows: 36 loads for 72 FMAs), the weights are
 * declared once per channel block and row (9 taps x 2 vectors), and the
 * border columns 0 and 13 share groups with interior columns. */
START_TEST(sliding_window_loads_each_input_once)
{
    sepconv_source source;
    sepconv_error error;
    ck_assert_int_eq(generate_for("op=dw df=14 m=512 dk=3", "channel_block=32,tile_w=4",
                                  SEPCONV_TARGET_AVX512, true, 0, &source, &error),
                     SEPCONV_OK);
    const char *interior = strstr(source.code, "{ /* rows 1..12");
    ck_assert_ptr_nonnull(interior);
    const char *loop = strstr(interior, "for (long ox = 4; ox < 12; ox += 4)");
    ck_assert_ptr_nonnull(loop);
    const char *end = strstr(loop, "_mm512_storeu_ps(out_row + (ox + 3)");
    ck_assert_ptr_nonnull(end);
    ck_assert_int_eq(count_between(loop, end, "_mm512_fmadd_ps("), 4 * 9 * 2);
    ck_assert_int_eq(count_between(loop, end, "_mm512_loadu_ps(src"), 3 * 6 * 2);
    ck_assert_int_eq(count_between(loop, end, "_mm512_loadu_ps(w"), 0);
    ck_assert_int_eq(count_between(interior, loop, "_mm512_loadu_ps(w"), 9 * 2);
    ck_assert_ptr_nonnull(strstr(interior, "{ /* columns 0..3: taps kx 0..2"));
    ck_assert_ptr_nonnull(strstr(interior, "{ /* columns 12..13: taps kx 0..2"));
    ck_assert_ptr_null(strstr(source.code, "columns 0..0"));
    sepconv_source_free(&source);
}
END_TEST

/* A copy of the text of the function whose name ends in `suffix` (its
 * definition up to the next blank line that starts a comment). */
static char *function_text(const char *code, const char *suffix)
{
    char opening[64];
    snprintf(opening, sizeof opening, "%s(const", suffix);
    const char *start = strstr(code, opening);
    ck_assert_msg(start != NULL, "no function %s", suffix);
    const char *end = strstr(start, "\n}\n");
    ck_assert_ptr_nonnull(end);
    size_t length = (size_t)(end - start);
    char *text = malloc(length + 1);
    ck_assert_ptr_nonnull(text);
    memcpy(text, start, length);
    text[length] = '\0';
    return text;
}

START_TEST(each_sep_stage_unrolls_as_its_knob_says)
{
    const char *spec = "op=sep df=10 m=8 n=16 dk=3";
    sepconv_layer layer;
    sepconv_schedule s;
    ck_assert_int_eq(sepconv_layer_parse(spec, &layer, NULL), SEPCONV_OK);
    /* a schedule without pw_unroll (written before it existed) means both */
    ck_assert_int_eq(sepconv_schedule_parse("unroll=row", &layer, SEPCONV_TARGET_PORTABLE, &s,
                                            NULL), SEPCONV_OK);
    ck_assert_int_eq(s.value[SEPCONV_KNOB_UNROLL], 1);
    ck_assert_int_eq(s.value[SEPCONV_KNOB_PW_UNROLL], 1);
    ck_assert_int_eq(sepconv_schedule_parse("unroll=row,pw_unroll=none", &layer,
                                            SEPCONV_TARGET_PORTABLE, &s, NULL), SEPCONV_OK);
    ck_assert_int_eq(s.value[SEPCONV_KNOB_UNROLL], 1);
    ck_assert_int_eq(s.value[SEPCONV_KNOB_PW_UNROLL], 0);
    /* each knob changes its own stage's code and only that */
    const char *schedules[] = {"unroll=none,pw_unroll=none", "unroll=none,pw_unroll=row",
                               "unroll=row,pw_unroll=none"};
    char *dw[3], *pw[3];
    for (int i = 0; i < 3; i++) {
        sepconv_source source;
        sepconv_error error;
        ck_assert_int_eq(generate_for(spec, schedules[i], SEPCONV_TARGET_PORTABLE, false, 0,
                                      &source, &error), SEPCONV_OK);
        dw[i] = function_text(source.code, "_depthwise");
        pw[i] = function_text(source.code, "_pointwise");
        sepconv_source_free(&source);
    }
    ck_assert_str_eq(dw[0], dw[1]);
    ck_assert_str_ne(pw[0], pw[1]);
    ck_assert_str_eq(pw[0], pw[2]);
    ck_assert_str_ne(dw[0], dw[2]);
    /* unrolled, the pointwise row has no column loop left */
    ck_assert_ptr_nonnull(strstr(pw[0], "for (long ox"));
    ck_assert_ptr_null(strstr(pw[1], "for (long ox"));
    for (int i = 0; i < 3; i++) {
        free(dw[i]);
        free(pw[i]);
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
    tcase_add_test(grid, int8_grid_covers_every_op_and_quantization);
    tcase_add_loop_test(grid, int8_grid_run_is_bit_exact, 0, (int)INT8_RUN_COUNT);
    suite_add_tcase(suite, grid);
    TCase *window = tcase_create("window");
    tcase_set_timeout(window, 300);
    tcase_add_loop_test(window, sliding_window_kernels_match_reference, 0,
                        (int)(sizeof windows / sizeof windows[0]));
    tcase_add_test(window, sliding_window_loads_each_input_once);
    tcase_add_test(window, each_sep_stage_unrolls_as_its_knob_says);
    suite_add_tcase(suite, window);
    TCase *budget = tcase_create("budget");
    tcase_set_timeout(budget, 300);
    tcase_add_test(budget, estimate_sees_unrolled_rows_coming);
    tcase_add_test(budget, cc_source_has_its_own_budget);
    tcase_add_test(budget, budget_messages_read_as_sizes);
    tcase_add_test(budget, default_schedules_fit_the_cc_budget);
    tcase_add_test(budget, largest_default_compiles_with_cc);
    suite_add_tcase(suite, budget);
    return suite;
}
