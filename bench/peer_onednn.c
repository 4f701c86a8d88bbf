/*
 * peer_onednn.c -- oneDNN (Debian's libdnnl-dev, C API 2.x) as a benchmark
 * peer: depthwise as a grouped convolution, pointwise as a 1x1 convolution,
 * weights reordered once into the layout oneDNN picks, activations as
 * eltwise post-ops; sep as the two in sequence.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#include "bench.h"

typedef struct conv {
    dnnl_primitive_t primitive;
    dnnl_memory_t src, weights, bias, dst;
} conv;

typedef struct dnnl_state {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    conv convs[2];
    int count;
    float *intermediate;
} dnnl_state;

/* Runs the convolutions in order. */
static void dnnl_run(void *opaque)
{
    dnnl_state *s = opaque;
    for (int i = 0; i < s->count; i++) {
        conv *c = &s->convs[i];
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, c->src}, {DNNL_ARG_WEIGHTS, c->weights},
                                   {DNNL_ARG_DST, c->dst}, {DNNL_ARG_BIAS, c->bias}};
        dnnl_primitive_execute(c->primitive, s->stream, c->bias ? 4 : 3, args);
    }
    dnnl_stream_wait(s->stream);
}

static void dnnl_destroy(void *opaque)
{
    dnnl_state *s = opaque;
    for (int i = 0; i < s->count; i++) {
        conv *c = &s->convs[i];
        dnnl_primitive_destroy(c->primitive);
        dnnl_memory_destroy(c->src);
        dnnl_memory_destroy(c->weights);
        if (c->bias)
            dnnl_memory_destroy(c->bias);
        dnnl_memory_destroy(c->dst);
    }
    if (s->stream)
        dnnl_stream_destroy(s->stream);
    if (s->engine)
        dnnl_engine_destroy(s->engine);
    free(s->intermediate);
    free(s);
}

/* One convolution's shape. */
typedef struct conv_shape {
    int64_t batch, in_c, in_h, in_w, out_c, out_h, out_w, kernel, stride, dilation;
    int64_t pad[4]; /* top, left, bottom, right */
    int64_t groups; /* 1, or in_c for depthwise */
    sepconv_activation act;
} conv_shape;

/* Builds one convolution on user buffers; weights are reordered once. */
static bool make_conv(dnnl_state *s, const conv_shape *k, const float *src, const float *w,
                      const float *b, float *dst)
{
    conv *c = &s->convs[s->count];
    memset(c, 0, sizeof *c);
    dnnl_memory_desc_t src_md, dst_md, bias_md, user_w_md, any_w_md;
    dnnl_dims_t src_dims = {k->batch, k->in_c, k->in_h, k->in_w};
    dnnl_dims_t dst_dims = {k->batch, k->out_c, k->out_h, k->out_w};
    dnnl_dims_t bias_dims = {k->out_c};
    bool grouped = k->groups > 1;
    dnnl_dims_t w_dims = {k->groups, k->out_c / k->groups, k->in_c / k->groups, k->kernel,
                          k->kernel};
    dnnl_dims_t w_plain = {k->out_c, k->in_c, k->kernel, k->kernel};
    bool ok = dnnl_memory_desc_init_by_tag(&src_md, 4, src_dims, dnnl_f32, dnnl_nhwc) == 0 &&
              dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, dnnl_f32, dnnl_nhwc) == 0 &&
              dnnl_memory_desc_init_by_tag(&bias_md, 1, bias_dims, dnnl_f32, dnnl_x) == 0;
    /* the spec's nhwc weights: dw [k][k][m][mult] = hwigo, pw/conv [k][k][m][n] = hwio */
    ok = ok && (grouped ? dnnl_memory_desc_init_by_tag(&user_w_md, 5, w_dims, dnnl_f32, dnnl_hwigo)
                        : dnnl_memory_desc_init_by_tag(&user_w_md, 4, w_plain, dnnl_f32, dnnl_hwio)) == 0;
    ok = ok && (grouped ? dnnl_memory_desc_init_by_tag(&any_w_md, 5, w_dims, dnnl_f32, dnnl_format_tag_any)
                        : dnnl_memory_desc_init_by_tag(&any_w_md, 4, w_plain, dnnl_f32, dnnl_format_tag_any)) == 0;
    dnnl_dims_t strides = {k->stride, k->stride}, dilates = {k->dilation - 1, k->dilation - 1};
    dnnl_dims_t pad_l = {k->pad[0], k->pad[1]}, pad_r = {k->pad[2], k->pad[3]};
    dnnl_convolution_desc_t desc;
    ok = ok && dnnl_dilated_convolution_forward_desc_init(
                   &desc, dnnl_forward_inference, dnnl_convolution_direct, &src_md, &any_w_md,
                   b ? &bias_md : NULL, &dst_md, strides, dilates, pad_l, pad_r) == 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post = NULL;
    ok = ok && dnnl_primitive_attr_create(&attr) == 0 && dnnl_post_ops_create(&post) == 0;
    if (ok && k->act == SEPCONV_ACT_RELU)
        ok = dnnl_post_ops_append_eltwise(post, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f) == 0;
    if (ok && k->act == SEPCONV_ACT_RELU6)
        ok = dnnl_post_ops_append_eltwise(post, 1.0f, dnnl_eltwise_clip, 0.0f, 6.0f) == 0;
    ok = ok && dnnl_primitive_attr_set_post_ops(attr, post) == 0;
    dnnl_primitive_desc_t pd = NULL;
    ok = ok && dnnl_primitive_desc_create(&pd, &desc, attr, s->engine, NULL) == 0;
    if (post)
        dnnl_post_ops_destroy(post);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (!ok)
        return false;
    const dnnl_memory_desc_t *chosen = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_t user_w = NULL;
    dnnl_primitive_desc_t reorder_pd = NULL;
    dnnl_primitive_t reorder = NULL;
    ok = dnnl_memory_create(&c->src, &src_md, s->engine, (void *)src) == 0 &&
         dnnl_memory_create(&c->dst, &dst_md, s->engine, dst) == 0 &&
         (!b || dnnl_memory_create(&c->bias, &bias_md, s->engine, (void *)b) == 0) &&
         dnnl_memory_create(&user_w, &user_w_md, s->engine, (void *)w) == 0 &&
         dnnl_memory_create(&c->weights, chosen, s->engine, DNNL_MEMORY_ALLOCATE) == 0 &&
         dnnl_reorder_primitive_desc_create(&reorder_pd, &user_w_md, s->engine, chosen,
                                            s->engine, NULL) == 0 &&
         dnnl_primitive_create(&reorder, reorder_pd) == 0;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, user_w}, {DNNL_ARG_TO, c->weights}};
        ok = dnnl_primitive_execute(reorder, s->stream, 2, args) == 0 &&
             dnnl_stream_wait(s->stream) == 0;
    }
    ok = ok && dnnl_primitive_create(&c->primitive, pd) == 0;
    if (reorder)
        dnnl_primitive_destroy(reorder);
    if (reorder_pd)
        dnnl_primitive_desc_destroy(reorder_pd);
    if (user_w)
        dnnl_memory_destroy(user_w);
    dnnl_primitive_desc_destroy(pd);
    if (ok)
        s->count++;
    return ok;
}

/* The shape of a layer's depthwise stage. */
static conv_shape depthwise_shape(const sepconv_layer *l)
{
    return (conv_shape){l->batch, l->m, l->in_h, l->in_w, l->mid_c, l->out_h, l->out_w,
                        l->kernel, l->stride, l->dilation,
                        {l->pad_top, l->pad_left, l->pad_bottom, l->pad_right}, l->m,
                        l->dw_act};
}

/* The shape of a pointwise stage over h x w x m. */
static conv_shape pointwise_shape(const sepconv_layer *l, int64_t h, int64_t w, int64_t m,
                                  int64_t stride)
{
    return (conv_shape){l->batch, m, h, w, l->n, l->out_h, l->out_w, 1, stride, 1,
                        {0, 0, 0, 0}, 1, l->pw_act};
}

/* Makes a oneDNN runner for a dw, pw or sep layer in NHWC. */
static bool onednn_make(const bench_data *data, int threads, runner *out, char *why,
                        size_t capacity)
{
    const sepconv_layer *l = data->layer;
    const sepconv_buffers *b = &data->buffers;
    (void)threads; /* oneDNN's OpenMP threads follow OMP_NUM_THREADS */
    if (l->layout != SEPCONV_LAYOUT_NHWC || l->op == SEPCONV_OP_CONV ||
        (l->op == SEPCONV_OP_PW && (l->pad_top || l->pad_left))) {
        snprintf(why, capacity, "oneDNN runs NHWC dw/pw here");
        return false;
    }
    dnnl_state *s = calloc(1, sizeof *s);
    if (!s)
        return false;
    bool ok = dnnl_engine_create(&s->engine, dnnl_cpu, 0) == 0 &&
              dnnl_stream_create(&s->stream, s->engine, dnnl_stream_default_flags) == 0;
    if (ok && l->op == SEPCONV_OP_DW) {
        conv_shape k = depthwise_shape(l);
        ok = make_conv(s, &k, b->input, b->weights, b->bias, b->output);
    } else if (ok && l->op == SEPCONV_OP_PW) {
        conv_shape k = pointwise_shape(l, l->in_h, l->in_w, l->m, l->stride);
        ok = make_conv(s, &k, b->input, b->weights, b->bias, b->output);
    } else if (ok) {
        s->intermediate = malloc((size_t)l->mid_elements * sizeof(float));
        conv_shape dw = depthwise_shape(l);
        conv_shape pw = pointwise_shape(l, l->out_h, l->out_w, l->mid_c, 1);
        ok = s->intermediate &&
             make_conv(s, &dw, b->input, b->weights, b->bias, s->intermediate) &&
             make_conv(s, &pw, s->intermediate, b->pw_weights, b->pw_bias, b->output);
    }
    if (!ok) {
        snprintf(why, capacity, "oneDNN refused the primitive");
        dnnl_destroy(s);
        return false;
    }
    snprintf(out->name, sizeof out->name, "onednn");
    out->state = s;
    out->run = dnnl_run;
    out->destroy = dnnl_destroy;
    out->output = b->output;
    return true;
}

const peer bench_peer_onednn = {"onednn", onednn_make};
