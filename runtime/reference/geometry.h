/*
 * geometry.h -- the shape of a reference stage (a dense or depthwise
 * convolution with everything resolved) and the strides of its tensors,
 * shared by the float and the int8 reference loops.
 */
#ifndef SEPCONV_REFERENCE_GEOMETRY_H
#define SEPCONV_REFERENCE_GEOMETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "sepconv.h"

/* One convolution stage's sizes, padding, layout and activation. */
typedef struct sepconv_ref_stage {
    int64_t batch, in_h, in_w, in_c, out_h, out_w, out_c;
    int64_t kernel, stride, dilation, pad_top, pad_left, multiplier;
    bool depthwise, bias;
    sepconv_layout layout;
    sepconv_activation act;
} sepconv_ref_stage;

/* Element strides of a 4-d activation tensor. */
typedef struct sepconv_ref_strides {
    int64_t n, h, w, c;
} sepconv_ref_strides;

/* Strides of a batch x h x w x c tensor stored in `layout`. */
sepconv_ref_strides sepconv_ref_tensor_strides(sepconv_layout layout, int64_t h, int64_t w,
                                               int64_t c);

/* Weight strides (ky, kx, input channel, output channel) of a stage. */
void sepconv_ref_weight_strides(const sepconv_ref_stage *s, int64_t *ky, int64_t *kx,
                                int64_t *ci, int64_t *co);

/* The element offset of pixel (n, iy, ix) for output (oy, ox)'s tap
 * (ky, kx), channel 0, in a tensor of strides `in`; -1 when the tap reads
 * padding. */
int64_t sepconv_ref_tap(const sepconv_ref_stage *s, const sepconv_ref_strides *in, int64_t n,
                        int64_t oy, int64_t ox, int64_t ky, int64_t kx);

/* The input channels output channel `oc` reads: [*first, *last). */
void sepconv_ref_channels(const sepconv_ref_stage *s, int64_t oc, int64_t *first,
                          int64_t *last);

/* The first (or only) stage of a layer: conv, dw, or pw as a 1x1 conv. */
sepconv_ref_stage sepconv_ref_first_stage(const sepconv_layer *layer);

/* The pointwise stage of sep: 1x1, stride 1, over the depthwise output. */
sepconv_ref_stage sepconv_ref_second_stage(const sepconv_layer *layer);

/* The name of the first tensor the layer needs that is NULL, or NULL. */
const char *sepconv_ref_missing_tensor(const sepconv_layer *layer, const void *input,
                                       const void *weights, const void *bias,
                                       const void *pw_weights, const void *pw_bias);

#endif
