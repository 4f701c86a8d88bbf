/*
 * test_kernel.c -- the runtime API: create, set weights, run; verify on
 * compile refusing a wrong kernel; threads and the CPUs they may use; many
 * kernels at once; one kernel run from several threads.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests.h"
#include "kernel/cpus.h" /* sepconv_cgroup_cpu_limit */

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
    sepconv_error error;
    ck_assert_msg(agrees_with_reference(kernel, seed, &error), "%s", error.message);
}

/* The best ISA of this CPU by an oracle of its own (the compiler's CPU
 * probe, not libcpuinfo), less what $SEPCONV_CPU_HIDE or valgrind's
 * SEPCONV_NO_AVX512=1 hide (their words, whole or "avx512"). */
static sepconv_target expected_auto(void)
{
#if defined(__x86_64__)
    const char *hide = getenv("SEPCONV_CPU_HIDE"), *no = getenv("SEPCONV_NO_AVX512");
    char words[512];
    snprintf(words, sizeof words, " %s ", hide ? hide : "");
    bool no512 = (no && no[0] == '1') || strstr(words, " avx512 ") || strstr(words, " avx512f ");
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && !no512)
        return SEPCONV_TARGET_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        !strstr(words, " avx2 ") && !strstr(words, " fma "))
        return SEPCONV_TARGET_AVX2;
    return SEPCONV_TARGET_PORTABLE;
#elif defined(__aarch64__)
    return SEPCONV_TARGET_NEON;
#else
    return SEPCONV_TARGET_PORTABLE;
#endif
}

START_TEST(tcc_kernel_end_to_end)
{
    sepconv_layer layer = parse_layer("op=sep df=9 m=6 n=10 dk=3 stride=2 bias=1 act=relu6");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    ck_assert_int_eq(options.backend, SEPCONV_BACKEND_TCC);
    ck_assert_int_eq(options.target, SEPCONV_TARGET_AUTO);
    options.target = SEPCONV_TARGET_PORTABLE;
    sepconv_kernel *kernel = create(&layer, &options);
    const sepconv_kernel_info *info = sepconv_kernel_get_info(kernel);
    ck_assert_int_eq(info->verified, 1);
    ck_assert_int_eq(info->target, SEPCONV_TARGET_PORTABLE);
    ck_assert_double_gt(info->compile_seconds, 0);
    ck_assert_double_lt(info->compile_seconds, 5.0);
    ck_assert_str_eq(info->schedule, "channel_block=16,tile_w=2,pixel_block=4,oc_block=32,"
                                     "pack=1,unroll=none,fuse=1,tile_h=2,pw_unroll=none");
    check_against_reference(kernel, 3);
    test_target_exercised(SEPCONV_TARGET_PORTABLE, "kernel: tcc portable");
    sepconv_kernel_free(kernel);
}
END_TEST

START_TEST(cc_kernel_with_a_simd_target)
{
    const sepconv_target isas[] = {SEPCONV_TARGET_AVX2, SEPCONV_TARGET_AVX512,
                                   SEPCONV_TARGET_NEON};
    for (int i = 0; i < 3; i++) {
        char what[64];
        snprintf(what, sizeof what, "kernel: cc %s", sepconv_target_name(isas[i]));
        if (!test_target_runs(isas[i], what))
            continue;
        sepconv_layer layer = parse_layer("op=sep df=10 m=16 n=24 dk=3 bias=1 act=relu");
        sepconv_kernel_options options = sepconv_kernel_defaults();
        options.backend = SEPCONV_BACKEND_CC;
        options.target = isas[i];
        options.cc.flags = native_flags("-O2");
        options.schedule = isas[i] == SEPCONV_TARGET_AVX512 ? "oc_block=32,channel_block=16"
                                                            : "oc_block=24,channel_block=8";
        if (isas[i] == SEPCONV_TARGET_NEON)
            options.schedule = "oc_block=24,channel_block=8";
        sepconv_kernel *kernel = create(&layer, &options);
        ck_assert_int_eq(sepconv_kernel_get_info(kernel)->target, isas[i]);
        check_against_reference(kernel, 4);
        sepconv_kernel_free(kernel);
    }
}
END_TEST

START_TEST(tcc_with_each_instruction_set)
{
    /* tcc compiles the layer's code; its rows go to libsepconv's
     * micro-kernels of the ISA asked for, or of auto's */
    const char *specs[] = {"op=sep df=9 m=40 n=70 dk=3 stride=2 bias=1 act=relu6",
                           "op=dw df=8 m=19 dk=5 dilation=2 act=relu",
                           "op=pw df=5 m=33 n=17 bias=1"};
    const sepconv_target targets[] = {SEPCONV_TARGET_AUTO, SEPCONV_TARGET_AVX2,
                                      SEPCONV_TARGET_AVX512, SEPCONV_TARGET_NEON};
    for (int t = 0; t < 4; t++) {
        char what[64];
        snprintf(what, sizeof what, "kernel: tcc %s", sepconv_target_name(targets[t]));
        if (!test_target_runs(targets[t], what))
            continue;
        for (int s = 0; s < 3; s++) {
            sepconv_layer layer = parse_layer(specs[s]);
            sepconv_kernel_options options = sepconv_kernel_defaults();
            options.target = targets[t];
            options.threads = 2;
            sepconv_kernel *kernel = create(&layer, &options);
            const sepconv_kernel_info *info = sepconv_kernel_get_info(kernel);
            ck_assert_int_eq(info->verified, 1);
            ck_assert_int_eq(info->backend, SEPCONV_BACKEND_TCC);
            ck_assert_int_eq(info->target, targets[t] == SEPCONV_TARGET_AUTO ? expected_auto()
                                                                             : targets[t]);
            check_against_reference(kernel, 8 + (uint64_t)s);
            sepconv_kernel_free(kernel);
        }
    }
}
END_TEST

START_TEST(auto_and_refusals_follow_the_cpu)
{
    /* a CPU without AVX-512, simulated: auto is avx2, avx512 is refused
     * naming what it needs and what the CPU has, for both backends */
    if (!test_target_runs(SEPCONV_TARGET_AVX2, "kernel: auto on a simulated AVX2-only CPU"))
        return;
    setenv("SEPCONV_CPU_HIDE", "avx512f avx512bw avx512cd avx512dq avx512vl", 1);
    sepconv_target resolved = SEPCONV_TARGET_PORTABLE;
    sepconv_error error;
    ck_assert_int_eq(sepconv_target_resolve(SEPCONV_TARGET_AUTO, &resolved, &error),
                     SEPCONV_OK);
    ck_assert_int_eq(resolved, SEPCONV_TARGET_AVX2);
    sepconv_layer layer = parse_layer("op=dw df=16 m=64 dk=3");
    for (int backend = 0; backend < SEPCONV_BACKEND_COUNT; backend++) {
        sepconv_kernel_options options = sepconv_kernel_defaults();
        options.backend = (sepconv_backend)backend;
        options.target = SEPCONV_TARGET_AVX512;
        options.cc.flags = "-O1";
        sepconv_kernel *kernel = NULL;
        ck_assert_int_eq(sepconv_kernel_create(&layer, &options, &kernel, &error),
                         SEPCONV_UNSUPPORTED);
        ck_assert_ptr_null(kernel);
        ck_assert_msg(strstr(error.message, "target avx512 needs avx512f, which this CPU "
                                            "lacks"), "%s", error.message);
        ck_assert_msg(strstr(error.message, " avx2 ") && strstr(error.message, " fma"),
                      "%s", error.message); /* the features it has */
        ck_assert_msg(!strstr(error.message, "avx512f avx"), "%s", error.message);
        ck_assert_msg(strstr(error.message, "SEPCONV_CPU_HIDE hides avx512f"), "%s",
                      error.message);
        /* auto makes an AVX2 kernel there */
        options.target = SEPCONV_TARGET_AUTO;
        options.cc.flags = "-O2 -mavx2 -mfma";
        kernel = create(&layer, &options);
        ck_assert_int_eq(sepconv_kernel_get_info(kernel)->target, SEPCONV_TARGET_AVX2);
        check_against_reference(kernel, 5);
        sepconv_kernel_free(kernel);
    }
    /* another architecture's ISA is refused too */
#if defined(__x86_64__)
    ck_assert_int_eq(sepconv_target_resolve(SEPCONV_TARGET_NEON, &resolved, &error),
                     SEPCONV_UNSUPPORTED);
    ck_assert_msg(strstr(error.message, "target neon needs neon") &&
                      strstr(error.message, "another architecture"), "%s", error.message);
#endif
    /* nothing left: auto is portable */
    setenv("SEPCONV_CPU_HIDE", "avx512 avx2 fma", 1);
    ck_assert_int_eq(sepconv_target_resolve(SEPCONV_TARGET_AUTO, &resolved, &error),
                     SEPCONV_OK);
    ck_assert_int_eq(resolved, SEPCONV_TARGET_PORTABLE);
    unsetenv("SEPCONV_CPU_HIDE");
    /* "native" is the old name of auto */
    sepconv_target parsed = SEPCONV_TARGET_PORTABLE;
    ck_assert_int_eq(sepconv_target_parse("native", &parsed, NULL), SEPCONV_OK);
    ck_assert_int_eq(parsed, SEPCONV_TARGET_AUTO);
    ck_assert_int_eq(sepconv_target_resolve((sepconv_target)99, &resolved, &error),
                     SEPCONV_INVALID);
}
END_TEST

START_TEST(refusals)
{
    sepconv_layer layer = parse_layer("op=dw df=6 m=4 dk=3");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    sepconv_kernel *kernel = NULL;
    sepconv_error error;
    options.backend = (sepconv_backend)7;
    ck_assert_int_eq(sepconv_kernel_create(&layer, &options, &kernel, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "backend 7 is not valid"));
    options.backend = SEPCONV_BACKEND_TCC;
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
                     SEPCONV_COMPILE);
    ck_assert_ptr_nonnull(strstr(error.message, "tcc: <string>:1: error:"));
    ck_assert_ptr_nonnull(strstr(error.message, "the source is saved as /"));
    unlink(path);
    rmdir(dir);
}
END_TEST

/* Fills a buffer with NaN bytes (0xff): a row a run leaves unwritten stays
 * NaN, and a read of scratch never written shows in the result. */
static void poison(void *buffer, size_t bytes)
{
    memset(buffer, 0xff, bytes);
}

START_TEST(results_do_not_depend_on_threads)
{
    /* rows that no thread count or tile divides evenly (13 x 2 batches, 29,
     * 9 rows at tile_h=4, unfused 11), so the runs cut them differently;
     * 0 is every usable CPU, more than those are capped to them */
    const char *specs[] = {"op=sep df=13 m=8 n=12 dk=3 batch=2 bias=1 act=relu",
                           "op=dw df=9 m=5 dk=5 stride=2", "op=conv df=7 m=3 n=6 dk=3",
                           "op=sep df=11 m=4 n=6 dk=3 stride=2",
                           "op=sep df=29 m=16 n=24 dk=3 bias=1 act=relu6",
                           "op=sep df=9 m=16 n=20 dk=3 act=relu6",
                           "op=pw df=3 m=8 n=8"};
    const char *schedules[] = {NULL, NULL, NULL, "fuse=0", "tile_h=2", "tile_h=4", NULL};
    for (int s = 0; s < 7; s++) {
        sepconv_layer layer = parse_layer(specs[s]);
        sepconv_buffers b;
        ck_assert_int_eq(sepconv_buffers_alloc(&layer, &b, NULL), SEPCONV_OK);
        sepconv_buffers_fill_random(&layer, &b, 11);
        sepconv_tensors t = sepconv_buffers_tensors(&b);
        size_t bytes = (size_t)layer.output_elements * sizeof(float);
        float *first = malloc(bytes), *other = malloc(bytes);
        const int counts[] = {1, 2, 3, 0, 7, 8};
        for (int c = 0; c < 6; c++) {
            sepconv_kernel_options options = sepconv_kernel_defaults();
            options.threads = counts[c];
            options.schedule = schedules[s];
            options.verify = 0;
            sepconv_kernel *kernel = create(&layer, &options);
            int usable = sepconv_usable_cpus();
            int expected = counts[c] == 0 || counts[c] > usable ? usable : counts[c];
            ck_assert_int_eq(sepconv_kernel_get_info(kernel)->threads, expected);
            ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &t, NULL), SEPCONV_OK);
            /* twice: which thread takes which chunk changes between runs */
            for (int run = 0; run < 2; run++) {
                float *into = c || run ? other : first;
                poison(into, bytes);
                ck_assert_int_eq(sepconv_kernel_run(kernel, b.input, into, NULL),
                                 SEPCONV_OK);
                if (into == other)
                    ck_assert_msg(memcmp(first, other, bytes) == 0,
                                  "%s: threads=%d, run %d differs from one thread's",
                                  specs[s], counts[c], run);
            }
            sepconv_kernel_free(kernel);
        }
        free(first);
        free(other);
        sepconv_buffers_free(&b);
    }
}
END_TEST

/* A layer's generated entry point, compiled, with its weights packed. */
typedef struct entry_point {
    sepconv_code *code;
    sepconv_kernel_fn run;
    sepconv_pack_fn pack;
    int64_t packed_elements;
    float *packed;
    void *scratch;
    size_t scratch_bytes;
    long rows;
} entry_point;

/* Generates and compiles `layer` under `schedule` for a backend and an
 * ISA, the way sepconv_kernel_create does, and packs the weights. */
static entry_point compile_entry(const sepconv_layer *layer, const char *schedule,
                                 sepconv_backend backend, sepconv_target target,
                                 const sepconv_tensors *t)
{
    entry_point e;
    memset(&e, 0, sizeof e);
    sepconv_schedule parsed;
    sepconv_error error;
    ck_assert_msg(sepconv_schedule_parse(schedule, layer, target, &parsed, &error) ==
                  SEPCONV_OK, "%s", error.message);
    sepconv_generate_options generate;
    memset(&generate, 0, sizeof generate);
    generate.for_cc = backend == SEPCONV_BACKEND_CC;
    sepconv_source source;
    ck_assert_msg(sepconv_generate(layer, &parsed, &generate, &source, &error) == SEPCONV_OK,
                  "%s", error.message);
    char pack_name[SEPCONV_SYMBOL_MAX + 8];
    snprintf(pack_name, sizeof pack_name, "%s_pack", source.symbol);
    const char *names[] = {source.symbol, pack_name};
    sepconv_status status;
    if (backend == SEPCONV_BACKEND_CC) {
        sepconv_cc_options cc;
        memset(&cc, 0, sizeof cc);
        cc.flags = native_flags("-O2");
        status = sepconv_cc_compile(source.code, source.code_length, &cc, &e.code, &error);
    } else
        status = sepconv_tcc_compile(source.code, source.code_length, target, names, 2,
                                     &e.code, &error);
    ck_assert_msg(status == SEPCONV_OK, "%s", error.message);
    e.run = (sepconv_kernel_fn)sepconv_code_symbol(e.code, source.symbol);
    e.pack = (sepconv_pack_fn)sepconv_code_symbol(e.code, pack_name);
    ck_assert(e.run && e.pack);
    e.packed_elements = source.packed_elements;
    e.packed = e.packed_elements ? malloc((size_t)e.packed_elements * sizeof(float)) : NULL;
    e.pack(t->weights, t->pw_weights, e.packed);
    e.scratch_bytes = (size_t)source.scratch_bytes;
    e.scratch = e.scratch_bytes ? malloc(e.scratch_bytes) : NULL;
    e.rows = (long)source.rows;
    ck_assert_int_eq(e.rows, layer->batch * layer->out_h);
    sepconv_source_free(&source);
    return e;
}

/* Runs rows [begin, end) of an entry point on freshly poisoned scratch. */
static void run_rows(const entry_point *e, const sepconv_tensors *t, const float *input,
                     float *output, long begin, long end)
{
    if (e->scratch)
        poison(e->scratch, e->scratch_bytes);
    e->run(input, t->weights, t->bias, t->pw_weights, t->pw_bias, e->packed, output,
           e->scratch, begin, end);
}

START_TEST(any_cut_of_the_rows_gives_the_same_bits)
{
    /* sepconv_kernel_run cuts the rows into chunks that depend on the
     * thread count (more chunks than threads, on fused tile boundaries
     * where it can) and hands them to whichever thread is free: the bits
     * must not depend on the cut.  Every backend and ISA this CPU runs,
     * fused tiles that do not divide the rows, unfused, strided, batched;
     * cuts of every row alone, of 3 rows, of tile_h - 1 and tile_h + 1
     * rows, and cuts at seeded random points. */
    const char *specs[] = {"op=sep df=13 m=16 n=24 dk=3 batch=2 bias=1 act=relu6",
                           "op=sep df=15 m=32 n=40 dk=3 stride=2 bias=1 act=relu",
                           "op=sep df=10 m=16 n=16 dk=5",
                           "op=dw df=11 m=24 dk=3 bias=1 act=relu6",
                           "op=pw df=7 m=20 n=36 bias=1"};
    const char *schedules[] = {"tile_h=4", "tile_h=8", "fuse=0", "", ""};
    const struct { sepconv_backend backend; sepconv_target target; const char *what; }
        builds[] = {{SEPCONV_BACKEND_TCC, SEPCONV_TARGET_PORTABLE, "tcc portable"},
                    {SEPCONV_BACKEND_TCC, SEPCONV_TARGET_AVX512, "tcc avx512"},
                    {SEPCONV_BACKEND_TCC, SEPCONV_TARGET_AVX2, "tcc avx2"},
                    {SEPCONV_BACKEND_TCC, SEPCONV_TARGET_NEON, "tcc neon"},
                    {SEPCONV_BACKEND_CC, SEPCONV_TARGET_PORTABLE, "cc portable"},
                    {SEPCONV_BACKEND_CC, SEPCONV_TARGET_AVX512, "cc avx512"},
                    {SEPCONV_BACKEND_CC, SEPCONV_TARGET_AVX2, "cc avx2"}};
    int ran = 0;
    for (size_t m = 0; m < sizeof builds / sizeof builds[0]; m++) {
        char what[64];
        snprintf(what, sizeof what, "kernel: row cuts, %s", builds[m].what);
        if (builds[m].target != SEPCONV_TARGET_PORTABLE &&
            !test_target_runs(builds[m].target, what))
            continue;
        for (int s = 0; s < 5; s++) {
            sepconv_layer layer = parse_layer(specs[s]);
            sepconv_buffers b;
            ck_assert_int_eq(sepconv_buffers_alloc(&layer, &b, NULL), SEPCONV_OK);
            sepconv_buffers_fill_random(&layer, &b, 21 + (uint64_t)s);
            sepconv_tensors t = sepconv_buffers_tensors(&b);
            entry_point e = compile_entry(&layer, schedules[s], builds[m].backend,
                                          builds[m].target, &t);
            size_t bytes = (size_t)layer.output_elements * sizeof(float);
            float *whole = malloc(bytes), *cut = malloc(bytes);
            poison(whole, bytes);
            run_rows(&e, &t, b.input, whole, 0, e.rows);
            /* the entry point is right: it agrees with the reference */
            sepconv_kernel_code code = {.run = e.run, .pack = e.pack,
                                        .packed_elements = e.packed_elements,
                                        .scratch_bytes = (int64_t)e.scratch_bytes};
            sepconv_verify_report report;
            sepconv_error error;
            ck_assert_msg(sepconv_verify_kernel(&layer, &code, 5, &report, &error) ==
                          SEPCONV_OK, "%s (%s): %s", specs[s], builds[m].what,
                          error.message);
            uint64_t state = 0x9e3779b97f4a7c15u + (uint64_t)(m * 8 + (size_t)s);
            for (int plan = 0; plan < 6; plan++) {
                poison(cut, bytes);
                long begin = 0;
                while (begin < e.rows) {
                    long step = plan == 0 ? 1 : plan == 1 ? 3 : plan == 2 ? 3 : plan == 3 ? 5
                                                : plan == 4 ? 9 : 0;
                    if (plan == 5) { /* random cuts, 1 to 6 rows */
                        state = state * 6364136223846793005u + 1442695040888963407u;
                        step = 1 + (long)((state >> 33) % 6);
                    }
                    long end = begin + step < e.rows ? begin + step : e.rows;
                    run_rows(&e, &t, b.input, cut, begin, end);
                    begin = end;
                }
                ck_assert_msg(memcmp(whole, cut, bytes) == 0,
                              "%s (%s), cut plan %d: the bits differ from one whole run",
                              specs[s], builds[m].what, plan);
            }
            /* an empty range and one past the rows write nothing */
            poison(cut, bytes);
            run_rows(&e, &t, b.input, cut, 3, 3);
            run_rows(&e, &t, b.input, cut, e.rows, e.rows + 4);
            unsigned char *raw = (unsigned char *)cut;
            for (size_t i = 0; i < bytes; i++)
                ck_assert_msg(raw[i] == 0xff, "%s: an empty range wrote byte %zu",
                              specs[s], i);
            free(whole);
            free(cut);
            free(e.packed);
            free(e.scratch);
            sepconv_code_free(e.code);
            sepconv_buffers_free(&b);
            ran++;
        }
    }
    ck_assert_int_ge(ran, 10); /* tcc and cc portable at least */
}
END_TEST

START_TEST(pixel_tiles_give_the_unfused_bits)
{
    /* fuse=2 on micro-kernel code: each row in tiles of tile_h pointwise
     * register tiles of pixels (the ISA's: 7 for avx512, 6 for avx2 and
     * neon, capped at the row), the depthwise output of a tile in L1.
     * Rows that no tile divides, channels that no vector divides, strides,
     * batches, bias and activations: the bits are the unfused kernel's. */
    const char *specs[] = {"op=sep df=13 m=16 n=24 dk=3 bias=1 act=relu6",
                           "op=sep df=30 m=20 n=40 dk=3 stride=2 bias=1 act=relu",
                           "op=sep df=29 m=24 n=20 dk=5 batch=2"};
    const struct { sepconv_target target; int pixels; const char *what; } isas[] = {
        {SEPCONV_TARGET_AVX512, 7, "kernel: pixel tiles, tcc avx512"},
        {SEPCONV_TARGET_AVX2, 6, "kernel: pixel tiles, tcc avx2"},
        {SEPCONV_TARGET_NEON, 6, "kernel: pixel tiles, tcc neon"}};
    const int tile_h[] = {1, 2, 4, 8};
    int ran = 0;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (!test_target_runs(isas[i].target, isas[i].what))
            continue;
        for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
            sepconv_layer layer = parse_layer(specs[s]);
            sepconv_buffers b;
            ck_assert_int_eq(sepconv_buffers_alloc(&layer, &b, NULL), SEPCONV_OK);
            sepconv_buffers_fill_random(&layer, &b, 31 + (uint64_t)s);
            sepconv_tensors t = sepconv_buffers_tensors(&b);
            size_t bytes = (size_t)layer.output_elements * sizeof(float);
            float *unfused = malloc(bytes), *tiled = malloc(bytes);
            sepconv_kernel_options options = sepconv_kernel_defaults();
            options.target = isas[i].target;
            options.schedule = "fuse=0";
            sepconv_kernel *kernel = create(&layer, &options);
            ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &t, NULL), SEPCONV_OK);
            poison(unfused, bytes);
            ck_assert_int_eq(sepconv_kernel_run(kernel, b.input, unfused, NULL), SEPCONV_OK);
            sepconv_kernel_free(kernel);
            for (int h = 0; h < 4; h++) {
                char schedule[32];
                snprintf(schedule, sizeof schedule, "fuse=2,tile_h=%d", tile_h[h]);
                /* the source is the pixel-tile form, tiles of the expected width */
                sepconv_schedule parsed;
                sepconv_error error;
                ck_assert_msg(sepconv_schedule_parse(schedule, &layer, isas[i].target, &parsed,
                                                     &error) == SEPCONV_OK, "%s", error.message);
                sepconv_generate_options generate;
                memset(&generate, 0, sizeof generate);
                sepconv_source source;
                ck_assert_msg(sepconv_generate(&layer, &parsed, &generate, &source, &error) ==
                              SEPCONV_OK, "%s", error.message);
                int64_t pixels = (int64_t)tile_h[h] * isas[i].pixels;
                char form[64];
                snprintf(form, sizeof form, "(fused, %lld-pixel tiles)",
                         (long long)(pixels < layer.out_w ? pixels : layer.out_w));
                ck_assert_msg(strstr(source.code, form) != NULL, "%s %s: no '%s' in the source",
                              specs[s], schedule, form);
                sepconv_source_free(&source);
                /* verified on creation, and the same bits as unfused, on
                 * one thread and two */
                options.schedule = schedule;
                for (int threads = 1; threads <= 2; threads++) {
                    options.threads = threads;
                    kernel = create(&layer, &options);
                    ck_assert_int_eq(sepconv_kernel_get_info(kernel)->verified, 1);
                    ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &t, NULL), SEPCONV_OK);
                    poison(tiled, bytes);
                    ck_assert_int_eq(sepconv_kernel_run(kernel, b.input, tiled, NULL),
                                     SEPCONV_OK);
                    ck_assert_msg(memcmp(unfused, tiled, bytes) == 0,
                                  "%s %s (%s), %d threads: the bits differ from fuse=0's",
                                  specs[s], schedule, isas[i].what, threads);
                    sepconv_kernel_free(kernel);
                    ran++;
                }
                options.threads = 1;
            }
            free(unfused);
            free(tiled);
            sepconv_buffers_free(&b);
        }
    }
    if (ran == 0)
        fprintf(stderr, "SKIPPED: kernel: pixel tiles: this CPU runs no micro-kernel ISA\n");
}
END_TEST

/* A thread that creates, runs and checks kernels against the reference. */
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
        options.schedule = i % 2 ? "fuse=0" : NULL;
        bool ok = sepconv_layer_parse(spec, &layer, NULL) == SEPCONV_OK &&
                  sepconv_kernel_create(&layer, &options, &kernel, NULL) == SEPCONV_OK &&
                  agrees_with_reference(kernel, (uint64_t)(index * 10 + i), NULL);
        sepconv_kernel_free(kernel);
        if (!ok)
            return (void *)1;
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

/* How many runs each thread makes of the shared kernel. */
#define SHARED_RUNS 40

/* One thread's part in running a shared kernel: its own input, the output
 * a lone single-threaded run gave for it, and its own workspace. */
typedef struct shared_run {
    sepconv_kernel *kernel;
    float *input, *expected, *output;
    void *workspace;
    size_t workspace_bytes, output_bytes;
    long failures;
} shared_run;

/* Runs one shared kernel in a thread's own workspace, many times, and
 * compares every output with the lone run's. */
static void *run_shared(void *argument)
{
    shared_run *r = argument;
    for (int i = 0; i < SHARED_RUNS; i++) {
        memset(r->output, 0xff, r->output_bytes); /* NaN: a skipped output shows */
        r->failures += sepconv_kernel_run_with_workspace(r->kernel, r->input, r->output,
                                                         r->workspace, r->workspace_bytes,
                                                         NULL) != SEPCONV_OK ||
                       memcmp(r->output, r->expected, r->output_bytes) != 0;
    }
    return NULL;
}

/* Fills `count` floats with seeded values in [-1, 1). */
static void fill_random(float *values, int64_t count, uint64_t seed)
{
    for (int64_t i = 0; i < count; i++)
        values[i] = (float)((double)(sepconv_random_next(&seed) >> 40) * 0x1p-23 - 1.0);
}

START_TEST(one_kernel_runs_from_many_threads)
{
    /* unfused and fused: both use scratch, which each thread's workspace
     * holds; with two threads the callers take turns on the pool */
    const char *schedules[] = {"fuse=0", "fuse=1,tile_h=2"};
    const int counts[] = {1, 2};
    for (int k = 0; k < 4; k++) {
        sepconv_layer layer = parse_layer("op=sep df=12 m=8 n=8 dk=3 bias=1 act=relu");
        sepconv_kernel_options options = sepconv_kernel_defaults();
        options.schedule = schedules[k % 2];
        options.threads = counts[k / 2];
        sepconv_kernel *kernel = create(&layer, &options);
        ck_assert_int_gt(sepconv_kernel_workspace_bytes(kernel), 0);
        sepconv_buffers b;
        ck_assert_int_eq(sepconv_buffers_alloc(&layer, &b, NULL), SEPCONV_OK);
        sepconv_buffers_fill_random(&layer, &b, 1);
        sepconv_tensors t = sepconv_buffers_tensors(&b);
        ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &t, NULL), SEPCONV_OK);
        shared_run runs[4];
        size_t in_bytes = (size_t)layer.input_elements * sizeof(float);
        size_t out_bytes = (size_t)layer.output_elements * sizeof(float);
        size_t workspace = sepconv_kernel_workspace_bytes(kernel);
        for (int i = 0; i < 4; i++) {
            shared_run *r = &runs[i];
            *r = (shared_run){.kernel = kernel, .input = malloc(in_bytes),
                              .expected = malloc(out_bytes), .output = malloc(out_bytes),
                              .workspace = aligned_alloc(64, (workspace + 63) / 64 * 64),
                              .workspace_bytes = workspace, .output_bytes = out_bytes};
            /* each thread its own random input: a race on scratch mixes them */
            fill_random(r->input, layer.input_elements, 100 + (uint64_t)i);
            ck_assert_int_eq(sepconv_kernel_run(kernel, r->input, r->expected, NULL),
                             SEPCONV_OK);
        }
        ck_assert_msg(memcmp(runs[0].expected, runs[1].expected, out_bytes) != 0,
                      "different inputs should give different outputs");
        pthread_t threads[4];
        for (int i = 0; i < 4; i++)
            ck_assert_int_eq(pthread_create(&threads[i], NULL, run_shared, &runs[i]), 0);
        long failures = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(threads[i], NULL);
            failures += runs[i].failures;
            free(runs[i].input);
            free(runs[i].expected);
            free(runs[i].output);
            free(runs[i].workspace);
        }
        ck_assert_msg(failures == 0, "%s, threads=%d: %ld of %d runs failed or differed",
                      schedules[k % 2], counts[k / 2], failures, 4 * SHARED_RUNS);
        sepconv_buffers_free(&b);
        sepconv_kernel_free(kernel);
    }
}
END_TEST

/* The longest a test waits for two runs of one kernel to overlap. */
#define OVERLAP_WAIT_SECONDS 60.0

/* A thread running a kernel with its own workspace until told to stop. */
typedef struct busy_run {
    sepconv_kernel *kernel;
    const float *input, *expected;
    float *output;
    size_t output_bytes;
    atomic_int stop;
    long runs, failures;
} busy_run;

/* Runs the kernel (sepconv_kernel_run) until stopped; a refusal is not a
 * failure here, a wrong output is. */
static void *run_until_stopped(void *argument)
{
    busy_run *r = argument;
    while (!atomic_load(&r->stop)) {
        sepconv_status status = sepconv_kernel_run(r->kernel, r->input, r->output, NULL);
        if (status == SEPCONV_OK) {
            r->runs++;
            r->failures += memcmp(r->output, r->expected, r->output_bytes) != 0;
        } else if (status != SEPCONV_INVALID) {
            r->failures++;
        }
    }
    return NULL;
}

START_TEST(a_second_run_at_once_is_refused_not_raced)
{
    /* the kernel's own workspace serves one run at a time: while another
     * thread runs it, sepconv_kernel_run says so instead of sharing the
     * scratch; the runs that do go ahead are all right */
    if (under_valgrind()) {
        /* valgrind runs one thread at a time and never switched inside a
         * run in 60 s: no overlap to provoke */
        fprintf(stderr, "SKIP kernel/a_second_run_at_once_is_refused_not_raced: "
                        "valgrind serialises threads, so two runs never overlap\n");
        return;
    }
    sepconv_layer layer = parse_layer("op=sep df=24 m=16 n=16 dk=3 bias=1");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.schedule = "fuse=0";
    options.verify = 0;
    sepconv_kernel *kernel = create(&layer, &options);
    sepconv_buffers b;
    ck_assert_int_eq(sepconv_buffers_alloc(&layer, &b, NULL), SEPCONV_OK);
    sepconv_buffers_fill_random(&layer, &b, 2);
    sepconv_tensors t = sepconv_buffers_tensors(&b);
    ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &t, NULL), SEPCONV_OK);
    size_t bytes = (size_t)layer.output_elements * sizeof(float);
    float *expected = malloc(bytes), *mine = malloc(bytes);
    ck_assert_int_eq(sepconv_kernel_run(kernel, b.input, expected, NULL), SEPCONV_OK);
    busy_run busy = {.kernel = kernel, .input = b.input, .expected = expected,
                     .output = b.output, .output_bytes = bytes};
    atomic_init(&busy.stop, 0);
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, run_until_stopped, &busy), 0);
    long refused = 0, wrong = 0;
    sepconv_error error;
    double deadline = sepconv_seconds() + OVERLAP_WAIT_SECONDS;
    while (refused == 0 && sepconv_seconds() < deadline) {
        sepconv_status status = sepconv_kernel_run(kernel, b.input, mine, &error);
        if (status == SEPCONV_INVALID) {
            refused++;
            ck_assert_ptr_nonnull(strstr(error.message, "already running in another thread"));
        } else {
            wrong += status != SEPCONV_OK || memcmp(mine, expected, bytes) != 0;
        }
    }
    atomic_store(&busy.stop, 1);
    pthread_join(thread, NULL);
    ck_assert_msg(refused > 0, "no run overlapped another in %.0f s", OVERLAP_WAIT_SECONDS);
    ck_assert_int_eq(wrong, 0);
    ck_assert_int_eq(busy.failures, 0);
    /* once the other thread is done, the kernel runs again */
    ck_assert_int_eq(sepconv_kernel_run(kernel, b.input, mine, NULL), SEPCONV_OK);
    ck_assert_int_eq(memcmp(mine, expected, bytes), 0);
    free(expected);
    free(mine);
    sepconv_buffers_free(&b);
    sepconv_kernel_free(kernel);
}
END_TEST

START_TEST(workspace_size_and_refusals)
{
    /* unfused, the scratch holds the whole intermediate (rows x out_w x
     * mid_c floats), one cache-line-rounded slice per thread */
    sepconv_layer layer = parse_layer("op=sep df=9 m=6 n=10 dk=3");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.schedule = "fuse=0";
    options.threads = 2;
    sepconv_kernel *kernel = create(&layer, &options);
    size_t slice = (9 * 9 * 6 * 4 + 63) / 64 * 64; /* 1944 bytes -> 1984 */
    int threads = sepconv_kernel_get_info(kernel)->threads;
    ck_assert_uint_eq(sepconv_kernel_workspace_bytes(kernel), (size_t)threads * slice);
    sepconv_buffers b;
    ck_assert_int_eq(sepconv_buffers_alloc(&layer, &b, NULL), SEPCONV_OK);
    sepconv_buffers_fill_random(&layer, &b, 6);
    sepconv_tensors t = sepconv_buffers_tensors(&b);
    ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &t, NULL), SEPCONV_OK);
    size_t bytes = sepconv_kernel_workspace_bytes(kernel);
    char *workspace = aligned_alloc(64, bytes + 64);
    sepconv_error error;
    ck_assert_int_eq(sepconv_kernel_run_with_workspace(kernel, b.input, b.output, workspace,
                                                       bytes - 1, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "the kernel needs"));
    ck_assert_int_eq(sepconv_kernel_run_with_workspace(kernel, b.input, b.output, NULL,
                                                       bytes, &error), SEPCONV_INVALID);
    ck_assert_int_eq(sepconv_kernel_run_with_workspace(kernel, b.input, b.output,
                                                       workspace + 1, bytes, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "is not aligned"));
    /* the caller's workspace gives what the kernel's own gives, even when
     * it starts full of garbage: the kernel writes scratch before reading */
    size_t out_bytes = (size_t)layer.output_elements * sizeof(float);
    float *mine = malloc(out_bytes);
    memset(workspace, 0xff, bytes + 64);
    ck_assert_int_eq(sepconv_kernel_run_with_workspace(kernel, b.input, mine, workspace + 64,
                                                       bytes, &error), SEPCONV_OK);
    ck_assert_int_eq(sepconv_kernel_run(kernel, b.input, b.output, NULL), SEPCONV_OK);
    ck_assert_int_eq(memcmp(mine, b.output, out_bytes), 0);
    free(mine);
    free(workspace);
    sepconv_buffers_free(&b);
    sepconv_kernel_free(kernel);
    /* a depthwise kernel needs none: NULL will do */
    layer = parse_layer("op=dw df=6 m=4 dk=3");
    kernel = create(&layer, NULL);
    ck_assert_uint_eq(sepconv_kernel_workspace_bytes(kernel), 0);
    ck_assert_int_eq(sepconv_buffers_alloc(&layer, &b, NULL), SEPCONV_OK);
    t = sepconv_buffers_tensors(&b);
    ck_assert_int_eq(sepconv_kernel_set_weights(kernel, &t, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_kernel_run_with_workspace(kernel, b.input, b.output, NULL, 0,
                                                       &error), SEPCONV_OK);
    sepconv_buffers_free(&b);
    sepconv_kernel_free(kernel);
}
END_TEST

/* The CPUs in this thread's affinity mask, counted here with CPU_COUNT. */
static int affinity_count(void)
{
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    return CPU_COUNT(&set);
}

START_TEST(usable_cpus_follow_the_affinity)
{
    int affinity = affinity_count();
    int quota = sepconv_cgroup_cpu_limit("");
    int expected = quota > 0 && quota < affinity ? quota : affinity;
    ck_assert_int_eq(sepconv_usable_cpus(), expected);
    if (quota == 0) /* no cgroup quota here: exactly the affinity */
        ck_assert_int_eq(sepconv_usable_cpus(), affinity);
}
END_TEST

/* Narrows the calling thread to one CPU and reports what sepconv sees:
 * the usable CPUs, and the threads of kernels asked for 0 and 8. */
static void *on_one_cpu(void *argument)
{
    int *seen = argument;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return (void *)1;
    int first = 0;
    while (!CPU_ISSET(first, &set))
        first++;
    CPU_ZERO(&set);
    CPU_SET(first, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        return (void *)1;
    seen[0] = sepconv_usable_cpus();
    sepconv_layer layer;
    if (sepconv_layer_parse("op=dw df=6 m=4 dk=3", &layer, NULL) != SEPCONV_OK)
        return (void *)1;
    for (int i = 0; i < 2; i++) {
        sepconv_kernel_options options = sepconv_kernel_defaults();
        options.threads = i == 0 ? 0 : 8;
        sepconv_kernel *kernel = NULL;
        if (sepconv_kernel_create(&layer, &options, &kernel, NULL) != SEPCONV_OK)
            return (void *)1;
        seen[1 + i] = sepconv_kernel_get_info(kernel)->threads;
        sepconv_kernel_free(kernel);
    }
    return NULL;
}

START_TEST(a_narrowed_affinity_narrows_the_threads)
{
    int seen[3] = {-1, -1, -1};
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, on_one_cpu, seen), 0);
    void *result;
    pthread_join(thread, &result);
    ck_assert_ptr_null(result);
    ck_assert_int_eq(seen[0], 1);
    ck_assert_int_eq(seen[1], 1); /* threads=0: every usable CPU, one */
    ck_assert_int_eq(seen[2], 1); /* threads=8: capped to the one CPU */
}
END_TEST

/* Writes `text` to root/relative, making the directories on the way. */
static void write_fake(const char *root, const char *relative, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, relative);
    for (char *slash = strchr(path + strlen(root) + 1, '/'); slash;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0700);
        *slash = '/';
    }
    FILE *file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    fputs(text, file);
    fclose(file);
}

/* The CPU limit of a fake tree made by `setup`, the tree removed after. */
static int fake_limit(void (*setup)(const char *root))
{
    char root[64];
    snprintf(root, sizeof root, "/tmp/sepconv-cgroup-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    setup(root);
    int limit = sepconv_cgroup_cpu_limit(root);
    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", root);
    ck_assert_int_eq(system(command), 0);
    return limit;
}

/* cgroup v2: 1.5 CPUs in the leaf (rounded up to 2), none above. */
static void v2_quota(const char *root)
{
    write_fake(root, "proc/self/cgroup", "0::/job/step\n");
    write_fake(root, "sys/fs/cgroup/job/cpu.max", "max 100000\n");
    write_fake(root, "sys/fs/cgroup/job/step/cpu.max", "150000 100000\n");
}

/* cgroup v2: an ancestor allows 1 CPU, the leaf 3: the ancestor wins. */
static void v2_ancestor(const char *root)
{
    write_fake(root, "proc/self/cgroup", "0::/job/step\n");
    write_fake(root, "sys/fs/cgroup/job/cpu.max", "100000 100000\n");
    write_fake(root, "sys/fs/cgroup/job/step/cpu.max", "300000 100000\n");
}

/* cgroup v2 without a limit. */
static void v2_unlimited(const char *root)
{
    write_fake(root, "proc/self/cgroup", "0::/job\n");
    write_fake(root, "sys/fs/cgroup/job/cpu.max", "max 100000\n");
}

/* cgroup v1 (hybrid, as Docker shows it: the path is the host's, the
 * mount's root is the container's own cgroup): 250000/100000 -> 3. */
static void v1_container(const char *root)
{
    write_fake(root, "proc/self/cgroup",
               "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n");
    write_fake(root, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "250000\n");
    write_fake(root, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
}

/* cgroup v1 with the quota -1 (none), and no cgroup file at all. */
static void v1_unlimited(const char *root)
{
    write_fake(root, "proc/self/cgroup", "2:cpuacct,cpu:/\n");
    write_fake(root, "sys/fs/cgroup/cpuacct,cpu/cpu.cfs_quota_us", "-1\n");
    write_fake(root, "sys/fs/cgroup/cpuacct,cpu/cpu.cfs_period_us", "100000\n");
}

/* No /proc/self/cgroup under the root. */
static void no_cgroup(const char *root)
{
    (void)root;
}

START_TEST(cgroup_quotas_limit_the_cpus)
{
    ck_assert_int_eq(fake_limit(v2_quota), 2);
    ck_assert_int_eq(fake_limit(v2_ancestor), 1);
    ck_assert_int_eq(fake_limit(v2_unlimited), 0);
    ck_assert_int_eq(fake_limit(v1_container), 3);
    ck_assert_int_eq(fake_limit(v1_unlimited), 0);
    ck_assert_int_eq(fake_limit(no_cgroup), 0);
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
    tcase_add_test(c, tcc_with_each_instruction_set);
    tcase_add_test(c, auto_and_refusals_follow_the_cpu);
    tcase_add_test(c, refusals);
    tcase_add_test(c, verify_refuses_a_wrong_kernel);
    tcase_add_test(c, verify_names_an_out_of_bounds_write);
    tcase_add_test(c, a_template_emitting_bad_c_names_the_saved_source);
    tcase_add_test(c, results_do_not_depend_on_threads);
    tcase_add_test(c, any_cut_of_the_rows_gives_the_same_bits);
    tcase_add_test(c, pixel_tiles_give_the_unfused_bits);
    tcase_add_test(c, threads_create_and_run_kernels_at_once);
    tcase_add_test(c, one_kernel_runs_from_many_threads);
    tcase_add_test(c, a_second_run_at_once_is_refused_not_raced);
    tcase_add_test(c, workspace_size_and_refusals);
    tcase_add_test(c, usable_cpus_follow_the_affinity);
    tcase_add_test(c, a_narrowed_affinity_narrows_the_threads);
    tcase_add_test(c, cgroup_quotas_limit_the_cpus);
    tcase_add_test(c, a_thousand_create_free_cycles);
    suite_add_tcase(suite, c);
    return suite;
}
