/*
 * test_tune.c -- the schedule space, sweeps and shards, the tuning log
 * (round trip, corrupt lines, selection by environment), a wrong kernel
 * never chosen, and the "auto" schedule.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"

/* The space of every op and target, written out by hand from the knob
 * ranges the README and `sepconv schedules` document:
 *   channel_block: portable and neon 5 values (4 8 16 32 64), avx2 4
 *                  (8 16 32 64), avx512 3 (16 32 64)
 *   tile_w 4 (1 2 4 8), pixel_block 6 (1 2 4 6 7 8), oc_block 4 on every
 *   target but neon's 5 (8 12 16 24 32), pack 2, unroll 3 (none row full),
 *   fuse 3 (0 1 2), tile_h 4 (1 2 4 8), pw_unroll 3 (none row full)
 * conv and dw: channel_block x tile_w x unroll = cb x 4 x 3;
 * pw: pixel_block x oc_block x pack x unroll = 6 x 4 x 2 x 3 = 144;
 * sep: cb x 4 x 6 x 4 x 2 x 3 x (fuse 3 x tile_h 4) x pw_unroll 3
 * (= cb x 20736), of which fuse=0 keeps only tile_h's default:
 * valid = cb x 4 x 6 x 4 x 2 x 3 x (1 + 4 + 4) x 3 = cb x 15552. */
static const struct {
    sepconv_op op;
    sepconv_target target;
    int64_t product, size;
} spaces[] = {
    {SEPCONV_OP_CONV, SEPCONV_TARGET_PORTABLE, 60, 60},
    {SEPCONV_OP_DW, SEPCONV_TARGET_PORTABLE, 60, 60},
    {SEPCONV_OP_PW, SEPCONV_TARGET_PORTABLE, 144, 144},
    {SEPCONV_OP_SEP, SEPCONV_TARGET_PORTABLE, 103680, 77760},
    {SEPCONV_OP_CONV, SEPCONV_TARGET_AVX2, 48, 48},
    {SEPCONV_OP_DW, SEPCONV_TARGET_AVX2, 48, 48},
    {SEPCONV_OP_PW, SEPCONV_TARGET_AVX2, 144, 144},
    {SEPCONV_OP_SEP, SEPCONV_TARGET_AVX2, 82944, 62208},
    {SEPCONV_OP_CONV, SEPCONV_TARGET_AVX512, 36, 36},
    {SEPCONV_OP_DW, SEPCONV_TARGET_AVX512, 36, 36},
    {SEPCONV_OP_PW, SEPCONV_TARGET_AVX512, 144, 144},
    {SEPCONV_OP_SEP, SEPCONV_TARGET_AVX512, 62208, 46656},
    /* neon: pw 6 x 5 x 2 x 3; sep 5 x 4 x 6 x 5 x 2 x 3 x 3 x 4 x 3, valid x (1 + 4 + 4) x 3 */
    {SEPCONV_OP_CONV, SEPCONV_TARGET_NEON, 60, 60},
    {SEPCONV_OP_DW, SEPCONV_TARGET_NEON, 60, 60},
    {SEPCONV_OP_PW, SEPCONV_TARGET_NEON, 180, 180},
    {SEPCONV_OP_SEP, SEPCONV_TARGET_NEON, 129600, 97200},
};

START_TEST(space_size_is_the_product_less_the_invalid)
{
    for (size_t i = 0; i < sizeof spaces / sizeof spaces[0]; i++) {
        ck_assert_msg(sepconv_space_product(spaces[i].op, spaces[i].target) ==
                          spaces[i].product, "product of op %d target %d", (int)spaces[i].op,
                      (int)spaces[i].target);
        ck_assert_msg(sepconv_space_size(spaces[i].op, spaces[i].target) == spaces[i].size,
                      "size of op %d target %d", (int)spaces[i].op, (int)spaces[i].target);
    }
    /* index 0 is the first value of every knob; the last knob varies fastest */
    sepconv_schedule schedule;
    char text[256];
    ck_assert_int_eq(sepconv_space_schedule(SEPCONV_OP_DW, SEPCONV_TARGET_PORTABLE, 0,
                                            &schedule, NULL), SEPCONV_OK);
    sepconv_schedule_format(&schedule, text, sizeof text, NULL);
    ck_assert_str_eq(text, "channel_block=4,tile_w=1,unroll=none");
    /* 59 = ((4 x 4) + 3) x 3 + 2: the last value of each */
    ck_assert_int_eq(sepconv_space_schedule(SEPCONV_OP_DW, SEPCONV_TARGET_PORTABLE, 59,
                                            &schedule, NULL), SEPCONV_OK);
    sepconv_schedule_format(&schedule, text, sizeof text, NULL);
    ck_assert_str_eq(text, "channel_block=64,tile_w=8,unroll=full");
    ck_assert_int_eq(sepconv_space_schedule(SEPCONV_OP_DW, SEPCONV_TARGET_PORTABLE, 60,
                                            &schedule, NULL), SEPCONV_INVALID);
}
END_TEST

/* The candidates of a sweep as formatted schedules. */
static char **candidate_texts(sepconv_op op, sepconv_strategy strategy, uint64_t seed,
                              int64_t trials, int shard, int shards, size_t *count)
{
    sepconv_schedule *list = NULL;
    ck_assert_int_eq(sepconv_space_candidates(op, SEPCONV_TARGET_PORTABLE, strategy, seed,
                                              trials, shard, shards, &list, count, NULL),
                     SEPCONV_OK);
    char **texts = calloc(*count + 1, sizeof *texts);
    for (size_t i = 0; i < *count; i++) {
        texts[i] = malloc(256);
        sepconv_schedule_format(&list[i], texts[i], 256, NULL);
    }
    free(list);
    return texts;
}

static void free_texts(char **texts, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(texts[i]);
    free(texts);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(shards_partition_the_sweep)
{
    for (int strategy = 0; strategy < 2; strategy++) {
        size_t total = 0;
        char **all = candidate_texts(SEPCONV_OP_DW, (sepconv_strategy)strategy, 9, 0, 0, 1,
                                     &total);
        ck_assert_uint_eq(total, 60); /* dw, portable: 5 x 4 x 3 */
        const int counts[] = {2, 3, 7};
        for (int c = 0; c < 3; c++) {
            int shards = counts[c];
            char **joined = calloc(total + 1, sizeof *joined);
            size_t used = 0;
            for (int s = 0; s < shards; s++) {
                size_t count = 0;
                char **part = candidate_texts(SEPCONV_OP_DW, (sepconv_strategy)strategy, 9, 0,
                                              s, shards, &count);
                ck_assert_uint_le(count, total / (size_t)shards + 1);
                ck_assert_uint_ge(count, total / (size_t)shards);
                for (size_t i = 0; i < count; i++) {
                    ck_assert_uint_lt(used, total);
                    joined[used++] = strdup(part[i]);
                }
                free_texts(part, count);
            }
            ck_assert_uint_eq(used, total); /* nothing missing, nothing twice... */
            char **sorted_all = malloc(total * sizeof *sorted_all);
            memcpy(sorted_all, all, total * sizeof *all);
            qsort(sorted_all, total, sizeof *sorted_all, compare_strings);
            qsort(joined, used, sizeof *joined, compare_strings);
            for (size_t i = 0; i < total; i++) /* ...and the same set */
                ck_assert_str_eq(joined[i], sorted_all[i]);
            free(sorted_all);
            free_texts(joined, used);
        }
        free_texts(all, total);
    }
    sepconv_schedule *list = NULL;
    size_t count = 0;
    sepconv_error error;
    ck_assert_int_eq(sepconv_space_candidates(SEPCONV_OP_DW, SEPCONV_TARGET_PORTABLE,
                                              SEPCONV_STRATEGY_GRID, 1, 0, 2, 2, &list,
                                              &count, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "shard 2/2 is not valid"));
}
END_TEST

START_TEST(random_sweeps_are_seeded)
{
    size_t a_count, b_count, c_count, grid_count;
    char **a = candidate_texts(SEPCONV_OP_SEP, SEPCONV_STRATEGY_RANDOM, 42, 30, 0, 1, &a_count);
    char **b = candidate_texts(SEPCONV_OP_SEP, SEPCONV_STRATEGY_RANDOM, 42, 30, 0, 1, &b_count);
    char **c = candidate_texts(SEPCONV_OP_SEP, SEPCONV_STRATEGY_RANDOM, 43, 30, 0, 1, &c_count);
    char **grid = candidate_texts(SEPCONV_OP_SEP, SEPCONV_STRATEGY_GRID, 42, 30, 0, 1,
                                  &grid_count);
    ck_assert_uint_eq(a_count, 30);
    int differences = 0, grid_differences = 0;
    for (size_t i = 0; i < 30; i++) {
        ck_assert_str_eq(a[i], b[i]);
        differences += strcmp(a[i], c[i]) != 0;
        grid_differences += strcmp(a[i], grid[i]) != 0;
    }
    ck_assert_int_gt(differences, 20);
    ck_assert_int_gt(grid_differences, 20);
    free_texts(a, a_count);
    free_texts(b, b_count);
    free_texts(c, c_count);
    free_texts(grid, grid_count);
}
END_TEST

/* A record in a given environment. */
static sepconv_tune_record make_record(const char *spec, const char *schedule, double ratio,
                                       const char *cpu)
{
    sepconv_tune_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.spec, sizeof r.spec, "%s", spec);
    snprintf(r.op, sizeof r.op, "sep");
    snprintf(r.schedule, sizeof r.schedule, "%s", schedule);
    snprintf(r.status, sizeof r.status, "ok");
    snprintf(r.timestamp, sizeof r.timestamp, "2026-11-25T00:00:00Z");
    snprintf(r.environment.version, sizeof r.environment.version, "%s", SEPCONV_VERSION);
    snprintf(r.environment.backend, sizeof r.environment.backend, "cc");
    snprintf(r.environment.target, sizeof r.environment.target, "portable");
    snprintf(r.environment.compiler, sizeof r.environment.compiler, "gcc (Debian) 12.2.0");
    snprintf(r.environment.flags, sizeof r.environment.flags, "-O3 -march=native");
    snprintf(r.environment.cpu, sizeof r.environment.cpu, "%s", cpu);
    snprintf(r.environment.features, sizeof r.environment.features, "avx2 fma");
    r.environment.threads = 1;
    r.median_ms = 2.5 * ratio;
    r.baseline_ms = 2.5;
    r.ratio = ratio;
    r.spread = 0.01;
    return r;
}

/* A fresh log path. */
static void fresh_log(char *path, size_t capacity)
{
    snprintf(path, capacity, "/tmp/sepconv-log-XXXXXX");
    close(mkstemp(path));
    unlink(path);
}

START_TEST(records_round_trip)
{
    char path[64];
    fresh_log(path, sizeof path);
    sepconv_tune_record written = make_record("op=sep df=7 m=4 n=4 dk=3", "fuse=1", 0.8, "cpu \"x\"");
    snprintf(written.error, sizeof written.error, "a message with \\ and \"quotes\"\nand a newline");
    snprintf(written.status, sizeof written.status, "failed");
    ck_assert_int_eq(sepconv_log_append(path, &written, NULL), SEPCONV_OK);
    sepconv_tune_log log;
    ck_assert_int_eq(sepconv_log_read(path, &log, NULL), SEPCONV_OK);
    ck_assert_uint_eq(log.count, 1);
    ck_assert_uint_eq(log.skipped, 0);
    const sepconv_tune_record *read = &log.records[0];
    ck_assert_str_eq(read->spec, written.spec);
    ck_assert_str_eq(read->schedule, written.schedule);
    ck_assert_str_eq(read->error, written.error);
    ck_assert_str_eq(read->environment.cpu, written.environment.cpu);
    ck_assert_str_eq(read->environment.compiler, written.environment.compiler);
    ck_assert_str_eq(read->status, "failed");
    ck_assert_double_eq(read->ratio, written.ratio);
    ck_assert_double_eq(read->median_ms, written.median_ms);
    ck_assert_int_eq(read->environment.threads, 1);
    sepconv_log_free(&log);
    unlink(path);
    /* a missing log is an empty one */
    ck_assert_int_eq(sepconv_log_read(path, &log, NULL), SEPCONV_OK);
    ck_assert_uint_eq(log.count, 0);
}
END_TEST

START_TEST(corrupt_lines_are_skipped_and_named)
{
    char path[64];
    fresh_log(path, sizeof path);
    sepconv_tune_record good = make_record("op=sep df=7 m=4 n=4 dk=3", "fuse=1", 0.8, "cpu");
    ck_assert_int_eq(sepconv_log_append(path, &good, NULL), SEPCONV_OK);
    char *line = NULL;
    ck_assert_int_eq(sepconv_log_format(&good, &line, NULL), SEPCONV_OK);
    FILE *file = fopen(path, "a");
    fputs("not json at all\n", file);                         /* line 2 */
    fprintf(file, "%.*s\n", (int)(strlen(line) / 2), line);   /* 3: cut in half */
    fputs("{\"spec\": \"x\"}\n", file);                       /* 4: fields missing */
    fputs("\n", file);                                        /* 5: blank */
    fputc('{', file);
    fputc('\0', file);                                        /* 6: a NUL byte */
    fputs("}\n", file);
    fprintf(file, "%s\n", line);                              /* 7: good again */
    fprintf(file, "%s", line);                                /* 8: no newline */
    fclose(file);
    free(line);
    sepconv_tune_log log;
    ck_assert_int_eq(sepconv_log_read(path, &log, NULL), SEPCONV_OK);
    ck_assert_uint_eq(log.count, 2);
    ck_assert_uint_eq(log.skipped, 5);
    const int lines[] = {2, 3, 4, 6, 8};
    for (int i = 0; i < 5; i++) {
        char where[96];
        snprintf(where, sizeof where, "%s:%d: skipped: ", path, lines[i]);
        ck_assert_msg(strstr(log.warnings[i], where) == log.warnings[i], "warning %d: %s", i,
                      log.warnings[i]);
    }
    ck_assert_ptr_nonnull(strstr(log.warnings[4], "cut short"));
    sepconv_log_free(&log);
    unlink(path);
}
END_TEST

START_TEST(selection_honours_the_environment)
{
    const char *spec = "op=sep df=7 m=4 n=4 dk=3";
    sepconv_tune_log log = {0};
    sepconv_tune_record records[8];
    records[0] = make_record(spec, "mine-slow", 0.9, "cpu A");
    records[1] = make_record(spec, "mine-fast", 0.7, "cpu A");
    records[2] = make_record(spec, "other-cpu", 0.1, "cpu B");
    records[3] = make_record(spec, "other-compiler", 0.1, "cpu A");
    snprintf(records[3].environment.compiler, sizeof records[3].environment.compiler, "clang 14");
    records[4] = make_record(spec, "other-version", 0.1, "cpu A");
    snprintf(records[4].environment.version, sizeof records[4].environment.version, "0.0.1");
    records[5] = make_record(spec, "other-target", 0.1, "cpu A");
    snprintf(records[5].environment.target, sizeof records[5].environment.target, "avx2");
    records[6] = make_record(spec, "failed", 0.05, "cpu A");
    snprintf(records[6].status, sizeof records[6].status, "failed");
    records[7] = make_record("op=sep df=9 m=4 n=4 dk=3", "other-layer", 0.1, "cpu A");
    log.records = records;
    log.count = 8;
    sepconv_environment mine = records[0].environment;
    const sepconv_tune_record *best = sepconv_log_best(&log, spec, &mine);
    ck_assert_ptr_nonnull(best);
    ck_assert_str_eq(best->schedule, "mine-fast");
    /* the name is a label: the same shape under another name matches */
    const sepconv_tune_record *named = sepconv_log_best(&log, "op=sep name=block7 df=7 m=4 "
                                                              "n=4 dk=3", &mine);
    ck_assert_ptr_eq(named, best);
    records[1] = make_record("op=sep name=old df=7 m=4 n=4 dk=3", "renamed", 0.6, "cpu A");
    ck_assert_str_eq(sepconv_log_best(&log, spec, &mine)->schedule, "renamed");
    mine.threads = 2; /* measured with another thread count: nothing */
    ck_assert_ptr_null(sepconv_log_best(&log, spec, &mine));
}
END_TEST

START_TEST(a_schedule_is_judged_by_its_worst_record)
{
    const char *spec = "op=dw df=7 m=4 dk=3";
    sepconv_tune_record records[5] = {
        make_record(spec, "lucky", 0.5, "cpu A"), make_record(spec, "steady", 0.8, "cpu A"),
        make_record(spec, "lucky", 1.2, "cpu A"), /* timed again: the 0.5 was luck */
        make_record(spec, "steady", 0.85, "cpu A"),
        make_record("op=dw name=twin df=7 m=4 dk=3", "once", 0.9, "cpu A")};
    sepconv_tune_log log = {.records = records, .count = 5};
    const sepconv_tune_record *best = sepconv_log_best(&log, spec, &records[0].environment);
    ck_assert_ptr_nonnull(best);
    ck_assert_str_eq(best->schedule, "steady");
    ck_assert_double_eq(best->ratio, 0.85);
}
END_TEST

/* The options of a portable sweep over every schedule into `log_path`. */
static sepconv_tune_options every_portable_schedule(const char *log_path)
{
    sepconv_tune_options options = sepconv_tune_defaults();
    options.kernel.target = SEPCONV_TARGET_PORTABLE; /* its space and default */
    options.log_path = log_path;
    options.strategy = SEPCONV_STRATEGY_GRID;
    return options;
}

START_TEST(the_best_are_timed_again_and_keep_their_worse_figure)
{
    char path[64];
    fresh_log(path, sizeof path);
    sepconv_layer layer = parse_layer("op=dw df=6 m=8 dk=3");
    sepconv_tune_options options = every_portable_schedule(path);
    sepconv_tune_result result;
    sepconv_error error;
    ck_assert_msg(sepconv_tune_layer(&layer, &options, &result, &error) == SEPCONV_OK, "%s",
                  error.message);
    sepconv_tune_log log;
    ck_assert_int_eq(sepconv_log_read(path, &log, NULL), SEPCONV_OK);
    /* three schedules have two records each: the sweep's and the second
     * timing's; the result keeps the larger ratio of the two */
    int twice = 0;
    for (size_t i = 0; i < result.count; i++) {
        double worst = 0;
        int seen = 0;
        for (size_t j = 1; j < log.count; j++) /* (0: the default's record) */
            if (strcmp(log.records[j].schedule, result.records[i].schedule) == 0) {
                seen++;
                worst = fmax(worst, log.records[j].ratio);
            }
        ck_assert_int_ge(seen, 1);
        if (seen == 2) {
            twice++;
            ck_assert_double_eq(result.records[i].ratio, worst);
        }
    }
    ck_assert_int_eq(twice, 3);
    sepconv_log_free(&log);
    sepconv_tune_result_free(&result);
    unlink(path);
}
END_TEST

START_TEST(wrong_kernels_are_recorded_failed_and_never_chosen)
{
    char dir[64], path[64];
    /* the kernels skip their last row when tile_w is 4 */
    write_buggy_templates(dir, sizeof dir,
                          "$if schedule.tile_w == 4 then\n"
                          "    if (row_end > row_begin)\n        row_end--; /* the bug */\n"
                          "$end\n");
    fresh_log(path, sizeof path);
    sepconv_layer layer = parse_layer("op=dw df=6 m=8 dk=3");
    sepconv_tune_options options = every_portable_schedule(path);
    options.kernel.generate.template_dir = dir;
    sepconv_tune_result result;
    sepconv_error error;
    ck_assert_msg(sepconv_tune_layer(&layer, &options, &result, &error) == SEPCONV_OK, "%s",
                  error.message);
    size_t failed = 0;
    for (size_t i = 0; i < result.count; i++) {
        bool wrong = strstr(result.records[i].schedule, "tile_w=4") != NULL;
        ck_assert_str_eq(result.records[i].status, wrong ? "failed" : "ok");
        if (wrong)
            ck_assert_ptr_nonnull(strstr(result.records[i].error, "failed verification"));
        failed += wrong;
    }
    /* dw 6x6x8, portable: 5 x 4 x 3 schedules, of which channel_block 8 (the
     * channels) and more are one, tile_w 4 and 8 (the longest segment: 4
     * columns) are one, and unroll=row is unroll=none at tile_w 4 and 8:
     * channel_block 2 x (tile_w 1, 2: 3 unrolls + tile_w 4: 2) = 2 x 8 */
    ck_assert_uint_eq(result.count, 16);
    ck_assert_uint_eq(failed, 4); /* tile_w=4 at both channel blocks, two unrolls */
    /* failures sort last; the log holds every candidate; best is never one */
    ck_assert_str_eq(result.records[result.count - 1].status, "failed");
    sepconv_tune_log log;
    ck_assert_int_eq(sepconv_log_read(path, &log, NULL), SEPCONV_OK);
    /* and the default's record, and the three best timed again */
    ck_assert_uint_eq(log.count, result.count + 1 + 3);
    sepconv_environment environment;
    ck_assert_int_eq(sepconv_environment_get(&options.kernel, &environment, NULL), SEPCONV_OK);
    const sepconv_tune_record *best = sepconv_log_best(&log, result.records[0].spec,
                                                       &environment);
    ck_assert_ptr_nonnull(best);
    ck_assert_str_eq(best->status, "ok");
    ck_assert_ptr_null(strstr(best->schedule, "tile_w=4"));
    sepconv_log_free(&log);
    sepconv_tune_result_free(&result);
    unlink(path);
    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    ck_assert_int_eq(system(command), 0);
}
END_TEST

START_TEST(auto_schedule_reads_the_log)
{
    char path[64];
    fresh_log(path, sizeof path);
    sepconv_layer layer = parse_layer("op=dw df=6 m=8 dk=3");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.target = SEPCONV_TARGET_PORTABLE; /* its default schedule */
    options.schedule = "auto";
    options.log_path = path;
    sepconv_kernel *kernel = NULL;
    sepconv_error error;
    /* no record yet: the default */
    ck_assert_int_eq(sepconv_kernel_create(&layer, &options, &kernel, &error), SEPCONV_OK);
    ck_assert_int_eq(sepconv_kernel_get_info(kernel)->tuned, 0);
    ck_assert_str_eq(sepconv_kernel_get_info(kernel)->schedule,
                     "channel_block=16,tile_w=2,unroll=none");
    sepconv_kernel_free(kernel);
    /* a record for this layer and environment */
    sepconv_tune_record record = make_record("", "channel_block=4,tile_w=8,unroll=row", 0.5, "");
    sepconv_layer_format(&layer, record.spec, sizeof record.spec, NULL);
    ck_assert_int_eq(sepconv_environment_get(&options, &record.environment, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_log_append(path, &record, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_kernel_create(&layer, &options, &kernel, &error), SEPCONV_OK);
    ck_assert_int_eq(sepconv_kernel_get_info(kernel)->tuned, 1);
    ck_assert_str_eq(sepconv_kernel_get_info(kernel)->schedule,
                     "channel_block=4,tile_w=8,unroll=row");
    sepconv_kernel_free(kernel);
    unlink(path);
}
END_TEST

START_TEST(an_append_never_merges_with_a_torn_line)
{
    char path[64];
    fresh_log(path, sizeof path);
    sepconv_tune_record first = make_record("op=sep df=7 m=4 n=4 dk=3", "first", 0.8, "cpu");
    ck_assert_int_eq(sepconv_log_append(path, &first, NULL), SEPCONV_OK);
    /* a full disk cut the next record short: no newline at its end */
    char *line = NULL;
    ck_assert_int_eq(sepconv_log_format(&first, &line, NULL), SEPCONV_OK);
    FILE *file = fopen(path, "a");
    fprintf(file, "%.*s", (int)(strlen(line) / 2), line);
    fclose(file);
    free(line);
    sepconv_tune_record second = make_record("op=sep df=7 m=4 n=4 dk=3", "second", 0.7, "cpu");
    sepconv_tune_record third = make_record("op=sep df=7 m=4 n=4 dk=3", "third", 0.6, "cpu");
    ck_assert_int_eq(sepconv_log_append(path, &second, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_log_append(path, &third, NULL), SEPCONV_OK);
    sepconv_tune_log log;
    ck_assert_int_eq(sepconv_log_read(path, &log, NULL), SEPCONV_OK);
    ck_assert_uint_eq(log.count, 3);
    ck_assert_str_eq(log.records[0].schedule, "first");
    ck_assert_str_eq(log.records[1].schedule, "second");
    ck_assert_str_eq(log.records[2].schedule, "third");
    ck_assert_uint_eq(log.skipped, 1); /* the torn line alone, on line 2 */
    char where[96];
    snprintf(where, sizeof where, "%s:2: skipped: not a JSON object", path);
    ck_assert_msg(strstr(log.warnings[0], where) == log.warnings[0], "%s", log.warnings[0]);
    sepconv_log_free(&log);
    unlink(path);
}
END_TEST

START_TEST(a_fifo_log_is_refused_without_blocking)
{
    char path[64];
    fresh_log(path, sizeof path);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    alarm(20); /* a blocking open would hang here: fail instead */
    sepconv_tune_record record = make_record("op=sep df=7 m=4 n=4 dk=3", "x", 0.8, "cpu");
    sepconv_error error;
    ck_assert_int_eq(sepconv_log_append(path, &record, &error), SEPCONV_IO);
    ck_assert_ptr_nonnull(strstr(error.message, "not a regular file"));
    sepconv_tune_log log;
    ck_assert_int_eq(sepconv_log_read(path, &log, &error), SEPCONV_IO);
    ck_assert_ptr_nonnull(strstr(error.message, "not a regular file"));
    ck_assert_ptr_nonnull(strstr(error.message, path));
    alarm(0);
    unlink(path);
    /* text from elsewhere (standard input) parses as a file does */
    char *line = NULL;
    ck_assert_int_eq(sepconv_log_format(&record, &line, NULL), SEPCONV_OK);
    char text[4096];
    snprintf(text, sizeof text, "%s\nnot a record\n%s\n", line, line);
    free(line);
    ck_assert_int_eq(sepconv_log_parse(text, strlen(text), "stdin", &log, NULL), SEPCONV_OK);
    ck_assert_uint_eq(log.count, 2);
    ck_assert_uint_eq(log.skipped, 1);
    ck_assert_ptr_nonnull(strstr(log.warnings[0], "stdin:2: skipped"));
    sepconv_log_free(&log);
    ck_assert_int_eq(sepconv_log_parse(NULL, 0, "empty", &log, NULL), SEPCONV_OK);
    ck_assert_uint_eq(log.count, 0);
}
END_TEST

START_TEST(unique_drops_repeats_and_keeps_the_order)
{
    const char *spec = "op=sep df=7 m=4 n=4 dk=3";
    sepconv_tune_record a = make_record(spec, "a", 0.9, "cpu A");
    sepconv_tune_record b = make_record(spec, "b", 0.8, "cpu A");
    sepconv_tune_record c = make_record(spec, "c", 0.7, "cpu A");
    sepconv_tune_record later = a; /* the same schedule measured again */
    snprintf(later.timestamp, sizeof later.timestamp, "2026-11-26T00:00:00Z");
    sepconv_tune_record slower = a; /* or measured differently */
    slower.median_ms = 9.0;
    sepconv_tune_record records[] = {a, b, a, c, b, later, c, slower, a};
    sepconv_tune_log log = {0};
    log.records = records;
    log.count = 9;
    size_t dropped = 0;
    ck_assert_int_eq(sepconv_log_unique(&log, &dropped, NULL), SEPCONV_OK);
    ck_assert_uint_eq(dropped, 4);
    ck_assert_uint_eq(log.count, 5);
    ck_assert_str_eq(log.records[0].schedule, "a");
    ck_assert_str_eq(log.records[1].schedule, "b");
    ck_assert_str_eq(log.records[2].schedule, "c");
    ck_assert_str_eq(log.records[3].timestamp, "2026-11-26T00:00:00Z");
    ck_assert_double_eq(log.records[4].median_ms, 9.0);
    /* many: 3000 distinct, every third repeated later, nothing lost */
    size_t distinct = 3000, total = distinct + distinct / 3;
    sepconv_tune_record *many = malloc(total * sizeof *many);
    for (size_t i = 0; i < distinct; i++) {
        char schedule[32];
        snprintf(schedule, sizeof schedule, "s%zu", i);
        many[i] = make_record(spec, schedule, 0.5, "cpu A");
    }
    for (size_t i = 0; i < distinct / 3; i++)
        many[distinct + i] = many[3 * i];
    log.records = many;
    log.count = total;
    ck_assert_int_eq(sepconv_log_unique(&log, &dropped, NULL), SEPCONV_OK);
    ck_assert_uint_eq(dropped, distinct / 3);
    ck_assert_uint_eq(log.count, distinct);
    for (size_t i = 0; i < distinct; i++) {
        char schedule[32];
        snprintf(schedule, sizeof schedule, "s%zu", i);
        ck_assert_str_eq(log.records[i].schedule, schedule);
    }
    free(many);
    log.count = 0; /* an empty log */
    ck_assert_int_eq(sepconv_log_unique(&log, &dropped, NULL), SEPCONV_OK);
    ck_assert_uint_eq(dropped, 0);
}
END_TEST

/* The distinct schedules a sweep of `layer` draws from with these options. */
static size_t distinct_count(const sepconv_layer *layer, const sepconv_tune_options *options)
{
    sepconv_kernel_options kernel = options->kernel;
    ck_assert_int_eq(sepconv_target_resolve(kernel.target, &kernel.target, NULL), SEPCONV_OK);
    sepconv_schedule *list = NULL;
    size_t count = 0;
    ck_assert_int_eq(sepconv_space_distinct(layer, &kernel, &list, &count, NULL, NULL),
                     SEPCONV_OK);
    free(list);
    return count;
}

START_TEST(tune_keeps_the_status_without_an_error_buffer)
{
    sepconv_layer layer = parse_layer("op=dw df=6 m=8 dk=3");
    sepconv_tune_options options = sepconv_tune_defaults();
    options.no_log = 1;
    options.trials = 1;
    /* the default schedule's source cannot fit in 64 bytes: LIMIT */
    options.kernel.generate.source_budget = 64;
    sepconv_tune_result result;
    ck_assert_int_eq(sepconv_tune_layer(&layer, &options, &result, NULL), SEPCONV_LIMIT);
    /* a log that cannot be written: IO */
    options = sepconv_tune_defaults();
    options.trials = 1;
    options.log_path = "/nonexistent-sepconv-dir/tuning.jsonl";
    ck_assert_int_eq(sepconv_tune_layer(&layer, &options, &result, NULL), SEPCONV_IO);
    sepconv_error error;
    ck_assert_int_eq(sepconv_tune_layer(&layer, &options, &result, &error), SEPCONV_IO);
    ck_assert_ptr_nonnull(strstr(error.message, "/nonexistent-sepconv-dir/tuning.jsonl"));
}
END_TEST

START_TEST(a_budget_leaves_candidates_not_tried)
{
    /* 60 candidates (dw, portable), each compiled, verified and timed for
     * several milliseconds: far more than the budget */
    sepconv_layer layer = parse_layer("op=dw df=28 m=32 dk=3");
    sepconv_tune_options options = sepconv_tune_defaults();
    options.kernel.target = SEPCONV_TARGET_PORTABLE;
    options.no_log = 1;
    /* the budget counts the reference and the default's build and timing
     * too, which valgrind slows some fiftyfold and qemu severalfold (on a
     * Zen 1 they took the whole second): there, more seconds */
    options.budget_seconds = under_valgrind() ? 30.0 : 1.0 * emulation_factor();
    sepconv_tune_result result;
    sepconv_error error;
    double start = sepconv_seconds();
    sepconv_status status = sepconv_tune_layer(&layer, &options, &result, &error);
    double took = sepconv_seconds() - start;
    ck_assert_msg(status == SEPCONV_OK, "%s", error.message);
    size_t tried = result.count, not_tried = result.not_tried;
    sepconv_tune_result_free(&result);
    ck_assert_uint_eq(tried + not_tried, distinct_count(&layer, &options));
    ck_assert_uint_gt(not_tried, 0);
    ck_assert_uint_gt(tried, 0);
    ck_assert_msg(took < 10.0 * options.budget_seconds, "a %.0f s budget took %.1f s",
                  options.budget_seconds, took); /* a bound, not a speed */
}
END_TEST

/* Tune options for the cc backend through a stand-in compiler written from
 * `script` into `compiler` (a fresh path), with a budget and no log. */
static sepconv_tune_options script_compiler_tune(char *compiler, size_t capacity,
                                                 double budget_seconds, const char *script)
{
    snprintf(compiler, capacity, "/tmp/sepconv-script-cc-XXXXXX");
    int fd = mkstemp(compiler);
    ck_assert_int_ge(fd, 0);
    close(fd);
    write_script(compiler, script);
    sepconv_tune_options options = sepconv_tune_defaults();
    options.no_log = 1;
    options.kernel.backend = SEPCONV_BACKEND_CC;
    options.kernel.target = SEPCONV_TARGET_PORTABLE; /* the schedules the scripts expect */
    options.kernel.cc.compiler = compiler;
    options.kernel.cc.no_cache = 1;
    options.kernel.cc.flags = native_flags("-O2"); /* what valgrind can run */
    options.budget_seconds = budget_seconds;
    return options;
}

START_TEST(a_budget_stops_a_slow_compiler)
{
    /* a "compiler" that answers the backend's probes, then hangs on every
     * compile */
    char compiler[64];
    sepconv_tune_options options = script_compiler_tune(
        compiler, sizeof compiler, 2.0,
        "#!/bin/sh\n" /* the backend's probes go to cc */
        "case \"$*\" in *kernel.c*) exec sleep 20;; esac\n"
        "exec cc \"$@\"\n");
    sepconv_layer layer = parse_layer("op=dw df=6 m=8 dk=3");
    sepconv_tune_result result;
    sepconv_error error;
    double start = sepconv_seconds();
    sepconv_status status = sepconv_tune_layer(&layer, &options, &result, &error);
    double took = sepconv_seconds() - start;
    unlink(compiler);
    /* the default schedule cannot be built within the budget */
    ck_assert_int_eq(status, SEPCONV_LIMIT);
    ck_assert_ptr_nonnull(strstr(error.message, "budget"));
    ck_assert_msg(took < 10.0, "a 2 s budget took %.1f s", took); /* a bound, not a speed */
}
END_TEST

START_TEST(a_budget_cuts_a_hanging_candidates_compile)
{
    /* a compiler that builds the default schedule (and answers the
     * backend's probes) but hangs on every other candidate */
    char compiler[64];
    sepconv_tune_options options = script_compiler_tune(
        compiler, sizeof compiler, 4.0,
        "#!/bin/sh\n"
        "src=\n"
        "for a in \"$@\"; do case \"$a\" in *.c) src=\"$a\";; esac; done\n"
        "if [ -z \"$src\" ] || grep -q 'schedule: *channel_block=16,tile_w=2,unroll=none$' "
        "\"$src\"; then exec cc \"$@\"; fi\n"
        "exec sleep 20\n");
    options.strategy = SEPCONV_STRATEGY_GRID; /* channel_block=4 first: it hangs */
    sepconv_layer layer = parse_layer("op=dw df=6 m=8 dk=3");
    sepconv_tune_result result;
    sepconv_error error;
    double start = sepconv_seconds();
    sepconv_status status = sepconv_tune_layer(&layer, &options, &result, &error);
    double took = sepconv_seconds() - start;
    unlink(compiler);
    ck_assert_msg(status == SEPCONV_OK, "%s", error.message);
    /* the compile the budget cut says nothing of its schedule: not tried,
     * not failed, and so are the rest */
    ck_assert_uint_eq(result.count, 0);
    ck_assert_uint_eq(result.not_tried, distinct_count(&layer, &options));
    ck_assert_msg(took < 15.0, "a 4 s budget took %.1f s", took); /* a bound, not a speed */
    sepconv_tune_result_free(&result);
}
END_TEST

START_TEST(the_missing_record_message_names_the_layer)
{
    char path[64];
    fresh_log(path, sizeof path);
    sepconv_layer layer = parse_layer("op=dw name=blk df=6 m=8 dk=3");
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.target = SEPCONV_TARGET_PORTABLE;
    char message[2048];
    ck_assert_int_eq(sepconv_log_missing(&layer, &options, path, message, sizeof message,
                                         NULL), SEPCONV_OK);
    const char *spec = "op=dw name=blk df=6 m=8 dk=3 batch=1 stride=1 dilation=1 mult=1 "
                       "pad=same layout=nhwc bias=0 act=none";
    ck_assert_msg(strstr(message, spec) != NULL, "%s", message);
    ck_assert_ptr_nonnull(strstr(message, path));
    ck_assert_ptr_nonnull(strstr(message, "no tcc/portable record"));
    ck_assert_ptr_nonnull(strstr(message, "sepconv tune '"));
    ck_assert_ptr_null(strstr(message, "the layer"));
    /* a record of the layer from another machine is mentioned, not used */
    sepconv_tune_record record = make_record(spec, "channel_block=4,tile_w=8,unroll=row",
                                             0.5, "another cpu");
    ck_assert_int_eq(sepconv_log_append(path, &record, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_log_missing(&layer, &options, path, message, sizeof message,
                                         NULL), SEPCONV_OK);
    ck_assert_msg(strstr(message, "1 record(s) for this layer were measured with another")
                  != NULL, "%s", message);
    unlink(path);
}
END_TEST

typedef cli_outcome cli_run;

/* Runs `sepconv ARGS` in directory `dir` with standard input from `input`
 * (NULL: /dev/null). */
static cli_run *run_sepconv(const char *dir, const char *input, const char *args)
{
    return run_sepconv_in(dir, input, NULL, args);
}

/* A fresh scratch directory. */
static void scratch_dir(char *dir, size_t capacity)
{
    snprintf(dir, capacity, "/tmp/sepconv-tune-dir-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Removes a scratch directory. */
static void remove_dir(const char *dir)
{
    char command[256];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(command), 0);
}

START_TEST(progress_lines_show_each_candidates_own_ratio)
{
    char dir[64], args[512];
    scratch_dir(dir, sizeof dir);
    snprintf(args, sizeof args, "tune op=dw name=pl df=6 m=8 dk=3 --strategy random --seed 3 "
             "--trials 6 --target portable --log %s/log.jsonl", dir);
    cli_run *r = run_sepconv(dir, NULL, args);
    ck_assert_msg(r->code == 0, "%s", r->err);
    char path[128];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    sepconv_tune_log log;
    ck_assert_int_eq(sepconv_log_read(path, &log, NULL), SEPCONV_OK);
    /* the default's record first, the three best timed again last */
    ck_assert_uint_eq(log.count, 7 + 3);
    /* not a terminal: "pl 3/6 ok SCHEDULE: ratio R of default; best so far B" */
    int lines = 0;
    double best = INFINITY;
    for (char *line = strtok(r->err, "\n"); line; line = strtok(NULL, "\n")) {
        int done = 0, total = 0;
        char schedule[256];
        double ratio = 0, so_far = 0;
        if (sscanf(line, "pl %d/%d ok %255[^:]: ratio %lfx of default; best so far %lfx",
                   &done, &total, schedule, &ratio, &so_far) != 5)
            continue;
        lines++;
        ck_assert_int_eq(total, 6);
        const sepconv_tune_record *logged = &log.records[done]; /* in order */
        ck_assert_str_eq(logged->schedule, schedule);
        ck_assert_msg(fabs(logged->ratio - ratio) < 0.0006, "%s: logged %.4f", line,
                      logged->ratio);
        best = fmin(best, logged->ratio);
        ck_assert_msg(fabs(best - so_far) < 0.0006, "%s: best so far %.4f", line, best);
    }
    ck_assert_int_eq(lines, 6);
    sepconv_log_free(&log);
    remove_dir(dir);
}
END_TEST

START_TEST(tune_takes_a_source_size_limit)
{
    char dir[64], args[512];
    scratch_dir(dir, sizeof dir);
    snprintf(args, sizeof args, "tune op=dw df=6 m=8 dk=3 --trials 1 --max-source 1K "
             "--log %s/log.jsonl", dir);
    cli_run *r = run_sepconv(dir, NULL, args);
    ck_assert_int_eq(r->code, 1); /* the default schedule needs more than 1 KiB */
    ck_assert_msg(strstr(r->err, "--max-source") != NULL, "%s", r->err);
    snprintf(args, sizeof args, "tune op=dw df=6 m=8 dk=3 --trials 1 --max-source 16M "
             "--log %s/log.jsonl", dir);
    r = run_sepconv(dir, NULL, args);
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = run_sepconv(dir, NULL, "tune op=dw df=6 m=8 dk=3 --trials 1 --max-source 12Q");
    ck_assert_int_eq(r->code, 2);
    remove_dir(dir);
}
END_TEST

/* The number of lines of a text. */
static int count_lines(const char *text)
{
    int lines = 0;
    for (; *text; text++)
        lines += *text == '\n';
    return lines;
}

START_TEST(log_tools_read_stdin_refuse_missing_files_and_merge_to_stdout)
{
    char dir[64], args[512], path[128], other[128];
    scratch_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a.jsonl", dir);
    snprintf(other, sizeof other, "%s/b.jsonl", dir);
    const char *spec = "op=sep df=7 m=4 n=4 dk=3";
    const char *schedules[] = {"s1", "s2", "s3"};
    for (int i = 0; i < 3; i++) {
        sepconv_tune_record record = make_record(spec, schedules[i], 0.5, "cpu");
        ck_assert_int_eq(sepconv_log_append(path, &record, NULL), SEPCONV_OK);
        if (i > 0) /* b holds s2, s3 and s4: two of a's */
            ck_assert_int_eq(sepconv_log_append(other, &record, NULL), SEPCONV_OK);
    }
    sepconv_tune_record fourth = make_record(spec, "s4", 0.5, "cpu");
    ck_assert_int_eq(sepconv_log_append(other, &fourth, NULL), SEPCONV_OK);
    /* a missing file is an error for every action */
    const char *actions[] = {"show", "best", "merge"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "log %s %s/missing.jsonl", actions[i], dir);
        cli_run *r = run_sepconv(dir, NULL, args);
        ck_assert_msg(r->code == 1, "log %s: exit %d", actions[i], r->code);
        ck_assert_msg(strstr(r->err, "no such file") != NULL, "%s", r->err);
    }
    /* an empty log is 0 records, not an error */
    char empty[128];
    snprintf(empty, sizeof empty, "%s/empty.jsonl", dir);
    fclose(fopen(empty, "w"));
    snprintf(args, sizeof args, "log show %s", empty);
    cli_run *r = run_sepconv(dir, NULL, args);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_ptr_nonnull(strstr(r->out, "0 records"));
    /* '-' is standard input */
    r = run_sepconv(dir, path, "log show -");
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_ptr_nonnull(strstr(r->out, "3 records"));
    /* merge without -o, and with -o -, writes the records to standard output */
    const char *outputs[] = {"", "-o -"};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "log merge %s %s %s", path, other, outputs[i]);
        r = run_sepconv(dir, NULL, args);
        ck_assert_msg(r->code == 0, "%s", r->err);
        ck_assert_int_eq(count_lines(r->out), 4); /* s1..s4, the repeats dropped */
        ck_assert_int_eq(r->out[0], '{');
        ck_assert_ptr_nonnull(strstr(r->err, "merged 4 records"));
        ck_assert_ptr_nonnull(strstr(r->err, "2 duplicates dropped"));
        sepconv_tune_log log;
        ck_assert_int_eq(sepconv_log_parse(r->out, strlen(r->out), "merged", &log, NULL),
                         SEPCONV_OK);
        ck_assert_uint_eq(log.count, 4);
        ck_assert_str_eq(log.records[0].schedule, "s1");
        ck_assert_str_eq(log.records[3].schedule, "s4");
        sepconv_log_free(&log);
    }
    char dash[128];
    snprintf(dash, sizeof dash, "%s/-", dir);
    ck_assert_int_ne(access(dash, F_OK), 0); /* no file named '-' */
    /* an existing output is replaced; an input as the output is refused */
    char merged[128];
    snprintf(merged, sizeof merged, "%s/merged.jsonl", dir);
    FILE *file = fopen(merged, "w");
    fputs("old contents\n", file);
    fclose(file);
    snprintf(args, sizeof args, "log merge %s %s -o %s", path, other, merged);
    r = run_sepconv(dir, NULL, args);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_ptr_nonnull(strstr(r->out, "merged 4 records"));
    sepconv_tune_log log;
    ck_assert_int_eq(sepconv_log_read(merged, &log, NULL), SEPCONV_OK);
    ck_assert_uint_eq(log.count, 4);
    ck_assert_uint_eq(log.skipped, 0);
    sepconv_log_free(&log);
    snprintf(args, sizeof args, "log merge %s %s -o %s", path, other, path);
    r = run_sepconv(dir, NULL, args);
    ck_assert_int_eq(r->code, 2);
    ck_assert_ptr_nonnull(strstr(r->err, "also an input"));
    ck_assert_int_eq(sepconv_log_read(path, &log, NULL), SEPCONV_OK);
    ck_assert_uint_eq(log.count, 3); /* untouched */
    sepconv_log_free(&log);
    remove_dir(dir);
}
END_TEST

/* sepconv_log_write replaces a file whole: through a link, keeping the
 * file's mode, leaving no temporary behind, and failing with a message that
 * names the path when it cannot. */
START_TEST(a_written_log_replaces_the_file_atomically)
{
    char dir[] = "/tmp/sepconv-logwrite-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char file[256], link_path[256], missing[256];
    snprintf(file, sizeof file, "%s/real.jsonl", dir);
    snprintf(link_path, sizeof link_path, "%s/link.jsonl", dir);
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.jsonl", dir);
    FILE *old = fopen(file, "w");
    ck_assert_ptr_nonnull(old);
    fputs("an old line\n", old);
    fclose(old);
    ck_assert_int_eq(chmod(file, 0640), 0);
    ck_assert_int_eq(symlink("real.jsonl", link_path), 0);
    sepconv_tune_record records[2] = {
        make_record("op=dw df=7 m=4 dk=3", "unroll=none", 0.9, "cpu A"),
        make_record("op=pw df=7 m=4 n=8", "pack=1", 0.5, "cpu A")};
    sepconv_tune_log log = {.records = records, .count = 2};
    sepconv_error error;
    ck_assert_int_eq(sepconv_log_write(link_path, &log, &error), SEPCONV_OK);
    struct stat st;
    ck_assert_int_eq(lstat(link_path, &st), 0);
    ck_assert(S_ISLNK(st.st_mode)); /* the link stays a link */
    ck_assert_int_eq(stat(file, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0640);
    sepconv_tune_log back;
    ck_assert_int_eq(sepconv_log_read(file, &back, &error), SEPCONV_OK);
    ck_assert_uint_eq(back.count, 2);
    ck_assert_uint_eq(back.skipped, 0); /* the old line is gone */
    ck_assert_str_eq(back.records[1].schedule, "pack=1");
    sepconv_log_free(&back);
    ck_assert_int_eq(sepconv_log_write(missing, &log, &error), SEPCONV_IO);
    ck_assert_ptr_nonnull(strstr(error.message, missing));
    char command[512];
    snprintf(command, sizeof command, "ls %s | grep -c tmp-", dir);
    FILE *pipe = popen(command, "r");
    char count[16] = "";
    ck_assert_ptr_nonnull(fgets(count, sizeof count, pipe));
    pclose(pipe);
    ck_assert_str_eq(count, "0\n"); /* no temporary left */
    unlink(link_path);
    unlink(file);
    rmdir(dir);
}
END_TEST

START_TEST(a_fifo_as_a_log_fails_at_once)
{
    char dir[64], fifo[128], args[512];
    scratch_dir(dir, sizeof dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    snprintf(args, sizeof args, "log show %s", fifo);
    cli_run *r = run_sepconv(dir, NULL, args);
    ck_assert_int_eq(r->code, 1); /* not 124: the timeout */
    ck_assert_msg(strstr(r->err, "not a regular file") != NULL, "%s", r->err);
    snprintf(args, sizeof args, "tune op=dw df=6 m=8 dk=3 --trials 1 --log %s", fifo);
    r = run_sepconv(dir, NULL, args);
    ck_assert_int_eq(r->code, 1);
    ck_assert_msg(strstr(r->err, "not a regular file") != NULL, "%s", r->err);
    remove_dir(dir);
}
END_TEST

START_TEST(tune_then_best_use_one_default_backend)
{
    char dir[64], args[512];
    scratch_dir(dir, sizeof dir);
    const char *layer = "op=dw name=one df=6 m=8 dk=3";
    snprintf(args, sizeof args, "tune %s --trials 2 --quiet --log %s/log.jsonl", layer, dir);
    cli_run *r = run_sepconv(dir, NULL, args);
    ck_assert_msg(r->code == 0, "%s", r->err);
    snprintf(args, sizeof args, "log best %s/log.jsonl", dir);
    r = run_sepconv(dir, NULL, args);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_msg(strstr(r->out, "best for backend tcc") != NULL, "%s", r->out);
    ck_assert_ptr_nonnull(strstr(r->out, "--schedule channel_block="));
    snprintf(args, sizeof args, "gen %s --schedule best --log %s/log.jsonl", layer, dir);
    r = run_sepconv(dir, NULL, args);
    ck_assert_int_eq(r->code, 0);
    ck_assert_msg(r->err[0] == '\0', "%s", r->err); /* found: no warning */
    remove_dir(dir);
}
END_TEST

START_TEST(records_name_the_resolved_target_and_match_only_it)
{
    /* tuned on a CPU without AVX-512 (simulated): the records say avx2, the
     * instruction set auto resolved to there, and an AVX-512 CPU's "best"
     * does not take them */
    if (!test_target_runs(SEPCONV_TARGET_AVX2, "tune: auto on a simulated AVX2-only CPU"))
        return;
    char dir[64], args[512], path[128];
    scratch_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    const char *layer = "op=pw name=one df=6 m=16 n=16";
    setenv("SEPCONV_CPU_HIDE", "avx512", 1);
    snprintf(args, sizeof args, "tune %s --trials 1 --quiet --log %s", layer, path);
    cli_run *r = run_sepconv(dir, NULL, args);
    ck_assert_msg(r->code == 0, "%s", r->err);
    sepconv_tune_log log;
    sepconv_error error;
    ck_assert_int_eq(sepconv_log_read(path, &log, &error), SEPCONV_OK);
    ck_assert_uint_ge(log.count, 1);
    for (size_t i = 0; i < log.count; i++)
        ck_assert_str_eq(log.records[i].environment.target, "avx2");
    snprintf(args, sizeof args, "log best %s", path);
    r = run_sepconv(dir, NULL, args);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_msg(strstr(r->out, "best for backend tcc, target avx2"), "%s", r->out);
    ck_assert_msg(strstr(r->out, "--schedule "), "%s", r->out);
    /* the API's environment: the same record, not for avx512 */
    sepconv_kernel_options options = sepconv_kernel_defaults();
    sepconv_environment avx2, avx512;
    char spec[512];
    sepconv_layer parsed = parse_layer(layer);
    ck_assert_int_eq(sepconv_layer_format(&parsed, spec, sizeof spec, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_environment_get(&options, &avx2, &error), SEPCONV_OK);
    ck_assert_str_eq(avx2.target, "avx2");
    unsetenv("SEPCONV_CPU_HIDE");
    /* matching, with the record's own environment (the CLI's: under valgrind
     * this process sees another CPU than its children) and only its target
     * changed */
    sepconv_environment recorded = log.records[0].environment;
    ck_assert_ptr_nonnull(sepconv_log_best(&log, spec, &recorded));
    snprintf(recorded.target, sizeof recorded.target, "avx512");
    ck_assert_ptr_null(sepconv_log_best(&log, spec, &recorded));
    if (test_target_runs(SEPCONV_TARGET_AVX512, "tune: records of avx2 not chosen for avx512")) {
        ck_assert_int_eq(sepconv_environment_get(&options, &avx512, &error), SEPCONV_OK);
        ck_assert_str_eq(avx512.target, "avx512");
        ck_assert_ptr_null(sepconv_log_best(&log, spec, &avx512));
        r = run_sepconv(dir, NULL, args);
        ck_assert_msg(r->code == 0, "%s", r->err);
        ck_assert_msg(strstr(r->out, "best for backend tcc, target avx512"), "%s", r->out);
        ck_assert_msg(strstr(r->out, "no records for this environment"), "%s", r->out);
    }
    sepconv_log_free(&log);
    remove_dir(dir);
}
END_TEST

/* ------------------------------------------------------------- pruning */

/* The kernel source of a schedule with its comments dropped (they name
 * the schedule), under a fixed symbol; NULL when generating fails, *refused
 * then telling whether the source-size budget refused it. */
static char *kernel_text(const sepconv_layer *layer, const sepconv_schedule *schedule,
                         const sepconv_generate_options *base, bool *refused)
{
    sepconv_generate_options generate = *base;
    generate.name = "k";
    sepconv_source source;
    sepconv_error error;
    sepconv_status status = sepconv_generate(layer, schedule, &generate, &source, &error);
    *refused = status == SEPCONV_LIMIT && strstr(error.message, "source-size budget");
    if (status != SEPCONV_OK) {
        ck_assert_msg(*refused, "%s", error.message);
        return NULL;
    }
    char *text = malloc(source.code_length + 1), *out = text;
    for (const char *p = source.code; *p;) {
        if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            p = end ? end + 2 : p + strlen(p);
        } else {
            *out++ = *p++;
        }
    }
    *out = '\0';
    sepconv_source_free(&source);
    return text;
}

/* The kernel a canonical schedule generates, kept once per schedule: many
 * schedules stand for one canonical, whose kernel need not be made again. */
typedef struct kept_kernel {
    char name[256];
    char *text; /* NULL: refused */
    bool refused;
} kept_kernel;

/* The kept kernel of `schedule`, generated the first time it is asked for. */
static const kept_kernel *kept_text(kept_kernel **kept, size_t *used, size_t *capacity,
                                    const sepconv_layer *layer,
                                    const sepconv_schedule *schedule,
                                    const sepconv_generate_options *generate)
{
    char name[256];
    sepconv_schedule_format(schedule, name, sizeof name, NULL);
    for (size_t i = 0; i < *used; i++)
        if (strcmp((*kept)[i].name, name) == 0)
            return &(*kept)[i];
    if (*used == *capacity) {
        *capacity = *capacity ? 2 * *capacity : 64;
        *kept = realloc(*kept, *capacity * sizeof **kept);
        ck_assert_ptr_nonnull(*kept);
    }
    kept_kernel *k = &(*kept)[(*used)++];
    snprintf(k->name, sizeof k->name, "%s", name);
    k->text = kernel_text(layer, schedule, generate, &k->refused);
    return k;
}

/* A layer, a backend and target, and a source budget (0: the backend's). */
typedef struct pruning_case {
    const char *spec;
    sepconv_backend backend;
    sepconv_target target;
    size_t budget;
    int stride; /* check every stride-th schedule's class (1: all, and count them) */
    bool exact; /* every candidate generated, no two alike (not where the
                   candidates are thousands, nor in vector depthwise code,
                   which has no channel_block rule and repeats) */
} pruning_case;

/* an int8 layer's quantization */
#define Q8 "dtype=int8 in_scale=0.1 in_zero=-3 out_scale=0.2 out_zero=4"

START_TEST(pruning_draws_no_refused_and_no_repeated_schedule)
{
    const pruning_case cases[] = {
        /* plain C: channel blocks past 8 channels, groups past the longest
         * segment (4 columns), unroll=row that unrolls nothing more */
        {"op=dw df=6 m=8 dk=3", SEPCONV_BACKEND_TCC, SEPCONV_TARGET_PORTABLE, 0, 1, true},
        {"op=dw df=6 m=8 dk=3", SEPCONV_BACKEND_CC, SEPCONV_TARGET_PORTABLE, 0, 1, true},
        /* micro-kernels: the depthwise row kernel reads no knob at all */
        {"op=dw df=9 m=32 dk=3", SEPCONV_BACKEND_TCC, SEPCONV_TARGET_AVX512, 0, 1, true},
        {"op=pw df=7 m=16 n=32", SEPCONV_BACKEND_TCC, SEPCONV_TARGET_AVX512, 0, 1, true},
        /* intrinsics: unpacked output blocks past 16 channels */
        {"op=pw df=5 m=8 n=16 stride=2", SEPCONV_BACKEND_CC, SEPCONV_TARGET_AVX2, 0, 1, true},
        /* (the sep space on micro-kernels: 25920 schedules of 70 kernels,
         * every 13th one's class checked) */
        {"op=sep df=6 m=16 n=16 dk=3", SEPCONV_BACKEND_TCC, SEPCONV_TARGET_AVX512, 0, 13, true},
        /* a budget that refuses the larger unrolled kernels */
        {"op=dw df=12 m=16 dk=3", SEPCONV_BACKEND_TCC, SEPCONV_TARGET_PORTABLE, 96 << 10, 1, true},
        /* classes only (every 13th schedule), in vector code too */
        {"op=sep df=6 m=8 n=16 dk=3", SEPCONV_BACKEND_CC, SEPCONV_TARGET_PORTABLE, 0, 13, false},
        {"op=sep df=6 m=16 n=32 dk=3", SEPCONV_BACKEND_CC, SEPCONV_TARGET_AVX512, 0, 13, false},
        /* int8: the channel block of plain C code only (blocks past the
         * channels are one), none where tcc's code calls the micro-kernels
         * or the code does not block (nchw); an int8 sep, two stage kernels, is
         * swept in int8_layers_are_tuned_on_their_channel_block */
        {"op=pw df=5 m=8 n=24 " Q8, SEPCONV_BACKEND_CC, SEPCONV_TARGET_AVX2, 0, 1, true},
        {"op=pw df=5 m=8 n=24 " Q8, SEPCONV_BACKEND_TCC, SEPCONV_TARGET_AVX2, 0, 1, true},
        {"op=dw df=6 m=20 dk=3 " Q8, SEPCONV_BACKEND_TCC, SEPCONV_TARGET_PORTABLE, 0, 1, true},
        {"op=dw df=6 m=20 dk=3 " Q8, SEPCONV_BACKEND_TCC, SEPCONV_TARGET_AVX2, 0, 1, true},
        {"op=dw df=6 m=4 dk=3 layout=nchw " Q8, SEPCONV_BACKEND_CC, SEPCONV_TARGET_PORTABLE, 0, 1,
         true},
        {"op=conv df=5 m=3 n=40 dk=3 " Q8, SEPCONV_BACKEND_CC, SEPCONV_TARGET_PORTABLE, 0, 1, true},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const pruning_case *pc = &cases[c];
        if (sepconv_target_resolve(pc->target, &(sepconv_target){0}, NULL) != SEPCONV_OK)
            continue; /* (the generated code is only compared, but keep to this CPU's) */
        sepconv_layer layer = parse_layer(pc->spec);
        sepconv_kernel_options kernel = sepconv_kernel_defaults();
        kernel.backend = pc->backend;
        kernel.target = pc->target;
        kernel.generate.source_budget = pc->budget;
        sepconv_generate_options generate = kernel.generate;
        generate.for_cc = pc->backend == SEPCONV_BACKEND_CC;
        sepconv_schedule *list = NULL;
        size_t count = 0;
        sepconv_space_counts counts;
        ck_assert_int_eq(sepconv_space_distinct(&layer, &kernel, &list, &count, &counts, NULL),
                         SEPCONV_OK);
        ck_assert_int_eq(counts.valid, counts.repeats + counts.refused + counts.distinct);
        ck_assert_int_eq((int64_t)count, counts.distinct);
        /* every candidate generates, and no two generate the same kernel */
        kept_kernel *kept = NULL;
        size_t kept_used = 0, kept_capacity = 0;
        const char **texts = calloc(count + 1, sizeof *texts);
        for (size_t i = 0; pc->exact && i < count; i++) {
            const kept_kernel *k = kept_text(&kept, &kept_used, &kept_capacity, &layer,
                                             &list[i], &generate);
            ck_assert_msg(k->text != NULL, "%s: candidate %s is refused", pc->spec, k->name);
            texts[i] = k->text;
        }
        qsort(texts, pc->exact ? count : 0, sizeof *texts, compare_strings);
        for (size_t i = 1; pc->exact && i < count; i++)
            ck_assert_msg(strcmp(texts[i - 1], texts[i]) != 0,
                          "%s: two candidates generate the same kernel", pc->spec);
        /* counted independently: over the whole space, the kernels that
         * generate and how many differ; each schedule's kernel is its
         * class's (what pruning keeps for it) */
        int64_t product = sepconv_space_product(layer.op, pc->target), refused_count = 0;
        size_t seen = 0;
        char **all = calloc((size_t)product + 1, sizeof *all);
        /* (valgrind, 15x slower, samples the sampled spaces more thinly:
         * what it checks is memory, and make test checks the classes) */
        int stride = pc->stride > 1 && under_valgrind() ? 17 * pc->stride : pc->stride;
        for (int64_t i = 0; i < product; i += stride) {
            sepconv_schedule s;
            if (sepconv_space_schedule(layer.op, pc->target, i, &s, NULL) != SEPCONV_OK)
                continue;
            bool refused = false;
            char *text = kernel_text(&layer, &s, &generate, &refused);
            sepconv_schedule canonical = s;
            sepconv_space_canonical(&layer, pc->backend == SEPCONV_BACKEND_TCC &&
                                                pc->target != SEPCONV_TARGET_PORTABLE,
                                    &canonical);
            const kept_kernel *k = kept_text(&kept, &kept_used, &kept_capacity, &layer,
                                             &canonical, &generate);
            char a[256];
            sepconv_schedule_format(&s, a, sizeof a, NULL);
            ck_assert_msg(refused == k->refused, "%s: %s and %s", pc->spec, a, k->name);
            ck_assert_msg(!text || strcmp(text, k->text) == 0,
                          "%s: %s stands for %s, another kernel", pc->spec, k->name, a);
            if (text)
                all[seen++] = text;
            else
                refused_count++;
        }
        if (pc->stride == 1) {
            qsort(all, seen, sizeof *all, compare_strings);
            size_t different = seen > 0;
            for (size_t i = 1; i < seen; i++)
                different += strcmp(all[i - 1], all[i]) != 0;
            ck_assert_msg(different == count, "%s: %zu different kernels, %zu candidates",
                          pc->spec, different, count);
            ck_assert_int_gt(counts.repeats, 0);
        }
        if (pc->budget)
            ck_assert_int_gt(counts.refused, 0);
        for (size_t i = 0; i < kept_used; i++)
            free(kept[i].text);
        free(kept);
        free_texts(all, seen);
        free(texts);
        free(list);
    }
}
END_TEST

START_TEST(int8_layers_are_tuned_on_their_channel_block)
{
    /* cc's plain C: one candidate a distinct block (4, 8, 16, 32 and 64 >=
     * the 40 channels: 5), each verified bit for bit and timed on int8 data,
     * the records naming the dtype; a sep (its stages' kernels, no knob
     * of its own): the default alone */
    const char *path = "/tmp/sepconv-test-int8-tune.jsonl";
    unlink(path);
    sepconv_layer layer = parse_layer("op=dw df=6 m=40 dk=3 bias=1 act=relu " Q8);
    sepconv_tune_options options = sepconv_tune_defaults();
    options.kernel.backend = SEPCONV_BACKEND_CC;
    options.kernel.target = SEPCONV_TARGET_PORTABLE;
    options.kernel.cc.flags = native_flags("-O2"); /* (code valgrind runs) */
    options.log_path = path;
    sepconv_tune_result result;
    sepconv_error error;
    ck_assert_msg(sepconv_tune_layer(&layer, &options, &result, &error) == SEPCONV_OK, "%s",
                  error.message);
    ck_assert_uint_eq(result.count, 5);
    bool blocks[65] = {false};
    for (size_t i = 0; i < result.count; i++) {
        const sepconv_tune_record *r = &result.records[i];
        ck_assert_msg(strcmp(r->status, "ok") == 0, "%s: %s", r->schedule, r->error);
        ck_assert_ptr_nonnull(strstr(r->spec, " dtype=int8 in_scale=0.1 in_zero=-3"));
        ck_assert(r->median_ms > 0 && r->ratio > 0);
        sepconv_schedule s;
        ck_assert_int_eq(sepconv_schedule_parse(r->schedule, &layer, SEPCONV_TARGET_PORTABLE,
                                                &s, NULL), SEPCONV_OK);
        blocks[s.value[SEPCONV_KNOB_CHANNEL_BLOCK]] = true;
    }
    ck_assert(blocks[4] && blocks[8] && blocks[16] && blocks[32] && blocks[64]);
    sepconv_tune_result_free(&result);
    /* the log holds them all, after the default's record */
    sepconv_tune_log log;
    ck_assert_int_eq(sepconv_log_read(path, &log, NULL), SEPCONV_OK);
    ck_assert_int_ge(log.count, 6); /* the default's record, the 5, the confirmations */
    sepconv_log_free(&log);
    sepconv_layer sep = parse_layer("op=sep df=6 m=8 n=8 dk=3 " Q8 " mid_scale=0.3");
    options.kernel.backend = SEPCONV_BACKEND_TCC;
    ck_assert_msg(sepconv_tune_layer(&sep, &options, &result, &error) == SEPCONV_OK, "%s",
                  error.message);
    ck_assert_uint_eq(result.count, 1);
    ck_assert_str_eq(result.records[0].status, "ok");
    sepconv_tune_result_free(&result);
    unlink(path);
}
END_TEST

START_TEST(schedules_shows_the_pruned_space)
{
    char dir[64];
    scratch_dir(dir, sizeof dir);
    /* dw on micro-kernels: 36 schedules, one kernel */
    cli_run *r = run_sepconv(dir, NULL, "schedules op=dw df=9 m=32 dk=3 --target avx512 "
                                        "--backend tcc");
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_msg(strstr(r->out, "space for tcc: 36 schedules (36 valid), 35 repeat another's "
                                 "kernel, 0 refused by the source-size budget: 1 distinct"),
                  "%s", r->out);
    remove_dir(dir);
}
END_TEST

/* ---------------------------------------------------------------- guided */

START_TEST(the_estimate_ranks_a_good_schedule_before_a_bad_one)
{
    sepconv_layer pw = parse_layer("op=pw df=28 m=128 n=128");
    sepconv_schedule good, bad;
    /* a register tile of 7 pixels x 3 vectors against 1 x 1: loads per FMA 0.48 vs 2 */
    ck_assert_int_eq(sepconv_schedule_parse("pixel_block=7,oc_block=48", &pw,
                                            SEPCONV_TARGET_AVX512, &good, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_schedule_parse("pixel_block=1,oc_block=16", &pw,
                                            SEPCONV_TARGET_AVX512, &bad, NULL), SEPCONV_OK);
    ck_assert(sepconv_space_estimate(&pw, &good, SEPCONV_BACKEND_CC) <
              sepconv_space_estimate(&pw, &bad, SEPCONV_BACKEND_CC));
    /* tcc: the micro-kernel (pack=1) against tcc's own plain C (pack=0) */
    sepconv_layer sep = parse_layer("op=sep df=28 m=128 n=128 dk=3");
    ck_assert_int_eq(sepconv_schedule_parse("pack=1", &sep, SEPCONV_TARGET_AVX512, &good, NULL),
                     SEPCONV_OK);
    ck_assert_int_eq(sepconv_schedule_parse("pack=0", &sep, SEPCONV_TARGET_AVX512, &bad, NULL),
                     SEPCONV_OK);
    ck_assert(sepconv_space_estimate(&sep, &good, SEPCONV_BACKEND_TCC) <
              sepconv_space_estimate(&sep, &bad, SEPCONV_BACKEND_TCC));
    /* an intermediate of 56x56x128 floats (1.6 MB) past L2 against 2-row tiles */
    ck_assert_int_eq(sepconv_schedule_parse("fuse=1,tile_h=2", &sep, SEPCONV_TARGET_AVX512,
                                            &good, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_schedule_parse("fuse=0", &sep, SEPCONV_TARGET_AVX512, &bad, NULL),
                     SEPCONV_OK);
    sepconv_layer big = parse_layer("op=sep df=112 m=64 n=128 dk=3");
    good.value[SEPCONV_KNOB_FUSE] = 1;
    ck_assert(sepconv_space_estimate(&big, &good, SEPCONV_BACKEND_CC) <
              sepconv_space_estimate(&big, &bad, SEPCONV_BACKEND_CC));
    /* the guided order: the good tile among the first, the bad among the
     * last; 3 in 4 follow the estimate, every 4th is drawn at random */
    sepconv_tune_options options = sepconv_tune_defaults();
    options.kernel.backend = SEPCONV_BACKEND_CC;
    options.kernel.target = SEPCONV_TARGET_AVX512;
    sepconv_schedule *list = NULL;
    size_t count = 0;
    ck_assert_int_eq(sepconv_space_sweep(&pw, &options, NULL, 0, &list, &count, NULL, NULL),
                     SEPCONV_OK);
    ck_assert_int_gt(count, 40);
    double last = -1;
    int rising = 0, steps = 0;
    for (size_t i = 0; i + 1 < count; i++) {
        if (i % 4 == 3)
            continue; /* an explored one */
        double e = sepconv_space_estimate(&pw, &list[i], SEPCONV_BACKEND_CC);
        rising += e >= last;
        steps++;
        last = e;
    }
    ck_assert_int_eq(rising, steps); /* the ranked ones in order */
    ck_assert_int_eq(sepconv_schedule_parse("pixel_block=1,oc_block=16,pack=0,unroll=none",
                                            &pw, SEPCONV_TARGET_AVX512, &bad, NULL),
                     SEPCONV_OK);
    ck_assert_int_eq(sepconv_schedule_parse("pixel_block=7,oc_block=32,pack=1,unroll=none",
                                            &pw, SEPCONV_TARGET_AVX512, &good, NULL),
                     SEPCONV_OK);
    sepconv_schedule defaults;
    ck_assert_int_eq(sepconv_schedule_default(&pw, SEPCONV_TARGET_AVX512, &defaults, NULL),
                     SEPCONV_OK);
    /* the default, measured as the baseline anyway, comes last */
    ck_assert(memcmp(list[count - 1].value, defaults.value, sizeof defaults.value) == 0);
    size_t bad_at = count, good_at = count;
    for (size_t i = 0; i < count; i++) {
        if (memcmp(list[i].value, bad.value, sizeof bad.value) == 0)
            bad_at = i;
        if (memcmp(list[i].value, good.value, sizeof good.value) == 0)
            good_at = i;
    }
    ck_assert_uint_lt(good_at, count / 4);
    ck_assert_uint_lt(bad_at, count);
    /* (unless exploring drew it early) */
    ck_assert_msg(bad_at > count / 2 || bad_at % 4 == 3, "1x16 at %zu of %zu", bad_at, count);
    free(list);
}
END_TEST

START_TEST(a_guided_sep_sweep_starts_from_the_best_stages)
{
    char path[64];
    fresh_log(path, sizeof path);
    sepconv_layer sep = parse_layer("op=sep df=8 m=16 n=32 dk=3"), dw, pw;
    ck_assert_int_eq(sepconv_layer_split(&sep, &dw, &pw, NULL), SEPCONV_OK);
    sepconv_tune_options options = sepconv_tune_defaults();
    options.kernel.backend = SEPCONV_BACKEND_TCC;
    options.kernel.target = SEPCONV_TARGET_PORTABLE;
    options.log_path = path;
    options.trials = 2;
    sepconv_environment environment;
    ck_assert_int_eq(sepconv_environment_get(&options.kernel, &environment, NULL), SEPCONV_OK);
    /* the best dw and pw records of this environment (and a worse of each) */
    const struct { const sepconv_layer *layer; const char *schedule; double ratio; } logged[] = {
        {&dw, "channel_block=8,tile_w=4,unroll=none", 0.6},
        {&dw, "channel_block=4,tile_w=1,unroll=row", 0.9},
        {&pw, "pixel_block=2,oc_block=16,pack=0,unroll=row", 0.7},
        {&pw, "pixel_block=1,oc_block=8,pack=1,unroll=none", 0.95}};
    for (int i = 0; i < 4; i++) {
        char spec[512];
        sepconv_layer_format(logged[i].layer, spec, sizeof spec, NULL);
        sepconv_tune_record record = make_record(spec, logged[i].schedule, logged[i].ratio, "");
        record.environment = environment;
        ck_assert_int_eq(sepconv_log_append(path, &record, NULL), SEPCONV_OK);
    }
    sepconv_tune_result result;
    sepconv_error error;
    ck_assert_msg(sepconv_tune_layer(&sep, &options, &result, &error) == SEPCONV_OK, "%s",
                  error.message);
    /* the first two candidates: the composition, each stage unrolled as
     * its best, unfused and then fused in the smallest tiles */
    ck_assert_uint_eq(result.count, 2);
    const char *unfused = "channel_block=8,tile_w=4,pixel_block=2,oc_block=16,pack=0,"
                          "unroll=none,fuse=0,tile_h=2,pw_unroll=row";
    const char *fused = "channel_block=8,tile_w=4,pixel_block=2,oc_block=16,pack=0,"
                        "unroll=none,fuse=1,tile_h=1,pw_unroll=row";
    bool first_unfused = strcmp(result.records[0].schedule, unfused) == 0; /* (by ratio) */
    ck_assert_str_eq(result.records[first_unfused ? 0 : 1].schedule, unfused);
    ck_assert_str_eq(result.records[first_unfused ? 1 : 0].schedule, fused);
    sepconv_tune_result_free(&result);
    unlink(path);
}
END_TEST

/* ---------------------------------------------------------------- budget */

START_TEST(a_budget_bounds_the_whole_command)
{
    char dir[64], args[512], model[128];
    scratch_dir(dir, sizeof dir);
    snprintf(model, sizeof model, "%s/model.layers", dir);
    FILE *f = fopen(model, "w");
    ck_assert_ptr_nonnull(f);
    /* more to try than the budget allows: the sweep must stop itself */
    fputs("op=sep name=a df=56 m=32 n=64 dk=3\n"
          "op=dw name=b df=28 m=64 dk=3\n"
          "op=sep name=c df=14 m=64 n=64 dk=3 stride=2\n", f);
    fclose(f);
    /* under emulation more seconds: on a Zen 1 under qemu, 4 s split over
     * the three layers did not build even one default schedule */
    const double budget = 4.0 * emulation_factor();
    snprintf(args, sizeof args, "tune %s --budget %g --target portable --quiet --log %s/log.jsonl",
             model, budget, dir);
    double start = sepconv_seconds();
    cli_run *r = run_sepconv(dir, NULL, args);
    double took = sepconv_seconds() - start;
    ck_assert_msg(r->code == 0, "%s", r->err);
    /* the budget bounds the sweep; the 0.3 s beside it are the process's own
     * start and exit, which emulation slows by Check's timeout multiplier
     * (tests/arm64_check.sh: 4; a Zen 1 under qemu took 4.51 s) */
    const double outside = 0.3 * emulation_factor();
    ck_assert_msg(took <= budget * 1.05 + outside, "--budget %g took %.2f s (at most %.2f)",
                  budget, took, budget * 1.05 + outside);
    /* it measured, logged and printed the best so far */
    ck_assert_msg(strstr(r->out, "total: best"), "%s", r->out);
    ck_assert_msg(strstr(r->out, "not tried: the budget was spent"), "%s", r->out);
    char path[128];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    sepconv_tune_log log;
    ck_assert_int_eq(sepconv_log_read(path, &log, NULL), SEPCONV_OK);
    /* (how many fit in the budget depends on the machine: under qemu, with a
     * second test case running, two did) */
    ck_assert_uint_ge(log.count, 1);
    sepconv_log_free(&log);
    remove_dir(dir);
}
END_TEST

/* --------------------------------------------------------- compile ahead */

static int by_schedule(const void *a, const void *b)
{
    const sepconv_tune_record *x = a, *y = b;
    return strcmp(x->schedule, y->schedule);
}

START_TEST(compiling_ahead_makes_the_records_of_a_sequential_sweep)
{
    /* the same candidates, statuses and count either way */
    sepconv_layer layer = parse_layer("op=sep df=10 m=16 n=16 dk=3");
    sepconv_tune_result results[2];
    for (int sequential = 0; sequential < 2; sequential++) {
        sepconv_tune_options options = sepconv_tune_defaults();
        options.kernel.target = SEPCONV_TARGET_PORTABLE;
        options.strategy = SEPCONV_STRATEGY_RANDOM;
        options.seed = 11;
        options.trials = 14;
        options.no_log = 1;
        options.sequential = sequential;
        sepconv_error error;
        ck_assert_msg(sepconv_tune_layer(&layer, &options, &results[sequential], &error) ==
                          SEPCONV_OK, "%s", error.message);
    }
    ck_assert_uint_eq(results[0].count, results[1].count);
    ck_assert_uint_eq(results[0].pruned, results[1].pruned);
    ck_assert_uint_eq(results[0].count + results[0].not_tried, 14);
    for (int k = 0; k < 2; k++)
        qsort(results[k].records, results[k].count, sizeof *results[k].records, by_schedule);
    for (size_t i = 0; i < results[0].count; i++) {
        ck_assert_str_eq(results[0].records[i].schedule, results[1].records[i].schedule);
        ck_assert_str_eq(results[0].records[i].status, results[1].records[i].status);
        ck_assert_str_eq(results[0].records[i].spec, results[1].records[i].spec);
    }
    sepconv_tune_result_free(&results[0]);
    sepconv_tune_result_free(&results[1]);
}
END_TEST

Suite *tune_suite(void)
{
    Suite *suite = suite_create("tune");
    TCase *c = tcase_create("tune");
    tcase_set_timeout(c, 900);
    tcase_add_test(c, space_size_is_the_product_less_the_invalid);
    tcase_add_test(c, shards_partition_the_sweep);
    tcase_add_test(c, random_sweeps_are_seeded);
    tcase_add_test(c, a_schedule_is_judged_by_its_worst_record);
    tcase_add_test(c, the_best_are_timed_again_and_keep_their_worse_figure);
    tcase_add_test(c, records_round_trip);
    tcase_add_test(c, corrupt_lines_are_skipped_and_named);
    tcase_add_test(c, selection_honours_the_environment);
    tcase_add_test(c, wrong_kernels_are_recorded_failed_and_never_chosen);
    tcase_add_test(c, auto_schedule_reads_the_log);
    tcase_add_test(c, an_append_never_merges_with_a_torn_line);
    tcase_add_test(c, a_fifo_log_is_refused_without_blocking);
    tcase_add_test(c, unique_drops_repeats_and_keeps_the_order);
    tcase_add_test(c, tune_keeps_the_status_without_an_error_buffer);
    tcase_add_test(c, a_budget_leaves_candidates_not_tried);
    tcase_add_test(c, a_budget_stops_a_slow_compiler);
    tcase_add_test(c, a_budget_cuts_a_hanging_candidates_compile);
    tcase_add_test(c, the_missing_record_message_names_the_layer);
    tcase_add_test(c, progress_lines_show_each_candidates_own_ratio);
    tcase_add_test(c, tune_takes_a_source_size_limit);
    tcase_add_test(c, log_tools_read_stdin_refuse_missing_files_and_merge_to_stdout);
    tcase_add_test(c, a_fifo_as_a_log_fails_at_once);
    tcase_add_test(c, a_written_log_replaces_the_file_atomically);
    tcase_add_test(c, tune_then_best_use_one_default_backend);
    tcase_add_test(c, records_name_the_resolved_target_and_match_only_it);
    tcase_add_test(c, pruning_draws_no_refused_and_no_repeated_schedule);
    tcase_add_test(c, schedules_shows_the_pruned_space);
    tcase_add_test(c, int8_layers_are_tuned_on_their_channel_block);
    tcase_add_test(c, the_estimate_ranks_a_good_schedule_before_a_bad_one);
    tcase_add_test(c, a_guided_sep_sweep_starts_from_the_best_stages);
    tcase_add_test(c, a_budget_bounds_the_whole_command);
    tcase_add_test(c, compiling_ahead_makes_the_records_of_a_sequential_sweep);
    suite_add_tcase(suite, c);
    return suite;
}
