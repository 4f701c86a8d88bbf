/*
 * microkernels/neon.c -- the AArch64 Advanced SIMD micro-kernels (aarch64
 * only; NEON is part of the base ISA there).  Vectors of 4 floats; 32 q
 * registers.
 *
 * Pointwise: register tiles of up to 6 pixels x 4 vectors (24
 * accumulators, 6 input vectors holding 4 k each, 1-2 weight vectors), the K
 * loop unrolled by 4 with vfmaq_laneq_f32 (a multiply-add by one lane of an
 * input vector, no broadcasts); a row's pixels split into balanced tiles.
 * Built with -fno-schedule-insns: gcc's scheduling before register
 * allocation otherwise spills accumulators inside the K loop.  The loop then
 * holds 96 fmla for 22 loads (6 inputs, 16 weight vectors): 4.4 FMAs a load.
 * A short last block (n % 4) loads its bias and stores through a buffer; a
 * block that is not whole vectors (block % 4) goes to the scalar kernel.
 *
 * Activations compare and select (vbslq_f32 of vcltq_f32(x, 0)): vmaxq_f32
 * would turn -0.0 into +0.0 where the reference keeps it.
 *
 * Depthwise, 3x3: a row in balanced blocks of up to 8 output columns,
 * border columns among them (a border block loads only the input columns
 * its window reaches and drops the taps in the padding), a channel vector a
 * step with its 9 weights in registers (common.h's SEPCONV_UK_DW3_KERNEL,
 * which AVX2 shares); at stride 1 or 2 (dilation 1) a sliding window loads
 * each input vector of a row once for every tap that reads it (stride 1, 8
 * columns: 10 loads for 24 FMAs a row; stride 2, 4 columns: 9 for 12),
 * other strides and dilations a vector per tap.  Which loop is outermost
 * follows the AVX-512 kernel (see dw3_row).  Other k and the last channels
 * (c % 4, in plain C) take the general path, as common.h's row driver
 * splits them.  Loads per FMA (gcc 12, objdump): a stride-1 block of 8
 * columns 0.42 (a border block 0.39), 0.54 when the channels are innermost
 * (the weights loaded per block); stride 2, 0.75; before, 1.0 in the
 * interior and 2.0 on border columns (the general path).
 */
#include <arm_neon.h>
#include <stddef.h>

#include "microkernels/common.h"
#include "microkernels/int8.h"
#include "microkernels/microkernels.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))
/* Loops over a tile's pixels and vectors, unrolled before gcc decides what
 * lives in memory (without it the accumulators are stored every k). */
#define EACH _Pragma("GCC unroll 8") for

/* relu: x < 0 ? 0 : x (NaN compares false and passes, -0.0 stays); relu6
 * then x > 6 ? 6 : x. */
static ALWAYS_INLINE float32x4_t activate4(float32x4_t x, int act)
{
    if (act == 0)
        return x;
    const float32x4_t zero = vdupq_n_f32(0.0f);
    x = vbslq_f32(vcltq_f32(x, zero), zero, x);
    if (act == 2) {
        const float32x4_t six = vdupq_n_f32(6.0f);
        x = vbslq_f32(vcgtq_f32(x, six), six, x);
    }
    return x;
}

/* ------------------------------------------------------------- pointwise */

/* P pixels x Q vectors; with `partial` the last vector's bias and outputs
 * hold only `lanes` channels. */
static ALWAYS_INLINE void pw_tile(const int P, const int Q, const int partial,
                                  const float *in, long in_step, float *out, long out_step,
                                  const float *w, long m, long block, const float *bias,
                                  int act, long lanes)
{
    float32x4_t acc[6][4];
    EACH (int q = 0; q < Q; q++) {
        float32x4_t b = vdupq_n_f32(0.0f);
        if (bias && partial && q == Q - 1) {
            float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (long i = 0; i < lanes; i++)
                tmp[i] = bias[4 * q + i];
            b = vld1q_f32(tmp);
        } else if (bias) {
            b = vld1q_f32(bias + 4 * q);
        }
        EACH (int p = 0; p < P; p++)
            acc[p][q] = b;
    }
    long k = 0;
    for (; k + 4 <= m; k += 4) {
        float32x4_t x[6];
        EACH (int p = 0; p < P; p++)
            x[p] = vld1q_f32(in + p * in_step + k);
        const float *wk = w + k * block;
#define STEP(j)                                                                         \
        EACH (int q = 0; q < Q; q++) {                                                  \
            const float32x4_t wv = vld1q_f32(wk + (j) * block + 4 * q);                 \
            EACH (int p = 0; p < P; p++)                                                \
                acc[p][q] = vfmaq_laneq_f32(acc[p][q], wv, x[p], j);                    \
        }
        STEP(0)
        STEP(1)
        STEP(2)
        STEP(3)
#undef STEP
    }
    for (; k < m; k++)
        EACH (int q = 0; q < Q; q++) {
            const float32x4_t wv = vld1q_f32(w + k * block + 4 * q);
            EACH (int p = 0; p < P; p++)
                acc[p][q] = vfmaq_n_f32(acc[p][q], wv, in[p * in_step + k]);
        }
    EACH (int p = 0; p < P; p++)
        EACH (int q = 0; q < Q; q++) {
            float32x4_t y = activate4(acc[p][q], act);
            if (partial && q == Q - 1) {
                float tmp[4];
                vst1q_f32(tmp, y);
                for (long i = 0; i < lanes; i++)
                    out[p * out_step + 4 * q + i] = tmp[i];
            } else {
                vst1q_f32(out + p * out_step + 4 * q, y);
            }
        }
}

typedef void (*tile_fn)(const float *, long, float *, long, const float *, long, long,
                        const float *, int, long);

#define TILE(P, Q, PARTIAL)                                                             \
    static void pw_tile_##P##x##Q##_##PARTIAL(const float *in, long in_step, float *out, \
                                              long out_step, const float *w, long m,    \
                                              long block, const float *bias, int act,   \
                                              long lanes)                               \
    {                                                                                   \
        pw_tile(P, Q, PARTIAL, in, in_step, out, out_step, w, m, block, bias, act,      \
                lanes);                                                                 \
    }
#define TILES(Q, PARTIAL) TILE(1, Q, PARTIAL) TILE(2, Q, PARTIAL) TILE(3, Q, PARTIAL)   \
                          TILE(4, Q, PARTIAL) TILE(5, Q, PARTIAL) TILE(6, Q, PARTIAL)
TILES(1, 0) TILES(2, 0) TILES(3, 0) TILES(4, 0)
TILES(1, 1) TILES(2, 1) TILES(3, 1) TILES(4, 1)

#define ROW(Q, PARTIAL)                                                                 \
    {pw_tile_1x##Q##_##PARTIAL, pw_tile_2x##Q##_##PARTIAL, pw_tile_3x##Q##_##PARTIAL,   \
     pw_tile_4x##Q##_##PARTIAL, pw_tile_5x##Q##_##PARTIAL, pw_tile_6x##Q##_##PARTIAL}
/* [vectors - 1][partial][pixels - 1] */
static const tile_fn tiles[4][2][6] = {
    {ROW(1, 0), ROW(1, 1)}, {ROW(2, 0), ROW(2, 1)},
    {ROW(3, 0), ROW(3, 1)}, {ROW(4, 0), ROW(4, 1)},
};

/* `pixels` outputs: per block, chunks of up to 16 channels, each over the
 * row's pixels in balanced tiles of at most 6. */
void sepconv_uk_pointwise_6x16__neon(const float *in, long in_step, float *out,
                                     long out_step, long pixels, const float *packed, long m,
                                     long n, long block, const float *bias, int act)
{
    if (pixels <= 0 || n <= 0 || block <= 0)
        return;
    if (block % 4 != 0) {
        sepconv_uk_pointwise__scalar(in, in_step, out, out_step, pixels, packed, m, n, block,
                                     bias, act);
        return;
    }
    long count = (pixels + 5) / 6, base = pixels / count, extra = pixels % count;
    for (long co = 0; co < n; co += block) {
        long width = n - co < block ? n - co : block;
        const float *wb = packed + co * m;
        for (long c = 0; c < width; c += 16) {
            long left = width - c < 16 ? width - c : 16;
            int vectors = (int)((left + 3) / 4);
            long lanes = left - 4 * (vectors - 1);
            int partial = lanes < 4;
            long p = 0;
            for (long t = 0; t < count; t++) {
                long size = base + (t < extra);
                tiles[vectors - 1][partial][size - 1](
                    in + p * in_step, in_step, out + p * out_step + co + c, out_step, wb + c,
                    m, block, bias ? bias + co + c : NULL, act, lanes);
                p += size;
            }
        }
    }
}

/* ------------------------------------------------------------- depthwise */

/* General path: output columns [ox0, ox1), channels [ch0, ch1). */
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
        for (; ch + 16 <= ch1; ch += 16) {
            float32x4_t acc[4];
            EACH (int v = 0; v < 4; v++)
                acc[v] = bias ? vld1q_f32(bias + ch + 4 * v) : vdupq_n_f32(0.0f);
            for (long ky = 0; ky < k; ky++) {
                if (!rows[ky])
                    continue;
                for (long kx = lo; kx < hi; kx++) {
                    const float *x = rows[ky] + (first + kx * dilation) * c + ch;
                    const float *wk = w + (ky * k + kx) * c + ch;
                    EACH (int v = 0; v < 4; v++)
                        acc[v] = vfmaq_f32(acc[v], vld1q_f32(x + 4 * v),
                                           vld1q_f32(wk + 4 * v));
                }
            }
            EACH (int v = 0; v < 4; v++)
                vst1q_f32(out + at + ch + 4 * v, activate4(acc[v], act));
        }
        for (; ch + 4 <= ch1; ch += 4) {
            float32x4_t acc = bias ? vld1q_f32(bias + ch) : vdupq_n_f32(0.0f);
            for (long ky = 0; ky < k; ky++) {
                if (!rows[ky])
                    continue;
                for (long kx = lo; kx < hi; kx++)
                    acc = vfmaq_f32(acc, vld1q_f32(rows[ky] + (first + kx * dilation) * c + ch),
                                    vld1q_f32(w + (ky * k + kx) * c + ch));
            }
            vst1q_f32(out + at + ch, activate4(acc, act));
        }
        for (; ch < ch1; ch++) {
            float sum = bias ? bias[ch] : 0.0f;
            for (long ky = 0; ky < k; ky++)
                for (long kx = lo; rows[ky] && kx < hi; kx++)
                    sum += rows[ky][(first + kx * dilation) * c + ch] *
                           w[(ky * k + kx) * c + ch];
            out[at + ch] = sepconv_uk_activate(sum, act);
        }
    }
}

/* x * w + acc, in the argument order of common.h's FMA. */
static ALWAYS_INLINE float32x4_t fma4(float32x4_t x, float32x4_t w, float32x4_t acc)
{
    return vfmaq_f32(acc, x, w);
}

static ALWAYS_INLINE float32x4_t zero4(void) { return vdupq_n_f32(0.0f); }

/* 3x3, a channel vector with its 9 weights in registers (common.h): blocks
 * of up to 8 columns (8 accumulators, 9 weights, the bias and an input: 19
 * of the 32 registers). */
SEPCONV_UK_DW3_KERNEL(dw3, float32x4_t, 4, 8, vld1q_f32, vst1q_f32, zero4, fma4, activate4)

/* A block of P columns from ox over the channel vectors [ch0, ch1), the
 * channels innermost (a cache line's 4 vectors in turn), each vector's 9
 * weights loaded for the block. */
static ALWAYS_INLINE void dw3_across(const int P, const int BORDER, long ox, long ilo,
                                     long ihi, const sepconv_uk_dw *d, const int S, long ch0,
                                     long ch1)
{
    for (long ch = ch0; ch < ch1; ch += 4) {
        float32x4_t wt[9];
        const float32x4_t b = dw3_weights(d, ch, wt);
        dw3_step(P, BORDER, ox, ilo, ihi, d, S, ch, wt, b);
    }
}

/* Window S over the columns [ox0, ox1) (the borders included), whole
 * vectors of channels [ch0, cv).  As the AVX-512 kernel chooses (measured
 * on Zen 4; NEON's speed cannot be measured here): stride 1 with c <= 256
 * sweeps each channel vector along the row with its weights in registers,
 * else each block of columns walks the channels innermost. */
static ALWAYS_INLINE void dw3_row(const int S, const sepconv_uk_dw *d, long ox0, long ox1,
                                  long ch0, long cv)
{
    if (S == 1 && d->c <= 256)
        dw3_sweep(d, 1, ox0, ox1, ch0, cv, 8);
    else
        SEPCONV_UK_DW3_BLOCKS(d, ox0, ox1, sepconv_uk_dw3_most(d, S), 8, dw3_across, d, S,
                              ch0, cv);
}

/* The 3x3 columns [ox0, ox1), whole vectors of channels [ch0, cv). */
static void dw_3x3(const sepconv_uk_dw *call, long ox0, long ox1, long ch0, long cv)
{
    sepconv_uk_dw d;
    const float *rows[3];
    sepconv_uk_dw3_localize(call, &d, rows);
    SEPCONV_UK_DW3_WINDOWS(&d, dw3_row, &d, ox0, ox1, ch0, cv)
}

/* One output row of a depthwise stage with multiplier 1. */
SEPCONV_UK_DWROW(sepconv_uk_dwrow__neon, 4, 0, dw_general, dw_3x3)

/* ------------------------------------------------------------------ int8 */


/* 4 sums requantized as sepconv_uk_qrescale does, lane for lane, clamped,
 * + out_zero: TensorFlow Lite's arithmetic is NEON's own here.  sqshl is
 * the saturating left shift; sqrdmulh is the rounding doubling high
 * multiply (ties up, INT32_MIN squared saturating); srshl by -right rounds
 * ties up, so negative values first take 1 off (ties away from zero; the
 * saturating add changes no result). */
static ALWAYS_INLINE int32x4_t qapply4(int32x4_t sum, const int32_t *significand,
                                       const int32_t *shift, const int *quant)
{
    const int32x4_t s = vld1q_s32(shift), zero = vdupq_n_s32(0);
    const int32x4_t left = vmaxq_s32(s, zero), right = vminq_s32(s, zero); /* right <= 0 */
    const int32x4_t y = vqrdmulhq_s32(vqshlq_s32(sum, left), vld1q_s32(significand));
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(y, right), 31);
    const int32x4_t q = vrshlq_s32(vqaddq_s32(y, fixup), right);
    const int32x4_t out_zero = vdupq_n_s32(quant[1]);
    const int32x4_t low = vdupq_n_s32(quant[2] - quant[1]);
    const int32x4_t high = vdupq_n_s32(quant[3] - quant[1]);
    return vaddq_s32(vminq_s32(vmaxq_s32(q, low), high), out_zero);
}

/* sepconv_uk_qstore, 8 lanes at a time (the last count % 8 as plain C). */
static void qstore__neon(const int32_t *restrict sum, long count,
                         const int32_t *restrict significand, const int32_t *restrict shift,
                         const int *restrict quant, int8_t *restrict out)
{
    long i = 0;
    for (; i + 8 <= count; i += 8) {
        const int16x8_t words = vcombine_s16(
            vqmovn_s32(qapply4(vld1q_s32(sum + i), significand + i, shift + i, quant)),
            vqmovn_s32(qapply4(vld1q_s32(sum + i + 4), significand + i + 4, shift + i + 4,
                               quant)));
        vst1_s8(out + i, vqmovn_s16(words)); /* in [-128, 127] already */
    }
    if (i < count)
        sepconv_uk_qstore(sum + i, count - i, significand + i, shift + i, quant, out + i);
}

/* the int8 depthwise row (microkernels/int8.h): plain C vectorized with this
 * file's flags, stored by qstore__neon */
SEPCONV_UK_INT8_DWROW(neon, qstore__neon)

/* int8 pointwise over the int16 pairs (sepconv_uk_qpack_pairs): tiles of
 * up to 4 pixels x 16 channels (16 accumulators); a step takes two pairs
 * of input channels, 4 int16 of each pixel in one d register, and per
 * pair two de-interleaving loads (vld2q_s16) of the block's 16 channels'
 * two weights; smlal by a lane adds each product in int32 (wrapping, as
 * the plain C body's uint32 sums).  A call's inputs are widened to int16
 * once, 4 per pair step (0 past m), into at most QPW_MOST_INPUTS of stack. */
enum { QPW_PIXELS = 4, QPW_MOST_INPUTS = 32768 /* 64 KB */ };

/* One pair j of the block (weights at w) against lanes L, L + 1 of x. */
#define QPW_PAIR(P, acc, x, w, L)                                                          \
    do {                                                                                   \
        const int16x8x2_t lo = vld2q_s16(w), hi = vld2q_s16((w) + 16);                     \
        EACH (int p = 0; p < (P); p++) {                                                   \
            acc[p][0] = vmlal_lane_s16(acc[p][0], vget_low_s16(lo.val[0]), x[p], L);       \
            acc[p][0] = vmlal_lane_s16(acc[p][0], vget_low_s16(lo.val[1]), x[p], L + 1);   \
            acc[p][1] = vmlal_high_lane_s16(acc[p][1], lo.val[0], x[p], L);                \
            acc[p][1] = vmlal_high_lane_s16(acc[p][1], lo.val[1], x[p], L + 1);            \
            acc[p][2] = vmlal_lane_s16(acc[p][2], vget_low_s16(hi.val[0]), x[p], L);       \
            acc[p][2] = vmlal_lane_s16(acc[p][2], vget_low_s16(hi.val[1]), x[p], L + 1);   \
            acc[p][3] = vmlal_high_lane_s16(acc[p][3], hi.val[0], x[p], L);                \
            acc[p][3] = vmlal_high_lane_s16(acc[p][3], hi.val[1], x[p], L + 1);            \
        }                                                                                  \
    } while (0)

/* P pixels (pixel p's int16 inputs at x16 + p * stride) x the 16 channels
 * of the block at c0 (count of them real): sums, requantized, stored. */
static ALWAYS_INLINE void qpw_tile(const int P, const int32_t *packed, const int16_t *block,
                                   long pairs, const int16_t *x16, long stride,
                                   const int32_t *requant, const int *quant, long n, long c0,
                                   long count, int8_t *out)
{
    int32x4_t acc[QPW_PIXELS][4];
    EACH (int p = 0; p < P; p++)
        EACH (int v = 0; v < 4; v++)
            acc[p][v] = vld1q_s32(packed + c0 + 4 * v);
    long j = 0;
    for (; j + 2 <= pairs; j += 2, block += 64) {
        int16x4_t x[QPW_PIXELS];
        EACH (int p = 0; p < P; p++)
            x[p] = vld1_s16(x16 + p * stride + 2 * j);
        QPW_PAIR(P, acc, x, block, 0);
        QPW_PAIR(P, acc, x, block + 32, 2);
    }
    if (j < pairs) { /* the last pair */
        int16x4_t x[QPW_PIXELS];
        EACH (int p = 0; p < P; p++)
            x[p] = vld1_s16(x16 + p * stride + 2 * j);
        QPW_PAIR(P, acc, x, block, 0);
    }
    EACH (int p = 0; p < P; p++) {
        int8_t bytes[16];
        if (count == 16) {
            int16x8_t words[2];
            EACH (int h = 0; h < 2; h++) {
                const long c = c0 + 8 * h;
                words[h] = vcombine_s16(
                    vqmovn_s32(qapply4(acc[p][2 * h], requant + c, requant + n + c, quant)),
                    vqmovn_s32(qapply4(acc[p][2 * h + 1], requant + c + 4,
                                       requant + n + c + 4, quant)));
            }
            vst1q_s8(out + p * n + c0, vcombine_s8(vqmovn_s16(words[0]), vqmovn_s16(words[1])));
            continue;
        }
        int32_t sum[16]; /* the last block: requant has only n entries */
        EACH (int v = 0; v < 4; v++)
            vst1q_s32(sum + 4 * v, acc[p][v]);
        sepconv_uk_qstore(sum, count, requant + c0, requant + n + c0, quant, bytes);
        for (long i = 0; i < count; i++)
            out[p * n + c0 + i] = bytes[i];
    }
}

typedef void (*qpw_tile_fn)(const int32_t *packed, const int16_t *block, long pairs,
                            const int16_t *x16, long stride, const int32_t *requant,
                            const int *quant, long n, long c0, long count, int8_t *out);

#define QPW_TILE(P)                                                                        \
    static void qpw_tile_##P(const int32_t *packed, const int16_t *block, long pairs,     \
                             const int16_t *x16, long stride, const int32_t *requant,     \
                             const int *quant, long n, long c0, long count, int8_t *out)  \
    {                                                                                      \
        qpw_tile(P, packed, block, pairs, x16, stride, requant, quant, n, c0, count, out); \
    }
QPW_TILE(1) QPW_TILE(2) QPW_TILE(3) QPW_TILE(4)
static const qpw_tile_fn qpw_tiles[QPW_PIXELS] = {qpw_tile_1, qpw_tile_2, qpw_tile_3,
                                                  qpw_tile_4};

/* `pixels` outputs: as many pixels at a time as their inputs fit the stack
 * buffer; blocks of 16 channels outer, balanced tiles of up to 4 pixels
 * inner, so a block's weights (m x 64 bytes) are read from L1 by every tile. */
void sepconv_uk_qpointwise__neon(const int8_t *in, long in_step, long pixels, long m,
                                 const int32_t *packed, long n, const int32_t *requant,
                                 const int *quant, int8_t *out)
{
    const long pairs = (m + 1) / 2, stride = (pairs + 1) / 2 * 4; /* int16 a pixel */
    if (stride * QPW_PIXELS > QPW_MOST_INPUTS) { /* m past 8 K: not one tile's inputs fit */
        sepconv_uk_qpointwise_body(in, in_step, pixels, m, packed, n, requant, quant, out, 0,
                                   sepconv_uk_qstore);
        return;
    }
    const int16_t *weights = sepconv_uk_qpacked_pairs(packed, n);
    int16_t x16[QPW_MOST_INPUTS];
    const long most = QPW_MOST_INPUTS / stride; /* pixels a chunk, at least 4 */
    for (long q0 = 0; q0 < pixels; q0 += most) {
        const long chunk = pixels - q0 < most ? pixels - q0 : most;
        const int8_t *x = in + q0 * in_step;
        int8_t *y = out + q0 * n;
        for (long p = 0; p < chunk; p++)
            for (long i = 0; i < stride; i++)
                x16[p * stride + i] = i < m ? x[p * in_step + i] : 0;
        const long tiles = (chunk + QPW_PIXELS - 1) / QPW_PIXELS;
        for (long c0 = 0; c0 < n; c0 += 16) {
            const int16_t *block = weights + c0 * pairs * 2;
            const long count = n - c0 < 16 ? n - c0 : 16;
            for (long t = 0, p0 = 0; t < tiles; t++) {
                const long size = chunk / tiles + (t < chunk % tiles);
                qpw_tiles[size - 1](packed, block, pairs, x16 + p0 * stride, stride, requant,
                                    quant, n, c0, count, y + p0 * n);
                p0 += size;
            }
        }
    }
}
