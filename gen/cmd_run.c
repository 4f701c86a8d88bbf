/*
 * cmd_run.c -- `sepconv run SPEC`: runs a layer's generated kernel on NumPy
 * .npy files, so users can compare sepconv with their framework.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* The files a run reads and writes, by tensor kind. */
typedef struct run_files {
    const char *path[6]; /* indexed by sepconv_tensor_kind */
} run_files;

static const char *const tensor_options[] = {"--input", "--weights", "--bias",
                                             "--pw-weights", "--pw-bias", "--output"};

/* The element type of a tensor's file: float32, or for dtype=int8 int8
 * (int32 biases). */
static sepconv_npy_type tensor_type(const sepconv_layer *layer, sepconv_tensor_kind kind)
{
    if (layer->dtype != SEPCONV_DTYPE_INT8)
        return SEPCONV_NPY_FLOAT32;
    return kind == SEPCONV_TENSOR_BIAS || kind == SEPCONV_TENSOR_PW_BIAS ? SEPCONV_NPY_INT32
                                                                         : SEPCONV_NPY_INT8;
}

/* Loads one tensor's .npy file and checks its shape; a tensor the layer
 * does not have must not be given. */
static sepconv_status load_tensor(const sepconv_layer *layer, sepconv_tensor_kind kind,
                                  const char *path, sepconv_array *array,
                                  sepconv_error *error)
{
    int64_t shape[SEPCONV_RANK_MAX];
    int rank;
    sepconv_tensor_shape(layer, kind, shape, &rank);
    memset(array, 0, sizeof *array);
    if (rank == 0 && path) {
        snprintf(error->message, sizeof error->message,
                 "%s was given, but op=%s bias=%d has no such tensor",
                 tensor_options[kind], sepconv_op_name(layer->op), layer->bias);
        return error->status = SEPCONV_INVALID;
    }
    if (rank == 0)
        return SEPCONV_OK;
    if (!path) {
        snprintf(error->message, sizeof error->message, "missing %s FILE.npy (the layer "
                 "needs it)", tensor_options[kind]);
        return error->status = SEPCONV_INVALID;
    }
    sepconv_status status = sepconv_npy_read_as(path, tensor_type(layer, kind), array, error);
    if (status == SEPCONV_OK)
        status = sepconv_check_shape(layer, kind, array, path, error);
    return status;
}

/* Loads an int8 layer's weight scales (float32, one per output channel of
 * the stage: `count`), given as `option`. */
static sepconv_status load_scales(const char *option, const char *path, int64_t count,
                                  sepconv_array *array, sepconv_error *error)
{
    memset(array, 0, sizeof *array);
    if (!path) {
        snprintf(error->message, sizeof error->message, "missing %s FILE.npy (dtype=int8 "
                 "needs %lld float32 weight scales, one per output channel)", option,
                 (long long)count);
        return error->status = SEPCONV_INVALID;
    }
    sepconv_status status = sepconv_npy_read_as(path, SEPCONV_NPY_FLOAT32, array, error);
    if (status == SEPCONV_OK && (array->rank != 1 || array->shape[0] != count)) {
        snprintf(error->message, sizeof error->message, "%s: %s needs shape (%lld), one "
                 "scale per output channel, and the file has %lld values in %d dimensions",
                 path, option, (long long)count, (long long)array->count, array->rank);
        status = error->status = SEPCONV_INVALID;
    }
    return status;
}

/* Copies a file's bytes to standard output. */
static sepconv_status copy_to_stdout(const char *path, sepconv_error *error)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return cli_error(error, SEPCONV_IO, "cannot reread the output written aside "
                                            "for standard output");
    char buffer[65536];
    size_t got;
    bool wrote = true;
    errno = 0;
    while (wrote && (got = fread(buffer, 1, sizeof buffer, file)) > 0)
        wrote = fwrite(buffer, 1, got, stdout) == got;
    wrote = wrote && fflush(stdout) == 0;
    int cause = errno;
    bool read_failed = ferror(file) != 0;
    fclose(file);
    if (!wrote) {
        snprintf(error->message, sizeof error->message, "error writing standard "
                 "output: %s", cause ? strerror(cause) : "a write failed");
        clearerr(stdout); /* reported here: not again at exit */
        return error->status = SEPCONV_IO;
    }
    if (read_failed)
        return cli_error(error, SEPCONV_IO, "cannot reread the output written aside "
                                            "for standard output");
    return SEPCONV_OK;
}

/* Writes the output array to a .npy file, or ("-") to standard output. */
static sepconv_status write_output(const char *path, sepconv_npy_type type, const void *data,
                                   const int64_t *shape, int rank, sepconv_error *error)
{
    if (strcmp(path, "-") != 0)
        return sepconv_npy_write_as(path, type, data, shape, rank, error);
    /* the library writes .npy files by name: write one aside and copy it */
    const char *tmp = getenv("TMPDIR");
    char aside[4096];
    snprintf(aside, sizeof aside, "%s/sepconv-run-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    int fd = mkstemp(aside);
    if (fd < 0) {
        snprintf(error->message, sizeof error->message, "cannot make a temporary file "
                 "in %s for standard output: %s", tmp && tmp[0] ? tmp : "/tmp",
                 strerror(errno));
        return error->status = SEPCONV_IO;
    }
    close(fd);
    sepconv_status status = sepconv_npy_write_as(aside, type, data, shape, rank, error);
    if (status == SEPCONV_OK)
        status = copy_to_stdout(aside, error);
    unlink(aside);
    return status;
}

/* Takes argv[*i] if it is one of `count` file options (`--input X.npy`):
 * 1 and its path in paths[], 0 if it is none of them, -1 (said) if its
 * file is missing. */
static int file_option(int argc, char **argv, int *i, const char *const *options, int count,
                       const char **paths)
{
    for (int t = 0; t < count; t++) {
        const char *value = NULL;
        bool missing = false;
        if (cli_option(argc, argv, i, options[t], &value, &missing)) {
            if (missing) {
                cli_usage("run", "%s takes a .npy file", options[t]);
                return -1;
            }
            paths[t] = value;
            return 1;
        }
    }
    return 0;
}

/* Entry point of `sepconv run`. */
static int run_run(int argc, char **argv)
{
    cli_input input = {0};
    cli_kernel_options kernel_options = cli_kernel_defaults();
    run_files files = {{NULL}};
    const char *scales_path[2] = {NULL, NULL}; /* --weight-scales, --pw-weight-scales */
    static const char *const scales_options[2] = {"--weight-scales", "--pw-weight-scales"};
    bool reference = false;
    for (int i = 1; i < argc; i++) {
        int parsed = cli_kernel_option(argc, argv, &i, &kernel_options, "run");
        if (parsed < 0)
            return CLI_USAGE;
        if (parsed > 0)
            continue;
        int taken = file_option(argc, argv, &i, tensor_options, 6, files.path);
        if (taken == 0)
            taken = file_option(argc, argv, &i, scales_options, 2, scales_path);
        if (taken < 0)
            return CLI_USAGE;
        if (taken)
            continue;
        const char *value = NULL;
        bool missing = false;
        if (strcmp(argv[i], "--reference") == 0) {
            reference = true;
        } else if (cli_option(argc, argv, &i, "--backend", &value, &missing)) {
            if (missing || sepconv_backend_parse(value, &kernel_options.backend, NULL) !=
                               SEPCONV_OK)
                return cli_usage("run", "--backend takes tcc or cc");
            kernel_options.backend_given = true;
        } else if (cli_is_option(argv[i])) {
            return cli_usage("run", "unknown option '%s'", argv[i]);
        } else if (!strchr(argv[i], '=') || !cli_input_add(&input, argv[i])) {
            return cli_usage("run", "'%s' is not a key=value token", argv[i]);
        }
    }
    if (!input.spec[0])
        return cli_usage("run", "missing SPEC");
    if (!files.path[SEPCONV_TENSOR_INPUT] || !files.path[SEPCONV_TENSOR_WEIGHTS] ||
        !files.path[SEPCONV_TENSOR_OUTPUT])
        return cli_usage("run", "--input, --weights and --output are required");
    sepconv_error error;
    sepconv_layer layer;
    if (sepconv_layer_parse(input.spec, &layer, &error) != SEPCONV_OK)
        return cli_usage_error("run", &error);
    for (int t = 0; t < 5; t++)
        if (files.path[t] && strcmp(files.path[t], "-") == 0)
            return cli_usage("run", "%s reads a file; only --output takes '-' (standard "
                             "output)", tensor_options[t]);
    bool int8 = layer.dtype == SEPCONV_DTYPE_INT8, sep = layer.op == SEPCONV_OP_SEP;
    for (int t = 0; t < 2; t++)
        if (scales_path[t] && (!int8 || (t == 1 && !sep)))
            return cli_usage("run", "%s was given, but %s", scales_options[t],
                             !int8 ? "the layer is float32 (weight scales are for dtype=int8)"
                                   : "only op=sep has a pointwise stage");
    if (!reference && cli_target_resolve(&kernel_options, false, "run") != CLI_OK)
        return CLI_FAILURE;
    sepconv_backend backend = cli_backend(&kernel_options);
    if (!reference && cli_kernel_check(&kernel_options, backend, &layer, "run") != CLI_OK)
        return CLI_USAGE;
    sepconv_array arrays[5], scales[2];
    memset(arrays, 0, sizeof arrays);
    memset(scales, 0, sizeof scales);
    sepconv_status status = SEPCONV_OK;
    for (int t = 0; t < 5 && status == SEPCONV_OK; t++)
        status = load_tensor(&layer, (sepconv_tensor_kind)t, files.path[t], &arrays[t],
                             &error);
    if (int8 && status == SEPCONV_OK)
        status = load_scales(scales_options[0], scales_path[0],
                             layer.op == SEPCONV_OP_DW || sep ? layer.mid_c : layer.n,
                             &scales[0], &error);
    if (int8 && sep && status == SEPCONV_OK)
        status = load_scales(scales_options[1], scales_path[1], layer.n, &scales[1], &error);
    const size_t element = int8 ? 1 : sizeof(float);
    void *output = NULL;
    if (status == SEPCONV_OK) {
        output = malloc((size_t)layer.output_elements * element);
        if (!output)
            status = cli_error(&error, SEPCONV_NOMEM, "out of memory");
    }
    sepconv_tensors tensors = {arrays[0].data, arrays[1].data, arrays[2].data,
                               arrays[3].data, arrays[4].data};
    sepconv_qtensors q = {arrays[0].values, arrays[1].values, arrays[3].values,
                          arrays[2].values, arrays[4].values, scales[0].data, scales[1].data};
    if (status == SEPCONV_OK && int8)
        status = sepconv_quantization_check(&layer, &q, &error);
    if (status == SEPCONV_OK && int8 && reference) {
        status = sepconv_reference_run_int8(&layer, &q, output, &error);
    } else if (status == SEPCONV_OK && reference) {
        status = sepconv_reference_run(&layer, &tensors, output, &error);
    } else if (status == SEPCONV_OK) {
        sepconv_kernel_options options = sepconv_kernel_defaults();
        options.backend = backend;
        cli_kernel_apply(&kernel_options, &options);
        sepconv_kernel *kernel = NULL;
        status = sepconv_kernel_create(&layer, &options, &kernel, &error);
        if (status == SEPCONV_OK)
            status = int8 ? sepconv_kernel_set_qweights(kernel, &q, &error)
                          : sepconv_kernel_set_weights(kernel, &tensors, &error);
        if (status == SEPCONV_OK)
            status = int8 ? sepconv_kernel_run_int8(kernel, q.input, output, &error)
                          : sepconv_kernel_run(kernel, tensors.input, output, &error);
        sepconv_kernel_free(kernel);
    }
    if (status == SEPCONV_OK) {
        int64_t shape[SEPCONV_RANK_MAX];
        int rank;
        sepconv_tensor_shape(&layer, SEPCONV_TENSOR_OUTPUT, shape, &rank);
        status = write_output(files.path[SEPCONV_TENSOR_OUTPUT],
                              int8 ? SEPCONV_NPY_INT8 : SEPCONV_NPY_FLOAT32, output, shape,
                              rank, &error);
    }
    free(output);
    for (int t = 0; t < 5; t++)
        sepconv_array_free(&arrays[t]);
    for (int t = 0; t < 2; t++)
        sepconv_array_free(&scales[t]);
    return status == SEPCONV_OK ? CLI_OK : cli_fail("run", &error);
}

const cli_command cli_run_command = {
    "run", "run a layer's generated kernel on .npy files", run_run,
    "usage: sepconv run SPEC --input X.npy --weights W.npy [--bias B.npy]\n"
    "                   [--pw-weights W2.npy] [--pw-bias B2.npy] --output Y.npy\n"
    "                   [--backend tcc|cc] [--target T] [--schedule K=V,...]\n"
    "                   [--cc-timeout SECONDS] [--max-source SIZE] [--reference]\n"
    "                   [--weight-scales S.npy] [--pw-weight-scales S2.npy]\n\n"
    "Runs the layer on NumPy float32 arrays (C order) and writes the output\n"
    "(--output -: to standard output).  A dtype=int8 layer reads int8 arrays\n"
    "and int32 biases, its weight scales from --weight-scales (float32, one per\n"
    "output channel of the stage; sep's pointwise: --pw-weight-scales), and\n"
    "writes int8 (TensorFlow Lite's integer arithmetic; int8 kernels exist for\n"
    "op=conv, dw and pw so far, and --reference runs every op).\n"
    "Shapes must follow the layout's convention (see the README):\n"
    "  nhwc: input (batch, h, w, m); conv (dk, dk, m, n); dw (dk, dk, m, mult);\n"
    "        pw (m, n); output (batch, out_h, out_w, c)\n"
    "  nchw: input (batch, m, h, w); conv (n, m, dk, dk); dw (m*mult, 1, dk, dk);\n"
    "        pw (n, m, 1, 1); output (batch, c, out_h, out_w)\n"
    "For op=sep, --weights are the depthwise and --pw-weights the pointwise\n"
    "weights.  The kernel is generated, compiled and verified first;\n"
    "--reference runs the generic reference loops instead.\n\n"
    "  --backend B         tcc (default; embedded, no compiler needed: calls\n"
    "                      libsepconv's micro-kernels of the target) or cc (the\n"
    "                      system compiler, intrinsics, cached under ~/.cache/sepconv)\n"
    "  --target T          auto (default: the best this CPU has), portable, avx2,\n"
    "                      avx512 or neon (native: auto); one the CPU lacks is refused\n"
    "  --schedule K=V,...  knobs over the defaults, or 'best' from the tuning log\n"
    "  --cc-timeout S      stop a cc compile after S seconds (default {cc_timeout})\n"
    "  --max-source SIZE   the source-size budget (default 4M; suffixes K, M, G)\n\n"
    "example: sepconv run op=dw df=8 m=4 dk=3 --input x.npy --weights w.npy \\\n"
    "           --output y.npy\n"};
