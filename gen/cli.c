/*
 * cli.c -- helpers shared by the subcommands.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h" /* sepconv_cache_home: the directory the library uses */

/* A model read from standard input is text: as the library's file limit. */
#define CLI_STDIN_MAX ((size_t)64 << 20)
/* The most --cc-timeout takes: a day. */
#define CLI_CC_TIMEOUT_MAX 86400.0
/* What the help texts say for the cache directory, replaced when printed. */
#define CLI_CACHE_PLACEHOLDER "~/.cache/sepconv"

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
    /* the library cannot know the flag that raises a budget; the user needs it */
    const char *raise = "raise the budget", *hint = "";
    size_t length = strlen(error->message), tail = strlen(raise);
    if (error->status == SEPCONV_LIMIT && strstr(error->message, "size budget"))
        hint = length >= tail && strcmp(error->message + length - tail, raise) == 0
                   ? " with --max-source SIZE (e.g. --max-source 16M)"
                   : "\n(--max-source SIZE raises the source-size budget, e.g. 16M)";
    fprintf(stderr, "sepconv %s: %s%s\n", command, error->message, hint);
    return CLI_FAILURE;
}

/* Reports what the command line got wrong, found by the library. */
int cli_usage_error(const char *command, const sepconv_error *error)
{
    fprintf(stderr, "sepconv %s: %s\nTry 'sepconv %s --help'.\n", command,
            error->message, command);
    return CLI_USAGE;
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

/* Parses a byte count with an optional binary suffix. */
bool cli_parse_size(const char *text, size_t *out)
{
    if (!text || !isdigit((unsigned char)text[0]))
        return false; /* no sign, no space, no empty text */
    errno = 0;
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno == ERANGE)
        return false;
    static const char units[] = "KMGT";
    int shift = 0;
    if (*end && *end != 'B') {
        const char *unit = strchr(units, toupper((unsigned char)*end));
        if (!unit)
            return false;
        shift = 10 * (int)(unit - units + 1);
        end++;
        if (*end == 'i')
            end++;
    }
    if (*end == 'B')
        end++;
    if (*end != '\0' || value > (unsigned long long)(SIZE_MAX >> shift))
        return false;
    *out = (size_t)value << shift;
    return true;
}

/* Parses a positive, finite number of seconds. */
bool cli_seconds(const char *text, double high, double *out)
{
    if (!text || !*text)
        return false;
    char *end = NULL;
    double value = strtod(text, &end);
    if (*end != '\0' || !isfinite(value) || !(value > 0) || value > high)
        return false;
    *out = value;
    return true;
}

/* Tells options from operands; a lone "-" is standard input or output. */
bool cli_is_option(const char *argument)
{
    return argument[0] == '-' && argument[1] != '\0';
}

/* Opens an output file, or standard output. */
FILE *cli_open_output(const char *path, const char *command)
{
    if (!path || strcmp(path, "-") == 0)
        return stdout;
    FILE *file = fopen(path, "wb");
    if (!file)
        fprintf(stderr, "sepconv %s: cannot write %s: %s\n", command, path,
                strerror(errno));
    return file;
}

/* Says that writing an output failed, and why when errno knows. */
static void write_failed(const char *command, const char *path, int cause)
{
    const char *name = !path || strcmp(path, "-") == 0 ? "standard output" : path;
    fprintf(stderr, "sepconv %s: error writing %s: %s\n", command, name,
            cause ? strerror(cause) : "a write failed");
}

/* Writes and flushes, so that the error is named while errno holds it. */
int cli_write(FILE *file, const char *path, const void *bytes, size_t length,
              const char *command)
{
    errno = 0;
    if (fwrite(bytes, 1, length, file) == length && fflush(file) == 0)
        return CLI_OK;
    write_failed(command, path, errno);
    if (file == stdout)
        clearerr(stdout); /* reported: main's check at exit need not again */
    return CLI_FAILURE;
}

/* Closes an output, reporting a write that did not reach it. */
int cli_close_output(FILE *file, const char *path, const char *command)
{
    bool failed = fflush(file) != 0;
    int saved = errno;
    if (!failed && ferror(file)) {
        failed = true;
        saved = 0;
    }
    if (file != stdout && fclose(file) != 0 && !failed) {
        failed = true;
        saved = errno;
    }
    if (!failed)
        return CLI_OK;
    write_failed(command, path, saved);
    if (file == stdout)
        clearerr(stdout);
    return CLI_FAILURE;
}

/* Checks standard output once more at exit; every command ends here. */
int cli_finish_stdout(int code)
{
    bool failed = fflush(stdout) != 0;
    int saved = errno;
    if (!failed && ferror(stdout)) {
        failed = true;
        saved = 0;
    }
    /* closed before we ran (>&-) with nothing to write is not an error */
    if (fclose(stdout) != 0 && !failed && errno != EBADF) {
        failed = true;
        saved = errno;
    }
    if (!failed)
        return code;
    fprintf(stderr, "sepconv: error writing standard output: %s\n",
            saved ? strerror(saved) : "a write failed");
    return code == CLI_OK ? CLI_FAILURE : code;
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

/* Reads all of standard input into a heap string, at most `limit` bytes. */
static sepconv_status read_stdin(size_t limit, char **text, sepconv_error *error)
{
    if (isatty(STDIN_FILENO))
        fprintf(stderr, "sepconv: reading a model from the terminal (end it with "
                        "Ctrl-D)\n");
    size_t length = 0;
    return sepconv_read_stream(stdin, "standard input", limit, "model file", text,
                               &length, error);
}

/* Loads the layers the input names. */
sepconv_status cli_input_load(const cli_input *input, sepconv_model *model,
                              sepconv_error *error)
{
    if (input->file && strcmp(input->file, "-") == 0) {
        char *text = NULL;
        sepconv_status status = read_stdin(CLI_STDIN_MAX, &text, error);
        if (status != SEPCONV_OK)
            return status;
        status = sepconv_model_parse(text, "standard input", model, error);
        free(text);
        return status;
    }
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

/* Reports a failed load: a spec typed on the command line is bad usage. */
int cli_input_fail(const char *command, const cli_input *input,
                   const sepconv_error *error)
{
    if (!input->file && (error->status == SEPCONV_INVALID ||
                         error->status == SEPCONV_OVERFLOW))
        return cli_usage_error(command, error);
    return cli_fail(command, error);
}

/* Whether --only selects the layer: by op or by name. */
bool cli_layer_selected(const sepconv_layer *layer, const char *only)
{
    return !only || strcmp(only, sepconv_op_name(layer->op)) == 0 ||
           (layer->name[0] && strcmp(only, layer->name) == 0);
}

/* Appends `word` to a comma-separated list unless it is already there. */
static void list_add(char *list, size_t capacity, const char *word)
{
    size_t used = strlen(list), length = strlen(word);
    if (used >= 3 && strcmp(list + used - 3, "...") == 0)
        return; /* already cut short */
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += length)
        if ((p == list || p[-1] == ' ') && (p[length] == ',' || p[length] == '\0'))
            return;
    if (used + length + 8 >= capacity) {
        if (!strstr(list, "..."))
            snprintf(list + used, capacity - used, "%s...", used ? ", " : "");
        return;
    }
    snprintf(list + used, capacity - used, "%s%s", used ? ", " : "", word);
}

/* Refuses an --only that selects nothing, naming what it could be. */
int cli_only_check(const sepconv_model *model, const cli_input *input,
                   const char *only, const char *command)
{
    if (!only)
        return CLI_OK;
    char ops[64] = "", names[512] = "";
    for (size_t i = 0; i < model->count; i++) {
        if (cli_layer_selected(&model->layers[i], only))
            return CLI_OK;
        list_add(ops, sizeof ops, sepconv_op_name(model->layers[i].op));
        if (model->layers[i].name[0])
            list_add(names, sizeof names, model->layers[i].name);
    }
    const char *where = !input->file ? "the spec"
                        : strcmp(input->file, "-") == 0 ? "standard input" : input->file;
    return cli_usage(command, "--only %s: no layer named %s in %s (names: %s; ops: %s)",
                     only, only, where, names[0] ? names : "none", ops);
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
    options.target = SEPCONV_TARGET_AUTO;
    options.requested = SEPCONV_TARGET_AUTO;
    options.backend = CLI_DEFAULT_BACKEND;
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
            return cli_usage(command, "--target takes auto, portable, avx2, avx512 or neon "
                                      "(native: auto)"), -1;
        options->requested = options->target;
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
        size_t bytes = 0;
        if (missing || !cli_parse_size(value, &bytes) || bytes < 1024 ||
            (uint64_t)bytes > (uint64_t)1 << 40)
            return cli_usage(command, "--max-source takes a size from 1K to 1T, in "
                                      "bytes or with a suffix K, M, G or T (e.g. 16M)%s%s%s",
                             value ? ", not '" : "", value ? value : "",
                             value ? "'" : ""), -1;
        options->generate.source_budget = bytes;
    } else if (cli_option(argc, argv, i, "--cc-timeout", &value, &missing)) {
        if (missing || !cli_seconds(value, CLI_CC_TIMEOUT_MAX, &options->cc_timeout))
            return cli_usage(command, "--cc-timeout takes seconds, more than 0 and at "
                                      "most %.0f (a day)%s%s%s", CLI_CC_TIMEOUT_MAX,
                             value ? ", not '" : "", value ? value : "",
                             value ? "'" : ""), -1;
    } else {
        return 0;
    }
    return 1;
}

/* The backend the options mean: --backend, else the default (tcc). */
sepconv_backend cli_backend(const cli_kernel_options *options)
{
    return options->backend_given ? options->backend : CLI_DEFAULT_BACKEND;
}

/* Resolves the options' target in place: auto to the best ISA of this
 * CPU (a note on stderr, once, when that is portable); an explicit ISA the
 * CPU lacks refused unless `any_cpu` (gen writes source for any machine). */
int cli_target_resolve(cli_kernel_options *options, bool any_cpu, const char *command)
{
    static bool noted;
    if (options->target != SEPCONV_TARGET_AUTO && any_cpu)
        return CLI_OK;
    sepconv_error error;
    sepconv_target resolved;
    if (sepconv_target_resolve(options->target, &resolved, &error) != SEPCONV_OK) {
        fprintf(stderr, "sepconv %s: %s\n", command, error.message);
        return CLI_FAILURE;
    }
    if (options->target == SEPCONV_TARGET_AUTO && resolved == SEPCONV_TARGET_PORTABLE &&
        !noted) {
        noted = true;
        fprintf(stderr, "sepconv: note: target auto is portable on this CPU: it has none of "
                        "avx512 (avx512f), avx2 (avx2 + fma) or neon\n");
    }
    options->target = resolved;
    return CLI_OK;
}

/* Copies the kernel options into the library's. */
void cli_kernel_apply(const cli_kernel_options *options, sepconv_kernel_options *kernel)
{
    kernel->target = options->target;
    /* the library's name for the tuning log's choice is "auto" */
    kernel->schedule = options->schedule && strcmp(options->schedule, "best") == 0
                           ? "auto" : options->schedule;
    kernel->log_path = options->log_path;
    kernel->generate = options->generate;
    if (options->cc_timeout > 0)
        kernel->cc.timeout_seconds = options->cc_timeout;
}

/* Whether a schedule text is a tuning-log lookup rather than knobs. */
static bool from_log(const char *schedule)
{
    return schedule && (strcmp(schedule, "best") == 0 || strcmp(schedule, "auto") == 0);
}

/* Checks backend, target and schedule text before any output. */
int cli_kernel_check(const cli_kernel_options *options, sepconv_backend backend,
                     const sepconv_layer *layer, const char *command)
{
    sepconv_target target = options->target;
    (void)backend; /* every backend builds every instruction set */
    sepconv_schedule schedule;
    sepconv_error error;
    if (layer && !from_log(options->schedule) &&
        sepconv_schedule_parse(options->schedule, layer, target, &schedule, &error) !=
            SEPCONV_OK) {
        char label[96];
        snprintf(label, sizeof label, "%s: --schedule", command);
        fprintf(stderr, "sepconv %s: %s%s%s\nTry 'sepconv schedules SPEC' for the knobs.\n",
                label, layer->name[0] ? layer->name : "", layer->name[0] ? ": " : "",
                error.message);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* The schedule the options ask for. */
sepconv_status cli_kernel_schedule(const cli_kernel_options *options,
                                   const sepconv_layer *layer,
                                   sepconv_schedule *schedule, sepconv_error *error)
{
    const char *wanted = options->schedule;
    if (!from_log(wanted))
        return sepconv_schedule_parse(wanted, layer, options->target, schedule, error);
    sepconv_kernel_options kernel = sepconv_kernel_defaults();
    kernel.backend = cli_backend(options);
    kernel.target = options->target;
    int found = 0;
    sepconv_status status = sepconv_log_schedule(layer, &kernel, options->log_path,
                                                 schedule, &found, error);
    char why[6000];
    if (status == SEPCONV_OK && !found &&
        sepconv_log_missing(layer, &kernel, options->log_path, why, sizeof why, NULL) ==
            SEPCONV_OK)
        fprintf(stderr, "sepconv: warning: %s; using the default schedule\n", why);
    return status;
}

/* The cache directory in effect, for the help texts. */
static void cache_directory(char *out, size_t capacity)
{
    /* not sepconv_log_default_path: printing help must not make directories */
    if (!sepconv_cache_home(out, capacity))
        snprintf(out, capacity, "(none: neither XDG_CACHE_HOME nor HOME is set)");
}

/* Prints a help text with the actual cache directory and defaults. */
void cli_print_help(FILE *out, const char *help)
{
    char cache[4096], timeout[32];
    cache_directory(cache, sizeof cache);
    snprintf(timeout, sizeof timeout, "%g s", CLI_CC_TIMEOUT_DEFAULT);
    const char *const placeholders[][2] = {{CLI_CACHE_PLACEHOLDER, cache},
                                           {"{cc_timeout}", timeout}};
    const char *p = help;
    while (*p) {
        const char *first = NULL;
        int which = 0;
        for (int k = 0; k < 2; k++) {
            const char *hit = strstr(p, placeholders[k][0]);
            if (hit && (!first || hit < first)) {
                first = hit;
                which = k;
            }
        }
        if (!first) {
            fputs(p, out);
            break;
        }
        fwrite(p, 1, (size_t)(first - p), out);
        fputs(placeholders[which][1], out);
        p = first + strlen(placeholders[which][0]);
    }
    cli_print_environment(out);
}

/* Prints the variables sepconv reads and what each changes. */
void cli_print_environment(FILE *out)
{
    char cache[4096];
    cache_directory(cache, sizeof cache);
    fprintf(out,
            "\nenvironment:\n"
            "  XDG_CACHE_HOME        the cache is $XDG_CACHE_HOME/sepconv, else\n"
            "  HOME                  $HOME/.cache/sepconv; now %s\n"
            "                        (the cc backend's objects, tuning.jsonl)\n"
            "  SEPCONV_CACHE         'off': the cc backend neither reads nor writes\n"
            "                        its cache\n"
            "  SEPCONV_TEMPLATE_DIR  read templates from this directory (as --templates)\n"
            "  CC                    the cc backend's compiler (default cc)\n"
            "  TMPDIR                where sources that fail to compile are kept and\n"
            "                        cc builds (default /tmp)\n"
            "  SEPCONV_TCC_LIB_DIR   where libtcc finds its own files (default: the\n"
            "                        installed tcc's)\n"
            "  SEPCONV_NO_AVX512     '1': no AVX-512 target: auto picks the next best\n"
            "                        (valgrind cannot run it)\n"
            "  SEPCONV_CPU_HIDE      CPU features taken as missing ('avx512', 'avx2 fma',\n"
            "                        'neon'): targets needing them are refused, auto\n"
            "                        picks the best of the rest\n",
            cache);
}
