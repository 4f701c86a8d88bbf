/*
 * sepconv.h -- the public API of libsepconv: generates, compiles (libtcc in
 * memory, or the system cc), verifies and tunes the C kernel of one
 * convolution layer with every size fixed, and counts and computes the layer
 * with reference loops, the oracle every kernel is checked against.
 *
 * A function that can fail returns a sepconv_status and, when `error` is not
 * NULL, fills it with what was wrong and what was expected; nothing exits or
 * aborts.  Sizes are int64_t, checked for overflow before any allocation.
 * The README and the comment above each definition give the details.
 */
#ifndef SEPCONV_H
#define SEPCONV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SEPCONV_VERSION "0.1.0"

/* ---------------------------------------------------------------- status */
typedef enum sepconv_status {
    SEPCONV_OK = 0,
    SEPCONV_INVALID,     /* bad argument or spec: the caller can fix it */
    SEPCONV_OVERFLOW,    /* a size or byte count does not fit in 64 bits */
    SEPCONV_NOMEM,       /* an allocation failed */
    SEPCONV_IO,          /* a file could not be read or written */
    SEPCONV_UNSUPPORTED, /* valid, but not something this build can do */
    SEPCONV_MISMATCH,    /* outputs disagree beyond the tolerance */
    SEPCONV_TEMPLATE,    /* a template failed: "template:line: message" */
    SEPCONV_LIMIT,       /* a budget was exceeded: size, memory, time */
    SEPCONV_COMPILE      /* the compiler rejected the source, or a symbol is missing */
} sepconv_status;
#define SEPCONV_STATUS_COUNT 10
#define SEPCONV_MESSAGE_MAX 1024

/* Filled by a failing call; the caller owns it (usually on the stack). */
typedef struct sepconv_error {
    sepconv_status status;
    char message[SEPCONV_MESSAGE_MAX];
} sepconv_error;

/* A short fixed name for a status ("ok", "invalid", ...). */
const char *sepconv_status_name(sepconv_status status);

/* ----------------------------------------------------------------- layer */
typedef enum sepconv_op {
    SEPCONV_OP_CONV, /* standard convolution, M -> N */
    SEPCONV_OP_DW,   /* depthwise: one DK x DK filter per input channel */
    SEPCONV_OP_PW,   /* pointwise: 1x1 convolution, M -> N */
    SEPCONV_OP_SEP   /* depthwise, then pointwise */
} sepconv_op;
#define SEPCONV_OP_COUNT 4

typedef enum sepconv_layout {
    SEPCONV_LAYOUT_NHWC, /* TensorFlow's tensors and weights */
    SEPCONV_LAYOUT_NCHW  /* PyTorch's tensors and weights */
} sepconv_layout;
#define SEPCONV_LAYOUT_COUNT 2

typedef enum sepconv_activation {
    SEPCONV_ACT_NONE,
    SEPCONV_ACT_RELU, /* x < 0 ? 0 : x; NaN passes through */
    SEPCONV_ACT_RELU6 /* x < 0 ? 0 : x > 6 ? 6 : x; NaN passes through */
} sepconv_activation;
#define SEPCONV_ACTIVATION_COUNT 3

typedef enum sepconv_padding {
    SEPCONV_PAD_SAME,    /* TensorFlow: output = ceil(in / stride) */
    SEPCONV_PAD_VALID,   /* no padding */
    SEPCONV_PAD_EXPLICIT /* pad=P or pad=T:L:B:R */
} sepconv_padding;

/* The element type of a layer's activations and weights. */
typedef enum sepconv_dtype {
    SEPCONV_DTYPE_FLOAT32,
    SEPCONV_DTYPE_INT8 /* TFLite's int8: int8 tensors, int32 biases, per-channel weight scales */
} sepconv_dtype;

/* int8 activations as TFLite quantizes them: real = scale * (q - zero).
 * `mid` is sep's depthwise output, the pointwise stage's input. */
typedef struct sepconv_quantization {
    float in_scale, mid_scale, out_scale; /* finite, > 0 */
    int32_t in_zero, mid_zero, out_zero;  /* -128..127 */
} sepconv_quantization;

#define SEPCONV_NAME_MAX 64

/* A validated layer (made by sepconv_layer_parse): the spec, then what it implies. */
typedef struct sepconv_layer {
    sepconv_op op;
    char name[SEPCONV_NAME_MAX];
    int64_t batch, in_h, in_w;
    int64_t m, n, kernel; /* input channels; output channels (0 for dw); DK (1 for pw) */
    int64_t stride, dilation, multiplier;
    sepconv_padding padding;
    int64_t pad_top, pad_left, pad_bottom, pad_right; /* resolved */
    sepconv_layout layout;
    int bias;                            /* 1: every stage adds a bias */
    sepconv_activation dw_act, pw_act;   /* per stage of dw, pw and sep */
    sepconv_activation conv_act;         /* the single stage of conv */
    sepconv_dtype dtype;
    sepconv_quantization quant;          /* dtype=int8 only; zeros otherwise */
    int64_t out_h, out_w; /* derived from here on */
    int64_t mid_c, out_c; /* depthwise output channels (m * multiplier); final ones */
    int64_t input_elements, output_elements;
    int64_t mid_elements; /* sep: the depthwise result; 0 otherwise */
    int64_t weight_elements, bias_elements;       /* conv, dw or pw stage */
    int64_t pw_weight_elements, pw_bias_elements; /* sep's pointwise stage */
} sepconv_layer;

/* Parses "key=value" tokens separated by spaces or commas into a layer. */
sepconv_status sepconv_layer_parse(const char *spec, sepconv_layer *layer,
                                   sepconv_error *error);
/* Writes the canonical spec (parses back to the same layer) into `out`. */
sepconv_status sepconv_layer_format(const sepconv_layer *layer, char *out, size_t capacity,
                                    sepconv_error *error);
/* Splits a sep layer into a dw layer and a pw layer over its output. */
sepconv_status sepconv_layer_split(const sepconv_layer *sep, sepconv_layer *dw,
                                   sepconv_layer *pw, sepconv_error *error);

/* The spec name of an op, layout, activation ("sep", "nhwc", "relu6"). */
const char *sepconv_op_name(sepconv_op op);
const char *sepconv_layout_name(sepconv_layout layout);
const char *sepconv_activation_name(sepconv_activation act);

/* A model file: one layer spec per line, '#' comments; sepconv_model_free frees it. */
typedef struct sepconv_model {
    sepconv_layer *layers;
    size_t count;
} sepconv_model;

/* Reads a model file; errors name the file and line ("f.layers:3: ..."). */
sepconv_status sepconv_model_load(const char *path, sepconv_model *model, sepconv_error *error);
/* Parses model text; `origin` names it in error messages. */
sepconv_status sepconv_model_parse(const char *text, const char *origin, sepconv_model *model,
                                   sepconv_error *error);
void sepconv_model_free(sepconv_model *model);

/* ------------------------------------------------------------------ cost */
typedef struct sepconv_cost {
    int64_t macs;            /* multiply-adds of the whole layer */
    int64_t dw_macs, pw_macs;/* sep's share per stage (dw or pw ops: all) */
    int64_t parameters;      /* weights plus biases */
    int64_t weights, biases;
    int64_t dw_parameters, pw_parameters; /* per stage kind, as the macs */
    int64_t bytes_read;      /* activations read (4 bytes each, int8 1), unfused */
    int64_t bytes_written;   /* activations written, likewise */
    int64_t intermediate_bytes; /* sep: depthwise output, 0 otherwise */
    int64_t conv_macs;       /* sep: a standard conv of the same shape */
    double ratio_to_conv;    /* sep: macs / conv_macs; 0 otherwise */
    int64_t parameter_bytes; /* fp32: 4 a parameter; int8: weights 1, biases 4, and
                              * 4 a weight scale (one per output channel a stage) */
} sepconv_cost;

/* Counts the cost of a validated layer (fails only on overflow). */
sepconv_status sepconv_cost_compute(const sepconv_layer *layer, sepconv_cost *cost,
                                    sepconv_error *error);
/* Adds `cost` into `total` field by field (ratio excepted), checking overflow. */
sepconv_status sepconv_cost_accumulate(sepconv_cost *total, const sepconv_cost *cost,
                                       sepconv_error *error);

/* ------------------------------------------------------------- reference */
/* A layer's tensors in its layout; pw_* are sep's pointwise stage, biases
 * NULL without bias.  Weights: conv [dk][dk][m][n] / [n][m][dk][dk], dw
 * [dk][dk][m][mult] / [m*mult][1][dk][dk], pw [m][n] / [n][m][1][1]. */
typedef struct sepconv_tensors {
    const float *input, *weights, *bias, *pw_weights, *pw_bias;
} sepconv_tensors;

/* Computes the layer with generic loops, in double, rounding once per stage. */
sepconv_status sepconv_reference_run(const sepconv_layer *layer, const sepconv_tensors *tensors,
                                     float *output, sepconv_error *error);
/* A dtype=int8 layer's tensors (layouts as the float ones'): int8
 * activations and weights, int32 biases (NULL without bias), and one float
 * weight scale per output channel of each stage (dw, sep's depthwise:
 * m*mult; pw, conv, sep's pointwise: n), the weights' zero point 0. */
typedef struct sepconv_qtensors {
    const int8_t *input, *weights, *pw_weights;
    const int32_t *bias, *pw_bias;
    const float *weight_scales, *pw_weight_scales;
} sepconv_qtensors;

/* The int8 bounds an activation clamps to, from the output's scale and zero
 * point (CalculateActivationRangeQuantized): none [-128, 127], relu
 * [max(-128, zero), 127], relu6 up to min(127, zero + round(6 / scale)). */
void sepconv_q_activation_range(sepconv_activation act, float scale, int32_t zero,
                                int32_t *min, int32_t *max);
/* Checks an int8 layer's quantization and weight scales (finite, > 0); the
 * message names the value that is not. */
sepconv_status sepconv_quantization_check(const sepconv_layer *layer, const sepconv_qtensors *t,
                                          sepconv_error *error);
/* Computes a dtype=int8 layer with TensorFlow Lite's integer arithmetic
 * (the README's int8 section); OVERFLOW when a sum leaves int32. */
sepconv_status sepconv_reference_run_int8(const sepconv_layer *layer, const sepconv_qtensors *t,
                                          int8_t *output, sepconv_error *error);
/* Per output, the sum of its terms' magnitudes (scales the tolerance). */
sepconv_status sepconv_reference_magnitude(const sepconv_layer *layer,
                                           const sepconv_tensors *tensors, double *magnitude,
                                           sepconv_error *error);

/* ---------------------------------------------------------------- compare */
/* gamma(K) = K*u / (1 - K*u), u = 2^-24: the error bound of a K-term sum. */
double sepconv_tolerance_gamma(int64_t reduction_length);
/* K, the products each output sums: conv dk*dk*m, dw dk*dk, pw m, sep dk*dk + m. */
int64_t sepconv_reduction_length(const sepconv_layer *layer);

typedef struct sepconv_comparison {
    int64_t checked, mismatches;
    double max_abs_error, max_rel_error;
    double worst_ratio; /* max |error| / tolerance: <= 1 passes */
    int64_t first_index, first_n, first_h, first_w, first_c; /* first mismatch, if any */
    float first_expected, first_actual;
    double first_tolerance;
} sepconv_comparison;

/* Compares with the reference within gamma(K+1) * magnitude; MISMATCH if any differ. */
sepconv_status sepconv_compare(const sepconv_layer *layer, const float *expected,
                               const float *actual, const double *magnitude,
                               sepconv_comparison *result, sepconv_error *error);

/* --------------------------------------------------------------- schedule */
/* What generated code may use: an instruction set, or AUTO = the best the
 * running CPU has.  Each works with either backend: cc compiles intrinsics of
 * the ISA, tcc compiles plain C calling libsepconv's micro-kernels of it. */
typedef enum sepconv_target {
    SEPCONV_TARGET_PORTABLE, /* plain C, no micro-kernels */
    SEPCONV_TARGET_AVX2,     /* x86-64 AVX2 + FMA */
    SEPCONV_TARGET_AVX512,   /* x86-64 AVX-512F */
    SEPCONV_TARGET_NEON,     /* AArch64 Advanced SIMD */
    SEPCONV_TARGET_AUTO      /* resolved by sepconv_target_resolve; "native" parses as it */
} sepconv_target;
#define SEPCONV_TARGET_COUNT 5     /* names, AUTO included */
#define SEPCONV_TARGET_ISA_COUNT 4 /* instruction sets: PORTABLE .. NEON */

/* The compiler that turns generated source into code. */
typedef enum sepconv_backend {
    SEPCONV_BACKEND_TCC, /* libtcc, in memory: ~1 ms to compile, plain code */
    SEPCONV_BACKEND_CC   /* the system compiler: slow to build, fast code */
} sepconv_backend;
#define SEPCONV_BACKEND_COUNT 2

/* The spec name of a target ("portable", "avx2", "avx512", "neon", "auto") and its
 * parser ("native" is an alias of "auto"). */
const char *sepconv_target_name(sepconv_target target);
sepconv_status sepconv_target_parse(const char *text, sepconv_target *target,
                                    sepconv_error *error);
/* AUTO -> the best ISA the running CPU has; an ISA it lacks -> UNSUPPORTED naming its features. */
sepconv_status sepconv_target_resolve(sepconv_target requested, sepconv_target *resolved,
                                      sepconv_error *error);
/* The spec name of a backend ("tcc", "cc") and its parser. */
const char *sepconv_backend_name(sepconv_backend backend);
sepconv_status sepconv_backend_parse(const char *text, sepconv_backend *backend,
                                     sepconv_error *error);

/* ------------------------------------------------------------- generator */
/* The default budgets of generated source: for tcc, and for the slower cc. */
#define SEPCONV_SOURCE_BUDGET_DEFAULT ((size_t)4 << 20)
#define SEPCONV_CC_SOURCE_BUDGET_DEFAULT ((size_t)128 << 10)

/* How to generate: all fields may be zero for the defaults. */
typedef struct sepconv_generate_options {
    const char *name;           /* kernel symbol; NULL derives one */
    const char *template_dir;   /* NULL: $SEPCONV_TEMPLATE_DIR, else built in */
    size_t source_budget;       /* bytes of C; 0: the default (for_cc's) */
    int64_t instruction_budget; /* Lua instructions; 0: 500 million */
    size_t memory_budget;       /* Lua heap bytes; 0: 256 MiB */
    int for_cc;                 /* 1: for the cc backend (an ISA's intrinsics);
                                   0: for tcc (an ISA's micro-kernels, called) */
    int intrinsics;             /* 1: the ISA's intrinsics though not for_cc (C for
                                   any compiler, with the tcc budget: sepconv gen) */
} sepconv_generate_options;
#define SEPCONV_SYMBOL_MAX 128

/* -------------------------------------------------------------- backends */
/* The default wall-clock limit of one cc compile, in seconds. */
#define SEPCONV_CC_TIMEOUT_DEFAULT 30.0

/* How the system compiler ("cc" backend) is run and cached. */
typedef struct sepconv_cc_options {
    const char *compiler;   /* NULL: $CC, else "cc"; split at white space */
    const char *flags;      /* NULL: "-O3 -march=native" */
    const char *save_dir;   /* where failing sources are kept; NULL: $TMPDIR */
    const char *cache_dir;  /* NULL: $XDG_CACHE_HOME/sepconv or ~/.cache/sepconv */
    int no_cache;           /* 1: no cache (also SEPCONV_CACHE=off) */
    double timeout_seconds; /* of one compile; 0: SEPCONV_CC_TIMEOUT_DEFAULT */
} sepconv_cc_options;

/* Kills every compiler the cc backend runs; async-signal-safe, for SIGTERM handlers. */
void sepconv_cc_kill_all(void);

/* A kernel computes rows [row_begin, row_end) of batch*out_h; pack fills `packed`. */
typedef void (*sepconv_kernel_fn)(const float *input, const float *weights, const float *bias,
                                  const float *pw_weights, const float *pw_bias,
                                  const float *packed, float *output, void *scratch,
                                  long row_begin, long row_end);
typedef void (*sepconv_pack_fn)(const float *weights, const float *pw_weights, float *packed);

/* ----------------------------------------------------------------- verify */
/* A compiled kernel as verify and the runtime call it. */
typedef struct sepconv_kernel_code {
    sepconv_kernel_fn run;
    sepconv_pack_fn pack;
    int64_t packed_elements, scratch_bytes;
} sepconv_kernel_code;

/* What one verification found, beyond the comparison. */
typedef struct sepconv_verify_report {
    sepconv_comparison comparison;
    int64_t guard_damage; /* output guard floats overwritten */
    int64_t untouched;    /* outputs left as the NaN they were filled with */
} sepconv_verify_report;

/* Checks a kernel against the reference on several inputs; MISMATCH names the pass. */
sepconv_status sepconv_verify_kernel(const sepconv_layer *layer,
                                     const sepconv_kernel_code *kernel, uint64_t seed,
                                     sepconv_verify_report *report, sepconv_error *error);

/* A generated dtype=int8 kernel (conv, dw, pw so far): output rows [row_begin,
 * row_end); requant holds each output channel's Q31 significand, then its
 * shift (sepconv_int8_requant); bias NULL without bias; packed NULL unless
 * the kernel packs (then pack filled it, and weights and bias go unread). */
typedef void (*sepconv_qkernel_fn)(const int8_t *input, const int8_t *weights,
                                   const int32_t *bias, const int32_t *packed,
                                   const int32_t *requant, int8_t *output, long row_begin,
                                   long row_end);
/* Packs an int8 kernel's weights and bias (NULL without bias) into packed. */
typedef void (*sepconv_qpack_fn)(const int8_t *weights, const int32_t *bias, int32_t *packed);
/* A compiled int8 kernel as verify and the runtime call it: pack is NULL and
 * packed_elements (int32) 0 for a kernel that packs nothing. */
typedef struct sepconv_qkernel_code {
    sepconv_qkernel_fn run;
    sepconv_qpack_fn pack;
    int64_t packed_elements;
} sepconv_qkernel_code;
/* An int8 conv, dw or pw layer's requantization table (2 x out_c ints) from
 * its weight scales: TFLite's QuantizeMultiplier of in_scale *
 * weight_scale[c] / out_scale, the significands then the shifts. */
sepconv_status sepconv_int8_requant(const sepconv_layer *layer, const float *weight_scales,
                                    int32_t *table, sepconv_error *error);
/* Checks an int8 kernel against the int8 reference bit for bit (tolerance
 * 0) on seeded full-range data, extreme values and an input of in_zero,
 * rows split in two calls, guard bytes around the output; MISMATCH names
 * the pass and the first output that differs. */
sepconv_status sepconv_verify_int8_kernel(const sepconv_layer *layer,
                                          const sepconv_qkernel_code *kernel, uint64_t seed,
                                          sepconv_verify_report *report, sepconv_error *error);

/* ----------------------------------------------------------------- kernel */
/* How to make a kernel; sepconv_kernel_defaults() fills the defaults. */
typedef struct sepconv_kernel_options {
    sepconv_backend backend;
    sepconv_target target; /* AUTO, or an ISA the CPU must have (else UNSUPPORTED) */
    const char *schedule; /* "knob=value,..."; NULL, "": default; "auto": the log's best */
    const char *log_path; /* the tuning log for "auto"; NULL: the default */
    int threads;          /* 1 by default; 0: every usable CPU; capped to those */
    int verify;           /* 1: check against the reference when created */
    uint64_t verify_seed;
    sepconv_generate_options generate;
    sepconv_cc_options cc;
} sepconv_kernel_options;

/* The default options: tcc, auto (resolved when the kernel is made), default
 * schedule, one thread, verified. */
sepconv_kernel_options sepconv_kernel_defaults(void);

/* A compiled, verified kernel for one layer, immutable once its weights are set. */
typedef struct sepconv_kernel sepconv_kernel;

/* What making a kernel took. */
typedef struct sepconv_kernel_info {
    char symbol[SEPCONV_SYMBOL_MAX];
    char schedule[256];
    sepconv_backend backend;
    sepconv_target target; /* the ISA it was built for (AUTO resolved) */
    double generate_seconds, compile_seconds, verify_seconds;
    int from_cache; /* the cc backend found it in its disk cache */
    int tuned;      /* schedule "auto" found a tuning record */
    int threads;    /* the threads a run uses */
    int verified;
    sepconv_verify_report report;
    size_t source_bytes;
} sepconv_kernel_info;

/* Generates, compiles and (if asked) verifies a layer's kernel. */
sepconv_status sepconv_kernel_create(const sepconv_layer *layer,
                                     const sepconv_kernel_options *options,
                                     sepconv_kernel **kernel, sepconv_error *error);
/* Copies (and packs) the weights and biases, not the input; call once before running. */
sepconv_status sepconv_kernel_set_weights(sepconv_kernel *kernel,
                                          const sepconv_tensors *tensors, sepconv_error *error);
/* Sets a dtype=int8 kernel's weights, int32 bias and weight scales (copied;
 * the scales become its requantization table). */
sepconv_status sepconv_kernel_set_qweights(sepconv_kernel *kernel, const sepconv_qtensors *t,
                                           sepconv_error *error);
/* Runs a dtype=int8 kernel (int8 input and output), as sepconv_kernel_run. */
sepconv_status sepconv_kernel_run_int8(const sepconv_kernel *kernel, const int8_t *input,
                                       int8_t *output, sepconv_error *error);
/* Runs the layer in the kernel's own workspace: one call at a time (else INVALID). */
sepconv_status sepconv_kernel_run(const sepconv_kernel *kernel, const float *input,
                                  float *output, sepconv_error *error);
/* The workspace bytes a run needs (0 if none). */
size_t sepconv_kernel_workspace_bytes(const sepconv_kernel *kernel);
/* Runs the layer in the caller's float-aligned workspace: reentrant, one per thread. */
sepconv_status sepconv_kernel_run_with_workspace(const sepconv_kernel *kernel,
                                                 const float *input, float *output,
                                                 void *workspace, size_t workspace_bytes,
                                                 sepconv_error *error);

/* The CPUs this process may use (affinity, cgroup quota); at least 1. */
int sepconv_usable_cpus(void);
/* The threads options.threads = `requested` runs on: 0, or too many, gives the usable CPUs. */
int sepconv_thread_count(int requested);

/* A kernel's layer, its info, and its release (NULL is a no-op). */
const sepconv_layer *sepconv_kernel_layer(const sepconv_kernel *kernel);
const sepconv_kernel_info *sepconv_kernel_get_info(const sepconv_kernel *kernel);
void sepconv_kernel_free(sepconv_kernel *kernel);

/* Seconds on a monotonic clock. */
double sepconv_seconds(void);

/* ------------------------------------------------------------ environment */
/* What a measurement depends on besides the layer and the schedule. */
typedef struct sepconv_environment {
    char version[16];   /* sepconv's */
    char backend[8];    /* "tcc" or "cc" */
    char target[16];    /* the ISA code runs with: "auto" resolved ("avx2", ...) */
    char compiler[128]; /* libtcc's version, or the first line of cc --version */
    char flags[128];    /* cc flags; "" for tcc */
    char cpu[96];       /* the processor's model name */
    char features[128]; /* the SIMD features that matter: "avx2 fma avx512f" */
    int threads;
} sepconv_environment;

/* Describes this machine and the kernel options' backend. */
sepconv_status sepconv_environment_get(const sepconv_kernel_options *options,
                                       sepconv_environment *environment, sepconv_error *error);

/* -------------------------------------------------------------- tune log */
/* One measured candidate: a JSON line of the tuning log (see the README). */
typedef struct sepconv_tune_record {
    char spec[512];     /* canonical layer spec */
    char op[8];
    char schedule[256]; /* canonical schedule */
    sepconv_environment environment;
    char status[16];    /* "ok" or "failed" */
    char error[256];    /* why it failed */
    double median_ms;   /* median run time */
    double spread;      /* interquartile range / median */
    double baseline_ms; /* the default schedule, interleaved in the same run */
    double ratio;       /* median_ms / baseline_ms: < 1 is faster */
    char timestamp[32]; /* UTC, ISO 8601 */
} sepconv_tune_record;
#define SEPCONV_LOG_WARNINGS 8

/* A tuning log read into memory; sepconv_log_free frees it. */
typedef struct sepconv_tune_log {
    sepconv_tune_record *records;
    size_t count;
    size_t skipped;                           /* corrupt or truncated lines */
    char warnings[SEPCONV_LOG_WARNINGS][256]; /* the first few, naming lines */
} sepconv_tune_log;

/* The default log: $XDG_CACHE_HOME/sepconv/tuning.jsonl (or ~/.cache/...). */
sepconv_status sepconv_log_default_path(char *path, size_t capacity, sepconv_error *error);
/* Appends a record as one atomic line (concurrent writers are safe) to a regular file. */
sepconv_status sepconv_log_append(const char *path, const sepconv_tune_record *record,
                                  sepconv_error *error);
/* Reads a log, skipping and counting invalid lines; a missing file is an empty log. */
sepconv_status sepconv_log_read(const char *path, sepconv_tune_log *log, sepconv_error *error);
/* Parses log text as sepconv_log_read does; `origin` names it in warnings. */
sepconv_status sepconv_log_parse(const char *text, size_t length, const char *origin,
                                 sepconv_tune_log *log, sepconv_error *error);
/* Drops records equal to an earlier one, keeping order; *dropped (if any) counts them. */
sepconv_status sepconv_log_unique(sepconv_tune_log *log, size_t *dropped, sepconv_error *error);
/* The successful record of `spec` in `environment` with the lowest ratio, or NULL. */
const sepconv_tune_record *sepconv_log_best(const sepconv_tune_log *log, const char *spec,
                                            const sepconv_environment *environment);
/* Formats a record as its JSON line (no newline) into malloc'd *line. */
sepconv_status sepconv_log_format(const sepconv_tune_record *record, char **line,
                                  sepconv_error *error);
/* Replaces the file `path` with the log's records, atomically (a temporary and a rename). */
sepconv_status sepconv_log_write(const char *path, const sepconv_tune_log *log,
                                 sepconv_error *error);
void sepconv_log_free(sepconv_tune_log *log);

/* Why schedule "auto" found no record for a layer, and the `sepconv tune` command
 * that makes one. */
sepconv_status sepconv_log_missing(const sepconv_layer *layer,
                                   const sepconv_kernel_options *options, const char *log_path,
                                   char *out, size_t capacity, sepconv_error *error);

/* ------------------------------------------------------------------- tune */
/* Every strategy draws from the layer's distinct schedules: those the
 * source-size budget refuses, and those that only repeat another (a knob
 * with no effect on the layer), are never drawn. */
typedef enum sepconv_strategy {
    SEPCONV_STRATEGY_GRID,   /* in space order */
    SEPCONV_STRATEGY_RANDOM, /* a seeded random order */
    SEPCONV_STRATEGY_GUIDED  /* the log's best dw + best pw composed (sep), then by an
                                analytic estimate, every 4th one seeded random */
} sepconv_strategy;

/* What a tuning sweep reports as it goes. */
typedef struct sepconv_tune_progress {
    const sepconv_layer *layer;
    size_t done, total;
    double elapsed_seconds;
    const sepconv_tune_record *last, *best;
} sepconv_tune_progress;

/* How to tune; sepconv_tune_defaults() fills the defaults. */
typedef struct sepconv_tune_options {
    sepconv_kernel_options kernel; /* backend, target, threads, cc flags */
    sepconv_strategy strategy;
    uint64_t seed;
    int64_t trials;        /* 0: every candidate */
    double budget_seconds; /* wall-clock bound on the whole call; 0: none */
    int shard, shards;     /* this sweep's part: 0 of 1 for all */
    const char *log_path;  /* NULL: the default log; records are appended */
    int no_log;
    int sequential;        /* 1: compile each candidate after timing the last (by default
                              the next ones compile on another core meanwhile) */
    void (*progress)(void *context, const sepconv_tune_progress *progress);
    void *progress_context;
} sepconv_tune_options;

/* The defaults of a sweep: the kernel's, guided, seed 1, one shard, the default log. */
sepconv_tune_options sepconv_tune_defaults(void);

/* Tuning one layer: every candidate, best first (failures last), and the default's;
 * sepconv_tune_result_free frees it. */
typedef struct sepconv_tune_result {
    sepconv_tune_record *records;
    size_t count;
    size_t not_tried; /* candidates left when the budget ran out */
    size_t pruned;    /* schedules of the space never drawn: refused by the source-size
                         budget, or repeating another */
    sepconv_tune_record baseline;
    double reference_ms;
    int64_t macs;
} sepconv_tune_result;

/* Compiles, verifies, times and logs each candidate against the default schedule. */
sepconv_status sepconv_tune_layer(const sepconv_layer *layer,
                                  const sepconv_tune_options *options,
                                  sepconv_tune_result *result, sepconv_error *error);
void sepconv_tune_result_free(sepconv_tune_result *result);

/* -------------------------------------------------------------------- npy */
#define SEPCONV_RANK_MAX 8

/* The element types of .npy files: float32 ('<f4'), int8 ('|i1'), int32 ('<i4'). */
typedef enum sepconv_npy_type {
    SEPCONV_NPY_FLOAT32, SEPCONV_NPY_INT8, SEPCONV_NPY_INT32
} sepconv_npy_type;

/* An array of a NumPy .npy file; sepconv_array_free frees it. */
typedef struct sepconv_array {
    float *data; /* a float32 array's elements; NULL for the other types */
    int rank;
    int64_t shape[SEPCONV_RANK_MAX];
    int64_t count;
    sepconv_npy_type type;
    void *values; /* the elements, of any type (data, for float32) */
} sepconv_array;

/* Reads a .npy file: little-endian float32 ('<f4'), C order, any rank. */
sepconv_status sepconv_npy_read(const char *path, sepconv_array *array, sepconv_error *error);
/* Reads a .npy file whose elements must be of `type`, C order, any rank. */
sepconv_status sepconv_npy_read_as(const char *path, sepconv_npy_type type,
                                   sepconv_array *array, sepconv_error *error);
/* Writes a .npy file (format 1.0, '<f4', C order). */
sepconv_status sepconv_npy_write(const char *path, const float *data, const int64_t *shape,
                                 int rank, sepconv_error *error);
/* Writes a .npy file of `type` elements (format 1.0, C order). */
sepconv_status sepconv_npy_write_as(const char *path, sepconv_npy_type type,
                                    const void *values, const int64_t *shape, int rank,
                                    sepconv_error *error);
void sepconv_array_free(sepconv_array *array);

/* The tensors of a layer, as the .npy files and the CLI name them. */
typedef enum sepconv_tensor_kind {
    SEPCONV_TENSOR_INPUT, SEPCONV_TENSOR_WEIGHTS, SEPCONV_TENSOR_BIAS,
    SEPCONV_TENSOR_PW_WEIGHTS, SEPCONV_TENSOR_PW_BIAS, SEPCONV_TENSOR_OUTPUT
} sepconv_tensor_kind;

/* The documented shape of a layer's tensor (rank 0: it has none). */
void sepconv_tensor_shape(const sepconv_layer *layer, sepconv_tensor_kind kind,
                          int64_t shape[SEPCONV_RANK_MAX], int *rank);
/* Checks an array against the documented shape; the message names both shapes. */
sepconv_status sepconv_check_shape(const sepconv_layer *layer, sepconv_tensor_kind kind,
                                   const sepconv_array *array, const char *what,
                                   sepconv_error *error);

/* --------------------------------------------------------------- buffers */
/* Storage for a layer's tensors (NULL where it has none); sepconv_buffers_free frees it. */
typedef struct sepconv_buffers {
    float *input, *weights, *bias, *pw_weights, *pw_bias, *output;
} sepconv_buffers;

/* Allocates every tensor of a layer, zeroed; those of a page or more start a page. */
sepconv_status sepconv_buffers_alloc(const sepconv_layer *layer, sepconv_buffers *buffers,
                                     sepconv_error *error);
/* Fills inputs, weights and biases with seeded uniform values in [-1, 1). */
void sepconv_buffers_fill_random(const sepconv_layer *layer, sepconv_buffers *buffers,
                                 uint64_t seed);
/* The read-only view of the buffers that the kernels take. */
sepconv_tensors sepconv_buffers_tensors(const sepconv_buffers *buffers);
void sepconv_buffers_free(sepconv_buffers *buffers);

/* ---------------------------------------------------------------- stats */
/* The q-quantile (0 <= q <= 1) of samples it sorts in place, as numpy's; NaN if none. */
double sepconv_quantile(double *samples, size_t count, double q);
/* sepconv_quantile(samples, count, 0.5). */
double sepconv_median(double *samples, size_t count);

#ifdef __cplusplus
}
#endif

#endif /* SEPCONV_H */
