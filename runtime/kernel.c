/*
 * kernel.c -- what a user holds: a layer's generated, compiled, verified
 * kernel with its weights.  The one room that knows both a template (through
 * the generator) and a backend.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthreadpool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

struct sepconv_kernel {
    sepconv_layer layer;
    sepconv_schedule schedule;
    sepconv_code *code;
    sepconv_kernel_code entry;
    sepconv_kernel_info info;
    float *weights, *bias, *pw_weights, *pw_bias, *packed; /* owned */
    int weights_set;
    pthreadpool_t pool; /* NULL for one thread */
    size_t threads;
};

static const char *const backend_names[] = {"tcc", "cc"};

/* The spec name of a backend. */
const char *sepconv_backend_name(sepconv_backend backend)
{
    return (unsigned)backend < 2 ? backend_names[backend] : "?";
}

/* Parses a backend name. */
sepconv_status sepconv_backend_parse(const char *text, sepconv_backend *backend,
                                     sepconv_error *error)
{
    for (int i = 0; i < 2; i++)
        if (text && strcmp(text, backend_names[i]) == 0) {
            *backend = (sepconv_backend)i;
            return SEPCONV_OK;
        }
    return sepconv_fail(error, SEPCONV_INVALID,
                        "backend '%s' is not valid (expected tcc | cc)", text ? text : "");
}

/* Seconds on the monotonic clock. */
double sepconv_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* The defaults: tcc, portable, default schedule, one thread, verified. */
sepconv_kernel_options sepconv_kernel_defaults(void)
{
    sepconv_kernel_options options;
    memset(&options, 0, sizeof options);
    options.backend = SEPCONV_BACKEND_TCC;
    options.target = SEPCONV_TARGET_PORTABLE;
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
    double start = sepconv_seconds();
    sepconv_status status;
    if (options->backend == SEPCONV_BACKEND_CC)
        status = sepconv_cc_compile(source->code, source->code_length, &options->cc,
                                    &k->code, error);
    else
        status = sepconv_tcc_compile(source->code, source->code_length, names, 2,
                                     &k->code, error);
    k->info.compile_seconds = sepconv_seconds() - start;
    k->info.from_cache = sepconv_code_from_cache(k->code);
    if (status != SEPCONV_OK)
        return status;
    k->entry.run = (sepconv_kernel_fn)sepconv_code_symbol(k->code, source->symbol);
    k->entry.pack = (sepconv_pack_fn)sepconv_code_symbol(k->code, pack_name);
    k->entry.packed_elements = source->packed_elements;
    k->entry.scratch_bytes = source->scratch_bytes;
    if (!k->entry.run || !k->entry.pack)
        return sepconv_fail(error, SEPCONV_TEMPLATE,
                            "the compiled kernel lacks %s or %s (a template that "
                            "does not define them?)", source->symbol, pack_name);
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
    if (options->backend == SEPCONV_BACKEND_TCC &&
        (options->target == SEPCONV_TARGET_AVX2 || options->target == SEPCONV_TARGET_AVX512))
        return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                            "target %s needs the cc backend (gcc or clang): tcc has "
                            "no vector types, intrinsics or AVX; use target portable "
                            "or native with tcc", sepconv_target_name(options->target));
    if (options->backend == SEPCONV_BACKEND_CC && options->target == SEPCONV_TARGET_NATIVE)
        return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                            "target native calls libsepconv's micro-kernels, which the "
                            "tcc backend hands to the code it compiles; with cc use "
                            "avx2 or avx512");
    if (options->threads < 0)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "threads=%d is not valid (expected 0 for every core, or "
                            "1 or more)", options->threads);
    sepconv_kernel *k = calloc(1, sizeof *k);
    if (!k)
        return sepconv_fail(error, SEPCONV_NOMEM, "kernel: out of memory");
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
    if (status == SEPCONV_OK && options->threads != 1) {
        k->pool = pthreadpool_create((size_t)options->threads);
        if (!k->pool)
            status = sepconv_fail(error, SEPCONV_NOMEM, "kernel: cannot start %d threads",
                                  options->threads);
    }
    k->threads = k->pool ? pthreadpool_get_threads_count(k->pool) : 1;
    k->info.threads = (int)k->threads;
    sepconv_source source;
    memset(&source, 0, sizeof source);
    if (status == SEPCONV_OK) {
        double start = sepconv_seconds();
        status = sepconv_generate(layer, &k->schedule, &options->generate, &source, error);
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
    if (status == SEPCONV_OK && options->verify) {
        double start = sepconv_seconds();
        status = sepconv_verify_kernel(layer, &k->entry, options->verify_seed,
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

/* Copies `count` floats into a new buffer (NULL for none). */
static sepconv_status copy_floats(float **into, const float *from, int64_t count,
                                  const char *what, sepconv_error *error)
{
    free(*into);
    *into = NULL;
    if (count == 0)
        return SEPCONV_OK;
    if (!from)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "the layer needs %s (%lld floats), but it is NULL", what,
                            (long long)count);
    *into = sepconv_alloc_floats(count);
    if (!*into)
        return sepconv_fail(error, SEPCONV_NOMEM, "out of memory for %s", what);
    memcpy(*into, from, (size_t)count * sizeof(float));
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
    kernel->weights_set = 0;
    sepconv_status status =
        copy_floats(&kernel->weights, tensors->weights, l->weight_elements, "weights",
                    error);
    if (status == SEPCONV_OK)
        status = copy_floats(&kernel->bias, tensors->bias, l->bias_elements, "bias", error);
    if (status == SEPCONV_OK)
        status = copy_floats(&kernel->pw_weights, tensors->pw_weights,
                             l->pw_weight_elements, "pw_weights", error);
    if (status == SEPCONV_OK)
        status = copy_floats(&kernel->pw_bias, tensors->pw_bias, l->pw_bias_elements,
                             "pw_bias", error);
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

/* One run split into row ranges, one per task. */
typedef struct run_split {
    const sepconv_kernel *kernel;
    const float *input;
    float *output;
    char *scratch; /* chunks x scratch_bytes */
    long rows;
    size_t chunks;
} run_split;

/* A task: output rows [chunk*rows/chunks, (chunk+1)*rows/chunks).  Rows
 * are independent, so the result does not depend on the split. */
static void run_chunk(void *context, size_t chunk)
{
    const run_split *split = context;
    HAPPENS_AFTER(context);
    const sepconv_kernel *k = split->kernel;
    long begin = (long)((size_t)split->rows * chunk / split->chunks);
    long end = (long)((size_t)split->rows * (chunk + 1) / split->chunks);
    size_t stride = ((size_t)k->entry.scratch_bytes + 63) / 64 * 64;
    void *scratch = split->scratch ? split->scratch + chunk * stride : NULL;
    k->entry.run(split->input, k->weights, k->bias, k->pw_weights, k->pw_bias, k->packed,
                 split->output, scratch, begin, end);
    HAPPENS_BEFORE(context);
}

/* Runs the kernel over every output row, split across its threads. */
sepconv_status sepconv_kernel_run(const sepconv_kernel *kernel, const float *input,
                                  float *output, sepconv_error *error)
{
    if (!kernel || !input || !output)
        return sepconv_fail(error, SEPCONV_INVALID, "kernel run: missing arguments");
    if (!kernel->weights_set)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "kernel run: set the weights first (sepconv_kernel_set_weights)");
    run_split split = {.kernel = kernel, .input = input, .output = output,
                       .rows = (long)(kernel->layer.batch * kernel->layer.out_h)};
    /* each chunk's scratch starts on a cache line */
    size_t stride = ((size_t)kernel->entry.scratch_bytes + 63) / 64 * 64;
    split.chunks = kernel->threads < (size_t)split.rows ? kernel->threads
                                                        : (size_t)split.rows;
    if (kernel->entry.scratch_bytes > 0) {
        split.scratch = (char *)sepconv_alloc_floats((int64_t)(split.chunks * stride / 4));
        if (!split.scratch)
            return sepconv_fail(error, SEPCONV_NOMEM, "kernel run: out of memory for "
                                "%zu x %lld bytes of scratch", split.chunks,
                                (long long)kernel->entry.scratch_bytes);
    }
    if (kernel->pool && split.chunks > 1) {
        HAPPENS_BEFORE(&split);
        pthreadpool_parallelize_1d(kernel->pool, run_chunk, &split, split.chunks, 0);
        HAPPENS_AFTER(&split);
    } else
        for (size_t chunk = 0; chunk < split.chunks; chunk++)
            run_chunk(&split, chunk);
    free(split.scratch);
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
    free(kernel);
}
