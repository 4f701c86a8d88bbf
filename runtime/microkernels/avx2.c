/*
 * microkernels/avx2.c -- the AVX2 + FMA micro-kernels (x86-64 only, built
 * with -mavx2 -mfma).  Vectors of 8 floats; 16 ymm registers.
 *
 * Pointwise: register tiles of up to 6 pixels x 2 vectors (12 accumulators,
 * 2 weight vectors, 1 broadcast: 15 of the 16 registers) or 4 pixels x 3
 * vectors (12 + 3 + 1), the K loop unrolled by 2.  A row's pixels are split
 * into tiles of balanced sizes (14 = 5 + 5 + 4, never 6 + 6 + 2), and a
 * block's vectors into chunks of 1-3 by a cost model (max(P Q / 2, 4) cycles
 * a k: a tile of fewer than 8 accumulators waits on the FMA latency), which
 * picks 4 x 3 where a row of 7 pixels would leave a 6 x 2 tile's remainder
 * short.  Measured on Zen 4 (ymm code, block 24): 88-96% of the FMA peak on
 * MobileNet v1's pointwise layers, 92% over all 13.  A block (or its last,
 * short part) that is not whole vectors loads and stores its last vector
 * under a mask, which never reads past the block: every block works.
 *
 * Depthwise: 3x3 interior columns with dilation 1 and stride 1 or 2 walk
 * the channels innermost, 16 (a cache line) x 4 output columns a step, each
 * input vector loaded once a row for every tap that reads it (walking one
 * channel vector along the row instead kept few lines in L1 once c is large:
 * MobileNet v1's 13 depthwise stages 1.0 -> 0.64 ms on Zen 4, ymm code); a
 * last 8 channels of c / 8 and other strides or dilations keep a vector's 9
 * weights in registers over 4 columns (common.h's SEPCONV_UK_DW3_INTERIOR,
 * which NEON shares); border columns, other k and the last channels (c % 8,
 * masked) take the general path, as common.h's row driver splits them.
 */
#include <immintrin.h>
#include <stddef.h>

#include "microkernels/common.h"
#include "microkernels/microkernels.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* relu keeps NaN and -0.0: max_ps returns its second operand (x) when x is
 * NaN and for max(+0, -0); min_ps likewise. */
static ALWAYS_INLINE __m256 activate8(__m256 x, int act)
{
    if (act == 0)
        return x;
    x = _mm256_max_ps(_mm256_setzero_ps(), x);
    return act == 2 ? _mm256_min_ps(_mm256_set1_ps(6.0f), x) : x;
}

/* The mask of the first `lanes` lanes (0..8). */
static inline __m256i lanes_mask(long lanes)
{
    static const int table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(table + 8 - (lanes > 8 ? 8 : lanes)));
}

/* ------------------------------------------------------------- pointwise */

/* Loops over a tile's pixels and vectors, unrolled before gcc decides what
 * lives in memory (without it the accumulators are stored every k). */
#define EACH _Pragma("GCC unroll 8") for

/* P pixels x Q vectors over m input channels (the arrays sized exactly, so
 * that they live in registers); the last vector is loaded and stored under
 * `last` when MASKED. */
#define TILE(P, Q, MASKED)                                                              \
    static void pw_tile_##P##x##Q##_##MASKED(const float *in, long in_step, float *out, \
                                             long out_step, const float *w, long m,     \
                                             long block, const float *bias, int act,    \
                                             __m256i last)                              \
    {                                                                                   \
        __m256 acc[P][Q];                                                               \
        EACH (int q = 0; q < Q; q++) {                                                  \
            const int partial = MASKED && q == Q - 1;                                   \
            __m256 b = _mm256_setzero_ps();                                             \
            if (bias)                                                                   \
                b = partial ? _mm256_maskload_ps(bias + 8 * q, last)                    \
                            : _mm256_loadu_ps(bias + 8 * q);                            \
            EACH (int p = 0; p < P; p++)                                                \
                acc[p][q] = b;                                                          \
        }                                                                               \
        _Pragma("GCC unroll 2")                                                         \
        for (long k = 0; k < m; k++) {                                                  \
            __m256 wv[Q];                                                               \
            EACH (int q = 0; q < Q; q++)                                                \
                wv[q] = MASKED && q == Q - 1                                            \
                            ? _mm256_maskload_ps(w + k * block + 8 * q, last)           \
                            : _mm256_loadu_ps(w + k * block + 8 * q);                   \
            EACH (int p = 0; p < P; p++) {                                              \
                __m256 x = _mm256_broadcast_ss(in + p * in_step + k);                   \
                EACH (int q = 0; q < Q; q++)                                            \
                    acc[p][q] = _mm256_fmadd_ps(x, wv[q], acc[p][q]);                   \
            }                                                                           \
        }                                                                               \
        EACH (int p = 0; p < P; p++)                                                    \
            EACH (int q = 0; q < Q; q++) {                                              \
                __m256 y = activate8(acc[p][q], act);                                   \
                if (MASKED && q == Q - 1)                                               \
                    _mm256_maskstore_ps(out + p * out_step + 8 * q, last, y);           \
                else                                                                    \
                    _mm256_storeu_ps(out + p * out_step + 8 * q, y);                    \
            }                                                                           \
    }

typedef void (*tile_fn)(const float *, long, float *, long, const float *, long, long,
                        const float *, int, __m256i);

/* up to 6 x 1, 6 x 2 and 4 x 3 (7 x 2 would need 17 registers: gcc spills an
 * accumulator, measured 2x slower) */
#define TILES6(Q, M) TILE(1, Q, M) TILE(2, Q, M) TILE(3, Q, M) TILE(4, Q, M) TILE(5, Q, M) \
                     TILE(6, Q, M)
#define TILES4(Q, M) TILE(1, Q, M) TILE(2, Q, M) TILE(3, Q, M) TILE(4, Q, M)
TILES6(1, 0) TILES6(1, 1) TILES6(2, 0) TILES6(2, 1) TILES4(3, 0) TILES4(3, 1)

#define ROW6(Q, M) {pw_tile_1x##Q##_##M, pw_tile_2x##Q##_##M, pw_tile_3x##Q##_##M,      \
                    pw_tile_4x##Q##_##M, pw_tile_5x##Q##_##M, pw_tile_6x##Q##_##M}
#define ROW4(Q, M) {pw_tile_1x##Q##_##M, pw_tile_2x##Q##_##M, pw_tile_3x##Q##_##M,      \
                    pw_tile_4x##Q##_##M, NULL, NULL}
/* [vectors - 1][masked][pixels - 1] */
static const tile_fn tiles[3][2][6] = {
    {ROW6(1, 0), ROW6(1, 1)}, {ROW6(2, 0), ROW6(2, 1)}, {ROW4(3, 0), ROW4(3, 1)}};
static const int most_pixels[3] = {6, 6, 4};

/* The cycles per k of `pixels` split into balanced tiles of q vectors: a
 * tile of P x q takes max(P q / 2, 4) (two FMA pipes, latency 4). */
static double chunk_cost(int q, long pixels)
{
    long count = (pixels + most_pixels[q - 1] - 1) / most_pixels[q - 1];
    double cycles = 0;
    for (long t = 0; t < count; t++) {
        long size = pixels / count + (t < pixels % count);
        cycles += size * q / 2.0 > 4.0 ? size * q / 2.0 : 4.0;
    }
    return cycles;
}

/* `pixels` outputs: each block's vectors cut into chunks of 1-3 vectors
 * (the cheapest cut for this row length by chunk_cost: 6 x 2 tiles where
 * they fill the pipes, 4 x 3 where a row's 7 pixels would leave a 6 x 2
 * tile's remainder short), each over the row's pixels in balanced tiles. */
void sepconv_uk_pointwise_6x16__avx2(const float *in, long in_step, float *out,
                                     long out_step, long pixels, const float *packed, long m,
                                     long n, long block, const float *bias, int act)
{
    if (pixels <= 0 || n <= 0 || block <= 0)
        return;
    /* the cheapest cut of v vectors, by dynamic programming: cut[v] is the
     * last chunk's size */
    enum { MOST = 64 };
    double cost[MOST + 1] = {0};
    int cut[MOST + 1] = {0};
    double by_q[4] = {0, chunk_cost(1, pixels), chunk_cost(2, pixels), chunk_cost(3, pixels)};
    for (int v = 1; v <= MOST; v++) {
        cost[v] = -1;
        for (int q = 1; q <= 3 && q <= v; q++)
            if (cost[v] < 0 || cost[v - q] + by_q[q] < cost[v]) {
                cost[v] = cost[v - q] + by_q[q];
                cut[v] = q;
            }
    }
    for (long co = 0; co < n; co += block) {
        long width = n - co < block ? n - co : block; /* the last block may be short */
        const float *wb = packed + co * m;
        for (long c = 0; c < width;) {
            long left = width - c, vectors = (left + 7) / 8;
            int q = cut[vectors < MOST ? vectors : MOST];
            /* the partial vector, if any, is the last of the last chunk */
            int masked = left < 8 * q;
            __m256i last = lanes_mask(left - 8 * (q - 1));
            long count = (pixels + most_pixels[q - 1] - 1) / most_pixels[q - 1];
            for (long t = 0, p = 0; t < count; t++) {
                long size = pixels / count + (t < pixels % count);
                tiles[q - 1][masked][size - 1](in + p * in_step, in_step,
                                               out + p * out_step + co + c, out_step, wb + c,
                                               m, block, bias ? bias + co + c : NULL, act,
                                               last);
                p += size;
            }
            c += 8 * q;
        }
    }
}

/* ------------------------------------------------------------- depthwise */

/* General path: output columns [ox0, ox1), channels [ch0, ch1), 8 at a
 * time, the last ones masked. */
static void dw_general(const sepconv_uk_dw *d, long ox0, long ox1, long ch0, long ch1)
{
    const float *const *rows = d->rows, *w = d->w, *bias = d->bias;
    const long c = d->c, k = d->k, dilation = d->dilation;
    const int act = d->act;
    float *out = d->out;
    for (long ox = ox0; ox < ox1; ox++) {
        long lo, hi;
        sepconv_uk_columns(ox, k, d->stride, dilation, d->pad_left, d->in_w, &lo, &hi);
        long first = ox * d->stride - d->pad_left;
        long ch = ch0;
        for (; ch + 32 <= ch1; ch += 32) {
            __m256 acc[4];
            for (int v = 0; v < 4; v++)
                acc[v] = bias ? _mm256_loadu_ps(bias + ch + 8 * v) : _mm256_setzero_ps();
            for (long ky = 0; ky < k; ky++) {
                if (!rows[ky])
                    continue;
                for (long kx = lo; kx < hi; kx++) {
                    const float *x = rows[ky] + (first + kx * dilation) * c + ch;
                    const float *wk = w + (ky * k + kx) * c + ch;
                    for (int v = 0; v < 4; v++)
                        acc[v] = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8 * v),
                                                 _mm256_loadu_ps(wk + 8 * v), acc[v]);
                }
            }
            for (int v = 0; v < 4; v++)
                _mm256_storeu_ps(out + ox * c + ch + 8 * v, activate8(acc[v], act));
        }
        for (; ch < ch1; ch += 8) {
            __m256i mask = lanes_mask(ch1 - ch);
            __m256 acc = bias ? _mm256_maskload_ps(bias + ch, mask) : _mm256_setzero_ps();
            for (long ky = 0; ky < k; ky++) {
                if (!rows[ky])
                    continue;
                for (long kx = lo; kx < hi; kx++) {
                    const float *x = rows[ky] + (first + kx * dilation) * c + ch;
                    const float *wk = w + (ky * k + kx) * c + ch;
                    acc = _mm256_fmadd_ps(_mm256_maskload_ps(x, mask),
                                          _mm256_maskload_ps(wk, mask), acc);
                }
            }
            _mm256_maskstore_ps(out + ox * c + ch, mask, activate8(acc, act));
        }
    }
}

/* 3x3, dilation 1, stride S (1 or 2): 4 interior columns of a channel vector
 * at a time, each input vector loaded once per row and fed to every tap that
 * reads it (S = 1: 6 loads for 12 FMAs a row; S = 2: 9 for 12). */
static ALWAYS_INLINE void dw_3x3_slide(const float *const *rows, long c, long ch0,
                                       long c8, const float *w, long S, long pad_left,
                                       const float *bias, int act, float *out, long ox0,
                                       long ox1)
{
    const float *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
    for (long ch = ch0; ch < c8; ch += 8) {
        __m256 wt[9];
        for (int t = 0; t < 9; t++)
            wt[t] = _mm256_loadu_ps(w + t * c + ch);
        __m256 b = bias ? _mm256_loadu_ps(bias + ch) : _mm256_setzero_ps();
        long ox = ox0;
        for (; ox + 4 <= ox1; ox += 4) {
            __m256 acc0 = b, acc1 = b, acc2 = b, acc3 = b;
            const float *base = NULL;
#define DW_ROW(R, KY)                                                                   \
    if (R) {                                                                            \
        base = R + (ox * S - pad_left) * c + ch;                                        \
        EACH (int i = 0; i < 3 * (int)S + 3; i++) {                                     \
            __m256 x = _mm256_loadu_ps(base + i * c);                                   \
            if (i - 0 * S >= 0 && i - 0 * S < 3)                                        \
                acc0 = _mm256_fmadd_ps(x, wt[(KY) * 3 + i - 0 * S], acc0);              \
            if (i - 1 * S >= 0 && i - 1 * S < 3)                                        \
                acc1 = _mm256_fmadd_ps(x, wt[(KY) * 3 + i - 1 * S], acc1);              \
            if (i - 2 * S >= 0 && i - 2 * S < 3)                                        \
                acc2 = _mm256_fmadd_ps(x, wt[(KY) * 3 + i - 2 * S], acc2);              \
            if (i - 3 * S >= 0 && i - 3 * S < 3)                                        \
                acc3 = _mm256_fmadd_ps(x, wt[(KY) * 3 + i - 3 * S], acc3);              \
        }                                                                               \
    }
            DW_ROW(r0, 0)
            DW_ROW(r1, 1)
            DW_ROW(r2, 2)
#undef DW_ROW
            (void)base;
            float *o = out + ox * c + ch;
            _mm256_storeu_ps(o, activate8(acc0, act));
            _mm256_storeu_ps(o + c, activate8(acc1, act));
            _mm256_storeu_ps(o + 2 * c, activate8(acc2, act));
            _mm256_storeu_ps(o + 3 * c, activate8(acc3, act));
        }
        for (; ox < ox1; ox++) {
            __m256 acc[1] = {b};
            SEPCONV_UK_DW3_COLUMNS(acc, 1, rows, ox * S - pad_left, S, 1, c, ch, wt,
                                   _mm256_loadu_ps, _mm256_fmadd_ps)
            _mm256_storeu_ps(out + ox * c + ch, activate8(acc[0], act));
        }
    }
}

/* The same over channel pairs (16 channels, a whole cache line) inside the
 * column loop: a pixel's channel vectors are 4 c bytes apart, so walking one
 * channel vector along the row (as above) touches a line per column, in few
 * L1 sets once c is large, and uses half of it; here each line is used whole
 * at once.  The weights are memory operands (hot lines); P (1-4) columns x
 * 2 vectors. */
static ALWAYS_INLINE void dw_3x3_wide_step(const float *const *rows, long c, long c16,
                                           const float *w, long S, int P, long pad_left,
                                           const float *bias, int act, float *out, long ox)
{
    const float *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
    long first = ox * S - pad_left;
    for (long ch = 0; ch < c16; ch += 16) {
        __m256 a[2][4];
        EACH (int v = 0; v < 2; v++) {
            __m256 b = bias ? _mm256_loadu_ps(bias + ch + 8 * v) : _mm256_setzero_ps();
            EACH (int j = 0; j < 4; j++)
                a[v][j] = b;
        }
#define DW_ROW2(R, KY)                                                                  \
    if (R) {                                                                            \
        const float *base = R + first * c + ch;                                         \
        const float *wk = w + (KY) * 3 * c + ch;                                        \
        EACH (int i = 0; i < (int)S * (P - 1) + 3; i++)                                 \
            EACH (int v = 0; v < 2; v++) {                                              \
                __m256 x = _mm256_loadu_ps(base + i * c + 8 * v);                       \
                EACH (int j = 0; j < P; j++) {                                          \
                    int kx = i - j * (int)S;                                            \
                    if (kx >= 0 && kx < 3)                                              \
                        a[v][j] = _mm256_fmadd_ps(x, _mm256_loadu_ps(wk + kx * c + 8 * v), \
                                                  a[v][j]);                             \
                }                                                                       \
            }                                                                           \
    }
        DW_ROW2(r0, 0)
        DW_ROW2(r1, 1)
        DW_ROW2(r2, 2)
#undef DW_ROW2
        EACH (int j = 0; j < P; j++)
            EACH (int v = 0; v < 2; v++)
                _mm256_storeu_ps(out + (ox + j) * c + ch + 8 * v, activate8(a[v][j], act));
    }
}

static ALWAYS_INLINE void dw_3x3_wide(const float *const *rows, long c, long c16,
                                      const float *w, long S, long pad_left,
                                      const float *bias, int act, float *out, long ox0,
                                      long ox1)
{
    long ox = ox0;
    for (; ox + 4 <= ox1; ox += 4)
        dw_3x3_wide_step(rows, c, c16, w, S, 4, pad_left, bias, act, out, ox);
    switch (ox1 - ox) { /* the last 0-3 columns */
    case 3:
        dw_3x3_wide_step(rows, c, c16, w, S, 3, pad_left, bias, act, out, ox);
        break;
    case 2:
        dw_3x3_wide_step(rows, c, c16, w, S, 2, pad_left, bias, act, out, ox);
        break;
    case 1:
        dw_3x3_wide_step(rows, c, c16, w, S, 1, pad_left, bias, act, out, ox);
        break;
    default:
        break;
    }
}

/* Stride S: the wide kernel over channel pairs, the slide over the last 8. */
static ALWAYS_INLINE void dw_3x3_strided(const float *const *rows, long c, long c8,
                                         const float *w, long S, long pad_left,
                                         const float *bias, int act, float *out, long ox0,
                                         long ox1)
{
    long c16 = c8 / 16 * 16;
    if (c16)
        dw_3x3_wide(rows, c, c16, w, S, pad_left, bias, act, out, ox0, ox1);
    dw_3x3_slide(rows, c, c16, c8, w, S, pad_left, bias, act, out, ox0, ox1);
}

/* Other strides and dilations (common.h). */
SEPCONV_UK_DW3_INTERIOR(dw_3x3_interior, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps,
                        _mm256_setzero_ps, _mm256_fmadd_ps, activate8)

/* The 3x3 interior columns [ox0, ox1), whole vectors of channels [0, c8). */
static void dw_3x3(const sepconv_uk_dw *d, long ox0, long ox1, long ch0, long c8)
{
    (void)ch0; /* 0: the driver passes [0, c8) */
    if (d->dilation == 1 && d->stride == 1) /* S a constant: the windows unroll */
        dw_3x3_strided(d->rows, d->c, c8, d->w, 1, d->pad_left, d->bias, d->act, d->out, ox0,
                       ox1);
    else if (d->dilation == 1 && d->stride == 2)
        dw_3x3_strided(d->rows, d->c, c8, d->w, 2, d->pad_left, d->bias, d->act, d->out, ox0,
                       ox1);
    else
        dw_3x3_interior(d, ox0, ox1, ch0, c8);
}

/* One output row of a depthwise stage with multiplier 1. */
SEPCONV_UK_DWROW(sepconv_uk_dwrow__avx2, 8, 0, dw_general, dw_3x3)
