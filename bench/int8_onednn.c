/*
 * int8_onednn.c -- oneDNN (Debian's libdnnl-dev, C API 2.x) as the int8
 * benchmark's second peer: an s8 x s8 convolution with per-channel output
 * scales (in_scale * weight_scale[c] / out_scale), the input and output
 * zero points as runtime attributes, an s32 bias added to the accumulator,
 * and ReLU/ReLU6 as an eltwise post-op in units of the output scale, before
 * the output zero point is added.  oneDNN rounds in float, not with TFLite's
 * fixed-point multiplier; and on a CPU without VNNI its s8 x s8 kernels
 * compute with the weights halved (to keep vpmaddubsw's int16 pair sums
 * from saturating) and the output scale doubled, so a weight may be off by
 * one: bench/int8.c checks its outputs within the bound that follows.
 */
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#include "int8_onednn.h"

struct int8_onednn {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_t primitive;
    dnnl_memory_t src, weights, bias, dst, src_zero, dst_zero;
    int32_t zeros[2]; /* in, out: what src_zero and dst_zero hold */
    char impl[96];
};

/* True if `status` is success; otherwise names the failed step in `why`. */
static bool check(dnnl_status_t status, const char *step, char *why, size_t capacity)
{
    if (status != dnnl_success)
        snprintf(why, capacity, "oneDNN refused %s (status %d)", step, (int)status);
    return status == dnnl_success;
}

/* The primitive's attributes: output scales, zero points, activation. */
static bool make_attr(const sepconv_layer *l, const float *weight_scales,
                      dnnl_primitive_attr_t attr, char *why, size_t capacity)
{
    const int64_t c = l->out_c;
    float *scales = malloc((size_t)c * sizeof *scales);
    if (!scales) {
        snprintf(why, capacity, "out of memory for %lld output scales", (long long)c);
        return false;
    }
    for (int64_t i = 0; i < c; i++)
        scales[i] = l->quant.in_scale * weight_scales[i] / l->quant.out_scale;
    const int32_t runtime = DNNL_RUNTIME_S32_VAL;
    const sepconv_activation act = l->op == SEPCONV_OP_DW ? l->dw_act : l->pw_act;
    dnnl_post_ops_t post = NULL;
    bool ok = check(dnnl_primitive_attr_set_output_scales(attr, c, 1 << 1, scales),
                    "per-channel output scales", why, capacity) &&
              check(dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_SRC, 1, 0, &runtime),
                    "an input zero point", why, capacity) &&
              check(dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_DST, 1, 0, &runtime),
                    "an output zero point", why, capacity) &&
              check(dnnl_post_ops_create(&post), "post-ops", why, capacity);
    /* the activation's bounds in output units, before the zero point */
    if (ok && act == SEPCONV_ACT_RELU)
        ok = check(dnnl_post_ops_append_eltwise(post, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f),
                   "a ReLU post-op", why, capacity);
    if (ok && act == SEPCONV_ACT_RELU6)
        ok = check(dnnl_post_ops_append_eltwise(post, 1.0f, dnnl_eltwise_clip, 0.0f,
                                                6.0f / l->quant.out_scale),
                   "a ReLU6 post-op", why, capacity);
    ok = ok && check(dnnl_primitive_attr_set_post_ops(attr, post), "post-ops", why, capacity);
    if (post)
        dnnl_post_ops_destroy(post);
    free(scales);
    return ok;
}

/* Copies sepconv's weights into the layout the primitive chose. */
static bool reorder_weights(int8_onednn *d, const dnnl_memory_desc_t *user_md,
                            const dnnl_memory_desc_t *chosen, const int8_t *weights,
                            char *why, size_t capacity)
{
    dnnl_memory_t user = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t reorder = NULL;
    bool ok = check(dnnl_memory_create(&user, user_md, d->engine, (void *)weights),
                    "the weights", why, capacity) &&
              check(dnnl_memory_create(&d->weights, chosen, d->engine, DNNL_MEMORY_ALLOCATE),
                    "the reordered weights", why, capacity) &&
              check(dnnl_reorder_primitive_desc_create(&pd, user_md, d->engine, chosen,
                                                       d->engine, NULL),
                    "the weight reorder", why, capacity) &&
              check(dnnl_primitive_create(&reorder, pd), "the weight reorder", why, capacity);
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, d->weights}};
        ok = check(dnnl_primitive_execute(reorder, d->stream, 2, args), "the weight reorder",
                   why, capacity) &&
             check(dnnl_stream_wait(d->stream), "the weight reorder", why, capacity);
    }
    if (reorder)
        dnnl_primitive_destroy(reorder);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (user)
        dnnl_memory_destroy(user);
    return ok;
}

int8_onednn *int8_onednn_make(const sepconv_layer *l, const int8_t *input,
                              const int8_t *weights, const int32_t *bias,
                              const float *weight_scales, int8_t *output, char *why,
                              size_t capacity)
{
    const bool dw = l->op == SEPCONV_OP_DW;
    if (l->layout != SEPCONV_LAYOUT_NHWC || (!dw && l->op != SEPCONV_OP_PW) ||
        (dw && l->out_c != l->m)) {
        snprintf(why, capacity, "the oneDNN peer runs NHWC dw (multiplier 1) and pw layers");
        return NULL;
    }
    int8_onednn *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(why, capacity, "out of memory");
        return NULL;
    }
    const int64_t k = dw ? l->kernel : 1;
    dnnl_dims_t src_dims = {l->batch, l->m, l->in_h, l->in_w};
    dnnl_dims_t dst_dims = {l->batch, l->out_c, l->out_h, l->out_w};
    dnnl_dims_t bias_dims = {l->out_c}, one = {1};
    /* sepconv's weights: dw [k][k][c] = hwigo over {c,1,1,k,k}; pw [m][n] = hwio */
    dnnl_dims_t w_dims_dw = {l->m, 1, 1, k, k}, w_dims_pw = {l->n, l->m, 1, 1};
    const int w_rank = dw ? 5 : 4;
    int64_t *w_dims = dw ? w_dims_dw : w_dims_pw;
    dnnl_memory_desc_t src_md, dst_md, bias_md, zero_md, user_w_md, any_w_md;
    bool ok =
        check(dnnl_engine_create(&d->engine, dnnl_cpu, 0), "an engine", why, capacity) &&
        check(dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags),
              "a stream", why, capacity) &&
        check(dnnl_memory_desc_init_by_tag(&src_md, 4, src_dims, dnnl_s8, dnnl_nhwc),
              "the input", why, capacity) &&
        check(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, dnnl_s8, dnnl_nhwc),
              "the output", why, capacity) &&
        check(dnnl_memory_desc_init_by_tag(&bias_md, 1, bias_dims, dnnl_s32, dnnl_x),
              "the bias", why, capacity) &&
        check(dnnl_memory_desc_init_by_tag(&zero_md, 1, one, dnnl_s32, dnnl_x),
              "a zero point", why, capacity) &&
        check(dnnl_memory_desc_init_by_tag(&user_w_md, w_rank, w_dims, dnnl_s8,
                                           dw ? dnnl_hwigo : dnnl_hwio),
              "the weights", why, capacity) &&
        check(dnnl_memory_desc_init_by_tag(&any_w_md, w_rank, w_dims, dnnl_s8,
                                           dnnl_format_tag_any),
              "the weights", why, capacity);
    dnnl_dims_t strides = {l->stride, l->stride};
    dnnl_dims_t dilates = {l->dilation - 1, l->dilation - 1};
    dnnl_dims_t pad_l = {l->pad_top, l->pad_left}, pad_r = {l->pad_bottom, l->pad_right};
    dnnl_convolution_desc_t desc;
    ok = ok && check(dnnl_dilated_convolution_forward_desc_init(
                         &desc, dnnl_forward_inference, dnnl_convolution_direct, &src_md,
                         &any_w_md, l->bias ? &bias_md : NULL, &dst_md, strides, dilates,
                         pad_l, pad_r),
                     "the convolution's shape", why, capacity);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    ok = ok && check(dnnl_primitive_attr_create(&attr), "attributes", why, capacity) &&
         make_attr(l, weight_scales, attr, why, capacity) &&
         check(dnnl_primitive_desc_create(&pd, &desc, attr, d->engine, NULL),
               "an s8 convolution with these attributes", why, capacity);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (ok) {
        const char *impl = NULL;
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        snprintf(d->impl, sizeof d->impl, "%s", impl ? impl : "?");
    }
    d->zeros[0] = l->quant.in_zero, d->zeros[1] = l->quant.out_zero;
    ok = ok &&
         reorder_weights(d, &user_w_md, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0),
                         weights, why, capacity) &&
         check(dnnl_memory_create(&d->src, &src_md, d->engine, (void *)input), "the input",
               why, capacity) &&
         check(dnnl_memory_create(&d->dst, &dst_md, d->engine, output), "the output", why,
               capacity) &&
         (!l->bias || check(dnnl_memory_create(&d->bias, &bias_md, d->engine, (void *)bias),
                            "the bias", why, capacity)) &&
         check(dnnl_memory_create(&d->src_zero, &zero_md, d->engine, &d->zeros[0]),
               "the input zero point", why, capacity) &&
         check(dnnl_memory_create(&d->dst_zero, &zero_md, d->engine, &d->zeros[1]),
               "the output zero point", why, capacity) &&
         check(dnnl_primitive_create(&d->primitive, pd), "the convolution", why, capacity);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (!ok) {
        int8_onednn_free(d);
        return NULL;
    }
    return d;
}

void int8_onednn_run(int8_onednn *d)
{
    dnnl_exec_arg_t args[6] = {{DNNL_ARG_SRC, d->src},
                               {DNNL_ARG_WEIGHTS, d->weights},
                               {DNNL_ARG_DST, d->dst},
                               {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, d->src_zero},
                               {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST, d->dst_zero},
                               {DNNL_ARG_BIAS, d->bias}};
    dnnl_primitive_execute(d->primitive, d->stream, d->bias ? 6 : 5, args);
    dnnl_stream_wait(d->stream);
}

const char *int8_onednn_impl(const int8_onednn *d)
{
    return d->impl;
}

void int8_onednn_free(int8_onednn *d)
{
    if (!d)
        return;
    dnnl_memory_t memories[6] = {d->src, d->weights, d->bias, d->dst, d->src_zero, d->dst_zero};
    for (int i = 0; i < 6; i++)
        if (memories[i])
            dnnl_memory_destroy(memories[i]);
    if (d->primitive)
        dnnl_primitive_destroy(d->primitive);
    if (d->stream)
        dnnl_stream_destroy(d->stream);
    if (d->engine)
        dnnl_engine_destroy(d->engine);
    free(d);
}
