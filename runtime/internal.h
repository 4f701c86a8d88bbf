/*
 * internal.h -- helpers shared by libsepconv's rooms, not part of the API.
 */
#ifndef SEPCONV_INTERNAL_H
#define SEPCONV_INTERNAL_H

#include <stdbool.h>
#include "sepconv.h"

#if defined(__GNUC__) || defined(__clang__)
#define SEPCONV_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SEPCONV_PRINTF(f, a)
#endif

/* Fills `error` (if any) and returns `status`, so callers can `return fail(...)`. */
sepconv_status sepconv_fail(sepconv_error *error, sepconv_status status,
                            const char *format, ...) SEPCONV_PRINTF(3, 4);

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

/* The CPUs the cgroup CPU quotas of this process allow, 0 for no limit,
 * with the file systems read under `root` ("" for the real ones; tests
 * pass a fake tree).  In kernel.c. */
int sepconv_cgroup_cpu_limit(const char *root);

/* Reads a whole binary file (at most `limit` bytes) into a heap buffer. */
sepconv_status sepconv_read_file_bytes(const char *path, size_t limit, char **bytes,
                                       size_t *length);

/* sepconv's cache directory, $XDG_CACHE_HOME/sepconv or ~/.cache/sepconv,
 * into `out`; false when neither variable is set. */
bool sepconv_cache_home(char *out, size_t capacity);

/* Makes a directory and every missing parent (mode 0700); false if one
 * cannot be made. */
bool sepconv_make_dirs(char *path);

/* The x86 features the CPU has, as bits of the table in cpu_features.c,
 * less those $SEPCONV_CPU_HIDE hides; every bit when libcpuinfo cannot
 * tell, so nothing is refused on a guess. */
uint64_t sepconv_cpu_features(void);

/* The features a compiler's predefined macros (its -E -dM output) say its
 * code may use. */
uint64_t sepconv_features_of_macros(const char *macros);

/* Refuses code (`what`, for the message) that needs features the CPU
 * lacks, naming the first. */
sepconv_status sepconv_check_features(uint64_t needed, const char *what,
                                      sepconv_error *error);

/* Whether a shared object's image imports anything but memcpy, memmove,
 * memset and memcmp (an undefined symbol, a needed library) or cannot be
 * read as a 64-bit ELF object; names the first such thing in `name`. */
bool sepconv_elf_imports(const char *bytes, size_t length, char *name, size_t capacity);

/* Pages holding code relocated by the tcc backend. */
typedef struct sepconv_code_memory {
    void *base;
    size_t size;
} sepconv_code_memory;

/* Wraps mapped code and its resolved symbols (copies the names). */
sepconv_status sepconv_code_from_memory(const sepconv_code_memory *memory,
                                        const char *const *names, void *const *addresses,
                                        size_t count, sepconv_code **code,
                                        sepconv_error *error);

/* Wraps a dlopen handle; `from_cache` records a disk-cache hit. */
sepconv_status sepconv_code_from_handle(void *handle, int from_cache,
                                        sepconv_code **code, sepconv_error *error);

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

/* Fault injection (test builds with -DSEPCONV_FAULT_INJECTION): every
 * allocation inside libsepconv goes through these, and the n-th one after
 * sepconv_fault_arm(n) fails.  internal.h comes after the system headers in
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

#endif /* SEPCONV_INTERNAL_H */
