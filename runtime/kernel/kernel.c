/*
 * kernel.c -- what a user holds: a layer's generated, compiled, verified
 * kernel with its weights.  The one room that knows both a template (through
 * the generator) and a backend.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthreadpool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "backend/backend.h"
#include "generate/generate.h"
#include "log/log.h"

struct sepconv_kernel {
    sepconv_layer layer;
    sepconv_schedule schedule;
    sepconv_code *code;
    sepconv_kernel_code entry;
    sepconv_kernel_info info;
    float *weights, *bias, *pw_weights, *pw_bias, *packed; /* owned */
    /* dtype=int8 (conv, dw, pw): its entry point and owned parameters */
    sepconv_qkernel_code qentry; /* qentry.run NULL: a float kernel */
    int8_t *qweights;
    int32_t *qbias, *requant, *qpacked; /* qpacked: NULL unless qentry packs */
    /* dtype=int8 sep: its depthwise and pointwise stages' kernels, and the
     * int8 intermediate between them */
    sepconv_kernel *stages[2];
    int8_t *mid;
    long band_rows; /* the rows a band of a sep's run computes (SEP_BAND_BYTES) */
    int weights_set;
    pthreadpool_t pool; /* NULL for one thread */
    size_t threads;
    size_t chunks;         /* row ranges of a run (see plan_chunks) */
    long *bounds;          /* chunk c: rows [bounds[c], bounds[c+1]) */
    size_t slots;          /* the run's tasks: min(threads, chunks) */
    size_t scratch_stride; /* scratch_bytes rounded up to a cache line */
    char *scratch;         /* slots x scratch_stride: sepconv_kernel_run's */
    atomic_int running;    /* 1 while a sepconv_kernel_run uses `scratch` */
};

/* ---------------------------------------------------------------- kernels */

/* The defaults: tcc, auto (the best ISA of this CPU), default schedule,
 * one thread, verified. */
sepconv_kernel_options sepconv_kernel_defaults(void)
{
    sepconv_kernel_options options;
    memset(&options, 0, sizeof options);
    options.backend = SEPCONV_BACKEND_TCC;
    options.target = SEPCONV_TARGET_AUTO;
    options.threads = 1;
    options.verify = 1;
    options.verify_seed = 1;
    return options;
}

/* Compiles generated source with the chosen backend and finds its entries. */
static sepconv_status compile(sepconv_kernel *k, const sepconv_kernel_options *options,
                              const sepconv_source *source, sepconv_error *error)
{
    char pack_name[SEPCONV_SYMBOL_MAX + 8];
    snprintf(pack_name, sizeof pack_name, "%s_pack", source->symbol);
    const char *names[] = {source->symbol, pack_name};
    const bool int8 = k->layer.dtype == SEPCONV_DTYPE_INT8;
    const bool packs = !int8 || source->packed_elements > 0; /* float kernels always define one */
    double start = sepconv_seconds();
    sepconv_status status;
    if (options->backend == SEPCONV_BACKEND_CC)
        status = sepconv_cc_compile(source->code, source->code_length, &options->cc,
                                    &k->code, error);
    else
        status = sepconv_tcc_compile(source->code, source->code_length, options->target,
                                     names, packs ? 2 : 1, &k->code, error);
    k->info.compile_seconds = sepconv_seconds() - start;
    k->info.from_cache = sepconv_code_from_cache(k->code);
    if (status != SEPCONV_OK)
        return status;
    if (int8) {
        k->qentry.run = (sepconv_qkernel_fn)sepconv_code_symbol(k->code, source->symbol);
        k->qentry.pack = packs ? (sepconv_qpack_fn)sepconv_code_symbol(k->code, pack_name)
                               : NULL;
        k->qentry.packed_elements = source->packed_elements;
        if (!k->qentry.run || (packs && !k->qentry.pack))
            return sepconv_fail(error, SEPCONV_COMPILE, "the compiled int8 kernel lacks %s%s%s "
                                "(a template that does not define %s?)", source->symbol,
                                packs ? " or " : "", packs ? pack_name : "",
                                packs ? "them" : "it");
        return SEPCONV_OK;
    }
    k->entry.run = (sepconv_kernel_fn)sepconv_code_symbol(k->code, source->symbol);
    k->entry.pack = (sepconv_pack_fn)sepconv_code_symbol(k->code, pack_name);
    k->entry.packed_elements = source->packed_elements;
    k->entry.scratch_bytes = source->scratch_bytes;
    if (!k->entry.run || !k->entry.pack)
        return sepconv_fail(error, SEPCONV_COMPILE,
                            "the compiled kernel lacks %s or %s (a template that "
                            "does not define them?)", source->symbol, pack_name);
    return SEPCONV_OK;
}

/* A run's rows are cut into more chunks than threads, which the threads
 * take in turn as each finishes one (run_worker): a thread that wakes late
 * or loses its core for a while takes fewer, where one chunk per thread
 * makes every thread wait for the slowest.  The cut is guided
 * self-scheduling's (Polychronopoulos and Kuck, 1987): each chunk is
 * 1/(CHUNK_SHARE x threads) of the rows left, so the first chunks are
 * large (few to take, long runs of rows whose input rows overlap) and the
 * last a unit each (the threads finish within about a unit's time of one
 * another).  112 rows on two threads: 28 21 16 12 9 7 5 4 3 2 2 1 1 1. */
#define CHUNK_SHARE 2

/* Chunks follow a fused kernel's tiles only when there are this many tiles
 * per thread: fewer whole tiles split unevenly (sep6, 7 tiles of 2 rows on
 * two threads, 4 + 3 tiles: 1.70x where rows give 1.9x), and a chunk that
 * starts mid-tile only recomputes a part of one tile's depthwise rows. */
#define TILES_PER_THREAD 4

/* Cuts a run's rows into chunks: one for one thread; else guided, in
 * units of a fused kernel's tile (a chunk that ends mid-tile runs a short
 * tile) when there are TILES_PER_THREAD tiles a thread, else of rows.  Writes the
 * chunks' first rows and the end into k->bounds (chunks + 1, allocated
 * here, once).  Any cut gives the same bits: every generated kernel
 * computes each output row alone. */
static sepconv_status plan_chunks(sepconv_kernel *k, sepconv_error *error)
{
    long rows = (long)(k->layer.batch * k->layer.out_h);
    long tile = k->layer.op == SEPCONV_OP_SEP && k->schedule.value[SEPCONV_KNOB_FUSE] == 1
                    ? (long)k->schedule.value[SEPCONV_KNOB_TILE_H] : 1;
    if (tile < 1 || tile > rows || (rows + tile - 1) / tile < (long)k->threads * TILES_PER_THREAD)
        tile = 1;
    long share = (long)k->threads * CHUNK_SHARE;
    for (int pass = 0; pass < 2; pass++) {
        size_t chunks = 0;
        for (long begin = 0; begin < rows; chunks++) {
            long left = rows - begin;
            long size = k->threads == 1 ? left : (left + share - 1) / share;
            size = (size + tile - 1) / tile * tile; /* whole units */
            if (pass == 1)
                k->bounds[chunks] = begin;
            begin = size < left ? begin + size : rows;
        }
        if (pass == 1) {
            k->bounds[chunks] = rows;
            break;
        }
        k->chunks = chunks > 0 ? chunks : 1;
        k->bounds = malloc((k->chunks + 1) * sizeof *k->bounds);
        if (!k->bounds)
            return sepconv_fail(error, SEPCONV_NOMEM, "kernel: out of memory for %zu "
                                "chunks of rows", k->chunks);
        k->bounds[0] = k->bounds[1] = 0; /* no rows: one empty chunk */
    }
    k->slots = k->threads < k->chunks ? k->threads : k->chunks;
    return SEPCONV_OK;
}

/* The bytes of a run's scratch: a cache-line-rounded slice per task (one
 * per thread; the chunks a task runs take turns on its slice), so that
 * threads never share a line; false on overflow. */
static bool scratch_size(int64_t scratch_bytes, size_t slices, size_t *stride,
                         size_t *total)
{
    *stride = *total = 0;
    if (scratch_bytes <= 0)
        return true;
    if ((uint64_t)scratch_bytes > (uint64_t)(SIZE_MAX - 63) ||
        (uint64_t)scratch_bytes > (uint64_t)INT64_MAX - 63)
        return false;
    *stride = ((size_t)scratch_bytes + 63) / 64 * 64;
    return !__builtin_mul_overflow(*stride, slices, total) && *total <= (size_t)INT64_MAX;
}

/* Allocates the scratch sepconv_kernel_run hands its chunks, once, so that
 * runs allocate nothing.  Zeroed here only to touch the pages: the
 * templates write every scratch element before they read it (verify fills
 * its scratch with NaN and would see a read of one never written). */
static sepconv_status alloc_scratch(sepconv_kernel *k, sepconv_error *error)
{
    sepconv_status status = plan_chunks(k, error);
    if (status != SEPCONV_OK)
        return status;
    size_t total;
    if (!scratch_size(k->entry.scratch_bytes, k->slots, &k->scratch_stride, &total))
        return sepconv_fail(error, SEPCONV_OVERFLOW,
                            "kernel: %zu x %lld bytes of scratch overflow the address "
                            "space (expected a layer whose intermediate fits in memory)",
                            k->slots, (long long)k->entry.scratch_bytes);
    if (total == 0)
        return SEPCONV_OK;
    k->scratch = (char *)sepconv_alloc_floats((int64_t)(total / sizeof(float)));
    if (!k->scratch)
        return sepconv_fail(error, SEPCONV_NOMEM, "kernel: out of memory for %zu x %zu "
                            "bytes of scratch", k->slots, k->scratch_stride);
    return SEPCONV_OK;
}

/* Gives a kernel its pool for `requested` threads (none for one) and sets
 * k->threads. */
static sepconv_status start_threads(sepconv_kernel *k, int requested, sepconv_error *error)
{
    const size_t threads = (size_t)sepconv_thread_count(requested);
    if (threads > 1 && !(k->pool = pthreadpool_create(threads)))
        return sepconv_fail(error, SEPCONV_NOMEM, "kernel: cannot start %zu threads",
                            threads);
    k->threads = k->pool ? pthreadpool_get_threads_count(k->pool) : 1;
    return SEPCONV_OK;
}

/* An int8 sep's runs go in bands of rows, each band's depthwise rows into
 * the intermediate and at once the pointwise rows out of them, so that the
 * intermediate rows are read back from cache: bands of about this many
 * bytes of intermediate (at least a row). */
#define SEP_BAND_BYTES 32768

/* An int8 sep kernel: a kernel for each of its stages (each generated,
 * compiled and verified bit for bit like any int8 kernel) and the int8
 * intermediate between them, so that its bits are the two stages' (the
 * reference's).  The stages run on one thread each, in bands of rows the
 * sep's own threads share (run_sep_rows).  The sep's own knobs do not
 * reach them: the stages take their default schedules, whatever
 * options->schedule says. */
static sepconv_status create_int8_sep(const sepconv_layer *layer,
                                      const sepconv_kernel_options *options,
                                      sepconv_kernel **kernel, sepconv_error *error)
{
    sepconv_layer stages[2];
    sepconv_schedule asked; /* (still checked: a wrong knob is an error) */
    sepconv_status status = options->schedule && strcmp(options->schedule, "auto") != 0
                                ? sepconv_schedule_parse(options->schedule, layer,
                                                         SEPCONV_TARGET_PORTABLE, &asked, error)
                                : SEPCONV_OK;
    if (status == SEPCONV_OK)
        status = sepconv_layer_split(layer, &stages[0], &stages[1], error);
    if (status != SEPCONV_OK)
        return status;
    sepconv_kernel *k = calloc(1, sizeof *k);
    if (!k)
        return sepconv_fail(error, SEPCONV_NOMEM, "kernel: out of memory");
    atomic_init(&k->running, 0);
    k->layer = *layer;
    sepconv_kernel_options each = *options;
    each.schedule = NULL;
    each.threads = 1; /* the sep's bands are what its threads share */
    if (status == SEPCONV_OK)
        status = start_threads(k, options->threads, error);
    if (status == SEPCONV_OK)
        status = plan_chunks(k, error);
    const int64_t row_bytes = stages[0].out_w * stages[0].out_c;
    k->band_rows = row_bytes < SEP_BAND_BYTES ? (long)(SEP_BAND_BYTES / row_bytes) : 1;
    static const char *const names[2] = {"depthwise", "pointwise"};
    for (int i = 0; i < 2 && status == SEPCONV_OK; i++) {
        status = sepconv_kernel_create(&stages[i], &each, &k->stages[i], error);
        if (status != SEPCONV_OK)
            sepconv_error_prefix(error, "the int8 sep's %s stage", names[i]);
    }
    if (status == SEPCONV_OK && !(k->mid = malloc((size_t)stages[0].output_elements)))
        status = sepconv_fail(error, SEPCONV_NOMEM, "out of memory for the int8 sep's "
                              "intermediate (%lld bytes)",
                              (long long)stages[0].output_elements);
    if (status != SEPCONV_OK) {
        sepconv_kernel_free(k);
        return status;
    }
    /* what making it took: both stages' */
    const sepconv_kernel_info *a = &k->stages[0]->info, *b = &k->stages[1]->info;
    k->info = *a;
    snprintf(k->info.symbol, sizeof k->info.symbol, "%.*s+%.*s",
             (int)(sizeof k->info.symbol / 2 - 1), a->symbol,
             (int)(sizeof k->info.symbol / 2 - 1), b->symbol);
    k->info.generate_seconds += b->generate_seconds;
    k->info.compile_seconds += b->compile_seconds;
    k->info.verify_seconds += b->verify_seconds;
    k->info.source_bytes += b->source_bytes;
    k->info.verified = a->verified && b->verified;
    k->info.threads = (int)k->threads;
    *kernel = k;
    return SEPCONV_OK;
}

/* Makes a layer's kernel: schedule, generate, compile, verify. */
sepconv_status sepconv_kernel_create(const sepconv_layer *layer,
                                     const sepconv_kernel_options *options,
                                     sepconv_kernel **kernel, sepconv_error *error)
{
    if (!layer || !kernel)
        return sepconv_fail(error, SEPCONV_INVALID, "kernel: no layer or no result");
    *kernel = NULL;
    sepconv_kernel_options defaults = sepconv_kernel_defaults();
    if (!options)
        options = &defaults;
    if (layer->dtype == SEPCONV_DTYPE_INT8 && layer->op == SEPCONV_OP_SEP)
        return create_int8_sep(layer, options, kernel, error);
    /* the target as an instruction set this CPU has: AUTO resolved, an ISA
     * it lacks refused here (never an illegal instruction later) */
    sepconv_kernel_options resolved = *options;
    if ((unsigned)options->backend >= SEPCONV_BACKEND_COUNT)
        return sepconv_fail(error, SEPCONV_INVALID, "backend %d is not valid (expected "
                            "tcc | cc)", (int)options->backend);
    sepconv_status resolving = sepconv_target_resolve(options->target, &resolved.target,
                                                      error);
    if (resolving != SEPCONV_OK)
        return resolving;
    options = &resolved;
    if (options->threads < 0)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "threads=%d is not valid (expected 0 for every usable CPU, "
                            "or 1 or more)", options->threads);
    sepconv_kernel *k = calloc(1, sizeof *k);
    if (!k)
        return sepconv_fail(error, SEPCONV_NOMEM, "kernel: out of memory");
    atomic_init(&k->running, 0);
    k->layer = *layer;
    k->info.backend = options->backend;
    k->info.target = options->target;
    sepconv_status status;
    if (options->schedule && strcmp(options->schedule, "auto") == 0) {
        int found = 0;
        status = sepconv_log_schedule(layer, options, options->log_path, &k->schedule,
                                      &found, error);
        k->info.tuned = found;
    } else {
        status = sepconv_schedule_parse(options->schedule, layer, options->target,
                                        &k->schedule, error);
    }
    if (status == SEPCONV_OK)
        status = start_threads(k, options->threads, error);
    k->info.threads = (int)k->threads;
    sepconv_source source;
    memset(&source, 0, sizeof source);
    if (status == SEPCONV_OK) {
        double start = sepconv_seconds();
        sepconv_generate_options generate = options->generate;
        generate.for_cc = options->backend == SEPCONV_BACKEND_CC; /* its budget, intrinsics */
        generate.intrinsics = 0; /* tcc's code calls micro-kernels: it has no intrinsics */
        status = sepconv_generate(layer, &k->schedule, &generate, &source, error);
        k->info.generate_seconds = sepconv_seconds() - start;
    }
    if (status == SEPCONV_OK) {
        snprintf(k->info.symbol, sizeof k->info.symbol, "%s", source.symbol);
        k->info.source_bytes = source.code_length;
        sepconv_schedule_format(&k->schedule, k->info.schedule, sizeof k->info.schedule,
                                NULL);
        status = compile(k, options, &source, error);
    }
    sepconv_source_free(&source);
    if (status == SEPCONV_OK)
        status = alloc_scratch(k, error);
    if (status == SEPCONV_OK && options->verify) {
        double start = sepconv_seconds();
        status = k->qentry.run ? sepconv_verify_int8_kernel(layer, &k->qentry,
                                                            options->verify_seed,
                                                            &k->info.report, error)
                         : sepconv_verify_kernel(layer, &k->entry, options->verify_seed,
                                                 &k->info.report, error);
        k->info.verify_seconds = sepconv_seconds() - start;
        k->info.verified = status == SEPCONV_OK;
        if (status != SEPCONV_OK)
            sepconv_error_prefix(error, "the generated kernel %s failed verification",
                                 k->info.symbol);
    }
    if (status != SEPCONV_OK) {
        sepconv_kernel_free(k);
        return status;
    }
    *kernel = k;
    return SEPCONV_OK;
}

/* Copies `count` elements of `size` bytes (floats, int8 or int32) into a
 * new float-aligned buffer (NULL for none). */
static sepconv_status copy_tensor(void **into, const void *from, int64_t count, size_t size,
                                  const char *what, const char *unit, sepconv_error *error)
{
    free(*into);
    *into = NULL;
    if (count == 0)
        return SEPCONV_OK;
    if (!from)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "the layer needs %s (%lld %s), but it is NULL", what,
                            (long long)count, unit);
    if ((uint64_t)count > (uint64_t)INT64_MAX / size ||
        !(*into = sepconv_alloc_floats(((int64_t)size * count + 3) / 4)))
        return sepconv_fail(error, SEPCONV_NOMEM, "out of memory for %s", what);
    memcpy(*into, from, (size_t)count * size);
    return SEPCONV_OK;
}

/* Copies the weights in and packs them. */
sepconv_status sepconv_kernel_set_weights(sepconv_kernel *kernel,
                                          const sepconv_tensors *tensors,
                                          sepconv_error *error)
{
    if (!kernel || !tensors)
        return sepconv_fail(error, SEPCONV_INVALID, "kernel: no kernel or no tensors");
    const sepconv_layer *l = &kernel->layer;
    if (l->dtype == SEPCONV_DTYPE_INT8)
        return sepconv_fail(error, SEPCONV_INVALID, "kernel: the layer is dtype=int8: its "
                            "weights are int8 (sepconv_kernel_set_qweights)");
    kernel->weights_set = 0;
    sepconv_status status =
        copy_tensor((void **)&kernel->weights, tensors->weights, l->weight_elements,
                    sizeof(float), "weights", "floats", error);
    if (status == SEPCONV_OK)
        status = copy_tensor((void **)&kernel->bias, tensors->bias, l->bias_elements,
                             sizeof(float), "bias", "floats", error);
    if (status == SEPCONV_OK)
        status = copy_tensor((void **)&kernel->pw_weights, tensors->pw_weights,
                             l->pw_weight_elements, sizeof(float), "pw_weights", "floats", error);
    if (status == SEPCONV_OK)
        status = copy_tensor((void **)&kernel->pw_bias, tensors->pw_bias,
                             l->pw_bias_elements, sizeof(float), "pw_bias", "floats", error);
    free(kernel->packed);
    kernel->packed = NULL;
    if (status == SEPCONV_OK && kernel->entry.packed_elements > 0) {
        kernel->packed = sepconv_alloc_floats(kernel->entry.packed_elements);
        if (!kernel->packed)
            status = sepconv_fail(error, SEPCONV_NOMEM, "out of memory for packed weights");
        else
            kernel->entry.pack(kernel->weights, kernel->pw_weights, kernel->packed);
    }
    kernel->weights_set = status == SEPCONV_OK;
    return status;
}

/* Checks that no input can take an int8 layer's int32 sum past int32: per
 * output channel, |bias| + 255 x the sum of its |weights| (255 = the most
 * q_in - in_zero can be), where TFLite's accumulator would wrap. */
static sepconv_status check_sum_bound(const sepconv_layer *l, const int8_t *w,
                                      const int32_t *bias, sepconv_error *error)
{
    const int64_t per_channel = l->out_c ? l->weight_elements / l->out_c : 0;
    for (int64_t c = 0; c < l->out_c; c++) {
        int64_t sum = 0;
        for (int64_t i = 0; i < per_channel; i++) {
            /* nhwc weights end in the output channel, nchw ones start with it */
            int64_t at = l->layout == SEPCONV_LAYOUT_NHWC ? i * l->out_c + c
                                                          : c * per_channel + i;
            sum += w[at] < 0 ? -(int64_t)w[at] : w[at];
        }
        int64_t bound = 255 * sum + (bias ? (bias[c] < 0 ? -(int64_t)bias[c] : bias[c]) : 0);
        if (bound > INT32_MAX)
            return sepconv_fail(error, SEPCONV_INVALID,
                                "output channel %lld: its int32 sum can reach %lld (|bias| + "
                                "255 x the sum of its |weights|), past int32, where "
                                "TFLite's accumulator would wrap (expected smaller weights "
                                "or bias)", (long long)c, (long long)bound);
    }
    return SEPCONV_OK;
}

/* Copies an int8 kernel's weights and bias in and makes its requantization
 * table from the weight scales. */
sepconv_status sepconv_kernel_set_qweights(sepconv_kernel *kernel, const sepconv_qtensors *t,
                                           sepconv_error *error)
{
    if (!kernel || !t)
        return sepconv_fail(error, SEPCONV_INVALID, "kernel: no kernel or no tensors");
    const sepconv_layer *l = &kernel->layer;
    if (l->dtype != SEPCONV_DTYPE_INT8)
        return sepconv_fail(error, SEPCONV_INVALID, "kernel: the layer is float32: its "
                            "weights are floats (sepconv_kernel_set_weights)");
    kernel->weights_set = 0;
    if (kernel->stages[0]) {
        /* a sep: the depthwise stage's parameters, then the pointwise's */
        sepconv_qtensors dw = {.weights = t->weights, .bias = t->bias,
                               .weight_scales = t->weight_scales};
        sepconv_qtensors pw = {.weights = t->pw_weights, .bias = t->pw_bias,
                               .weight_scales = t->pw_weight_scales};
        sepconv_status status = sepconv_kernel_set_qweights(kernel->stages[0], &dw, error);
        if (status != SEPCONV_OK)
            sepconv_error_prefix(error, "the depthwise stage");
        if (status == SEPCONV_OK &&
            (status = sepconv_kernel_set_qweights(kernel->stages[1], &pw, error)) != SEPCONV_OK)
            sepconv_error_prefix(error, "the pointwise stage (pw_weights, pw_bias, "
                                        "pw_weight_scales)");
        kernel->weights_set = status == SEPCONV_OK;
        return status;
    }
    sepconv_status status = copy_tensor((void **)&kernel->qweights, t->weights,
                                        l->weight_elements, 1, "weights", "int8 values", error);
    if (status == SEPCONV_OK)
        status = copy_tensor((void **)&kernel->qbias, t->bias, l->bias_elements,
                             sizeof(int32_t), "bias", "int32 values", error);
    if (status == SEPCONV_OK && !kernel->requant &&
        !(kernel->requant = malloc(2 * (size_t)l->out_c * sizeof(int32_t))))
        status = sepconv_fail(error, SEPCONV_NOMEM, "out of memory for the requantization "
                                                    "table");
    if (status == SEPCONV_OK)
        status = sepconv_int8_requant(l, t->weight_scales, kernel->requant, error);
    if (status == SEPCONV_OK)
        status = check_sum_bound(l, kernel->qweights, kernel->qbias, error);
    if (status == SEPCONV_OK && kernel->qentry.packed_elements > 0) {
        /* (the sum bound keeps each folded bias inside int32) */
        if ((uint64_t)kernel->qentry.packed_elements > SIZE_MAX / sizeof(int32_t))
            status = sepconv_fail(error, SEPCONV_OVERFLOW, "the packed int8 weights (%lld "
                                  "ints) do not fit in memory",
                                  (long long)kernel->qentry.packed_elements);
        else if (!kernel->qpacked &&
                 !(kernel->qpacked = malloc((size_t)kernel->qentry.packed_elements *
                                            sizeof(int32_t))))
            status = sepconv_fail(error, SEPCONV_NOMEM, "out of memory for the packed int8 "
                                                        "weights");
        else
            kernel->qentry.pack(kernel->qweights, kernel->qbias, kernel->qpacked);
    }
    kernel->weights_set = status == SEPCONV_OK;
    return status;
}

/* ThreadSanitizer cannot see libpthreadpool (not instrumented) hand a task
 * to a worker or wait for it; these annotations state those edges. */
#ifdef __SANITIZE_THREAD__
void __tsan_acquire(void *address);
void __tsan_release(void *address);
#define HAPPENS_BEFORE(address) __tsan_release(address)
#define HAPPENS_AFTER(address) __tsan_acquire(address)
#else
#define HAPPENS_BEFORE(address) ((void)(address))
#define HAPPENS_AFTER(address) ((void)(address))
#endif

/* One run split into chunks of rows, which the pool's tasks (one per
 * thread) take in turn from `next`. */
typedef struct run_split {
    const sepconv_kernel *kernel;
    const void *input; /* float, or int8 for an int8 kernel */
    void *output;
    char *scratch; /* slots x scratch_stride, or NULL */
    /* the next chunk to take, on a cache line of its own: the line the
     * tasks take turns writing is not the one they read the run from */
    _Alignas(64) atomic_size_t next;
} run_split;

/* Rows [begin, end) of an int8 stage's output. */
static void run_qrows(const sepconv_kernel *k, const int8_t *input, int8_t *output, long begin,
                      long end)
{
    k->qentry.run(input, k->qweights, k->qbias, k->qpacked, k->requant, output, begin, end);
}

/* Rows [begin, end) of an int8 sep, in bands: the band's depthwise rows,
 * then its pointwise rows (which read only those: the pointwise stage is
 * 1x1 at stride 1). */
static void run_sep_rows(const sepconv_kernel *k, const int8_t *input, int8_t *output,
                         long begin, long end)
{
    for (long r = begin; r < end; r += k->band_rows) {
        const long band_end = r + k->band_rows < end ? r + k->band_rows : end;
        run_qrows(k->stages[0], input, k->mid, r, band_end);
        run_qrows(k->stages[1], k->mid, output, r, band_end);
    }
}

/* Chunk `chunk` of the cut (plan_chunks), on the scratch slice given. */
static void run_chunk(const run_split *split, size_t chunk, void *scratch)
{
    const sepconv_kernel *k = split->kernel;
    if (k->stages[0])
        run_sep_rows(k, split->input, split->output, k->bounds[chunk], k->bounds[chunk + 1]);
    else if (k->qentry.run)
        k->qentry.run(split->input, k->qweights, k->qbias, k->qpacked, k->requant,
                      split->output, k->bounds[chunk], k->bounds[chunk + 1]);
    else
        k->entry.run(split->input, k->weights, k->bias, k->pw_weights, k->pw_bias, k->packed,
                     split->output, scratch, k->bounds[chunk], k->bounds[chunk + 1]);
}

/* Task `slot` (one per thread, at most; the pool runs each once, so no two
 * running tasks share a slot): takes chunks until none is left, all on the
 * slot's scratch.  Which thread runs which chunk varies from run to run;
 * the rows a chunk covers, and so every output bit, do not. */
static void run_worker(void *context, size_t slot)
{
    run_split *split = context;
    HAPPENS_AFTER(context);
    const sepconv_kernel *k = split->kernel;
    void *scratch = split->scratch ? split->scratch + slot * k->scratch_stride : NULL;
    for (;;) {
        size_t chunk = atomic_fetch_add_explicit(&split->next, 1, memory_order_relaxed);
        if (chunk >= k->chunks)
            break;
        run_chunk(split, chunk, scratch);
    }
    HAPPENS_BEFORE(context);
}

/* Checks what every run needs: its arguments, of the kernel's dtype (int8
 * or not), and weights set. */
static sepconv_status check_run(const sepconv_kernel *kernel, bool int8, const void *input,
                                const void *output, sepconv_error *error)
{
    if (!kernel || !input || !output)
        return sepconv_fail(error, SEPCONV_INVALID, "kernel run: missing arguments");
    const bool layer_int8 = kernel->layer.dtype == SEPCONV_DTYPE_INT8;
    if (int8 != layer_int8)
        return sepconv_fail(error, SEPCONV_INVALID, "kernel run: the layer is %s, so run it "
                            "with %s", layer_int8 ? "dtype=int8" : "float32",
                            layer_int8 ? "sepconv_kernel_run_int8" : "sepconv_kernel_run");
    if (!kernel->weights_set)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "kernel run: set the weights first (sepconv_kernel_set_weights)");
    return SEPCONV_OK;
}

/* Runs every chunk, on the pool if there is one; allocates nothing.  The
 * synchronisation per call is the pool's: one wake-up of its workers and
 * one wait for them, plus an atomic increment per chunk taken. */
static void run_chunks(const sepconv_kernel *kernel, const void *input, void *output,
                       char *scratch)
{
    run_split split = {.kernel = kernel, .input = input, .output = output,
                       .scratch = kernel->scratch_stride ? scratch : NULL};
    atomic_init(&split.next, 0);
    if (kernel->pool && kernel->chunks > 1) {
        HAPPENS_BEFORE(&split);
        /* YIELD_WORKERS: idle workers sleep instead of spinning for
         * milliseconds, which took CPU from the rest of the process */
        pthreadpool_parallelize_1d(kernel->pool, run_worker, &split, kernel->slots,
                                   PTHREADPOOL_FLAG_YIELD_WORKERS);
        HAPPENS_AFTER(&split);
    } else
        run_worker(&split, 0);
}

/* The workspace bytes sepconv_kernel_run_with_workspace needs (0 if none):
 * a cache-line-rounded slice of scratch per thread of the kernel (fewer
 * when it has fewer chunks of rows than threads). */
size_t sepconv_kernel_workspace_bytes(const sepconv_kernel *kernel)
{
    return kernel ? kernel->slots * kernel->scratch_stride : 0;
}

/* Runs the kernel like sepconv_kernel_run, in the caller's workspace of
 * workspace_bytes (at least sepconv_kernel_workspace_bytes; float-aligned,
 * 64-byte-aligned is best; NULL when that is 0).  Safe to call from several
 * threads at once on one kernel, each with its own workspace; a kernel with
 * threads shares its pool, so such calls take turns on it. */
sepconv_status sepconv_kernel_run_with_workspace(const sepconv_kernel *kernel,
                                                 const float *input, float *output,
                                                 void *workspace, size_t workspace_bytes,
                                                 sepconv_error *error)
{
    sepconv_status status = check_run(kernel, false, input, output, error);
    if (status != SEPCONV_OK)
        return status;
    size_t needed = sepconv_kernel_workspace_bytes(kernel);
    if (needed > 0 && (!workspace || workspace_bytes < needed))
        return sepconv_fail(error, SEPCONV_INVALID,
                            "kernel run: the workspace has %zu bytes at %p, the kernel "
                            "needs %zu (sepconv_kernel_workspace_bytes)",
                            workspace ? workspace_bytes : 0, workspace, needed);
    if ((uintptr_t)workspace % _Alignof(float) != 0)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "kernel run: the workspace at %p is not aligned to %zu bytes "
                            "(expected a float's alignment; 64 is best)", workspace,
                            _Alignof(float));
    run_chunks(kernel, input, output, workspace);
    return SEPCONV_OK;
}

/* Runs `kernel` on its own workspace, one call at a time (run's rule). */
static sepconv_status run_owned(const sepconv_kernel *kernel, const void *input, void *output,
                                sepconv_error *error)
{
    /* the kernel is const to its users; only this flag changes, atomically */
    atomic_int *running = &((sepconv_kernel *)kernel)->running;
    if (atomic_exchange(running, 1) != 0)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "kernel run: the kernel is already running in another thread, "
                            "and its own workspace serves one run at a time (expected "
                            "one caller, or sepconv_kernel_run_with_workspace with a "
                            "workspace per thread)");
    run_chunks(kernel, input, output, kernel->scratch);
    atomic_store(running, 0);
    return SEPCONV_OK;
}

/* Runs the kernel over every output row with its own workspace, split
 * across its threads: input and output in the layer's layout.  The kernel
 * owns the workspace its runs need (made when it is created, so a run
 * allocates nothing), and that serves one call at a time: a second call
 * while one is under way fails with SEPCONV_INVALID.  To run one kernel
 * from several threads at once, give each thread a workspace of its own and
 * call sepconv_kernel_run_with_workspace. */
sepconv_status sepconv_kernel_run(const sepconv_kernel *kernel, const float *input,
                                  float *output, sepconv_error *error)
{
    sepconv_status status = check_run(kernel, false, input, output, error);
    return status == SEPCONV_OK ? run_owned(kernel, input, output, error) : status;
}

/* Runs an int8 kernel over every output row, as sepconv_kernel_run does. */
sepconv_status sepconv_kernel_run_int8(const sepconv_kernel *kernel, const int8_t *input,
                                       int8_t *output, sepconv_error *error)
{
    sepconv_status status = check_run(kernel, true, input, output, error);
    if (status != SEPCONV_OK || !kernel->stages[0])
        return status == SEPCONV_OK ? run_owned(kernel, input, output, error) : status;
    /* a sep: both stages through the intermediate, which serves one run at
     * a time (its stages' weights are set: the sep's set them) */
    atomic_int *running = &((sepconv_kernel *)kernel)->running;
    if (atomic_exchange(running, 1) != 0)
        return sepconv_fail(error, SEPCONV_INVALID, "kernel run: the kernel is already "
                            "running in another thread (an int8 sep kernel serves one run "
                            "at a time)");
    run_chunks(kernel, input, output, NULL);
    atomic_store(running, 0);
    return SEPCONV_OK;
}

/* The layer a kernel computes. */
const sepconv_layer *sepconv_kernel_layer(const sepconv_kernel *kernel)
{
    return kernel ? &kernel->layer : NULL;
}

/* What making the kernel took. */
const sepconv_kernel_info *sepconv_kernel_get_info(const sepconv_kernel *kernel)
{
    return kernel ? &kernel->info : NULL;
}

/* Frees a kernel, its code and its weights. */
void sepconv_kernel_free(sepconv_kernel *kernel)
{
    if (!kernel)
        return;
    if (kernel->pool)
        pthreadpool_destroy(kernel->pool);
    sepconv_code_free(kernel->code);
    free(kernel->weights);
    free(kernel->bias);
    free(kernel->pw_weights);
    free(kernel->pw_bias);
    free(kernel->packed);
    free(kernel->qweights);
    free(kernel->qbias);
    free(kernel->requant);
    free(kernel->qpacked);
    free(kernel->scratch);
    free(kernel->bounds);
    sepconv_kernel_free(kernel->stages[0]);
    sepconv_kernel_free(kernel->stages[1]);
    free(kernel->mid);
    free(kernel);
}
