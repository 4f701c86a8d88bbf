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
#include <xxhash.h>

#include "core/core.h"
#include "log/log.h"

#define LOG_FILE_MAX ((size_t)1 << 30)
#define NOT_REGULAR "is not a regular file (a FIFO, device or directory); " \
                    "a tuning log is a JSON Lines file"

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

/* Opens a log for appending without blocking (a FIFO would wait for a
 * reader); *readable tells whether its last byte can be read back. */
static sepconv_status open_for_append(const char *path, int *fd, bool *readable,
                                      sepconv_error *error)
{
    const int flags = O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC;
    *readable = true;
    *fd = open(path, O_RDWR | flags, 0644);
    if (*fd < 0 && errno == EACCES) { /* write-only: append blind */
        *readable = false;
        *fd = open(path, O_WRONLY | flags, 0644);
    }
    if (*fd < 0)
        return sepconv_fail(error, SEPCONV_IO, "tuning log %s: cannot open for appending: %s",
                            path, strerror(errno));
    struct stat st;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return sepconv_fail(error, SEPCONV_IO, "tuning log %s " NOT_REGULAR, path);
    }
    return SEPCONV_OK;
}

/* Whether the file ends in a torn line (a crash or a full disk cut the
 * last write short): the next record must not be glued onto it. */
static bool ends_torn(int fd)
{
    struct stat st;
    char last = '\n';
    if (fstat(fd, &st) != 0 || st.st_size == 0)
        return false;
    return pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n';
}

/* Appends a record: one write(2) of the line and its newline, to a file
 * opened O_APPEND, so concurrent tuners and shards can share a log.  When
 * the file ends in a torn line (a crash or a full disk cut a write short)
 * the write starts with a newline, so the record is never glued onto it.
 * Only a regular file is a log: a FIFO or device is refused without
 * blocking. */
sepconv_status sepconv_log_append(const char *path, const sepconv_tune_record *record,
                                  sepconv_error *error)
{
    if (!path || !record)
        return sepconv_fail(error, SEPCONV_INVALID, "tuning log: missing arguments");
    char *line = NULL;
    sepconv_status status = sepconv_log_format(record, &line, error);
    if (status != SEPCONV_OK)
        return status;
    int fd = -1;
    bool readable = false;
    status = open_for_append(path, &fd, &readable, error);
    if (status != SEPCONV_OK) {
        free(line);
        return status;
    }
    size_t length = strlen(line);
    char *buffer = malloc(length + 3);
    if (!buffer) {
        free(line);
        close(fd);
        return sepconv_fail(error, SEPCONV_NOMEM, "tuning log: out of memory");
    }
    /* the torn tail becomes a line of its own, read back as skipped */
    size_t used = readable && ends_torn(fd) ? 1 : 0;
    buffer[0] = '\n';
    memcpy(buffer + used, line, length);
    used += length;
    buffer[used++] = '\n';
    free(line);
    ssize_t wrote = write(fd, buffer, used);
    int saved = errno;
    free(buffer);
    if (close(fd) != 0 || wrote != (ssize_t)used)
        return sepconv_fail(error, SEPCONV_IO, "tuning log %s: cannot append: %s", path,
                            wrote < 0 ? strerror(saved) : "short write (disk full?)");
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

/* Parses log text in place (it has a byte past `length`), skipping and
 * naming the lines that are not records. */
static sepconv_status parse_text(char *text, size_t length, const char *origin,
                                 sepconv_tune_log *log, sepconv_error *error)
{
    size_t capacity = 0, number = 0;
    char *p = text, *end = text + length;
    while (p < end) {
        number++;
        char *newline = memchr(p, '\n', (size_t)(end - p));
        bool complete = newline != NULL;
        size_t line_length = complete ? (size_t)(newline - p) : (size_t)(end - p);
        char *line = p;
        line[line_length] = '\0';
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
                         "%.120s:%zu: skipped: %.100s", origin, number, why);
            log->skipped++;
            continue;
        }
        if (log->count == capacity) {
            size_t grown = capacity ? capacity * 2 : 64;
            sepconv_tune_record *records = grown <= SIZE_MAX / sizeof *records
                                               ? realloc(log->records, grown * sizeof *records)
                                               : NULL;
            if (!records) {
                sepconv_log_free(log);
                return sepconv_fail(error, SEPCONV_NOMEM, "tuning log: out of memory");
            }
            log->records = records;
            capacity = grown;
        }
        log->records[log->count++] = record;
    }
    return SEPCONV_OK;
}

/* Parses the text of a log (standard input, say) as sepconv_log_read does
 * a file's; `origin` names it in the warnings. */
sepconv_status sepconv_log_parse(const char *text, size_t length, const char *origin,
                                 sepconv_tune_log *log, sepconv_error *error)
{
    if (!log || (!text && length))
        return sepconv_fail(error, SEPCONV_INVALID, "tuning log: missing arguments");
    memset(log, 0, sizeof *log);
    if (length > LOG_FILE_MAX)
        return sepconv_fail(error, SEPCONV_LIMIT, "tuning log %s: larger than %zu bytes",
                            origin ? origin : "", LOG_FILE_MAX);
    char *copy = malloc(length + 1);
    if (!copy)
        return sepconv_fail(error, SEPCONV_NOMEM, "tuning log: out of memory");
    if (length)
        memcpy(copy, text, length);
    sepconv_status status = parse_text(copy, length, origin ? origin : "(log)", log, error);
    free(copy);
    return status;
}

/* Reads a whole regular file without blocking on a FIFO; *missing when it
 * does not exist. */
static sepconv_status read_log_file(const char *path, char **text, size_t *length,
                                    bool *missing, sepconv_error *error)
{
    *text = NULL;
    *length = 0;
    *missing = false;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        *missing = true;
        return SEPCONV_OK;
    }
    if (fd < 0)
        return sepconv_fail(error, SEPCONV_IO, "tuning log %s: cannot open: %s", path,
                            strerror(errno));
    struct stat st;
    sepconv_status status = SEPCONV_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        status = sepconv_fail(error, SEPCONV_IO, "tuning log %s " NOT_REGULAR, path);
    else if ((uint64_t)st.st_size > LOG_FILE_MAX)
        status = sepconv_fail(error, SEPCONV_LIMIT, "tuning log %s: larger than %zu bytes",
                              path, LOG_FILE_MAX);
    /* tuners may append while we read: take what was there at fstat */
    size_t size = status == SEPCONV_OK ? (size_t)st.st_size : 0, got = 0;
    char *buffer = status == SEPCONV_OK ? malloc(size + 1) : NULL;
    if (status == SEPCONV_OK && !buffer)
        status = sepconv_fail(error, SEPCONV_NOMEM, "tuning log %s: out of memory", path);
    while (status == SEPCONV_OK && got < size) {
        ssize_t n = read(fd, buffer + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            status = sepconv_fail(error, SEPCONV_IO, "tuning log %s: read error: %s", path,
                                  strerror(errno));
        if (n <= 0)
            break; /* truncated meanwhile: what we have */
        got += (size_t)n;
    }
    close(fd);
    if (status != SEPCONV_OK) {
        free(buffer);
        return status;
    }
    *text = buffer;
    *length = got;
    return SEPCONV_OK;
}

/* Reads a log; lines that are not valid records are skipped and counted,
 * with a warning naming the file and line.  A missing file is an empty log;
 * a FIFO, device or directory is refused (IO) without blocking. */
sepconv_status sepconv_log_read(const char *path, sepconv_tune_log *log, sepconv_error *error)
{
    if (!path || !log)
        return sepconv_fail(error, SEPCONV_INVALID, "tuning log: missing arguments");
    memset(log, 0, sizeof *log);
    char *text = NULL;
    size_t length = 0;
    bool missing = false;
    sepconv_status status = read_log_file(path, &text, &length, &missing, error);
    if (status != SEPCONV_OK || missing)
        return status; /* a missing log: none yet */
    status = parse_text(text, length, path, log, error);
    free(text);
    return status;
}

/* The hash of a record's every field (XXH3, each field seeded with the
 * hash so far, its NUL included so that fields cannot run together). */
static uint64_t record_hash(const sepconv_tune_record *r)
{
    uint64_t hash = 0;
    for (size_t i = 0; i < COUNT(text_fields); i++) {
        const char *text = (const char *)r + text_fields[i].offset;
        hash = XXH3_64bits_withSeed(text, strlen(text) + 1, hash);
    }
    double numbers[COUNT(number_fields)];
    for (size_t i = 0; i < COUNT(number_fields); i++)
        memcpy(&numbers[i], (const char *)r + number_fields[i].offset, sizeof numbers[i]);
    hash = XXH3_64bits_withSeed(numbers, sizeof numbers, hash);
    return XXH3_64bits_withSeed(&r->environment.threads, sizeof r->environment.threads, hash);
}

/* Whether two records are the same line of a log: every field equal
 * (numbers bit for bit, as their JSON text would be). */
static bool same_record(const sepconv_tune_record *a, const sepconv_tune_record *b)
{
    for (size_t i = 0; i < COUNT(text_fields); i++)
        if (strcmp((const char *)a + text_fields[i].offset,
                   (const char *)b + text_fields[i].offset) != 0)
            return false;
    for (size_t i = 0; i < COUNT(number_fields); i++)
        if (memcmp((const char *)a + number_fields[i].offset,
                   (const char *)b + number_fields[i].offset, sizeof(double)) != 0)
            return false;
    return a->environment.threads == b->environment.threads;
}

/* Drops every record equal in all fields to an earlier one, in place,
 * keeping the order of the rest; *dropped (if not NULL) counts them.  An
 * open-addressing table of kept indices keyed by the record's XXH3 hash, so
 * a merge of shards' logs takes linear time. */
sepconv_status sepconv_log_unique(sepconv_tune_log *log, size_t *dropped, sepconv_error *error)
{
    if (!log)
        return sepconv_fail(error, SEPCONV_INVALID, "tuning log: missing arguments");
    size_t slots = 16;
    while (slots < log->count * 2) { /* at most half full */
        if (slots > SIZE_MAX / 2 / sizeof(size_t))
            return sepconv_fail(error, SEPCONV_OVERFLOW, "tuning log: too many records");
        slots *= 2;
    }
    size_t *table = malloc(slots * sizeof *table);
    if (!table)
        return sepconv_fail(error, SEPCONV_NOMEM, "tuning log: out of memory for %zu slots",
                            slots);
    for (size_t s = 0; s < slots; s++)
        table[s] = SIZE_MAX;
    size_t kept = 0;
    for (size_t i = 0; i < log->count; i++) {
        size_t s = (size_t)record_hash(&log->records[i]) & (slots - 1);
        bool duplicate = false;
        for (; table[s] != SIZE_MAX; s = (s + 1) & (slots - 1))
            if (same_record(&log->records[table[s]], &log->records[i])) {
                duplicate = true;
                break;
            }
        if (duplicate)
            continue;
        if (kept != i)
            log->records[kept] = log->records[i];
        table[s] = kept++;
    }
    free(table);
    if (dropped)
        *dropped = log->count - kept;
    log->count = kept;
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

/* Whether record r is ok, of shape `wanted`, measured in `environment`. */
static bool matches(const sepconv_tune_record *r, const char *wanted,
                    const sepconv_environment *environment)
{
    char shape[512];
    if (strcmp(r->status, "ok") != 0 || !(r->ratio > 0) ||
        !same_environment(&r->environment, environment))
        return false;
    shape_of(r->spec, shape, sizeof shape);
    return strcmp(shape, wanted) == 0;
}

/* The best successful record for `spec` (compared without its name= label)
 * in `environment` (same sepconv version, backend, target, compiler, flags,
 * CPU, features and threads): the lowest ratio to the default schedule,
 * each schedule judged by its worst record (a sweep times its best again,
 * and a measurement taken once beside a compile can be lucky; with
 * identical layers the luckiest of several sweeps would win).  NULL if
 * there is none. */
const sepconv_tune_record *sepconv_log_best(const sepconv_tune_log *log, const char *spec,
                                            const sepconv_environment *environment)
{
    char wanted[512];
    shape_of(spec, wanted, sizeof wanted);
    const sepconv_tune_record *best = NULL;
    for (size_t i = 0; log && i < log->count; i++) {
        if (!matches(&log->records[i], wanted, environment))
            continue;
        /* the worst record of this schedule (the schedule compared first:
         * it is the cheap test) */
        const sepconv_tune_record *worst = &log->records[i];
        for (size_t j = 0; j < log->count; j++) {
            const sepconv_tune_record *r = &log->records[j];
            if (r->ratio > worst->ratio && strcmp(r->schedule, worst->schedule) == 0 &&
                matches(r, wanted, environment))
                worst = r;
        }
        if (!best || worst->ratio < best->ratio ||
            (worst->ratio == best->ratio && worst->median_ms < best->median_ms))
            best = worst;
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

/* The tuned schedule of a layer for the options' environment, from the log
 * at `log_path` (NULL: the default log); the default schedule and *found = 0
 * when the log has no record for it. */
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

/* When sepconv_log_schedule found nothing, the message that says so: the
 * log, the layer's canonical spec, the backend, target and threads looked
 * for, whether records of the layer exist from another environment, and
 * the `sepconv tune` command that makes one. */
sepconv_status sepconv_log_missing(const sepconv_layer *layer,
                                   const sepconv_kernel_options *options,
                                   const char *log_path, char *out, size_t capacity,
                                   sepconv_error *error)
{
    if (!layer || !options || !out || capacity == 0)
        return sepconv_fail(error, SEPCONV_INVALID, "tuning log: missing arguments");
    out[0] = '\0';
    char path[4096], spec[512], shape[512], wanted[512];
    sepconv_status status = SEPCONV_OK;
    if (log_path)
        snprintf(path, sizeof path, "%s", log_path);
    else
        status = sepconv_log_default_path(path, sizeof path, error);
    if (status == SEPCONV_OK)
        status = sepconv_layer_format(layer, spec, sizeof spec, error);
    sepconv_environment environment;
    if (status == SEPCONV_OK)
        status = sepconv_environment_get(options, &environment, error);
    sepconv_tune_log log;
    if (status == SEPCONV_OK)
        status = sepconv_log_read(path, &log, error);
    if (status != SEPCONV_OK)
        return status;
    /* records of the same shape measured elsewhere are not chosen: say so */
    size_t elsewhere = 0;
    shape_of(spec, wanted, sizeof wanted);
    for (size_t i = 0; i < log.count; i++) {
        shape_of(log.records[i].spec, shape, sizeof shape);
        elsewhere += strcmp(log.records[i].status, "ok") == 0 && strcmp(shape, wanted) == 0;
    }
    sepconv_log_free(&log);
    char others[160] = "";
    if (elsewhere)
        snprintf(others, sizeof others,
                 " (its %zu record(s) for this layer were measured with another backend, "
                 "target, thread count, compiler, CPU or sepconv version)", elsewhere);
    char log_option[4200] = "";
    if (log_path)
        snprintf(log_option, sizeof log_option, " --log '%s'", log_path);
    snprintf(out, capacity,
             "the tuning log %s has no %s/%s record with %d thread(s) for '%s'%s; "
             "tune it with: sepconv tune '%s' --backend %s --target %s --threads %d%s",
             path, sepconv_backend_name(options->backend),
             sepconv_target_name(options->target), environment.threads, spec, others, spec,
             sepconv_backend_name(options->backend), sepconv_target_name(options->target),
             options->threads, log_option);
    return SEPCONV_OK;
}
