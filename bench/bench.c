/*
 * bench.c -- sepconv side by side with its peers, in one run, on the same
 * inputs: per layer and stage (dw, pw, sep), the reference, sepconv through
 * tcc and cc (default, tuned, unfused), XNNPACK and oneDNN.  Every output is
 * checked against the reference before its time counts; every one writes the
 * same output buffer, placed relative to the input; runs are interleaved
 * round by round; medians and ratios to the best peer are reported, with the
 * machine's FMA peak measured here.
 */
#define _GNU_SOURCE
#include <cpuinfo.h>
#include <dlfcn.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define RUNNERS_MAX 8
#define ROUNDS_MAX 51
#define PAGE_BYTES 4096
/* Each sample follows WARM_SECONDS of the runner's own runs: after the
 * portable column's scalar code (50 ms a run) a SIMD kernel runs slowly
 * for its first few milliseconds (Zen 5, sep 56x56x128 tcc auto: 0.93 ms
 * a run at first, 0.55 after 5 ms), and sampling it at once charged that
 * to whichever column came next: tcc auto's sep total read 7.3 ms. */
#define WARM_SECONDS 0.008

/* Layers beyond MobileNet: a 5x5 kernel, stride 2 on odd sizes, depth
 * multiplier 2, and NCHW. */
static const char *const extra_layers[] = {
    "op=sep name=k5 df=28 m=128 n=128 dk=5 bias=1 act=relu6",
    "op=sep name=s2odd df=29 m=64 n=96 dk=3 stride=2 bias=1 act=relu6",
    "op=sep name=mult2 df=28 m=64 n=128 dk=3 mult=2 bias=1 act=relu6",
    "op=sep name=nchw df=28 m=64 n=64 dk=3 layout=nchw bias=1 act=relu6"};

typedef struct options {
    int threads, rounds;
    int out_offset; /* bytes from the input's offset within a page to the output's */
    bool json, list;
    const char *model, *log;
    const char *cc_flags; /* NULL: the cc backend's default, -O3 -march=native */
    sepconv_target target;
} options;

/* ------------------------------------------------------------ FMA peak */

/* Twelve independent FMA chains, held in named registers (an array may be
 * kept in memory, which turns the loop into a store-forwarding chain), long
 * enough to hide the FMA latency: the most this core can do, in GFLOP/s. */
#define PEAK_LOOP(type, fma, set1, add, lanes)                                         \
    type a0 = set1(0.0f), a1 = set1(1.0f), a2 = set1(2.0f), a3 = set1(3.0f);           \
    type a4 = set1(4.0f), a5 = set1(5.0f), a6 = set1(6.0f), a7 = set1(7.0f);           \
    type a8 = set1(8.0f), a9 = set1(9.0f), a10 = set1(10.0f), a11 = set1(11.0f);       \
    const type x = set1(1.0000001f), y = set1(0.9999999f);                             \
    double start = sepconv_seconds();                                                  \
    for (long n = 0; n < iterations; n++) {                                            \
        a0 = fma(a0, x, y); a1 = fma(a1, x, y); a2 = fma(a2, x, y);                    \
        a3 = fma(a3, x, y); a4 = fma(a4, x, y); a5 = fma(a5, x, y);                    \
        a6 = fma(a6, x, y); a7 = fma(a7, x, y); a8 = fma(a8, x, y);                    \
        a9 = fma(a9, x, y); a10 = fma(a10, x, y); a11 = fma(a11, x, y);                \
    }                                                                                  \
    double seconds = sepconv_seconds() - start;                                        \
    type sum = add(add(add(add(a0, a1), add(a2, a3)), add(add(a4, a5), add(a6, a7))),  \
                   add(add(a8, a9), add(a10, a11)));                                   \
    float check[lanes];                                                                \
    memcpy(check, &sum, sizeof check);                                                 \
    return check[0] == 12345.0f ? 0 : 2.0 * lanes * 12 * (double)iterations / seconds / 1e9;

__attribute__((target("avx512f"))) static double peak_avx512(long iterations)
{
    PEAK_LOOP(__m512, _mm512_fmadd_ps, _mm512_set1_ps, _mm512_add_ps, 16)
}

__attribute__((target("avx2,fma"))) static double peak_avx2(long iterations)
{
    PEAK_LOOP(__m256, _mm256_fmadd_ps, _mm256_set1_ps, _mm256_add_ps, 8)
}

/* The best of AVX-512 and AVX2 FMA throughput, median of 5 runs, one core. */
static double measure_peak(void)
{
    __builtin_cpu_init();
    bool has512 = __builtin_cpu_supports("avx512f");
    bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    double runs[5];
    double best = 0;
    for (int kind = 0; kind < 2; kind++) {
        if ((kind == 0 && !has512) || (kind == 1 && !has2))
            continue;
        for (int r = 0; r < 5; r++)
            runs[r] = kind == 0 ? peak_avx512(20000000) : peak_avx2(20000000);
        double median = sepconv_median(runs, 5);
        if (median > best)
            best = median;
    }
    return best;
}

/* ------------------------------------------------------------- runners */

/* A sepconv kernel as a runner. */
typedef struct kernel_state {
    sepconv_kernel *kernel;
    const float *input;
    float *output; /* the stage's one output buffer, which every runner writes */
} kernel_state;

static void kernel_run(void *opaque)
{
    kernel_state *s = opaque;
    sepconv_kernel_run(s->kernel, s->input, s->output, NULL);
}

static void kernel_destroy(void *opaque)
{
    kernel_state *s = opaque;
    sepconv_kernel_free(s->kernel);
    free(s);
}

/* Makes a sepconv runner; returns false with a message. */
static bool make_sepconv(const bench_data *data, const options *o, sepconv_backend backend,
                         sepconv_target target, const char *schedule, const char *name,
                         runner *out, char *why, size_t capacity)
{
    sepconv_kernel_options k = sepconv_kernel_defaults();
    k.backend = backend;
    k.target = target;
    k.schedule = schedule;
    k.log_path = o->log;
    k.threads = o->threads;
    k.cc.flags = o->cc_flags;
    k.verify = 0; /* the benchmark checks every output itself */
    kernel_state *s = calloc(1, sizeof *s);
    sepconv_error error;
    sepconv_tensors t = sepconv_buffers_tensors(&data->buffers);
    if (!s)
        return false;
    s->input = data->buffers.input;
    s->output = data->buffers.output;
    if (sepconv_kernel_create(data->layer, &k, &s->kernel, &error) != SEPCONV_OK ||
        sepconv_kernel_set_weights(s->kernel, &t, &error) != SEPCONV_OK) {
        snprintf(why, capacity, "%s", error.message);
        kernel_destroy(s);
        return false;
    }
    bool untuned = schedule && strcmp(schedule, "auto") == 0 &&
                   !sepconv_kernel_get_info(s->kernel)->tuned;
    snprintf(out->name, sizeof out->name, "%s%s", name, untuned ? "*" : "");
    out->state = s;
    out->run = kernel_run;
    out->destroy = kernel_destroy;
    out->output = s->output;
    return true;
}

/* What one layer-stage measured. */
typedef struct stage_result {
    char layer[64], stage[8];
    int64_t macs;
    double reference_ms;
    int count;
    char names[RUNNERS_MAX][48];
    double ms[RUNNERS_MAX]; /* 0: failed its check or could not be made */
    bool peer[RUNNERS_MAX];
    int failures; /* our kernels that could not be made, and wrong outputs */
} stage_result;

/* Whether a runner's output matches the reference within tolerance. */
static bool matches(const sepconv_layer *layer, const float *expected, const float *actual,
                    const double *magnitude, char *why, size_t capacity)
{
    sepconv_comparison comparison;
    sepconv_error error;
    if (sepconv_compare(layer, expected, actual, magnitude, &comparison, &error) == SEPCONV_OK)
        return true;
    snprintf(why, capacity, "%s", error.message);
    return false;
}

/* Times runners interleaved; each sample repeats a runner until it has run
 * for about 2 ms, so fast layers are not lost in timer noise, after a
 * warm-up of WARM_SECONDS (at least one run). */
static void time_runners(runner *runners, int count, int rounds, double *medians)
{
    int reps[RUNNERS_MAX];
    for (int r = 0; r < count; r++) {
        runners[r].run(runners[r].state); /* warm-up */
        double start = sepconv_seconds();
        runners[r].run(runners[r].state);
        double once = sepconv_seconds() - start;
        reps[r] = once > 0 ? (int)(2e-3 / once) + 1 : 1;
        if (reps[r] > 1000)
            reps[r] = 1000;
    }
    double samples[RUNNERS_MAX][ROUNDS_MAX];
    for (int round = 0; round < rounds; round++)
        for (int r = 0; r < count; r++) {
            double warm = sepconv_seconds();
            do
                runners[r].run(runners[r].state);
            while (sepconv_seconds() - warm < WARM_SECONDS);
            double start = sepconv_seconds();
            for (int k = 0; k < reps[r]; k++)
                runners[r].run(runners[r].state);
            samples[r][round] = (sepconv_seconds() - start) / reps[r];
        }
    for (int r = 0; r < count; r++)
        medians[r] = sepconv_median(samples[r], (size_t)rounds) * 1e3;
}

/* An area holding `count` floats that start `offset` bytes past the input's
 * offset within a 4 KB page (wrapping within the page), at *output; NULL
 * when out of memory.  The caller frees the area. */
static char *placed_output(const float *input, int64_t count, int offset, float **output)
{
    size_t bytes = ((size_t)count * sizeof(float) + 2 * PAGE_BYTES) / PAGE_BYTES * PAGE_BYTES;
    char *area = aligned_alloc(PAGE_BYTES, bytes);
    if (area)
        *output = (float *)(area + ((uintptr_t)input + (uintptr_t)offset) % PAGE_BYTES);
    return area;
}

/* Benchmarks one layer (a dw, pw or sep stage) with every implementation. */
static bool bench_stage(const sepconv_layer *layer, const char *name, const char *stage,
                        const options *o, stage_result *result)
{
    memset(result, 0, sizeof *result);
    snprintf(result->layer, sizeof result->layer, "%s", name);
    snprintf(result->stage, sizeof result->stage, "%s", stage);
    bench_data data = {layer, {0}};
    sepconv_error error;
    sepconv_cost cost;
    if (sepconv_buffers_alloc(layer, &data.buffers, &error) != SEPCONV_OK ||
        sepconv_cost_compute(layer, &cost, &error) != SEPCONV_OK) {
        fprintf(stderr, "bench: %s %s: %s\n", name, stage, error.message);
        return false;
    }
    result->macs = cost.macs;
    sepconv_buffers_fill_random(layer, &data.buffers, 11);
    /* one output for every runner, peers included, at the same place in a
     * page relative to the input: a depthwise kernel whose loads follow its
     * stores at the same low 12 address bits runs up to 1.5x slower (4K
     * aliasing), so where the output sits is part of the measurement */
    float *allocated_output = data.buffers.output;
    char *output_area = placed_output(data.buffers.input, layer->output_elements, o->out_offset,
                                      &data.buffers.output);
    if (!output_area) {
        fprintf(stderr, "bench: %s %s: out of memory for the output\n", name, stage);
        sepconv_buffers_free(&data.buffers);
        return false;
    }
    sepconv_tensors t = sepconv_buffers_tensors(&data.buffers);
    double *magnitude = malloc((size_t)layer->output_elements * sizeof(double));
    float *expected = malloc((size_t)layer->output_elements * sizeof(float));
    double start = sepconv_seconds();
    sepconv_reference_run(layer, &t, expected, NULL);
    result->reference_ms = (sepconv_seconds() - start) * 1e3;
    sepconv_reference_magnitude(layer, &t, magnitude, NULL);

    runner runners[RUNNERS_MAX];
    int count = 0;
    char why[SEPCONV_MESSAGE_MAX];
    struct { sepconv_backend backend; sepconv_target target; const char *schedule, *name; }
    ours[] = {
        {SEPCONV_BACKEND_TCC, SEPCONV_TARGET_PORTABLE, NULL, "tcc"},
        {SEPCONV_BACKEND_TCC, SEPCONV_TARGET_AUTO, NULL, "tcc auto"},
        {SEPCONV_BACKEND_CC, o->target, NULL, "cc"},
        {SEPCONV_BACKEND_CC, o->target, "auto", "cc tuned"},
        {SEPCONV_BACKEND_CC, o->target, "fuse=0", "cc unfused"}};
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
        if (i == 4 && layer->op != SEPCONV_OP_SEP)
            continue;
        if (make_sepconv(&data, o, ours[i].backend, ours[i].target, ours[i].schedule,
                         ours[i].name, &runners[count], why, sizeof why))
            count++;
        else {
            fprintf(stderr, "bench: %s %s: sepconv %s: %.300s\n", name, stage, ours[i].name, why);
            result->failures++;
        }
    }
    int first_peer = count;
    const peer *peers[] = {
#ifdef HAVE_XNNPACK
        &bench_peer_xnnpack,
#endif
#ifdef HAVE_ONEDNN
        &bench_peer_onednn,
#endif
        NULL};
    for (int p = 0; peers[p]; p++) {
        if (peers[p]->make(&data, o->threads, &runners[count], why, sizeof why))
            count++;
        else if (!o->json)
            fprintf(stderr, "bench: %s %s: %s: %s\n", name, stage, peers[p]->name, why);
    }
    /* every output checked before its time counts; the buffer is shared,
     * so it is filled with NaN first: a runner that skips an element
     * cannot pass on the one before it */
    bool valid[RUNNERS_MAX];
    for (int r = 0; r < count; r++) {
        memset(data.buffers.output, 0xff, (size_t)layer->output_elements * sizeof(float));
        runners[r].run(runners[r].state);
        valid[r] = matches(layer, expected, runners[r].output, magnitude, why, sizeof why);
        if (!valid[r]) {
            fprintf(stderr, "bench: %s %s: %s is wrong, its time does not count: %.300s\n",
                    name, stage, runners[r].name, why);
            result->failures++;
        }
    }
    double medians[RUNNERS_MAX];
    time_runners(runners, count, o->rounds, medians);
    result->count = count;
    for (int r = 0; r < count; r++) {
        snprintf(result->names[r], sizeof result->names[r], "%.47s", runners[r].name);
        result->ms[r] = valid[r] ? medians[r] : 0;
        result->peer[r] = r >= first_peer;
        runners[r].destroy(runners[r].state);
    }
    free(magnitude);
    free(expected);
    free(output_area);
    data.buffers.output = allocated_output;
    sepconv_buffers_free(&data.buffers);
    return true;
}

/* The index of a named implementation in a result, or -1. */
static int find(const stage_result *r, const char *name)
{
    for (int i = 0; i < r->count; i++)
        if (strncmp(r->names[i], name, strlen(name)) == 0 &&
            (r->names[i][strlen(name)] == '\0' || r->names[i][strlen(name)] == '*'))
            return i;
    return -1;
}

/* The fastest valid peer time, or 0. */
static double best_peer(const stage_result *r)
{
    double best = 0;
    for (int i = 0; i < r->count; i++)
        if (r->peer[i] && r->ms[i] > 0 && (best == 0 || r->ms[i] < best))
            best = r->ms[i];
    return best;
}

/* The time of an implementation, or 0. */
static double time_of(const stage_result *r, const char *name)
{
    int i = find(r, name);
    return i < 0 ? 0 : r->ms[i];
}

static const char *const columns[] = {"tcc", "tcc auto", "cc", "cc tuned", "cc unfused",
                                      "xnnpack", "onednn"};
/* The instruction set each of sepconv's columns runs (filled in main). */
#define COLUMNS 7
#define FIRST_PEER_COLUMN 5
static const char *column_isa[FIRST_PEER_COLUMN];

/* Prints one row of the table. */
static void print_row(const stage_result *r, double peak)
{
    printf("%-7s %-4s %9.2f", r->layer, r->stage, r->reference_ms);
    for (int c = 0; c < COLUMNS; c++) {
        double ms = time_of(r, columns[c]);
        int i = find(r, columns[c]);
        bool starred = i >= 0 && strchr(r->names[i], '*');
        if (ms > 0)
            printf(" %9.3f%s", ms, starred ? "*" : " ");
        else
            printf(" %9s ", "-");
    }
    double ours = time_of(r, "cc tuned"), peer = best_peer(r);
    double gflops = ours > 0 ? 2.0 * (double)r->macs / (ours * 1e-3) / 1e9 : 0;
    if (peer > 0 && ours > 0)
        printf(" %8.2fx", ours / peer);
    else
        printf(" %9s", "-");
    printf(" %7.1f%%\n", peak > 0 ? 100.0 * gflops / peak : 0);
}

/* Prints results as JSON. */
static void print_json(const stage_result *results, int count, double peak, const options *o)
{
    printf("{\"peak_gflops\":%.2f,\"threads\":%d,\"target\":\"%s\",\"out_offset\":%d,"
           "\"isa\":{", peak, o->threads, sepconv_target_name(o->target), o->out_offset);
    for (int c = 0; c < FIRST_PEER_COLUMN; c++)
        printf("%s\"%s\":\"%s\"", c ? "," : "", columns[c], column_isa[c]);
    printf("},\"rows\":[");
    for (int i = 0; i < count; i++) {
        const stage_result *r = &results[i];
        printf("%s{\"layer\":\"%s\",\"stage\":\"%s\",\"macs\":%lld,\"reference_ms\":%.3f,"
               "\"best_peer_ms\":%.4f,\"ms\":{", i ? "," : "", r->layer, r->stage,
               (long long)r->macs, r->reference_ms, best_peer(r));
        for (int k = 0; k < r->count; k++)
            printf("%s\"%s\":%.4f", k ? "," : "", r->names[k], r->ms[k]);
        printf("}}");
    }
    printf("]}\n");
}

/* The best target this CPU runs (auto, resolved): the cc rows' default. */
static sepconv_target best_target(void)
{
    sepconv_target best = SEPCONV_TARGET_PORTABLE;
    sepconv_target_resolve(SEPCONV_TARGET_AUTO, &best, NULL);
    return best;
}

/* Says which CPU this is and which instruction set each column runs. */
static void describe_columns(const options *o, char *cpu, size_t capacity)
{
    sepconv_kernel_options k = sepconv_kernel_defaults();
    sepconv_environment e;
    if (sepconv_environment_get(&k, &e, NULL) == SEPCONV_OK) {
        /* x86 family and model tell apart what one model name covers ("AMD
         * EPYC": Zen 1 is family 23, Zen 4 25, Zen 5 26) */
        char family[48] = "";
#if defined(__x86_64__) || defined(__i386__)
        if (cpuinfo_initialize() && cpuinfo_get_cores_count() > 0) {
            uint32_t id = cpuinfo_get_core(0)->cpuid, base = (id >> 8) & 0xf;
            uint32_t fam = base == 0xf ? base + ((id >> 20) & 0xff) : base;
            uint32_t model = ((id >> 4) & 0xf) | (base >= 6 ? (id >> 12) & 0xf0 : 0);
            snprintf(family, sizeof family, ", family %u model %u", fam, model);
        }
#endif
        snprintf(cpu, capacity, "%s (%s%s)", e.cpu, e.features[0] ? e.features : "no AVX",
                 family);
    } else
        snprintf(cpu, capacity, "unknown");
    column_isa[0] = sepconv_target_name(SEPCONV_TARGET_PORTABLE);
    column_isa[1] = sepconv_target_name(best_target());
    for (int c = 2; c < FIRST_PEER_COLUMN; c++)
        column_isa[c] = sepconv_target_name(o->target);
}

/* Parses the command line. */
static bool parse(int argc, char **argv, options *o)
{
    *o = (options){.threads = 1, .rounds = 11, .model = "examples/mobilenet_v1.layers",
                   .target = best_target()};
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--json") == 0)
            o->json = true;
        else if (strcmp(argv[i], "--list-stages") == 0)
            o->list = true;
        else if (strcmp(argv[i], "--print-target") == 0) {
            printf("%s\n", sepconv_target_name(o->target));
            exit(0);
        }
        else if (strcmp(argv[i], "--threads") == 0 && value)
            o->threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0 && value)
            o->rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--out-offset") == 0 && value)
            o->out_offset = atoi(argv[++i]);
        else if (strcmp(argv[i], "--model") == 0 && value)
            o->model = argv[++i];
        else if (strcmp(argv[i], "--cc-flags") == 0 && value)
            o->cc_flags = argv[++i];
        else if (strcmp(argv[i], "--log") == 0 && value)
            o->log = argv[++i];
        else if (strcmp(argv[i], "--target") == 0 && value) {
            if (sepconv_target_parse(argv[++i], &o->target, NULL) != SEPCONV_OK)
                return false;
        } else
            return false;
    }
    return o->threads >= 0 && o->rounds >= 3 && o->rounds <= ROUNDS_MAX &&
           o->out_offset >= 0 && o->out_offset < PAGE_BYTES && o->out_offset % 4 == 0;
}

int main(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o)) {
        fprintf(stderr, "usage: bench [--threads N] [--rounds 3..51] [--target T] "
                        "[--out-offset 0..4092] [--model FILE] [--log TUNING.jsonl] [--cc-flags FLAGS] [--json] "
                        "[--list-stages]\n");
        return 2;
    }
    /* oneDNN runs on OpenMP, whose runtime read OMP_NUM_THREADS when it was
     * loaded, before main: set its thread count the way it offers now */
    void (*omp_set_num_threads)(int) =
        (void (*)(int))(uintptr_t)dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (omp_set_num_threads)
        omp_set_num_threads(o.threads ? o.threads : (int)sysconf(_SC_NPROCESSORS_ONLN));
    sepconv_model model;
    sepconv_error error;
    if (sepconv_model_load(o.model, &model, &error) != SEPCONV_OK) {
        fprintf(stderr, "bench: %s\n", error.message);
        return 1;
    }
    /* measured first, before the benchmark's own threads exist */
    double peak = o.list ? 0 : measure_peak();
    char cpu[256];
    describe_columns(&o, cpu, sizeof cpu);
    size_t extras = sizeof extra_layers / sizeof extra_layers[0];
    stage_result *results = calloc((model.count + extras) * 3, sizeof *results);
    int count = 0, model_rows = 0;
    if (!o.json && !o.list) {
        printf("CPU: %s\n", cpu);
        printf("columns' instruction sets:");
        for (int c = 0; c < FIRST_PEER_COLUMN; c++)
            printf("%s %s = %s%s", c ? "," : "", columns[c], column_isa[c],
                   strcmp(column_isa[c], "portable") == 0 ? " (plain C)"
                   : c == 1                               ? " micro-kernels"
                                                          : " intrinsics");
        printf("\n");
        printf("FMA peak, one core: %.1f GFLOP/s; %d thread(s); target %s; median of %d "
               "interleaved rounds\noutput: one buffer for every column, %d bytes past the input's offset "
               "in a 4 KB page (--out-offset)\n(* tuned asked for a schedule the log does not "
               "have: the default)\n\n", peak, o.threads, sepconv_target_name(o.target), o.rounds,
               o.out_offset);
        printf("%-7s %-4s %9s", "layer", "", "ref ms");
        for (int c = 0; c < COLUMNS; c++)
            printf(" %10s", columns[c]);
        printf(" %9s %8s\n", "tuned/peer", "%peak");
    }
    for (size_t i = 0; i < model.count + extras; i++) {
        sepconv_layer extra, *sep = i < model.count ? &model.layers[i] : &extra;
        if (i >= model.count &&
            sepconv_layer_parse(extra_layers[i - model.count], &extra, &error) != SEPCONV_OK)
            continue;
        if (sep->op != SEPCONV_OP_SEP)
            continue;
        sepconv_layer dw, pw;
        if (sepconv_layer_split(sep, &dw, &pw, &error) != SEPCONV_OK)
            continue;
        const sepconv_layer *stages[3] = {&dw, &pw, sep};
        const char *names[3] = {"dw", "pw", "sep"};
        if (o.list) { /* the stages as a model file, for sepconv tune */
            for (int s = 0; s < 3; s++) {
                char spec[512];
                sepconv_layer_format(stages[s], spec, sizeof spec, NULL);
                printf("%s\n", spec);
            }
            continue;
        }
        for (int s = 0; s < 3; s++)
            if (bench_stage(stages[s], sep->name, names[s], &o, &results[count])) {
                if (!o.json)
                    print_row(&results[count], peak);
                count++;
                model_rows += i < model.count;
            }
    }
    if (o.list) {
    } else if (o.json) {
        print_json(results, count, peak, &o);
    } else {
        /* totals over the model's layers (not the extra ones), per stage */
        printf("\ntotal over the separable layers of %s:\n", o.model);
        for (int s = 0; s < 3; s++) {
            stage_result total = {.count = 0};
            snprintf(total.layer, sizeof total.layer, "total");
            snprintf(total.stage, sizeof total.stage, "%s", s == 0 ? "dw" : s == 1 ? "pw" : "sep");
            bool complete[COLUMNS];
            double sums[COLUMNS] = {0};
            for (int c = 0; c < COLUMNS; c++)
                complete[c] = true;
            for (int r = 0; r < model_rows; r++) {
                const stage_result *row = &results[r];
                if (strcmp(row->stage, total.stage) != 0)
                    continue;
                total.macs += row->macs;
                total.reference_ms += row->reference_ms;
                for (int c = 0; c < COLUMNS; c++) {
                    double ms = time_of(row, columns[c]);
                    sums[c] += ms;
                    complete[c] = complete[c] && ms > 0;
                }
            }
            for (int c = 0; c < COLUMNS; c++)
                if (complete[c] && sums[c] > 0) {
                    snprintf(total.names[total.count], sizeof total.names[0], "%s", columns[c]);
                    total.ms[total.count] = sums[c];
                    total.peer[total.count++] = c >= FIRST_PEER_COLUMN;
                }
            print_row(&total, peak);
        }
    }
    int failures = 0;
    for (int r = 0; r < count; r++)
        failures += results[r].failures;
    free(results);
    sepconv_model_free(&model);
    if (failures)
        fprintf(stderr, "bench: %d kernel(s) could not be made or computed a wrong result "
                "(above)\n", failures);
    return failures ? 1 : 0;
}
