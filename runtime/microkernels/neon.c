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

/* the int8 kernels (microkernels/int8.h), vectorized with this file's flags */
SEPCONV_UK_INT8(neon)
