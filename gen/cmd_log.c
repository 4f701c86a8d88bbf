/*
 * cmd_log.c -- `sepconv log show|best|merge FILE...`: inspect tuning logs,
 * pick the best schedule per layer for this machine, merge shards' logs.
 * A FILE of "-" is standard input; merge writes standard output unless
 * -o names a file, which it replaces atomically.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h" /* sepconv_read_stream */

#define STDIN_LOG_MAX ((size_t)1 << 30) /* as a log file's limit */
#define STDIN_NAME "standard input"

/* Reads one log named on the command line: "-" is standard input; a file
 * that is missing is an error here (the library takes it as empty). */
static sepconv_status read_one(const char *path, sepconv_tune_log *log, sepconv_error *error)
{
    if (strcmp(path, "-") == 0) {
        char *text = NULL;
        size_t length = 0;
        sepconv_status status = sepconv_read_stream(stdin, STDIN_NAME, STDIN_LOG_MAX,
                                                    "tuning log", &text, &length, error);
        if (status == SEPCONV_OK)
            status = sepconv_log_parse(text, length, STDIN_NAME, log, error);
        free(text);
        return status;
    }
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        error->status = SEPCONV_IO;
        snprintf(error->message, sizeof error->message,
                 "%s: no such file (expected a tuning log)", path);
        return SEPCONV_IO;
    }
    return sepconv_log_read(path, log, error);
}

/* Reads every log given; prints skipped-line warnings to stderr. */
static sepconv_status read_logs(char **paths, int count, sepconv_tune_log *all,
                                sepconv_error *error)
{
    memset(all, 0, sizeof *all);
    for (int i = 0; i < count; i++) {
        sepconv_tune_log log;
        sepconv_status status = read_one(paths[i], &log, error);
        if (status != SEPCONV_OK) {
            sepconv_log_free(all);
            return status;
        }
        const char *name = strcmp(paths[i], "-") == 0 ? STDIN_NAME : paths[i];
        for (size_t w = 0; w < log.skipped && w < SEPCONV_LOG_WARNINGS; w++)
            fprintf(stderr, "sepconv log: warning: %s\n", log.warnings[w]);
        if (log.skipped > SEPCONV_LOG_WARNINGS)
            fprintf(stderr, "sepconv log: warning: %s: %zu more lines skipped\n", name,
                    log.skipped - SEPCONV_LOG_WARNINGS);
        all->skipped += log.skipped;
        if (all->count == 0) { /* the first records: taken, not copied */
            free(all->records);
            all->records = log.records;
            all->count = log.count;
            continue;
        }
        if (log.count == 0)
            continue;
        sepconv_tune_record *grown =
            realloc(all->records, (all->count + log.count) * sizeof *grown);
        if (!grown) {
            sepconv_log_free(&log);
            sepconv_log_free(all);
            return cli_error(error, SEPCONV_NOMEM, "out of memory");
        }
        all->records = grown;
        memcpy(all->records + all->count, log.records, log.count * sizeof *log.records);
        all->count += log.count;
        sepconv_log_free(&log);
    }
    return SEPCONV_OK;
}

/* Prints every record, one line each. */
static int show(const sepconv_tune_log *log)
{
    printf("%-7s %-8s %-7s %9s %8s  %-44s %s\n", "status", "backend", "target", "median ms",
           "ratio", "spec", "schedule");
    for (size_t i = 0; i < log->count; i++) {
        const sepconv_tune_record *r = &log->records[i];
        printf("%-7s %-8s %-7s %9.3f %7.3fx  %-44.44s %s\n", r->status, r->environment.backend,
               r->environment.target, r->median_ms, r->ratio, r->spec, r->schedule);
    }
    printf("%zu records\n", log->count);
    return CLI_OK;
}

/* Whether `spec` was already listed among the first `count` records. */
static bool seen_before(const sepconv_tune_log *log, size_t count, const char *spec)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(log->records[i].spec, spec) == 0)
            return true;
    return false;
}

/* Prints the best record of each layer for this machine's environment. */
static int best(const sepconv_tune_log *log, const sepconv_kernel_options *options)
{
    sepconv_environment environment;
    sepconv_error error;
    if (sepconv_environment_get(options, &environment, &error) != SEPCONV_OK)
        return cli_fail("log", &error);
    printf("best for backend %s, target %s, %d thread(s), %s on %s:\n", environment.backend,
           environment.target, environment.threads, environment.compiler, environment.cpu);
    int found = 0;
    for (size_t i = 0; i < log->count; i++) {
        if (seen_before(log, i, log->records[i].spec))
            continue;
        const sepconv_tune_record *b = sepconv_log_best(log, log->records[i].spec, &environment);
        if (!b)
            continue;
        printf("%.3fx  %s\n       --schedule %s\n", b->ratio, b->spec, b->schedule);
        found++;
    }
    if (!found)
        printf("(no records for this environment; --backend, --target and --threads "
               "choose it)\n");
    return CLI_OK;
}

/* Refuses an output that is one of the inputs (replacing it would lose
 * what is being read) or that is not a regular file (a device or FIFO
 * cannot be replaced by a rename).  CLI_OK, or the exit code. */
static int check_output(const char *output, char **paths, int count)
{
    struct stat out;
    if (stat(output, &out) != 0)
        return CLI_OK; /* a new file */
    if (!S_ISREG(out.st_mode))
        return cli_usage("log", "merge: -o %s is not a regular file; use -o - for standard "
                         "output", output);
    for (int i = 0; i < count; i++) {
        struct stat in;
        if (strcmp(paths[i], "-") != 0 && stat(paths[i], &in) == 0 &&
            in.st_dev == out.st_dev && in.st_ino == out.st_ino)
            return cli_usage("log", "merge: -o %s is also an input (%s); merge into another "
                             "file, then rename it over", output, paths[i]);
    }
    return CLI_OK;
}

/* Writes the records of all logs to `output` (NULL or "-": standard
 * output), each once, in the order read. */
static int merge(sepconv_tune_log *log, const char *output, char **paths, int count)
{
    bool to_stdout = !output || strcmp(output, "-") == 0;
    int code = to_stdout ? CLI_OK : check_output(output, paths, count);
    if (code != CLI_OK)
        return code;
    size_t read = log->count, dropped = 0;
    sepconv_error error;
    if (sepconv_log_unique(log, &dropped, &error) != SEPCONV_OK)
        return cli_fail("log", &error);
    if (to_stdout) {
        sepconv_status status = sepconv_log_write_stream(stdout, log, &error);
        if (status == SEPCONV_IO) /* a write error: main reports it at exit */
            return CLI_FAILURE;
        if (status != SEPCONV_OK)
            return cli_fail("log", &error);
        code = cli_close_output(stdout, "-", "log");
    } else if (sepconv_log_write(output, log, &error) != SEPCONV_OK) {
        code = cli_fail("log", &error);
    }
    if (code == CLI_OK) /* the records own standard output: the summary goes beside */
        fprintf(to_stdout ? stderr : stdout,
                "merged %zu records into %s (%zu duplicates dropped, %zu bad lines "
                "skipped)\n", read - dropped, to_stdout ? "standard output" : output, dropped,
                log->skipped);
    return code;
}

/* The options of `sepconv log`. */
typedef struct log_options {
    sepconv_kernel_options kernel;
    cli_kernel_options cli;
    const char *output;
    char **paths;
    int count;
} log_options;

/* Parses the arguments after the action; CLI_OK or the usage code. */
static int parse_options(int argc, char **argv, log_options *o)
{
    bool stdin_named = false;
    for (int i = 2; i < argc; i++) {
        const char *value = NULL;
        bool missing = false;
        long long number = 0;
        int parsed = cli_kernel_option(argc, argv, &i, &o->cli, "log");
        if (parsed < 0)
            return CLI_USAGE;
        if (parsed > 0)
            continue;
        if (cli_option(argc, argv, &i, "-o", &value, &missing) ||
            cli_option(argc, argv, &i, "--output", &value, &missing)) {
            if (missing)
                return cli_usage("log", "-o takes a file ('-': standard output)");
            o->output = value;
        } else if (cli_option(argc, argv, &i, "--backend", &value, &missing)) {
            if (missing || sepconv_backend_parse(value, &o->cli.backend, NULL) != SEPCONV_OK)
                return cli_usage("log", "--backend takes tcc or cc");
            o->cli.backend_given = true;
        } else if (cli_option(argc, argv, &i, "--threads", &value, &missing)) {
            if (missing || !cli_number(value, 0, 1024, &number))
                return cli_usage("log", "--threads takes 0 to 1024");
            o->kernel.threads = (int)number;
        } else if (cli_is_option(argv[i])) {
            return cli_usage("log", "unknown option '%s'", argv[i]);
        } else {
            if (strcmp(argv[i], "-") == 0 && stdin_named)
                return cli_usage("log", "standard input ('-') can be read once only");
            stdin_named = stdin_named || strcmp(argv[i], "-") == 0;
            o->paths[o->count++] = argv[i];
        }
    }
    if (o->count == 0)
        return cli_usage("log", "missing FILE (a tuning log, or '-' for standard input)");
    if (o->output && strcmp(argv[1], "merge") != 0)
        return cli_usage("log", "-o is for merge; %s prints to standard output", argv[1]);
    return CLI_OK;
}

/* Entry point of `sepconv log`. */
static int log_run(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage("log", "missing action: show, best or merge");
    const char *action = argv[1];
    if (strcmp(action, "show") && strcmp(action, "best") && strcmp(action, "merge"))
        return cli_usage("log", "unknown action '%s' (expected show, best or merge)", action);
    log_options o = {sepconv_kernel_defaults(), cli_kernel_defaults(), NULL, NULL, 0};
    o.paths = calloc((size_t)argc, sizeof *o.paths);
    if (!o.paths) {
        fprintf(stderr, "sepconv log: out of memory\n");
        return CLI_FAILURE;
    }
    int code = parse_options(argc, argv, &o);
    if (code == CLI_OK && strcmp(action, "best") == 0)
        code = cli_target_resolve(&o.cli, false, "log");
    o.kernel.target = o.cli.target;
    o.kernel.backend = cli_backend(&o.cli); /* the default backend of every command */
    sepconv_tune_log log;
    sepconv_error error;
    if (code == CLI_OK && read_logs(o.paths, o.count, &log, &error) != SEPCONV_OK) {
        code = cli_fail("log", &error);
    } else if (code == CLI_OK) {
        code = strcmp(action, "show") == 0   ? show(&log)
               : strcmp(action, "best") == 0 ? best(&log, &o.kernel)
                                             : merge(&log, o.output, o.paths, o.count);
        sepconv_log_free(&log);
    }
    free(o.paths);
    return code;
}

const cli_command cli_log_command = {
    "log", "inspect, pick from and merge tuning logs", log_run,
    "usage: sepconv log show FILE...\n"
    "       sepconv log best FILE... [--backend tcc|cc] [--target T] [--threads N]\n"
    "       sepconv log merge FILE... [-o OUTPUT]\n\n"
    "show   every record: status, backend, target, median, ratio to the\n"
    "       default schedule, spec and schedule\n"
    "best   per layer, the fastest successful record measured in this\n"
    "       environment (sepconv version, backend, target, compiler, flags,\n"
    "       CPU, threads); records from elsewhere are ignored.  The backend\n"
    "       is tcc unless --backend cc, the target auto (resolved), as for tune\n"
    "merge  the records of all FILEs, each once, in the order read, to\n"
    "       standard output, or to OUTPUT, which is replaced atomically (a\n"
    "       temporary file beside it, then a rename); OUTPUT may not be one\n"
    "       of the FILEs\n\n"
    "A FILE of '-' is standard input.  A missing or unreadable FILE, or one\n"
    "that is not a regular file, is an error.  Lines that are not records are\n"
    "skipped with a warning naming the line.\n"};
