/*
 * sepconv.h -- the one public header of libsepconv.
 *
 * sepconv describes a convolution layer with every size fixed (the "layer"),
 * counts its cost, computes it with generic reference loops (the oracle every
 * generated kernel is checked against) and compares outputs with a tolerance
 * derived from the arithmetic.
 *
 * Conventions (as in SQLite): every function that can fail returns a
 * sepconv_status and, when `error` is not NULL, fills it with a message that
 * says what was wrong and what was expected.  Nothing in the library exits or
 * aborts.  Sizes are int64_t; every product is checked for overflow before
 * anything is allocated.
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
    SEPCONV_COMPILE      /* the compiler rejected the source, or its code
                            lacks a symbol the kernel needs */
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

#define SEPCONV_NAME_MAX 64

/*
 * One layer, validated.  The first group is what the spec says; the second
 * follows from it.  Built only by sepconv_layer_parse (or _validate), so every
 * derived count is known to fit in int64_t, in bytes as well as elements.
 */
typedef struct sepconv_layer {
    sepconv_op op;
    char name[SEPCONV_NAME_MAX];
    int64_t batch, in_h, in_w;
    int64_t m;          /* input channels */
    int64_t n;          /* output channels of conv, pw, sep; 0 for dw */
    int64_t kernel;     /* DK; 1 for pw */
    int64_t stride, dilation, multiplier;
    sepconv_padding padding;
    int64_t pad_top, pad_left, pad_bottom, pad_right; /* resolved */
    sepconv_layout layout;
    int bias;                            /* 1: every stage adds a bias */
    sepconv_activation dw_act, pw_act;   /* per stage of dw, pw and sep */
    sepconv_activation conv_act;         /* the single stage of conv */

    /* derived */
    int64_t out_h, out_w;
    int64_t mid_c;        /* depthwise output channels, m * multiplier */
    int64_t out_c;        /* channels of the final output */
    int64_t input_elements, output_elements;
    int64_t mid_elements; /* sep: the depthwise result; 0 otherwise */
    int64_t weight_elements, bias_elements;       /* conv, dw or pw stage */
    int64_t pw_weight_elements, pw_bias_elements; /* sep's pointwise stage */
} sepconv_layer;

/* Parses "key=value" tokens separated by spaces or commas into a layer. */
sepconv_status sepconv_layer_parse(const char *spec, sepconv_layer *layer,
                                   sepconv_error *error);

/* Writes the canonical spec (parses back to the same layer) into `out`. */
sepconv_status sepconv_layer_format(const sepconv_layer *layer, char *out,
                                    size_t capacity, sepconv_error *error);

/* The two stages of a sep layer as layers of their own: a dw layer (the
 * depthwise activation) and a pw layer over its output (the pointwise one). */
sepconv_status sepconv_layer_split(const sepconv_layer *sep, sepconv_layer *dw,
                                   sepconv_layer *pw, sepconv_error *error);

/* The spec name of an op, layout, activation ("sep", "nhwc", "relu6"). */
const char *sepconv_op_name(sepconv_op op);
const char *sepconv_layout_name(sepconv_layout layout);
const char *sepconv_activation_name(sepconv_activation act);

/* A model file: one layer spec per line, '#' comments, blank lines. */
typedef struct sepconv_model {
    sepconv_layer *layers;
    size_t count;
} sepconv_model;

/* Reads a model file; errors name the file and line ("f.layers:3: ..."). */
sepconv_status sepconv_model_load(const char *path, sepconv_model *model,
                                  sepconv_error *error);
/* Parses model text; `origin` names it in error messages. */
sepconv_status sepconv_model_parse(const char *text, const char *origin,
                                   sepconv_model *model, sepconv_error *error);
void sepconv_model_free(sepconv_model *model);

/* ------------------------------------------------------------------ cost */

typedef struct sepconv_cost {
    int64_t macs;            /* multiply-adds of the whole layer */
    int64_t dw_macs, pw_macs;/* sep's share per stage (dw or pw ops: all) */
    int64_t parameters;      /* weights plus biases */
    int64_t weights, biases;
    int64_t dw_parameters, pw_parameters; /* per stage kind, as the macs */
    int64_t bytes_read;      /* activations read, fp32, unfused */
    int64_t bytes_written;   /* activations written, fp32, unfused */
    int64_t intermediate_bytes; /* sep: depthwise output, 0 otherwise */
    int64_t conv_macs;       /* sep: a standard conv of the same shape */
    double ratio_to_conv;    /* sep: macs / conv_macs; 0 otherwise */
} sepconv_cost;

/* Counts the cost of a validated layer (fails only on overflow). */
sepconv_status sepconv_cost_compute(const sepconv_layer *layer,
                                    sepconv_cost *cost, sepconv_error *error);

/* Adds `cost` into `total` field by field (ratio excepted), checking overflow. */
sepconv_status sepconv_cost_accumulate(sepconv_cost *total,
                                       const sepconv_cost *cost,
                                       sepconv_error *error);

/* ------------------------------------------------------------- reference */

/*
 * The tensors of one layer, in the layout the spec names.  `weights` and
 * `bias` are the first (or only) stage; `pw_weights` and `pw_bias` the
 * pointwise stage of sep.  Biases are NULL when layer->bias is 0.
 *
 *   layout  conv            dw                     pw
 *   nhwc    [dk][dk][m][n]  [dk][dk][m][mult]      [m][n]
 *   nchw    [n][m][dk][dk]  [m*mult][1][dk][dk]    [n][m][1][1]
 *
 * Depthwise output channel c*mult + j reads input channel c.
 */
typedef struct sepconv_tensors {
    const float *input;
    const float *weights;
    const float *bias;
    const float *pw_weights;
    const float *pw_bias;
} sepconv_tensors;

/* Computes the layer with generic loops, in double, rounding once per stage. */
sepconv_status sepconv_reference_run(const sepconv_layer *layer,
                                     const sepconv_tensors *tensors,
                                     float *output, sepconv_error *error);

/*
 * Computes, per output, the sum of the magnitudes of the terms that make it
 * (the reference run on |input|, |weights|, |bias| without activations).
 * It scales the comparison tolerance.
 */
sepconv_status sepconv_reference_magnitude(const sepconv_layer *layer,
                                           const sepconv_tensors *tensors,
                                           double *magnitude,
                                           sepconv_error *error);

/* ---------------------------------------------------------------- compare */

/*
 * Tolerance.  A float dot product of K terms, in any order, with or without
 * FMA, is within gamma(K) * sum|terms| of the exact value, where
 * gamma(K) = K*u / (1 - K*u) and u = 2^-24 (Higham, Accuracy and Stability of
 * Numerical Algorithms, 3.1).  The reference is exact but for one final
 * rounding (u * |expected|).  So output i passes when
 *
 *   |actual - expected| <= gamma(K + 1) * magnitude[i] + u * |expected|
 *                          + K * FLT_TRUE_MIN
 *
 * with K the reduction length of the op (conv dk*dk*m, dw dk*dk, pw m,
 * sep dk*dk + m; the +1 is the bias), magnitude[i] from
 * sepconv_reference_magnitude, and the last term the underflow allowance for
 * subnormal products.  NaN matches only NaN; an infinity only itself.
 */
double sepconv_tolerance_gamma(int64_t reduction_length);
int64_t sepconv_reduction_length(const sepconv_layer *layer);

typedef struct sepconv_comparison {
    int64_t checked, mismatches;
    double max_abs_error, max_rel_error;
    double worst_ratio; /* max |error| / tolerance: <= 1 passes */
    /* the first mismatch, in output coordinates (valid when mismatches > 0) */
    int64_t first_index, first_n, first_h, first_w, first_c;
    float first_expected, first_actual;
    double first_tolerance;
} sepconv_comparison;

/* Compares a layer's output against the reference's; MISMATCH if any differ. */
sepconv_status sepconv_compare(const sepconv_layer *layer,
                               const float *expected, const float *actual,
                               const double *magnitude,
                               sepconv_comparison *result,
                               sepconv_error *error);

/* --------------------------------------------------------------- schedule */

/* What the generated code may use: plain C (any compiler, tcc included),
 * AVX2+FMA / AVX-512F intrinsics (gcc and clang), or plain C that calls
 * libsepconv's SIMD micro-kernels a row at a time (for tcc, which cannot
 * emit vector code; they check the CPU and fall back to plain C). */
typedef enum sepconv_target {
    SEPCONV_TARGET_PORTABLE,
    SEPCONV_TARGET_AVX2,
    SEPCONV_TARGET_AVX512,
    SEPCONV_TARGET_NATIVE
} sepconv_target;

#define SEPCONV_TARGET_COUNT 4

/* The compiler that turns generated source into code. */
typedef enum sepconv_backend {
    SEPCONV_BACKEND_TCC, /* libtcc, in memory: ~1 ms to compile, plain code */
    SEPCONV_BACKEND_CC   /* the system compiler: slow to build, fast code */
} sepconv_backend;

#define SEPCONV_BACKEND_COUNT 2

/* The knobs of a schedule.  Each op has some of them (see
 * sepconv_schedule_has_knob); their ranges depend on the target. */
typedef enum sepconv_knob {
    SEPCONV_KNOB_CHANNEL_BLOCK, /* dw, conv, sep: channels per block */
    SEPCONV_KNOB_TILE_W,        /* dw, conv, sep: output pixels per step */
    SEPCONV_KNOB_PIXEL_BLOCK,   /* pw, sep: pixels per register block */
    SEPCONV_KNOB_OC_BLOCK,      /* pw, sep: output channels per block */
    SEPCONV_KNOB_PACK,          /* pw, sep: pointwise weights packed once */
    SEPCONV_KNOB_UNROLL,        /* all: 0 none, 1 row, 2 full */
    SEPCONV_KNOB_FUSE,          /* sep: 0 full intermediate, 1 row tiles */
    SEPCONV_KNOB_TILE_H,        /* sep with fuse=1: rows per tile */
    SEPCONV_KNOB_COUNT
} sepconv_knob;

#define SEPCONV_KNOB_VALUES_MAX 8

/* One knob's name, meaning, allowed values and default for an op/target. */
typedef struct sepconv_knob_info {
    const char *name;
    const char *help;
    int count;
    int64_t values[SEPCONV_KNOB_VALUES_MAX];
    const char *value_names[SEPCONV_KNOB_VALUES_MAX]; /* NULL: a number */
    int64_t default_value;
} sepconv_knob_info;

typedef struct sepconv_schedule {
    sepconv_op op;
    sepconv_target target;
    int64_t value[SEPCONV_KNOB_COUNT]; /* 0 for knobs the op does not have */
} sepconv_schedule;

/* The spec name of a target ("portable", "avx2", "avx512"). */
const char *sepconv_target_name(sepconv_target target);
sepconv_status sepconv_target_parse(const char *text, sepconv_target *target,
                                    sepconv_error *error);

/* The spec name of a backend ("tcc", "cc") and its parser. */
const char *sepconv_backend_name(sepconv_backend backend);
sepconv_status sepconv_backend_parse(const char *text, sepconv_backend *backend,
                                     sepconv_error *error);

/* Whether `op` has `knob`. */
int sepconv_schedule_has_knob(sepconv_op op, sepconv_knob knob);

/* Describes a knob for an op and target (its range and default). */
sepconv_status sepconv_knob_describe(sepconv_op op, sepconv_target target,
                                     sepconv_knob knob, sepconv_knob_info *info,
                                     sepconv_error *error);

/* The default schedule of a layer for a target. */
sepconv_status sepconv_schedule_default(const sepconv_layer *layer,
                                        sepconv_target target,
                                        sepconv_schedule *schedule,
                                        sepconv_error *error);

/* Applies "knob=value,knob=value" over the defaults; empty text keeps them.
 * Every value must be in the knob's range for the op and target. */
sepconv_status sepconv_schedule_parse(const char *text, const sepconv_layer *layer,
                                      sepconv_target target,
                                      sepconv_schedule *schedule,
                                      sepconv_error *error);

/* Writes the canonical "knob=value,..." form (every knob of the op). */
sepconv_status sepconv_schedule_format(const sepconv_schedule *schedule,
                                       char *out, size_t capacity,
                                       sepconv_error *error);

/* ------------------------------------------------------------- generator */

/* The source-size budgets when none is given: tcc compiles megabytes of C
 * in milliseconds, but gcc -O3 takes seconds per hundred KiB of unrolled
 * kernel (measured: 140 KiB 5 s, 400 KiB 20-35 s on a Zen 4), so source for
 * the cc backend gets a budget that stays well inside its compile limit. */
#define SEPCONV_SOURCE_BUDGET_DEFAULT ((size_t)4 << 20)
#define SEPCONV_CC_SOURCE_BUDGET_DEFAULT ((size_t)128 << 10)

/* How to generate: all fields may be zero for the defaults. */
typedef struct sepconv_generate_options {
    const char *name;         /* kernel symbol; NULL derives one */
    const char *template_dir; /* NULL: $SEPCONV_TEMPLATE_DIR, else built in */
    size_t source_budget;     /* bytes of C; 0: SEPCONV_SOURCE_BUDGET_DEFAULT,
                                 or SEPCONV_CC_SOURCE_BUDGET_DEFAULT for_cc */
    int64_t instruction_budget; /* Lua instructions; 0: 500 million */
    size_t memory_budget;     /* Lua heap bytes; 0: 256 MiB */
    int for_cc;               /* 1: the source is for the cc backend */
} sepconv_generate_options;

#define SEPCONV_SYMBOL_MAX 128

/* Generated source: a self-contained .c and the .h for its callers.
 *
 * The kernel is
 *   void SYMBOL(const float *input, const float *weights, const float *bias,
 *               const float *pw_weights, const float *pw_bias,
 *               const float *packed, float *output, void *scratch,
 *               long row_begin, long row_end);
 * computing output rows [row_begin, row_end) of batch*out_h; when
 * packed_elements > 0, SYMBOL_pack(weights, pw_weights, packed) must have
 * filled `packed` first, and `scratch` must hold scratch_bytes per call. */
typedef struct sepconv_source {
    char *code, *header;
    size_t code_length, header_length;
    char symbol[SEPCONV_SYMBOL_MAX];
    char template_name[64];
    int64_t scratch_bytes, packed_elements, rows;
} sepconv_source;

/* Generates the kernel of a layer under a schedule. */
sepconv_status sepconv_generate(const sepconv_layer *layer,
                                const sepconv_schedule *schedule,
                                const sepconv_generate_options *options,
                                sepconv_source *source, sepconv_error *error);
void sepconv_source_free(sepconv_source *source);

/* -------------------------------------------------------------- backends */

/* The default wall-clock limit of one cc compile, in seconds (MobileNet's
 * layers take 1-4 s on a slow CPU). */
#define SEPCONV_CC_TIMEOUT_DEFAULT 30.0

/* How the system compiler ("cc" backend) is run and cached. */
typedef struct sepconv_cc_options {
    const char *compiler;  /* NULL: $CC, else "cc"; words split at white space
                              ("ccache gcc"), no quoting */
    const char *flags;     /* NULL: "-O3 -march=native" (split at any white
                              space) */
    const char *save_dir;  /* where failing sources are kept; NULL: $TMPDIR */
    const char *cache_dir; /* NULL: $XDG_CACHE_HOME/sepconv or ~/.cache/sepconv */
    int no_cache;          /* 1: neither read nor write the cache (also
                              SEPCONV_CACHE=off) */
    double timeout_seconds; /* wall-clock limit of one compile; 0: the
                               default, SEPCONV_CC_TIMEOUT_DEFAULT */
} sepconv_cc_options;

/* Kills the process group of every compiler the cc backend is running and
 * removes their temporary directories; the compiles in progress fail.
 * Async-signal-safe: a program's SIGTERM/SIGINT/SIGHUP handler should call
 * it (the compiler is in its own process group, which a terminal's ^C does
 * not reach), then re-raise the signal with its default action. */
void sepconv_cc_kill_all(void);

/* The signature of every generated kernel and of its packing function. */
typedef void (*sepconv_kernel_fn)(const float *input, const float *weights,
                                  const float *bias, const float *pw_weights,
                                  const float *pw_bias, const float *packed,
                                  float *output, void *scratch, long row_begin,
                                  long row_end);
typedef void (*sepconv_pack_fn)(const float *weights, const float *pw_weights,
                                float *packed);

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
    int64_t guard_damage;   /* output guard floats overwritten */
    int64_t untouched;      /* outputs left as the NaN they were filled with */
} sepconv_verify_report;

/* Runs a kernel beside the reference (output rows split into two calls, as
 * threads would), with guard zones around the output and the output
 * pre-filled with NaN, and compares within the documented tolerance: on
 * seeded random data, a zero input, inputs scaled by 2^40 and by 2^-100,
 * and a NaN in the input, which must reach exactly the outputs whose window
 * sees it.  MISMATCH if any output differs, a guard was overwritten or an
 * output was never written; the message names the pass. */
sepconv_status sepconv_verify_kernel(const sepconv_layer *layer,
                                     const sepconv_kernel_code *kernel,
                                     uint64_t seed, sepconv_verify_report *report,
                                     sepconv_error *error);

/* ----------------------------------------------------------------- kernel */


/* How to make a kernel; sepconv_kernel_defaults() fills the defaults. */
typedef struct sepconv_kernel_options {
    sepconv_backend backend;
    sepconv_target target;
    const char *schedule;   /* "knob=value,..."; NULL or "" for the default;
                               "auto": the best record of the tuning log for
                               this layer and environment, else the default */
    const char *log_path;   /* the tuning log for "auto"; NULL: the default */
    int threads;            /* 1 by default; 0 means every usable CPU
                               (sepconv_usable_cpus); more than those are
                               capped to them, as workers sharing a CPU
                               only slow each other: info.threads is what
                               a run uses */
    int verify;             /* 1: check against the reference when created */
    uint64_t verify_seed;
    sepconv_generate_options generate;
    sepconv_cc_options cc;
} sepconv_kernel_options;

sepconv_kernel_options sepconv_kernel_defaults(void);

/* A compiled, verified kernel for one layer, immutable once its weights are
 * set.  It owns the workspace its runs need (made when it is created, so a
 * run allocates nothing), and that serves one sepconv_kernel_run at a time:
 * a second call while one is under way fails with SEPCONV_INVALID.  To run
 * one kernel from several threads at once, give each thread a workspace of
 * its own and call sepconv_kernel_run_with_workspace. */
typedef struct sepconv_kernel sepconv_kernel;

/* What making a kernel took. */
typedef struct sepconv_kernel_info {
    char symbol[SEPCONV_SYMBOL_MAX];
    char schedule[256];
    sepconv_backend backend;
    sepconv_target target;
    double generate_seconds, compile_seconds, verify_seconds;
    int from_cache; /* the cc backend found it in its disk cache */
    int tuned;      /* schedule "auto" found a tuning record */
    int threads;    /* the threads a run uses: options.threads, with 0
                       and counts above sepconv_usable_cpus() made that */
    int verified;
    sepconv_verify_report report;
    size_t source_bytes;
} sepconv_kernel_info;

/* Generates, compiles and (if asked) verifies a layer's kernel. */
sepconv_status sepconv_kernel_create(const sepconv_layer *layer,
                                     const sepconv_kernel_options *options,
                                     sepconv_kernel **kernel, sepconv_error *error);

/* Copies the weights and biases in (tensors->input is ignored) and packs
 * them if the schedule wants; call once before running. */
sepconv_status sepconv_kernel_set_weights(sepconv_kernel *kernel,
                                          const sepconv_tensors *tensors,
                                          sepconv_error *error);

/* Runs the layer: input and output in the layer's layout, the kernel's own
 * workspace; one call at a time per kernel (see sepconv_kernel). */
sepconv_status sepconv_kernel_run(const sepconv_kernel *kernel, const float *input,
                                  float *output, sepconv_error *error);

/* The workspace bytes a run needs (0 if none): a cache-line-rounded slice
 * of scratch per thread of the kernel. */
size_t sepconv_kernel_workspace_bytes(const sepconv_kernel *kernel);

/* Runs the layer like sepconv_kernel_run, in the caller's workspace of
 * workspace_bytes (at least sepconv_kernel_workspace_bytes; float-aligned,
 * 64-byte-aligned is best; NULL when that is 0).  Safe to call from several
 * threads at once on one kernel, each with its own workspace; a kernel with
 * threads shares its pool, so such calls take turns on it. */
sepconv_status sepconv_kernel_run_with_workspace(const sepconv_kernel *kernel,
                                                 const float *input, float *output,
                                                 void *workspace, size_t workspace_bytes,
                                                 sepconv_error *error);

/* The CPUs this process may use: the calling thread's affinity mask
 * (sched_getaffinity), within its cgroup's CPU quota (v2 cpu.max, v1
 * cpu.cfs_quota_us), rounded up; at least 1.  What threads = 0 means. */
int sepconv_usable_cpus(void);

/* The threads a kernel made with options.threads = `requested` runs on:
 * 0 gives sepconv_usable_cpus(), and more than those are capped to them. */
int sepconv_thread_count(int requested);

const sepconv_layer *sepconv_kernel_layer(const sepconv_kernel *kernel);
const sepconv_kernel_info *sepconv_kernel_get_info(const sepconv_kernel *kernel);
void sepconv_kernel_free(sepconv_kernel *kernel);

/* Seconds on a monotonic clock. */
double sepconv_seconds(void);

/* ------------------------------------------------------------ environment */

/* What a measurement depends on besides the layer and the schedule: tuning
 * records from another environment are never chosen. */
typedef struct sepconv_environment {
    char version[16];   /* sepconv's */
    char backend[8];    /* "tcc" or "cc" */
    char target[16];
    char compiler[128]; /* libtcc's version, or the first line of cc --version */
    char flags[128];    /* cc flags; "" for tcc */
    char cpu[96];       /* the processor's model name */
    char features[128]; /* the SIMD features that matter: "avx2 fma avx512f" */
    int threads;
} sepconv_environment;

/* Describes this machine and the kernel options' backend. */
sepconv_status sepconv_environment_get(const sepconv_kernel_options *options,
                                       sepconv_environment *environment,
                                       sepconv_error *error);

/* -------------------------------------------------------------- tune log */

/* One measured candidate: a line of the tuning log (JSON Lines; the
 * README's "Tuning log" section documents the fields). */
typedef struct sepconv_tune_record {
    char spec[512];      /* canonical layer spec */
    char op[8];
    char schedule[256];  /* canonical schedule */
    sepconv_environment environment;
    char status[16];     /* "ok" or "failed" */
    char error[256];     /* why it failed */
    double median_ms;    /* median run time */
    double spread;       /* interquartile range / median */
    double baseline_ms;  /* the default schedule, interleaved in the same run */
    double ratio;        /* median_ms / baseline_ms: < 1 is faster */
    char timestamp[32];  /* UTC, ISO 8601 */
} sepconv_tune_record;

#define SEPCONV_LOG_WARNINGS 8

/* A tuning log read into memory. */
typedef struct sepconv_tune_log {
    sepconv_tune_record *records;
    size_t count;
    size_t skipped;      /* corrupt or truncated lines left out */
    char warnings[SEPCONV_LOG_WARNINGS][256]; /* the first few, naming lines */
} sepconv_tune_log;

/* The default log: $XDG_CACHE_HOME/sepconv/tuning.jsonl (or ~/.cache/...). */
sepconv_status sepconv_log_default_path(char *path, size_t capacity,
                                        sepconv_error *error);

/* Appends one record with a single write to a file opened O_APPEND, so
 * concurrent tuners and shards can share a log.  When the file ends in a
 * torn line (a crash or a full disk cut a write short) the write starts
 * with a newline, so the record is never glued onto it.  Only a regular
 * file is a log: a FIFO or device is refused without blocking. */
sepconv_status sepconv_log_append(const char *path, const sepconv_tune_record *record,
                                  sepconv_error *error);

/* Reads a log; lines that are not valid records are skipped and counted,
 * with a warning naming the file and line.  A missing file is an empty log;
 * a FIFO, device or directory is refused (IO) without blocking. */
sepconv_status sepconv_log_read(const char *path, sepconv_tune_log *log,
                                sepconv_error *error);

/* Parses the text of a log (standard input, say) as sepconv_log_read does
 * a file's; `origin` names it in the warnings. */
sepconv_status sepconv_log_parse(const char *text, size_t length, const char *origin,
                                 sepconv_tune_log *log, sepconv_error *error);

/* Drops every record equal in all fields to an earlier one, keeping the
 * order of the rest; *dropped (if not NULL) counts them.  Linear time: a
 * hash table of XXH3 hashes of the records. */
sepconv_status sepconv_log_unique(sepconv_tune_log *log, size_t *dropped,
                                  sepconv_error *error);

/* The best successful record for `spec` (compared without its name= label)
 * in `environment` (same sepconv version, backend, target, compiler, flags,
 * CPU, features and threads): the lowest ratio to the default schedule.
 * NULL if there is none. */
const sepconv_tune_record *sepconv_log_best(const sepconv_tune_log *log, const char *spec,
                                            const sepconv_environment *environment);

/* Formats a record as its JSON line (no newline); malloc'd. */
sepconv_status sepconv_log_format(const sepconv_tune_record *record, char **line,
                                  sepconv_error *error);

void sepconv_log_free(sepconv_tune_log *log);

/* The tuned schedule of a layer for the options' environment, from the log
 * at `log_path` (NULL: the default log); the default schedule and *found = 0
 * when the log has no record for it. */
sepconv_status sepconv_log_schedule(const sepconv_layer *layer,
                                    const sepconv_kernel_options *options,
                                    const char *log_path, sepconv_schedule *schedule,
                                    int *found, sepconv_error *error);

/* When sepconv_log_schedule found nothing, the message that says so: the
 * log, the layer's canonical spec, the backend, target and threads looked
 * for, whether records of the layer exist from another environment, and
 * the `sepconv tune` command that makes one. */
sepconv_status sepconv_log_missing(const sepconv_layer *layer,
                                   const sepconv_kernel_options *options,
                                   const char *log_path, char *out, size_t capacity,
                                   sepconv_error *error);

/* ------------------------------------------------------------------- tune */

typedef enum sepconv_strategy {
    SEPCONV_STRATEGY_GRID,  /* every valid schedule, in space order */
    SEPCONV_STRATEGY_RANDOM /* a seeded random order of them */
} sepconv_strategy;

/* What a tuning sweep reports as it goes. */
typedef struct sepconv_tune_progress {
    const sepconv_layer *layer;
    size_t done, total;
    double elapsed_seconds;
    const sepconv_tune_record *last, *best;
} sepconv_tune_progress;

typedef struct sepconv_tune_options {
    sepconv_kernel_options kernel; /* backend, target, threads, cc flags */
    sepconv_strategy strategy;
    uint64_t seed;
    int64_t trials;        /* 0: every candidate */
    double budget_seconds; /* 0: no limit; else a wall-clock bound on the
                              whole call: each compile's timeout is cut to
                              the time left, timing stops at it, and the
                              candidates left are counted as not tried */
    int shard, shards;     /* this sweep's part: 0 of 1 for all */
    const char *log_path;  /* NULL: the default log; records are appended */
    int no_log;
    void (*progress)(void *context, const sepconv_tune_progress *progress);
    void *progress_context;
} sepconv_tune_options;

sepconv_tune_options sepconv_tune_defaults(void);

/* The outcome of tuning one layer: every candidate, best first (failures
 * last), and the default schedule's own record. */
typedef struct sepconv_tune_result {
    sepconv_tune_record *records;
    size_t count;
    size_t not_tried;      /* candidates left when the budget ran out */
    sepconv_tune_record baseline;
    double reference_ms;
    int64_t macs;
} sepconv_tune_result;

/* Tunes a layer: compiles, verifies and times each candidate interleaved
 * with the default schedule, appending a record per candidate to the log.
 * LIMIT when the budget ran out before the default schedule was built. */
sepconv_status sepconv_tune_layer(const sepconv_layer *layer,
                                  const sepconv_tune_options *options,
                                  sepconv_tune_result *result, sepconv_error *error);
void sepconv_tune_result_free(sepconv_tune_result *result);

/* -------------------------------------------------------------------- npy */

#define SEPCONV_RANK_MAX 8

/* A float32 array read from or written to a NumPy .npy file. */
typedef struct sepconv_array {
    float *data;
    int rank;
    int64_t shape[SEPCONV_RANK_MAX];
    int64_t count;
} sepconv_array;

/* Reads a .npy file: little-endian float32 ('<f4'), C order, any rank. */
sepconv_status sepconv_npy_read(const char *path, sepconv_array *array,
                                sepconv_error *error);
/* Writes a .npy file (format 1.0, '<f4', C order). */
sepconv_status sepconv_npy_write(const char *path, const float *data,
                                 const int64_t *shape, int rank,
                                 sepconv_error *error);
void sepconv_array_free(sepconv_array *array);

/* The tensors of a layer, as the .npy files and the CLI name them. */
typedef enum sepconv_tensor_kind {
    SEPCONV_TENSOR_INPUT, SEPCONV_TENSOR_WEIGHTS, SEPCONV_TENSOR_BIAS,
    SEPCONV_TENSOR_PW_WEIGHTS, SEPCONV_TENSOR_PW_BIAS, SEPCONV_TENSOR_OUTPUT
} sepconv_tensor_kind;

/* The documented shape of one of a layer's tensors (rank 0: the layer has
 * no such tensor). */
void sepconv_tensor_shape(const sepconv_layer *layer, sepconv_tensor_kind kind,
                          int64_t shape[SEPCONV_RANK_MAX], int *rank);

/* Checks an array against the documented shape; the message names the
 * tensor, both shapes, and the layout rule. */
sepconv_status sepconv_check_shape(const sepconv_layer *layer,
                                   sepconv_tensor_kind kind,
                                   const sepconv_array *array, const char *what,
                                   sepconv_error *error);

/* --------------------------------------------------------------- buffers */

/* Owned storage for one layer's tensors (NULL where the layer has none). */
typedef struct sepconv_buffers {
    float *input, *weights, *bias, *pw_weights, *pw_bias, *output;
} sepconv_buffers;

/* Allocates every tensor of a layer (output zeroed). */
sepconv_status sepconv_buffers_alloc(const sepconv_layer *layer,
                                     sepconv_buffers *buffers,
                                     sepconv_error *error);
/* Fills inputs, weights and biases with seeded uniform values in [-1, 1). */
void sepconv_buffers_fill_random(const sepconv_layer *layer,
                                 sepconv_buffers *buffers, uint64_t seed);
/* The read-only view of the buffers that the kernels take. */
sepconv_tensors sepconv_buffers_tensors(const sepconv_buffers *buffers);
void sepconv_buffers_free(sepconv_buffers *buffers);

/* ---------------------------------------------------------------- stats */

/* The q-quantile (0 <= q <= 1) of count samples, which it sorts in place
 * (NaN last): linear interpolation between the closest ranks, at position
 * q * (count - 1) from 0 (numpy's default; of 1 2 3 4 the 0.5-quantile is
 * 2.5, the 0.25-quantile 1.75).  NaN if count is 0, samples NULL or q
 * outside [0, 1]. */
double sepconv_quantile(double *samples, size_t count, double q);
/* sepconv_quantile(samples, count, 0.5). */
double sepconv_median(double *samples, size_t count);

#ifdef __cplusplus
}
#endif

#endif /* SEPCONV_H */
