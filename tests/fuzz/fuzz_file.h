/*
 * fuzz_file.h -- the fuzz input as a file, for readers that take a path.
 */
#ifndef SEPCONV_FUZZ_FILE_H
#define SEPCONV_FUZZ_FILE_H

#include <stdio.h> /* _GNU_SOURCE is defined first by the includer */
#include <sys/mman.h>
#include <unistd.h>

/* Writes the input to an in-memory file; fills its path; returns the fd. */
static int fuzz_file(const unsigned char *data, size_t size, char *path, size_t capacity)
{
    int fd = memfd_create("fuzz", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    snprintf(path, capacity, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
