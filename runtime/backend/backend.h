/*
 * backend/backend.h -- the backends: C source in, callable code out (tcc in
 * memory, cc through a disk cache), the CPU features code may need, and
 * what a compiled object imports.  They know nothing of convolutions.
 * Not installed: the kernel room is their one user.
 */
#ifndef SEPCONV_BACKEND_H
#define SEPCONV_BACKEND_H

#include "core/core.h"

/* Compiled code loaded into this process; knows nothing of convolutions. */
typedef struct sepconv_code sepconv_code;

/* Compiles C source with the system compiler into a shared object and
 * loads it, through a disk cache keyed by an XXH3-128 hash of the source,
 * the compiler's identity and version, the flags, what they resolve to on
 * this machine (the compiler's predefined macros: -march=native differs
 * between CPUs) and the CPU's features.  Entries are written under a
 * temporary name and renamed; a corrupt entry (or one that is not a regular
 * file) is discarded and rebuilt; a cache directory that is not writable
 * still serves its hits.
 *
 * The compiler runs in a process group of its own with TMPDIR set to a
 * private directory; past timeout_seconds the group is killed and the call
 * returns SEPCONV_LIMIT.  Temporary files are removed on every path.  On a
 * compile error or a timeout the message holds the compiler's text and the
 * path where the source was saved (a name of its own per failure).
 *
 * Generated code imports nothing: objects are linked with -nostdlib, and
 * one that leaves any symbol undefined or needs any library (system(),
 * printf, libm...) is refused with SEPCONV_UNSUPPORTED naming it before it
 * is loaded, so no constructor of it runs.  The one exception is the four
 * functions compilers call on their own even in freestanding code:
 * memcpy, memmove, memset, memcmp.  An object whose flags need CPU
 * features this CPU lacks (AVX-512 from a cache shared with another
 * machine) is refused the same way; SEPCONV_CPU_HIDE="avx512 sha..."
 * simulates a CPU without those features. */
sepconv_status sepconv_cc_compile(const char *source, size_t length,
                                  const sepconv_cc_options *options,
                                  sepconv_code **code, sepconv_error *error);

/* Compiles source in memory with the embedded libtcc (portable target only)
 * and resolves the `count` symbols `names`.  The code lives in pages that
 * are read+exec only.  Compiles are serialized: libtcc keeps globals. */
sepconv_status sepconv_tcc_compile(const char *source, size_t length,
                                   const char *const *names, size_t count,
                                   sepconv_code **code, sepconv_error *error);

/* The first line of `compiler --version`, the cc backend's identity. */
sepconv_status sepconv_cc_identity(const sepconv_cc_options *options, char *text,
                                   size_t capacity, sepconv_error *error);

/* The address of a symbol in compiled code, or NULL. */
void *sepconv_code_symbol(const sepconv_code *code, const char *name);
/* 1 if the code came from the cc backend's disk cache. */
int sepconv_code_from_cache(const sepconv_code *code);
void sepconv_code_free(sepconv_code *code);

/* The address of a symbol in compiled code, or NULL. */
void *sepconv_code_symbol(const sepconv_code *code, const char *name);
/* 1 if the code came from the cc backend's disk cache. */
int sepconv_code_from_cache(const sepconv_code *code);
/* Unloads compiled code and frees it; NULL is a no-op. */
void sepconv_code_free(sepconv_code *code);

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

#endif /* SEPCONV_BACKEND_H */
