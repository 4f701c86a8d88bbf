/*
 * microkernels.c -- SIMD row kernels that libsepconv builds with the system
 * compiler, for generated code of target "native" to call a row at a time.
 * tcc cannot emit vector code; the code it compiles keeps the layer's
 * specialization (constants, borders, tiles) and hands the inner work to
 * these.  Each checks the CPU when called: AVX-512 where the processor has
 * it (and SEPCONV_NO_AVX512 is not set), plain C otherwise.
 *
 * Both take channel-last (NHWC) rows, and apply bias and activation with
 * the reference's NaN semantics.
 */
#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/core.h"
#include "microkernels/microkernels.h"

static pthread_once_t choose_once = PTHREAD_ONCE_INIT;
static bool use_avx512;

/* Decides once per process whether the AVX-512 kernels may run. */
static void choose(void)
{
    const char *off = getenv("SEPCONV_NO_AVX512");
    __builtin_cpu_init();
    use_avx512 = __builtin_cpu_supports("avx512f") && !(off && off[0] == '1');
}

/* The activation of one value, as the reference defines it. */
static inline float activate(float x, int act)
{
    if (act == 0)
        return x;
    x = x < 0.0f ? 0.0f : x;
    return act == 2 && x > 6.0f ? 6.0f : x;
}

/* ------------------------------------------------------------- pointwise */

/* Plain C: `pixels` outputs of n channels from packed [n/block][m][block]. */
static void pointwise_c(const float *in, long in_step, float *out, long out_step,
                        long pixels, const float *packed, long m, long n, long block,
                        const float *bias, int act)
{
    for (long p = 0; p < pixels; p++)
        for (long co = 0; co < n; co++) {
            const float *w = packed + (co / block) * m * block + co % block;
            float sum = bias ? bias[co] : 0.0f;
            for (long k = 0; k < m; k++)
                sum += in[p * in_step + k] * w[k * block];
            out[p * out_step + co] = activate(sum, act);
        }
}

/* The AVX-512 activation of a vector: max(0, x), min(6, x) keep NaN. */
__attribute__((target("avx512f"))) static inline __m512 activate512(__m512 x, int act)
{
    if (act == 0)
        return x;
    x = _mm512_max_ps(_mm512_setzero_ps(), x);
    return act == 2 ? _mm512_min_ps(_mm512_set1_ps(6.0f), x) : x;
}

/* P pixels x Q vectors of one channel block: the register tile. */
#define POINTWISE_TILE(P, Q)                                                            \
    __attribute__((target("avx512f"))) static void pointwise_tile_##P##_##Q(           \
        const float *in, long in_step, float *out, long out_step, const float *w,      \
        long m, long block, const float *bias, int act, __mmask16 last)                \
    {                                                                                  \
        __m512 acc[P][Q];                                                              \
        for (int q = 0; q < Q; q++) {                                                  \
            __m512 b = bias ? _mm512_maskz_loadu_ps(q == Q - 1 ? last : 0xffff,        \
                                                    bias + 16 * q)                     \
                            : _mm512_setzero_ps();                                     \
            for (int p = 0; p < P; p++)                                                \
                acc[p][q] = b;                                                         \
        }                                                                              \
        for (long k = 0; k < m; k++) {                                                 \
            __m512 wv[Q];                                                              \
            for (int q = 0; q < Q; q++)                                                \
                wv[q] = _mm512_loadu_ps(w + k * block + 16 * q);                       \
            for (int p = 0; p < P; p++) {                                              \
                __m512 x = _mm512_set1_ps(in[p * in_step + k]);                        \
                for (int q = 0; q < Q; q++)                                            \
                    acc[p][q] = _mm512_fmadd_ps(x, wv[q], acc[p][q]);                  \
            }                                                                          \
        }                                                                              \
        for (int p = 0; p < P; p++)                                                    \
            for (int q = 0; q < Q; q++)                                                \
                _mm512_mask_storeu_ps(out + p * out_step + 16 * q,                     \
                                      q == Q - 1 ? last : 0xffff,                      \
                                      activate512(acc[p][q], act));                    \
    }

#define POINTWISE_TILES(Q)                                                              \
    POINTWISE_TILE(1, Q) POINTWISE_TILE(2, Q) POINTWISE_TILE(3, Q)                      \
    POINTWISE_TILE(4, Q) POINTWISE_TILE(5, Q) POINTWISE_TILE(6, Q) POINTWISE_TILE(7, Q)
POINTWISE_TILES(1)
POINTWISE_TILES(2)
POINTWISE_TILES(3)
POINTWISE_TILES(4)

typedef void (*tile_fn)(const float *, long, float *, long, const float *, long, long,
                        const float *, int, __mmask16);
#define ROW(Q) {pointwise_tile_1_##Q, pointwise_tile_2_##Q, pointwise_tile_3_##Q,       \
                pointwise_tile_4_##Q, pointwise_tile_5_##Q, pointwise_tile_6_##Q,       \
                pointwise_tile_7_##Q}
static const tile_fn pointwise_tiles[4][7] = {ROW(1), ROW(2), ROW(3), ROW(4)};

/* AVX-512: tiles of up to 7 pixels by one packed block (16..64 channels). */
__attribute__((target("avx512f"))) static void pointwise_avx512(
    const float *in, long in_step, float *out, long out_step, long pixels,
    const float *packed, long m, long n, long block, const float *bias, int act)
{
    for (long co = 0; co < n; co += block) {
        long width = n - co < block ? n - co : block; /* the last block may be short */
        int vectors = (int)((width + 15) / 16);
        long rest = width - 16 * (vectors - 1);
        __mmask16 last = (__mmask16)(rest >= 16 ? 0xffff : (1u << rest) - 1);
        const float *w = packed + co * m;
        for (long p = 0; p < pixels; p += 7) {
            long tile = pixels - p < 7 ? pixels - p : 7;
            pointwise_tiles[vectors - 1][tile - 1](in + p * in_step, in_step,
                                                  out + p * out_step + co, out_step, w, m,
                                                  block, bias ? bias + co : NULL, act, last);
        }
    }
}

/* `pixels` output pixels (steps in floats) of a pointwise stage whose
 * weights are packed as [ceil(n/block)][m][block]. */
void sepconv_uk_pointwise(const float *in, long in_step, float *out, long out_step,
                          long pixels, const float *packed, long m, long n, long block,
                          const float *bias, int act)
{
    pthread_once(&choose_once, choose);
    if (use_avx512 && block % 16 == 0 && block <= 64)
        pointwise_avx512(in, in_step, out, out_step, pixels, packed, m, n, block, bias, act);
    else
        pointwise_c(in, in_step, out, out_step, pixels, packed, m, n, block, bias, act);
}

/* ------------------------------------------------------------- depthwise */

/* The taps kx of output column ox that land inside the input: [*lo, *hi). */
static inline void columns(long ox, long k, long stride, long dilation, long pad_left,
                           long in_w, long *lo, long *hi)
{
    *lo = 0;
    *hi = k;
    while (*lo < k && ox * stride - pad_left + *lo * dilation < 0)
        (*lo)++;
    while (*hi > *lo && ox * stride - pad_left + (*hi - 1) * dilation >= in_w)
        (*hi)--;
}

/* Plain C: one output row of a depthwise stage (multiplier 1). */
static void depthwise_c(const float *const *rows, long in_w, long c, const float *w,
                        long k, long stride, long dilation, long pad_left,
                        const float *bias, int act, float *out, long out_w)
{
    for (long ox = 0; ox < out_w; ox++) {
        long lo, hi;
        columns(ox, k, stride, dilation, pad_left, in_w, &lo, &hi);
        for (long ch = 0; ch < c; ch++) {
            float sum = bias ? bias[ch] : 0.0f;
            for (long ky = 0; ky < k; ky++)
                for (long kx = lo; rows[ky] && kx < hi; kx++)
                    sum += rows[ky][(ox * stride - pad_left + kx * dilation) * c + ch] *
                           w[(ky * k + kx) * c + ch];
            out[ox * c + ch] = activate(sum, act);
        }
    }
}

/* AVX-512: one output row, 16 channels a vector, 4 vectors at a time. */
__attribute__((target("avx512f"))) static void depthwise_avx512(
    const float *const *rows, long in_w, long c, const float *w, long k, long stride,
    long dilation, long pad_left, const float *bias, int act, float *out, long out_w)
{
    for (long ox = 0; ox < out_w; ox++) {
        long lo, hi;
        columns(ox, k, stride, dilation, pad_left, in_w, &lo, &hi);
        long first = ox * stride - pad_left;
        for (long ch = 0; ch < c; ch += 64) {
            __m512 acc[4];
            __mmask16 masks[4];
            for (int v = 0; v < 4; v++) {
                long left = c - ch - 16 * v;
                masks[v] = (__mmask16)(left >= 16 ? 0xffff : left > 0 ? (1u << left) - 1 : 0);
                acc[v] = bias ? _mm512_maskz_loadu_ps(masks[v], bias + ch + 16 * v)
                              : _mm512_setzero_ps();
            }
            for (long ky = 0; ky < k; ky++) {
                if (!rows[ky])
                    continue;
                for (long kx = lo; kx < hi; kx++) {
                    const float *x = rows[ky] + (first + kx * dilation) * c + ch;
                    const float *wk = w + (ky * k + kx) * c + ch;
                    for (int v = 0; v < 4; v++)
                        acc[v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(masks[v], x + 16 * v),
                                                 _mm512_maskz_loadu_ps(masks[v], wk + 16 * v),
                                                 acc[v]);
                }
            }
            for (int v = 0; v < 4; v++)
                _mm512_mask_storeu_ps(out + ox * c + ch + 16 * v, masks[v],
                                      activate512(acc[v], act));
        }
    }
}

/* One output row of a depthwise stage with multiplier 1: rows[ky] is the
 * input row under tap row ky (NULL where it falls in the padding). */
void sepconv_uk_depthwise_row(const float *const *rows, long in_w, long c, const float *w,
                              long k, long stride, long dilation, long pad_left,
                              const float *bias, int act, float *out, long out_w)
{
    pthread_once(&choose_once, choose);
    if (use_avx512)
        depthwise_avx512(rows, in_w, c, w, k, stride, dilation, pad_left, bias, act, out,
                         out_w);
    else
        depthwise_c(rows, in_w, c, w, k, stride, dilation, pad_left, bias, act, out, out_w);
}
