/*
 * fault.c -- allocation-failure injection for tests: in a build with
 * -DSEPCONV_FAULT_INJECTION every allocation inside libsepconv comes here,
 * and the n-th one after sepconv_fault_arm(n) returns NULL.  In ordinary
 * builds the two functions exist and do nothing.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "sepconv.h"
#include "core/fault.h"

/* The countdown is test-only state, touched with atomic builtins. */
static long countdown; /* 0: disarmed; else allocations until the failure */
static long made;

/* Arms the n-th allocation from now to fail (0 disarms). */
void sepconv_fault_arm(long n)
{
    __atomic_store_n(&countdown, n, __ATOMIC_SEQ_CST);
    __atomic_store_n(&made, 0, __ATOMIC_SEQ_CST);
}

/* Allocations made since arming. */
long sepconv_fault_count(void)
{
    return __atomic_load_n(&made, __ATOMIC_SEQ_CST);
}

#ifdef SEPCONV_FAULT_INJECTION
/* Whether this allocation is the one to fail. */
static int fail_now(void)
{
    __atomic_add_fetch(&made, 1, __ATOMIC_SEQ_CST);
    long left = __atomic_load_n(&countdown, __ATOMIC_SEQ_CST);
    return left > 0 && __atomic_sub_fetch(&countdown, 1, __ATOMIC_SEQ_CST) == 0;
}

void *sepconv_fault_malloc(size_t size)
{
    return fail_now() ? NULL : malloc(size);
}

void *sepconv_fault_calloc(size_t count, size_t size)
{
    return fail_now() ? NULL : calloc(count, size);
}

void *sepconv_fault_realloc(void *block, size_t size)
{
    return fail_now() ? NULL : realloc(block, size);
}

void *sepconv_fault_aligned_alloc(size_t alignment, size_t size)
{
    return fail_now() ? NULL : aligned_alloc(alignment, size);
}

char *sepconv_fault_strdup(const char *text)
{
    return fail_now() ? NULL : strdup(text);
}
#endif
