/*
 * bench.h -- what the benchmark's implementations share: a runner computes
 * one layer on buffers fixed when it was made.
 */
#ifndef SEPCONV_BENCH_H
#define SEPCONV_BENCH_H

#include <stdbool.h>

#include "sepconv.h"

/* One implementation of one layer, bound to its buffers. */
typedef struct runner {
    char name[48];
    void *state;
    void (*run)(void *state);
    void (*destroy)(void *state);
    const float *output; /* where run() writes */
} runner;

/* The buffers of one layer (weights in the layout the spec documents). */
typedef struct bench_data {
    const sepconv_layer *layer;
    sepconv_buffers buffers;
} bench_data;

/* A peer: makes a runner for a dw, pw or sep layer (sep as dw then pw), or
 * says why it cannot (fills `why`).  `threads` is the thread count. */
typedef bool (*peer_make)(const bench_data *data, int threads, runner *out, char *why,
                          size_t capacity);

/* A peer library built into this benchmark. */
typedef struct peer {
    const char *name;
    peer_make make;
} peer;

extern const peer bench_peer_xnnpack, bench_peer_onednn;

#endif /* SEPCONV_BENCH_H */
