/*
 * cli.h -- what the sepconv subcommands share: exit codes, argument helpers,
 * messages on stderr, JSON string output.
 */
#ifndef SEPCONV_CLI_H
#define SEPCONV_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "sepconv.h"
#include "generate/generate.h"
#include "log/log.h"

enum { CLI_OK = 0, CLI_FAILURE = 1, CLI_USAGE = 2 };

/* The backend of every command (jit, run, tune, gen --schedule best, log
 * best) when no --backend is given: the embedded tcc needs no compiler. */
#define CLI_DEFAULT_BACKEND SEPCONV_BACKEND_TCC

/* The cc compile time limit the help texts name; the library's own default
 * when it defines one. */
#ifdef SEPCONV_CC_TIMEOUT_DEFAULT
#define CLI_CC_TIMEOUT_DEFAULT ((double)(SEPCONV_CC_TIMEOUT_DEFAULT))
#else
#define CLI_CC_TIMEOUT_DEFAULT 30.0
#endif

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
    bool backend_given;               /* --backend was on the command line */
    sepconv_target target;            /* resolved by cli_target_resolve */
    sepconv_target requested;         /* as given (auto by default) */
    sepconv_generate_options generate;
    double cc_timeout;                /* --cc-timeout seconds; 0: the default */
} cli_kernel_options;

/* The defaults: target auto, backend tcc, default schedule, built-in templates. */
cli_kernel_options cli_kernel_defaults(void);

/* Takes --schedule, --target, --log, --name, --templates, --max-source,
 * --cc-timeout at argv[*i] (not --backend: each command takes its own):
 * 1 if it took one, 0 if argv[*i] is something else, -1 after reporting a
 * usage error. */
int cli_kernel_option(int argc, char **argv, int *i, cli_kernel_options *options,
                      const char *command);

/* The backend to use: --backend if given, else CLI_DEFAULT_BACKEND. */
sepconv_backend cli_backend(const cli_kernel_options *options);

/* Resolves options->target: auto to this CPU's best ISA (noting once on
 * stderr when that is portable), an ISA the CPU lacks refused with its
 * features named (CLI_FAILURE, message printed) unless `any_cpu`. */
int cli_target_resolve(cli_kernel_options *options, bool any_cpu, const char *command);

/* Copies what the kernel options say (target, schedule, log, generate
 * options, cc timeout; not the backend) into the library's options. */
void cli_kernel_apply(const cli_kernel_options *options,
                      sepconv_kernel_options *kernel);

/* Checks, before anything is printed, that a backend can build the target
 * and that a --schedule K=V,... text suits the layer: CLI_OK, or CLI_USAGE
 * after saying why. */
int cli_kernel_check(const cli_kernel_options *options, sepconv_backend backend,
                     const sepconv_layer *layer, const char *command);

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

/* Prints "sepconv CMD: <error message>" to stderr; returns 1.  A source-size
 * budget error also names the flag that raises it. */
int cli_fail(const char *command, const sepconv_error *error);

/* Prints "sepconv CMD: <error message>" and the help hint; returns 2 (for
 * what the command line got wrong: a spec, a schedule). */
int cli_usage_error(const char *command, const sepconv_error *error);

/* Whether argv[*i] is `option`; takes its value from "=v" or the next arg.
 * Sets *missing when the value is absent. */
bool cli_option(int argc, char **argv, int *i, const char *option,
                const char **value, bool *missing);

/* Parses a whole number in [low, high] given to `option`. */
bool cli_number(const char *text, long long low, long long high,
                long long *out);

/* Parses a byte count: digits and an optional suffix K, M, G or T (powers
 * of 1024; "k", "KB" and "KiB" also); false for anything else, a sign, or
 * a count that does not fit in size_t. */
bool cli_parse_size(const char *text, size_t *out);

/* Parses seconds: a decimal number > 0 and at most `high`. */
bool cli_seconds(const char *text, double high, double *out);

/* Whether an argument is an option ("-x", "--x"); "-" is not: it names
 * standard input or output. */
bool cli_is_option(const char *argument);

/* Opens `path` for writing; NULL or "-" is standard output.  NULL after
 * printing why. */
FILE *cli_open_output(const char *path, const char *command);

/* Writes bytes to an output and flushes them: CLI_OK, or CLI_FAILURE after
 * printing why (then not again at exit). */
int cli_write(FILE *file, const char *path, const void *bytes, size_t length,
              const char *command);

/* Closes what cli_open_output returned, checking every write reached it:
 * CLI_OK, or CLI_FAILURE after printing why.  Standard output is flushed
 * and left open (main checks it again at exit). */
int cli_close_output(FILE *file, const char *path, const char *command);

/* Flushes and closes standard output at exit: when a write failed (a full
 * disk, /dev/full) says so and turns `code` 0 into 1. */
int cli_finish_stdout(int code);

/* Adds a positional argument to the input; false if it does not fit. */
bool cli_input_add(cli_input *input, const char *argument);

/* Loads the input's layers: the spec as one layer, or the model file
 * ("-": standard input). */
sepconv_status cli_input_load(const cli_input *input, sepconv_model *model,
                              sepconv_error *error);

/* Reports a failed cli_input_load: a spec on the command line is bad usage
 * (returns 2), a model file a failure (returns 1). */
int cli_input_fail(const char *command, const cli_input *input,
                   const sepconv_error *error);

/* Whether a layer is one --only names (NULL: every layer): its op (conv,
 * dw, pw, sep) or its name=. */
bool cli_layer_selected(const sepconv_layer *layer, const char *only);

/* Checks that --only selects some layer of the model: CLI_OK, or CLI_USAGE
 * after naming the ops and names it could have been. */
int cli_only_check(const sepconv_model *model, const cli_input *input,
                   const char *only, const char *command);

/* The help text of a command as printed: ~/.cache/sepconv replaced by the
 * actual cache directory, then the ENVIRONMENT section. */
void cli_print_help(FILE *out, const char *help);

/* The ENVIRONMENT section: every variable sepconv reads. */
void cli_print_environment(FILE *out);

/* Writes a JSON string literal. */
void cli_json_string(FILE *out, const char *text);


#endif /* SEPCONV_CLI_H */
