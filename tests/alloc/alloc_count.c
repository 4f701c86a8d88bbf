/*
 * alloc_count.c -- proves that running a created kernel allocates nothing:
 * this program replaces malloc & co (over glibc's __libc_ entry points),
 * counts every allocation made by any thread while armed, and arms the
 * count only around runs of dw, pw, sep (fused and not) and conv kernels
 * with one and two threads.  Exit 0 if no run allocated, 1 otherwise.
 *
 * It cannot work under a sanitizer or valgrind, which replace malloc
 * themselves: the Makefile skips it there and says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sepconv.h"

/* glibc's own allocator, which the replacements below forward to. */
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *block, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
void __libc_free(void *block);

static atomic_int armed;
static atomic_long allocations;

/* Counts one allocation if armed. */
static void count(void)
{
    if (atomic_load(&armed))
        atomic_fetch_add(&allocations, 1);
}

void *malloc(size_t size)
{
    count();
    return __libc_malloc(size);
}

void *calloc(size_t number, size_t size)
{
    count();
    return __libc_calloc(number, size);
}

void *realloc(void *block, size_t size)
{
    count();
    return __libc_realloc(block, size);
}

void free(void *block)
{
    __libc_free(block);
}

void *aligned_alloc(size_t alignment, size_t size)
{
    count();
    return __libc_memalign(alignment, size);
}

void *memalign(size_t alignment, size_t size)
{
    count();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size)
{
    count();
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0)
        return EINVAL;
    void *block = __libc_memalign(alignment, size);
    if (!block)
        return ENOMEM;
    *out = block;
    return 0;
}

/* Starts counting from zero. */
static void arm(void)
{
    atomic_store(&allocations, 0);
    atomic_store(&armed, 1);
}

/* Stops counting; the allocations made since arm(). */
static long disarm(void)
{
    atomic_store(&armed, 0);
    return atomic_load(&allocations);
}

/* The runs measured per kernel, with its own and with a caller's workspace. */
#define RUNS 3

/* Builds a kernel and counts the allocations of its runs; -1 if it cannot
 * be built. */
static long count_runs(const char *spec, const char *schedule, int threads)
{
    sepconv_layer layer;
    sepconv_error error;
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.schedule = schedule;
    options.threads = threads;
    sepconv_kernel *kernel = NULL;
    sepconv_buffers b;
    if (sepconv_layer_parse(spec, &layer, &error) != SEPCONV_OK ||
        sepconv_kernel_create(&layer, &options, &kernel, &error) != SEPCONV_OK ||
        sepconv_buffers_alloc(&layer, &b, &error) != SEPCONV_OK) {
        fprintf(stderr, "alloc_count: %s: %s\n", spec, error.message);
        sepconv_kernel_free(kernel);
        return -1;
    }
    sepconv_buffers_fill_random(&layer, &b, 1);
    sepconv_tensors t = sepconv_buffers_tensors(&b);
    size_t bytes = sepconv_kernel_workspace_bytes(kernel);
    void *workspace = bytes ? aligned_alloc(64, (bytes + 63) / 64 * 64) : NULL;
    long made = -1;
    if (sepconv_kernel_set_weights(kernel, &t, &error) == SEPCONV_OK &&
        (!bytes || workspace)) {
        int failed = 0;
        arm();
        for (int r = 0; r < RUNS; r++) {
            failed |= sepconv_kernel_run(kernel, b.input, b.output, &error) != SEPCONV_OK;
            failed |= sepconv_kernel_run_with_workspace(kernel, b.input, b.output, workspace,
                                                        bytes, &error) != SEPCONV_OK;
        }
        made = disarm();
        if (failed) {
            fprintf(stderr, "alloc_count: %s: a run failed: %s\n", spec, error.message);
            made = -1;
        }
    }
    free(workspace);
    sepconv_buffers_free(&b);
    sepconv_kernel_free(kernel);
    return made;
}

int main(void)
{
    /* the count must see an allocation, or it proves nothing */
    void *(*volatile allocate)(size_t) = malloc;
    arm();
    free(allocate(16));
    if (disarm() != 1) {
        fprintf(stderr, "alloc_count: the malloc replacement counts nothing\n");
        return 1;
    }
    static const struct {
        const char *spec, *schedule;
    } cases[] = {
        {"op=dw df=12 m=8 dk=3 bias=1", NULL},
        {"op=pw df=10 m=8 n=12 bias=1", NULL},
        {"op=sep df=12 m=8 n=12 dk=3 bias=1", "fuse=1,tile_h=2"},
        {"op=sep df=12 m=8 n=12 dk=3 bias=1", "fuse=0"},
        {"op=conv df=8 m=3 n=6 dk=3", NULL},
    };
    int failures = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int threads = 1; threads <= 2; threads++) {
            long made = count_runs(cases[c].spec, cases[c].schedule, threads);
            if (made != 0) {
                failures++;
                fprintf(stderr, "alloc_count: %s%s%s, threads=%d: %ld allocations in %d "
                        "runs (expected none)\n", cases[c].spec,
                        cases[c].schedule ? " schedule " : "",
                        cases[c].schedule ? cases[c].schedule : "", threads, made,
                        2 * RUNS);
            }
        }
    printf("alloc_count: %s\n", failures ? "FAILED" : "runs allocate nothing (5 kernels, "
                                                       "1 and 2 threads)");
    return failures ? 1 : 0;
}
