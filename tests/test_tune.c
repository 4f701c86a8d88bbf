/*
 * test_tune.c -- the schedule space, sweeps and shards, the tuning log
 * (round trip, corrupt lines, selection by environment), a wrong kernel
 * never chosen, and the "auto" schedule.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests.h"

START_TEST(space_size_is_the_product_less_the_invalid)
{
    /* by hand for sep, portable: channel_block 5, tile_w 4, pixel_block 6,
     * oc_block 4, pack 2, unroll 3, fuse 2, tile_h 4 */
    ck_assert_int_eq(sepconv_space_product(SEPCONV_OP_SEP, SEPCONV_TARGET_PORTABLE),
                     5 * 4 * 6 * 4 * 2 * 3 * 2 * 4);
    /* fuse=0 leaves tile_h unused: 3 of its 4 values are invalid there */
    ck_assert_int_eq(sepconv_space_size(SEPCONV_OP_SEP, SEPCONV_TARGET_PORTABLE),
                     5 * 4 * 6 * 4 * 2 * 3 * (1 + 4));
    for (int t = 0; t < SEPCONV_TARGET_COUNT; t++)
        for (int op = 0; op < 4; op++) {
            int64_t product = 1, tile_h = 1, fuse = 1;
            for (int k = 0; k < SEPCONV_KNOB_COUNT; k++) {
                sepconv_knob_info info;
                if (sepconv_knob_describe((sepconv_op)op, (sepconv_target)t, (sepconv_knob)k,
                                          &info, NULL) != SEPCONV_OK)
                    continue;
                product *= info.count;
                if (k == SEPCONV_KNOB_TILE_H)
                    tile_h = info.count;
                if (k == SEPCONV_KNOB_FUSE)
                    fuse = info.count;
            }
            int64_t invalid = op == SEPCONV_OP_SEP ? product / fuse / tile_h * (tile_h - 1) : 0;
            ck_assert_int_eq(sepconv_space_product((sepconv_op)op, (sepconv_target)t), product);
            ck_assert_int_eq(sepconv_space_size((sepconv_op)op, (sepconv_target)t),
                             product - invalid);
        }
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
        ck_assert_uint_eq(total, (size_t)sepconv_space_size(SEPCONV_OP_DW,
                                                            SEPCONV_TARGET_PORTABLE));
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
    sepconv_tune_options options = sepconv_tune_defaults();
    options.kernel.generate.template_dir = dir;
    options.log_path = path;
    options.strategy = SEPCONV_STRATEGY_GRID;
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
    ck_assert_uint_eq(result.count, (size_t)sepconv_space_size(SEPCONV_OP_DW,
                                                                SEPCONV_TARGET_PORTABLE));
    ck_assert_uint_eq(failed, result.count / 4); /* tile_w takes 4 values */
    /* failures sort last; the log holds every candidate; best is never one */
    ck_assert_str_eq(result.records[result.count - 1].status, "failed");
    sepconv_tune_log log;
    ck_assert_int_eq(sepconv_log_read(path, &log, NULL), SEPCONV_OK);
    ck_assert_uint_eq(log.count, result.count + 1); /* and the default's record */
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

Suite *tune_suite(void)
{
    Suite *suite = suite_create("tune");
    TCase *c = tcase_create("tune");
    tcase_set_timeout(c, 900);
    tcase_add_test(c, space_size_is_the_product_less_the_invalid);
    tcase_add_test(c, shards_partition_the_sweep);
    tcase_add_test(c, random_sweeps_are_seeded);
    tcase_add_test(c, records_round_trip);
    tcase_add_test(c, corrupt_lines_are_skipped_and_named);
    tcase_add_test(c, selection_honours_the_environment);
    tcase_add_test(c, wrong_kernels_are_recorded_failed_and_never_chosen);
    tcase_add_test(c, auto_schedule_reads_the_log);
    suite_add_tcase(suite, c);
    return suite;
}
