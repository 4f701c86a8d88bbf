/*
 * geometry.c -- a reference stage's shape from a layer, and the strides of
 * its tensors (the layout only changes these).
 */
#include "reference/geometry.h"

/* Strides of a batch x h x w x c tensor stored in `layout`. */
sepconv_ref_strides sepconv_ref_tensor_strides(sepconv_layout layout, int64_t h, int64_t w,
                                               int64_t c)
{
    if (layout == SEPCONV_LAYOUT_NHWC)
        return (sepconv_ref_strides){h * w * c, w * c, c, 1};
    return (sepconv_ref_strides){c * h * w, w, 1, h * w};
}

/* Weight strides (ky, kx, input channel, output channel) of a stage. */
void sepconv_ref_weight_strides(const sepconv_ref_stage *s, int64_t *ky, int64_t *kx,
                                int64_t *ci, int64_t *co)
{
    int64_t k = s->kernel;
    if (s->depthwise) { /* nhwc [k][k][m][mult] = [k][k][oc]; nchw [oc][1][k][k] */
        bool nhwc = s->layout == SEPCONV_LAYOUT_NHWC;
        *ky = nhwc ? k * s->out_c : k;
        *kx = nhwc ? s->out_c : 1;
        *ci = 0;
        *co = nhwc ? 1 : k * k;
    } else if (s->layout == SEPCONV_LAYOUT_NHWC) { /* [k][k][m][n] */
        *ky = k * s->in_c * s->out_c;
        *kx = s->in_c * s->out_c;
        *ci = s->out_c;
        *co = 1;
    } else { /* [n][m][k][k] */
        *ky = k;
        *kx = 1;
        *ci = k * k;
        *co = s->in_c * k * k;
    }
}

/* Where a tap reads, or -1 for padding. */
int64_t sepconv_ref_tap(const sepconv_ref_stage *s, const sepconv_ref_strides *in, int64_t n,
                        int64_t oy, int64_t ox, int64_t ky, int64_t kx)
{
    int64_t iy = oy * s->stride - s->pad_top + ky * s->dilation;
    int64_t ix = ox * s->stride - s->pad_left + kx * s->dilation;
    if (iy < 0 || iy >= s->in_h || ix < 0 || ix >= s->in_w)
        return -1;
    return n * in->n + iy * in->h + ix * in->w;
}

/* The input channels of an output channel: one (depthwise) or all. */
void sepconv_ref_channels(const sepconv_ref_stage *s, int64_t oc, int64_t *first,
                          int64_t *last)
{
    *first = s->depthwise ? oc / s->multiplier : 0;
    *last = s->depthwise ? *first + 1 : s->in_c;
}

/* The first (or only) stage of a layer: conv, dw, or pw as a 1x1 conv. */
sepconv_ref_stage sepconv_ref_first_stage(const sepconv_layer *layer)
{
    bool depthwise = layer->op == SEPCONV_OP_DW || layer->op == SEPCONV_OP_SEP;
    sepconv_activation act = layer->op == SEPCONV_OP_CONV ? layer->conv_act
                             : layer->op == SEPCONV_OP_PW ? layer->pw_act
                                                          : layer->dw_act;
    return (sepconv_ref_stage){
        .batch = layer->batch, .in_h = layer->in_h, .in_w = layer->in_w,
        .in_c = layer->m, .out_h = layer->out_h, .out_w = layer->out_w,
        .out_c = depthwise ? layer->mid_c : layer->n, .kernel = layer->kernel,
        .stride = layer->stride, .dilation = layer->dilation,
        .pad_top = layer->pad_top, .pad_left = layer->pad_left,
        .multiplier = layer->multiplier, .depthwise = depthwise, .bias = layer->bias,
        .layout = layer->layout, .act = act};
}

/* The pointwise stage of sep: 1x1, stride 1, over the depthwise output. */
sepconv_ref_stage sepconv_ref_second_stage(const sepconv_layer *layer)
{
    return (sepconv_ref_stage){
        .batch = layer->batch, .in_h = layer->out_h, .in_w = layer->out_w,
        .in_c = layer->mid_c, .out_h = layer->out_h, .out_w = layer->out_w,
        .out_c = layer->n, .kernel = 1, .stride = 1, .dilation = 1,
        .multiplier = 1, .depthwise = false, .bias = layer->bias, .layout = layer->layout,
        .act = layer->pw_act};
}

/* The first tensor the layer needs that was not given. */
const char *sepconv_ref_missing_tensor(const sepconv_layer *layer, const void *input,
                                       const void *weights, const void *bias,
                                       const void *pw_weights, const void *pw_bias)
{
    const char *missing = !input ? "input" : !weights ? "weights"
                          : layer->bias && !bias ? "bias" : NULL;
    if (!missing && layer->op == SEPCONV_OP_SEP)
        missing = !pw_weights ? "pw_weights" : layer->bias && !pw_bias ? "pw_bias" : NULL;
    return missing;
}
