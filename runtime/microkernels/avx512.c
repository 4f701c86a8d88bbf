/*
 * microkernels/avx512.c -- the AVX-512F micro-kernels (x86-64 only, built
 * with -mavx512f).  Vectors of 16 floats; 32 zmm registers.
 *
 * Pointwise: register tiles of up to 7 pixels x 4 vectors (28 accumulators)
 * over chunks of up to 64 channels of a packed block; a row's pixels are
 * split into balanced tiles.  The last vector of a chunk loads weights and
 * bias and stores under a mask, which never reads past the block: every
 * block works.
 *
 * Depthwise, 3x3: a row in balanced blocks of up to 8 output columns, each
 * a step per 16 channels (a zmm, a cache line; the last step masked): the
 * block's input vectors of a row are loaded once each and fed to every tap
 * that reads them (a sliding window: stride 1, 8 columns, 10 loads for 24
 * FMAs a row; stride 2, 4 columns, 9 for 12, no load no tap reads), the 9
 * weight vectors in registers.  Stride 1 with c <= 256 walks the channel
 * vectors outermost, so a vector's weights are loaded once a row (0.42
 * loads a FMA in the inner loop, all of them inputs); wider c walks the
 * channels innermost inside each block (0.56 with the weights), which the
 * prefetchers follow.  Border columns run in the same blocks: an input
 * column in the padding drops its taps (the block's bounds are compile-time
 * code, the column range a runtime test), and short rows (out_w 1-3) are
 * one block.  Other strides and dilations: blocks of 4 columns, a load per
 * tap.  Measured on Zen 4 (tcc + auto, one thread, medians of 7 runs):
 * MobileNet v1's 13 depthwise stages 0.678 -> 0.571 ms (14 x 14 x 512
 * 0.044 -> 0.026-0.040, by where its buffers fall; cache-resident shapes
 * reach ~42 GMAC/s, 73% of the FMA peak, the large layers are bound by L2
 * and the stride-2 ones by L3: a row call reads 3 input rows, and no row
 * stays in L1 until the next call).  Other k take one column at a time, 4
 * vectors of channels, masked.
 */
#include <immintrin.h>
#include <stddef.h>

#include "microkernels/common.h"
#include "microkernels/microkernels.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))
/* Loops over a tile's pixels and vectors, unrolled before gcc decides what
 * lives in memory (without it the accumulators are stored every k). */
#define EACH _Pragma("GCC unroll 8") for
/* The same for the depthwise window (up to 17 input columns a row). */
#define ALL _Pragma("GCC unroll 32") for

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

/* General path (k != 3): output columns [ox0, ox1), channels [ch0, ch1),
 * 16 a vector, 4 vectors at a time, the last ones masked. */
static void dw_general(const sepconv_uk_dw *d, long ox0, long ox1, long ch0, long ch1)
{
    const long c = d->c, k = d->k;
    for (long ox = ox0; ox < ox1; ox++) {
        long lo, hi;
        sepconv_uk_columns(ox, k, d->stride, d->dilation, d->pad_left, d->in_w, &lo, &hi);
        long first = ox * d->stride - d->pad_left;
        for (long ch = ch0; ch < ch1; ch += 64) {
            __m512 acc[4];
            __mmask16 masks[4];
            EACH (int v = 0; v < 4; v++) {
                masks[v] = lanes_mask(ch1 - ch - 16 * v);
                acc[v] = d->bias ? _mm512_maskz_loadu_ps(masks[v], d->bias + ch + 16 * v)
                                 : _mm512_setzero_ps();
            }
            for (long ky = 0; ky < k; ky++) {
                if (!d->rows[ky])
                    continue;
                for (long kx = lo; kx < hi; kx++) {
                    const float *x = d->rows[ky] + (first + kx * d->dilation) * c + ch;
                    const float *wk = d->w + (ky * k + kx) * c + ch;
                    EACH (int v = 0; v < 4; v++)
                        acc[v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(masks[v], x + 16 * v),
                                                 _mm512_maskz_loadu_ps(masks[v], wk + 16 * v),
                                                 acc[v]);
                }
            }
            EACH (int v = 0; v < 4; v++)
                _mm512_mask_storeu_ps(d->out + (ox - d->first) * c + ch + 16 * v, masks[v],
                                      activate16(acc[v], d->act));
        }
    }
}

/* 3x3: one step of a block of P (1-8) output columns from ox, channels
 * [ch, ch + 16) under m (a zmm, a cache line): common.h's
 * SEPCONV_UK_DW3_TAPS (S = 1 or 2 slides a window along each input row, S
 * = 0 loads a tap at a time; with BORDER the taps in the padding are
 * dropped, so border columns run in blocks too), the 9 weight vectors wt
 * registers over the P columns. */
static ALWAYS_INLINE void dw3_step(const int P, const int BORDER, long ox, long ilo, long ihi,
                                   const sepconv_uk_dw *d, const int S, long ch, __mmask16 m,
                                   const __m512 wt[9], __m512 b, __m512 six)
{
    const long c = d->c;
    __m512 acc[1][8];
    ALL (int j = 0; j < P; j++)
        acc[0][j] = b;
#define MASKED(p) _mm512_maskz_loadu_ps(m, p)
    SEPCONV_UK_DW3_TAPS(acc, 1, P, S, BORDER, ilo, ihi, d, ox, ch, 16, __m512, MASKED,
                        _mm512_fmadd_ps, SEPCONV_UK_DW3_REGISTERS);
#undef MASKED
    ALL (int j = 0; j < P; j++) {
        __m512 y = acc[0][j];
        if (d->act) /* as activate16, with 6 in a register */
            y = _mm512_max_ps(_mm512_setzero_ps(), y);
        if (d->act == 2)
            y = _mm512_min_ps(six, y);
        _mm512_mask_storeu_ps(d->out + (ox - d->first + j) * c + ch, m, y);
    }
}

/* 6.0 in every lane, in a register for the whole row (without the empty
 * asm, gcc broadcasts it from memory again for every output: a load a
 * store). */
static ALWAYS_INLINE __m512 six16(void)
{
    __m512 six = _mm512_set1_ps(6.0f);
    __asm__("" : "+v"(six));
    return six;
}

/* The 9 weight vectors of channels [ch, ch + 16) under m into wt; their bias. */
static ALWAYS_INLINE __m512 dw3_weights(const sepconv_uk_dw *d, long ch, __mmask16 m,
                                        __m512 wt[9])
{
    ALL (int t = 0; t < 9; t++)
        wt[t] = _mm512_maskz_loadu_ps(m, d->w + t * d->c + ch);
    return d->bias ? _mm512_maskz_loadu_ps(m, d->bias + ch) : _mm512_setzero_ps();
}

static ALWAYS_INLINE void dw3_block(const sepconv_uk_dw *d, const int S, const int P,
                                    const int BORDER, long ox, long ilo, long ihi)
{
    const long c = d->c;
    const __m512 six = six16();
    for (long ch = 0; ch < c; ch += 16) {
        const __mmask16 m = lanes_mask(c - ch);
        __m512 wt[9];
        const __m512 b = dw3_weights(d, ch, m, wt);
        dw3_step(P, BORDER, ox, ilo, ihi, d, S, ch, m, wt, b, six);
    }
}

typedef void (*dw3_fn)(const sepconv_uk_dw *d, long ox, long ilo, long ihi);

#define DW3(S, P, BORDER)                                                               \
    static void dw3_##S##_##P##_##BORDER(const sepconv_uk_dw *d, long ox, long ilo,     \
                                         long ihi)                                      \
    {                                                                                   \
        dw3_block(d, S, P, BORDER, ox, ilo, ihi);                                       \
    }
#define DW3S(S, B) DW3(S, 1, B) DW3(S, 2, B) DW3(S, 3, B) DW3(S, 4, B) DW3(S, 5, B) \
                   DW3(S, 6, B) DW3(S, 7, B) DW3(S, 8, B)
DW3S(0, 0) DW3S(0, 1) DW3S(1, 0) DW3S(1, 1) DW3S(2, 0) DW3S(2, 1)
#define DW3ROW(S, B) {dw3_##S##_1_##B, dw3_##S##_2_##B, dw3_##S##_3_##B, dw3_##S##_4_##B, \
                      dw3_##S##_5_##B, dw3_##S##_6_##B, dw3_##S##_7_##B, dw3_##S##_8_##B}
/* [S][border][P - 1] */
static const dw3_fn dw3_blocks[3][2][8] = {{DW3ROW(0, 0), DW3ROW(0, 1)},
                                           {DW3ROW(1, 0), DW3ROW(1, 1)},
                                           {DW3ROW(2, 0), DW3ROW(2, 1)}};

/* Stride 1, c <= 256: the channel vectors outermost, so that a vector's 9
 * weights are loaded once a row and stay in registers over all its column
 * blocks (0.42 loads a FMA, all inputs).  Measured faster there (MobileNet
 * v1's 112-28 wide layers, by 4-7%); with wider c the channels innermost
 * (dw3_block) were faster (14 x 14 x 512: 0.0245 against 0.0278 ms). */
static void dw3_sweep(const sepconv_uk_dw *d, long ox0, long ox1, long most)
{
    const long c = d->c;
    const __m512 six = six16();
    for (long ch = 0; ch < c; ch += 16) {
        const __mmask16 m = lanes_mask(c - ch);
        __m512 wt[9];
        const __m512 b = dw3_weights(d, ch, m, wt);
        SEPCONV_UK_DW3_BLOCKS(d, ox0, ox1, most, 8, dw3_step, d, 1, ch, m, wt, b, six);
    }
}

/* A 3x3 row: columns [ox0, ox1) in balanced blocks of at most
 * sepconv_uk_dw3_most columns, each interior or bordered by the input
 * columns it reads. */
static void dw_3x3(const sepconv_uk_dw *d, long ox0, long ox1, long ch0, long ch1)
{
    (void)ch0, (void)ch1; /* every channel: the driver passes 0, c */
    const int S = sepconv_uk_dw3_window(d);
    const long most = sepconv_uk_dw3_most(d, S), width = ox1 - ox0;
    if (S == 1 && d->c <= 256) {
        dw3_sweep(d, ox0, ox1, most);
        return;
    }
    const long count = (width + most - 1) / most;
    for (long t = 0; t < count; t++) {
        long ox, ilo, ihi;
        int border;
        const long P = sepconv_uk_dw3_plan(d, ox0, width, count, t, &ox, &ilo, &ihi,
                                           &border);
        dw3_blocks[S][border][P - 1](d, ox, ilo, ihi);
    }
}

/* One output row of a depthwise stage with multiplier 1. */
SEPCONV_UK_DWROW(sepconv_uk_dwrow__avx512, 16, 1, dw_general, dw_3x3)
