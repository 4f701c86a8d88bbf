/*
 * core/core.h -- what every room of libsepconv uses: messages, bounded file
 * reads, aligned memory, checked sizes, random numbers, fault injection.
 * Not installed; the bottom of the library (it includes only sepconv.h).
 */
#ifndef SEPCONV_CORE_H
#define SEPCONV_CORE_H

#include <stdbool.h>
#include <stdio.h>
#include "sepconv.h"

#if defined(__GNUC__) || defined(__clang__)
#define SEPCONV_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SEPCONV_PRINTF(f, a)
#endif

/* Fills `error` (if any) and returns `status`, so callers can `return fail(...)`. */
sepconv_status sepconv_fail(sepconv_error *error, sepconv_status status,
                            const char *format, ...) SEPCONV_PRINTF(3, 4);

/* OK for a float32 layer; UNSUPPORTED, naming `what`, for an int8 one:
 * float code must never run on int8 tensors. */
static inline sepconv_status sepconv_float_only(const sepconv_layer *layer, const char *what,
                                                sepconv_error *error)
{
    if (layer->dtype == SEPCONV_DTYPE_FLOAT32)
        return SEPCONV_OK;
    return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                        "%s takes float32 layers only, and this one is dtype=int8 "
                        "(int8 tensors go through sepconv_reference_run_int8 and "
                        "sepconv_kernel_run_int8)",
                        what);
}

/* Prefixes an already-filled error message with "prefix: ". */
void sepconv_error_prefix(sepconv_error *error, const char *format, ...)
    SEPCONV_PRINTF(2, 3);

/* Reads a whole file (at most `limit` bytes) into a NUL-terminated heap
 * string; `what` names the file's kind in messages ("model file"). */
sepconv_status sepconv_read_file(const char *path, size_t limit, const char *what,
                                 char **text, size_t *length, sepconv_error *error);

/* Reads an open stream (standard input, say) to its end the same way;
 * `name` stands for the path in messages.  The caller closes the stream. */
sepconv_status sepconv_read_stream(FILE *file, const char *name, size_t limit,
                                   const char *what, char **text, size_t *length,
                                   sepconv_error *error);

/* Allocates `count` floats aligned to 64 bytes (a cache line, an AVX-512
 * vector), zeroed; NULL on failure.  Free with free(). */
float *sepconv_alloc_floats(int64_t count);

/* Reads a whole binary file (at most `limit` bytes) into a heap buffer. */
sepconv_status sepconv_read_file_bytes(const char *path, size_t limit, char **bytes,
                                       size_t *length);

/* sepconv's cache directory, $XDG_CACHE_HOME/sepconv or ~/.cache/sepconv,
 * into `out`; false when neither variable is set. */
bool sepconv_cache_home(char *out, size_t capacity);

/* Makes a directory and every missing parent (mode 0700); false if one
 * cannot be made. */
bool sepconv_make_dirs(char *path);

/* a * b into *out; false on int64 overflow or a negative operand. */
static inline bool sepconv_mul(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0)
        return false;
    return !__builtin_mul_overflow(a, b, out);
}

/* a + b into *out; false on int64 overflow or a negative operand. */
static inline bool sepconv_add(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0)
        return false;
    return !__builtin_add_overflow(a, b, out);
}

/* The next value of a splitmix64 stream: seeded, portable, reproducible. */
uint64_t sepconv_random_next(uint64_t *state);

/* Seeded int8 tensors of an int8 layer (any int8 input and weight, biases
 * in +-2048, weight scales 0.002-0.014; a sep's pointwise ones too) and
 * room for its int8 output, in one block the caller frees; NULL when out
 * of memory.  For timing: any fixed data will do. */
void *sepconv_qtensors_seeded(const sepconv_layer *layer, sepconv_qtensors *t,
                              int8_t **output);

/* Fault injection (test builds with -DSEPCONV_FAULT_INJECTION): every
 * allocation inside libsepconv goes through these, and the n-th one after
 * sepconv_fault_arm(n) fails.  core.h comes after the system headers in
 * every file, so these macros see only libsepconv's own calls. */
#ifdef SEPCONV_FAULT_INJECTION
#include <stddef.h>
void *sepconv_fault_malloc(size_t size);
void *sepconv_fault_calloc(size_t count, size_t size);
void *sepconv_fault_realloc(void *block, size_t size);
void *sepconv_fault_aligned_alloc(size_t alignment, size_t size);
char *sepconv_fault_strdup(const char *text);
#define malloc(size) sepconv_fault_malloc(size)
#define calloc(count, size) sepconv_fault_calloc(count, size)
#define realloc(block, size) sepconv_fault_realloc(block, size)
#define aligned_alloc(alignment, size) sepconv_fault_aligned_alloc(alignment, size)
#define strdup(text) sepconv_fault_strdup(text)
#endif

#endif /* SEPCONV_CORE_H */
