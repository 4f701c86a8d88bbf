/*
 * fuzz_npy.c -- the .npy reader: any bytes end in an array whose size
 * matches its shape, or an error.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "fuzz_file.h"
#include "sepconv.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    sepconv_array array;
    sepconv_error error;
    if (sepconv_npy_read(path, &array, &error) == SEPCONV_OK) {
        int64_t count = 1;
        for (int i = 0; i < array.rank; i++)
            count *= array.shape[i];
        if (count != array.count || (count > 0 && !array.data))
            abort();
        volatile float sink = count ? array.data[count - 1] : 0; /* readable to the end */
        (void)sink;
        sepconv_array_free(&array);
    }
    close(fd);
    return 0;
}
