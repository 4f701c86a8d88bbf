/*
 * test_npy.c -- the .npy reader and writer, and the documented shapes.
 */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests.h"

static char path[64];

/* Writes raw bytes to the test's file. */
static void write_bytes(const void *bytes, size_t length)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/sepconv-npy-XXXXXX");
        close(mkstemp(path));
    }
    FILE *file = fopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    ck_assert_uint_eq(fwrite(bytes, 1, length, file), length);
    fclose(file);
}

/* Builds a .npy file as NumPy writes it: magic, version, header dict padded
 * with spaces to a multiple of 64 and ended by '\n', then `data_bytes`. */
static size_t numpy_file(unsigned char *out, int major, const char *dict,
                         const void *data, size_t data_bytes)
{
    size_t prefix = major == 1 ? 10 : 12;
    size_t length = strlen(dict) + 1;
    while ((prefix + length) % 64)
        length++;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    out[8] = (unsigned char)(length & 0xff);
    out[9] = (unsigned char)(length >> 8);
    if (major != 1)
        out[10] = out[11] = 0;
    memset(out + prefix, ' ', length);
    memcpy(out + prefix, dict, strlen(dict));
    out[prefix + length - 1] = '\n';
    memcpy(out + prefix + length, data, data_bytes);
    return prefix + length + data_bytes;
}

/* Reads the test's file; returns the status and fills error. */
static sepconv_status read_back(sepconv_array *array, sepconv_error *error)
{
    return sepconv_npy_read(path, array, error);
}

START_TEST(reads_what_numpy_writes)
{
    const float data[6] = {1, 2, 3, 4, 5, 6.5f};
    unsigned char file[256];
    size_t length = numpy_file(file, 1, "{'descr': '<f4', 'fortran_order': False, "
                                        "'shape': (2, 3), }", data, sizeof data);
    write_bytes(file, length);
    sepconv_array array;
    ck_assert_int_eq(read_back(&array, NULL), SEPCONV_OK);
    ck_assert_int_eq(array.rank, 2);
    ck_assert_int_eq(array.shape[0], 2);
    ck_assert_int_eq(array.shape[1], 3);
    ck_assert_int_eq(array.count, 6);
    ck_assert_float_eq(array.data[5], 6.5f);
    sepconv_array_free(&array);
    /* format 2.0, a 1-d shape written "(4,)", and a scalar "()" */
    length = numpy_file(file, 2, "{'descr': '<f4', 'fortran_order': False, "
                                 "'shape': (4,), }", data, 16);
    write_bytes(file, length);
    ck_assert_int_eq(read_back(&array, NULL), SEPCONV_OK);
    ck_assert_int_eq(array.rank, 1);
    ck_assert_int_eq(array.shape[0], 4);
    sepconv_array_free(&array);
    length = numpy_file(file, 1, "{'descr': '<f4', 'fortran_order': False, "
                                 "'shape': (), }", data, 4);
    write_bytes(file, length);
    ck_assert_int_eq(read_back(&array, NULL), SEPCONV_OK);
    ck_assert_int_eq(array.rank, 0);
    ck_assert_int_eq(array.count, 1);
    sepconv_array_free(&array);
}
END_TEST

START_TEST(writer_round_trip)
{
    if (!path[0])
        write_bytes("", 0);
    const float data[24] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                            12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, -1};
    const int64_t shape[3] = {2, 3, 4};
    ck_assert_int_eq(sepconv_npy_write(path, data, shape, 3, NULL), SEPCONV_OK);
    FILE *file = fopen(path, "rb");
    unsigned char head[10];
    ck_assert_uint_eq(fread(head, 1, 10, file), 10);
    fclose(file);
    /* the header length makes data start on a 64-byte boundary */
    ck_assert_int_eq((10 + head[8] + 256 * head[9]) % 64, 0);
    sepconv_array array;
    ck_assert_int_eq(read_back(&array, NULL), SEPCONV_OK);
    ck_assert_int_eq(array.rank, 3);
    ck_assert_int_eq(memcmp(array.data, data, sizeof data), 0);
    sepconv_array_free(&array);
}
END_TEST

/* Asserts the test's file is refused with `fragment` in the message. */
static void assert_refused_file(const char *fragment)
{
    sepconv_array array;
    sepconv_error error;
    ck_assert_int_ne(read_back(&array, &error), SEPCONV_OK);
    ck_assert_ptr_null(array.data);
    ck_assert_msg(strstr(error.message, fragment) != NULL, "'%s' lacks '%s'",
                  error.message, fragment);
}

START_TEST(refuses_bad_files)
{
    const float data[6] = {1, 2, 3, 4, 5, 6};
    unsigned char file[256];
    size_t length = numpy_file(file, 1, "{'descr': '<f4', 'fortran_order': False, "
                                        "'shape': (2, 3), }", data, sizeof data);
    write_bytes(file, length - 5);
    assert_refused_file("truncated: the shape needs 6 float32 values, the file holds 4");
    write_bytes(file, 30);
    assert_refused_file("truncated .npy header");
    unsigned char longer[300];
    memcpy(longer, file, length);
    memcpy(longer + length, "junk", 4);
    write_bytes(longer, length + 4);
    assert_refused_file("more data than its shape holds");
    length = numpy_file(file, 1, "{'descr': '<f8', 'fortran_order': False, "
                                 "'shape': (3,), }", data, 24);
    write_bytes(file, length);
    assert_refused_file("dtype '<f8' is not float32 ('<f4'); convert with a.astype(np.float32)");
    length = numpy_file(file, 1, "{'descr': '>f4', 'fortran_order': False, "
                                 "'shape': (3,), }", data, 12);
    write_bytes(file, length);
    assert_refused_file("is not float32");
    length = numpy_file(file, 1, "{'descr': '<f4', 'fortran_order': True, "
                                 "'shape': (2, 3), }", data, 24);
    write_bytes(file, length);
    assert_refused_file("Fortran order");
    length = numpy_file(file, 1, "{'descr': '<f4', 'fortran_order': False, "
                                 "'shape': (99999999999, 99999999999), }", data, 24);
    write_bytes(file, length);
    assert_refused_file("overflows 64 bits");
    length = numpy_file(file, 1, "{'descr': '<f4', 'fortran_order': False, "
                                 "'shape': (two,), }", data, 24);
    write_bytes(file, length);
    assert_refused_file("not a tuple of sizes");
    write_bytes("GIF89a...........", 17);
    assert_refused_file("not a .npy file");
    length = numpy_file(file, 7, "{}", data, 0);
    write_bytes(file, length);
    assert_refused_file("format version 7");
    sepconv_array array;
    sepconv_error error;
    ck_assert_int_eq(sepconv_npy_read("/nonexistent.npy", &array, &error), SEPCONV_IO);
}
END_TEST

START_TEST(int8_and_int32_files)
{
    /* int8 as NumPy writes it ('|i1'), the extremes included */
    const signed char q[5] = {-128, -1, 0, 1, 127};
    unsigned char file[256];
    size_t length = numpy_file(file, 1, "{'descr': '|i1', 'fortran_order': False, "
                                        "'shape': (5,), }", q, sizeof q);
    write_bytes(file, length);
    sepconv_array array;
    sepconv_error error;
    ck_assert_int_eq(sepconv_npy_read_as(path, SEPCONV_NPY_INT8, &array, &error), SEPCONV_OK);
    ck_assert_int_eq(array.type, SEPCONV_NPY_INT8);
    ck_assert_int_eq(array.count, 5);
    ck_assert_ptr_null(array.data); /* not float32 */
    const signed char *got = array.values;
    ck_assert_int_eq(got[0], -128);
    ck_assert_int_eq(got[4], 127);
    sepconv_array_free(&array);
    /* read as another type, it is refused naming both */
    ck_assert_int_eq(sepconv_npy_read_as(path, SEPCONV_NPY_INT32, &array, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "dtype '|i1' is not int32 ('<i4'); "
                                                "convert with a.astype(np.int32)"));
    ck_assert_int_eq(read_back(&array, &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "dtype '|i1' is not float32"));
    /* one byte short: the count is of int8 values, not floats */
    write_bytes(file, length - 1);
    ck_assert_int_eq(sepconv_npy_read_as(path, SEPCONV_NPY_INT8, &array, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "the shape needs 5 int8 values, the file holds 4"));
    ck_assert_ptr_null(array.values);
    /* int32, little-endian only */
    const unsigned char le[8] = {0x00, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff, 0x7f};
    length = numpy_file(file, 1, "{'descr': '<i4', 'fortran_order': False, "
                                 "'shape': (1, 2), }", le, sizeof le);
    write_bytes(file, length);
    ck_assert_int_eq(sepconv_npy_read_as(path, SEPCONV_NPY_INT32, &array, &error), SEPCONV_OK);
    ck_assert_int_eq(array.rank, 2);
    ck_assert_int_eq(((const int32_t *)array.values)[0], INT32_MIN);
    ck_assert_int_eq(((const int32_t *)array.values)[1], INT32_MAX);
    sepconv_array_free(&array);
    length = numpy_file(file, 1, "{'descr': '>i4', 'fortran_order': False, "
                                 "'shape': (2,), }", le, sizeof le);
    write_bytes(file, length);
    ck_assert_int_eq(sepconv_npy_read_as(path, SEPCONV_NPY_INT32, &array, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "dtype '>i4' is not int32"));
    /* a shape whose bytes overflow at 4 per element but not at 1 */
    length = numpy_file(file, 1, "{'descr': '<i4', 'fortran_order': False, "
                                 "'shape': (4611686018427387904,), }", le, 0);
    write_bytes(file, length);
    ck_assert_int_eq(sepconv_npy_read_as(path, SEPCONV_NPY_INT32, &array, &error),
                     SEPCONV_OVERFLOW);
    length = numpy_file(file, 1, "{'descr': '|i1', 'fortran_order': False, "
                                 "'shape': (4611686018427387904,), }", le, 0);
    write_bytes(file, length);
    ck_assert_int_eq(sepconv_npy_read_as(path, SEPCONV_NPY_INT8, &array, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "truncated"));
    /* the writer: each type's descr, its bytes, and a round trip */
    const int32_t wide[3] = {-7, 0, 1 << 30};
    const int64_t shape[2] = {1, 3};
    ck_assert_int_eq(sepconv_npy_write_as(path, SEPCONV_NPY_INT32, wide, shape, 2, &error),
                     SEPCONV_OK);
    FILE *f = fopen(path, "rb");
    size_t bytes = fread(file, 1, sizeof file, f);
    fclose(f);
    size_t start = 10 + (size_t)file[8] + 256 * (size_t)file[9]; /* a multiple of 64 */
    ck_assert_uint_eq(start % 64, 0);
    ck_assert_uint_eq(bytes, start + sizeof wide);
    ck_assert_ptr_nonnull(memmem(file, start, "'descr': '<i4'", 14));
    ck_assert_int_eq(memcmp(file + start, wide, sizeof wide), 0);
    ck_assert_int_eq(sepconv_npy_read_as(path, SEPCONV_NPY_INT32, &array, &error), SEPCONV_OK);
    ck_assert_int_eq(memcmp(array.values, wide, sizeof wide), 0);
    sepconv_array_free(&array);
    ck_assert_int_eq(sepconv_npy_write_as(path, SEPCONV_NPY_INT8, q, (int64_t[]){5}, 1, &error),
                     SEPCONV_OK);
    ck_assert_int_eq(sepconv_npy_read_as(path, SEPCONV_NPY_INT8, &array, &error), SEPCONV_OK);
    ck_assert_int_eq(memcmp(array.values, q, sizeof q), 0);
    sepconv_array_free(&array);
    /* a shape the writer cannot hold is refused, not written */
    ck_assert_int_eq(sepconv_npy_write_as(path, SEPCONV_NPY_INT8, q, (int64_t[]){-1}, 1,
                                          &error), SEPCONV_INVALID);
    ck_assert_int_eq(sepconv_npy_write_as(path, SEPCONV_NPY_INT32, q,
                                          (int64_t[]){INT64_MAX / 2, 3}, 2, &error),
                     SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "overflows 64 bits"));
}
END_TEST

START_TEST(documented_shapes)
{
    struct {
        const char *spec;
        sepconv_tensor_kind kind;
        int rank;
        int64_t shape[4];
    } cases[] = {
        {"op=dw df=5 m=3 dk=3 mult=2", SEPCONV_TENSOR_WEIGHTS, 4, {3, 3, 3, 2}},
        {"op=dw df=5 m=3 dk=3 mult=2 layout=nchw", SEPCONV_TENSOR_WEIGHTS, 4, {6, 1, 3, 3}},
        {"op=pw df=5 m=3 n=7", SEPCONV_TENSOR_WEIGHTS, 2, {3, 7}},
        {"op=pw df=5 m=3 n=7 layout=nchw", SEPCONV_TENSOR_WEIGHTS, 4, {7, 3, 1, 1}},
        {"op=conv df=5 m=3 n=7 dk=5", SEPCONV_TENSOR_WEIGHTS, 4, {5, 5, 3, 7}},
        {"op=conv df=5 m=3 n=7 dk=5 layout=nchw", SEPCONV_TENSOR_WEIGHTS, 4, {7, 3, 5, 5}},
        {"op=sep df=5 m=3 n=7 dk=3 mult=2", SEPCONV_TENSOR_PW_WEIGHTS, 2, {6, 7}},
        {"op=sep df=5 m=3 n=7 dk=3 layout=nchw", SEPCONV_TENSOR_PW_WEIGHTS, 4, {7, 3, 1, 1}},
        {"op=sep df=5 m=3 n=7 dk=3 bias=1 mult=2", SEPCONV_TENSOR_BIAS, 1, {6}},
        {"op=sep df=5 m=3 n=7 dk=3 bias=1", SEPCONV_TENSOR_PW_BIAS, 1, {7}},
        {"op=sep df=5 m=3 n=7 dk=3", SEPCONV_TENSOR_PW_BIAS, 0, {0}},
        {"op=dw df=5 m=3 dk=3", SEPCONV_TENSOR_PW_WEIGHTS, 0, {0}},
        {"op=sep h=5 w=6 m=3 n=7 dk=3 stride=2 batch=2", SEPCONV_TENSOR_INPUT, 4, {2, 5, 6, 3}},
        {"op=sep h=5 w=6 m=3 n=7 dk=3 stride=2 batch=2 layout=nchw", SEPCONV_TENSOR_OUTPUT,
         4, {2, 7, 3, 3}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sepconv_layer l = parse_layer(cases[i].spec);
        int64_t shape[SEPCONV_RANK_MAX];
        int rank;
        sepconv_tensor_shape(&l, cases[i].kind, shape, &rank);
        ck_assert_msg(rank == cases[i].rank, "%s: rank %d", cases[i].spec, rank);
        for (int d = 0; d < rank; d++)
            ck_assert_msg(shape[d] == cases[i].shape[d], "%s: dim %d is %lld",
                          cases[i].spec, d, (long long)shape[d]);
    }
    sepconv_layer l = parse_layer("op=pw df=5 m=3 n=7 layout=nchw");
    sepconv_array wrong = {.rank = 2, .shape = {3, 7}};
    sepconv_error error;
    ck_assert_int_eq(sepconv_check_shape(&l, SEPCONV_TENSOR_WEIGHTS, &wrong, "w.npy",
                                         &error), SEPCONV_INVALID);
    ck_assert_ptr_nonnull(strstr(error.message, "w.npy has shape (3, 7), but layout=nchw "
                                                "needs (7, 3, 1, 1)"));
}
END_TEST

Suite *npy_suite(void)
{
    Suite *suite = suite_create("npy");
    TCase *c = tcase_create("npy");
    tcase_add_test(c, reads_what_numpy_writes);
    tcase_add_test(c, writer_round_trip);
    tcase_add_test(c, refuses_bad_files);
    tcase_add_test(c, int8_and_int32_files);
    tcase_add_test(c, documented_shapes);
    suite_add_tcase(suite, c);
    return suite;
}
