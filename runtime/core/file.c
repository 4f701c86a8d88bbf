/*
 * file.c -- reading whole text files with a size limit.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

/* Opens a regular file for reading, without blocking: a FIFO or a device
 * in its place would wait forever for a writer.  NULL with errno set
 * (EINVAL for a file that is not regular). */
static FILE *open_regular(const char *path)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        close(fd);
        errno = EINVAL;
        return NULL;
    }
    FILE *file = fdopen(fd, "rb");
    if (!file)
        close(fd);
    return file;
}

/* Reads an open stream to its end into a NUL-terminated heap string of at
 * most `limit` bytes; `name` says where it came from in messages. */
sepconv_status sepconv_read_stream(FILE *file, const char *name, size_t limit,
                                   const char *what, char **text, size_t *length,
                                   sepconv_error *error)
{
    sepconv_status status = SEPCONV_OK;
    size_t size = 0, capacity = 4096;
    char *buffer = malloc(capacity);
    while (buffer) {
        if (size + 1 == capacity) {
            if (capacity > limit) {
                status = sepconv_fail(error, SEPCONV_LIMIT,
                                      "%s: larger than %zu bytes; not a %s",
                                      name, limit, what);
                break;
            }
            char *grown = realloc(buffer, capacity * 2);
            if (!grown) {
                free(buffer);
                buffer = NULL;
                break;
            }
            buffer = grown;
            capacity *= 2;
        }
        size_t got = fread(buffer + size, 1, capacity - 1 - size, file);
        size += got;
        if (got == 0)
            break;
    }
    if (!buffer)
        status = sepconv_fail(error, SEPCONV_NOMEM, "%s: out of memory reading it",
                              name);
    else if (status == SEPCONV_OK && ferror(file))
        status = sepconv_fail(error, SEPCONV_IO, "%s: read error: %s", name,
                              strerror(errno));
    else if (status == SEPCONV_OK && size > limit)
        status = sepconv_fail(error, SEPCONV_LIMIT,
                              "%s: larger than %zu bytes; not a %s", name, limit,
                              what);
    else if (status == SEPCONV_OK && memchr(buffer, '\0', size))
        status = sepconv_fail(error, SEPCONV_INVALID,
                              "%s: contains a NUL byte; not a %s", name, what);
    if (status != SEPCONV_OK) {
        free(buffer);
        return status;
    }
    buffer[size] = '\0';
    *text = buffer;
    *length = size;
    return SEPCONV_OK;
}

/* Reads a file into a NUL-terminated heap string of at most `limit` bytes. */
sepconv_status sepconv_read_file(const char *path, size_t limit, const char *what,
                                 char **text, size_t *length, sepconv_error *error)
{
    FILE *file = open_regular(path);
    if (!file && errno == EINVAL)
        return sepconv_fail(error, SEPCONV_IO, "%s: not a regular file (a FIFO, a "
                            "device or a directory?); expected a %s", path, what);
    if (!file)
        return sepconv_fail(error, SEPCONV_IO, "%s: cannot open: %s", path,
                            strerror(errno));
    sepconv_status status = sepconv_read_stream(file, path, limit, what, text, length,
                                                error);
    fclose(file);
    return status;
}

/* Reads a whole binary file into a heap buffer (no messages: callers treat
 * any failure as "not there"). */
sepconv_status sepconv_read_file_bytes(const char *path, size_t limit, char **bytes,
                                       size_t *length)
{
    FILE *file = open_regular(path);
    if (!file)
        return SEPCONV_IO;
    sepconv_status status = SEPCONV_OK;
    char *buffer = NULL;
    long size = -1;
    if (fseek(file, 0, SEEK_END) == 0)
        size = ftell(file);
    if (size < 0 || (size_t)size > limit || fseek(file, 0, SEEK_SET) != 0)
        status = SEPCONV_IO;
    if (status == SEPCONV_OK && !(buffer = malloc((size_t)size + 1)))
        status = SEPCONV_NOMEM;
    if (status == SEPCONV_OK && fread(buffer, 1, (size_t)size, file) != (size_t)size)
        status = SEPCONV_IO;
    fclose(file);
    if (status != SEPCONV_OK) {
        free(buffer);
        return status;
    }
    *bytes = buffer;
    *length = (size_t)size;
    return SEPCONV_OK;
}

/* sepconv's cache directory: the cc backend's objects, the tuning log. */
bool sepconv_cache_home(char *out, size_t capacity)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0])
        snprintf(out, capacity, "%s/sepconv", xdg);
    else if (home && home[0])
        snprintf(out, capacity, "%s/.cache/sepconv", home);
    else
        return false;
    return true;
}

/* Makes a directory and its missing parents. */
bool sepconv_make_dirs(char *path)
{
    for (char *slash = strchr(path + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash)
            *slash = '\0';
        bool made = mkdir(path, 0700) == 0 || errno == EEXIST;
        if (slash)
            *slash = '/';
        if (!made)
            return false;
        if (!slash)
            return true;
    }
}
