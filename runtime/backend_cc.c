/*
 * backend_cc.c -- the system-compiler backend: C source in, a loaded shared
 * object out, through a disk cache.  Runs the compiler without a shell
 * (arguments are never interpreted), keeps the source of a failing compile
 * for the user.
 *
 * A cache entry is the shared object followed by a trailer: a magic line,
 * the object's length and its XXH3-128 hash.  It is written under a
 * temporary name and renamed, so a reader never sees half an entry; one that
 * fails the check (truncated, replaced) is deleted and rebuilt.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pthread.h>
#include <unistd.h>
#include <xxhash.h>

#include "internal.h"

#define DEFAULT_FLAGS "-O3 -march=native"
#define MAX_ARGS 64

extern char **environ;

/* Splits `flags` on spaces into argv[*count...]; false if too many. */
static bool split_flags(char *flags, char **argv, int *count)
{
    for (char *token = strtok(flags, " \t"); token; token = strtok(NULL, " \t")) {
        if (*count >= MAX_ARGS - 8)
            return false;
        argv[(*count)++] = token;
    }
    return true;
}

/* Writes `length` bytes to a new file. */
static sepconv_status write_file(const char *path, const char *text, size_t length,
                                 sepconv_error *error)
{
    FILE *file = fopen(path, "wb");
    if (!file)
        return sepconv_fail(error, SEPCONV_IO, "cannot write %s: %s", path,
                            strerror(errno));
    size_t wrote = fwrite(text, 1, length, file);
    if (fclose(file) != 0 || wrote != length)
        return sepconv_fail(error, SEPCONV_IO, "error writing %s", path);
    return SEPCONV_OK;
}

/* Runs argv with stderr into `log`; returns the exit status or -1. */
static int run_compiler(char **argv, const char *log, int *spawn_errno)
{
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&actions, 2, 1);
    pid_t pid;
    int spawned = posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
        *spawn_errno = spawned;
        return -1;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Whether a spawned program was not found: some posix_spawn emulations
 * (valgrind's) report that as a child exiting 127 with nothing said. */
static bool not_found(int exit_status, const char *log, int *spawn_errno)
{
    struct stat info;
    if (exit_status != 127 || stat(log, &info) != 0 || info.st_size != 0)
        return false;
    *spawn_errno = ENOENT;
    return true;
}

/* Moves the failing source next to the user (save_dir) and names it. */
static void keep_source(const char *source_path, const char *save_dir,
                        char *kept, size_t capacity)
{
    snprintf(kept, capacity, "%s/sepconv-failed-%ld.c", save_dir, (long)getpid());
    if (rename(source_path, kept) != 0)
        snprintf(kept, capacity, "%s", source_path);
}

/* Resolves the compiler to run: the option, $CC, or "cc". */
static const char *compiler_of(const sepconv_cc_options *options)
{
    if (options && options->compiler)
        return options->compiler;
    const char *cc = getenv("CC");
    return cc && cc[0] ? cc : "cc";
}

/* The temporary directory: $TMPDIR or /tmp. */
static const char *temporary_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    return tmp && tmp[0] ? tmp : "/tmp";
}

/* Runs the compiler on `c_path` into `so_path`; on failure the message
 * holds its output and where the source was kept. */
static sepconv_status build(const char *compiler, const char *flag_text,
                            const char *dir, const char *save_dir,
                            sepconv_error *error)
{
    char c_path[4200], so_path[4200], log_path[4200];
    snprintf(c_path, sizeof c_path, "%s/kernel.c", dir);
    snprintf(so_path, sizeof so_path, "%s/kernel.so", dir);
    snprintf(log_path, sizeof log_path, "%s/compiler.log", dir);
    char flags[1024];
    snprintf(flags, sizeof flags, "%s", flag_text);
    char *argv[MAX_ARGS];
    int argc = 0;
    argv[argc++] = (char *)compiler;
    if (!split_flags(flags, argv, &argc))
        return sepconv_fail(error, SEPCONV_INVALID, "cc: too many flags");
    char *fixed[] = {"-shared", "-fPIC", "-o", so_path, c_path, NULL};
    for (int i = 0; fixed[i]; i++)
        argv[argc++] = fixed[i];
    argv[argc] = NULL;
    int spawn_errno = 0;
    int exit_status = run_compiler(argv, log_path, &spawn_errno);
    if (exit_status < 0 || not_found(exit_status, log_path, &spawn_errno))
        return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                            "cc: cannot run the compiler '%s': %s; install one "
                            "(apt-get install gcc) or use the tcc backend", compiler,
                            strerror(spawn_errno));
    if (exit_status == 0)
        return SEPCONV_OK;
    char *log = NULL;
    size_t log_length = 0;
    char kept[4300];
    keep_source(c_path, save_dir, kept, sizeof kept);
    if (sepconv_read_file(log_path, 1 << 20, "log", &log, &log_length, NULL) != SEPCONV_OK)
        log = NULL;
    sepconv_status status = sepconv_fail(error, SEPCONV_UNSUPPORTED,
                                         "cc: %s failed (exit %d); the source is saved "
                                         "as %s:\n%.700s", compiler, exit_status, kept,
                                         log ? log : "(no compiler output)");
    free(log);
    return status;
}

/* ------------------------------------------------------------ the cache */

#define CACHE_MAGIC "sepconv-cache-1\n" /* 16 bytes */
#define TRAILER_BYTES (16 + 8 + 16)
#define CACHE_ENTRY_MAX ((size_t)256 << 20)

/* Compiler identities already asked for, so a cache hit runs nothing. */
static pthread_mutex_t identity_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char compiler[256];
    XXH128_hash_t identity;
    char first_line[128];
} identities[8];
static int identity_count;

/* The hash of `compiler --version` (its identity and version) and the
 * output's first line, for people. */
static sepconv_status compiler_identity(const char *compiler, XXH128_hash_t *identity,
                                        char *first_line, size_t capacity,
                                        sepconv_error *error)
{
    pthread_mutex_lock(&identity_lock);
    for (int i = 0; i < identity_count; i++)
        if (strcmp(identities[i].compiler, compiler) == 0) {
            *identity = identities[i].identity;
            snprintf(first_line, capacity, "%s", identities[i].first_line);
            pthread_mutex_unlock(&identity_lock);
            return SEPCONV_OK;
        }
    pthread_mutex_unlock(&identity_lock);
    char log_path[4200];
    snprintf(log_path, sizeof log_path, "%s/sepconv-cc-version-XXXXXX", temporary_dir());
    int fd = mkstemp(log_path);
    if (fd < 0)
        return sepconv_fail(error, SEPCONV_IO, "cc: cannot make a file in %s: %s",
                            temporary_dir(), strerror(errno));
    close(fd);
    char *argv[] = {(char *)compiler, "--version", NULL};
    int spawn_errno = 0;
    int exit_status = run_compiler(argv, log_path, &spawn_errno);
    if (not_found(exit_status, log_path, &spawn_errno))
        exit_status = -1;
    char *text = NULL;
    size_t length = 0;
    sepconv_status status = SEPCONV_OK;
    if (exit_status != 0)
        status = sepconv_fail(error, SEPCONV_UNSUPPORTED,
                              "cc: cannot run the compiler '%s'%s%s; install one "
                              "(apt-get install gcc) or use the tcc backend", compiler,
                              exit_status < 0 ? ": " : " --version",
                              exit_status < 0 ? strerror(spawn_errno) : " failed");
    else
        status = sepconv_read_file(log_path, 1 << 16, "version text", &text, &length, error);
    unlink(log_path);
    if (status != SEPCONV_OK)
        return status;
    XXH3_state_t *state = XXH3_createState();
    if (!state) {
        free(text);
        return sepconv_fail(error, SEPCONV_NOMEM, "cc: out of memory");
    }
    XXH3_128bits_reset(state);
    XXH3_128bits_update(state, compiler, strlen(compiler) + 1);
    XXH3_128bits_update(state, text, length);
    *identity = XXH3_128bits_digest(state);
    XXH3_freeState(state);
    snprintf(first_line, capacity, "%.*s", (int)strcspn(text, "\n"), text);
    free(text);
    pthread_mutex_lock(&identity_lock);
    if (identity_count < 8 && strlen(compiler) < sizeof identities[0].compiler) {
        snprintf(identities[identity_count].compiler, sizeof identities[0].compiler, "%s",
                 compiler);
        snprintf(identities[identity_count].first_line,
                 sizeof identities[0].first_line, "%s", first_line);
        identities[identity_count++].identity = *identity;
    }
    pthread_mutex_unlock(&identity_lock);
    return SEPCONV_OK;
}

/* The cache directory, created if missing; false if there is none. */
static bool cache_directory(const sepconv_cc_options *options, char *out, size_t capacity)
{
    const char *setting = getenv("SEPCONV_CACHE");
    if ((options && options->no_cache) || (setting && strcmp(setting, "off") == 0))
        return false;
    if (options && options->cache_dir)
        snprintf(out, capacity, "%s", options->cache_dir);
    else if (!sepconv_cache_home(out, capacity))
        return false;
    /* an unusable directory just means no cache */
    return sepconv_make_dirs(out) && access(out, W_OK | X_OK) == 0;
}

/* The entry's path for a key. */
static void entry_path(const char *dir, XXH128_hash_t key, char *out, size_t capacity)
{
    snprintf(out, capacity, "%s/%016llx%016llx.so", dir, (unsigned long long)key.high64,
             (unsigned long long)key.low64);
}

/* Whether a cache entry is whole: its trailer's length and hash match. */
static bool entry_valid(const char *path)
{
    char *bytes = NULL;
    size_t length = 0;
    if (sepconv_read_file_bytes(path, CACHE_ENTRY_MAX, &bytes, &length) != SEPCONV_OK)
        return false;
    bool valid = false;
    if (length > TRAILER_BYTES) {
        const char *trailer = bytes + length - TRAILER_BYTES;
        uint64_t stored_length;
        XXH128_canonical_t stored;
        memcpy(&stored_length, trailer + 16, 8);
        memcpy(&stored, trailer + 24, 16);
        size_t body = length - TRAILER_BYTES;
        valid = memcmp(trailer, CACHE_MAGIC, 16) == 0 && stored_length == body &&
                XXH128_isEqual(XXH3_128bits(bytes, body),
                               XXH128_hashFromCanonical(&stored));
    }
    free(bytes);
    return valid;
}

/* Copies a built object into the cache with its trailer: a temporary file
 * in the cache directory, then an atomic rename.  Failures are ignored: the
 * kernel works without its cache entry. */
static void entry_store(const char *so_path, const char *dir, const char *path)
{
    char *bytes = NULL;
    size_t length = 0;
    if (sepconv_read_file_bytes(so_path, CACHE_ENTRY_MAX, &bytes, &length) != SEPCONV_OK)
        return;
    char trailer[TRAILER_BYTES];
    uint64_t body = length;
    XXH128_canonical_t hash;
    XXH128_canonicalFromHash(&hash, XXH3_128bits(bytes, length));
    memcpy(trailer, CACHE_MAGIC, 16);
    memcpy(trailer + 16, &body, 8);
    memcpy(trailer + 24, &hash, 16);
    char temporary[4300];
    snprintf(temporary, sizeof temporary, "%s/.entry-XXXXXX", dir);
    int fd = mkstemp(temporary);
    if (fd >= 0) {
        bool ok = write(fd, bytes, length) == (ssize_t)length &&
                  write(fd, trailer, sizeof trailer) == (ssize_t)sizeof trailer;
        ok = close(fd) == 0 && ok;
        if (!ok || rename(temporary, path) != 0)
            unlink(temporary);
    }
    free(bytes);
}

/* The cache key: source, compiler identity, flags and sepconv's version. */
static XXH128_hash_t cache_key(const char *source, size_t length, XXH128_hash_t identity,
                               const char *flags)
{
    XXH3_state_t *state = XXH3_createState();
    XXH128_hash_t key = {0, 0};
    if (!state)
        return key;
    XXH3_128bits_reset(state);
    XXH3_128bits_update(state, source, length);
    XXH3_128bits_update(state, &identity, sizeof identity);
    XXH3_128bits_update(state, flags, strlen(flags) + 1);
    XXH3_128bits_update(state, SEPCONV_VERSION, sizeof SEPCONV_VERSION);
    key = XXH3_128bits_digest(state);
    XXH3_freeState(state);
    return key;
}

/* Flags that let the compiler break IEEE semantics: NaN and infinity
 * propagation, signed zeros, subnormals, the order of a sum.  Kernels must
 * match the reference's semantics, so these are refused. */
static const char *const unsafe_flags[] = {
    "-ffast-math", "-Ofast", "-ffinite-math-only", "-funsafe-math-optimizations",
    "-fassociative-math", "-freciprocal-math", "-fno-signed-zeros", "-fno-trapping-math",
    "-ffp-contract=fast-honor-pragmas", "-menable-unsafe-fp-math", NULL};

/* The first IEEE-breaking flag in a flag string, or NULL. */
static const char *unsafe_flag(const char *flags)
{
    for (const char *const *flag = unsafe_flags; *flag; flag++) {
        size_t length = strlen(*flag);
        for (const char *at = strstr(flags, *flag); at; at = strstr(at + 1, *flag))
            if ((at == flags || at[-1] == ' ') && (at[length] == '\0' || at[length] == ' '))
                return *flag;
    }
    return NULL;
}

/* Compiles and loads source with the system compiler, through the cache. */
sepconv_status sepconv_cc_compile(const char *source, size_t length,
                                  const sepconv_cc_options *options,
                                  sepconv_code **code, sepconv_error *error)
{
    if (!source || !code)
        return sepconv_fail(error, SEPCONV_INVALID, "cc: no source or no result");
    *code = NULL;
    const char *compiler = compiler_of(options);
    const char *flags = options && options->flags ? options->flags : DEFAULT_FLAGS;
    const char *unsafe = unsafe_flag(flags);
    if (unsafe)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "cc: the flag %s breaks IEEE semantics (NaN, infinities, "
                            "signed zeros, subnormals) that kernels must keep; remove it",
                            unsafe);
    const char *save_dir = options && options->save_dir ? options->save_dir
                                                        : temporary_dir();
    char cache_dir[4096], cached[4200] = "";
    if (cache_directory(options, cache_dir, sizeof cache_dir)) {
        XXH128_hash_t identity;
        char first_line[128];
        sepconv_status status = compiler_identity(compiler, &identity, first_line,
                                                  sizeof first_line, error);
        if (status != SEPCONV_OK)
            return status;
        entry_path(cache_dir, cache_key(source, length, identity, flags), cached,
                   sizeof cached);
        if (entry_valid(cached)) {
            void *handle = dlopen(cached, RTLD_NOW | RTLD_LOCAL);
            if (handle)
                return sepconv_code_from_handle(handle, 1, code, error);
        }
        unlink(cached); /* missing, corrupt or unloadable: rebuild it */
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sepconv-cc-XXXXXX", temporary_dir());
    if (!mkdtemp(dir))
        return sepconv_fail(error, SEPCONV_IO, "cc: cannot make a directory in %s: %s",
                            temporary_dir(), strerror(errno));
    char c_path[4200], so_path[4200], log_path[4200];
    snprintf(c_path, sizeof c_path, "%s/kernel.c", dir);
    snprintf(so_path, sizeof so_path, "%s/kernel.so", dir);
    snprintf(log_path, sizeof log_path, "%s/compiler.log", dir);
    sepconv_status status = write_file(c_path, source, length, error);
    if (status == SEPCONV_OK)
        status = build(compiler, flags, dir, save_dir, error);
    void *handle = NULL;
    if (status == SEPCONV_OK) {
        if (cached[0])
            entry_store(so_path, cache_dir, cached);
        handle = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
        if (!handle)
            status = sepconv_fail(error, SEPCONV_IO, "cc: cannot load %s: %s", so_path,
                                  dlerror());
    }
    unlink(c_path);
    unlink(so_path); /* a loaded object stays mapped */
    unlink(log_path);
    rmdir(dir);
    if (status != SEPCONV_OK)
        return status;
    return sepconv_code_from_handle(handle, 0, code, error);
}

/* The compiler's identity for people and tuning logs: the first line of
 * `compiler --version`. */
sepconv_status sepconv_cc_identity(const sepconv_cc_options *options, char *text,
                                   size_t capacity, sepconv_error *error)
{
    XXH128_hash_t identity;
    return compiler_identity(compiler_of(options), &identity, text, capacity, error);
}
