/*
 * cost.c -- what a layer costs: multiply-adds, parameters, bytes moved.
 */
#include <string.h>

#include "core/core.h"

/* The product of `count` factors, or false on overflow. */
static bool product(const int64_t *factors, int count, int64_t *out)
{
    int64_t result = 1;
    for (int i = 0; i < count; i++)
        if (!sepconv_mul(result, factors[i], &result))
            return false;
    *out = result;
    return true;
}

/* Counts multiply-adds, parameters and activation traffic of a layer. */
sepconv_status sepconv_cost_compute(const sepconv_layer *layer,
                                    sepconv_cost *cost, sepconv_error *error)
{
    if (!layer || !cost)
        return sepconv_fail(error, SEPCONV_INVALID, "no layer or no cost given");
    memset(cost, 0, sizeof *cost);
    /* an activation's bytes: fp32 4, int8 1 */
    const int64_t bytes = layer->dtype == SEPCONV_DTYPE_INT8 ? 1 : (int64_t)sizeof(float);
    int64_t pixels_factors[] = {layer->batch, layer->out_h, layer->out_w};
    int64_t pixels = 0, taps = 0;
    bool ok = product(pixels_factors, 3, &pixels) &&
              sepconv_mul(layer->kernel, layer->kernel, &taps);
    /* one output pixel of each stage costs taps*mid_c (dw), mid_c*n (pw),
     * taps*m*n (conv) multiply-adds */
    int64_t dw_per_pixel = 0, pw_per_pixel = 0, conv_per_pixel = 0;
    ok = ok && sepconv_mul(taps, layer->mid_c, &dw_per_pixel) &&
         sepconv_mul(layer->mid_c, layer->n, &pw_per_pixel) &&
         sepconv_mul(taps, layer->m, &conv_per_pixel) &&
         sepconv_mul(conv_per_pixel, layer->n, &conv_per_pixel);
    switch (layer->op) {
    case SEPCONV_OP_CONV:
        ok = ok && sepconv_mul(pixels, conv_per_pixel, &cost->macs);
        break;
    case SEPCONV_OP_DW:
        ok = ok && sepconv_mul(pixels, dw_per_pixel, &cost->dw_macs);
        cost->macs = cost->dw_macs;
        break;
    case SEPCONV_OP_PW:
        ok = ok && sepconv_mul(pixels, pw_per_pixel, &cost->pw_macs);
        cost->macs = cost->pw_macs;
        break;
    case SEPCONV_OP_SEP:
        ok = ok && sepconv_mul(pixels, dw_per_pixel, &cost->dw_macs) &&
             sepconv_mul(pixels, pw_per_pixel, &cost->pw_macs) &&
             sepconv_add(cost->dw_macs, cost->pw_macs, &cost->macs) &&
             sepconv_mul(pixels, conv_per_pixel, &cost->conv_macs);
        if (ok && cost->conv_macs > 0)
            cost->ratio_to_conv = (double)cost->macs / (double)cost->conv_macs;
        break;
    }
    cost->weights = layer->weight_elements + layer->pw_weight_elements;
    cost->biases = layer->bias_elements + layer->pw_bias_elements;
    cost->parameters = cost->weights + cost->biases;
    /* parameters per stage kind: sep splits into its dw and pw stages */
    if (layer->op == SEPCONV_OP_DW || layer->op == SEPCONV_OP_SEP)
        cost->dw_parameters = layer->weight_elements + layer->bias_elements;
    if (layer->op == SEPCONV_OP_PW)
        cost->pw_parameters = cost->parameters;
    if (layer->op == SEPCONV_OP_SEP)
        cost->pw_parameters = layer->pw_weight_elements + layer->pw_bias_elements;
    /* what the parameters take: int8 weights, int32 biases and a float
     * weight scale per output channel of each stage */
    if (layer->dtype == SEPCONV_DTYPE_INT8) {
        int64_t scales = layer->op == SEPCONV_OP_DW ? layer->mid_c
                         : layer->op == SEPCONV_OP_SEP ? layer->mid_c + layer->n : layer->n;
        int64_t wide = 0;
        ok = ok && sepconv_add(cost->biases, scales, &wide) &&
             sepconv_mul(wide, 4, &wide) &&
             sepconv_add(cost->weights, wide, &cost->parameter_bytes);
    } else {
        ok = ok && sepconv_mul(cost->parameters, (int64_t)sizeof(float),
                               &cost->parameter_bytes);
    }
    /* unfused: input read once, output written once; sep also writes and
     * reads its intermediate tensor */
    ok = ok && sepconv_mul(layer->input_elements, bytes, &cost->bytes_read) &&
         sepconv_mul(layer->output_elements, bytes, &cost->bytes_written) &&
         sepconv_mul(layer->mid_elements, bytes, &cost->intermediate_bytes) &&
         sepconv_add(cost->bytes_read, cost->intermediate_bytes, &cost->bytes_read) &&
         sepconv_add(cost->bytes_written, cost->intermediate_bytes,
                     &cost->bytes_written);
    if (!ok) {
        memset(cost, 0, sizeof *cost);
        return sepconv_fail(error, SEPCONV_OVERFLOW,
                            "the layer's multiply-add or byte count overflows "
                            "64 bits; reduce its sizes");
    }
    return SEPCONV_OK;
}

/* Sums costs, as for a model's totals. */
sepconv_status sepconv_cost_accumulate(sepconv_cost *total,
                                       const sepconv_cost *cost,
                                       sepconv_error *error)
{
    if (!total || !cost)
        return sepconv_fail(error, SEPCONV_INVALID, "no total or no cost given");
    const int64_t add[] = {cost->macs, cost->dw_macs, cost->pw_macs,
                           cost->parameters, cost->weights, cost->biases,
                           cost->dw_parameters, cost->pw_parameters,
                           cost->bytes_read, cost->bytes_written,
                           cost->intermediate_bytes, cost->conv_macs,
                           cost->parameter_bytes};
    sepconv_cost sums = *total;
    int64_t *into[] = {&sums.macs, &sums.dw_macs, &sums.pw_macs,
                       &sums.parameters, &sums.weights, &sums.biases,
                       &sums.dw_parameters, &sums.pw_parameters,
                       &sums.bytes_read, &sums.bytes_written,
                       &sums.intermediate_bytes, &sums.conv_macs,
                       &sums.parameter_bytes};
    for (size_t i = 0; i < sizeof add / sizeof add[0]; i++)
        if (!sepconv_add(*into[i], add[i], into[i]))
            return sepconv_fail(error, SEPCONV_OVERFLOW,
                                "the total cost overflows 64 bits");
    sums.ratio_to_conv = 0;
    *total = sums;
    return SEPCONV_OK;
}
