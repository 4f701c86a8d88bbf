/*
 * cmd_jit.c -- `sepconv jit SPEC|FILE`: compiles each layer's kernel in
 * process (tcc, or cc with its cache), verifies it, and times compile and
 * run against the reference.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/core.h"

/* What one layer measured. */
typedef struct jit_result {
    double compile_ms, run_ms, reference_ms, gflops;
    const sepconv_kernel_info *info;
} jit_result;

/* measure() for a dtype=int8 layer. */
static sepconv_status measure_int8(const sepconv_layer *layer,
                                   const sepconv_kernel_options *options, int repeat,
                                   const sepconv_cost *cost, sepconv_kernel **kernel,
                                   jit_result *result, sepconv_error *error)
{
    sepconv_qtensors t;
    int8_t *output;
    void *block = sepconv_qtensors_seeded(layer, &t, &output);
    if (!block)
        return cli_error(error, SEPCONV_NOMEM, "out of memory for the int8 tensors");
    sepconv_status status = sepconv_kernel_create(layer, options, kernel, error);
    if (status == SEPCONV_OK)
        status = sepconv_kernel_set_qweights(*kernel, &t, error);
    double times[101];
    for (int r = 0; r < repeat && status == SEPCONV_OK; r++) {
        double start = sepconv_seconds();
        status = sepconv_kernel_run_int8(*kernel, t.input, output, error);
        times[r] = sepconv_seconds() - start;
    }
    if (status == SEPCONV_OK) {
        double start = sepconv_seconds();
        status = sepconv_reference_run_int8(layer, &t, output, error);
        result->reference_ms = (sepconv_seconds() - start) * 1e3;
        result->info = sepconv_kernel_get_info(*kernel);
        result->compile_ms = result->info->compile_seconds * 1e3;
        result->run_ms = sepconv_median(times, (size_t)repeat) * 1e3;
        result->gflops = 2.0 * (double)cost->macs / (result->run_ms * 1e-3) / 1e9;
    }
    free(block);
    return status;
}

/* Builds, runs and times one layer; the kernel is returned for its info. */
static sepconv_status measure(const sepconv_layer *layer, const sepconv_kernel_options *options,
                              int repeat, sepconv_kernel **kernel, jit_result *result,
                              sepconv_error *error)
{
    sepconv_cost cost;
    sepconv_buffers b;
    memset(result, 0, sizeof *result);
    sepconv_status status = sepconv_cost_compute(layer, &cost, error);
    if (status == SEPCONV_OK && layer->dtype == SEPCONV_DTYPE_INT8)
        return measure_int8(layer, options, repeat, &cost, kernel, result, error);
    if (status == SEPCONV_OK)
        status = sepconv_buffers_alloc(layer, &b, error);
    if (status != SEPCONV_OK)
        return status;
    sepconv_buffers_fill_random(layer, &b, 1);
    sepconv_tensors t = sepconv_buffers_tensors(&b);
    status = sepconv_kernel_create(layer, options, kernel, error);
    if (status == SEPCONV_OK)
        status = sepconv_kernel_set_weights(*kernel, &t, error);
    double times[101];
    for (int r = 0; r < repeat && status == SEPCONV_OK; r++) {
        double start = sepconv_seconds();
        status = sepconv_kernel_run(*kernel, b.input, b.output, error);
        times[r] = sepconv_seconds() - start;
    }
    if (status == SEPCONV_OK) {
        double start = sepconv_seconds();
        status = sepconv_reference_run(layer, &t, b.output, error);
        result->reference_ms = (sepconv_seconds() - start) * 1e3;
        result->info = sepconv_kernel_get_info(*kernel);
        result->compile_ms = result->info->compile_seconds * 1e3;
        result->run_ms = sepconv_median(times, (size_t)repeat) * 1e3;
        result->gflops = 2.0 * (double)cost.macs / (result->run_ms * 1e-3) / 1e9;
    }
    sepconv_buffers_free(&b);
    return status;
}

/* Entry point of `sepconv jit`. */
static int jit_run(int argc, char **argv)
{
    cli_input input = {0};
    cli_kernel_options kernel_options = cli_kernel_defaults();
    sepconv_kernel_options options = sepconv_kernel_defaults();
    long long repeat = 11, threads = 1;
    const char *only = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        bool missing = false;
        int parsed = cli_kernel_option(argc, argv, &i, &kernel_options, "jit");
        if (parsed < 0)
            return CLI_USAGE;
        if (parsed > 0)
            continue;
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--no-verify") == 0) {
            options.verify = 0;
        } else if (cli_option(argc, argv, &i, "--backend", &value, &missing)) {
            sepconv_error error;
            if (missing || sepconv_backend_parse(value, &kernel_options.backend, &error) !=
                               SEPCONV_OK)
                return cli_usage("jit", "--backend takes tcc or cc");
            kernel_options.backend_given = true;
        } else if (cli_option(argc, argv, &i, "--threads", &value, &missing)) {
            if (missing || !cli_number(value, 0, 1024, &threads))
                return cli_usage("jit", "--threads takes 0 (every usable CPU) to 1024");
        } else if (cli_option(argc, argv, &i, "--repeat", &value, &missing)) {
            if (missing || !cli_number(value, 1, 101, &repeat))
                return cli_usage("jit", "--repeat takes 1..101");
        } else if (cli_option(argc, argv, &i, "--only", &value, &missing)) {
            if (missing)
                return cli_usage("jit", "--only takes an op (conv, dw, pw, sep) or a "
                                        "layer's name");
            only = value;
        } else if (cli_is_option(argv[i])) {
            return cli_usage("jit", "unknown option '%s'", argv[i]);
        } else if (!cli_input_add(&input, argv[i])) {
            return cli_usage("jit", "give one spec (key=value tokens) or one model "
                                    "file, not '%s' as well", argv[i]);
        }
    }
    if (!input.file && !input.spec[0])
        return cli_usage("jit", "missing SPEC or FILE");
    if (cli_target_resolve(&kernel_options, false, "jit") != CLI_OK)
        return CLI_FAILURE;
    options.backend = cli_backend(&kernel_options);
    cli_kernel_apply(&kernel_options, &options);
    options.threads = (int)threads;
    sepconv_error error;
    sepconv_model model;
    if (cli_input_load(&input, &model, &error) != SEPCONV_OK)
        return cli_input_fail("jit", &input, &error);
    /* what the command line got wrong is found before the table starts */
    int code = cli_only_check(&model, &input, only, "jit");
    for (size_t i = 0; i < model.count && code == CLI_OK; i++)
        if (cli_layer_selected(&model.layers[i], only))
            code = cli_kernel_check(&kernel_options, options.backend, &model.layers[i],
                                    "jit");
    if (code != CLI_OK) {
        sepconv_model_free(&model);
        return code;
    }
    if (json)
        printf("{\"backend\":\"%s\",\"target\":\"%s\",\"layers\":[",
               sepconv_backend_name(options.backend), sepconv_target_name(options.target));
    else
        printf("backend %s, target %s, %d thread%s, median of %lld runs\n"
               "%-8s %11s %10s %9s %10s %8s  %s\n",
               sepconv_backend_name(options.backend), sepconv_target_name(options.target),
               sepconv_thread_count((int)threads),
               sepconv_thread_count((int)threads) == 1 ? "" : "s", repeat, "layer", "compile ms",
               "run ms", "GFLOP/s", "ref ms", "speedup", "verified");
    double totals[3] = {0, 0, 0};
    int printed = 0, cached = 0;
    for (size_t i = 0; i < model.count && code == CLI_OK; i++) {
        const sepconv_layer *layer = &model.layers[i];
        if (!cli_layer_selected(layer, only))
            continue;
        sepconv_kernel *kernel = NULL;
        jit_result r;
        if (measure(layer, &options, (int)repeat, &kernel, &r, &error) != SEPCONV_OK) {
            char label[128];
            snprintf(label, sizeof label, "jit: layer %zu%s%s", i + 1,
                     layer->name[0] ? " " : "", layer->name);
            code = cli_fail(label, &error);
            sepconv_kernel_free(kernel);
            break;
        }
        totals[0] += r.compile_ms;
        totals[1] += r.run_ms;
        totals[2] += r.reference_ms;
        const char *verified = r.info->verified ? "yes" : "skipped";
        char name[64];
        snprintf(name, sizeof name, "%s", layer->name[0] ? layer->name : sepconv_op_name(layer->op));
        if (json)
            printf("%s{\"name\":\"%s\",\"symbol\":\"%s\",\"schedule\":\"%s\","
                   "\"compile_ms\":%.4f,\"cached\":%s,\"run_ms\":%.4f,\"gflops\":%.3f,"
                   "\"reference_ms\":%.3f,\"speedup\":%.2f,\"verified\":%s}",
                   printed ? "," : "", name, r.info->symbol, r.info->schedule,
                   r.compile_ms, r.info->from_cache ? "true" : "false", r.run_ms, r.gflops,
                   r.reference_ms, r.reference_ms / r.run_ms,
                   r.info->verified ? "true" : "false");
        else
            printf("%-8s %11.3f%s %10.3f %9.2f %10.2f %7.1fx  %s\n", name, r.compile_ms,
                   r.info->from_cache ? "*" : " ", r.run_ms, r.gflops, r.reference_ms,
                   r.reference_ms / r.run_ms, verified);
        printed++;
        cached += r.info->from_cache;
        sepconv_kernel_free(kernel);
    }
    if (code == CLI_OK && json)
        printf("],\"total_compile_ms\":%.4f,\"total_run_ms\":%.4f,"
               "\"total_reference_ms\":%.3f}\n", totals[0], totals[1], totals[2]);
    else if (code == CLI_OK && printed > 1)
        printf("%-8s %11.3f  %10.3f %9s %10.2f %7.1fx\n", "total", totals[0], totals[1],
               "", totals[2], totals[2] / totals[1]);
    if (code == CLI_OK && !json && cached)
        printf("(* compile served from the cc backend's disk cache)\n");
    sepconv_model_free(&model);
    return code;
}

const cli_command cli_jit_command = {
    "jit", "compile layers in process, verify them, time them", jit_run,
    "usage: sepconv jit SPEC|FILE [--backend tcc|cc] [--schedule K=V,...]\n"
    "                   [--target T] [--threads N] [--no-verify] [--repeat N]\n"
    "                   [--only OP|NAME] [--cc-timeout SECONDS]\n"
    "                   [--max-source SIZE] [--json]\n\n"
    "Generates each layer's kernel, compiles it in this process (tcc, the\n"
    "default, embedded: about a millisecond; cc: the system compiler with\n"
    "-O3 -march=native and a disk cache under ~/.cache/sepconv), verifies it\n"
    "against the reference, and prints compile time, run time (median of\n"
    "--repeat runs, default 11), GFLOP/s and the speedup over the reference.\n\n"
    "FILE '-' reads the model from standard input.\n\n"
    "  --backend B       tcc (default) or cc\n"
    "  --target T        auto (default: the best this CPU has), portable, avx2,\n"
    "                    avx512 or neon (native: auto); one the CPU lacks is\n"
    "                    refused, naming the CPU's features\n"
    "  --threads N       split output rows over N threads (0: every CPU this\n"
    "                    process may use; more than those are capped to them)\n"
    "  --only OP|NAME    with a FILE: only the layers of that op (conv, dw, pw,\n"
    "                    sep) or of that name=\n"
    "  --cc-timeout S    stop a cc compile after S seconds (default {cc_timeout})\n"
    "  --max-source SIZE the source-size budget (default 4M; suffixes K, M, G)\n\n"
    "With tcc, an instruction set makes the code call libsepconv's SIMD\n"
    "micro-kernels of it a row at a time: near cc's speed, with no compiler;\n"
    "with cc, the code is that instruction set's intrinsics.\n\n"
    "example: sepconv jit examples/mobilenet_v1.layers --only sep --backend cc\n"};
