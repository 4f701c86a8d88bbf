/*
 * cli.h -- what the sepconv subcommands share: exit codes, argument helpers,
 * messages on stderr, JSON string output.
 */
#ifndef SEPCONV_CLI_H
#define SEPCONV_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "sepconv.h"

enum { CLI_OK = 0, CLI_FAILURE = 1, CLI_USAGE = 2 };

/* A subcommand: its name, a one-line summary, its entry point and help. */
typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
    const char *help;
} cli_command;

extern const cli_command cli_cost_command;
extern const cli_command cli_reference_command;
extern const cli_command cli_gen_command;
extern const cli_command cli_schedules_command;
extern const cli_command cli_run_command;
extern const cli_command cli_jit_command;
extern const cli_command cli_tune_command;
extern const cli_command cli_log_command;

/* What a subcommand's positional arguments name: a spec or a model file. */
typedef struct cli_input {
    char spec[4096]; /* the key=value tokens joined, or "" */
    const char *file;/* the model file, or NULL */
} cli_input;

/* The options every kernel-making command takes (gen, run, ...). */
typedef struct cli_kernel_options {
    const char *schedule;             /* "k=v,...", "best" or NULL */
    const char *log_path;             /* --log: the tuning log */
    sepconv_backend backend;          /* whose tuning records "best" reads */
    sepconv_target target;
    sepconv_generate_options generate;
} cli_kernel_options;

/* The defaults: portable target, default schedule, built-in templates. */
cli_kernel_options cli_kernel_defaults(void);

/* Takes --schedule, --target, --name, --templates, --max-source at argv[*i]:
 * 1 if it took one, 0 if argv[*i] is something else, -1 after reporting a
 * usage error. */
int cli_kernel_option(int argc, char **argv, int *i, cli_kernel_options *options,
                      const char *command);

/* The schedule the options ask for, for a layer; "best" (or "auto") reads
 * the tuning log and warns on stderr when it has no record. */
sepconv_status cli_kernel_schedule(const cli_kernel_options *options,
                                   const sepconv_layer *layer,
                                   sepconv_schedule *schedule, sepconv_error *error);

/* Prints "sepconv CMD: message" and the help hint to stderr; returns 2. */
int cli_usage(const char *command, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Fills an error with a message; returns the status (for CLI-side errors). */
sepconv_status cli_error(sepconv_error *error, sepconv_status status,
                         const char *message);

/* Prints "sepconv CMD: <error message>" to stderr; returns 1. */
int cli_fail(const char *command, const sepconv_error *error);

/* Whether argv[*i] is `option`; takes its value from "=v" or the next arg.
 * Sets *missing when the value is absent. */
bool cli_option(int argc, char **argv, int *i, const char *option,
                const char **value, bool *missing);

/* Parses a whole number in [low, high] given to `option`. */
bool cli_number(const char *text, long long low, long long high,
                long long *out);

/* Adds a positional argument to the input; false if it does not fit. */
bool cli_input_add(cli_input *input, const char *argument);

/* Loads the input's layers: the spec as one layer, or the model file. */
sepconv_status cli_input_load(const cli_input *input, sepconv_model *model,
                              sepconv_error *error);

/* Writes a JSON string literal. */
void cli_json_string(FILE *out, const char *text);


#endif /* SEPCONV_CLI_H */
