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
 * Depthwise, 3x3: with dilation 1 and stride 1 or 2 a row runs in balanced
 * blocks of up to 4 output columns, border columns among them (a border
 * block loads only the input columns its window reaches and drops the taps
 * in the padding), each block walking the channels innermost, 16 (a cache
 * line) x P columns a step, each input vector loaded once a row for every
 * tap that reads it (walking one channel vector along the row instead kept
 * few lines in L1 once c is large: MobileNet v1's 13 depthwise stages 1.0
 * -> 0.64 ms on Zen 4, ymm code).  A last 8 channels of c / 8, and other
 * strides or dilations, sweep a channel vector along the row in the same
 * blocks with its 9 weights in registers (common.h's SEPCONV_UK_DW3_KERNEL,
 * which NEON shares).  Other k and the last channels (c % 8, masked) take
 * the general path, as common.h's row driver splits them.  Border columns
 * in blocks (they took the general path, 1 column x 32 channels, 2 loads a
 * FMA; a border block loads 0.9 a FMA at stride 1, 1.2 at stride 2, as the
 * interior): the 13 stages 0.618 -> 0.583 ms on Zen 4 (tcc + auto, AVX-512
 * hidden, medians of 5 interleaved runs), 7 x 7 x 1024 0.0277 -> 0.0209,
 * 14 x 14 x 512 0.0326 -> 0.0314; the stride-2 112 and 56 wide layers,
 * whose rows have one border column, 2-5% slower: their last block tested
 * each input column against the block's runtime bounds, and gcc compiled
 * that block with its weight pointers reloaded and the weights folded into
 * the FMAs (2.5 loads a FMA, against 1.28 in the interior).  At stride 2
 * the border blocks of one padding column now get constant bounds
 * (common.h's SEPCONV_UK_DW3_SPANS): straight code like the interior's.
 * (At stride 1 the same was 4-11% slower on the 112 x 32 and 56 x 128
 * layers, gcc spilling in their interior block, and 2-5% faster on the
 * 28-7 wide ones: stride 1 keeps the runtime bounds.)  Holding a channel vector's 9 weights in registers at stride 2,
 * as AVX-512 does (4-6 columns x 8 channels, 9 weights: 1.03 loads a FMA
 * with the inputs loaded once each), measured 20-40% slower on Zen 4 than
 * these 4 x 16 blocks: 4-6 accumulator chains do not cover the FMA latency
 * (8 are needed), and each step is half as long.
 */
#include <immintrin.h>
#include <stddef.h>

#include "microkernels/common.h"
#include "microkernels/int8.h"
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
        const long at = (ox - d->first) * c; /* the column's place in out */
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
                _mm256_storeu_ps(out + at + ch + 8 * v, activate8(acc[v], act));
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
            _mm256_maskstore_ps(out + at + ch, mask, activate8(acc, act));
        }
    }
}

/* 3x3, one channel vector with its 9 weights in registers (common.h):
 * blocks of up to 4 columns (4 accumulators, 9 weights, the bias and an
 * input: 15 of the 16 registers), for the last 8 channels of c / 16 and
 * for other strides and dilations. */
SEPCONV_UK_DW3_KERNEL(dw3, __m256, 8, 4, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_setzero_ps,
                      _mm256_fmadd_ps, activate8)

/* 3x3, stride S (1 or 2), dilation 1: a block of P (1-4) output columns
 * from ox over the channel pairs [0, c16) (16 channels, a whole cache
 * line, innermost): a pixel's channel vectors are 4 c bytes apart, so
 * walking one channel vector along the row touches a line per column, in
 * few L1 sets once c is large, and uses half of it; here each line is used
 * whole at once.  Each input vector of a row is loaded once and fed to
 * every tap that reads it (common.h's SEPCONV_UK_DW3_TAPS: S = 1, P = 4, 6
 * loads for 12 FMAs a row and vector; S = 2, 9), and the weights are
 * memory operands (hot lines: 2 x 9 vectors do not fit beside the 8
 * accumulators).  A border block (BORDER) loads only the input columns
 * [ilo, ihi) of its span and drops the taps in the padding. */
static ALWAYS_INLINE void dw3_wide(const int P, const int BORDER, long ox, long ilo, long ihi,
                                   const sepconv_uk_dw *d, const int S, long c16)
{
    const long c = d->c;
    const int act = d->act; /* read once: a vector store may alias anything */
    float *const out = d->out + (ox - d->first) * c;
    for (long ch = 0; ch < c16; ch += 16) {
        const float *wk = d->w + ch;
        __m256 a[2][4];
        EACH (int v = 0; v < 2; v++) {
            const __m256 b = d->bias ? _mm256_loadu_ps(d->bias + ch + 8 * v)
                                     : _mm256_setzero_ps();
            EACH (int j = 0; j < P; j++)
                a[v][j] = b;
        }
#define WEIGHT(t, v) _mm256_loadu_ps(wk + (t) * c + 8 * (v))
        SEPCONV_UK_DW3_TAPS(a, 2, P, S, BORDER, ilo, ihi, d, ox, ch, 8, __m256,
                            _mm256_loadu_ps, _mm256_fmadd_ps, WEIGHT);
#undef WEIGHT
        EACH (int j = 0; j < P; j++)
            EACH (int v = 0; v < 2; v++)
                _mm256_storeu_ps(out + j * c + ch + 8 * v, activate8(a[v][j], act));
    }
}

/* Window S over the columns [ox0, ox1) (the borders included), whole
 * vectors of channels [0, c8): at stride 1 or 2 balanced blocks of up to 4
 * columns (at stride 2 those with one padding column compiled with constant
 * bounds), each over the channel pairs, then the last 8 channels (c8 / 8
 * odd) along the row with their weights in registers, in the same blocks;
 * other strides and dilations sweep every channel vector along the row. */
static ALWAYS_INLINE void dw3_row(const int S, const sepconv_uk_dw *d, long ox0, long ox1,
                                  long c8)
{
    const long c16 = S ? c8 / 16 * 16 : 0;
    if (c16 && S == 2)
        SEPCONV_UK_DW3_SPANS(d, 2, ox0, ox1, 4, 4, dw3_wide, d, 2, c16);
    else if (c16)
        SEPCONV_UK_DW3_BLOCKS(d, ox0, ox1, 4, 4, dw3_wide, d, S, c16);
    dw3_sweep(d, S, ox0, ox1, c16, c8, 4);
}

/* Each window's row its own function, on its own copy of the call (so
 * that the stride-1 code compiles as if the stride-2 one were not there:
 * in one function, the stride-2 border kinds cost the stride-1 layers
 * 2-4%). */
#define DW3_ROW(S)                                                                      \
    static __attribute__((noinline)) void dw3_row_##S(const sepconv_uk_dw *call,        \
                                                      long ox0, long ox1, long c8)      \
    {                                                                                   \
        sepconv_uk_dw d;                                                                \
        const float *rows[3];                                                           \
        sepconv_uk_dw3_localize(call, &d, rows);                                        \
        dw3_row(S, &d, ox0, ox1, c8);                                                   \
    }
DW3_ROW(0)
DW3_ROW(1)
DW3_ROW(2)
#define DW3_ROW_CALL(S, ...) dw3_row_##S(__VA_ARGS__)

/* The 3x3 columns [ox0, ox1), whole vectors of channels [0, c8). */
static void dw_3x3(const sepconv_uk_dw *call, long ox0, long ox1, long ch0, long c8)
{
    (void)ch0; /* 0: the driver passes [0, c8) */
    SEPCONV_UK_DW3_WINDOWS(call, DW3_ROW_CALL, call, ox0, ox1, c8)
}

/* One output row of a depthwise stage with multiplier 1. */
SEPCONV_UK_DWROW(sepconv_uk_dwrow__avx2, 8, 0, dw_general, dw_3x3)

/* the int8 kernels (microkernels/int8.h), vectorized with this file's flags */
SEPCONV_UK_INT8(avx2)
