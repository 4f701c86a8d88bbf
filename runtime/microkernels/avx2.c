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
 *
 * int8 (TFLite's integer semantics, the int8 reference's bits): pointwise
 * in tiles of up to 4 pixels x 16 channels, two input channels a step with
 * vpmaddwd, from weights packed as int16 pairs (sepconv_uk_qpack_pairs); the depthwise row 16 channels a step with int16 products, a
 * 3x3 block's weights held across the row; both requantize 8 lanes at a
 * time.  Zen 1, tcc + auto: pw 14 x 14 x 512 13.8 -> 3.5 ms, dw 56 x 56 x
 * 128 3.9 -> 1.09 ms against the plain C of microkernels/int8.h vectorized
 * by gcc (bench-int8: 0.92x XNNPACK's QC8 depthwise, 1.19x its pointwise).
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

/* ------------------------------------------------------------------ int8 */

/* 8 channels' requantization, prepared once for the outputs that share it. */
typedef struct qrequant8 {
    __m256i significand, odd_significand, shift, right, mask, half_mask;
    __m256i out_zero, low, high; /* the clamp: the activation's bounds less out_zero */
    int general; /* a lane shifts left or has an INT32_MIN significand */
} qrequant8;

/* The requantization of 8 channels from their significands and shifts and
 * the stage's quant (in_zero, out_zero, activation low, high). */
static ALWAYS_INLINE qrequant8 qprepare8(const int32_t *significand, const int32_t *shift,
                                         const int *quant)
{
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1);
    qrequant8 r;
    r.out_zero = _mm256_set1_epi32(quant[1]);
    r.low = _mm256_set1_epi32(quant[2] - quant[1]);
    r.high = _mm256_set1_epi32(quant[3] - quant[1]);
    r.significand = _mm256_loadu_si256((const __m256i *)significand);
    r.shift = _mm256_loadu_si256((const __m256i *)shift);
    r.odd_significand = _mm256_srli_epi64(r.significand, 32);
    r.right = _mm256_max_epi32(_mm256_sub_epi32(zero, r.shift), zero);
    r.mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, r.right), one);
    r.half_mask = _mm256_srai_epi32(r.mask, 1);
    r.general = _mm256_movemask_epi8(
        _mm256_or_si256(_mm256_cmpgt_epi32(r.shift, zero),
                        _mm256_cmpeq_epi32(r.significand, _mm256_set1_epi32(INT32_MIN))));
    return r;
}

/* 8 sums requantized as sepconv_uk_qrescale does, lane for lane, clamped to
 * [r->low, r->high], + r->out_zero.  The high multiply takes even and odd
 * lanes' 64-bit products apart (AVX2 has no 64-bit arithmetic shift; the
 * low 32 bits of a logical one are the same).  Only lanes that shift left
 * (a saturating shift) or have an INT32_MIN significand (INT32_MIN squared
 * saturates) take the general path: scales below 1 give neither. */
static ALWAYS_INLINE __m256i qapply8(__m256i sum, const qrequant8 *r)
{
    const __m256i zero = _mm256_setzero_si256();
    const __m256i max = _mm256_set1_epi32(INT32_MAX), min = _mm256_set1_epi32(INT32_MIN);
    __m256i x = sum;
    if (r->general) { /* a left shift, saturating */
        const __m256i left = _mm256_max_epi32(r->shift, zero);
        const __m256i most = _mm256_srlv_epi32(max, left);
        const __m256i least = _mm256_sub_epi32(_mm256_sub_epi32(zero, most),
                                               _mm256_set1_epi32(1));
        x = _mm256_sllv_epi32(sum, left);
        x = _mm256_blendv_epi8(x, max, _mm256_cmpgt_epi32(sum, most));
        x = _mm256_blendv_epi8(x, min, _mm256_cmpgt_epi32(least, sum));
    }
    /* round(x * significand / 2^31), ties up */
    const __m256i half = _mm256_set1_epi64x(INT64_C(1) << 30);
    const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, r->significand), half);
    const __m256i odd =
        _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), r->odd_significand), half);
    __m256i y = _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xaa);
    if (r->general) { /* INT32_MIN squared */
        const __m256i both_min = _mm256_and_si256(_mm256_cmpeq_epi32(x, min),
                                                  _mm256_cmpeq_epi32(r->significand, min));
        y = _mm256_blendv_epi8(y, max, both_min);
    }
    /* divided by 2^right to nearest, ties away from zero */
    const __m256i remainder = _mm256_and_si256(y, r->mask);
    const __m256i threshold = _mm256_sub_epi32(r->half_mask, _mm256_cmpgt_epi32(zero, y));
    const __m256i q = _mm256_sub_epi32(_mm256_srav_epi32(y, r->right),
                                       _mm256_cmpgt_epi32(remainder, threshold));
    return _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(q, r->low), r->high),
                            r->out_zero);
}

/* sepconv_uk_qstore, 8 lanes at a time (the last count % 8 as plain C). */
static void qstore__avx2(const int32_t *restrict sum, long count,
                         const int32_t *restrict significand, const int32_t *restrict shift,
                         const int *restrict quant, int8_t *restrict out)
{
    long i = 0;
    for (; i + 8 <= count; i += 8) {
        const qrequant8 r = qprepare8(significand + i, shift + i, quant);
        const __m256i q = qapply8(_mm256_loadu_si256((const __m256i *)(sum + i)), &r);
        /* in [-128, 127] already: the saturating packs keep every value */
        const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(q),
                                              _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(out + i), _mm_packs_epi16(words, words));
    }
    if (i < count)
        sepconv_uk_qstore(sum + i, count - i, significand + i, shift + i, quant, out + i);
}

/* Stores 16 requantized lanes (in [-128, 127] already: the saturating packs
 * keep every value) as 16 int8 in order. */
static ALWAYS_INLINE void qstore16(int8_t *out, __m256i q0, __m256i q1)
{
    const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xd8);
    _mm_storeu_si128((__m128i *)out, _mm_packs_epi16(_mm256_castsi256_si128(words),
                                                     _mm256_extracti128_si256(words, 1)));
}

/* int8 pointwise, from weights packed as int16 pairs with in_zero folded
 * into the bias (sepconv_uk_qpack_pairs): two input channels a step.  The
 * pixels' input pairs are widened once per call to int16 pairs in an
 * int32; each step broadcasts a pair against a block's 16 channels of
 * weight pairs (two loads, nothing to unpack) and vpmaddwd sums both
 * products in int32 lanes (exact: |x| and |w| <= 128).  vpaddd wraps, as
 * the plain C body's uint32 sums do.  Tiles of up to 4 pixels x 16
 * channels (8 accumulators; 6 pixels left gcc spilling); blocks of 16
 * channels outer, the call's tiles inner, so a block's weights (m x 32
 * bytes) are read from L1 by every tile of the row.  On a Zen 4 with
 * AVX-512 hidden (a harness over whole layers, -O3): 14 x 14 x 512 ->
 * 512 1.03 -> 0.83 ms against the unpacked int8 weights, 7 x 7 x 1024 ->
 * 1024 1.41 -> 0.81. */
enum { QPW_PIXELS = 4, QPW_MOST_PAIRS = 16384 /* 64 KB of stack */ };

/* What the tiles of one block of 16 output channels share. */
typedef struct qpw_block {
    const int32_t *packed; /* the folded biases (and the weights after them) */
    const int16_t *pairs;  /* the block's weight pairs */
    const int32_t *requant;
    const int *quant;
    long n, c0, count; /* count: the block's channels, 16 but in the last */
} qpw_block;

/* The block's channels of P pixels (pixel p's input pairs at pair + p *
 * pairs): sums over the m input channels, requantized and stored.  `whole`
 * (a constant): the block has 16 channels.  The tail's code is apart: in
 * one tile for both, gcc kept the accumulators in memory (14 x 14 x 512
 * -> 512 1.33 ms, against 0.82). */
static ALWAYS_INLINE void qpw_tile(const int P, const int whole, const qpw_block *k,
                                   const int32_t *pair, long pairs, int8_t *out)
{
    const int32_t *packed = k->packed, *requant = k->requant;
    const int16_t *block = k->pairs;
    const long n = k->n, c0 = k->c0, count = k->count;
    const int *quant = k->quant;
    __m256i acc[QPW_PIXELS][2];
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)(packed + c0));
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(packed + c0 + 8));
    for (int p = 0; p < P; p++) {
        acc[p][0] = b0;
        acc[p][1] = b1;
    }
    for (long j = 0; j < pairs; j++, block += 32) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)block);
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(block + 16));
        for (int p = 0; p < P; p++) {
            const __m256i x = _mm256_set1_epi32(pair[p * pairs + j]);
            acc[p][0] = _mm256_add_epi32(acc[p][0], _mm256_madd_epi16(w0, x));
            acc[p][1] = _mm256_add_epi32(acc[p][1], _mm256_madd_epi16(w1, x));
        }
    }
    if (!whole) { /* the last block: requant has only n entries */
        for (int p = 0; p < P; p++) {
            int32_t sum[16];
            _mm256_storeu_si256((__m256i *)sum, acc[p][0]);
            _mm256_storeu_si256((__m256i *)(sum + 8), acc[p][1]);
            qstore__avx2(sum, count, requant + c0, requant + n + c0, quant, out + p * n + c0);
        }
        return;
    }
    const qrequant8 r0 = qprepare8(requant + c0, requant + n + c0, quant),
                    r1 = qprepare8(requant + c0 + 8, requant + n + c0 + 8, quant);
    for (int p = 0; p < P; p++)
        qstore16(out + p * n + c0, qapply8(acc[p][0], &r0), qapply8(acc[p][1], &r1));
}

/* `pixels` outputs: as many pixels at a time as their pairs fit the stack
 * buffer, in balanced tiles of up to 4 (14 = 4 + 4 + 3 + 3). */
void sepconv_uk_qpointwise__avx2(const int8_t *in, long in_step, long pixels, long m,
                                 const int32_t *packed, long n, const int32_t *requant,
                                 const int *quant, int8_t *out)
{
    const long pairs = (m + 1) / 2;
    if (pairs * QPW_PIXELS > QPW_MOST_PAIRS) { /* not even one tile's pairs fit */
        sepconv_uk_qpointwise_body(in, in_step, pixels, m, packed, n, requant, quant, out, 0,
                                   qstore__avx2);
        return;
    }
    const int16_t *weights = sepconv_uk_qpacked_pairs(packed, n);
    int32_t pair[QPW_MOST_PAIRS];
    const long most = QPW_MOST_PAIRS / pairs; /* pixels a chunk, at least 4 */
    for (long q0 = 0; q0 < pixels; q0 += most) {
        const long chunk = pixels - q0 < most ? pixels - q0 : most;
        const int8_t *x = in + q0 * in_step;
        int8_t *y = out + q0 * n;
        for (long p = 0; p < chunk; p++)
            for (long j = 0; j < pairs; j++) {
                const int32_t x0 = x[p * in_step + 2 * j];
                const int32_t x1 = 2 * j + 1 < m ? x[p * in_step + 2 * j + 1] : 0;
                pair[p * pairs + j] = (int32_t)((uint32_t)x1 << 16 | ((uint32_t)x0 & 0xffff));
            }
        const long tiles = (chunk + QPW_PIXELS - 1) / QPW_PIXELS;
        for (long c0 = 0; c0 < n; c0 += 16) {
            const qpw_block k = {packed, weights + c0 * pairs * 2, requant, quant, n, c0,
                                 n - c0 < 16 ? n - c0 : 16};
            for (long t = 0, p0 = 0; t < tiles; t++) {
                const long size = chunk / tiles + (t < chunk % tiles);
                const int32_t *tp = pair + p0 * pairs;
                int8_t *ty = y + p0 * n;
                switch (k.count < 16 ? size : 4 + size) {
                case 1: qpw_tile(1, 0, &k, tp, pairs, ty); break;
                case 2: qpw_tile(2, 0, &k, tp, pairs, ty); break;
                case 3: qpw_tile(3, 0, &k, tp, pairs, ty); break;
                case 4: qpw_tile(4, 0, &k, tp, pairs, ty); break;
                case 5: qpw_tile(1, 1, &k, tp, pairs, ty); break;
                case 6: qpw_tile(2, 1, &k, tp, pairs, ty); break;
                case 7: qpw_tile(3, 1, &k, tp, pairs, ty); break;
                default: qpw_tile(4, 1, &k, tp, pairs, ty); break;
                }
                p0 += size;
            }
        }
    }
}

/* acc += (x - in_zero) * tap over 16 channels, tap as int16: int16 products
 * (exact: at most 255 * 128 = 32640) widened into two vectors of int32
 * sums. */
static ALWAYS_INLINE void qdw_tap(__m256i *acc0, __m256i *acc1, const int8_t *x, __m256i tap,
                                  __m256i in_zero)
{
    const __m256i v = _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x)),
                                       in_zero);
    const __m256i product = _mm256_mullo_epi16(v, tap);
    *acc0 = _mm256_add_epi32(*acc0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(product)));
    *acc1 = _mm256_add_epi32(*acc1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(product, 1)));
}

/* 16 int8 weights at w as int16. */
static ALWAYS_INLINE __m256i qdw_weights(const int8_t *w)
{
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w));
}

/* int8 depthwise row: blocks of 16 channels outer, the row's columns inner,
 * so a block's requantization is prepared once a row and, for 3x3 with
 * dilation 1, its 9 weight vectors stay in registers across the row (a
 * column whose window lies inside the input takes them unrolled). */
void sepconv_uk_qdwrow__avx2(const int8_t *const *rows, long in_w, long c, const int8_t *w,
                             long k, long stride, long dilation, long pad_left,
                             const int32_t *bias, const int32_t *requant, const int *quant,
                             int8_t *out, long ox0, long ox1)
{
    const __m256i in_zero = _mm256_set1_epi16((short)quant[0]);
    const int all_rows = k == 3 && dilation == 1 && rows[0] && rows[1] && rows[2];
    long c0 = 0;
    for (; c0 + 16 <= c; c0 += 16) {
        const qrequant8 r0 = qprepare8(requant + c0, requant + c + c0, quant),
                        r1 = qprepare8(requant + c0 + 8, requant + c + c0 + 8, quant);
        const __m256i b0 = bias ? _mm256_loadu_si256((const __m256i *)(bias + c0))
                                : _mm256_setzero_si256();
        const __m256i b1 = bias ? _mm256_loadu_si256((const __m256i *)(bias + c0 + 8))
                                : _mm256_setzero_si256();
        __m256i t[9];
        for (int i = 0; i < 9; i++)
            t[i] = all_rows ? qdw_weights(w + i * c + c0) : _mm256_setzero_si256();
        for (long ox = ox0; ox < ox1; ox++) {
            long lo, hi;
            sepconv_uk_columns(ox, k, stride, dilation, pad_left, in_w, &lo, &hi);
            const long x0 = ox * stride - pad_left;
            __m256i acc0 = b0, acc1 = b1;
            if (all_rows && lo == 0 && hi == 3)
                for (int ky = 0; ky < 3; ky++) {
                    const int8_t *x = rows[ky] + x0 * c + c0;
                    qdw_tap(&acc0, &acc1, x, t[3 * ky], in_zero);
                    qdw_tap(&acc0, &acc1, x + c, t[3 * ky + 1], in_zero);
                    qdw_tap(&acc0, &acc1, x + 2 * c, t[3 * ky + 2], in_zero);
                }
            else
                for (long ky = 0; ky < k; ky++)
                    for (long kx = lo; rows[ky] && kx < hi; kx++)
                        qdw_tap(&acc0, &acc1, rows[ky] + (x0 + kx * dilation) * c + c0,
                                qdw_weights(w + (ky * k + kx) * c + c0), in_zero);
            qstore16(out + (ox - ox0) * c + c0, qapply8(acc0, &r0), qapply8(acc1, &r1));
        }
    }
    if (c0 < c) /* the last c % 16 channels */
        sepconv_uk_qdwrow_body(rows, in_w, c, w, k, stride, dilation, pad_left, bias, requant,
                               quant, out, ox0, ox1, c0, qstore__avx2);
}
