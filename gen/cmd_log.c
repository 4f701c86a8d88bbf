/*
 * cmd_log.c -- `sepconv log show|best|merge FILE...`: inspect tuning logs,
 * pick the best schedule per layer for this machine, merge shards' logs.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Reads every log given; prints skipped-line warnings to stderr. */
static sepconv_status read_logs(char **paths, int count, sepconv_tune_log *all,
                                sepconv_error *error)
{
    memset(all, 0, sizeof *all);
    for (int i = 0; i < count; i++) {
        sepconv_tune_log log;
        sepconv_status status = sepconv_log_read(paths[i], &log, error);
        if (status != SEPCONV_OK) {
            sepconv_log_free(all);
            return status;
        }
        for (size_t w = 0; w < log.skipped && w < SEPCONV_LOG_WARNINGS; w++)
            fprintf(stderr, "sepconv log: warning: %s\n", log.warnings[w]);
        if (log.skipped > SEPCONV_LOG_WARNINGS)
            fprintf(stderr, "sepconv log: warning: %s: %zu more lines skipped\n", paths[i],
                    log.skipped - SEPCONV_LOG_WARNINGS);
        sepconv_tune_record *grown =
            realloc(all->records, (all->count + log.count + 1) * sizeof *grown);
        if (!grown) {
            sepconv_log_free(&log);
            sepconv_log_free(all);
            return cli_error(error, SEPCONV_NOMEM, "out of memory");
        }
        all->records = grown;
        memcpy(all->records + all->count, log.records, log.count * sizeof *log.records);
        all->count += log.count;
        all->skipped += log.skipped;
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
        printf("(no records for this environment)\n");
    return CLI_OK;
}

/* Writes the records of all logs to `output`, each once. */
static int merge(const sepconv_tune_log *log, const char *output)
{
    sepconv_error error;
    FILE *check = fopen(output, "r");
    if (check) {
        fclose(check);
        fprintf(stderr, "sepconv log: %s exists; merge writes a new file\n", output);
        return CLI_FAILURE;
    }
    size_t written = 0;
    char **lines = calloc(log->count + 1, sizeof *lines);
    for (size_t i = 0; lines && i < log->count; i++) {
        if (sepconv_log_format(&log->records[i], &lines[i], &error) != SEPCONV_OK)
            break;
        bool duplicate = false;
        for (size_t j = 0; j < i && !duplicate; j++)
            duplicate = lines[j] && strcmp(lines[j], lines[i]) == 0;
        if (duplicate)
            continue;
        if (sepconv_log_append(output, &log->records[i], &error) != SEPCONV_OK) {
            for (size_t k = 0; k <= i; k++)
                free(lines[k]);
            free(lines);
            return cli_fail("log", &error);
        }
        written++;
    }
    for (size_t i = 0; lines && i < log->count; i++)
        free(lines[i]);
    free(lines);
    printf("merged %zu records into %s (%zu duplicates dropped, %zu bad lines skipped)\n",
           written, output, log->count - written, log->skipped);
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
    sepconv_kernel_options options = sepconv_kernel_defaults();
    cli_kernel_options kernel = cli_kernel_defaults();
    const char *output = NULL;
    char **paths = calloc((size_t)argc, sizeof *paths);
    int count = 0;
    for (int i = 2; i < argc && paths; i++) {
        const char *value = NULL;
        bool missing = false;
        long long number = 0;
        int parsed = cli_kernel_option(argc, argv, &i, &kernel, "log");
        if (parsed < 0) {
            free(paths);
            return CLI_USAGE;
        }
        if (parsed > 0)
            continue;
        if (cli_option(argc, argv, &i, "-o", &value, &missing)) {
            output = value;
        } else if (cli_option(argc, argv, &i, "--backend", &value, &missing)) {
            if (missing || sepconv_backend_parse(value, &options.backend, NULL) != SEPCONV_OK) {
                free(paths);
                return cli_usage("log", "--backend takes tcc or cc");
            }
        } else if (cli_option(argc, argv, &i, "--threads", &value, &missing)) {
            if (missing || !cli_number(value, 0, 1024, &number)) {
                free(paths);
                return cli_usage("log", "--threads takes 0 to 1024");
            }
            options.threads = (int)number;
        } else if (argv[i][0] == '-') {
            free(paths);
            return cli_usage("log", "unknown option '%s'", argv[i]);
        } else {
            paths[count++] = argv[i];
        }
    }
    if (!paths)
        return CLI_FAILURE;
    options.target = kernel.target;
    int code = CLI_OK;
    if (count == 0)
        code = cli_usage("log", "missing FILE (a tuning log)");
    else if (strcmp(action, "merge") == 0 && !output)
        code = cli_usage("log", "merge needs -o OUTPUT");
    sepconv_tune_log log;
    sepconv_error error;
    if (code == CLI_OK && read_logs(paths, count, &log, &error) != SEPCONV_OK)
        code = cli_fail("log", &error);
    else if (code == CLI_OK) {
        code = strcmp(action, "show") == 0 ? show(&log)
               : strcmp(action, "best") == 0 ? best(&log, &options)
                                             : merge(&log, output);
        sepconv_log_free(&log);
    }
    free(paths);
    return code;
}

const cli_command cli_log_command = {
    "log", "inspect, pick from and merge tuning logs", log_run,
    "usage: sepconv log show FILE...\n"
    "       sepconv log best FILE... [--backend tcc|cc] [--target T] [--threads N]\n"
    "       sepconv log merge FILE... -o OUTPUT\n\n"
    "show   every record: status, backend, target, median, ratio to the\n"
    "       default schedule, spec and schedule\n"
    "best   per layer, the fastest successful record measured in this\n"
    "       environment (sepconv version, backend, target, compiler, flags,\n"
    "       CPU, threads); records from elsewhere are ignored\n"
    "merge  the records of all FILEs into a new OUTPUT, duplicates dropped\n"
    "Lines that are not records are skipped with a warning naming the line.\n"};
