/*
 * cmd_schedules.c -- `sepconv schedules SPEC`: the knobs of a layer's op for
 * a target, with their ranges and defaults.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tune/space.h"

/* Entry point of `sepconv schedules`. */
static int schedules_run(int argc, char **argv)
{
    cli_input input = {0};
    cli_kernel_options kernel = cli_kernel_defaults();
    bool json = false;
    for (int i = 1; i < argc; i++) {
        int parsed = cli_kernel_option(argc, argv, &i, &kernel, "schedules");
        if (parsed < 0)
            return CLI_USAGE;
        if (parsed > 0)
            continue;
        const char *value = NULL;
        bool missing = false;
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (cli_option(argc, argv, &i, "--backend", &value, &missing)) {
            if (missing || sepconv_backend_parse(value, &kernel.backend, NULL) != SEPCONV_OK)
                return cli_usage("schedules", "--backend takes tcc or cc");
            kernel.backend_given = true;
        }
        else if (cli_is_option(argv[i]))
            return cli_usage("schedules", "unknown option '%s'", argv[i]);
        else if (!strchr(argv[i], '=') || !cli_input_add(&input, argv[i]))
            return cli_usage("schedules", "'%s' is not a key=value token", argv[i]);
    }
    if (!input.spec[0])
        return cli_usage("schedules", "missing SPEC");
    sepconv_error error;
    sepconv_layer layer;
    if (sepconv_layer_parse(input.spec, &layer, &error) != SEPCONV_OK)
        return cli_usage_error("schedules", &error);
    if (cli_target_resolve(&kernel, true, "schedules") != CLI_OK)
        return CLI_FAILURE;
    if (json)
        printf("{\"op\":\"%s\",\"target\":\"%s\",\"knobs\":[",
               sepconv_op_name(layer.op), sepconv_target_name(kernel.target));
    else
        printf("knobs of op=%s for target %s:\n", sepconv_op_name(layer.op),
               sepconv_target_name(kernel.target));
    int printed = 0;
    sepconv_schedule defaults; /* the layer's (an int8 layer's blocks differ) */
    if (sepconv_schedule_default(&layer, kernel.target, &defaults, &error) != SEPCONV_OK)
        return cli_fail("schedules", &error);
    for (int k = 0; k < SEPCONV_KNOB_COUNT; k++) {
        sepconv_knob_info info;
        if (sepconv_knob_describe(layer.op, kernel.target, (sepconv_knob)k, &info,
                                  NULL) != SEPCONV_OK)
            continue;
        info.default_value = defaults.value[k];
        char values[256] = "", fallback[32];
        const char *default_name = NULL;
        for (int v = 0; v < info.count; v++) {
            const char *name = info.value_names[v];
            snprintf(fallback, sizeof fallback, "%lld", (long long)info.values[v]);
            if (info.values[v] == info.default_value)
                default_name = name;
            if (json) {
                strcat(values, v ? "," : "");
                if (name)
                    strcat(strcat(strcat(values, "\""), name), "\"");
                else
                    strcat(values, fallback);
            } else {
                strcat(strcat(values, v ? " | " : ""), name ? name : fallback);
            }
        }
        if (json) {
            printf("%s{\"name\":\"%s\",\"values\":[%s],\"default\":", printed ? "," : "",
                   info.name, values);
            if (default_name)
                printf("\"%s\",\"help\":", default_name);
            else
                printf("%lld,\"help\":", (long long)info.default_value);
            cli_json_string(stdout, info.help);
            printf("}");
        } else if (default_name) {
            printf("  %-14s %-24s default %-5s %s\n", info.name, values, default_name,
                   info.help);
        } else {
            printf("  %-14s %-24s default %-5lld %s\n", info.name, values,
                   (long long)info.default_value, info.help);
        }
        printed++;
    }
    /* what a sweep of this layer draws from (sepconv tune) */
    sepconv_kernel_options options = sepconv_kernel_defaults();
    cli_kernel_apply(&kernel, &options);
    options.backend = cli_backend(&kernel);
    options.target = kernel.target;
    sepconv_schedule *list = NULL;
    size_t count = 0;
    sepconv_space_counts counts;
    if (sepconv_space_distinct(&layer, &options, &list, &count, &counts, &error) != SEPCONV_OK)
        return cli_fail("schedules", &error);
    free(list);
    if (json)
        printf("],\"backend\":\"%s\",\"product\":%lld,\"valid\":%lld,\"repeats\":%lld,"
               "\"refused\":%lld,\"distinct\":%lld}\n",
               sepconv_backend_name(options.backend), (long long)counts.product,
               (long long)counts.valid, (long long)counts.repeats, (long long)counts.refused,
               (long long)counts.distinct);
    else
        printf("space for %s: %lld schedules (%lld valid), %lld repeat another's kernel, "
               "%lld refused by the source-size budget: %lld distinct candidates\n",
               sepconv_backend_name(options.backend), (long long)counts.product,
               (long long)counts.valid, (long long)counts.repeats, (long long)counts.refused,
               (long long)counts.distinct);
    return CLI_OK;
}

const cli_command cli_schedules_command = {
    "schedules", "list the schedule knobs of a layer, ranges and defaults",
    schedules_run,
    "usage: sepconv schedules SPEC [--target T] [--backend tcc|cc] [--json]\n\n"
    "Lists the knobs of the layer's op for a target (default portable): the\n"
    "values each may take and its default.  Pass them to gen, run and jit as\n"
    "--schedule knob=value,knob=value.  Then the space a sweep of this layer\n"
    "draws from with that backend (default tcc): the schedules that repeat\n"
    "another's kernel and those the source-size budget refuses are pruned.\n\n"
    "example: sepconv schedules op=sep df=56 m=128 n=128 dk=3 --target avx2\n"};
