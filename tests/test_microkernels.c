/*
 * test_microkernels.c -- every micro-kernel set this build has and the CPU
 * runs (portable, avx2, avx512 / portable, neon) against the definition of
 * the operation, computed here in double, and against the scalar kernels:
 * random shapes (any block, n not a multiple of it, bias or none, relu and
 * relu6, pixel counts that leave every tile size), NaN inputs that must
 * reach exactly the outputs that see them, -0.0 that relu must keep, and
 * guard zones around every output that must stay untouched; and, for the
 * depthwise row, a grid of every stride 1/2, dilation 1/2, k 1/3/5,
 * padding 0-2 on either side, tiny and wide rows, channel counts around
 * the vector widths, bias or none and each activation; and the 3x3 border
 * columns on every stride, padding, short row and channel count the ISAs'
 * vector blocks split differently, the input rows exact and between NaN
 * guards (a tap read from the padding shows).  A set the CPU lacks is
 * skipped with a SKIP line naming it.
 *
 * Built with -DSEPCONV_UK_STANDALONE it is its own program without Check
 * (how the NEON kernels are tried under qemu-aarch64 by hand).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "microkernels/microkernels.h"

#define GUARD 12345.0f

static uint64_t rng_state;
static uint64_t next_random(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return rng_state >> 33;
}
static long pick(long lo, long hi) { return lo + (long)(next_random() % (uint64_t)(hi - lo + 1)); }
static float uniform(void) { return (float)((double)next_random() / 2147483648.0 * 2.0 - 1.0); }

/* The reference's activation, in double. */
static double activate(double x, int act)
{
    if (act == 0)
        return x;
    x = x < 0 ? 0 : x;
    return act == 2 && x > 6 ? 6 : x;
}

/* got agrees with the exact value `want` (of terms summing to `scale` in
 * magnitude): both NaN, or within float rounding of the sum; a zero keeps
 * the sign of an exact zero. */
static bool agrees(float got, double want, double scale)
{
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    if (isinf(want) || isinf(got))
        return want == got;
    if (want == 0 && got == 0)
        return !signbit(want) == !signbit(got);
    return fabs(got - want) <= 1e-5 * scale + 1e-30;
}

typedef struct check {
    char message[512];
    long cases, mismatches;
} check;

static void mismatch(check *c, const char *format, const char *isa, long i, float got,
                     double want, const char *shape)
{
    if (c->mismatches++ == 0)
        snprintf(c->message, sizeof c->message, format, isa, i, (double)got, want, shape);
}

/* One random pointwise case: set vs the definition and vs scalar. */
static void pointwise_case(const sepconv_microkernels *set, int special, check *c)
{
    static const long blocks[] = {1, 3, 4, 8, 12, 16, 20, 24, 32, 40, 48, 64, 72, 128};
    long pixels = pick(1, 20), m = pick(0, 70), n = pick(1, 100);
    long block = blocks[pick(0, sizeof blocks / sizeof blocks[0] - 1)];
    if (special == 1) { /* MobileNet-like */
        pixels = pick(0, 1) ? 7 : 14;
        m = 64 * pick(1, 4);
        n = 64 * pick(1, 4);
        block = 8 * pick(1, 8);
    }
    long in_step = m + pick(0, 3), out_step = n + pick(0, 5);
    int act = (int)pick(0, 2);
    bool with_bias = special == 2 || pick(0, 3) > 0;
    long blocks_n = (n + block - 1) / block;
    float *in = malloc(sizeof(float) * (size_t)(pixels * in_step + 1));
    float *packed = malloc(sizeof(float) * (size_t)(blocks_n * m * block + 1));
    float *bias = malloc(sizeof(float) * (size_t)n);
    float *out = malloc(sizeof(float) * (size_t)(pixels * out_step));
    float *scalar = malloc(sizeof(float) * (size_t)(pixels * out_step));
    for (long i = 0; i < pixels * in_step; i++)
        in[i] = special == 2 ? 0.0f : uniform();
    for (long i = 0; i < blocks_n * m * block; i++) /* the padding must never be read */
        packed[i] = NAN;
    for (long co = 0; co < n; co++)
        for (long k = 0; k < m; k++)
            packed[(co / block) * m * block + k * block + co % block] =
                special == 2 ? -1.0f - uniform() * 0.5f : uniform();
    for (long co = 0; co < n; co++)
        bias[co] = special == 2 ? -0.0f : uniform();
    if (special == 0 && m > 0 && pick(0, 2) == 0) /* a NaN reaches its pixel's outputs */
        in[pick(0, pixels - 1) * in_step + pick(0, m - 1)] = NAN;
    for (long i = 0; i < pixels * out_step; i++)
        out[i] = scalar[i] = GUARD;
    const float *b = with_bias ? bias : NULL;
    set->pointwise(in, in_step, out, out_step, pixels, packed, m, n, block, b, act);
    sepconv_uk_pointwise__scalar(in, in_step, scalar, out_step, pixels, packed, m, n, block, b,
                                 act);
    char shape[160];
    snprintf(shape, sizeof shape, "pixels %ld m %ld n %ld block %ld bias %d act %d", pixels,
             m, n, block, with_bias, act);
    for (long p = 0; p < pixels; p++)
        for (long co = 0; co < out_step; co++) {
            long i = p * out_step + co;
            if (co >= n) {
                if (out[i] != GUARD)
                    mismatch(c, "%s pointwise wrote the guard at %ld (%g, not %g): %s",
                             set->isa, i, out[i], GUARD, shape);
                continue;
            }
            double sum = b ? b[co] : 0.0, scale = b ? fabs(b[co]) : 0.0;
            for (long k = 0; k < m; k++) {
                double term = (double)in[p * in_step + k] *
                              packed[(co / block) * m * block + k * block + co % block];
                sum += term;
                scale += fabs(term);
            }
            double want = activate(sum, act);
            if (!agrees(out[i], want, scale))
                mismatch(c, "%s pointwise output %ld is %g, the definition %g: %s", set->isa,
                         i, out[i], want, shape);
            if (!agrees(out[i], scalar[i], scale))
                mismatch(c, "%s pointwise output %ld is %g, the scalar kernel's %g: %s",
                         set->isa, i, out[i], scalar[i], shape);
        }
    c->cases++;
    free(in);
    free(packed);
    free(bias);
    free(out);
    free(scalar);
}

/* The output columns [ox0, ox1) of one depthwise row of this shape (random
 * data; special 2: zeros that must give -0.0, no padding rows), column ox0
 * first in the output: set vs the definition and vs scalar.
 * The input rows are allocated exactly (ASan and valgrind see a read
 * outside them) or, `guarded`, between guard columns of NaN as wide as the
 * widest padding: a tap taken from the padding (a border tap not dropped)
 * turns its output into NaN. */
static void depthwise_row_case(const sepconv_microkernels *set, long k, long stride,
                               long dilation, long in_w, long cc, long pad_left, long ox0,
                               long ox1, int act, bool with_bias, int special, bool guarded,
                               check *c)
{
    const long width = ox1 - ox0;
    float *rows[5] = {0}, *buffers[5] = {0};
    const long guard = guarded ? (k * dilation + stride) * cc : 0; /* floats either side */
    float *w = malloc(sizeof(float) * (size_t)(k * k * cc));
    float *bias = malloc(sizeof(float) * (size_t)cc);
    float *out = malloc(sizeof(float) * (size_t)((width + 1) * cc));
    float *scalar = malloc(sizeof(float) * (size_t)((width + 1) * cc));
    for (long ky = 0; ky < k; ky++) {
        if (special != 2 && pick(0, 4) == 0)
            continue; /* a padding row */
        buffers[ky] = malloc(sizeof(float) * (size_t)(in_w * cc + 2 * guard));
        for (long i = 0; i < in_w * cc + 2 * guard; i++)
            buffers[ky][i] = NAN;
        rows[ky] = buffers[ky] + guard;
        for (long i = 0; i < in_w * cc; i++)
            rows[ky][i] = special == 2 ? 0.0f : uniform();
    }
    for (long i = 0; i < k * k * cc; i++)
        w[i] = special == 2 ? -1.0f - uniform() * 0.5f : uniform();
    for (long ch = 0; ch < cc; ch++)
        bias[ch] = special == 2 ? -0.0f : uniform();
    if (special == 0 && rows[k / 2] && pick(0, 2) == 0)
        rows[k / 2][pick(0, in_w * cc - 1)] = NAN;
    for (long i = 0; i < (width + 1) * cc; i++)
        out[i] = scalar[i] = GUARD;
    const float *b = with_bias ? bias : NULL;
    const float *const *r = (const float *const *)rows;
    set->depthwise_row(r, in_w, cc, w, k, stride, dilation, pad_left, b, act, out, ox0, ox1);
    sepconv_uk_dwrow__scalar(r, in_w, cc, w, k, stride, dilation, pad_left, b, act, scalar,
                             ox0, ox1);
    char shape[200];
    snprintf(shape, sizeof shape,
             "in_w %ld c %ld k %ld stride %ld dilation %ld pad_left %ld columns %ld..%ld "
             "bias %d act %d", in_w, cc, k, stride, dilation, pad_left, ox0, ox1 - 1,
             with_bias, act);
    for (long ox = ox0; ox <= ox1; ox++)
        for (long ch = 0; ch < cc; ch++) {
            long i = (ox - ox0) * cc + ch;
            if (ox == ox1) {
                if (out[i] != GUARD)
                    mismatch(c, "%s depthwise wrote the guard at %ld (%g, not %g): %s",
                             set->isa, i, out[i], GUARD, shape);
                continue;
            }
            double sum = b ? b[ch] : 0.0, scale = b ? fabs(b[ch]) : 0.0;
            for (long ky = 0; ky < k; ky++)
                for (long kx = 0; rows[ky] && kx < k; kx++) {
                    long ix = ox * stride - pad_left + kx * dilation;
                    if (ix < 0 || ix >= in_w)
                        continue;
                    double term = (double)rows[ky][ix * cc + ch] * w[(ky * k + kx) * cc + ch];
                    sum += term;
                    scale += fabs(term);
                }
            double want = activate(sum, act);
            if (!agrees(out[i], want, scale))
                mismatch(c, "%s depthwise output %ld is %g, the definition %g: %s", set->isa,
                         i, out[i], want, shape);
            if (!agrees(out[i], scalar[i], scale))
                mismatch(c, "%s depthwise output %ld is %g, the scalar kernel's %g: %s",
                         set->isa, i, out[i], scalar[i], shape);
        }
    c->cases++;
    for (long ky = 0; ky < k; ky++)
        free(buffers[ky]);
    free(w);
    free(bias);
    free(out);
    free(scalar);
}

/* One random depthwise row. */
static void depthwise_case(const sepconv_microkernels *set, int special, check *c)
{
    long k = pick(1, 5), stride = pick(1, 3), dilation = pick(1, 2);
    long in_w = pick(1, 24), cc = pick(1, 80);
    if (special == 1) { /* MobileNet-like: 3x3, stride 1 or 2, pad 1 */
        k = 3;
        stride = pick(1, 2);
        dilation = 1;
        in_w = pick(0, 1) ? 14 : 28;
        cc = 8 * pick(1, 16);
    }
    long pad_left = pick(0, k), pad_right = pick(0, k);
    if (special == 1)
        pad_left = pad_right = 1;
    long out_w = (in_w + pad_left + pad_right - dilation * (k - 1) - 1) / stride + 1;
    if (out_w <= 0) {
        pad_left = pad_right = dilation * (k - 1);
        out_w = (in_w + pad_left + pad_right - dilation * (k - 1) - 1) / stride + 1;
    }
    int act = (int)pick(0, 2);
    bool with_bias = special == 2 || pick(0, 3) > 0;
    /* every other case a part of the row, as a fused kernel's pixel tile asks */
    long ox0 = 0, ox1 = out_w;
    if (pick(0, 1)) {
        ox0 = pick(0, out_w - 1);
        ox1 = pick(ox0 + 1, out_w);
    }
    depthwise_row_case(set, k, stride, dilation, in_w, cc, pad_left, ox0, ox1, act, with_bias,
                       special, false, c);
}

/* Every combination of stride 1/2, dilation 1/2, k 1/3/5, paddings 0-2 on
 * either side, out_w 1-3 (tiny rows: all border) and wider (several column
 * blocks, interior and border), channel counts around the vector widths
 * (4, 8, 16: c not a multiple, shorter than one, several vectors and a
 * tail), bias or none and the three activations. */
static void depthwise_grid(const sepconv_microkernels *set, check *c)
{
    static const long ks[] = {1, 3, 5}, widths[] = {1, 2, 3, 5, 9, 17, 26};
    static const long channels[] = {3, 16, 21, 37, 70};
    for (long stride = 1; stride <= 2; stride++)
        for (long dilation = 1; dilation <= 2; dilation++)
            for (int ki = 0; ki < 3; ki++)
                for (long pad_left = 0; pad_left <= 2; pad_left++)
                    for (long pad_right = 0; pad_right <= 2; pad_right++)
                        for (int wi = 0; wi < 7; wi++) {
                            long k = ks[ki], out_w = widths[wi];
                            /* the narrowest input that gives out_w, plus 0..stride-1 */
                            long in_w = (out_w - 1) * stride + dilation * (k - 1) + 1 -
                                        pad_left - pad_right + pick(0, stride - 1);
                            if (in_w < 1)
                                continue;
                            long cc = channels[(stride + ki + pad_left + wi) % 5];
                            int act = (int)((pad_right + wi + dilation) % 3);
                            bool with_bias = (ki + wi + pad_left) % 2 == 0;
                            depthwise_row_case(set, k, stride, dilation, in_w, cc, pad_left,
                                               0, out_w, act, with_bias, 0, false, c);
                        }
}

/* The 3x3 border columns (those whose window crosses the left or right
 * padding) on every shape the ISAs' vector blocks split differently: stride
 * 1, 2 and 3 (a window, or a load per tap), dilation 1 and 2, padding 0-2
 * on either side (1:1 as MobileNet's, 0:1 as TensorFlow's 'same' at stride
 * 2), out_w 1-9 (a row of border blocks only) and 14 and 17 (border and
 * interior blocks), the input's last columns used or not, and channel
 * counts of whole vectors and tails for each ISA (avx2: 8, 12, 16, 24, 40;
 * neon: 4, 6, 12), each with exact input rows and with NaN guards; then
 * MobileNet's paddings on channel counts past the kernels' switches (c >
 * 256 and >= 1024 change the loop order and the block widths).  A border
 * tap dropped or counted twice moves its output off the definition, one
 * taken from the padding makes it NaN. */
static void depthwise_borders(const sepconv_microkernels *set, check *c)
{
    static const long widths[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 14, 17};
    static const long channels[] = {4, 6, 8, 12, 16, 24, 40};
    const long nw = sizeof widths / sizeof widths[0], nc = sizeof channels / sizeof channels[0];
    for (long stride = 1; stride <= 3; stride++)
        for (long dilation = 1; dilation <= 2; dilation++)
            for (long pad_left = 0; pad_left <= 2; pad_left++)
                for (long pad_right = 0; pad_right <= 2; pad_right++)
                    for (long wi = 0; wi < nw; wi++)
                        for (long ci = 0; ci < nc; ci++) {
                            long out_w = widths[wi], cc = channels[ci];
                            long in_w = (out_w - 1) * stride + 2 * dilation + 1 - pad_left -
                                        pad_right + (wi + ci) % stride;
                            if (in_w < 1)
                                continue;
                            int act = (int)((wi + ci + pad_left) % 3);
                            bool with_bias = (wi + ci + pad_right) % 2 == 0;
                            depthwise_row_case(set, 3, stride, dilation, in_w, cc,
                                               pad_left, 0, out_w, act, with_bias, 0,
                                               false, c);
                            /* guarded, in two parts split mid-row (a pixel
                             * tile's edge inside a border block's reach) */
                            long half = out_w / 2;
                            if (half > 0)
                                depthwise_row_case(set, 3, stride, dilation, in_w, cc,
                                                   pad_left, 0, half, act, with_bias, 0,
                                                   true, c);
                            depthwise_row_case(set, 3, stride, dilation, in_w, cc, pad_left,
                                               half, out_w, act, with_bias, 0, true, c);
                        }
    static const long short_widths[] = {1, 3, 7, 14}, wide_channels[] = {264, 1028};
    for (long stride = 1; stride <= 2; stride++)
        for (long pad_left = 0; pad_left <= 1; pad_left++) /* 1:1 and 0:1 */
            for (long wi = 0; wi < 4; wi++)
                for (long ci = 0; ci < 2; ci++) {
                    long out_w = short_widths[wi], cc = wide_channels[ci];
                    long in_w = (out_w - 1) * stride + 3 - pad_left - 1;
                    if (in_w < 1)
                        continue;
                    depthwise_row_case(set, 3, stride, 1, in_w, cc, pad_left, 0, out_w,
                                       (int)((wi + ci) % 3), wi % 2 == 0, 0, wi == ci, c);
                }
    /* MobileNet's stride-2 rows at their real widths (112-14 inputs, and
     * odd ones: many interior blocks, then a border block): padding 0:1 (the
     * last input column in the padding), 1:1 (the first, and at odd widths
     * the last too) and 2:2 (two columns: the bounds tested at run time), on
     * channel pairs alone (16, 64) and with a last 8 (40) */
    static const long mobile_widths[] = {112, 113, 56, 28, 15, 14};
    static const long mobile_channels[] = {16, 40, 64}, pads[][2] = {{0, 1}, {1, 1}, {2, 2}};
    for (long wi = 0; wi < 6; wi++)
        for (long ci = 0; ci < 3; ci++)
            for (long pi = 0; pi < 3; pi++) {
                const long in_w = mobile_widths[wi], cc = mobile_channels[ci];
                const long out_w = (in_w + pads[pi][0] + pads[pi][1] - 3) / 2 + 1;
                depthwise_row_case(set, 3, 2, 1, in_w, cc, pads[pi][0], 0, out_w,
                                   (int)((wi + pi) % 3), (ci + pi) % 2 == 0, 0,
                                   (wi + ci + pi) % 2 == 0, c);
            }
}

/* Whether the running CPU can execute a set (NULL reason: yes). */
static const char *cpu_lacks(const char *isa)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (strcmp(isa, "avx2") == 0 &&
        !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
        return "CPU lacks avx2 + fma";
    if (strncmp(isa, "avx512", 6) == 0) { /* avx512 and avx512vnni */
        const char *off = getenv("SEPCONV_NO_AVX512");
        if (off && off[0] == '1')
            return "SEPCONV_NO_AVX512=1 (valgrind cannot run AVX-512)";
        if (!__builtin_cpu_supports("avx512f"))
            return "CPU lacks avx512f";
        if (strcmp(isa, "avx512vnni") == 0 && !__builtin_cpu_supports("avx512vnni"))
            return "CPU lacks avx512vnni";
    }
#endif
    (void)isa;
    return NULL;
}

/* Runs `cases` random cases of each kind on a set; the first mismatch in
 * c->message. */
static void run_cases(const sepconv_microkernels *set, uint64_t seed, long cases, check *c)
{
    rng_state = seed;
    for (long i = 0; i < cases; i++) {
        int special = i % 10 == 0 ? 2 : i % 4 == 0 ? 1 : 0;
        pointwise_case(set, special, c);
        depthwise_case(set, special, c);
    }
    depthwise_grid(set, c);
    depthwise_borders(set, c);
}

/* The exact activation rules on a hand-made row: relu keeps -0.0 and NaN,
 * relu6 clamps at 6 and keeps NaN; pointwise with m = 1, weight 1. */
static void activation_rules(const sepconv_microkernels *set, check *c)
{
    const float in[] = {-0.0f, 0.0f, NAN, -3.0f, 5.0f, 7.5f, 6.0f, -NAN, INFINITY,
                        -INFINITY, 1e-40f, -1e-40f};
    const long pixels = sizeof in / sizeof in[0];
    float packed[16] = {1.0f};
    for (int act = 0; act <= 2; act++) {
        float out[12 * 16];
        for (long i = 0; i < 12 * 16; i++)
            out[i] = GUARD;
        set->pointwise(in, 1, out, 16, pixels, packed, 1, 1, 16, NULL, act);
        for (long p = 0; p < pixels; p++) {
            /* the sum starts at +0: -0.0 * 1 + 0 is +0, so the -0.0 case is the
             * depthwise one below, where the bias is -0.0 */
            double want = activate((double)in[p] * 1.0 + 0.0, act);
            if (!agrees(out[p * 16], want, fabs(in[p])))
                mismatch(c, "%s activation of input %ld is %g, the definition %g: %s",
                         set->isa, p, out[p * 16], want, act == 0 ? "none"
                                                          : act == 1 ? "relu" : "relu6");
        }
        /* depthwise 1x1, bias -0.0, input 0, weight -1: the sum is exactly -0.0 */
        float x[40], w1[40], b1[40], y[40];
        for (int i = 0; i < 40; i++) {
            x[i] = 0.0f;
            w1[i] = -1.0f;
            b1[i] = -0.0f;
        }
        const float *rows[1] = {x};
        set->depthwise_row(rows, 1, 40, w1, 1, 1, 1, 0, b1, act, y, 0, 1);
        for (int i = 0; i < 40; i++)
            if (!(y[i] == 0.0f && signbit(y[i])))
                mismatch(c, "%s depthwise -0.0 became %g in channel %ld: %s", set->isa, i,
                         y[i], -0.0, act == 0 ? "none" : act == 1 ? "relu" : "relu6");
        c->cases++;
    }
}

static const char *const isas[] = {"portable", "avx2", "avx512", "neon"};
/* The int8 kernels' sets: every target's, and avx512's without VNNI too. */
static const char *const variants[] = {"portable", "avx2", "avx512", "avx512vnni", "neon"};
enum { VARIANTS = sizeof variants / sizeof variants[0] };

#ifdef SEPCONV_UK_STANDALONE
int main(int argc, char **argv)
{
    long cases = argc > 1 ? atol(argv[1]) : 400;
    int failed = 0;
    for (int i = 0; i < 4; i++) {
        const sepconv_microkernels *set = sepconv_microkernels_find(isas[i]);
        const char *lacks = set ? cpu_lacks(isas[i]) : "not in this build";
        if (lacks) {
            printf("SKIP %s: %s\n", isas[i], lacks);
            continue;
        }
        check c = {{0}, 0, 0};
        run_cases(set, 1 + (uint64_t)i, cases, &c);
        activation_rules(set, &c);
        printf("%s %s (%s, %s): %ld cases, %ld mismatches%s%s\n",
               c.mismatches ? "FAIL" : "PASS", isas[i], set->pointwise_name,
               set->depthwise_name, c.cases, c.mismatches, c.mismatches ? ": " : "",
               c.message);
        failed |= c.mismatches != 0;
    }
    return failed;
}
#else
#include "microkernels/int8.h"
#include "reference/quantize.h"
#include "tests.h"

/* One set: random cases and the activation rules, or a SKIP line. */
static void check_set(const char *isa, long cases)
{
    const sepconv_microkernels *set = sepconv_microkernels_find(isa);
    const char *lacks = set ? cpu_lacks(isa) : "not in this build (another architecture)";
    if (lacks) {
        printf("SKIP    micro-kernels %s: %s\n", isa, lacks);
        return;
    }
    ck_assert_str_eq(set->isa, isa);
    ck_assert_ptr_nonnull(set->pointwise_name);
    ck_assert_ptr_nonnull(set->depthwise_name);
    check c = {{0}, 0, 0};
    run_cases(set, 0x5eed + (uint64_t)strlen(isa), cases, &c);
    activation_rules(set, &c);
    ck_assert_msg(c.mismatches == 0, "%ld of %ld cases' outputs disagree; first: %s",
                  c.mismatches, c.cases, c.message);
    sepconv_target target;
    if (sepconv_target_parse(isa, &target, NULL) == SEPCONV_OK)
        test_target_exercised(target, "micro-kernels"); /* for the run's summary line */
}

START_TEST(every_set_matches_the_definition)
{
    check_set(isas[_i], under_valgrind() ? 40 : 400);
}
END_TEST

START_TEST(sets_are_found_by_target_name)
{
    const sepconv_microkernels *portable = sepconv_microkernels_find("portable");
    ck_assert_ptr_nonnull(portable);
    ck_assert_ptr_eq(portable->pointwise, sepconv_uk_pointwise__scalar);
    ck_assert_ptr_null(sepconv_microkernels_find("sse9"));
    ck_assert_ptr_null(sepconv_microkernels_find(NULL));
#if defined(__x86_64__)
    ck_assert_ptr_nonnull(sepconv_microkernels_find("avx2"));
    ck_assert_ptr_nonnull(sepconv_microkernels_find("avx512"));
    ck_assert_ptr_null(sepconv_microkernels_find("neon"));
    /* avx512's int8 pointwise is VNNI's where the CPU has it */
    const bool vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
    ck_assert_str_eq(sepconv_microkernels_find("avx512")->variant, vnni ? "avx512vnni" : "avx512");
    ck_assert_ptr_eq(sepconv_microkernels_variant("avx512")->qpack, sepconv_uk_qpack_pairs);
    ck_assert_ptr_eq(sepconv_microkernels_variant("avx512vnni")->qpack, sepconv_uk_qpack_quads);
#elif defined(__aarch64__)
    ck_assert_ptr_nonnull(sepconv_microkernels_find("neon"));
    ck_assert_ptr_null(sepconv_microkernels_find("avx2"));
#endif
    /* the dispatchers pick a set the CPU runs and compute what it computes */
    const sepconv_microkernels *best = sepconv_microkernels_best();
    ck_assert_ptr_nonnull(best);
    ck_assert_ptr_null(cpu_lacks(best->isa));
    const float in[3] = {1.0f, 2.0f, -4.0f};
    const float packed[8] = {0.5f, 1.0f, 0, 0, 0, 0, 0, 0};
    float out[2] = {GUARD, GUARD};
    sepconv_uk_pointwise(in, 3, out, 2, 1, packed, 1, 2, 8, NULL, 0);
    ck_assert_float_eq(out[0], 0.5f);
    ck_assert_float_eq(out[1], 1.0f);
    const float *rows[1] = {in};
    float row[3] = {GUARD, GUARD, GUARD};
    sepconv_uk_depthwise_row(rows, 1, 3, in, 1, 1, 1, 0, NULL, 1, row, 0, 1);
    ck_assert_float_eq(row[0], 1.0f);
    ck_assert_float_eq(row[1], 4.0f);
    ck_assert_float_eq(row[2], 16.0f);
}
END_TEST

/* One batch of int8 rescaling cases through a set's two int8 kernels, as
 * sums their 1x1 weights of zero leave as the bias: each output against the
 * oracle's rescaling (sepconv_q_rescale, tested against hand-worked cases in
 * test_quantize.c), + out_zero, clamped. */
enum { QCASES = 40 };
static void qrescale_batch(const sepconv_microkernels *set, const int32_t *sum,
                           const int32_t *requant, int out_zero, long *checked)
{
    const int quant[4] = {0, out_zero, -128, 127};
    int8_t zeros[QCASES] = {0}, out[2][QCASES];
    const int8_t *rows[1] = {zeros};
    int32_t packed[SEPCONV_UK_QPACKED_ELEMENTS(1, QCASES)];
    set->qpack(zeros, 1, QCASES, sum, 0, packed);
    set->qpointwise(zeros, 1, 1, 1, packed, QCASES, requant, quant, out[0]);
    set->qdwrow(rows, 1, QCASES, zeros, 1, 1, 1, 0, sum, requant, quant, out[1], 0, 1);
    for (int c = 0; c < QCASES; c++) {
        sepconv_qmultiplier m = {requant[c], requant[QCASES + c]};
        int64_t q = (int64_t)sepconv_q_rescale(sum[c], m) + out_zero;
        int8_t want = (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
        for (int k = 0; k < 2; k++)
            ck_assert_msg(out[k][c] == want,
                          "%s %s: sum %d, significand %d, shift %d, out_zero %d: %d, not %d",
                          set->variant, k ? "qdwrow" : "qpointwise", sum[c], requant[c],
                          requant[QCASES + c], out_zero, out[k][c], want);
        ++*checked;
    }
}

/* A variant's set, or NULL after a SKIP line naming the test and why
 * (another architecture, or a CPU without it). */
static const sepconv_microkernels *variant_or_skip(const char *variant, const char *what)
{
    const sepconv_microkernels *set = sepconv_microkernels_variant(variant);
    const char *lacks = set ? cpu_lacks(variant) : "not in this build (another architecture)";
    if (lacks)
        printf("SKIP    %s %s: %s\n", what, variant, lacks);
    return lacks ? NULL : set;
}

START_TEST(int8_rescaling_matches_the_oracle_at_its_corners)
{
    const sepconv_microkernels *set = variant_or_skip(variants[_i], "int8 rescaling");
    if (!set)
        return;
    /* (INT32_MIN is no Q31 significand a scale makes, but the kernels take
     * any int32, and INT32_MIN squared is the high multiply's saturation) */
    const int32_t significands[] = {1 << 30, (1 << 30) + 1, 0x5a827999, INT32_MAX, INT32_MIN};
    const int shifts[] = {-31, -24, -9, -1, 0, 1, 4, 12, 30};
    uint64_t state = 0x9e3779b97f4a7c15u;
    int32_t sum[QCASES], requant[2 * QCASES];
    long filled = 0, checked = 0;
    for (size_t i = 0; i < sizeof significands / sizeof significands[0]; i++)
        for (size_t j = 0; j < sizeof shifts / sizeof shifts[0]; j++)
            for (int r = 0; r < 24; r++) {
                /* sums whose results land near every output from -140 to 140,
                 * a few off the exact multiple to reach the ties, and the
                 * int32 extremes that saturate the left shift */
                state = state * 6364136223846793005u + 1442695040888963407u;
                const long target = (long)(state >> 33) % 281 - 140;
                const int delta = (int)((state >> 20) % 7) - 3;
                double exact = (double)target * ldexp(1.0, 31 - shifts[j]) / significands[i];
                double value = r == 0 ? INT32_MAX : r == 1 ? INT32_MIN : exact + delta;
                value = value > INT32_MAX ? INT32_MAX : value < INT32_MIN ? INT32_MIN : value;
                sum[filled] = (int32_t)value;
                requant[filled] = significands[i];
                requant[QCASES + filled] = shifts[j];
                if (++filled == QCASES) {
                    qrescale_batch(set, sum, requant, (int)(r % 5) * 20 - 40, &checked);
                    filled = 0;
                }
            }
    ck_assert_int_gt(checked, 800);
}
END_TEST

START_TEST(int8_pointwise_packing_is_the_documented_layout)
{
    /* w [3][2] (input channel rows), bias {10, -10}, in_zero 2: the folded
     * biases 10 - 2 x (1 + 3 + 5) = -8 and -10 - 2 x (2 + 4 + 6) = -34,
     * then pair 0 (input channels 0, 1) and pair 1 (2 and a zero) of
     * channels 0 and 1, 14 zero channels after each */
    const int8_t w[6] = {1, 2, 3, 4, 5, 6};
    const int32_t bias[2] = {10, -10};
    int32_t packed[SEPCONV_UK_QPACKED_ELEMENTS(3, 2) + 1];
    ck_assert_int_eq(SEPCONV_UK_QPACKED_ELEMENTS(3, 2), 16 + 16 * 2);
    packed[48] = 77; /* a guard */
    sepconv_uk_qpack_pairs(w, 3, 2, bias, 2, packed);
    ck_assert_int_eq(packed[0], -8);
    ck_assert_int_eq(packed[1], -34);
    for (int c = 2; c < 16; c++)
        ck_assert_int_eq(packed[c], 0);
    const int16_t *pairs = sepconv_uk_qpacked_pairs(packed, 2);
    const int16_t want[2][4] = {{1, 3, 2, 4}, {5, 0, 6, 0}};
    for (int j = 0; j < 2; j++) {
        for (int i = 0; i < 4; i++)
            ck_assert_int_eq(pairs[j * 32 + i], want[j][i]);
        for (int i = 4; i < 32; i++)
            ck_assert_int_eq(pairs[j * 32 + i], 0);
    }
    ck_assert_int_eq(packed[48], 77);
}
END_TEST

START_TEST(int8_pointwise_quads_are_the_documented_layout)
{
    /* VNNI's: w [5][2], bias {10, -10}, in_zero 2: the folded biases
     * 10 - 130 x (1 + 3 + 5 + 7 + 9) = -3240 and -10 - 130 x (2 + 4 + 6 +
     * 8 + 10) = -3910, then quad 0 (input channels 0-3) and quad 1 (4 and
     * three zeros) of channels 0 and 1, 14 zero channels after each; 16 x
     * (1 + 2) int32, fewer than the pairs' 16 x (1 + 3) */
    const int8_t w[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    const int32_t bias[2] = {10, -10};
    int32_t packed[SEPCONV_UK_QPACKED_ELEMENTS(5, 2)];
    for (int i = 0; i < SEPCONV_UK_QPACKED_ELEMENTS(5, 2); i++)
        packed[i] = 77; /* guards past the 48 it writes */
    sepconv_uk_qpack_quads(w, 5, 2, bias, 2, packed);
    ck_assert_int_eq(packed[0], -3240);
    ck_assert_int_eq(packed[1], -3910);
    for (int c = 2; c < 16; c++)
        ck_assert_int_eq(packed[c], 0);
    const int8_t *quads = (const int8_t *)(packed + 16);
    const int8_t want[2][8] = {{1, 3, 5, 7, 2, 4, 6, 8}, {9, 0, 0, 0, 10, 0, 0, 0}};
    for (int j = 0; j < 2; j++) {
        for (int i = 0; i < 8; i++)
            ck_assert_int_eq(quads[j * 64 + i], want[j][i]);
        for (int i = 8; i < 64; i++)
            ck_assert_int_eq(quads[j * 64 + i], 0);
    }
    for (int i = 48; i < SEPCONV_UK_QPACKED_ELEMENTS(5, 2); i++)
        ck_assert_int_eq(packed[i], 77);
}
END_TEST

/* Sums whose parts pass int32 where the whole does not: 70000 inputs of
 * 127 at in_zero 127 against weights of 127 sum to the bias alone, while
 * the folded bias (-127 x 127 x 70000 with the pairs, -255 x 127 x 70000
 * with the quads) and the raw products' sum are past 2^31; and 70000
 * channels are past every kernel's stack buffer (their plain path). */
START_TEST(int8_pointwise_sums_wrap_exactly)
{
    const sepconv_microkernels *set = variant_or_skip(variants[_i], "int8 pointwise wrapping");
    if (!set)
        return;
    enum { M = 70000, N = 3, PIXELS = 2 };
    int8_t *in = malloc(PIXELS * M), *w = malloc((size_t)M * N), out[PIXELS * N];
    int32_t *packed = malloc((size_t)SEPCONV_UK_QPACKED_ELEMENTS(M, N) * sizeof *packed);
    ck_assert(in && w && packed);
    memset(in, 127, PIXELS * M);
    memset(w, 127, (size_t)M * N);
    in[M + 5] = 125; /* pixel 1: (125 - 127) x 127 = -254 more */
    const int32_t bias[N] = {1000, -7, 0};
    const int32_t requant[2 * N] = {1 << 30, 1 << 30, 1 << 30, -2, -2, -2};
    const int quant[4] = {127, 0, -128, 127};
    set->qpack(w, M, N, bias, 127, packed);
    set->qpointwise(in, M, PIXELS, M, packed, N, requant, quant, out);
    /* x 2^30 / 2^31 / 4: an eighth, to nearest (ties away from zero) */
    const int want[PIXELS][N] = {{125, -1, 0}, {93, -33, -32}};
    for (int p = 0; p < PIXELS; p++)
        for (int c = 0; c < N; c++)
            ck_assert_msg(out[p * N + c] == want[p][c], "%s: pixel %d channel %d is %d, not %d",
                          set->variant, p, c, out[p * N + c], want[p][c]);
    free(in);
    free(w);
    free(packed);
}
END_TEST

/* The int8 pointwise of every set against its definition computed here:
 * acc = bias + the sum of (x - in_zero) x w in int64, rescaled by the
 * oracle (sepconv_q_rescale), + out_zero, clamped; random m (odd and
 * even), n around the blocks of 16, pixel counts around the tiles, an
 * input step past m, any zero point, bias or none, full-range data. */
START_TEST(int8_pointwise_matches_the_definition)
{
    const sepconv_microkernels *set = variant_or_skip(variants[_i], "int8 pointwise");
    if (!set)
        return;
    rng_state = 0x51ed2701u + (uint64_t)_i;
    long checked = 0;
    for (int trial = 0; trial < 60; trial++) {
        const long m = pick(1, 70), n = pick(1, 50), pixels = pick(1, 11);
        const long step = m + pick(0, 3);
        const int in_zero = (int)pick(-128, 127), out_zero = (int)pick(-20, 20);
        const bool has_bias = pick(0, 1);
        const int quant[4] = {in_zero, out_zero, (int)pick(-128, -100), (int)pick(100, 127)};
        int8_t *in = malloc((size_t)(pixels * step)), *w = malloc((size_t)(m * n));
        int8_t *out = malloc((size_t)(pixels * n + 16));
        int32_t *bias = malloc((size_t)n * sizeof *bias), *requant = malloc(2 * (size_t)n * 4);
        int32_t *packed = malloc((size_t)SEPCONV_UK_QPACKED_ELEMENTS(m, n) * sizeof *packed);
        for (long i = 0; i < pixels * step; i++)
            in[i] = (int8_t)(pick(0, 255) - 128);
        for (long i = 0; i < m * n; i++)
            w[i] = (int8_t)(pick(0, 255) - 128);
        for (long c = 0; c < n; c++) {
            bias[c] = (int32_t)pick(-30000, 30000);
            sepconv_qmultiplier q = sepconv_quantize_multiplier(ldexp(1.0, -(int)pick(8, 16)) *
                                                                (1 + uniform() / 2));
            requant[c] = q.significand;
            requant[n + c] = q.shift;
        }
        memset(out, 0x5a, (size_t)(pixels * n + 16));
        set->qpack(w, m, n, has_bias ? bias : NULL, in_zero, packed);
        set->qpointwise(in, step, pixels, m, packed, n, requant, quant, out);
        for (long p = 0; p < pixels; p++)
            for (long c = 0; c < n; c++) {
                int64_t acc = has_bias ? bias[c] : 0;
                for (long ic = 0; ic < m; ic++)
                    acc += (int64_t)(in[p * step + ic] - in_zero) * w[ic * n + c];
                sepconv_qmultiplier q = {requant[c], requant[n + c]};
                int64_t v = (int64_t)sepconv_q_rescale((int32_t)acc, q) + out_zero;
                v = v < quant[2] ? quant[2] : v > quant[3] ? quant[3] : v;
                ck_assert_msg(out[p * n + c] == v, "%s int8 pointwise m=%ld n=%ld pixels=%ld "
                              "in_zero=%d: pixel %ld channel %ld is %d, not %d", set->variant, m,
                              n, pixels, in_zero, p, c, out[p * n + c], (int)v);
                checked++;
            }
        for (long i = 0; i < 16; i++)
            ck_assert_int_eq((unsigned char)out[pixels * n + i], 0x5a);
        free(in);
        free(w);
        free(out);
        free(bias);
        free(requant);
        free(packed);
    }
    ck_assert_int_gt(checked, 3000);
}
END_TEST

Suite *microkernels_suite(void)
{
    Suite *suite = suite_create("microkernels");
    TCase *tc = tcase_create("sets");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sets_are_found_by_target_name);
    tcase_add_loop_test(tc, every_set_matches_the_definition, 0, 4);
    tcase_add_loop_test(tc, int8_rescaling_matches_the_oracle_at_its_corners, 0, VARIANTS);
    tcase_add_test(tc, int8_pointwise_packing_is_the_documented_layout);
    tcase_add_test(tc, int8_pointwise_quads_are_the_documented_layout);
    tcase_add_loop_test(tc, int8_pointwise_matches_the_definition, 0, VARIANTS);
    tcase_add_loop_test(tc, int8_pointwise_sums_wrap_exactly, 0, VARIANTS);
    suite_add_tcase(suite, tc);
    return suite;
}
#endif
