/*
 * log_write.c -- a whole tuning log written out: as lines to a stream, or
 * into a file that is replaced atomically.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "log/log.h"

/* Writes every record as its log line. */
sepconv_status sepconv_log_write_stream(FILE *out, const sepconv_tune_log *log,
                                        sepconv_error *error)
{
    for (size_t i = 0; i < log->count; i++) {
        char *line = NULL;
        sepconv_status status = sepconv_log_format(&log->records[i], &line, error);
        if (status != SEPCONV_OK)
            return status;
        bool ok = fputs(line, out) >= 0 && fputc('\n', out) != EOF;
        free(line);
        if (!ok)
            return sepconv_fail(error, SEPCONV_IO, "cannot write a log line: %s",
                                strerror(errno));
    }
    return SEPCONV_OK;
}

/* Writes the records into `path` through a temporary file beside it and a
 * rename, so that a reader never sees a half-written log and a failure
 * leaves the old file whole; a link's target is replaced, not the link, and
 * an existing file keeps its mode. */
sepconv_status sepconv_log_write(const char *path, const sepconv_tune_log *log,
                                 sepconv_error *error)
{
    if (!path || !log)
        return sepconv_fail(error, SEPCONV_INVALID, "log write: no path or no log");
    char target[4096], temp[4200];
    char *resolved = realpath(path, NULL);
    snprintf(target, sizeof target, "%s", resolved ? resolved : path);
    free(resolved);
    struct stat st;
    mode_t mask = umask(0);
    umask(mask);
    mode_t mode = stat(target, &st) == 0 ? st.st_mode & 07777 : 0666 & ~mask;
    snprintf(temp, sizeof temp, "%s.tmp-XXXXXX", target);
    int fd = mkstemp(temp);
    if (fd < 0)
        return sepconv_fail(error, SEPCONV_IO, "cannot create a temporary file beside %s: %s",
                            path, strerror(errno));
    FILE *file = fdopen(fd, "w");
    sepconv_error inner = {SEPCONV_OK, ""};
    bool ok = file && fchmod(fd, mode) == 0 &&
              sepconv_log_write_stream(file, log, &inner) == SEPCONV_OK &&
              fflush(file) == 0 && fsync(fd) == 0;
    int saved = errno;
    if (file ? fclose(file) != 0 : close(fd) != 0)
        ok = false;
    if (ok && rename(temp, target) != 0) {
        ok = false;
        saved = errno;
    }
    if (ok)
        return SEPCONV_OK;
    unlink(temp);
    return sepconv_fail(error, inner.status == SEPCONV_NOMEM ? SEPCONV_NOMEM : SEPCONV_IO,
                        "cannot write %s: %s", path,
                        inner.message[0] ? inner.message : strerror(saved));
}
