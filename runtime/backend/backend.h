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
 * loads it, through a disk cache; LIMIT past the timeout, UNSUPPORTED for
 * an object that imports anything or needs CPU features this CPU lacks
 * (the rules: above the definition in backend_cc.c). */
sepconv_status sepconv_cc_compile(const char *source, size_t length,
                                  const sepconv_cc_options *options,
                                  sepconv_code **code, sepconv_error *error);

/* Compiles source in memory with the embedded libtcc and resolves the
 * `count` symbols `names`; the code may call the micro-kernels of `isa`
 * (a resolved target: sepconv_uk_pointwise, sepconv_uk_depthwise_row).  The code lives in pages that
 * are read+exec only.  Compiles are serialized: libtcc keeps globals. */
sepconv_status sepconv_tcc_compile(const char *source, size_t length, sepconv_target isa,
                                   const char *const *names, size_t count,
                                   sepconv_code **code, sepconv_error *error);

/* The first line of `compiler --version`, the cc backend's identity. */
sepconv_status sepconv_cc_identity(const sepconv_cc_options *options, char *text,
                                   size_t capacity, sepconv_error *error);

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

/* A target's name ("portable", "avx2", "avx512", "neon", "auto"; "?"). */
const char *sepconv_isa_name(sepconv_target target);

/* Whether $SEPCONV_CPU_HIDE names a feature (e.g. "neon", outside the x86
 * table): a CPU without it, simulated. */
bool sepconv_hidden_name(const char *name);

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
