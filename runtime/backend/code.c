/*
 * code.c -- compiled code loaded into the process: a shared object from the
 * cc backend, or read+exec pages from the tcc backend with the symbols that
 * were resolved before libtcc's state was deleted.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backend/backend.h"

struct sepconv_code {
    void *handle;               /* dlopen, or NULL */
    sepconv_code_memory memory; /* tcc pages, or {NULL, 0} */
    int from_cache;
    size_t count;
    char **names;
    void **addresses;
};

/* Wraps mapped code and its symbols. */
sepconv_status sepconv_code_from_memory(const sepconv_code_memory *memory,
                                        const char *const *names, void *const *addresses,
                                        size_t count, sepconv_code **code,
                                        sepconv_error *error)
{
    sepconv_code *c = calloc(1, sizeof *c);
    if (c) {
        c->names = calloc(count ? count : 1, sizeof *c->names);
        c->addresses = calloc(count ? count : 1, sizeof *c->addresses);
    }
    bool ok = c && c->names && c->addresses;
    for (size_t i = 0; ok && i < count; i++) {
        c->names[i] = strdup(names[i]);
        c->addresses[i] = addresses[i];
        c->count = i + 1;
        ok = c->names[i] != NULL;
    }
    if (c)
        c->memory = *memory; /* owned from here on, freed with the code */
    if (!ok) {
        if (c)
            sepconv_code_free(c);
        else
            munmap(memory->base, memory->size);
        return sepconv_fail(error, SEPCONV_NOMEM, "out of memory for compiled code");
    }
    *code = c;
    return SEPCONV_OK;
}

/* Wraps a dlopen handle. */
sepconv_status sepconv_code_from_handle(void *handle, int from_cache,
                                        sepconv_code **code, sepconv_error *error)
{
    sepconv_code *c = calloc(1, sizeof *c);
    if (!c) {
        dlclose(handle);
        return sepconv_fail(error, SEPCONV_NOMEM, "out of memory for compiled code");
    }
    c->handle = handle;
    c->from_cache = from_cache;
    *code = c;
    return SEPCONV_OK;
}

/* The address of a symbol in compiled code, or NULL. */
void *sepconv_code_symbol(const sepconv_code *code, const char *name)
{
    if (!code || !name)
        return NULL;
    if (code->handle)
        return dlsym(code->handle, name);
    for (size_t i = 0; i < code->count; i++)
        if (strcmp(code->names[i], name) == 0)
            return code->addresses[i];
    return NULL;
}

/* Whether the code came from the disk cache. */
int sepconv_code_from_cache(const sepconv_code *code)
{
    return code ? code->from_cache : 0;
}

/* Unloads compiled code. */
void sepconv_code_free(sepconv_code *code)
{
    if (!code)
        return;
    if (code->handle)
        dlclose(code->handle);
    if (code->memory.base)
        munmap(code->memory.base, code->memory.size);
    for (size_t i = 0; i < code->count; i++)
        free(code->names[i]);
    free(code->names);
    free(code->addresses);
    free(code);
}
