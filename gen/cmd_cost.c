/*
 * cmd_cost.c -- `sepconv cost SPEC|FILE [--json]`: multiply-adds, parameters
 * and memory traffic of a layer or a model, with totals and shares.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Prints one layer's cost in detail. */
static void print_layer(const sepconv_layer *layer, const char *spec,
                        const sepconv_cost *cost)
{
    printf("layer           %s\n", spec);
    printf("output          %lld x %lld x %lld (h x w x c), batch %lld\n",
           (long long)layer->out_h, (long long)layer->out_w,
           (long long)layer->out_c, (long long)layer->batch);
    printf("multiply-adds   %lld", (long long)cost->macs);
    if (layer->op == SEPCONV_OP_SEP)
        printf(" (depthwise %lld, pointwise %lld)", (long long)cost->dw_macs,
               (long long)cost->pw_macs);
    printf("\nparameters      %lld (weights %lld, biases %lld), %lld bytes\n",
           (long long)cost->parameters, (long long)cost->weights,
           (long long)cost->biases, (long long)cost->parameter_bytes);
    printf("bytes read      %lld\nbytes written   %lld\n",
           (long long)cost->bytes_read, (long long)cost->bytes_written);
    if (layer->op == SEPCONV_OP_SEP)
        printf("intermediate    %lld bytes\n"
               "standard conv   %lld multiply-adds\n"
               "ratio to conv   %.3f\n",
               (long long)cost->intermediate_bytes, (long long)cost->conv_macs,
               cost->ratio_to_conv);
}

/* Prints a percentage share, guarding a zero total. */
static double share(int64_t part, int64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* Prints the per-layer table and totals of a model. */
static void print_table(const sepconv_model *model, const sepconv_cost *costs,
                        const sepconv_cost *total)
{
    printf("%3s  %-12s %-4s %16s %16s %12s %10s %6s\n", "#", "name", "op",
           "input hxwxc", "output hxwxc", "MMACs", "params", "ratio");
    for (size_t i = 0; i < model->count; i++) {
        const sepconv_layer *l = &model->layers[i];
        char in[48], out[48];
        snprintf(in, sizeof in, "%lldx%lldx%lld", (long long)l->in_h,
                 (long long)l->in_w, (long long)l->m);
        snprintf(out, sizeof out, "%lldx%lldx%lld", (long long)l->out_h,
                 (long long)l->out_w, (long long)l->out_c);
        printf("%3zu  %-12s %-4s %16s %16s %12.3f %10lld", i + 1,
               l->name[0] ? l->name : "-", sepconv_op_name(l->op), in, out,
               (double)costs[i].macs / 1e6, (long long)costs[i].parameters);
        if (l->op == SEPCONV_OP_SEP)
            printf(" %6.3f\n", costs[i].ratio_to_conv);
        else
            printf(" %6s\n", "-");
    }
    int64_t conv_macs = total->macs - total->dw_macs - total->pw_macs;
    int64_t conv_params = total->parameters - total->dw_parameters -
                          total->pw_parameters;
    printf("\ntotal: %.3f million multiply-adds, %lld parameters (%lld bytes)\n",
           (double)total->macs / 1e6, (long long)total->parameters,
           (long long)total->parameter_bytes);
    printf("stage       MMACs   share    params   share\n");
    const char *names[] = {"conv", "depthwise", "pointwise"};
    int64_t macs[] = {conv_macs, total->dw_macs, total->pw_macs};
    int64_t params[] = {conv_params, total->dw_parameters, total->pw_parameters};
    for (int k = 0; k < 3; k++)
        printf("%-9s %7.3f %6.2f%% %9lld %6.2f%%\n", names[k],
               (double)macs[k] / 1e6, share(macs[k], total->macs),
               (long long)params[k], share(params[k], total->parameters));
    printf("(sep layers count toward depthwise and pointwise)\n");
}

/* Writes one cost as JSON members. */
static void json_cost(const sepconv_cost *cost)
{
    printf("\"macs\":%lld,\"dw_macs\":%lld,\"pw_macs\":%lld,"
           "\"parameters\":%lld,\"weights\":%lld,\"biases\":%lld,"
           "\"bytes_read\":%lld,\"bytes_written\":%lld,"
           "\"intermediate_bytes\":%lld,\"parameter_bytes\":%lld",
           (long long)cost->macs, (long long)cost->dw_macs,
           (long long)cost->pw_macs, (long long)cost->parameters,
           (long long)cost->weights, (long long)cost->biases,
           (long long)cost->bytes_read, (long long)cost->bytes_written,
           (long long)cost->intermediate_bytes, (long long)cost->parameter_bytes);
}

/* Writes the whole report as one JSON object. */
static int print_json(const sepconv_model *model, const sepconv_cost *costs,
                      const sepconv_cost *total)
{
    printf("{\"layers\":[");
    for (size_t i = 0; i < model->count; i++) {
        const sepconv_layer *l = &model->layers[i];
        char spec[1024];
        sepconv_error error;
        if (sepconv_layer_format(l, spec, sizeof spec, &error) != SEPCONV_OK)
            return cli_fail("cost", &error);
        printf("%s{\"spec\":", i ? "," : "");
        cli_json_string(stdout, spec);
        printf(",\"op\":\"%s\",\"out_h\":%lld,\"out_w\":%lld,\"out_c\":%lld,",
               sepconv_op_name(l->op), (long long)l->out_h,
               (long long)l->out_w, (long long)l->out_c);
        json_cost(&costs[i]);
        if (l->op == SEPCONV_OP_SEP)
            printf(",\"conv_macs\":%lld,\"ratio_to_conv\":%.6f",
                   (long long)costs[i].conv_macs, costs[i].ratio_to_conv);
        printf("}");
    }
    printf("],\"totals\":{");
    json_cost(total);
    printf(",\"conv_stage_macs\":%lld}}\n",
           (long long)(total->macs - total->dw_macs - total->pw_macs));
    return CLI_OK;
}

/* Entry point of `sepconv cost`. */
static int cost_run(int argc, char **argv)
{
    cli_input input = {0};
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (cli_is_option(argv[i]))
            return cli_usage("cost", "unknown option '%s'", argv[i]);
        else if (!cli_input_add(&input, argv[i]))
            return cli_usage("cost", "give one spec (key=value tokens) or one "
                                     "model file, not '%s' as well", argv[i]);
    }
    if (!input.file && !input.spec[0])
        return cli_usage("cost", "missing SPEC or FILE");
    sepconv_error error;
    sepconv_model model;
    if (cli_input_load(&input, &model, &error) != SEPCONV_OK)
        return cli_input_fail("cost", &input, &error);
    int code = CLI_OK;
    sepconv_cost total = {0};
    sepconv_cost *costs = calloc(model.count, sizeof *costs);
    if (!costs) {
        fprintf(stderr, "sepconv cost: out of memory\n");
        code = CLI_FAILURE;
    }
    for (size_t i = 0; code == CLI_OK && i < model.count; i++)
        if (sepconv_cost_compute(&model.layers[i], &costs[i], &error) != SEPCONV_OK ||
            sepconv_cost_accumulate(&total, &costs[i], &error) != SEPCONV_OK)
            code = cli_fail("cost", &error);
    char spec[1024];
    if (code == CLI_OK && json)
        code = print_json(&model, costs, &total);
    else if (code == CLI_OK && !input.file) {
        if (sepconv_layer_format(&model.layers[0], spec, sizeof spec, &error) != SEPCONV_OK)
            code = cli_fail("cost", &error);
        else
            print_layer(&model.layers[0], spec, &costs[0]);
    } else if (code == CLI_OK)
        print_table(&model, costs, &total);
    free(costs);
    sepconv_model_free(&model);
    return code;
}

const cli_command cli_cost_command = {
    "cost", "count multiply-adds, parameters and bytes of a layer or model",
    cost_run,
    "usage: sepconv cost SPEC|FILE [--json]\n\n"
    "Counts a layer's multiply-adds, parameters (weights and biases) and the\n"
    "activation bytes it reads and writes (fp32, unfused).  For sep, also the\n"
    "ratio of its multiply-adds to a standard convolution of the same shape\n"
    "(1/N + 1/D_K^2 at stride 1).  A FILE holds one spec per line and gets a\n"
    "per-layer table, totals, and each stage kind's share; FILE '-' reads\n"
    "it from standard input.\n\n"
    "  --json   print one JSON object: {\"layers\": [...], \"totals\": {...}}\n\n"
    "example: sepconv cost op=sep df=14 m=512 n=1024 dk=3\n"
    "         grep sep examples/mobilenet_v1.layers | sepconv cost -\n"};
