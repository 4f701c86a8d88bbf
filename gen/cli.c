/*
 * cli.c -- helpers shared by the subcommands.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Reports a usage error and returns the usage exit code. */
int cli_usage(const char *command, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fprintf(stderr, "sepconv %s: ", command);
    vfprintf(stderr, format, args);
    fprintf(stderr, "\nTry 'sepconv %s --help'.\n", command);
    va_end(args);
    return CLI_USAGE;
}

/* Reports a library error and returns the failure exit code. */
int cli_fail(const char *command, const sepconv_error *error)
{
    fprintf(stderr, "sepconv %s: %s\n", command, error->message);
    return CLI_FAILURE;
}

/* Matches "--opt value" and "--opt=value". */
bool cli_option(int argc, char **argv, int *i, const char *option,
                const char **value, bool *missing)
{
    size_t length = strlen(option);
    const char *arg = argv[*i];
    if (strncmp(arg, option, length) != 0)
        return false;
    if (arg[length] == '=') {
        *value = arg + length + 1;
        return true;
    }
    if (arg[length] != '\0')
        return false;
    if (*i + 1 >= argc) {
        *missing = true;
        *value = NULL;
        return true;
    }
    *value = argv[++*i];
    return true;
}

/* Parses a whole decimal number in [low, high]. */
bool cli_number(const char *text, long long low, long long high, long long *out)
{
    if (!text || !*text)
        return false;
    char *end = NULL;
    long long value = strtoll(text, &end, 10);
    if (*end != '\0' || value < low || value > high)
        return false;
    *out = value;
    return true;
}

/* Adds a positional argument: key=value tokens join the spec, else a file. */
bool cli_input_add(cli_input *input, const char *argument)
{
    if (!strchr(argument, '=')) {
        if (input->file || input->spec[0])
            return false;
        input->file = argument;
        return true;
    }
    if (input->file)
        return false;
    size_t used = strlen(input->spec), length = strlen(argument);
    if (used + length + 2 > sizeof input->spec)
        return false;
    if (used)
        input->spec[used++] = ' ';
    memcpy(input->spec + used, argument, length + 1);
    return true;
}

/* Loads the layers the input names. */
sepconv_status cli_input_load(const cli_input *input, sepconv_model *model,
                              sepconv_error *error)
{
    if (input->file)
        return sepconv_model_load(input->file, model, error);
    sepconv_layer layer;
    sepconv_status status = sepconv_layer_parse(input->spec, &layer, error);
    if (status != SEPCONV_OK)
        return status;
    model->layers = malloc(sizeof layer);
    if (!model->layers)
        return cli_error(error, SEPCONV_NOMEM, "out of memory");
    model->layers[0] = layer;
    model->count = 1;
    return SEPCONV_OK;
}

/* Writes a JSON string literal, escaping what JSON requires. */
void cli_json_string(FILE *out, const char *text)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* Fills an error with a fixed message. */
sepconv_status cli_error(sepconv_error *error, sepconv_status status,
                                    const char *message)
{
    error->status = status;
    snprintf(error->message, sizeof error->message, "%s", message);
    return status;
}

/* The defaults of the kernel options. */
cli_kernel_options cli_kernel_defaults(void)
{
    cli_kernel_options options;
    memset(&options, 0, sizeof options);
    options.target = SEPCONV_TARGET_PORTABLE;
    options.backend = SEPCONV_BACKEND_CC;
    return options;
}

/* Takes one of the kernel options. */
int cli_kernel_option(int argc, char **argv, int *i, cli_kernel_options *options,
                      const char *command)
{
    const char *value = NULL;
    bool missing = false;
    if (cli_option(argc, argv, i, "--schedule", &value, &missing)) {
        if (missing)
            return cli_usage(command, "--schedule takes knob=value,..."), -1;
        options->schedule = value;
    } else if (cli_option(argc, argv, i, "--target", &value, &missing)) {
        sepconv_error error;
        if (missing || sepconv_target_parse(value, &options->target, &error) != SEPCONV_OK)
            return cli_usage(command, "--target takes portable, avx2, avx512 or native"), -1;
    } else if (cli_option(argc, argv, i, "--log", &value, &missing)) {
        if (missing)
            return cli_usage(command, "--log takes a tuning log file"), -1;
        options->log_path = value;
    } else if (cli_option(argc, argv, i, "--name", &value, &missing)) {
        if (missing)
            return cli_usage(command, "--name takes a C identifier"), -1;
        options->generate.name = value;
    } else if (cli_option(argc, argv, i, "--templates", &value, &missing)) {
        if (missing)
            return cli_usage(command, "--templates takes a directory"), -1;
        options->generate.template_dir = value;
    } else if (cli_option(argc, argv, i, "--max-source", &value, &missing)) {
        long long bytes = 0;
        if (missing || !cli_number(value, 1024, (long long)1 << 40, &bytes))
            return cli_usage(command, "--max-source takes a byte count from 1024 "
                                      "to 2^40"), -1;
        options->generate.source_budget = (size_t)bytes;
    } else {
        return 0;
    }
    return 1;
}

/* The schedule the options ask for. */
sepconv_status cli_kernel_schedule(const cli_kernel_options *options,
                                   const sepconv_layer *layer,
                                   sepconv_schedule *schedule, sepconv_error *error)
{
    const char *wanted = options->schedule;
    if (!wanted || (strcmp(wanted, "best") != 0 && strcmp(wanted, "auto") != 0))
        return sepconv_schedule_parse(wanted, layer, options->target, schedule, error);
    sepconv_kernel_options kernel = sepconv_kernel_defaults();
    kernel.backend = options->backend;
    kernel.target = options->target;
    int found = 0;
    sepconv_status status = sepconv_log_schedule(layer, &kernel, options->log_path,
                                                 schedule, &found, error);
    if (status == SEPCONV_OK && !found)
        fprintf(stderr, "sepconv: warning: the tuning log has no %s/%s record for '%s'; "
                        "using the default schedule\n", sepconv_backend_name(kernel.backend),
                sepconv_target_name(kernel.target), layer->name[0] ? layer->name : "the layer");
    return status;
}
