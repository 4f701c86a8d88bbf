/*
 * layer.c -- the layer spec: parse "key=value" tokens, validate, derive the
 * output shape and element counts, print the canonical form.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define SIZE_MAX_VALUE INT64_C(2147483647) /* every size key: 1..2^31-1 */

/* The keys a spec may hold; the bit order is also the order of the help. */
enum key {
    KEY_OP, KEY_NAME, KEY_DF, KEY_H, KEY_W, KEY_M, KEY_N, KEY_DK, KEY_BATCH,
    KEY_STRIDE, KEY_DILATION, KEY_PAD, KEY_MULT, KEY_LAYOUT, KEY_BIAS,
    KEY_ACT, KEY_DW_ACT, KEY_PW_ACT, KEY_DTYPE, KEY_IN_SCALE, KEY_IN_ZERO,
    KEY_MID_SCALE, KEY_MID_ZERO, KEY_OUT_SCALE, KEY_OUT_ZERO, KEY_COUNT
};

static const char *const key_names[KEY_COUNT] = {
    "op", "name", "df", "h", "w", "m", "n", "dk", "batch", "stride",
    "dilation", "pad", "mult", "layout", "bias", "act", "dw_act", "pw_act",
    "dtype", "in_scale", "in_zero", "mid_scale", "mid_zero", "out_scale", "out_zero"};


/* What each size key means, for messages about missing keys. */
static const char *const key_meanings[KEY_COUNT] = {
    [KEY_DF] = "square input size D_F", [KEY_H] = "input height",
    [KEY_W] = "input width", [KEY_M] = "input channels M",
    [KEY_N] = "output channels N", [KEY_DK] = "kernel size D_K"};

/* What one spec said, before validation. */
typedef struct spec_values {
    unsigned seen; /* bit per enum key */
    sepconv_layer layer;
    sepconv_activation act;
} spec_values;

/* Short names of the enum values, indexed by the enums of sepconv.h. */
static const char *const op_names[] = {"conv", "dw", "pw", "sep"};
static const char *const layout_names[] = {"nhwc", "nchw"};
static const char *const activation_names[] = {"none", "relu", "relu6"};
static const char *const dtype_names[] = {"float32", "int8"};

/* The spec name of an op. */
const char *sepconv_op_name(sepconv_op op)
{
    return (unsigned)op < SEPCONV_OP_COUNT ? op_names[op] : "?";
}

/* The spec name of a layout. */
const char *sepconv_layout_name(sepconv_layout layout)
{
    return (unsigned)layout < SEPCONV_LAYOUT_COUNT ? layout_names[layout] : "?";
}

/* The spec name of an activation. */
const char *sepconv_activation_name(sepconv_activation act)
{
    return (unsigned)act < SEPCONV_ACTIVATION_COUNT ? activation_names[act] : "?";
}

/* Finds `text` among `names`; returns its index or -1. */
static int lookup(const char *text, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (strcmp(text, names[i]) == 0)
            return i;
    return -1;
}

/* Parses a decimal integer in [low, high]; `what` names it in messages. */
static sepconv_status parse_integer(const char *text, int64_t low,
                                    int64_t high, const char *what,
                                    int64_t *out, sepconv_error *error)
{
    const char *p = text;
    if (*p == '-' || *p == '+')
        p++;
    bool digits = *p != '\0';
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            digits = false;
    if (!digits)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "%s=%s is not an integer (expected %lld..%lld)",
                            what, text, (long long)low, (long long)high);
    errno = 0;
    long long value = strtoll(text, NULL, 10);
    if (errno == ERANGE || value < low || value > high)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "%s=%s is out of range (expected %lld..%lld)",
                            what, text, (long long)low, (long long)high);
    *out = value;
    return SEPCONV_OK;
}

/* Parses one of a fixed set of words; lists them when the text is none. */
static sepconv_status parse_word(const char *text, const char *key,
                                 const char *const *names, int count,
                                 int *out, sepconv_error *error)
{
    int found = lookup(text, names, count);
    if (found >= 0) {
        *out = found;
        return SEPCONV_OK;
    }
    char choices[128] = "";
    for (int i = 0; i < count; i++) {
        strcat(choices, i ? " | " : "");
        strcat(choices, names[i]);
    }
    return sepconv_fail(error, SEPCONV_INVALID, "%s=%s is not valid (expected %s)",
                        key, text, choices);
}

/* Parses pad=same|valid|P|T:L:B:R. */
static sepconv_status parse_padding(const char *text, sepconv_layer *layer,
                                    sepconv_error *error)
{
    if (strcmp(text, "same") == 0 || strcmp(text, "valid") == 0) {
        layer->padding = text[0] == 's' ? SEPCONV_PAD_SAME : SEPCONV_PAD_VALID;
        return SEPCONV_OK;
    }
    int64_t sides[4];
    int count = 0;
    char part[32];
    const char *p = text;
    for (;;) {
        size_t length = strcspn(p, ":");
        if (count == 4 || length >= sizeof part)
            return sepconv_fail(error, SEPCONV_INVALID,
                                "pad=%s is not valid (expected same | valid | P "
                                "| T:L:B:R with integers 0..%lld)",
                                text, (long long)SIZE_MAX_VALUE);
        memcpy(part, p, length);
        part[length] = '\0';
        sepconv_status status = parse_integer(part, 0, SIZE_MAX_VALUE, "pad",
                                              &sides[count++], error);
        if (status != SEPCONV_OK)
            return status;
        if (p[length] == '\0')
            break;
        p += length + 1;
    }
    if (count != 1 && count != 4)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "pad=%s has %d sides (expected one value for all "
                            "sides, or four as T:L:B:R)", text, count);
    layer->padding = SEPCONV_PAD_EXPLICIT;
    layer->pad_top = sides[0];
    layer->pad_left = sides[count == 4 ? 1 : 0];
    layer->pad_bottom = sides[count == 4 ? 2 : 0];
    layer->pad_right = sides[count == 4 ? 3 : 0];
    return SEPCONV_OK;
}

/* Parses a quantization scale: a number, finite and > 0 as a float. */
static sepconv_status parse_scale(const char *text, const char *key, float *out,
                                  sepconv_error *error)
{
    char *end = NULL;
    errno = 0;
    double value = strtod(text, &end);
    float scale = (float)value;
    if (end == text || *end != '\0' || errno == ERANGE || !(scale > 0) || !isfinite(scale))
        return sepconv_fail(error, SEPCONV_INVALID,
                            "%s=%s is not a scale (expected a number, finite and > 0 "
                            "as a float, such as 0.0235)", key, text);
    *out = scale;
    return SEPCONV_OK;
}

/* Stores one key's value into `values`. */
static sepconv_status set_key(spec_values *values, enum key key,
                              const char *value, sepconv_error *error)
{
    sepconv_layer *layer = &values->layer;
    int word = 0;
    sepconv_status status = SEPCONV_OK;
    int64_t *target = NULL;
    switch (key) {
    case KEY_OP:
        status = parse_word(value, "op", op_names, 4, &word, error);
        layer->op = (sepconv_op)word;
        return status;
    case KEY_NAME: {
        size_t length = strlen(value);
        bool clean = length > 0 && length < SEPCONV_NAME_MAX;
        for (size_t i = 0; i < length; i++)
            if (!isalnum((unsigned char)value[i]) && !strchr("_-.", value[i]))
                clean = false;
        if (!clean)
            return sepconv_fail(error, SEPCONV_INVALID,
                                "name=%s is not valid (expected 1..%d of "
                                "letters, digits, '_', '-', '.')",
                                value, SEPCONV_NAME_MAX - 1);
        memcpy(layer->name, value, length + 1);
        return SEPCONV_OK;
    }
    case KEY_PAD: return parse_padding(value, layer, error);
    case KEY_LAYOUT:
        status = parse_word(value, "layout", layout_names, 2, &word, error);
        layer->layout = (sepconv_layout)word;
        return status;
    case KEY_BIAS: {
        int64_t bias = 0;
        status = parse_integer(value, 0, 1, "bias", &bias, error);
        layer->bias = (int)bias;
        return status;
    }
    case KEY_ACT:
    case KEY_DW_ACT:
    case KEY_PW_ACT:
        status = parse_word(value, key_names[key], activation_names, 3, &word,
                            error);
        if (key == KEY_ACT)
            values->act = (sepconv_activation)word;
        else if (key == KEY_DW_ACT)
            layer->dw_act = (sepconv_activation)word;
        else
            layer->pw_act = (sepconv_activation)word;
        return status;
    case KEY_DTYPE:
        status = parse_word(value, "dtype", dtype_names, 2, &word, error);
        layer->dtype = (sepconv_dtype)word;
        return status;
    case KEY_IN_SCALE: return parse_scale(value, "in_scale", &layer->quant.in_scale, error);
    case KEY_MID_SCALE: return parse_scale(value, "mid_scale", &layer->quant.mid_scale, error);
    case KEY_OUT_SCALE: return parse_scale(value, "out_scale", &layer->quant.out_scale, error);
    case KEY_IN_ZERO:
    case KEY_MID_ZERO:
    case KEY_OUT_ZERO: {
        int64_t zero = 0;
        status = parse_integer(value, -128, 127, key_names[key], &zero, error);
        int32_t *into = key == KEY_IN_ZERO    ? &layer->quant.in_zero
                        : key == KEY_MID_ZERO ? &layer->quant.mid_zero
                                              : &layer->quant.out_zero;
        *into = (int32_t)zero;
        return status;
    }
    case KEY_DF: target = &layer->in_h; break;
    case KEY_H: target = &layer->in_h; break;
    case KEY_W: target = &layer->in_w; break;
    case KEY_M: target = &layer->m; break;
    case KEY_N: target = &layer->n; break;
    case KEY_DK: target = &layer->kernel; break;
    case KEY_BATCH: target = &layer->batch; break;
    case KEY_STRIDE: target = &layer->stride; break;
    case KEY_DILATION: target = &layer->dilation; break;
    case KEY_MULT: target = &layer->multiplier; break;
    case KEY_COUNT: break;
    }
    if (!target)
        return sepconv_fail(error, SEPCONV_INVALID, "internal: key %d", key);
    status = parse_integer(value, 1, SIZE_MAX_VALUE, key_names[key], target,
                           error);
    if (status == SEPCONV_OK && key == KEY_DF)
        layer->in_w = layer->in_h;
    return status;
}

/* Parses one "key=value" token. */
static sepconv_status parse_token(spec_values *values, const char *token,
                                  sepconv_error *error)
{
    const char *equals = strchr(token, '=');
    if (!equals || equals == token)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "'%s' is not a key=value token", token);
    char key_text[32];
    size_t key_length = (size_t)(equals - token);
    int key = -1;
    if (key_length < sizeof key_text) {
        memcpy(key_text, token, key_length);
        key_text[key_length] = '\0';
        key = lookup(key_text, key_names, KEY_COUNT);
    }
    if (key < 0)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "unknown key '%.*s' (expected op, name, df, h, w, "
                            "m, n, dk, batch, stride, dilation, pad, mult, "
                            "layout, bias, act, dw_act, pw_act, dtype, in_scale, "
                            "in_zero, mid_scale, mid_zero, out_scale, out_zero)",
                            (int)(key_length > 40 ? 40 : key_length), token);
    if (values->seen & (1u << key))
        return sepconv_fail(error, SEPCONV_INVALID, "key '%s' is given twice",
                            key_names[key]);
    values->seen |= 1u << key;
    return set_key(values, (enum key)key, equals + 1, error);
}

/* Fails when `key` was given although `op` has no use for it. */
static sepconv_status refuse_key(const spec_values *values, enum key key,
                                 const char *why, sepconv_error *error)
{
    if (!(values->seen & (1u << key)))
        return SEPCONV_OK;
    return sepconv_fail(error, SEPCONV_INVALID, "key '%s' does not apply to op=%s (%s)",
                        key_names[key], op_names[values->layer.op], why);
}

/* int8 needs its activations' scales (zero points default to 0); float32
 * takes none of the quantization keys, and only sep has a `mid`. */
static sepconv_status check_quantization(const spec_values *values, sepconv_error *error)
{
    unsigned seen = values->seen;
    if (values->layer.dtype != SEPCONV_DTYPE_INT8) {
        for (int k = KEY_IN_SCALE; k <= KEY_OUT_ZERO; k++)
            if (seen & (1u << k))
                return sepconv_fail(error, SEPCONV_INVALID,
                                    "key '%s' applies to dtype=int8 only (the "
                                    "activations' quantization)", key_names[k]);
        return SEPCONV_OK;
    }
    bool sep = values->layer.op == SEPCONV_OP_SEP;
    const enum key required[] = {KEY_IN_SCALE, KEY_OUT_SCALE, KEY_MID_SCALE};
    for (int i = 0; i < (sep ? 3 : 2); i++)
        if (!(seen & (1u << required[i])))
            return sepconv_fail(error, SEPCONV_INVALID,
                                "dtype=int8 needs %s (the %s activations' scale, "
                                "finite and > 0)", key_names[required[i]],
                                i == 0 ? "input" : i == 1 ? "output" : "depthwise output");
    sepconv_status status = SEPCONV_OK;
    if (!sep)
        status = refuse_key(values, KEY_MID_SCALE, "only sep has a depthwise output", error);
    if (status == SEPCONV_OK && !sep)
        status = refuse_key(values, KEY_MID_ZERO, "only sep has a depthwise output", error);
    return status;
}

/* Checks the keys an op needs and refuses the ones it cannot use. */
static sepconv_status check_keys(spec_values *values, sepconv_error *error)
{
    sepconv_layer *layer = &values->layer;
    unsigned seen = values->seen;
    sepconv_op op = layer->op;
    sepconv_status status = SEPCONV_OK;
    if ((seen & (1u << KEY_DF)) && (seen & ((1u << KEY_H) | (1u << KEY_W))))
        return sepconv_fail(error, SEPCONV_INVALID,
                            "give either df (square input) or h and w, not both");
    enum key required[4];
    int count = 0;
    if (!(seen & (1u << KEY_DF))) {
        required[count++] = KEY_H;
        required[count++] = KEY_W;
    }
    required[count++] = KEY_M;
    if (op != SEPCONV_OP_DW)
        required[count++] = KEY_N;
    for (int i = 0; i < count; i++)
        if (!(seen & (1u << required[i])))
            return sepconv_fail(error, SEPCONV_INVALID,
                                "missing key '%s' (%s, 1..%lld)%s",
                                key_names[required[i]],
                                key_meanings[required[i]],
                                (long long)SIZE_MAX_VALUE,
                                required[i] == KEY_H ? "; or give df" : "");
    if (op != SEPCONV_OP_PW && !(seen & (1u << KEY_DK)))
        return sepconv_fail(error, SEPCONV_INVALID,
                            "missing key 'dk' (%s, 1..%lld)", key_meanings[KEY_DK],
                            (long long)SIZE_MAX_VALUE);
    if (op == SEPCONV_OP_DW)
        status = refuse_key(values, KEY_N, "its output has m*mult channels",
                            error);
    if (status == SEPCONV_OK && op == SEPCONV_OP_PW && layer->kernel != 1)
        status = sepconv_fail(error, SEPCONV_INVALID,
                              "dk=%lld does not apply to op=pw (a pointwise "
                              "kernel is 1x1; use op=conv)",
                              (long long)layer->kernel);
    if (status == SEPCONV_OK && op == SEPCONV_OP_PW && layer->dilation != 1)
        status = sepconv_fail(error, SEPCONV_INVALID,
                              "dilation=%lld does not apply to op=pw (a 1x1 "
                              "kernel has no taps to spread)",
                              (long long)layer->dilation);
    if (status == SEPCONV_OK && (op == SEPCONV_OP_PW || op == SEPCONV_OP_CONV) &&
        layer->multiplier != 1)
        status = sepconv_fail(error, SEPCONV_INVALID,
                              "mult=%lld does not apply to op=%s (the depth "
                              "multiplier belongs to a depthwise stage)",
                              (long long)layer->multiplier, op_names[op]);
    if (status == SEPCONV_OK && op != SEPCONV_OP_SEP && op != SEPCONV_OP_DW)
        status = refuse_key(values, KEY_DW_ACT, "it has no depthwise stage; use act",
                            error);
    if (status == SEPCONV_OK && op != SEPCONV_OP_SEP && op != SEPCONV_OP_PW)
        status = refuse_key(values, KEY_PW_ACT, "it has no pointwise stage; use act",
                            error);
    if (status == SEPCONV_OK)
        status = check_quantization(values, error);
    return status;
}

/* Resolves padding along one axis and derives the output size. */
static sepconv_status resolve_axis(const sepconv_layer *layer, const char *axis,
                                   int64_t in, int64_t *pad_before,
                                   int64_t *pad_after, int64_t *out,
                                   sepconv_error *error)
{
    int64_t extent = (layer->kernel - 1) * layer->dilation + 1; /* < 2^62 */
    if (layer->padding == SEPCONV_PAD_SAME) {
        int64_t wanted = (in + layer->stride - 1) / layer->stride;
        int64_t total = (wanted - 1) * layer->stride + extent - in;
        if (total < 0)
            total = 0;
        *pad_before = total / 2;
        *pad_after = total - total / 2;
    } else if (layer->padding == SEPCONV_PAD_VALID) {
        *pad_before = *pad_after = 0;
    }
    int64_t padded = in + *pad_before + *pad_after; /* each < 2^31 */
    if (extent > padded)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "dk=%lld (extent %lld with dilation=%lld) is larger "
                            "than the padded input %s %lld (%lld + pad %lld+%lld)",
                            (long long)layer->kernel, (long long)extent,
                            (long long)layer->dilation, axis, (long long)padded,
                            (long long)in, (long long)*pad_before,
                            (long long)*pad_after);
    *out = (padded - extent) / layer->stride + 1;
    return SEPCONV_OK;
}

/* Multiplies `count` factors into elements, then checks elements*4 bytes. */
static sepconv_status tensor_size(const char *tensor, const char *keys,
                                  const int64_t *factors, int count,
                                  int64_t *elements, sepconv_error *error)
{
    int64_t product = 1;
    for (int i = 0; i < count; i++)
        if (!sepconv_mul(product, factors[i], &product))
            return sepconv_fail(error, SEPCONV_OVERFLOW,
                                "the %s (%s) has more elements than fit in 64 "
                                "bits; reduce %s", tensor, keys, keys);
    int64_t bytes;
    if (!sepconv_mul(product, (int64_t)sizeof(float), &bytes))
        return sepconv_fail(error, SEPCONV_OVERFLOW,
                            "the %s (%s = %lld elements) takes more bytes than "
                            "fit in 64 bits; reduce %s",
                            tensor, keys, (long long)product, keys);
    *elements = product;
    return SEPCONV_OK;
}

/* Derives output size and every element count, checking each for overflow. */
static sepconv_status derive(sepconv_layer *layer, sepconv_error *error)
{
    sepconv_status status = resolve_axis(layer, "height", layer->in_h,
                                         &layer->pad_top, &layer->pad_bottom,
                                         &layer->out_h, error);
    if (status == SEPCONV_OK)
        status = resolve_axis(layer, "width", layer->in_w, &layer->pad_left,
                              &layer->pad_right, &layer->out_w, error);
    if (status != SEPCONV_OK)
        return status;
    if (!sepconv_mul(layer->m, layer->multiplier, &layer->mid_c))
        return sepconv_fail(error, SEPCONV_OVERFLOW,
                            "m*mult overflows 64 bits; reduce m or mult");
    layer->out_c = layer->op == SEPCONV_OP_DW ? layer->mid_c : layer->n;
    int64_t b = layer->batch, k = layer->kernel;
    int64_t input[] = {b, layer->in_h, layer->in_w, layer->m};
    int64_t output[] = {b, layer->out_h, layer->out_w, layer->out_c};
    int64_t mid[] = {b, layer->out_h, layer->out_w, layer->mid_c};
    int64_t conv_weights[] = {k, k, layer->m, layer->n};
    int64_t dw_weights[] = {k, k, layer->mid_c};
    int64_t pw_weights[] = {layer->mid_c, layer->n};
    const char *out_keys = layer->op == SEPCONV_OP_DW
                               ? "batch*out_h*out_w*m*mult"
                               : "batch*out_h*out_w*n";
    status = tensor_size("input tensor", "batch*h*w*m", input, 4,
                         &layer->input_elements, error);
    if (status == SEPCONV_OK)
        status = tensor_size("output tensor", out_keys, output, 4,
                             &layer->output_elements, error);
    if (status != SEPCONV_OK)
        return status;
    layer->mid_elements = 0;
    layer->pw_weight_elements = layer->pw_bias_elements = 0;
    switch (layer->op) {
    case SEPCONV_OP_CONV:
        status = tensor_size("weights", "dk*dk*m*n", conv_weights, 4,
                             &layer->weight_elements, error);
        layer->bias_elements = layer->bias ? layer->n : 0;
        break;
    case SEPCONV_OP_DW:
        status = tensor_size("depthwise weights", "dk*dk*m*mult", dw_weights,
                             3, &layer->weight_elements, error);
        layer->bias_elements = layer->bias ? layer->mid_c : 0;
        break;
    case SEPCONV_OP_PW:
        status = tensor_size("pointwise weights", "m*n", pw_weights, 2,
                             &layer->weight_elements, error);
        layer->bias_elements = layer->bias ? layer->n : 0;
        break;
    case SEPCONV_OP_SEP:
        status = tensor_size("intermediate tensor", "batch*out_h*out_w*m*mult",
                             mid, 4, &layer->mid_elements, error);
        if (status == SEPCONV_OK)
            status = tensor_size("depthwise weights", "dk*dk*m*mult",
                                 dw_weights, 3, &layer->weight_elements, error);
        if (status == SEPCONV_OK)
            status = tensor_size("pointwise weights", "m*mult*n", pw_weights,
                                 2, &layer->pw_weight_elements, error);
        layer->bias_elements = layer->bias ? layer->mid_c : 0;
        layer->pw_bias_elements = layer->bias ? layer->n : 0;
        break;
    }
    return status;
}

/* Parses a spec into a validated layer; `layer` is untouched on failure. */
sepconv_status sepconv_layer_parse(const char *spec, sepconv_layer *layer,
                                   sepconv_error *error)
{
    if (!spec || !layer)
        return sepconv_fail(error, SEPCONV_INVALID, "no spec or no layer given");
    spec_values values;
    memset(&values, 0, sizeof values);
    sepconv_layer *l = &values.layer;
    l->op = SEPCONV_OP_SEP;
    l->batch = l->stride = l->dilation = l->multiplier = l->kernel = 1;
    l->padding = SEPCONV_PAD_SAME;
    l->layout = SEPCONV_LAYOUT_NHWC;
    values.act = SEPCONV_ACT_NONE;

    char token[256];
    const char *p = spec;
    for (;;) {
        p += strspn(p, " \t\r\n,");
        if (*p == '\0')
            break;
        size_t length = strcspn(p, " \t\r\n,");
        if (length >= sizeof token)
            return sepconv_fail(error, SEPCONV_INVALID,
                                "token '%.40s...' is too long (at most %zu "
                                "characters)", p, sizeof token - 1);
        memcpy(token, p, length);
        token[length] = '\0';
        sepconv_status status = parse_token(&values, token, error);
        if (status != SEPCONV_OK)
            return status;
        p += length;
    }
    if (values.seen == 0)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "empty spec (expected key=value tokens such as "
                            "'op=sep df=112 m=32 n=64 dk=3')");
    sepconv_status status = check_keys(&values, error);
    if (status != SEPCONV_OK)
        return status;
    /* act sets every stage; dw_act and pw_act override their own stage */
    l->conv_act = values.act;
    if (!(values.seen & (1u << KEY_DW_ACT)))
        l->dw_act = values.act;
    if (!(values.seen & (1u << KEY_PW_ACT)))
        l->pw_act = values.act;
    if (l->op == SEPCONV_OP_CONV || l->op == SEPCONV_OP_PW)
        l->dw_act = SEPCONV_ACT_NONE;
    if (l->op == SEPCONV_OP_CONV || l->op == SEPCONV_OP_DW)
        l->pw_act = SEPCONV_ACT_NONE;
    if (l->op != SEPCONV_OP_CONV)
        l->conv_act = SEPCONV_ACT_NONE;
    status = derive(l, error);
    if (status != SEPCONV_OK)
        return status;
    *layer = *l;
    return SEPCONV_OK;
}

/* Appends formatted text to a bounded buffer; false once it is full. */
static bool append(char *out, size_t capacity, size_t *used, const char *format,
                   ...) SEPCONV_PRINTF(4, 5);
static bool append(char *out, size_t capacity, size_t *used, const char *format,
                   ...)
{
    va_list args;
    va_start(args, format);
    int wrote = vsnprintf(out + *used, capacity - *used, format, args);
    va_end(args);
    if (wrote < 0 || (size_t)wrote >= capacity - *used)
        return false;
    *used += (size_t)wrote;
    return true;
}

/* The shortest text of a scale that parses back to the same float. */
static void format_scale(float scale, char *out, size_t capacity)
{
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(out, capacity, "%.*g", digits, (double)scale);
        if (strtof(out, NULL) == scale)
            return;
    }
}

/* Writes the canonical spec of a layer. */
sepconv_status sepconv_layer_format(const sepconv_layer *layer, char *out,
                                    size_t capacity, sepconv_error *error)
{
    if (!layer || !out || capacity == 0)
        return sepconv_fail(error, SEPCONV_INVALID, "no layer or no buffer given");
    size_t used = 0;
    sepconv_op op = layer->op;
    bool ok = append(out, capacity, &used, "op=%s", op_names[op]);
    if (ok && layer->name[0])
        ok = append(out, capacity, &used, " name=%s", layer->name);
    if (ok && layer->in_h == layer->in_w)
        ok = append(out, capacity, &used, " df=%lld", (long long)layer->in_h);
    else if (ok)
        ok = append(out, capacity, &used, " h=%lld w=%lld",
                    (long long)layer->in_h, (long long)layer->in_w);
    if (ok)
        ok = append(out, capacity, &used, " m=%lld", (long long)layer->m);
    if (ok && op != SEPCONV_OP_DW)
        ok = append(out, capacity, &used, " n=%lld", (long long)layer->n);
    if (ok && op != SEPCONV_OP_PW)
        ok = append(out, capacity, &used, " dk=%lld", (long long)layer->kernel);
    if (ok)
        ok = append(out, capacity, &used, " batch=%lld stride=%lld",
                    (long long)layer->batch, (long long)layer->stride);
    if (ok && op != SEPCONV_OP_PW)
        ok = append(out, capacity, &used, " dilation=%lld",
                    (long long)layer->dilation);
    if (ok && (op == SEPCONV_OP_DW || op == SEPCONV_OP_SEP))
        ok = append(out, capacity, &used, " mult=%lld",
                    (long long)layer->multiplier);
    if (ok && layer->padding != SEPCONV_PAD_EXPLICIT)
        ok = append(out, capacity, &used, " pad=%s",
                    layer->padding == SEPCONV_PAD_SAME ? "same" : "valid");
    else if (ok && layer->pad_top == layer->pad_left &&
             layer->pad_top == layer->pad_bottom &&
             layer->pad_top == layer->pad_right)
        ok = append(out, capacity, &used, " pad=%lld", (long long)layer->pad_top);
    else if (ok)
        ok = append(out, capacity, &used, " pad=%lld:%lld:%lld:%lld",
                    (long long)layer->pad_top, (long long)layer->pad_left,
                    (long long)layer->pad_bottom, (long long)layer->pad_right);
    if (ok)
        ok = append(out, capacity, &used, " layout=%s bias=%d",
                    layout_names[layer->layout], layer->bias);
    sepconv_activation single = op == SEPCONV_OP_CONV ? layer->conv_act
                                : op == SEPCONV_OP_PW ? layer->pw_act
                                                      : layer->dw_act;
    if (ok && (op != SEPCONV_OP_SEP || layer->dw_act == layer->pw_act))
        ok = append(out, capacity, &used, " act=%s", activation_names[single]);
    else if (ok)
        ok = append(out, capacity, &used, " dw_act=%s pw_act=%s",
                    activation_names[layer->dw_act],
                    activation_names[layer->pw_act]);
    const sepconv_quantization *q = &layer->quant;
    char in[32], mid[32], outs[32];
    format_scale(q->in_scale, in, sizeof in);
    format_scale(q->mid_scale, mid, sizeof mid);
    format_scale(q->out_scale, outs, sizeof outs);
    if (ok && layer->dtype == SEPCONV_DTYPE_INT8)
        ok = append(out, capacity, &used, " dtype=int8 in_scale=%s in_zero=%d", in,
                    (int)q->in_zero);
    if (ok && layer->dtype == SEPCONV_DTYPE_INT8 && op == SEPCONV_OP_SEP)
        ok = append(out, capacity, &used, " mid_scale=%s mid_zero=%d", mid, (int)q->mid_zero);
    if (ok && layer->dtype == SEPCONV_DTYPE_INT8)
        ok = append(out, capacity, &used, " out_scale=%s out_zero=%d", outs, (int)q->out_zero);
    if (!ok)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "the canonical spec does not fit in %zu bytes",
                            capacity);
    return SEPCONV_OK;
}

/* Splits a sep layer into its dw and pw stages. */
sepconv_status sepconv_layer_split(const sepconv_layer *sep, sepconv_layer *dw,
                                   sepconv_layer *pw, sepconv_error *error)
{
    if (!sep || !dw || !pw || sep->op != SEPCONV_OP_SEP)
        return sepconv_fail(error, SEPCONV_INVALID, "split needs an op=sep layer");
    const char *layout = layout_names[sep->layout];
    char dw_spec[512], pw_spec[512];
    snprintf(dw_spec, sizeof dw_spec,
             "op=dw h=%lld w=%lld m=%lld dk=%lld stride=%lld dilation=%lld mult=%lld "
             "pad=%lld:%lld:%lld:%lld layout=%s bias=%d act=%s batch=%lld",
             (long long)sep->in_h, (long long)sep->in_w, (long long)sep->m,
             (long long)sep->kernel, (long long)sep->stride, (long long)sep->dilation,
             (long long)sep->multiplier, (long long)sep->pad_top, (long long)sep->pad_left,
             (long long)sep->pad_bottom, (long long)sep->pad_right, layout, sep->bias,
             activation_names[sep->dw_act], (long long)sep->batch);
    snprintf(pw_spec, sizeof pw_spec,
             "op=pw h=%lld w=%lld m=%lld n=%lld layout=%s bias=%d act=%s batch=%lld",
             (long long)sep->out_h, (long long)sep->out_w, (long long)sep->mid_c,
             (long long)sep->n, layout, sep->bias, activation_names[sep->pw_act],
             (long long)sep->batch);
    sepconv_status status = sepconv_layer_parse(dw_spec, dw, error);
    if (status == SEPCONV_OK)
        status = sepconv_layer_parse(pw_spec, pw, error);
    if (status == SEPCONV_OK && sep->dtype == SEPCONV_DTYPE_INT8) {
        /* the depthwise stage writes the intermediate, the pointwise reads it */
        const sepconv_quantization *q = &sep->quant;
        dw->dtype = pw->dtype = SEPCONV_DTYPE_INT8;
        dw->quant = (sepconv_quantization){.in_scale = q->in_scale, .out_scale = q->mid_scale,
                                           .in_zero = q->in_zero, .out_zero = q->mid_zero};
        pw->quant = (sepconv_quantization){.in_scale = q->mid_scale, .out_scale = q->out_scale,
                                           .in_zero = q->mid_zero, .out_zero = q->out_zero};
    }
    if (status == SEPCONV_OK && sep->name[0]) {
        snprintf(dw->name, sizeof dw->name, "%.*s.dw", SEPCONV_NAME_MAX - 4, sep->name);
        snprintf(pw->name, sizeof pw->name, "%.*s.pw", SEPCONV_NAME_MAX - 4, sep->name);
    }
    return status;
}

/* zero + round(real / scale) in float as TFLite computes it, within int8. */
static int32_t quantize_clamped(float real, float scale, int32_t zero)
{
    double q = (double)zero + round((double)(real / scale));
    return q < -128 ? -128 : q > 127 ? 127 : (int32_t)q;
}

/* The clamp bounds of an activation in the quantized domain. */
void sepconv_q_activation_range(sepconv_activation act, float scale, int32_t zero,
                                int32_t *min, int32_t *max)
{
    *min = -128;
    *max = 127;
    if (act == SEPCONV_ACT_NONE)
        return;
    *min = quantize_clamped(0.0f, scale, zero);
    if (act == SEPCONV_ACT_RELU6)
        *max = quantize_clamped(6.0f, scale, zero);
}
