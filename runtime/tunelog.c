/*
 * tunelog.c -- the tuning log: JSON Lines, one record per measured
 * candidate, appended atomically, read tolerantly, searched for the best
 * schedule of a layer in an environment.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define LOG_FILE_MAX ((size_t)1 << 30)

/* The default log path; makes its directory. */
sepconv_status sepconv_log_default_path(char *path, size_t capacity, sepconv_error *error)
{
    char dir[4096];
    if (!sepconv_cache_home(dir, sizeof dir))
        return sepconv_fail(error, SEPCONV_INVALID,
                            "no default tuning log: neither XDG_CACHE_HOME nor HOME "
                            "is set; pass a log path");
    sepconv_make_dirs(dir); /* if it fails, appending says so */
    snprintf(path, capacity, "%s/tuning.jsonl", dir);
    return SEPCONV_OK;
}

/* The string fields of a record with their JSON names. */
typedef struct text_field {
    const char *name;
    size_t offset, size;
} text_field;

#define FIELD(name, member) \
    {name, offsetof(sepconv_tune_record, member), sizeof(((sepconv_tune_record *)0)->member)}

static const text_field text_fields[] = {
    FIELD("spec", spec), FIELD("op", op), FIELD("schedule", schedule),
    FIELD("status", status), FIELD("error", error), FIELD("timestamp", timestamp),
    FIELD("version", environment.version), FIELD("backend", environment.backend),
    FIELD("target", environment.target), FIELD("compiler", environment.compiler),
    FIELD("flags", environment.flags), FIELD("cpu", environment.cpu),
    FIELD("features", environment.features)};

static const struct { const char *name; size_t offset; } number_fields[] = {
    {"median_ms", offsetof(sepconv_tune_record, median_ms)},
    {"spread", offsetof(sepconv_tune_record, spread)},
    {"baseline_ms", offsetof(sepconv_tune_record, baseline_ms)},
    {"ratio", offsetof(sepconv_tune_record, ratio)}};

#define COUNT(array) (sizeof array / sizeof array[0])

/* Formats a record as one compact JSON object. */
sepconv_status sepconv_log_format(const sepconv_tune_record *record, char **line,
                                  sepconv_error *error)
{
    json_t *object = json_object();
    bool ok = object != NULL;
    for (size_t i = 0; ok && i < COUNT(text_fields); i++)
        ok = json_object_set_new(object, text_fields[i].name,
                                 json_string((const char *)record + text_fields[i].offset)) == 0;
    for (size_t i = 0; ok && i < COUNT(number_fields); i++)
        ok = json_object_set_new(object, number_fields[i].name,
                                 json_real(*(const double *)((const char *)record +
                                                             number_fields[i].offset))) == 0;
    ok = ok && json_object_set_new(object, "threads",
                                   json_integer(record->environment.threads)) == 0;
    *line = ok ? json_dumps(object, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(object);
    if (!*line)
        return sepconv_fail(error, SEPCONV_NOMEM, "tuning log: cannot format a record");
    return SEPCONV_OK;
}

/* Appends a record: one write(2) of the line and its newline. */
sepconv_status sepconv_log_append(const char *path, const sepconv_tune_record *record,
                                  sepconv_error *error)
{
    char *line = NULL;
    sepconv_status status = sepconv_log_format(record, &line, error);
    if (status != SEPCONV_OK)
        return status;
    size_t length = strlen(line);
    char *with_newline = realloc(line, length + 2);
    if (!with_newline) {
        free(line);
        return sepconv_fail(error, SEPCONV_NOMEM, "tuning log: out of memory");
    }
    with_newline[length] = '\n';
    with_newline[length + 1] = '\0';
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(with_newline);
        return sepconv_fail(error, SEPCONV_IO, "tuning log %s: cannot open for appending: %s",
                            path, strerror(errno));
    }
    ssize_t wrote = write(fd, with_newline, length + 1);
    int saved = errno;
    free(with_newline);
    if (close(fd) != 0 || wrote != (ssize_t)(length + 1))
        return sepconv_fail(error, SEPCONV_IO, "tuning log %s: cannot append: %s", path,
                            wrote < 0 ? strerror(saved) : "short write");
    return SEPCONV_OK;
}

/* Parses one line into a record; false (with a reason) if it is not one. */
static bool parse_record(const char *line, sepconv_tune_record *record, char *why,
                         size_t capacity)
{
    json_error_t json_error;
    json_t *object = json_loads(line, JSON_REJECT_DUPLICATES, &json_error);
    if (!object || !json_is_object(object)) {
        snprintf(why, capacity, "not a JSON object (%s)",
                 object ? "another JSON value" : json_error.text);
        json_decref(object);
        return false;
    }
    memset(record, 0, sizeof *record);
    bool ok = true;
    for (size_t i = 0; ok && i < COUNT(text_fields); i++) {
        json_t *value = json_object_get(object, text_fields[i].name);
        if (!json_is_string(value) || json_string_length(value) >= text_fields[i].size) {
            snprintf(why, capacity, "field \"%s\" is missing, not a string or too long",
                     text_fields[i].name);
            ok = false;
        } else {
            memcpy((char *)record + text_fields[i].offset, json_string_value(value),
                   json_string_length(value) + 1);
        }
    }
    for (size_t i = 0; ok && i < COUNT(number_fields); i++) {
        json_t *value = json_object_get(object, number_fields[i].name);
        if (!json_is_number(value)) {
            snprintf(why, capacity, "field \"%s\" is missing or not a number",
                     number_fields[i].name);
            ok = false;
        } else {
            *(double *)((char *)record + number_fields[i].offset) = json_number_value(value);
        }
    }
    json_t *threads = json_object_get(object, "threads");
    if (ok && !json_is_integer(threads)) {
        snprintf(why, capacity, "field \"threads\" is missing or not an integer");
        ok = false;
    }
    if (ok)
        record->environment.threads = (int)json_integer_value(threads);
    if (ok && strcmp(record->status, "ok") != 0 && strcmp(record->status, "failed") != 0) {
        snprintf(why, capacity, "status \"%s\" is neither ok nor failed", record->status);
        ok = false;
    }
    json_decref(object);
    return ok;
}

/* Reads a log, skipping (and naming) lines that are not records. */
sepconv_status sepconv_log_read(const char *path, sepconv_tune_log *log, sepconv_error *error)
{
    if (!path || !log)
        return sepconv_fail(error, SEPCONV_INVALID, "tuning log: missing arguments");
    memset(log, 0, sizeof *log);
    char *text = NULL;
    size_t length = 0;
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return SEPCONV_OK; /* no log yet */
    sepconv_status status = sepconv_read_file_bytes(path, LOG_FILE_MAX, &text, &length);
    if (status != SEPCONV_OK)
        return sepconv_fail(error, status, "tuning log %s: cannot read it", path);
    text[length] = '\0';
    size_t capacity = 0, number = 0;
    char *p = text, *end = text + length;
    while (p < end) {
        number++;
        char *newline = memchr(p, '\n', (size_t)(end - p));
        bool complete = newline != NULL;
        size_t line_length = complete ? (size_t)(newline - p) : (size_t)(end - p);
        char *line = p;
        line[line_length] = '\0'; /* the buffer has a byte past the end */
        p += line_length + (complete ? 1 : 0);
        if (line[strspn(line, " \t\r")] == '\0' && strlen(line) == line_length)
            continue;
        char why[200] = "";
        sepconv_tune_record record;
        bool ok = false;
        if (strlen(line) != line_length)
            snprintf(why, sizeof why, "holds a NUL byte");
        else if (!complete)
            snprintf(why, sizeof why, "is cut short (no newline at the end)");
        else
            ok = parse_record(line, &record, why, sizeof why);
        if (!ok) {
            if (log->skipped < SEPCONV_LOG_WARNINGS)
                snprintf(log->warnings[log->skipped], sizeof log->warnings[0],
                         "%.120s:%zu: skipped: %.100s", path, number, why);
            log->skipped++;
            continue;
        }
        if (log->count == capacity) {
            size_t grown = capacity ? capacity * 2 : 64;
            sepconv_tune_record *records = realloc(log->records, grown * sizeof *records);
            if (!records) {
                free(text);
                sepconv_log_free(log);
                return sepconv_fail(error, SEPCONV_NOMEM, "tuning log: out of memory");
            }
            log->records = records;
            capacity = grown;
        }
        log->records[log->count++] = record;
    }
    free(text);
    return SEPCONV_OK;
}

/* Whether a record was measured in the environment. */
static bool same_environment(const sepconv_environment *a, const sepconv_environment *b)
{
    return strcmp(a->version, b->version) == 0 && strcmp(a->backend, b->backend) == 0 &&
           strcmp(a->target, b->target) == 0 && strcmp(a->compiler, b->compiler) == 0 &&
           strcmp(a->flags, b->flags) == 0 && strcmp(a->cpu, b->cpu) == 0 &&
           strcmp(a->features, b->features) == 0 && a->threads == b->threads;
}

/* A canonical spec without its name= token: the name is a label, not part
 * of the shape a schedule was tuned for. */
static void shape_of(const char *spec, char *out, size_t capacity)
{
    const char *name = strstr(spec, " name=");
    if (!name) {
        snprintf(out, capacity, "%s", spec);
        return;
    }
    size_t end = strcspn(name + 1, " ");
    snprintf(out, capacity, "%.*s%s", (int)(name - spec), spec, name + 1 + end);
}

/* The best successful record for a spec in an environment. */
const sepconv_tune_record *sepconv_log_best(const sepconv_tune_log *log, const char *spec,
                                            const sepconv_environment *environment)
{
    const sepconv_tune_record *best = NULL;
    char wanted[512], shape[512];
    shape_of(spec, wanted, sizeof wanted);
    for (size_t i = 0; log && i < log->count; i++) {
        const sepconv_tune_record *r = &log->records[i];
        shape_of(r->spec, shape, sizeof shape);
        if (strcmp(r->status, "ok") != 0 || strcmp(shape, wanted) != 0 ||
            !same_environment(&r->environment, environment) || !(r->ratio > 0))
            continue;
        if (!best || r->ratio < best->ratio ||
            (r->ratio == best->ratio && r->median_ms < best->median_ms))
            best = r;
    }
    return best;
}

/* Frees a log. */
void sepconv_log_free(sepconv_tune_log *log)
{
    if (!log)
        return;
    free(log->records);
    log->records = NULL;
    log->count = 0;
}

/* The tuned schedule of a layer, or the default. */
sepconv_status sepconv_log_schedule(const sepconv_layer *layer,
                                    const sepconv_kernel_options *options,
                                    const char *log_path, sepconv_schedule *schedule,
                                    int *found, sepconv_error *error)
{
    *found = 0;
    char path[4096], spec[512];
    sepconv_status status = SEPCONV_OK;
    if (log_path)
        snprintf(path, sizeof path, "%s", log_path);
    else
        status = sepconv_log_default_path(path, sizeof path, error);
    sepconv_environment environment;
    if (status == SEPCONV_OK)
        status = sepconv_environment_get(options, &environment, error);
    if (status == SEPCONV_OK)
        status = sepconv_layer_format(layer, spec, sizeof spec, error);
    sepconv_tune_log log;
    if (status == SEPCONV_OK)
        status = sepconv_log_read(path, &log, error);
    if (status != SEPCONV_OK)
        return status;
    const sepconv_tune_record *best = sepconv_log_best(&log, spec, &environment);
    if (best) {
        status = sepconv_schedule_parse(best->schedule, layer, options->target, schedule,
                                        error);
        if (status != SEPCONV_OK)
            sepconv_error_prefix(error, "tuning log %s: the best record's schedule", path);
        *found = status == SEPCONV_OK;
    } else {
        status = sepconv_schedule_default(layer, options->target, schedule, error);
    }
    sepconv_log_free(&log);
    return status;
}
