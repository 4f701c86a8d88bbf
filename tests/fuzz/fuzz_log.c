/*
 * fuzz_log.c -- the tuning-log reader: any bytes end in records and skipped
 * lines, or an error; selection over what was read never crashes.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "fuzz_file.h"
#include "sepconv.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    sepconv_tune_log log;
    if (sepconv_log_read(path, &log, NULL) == SEPCONV_OK) {
        for (size_t i = 0; i < log.count; i++) {
            if (strlen(log.records[i].spec) >= sizeof log.records[i].spec)
                abort();
            sepconv_log_best(&log, log.records[i].spec, &log.records[i].environment);
        }
        sepconv_log_free(&log);
    }
    close(fd);
    return 0;
}
