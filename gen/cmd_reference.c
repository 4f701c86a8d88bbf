/*
 * cmd_reference.c -- `sepconv reference SPEC`: runs the generic reference
 * kernel on seeded random data and reports its wall time (the baseline every
 * generated kernel is measured against).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Entry point of `sepconv reference`. */
static int reference_run(int argc, char **argv)
{
    cli_input input = {0};
    long long repeat = 3, seed = 1;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        bool missing = false;
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (cli_option(argc, argv, &i, "--repeat", &value, &missing)) {
            if (missing || !cli_number(value, 1, 1000, &repeat))
                return cli_usage("reference", "--repeat takes 1..1000");
        } else if (cli_option(argc, argv, &i, "--seed", &value, &missing)) {
            if (missing || !cli_number(value, 0, INT64_MAX, &seed))
                return cli_usage("reference", "--seed takes a whole number >= 0");
        } else if (cli_is_option(argv[i])) {
            return cli_usage("reference", "unknown option '%s'", argv[i]);
        } else if (!strchr(argv[i], '=') || !cli_input_add(&input, argv[i])) {
            return cli_usage("reference", "'%s' is not a key=value token", argv[i]);
        }
    }
    if (!input.spec[0])
        return cli_usage("reference", "missing SPEC");
    sepconv_error error;
    sepconv_layer layer;
    sepconv_cost cost;
    if (sepconv_layer_parse(input.spec, &layer, &error) != SEPCONV_OK)
        return cli_usage_error("reference", &error);
    if (sepconv_cost_compute(&layer, &cost, &error) != SEPCONV_OK)
        return cli_fail("reference", &error);
    sepconv_buffers buffers;
    if (sepconv_buffers_alloc(&layer, &buffers, &error) != SEPCONV_OK)
        return cli_fail("reference", &error);
    sepconv_buffers_fill_random(&layer, &buffers, (uint64_t)seed);
    sepconv_tensors tensors = sepconv_buffers_tensors(&buffers);
    double times[1000];
    int code = CLI_OK;
    for (long long r = 0; r < repeat && code == CLI_OK; r++) {
        double start = sepconv_seconds();
        if (sepconv_reference_run(&layer, &tensors, buffers.output, &error) != SEPCONV_OK)
            code = cli_fail("reference", &error);
        times[r] = sepconv_seconds() - start;
    }
    if (code == CLI_OK) {
        double median = sepconv_median(times, (size_t)repeat);
        double gflops = 2.0 * (double)cost.macs / median / 1e9;
        char spec[1024];
        sepconv_layer_format(&layer, spec, sizeof spec, NULL);
        if (json) {
            printf("{\"spec\":");
            cli_json_string(stdout, spec);
            printf(",\"repeat\":%lld,\"median_ms\":%.4f,\"gflops\":%.4f}\n",
                   repeat, median * 1e3, gflops);
        } else {
            printf("reference %s\n  median of %lld runs: %.3f ms, %.3f GFLOP/s\n",
                   spec, repeat, median * 1e3, gflops);
        }
    }
    sepconv_buffers_free(&buffers);
    return code;
}

const cli_command cli_reference_command = {
    "reference", "time the generic reference kernel on random data",
    reference_run,
    "usage: sepconv reference SPEC [--repeat N] [--seed S] [--json]\n\n"
    "Runs the generic reference loops (double accumulation, the oracle every\n"
    "generated kernel is verified against) on seeded random data in [-1, 1)\n"
    "and prints the median wall time of N runs (default 3) and GFLOP/s.\n\n"
    "example: sepconv reference op=sep df=56 m=128 n=128 dk=3 --repeat 5\n"};
