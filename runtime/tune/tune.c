/*
 * tune.c -- autotuning: the schedule space, the candidates of a sweep, and
 * the measurement of each candidate interleaved with the default schedule,
 * so that a noisy machine slows both alike and their ratio holds.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "tune/space.h"

#define ROUNDS_MIN 5
#define ROUNDS_MAX 25
#define SAMPLE_SECONDS 2e-4     /* a timed sample runs the kernel this long */
#define MEASURE_CAP_SECONDS 1.0 /* per candidate, after compiling */
#define STABLE 0.01             /* medians within 1% of the last round's */

/* The wall-clock bound of a sweep: an absolute deadline on the monotonic
 * clock, or none. */
typedef struct deadline {
    bool set;
    double at;
} deadline;

/* Seconds left before the deadline (a large number when there is none). */
static double time_left(const deadline *d)
{
    return d->set ? d->at - sepconv_seconds() : 1e30;
}

/* The ranges of the knobs an op has, in knob order. */
static int knob_ranges(sepconv_op op, sepconv_target target, sepconv_knob_info *infos,
                       sepconv_knob *knobs)
{
    int count = 0;
    for (int k = 0; k < SEPCONV_KNOB_COUNT; k++)
        if (sepconv_knob_describe(op, target, (sepconv_knob)k, &infos[count], NULL) ==
            SEPCONV_OK)
            knobs[count++] = (sepconv_knob)k;
    return count;
}

/* The product of the knob ranges of an op. */
int64_t sepconv_space_product(sepconv_op op, sepconv_target target)
{
    sepconv_knob_info infos[SEPCONV_KNOB_COUNT];
    sepconv_knob knobs[SEPCONV_KNOB_COUNT];
    int count = knob_ranges(op, target, infos, knobs);
    int64_t product = 1;
    for (int i = 0; i < count; i++)
        product *= infos[i].count;
    return product;
}

/* Whether a schedule is one of the documented invalid combinations. */
static bool schedule_invalid(const sepconv_schedule *s)
{
    if (s->op != SEPCONV_OP_SEP || s->value[SEPCONV_KNOB_FUSE] != 0)
        return false;
    sepconv_knob_info tile;
    sepconv_knob_describe(s->op, s->target, SEPCONV_KNOB_TILE_H, &tile, NULL);
    return s->value[SEPCONV_KNOB_TILE_H] != tile.default_value;
}

/* Schedule number `index` of the product. */
sepconv_status sepconv_space_schedule(sepconv_op op, sepconv_target target, int64_t index,
                                      sepconv_schedule *schedule, sepconv_error *error)
{
    if (index < 0 || index >= sepconv_space_product(op, target))
        return sepconv_fail(error, SEPCONV_INVALID, "schedule %lld is outside the space",
                            (long long)index);
    sepconv_knob_info infos[SEPCONV_KNOB_COUNT];
    sepconv_knob knobs[SEPCONV_KNOB_COUNT];
    int count = knob_ranges(op, target, infos, knobs);
    memset(schedule, 0, sizeof *schedule);
    schedule->op = op;
    schedule->target = target;
    for (int i = count - 1; i >= 0; i--) { /* the first knob varies slowest */
        schedule->value[knobs[i]] = infos[i].values[index % infos[i].count];
        index /= infos[i].count;
    }
    if (schedule_invalid(schedule))
        return sepconv_fail(error, SEPCONV_INVALID,
                            "fuse=0 leaves tile_h unused: only its default is a schedule");
    return SEPCONV_OK;
}

/* The number of valid schedules. */
int64_t sepconv_space_size(sepconv_op op, sepconv_target target)
{
    int64_t product = sepconv_space_product(op, target), valid = 0;
    sepconv_schedule schedule;
    for (int64_t i = 0; i < product; i++)
        valid += sepconv_space_schedule(op, target, i, &schedule, NULL) == SEPCONV_OK;
    return valid;
}

/* The candidates of a sweep: strategy order, trials, shard. */
sepconv_status sepconv_space_candidates(sepconv_op op, sepconv_target target,
                                        sepconv_strategy strategy, uint64_t seed,
                                        int64_t trials, int shard, int shards,
                                        sepconv_schedule **candidates, size_t *count,
                                        sepconv_error *error)
{
    if (shards < 1 || shard < 0 || shard >= shards)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "shard %d/%d is not valid (expected I/N with 0 <= I < N)",
                            shard, shards);
    if (trials < 0)
        return sepconv_fail(error, SEPCONV_INVALID, "trials must be 0 (all) or more");
    int64_t product = sepconv_space_product(op, target);
    sepconv_schedule *all = malloc((size_t)product * sizeof *all);
    if (!all)
        return sepconv_fail(error, SEPCONV_NOMEM, "out of memory for %lld schedules",
                            (long long)product);
    size_t valid = 0;
    for (int64_t i = 0; i < product; i++)
        if (sepconv_space_schedule(op, target, i, &all[valid], NULL) == SEPCONV_OK)
            valid++;
    if (strategy == SEPCONV_STRATEGY_RANDOM) { /* seeded Fisher-Yates */
        uint64_t state = seed;
        for (size_t i = valid; i > 1; i--) {
            size_t j = (size_t)(sepconv_random_next(&state) % i);
            sepconv_schedule swap = all[i - 1];
            all[i - 1] = all[j];
            all[j] = swap;
        }
    }
    size_t take = trials > 0 && (size_t)trials < valid ? (size_t)trials : valid;
    size_t kept = 0;
    for (size_t k = 0; k < take; k++)
        if (k % (size_t)shards == (size_t)shard)
            all[kept++] = all[k];
    *candidates = all;
    *count = kept;
    return SEPCONV_OK;
}

/* The defaults of a sweep: tcc, grid, one shard, the default log. */
sepconv_tune_options sepconv_tune_defaults(void)
{
    sepconv_tune_options options;
    memset(&options, 0, sizeof options);
    options.kernel = sepconv_kernel_defaults();
    options.strategy = SEPCONV_STRATEGY_GRID;
    options.seed = 1;
    options.shards = 1;
    return options;
}

/* Times `reps` runs of a kernel, in seconds per run. */
static double time_runs(const sepconv_kernel *kernel, const sepconv_buffers *b, int reps)
{
    double start = sepconv_seconds();
    for (int r = 0; r < reps; r++)
        sepconv_kernel_run(kernel, b->input, b->output, NULL);
    return (sepconv_seconds() - start) / reps;
}

/* Measures a candidate against the baseline, interleaved round by round,
 * until the candidate's median settles, the time cap is reached or the
 * sweep's deadline passes (after one round: a median needs a sample). */
static void measure(const sepconv_kernel *candidate, const sepconv_kernel *baseline,
                    const sepconv_buffers *b, const deadline *until,
                    sepconv_tune_record *record)
{
    double first = time_runs(candidate, b, 1); /* warm-up, and the sample size */
    time_runs(baseline, b, 1);
    int reps = first > 0 ? (int)ceil(SAMPLE_SECONDS / first) : 1;
    if (reps < 1)
        reps = 1;
    if (reps > 1000)
        reps = 1000;
    double mine[ROUNDS_MAX], theirs[ROUNDS_MAX], sorted[ROUNDS_MAX];
    double start = sepconv_seconds(), last_median = 0;
    int rounds = 0;
    while (rounds < ROUNDS_MAX) {
        theirs[rounds] = time_runs(baseline, b, reps);
        mine[rounds] = time_runs(candidate, b, reps);
        rounds++;
        if (time_left(until) <= 0)
            break;
        if (rounds < ROUNDS_MIN)
            continue;
        memcpy(sorted, mine, (size_t)rounds * sizeof *mine);
        double median = sepconv_median(sorted, (size_t)rounds);
        if (fabs(median - last_median) <= STABLE * median ||
            sepconv_seconds() - start > MEASURE_CAP_SECONDS)
            break;
        last_median = median;
    }
    memcpy(sorted, mine, (size_t)rounds * sizeof *mine);
    record->median_ms = sepconv_median(sorted, (size_t)rounds) * 1e3;
    /* sepconv_quantile sorts in place: later calls on `sorted` are cheap */
    record->spread = (sepconv_quantile(sorted, (size_t)rounds, 0.75) -
                      sepconv_quantile(sorted, (size_t)rounds, 0.25)) /
                     (record->median_ms * 1e-3);
    memcpy(sorted, theirs, (size_t)rounds * sizeof *theirs);
    record->baseline_ms = sepconv_median(sorted, (size_t)rounds) * 1e3;
    record->ratio = record->median_ms / record->baseline_ms;
}

/* Fills a record's identity: spec, op, schedule, environment, time. */
static void start_record(sepconv_tune_record *record, const char *spec,
                         const sepconv_layer *layer, const sepconv_schedule *schedule,
                         const sepconv_environment *environment)
{
    memset(record, 0, sizeof *record);
    snprintf(record->spec, sizeof record->spec, "%s", spec);
    snprintf(record->op, sizeof record->op, "%s", sepconv_op_name(layer->op));
    sepconv_schedule_format(schedule, record->schedule, sizeof record->schedule, NULL);
    record->environment = *environment;
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(record->timestamp, sizeof record->timestamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
}

/* The compile timeout of a candidate: its own limit, cut to the time left
 * in the sweep's budget. */
static double compile_timeout(const sepconv_cc_options *cc, const deadline *until)
{
    double own = cc->timeout_seconds;
#ifdef SEPCONV_CC_TIMEOUT_DEFAULT
    if (!(own > 0))
        own = SEPCONV_CC_TIMEOUT_DEFAULT;
#endif
    if (!until->set)
        return own;
    double left = time_left(until);
    if (left < 1e-3)
        left = 1e-3; /* 0 would mean "the default" */
    return own > 0 && own < left ? own : left;
}

/* Builds a kernel for a schedule with its weights, its compile bounded by
 * the deadline. */
static sepconv_status build(const sepconv_layer *layer, const sepconv_tune_options *o,
                            const char *schedule_text, const sepconv_tensors *tensors,
                            const deadline *until, sepconv_kernel **kernel,
                            sepconv_error *error)
{
    *kernel = NULL;
    if (time_left(until) <= 0)
        return sepconv_fail(error, SEPCONV_LIMIT, "the budget of %.1f s is spent",
                            o->budget_seconds);
    sepconv_kernel_options options = o->kernel;
    options.schedule = schedule_text;
    options.verify = 1;
    options.cc.timeout_seconds = compile_timeout(&o->kernel.cc, until);
    sepconv_status status = sepconv_kernel_create(layer, &options, kernel, error);
    if (status == SEPCONV_OK)
        status = sepconv_kernel_set_weights(*kernel, tensors, error);
    if (status != SEPCONV_OK) {
        sepconv_kernel_free(*kernel);
        *kernel = NULL;
    }
    return status;
}

/* Orders records: successes by ratio, then failures. */
static int by_ratio(const void *a, const void *b)
{
    const sepconv_tune_record *x = a, *y = b;
    bool x_ok = strcmp(x->status, "ok") == 0, y_ok = strcmp(y->status, "ok") == 0;
    if (x_ok != y_ok)
        return x_ok ? -1 : 1;
    return (x->ratio > y->ratio) - (x->ratio < y->ratio);
}

/* Tunes a layer: compiles, verifies and times each candidate interleaved
 * with the default schedule, appending a record per candidate to the log
 * (unless no_log).  options->budget_seconds, when not 0, bounds the whole
 * call on the wall clock: each compile's timeout is cut to the time left,
 * timing stops at it, and the candidates left are counted in not_tried.
 * LIMIT when the budget ran out before the default schedule was built.
 * Records come back best first (lowest ratio), failures last. */
sepconv_status sepconv_tune_layer(const sepconv_layer *layer,
                                  const sepconv_tune_options *options,
                                  sepconv_tune_result *result, sepconv_error *error)
{
    if (!layer || !options || !result)
        return sepconv_fail(error, SEPCONV_INVALID, "tune: missing arguments");
    memset(result, 0, sizeof *result);
    /* the schedule space is an instruction set's: resolve auto, refuse an
     * ISA this CPU lacks before anything runs */
    sepconv_tune_options resolved = *options;
    sepconv_status resolving = sepconv_target_resolve(options->kernel.target,
                                                      &resolved.kernel.target, error);
    if (resolving != SEPCONV_OK)
        return resolving;
    options = &resolved;
    /* the budget bounds the whole call, the default schedule included */
    deadline until = {options->budget_seconds > 0,
                      sepconv_seconds() + options->budget_seconds};
    char log_path[4096] = "";
    sepconv_status status = SEPCONV_OK;
    if (!options->no_log) {
        if (options->log_path)
            snprintf(log_path, sizeof log_path, "%s", options->log_path);
        else
            status = sepconv_log_default_path(log_path, sizeof log_path, error);
    }
    sepconv_environment environment;
    if (status == SEPCONV_OK)
        status = sepconv_environment_get(&options->kernel, &environment, error);
    char spec[512];
    sepconv_cost cost;
    if (status == SEPCONV_OK)
        status = sepconv_layer_format(layer, spec, sizeof spec, error);
    if (status == SEPCONV_OK)
        status = sepconv_cost_compute(layer, &cost, error);
    sepconv_schedule *candidates = NULL;
    size_t count = 0;
    if (status == SEPCONV_OK)
        status = sepconv_space_candidates(layer->op, options->kernel.target,
                                          options->strategy, options->seed, options->trials,
                                          options->shard, options->shards, &candidates,
                                          &count, error);
    sepconv_buffers b;
    memset(&b, 0, sizeof b);
    if (status == SEPCONV_OK)
        status = sepconv_buffers_alloc(layer, &b, error);
    if (status == SEPCONV_OK) {
        result->records = calloc(count ? count : 1, sizeof *result->records);
        if (!result->records)
            status = sepconv_fail(error, SEPCONV_NOMEM, "tune: out of memory");
    }
    sepconv_tensors tensors = sepconv_buffers_tensors(&b);
    sepconv_kernel *baseline = NULL;
    if (status == SEPCONV_OK) {
        sepconv_buffers_fill_random(layer, &b, options->seed);
        result->macs = cost.macs;
        double start = sepconv_seconds();
        status = sepconv_reference_run(layer, &tensors, b.output, error);
        result->reference_ms = (sepconv_seconds() - start) * 1e3;
    }
    if (status == SEPCONV_OK) {
        status = build(layer, options, NULL, &tensors, &until, &baseline, error);
        if (status != SEPCONV_OK && time_left(&until) <= 0) {
            status = SEPCONV_LIMIT; /* a compile cut short by the budget */
            sepconv_error_prefix(error, "the budget of %.1f s ran out while building the "
                                        "default schedule", options->budget_seconds);
        } else if (status != SEPCONV_OK) {
            sepconv_error_prefix(error, "the default schedule");
        }
    }
    if (status == SEPCONV_OK) {
        sepconv_schedule defaults;
        sepconv_schedule_default(layer, options->kernel.target, &defaults, NULL);
        start_record(&result->baseline, spec, layer, &defaults, &environment);
        snprintf(result->baseline.status, sizeof result->baseline.status, "ok");
        measure(baseline, baseline, &b, &until, &result->baseline);
        /* logged too, so that "best" never picks a schedule slower than the
         * default when no candidate beat it */
        if (log_path[0])
            status = sepconv_log_append(log_path, &result->baseline, error);
    }
    double start = sepconv_seconds();
    const sepconv_tune_record *best = NULL;
    for (size_t i = 0; status == SEPCONV_OK && i < count; i++) {
        if (time_left(&until) <= 0) {
            result->not_tried = count - i;
            break;
        }
        sepconv_tune_record *record = &result->records[result->count++];
        start_record(record, spec, layer, &candidates[i], &environment);
        sepconv_error failure;
        sepconv_kernel *kernel = NULL;
        build(layer, options, record->schedule, &tensors, &until, &kernel, &failure);
        if (!kernel && time_left(&until) <= 0) {
            /* cut short by the budget: says nothing of the schedule */
            result->count--;
            result->not_tried = count - i;
            break;
        }
        if (kernel) {
            snprintf(record->status, sizeof record->status, "ok");
            measure(kernel, baseline, &b, &until, record);
            if (!best || record->ratio < best->ratio)
                best = record;
        } else {
            snprintf(record->status, sizeof record->status, "failed");
            snprintf(record->error, sizeof record->error, "%.255s", failure.message);
        }
        sepconv_kernel_free(kernel);
        if (log_path[0])
            status = sepconv_log_append(log_path, record, error);
        if (options->progress) {
            sepconv_tune_progress progress = {layer, i + 1, count,
                                              sepconv_seconds() - start, record, best};
            options->progress(options->progress_context, &progress);
        }
    }
    sepconv_kernel_free(baseline);
    sepconv_buffers_free(&b);
    free(candidates);
    if (status != SEPCONV_OK) {
        sepconv_tune_result_free(result);
        return status;
    }
    qsort(result->records, result->count, sizeof *result->records, by_ratio);
    return SEPCONV_OK;
}

/* Frees a tuning result. */
void sepconv_tune_result_free(sepconv_tune_result *result)
{
    if (!result)
        return;
    free(result->records);
    result->records = NULL;
    result->count = 0;
}
