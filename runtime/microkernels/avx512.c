/*
 * microkernels/avx512.c -- the AVX-512F micro-kernels (x86-64 only, built
 * with -mavx512f).  Vectors of 16 floats; 32 zmm registers.
 *
 * Pointwise: register tiles of up to 7 pixels x 4 vectors (28 accumulators)
 * over chunks of up to 64 channels of a packed block; a row's pixels are
 * split into balanced tiles.  The last vector of a chunk loads weights and
 * bias and stores under a mask, which never reads past the block: every
 * block works.  Depthwise: 3x3 interior columns keep a channel vector's 9
 * weights in registers over 4 output columns; border columns, other k and
 * the last channels (c % 16) take one column at a time, 4 vectors of
 * channels, the last ones masked.
 */
#include <immintrin.h>
#include <stddef.h>

#include "microkernels/common.h"
#include "microkernels/microkernels.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))
/* Loops over a tile's pixels and vectors, unrolled before gcc decides what
 * lives in memory (without it the accumulators are stored every k). */
#define EACH _Pragma("GCC unroll 8") for

/* max(0, x), min(6, x) return x when it is NaN and for (+0, -0). */
static ALWAYS_INLINE __m512 activate16(__m512 x, int act)
{
    if (act == 0)
        return x;
    x = _mm512_max_ps(_mm512_setzero_ps(), x);
    return act == 2 ? _mm512_min_ps(_mm512_set1_ps(6.0f), x) : x;
}

static inline __mmask16 lanes_mask(long lanes)
{
    return (__mmask16)(lanes >= 16 ? 0xffff : lanes > 0 ? (1u << lanes) - 1 : 0);
}

/* ------------------------------------------------------------- pointwise */

static ALWAYS_INLINE void pw_tile(const int P, const int Q, const float *in, long in_step,
                                  float *out, long out_step, const float *w, long m,
                                  long block, const float *bias, int act, __mmask16 last)
{
    __m512 acc[7][4];
    EACH (int q = 0; q < Q; q++) {
        __m512 b = bias ? _mm512_maskz_loadu_ps(q == Q - 1 ? last : 0xffff, bias + 16 * q)
                        : _mm512_setzero_ps();
        EACH (int p = 0; p < P; p++)
            acc[p][q] = b;
    }
    for (long k = 0; k < m; k++) {
        __m512 wv[4];
        EACH (int q = 0; q < Q; q++)
            wv[q] = _mm512_maskz_loadu_ps(q == Q - 1 ? last : 0xffff, w + k * block + 16 * q);
        EACH (int p = 0; p < P; p++) {
            __m512 x = _mm512_set1_ps(in[p * in_step + k]);
            EACH (int q = 0; q < Q; q++)
                acc[p][q] = _mm512_fmadd_ps(x, wv[q], acc[p][q]);
        }
    }
    EACH (int p = 0; p < P; p++)
        EACH (int q = 0; q < Q; q++)
            _mm512_mask_storeu_ps(out + p * out_step + 16 * q, q == Q - 1 ? last : 0xffff,
                                  activate16(acc[p][q], act));
}

typedef void (*tile_fn)(const float *, long, float *, long, const float *, long, long,
                        const float *, int, __mmask16);

#define TILE(P, Q)                                                                      \
    static void pw_tile_##P##x##Q(const float *in, long in_step, float *out,            \
                                  long out_step, const float *w, long m, long block,    \
                                  const float *bias, int act, __mmask16 last)           \
    {                                                                                   \
        pw_tile(P, Q, in, in_step, out, out_step, w, m, block, bias, act, last);        \
    }
#define TILES(Q) TILE(1, Q) TILE(2, Q) TILE(3, Q) TILE(4, Q) TILE(5, Q) TILE(6, Q) TILE(7, Q)
TILES(1)
TILES(2)
TILES(3)
TILES(4)

#define ROW(Q) {pw_tile_1x##Q, pw_tile_2x##Q, pw_tile_3x##Q, pw_tile_4x##Q, pw_tile_5x##Q, \
                pw_tile_6x##Q, pw_tile_7x##Q}
static const tile_fn tiles[4][7] = {ROW(1), ROW(2), ROW(3), ROW(4)};

/* `pixels` outputs: per block, chunks of up to 64 channels, each over the
 * row's pixels in balanced tiles of at most 7. */
void sepconv_uk_pointwise_7x64__avx512(const float *in, long in_step, float *out,
                                       long out_step, long pixels, const float *packed,
                                       long m, long n, long block, const float *bias,
                                       int act)
{
    if (pixels <= 0 || n <= 0 || block <= 0)
        return;
    long count = (pixels + 6) / 7, base = pixels / count, extra = pixels % count;
    for (long co = 0; co < n; co += block) {
        long width = n - co < block ? n - co : block; /* the last block may be short */
        const float *wb = packed + co * m;
        for (long c = 0; c < width; c += 64) {
            long left = width - c < 64 ? width - c : 64;
            int vectors = (int)((left + 15) / 16);
            __mmask16 last = lanes_mask(left - 16 * (vectors - 1));
            long p = 0;
            for (long t = 0; t < count; t++) {
                long size = base + (t < extra);
                tiles[vectors - 1][size - 1](in + p * in_step, in_step,
                                             out + p * out_step + co + c, out_step, wb + c, m,
                                             block, bias ? bias + co + c : NULL, act, last);
                p += size;
            }
        }
    }
}

/* ------------------------------------------------------------- depthwise */

/* General path: output columns [ox0, ox1), channels [ch0, c), 16 a vector,
 * 4 vectors at a time, the last ones masked. */
static void dw_general(const float *const *rows, long in_w, long c, const float *w, long k,
                       long stride, long dilation, long pad_left, const float *bias,
                       int act, float *out, long ox0, long ox1, long ch0)
{
    for (long ox = ox0; ox < ox1; ox++) {
        long lo, hi;
        sepconv_uk_columns(ox, k, stride, dilation, pad_left, in_w, &lo, &hi);
        long first = ox * stride - pad_left;
        for (long ch = ch0; ch < c; ch += 64) {
            __m512 acc[4];
            __mmask16 masks[4];
            EACH (int v = 0; v < 4; v++) {
                masks[v] = lanes_mask(c - ch - 16 * v);
                acc[v] = bias ? _mm512_maskz_loadu_ps(masks[v], bias + ch + 16 * v)
                              : _mm512_setzero_ps();
            }
            for (long ky = 0; ky < k; ky++) {
                if (!rows[ky])
                    continue;
                for (long kx = lo; kx < hi; kx++) {
                    const float *x = rows[ky] + (first + kx * dilation) * c + ch;
                    const float *wk = w + (ky * k + kx) * c + ch;
                    EACH (int v = 0; v < 4; v++)
                        acc[v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(masks[v], x + 16 * v),
                                                 _mm512_maskz_loadu_ps(masks[v], wk + 16 * v),
                                                 acc[v]);
                }
            }
            EACH (int v = 0; v < 4; v++)
                _mm512_mask_storeu_ps(out + ox * c + ch + 16 * v, masks[v],
                                      activate16(acc[v], act));
        }
    }
}

/* 3x3 interior columns [ox0, ox1) of channels [0, c16) (whole vectors): a
 * vector's 9 weights stay in registers over 4 columns at a time. */
static void dw_3x3_interior(const float *const *rows, long c, long c16, const float *w,
                            long stride, long dilation, long pad_left, const float *bias,
                            int act, float *out, long ox0, long ox1)
{
    for (long ch = 0; ch < c16; ch += 16) {
        __m512 wt[9];
        EACH (int t = 0; t < 9; t++)
            wt[t] = _mm512_loadu_ps(w + t * c + ch);
        __m512 b = bias ? _mm512_loadu_ps(bias + ch) : _mm512_setzero_ps();
        long ox = ox0;
        for (; ox + 4 <= ox1; ox += 4) {
            __m512 acc[4] = {b, b, b, b};
            EACH (int ky = 0; ky < 3; ky++) {
                const float *r = rows[ky];
                if (!r)
                    continue;
                EACH (int kx = 0; kx < 3; kx++)
                    EACH (int j = 0; j < 4; j++) {
                        long ix = (ox + j) * stride - pad_left + kx * dilation;
                        acc[j] = _mm512_fmadd_ps(_mm512_loadu_ps(r + ix * c + ch),
                                                 wt[ky * 3 + kx], acc[j]);
                    }
            }
            EACH (int j = 0; j < 4; j++)
                _mm512_storeu_ps(out + (ox + j) * c + ch, activate16(acc[j], act));
        }
        for (; ox < ox1; ox++) {
            __m512 acc = b;
            EACH (int ky = 0; ky < 3; ky++) {
                const float *r = rows[ky];
                if (!r)
                    continue;
                EACH (int kx = 0; kx < 3; kx++) {
                    long ix = ox * stride - pad_left + kx * dilation;
                    acc = _mm512_fmadd_ps(_mm512_loadu_ps(r + ix * c + ch), wt[ky * 3 + kx],
                                          acc);
                }
            }
            _mm512_storeu_ps(out + ox * c + ch, activate16(acc, act));
        }
    }
}

/* One output row of a depthwise stage with multiplier 1. */
void sepconv_uk_dwrow__avx512(const float *const *rows, long in_w, long c, const float *w,
                              long k, long stride, long dilation, long pad_left,
                              const float *bias, int act, float *out, long out_w)
{
    if (out_w <= 0 || c <= 0)
        return;
    if (k != 3) {
        dw_general(rows, in_w, c, w, k, stride, dilation, pad_left, bias, act, out, 0, out_w,
                   0);
        return;
    }
    long begin, end, c16 = c / 16 * 16;
    sepconv_uk_interior(k, stride, dilation, pad_left, in_w, out_w, &begin, &end);
    dw_general(rows, in_w, c, w, k, stride, dilation, pad_left, bias, act, out, 0, begin, 0);
    dw_3x3_interior(rows, c, c16, w, stride, dilation, pad_left, bias, act, out, begin, end);
    if (c16 < c) /* the last channels of the interior columns */
        dw_general(rows, in_w, c, w, k, stride, dilation, pad_left, bias, act, out, begin,
                   end, c16);
    dw_general(rows, in_w, c, w, k, stride, dilation, pad_left, bias, act, out, end, out_w,
               0);
}
