/*
 * backend_cc.c -- the system-compiler backend: C source in, a loaded shared
 * object out.  Runs the compiler without a shell (arguments are never
 * interpreted), keeps the source of a failing compile for the user.
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
#include <unistd.h>

#include "internal.h"

#define DEFAULT_FLAGS "-O3 -march=native"
#define MAX_ARGS 64

extern char **environ;

struct sepconv_code {
    void *handle; /* dlopen */
};

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

/* Moves the failing source next to the user (save_dir) and names it. */
static void keep_source(const char *source_path, const char *save_dir,
                        char *kept, size_t capacity)
{
    snprintf(kept, capacity, "%s/sepconv-failed-%ld.c", save_dir, (long)getpid());
    if (rename(source_path, kept) != 0)
        snprintf(kept, capacity, "%s", source_path);
}

/* Compiles and loads source with the system compiler. */
sepconv_status sepconv_cc_compile(const char *source, size_t length,
                                  const sepconv_cc_options *options,
                                  sepconv_code **code, sepconv_error *error)
{
    if (!source || !code)
        return sepconv_fail(error, SEPCONV_INVALID, "cc: no source or no result");
    *code = NULL;
    const char *compiler = options && options->compiler ? options->compiler
                           : getenv("CC") && getenv("CC")[0] ? getenv("CC") : "cc";
    const char *tmp = getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp";
    const char *save_dir = options && options->save_dir ? options->save_dir : tmp;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sepconv-cc-XXXXXX", tmp);
    if (!mkdtemp(dir))
        return sepconv_fail(error, SEPCONV_IO, "cc: cannot make a directory in %s: %s",
                            tmp, strerror(errno));
    char c_path[4200], so_path[4200], log_path[4200];
    snprintf(c_path, sizeof c_path, "%s/kernel.c", dir);
    snprintf(so_path, sizeof so_path, "%s/kernel.so", dir);
    snprintf(log_path, sizeof log_path, "%s/compiler.log", dir);
    sepconv_status status = write_file(c_path, source, length, error);
    char flags[1024];
    snprintf(flags, sizeof flags, "%s",
             options && options->flags ? options->flags : DEFAULT_FLAGS);
    char *argv[MAX_ARGS];
    int argc = 0;
    argv[argc++] = (char *)compiler;
    if (status == SEPCONV_OK && !split_flags(flags, argv, &argc))
        status = sepconv_fail(error, SEPCONV_INVALID, "cc: too many flags");
    if (status == SEPCONV_OK) {
        char *fixed[] = {"-shared", "-fPIC", "-o", so_path, c_path, NULL};
        for (int i = 0; fixed[i]; i++)
            argv[argc++] = fixed[i];
        argv[argc] = NULL;
        int spawn_errno = 0;
        int exit_status = run_compiler(argv, log_path, &spawn_errno);
        if (exit_status < 0) {
            status = sepconv_fail(error, SEPCONV_UNSUPPORTED,
                                  "cc: cannot run the compiler '%s': %s; install "
                                  "one (apt-get install gcc) or use the tcc "
                                  "backend", compiler, strerror(spawn_errno));
        } else if (exit_status != 0) {
            char *log = NULL;
            size_t log_length = 0;
            char kept[4300];
            keep_source(c_path, save_dir, kept, sizeof kept);
            if (sepconv_read_file(log_path, 1 << 20, "log", &log, &log_length, NULL) !=
                SEPCONV_OK)
                log = NULL;
            status = sepconv_fail(error, SEPCONV_UNSUPPORTED,
                                  "cc: %s failed (exit %d); the source is saved "
                                  "as %s:\n%.700s", compiler, exit_status, kept,
                                  log ? log : "(no compiler output)");
            free(log);
        }
    }
    void *handle = NULL;
    if (status == SEPCONV_OK) {
        handle = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
        if (!handle)
            status = sepconv_fail(error, SEPCONV_IO, "cc: cannot load %s: %s",
                                  so_path, dlerror());
    }
    unlink(c_path);
    unlink(so_path); /* a loaded object stays mapped */
    unlink(log_path);
    rmdir(dir);
    if (status != SEPCONV_OK)
        return status;
    *code = calloc(1, sizeof **code);
    if (!*code) {
        dlclose(handle);
        return sepconv_fail(error, SEPCONV_NOMEM, "cc: out of memory");
    }
    (*code)->handle = handle;
    return SEPCONV_OK;
}

/* The address of a symbol in loaded code. */
void *sepconv_code_symbol(const sepconv_code *code, const char *name)
{
    if (!code || !name)
        return NULL;
    return dlsym(code->handle, name);
}

/* Unloads compiled code. */
void sepconv_code_free(sepconv_code *code)
{
    if (!code)
        return;
    if (code->handle)
        dlclose(code->handle);
    free(code);
}
