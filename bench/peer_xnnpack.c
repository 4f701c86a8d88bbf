/*
 * peer_xnnpack.c -- XNNPACK (Debian's libxnnpack-dev) as a benchmark peer:
 * depthwise and pointwise as NHWC convolution operators, sep as the two in
 * sequence through an intermediate buffer.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthreadpool.h>
#include <xnnpack.h>

#include "bench.h"

typedef struct xnn_state {
    xnn_operator_t ops[2];
    int count;
    pthreadpool_t pool;
    float *intermediate, *pw_weights;
} xnn_state;

/* Runs the operators in order. */
static void xnn_run(void *opaque)
{
    xnn_state *s = opaque;
    for (int i = 0; i < s->count; i++)
        xnn_run_operator(s->ops[i], s->pool);
}

static void xnn_destroy(void *opaque)
{
    xnn_state *s = opaque;
    for (int i = 0; i < s->count; i++)
        xnn_delete_operator(s->ops[i]);
    if (s->pool)
        pthreadpool_destroy(s->pool);
    free(s->intermediate);
    free(s->pw_weights);
    free(s);
}

/* The clamp of an activation. */
static void clamp(sepconv_activation act, float *low, float *high)
{
    *low = act == SEPCONV_ACT_NONE ? -INFINITY : 0.0f;
    *high = act == SEPCONV_ACT_RELU6 ? 6.0f : INFINITY;
}

/* Creates and sets up the depthwise operator of `l`. */
static bool make_depthwise(const sepconv_layer *l, const float *w, const float *b,
                           const float *in, float *out, xnn_state *s)
{
    float low, high;
    clamp(l->dw_act, &low, &high);
    xnn_operator_t op = NULL;
    if (xnn_create_convolution2d_nhwc_f32(
            (uint32_t)l->pad_top, (uint32_t)l->pad_right, (uint32_t)l->pad_bottom,
            (uint32_t)l->pad_left, (uint32_t)l->kernel, (uint32_t)l->kernel,
            (uint32_t)l->stride, (uint32_t)l->stride, (uint32_t)l->dilation,
            (uint32_t)l->dilation, (uint32_t)l->m, 1, (size_t)l->multiplier, (size_t)l->m,
            (size_t)l->mid_c, w, b, low, high, XNN_FLAG_DEPTHWISE_CONVOLUTION, &op) !=
        xnn_status_success)
        return false;
    s->ops[s->count++] = op;
    return xnn_setup_convolution2d_nhwc_f32(op, (size_t)l->batch, (size_t)l->in_h,
                                            (size_t)l->in_w, in, out, s->pool) ==
           xnn_status_success;
}

/* Creates and sets up the pointwise operator: M -> N over h x w. */
static bool make_pointwise(const sepconv_layer *l, int64_t h, int64_t w_, int64_t m,
                           sepconv_activation act, const float *w, const float *b,
                           const float *in, float *out, xnn_state *s)
{
    /* XNNPACK wants OHWI: [n][m]; the nhwc spec gives [m][n] */
    s->pw_weights = malloc((size_t)(m * l->n) * sizeof(float));
    if (!s->pw_weights)
        return false;
    for (int64_t i = 0; i < m; i++)
        for (int64_t o = 0; o < l->n; o++)
            s->pw_weights[o * m + i] = w[i * l->n + o];
    float low, high;
    clamp(act, &low, &high);
    xnn_operator_t op = NULL;
    if (xnn_create_convolution2d_nhwc_f32(0, 0, 0, 0, 1, 1, (uint32_t)l->stride,
                                          (uint32_t)l->stride, 1, 1, 1, (size_t)m,
                                          (size_t)l->n, (size_t)m, (size_t)l->n,
                                          s->pw_weights, b, low, high, 0, &op) !=
        xnn_status_success)
        return false;
    s->ops[s->count++] = op;
    return xnn_setup_convolution2d_nhwc_f32(op, (size_t)l->batch, (size_t)h, (size_t)w_,
                                            in, out, s->pool) == xnn_status_success;
}

/* Makes an XNNPACK runner for a dw, pw or sep layer in NHWC. */
static bool xnn_make(const bench_data *data, int threads, runner *out, char *why,
                     size_t capacity)
{
    static bool initialized;
    const sepconv_layer *l = data->layer;
    const sepconv_buffers *b = &data->buffers;
    if (!initialized && xnn_initialize(NULL) != xnn_status_success) {
        snprintf(why, capacity, "xnn_initialize failed");
        return false;
    }
    initialized = true;
    if (l->layout != SEPCONV_LAYOUT_NHWC || l->op == SEPCONV_OP_CONV ||
        (l->op == SEPCONV_OP_PW && (l->pad_top || l->pad_left))) {
        snprintf(why, capacity, "XNNPACK takes NHWC dw/pw here");
        return false;
    }
    xnn_state *s = calloc(1, sizeof *s);
    if (!s)
        return false;
    s->pool = threads == 1 ? NULL : pthreadpool_create((size_t)threads);
    bool ok;
    if (l->op == SEPCONV_OP_DW) {
        ok = make_depthwise(l, b->weights, b->bias, b->input, b->output, s);
    } else if (l->op == SEPCONV_OP_PW) {
        ok = make_pointwise(l, l->in_h, l->in_w, l->m, l->pw_act, b->weights, b->bias,
                            b->input, b->output, s);
    } else {
        s->intermediate = malloc((size_t)l->mid_elements * sizeof(float));
        sepconv_layer pw = *l;
        pw.stride = 1;
        ok = s->intermediate && make_depthwise(l, b->weights, b->bias, b->input,
                                               s->intermediate, s) &&
             make_pointwise(&pw, l->out_h, l->out_w, l->mid_c, l->pw_act, b->pw_weights,
                            b->pw_bias, s->intermediate, b->output, s);
    }
    if (!ok) {
        snprintf(why, capacity, "XNNPACK refused the operator");
        xnn_destroy(s);
        return false;
    }
    snprintf(out->name, sizeof out->name, "xnnpack");
    out->state = s;
    out->run = xnn_run;
    out->destroy = xnn_destroy;
    out->output = b->output;
    return true;
}

const peer bench_peer_xnnpack = {"xnnpack", xnn_make};
