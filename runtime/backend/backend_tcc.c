/*
 * backend_tcc.c -- the embedded backend: C source compiled in memory by
 * libtcc, relocated into pages of our own that are then made read+exec
 * (never writable and executable at once).
 *
 * libtcc 0.9.27 keeps its parser and code generator in globals, so every
 * call into it holds one process-wide lock.  Debian's libtcc.a is not
 * position-independent: libsepconv.so leaves the tcc_* symbols to the
 * program, which links -ltcc (pkg-config --libs sepconv adds it).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <libtcc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/backend.h"
#include "microkernels/microkernels.h"

#ifndef SEPCONV_TCC_LIB_DIR
#error "SEPCONV_TCC_LIB_DIR: the Makefile passes /usr/lib/$(cc -print-multiarch)/tcc"
#endif

#define TCC_ERRORS_MAX 700

static pthread_mutex_t tcc_lock = PTHREAD_MUTEX_INITIALIZER;

/* The compiler's first complaint, gathered by the error callback. */
typedef struct tcc_errors {
    char text[TCC_ERRORS_MAX];
    size_t length;
} tcc_errors;

/* libtcc's error callback: keeps the messages, up to the buffer's size. */
static void collect_error(void *opaque, const char *message)
{
    tcc_errors *errors = opaque;
    size_t room = sizeof errors->text - errors->length;
    if (room > 1) {
        int wrote = snprintf(errors->text + errors->length, room, "%s%s",
                             errors->length ? "\n" : "", message);
        errors->length += wrote < 0 ? 0 : (size_t)wrote < room ? (size_t)wrote : room - 1;
    }
}

/* Saves failing source under $TMPDIR for the user; fills `path`. */
static void save_source(const char *source, size_t length, char *path, size_t capacity)
{
    const char *tmp = getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp";
    snprintf(path, capacity, "%s/sepconv-tcc-failed-XXXXXX.c", tmp);
    int fd = mkstemps(path, 2);
    if (fd < 0) {
        snprintf(path, capacity, "(could not be saved: %s)", strerror(errno));
        return;
    }
    bool ok = write(fd, source, length) == (ssize_t)length;
    close(fd);
    if (!ok)
        snprintf(path, capacity, "(could not be saved)");
}

/* Whether the program linked libtcc in (see the file comment).  In the
 * static library libtcc is linked with us; libsepconv.so is built with
 * SEPCONV_SHARED and finds it among the program's exported symbols. */
static bool libtcc_present(void)
{
#ifdef SEPCONV_SHARED
    return dlsym(RTLD_DEFAULT, "tcc_new") != NULL;
#else
    return true;
#endif
}

/* Compiles and relocates with the lock held; fills memory and symbols.
 * `source` has a NUL after its `length` bytes: tcc_compile_string reads
 * up to one. */
static sepconv_status compile_locked(const char *source, size_t length,
                                     const sepconv_microkernels *kernels,
                                     const char *const *names, size_t count,
                                     sepconv_code_memory *memory, void **addresses,
                                     sepconv_error *error)
{
    tcc_errors errors = {{0}, 0};
    TCCState *state = tcc_new();
    if (!state)
        return sepconv_fail(error, SEPCONV_NOMEM, "tcc: cannot create a compiler state");
    tcc_set_error_func(state, &errors, collect_error);
    const char *lib_dir = getenv("SEPCONV_TCC_LIB_DIR");
    tcc_set_lib_path(state, lib_dir && lib_dir[0] ? lib_dir : SEPCONV_TCC_LIB_DIR);
    /* generated code needs no libc: -nostdlib keeps linking at ~0.1 ms */
    tcc_set_options(state, "-nostdlib");
    tcc_set_output_type(state, TCC_OUTPUT_MEMORY);
    tcc_add_symbol(state, "memset", memset);
    tcc_add_symbol(state, "memcpy", memcpy);
    /* the row kernels of the target's ISA, built by the system compiler,
     * under the names generated code declares */
    tcc_add_symbol(state, "sepconv_uk_pointwise", (const void *)kernels->pointwise);
    tcc_add_symbol(state, "sepconv_uk_depthwise_row", (const void *)kernels->depthwise_row);
    tcc_add_symbol(state, "sepconv_uk_qdwrow", (const void *)kernels->qdwrow);
    tcc_add_symbol(state, "sepconv_uk_qpointwise", (const void *)kernels->qpointwise);
    tcc_add_symbol(state, "sepconv_uk_qpack", (const void *)kernels->qpack);
    sepconv_status status = SEPCONV_OK;
    if (tcc_compile_string(state, source) != 0) {
        char saved[4200];
        save_source(source, length, saved, sizeof saved);
        status = sepconv_fail(error, SEPCONV_COMPILE,
                              "tcc: %s\nthe source is saved as %s",
                              errors.length ? errors.text : "compile error", saved);
    }
    int size = status == SEPCONV_OK ? tcc_relocate(state, NULL) : -1;
    if (status == SEPCONV_OK && size <= 0)
        status = sepconv_fail(error, SEPCONV_COMPILE, "tcc: cannot link: %s",
                              errors.length ? errors.text : "unknown error");
    if (status == SEPCONV_OK) {
        long page = sysconf(_SC_PAGESIZE);
        memory->size = ((size_t)size + (size_t)page - 1) / (size_t)page * (size_t)page;
        memory->base = mmap(NULL, memory->size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory->base == MAP_FAILED) {
            memory->base = NULL;
            status = sepconv_fail(error, SEPCONV_NOMEM, "tcc: cannot map %zu bytes",
                                  memory->size);
        }
    }
    if (status == SEPCONV_OK && tcc_relocate(state, memory->base) < 0)
        status = sepconv_fail(error, SEPCONV_COMPILE, "tcc: relocation failed: %s",
                              errors.text);
    for (size_t i = 0; status == SEPCONV_OK && i < count; i++) {
        addresses[i] = tcc_get_symbol(state, names[i]);
        if (!addresses[i])
            status = sepconv_fail(error, SEPCONV_COMPILE,
                                  "tcc: the compiled code has no symbol '%s'", names[i]);
    }
    tcc_delete(state);
    /* W^X: the code is never writable and executable at the same time */
    if (status == SEPCONV_OK &&
        mprotect(memory->base, memory->size, PROT_READ | PROT_EXEC) != 0)
        status = sepconv_fail(error, SEPCONV_IO, "tcc: cannot make code executable: %s",
                              strerror(errno));
    if (status != SEPCONV_OK && memory->base) {
        munmap(memory->base, memory->size);
        memory->base = NULL;
    }
    return status;
}

/* Compiles source in memory with libtcc and resolves `names`. */
sepconv_status sepconv_tcc_compile(const char *source, size_t length, sepconv_target isa,
                                   const char *const *names, size_t count,
                                   sepconv_code **code, sepconv_error *error)
{
    if (!source || !code || (count && !names))
        return sepconv_fail(error, SEPCONV_INVALID, "tcc: missing arguments");
    *code = NULL;
    if (!libtcc_present())
        return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                            "tcc: libtcc is not linked into this program; link with "
                            "$(pkg-config --libs sepconv), which adds -ltcc, or use "
                            "the cc backend");
    /* tcc reads up to a NUL: a NUL inside would silently cut the source */
    const char *nul = memchr(source, '\0', length);
    if (nul)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "tcc: the source holds a NUL byte at offset %zu of its %zu "
                            "bytes (expected C text without NULs)",
                            (size_t)(nul - source), length);
    if (length == SIZE_MAX)
        return sepconv_fail(error, SEPCONV_LIMIT, "tcc: the source is too long");
    const sepconv_microkernels *kernels =
        (unsigned)isa < SEPCONV_TARGET_ISA_COUNT
            ? sepconv_microkernels_find(sepconv_isa_name(isa)) : NULL;
    if (!kernels)
        return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                            "tcc: libsepconv was built without %s micro-kernels (another "
                            "architecture's, or not a resolved instruction set); use "
                            "target auto or portable", sepconv_isa_name(isa));
    /* `source` need not end in a NUL after `length` bytes: compile a copy */
    char *text = malloc(length + 1);
    void **addresses = calloc(count ? count : 1, sizeof *addresses);
    if (!text || !addresses) {
        free(text);
        free(addresses);
        return sepconv_fail(error, SEPCONV_NOMEM, "tcc: out of memory for a %zu-byte "
                                                  "source", length);
    }
    memcpy(text, source, length);
    text[length] = '\0';
    sepconv_code_memory memory = {NULL, 0};
    pthread_mutex_lock(&tcc_lock);
    sepconv_status status = compile_locked(text, length, kernels, names, count, &memory,
                                           addresses, error);
    pthread_mutex_unlock(&tcc_lock);
    free(text);
    if (status == SEPCONV_OK)
        status = sepconv_code_from_memory(&memory, names, addresses, count, code, error);
    free(addresses);
    return status;
}
