/*
 * neon_activations.c -- relu and relu6 of a target's vector code keep NaN
 * and -0.0 as the reference does (relu(x) = x < 0 ? 0 : x, then relu6
 * x > 6 ? 6 : x): vmaxq_f32(zero, -0.0) would give +0.0.  For each backend
 * (cc: the target's intrinsics from templates/simd.lua; tcc: libsepconv's
 * micro-kernels of the target), pointwise and depthwise layers whose outputs
 * are exactly the special inputs (weights 1, bias -0.0, so -0.0 + x = x)
 * are run and compared bit for bit with hand-computed activations and with
 * the reference.  Run by tests/arm64_check.sh under qemu; the target is
 * argv[1] ("neon" by default; "avx2" or "avx512" on an x86 machine).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sepconv.h"
#include "core/core.h"
#include "generate/generate.h"

static const float specials[] = {-0.0f, 0.0f, NAN, 7.0f, -3.0f, 2.5f, INFINITY, -INFINITY,
                                 6.0f, 6.0000005f, 5.9999995f, -1e-40f, 1e-40f, -0.0f, 1.0f};
#define SPECIAL_COUNT (sizeof specials / sizeof specials[0])

/* The activation by hand, from its definition. */
static float expected(float x, const char *act)
{
    if (isnan(x))
        return x;
    float y = x < 0.0f ? 0.0f : x;
    if (strcmp(act, "relu6") == 0 && y > 6.0f)
        y = 6.0f;
    return y;
}

/* Whether two floats agree: both NaN, or the same bits (-0.0 is not 0.0). */
static int same(float a, float b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

/* The vector activation the cc source must contain for the target, so that
 * this test tests the compare-select and not a scalar fallback. */
static const char *relu_text(sepconv_target target)
{
    switch (target) {
    case SEPCONV_TARGET_NEON: return "vbslq_f32(vcltq_f32(";
    case SEPCONV_TARGET_AVX2: return "_mm256_max_ps(zero, ";
    case SEPCONV_TARGET_AVX512: return "_mm512_max_ps(zero, ";
    default: return NULL;
    }
}

/* One layer, one backend: 0 when every output is right. */
static int check(const char *spec, sepconv_backend backend, sepconv_target target,
                 const char *act)
{
    sepconv_layer layer;
    sepconv_error error;
    int bad = 0;
    if (sepconv_layer_parse(spec, &layer, &error) != SEPCONV_OK) {
        fprintf(stderr, "%s: %s\n", spec, error.message);
        return 1;
    }
    if (backend == SEPCONV_BACKEND_CC && relu_text(target)) {
        sepconv_schedule schedule;
        sepconv_source source;
        sepconv_generate_options generate = {.for_cc = 1};
        if (sepconv_schedule_default(&layer, target, &schedule, &error) != SEPCONV_OK ||
            sepconv_generate(&layer, &schedule, &generate, &source, &error) != SEPCONV_OK) {
            fprintf(stderr, "%s: %s\n", spec, error.message);
            return 1;
        }
        int vector = strstr(source.code, relu_text(target)) != NULL;
        sepconv_source_free(&source);
        if (!vector) {
            fprintf(stderr, "%s (%s): the cc source has no '%s': not the vector path\n", spec,
                    sepconv_target_name(target), relu_text(target));
            bad = 1;
        }
    }
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.backend = backend;
    options.target = target;
    options.cc.no_cache = 1;
    sepconv_kernel *kernel = NULL;
    if (sepconv_kernel_create(&layer, &options, &kernel, &error) != SEPCONV_OK) {
        fprintf(stderr, "%s (%s, %s): %s\n", spec, sepconv_backend_name(backend),
                sepconv_target_name(target), error.message);
        return 1;
    }
    sepconv_buffers b;
    if (sepconv_buffers_alloc(&layer, &b, &error) != SEPCONV_OK) {
        fprintf(stderr, "%s\n", error.message);
        sepconv_kernel_free(kernel);
        return 1;
    }
    /* NHWC: channel c of pixel p is input[p * m + c] */
    for (int64_t i = 0; i < layer.input_elements; i++) {
        int64_t p = i / layer.m, c = i % layer.m;
        b.input[i] = specials[(size_t)(p + c) % SPECIAL_COUNT];
    }
    for (int64_t i = 0; i < layer.weight_elements; i++)
        b.weights[i] = 1.0f;
    for (int64_t i = 0; b.bias && i < layer.bias_elements; i++)
        b.bias[i] = -0.0f;
    sepconv_tensors t = sepconv_buffers_tensors(&b);
    float *out = malloc((size_t)layer.output_elements * sizeof(float));
    int wrong = 0;
    if (!out || sepconv_kernel_set_weights(kernel, &t, &error) != SEPCONV_OK ||
        sepconv_kernel_run(kernel, b.input, out, &error) != SEPCONV_OK ||
        sepconv_reference_run(&layer, &t, b.output, &error) != SEPCONV_OK) {
        fprintf(stderr, "%s: %s\n", spec, out ? error.message : "out of memory");
        wrong = 1;
    }
    for (int64_t i = 0; !wrong && i < layer.output_elements; i++) {
        int64_t p = i / layer.out_c, c = i % layer.out_c;
        /* pointwise (m = 1): every channel sees the pixel's one input */
        float x = specials[(size_t)(p + (layer.op == SEPCONV_OP_PW ? 0 : c)) % SPECIAL_COUNT];
        float want = expected(x, act);
        if (!same(out[i], want) || !same(b.output[i], want)) {
            fprintf(stderr, "%s (%s, %s): pixel %lld channel %lld: %s(%g) is %g%s, the "
                    "reference's %g%s, by hand %g%s\n", spec, sepconv_backend_name(backend),
                    sepconv_target_name(target), (long long)p, (long long)c, act, (double)x,
                    (double)out[i], signbit(out[i]) ? " (sign set)" : "",
                    (double)b.output[i], signbit(b.output[i]) ? " (sign set)" : "",
                    (double)want, signbit(want) ? " (sign set)" : "");
            wrong = 1;
        }
    }
    free(out);
    sepconv_buffers_free(&b);
    sepconv_kernel_free(kernel);
    return bad || wrong;
}

int main(int argc, char **argv)
{
    sepconv_target target = SEPCONV_TARGET_NEON, resolved;
    sepconv_error error;
    if (argc > 1 && sepconv_target_parse(argv[1], &target, &error) != SEPCONV_OK) {
        fprintf(stderr, "%s\n", error.message);
        return 2;
    }
    if (sepconv_target_resolve(target, &resolved, &error) != SEPCONV_OK) {
        fprintf(stderr, "neon_activations: %s\n", error.message);
        return 1;
    }
    static const char *const layers[] = {
        "op=pw h=4 w=4 m=1 n=16 bias=1 layout=nhwc act=%s",
        "op=dw h=4 w=4 m=16 dk=1 bias=1 layout=nhwc act=%s",
        "op=pw h=3 w=5 m=1 n=32 bias=1 layout=nhwc act=%s",
    };
    static const char *const acts[] = {"relu", "relu6"};
    static const sepconv_backend backends[] = {SEPCONV_BACKEND_CC, SEPCONV_BACKEND_TCC};
    int failures = 0, checked = 0;
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++)
        for (size_t a = 0; a < 2; a++)
            for (size_t k = 0; k < 2; k++) {
                char spec[160];
                snprintf(spec, sizeof spec, layers[l], acts[a]);
                failures += check(spec, backends[k], resolved, acts[a]);
                checked++;
            }
    if (failures) {
        printf("%d of %d kernels got NaN or -0.0 wrong\n", failures, checked);
        return 1;
    }
    printf("%d %s kernels (cc, tcc; relu, relu6) keep NaN and -0.0 bit for bit\n", checked,
           sepconv_target_name(resolved));
    return 0;
}
