/*
 * npy.c -- NumPy .npy files of float32, int8 and int32 in C order, and the
 * shapes a layer's tensors must have in them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const char magic[] = "\x93NUMPY";
#define HEADER_MAX 65536

/* Each element type's descr in a header, its name, and its size. */
static const struct {
    const char *descr, *name;
    size_t size;
} types[] = {
    [SEPCONV_NPY_FLOAT32] = {"'<f4'", "float32", 4},
    [SEPCONV_NPY_INT8] = {"'|i1'", "int8", 1},
    [SEPCONV_NPY_INT32] = {"'<i4'", "int32", 4},
};
#define TYPE_COUNT (sizeof types / sizeof types[0])

/* Finds `key` in the header dict and returns the text after its colon. */
static const char *dict_value(const char *header, const char *key)
{
    char quoted[32];
    snprintf(quoted, sizeof quoted, "'%s'", key);
    const char *at = strstr(header, quoted);
    if (!at)
        return NULL;
    at += strlen(quoted);
    at += strspn(at, " ");
    if (*at != ':')
        return NULL;
    at++;
    return at + strspn(at, " ");
}

/* Parses the shape tuple "(2, 3, 4)" or "()" or "(5,)"; its bytes must fit
 * in 64 bits. */
static sepconv_status parse_shape(const char *text, sepconv_array *array,
                                  const char *path, sepconv_error *error)
{
    if (!text || *text != '(')
        return sepconv_fail(error, SEPCONV_INVALID, "%s: the .npy header has no shape",
                            path);
    const char *p = text + 1;
    array->rank = 0;
    array->count = 1;
    for (;;) {
        p += strspn(p, " ,");
        if (*p == ')')
            break;
        if (array->rank == SEPCONV_RANK_MAX)
            return sepconv_fail(error, SEPCONV_INVALID,
                                "%s: more than %d dimensions", path, SEPCONV_RANK_MAX);
        char *end = NULL;
        errno = 0;
        long long size = strtoll(p, &end, 10);
        if (end == p || errno == ERANGE || size < 0)
            return sepconv_fail(error, SEPCONV_INVALID,
                                "%s: the .npy shape '%.40s' is not a tuple of sizes",
                                path, text);
        array->shape[array->rank++] = size;
        if (!sepconv_mul(array->count, size, &array->count) ||
            !sepconv_mul(array->count, (int64_t)types[array->type].size, &(int64_t){0}))
            return sepconv_fail(error, SEPCONV_OVERFLOW,
                                "%s: the .npy shape overflows 64 bits", path);
        p = end;
    }
    return SEPCONV_OK;
}

/* Parses a .npy header dict: descr `array->type`'s, C order, and the shape. */
static sepconv_status parse_header(const char *header, sepconv_array *array,
                                   const char *path, sepconv_error *error)
{
    const char *descr = dict_value(header, "descr");
    if (!descr)
        return sepconv_fail(error, SEPCONV_INVALID, "%s: the .npy header has no descr",
                            path);
    const char *want = types[array->type].descr, *name = types[array->type].name;
    if (strncmp(descr, want, strlen(want)) != 0) {
        size_t length = strcspn(descr, ",}");
        return sepconv_fail(error, SEPCONV_INVALID,
                            "%s: dtype %.*s is not %s (%s); convert with "
                            "a.astype(np.%s)", path, (int)(length > 20 ? 20 : length),
                            descr, name, want, name);
    }
    const char *order = dict_value(header, "fortran_order");
    if (!order || strncmp(order, "False", 5) != 0)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "%s: the array is in Fortran order (or says nothing); "
                            "save np.ascontiguousarray(a) for C order", path);
    return parse_shape(dict_value(header, "shape"), array, path, error);
}

/* Reads a .npy file of float32. */
sepconv_status sepconv_npy_read(const char *path, sepconv_array *array,
                                sepconv_error *error)
{
    return sepconv_npy_read_as(path, SEPCONV_NPY_FLOAT32, array, error);
}

/* Reads a .npy file whose elements are of `type`. */
sepconv_status sepconv_npy_read_as(const char *path, sepconv_npy_type type,
                                   sepconv_array *array, sepconv_error *error)
{
    if (!path || !array || (unsigned)type >= TYPE_COUNT)
        return sepconv_fail(error, SEPCONV_INVALID, "npy: no path, no array or no such type");
    memset(array, 0, sizeof *array);
    array->type = type;
    const size_t size = types[type].size;
    const char *name = types[type].name;
    FILE *file = fopen(path, "rb");
    if (!file)
        return sepconv_fail(error, SEPCONV_IO, "%s: cannot open: %s", path,
                            strerror(errno));
    unsigned char prefix[12];
    sepconv_status status = SEPCONV_OK;
    size_t got = fread(prefix, 1, 10, file);
    if (got < 10 || memcmp(prefix, magic, 6) != 0)
        status = sepconv_fail(error, SEPCONV_INVALID,
                              "%s: not a .npy file (no \\x93NUMPY magic)", path);
    size_t header_length = 0;
    if (status == SEPCONV_OK && prefix[6] == 1) {
        header_length = (size_t)prefix[8] | (size_t)prefix[9] << 8;
    } else if (status == SEPCONV_OK && (prefix[6] == 2 || prefix[6] == 3)) {
        if (fread(prefix + 10, 1, 2, file) != 2)
            status = sepconv_fail(error, SEPCONV_INVALID, "%s: truncated .npy header", path);
        header_length = (size_t)prefix[8] | (size_t)prefix[9] << 8 |
                        (size_t)prefix[10] << 16 | (size_t)prefix[11] << 24;
    } else if (status == SEPCONV_OK) {
        status = sepconv_fail(error, SEPCONV_INVALID,
                              "%s: .npy format version %d is not 1, 2 or 3", path,
                              prefix[6]);
    }
    if (status == SEPCONV_OK && header_length > HEADER_MAX)
        status = sepconv_fail(error, SEPCONV_INVALID,
                              "%s: .npy header of %zu bytes is implausibly long", path,
                              header_length);
    char *header = status == SEPCONV_OK ? calloc(1, header_length + 1) : NULL;
    if (status == SEPCONV_OK && !header)
        status = sepconv_fail(error, SEPCONV_NOMEM, "%s: out of memory", path);
    if (status == SEPCONV_OK && fread(header, 1, header_length, file) != header_length)
        status = sepconv_fail(error, SEPCONV_INVALID, "%s: truncated .npy header", path);
    if (status == SEPCONV_OK)
        status = parse_header(header, array, path, error);
    free(header);
    if (status == SEPCONV_OK) {
        /* the shape must fit in what the file holds before anything is
         * allocated: a small file may claim a huge shape */
        long here = ftell(file);
        long end = here >= 0 && fseek(file, 0, SEEK_END) == 0 ? ftell(file) : -1;
        if (end < 0 || fseek(file, here, SEEK_SET) != 0)
            status = sepconv_fail(error, SEPCONV_IO, "%s: cannot tell its size", path);
        else if ((uint64_t)(end - here) < (uint64_t)array->count * size)
            status = sepconv_fail(error, SEPCONV_INVALID,
                                  "%s: truncated: the shape needs %lld %s values, the file "
                                  "holds %ld", path, (long long)array->count, name,
                                  (end - here) / (long)size);
    }
    if (status == SEPCONV_OK) {
        array->values = malloc(array->count ? (size_t)array->count * size : 1);
        if (!array->values)
            status = sepconv_fail(error, SEPCONV_NOMEM,
                                  "%s: out of memory for %lld %s values", path,
                                  (long long)array->count, name);
        if (type == SEPCONV_NPY_FLOAT32)
            array->data = array->values;
    }
    if (status == SEPCONV_OK) {
        size_t wanted = (size_t)array->count;
        size_t read = fread(array->values, size, wanted, file);
        char extra;
        if (read != wanted)
            status = sepconv_fail(error, SEPCONV_INVALID,
                                  "%s: truncated: the shape needs %zu %s values, the file "
                                  "holds %zu", path, wanted, name, read);
        else if (fread(&extra, 1, 1, file) == 1)
            status = sepconv_fail(error, SEPCONV_INVALID,
                                  "%s: more data than its shape holds", path);
    }
    fclose(file);
    if (status != SEPCONV_OK)
        sepconv_array_free(array);
    return status;
}

/* Writes a .npy file of float32. */
sepconv_status sepconv_npy_write(const char *path, const float *data,
                                 const int64_t *shape, int rank, sepconv_error *error)
{
    return sepconv_npy_write_as(path, SEPCONV_NPY_FLOAT32, data, shape, rank, error);
}

/* Writes a .npy file, format 1.0, header padded to 64 bytes. */
sepconv_status sepconv_npy_write_as(const char *path, sepconv_npy_type type,
                                    const void *data, const int64_t *shape, int rank,
                                    sepconv_error *error)
{
    if (!path || (!data && rank > 0) || rank < 0 || rank > SEPCONV_RANK_MAX ||
        (unsigned)type >= TYPE_COUNT)
        return sepconv_fail(error, SEPCONV_INVALID, "npy: bad arguments");
    int64_t count = 1;
    for (int i = 0; i < rank; i++)
        if (shape[i] < 0 || !sepconv_mul(count, shape[i], &count) ||
            !sepconv_mul(count, (int64_t)types[type].size, &(int64_t){0}))
            return sepconv_fail(error, SEPCONV_INVALID,
                                "npy: dimension %d of the shape (%lld) is negative or "
                                "overflows 64 bits", i, (long long)shape[i]);
    char dict[512];
    size_t used = (size_t)snprintf(dict, sizeof dict,
                                   "{'descr': %s, 'fortran_order': False, 'shape': (",
                                   types[type].descr);
    for (int i = 0; i < rank; i++)
        used += (size_t)snprintf(dict + used, sizeof dict - used, "%lld,%s",
                                 (long long)shape[i], i + 1 < rank ? " " : "");
    used += (size_t)snprintf(dict + used, sizeof dict - used, "), }");
    size_t total = 10 + used + 1;
    size_t padding = (64 - total % 64) % 64;
    char header[640];
    memcpy(header, magic, 6);
    header[6] = 1;
    header[7] = 0;
    size_t length = used + padding + 1;
    header[8] = (char)(length & 0xff);
    header[9] = (char)(length >> 8);
    memcpy(header + 10, dict, used);
    memset(header + 10 + used, ' ', padding);
    header[10 + used + padding] = '\n';
    FILE *file = fopen(path, "wb");
    if (!file)
        return sepconv_fail(error, SEPCONV_IO, "%s: cannot write: %s", path,
                            strerror(errno));
    bool ok = fwrite(header, 1, 10 + length, file) == 10 + length &&
              fwrite(data, types[type].size, (size_t)count, file) == (size_t)count;
    if (fclose(file) != 0 || !ok)
        return sepconv_fail(error, SEPCONV_IO, "%s: error writing", path);
    return SEPCONV_OK;
}

/* Frees an array's data. */
void sepconv_array_free(sepconv_array *array)
{
    if (!array)
        return;
    free(array->values);
    memset(array, 0, sizeof *array);
}

/* Sets a shape from up to four sizes. */
static void set_shape(int64_t *shape, int *rank, int count, int64_t a, int64_t b,
                      int64_t c, int64_t d)
{
    int64_t sizes[4] = {a, b, c, d};
    *rank = count;
    for (int i = 0; i < count; i++)
        shape[i] = sizes[i];
}

/* The documented shape of a layer tensor (see the README's layout table). */
void sepconv_tensor_shape(const sepconv_layer *l, sepconv_tensor_kind kind,
                          int64_t shape[SEPCONV_RANK_MAX], int *rank)
{
    bool nhwc = l->layout == SEPCONV_LAYOUT_NHWC;
    int64_t k = l->kernel;
    *rank = 0;
    switch (kind) {
    case SEPCONV_TENSOR_INPUT:
        if (nhwc)
            set_shape(shape, rank, 4, l->batch, l->in_h, l->in_w, l->m);
        else
            set_shape(shape, rank, 4, l->batch, l->m, l->in_h, l->in_w);
        break;
    case SEPCONV_TENSOR_OUTPUT:
        if (nhwc)
            set_shape(shape, rank, 4, l->batch, l->out_h, l->out_w, l->out_c);
        else
            set_shape(shape, rank, 4, l->batch, l->out_c, l->out_h, l->out_w);
        break;
    case SEPCONV_TENSOR_WEIGHTS:
        if (l->op == SEPCONV_OP_CONV)
            set_shape(shape, rank, 4, nhwc ? k : l->n, nhwc ? k : l->m,
                      nhwc ? l->m : k, nhwc ? l->n : k);
        else if (l->op == SEPCONV_OP_PW && nhwc)
            set_shape(shape, rank, 2, l->m, l->n, 0, 0);
        else if (l->op == SEPCONV_OP_PW)
            set_shape(shape, rank, 4, l->n, l->m, 1, 1);
        else if (nhwc)
            set_shape(shape, rank, 4, k, k, l->m, l->multiplier);
        else
            set_shape(shape, rank, 4, l->mid_c, 1, k, k);
        break;
    case SEPCONV_TENSOR_BIAS:
        if (l->bias)
            set_shape(shape, rank, 1, l->bias_elements, 0, 0, 0);
        break;
    case SEPCONV_TENSOR_PW_WEIGHTS:
        if (l->op == SEPCONV_OP_SEP && nhwc)
            set_shape(shape, rank, 2, l->mid_c, l->n, 0, 0);
        else if (l->op == SEPCONV_OP_SEP)
            set_shape(shape, rank, 4, l->n, l->mid_c, 1, 1);
        break;
    case SEPCONV_TENSOR_PW_BIAS:
        if (l->op == SEPCONV_OP_SEP && l->bias)
            set_shape(shape, rank, 1, l->n, 0, 0, 0);
        break;
    }
}

/* Formats a shape as "(2, 3, 4)". */
static void format_shape(const int64_t *shape, int rank, char *out, size_t capacity)
{
    size_t used = (size_t)snprintf(out, capacity, "(");
    for (int i = 0; i < rank && used < capacity; i++)
        used += (size_t)snprintf(out + used, capacity - used, "%s%lld", i ? ", " : "",
                                 (long long)shape[i]);
    if (used < capacity)
        snprintf(out + used, capacity - used, ")");
}

/* Checks an array's shape against the documented one. */
sepconv_status sepconv_check_shape(const sepconv_layer *layer, sepconv_tensor_kind kind,
                                   const sepconv_array *array, const char *what,
                                   sepconv_error *error)
{
    int64_t expected[SEPCONV_RANK_MAX];
    int rank;
    sepconv_tensor_shape(layer, kind, expected, &rank);
    bool same = rank == array->rank;
    for (int i = 0; same && i < rank; i++)
        same = expected[i] == array->shape[i];
    if (same)
        return SEPCONV_OK;
    char want[160], got[160];
    format_shape(expected, rank, want, sizeof want);
    format_shape(array->shape, array->rank, got, sizeof got);
    static const char *const rules[] = {
        "input: nhwc (batch, h, w, m), nchw (batch, m, h, w)",
        ("weights: nhwc conv (dk, dk, m, n), dw (dk, dk, m, mult), pw (m, n); nchw "
         "conv (n, m, dk, dk), dw (m*mult, 1, dk, dk), pw (n, m, 1, 1)"),
        "bias: one per output channel of the stage",
        "pw weights: nhwc (m*mult, n), nchw (n, m*mult, 1, 1)",
        "pw bias: (n)",
        "output: nhwc (batch, out_h, out_w, c), nchw (batch, c, out_h, out_w)"};
    return sepconv_fail(error, SEPCONV_INVALID,
                        "%s has shape %s, but layout=%s needs %s (%s)", what, got,
                        sepconv_layout_name(layer->layout), want, rules[kind]);
}
