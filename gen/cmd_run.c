/*
 * cmd_run.c -- `sepconv run SPEC`: runs a layer's generated kernel on NumPy
 * .npy files, so users can compare sepconv with their framework.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The files a run reads and writes, by tensor kind. */
typedef struct run_files {
    const char *path[6]; /* indexed by sepconv_tensor_kind */
} run_files;

static const char *const tensor_options[] = {"--input", "--weights", "--bias",
                                             "--pw-weights", "--pw-bias", "--output"};

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
    sepconv_status status = sepconv_npy_read(path, array, error);
    if (status == SEPCONV_OK)
        status = sepconv_check_shape(layer, kind, array, path, error);
    return status;
}

/* Entry point of `sepconv run`. */
static int run_run(int argc, char **argv)
{
    cli_input input = {0};
    cli_kernel_options kernel_options = cli_kernel_defaults();
    run_files files = {{NULL}};
    bool reference = false;
    for (int i = 1; i < argc; i++) {
        int parsed = cli_kernel_option(argc, argv, &i, &kernel_options, "run");
        if (parsed < 0)
            return CLI_USAGE;
        if (parsed > 0)
            continue;
        bool taken = false;
        for (int t = 0; t < 6 && !taken; t++) {
            const char *value = NULL;
            bool missing = false;
            if (cli_option(argc, argv, &i, tensor_options[t], &value, &missing)) {
                if (missing)
                    return cli_usage("run", "%s takes a .npy file", tensor_options[t]);
                files.path[t] = value;
                taken = true;
            }
        }
        if (taken)
            continue;
        if (strcmp(argv[i], "--reference") == 0)
            reference = true;
        else if (argv[i][0] == '-')
            return cli_usage("run", "unknown option '%s'", argv[i]);
        else if (!strchr(argv[i], '=') || !cli_input_add(&input, argv[i]))
            return cli_usage("run", "'%s' is not a key=value token", argv[i]);
    }
    if (!input.spec[0])
        return cli_usage("run", "missing SPEC");
    if (!files.path[SEPCONV_TENSOR_INPUT] || !files.path[SEPCONV_TENSOR_WEIGHTS] ||
        !files.path[SEPCONV_TENSOR_OUTPUT])
        return cli_usage("run", "--input, --weights and --output are required");
    sepconv_error error;
    sepconv_layer layer;
    if (sepconv_layer_parse(input.spec, &layer, &error) != SEPCONV_OK)
        return cli_fail("run", &error);
    sepconv_array arrays[5];
    memset(arrays, 0, sizeof arrays);
    sepconv_status status = SEPCONV_OK;
    for (int t = 0; t < 5 && status == SEPCONV_OK; t++)
        status = load_tensor(&layer, (sepconv_tensor_kind)t, files.path[t], &arrays[t],
                             &error);
    float *output = NULL;
    if (status == SEPCONV_OK) {
        output = malloc((size_t)layer.output_elements * sizeof(float));
        if (!output)
            status = cli_error(&error, SEPCONV_NOMEM, "out of memory");
    }
    sepconv_tensors tensors = {arrays[0].data, arrays[1].data, arrays[2].data,
                               arrays[3].data, arrays[4].data};
    if (status == SEPCONV_OK && reference) {
        status = sepconv_reference_run(&layer, &tensors, output, &error);
    } else if (status == SEPCONV_OK) {
        sepconv_kernel_options options = sepconv_kernel_defaults();
        options.backend = kernel_options.target == SEPCONV_TARGET_PORTABLE
                              ? SEPCONV_BACKEND_TCC : SEPCONV_BACKEND_CC;
        options.target = kernel_options.target;
        options.schedule = kernel_options.schedule;
        options.generate = kernel_options.generate;
        sepconv_kernel *kernel = NULL;
        status = sepconv_kernel_create(&layer, &options, &kernel, &error);
        if (status == SEPCONV_OK)
            status = sepconv_kernel_set_weights(kernel, &tensors, &error);
        if (status == SEPCONV_OK)
            status = sepconv_kernel_run(kernel, tensors.input, output, &error);
        sepconv_kernel_free(kernel);
    }
    if (status == SEPCONV_OK) {
        int64_t shape[SEPCONV_RANK_MAX];
        int rank;
        sepconv_tensor_shape(&layer, SEPCONV_TENSOR_OUTPUT, shape, &rank);
        status = sepconv_npy_write(files.path[SEPCONV_TENSOR_OUTPUT], output, shape, rank,
                                   &error);
    }
    free(output);
    for (int t = 0; t < 5; t++)
        sepconv_array_free(&arrays[t]);
    return status == SEPCONV_OK ? CLI_OK : cli_fail("run", &error);
}

const cli_command cli_run_command = {
    "run", "run a layer's generated kernel on .npy files", run_run,
    "usage: sepconv run SPEC --input X.npy --weights W.npy [--bias B.npy]\n"
    "                   [--pw-weights W2.npy] [--pw-bias B2.npy] --output Y.npy\n"
    "                   [--schedule K=V,...] [--target T] [--reference]\n\n"
    "Runs the layer on NumPy float32 arrays (C order) and writes the output.\n"
    "Shapes must follow the layout's convention (see the README):\n"
    "  nhwc: input (batch, h, w, m); conv (dk, dk, m, n); dw (dk, dk, m, mult);\n"
    "        pw (m, n); output (batch, out_h, out_w, c)\n"
    "  nchw: input (batch, m, h, w); conv (n, m, dk, dk); dw (m*mult, 1, dk, dk);\n"
    "        pw (n, m, 1, 1); output (batch, c, out_h, out_w)\n"
    "For op=sep, --weights are the depthwise and --pw-weights the pointwise\n"
    "weights.  The kernel is generated, compiled and verified first;\n"
    "--reference runs the generic reference loops instead.\n\n"
    "example: sepconv run op=dw df=8 m=4 dk=3 --input x.npy --weights w.npy \\\n"
    "           --output y.npy\n"};
