/*
 * tune.c -- autotuning: the schedule space, the candidates of a sweep, and
 * the measurement of each candidate interleaved with the default schedule,
 * so that a noisy machine slows both alike and their ratio holds.
 */
#define _GNU_SOURCE /* pthread_setaffinity_np */
#include <math.h>
#include <pthread.h>
#include <sched.h>
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
#define VERIFY_REFERENCES 12.0  /* a verification's time in reference runs (5 passes, each a
                                   run and a magnitude; slack for the other core) */

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

/* The defaults of a sweep: tcc, guided, one shard, the default log. */
sepconv_tune_options sepconv_tune_defaults(void)
{
    sepconv_tune_options options;
    memset(&options, 0, sizeof options);
    options.kernel = sepconv_kernel_defaults();
    options.strategy = SEPCONV_STRATEGY_GUIDED;
    options.seed = 1;
    options.shards = 1;
    return options;
}

/* What a sweep's kernels are given and timed on: the layer's float
 * buffers, seeded, or for a dtype=int8 layer seeded int8 tensors. */
typedef struct tune_data {
    bool int8;
    sepconv_buffers b;
    sepconv_tensors tensors; /* the view of b */
    sepconv_qtensors q;      /* int8: in `block`, with the output */
    int8_t *qoutput;
    void *block;
} tune_data;

/* Allocates and seeds a layer's data. */
static sepconv_status data_alloc(const sepconv_layer *layer, uint64_t seed, tune_data *d,
                                 sepconv_error *error)
{
    memset(d, 0, sizeof *d);
    d->int8 = layer->dtype == SEPCONV_DTYPE_INT8;
    if (d->int8) {
        d->block = sepconv_qtensors_seeded(layer, &d->q, &d->qoutput);
        return d->block ? SEPCONV_OK
                        : sepconv_fail(error, SEPCONV_NOMEM, "tune: out of memory for the "
                                                             "int8 tensors");
    }
    sepconv_status status = sepconv_buffers_alloc(layer, &d->b, error);
    if (status == SEPCONV_OK) {
        sepconv_buffers_fill_random(layer, &d->b, seed);
        d->tensors = sepconv_buffers_tensors(&d->b);
    }
    return status;
}

static void data_free(tune_data *d)
{
    sepconv_buffers_free(&d->b);
    free(d->block);
    memset(d, 0, sizeof *d);
}

/* The reference's run on the data (its time is the sweep's yardstick). */
static sepconv_status data_reference(const sepconv_layer *layer, tune_data *d,
                                     sepconv_error *error)
{
    return d->int8 ? sepconv_reference_run_int8(layer, &d->q, d->qoutput, error)
                   : sepconv_reference_run(layer, &d->tensors, d->b.output, error);
}

/* Times `reps` runs of a kernel, in seconds per run. */
static double time_runs(const sepconv_kernel *kernel, const tune_data *d, int reps)
{
    double start = sepconv_seconds();
    for (int r = 0; r < reps; r++) {
        if (d->int8)
            sepconv_kernel_run_int8(kernel, d->q.input, d->qoutput, NULL);
        else
            sepconv_kernel_run(kernel, d->b.input, d->b.output, NULL);
    }
    return (sepconv_seconds() - start) / reps;
}

/* Measures a candidate against the baseline, interleaved round by round,
 * until the candidate's median settles, the time cap is reached or the
 * sweep's deadline passes (after ROUNDS_MIN rounds all the same: a median
 * of one or two rounds let a preempted baseline round pass for a 10x
 * speed-up; 5 rounds of a few milliseconds each stay within the budget's
 * 5%). */
static void measure(const sepconv_kernel *candidate, const sepconv_kernel *baseline,
                    const tune_data *b, const deadline *until,
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
        if (rounds < ROUNDS_MIN)
            continue; /* past the deadline too: a median of fewer is noise */
        if (time_left(until) <= 0)
            break;
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

/* ------------------------------------------------------------ confirm */

/* The few best kernels of a sweep are kept and timed again once the
 * compile thread has stopped: a measurement beside a compile can be lucky,
 * and the best of many noisy ones is (sep1's pointwise 112x112x32: 0.59x
 * of the default in a sweep, 1.1x in make bench). */
#define CONFIRM_COUNT 3

typedef struct kept {
    sepconv_kernel *kernel[CONFIRM_COUNT];
    size_t record[CONFIRM_COUNT]; /* index in the result's records */
    int count;
} kept;

/* Keeps a measured kernel if it is among the best so far, freeing the
 * one it displaces (or itself). */
static void keep_best(kept *k, const sepconv_tune_record *records, size_t index,
                      sepconv_kernel *kernel)
{
    if (k->count < CONFIRM_COUNT) {
        k->kernel[k->count] = kernel;
        k->record[k->count++] = index;
        return;
    }
    int worst = 0;
    for (int i = 1; i < k->count; i++)
        if (records[k->record[i]].ratio > records[k->record[worst]].ratio)
            worst = i;
    if (records[index].ratio >= records[k->record[worst]].ratio) {
        sepconv_kernel_free(kernel);
        return;
    }
    sepconv_kernel_free(k->kernel[worst]);
    k->kernel[worst] = kernel;
    k->record[worst] = index;
}

/* The time to keep for confirming: CONFIRM_COUNT measurements of the
 * fewest rounds (and the warm-up) of a candidate and the baseline, each
 * capped, and never more than a quarter of the time left (under qemu or
 * valgrind a sample is slow, and a short budget must still try some). */
static double confirm_reserve(const sepconv_tune_record *baseline, const deadline *until)
{
    double sample = fmax(SAMPLE_SECONDS, baseline->median_ms * 1e-3);
    double reserve = CONFIRM_COUNT * fmin(MEASURE_CAP_SECONDS, 2.0 * (ROUNDS_MIN + 1) * sample);
    return fmin(reserve, 0.25 * fmax(0.0, time_left(until)));
}

/* Times the kept kernels again; each record keeps the worse of its two
 * measurements, and the new one is logged (the log's best judges a
 * schedule by its worst record). */
static sepconv_status confirm(kept *k, const sepconv_kernel *baseline, const tune_data *b,
                              const deadline *until, sepconv_tune_record *records,
                              const char *log_path, sepconv_error *error)
{
    sepconv_status status = SEPCONV_OK;
    for (int i = 0; i < k->count; i++) {
        sepconv_tune_record *record = &records[k->record[i]];
        if (status == SEPCONV_OK && time_left(until) > 0) {
            sepconv_tune_record again = *record;
            measure(k->kernel[i], baseline, b, until, &again);
            if (log_path[0])
                status = sepconv_log_append(log_path, &again, error);
            if (again.ratio > record->ratio)
                *record = again;
        }
        sepconv_kernel_free(k->kernel[i]);
    }
    k->count = 0;
    return status;
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
                            const char *schedule_text, const tune_data *data,
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
        status = data->int8 ? sepconv_kernel_set_qweights(*kernel, &data->q, error)
                            : sepconv_kernel_set_weights(*kernel, &data->tensors, error);
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


/* ------------------------------------------------------- compile ahead */

/* One candidate built (or not) for the timing loop. */
typedef struct built {
    sepconv_kernel *kernel;
    sepconv_error failure;
    bool cut;     /* the budget ran out before or during its build */
    bool refused; /* the source-size budget refused it while rendering */
} built;

/* What building candidates needs, on whichever thread builds them. */
typedef struct builder {
    const sepconv_layer *layer;
    const sepconv_tune_options *options;
    const tune_data *data;
    const deadline *until;
    const sepconv_schedule *candidates;
    size_t count;
} builder;

/* Builds candidate i.  A compile the budget cut says nothing of its
 * schedule (cut); a source the size budget refused while it was rendered
 * (the layer's lower bound let it through) is dropped like those pruned
 * before the sweep, never recorded. */
static void build_candidate(const builder *w, size_t i, built *out)
{
    memset(out, 0, sizeof *out);
    char text[256];
    sepconv_schedule_format(&w->candidates[i], text, sizeof text, NULL);
    sepconv_status status = build(w->layer, w->options, text, w->data, w->until,
                                  &out->kernel, &out->failure);
    if (status != SEPCONV_OK && time_left(w->until) <= 0)
        out->cut = true;
    else if (status == SEPCONV_LIMIT && strstr(out->failure.message, "source-size budget"))
        out->refused = true;
}

/* Candidates compile ahead on a thread of their own, into a queue of
 * AHEAD kernels that the timing loop takes in order.  Timing stays quiet:
 * for the sweep the timing thread is pinned to one CPU and the compile
 * thread (and the compilers it starts, which inherit its affinity) to the
 * others, so a compile never shares the core that times; with one usable
 * CPU, or kernels of several threads (timed on every CPU), there is no
 * compile thread and candidates build in turn. */
#define AHEAD 2
typedef struct pipeline {
    builder work;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    built slots[AHEAD];
    size_t produced, consumed; /* candidates built; taken by the timing loop */
    bool stop;                 /* the timing loop is done: build no more */
    bool started;
} pipeline;

static void *compile_ahead(void *context)
{
    pipeline *p = context;
    for (size_t i = 0; i < p->work.count; i++) {
        pthread_mutex_lock(&p->lock);
        while (!p->stop && p->produced - p->consumed == AHEAD)
            pthread_cond_wait(&p->changed, &p->lock);
        bool stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        built b;
        build_candidate(&p->work, i, &b);
        pthread_mutex_lock(&p->lock);
        p->slots[i % AHEAD] = b;
        p->produced++;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        if (b.cut)
            break; /* the budget is spent: the loop stops at this one */
    }
    return NULL;
}

/* Splits the usable CPUs: the first for timing, the rest for compiling;
 * false with fewer than two. */
static bool split_cpus(cpu_set_t *timing, cpu_set_t *compiling)
{
    cpu_set_t all;
    if (sched_getaffinity(0, sizeof all, &all) != 0 || CPU_COUNT(&all) < 2)
        return false;
    CPU_ZERO(timing);
    *compiling = all;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) {
            CPU_SET(c, timing);
            CPU_CLR(c, compiling);
            break;
        }
    return true;
}

/* Starts the compile thread; false (then candidates build in turn) when
 * there is one CPU or no thread. */
static bool pipeline_start(pipeline *p, cpu_set_t *saved)
{
    cpu_set_t timing, compiling;
    if (!split_cpus(&timing, &compiling))
        return false;
    if (pthread_getaffinity_np(pthread_self(), sizeof *saved, saved) != 0)
        return false;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setaffinity_np(&attr, sizeof compiling, &compiling);
    p->started = pthread_create(&p->thread, &attr, compile_ahead, p) == 0;
    pthread_attr_destroy(&attr);
    if (!p->started) {
        pthread_cond_destroy(&p->changed);
        pthread_mutex_destroy(&p->lock);
        return false;
    }
    pthread_setaffinity_np(pthread_self(), sizeof timing, &timing);
    return true;
}

/* Takes candidate i, waiting for the compile thread (or building it here). */
static void pipeline_take(pipeline *p, size_t i, built *out)
{
    if (!p->started) {
        build_candidate(&p->work, i, out);
        return;
    }
    pthread_mutex_lock(&p->lock);
    while (p->produced <= i)
        pthread_cond_wait(&p->changed, &p->lock);
    *out = p->slots[i % AHEAD];
    p->consumed++;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

/* Stops the compile thread, frees what it built that was not taken, and
 * gives the timing thread its CPUs back. */
static void pipeline_stop(pipeline *p, const cpu_set_t *saved)
{
    if (!p->started)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    for (size_t i = p->consumed; i < p->produced; i++)
        sepconv_kernel_free(p->slots[i % AHEAD].kernel);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    pthread_setaffinity_np(pthread_self(), sizeof *saved, saved);
}

/* ------------------------------------------------------------- seeding */

/* The best schedule of `layer` in the log for this environment, parsed. */
static bool log_best(const sepconv_tune_log *log, const sepconv_layer *layer,
                     const sepconv_environment *environment, sepconv_target target,
                     sepconv_schedule *schedule)
{
    char spec[512];
    if (sepconv_layer_format(layer, spec, sizeof spec, NULL) != SEPCONV_OK)
        return false;
    const sepconv_tune_record *best = sepconv_log_best(log, spec, environment);
    return best && sepconv_schedule_parse(best->schedule, layer, target, schedule, NULL) ==
                       SEPCONV_OK;
}

/* The seeds of a guided sep sweep: the log's best dw and best pw
 * schedules of its two stages (this environment) composed, each stage
 * unrolled as its best (unroll, pw_unroll), unfused, and fused in row
 * tiles and in pixel tiles of every tile_h; none without a record of
 * either. */
#define SEEDS_MAX (1 + 2 * SEPCONV_KNOB_VALUES_MAX)
static size_t sep_seeds(const sepconv_layer *layer, const sepconv_tune_options *o,
                        const char *log_path, const sepconv_environment *environment,
                        sepconv_schedule *seeds)
{
    sepconv_layer dw, pw;
    sepconv_tune_log log;
    if (layer->op != SEPCONV_OP_SEP || o->strategy != SEPCONV_STRATEGY_GUIDED ||
        !log_path[0] || sepconv_layer_split(layer, &dw, &pw, NULL) != SEPCONV_OK ||
        sepconv_log_read(log_path, &log, NULL) != SEPCONV_OK)
        return 0;
    sepconv_target target = o->kernel.target;
    sepconv_schedule best_dw, best_pw, base;
    bool have_dw = log_best(&log, &dw, environment, target, &best_dw);
    bool have_pw = log_best(&log, &pw, environment, target, &best_pw);
    sepconv_log_free(&log);
    sepconv_knob_info tile_h;
    if ((!have_dw && !have_pw) ||
        sepconv_schedule_default(layer, target, &base, NULL) != SEPCONV_OK ||
        sepconv_knob_describe(layer->op, target, SEPCONV_KNOB_TILE_H, &tile_h, NULL) !=
            SEPCONV_OK)
        return 0;
    const sepconv_knob from_dw[] = {SEPCONV_KNOB_CHANNEL_BLOCK, SEPCONV_KNOB_TILE_W,
                                    SEPCONV_KNOB_UNROLL};
    const sepconv_knob from_pw[] = {SEPCONV_KNOB_PIXEL_BLOCK, SEPCONV_KNOB_OC_BLOCK,
                                    SEPCONV_KNOB_PACK};
    for (int k = 0; have_dw && k < 3; k++)
        base.value[from_dw[k]] = best_dw.value[from_dw[k]];
    for (int k = 0; have_pw && k < 3; k++)
        base.value[from_pw[k]] = best_pw.value[from_pw[k]];
    if (have_pw)
        base.value[SEPCONV_KNOB_PW_UNROLL] = best_pw.value[SEPCONV_KNOB_UNROLL];
    size_t count = 0;
    bool micro = sepconv_space_microkernels(&o->kernel);
    /* unfused, then row tiles, then pixel tiles, smallest first */
    for (int t = -1; t < 2 * tile_h.count; t++) {
        sepconv_schedule s = base;
        s.value[SEPCONV_KNOB_FUSE] = t < 0 ? 0 : t < tile_h.count ? 1 : 2;
        if (t >= 0)
            s.value[SEPCONV_KNOB_TILE_H] = tile_h.values[t % tile_h.count];
        sepconv_space_canonical(layer, micro, &s);
        bool seen = false;
        for (size_t j = 0; j < count; j++)
            seen = seen || memcmp(seeds[j].value, s.value, sizeof s.value) == 0;
        if (!seen && count < SEEDS_MAX)
            seeds[count++] = s;
    }
    return count;
}

/* ---------------------------------------------------------------- tune */

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
    /* the budget bounds the whole call, the default schedule included */
    deadline until = {options->budget_seconds > 0,
                      sepconv_seconds() + options->budget_seconds};
    /* the schedule space is an instruction set's: resolve auto, refuse an
     * ISA this CPU lacks before anything runs */
    sepconv_tune_options resolved = *options;
    sepconv_status resolving = sepconv_target_resolve(options->kernel.target,
                                                      &resolved.kernel.target, error);
    if (resolving != SEPCONV_OK)
        return resolving;
    options = &resolved;
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
    sepconv_schedule *candidates = NULL, seeds[SEEDS_MAX];
    size_t count = 0, seed_count = 0;
    sepconv_space_counts counts = {0};
    if (status == SEPCONV_OK) {
        seed_count = sep_seeds(layer, options, log_path, &environment, seeds);
        status = sepconv_space_sweep(layer, options, seeds, seed_count, &candidates, &count,
                                     &counts, error);
        result->pruned = (size_t)(counts.repeats + counts.refused);
    }
    tune_data b;
    memset(&b, 0, sizeof b);
    if (status == SEPCONV_OK)
        status = data_alloc(layer, options->seed, &b, error);
    if (status == SEPCONV_OK) {
        result->records = calloc(count ? count : 1, sizeof *result->records);
        if (!result->records)
            status = sepconv_fail(error, SEPCONV_NOMEM, "tune: out of memory");
    }
    sepconv_kernel *baseline = NULL;
    if (status == SEPCONV_OK) {
        result->macs = cost.macs;
        double start = sepconv_seconds();
        status = data_reference(layer, &b, error);
        result->reference_ms = (sepconv_seconds() - start) * 1e3;
    }
    /* builds stop earlier than the rest: a kernel compiled just before
     * the deadline is still verified (five passes beside the reference,
     * which the compile timeout does not cut), so the build deadline keeps
     * room for that, measured as VERIFY_REFERENCES reference runs */
    deadline build_until = until;
    build_until.at -= VERIFY_REFERENCES * result->reference_ms * 1e-3;
    if (status == SEPCONV_OK) {
        status = build(layer, options, NULL, &b, &build_until, &baseline, error);
        if (status != SEPCONV_OK && time_left(&build_until) <= 0) {
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
    pipeline ahead;
    memset(&ahead, 0, sizeof ahead);
    ahead.work = (builder){layer, options, &b, &build_until, candidates, count};
    cpu_set_t saved;
    /* (a kernel of several threads is timed on every CPU: none is free to
     * compile on, and its pool would inherit the compile thread's CPUs) */
    if (status == SEPCONV_OK && count > 1 && !options->sequential &&
        sepconv_thread_count(options->kernel.threads) == 1)
        pipeline_start(&ahead, &saved);
    double start = sepconv_seconds();
    const sepconv_tune_record *best = NULL;
    size_t total = count;
    kept confirming = {.count = 0};
    /* the sweep stops early enough to confirm its best */
    deadline sweep_until = until;
    if (status == SEPCONV_OK)
        sweep_until.at -= confirm_reserve(&result->baseline, &until);
    for (size_t i = 0; status == SEPCONV_OK && i < count; i++) {
        if (time_left(&sweep_until) <= 0) {
            result->not_tried = count - i;
            break;
        }
        built got;
        pipeline_take(&ahead, i, &got);
        if (got.cut) {
            /* cut short by the budget: says nothing of the schedule */
            sepconv_kernel_free(got.kernel);
            result->not_tried = count - i;
            break;
        }
        if (got.refused) { /* pruned after all: never a candidate */
            result->pruned++;
            total--;
            continue;
        }
        sepconv_tune_record *record = &result->records[result->count++];
        start_record(record, spec, layer, &candidates[i], &environment);
        if (got.kernel) {
            snprintf(record->status, sizeof record->status, "ok");
            measure(got.kernel, baseline, &b, &sweep_until, record);
            if (!best || record->ratio < best->ratio)
                best = record;
            keep_best(&confirming, result->records, result->count - 1, got.kernel);
        } else {
            snprintf(record->status, sizeof record->status, "failed");
            snprintf(record->error, sizeof record->error, "%.255s", got.failure.message);
        }
        if (log_path[0])
            status = sepconv_log_append(log_path, record, error);
        if (options->progress) {
            sepconv_tune_progress progress = {layer, result->count, total,
                                              sepconv_seconds() - start, record, best};
            options->progress(options->progress_context, &progress);
        }
    }
    pipeline_stop(&ahead, &saved);
    /* (the compile thread is stopped: the machine is as quiet as it gets) */
    if (status == SEPCONV_OK)
        status = confirm(&confirming, baseline, &b, &until, result->records, log_path, error);
    for (int i = 0; i < confirming.count; i++) /* (a failed append left these) */
        sepconv_kernel_free(confirming.kernel[i]);
    sepconv_kernel_free(baseline);
    data_free(&b);
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
