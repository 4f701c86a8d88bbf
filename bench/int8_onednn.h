/*
 * int8_onednn.h -- oneDNN's s8 convolution as a peer of the int8 benchmark
 * (bench/int8.c).  Built with HAVE_ONEDNN; without it the peer is absent:
 * int8_onednn_make says so and returns NULL.
 */
#ifndef SEPCONV_BENCH_INT8_ONEDNN_H
#define SEPCONV_BENCH_INT8_ONEDNN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sepconv.h"

/* One oneDNN convolution bound to its buffers. */
typedef struct int8_onednn int8_onednn;

#ifdef HAVE_ONEDNN
/* Makes oneDNN's s8 convolution of an int8 NHWC dw or pw layer on fixed
 * buffers (weights in sepconv's layout, per-channel weight scales), or
 * returns NULL and says why in `why`. */
int8_onednn *int8_onednn_make(const sepconv_layer *l, const int8_t *input,
                              const int8_t *weights, const int32_t *bias,
                              const float *weight_scales, int8_t *output, char *why,
                              size_t capacity);
/* Runs the convolution once, to completion. */
void int8_onednn_run(int8_onednn *d);
/* The implementation oneDNN chose, as it names it ("jit_int8:avx2", ...). */
const char *int8_onednn_impl(const int8_onednn *d);
/* Releases everything; NULL is a no-op. */
void int8_onednn_free(int8_onednn *d);
#else
static inline int8_onednn *int8_onednn_make(const sepconv_layer *l, const int8_t *input,
                                            const int8_t *weights, const int32_t *bias,
                                            const float *weight_scales, int8_t *output,
                                            char *why, size_t capacity)
{
    (void)l, (void)input, (void)weights, (void)bias, (void)weight_scales, (void)output;
    snprintf(why, capacity, "built without oneDNN (libdnnl-dev)");
    return NULL;
}
static inline void int8_onednn_run(int8_onednn *d) { (void)d; }
static inline const char *int8_onednn_impl(const int8_onednn *d) { (void)d; return "-"; }
static inline void int8_onednn_free(int8_onednn *d) { (void)d; }
#endif

#endif /* SEPCONV_BENCH_INT8_ONEDNN_H */
