/*
 * file.c -- reading whole text files with a size limit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

/* Reads a file into a NUL-terminated heap string of at most `limit` bytes. */
sepconv_status sepconv_read_file(const char *path, size_t limit, const char *what,
                                 char **text, size_t *length, sepconv_error *error)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return sepconv_fail(error, SEPCONV_IO, "%s: cannot open: %s", path,
                            strerror(errno));
    sepconv_status status = SEPCONV_OK;
    size_t size = 0, capacity = 4096;
    char *buffer = malloc(capacity);
    while (buffer) {
        if (size + 1 == capacity) {
            if (capacity > limit) {
                status = sepconv_fail(error, SEPCONV_LIMIT,
                                      "%s: larger than %zu bytes; not a %s",
                                      path, limit, what);
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
                              path);
    else if (status == SEPCONV_OK && ferror(file))
        status = sepconv_fail(error, SEPCONV_IO, "%s: read error", path);
    else if (status == SEPCONV_OK && size > limit)
        status = sepconv_fail(error, SEPCONV_LIMIT,
                              "%s: larger than %zu bytes; not a %s", path, limit,
                              what);
    else if (status == SEPCONV_OK && memchr(buffer, '\0', size))
        status = sepconv_fail(error, SEPCONV_INVALID,
                              "%s: contains a NUL byte; not a %s", path, what);
    fclose(file);
    if (status != SEPCONV_OK) {
        free(buffer);
        return status;
    }
    buffer[size] = '\0';
    *text = buffer;
    *length = size;
    return SEPCONV_OK;
}

/* Reads a whole binary file into a heap buffer (no messages: callers treat
 * any failure as "not there"). */
sepconv_status sepconv_read_file_bytes(const char *path, size_t limit, char **bytes,
                                       size_t *length)
{
    FILE *file = fopen(path, "rb");
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
