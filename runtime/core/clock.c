/*
 * clock.c -- the one clock libsepconv times with.
 */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "core/core.h"

/* Seconds on the monotonic clock. */
double sepconv_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}
