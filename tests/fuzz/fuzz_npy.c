/*
 * fuzz_npy.c -- the .npy reader: any bytes, read as each element type, end
 * in an array of that type whose size matches its shape, or an error; a
 * file is at most one type.
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
    static const size_t sizes[] = {4, 1, 4}; /* float32, int8, int32 */
    int read = 0;
    for (int type = SEPCONV_NPY_FLOAT32; type <= SEPCONV_NPY_INT32; type++) {
        sepconv_array array;
        sepconv_error error;
        if (sepconv_npy_read_as(path, (sepconv_npy_type)type, &array, &error) != SEPCONV_OK) {
            if (array.values || array.data)
                abort(); /* a refused file leaves nothing behind */
            continue;
        }
        read++;
        int64_t count = 1;
        for (int i = 0; i < array.rank; i++)
            count *= array.shape[i];
        if (count != array.count || array.type != (sepconv_npy_type)type || !array.values ||
            (type == SEPCONV_NPY_FLOAT32) != (array.data != NULL))
            abort();
        if (count) { /* readable to the end */
            volatile unsigned char sink =
                ((const unsigned char *)array.values)[(size_t)count * sizes[type] - 1];
            (void)sink;
        }
        sepconv_array_free(&array);
    }
    if (read > 1)
        abort();
    close(fd);
    return 0;
}
